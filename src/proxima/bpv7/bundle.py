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

import struct
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import cbor2

from proxima.bpv7 import _cbor
from proxima.bpv7.crc import CRCType, crc16_x25, crc32c, crc_of_block
from proxima.bpv7.eid import DTN_NONE, EID, DtnEID, IpnEID, eid_from_cbor
from proxima.errors import (
    BundleError,
    CRCError,
    Incomplete,
    InvalidEndpointID,
    LocalError,
    ProtocolError,
    ProximaError,
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
    "bundle_identity",
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
_REPORT_FLAGS: Final = int(STATUS_REPORT_FLAGS)  # plain ints: IntFlag operators run Python code


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


_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE


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
        return bool(self.flags & 1)  # BundleFlag.IS_FRAGMENT

    @property
    def is_admin_record(self) -> bool:
        """True when the payload is an administrative record."""
        return bool(self.flags & 2)  # BundleFlag.ADMIN_RECORD


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
        if p.flags & 1:  # BundleFlag.IS_FRAGMENT
            return (p.source, p.creation_time, p.sequence, p.fragment_offset, len(self.payload))
        return (p.source, p.creation_time, p.sequence, None, None)


def bundle_identity(
    bundle: Bundle, payload_length: int | None = None
) -> tuple[EID, int, int, int | None, int | None]:
    """:attr:`Bundle.id` of a bundle whose payload block was left empty because its
    ``payload_length`` bytes are kept elsewhere (a large bundle streamed into a file): a
    fragment's identity carries its payload length, not the empty block's."""
    p = bundle.primary
    if payload_length is None or not p.flags & 1:  # BundleFlag.IS_FRAGMENT
        return bundle.id
    return (p.source, p.creation_time, p.sequence, p.fragment_offset, payload_length)


# ---------------------------------------------------------------------------------------------
# Helpers for the block types RFC 9171 defines.


def payload_block(data: bytes, *, flags: int = 0, crc_type: int = CRCType.NONE) -> CanonicalBlock:
    """A payload block (type 1, number 1)."""
    block: CanonicalBlock = _new(CanonicalBlock, (1, 1, int(flags), int(crc_type), bytes(data)))
    return block


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
            node = eid_from_cbor(value)
        except InvalidEndpointID as exc:
            raise BundleError(
                f"previous node block {block.number}: {exc}",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            ) from exc
        if not node.is_singleton:
            raise BundleError(
                f"previous node block {block.number}: {node} is not a node ID (RFC 9171 §4.4.1)",
                reason=Reason.BLOCK_UNINTELLIGIBLE,
                block=block.number,
            )
        return node
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
    bad = _BAD
    for name in ("flags", "creation_time", "sequence", "lifetime"):
        v = getattr(p, name)
        if not _is_u64(v):
            return (f"primary block: {name} {v!r:.40} is not an unsigned 64-bit integer", bad, 0)
    if p.crc_type not in (0, 1, 2):
        return (f"primary block: unknown CRC type {p.crc_type!r:.20} (0, 1 or 2)", bad, 0)
    for name in ("destination", "source", "report_to"):
        if not isinstance(getattr(p, name), EID):
            return (f"primary block: {name} is not an endpoint ID", bad, 0)
    if p.flags & 1:
        for name in ("fragment_offset", "total_adu_length"):
            v = getattr(p, name)
            if v is None:
                return ("primary block: a fragment must carry fragment offset and total ADU length", bad, 0)
            if not _is_u64(v):
                return (f"primary block: {name} {v!r:.40} is not an unsigned 64-bit integer", bad, 0)
    return None


def _block_type_violation(b: object, i: int) -> tuple[str, int, int | None]:
    bad = _BAD
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
    p: PrimaryBlock, blocks: Sequence[CanonicalBlock], *, require_primary_crc: int
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
    if p.flags & 1:
        v = _primary_violation(p)
        if v is not None:
            return v
    for i, b in enumerate(blocks):
        if not isinstance(b, CanonicalBlock):
            return _block_type_violation(b, i)
        # Read as objects: a caller that ignored the types gets a rule broken, not a TypeError.
        t, n, bf, bc, d = cast("tuple[object, object, object, object, object]", b)
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
    p: PrimaryBlock, blocks: Sequence[CanonicalBlock], require_primary_crc: int
) -> tuple[str, int, int | None] | None:
    """The RFC 9171 §4 rules, for fields already known to be of the right types."""
    if (
        p.flags & 0x3
        or not p.source.is_singleton
        or p.fragment_offset is not None
        or p.total_adu_length is not None
    ):
        v = _flag_violation(p)
        if v is not None:
            return v
    return _block_rules(p, blocks, require_primary_crc)


