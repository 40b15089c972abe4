"""A running node facing bad peers: it refuses what it must, with the right codes, and keeps serving."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from proxima.bpv7 import EID, Bundle, PrimaryBlock, encode_bundle, payload_block
from proxima.cla.tcpcl import (
    SEGMENT_END,
    SEGMENT_START,
    MessageType,
    MsgReject,
    MsgRejectReason,
    SessInit,
    TcpclConfig,
    XferAck,
    XferRefuse,
    XferRefuseReason,
    XferSegment,
    decode_contact_header,
    decode_message,
    encode_contact_header,
    encode_message,
)
from proxima.errors import Incomplete
from proxima.runtime.cla_drivers import TransferRefusedError, tcpcl_connect
from proxima.runtime.config import ListenConfig, NodeConfig
from proxima.runtime.links import IncomingBundle, Link
from proxima.runtime.node import Node, dtn_now_ms
from test_node_net import free_port

GROUND, POSTS = EID.parse("ipn:3.0"), EID.parse("ipn:3.7")


class NullSink:
    def open_incoming(self, link: Link | None, length: int | None) -> IncomingBundle:
        raise AssertionError("nothing is sent back in these tests")

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link) -> None:
        pass


def post(seq: int, size: int = 10) -> bytes:
    return encode_bundle(
        Bundle(
            PrimaryBlock(POSTS, EID.parse("ipn:9.1"), creation_time=dtn_now_ms(), sequence=seq),
            (payload_block(bytes(size)),),
        )
    )


def run_against_ground(tmp_path: Path, body: object, *, quota: int | None = None, cla: str = "tcpcl") -> None:
    port = free_port(socket.SOCK_DGRAM if cla == "udp" else socket.SOCK_STREAM)
    ground = Node(
        NodeConfig(
            node_id=GROUND,
            store_path=tmp_path / "ground",
            endpoints=(POSTS,),
            listen=(ListenConfig(cla, "127.0.0.1", port),),
            quota_bytes=quota,
        )
    )

    async def main() -> None:
        await ground.start()
        try:
            await body(ground, port)  # type: ignore[operator]
        finally:
            await ground.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_invalid_bundle_is_refused_not_acceptable_and_session_goes_on(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        with pytest.raises(TransferRefusedError) as info:
            await link.send(b"\x9f\x89\x07\xff")  # not a bundle
        assert info.value.reason == XferRefuseReason.NOT_ACCEPTABLE
        p1 = PrimaryBlock(POSTS, EID.parse("ipn:9.1"), creation_time=dtn_now_ms(), sequence=1)
        bad_crc = bytearray(encode_bundle(Bundle(p1, (payload_block(bytes(10), crc_type=2),))))
        bad_crc[-2] ^= 0xFF  # the last byte of the payload block's CRC-32C
        with pytest.raises(TransferRefusedError) as info:
            await link.send(bytes(bad_crc))
        assert info.value.reason == XferRefuseReason.NOT_ACCEPTABLE
        good = post(2)
        await link.send(good)  # the same session still works
        d = await ground.take(POSTS, timeout=5)
        assert d is not None and d.bundle.primary.sequence == 2
        assert ground.status()["counters"]["received"] >= 1
        await link.close()

    run_against_ground(tmp_path, body)


def test_bundle_over_quota_is_refused_no_resources(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        with pytest.raises(TransferRefusedError) as info:
            await link.send(post(1, size=50_000))
        assert info.value.reason == XferRefuseReason.NO_RESOURCES
        await link.send(post(2))
        assert (await ground.take(POSTS, timeout=5)) is not None
        await link.close()

    run_against_ground(tmp_path, body, quota=20_000)


def test_garbage_peer_is_dropped_and_others_are_served(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setblocking(False)
            await loop.sock_sendall(raw, b"GET / HTTP/1.1\r\n\r\n" * 10)
            closed = await asyncio.wait_for(loop.sock_recv(raw, 100), 5)
            assert closed == b""  # not a TCPCL peer: closed without a word (RFC 9174 §4.3)
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        await link.send(post(3))
        assert (await ground.take(POSTS, timeout=5)) is not None
        await link.close()

    run_against_ground(tmp_path, body)


class RawPeer:
    """A hand-driven TCPCLv4 peer on a plain socket: it writes messages and reads the answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""

    @classmethod
    async def open(cls, port: int, *, segment_mru: int = 1 << 20) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        writer.write(encode_contact_header())
        writer.write(encode_message(SessInit(0, segment_mru, 1 << 30, "ipn:9.0")))
        header = await reader.readexactly(6)
        decode_contact_header(header)
        init = await peer.next_message()
        assert isinstance(init, SessInit)
        peer.server_init = init
        return peer

    async def next_message(self, timeout: float = 5.0) -> object:
        while True:
            try:
                message, used = decode_message(self.buf)
            except Incomplete:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not chunk:
                    return None
                self.buf += chunk
                continue
            self.buf = self.buf[used:]
            return message

    def send(self, *messages: object) -> None:
        for m in messages:
            self.writer.write(encode_message(m))  # type: ignore[arg-type]

    async def outcome(self, transfer_id: int) -> object:
        """The final answer to a transfer: its XFER_REFUSE or its last XFER_ACK (segment
        acknowledgements on the way are skipped)."""
        while True:
            message = await self.next_message()
            if isinstance(message, XferRefuse) and message.transfer_id == transfer_id:
                return message
            if (
                isinstance(message, XferAck)
                and message.transfer_id == transfer_id
                and message.flags & SEGMENT_END
            ):
                return message
            if message is None:
                return None


