"""The ground's pure rules: workflow steps, four eyes, retry delays, calendar slots and checks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxima.errors import Conflict, Forbidden, InvalidInput
from proxima.ground.calendar import SlotSpec, check_schedule, next_slots, parse_time
from proxima.ground.channels.base import Limits
from proxima.ground.workflow import Action, PostState, backoff, check_approver, next_state

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
MASTODON = Limits(
    max_chars=500, max_media=4, max_media_bytes=1, media_types=frozenset(), lead_time_s=300, max_per_day=2
)


def test_rejected_and_published_are_final() -> None:
    for state in (PostState.REJECTED, PostState.PUBLISHED):
        for action in Action:
            with pytest.raises(Conflict, match="final"):
                next_state(state, action)


def test_steps_name_what_is_allowed() -> None:
    with pytest.raises(Conflict, match=r"cannot approve a post that is received \(from received: "):
        next_state(PostState.RECEIVED, Action.APPROVE)
    assert next_state(PostState.APPROVED, Action.EDIT) is PostState.IN_REVIEW  # an edit needs a new approval
    assert next_state(PostState.SCHEDULED, Action.PUBLISHED) is PostState.PUBLISHED


@given(st.sampled_from(list(PostState)), st.sampled_from(list(Action)))
def test_no_step_leaves_rejected_or_reaches_published_without_being_scheduled(
    state: PostState, action: Action
) -> None:
    try:
        after = next_state(state, action)
    except Conflict:
        return
    assert state is not PostState.REJECTED
    if after is PostState.PUBLISHED:
        assert state is PostState.SCHEDULED


def test_four_eyes_rules() -> None:
    kw = {"author": "thomas", "signer": "thomas", "scheduled_at": None, "now": T0}
    check_approver("marc", editors={"anne"}, **kw)  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="wrote"):
        check_approver("thomas", editors=set(), **kw)  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="wrote"):
        check_approver("thomas", editors=set(), **{**kw, "author": "philae"})  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="edited"):
        check_approver("anne", editors={"anne", "marc"}, **kw)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        check_approver("marc", editors=set(), **{**kw, "scheduled_at": T0})  # type: ignore[arg-type]


@given(st.integers(1, 40), st.floats(0, 1, exclude_max=True))
def test_backoff_grows_and_is_capped(attempt: int, spread: float) -> None:
    d = backoff(attempt, spread=spread)
    assert timedelta(seconds=30) <= d <= timedelta(hours=1.25)
    assert backoff(attempt + 1) >= backoff(attempt)


def test_slots_across_the_spring_change_in_paris() -> None:
    slot = SlotSpec(channel="mastodon", at=time(9, 30), tz="Europe/Paris")
    # 2026-03-29: clocks go from +01:00 to +02:00 in Paris.
    times = [t for t, _ in next_slots([slot], T0, 3)]
    assert times == [
        datetime(2026, 3, 29, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 7, 30, tzinfo=UTC),
    ]
    before = next_slots([slot], datetime(2026, 3, 27, tzinfo=UTC), 1)[0][0]
    assert before == datetime(2026, 3, 27, 8, 30, tzinfo=UTC)
    skipped = SlotSpec(channel="mastodon", at=time(2, 30), tz="Europe/Paris")
    assert skipped.on(datetime(2026, 3, 29).date()) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_weekly_slot_and_channel_filter() -> None:
    monday = SlotSpec(channel="bluesky", at=time(18, 0), tz="America/Chicago", weekday=0)
    daily = SlotSpec(channel="mastodon", at=time(9, 0), tz="UTC")
    got = next_slots([monday, daily], T0, 2, channel="bluesky")
    assert [t for t, _ in got] == [
        datetime(2026, 3, 30, 23, 0, tzinfo=UTC),
        datetime(2026, 4, 6, 23, 0, tzinfo=UTC),
    ]
    assert all(s.channel == "bluesky" for _, s in got)
    with pytest.raises(InvalidInput, match="weekday"):
        SlotSpec(channel="x", at=time(9), tz="UTC", weekday=7)


def test_schedule_checks() -> None:
    channels = {"mastodon": MASTODON}
    check_schedule(T0 + timedelta(minutes=6), now=T0, channels=channels, booked={}, post_id="a")
    with pytest.raises(InvalidInput, match="300 s ahead"):
        check_schedule(T0 + timedelta(minutes=4), now=T0, channels=channels, booked={}, post_id="a")
    booked = {"mastodon": [(T0 + timedelta(hours=1), "b"), (T0 + timedelta(days=1), "c")]}
    with pytest.raises(Conflict, match="post b"):
        check_schedule(T0 + timedelta(minutes=65), now=T0, channels=channels, booked=booked, post_id="a")
    # The post's own booking is no conflict (rescheduling).
    check_schedule(
        T0 + timedelta(minutes=65),
        now=T0,
        channels=channels,
        booked={"mastodon": booked["mastodon"][:1]},
        post_id="b",
    )
    full = {"mastodon": [(T0 + timedelta(hours=1), "b"), (T0 + timedelta(hours=3), "d")]}
    with pytest.raises(Conflict, match="at most 2 a day"):
        check_schedule(T0 + timedelta(hours=5), now=T0, channels=channels, booked=full, post_id="a")


def test_parse_time() -> None:
    assert parse_time("2026-12-01T09:30Z") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert parse_time("2026-07-01T09:30", tz="Europe/Paris") == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="unknown time zone"):
        parse_time("2026-07-01T09:30", tz="Paris")
