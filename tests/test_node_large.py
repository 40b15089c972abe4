"""Bundles too large to hold: they stream through nodes in pieces, never whole in memory."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from proxima.bpv7 import EID
from proxima.bpv7.bundle import Bundle, PrimaryBlock, decode_bundle, encode_bundle, payload_block
from proxima.bpv7.eid import DTN_NONE
from proxima.bpv7.stream import decode_bundle_head
from proxima.errors import BundleError, CRCError, StoreError
from proxima.runtime.config import NodeConfig
from proxima.runtime.node import STREAM_THRESHOLD, Node, PayloadFile, dtn_now_ms
from test_node_net import chain as net_chain

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
MEDIA = EID.parse("ipn:3.9")
MIB = 1024 * 1024


def chain(tmp_path: Path, cla: str = "tcpcl") -> tuple[Node, Node, Node]:
    return net_chain(tmp_path, cla, MEDIA)


def media_file(path: Path, size: int) -> str:
    """A file of ``size`` pseudo-random bytes written in pieces; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        block = os.urandom(MIB)
        left, n = size, 0
        while left:
            piece = (block[n % 251 :] + block[: n % 251])[: min(MIB, left)]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
            n += 1
    return digest.hexdigest()


def large_bundle(
    payload: bytes,
    sequence: int,
    *,
    report_to: EID = DTN_NONE,
    flags: int = 0,
    created: int | None = None,
    fragment: tuple[int, int] | None = None,
) -> bytes:
    """A bundle for MEDIA from ISS; ``fragment``: (offset, total ADU length) of a fragment."""
    primary = PrimaryBlock(
        destination=MEDIA,
        source=ISS,
        report_to=report_to,
        creation_time=dtn_now_ms() if created is None else created,
        sequence=sequence,
        lifetime=86_400_000,
        flags=flags,
        crc_type=2,
        fragment_offset=None if fragment is None else fragment[0],
        total_adu_length=None if fragment is None else fragment[1],
    )
    return encode_bundle(Bundle(primary, (payload_block(payload, crc_type=2),)))


