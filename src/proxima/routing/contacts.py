"""The contact plan: who can send to whom, when, how fast, and how far away (light time).

Every time in this model is **DTN time in milliseconds** (since 2000-01-01 00:00:00 UTC), the
unit the agent's ``now_ms`` uses; rates are **bytes per second**. Files count in seconds (ION,
µD3TN, HDTN) or in Unix seconds (the orbit engine's link windows): they are converted once, by
:func:`unix_s_to_dtn_ms`, :func:`dtn_s_to_ms` and :func:`s_to_ms`, nowhere else.

Nodes are ipn node numbers (as ION, µD3TN and HDTN route on); :class:`NodeMap` maps them to and
from endpoint IDs, so ``dtn://`` nodes can be named in a plan too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, NamedTuple

from proxima.bpv7.eid import EID, IpnEID
from proxima.errors import ConfigError, LocalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "DTN_EPOCH_UNIX_S",
    "Contact",
    "ContactPlan",
    "NodeMap",
    "PlanError",
    "Range",
    "dtn_s_to_ms",
    "s_to_ms",
    "unix_s_to_dtn_ms",
]

DTN_EPOCH_UNIX_S: Final = 946_684_800
"""2000-01-01 00:00:00 UTC in Unix seconds: the DTN epoch (RFC 9171 §4.2.6)."""


def s_to_ms(seconds: float) -> int:
    """A duration in seconds as whole milliseconds (rounded to the nearest)."""
    return round(seconds * 1000)


def dtn_s_to_ms(dtn_s: float) -> int:
    """A DTN time in seconds (µD3TN's contacts) as DTN milliseconds."""
    return round(dtn_s * 1000)


def unix_s_to_dtn_ms(unix_s: float) -> int:
    """A Unix time in seconds (the orbit engine's windows) as DTN milliseconds."""
    return round((unix_s - DTN_EPOCH_UNIX_S) * 1000)


class PlanError(ConfigError):
    """A contact plan (a file or a value) is wrong; ``source``, ``line`` and ``field`` say where.

    ``line`` is a 1-based line number for text formats; for JSON, ``field`` is the JSON path
    (``contacts[3].endTime``). The message starts with them: ``"plan.rc line 7 (rate): ..."``.
    """

    def __init__(
        self, message: str, *, source: str = "<text>", line: int | None = None, field: str | None = None
    ) -> None:
        where = source if line is None else f"{source} line {line}"
        if field is not None:
            where = f"{where} ({field})"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.field = field


class Contact(NamedTuple):
    """A planned opportunity for ``from_node`` to send to ``to_node`` between ``start_ms`` and
    ``end_ms`` at ``rate_bytes_s``; ``confidence`` (0..1) is how likely it is to happen."""

    from_node: int
    to_node: int
    start_ms: int
    end_ms: int
    rate_bytes_s: float
    confidence: float = 1.0

    @property
    def volume_bytes(self) -> float:
        """How many bytes the whole contact can carry."""
        return self.rate_bytes_s * (self.end_ms - self.start_ms) / 1000.0


class Range(NamedTuple):
    """The one-way light time from ``from_node`` to ``to_node`` between ``start_ms`` and ``end_ms``."""

    from_node: int
    to_node: int
    start_ms: int
    end_ms: int
    owlt_ms: int


def _check_contact(c: Contact) -> None:
    if c.end_ms <= c.start_ms:
        raise LocalError(f"contact {c.from_node}->{c.to_node} ends at {c.end_ms}, not after {c.start_ms}")
    if not (c.rate_bytes_s >= 0.0 and math.isfinite(c.rate_bytes_s)):
        raise LocalError(f"contact {c.from_node}->{c.to_node} needs a finite rate >= 0, not {c.rate_bytes_s}")
    if not 0.0 <= c.confidence <= 1.0:
        raise LocalError(f"contact {c.from_node}->{c.to_node} confidence must be in 0..1, not {c.confidence}")
    if c.from_node < 0 or c.to_node < 0:
        raise LocalError(f"contact {c.from_node}->{c.to_node}: node numbers are >= 0")


def _check_range(r: Range) -> None:
    if r.end_ms <= r.start_ms:
        raise LocalError(f"range {r.from_node}->{r.to_node} ends at {r.end_ms}, not after {r.start_ms}")
    if r.owlt_ms < 0:
        raise LocalError(f"range {r.from_node}->{r.to_node}: light time must be >= 0, not {r.owlt_ms}")


class ContactPlan:
    """Contacts and ranges, with the look-ups routing needs. Immutable once built.

    Contacts are kept sorted by (start, from, to, end); ``contacts[i]`` is contact number ``i``,
    the identity routing uses to book volume on it. Ranges follow ION's rule: a range from A to
    B with A < B also holds from B to A unless a range from B to A is given; a range with A > B
    says nothing about B to A. A pair with no range has ``default_owlt_ms``.
    """

    __slots__ = ("_by_from", "_ranges_by_pair", "contacts", "default_owlt_ms", "ranges")

    def __init__(
        self, contacts: Iterable[Contact] = (), ranges: Iterable[Range] = (), *, default_owlt_ms: int = 0
    ) -> None:
        cs = sorted(contacts, key=lambda c: (c.start_ms, c.from_node, c.to_node, c.end_ms))
        for c in cs:
            _check_contact(c)
        rs = sorted(ranges, key=lambda r: (r.start_ms, r.from_node, r.to_node, r.end_ms))
        for r in rs:
            _check_range(r)
        if default_owlt_ms < 0:
            raise LocalError(f"default one-way light time must be >= 0, not {default_owlt_ms}")
        self.contacts: tuple[Contact, ...] = tuple(cs)
        self.ranges: tuple[Range, ...] = tuple(rs)
        self.default_owlt_ms = default_owlt_ms
        by_from: dict[int, list[int]] = {}
        for i, c in enumerate(self.contacts):
            by_from.setdefault(c.from_node, []).append(i)
        self._by_from = by_from
        explicit: dict[tuple[int, int], list[Range]] = {}
        for r in self.ranges:
            explicit.setdefault((r.from_node, r.to_node), []).append(r)
        pairs = dict(explicit)
        for (a, b), lst in explicit.items():
            if a < b and (b, a) not in explicit:
                pairs[(b, a)] = lst  # ION: the lower-numbered node first implies the reverse too
        self._ranges_by_pair = pairs

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[int | str, int | str, float, float, float, float]],
        *,
        nodes: Mapping[str, int] | None = None,
        default_owlt_ms: int = 0,
    ) -> ContactPlan:
        """A plan from ``(from, to, start_unix_s, end_unix_s, rate_bytes_s, owlt_s)`` rows.

        That is what the orbit engine's link windows give (``proxima.orbit.links.Contact``'s
        first six fields): Unix seconds, bytes/s, light seconds. Each row makes a contact and a
        range over the same span. Nodes given by name are numbered through ``nodes``. A row
        with a ``confidence`` attribute (the orbit engine's ``Contact``) keeps it.
        """
        contacts: list[Contact] = []
        ranges: list[Range] = []
        for i, row in enumerate(rows):
            frm, to, start_s, end_s, rate, owlt_s = row[:6]
            a, b = _number(frm, nodes, i), _number(to, nodes, i)
            start, end = unix_s_to_dtn_ms(start_s), unix_s_to_dtn_ms(end_s)
            confidence = float(getattr(row, "confidence", 1.0))
            contacts.append(Contact(a, b, start, end, float(rate), confidence))
            ranges.append(Range(a, b, start, end, math.ceil(owlt_s * 1000)))
        return cls(contacts, ranges, default_owlt_ms=default_owlt_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContactPlan):
            return NotImplemented
        return (self.contacts, self.ranges, self.default_owlt_ms) == (
            other.contacts,
            other.ranges,
            other.default_owlt_ms,
        )

    def __hash__(self) -> int:
        return hash((self.contacts, self.ranges, self.default_owlt_ms))

    def __repr__(self) -> str:
        return f"ContactPlan({len(self.contacts)} contacts, {len(self.ranges)} ranges)"

    def __len__(self) -> int:
        return len(self.contacts)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self.contacts)

    def replace(
        self, contacts: Iterable[Contact] | None = None, ranges: Iterable[Range] | None = None
    ) -> ContactPlan:
        """A new plan with other contacts and/or ranges (a plan never changes in place)."""
        return ContactPlan(
            self.contacts if contacts is None else contacts,
            self.ranges if ranges is None else ranges,
            default_owlt_ms=self.default_owlt_ms,
        )

    @property
    def nodes(self) -> frozenset[int]:
        """Every node number that appears in a contact or a range."""
        out = {c.from_node for c in self.contacts} | {c.to_node for c in self.contacts}
        out |= {r.from_node for r in self.ranges} | {r.to_node for r in self.ranges}
        return frozenset(out)

    def indices_from(self, node: int) -> list[int]:
        """Numbers of the contacts sent by ``node``, by start time."""
        return self._by_from.get(node, [])

    def contacts_from(self, node: int, now_ms: int) -> list[Contact]:
        """``node``'s contacts not yet over at ``now_ms``, by start time."""
        return [self.contacts[i] for i in self._by_from.get(node, ()) if self.contacts[i].end_ms > now_ms]

    def ranges_for(self, from_node: int, to_node: int) -> list[Range]:
        """The ranges that give the light time from ``from_node`` to ``to_node`` (ION's rule)."""
        return self._ranges_by_pair.get((from_node, to_node), [])

    def owlt_ms(self, from_node: int, to_node: int, at_ms: int) -> int:
        """The one-way light time from ``from_node`` to ``to_node`` at ``at_ms``.

        The range in force at ``at_ms``; else, if ranges exist for the pair, the largest of them
        (a conservative guess); else ``default_owlt_ms``.
        """
        lst = self._ranges_by_pair.get((from_node, to_node))
        if not lst:
            return self.default_owlt_ms
        for r in lst:
            if r.start_ms <= at_ms < r.end_ms:
                return r.owlt_ms
        return max(r.owlt_ms for r in lst)

    def next_change(self, node: int, now_ms: int) -> int | None:
        """The first time after ``now_ms`` when a contact from or to ``node`` starts or ends."""
        best: int | None = None
        for c in self.contacts:
            if node not in (c.from_node, c.to_node):
                continue
            for t in (c.start_ms, c.end_ms):
                if t > now_ms and (best is None or t < best):
                    best = t
        return best


