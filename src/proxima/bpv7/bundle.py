"""Bundles of RFC 9171 §4: the primary block, canonical blocks, and their deterministic codec.

A :class:`Bundle` is an immutable value: a :class:`PrimaryBlock` and a tuple of
:class:`CanonicalBlock` in wire order, the payload block last. A canonical block keeps its
block-type-specific data as the exact bytes carried in its byte string, so blocks this code does
not understand travel on verbatim.

:func:`encode_bundle` writes the deterministic encoding (shortest-form heads, definite-length
blocks inside the indefinite-length bundle array). :func:`decode_bundle` parses strictly, checks
every validity rule of §4 and verifies each block's CRC over the bytes received, so that
``encode_bundle(decode_bundle(x)) == x`` whenever ``x`` is deterministically encoded.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import cbor2

from proxima.bpv7 import _cbor
from proxima.bpv7.crc import CRCType, crc16_x25, crc32c, crc_of_block
from proxima.bpv7.eid import DTN_NONE, EID, eid_from_cbor
from proxima.errors import (
    BundleError,
    CRCError,
    Incomplete,
    InvalidEndpointID,
    LocalError,
    ProtocolError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "BPV7_VERSION",
    "KNOWN_BLOCK_TYPES",
    "STATUS_REPORT_FLAGS",
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "CanonicalBlock",
    "PrimaryBlock",
    "Reason",
    "UnknownBlocksOutcome",
    "age_block",
    "bundle_age_of",
    "bundle_to_json",
    "check_bundle",
    "decode_block_data",
    "decode_bundle",
    "decode_bundle_prefix",
    "encode_block",
    "encode_bundle",
    "encode_primary",
    "hop_count_block",
    "hop_count_of",
    "payload_block",
    "previous_node_block",
    "previous_node_of",
    "process_unknown_blocks",
]

BPV7_VERSION: Final = 7
_U64_MAX: Final = (1 << 64) - 1


class BundleFlag(IntFlag):
    """Bundle processing control flags (RFC 9171 §4.2.3)."""

    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    ACK_REQUESTED = 0x000020
    STATUS_TIME_REQUESTED = 0x000040
    REPORT_RECEPTION = 0x004000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000


STATUS_REPORT_FLAGS: Final = (
    BundleFlag.REPORT_RECEPTION
    | BundleFlag.REPORT_FORWARDING
    | BundleFlag.REPORT_DELIVERY
    | BundleFlag.REPORT_DELETION
)


class BlockFlag(IntFlag):
    """Block processing control flags (RFC 9171 §4.2.4)."""

    REPLICATE = 0x01
    REPORT_IF_UNPROCESSED = 0x02
    DELETE_BUNDLE_IF_UNPROCESSED = 0x04
    DELETE_BLOCK_IF_UNPROCESSED = 0x10


class BlockType(IntEnum):
    """Block type codes (RFC 9171 §9.1, RFC 9172 §11.1)."""

    PAYLOAD = 1
    PREVIOUS_NODE = 6
    BUNDLE_AGE = 7
    HOP_COUNT = 10
    BIB = 11
    BCB = 12


class Reason(IntEnum):
    """Bundle status report reason codes (RFC 9171 §6.1.1, RFC 9172 §11.2)."""

    NO_ADDITIONAL_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_EID_UNINTELLIGIBLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11
    MISSING_SECURITY_OPERATION = 12
    UNKNOWN_SECURITY_OPERATION = 13
    UNEXPECTED_SECURITY_OPERATION = 14
    FAILED_SECURITY_OPERATION = 15
    CONFLICTING_SECURITY_OPERATION = 16


class PrimaryBlock(NamedTuple):
    """The primary block (RFC 9171 §4.3.1). Times are DTN milliseconds; lifetime is in ms.

    ``fragment_offset`` and ``total_adu_length`` are set exactly when ``flags`` has IS_FRAGMENT.
    """

    destination: EID
    source: EID
    report_to: EID = DTN_NONE
    creation_time: int = 0
    sequence: int = 0
    lifetime: int = 86_400_000
    flags: int = 0
    crc_type: int = 2
    fragment_offset: int | None = None
    total_adu_length: int | None = None

    @property
    def is_fragment(self) -> bool:
        """True when this bundle is a fragment."""
        return bool(self.flags & BundleFlag.IS_FRAGMENT)

    @property
    def is_admin_record(self) -> bool:
        """True when the payload is an administrative record."""
        return bool(self.flags & BundleFlag.ADMIN_RECORD)


class CanonicalBlock(NamedTuple):
    """A canonical block (RFC 9171 §4.3.2). ``data`` is the block-type-specific data: the bytes
    inside the block's byte string, kept exactly as received."""

    type: int
    number: int
    flags: int = 0
    crc_type: int = CRCType.NONE
    data: bytes = b""


class Bundle(NamedTuple):
    """A bundle: its primary block and its canonical blocks in wire order (payload last)."""

    primary: PrimaryBlock
    blocks: tuple[CanonicalBlock, ...]

    @property
    def payload_block(self) -> CanonicalBlock:
        """The payload block (always the last block of a valid bundle)."""
        return self.blocks[-1]

    @property
    def payload(self) -> bytes:
        """The payload: the application data unit, or this fragment's part of it."""
        return self.blocks[-1].data

    def block(self, number: int) -> CanonicalBlock | None:
        """The block with this block number, if any."""
        for b in self.blocks:
            if b.number == number:
                return b
        return None

    def blocks_of_type(self, block_type: int) -> list[CanonicalBlock]:
        """Every block of this type, in wire order."""
        return [b for b in self.blocks if b.type == block_type]

    def with_blocks(self, blocks: Iterable[CanonicalBlock]) -> Bundle:
        """A copy with other canonical blocks."""
        return Bundle(self.primary, tuple(blocks))

    @property
    def id(self) -> tuple[EID, int, int, int | None, int | None]:
        """The bundle's identity: source, creation time, sequence, and for a fragment its
        offset and payload length (RFC 9171 §5.9 / §4.3.1)."""
        p = self.primary
        if p.flags & BundleFlag.IS_FRAGMENT:
            return (p.source, p.creation_time, p.sequence, p.fragment_offset, len(self.payload))
        return (p.source, p.creation_time, p.sequence, None, None)


