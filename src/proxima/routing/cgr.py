"""Contact graph routing after CCSDS SABR (734.3-B-1): the best routes from here to a node.

**The search.** The contact graph's vertices are the plan's contacts; a route is a chain of
contacts, each sent by the node the previous one reaches. The search starts from a *root* at
the local node, ready at ``now_ms`` (SABR's root contact, local node to itself), and runs
Dijkstra in contact-graph form, lazily: a node's outgoing contacts are examined in start
order, each only once the search's clock reaches its start, so a query touches only contacts
that could start before the destination is reached.

**Times along a route.** Through contact ``C`` (rate ``r`` bytes/s), a bundle of ``size``
bytes ready at the sender at ``t`` starts leaving at ``t0 = max(t, C.start + booked(C) / r)``
(the volume already booked on ``C`` fills it from its start: queued bundles go first), its last
byte leaves at ``t0 + ceil(size / r)``, which must be no later than ``C.end`` (else ``C`` cannot
carry it: its residual volume is too small), and arrives ``owlt(C, t0)`` later. A contact of
rate 0 carries nothing. Times are whole milliseconds, rounded up.

**Ranking, precisely.** Routes are ranked by (1) the projected arrival time of the bundle's
last byte at the destination, earliest first; (2) the number of hops (contacts), fewest first;
(3) the route's end time (the earliest end among its contacts, the end of its validity),
latest first. The search is exact for (1) then (2) over all loop-free routes: at each node it
keeps every label not dominated in (arrival, hops), which with labels taken in (arrival, hops)
order means a label is dropped when that node was already reached with no more hops. Rule (3)
decides between labels of equal (arrival, hops) at the same node, the latest route end
winning; it is exact when the tied routes reach their last node together, and otherwise picks
among the routes the search kept. Routes that would arrive at or after the bundle's expiry
are not eligible.

**Alternatives.** By default SABR's contact exclusion: once a route is found, its *limiting
contact* (the one that ends first; the first such on the route when several end together) is
excluded and the search runs again, up to ``max_routes`` routes. Every route found avoids every
contact excluded before it, so no route repeats, and no route visits a node twice. Cheap (one
search per route) and what the router uses. ``routes(..., method="yen")`` gives instead the
``max_routes`` best loop-free routes (Yen's algorithm over the contact graph), for reports
and for comparison; it costs a search per hop of every route found.

**Volume.** The caller books a bundle on the first contact of the route it takes
(:meth:`ContactGraph.book`), as SABR does; the other contacts of a route are only *checked*
(the bundle must fit in what is left of them). Booked volume is what the search sees, so queued
bundles consume capacity.
"""

from __future__ import annotations

import bisect
import heapq
import math
from typing import TYPE_CHECKING, Final, NamedTuple

from proxima.errors import LocalError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from proxima.routing.contacts import Contact, ContactPlan

__all__ = ["NO_EXPIRY", "CgrRoute", "ContactGraph"]

NO_EXPIRY: Final = 1 << 62
"""An expiry later than any plan (DTN ms)."""
_NEVER: Final = 1 << 62


class CgrRoute(NamedTuple):
    """A route to ``destination``: its contacts (plan contact numbers, first hop first) and what
    the search projected for the bundle it was computed for."""

    destination: int
    next_node: int
    contacts: tuple[int, ...]
    arrival_ms: int
    """When the bundle's last byte is projected to reach the destination."""
    from_ms: int
    """When the first contact starts (the earliest the bundle can leave)."""
    to_ms: int
    """The route's end: the earliest end among its contacts; the route is usable before it."""
    confidence: float
    """The product of its contacts' confidences."""

    @property
    def hops(self) -> int:
        """How many contacts the route takes."""
        return len(self.contacts)


class _Label(NamedTuple):
    node: int
    contact: int
    parent: _Label | None
    arrival: int
    hops: int
    end: int


