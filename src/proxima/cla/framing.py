"""Sans-I/O framing for the simple convergence layers: MTCP, STCP and UDP.

* **MTCP** (µD3TN, dtn7): each bundle travels on the TCP stream as one CBOR byte string
  (major type 2, definite length). We send the shortest head; we accept any definite-length head
  (1, 2, 4 or 8 length bytes, shortest or not), as pyd3tn's receiver does, and refuse every other
  CBOR item, including indefinite-length byte strings (which pyd3tn refuses too).
* **STCP** (ION, HDTN): each bundle is preceded by its length as a 4-byte big-endian unsigned
  integer; a length of zero is a keepalive (ION sends four zero bytes).
* **UDP**: one bundle per datagram, with no header at all.

The decoders never touch a socket: feed them bytes with ``receive_data()`` (and the end of the
stream with ``receive_eof()``), then pull results, h11 style. ``next_bundle()`` returns whole
bundles; ``next_event()`` returns :class:`FrameStart`, :class:`FrameData` pieces and
:class:`FrameEnd` (and :class:`Keepalive` for STCP), so that a bundle of any size can be passed on
without ever being held whole. Both return :data:`NEED_DATA` when more bytes are needed, and
:data:`CLOSED` once the stream has ended cleanly on a frame boundary. A peer that breaks the
framing gets a :class:`~proxima.errors.ConvergenceLayerError`, after which the decoder is
unusable (every later call raises again); misuse by the caller is a
:class:`~proxima.errors.LocalError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final, NoReturn, TypeAlias

from proxima.errors import ConvergenceLayerError, LocalError, TooLargeForLink

__all__ = [
    "CLOSED",
    "MTCP_MAX_LENGTH",
    "NEED_DATA",
    "STCP_KEEPALIVE",
    "STCP_MAX_LENGTH",
    "UDP_MAX_DATAGRAM",
    "Event",
    "FrameData",
    "FrameEnd",
    "FrameStart",
    "Keepalive",
    "MtcpDecoder",
    "Sentinel",
    "StcpDecoder",
    "check_udp_datagram",
    "mtcp_frame",
    "mtcp_head",
    "stcp_frame",
    "stcp_head",
    "udp_datagram",
    "udp_datagram_ok",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

MTCP_MAX_LENGTH: Final = (1 << 64) - 1
"""The largest length a CBOR byte string head can declare."""
STCP_MAX_LENGTH: Final = (1 << 32) - 1
"""The largest length a 4-byte STCP length field can declare."""
STCP_KEEPALIVE: Final = b"\x00\x00\x00\x00"
"""An STCP keepalive: a zero length with no bundle after it."""
UDP_MAX_DATAGRAM: Final = 65_507
"""The largest UDP payload over IPv4 (65535 - 8 UDP header - 20 IP header bytes)."""

_BPV7_FIRST_BYTE: Final = 0x9F  # a BPv7 bundle is an indefinite-length CBOR array
_BPV6_FIRST_BYTE: Final = 0x06  # a BPv6 bundle starts with its version byte

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PACK_BH = struct.Struct(">BH").pack
_PACK_BI = struct.Struct(">BI").pack
_PACK_BQ = struct.Struct(">BQ").pack
_PACK_U32 = _U32.pack
_UNPACK_U32_FROM = _U32.unpack_from
# Indexed by (additional information - 24): how many length bytes follow, and how to read them.
_MTCP_ARG: Final = ((1, _U8.unpack_from), (2, _U16.unpack_from), (4, _U32.unpack_from), (8, _U64.unpack_from))
_MTCP_SMALL_HEADS: Final[tuple[bytes, ...]] = tuple(
    bytes((0x40 | n,)) if n < 24 else bytes((0x58, n)) for n in range(256)
)


class Sentinel(Enum):
    """What a decoder returns instead of a bundle or an event."""

    NEED_DATA = "NEED_DATA"
    """Nothing complete is buffered: feed more bytes with ``receive_data()``."""
    CLOSED = "CLOSED"
    """``receive_eof()`` was called and every frame has been returned: the stream ended cleanly."""

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA
CLOSED: Final = Sentinel.CLOSED


@dataclass(frozen=True, slots=True)
class FrameStart:
    """A frame begins; ``length`` bundle bytes follow as :class:`FrameData` events."""

    length: int


@dataclass(frozen=True, slots=True)
class FrameData:
    """The next piece of the current frame's bundle bytes (never empty)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class FrameEnd:
    """The current frame is complete."""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """An STCP keepalive (a zero length) was received."""


