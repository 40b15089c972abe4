"""MTCP, STCP and UDP framing (proxima.cla.framing): round trips, streaming, limits, errors, pyd3tn interop.

pyd3tn 0.15.2 interop runs without any socket: its sender ``MTCPSocket.send_bundle`` is given a fake
socket that records ``sendall``; its receiver ``MTCPSocket.recv_bundle`` does its own head parsing
and reads through the module-level ``sock_recv_raw``, which is replaced by a reader over bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable, Iterable, Sequence

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyd3tn import bundle7 as p7
from pyd3tn import mtcp as pmtcp
from pyd3tn.helpers import CommunicationError

from proxima.bpv7 import Bundle, decode_bundle, encode_bundle
from proxima.cla.framing import (
    CLOSED,
    MTCP_MAX_LENGTH,
    NEED_DATA,
    STCP_KEEPALIVE,
    STCP_MAX_LENGTH,
    UDP_MAX_DATAGRAM,
    FrameData,
    FrameEnd,
    FrameStart,
    Keepalive,
    MtcpDecoder,
    StcpDecoder,
    check_udp_datagram,
    mtcp_frame,
    mtcp_head,
    stcp_frame,
    stcp_head,
    udp_datagram,
    udp_datagram_ok,
)
from proxima.errors import ConvergenceLayerError, Incomplete, LocalError
from proxima.speedups import compiled
from strategies import bundles

Decoder = MtcpDecoder | StcpDecoder
BIG = 1 << 40  # a max_bundle_size that never gets in the way


# --------------------------------------------------------------------------------------------
# Helpers and strategies


def _blob(n: int, pattern: bytes) -> bytes:
    return (pattern * (n // len(pattern) + 1))[:n]


# Sizes around every head boundary (MTCP: 23/24, 255/256, 65535/65536), plus plain random bytes.
sized_blobs = st.one_of(
    st.binary(max_size=300),
    st.builds(
        _blob,
        st.one_of(st.integers(0, 300), st.integers(65_530, 65_540), st.sampled_from([23, 24, 255, 256])),
        st.binary(min_size=1, max_size=8),
    ),
)
bundle_lists = st.lists(sized_blobs, max_size=12)
# STCP: None stands for a keepalive.
stcp_items = st.lists(st.one_of(st.none(), sized_blobs.filter(bool)), max_size=12)


def _cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` split into chunks: in one piece, byte by byte (short data), or at random cut points."""
    mode = draw(st.sampled_from(["whole", "bytes", "random", "random"]))
    if mode == "whole" or not data:
        return [data]
    if mode == "bytes" and len(data) <= 3000:
        return [data[i : i + 1] for i in range(len(data))]
    return _cut(data, draw(st.lists(st.integers(0, len(data)), max_size=40)))


def _drain_bundles(dec: Decoder, out: list[bytes]) -> None:
    while True:
        item = dec.next_bundle()
        if item is NEED_DATA:
            return
        assert isinstance(item, bytes)
        out.append(item)


def _decode_bundles(dec: Decoder, chunks: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        dec.receive_data(chunk)
        _drain_bundles(dec, out)
    return out


class _Reassembler:
    """Turns a decoder's events back into bundles (None for a keepalive), checking event order.

    With a ``sink``, pieces go to it as they come and are not kept (the bundle is recorded as b"").
    """

    def __init__(self, sink: Callable[[bytes], object] | None = None) -> None:
        self.items: list[bytes | None] = []
        self.parts: list[bytes] | None = None
        self.sink = sink
        self.length = -1
        self.received = 0
        self.largest_piece = 0

    def start(self, length: int) -> None:
        assert self.parts is None
        self.parts, self.length, self.received = [], length, 0

    def drain(self, dec: Decoder) -> None:
        while True:
            event = dec.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, FrameStart):
                self.start(event.length)
            elif isinstance(event, FrameData):
                assert self.parts is not None
                assert event.data  # never empty
                self.largest_piece = max(self.largest_piece, len(event.data))
                self.received += len(event.data)
                assert self.received <= self.length
                if self.sink is None:
                    self.parts.append(event.data)
                else:
                    self.sink(event.data)
            elif isinstance(event, FrameEnd):
                assert self.parts is not None
                assert self.received == self.length
                self.items.append(b"".join(self.parts))
                self.parts = None
            elif isinstance(event, Keepalive):
                assert self.parts is None
                self.items.append(None)
            else:  # pragma: no cover
                pytest.fail(f"unexpected {event!r}")


