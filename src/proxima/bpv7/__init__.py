"""Bundle Protocol version 7 (RFC 9171) and BPSec (RFC 9172/9173): pure codecs and rules.

Nothing here touches the clock, the network or the disk: bytes and values in, values out.
"""

from __future__ import annotations

from proxima.bpv7.bundle import (
    BPV7_VERSION,
    KNOWN_BLOCK_TYPES,
    STATUS_REPORT_FLAGS,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    Reason,
    UnknownBlocksOutcome,
    age_block,
    bundle_age_of,
    bundle_to_json,
    check_bundle,
    decode_block_data,
    decode_bundle,
    decode_bundle_prefix,
    encode_block,
    encode_bundle,
    encode_primary,
    hop_count_block,
    hop_count_of,
    payload_block,
    previous_node_block,
    previous_node_of,
    process_unknown_blocks,
)
from proxima.bpv7.crc import CRCType
from proxima.bpv7.eid import DTN_NONE, EID, DtnEID, IpnEID, eid_from_cbor

__all__ = [
    "BPV7_VERSION",
    "DTN_NONE",
    "EID",
    "KNOWN_BLOCK_TYPES",
    "STATUS_REPORT_FLAGS",
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "CRCType",
    "CanonicalBlock",
    "DtnEID",
    "IpnEID",
    "PrimaryBlock",
    "Reason",
    "UnknownBlocksOutcome",
    "age_block",
    "bundle_age_of",
    "bundle_to_json",
    "check_bundle",
    "decode_block_data",
    "decode_bundle",
    "decode_bundle_prefix",
    "eid_from_cbor",
    "encode_block",
    "encode_bundle",
    "encode_primary",
    "hop_count_block",
    "hop_count_of",
    "payload_block",
    "previous_node_block",
    "previous_node_of",
    "process_unknown_blocks",
]
