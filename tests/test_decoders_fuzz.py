"""Fuzzing the decoders that read bytes or values from outside: they raise only Proxima errors.

Covered: the content decoder of the previous node, bundle age and hop count blocks
(:func:`decode_block_data`), endpoint IDs from decoded CBOR values (:func:`eid_from_cbor`),
administrative records (:func:`decode_admin_record`) and abstract security blocks
(:func:`decode_asb`). Each gets random input, valid encodings whole, every proper prefix of
them, trailing bytes, and mutations (bytes replaced, inserted, deleted, bits flipped, slices
repeated) that keep most of the structure so that the checks deep inside are reached.
"""

from __future__ import annotations

import re

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxima.bpv7.admin import (
    StatusItem,
    StatusReport,
    UnknownAdminRecord,
    decode_admin_record,
    encode_admin_record,
)
from proxima.bpv7.bpsec import AbstractSecurityBlock, decode_asb, encode_asb
from proxima.bpv7.bundle import (
    BlockType,
    CanonicalBlock,
    Reason,
    age_block,
    decode_block_data,
    hop_count_block,
    previous_node_block,
)
from proxima.bpv7.eid import DTN_NONE, EID, DtnEID, IpnEID, eid_from_cbor
from proxima.errors import BundleError, InvalidEndpointID, ProximaError, SecurityError

U64 = (1 << 64) - 1
BAD = Reason.BLOCK_UNINTELLIGIBLE
HUGE = [10**5000, -(10**5000), 1 << 64, -(1 << 64) - 1, U64, -1]  # 10**5000 defeats str()/repr()
MAX_MESSAGE = 400  # an error message about hostile input stays short

# ---------------------------------------------------------------------------------------------
# Strategies.

u64 = st.one_of(st.integers(0, 30), st.integers(0, 300), st.integers(0, 70_000), st.integers(0, U64))
node_ids: st.SearchStrategy[EID] = st.one_of(
    st.builds(IpnEID, u64, u64),
    st.from_regex(r"//[a-z0-9.~-]{1,10}/([!-}][!-~]{0,10})?", fullmatch=True).map(DtnEID),
)
any_eids: st.SearchStrategy[EID] = st.one_of(
    node_ids,
    st.just(DTN_NONE),
    st.from_regex(r"//[a-z0-9]{1,6}/~[!-~]{0,6}", fullmatch=True).map(DtnEID),  # non-singleton
)


def huge(i: int) -> int:
    """``HUGE[i]``. Drawn by index: hypothesis repr()s a sampled_from's list, and 10**5000 has none."""
    return HUGE[i]


any_ints = st.one_of(st.integers(), st.integers(-(1 << 70), 1 << 70), st.integers(0, len(HUGE) - 1).map(huge))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    any_ints,
    st.binary(max_size=12),
    st.text(max_size=12),
    st.text("/ab~:.!", max_size=8).map(lambda s: "//" + s),  # near-misses of a dtn SSP
)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=16)
# Values shaped like an endpoint ID, [scheme, ssp], so the checks past the first are reached.
eid_shaped = st.one_of(
    st.tuples(st.sampled_from([0, 1, 2, 3, True, False, None, "1", 1 << 64]), values).map(list),
    st.tuples(
        st.just(2),
        st.one_of(st.tuples(any_ints, any_ints).map(list), st.lists(any_ints, max_size=3)),
    ).map(list),
    st.tuples(st.just(1), st.one_of(any_ints, st.text(max_size=20))).map(list),
)
cbor_values = st.recursive(
    leaves | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 5), inner, max_size=2),
    max_leaves=12,
)

# Bytes written inside mutations: CBOR heads that change meaning (1-, 2-, 4- and 8-byte
# arguments, reserved infos, indefinite lengths, breaks, simple values, tags, maps, floats).
interesting = st.sampled_from(
    list(bytes.fromhex("0017 1819 1a1b 1c1f 203b 405b 5f60 7f80 8182 9b9f a1c2 f4f5 f6f7 f8f9 fbff"))
)


def mutate(data: bytes, draw: st.DataObject) -> bytes:
    """``data`` with one to four random edits."""
    b = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4), label="edits")):
        op = draw.draw(st.sampled_from(["set", "insert", "delete", "flip", "repeat"]), label="op")
        if not b:
            op = "insert"
        pos = draw.draw(st.integers(0, max(len(b) - 1, 0)), label="pos")
        byte = draw.draw(st.one_of(interesting, st.integers(0, 255)), label="byte")
        if op == "set":
            b[pos] = byte
        elif op == "insert":
            b.insert(pos, byte)
        elif op == "delete":
            del b[pos]
        elif op == "flip":
            b[pos] ^= 1 << draw.draw(st.integers(0, 7), label="bit")
        else:
            end = draw.draw(st.integers(pos, len(b)), label="end")
            b[pos:pos] = b[pos:end]
    return bytes(b)