def _decode_events(dec: Decoder, chunks: Sequence[bytes]) -> list[bytes | None]:
    r = _Reassembler()
    for chunk in chunks:
        dec.receive_data(chunk)
        r.drain(dec)
    return r.items


def _stcp_stream(items: Sequence[bytes | None]) -> bytes:
    return b"".join(STCP_KEEPALIVE if b is None else stcp_frame(b) for b in items)


class _RecordingSocket:
    """Stands in for a socket for pyd3tn's sender: records what ``sendall`` is given."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data


class _ByteSource:
    """Stands in for pyd3tn's ``sock_recv_raw``: hands out exact byte counts from a buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def __call__(self, sock: object, count: int, timeout: float | None = None) -> bytes:
        assert count  # pyd3tn's own sock_recv_raw asserts a non-zero count too
        if self.pos + count > len(self.data):
            raise CommunicationError("the stream ended")
        piece = self.data[self.pos : self.pos + count]
        self.pos += count
        return piece


def _pyd3tn_send(bundle: bytes) -> bytes:
    sock = _RecordingSocket()
    pmtcp.MTCPSocket(sock).send_bundle(bundle)
    return bytes(sock.sent)


def _pyd3tn_receive_all(monkeypatch: pytest.MonkeyPatch, stream: bytes) -> list[bytes]:
    source = _ByteSource(stream)
    monkeypatch.setattr(pmtcp, "sock_recv_raw", source)
    receiver = pmtcp.MTCPSocket(object())
    out = []
    while source.pos < len(stream):
        out.append(receiver.recv_bundle())
    return out


# --------------------------------------------------------------------------------------------
# MTCP encoder


@pytest.mark.parametrize("n", [0, 1, 23, 24, 25, 255, 256, 65_535, 65_536, 100_000])
def test_mtcp_frame_is_cbor2_byte_string(n: int) -> None:
    data = _blob(n, b"\x01\x02\x03")
    assert mtcp_frame(data) == cbor2.dumps(data)
    assert mtcp_frame(bytearray(data)) == mtcp_frame(memoryview(data)) == cbor2.dumps(data)
    assert mtcp_head(n) + data == mtcp_frame(data)


@given(st.binary(max_size=2000))
def test_mtcp_frame_matches_cbor2(data: bytes) -> None:
    assert mtcp_frame(data) == cbor2.dumps(data)
    assert cbor2.loads(mtcp_frame(data)) == data


