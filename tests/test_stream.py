"""Streaming bundles: the head decodes without the payload, the payload CRC checks piece by piece."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxima.bpv7 import Bundle, decode_bundle, encode_bundle
from proxima.bpv7.stream import PayloadCRC, decode_bundle_head, encode_bundle_head
from proxima.errors import BundleError, CRCError, Incomplete, ProximaError
from strategies import bundles


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(bundles(max_payload=3000), st.data())
def test_head_then_streamed_payload_equals_whole_decode(b: Bundle, data: st.DataObject) -> None:
    enc = encode_bundle(b)
    head = decode_bundle_head(enc[: data.draw(st.integers(0, 0)) or len(enc)])
    assert head.primary == b.primary
    assert head.blocks[:-1] == b.blocks[:-1]
    assert head.payload_block == b.blocks[-1]._replace(data=b"")
    assert head.total_length == len(enc)
    assert enc[head.payload_offset : head.payload_offset + head.payload_length] == b.payload
    crc = PayloadCRC(head.payload_head, head.payload_block.crc_type)
    step = data.draw(st.integers(1, 500))
    for i in range(head.payload_offset, head.payload_offset + head.payload_length, step):
        crc.update(enc[i : min(i + step, head.payload_offset + head.payload_length)])
    crc.check_trailer(enc[head.payload_offset + head.payload_length :])
    # and the way out gives the same bytes
    out, out_crc = encode_bundle_head(b.primary, b.blocks, len(b.payload))
    out_crc.update(b.payload)
    assert out + b.payload + out_crc.trailer() == enc


@settings(max_examples=100)
@given(bundles(max_payload=200))
def test_head_needs_only_the_bytes_before_the_payload(b: Bundle) -> None:
    enc = encode_bundle(b)
    head = decode_bundle_head(enc)
    assert decode_bundle_head(enc[: head.payload_offset]) == head
    for cut in range(head.payload_offset):
        with pytest.raises(Incomplete):
            decode_bundle_head(enc[:cut])


@settings(max_examples=100)
@given(bundles(max_payload=200), st.data())
def test_payload_corruption_is_caught_by_the_streamed_crc(b: Bundle, data: st.DataObject) -> None:
    b = Bundle(
        b.primary, (*b.blocks[:-1], b.blocks[-1]._replace(crc_type=data.draw(st.sampled_from([1, 2]))))
    )
    enc = bytearray(encode_bundle(b))
    head = decode_bundle_head(bytes(enc))
    if head.payload_length == 0:
        return
    i = head.payload_offset + data.draw(st.integers(0, head.payload_length - 1))
    enc[i] ^= 1 << data.draw(st.integers(0, 7))
    crc = PayloadCRC(head.payload_head, head.payload_block.crc_type)
    crc.update(bytes(enc[head.payload_offset : head.payload_offset + head.payload_length]))
    with pytest.raises(CRCError):
        crc.check_trailer(bytes(enc[head.payload_offset + head.payload_length :]))
    with pytest.raises(CRCError):
        decode_bundle(bytes(enc))


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_random_bytes_only_raise_proxima_errors(data: bytes) -> None:
    try:
        decode_bundle_head(b"\x9f" + data)
    except ProximaError:
        pass


def test_rules_are_checked_on_the_head() -> None:
    import cbor2

    bad = (
        b"\x9f"
        + cbor2.dumps([7, 0, 0, [2, [2, 1]], [2, [1, 1]], [1, 0], [0, 1], 1000])
        + cbor2.dumps([1, 1, 0, 0, b"x" * 100])
    )
    with pytest.raises(BundleError, match="bundle age block"):
        decode_bundle_head(bad)
    with pytest.raises(BundleError, match="no payload block"):
        decode_bundle_head(
            b"\x9f" + cbor2.dumps([7, 0, 0, [2, [2, 1]], [2, [1, 1]], [1, 0], [5, 1], 1000]) + b"\xff"
        )