def _block_rules(
    p: PrimaryBlock, blocks: Sequence[CanonicalBlock], require_primary_crc: int
) -> tuple[str, int, int | None] | None:
    """:func:`_rules` once the bundle-flag rules hold: the blocks, the creation time, the
    fragment's extent and the primary block's CRC."""
    bad = _BAD
    if not blocks:
        return ("the bundle has no payload block", bad, None)
    numbers: set[int] = set()
    seen = 0  # bit 0: previous node, bit 1: bundle age, bit 2: hop count
    bib_on_primary = False
    last = len(blocks) - 1
    no_reports = bool(p.flags & 0x2) or p.source.is_none
    for i, b in enumerate(blocks):
        t, n = b[0], b[1]
        if no_reports and b[2] & 0x2:
            return (
                f"block {n}: 'report if block cannot be processed' must be clear in an "
                f"{'administrative record' if p.flags & 0x2 else 'anonymous bundle'} (RFC 9171 §4.2.4)",
                bad,
                n,
            )
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
                    if n not in _bcb_targets(blocks):  # ciphertext is not for us to read
                        return (str(exc), bad, n)
            elif not _is_cbor_uint(b[4]) and n not in _bcb_targets(blocks):
                return (f"bundle age block {n}: the age must be one unsigned integer", bad, n)
        elif t == 11 and require_primary_crc & 1 and not bib_on_primary:
            bib_on_primary = _bib_targets_primary(b)
    if blocks[last][0] != 1:
        return ("the bundle has no payload block (block type 1), or it is not last", bad, None)
    if p.creation_time == 0 and not seen & 2 and not require_primary_crc & _NO_AGE_RULE:
        return (
            "primary block: creation time is 0 (no accurate clock) but there is no bundle age "
            "block (RFC 9171 §4.3.1)",
            bad,
            0,
        )
    if p.flags & 1:
        off, tot = p.fragment_offset, p.total_adu_length
        if off is not None and tot is not None and off + len(blocks[last][4]) > tot:
            return (
                f"primary block: fragment offset {off} plus payload length "
                f"{len(blocks[last][4])} exceeds the total ADU length {tot}",
                bad,
                0,
            )
    if require_primary_crc & 1 and p.crc_type == 0 and not bib_on_primary:
        return (
            "primary block: no CRC, and no BIB targets the primary block (RFC 9171 §4.3.1)",
            bad,
            0,
        )
    return None


_NO_AGE_RULE: Final = 2
"""Bit of the internal rule mode that waives "creation time 0 needs a bundle age block"; bit 0
asks for a primary block CRC. Public functions take both as keyword flags."""


def _mode(require_primary_crc: bool, require_age_block: bool) -> int:
    return (1 if require_primary_crc else 0) | (0 if require_age_block else _NO_AGE_RULE)


def _bcb_targets(blocks: Sequence[CanonicalBlock]) -> set[int]:
    """Block numbers that some BCB (block type 12) says it encrypts: the first item of its ASB."""
    targets: set[int] = set()
    for b in blocks:
        if b[0] == 12:
            try:
                asb = cbor2.loads(b"\x9f" + b[4] + b"\xff")
            except Exception:  # a malformed BCB is judged by the security layer, not here
                asb = None
            if asb and type(asb[0]) is list:
                targets.update(t for t in asb[0] if type(t) is int)
    return targets


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
    v = _source_flag_violation(p.flags, p.source)
    if v is not None:
        return v
    if p.flags & 1:  # BundleFlag.IS_FRAGMENT
        if p.fragment_offset is None or p.total_adu_length is None:
            return ("primary block: a fragment must carry fragment offset and total ADU length", _BAD, 0)
    elif p.fragment_offset is not None or p.total_adu_length is not None:
        return (
            "primary block: fragment offset and total ADU length are present but the "
            "'is fragment' flag is clear",
            _BAD,
            0,
        )
    return None


