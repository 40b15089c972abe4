"""Interoperability of proxima's BPv7 codec with pyd3tn (the D3TN Python tools, pinned 0.15.2).

(a) bundles built and serialized by pyd3tn decode with :func:`decode_bundle` (which verifies every
CRC) to the same field values; (b) bundles encoded by :func:`encode_bundle` parse with pyd3tn's
``Bundle.parse`` to the same field values. pyd3tn never verifies CRCs on parse, so each side also
recomputes the other's CRCs: pyd3tn re-serializes every block it parsed from proxima's bytes and
must produce the very same bytes, CRC included, and ``calculate_crc()`` must equal the CRC proxima
wrote.

Known pyd3tn 0.15.2 limitations the strategies stay clear of (each is pinned by a test below):

* creation times are converted through ``datetime``, so pyd3tn cannot parse one after the end of
  year 9999 (252455615999999 ms); RFC 9171 allows any unsigned 64-bit DTN time;
* ``Bundle.parse`` raises ``ValueError`` on a block type it has no ``BlockType`` member for
  (anything but 1, 6, 7, 10), although RFC 9171 §4.3.2 requires unknown blocks to be handled;
* it moves a previous node block to the front of the block list when building or parsing;
* its text EID parser splits on ``:``, so a ``dtn`` demux holding ``:`` must be given as a tuple;
* ``BundleProcFlag.REPORT_DELETION`` is 0x400000 (bit 22) where RFC 9171 §4.2.3 says bit 18
  (0x040000); the block flag names 0x02/0x04 are swapped against RFC 9171 §4.2.4. Flags are
  carried as integers, so the values still travel intact both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import cast

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyd3tn import bundle7 as p7
from pyd3tn.helpers import DTN_EPOCH

from proxima.bpv7 import (
    DTN_NONE,
    EID,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CRCType,
    DtnEID,
    IpnEID,
    PrimaryBlock,
    age_block,
    bundle_age_of,
    decode_bundle,
    encode_block,
    encode_bundle,
    encode_primary,
    hop_count_block,
    hop_count_of,
    payload_block,
    previous_node_block,
    previous_node_of,
)
from proxima.errors import BundleError, LocalError

pytestmark = pytest.mark.interop

U64_MAX = (1 << 64) - 1
# pyd3tn turns a DTN time into a datetime on parse: the last millisecond of year 9999.
PYD3TN_MAX_CREATION_MS = (
    datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - DTN_EPOCH
) // timedelta(milliseconds=1)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Strategies: one field-value model (Spec) that both implementations are built from.

u64 = st.one_of(st.integers(0, 300), st.integers(0, U64_MAX), st.sampled_from([U64_MAX, 1 << 63]))
NODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%"
VCHARS = "".join(chr(c) for c in range(0x21, 0x7F))

ipn_eids = st.builds(IpnEID, u64, u64)
dtn_eids = st.builds(
    lambda node, demux: DtnEID(f"//{node}/{demux}"),
    st.text(NODE_CHARS, min_size=1, max_size=16),
    st.text(VCHARS, max_size=24),
)
eids = st.one_of(ipn_eids, dtn_eids)

STATUS_FLAGS = (
    BundleFlag.REPORT_RECEPTION
    | BundleFlag.REPORT_FORWARDING
    | BundleFlag.REPORT_DELIVERY
    | BundleFlag.REPORT_DELETION
)
NON_FRAGMENT_FLAGS = [
    BundleFlag.ADMIN_RECORD,
    BundleFlag.MUST_NOT_FRAGMENT,
    BundleFlag.ACK_REQUESTED,
    BundleFlag.STATUS_TIME_REQUESTED,
    BundleFlag.REPORT_RECEPTION,
    BundleFlag.REPORT_FORWARDING,
    BundleFlag.REPORT_DELIVERY,
    BundleFlag.REPORT_DELETION,
]
BLOCK_FLAG_BITS = [
    BlockFlag.REPLICATE,
    BlockFlag.REPORT_IF_UNPROCESSED,
    BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED,
    BlockFlag.DELETE_BLOCK_IF_UNPROCESSED,
]
crc_types = st.sampled_from([CRCType.NONE, CRCType.CRC16, CRCType.CRC32C]).map(int)
block_flags = st.lists(st.sampled_from(BLOCK_FLAG_BITS), unique=True).map(
    lambda bits: sum(int(b) for b in bits)
)


@dataclass(frozen=True)
class Ext:
    """An extension block: kind is 'prev', 'age', 'hop' or 'other' (an unknown type)."""

    kind: str
    number: int
    flags: int
    crc_type: int
    value: object  # EID | int | (limit, count) | (type, data)


@dataclass(frozen=True)
class Spec:
    destination: EID
    source: EID
    report_to: EID
    flags: int
    crc_type: int
    creation_time: int
    sequence: int
    lifetime: int
    fragment_offset: int | None
    total_adu_length: int | None
    exts: tuple[Ext, ...]  # in the order they are given to the encoder
    payload_flags: int
    payload_crc_type: int
    payload: bytes


@st.composite
def specs(draw: st.DrawFn, *, unknown_blocks: bool = False) -> Spec:
    payload = draw(st.binary(max_size=2000))
    node_ids = eids.filter(lambda e: e.is_singleton)
    source = draw(st.one_of(node_ids, node_ids, node_ids, st.just(DTN_NONE)))
    flags = sum(int(f) for f in draw(st.lists(st.sampled_from(NON_FRAGMENT_FLAGS), unique=True)))
    is_fragment = draw(st.booleans()) and not source.is_none
    if flags & BundleFlag.ADMIN_RECORD:
        flags &= ~STATUS_FLAGS
    if source.is_none:  # RFC 9171 §4.2.3: anonymous bundles are not fragmented, no reports
        flags = (flags | BundleFlag.MUST_NOT_FRAGMENT) & ~STATUS_FLAGS
    frag_off = total = None
    if is_fragment:
        flags = (flags | BundleFlag.IS_FRAGMENT) & ~BundleFlag.MUST_NOT_FRAGMENT
        frag_off = draw(st.integers(0, U64_MAX - len(payload)))
        total = draw(st.integers(frag_off + len(payload), U64_MAX))
    creation_time = draw(
        st.one_of(
            st.just(0), st.integers(1, PYD3TN_MAX_CREATION_MS), st.just(PYD3TN_MAX_CREATION_MS)
        )
    )

    kinds = draw(st.lists(st.sampled_from(["prev", "age", "hop"]), unique=True))
    if creation_time == 0 and "age" not in kinds:  # RFC 9171 §4.3.1
        kinds.append("age")
    if unknown_blocks:
        kinds += ["other"] * draw(st.integers(0, 2))
    numbers = draw(
        st.lists(
            st.one_of(st.integers(2, 40), st.integers(2, U64_MAX)),
            min_size=len(kinds),
            max_size=len(kinds),
            unique=True,
        )
    )
    # RFC 9171 §4.2.4: no "report if unprocessed" in admin records and anonymous bundles
    no_report_mask = ~0x2 if flags & BundleFlag.ADMIN_RECORD or source.is_none else ~0
    exts = []
    for kind, number in zip(draw(st.permutations(kinds)), numbers, strict=True):
        value: object
        if kind == "prev":
            value = draw(eids).node_id  # RFC 9171 §4.4.1: a node ID
        elif kind == "age":
            value = draw(u64)
        elif kind == "hop":
            value = (draw(st.integers(1, 255)), draw(st.one_of(st.integers(0, 255), u64)))
        else:
            block_type = draw(st.integers(13, 1000).filter(lambda t: t not in (1, 6, 7, 10)))
            value = (block_type, draw(st.binary(max_size=64)))
        exts.append(Ext(kind, number, draw(block_flags) & no_report_mask, draw(crc_types), value))

    return Spec(
        destination=draw(eids),
        source=source,
        report_to=draw(st.one_of(eids, st.just(DTN_NONE))),
        flags=flags,
        crc_type=draw(crc_types),
        creation_time=creation_time,
        sequence=draw(u64),
        lifetime=draw(st.one_of(u64, st.integers(0, 1 << 63))),
        fragment_offset=frag_off,
        total_adu_length=total,
        exts=tuple(exts),
        payload_flags=draw(block_flags) & no_report_mask,
        payload_crc_type=draw(crc_types),
        payload=payload,
    )


# ---------------------------------------------------------------------------------------------
# Building each side from a Spec.


def pyd3tn_eid(eid: EID) -> object:
    """What to hand pyd3tn for an EID: its text form when pyd3tn's parser copes, else a tuple."""
    text = str(eid)
    if text.count(":") == 1:
        return text
    return tuple(eid.to_value())


