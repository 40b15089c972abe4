"""Endpoint IDs: parse, print, CBOR form, and clear errors."""

from __future__ import annotations

import re

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
        d.ssp = "//x/"


@given(eids)
def test_round_trips(eid: EID) -> None:
    assert EID.parse(str(eid)) == eid
    assert eid_from_cbor(cbor2.loads(eid.cbor)) == eid


HUGE = 10**5000  # str() and repr() of it raise ValueError (Python's int digit limit)


@pytest.mark.parametrize(
    "text",
    [
        "ipn:" + "1" * 5000 + ".1",
        "ipn:1." + "1" * 5000,
        "ipn:" + "9" * 21 + ".1",
        "ipn:1." + "1" * 21,
    ],
    ids=["node 5000 digits", "service 5000 digits", "node 21 digits", "service 21 digits"],
)
def test_overlong_ipn_numbers_are_named(text: str) -> None:
    with pytest.raises(InvalidEndpointID, match=r"more than 20 digits \(at most 2\^64-1\)") as info:
        EID.parse(text)
    assert len(str(info.value)) < 250


def test_twenty_digit_ipn_numbers_are_range_checked() -> None:
    assert EID.parse(f"ipn:{2**64 - 1}.0") == IpnEID(2**64 - 1, 0)
    with pytest.raises(InvalidEndpointID, match=r"2\^64-1, not 99999999999999999999"):
        EID.parse("ipn:" + "9" * 20 + ".0")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([2, [HUGE, 1]], "out of range: [<integer of 16610 bits>, 1]"),
        ([2, [1, -HUGE]], "out of range: [1, <negative integer of 16610 bits>]"),
        ([1, HUGE], "must be 0 (dtn:none), not <integer of 16610 bits>"),
        ([HUGE, 0], "unknown endpoint ID scheme code <integer of 16610 bits>"),
        (HUGE, "2-element array, not <integer of 16610 bits>"),
        ([[[[[[[[[[1]]]]]]]]], 0], "unknown endpoint ID scheme code [[[[...]]]]"),
        (list(range(1000)), "2-element array, not [0, 1, 2, 3, ...]"),
        ([1, "x" * 5000], "malformed dtn endpoint ID 'dtn:xxxx"),
    ],
    ids=["ipn node", "ipn service", "dtn ssp", "scheme", "value", "deep", "long list", "long text"],
)
def test_hostile_values_give_short_clear_errors(value: object, fragment: str) -> None:
    with pytest.raises(InvalidEndpointID) as info:
        eid_from_cbor(value)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 250


def test_hostile_constructor_arguments() -> None:
    with pytest.raises(InvalidEndpointID, match="not <integer of 16610 bits>"):
        IpnEID(HUGE, 0)
    with pytest.raises(InvalidEndpointID, match="must be text, not <integer of 16610 bits>"):
        DtnEID(HUGE)  # type: ignore[arg-type]
    deep: list[object] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(InvalidEndpointID, match=re.escape("must be text, not [[[[...]]]]")):
        DtnEID(deep)  # type: ignore[arg-type]
    with pytest.raises(InvalidEndpointID, match=r"\(5006 characters\): expected dtn://NODE/DEMUX"):
        EID.parse("dtn:" + "x" * 5002)