def short_and_proxima(exc: BaseException) -> None:
    assert isinstance(exc, ProximaError), f"{type(exc).__name__}: {exc}"
    assert len(str(exc)) <= MAX_MESSAGE, str(exc)


# The helpers below catch only the error the decoder documents: anything else (ValueError,
# RecursionError, TypeError, another Proxima error...) propagates and fails the test.


# ---------------------------------------------------------------------------------------------
# decode_block_data: previous node (6), bundle age (7), hop count (10).

KNOWN_TYPES = [int(BlockType.PREVIOUS_NODE), int(BlockType.BUNDLE_AGE), int(BlockType.HOP_COUNT)]


@st.composite
def valid_blocks(draw: st.DrawFn) -> tuple[CanonicalBlock, object]:
    """A valid block of type 6, 7 or 10, and the content it decodes to."""
    number = draw(st.integers(2, 1000))
    kind = draw(st.sampled_from(KNOWN_TYPES))
    if kind == BlockType.PREVIOUS_NODE:
        node = draw(node_ids)
        return previous_node_block(node, number=number), node
    if kind == BlockType.BUNDLE_AGE:
        age = draw(u64)
        return age_block(age, number=number), age
    limit, count = draw(st.integers(1, 255)), draw(u64)
    return hop_count_block(limit, count, number=number), (limit, count)


def decode_or_proxima_error(block: CanonicalBlock) -> object:
    """Decode; a failure must be a short :class:`BundleError`. None when refused."""
    error: BundleError | None = None
    try:
        content = decode_block_data(block)
    except BundleError as exc:
        error = exc
    if error is not None:
        short_and_proxima(error)
        assert error.reason == BAD
        return None
    expected = {6: EID, 7: int, 10: tuple}[block.type]
    assert isinstance(content, expected)
    return content


@given(st.sampled_from(KNOWN_TYPES), st.one_of(st.binary(max_size=64), cbor_values.map(cbor2.dumps)))
def test_block_data_random_bytes(kind: int, data: bytes) -> None:
    decode_or_proxima_error(CanonicalBlock(kind, 5, 0, 0, data))


@given(st.sampled_from(KNOWN_TYPES), st.one_of(values, eid_shaped))
def test_block_data_any_cbor_value(kind: int, value: object) -> None:
    content = decode_or_proxima_error(CanonicalBlock(kind, 5, 0, 0, cbor2.dumps(value)))
    if kind == BlockType.BUNDLE_AGE and content is not None:
        assert content == value


@given(valid_blocks())
def test_block_data_whole_and_every_prefix(case: tuple[CanonicalBlock, object]) -> None:
    block, expected = case
    assert decode_block_data(block) == expected
    for n in range(len(block.data)):
        with pytest.raises(BundleError, match="truncated") as info:
            decode_block_data(block._replace(data=block.data[:n]))
        short_and_proxima(info.value)
        assert info.value.reason == BAD


NAMES = {6: "previous node", 7: "bundle age", 10: "hop count"}


@given(valid_blocks(), st.binary(min_size=1, max_size=16))
def test_block_data_trailing_bytes_are_refused(case: tuple[CanonicalBlock, object], extra: bytes) -> None:
    block, _expected = case
    message = f"{NAMES[block.type]} block {block.number} has {len(extra)} bytes? after its CBOR item"
    with pytest.raises(BundleError, match=message) as info:
        decode_block_data(block._replace(data=block.data + extra))
    assert info.value.reason == BAD


@given(valid_blocks(), st.data())
def test_block_data_mutations(case: tuple[CanonicalBlock, object], data: st.DataObject) -> None:
    block, _expected = case
    decode_or_proxima_error(block._replace(data=mutate(block.data, data)))


def test_non_singleton_previous_node_never_crashes() -> None:
    # Whether a previous node that is not a node ID is refused is the bundle layer's rule; it
    # must in any case be a clean outcome.
    for eid in (DTN_NONE, DtnEID("//a/~all")):
        decode_or_proxima_error(previous_node_block(eid))


# ---------------------------------------------------------------------------------------------
# eid_from_cbor.


def eid_or_invalid(value: object) -> EID | None:
    error: InvalidEndpointID | None = None
    try:
        eid = eid_from_cbor(value)
    except InvalidEndpointID as exc:
        error = exc
    if error is not None:
        short_and_proxima(error)
        return None
    # Accepted values are exactly the data model form of the endpoint ID.
    assert eid.to_value() == value
    assert eid_from_cbor(cbor2.loads(eid.cbor)) == eid
    assert EID.parse(str(eid)) == eid
    return eid


@given(st.one_of(values, eid_shaped))
def test_eid_from_any_value(value: object) -> None:
    eid_or_invalid(value)


@given(any_eids)
def test_eid_from_valid_values(eid: EID) -> None:
    assert eid_or_invalid(eid.to_value()) == eid