# ---------------------------------------------------------------------------------------------
# Helpers for the block types RFC 9171 defines.


def payload_block(data: bytes, *, flags: int = 0, crc_type: int = CRCType.NONE) -> CanonicalBlock:
    """A payload block (type 1, number 1)."""
    return CanonicalBlock(1, 1, int(flags), int(crc_type), bytes(data))


def previous_node_block(
    node: EID, *, number: int = 2, flags: int = 0, crc_type: int = CRCType.NONE
) -> CanonicalBlock:
    """A previous node block (type 6) naming ``node``."""
    return CanonicalBlock(6, number, int(flags), int(crc_type), node.cbor)


def age_block(
    age_ms: int, *, number: int = 3, flags: int = 0, crc_type: int = CRCType.NONE
) -> CanonicalBlock:
    """A bundle age block (type 7): milliseconds since the bundle was created."""
    return CanonicalBlock(7, number, int(flags), int(crc_type), _cbor.uint(age_ms))


def hop_count_block(
    limit: int, count: int = 0, *, number: int = 4, flags: int = 0, crc_type: int = CRCType.NONE
) -> CanonicalBlock:
    """A hop count block (type 10): ``[hop limit, hop count]``."""
    return CanonicalBlock(
        10, number, int(flags), int(crc_type), b"\x82" + _cbor.uint(limit) + _cbor.uint(count)
    )


def _loads_exact(data: bytes, what: str) -> Any:
    """Decode one CBOR item that must fill ``data`` exactly; remote errors otherwise."""
    try:
        end = _cbor.skip(data, 0, what=what)
    except Incomplete as exc:
        raise BundleError(f"{what} is truncated", reason=Reason.BLOCK_UNINTELLIGIBLE) from exc
    except ProtocolError as exc:
        raise BundleError(str(exc), reason=Reason.BLOCK_UNINTELLIGIBLE) from exc
    if end != len(data):
        raise BundleError(
            f"{what} has {len(data) - end} bytes after its CBOR item",
            reason=Reason.BLOCK_UNINTELLIGIBLE,
        )
    try:
        return cbor2.loads(data)
    except Exception as exc:  # any failure of the C decoder is the data's fault
        raise BundleError(f"{what} is not valid CBOR: {exc}", reason=Reason.BLOCK_UNINTELLIGIBLE) from exc


def decode_block_data(block: CanonicalBlock) -> object:
    """The decoded content of a block of a type RFC 9171 defines.

    Previous node: the :class:`EID`; bundle age: milliseconds; hop count: ``(limit, count)``;
    payload: the bytes. Raises :class:`BundleError` when the content is malformed, and
    :class:`LocalError` for another block type.
    """
    t = block.type
    if t == BlockType.PAYLOAD:
        return block.data
    if t == BlockType.PREVIOUS_NODE:
        value = _loads_exact(block.data, f"previous node block {block.number}")
        try:
            return eid_from_cbor(value)
        except InvalidEndpointID as exc:
            raise BundleError(
                f"previous node block {block.number}: {exc}",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            ) from exc
    if t == BlockType.BUNDLE_AGE:
        value = _loads_exact(block.data, f"bundle age block {block.number}")
        if type(value) is not int or not 0 <= value <= _U64_MAX:
            raise BundleError(
                f"bundle age block {block.number}: the age must be an unsigned integer, not {value!r:.40}",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            )
        return value
    if t == BlockType.HOP_COUNT:
        value = _loads_exact(block.data, f"hop count block {block.number}")
        if (
            type(value) is not list
            or len(value) != 2
            or any(type(v) is not int or not 0 <= v <= _U64_MAX for v in value)
        ):
            raise BundleError(
                f"hop count block {block.number}: must be [hop limit, hop count] of unsigned "
                f"integers, not {value!r:.40}",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            )
        limit, count = value
        if not 1 <= limit <= 255:
            raise BundleError(
                f"hop count block {block.number}: hop limit {limit} is outside 1..255 (RFC 9171 §4.4.3)",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            )
        return (limit, count)
    raise LocalError(f"block type {t} has no content decoder in the bundle layer")


def previous_node_of(bundle: Bundle) -> EID | None:
    """The previous node named by the bundle's previous node block, if it has one."""
    for b in bundle.blocks:
        if b.type == BlockType.PREVIOUS_NODE:
            value = decode_block_data(b)
            return value if isinstance(value, EID) else None
    return None


def bundle_age_of(bundle: Bundle) -> int | None:
    """The bundle age in ms from its bundle age block, if it has one."""
    for b in bundle.blocks:
        if b.type == BlockType.BUNDLE_AGE:
            value = decode_block_data(b)
            return value if isinstance(value, int) else None
    return None


def hop_count_of(bundle: Bundle) -> tuple[int, int] | None:
    """``(limit, count)`` from the bundle's hop count block, if it has one."""
    for b in bundle.blocks:
        if b.type == BlockType.HOP_COUNT:
            value = decode_block_data(b)
            return value if isinstance(value, tuple) else None
    return None


# ---------------------------------------------------------------------------------------------
# Validity rules (RFC 9171 §4), shared by the encoder and the decoder.


def _is_u64(v: object) -> bool:
    return isinstance(v, int) and 0 <= v <= _U64_MAX


