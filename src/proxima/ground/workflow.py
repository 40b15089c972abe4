"""The review workflow of a crew post, as pure rules: states, steps, four eyes, retry delays.

A post arrives *received* (its signature checked); once every media file it lists has arrived
and matches the signed hash it is *in review*. An editor may edit it (a new version; the crew's
original stays version 1), request changes, or reject it; an approver approves it. Approved and
given a time it is *scheduled*; at that time every target channel gets its own delivery, retried
with backoff while the channel fails, and the post is *published* when all of them succeeded
(*failed* when one gave up for good). Rejected posts go nowhere, ever.

Four eyes: the approver is neither the post's author (nor the key that signed it) nor anyone
who edited it, and the approval comes before the scheduled time (an approval that arrives late needs a
new time). This module decides; :mod:`proxima.ground.service` stores.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from proxima.errors import Conflict, Forbidden

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "MAX_ATTEMPTS",
    "Action",
    "DeliveryState",
    "PostState",
    "backoff",
    "check_approver",
    "next_state",
]


class PostState(StrEnum):
    """Where a post stands in review and publication."""

    RECEIVED = "received"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    FAILED = "failed"


class DeliveryState(StrEnum):
    """Where one post stands on one channel."""

    PENDING = "pending"
    PUBLISHING = "publishing"
    RETRYING = "retrying"
    PUBLISHED = "published"
    FAILED = "failed"


class Action(StrEnum):
    """A step of the workflow, as written in the audit log."""

    MEDIA_COMPLETE = "media_complete"
    EDIT = "edit"
    REQUEST_CHANGES = "request_changes"
    APPROVE = "approve"
    REJECT = "reject"
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"
    PUBLISHED = "published"
    FAILED = "failed"


_S = PostState
_A = Action
_STEPS: Final[dict[tuple[PostState, Action], PostState]] = {
    (_S.RECEIVED, _A.MEDIA_COMPLETE): _S.IN_REVIEW,
    (_S.RECEIVED, _A.REJECT): _S.REJECTED,
    (_S.IN_REVIEW, _A.EDIT): _S.IN_REVIEW,
    (_S.IN_REVIEW, _A.REQUEST_CHANGES): _S.CHANGES_REQUESTED,
    (_S.IN_REVIEW, _A.APPROVE): _S.APPROVED,
    (_S.IN_REVIEW, _A.REJECT): _S.REJECTED,
    (_S.IN_REVIEW, _A.SCHEDULE): _S.IN_REVIEW,
    (_S.CHANGES_REQUESTED, _A.EDIT): _S.IN_REVIEW,
    (_S.CHANGES_REQUESTED, _A.REJECT): _S.REJECTED,
    (_S.CHANGES_REQUESTED, _A.SCHEDULE): _S.CHANGES_REQUESTED,
    (_S.APPROVED, _A.EDIT): _S.IN_REVIEW,
    (_S.APPROVED, _A.REJECT): _S.REJECTED,
    (_S.APPROVED, _A.SCHEDULE): _S.SCHEDULED,
    (_S.SCHEDULED, _A.SCHEDULE): _S.SCHEDULED,
    (_S.SCHEDULED, _A.UNSCHEDULE): _S.APPROVED,
    (_S.SCHEDULED, _A.EDIT): _S.IN_REVIEW,
    (_S.SCHEDULED, _A.REJECT): _S.REJECTED,
    (_S.SCHEDULED, _A.PUBLISHED): _S.PUBLISHED,
    (_S.SCHEDULED, _A.FAILED): _S.FAILED,
    (_S.FAILED, _A.SCHEDULE): _S.SCHEDULED,
}
"""(state, action) -> the state after it; anything absent is refused."""

MAX_ATTEMPTS: Final = 8
"""Tries per channel before a delivery gives up (transient failures only; permanent ones stop at once)."""
_BASE_DELAY_S: Final = 30.0
_MAX_DELAY_S: Final = 3600.0


def next_state(state: PostState, action: Action) -> PostState:
    """The state after ``action``; :class:`Conflict` naming both when the step is not allowed."""
    try:
        return _STEPS[(state, action)]
    except KeyError:
        allowed = sorted(a.value for (s, a) in _STEPS if s is state)
        hint = f" (from {state.value}: {', '.join(allowed)})" if allowed else f" ({state.value} is final)"
        step = action.value.replace("_", " ")
        raise Conflict(f"cannot {step} a post that is {state.value}{hint}") from None


def check_approver(
    approver: str,
    *,
    author: str,
    signer: str,
    editors: Collection[str],
    scheduled_at: datetime | None,
    now: datetime,
) -> None:
    """Four eyes: refuse (:class:`Forbidden`) an approver who wrote, signed or edited the post.

    ``editors`` are everyone who made a version since the crew's original: whoever put words in
    the post cannot be the one who lets it out. Also refuse (:class:`Conflict`) an approval at or
    after the time the post was scheduled for.
    """
    if approver in (author, signer):
        raise Forbidden(f"{approver} wrote this post and cannot approve it (four eyes)")
    if approver in editors:
        raise Forbidden(f"{approver} edited this post and cannot approve it (four eyes)")
    if scheduled_at is not None and now >= scheduled_at:
        raise Conflict(
            f"the post was scheduled for {scheduled_at.isoformat()}; an approval must come before "
            "that time: schedule it again first"
        )


def backoff(attempt: int, *, spread: float = 0.0) -> timedelta:
    """Delay before try ``attempt + 1`` after ``attempt`` failed tries: 30 s doubling up to 1 h.

    ``spread`` in [0, 1) adds up to 25 % so deliveries that failed together do not retry together
    (the caller passes a value derived from the delivery, keeping this pure).
    """
    if attempt < 1:
        return timedelta(0)
    delay = min(_BASE_DELAY_S * 2.0 ** (attempt - 1), _MAX_DELAY_S)
    return timedelta(seconds=delay * (1.0 + 0.25 * min(max(spread, 0.0), 0.999)))
