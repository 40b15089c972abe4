"""Block CRCs of RFC 9171 §4.2.1: CRC-16/X-25 and CRC-32C, computed by a compiled library.

A block's CRC is computed over the block's encoded bytes with the CRC value bytes set to zero
(the byte string head stays; RFC 9171 erratum 8043). The value is stored big-endian.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from fastcrc import crc16 as _crc16
from fastcrc import crc32 as _crc32

__all__ = ["CRCType", "crc16_x25", "crc32c", "crc_length", "crc_of_block"]

crc16_x25 = _crc16.ibm_sdlc
"""CRC-16/X-25 (a.k.a. IBM-SDLC): poly 0x1021 reflected, init and xorout 0xffff."""

crc32c = _crc32.iscsi
"""CRC-32C (Castagnoli, iSCSI): poly 0x1edc6f41 reflected, init and xorout 0xffffffff."""


class CRCType(IntEnum):
    """CRC type codes of RFC 9171 §4.2.1."""

    NONE = 0
    CRC16 = 1
    CRC32C = 2


_ZERO2: Final = b"\x00\x00"
_ZERO4: Final = b"\x00\x00\x00\x00"


def crc_length(crc_type: int) -> int:
    """Bytes of CRC value for a CRC type: 0, 2 or 4."""
    return (0, 2, 4)[crc_type]


def crc_of_block(encoded_without_value: bytes | memoryview, crc_type: int) -> bytes:
    """The CRC value of a block whose encoding, up to and including the CRC byte string head, is
    ``encoded_without_value``; returned as the big-endian value bytes to append."""
    if crc_type == CRCType.CRC16:
        return crc16_x25(_ZERO2, crc16_x25(encoded_without_value)).to_bytes(2, "big")
    if crc_type == CRCType.CRC32C:
        return crc32c(_ZERO4, crc32c(encoded_without_value)).to_bytes(4, "big")
    return b""