def relay_waiting(tmp_path: Path, endpoint: EID, quota: int | None = None) -> Node:
    """A relay with a route to the ground that never comes up: what it takes in waits stored."""
    from proxima.runtime.config import RouteConfig

    return Node(
        NodeConfig(
            node_id=RELAY,
            store_path=tmp_path / "r",
            endpoints=(endpoint,),
            routes=(RouteConfig("ipn:3.*", GROUND),),
            quota_bytes=quota,
        )
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("cla", ["tcpcl", "mtcp", "stcp"])
def test_large_bundle_crosses_three_nodes_without_being_held(cla: str, tmp_path: Path) -> None:
    size = 40 * MIB + 12_345
    src = tmp_path / "video.bin"
    want = media_file(src, size)
    iss, relay, ground = chain(tmp_path, cla)

    async def main() -> tuple[int, str]:
        for n in (ground, relay, iss):
            await n.start()
        tracemalloc.start()
        try:
            await iss.send_file(MEDIA, src)
            # a small post sent after the video overtakes nothing it should not: both arrive
            await iss.send(MEDIA, b"caption")
            got: dict[bool, object] = {}
            while len(got) < 2:
                d = await ground.take(MEDIA, timeout=30)
                assert d is not None, "the bundles did not arrive"
                large = d.payload_file is not None
                if large:
                    assert d.bundle.payload == b""  # the payload never came into memory
                    assert d.payload_length == size
                    out = tmp_path / "received.bin"
                    assert d.payload_file is not None
                    d.payload_file.copy_to(out)
                    got[True] = sha256_of(out)
                else:
                    got[False] = d.read_payload()
                await ground.ack(MEDIA, d.store_id)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got[False] == b"caption"
        for n in (iss, relay, ground):
            assert n.store is not None
            assert len(n.store) == 0, f"{n.config.node_id} still stores {len(n.store)} bundles"
            await n.stop()
        return peak, str(got[True])

    peak, digest = asyncio.run(asyncio.wait_for(main(), 120))
    assert digest == want
    # Three nodes in this process relayed 40 MiB: allocations stay a few pieces' worth.
    assert peak < 12 * MIB, f"peak Python allocations {peak / MIB:.1f} MiB"


def test_large_bundle_survives_a_restart_of_the_relay(tmp_path: Path) -> None:
    """A large bundle stored by the relay while the ground is away is sent after a restart."""
    size = STREAM_THRESHOLD * 2 + 7
    src = tmp_path / "photo.raw"
    want = media_file(src, size)

    async def phase1() -> None:
        iss, relay, _ = chain(tmp_path)
        await relay.start()
        await iss.start()
        await iss.send_file(MEDIA, src)
        for _ in range(200):
            assert relay.store is not None
            if len(relay.store) == 1 and iss.store is not None and len(iss.store) == 0:
                break
            await asyncio.sleep(0.05)
        assert relay.store is not None and len(relay.store) == 1
        held = next(iter(relay.agent._held.values()))
        assert held.external and held.bundle.payload == b""
        await iss.stop()
        await relay.stop()

    async def phase2() -> str:
        _, relay, ground = chain(tmp_path)
        # same ports are not needed: the relay dials the ground anew from a fresh config
        await ground.start()
        await relay.start()
        d = await ground.take(MEDIA, timeout=30)
        assert d is not None and d.payload_file is not None
        out = tmp_path / "out.raw"
        d.payload_file.copy_to(out)
        await ground.ack(MEDIA, d.store_id)
        await relay.stop()
        await ground.stop()
        return sha256_of(out)

    asyncio.run(asyncio.wait_for(phase1(), 60))
    assert asyncio.run(asyncio.wait_for(phase2(), 60)) == want


def test_large_payloads_sent_from_memory_wait_on_disk_and_survive_a_restart(tmp_path: Path) -> None:
    """A large payload handed to send() goes to the store's file at once: a backlog waiting for
    a contact holds none of it in memory, and reaches the ground intact after a restart."""
    payloads = [os.urandom(STREAM_THRESHOLD + 1 + k) for k in range(3)]

    async def phase1() -> list[tuple[int, int]]:
        iss, _, _ = chain(tmp_path)
        await iss.start()  # the relay is not up: nothing can leave
        stamps = []
        for payload in payloads:
            await iss.send(MEDIA, payload)
            stamps.append((iss.last_sent.primary.creation_time, iss.last_sent.primary.sequence))
        held = list(iss.agent._held.values())
        assert len(held) == 3
        for h in held:
            assert h.external and h.bundle.payload == b"" and h.wire is None
        assert iss.store is not None and len(iss.store) == 3
        await iss.stop()
        return stamps

    async def phase2() -> dict[tuple[int, int], bytes]:
        iss, relay, ground = chain(tmp_path)
        for n in (ground, relay, iss):
            await n.start()
        got = {}
        for _ in payloads:
            d = await ground.take(MEDIA, timeout=30)
            assert d is not None, "a bundle did not arrive"
            p = d.bundle.primary
            got[(p.creation_time, p.sequence)] = d.read_payload()
            await ground.ack(MEDIA, d.store_id)
        for n in (iss, relay, ground):
            await n.stop()
        return got

    stamps = asyncio.run(asyncio.wait_for(phase1(), 60))
    got = asyncio.run(asyncio.wait_for(phase2(), 60))
    assert got == dict(zip(stamps, payloads, strict=True))


def test_streamed_bundle_with_a_bad_payload_crc_is_refused(tmp_path: Path) -> None:
    """The payload CRC is checked as the bytes stream past; a corrupt bundle is not kept."""
    node = Node(NodeConfig(node_id=GROUND, store_path=tmp_path / "g", endpoints=(MEDIA,)))
    node.open()
    try:
        # A large bundle with one payload byte flipped.
        payload = os.urandom(STREAM_THRESHOLD + 1000)
        raw = bytearray(large_bundle(payload, sequence=1))
        raw[len(raw) // 2] ^= 0x40

        async def feed(data: bytes, piece: int) -> None:
            incoming = node.open_incoming(None, None)
            for i in range(0, len(data), piece):
                incoming.write(data[i : i + piece])
            await incoming.commit()

        with pytest.raises(CRCError):
            asyncio.run(feed(bytes(raw), 65_536))
        assert node.store is not None and len(node.store) == 0
        assert not any(p.iterdir()) if (p := tmp_path / "g" / "payloads").exists() else True
        # The intact bundle, fed in odd pieces (and one byte at a time at the start), is kept.
        raw[len(raw) // 2] ^= 0x40
        good = bytes(raw)

        async def feed_odd() -> None:
            incoming = node.open_incoming(None, None)
            for i in range(200):
                incoming.write(good[i : i + 1])
            for i in range(200, len(good), 99_991):
                incoming.write(good[i : i + 99_991])
            await incoming.commit()

        asyncio.run(feed_odd())
        assert len(node.store) == 1
        [d] = node.take_ready(MEDIA, 10)
        assert d.payload_file is not None and d.read_payload() == payload
        assert decode_bundle_head(good).payload_length == len(payload)
        assert decode_bundle(good).payload == payload
    finally:
        node.store.close() if node.store is not None else None


def test_streamed_bundle_truncated_or_with_trailing_bytes_is_refused(tmp_path: Path) -> None:
    node = Node(NodeConfig(node_id=GROUND, store_path=tmp_path / "g", endpoints=(MEDIA,)))
    node.open()
    good = large_bundle(bytes(STREAM_THRESHOLD + 10), sequence=2)

    async def feed(data: bytes) -> None:
        incoming = node.open_incoming(None, len(data))
        for i in range(0, len(data), MIB):
            incoming.write(data[i : i + MIB])
        await incoming.commit()

    try:
        with pytest.raises(BundleError, match="truncated"):
            asyncio.run(feed(good[:-3]))
        with pytest.raises(BundleError, match="goes on after"):
            asyncio.run(feed(good + b"\x00" * 8))
        assert node.store is not None and len(node.store) == 0
        asyncio.run(feed(good))
        assert len(node.store) == 1
    finally:
        node.store.close() if node.store is not None else None


async def feed(node: Node, data: bytes) -> None:
    incoming = node.open_incoming(None, len(data))
    for i in range(0, len(data), MIB):
        incoming.write(data[i : i + MIB])
    await incoming.commit()


def test_a_streamed_bundle_whose_unknown_block_is_dropped_is_kept_and_delivered(tmp_path: Path) -> None:
    """The agent rebuilds a bundle that loses a block (delete-if-unprocessed): the stored copy
    must still be recognised as its Persist, not thrown away after the acknowledgement."""
    from proxima.bpv7.bundle import CanonicalBlock

    primary = PrimaryBlock(
        destination=MEDIA,
        source=ISS,
        report_to=DTN_NONE,
        creation_time=dtn_now_ms(),
        sequence=1,
        lifetime=86_400_000,
        crc_type=2,
    )
    payload = b"A" * (STREAM_THRESHOLD + 1000)
    blocks = (CanonicalBlock(200, 5, 0x10, 0, b"x"), payload_block(payload, crc_type=2))
    data = encode_bundle(Bundle(primary, blocks))

    async def main() -> None:
        node = Node(NodeConfig(node_id=GROUND, store_path=tmp_path / "g", endpoints=(MEDIA,)))
        node.open()
        await feed(node, data)
        d = await node.take(MEDIA, timeout=1)
        assert d is not None and d.read_payload() == payload
        await node.stop()

    asyncio.run(main())


def test_large_fragments_for_this_node_are_reassembled_across_a_restart(tmp_path: Path) -> None:
    from proxima.bpv7.fragment import fragment_to_fit

    payload = bytes(range(256)) * ((2 * STREAM_THRESHOLD + 4096) // 256)
    primary = PrimaryBlock(
        destination=MEDIA,
        source=ISS,
        report_to=DTN_NONE,
        creation_time=dtn_now_ms(),
        sequence=7,
        lifetime=86_400_000,
        crc_type=2,
    )
    fragments = fragment_to_fit(
        Bundle(primary, (payload_block(payload, crc_type=2),)), STREAM_THRESHOLD + 2048
    )
    assert len(fragments) == 3
    config = NodeConfig(node_id=GROUND, store_path=tmp_path / "g", endpoints=(MEDIA,))

    async def main() -> None:
        node = Node(config)
        node.open()
        await feed(node, encode_bundle(fragments[0]))
        await node.stop()
        node = Node(config)
        node.open()
        for f in fragments[1:]:
            await feed(node, encode_bundle(f))
        # the first fragment comes again (its sender never heard the acknowledgement)
        await feed(node, encode_bundle(fragments[0]))
        ready = node.take_ready(MEDIA, 10)
        assert len(ready) == 1  # delivered once, not once per reassembly
        assert ready[0].read_payload() == payload
        await node.stop()

    asyncio.run(main())


def test_large_fragments_differing_only_in_length_are_two_bundles(tmp_path: Path) -> None:
    """A fragment's identity holds its payload length (RFC 9171 §5.9) even when the payload
    streams into a file and the decoded bundle's payload block is left empty: two fragments at
    the same offset with different lengths are both kept, and their reports name each length."""
    from proxima.bpv7.admin import StatusReport, decode_admin_record
    from proxima.bpv7.bundle import BundleFlag

    reports = EID.parse("ipn:2.5")
    created = dtn_now_ms()
    lengths = (STREAM_THRESHOLD + 1000, STREAM_THRESHOLD + 5000)

    def fragment(length: int) -> bytes:
        flags = BundleFlag.IS_FRAGMENT | BundleFlag.REPORT_RECEPTION
        where = (0, 3 * STREAM_THRESHOLD)  # offset, total ADU length
        return large_bundle(b"F" * length, 3, report_to=reports, flags=flags, created=created, fragment=where)

    async def main() -> None:
        node = relay_waiting(tmp_path, reports)
        node.open()
        try:
            for length in lengths:
                await feed(node, fragment(length))
            assert node.agent.counters.duplicates == 0
            assert node.store is not None
            kept = [b for b in node.store.pending(state=None) if b.destination == MEDIA]
            assert sorted(b.identity[4] or 0 for b in kept) == list(lengths)
            seen = []
            for d in node.take_ready(reports, 10):
                record = decode_admin_record(d.bundle.payload)
                assert isinstance(record, StatusReport) and record.received.asserted
                seen.append((record.fragment_offset, record.fragment_length))
            assert sorted(seen) == [(0, n) for n in lengths]
            # the same fragment once more is a duplicate, and is not stored twice
            await feed(node, fragment(lengths[1]))
            assert node.agent.counters.duplicates == 1
            assert sum(1 for b in node.store.pending(state=None) if b.destination == MEDIA) == 2
        finally:
            await node.stop()

    asyncio.run(main())


def test_a_large_bundle_the_store_has_no_room_for_is_refused_and_reported(tmp_path: Path) -> None:
    """Refused for want of room (reason 4) once its blocks before the payload are in: its
    deletion report (RFC 9171 §5.10) names it, and the store keeps what it held."""
    from proxima.bpv7.admin import StatusReport, decode_admin_record
    from proxima.bpv7.bundle import BundleFlag

    reports = EID.parse("ipn:2.5")

    def big(seq: int, flags: int = 0) -> bytes:
        return large_bundle(b"M" * (5 * MIB), seq, report_to=reports, flags=flags)

    async def main() -> None:
        node = relay_waiting(tmp_path, reports, quota=8 * MIB)
        node.open()
        try:
            await feed(node, big(1))
            assert node.store is not None and len(node.store) == 1
            for seq, flags in ((2, BundleFlag.REPORT_DELETION), (3, 0)):
                with pytest.raises(StoreError) as info:
                    await feed(node, big(seq, flags))
                assert info.value.reason == 4
            assert node.agent.counters.deleted == 2
            [report] = node.take_ready(reports, 10)  # only the one that asked
            record = decode_admin_record(report.bundle.payload)
            assert isinstance(record, StatusReport) and record.deleted.asserted
            assert (record.source, record.sequence, record.reason) == (ISS, 2, 4)
            kept = [b for b in node.store.pending(state=None) if b.destination == MEDIA]
            assert [b.identity[2] for b in kept] == [1]
        finally:
            await node.stop()

    asyncio.run(main())


def test_stopping_while_a_large_file_is_copied_in_waits_for_the_copy_and_keeps_nothing_half(
    tmp_path: Path,
) -> None:
    src = tmp_path / "video.bin"
    media_file(src, 24 * MIB)
    config = NodeConfig(node_id=ISS, store_path=tmp_path / "iss")

    async def main() -> None:
        node = Node(config)
        node.open()
        _, durable = node.start_send_file(MEDIA, src)
        await asyncio.sleep(0)  # the copy has started in its thread
        await node.stop()  # cancels it, after the thread is done with the file
        assert durable.done()
        node = Node(config)
        node.open()  # a half-copied file is an orphan: removed at open
        assert node.store is not None and len(node.store) == 0
        assert not any((tmp_path / "iss" / "payloads").iterdir())
        await node.stop()

    asyncio.run(main())


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "read-write"])
def test_a_stored_payload_is_copied_out_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    """A payload saved to a file goes with copy_file_range, or chunk by chunk where the file
    systems refuse it; a stored file cut short is an error either way."""
    body = random.Random(7).randbytes(3 * 1024 * 1024 + 5)
    stored = tmp_path / "stored"
    stored.write_bytes(b"head" + body + b"tail")
    calls: list[int] = []
    real = os.copy_file_range

    def copy_file_range(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        calls.append(count)
        if not kernel_copy:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst, count, offset_src)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    PayloadFile(stored, 4, len(body)).copy_to(tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == body
    assert calls and calls[0] == len(body)
    with pytest.raises(StoreError, match="ends 10 bytes early"):
        PayloadFile(stored, 4, len(body) + 14).copy_to(tmp_path / "short")
