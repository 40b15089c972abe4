"""TCPCLv4 (RFC 9174) as a sans-I/O protocol core: a message codec and a session state machine.

Nothing here touches a socket, a clock or TLS. The caller feeds received bytes with
``receive_data(data, now)``, pulls :class:`Event` objects with ``next_event()`` (h11 style) until
it gets :data:`NEED_DATA`, writes out whatever ``data_to_send()`` returns (h2 style), and drives
time with ``get_timer()`` / ``handle_timer(now)`` (aioquic style); ``now`` is a float in seconds
from any monotonic origin. TLS is negotiated in the contact header; when both sides can and the
local policy wants it, the core emits :class:`StartTLS` and waits: the caller wraps the
connection (taking :attr:`TcpclConnection.trailing_data` with it) and calls
``tls_established(now)``, after which it feeds and sends the decrypted stream.

Transfers are streamed: :class:`SegmentReceived` carries one segment's data, never a whole
bundle, and ``send_segment()`` takes a bundle in pieces, cutting each into segments no longer than
the peer's Segment MRU. The acknowledgement of a transfer's last segment (the one that tells the
sender the bundle is safe) is only sent when the caller calls ``complete_transfer()``.

Peer faults never raise out of ``receive_data``: the core answers on the wire as RFC 9174 says
(MSG_REJECT, XFER_REFUSE or SESS_TERM) and reports a :class:`ProtocolViolation` carrying a
:class:`~proxima.errors.ConvergenceLayerError`. Misuse of the API raises
:class:`~proxima.errors.LocalError`.

Where RFC 9174 leaves the answer open, this core chooses:

* a segment longer than our Segment MRU: MSG_REJECT "Message Unsupported" (a message
  inappropriate for the negotiated parameters, §5.1.2), and XFER_REFUSE "Not Acceptable" for its
  transfer, which now lacks data; the stream stays in step (the data is skipped, never buffered);
* a transfer over our Transfer MRU (announced, or reached): XFER_REFUSE "No Resources";
* a segment without START for a transfer not in progress, or reusing the ID of one awaiting
  completion: MSG_REJECT "Message Unexpected"; a START abandoning a transfer still in progress
  refuses the old one "Not Acceptable";
* an XFER_ACK for more bytes than were sent: MSG_REJECT "Message Unsupported";
* no SESS_INIT within ``contact_timeout``: SESS_TERM "Idle timeout";
* extension lists longer than ``max_extensions_length``: SESS_TERM "Resource Exhaustion", then
  close (the stream cannot be followed without reading them);
* XFER_ACK and XFER_REFUSE leave in transfer order (§5.2.4 requires it for refusals only).
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from proxima.bpv7.eid import EID
from proxima.errors import ConvergenceLayerError, Incomplete, InvalidEndpointID, LocalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "ACCEPTED_MESSAGES",
    "CONTACT_CAN_TLS",
    "EXTENSION_CRITICAL",
    "MAGIC",
    "NEED_DATA",
    "SEGMENT_END",
    "SEGMENT_START",
    "SESS_TERM_REPLY",
    "TRANSFER_LENGTH_EXTENSION",
    "TRANSITIONS",
    "VERSION",
    "ConnectionClosed",
    "ContactHeader",
    "ContactHeaderReceived",
    "Event",
    "ExtensionItem",
    "Keepalive",
    "KeepaliveReceived",
    "Message",
    "MessageRejected",
    "MessageType",
    "MsgReject",
    "MsgRejectReason",
    "ProtocolViolation",
    "Role",
    "SegmentReceived",
    "Sentinel",
    "SessInit",
    "SessTerm",
    "SessTermReason",
    "SessionEstablished",
    "SessionParameters",
    "SessionTerminated",
    "StartTLS",
    "State",
    "TcpclConfig",
    "TcpclConnection",
    "TransferAborted",
    "TransferAcknowledged",
    "TransferRefused",
    "TransferStarted",
    "Trigger",
    "XferAck",
    "XferRefuse",
    "XferRefuseReason",
    "XferSegment",
    "decode_contact_header",
    "decode_extension_items",
    "decode_message",
    "encode_contact_header",
    "encode_extension_items",
    "encode_message",
    "transfer_length_item",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

# --------------------------------------------------------------------------------------------
# Wire constants (RFC 9174 §4.2, §4.6, §4.8, §5.1.1, §5.2.2, §5.2.5, §6.1, §9)
# --------------------------------------------------------------------------------------------

MAGIC: Final = b"dtn!"
VERSION: Final = 4
CONTACT_CAN_TLS: Final = 0x01
SESS_TERM_REPLY: Final = 0x01
SEGMENT_END: Final = 0x01
SEGMENT_START: Final = 0x02
EXTENSION_CRITICAL: Final = 0x01
TRANSFER_LENGTH_EXTENSION: Final = 0x0001
"""Transfer extension type of the Transfer Length extension (RFC 9174 §5.2.5.1)."""

U16_MAX: Final = 0xFFFF
U32_MAX: Final = 0xFFFF_FFFF
U64_MAX: Final = (1 << 64) - 1


class MessageType(enum.IntEnum):
    """TCPCLv4 message type codes (RFC 9174 §4.4, Table 2)."""

    XFER_SEGMENT = 0x01
    XFER_ACK = 0x02
    XFER_REFUSE = 0x03
    KEEPALIVE = 0x04
    SESS_TERM = 0x05
    MSG_REJECT = 0x06
    SESS_INIT = 0x07


class SessTermReason(enum.IntEnum):
    """SESS_TERM reason codes (RFC 9174 §6.1, Table 9)."""

    UNKNOWN = 0x00
    IDLE_TIMEOUT = 0x01
    VERSION_MISMATCH = 0x02
    BUSY = 0x03
    CONTACT_FAILURE = 0x04
    RESOURCE_EXHAUSTION = 0x05


class MsgRejectReason(enum.IntEnum):
    """MSG_REJECT reason codes (RFC 9174 §5.1.2, Table 5)."""

    TYPE_UNKNOWN = 0x01
    UNSUPPORTED = 0x02
    UNEXPECTED = 0x03


class XferRefuseReason(enum.IntEnum):
    """XFER_REFUSE reason codes (RFC 9174 §5.2.4, Table 8)."""

    UNKNOWN = 0x00
    COMPLETED = 0x01
    NO_RESOURCES = 0x02
    RETRANSMIT = 0x03
    NOT_ACCEPTABLE = 0x04
    EXTENSION_FAILURE = 0x05
    SESSION_TERMINATING = 0x06


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_CONTACT = struct.Struct(">4sBB")
_SESS_INIT_HEAD = struct.Struct(">BHQQH")  # type, keepalive, segment MRU, transfer MRU, node ID length
_SESS_TERM = struct.Struct(">BBB")  # type, flags, reason
_MSG_REJECT = struct.Struct(">BBB")  # type, reason, rejected header
_XFER_ACK = struct.Struct(">BBQQ")  # type, flags, transfer ID, acknowledged length
_XFER_REFUSE = struct.Struct(">BBQ")  # type, reason, transfer ID
_SEG_HEAD = struct.Struct(">BBQ")  # type, flags, transfer ID
_SEG_HEAD_LEN = struct.Struct(">BBQQ")  # ... then data length (no START)
_SEG_HEAD_EXT = struct.Struct(">BBQI")  # ... then extension items length (START)
_EXT_HEAD = struct.Struct(">BHH")  # flags, type, length

_PACK_XFER_ACK = _XFER_ACK.pack
_PACK_XFER_REFUSE = _XFER_REFUSE.pack
_PACK_SEG_HEAD_LEN = _SEG_HEAD_LEN.pack
_PACK_SEG_HEAD_EXT = _SEG_HEAD_EXT.pack
_PACK_U64 = _U64.pack
_KEEPALIVE_BYTES: Final = bytes([MessageType.KEEPALIVE])


def _sess_term(reason: int, flags: int = 0) -> bytes:
    return _SESS_TERM.pack(MessageType.SESS_TERM, flags, reason)


_SMALL_SEGMENT: Final = 2048  # segments up to this size are packed with their header in one bytes

# --------------------------------------------------------------------------------------------
# Messages (pure values) and their codec
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtensionItem:
    """A session or transfer extension item (RFC 9174 §4.8, §5.2.5): flags, type and value."""

    item_type: int
    value: bytes = b""
    flags: int = 0

    @property
    def critical(self) -> bool:
        """True when the CRITICAL flag is set: a receiver that does not know the type must fail."""
        return bool(self.flags & EXTENSION_CRITICAL)


@dataclass(frozen=True, slots=True)
class ContactHeader:
    """The contact header that opens each direction of a connection (RFC 9174 §4.2)."""

    flags: int = 0
    version: int = VERSION

    @property
    def can_tls(self) -> bool:
        """True when the sender set CAN_TLS."""
        return bool(self.flags & CONTACT_CAN_TLS)


@dataclass(frozen=True, slots=True)
class SessInit:
    """SESS_INIT (RFC 9174 §4.6). ``node_id`` is the text sent, ``""`` when none was sent."""

    keepalive: int
    segment_mru: int
    transfer_mru: int
    node_id: str = ""
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SessTerm:
    """SESS_TERM (RFC 9174 §6.1)."""

    reason: int
    flags: int = 0

    @property
    def is_reply(self) -> bool:
        """True when the REPLY flag is set (this acknowledges the peer's SESS_TERM)."""
        return bool(self.flags & SESS_TERM_REPLY)


@dataclass(frozen=True, slots=True)
class XferSegment:
    """XFER_SEGMENT (RFC 9174 §5.2.2); extension items only travel with START."""

    flags: int
    transfer_id: int
    data: bytes = b""
    extensions: tuple[ExtensionItem, ...] = ()

    @property
    def start(self) -> bool:
        """True for the first segment of a transfer."""
        return bool(self.flags & SEGMENT_START)

    @property
    def end(self) -> bool:
        """True for the last segment of a transfer."""
        return bool(self.flags & SEGMENT_END)


@dataclass(frozen=True, slots=True)
class XferAck:
    """XFER_ACK (RFC 9174 §5.2.3): ``length`` is the total acknowledged so far."""

    flags: int
    transfer_id: int
    length: int


@dataclass(frozen=True, slots=True)
class XferRefuse:
    """XFER_REFUSE (RFC 9174 §5.2.4)."""

    reason: int
    transfer_id: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE (RFC 9174 §5.1.1): a lone message header."""


@dataclass(frozen=True, slots=True)
class MsgReject:
    """MSG_REJECT (RFC 9174 §5.1.2): ``rejected_header`` is the type byte rejected."""

    reason: int
    rejected_header: int


Message: TypeAlias = SessInit | SessTerm | XferSegment | XferAck | XferRefuse | Keepalive | MsgReject


def transfer_length_item(total_length: int, *, critical: bool = False) -> ExtensionItem:
    """The Transfer Length extension item announcing a transfer's total length (RFC 9174 §5.2.5.1)."""
    if not 0 <= total_length <= U64_MAX:
        raise LocalError(f"transfer length {total_length} is not a 64-bit unsigned integer")
    flags = EXTENSION_CRITICAL if critical else 0
    return ExtensionItem(TRANSFER_LENGTH_EXTENSION, _PACK_U64(total_length), flags)


def encode_extension_items(items: Iterable[ExtensionItem]) -> bytes:
    """Encode a list of extension items (without the list's length field)."""
    parts: list[bytes] = []
    for item in items:
        if not 0 <= item.flags <= 0xFF or not 0 <= item.item_type <= U16_MAX:
            raise LocalError(f"extension item flags {item.flags} or type {item.item_type} out of range")
        if len(item.value) > U16_MAX:
            raise LocalError(f"extension item value of {len(item.value)} bytes exceeds 65535")
        parts.append(_EXT_HEAD.pack(item.flags, item.item_type, len(item.value)))
        parts.append(bytes(item.value))
    return b"".join(parts)


def decode_extension_items(data: Buffer, *, transfer: bool) -> tuple[ExtensionItem, ...]:
    """Decode a whole extension item list; items that disagree with its length are an error.

    The error says what to answer: for a session list (``transfer=False``) a SESS_TERM with
    "Contact Failure", for a transfer list an XFER_REFUSE with "Extension Failure".
    """
    items: list[ExtensionItem] = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 5:
            raise _extension_error("an extension item header is cut short by the list length", transfer)
        flags, item_type, length = _EXT_HEAD.unpack_from(data, pos)
        pos += 5
        if end - pos < length:
            raise _extension_error(
                f"extension item type {item_type} claims {length} bytes, only {end - pos} remain in the list",
                transfer,
            )
        items.append(ExtensionItem(item_type, bytes(data[pos : pos + length]), flags))
        pos += length
    return tuple(items)


def _extension_error(message: str, transfer: bool) -> ConvergenceLayerError:
    if transfer:
        return ConvergenceLayerError(
            message, reason=XferRefuseReason.EXTENSION_FAILURE, message_kind="xfer_refuse"
        )
    return ConvergenceLayerError(message, reason=SessTermReason.CONTACT_FAILURE, message_kind="sess_term")


def encode_contact_header(header: ContactHeader | None = None, *, can_tls: bool = False) -> bytes:
    """Encode a contact header; with no ``header``, a version 4 one with CAN_TLS as given."""
    if header is None:
        header = ContactHeader(CONTACT_CAN_TLS if can_tls else 0)
    try:
        return _CONTACT.pack(MAGIC, header.version, header.flags)
    except struct.error as exc:
        raise LocalError(f"contact header field out of range: {exc}") from exc


def decode_contact_header(data: Buffer, pos: int = 0) -> tuple[ContactHeader, int]:
    """Decode a contact header at ``pos``; return it and the position after it.

    A wrong magic raises :class:`ConvergenceLayerError` with ``reason=None``: RFC 9174 §4.3 says
    to close the connection without sending anything. The version is returned, not judged.
    A short input that still matches the magic raises :class:`Incomplete`.
    """
    have = len(data) - pos
    n = min(have, 4)
    if bytes(data[pos : pos + n]) != MAGIC[:n]:
        raise ConvergenceLayerError("contact header does not start with the magic 'dtn!'", reason=None)
    if have < 6:
        raise Incomplete("contact header is 6 bytes", needed=6 - have)
    _, version, flags = _CONTACT.unpack_from(data, pos)
    return ContactHeader(flags, version), pos + 6


def encode_message(message: Message) -> bytes:
    """Encode one TCPCLv4 message; a field out of range raises :class:`LocalError`."""
    try:
        return _encode(message)
    except struct.error as exc:
        raise LocalError(f"{type(message).__name__} field out of range: {exc}") from exc


def _encode(message: Message) -> bytes:
    if isinstance(message, XferSegment):
        if message.start:
            ext = encode_extension_items(message.extensions)
            if len(ext) > U32_MAX:
                raise LocalError("transfer extension items exceed 2**32 - 1 bytes")
            head = _PACK_SEG_HEAD_EXT(MessageType.XFER_SEGMENT, message.flags, message.transfer_id, len(ext))
            return head + ext + _PACK_U64(len(message.data)) + bytes(message.data)
        if message.extensions:
            raise LocalError("transfer extension items can only be sent with the START segment")
        data_len = len(message.data)
        head = _PACK_SEG_HEAD_LEN(MessageType.XFER_SEGMENT, message.flags, message.transfer_id, data_len)
        return head + bytes(message.data)
    if isinstance(message, XferAck):
        return _PACK_XFER_ACK(MessageType.XFER_ACK, message.flags, message.transfer_id, message.length)
    if isinstance(message, XferRefuse):
        return _PACK_XFER_REFUSE(MessageType.XFER_REFUSE, message.reason, message.transfer_id)
    if isinstance(message, Keepalive):
        return _KEEPALIVE_BYTES
    if isinstance(message, SessTerm):
        return _SESS_TERM.pack(MessageType.SESS_TERM, message.flags, message.reason)
    if isinstance(message, MsgReject):
        return _MSG_REJECT.pack(MessageType.MSG_REJECT, message.reason, message.rejected_header)
    if isinstance(message, SessInit):
        node = message.node_id.encode("utf-8")
        if len(node) > U16_MAX:
            raise LocalError(f"node ID of {len(node)} bytes exceeds 65535")
        ext = encode_extension_items(message.extensions)
        if len(ext) > U32_MAX:
            raise LocalError("session extension items exceed 2**32 - 1 bytes")
        head = _SESS_INIT_HEAD.pack(
            MessageType.SESS_INIT, message.keepalive, message.segment_mru, message.transfer_mru, len(node)
        )
        return head + node + _U32.pack(len(ext)) + ext
    raise LocalError(f"not a TCPCLv4 message: {message!r}")


def _read_segment_header(
    data: Buffer, pos: int, end: int, max_ext: int = U32_MAX
) -> tuple[int, int, bytes | None, int, int]:
    """Frame an XFER_SEGMENT header: (flags, transfer ID, extension bytes or None, data length, data pos).

    Raises :class:`Incomplete` when the header is not all there, and a fatal
    :class:`ConvergenceLayerError` when the extension list is longer than ``max_ext``.
    """
    if end - pos < 10:
        raise Incomplete("XFER_SEGMENT header", needed=10 - (end - pos))
    _, flags, transfer_id = _SEG_HEAD.unpack_from(data, pos)
    p = pos + 10
    ext: bytes | None = None
    if flags & SEGMENT_START:
        if end - p < 4:
            raise Incomplete("XFER_SEGMENT extension length", needed=4 - (end - p))
        (ext_len,) = _U32.unpack_from(data, p)
        p += 4
        if ext_len > max_ext:
            raise ConvergenceLayerError(
                f"XFER_SEGMENT announces {ext_len} bytes of transfer extension items, more than the "
                f"{max_ext} accepted",
                reason=SessTermReason.RESOURCE_EXHAUSTION,
            )
        if end - p < ext_len + 8:
            raise Incomplete("XFER_SEGMENT extension items", needed=ext_len + 8 - (end - p))
        ext = bytes(data[p : p + ext_len])
        p += ext_len
    elif end - p < 8:
        raise Incomplete("XFER_SEGMENT data length", needed=8 - (end - p))
    (data_len,) = _U64.unpack_from(data, p)
    return flags, transfer_id, ext, data_len, p + 8


def _read_sess_init(
    data: Buffer, pos: int, end: int, max_ext: int = U32_MAX
) -> tuple[int, int, int, bytes, bytes, int]:
    """Frame a SESS_INIT: (keepalive, segment MRU, transfer MRU, node ID bytes, extension bytes, next pos)."""
    if end - pos < 21:
        raise Incomplete("SESS_INIT header", needed=21 - (end - pos))
    _, keepalive, segment_mru, transfer_mru, node_len = _SESS_INIT_HEAD.unpack_from(data, pos)
    p = pos + 21
    if end - p < node_len + 4:
        raise Incomplete("SESS_INIT node ID", needed=node_len + 4 - (end - p))
    node = bytes(data[p : p + node_len])
    p += node_len
    (ext_len,) = _U32.unpack_from(data, p)
    p += 4
    if ext_len > max_ext:
        raise ConvergenceLayerError(
            f"SESS_INIT announces {ext_len} bytes of session extension items, more than the {max_ext} "
            "accepted",
            reason=SessTermReason.RESOURCE_EXHAUSTION,
        )
    if end - p < ext_len:
        raise Incomplete("SESS_INIT extension items", needed=ext_len - (end - p))
    ext = bytes(data[p : p + ext_len])
    return keepalive, segment_mru, transfer_mru, node, ext, p + ext_len


def _node_id_text(node: bytes) -> str:
    try:
        return node.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConvergenceLayerError(
            f"SESS_INIT node ID is not UTF-8: {exc}", reason=SessTermReason.CONTACT_FAILURE
        ) from exc


def decode_message(data: Buffer, pos: int = 0) -> tuple[Message, int]:
    """Decode one whole message at ``pos``; return it and the position after it.

    Raises :class:`Incomplete` when more bytes are needed and :class:`ConvergenceLayerError` when
    the bytes break RFC 9174 (an unknown type, malformed extension items, a non-UTF-8 node ID);
    its ``reason`` and ``message_kind`` say what a receiver answers.
    """
    end = len(data)
    if pos >= end:
        raise Incomplete("message header", needed=1)
    mtype = data[pos]
    if mtype == MessageType.XFER_SEGMENT:
        flags, transfer_id, ext, data_len, p = _read_segment_header(data, pos, end)
        if end - p < data_len:
            raise Incomplete("XFER_SEGMENT data", needed=data_len - (end - p))
        items = decode_extension_items(ext, transfer=True) if ext is not None else ()
        return XferSegment(flags, transfer_id, bytes(data[p : p + data_len]), items), p + data_len
    if mtype == MessageType.XFER_ACK:
        if end - pos < 18:
            raise Incomplete("XFER_ACK", needed=18 - (end - pos))
        _, flags, transfer_id, length = _XFER_ACK.unpack_from(data, pos)
        return XferAck(flags, transfer_id, length), pos + 18
    if mtype == MessageType.XFER_REFUSE:
        if end - pos < 10:
            raise Incomplete("XFER_REFUSE", needed=10 - (end - pos))
        _, reason, transfer_id = _XFER_REFUSE.unpack_from(data, pos)
        return XferRefuse(reason, transfer_id), pos + 10
    if mtype == MessageType.KEEPALIVE:
        return Keepalive(), pos + 1
    if mtype == MessageType.SESS_TERM:
        if end - pos < 3:
            raise Incomplete("SESS_TERM", needed=3 - (end - pos))
        _, flags, reason = _SESS_TERM.unpack_from(data, pos)
        return SessTerm(reason, flags), pos + 3
    if mtype == MessageType.MSG_REJECT:
        if end - pos < 3:
            raise Incomplete("MSG_REJECT", needed=3 - (end - pos))
        _, reason, header = _MSG_REJECT.unpack_from(data, pos)
        return MsgReject(reason, header), pos + 3
    if mtype == MessageType.SESS_INIT:
        keepalive, segment_mru, transfer_mru, node, ext, p = _read_sess_init(data, pos, end)
        items = decode_extension_items(ext, transfer=False)
        return SessInit(keepalive, segment_mru, transfer_mru, _node_id_text(node), items), p
    raise ConvergenceLayerError(
        f"unknown message type 0x{mtype:02x}", reason=MsgRejectReason.TYPE_UNKNOWN, message_kind="msg_reject"
    )


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class Sentinel(enum.Enum):
    """What ``next_event()`` returns when it has no event."""

    NEED_DATA = "NEED_DATA"
    """No event is pending: feed more bytes, call a method, or wait for the timer."""

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of everything ``next_event()`` returns."""


@dataclass(frozen=True, slots=True)
class ContactHeaderReceived(Event):
    """The peer's contact header arrived (whatever its version)."""

    version: int
    can_tls: bool


@dataclass(frozen=True, slots=True)
class StartTLS(Event):
    """Both sides want TLS: wrap the connection (the passive side is the TLS server), then call
    ``tls_established()``. Bytes received meanwhile are TLS records, kept in ``trailing_data``."""

    server_side: bool


@dataclass(frozen=True, slots=True)
class SessionEstablished(Event):
    """SESS_INIT was exchanged and negotiated; transfers can start (RFC 9174 §4.7)."""

    peer_node_id: EID | None
    keepalive: int
    peer_segment_mru: int
    peer_transfer_mru: int
    extensions: tuple[ExtensionItem, ...]
    tls: bool


@dataclass(frozen=True, slots=True)
class TransferStarted(Event):
    """The peer started a transfer to us; its segments follow as :class:`SegmentReceived`."""

    transfer_id: int
    total_length: int | None
    extensions: tuple[ExtensionItem, ...]


@dataclass(frozen=True, slots=True)
class SegmentReceived(Event):
    """One received segment's data, in order. With ``end`` the transfer is whole: make the
    bundle durable, then call ``complete_transfer()`` (or ``refuse_transfer()``)."""

    transfer_id: int
    data: bytes
    start: bool
    end: bool


@dataclass(frozen=True, slots=True)
class TransferAcknowledged(Event):
    """The peer acknowledged ``acked_length`` bytes of our transfer; ``complete`` on the final ack."""

    transfer_id: int
    acked_length: int
    complete: bool


@dataclass(frozen=True, slots=True)
class TransferRefused(Event):
    """The peer refused our transfer (an :class:`XferRefuseReason` code, or an unknown one)."""

    transfer_id: int
    reason: int


@dataclass(frozen=True, slots=True)
class TransferAborted(Event):
    """A transfer will never finish: the connection closed under it, or the core refused an
    incoming one after announcing it. Drop what was received of it."""

    transfer_id: int
    incoming: bool


@dataclass(frozen=True, slots=True)
class KeepaliveReceived(Event):
    """The peer sent a KEEPALIVE."""


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """The peer rejected one of our messages with MSG_REJECT."""

    reason: int
    header: int


@dataclass(frozen=True, slots=True)
class SessionTerminated(Event):
    """The session entered the Ending state: a SESS_TERM was sent (and the peer's awaited) or received."""

    reason: int
    initiated_by_peer: bool


@dataclass(frozen=True, slots=True)
class ProtocolViolation(Event):
    """The peer broke RFC 9174; ``error.reason``/``error.message_kind`` say what was sent back
    (``reason`` is ``None`` when the connection was closed without a message)."""

    error: ConvergenceLayerError
    transfer_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The core is done: send what ``data_to_send()`` returns, then close the TCP connection.
    ``clean`` when both SESS_TERMs were exchanged and no transfer was cut short."""

    clean: bool


# --------------------------------------------------------------------------------------------
# The state machine, as data
# --------------------------------------------------------------------------------------------


class Role(enum.Enum):
    """Which side opened the TCP connection."""

    ACTIVE = "active"
    PASSIVE = "passive"


class State(enum.Enum):
    """Top-level session states (RFC 9174 §3.3)."""

    CONTACT_WAIT = "CONTACT_WAIT"
    """Waiting for the peer's contact header (the active side has sent its own)."""
    TLS_PENDING = "TLS_PENDING"
    """Contact headers agreed on TLS: the caller is running the TLS handshake."""
    SESS_INIT_WAIT = "SESS_INIT_WAIT"
    """Waiting for the peer's SESS_INIT (the active side has sent its own)."""
    ESTABLISHED = "ESTABLISHED"
    """Session parameters negotiated; transfers run in both directions."""
    ENDING = "ENDING"
    """Our SESS_TERM is sent: in-progress transfers may finish, no new one starts."""
    CLOSED = "CLOSED"
    """Nothing more to do but close the TCP connection."""


class Trigger(enum.Enum):
    """What moves the session from one state to another."""

    CONTACT_NEGOTIATED = "contact headers exchanged, no TLS"
    TLS_NEGOTIATED = "contact headers exchanged, both sides want TLS"
    TLS_ESTABLISHED = "the caller finished the TLS handshake"
    SESSION_NEGOTIATED = "SESS_INIT exchanged and acceptable"
    SESS_TERM_SENT = "we sent SESS_TERM first"
    SESS_TERM_RECEIVED = "the peer's SESS_TERM arrived (we reply if we had not sent ours)"
    TERMINATION_COMPLETE = "both SESS_TERMs exchanged and no transfer in progress"
    CONNECTION_CLOSED = "failure, timeout, abort or end of the TCP stream"


TRANSITIONS: Final[Mapping[State, Mapping[Trigger, State]]] = {
    State.CONTACT_WAIT: {
        Trigger.CONTACT_NEGOTIATED: State.SESS_INIT_WAIT,
        Trigger.TLS_NEGOTIATED: State.TLS_PENDING,
        Trigger.SESS_TERM_SENT: State.ENDING,  # contact failure (TLS policy) after both headers
        Trigger.CONNECTION_CLOSED: State.CLOSED,
    },
    State.TLS_PENDING: {
        Trigger.TLS_ESTABLISHED: State.SESS_INIT_WAIT,
        Trigger.CONNECTION_CLOSED: State.CLOSED,
    },
    State.SESS_INIT_WAIT: {
        Trigger.SESSION_NEGOTIATED: State.ESTABLISHED,
        Trigger.SESS_TERM_SENT: State.ENDING,
        Trigger.SESS_TERM_RECEIVED: State.ENDING,
        Trigger.CONNECTION_CLOSED: State.CLOSED,
    },
    State.ESTABLISHED: {
        Trigger.SESS_TERM_SENT: State.ENDING,
        Trigger.SESS_TERM_RECEIVED: State.ENDING,
        Trigger.CONNECTION_CLOSED: State.CLOSED,
    },
    State.ENDING: {
        Trigger.SESS_TERM_RECEIVED: State.ENDING,
        Trigger.TERMINATION_COMPLETE: State.CLOSED,
        Trigger.CONNECTION_CLOSED: State.CLOSED,
    },
    State.CLOSED: {},
}
"""Every legal state change; anything else is a bug (the tests walk this table)."""

_TRANSFER_MESSAGES: Final = frozenset(
    {MessageType.XFER_SEGMENT, MessageType.XFER_ACK, MessageType.XFER_REFUSE, MessageType.KEEPALIVE}
)
_ALWAYS: Final = frozenset({MessageType.SESS_TERM, MessageType.MSG_REJECT})

ACCEPTED_MESSAGES: Final[Mapping[State, frozenset[MessageType]]] = {
    State.CONTACT_WAIT: frozenset(),  # the stream holds a contact header, not messages
    State.TLS_PENDING: frozenset(),  # the stream holds TLS records for the caller
    State.SESS_INIT_WAIT: _ALWAYS | {MessageType.SESS_INIT},
    State.ESTABLISHED: _ALWAYS | _TRANSFER_MESSAGES,
    # Even when Ending began before SESS_INIT completed: the peer may have established its side,
    # and its new transfers crossing our SESS_TERM are refused "Session Terminating".
    State.ENDING: _ALWAYS | _TRANSFER_MESSAGES,
    State.CLOSED: frozenset(),
}
"""Message types each state takes; any other known type gets MSG_REJECT "Message Unexpected"."""


# --------------------------------------------------------------------------------------------
# Configuration and negotiated parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpclConfig:
    """Local TCPCL policy. Sizes in bytes, times in seconds.

    ``keepalive`` is the interval offered in SESS_INIT (0 disables KEEPALIVE); ``segment_mru`` and
    ``transfer_mru`` the largest segment and transfer we accept; ``max_segment_send`` caps the
    segments we send below the peer's Segment MRU. ``idle_timeout`` (default twice the negotiated
    keepalive) ends a session whose peer has sent nothing; ``session_idle_timeout`` (default off)
    ends one with no message but KEEPALIVE (RFC 9174 §6.2); ``contact_timeout`` bounds the wait
    for the contact header and for SESS_INIT; ``termination_timeout`` (default the idle timeout,
    else ``contact_timeout``) bounds the Ending state when the peer falls silent. With
    ``auto_ack`` each intermediate segment is acknowledged as it arrives (else call
    ``acknowledge()``); the final one always waits for ``complete_transfer()``.
    """

    node_id: str = ""
    keepalive: int = 30
    segment_mru: int = 1 << 20
    transfer_mru: int = 1 << 30
    max_segment_send: int = 1 << 20
    can_tls: bool = False
    require_tls: bool = False
    contact_timeout: float = 60.0
    idle_timeout: float | None = None
    session_idle_timeout: float | None = None
    termination_timeout: float | None = None
    auto_ack: bool = True
    send_transfer_length: bool = True
    session_extensions: tuple[ExtensionItem, ...] = ()
    known_session_extensions: frozenset[int] = frozenset()
    known_transfer_extensions: frozenset[int] = frozenset()
    min_peer_segment_mru: int = 1
    min_peer_transfer_mru: int = 1
    max_extensions_length: int = 65_536

    def __post_init__(self) -> None:
        if self.node_id:
            EID.parse(self.node_id)  # raises InvalidEndpointID, a LocalError
        if len(self.node_id.encode("utf-8")) > U16_MAX:
            raise LocalError("node_id is longer than 65535 bytes")
        for name in ("keepalive",):
            if not 0 <= getattr(self, name) <= U16_MAX:
                raise LocalError(f"{name} must be 0..65535 seconds")
        for name in ("segment_mru", "transfer_mru", "min_peer_segment_mru", "min_peer_transfer_mru"):
            if not 0 <= getattr(self, name) <= U64_MAX:
                raise LocalError(f"{name} must be a 64-bit unsigned integer")
        if self.max_segment_send < 1:
            raise LocalError("max_segment_send must be at least 1")
        if not 0 <= self.max_extensions_length <= U32_MAX:
            raise LocalError("max_extensions_length must be 0..2**32-1")
        if self.contact_timeout <= 0:
            raise LocalError("contact_timeout must be positive")
        for name in ("idle_timeout", "session_idle_timeout", "termination_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise LocalError(f"{name} must be positive or None")
        if self.require_tls and not self.can_tls:
            raise LocalError("require_tls needs can_tls")
        if len(encode_extension_items(self.session_extensions)) > U32_MAX:
            raise LocalError("session_extensions are too long")


@dataclass(frozen=True, slots=True)
class SessionParameters:
    """What the two SESS_INITs negotiated (RFC 9174 §4.7)."""

    peer_node_id: EID | None
    keepalive: int
    peer_segment_mru: int
    peer_transfer_mru: int
    segment_mtu: int
    """The largest segment we send: the peer's Segment MRU, capped by ``max_segment_send``."""
    extensions: tuple[ExtensionItem, ...]
    tls: bool


# --------------------------------------------------------------------------------------------
# Transfer bookkeeping
# --------------------------------------------------------------------------------------------


class _RxTransfer:
    """An incoming transfer, from its START segment until its final XFER_ACK or XFER_REFUSE.

    Responses (XFER_ACK, XFER_REFUSE) leave in transfer order: those of a transfer wait in
    ``held`` while an earlier one still awaits its final acknowledgement (RFC 9174 §5.2.4 asks
    it for refusals; we keep it for acknowledgements too so senders see them in order).
    """

    __slots__ = (
        "announced",
        "done",
        "ended",
        "held",
        "pending",
        "queued",
        "received",
        "refuse_reason",
        "refused",
        "total",
        "transfer_id",
    )

    def __init__(self, transfer_id: int) -> None:
        self.transfer_id = transfer_id
        self.total: int | None = None
        self.received = 0
        self.announced = False  # TransferStarted was emitted
        self.ended = False  # the END segment arrived whole
        self.refused = False
        self.refuse_reason = 0
        self.done = False  # the final response (ack or refusal) has been produced
        self.queued = False  # in _rx_order
        self.pending: list[bytes] = []  # acknowledgements not yet released
        self.held: list[bytes] = []  # responses waiting for earlier transfers


class _TxTransfer:
    """An outgoing transfer, from ``start_transfer()`` until its final XFER_ACK or XFER_REFUSE."""

    __slots__ = ("ended", "extensions", "final_len", "sent", "started", "total", "transfer_id")

    def __init__(self, transfer_id: int, total: int | None, extensions: tuple[ExtensionItem, ...]) -> None:
        self.transfer_id = transfer_id
        self.total = total
        self.extensions = extensions
        self.sent = 0
        self.started = False
        self.ended = False
        self.final_len = 0


# --------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------


class TcpclConnection:
    """One TCPCLv4 session over one TCP connection, either role, without I/O.

    Create it when the TCP connection is up (``now`` then); the active side's contact header is
    immediately in ``data_to_send()``.
    """

    def __init__(self, role: Role, config: TcpclConfig, now: float) -> None:
        self.role: Final = role
        self.config: Final = config
        self._state = State.CONTACT_WAIT
        self._state_since = now
        self._events: deque[Event] = deque()
        self._out: list[bytes | memoryview] = []
        self._buf = bytearray()
        self._trailing = bytearray()
        self._last_sent = now
        self._last_rx = now
        self._last_activity = now  # last non-KEEPALIVE message received (session idle)
        self._ending_since = now
        self._session: SessionParameters | None = None
        self._peer_contact: ContactHeader | None = None
        self._tls = False
        self._keepalive = 0
        self._idle_timeout: float | None = None
        self._term_sent = False
        self._term_received = False
        self._auto_ack = config.auto_ack
        self._max_ext = config.max_extensions_length
        # receiving a segment's data across calls
        self._skip = 0
        self._seg_need = 0
        self._seg_chunks: list[bytes | memoryview] = []
        self._seg_t: _RxTransfer | None = None
        self._seg_flags = 0
        # incoming transfers
        self._rx: _RxTransfer | None = None  # receiving segments (END not seen yet)
        self._rx_order: deque[_RxTransfer] = deque()  # not yet finally answered, in arrival order
        self._rx_waiting: dict[int, _RxTransfer] = {}  # END received, waiting for complete_transfer()
        # outgoing transfers
        self._tx: dict[int, _TxTransfer] = {}
        self._tx_current: _TxTransfer | None = None
        self._tx_refused_last: int | None = None
        self._next_transfer_id = 0
        if role is Role.ACTIVE:
            self._send(encode_contact_header(can_tls=config.can_tls), now)

    def __repr__(self) -> str:
        return f"<TcpclConnection {self.role.value} {self._state.value}>"

    # ---- introspection ------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current top-level state."""
        return self._state

    @property
    def session(self) -> SessionParameters | None:
        """The negotiated parameters, once SESS_INIT has been exchanged."""
        return self._session

    @property
    def peer_contact_header(self) -> ContactHeader | None:
        """The peer's contact header, once received."""
        return self._peer_contact

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the contact headers while TLS is pending (TLS records)."""
        return bytes(self._trailing)

    @property
    def can_start_transfer(self) -> bool:
        """True when ``start_transfer()`` would succeed now."""
        cur = self._tx_current
        return self._state is State.ESTABLISHED and (cur is None or cur.ended)

    @property
    def sending_transfer_id(self) -> int | None:
        """The outgoing transfer whose END segment has not been sent yet, if any."""
        cur = self._tx_current
        return None if cur is None else cur.transfer_id

    @property
    def transfers_in_progress(self) -> bool:
        """True while a transfer in either direction awaits its end (the RFC's "Live" sub-state)."""
        return bool(self._tx) or bool(self._rx_order)

    # ---- h11 / h2 style I/O -------------------------------------------------------------

    def next_event(self) -> Event | Literal[Sentinel.NEED_DATA]:
        """The next event, or :data:`NEED_DATA` when none is pending."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def events(self) -> Iterator[Event]:
        """Iterate over (and consume) the pending events."""
        events = self._events
        while events:
            yield events.popleft()

    def data_to_send(self) -> bytes:
        """Every byte queued for the peer since the last call (possibly ``b""``)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        if len(out) == 1:
            return bytes(out[0])
        return b"".join(out)

    def data_chunks_to_send(self) -> list[bytes | memoryview]:
        """Like ``data_to_send()`` but as pieces (for ``writelines``), without joining them.

        Large segment data is passed by reference: a caller who gave ``send_segment`` a read-only
        buffer must keep it unchanged until these chunks are written.
        """
        out = self._out
        self._out = []
        return out

    def receive_data(self, data: Buffer, now: float) -> None:
        """Feed bytes received from the peer (empty ``data`` is ignored: see ``receive_eof()``)."""
        state = self._state
        if state is State.CLOSED or not data:
            return
        self._last_rx = now
        if state is State.TLS_PENDING:
            self._trailing += data
            return
        if type(data) is not bytes:
            data = bytes(data)
        if self._buf:
            buf = self._buf
            buf += data
            pos = self._consume(buf, now)
            del buf[:pos]
        else:
            pos = self._consume(data, now)
            if pos < len(data):
                self._buf += memoryview(data)[pos:]
        if self._state is State.TLS_PENDING and self._buf:
            self._trailing += self._buf
            self._buf.clear()
        elif self._state is State.CLOSED:
            self._buf.clear()

    def receive_eof(self, now: float) -> None:
        """The TCP connection ended (end of stream, reset or error): the core closes.

        The close is clean only after both SESS_TERMs with nothing in progress; transfers still
        in progress are reported with :class:`TransferAborted`.
        """
        if self._state is State.CLOSED:
            return
        clean = self._term_sent and self._term_received and not self.transfers_in_progress
        self._close(clean)

    # ---- TLS ------------------------------------------------------------------------------

    def tls_established(self, now: float) -> None:
        """The caller finished the TLS handshake it was asked for by :class:`StartTLS`."""
        if self._state is not State.TLS_PENDING:
            raise LocalError(f"tls_established() in state {self._state.value}: no TLS handshake asked for")
        self._trailing.clear()
        self._tls = True
        self._begin_session_init(Trigger.TLS_ESTABLISHED, now)

    # ---- timers -----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer()`` must next be called, or ``None`` when no timer runs."""
        state = self._state
        if state is State.CONTACT_WAIT or state is State.SESS_INIT_WAIT:
            return self._state_since + self.config.contact_timeout
        if state is State.ESTABLISHED:
            deadlines = self._session_deadlines()
            return min(deadlines) if deadlines else None
        if state is State.ENDING:
            ending = max(self._last_rx, self._ending_since) + self._termination_timeout()
            if self._session is not None and self._keepalive:
                return min(ending, self._last_sent + self._keepalive)
            return ending
        return None

    def _session_deadlines(self) -> list[float]:
        deadlines: list[float] = []
        if self._keepalive:
            deadlines.append(self._last_sent + self._keepalive)
        if self._idle_timeout is not None:
            deadlines.append(self._last_rx + self._idle_timeout)
        if self.config.session_idle_timeout is not None:
            deadlines.append(self._last_activity + self.config.session_idle_timeout)
        return deadlines

    def _termination_timeout(self) -> float:
        cfg = self.config
        if cfg.termination_timeout is not None:
            return cfg.termination_timeout
        if self._idle_timeout is not None:
            return self._idle_timeout
        return cfg.contact_timeout

    def handle_timer(self, now: float) -> None:
        """Act on every deadline reached at ``now``: contact/SESS_INIT timeouts, KEEPALIVE, idle."""
        state = self._state
        if state is State.CONTACT_WAIT:
            if now >= self._state_since + self.config.contact_timeout:
                self._close(False)  # RFC 9174 §4.1: close the TCP connection, send nothing
            return
        if state is State.SESS_INIT_WAIT:
            if now >= self._state_since + self.config.contact_timeout:
                self._terminate(SessTermReason.IDLE_TIMEOUT, now)
            return
        if state is State.ESTABLISHED:
            idle = self._idle_timeout
            session_idle = self.config.session_idle_timeout
            peer_silent = idle is not None and now >= self._last_rx + idle
            session_unused = session_idle is not None and now >= self._last_activity + session_idle
            if peer_silent or session_unused:
                self._terminate(SessTermReason.IDLE_TIMEOUT, now)
        elif state is State.ENDING:
            if now >= max(self._last_rx, self._ending_since) + self._termination_timeout():
                self._close(False)
                return
        else:
            return
        if self._keepalive and self._session is not None and now >= self._last_sent + self._keepalive:
            self._send(_KEEPALIVE_BYTES, now)

    # ---- sending transfers ----------------------------------------------------------------

    def start_transfer(
        self, total_length: int | None, now: float, *, extensions: Iterable[ExtensionItem] = ()
    ) -> int:
        """Begin an outgoing transfer and return its ID; send its data with ``send_segment()``.

        ``total_length`` (when known) is announced with the Transfer Length extension and checked
        against the peer's Transfer MRU and against the data sent. Only one transfer is sent at a
        time (RFC 9174 §5.2.2), but many may await their acknowledgement.
        """
        session = self._session
        if self._state is not State.ESTABLISHED or session is None:
            raise LocalError(f"cannot start a transfer in state {self._state.value}")
        cur = self._tx_current
        if cur is not None:
            raise LocalError(f"transfer {cur.transfer_id} is still being sent: end it first")
        if total_length is not None:
            if not 0 <= total_length <= U64_MAX:
                raise LocalError(f"total_length {total_length} is not a 64-bit unsigned integer")
            if total_length > session.peer_transfer_mru:
                raise LocalError(
                    f"transfer of {total_length} bytes exceeds the peer's Transfer MRU of "
                    f"{session.peer_transfer_mru}: fragment the bundle"
                )
        items = tuple(extensions)
        if len(encode_extension_items(items)) > U32_MAX:
            raise LocalError("transfer extension items are too long")
        transfer_id = self._next_transfer_id
        if transfer_id > U64_MAX:
            # RFC 9174 §5.2.1: the whole 64-bit Transfer ID space is used up.
            self._terminate(SessTermReason.RESOURCE_EXHAUSTION, now)
            raise LocalError("transfer IDs exhausted: the session is terminating")
        self._next_transfer_id = transfer_id + 1
        t = _TxTransfer(transfer_id, total_length, items)
        self._tx[transfer_id] = t
        self._tx_current = t
        return transfer_id

    def send_segment(self, transfer_id: int, data: Buffer, end: bool, now: float) -> bool:
        """Send the next piece of an outgoing transfer, cut into segments of at most the peer's
        Segment MRU; ``end`` marks the transfer's last piece. Pieces may be of any size (stream a
        large bundle from disk); ``b""`` with ``end`` just ends the transfer.

        Returns ``False`` (and sends nothing) when the transfer is already refused by the peer or
        the connection is closed: those are races, not errors. Read-only buffers (``bytes``) are
        passed on by reference, mutable ones copied.
        """
        t = self._sending(transfer_id)
        if t is None:
            return False
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        if not view.readonly:
            view = memoryview(view.tobytes())
        size = len(view)
        mtu = self._check_piece(t, size, end)
        if size == 0 and not end:
            return True
        if mtu == 0 and size:
            raise LocalError("the peer's Segment MRU is 0: only empty transfers can be sent")
        out = self._out
        offset = 0
        piece_len = 0
        while True:
            piece_len = min(mtu, size - offset)
            last = offset + piece_len >= size
            piece = view[offset : offset + piece_len]
            head = self._segment_head(t, piece_len, end and last)
            if piece_len <= _SMALL_SEGMENT:
                out.append(head + piece)
            else:
                out.append(head)
                out.append(piece)
            offset += piece_len
            if last:
                break
        self._sent(t, size, end, piece_len, now)
        return True

    def send_segment_header(self, transfer_id: int, length: int, end: bool, now: float) -> bool:
        """Send only the header of the next segment, of ``length`` bytes (1 to the peer's Segment
        MRU); the caller writes those bytes itself right after :meth:`data_chunks_to_send`'s
        chunks and before calling the core again, e.g. with ``sendfile`` from a stored file.

        Returns ``False`` (sends nothing) as :meth:`send_segment` does.
        """
        t = self._sending(transfer_id)
        if t is None:
            return False
        mtu = self._check_piece(t, length, end)
        if not 0 < length <= mtu:
            raise LocalError(
                f"a segment header announces 1 to {mtu} bytes (the peer's Segment MRU), not {length}"
            )
        self._out.append(self._segment_head(t, length, end))
        self._sent(t, length, end, length, now)
        return True

    def _sending(self, transfer_id: int) -> _TxTransfer | None:
        """The outgoing transfer being sent; None when it is refused already or the connection closed."""
        t = self._tx_current
        if t is None or t.transfer_id != transfer_id:
            if self._state is State.CLOSED or transfer_id == self._tx_refused_last:
                return None
            raise LocalError(f"transfer {transfer_id} is not being sent (call start_transfer first)")
        return t

    def _check_piece(self, t: _TxTransfer, size: int, end: bool) -> int:
        """Check that ``size`` more bytes fit the transfer; the Segment MTU to cut them by."""
        session = self._session
        if session is None:  # pragma: no cover - a current transfer implies a session
            raise LocalError("no session")
        new_sent = t.sent + size
        if t.total is not None and (new_sent > t.total or (end and new_sent != t.total)):
            raise LocalError(
                f"transfer {t.transfer_id} announced {t.total} bytes but would carry "
                f"{'at least ' if not end else ''}{new_sent}"
            )
        if new_sent > session.peer_transfer_mru:
            raise LocalError(
                f"transfer {t.transfer_id} would exceed the peer's Transfer MRU "
                f"of {session.peer_transfer_mru}"
            )
        return session.segment_mtu

    def _segment_head(self, t: _TxTransfer, piece_len: int, end: bool) -> bytes:
        """The XFER_SEGMENT header of the next ``piece_len`` bytes (``end``: the transfer's last)."""
        flags = SEGMENT_END if end else 0
        if not t.started:
            flags |= SEGMENT_START
            t.started = True
            items = t.extensions
            if t.total is not None and self.config.send_transfer_length and not end:
                # RFC 9174 §5.2.5.1: not for a transfer that fits in one segment.
                items = (transfer_length_item(t.total), *items)
            ext = encode_extension_items(items)
            head = _PACK_SEG_HEAD_EXT(MessageType.XFER_SEGMENT, flags, t.transfer_id, len(ext))
            return head + ext + _PACK_U64(piece_len)
        return _PACK_SEG_HEAD_LEN(MessageType.XFER_SEGMENT, flags, t.transfer_id, piece_len)

    def _sent(self, t: _TxTransfer, size: int, end: bool, final_len: int, now: float) -> None:
        t.sent += size
        if end:
            t.ended = True
            t.final_len = final_len
            self._tx_current = None
        self._last_sent = now

    def send_bundle(self, data: Buffer, now: float, *, extensions: Iterable[ExtensionItem] = ()) -> int:
        """Send a whole bundle as one transfer; return its transfer ID."""
        size = memoryview(data).nbytes
        transfer_id = self.start_transfer(size, now, extensions=extensions)
        self.send_segment(transfer_id, data, True, now)
        return transfer_id

    # ---- receiving transfers --------------------------------------------------------------

    def acknowledge(self, transfer_id: int, now: float) -> None:
        """Send the XFER_ACKs of the intermediate segments received so far (with ``auto_ack`` off).

        The acknowledgement of the END segment is left for ``complete_transfer()``.
        """
        if self._state is State.CLOSED:
            return
        t = self._rx_waiting.get(transfer_id)
        if t is None:
            t = self._rx
            if t is None or t.transfer_id != transfer_id or t.refused:
                raise LocalError(f"no incoming transfer {transfer_id} in progress")
        pending = t.pending
        keep = pending[-1:] if t.ended else []
        release = pending[:-1] if t.ended else pending
        t.pending = keep
        for ack in release:
            self._rx_emit(t, ack, False, now)

    def complete_transfer(self, transfer_id: int, now: float) -> None:
        """Acknowledge a whole received transfer: call once its bundle is safely stored.

        Sends the final XFER_ACK (and any intermediate ones still held). A no-op once the
        connection is closed: the sender will treat the transfer as failed.
        """
        if self._state is State.CLOSED:
            return
        t = self._rx_waiting.pop(transfer_id, None)
        if t is None:
            raise LocalError(f"no received transfer {transfer_id} awaits completion (its END segment first)")
        pending = t.pending
        t.pending = []
        last = len(pending) - 1
        for i, ack in enumerate(pending):
            self._rx_emit(t, ack, i == last, now)
        self._maybe_finish()

    def refuse_transfer(self, transfer_id: int, reason: int, now: float) -> None:
        """Refuse an incoming transfer (XFER_REFUSE), in progress or received whole but not completed.

        Later segments of it are refused too. A no-op once the connection is closed.
        """
        if self._state is State.CLOSED:
            return
        if not 0 <= reason <= 0xFF:
            raise LocalError(f"XFER_REFUSE reason {reason} is not a byte")
        t = self._rx_waiting.pop(transfer_id, None)
        if t is None:
            t = self._rx
            if t is None or t.transfer_id != transfer_id or t.refused:
                raise LocalError(f"no incoming transfer {transfer_id} to refuse")
            if self._seg_t is t:  # a segment of it is arriving: drop the rest
                self._skip = self._seg_need
                self._seg_need = 0
                self._seg_chunks = []
                self._seg_t = None
        self._refuse_rx(t, reason, now)
        self._maybe_finish()

    # ---- session termination --------------------------------------------------------------

    def close(self, reason: int, now: float, *, immediate: bool = False) -> None:
        """Terminate the session with SESS_TERM ``reason`` (RFC 9174 §6.1).

        Without ``immediate`` transfers in progress may finish, no new one starts, and the core
        closes once both SESS_TERMs are exchanged. With ``immediate`` the SESS_TERM is queued and
        the connection is closed at once (an unclean termination). Before the contact headers are
        exchanged (or during TLS) nothing may be sent, so the connection just closes.
        """
        if not 0 <= reason <= 0xFF:
            raise LocalError(f"SESS_TERM reason {reason} is not a byte")
        state = self._state
        if state is State.CLOSED:
            return
        if state is State.CONTACT_WAIT or state is State.TLS_PENDING:
            self._close(False)
            return
        if not self._term_sent:
            self._terminate(reason, now)
        if immediate and self._state is not State.CLOSED:
            self._close(False)

    # ---- internals: output ----------------------------------------------------------------

    def _send(self, data: bytes, now: float) -> None:
        self._out.append(data)
        self._last_sent = now

    def _move(self, trigger: Trigger) -> None:
        new = TRANSITIONS[self._state].get(trigger)
        if new is None:  # pragma: no cover - guarded by the callers; the tests walk the table
            raise LocalError(f"internal error: {trigger.name} in state {self._state.value}")
        self._state = new

    def _terminate(self, reason: int, now: float, error: ConvergenceLayerError | None = None) -> None:
        """Send our SESS_TERM first and enter Ending."""
        self._send(_sess_term(reason), now)
        self._term_sent = True
        self._move(Trigger.SESS_TERM_SENT)
        self._ending_since = now
        if error is not None:
            self._events.append(ProtocolViolation(error))
        self._events.append(SessionTerminated(reason, False))
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if (
            self._state is State.ENDING
            and self._term_sent
            and self._term_received
            and not self._tx
            and not self._rx_order
        ):
            self._move(Trigger.TERMINATION_COMPLETE)
            self._finish_closed(True)

    def _close(self, clean: bool) -> None:
        self._move(Trigger.CONNECTION_CLOSED)
        self._finish_closed(clean)

    def _finish_closed(self, clean: bool) -> None:
        events = self._events
        for t in self._tx.values():
            events.append(TransferAborted(t.transfer_id, False))
        rx = self._rx
        if rx is not None and rx.announced and not rx.refused:
            events.append(TransferAborted(rx.transfer_id, True))
        self._tx.clear()
        self._tx_current = None
        self._rx = None
        self._rx_order.clear()
        self._rx_waiting.clear()
        self._seg_t = None
        self._seg_chunks = []
        self._seg_need = 0
        self._skip = 0
        events.append(ConnectionClosed(clean))

    def _fatal(self, error: ConvergenceLayerError, message: bytes | None, now: float) -> None:
        """A fault after which the stream cannot be followed: answer, report, close."""
        if message is not None and message[0] == MessageType.SESS_TERM:
            if self._term_sent:
                message = None  # ours is already on the wire
            else:
                self._term_sent = True
        if message is not None:
            self._send(message, now)
        self._events.append(ProtocolViolation(error))
        if message is not None and message[0] == MessageType.SESS_TERM:
            self._events.append(SessionTerminated(message[2], False))
        self._close(False)

    def _reject(
        self, reason: int, header: int, text: str, now: float, transfer_id: int | None = None
    ) -> None:
        self._send(_MSG_REJECT.pack(MessageType.MSG_REJECT, reason, header), now)
        error = ConvergenceLayerError(text, reason=reason, message_kind="msg_reject")
        self._events.append(ProtocolViolation(error, transfer_id))

    # ---- internals: incoming transfer responses, kept in transfer order ---------------------

    def _rx_emit(self, t: _RxTransfer, message: bytes, final: bool, now: float) -> None:
        order = self._rx_order
        if t.queued and order[0] is not t:
            t.held.append(message)
        else:
            self._send(message, now)
        if final:
            t.done = True
            if t.queued and order[0] is t:
                self._rx_advance(now)

    def _rx_advance(self, now: float) -> None:
        order = self._rx_order
        while order:
            head = order[0]
            if head.held:
                for message in head.held:
                    self._send(message, now)
                head.held = []
            if not head.done:
                break
            order.popleft()
            head.queued = False

    def _refuse_rx(
        self,
        t: _RxTransfer,
        reason: int,
        now: float,
        error: ConvergenceLayerError | None = None,
        *,
        aborted: bool = False,
    ) -> None:
        """Refuse an incoming transfer: XFER_REFUSE now (in order), later segments refused too.

        A refusal the core decides (``error`` or ``aborted``) of a transfer already announced
        with :class:`TransferStarted` is reported with :class:`TransferAborted`.
        """
        if error is not None:
            self._events.append(ProtocolViolation(error, t.transfer_id))
        if t.announced and (error is not None or aborted):
            self._events.append(TransferAborted(t.transfer_id, True))
        t.refused = True
        t.refuse_reason = reason
        t.pending = []
        self._rx_emit(t, _PACK_XFER_REFUSE(MessageType.XFER_REFUSE, reason, t.transfer_id), True, now)

    # ---- internals: parsing -----------------------------------------------------------------

    def _consume(self, buf: bytes | bytearray, now: float) -> int:
        """Parse as much of ``buf`` as possible; return how many bytes were used."""
        pos = 0
        end = len(buf)
        mv = memoryview(buf)
        borrowed = type(buf) is bytes  # slices of caller's immutable bytes can be kept
        try:
            while pos < end:
                if self._skip:
                    n = min(self._skip, end - pos)
                    self._skip -= n
                    pos += n
                    continue
                if self._seg_need:
                    n = min(self._seg_need, end - pos)
                    self._seg_chunks.append(mv[pos : pos + n] if borrowed else bytes(mv[pos : pos + n]))
                    self._seg_need -= n
                    pos += n
                    if not self._seg_need:
                        chunks = self._seg_chunks
                        self._seg_chunks = []
                        self._segment_done(bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks), now)
                    continue
                state = self._state
                if state is State.CONTACT_WAIT:
                    new = self._on_contact(buf, pos, end, now)
                elif state is State.TLS_PENDING or state is State.CLOSED:
                    break
                else:
                    new = self._on_message(buf, mv, pos, end, now)
                if new < 0:
                    break
                pos = new
        finally:
            mv.release()
        return pos

    def _on_contact(self, buf: bytes | bytearray, pos: int, end: int, now: float) -> int:
        try:
            header, pos = decode_contact_header(buf, pos)
        except Incomplete:
            return -1
        except ConvergenceLayerError as exc:
            # RFC 9174 §4.3/§6.1: a bad magic closes the connection without SESS_TERM.
            self._events.append(ProtocolViolation(exc))
            self._close(False)
            return end
        self._peer_contact = header
        cfg = self.config
        self._events.append(ContactHeaderReceived(header.version, header.can_tls))
        if header.version != VERSION:
            if self.role is Role.PASSIVE:
                # RFC 9174 §4.3: send our contact header, then terminate with "Version mismatch".
                self._send(encode_contact_header(can_tls=cfg.can_tls), now)
                error = ConvergenceLayerError(
                    f"peer speaks TCPCL version {header.version}, not {VERSION}",
                    reason=SessTermReason.VERSION_MISMATCH,
                )
                self._fatal(error, _sess_term(SessTermReason.VERSION_MISMATCH), now)
            else:
                # RFC 9174 §4.3: the active entity closes the TCP connection.
                error = ConvergenceLayerError(
                    f"passive peer answered with TCPCL version {header.version}, not {VERSION}", reason=None
                )
                self._fatal(error, None, now)
            return end
        if self.role is Role.PASSIVE:
            self._send(encode_contact_header(can_tls=cfg.can_tls), now)
        use_tls = header.can_tls and cfg.can_tls
        if cfg.require_tls and not use_tls:
            # RFC 9174 §4.3: an unacceptable Enable TLS state ends the session with Contact Failure.
            self._terminate(SessTermReason.CONTACT_FAILURE, now)
            return pos
        if use_tls:
            self._move(Trigger.TLS_NEGOTIATED)
            self._state_since = now
            self._events.append(StartTLS(self.role is Role.PASSIVE))
            return pos
        self._begin_session_init(Trigger.CONTACT_NEGOTIATED, now)
        return pos

    def _begin_session_init(self, trigger: Trigger, now: float) -> None:
        self._move(trigger)
        self._state_since = now
        if self.role is Role.ACTIVE:
            self._send(self._own_sess_init(), now)

    def _own_sess_init(self) -> bytes:
        cfg = self.config
        return encode_message(
            SessInit(cfg.keepalive, cfg.segment_mru, cfg.transfer_mru, cfg.node_id, cfg.session_extensions)
        )

    def _accepts(self, mtype: int) -> bool:
        return mtype in ACCEPTED_MESSAGES[self._state]

    def _on_message(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int, now: float) -> int:
        mtype = buf[pos]
        if mtype == MessageType.XFER_SEGMENT:
            return self._on_segment(buf, mv, pos, end, now)
        if mtype == MessageType.XFER_ACK:
            if end - pos < 18:
                return -1
            _, flags, transfer_id, length = _XFER_ACK.unpack_from(buf, pos)
            self._on_ack(flags, transfer_id, length, now)
            return pos + 18
        if mtype == MessageType.KEEPALIVE:
            if self._accepts(mtype):
                self._events.append(KeepaliveReceived())
            else:
                self._unexpected(mtype, now)
            return pos + 1
        if mtype == MessageType.XFER_REFUSE:
            if end - pos < 10:
                return -1
            _, reason, transfer_id = _XFER_REFUSE.unpack_from(buf, pos)
            self._on_refuse(reason, transfer_id, now)
            return pos + 10
        if mtype == MessageType.SESS_TERM:
            if end - pos < 3:
                return -1
            _, flags, reason = _SESS_TERM.unpack_from(buf, pos)
            self._on_sess_term(flags, reason, now)
            return pos + 3
        if mtype == MessageType.MSG_REJECT:
            if end - pos < 3:
                return -1
            _, reason, header = _MSG_REJECT.unpack_from(buf, pos)
            self._last_activity = now
            if self._accepts(mtype):
                self._events.append(MessageRejected(reason, header))
            else:  # pragma: no cover - MSG_REJECT is accepted wherever messages are parsed
                self._unexpected(mtype, now)
            return pos + 3
        if mtype == MessageType.SESS_INIT:
            try:
                fields = _read_sess_init(buf, pos, end, self._max_ext)
            except Incomplete:
                return -1
            except ConvergenceLayerError as exc:
                self._fatal(exc, _sess_term(SessTermReason.RESOURCE_EXHAUSTION), now)
                return end
            self._on_sess_init(*fields[:5], now)
            return fields[5]
        # RFC 9174 §5.1.2: MSG_REJECT "Message Type Unknown" and close: the stream cannot be framed.
        error = ConvergenceLayerError(
            f"unknown message type 0x{mtype:02x}",
            reason=MsgRejectReason.TYPE_UNKNOWN,
            message_kind="msg_reject",
        )
        self._fatal(error, _MSG_REJECT.pack(MessageType.MSG_REJECT, MsgRejectReason.TYPE_UNKNOWN, mtype), now)
        return end

    def _unexpected(self, mtype: int, now: float, transfer_id: int | None = None, why: str = "") -> None:
        name = MessageType(mtype).name
        text = why or f"{name} is not expected in state {self._state.value}"
        self._reject(MsgRejectReason.UNEXPECTED, mtype, text, now, transfer_id)

    # ---- session messages -----------------------------------------------------------------

    def _on_sess_init(
        self, keepalive: int, segment_mru: int, transfer_mru: int, node: bytes, ext: bytes, now: float
    ) -> None:
        self._last_activity = now
        state = self._state
        if state is State.ENDING and self._session is None:
            return  # it crossed our SESS_TERM on the wire: nothing to answer
        if state is not State.SESS_INIT_WAIT:
            self._unexpected(MessageType.SESS_INIT, now)
            return
        cfg = self.config
        try:
            text = _node_id_text(node)
            peer_node: EID | None = None
            if text:
                try:
                    peer_node = EID.parse(text)
                except (InvalidEndpointID, ValueError) as exc:
                    raise ConvergenceLayerError(
                        f"SESS_INIT node ID {text!r} is not a valid endpoint ID: {exc}",
                        reason=SessTermReason.CONTACT_FAILURE,
                    ) from exc
            items = decode_extension_items(ext, transfer=False)
            for item in items:
                if item.critical and item.item_type not in cfg.known_session_extensions:
                    raise ConvergenceLayerError(
                        f"unknown critical session extension type {item.item_type}",
                        reason=SessTermReason.CONTACT_FAILURE,
                    )
            if segment_mru < cfg.min_peer_segment_mru or transfer_mru < cfg.min_peer_transfer_mru:
                raise ConvergenceLayerError(
                    f"peer's Segment MRU {segment_mru} / Transfer MRU {transfer_mru} is below our minimum "
                    f"{cfg.min_peer_segment_mru} / {cfg.min_peer_transfer_mru}",
                    reason=SessTermReason.CONTACT_FAILURE,
                )
        except ConvergenceLayerError as exc:
            # RFC 9174 §4.6/§4.7/§4.8: an unacceptable SESS_INIT ends the session with Contact Failure.
            self._terminate(SessTermReason.CONTACT_FAILURE, now, exc)
            return
        if self.role is Role.PASSIVE:
            self._send(self._own_sess_init(), now)
        self._keepalive = min(keepalive, cfg.keepalive)
        if cfg.idle_timeout is not None:
            self._idle_timeout = cfg.idle_timeout
        elif self._keepalive:
            self._idle_timeout = 2.0 * self._keepalive
        self._session = SessionParameters(
            peer_node_id=peer_node,
            keepalive=self._keepalive,
            peer_segment_mru=segment_mru,
            peer_transfer_mru=transfer_mru,
            segment_mtu=min(segment_mru, cfg.max_segment_send),
            extensions=items,
            tls=self._tls,
        )
        self._move(Trigger.SESSION_NEGOTIATED)
        self._state_since = now
        self._events.append(
            SessionEstablished(peer_node, self._keepalive, segment_mru, transfer_mru, items, self._tls)
        )

    def _on_sess_term(self, flags: int, reason: int, now: float) -> None:
        self._last_activity = now
        if not self._accepts(MessageType.SESS_TERM) or self._term_received:
            self._unexpected(MessageType.SESS_TERM, now)
            return
        self._term_received = True
        if not self._term_sent:
            # RFC 9174 §6.1: acknowledge with the same content and the REPLY flag.
            self._send(_SESS_TERM.pack(MessageType.SESS_TERM, flags | SESS_TERM_REPLY, reason), now)
            self._term_sent = True
            self._move(Trigger.SESS_TERM_RECEIVED)
            self._ending_since = now
            self._events.append(SessionTerminated(reason, True))
        else:
            self._move(Trigger.SESS_TERM_RECEIVED)
        self._maybe_finish()

    # ---- transfer messages, sender side -----------------------------------------------------

    def _on_ack(self, flags: int, transfer_id: int, length: int, now: float) -> None:
        self._last_activity = now
        if not self._accepts(MessageType.XFER_ACK):
            self._unexpected(MessageType.XFER_ACK, now, transfer_id)
            return
        t = self._tx.get(transfer_id)
        if t is None:
            self._unexpected(
                MessageType.XFER_ACK, now, transfer_id, f"XFER_ACK for unknown transfer {transfer_id}"
            )
            return
        if length > t.sent:
            self._reject(
                MsgRejectReason.UNSUPPORTED,
                MessageType.XFER_ACK,
                f"XFER_ACK of {length} bytes for transfer {transfer_id}, of which only {t.sent} were sent",
                now,
                transfer_id,
            )
            return
        complete = t.ended and length == t.sent and (t.final_len > 0 or bool(flags & SEGMENT_END))
        if complete:
            del self._tx[transfer_id]
        self._events.append(TransferAcknowledged(transfer_id, length, complete))
        if complete:
            self._maybe_finish()

    def _on_refuse(self, reason: int, transfer_id: int, now: float) -> None:
        self._last_activity = now
        if not self._accepts(MessageType.XFER_REFUSE):
            self._unexpected(MessageType.XFER_REFUSE, now, transfer_id)
            return
        t = self._tx.pop(transfer_id, None)
        if t is None:
            if transfer_id == self._tx_refused_last:
                return  # RFC 9174 §5.2.4: each later segment of a refused transfer is refused again
            self._unexpected(
                MessageType.XFER_REFUSE, now, transfer_id, f"XFER_REFUSE for unknown transfer {transfer_id}"
            )
            return
        self._tx_refused_last = transfer_id
        if self._tx_current is t:
            self._tx_current = None
        self._events.append(TransferRefused(transfer_id, reason))
        self._maybe_finish()

    # ---- transfer messages, receiver side ---------------------------------------------------

    def _on_segment(self, buf: bytes | bytearray, mv: memoryview, pos: int, end: int, now: float) -> int:
        try:
            flags, transfer_id, ext, data_len, p = _read_segment_header(buf, pos, end, self._max_ext)
        except Incomplete:
            return -1
        except ConvergenceLayerError as exc:
            self._fatal(exc, _sess_term(SessTermReason.RESOURCE_EXHAUSTION), now)
            return end
        self._last_activity = now
        keep = self._segment_header(flags, transfer_id, ext, data_len, now)
        avail = end - p
        if not keep:
            if avail >= data_len:
                return p + data_len
            self._skip = data_len - avail
            return end
        if avail >= data_len:
            self._segment_done(bytes(mv[p : p + data_len]), now)
            return p + data_len
        self._seg_need = data_len - avail
        if avail:
            self._seg_chunks = [mv[p:end] if type(buf) is bytes else bytes(mv[p:end])]
        return end

    def _segment_header(
        self, flags: int, transfer_id: int, ext: bytes | None, data_len: int, now: float
    ) -> bool:
        """Judge a segment from its header; True when its data is to be delivered."""
        if not self._accepts(MessageType.XFER_SEGMENT):
            self._unexpected(MessageType.XFER_SEGMENT, now, transfer_id)
            return False
        is_end = bool(flags & SEGMENT_END)
        t = self._rx
        if flags & SEGMENT_START:
            if t is not None:
                self._rx = None
                if not t.refused:
                    # The peer began a new transfer without ending this one (RFC 9174 §5.2.2).
                    error = ConvergenceLayerError(
                        f"transfer {t.transfer_id} was abandoned without an END segment",
                        reason=XferRefuseReason.NOT_ACCEPTABLE,
                        message_kind="xfer_refuse",
                    )
                    self._refuse_rx(t, XferRefuseReason.NOT_ACCEPTABLE, now, error)
            if transfer_id in self._rx_waiting:
                self._unexpected(
                    MessageType.XFER_SEGMENT, now, transfer_id, f"transfer ID {transfer_id} is already in use"
                )
                return False
            t = _RxTransfer(transfer_id)
            t.queued = True
            self._rx_order.append(t)
            self._rx = t
            keep = self._start_ok(t, ext, flags, data_len, now)
        elif t is None or t.transfer_id != transfer_id:
            self._unexpected(
                MessageType.XFER_SEGMENT,
                now,
                transfer_id,
                f"XFER_SEGMENT without START for transfer {transfer_id}, which is not in progress",
            )
            return False
        elif t.refused:
            # RFC 9174 §5.2.4: later segments of a refused transfer are refused again.
            refusal = _PACK_XFER_REFUSE(MessageType.XFER_REFUSE, t.refuse_reason, transfer_id)
            self._rx_emit(t, refusal, False, now)
            keep = False
        else:
            keep = self._data_ok(t, flags, data_len, now)
        if keep:
            self._seg_t = t
            self._seg_flags = flags
        elif is_end:
            self._rx = None
        return keep

    def _start_ok(self, t: _RxTransfer, ext: bytes | None, flags: int, data_len: int, now: float) -> bool:
        """Checks on a START segment; announces the transfer when it is accepted."""
        if self._state is State.ENDING:
            # RFC 9174 §6.1: no new incoming transfer while Ending.
            self._refuse_rx(t, XferRefuseReason.SESSION_TERMINATING, now)
            return False
        try:
            items = decode_extension_items(ext or b"", transfer=True)
            t.total = self._transfer_length(items)
        except ConvergenceLayerError as exc:
            # RFC 9174 §5.2.5: unknown critical or malformed items refuse with Extension Failure.
            self._refuse_rx(t, XferRefuseReason.EXTENSION_FAILURE, now, exc)
            return False
        mru = self.config.transfer_mru
        if t.total is not None and t.total > mru:
            error = ConvergenceLayerError(
                f"transfer {t.transfer_id} announces {t.total} bytes, over our Transfer MRU of {mru}",
                reason=XferRefuseReason.NO_RESOURCES,
                message_kind="xfer_refuse",
            )
            self._refuse_rx(t, XferRefuseReason.NO_RESOURCES, now, error)
            return False
        if not self._data_ok(t, flags, data_len, now):
            return False
        t.announced = True
        self._events.append(TransferStarted(t.transfer_id, t.total, items))
        return True

    def _data_ok(self, t: _RxTransfer, flags: int, data_len: int, now: float) -> bool:
        """Checks of a segment's length against our MRUs and the announced total length."""
        cfg = self.config
        transfer_id = t.transfer_id
        if data_len > cfg.segment_mru:
            # Not settled by RFC 9174: a message inappropriate for the negotiated parameters gets
            # "Message Unsupported" (§5.1.2), and its transfer, now missing data, is refused.
            self._reject(
                MsgRejectReason.UNSUPPORTED,
                MessageType.XFER_SEGMENT,
                f"segment of {data_len} bytes exceeds our Segment MRU of {cfg.segment_mru}",
                now,
                transfer_id,
            )
            self._refuse_rx(t, XferRefuseReason.NOT_ACCEPTABLE, now, aborted=True)
            return False
        is_end = flags & SEGMENT_END
        received = t.received + data_len
        if received > cfg.transfer_mru:
            reason = XferRefuseReason.NO_RESOURCES
            text = f"transfer {transfer_id} exceeds our Transfer MRU of {cfg.transfer_mru}"
        elif t.total is not None and (received > t.total or (is_end and received != t.total)):
            # RFC 9174 §5.2.5.1: data that disagrees with Transfer Length is refused "Not Acceptable".
            reason = XferRefuseReason.NOT_ACCEPTABLE
            text = (
                f"transfer {transfer_id} carries {received} bytes{'' if is_end else ' so far'}, "
                f"not the {t.total} its Transfer Length extension announced"
            )
        else:
            return True
        error = ConvergenceLayerError(text, reason=reason, message_kind="xfer_refuse")
        self._refuse_rx(t, reason, now, error)
        return False

    def _transfer_length(self, items: tuple[ExtensionItem, ...]) -> int | None:
        total: int | None = None
        known = self.config.known_transfer_extensions
        for item in items:
            if item.item_type == TRANSFER_LENGTH_EXTENSION:
                if total is not None:
                    raise _extension_error("more than one Transfer Length extension item", True)
                if len(item.value) != 8:
                    raise _extension_error(
                        f"Transfer Length extension value is {len(item.value)} bytes, not 8", True
                    )
                (total,) = _U64.unpack(item.value)
            elif item.critical and item.item_type not in known:
                raise _extension_error(f"unknown critical transfer extension type {item.item_type}", True)
        return total

    def _segment_done(self, data: bytes, now: float) -> None:
        t = self._seg_t
        self._seg_t = None
        if t is None or t.refused:
            return
        flags = self._seg_flags
        t.received += len(data)
        transfer_id = t.transfer_id
        is_end = bool(flags & SEGMENT_END)
        self._events.append(SegmentReceived(transfer_id, data, bool(flags & SEGMENT_START), is_end))
        ack = _PACK_XFER_ACK(MessageType.XFER_ACK, flags, transfer_id, t.received)
        if is_end:
            t.ended = True
            t.pending.append(ack)
            self._rx_waiting[transfer_id] = t
            if self._rx is t:
                self._rx = None
        elif self._auto_ack:
            self._rx_emit(t, ack, False, now)
        else:
            t.pending.append(ack)