@given(any_eids, st.data())
def test_eid_from_mutated_encodings(eid: EID, data: st.DataObject) -> None:
    raw = mutate(eid.cbor, data)
    try:
        value = cbor2.loads(raw)
    except Exception:  # not CBOR at all (any cbor2 error): nothing for eid_from_cbor to see
        return
    eid_or_invalid(value)


@given(st.binary(max_size=40))
def test_eid_from_whatever_cbor2_decodes(raw: bytes) -> None:
    try:
        value = cbor2.loads(raw)
    except Exception:
        return
    eid_or_invalid(value)


def test_eid_from_deeply_nested_value() -> None:
    deep: list[object] = [2]
    for _ in range(50_000):
        deep = [deep]
    eid_or_invalid([2, deep])
    eid_or_invalid([deep, 0])
    eid_or_invalid(deep)


# ---------------------------------------------------------------------------------------------
# decode_admin_record (single-byte mutations and random bytes are also in test_admin.py).

items = st.one_of(st.just(StatusItem()), st.just(StatusItem(True)), st.builds(StatusItem, st.just(True), u64))


@st.composite
def admin_records(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return encode_admin_record(
            UnknownAdminRecord(draw(st.integers(2, 300)), cbor2.dumps(draw(cbor_values)))
        )
    frag = draw(st.booleans())
    report = StatusReport(
        draw(any_eids),
        draw(u64),
        draw(u64),
        draw(items),
        draw(items),
        draw(items),
        draw(items),
        draw(st.integers(0, 20)),
        draw(u64) if frag else None,
        draw(u64) if frag else None,
    )
    return encode_admin_record(report)


def admin_or_bundle_error(data: bytes) -> None:
    error: BundleError | None = None
    try:
        record = decode_admin_record(data)
    except BundleError as exc:
        error = exc
    if error is not None:
        short_and_proxima(error)
        assert (error.reason, error.block) == (BAD, 1)
        return
    # Whatever is accepted re-encodes, and that encoding decodes to the same record.
    assert decode_admin_record(encode_admin_record(record)) == record


@given(st.one_of(st.binary(max_size=80), cbor_values.map(lambda v: cbor2.dumps([1, v]))))
def test_admin_record_random(data: bytes) -> None:
    admin_or_bundle_error(data)


@given(admin_records(), st.data())
def test_admin_record_mutations(data: bytes, draw: st.DataObject) -> None:
    admin_or_bundle_error(mutate(data, draw))


@given(admin_records(), st.binary(min_size=1, max_size=8))
def test_admin_record_prefixes_and_trailing_bytes(data: bytes, extra: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(BundleError, match=r"truncated|empty"):
            decode_admin_record(data[:n])
    with pytest.raises(BundleError, match=re.escape(f"{len(extra)} trailing bytes")):
        decode_admin_record(data + extra)


# ---------------------------------------------------------------------------------------------
# decode_asb (random bytes and single-byte mutations are also in test_bpsec.py).

asb_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 64), U64) | st.binary(max_size=20) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3).map(tuple),
    max_leaves=8,
)
asb_pairs = st.lists(st.tuples(u64, asb_values), max_size=3).map(tuple)


@st.composite
def asbs(draw: st.DrawFn) -> bytes:
    targets = tuple(draw(st.lists(u64, min_size=1, max_size=4, unique=True)))
    params = draw(st.none() | asb_pairs.filter(bool))
    asb = AbstractSecurityBlock(
        targets,
        draw(st.integers(-(1 << 64), U64)),
        draw(st.integers(0, 1 << 20)) * 2 + (params is not None),
        draw(any_eids),
        params,
        tuple(draw(asb_pairs) for _ in targets),
    )
    return encode_asb(asb)


def asb_or_security_error(data: bytes) -> None:
    error: SecurityError | None = None
    try:
        asb = decode_asb(data, block=7)
    except SecurityError as exc:
        error = exc
    if error is not None:
        short_and_proxima(error)
        assert (error.reason, error.block) == (BAD, 7)
        return
    assert encode_asb(asb) == data  # only the deterministic encoding is accepted


@given(st.one_of(st.binary(max_size=120), cbor_values.map(cbor2.dumps)))
def test_asb_random(data: bytes) -> None:
    asb_or_security_error(data)


@given(asbs(), st.data())
def test_asb_mutations(data: bytes, draw: st.DataObject) -> None:
    asb_or_security_error(mutate(data, draw))


@given(asbs(), st.binary(min_size=1, max_size=8))
def test_asb_prefixes_and_trailing_bytes(data: bytes, extra: bytes) -> None:
    asb_or_security_error(data)
    for n in range(len(data)):
        with pytest.raises(SecurityError) as info:
            decode_asb(data[:n])
        short_and_proxima(info.value)
    with pytest.raises(SecurityError, match=f"{len(extra)} bytes follow the security results"):
        decode_asb(data + extra)