@pytest.mark.parametrize(
    ("n", "head"),
    [
        (0, b"\x40"),
        (23, b"\x57"),
        (24, b"\x58\x18"),
        (255, b"\x58\xff"),
        (256, b"\x59\x01\x00"),
        (65_535, b"\x59\xff\xff"),
        (65_536, b"\x5a\x00\x01\x00\x00"),
        (2**32 - 1, b"\x5a\xff\xff\xff\xff"),
        (2**32, b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00"),
        (MTCP_MAX_LENGTH, b"\x5b" + b"\xff" * 8),
    ],
)
def test_mtcp_head_is_shortest(n: int, head: bytes) -> None:
    assert mtcp_head(n) == head


@pytest.mark.parametrize("n", [-1, MTCP_MAX_LENGTH + 1])
def test_mtcp_head_out_of_range(n: int) -> None:
    with pytest.raises(LocalError):
        mtcp_head(n)


# --------------------------------------------------------------------------------------------
# STCP encoder


def test_stcp_frame_and_keepalive() -> None:
    assert STCP_KEEPALIVE == b"\x00\x00\x00\x00"
    assert stcp_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert stcp_head(1) == b"\x00\x00\x00\x01"
    assert stcp_head(STCP_MAX_LENGTH) == b"\xff\xff\xff\xff"
    for n in (1, 255, 256, 65_536, STCP_MAX_LENGTH):
        assert stcp_head(n) == struct.pack(">I", n)
    assert stcp_frame(bytearray(b"\x9f\xff")) == stcp_frame(memoryview(b"\x9f\xff")) == b"\0\0\0\x02\x9f\xff"


@pytest.mark.parametrize("n", [-1, 0, STCP_MAX_LENGTH + 1])
def test_stcp_head_out_of_range(n: int) -> None:
    with pytest.raises(LocalError):
        stcp_head(n)


def test_stcp_refuses_empty_bundle() -> None:
    with pytest.raises(LocalError, match="keepalive"):
        stcp_frame(b"")


# --------------------------------------------------------------------------------------------
# Round trips


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(bundle_lists, st.data())
def test_mtcp_round_trip(items: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(mtcp_frame(b) for b in items)
    chunks = data.draw(chunkings(stream))
    assert _decode_bundles(MtcpDecoder(BIG), chunks) == items
    assert _decode_events(MtcpDecoder(BIG), chunks) == items


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(stcp_items, st.data())
def test_stcp_round_trip(items: list[bytes | None], data: st.DataObject) -> None:
    stream = _stcp_stream(items)
    chunks = data.draw(chunkings(stream))
    dec = StcpDecoder(BIG)
    assert _decode_bundles(dec, chunks) == [b for b in items if b is not None]
    assert dec.keepalives == items.count(None)
    dec = StcpDecoder(BIG)
    assert _decode_events(dec, chunks) == items
    assert dec.keepalives == items.count(None)


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_mtcp_byte_by_byte(items: list[bytes]) -> None:
    stream = b"".join(mtcp_frame(b) for b in items)
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert _decode_bundles(MtcpDecoder(BIG), chunks) == items
    assert _decode_events(MtcpDecoder(BIG), chunks) == items


@given(st.lists(st.one_of(st.none(), st.binary(min_size=1, max_size=40)), max_size=8))
def test_stcp_byte_by_byte(items: list[bytes | None]) -> None:
    stream = _stcp_stream(items)
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert _decode_bundles(StcpDecoder(BIG), chunks) == [b for b in items if b is not None]
    assert _decode_events(StcpDecoder(BIG), chunks) == items


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(st.sampled_from(["mtcp", "stcp"]), bundle_lists, sized_blobs.filter(bool), st.data())
def test_trailing_partial_frame_stays_pending(
    kind: str, items: list[bytes], last: bytes, data: st.DataObject
) -> None:
    frame = mtcp_frame if kind == "mtcp" else stcp_frame
    items = [b for b in items if b or kind == "mtcp"]
    tail = frame(last)
    partial = tail[: data.draw(st.integers(1, len(tail) - 1))]
    chunks = data.draw(chunkings(b"".join(frame(b) for b in items) + partial))
    rest = tail[len(partial) :]
    # Whole bundles.
    dec: Decoder = MtcpDecoder(BIG) if kind == "mtcp" else StcpDecoder(BIG)
    assert _decode_bundles(dec, chunks) == items
    assert dec.in_frame
    assert dec.next_bundle() is NEED_DATA
    assert _decode_bundles(dec, [rest]) == [last]  # the rest of the frame completes it
    assert not dec.in_frame
    assert dec.pending == 0
    # Events.
    dec = MtcpDecoder(BIG) if kind == "mtcp" else StcpDecoder(BIG)
    r = _Reassembler()
    for chunk in chunks:
        dec.receive_data(chunk)
        r.drain(dec)
    assert r.items == items
    assert dec.in_frame
    assert dec.next_event() is NEED_DATA
    dec.receive_data(rest)
    r.drain(dec)
    assert r.items == [*items, last]
    assert not dec.in_frame
    assert dec.pending == 0


@given(bundle_lists, st.data())
def test_mixing_next_bundle_and_next_event_between_frames(items: list[bytes], data: st.DataObject) -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(b"".join(mtcp_frame(b) for b in items))
    got: list[bytes] = []
    r = _Reassembler()
    while True:
        if data.draw(st.booleans()):
            item = dec.next_bundle()
            if item is NEED_DATA:
                break
            assert isinstance(item, bytes)
            got.append(item)
        else:
            start = dec.next_event()
            if start is NEED_DATA:
                break
            assert isinstance(start, FrameStart)
            r.start(start.length)
            r.drain(dec)
            got.extend(b for b in r.items if b is not None)
            r.items.clear()
    assert got == items


def test_next_bundle_refused_while_streaming_a_frame() -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(mtcp_frame(b"abcdef")[:3])
    assert dec.next_event() == FrameStart(6)
    with pytest.raises(LocalError):
        dec.next_bundle()
    assert dec.next_event() == FrameData(b"ab")
    assert dec.next_event() is NEED_DATA
    dec.receive_data(b"cdef")
    assert dec.next_event() == FrameData(b"cdef")
    assert dec.next_event() == FrameEnd()
    assert dec.next_bundle() is NEED_DATA


def test_empty_mtcp_bundle_events() -> None:
    dec = MtcpDecoder(10)
    dec.receive_data(b"\x40\x40")
    assert dec.next_event() == FrameStart(0)
    assert dec.next_event() == FrameEnd()
    assert dec.next_bundle() == b""
    assert dec.next_bundle() is NEED_DATA


def test_stcp_keepalive_events() -> None:
    dec = StcpDecoder(10)
    dec.receive_data(STCP_KEEPALIVE + stcp_frame(b"x") + STCP_KEEPALIVE)
    assert dec.next_event() == Keepalive()
    assert dec.next_event() == FrameStart(1)
    assert dec.next_event() == FrameData(b"x")
    assert dec.next_event() == FrameEnd()
    assert dec.next_event() == Keepalive()
    assert dec.next_event() is NEED_DATA
    assert dec.keepalives == 2
    only_keepalives = StcpDecoder(10)
    only_keepalives.receive_data(STCP_KEEPALIVE * 3)
    assert only_keepalives.next_bundle() is NEED_DATA
    assert only_keepalives.keepalives == 3
    assert only_keepalives.pending == 0


@pytest.mark.parametrize("kind", ["mtcp", "stcp"])
def test_large_bundle_is_streamed_in_pieces(kind: str) -> None:
    """A 4 MB bundle fed in 64 KB chunks: the decoder never buffers more than one chunk."""
    bundle = _blob(4 << 20, bytes(range(251)))
    stream = (mtcp_frame if kind == "mtcp" else stcp_frame)(bundle)
    dec: Decoder = MtcpDecoder(8 << 20) if kind == "mtcp" else StcpDecoder(8 << 20)
    digest = hashlib.sha256()
    r = _Reassembler(sink=digest.update)  # consume pieces as they come, as a forwarding node would
    most_pending = 0
    for chunk in _cut(stream, range(0, len(stream), 65_536)):
        dec.receive_data(chunk)
        most_pending = max(most_pending, dec.pending)
        r.drain(dec)
    assert most_pending <= 65_536
    assert r.largest_piece <= 65_536
    assert r.items == [b""]
    assert digest.digest() == hashlib.sha256(bundle).digest()


def test_gigabyte_frame_announced_without_buffering() -> None:
    dec = MtcpDecoder(2**31)
    dec.receive_data(mtcp_head(2**30) + b"first bytes")
    assert dec.next_event() == FrameStart(2**30)
    assert dec.next_event() == FrameData(b"first bytes")
    assert dec.next_event() is NEED_DATA
    assert dec.pending == 0


# --------------------------------------------------------------------------------------------
# Limits and errors


@pytest.mark.parametrize("kind", ["mtcp", "stcp"])
@pytest.mark.parametrize("mode", ["bundles", "events"])
def test_max_bundle_size(kind: str, mode: str) -> None:
    frame, head, cls = (
        (mtcp_frame, mtcp_head, MtcpDecoder) if kind == "mtcp" else (stcp_frame, stcp_head, StcpDecoder)
    )
    dec: Decoder = cls(100)
    dec.receive_data(frame(b"x" * 100))
    got = dec.next_bundle() if mode == "bundles" else dec.next_event()
    assert got == b"x" * 100 if mode == "bundles" else got == FrameStart(100)
    dec = cls(100)
    dec.receive_data(head(101))  # refused on the head alone, before any bundle byte arrives
    with pytest.raises(ConvergenceLayerError, match="101-byte bundle, above the limit of 100"):
        dec.next_bundle() if mode == "bundles" else dec.next_event()
    # The failure sticks.
    with pytest.raises(ConvergenceLayerError, match="failed earlier"):
        dec.next_bundle()
    with pytest.raises(ConvergenceLayerError, match="failed earlier"):
        dec.next_event()


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_mtcp_max_size_any_length(length: int, limit: int) -> None:
    dec = MtcpDecoder(limit)
    dec.receive_data(mtcp_head(length))
    if length > limit:
        with pytest.raises(ConvergenceLayerError):
            dec.next_event()
    else:
        assert dec.next_event() == FrameStart(length)


def test_bad_max_bundle_size() -> None:
    with pytest.raises(LocalError):
        MtcpDecoder(-1)
    # A caller that ignores the types: the compiled module refuses it where the argument arrives.
    with pytest.raises(TypeError if compiled()["proxima.cla.framing"] else LocalError):
        StcpDecoder("10")  # type: ignore[arg-type]


@pytest.mark.parametrize("ib", [b for b in range(256) if b >> 5 != 2])
def test_mtcp_refuses_other_major_types(ib: int) -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(bytes([ib]) + b"\x00" * 9)
    with pytest.raises(ConvergenceLayerError, match="major type 2"):
        dec.next_bundle()


def test_mtcp_unframed_bundle_hint() -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(b"\x9f\x89\x07")
    with pytest.raises(ConvergenceLayerError, match="unframed bundle"):
        dec.next_event()


@pytest.mark.parametrize("ib", [0x5C, 0x5D, 0x5E, 0x5F])
def test_mtcp_refuses_reserved_and_indefinite(ib: int) -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(bytes([ib, 0x41, 0x00, 0xFF]))
    with pytest.raises(ConvergenceLayerError, match="indefinite" if ib == 0x5F else "reserved"):
        dec.next_bundle()


@given(st.binary(max_size=255), st.sampled_from([1, 2, 4, 8]))
def test_mtcp_accepts_non_shortest_heads(data: bytes, width: int) -> None:
    ai = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    stream = bytes([0x40 | ai]) + len(data).to_bytes(width, "big") + data
    dec = MtcpDecoder(BIG)
    dec.receive_data(stream)
    assert dec.next_bundle() == data


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(0, 300), st.data())
@example(b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", 10, None)
@example(b"\x00\x00\x00\x00\xff\xff\xff\xff", 10, None)
@example(b"", 0, None)
def test_random_bytes_only_raise_our_errors(data: bytes, limit: int, draw: st.DataObject | None) -> None:
    chunks = draw.draw(chunkings(data)) if draw is not None else [data]
    for cls in (MtcpDecoder, StcpDecoder):
        for mode, eof in itertools.product(("bundles", "events"), (False, True)):
            dec: Decoder = cls(limit)
            r = _Reassembler()
            pull = dec.next_bundle if mode == "bundles" else dec.next_event
            try:
                for chunk in chunks:
                    dec.receive_data(chunk)
                    _drain_bundles(dec, []) if mode == "bundles" else r.drain(dec)
                if eof:
                    dec.receive_eof()
                    while pull() is not CLOSED:
                        pass
            except ConvergenceLayerError:
                pass
            except Incomplete:  # pragma: no cover
                pytest.fail("decoders must return NEED_DATA, never raise Incomplete")
    try:
        check_udp_datagram(data, limit)
    except ConvergenceLayerError:
        pass


# --------------------------------------------------------------------------------------------
# End of stream


@pytest.mark.parametrize("kind", ["mtcp", "stcp"])
def test_eof_on_a_boundary_is_closed(kind: str) -> None:
    frame, cls = (mtcp_frame, MtcpDecoder) if kind == "mtcp" else (stcp_frame, StcpDecoder)
    for mode in ("bundles", "events"):
        dec: Decoder = cls(BIG)
        dec.receive_data(frame(b"one") + frame(b"two"))
        dec.receive_eof()
        if mode == "bundles":
            assert [dec.next_bundle(), dec.next_bundle(), dec.next_bundle()] == [b"one", b"two", CLOSED]
            assert dec.next_bundle() is CLOSED
        else:
            events = [dec.next_event() for _ in range(7)]
            assert events == [
                *(FrameStart(3), FrameData(b"one"), FrameEnd()),
                *(FrameStart(3), FrameData(b"two"), FrameEnd()),
                CLOSED,
            ]
        with pytest.raises(LocalError):
            dec.receive_data(b"more")


@pytest.mark.parametrize("kind", ["mtcp", "stcp"])
@pytest.mark.parametrize("cut", [1, 2, 5])
def test_eof_inside_a_frame_is_an_error(kind: str, cut: int) -> None:
    frame, cls = (mtcp_frame, MtcpDecoder) if kind == "mtcp" else (stcp_frame, StcpDecoder)
    data = frame(b"x" * 300)[:cut]
    for mode in ("bundles", "events"):
        dec: Decoder = cls(BIG)
        dec.receive_data(data)
        dec.receive_eof()
        pull = dec.next_bundle if mode == "bundles" else lambda: _Reassembler().drain(dec)  # noqa: B023
        with pytest.raises(ConvergenceLayerError, match="ended inside a frame"):
            pull()


def test_empty_receive_data_is_not_eof() -> None:
    dec = MtcpDecoder(BIG)
    dec.receive_data(b"")
    assert dec.next_bundle() is NEED_DATA
    assert not dec.in_frame
    assert repr(NEED_DATA) == "NEED_DATA"
    assert repr(CLOSED) == "CLOSED"


# --------------------------------------------------------------------------------------------
# UDP


def test_udp_accepts_bpv7() -> None:
    raw = p7.serialize_bundle7("dtn://a/", "dtn://b/", b"hello")
    assert check_udp_datagram(raw) == bytes(raw)
    assert check_udp_datagram(memoryview(raw)) == bytes(raw)
    assert udp_datagram_ok(raw)
    assert udp_datagram(raw) == bytes(raw)


def test_udp_refuses_bpv6_clearly() -> None:
    datagram = b"\x06\x00\x00\x00"
    with pytest.raises(ConvergenceLayerError, match="BPv6 is not supported"):
        check_udp_datagram(datagram)
    assert not udp_datagram_ok(datagram)


@pytest.mark.parametrize(
    ("datagram", "limit", "match"),
    [
        (b"", UDP_MAX_DATAGRAM, "empty"),
        (b"\x9f" + b"\x00" * 100, 100, "above the limit"),
        (b"\x81\x00", UDP_MAX_DATAGRAM, "not a BPv7 bundle"),
        (b"\x40", UDP_MAX_DATAGRAM, "first byte 0x40"),
    ],
)
def test_udp_refusals(datagram: bytes, limit: int, match: str) -> None:
    with pytest.raises(ConvergenceLayerError, match=match):
        check_udp_datagram(datagram, limit)
    assert not udp_datagram_ok(datagram, limit)


def test_udp_sender_limits() -> None:
    with pytest.raises(LocalError):
        udp_datagram(b"")
    with pytest.raises(LocalError):
        udp_datagram(b"\x9f" + b"\x00" * UDP_MAX_DATAGRAM)
    assert udp_datagram(b"\x9f\xff", max_size=2) == b"\x9f\xff"


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(bundles())
def test_udp_accepts_every_proxima_bundle(bundle: Bundle) -> None:
    raw = encode_bundle(bundle)
    assert check_udp_datagram(raw) == raw


# --------------------------------------------------------------------------------------------
# Interop with pyd3tn 0.15.2 MTCP (no sockets)


@pytest.mark.interop
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(bundle_lists, st.data())
def test_pyd3tn_sender_to_our_decoder(items: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(_pyd3tn_send(b) for b in items)
    assert stream == b"".join(mtcp_frame(b) for b in items)
    chunks = data.draw(chunkings(stream))
    assert _decode_bundles(MtcpDecoder(BIG), chunks) == items
    assert _decode_events(MtcpDecoder(BIG), chunks) == items


@pytest.mark.interop
@settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    deadline=None,
)
@given(st.lists(sized_blobs.filter(bool), max_size=12))
def test_our_frames_to_pyd3tn_receiver(monkeypatch: pytest.MonkeyPatch, items: list[bytes]) -> None:
    # pyd3tn's receiver cannot take an empty bundle (its sock_recv_raw asserts a non-zero count).
    stream = b"".join(mtcp_frame(b) for b in items)
    assert _pyd3tn_receive_all(monkeypatch, stream) == items


@pytest.mark.interop
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 27), st.data())
def test_same_heads_accepted_as_pyd3tn(monkeypatch: pytest.MonkeyPatch, ai: int, draw: st.DataObject) -> None:
    """Any definite-length byte string head (shortest or not) means the same length to both sides."""
    if ai < 24:
        head = bytes([0x40 | ai])
        length = ai
    else:
        width = 1 << (ai - 24)
        length = draw.draw(st.integers(1, min(300, 256**width - 1)))
        head = bytes([0x40 | ai]) + length.to_bytes(width, "big")
    data = draw.draw(st.binary(min_size=length, max_size=length))
    stream = head + data
    assert _pyd3tn_receive_all(monkeypatch, stream) == [data]
    dec = MtcpDecoder(BIG)
    dec.receive_data(stream)
    assert dec.next_bundle() == data