def pyd3tn_timestamp(ms: int, sequence: int) -> p7.CreationTimestamp:
    if ms == 0:
        return p7.CreationTimestamp(0, sequence)
    return p7.CreationTimestamp(DTN_EPOCH + timedelta(milliseconds=ms), sequence)


def proxima_bundle(spec: Spec) -> Bundle:
    primary = PrimaryBlock(
        destination=spec.destination,
        source=spec.source,
        report_to=spec.report_to,
        creation_time=spec.creation_time,
        sequence=spec.sequence,
        lifetime=spec.lifetime,
        flags=spec.flags,
        crc_type=spec.crc_type,
        fragment_offset=spec.fragment_offset,
        total_adu_length=spec.total_adu_length,
    )
    blocks = []
    for e in spec.exts:
        kw = {"number": e.number, "flags": e.flags, "crc_type": e.crc_type}
        if e.kind == "prev":
            assert isinstance(e.value, EID)
            blocks.append(previous_node_block(e.value, **kw))
        elif e.kind == "age":
            assert isinstance(e.value, int)
            blocks.append(age_block(e.value, **kw))
        elif e.kind == "hop":
            limit, count = cast("tuple[int, int]", e.value)
            blocks.append(hop_count_block(limit, count, **kw))
        else:
            block_type, data = cast("tuple[int, bytes]", e.value)
            blocks.append(CanonicalBlock(block_type, e.number, e.flags, e.crc_type, data))
    blocks.append(
        payload_block(spec.payload, flags=spec.payload_flags, crc_type=spec.payload_crc_type)
    )
    return Bundle(primary, tuple(blocks))