class ContactGraph:
    """A contact plan indexed for route searches, and the volume booked on its contacts."""

    __slots__ = ("_by_node", "_max_dur", "_owlt", "_starts", "booked", "contacts", "plan")

    def __init__(self, plan: ContactPlan) -> None:
        self.plan = plan
        self.contacts: tuple[Contact, ...] = plan.contacts
        self.booked: dict[int, float] = {}
        """Bytes booked on each contact (by contact number)."""
        by_node: dict[int, list[int]] = {}
        for i, c in enumerate(self.contacts):
            if c.from_node != c.to_node and c.rate_bytes_s > 0.0:
                by_node.setdefault(c.from_node, []).append(i)  # contacts are sorted by start
        self._by_node = by_node
        self._starts = {n: [self.contacts[i].start_ms for i in lst] for n, lst in by_node.items()}
        self._max_dur = {
            n: max(self.contacts[i].end_ms - self.contacts[i].start_ms for i in lst)
            for n, lst in by_node.items()
        }
        # the light time through each contact when it is the same all along (no range for the
        # pair, or one range covering the whole contact), else None: looked up when sending
        owlt: list[int | None] = []
        for c in self.contacts:
            rs = [
                r
                for r in plan.ranges_for(c.from_node, c.to_node)
                if r.start_ms < c.end_ms and r.end_ms > c.start_ms
            ]
            if not plan.ranges_for(c.from_node, c.to_node):
                owlt.append(plan.default_owlt_ms)
            elif len(rs) == 1 and rs[0].start_ms <= c.start_ms and rs[0].end_ms >= c.end_ms:
                owlt.append(rs[0].owlt_ms)
            else:
                owlt.append(None)
        self._owlt = owlt

    # -- volume --------------------------------------------------------------------------------

    def book(self, contact: int, size: float) -> None:
        """Consume ``size`` bytes of contact ``contact``'s volume (a bundle queued on it)."""
        self.booked[contact] = self.booked.get(contact, 0.0) + size

    def release(self, contact: int, size: float) -> None:
        """Give back volume booked on ``contact`` (a bundle routed elsewhere after all)."""
        left = self.booked.get(contact, 0.0) - size
        if left > 0.0:
            self.booked[contact] = left
        else:
            self.booked.pop(contact, None)

    def residual_bytes(self, contact: int, now_ms: int) -> float:
        """What contact ``contact`` can still carry from ``now_ms`` on, after what is booked."""
        c = self.contacts[contact]
        t0 = max(now_ms, c.start_ms)
        if t0 >= c.end_ms:
            return 0.0
        total = c.rate_bytes_s * (c.end_ms - c.start_ms) / 1000.0
        ahead = c.rate_bytes_s * (t0 - c.start_ms) / 1000.0
        return max(0.0, total - max(ahead, self.booked.get(contact, 0.0)))

    # -- one contact ---------------------------------------------------------------------------

    def through(self, contact: int, ready_ms: int, size: int) -> int | None:
        """When a bundle of ``size`` bytes ready at ``ready_ms`` at the sender of ``contact``
        arrives at its receiver through it; None if the contact cannot carry it."""
        c = self.contacts[contact]
        rate = c.rate_bytes_s
        if rate <= 0.0:
            return None
        t0 = ready_ms if ready_ms > c.start_ms else c.start_ms
        booked = self.booked.get(contact)
        if booked:
            queued = c.start_ms + math.ceil(booked * 1000.0 / rate)
            t0 = max(t0, queued)
        if t0 >= c.end_ms:
            return None
        last = t0 + math.ceil(size * 1000.0 / rate) if size else t0
        if last > c.end_ms:
            return None
        owlt = self._owlt[contact]
        if owlt is None:
            owlt = self.plan.owlt_ms(c.from_node, c.to_node, t0)
        return last + owlt

    def project(self, contacts: Iterable[int], ready_ms: int, size: int) -> int | None:
        """When a bundle ready at ``ready_ms`` arrives at the end of a chain of contacts, or
        None if one of them cannot carry it (over, full, or not joined up)."""
        t = ready_ms
        prev_to: int | None = None
        for i in contacts:
            c = self.contacts[i]
            if prev_to is not None and c.from_node != prev_to:
                return None
            arrival = self.through(i, t, size)
            if arrival is None:
                return None
            t, prev_to = arrival, c.to_node
        return t

    # -- route search --------------------------------------------------------------------------

    def best_route(
        self,
        source: int,
        destination: int,
        now_ms: int,
        *,
        size: int = 0,
        expiry_ms: int = NO_EXPIRY,
        excluded: frozenset[int] | set[int] = frozenset(),
        avoid_nodes: frozenset[int] | set[int] = frozenset(),
    ) -> CgrRoute | None:
        """The best route from ``source`` to ``destination`` for a bundle of ``size`` bytes
        ready at ``now_ms`` (ranked as the module says), or None when there is none.

        ``excluded`` contacts are not used; nor are contacts to ``avoid_nodes``.
        """
        if source == destination:
            raise LocalError(f"no route is needed from node {source} to itself")
        contacts = self.contacts
        by_node = self._by_node
        # entries: (key, hops, -route end, sequence, label, cursor position or -1 for a label);
        # a cursor stands for the sender's contacts from that position on, keyed by a lower
        # bound of what they can give, so each is looked at only when the search gets there
        heap: list[tuple[int, int, int, int, _Label, int]] = []
        seq = 0
        best_hops: dict[int, int] = {source: 0}
        root = _Label(source, -1, None, now_ms, 0, _NEVER)
        start_pos = self._first_pos(source, now_ms)
        if start_pos is not None:
            heap.append((now_ms, 1, -_NEVER, 0, root, start_pos))
        while heap:
            _, _, _, _, parent, pos = heapq.heappop(heap)
            if pos >= 0:
                lst = by_node[parent.node]
                ready = parent.arrival
                n = len(lst)
                while pos < n:
                    i = lst[pos]
                    pos += 1
                    c = contacts[i]
                    if c.end_ms <= ready or i in excluded or c.to_node in avoid_nodes:
                        continue
                    arrival = self.through(i, ready, size)
                    if arrival is None or arrival >= expiry_ms:
                        continue
                    to = c.to_node
                    hops = parent.hops + 1
                    if best_hops.get(to, _NEVER) <= hops:
                        continue  # that node was already reached as early, with no more hops
                    end = c.end_ms if c.end_ms < parent.end else parent.end
                    seq += 1
                    label = _Label(to, i, parent, arrival, hops, end)
                    heapq.heappush(heap, (arrival, hops, -end, seq, label, -1))
                    break
                if pos < n:
                    nxt = contacts[lst[pos]].start_ms
                    seq += 1
                    key = nxt if nxt > ready else ready
                    heapq.heappush(heap, (key, parent.hops + 1, -_NEVER, seq, parent, pos))
                continue
            label = parent
            if best_hops.get(label.node, _NEVER) <= label.hops:
                continue
            best_hops[label.node] = label.hops
            if label.node == destination:
                return self._route(label, destination)
            pos0 = self._first_pos(label.node, label.arrival)
            if pos0 is not None:
                seq += 1
                heapq.heappush(heap, (label.arrival, label.hops + 1, -_NEVER, seq, label, pos0))
        return None

    def routes(
        self,
        source: int,
        destination: int,
        now_ms: int,
        *,
        size: int = 0,
        expiry_ms: int = NO_EXPIRY,
        max_routes: int = 3,
        excluded: Iterable[int] = (),
        method: str = "exclusion",
    ) -> list[CgrRoute]:
        """Up to ``max_routes`` routes, best first: by SABR's contact exclusion (the default,
        see the module), or with ``method="yen"`` the ``max_routes`` best loop-free routes."""
        if method == "yen":
            return self._yen(source, destination, now_ms, size, expiry_ms, max_routes, set(excluded))
        if method != "exclusion":
            raise LocalError(f"unknown route list method {method!r} (exclusion or yen)")
        out: list[CgrRoute] = []
        gone = set(excluded)
        while len(out) < max_routes:
            r = self.best_route(source, destination, now_ms, size=size, expiry_ms=expiry_ms, excluded=gone)
            if r is None:
                break
            out.append(r)
            gone.add(self.limiting_contact(r))
        return out

    def _yen(
        self, source: int, destination: int, now_ms: int, size: int, expiry_ms: int, k: int, gone: set[int]
    ) -> list[CgrRoute]:
        """Yen's k shortest loop-free routes, ranked as the module says.

        A spur search starts at the node the root prefix reaches, when the bundle gets there;
        it may not use the contact that any route found so far with the same root takes from
        there, nor reach a node of the root prefix (so a spur never reuses the prefix's
        contacts or loops back through it).
        """
        first = self.best_route(source, destination, now_ms, size=size, expiry_ms=expiry_ms, excluded=gone)
        if first is None or k <= 0:
            return []
        found = [first]
        seen = {first.contacts}
        candidates: list[tuple[int, int, int, tuple[int, ...], CgrRoute]] = []
        while len(found) < k:
            last = found[-1].contacts
            for j in range(len(last)):
                root = last[:j]
                spur_node = source if j == 0 else self.contacts[root[-1]].to_node
                ready = now_ms if j == 0 else self.project(root, now_ms, size)
                if ready is None:
                    continue
                banned = set(gone)
                banned.update(r.contacts[j] for r in found if r.contacts[:j] == root and len(r.contacts) > j)
                root_nodes = {source} | {self.contacts[i].to_node for i in root}
                spur = self.best_route(
                    spur_node,
                    destination,
                    ready,
                    size=size,
                    expiry_ms=expiry_ms,
                    excluded=banned,
                    avoid_nodes=root_nodes - {spur_node},
                )
                if spur is None:
                    continue
                chain = root + spur.contacts
                if chain in seen:
                    continue
                seen.add(chain)
                route = self._make_route(chain, spur.arrival_ms, destination)
                heapq.heappush(candidates, (route.arrival_ms, route.hops, -route.to_ms, chain, route))
            if not candidates:
                break
            found.append(heapq.heappop(candidates)[-1])
        return found

    def limiting_contact(self, route: CgrRoute) -> int:
        """The contact that ends the route's validity: the first on it to end."""
        return min(route.contacts, key=lambda i: self.contacts[i].end_ms)

    def _first_pos(self, node: int, ready_ms: int) -> int | None:
        """Where in ``node``'s contacts to start looking at ``ready_ms`` (a contact that started
        up to its longest duration ago may still be open)."""
        starts = self._starts.get(node)
        if starts is None:
            return None
        pos = bisect.bisect_left(starts, ready_ms - self._max_dur[node])
        return pos if pos < len(starts) else None

    def _route(self, label: _Label, destination: int) -> CgrRoute:
        chain: list[int] = []
        node: _Label | None = label
        while node is not None and node.contact >= 0:
            chain.append(node.contact)
            node = node.parent
        chain.reverse()
        return self._make_route(tuple(chain), label.arrival, destination)

    def _make_route(self, chain: tuple[int, ...], arrival_ms: int, destination: int) -> CgrRoute:
        first = self.contacts[chain[0]]
        confidence = 1.0
        for i in chain:
            confidence *= self.contacts[i].confidence
        end = min(self.contacts[i].end_ms for i in chain)
        return CgrRoute(destination, first.to_node, chain, arrival_ms, first.start_ms, end, confidence)