@pytest.mark.interop
def test_we_are_stricter_than_pyd3tn_on_the_major_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyd3tn reads any major type's argument as the length (it only clears bit 0x40); we refuse."""
    stream = b"\x03abc"  # the unsigned integer 3, then three bytes
    assert _pyd3tn_receive_all(monkeypatch, stream) == [b"abc"]
    dec = MtcpDecoder(BIG)
    dec.receive_data(stream)
    with pytest.raises(ConvergenceLayerError, match="major type 0"):
        dec.next_bundle()


@pytest.mark.interop
@pytest.mark.parametrize("ib", [0x5C, 0x5D, 0x5E, 0x5F])
def test_pyd3tn_also_refuses_reserved_and_indefinite(monkeypatch: pytest.MonkeyPatch, ib: int) -> None:
    with pytest.raises(ValueError, match="Invalid CBOR additional info"):
        _pyd3tn_receive_all(monkeypatch, bytes([ib, 0x41, 0x00]))


@pytest.mark.interop
def test_pyd3tn_bundles_through_mtcp_decode() -> None:
    """Real BPv7 bundles built by pyd3tn, framed by its MTCP sender, come out whole and decode."""
    raws = [
        p7.serialize_bundle7("ipn:1.1", "ipn:2.1", b"payload %d" % i * i, sequence_number=i)
        for i in range(1, 20)
    ]
    stream = b"".join(_pyd3tn_send(bytes(r)) for r in raws)
    got = _decode_bundles(MtcpDecoder(1 << 20), _cut(stream, range(0, len(stream), 7)))
    assert got == [bytes(r) for r in raws]
    for raw in got:
        assert decode_bundle(raw).payload.startswith(b"payload")
