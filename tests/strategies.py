"""Hypothesis strategies for endpoint IDs, blocks and valid bundles."""

from __future__ import annotations

from hypothesis import strategies as st

from proxima.bpv7 import (
    DTN_NONE,
    EID,
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    DtnEID,
    IpnEID,
    PrimaryBlock,
    age_block,
    hop_count_block,
    payload_block,
    previous_node_block,
)

U64 = (1 << 64) - 1

u64 = st.one_of(
    st.integers(0, 30),
    st.integers(0, 300),
    st.integers(0, 70_000),
    st.integers(0, 1 << 33),
    st.integers(0, U64),
)

ipn_eids = st.builds(IpnEID, u64, u64)
_node_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._~")
dtn_eids = st.builds(
    lambda node, demux: DtnEID(f"//{node}/{demux}"),
    st.text(_node_chars, min_size=1, max_size=12),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=16),
)
eids: st.SearchStrategy[EID] = st.one_of(ipn_eids, dtn_eids, st.just(DTN_NONE))
crc_types = st.sampled_from([0, 1, 2])

unknown_block_types = st.integers(13, 300)
block_flags = st.sampled_from(
    [0, BlockFlag.REPLICATE, BlockFlag.DELETE_BLOCK_IF_UNPROCESSED, 0x3, 0x13, 0x7F]
).map(int)


@st.composite
def bundles(draw: st.DrawFn, *, max_payload: int = 600) -> Bundle:
    """Valid bundles: every primary field, optional extension blocks, fragments."""
    source = draw(st.one_of(ipn_eids, dtn_eids.filter(lambda e: e.is_singleton), st.just(DTN_NONE)))
    flags = draw(st.sampled_from([0, 0x20, 0x40, 0x4, 0x44, 0x4000, 0x70000, 0x74060, 0x2, 0x26]).map(int))
    if source.is_none:
        flags = (flags | BundleFlag.MUST_NOT_FRAGMENT) & ~0x74000
    if flags & BundleFlag.ADMIN_RECORD:
        flags &= ~0x74000
    payload = draw(st.binary(max_size=max_payload))
    fragment = not flags & BundleFlag.MUST_NOT_FRAGMENT and draw(st.booleans())
    offset = total = None
    if fragment:
        flags |= BundleFlag.IS_FRAGMENT
        offset = draw(st.integers(0, 10_000))
        total = offset + len(payload) + draw(st.integers(0, 10_000))
    created = draw(st.one_of(st.just(0), u64))
    crc = draw(crc_types)
    primary = PrimaryBlock(
        destination=draw(st.one_of(ipn_eids, dtn_eids)),
        source=source,
        report_to=draw(eids),
        creation_time=created,
        sequence=draw(u64),
        lifetime=draw(u64),
        flags=int(flags),
        crc_type=crc,
        fragment_offset=offset,
        total_adu_length=total,
    )
    blocks: list[CanonicalBlock] = []
    numbers = iter(draw(st.permutations(list(range(2, 12)))))
    if draw(st.booleans()):
        node = draw(st.one_of(ipn_eids, dtn_eids)).node_id
        blocks.append(previous_node_block(node, number=next(numbers), crc_type=draw(crc_types)))
    if created == 0 or draw(st.booleans()):
        blocks.append(age_block(draw(u64), number=next(numbers), crc_type=draw(crc_types)))
    if draw(st.booleans()):
        limit = draw(st.integers(1, 255))
        blocks.append(
            hop_count_block(limit, draw(st.integers(0, 300)), number=next(numbers), crc_type=draw(crc_types))
        )
    for _ in range(draw(st.integers(0, 2))):
        blocks.append(
            CanonicalBlock(
                draw(unknown_block_types),
                next(numbers),
                draw(block_flags),
                draw(crc_types),
                draw(st.binary(max_size=40)),
            )
        )
    blocks = draw(st.permutations(blocks))
    blocks.append(payload_block(payload, crc_type=draw(crc_types), flags=draw(st.sampled_from([0, 1]))))
    if source.is_none or flags & BundleFlag.ADMIN_RECORD:
        # RFC 9171 §4.2.4: no "report if unprocessed" in admin records and anonymous bundles
        blocks = [b._replace(flags=b.flags & ~int(BlockFlag.REPORT_IF_UNPROCESSED)) for b in blocks]
    return Bundle(primary, tuple(blocks))
