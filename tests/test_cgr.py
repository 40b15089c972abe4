"""Contact graph routing: hand-checked graphs, known failure modes of other implementations,
a cross-check against brute force on random plans, and the router behind the agent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.agent.agent import BundleAgent
from proxima.agent.routing import Route, Router
from proxima.bpv7 import EID, Bundle, PrimaryBlock, encode_bundle, payload_block
from proxima.errors import LocalError
from proxima.routing import (
    NO_EXPIRY,
    CgrRoute,
    Contact,
    ContactGraph,
    ContactGraphRouter,
    ContactPlan,
    NodeMap,
    Range,
    estimated_size,
    read_hdtn,
)

S = 1000  # one second in ms
T0 = 780_000_000_000  # a DTN time in 2024


def plan_of(
    *rows: tuple[int, int, float, float, float], owlt_s: float = 0.0, rate: float = 1e6
) -> ContactPlan:
    """Contacts ``(from, to, start_s, end_s[, rate])`` from T0, all with the same light time."""
    contacts = []
    ranges = []
    for row in rows:
        frm, to, start, end = row[:4]
        r = row[4] if len(row) > 4 else rate
        contacts.append(Contact(frm, to, T0 + round(start * S), T0 + round(end * S), r))
        ranges.append(Range(frm, to, T0 + round(start * S), T0 + round(end * S), round(owlt_s * S)))
    return ContactPlan(contacts, ranges)


def hops_of(g: ContactGraph, route: CgrRoute) -> list[tuple[int, int, int]]:
    """A route as (from, to, start second after T0) per contact."""
    return [
        (g.contacts[i].from_node, g.contacts[i].to_node, (g.contacts[i].start_ms - T0) // S)
        for i in route.contacts
    ]


# -- hand-checked graphs ------------------------------------------------------------------------

# HDTN's module/router/contact_plans/cgrTutorial.json (the pyCGR tutorial plan), whose expected
# route 1 -> 5 HDTN's common/cgr/test/TestDijkstra.cpp checks: 1->3, 3->4, 4->5 (the first 4->5).
CGR_TUTORIAL = [
    (1, 2, 0, 60), (2, 1, 0, 60), (2, 3, 0, 60), (3, 2, 0, 60), (1, 3, 0, 60), (3, 1, 0, 60),
    (3, 4, 0, 30), (4, 3, 0, 30), (1, 5, 10, 20), (5, 1, 10, 20), (4, 5, 0, 10), (5, 4, 0, 10),
    (4, 5, 30, 40), (5, 4, 30, 40), (4, 5, 50, 60), (5, 4, 50, 60),
]  # fmt: skip

ROUTING_TEST = [
    (100, 1, 0, 120), (1, 2, 0, 120), (2, 4, 11, 150), (4, 200, 0, 150),
    (1, 3, 11, 150), (1, 2, 17, 200), (2, 4, 20, 250), (3, 4, 25, 300),
]  # fmt: skip


def hdtn_json(rows: list[tuple[int, int, int, int]]) -> str:
    items = ",".join(
        f'{{"contact": {i}, "source": {a}, "dest": {b}, "startTime": {s}, "endTime": {e}, '
        f'"rateBitsPerSec": 1000000, "owlt": 1}}'
        for i, (a, b, s, e) in enumerate(rows)
    )
    return f'{{"contacts": [{items}]}}'


def test_hdtn_tutorial_route() -> None:
    g = ContactGraph(read_hdtn(hdtn_json(CGR_TUTORIAL), epoch_ms=T0).plan)
    r = g.best_route(1, 5, T0)
    assert r is not None
    assert hops_of(g, r) == [(1, 3, 0), (3, 4, 0), (4, 5, 0)]
    assert r.next_node == 3
    assert r.arrival_ms == T0 + 3 * S  # three hops of one light second each
    assert r.to_ms == T0 + 10 * S  # 4->5 ends first
    assert r.from_ms == T0


def test_hdtn_routing_test_plan() -> None:
    g = ContactGraph(read_hdtn(hdtn_json(ROUTING_TEST), epoch_ms=T0).plan)
    r = g.best_route(1, 4, T0)
    assert r is not None
    assert hops_of(g, r) == [(1, 2, 0), (2, 4, 11)]
    assert r.arrival_ms == T0 + 12 * S
    assert g.best_route(4, 1, T0) is None  # no contact ever leads back to 1


def test_transmission_time_and_light_time() -> None:
    # 1000 bytes at 100 bytes/s take 10 s; then 2 s of light time
    g = ContactGraph(plan_of((1, 2, 5, 100, 100.0), owlt_s=2))
    r = g.best_route(1, 2, T0, size=1000)
    assert r is not None
    assert r.arrival_ms == T0 + (5 + 10 + 2) * S
    # two hops: the second starts sending when the last byte arrived
    g = ContactGraph(plan_of((1, 2, 0, 100, 100.0), (2, 3, 0, 100, 50.0), owlt_s=1))
    r = g.best_route(1, 3, T0, size=500)
    assert r is not None
    assert r.arrival_ms == T0 + (5 + 1 + 10 + 1) * S


def test_bundle_too_big_for_contact() -> None:
    g = ContactGraph(plan_of((1, 2, 0, 10, 100.0), (1, 2, 20, 100, 100.0)))
    r = g.best_route(1, 2, T0, size=1500)  # 15 s of sending: only the second contact is long enough
    assert r is not None
    assert hops_of(g, r) == [(1, 2, 20)]
    assert g.best_route(1, 2, T0, size=100_000) is None


def test_ranges_follow_ion_rule() -> None:
    c = [Contact(1, 2, T0, T0 + 100 * S, 1e6), Contact(2, 1, T0, T0 + 100 * S, 1e6)]
    # a range from the lower node implies the reverse
    g = ContactGraph(ContactPlan(c, [Range(1, 2, T0, T0 + 100 * S, 5 * S)]))
    assert g.best_route(2, 1, T0).arrival_ms == T0 + 5 * S  # type: ignore[union-attr]
    # a range from the higher node says nothing about the reverse
    g = ContactGraph(ContactPlan(c, [Range(2, 1, T0, T0 + 100 * S, 5 * S)]))
    assert g.best_route(1, 2, T0).arrival_ms == T0  # type: ignore[union-attr]
    assert g.best_route(2, 1, T0).arrival_ms == T0 + 5 * S  # type: ignore[union-attr]


def test_source_equal_destination_is_refused() -> None:
    g = ContactGraph(plan_of((1, 2, 0, 10)))
    with pytest.raises(LocalError):
        g.best_route(1, 1, T0)


def test_loopback_and_zero_rate_contacts_are_not_used() -> None:
    g = ContactGraph(plan_of((1, 1, 0, 100), (1, 2, 0, 100, 0.0)))
    assert g.best_route(1, 2, T0) is None


def test_ongoing_contact_usable_late_and_past_contacts_not() -> None:
    g = ContactGraph(plan_of((1, 2, 0, 100), (1, 2, 200, 300)))
    r = g.best_route(1, 2, T0 + 50 * S)
    assert r is not None and r.arrival_ms == T0 + 50 * S
    r = g.best_route(1, 2, T0 + 150 * S)
    assert r is not None and r.arrival_ms == T0 + 200 * S
    assert g.best_route(1, 2, T0 + 300 * S) is None


# -- failure modes reported against other implementations -----------------------------------


def test_destination_number_lower_than_source() -> None:
    g = ContactGraph(plan_of((10, 7, 0, 50), (7, 2, 10, 60), (10, 1, 0, 5), (1, 0, 0, 100)))
    r = g.best_route(10, 2, T0)
    assert r is not None and hops_of(g, r) == [(10, 7, 0), (7, 2, 10)]
    r = g.best_route(10, 0, T0)  # node 0, lowest of all
    assert r is not None and hops_of(g, r) == [(10, 1, 0), (1, 0, 0)]


def test_volume_is_decremented_by_booking() -> None:
    g = ContactGraph(plan_of((1, 2, 0, 10, 100.0), (1, 2, 20, 30, 100.0)))  # 1000 bytes each
    r1 = g.best_route(1, 2, T0, size=600)
    assert r1 is not None and hops_of(g, r1) == [(1, 2, 0)]
    g.book(r1.contacts[0], 600)
    r2 = g.best_route(1, 2, T0, size=600)
    assert r2 is not None and hops_of(g, r2) == [(1, 2, 20)]  # 400 bytes left on the first
    assert g.residual_bytes(r1.contacts[0], T0) == pytest.approx(400)
    r3 = g.best_route(1, 2, T0, size=300)  # still fits behind what is booked, 6 s in
    assert r3 is not None and r3.arrival_ms == T0 + 9 * S
    g.release(r1.contacts[0], 600)
    assert g.residual_bytes(r1.contacts[0], T0) == pytest.approx(1000)


def test_router_books_each_bundle_so_queued_bundles_consume_capacity() -> None:
    plan = plan_of((1, 2, 0, 10, 100.0), (1, 3, 0, 100, 100.0), (3, 2, 50, 100, 100.0))
    router = ContactGraphRouter(plan, 1)
    hops = [router.route(bundle_to(2, 100), T0, size=400).next_hops[0] for _ in range(3)]
    # the direct contact carries two 400-byte bundles (1000 bytes), the third goes via node 3
    assert hops == [EID.parse("ipn:2.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")]


def test_hop_count_breaks_arrival_ties() -> None:
    # 1->2->3->4 and 1->5->4 both arrive when the last contacts open, at 100 s
    g = ContactGraph(plan_of((1, 2, 0, 10), (2, 3, 0, 10), (3, 4, 100, 200), (1, 5, 0, 10), (5, 4, 100, 200)))
    r = g.best_route(1, 4, T0)
    assert r is not None and hops_of(g, r) == [(1, 5, 0), (5, 4, 100)]


def test_hop_count_tie_even_when_the_shorter_path_reaches_the_relay_later() -> None:
    # node 9 is reached at 2 s over three hops, or at 20 s over one; both then wait for 9->4 at 100 s.
    # A search keeping one label per contact (earliest arrival only) returns the four-hop route.
    g = ContactGraph(
        plan_of((1, 2, 0, 300), (2, 3, 1, 300), (3, 9, 2, 300), (1, 9, 20, 300), (9, 4, 100, 200))
    )
    r = g.best_route(1, 4, T0)
    assert r is not None and hops_of(g, r) == [(1, 9, 20), (9, 4, 100)]
    assert r.arrival_ms == T0 + 100 * S


def test_later_route_end_breaks_remaining_ties() -> None:
    # two two-hop routes arriving together at 10 s: the one valid longer (to 50 s, not 40 s) wins
    g = ContactGraph(plan_of((1, 2, 0, 40), (2, 4, 10, 60), (1, 3, 0, 50), (3, 4, 10, 90)))
    r = g.best_route(1, 4, T0)
    assert r is not None and hops_of(g, r) == [(1, 3, 0), (3, 4, 10)]
    assert r.to_ms == T0 + 50 * S
    g = ContactGraph(plan_of((1, 2, 0, 80), (2, 4, 10, 60), (1, 3, 0, 50), (3, 4, 10, 55)))
    r = g.best_route(1, 4, T0)
    assert r is not None and hops_of(g, r) == [(1, 2, 0), (2, 4, 10)]


def check_route(g: ContactGraph, r: CgrRoute, source: int) -> None:
    """A route is a joined-up chain from ``source`` that visits no node twice."""
    nodes = [source]
    for i in r.contacts:
        c = g.contacts[i]
        assert c.from_node == nodes[-1]
        nodes.append(c.to_node)
    assert len(set(nodes)) == len(nodes), f"loop in {nodes}"
    assert len(set(r.contacts)) == len(r.contacts)
    assert r.to_ms == min(g.contacts[i].end_ms for i in r.contacts)


def test_alternative_routes_never_reuse_the_root_path_contacts_or_loop() -> None:
    # Yen-style spur searches that forget the root path's nodes produce routes that go back
    # through the root prefix (1->2->1->3...) or reuse its contacts; contact exclusion must not.
    g = ContactGraph(
        plan_of(
            (1, 2, 0, 100), (2, 1, 0, 100), (2, 3, 0, 40), (1, 3, 5, 100), (3, 4, 0, 100),
            (2, 4, 50, 100), (3, 2, 0, 100), (4, 3, 0, 100),
        )
    )  # fmt: skip
    routes = g.routes(1, 4, T0, max_routes=10)
    assert len(routes) >= 3
    for r in routes:
        check_route(g, r, 1)
    assert len({r.contacts for r in routes}) == len(routes)
    assert [hops_of(g, r) for r in routes][:2] == [[(1, 2, 0), (2, 3, 0), (3, 4, 0)], [(1, 3, 5), (3, 4, 0)]]
    # each alternative avoids the limiting contacts of the routes before it
    excluded: set[int] = set()
    for r in routes:
        assert not excluded & set(r.contacts)
        excluded.add(g.limiting_contact(r))
    arrivals = [r.arrival_ms for r in routes]
    assert arrivals == sorted(arrivals)


def test_yen_on_the_hdtn_tutorial_finds_its_seven_routes() -> None:
    # HDTN's common/cgr/test/TestYen.cpp: 7 routes 1 -> 5, best delivery times 3, 4, 11, 31, 31,
    # 51, 51 s, the first three through 3, 2 and 5
    g = ContactGraph(read_hdtn(hdtn_json(CGR_TUTORIAL), epoch_ms=T0).plan)
    routes = g.routes(1, 5, T0, max_routes=10, method="yen")
    assert [(r.arrival_ms - T0) // S for r in routes] == [3, 4, 11, 31, 31, 51, 51]
    assert [r.next_node for r in routes[:3]] == [3, 2, 5]
    for r in routes:
        check_route(g, r, 1)
    assert len({r.contacts for r in routes}) == 7
    # contact exclusion finds fewer, faster: each new route gives up a whole contact
    assert [(r.arrival_ms - T0) // S for r in g.routes(1, 5, T0, max_routes=10)] == [3, 11, 31]
    with pytest.raises(LocalError):
        g.routes(1, 5, T0, method="dijkstra")


def test_yen_spur_never_reuses_the_root_prefix() -> None:
    g = ContactGraph(
        plan_of(
            (1, 2, 0, 100), (2, 1, 0, 100), (2, 3, 0, 40), (1, 3, 5, 100), (3, 4, 0, 100),
            (2, 4, 50, 100), (3, 2, 0, 100), (4, 3, 0, 100), (3, 1, 0, 100),
        )
    )  # fmt: skip
    routes = g.routes(1, 4, T0, max_routes=20, method="yen")
    assert len(routes) == len(all_routes(g, 1, 4, T0, 0))
    for r in routes:
        check_route(g, r, 1)
    assert len({r.contacts for r in routes}) == len(routes)


def test_expiry_makes_late_routes_ineligible() -> None:
    g = ContactGraph(plan_of((1, 2, 0, 10), (2, 3, 50, 60), (1, 3, 100, 200)))
    assert g.best_route(1, 3, T0, expiry_ms=T0 + 50 * S) is None  # arrives at 50 s: too late
    r = g.best_route(1, 3, T0, expiry_ms=T0 + 51 * S)
    assert r is not None and r.arrival_ms == T0 + 50 * S
    routes = g.routes(1, 3, T0, expiry_ms=T0 + 60 * S)
    assert len(routes) == 1  # the direct contact (100 s) is past the expiry


# -- cross-check against brute force ----------------------------------------------------------


def brute_earliest(g: ContactGraph, source: int, dest: int, now: int, size: int, expiry: int) -> int | None:
    """Earliest arrival by relaxing every contact until nothing changes (no heap, no labels)."""
    best = {source: now}
    changed = True
    while changed:
        changed = False
        for i, c in enumerate(g.contacts):
            if c.from_node == c.to_node or c.from_node not in best:
                continue
            a = g.through(i, best[c.from_node], size)
            if a is not None and a < expiry and a < best.get(c.to_node, math.inf):
                best[c.to_node] = a
                changed = True
    return best.get(dest) if dest != source else None


def brute_best(g: ContactGraph, source: int, dest: int, now: int, size: int) -> tuple[int, int] | None:
    """The least (arrival, hops) over every loop-free route, by exhaustive search."""
    found = all_routes(g, source, dest, now, size)
    return found[0] if found else None


def all_routes(g: ContactGraph, source: int, dest: int, now: int, size: int) -> list[tuple[int, int]]:
    """(arrival, hops) of every loop-free route, by exhaustive search."""
    found: list[tuple[int, int]] = []

    def walk(node: int, t: int, seen: frozenset[int], hops: int) -> None:
        if node == dest:
            found.append((t, hops))
            return
        for i, c in enumerate(g.contacts):
            if c.from_node == node and c.to_node not in seen and c.from_node != c.to_node:
                a = g.through(i, t, size)
                if a is not None:
                    walk(c.to_node, a, seen | {c.to_node}, hops + 1)

    walk(source, now, frozenset({source}), 0)
    return sorted(found)


@st.composite
def random_plans(draw: st.DrawFn, max_nodes: int = 6, max_contacts: int = 14) -> ContactPlan:
    n = draw(st.integers(2, max_nodes))
    contacts = []
    ranges = []
    for _ in range(draw(st.integers(0, max_contacts))):
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(0, n - 1))
        start = draw(st.integers(0, 100)) * S
        end = start + draw(st.integers(1, 60)) * S
        rate = draw(st.sampled_from([10.0, 100.0, 1000.0, 1e6]))
        contacts.append(Contact(a, b, T0 + start, T0 + end, rate))
        if draw(st.booleans()):
            ranges.append(Range(a, b, T0 + start, T0 + end, draw(st.integers(0, 5)) * S))
    return ContactPlan(contacts, ranges)


@settings(max_examples=300, deadline=None)
@given(
    random_plans(),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(0, 50),
    st.sampled_from([0, 1, 100, 5000]),
    st.sampled_from([NO_EXPIRY, T0 + 40 * S, T0 + 120 * S]),
)
def test_best_arrival_equals_brute_force(
    plan: ContactPlan, src: int, dst: int, at_s: int, size: int, expiry: int
) -> None:
    if src == dst:
        return
    g = ContactGraph(plan)
    r = g.best_route(src, dst, T0 + at_s * S, size=size, expiry_ms=expiry)
    expected = brute_earliest(g, src, dst, T0 + at_s * S, size, expiry)
    if expected is None:
        assert r is None
        return
    assert r is not None
    assert r.arrival_ms == expected
    check_route(g, r, src)
    assert g.project(r.contacts, T0 + at_s * S, size) == r.arrival_ms


@settings(max_examples=200, deadline=None)
@given(
    random_plans(max_nodes=5, max_contacts=10),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([0, 500]),
)
def test_best_route_is_least_arrival_then_hops(plan: ContactPlan, src: int, dst: int, size: int) -> None:
    if src == dst:
        return
    g = ContactGraph(plan)
    r = g.best_route(src, dst, T0, size=size)
    expected = brute_best(g, src, dst, T0, size)
    assert (None if r is None else (r.arrival_ms, r.hops)) == expected


@settings(max_examples=150, deadline=None)
@given(
    random_plans(max_nodes=5, max_contacts=10),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([0, 500]),
)
def test_yen_gives_the_k_best_routes(plan: ContactPlan, src: int, dst: int, size: int) -> None:
    if src == dst:
        return
    g = ContactGraph(plan)
    routes = g.routes(src, dst, T0, size=size, max_routes=6, method="yen")
    expected = all_routes(g, src, dst, T0, size)[:6]
    assert [(r.arrival_ms, r.hops) for r in routes] == expected
    assert len({r.contacts for r in routes}) == len(routes)
    for r in routes:
        check_route(g, r, src)
        assert g.project(r.contacts, T0, size) == r.arrival_ms


@settings(max_examples=100, deadline=None)
@given(random_plans(), st.integers(0, 5), st.integers(0, 5))
def test_alternatives_are_distinct_loop_free_and_ranked(plan: ContactPlan, src: int, dst: int) -> None:
    if src == dst:
        return
    g = ContactGraph(plan)
    routes = g.routes(src, dst, T0, max_routes=5)
    assert len({r.contacts for r in routes}) == len(routes)
    for r in routes:
        check_route(g, r, src)
    keys = [(r.arrival_ms, r.hops) for r in routes]
    assert keys == sorted(keys)


# -- the router behind the agent ----------------------------------------------------------------


def bundle_to(node: int, payload_size: int, *, lifetime_ms: int = 86_400_000, created: int = T0) -> Bundle:
    primary = PrimaryBlock(
        destination=EID.parse(f"ipn:{node}.1"),
        source=EID.parse("ipn:1.1"),
        report_to=EID.parse("dtn:none"),
        creation_time=created,
        sequence=0,
        lifetime=lifetime_ms,
        crc_type=2,
    )
    return Bundle(primary, (payload_block(b"x" * payload_size, crc_type=2),))


def test_router_satisfies_the_protocol_and_routes() -> None:
    router: Router = ContactGraphRouter(read_hdtn(hdtn_json(CGR_TUTORIAL), epoch_ms=T0).plan, 1)
    assert router.route(bundle_to(5, 10), T0) == Route((EID.parse("ipn:3.0"), EID.parse("ipn:5.0")))
    assert router.route(bundle_to(77, 10), T0) == Route((), keep=False)  # no contact reaches 77
    router.link_up(EID.parse("ipn:3.0"), T0)
    router.link_down(EID.parse("ipn:3.0"), T0)


def test_router_unknown_destination_and_expired_bundle() -> None:
    router = ContactGraphRouter(plan_of((1, 2, 100, 200)), 1)
    assert router.route(bundle_to(2, 10, lifetime_ms=50 * S), T0) == Route((), keep=False)
    assert router.route(bundle_to(2, 10), T0) == Route((EID.parse("ipn:2.0"),))
    dtn = Bundle(
        bundle_to(2, 1).primary._replace(destination=EID.parse("dtn://nowhere/x")), bundle_to(2, 1).blocks
    )
    assert router.route(dtn, T0) == Route((), keep=False)


def test_router_dtn_names_through_node_map() -> None:
    nodes = NodeMap({2: EID.parse("dtn://ground/")})
    router = ContactGraphRouter(plan_of((1, 2, 0, 100)), EID.parse("ipn:1.0"), nodes=nodes)
    b = bundle_to(2, 1)
    b = Bundle(b.primary._replace(destination=EID.parse("dtn://ground/posts")), b.blocks)
    assert router.route(b, T0) == Route((EID.parse("dtn://ground/"),))


def test_router_holds_until_contact_when_asked() -> None:
    router = ContactGraphRouter(plan_of((1, 2, 100, 200)), 1, hold_until_contact=True)
    assert router.route(bundle_to(2, 10), T0) == Route((), keep=True)
    assert router.graph.booked == {}
    assert router.route(bundle_to(2, 10), T0 + 100 * S) == Route((EID.parse("ipn:2.0"),))
    assert sum(router.graph.booked.values()) > 0


def test_router_caches_and_recomputes() -> None:
    router = ContactGraphRouter(plan_of((1, 2, 0, 100), (2, 3, 0, 50), (1, 3, 200, 300)), 1)
    for _ in range(5):
        assert router.route(bundle_to(3, 10), T0).next_hops[0] == EID.parse("ipn:2.0")
    assert router.recomputed == 1
    # the route via 2 ends at 50 s: the list is computed again, and the direct contact remains
    assert router.route(bundle_to(3, 10), T0 + 60 * S).next_hops == (EID.parse("ipn:3.0"),)
    assert router.recomputed == 2
    router.set_plan(plan_of((1, 3, 0, 300)))
    assert router.route(bundle_to(3, 10), T0 + 60 * S).next_hops == (EID.parse("ipn:3.0"),)
    assert router.recomputed == 3


def test_router_set_plan_keeps_bookings_on_kept_contacts() -> None:
    plan = plan_of((1, 2, 0, 10, 100.0))
    router = ContactGraphRouter(plan, 1)
    router.route(bundle_to(2, 10), T0, size=600)
    router.set_plan(plan.replace(contacts=[*plan.contacts, Contact(1, 3, T0, T0 + S, 10.0)]))
    assert sum(router.graph.booked.values()) == 600


def test_router_contact_times_for_the_runtime() -> None:
    router = ContactGraphRouter(plan_of((1, 2, 10, 20), (3, 1, 15, 30), (2, 3, 0, 100), (1, 3, 40, 50)), 1)
    assert router.next_contact_change(T0) == T0 + 10 * S
    assert router.next_contact_change(T0 + 10 * S) == T0 + 15 * S
    assert router.next_contact_change(T0 + 50 * S) is None
    assert router.peers_in_contact(T0 + 12 * S) == [EID.parse("ipn:2.0")]
    assert router.peers_in_contact(T0 + 25 * S) == []
    # contacts the other way: 3 -> 1 from 15 to 30 s (2 -> 3 does not concern this node)
    assert router.peers_reaching(T0 + 12 * S) == []
    assert router.peers_reaching(T0 + 25 * S) == [EID.parse("ipn:3.0")]
    assert router.peers_reaching(T0 + 30 * S) == []
    assert [c.to_node for c in router.contacts_from(1, T0 + 15 * S)] == [2, 3]
    assert [c.to_node for c in router.contacts_from(EID.parse("ipn:1.0"), T0 + 25 * S)] == [3]
    assert router.book(EID.parse("ipn:3.0"), 500, T0 + 25 * S)
    assert not router.book(EID.parse("ipn:9.0"), 500, T0)
    assert not router.release(EID.parse("ipn:3.0"), 600, T0 + 25 * S)  # more than was booked
    assert router.graph.booked == {
        router.plan.contacts.index(Contact(1, 3, T0 + 40 * S, T0 + 50 * S, 1e6)): 500
    }


def test_estimated_size_is_close_to_the_encoding() -> None:
    for n in (0, 10, 1000, 100_000):
        b = bundle_to(2, n)
        assert abs(estimated_size(b) - len(encode_bundle(b))) <= 24
    assert estimated_size(bundle_to(2, 0), payload_length=5000) >= 5000


def test_agent_queues_for_the_cgr_next_hop() -> None:
    plan = plan_of((1, 2, 0, 100), (2, 3, 50, 100))
    agent = BundleAgent(EID.parse("ipn:1.0"), ContactGraphRouter(plan, 1))
    agent.send(EID.parse("ipn:3.1"), b"hello", now_ms=T0)
    assert agent.queued(EID.parse("ipn:2.0")) == 1
    agent.send(EID.parse("ipn:9.1"), b"nowhere", now_ms=T0)
    assert agent.held() == 1  # the second had no route at all: deleted


def test_router_forgets_bookings_on_contacts_over() -> None:
    router = ContactGraphRouter(plan_of((1, 2, 0, 10), (1, 2, 20, 30)), 1)
    router.route(bundle_to(2, 10), T0, size=100)
    assert len(router.graph.booked) == 1
    router.route(bundle_to(2, 10), T0 + 15 * S, size=100)  # the first route ended: recomputed
    assert list(router.graph.booked.values()) == [100]
    assert router.graph.contacts[next(iter(router.graph.booked))].start_ms == T0 + 20 * S
