"""The runtime node over in-memory links: store-and-forward, delivery, restart, config."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from proxima.bpv7 import EID, Bundle, PrimaryBlock, Reason, encode_bundle, payload_block
from proxima.bpv7.admin import StatusReport, decode_admin_record
from proxima.errors import BundleError, ConfigError, StoreError
from proxima.runtime.config import NodeConfig, RouteConfig, load_config, parse_config
from proxima.runtime.links import SplicedBundle
from proxima.runtime.node import Node

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")


class Clock:
    def __init__(self) -> None:
        self.now = 780_000_000_000

    def __call__(self) -> int:
        return self.now


class MemLink:
    """One direction of an in-memory session: send() hands bytes to the other node."""

    def __init__(self, peer_node: Node, peer: EID, sender: Node) -> None:
        self.peer_node = peer_node
        self._peer = peer
        self.sender = sender
        self.sent = 0

    @property
    def peer(self) -> EID | None:
        return self._peer

    @property
    def cla(self) -> str:
        return "mem"

    async def send(self, data: bytes | SplicedBundle) -> None:
        incoming = self.peer_node.open_incoming(None, len(data))
        for start in range(0, len(data), 1 << 20):  # a large bundle goes in pieces, as over TCPCL
            incoming.write(data[start : start + (1 << 20)])
        await incoming.commit()
        self.sent += 1

    async def close(self) -> None:
        self.sender.link_down(self)


def connect(a: Node, b: Node) -> tuple[MemLink, MemLink]:
    ab = MemLink(b, b.config.node_id, a)
    ba = MemLink(a, a.config.node_id, b)
    a.link_up(ab)
    b.link_up(ba)
    return ab, ba


def make(tmp: Path, node_id: EID, clock: Clock, **kw: Any) -> Node:
    config = NodeConfig(node_id=node_id, store_path=tmp / str(node_id.node).replace(":", "_"), **kw)
    node = Node(config, clock=clock)
    node.open()
    return node


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_post_goes_down_through_a_relay_and_waits_for_the_app(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        relay = make(tmp_path, RELAY, clock, routes=(RouteConfig("ipn:3.*", GROUND),))
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        await iss.send(POSTS, b"Bonjour depuis l'ISS")
        assert iss.status()["stored"]["bundles"] == 1  # no contact yet: kept on board
        connect(iss, relay)
        await settle()
        assert iss.status()["stored"]["bundles"] == 0
        assert relay.status()["stored"]["bundles"] == 1
        connect(relay, ground)
        await settle()
        d = await ground.take(POSTS, timeout=1)
        assert d is not None and d.bundle.payload == b"Bonjour depuis l'ISS"
        await ground.ack(POSTS, d.store_id)
        assert await ground.take(POSTS, timeout=0) is None
        assert ground.status()["stored"]["bundles"] == 0
        for n in (iss, relay, ground):
            await n.stop()

    asyncio.run(main())


def test_restart_keeps_queued_and_undelivered_bundles(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        for i in range(5):
            await iss.send(POSTS, f"post {i}".encode())
        await iss.stop()  # "killed" after the sends were durable
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", GROUND),))
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,), routes=(RouteConfig("*", ISS),))
        connect(iss, ground)
        await settle()
        await ground.stop()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        got = []
        while (d := await ground.take(POSTS, timeout=0)) is not None:
            got.append(d.bundle.payload)
            await ground.ack(POSTS, d.store_id)
        assert sorted(got) == [f"post {i}".encode() for i in range(5)]
        await iss.stop()
        await ground.stop()

    asyncio.run(main())


def test_duplicates_are_acknowledged_but_delivered_once(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        data = encode_bundle(
            Bundle(PrimaryBlock(POSTS, ISS, creation_time=clock.now, sequence=1), (payload_block(b"x"),))
        )
        for _ in range(3):
            ground.accept(data)
            await ground.durable()
        d = await ground.take(POSTS, timeout=0)
        assert d is not None
        await ground.ack(POSTS, d.store_id)
        ground.accept(data)  # after delivery, still a duplicate (remembered identity)
        await ground.stop()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        ground.accept(data)  # and after a restart
        assert await ground.take(POSTS, timeout=0) is None
        await ground.stop()

    asyncio.run(main())


def test_invalid_bundle_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    async def main() -> None:
        node = make(tmp_path, GROUND, Clock(), endpoints=(POSTS,))
        with pytest.raises(BundleError):
            node.accept(b"\x9f\x00\xff")
        assert node.status()["stored"]["bundles"] == 0
        await node.stop()

    asyncio.run(main())


def test_expired_bundles_leave_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        await iss.send(POSTS, b"short-lived", lifetime_ms=500)
        clock.now += 1000
        iss._apply(iss.agent.tick(clock.now))
        await iss.durable()
        assert iss.status()["stored"]["bundles"] == 0
        await iss.stop()

    asyncio.run(main())


def test_config_file(tmp_path: Path) -> None:
    f = tmp_path / "relay.toml"
    f.write_text(
        """
