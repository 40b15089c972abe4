"""The console's network view: the nodes and what they store, the contact timeline, and each post's
journey from the station to publication.

Each node is asked for its status through its application interface (briefly: a node that does
not answer within a second is shown as unreachable); contacts come from the mission's contact plan
file; journeys from the ground service's own records.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from proxima.client import NodeClient, parse_address
from proxima.errors import ProximaError
from proxima.ground.service import dtn_ms, dtn_time

if TYPE_CHECKING:
    from proxima.ground.config import NetworkConfig
    from proxima.ground.service import GroundService

__all__ = ["ContactBar", "contact_bars", "journeys", "node_statuses"]

STATUS_TIMEOUT_S: Final = 1.0


async def _status(name: str, address: str) -> dict[str, Any]:
    try:
        host, port = parse_address(address)
        client = await asyncio.wait_for(NodeClient.connect(host, port), STATUS_TIMEOUT_S)
    except (OSError, ProximaError, TimeoutError) as exc:
        return {"name": name, "address": address, "up": False, "error": str(exc) or type(exc).__name__}
    try:
        status = await asyncio.wait_for(client.status(), STATUS_TIMEOUT_S)
    except (OSError, ProximaError, TimeoutError) as exc:
        return {"name": name, "address": address, "up": False, "error": str(exc) or type(exc).__name__}
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    stored = status.get("stored", {})
    return {
        "name": name,
        "address": address,
        "up": True,
        "node_id": status.get("node_id"),
        "bundles": stored.get("bundles", 0),
        "bytes": stored.get("bytes", 0),
        "peers": status.get("peers_up", []),
    }


async def node_statuses(network: NetworkConfig) -> list[dict[str, Any]]:
    """Every configured node's status (or why it could not be read), in order."""
    return list(await asyncio.gather(*(_status(n.name, n.node) for n in network.nodes)))


@dataclass(frozen=True, slots=True)
class ContactBar:
    """One contact on the timeline: who to whom, when, and where it sits in the drawing (0..1)."""

    link: str
    start: datetime
    end: datetime
    x0: float
    x1: float
    current: bool


def contact_bars(
    network: NetworkConfig, now: datetime, *, before: timedelta, after: timedelta
) -> tuple[list[str], list[ContactBar]]:
    """The links and contacts of the plan between ``now - before`` and ``now + after``."""
    if network.plan is None:
        return [], []
    from proxima.routing import formats

    text = network.plan.read_text(encoding="utf-8")
    epoch = network.epoch or now
    epoch_ms = dtn_ms(epoch)
    plan = formats.read_plan(text, network.plan_format, epoch_ms=epoch_ms, source=str(network.plan)).plan
    names = {n.ipn: n.name for n in network.nodes if n.ipn is not None}
    lo, hi = now - before, now + after
    span = (hi - lo).total_seconds()
    bars: list[ContactBar] = []
    for c in plan.contacts:
        start, end = dtn_time(c.start_ms), dtn_time(c.end_ms)
        if end < lo or start > hi or c.from_node == c.to_node:
            continue
        link = f"{names.get(c.from_node, c.from_node)} → {names.get(c.to_node, c.to_node)}"
        bars.append(
            ContactBar(
                link=link,
                start=start,
                end=end,
                x0=max(0.0, (start - lo).total_seconds() / span),
                x1=min(1.0, (end - lo).total_seconds() / span),
                current=start <= now < end,
            )
        )
    links = sorted({b.link for b in bars})
    return links, bars


def journeys(service: GroundService, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest posts' steps from the station to publication, with the time each took."""
    out: list[dict[str, Any]] = []
    for p in service.list_posts(limit=limit):
        info = service.show(p["id"])
        created = datetime.fromisoformat(info["created_at"])
        steps = [("written on board", created)]
        steps.append(("received on the ground", datetime.fromisoformat(info["received_at"])))
        for a in info["audit"]:
            if a["action"] in ("media_complete", "approve", "schedule", "reject", "published"):
                steps.append((a["action"].replace("_", " "), datetime.fromisoformat(a["at"])))
            elif a["action"] == "delivered":
                steps.append((f"on {a['actor']}", datetime.fromisoformat(a["at"])))
        out.append(
            {
                "id": info["id"],
                "state": info["state"],
                "text": next(iter(info["text"].values()), ""),
                "steps": [
                    {"what": what, "at": at.isoformat(), "after": _span(at - created)} for what, at in steps
                ],
            }
        )
    return out


def _span(delta: timedelta) -> str:
    s = max(0, int(delta.total_seconds()))
    if s < 120:
        return f"+{s} s"
    if s < 7200:
        return f"+{s // 60} min"
    return f"+{s // 3600} h {s % 3600 // 60:02d}"
