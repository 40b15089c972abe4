"""The BPv7 bundle codec: round trips, incremental input, CRCs, and every validity rule."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxima.bpv7 import (
    DTN_NONE,
    EID,
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    age_block,
    bundle_age_of,
    check_bundle,
    decode_bundle,
    decode_bundle_prefix,
    encode_bundle,
    hop_count_block,
    hop_count_of,
    payload_block,
    previous_node_block,
    previous_node_of,
    process_unknown_blocks,
)
from proxima.bpv7.crc import crc16_x25, crc32c
from proxima.errors import BundleError, CRCError, Incomplete, LocalError, ProximaError
from proxima.speedups import compiled
from strategies import bundles

SRC = EID.parse("ipn:1.1")
DST = EID.parse("ipn:2.1")


def _ref_crc16_x25(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _ref_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def simple(**primary: object) -> Bundle:
    fields: dict[str, object] = {
        "destination": DST,
        "source": SRC,
        "creation_time": 780_000_000_000,
        "sequence": 7,
        "lifetime": 3_600_000,
        "crc_type": 2,
    }
    fields.update(primary)
    return Bundle(PrimaryBlock(**fields), (payload_block(b"Bonjour depuis l'ISS", crc_type=2),))  # type: ignore[arg-type]


# --- CRC -----------------------------------------------------------------------------------


def test_crc_check_values() -> None:
    assert crc16_x25(b"123456789") == 0x906E == _ref_crc16_x25(b"123456789")
    assert crc32c(b"123456789") == 0xE3069283 == _ref_crc32c(b"123456789")


@given(st.binary(max_size=300))
def test_crc_library_matches_reference(data: bytes) -> None:
    assert crc16_x25(data) == _ref_crc16_x25(data)
    assert crc32c(data) == _ref_crc32c(data)


@pytest.mark.parametrize("crc_type", [1, 2])
def test_crc_covers_block_bytes_with_only_value_zeroed(crc_type: int) -> None:
    """Erratum 8043: the CRC byte string head stays, its value bytes are zeroed."""
    enc = encode_bundle(simple(crc_type=crc_type))
    n = 2 if crc_type == 1 else 4
    primary_end = 1 + len(cbor2.dumps(cbor2.loads(enc)[0]))
    primary = enc[1:primary_end]
    zeroed = primary[:-n] + bytes(n)
    ref = _ref_crc16_x25(zeroed) if crc_type == 1 else _ref_crc32c(zeroed)
    assert primary[-n - 1] == (0x42 if crc_type == 1 else 0x44)
    assert int.from_bytes(primary[-n:], "big") == ref


def test_known_encoding() -> None:
    b = Bundle(
        PrimaryBlock(DST, SRC, DTN_NONE, 780_000_000_000, 7, 3_600_000, 0, 1),
        (payload_block(b"hi", crc_type=0),),
    )
    enc = encode_bundle(b)
    body = bytes.fromhex("8907000182028202018202820101820100821b000000b59b9f7800071a0036ee8042")
    crc = _ref_crc16_x25(body + b"\0\0").to_bytes(2, "big")
    assert enc == b"\x9f" + body + crc + bytes.fromhex("85010100004268 69ff".replace(" ", ""))


# --- round trips and incremental input ----------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(bundles())
def test_round_trip(b: Bundle) -> None:
    enc = encode_bundle(b)
    assert decode_bundle(enc) == b
    assert encode_bundle(decode_bundle(enc)) == enc


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(max_payload=40))
def test_every_prefix_is_incomplete(b: Bundle) -> None:
    enc = encode_bundle(b)
    for i in range(len(enc)):
        with pytest.raises(Incomplete):
            decode_bundle(enc[:i])


@settings(max_examples=100)
@given(bundles(max_payload=100), st.binary(min_size=1, max_size=20))
def test_trailing_bytes(b: Bundle, tail: bytes) -> None:
    enc = encode_bundle(b)
    assert decode_bundle_prefix(enc + tail) == (b, len(enc))
    with pytest.raises(BundleError, match="trailing byte"):
        decode_bundle(enc + tail)


def test_two_bundles_back_to_back() -> None:
    a, b = encode_bundle(simple(sequence=1)), encode_bundle(simple(sequence=2))
    first, end = decode_bundle_prefix(a + b)
    second, end2 = decode_bundle_prefix((a + b)[end:])
    assert (first.primary.sequence, second.primary.sequence, end + end2) == (1, 2, len(a + b))


@settings(max_examples=300)
@given(bundles(max_payload=60), st.data())
def test_mutations_raise_only_proxima_errors(b: Bundle, data: st.DataObject) -> None:
    enc = bytearray(encode_bundle(b))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(enc) - 1))
        enc[i] = data.draw(st.integers(0, 255))
    try:
        decode_bundle(bytes(enc))
    except ProximaError:
        pass


@settings(max_examples=500)
@given(st.binary(max_size=200))
@example(b"\x9f" + b"\x81" * 5000)
@example(b"\x9f\x5b\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\x9f\xd8\x1c\x81\xd8\x1d\x00\xff")
def test_random_bytes_raise_only_proxima_errors(data: bytes) -> None:
    try:
        decode_bundle(data)
    except ProximaError:
        pass


@settings(max_examples=200)
@given(bundles(max_payload=60), st.data())
def test_bit_flip_fails_crc_or_rule(b: Bundle, data: st.DataObject) -> None:
    """With a CRC on every block, any single bit flip inside a block is detected."""
    b = Bundle(b.primary._replace(crc_type=2), tuple(blk._replace(crc_type=2) for blk in b.blocks))
    enc = bytearray(encode_bundle(b))
    i = data.draw(st.integers(1, len(enc) - 2))
    enc[i] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(ProximaError):
        decode_bundle(bytes(enc))


# --- non-canonical but valid encodings ----------------------------------------------------


def _bytes_with_crc(items: list[bytes], crc_type: int) -> bytes:
    """A block from already-encoded items; the CRC (last item) is computed here."""
    head = bytes([0x80 | (len(items) + 1)])
    body = head + b"".join(items)
    if crc_type == 1:
        body += b"\x42"
        return body + _ref_crc16_x25(body + b"\0\0").to_bytes(2, "big")
    body += b"\x44"
    return body + _ref_crc32c(body + b"\0\0\0\0").to_bytes(4, "big")


def test_non_shortest_integers_are_accepted_and_crc_checked_over_received_bytes() -> None:
    primary = _bytes_with_crc(
        [
            b"\x07",
            b"\x18\x00",  # flags 0, in a longer form than needed
            b"\x02",
            DST.cbor,
            SRC.cbor,
            DTN_NONE.cbor,
            b"\x82\x1b\x00\x00\x00\xb5\x9b\x9f\x78\x00\x19\x00\x07",  # sequence 7 in 3 bytes
            b"\x1a\x00\x36\xee\x80",
        ],
        2,
    )
    payload = _bytes_with_crc([b"\x01", b"\x01", b"\x00", b"\x01", b"\x42hi"], 1)
    enc = b"\x9f" + primary + payload + b"\xff"
    b = decode_bundle(enc)
    assert (b.primary.sequence, b.primary.flags, b.payload) == (7, 0, b"hi")
    assert encode_bundle(b) != enc  # re-encoding is the deterministic form
    assert decode_bundle(encode_bundle(b)) == b
    bad = bytearray(enc)
    bad[enc.index(b"\x19\x00\x07") + 2] = 0x08  # sequence 8: only the CRC can tell
    with pytest.raises(CRCError, match="primary block"):
        decode_bundle(bytes(bad))


def test_indefinite_length_data_is_refused() -> None:
    """RFC 9171 §4.1/§4.3.2: block-type-specific data is one definite-length byte string."""
    primary = _bytes_with_crc(
        [b"\x07", b"\x00", b"\x02", DST.cbor, SRC.cbor, DTN_NONE.cbor, b"\x82\x01\x00", b"\x01"], 2
    )
    payload = _bytes_with_crc([b"\x01", b"\x01", b"\x00", b"\x02", b"\x5f\x41h\x41i\xff"], 2)
    with pytest.raises(BundleError, match="indefinite-length byte string inside a block"):
        decode_bundle(b"\x9f" + primary + payload + b"\xff")


def test_crc_with_a_long_head_is_refused() -> None:
    """RFC 9171 §4.2.2: the CRC is a byte string of 2 or 4 bytes, head 0x42 or 0x44."""
    primary = _bytes_with_crc(
        [b"\x07", b"\x00", b"\x01", DST.cbor, SRC.cbor, DTN_NONE.cbor, b"\x82\x01\x00", b"\x01"], 1
    )
    long_head = primary[:-3] + b"\x58\x02" + primary[-2:]  # same value, non-shortest head
    with pytest.raises(BundleError, match="one-byte head"):
        decode_bundle(b"\x9f" + long_head + cbor2.dumps([1, 1, 0, 0, b"hi"]) + b"\xff")


# --- validity rules -----------------------------------------------------------------------


def _raw(primary: list[object], *blocks: list[object]) -> bytes:
    return b"\x9f" + b"".join(cbor2.dumps(x) for x in (primary, *blocks)) + b"\xff"


P = [7, 0, 0, [2, [2, 1]], [2, [1, 1]], [1, 0], [780_000_000_000, 1], 3_600_000]
PAY = [1, 1, 0, 0, b"hi"]

RULES: list[tuple[str, bytes, str, int]] = [
    ("definite outer array", b"\x82" + cbor2.dumps(P) + cbor2.dumps(PAY), "indefinite-length", 8),
    ("not an array", b"\x01", "not a bundle", 8),
    ("version 6", _raw([6, *P[1:]], PAY), "version 6", 8),
    ("too few primary fields", _raw(P[:7], PAY), "at least 8", 8),
    ("fields vs flags", _raw([7, 1, *P[2:]], PAY), "call for 10", 8),
    ("fields vs crc", _raw([7, 0, 2, *P[3:]], PAY), "call for 9", 8),
    ("crc type 3", _raw([7, 0, 3, *P[3:], b"\0\0"], PAY), "unknown CRC type 3", 8),
    ("crc length", _raw([7, 0, 1, *P[3:], b"\0\0\0\0"], PAY), "2 bytes", 8),
    ("bad destination", _raw([7, 0, 0, [2, [1]], *P[4:]], PAY), "destination", 5),
    ("bad source", _raw([7, 0, 0, P[3], [9, 1], *P[5:]], PAY), "source", 8),
    ("bad report-to", _raw([7, 0, 0, P[3], P[4], [1, "x"], *P[6:]], PAY), "report-to", 8),
    ("timestamp shape", _raw([*P[:6], [1], P[7]], PAY), "creation timestamp", 8),
    ("negative lifetime", _raw([*P[:7], -1], PAY), "lifetime", 8),
    ("flags not int", _raw([7, "0", *P[2:]], PAY), "flags", 8),
    (
        "anonymous without must-not-fragment",
        _raw([7, 0, 0, P[3], [1, 0], *P[5:]], PAY),
        "must not fragment",
        8,
    ),
    (
        "anonymous requesting reports",
        _raw([7, 0x4004, 0, P[3], [1, 0], *P[5:]], PAY),
        "must not request status reports",
        8,
    ),
    ("admin record with reports", _raw([7, 0x20002, *P[2:]], PAY), "administrative record", 8),
    ("creation time 0 without age", _raw([*P[:6], [0, 1], P[7]], PAY), "bundle age block", 8),
    (
        "fragment beyond total",
        _raw([7, 1, 0, *P[3:], 10, 11], PAY),
        "exceeds the total ADU length",
        8,
    ),
    ("no payload", _raw(P), "no payload", 8),
    ("payload not last", _raw(P, PAY, [7, 2, 0, 0, b"\x00"]), "last block", 8),
    ("two payloads", _raw(P, [1, 2, 0, 0, b""], PAY), "last block", 8),
    ("payload number", _raw(P, [1, 5, 0, 0, b"hi"]), "block number 5", 8),
    ("block number 0", _raw(P, [9, 0, 0, 0, b""], PAY), "block number 0", 0),
    ("duplicate number", _raw(P, [9, 3, 0, 0, b""], [9, 3, 0, 0, b""], PAY), "used twice", 8),
    ("block field count", _raw(P, [9, 3, 0, 0], PAY), "5, or 6", 8),
    ("block crc missing", _raw(P, [9, 3, 0, 1, b""], PAY), "CRC type 1 but 5 fields", 8),
    ("block data not bytes", _raw(P, [9, 3, 0, 0, "text"], PAY), "byte string", 8),
    ("block type negative", _raw(P, [-1, 3, 0, 0, b""], PAY), "block type", 8),
    ("two age blocks", _raw(P, [7, 2, 0, 0, b"\x00"], [7, 3, 0, 0, b"\x01"], PAY), "more than one", 8),
    ("age not uint", _raw(P, [7, 2, 0, 0, b"\x41a"], PAY), "bundle age block 2", 8),
    ("hop limit 0", _raw(P, [10, 2, 0, 0, b"\x82\x00\x00"], PAY), "outside 1..255", 8),
    ("hop limit 256", _raw(P, [10, 2, 0, 0, b"\x82\x19\x01\x00\x00"], PAY), "outside 1..255", 8),
    ("hop count shape", _raw(P, [10, 2, 0, 0, b"\x81\x01"], PAY), "[hop limit, hop count]", 8),
    ("previous node garbage", _raw(P, [6, 2, 0, 0, b"\x82\x02"], PAY), "previous node block 2", 8),
    (
        "tag inside",
        b"\x9f" + cbor2.dumps(P)[:-5] + b"\xc1" + cbor2.dumps(P)[-5:] + cbor2.dumps(PAY) + b"\xff",
        "tag",
        8,
    ),
    ("map as block", _raw(P, {1: 2}, PAY), "maps are not allowed", 8),  # type: ignore[arg-type]
    ("float lifetime", _raw([*P[:7], 1.5], PAY), "float", 8),
    ("empty bundle", b"\x9f\xff", "no primary block", 8),
    ("primary not an array", _raw(5, PAY), "primary block must be a CBOR array", 8),  # type: ignore[arg-type]
    ("fragment offset not uint", _raw([7, 1, 0, *P[3:], "x", 11], PAY), "fragment offset", 8),
    ("total ADU length not uint", _raw([7, 1, 0, *P[3:], 0, -1], PAY), "total application data unit", 8),
    ("creation time not uint", _raw([*P[:6], ["a", 1], P[7]], PAY), "creation time", 8),
    ("sequence negative", _raw([*P[:6], [1, -1], P[7]], PAY), "sequence number", 8),
    ("block crc wrong length", _raw(P, [9, 3, 0, 1, b"", b"\0\0\0"], PAY), "2 bytes", 8),
    ("block crc with type 0", _raw(P, [9, 3, 0, 0, b"", b"\0\0"], PAY), "CRC type 0 but 6 fields", 8),
    ("block number not uint", _raw(P, [9, "3", 0, 0, b""], PAY), "block number", 8),
    ("block flags negative", _raw(P, [9, 3, -1, 0, b""], PAY), "block processing control flags", 8),
    (
        "two previous node blocks",
        _raw(P, [6, 2, 0, 0, b"\x82\x02\x82\x01\x00"], [6, 3, 0, 0, b"\x82\x02\x82\x01\x00"], PAY),
        "more than one previous node",
        8,
    ),
    (
        "two hop count blocks",
        _raw(P, [10, 2, 0, 0, b"\x82\x05\x00"], [10, 3, 0, 0, b"\x82\x05\x00"], PAY),
        "more than one hop count",
        8,
    ),
    (
        "report flag in admin record",
        _raw([7, 2, *P[2:]], [1, 1, 2, 0, b"hi"]),
        "administrative record (RFC 9171 §4.2.4)",
        8,
    ),
    (
        "report flag in anonymous bundle",
        _raw([7, 4, 0, P[3], [1, 0], *P[5:]], [1, 1, 2, 0, b"hi"]),
        "anonymous bundle (RFC 9171 §4.2.4)",
        8,
    ),
    ("non-singleton source", _raw([7, 0, 0, P[3], [1, "//x/~grp"], *P[5:]], PAY), "not a node ID", 8),
    ("previous node dtn:none", _raw(P, [6, 2, 0, 0, b"\x82\x01\x00"], PAY), "dtn:none is not a node ID", 8),
    (
        "previous node non-singleton",
        _raw(P, [6, 2, 0, 0, cbor2.dumps([1, "//x/~all"])], PAY),
        "is not a node ID",
        8,
    ),
]


@pytest.mark.parametrize(("name", "data", "fragment", "reason"), RULES, ids=[r[0] for r in RULES])
def test_validity_rule(name: str, data: bytes, fragment: str, reason: int) -> None:
    with pytest.raises(BundleError) as info:
        decode_bundle(data)
    assert fragment in str(info.value), str(info.value)
    assert info.value.reason == (Reason.BLOCK_UNINTELLIGIBLE if reason == 0 else reason)


def test_primary_crc_requirement_is_optional() -> None:
    raw = _raw(P, PAY)
    assert decode_bundle(raw).payload == b"hi"
    with pytest.raises(BundleError, match="no CRC"):
        decode_bundle(raw, require_primary_crc=True)
    bib_on_primary = [11, 2, 0, 0, b"\x81\x00\x01\x01\x82\x02\x82\x01\x00\x81\x80"]
    assert decode_bundle(_raw(P, bib_on_primary, PAY), require_primary_crc=True).payload == b"hi"


def test_crc_mismatch_names_block() -> None:
    b = Bundle(simple().primary, (hop_count_block(10, crc_type=1, number=3), payload_block(b"x", crc_type=2)))
    enc = bytearray(encode_bundle(b))
    enc[-2] ^= 0xFF
    with pytest.raises(CRCError, match=r"block 1 \(type 1\)") as info:
        decode_bundle(bytes(enc))
    assert info.value.block == 1
    assert info.value.reason == Reason.BLOCK_UNINTELLIGIBLE


@pytest.mark.parametrize(
    ("bundle", "fragment"),
    [
        (simple(creation_time=0), "bundle age block"),
        (simple(flags=1), "fragment offset and total ADU length"),
        (simple(fragment_offset=3, total_adu_length=9), "'is fragment' flag is clear"),
        (simple(source=DTN_NONE), "anonymous"),
        (simple(crc_type=5), "unknown CRC type"),
        (simple(lifetime=-5), "lifetime"),
        (simple(destination="ipn:1.1"), "destination is not an endpoint ID"),
        (Bundle(simple().primary, ()), "no payload"),
    ],
)
def test_encoder_refuses_invalid_bundles(bundle: Bundle, fragment: str) -> None:
    with pytest.raises(LocalError) as info:
        encode_bundle(bundle)
    assert fragment in str(info.value)
    with pytest.raises(LocalError):
        check_bundle(bundle)


def test_encoder_refuses_block_data_that_is_not_bytes() -> None:
    """A caller that ignores the types: the compiled codec checks them where it reads them
    (a TypeError), the Python one as a bundle rule (a LocalError); both name bytes."""
    bundle = Bundle(simple().primary, (CanonicalBlock(1, 1, 0, 0, "text"),))  # type: ignore[arg-type]
    expected: type[Exception] = TypeError if compiled()["proxima.bpv7.bundle"] else LocalError
    with pytest.raises(expected, match="bytes"):
        encode_bundle(bundle)
    with pytest.raises(LocalError, match="must be bytes"):
        check_bundle(bundle)


def test_known_block_accessors() -> None:
    b = Bundle(
        simple().primary,
        (
            previous_node_block(EID.parse("dtn://relay/"), number=2),
            age_block(1234, number=3),
            hop_count_block(30, 4, number=4),
            payload_block(b"x"),
        ),
    )
    d = decode_bundle(encode_bundle(b))
    assert previous_node_of(d) == EID.parse("dtn://relay/")
    assert bundle_age_of(d) == 1234
    assert hop_count_of(d) == (30, 4)
    assert d.id == (SRC, 780_000_000_000, 7, None, None)
    assert d.block(4) == b.blocks[2]


# --- unknown blocks are handled by their flags --------------------------------------------


@pytest.mark.parametrize(
    ("flags", "kept", "report", "deleted"),
    [
        (0, True, False, False),
        (BlockFlag.REPLICATE, True, False, False),
        (BlockFlag.REPORT_IF_UNPROCESSED, True, True, False),
        (BlockFlag.DELETE_BLOCK_IF_UNPROCESSED, False, False, False),
        (BlockFlag.DELETE_BLOCK_IF_UNPROCESSED | BlockFlag.REPORT_IF_UNPROCESSED, False, True, False),
        (BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED, False, False, True),
        (BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED | BlockFlag.REPORT_IF_UNPROCESSED, False, True, True),
    ],
)
def test_unknown_block_flags(flags: int, kept: bool, report: bool, deleted: bool) -> None:
    unknown = CanonicalBlock(193, 5, int(flags), 0, b"\x01\x02")
    b = Bundle(simple().primary, (unknown, payload_block(b"x")))
    b = decode_bundle(encode_bundle(b))  # unknown blocks decode and re-encode verbatim
    assert b.blocks[0] == unknown
    out = process_unknown_blocks(b)
    assert out.unprocessed == (5,)
    assert out.report is report
    assert out.reason == Reason.BLOCK_UNSUPPORTED
    if deleted:
        assert out.bundle is None
    else:
        assert out.bundle is not None
        assert (unknown in out.bundle.blocks) is kept


def test_no_unknown_blocks_is_a_no_op() -> None:
    b = simple()
    out = process_unknown_blocks(b)
    assert out.bundle is b and not out.report and out.unprocessed == ()


def test_bundle_flag_values_follow_rfc() -> None:
    assert int(BundleFlag.REPORT_DELETION) == 0x40000
    assert int(BundleFlag.STATUS_TIME_REQUESTED) == 0x40


def test_age_block_rule_can_be_waived_for_rfc_9173_examples() -> None:
    raw = _raw([*P[:6], [0, 1], P[7]], PAY)
    with pytest.raises(BundleError, match="bundle age block"):
        decode_bundle(raw)
    b = decode_bundle(raw, require_age_block=False)
    assert b.primary.creation_time == 0
    assert encode_bundle(b, require_age_block=False) == raw
    with pytest.raises(LocalError, match="bundle age block"):
        encode_bundle(b)
    check_bundle(b, require_age_block=False)


def test_encrypted_extension_block_content_is_not_parsed() -> None:
    """A BCB may replace a bundle age block's content with ciphertext (RFC 9172)."""
    asb = bytes.fromhex("8102") + b"\x02\x01" + EID.parse("ipn:1.0").cbor + b"\x81\x82\x01\x41\x00"
    ciphertext_age = CanonicalBlock(7, 2, 0, 0, b"\x41\x99\x42\x01\x02")
    bcb = CanonicalBlock(12, 3, 1, 0, asb)
    b = Bundle(simple().primary, (ciphertext_age, bcb, payload_block(b"x")))
    assert decode_bundle(encode_bundle(b)) == b
    without_bcb = Bundle(simple().primary, (ciphertext_age, payload_block(b"x")))
    with pytest.raises(LocalError, match="bundle age block 2"):
        encode_bundle(without_bcb)