_KNOWN_CONTENT: dict[tuple[int, bytes], object] = {}
_KNOWN_CONTENT_MAX: Final = 4096


def _known_content(b: CanonicalBlock) -> object:
    """:func:`decode_block_data`, remembered for the small blocks that recur from bundle to
    bundle (a node sees the same previous node and hop limits again and again)."""
    key = (b.type, b.data)
    value = _KNOWN_CONTENT.get(key)
    if value is None:
        value = decode_block_data(b)
        if len(b.data) <= 64 and b.type != BlockType.BUNDLE_AGE:
            if len(_KNOWN_CONTENT) >= _KNOWN_CONTENT_MAX:
                _KNOWN_CONTENT.clear()
            _KNOWN_CONTENT[key] = value
    return value


def _primary_violation(p: PrimaryBlock) -> tuple[str, int, int | None] | None:
    bad = Reason.BLOCK_UNINTELLIGIBLE
    for name in ("flags", "creation_time", "sequence", "lifetime"):
        v = getattr(p, name)
        if not _is_u64(v):
            return (f"primary block: {name} {v!r:.40} is not an unsigned 64-bit integer", bad, 0)
    if p.crc_type not in (0, 1, 2):
        return (f"primary block: unknown CRC type {p.crc_type!r:.20} (0, 1 or 2)", bad, 0)
    for name in ("destination", "source", "report_to"):
        if not isinstance(getattr(p, name), EID):
            return (f"primary block: {name} is not an endpoint ID", bad, 0)
    if p.flags & BundleFlag.IS_FRAGMENT:
        for name in ("fragment_offset", "total_adu_length"):
            v = getattr(p, name)
            if v is None:
                return ("primary block: a fragment must carry fragment offset and total ADU length", bad, 0)
            if not _is_u64(v):
                return (f"primary block: {name} {v!r:.40} is not an unsigned 64-bit integer", bad, 0)
    return None


def _block_type_violation(b: object, i: int) -> tuple[str, int, int | None]:
    bad = Reason.BLOCK_UNINTELLIGIBLE
    if not isinstance(b, CanonicalBlock):
        return (f"block #{i} is not a CanonicalBlock", bad, None)
    t, n = b.type, b.number
    if not _is_u64(t):
        return (f"block #{i}: block type {t!r:.40} is not an unsigned integer", bad, None)
    if not _is_u64(n):
        return (f"block #{i} (type {t}): block number {n!r:.40} is not an unsigned integer", bad, None)
    if not _is_u64(b.flags):
        return (f"block {n}: block processing flags {b.flags!r:.40} are not an unsigned integer", bad, n)
    if b.crc_type not in (0, 1, 2):
        return (f"block {n}: unknown CRC type {b.crc_type!r:.20} (0, 1 or 2)", bad, n)
    return (f"block {n}: block-type-specific data must be bytes", bad, n)


def _plain_int(v: object) -> bool:
    return type(v) is int or isinstance(v, int)


def _violation(
    p: PrimaryBlock, blocks: Sequence[CanonicalBlock], *, require_primary_crc: bool
) -> tuple[str, int, int | None] | None:
    """The first rule the bundle breaks, as (message, reason code, block number), or None."""
    if not (
        _plain_int(p.flags)
        and _plain_int(p.creation_time)
        and _plain_int(p.sequence)
        and _plain_int(p.lifetime)
        and _plain_int(p.crc_type)
        and isinstance(p.destination, EID)
        and isinstance(p.source, EID)
        and isinstance(p.report_to, EID)
    ):
        return _primary_violation(p)
    x = p.flags | p.creation_time | p.sequence | p.lifetime
    if x < 0 or x >> 64 or p.crc_type not in (0, 1, 2):
        return _primary_violation(p)
    if p.flags & BundleFlag.IS_FRAGMENT:
        v = _primary_violation(p)
        if v is not None:
            return v
    for i, b in enumerate(blocks):
        if not isinstance(b, CanonicalBlock):
            return _block_type_violation(b, i)
        t, n, bf, bc, d = b
        if not (
            (type(t) is int or isinstance(t, int))
            and (type(n) is int or isinstance(n, int))
            and (type(bf) is int or isinstance(bf, int))
            and bc in (0, 1, 2)
            and type(d) is bytes
        ):
            return _block_type_violation(b, i)
        x = t | n | bf
        if x < 0 or x >> 64:
            return _block_type_violation(b, i)
    return _rules(p, blocks, require_primary_crc)


