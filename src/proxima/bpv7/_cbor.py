"""The slice of CBOR (RFC 8949) that bundles use: heads, a deterministic encoder and a strict scanner.

Encoding is done by hand because it is on the hot path and must be deterministic (shortest-form
heads, definite lengths). Decoding of values is left to ``cbor2`` (C); this module only adds
:func:`skip`, which walks one item to find where it ends, so CRCs can be checked over the
bytes actually received even when a peer encoded them in a non-shortest form.
"""

from __future__ import annotations

import struct
from typing import Final

from proxima.errors import Incomplete, ProtocolError

__all__ = ["array_head", "bytes_head", "head", "skip", "text", "uint"]

_U64_MAX: Final = (1 << 64) - 1
_PACK_H = struct.Struct(">BH").pack
_PACK_I = struct.Struct(">BI").pack
_PACK_Q = struct.Struct(">BQ").pack

# Heads for small arguments are the common case; build them once.
_SMALL: Final[tuple[tuple[bytes, ...], ...]] = tuple(
    tuple(bytes((major << 5 | n,)) if n < 24 else bytes((major << 5 | 24, n)) for n in range(256))
    for major in range(8)
)
UINT_SMALL: Final = _SMALL[0]
BYTES_SMALL: Final = _SMALL[2]
ARRAY_SMALL: Final = _SMALL[4]


def head(major: int, n: int) -> bytes:
    """The shortest head for major type ``major`` with argument ``n``."""
    if n < 256:
        return _SMALL[major][n]
    mt = major << 5
    if n < 0x10000:
        return _PACK_H(mt | 25, n)
    if n < 0x100000000:
        return _PACK_I(mt | 26, n)
    if n <= _U64_MAX:
        return _PACK_Q(mt | 27, n)
    raise OverflowError(f"{n} does not fit in a CBOR head (at most 2^64-1)")


def uint(n: int) -> bytes:
    """Encode an unsigned integer (major type 0)."""
    if n < 256:
        return UINT_SMALL[n]
    return head(0, n)


def bytes_head(n: int) -> bytes:
    """The head of a byte string of ``n`` bytes."""
    if n < 256:
        return BYTES_SMALL[n]
    return head(2, n)


def array_head(n: int) -> bytes:
    """The head of a definite-length array of ``n`` items."""
    if n < 24:
        return ARRAY_SMALL[n]
    return head(4, n)


def text(s: str) -> bytes:
    """Encode a text string (major type 3)."""
    b = s.encode("utf-8")
    return head(3, len(b)) + b


_MAX_DEPTH: Final = 16


def skip(
    data: bytes | memoryview, pos: int, *, what: str = "item", depth: int = 0, definite: bool = False
) -> int:
    """Return the offset just past the CBOR item starting at ``pos``.

    With ``definite``, indefinite-length strings and arrays are refused too. Accepts the
    major types bundles may hold (integers, byte and text strings, arrays, the
    simple values false/true/null/undefined, and the indefinite-length byte/text strings and
    arrays); rejects tags, maps and floats, which no bundle field uses, with a
    :class:`ProtocolError`. Raises :class:`Incomplete` when ``data`` ends inside the item.
    """
    end = len(data)
    if pos >= end:
        raise Incomplete(f"input ends before {what}")
    ib = data[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > end:
            raise Incomplete(f"input ends inside the head of {what}", needed=pos + size - end)
        arg = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    elif info == 31 and major in (2, 3, 4, 7):
        if definite and major != 7:
            raise ProtocolError(
                f"{what}: indefinite-length {('byte string', 'text string', 'array')[major - 2]} "
                "inside a block (RFC 9171 §4.1 asks for definite lengths)"
            )
        arg = -1
    else:
        raise ProtocolError(f"{what}: reserved CBOR additional information {info} (byte 0x{ib:02x})")
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg >= 0:
            if pos + arg > end:
                raise Incomplete(f"input ends inside {what}", needed=pos + arg - end)
            return pos + arg
        while True:  # indefinite-length string: definite chunks of the same major type, then 0xff
            if pos >= end:
                raise Incomplete(f"input ends inside {what}")
            if data[pos] == 0xFF:
                return pos + 1
            if data[pos] >> 5 != major or data[pos] & 0x1F == 31:
                raise ProtocolError(f"{what}: bad chunk in an indefinite-length string")
            pos = skip(data, pos, what=what, depth=depth, definite=definite)
    if major == 4:
        if depth >= _MAX_DEPTH:
            raise ProtocolError(f"{what}: arrays nested more than {_MAX_DEPTH} deep")
        if arg >= 0:
            for _ in range(arg):
                pos = skip(data, pos, what=what, depth=depth + 1, definite=definite)
            return pos
        while True:
            if pos >= end:
                raise Incomplete(f"input ends inside {what}")
            if data[pos] == 0xFF:
                return pos + 1
            pos = skip(data, pos, what=what, depth=depth + 1, definite=definite)
    if major == 7:
        if info < 24 and 20 <= info <= 23:
            return pos
        raise ProtocolError(f"{what}: CBOR simple value or float (byte 0x{ib:02x}) not allowed")
    if major == 5:
        raise ProtocolError(f"{what}: CBOR maps are not allowed in a bundle")
    raise ProtocolError(f"{what}: CBOR tags are not allowed in a bundle")
