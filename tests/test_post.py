"""Crew posts: the rules a draft must follow, and the envelope and media part codecs."""

from __future__ import annotations

import hashlib
import string
import unicodedata

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import EnvelopeError, Incomplete, LocalError, PostError, RemoteError
from proxima.outreach.post import (
    MAX_MEDIA,
    MAX_TEXT_CHARS,
    MediaPart,
    MediaRef,
    Post,
    decode_envelope,
    decode_media_part,
    encode_envelope,
    encode_media_part,
    join_media_parts,
    language_tag,
    media_parts,
    post_to_json,
)

PHOTO = bytes(range(256)) * 40


def photo_ref(name: str = "cupola.jpg", data: bytes = PHOTO) -> MediaRef:
    return MediaRef.for_bytes(
        name, "image/jpeg", data, {"fr": "La Terre vue de la Cupola", "en": "Earth from the Cupola"}
    )


def make_post(**changes: object) -> Post:
    fields: dict[str, object] = {
        "id": "6f1c2a4e-2b7d-4f57-9a43-0d8c5b1e9f00",
        "author": "thomas",
        "created_ms": 537_000_000_000,
        "text": {"fr": "Bonjour depuis l'ISS ! 🚀", "en": "Hello from the ISS! 🚀"},
        "hashtags": ["#Proxima", "AllezThomas"],
        "campaign": "#Proxima",
        "channels": ["mastodon", "bluesky"],
        "media": [photo_ref()],
    }
    fields.update(changes)
    return Post(**fields)  # type: ignore[arg-type]


# -- strategies -------------------------------------------------------------------------------

_LANGS = st.sampled_from(["fr", "en", "de", "pt-BR", "zh-Hant", "es-419", "it", "ja", "ru", "sr-Latn-RS"])


def _ok_char(c: str) -> bool:
    return unicodedata.category(c) not in ("Cc", "Cs")


_text = st.text(st.characters(codec="utf-8").filter(_ok_char), min_size=1, max_size=60).filter(
    lambda s: bool(s.strip())
)
_word = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=20)
_name = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,40}", fullmatch=True)


@st.composite
def media_refs(draw: st.DrawFn, name: str) -> MediaRef:
    return MediaRef(
        name=name,
        content_type=draw(st.sampled_from(["image/jpeg", "image/png", "video/mp4", "audio/ogg"])),
        size=draw(st.integers(1, 512 * 1024 * 1024)),
        sha256=draw(st.binary(min_size=32, max_size=32)),
        alt=draw(st.dictionaries(_LANGS, _text, max_size=3)),
    )


@st.composite
def posts(draw: st.DrawFn) -> Post:
    names = draw(st.lists(_name.map(lambda n: n + ".jpg"), max_size=4, unique=True))
    return Post(
        id=draw(_id),
        author=draw(_name),
        created_ms=draw(st.integers(0, (1 << 64) - 1)),
        text=draw(st.dictionaries(_LANGS, _text, min_size=1, max_size=4)),
        hashtags=draw(st.lists(_word, max_size=5, unique_by=str.casefold)),
        campaign=draw(st.none() | _word),
        channels=draw(st.lists(_name, max_size=4, unique=True)),
        media=[draw(media_refs(n)) for n in names],
        reply_to=draw(st.none() | _id),
    )


# -- drafts -----------------------------------------------------------------------------------


def test_post_normalizes_tags_and_hashtags() -> None:
    post = make_post(text={"EN": "Hi", "pt-br": "Olá", "zh-hant-tw": "你好"}, hashtags=["#Proxima"])
    assert list(post.text) == ["en", "pt-BR", "zh-Hant-TW"]
    assert post.hashtags == ("Proxima",)
    assert post.campaign == "Proxima"
    assert post.media_named("cupola.jpg") == photo_ref()
    assert post.media_named("other.jpg") is None
    doc = post_to_json(post)
    assert doc["media"][0]["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    assert doc["hashtags"] == ["Proxima"]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr", "fr"),
        ("FR-ca", "fr-CA"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("es-419", "es-419"),
        ("en-x-iss", "en-x-iss"),
    ],
)
def test_language_tags(tag: str, expected: str) -> None:
    assert language_tag(tag) == expected