def _rules(
    p: PrimaryBlock, blocks: Sequence[CanonicalBlock], require_primary_crc: bool
) -> tuple[str, int, int | None] | None:
    """The RFC 9171 §4 rules, for fields already known to be of the right types."""
    bad = Reason.BLOCK_UNINTELLIGIBLE
    flags = p.flags
    if flags & 0x3 or p.source.is_none or p.fragment_offset is not None or p.total_adu_length is not None:
        v = _flag_violation(p)
        if v is not None:
            return v
    if not blocks:
        return ("the bundle has no payload block", bad, None)
    numbers: set[int] = set()
    seen = 0  # bit 0: previous node, bit 1: bundle age, bit 2: hop count
    bib_on_primary = False
    last = len(blocks) - 1
    for i, b in enumerate(blocks):
        t, n = b[0], b[1]
        if n in numbers or n == 0:
            if n == 0:
                return (f"block #{i} (type {t}): block number 0 is reserved for the primary block", bad, 0)
            return (f"block {n}: block number {n} is used twice (type {t})", bad, n)
        numbers.add(n)
        if t == 1:
            if i != last:
                return ("the payload block must be the last block of the bundle", bad, n)
            if n != 1:
                return (f"the payload block has block number {n}; it must be 1", bad, n)
        elif t in {6, 7, 10}:
            bit = 1 if t == 6 else 2 if t == 7 else 4
            if seen & bit:
                name = BlockType(t).name.lower().replace("_", " ")
                return (f"block {n}: more than one {name} block", bad, n)
            seen |= bit
            if t != 7 or len(b[4]) > 9:
                try:
                    _known_content(b)
                except BundleError as exc:
                    return (str(exc), bad, n)
            elif not _is_cbor_uint(b[4]):
                return (f"bundle age block {n}: the age must be one unsigned integer", bad, n)
        elif t == 11 and not bib_on_primary:
            bib_on_primary = _bib_targets_primary(b)
    if blocks[last][0] != 1:
        return ("the bundle has no payload block (block type 1), or it is not last", bad, None)
    if p.creation_time == 0 and not seen & 2:
        return (
            "primary block: creation time is 0 (no accurate clock) but there is no bundle age "
            "block (RFC 9171 §4.3.1)",
            bad,
            0,
        )
    if flags & 1:
        off, tot = p.fragment_offset, p.total_adu_length
        if off is not None and tot is not None and off + len(blocks[last][4]) > tot:
            return (
                f"primary block: fragment offset {off} plus payload length "
                f"{len(blocks[last][4])} exceeds the total ADU length {tot}",
                bad,
                0,
            )
    if require_primary_crc and p.crc_type == CRCType.NONE and not bib_on_primary:
        return (
            "primary block: no CRC, and no BIB targets the primary block (RFC 9171 §4.3.1)",
            bad,
            0,
        )
    return None


def _is_cbor_uint(b: bytes) -> bool:
    """Whether ``b`` is exactly one CBOR unsigned integer in any head size."""
    if not b or b[0] >> 5 != 0:
        return False
    info = b[0] & 0x1F
    if info < 24:
        return len(b) == 1
    if info <= 27:
        return len(b) == 1 + (1 << (info - 24))
    return False


def _flag_violation(p: PrimaryBlock) -> tuple[str, int, int | None] | None:
    """The bundle-flag rules of RFC 9171 §4.2.3 and the fragment fields."""
    bad = Reason.BLOCK_UNINTELLIGIBLE
    flags = p.flags
    if p.source.is_none:
        if not flags & BundleFlag.MUST_NOT_FRAGMENT:
            return (
                "primary block: an anonymous bundle (source dtn:none) must have the "
                "'must not fragment' flag set (RFC 9171 §4.2.3)",
                bad,
                0,
            )
        if flags & STATUS_REPORT_FLAGS:
            return (
                "primary block: an anonymous bundle (source dtn:none) must not request status "
                "reports (RFC 9171 §4.2.3)",
                bad,
                0,
            )
    if flags & BundleFlag.ADMIN_RECORD and flags & STATUS_REPORT_FLAGS:
        return (
            "primary block: an administrative record must not request status reports (RFC 9171 §4.2.3)",
            bad,
            0,
        )
    if flags & BundleFlag.IS_FRAGMENT:
        if p.fragment_offset is None or p.total_adu_length is None:
            return ("primary block: a fragment must carry fragment offset and total ADU length", bad, 0)
    elif p.fragment_offset is not None or p.total_adu_length is not None:
        return (
            "primary block: fragment offset and total ADU length are present but the "
            "'is fragment' flag is clear",
            bad,
            0,
        )
    return None


def _bib_targets_primary(block: CanonicalBlock) -> bool:
    """Whether a BIB's security targets include block 0 (first field of its ASB)."""
    try:
        asb = cbor2.loads(b"\x9f" + block.data + b"\xff")
    except Exception:
        return False
    return bool(asb) and isinstance(asb[0], list) and 0 in asb[0]


def check_bundle(bundle: Bundle, *, require_primary_crc: bool = False) -> None:
    """Check every RFC 9171 §4 validity rule; raise :class:`LocalError` naming the first broken.

    ``require_primary_crc`` enforces §4.3.1's "a CRC SHALL be present in the primary block
    unless a BIB targets it". It is off by default because RFC 9173's own worked examples,
    pyd3tn and dtn7 emit primary blocks without a CRC.
    """
    v = _violation(bundle.primary, bundle.blocks, require_primary_crc=require_primary_crc)
    if v is not None:
        raise LocalError(v[0], reason=v[1])


# ---------------------------------------------------------------------------------------------
# Encoding.

_CRC_HEAD: Final = (b"", b"\x42", b"\x44")
_U = _cbor.UINT_SMALL
_uint = _cbor.uint
_bytes_head = _cbor.bytes_head


def _primary_body(p: PrimaryBlock) -> bytes:
    """The primary block's encoding up to and including the CRC byte string head."""
    flags = p.flags
    crc_type = p.crc_type
    if flags & 1:
        head = b"\x8b" if crc_type else b"\x8a"
        frag = _uint(p.fragment_offset or 0) + _uint(p.total_adu_length or 0)
    else:
        head = b"\x89" if crc_type else b"\x88"
        frag = b""
    return b"".join(
        (
            head,
            b"\x07",
            _U[flags] if flags < 256 else _uint(flags),
            _U[crc_type],
            p.destination._cbor,
            p.source._cbor,
            p.report_to._cbor,
            b"\x82",
            _uint(p.creation_time),
            _uint(p.sequence),
            _uint(p.lifetime),
            frag,
            _CRC_HEAD[crc_type],
        )
    )


def encode_primary(p: PrimaryBlock) -> bytes:
    """The deterministic encoding of a primary block, CRC included."""
    body = _primary_body(p)
    if p.crc_type:
        return body + crc_of_block(body, p.crc_type)
    return body


