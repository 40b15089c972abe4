"""Public questions (submission, moderation, selection, uplink, answer) and the rate limiter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from proxima.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from proxima.ground.accounts import Account, create_account
from proxima.ground.db import Base, make_engine, session_factory
from proxima.ground.questions import (
    Question,
    QuestionState,
    attach_answer,
    clean_text,
    crew_question,
    get_question,
    list_questions,
    mark_sent,
    moderate,
    moderation_hints,
    question_to_json,
    select,
    submit_question,
    uplink_payload,
)
from proxima.ground.ratelimit import RateLimiter
from proxima.outreach.uplink import decode_question

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ground.db'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(rate_per_s=1 / 60, burst=3, max_clients=1000)


@pytest.fixture
def editor(session: Session) -> Account:
    return create_account(session, "ed", "Editor", "agency", ["editor"], now=NOW, hasher=FAST)


@pytest.fixture
def crew(session: Session) -> Account:
    return create_account(session, "thomas", "Thomas", "crew", ["crew"], now=NOW, hasher=FAST)


def ask(
    session: Session, limiter: RateLimiter, text: object = "What does Earth look like at night?", **kw: object
) -> Question:
    args: dict[str, object] = {"client": "client-a", "text": text, "lang": "en", "now": NOW}
    args.update(kw)
    return submit_question(session, limiter, **args)  # type: ignore[arg-type]


# -- submission -------------------------------------------------------------------------------


def test_submit_question(session: Session, limiter: RateLimiter) -> None:
    q = ask(session, limiter, "  Quel   temps fait-il\n\tdans l'ISS ?  ", lang="FR-ca", name=" Léa ")
    session.commit()
    stored = get_question(session, q.id)
    assert uuid.UUID(stored.id).version == 4
    assert stored.text == "Quel temps fait-il dans l'ISS ?"
    assert stored.lang == "fr-CA"
    assert stored.name == "Léa"
    assert stored.state is QuestionState.SUBMITTED
    assert stored.submitted_at == NOW
    assert stored.client == "client-a"
    assert stored.origin is None
    assert stored.origin_id is None
    assert stored.needs_attention is False
    assert stored.attention is None
    assert stored.moderated_by is None


def test_html_is_stored_verbatim(session: Session, limiter: RateLimiter) -> None:
    text = "<script>alert('hi')</script> & <b>bold</b>?"
    q = ask(session, limiter, text)
    session.commit()
    assert get_question(session, q.id).text == text
    assert question_to_json(q)["text"] == text
    assert decode_question(uplink_payload(q)).text == text


def test_control_characters_removed(session: Session, limiter: RateLimiter) -> None:
    q = ask(session, limiter, "Hel\x00lo\x07 \u202eevil\u202c crew\r\nhow are you\x1b?")
    assert q.text == "Hello evil crew how are you?"
    assert clean_text("e\u0301") == "é"  # NFC
    assert clean_text("🧑\u200d🚀") == "🧑\u200d🚀"  # joiners kept: emoji need them


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"text": "hi"}, "text", "2 characters, at least 3"),
        ({"text": " \x00\x01 h\x02i \n"}, "text", "2 characters, at least 3"),
        ({"text": "x" * 501}, "text", "501 characters, at most 500"),
        ({"text": 42}, "text", "must be text"),
        ({"lang": "english language"}, "lang", "BCP 47"),
        ({"lang": ""}, "lang", "BCP 47"),
        ({"name": "x" * 81}, "name", "at most 80"),
        ({"client": ""}, "client", "printable characters"),
        ({"client": "a b"}, "client", "printable characters"),
        ({"origin": "mastodon"}, "origin_id", "go together"),
        ({"origin_id": "1234"}, "origin", "go together"),
        ({"origin": "Mastodon!", "origin_id": "1234"}, "origin", "channel name"),
        ({"origin": "mastodon", "origin_id": "12 34"}, "origin_id", "printable characters"),
    ],
)
def test_submit_refusals_name_the_field(
    session: Session, limiter: RateLimiter, kw: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        ask(session, limiter, **kw)
    assert info.value.field == field
    assert list_questions(session) == []


def test_empty_name_is_none(session: Session, limiter: RateLimiter) -> None:
    assert ask(session, limiter, name=" \t ").name is None


def test_origin_kept_and_not_submitted_twice(session: Session, limiter: RateLimiter) -> None:
    q = ask(session, limiter, origin="mastodon", origin_id="110923847", client="masto:alice")
    assert (q.origin, q.origin_id) == ("mastodon", "110923847")
    with pytest.raises(Conflict, match=f"already question {q.id}") as info:
        ask(session, limiter, origin="mastodon", origin_id="110923847", client="masto:alice")
    assert info.value.field == "origin_id"
    other = ask(session, limiter, origin="bluesky", origin_id="110923847", client="bsky:alice")
    assert other.id != q.id


@pytest.mark.parametrize(
    ("text", "hints"),
    [
        ("Do you see the stars at night?", []),
        ("Do you use Node.js on board?", []),
        ("Look at https://example.org/win now", ["a link"]),
        ("Visit www.example.org please", ["a link"]),
        ("Best deals at cheap-pills.com today", ["a link"]),
        ("Free CASINO bonus and a giveaway!", ["the word 'casino'", "the word 'giveaway'"]),
        ("Espèce d'enculé", ["the word 'encule'"]),
        ("Is the Casino-royale film shown on board?", ["the word 'casino'"]),
        ("Do you like merdeka day?", []),
    ],
)
def test_moderation_hints(session: Session, limiter: RateLimiter, text: str, hints: list[str]) -> None:
    assert moderation_hints(text) == hints
    q = ask(session, limiter, text, client=f"c{len(text)}")
    assert q.needs_attention is bool(hints)
    assert q.attention == ("; ".join(hints) or None)
    assert q.state is QuestionState.SUBMITTED  # a hint, never a refusal


def test_flood_from_one_client_is_cut_off(session: Session, limiter: RateLimiter) -> None:
    for i in range(3):
        ask(session, limiter, f"Question number {i}?", now=NOW + timedelta(seconds=i))
    with pytest.raises(RateLimited) as info:
        ask(session, limiter, "One more?", now=NOW + timedelta(seconds=3))
    assert info.value.status == 429
    assert 0 < info.value.retry_after <= 60
    # Refused attempts (invalid ones too) do not get through, and count nothing stored.
    for i in range(20):
        with pytest.raises(RateLimited):
            ask(session, limiter, "x", now=NOW + timedelta(seconds=4 + i))
    other = ask(session, limiter, "Another asker here?", client="client-b", now=NOW + timedelta(seconds=30))
    assert other.client == "client-b"
    assert len(list_questions(session)) == 4
    # A minute later the first client has one more token.
    later = NOW + timedelta(seconds=3) + timedelta(seconds=info.value.retry_after)
    ask(session, limiter, "Back again?", now=later)
    with pytest.raises(RateLimited):
        ask(session, limiter, "And again?", now=later)


# -- moderation, selection, uplink, answer ----------------------------------------------------


def state(question: Question) -> QuestionState:
    """The question's state, read afresh (each step changes it)."""
    return question.state


