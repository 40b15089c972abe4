"""The asyncio convergence-layer drivers over real loopback sockets (TCPCLv4, MTCP, STCP, UDP).

Every test runs its own event loop with ``asyncio.run`` and is bounded by ``asyncio.wait_for``.
A :class:`MemorySink` stands in for the node: it keeps what it receives in memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyd3tn import bundle7 as p7
from pyd3tn.mtcp import MTCPConnection, MTCPSocket

from proxima.bpv7 import EID, Bundle, PrimaryBlock, decode_bundle, encode_bundle, payload_block
from proxima.cla.framing import STCP_KEEPALIVE, mtcp_frame, stcp_frame
from proxima.cla.tcpcl import (
    MessageType,
    MsgReject,
    MsgRejectReason,
    SessInit,
    SessTerm,
    SessTermReason,
    TcpclConfig,
    XferRefuseReason,
    decode_contact_header,
    decode_message,
    encode_contact_header,
    encode_message,
)
from proxima.errors import BundleError, LocalError, StoreError
from proxima.runtime.cla_drivers import (
    LinkClosedError,
    StreamLink,
    TcpclLink,
    TransferRefusedError,
    UdpLink,
    _writev,
    mtcp_connect,
    mtcp_listen,
    stcp_connect,
    stcp_listen,
    tcpcl_connect,
    tcpcl_listen,
    udp_endpoint,
)
from proxima.runtime.links import Link, SplicedBundle

HOST = "127.0.0.1"
SERVER_NODE = "dtn://server/"
CLIENT_NODE = "dtn://client/"


# --------------------------------------------------------------------------------------------
# A sink that keeps everything in memory


class MemoryIncoming:
    """One bundle being received into memory."""

    def __init__(self, sink: MemorySink, link: Link | None, length: int | None) -> None:
        self.sink = sink
        self.link = link
        self.length = length
        self.parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.sink.writes += 1
        if self.sink.write_error is not None:
            raise self.sink.write_error
        self.parts.append(bytes(data))
        self.sink.changed()

    async def commit(self) -> None:
        sink = self.sink
        if sink.commit_delay is not None:
            await asyncio.sleep(sink.commit_delay())
        if sink.commit_error is not None:
            raise sink.commit_error
        data = b"".join(self.parts)
        if self.length is not None and len(data) != self.length:
            raise BundleError(f"expected {self.length} bytes, got {len(data)}")
        sink.bundles.append(data)
        sink.sources.append(self.link)
        sink.changed()

    def abort(self) -> None:
        self.sink.aborted += 1
        self.sink.changed()


class MemorySink:
    """A BundleSink keeping received bundles and link events in memory."""

    def __init__(self) -> None:
        self.bundles: list[bytes] = []
        self.sources: list[Link | None] = []
        self.up: list[Link] = []
        self.down: list[Link] = []
        self.writes = 0
        self.aborted = 0
        self.write_error: Exception | None = None
        self.commit_error: Exception | None = None
        self.commit_delay: Callable[[], float] | None = None
        self._event = asyncio.Event()

    def open_incoming(self, link: Link | None, length: int | None) -> MemoryIncoming:
        return MemoryIncoming(self, link, length)

    def link_up(self, link: Link) -> None:
        self.up.append(link)
        self.changed()

    def link_down(self, link: Link) -> None:
        self.down.append(link)
        self.changed()

    def changed(self) -> None:
        self._event.set()

    async def wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._event.clear()
            await self._event.wait()

    async def wait_bundles(self, n: int) -> None:
        await self.wait(lambda: len(self.bundles) >= n)

    async def wait_up(self, n: int = 1) -> Link:
        await self.wait(lambda: len(self.up) >= n)
        return self.up[n - 1]


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]], timeout: float = 10.0) -> None:
    """Run one test's coroutine in a fresh loop, bounded in time."""

    async def main() -> None:
        await asyncio.wait_for(coro_fn(), timeout)

    asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` with short awaits (for counters no event signals)."""
    while not condition():
        await asyncio.sleep(0.005)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def bundle_bytes(payload: bytes, seq: int = 0) -> bytes:
    """A valid BPv7 bundle (proxima's encoder)."""
    primary = PrimaryBlock(
        EID.parse("dtn://b/in"), EID.parse("dtn://a/out"), creation_time=1_000_000, sequence=seq
    )
    return encode_bundle(Bundle(primary, (payload_block(payload),)))


async def tcpcl_pair(
    server_config: TcpclConfig | None = None,
    client_config: TcpclConfig | None = None,
    **tls: Any,
) -> tuple[asyncio.Server, MemorySink, TcpclLink, MemorySink, TcpclLink]:
    """A listener, a connected client, and the server side's link."""
    server_sink = MemorySink()
    client_sink = MemorySink()
    server_config = server_config or TcpclConfig(node_id=SERVER_NODE)
    client_config = client_config or TcpclConfig(node_id=CLIENT_NODE)
    server = await tcpcl_listen(HOST, 0, server_config, server_sink, ssl=tls.get("server_ssl"))
    client = await tcpcl_connect(
        HOST,
        port_of(server),
        client_config,
        client_sink,
        ssl=tls.get("client_ssl"),
        server_hostname=tls.get("server_hostname"),
    )
    server_link = await server_sink.wait_up()
    assert isinstance(server_link, TcpclLink)
    return server, server_sink, server_link, client_sink, client


async def close_all(server: asyncio.Server | None, *links: Any) -> None:
    for link in links:
        await link.close()
    if server is not None:
        server.close()
        await server.wait_closed()


# --------------------------------------------------------------------------------------------
# TCPCLv4


def test_tcpcl_exchange_both_ways() -> None:
    async def body() -> None:
        server, server_sink, server_link, client_sink, client = await tcpcl_pair()
        assert client.peer == EID.parse(SERVER_NODE)
        assert server_link.peer == EID.parse(CLIENT_NODE)
        assert client.cla == server_link.cla == "tcpcl"
        assert client_sink.up == [client]
        assert not client.tls
        await client.send(b"to the server")
        await server_link.send(b"to the client")
        assert server_sink.bundles == [b"to the server"]
        assert client_sink.bundles == [b"to the client"]
        assert server_sink.sources == [server_link]
        assert client.bundles_sent == 1
        assert server_link.bundles_received == 1
        await client.close()
        await server_link.wait_closed()
        assert server_sink.down == [server_link]
        assert client_sink.down == [client]
        with pytest.raises(LinkClosedError):
            await client.send(b"too late")
        await close_all(server)

    run(body)


def test_tcpcl_pipelines_1000_bundles() -> None:
    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair()
        bundles = [f"bundle {i}".encode() * 3 for i in range(1000)]
        await asyncio.gather(*(client.send(b) for b in bundles))
        assert server_sink.bundles == bundles
        assert client.bundles_sent == 1000
        await close_all(server, client)

    run(body)


def test_tcpcl_acks_stay_in_order_when_commits_finish_out_of_order() -> None:
    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair()
        rng = random.Random(7)
        server_sink.commit_delay = lambda: rng.random() * 0.02
        done_order: list[int] = []

        async def send(i: int) -> None:
            await client.send(b"x%d" % i)
            done_order.append(i)

        await asyncio.gather(*(send(i) for i in range(100)))
        assert sorted(server_sink.bundles) == sorted(b"x%d" % i for i in range(100))
        assert server_sink.bundles != [b"x%d" % i for i in range(100)]  # commits did finish out of order
        assert done_order == list(range(100))  # yet the final XFER_ACKs came in transfer order
        await close_all(server, client)

    run(body)


def test_tcpcl_streams_a_20mb_bundle_in_segments() -> None:
    async def body() -> None:
        big = random.Random(1).randbytes(20 * 1024 * 1024)
        server, server_sink, server_link, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, segment_mru=256 * 1024)
        )
        await client.send(big)
        assert server_sink.bundles == [big]
        assert server_sink.writes >= 80  # handed to the sink segment by segment
        # And the other way round, with the default segment size.
        await server_link.send(big[:5_000_000])
        await close_all(server, client)

    run(body, timeout=20)


def stored_bundle(tmp_path: Path, size: int, head: bytes = b"HEAD" * 10) -> tuple[SplicedBundle, bytes]:
    """A bundle whose bytes after ``head`` are a region of a file (as the store keeps a large
    one), and the bytes it stands for."""
    body = random.Random(size).randbytes(size)
    path = tmp_path / f"stored-{size}"
    path.write_bytes(b"before the region" + body + b"after it")
    return SplicedBundle(head, path, len(b"before the region"), size), head + body


def test_tcpcl_sends_a_stored_bundle_from_its_file_with_sendfile(tmp_path: Path) -> None:
    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, segment_mru=30_000)
        )
        small, small_bytes = stored_bundle(tmp_path, 90_000)
        await client.send(small)
        assert server_sink.bundles == [small_bytes]
        assert client.bytes_sendfile == 90_000  # an idle session takes it all at once
        # A socket that cannot take a whole segment: what it refuses goes through the
        # transport, and the next segments go with sendfile again once that drained.
        client_sock = client._transport.get_extra_info("socket")
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big, big_bytes = stored_bundle(tmp_path, 12_000_000)
        before = client.bytes_sendfile
        await asyncio.gather(client.send(big), client.send(b"queued behind"))
        assert server_sink.bundles[1:] == [big_bytes, b"queued behind"]
        assert 0 < client.bytes_sendfile - before < 12_000_000
        small.close()
        big.close()
        await close_all(server, client)

    run(body, timeout=20)


def test_writev_returns_what_a_full_socket_did_not_take() -> None:
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pieces: list[bytes | memoryview] = [
            random.Random(1).randbytes(300_000),
            memoryview(random.Random(2).randbytes(300_000)),
            b"tail",
        ]
        whole = b"".join(pieces)
        rest = _writev(a.fileno(), list(pieces))
        left = b"".join(rest)
        assert 0 < len(left) < len(whole)  # part went, the rest is handed back
        assert whole.endswith(left)
        received = bytearray()
        while len(received) < len(whole) - len(left):
            received += b.recv(1 << 20)
        assert bytes(received) == whole[: len(whole) - len(left)]
        # A socket that takes everything: nothing is left.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        while True:  # drain what the small buffer still holds
            b.setblocking(False)
            try:
                b.recv(1 << 20)
            except BlockingIOError:
                break
        assert _writev(a.fileno(), [b"one", memoryview(b"two")]) == []
    finally:
        a.close()
        b.close()
    # A failed write leaves every piece for the transport, which reports the error.
    pieces = [b"x", b"y"]
    assert _writev(a.fileno(), pieces) == pieces


def test_tcpcl_writes_large_segments_with_writev_through_a_full_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large segments go to the socket with writev, unjoined; what a full socket refuses goes
    through the transport, in order, and every bundle arrives whole."""
    calls: list[tuple[int, int, int]] = []  # pieces, bytes offered, bytes taken
    real = os.writev

    def counting(fd: int, buffers: Any) -> int:
        taken = real(fd, buffers)
        calls.append((len(buffers), sum(len(b) for b in buffers), taken))
        return taken

    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, segment_mru=50_000)
        )
        monkeypatch.setattr(os, "writev", counting)
        client._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        bundles = [random.Random(i).randbytes(120_000 + i) for i in range(40)]
        await asyncio.gather(*(client.send(b) for b in bundles))
        assert server_sink.bundles == bundles
        assert any(pieces > 1 for pieces, _, _ in calls)  # several per call, not joined first
        assert any(taken < offered for _, offered, taken in calls)  # the socket was full
        await close_all(server, client)

    run(body, timeout=20)


def test_tcpcl_yields_the_processor_after_a_bundle_sent_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first bundle of a loop turn is written at once and the processor handed to the task
    the write woke; the bundles queued behind it in the same turn go out together, no yield."""
    import proxima.runtime.cla_drivers as drivers

    yields: list[int] = []

    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair()
        monkeypatch.setattr(drivers, "_SCHED_YIELD", lambda: yields.append(client.bundles_sent))
        await client.send(b"alone")
        assert yields == [0]
        await asyncio.gather(*(client.send(b"turn %d" % i) for i in range(5)))
        assert yields == [0, 1]
        assert server_sink.bundles == [b"alone", *(b"turn %d" % i for i in range(5))]
        await close_all(server, client)

    run(body)


def test_tcpcl_small_bundles_queue_behind_a_large_one() -> None:
    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair()
        big = bytes(6_000_000)
        small = [b"small %d" % i for i in range(20)]
        await asyncio.gather(client.send(big), *(client.send(b) for b in small))
        assert server_sink.bundles == [big, *small]
        await close_all(server, client)

    run(body)


def test_tcpcl_close_lets_transfers_in_flight_finish() -> None:
    async def body() -> None:
        server, server_sink, server_link, _, client = await tcpcl_pair()
        server_sink.commit_delay = lambda: 0.05
        sends = [asyncio.ensure_future(client.send(b"late %d" % i)) for i in range(5)]
        await server_sink.wait(lambda: server_sink.writes >= 5)  # received, not yet committed
        await client.close()
        await asyncio.gather(*sends)  # every one was acknowledged before the session closed
        assert len(server_sink.bundles) == 5
        await server_link.wait_closed()
        await close_all(server)

    run(body)


def test_tcpcl_sends_fail_when_the_peer_drops_the_session() -> None:
    async def body() -> None:
        server, server_sink, server_link, client_sink, client = await tcpcl_pair()
        server_sink.commit_delay = lambda: 60.0  # never acknowledged in time
        sends = [asyncio.ensure_future(client.send(b"lost %d" % i)) for i in range(3)]
        await server_sink.wait(lambda: server_sink.writes >= 3)
        server_link.abort()
        for send in sends:
            with pytest.raises(LinkClosedError):
                await send
        await client_sink.wait(lambda: client in client_sink.down)
        assert not client.is_up
        await close_all(server)

    run(body)


@pytest.mark.parametrize(
    ("error", "reason", "text"),
    [
        (BundleError("bad CRC"), XferRefuseReason.NOT_ACCEPTABLE, "Not Acceptable"),
        (StoreError("store full"), XferRefuseReason.NO_RESOURCES, "No Resources"),
    ],
)
def test_tcpcl_refuses_when_commit_raises(error: Exception, reason: int, text: str) -> None:
    async def body() -> None:
        server, server_sink, server_link, _, client = await tcpcl_pair()
        server_sink.commit_error = error
        with pytest.raises(TransferRefusedError, match=text) as info:
            await client.send(b"refused bundle")
        assert info.value.reason == reason
        assert server_link.bundles_refused == 1
        assert server_sink.aborted == 1
        # The session survives the refusal.
        server_sink.commit_error = None
        await client.send(b"accepted bundle")
        assert server_sink.bundles == [b"accepted bundle"]
        await close_all(server, client)

    run(body)


class SharedCommitIncoming(MemoryIncoming):
    """An incoming bundle whose commit resolves with everyone else's: one future per group."""

    def commit_nowait(self) -> asyncio.Future[None]:
        sink = self.sink
        assert isinstance(sink, SharedCommitSink)
        sink.bundles.append(b"".join(self.parts))
        sink.commits += 1
        return sink.shared


class SharedCommitSink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.commits = 0

    def open_incoming(self, link: Link | None, length: int | None) -> MemoryIncoming:
        return SharedCommitIncoming(self, link, length)


@pytest.mark.parametrize("fails", [False, True])
def test_tcpcl_acknowledges_a_group_commit_s_bundles_together(fails: bool) -> None:
    """Bundles waiting for the same commit are acknowledged (or refused) when it ends, each
    once, none before."""

    async def body() -> None:
        sink = SharedCommitSink()
        server = await tcpcl_listen(HOST, 0, TcpclConfig(node_id=SERVER_NODE), sink)
        client = await tcpcl_connect(HOST, port_of(server), TcpclConfig(node_id=CLIENT_NODE), MemorySink())
        link = await sink.wait_up()
        assert isinstance(link, TcpclLink)
        sends = [client.send_future(f"bundle {i}".encode()) for i in range(5)]
        await until(lambda: sink.commits == 5)
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in sends)  # durable only when the commit ends
        if fails:
            sink.shared.set_exception(StoreError("the commit failed"))
        else:
            sink.shared.set_result(None)
        results = await asyncio.gather(*sends, return_exceptions=True)
        if fails:
            assert all(isinstance(r, TransferRefusedError) for r in results)
            assert link.bundles_refused == 5
        else:
            assert results == [None] * 5
            assert link.bundles_received == 5
        await close_all(server, client)

    run(body)


def test_tcpcl_refuses_when_write_raises_mid_transfer() -> None:
    async def body() -> None:
        server, server_sink, _, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, segment_mru=1024)
        )
        server_sink.write_error = StoreError("disk full")
        with pytest.raises(TransferRefusedError, match="No Resources"):
            await client.send(bytes(100_000))
        server_sink.write_error = None
        await client.send(b"next")
        assert server_sink.bundles == [b"next"]
        await close_all(server, client)

    run(body)


def test_tcpcl_send_over_peer_transfer_mru_raises() -> None:
    async def body() -> None:
        server, _, _, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, transfer_mru=1000)
        )
        with pytest.raises(LocalError, match="Transfer MRU"):
            await client.send(bytes(2000))
        await client.send(bytes(1000))
        await close_all(server, client)

    run(body)


def test_tcpcl_keepalives_flow_on_an_idle_session() -> None:
    async def body() -> None:
        server, _, server_link, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, keepalive=1),
            client_config=TcpclConfig(node_id=CLIENT_NODE, keepalive=1),
        )
        session = client.session
        assert session is not None
        assert session.keepalive == 1
        await until(lambda: client.keepalives_received >= 1 and server_link.keepalives_received >= 1)
        assert client.is_up
        assert server_link.is_up
        await client.send(b"still alive")
        await close_all(server, client)

    run(body)


async def raw_session(port: int, keepalive: int = 0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made TCPCL peer: contact header and SESS_INIT sent, the server's read back."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(encode_contact_header() + encode_message(SessInit(keepalive, 1 << 20, 1 << 20, "ipn:9.0")))
    header, _ = decode_contact_header(await reader.readexactly(6))
    assert header.version == 4
    head = await reader.readexactly(21)
    node_len = int.from_bytes(head[19:21], "big")
    rest = await reader.readexactly(node_len + 4)
    sess_init, _ = decode_message(head + rest)
    assert isinstance(sess_init, SessInit)
    assert sess_init.node_id == SERVER_NODE
    return reader, writer


def test_tcpcl_idle_peer_is_dropped_after_the_idle_timeout() -> None:
    async def body() -> None:
        sink = MemorySink()
        config = TcpclConfig(node_id=SERVER_NODE, keepalive=1, idle_timeout=0.2)
        server = await tcpcl_listen(HOST, 0, config, sink)
        reader, writer = await raw_session(port_of(server), keepalive=1)
        link = await sink.wait_up()
        rest = await reader.read()  # the silent peer gets SESS_TERM "Idle timeout", then EOF
        assert decode_message(rest) == (SessTerm(SessTermReason.IDLE_TIMEOUT), 3)
        await sink.wait(lambda: link in sink.down)
        writer.close()
        await writer.wait_closed()
        await close_all(server)

    run(body)


def test_tcpcl_garbage_peers_and_the_listener_keeps_serving() -> None:
    async def body() -> None:
        sink = MemorySink()
        server = await tcpcl_listen(HOST, 0, TcpclConfig(node_id=SERVER_NODE), sink)
        port = port_of(server)
        # Not TCPCL at all: closed without a word (RFC 9174 §4.3).
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        # A proper session, then an unknown message type: MSG_REJECT, then the session closes.
        reader, writer = await raw_session(port)
        link = await sink.wait_up()
        writer.write(b"\xee\xee\xee")
        rest = await reader.read()
        message, _ = decode_message(rest)
        assert message == MsgReject(MsgRejectReason.TYPE_UNKNOWN, 0xEE)
        await sink.wait(lambda: link in sink.down)
        assert isinstance(link, TcpclLink)
        assert link.protocol_violations >= 1
        writer.close()
        await writer.wait_closed()
        # A well-behaved peer is still served.
        client_sink = MemorySink()
        client = await tcpcl_connect(HOST, port, TcpclConfig(node_id=CLIENT_NODE), client_sink)
        await client.send(b"after the garbage")
        assert sink.bundles == [b"after the garbage"]
        await close_all(server, client)

    run(body)


def test_tcpcl_half_sent_transfer_is_aborted_when_the_peer_vanishes() -> None:
    async def body() -> None:
        sink = MemorySink()
        server = await tcpcl_listen(HOST, 0, TcpclConfig(node_id=SERVER_NODE), sink)
        reader, writer = await raw_session(port_of(server))
        link = await sink.wait_up()
        # START segment of 10 bytes announcing 20 (Transfer Length), then the peer is gone.
        ext = b"\x00\x00\x01\x00\x08" + (20).to_bytes(8, "big")
        segment = bytes([MessageType.XFER_SEGMENT, 0x02]) + (0).to_bytes(8, "big")
        segment += len(ext).to_bytes(4, "big") + ext + (10).to_bytes(8, "big") + bytes(10)
        writer.write(segment)
        await reader.readexactly(18)  # the XFER_ACK of the first segment
        writer.close()
        await writer.wait_closed()
        await sink.wait(lambda: link in sink.down)
        assert sink.aborted == 1
        assert sink.bundles == []
        await close_all(server)

    run(body)


def make_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 'localhost' (no CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tcpcl_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)

    async def body() -> None:
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        client_ssl = ssl.create_default_context(cafile=str(cert))
        server, server_sink, server_link, client_sink, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, can_tls=True),
            client_config=TcpclConfig(node_id=CLIENT_NODE, can_tls=True, require_tls=True),
            server_ssl=server_ssl,
            client_ssl=client_ssl,
            server_hostname="localhost",
        )
        assert client.tls
        assert server_link.tls
        assert client.peer == EID.parse(SERVER_NODE)
        await asyncio.gather(*(client.send(b"secret %d" % i) for i in range(50)))
        await server_link.send(b"secret reply")
        assert server_sink.bundles == [b"secret %d" % i for i in range(50)]
        assert client_sink.bundles == [b"secret reply"]
        await close_all(server, client)
        await server_link.wait_closed()

    run(body)


def test_tcpcl_tls_sends_a_stored_bundle_through_the_tls_layer(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)

    async def body() -> None:
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        server, server_sink, _, _, client = await tcpcl_pair(
            server_config=TcpclConfig(node_id=SERVER_NODE, can_tls=True),
            client_config=TcpclConfig(node_id=CLIENT_NODE, can_tls=True, require_tls=True),
            server_ssl=server_ssl,
            client_ssl=ssl.create_default_context(cafile=str(cert)),
            server_hostname="localhost",
        )
        stored, expected = stored_bundle(tmp_path, 3_000_000)
        await client.send(stored)
        assert server_sink.bundles == [expected]
        assert client.bytes_sendfile == 0  # sendfile would bypass the encryption
        stored.close()
        await close_all(server, client)

    run(body)


def test_tcpcl_tls_records_sent_with_the_contact_header(tmp_path: Path) -> None:
    """A peer that sends its ClientHello right behind its contact header (the core keeps those
    bytes as trailing data; the driver hands them to the TLS layer)."""
    cert, key = make_certificate(tmp_path)

    async def body() -> None:
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        sink = MemorySink()
        config = TcpclConfig(node_id=SERVER_NODE, can_tls=True)
        server = await tcpcl_listen(HOST, 0, config, sink, ssl=server_ssl)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl.create_default_context(cafile=str(cert)).wrap_bio(
            incoming, outgoing, server_hostname="localhost"
        )
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        reader, writer = await asyncio.open_connection(HOST, port_of(server))
        writer.write(encode_contact_header(can_tls=True) + outgoing.read())
        header, _ = decode_contact_header(await reader.readexactly(6))
        assert header.can_tls
        while True:
            incoming.write(await reader.read(65536))
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
        tls.write(encode_message(SessInit(0, 1 << 20, 1 << 20, "ipn:9.0")))
        writer.write(outgoing.read())
        link = await sink.wait_up()
        assert isinstance(link, TcpclLink)
        assert link.tls
        assert link.peer == EID.parse("ipn:9.0")
        writer.close()
        await writer.wait_closed()
        await sink.wait(lambda: link in sink.down)
        await close_all(server)

    run(body)


def test_tcpcl_tls_with_an_untrusted_certificate_fails(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)

    async def body() -> None:
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        client_ssl = ssl.create_default_context()  # does not trust our certificate
        server_sink = MemorySink()
        server = await tcpcl_listen(
            HOST, 0, TcpclConfig(node_id=SERVER_NODE, can_tls=True), server_sink, ssl=server_ssl
        )
        with pytest.raises(LinkClosedError, match="TLS"):
            await tcpcl_connect(
                HOST,
                port_of(server),
                TcpclConfig(node_id=CLIENT_NODE, can_tls=True),
                MemorySink(),
                ssl=client_ssl,
                server_hostname="localhost",
            )
        assert server_sink.up == []
        await close_all(server)

    run(body)


def test_tcpcl_tls_needs_a_context() -> None:
    async def body() -> None:
        with pytest.raises(LocalError, match="SSL context"):
            await tcpcl_listen(HOST, 0, TcpclConfig(can_tls=True), MemorySink())

    run(body)


# --------------------------------------------------------------------------------------------
# MTCP and STCP


@pytest.mark.parametrize(("listen", "connect"), [(mtcp_listen, mtcp_connect), (stcp_listen, stcp_connect)])
def test_stream_round_trip(listen: Any, connect: Any) -> None:
    async def body() -> None:
        server_sink = MemorySink()
        client_sink = MemorySink()
        server = await listen(HOST, 0, server_sink)
        neighbour = EID.parse("ipn:7.0")
        client = await connect(HOST, port_of(server), client_sink, peer=neighbour)
        assert isinstance(client, StreamLink)
        assert client.peer == neighbour
        server_link = await server_sink.wait_up()
        assert server_link.peer is None
        assert server_link.cla == client.cla
        big = random.Random(2).randbytes(3_000_000)
        bundles = [b"one", b"two" * 100, big, b"four"]
        for b in bundles:
            await client.send(b)
        await server_sink.wait_bundles(len(bundles))
        assert server_sink.bundles == bundles
        assert server_sink.writes > len(bundles)  # the big one arrived in pieces
        await server_link.send(b"back")
        await client_sink.wait_bundles(1)
        assert client_sink.bundles == [b"back"]
        await client.close()
        await server_sink.wait(lambda: server_link in server_sink.down)
        with pytest.raises(LinkClosedError):
            await client.send(b"closed")
        await close_all(server)

    run(body)


def test_stcp_keepalive_when_idle() -> None:
    async def body() -> None:
        server_sink = MemorySink()
        server = await stcp_listen(HOST, 0, server_sink, keepalive=0.05)
        client = await stcp_connect(HOST, port_of(server), MemorySink(), keepalive=0.05)
        server_link = await server_sink.wait_up()
        assert isinstance(server_link, StreamLink)
        await until(lambda: server_link.keepalives_received >= 2 and client.keepalives_received >= 2)
        await client.send(b"data after keepalives")
        await server_sink.wait_bundles(1)
        await close_all(server, client)

    run(body)


@pytest.mark.parametrize(
    ("listen", "garbage"),
    [(mtcp_listen, b"\x9f\x88garbage"), (stcp_listen, b"\x00\x00\x00\x05abc")],
)
def test_stream_framing_errors_close_the_connection(listen: Any, garbage: bytes) -> None:
    async def body() -> None:
        sink = MemorySink()
        server = await listen(HOST, 0, sink, max_bundle_size=1000)
        port = port_of(server)
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(garbage)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await sink.wait(lambda: len(sink.down) == 1)
        # Over the size limit, then a good peer.
        reader, writer = await asyncio.open_connection(HOST, port)
        frame = mtcp_frame if listen is mtcp_listen else stcp_frame
        writer.write(frame(bytes(2000)))
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(frame(b"fine") + (STCP_KEEPALIVE if listen is stcp_listen else b""))
        await sink.wait_bundles(1)
        assert sink.bundles == [b"fine"]
        writer.close()
        await writer.wait_closed()
        await sink.wait(lambda: len(sink.down) == 3)
        await close_all(server)

    run(body)


def test_mtcp_from_pyd3tn() -> None:
    bundle = p7.serialize_bundle7("dtn://pyd3tn/app", "dtn://proxima/in", b"hello from pyd3tn")

    def pyd3tn_send(port: int) -> None:
        with MTCPConnection(HOST, port, timeout=5) as conn:
            conn.send_bundle(bundle)

    async def body() -> None:
        sink = MemorySink()
        server = await mtcp_listen(HOST, 0, sink)
        await asyncio.to_thread(pyd3tn_send, port_of(server))
        await sink.wait_bundles(1)
        assert sink.bundles == [bundle]
        assert decode_bundle(sink.bundles[0]).payload == b"hello from pyd3tn"
        await sink.wait(lambda: len(sink.down) == 1)
        await close_all(server)

    run(body)


def test_mtcp_to_pyd3tn() -> None:
    bundles = [bundle_bytes(b"to pyd3tn", 1), bundle_bytes(bytes(200_000), 2)]

    def pyd3tn_receive(listener: socket.socket) -> list[bytes]:
        listener.settimeout(5)
        conn, _ = listener.accept()
        mtcp = MTCPSocket(conn, timeout=5)
        try:
            return [mtcp.recv_bundle() for _ in bundles]
        finally:
            mtcp.disconnect()

    async def body() -> None:
        with socket.create_server((HOST, 0)) as listener:
            receiver = asyncio.ensure_future(asyncio.to_thread(pyd3tn_receive, listener))
            sink = MemorySink()
            link = await mtcp_connect(HOST, listener.getsockname()[1], sink)
            for b in bundles:
                await link.send(b)
            received = await receiver
            await link.wait_closed()  # pyd3tn hung up
        assert received == bundles
        assert p7.Bundle.parse(received[0]).payload_block.data == b"to pyd3tn"
        assert sink.down == [link]

    run(body)


# --------------------------------------------------------------------------------------------
# UDP


def test_udp_round_trip_and_invalid_datagrams() -> None:
    async def body() -> None:
        sink_b = MemorySink()
        b = await udp_endpoint(HOST, 0, sink_b)  # receive only: not an up link
        assert sink_b.up == []
        sink_a = MemorySink()
        a = await udp_endpoint(HOST, 0, sink_a, peer_addr=b.local_address, peer=EID.parse("ipn:2.0"))
        assert isinstance(a, UdpLink)
        assert sink_a.up == [a]
        assert a.peer == EID.parse("ipn:2.0")
        assert a.cla == "udp"
        bundle = bundle_bytes(b"over udp")
        # Invalid datagrams first: counted and dropped.
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            raw.sendto(b"hello", b.local_address)
            raw.sendto(b"\x06\x00bpv6", b.local_address)
        finally:
            raw.close()
        await a.send(bundle)
        await sink_b.wait_bundles(1)
        assert sink_b.bundles == [bundle]
        assert sink_b.sources == [None]
        assert b.invalid_datagrams == 2
        # The other way round.
        c = await udp_endpoint(HOST, 0, MemorySink(), peer_addr=a.local_address)
        await c.send(bundle)
        await sink_a.wait_bundles(1)
        assert sink_a.sources == [a]
        # Too big for a datagram: a clear error.
        with pytest.raises(LocalError, match="does not fit in a datagram"):
            await a.send(b"\x9f" + bytes(70_000))
        with pytest.raises(LocalError, match="no peer address"):
            await b.send(bundle)
        for endpoint in (a, b, c):
            await endpoint.close()
        assert sink_a.down == [a]

    run(body)


# --------------------------------------------------------------------------------------------
# Shared


def test_links_satisfy_the_link_protocol() -> None:
    async def body() -> None:
        server, _, server_link, _, client = await tcpcl_pair()
        links: list[Link] = [client, server_link]
        for link in links:
            assert isinstance(link.cla, str)
            send: Callable[[bytes], Awaitable[None]] = link.send
            assert callable(send)
        await close_all(server, client)

    run(body)