def pyd3tn_bundle(spec: Spec) -> p7.Bundle:
    primary = p7.PrimaryBlock(
        bundle_proc_flags=spec.flags,
        crc_type=p7.CRCType(spec.crc_type),
        destination=pyd3tn_eid(spec.destination),
        source=pyd3tn_eid(spec.source),
        report_to=pyd3tn_eid(spec.report_to),
        creation_time=pyd3tn_timestamp(spec.creation_time, spec.sequence),
        lifetime=spec.lifetime,
        fragment_offset=spec.fragment_offset,
        total_payload_length=spec.total_adu_length,
    )
    blocks = []
    for e in spec.exts:
        kw = {
            "block_number": e.number,
            "block_proc_flags": e.flags,
            "crc_type": p7.CRCType(e.crc_type),
        }
        if e.kind == "prev":
            assert isinstance(e.value, EID)
            blocks.append(p7.PreviousNodeBlock(pyd3tn_eid(e.value), **kw))
        elif e.kind == "age":  # BundleAgeBlock takes seconds; the wire value is milliseconds
            blocks.append(p7.CBORBlock(p7.BlockType.BUNDLE_AGE, e.value, **kw))
        elif e.kind == "hop":
            limit, count = cast("tuple[int, int]", e.value)
            blocks.append(p7.HopCountBlock(limit, count, **kw))
        else:
            block_type, data = cast("tuple[int, bytes]", e.value)
            blocks.append(p7.CanonicalBlock(block_type, data, **kw))
    payload = p7.PayloadBlock(
        spec.payload,
        block_proc_flags=spec.payload_flags,
        crc_type=p7.CRCType(spec.payload_crc_type),
    )
    return p7.Bundle(primary, payload, blocks)


