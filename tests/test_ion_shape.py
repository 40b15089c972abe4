"""Bundles shaped like those ION 4.1.3 sends (the block layout in `ion_bundle`): decoded, kept verbatim,
forwarded so ION accepts them."""

from __future__ import annotations

import cbor2

from proxima.agent.agent import BundleAgent, Deliver
from proxima.agent.routing import StaticRouter
from proxima.bpv7 import EID, decode_bundle, encode_bundle
from proxima.bpv7.crc import crc16_x25

ION_NODE, US, GROUND = EID.parse("ipn:5.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")


def ion_bundle(*, anonymous: bool = False) -> bytes:
    """Indefinite outer array, CRC-16 on the primary only, previous node (flags 0x10), bundle age,
    ION's private QoS block 193 (flags 0x01: replicate), payload last; CRC type 0 elsewhere."""
    source = [1, 0] if anonymous else [2, [5, 1]]
    flags = 0x44 if anonymous else 0
    primary = [7, flags, 1, [2, [3, 1]], source, [2, [5, 0]] if not anonymous else [1, 0], [0, 7], 3_600_000]
    body = cbor2.dumps([*primary, b"\x00\x00"])[:-3] + b"\x42"
    primary_bytes = body + crc16_x25(body + b"\0\0").to_bytes(2, "big")
    blocks = [
        [6, 2, 0x10, 0, cbor2.dumps([2, [5, 0]])],
        [7, 3, 0, 0, cbor2.dumps(1500)],
        [193, 4, 0x01, 0, cbor2.dumps([1, 0, 0])],
        [1, 1, 0, 0, b"bonjour from ION"],
    ]
    return b"\x9f" + primary_bytes + b"".join(cbor2.dumps(b) for b in blocks) + b"\xff"


def test_ion_bundle_decodes_and_its_private_block_is_kept() -> None:
    raw = ion_bundle()
    b = decode_bundle(raw)
    assert encode_bundle(b) == raw  # ION's encoding is deterministic too: same bytes back
    assert [blk.type for blk in b.blocks] == [6, 7, 193, 1]


def test_anonymous_bpsource_bundle_decodes() -> None:
    b = decode_bundle(ion_bundle(anonymous=True))
    assert b.primary.source.is_none and b.primary.flags == 0x44


def test_forwarded_ion_bundle_keeps_block_193_and_avoids_ions_crc_bug() -> None:
    relay = BundleAgent(US, StaticRouter([GROUND]))
    relay.receive(ion_bundle(), now_ms=1000)
    t = relay.next_to_send(GROUND, 1000)
    assert t is not None
    out = decode_bundle(t.data)
    qos = [blk for blk in out.blocks if blk.type == 193]
    assert qos and qos[0].flags == 0x01 and qos[0].data == cbor2.dumps([1, 0, 0])
    prev = next(blk for blk in out.blocks if blk.type == 6)
    # ION 4.1.3 clears bits 0x08/0x10 before checking an extension block's CRC, so a CRC'd block
    # with 0x10 set is dropped there; ours carries flag 0x10 clear.
    assert not prev.flags & 0x10
    ground = BundleAgent(GROUND, StaticRouter(), endpoints=(EID.parse("ipn:3.1"),))
    [d] = [a for a in ground.receive(t.data, now_ms=1000) if isinstance(a, Deliver)]
    assert d.bundle.payload == b"bonjour from ION"
