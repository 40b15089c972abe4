"""The editorial calendar, as pure rules: recurring slots in local time, and checks on a schedule.

Slots are "this channel, this weekday (or every day), at this local time in this zone"; the
next free slot is found in UTC across daylight-saving changes (a time skipped by a spring change
is moved forward by the change: 02:30 becomes 03:30). A requested publication time is checked against every
target channel's rules: far enough ahead (Mastodon wants five minutes), not over the channel's
cap of scheduled posts or of posts per day, and not too close to another post on the same channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from proxima.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from proxima.ground.channels.base import Limits

__all__ = ["MIN_GAP", "SlotSpec", "check_schedule", "next_slots", "parse_time", "zone"]

MIN_GAP: Final = timedelta(minutes=10)
"""Two posts on one channel closer than this are a conflict (followers see a burst, not a story)."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``), or :class:`InvalidInput` naming it."""
    try:
        if not isinstance(name, str) or len(name) > 64:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(
            f"unknown time zone {name!r} (an IANA name such as Europe/Paris)", field="tz"
        ) from exc


def parse_time(text: str, *, tz: str | None = None, field: str = "at") -> datetime:
    """An ISO 8601 time; without an offset it is read in ``tz`` (refused when no zone is known)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time (2026-12-01T09:30+01:00)", field=field) from exc
    if value.tzinfo is None:
        if tz is None:
            raise InvalidInput(f"{text!r} has no UTC offset and no time zone was given", field=field)
        value = value.replace(tzinfo=zone(tz))
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """A recurring slot: ``channel`` at ``at`` local time in ``tz``, on ``weekday`` (0 = Monday) or daily."""

    channel: str
    at: time
    tz: str
    weekday: int | None = None
    campaign: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        zone(self.tz)
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise InvalidInput(
                f"{self.weekday} is not a weekday (0 = Monday ... 6 = Sunday)", field="weekday"
            )

    def on(self, day: date) -> datetime | None:
        """This slot on a local calendar day, in UTC, or None when it does not fall on that day."""
        if self.weekday is not None and day.weekday() != self.weekday:
            return None
        # A wall time skipped by a spring change (fold 0) comes out moved forward by the change.
        return datetime.combine(day, self.at, tzinfo=zone(self.tz)).astimezone(UTC)


def next_slots(
    slots: Sequence[SlotSpec], after: datetime, count: int, *, channel: str | None = None
) -> list[tuple[datetime, SlotSpec]]:
    """The next ``count`` slot times strictly after ``after`` (UTC, in order), on ``channel`` if given."""
    chosen = [s for s in slots if channel is None or s.channel == channel]
    if not chosen or count <= 0:
        return []
    found: list[tuple[datetime, SlotSpec]] = []
    start = (after.astimezone(UTC) - timedelta(days=1)).date()
    for offset in range(366):
        day = start + timedelta(days=offset)
        for slot in chosen:
            when = slot.on(day)
            if when is not None and when > after:
                found.append((when, slot))
        if len(found) >= count and offset > 2:
            break
    found.sort(key=lambda item: (item[0], item[1].channel))
    return found[:count]


def check_schedule(
    at: datetime,
    *,
    now: datetime,
    channels: Mapping[str, Limits],
    booked: Mapping[str, Sequence[tuple[datetime, str]]],
    post_id: str,
    min_gap: timedelta = MIN_GAP,
) -> None:
    """Refuse a publication time that breaks a channel's rule or collides with another post.

    ``booked`` maps each channel to the (time, post id) of posts already scheduled on it.
    """
    if at.tzinfo is None:
        raise InvalidInput("a publication time needs a UTC offset or a time zone", field="at")
    if at <= now:
        raise InvalidInput(f"{at.isoformat()} is in the past (now {now.isoformat()})", field="at")
    for name, limits in channels.items():
        ahead = (at - now).total_seconds()
        if ahead < limits.lead_time_s:
            raise InvalidInput(
                f"{name} needs posts scheduled at least {limits.lead_time_s:.0f} s ahead; "
                f"{at.isoformat()} is only {ahead:.0f} s away",
                field="at",
            )
        others = [(t, p) for t, p in booked.get(name, ()) if p != post_id]
        if limits.max_scheduled is not None and len(others) >= limits.max_scheduled:
            raise Conflict(f"{name} already has {len(others)} posts scheduled, its limit")
        if limits.max_per_day is not None:
            same_day = [p for t, p in others if t.astimezone(UTC).date() == at.astimezone(UTC).date()]
            if len(same_day) >= limits.max_per_day:
                raise Conflict(
                    f"{name} already has {len(same_day)} posts on {at.astimezone(UTC).date()}, "
                    f"at most {limits.max_per_day} a day"
                )
        for t, other in others:
            if abs(t - at) < min_gap:
                raise Conflict(
                    f"{name}: post {other} is scheduled at {t.isoformat()}, less than "
                    f"{min_gap.total_seconds() / 60:.0f} min from {at.isoformat()}"
                )
