"""Messages going up to the crew: public questions and acknowledgements of their posts."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import EnvelopeError, Incomplete, LocalError, PostError, RemoteError
from proxima.outreach.uplink import (
    ACK_STATES,
    MAX_ACK_LINKS,
    MAX_QUESTION_CHARS,
    Ack,
    CrewQuestion,
    decode_ack,
    decode_question,
    decode_uplink,
    encode_ack,
    encode_question,
)

QUESTION = CrewQuestion(
    id="5b0e7c1a-9d3f-4e2b-8a61-2f4c9d0e7b13",
    text="Can you see the aurora from the ISS? <script>alert(1)</script>",
    lang="pt-br",
    asked_ms=537_000_000_000,
    name="Léa, 9 ans",
)
ACK = Ack(
    post_id="6f1c2a4e-2b7d-4f57-9a43-0d8c5b1e9f00",
    state="published",
    at_ms=537_000_123_456,
    links=[
        ("mastodon", "https://mastodon.example/@thomas/1"),
        ("bluesky", "at://did:plc:abc/app.bsky.feed.post/3k"),
        ("mastodon", "https://mastodon.example/@thomas/2"),
    ],
    note="Published in French and English.",
)


def _ok_char(c: str) -> bool:
    return unicodedata.category(c) not in ("Cc", "Cs")


_text = st.text(st.characters(codec="utf-8").filter(_ok_char), min_size=1, max_size=80).filter(
    lambda s: bool(s.strip())
)
_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,40}", fullmatch=True)
_name = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
_url = st.from_regex(r"https://[a-z0-9.-]{1,20}/[A-Za-z0-9/@%?=&_.~-]{0,40}", fullmatch=True)
_ms = st.integers(0, (1 << 64) - 1)
_LANGS = st.sampled_from(["fr", "en", "de", "pt-BR", "zh-Hant", "es-419", "sr-Latn-RS"])

questions = st.builds(
    CrewQuestion, id=_id, text=_text, lang=_LANGS, asked_ms=_ms, name=st.none() | _text
)
acks = st.builds(
    Ack,
    post_id=_id,
    state=st.sampled_from(ACK_STATES),
    at_ms=_ms,
    links=st.lists(st.tuples(_name, _url), max_size=5, unique=True),
    note=st.none() | _text,
)


def _canonical(value: object) -> bytes:
    return bytes(cbor2.dumps(value, canonical=True))


# -- construction -----------------------------------------------------------------------------


def test_question_keeps_its_fields() -> None:
    assert QUESTION.lang == "pt-BR"
    assert "<script>" in QUESTION.text
    value = cbor2.loads(encode_question(QUESTION))
    assert value == [1, "q", QUESTION.id, QUESTION.text, "pt-BR", 537_000_000_000, "Léa, 9 ans"]


def test_ack_keeps_link_order() -> None:
    assert ACK.links[0] == ("mastodon", "https://mastodon.example/@thomas/1")
    assert ACK.links[2][1].endswith("/2")
    value = cbor2.loads(encode_ack(ACK))
    assert value[:5] == [1, "ack", ACK.post_id, "published", 537_000_123_456]
    assert value[5][1] == ["bluesky", "at://did:plc:abc/app.bsky.feed.post/3k"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"id": "what is it?"}, "id", "not a question id"),
        ({"text": " "}, "text", "is empty"),
        ({"text": "x" * (MAX_QUESTION_CHARS + 1)}, "text", "501 characters, at most 500"),
        ({"text": "bip\x07"}, "text", "control character"),
        ({"lang": "fr_FR"}, "lang", "BCP 47"),
        ({"asked_ms": -1}, "asked_ms", "DTN time"),
        ({"asked_ms": True}, "asked_ms", "DTN time"),
        ({"name": ""}, "name", "is empty"),
        ({"name": "x" * 81}, "name", "at most 80"),
    ],
)
def test_question_errors_name_the_field(changes: dict[str, object], field: str, message: str) -> None:
    fields: dict[str, object] = {
        "id": QUESTION.id,
        "text": QUESTION.text,
        "lang": QUESTION.lang,
        "asked_ms": QUESTION.asked_ms,
        "name": QUESTION.name,
    }
    fields.update(changes)
    with pytest.raises(PostError, match=message) as info:
        CrewQuestion(**fields)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, LocalError)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"post_id": ""}, "post_id", "not a post id"),
        ({"state": "lost"}, "state", "not one of received"),
        ({"at_ms": 1 << 64}, "at_ms", "DTN time"),
        ({"links": "https://x"}, "links", "pairs"),
        ({"links": [("mastodon",)]}, "links[0]", "pair"),
        ({"links": [("Mastodon", "https://x/1")]}, "links[0].channel", "channel name"),
        ({"links": [("mastodon", "not a url")]}, "links[0].url", "absolute URL"),
        ({"links": [("mastodon", "https://x/" + "a" * 2048)]}, "links[0].url", "absolute URL"),
        ({"links": [("atom", "https://x/1"), ("atom", "https://x/1")]}, "links[1]", "given twice"),
        ({"links": [("atom", f"https://x/{i}") for i in range(MAX_ACK_LINKS + 1)]}, "links", "at most 64"),
        ({"note": "x" * 2001}, "note", "at most 2000"),
    ],
)
def test_ack_errors_name_the_field(changes: dict[str, object], field: str, message: str) -> None:
    fields: dict[str, object] = {
        "post_id": ACK.post_id,
        "state": ACK.state,
        "at_ms": ACK.at_ms,
        "links": ACK.links,
        "note": ACK.note,
    }
    fields.update(changes)
    with pytest.raises(PostError, match=message) as info:
        Ack(**fields)  # type: ignore[arg-type]
    assert info.value.field == field


# -- round trips, prefixes, trailing bytes ----------------------------------------------------


@settings(max_examples=150)
@given(questions)
def test_question_round_trip(question: CrewQuestion) -> None:
    data = encode_question(question)
    assert decode_question(data) == question
    assert decode_uplink(data) == question
    assert encode_question(decode_question(data)) == data


@settings(max_examples=150)
@given(acks)
def test_ack_round_trip(ack: Ack) -> None:
    data = encode_ack(ack)
    assert decode_ack(data) == ack
    assert decode_uplink(data) == ack
    assert encode_ack(decode_ack(data)) == data


@pytest.mark.parametrize(
    "decoder_and_data",
    [
        (decode_question, encode_question(QUESTION)),
        (decode_uplink, encode_question(QUESTION)),
        (decode_ack, encode_ack(ACK)),
        (decode_uplink, encode_ack(ACK)),
    ],
)
def test_byte_by_byte(decoder_and_data: tuple[Callable[[bytes], object], bytes]) -> None:
    decoder, data = decoder_and_data
    for i in range(len(data)):
        with pytest.raises(Incomplete):
            decoder(data[:i])
    assert decoder(data) in (QUESTION, ACK)


@given(questions, acks, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_refused(question: CrewQuestion, ack: Ack, extra: bytes) -> None:
    with pytest.raises(EnvelopeError, match="trailing byte") as info:
        decode_question(encode_question(question) + extra)
    assert info.value.field == "question"
    with pytest.raises(EnvelopeError, match="trailing byte") as info:
        decode_ack(encode_ack(ack) + extra)
    assert info.value.field == "ack"
    for data in (encode_question(question), encode_ack(ack)):
        with pytest.raises(EnvelopeError, match="trailing byte"):
            decode_uplink(data + extra)


def test_one_trailing_byte_message() -> None:
    with pytest.raises(EnvelopeError, match=r"^question: 1 trailing byte after the question$"):
        decode_question(encode_question(QUESTION) + b"\0")


# -- non-canonical and malformed input --------------------------------------------------------


def test_non_canonical_encodings_refused() -> None:
    q = encode_question(QUESTION)
    a = encode_ack(ACK)
    assert q[0] == 0x87
    assert a[0] == 0x87
    # Array count in a one-byte head (0x98 0x07): valid CBOR, not the shortest head.
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_question(b"\x98\x07" + q[1:])
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_ack(b"\x98\x07" + a[1:])
    # Indefinite-length array.
    items = cbor2.loads(q)
    indefinite = b"\x9f" + b"".join(_canonical(v) for v in items) + b"\xff"
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_uplink(indefinite)
    # The version as a two-byte integer (0x19 0x00 0x01).
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_question(b"\x87\x19\x00\x01" + q[2:])
    # A language tag in another case than the canonical one.
    items[4] = "pt-br"
    with pytest.raises(EnvelopeError, match="canonical"):
        decode_question(_canonical(items))


def _question_with(index: int, value: object) -> bytes:
    items = cbor2.loads(encode_question(QUESTION))
    items[index] = value
    return _canonical(items)


def _ack_with(index: int, value: object) -> bytes:
    items = cbor2.loads(encode_ack(ACK))
    items[index] = value
    return _canonical(items)


@pytest.mark.parametrize(
    ("decoder", "data", "field"),
    [
        (decode_question, _question_with(0, 2), "version"),
        (decode_question, _question_with(0, True), "version"),
        (decode_question, _question_with(1, "ack"), "kind"),
        (decode_question, _question_with(2, 17), "id"),
        (decode_question, _question_with(3, ""), "text"),
        (decode_question, _question_with(3, b"bytes"), "text"),
        (decode_question, _question_with(4, "klingon language"), "lang"),
        (decode_question, _question_with(5, "yesterday"), "asked_ms"),
        (decode_question, _question_with(5, -1), "asked_ms"),
        (decode_question, _question_with(5, 1.5), "asked_ms"),
        (decode_question, _question_with(6, 42), "name"),
        (decode_question, _canonical([1, "q", "x"]), "question"),
        (decode_question, _canonical({"q": 1}), "question"),
        (decode_question, _canonical([1]), "question"),
        (decode_question, b"\xff", "question"),
        (decode_ack, _ack_with(0, 0), "version"),
        (decode_ack, _ack_with(1, "q"), "kind"),
        (decode_ack, _ack_with(2, "a b"), "post_id"),
        (decode_ack, _ack_with(3, "lost"), "state"),
        (decode_ack, _ack_with(4, None), "at_ms"),
        (decode_ack, _ack_with(5, {"mastodon": "https://x/1"}), "links"),
        (decode_ack, _ack_with(5, ["mastodon"]), "links[0]"),
        (decode_ack, _ack_with(5, [["mastodon"]]), "links[0]"),
        (decode_ack, _ack_with(5, [["mastodon", 5]]), "links[0].url"),
        (decode_ack, _ack_with(5, [[5, "https://x/1"]]), "links[0].channel"),
        (decode_ack, _ack_with(6, ""), "note"),
        (decode_ack, _canonical([1, "ack"] + [0] * 6), "ack"),
        (decode_uplink, _canonical([1, "answer", "x"]), "kind"),
        (decode_uplink, _canonical([2, "q"]), "version"),
        (decode_uplink, _canonical("q"), "uplink"),
    ],
)
def test_malformed_input_names_the_field(
    decoder: Callable[[bytes], object], data: bytes, field: str
) -> None:
    with pytest.raises(EnvelopeError) as info:
        decoder(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, RemoteError)


def test_too_large_refused() -> None:
    with pytest.raises(EnvelopeError, match="more than"):
        decode_uplink(b"\x00" * (256 * 1024 + 1))


@given(st.binary(max_size=200))
def test_decoders_never_crash(data: bytes) -> None:
    for decoder in (decode_question, decode_ack, decode_uplink):
        try:
            decoder(data)
        except (Incomplete, EnvelopeError):
            pass