def _block_head(b: CanonicalBlock) -> bytes:
    crc_type = b.crc_type
    t, n, f = b.type, b.number, b.flags
    return b"".join(
        (
            b"\x86" if crc_type else b"\x85",
            _U[t] if t < 256 else _uint(t),
            _U[n] if n < 256 else _uint(n),
            _U[f] if f < 256 else _uint(f),
            _U[crc_type],
            _bytes_head(len(b.data)),
        )
    )


def encode_block(b: CanonicalBlock) -> bytes:
    """The deterministic encoding of a canonical block, CRC included."""
    crc_type = b.crc_type
    head = _block_head(b)
    if not crc_type:
        return head + b.data
    if crc_type == 1:
        crc = crc16_x25(b"\x42\x00\x00", crc16_x25(b.data, crc16_x25(head)))
        return b"".join((head, b.data, b"\x42", crc.to_bytes(2, "big")))
    crc = crc32c(b"\x44\x00\x00\x00\x00", crc32c(b.data, crc32c(head)))
    return b"".join((head, b.data, b"\x44", crc.to_bytes(4, "big")))


def encode_bundle(bundle: Bundle, *, check: bool = True, require_primary_crc: bool = False) -> bytes:
    """The deterministic encoding of a bundle.

    With ``check`` (the default) the bundle is first held to every validity rule and a
    :class:`LocalError` names the first one it breaks.
    """
    if check:
        v = _violation(bundle.primary, bundle.blocks, require_primary_crc=require_primary_crc)
        if v is not None:
            raise LocalError(f"cannot encode: {v[0]}", reason=v[1])
    parts = [b"\x9f", encode_primary(bundle.primary)]
    parts.extend(encode_block(b) for b in bundle.blocks)
    parts.append(b"\xff")
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Decoding.

_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE
_EID_CACHE: dict[object, EID] = {}
_EID_CACHE_MAX: Final = 4096


def _eid(value: object, field: str) -> EID:
    if type(value) is list and len(value) == 2:
        scheme, ssp = value
        key: object
        if type(ssp) is list:
            if len(ssp) == 2 and type(ssp[0]) is int and type(ssp[1]) is int:
                key = (scheme, ssp[0], ssp[1])
            else:
                key = None
        elif type(ssp) is str or type(ssp) is int:
            key = (scheme, ssp)
        else:
            key = None
        if key is not None and type(scheme) is int:
            cached = _EID_CACHE.get(key)
            if cached is not None:
                return cached
    else:
        key = None
    try:
        eid = eid_from_cbor(value)
    except InvalidEndpointID as exc:
        reason = Reason.DESTINATION_EID_UNINTELLIGIBLE if field == "destination" else _BAD
        raise BundleError(f"primary block: {field}: {exc}", reason=reason, block=0) from exc
    if key is not None:
        if len(_EID_CACHE) >= _EID_CACHE_MAX:
            _EID_CACHE.clear()
        _EID_CACHE[key] = eid
    return eid


def _uint_field(value: object, what: str, block: int | None) -> int:
    if type(value) is not int or not 0 <= value <= _U64_MAX:
        raise BundleError(f"{what} must be an unsigned integer, not {value!r:.40}", reason=_BAD, block=block)
    return value


def _primary_from_value(v: object) -> tuple[PrimaryBlock, bytes | None]:
    if type(v) is not list:
        raise BundleError("the primary block must be a CBOR array", reason=_BAD, block=0)
    n = len(v)
    if n < 8:
        raise BundleError(f"the primary block has {n} fields; at least 8 are required", reason=_BAD, block=0)
    version = v[0]
    if version != BPV7_VERSION or type(version) is not int:
        raise BundleError(
            f"primary block: bundle protocol version {version!r:.20}; only version 7 is supported",
            reason=_BAD,
            block=0,
        )
    flags = _uint_field(v[1], "primary block: bundle processing control flags", 0)
    crc_type = v[2]
    if crc_type not in (0, 1, 2) or type(crc_type) is not int:
        raise BundleError(f"primary block: unknown CRC type {crc_type!r:.20}", reason=_BAD, block=0)
    expected = 8 + (2 if flags & 1 else 0) + (1 if crc_type else 0)
    if n != expected:
        raise BundleError(
            f"primary block has {n} fields but its flags and CRC type call for {expected} "
            f"(fragment: {bool(flags & 1)}, CRC type {crc_type})",
            reason=_BAD,
            block=0,
        )
    ts = v[6]
    if type(ts) is not list or len(ts) != 2:
        raise BundleError(
            "primary block: creation timestamp must be [time, sequence number]", reason=_BAD, block=0
        )
    frag_off = total = None
    if flags & 1:
        frag_off = _uint_field(v[8], "primary block: fragment offset", 0)
        total = _uint_field(v[9], "primary block: total application data unit length", 0)
    crc_value: bytes | None = None
    if crc_type:
        crc_value = v[-1]
        want = 2 if crc_type == 1 else 4
        if type(crc_value) is not bytes or len(crc_value) != want:
            raise BundleError(
                f"primary block: the CRC must be a byte string of {want} bytes", reason=_BAD, block=0
            )
    p = PrimaryBlock(
        _eid(v[3], "destination"),
        _eid(v[4], "source"),
        _eid(v[5], "report-to"),
        _uint_field(ts[0], "primary block: creation time", 0),
        _uint_field(ts[1], "primary block: sequence number", 0),
        _uint_field(v[7], "primary block: lifetime", 0),
        flags,
        crc_type,
        frag_off,
        total,
    )
    return p, crc_value