def test_full_life_cycle(session: Session, limiter: RateLimiter, editor: Account) -> None:
    q = ask(session, limiter, name="Léa")
    moderate(session, q.id, approve=True, moderator=editor, reason="  nice  ", now=NOW + timedelta(minutes=1))
    assert state(q) is QuestionState.APPROVED
    assert (q.moderated_by, q.moderated_at, q.reason) == ("ed", NOW + timedelta(minutes=1), "nice")
    chosen = select(session, [q.id, q.id], editor=editor, now=NOW + timedelta(minutes=2))
    assert chosen == [q]
    assert state(q) is QuestionState.SELECTED
    assert (q.selected_by, q.selected_at) == ("ed", NOW + timedelta(minutes=2))
    up = crew_question(q)
    assert up.asked_ms == (NOW - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert decode_question(uplink_payload(q)) == up
    assert (up.id, up.text, up.lang, up.name) == (q.id, q.text, "en", "Léa")
    mark_sent(session, q.id, now=NOW + timedelta(minutes=3))
    assert state(q) is QuestionState.SENT
    assert q.sent_at == NOW + timedelta(minutes=3)
    attach_answer(session, q.id, "6f1c2a4e-post", now=NOW + timedelta(hours=5))
    session.commit()
    stored = get_question(session, q.id)
    assert stored.state is QuestionState.ANSWERED
    assert stored.answer_post_id == "6f1c2a4e-post"
    assert stored.answered_at == NOW + timedelta(hours=5)
    doc = question_to_json(stored)
    assert doc["state"] == "answered"
    assert doc["submitted_at"] == "2026-03-14T09:30:00+00:00"
    assert "client" not in doc


def test_reject(session: Session, limiter: RateLimiter, editor: Account) -> None:
    q = ask(session, limiter)
    moderate(session, q.id, approve=False, moderator=editor, reason="off topic", now=NOW)
    assert q.state is QuestionState.REJECTED
    assert q.reason == "off topic"
    with pytest.raises(Conflict, match="is rejected; only a approved question can be selected"):
        select(session, [q.id], editor=editor, now=NOW)


def test_moderation_needs_the_editor_role(
    session: Session, limiter: RateLimiter, crew: Account, editor: Account
) -> None:
    q = ask(session, limiter)
    with pytest.raises(Forbidden, match="needs the editor role") as info:
        moderate(session, q.id, approve=True, moderator=crew, now=NOW)
    assert info.value.status == 403
    with pytest.raises(Forbidden, match="needs the editor role"):
        select(session, [q.id], editor=crew, now=NOW)
    assert q.state is QuestionState.SUBMITTED
    admin = create_account(session, "root", "Admin", "agency", ["admin"], now=NOW, hasher=FAST)
    moderate(session, q.id, approve=True, moderator=admin, now=NOW)
    assert q.moderated_by == "root"


def test_wrong_state_transitions_name_both_states(
    session: Session, limiter: RateLimiter, editor: Account
) -> None:
    q = ask(session, limiter)
    with pytest.raises(Conflict, match=f"question {q.id} is submitted; only a approved question") as info:
        select(session, [q.id], editor=editor, now=NOW)
    assert info.value.status == 409
    with pytest.raises(Conflict, match="is submitted; only a selected question can be sent"):
        mark_sent(session, q.id, now=NOW)
    with pytest.raises(Conflict, match="is submitted; only a sent question can be answered"):
        attach_answer(session, q.id, "post-1", now=NOW)
    moderate(session, q.id, approve=True, moderator=editor, now=NOW)
    with pytest.raises(Conflict, match="is approved; only a submitted question can be moderated"):
        moderate(session, q.id, approve=False, moderator=editor, now=NOW)
    select(session, [q.id], editor=editor, now=NOW)
    with pytest.raises(Conflict, match="is selected; only a approved question can be selected"):
        select(session, [q.id], editor=editor, now=NOW)
    with pytest.raises(Conflict, match="is selected; only a sent question"):
        attach_answer(session, q.id, "post-1", now=NOW)
    mark_sent(session, q.id, now=NOW)
    with pytest.raises(Conflict, match="is sent; only a selected question"):
        mark_sent(session, q.id, now=NOW)
    attach_answer(session, q.id, "post-1", now=NOW)
    with pytest.raises(Conflict, match="is answered; only a sent question"):
        attach_answer(session, q.id, "post-2", now=NOW)
    assert q.answer_post_id == "post-1"


def test_unknown_ids(session: Session, limiter: RateLimiter, editor: Account) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"no question '{missing}'") as info:
        moderate(session, missing, approve=True, moderator=editor, now=NOW)
    assert info.value.status == 404
    with pytest.raises(NotFound):
        mark_sent(session, missing, now=NOW)
    with pytest.raises(NotFound):
        attach_answer(session, missing, "post-1", now=NOW)
    with pytest.raises(NotFound):
        get_question(session, missing)


