"""Outreach: crew posts as they travel in bundles, and their provenance (Ed25519 signatures).

Pure code (no clock, files or randomness): :mod:`proxima.outreach.post` holds the post and its
CBOR envelope and media parts, :mod:`proxima.outreach.provenance` signs and verifies them. Key
files live in :mod:`proxima.runtime.keys`.
"""

from __future__ import annotations

from proxima.outreach.post import (
    MediaPart,
    MediaRef,
    Post,
    decode_envelope,
    decode_media_part,
    encode_envelope,
    encode_media_part,
    join_media_parts,
    media_parts,
)
from proxima.outreach.provenance import (
    SignedPost,
    Verified,
    decode_signed_post,
    encode_signed_post,
    sign_post,
    verification_code,
    verify_media,
    verify_post,
    verify_published,
)

__all__ = [
    "MediaPart",
    "MediaRef",
    "Post",
    "SignedPost",
    "Verified",
    "decode_envelope",
    "decode_media_part",
    "decode_signed_post",
    "encode_envelope",
    "encode_media_part",
    "encode_signed_post",
    "join_media_parts",
    "media_parts",
    "sign_post",
    "verification_code",
    "verify_media",
    "verify_post",
    "verify_published",
]
