"""Public questions for the crew: submitted, moderated, selected, sent up, answered.

Anyone may ask (the web form, or a mention on a network such as Mastodon). A question goes
through these states::

    submitted ──> approved ──> selected ──> sent ──> answered
        └───────> rejected

*Moderation* (an editor) approves or rejects it; editors then *select* some approved questions
for the crew; the uplink marks them *sent* once they travel up in a bundle
(:class:`~proxima.outreach.uplink.CrewQuestion`); a crew post whose ``reply_to`` names the
question *answers* it. A step that does not fit the question's state raises
:class:`~proxima.errors.Conflict` naming both states.

Submission is rate limited per client and the text is cleaned of control characters, but
*not* of markup: ``<script>`` is kept as the characters it is, and escaping is the job of
whatever shows the question (HTML pages, feeds). Links and a short list of words make a question
``needs_attention``: a hint for moderators, never a refusal.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Mapped, Session, mapped_column

from proxima.errors import Conflict, InvalidInput, NotFound, PostError
from proxima.ground.accounts import Role, require
from proxima.ground.db import Base
from proxima.outreach.post import check_name, language_tag
from proxima.outreach.uplink import MAX_ASKER_NAME_CHARS, MAX_QUESTION_CHARS, CrewQuestion, encode_question

if TYPE_CHECKING:
    from collections.abc import Iterable

    from proxima.ground.accounts import Account
    from proxima.ground.ratelimit import RateLimiter

__all__ = [
    "BLOCKLIST",
    "MAX_LIST",
    "MIN_QUESTION_CHARS",
    "Question",
    "QuestionState",
    "attach_answer",
    "clean_text",
    "crew_question",
    "get_question",
    "list_questions",
    "mark_sent",
    "moderate",
    "moderation_hints",
    "question_to_json",
    "select",
    "submit_question",
    "uplink_payload",
]

MIN_QUESTION_CHARS: Final = 3
MAX_REASON_CHARS: Final = 500
MAX_CLIENT_CHARS: Final = 128
MAX_ORIGIN_ID_CHARS: Final = 255
MAX_LIST: Final = 1000
_DTN_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

BLOCKLIST: Final = frozenset(
    {
        # Spam.
        "casino", "viagra", "cialis", "porn", "porno", "xxx", "onlyfans", "airdrop", "giveaway",
        "bitcoin", "forex",
        # Insults and slurs, English and French (accents and case are ignored).
        "fuck", "fucking", "shit", "bitch", "cunt", "asshole", "retard", "nazi",
        "connard", "connasse", "salope", "encule", "batard", "putain", "merde", "pute",
    }
)  # fmt: skip
"""Words that make a question ``needs_attention`` (whole words, case and accents ignored)."""

_LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*"
    r"\.(?:com|net|org|info|biz|io|co|ly|me|gg|tk|xyz|ru|cn|fr|de|uk|eu|link|click|site|online|top)\b)"
)
# Bidirectional embeddings, overrides and isolates: they can make displayed text read otherwise
# than it is stored.
_BIDI: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


class QuestionState(StrEnum):
    """Where a public question stands."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SELECTED = "selected"
    SENT = "sent"
    ANSWERED = "answered"


class Question(Base):
    """A public question (table ``questions``)."""

    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("origin", "origin_id", name="uq_questions_origin"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client: Mapped[str] = mapped_column(String(MAX_CLIENT_CHARS), index=True)
    """An opaque key of who asked (a hash of the address, the network account), for rate limits."""
    name: Mapped[str | None] = mapped_column(String(MAX_ASKER_NAME_CHARS))
    text: Mapped[str] = mapped_column(Text)
    """As the asker wrote it (control characters removed, whitespace collapsed), markup included."""
    lang: Mapped[str] = mapped_column(String(35))
    origin: Mapped[str | None] = mapped_column(String(64))
    """The channel the question came from ("mastodon"), ``None`` for the web form."""
    origin_id: Mapped[str | None] = mapped_column(String(MAX_ORIGIN_ID_CHARS))
    """The network's id of the message that asked (to answer there)."""
    state: Mapped[QuestionState] = mapped_column(
        Enum(
            QuestionState,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
        ),
        index=True,
    )
    needs_attention: Mapped[bool] = mapped_column(default=False)
    attention: Mapped[str | None] = mapped_column(String(500), default=None)
    """Why a moderator should look closer ("a link; the word 'casino'")."""
    submitted_at: Mapped[datetime]
    moderated_by: Mapped[str | None] = mapped_column(ForeignKey("accounts.handle"), default=None)
    moderated_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON_CHARS), default=None)
    selected_by: Mapped[str | None] = mapped_column(ForeignKey("accounts.handle"), default=None)
    selected_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    answer_post_id: Mapped[str | None] = mapped_column(String(128), default=None)

    def __repr__(self) -> str:
        return f"Question({self.id!r}, {self.state.value})"