node_id = "ipn:2.0"
endpoints = ["ipn:2.1"]
[storage]
path = "store"
quota_bytes = 1000000
[app]
port = 4300
[[listen]]
cla = "tcpcl"
port = 4556
[[neighbour]]
node_id = "ipn:3.0"
cla = "stcp"
port = 4557
[[route]]
destination = "ipn:3.*"
via = "ipn:3.0"
"""
    )
    c = load_config(f)
    assert c.node_id == RELAY and c.store_path == tmp_path / "store" and c.quota_bytes == 1_000_000
    assert c.endpoints == (EID.parse("ipn:2.1"),)
    assert c.app.port == 4300 and c.listen[0].port == 4556 and c.neighbours[0].cla == "stcp"
    assert c.routes == (RouteConfig("ipn:3.*", GROUND),)
    assert c.neighbours[0].rate is None
    udp = parse_config(
        'node_id = "ipn:2.0"\n[[neighbour]]\nnode_id = "ipn:3.0"\ncla = "udp"\nport = 9\nrate = 5_000_000'
    )
    assert udp.neighbours[0].rate == 5_000_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node_id = 5", "node_id must be a str"),
        ('node_id = "ipn:2.1"', "must be a node ID"),
        ('node_id = "ipn:2"', "malformed ipn endpoint ID"),
        ('node_id = "ipn:2.0"\n[[listen]]\ncla = "ltp"\nport = 1', "listen[0].cla must be one of"),
        ('node_id = "ipn:2.0"\n[[listen]]\nport = 70000', "listen[0].port must be a TCP/UDP port"),
        ('node_id = "ipn:2.0"\nfoo = 1', "foo: unknown key"),
        ('node_id = "ipn:2.0"\n[[neighbour]]\ncla = "tcpcl"\nport = 1', "neighbour[0].node_id is missing"),
        ("node_id = ", "not valid TOML"),
        (
            'node_id = "ipn:2.0"\n[[neighbour]]\nnode_id = "ipn:3.0"\ncla = "tcpcl"\nport = 1\nrate = 1000',
            "neighbour[0].rate must be for a udp neighbour only",
        ),
        (
            'node_id = "ipn:2.0"\n[[neighbour]]\nnode_id = "ipn:3.0"\ncla = "udp"\nport = 1\nrate = 0',
            "neighbour[0].rate must be a positive number of bytes per second",
        ),
    ],
)
def test_config_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="n.toml")
    assert message in str(info.value) and str(info.value).startswith("n.toml")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.toml")


def test_full_store_refuses_before_the_agent_takes_it(tmp_path: Path) -> None:
    from proxima.errors import StoreError

    async def main() -> None:
        clock = Clock()
        reports = EID.parse("ipn:3.5")
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS, reports), quota_bytes=3000)

        def post(seq: int) -> bytes:
            p = PrimaryBlock(POSTS, ISS, reports, creation_time=clock.now, sequence=seq, flags=0x40000)
            return encode_bundle(Bundle(p, (payload_block(bytes(1000)),)))

        ground.accept(post(1))
        ground.accept(post(2))
        await ground.durable()
        held = ground.agent.held()
        with pytest.raises(StoreError) as info:
            ground.accept(post(3))
        assert info.value.reason == 4
        assert ground.agent.held() == held  # nothing kept in memory only
        with pytest.raises(StoreError):
            ground.accept(post(3))  # a retransmission is refused again, not taken as a duplicate
        assert ground.agent.counters.deleted == 2  # each refusal counts as a deletion
        # and each is reported, as the post asked: deleted, reason 4 (depleted storage)
        records = [decode_admin_record(d.bundle.payload) for d in ground.take_ready(reports, 10)]
        assert len(records) == 2
        for r in records:
            assert isinstance(r, StatusReport) and r.deleted.asserted
            assert (r.source, r.sequence, r.reason) == (ISS, 3, 4)
        await ground.stop()

    asyncio.run(main())


def test_a_bundle_larger_than_the_quota_is_refused_and_reported(tmp_path: Path) -> None:
    """Larger than the whole quota, announced (a transfer length) or found while it arrives:
    refused with reason 4 and reported, even though it is never stored."""
    reports = EID.parse("ipn:3.5")

    async def main() -> None:
        clock = Clock()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS, reports), quota_bytes=3000)
        for seq, announced in ((1, True), (2, False)):
            p = PrimaryBlock(POSTS, ISS, reports, creation_time=clock.now, sequence=seq, flags=0x40000)
            data = encode_bundle(Bundle(p, (payload_block(bytes(5000)),)))
            incoming = ground.open_incoming(None, len(data) if announced else None)

            async def arrive(incoming: Any = incoming, data: bytes = data) -> None:
                for i in range(0, len(data), 1000):
                    incoming.write(data[i : i + 1000])
                await incoming.commit()

            with pytest.raises(StoreError) as info:
                await arrive()
            assert info.value.reason == 4
        records = [decode_admin_record(d.bundle.payload) for d in ground.take_ready(reports, 10)]
        seen = sorted((r.sequence, r.reason) for r in records if isinstance(r, StatusReport))
        assert seen == [(1, 4), (2, 4)]
        assert ground.store is not None and len(ground.store) == 2  # the two reports, nothing else
        await ground.stop()

    asyncio.run(main())


def test_a_running_node_expires_what_waits_past_its_lifetime(tmp_path: Path) -> None:
    """The node's own once-a-second pass, not a test calling it, deletes an expired bundle
    from the agent and the store, and its deletion report goes out."""
    reports = EID.parse("ipn:1.5")

    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, endpoints=(reports,), routes=(RouteConfig("ipn:3.*", RELAY),))
        await iss.start()
        try:
            await iss.send(POSTS, b"soon stale", lifetime_ms=60_000, report_to=reports, flags=0x40000)
            assert iss.agent.held() == 1  # RELAY never comes up: it waits
            await asyncio.sleep(1.5)
            assert iss.agent.counters.deleted == 0  # a pass or so later: nothing has expired yet
            clock.now += 60_000
            for _ in range(40):
                if iss.agent.counters.deleted:
                    break
                await asyncio.sleep(0.1)
            assert iss.agent.counters.deleted == 1 and iss.agent.held() == 0
            [d] = iss.take_ready(reports, 10)
            record = decode_admin_record(d.bundle.payload)
            assert isinstance(record, StatusReport) and record.reason == Reason.LIFETIME_EXPIRED
            assert iss.store is not None and len(iss.store) == 1  # only the report, for its endpoint
        finally:
            await iss.stop()

    asyncio.run(main())


def test_creation_stamps_never_repeat_across_restarts(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()  # frozen: every send in the same millisecond
        stamps = []
        for _ in range(3):
            iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
            await iss.send(POSTS, b"x")
            assert iss.last_sent is not None
            stamps.append((iss.last_sent.primary.creation_time, iss.last_sent.primary.sequence))
            await iss.stop()
        assert len(set(stamps)) == 3

    asyncio.run(main())


def test_creation_stamps_are_reserved_ahead_and_never_repeat_when_the_clock_goes_back(
    tmp_path: Path,
) -> None:
    """The store keeps a reservation, not every stamp: one counter write per STAMP_RESERVE_MS,
    and a restart (even with the clock set back, or with no clock at all) resumes past it."""
    from proxima.runtime.node import STAMP_RESERVE_MS

    async def main() -> None:
        clock = Clock()
        start = clock.now
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        stamps = []
        for _ in range(100):
            await iss.send(POSTS, b"x")
            assert iss.last_sent is not None
            stamps.append((iss.last_sent.primary.creation_time, iss.last_sent.primary.sequence))
            clock.now += 1
        assert iss.store is not None
        assert iss.store.counter("agent.creation_time") == start + STAMP_RESERVE_MS  # written once
        await iss.stop()
        clock.now = start - 5_000  # set back
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        await iss.send(POSTS, b"y")
        assert iss.last_sent is not None
        after = (iss.last_sent.primary.creation_time, iss.last_sent.primary.sequence)
        assert after > max(stamps)
        await iss.stop()
        clock.now = 0  # no accurate clock: sequence numbers alone, reserved ahead too
        seen = set()
        for _ in range(3):
            iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
            for _ in range(3):
                await iss.send(POSTS, b"z")
                assert iss.last_sent is not None
                seen.add((iss.last_sent.primary.creation_time, iss.last_sent.primary.sequence))
            await iss.stop()
        assert len(seen) == 9

    asyncio.run(main())


class RefusingLink(MemLink):
    async def send(self, data: bytes) -> None:
        from proxima.errors import LocalError

        raise LocalError("the bundle does not fit in a datagram")


def test_a_bundle_the_next_hop_can_never_take_is_cancelled(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        relay = make(tmp_path, RELAY, clock)
        await iss.send(POSTS, b"too big for this link")
        iss.link_up(RefusingLink(relay, RELAY, iss))
        await settle()
        assert iss.status()["stored"]["bundles"] == 0  # deleted (reason 3), not retried forever
        assert iss.agent.counters.deleted == 1
        await iss.stop()
        await relay.stop()

    asyncio.run(main())


def test_deliveries_nobody_takes_expire(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        p = PrimaryBlock(POSTS, ISS, creation_time=clock.now, sequence=1, lifetime=1000)
        ground.accept(encode_bundle(Bundle(p, (payload_block(b"old news"),))))
        await ground.durable()
        clock.now += 2000
        ground._expire_once()
        await ground.durable()
        assert await ground.take(POSTS, timeout=0) is None
        assert ground.status()["stored"]["bundles"] == 0
        await ground.stop()

    asyncio.run(main())


def test_restart_applies_what_rerouting_decides(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", RELAY),))
        await iss.send(EID.parse("ipn:9.1"), b"nowhere to go after the restart")
        await iss.stop()
        iss = make(tmp_path, ISS, clock)  # the route is gone: deleted (no known route) at open
        assert iss.status()["stored"]["bundles"] == 0
        await iss.stop()

    asyncio.run(main())


def test_the_delivery_report_leaves_when_the_application_takes_the_bundle(tmp_path: Path) -> None:
    """RFC 9171 §5.7: delivered means handed to the application, not queued for it. A bundle
    waiting across a restart of the ground node still gets its report when finally taken."""
    from proxima.bpv7 import BundleFlag
    from proxima.bpv7.admin import status_report_of

    replies = EID.parse("ipn:1.9")

    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, endpoints=(replies,), routes=(RouteConfig("*", GROUND),))
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,), routes=(RouteConfig("*", ISS),))
        connect(iss, ground)
        for text in (b"first", b"second"):
            await iss.send(POSTS, text, report_to=replies, flags=int(BundleFlag.REPORT_DELIVERY))
        await settle()
        assert iss.pending_deliveries(replies) == 0  # queued on the ground is not delivered
        d = await ground.take(POSTS, timeout=1)
        assert d is not None and d.bundle.payload == b"first"
        await ground.ack(POSTS, d.store_id)
        await settle()
        report = await iss.take(replies, timeout=1)
        assert report is not None
        info = status_report_of(report.bundle)
        assert info.delivered.asserted and not info.received.asserted
        assert info.sequence == d.bundle.primary.sequence
        await iss.ack(replies, report.store_id)
        # The second waits while the ground node restarts; its report still comes once taken.
        await ground.stop()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,), routes=(RouteConfig("*", ISS),))
        connect(iss, ground)
        await settle()
        assert iss.pending_deliveries(replies) == 0
        d = await ground.take(POSTS, timeout=1)
        assert d is not None and d.bundle.payload == b"second"
        await ground.ack(POSTS, d.store_id)
        await settle()
        report = await iss.take(replies, timeout=1)
        assert report is not None
        info = status_report_of(report.bundle)
        assert info.delivered.asserted and info.sequence == d.bundle.primary.sequence
        for n in (iss, ground):
            await n.stop()

    asyncio.run(main())


def test_a_store_failure_stops_the_node_instead_of_acknowledging_what_it_lost(tmp_path: Path) -> None:
    """A commit that fails leaves the agent holding bundles the store lost: the node refuses
    them (the sender keeps its copy), stops taking bundles and says it must restart."""
    import sqlite3

    async def main() -> None:
        clock = Clock()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        store = ground.store
        assert store is not None
        real = store._conn

        class Failing:
            def executemany(self, *args: object) -> object:
                raise sqlite3.OperationalError("disk I/O error")

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        raw = encode_bundle(
            Bundle(PrimaryBlock(POSTS, ISS, creation_time=clock(), sequence=1), (payload_block(b"post"),))
        )
        store._conn = Failing()  # type: ignore[assignment]
        ground.accept(raw)
        with pytest.raises(StoreError, match="disk I/O error"):
            await ground.durable()
        assert ground.failed.is_set() and ground.failure is not None
        store._conn = real
        with pytest.raises(StoreError, match="restart it"):
            ground.accept(raw)  # the retransmission is refused, not taken for a duplicate
        await ground.stop()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        assert await ground.take(POSTS, timeout=0) is None  # nothing was stored: the sender still has it
        ground.accept(raw)
        await ground.durable()
        d = await ground.take(POSTS, timeout=1)
        assert d is not None and d.bundle.payload == b"post"
        await ground.stop()

    asyncio.run(main())


class FutureLink(MemLink):
    """A link that takes bundles as futures, as TCPCL does: the node feeds it from callbacks.
    Each transfer completes only when the test releases it, to watch the window."""

    def __init__(self, peer_node: Node, peer: EID, sender: Node) -> None:
        super().__init__(peer_node, peer, sender)
        self.waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self.closed = False

    def send_future(self, data: bytes | SplicedBundle) -> asyncio.Future[None]:
        if self.closed:
            raise ConnectionError("the link is closed")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((bytes(data) if isinstance(data, bytes) else data.head, fut))
        return fut

    async def release(self, n: int | None = None) -> None:
        """Deliver the oldest ``n`` transfers (all by default) and acknowledge them."""
        batch, self.waiting = self.waiting[:n], self.waiting[len(self.waiting[:n]) :]
        for data, fut in batch:
            incoming = self.peer_node.open_incoming(None, len(data))
            incoming.write(data)
            await incoming.commit()
            fut.set_result(None)
        await settle()


def test_a_pump_keeps_the_window_and_gives_back_what_a_lost_link_had_in_flight(tmp_path: Path) -> None:
    """Links with send_future are fed from callbacks: a bundle leaves in the turn it was sent,
    never more than the send window are in flight, and those in flight when the link goes down
    go out again on the next link, each delivered once."""

    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", GROUND),))
        iss.send_window = 3
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        link = FutureLink(ground, GROUND, iss)
        iss.link_up(link)
        iss.send(POSTS, b"first")
        assert len(link.waiting) == 1  # sent in the same turn: no task to wake
        for i in range(6):
            iss.send(POSTS, f"post {i}".encode())
        assert len(link.waiting) == 3  # the window
        await link.release(2)  # two acknowledged: two more leave
        assert len(link.waiting) == 3
        iss.link_down(link)  # three in flight, never acknowledged
        link.closed = True
        again = FutureLink(ground, GROUND, iss)
        iss.link_up(again)
        while again.waiting:
            await again.release()
        got = []
        while (d := await ground.take(POSTS, timeout=0)) is not None:
            got.append(d.bundle.payload)
            await ground.ack(POSTS, d.store_id)
        assert sorted(got) == sorted([b"first", *(f"post {i}".encode() for i in range(6))])
        assert iss.status()["stored"]["bundles"] == 0
        await iss.stop()
        await ground.stop()

    asyncio.run(main())


def test_an_endpoint_handler_takes_bundles_as_they_arrive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler sees each bundle for its endpoint in the turn it is delivered, waiting ones
    first; the bundle is then forgotten, even when the handler fails."""

    async def main() -> None:
        clock = Clock()
        iss = make(tmp_path, ISS, clock, routes=(RouteConfig("*", GROUND),))
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        await iss.send(POSTS, b"before")
        connect(iss, ground)
        await settle()
        assert ground.pending_deliveries(POSTS) == 1
        seen: list[bytes] = []

        def handler(delivery: Any) -> None:
            seen.append(delivery.bundle.payload)
            if delivery.bundle.payload == b"bad":
                raise RuntimeError("cannot handle it")

        ground.set_handler(POSTS, handler)
        assert seen == [b"before"]  # the waiting one, at once
        for payload in (b"bad", b"after"):
            primary = PrimaryBlock(POSTS, RELAY, RELAY, clock.now, len(seen), 60_000)
            data = encode_bundle(Bundle(primary, (payload_block(payload),)))
            incoming = ground.open_incoming(None, len(data))
            incoming.write(data)
            durable = incoming.commit_nowait()
            assert seen[-1] == payload  # handed over before the commit, in the same call
            await durable
        assert seen == [b"before", b"bad", b"after"]
        assert "cannot handle it" in caplog.text
        assert ground.pending_deliveries(POSTS) == 0
        assert ground.status()["stored"]["bundles"] == 0
        ground.remove_handler(POSTS)
        await iss.send(POSTS, b"for take()")
        await settle()
        d = await ground.take(POSTS, timeout=1)
        assert d is not None and d.bundle.payload == b"for take()"
        await iss.stop()
        await ground.stop()

    asyncio.run(main())


def test_a_bundle_received_in_one_piece_is_not_copied(tmp_path: Path) -> None:
    """The bytes a link hands over in one piece are the bytes the node decodes and stores;
    pieces are joined once."""

    async def main() -> None:
        clock = Clock()
        ground = make(tmp_path, GROUND, clock, endpoints=(POSTS,))
        store = ground.store
        assert store is not None
        seen: list[bytes] = []
        sent = []
        for seq in range(2):
            primary = PrimaryBlock(POSTS, ISS, ISS, clock.now, seq, 60_000)
            data = encode_bundle(Bundle(primary, (payload_block(b"x" * 999),)))
            sent.append(data)
            incoming = ground.open_incoming(None, len(data))
            if seq == 0:
                incoming.write(data)
            else:
                incoming.write(data[:500])
                incoming.write(memoryview(data)[500:])
            committed = incoming.commit_nowait()
            # What the store is about to write, in the commit after this turn: the row's blob.
            seen.append(next(reversed(store._ins.values()))[-1])
            await committed
            assert seen[-1] == data
        assert seen[0] is sent[0]  # the very object the link wrote
        assert ground.pending_deliveries(POSTS) == 2
        await ground.stop()

    asyncio.run(main())
