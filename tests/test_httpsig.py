"""HTTP Signatures (draft-cavage-12): the draft's own test vectors, round trips and tampering."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import ConfigError, VerificationError
from proxima.ground.httpsig import (
    digest_header,
    http_date,
    load_private_key,
    load_public_key,
    parse_signature_header,
    sign_request,
    signing_string,
    verify_digest,
    verify_request,
)

# draft-cavage-http-signatures-12, appendix C: the test key pair (keyId "Test").
DRAFT_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
DRAFT_PRIVATE = """-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""
DRAFT_BODY = b'{"hello": "world"}'
DRAFT_HEADERS = {
    "Host": "example.com",
    "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
}
DRAFT_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
DRAFT_TARGET = "/foo?param=value&pet=dog"
# C.2 "Basic Test" and C.3 "All Headers Test".
BASIC_SIGNATURE = (
    "qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFY"
    "Rqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0="
)
ALL_SIGNATURE = (
    "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V0"
    "1IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="
)

PRIVATE = load_private_key(DRAFT_PRIVATE)
PUBLIC = load_public_key(DRAFT_PUBLIC)
NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
INBOX = "https://ground.example/users/proxima/inbox"


def _draft_request(headers_param: str, signature: str) -> dict[str, str]:
    return {
        **DRAFT_HEADERS,
        "Signature": f'keyId="Test",algorithm="rsa-sha256",headers="{headers_param}",signature="{signature}"',
    }


def test_draft_digest_vector() -> None:
    assert digest_header(DRAFT_BODY) == DRAFT_HEADERS["Digest"]
    assert http_date(DRAFT_NOW) == DRAFT_HEADERS["Date"]