def clean_text(value: str) -> str:
    """NFC, without control or bidirectional-override characters, whitespace runs as one space."""
    text = unicodedata.normalize("NFC", value)
    text = "".join(
        c for c in text if c.isspace() or (unicodedata.category(c) not in ("Cc", "Cs") and c not in _BIDI)
    )
    return " ".join(text.split())


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def moderation_hints(text: str) -> list[str]:
    """Why a moderator should look at this text closer: links, words of :data:`BLOCKLIST`."""
    hints: list[str] = []
    if _LINK.search(text):
        hints.append("a link")
    words = sorted({w for w in re.findall(r"\w+", _fold(text)) if w in BLOCKLIST})
    hints.extend(f"the word {w!r}" for w in words)
    return hints


def _text_field(value: object, field_name: str, min_chars: int, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"must be text, not {type(value).__name__}", field=field_name)
    text = clean_text(value)
    if len(text) < min_chars:
        raise InvalidInput(f"{len(text)} characters, at least {min_chars}", field=field_name)
    if len(text) > max_chars:
        raise InvalidInput(f"{len(text)} characters, at most {max_chars}", field=field_name)
    return text


def _token(value: object, field_name: str, max_chars: int) -> str:
    """An identifier from outside: 1 to ``max_chars`` printable characters, no whitespace."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= max_chars
        or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in value)
    ):
        raise InvalidInput(
            f"{value!r} is not 1 to {max_chars} printable characters without spaces", field=field_name
        )
    return value


def submit_question(
    session: Session,
    limiter: RateLimiter,
    *,
    client: str,
    text: str,
    lang: str,
    name: str | None = None,
    origin: str | None = None,
    origin_id: str | None = None,
    now: datetime,
) -> Question:
    """Record a public question, state ``submitted``.

    Every attempt counts against ``client``'s rate (:class:`~proxima.errors.RateLimited`),
    refused ones included. ``text`` is cleaned (:func:`clean_text`) and must then have 3 to 500
    characters; it is stored as written, HTML included, never interpreted: escape it where it is
    shown. ``lang`` is a BCP 47 tag; ``origin`` and ``origin_id`` name the channel and the
    message the question came from, both or neither; the same message cannot be submitted twice
    (:class:`~proxima.errors.Conflict`). Links and blocklisted words set ``needs_attention``.
    """
    client_key = _token(client, "client", MAX_CLIENT_CHARS)
    limiter.check(client_key, now.timestamp())
    body = _text_field(text, "text", MIN_QUESTION_CHARS, MAX_QUESTION_CHARS)
    try:
        tag = language_tag(lang, "lang")
    except PostError as exc:
        raise InvalidInput(str(exc).removeprefix("lang: "), field="lang") from exc
    shown = None
    if name is not None:
        shown = _text_field(name, "name", 0, MAX_ASKER_NAME_CHARS) or None
    if (origin is None) != (origin_id is None):
        missing = "origin" if origin is None else "origin_id"
        raise InvalidInput("origin and origin_id go together", field=missing)
    if origin is not None and origin_id is not None:
        try:
            check_name(origin, "origin")
        except PostError as exc:
            raise InvalidInput(f"{origin!r} is not a channel name", field="origin") from exc
        _token(origin_id, "origin_id", MAX_ORIGIN_ID_CHARS)
        taken = session.scalar(
            sa_select(Question.id).where(Question.origin == origin, Question.origin_id == origin_id)
        )
        if taken is not None:
            raise Conflict(f"{origin} message {origin_id} is already question {taken}", field="origin_id")
    hints = moderation_hints(body)
    question = Question(
        id=str(uuid.uuid4()),
        client=client_key,
        name=shown,
        text=body,
        lang=tag,
        origin=origin,
        origin_id=origin_id,
        state=QuestionState.SUBMITTED,
        needs_attention=bool(hints),
        attention="; ".join(hints)[:500] or None,
        submitted_at=now,
    )
    session.add(question)
    session.flush()
    return question


def get_question(session: Session, question_id: str) -> Question:
    """The question with this id; :class:`~proxima.errors.NotFound` if there is none."""
    question = session.get(Question, question_id) if isinstance(question_id, str) else None
    if question is None:
        raise NotFound(f"no question {question_id!r}", field="question_id")
    return question


def _expect(question: Question, expected: QuestionState, step: str) -> None:
    if question.state != expected:
        raise Conflict(
            f"question {question.id} is {question.state.value}; "
            f"only a {expected.value} question can be {step}"
        )


def moderate(
    session: Session,
    question_id: str,
    *,
    approve: bool,
    moderator: Account,
    reason: str | None = None,
    now: datetime,
) -> Question:
    """Approve or reject a submitted question (editor role), with an optional reason."""
    require(moderator, Role.EDITOR)
    why = None if reason is None else _text_field(reason, "reason", 0, MAX_REASON_CHARS) or None
    question = get_question(session, question_id)
    _expect(question, QuestionState.SUBMITTED, "moderated")
    question.state = QuestionState.APPROVED if approve else QuestionState.REJECTED
    question.moderated_by = moderator.handle
    question.moderated_at = now
    question.reason = why
    session.flush()
    return question


def select(
    session: Session, question_ids: Iterable[str], *, editor: Account, now: datetime
) -> list[Question]:
    """Select approved questions for the crew (editor role): all of them, or none if one is wrong."""
    require(editor, Role.EDITOR)
    if isinstance(question_ids, str):
        raise InvalidInput("must be a list of question ids, not one text", field="question_ids")
    ids = list(dict.fromkeys(question_ids))
    if not ids:
        raise InvalidInput("select at least one question", field="question_ids")
    questions = [get_question(session, qid) for qid in ids]
    for question in questions:
        _expect(question, QuestionState.APPROVED, "selected")
    for question in questions:
        question.state = QuestionState.SELECTED
        question.selected_by = editor.handle
        question.selected_at = now
    session.flush()
    return questions


def mark_sent(session: Session, question_id: str, *, now: datetime) -> Question:
    """Note that a selected question went up to the crew in a bundle."""
    question = get_question(session, question_id)
    _expect(question, QuestionState.SELECTED, "sent")
    question.state = QuestionState.SENT
    question.sent_at = now
    session.flush()
    return question


def attach_answer(session: Session, question_id: str, post_id: str, *, now: datetime) -> Question:
    """Note that the crew post ``post_id`` answers a question that was sent up."""
    if not isinstance(post_id, str) or not _ID.fullmatch(post_id):
        raise InvalidInput(f"{post_id!r} is not a post id", field="post_id")
    question = get_question(session, question_id)
    _expect(question, QuestionState.SENT, "answered")
    question.state = QuestionState.ANSWERED
    question.answer_post_id = post_id
    question.answered_at = now
    session.flush()
    return question


def list_questions(
    session: Session, state: QuestionState | str | None = None, limit: int = 100, *, offset: int = 0
) -> list[Question]:
    """Questions, oldest first (the order moderators work in), optionally in one state."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"{limit!r} is not a number from 1 to {MAX_LIST}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"{offset!r} is not a non-negative number", field="offset")
    query = sa_select(Question).order_by(Question.submitted_at, Question.id).limit(limit).offset(offset)
    if state is not None:
        try:
            wanted = QuestionState(state)
        except ValueError:
            raise InvalidInput(
                f"{state!r} is not a question state ({', '.join(QuestionState)})", field="state"
            ) from None
        query = query.where(Question.state == wanted)
    return list(session.scalars(query))


