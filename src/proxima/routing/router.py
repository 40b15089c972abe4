"""Contact graph routing behind the agent's :class:`~proxima.agent.routing.Router` interface.

:class:`ContactGraphRouter` answers the agent's ``route(bundle, now_ms)`` from a contact plan,
and tells the runtime when to open and close links (:meth:`~ContactGraphRouter.next_contact_change`,
:meth:`~ContactGraphRouter.peers_in_contact`). Like the agent it is pure: it is told the time.

Routes are cached per destination, SABR's way: a list of up to ``max_routes`` routes (computed
for an empty bundle, by contact exclusion), each checked for the actual bundle when asked
(its size, the volume booked since, its expiry); the list is computed again when the plan
changes, when one of its routes has ended, or when none of them can carry the bundle.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Final

from proxima.agent.agent import estimated_size, expiry_of
from proxima.agent.routing import Route
from proxima.bpv7.bundle import BundleFlag
from proxima.bpv7.eid import EID
from proxima.routing.cgr import NO_EXPIRY, CgrRoute, ContactGraph
from proxima.routing.contacts import ContactPlan, NodeMap

if TYPE_CHECKING:
    from proxima.bpv7.bundle import Bundle
    from proxima.routing.contacts import Contact

__all__ = ["ContactGraphRouter", "estimated_size"]

_NO_SPLIT: Final = int(BundleFlag.MUST_NOT_FRAGMENT | BundleFlag.ADMIN_RECORD)


def _splittable(bundle: Bundle) -> bool:
    """Whether the agent can fragment ``bundle``: allowed to, and its payload in memory (one
    held in the node's store, with an empty payload block here, is routed whole)."""
    return not bundle.primary.flags & _NO_SPLIT and len(bundle.payload) > 0


MIN_FRAGMENT_BYTES: Final = 4096
"""Below this much room on the best route a bundle waits for a later contact instead of being
split: fragments smaller than this would be mostly headers."""


class ContactGraphRouter:
    """The agent's router for a node with a contact plan.

    ``local`` is this node (its number or node ID); ``nodes`` names the nodes that are not
    ``ipn`` endpoints. ``route`` books the bundle on the first contact of the route it picks
    (so queued bundles consume capacity). With ``hold_until_contact`` a bundle whose best route
    starts with a future contact is held (``Route((), keep=True)``) rather than queued for that
    neighbour; the agent re-routes held bundles on every ``link_up``.
    """

    def __init__(
        self,
        plan: ContactPlan,
        local: int | EID,
        *,
        nodes: NodeMap | None = None,
        max_routes: int = 3,
        hold_until_contact: bool = False,
    ) -> None:
        self.nodes = NodeMap() if nodes is None else nodes
        if isinstance(local, EID):
            number = self.nodes.number(local)
            self.local = self.nodes.assign(local) if number is None else number
        else:
            self.local = local
        self.max_routes = max_routes
        self.hold_until_contact = hold_until_contact
        self.up: set[EID] = set()
        self.recomputed = 0
        """How many times a route list was computed (for tests and status)."""
        self._cache: dict[int, list[CgrRoute]] = {}
        self._graph = ContactGraph(plan)
        self._events: list[int] = []
        self._set_events()

    # -- the plan ------------------------------------------------------------------------------

    @property
    def plan(self) -> ContactPlan:
        """The contact plan in force."""
        return self._graph.plan

    @property
    def graph(self) -> ContactGraph:
        """The indexed plan and its booked volume."""
        return self._graph

    def set_plan(self, plan: ContactPlan) -> None:
        """Route with ``plan`` from now on; volume booked on contacts it keeps stays booked."""
        old = self._graph
        kept = {old.contacts[i]: v for i, v in old.booked.items()}
        self._graph = ContactGraph(plan)
        for i, c in enumerate(plan.contacts):
            if c in kept:
                self._graph.booked[i] = kept.pop(c)
        self._cache.clear()
        self._set_events()

    def _set_events(self) -> None:
        times: set[int] = set()
        for c in self._graph.contacts:
            if self.local in (c.from_node, c.to_node):
                times.update((c.start_ms, c.end_ms))
        self._events = sorted(times)

    # -- the Router protocol -------------------------------------------------------------------

    def route(self, bundle: Bundle, now_ms: int, size: int | None = None) -> Route:
        """The next hop(s) for ``bundle`` at ``now_ms``, best first (the first is booked).

        ``size`` is the bundle's encoded size when known (else estimated). No route at all to
        its destination (or an unknown destination): ``keep=False``, the agent deletes it.
        """
        dest = self.nodes.number(bundle.primary.destination)
        if dest is None:
            return Route((), keep=False)
        if dest == self.local:
            return Route((), keep=True)
        nbytes = estimated_size(bundle) if size is None else size
        expiry = expiry_of(bundle, now_ms)
        split = (
            self._split_size(dest, now_ms, nbytes, expiry)
            if nbytes > MIN_FRAGMENT_BYTES and _splittable(bundle)
            else None
        )
        chosen = self.routes_for(dest, now_ms, size=nbytes, expiry_ms=expiry)
        hops: list[EID] = []
        for r in chosen:
            eid = self.nodes.eid(r.next_node)
            if eid not in hops:
                hops.append(eid)
        if split is not None:
            # Nothing booked: the agent splits the bundle (each fragment is routed, and booked,
            # on its own), or, if it must not, books it whole on the first hop (see book()).
            return Route(tuple(hops), keep=True, fragment_bytes=split)
        if not chosen:
            # no route for the whole bundle: wait if some route exists at all (its contacts
            # may free up), else there is none
            return Route((), keep=bool(self.routes_for(dest, now_ms, size=0, expiry_ms=expiry)))
        best = chosen[0]
        if self.hold_until_contact and best.from_ms > now_ms:
            return Route((), keep=True)
        self._graph.book(best.contacts[0], nbytes)
        return Route(tuple(hops))

    def _split_size(self, dest: int, now_ms: int, size: int, expiry_ms: int) -> int | None:
        """Anticipatory fragmentation: when the earliest route to ``dest`` has room for part of
        a ``size``-byte bundle only (at least :data:`MIN_FRAGMENT_BYTES`), that room; else None.

        Sending that part now and the rest on later contacts delivers the whole sooner than
        waiting for a contact large enough for all of it.
        """
        earliest = self.routes_for(dest, now_ms, size=0, expiry_ms=expiry_ms)
        if not earliest:
            return None
        room = min(self._graph.residual_bytes(i, now_ms) for i in earliest[0].contacts)
        if MIN_FRAGMENT_BYTES <= room < size:
            return int(room)
        return None

    def link_up(self, peer: EID, now_ms: int) -> None:
        """Note the link is up (routing follows the plan, not the links)."""
        self.up.add(peer.node_id)

    def link_down(self, peer: EID, now_ms: int) -> None:
        """Note the link is down."""
        self.up.discard(peer.node_id)

    # -- queries -------------------------------------------------------------------------------

    def routes_for(
        self, destination: int, now_ms: int, *, size: int = 0, expiry_ms: int | None = None
    ) -> list[CgrRoute]:
        """The usable routes to ``destination`` for a bundle of ``size`` bytes expiring at
        ``expiry_ms``, best first, with their arrival projected for it at ``now_ms``."""
        g = self._graph
        cached = self._cache.get(destination)
        if cached is None or any(r.to_ms <= now_ms for r in cached):
            cached = self._compute(destination, now_ms)
        usable = self._evaluate(cached, now_ms, size, expiry_ms)
        if not usable and cached:
            # none of the listed routes can carry this bundle: search for it specifically
            fresh = g.routes(
                self.local,
                destination,
                now_ms,
                size=size,
                expiry_ms=NO_EXPIRY if expiry_ms is None else expiry_ms,
                max_routes=self.max_routes,
            )
            self.recomputed += 1
            usable = self._evaluate(fresh, now_ms, size, expiry_ms)
        return usable

    def _compute(self, destination: int, now_ms: int) -> list[CgrRoute]:
        g = self._graph
        for i in [i for i in g.booked if g.contacts[i].end_ms <= now_ms]:
            del g.booked[i]  # contacts over: what was booked on them no longer matters
        routes = g.routes(self.local, destination, now_ms, max_routes=self.max_routes)
        self.recomputed += 1
        self._cache[destination] = routes
        return routes

    def _evaluate(
        self, routes: list[CgrRoute], now_ms: int, size: int, expiry_ms: int | None
    ) -> list[CgrRoute]:
        out: list[CgrRoute] = []
        for r in routes:
            if r.to_ms <= now_ms:
                continue
            arrival = self._graph.project(r.contacts, now_ms, size)
            if arrival is None or (expiry_ms is not None and arrival >= expiry_ms):
                continue
            out.append(r._replace(arrival_ms=arrival))
        out.sort(key=lambda r: (r.arrival_ms, len(r.contacts), -r.to_ms))
        return out

    def invalidate(self) -> None:
        """Forget the cached routes (they are recomputed on the next query)."""
        self._cache.clear()

    # -- what the runtime needs ----------------------------------------------------------------

    def contacts_from(self, node: int | EID, now_ms: int) -> list[Contact]:
        """The contacts sent by ``node`` not yet over at ``now_ms``, by start time."""
        return self.plan.contacts_from(self._number(node), now_ms)

    def peers_in_contact(self, now_ms: int) -> list[EID]:
        """The neighbours this node has a contact to at ``now_ms`` (links to open), by number."""
        peers = {
            c.to_node
            for c in self.plan.contacts_from(self.local, now_ms)
            if c.start_ms <= now_ms < c.end_ms and c.to_node != self.local
        }
        return [self.nodes.eid(n) for n in sorted(peers)]

    def peers_reaching(self, now_ms: int) -> list[EID]:
        """The neighbours with a contact *to* this node at ``now_ms`` (links they may open)."""
        peers = {
            c.from_node
            for c in self._graph.contacts
            if c.to_node == self.local and c.from_node != self.local and c.start_ms <= now_ms < c.end_ms
        }
        return [self.nodes.eid(n) for n in sorted(peers)]

    def next_contact_change(self, now_ms: int) -> int | None:
        """The first time after ``now_ms`` when a contact from or to this node starts or ends."""
        i = bisect.bisect_right(self._events, now_ms)
        return self._events[i] if i < len(self._events) else None

    def book(self, peer: EID, size: int, now_ms: int) -> bool:
        """Note ``size`` bytes queued for or sent to ``peer``: booked on the contact to it in
        force at ``now_ms``, else the next one. False if there is no such contact."""
        number = self.nodes.number(peer)
        if number is None:
            return False
        for i in self.plan.indices_from(self.local):
            c = self._graph.contacts[i]
            if c.to_node == number and c.end_ms > now_ms:
                self._graph.book(i, size)
                return True
        return False

    def release(self, peer: EID, size: int, now_ms: int) -> bool:
        """Give back ``size`` bytes booked towards ``peer`` (a bundle routed there was re-routed
        or failed): taken off the first contact to it not yet over that has that much booked."""
        number = self.nodes.number(peer)
        if number is None:
            return False
        for i in self.plan.indices_from(self.local):
            c = self._graph.contacts[i]
            if c.to_node == number and c.end_ms > now_ms and self._graph.booked.get(i, 0.0) >= size:
                self._graph.release(i, size)
                return True
        return False

    def _number(self, node: int | EID) -> int:
        if isinstance(node, int):
            return node
        found = self.nodes.number(node)
        return self.nodes.assign(node) if found is None else found
