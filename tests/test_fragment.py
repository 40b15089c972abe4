"""Bundle fragmentation (RFC 9171 §5.8) and reassembly (§5.9)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proxima.bpv7.bundle import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    age_block,
    decode_bundle,
    encode_bundle,
    hop_count_block,
    payload_block,
    previous_node_block,
)
from proxima.bpv7.crc import CRCType
from proxima.bpv7.eid import EID
from proxima.bpv7.fragment import (
    Reassembler,
    fragment_bundle,
    fragment_key,
    fragment_to_fit,
    reassemble,
)
from proxima.errors import BundleError, Incomplete, LocalError

BAD = Reason.BLOCK_UNINTELLIGIBLE
IS_FRAGMENT = int(BundleFlag.IS_FRAGMENT)

# ---------------------------------------------------------------------------------------------
# Strategies and helpers.

crc_types = st.sampled_from([int(c) for c in CRCType])
block_flags = st.sampled_from([0, int(BlockFlag.REPLICATE), 0x13, 0x12])


@st.composite
def bundles(draw: st.DrawFn, max_payload: int = 400) -> Bundle:
    """A valid, fragmentable bundle with a random mix of extension blocks."""
    no_clock = draw(st.booleans())
    blocks: list[CanonicalBlock] = []
    number = 2
    if no_clock or draw(st.booleans()):
        blocks.append(age_block(draw(st.integers(0, 10**6)), number=number,
                                flags=draw(block_flags), crc_type=draw(crc_types)))
        number += 1
    if draw(st.booleans()):
        blocks.append(previous_node_block(EID.parse("ipn:3.0"), number=number,
                                          flags=draw(block_flags), crc_type=draw(crc_types)))
        number += 1
    if draw(st.booleans()):
        blocks.append(hop_count_block(30, draw(st.integers(0, 30)), number=number,
                                      flags=draw(block_flags), crc_type=draw(crc_types)))
        number += 1
    for _ in range(draw(st.integers(0, 3))):
        blocks.append(CanonicalBlock(draw(st.integers(192, 255)), number, draw(block_flags),
                                     draw(crc_types), draw(st.binary(max_size=20))))
        number += 1
    flags = draw(st.sampled_from([0, 0x40, 0x4000, 0x2, 0x20 | 0x40000]))
    primary = PrimaryBlock(
        destination=EID.parse("ipn:2.1"),
        source=EID.parse("dtn://src/app"),
        report_to=EID.parse("ipn:1.0"),
        creation_time=0 if no_clock else draw(st.integers(1, 2**40)),
        sequence=draw(st.integers(0, 1000)),
        lifetime=3_600_000,
        flags=flags,
        crc_type=draw(crc_types),
    )
    payload = draw(st.binary(min_size=2, max_size=max_payload))
    pb = payload_block(payload, flags=draw(st.sampled_from([0, 0x1])), crc_type=draw(crc_types))
    if flags & BundleFlag.ADMIN_RECORD:
        # RFC 9171 §4.2.4: no "report if block cannot be processed" in an administrative record.
        blocks = [b._replace(flags=b.flags & ~int(BlockFlag.REPORT_IF_UNPROCESSED)) for b in blocks]
    return Bundle(primary, (*blocks, pb))


def must_replicate(original: Bundle, block: CanonicalBlock) -> bool:
    return bool(block.flags & BlockFlag.REPLICATE) or (
        original.primary.creation_time == 0 and block.type == BlockType.BUNDLE_AGE
    )


def check_fragments(original: Bundle, fragments: list[Bundle]) -> None:
    """Every property a correct set of fragments of ``original`` has."""
    p = original.primary
    base = p.fragment_offset or 0
    total = p.total_adu_length if p.is_fragment else len(original.payload)
    assert len(fragments) >= 2
    assert b"".join(f.payload for f in fragments) == original.payload
    position = base
    extension = original.blocks[:-1]
    for i, f in enumerate(fragments):
        fp = f.primary
        assert fp.flags == p.flags | IS_FRAGMENT
        assert fp.fragment_offset == position
        assert fp.total_adu_length == total
        assert fp._replace(flags=p.flags, fragment_offset=None, total_adu_length=None) == p._replace(
            fragment_offset=None, total_adu_length=None
        )
        assert f.payload
        assert f.blocks[-1]._replace(data=b"") == original.blocks[-1]._replace(data=b"")
        if i == 0:
            assert f.blocks[:-1] == extension
        else:
            assert f.blocks[:-1] == tuple(b for b in extension if must_replicate(original, b))
        position += len(f.payload)
        assert decode_bundle(encode_bundle(f)) == f
    assert position == base + len(original.payload)


# ---------------------------------------------------------------------------------------------
# Fragmentation.


@given(bundles(), st.data())
def test_fragment_bundle(original: Bundle, data: st.DataObject) -> None:
    n = len(original.payload)
    size = data.draw(st.integers(1, n - 1))
    fragments = fragment_bundle(original, size)
    check_fragments(original, fragments)
    assert len(fragments) == -(-n // size)
    assert all(len(f.payload) == size for f in fragments[:-1])
    assert all(fragment_key(f) == fragment_key(original) for f in fragments)


def test_replicated_and_other_blocks_are_placed_per_rfc() -> None:
    keep = CanonicalBlock(200, 5, int(BlockFlag.REPLICATE), 0, b"everywhere")
    once = CanonicalBlock(201, 6, 0, 0, b"first only")
    original = Bundle(
        PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=0),
        (
            age_block(5, number=2),
            previous_node_block(EID.parse("ipn:3.0"), number=3),
            keep,
            once,
            payload_block(bytes(range(10))),
        ),
    )
    first, second, third = fragment_bundle(original, 4)
    assert first.blocks[:-1] == original.blocks[:-1]
    # The bundle age block follows the "no clock" rule (§4.4.2), the rest only REPLICATE.
    assert second.blocks[:-1] == (original.blocks[0], keep)
    assert third.blocks[:-1] == (original.blocks[0], keep)
    assert [f.payload for f in (first, second, third)] == [
        bytes(range(4)), bytes(range(4, 8)), bytes(range(8, 10))
    ]
    with_clock = original._replace(primary=original.primary._replace(creation_time=5))
    assert fragment_bundle(with_clock, 4)[1].blocks[:-1] == (keep,)


@given(bundles(), st.data())
def test_fragments_of_fragments(original: Bundle, data: st.DataObject) -> None:
    n = len(original.payload)
    fragments = fragment_bundle(original, data.draw(st.integers(1, n - 1)))
    pool = list(fragments)
    for f in fragments:
        m = len(f.payload)
        if m > 1 and data.draw(st.booleans()):
            sub = fragment_bundle(f, data.draw(st.integers(1, m - 1)))
            check_fragments(f, sub)
            pool.extend(sub)
            if data.draw(st.booleans()):
                pool.remove(f)  # keep only the sub-fragments of this one
    order = data.draw(st.permutations(pool))
    assert reassemble(order) == original


@given(bundles(), st.data())
def test_any_permutation_with_duplicates_reassembles(original: Bundle, data: st.DataObject) -> None:
    fragments = fragment_bundle(original, data.draw(st.integers(1, len(original.payload) - 1)))
    dups = data.draw(st.lists(st.sampled_from(fragments), max_size=5))
    order = data.draw(st.permutations(fragments + dups))
    assert reassemble(order) == original


@given(bundles(), st.data())
def test_reassembler_completes_exactly_at_the_last_missing_fragment(
    original: Bundle, data: st.DataObject
) -> None:
    fragments = fragment_bundle(original, data.draw(st.integers(1, len(original.payload) - 1)))
    order = data.draw(st.permutations(fragments))
    dups = data.draw(st.lists(st.sampled_from(order[:-1]), max_size=4))
    head = data.draw(st.permutations(list(order[:-1]) + dups))
    r = Reassembler()
    key = fragment_key(original)
    for f in head:
        assert r.add(f) is None
        assert key in r
    assert r.received_bytes(key) == len(original.payload) - len(order[-1].payload)
    last = order[-1].primary.fragment_offset
    assert last is not None
    assert r.missing(key) == [(last, last + len(order[-1].payload))]
    assert r.add(order[-1]) == original
    assert key not in r
    assert len(r) == 0
    assert r.missing(key) == []


def test_reassembler_keeps_bundles_apart() -> None:
    a = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5, sequence=1),
               (payload_block(b"a" * 10),))
    b = a._replace(primary=a.primary._replace(sequence=2)).with_blocks([payload_block(b"b" * 20)])
    fa, fb = fragment_bundle(a, 3), fragment_bundle(b, 7)
    r = Reassembler()
    results = [r.add(f) for pair in zip(fa, fb, strict=False) for f in pair]
    results += [r.add(f) for f in fa[len(fb):]]
    assert [x for x in results if x is not None] == [b, a]
    assert len(r) == 0


def test_reassembler_bookkeeping() -> None:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (payload_block(bytes(range(30))),))
    f = fragment_bundle(original, 10)
    r = Reassembler()
    key = fragment_key(original)
    assert r.add(f[1]) is None
    assert list(r) == [key]
    assert r.missing(key) == [(0, 10), (20, 30)]
    assert r.received_bytes(key) == 10
    assert r.discard(key)
    assert not r.discard(key)
    assert len(r) == 0


@given(bundles(max_payload=300), st.data())
def test_overlapping_fragments_reassemble(original: Bundle, data: st.DataObject) -> None:
    # Two independent fragmentations of the same bundle overlap consistently.
    n = len(original.payload)
    one = fragment_bundle(original, data.draw(st.integers(1, n - 1)))
    two = fragment_bundle(original, data.draw(st.integers(1, n - 1)))
    pool = data.draw(st.lists(st.sampled_from(one + two), max_size=6)) + one
    assert reassemble(data.draw(st.permutations(pool))) == original


def test_zero_length_fragments_are_harmless() -> None:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (payload_block(b"abcdef"),))
    first, second = fragment_bundle(original, 3)
    empty = second.with_blocks([payload_block(b"")])
    assert reassemble([empty, second, empty, first]) == original
    whole = first._replace(primary=first.primary._replace(total_adu_length=0)).with_blocks(
        [payload_block(b"")]
    )
    assert reassemble([whole]).payload == b""


@given(bundles(max_payload=300), st.data())
def test_fragment_to_fit(original: Bundle, data: st.DataObject) -> None:
    size = len(encode_bundle(original))
    # Room for one payload byte in the first fragment, and for the larger offsets of later ones.
    least = len(encode_bundle(fragment_bundle(original, 1)[0])) + 2
    assume(least < size)
    budget = data.draw(st.integers(least, size - 1))
    fragments = fragment_to_fit(original, budget)
    check_fragments(original, fragments)
    for f in fragments:
        assert len(encode_bundle(f)) <= budget
    for f in fragments[:-1]:
        # Greedy: one more payload byte would not have fit.
        pos = sum(len(g.payload) for g in fragments[: fragments.index(f)])
        bigger = f.with_blocks([*f.blocks[:-1], f.blocks[-1]._replace(
            data=original.payload[pos : pos + len(f.payload) + 1])])
        assert len(encode_bundle(bigger)) > budget
    assert reassemble(reversed(fragments)) == original


def test_fragment_to_fit_returns_a_fitting_bundle_alone() -> None:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5,
                                   flags=int(BundleFlag.MUST_NOT_FRAGMENT)),
                      (payload_block(b"abc"),))
    size = len(encode_bundle(original))
    assert fragment_to_fit(original, size) == [original]
    with pytest.raises(LocalError, match="must not fragment"):
        fragment_to_fit(original, size - 1)


def test_fragment_to_fit_refuses_a_budget_too_small() -> None:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (CanonicalBlock(200, 2, 0, 0, b"x" * 50), payload_block(b"y" * 100)))
    with pytest.raises(LocalError, match="the first fragment needs"):
        fragment_to_fit(original, 60)
    tight = len(encode_bundle(fragment_bundle(original, 1)[0]))
    fitted = fragment_to_fit(original, tight)
    assert len(fitted[0].payload) == 1
    assert all(len(encode_bundle(f)) <= tight for f in fitted)
    assert reassemble(fitted) == original
    # A fragment of a fragment at ADU offset 23: its first piece's offset still takes one CBOR
    # byte, the next (offset 24) takes two, so a budget exactly right for one payload byte in
    # the first piece leaves no room in the second.
    piece = Bundle(
        original.primary._replace(flags=IS_FRAGMENT, fragment_offset=23, total_adu_length=200),
        (CanonicalBlock(200, 2, int(BlockFlag.REPLICATE), 0, b"x" * 50), payload_block(b"y" * 100)),
    )
    budget = len(encode_bundle(fragment_bundle(piece, 1)[0]))
    with pytest.raises(LocalError, match="the fragment at ADU offset 24 needs"):
        fragment_to_fit(piece, budget)
    with pytest.raises(LocalError, match="integer"):
        fragment_to_fit(original, 1.5)  # type: ignore[arg-type]


def test_fragment_to_fit_refuses_an_empty_payload_that_does_not_fit() -> None:
    # Nothing to split: returning [] would silently lose the bundle.
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (CanonicalBlock(200, 2, 0, 0, b"x" * 100), payload_block(b"")))
    size = len(encode_bundle(original))
    with pytest.raises(LocalError, match=re.escape(f"takes {size} bytes, more than the budget of 50")) as e:
        fragment_to_fit(original, 50)
    assert "payload is empty" in str(e.value)
    assert fragment_to_fit(original, size) == [original]
    # The same for a fragment whose own piece of the ADU is empty.
    piece = original._replace(primary=original.primary._replace(
        flags=IS_FRAGMENT, fragment_offset=3, total_adu_length=10))
    with pytest.raises(LocalError, match="payload is empty"):
        fragment_to_fit(piece, 50)


def test_fragment_bundle_refusals() -> None:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (payload_block(b"abcdef"),))
    with pytest.raises(LocalError, match="already fits"):
        fragment_bundle(original, 6)
    with pytest.raises(LocalError, match="at least 1"):
        fragment_bundle(original, 0)
    with pytest.raises(LocalError, match="integer"):
        fragment_bundle(original, True)
    no = original._replace(primary=original.primary._replace(flags=int(BundleFlag.MUST_NOT_FRAGMENT)))
    with pytest.raises(LocalError, match="must not fragment"):
        fragment_bundle(no, 2)
    with pytest.raises(LocalError, match="no payload block"):
        fragment_bundle(original.with_blocks([]), 2)


# ---------------------------------------------------------------------------------------------
# Inconsistencies and misuse.


def sample() -> tuple[Bundle, list[Bundle]]:
    original = Bundle(PrimaryBlock(EID.parse("ipn:2.1"), EID.parse("ipn:1.1"), creation_time=5),
                      (payload_block(bytes(range(100))),))
    return original, fragment_bundle(original, 30)


def test_overlap_with_different_bytes_is_detected() -> None:
    _original, f = sample()
    liar = f[1].with_blocks([payload_block(b"\xff" + f[1].payload[1:])])
    r = Reassembler()
    assert r.add(f[0]) is None
    assert r.add(f[1]) is None
    with pytest.raises(BundleError, match=re.escape("overlaps bytes 30..60 already received")) as e:
        r.add(liar)
    assert e.value.reason == BAD
    # The fragment was refused; what was received before is kept.
    assert r.received_bytes(fragment_key(f[0])) == 60
    shifted = f[0]._replace(primary=f[0].primary._replace(fragment_offset=10))
    with pytest.raises(BundleError, match="different content"):
        reassemble([*f, shifted])


def test_total_adu_length_mismatch_is_detected() -> None:
    _original, f = sample()
    other = f[2]._replace(primary=f[2].primary._replace(total_adu_length=101))
    r = Reassembler()
    r.add(f[0])
    with pytest.raises(BundleError, match="total ADU length 101, but earlier fragments") as e:
        r.add(other)
    assert e.value.reason == BAD
    assert e.value.block == 0
    with pytest.raises(BundleError, match="total ADU length 101"):
        reassemble([f[0], other])


def test_fragment_past_the_end_is_detected() -> None:
    _original, f = sample()
    past = f[3]._replace(primary=f[3].primary._replace(fragment_offset=95))
    with pytest.raises(BundleError, match="ends past the total ADU length 100"):
        reassemble([f[0], past])


def test_max_adu_length() -> None:
    _original, f = sample()
    r = Reassembler(max_adu_length=99)
    with pytest.raises(BundleError, match="ADU of 100 bytes") as e:
        r.add(f[0])
    assert e.value.reason == Reason.DEPLETED_STORAGE
    assert len(r) == 0


def test_incomplete_and_misuse() -> None:
    original, f = sample()
    with pytest.raises(Incomplete, match=re.escape("cover 70 of 100 ADU bytes; missing 30..60")) as e:
        reassemble([f[0], f[2], f[3]])
    assert e.value.needed == 30
    with pytest.raises(Incomplete, match=re.escape("missing 0..30")):
        reassemble(f[1:])
    with pytest.raises(LocalError, match="no fragments"):
        reassemble([])
    with pytest.raises(LocalError, match="not a fragment"):
        reassemble([original])
    with pytest.raises(LocalError, match="not a fragment"):
        Reassembler().add(original)
    stranger = f[1]._replace(primary=f[1].primary._replace(sequence=9))
    with pytest.raises(LocalError, match="fragments of different bundles"):
        reassemble([f[0], stranger])
    broken = f[1]._replace(primary=f[1].primary._replace(fragment_offset=None))
    with pytest.raises(BundleError, match="without fragment offset"):
        reassemble([f[0], broken])
    no_total = f[1]._replace(primary=f[1].primary._replace(total_adu_length=None))
    with pytest.raises(BundleError, match="without total ADU length"):
        Reassembler().add(no_total)


@settings(max_examples=50)
@given(bundles(max_payload=200), st.data())
def test_received_fragments_round_trip_the_wire(original: Bundle, data: st.DataObject) -> None:
    fragments = fragment_bundle(original, data.draw(st.integers(1, len(original.payload) - 1)))
    wire = [decode_bundle(encode_bundle(f)) for f in data.draw(st.permutations(fragments))]
    assert reassemble(wire) == original
    assert decode_bundle(encode_bundle(reassemble(wire))) == original


PRIMARY_CHANGES: list[tuple[str, Callable[[PrimaryBlock], PrimaryBlock], str]] = [
    ("destination", lambda p: p._replace(destination=EID.parse("ipn:9.1")),
     "destination EID ipn:9.1, but earlier fragments of the same bundle gave ipn:2.1"),
    ("report-to", lambda p: p._replace(report_to=EID.parse("ipn:1.0")),
     "report-to EID ipn:1.0, but earlier fragments of the same bundle gave dtn:none"),
    ("lifetime", lambda p: p._replace(lifetime=1000),
     "lifetime 1000, but earlier fragments of the same bundle gave 86400000"),
    ("flags", lambda p: p._replace(flags=IS_FRAGMENT | int(BundleFlag.REPORT_DELIVERY)),
     "bundle processing control flags 0x20000 (IS_FRAGMENT aside), but earlier fragments of the "
     "same bundle gave 0x0"),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in PRIMARY_CHANGES], ids=[c[0] for c in PRIMARY_CHANGES]
)
def test_fragments_must_agree_on_the_primary_block(
    change: Callable[[PrimaryBlock], PrimaryBlock], message: str
) -> None:
    original, f = sample()
    odd = f[2]._replace(primary=change(f[2].primary))
    r = Reassembler()
    assert r.add(f[0]) is None
    with pytest.raises(BundleError, match=re.escape("fragment at offset 60 gives " + message)) as e:
        r.add(odd)
    assert (e.value.reason, e.value.block) == (BAD, 0)
    # The fragment was refused; what was received before is kept and the bundle completes.
    assert r.received_bytes(fragment_key(original)) == 30
    assert [r.add(x) for x in (f[1], f[2])] == [None, None]
    assert r.add(f[3]) == original
    # The first fragment received sets the reference, whatever its offset; reassemble() too.
    with pytest.raises(BundleError, match=re.escape("fragment at offset 0 gives")):
        reassemble([odd, *f])
    with pytest.raises(BundleError, match=re.escape(message)):
        reassemble([*f[:2], odd, f[3]])


def test_fragments_may_differ_in_crc_type() -> None:
    original, f = sample()
    recoded = [
        x._replace(primary=x.primary._replace(crc_type=c)) for x, c in zip(f, [0, 1, 2, 1], strict=True)
    ]
    assert reassemble(recoded[::-1]).primary.crc_type == 0  # the offset-0 fragment's primary
    assert reassemble(recoded) == original._replace(primary=original.primary._replace(crc_type=0))


def test_max_pending() -> None:
    a, fa = sample()
    b = Bundle(a.primary._replace(sequence=2), (payload_block(b"b" * 20),))
    c = Bundle(a.primary._replace(sequence=3), (payload_block(b"c" * 20),))
    fb = fragment_bundle(b, 7)
    whole_c = Bundle(c.primary._replace(flags=IS_FRAGMENT, fragment_offset=0, total_adu_length=20), c.blocks)
    r = Reassembler(max_pending=1)
    assert r.add(fa[0]) is None
    with pytest.raises(BundleError, match=re.escape("would start partial bundle number 2; at most 1")) as e:
        r.add(fb[0])
    assert (e.value.reason, e.value.block) == (Reason.DEPLETED_STORAGE, 0)
    assert list(r) == [fragment_key(a)]  # nothing evicted, nothing of b kept
    # A fragment that completes its bundle on its own is never held, so it is not refused.
    done = r.add(whole_c)
    assert done == c
    assert [r.add(x) for x in fa[1:]] == [None, None, a]
    assert len(r) == 0
    assert [r.add(x) for x in fb] == [None, None, b]
    # Invalid fragments are refused for what is wrong with them, not for the limit.
    r.add(fa[0])
    with pytest.raises(BundleError, match="ends past the total ADU length"):
        r.add(fb[0]._replace(primary=fb[0].primary._replace(fragment_offset=19)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pending": 0}, "max_pending must be None or an integer of at least 1, not 0"),
        ({"max_pending": True}, "max_pending must be"),
        ({"max_pending": 2.0}, "max_pending must be"),
        ({"max_adu_length": -1}, "max_adu_length must be None or an integer of at least 0, not -1"),
    ],
)
def test_reassembler_limits_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalError, match=re.escape(message)):
        Reassembler(**kwargs)  # type: ignore[arg-type]
