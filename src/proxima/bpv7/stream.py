"""Bundles too large to hold whole: decode everything but the payload, stream the payload.

A relay needs the primary block and the extension blocks to decide where a bundle goes, never
its payload. :func:`decode_bundle_head` reads a bundle's beginning (as much as has arrived) and
returns those blocks with the payload's offset and length, all checked as strictly as
:func:`~proxima.bpv7.bundle.decode_bundle` checks them; :class:`PayloadCRC` then checks the
payload block's CRC piece by piece as the payload streams past (to a file, to the next hop).
:func:`encode_bundle_head` and :meth:`PayloadCRC.trailer` do the same when sending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

from proxima.bpv7 import _cbor
from proxima.bpv7.bundle import (
    Bundle,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    decode_bundle,
    encode_block,
    encode_bundle,
)
from proxima.bpv7.crc import crc16_x25, crc32c
from proxima.errors import BundleError, CRCError, Incomplete, LocalError, ProtocolError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BundleHead", "PayloadCRC", "decode_bundle_head", "encode_bundle_head"]

_BAD: Final = Reason.BLOCK_UNINTELLIGIBLE


class BundleHead(NamedTuple):
    """A bundle without its payload bytes.

    ``blocks`` are the canonical blocks in wire order, the payload block last with empty
    ``data``; the payload's ``payload_length`` bytes start at ``payload_offset`` in the
    encoding, whose whole length is ``total_length``. ``payload_head`` is the payload block's
    encoding up to its data (what its CRC starts with).
    """

    primary: PrimaryBlock
    blocks: tuple[CanonicalBlock, ...]
    payload_offset: int
    payload_length: int
    total_length: int
    payload_head: bytes

    @property
    def payload_block(self) -> CanonicalBlock:
        """The payload block, with empty data."""
        return self.blocks[-1]


def _read_uint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    if pos >= len(data):
        raise Incomplete(f"input ends inside {what}")
    ib = data[pos]
    if ib >> 5 != 0:
        raise BundleError(f"{what} must be an unsigned integer (byte 0x{ib:02x})", reason=_BAD)
    info = ib & 0x1F
    if info < 24:
        return info, pos + 1
    if info > 27:
        raise BundleError(f"{what}: reserved CBOR additional information {info}", reason=_BAD)
    size = 1 << (info - 24)
    if pos + 1 + size > len(data):
        raise Incomplete(f"input ends inside {what}", needed=pos + 1 + size - len(data))
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def decode_bundle_head(
    data: bytes | bytearray | memoryview, *, require_primary_crc: bool = False
) -> BundleHead:
    """Decode a bundle's blocks from its first bytes, leaving the payload unread.

    ``data`` may stop anywhere after the payload block's byte string head: raises
    :class:`Incomplete` when it stops before, and :class:`BundleError` for any rule the
    blocks break (CRCs of every block but the payload included).
    """
    data = bytes(data)
    if not data:
        raise Incomplete("no bytes: a bundle starts with 0x9f")
    if data[0] != 0x9F:
        raise BundleError(
            f"not a bundle: starts with 0x{data[0]:02x}, not an indefinite-length array (0x9f)",
            reason=_BAD,
        )
    pos = 1
    try:
        pos = _cbor.skip(data, pos, what="the primary block", definite=True)
        index = 1
        while True:
            start = pos
            if pos >= len(data):
                raise Incomplete("input ends before the payload block")
            head = data[pos]
            if head not in (0x85, 0x86):
                if head == 0xFF:
                    raise BundleError("the bundle has no payload block (block type 1)", reason=_BAD)
                raise BundleError(
                    f"block #{index} must be an array of 5 or 6 items (byte 0x{head:02x})", reason=_BAD
                )
            block_type, p = _read_uint(data, pos + 1, f"block #{index}: block type")
            if block_type != 1:
                pos = _cbor.skip(data, pos, what=f"block #{index}", definite=True)
                index += 1
                continue
            number, p = _read_uint(data, p, "the payload block's number")
            flags, p = _read_uint(data, p, "the payload block's flags")
            crc_type, p = _read_uint(data, p, "the payload block's CRC type")
            if p >= len(data):
                raise Incomplete("input ends before the payload's byte string head")
            if data[p] >> 5 != 2 or data[p] & 0x1F == 31:
                raise BundleError(
                    "the payload block's data must be a definite-length byte string", reason=_BAD, block=1
                )
            info = data[p] & 0x1F
            if info < 24:
                length, payload_offset = info, p + 1
            elif info <= 27:
                size = 1 << (info - 24)
                if p + 1 + size > len(data):
                    raise Incomplete("input ends inside the payload's byte string head")
                length, payload_offset = int.from_bytes(data[p + 1 : p + 1 + size], "big"), p + 1 + size
            else:
                raise BundleError("the payload's byte string head is malformed", reason=_BAD, block=1)
            break
    except ProtocolError as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"malformed bundle: {exc}", reason=_BAD) from exc
    if crc_type not in (0, 1, 2):
        raise BundleError(f"block 1: unknown CRC type {crc_type} (0, 1 or 2)", reason=_BAD, block=1)
    if (head == 0x86) != bool(crc_type):
        raise BundleError(f"block 1: CRC type {crc_type} but {head - 0x80} fields", reason=_BAD, block=1)
    # Check everything before the payload with the real decoder, on a stand-in payload block.
    stand_in = encode_block(CanonicalBlock(1, number, flags, 0, b""))
    shell = decode_bundle(data[:start] + stand_in + b"\xff", require_primary_crc=require_primary_crc)
    p_block = CanonicalBlock(1, number, flags, crc_type, b"")
    primary = shell.primary
    off, tot = primary.fragment_offset, primary.total_adu_length
    if off is not None and tot is not None and off + length > tot:
        raise BundleError(
            f"primary block: fragment offset {off} plus payload length {length} exceeds the total "
            f"ADU length {tot}",
            reason=_BAD,
            block=0,
        )
    total = payload_offset + length + (0, 3, 5)[crc_type] + 1
    return BundleHead(
        primary, (*shell.blocks[:-1], p_block), payload_offset, length, total, data[start:payload_offset]
    )


class PayloadCRC:
    """The payload block's CRC, computed as its data streams past."""

    __slots__ = ("_crc", "crc_type")

    def __init__(self, payload_head: bytes, crc_type: int) -> None:
        self.crc_type = crc_type
        if crc_type == 1:
            self._crc = crc16_x25(payload_head)
        elif crc_type == 2:
            self._crc = crc32c(payload_head)
        else:
            self._crc = 0

    def update(self, chunk: bytes | memoryview) -> None:
        """Add the next payload bytes."""
        if self.crc_type == 1:
            self._crc = crc16_x25(chunk, self._crc)
        elif self.crc_type == 2:
            self._crc = crc32c(chunk, self._crc)

    def value(self) -> bytes:
        """The CRC value bytes for the payload seen so far (empty for CRC type 0)."""
        if self.crc_type == 1:
            return crc16_x25(b"\x42\x00\x00", self._crc).to_bytes(2, "big")
        if self.crc_type == 2:
            return crc32c(b"\x44\x00\x00\x00\x00", self._crc).to_bytes(4, "big")
        return b""

    def trailer(self) -> bytes:
        """What follows the payload bytes when sending: the CRC item, then the bundle's end."""
        if self.crc_type == 0:
            return b"\xff"
        return (b"\x42" if self.crc_type == 1 else b"\x44") + self.value() + b"\xff"

    def check_trailer(self, trailer: bytes) -> None:
        """Check what followed the payload bytes on receipt: the CRC item and the 0xff."""
        if trailer != self.trailer():
            if trailer[-1:] != b"\xff" or len(trailer) != len(self.trailer()):
                raise BundleError("the bundle does not end right after the payload block", reason=_BAD)
            raise CRCError("block 1 (type 1): CRC check failed", reason=_BAD, block=1)