def _block_from_value(v: object, index: int) -> tuple[CanonicalBlock, bytes | None]:
    if type(v) is not list:
        raise BundleError(f"block #{index} of the bundle is not a CBOR array", reason=_BAD)
    n = len(v)
    if n not in (5, 6):
        raise BundleError(
            f"block #{index} has {n} fields; a canonical block has 5, or 6 with a CRC", reason=_BAD
        )
    t, num, flags, crc_type, data = v[0], v[1], v[2], v[3], v[4]
    _uint_field(t, f"block #{index}: block type", None)
    _uint_field(num, f"block #{index}: block number", None)
    _uint_field(flags, f"block {num}: block processing control flags", num)
    if crc_type not in (0, 1, 2) or type(crc_type) is not int:
        raise BundleError(f"block {num}: unknown CRC type {crc_type!r:.20}", reason=_BAD, block=num)
    if (n == 6) != bool(crc_type):
        raise BundleError(
            f"block {num}: CRC type {crc_type} but {n} fields (a CRC field exactly when the type is not 0)",
            reason=_BAD,
            block=num,
        )
    if type(data) is not bytes:
        raise BundleError(
            f"block {num}: block-type-specific data must be a CBOR byte string", reason=_BAD, block=num
        )
    crc_value: bytes | None = None
    if crc_type:
        crc_value = v[5]
        want = 2 if crc_type == 1 else 4
        if type(crc_value) is not bytes or len(crc_value) != want:
            raise BundleError(
                f"block {num}: the CRC must be a byte string of {want} bytes", reason=_BAD, block=num
            )
    return CanonicalBlock(t, num, flags, crc_type, data), crc_value


def _crc_mismatch(what: str, block: int) -> CRCError:
    return CRCError(f"{what}: CRC check failed", reason=_BAD, block=block)


def decode_bundle(data: bytes | bytearray | memoryview, *, require_primary_crc: bool = False) -> Bundle:
    """Decode exactly one bundle from ``data``.

    Raises :class:`Incomplete` when ``data`` stops before the bundle ends, and
    :class:`BundleError` (with a status report reason code and the block concerned) when it
    is malformed, breaks a validity rule, fails a CRC check, or is followed by other bytes.
    """
    bundle, end = decode_bundle_prefix(data, require_primary_crc=require_primary_crc)
    if end != len(data):
        raise BundleError(f"{len(data) - end} trailing bytes after the end of the bundle", reason=_BAD)
    return bundle


def decode_bundle_prefix(
    data: bytes | bytearray | memoryview, *, require_primary_crc: bool = False
) -> tuple[Bundle, int]:
    """Decode the bundle at the start of ``data``; return it and the number of bytes it took."""
    if not isinstance(data, bytes):
        data = bytes(data)
    if not data:
        raise Incomplete("no bytes: a bundle starts with 0x9f")
    first = data[0]
    if first != 0x9F:
        if first >> 5 == 4:
            raise BundleError(
                "a bundle must be an indefinite-length CBOR array (0x9f), not a definite-length one",
                reason=_BAD,
            )
        raise BundleError(
            f"not a bundle: starts with 0x{first:02x}, not an indefinite-length array (0x9f)",
            reason=_BAD,
        )
    try:
        items = cbor2.loads(data)
    except cbor2.CBORDecodeEOF as exc:
        raise Incomplete("input ends before the bundle does") from exc
    except Exception as exc:  # every failure of the C decoder is the data's fault
        _raise_structure_error(data, exc)
    if type(items) is not list or len(items) < 1:
        raise BundleError("the bundle has no primary block", reason=_BAD)
    fast = _decode_fast(data, items)
    if fast is not None:
        bundle, end = fast
        v = _rules(bundle.primary, bundle.blocks, require_primary_crc)
        if v is not None:
            raise BundleError(v[0], reason=v[1], block=v[2])
        return bundle, end
    ends = _scan(data, len(items))
    primary, p_crc = _primary_from_value(items[0])
    block_list: list[CanonicalBlock] = []
    crcs: list[bytes | None] = []
    for i in range(1, len(items)):
        b, c = _block_from_value(items[i], i)
        block_list.append(b)
        crcs.append(c)
    _check_crcs_slow(data, ends, primary, p_crc, block_list, crcs)
    end = ends[-1][1] + 1
    blocks = tuple(block_list)
    bundle = Bundle(primary, blocks)
    v = _violation(primary, blocks, require_primary_crc=require_primary_crc)
    if v is not None:
        raise BundleError(v[0], reason=v[1], block=v[2])
    return bundle, end


_IPN_EIDS: dict[tuple[int, int], EID] = {}
_DTN_EIDS: dict[str, EID] = {}
_HEADS: dict[tuple[int, int, int, int, int], bytes] = {}
_CACHE_MAX: Final = 4096
_new = tuple.__new__
_PRIMARY_HEAD: Final = {8: b"\x88", 9: b"\x89", 10: b"\x8a", 11: b"\x8b"}


def _eid_fast(v: Any) -> EID | None:
    """The endpoint ID for a decoded value, from a small cache; None if not cached (yet)."""
    if type(v) is list and len(v) == 2:
        scheme, ssp = v
        if scheme == 2 and type(ssp) is list and len(ssp) == 2:
            node, service = ssp
            if type(node) is int and type(service) is int:
                e = _IPN_EIDS.get((node, service))
                if e is None:
                    try:
                        e = eid_from_cbor(v)
                    except InvalidEndpointID:
                        return None
                    if len(_IPN_EIDS) >= _CACHE_MAX:
                        _IPN_EIDS.clear()
                    _IPN_EIDS[(node, service)] = e
                return e
        elif scheme == 1 and type(ssp) is str:
            e = _DTN_EIDS.get(ssp)
            if e is None:
                try:
                    e = eid_from_cbor(v)
                except InvalidEndpointID:
                    return None
                if len(_DTN_EIDS) >= _CACHE_MAX:
                    _DTN_EIDS.clear()
                _DTN_EIDS[ssp] = e
            return e
        elif scheme == 1 and ssp == 0 and type(ssp) is int:
            return DTN_NONE
    return None