def test_select_is_all_or_nothing(session: Session, limiter: RateLimiter, editor: Account) -> None:
    a = ask(session, limiter, "First question?")
    b = ask(session, limiter, "Second question?")
    moderate(session, a.id, approve=True, moderator=editor, now=NOW)
    with pytest.raises(Conflict, match=f"question {b.id} is submitted"):
        select(session, [a.id, b.id], editor=editor, now=NOW)
    with pytest.raises(NotFound):
        select(session, [a.id, "nope"], editor=editor, now=NOW)
    assert a.state is QuestionState.APPROVED
    with pytest.raises(InvalidInput, match="at least one") as info:
        select(session, [], editor=editor, now=NOW)
    assert info.value.field == "question_ids"
    with pytest.raises(InvalidInput, match="not one text"):
        select(session, a.id, editor=editor, now=NOW)


def test_attach_answer_checks_the_post_id(session: Session, limiter: RateLimiter) -> None:
    q = ask(session, limiter)
    with pytest.raises(InvalidInput, match="not a post id") as info:
        attach_answer(session, q.id, "not a post id", now=NOW)
    assert info.value.field == "post_id"


def test_moderation_reason_checked(session: Session, limiter: RateLimiter, editor: Account) -> None:
    q = ask(session, limiter)
    with pytest.raises(InvalidInput, match="at most 500") as info:
        moderate(session, q.id, approve=False, moderator=editor, reason="x" * 501, now=NOW)
    assert info.value.field == "reason"
    assert q.state is QuestionState.SUBMITTED


