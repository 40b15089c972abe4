"""Provenance of crew posts: Ed25519 signatures over the envelope, checks of media files.

The crew's node signs a post's envelope bytes (:func:`~proxima.outreach.post.encode_envelope`),
which list every media file by SHA-256: one signature covers the text and all the media. The
ground checks the signature against the crew's public keys before review, then each media file
against the hash the crew signed. A doctored image (the fake "space selfie" of January 2017)
fails with a message saying so and giving both hashes.

Signed post (CBOR, canonical): ``[1, envelope, signer, signature]``: ``envelope`` the envelope's
bytes as a byte string, ``signer`` the keyring name of the signing key, ``signature`` the 64-byte
Ed25519 signature of ``SIGNING_CONTEXT + envelope``.

Published posts carry a *verification code*: the first 80 bits of the envelope's SHA-256 in
base32, in four groups (``K5QX-3ZJD-...``); anyone holding a copy of the signed post (from the
mission's site) checks that it is the one published, that the crew signed it, and that a media
file is the one signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxima.errors import EnvelopeError, Incomplete, PostError, VerificationError
from proxima.outreach.post import (
    MediaRef,
    Post,
    _canonical,
    _loads,
    check_name,
    decode_envelope,
    encode_envelope,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "SIGNING_CONTEXT",
    "SignedPost",
    "Verified",
    "decode_signed_post",
    "encode_signed_post",
    "key_id",
    "normalize_code",
    "sign_post",
    "verification_code",
    "verification_link",
    "verify_media",
    "verify_post",
    "verify_published",
]

SIGNING_CONTEXT: Final = b"proxima post envelope v1\x00"
"""Prefixed to the envelope before signing, so a post signature is never valid for anything else."""
_VERSION: Final = 1
_CODE_BYTES: Final = 10
_MAX_SIGNED_BYTES: Final = 2 * 1024 * 1024

UNKNOWN_SIGNER: Final = "unknown_signer"
BAD_SIGNATURE: Final = "bad_signature"
MEDIA_MISMATCH: Final = "media_mismatch"
MEDIA_NOT_LISTED: Final = "media_not_listed"
CODE_MISMATCH: Final = "code_mismatch"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SignedPost:
    """An envelope with the name of the key that signed it and the signature."""

    envelope: bytes
    signer: str
    signature: bytes

    @property
    def post(self) -> Post:
        """The post, decoded from the envelope (not verified: use :func:`verify_post`)."""
        return decode_envelope(self.envelope)


@dataclass(frozen=True, slots=True)
class Verified:
    """A post whose signature checked: who signed it, with which key, and its verification code."""

    post: Post
    signer: str
    key_id: str
    code: str
    signed: SignedPost


def sign_post(
    envelope: Post | bytes, private_key: Ed25519PrivateKey, signer: str | None = None
) -> SignedPost:
    """Sign a post (or its envelope bytes) with a crew key; ``signer`` defaults to the post's author."""
    if isinstance(envelope, Post):
        post, data = envelope, encode_envelope(envelope)
    else:
        try:
            post, data = decode_envelope(envelope), bytes(envelope)
        except EnvelopeError as exc:
            raise PostError(f"will not sign a malformed envelope: {exc}", field="envelope") from exc
    name = check_name(post.author if signer is None else signer, "signer")
    return SignedPost(data, name, private_key.sign(SIGNING_CONTEXT + data))


def encode_signed_post(signed: SignedPost) -> bytes:
    """The signed post's canonical CBOR bytes (what travels down, and what the site publishes)."""
    return cbor2.dumps([_VERSION, signed.envelope, signed.signer, signed.signature], canonical=True)


def decode_signed_post(data: bytes | bytearray | memoryview) -> SignedPost:
    """Decode a signed post (exactly one, canonical) and check its envelope's form, not its signature."""
    raw = bytes(data)
    value = _loads(raw, "signed post", _MAX_SIGNED_BYTES)
    if not isinstance(value, list) or len(value) != 4:
        raise EnvelopeError("must be an array of 4 items", field="signed post")
    version, envelope, signer, signature = value
    if type(version) is not int or version != _VERSION:
        raise EnvelopeError(f"format version {version!r}, this node reads version 1", field="version")
    if not isinstance(envelope, bytes):
        raise EnvelopeError("must be a byte string", field="envelope")
    if not isinstance(signer, str):
        raise EnvelopeError("must be text", field="signer")
    try:
        check_name(signer, "signer")
    except PostError as exc:
        raise EnvelopeError(str(exc).removeprefix("signer: "), field="signer") from exc
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise EnvelopeError("must be a 64-byte Ed25519 signature", field="signature")
    signed = SignedPost(envelope, signer, signature)
    _canonical(raw, encode_signed_post(signed), "signed post")
    try:
        decode_envelope(envelope)
    except Incomplete as exc:  # the signed post is whole: a cut envelope inside it is malformed
        raise EnvelopeError(f"the envelope inside is cut short: {exc}", field="envelope") from exc
    return signed


