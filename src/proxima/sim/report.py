"""What a simulation measured: each message's journey, each contact's use, each node's storage.

Everything is kept in DTN ms and node numbers; :meth:`SimResult.to_json` gives the report with
times in seconds from the start of the run (and the start itself in DTN ms), node names, and
latency percentiles per traffic class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from proxima.routing.contacts import Contact

__all__ = ["ContactUse", "Hop", "Journey", "NodeStore", "SimResult", "percentile"]

REASONS = {
    1: "lifetime expired",
    3: "transmission canceled",
    4: "depleted storage",
    6: "no known route",
    7: "no timely contact",
    9: "hop limit exceeded",
}


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) of sorted ``values`` by the nearest-rank method; None if empty."""
    if not values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass(slots=True)
class Hop:
    """One transmission of a message's bundle over a contact (``contact``: its number in the
    link plan). ``end_ms`` is when the last byte left; ``ok`` False when the contact ended first."""

    attempt: int
    from_node: int
    to_node: int
    contact: int
    start_ms: int
    end_ms: int
    arrival_ms: int
    ok: bool = True


@dataclass(slots=True)
class Journey:
    """What happened to one message."""

    index: int
    klass: str
    source: int
    destination: int
    size: int
    posted_ms: int
    status: str = "pending"
    """``delivered``, ``lost`` (see ``reason``) or ``pending`` (still on its way when the run ended)."""
    reason: str = ""
    delivered_ms: int | None = None
    attempts: int = 0
    """Bundles sent for it: more than one when end-to-end mode had to try again."""
    reroutes: int = 0
    """Times a bundle of it was routed again after a contact ended under it."""
    first_sent_ms: int | None = None
    """When a bundle of it first left its source."""
    at_node: int | None = None
    """Where it was at the end of the run (pending messages)."""
    hops: list[Hop] = field(default_factory=list)
    drops: list[tuple[int, int, int]] = field(default_factory=list)
    """(node, time, reason code) of each bundle of it deleted on the way."""
    in_reply_to: int | None = None

    @property
    def latency_ms(self) -> int | None:
        """From posting to delivery, or None if not delivered."""
        return None if self.delivered_ms is None else self.delivered_ms - self.posted_ms


@dataclass(slots=True)
class ContactUse:
    """How much of a contact (its number in the link plan) was used."""

    bytes: int = 0
    bundles: int = 0
    busy_ms: int = 0
    cut: int = 0
    """Transmissions the contact's end interrupted."""


@dataclass(slots=True)
class NodeStore:
    """A node's in-memory store: what it holds now and at most."""

    bytes: int = 0
    bundles: int = 0
    peak_bytes: int = 0
    peak_bundles: int = 0
    peak_at_ms: int = 0

    def add(self, size: int, now_ms: int) -> None:
        """A bundle of ``size`` bytes is now held."""
        self.bytes += size
        self.bundles += 1
        self.peak_bundles = max(self.peak_bundles, self.bundles)
        if self.bytes > self.peak_bytes:
            self.peak_bytes, self.peak_at_ms = self.bytes, now_ms

    def remove(self, size: int) -> None:
        """A bundle of ``size`` bytes is no longer held."""
        self.bytes -= size
        self.bundles -= 1


def _s(ms: int | None, start_ms: int = 0) -> float | None:
    return None if ms is None else round((ms - start_ms) / 1000.0, 3)