def pyd3tn_wire_order(exts: tuple[Ext, ...]) -> list[Ext]:
    """pyd3tn's Bundle.add puts a previous node block first and appends the others in order."""
    return [e for e in exts if e.kind == "prev"] + [e for e in exts if e.kind != "prev"]


# ---------------------------------------------------------------------------------------------
# Comparing each side with a Spec.


def assert_proxima_matches(b: Bundle, spec: Spec, exts_in_wire_order: list[Ext]) -> None:
    p = b.primary
    assert p.destination == spec.destination
    assert p.source == spec.source
    assert p.report_to == spec.report_to
    assert p.flags == spec.flags
    assert p.crc_type == spec.crc_type
    assert p.creation_time == spec.creation_time
    assert p.sequence == spec.sequence
    assert p.lifetime == spec.lifetime
    assert p.fragment_offset == spec.fragment_offset
    assert p.total_adu_length == spec.total_adu_length
    assert len(b.blocks) == len(exts_in_wire_order) + 1
    for blk, e in zip(b.blocks, exts_in_wire_order, strict=False):
        assert (blk.number, blk.flags, blk.crc_type) == (e.number, e.flags, e.crc_type)
        if e.kind == "other":
            assert (blk.type, blk.data) == e.value
    pl = b.payload_block
    assert (pl.type, pl.number) == (1, 1)
    assert (pl.flags, pl.crc_type) == (spec.payload_flags, spec.payload_crc_type)
    assert b.payload == spec.payload
    by_kind = {e.kind: e.value for e in spec.exts if e.kind != "other"}
    assert previous_node_of(b) == by_kind.get("prev")
    assert bundle_age_of(b) == by_kind.get("age")
    assert hop_count_of(b) == by_kind.get("hop")


def assert_pyd3tn_matches(pb: p7.Bundle, spec: Spec) -> None:
    pp = pb.primary_block
    assert pp.version == 7
    assert str(pp.destination) == str(spec.destination)
    assert str(pp.source) == str(spec.source)
    assert str(pp.report_to) == str(spec.report_to)
    assert int(pp.bundle_proc_flags) == spec.flags
    assert int(pp.crc_type) == spec.crc_type
    assert list(pp.creation_time) == [spec.creation_time, spec.sequence]
    assert pp.lifetime == spec.lifetime
    assert pp.fragment_offset == spec.fragment_offset
    assert pp.total_payload_length == spec.total_adu_length
    got = {b.block_number: b for b in pb.blocks}
    assert len(got) == len(pb.blocks) == len(spec.exts)
    for e in spec.exts:
        blk = got[e.number]
        assert (int(blk.block_proc_flags), int(blk.crc_type)) == (e.flags, e.crc_type)
        if e.kind == "prev":
            assert int(blk.block_type) == BlockType.PREVIOUS_NODE
            assert str(p7.EID.from_cbor(cbor2.loads(blk.data))) == str(e.value)
        elif e.kind == "age":
            assert int(blk.block_type) == BlockType.BUNDLE_AGE
            assert cbor2.loads(blk.data) == e.value
        elif e.kind == "hop":
            assert int(blk.block_type) == BlockType.HOP_COUNT
            assert tuple(cbor2.loads(blk.data)) == e.value
    pl = pb.payload_block
    assert (int(pl.block_type), pl.block_number) == (1, 1)
    assert int(pl.block_proc_flags) == spec.payload_flags
    assert int(pl.crc_type) == spec.payload_crc_type
    assert pl.data == spec.payload


def crc_int(encoded: bytes, crc_type: int) -> int | None:
    """The CRC value at the end of one encoded block, as pyd3tn's crc_provided holds it."""
    if crc_type == CRCType.NONE:
        return None
    n = 2 if crc_type == CRCType.CRC16 else 4
    return int.from_bytes(encoded[-n:], "big")