def test_a_segment_over_our_segment_mru_is_rejected_and_its_transfer_refused(tmp_path: Path) -> None:
    """RFC 9174 §5.1.2/§5.2.4: MSG_REJECT "Message Unsupported", XFER_REFUSE "Not Acceptable";
    nothing is stored, and the same session then carries a good bundle."""

    async def body(ground: Node, port: int) -> None:
        peer = await RawPeer.open(port)
        mru = peer.server_init.segment_mru  # type: ignore[attr-defined]
        bundle = post(1, size=mru + 100)
        peer.send(XferSegment(SEGMENT_START | SEGMENT_END, 7, bundle))
        seen = [await peer.next_message(), await peer.next_message()]
        assert MsgReject(MsgRejectReason.UNSUPPORTED, MessageType.XFER_SEGMENT) in seen
        assert XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 7) in seen
        assert ground.store is not None and len(ground.store) == 0
        good = post(2)
        peer.send(XferSegment(SEGMENT_START | SEGMENT_END, 8, good))
        assert await peer.outcome(8) == XferAck(SEGMENT_START | SEGMENT_END, 8, len(good))
        assert (await ground.take(POSTS, timeout=5)) is not None
        peer.writer.close()

    run_against_ground(tmp_path, body)


def test_a_truncated_transfer_stores_nothing_and_other_peers_are_served(tmp_path: Path) -> None:
    """A transfer whose END never comes (the peer vanishes mid-bundle), and one whose bytes end
    before the bundle does, leave nothing stored; another peer goes on being served."""

    async def body(ground: Node, port: int) -> None:
        whole = post(3, size=5000)
        # 1. The peer sends half a bundle and goes away.
        peer = await RawPeer.open(port)
        peer.send(XferSegment(SEGMENT_START, 1, whole[:2500]))
        await peer.writer.drain()
        peer.writer.transport.abort()
        # 2. The peer says END after half a bundle: the bytes are not a whole bundle.
        peer2 = await RawPeer.open(port)
        peer2.send(XferSegment(SEGMENT_START, 1, whole[:1000]), XferSegment(SEGMENT_END, 1, whole[1000:2500]))
        assert await peer2.outcome(1) == XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, 1)
        # 3. A well-behaved peer, meanwhile, is served (and so is peer2, on the same session).
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:8.0"), NullSink())
        await link.send(post(4))
        peer2.send(XferSegment(SEGMENT_START | SEGMENT_END, 2, post(5)))
        assert isinstance(await peer2.outcome(2), XferAck)
        sequences = []
        for _ in range(2):
            d = await ground.take(POSTS, timeout=5)
            assert d is not None
            sequences.append(d.bundle.primary.sequence)
            await ground.ack(POSTS, d.store_id)
        assert sorted(sequences) == [4, 5]
        await asyncio.sleep(0.1)
        assert ground.store is not None and len(ground.store) == 0  # nothing of sequence 3
        await link.close()
        peer2.writer.close()

    run_against_ground(tmp_path, body)


def ion_fragment_with_blocks_numbered_zero() -> bytes:
    """Shaped like ION 4.1.3's fragments: each extension block's number left at 0, which RFC
    9171 reserves for the primary block (ION copies the blocks into a fragment without it)."""
    import cbor2

    primary = [7, 0x01, 0, [2, [3, 7]], [2, [5, 1]], [2, [5, 1]], [dtn_now_ms(), 10], 300_000, 0, 400]
    blocks = [[6, 0, 16, 0, cbor2.dumps([2, [5, 0]])], [7, 0, 1, 0, cbor2.dumps(5)], [1, 1, 1, 0, bytes(200)]]
    return b"\x9f" + cbor2.dumps(primary) + b"".join(cbor2.dumps(b) for b in blocks) + b"\xff"


@pytest.mark.parametrize("cla", ["stcp", "udp"])
def test_an_invalid_bundle_over_stcp_or_udp_is_counted_and_logged_and_the_link_goes_on(
    tmp_path: Path, cla: str, caplog: pytest.LogCaptureFixture
) -> None:
    """STCP and UDP have no way to refuse a bundle: an invalid one shows in the node's counters
    (received, invalid) and in a warning naming the problem, and the next bundle gets through."""
    kind = socket.SOCK_DGRAM if cla == "udp" else socket.SOCK_STREAM

    def frame(bundle: bytes) -> bytes:
        return bundle if cla == "udp" else len(bundle).to_bytes(4, "big") + bundle

    async def body(ground: Node, port: int) -> None:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.connect(("127.0.0.1", port))
            with caplog.at_level("WARNING"):
                sock.send(frame(ion_fragment_with_blocks_numbered_zero()))
                async with asyncio.timeout(5):
                    while ground.status()["counters"]["invalid"] < 1:
                        await asyncio.sleep(0.01)
            assert ground.status()["counters"]["received"] == 1
            warnings = [r.getMessage() for r in caplog.records]
            assert any("not kept" in w and "block number 0" in w for w in warnings), warnings
            sock.send(frame(post(1)))
            assert (await ground.take(POSTS, timeout=5)) is not None
            assert ground.status()["counters"]["invalid"] == 1

    run_against_ground(tmp_path, body, cla=cla)
