"""The bundle protocol agent, driven in virtual time with no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.agent.agent import (
    CLASS_ADMIN,
    CLASS_BULK,
    CLASS_EXPEDITED,
    Action,
    BundleAgent,
    Deliver,
    Persist,
    Unpersist,
)
from proxima.agent.routing import Route, StaticRoute, StaticRouter, eid_matches
from proxima.bpv7 import (
    EID,
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    bundle_age_of,
    decode_bundle,
    encode_bundle,
    hop_count_block,
    hop_count_of,
    payload_block,
    previous_node_of,
)
from proxima.bpv7.admin import status_report_of
from proxima.bpv7.fragment import fragment_bundle
from proxima.errors import BundleError, LocalError

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")
T0 = 780_000_000_000


class Net:
    """Agents wired by links that are up or down; moves bundles when told to."""

    def __init__(self) -> None:
        self.iss = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
        self.relay = BundleAgent(RELAY, StaticRouter([ISS, GROUND]))
        self.ground = BundleAgent(
            GROUND, StaticRouter([RELAY], [StaticRoute("*", RELAY)]), endpoints=(POSTS,)
        )
        self.agents = {ISS: self.iss, RELAY: self.relay, GROUND: self.ground}
        self.delivered: dict[EID, list[Deliver]] = {e: [] for e in self.agents}
        self.stored: dict[EID, dict[int, Persist]] = {e: {} for e in self.agents}
        self.unpersisted: dict[EID, list[Unpersist]] = {e: [] for e in self.agents}
        self.up: set[tuple[EID, EID]] = set()
        self.now = T0

    def apply(self, node: EID, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Persist):
                self.stored[node][a.key] = a
            elif isinstance(a, Unpersist):
                del self.stored[node][a.key]
                self.unpersisted[node].append(a)
            else:
                self.delivered[node].append(a)
                if a.report:  # the application takes it at once
                    self.apply(node, self.agents[node].report_delivered(a.bundle, self.now))

    def link(self, a: EID, b: EID, now: int) -> None:
        self.now = now
        self.up |= {(a, b), (b, a)}
        self.apply(a, self.agents[a].link_up(b, now))
        self.apply(b, self.agents[b].link_up(a, now))

    def unlink(self, a: EID, b: EID, now: int) -> None:
        self.up -= {(a, b), (b, a)}
        self.apply(a, self.agents[a].link_down(b, now))
        self.apply(b, self.agents[b].link_down(a, now))

    def run(self, now: int, delay: int = 0) -> int:
        """Move every sendable bundle over the up links until nothing moves; returns the count."""
        self.now = now + delay
        moved = 0
        progress = True
        while progress:
            progress = False
            for a, b in sorted(self.up, key=str):
                t = self.agents[a].next_to_send(b, now)
                if t is None:
                    continue
                progress = True
                moved += 1
                self.apply(b, self.agents[b].receive(t.data, now_ms=now + delay, from_peer=a))
                self.apply(a, self.agents[a].transmitted(t.key, now))
        return moved


def test_post_travels_iss_relay_ground() -> None:
    net = Net()
    bundle, actions = net.iss.send(POSTS, b"Bonjour depuis l'ISS", now_ms=T0, klass=CLASS_EXPEDITED)
    net.apply(ISS, actions)
    assert list(net.stored[ISS]) == [1]
    assert net.run(T0) == 0  # no link yet: the post waits on board
    net.link(ISS, RELAY, T0 + 10)
    net.run(T0 + 10)
    assert net.stored[ISS] == {} and len(net.stored[RELAY]) == 1  # stored on the relay now
    net.link(RELAY, GROUND, T0 + 5000)
    net.run(T0 + 5000)
    [d] = net.delivered[GROUND]
    assert d.endpoint == POSTS and d.bundle.payload == b"Bonjour depuis l'ISS"
    assert d.bundle.primary == bundle.primary
    assert previous_node_of(d.bundle) == RELAY
    assert net.stored == {ISS: {}, RELAY: {}, GROUND: {}}
    assert net.iss.counters.forwarded == 1 and net.relay.counters.forwarded == 1


def test_bundle_age_grows_along_the_path_when_there_is_no_clock() -> None:
    net = Net()
    _, actions = net.iss.send(POSTS, b"no clock", now_ms=0)
    net.apply(ISS, actions)
    net.link(ISS, RELAY, 1000)
    net.link(RELAY, GROUND, 1000)
    net.run(1000)
    [d] = net.delivered[GROUND]
    assert d.bundle.primary.creation_time == 0
    assert bundle_age_of(d.bundle) == 1000  # 1000 ms held on board, 0 on the relay


def test_hop_count_incremented_and_limit_enforced() -> None:
    net = Net()
    b = Bundle(
        PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=1),
        (hop_count_block(1, 0, number=2), payload_block(b"x")),
    )
    net.apply(RELAY, net.relay.receive(encode_bundle(b), now_ms=T0))
    net.link(RELAY, GROUND, T0)
    net.run(T0)
    [d] = net.delivered[GROUND]
    assert hop_count_of(d.bundle) == (1, 1)
    over = Bundle(b.primary._replace(sequence=2), (hop_count_block(1, 1, number=2), payload_block(b"x")))
    net.apply(RELAY, net.relay.receive(encode_bundle(over), now_ms=T0))
    assert net.relay.counters.deleted == 1 and net.relay.held() == 0


def test_duplicates_are_suppressed_even_after_delivery() -> None:
    net = Net()
    data = encode_bundle(
        Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=3), (payload_block(b"x"),))
    )
    for _ in range(3):
        net.apply(GROUND, net.ground.receive(data, now_ms=T0))
    assert len(net.delivered[GROUND]) == 1
    assert net.ground.counters.duplicates == 2
    restarted = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    d = net.delivered[GROUND][0]
    restarted.remember_delivered(d.identity, d.expiry_ms)
    assert restarted.receive(data, now_ms=T0) == []


def test_status_reports_reach_the_report_to_endpoint() -> None:
    net = Net()
    flags = BundleFlag.REPORT_RECEPTION | BundleFlag.REPORT_FORWARDING | BundleFlag.REPORT_DELIVERY
    flags |= BundleFlag.STATUS_TIME_REQUESTED
    _, actions = net.iss.send(POSTS, b"report me", now_ms=T0, report_to=ISS, flags=int(flags))
    net.apply(ISS, actions)
    net.link(ISS, RELAY, T0 + 1)
    net.link(RELAY, GROUND, T0 + 1)
    net.run(T0 + 1)
    reports = [status_report_of(d.bundle) for d in net.delivered[ISS]]
    kinds = sorted(
        ("received" if r.received.asserted else "")
        + ("forwarded" if r.forwarded.asserted else "")
        + ("delivered" if r.delivered.asserted else "")
        for r in reports
    )
    # ISS forwarded it (1), relay received + forwarded (2), ground received + delivered (2)
    assert kinds == ["delivered", "forwarded", "forwarded", "received", "received"]
    assert all(r.received.time in (None, T0 + 1) for r in reports)
    assert all(d.endpoint == ISS for d in net.delivered[ISS])


def test_expiry_deletes_with_reason_and_reports() -> None:
    net = Net()
    _, actions = net.iss.send(
        POSTS, b"late", now_ms=T0, lifetime_ms=1000, report_to=ISS, flags=int(BundleFlag.REPORT_DELETION)
    )
    net.apply(ISS, actions)
    assert net.iss.next_expiry() == T0 + 1000
    assert net.iss.tick(T0 + 999) == []
    net.apply(ISS, net.iss.tick(T0 + 1000))
    assert {u.key: u.reason for u in net.unpersisted[ISS]}[1] == Reason.LIFETIME_EXPIRED
    [d] = net.delivered[ISS]  # the deletion report, addressed to ISS, delivered locally
    r = status_report_of(d.bundle)
    assert r.deleted.asserted and r.reason == Reason.LIFETIME_EXPIRED


def test_a_bundle_without_a_clock_expires_by_its_age() -> None:
    """Creation time 0: the bundle's age block, plus the time held here, says when it expires
    (RFC 9171 §4.4.2, §5.4); on arrival with no life left it is dropped at once."""
    from proxima.bpv7.bundle import age_block

    agent = BundleAgent(RELAY, StaticRouter([GROUND, ISS]))  # neither comes up: bundles wait

    def aged(seq: int, age_ms: int) -> bytes:
        p = PrimaryBlock(POSTS, ISS, ISS, creation_time=0, sequence=seq, lifetime=1000, flags=0x40000)
        return encode_bundle(Bundle(p, (age_block(age_ms, number=2), payload_block(b"x"))))

    actions = agent.receive(aged(1, 900), now_ms=T0)
    assert agent.held() == 1 and not any(isinstance(a, Unpersist) for a in actions)
    assert agent.next_expiry() == T0 + 100
    assert agent.tick(T0 + 99) == []
    expired = agent.tick(T0 + 100)
    assert [u.reason for u in expired if isinstance(u, Unpersist)] == [1]  # lifetime expired
    assert agent.held() == 1  # only its deletion report, waiting for ISS
    assert agent.counters.deleted == 1
    agent.receive(aged(2, 1000), now_ms=T0)
    assert agent.counters.deleted == 2


def test_received_expired_bundle_is_dropped() -> None:
    agent = BundleAgent(RELAY, StaticRouter([GROUND]))
    b = Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=1, lifetime=10), (payload_block(b"x"),))
    actions = agent.receive(encode_bundle(b), now_ms=T0 + 10)
    assert actions == [] and agent.counters.deleted == 1


def test_no_known_route_deletes() -> None:
    agent = BundleAgent(RELAY, StaticRouter([GROUND]))
    b = Bundle(
        PrimaryBlock(EID.parse("ipn:99.1"), ISS, ISS, creation_time=T0, sequence=1, flags=0x40000),
        (payload_block(b"x"),),
    )
    actions = agent.receive(encode_bundle(b), now_ms=T0)
    unp = [a for a in actions if isinstance(a, Unpersist)]
    # the bundle, then its deletion report (towards ISS: no route either); no report of a report
    assert [(u.key, u.reason) for u in unp] == [(2, Reason.NO_KNOWN_ROUTE), (1, Reason.NO_KNOWN_ROUTE)]
    assert agent.held() == 0 and agent.counters.reports_sent == 1


def test_a_peer_with_a_session_up_is_its_own_route() -> None:
    """A node no route names, but whose session is up (it dialled in), gets its bundles over
    that session; once the session is gone, a new bundle for it has no known route."""
    agent = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    visitor, there = EID.parse("ipn:77.0"), EID.parse("ipn:77.5")
    reply = Bundle(PrimaryBlock(there, GROUND, creation_time=T0, sequence=1), (payload_block(b"r"),))
    assert agent.link_up(visitor, T0) == []
    agent.receive(encode_bundle(reply), now_ms=T0)
    t = agent.next_to_send(visitor, T0)
    assert t is not None and decode_bundle(t.data).primary.destination == there
    agent.link_down(visitor, T0 + 1)
    late = Bundle(PrimaryBlock(there, GROUND, creation_time=T0, sequence=2), (payload_block(b"r"),))
    actions = agent.receive(encode_bundle(late), now_ms=T0 + 2)
    assert [u.reason for u in actions if isinstance(u, Unpersist)] == [Reason.NO_KNOWN_ROUTE]


def test_class_of_service_order() -> None:
    agent = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
    big = b"m" * 100_000
    agent.send(POSTS, big, now_ms=T0)
    agent.send(POSTS, b"post", now_ms=T0 + 1)
    agent.send(POSTS, big, now_ms=T0 + 2, klass=CLASS_ADMIN)
    agent.send(POSTS, b"post 2", now_ms=T0 + 3)
    order = []
    while (t := agent.next_to_send(RELAY, T0 + 10)) is not None:
        order.append((t.klass, decode_bundle(t.data).primary.creation_time - T0))
    assert order == [(CLASS_ADMIN, 2), (CLASS_EXPEDITED, 1), (CLASS_EXPEDITED, 3), (CLASS_BULK, 0)]


def test_transmit_failure_requeues() -> None:
    agent = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
    agent.send(POSTS, b"x", now_ms=T0)
    t = agent.next_to_send(RELAY, T0)
    assert t is not None and agent.next_to_send(RELAY, T0) is None
    agent.transmit_failed(t.key, T0)
    t2 = agent.next_to_send(RELAY, T0)
    assert t2 is not None and t2.key == t.key and t2.data == t.data


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=2, max_size=3000), st.integers(1, 700), st.randoms())
def test_fragments_reassemble_before_delivery(payload: bytes, size: int, rnd: object) -> None:
    b = Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=9), (payload_block(payload),))
    if len(payload) <= size:
        size = max(1, len(payload) // 2)
    frags = fragment_bundle(b, size)
    rnd.shuffle(frags)  # type: ignore[attr-defined]
    agent = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    delivered = []
    stored: set[int] = set()
    for f in frags:
        for a in agent.receive(encode_bundle(f), now_ms=T0):
            if isinstance(a, Persist):
                stored.add(a.key)
            elif isinstance(a, Unpersist):
                stored.discard(a.key)
            else:
                delivered.append(a)
    [d] = delivered
    assert d.bundle == b and stored == set()


def test_unknown_block_asking_for_deletion() -> None:
    agent = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    unknown = CanonicalBlock(200, 2, int(BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED), 0, b"")
    b = Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=1), (unknown, payload_block(b"x")))
    assert agent.receive(encode_bundle(b), now_ms=T0) == []
    assert agent.counters.deleted == 1


def test_unknown_block_is_forwarded_verbatim() -> None:
    net = Net()
    unknown = CanonicalBlock(193, 5, 1, 0, b"\x01")
    b = Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0, sequence=1), (unknown, payload_block(b"x")))
    net.apply(RELAY, net.relay.receive(encode_bundle(b), now_ms=T0))
    net.link(RELAY, GROUND, T0)
    net.run(T0)
    [d] = net.delivered[GROUND]
    assert unknown in d.bundle.blocks


def test_restart_restores_queued_bundles() -> None:
    net = Net()
    _, actions = net.iss.send(POSTS, b"survive", now_ms=T0)
    net.apply(ISS, actions)
    stored = [encode_bundle(p.bundle) for p in net.stored[ISS].values()]
    fresh = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
    for data in stored:
        fresh.restore(data, received_ms=T0)
    t = fresh.next_to_send(RELAY, T0)
    assert t is not None and decode_bundle(t.data).payload == b"survive"


def test_timestamps_never_repeat() -> None:
    agent = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]), next_sequence=40)
    stamps = [agent.send(POSTS, b"x", now_ms=t)[0].primary for t in (T0, T0, T0 - 5, T0 + 1, 0, 0)]
    pairs = [(p.creation_time, p.sequence) for p in stamps]
    assert len(set(pairs)) == len(pairs)
    assert pairs[0] == (T0, 0) and pairs[1] == (T0, 1) and pairs[2] == (T0, 2)


def test_invalid_bytes_raise_and_keep_nothing() -> None:
    agent = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    with pytest.raises(BundleError):
        agent.receive(b"\x9f\x01\xff", now_ms=T0)
    assert agent.held() == 0 and agent.counters.invalid == 1


def test_misuse_is_local() -> None:
    with pytest.raises(LocalError):
        BundleAgent(EID.parse("dtn:none"), StaticRouter())
    agent = BundleAgent(ISS, StaticRouter())
    with pytest.raises(LocalError):
        agent.register(EID.parse("dtn:none"))


def test_route_patterns() -> None:
    assert eid_matches("*", POSTS)
    assert eid_matches("ipn:3.*", POSTS) and not eid_matches("ipn:33.*", POSTS)
    assert eid_matches("dtn://ground/*", EID.parse("dtn://ground/posts"))
    assert not eid_matches("dtn://ground/*", EID.parse("dtn://groundx/posts"))
    assert eid_matches("ipn:3.7", POSTS) and not eid_matches("ipn:3.8", POSTS)
    r = StaticRouter([RELAY], [StaticRoute("ipn:3.*", RELAY)])
    b = Bundle(PrimaryBlock(POSTS, ISS, creation_time=T0), (payload_block(b""),))
    assert r.route(b, T0) == Route((RELAY,))
    other = Bundle(b.primary._replace(destination=EID.parse("ipn:4.1")), b.blocks)
    assert r.route(other, T0) == Route((), keep=False)


def test_bundles_for_an_unregistered_endpoint_of_this_node_stay_here() -> None:
    """They wait for their application instead of bouncing between nodes with default routes."""
    agent = BundleAgent(GROUND, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
    b = Bundle(PrimaryBlock(EID.parse("ipn:3.99"), ISS, creation_time=T0, sequence=1), (payload_block(b"x"),))
    actions = agent.receive(encode_bundle(b), now_ms=T0)
    assert [type(a).__name__ for a in actions] == ["Persist", "Deliver", "Unpersist"]
    assert agent.next_to_send(RELAY, T0) is None


def test_one_reception_report_even_when_a_block_asks_for_one_too() -> None:
    agent = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    unknown = CanonicalBlock(200, 2, int(BlockFlag.REPORT_IF_UNPROCESSED), 0, b"")
    p = PrimaryBlock(POSTS, ISS, ISS, creation_time=T0, sequence=1, flags=int(BundleFlag.REPORT_RECEPTION))
    actions = agent.receive(encode_bundle(Bundle(p, (unknown, payload_block(b"x")))), now_ms=T0)
    reports = [
        status_report_of(a.bundle)
        for a in actions
        if isinstance(a, Persist) and a.bundle.primary.flags & BundleFlag.ADMIN_RECORD
    ]
    assert len(reports) == 1
    assert reports[0].received.asserted and reports[0].reason == Reason.BLOCK_UNSUPPORTED


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(max_size=3000),
    crc=st.sampled_from([0, 1, 2]),
    age=st.booleans(),
    extra=st.binary(max_size=40),
)
def test_a_bundle_held_without_its_payload_leaves_byte_for_byte_as_one_held_whole(
    payload: bytes, crc: int, age: bool, extra: bytes
) -> None:
    """A relay keeping a large bundle's payload in its store sends its head, then the stored
    payload block verbatim: exactly the bytes it would send holding the whole bundle."""
    from proxima.bpv7.stream import decode_bundle_head

    blocks = [
        CanonicalBlock(200, 5, BlockFlag(0), crc, extra),
        hop_count_block(30, 2, number=3, crc_type=crc),
    ]
    if age:
        blocks.append(CanonicalBlock(7, 4, BlockFlag(0), crc, b"\x19\x03\xe8"))  # bundle age 1000 ms
    blocks.append(payload_block(payload, crc_type=crc))
    primary = PrimaryBlock(
        destination=POSTS, source=ISS, creation_time=0 if age else T0, sequence=3, crc_type=crc
    )
    raw = encode_bundle(Bundle(primary, tuple(blocks)))
    head = decode_bundle_head(raw)
    start = head.payload_offset - len(head.payload_head)

    whole = BundleAgent(RELAY, StaticRouter([GROUND]))
    whole.receive(raw, now_ms=T0 + 10)
    streamed = BundleAgent(RELAY, StaticRouter([GROUND]))
    actions = streamed.receive_bundle(
        Bundle(head.primary, head.blocks), now_ms=T0 + 10, payload_length=head.payload_length
    )
    assert [type(a) for a in actions] == [Persist]
    a = whole.next_to_send(GROUND, T0 + 500)
    b = streamed.next_to_send(GROUND, T0 + 500)
    assert a is not None and b is not None
    assert not a.external and b.external
    assert b.data + raw[start:] == a.data
    assert decode_bundle(b.data + raw[start:]).payload == payload


def test_originating_a_large_bundle_in_two_steps() -> None:
    """prepare() stamps and encodes the head; originate() takes charge of the stored copy."""
    from proxima.bpv7.stream import decode_bundle_head

    iss = BundleAgent(ISS, StaticRouter([RELAY], [StaticRoute("*", RELAY)]))
    payload = bytes(range(256)) * 40
    bundle, head, crc = iss.prepare(POSTS, len(payload), now_ms=T0)
    crc.update(payload)
    raw = head + payload + crc.trailer()
    assert decode_bundle(raw).payload == payload
    assert bundle.payload == b"" and bundle.primary.creation_time == T0
    actions = iss.originate(bundle, now_ms=T0, payload_length=len(payload))
    assert [type(a) for a in actions] == [Persist]
    assert iss.counters.originated == 1
    t = iss.next_to_send(RELAY, T0 + 1)
    assert t is not None and t.external
    start = decode_bundle_head(raw)
    sent = decode_bundle(t.data + raw[start.payload_offset - len(start.payload_head) :])
    assert sent.payload == payload and previous_node_of(sent) == ISS
    # the timestamp is never reused by a later send
    b2, _ = iss.send(POSTS, b"x", now_ms=T0)
    assert (b2.primary.creation_time, b2.primary.sequence) == (T0, 1)


class BookingRouter:
    """A router that books volume: records what the agent frees, and sends to the first of
    ``hops`` that is not closed."""

    def __init__(self, hops: list[EID]) -> None:
        self.hops = hops
        self.closed: set[EID] = set()
        self.sizes: list[int | None] = []
        self.released: list[tuple[EID, int]] = []

    def route(self, bundle: Bundle, now_ms: int, size: int | None = None) -> Route:
        self.sizes.append(size)
        return Route(tuple(h for h in self.hops if h not in self.closed))

    def release(self, peer: EID, size: int, now_ms: int) -> bool:
        self.released.append((peer, size))
        return True

    def link_up(self, peer: EID, now_ms: int) -> None:
        pass

    def link_down(self, peer: EID, now_ms: int) -> None:
        pass


def test_a_contact_that_ends_sends_its_queued_bundles_elsewhere_and_frees_their_volume() -> None:
    router = BookingRouter([RELAY, GROUND])
    iss = BundleAgent(ISS, router)
    sizes = []
    for n in (10, 3000):
        bundle, _ = iss.send(POSTS, bytes(n), now_ms=T0)
        sizes.append(len(encode_bundle(bundle)))
    # the router was told each bundle's size, close to its real encoding
    assert all(s is not None and abs(s - real) < 64 for s, real in zip(router.sizes, sizes, strict=True))
    assert iss.queued(RELAY) == 2
    in_flight = iss.next_to_send(RELAY, T0)
    assert in_flight is not None
    router.closed.add(RELAY)  # the contact with the relay is over
    assert iss.requeue(RELAY, T0 + 1) == []
    assert iss.queued(RELAY) == 0 and iss.queued(GROUND) == 1  # the queued one, not the one in flight
    assert [peer for peer, _ in router.released] == [RELAY]
    iss.transmit_failed(in_flight.key, T0 + 2)  # the one in flight comes back too
    assert iss.queued(GROUND) == 2
    assert [peer for peer, _ in router.released] == [RELAY, RELAY]


def test_a_bundle_larger_than_any_contact_is_split_to_fit_and_reassembled_on_arrival() -> None:
    """Proactive fragmentation: the first pass can carry 10 kB, the next 100 kB; a 30 kB post
    goes as fragments (the first sized to the first pass), and the ground delivers it whole."""
    from proxima.routing.contacts import Contact, ContactPlan
    from proxima.routing.router import ContactGraphRouter

    s = 1000
    plan = ContactPlan(
        (
            Contact(1, 3, T0, T0 + 10 * s, 1000.0),
            Contact(1, 3, T0 + 20 * s, T0 + 120 * s, 1000.0),
        )
    )
    iss = BundleAgent(ISS, ContactGraphRouter(plan, ISS))
    ground = BundleAgent(GROUND, StaticRouter(), endpoints=(POSTS,))
    payload = bytes(range(256)) * 120  # 30,720 bytes
    _, actions = iss.send(POSTS, payload, now_ms=T0)
    assert iss.counters.fragmented == 1
    persisted = [a for a in actions if isinstance(a, Persist)]
    assert len(persisted) >= 3 and any(isinstance(a, Unpersist) for a in actions)
    sizes = [len(a.data) for a in persisted[1:] if a.data is not None]  # the fragments' encodings
    assert max(sizes) <= 10_000
    delivered: list[Deliver] = []
    iss.link_up(GROUND, T0)
    while (t := iss.next_to_send(GROUND, T0 + 30 * s)) is not None:
        delivered += [a for a in ground.receive(t.data, now_ms=T0 + 31 * s) if isinstance(a, Deliver)]
        iss.transmitted(t.key, T0 + 31 * s)
    assert [d.bundle.payload for d in delivered] == [payload]
    assert iss.held() == 0


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=3000),
    crc_type=st.sampled_from([0, 1, 2]),
    lifetime_ms=st.integers(1, 2**40),
    flags=st.sampled_from([0, int(BundleFlag.REPORT_DELIVERY), int(BundleFlag.MUST_NOT_FRAGMENT)]),
    service=st.integers(0, 2**64 - 1),
    now_ms=st.integers(1, 2**45),
)
def test_an_originated_bundle_leaves_with_the_same_bytes_whether_its_encoding_was_kept(
    payload: bytes, crc_type: int, lifetime_ms: int, flags: int, service: int, now_ms: int
) -> None:
    """A bundle sent while its next hop's link is up keeps its encoding, and its first hop only
    inserts the previous node block; the bytes are those of a full encoding, as when the link
    came up later. Once sent (or dropped), the kept encoding is let go."""
    destination = EID.parse(f"ipn:3.{service}")
    out = []
    for up_first in (True, False):
        agent = BundleAgent(ISS, StaticRouter([GROUND]), crc_type=crc_type)
        if up_first:
            agent.link_up(GROUND, now_ms)
        agent.send(destination, payload, now_ms=now_ms, lifetime_ms=lifetime_ms, flags=flags)
        if not up_first:
            agent.link_up(GROUND, now_ms)
        t = agent.next_to_send(GROUND, now_ms)
        assert t is not None
        out.append(t.data)
        assert agent._wire_bytes == 0
    assert out[0] == out[1]
    sent = decode_bundle(out[0])
    assert previous_node_of(sent) == ISS and sent.payload == payload


def test_a_kept_encoding_is_let_go_with_its_bundle_and_stays_within_its_budget() -> None:
    from proxima.agent.agent import WIRE_BUDGET

    now = 780_000_000_000
    agent = BundleAgent(ISS, StaticRouter([GROUND]))
    agent.link_up(GROUND, now)
    size = 1 << 20
    for _ in range(WIRE_BUDGET // size + 4):
        agent.send(GROUND, bytes(size), now_ms=now, lifetime_ms=1000)
    # as many kept as the budget holds; the others are encoded again when they leave
    assert WIRE_BUDGET - 2 * size < agent._wire_bytes <= WIRE_BUDGET
    agent.tick(now + 2000)  # all expired: nothing kept any more
    assert agent._wire_bytes == 0
