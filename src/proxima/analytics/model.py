"""The values analytics is made of: samples taken from the networks, and what the public said.

Every value is immutable and carries its own time (UTC, timezone-aware). Samples are never
overwritten: a follower count or a post's likes are kept at every collection, so growth over any
window and the life of a post can be drawn afterwards.

Names used throughout:

- ``channel``: the channel's name as the ground configuration gives it (``mastodon``,
  ``bluesky``, ``activitypub``...); ``network`` is its kind (the same names by default).
- ``account``: a handle on that network (``@crew@example.social``, ``crew.bsky.social``, an
  ActivityPub actor id). The mission's own accounts and other tracked accounts (for share of
  voice) are sampled the same way.
- tags are stored lower case, without ``#``; accounts mentioned are stored as the network
  writes them, lower case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "METRICS_VERSION",
    "NEGATIVE",
    "NEUTRAL",
    "POSITIVE",
    "AccountActivity",
    "Bucket",
    "CampaignView",
    "FollowerSample",
    "Mention",
    "MentionKind",
    "PostSample",
    "sentiment_label",
]

METRICS_VERSION: Final = "1"
"""Version of the metric definitions in ``docs/analytics.md``; reports and exports carry it."""

POSITIVE: Final = 1
NEUTRAL: Final = 0
NEGATIVE: Final = -1

SENTIMENT_THRESHOLD: Final = 0.05
"""VADER's own convention: compound >= 0.05 is positive, <= -0.05 negative, neutral between."""

MentionKind = Literal["post", "reply", "quote", "repost"]


def sentiment_label(compound: float) -> int:
    """:data:`POSITIVE`, :data:`NEUTRAL` or :data:`NEGATIVE` for a VADER compound score."""
    if compound >= SENTIMENT_THRESHOLD:
        return POSITIVE
    if compound <= -SENTIMENT_THRESHOLD:
        return NEGATIVE
    return NEUTRAL


@dataclass(frozen=True, slots=True)
class FollowerSample:
    """An account's audience on one network at one moment."""

    channel: str
    account: str
    at: datetime
    followers: int
    following: int | None = None
    posts: int | None = None


@dataclass(frozen=True, slots=True)
class PostSample:
    """One published message's counters at one moment.

    ``None`` means the network does not give that counter (no network here gives views of a
    post, Mastodon before 4.5 gives no quotes); zero means it gave zero.
    """

    channel: str
    remote_id: str
    """The network's id of the message (a status id, an at:// URI, a Note id)."""
    account: str
    published_at: datetime
    at: datetime
    likes: int
    reposts: int
    replies: int
    quotes: int | None = None
    views: int | None = None
    followers: int | None = None
    """The account's followers when sampled: the denominator of the engagement rate."""
    post_id: str | None = None
    """The Proxima post this message publishes (None for another account's message)."""
    tags: tuple[str, ...] = ()
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """Something the public wrote that mentions a tracked account, hashtag or keyword."""

    channel: str
    uri: str
    """The network's id of the message: unique per channel, so collecting twice stores it once."""
    author: str
    at: datetime
    text: str
    sentiment: float
    """VADER compound score in [-1, 1], for the message's language."""
    lang: str | None = None
    """``en``, ``fr``... as declared by the author, else detected; None when neither."""
    lang_detected: bool = False
    author_followers: int | None = None
    tags: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    """Tracked accounts the message mentions."""
    keywords: tuple[str, ...] = ()
    """Tracked keywords found in the text (lower case)."""
    kind: MentionKind = "post"
    in_reply_to: str | None = None
    """The network id of the message it answers or quotes, if any."""
    url: str | None = None
    likes: int = 0
    reposts: int = 0
    replies: int = 0

    @property
    def label(self) -> int:
        """Positive, neutral or negative (see :func:`sentiment_label`)."""
        return sentiment_label(self.sentiment)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One hour or day of a campaign: mentions, distinct authors, and their sentiment."""

    start: datetime
    mentions: int
    authors: int
    positive: int
    neutral: int
    negative: int


@dataclass(frozen=True, slots=True)
class AccountActivity:
    """An account that mentioned the campaign: how often, and its largest audience seen."""

    channel: str
    author: str
    mentions: int
    followers: int


@dataclass(frozen=True, slots=True)
class CampaignView:
    """What a campaign dashboard shows for one tag over ``[start, end)``.

    Authors are distinct ``(channel, author)`` pairs. ``reach`` sums the author's followers over
    every mention; ``unique_reach`` counts each author once, with the most followers seen in the
    window (unknown followers count 0). ``buckets`` cover the whole window, empty ones included,
    in order; ``languages`` and ``channels`` are sorted by count, then name (unknown language is
    ``und``); ``top_accounts`` by mentions, then followers, then name.
    """

    tag: str
    start: datetime
    end: datetime
    bucket: Literal["hour", "day"]
    mentions: int
    authors: int
    reach: int
    unique_reach: int
    positive: int
    neutral: int
    negative: int
    buckets: tuple[Bucket, ...]
    languages: tuple[tuple[str, int], ...]
    channels: tuple[tuple[str, int], ...]
    top_accounts: tuple[AccountActivity, ...]