@dataclass(slots=True)
class SimResult:
    """A finished run."""

    mode: str
    start_ms: int
    end_ms: int
    names: Mapping[int, str]
    journeys: list[Journey]
    contacts: Sequence[Contact]
    use: dict[int, ContactUse]
    stores: dict[int, NodeStore]
    events: int = 0
    notes: list[str] = field(default_factory=list)

    def name(self, node: int) -> str:
        """A node's name (its number when it has none)."""
        return self.names.get(node, str(node))

    @property
    def delivered(self) -> int:
        """How many messages were delivered."""
        return sum(1 for j in self.journeys if j.status == "delivered")

    @property
    def delivery_ratio(self) -> float:
        """Delivered messages over all messages (1.0 for none)."""
        return self.delivered / len(self.journeys) if self.journeys else 1.0

    def classes(self) -> dict[str, dict[str, Any]]:
        """Per traffic class: counts, delivery ratio, latency percentiles (seconds)."""
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({j.klass for j in self.journeys}):
            js = [j for j in self.journeys if j.klass == name]
            lat = sorted(j.latency_ms / 1000.0 for j in js if j.latency_ms is not None)
            out[name] = {
                "messages": len(js),
                "bytes": sum(j.size for j in js),
                "delivered": len(lat),
                "lost": sum(1 for j in js if j.status == "lost"),
                "pending": sum(1 for j in js if j.status == "pending"),
                "delivery_ratio": round(len(lat) / len(js), 4) if js else 1.0,
                "attempts": sum(j.attempts for j in js),
                "latency_s": {
                    "p50": percentile(lat, 50),
                    "p90": percentile(lat, 90),
                    "p99": percentile(lat, 99),
                    "max": lat[-1] if lat else None,
                    "mean": round(sum(lat) / len(lat), 3) if lat else None,
                },
            }
        return out

    def contact_rows(self) -> list[dict[str, Any]]:
        """Every contact of the run's span with its use (bytes, bundles, busy time, % of volume)."""
        rows = []
        for i, c in enumerate(self.contacts):
            if c.end_ms <= self.start_ms or c.start_ms >= self.end_ms or c.from_node == c.to_node:
                continue
            u = self.use.get(i) or ContactUse()
            volume = c.rate_bytes_s * (c.end_ms - c.start_ms) / 1000.0
            rows.append(
                {
                    "contact": i,
                    "from": self.name(c.from_node),
                    "to": self.name(c.to_node),
                    "start_s": _s(c.start_ms, self.start_ms),
                    "end_s": _s(c.end_ms, self.start_ms),
                    "rate_bytes_s": c.rate_bytes_s,
                    "bytes": u.bytes,
                    "bundles": u.bundles,
                    "cut": u.cut,
                    "busy_s": _s(u.busy_ms),
                    "use_pct": round(100.0 * u.bytes / volume, 4) if volume > 0 else None,
                }
            )
        return rows

    def journey_json(self, j: Journey) -> dict[str, Any]:
        """One message's journey, times in seconds from the start of the run."""
        st = self.start_ms
        return {
            "message": j.index,
            "class": j.klass,
            "from": self.name(j.source),
            "to": self.name(j.destination),
            "size": j.size,
            "posted_s": _s(j.posted_ms, st),
            "first_sent_s": _s(j.first_sent_ms, st),
            "status": j.status,
            "reason": j.reason or None,
            "delivered_s": _s(j.delivered_ms, st),
            "latency_s": _s(j.latency_ms),
            "attempts": j.attempts,
            "reroutes": j.reroutes,
            "at": None if j.at_node is None else self.name(j.at_node),
            "in_reply_to": j.in_reply_to,
            "hops": [
                {
                    "attempt": h.attempt,
                    "from": self.name(h.from_node),
                    "to": self.name(h.to_node),
                    "contact": h.contact,
                    "start_s": _s(h.start_ms, st),
                    "end_s": _s(h.end_ms, st),
                    "arrival_s": _s(h.arrival_ms, st) if h.ok else None,
                    "ok": h.ok,
                }
                for h in j.hops
            ],
            "drops": [
                {"at": self.name(n), "t_s": _s(t, st), "reason": REASONS.get(r, str(r))}
                for n, t, r in j.drops
            ],
        }

    def to_json(self, *, journeys: bool = True) -> dict[str, Any]:
        """The whole report as JSON-ready values."""
        lost: dict[str, int] = {}
        for j in self.journeys:
            if j.status == "lost":
                lost[j.reason] = lost.get(j.reason, 0) + 1
        doc: dict[str, Any] = {
            "mode": self.mode,
            "start_dtn_ms": self.start_ms,
            "duration_s": _s(self.end_ms, self.start_ms),
            "events": self.events,
            "messages": len(self.journeys),
            "delivered": self.delivered,
            "delivery_ratio": round(self.delivery_ratio, 4),
            "lost": dict(sorted(lost.items())),
            "pending": sum(1 for j in self.journeys if j.status == "pending"),
            "attempts": sum(j.attempts for j in self.journeys),
            "classes": self.classes(),
            "nodes": {
                self.name(n): {
                    "peak_bytes": s.peak_bytes,
                    "peak_bundles": s.peak_bundles,
                    "peak_at_s": _s(s.peak_at_ms, self.start_ms),
                    "bytes_at_end": s.bytes,
                    "bundles_at_end": s.bundles,
                }
                for n, s in sorted(self.stores.items())
            },
            "contacts": self.contact_rows(),
            "notes": list(self.notes),
        }
        if journeys:
            doc["journeys"] = [self.journey_json(j) for j in self.journeys]
        return doc
