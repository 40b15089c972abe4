"""The routing interface of the bundle protocol agent, and static routing.

The agent asks a :class:`Router` where a bundle should go next; contact graph routing plugs in
later through the same interface, so the agent never changes. A router is pure: it is told the
time and which links are up, it never looks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from proxima.bpv7.eid import EID, DtnEID, IpnEID
from proxima.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from proxima.bpv7.bundle import Bundle

__all__ = ["Route", "Router", "StaticRoute", "StaticRouter", "eid_matches"]

_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (a frame per bundle)


class Route(NamedTuple):
    """A routing decision: candidate next-hop node IDs, best first.

    An empty ``next_hops`` with ``keep`` means "no link now, but one may come: hold the bundle";
    without ``keep`` it means "no known route" and the agent deletes the bundle (reason 6).
    ``fragment_bytes`` says a route exists but carries at most that many bytes: the agent splits
    the bundle (proactive fragmentation) into fragments that size, each routed on its own.
    """

    next_hops: tuple[EID, ...]
    keep: bool = True
    fragment_bytes: int | None = None


class Router(Protocol):
    """What the agent needs from a routing algorithm.

    A router that books capacity (contact graph routing) may also offer
    ``release(peer, size, now_ms)``: the agent calls it when a bundle routed to ``peer`` goes
    back to be routed again (a failed send, a contact that ended), so its volume is freed.
    """

    def route(self, bundle: Bundle, now_ms: int, size: int | None = None) -> Route:
        """Where ``bundle`` should go next, at DTN time ``now_ms``; ``size`` is its encoded size
        in bytes when the agent knows it."""
        ...

    def link_up(self, peer: EID, now_ms: int) -> None:
        """A convergence-layer session with ``peer`` (a node ID) is now up."""
        ...

    def link_down(self, peer: EID, now_ms: int) -> None:
        """The session with ``peer`` ended."""
        ...


def eid_matches(pattern: str, eid: EID) -> bool:
    """Whether ``eid`` matches a route pattern.

    Patterns: ``*`` (anything), an exact endpoint ID, ``ipn:N.*`` (any service on node N),
    ``dtn://node/*`` (any demux on that node), ``dtn://*`` and ``ipn:*`` (a whole scheme).
    """
    if pattern == "*":
        return True
    if pattern == "ipn:*":
        return isinstance(eid, IpnEID)
    if pattern == "dtn://*":
        return isinstance(eid, DtnEID) and not eid.is_none
    if pattern.endswith(".*") and pattern.startswith("ipn:"):
        return isinstance(eid, IpnEID) and pattern[4:-2] == str(eid.node)
    if pattern.endswith("/*") and pattern.startswith("dtn://"):
        return isinstance(eid, DtnEID) and not eid.is_none and eid.node_name == pattern[6:-2]
    return str(eid) == pattern


class StaticRoute(NamedTuple):
    """Bundles whose destination matches ``pattern`` go to ``via`` (a neighbour's node ID)."""

    pattern: str
    via: EID


class StaticRouter:
    """Neighbours plus static routes, first match wins; a neighbour is its own route, and so
    is any node with a session up now (a peer that dialled in unannounced, as HDTN's `bping`
    does, gets its replies over that session).

    A bundle for a node that is a known neighbour, or that a route sends through one, is held
    until that neighbour's link is up. A destination nothing matches has no known route.
    """

    def __init__(self, neighbours: Iterable[EID] = (), routes: Iterable[StaticRoute] = ()) -> None:
        self.neighbours: set[EID] = {n.node_id for n in neighbours}
        self.routes: list[StaticRoute] = []
        for r in routes:
            self.add_route(r.pattern, r.via)
        self.up: set[EID] = set()

    def add_route(self, pattern: str, via: EID) -> None:
        """Append a route; ``via`` must be a neighbour (it is added as one)."""
        if not pattern:
            raise ConfigError("a route needs a destination pattern")
        self.neighbours.add(via.node_id)
        self.routes.append(StaticRoute(pattern, via.node_id))

    def route(self, bundle: Bundle, now_ms: int, size: int | None = None) -> Route:
        """The neighbour (or peer with a session up) owning the destination, else the first
        matching route's next hop."""
        dest = bundle.primary.destination.node_id
        route: Route
        if dest in self.neighbours or dest in self.up:
            route = _new(Route, ((dest,), True, None))
            return route
        for r in self.routes:
            if eid_matches(r.pattern, bundle.primary.destination):
                route = _new(Route, ((r.via,), True, None))
                return route
        return Route((), keep=False)

    def link_up(self, peer: EID, now_ms: int) -> None:
        """Remember the link is up (static routing needs no recomputation)."""
        self.up.add(peer.node_id)

    def link_down(self, peer: EID, now_ms: int) -> None:
        """Remember the link is down."""
        self.up.discard(peer.node_id)