@pytest.mark.parametrize("tag", ["", "f", "french language", "fr_FR", "en-", "-en", "12", "en--us"])
def test_bad_language_tags(tag: str) -> None:
    with pytest.raises(PostError, match="BCP 47"):
        language_tag(tag)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"id": ""}, "id", "is not a post id"),
        ({"id": "has space"}, "id", "is not a post id"),
        ({"author": "Thomas Pesquet"}, "author", "is not a name"),
        ({"created_ms": -1}, "created_ms", "DTN time"),
        ({"created_ms": True}, "created_ms", "DTN time"),
        ({"text": {}}, "text", "at least one language"),
        ({"text": {"fr": "   "}}, "text[fr]", "is empty"),
        ({"text": {"fr": "x" * (MAX_TEXT_CHARS + 1)}}, "text[fr]", "5001 characters, at most 5000"),
        ({"text": {"fr": "bip\x07"}}, "text[fr]", "control character U\\+0007"),
        ({"text": {"fr": "a", "FR": "b"}}, "text", "language fr given twice"),
        ({"text": {"français": "a"}}, "text[français]", "BCP 47"),
        ({"text": ["fr", "a"]}, "text", "must map language tags"),
        ({"hashtags": ["#Pro xima"]}, "hashtags[0]", "not a hashtag"),
        ({"hashtags": ["Proxima", "#proxima"]}, "hashtags[1]", "given twice"),
        ({"hashtags": "Proxima"}, "hashtags", "list"),
        ({"campaign": "#"}, "campaign", "not a hashtag"),
        ({"channels": ["Mastodon"]}, "channels[0]", "channel name"),
        ({"channels": ["atom", "atom"]}, "channels[1]", "given twice"),
        ({"media": [photo_ref()] * 2}, "media[1].name", "given twice"),
        ({"media": [photo_ref(f"{i}.jpg") for i in range(MAX_MEDIA + 1)]}, "media", "at most 10"),
        ({"media": ["photo.jpg"]}, "media[0]", "must be a MediaRef"),
        ({"reply_to": "what is it like?"}, "reply_to", "question id"),
    ],
)
def test_draft_errors_name_the_field(changes: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(PostError, match=message) as info:
        make_post(**changes)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, LocalError)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("../etc/passwd", "image/jpeg", 10, b"\0" * 32), "name"),
        (("a.jpg", "application/pdf", 10, b"\0" * 32), "content_type"),
        (("a.jpg", "image", 10, b"\0" * 32), "content_type"),
        (("a.jpg", "image/jpeg", 0, b"\0" * 32), "size"),
        (("a.jpg", "image/jpeg", 513 * 1024 * 1024, b"\0" * 32), "size"),
        (("a.jpg", "image/jpeg", 10, b"\0" * 31), "sha256"),
    ],
)
def test_media_ref_errors(args: tuple[str, str, int, bytes], field: str) -> None:
    with pytest.raises(PostError) as info:
        MediaRef(*args)
    assert info.value.field == field


def test_alt_text_limit() -> None:
    with pytest.raises(PostError, match=r"alt\[en\]: 1501 characters"):
        MediaRef("a.jpg", "image/jpeg", 1, b"\0" * 32, {"en": "x" * 1501})


# -- envelope codec ---------------------------------------------------------------------------


@settings(max_examples=200)
@given(posts())
def test_envelope_round_trip(post: Post) -> None:
    data = encode_envelope(post)
    assert decode_envelope(data) == post
    assert encode_envelope(decode_envelope(data)) == data


def test_envelope_is_deterministic() -> None:
    a = make_post(text={"fr": "Bonjour", "en": "Hello"})
    b = make_post(text={"en": "Hello", "fr": "Bonjour"})
    assert encode_envelope(a) == encode_envelope(b)
    value = cbor2.loads(encode_envelope(a))
    assert value[0] == 1
    assert value[8][0][3] == hashlib.sha256(PHOTO).digest()


def test_envelope_byte_by_byte() -> None:
    data = encode_envelope(make_post(reply_to="question-42"))
    for i in range(len(data)):
        with pytest.raises(Incomplete):
            decode_envelope(data[:i])
    assert decode_envelope(data).reply_to == "question-42"


@given(posts(), st.binary(min_size=1, max_size=8))
def test_envelope_trailing_bytes(post: Post, extra: bytes) -> None:
    with pytest.raises(EnvelopeError, match=r"trailing byte"):
        decode_envelope(encode_envelope(post) + extra)