def verification_code(signed: SignedPost | bytes) -> str:
    """The code published with a post: 80 bits of the envelope SHA-256 in base32 (XXXX-XXXX-XXXX-XXXX)."""
    envelope = signed.envelope if isinstance(signed, SignedPost) else bytes(signed)
    text = base64.b32encode(hashlib.sha256(envelope).digest()[:_CODE_BYTES]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalize_code(code: str) -> str:
    """A verification code as typed (any case, with or without dashes or spaces) in its printed form."""
    compact = "".join(code.split()).replace("-", "").upper()
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def verification_link(signed: SignedPost, base_url: str) -> str:
    """The link published with a post: ``BASE_URL/verify/CODE``."""
    return f"{base_url.rstrip('/')}/verify/{verification_code(signed)}"


def verify_post(signed: SignedPost, public_keys: Mapping[str, Ed25519PublicKey]) -> Verified:
    """Check a signed post against the crew's public keys (name -> key); raise VerificationError if not."""
    key = public_keys.get(signed.signer)
    if key is None:
        known = ", ".join(sorted(public_keys)) or "none"
        raise VerificationError(
            f"unknown signer {signed.signer!r}: no such key in the keyring (known: {known})",
            failure=UNKNOWN_SIGNER,
        )
    try:
        key.verify(signed.signature, SIGNING_CONTEXT + signed.envelope)
    except InvalidSignature as exc:
        raise VerificationError(
            f"bad signature: the post was altered after {signed.signer} signed it, or another key signed it",
            failure=BAD_SIGNATURE,
        ) from exc
    post = decode_envelope(signed.envelope)
    return Verified(post, signed.signer, key_id(key), verification_code(signed), signed)


def _kind(ref: MediaRef) -> str:
    major = ref.content_type.split("/", 1)[0]
    return {"image": "image", "video": "video"}.get(major, "audio file")


def verify_media(media: bytes, verified: Verified, name: str | None = None) -> MediaRef:
    """Check a media file against the signed post: it must be the file ``name`` (or any listed file).

    Take a :class:`Verified` (from :func:`verify_post`): a hash matching an unsigned envelope
    proves nothing. Returns the matching media reference.
    """
    post = verified.post
    digest = hashlib.sha256(media).digest()
    if name is None:
        for ref in post.media:
            if hmac.compare_digest(ref.sha256, digest):
                return ref
        raise VerificationError(
            f"media not listed: SHA-256 {digest.hex()} is none of the {len(post.media)} media files "
            f"{verified.signer} signed in post {post.id}",
            failure=MEDIA_NOT_LISTED,
        )
    named = post.media_named(name)
    if named is None:
        listed = ", ".join(m.name for m in post.media) or "no media"
        raise VerificationError(
            f"media not listed: post {post.id} has no file named {name!r} (it lists {listed})",
            failure=MEDIA_NOT_LISTED,
        )
    ref = named
    if not hmac.compare_digest(ref.sha256, digest):
        raise VerificationError(
            f"the {_kind(ref)} differs from the one the crew signed: SHA-256 {digest.hex()}, "
            f"expected {ref.sha256_hex} ({name}: {len(media)} bytes, signed {ref.size} bytes by "
            f"{verified.signer})",
            failure=MEDIA_MISMATCH,
        )
    return ref


def verify_published(
    code: str,
    signed: SignedPost,
    public_keys: Mapping[str, Ed25519PublicKey],
    media: bytes | None = None,
    name: str | None = None,
) -> tuple[Verified, MediaRef | None]:
    """Check a published post's verification code, its signature and, if given, a media file."""
    want = normalize_code(code)
    have = verification_code(signed)
    if not hmac.compare_digest(want, have):
        raise VerificationError(
            f"code mismatch: {want} is not the code of this post ({have})", failure=CODE_MISMATCH
        )
    verified = verify_post(signed, public_keys)
    ref = None if media is None else verify_media(media, verified, name)
    return verified, ref
