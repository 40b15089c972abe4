"""A crew post as written on board, and its deterministic CBOR encodings.

A post travels down as several bundles: first its *envelope* (the text in each language, the
hashtags, campaign, channels, and a reference to each media file: content type, size, SHA-256,
alt text, file name), then each media file's bytes in *media parts* of their own (lower-class
bundles, possibly several parts per file). The envelope names media by hash, so a signature over
the envelope's bytes covers the text and every media file at once (:mod:`proxima.outreach.provenance`).

Envelope (CBOR, RFC 8949 deterministic encoding: shortest heads, definite lengths, map keys
sorted), an array of 10 items::

    [1,                      # format version
     id,                     # text: the creator's identifier (e.g. a UUID), unique per post
     author,                 # text: crew member or persona ("thomas", "philae")
     created_ms,             # uint: DTN time, milliseconds since 2000-01-01T00:00:00Z
     {lang: text, ...},      # text per BCP 47 language tag ("fr", "en", "pt-BR"), at least one
     [hashtag, ...],         # texts without "#"
     campaign / null,        # text without "#"
     [channel, ...],         # target channel names ("mastodon", "bluesky", ...)
     [[name, content_type, size, sha256, {lang: alt text, ...}], ...],  # media references
     reply_to / null]        # text: the public question answered, if any

Media part: ``[1, post_id, sha256, offset, total_size, data]``: ``data`` is bytes
``offset .. offset+len(data)`` of the media file whose SHA-256 is ``sha256``.

The decoders are strict: they accept only the canonical encoding (what :func:`encode_envelope`
writes), raise :class:`~proxima.errors.Incomplete` while the input stops early, and
:class:`~proxima.errors.EnvelopeError` naming the field for anything else, including trailing bytes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from proxima.errors import EnvelopeError, Incomplete, PostError

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_ALT_CHARS",
    "MAX_CHANNELS",
    "MAX_ENVELOPE_BYTES",
    "MAX_HASHTAGS",
    "MAX_LANGUAGES",
    "MAX_MEDIA",
    "MAX_MEDIA_BYTES",
    "MAX_TEXT_CHARS",
    "MEDIA_KINDS",
    "MediaPart",
    "MediaRef",
    "Post",
    "check_name",
    "decode_envelope",
    "decode_media_part",
    "encode_envelope",
    "encode_media_part",
    "join_media_parts",
    "language_tag",
    "media_parts",
    "post_to_json",
]

ENVELOPE_VERSION: Final = 1
MAX_TEXT_CHARS: Final = 5000
"""Characters of text per language (channels with less cut it into threads)."""
MAX_ALT_CHARS: Final = 1500
"""Characters of alt text per language (Mastodon's limit)."""
MAX_LANGUAGES: Final = 8
MAX_HASHTAGS: Final = 30
MAX_TAG_CHARS: Final = 100
MAX_CHANNELS: Final = 16
MAX_MEDIA: Final = 10
MAX_MEDIA_BYTES: Final = 512 * 1024 * 1024
"""Bytes of one media file (a photo, a short video, an audio message)."""
MAX_FILE_NAME_BYTES: Final = 255
MAX_ENVELOPE_BYTES: Final = 1024 * 1024
"""Bytes of an encoded envelope; every valid post fits (text and alt text limits included)."""
MEDIA_KINDS: Final = ("image", "video", "audio")
"""The top-level media types a post may carry."""

_U64_MAX: Final = (1 << 64) - 1
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TAG = re.compile(r"\w+")
_CONTENT_TYPE = re.compile(r"(image|video|audio)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# BCP 47 (RFC 5646) well-formed tags:
# language[-extlang][-script][-region](-variant)*(-extension)*[-x-private].
_LANG = re.compile(
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-[a-z]{4})?"
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"
    r"(?:-x(?:-[a-z0-9]{1,8})+)?",
    re.ASCII,
)


def _fail(field_name: str, message: str) -> PostError:
    return PostError(message, field=field_name)


def language_tag(tag: object, field_name: str = "language") -> str:
    """Check a BCP 47 language tag and return it in its canonical case (``pt-br`` -> ``pt-BR``)."""
    if not isinstance(tag, str):
        raise _fail(field_name, f"a language tag must be text, not {type(tag).__name__}")
    low = tag.lower()
    if not _LANG.fullmatch(low):
        raise _fail(field_name, f"{tag!r} is not a BCP 47 language tag (such as fr, en, pt-BR, zh-Hant)")
    parts = low.split("-")
    out = [parts[0]]
    singleton = False
    for sub in parts[1:]:
        if singleton or len(sub) == 1:
            singleton = True
            out.append(sub)
        elif len(sub) == 4 and sub.isalpha():
            out.append(sub.title())
        elif len(sub) == 2:
            out.append(sub.upper())
        else:
            out.append(sub)
    return "-".join(out)


def _check_text(value: object, field_name: str, max_chars: int, *, multiline: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(field_name, f"must be text, not {type(value).__name__}")
    if not value.strip():
        raise _fail(field_name, "is empty")
    if len(value) > max_chars:
        raise _fail(field_name, f"{len(value)} characters, at most {max_chars}")
    allowed = "\n\t" if multiline else ""
    for i, ch in enumerate(value):
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs"):
            raise _fail(field_name, f"control character U+{ord(ch):04X} at position {i}")
    return value


def _check_pattern(value: object, field_name: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str):
        raise _fail(field_name, f"must be text, not {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise _fail(field_name, f"{value!r} is not {what}")
    return value


def check_name(value: object, field_name: str = "name") -> str:
    """Check a crew member's or persona's name: lower-case letters, digits, ``.``, ``_``, ``-``."""
    return _check_pattern(
        value, field_name, _NAME, "a name (1 to 64 lower-case letters, digits, '.', '_', '-')"
    )


def _hashtag(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise _fail(field_name, f"must be text, not {type(value).__name__}")
    tag = value.removeprefix("#")
    if not _TAG.fullmatch(tag) or len(tag) > MAX_TAG_CHARS:
        raise _fail(field_name, f"{value!r} is not a hashtag (1 to {MAX_TAG_CHARS} letters, digits or '_')")
    return tag


def _languages(value: object, field_name: str, max_chars: int, *, required: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail(field_name, f"must map language tags to text, not {type(value).__name__}")
    if required and not value:
        raise _fail(field_name, "needs text in at least one language")
    if len(value) > MAX_LANGUAGES:
        raise _fail(field_name, f"{len(value)} languages, at most {MAX_LANGUAGES}")
    out: dict[str, str] = {}
    for tag, text in value.items():
        lang = language_tag(tag, f"{field_name}[{tag}]")
        if lang in out:
            raise _fail(field_name, f"language {lang} given twice")
        out[lang] = _check_text(text, f"{field_name}[{lang}]", max_chars)
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One media file of a post, as the envelope lists it (its bytes travel in media parts).

    ``name`` is the file name on board (unique in the post), ``content_type`` an ``image/``,
    ``video/`` or ``audio/`` media type, ``alt`` the alt text per language (may be empty, though
    channels will ask for it).
    """

    name: str
    content_type: str
    size: int
    sha256: bytes
    alt: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            raise _fail("name", "a file name must be non-empty text")
        if (
            name in (".", "..")
            or any(c in "/\\" or unicodedata.category(c) in ("Cc", "Cs") for c in name)
            or len(name.encode("utf-8")) > MAX_FILE_NAME_BYTES
        ):
            raise _fail("name", f"{name!r} is not a plain file name (no path, at most 255 bytes)")
        ctype = self.content_type
        if not isinstance(ctype, str) or not _CONTENT_TYPE.fullmatch(ctype.lower()):
            raise _fail(
                "content_type", f"{ctype!r} is not a media type of kind {', '.join(MEDIA_KINDS)} (image/jpeg)"
            )
        object.__setattr__(self, "content_type", ctype.lower())
        if type(self.size) is not int or not 0 < self.size <= MAX_MEDIA_BYTES:
            raise _fail("size", f"{self.size!r} bytes: a media file has 1 to {MAX_MEDIA_BYTES} bytes")
        if not isinstance(self.sha256, bytes) or len(self.sha256) != 32:
            raise _fail("sha256", "must be the 32-byte SHA-256 digest of the file")
        object.__setattr__(self, "alt", _languages(self.alt, "alt", MAX_ALT_CHARS, required=False))

    @classmethod
    def for_bytes(
        cls, name: str, content_type: str, data: bytes, alt: Mapping[str, str] | None = None
    ) -> MediaRef:
        """The reference to a media file given its bytes (size and SHA-256 computed)."""
        return cls(name, content_type, len(data), hashlib.sha256(data).digest(), dict(alt or {}))

    @property
    def sha256_hex(self) -> str:
        """The SHA-256 digest in hexadecimal, as messages print it."""
        return self.sha256.hex()


def _prefixed(exc: PostError, prefix: str) -> PostError:
    inner = exc.field or ""
    sep = "" if inner.startswith("[") or not inner else "."
    full = f"{prefix}{sep}{inner}"
    message = str(exc).removeprefix(f"{inner}: ") if inner else str(exc)
    return PostError(message, field=full)


@dataclass(frozen=True, slots=True, kw_only=True)
class Post:
    """A crew post as written on board; construction checks every rule (:class:`PostError`).

    ``created_ms`` is DTN time (milliseconds since 2000-01-01T00:00:00Z, as bundle creation
    times). ``text`` maps BCP 47 language tags to the text in that language. Hashtags and the
    campaign are given with or without ``#`` and kept without.
    """

    id: str
    author: str
    created_ms: int
    text: Mapping[str, str]
    hashtags: Sequence[str] = ()
    campaign: str | None = None
    channels: Sequence[str] = ()
    media: Sequence[MediaRef] = ()
    reply_to: str | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.id, "id", _ID, "a post id (1 to 128 letters, digits, '.', '_', ':', '@', '-')")
        check_name(self.author, "author")
        if type(self.created_ms) is not int or not 0 <= self.created_ms <= _U64_MAX:
            raise _fail("created_ms", f"{self.created_ms!r} is not a DTN time in milliseconds")
        object.__setattr__(self, "text", _languages(self.text, "text", MAX_TEXT_CHARS, required=True))
        if isinstance(self.hashtags, str) or len(self.hashtags) > MAX_HASHTAGS:
            raise _fail("hashtags", f"must be a list of at most {MAX_HASHTAGS} hashtags")
        tags = tuple(_hashtag(t, f"hashtags[{i}]") for i, t in enumerate(self.hashtags))
        folded = [t.casefold() for t in tags]
        for i, t in enumerate(folded):
            if t in folded[:i]:
                raise _fail(f"hashtags[{i}]", f"#{tags[i]} given twice")
        object.__setattr__(self, "hashtags", tags)
        if self.campaign is not None:
            object.__setattr__(self, "campaign", _hashtag(self.campaign, "campaign"))
        if isinstance(self.channels, str) or len(self.channels) > MAX_CHANNELS:
            raise _fail("channels", f"must be a list of at most {MAX_CHANNELS} channel names")
        channels = tuple(
            _check_pattern(c, f"channels[{i}]", _CHANNEL, "a channel name (mastodon, bluesky...)")
            for i, c in enumerate(self.channels)
        )
        for i, c in enumerate(channels):
            if c in channels[:i]:
                raise _fail(f"channels[{i}]", f"{c} given twice")
        object.__setattr__(self, "channels", channels)
        if isinstance(self.media, (str, bytes)) or len(self.media) > MAX_MEDIA:
            raise _fail("media", f"{len(self.media)} media files, at most {MAX_MEDIA}")
        media = tuple(self.media)
        names: set[str] = set()
        for i, m in enumerate(media):
            if not isinstance(m, MediaRef):
                raise _fail(f"media[{i}]", f"must be a MediaRef, not {type(m).__name__}")
            if m.name in names:
                raise _fail(f"media[{i}].name", f"{m.name!r} given twice")
            names.add(m.name)
        object.__setattr__(self, "media", media)
        if self.reply_to is not None:
            _check_pattern(self.reply_to, "reply_to", _ID, "a question id")

    def media_named(self, name: str) -> MediaRef | None:
        """The media reference with this file name, if the post lists one."""
        return next((m for m in self.media if m.name == name), None)


def post_to_json(post: Post) -> dict[str, Any]:
    """A JSON-ready description of a post (hashes in hexadecimal)."""
    return {
        "id": post.id,
        "author": post.author,
        "created_ms": post.created_ms,
        "text": dict(post.text),
        "hashtags": list(post.hashtags),
        "campaign": post.campaign,
        "channels": list(post.channels),
        "media": [
            {
                "name": m.name,
                "content_type": m.content_type,
                "size": m.size,
                "sha256": m.sha256_hex,
                "alt": dict(m.alt),
            }
            for m in post.media
        ],
        "reply_to": post.reply_to,
    }


def _dumps(value: object) -> bytes:
    return cbor2.dumps(value, canonical=True)


def encode_envelope(post: Post) -> bytes:
    """The post's envelope: its canonical CBOR bytes, which signatures cover."""
    return _dumps(
        [
            ENVELOPE_VERSION,
            post.id,
            post.author,
            post.created_ms,
            dict(post.text),
            list(post.hashtags),
            post.campaign,
            list(post.channels),
            [[m.name, m.content_type, m.size, m.sha256, dict(m.alt)] for m in post.media],
            post.reply_to,
        ]
    )


def _loads(data: bytes, what: str, limit: int) -> Any:
    """Decode one CBOR item; Incomplete if the bytes stop early, EnvelopeError if malformed."""
    if len(data) > limit:
        raise EnvelopeError(f"{len(data)} bytes, more than the {limit} a {what} may have", field=what)
    try:
        return cbor2.loads(data)
    except cbor2.CBORDecodeEOF as exc:
        raise Incomplete(f"input ends inside the {what}") from exc
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise EnvelopeError(f"not valid CBOR: {exc}", field=what) from exc


def _canonical(data: bytes, encoded: bytes, what: str) -> None:
    if encoded == data:
        return
    if data.startswith(encoded):
        extra = len(data) - len(encoded)
        raise EnvelopeError(f"{extra} trailing byte{'' if extra == 1 else 's'} after the {what}", field=what)
    raise EnvelopeError("not in canonical form (deterministic CBOR, as encoded on board)", field=what)


def _type(value: object, kind: type | tuple[type, ...], field_name: str, what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise EnvelopeError(f"must be {what}, not {type(value).__name__}", field=field_name)


def _wire_media(item: object, i: int) -> MediaRef:
    where = f"media[{i}]"
    if not isinstance(item, list):
        raise EnvelopeError(f"must be an array, not {type(item).__name__}", field=where)
    if len(item) != 5:
        raise EnvelopeError(f"has {len(item)} items, expected 5", field=where)
    name, ctype, size, digest, alt = item
    _type(size, int, f"{where}.size", "an unsigned integer")
    _type(digest, bytes, f"{where}.sha256", "a byte string")
    try:
        return MediaRef(name, ctype, size, digest, alt)
    except PostError as exc:
        raise _remote(_prefixed(exc, where)) from exc


def _remote(exc: PostError) -> EnvelopeError:
    message = str(exc)
    if exc.field:
        message = message.removeprefix(f"{exc.field}: ")
    return EnvelopeError(message, field=exc.field)


def decode_envelope(data: bytes | bytearray | memoryview) -> Post:
    """Decode and check a received envelope (exactly one, in canonical form)."""
    raw = bytes(data)
    value = _loads(raw, "envelope", MAX_ENVELOPE_BYTES)
    _type(value, list, "envelope", "an array")
    if len(value) != 10:
        raise EnvelopeError(f"has {len(value)} items, expected 10", field="envelope")
    version, post_id, author, created, text, hashtags, campaign, channels, media, reply_to = value
    if version != ENVELOPE_VERSION or type(version) is not int:
        raise EnvelopeError(f"format version {version!r}, this node reads version 1", field="version")
    _type(created, int, "created_ms", "an unsigned integer")
    _type(text, dict, "text", "a map")
    _type(hashtags, list, "hashtags", "an array")
    _type(channels, list, "channels", "an array")
    _type(media, list, "media", "an array")
    if len(media) > MAX_MEDIA:
        raise EnvelopeError(f"{len(media)} media files, at most {MAX_MEDIA}", field="media")
    refs = [_wire_media(item, i) for i, item in enumerate(media)]
    try:
        post = Post(
            id=post_id,
            author=author,
            created_ms=created,
            text=text,
            hashtags=hashtags,
            campaign=campaign,
            channels=channels,
            media=refs,
            reply_to=reply_to,
        )
    except PostError as exc:
        raise _remote(exc) from exc
    _canonical(raw, encode_envelope(post), "envelope")
    return post


@dataclass(frozen=True, slots=True)
class MediaPart:
    """Bytes ``offset .. offset + len(data)`` of the media file with this SHA-256, for post ``post_id``."""

    post_id: str
    sha256: bytes
    offset: int
    total_size: int
    data: bytes

    def __post_init__(self) -> None:
        _check_pattern(self.post_id, "post_id", _ID, "a post id")
        if not isinstance(self.sha256, bytes) or len(self.sha256) != 32:
            raise _fail("sha256", "must be a 32-byte SHA-256 digest")
        if type(self.total_size) is not int or not 0 < self.total_size <= MAX_MEDIA_BYTES:
            raise _fail("total_size", f"{self.total_size!r}: a media file has 1 to {MAX_MEDIA_BYTES} bytes")
        if type(self.offset) is not int or self.offset < 0:
            raise _fail("offset", f"{self.offset!r} is not a byte offset")
        if not isinstance(self.data, bytes) or not self.data:
            raise _fail("data", "a media part carries at least one byte")
        if self.offset + len(self.data) > self.total_size:
            raise _fail(
                "data",
                f"bytes {self.offset}..{self.offset + len(self.data)} run past the file's {self.total_size}",
            )


def encode_media_part(part: MediaPart) -> bytes:
    """A media part's canonical CBOR bytes (the payload of one media bundle)."""
    return _dumps([ENVELOPE_VERSION, part.post_id, part.sha256, part.offset, part.total_size, part.data])


def decode_media_part(data: bytes | bytearray | memoryview) -> MediaPart:
    """Decode and check a received media part (exactly one, in canonical form)."""
    raw = bytes(data)
    value = _loads(raw, "media part", MAX_MEDIA_BYTES + 1024)
    _type(value, list, "media part", "an array")
    if len(value) != 6:
        raise EnvelopeError(f"has {len(value)} items, expected 6", field="media part")
    version, post_id, digest, offset, total, chunk = value
    if version != ENVELOPE_VERSION or type(version) is not int:
        raise EnvelopeError(f"format version {version!r}, this node reads version 1", field="version")
    _type(digest, bytes, "sha256", "a byte string")
    _type(offset, int, "offset", "an unsigned integer")
    _type(total, int, "total_size", "an unsigned integer")
    _type(chunk, bytes, "data", "a byte string")
    try:
        part = MediaPart(post_id, digest, offset, total, chunk)
    except PostError as exc:
        raise _remote(exc) from exc
    _canonical(raw, encode_media_part(part), "media part")
    return part


def media_parts(post: Post, name: str, data: bytes, max_part_bytes: int = 256 * 1024) -> list[MediaPart]:
    """Cut a media file the post lists into parts of at most ``max_part_bytes`` data bytes each."""
    ref = post.media_named(name)
    if ref is None:
        raise _fail("name", f"{name!r} is not one of the post's media files")
    if len(data) != ref.size or hashlib.sha256(data).digest() != ref.sha256:
        raise _fail("data", f"these bytes are not the file {name!r} the post lists (size or SHA-256 differ)")
    if max_part_bytes < 1:
        raise _fail("max_part_bytes", f"{max_part_bytes} must be at least 1")
    return [
        MediaPart(post.id, ref.sha256, off, ref.size, data[off : off + max_part_bytes])
        for off in range(0, len(data), max_part_bytes)
    ]


def join_media_parts(parts: Sequence[MediaPart]) -> bytes:
    """Reassemble one media file from its parts (any order, overlaps allowed, no gap).

    Raises :class:`EnvelopeError` if the parts belong to different files or leave a gap; the
    caller then checks the bytes against the signed post (``verify_media``).
    """
    if not parts:
        raise EnvelopeError("no parts to join", field="media part")
    first = parts[0]
    buf = bytearray(first.total_size)
    covered = 0
    for part in sorted(parts, key=lambda p: p.offset):
        if (part.post_id, part.sha256, part.total_size) != (first.post_id, first.sha256, first.total_size):
            raise EnvelopeError("parts of different media files", field="media part")
        if part.offset > covered:
            raise EnvelopeError(f"bytes {covered}..{part.offset} are missing", field="media part")
        buf[part.offset : part.offset + len(part.data)] = part.data
        covered = max(covered, part.offset + len(part.data))
    if covered < first.total_size:
        raise EnvelopeError(f"bytes {covered}..{first.total_size} are missing", field="media part")
    return bytes(buf)
