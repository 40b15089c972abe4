"""Endpoint IDs: parse, print, CBOR form, and clear errors."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given

from proxima.bpv7 import DTN_NONE, EID, DtnEID, IpnEID, eid_from_cbor
from proxima.errors import InvalidEndpointID
from strategies import eids


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("dtn:none", [1, 0]),
        ("dtn://iss/posts", [1, "//iss/posts"]),
        ("dtn://ground/", [1, "//ground/"]),
        ("dtn://relay-1/~group", [1, "//relay-1/~group"]),
        ("ipn:0.0", [2, [0, 0]]),
        ("ipn:977.1", [2, [977, 1]]),
        (f"ipn:{2**64 - 1}.{2**64 - 1}", [2, [2**64 - 1, 2**64 - 1]]),
    ],
)
def test_text_and_cbor_forms(text: str, value: list[object]) -> None:
    eid = EID.parse(text)
    assert str(eid) == text
    assert eid.to_value() == value
    assert cbor2.loads(eid.cbor) == value
    assert eid_from_cbor(value) == eid
    assert hash(eid_from_cbor(value)) == hash(eid)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ipn:1", "ipn:NODE.SERVICE"),
        ("ipn:01.2", "no leading zeros"),
        ("ipn:1.-2", "ipn:NODE.SERVICE"),
        (f"ipn:{2**64}.1", "2^64-1"),
        ("dtn:iss/posts", "dtn://NODE/DEMUX"),
        ("dtn://iss", "followed by '/'"),
        ("dtn:///posts", "bad node name"),
        ("dtn://i ss/x", "bad node name"),
        ("dtn://iss/a b", "visible ASCII"),
        ("http://example.org/", "unsupported endpoint ID scheme 'http'"),
        ("iss", "no scheme"),
        ("", "no scheme"),
    ],
)
def test_malformed_text_is_named(text: str, fragment: str) -> None:
    with pytest.raises(InvalidEndpointID, match=None) as info:
        EID.parse(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([1, 1], "must be 0"),
        ([1, b"//x/"], "text or 0"),
        ([2, [1]], "[node, service]"),
        ([2, [1, -1]], "out of range"),
        ([2, ["1", 2]], "integers"),
        ([3, "x"], "unknown endpoint ID scheme code 3"),
        ([1], "2-element array"),
        ("dtn:none", "2-element array"),
        ([True, 0], "unknown endpoint ID scheme"),
    ],
)
def test_malformed_values_are_named(value: object, fragment: str) -> None:
    with pytest.raises(InvalidEndpointID) as info:
        eid_from_cbor(value)
    assert fragment in str(info.value)


def test_properties() -> None:
    assert DTN_NONE.is_none and not DTN_NONE.is_singleton
    d = DtnEID("//iss/posts")
    assert (d.node_name, d.demux, str(d.node_id)) == ("iss", "posts", "dtn://iss/")
    assert not DtnEID("//iss/~all").is_singleton
    assert IpnEID(5, 7).node_id == IpnEID(5, 0)
    with pytest.raises(AttributeError):
        d.ssp = "//x/"  # type: ignore[misc]


@given(eids)
def test_round_trips(eid: EID) -> None:
    assert EID.parse(str(eid)) == eid
    assert eid_from_cbor(cbor2.loads(eid.cbor)) == eid