# ---------------------------------------------------------------------------------------------
# (a) pyd3tn encodes, proxima decodes.


@SETTINGS
@given(specs(unknown_blocks=True))
def test_pyd3tn_blocks_decode_with_proxima(spec: Spec) -> None:
    pb = pyd3tn_bundle(spec)
    raw = bytes(pb)
    assert bytes(pb) == raw  # pyd3tn's encoding is deterministic

    decoded = decode_bundle(raw)  # raises on any CRC mismatch
    assert_proxima_matches(decoded, spec, pyd3tn_wire_order(spec.exts))
    # Byte for byte the same encoding, CRCs included.
    assert encode_bundle(decoded) == raw


@st.composite
def serialize_args(draw: st.DrawFn) -> tuple[Spec, dict[str, object]]:
    """A Spec restricted to what serialize_bundle7 can express, and its keyword arguments:
    lifetime and bundle age in whole seconds, one CRC type for every canonical block,
    block numbers pyd3tn assigns itself, no block flags."""
    spec = draw(specs())
    canonical_crc = draw(crc_types)
    lifetime_s = draw(st.integers(0, U64_MAX // 1000))
    age_s = draw(st.integers(0, U64_MAX // 1000))
    kinds = {e.kind: e.value for e in spec.exts}
    kwargs: dict[str, object] = {
        "report_to_eid": pyd3tn_eid(spec.report_to),
        "crc_type_primary": p7.CRCType(spec.crc_type),
        "creation_timestamp": (
            0
            if spec.creation_time == 0
            else DTN_EPOCH + timedelta(milliseconds=spec.creation_time)
        ),
        "sequence_number": spec.sequence,
        "lifetime": lifetime_s,
        "flags": spec.flags,
        "fragment_offset": spec.fragment_offset,
        "total_adu_length": spec.total_adu_length,
        "crc_type_canonical": p7.CRCType(canonical_crc),
    }
    if "hop" in kinds:
        kwargs["hop_limit"], kwargs["hop_count"] = cast("tuple[int, int]", kinds["hop"])
    if "prev" in kinds:
        kwargs["previous_node_eid"] = pyd3tn_eid(cast("EID", kinds["prev"]))
    if "age" in kinds:
        kwargs["bundle_age"] = age_s
    # The same bundle as a Spec, with pyd3tn's numbering: hop count, previous node, age.
    exts = []
    number = 1
    for kind in ("hop", "prev", "age"):
        if kind in kinds:
            number += 1
            value = age_s * 1000 if kind == "age" else kinds[kind]
            exts.append(Ext(kind, number, 0, canonical_crc, value))
    spec = replace(
        spec,
        lifetime=lifetime_s * 1000,
        exts=tuple(exts),
        payload_flags=0,
        payload_crc_type=canonical_crc,
    )
    return spec, kwargs


@SETTINGS
@given(serialize_args())
def test_serialize_bundle7_decodes_with_proxima(case: tuple[Spec, dict[str, object]]) -> None:
    spec, kwargs = case
    raw = p7.serialize_bundle7(
        pyd3tn_eid(spec.source), pyd3tn_eid(spec.destination), spec.payload, **kwargs
    )
    decoded = decode_bundle(raw)
    assert_proxima_matches(decoded, spec, pyd3tn_wire_order(spec.exts))
    assert encode_bundle(decoded) == raw
    # And proxima, given the same field values in the same order, writes the same bytes.
    same_order = replace(spec, exts=tuple(pyd3tn_wire_order(spec.exts)))
    assert encode_bundle(proxima_bundle(same_order)) == raw


# ---------------------------------------------------------------------------------------------
# (b) proxima encodes, pyd3tn parses (and recomputes every CRC).


@SETTINGS
@given(specs())
def test_proxima_bundles_parse_with_pyd3tn(spec: Spec) -> None:
    bundle = proxima_bundle(spec)
    raw = encode_bundle(bundle)
    pb = p7.Bundle.parse(raw)
    assert_pyd3tn_matches(pb, spec)

    # pyd3tn re-serializes each parsed block to exactly proxima's bytes, CRC included, and its
    # CRC computation agrees with the CRC proxima wrote.
    primary_bytes = encode_primary(bundle.primary)
    assert bytes(pb.primary_block) == primary_bytes
    assert pb.primary_block.crc_provided == crc_int(primary_bytes, spec.crc_type)
    if spec.crc_type:
        assert pb.primary_block.calculate_crc() == pb.primary_block.crc_provided
    pyd3tn_blocks = {b.block_number: b for b in [*pb.blocks, pb.payload_block]}
    for blk in bundle.blocks:
        encoded = encode_block(blk)
        theirs = pyd3tn_blocks[blk.number]
        assert bytes(theirs) == encoded
        assert theirs.crc_provided == crc_int(encoded, blk.crc_type)
        if blk.crc_type:
            assert theirs.calculate_crc() == theirs.crc_provided

    # Whole bundle: identical whenever pyd3tn's block order (previous node first) is kept.
    if [e.number for e in spec.exts] == [e.number for e in pyd3tn_wire_order(spec.exts)]:
        assert bytes(pb) == raw
    # Round trip through pyd3tn and back.
    assert_proxima_matches(decode_bundle(bytes(pb)), spec, pyd3tn_wire_order(spec.exts))


# ---------------------------------------------------------------------------------------------
# Fixed cases: RFC 9171 rules both sides enforce, CRC tampering, and pinned pyd3tn limitations.


def _simple(**primary: object) -> Spec:
    base = Spec(
        destination=EID.parse("ipn:2.1"),
        source=EID.parse("ipn:1.1"),
        report_to=DTN_NONE,
        flags=0,
        crc_type=int(CRCType.CRC32C),
        creation_time=1_000_000,
        sequence=0,
        lifetime=3_600_000,
        fragment_offset=None,
        total_adu_length=None,
        exts=(),
        payload_flags=0,
        payload_crc_type=int(CRCType.CRC32C),
        payload=b"hello",
    )
    return replace(base, **primary)  # type: ignore[arg-type]


def test_creation_time_zero_needs_an_age_block_on_both_sides() -> None:
    spec = _simple(creation_time=0)
    with pytest.raises(ValueError, match="Bundle Age"):
        pyd3tn_bundle(spec)
    with pytest.raises(LocalError, match="bundle age"):
        encode_bundle(proxima_bundle(spec))


@pytest.mark.parametrize("crc_type", [CRCType.CRC16, CRCType.CRC32C])
def test_proxima_rejects_a_corrupted_pyd3tn_crc_that_pyd3tn_accepts(crc_type: CRCType) -> None:
    raw = bytearray(bytes(pyd3tn_bundle(_simple(crc_type=int(crc_type)))))
    raw[-2] ^= 0x01  # last byte of the payload block's CRC
    p7.Bundle.parse(bytes(raw))  # pyd3tn does not check CRCs
    with pytest.raises(BundleError, match="CRC"):
        decode_bundle(bytes(raw))


def test_pyd3tn_cannot_parse_creation_times_after_year_9999() -> None:
    ok = encode_bundle(proxima_bundle(_simple(creation_time=PYD3TN_MAX_CREATION_MS)))
    assert p7.Bundle.parse(ok).primary_block.creation_time[0] == PYD3TN_MAX_CREATION_MS
    raw = encode_bundle(proxima_bundle(_simple(creation_time=U64_MAX)))  # valid per RFC 9171
    assert decode_bundle(raw).primary.creation_time == U64_MAX
    with pytest.raises((ValueError, OverflowError, OSError)):
        p7.Bundle.parse(raw)


def test_pyd3tn_cannot_parse_unknown_block_types() -> None:
    spec = _simple(exts=(Ext("other", 5, 0, 0, (192, b"\x01\x02")),))
    raw = encode_bundle(proxima_bundle(spec))
    assert bytes(pyd3tn_bundle(spec)) == raw  # pyd3tn writes such a block fine...
    with pytest.raises(ValueError, match="BlockType"):
        p7.Bundle.parse(raw)  # ...but cannot read it back


def test_pyd3tn_moves_the_previous_node_block_first() -> None:
    spec = _simple(
        exts=(
            Ext("hop", 2, 0, 2, (30, 1)),
            Ext("prev", 3, 0, 2, EID.parse("ipn:7.0")),
        )
    )
    raw = encode_bundle(proxima_bundle(spec))
    pb = p7.Bundle.parse(raw)
    assert [b.block_number for b in pb.blocks] == [3, 2]
    assert bytes(pb) != raw
    assert decode_bundle(bytes(pb)).blocks[0].type == BlockType.PREVIOUS_NODE


def test_flag_constants_that_differ_from_rfc_9171() -> None:
    # RFC 9171 §4.2.3: bit 18 requests bundle deletion status reports. pyd3tn uses bit 22.
    assert BundleFlag.REPORT_DELETION == 1 << 18
    assert int(p7.BundleProcFlag.REPORT_DELETION) == 1 << 22
    # RFC 9171 §4.2.4: bit 1 report if unprocessable, bit 2 delete bundle, bit 4 discard block.
    assert (BlockFlag.REPORT_IF_UNPROCESSED, BlockFlag.DELETE_BUNDLE_IF_UNPROCESSED) == (0x02, 0x04)
    assert int(BlockFlag.DELETE_BLOCK_IF_UNPROCESSED) == 0x10
    assert int(p7.BlockProcFlag.DISCARD_IF_UNPROC) == 0x02
    assert int(p7.BlockProcFlag.REPORT_IF_UNPROC) == 0x04
    assert int(p7.BlockProcFlag.DELETE_BUNDLE_IF_UNPROC) == 0x10
    # The integer values still travel intact: proxima's deletion flag reaches pyd3tn as bit 18.
    raw = encode_bundle(proxima_bundle(_simple(flags=int(BundleFlag.REPORT_DELETION))))
    parsed = p7.Bundle.parse(raw).primary_block
    assert int(parsed.bundle_proc_flags) == 1 << 18
    assert not parsed.has_flag(p7.BundleProcFlag.REPORT_DELETION)


def _pyd3tn_serialize(source: str, destination: str, **kwargs: object) -> bytes:
    when = DTN_EPOCH + timedelta(days=1)
    return p7.serialize_bundle7(  # type: ignore[no-any-return]
        source, destination, b"x", creation_timestamp=when, sequence_number=0, **kwargs
    )


@pytest.mark.parametrize(
    ("source", "destination", "kwargs", "rule"),
    [
        pytest.param("ipn:1.1", "ipn:2.1", {"hop_limit": 0}, "hop limit 0", id="hop-limit-0"),
        pytest.param("ipn:1.1", "ipn:2.1", {"hop_limit": 256}, "hop limit 256", id="hop-limit-256"),
        pytest.param(
            "ipn:1.1", "dtn:ground", {}, "malformed dtn endpoint ID", id="dtn-eid-without-slashes"
        ),
        pytest.param(
            "dtn:none", "ipn:2.1", {}, "anonymous bundle", id="anonymous-may-be-fragmented"
        ),
        pytest.param(
            "ipn:1.1",
            "ipn:2.1",
            {"flags": int(BundleFlag.ADMIN_RECORD | BundleFlag.REPORT_DELIVERY)},
            "administrative record",
            id="admin-record-requesting-reports",
        ),
    ],
)
def test_pyd3tn_writes_what_rfc_9171_forbids_and_proxima_refuses(
    source: str, destination: str, kwargs: dict[str, object], rule: str
) -> None:
    raw = _pyd3tn_serialize(source, destination, **kwargs)
    p7.Bundle.parse(raw)  # pyd3tn reads its own output back without complaint
    with pytest.raises(BundleError, match=rule):
        decode_bundle(raw)