Event: TypeAlias = FrameStart | FrameData | FrameEnd | Keepalive

_FRAME_END: Final = FrameEnd()
_KEEPALIVE: Final = Keepalive()


# --------------------------------------------------------------------------------------------
# Encoders


def mtcp_head(length: int) -> bytes:
    """The shortest CBOR byte string head for a bundle of ``length`` bytes (send the bundle after it)."""
    if length < 256:
        if length < 0:
            raise LocalError(f"MTCP: a bundle length cannot be negative ({length})")
        return _MTCP_SMALL_HEADS[length]
    if length < 0x10000:
        return _PACK_BH(0x59, length)
    if length < 0x100000000:
        return _PACK_BI(0x5A, length)
    if length <= MTCP_MAX_LENGTH:
        return _PACK_BQ(0x5B, length)
    raise LocalError(f"MTCP: a bundle of {length} bytes does not fit in a CBOR head (at most 2^64-1)")


def mtcp_frame(bundle: Buffer) -> bytes:
    """One MTCP frame: the bundle as a CBOR byte string (shortest head), as ``cbor2.dumps`` writes it."""
    data = bytes(bundle)
    return mtcp_head(len(data)) + data


def stcp_head(length: int) -> bytes:
    """The 4-byte big-endian STCP length prefix for a bundle of ``length`` bytes (1 .. 2^32-1)."""
    if length <= 0 or length > STCP_MAX_LENGTH:
        if length == 0:
            raise LocalError("STCP: cannot send an empty bundle (a zero length is a keepalive)")
        raise LocalError(f"STCP: a bundle length must be 1 .. 2^32-1 bytes, not {length}")
    return _PACK_U32(length)


def stcp_frame(bundle: Buffer) -> bytes:
    """One STCP frame: the 4-byte big-endian length, then the bundle."""
    data = bytes(bundle)
    return stcp_head(len(data)) + data


def udp_datagram(bundle: Buffer, max_size: int = UDP_MAX_DATAGRAM) -> bytes:
    """The datagram that carries ``bundle`` over UDP (the bundle itself), refusing one too large to send."""
    data = bytes(bundle)
    if not data:
        raise LocalError("UDP: cannot send an empty bundle")
    if len(data) > max_size:
        raise TooLargeForLink(
            f"UDP: a {len(data)}-byte bundle does not fit in a datagram of at most {max_size} bytes",
            limit=max_size,
        )
    return data


# --------------------------------------------------------------------------------------------
# UDP validation


def check_udp_datagram(datagram: Buffer, max_size: int = UDP_MAX_DATAGRAM) -> bytes:
    """Check that a received datagram can be a BPv7 bundle, and return its bytes.

    Raises :class:`~proxima.errors.ConvergenceLayerError` for an empty or oversized datagram, a
    BPv6 bundle ("BPv6 is not supported") or anything that does not start like a BPv7 bundle (0x9f).
    """
    data = bytes(datagram)
    if not data:
        raise ConvergenceLayerError("UDP: empty datagram")
    if len(data) > max_size:
        raise ConvergenceLayerError(f"UDP: {len(data)}-byte datagram is above the limit of {max_size} bytes")
    first = data[0]
    if first == _BPV7_FIRST_BYTE:
        return data
    if first == _BPV6_FIRST_BYTE:
        raise ConvergenceLayerError(
            "UDP: the datagram holds a BPv6 bundle (version byte 0x06); BPv6 is not supported, only BPv7"
        )
    raise ConvergenceLayerError(
        f"UDP: the datagram is not a BPv7 bundle (first byte 0x{first:02x}, expected 0x9f)"
    )


