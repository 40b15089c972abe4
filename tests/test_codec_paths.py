"""The bundle decoder's two paths agree: the fast parser of the deterministic encoding and the
careful path (C CBOR decoder, strict scanner) give the same bundle or the same error.

``decode_bundle_prefix`` tries the fast parser first and falls back on the careful path; here the
careful path is also run on its own (``bundle._decode_careful``), and the outcomes compared on
valid bundles, on mutated encodings and on random bytes, with the fast parser's caches both warm
and cold. The encoder's fast path is held to the general one the same way.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxima.bpv7 import (
    EID,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    decode_bundle_prefix,
    encode_bundle,
    encode_primary,
    payload_block,
)
from proxima.bpv7 import bundle as bundle_module
from proxima.bpv7.crc import CRCType, crc_of_block
from proxima.errors import LocalError, ProximaError
from proxima.speedups import compiled
from strategies import bundles

CODEC_COMPILED = compiled()["proxima.bpv7.bundle"]


def _clear_fast_caches() -> None:
    bundle_module._PRIMARY_PREFIX_OF.clear()
    bundle_module._LAST_PREFIX[0] = None
    bundle_module._KNOWN_CONTENT.clear()
    bundle_module._PRIMARY_PREFIXES.clear()


def _outcome(decode: Any, data: bytes, require_primary_crc: bool) -> tuple[Any, ...]:
    """What a decoder makes of ``data``: the result, or the error's class, message, reason, block."""
    try:
        return ("ok", decode(data, require_primary_crc))
    except ProximaError as exc:
        return ("error", type(exc), str(exc), exc.reason, getattr(exc, "block", None))


def _default(data: bytes, require_primary_crc: bool) -> tuple[Bundle, int]:
    return decode_bundle_prefix(data, require_primary_crc=require_primary_crc)


def _careful(data: bytes, require_primary_crc: bool) -> tuple[Bundle, int]:
    return bundle_module._decode_careful(bundle_module._check_start(data), require_primary_crc)


def _assert_paths_agree(data: bytes) -> tuple[Any, ...]:
    """Check both paths, with and without ``require_primary_crc``; return the outcome without."""
    outcomes = []
    for require_primary_crc in (False, True):
        fast = _outcome(_default, data, require_primary_crc)
        careful = _outcome(_careful, data, require_primary_crc)
        assert fast == careful, (data.hex(), require_primary_crc)
        outcomes.append(fast)
    return outcomes[0]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(), st.booleans())
def test_fast_parser_reads_every_deterministic_encoding(b: Bundle, cold: bool) -> None:
    if cold:
        _clear_fast_caches()
    enc = encode_bundle(b)
    parsed = bundle_module._parse_fast(enc)
    assert parsed is not None, enc.hex()
    assert parsed[0] == b
    assert parsed[1] == len(enc)
    assert parsed[3] is None  # no CRC failed
    assert _assert_paths_agree(enc) == ("ok", (b, len(enc)))
    assert _assert_paths_agree(enc + b"\x00\x9f") == ("ok", (b, len(enc)))


@st.composite
def mutated_encodings(draw: st.DrawFn) -> bytes:
    """A valid bundle's encoding with a few bytes replaced, inserted, deleted or bit-flipped,
    perhaps truncated or with a non-shortest head."""
    b = draw(bundles(max_payload=80))
    enc = bytearray(encode_bundle(b))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(enc) - 1))
        kind = draw(st.sampled_from(["replace", "flip", "insert", "delete", "widen", "truncate"]))
        if kind == "replace":
            enc[i] = draw(st.integers(0, 255))
        elif kind == "flip":
            enc[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            enc[i:i] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "delete":
            del enc[i]
        elif kind == "widen" and enc[i] < 24:  # the same small value in a longer head
            enc[i : i + 1] = bytes((0x18, enc[i]))
        elif kind == "truncate":
            del enc[i:]
        if not enc:
            enc = bytearray(b"\x9f")
    return bytes(enc)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_encodings(), st.booleans())
def test_paths_agree_on_mutated_encodings(data: bytes, cold: bool) -> None:
    if cold:
        _clear_fast_caches()
    _assert_paths_agree(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(max_payload=60), st.data())
def test_paths_agree_when_a_crc_fails(b: Bundle, data: st.DataObject) -> None:
    """Flip one bit of a CRC value: both paths name the same block."""
    b = Bundle(b.primary._replace(crc_type=2), tuple(blk._replace(crc_type=1) for blk in b.blocks))
    enc = bytearray(encode_bundle(b))
    items = cbor2.loads(bytes(enc))
    which = data.draw(st.integers(0, len(items) - 1))
    # The CRC value is the last 4 (primary) or 2 (other blocks) bytes of the block.
    end = 1
    for k in range(which + 1):
        end += len(cbor2.dumps(items[k]))
    enc[end - 1 - data.draw(st.integers(0, 1))] ^= 1 << data.draw(st.integers(0, 7))
    out = _assert_paths_agree(bytes(enc))
    assert out[0] == "error"
    assert "CRC check failed" in out[2]


@settings(max_examples=1000)
@given(st.binary(max_size=120), st.booleans())
@example(b"\x01", False)
@example(b"\x89\x07\x00\x02", False)
def test_paths_agree_on_random_bytes(tail: bytes, prefixed: bool) -> None:
    _assert_paths_agree(b"\x9f" + tail if prefixed else tail)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(max_payload=60), st.data())