def encode_bundle_head(
    primary: PrimaryBlock, blocks: Iterable[CanonicalBlock], payload_length: int
) -> tuple[bytes, PayloadCRC]:
    """The encoding of a bundle up to its payload data, and the CRC to feed the payload to.

    ``blocks`` end with the payload block (its ``data`` is ignored); every rule is checked as
    :func:`~proxima.bpv7.bundle.encode_bundle` would, with a stand-in payload of the right length
    for the rules that need it.
    """
    block_list = list(blocks)
    if not block_list or block_list[-1].type != 1:
        raise LocalError("the blocks must end with the payload block")
    if payload_length < 0:
        raise LocalError("payload_length must not be negative")
    payload = block_list[-1]
    head_only = Bundle(primary, (*block_list[:-1], payload._replace(data=b"", crc_type=0)))
    off, tot = primary.fragment_offset, primary.total_adu_length
    if primary.flags & 1 and off is not None and tot is not None and off + payload_length > tot:
        raise LocalError("fragment offset plus payload length exceeds the total ADU length")
    encoded = encode_bundle(head_only)
    stand_in = encode_block(payload._replace(data=b"", crc_type=0))
    prefix = encoded[: -len(stand_in) - 1]
    payload_head = b"".join(
        (
            b"\x86" if payload.crc_type else b"\x85",
            _cbor.uint(1),
            _cbor.uint(payload.number),
            _cbor.uint(payload.flags),
            _cbor.uint(payload.crc_type),
            _cbor.bytes_head(payload_length),
        )
    )
    return prefix + payload_head, PayloadCRC(payload_head, payload.crc_type)