def udp_datagram_ok(datagram: Buffer, max_size: int = UDP_MAX_DATAGRAM) -> bool:
    """Whether :func:`check_udp_datagram` accepts ``datagram`` (use that function to learn why not)."""
    try:
        check_udp_datagram(datagram, max_size)
    except ConvergenceLayerError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Stream decoders


class _StreamDecoder:
    """Shared machinery of the length-prefixed stream decoders; subclasses parse the head."""

    __slots__ = ("_buf", "_eof", "_failure", "_left", "_pos", "keepalives", "max_bundle_size")

    _protocol: ClassVar[str] = ""
    _zero_is_keepalive: ClassVar[bool] = False

    def __init__(self, max_bundle_size: int) -> None:
        if not isinstance(max_bundle_size, int) or max_bundle_size < 0:
            raise LocalError(
                f"{self._protocol}: max_bundle_size must be an integer >= 0, not {max_bundle_size!r}"
            )
        self.max_bundle_size: int = max_bundle_size  # frames declaring more bundle bytes are refused
        self.keepalives: int = 0  # keepalives received so far (STCP only)
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._left = -1  # bytes of the streamed frame still to return by next_event(); -1: between frames
        self._eof = False
        self._failure: ConvergenceLayerError | None = None

    # -- input

    def receive_data(self, data: Buffer) -> None:
        """Add bytes received from the peer (an empty ``data`` is ignored: use :meth:`receive_eof`)."""
        if self._eof:
            raise LocalError(f"{self._protocol}: receive_data() after receive_eof()")
        buf = self._buf
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        buf += data

    def receive_eof(self) -> None:
        """Note that the peer closed the stream: nothing more will be received."""
        self._eof = True

    @property
    def pending(self) -> int:
        """How many received bytes have not been returned yet (heads included)."""
        return len(self._buf) - self._pos

    @property
    def in_frame(self) -> bool:
        """Whether the decoder stands inside a frame (a partial frame buffered, or one being streamed)."""
        return self._left >= 0 or len(self._buf) > self._pos

    # -- output

    def next_bundle(self) -> bytes | Sentinel:
        """The next complete bundle, or :data:`NEED_DATA`, or :data:`CLOSED` after a clean end.

        Keepalives are skipped (and counted in :attr:`keepalives`). Cannot be called while a frame
        is being streamed by :meth:`next_event`.
        """
        if self._failure is not None:
            self._raise_again()
        if self._left >= 0:
            raise LocalError(
                f"{self._protocol}: next_bundle() called in the middle of a frame streamed by next_event()"
            )
        buf = self._buf
        pos = self._pos
        try:
            while True:
                head = self._head(buf, pos)
                if head is None:
                    break
                length, start = head
                if length > self.max_bundle_size:
                    self._too_large(length)
                if length == 0 and self._zero_is_keepalive:
                    self.keepalives += 1
                    pos = start
                    continue
                end = start + length
                if end > len(buf):
                    break
                self._pos = end
                return bytes(buf[start:end])
            self._pos = pos
            return self._starved()
        except ConvergenceLayerError as exc:
            self._failure = exc
            raise

    def next_event(self) -> Event | Sentinel:
        """The next framing event, or :data:`NEED_DATA`, or :data:`CLOSED` after a clean end.

        A frame is :class:`FrameStart`, zero or more :class:`FrameData` pieces (each as large as the
        bytes buffered allow), then :class:`FrameEnd`. STCP keepalives are :class:`Keepalive`.
        """
        if self._failure is not None:
            self._raise_again()
        buf = self._buf
        pos = self._pos
        left = self._left
        try:
            if left < 0:
                head = self._head(buf, pos)
                if head is None:
                    return self._starved()
                length, start = head
                if length > self.max_bundle_size:
                    self._too_large(length)
                self._pos = start
                if length == 0 and self._zero_is_keepalive:
                    self.keepalives += 1
                    return _KEEPALIVE
                self._left = length
                return FrameStart(length)
            if left == 0:
                self._left = -1
                return _FRAME_END
            take = len(buf) - pos
            if take == 0:
                return self._starved()
            take = min(take, left)
            self._pos = pos + take
            self._left = left - take
            return FrameData(bytes(buf[pos : pos + take]))
        except ConvergenceLayerError as exc:
            self._failure = exc
            raise

    # -- internals

    def _head(self, buf: bytearray, pos: int) -> tuple[int, int] | None:
        """Parse the head at ``pos``: (bundle length, where the bundle starts), or None if incomplete."""
        raise NotImplementedError

    def _starved(self) -> Sentinel:
        """Nothing complete is buffered: need data, or the stream ended (cleanly or not)."""
        if not self._eof:
            return NEED_DATA
        partial = len(self._buf) - self._pos
        if self._left >= 0:
            raise ConvergenceLayerError(
                f"{self._protocol}: the stream ended inside a frame, {self._left} bundle bytes short"
            )
        if partial:
            raise ConvergenceLayerError(
                f"{self._protocol}: the stream ended inside a frame ({partial} bytes of an incomplete frame)"
            )
        return CLOSED

    def _too_large(self, length: int) -> NoReturn:
        raise ConvergenceLayerError(
            f"{self._protocol}: the peer announced a {length}-byte bundle, "
            f"above the limit of {self.max_bundle_size} bytes"
        )

    def _raise_again(self) -> NoReturn:
        raise ConvergenceLayerError(
            f"{self._protocol}: the decoder failed earlier: {self._failure}"
        ) from self._failure


