"""Provenance: signatures over the envelope, and the fake space selfie caught."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import ConfigError, EnvelopeError, Incomplete, KeyFileError, PostError, VerificationError
from proxima.outreach.post import MediaRef, Post, encode_envelope
from proxima.outreach.provenance import (
    SIGNING_CONTEXT,
    SignedPost,
    decode_signed_post,
    encode_signed_post,
    key_id,
    normalize_code,
    sign_post,
    verification_code,
    verification_link,
    verify_media,
    verify_post,
    verify_published,
)
from proxima.runtime.keys import (
    load_keyring,
    load_private_key,
    load_public_key,
    new_key_pair,
    public_key_text,
    save_private_key,
)

THOMAS = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"thomas").digest())
OLEG = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"oleg").digest())
KEYRING = {"thomas": THOMAS.public_key(), "oleg": OLEG.public_key()}


def fake_jpeg(size: int = 6000) -> bytes:
    """Something shaped like a JPEG: SOI, a header, 'pixels', EOI."""
    pixels = bytes((i * 7) % 251 for i in range(size))
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + pixels + b"\xff\xd9"


SELFIE = fake_jpeg()
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(3000)


def spacewalk_post(**changes: object) -> Post:
    fields: dict[str, object] = {
        "id": "2017-01-13-eva",
        "author": "thomas",
        "created_ms": 537_624_000_000,  # 2017-01-13T12:00:00Z
        "text": {"fr": "Sortie extravéhiculaire terminée !", "en": "Spacewalk done!"},
        "hashtags": ["Proxima"],
        "channels": ["mastodon", "atom"],
        "media": [
            MediaRef.for_bytes("selfie.jpg", "image/jpeg", SELFIE, {"en": "Thomas in his spacesuit"}),
            MediaRef.for_bytes("eva.mp4", "video/mp4", VIDEO),
        ],
    }
    fields.update(changes)
    return Post(**fields)  # type: ignore[arg-type]


def test_sign_and_verify() -> None:
    post = spacewalk_post()
    signed = sign_post(post, THOMAS)
    assert signed.signer == "thomas"
    assert signed.envelope == encode_envelope(post)
    THOMAS.public_key().verify(signed.signature, SIGNING_CONTEXT + signed.envelope)
    verified = verify_post(signed, KEYRING)
    assert verified.post == post
    assert verified.signer == "thomas"
    assert verified.key_id == key_id(THOMAS.public_key())
    assert verified.key_id.startswith("ed25519:")
    assert verify_media(SELFIE, verified, "selfie.jpg").name == "selfie.jpg"
    assert verify_media(VIDEO, verified).name == "eva.mp4"


def test_sign_envelope_bytes_and_signer() -> None:
    post = spacewalk_post(author="philae")
    signed = sign_post(encode_envelope(post), OLEG, signer="oleg")
    assert verify_post(signed, KEYRING).signer == "oleg"
    assert signed.post.author == "philae"
    with pytest.raises(PostError, match="malformed envelope"):
        sign_post(b"\x80", THOMAS)
    with pytest.raises(PostError, match="signer"):
        sign_post(post, THOMAS, signer="Thomas P")


def test_fake_space_selfie() -> None:
    """January 2017: a 'selfie' of Thomas on a spacewalk went round the networks; it was a montage."""
    verified = verify_post(
        decode_signed_post(encode_signed_post(sign_post(spacewalk_post(), THOMAS))), KEYRING
    )
    doctored = bytearray(SELFIE)
    doctored[2000] ^= 0x01  # one pixel byte
    with pytest.raises(VerificationError) as info:
        verify_media(bytes(doctored), verified, "selfie.jpg")
    assert info.value.failure == "media_mismatch"
    message = str(info.value)
    assert message.startswith("the image differs from the one the crew signed: SHA-256 ")
    assert hashlib.sha256(bytes(doctored)).hexdigest() in message
    assert f"expected {hashlib.sha256(SELFIE).hexdigest()}" in message
    assert "selfie.jpg" in message
    assert "thomas" in message
    # A doctored image under no listed name is not listed at all.
    with pytest.raises(VerificationError, match="media not listed: SHA-256") as info:
        verify_media(bytes(doctored), verified)
    assert info.value.failure == "media_not_listed"


def test_video_mismatch_names_the_kind() -> None:
    verified = verify_post(sign_post(spacewalk_post(), THOMAS), KEYRING)
    with pytest.raises(VerificationError, match=r"^the video differs"):
        verify_media(VIDEO + b"\0", verified, "eva.mp4")


def test_media_not_listed_by_name() -> None:
    verified = verify_post(sign_post(spacewalk_post(), THOMAS), KEYRING)
    with pytest.raises(VerificationError, match=r"no file named 'moon.jpg' \(it lists selfie.jpg, eva.mp4\)"):
        verify_media(SELFIE, verified, "moon.jpg")


def test_unknown_signer() -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    with pytest.raises(VerificationError, match=r"unknown signer 'thomas'.*known: oleg") as info:
        verify_post(signed, {"oleg": OLEG.public_key()})
    assert info.value.failure == "unknown_signer"


def test_signer_swapped() -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    swapped = SignedPost(signed.envelope, "oleg", signed.signature)
    with pytest.raises(VerificationError, match="bad signature") as info:
        verify_post(swapped, KEYRING)
    assert info.value.failure == "bad_signature"


def test_text_altered() -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    forged = encode_envelope(spacewalk_post(text={"fr": "Sortie extravéhiculaire annulée !"}))
    with pytest.raises(VerificationError, match="altered after thomas signed it") as info:
        verify_post(SignedPost(forged, "thomas", signed.signature), KEYRING)
    assert info.value.failure == "bad_signature"


def test_media_hash_altered_in_envelope() -> None:
    """Swapping the listed hash for a doctored image's breaks the signature: one signature covers all."""
    signed = sign_post(spacewalk_post(), THOMAS)
    doctored = SELFIE[:-3] + b"\x00\xff\xd9"
    forged = encode_envelope(spacewalk_post(media=[MediaRef.for_bytes("selfie.jpg", "image/jpeg", doctored)]))
    with pytest.raises(VerificationError, match="bad signature"):
        verify_post(SignedPost(forged, "thomas", signed.signature), KEYRING)