def _number(node: int | str, nodes: Mapping[str, int] | None, row: int) -> int:
    if isinstance(node, int):
        return node
    if nodes is not None and node in nodes:
        return nodes[node]
    raise PlanError(f"node {node!r} has no node number", source="<rows>", field=f"row {row}")


class NodeMap:
    """Node numbers to endpoint IDs and back.

    An ``ipn:N.S`` endpoint is node ``N`` without being listed; other endpoints (``dtn://``)
    need an entry, which :meth:`assign` can make with a fresh number.
    """

    __slots__ = ("_by_eid", "_by_number")

    def __init__(self, entries: Mapping[int, EID] | Iterable[tuple[int, EID]] = ()) -> None:
        self._by_number: dict[int, EID] = {}
        self._by_eid: dict[EID, int] = {}
        items = entries.items() if hasattr(entries, "items") else entries
        for number, eid in items:
            self.add(number, eid)

    def add(self, number: int, eid: EID) -> None:
        """Name node ``number`` ``eid`` (its node ID)."""
        node = eid.node_id
        if isinstance(node, IpnEID) and node.node != number:
            raise LocalError(f"{node} is node {node.node}, not {number}")
        old = self._by_number.get(number)
        if old is not None and old != node:
            raise LocalError(f"node {number} is already {old}, not {node}")
        other = self._by_eid.get(node)
        if other is not None and other != number:
            raise LocalError(f"{node} is already node {other}")
        self._by_number[number] = node
        self._by_eid[node] = number

    def assign(self, eid: EID) -> int:
        """The number of ``eid``'s node, giving it a fresh one if it has none."""
        found = self.number(eid)
        if found is not None:
            return found
        number = max(self._by_number, default=0) + 1
        while number in self._by_number:
            number += 1
        self.add(number, eid)
        return number

    def number(self, eid: EID) -> int | None:
        """The node number of ``eid`` (any endpoint on that node), or None if unknown."""
        node = eid.node_id
        if isinstance(node, IpnEID):
            return node.node
        return self._by_eid.get(node)

    def eid(self, number: int) -> EID:
        """The node ID of node ``number`` (``ipn:N.0`` unless named otherwise)."""
        found = self._by_number.get(number)
        return IpnEID(number, 0) if found is None else found

    def items(self) -> list[tuple[int, EID]]:
        """The named nodes, by number."""
        return sorted(self._by_number.items(), key=lambda kv: kv[0])

    def copy(self) -> NodeMap:
        """An independent copy."""
        return NodeMap(self.items())