def _head_of(t: int, num: int, bf: int, bc: int, length: int) -> bytes:
    """A canonical block's encoding up to its data, remembered for recurring shapes."""
    key = (t, num, bf, bc, length)
    head = _HEADS.get(key)
    if head is None:
        head = b"".join(
            (
                b"\x86" if bc else b"\x85",
                _uint(t),
                _uint(num),
                _uint(bf),
                _U[bc],
                _bytes_head(length),
            )
        )
        if len(_HEADS) >= _CACHE_MAX:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def _decode_fast(data: bytes, items: list[Any]) -> tuple[Bundle, int] | None:
    """Decode a deterministically encoded bundle, verifying CRCs over the received bytes.

    Returns None, without judging, as soon as anything is irregular (a type, a field count, a
    byte that differs from the deterministic encoding); the careful path then takes over and
    explains. A CRC mismatch on bytes that are otherwise canonical raises :class:`CRCError`.
    """
    pv = items[0]
    if type(pv) is not list:
        return None
    n = len(pv)
    off = tot = crc_value = None
    if n == 9:
        version, flags, crc_type, dst, src, rpt, ts, lifetime, crc_value = pv
    elif n == 8:
        version, flags, crc_type, dst, src, rpt, ts, lifetime = pv
    elif n == 11:
        version, flags, crc_type, dst, src, rpt, ts, lifetime, off, tot, crc_value = pv
    elif n == 10:
        version, flags, crc_type, dst, src, rpt, ts, lifetime, off, tot = pv
    else:
        return None
    if (
        version != 7
        or type(flags) is not int
        or type(lifetime) is not int
        or type(ts) is not list
        or len(ts) != 2
        or (n & 1) != (1 if crc_type else 0)
        or crc_type not in (0, 1, 2)
        or (n >= 10) != bool(flags & 1)
    ):
        return None
    ctime, seq = ts
    if type(ctime) is not int or type(seq) is not int or (flags | lifetime | ctime | seq) < 0:
        return None
    if off is not None and (type(off) is not int or type(tot) is not int or (off | tot) < 0):
        return None
    e_dst = _eid_fast(dst)
    e_src = _eid_fast(src)
    e_rpt = _eid_fast(rpt)
    if e_dst is None or e_src is None or e_rpt is None:
        return None
    primary: PrimaryBlock = _new(
        PrimaryBlock, (e_dst, e_src, e_rpt, ctime, seq, lifetime, flags, crc_type, off, tot)
    )
    u = _U
    body = b"".join(
        (
            _PRIMARY_HEAD[n],
            b"\x07",
            u[flags] if flags < 256 else _uint(flags),
            u[crc_type],
            e_dst._cbor,
            e_src._cbor,
            e_rpt._cbor,
            b"\x82",
            u[ctime] if ctime < 256 else _uint(ctime),
            u[seq] if seq < 256 else _uint(seq),
            u[lifetime] if lifetime < 256 else _uint(lifetime),
            b"" if off is None else _uint(off) + _uint(tot or 0),
            _CRC_HEAD[crc_type],
        )
    )
    if not data.startswith(body, 1):
        return None
    pos = 1 + len(body)
    if crc_type:
        if type(crc_value) is not bytes:
            return None
        if crc_type == 1:
            if len(crc_value) != 2:
                return None
            ok = crc16_x25(b"\x00\x00", crc16_x25(body)) == int.from_bytes(crc_value, "big")
        else:
            if len(crc_value) != 4:
                return None
            ok = crc32c(b"\x00\x00\x00\x00", crc32c(body)) == int.from_bytes(crc_value, "big")
        if not ok:
            raise _crc_mismatch("primary block", 0)
        pos += len(crc_value)
    mv = memoryview(data)
    blocks: list[CanonicalBlock] = []
    append = blocks.append
    for i in range(1, len(items)):
        v = items[i]
        if type(v) is not list:
            return None
        ln = len(v)
        if ln == 6:
            t, num, bf, bc, d, c = v
            if type(c) is not bytes or len(c) != (2 if bc == 1 else 4 if bc == 2 else -1):
                return None
        elif ln == 5:
            t, num, bf, bc, d = v
            c = None
            if bc != 0 or type(bc) is not int:
                return None
        else:
            return None
        if type(t) is not int or type(num) is not int or type(bf) is not int or type(d) is not bytes:
            return None
        if (t | num | bf) < 0:
            return None
        head = _head_of(t, num, bf, bc, len(d))
        if not data.startswith(head, pos):
            return None
        dend = pos + len(head) + len(d)
        if c is None:
            pos = dend
        elif bc == 1:
            if data[dend] != 0x42:
                return None
            if crc16_x25(b"\x42\x00\x00", crc16_x25(mv[pos:dend])) != int.from_bytes(c, "big"):
                raise _crc_mismatch(f"block {num} (type {t})", num)
            pos = dend + 3
        else:
            if data[dend] != 0x44:
                return None
            if crc32c(b"\x44\x00\x00\x00\x00", crc32c(mv[pos:dend])) != int.from_bytes(c, "big"):
                raise _crc_mismatch(f"block {num} (type {t})", num)
            pos = dend + 5
        append(_new(CanonicalBlock, (t, num, bf, bc, d)))
    if pos >= len(data) or data[pos] != 0xFF:
        return None
    return _new(Bundle, (primary, tuple(blocks))), pos + 1


def _raise_structure_error(data: bytes, exc: Exception) -> None:
    """Explain why the C decoder refused the bytes, using the strict scanner where it can."""
    try:
        _cbor.skip(data, 0, what="the bundle")
    except Incomplete as inc:
        raise Incomplete(f"input ends before the bundle does ({inc})") from exc
    except ProtocolError as perr:
        raise BundleError(f"malformed bundle: {perr}", reason=_BAD) from exc
    raise BundleError(f"malformed CBOR in the bundle: {exc}", reason=_BAD) from exc


