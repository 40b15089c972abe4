"""The discrete-event engine: agents, routers and links on a virtual clock.

**Links.** Each contact of the *link plan* (what really happens; by default the routing plan)
opens a one-way link from its sender to its receiver for its span. A link carries one bundle at
a time (transmissions are serialised per link direction): a bundle of ``size`` bytes takes
``ceil(size * 1000 / rate)`` ms and reaches the receiver the contact's one-way light time after
its last byte left. The sender's agent is told ``transmitted`` when the last byte leaves (the
convergence layer's acknowledgement is not modelled). When a contact ends, the bundle in flight
on it and every bundle still queued for that peer go back to the agent (``transmit_failed``)
to be routed again; so do bundles queued for a peer whose *planned* contact ended while the
link was down (a contact the plan promised and the link plan did not keep).

**Sizes.** A bundle carries a few bytes naming its message; the simulator knows each bundle's
real size (payload plus :data:`HEADER_BYTES`) and gives it to the router, to the links and to
the storage model, so a 200 MB video costs no memory.

**Modes.** Store-and-forward is the bundle protocol as it is. :class:`EndToEnd` models the
network before 2016: a node forwards a bundle only when a complete path to its destination
exists at that instant (a route of the plan whose every link is really up now), and deletes it
otherwise: nothing waits for a link in a node's storage. A sender whose bundle was deleted, at
its source or on the way, tries again later (see :class:`EndToEnd`), until the message's
lifetime is over.

Events at the same instant run in this order: transmissions ending, arrivals, contacts ending,
contacts starting, messages posted, expiry ticks; ties by insertion.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from proxima.agent.agent import (
    CLASS_BULK,
    CLASS_EXPEDITED,
    SMALL_PAYLOAD,
    BundleAgent,
    Deliver,
    Persist,
    Unpersist,
)
from proxima.agent.routing import Route
from proxima.errors import LocalError
from proxima.routing.contacts import NodeMap
from proxima.routing.router import ContactGraphRouter
from proxima.sim.model import DAY_MS, Message
from proxima.sim.report import REASONS, ContactUse, Hop, Journey, NodeStore, SimResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from proxima.agent.agent import Action, Identity
    from proxima.bpv7.bundle import Bundle
    from proxima.bpv7.eid import EID
    from proxima.routing.contacts import ContactPlan

__all__ = ["HEADER_BYTES", "EndToEnd", "Simulator"]

HEADER_BYTES: Final = 64
"""Bytes a bundle adds to its payload (primary block, payload block head, CRCs): an estimate."""

_TX_DONE, _ARRIVE, _LINK_DOWN, _PLAN_END, _LINK_UP, _SEND, _TICK = range(7)


@dataclass(frozen=True, slots=True)
class EndToEnd:
    """End-to-end mode: a bundle moves only along a path that exists end to end right now.

    ``retry_every_ms``: when a message's bundle was deleted for want of a complete path, its
    sender tries again this long after (inside the message's activity hours, if it has any);
    0 means at the next contact start anywhere in the network (the next moment a path may
    appear: an ideal sender), None means never (the message is lost).
    """

    retry_every_ms: int | None = 1_800_000


class _Link:
    """One direction of a contact: who sends, who receives, what is on the wire."""

    __slots__ = ("a", "b", "b_eid", "contact", "gen", "tx", "up")

    def __init__(self, a: int, b: int, b_eid: EID) -> None:
        self.a = a
        self.b = b
        self.b_eid = b_eid
        self.up = 0  # contacts of the link plan in force (they may overlap)
        self.contact = -1
        self.gen = 0  # bumped when the transmission in flight is cut, so its end event is stale
        # on the wire: (agent key, identity, size, bytes, start)
        self.tx: tuple[int, Identity | None, int, bytes, int] | None = None


class _SimRouter:
    """The node's :class:`ContactGraphRouter`, told each bundle's real size.

    It remembers what it booked for each bundle and gives it back when the bundle is routed
    again (the agent does not say so yet), and in end-to-end mode only accepts a route whose
    links are all up at that instant (the real links, not the plan: a path that "exists now").
    """

    def __init__(
        self,
        cgr: ContactGraphRouter,
        sizes: dict[Identity, int],
        end_to_end: Callable[[int, int], bool] | None = None,
    ) -> None:
        self.cgr = cgr
        self.sizes = sizes
        self.link_is_up = end_to_end  # end-to-end mode: is the link from one node to another up?
        self.originating = 0  # the size of the bundle being originated (not yet in ``sizes``)
        self.booked: dict[Identity, tuple[EID, int]] = {}

    def route(self, bundle: Bundle, now_ms: int, size: int | None = None) -> Route:
        """The CGR decision for ``bundle`` with its real size (see the class)."""
        ident = bundle.id
        nbytes = self.sizes.get(ident, self.originating)
        prev = self.booked.pop(ident, None)
        if prev is not None:
            self.cgr.release(prev[0], prev[1], now_ms)
        if self.link_is_up is None:
            route = self.cgr.route(bundle, now_ms, size=nbytes)
            if getattr(route, "fragment_bytes", None) is not None:
                route = self._whole(bundle, now_ms, nbytes)
        else:
            route = self._route_now(bundle, now_ms, nbytes)
        if route.next_hops:
            self.booked[ident] = (route.next_hops[0], nbytes)
        return route

    def _whole(self, bundle: Bundle, now_ms: int, size: int) -> Route:
        """The router proposed to split the bundle: the simulator's bundles carry no payload to
        split, so route it whole, as the agent does with a bundle that must not be fragmented."""
        cgr = self.cgr
        dest = cgr.nodes.number(bundle.primary.destination)
        if dest is None:
            return Route((), keep=False)
        p = bundle.primary
        chosen = cgr.routes_for(dest, now_ms, size=size, expiry_ms=p.creation_time + p.lifetime)
        if not chosen:
            return Route((), keep=True)  # a route exists (it offered a split): wait for room
        best = chosen[0]
        if cgr.hold_until_contact and best.from_ms > now_ms:
            return Route((), keep=True)
        cgr.graph.book(best.contacts[0], size)
        hops: list[EID] = []
        for r in chosen:
            eid = cgr.nodes.eid(r.next_node)
            if eid not in hops:
                hops.append(eid)
        return Route(tuple(hops))

    def _route_now(self, bundle: Bundle, now_ms: int, size: int) -> Route:
        """The first of CGR's routes whose every link is up at this instant, else none."""
        cgr = self.cgr
        up = self.link_is_up
        if up is None:
            return Route((), keep=False)
        dest = cgr.nodes.number(bundle.primary.destination)
        if dest is None:
            return Route((), keep=False)
        if dest == cgr.local:
            return Route((), keep=True)
        p = bundle.primary
        expiry = p.creation_time + p.lifetime
        contacts = cgr.graph.contacts
        for r in cgr.routes_for(dest, now_ms, size=size, expiry_ms=expiry):
            if all(
                contacts[i].start_ms <= now_ms and up(contacts[i].from_node, contacts[i].to_node)
                for i in r.contacts
            ):
                cgr.graph.book(r.contacts[0], size)
                return Route((cgr.nodes.eid(r.next_node),))
        return Route((), keep=False)

    def sent(self, ident: Identity) -> None:
        """The bundle left: what it booked was used."""
        self.booked.pop(ident, None)

    def release(self, peer: EID, size: int, now_ms: int) -> bool:
        """For an agent that gives back booked volume itself: forget our own record too."""
        for ident, (p, n) in list(self.booked.items()):
            if p == peer and n == size:
                del self.booked[ident]
                break
        return self.cgr.release(peer, size, now_ms)

    def link_up(self, peer: EID, now_ms: int) -> None:
        """Pass on to the contact graph router."""
        self.cgr.link_up(peer, now_ms)

    def link_down(self, peer: EID, now_ms: int) -> None:
        """Pass on to the contact graph router."""
        self.cgr.link_down(peer, now_ms)


class Simulator:
    """A network of bundle protocol agents over a contact plan, run on a virtual clock.

    ``plan`` is what every node's router knows; ``link_plan`` (default: ``plan``) is what the
    links really do, e.g. the plan less unplanned outages. ``messages`` are posted at their
    times; the run covers [``start_ms``, ``end_ms``) in DTN ms. ``names`` labels node numbers
    in the report; ``nodes`` maps numbers to endpoint IDs (``ipn:N.0`` otherwise).
    """

    def __init__(
        self,
        plan: ContactPlan,
        messages: Iterable[Message],
        *,
        start_ms: int,
        end_ms: int,
        link_plan: ContactPlan | None = None,
        nodes: NodeMap | None = None,
        names: Mapping[int, str] | None = None,
        end_to_end: EndToEnd | None = None,
        hold_until_contact: bool = True,
        max_routes: int = 3,
        tick_ms: int = 3_600_000,
    ) -> None:
        if end_ms <= start_ms:
            raise LocalError(f"a simulation must end after it starts ({start_ms} >= {end_ms} ms)")
        self.plan = plan
        self.link_plan = plan if link_plan is None else link_plan
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.end_to_end = end_to_end
        self.tick_ms = tick_ms
        self.nodes = NodeMap() if nodes is None else nodes
        self.names = dict(names or {})
        self.messages: list[Message] = sorted(messages, key=lambda m: m.at_ms)
        numbers = set(plan.nodes) | set(self.link_plan.nodes)
        for m in self.messages:
            numbers.update((m.source, m.destination))
        self.eids = {n: self.nodes.eid(n) for n in sorted(numbers)}
        self.number_of = {e: n for n, e in self.eids.items()}
        self.sizes: dict[Identity, int] = {}
        self.routers: dict[int, _SimRouter] = {}
        self.agents: dict[int, BundleAgent] = {}
        for n, eid in self.eids.items():
            cgr = ContactGraphRouter(
                plan, n, nodes=self.nodes, max_routes=max_routes, hold_until_contact=hold_until_contact
            )
            router = _SimRouter(cgr, self.sizes, None if end_to_end is None else self._is_up)
            self.routers[n] = router
            self.agents[n] = BundleAgent(eid, router)
        self.stores = {n: NodeStore() for n in self.eids}
        self.held: dict[int, dict[int, Identity]] = {n: {} for n in self.eids}  # node -> key -> identity
        self.msg_of: dict[Identity, tuple[int, int]] = {}  # identity -> (message, attempt)
        self.journeys = [self._journey(i, m) for i, m in enumerate(self.messages)]
        self.links: dict[tuple[int, int], _Link] = {}
        self.out_up: dict[int, list[_Link]] = {n: [] for n in self.eids}
        self.use: dict[int, ContactUse] = {}
        self._queue: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self.now = start_ms
        self.events = 0
        self._ran = False
        self._starts = sorted({c.start_ms for c in self.link_plan.contacts})

    # -- set-up ------------------------------------------------------------------------------

    def _journey(self, i: int, m: Message) -> Journey:
        return Journey(i, m.klass, m.source, m.destination, m.size, m.at_ms, in_reply_to=m.in_reply_to)

    def _is_up(self, a: int, b: int) -> bool:
        link = self.links.get((a, b))
        return link is not None and link.up > 0

    def _push(self, t: int, kind: int, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, kind, self._seq, data))

    def _link(self, a: int, b: int) -> _Link:
        link = self.links.get((a, b))
        if link is None:
            link = self.links[(a, b)] = _Link(a, b, self.eids[b])
        return link

    def _schedule(self) -> None:
        for i, c in enumerate(self.link_plan.contacts):
            if c.from_node == c.to_node or c.end_ms <= self.start_ms or c.start_ms >= self.end_ms:
                continue
            self._push(max(c.start_ms, self.start_ms), _LINK_UP, i)
            if c.end_ms < self.end_ms:
                self._push(c.end_ms, _LINK_DOWN, i)
        if self.link_plan is not self.plan:
            for c in self.plan.contacts:
                if c.from_node != c.to_node and self.start_ms < c.end_ms < self.end_ms:
                    self._push(c.end_ms, _PLAN_END, (c.from_node, c.to_node))
        for i, m in enumerate(self.messages):
            if self.start_ms <= m.at_ms < self.end_ms:
                self._push(m.at_ms, _SEND, i)
        self._push(self.start_ms + self.tick_ms, _TICK, None)

    # -- the run -----------------------------------------------------------------------------

    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        """Run to the end (once); ``progress`` is called now and then with the mission ms done."""
        if self._ran:
            raise LocalError("a simulator runs once: make another one")
        self._ran = True
        self._schedule()
        queue = self._queue
        handlers: tuple[Callable[[Any], None], ...] = (
            self._tx_done,
            self._arrive,
            self._link_down,
            self._plan_end,
            self._link_up,
            self._send,
            self._tick,
        )
        next_report = 0
        while queue and queue[0][0] < self.end_ms:
            t, kind, _, data = heapq.heappop(queue)
            self.now = t
            self.events += 1
            handlers[kind](data)
            if progress is not None and self.events >= next_report:
                progress(t - self.start_ms)
                next_report = self.events + 2000
        self.now = self.end_ms
        if progress is not None:
            progress(self.end_ms - self.start_ms)
        return self._result()

    def _result(self) -> SimResult:
        where: dict[Identity, int] = {}
        for n, keys in self.held.items():
            for ident in keys.values():
                where[ident] = n
        for link in self.links.values():
            if link.tx is not None and link.tx[1] is not None:
                where.setdefault(link.tx[1], link.a)
        for ident, (i, _) in self.msg_of.items():
            j = self.journeys[i]
            if j.status == "pending" and ident in where:
                j.at_node = where[ident]
        for j in self.journeys:
            if j.status == "pending" and j.at_node is None:
                j.at_node = j.source  # not sent yet, or waiting to try again
        mode = "store-and-forward" if self.end_to_end is None else "end-to-end"
        notes = []
        if self.end_to_end is not None:
            retry = self.end_to_end.retry_every_ms
            notes.append(
                "end-to-end: a bundle moves only along a complete path that exists now; "
                + (
                    "a deleted message is lost"
                    if retry is None
                    else "its sender tries again at the next contact start"
                    if retry == 0
                    else f"its sender tries again every {retry / 60000:g} min"
                )
            )
        return SimResult(
            mode,
            self.start_ms,
            self.end_ms,
            {n: self.names.get(n, str(e)) for n, e in self.eids.items()},
            self.journeys,
            self.link_plan.contacts,
            self.use,
            self.stores,
            self.events,
            notes,
        )

    # -- actions -----------------------------------------------------------------------------

    def _apply(self, node: int, actions: list[Action]) -> None:
        """Carry out the agent's actions, then start what its idle links can send (a bundle
        routed again produces no action but may be queued for one of them)."""
        held = self.held[node]
        store = self.stores[node]
        now = self.now
        for a in actions:
            if isinstance(a, Persist):
                held[a.key] = a.identity
                store.add(self.sizes.get(a.identity, HEADER_BYTES), now)
            elif isinstance(a, Unpersist):
                ident = held.pop(a.key, None)
                if ident is None:
                    continue
                store.remove(self.sizes.get(ident, HEADER_BYTES))
                if a.reason:
                    self._dropped(node, ident, a.reason)
            elif isinstance(a, Deliver):
                self._delivered(a.identity)
        for link in self.out_up[node]:
            if link.tx is None:
                self._start(link)

    def _delivered(self, ident: Identity) -> None:
        found = self.msg_of.get(ident)
        if found is None:
            return
        j = self.journeys[found[0]]
        if j.status == "delivered":
            return
        j.status, j.delivered_ms, j.reason = "delivered", self.now, ""
        m = self.messages[found[0]]
        r = m.reply
        if r is not None:
            answer = Message(
                self.now + r.delay_ms,
                m.destination,
                m.source,
                r.size,
                r.klass,
                r.lifetime_ms,
                r.priority,
                r.hours,
                None,
                found[0],
            )
            index = len(self.messages)
            self.messages.append(answer)
            self.journeys.append(self._journey(index, answer))
            if answer.at_ms < self.end_ms:
                self._push(answer.at_ms, _SEND, index)

    def _dropped(self, node: int, ident: Identity, reason: int) -> None:
        found = self.msg_of.get(ident)
        if found is None:
            return
        i, attempt = found
        j = self.journeys[i]
        j.drops.append((node, self.now, reason))
        if j.status == "delivered" or attempt != j.attempts:
            return
        e2e = self.end_to_end
        deadline = self.messages[i].at_ms + self.messages[i].lifetime_ms
        if e2e is not None and e2e.retry_every_ms is not None and reason != 1:
            t = self._retry_time(self.messages[i], e2e.retry_every_ms)
            if t is not None and t < deadline:
                j.reason = "waiting to try again"
                if t < self.end_ms:
                    self._push(t, _SEND, i)
                return
        j.status, j.reason = "lost", REASONS.get(reason, f"reason {reason}")

    def _retry_time(self, m: Message, every_ms: int) -> int | None:
        if every_ms == 0:
            k = bisect.bisect_right(self._starts, self.now)
            if k == len(self._starts):
                return None
            t = self._starts[k]
        else:
            t = self.now + every_ms
        return _within(t, m.hours)

    # -- events ------------------------------------------------------------------------------

    def _send(self, data: Any) -> None:
        i = int(data)
        m = self.messages[i]
        j = self.journeys[i]
        if j.status != "pending":
            return
        left = m.at_ms + m.lifetime_ms - self.now
        if left <= 0:
            j.status, j.reason = "lost", REASONS[1]
            return
        size = m.size + HEADER_BYTES
        router = self.routers[m.source]
        router.originating = size
        klass = m.priority
        if klass is None:
            klass = CLASS_EXPEDITED if m.size <= SMALL_PAYLOAD else CLASS_BULK
        j.attempts += 1
        bundle, actions = self.agents[m.source].send(
            self.eids[m.destination], str(i).encode(), now_ms=self.now, lifetime_ms=left, klass=klass
        )
        router.originating = 0
        ident = bundle.id
        self.sizes[ident] = size
        self.msg_of[ident] = (i, j.attempts)
        self._apply(m.source, actions)

    def _start(self, link: _Link) -> None:
        """Put the next bundle queued for the link's peer on the wire, if any."""
        agent = self.agents[link.a]
        t = agent.next_to_send(link.b_eid, self.now)
        if t is None:
            return
        ident = self.held[link.a].get(t.key)
        size = HEADER_BYTES if ident is None else self.sizes.get(ident, HEADER_BYTES)
        c = self.link_plan.contacts[link.contact]
        duration = math.ceil(size * 1000.0 / c.rate_bytes_s) if c.rate_bytes_s > 0 else 1 << 62
        link.tx = (t.key, ident, size, t.data, self.now)
        found = None if ident is None else self.msg_of.get(ident)
        if found is not None:
            j = self.journeys[found[0]]
            if j.first_sent_ms is None and link.a == j.source:
                j.first_sent_ms = self.now
        self._push(self.now + duration, _TX_DONE, (link, link.gen))

    def _tx_done(self, data: Any) -> None:
        link, gen = data
        if gen != link.gen or link.tx is None:
            return
        key, ident, size, payload, started = link.tx
        link.tx = None
        owlt = self.link_plan.owlt_ms(link.a, link.b, started)
        u = self.use.setdefault(link.contact, ContactUse())
        u.bytes += size
        u.bundles += 1
        u.busy_ms += self.now - started
        found = None
        if ident is not None:
            self.routers[link.a].sent(ident)
            found = self.msg_of.get(ident)
        if found is not None:
            self.journeys[found[0]].hops.append(
                Hop(found[1], link.a, link.b, link.contact, started, self.now, self.now + owlt)
            )
        self._push(self.now + owlt, _ARRIVE, (link.a, link.b, payload))
        self._apply(link.a, self.agents[link.a].transmitted(key, self.now))
        if link.tx is None and link.up:
            self._start(link)

    def _arrive(self, data: Any) -> None:
        a, b, payload = data
        self._apply(b, self.agents[b].receive(payload, now_ms=self.now, from_peer=self.eids[a]))

    def _link_up(self, data: Any) -> None:
        i = int(data)
        c = self.link_plan.contacts[i]
        link = self._link(c.from_node, c.to_node)
        link.up += 1
        link.contact = i
        if link.up == 1:
            self.out_up[link.a].append(link)
            self._apply(link.a, self.agents[link.a].link_up(link.b_eid, self.now))
        if link.tx is None:
            self._start(link)

    def _link_down(self, data: Any) -> None:
        i = int(data)
        c = self.link_plan.contacts[i]
        link = self._link(c.from_node, c.to_node)
        link.up -= 1
        if link.up > 0:
            return
        self.out_up[link.a].remove(link)
        failed: list[int] = []
        if link.tx is not None:
            key, ident, _, _, started = link.tx
            link.tx = None
            link.gen += 1
            u = self.use.setdefault(link.contact, ContactUse())
            u.cut += 1
            u.busy_ms += self.now - started
            found = None if ident is None else self.msg_of.get(ident)
            if found is not None:
                self.journeys[found[0]].hops.append(
                    Hop(found[1], link.a, link.b, link.contact, started, self.now, self.now, ok=False)
                )
            failed.append(key)
        agent = self.agents[link.a]
        self._apply(link.a, agent.link_down(link.b_eid, self.now))
        self._reroute(link, failed)

    def _plan_end(self, data: Any) -> None:
        a, b = data
        link = self.links.get((a, b))
        if link is None or not link.up:
            self._reroute(link if link is not None else self._link(a, b), [])

    def _reroute(self, link: _Link, failed: list[int]) -> None:
        """Give back to the agent what was in flight or queued for the link's peer."""
        agent = self.agents[link.a]
        keys = list(failed)
        while (t := agent.next_to_send(link.b_eid, self.now)) is not None:
            keys.append(t.key)
        held = self.held[link.a]
        for key in keys:
            ident = held.get(key)
            found = None if ident is None else self.msg_of.get(ident)
            if found is not None:
                self.journeys[found[0]].reroutes += 1
            self._apply(link.a, agent.transmit_failed(key, self.now))

    def _tick(self, _: Any) -> None:
        for n, agent in self.agents.items():
            self._apply(n, agent.tick(self.now))
        self._push(self.now + self.tick_ms, _TICK, None)


def _within(t: int, hours: tuple[int, int] | None) -> int:
    """``t``, or the next start of the daily window ``hours`` (ms of the UTC day) if outside it."""
    if hours is None:
        return t
    start, end = hours
    day = t - t % DAY_MS
    tod = t - day
    if start <= end:
        if start <= tod < end:
            return t
        return day + start if tod < start else day + DAY_MS + start
    if tod >= start or tod < end:  # a window across midnight
        return t
    return day + start