@settings(max_examples=50)
@given(st.integers(0, 63), st.integers(0, 7))
def test_any_signature_bit_flip_fails(index: int, bit: int) -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    sig = bytearray(signed.signature)
    sig[index] ^= 1 << bit
    with pytest.raises(VerificationError, match="bad signature"):
        verify_post(SignedPost(signed.envelope, "thomas", bytes(sig)), KEYRING)


@settings(max_examples=50)
@given(st.data())
def test_any_envelope_byte_flip_fails(data: st.DataObject) -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    index = data.draw(st.integers(0, len(signed.envelope) - 1))
    env = bytearray(signed.envelope)
    env[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(VerificationError, match="bad signature"):
        verify_post(SignedPost(bytes(env), "thomas", signed.signature), KEYRING)


def test_signed_post_codec() -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    data = encode_signed_post(signed)
    assert decode_signed_post(data) == signed
    for i in range(len(data)):
        with pytest.raises(Incomplete):
            decode_signed_post(data[:i])
    with pytest.raises(EnvelopeError, match="trailing"):
        decode_signed_post(data + b"\x00")


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([2, b"", "thomas", b"\0" * 64], "version"),
        ([1, "text", "thomas", b"\0" * 64], "envelope"),
        ([1, b"", 5, b"\0" * 64], "signer"),
        ([1, b"", "Thomas Pesquet", b"\0" * 64], "signer"),
        ([1, b"", "thomas", b"\0" * 63], "signature"),
        ([1, b"\x8a\x01", "thomas", b"\0" * 64], "envelope"),
        ([1, b"\x80", "thomas", b"\0" * 64], "envelope"),
        ([1, b""], "signed post"),
    ],
)
def test_malformed_signed_posts(items: list[object], field: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_signed_post(cbor2.dumps(items, canonical=True))
    assert info.value.field == field


def test_verification_code_and_link() -> None:
    signed = sign_post(spacewalk_post(), THOMAS)
    code = verification_code(signed)
    assert len(code) == 19
    assert code.count("-") == 3
    assert code == verification_code(signed.envelope)
    assert normalize_code(code.lower().replace("-", " ")) == code
    assert verification_link(signed, "https://proxima.example/") == f"https://proxima.example/verify/{code}"
    verified, ref = verify_published(code.lower(), signed, KEYRING, SELFIE, "selfie.jpg")
    assert verified.code == code
    assert ref is not None
    assert ref.name == "selfie.jpg"
    assert verify_published(code, signed, KEYRING) == (verified, None)
    other = sign_post(spacewalk_post(id="another"), THOMAS)
    with pytest.raises(VerificationError, match="code mismatch") as info:
        verify_published(verification_code(other), signed, KEYRING)
    assert info.value.failure == "code_mismatch"
    with pytest.raises(VerificationError, match="the image differs"):
        verify_published(code, signed, KEYRING, SELFIE[::-1], "selfie.jpg")


# -- key files --------------------------------------------------------------------------------


def test_new_key_pair_files(tmp_path: Path) -> None:
    pair = new_key_pair("thomas", tmp_path / "keys")
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert pair.private_path.name == "thomas.key"
    assert pair.public_path.name == "thomas.pub"
    private = load_private_key(pair.private_path)
    public = load_public_key(pair.public_path)
    assert key_id(public) == pair.key_id == key_id(private.public_key())
    signed = sign_post(spacewalk_post(), private)
    assert verify_post(signed, load_keyring(tmp_path / "keys")).signer == "thomas"
    with pytest.raises(KeyFileError, match="already exists"):
        new_key_pair("thomas", tmp_path / "keys")
    with pytest.raises(KeyFileError, match="is not a name"):
        new_key_pair("Thomas P", tmp_path / "keys")


def test_key_file_errors(tmp_path: Path) -> None:
    pair = new_key_pair("thomas", tmp_path)
    with pytest.raises(KeyFileError, match="no such key file"):
        load_private_key(tmp_path / "nobody.key")
    with pytest.raises(KeyFileError, match="is a directory"):
        load_public_key(tmp_path)
    with pytest.raises(KeyFileError, match="holds a public key"):
        load_private_key(pair.public_path)
    with pytest.raises(KeyFileError, match="holds a private key"):
        load_public_key(pair.private_path)
    os.chmod(pair.private_path, 0o644)
    with pytest.raises(KeyFileError, match=r"readable by others \(mode 0644\); run chmod 600"):
        load_private_key(pair.private_path)
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key at all")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_private_key(garbage)
    (tmp_path / "garbage.pub").write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFileError, match=r"garbage\.pub: not a PEM public key"):
        load_public_key(tmp_path / "garbage.pub")