class MtcpDecoder(_StreamDecoder):
    """Incremental MTCP decoder: each frame is a definite-length CBOR byte string holding one bundle."""

    __slots__ = ()
    _protocol = "MTCP"

    def _head(self, buf: bytearray, pos: int) -> tuple[int, int] | None:
        if pos >= len(buf):
            return None
        ib = buf[pos]
        if 0x40 <= ib < 0x58:
            return ib - 0x40, pos + 1
        if ib >> 5 != 2:
            hint = (
                " (an unframed bundle? MTCP sends each bundle as a CBOR byte string)"
                if ib in {0x9F, 0x06}
                else ""
            )
            raise ConvergenceLayerError(
                f"MTCP: expected a CBOR byte string (major type 2), got initial byte 0x{ib:02x} "
                f"(major type {ib >> 5}){hint}"
            )
        ai = ib & 0x1F
        if ai > 27:
            if ai == 31:
                raise ConvergenceLayerError(
                    "MTCP: indefinite-length byte strings are not accepted (initial byte 0x5f)"
                )
            raise ConvergenceLayerError(
                f"MTCP: reserved CBOR additional information {ai} (initial byte 0x{ib:02x})"
            )
        size, unpack_from = _MTCP_ARG[ai - 24]
        start = pos + 1 + size
        if start > len(buf):
            return None
        return unpack_from(buf, pos + 1)[0], start


class StcpDecoder(_StreamDecoder):
    """Incremental STCP decoder: each bundle follows its 4-byte big-endian length; zero is a keepalive."""

    __slots__ = ()
    _protocol = "STCP"
    _zero_is_keepalive = True

    def _head(self, buf: bytearray, pos: int) -> tuple[int, int] | None:
        start = pos + 4
        if start > len(buf):
            return None
        return _UNPACK_U32_FROM(buf, pos)[0], start