def _source_flag_violation(flags: int, source: EID) -> tuple[str, int, int | None] | None:
    """The bundle-flag rules of RFC 9171 §4.2.3 that depend on the flags and the source only."""
    bad = _BAD
    if not source.is_none and not source.is_singleton:
        return (
            f"primary block: the source {source} is not a node ID: a dtn demux starting with '~' "
            "names a non-singleton endpoint (RFC 9171 §4.2.5.2)",
            bad,
            0,
        )
    if source.is_none:
        if not flags & 0x4:  # BundleFlag.MUST_NOT_FRAGMENT
            return (
                "primary block: an anonymous bundle (source dtn:none) must have the "
                "'must not fragment' flag set (RFC 9171 §4.2.3)",
                bad,
                0,
            )
        if flags & _REPORT_FLAGS:
            return (
                "primary block: an anonymous bundle (source dtn:none) must not request status "
                "reports (RFC 9171 §4.2.3)",
                bad,
                0,
            )
    if flags & 0x2 and flags & _REPORT_FLAGS:  # BundleFlag.ADMIN_RECORD
        return (
            "primary block: an administrative record must not request status reports (RFC 9171 §4.2.3)",
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


def check_bundle(
    bundle: Bundle, *, require_primary_crc: bool = False, require_age_block: bool = True
) -> None:
    """Check every RFC 9171 §4 validity rule; raise :class:`LocalError` naming the first broken.

    ``require_primary_crc`` enforces §4.3.1's "a CRC SHALL be present in the primary block
    unless a BIB targets it". It is off by default because RFC 9173's own worked examples,
    pyd3tn and dtn7 emit primary blocks without a CRC. ``require_age_block=False`` waives
    "creation time 0 needs a bundle age block", which RFC 9173's examples A.1, A.2 and A.4 break.
    """
    mode = _mode(require_primary_crc, require_age_block)
    v = _violation(bundle.primary, bundle.blocks, require_primary_crc=mode)
    if v is not None:
        raise LocalError(v[0], reason=v[1])


# ---------------------------------------------------------------------------------------------
# Encoding.

_CRC_HEAD: Final = (b"", b"\x42", b"\x44")
_U = _cbor.UINT_SMALL
_uint = _cbor.uint
_bytes_head = _cbor.bytes_head
_BH = _cbor.BYTES_SMALL
_PACK_BH: Final = struct.Struct(">BH").pack
_PACK_BI: Final = struct.Struct(">BI").pack
_PACK_BQ: Final = struct.Struct(">BQ").pack
_PACK_H: Final = struct.Struct(">H").pack
_PACK_I: Final = struct.Struct(">I").pack
_Z2: Final = b"\x00\x00"
_Z4: Final = b"\x00\x00\x00\x00"
_CRC16_TAIL: Final = b"\x42\x00\x00"
_CRC32_TAIL: Final = b"\x44\x00\x00\x00\x00"


def _uint_long(v: int) -> bytes:
    """The shortest encoding of an unsigned integer known to be in 256..2^64-1."""
    if v < 0x10000:
        return _PACK_BH(25, v)
    if v < 0x100000000:
        return _PACK_BI(26, v)
    return _PACK_BQ(27, v)


# The primary block's encoding from its array head to the report-to EID, with whether the
# bundle-flag rules that depend on those fields alone hold; keyed by (flags, CRC type, EIDs).
_PRIMARY_PREFIXES: dict[tuple[int, int, bytes, bytes, bytes], tuple[bytes, bool]] = {}
_CACHE_MAX: Final = 4096
_CACHED_EID_MAX_BYTES: Final = 256
"""Caches keep only endpoint IDs this short, so a peer's huge EIDs cannot pin memory."""


def _primary_fast(p: PrimaryBlock) -> tuple[bytes, bool] | None:
    """The deterministic encoding of a primary block, CRC included, and whether its bundle-flag
    rules hold (RFC 9171 §4.2.3); None when a field is not of the plain type and range that the
    encoding needs (the caller then takes the general path, which explains)."""
    dst, src, rpt, ctime, seq, life, flags, crc_type, off, tot = p
    if not (
        type(flags) is int
        and type(ctime) is int
        and type(seq) is int
        and type(life) is int
        and type(crc_type) is int
    ):
        if not (
            isinstance(flags, int)
            and isinstance(ctime, int)
            and isinstance(seq, int)
            and isinstance(life, int)
            and isinstance(crc_type, int)
        ):
            return None
        # BundleFlag, CRCType, bool: plain ints encode the same, and their operators are cheaper
        flags, ctime, seq, life, crc_type = int(flags), int(ctime), int(seq), int(life), int(crc_type)
    if not (isinstance(dst, EID) and isinstance(src, EID) and isinstance(rpt, EID)):
        return None
    x = flags | ctime | seq | life
    if x < 0 or x >> 64 or crc_type < 0 or crc_type > 2:
        return None
    key = (flags, crc_type, dst._cbor, src._cbor, rpt._cbor)
    entry = _PRIMARY_PREFIXES.get(key)
    if entry is None:
        cacheable = len(key[2]) + len(key[3]) + len(key[4]) <= 3 * _CACHED_EID_MAX_BYTES
        fields = (10 if flags & 1 else 8) + (1 if crc_type else 0)
        entry = (
            b"".join((_cbor.array_head(fields), b"\x07", _uint(flags), _U[crc_type], *key[2:])),
            _source_flag_violation(flags, src) is None and not (flags & 0x2 or src.is_none),
        )
        if cacheable:
            if len(_PRIMARY_PREFIXES) >= _CACHE_MAX:
                _PRIMARY_PREFIXES.clear()
            _PRIMARY_PREFIXES[key] = entry
    if flags & 1:
        if type(off) is not int or type(tot) is not int:
            return None
        y = off | tot
        if y < 0 or y >> 64:
            return None
        frag = (_U[off] if off < 256 else _uint_long(off)) + (_U[tot] if tot < 256 else _uint_long(tot))
    elif off is not None or tot is not None:
        return None
    else:
        frag = b""
    body = b"".join(
        (
            entry[0],
            b"\x82",
            _U[ctime] if ctime < 256 else _uint_long(ctime),
            _U[seq] if seq < 256 else _uint_long(seq),
            _U[life] if life < 256 else _uint_long(life),
            frag,
            _CRC_HEAD[crc_type],
        )
    )
    if crc_type == 2:
        return body + _PACK_I(crc32c(_Z4, crc32c(body))), entry[1]
    if crc_type == 1:
        return body + _PACK_H(crc16_x25(_Z2, crc16_x25(body))), entry[1]
    return body, entry[1]


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
    if type(p) is PrimaryBlock:
        fast = _primary_fast(p)
        if fast is not None:
            return fast[0]
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


def encode_bundle(
    bundle: Bundle,
    *,
    check: bool = True,
    require_primary_crc: bool = False,
    require_age_block: bool = True,
) -> bytes:
    """The deterministic encoding of a bundle.

    With ``check`` (the default) the bundle is first held to every validity rule (see
    :func:`check_bundle` for the two optional ones) and a :class:`LocalError` names the first
    one it breaks.
    """
    mode = _mode(require_primary_crc, require_age_block)
    p = bundle.primary
    blocks = bundle.blocks
    if type(p) is PrimaryBlock and type(blocks) is tuple:
        fast = _encode_fast(p, blocks, check, mode)
        if fast is not None:
            return fast
    return _encode_general(bundle, check, mode)


def _encode_general(bundle: Bundle, check: bool, mode: int) -> bytes:
    """The encoder without the fast path's caches: every field looked at, every rule checked
    (``check``) in the order :func:`check_bundle` states them."""
    if check:
        v = _violation(bundle.primary, bundle.blocks, require_primary_crc=mode)
        if v is not None:
            raise LocalError(f"cannot encode: {v[0]}", reason=v[1])
    parts = [b"\x9f", encode_primary(bundle.primary)]
    parts.extend(encode_block(b) for b in bundle.blocks)
    parts.append(b"\xff")
    return b"".join(parts)


def _encode_fast(
    p: PrimaryBlock, blocks: tuple[CanonicalBlock, ...], check: bool, require_primary_crc: int
) -> bytes | None:
    """:func:`encode_bundle` for bundles whose fields all have plain types and, with ``check``,
    that break no rule; None otherwise, and the general path then encodes or explains."""
    prim = _primary_fast(p)
    if prim is None or (check and not prim[1]):
        return None
    parts = [b"\x9f", prim[0]]
    append = parts.append
    u = _U
    known = _KNOWN_CONTENT
    ok = True  # no doubt yet that the blocks keep the rules of _block_rules
    used = 1  # bit k: block number k seen (0 is the primary block's)
    kinds = 0  # bit k: a block of type k in (6, 7, 10) seen
    last = len(blocks) - 1
    t = 0
    d = b""
    for i, b in enumerate(blocks):
        if type(b) is not CanonicalBlock:
            return None
        t, n, bf, bc, d = b
        if type(t) is not int or type(n) is not int or type(bf) is not int or type(bc) is not int:
            if not (
                isinstance(t, int) and isinstance(n, int) and isinstance(bf, int) and isinstance(bc, int)
            ):
                return None
            t, n, bf, bc = int(t), int(n), int(bf), int(bc)  # BlockType, BlockFlag, CRCType, bool
        x = t | n | bf
        if x < 0 or x >> 64 or bc < 0 or bc > 2 or type(d) is not bytes:
            return None
        length = len(d)
        if x < 24:  # type, number and flags each take one byte
            head = bytes((0x86 if bc else 0x85, t, n, bf, bc)) + (
                _BH[length] if length < 256 else _bytes_head(length)
            )
        else:
            head = b"".join(
                (
                    b"\x86" if bc else b"\x85",
                    u[t] if t < 256 else _uint_long(t),
                    u[n] if n < 256 else _uint_long(n),
                    u[bf] if bf < 256 else _uint_long(bf),
                    u[bc],
                    _BH[length] if length < 256 else _bytes_head(length),
                )
            )
        append(head)
        append(d)
        if bc == 2:
            append(_PACK_BI(0x44, crc32c(_CRC32_TAIL, crc32c(d, crc32c(head)))))
        elif bc == 1:
            append(_PACK_BH(0x42, crc16_x25(_CRC16_TAIL, crc16_x25(d, crc16_x25(head)))))
        # The rules of _block_rules, as cheap sufficient conditions.
        if n < 64 and not used >> n & 1:
            used |= 1 << n
        else:
            ok = False
        if t == 1:
            if n != 1 or i != last:
                ok = False
        elif t in {6, 10}:
            if kinds >> t & 1 or (t, d) not in known:
                ok = False
            kinds |= 1 << t
        elif t == 7:
            if kinds & 0x80 or not _is_cbor_uint(d):
                ok = False
            kinds |= 0x80
    if check:
        if p.flags & 1:  # _primary_fast saw that both are integers
            off, tot = p.fragment_offset, p.total_adu_length
            if off is None or tot is None or off + len(d) > tot:
                ok = False
        if (
            not ok
            or t != 1
            or (p.creation_time == 0 and not kinds & 0x80)
            or (require_primary_crc & 1 and p.crc_type == 0)
        ) and _block_rules(p, blocks, require_primary_crc) is not None:
            return None
    append(b"\xff")
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Decoding. decode_bundle tries the fast parser (further below) first: it reads exactly the
# deterministic encoding, straight from the bytes. Anything else, valid or not, goes to the careful
# path (cbor2, then the strict scanner for block boundaries), which accepts every valid encoding
# and words the errors.

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
    if key is not None and len(eid.cbor) <= _CACHED_EID_MAX_BYTES:
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
        raw_crc: object = v[-1]
        want = 2 if crc_type == 1 else 4
        if type(raw_crc) is not bytes or len(raw_crc) != want:
            raise BundleError(
                f"primary block: the CRC must be a byte string of {want} bytes", reason=_BAD, block=0
            )
        crc_value = raw_crc
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
        raw_crc: object = v[5]
        want = 2 if crc_type == 1 else 4
        if type(raw_crc) is not bytes or len(raw_crc) != want:
            raise BundleError(
                f"block {num}: the CRC must be a byte string of {want} bytes", reason=_BAD, block=num
            )
        crc_value = raw_crc
    return CanonicalBlock(t, num, flags, crc_type, data), crc_value


def _crc_mismatch(what: str, block: int) -> CRCError:
    return CRCError(f"{what}: CRC check failed", reason=_BAD, block=block)


def decode_bundle(
    data: bytes | bytearray | memoryview,
    *,
    require_primary_crc: bool = False,
    require_age_block: bool = True,
) -> Bundle:
    """Decode exactly one bundle from ``data``.

    Raises :class:`Incomplete` when ``data`` stops before the bundle ends, and
    :class:`BundleError` (with a status report reason code and the block concerned) when it
    is malformed, breaks a validity rule, fails a CRC check, or is followed by other bytes.
    The two optional rules are those of :func:`check_bundle`.
    """
    if type(data) is not bytes or not data or data[0] != 0x9F:
        data = _check_start(data)
    bundle, end = _decode(data, _mode(require_primary_crc, require_age_block))
    if end != len(data):
        extra = len(data) - end
        raise BundleError(
            f"{extra} trailing byte{'s' if extra > 1 else ''} after the end of the bundle", reason=_BAD
        )
    return bundle


def decode_bundle_prefix(
    data: bytes | bytearray | memoryview,
    *,
    require_primary_crc: bool = False,
    require_age_block: bool = True,
) -> tuple[Bundle, int]:
    """Decode the bundle at the start of ``data``; return it and the number of bytes it took."""
    if type(data) is not bytes or not data or data[0] != 0x9F:
        data = _check_start(data)
    return _decode(data, _mode(require_primary_crc, require_age_block))


def _check_start(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` as bytes, once it is known to start like a bundle."""
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
    return data


def _decode_careful(data: bytes, require_primary_crc: int) -> tuple[Bundle, int]:
    """Decode any valid encoding (``data`` starts with 0x9f) through the C CBOR decoder and the
    strict scanner, checking every CRC over the received bytes, with a precise error for each
    way the bytes can be wrong. Independent of the fast parser."""
    try:
        items = cbor2.loads(data)
    except cbor2.CBORDecodeEOF as exc:
        raise Incomplete("input ends before the bundle does") from exc
    except Exception as exc:  # every failure of the C decoder is the data's fault
        _raise_structure_error(data, exc)
    if type(items) is not list or len(items) < 1:
        raise BundleError("the bundle has no primary block", reason=_BAD)
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
            nxt = _cbor.skip(
                data, pos, what="the primary block" if i == 0 else f"block #{i}", definite=True
            )
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
        if data[stop - n - 1] != (0x42 if n == 2 else 0x44):
            raise BundleError(
                f"{what}: the CRC must be a byte string with a one-byte head (0x42 or 0x44), "
                f"not 0x{data[stop - n - 1]:02x} (RFC 9171 §4.2.2)",
                reason=_BAD,
                block=number,
            )
        prefix = data[start : stop - n]
        if crc_type == 1:
            got = crc16_x25(b"\x00\x00", crc16_x25(prefix)).to_bytes(2, "big")
        else:
            got = crc32c(b"\x00\x00\x00\x00", crc32c(prefix)).to_bytes(4, "big")
        if got != value:
            raise _crc_mismatch(what, number)


# ---------------------------------------------------------------------------------------------
# The fast path: a parser of exactly the deterministic encoding, straight from the bytes.
#
# It accepts shortest-form heads and definite lengths only, and gives up (returns None or raises
# one of _FAST_GIVES_UP, which the caller catches) at the first byte that differs from what
# encode_bundle would write; the careful path above then decodes or explains. It verifies each
# CRC over the received bytes but reports a mismatch only once the whole bundle has parsed, so
# that both paths raise the same error for the same bytes; and it tells whether the bundle
# surely keeps every validity rule, so that _rules, which words the errors, runs only on doubt.


class _Irregular(Exception):
    """The bytes are not the deterministic encoding the fast parser reads."""


_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__
_UNPACK_H: Final = struct.Struct(">H").unpack_from
_UNPACK_I: Final = struct.Struct(">I").unpack_from
_UNPACK_Q: Final = struct.Struct(">Q").unpack_from
_FAST_GIVES_UP: Final = (_Irregular, IndexError, struct.error)

# Bytes taken by a CBOR unsigned integer, by its first byte (1 where it is not one: the walk
# that uses this only proposes a key for the prefix cache, which judges).
_ULEN: Final = tuple(
    1 if b < 24 else 2 if b == 24 else 3 if b == 25 else 5 if b == 26 else 9 if b == 27 else 1
    for b in range(256)
)


def _head_at(data: bytes, p: int, major: int = 0) -> tuple[int, int]:
    """The argument of the shortest-form, definite CBOR head of major type ``major`` (by default
    an unsigned integer) at ``p``, and the offset after the head."""
    info = data[p] - (major << 5)
    if 0 <= info < 24:
        return info, p + 1
    v: int
    if info == 24:
        v = data[p + 1]
        if v >= 24:
            return v, p + 2
    elif info == 25:
        v = _UNPACK_H(data, p + 1)[0]
        if v >= 0x100:
            return v, p + 3
    elif info == 26:
        v = _UNPACK_I(data, p + 1)[0]
        if v >= 0x10000:
            return v, p + 5
    elif info == 27:
        v = _UNPACK_Q(data, p + 1)[0]
        if v >= 0x100000000:
            return v, p + 9
    raise _Irregular  # another major type, a longer head than needed, or indefinite length


def _eid_at(data: bytes, p: int) -> tuple[EID, int]:
    """The deterministically encoded endpoint ID at ``p`` and the offset after it."""
    if data[p] != 0x82:
        raise _Irregular
    scheme = data[p + 1]
    if scheme == 2:
        if data[p + 2] != 0x82:
            raise _Irregular
        node, q = _head_at(data, p + 3)
        service, q = _head_at(data, q)
        eid: EID = IpnEID(node, service)
    elif scheme == 1:
        if data[p + 2] == 0:
            eid, q = DTN_NONE, p + 3
        else:
            n, a = _head_at(data, p + 2, 3)
            q = a + n
            raw = data[a:q]
            if len(raw) != n:
                raise _Irregular
            try:
                eid = DtnEID(raw.decode("utf-8"))
            except (UnicodeDecodeError, InvalidEndpointID):
                raise _Irregular from None
    else:
        raise _Irregular
    if eid._cbor != data[p:q]:
        raise _Irregular
    return eid, q


def _dtn_eid_end(data: bytes, p: int) -> int:
    """Where a dtn endpoint ID starting at ``p`` would end (a guess for the prefix cache)."""
    c = data[p + 2]
    if 0x60 <= c < 0x78:
        return p + c - 0x5D
    if c == 0x78:
        return p + 4 + data[p + 3]
    if c == 0x79:
        n: int = _UNPACK_H(data, p + 3)[0]
        return p + 5 + n
    return p + 3


# What the primary block's bytes from its array head to the report-to EID mean, keyed by those
# bytes: (field count, flags, CRC type, destination, source, report-to, whether the bundle-flag
# rules hold). An entry is only made for bytes that _learn_primary_prefix read strictly.
_PrefixEntry = tuple[int, int, int, EID, EID, EID, bool]
_PRIMARY_PREFIX_OF: dict[bytes, _PrefixEntry] = {}
_PREFIX_CACHED_MAX_LEN: Final = 256  # longer prefixes (long dtn EIDs) are read afresh each time
# The prefix met last, its end and its entry: bundles of one flow come in runs.
_LAST_PREFIX: list[tuple[bytes, int, _PrefixEntry] | None] = [None]


def _learn_primary_prefix(data: bytes) -> tuple[int, _PrefixEntry]:
    """Read the primary block's prefix strictly; remember it; return its end and meaning."""
    head = data[1]
    if not 0x88 <= head <= 0x8B or data[2] != 7:
        raise _Irregular
    flags, p = _head_at(data, 3)
    crc_type = data[p]
    if crc_type > 2:
        raise _Irregular
    n = head - 0x80
    if n != 8 + (2 if flags & 1 else 0) + (1 if crc_type else 0):
        raise _Irregular
    dst, p = _eid_at(data, p + 1)
    src, p = _eid_at(data, p)
    rpt, p = _eid_at(data, p)
    entry = (
        n,
        flags,
        crc_type,
        dst,
        src,
        rpt,
        _source_flag_violation(flags, src) is None and not (flags & 0x2 or src.is_none),
    )
    if p <= _PREFIX_CACHED_MAX_LEN:
        if len(_PRIMARY_PREFIX_OF) >= _CACHE_MAX:
            _PRIMARY_PREFIX_OF.clear()
        _PRIMARY_PREFIX_OF[data[1:p]] = entry
    return p, entry


def _parse_fast(data: bytes) -> tuple[Bundle, int, bool, tuple[str, int] | None] | None:
    """Parse a deterministically encoded bundle (``data[0]`` is known to be 0x9f).

    Returns the bundle; its end; True when it surely keeps every validity rule of _rules but the
    primary-CRC one; and the first CRC that failed, as (what, block number), else None. Returns
    None, or raises one of _FAST_GIVES_UP, to give up.
    """
    last = _LAST_PREFIX[0]
    if last is not None and data.startswith(last[0], 1):
        p = last[1]
        entry = last[2]
    else:
        # Propose where the prefix (array head .. report-to) ends; the cache vouches for it.
        ulen = _ULEN
        p = 4 + ulen[data[3]]
        for _ in range(3):  # destination, source, report-to
            if data[p + 1] == 2:
                p += 3
                p += ulen[data[p]]
                p += ulen[data[p]]
            else:
                p = _dtn_eid_end(data, p)
        key = data[1:p]
        found = _PRIMARY_PREFIX_OF.get(key)
        if found is None:
            p, entry = _learn_primary_prefix(data)
            key = data[1:p]
        else:
            entry = found
        _LAST_PREFIX[0] = (key, p, entry)
    n, flags, crc_type, dst, src, rpt, ok = entry  # ok: so far, the bundle-flag rules hold
    if data[p] != 0x82:
        return None
    if data[p + 1] == 0x1B:  # a creation time from an accurate clock takes 8 bytes
        ctime: int = _UNPACK_Q(data, p + 2)[0]
        if ctime < 0x100000000:
            return None
        p += 10
    else:
        ctime, p = _head_at(data, p + 1)
    seq, p = _head_at(data, p)
    lifetime, p = _head_at(data, p)
    off: int | None = None
    tot: int | None = None
    if n >= 10:
        off, p = _head_at(data, p)
        tot, p = _head_at(data, p)
    bad_crc: tuple[str, int] | None = None
    if crc_type == 2:
        if data[p] != 0x44:
            return None
        if crc32c(_Z4, crc32c(data[1 : p + 1])) != _UNPACK_I(data, p + 1)[0]:
            bad_crc = ("primary block", 0)
        p += 5
    elif crc_type == 1:
        if data[p] != 0x42:
            return None
        if crc16_x25(_Z2, crc16_x25(data[1 : p + 1])) != _UNPACK_H(data, p + 1)[0]:
            bad_crc = ("primary block", 0)
        p += 3
    primary: PrimaryBlock = _new(
        PrimaryBlock, (dst, src, rpt, ctime, seq, lifetime, flags, crc_type, off, tot)
    )
    blocks: list[CanonicalBlock] = []
    append = blocks.append
    known = _KNOWN_CONTENT
    used = 1  # bit k: block number k seen (0 is the primary block's)
    kinds = 0  # bit k: a block of type k in (6, 7, 10) seen
    t = d = None
    while True:
        b = data[p]
        if b == 0x86:
            with_crc = True
        elif b == 0x85:
            with_crc = False
        elif b == 0xFF:
            break
        else:
            return None
        q = p + 1
        t = data[q]
        if t < 24:
            q += 1
        else:
            t, q = _head_at(data, q)
        num = data[q]
        if num < 24:
            q += 1
        else:
            num, q = _head_at(data, q)
        bf = data[q]
        if bf < 24:
            q += 1
        else:
            bf, q = _head_at(data, q)
        bc = data[q]
        length = data[q + 1]
        if 0x40 <= length < 0x58:
            length -= 0x40
            q += 2
        else:
            length, q = _head_at(data, q + 1, 2)
        end = q + length
        d = data[q:end]
        # The CRC runs over the head, the data already cut out, then the CRC value's head and
        # zeros: the block is not copied once more for it (a payload block is most of a bundle).
        if bc == 2:
            if not with_crc or data[end] != 0x44:
                return None
            if (
                bad_crc is None
                and crc32c(_CRC32_TAIL, crc32c(d, crc32c(data[p:q]))) != _UNPACK_I(data, end + 1)[0]
            ):
                bad_crc = (f"block {num} (type {t})", num)
            p = end + 5
        elif bc == 0:
            if with_crc:
                return None
            p = end
        elif bc == 1:
            if not with_crc or data[end] != 0x42:
                return None
            if (
                bad_crc is None
                and crc16_x25(_CRC16_TAIL, crc16_x25(d, crc16_x25(data[p:q]))) != _UNPACK_H(data, end + 1)[0]
            ):
                bad_crc = (f"block {num} (type {t})", num)
            p = end + 3
        else:
            return None
        if p > len(data):
            return None
        append(_new(CanonicalBlock, (t, num, bf, bc, d)))
        # The rules of _block_rules, as cheap sufficient conditions.
        if num < 64 and not used >> num & 1:
            used |= 1 << num
        else:
            ok = False
        if t == 1:
            if num != 1 or data[p] != 0xFF:
                ok = False
        elif t in {6, 10}:
            if kinds >> t & 1 or (t, d) not in known:
                ok = False
            kinds |= 1 << t
        elif t == 7:
            if kinds & 0x80 or not _is_cbor_uint(d):
                ok = False
            kinds |= 0x80
    if t != 1 or (ctime == 0 and not kinds & 0x80):
        ok = False
    elif off is not None and tot is not None and d is not None and off + len(d) > tot:
        ok = False  # d: the payload
    return _new(Bundle, (primary, tuple(blocks))), p + 1, ok, bad_crc


def _decode(data: bytes, require_primary_crc: int) -> tuple[Bundle, int]:
    """Decode the bundle at the start of ``data`` (bytes, first byte 0x9f)."""
    try:
        fast = _parse_fast(data)
    except _FAST_GIVES_UP:
        fast = None
    if fast is None:
        return _decode_careful(data, require_primary_crc)
    bundle, end, ok, bad_crc = fast
    if bad_crc is not None:
        raise _crc_mismatch(bad_crc[0], bad_crc[1])
    if not ok or (require_primary_crc & 1 and bundle[0][7] == 0):
        v = _rules(bundle[0], bundle[1], require_primary_crc)
        if v is not None:
            raise BundleError(v[0], reason=v[1], block=v[2])
    return bundle, end


def _json_value(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple | list):
        return [_json_value(x) for x in v]
    return v


def _asb_to_json(block: CanonicalBlock) -> dict[str, Any]:
    """A BIB's or BCB's abstract security block, for people and scripts to read."""
    from proxima.bpv7.bpsec import decode_asb  # bpsec builds on this module

    try:
        asb = decode_asb(block.data, block=block.number)
    except ProximaError as exc:
        return {"error": str(exc)}
    return {
        "targets": list(asb.targets),
        "context_id": asb.context_id,
        "context_flags": asb.context_flags,
        "source": str(asb.source),
        "parameters": None
        if asb.parameters is None
        else [[pid, _json_value(v)] for pid, v in asb.parameters],
        "results": [[[rid, _json_value(v)] for rid, v in per_target] for per_target in asb.results],
    }


def bundle_to_json(bundle: Bundle, *, crc_ok: bool = True) -> dict[str, Any]:
    """A JSON-ready description of a bundle: ``primary``, ``blocks``, ``payload_length``, ``crc_ok``."""
    p = bundle.primary
    blocks: list[dict[str, Any]] = []
    encrypted = _bcb_targets(bundle.blocks)
    for b in bundle.blocks:
        entry: dict[str, Any] = {
            "type": b.type,
            "type_name": BlockType(b.type).name.lower() if b.type in _KNOWN_TYPES else "unknown",
            "number": b.number,
            "flags": b.flags,
            "crc_type": b.crc_type,
            "length": len(b.data),
        }
        if b.number in encrypted:
            entry["encrypted"] = True
            entry["data_hex"] = b.data.hex()
        elif b.type in (BlockType.BIB, BlockType.BCB):
            entry["data_hex"] = b.data.hex()
            entry["security"] = _asb_to_json(b)
        elif b.type in (BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT):
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