def test_list_questions(session: Session, limiter: RateLimiter, editor: Account) -> None:
    ids = [
        ask(session, limiter, f"Question {i}?", client=f"c{i}", now=NOW + timedelta(seconds=10 - i)).id
        for i in range(5)
    ]
    moderate(session, ids[0], approve=True, moderator=editor, now=NOW)
    session.commit()
    assert [q.id for q in list_questions(session)] == ids[::-1]
    assert [q.id for q in list_questions(session, limit=2)] == [ids[4], ids[3]]
    assert [q.id for q in list_questions(session, limit=2, offset=3)] == [ids[1], ids[0]]
    assert [q.id for q in list_questions(session, "approved")] == [ids[0]]
    assert [q.id for q in list_questions(session, state=QuestionState.SUBMITTED)] == ids[:0:-1]
    assert list_questions(session, QuestionState.ANSWERED) == []
    with pytest.raises(InvalidInput, match="not a question state") as info:
        list_questions(session, "pending")
    assert info.value.field == "state"
    for limit in (0, 1001, True):
        with pytest.raises(InvalidInput) as info:
            list_questions(session, limit=limit)
        assert info.value.field == "limit"
    with pytest.raises(InvalidInput):
        list_questions(session, offset=-1)


# -- rate limiter -----------------------------------------------------------------------------


def test_rate_limiter_basics() -> None:
    rl = RateLimiter(rate_per_s=2, burst=2, max_clients=2)
    rl.check("a", 0.0)
    rl.check("a", 0.0)
    with pytest.raises(RateLimited, match="try again in 1 s") as info:
        rl.check("a", 0.0)
    assert info.value.retry_after == pytest.approx(0.5, abs=1e-3)
    assert info.value.retry_after >= 0.5
    rl.check("a", 0.5)
    rl.check("b", 0.5)
    rl.check("c", 0.6)  # "a" is the least recently seen: forgotten
    assert len(rl) == 2
    assert "a" not in rl
    assert "b" in rl
    rl.forget("b")
    assert "b" not in rl