def crew_question(question: Question) -> CrewQuestion:
    """The question as it goes up to the crew (asked time in DTN milliseconds)."""
    asked_ms = max(0, (question.submitted_at - _DTN_EPOCH) // _MS)
    return CrewQuestion(
        id=question.id, text=question.text, lang=question.lang, asked_ms=asked_ms, name=question.name
    )


def uplink_payload(question: Question) -> bytes:
    """The bundle payload that carries the question up to the crew (:func:`encode_question`)."""
    return encode_question(crew_question(question))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def question_to_json(question: Question) -> dict[str, Any]:
    """A JSON-ready description of a question for the editors' console (text as stored: escape it)."""
    return {
        "id": question.id,
        "state": question.state.value,
        "text": question.text,
        "lang": question.lang,
        "name": question.name,
        "origin": question.origin,
        "origin_id": question.origin_id,
        "needs_attention": question.needs_attention,
        "attention": question.attention,
        "submitted_at": _iso(question.submitted_at),
        "moderated_by": question.moderated_by,
        "moderated_at": _iso(question.moderated_at),
        "reason": question.reason,
        "selected_by": question.selected_by,
        "selected_at": _iso(question.selected_at),
        "sent_at": _iso(question.sent_at),
        "answered_at": _iso(question.answered_at),
        "answer_post_id": question.answer_post_id,
    }