def test_paths_agree_on_spliced_blocks(b: Bundle, data: st.DataObject) -> None:
    """Reorder, drop or duplicate whole blocks of a valid bundle: the rules, not the parser,
    must then speak, with the same words on both paths."""
    enc = encode_bundle(b)
    items = cbor2.loads(enc)
    parts = [cbor2.dumps(x) for x in items[1:]]
    assert b"".join([b"\x9f", cbor2.dumps(items[0]), *parts, b"\xff"]) == enc
    chosen = data.draw(st.lists(st.sampled_from(parts), max_size=5))
    _assert_paths_agree(b"".join([b"\x9f", cbor2.dumps(items[0]), *chosen, b"\xff"]))


def _encode_outcome(b: Bundle, fast: bool, **kwargs: bool) -> tuple[Any, ...]:
    encode = encode_bundle if fast else _encode_general
    try:
        return ("ok", encode(b, **kwargs))
    except LocalError as exc:
        return ("error", type(exc), str(exc), exc.reason)
    except Exception as exc:  # check=False on fields of the wrong type: the same misuse error
        if CODEC_COMPILED:  # the compiled module checks types where it reads them: a TypeError
            return ("misuse", type(exc))
        return ("misuse", type(exc), str(exc))


def _encode_general(
    b: Bundle, *, check: bool = True, require_primary_crc: bool = False, require_age_block: bool = True
) -> bytes:
    """encode_bundle without its fast path."""
    mode = bundle_module._mode(require_primary_crc, require_age_block)
    return bundle_module._encode_general(b, check, mode)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(max_payload=60), st.data(), st.booleans())
def test_encoder_paths_agree(b: Bundle, data: st.DataObject, cold: bool) -> None:
    if cold:
        _clear_fast_caches()
    blocks = list(b.blocks)
    edit = data.draw(
        st.sampled_from(["none", "drop", "duplicate", "swap", "renumber", "primary", "enums", "bools"])
    )
    if edit == "drop" and blocks:
        del blocks[data.draw(st.integers(0, len(blocks) - 1))]
    elif edit == "duplicate":
        blocks.insert(data.draw(st.integers(0, len(blocks))), data.draw(st.sampled_from(blocks)))
    elif edit == "swap" and len(blocks) > 1:
        blocks[0], blocks[-1] = blocks[-1], blocks[0]
    elif edit == "renumber":
        i = data.draw(st.integers(0, len(blocks) - 1))
        blocks[i] = blocks[i]._replace(number=data.draw(st.integers(0, 70)))
    elif edit == "primary":
        field = data.draw(st.sampled_from(["flags", "creation_time", "crc_type", "fragment_offset"]))
        value = data.draw(st.sampled_from([0, 1, 2, 3, 0x4006, -1, None]))
        b = Bundle(b.primary._replace(**{field: value}), b.blocks)  # type: ignore[arg-type]
    elif edit == "enums":  # the IntEnum and IntFlag classes of the module, where ints are expected
        b = Bundle(
            b.primary._replace(flags=BundleFlag(b.primary.flags), crc_type=CRCType(b.primary.crc_type)),
            b.blocks,
        )
        blocks = [
            blk._replace(
                type=BlockType(blk.type) if blk.type in {1, 6, 7, 10} else blk.type,
                flags=BlockFlag(blk.flags),
                crc_type=CRCType(blk.crc_type),
            )
            for blk in blocks
        ]
    elif edit == "bools":
        b = Bundle(b.primary._replace(crc_type=bool(b.primary.crc_type)), b.blocks)
        blocks = [blk._replace(crc_type=blk.crc_type == 1, flags=bool(blk.flags)) for blk in blocks]
    b = Bundle(b.primary, tuple(blocks))
    for kwargs in ({}, {"require_primary_crc": True}, {"check": False}):
        fast = _encode_outcome(b, True, **kwargs)
        general = _encode_outcome(b, False, **kwargs)
        assert fast == general, kwargs


@settings(max_examples=300)
@given(bundles(max_payload=0), st.sampled_from([None, 0, 1, 300, 70_000, 1 << 33]))
def test_primary_encoders_agree(b: Bundle, fragment_offset: int | None) -> None:
    p = b.primary
    if fragment_offset is not None:  # perhaps a fragment without the flag, or the flag alone
        p = p._replace(fragment_offset=fragment_offset)
    for q in (p, p._replace(flags=BundleFlag(p.flags), crc_type=CRCType(p.crc_type))):
        body = bundle_module._primary_body(q)
        assert encode_primary(q) == body + crc_of_block(body, q.crc_type)


@pytest.mark.parametrize("number", [0, 23, 24, 63, 64, 255, 256, 70_000, 1 << 40])
def test_large_block_numbers_and_types_take_both_paths_alike(number: int) -> None:
    b = _bundle_with(number)
    enc = encode_bundle(b)
    assert enc == _encode_general(b)
    assert _assert_paths_agree(enc) == ("ok", (b, len(enc)))


def _bundle_with(number: int) -> Bundle:
    primary = PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=1, crc_type=2)
    extra = CanonicalBlock(200 + number, max(number, 2), number & 0x7F, 1, b"x" * (number % 300))
    return Bundle(primary, (extra, payload_block(b"p" * 300, crc_type=2)))