def _scan(data: bytes, count: int) -> list[tuple[int, int]]:
    """The (start, end) offsets of the bundle's ``count`` blocks, found by the strict scanner."""
    try:
        ends = []
        pos = 1
        for i in range(count):
            nxt = _cbor.skip(data, pos, what="the primary block" if i == 0 else f"block #{i}")
            ends.append((pos, nxt))
            pos = nxt
    except ProtocolError as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"malformed bundle: {exc}", reason=_BAD) from exc
    if pos >= len(data):
        raise Incomplete("input ends before the bundle's closing break (0xff)")
    if data[pos] != 0xFF:
        raise BundleError("the bundle array has an item after the payload block", reason=_BAD)
    return ends


def _check_crcs_slow(
    data: bytes,
    ends: list[tuple[int, int]],
    primary: PrimaryBlock,
    p_crc: bytes | None,
    blocks: list[CanonicalBlock],
    crcs: list[bytes | None],
) -> None:
    """Check each block's CRC over exactly its received bytes, only the CRC value zeroed.
    Used for encodings that are valid but not deterministic."""
    checks: list[tuple[int, bytes | None, int, str]] = [(primary.crc_type, p_crc, 0, "primary block")]
    checks.extend(
        (b.crc_type, c, b.number, f"block {b.number} (type {b.type})")
        for b, c in zip(blocks, crcs, strict=True)
    )
    for (start, stop), (crc_type, value, number, what) in zip(ends, checks, strict=True):
        if value is None:
            continue
        n = len(value)
        prefix = data[start : stop - n]
        if crc_type == 1:
            got = crc16_x25(b"\x00\x00", crc16_x25(prefix)).to_bytes(2, "big")
        else:
            got = crc32c(b"\x00\x00\x00\x00", crc32c(prefix)).to_bytes(4, "big")
        if got != value:
            raise _crc_mismatch(what, number)


def bundle_to_json(bundle: Bundle, *, crc_ok: bool = True) -> dict[str, Any]:
    """A JSON-ready description of a bundle: ``primary``, ``blocks``, ``payload_length``, ``crc_ok``."""
    p = bundle.primary
    blocks: list[dict[str, Any]] = []
    for b in bundle.blocks:
        entry: dict[str, Any] = {
            "type": b.type,
            "type_name": BlockType(b.type).name.lower() if b.type in _KNOWN_TYPES else "unknown",
            "number": b.number,
            "flags": b.flags,
            "crc_type": b.crc_type,
            "length": len(b.data),
        }
        if b.type in (BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT):
            content = decode_block_data(b)
            if b.type == BlockType.PREVIOUS_NODE:
                entry["previous_node"] = str(content)
            elif b.type == BlockType.BUNDLE_AGE:
                entry["age_ms"] = content
            elif isinstance(content, tuple):
                entry["hop_limit"], entry["hop_count"] = content
        elif b.type != BlockType.PAYLOAD:
            entry["data_hex"] = b.data.hex()
        blocks.append(entry)
    return {
        "primary": {
            "version": BPV7_VERSION,
            "flags": p.flags,
            "crc_type": p.crc_type,
            "destination": str(p.destination),
            "source": str(p.source),
            "report_to": str(p.report_to),
            "creation_time": p.creation_time,
            "sequence": p.sequence,
            "lifetime": p.lifetime,
            "fragment_offset": p.fragment_offset,
            "total_adu_length": p.total_adu_length,
        },
        "blocks": blocks,
        "payload_length": len(bundle.payload),
        "crc_ok": crc_ok,
    }


_KNOWN_TYPES: Final = frozenset(int(t) for t in BlockType)


KNOWN_BLOCK_TYPES: Final = frozenset({1, 6, 7, 10, 11, 12})


class UnknownBlocksOutcome(NamedTuple):
    """What RFC 9171 §4.2.4 says to do with the blocks a node cannot process.

    ``bundle`` is the bundle to keep (blocks flagged "discard" removed), or None when a block
    asks for the whole bundle to be deleted; ``report`` is True when a block asks for a status
    report; ``reason`` is then :attr:`Reason.BLOCK_UNSUPPORTED`; ``unprocessed`` lists the block
    numbers that could not be processed.
    """

    bundle: Bundle | None
    report: bool
    reason: int
    unprocessed: tuple[int, ...]
    discarded: tuple[int, ...]


def process_unknown_blocks(
    bundle: Bundle, known_types: frozenset[int] | set[int] = KNOWN_BLOCK_TYPES
) -> UnknownBlocksOutcome:
    """Apply the block processing control flags of every block whose type is not known.

    An unknown block is never an error: it travels on verbatim unless its flags ask to
    discard it, to delete the bundle, or to report that it could not be processed.
    """
    unprocessed: list[int] = []
    discarded: list[int] = []
    report = False
    delete_bundle = False
    kept: list[CanonicalBlock] = []
    for b in bundle.blocks:
        if b.type in known_types:
            kept.append(b)
            continue
        unprocessed.append(b.number)
        if b.flags & BlockFlag.REPORT_IF_UNPROCESSED:
            report = True
        if b.flags & BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED:
            delete_bundle = True
        elif b.flags & BlockFlag.DELETE_BLOCK_IF_UNPROCESSED:
            discarded.append(b.number)
            continue
        kept.append(b)
    reason = Reason.BLOCK_UNSUPPORTED if unprocessed else Reason.NO_ADDITIONAL_INFORMATION
    if delete_bundle:
        return UnknownBlocksOutcome(None, report, reason, tuple(unprocessed), tuple(discarded))
    out = bundle if not discarded else Bundle(bundle.primary, tuple(kept))
    return UnknownBlocksOutcome(out, report, reason, tuple(unprocessed), tuple(discarded))