def test_wrong_key_types(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1())
    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(ec.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")))
    ec_key.chmod(0o600)
    with pytest.raises(KeyFileError, match="encrypted"):
        load_private_key(ec_key)
    ec_key.unlink()
    from cryptography.hazmat.primitives.serialization import NoEncryption

    ec_key.write_bytes(ec.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ec_key.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_private_key(ec_key)
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(KeyFileError, match="not an Ed25519 key") as info:
        load_public_key(ec_pub)
    assert isinstance(info.value, ConfigError)


def test_unreadable_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_private_key(THOMAS, tmp_path / "thomas.key")

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(KeyFileError, match=r"thomas\.key: cannot read: Permission denied"):
        load_private_key(path)


def test_toml_keyring(tmp_path: Path) -> None:
    pem = OLEG.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    ring = tmp_path / "keyring.toml"
    ring.write_text(f'[keys]\nthomas = "{public_key_text(THOMAS.public_key())}"\noleg = """{pem}"""\n')
    keys = load_keyring(ring)
    assert sorted(keys) == ["oleg", "thomas"]
    assert verify_post(sign_post(spacewalk_post(), OLEG, "oleg"), keys).key_id == key_id(OLEG.public_key())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[keys]\nthomas = 'AAAA'\n", "3 bytes, an Ed25519 public key has 32"),
        ("[keys]\nthomas = '!!'\n", "not base64"),
        ("[keys]\nthomas = 5\n", "must be a string"),
        ("[keys]\n'Thomas P' = 'AAAA'\n", "is not a name"),
        ("[crew]\nthomas = 'AAAA'\n", r"needs a \[keys\] table"),
        ("[keys\n", "not a TOML keyring"),
    ],
)
def test_toml_keyring_errors(tmp_path: Path, text: str, message: str) -> None:
    ring = tmp_path / "keyring.toml"
    ring.write_text(text)
    with pytest.raises(KeyFileError, match=message):
        load_keyring(ring)


def test_directory_keyring_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no public key files"):
        load_keyring(tmp_path)
    with pytest.raises(KeyFileError, match="no such key file"):
        load_keyring(tmp_path / "missing.toml")
    new_key_pair("thomas", tmp_path)
    (tmp_path / "oleg.pub").write_bytes(b"junk")
    with pytest.raises(KeyFileError, match=r"oleg\.pub: not a PEM public key"):
        load_keyring(tmp_path)
