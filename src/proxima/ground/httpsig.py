"""HTTP Signatures as the fediverse speaks them: draft-cavage-http-signatures-12 with ``rsa-sha256``.

Mastodon, Pleroma, GoToSocial, bovine and the rest sign every server-to-server request this way:
a ``Signature`` header over ``(request-target) host date`` (plus ``digest`` for a body, and
``content-type`` when there is one), and a ``Digest: SHA-256=...`` header binding the body. This
module is pure: no clock and no I/O, the time is passed in and keys are looked up by the caller
(:func:`parse_signature_header` gives the ``keyId`` to look up before :func:`verify_request`).

Failures raise :class:`~proxima.errors.VerificationError` whose ``failure`` says which check failed:
``"missing_signature"``, ``"malformed"`` (the Signature header breaks the grammar),
``"unsupported_algorithm"``, ``"missing_header"`` (a header the signature needs is absent or not
covered), ``"expired"`` (the date is too far from now, or ``(expires)`` has passed),
``"digest_mismatch"``, ``"bad_key"`` (the public key is not a usable RSA key) and
``"bad_signature"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from proxima.errors import ConfigError, VerificationError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = [
    "ALGORITHM",
    "SignatureParams",
    "digest_header",
    "http_date",
    "load_private_key",
    "load_public_key",
    "parse_signature_header",
    "sign_request",
    "signing_string",
    "verify_digest",
    "verify_request",
]

ALGORITHM = "rsa-sha256"
"""The algorithm this module signs with; ``hs2019`` is accepted on verification for RSA keys."""

_ACCEPTED_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)=(?:"([^"\\]*)"|([0-9]+(?:\.[0-9]+)?))\s*')
_TOKEN_HEADER = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$|^\((?:request-target|created|expires)\)$")
_KNOWN = frozenset({"keyId", "algorithm", "headers", "signature", "created", "expires"})


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """A parsed ``Signature`` header: who signed, how, which headers, and the signature bytes."""

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The RSA private key in ``pem`` (PKCS#1 or PKCS#8, unencrypted); a bad key is a configuration error."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"private key is not an unencrypted PEM key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"private key is {type(key).__name__}, HTTP Signatures here need RSA")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """The RSA public key in ``pem`` (SubjectPublicKeyInfo or PKCS#1), as a remote actor publishes it."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationError(f"public key is not a PEM key: {exc}", failure="bad_key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise VerificationError(f"public key is {type(key).__name__}, not RSA", failure="bad_key")
    return key


def http_date(now: datetime) -> str:
    """``now`` as an HTTP date (IMF-fixdate, always GMT): ``Sun, 05 Jan 2014 21:31:40 GMT``."""
    if now.tzinfo is None:
        raise ValueError(f"{now!r} has no timezone; HTTP dates are in UTC")
    return format_datetime(now.astimezone(UTC), usegmt=True)


def digest_header(body: bytes) -> str:
    """The ``Digest`` header value for ``body`` (RFC 3230, SHA-256): ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def parse_signature_header(value: str) -> SignatureParams:
    """Parse a ``Signature`` header strictly: ``name="value"`` pairs separated by commas.

    ``keyId`` and ``signature`` are required; a parameter given twice, a value that is not
    quoted (``created`` and ``expires`` are integers), text between pairs or a signature that is
    not base64 is ``malformed``. Well-formed parameters the draft does not define are ignored,
    as the draft requires.
    """
    params: dict[str, str] = {}
    pos = 0
    while True:
        match = _PARAM.match(value, pos)
        if match is None:
            raise VerificationError(
                f"Signature header is malformed at character {pos}: {value[pos : pos + 40]!r}",
                failure="malformed",
            )
        name = match.group(1)
        quoted, number = match.group(2), match.group(3)
        if name in params:
            raise VerificationError(f"Signature header gives {name!r} twice", failure="malformed")
        if name in _KNOWN:
            numeric = name in {"created", "expires"}
            if numeric != (number is not None):
                kind = "an unquoted integer" if numeric else "a quoted string"
                raise VerificationError(f"Signature parameter {name!r} must be {kind}", failure="malformed")
            params[name] = quoted if quoted is not None else number
        pos = match.end()
        if pos == len(value):
            break
        if value[pos] != ",":
            raise VerificationError(
                f"Signature header is malformed at character {pos}: expected ',' between parameters",
                failure="malformed",
            )
        pos += 1
    for required in ("keyId", "signature"):
        if not params.get(required):
            raise VerificationError(f"Signature header has no {required!r}", failure="malformed")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("Signature header's signature is not base64", failure="malformed") from exc
    names = tuple(params["headers"].lower().split()) if "headers" in params else ("date",)
    if not names:
        raise VerificationError("Signature header's 'headers' is empty", failure="malformed")
    for header in names:
        if not _TOKEN_HEADER.match(header):
            raise VerificationError(
                f"Signature covers an invalid header name {header!r}", failure="malformed"
            )
    if len(set(names)) != len(names):
        raise VerificationError("Signature header lists a header twice", failure="malformed")
    created = params.get("created")
    expires = params.get("expires")
    return SignatureParams(
        key_id=params["keyId"],
        algorithm=params.get("algorithm"),
        headers=names,
        signature=signature,
        created=None if created is None else _timestamp(created, "created"),
        expires=None if expires is None else _timestamp(expires, "expires"),
    )


def _timestamp(text: str, name: str) -> int:
    """A Signature header's (created)/(expires) value: Unix seconds, possibly with a fraction."""
    try:
        value = float(text)
        if not math.isfinite(value) or abs(value) > 1e12:
            raise ValueError(text)
        return int(value)
    except ValueError:
        raise VerificationError(
            f"Signature {name}={text[:40]!r} is not a Unix time", failure="malformed"
        ) from None


def signing_string(
    method: str,
    target: str,
    headers: Mapping[str, str],
    names: tuple[str, ...],
    *,
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """The text that is signed: one ``name: value`` line per covered header, in order.

    ``target`` is the path with its query; ``headers`` must have lower-case names. A covered
    header that is absent is ``missing_header``.
    """
    lines = []
    for name in names:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif name == "(created)":
            if created is None:
                raise VerificationError("signature covers (created) but gives none", failure="missing_header")
            value = str(created)
        elif name == "(expires)":
            if expires is None:
                raise VerificationError("signature covers (expires) but gives none", failure="missing_header")
            value = str(expires)
        else:
            if name not in headers:
                raise VerificationError(
                    f"signed header {name!r} is not in the request", failure="missing_header"
                )
            value = headers[name].strip()
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _target(url: str) -> tuple[str, str]:
    """(host, request target) of an absolute URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return parts.netloc.lower(), target


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key: rsa.RSAPrivateKey | str | bytes,
    now: datetime,
) -> dict[str, str]:
    """The headers to add to a request so that a fediverse server accepts it as signed by ``key_id``.

    Returns ``Host``, ``Date``, ``Digest`` (when there is a body) and ``Signature`` over
    ``(request-target) host date [digest] [content-type]``, content-type being covered when
    ``headers`` has one. Send the request with exactly these values.
    """
    key = private_key if isinstance(private_key, rsa.RSAPrivateKey) else load_private_key(private_key)
    host, target = _target(url)
    given = _lower(headers)
    added = {"Host": host, "Date": http_date(now)}
    names = ["(request-target)", "host", "date"]
    if body is not None:
        added["Digest"] = digest_header(body)
        names.append("digest")
    if "content-type" in given:
        names.append("content-type")
    merged = {**given, **_lower(added)}
    text = signing_string(method, target, merged, tuple(names))
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{ALGORITHM}",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return added


def verify_digest(headers: Mapping[str, str], body: bytes) -> None:
    """Check the body against its ``Digest`` (RFC 3230) or ``Content-Digest`` (RFC 9530) header.

    Every SHA-256 or SHA-512 value present must match, and at least one must be present.
    """
    lowered = _lower(headers)
    found: list[tuple[str, bytes]] = []
    if "digest" in lowered:
        for item in lowered["digest"].split(","):
            algorithm, sep, value = item.strip().partition("=")
            if not sep:
                raise VerificationError(
                    f"Digest header item {item.strip()!r} has no '='", failure="malformed"
                )
            found.append((algorithm.lower(), _b64(value, "Digest")))
    if "content-digest" in lowered:
        for item in lowered["content-digest"].split(","):
            algorithm, sep, value = item.strip().partition("=")
            if not sep or len(value) < 2 or not (value.startswith(":") and value.endswith(":")):
                raise VerificationError(
                    f"Content-Digest item {item.strip()!r} is malformed", failure="malformed"
                )
            found.append((algorithm.lower(), _b64(value[1:-1], "Content-Digest")))
    checked = 0
    for algorithm, expected in found:
        if algorithm in {"sha-256", "sha-512"}:
            actual = (hashlib.sha256 if algorithm == "sha-256" else hashlib.sha512)(body).digest()
            if actual != expected:
                raise VerificationError(
                    f"the body does not match its {algorithm} digest", failure="digest_mismatch"
                )
            checked += 1
    if not checked:
        raise VerificationError(
            "the request has no SHA-256 or SHA-512 digest of its body", failure="missing_header"
        )


def _b64(value: str, header: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{header} value is not base64", failure="malformed") from exc


def verify_request(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    public_key: rsa.RSAPublicKey | str | bytes,
    now: datetime,
    max_skew_s: float = 300,
) -> SignatureParams:
    """Check a request's signature with ``public_key`` (the key its ``keyId`` names); return the params.

    ``path`` is the request target as received (path and query). The signature must cover
    ``(request-target)``, ``host`` and the date (``date`` or ``(created)``), and for a request with
    a body also its digest, which must match the body. The date must be within ``max_skew_s`` of
    ``now``. Raises :class:`~proxima.errors.VerificationError` on any failure.
    """
    lowered = _lower(headers)
    if "signature" not in lowered:
        raise VerificationError(
            "the request is not signed (no Signature header)", failure="missing_signature"
        )
    params = parse_signature_header(lowered["signature"])
    if params.algorithm is not None and params.algorithm.lower() not in _ACCEPTED_ALGORITHMS:
        raise VerificationError(
            f"signature algorithm {params.algorithm!r} is not supported (rsa-sha256, hs2019)",
            failure="unsupported_algorithm",
        )
    covered = set(params.headers)
    for needed in ("(request-target)", "host"):
        if needed not in covered:
            raise VerificationError(f"the signature does not cover {needed}", failure="missing_header")
    if "date" not in covered and "(created)" not in covered:
        raise VerificationError("the signature covers neither date nor (created)", failure="missing_header")
    has_body = body is not None and (len(body) > 0 or method.upper() not in {"GET", "HEAD"})
    if has_body and "digest" not in covered and "content-digest" not in covered:
        raise VerificationError("the signature does not cover the body's digest", failure="missing_header")
    _check_time(params, lowered, now, max_skew_s)
    if has_body and body is not None:
        verify_digest({k: v for k, v in lowered.items() if k in covered}, body)
    key = public_key if isinstance(public_key, rsa.RSAPublicKey) else load_public_key(public_key)
    text = signing_string(
        method, path, lowered, params.headers, created=params.created, expires=params.expires
    )
    try:
        key.verify(params.signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise VerificationError(
            f"the signature does not verify with the key {params.key_id!r}", failure="bad_signature"
        ) from exc
    return params


def _check_time(
    params: SignatureParams, headers: Mapping[str, str], now: datetime, max_skew_s: float
) -> None:
    stamp = now.timestamp()
    if params.expires is not None and stamp > params.expires:
        raise VerificationError("the signature has expired", failure="expired")
    if params.created is not None and params.created > stamp + max_skew_s:
        raise VerificationError("the signature was created in the future", failure="expired")
    if "date" in params.headers:
        try:
            sent = parsedate_to_datetime(headers["date"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise VerificationError(
                f"the Date header {headers.get('date')!r} is not an HTTP date", failure="malformed"
            ) from exc
        if sent.tzinfo is None:
            raise VerificationError(f"the Date header {headers['date']!r} has no zone", failure="malformed")
        skew = sent.timestamp() - stamp
    elif params.created is not None:
        skew = params.created - stamp
    else:  # pragma: no cover - verify_request requires date or (created)
        return
    if abs(skew) > max_skew_s:
        when = "ahead of" if skew > 0 else "behind"
        raise VerificationError(
            f"the request's date is {abs(skew):.0f} s {when} now (at most {max_skew_s:.0f} s)",
            failure="expired",
        )
