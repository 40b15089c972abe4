"""What the ground sends up to the crew: public questions, and news of the crew's own posts.

Both travel as small bundles, each payload one deterministic CBOR array (RFC 8949: shortest
heads, definite lengths, map keys sorted) whose first item is the format version and second the
kind of message:

*Question* (a public question the editors selected for the crew)::

    [1, "q",
     id,          # text: the question's id on the ground; a post answering it names it in reply_to
     text,        # text: the question, at most 500 characters
     lang,        # text: its BCP 47 language tag, canonical case ("pt-BR")
     asked_ms,    # uint: when it was asked, DTN time (milliseconds since 2000-01-01T00:00:00Z)
     name / null] # text: the name the asker gave, if any

*Acknowledgement* (what became of one of the crew's posts)::

    [1, "ack",
     post_id,                 # text: the post's id, as in its envelope
     state,                   # text: received, in_review, approved, changes_requested,
                              #       rejected, scheduled, published or failed
     at_ms,                   # uint: when it reached that state, DTN time in milliseconds
     [[channel, url], ...],   # where the post can be seen (possibly several links per channel)
     note / null]             # text: the editors' words (what to change, why it failed)

The decoders are as strict as :mod:`proxima.outreach.post`'s: canonical encoding only,
:class:`~proxima.errors.Incomplete` while the input stops early, :class:`~proxima.errors.EnvelopeError`
naming the field for anything else, trailing bytes included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from proxima.errors import EnvelopeError, PostError
from proxima.outreach.post import (
    _CHANNEL,
    _ID,
    _U64_MAX,
    _canonical,
    _check_pattern,
    _check_text,
    _dumps,
    _fail,
    _loads,
    _remote,
    _type,
    language_tag,
)

__all__ = [
    "ACK_STATES",
    "MAX_ACK_LINKS",
    "MAX_ASKER_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_QUESTION_CHARS",
    "MAX_UPLINK_BYTES",
    "UPLINK_VERSION",
    "Ack",
    "CrewQuestion",
    "decode_ack",
    "decode_question",
    "decode_uplink",
    "encode_ack",
    "encode_question",
]

UPLINK_VERSION: Final = 1
MAX_QUESTION_CHARS: Final = 500
"""Characters of a public question (the web form and the ground's checks use the same limit)."""
MAX_ASKER_NAME_CHARS: Final = 80
MAX_NOTE_CHARS: Final = 2000
MAX_ACK_LINKS: Final = 64
MAX_URL_CHARS: Final = 2048
MAX_UPLINK_BYTES: Final = 256 * 1024
"""Bytes of an encoded question or acknowledgement; every valid one fits."""
ACK_STATES: Final = (
    "received",
    "in_review",
    "approved",
    "changes_requested",
    "rejected",
    "scheduled",
    "published",
    "failed",
)
"""The states an acknowledgement reports, in the order a post usually goes through them."""

_KIND_QUESTION: Final = "q"
_KIND_ACK: Final = "ack"
# An absolute URI (https://..., at://...): a scheme, then no whitespace or control character.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]+")


def _dtn_ms(value: object, field_name: str) -> int:
    if type(value) is not int or not 0 <= value <= _U64_MAX:
        raise _fail(field_name, f"{value!r} is not a DTN time in milliseconds")
    return value


def _optional_text(value: object, field_name: str, max_chars: int) -> str | None:
    if value is None:
        return None
    return _check_text(value, field_name, max_chars)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrewQuestion:
    """A public question as the crew receives it; construction checks every rule (:class:`PostError`).

    ``asked_ms`` is DTN time (milliseconds since 2000-01-01T00:00:00Z); ``lang`` is kept in its
    canonical case; ``name`` is the name the asker chose to show, if any.
    """

    id: str
    text: str
    lang: str
    asked_ms: int
    name: str | None = None

    def __post_init__(self) -> None:
        _check_pattern(
            self.id, "id", _ID, "a question id (1 to 128 letters, digits, '.', '_', ':', '@', '-')"
        )
        _check_text(self.text, "text", MAX_QUESTION_CHARS)
        object.__setattr__(self, "lang", language_tag(self.lang, "lang"))
        _dtn_ms(self.asked_ms, "asked_ms")
        _optional_text(self.name, "name", MAX_ASKER_NAME_CHARS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """News of one crew post: the state it reached, when, where it can be seen, the editors' note.

    ``links`` pairs a channel name with a public URL, in the order given (a thread in several
    languages may give several links for one channel); the same pair may not appear twice.
    """

    post_id: str
    state: str
    at_ms: int
    links: Sequence[tuple[str, str]] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        _check_pattern(self.post_id, "post_id", _ID, "a post id")
        if not isinstance(self.state, str) or self.state not in ACK_STATES:
            raise _fail("state", f"{self.state!r} is not one of {', '.join(ACK_STATES)}")
        _dtn_ms(self.at_ms, "at_ms")
        if isinstance(self.links, (str, bytes)) or not isinstance(self.links, Sequence):
            raise _fail("links", "must be a list of (channel, url) pairs")
        if len(self.links) > MAX_ACK_LINKS:
            raise _fail("links", f"{len(self.links)} links, at most {MAX_ACK_LINKS}")
        links: list[tuple[str, str]] = []
        for i, pair in enumerate(self.links):
            where = f"links[{i}]"
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise _fail(where, "must be a (channel, url) pair")
            channel, url = pair
            _check_pattern(channel, f"{where}.channel", _CHANNEL, "a channel name (mastodon, bluesky...)")
            if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not _URL.fullmatch(url):
                raise _fail(
                    f"{where}.url", f"{url!r} is not an absolute URL of at most {MAX_URL_CHARS} characters"
                )
            if (channel, url) in links:
                raise _fail(where, f"{channel} {url} given twice")
            links.append((channel, url))
        object.__setattr__(self, "links", tuple(links))
        _optional_text(self.note, "note", MAX_NOTE_CHARS)


def encode_question(question: CrewQuestion) -> bytes:
    """A question's canonical CBOR bytes (the payload of one uplink bundle)."""
    q = question
    return _dumps([UPLINK_VERSION, _KIND_QUESTION, q.id, q.text, q.lang, q.asked_ms, q.name])


def encode_ack(ack: Ack) -> bytes:
    """An acknowledgement's canonical CBOR bytes (the payload of one uplink bundle)."""
    return _dumps(
        [UPLINK_VERSION, _KIND_ACK, ack.post_id, ack.state, ack.at_ms, [list(p) for p in ack.links], ack.note]
    )


def _head(value: Any, what: str, items: int | None) -> None:
    """Check the array, its length and its format version."""
    _type(value, list, what, "an array")
    if len(value) < 2:
        raise EnvelopeError(f"has {len(value)} items, expected at least 2", field=what)
    version = value[0]
    if version != UPLINK_VERSION or type(version) is not int:
        raise EnvelopeError(f"format version {version!r}, this node reads version 1", field="version")
    if items is not None and len(value) != items:
        raise EnvelopeError(f"has {len(value)} items, expected {items}", field=what)


def _kind(value: list[Any], expected: str, what: str) -> None:
    if value[1] != expected:
        raise EnvelopeError(f"{value[1]!r} is not a {what} ({expected!r})", field="kind")


def _question_from(raw: bytes, value: list[Any]) -> CrewQuestion:
    _head(value, "question", 7)
    _kind(value, _KIND_QUESTION, "question")
    _, _, qid, text, lang, asked, name = value
    _type(asked, int, "asked_ms", "an unsigned integer")
    try:
        question = CrewQuestion(id=qid, text=text, lang=lang, asked_ms=asked, name=name)
    except PostError as exc:
        raise _remote(exc) from exc
    _canonical(raw, encode_question(question), "question")
    return question


def _ack_from(raw: bytes, value: list[Any]) -> Ack:
    _head(value, "ack", 7)
    _kind(value, _KIND_ACK, "ack")
    _, _, post_id, state, at, links, note = value
    _type(at, int, "at_ms", "an unsigned integer")
    _type(links, list, "links", "an array")
    for i, pair in enumerate(links):
        _type(pair, list, f"links[{i}]", "an array")
    try:
        ack = Ack(post_id=post_id, state=state, at_ms=at, links=[tuple(p) for p in links], note=note)
    except PostError as exc:
        raise _remote(exc) from exc
    _canonical(raw, encode_ack(ack), "ack")
    return ack


def decode_question(data: bytes | bytearray | memoryview) -> CrewQuestion:
    """Decode and check a received question (exactly one, in canonical form)."""
    raw = bytes(data)
    value = _loads(raw, "question", MAX_UPLINK_BYTES)
    _head(value, "question", None)
    return _question_from(raw, value)


def decode_ack(data: bytes | bytearray | memoryview) -> Ack:
    """Decode and check a received acknowledgement (exactly one, in canonical form)."""
    raw = bytes(data)
    value = _loads(raw, "ack", MAX_UPLINK_BYTES)
    _head(value, "ack", None)
    return _ack_from(raw, value)


def decode_uplink(data: bytes | bytearray | memoryview) -> CrewQuestion | Ack:
    """Decode an uplink payload of either kind, telling them apart by their second item."""
    raw = bytes(data)
    value = _loads(raw, "uplink", MAX_UPLINK_BYTES)
    _head(value, "uplink", None)
    kind = value[1]
    if kind == _KIND_QUESTION:
        return _question_from(raw, value)
    if kind == _KIND_ACK:
        return _ack_from(raw, value)
    raise EnvelopeError(f"{kind!r} is not a kind of uplink message ('q' or 'ack')", field="kind")