def test_idle_time_banks_at_most_a_burst() -> None:
    rl = RateLimiter(rate_per_s=1, burst=3, max_clients=10)
    rl.check("a", 0.0)
    passed = 0
    for _ in range(10):
        try:
            rl.check("a", 1000.0)
        except RateLimited:
            continue
        passed += 1
    assert passed == 3


def test_rate_limiter_time_going_back_adds_nothing() -> None:
    rl = RateLimiter(rate_per_s=1, burst=1, max_clients=10)
    rl.check("a", 100.0)
    with pytest.raises(RateLimited):
        rl.check("a", 50.0)
    with pytest.raises(RateLimited):
        rl.check("a", 100.5)
    rl.check("a", 101.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, 1), "rate_per_s"),
        ((float("inf"), 1, 1), "rate_per_s"),
        ((1, 0.5, 1), "burst"),
        ((1, float("nan"), 1), "burst"),
        ((1, 1, 0), "max_clients"),
        ((1, 1, True), "max_clients"),
    ],
)
def test_rate_limiter_config(args: tuple[float, float, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RateLimiter(*args)


_steps = st.lists(
    st.tuples(
        st.sampled_from("ab"),
        st.one_of(st.just(0.0), st.floats(0, 5, allow_nan=False), st.floats(0, 1000, allow_nan=False)),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.01, 50, allow_nan=False),
    burst=st.integers(1, 10),
    steps=_steps,
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[tuple[str, float]]
) -> None:
    rl = RateLimiter(rate, burst, max_clients=10)
    now = 0.0
    accepted: dict[str, list[float]] = {}
    for client, dt in steps:
        now += dt
        retry_after = None
        try:
            rl.check(client, now)
        except RateLimited as exc:
            retry_after = exc.retry_after
        if retry_after is None:
            accepted.setdefault(client, []).append(now)
        else:
            assert 0 < retry_after <= 1 / rate * (1 + 1e-6) + 1e-3
    # Over every span of time, not only from a client's first request: idle time banks at
    # most ``burst`` requests.
    for times in accepted.values():
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6
    # Each client's first request passes.
    assert set(accepted) == {client for client, _ in steps}


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.01, 50, allow_nan=False),
    burst=st.integers(1, 5),
    steps=_steps,
)
def test_waiting_retry_after_is_enough(rate: float, burst: int, steps: list[tuple[str, float]]) -> None:
    rl = RateLimiter(rate, burst, max_clients=10)
    now = 0.0
    for client, dt in steps:
        now += dt
        try:
            rl.check(client, now)
        except RateLimited as exc:
            rl.check(client, now + exc.retry_after)
            now += exc.retry_after


@settings(max_examples=100, deadline=None)
@given(max_clients=st.integers(1, 8), clients=st.lists(st.integers(0, 30), max_size=100))
def test_memory_is_bounded(max_clients: int, clients: list[int]) -> None:
    rl = RateLimiter(1, 1, max_clients)
    recent: list[str] = []
    for i, c in enumerate(clients):
        key = f"client-{c}"
        try:
            rl.check(key, float(i))
        except RateLimited:
            pass
        assert len(rl) <= max_clients
        recent = [k for k in recent if k != key] + [key]
    # Exactly the most recently seen clients are remembered.
    for key in recent[-max_clients:]:
        assert key in rl
    for key in recent[:-max_clients]:
        assert key not in rl


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(0.01, 50, allow_nan=False), burst=st.integers(1, 5), n=st.integers(1, 50))
def test_steady_client_within_rate_is_never_refused(rate: float, burst: int, n: int) -> None:
    rl = RateLimiter(rate, burst, max_clients=1)
    for i in range(n):
        rl.check("steady", i * 1.001 / rate)