def _with(index: int, value: object, *, media_index: int | None = None) -> bytes:
    items = cbor2.loads(encode_envelope(make_post()))
    if media_index is None:
        items[index] = value
    else:
        items[8][0][media_index] = value
    return bytes(cbor2.dumps(items, canonical=True))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_with(0, 2), "version"),
        (_with(1, 17), "id"),
        (_with(3, "yesterday"), "created_ms"),
        (_with(3, -5), "created_ms"),
        (_with(4, {"fr": 3}), "text[fr]"),
        (_with(4, {}), "text"),
        (_with(5, "Proxima"), "hashtags"),
        (_with(8, [[1, 2]]), "media[0]"),
        (_with(0, b"", media_index=3), "media[0].sha256"),
        (_with(0, "image/gif; x", media_index=1), "media[0].content_type"),
        (_with(0, "big", media_index=2), "media[0].size"),
        (_with(0, {"xx-yyyyyyyyyy": "a"}, media_index=4), "media[0].alt[xx-yyyyyyyyyy]"),
        (_with(5, ["#Proxima"]), "envelope"),  # not canonical: hashtags are kept without "#"
        (bytes(cbor2.dumps({"id": 1})), "envelope"),
        (bytes(cbor2.dumps([1, 2, 3])), "envelope"),
        (b"\xff\x00", "envelope"),
    ],
)
def test_malformed_envelopes_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_envelope(data)
    assert info.value.field == field
    assert isinstance(info.value, RemoteError)


def test_envelope_not_canonical() -> None:
    data = encode_envelope(make_post())
    assert data[0] == 0x8A
    # The same array with a one-byte count in the head (0x98 0x0a): valid CBOR, not canonical.
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_envelope(b"\x98\x0a" + data[1:])


def test_envelope_too_large() -> None:
    with pytest.raises(EnvelopeError, match="more than"):
        decode_envelope(b"\x00" * (1024 * 1024 + 1))


@given(st.binary(max_size=200))
def test_envelope_decoder_never_crashes(data: bytes) -> None:
    try:
        decode_envelope(data)
    except (Incomplete, EnvelopeError):
        pass


# -- media parts ------------------------------------------------------------------------------


def test_media_parts_round_trip() -> None:
    post = make_post()
    parts = media_parts(post, "cupola.jpg", PHOTO, max_part_bytes=4000)
    assert len(parts) == 3
    assert sum(len(p.data) for p in parts) == len(PHOTO)
    decoded = [decode_media_part(encode_media_part(p)) for p in parts]
    assert decoded == parts
    assert join_media_parts(list(reversed(decoded))) == PHOTO


def test_media_parts_refuse_other_bytes() -> None:
    post = make_post()
    with pytest.raises(PostError, match="not the file"):
        media_parts(post, "cupola.jpg", PHOTO[:-1] + b"\0")
    with pytest.raises(PostError, match="not one of the post's media"):
        media_parts(post, "selfie.jpg", PHOTO)


def test_media_part_byte_by_byte_and_trailing() -> None:
    data = encode_media_part(MediaPart("p1", b"\1" * 32, 10, 20, b"0123456789"))
    for i in range(len(data)):
        with pytest.raises(Incomplete):
            decode_media_part(data[:i])
    with pytest.raises(EnvelopeError, match="1 trailing byte after the media part"):
        decode_media_part(data + b"\0")


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ([1, "p1", b"\1" * 31, 0, 5, b"abcde"], "sha256"),
        ([1, "p1", b"\1" * 32, 3, 5, b"abcde"], "data"),
        ([1, "p1", b"\1" * 32, 0, 5, b""], "data"),
        ([1, "p1", b"\1" * 32, -1, 5, b"abcde"], "offset"),
        ([1, "p 1", b"\1" * 32, 0, 5, b"abcde"], "post_id"),
        ([2, "p1", b"\1" * 32, 0, 5, b"abcde"], "version"),
        ([1, "p1", b"\1" * 32, 0, 5], "media part"),
    ],
)
def test_malformed_media_parts(part: list[object], field: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_media_part(cbor2.dumps(part, canonical=True))
    assert info.value.field == field


def test_join_media_parts_gaps() -> None:
    parts = media_parts(make_post(), "cupola.jpg", PHOTO, max_part_bytes=4000)
    with pytest.raises(EnvelopeError, match=r"bytes 4000\.\.8000 are missing"):
        join_media_parts([parts[0], parts[2]])
    with pytest.raises(EnvelopeError, match="are missing"):
        join_media_parts(parts[:2])
    with pytest.raises(EnvelopeError, match="no parts"):
        join_media_parts([])
    other = MediaPart("other", parts[1].sha256, 4000, parts[1].total_size, parts[1].data)
    with pytest.raises(EnvelopeError, match="different media files"):
        join_media_parts([parts[0], other, parts[2]])