def test_draft_basic_vector_signs_and_verifies() -> None:
    lowered = {k.lower(): v for k, v in DRAFT_HEADERS.items()}
    text = signing_string("POST", DRAFT_TARGET, lowered, ("(request-target)", "host", "date"))
    assert text == (
        "(request-target): post /foo?param=value&pet=dog\n"
        "host: example.com\n"
        "date: Sun, 05 Jan 2014 21:31:40 GMT"
    )
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    ours = base64.b64encode(PRIVATE.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    assert ours == BASIC_SIGNATURE
    # The basic test covers no digest: it verifies only when the body is not vouched for (None).
    request = _draft_request("(request-target) host date", BASIC_SIGNATURE)
    params = verify_request("POST", DRAFT_TARGET, request, None, PUBLIC, DRAFT_NOW)
    assert params.key_id == "Test"
    assert params.headers == ("(request-target)", "host", "date")
    with pytest.raises(VerificationError) as info:
        verify_request("POST", DRAFT_TARGET, request, DRAFT_BODY, PUBLIC, DRAFT_NOW)
    assert info.value.failure == "missing_header"


def test_draft_all_headers_vector_verifies() -> None:
    names = "(request-target) host date content-type digest content-length"
    request = _draft_request(names, ALL_SIGNATURE)
    params = verify_request("POST", DRAFT_TARGET, request, DRAFT_BODY, DRAFT_PUBLIC, DRAFT_NOW)
    assert params.algorithm == "rsa-sha256"
    assert len(params.headers) == 6
    with pytest.raises(VerificationError) as info:
        verify_request("POST", DRAFT_TARGET, request, b'{"hello": "moon"}', PUBLIC, DRAFT_NOW)
    assert info.value.failure == "digest_mismatch"
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/foo?param=value&pet=cat", request, DRAFT_BODY, PUBLIC, DRAFT_NOW)
    assert info.value.failure == "bad_signature"


FOLLOW = b'{"type":"Follow"}'


def _signed(body: bytes | None = FOLLOW, method: str = "POST", url: str = INBOX) -> dict[str, str]:
    headers = {"Content-Type": "application/activity+json"} if body is not None else {}
    added = sign_request(method, url, headers, body, "https://a.example/actor#main-key", PRIVATE, NOW)
    return {**headers, **added}


def test_sign_request_covers_the_fediverse_set() -> None:
    headers = _signed()
    assert headers["Host"] == "ground.example"
    assert headers["Date"] == "Sat, 01 Jun 2030 12:00:00 GMT"
    assert headers["Digest"] == digest_header(b'{"type":"Follow"}')
    params = parse_signature_header(headers["Signature"])
    assert params.headers == ("(request-target)", "host", "date", "digest", "content-type")
    assert params.key_id == "https://a.example/actor#main-key"
    assert verify_request("POST", "/users/proxima/inbox", headers, FOLLOW, PUBLIC, NOW) == params


def test_get_is_signed_without_digest() -> None:
    headers = _signed(None, "GET", "https://b.example/users/x?page=2")
    assert "Digest" not in headers
    assert parse_signature_header(headers["Signature"]).headers == ("(request-target)", "host", "date")
    verify_request("GET", "/users/x?page=2", headers, None, PUBLIC, NOW)
    with pytest.raises(VerificationError) as info:
        verify_request("GET", "/users/x?page=3", headers, None, PUBLIC, NOW)
    assert info.value.failure == "bad_signature"


@settings(max_examples=40, deadline=None)
@given(
    body=st.binary(max_size=400),
    path=st.from_regex(r"/[a-z0-9/_-]{0,30}(\?[a-z]=[0-9]{1,3})?", fullmatch=True),
    skew=st.integers(min_value=-299, max_value=299),
)
def test_round_trip(body: bytes, path: str, skew: int) -> None:
    headers = _signed(body, "POST", f"https://ground.example{path}")
    later = NOW + timedelta(seconds=skew)
    params = verify_request("POST", path, headers, body, PUBLIC, later)
    assert params == parse_signature_header(headers["Signature"])
    assert len(params.signature) == 128  # a 1024-bit RSA signature


@settings(max_examples=30, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_body_bit_fails(body: bytes, index: int, bit: int) -> None:
    headers = _signed(body)
    i = index % len(body)
    tampered = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1 :]
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", headers, tampered, PUBLIC, NOW)
    assert info.value.failure == "digest_mismatch"


@pytest.mark.parametrize(
    ("header", "value", "failure"),
    [
        ("Date", "Sat, 01 Jun 2030 12:00:01 GMT", "bad_signature"),
        ("Host", "evil.example", "bad_signature"),
        ("Content-Type", "text/plain", "bad_signature"),
        ("Digest", digest_header(b"other"), "digest_mismatch"),
        ("Date", "not a date", "malformed"),
    ],
)
def test_changed_header_fails(header: str, value: str, failure: str) -> None:
    headers = {**_signed(), header: value}
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", headers, b'{"type":"Follow"}', PUBLIC, NOW)
    assert info.value.failure == failure


def test_digest_rewritten_with_body_still_fails_signature() -> None:
    body = b'{"type":"Delete"}'
    headers = {**_signed(), "Digest": digest_header(body)}
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", headers, body, PUBLIC, NOW)
    assert info.value.failure == "bad_signature"


def test_other_key_fails() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", _signed(), b'{"type":"Follow"}', other, NOW)
    assert info.value.failure == "bad_signature"


@pytest.mark.parametrize("seconds", [-301, 301, 3600])
def test_stale_or_future_date_expires(seconds: int) -> None:
    with pytest.raises(VerificationError) as info:
        verify_request(
            "POST", "/users/proxima/inbox", _signed(), FOLLOW, PUBLIC, NOW + timedelta(seconds=seconds)
        )
    assert info.value.failure == "expired"


def test_case_insensitive_headers_and_lowercase_digest() -> None:
    body = b"{}"
    headers = {k.upper(): v for k, v in _signed(body).items()}
    verify_request("POST", "/users/proxima/inbox", headers, body, PUBLIC, NOW)
    assert verify_digest({"digest": "sha-256=" + digest_header(body).split("=", 1)[1]}, body) is None


def test_content_digest_rfc9530_is_checked() -> None:
    value = digest_header(b"moo").split("=", 1)[1]
    verify_digest({"Content-Digest": f"sha-256=:{value}:"}, b"moo")
    with pytest.raises(VerificationError) as info:
        verify_digest({"Content-Digest": f"sha-256=:{value}:"}, b"mooo")
    assert info.value.failure == "digest_mismatch"
    with pytest.raises(VerificationError) as info:
        verify_digest({"Digest": "MD5=abc="}, b"moo")
    assert info.value.failure == "missing_header"


def test_missing_signature_and_uncovered_headers() -> None:
    body = b'{"type":"Follow"}'
    unsigned = {k: v for k, v in _signed().items() if k != "Signature"}
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", unsigned, body, PUBLIC, NOW)
    assert info.value.failure == "missing_signature"
    # A signature that leaves the digest out does not vouch for the body.
    get_style = sign_request("POST", INBOX, {}, None, "k", PRIVATE, NOW)
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", get_style, body, PUBLIC, NOW)
    assert info.value.failure == "missing_header"


@pytest.mark.parametrize(
    "header",
    [
        "",
        'keyId="a"',
        'signature="AAAA"',
        'keyId="a",signature="AAAA",keyId="b"',
        'keyId="a" signature="AAAA"',
        'keyId=a,signature="AAAA"',
        'keyId="a",signature="not base64!"',
        'keyId="a",signature="AAAA",headers=""',
        'keyId="a",signature="AAAA",headers="date date"',
        'keyId="a",signature="AAAA",created="12"',
        'keyId="a",signature="AAAA",',
        'keyId="a",signature="AAAA";x',
    ],
)
def test_malformed_signature_headers_are_refused(header: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_signature_header(header)
    assert info.value.failure == "malformed"


def test_parse_accepts_spaces_unknown_params_and_created() -> None:
    params = parse_signature_header(
        'keyId="k", algorithm="hs2019", created=1402170695, ext="x", headers="(request-target) (created)", '
        'signature="AAAA"'
    )
    assert params.key_id == "k"
    assert params.created == 1402170695
    assert params.headers == ("(request-target)", "(created)")


def test_unsupported_algorithm() -> None:
    headers = _signed()
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", "hmac-sha256")
    with pytest.raises(VerificationError) as info:
        verify_request("POST", "/users/proxima/inbox", headers, b'{"type":"Follow"}', PUBLIC, NOW)
    assert info.value.failure == "unsupported_algorithm"


def test_bad_keys() -> None:
    with pytest.raises(VerificationError) as info:
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert info.value.failure == "bad_key"
    with pytest.raises(ConfigError):
        load_private_key("not a key")
