"""Administrative records and bundle status reports (RFC 9171 §6.1)."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxima.bpv7.admin import (
    NOT_ASSERTED,
    StatusItem,
    StatusReport,
    UnknownAdminRecord,
    admin_record_of,
    decode_admin_record,
    encode_admin_record,
    make_status_report_bundle,
    status_report_of,
)
from proxima.bpv7.bundle import (
    BlockType,
    Bundle,
    BundleFlag,
    PrimaryBlock,
    Reason,
    decode_bundle,
    encode_bundle,
    payload_block,
)
from proxima.bpv7.crc import CRCType
from proxima.bpv7.eid import DTN_NONE, EID, DtnEID, IpnEID
from proxima.errors import BundleError, Incomplete, LocalError, ProximaError

U64 = (1 << 64) - 1
BAD = Reason.BLOCK_UNINTELLIGIBLE

# ---------------------------------------------------------------------------------------------
# Strategies.

u64 = st.one_of(st.integers(0, 30), st.integers(0, U64))
eids = st.one_of(
    st.builds(IpnEID, u64, u64),
    st.builds(
        lambda node, demux: DtnEID(f"//{node}/{demux}"),
        st.text("abcxyz019-._", min_size=1, max_size=12),
        st.text("abc/~09!", max_size=12),
    ),
    st.just(DTN_NONE),
)
items = st.one_of(
    st.just(NOT_ASSERTED),
    st.just(StatusItem(True)),
    st.builds(StatusItem, st.just(True), u64),
)
reasons = st.one_of(st.sampled_from(list(Reason)), st.integers(17, 300), st.integers(0, U64))


@st.composite
def reports(draw: st.DrawFn) -> StatusReport:
    frag = draw(st.booleans())
    return StatusReport(
        draw(eids),
        draw(u64),
        draw(u64),
        draw(items),
        draw(items),
        draw(items),
        draw(items),
        draw(reasons),
        draw(u64) if frag else None,
        draw(u64) if frag else None,
    )


def enc(v: object) -> bytes:
    return cbor2.dumps(v)


def good_report_value() -> list[object]:
    return [[[True, 5], [False], [True], [False]], 3, [2, [7, 1]], [1000, 4]]


def record(content: object) -> bytes:
    return enc([1, content])


SUBJECT = Bundle(
    PrimaryBlock(
        destination=EID.parse("ipn:9.1"),
        source=EID.parse("ipn:7.1"),
        report_to=EID.parse("ipn:7.0"),
        creation_time=1000,
        sequence=4,
        flags=BundleFlag.REPORT_RECEPTION | BundleFlag.REPORT_DELIVERY,
    ),
    (payload_block(b"hello"),),
)
NODE = EID.parse("ipn:8.0")


# ---------------------------------------------------------------------------------------------
# Codec round trips.


@given(reports())
def test_report_round_trip(r: StatusReport) -> None:
    b = encode_admin_record(r)
    assert decode_admin_record(b) == r
    assert encode_admin_record(decode_admin_record(b)) == b


@given(reports())
def test_encoding_is_shortest_cbor(r: StatusReport) -> None:
    # cbor2 writes shortest-form heads and definite lengths: the deterministic encoding.
    b = encode_admin_record(r)
    value = [
        [[i.asserted] if i.time is None else [True, i.time] for i in r.items],
        int(r.reason),
        r.source.to_value(),
        [r.creation_time, r.sequence],
    ]
    if r.fragment_offset is not None:
        value += [r.fragment_offset, r.fragment_length]
    assert b == enc([1, value])


@given(
    st.lists(
        st.one_of(st.just([False]), st.just([True]), st.tuples(st.just(True), u64).map(list)),
        min_size=4,
        max_size=4,
    ),
    st.integers(0, U64),
    st.sampled_from([[2, [7, 1]], [1, "//n/x"], [1, 0]]),
    st.tuples(u64, u64).map(list),
    st.one_of(st.just([]), st.tuples(u64, u64).map(list)),
)
def test_decode_then_encode_is_identity(
    info: list[object], reason: int, source: object, ts: list[int], frag: list[int]
) -> None:
    b = record([info, reason, source, ts, *frag])
    assert encode_admin_record(decode_admin_record(b)) == b


def test_known_reason_becomes_enum_and_unknown_stays_int() -> None:
    r = decode_admin_record(record(good_report_value()))
    assert isinstance(r, StatusReport)
    assert r.reason is Reason.TRANSMISSION_CANCELED
    v = good_report_value()
    v[1] = 200
    r = decode_admin_record(record(v))
    assert isinstance(r, StatusReport)
    assert r.reason == 200
    assert not isinstance(r.reason, Reason)


def test_decoded_fields() -> None:
    r = decode_admin_record(record([*good_report_value(), 10, 20]))
    assert r == StatusReport(
        IpnEID(7, 1),
        1000,
        4,
        received=StatusItem(True, 5),
        delivered=StatusItem(True),
        reason=Reason.TRANSMISSION_CANCELED,
        fragment_offset=10,
        fragment_length=20,
    )
    assert isinstance(r, StatusReport)
    assert r.subject_id == (IpnEID(7, 1), 1000, 4, 10, 20)
    assert r.items[1] == NOT_ASSERTED


@pytest.mark.parametrize(
    "mask", range(16), ids=lambda m: "".join("RFDX"[i] if m >> i & 1 else "-" for i in range(4))
)
def test_any_combination_of_asserted_items(mask: int) -> None:
    # ION may merge several assertions in one report: every combination decodes.
    info = [[True, 100 + i] if mask >> i & 1 else [False] for i in range(4)]
    r = decode_admin_record(record([info, 0, [2, [7, 1]], [1, 2]]))
    assert isinstance(r, StatusReport)
    assert [i.asserted for i in r.items] == [bool(mask >> i & 1) for i in range(4)]


def test_non_canonical_encoding_is_accepted() -> None:
    # Indefinite-length arrays and a non-shortest integer: well-formed, so accepted.
    canonical = record(good_report_value())
    loose = (
        b"\x9f\x01\x9f\x84\x82\xf5\x05\x81\xf4\x81\xf5\x81\xf4"
        b"\x19\x00\x03\x82\x02\x82\x07\x01\x82\x19\x03\xe8\x04\xff\xff"
    )
    assert decode_admin_record(loose) == decode_admin_record(canonical)
    assert encode_admin_record(decode_admin_record(loose)) == canonical


@pytest.mark.parametrize(
    "extra",
    [[[False]], [[True, 7]], [[True], [False], [True, 1]], [5], ["future", b"x", [1, [2]], None]],
    ids=["one false", "one timed", "three items", "an int", "anything"],
)
def test_status_information_may_hold_more_than_four_items(extra: list[object]) -> None:
    # RFC 9171 §6.1.1: the bundle status information is "a CBOR array of at least 4 elements".
    # The first four are decoded; the rest (future status assertions) are ignored.
    canonical = record(good_report_value())
    longer = good_report_value()
    info = longer[0]
    assert isinstance(info, list)
    longer[0] = [*info, *extra]
    r = decode_admin_record(record(longer))
    assert r == decode_admin_record(canonical)
    assert encode_admin_record(r) == canonical
    frag = decode_admin_record(record([*longer, 10, 20]))
    assert isinstance(frag, StatusReport)
    assert (frag.received, frag.fragment_offset, frag.fragment_length) == (StatusItem(True, 5), 10, 20)


# ---------------------------------------------------------------------------------------------
# Unknown record types.


@pytest.mark.parametrize(
    "content",
    [
        b"\x00",
        b"\xa1\x01\x02",  # a map
        b"\xc1\x1a\x00\x00\x00\x01",  # a tag
        b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00",  # a float
        b"\x9f\x01\x02\xff",
        b"\x5f\x41\x01\xff",
        b"\xf8\x20",
    ],
)
@pytest.mark.parametrize("record_type", [0, 2, 3, 4, 255, 70000])
def test_unknown_record_types_stay_opaque(content: bytes, record_type: int) -> None:
    data = b"\x82" + enc(record_type) + content
    r = decode_admin_record(data)
    assert r == UnknownAdminRecord(record_type, content)
    assert encode_admin_record(r) == data


@given(st.integers(2, U64), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), U64) | st.binary(max_size=8)
    | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=8,
))
def test_unknown_record_round_trip(record_type: int, content: object) -> None:
    raw = enc(content)
    data = b"\x82" + enc(record_type) + raw
    r = decode_admin_record(data)
    assert r == UnknownAdminRecord(record_type, raw)
    assert encode_admin_record(r) == data


# ---------------------------------------------------------------------------------------------
# Truncation, trailing bytes, garbage.


@given(st.one_of(
    reports().map(encode_admin_record),
    st.just(b"\x82\x03\xa1\x01\x82\x02\x03"),
))
def test_every_prefix_raises_a_proxima_error(data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises((Incomplete, BundleError)):
            decode_admin_record(data[:n])


def test_prefix_errors_say_truncated() -> None:
    data = encode_admin_record(StatusReport(IpnEID(1, 1), 5, 6, StatusItem(True, 9)))
    for n in range(1, len(data)):
        with pytest.raises(BundleError, match="truncated") as info:
            decode_admin_record(data[:n])
        assert info.value.reason == BAD
        assert info.value.block == 1
    with pytest.raises(BundleError, match="empty"):
        decode_admin_record(b"")


@given(reports(), st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(r: StatusReport, extra: bytes) -> None:
    with pytest.raises(BundleError, match="trailing bytes") as info:
        decode_admin_record(encode_admin_record(r) + extra)
    assert info.value.reason == BAD


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_proxima_errors(data: bytes) -> None:
    with contextlib.suppress(ProximaError):
        decode_admin_record(data)


@given(reports(), st.data())
def test_mutated_reports_raise_only_proxima_errors(r: StatusReport, data: st.DataObject) -> None:
    b = bytearray(encode_admin_record(r))
    i = data.draw(st.integers(0, len(b) - 1))
    b[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProximaError):
        decode_admin_record(bytes(b))


def test_deep_nesting_is_refused_not_crashing() -> None:
    deep = b"\x81" * 100 + b"\x00"
    with pytest.raises(BundleError, match="nested"):
        decode_admin_record(b"\x82\x03" + deep)


# ---------------------------------------------------------------------------------------------
# Validity rules, one violating input each.


def with_field(index: int, value: object) -> bytes:
    v = good_report_value()
    v[index] = value
    return record(v)


def with_item(index: int, value: object) -> bytes:
    v = good_report_value()
    info = v[0]
    assert isinstance(info, list)
    info[index] = value
    return record(v)


RULES: list[tuple[str, bytes, str]] = [
    ("not an array", enc(1), "must be a CBOR array"),
    ("record is a map", enc({1: 2}), "must be a CBOR array"),
    ("one item", enc([1]), "has 1 items"),
    ("three items", enc([1, good_report_value(), 0]), "has 3 items"),
    ("record type negative", enc([-1, 0]), "record type code must be an unsigned integer"),
    ("record type text", enc(["1", 0]), "record type code must be an unsigned integer"),
    ("record type tagged", b"\x82\xc2\x41\x01\x00", "record type code must be an unsigned"),
    ("report not array", record(7), "status report must be a CBOR array"),
    ("report 3 items", record(good_report_value()[:3]), "has 3 items; it must have 4, or 6"),
    ("report 5 items", record([*good_report_value(), 1]), "has 5 items"),
    ("report 7 items", record([*good_report_value(), 1, 2, 3]), "has 7 items"),
    ("info not array", with_field(0, 5), "array of at least 4 status items"),
    ("info 3 items", with_field(0, [[False]] * 3), "array of at least 4 status items"),
    ("info empty", with_field(0, []), "array of at least 4 status items"),
    ("info 5th item bad CBOR kind", with_field(0, [[False]] * 4 + [{1: 2}]), "maps are not allowed"),
    ("item not array", with_item(0, True), "'received' status item must be"),
    ("item empty", with_item(1, []), "'forwarded' status item must be"),
    ("item 3 long", with_item(2, [True, 1, 2]), "'delivered' status item must be"),
    ("indicator int", with_item(3, [1]), "'deleted' status item: the status indicator must be"),
    ("indicator null", with_item(0, [None, 5]), "status indicator must be a CBOR boolean"),
    ("time when false", with_item(0, [False, 5]), "a time is present but the status is not"),
    ("time negative", with_item(0, [True, -1]), "'received' status time must be an unsigned"),
    ("time text", with_item(1, [True, "5"]), "'forwarded' status time must be an unsigned"),
    ("time bool", with_item(1, [True, True]), "'forwarded' status time must be an unsigned"),
    ("time bignum", with_item(1, [True, 2**64]), "status report: "),
    ("reason bool", with_field(1, True), "the reason code must be an unsigned integer"),
    ("reason negative", with_field(1, -3), "the reason code must be an unsigned integer"),
    ("source not eid", with_field(2, 5), "subject source EID"),
    ("source bad scheme", with_field(2, [9, 1]), "subject source EID: unknown endpoint ID scheme"),
    ("source bad dtn", with_field(2, [1, "nonsense"]), "subject source EID: malformed dtn"),
    ("timestamp not array", with_field(3, 5), "creation timestamp must be [time, sequence"),
    ("timestamp 3 items", with_field(3, [1, 2, 3]), "creation timestamp must be [time, sequence"),
    ("time not uint", with_field(3, [-1, 2]), "subject creation time must be an unsigned"),
    ("sequence not uint", with_field(3, [1, b"x"]), "subject sequence number must be an unsigned"),
    ("offset not uint", record([*good_report_value(), "0", 2]), "subject fragment offset must"),
    ("length not uint", record([*good_report_value(), 0, -2]), "subject payload length must"),
    ("map in report", record([*good_report_value()[:3], {1: 2}]), "maps are not allowed"),
    ("float in report", with_field(1, 1.5), "float"),
    ("undefined", with_field(1, cbor2.undefined), "reason code must be an unsigned integer"),
    (
        "bad utf-8",
        b"\x82\x01\x84\x84\x81\xf4\x81\xf4\x81\xf4\x81\xf5\x00\x82\x01\x62\xff\xfe\x82\x00\x00",
        "not valid CBOR",
    ),
    ("reserved info", b"\x82\x01\x1c", "malformed CBOR"),
    ("lone break", b"\x82\x01\xff", "malformed CBOR"),
    ("bad simple", b"\x82\x03\xf8\x05", "malformed CBOR"),
    ("bad string chunk", b"\x82\x03\x5f\x61\x61\xff", "malformed CBOR"),
]


@pytest.mark.parametrize(("data", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_validity_rules(data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)) as info:
        decode_admin_record(data)
    assert info.value.reason == BAD
    assert info.value.block == 1


ENCODE_RULES: list[tuple[str, object, str]] = [
    ("time without assertion", StatusReport(NODE, 1, 2, StatusItem(False, 5)), "not asserted"),
    ("negative time", StatusReport(NODE, 1, 2, StatusItem(True, -5)), "received: time -5"),
    ("huge time", StatusReport(NODE, 1, 2, deleted=StatusItem(True, 2**64)), "deleted: time"),
    ("asserted not bool", StatusReport(NODE, 1, 2, StatusItem(1, None)), "bool 'asserted'"),  # type: ignore[arg-type]
    ("item not StatusItem", StatusReport(NODE, 1, 2, (True, None)), "StatusItem"),  # type: ignore[arg-type]
    ("source not EID", StatusReport("ipn:1.1", 1, 2), "source must be an EID"),  # type: ignore[arg-type]
    ("negative creation", StatusReport(NODE, -1, 2), "creation_time -1"),
    ("sequence too big", StatusReport(NODE, 1, 2**64), "sequence"),
    ("reason bool", StatusReport(NODE, 1, 2, reason=True), "reason True"),
    ("reason negative", StatusReport(NODE, 1, 2, reason=-1), "reason -1"),
    ("offset alone", StatusReport(NODE, 1, 2, fragment_offset=3), "given together"),
    ("length alone", StatusReport(NODE, 1, 2, fragment_length=3), "given together"),
    ("negative offset", StatusReport(NODE, 1, 2, fragment_offset=-3, fragment_length=1), "offset"),
    ("unknown as type 1", UnknownAdminRecord(1, b"\x00"), "must be given as a StatusReport"),
    ("unknown bad type", UnknownAdminRecord(-2, b"\x00"), "record type -2"),
    ("unknown two items", UnknownAdminRecord(3, b"\x00\x00"), "1 bytes after its CBOR item"),
    ("unknown truncated", UnknownAdminRecord(3, b"\x82\x00"), "not one CBOR item"),
    ("unknown empty", UnknownAdminRecord(3, b""), "not one CBOR item"),
    ("unknown str", UnknownAdminRecord(3, "x"), "bytes of one CBOR item"),  # type: ignore[arg-type]
    ("not a record", 5, "not a StatusReport"),
]


@pytest.mark.parametrize(
    ("value", "message"), [r[1:] for r in ENCODE_RULES], ids=[r[0] for r in ENCODE_RULES]
)
def test_encoder_refuses_invalid_values(value: object, message: str) -> None:
    with pytest.raises(LocalError, match=re.escape(message)):
        encode_admin_record(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Status report bundles.


def test_make_status_report_bundle() -> None:
    b = make_status_report_bundle(
        SUBJECT,
        report_source=NODE,
        received_at=5000,
        delivered_at=6000,
        reason=Reason.NO_ADDITIONAL_INFORMATION,
        now_ms=7000,
        sequence=3,
    )
    p = b.primary
    assert p.destination == SUBJECT.primary.report_to
    assert p.source == NODE
    assert p.report_to == DTN_NONE
    assert p.flags == BundleFlag.ADMIN_RECORD
    assert (p.creation_time, p.sequence, p.lifetime, p.crc_type) == (7000, 3, 86_400_000, 2)
    assert [blk.type for blk in b.blocks] == [BlockType.PAYLOAD]
    r = status_report_of(b)
    # No STATUS_TIME_REQUESTED on the subject: asserted without times.
    assert r == StatusReport(
        SUBJECT.primary.source, 1000, 4, received=StatusItem(True), delivered=StatusItem(True)
    )
    assert r.subject_id == SUBJECT.id
    wire = encode_bundle(b)
    assert decode_bundle(wire) == b
    assert status_report_of(decode_bundle(wire)) == r


def test_status_times_only_when_requested() -> None:
    subject = SUBJECT._replace(
        primary=SUBJECT.primary._replace(
            flags=SUBJECT.primary.flags | BundleFlag.STATUS_TIME_REQUESTED
        )
    )
    b = make_status_report_bundle(
        subject, report_source=NODE, forwarded_at=11, deleted_at=12,
        reason=Reason.LIFETIME_EXPIRED, now_ms=20, sequence=0,
    )
    r = status_report_of(b)
    assert r.items == (NOT_ASSERTED, StatusItem(True, 11), NOT_ASSERTED, StatusItem(True, 12))
    assert r.reason is Reason.LIFETIME_EXPIRED


def test_report_about_a_fragment_identifies_it() -> None:
    subject = SUBJECT._replace(
        primary=SUBJECT.primary._replace(
            flags=SUBJECT.primary.flags | BundleFlag.IS_FRAGMENT,
            fragment_offset=100,
            total_adu_length=200,
        )
    )
    r = status_report_of(
        make_status_report_bundle(subject, report_source=NODE, received_at=1, now_ms=2, sequence=0)
    )
    assert (r.fragment_offset, r.fragment_length) == (100, 5)
    assert r.subject_id == subject.id


def test_report_without_clock_gets_an_age_block() -> None:
    b = make_status_report_bundle(
        SUBJECT, report_source=NODE, received_at=0, now_ms=0, sequence=9, crc_type=CRCType.NONE
    )
    assert [blk.type for blk in b.blocks] == [BlockType.BUNDLE_AGE, BlockType.PAYLOAD]
    assert b.primary.crc_type == CRCType.NONE
    assert decode_bundle(encode_bundle(b)) == b


@given(
    eids.filter(lambda e: not e.is_none),
    eids.filter(lambda e: not e.is_none),
    st.integers(0, U64),
    st.integers(0, U64),
    st.lists(st.one_of(st.none(), st.integers(0, U64)), min_size=4, max_size=4).filter(
        lambda ts: any(t is not None for t in ts)
    ),
    st.booleans(),
    st.sampled_from(list(Reason)),
    st.sampled_from(list(CRCType)),
)
def test_report_bundle_round_trip(
    source: EID,
    report_to: EID,
    ct: int,
    seq: int,
    times: list[int | None],
    time_requested: bool,
    reason: Reason,
    crc: CRCType,
) -> None:
    flags = BundleFlag.STATUS_TIME_REQUESTED if time_requested else 0
    subject = Bundle(
        PrimaryBlock(EID.parse("ipn:1.1"), source, report_to, ct or 1, seq, flags=int(flags)),
        (payload_block(b"x"),),
    )
    b = make_status_report_bundle(
        subject, report_source=NODE, received_at=times[0], forwarded_at=times[1],
        delivered_at=times[2], deleted_at=times[3], reason=reason, now_ms=5, sequence=6,
        crc_type=crc,
    )
    assert b.primary.destination == report_to
    assert not b.primary.flags & ~int(BundleFlag.ADMIN_RECORD)
    r = status_report_of(decode_bundle(encode_bundle(b)))
    assert r.subject_id == subject.id
    assert r.reason == reason
    for item, t in zip(r.items, times, strict=True):
        assert item.asserted == (t is not None)
        assert item.time == (t if time_requested else None)


@pytest.mark.parametrize(
    ("changes", "kwargs", "message"),
    [
        ({"report_to": DTN_NONE}, {}, "report-to EID is dtn:none"),
        ({"flags": int(BundleFlag.ADMIN_RECORD)}, {}, "about an administrative record"),
        ({}, {"received_at": None}, "at least one status"),
        ({}, {"received_at": -1}, "received_at -1"),
        ({}, {"deleted_at": 2**64}, "deleted_at"),
        ({}, {"report_source": DTN_NONE}, "report_source"),
        ({}, {"reason": -1}, "reason -1"),
        ({}, {"now_ms": -1}, "creation_time"),
        ({}, {"sequence": 2**64}, "sequence"),
        ({}, {"lifetime_ms": -5}, "lifetime"),
        ({}, {"crc_type": 7}, "CRC type"),
    ],
)
def test_make_status_report_bundle_refuses(
    changes: dict[str, Any], kwargs: dict[str, object], message: str
) -> None:
    subject = SUBJECT._replace(primary=SUBJECT.primary._replace(**changes))
    args: dict[str, object] = {
        "report_source": NODE, "received_at": 1, "now_ms": 2, "sequence": 3, **kwargs
    }
    with pytest.raises(LocalError, match=re.escape(message)):
        make_status_report_bundle(subject, **args)  # type: ignore[arg-type]


def test_status_report_of_refuses_other_bundles() -> None:
    with pytest.raises(BundleError, match="not an administrative record"):
        status_report_of(SUBJECT)
    other = Bundle(
        SUBJECT.primary._replace(flags=int(BundleFlag.ADMIN_RECORD)),
        (payload_block(b"\x82\x04\x80"),),
    )
    assert admin_record_of(other) == UnknownAdminRecord(4, b"\x80")
    with pytest.raises(BundleError, match="type 4 is not a bundle status report"):
        status_report_of(other)
    garbage = other.with_blocks([payload_block(b"\x82\x01")])
    with pytest.raises(BundleError, match="truncated") as info:
        status_report_of(garbage)
    assert info.value.reason == BAD
    fragment = Bundle(
        other.primary._replace(
            flags=int(BundleFlag.ADMIN_RECORD | BundleFlag.IS_FRAGMENT),
            fragment_offset=0,
            total_adu_length=10,
        ),
        (payload_block(b"\x82\x04"),),
    )
    with pytest.raises(LocalError, match="reassemble it first"):
        status_report_of(fragment)


# ---------------------------------------------------------------------------------------------
# Interoperability with pyd3tn's BundleStatusReport (pinned 0.15.2).

_P7_CODES = (1, 4, 8, 16)  # pyd3tn StatusCode: received, forwarded, delivered, deleted


@pytest.mark.interop
@given(
    st.integers(0, 15),
    st.one_of(st.none(), st.integers(0, 10**9)),
    st.sampled_from(list(Reason)),
    st.one_of(st.none(), st.tuples(st.integers(0, U64), st.integers(0, U64))),
    st.integers(0, U64),
    st.integers(0, U64),
)
def test_pyd3tn_status_reports_decode(
    mask: int,
    seconds: int | None,
    reason: Reason,
    frag: tuple[int, int] | None,
    ct: int,
    seq: int,
) -> None:
    from datetime import timedelta

    from pyd3tn import bundle7 as p7
    from pyd3tn.helpers import DTN_EPOCH

    infos = sum(code for i, code in enumerate(_P7_CODES) if mask >> i & 1)
    theirs = p7.BundleStatusReport(
        infos,
        int(reason),
        p7.EID("ipn:7.1"),
        [ct, seq],
        *(frag or (None, None)),
        time=None if seconds is None else DTN_EPOCH + timedelta(seconds=seconds),
    )
    r = decode_admin_record(theirs.data)
    assert isinstance(r, StatusReport)
    assert (r.source, r.creation_time, r.sequence, r.reason) == (IpnEID(7, 1), ct, seq, reason)
    assert (r.fragment_offset, r.fragment_length) == (frag or (None, None))
    for i, item in enumerate(r.items):
        assert item.asserted == bool(mask >> i & 1)
        assert item.time == (seconds if item.asserted else None)
    assert encode_admin_record(r) == theirs.data


@pytest.mark.interop
@given(reports())
def test_proxima_status_reports_parse_with_pyd3tn(r: StatusReport) -> None:
    from pyd3tn import bundle7 as p7

    theirs = p7.BundleStatusReport.from_cbor(cbor2.loads(encode_admin_record(r)))
    assert [theirs.is_received, theirs.is_forwarded, theirs.is_delivered, theirs.is_deleted] == [
        i.asserted for i in r.items
    ]
    assert [
        theirs.received_time, theirs.forwarded_time, theirs.delivered_time, theirs.deleted_time
    ] == [i.time for i in r.items]
    assert theirs.reason_code == r.reason
    assert list(theirs.subject_source_eid) == r.source.to_value()
    assert theirs.subject_creation_timestamp == [r.creation_time, r.sequence]
    assert theirs.subject_fragment_offset == r.fragment_offset
    assert theirs.subject_total_payload_length == r.fragment_length
