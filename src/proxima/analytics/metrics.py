"""The metrics of ``docs/analytics.md`` (version ``METRICS_VERSION``), as pure functions.

Values in, values out: no clock (every window is passed in), no database, no network. The
analytics store answers the campaign dashboard in SQL for speed; :func:`campaign_view` here is
the reference it must agree with. Every public function's docstring gives its formula; the
document gives the same formula with its inputs, edge cases and a worked example.

Units used throughout:

- a *message* is one published item on a network, identified by ``(channel, remote_id)``; its
  counters are taken from its latest sample (:func:`latest`);
- a *channel post* is what one Proxima post became on one channel (every language, every part
  of a thread): the messages sharing ``(channel, post_id)``. A message without ``post_id`` (another
  account's message) is a channel post on its own.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from proxima.analytics.model import (
    METRICS_VERSION,
    NEGATIVE,
    POSITIVE,
    AccountActivity,
    Bucket,
    CampaignView,
    FollowerSample,
    Mention,
    PostSample,
)
from proxima.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_ENGAGEMENT_FIELDS",
    "DEFAULT_PRIOR_WEIGHT",
    "ENGAGEMENT_FIELDS",
    "INFLUENCE_WEIGHTS",
    "METRICS_VERSION",
    "AccountStats",
    "BestTime",
    "BucketSize",
    "ChannelEngagement",
    "ChannelPost",
    "Growth",
    "InfluenceScore",
    "PostEngagement",
    "SentimentShare",
    "best_times",
    "campaign_view",
    "channel_engagement",
    "channel_posts",
    "engagement",
    "engagement_rate",
    "follower_growth",
    "growth_by_channel",
    "influence_scores",
    "latest",
    "mention_counts",
    "normalize_tag",
    "post_engagement",
    "reach",
    "sentiment_share",
    "sentiment_share_from_counts",
    "share_of_voice",
    "share_of_voice_from",
    "top_accounts",
    "top_posts",
    "unique_reach",
]

BucketSize = Literal["hour", "day"]

_STEPS: Final[Mapping[str, timedelta]] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}

ENGAGEMENT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "mastodon": ("likes", "reposts", "replies", "quotes"),
    "bluesky": ("likes", "reposts", "replies", "quotes"),
    "activitypub": ("likes", "reposts", "replies"),
    "atom": (),
    "webhook": (),
}
"""Which :class:`PostSample` counters make engagement, per network kind.

Mastodon: favourites, boosts, replies, and quotes where the server gives them (4.5 and later).
Bluesky: likes, reposts, replies, quotes. ActivityPub: ``Like`` and ``Announce`` activities and
replies that reached the mission's actor. Atom feeds and webhooks have no feedback channel.
"""

DEFAULT_ENGAGEMENT_FIELDS: Final = ("likes", "reposts", "replies", "quotes")
"""Counters used for a network kind not in :data:`ENGAGEMENT_FIELDS`: every interaction given."""

INFLUENCE_WEIGHTS: Final[Mapping[str, float]] = {
    "followers": 0.4,
    "engagement": 0.3,
    "amplification": 0.2,
    "mentions": 0.1,
}
"""Weights of the Proxima influence score v1 components (they sum to 1)."""

DEFAULT_PRIOR_WEIGHT: Final = 3.0
"""Best time to post: how many posts' worth of the channel mean each slot starts with."""


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelPost:
    """One Proxima post on one channel (or one message of another account), from latest samples.

    ``key`` is the ``post_id``, or the message's ``remote_id`` when it has none. ``rate`` is
    engagement over views when every message gives views, else over the followers of the
    account(s) that published it; None when that is unknown or zero.
    """

    channel: str
    key: str
    post_id: str | None
    account: str
    published_at: datetime
    remote_ids: tuple[str, ...]
    engagement: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class PostEngagement:
    """A Proxima post's engagement summed over every channel and message that publishes it."""

    post_id: str
    messages: int
    engagement: int
    likes: int
    reposts: int
    replies: int
    quotes: int
    by_channel: Mapping[str, int] = field(default_factory=dict)
    """Engagement per channel, by that channel's definition."""


@dataclass(frozen=True, slots=True)
class ChannelEngagement:
    """Engagement of a channel's posts: total, per post (mean, median) and mean rate.

    ``mean``, ``median`` are None when the channel has no post; ``mean_rate`` is the mean of the
    rates that are known (``rated`` of them), None when none is.
    """

    channel: str
    posts: int
    engagement: int
    mean: float | None
    median: float | None
    mean_rate: float | None
    rated: int


@dataclass(frozen=True, slots=True)
class Growth:
    """Followers at the start and end of a window, the difference, and it as a percentage.

    ``account`` is None for a channel total. ``percent`` is ``100 * delta / start_followers``,
    None when there were no followers at the start.
    """

    channel: str
    account: str | None
    start: datetime
    end: datetime
    start_followers: int
    end_followers: int
    delta: int
    percent: float | None


@dataclass(frozen=True, slots=True)
class SentimentShare:
    """Positive, neutral and negative mentions in one bucket, as counts and fractions of it."""

    start: datetime
    positive: int
    neutral: int
    negative: int
    total: int
    positive_share: float
    neutral_share: float
    negative_share: float


@dataclass(frozen=True, slots=True)
class AccountStats:
    """What the influence score is computed from, for one account on one channel.

    ``posts`` are the account's posts seen (its mentions, for a listening author); ``engagement``
    the interactions they received (likes, reposts, replies); ``reposts_received`` the part of it
    that spread them; ``mentions_received`` how often others mentioned the account.
    """

    channel: str
    account: str
    followers: int
    posts: int
    engagement: int
    mentions_received: int = 0
    reposts_received: int = 0


@dataclass(frozen=True, slots=True)
class InfluenceScore:
    """The Proxima influence score (v1) of one account, with what it is made of.

    ``followers``, ``engagement``, ``amplification`` and ``mentions`` are the components scaled
    to 0..1 within the population (see :data:`INFLUENCE_WEIGHTS`); ``composite`` is their
    weighted sum; ``percentile`` the account's mid-rank in the population (0..1); ``score``
    ``1 + 99 * percentile`` rounded.
    """

    channel: str
    account: str
    score: int
    percentile: float
    composite: float
    followers: float
    engagement: float
    amplification: float
    mentions: float
    version: str = METRICS_VERSION


@dataclass(frozen=True, slots=True)
class BestTime:
    """A (weekday, hour) slot of a channel and how well its posts did (0 = Monday, local hour).

    Weekday and hour are those of the editorial calendar's recurring slots (``SlotSpec``) in the
    same zone, so a best time becomes the slot ``weekday`` at ``hour:00``.
    """

    channel: str
    weekday: int
    hour: int
    posts: int
    mean_rate: float
    score: float


# --- checks -------------------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{value!r} is not a timezone-aware time", field=name)
    return value.astimezone(UTC)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _utc(start, "start"), _utc(end, "end")
    if end < start:
        raise InvalidInput(
            f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})", field="end"
        )
    return start, end


def _bucket_step(bucket: str) -> timedelta:
    step = _STEPS.get(bucket)
    if step is None:
        raise InvalidInput(f"{bucket!r} is not a bucket size (hour or day)", field="bucket")
    return step


def _floor(at: datetime, bucket: str) -> datetime:
    at = at.astimezone(UTC)
    if bucket == "day":
        return datetime(at.year, at.month, at.day, tzinfo=UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _bucket_starts(start: datetime, end: datetime, bucket: str) -> list[datetime]:
    step = _bucket_step(bucket)
    starts: list[datetime] = []
    at = _floor(start, bucket)
    while at < end:
        starts.append(at)
        at += step
    return starts


def _non_negative(value: int, name: str) -> int:
    if value < 0:
        raise InvalidInput(f"{value} is negative", field=name)
    return value


def normalize_tag(tag: str) -> str:
    """A hashtag as stored: lower case, without its leading ``#`` (``#AllezThomas`` → ``allezthomas``)."""
    key = tag.strip().lstrip("#").lower()
    if not key:
        raise InvalidInput(f"{tag!r} is not a hashtag", field="tag")
    return key


def _unique_mentions(mentions: Iterable[Mention]) -> list[Mention]:
    """Mentions once each per ``(channel, uri)``, the first one kept (as the store keeps them)."""
    seen: set[tuple[str, str]] = set()
    out: list[Mention] = []
    for m in mentions:
        key = (m.channel, m.uri)
        if key in seen:
            continue
        seen.add(key)
        _utc(m.at, "mention.at")
        out.append(m)
    return out


# --- engagement ---------------------------------------------------------------------------------


def engagement(sample: PostSample, network: str | None = None) -> int:
    """Interactions on one message: the sum of the counters :data:`ENGAGEMENT_FIELDS` lists for ``network``.

    ``network`` defaults to the sample's channel name; a counter the network did not give
    (``None``) counts 0.
    """
    fields = ENGAGEMENT_FIELDS.get(network or sample.channel, DEFAULT_ENGAGEMENT_FIELDS)
    total = 0
    for name in fields:
        value: int | None = getattr(sample, name)
        total += value or 0
    return total


def _rate(interactions: int, views: int | None, followers: int | None) -> float | None:
    denominator = views if views is not None else followers
    if not denominator:
        return None
    return interactions / denominator


def engagement_rate(sample: PostSample, network: str | None = None) -> float | None:
    """``engagement / views`` when the network gives views, else ``engagement / followers``.

    ``followers`` are the account's followers when the sample was taken. None when that
    denominator is unknown or zero.
    """
    return _rate(engagement(sample, network), sample.views, sample.followers)


def latest(samples: Iterable[PostSample]) -> list[PostSample]:
    """The last sample (greatest ``at``; the later one given on a tie) of each ``(channel, remote_id)``.

    Ordered by publication time, then channel and remote id.
    """
    last: dict[tuple[str, str], PostSample] = {}
    for s in samples:
        key = (s.channel, s.remote_id)
        seen = last.get(key)
        if seen is None or _utc(s.at, "sample.at") >= seen.at:
            last[key] = s
    return sorted(last.values(), key=lambda s: (s.published_at, s.channel, s.remote_id))


def channel_posts(samples: Iterable[PostSample], network: str | None = None) -> list[ChannelPost]:
    """The channel posts (messages grouped by ``(channel, post_id)``) from their latest samples.

    ``engagement`` is the sum of the messages' engagement; ``rate`` is ``engagement / Σ views``
    when every message gives views, else ``engagement / Σ followers`` over the distinct accounts
    that published it (each at its latest sample). Ordered by publication time (the earliest
    message), then channel and key.
    """
    groups: dict[tuple[str, bool, str], list[PostSample]] = defaultdict(list)
    for s in latest(samples):
        # A post id and another account's message id never share a group, even if equal.
        own = s.post_id is not None
        groups[(s.channel, own, s.post_id if s.post_id is not None else s.remote_id)].append(s)
    out: list[ChannelPost] = []
    for (channel, _own, key), members in groups.items():
        total = sum(engagement(s, network) for s in members)
        views: int | None = None
        if all(s.views is not None for s in members):
            views = sum(s.views or 0 for s in members)
        by_account: dict[str, PostSample] = {}
        for s in members:
            if s.account not in by_account or s.at >= by_account[s.account].at:
                by_account[s.account] = s
        followers: int | None = None
        if all(s.followers is not None for s in by_account.values()):
            followers = sum(s.followers or 0 for s in by_account.values())
        first = min(members, key=lambda s: s.published_at)
        out.append(
            ChannelPost(
                channel=channel,
                key=key,
                post_id=first.post_id,
                account=first.account,
                published_at=first.published_at,
                remote_ids=tuple(sorted(s.remote_id for s in members)),
                engagement=total,
                rate=_rate(total, views, followers),
            )
        )
    out.sort(key=lambda p: (p.published_at, p.channel, p.key))
    return out


def post_engagement(samples: Iterable[PostSample], post_id: str) -> PostEngagement:
    """A Proxima post's engagement: ``Σ engagement(latest sample)`` over every message with this ``post_id``.

    Counters are summed as given (a missing one counts 0); ``by_channel`` splits the engagement
    per channel. A post with no sample has ``messages == 0`` and zeros.
    """
    mine = [s for s in latest(samples) if s.post_id == post_id]
    by_channel: dict[str, int] = {}
    for s in mine:
        by_channel[s.channel] = by_channel.get(s.channel, 0) + engagement(s)
    return PostEngagement(
        post_id=post_id,
        messages=len(mine),
        engagement=sum(by_channel.values()),
        likes=sum(s.likes for s in mine),
        reposts=sum(s.reposts for s in mine),
        replies=sum(s.replies for s in mine),
        quotes=sum(s.quotes or 0 for s in mine),
        by_channel=dict(sorted(by_channel.items())),
    )


def channel_engagement(samples: Iterable[PostSample], channel: str) -> ChannelEngagement:
    """A channel's engagement: its channel posts ``n``, ``Σ e``, ``Σ e / n``, the median of ``e``, mean rate.

    The mean rate is the plain mean of the posts' rates that are known.
    """
    posts = channel_posts(s for s in samples if s.channel == channel)
    values = [p.engagement for p in posts]
    rates = [p.rate for p in posts if p.rate is not None]
    return ChannelEngagement(
        channel=channel,
        posts=len(posts),
        engagement=sum(values),
        mean=statistics.fmean(values) if values else None,
        median=float(statistics.median(values)) if values else None,
        mean_rate=statistics.fmean(rates) if rates else None,
        rated=len(rates),
    )


def top_posts(
    samples: Iterable[PostSample], n: int = 10, by: Literal["engagement", "rate"] = "engagement"
) -> list[ChannelPost]:
    """The ``n`` channel posts with the most engagement (or the highest rate; unknown rates left out).

    Ties: by engagement, then rate, then earlier publication, channel and key.
    """
    _non_negative(n, "n")
    posts = channel_posts(samples)
    if by == "engagement":
        posts.sort(key=lambda p: (-p.engagement, -(p.rate or 0.0), p.published_at, p.channel, p.key))
    elif by == "rate":
        posts = [p for p in posts if p.rate is not None]
        posts.sort(key=lambda p: (-(p.rate or 0.0), -p.engagement, p.published_at, p.channel, p.key))
    else:
        raise InvalidInput(f"{by!r} is not a ranking (engagement or rate)", field="by")
    return posts[:n]


# --- followers ----------------------------------------------------------------------------------


def _value_at(series: Sequence[FollowerSample], at: datetime) -> int | None:
    """Followers of the last sample at or before ``at`` (``series`` in time order)."""
    value: int | None = None
    for s in series:
        if s.at > at:
            break
        value = s.followers
    return value


def follower_growth(series: Sequence[FollowerSample], start: datetime, end: datetime) -> Growth | None:
    """Growth of one ``(channel, account)``: ``Δ = F(end) - F(start)`` and ``100 Δ / F(start)`` percent.

    ``F(t)`` is the followers of the last sample at or before ``t``. None when there is no sample
    at or before ``start`` (the growth would be invented). The percentage is None when
    ``F(start)`` is 0.
    """
    start, end = _window(start, end)
    if not series:
        return None
    ids = {(s.channel, s.account) for s in series}
    if len(ids) > 1:
        raise InvalidInput(
            f"the series mixes {len(ids)} accounts ({', '.join(sorted(f'{c}:{a}' for c, a in ids))}); "
            "give one (channel, account) or use growth_by_channel",
            field="series",
        )
    ordered = sorted(series, key=lambda s: _utc(s.at, "sample.at"))
    first = _value_at(ordered, start)
    if first is None:
        return None
    last = _value_at(ordered, end)
    last = first if last is None else last
    delta = last - first
    return Growth(
        channel=ordered[0].channel,
        account=ordered[0].account,
        start=start,
        end=end,
        start_followers=first,
        end_followers=last,
        delta=delta,
        percent=100.0 * delta / first if first else None,
    )


def growth_by_channel(
    series: Iterable[FollowerSample],
    start: datetime,
    end: datetime,
    accounts: Collection[str] | None = None,
) -> dict[str, Growth]:
    """Per channel, the sum of its accounts' ``F(start)`` and ``F(end)``, then ``Δ`` and ``100 Δ / F(start)``.

    Only accounts with a sample at or before ``start`` count (an account first sampled inside the
    window would show as growth); ``accounts`` limits the sum to those handles. A channel with no
    such account is absent.
    """
    per_account: dict[tuple[str, str], list[FollowerSample]] = defaultdict(list)
    for s in series:
        if accounts is None or s.account in accounts:
            per_account[(s.channel, s.account)].append(s)
    totals: dict[str, tuple[int, int]] = {}
    for (channel, _account), samples in sorted(per_account.items()):
        growth = follower_growth(samples, start, end)
        if growth is None:
            continue
        first, last = totals.get(channel, (0, 0))
        totals[channel] = (first + growth.start_followers, last + growth.end_followers)
    start, end = _window(start, end)
    return {
        channel: Growth(
            channel=channel,
            account=None,
            start=start,
            end=end,
            start_followers=first,
            end_followers=last,
            delta=last - first,
            percent=100.0 * (last - first) / first if first else None,
        )
        for channel, (first, last) in totals.items()
    }


# --- listening ----------------------------------------------------------------------------------


def reach(mentions: Iterable[Mention]) -> int:
    """Potential impressions: ``Σ author_followers`` over every mention (unknown followers count 0)."""
    return sum(m.author_followers or 0 for m in mentions)


def _largest_audiences(mentions: Iterable[Mention]) -> dict[tuple[str, str], int]:
    largest: dict[tuple[str, str], int] = {}
    for m in mentions:
        key = (m.channel, m.author)
        largest[key] = max(largest.get(key, 0), m.author_followers or 0)
    return largest


def unique_reach(mentions: Iterable[Mention]) -> int:
    """Potential distinct audience: ``Σ max(author_followers)`` over distinct ``(channel, author)``."""
    return sum(_largest_audiences(mentions).values())


def _ranked_accounts(mentions: Sequence[Mention], n: int) -> tuple[AccountActivity, ...]:
    counts = Counter((m.channel, m.author) for m in mentions)
    largest = _largest_audiences(mentions)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -largest[kv[0]], kv[0][1], kv[0][0]))
    return tuple(
        AccountActivity(channel=channel, author=author, mentions=count, followers=largest[(channel, author)])
        for (channel, author), count in ranked[:n]
    )


def top_accounts(mentions: Iterable[Mention], n: int = 10) -> list[AccountActivity]:
    """The ``n`` authors who mentioned most: by mentions, then largest audience seen, then name."""
    _non_negative(n, "n")
    return list(_ranked_accounts(_unique_mentions(mentions), n))


def _sorted_counts(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def campaign_view(
    mentions: Iterable[Mention],
    tag: str,
    start: datetime,
    end: datetime,
    bucket: BucketSize = "hour",
    top: int = 10,
) -> CampaignView:
    """The campaign dashboard of ``tag`` over ``[start, end)``, as :class:`CampaignView` defines it.

    Mentions are those carrying the tag (normalised by :func:`normalize_tag`) with
    ``start <= at < end``, once per ``(channel, uri)``. Buckets start at ``start`` floored to the
    UTC hour or day and follow each other while they start before ``end``, empty ones included. ``reach`` and
    ``unique_reach`` are :func:`reach` and :func:`unique_reach` of those mentions.
    """
    key = normalize_tag(tag)
    start, end = _window(start, end)
    _non_negative(top, "top")
    starts = _bucket_starts(start, end, bucket)
    step = _bucket_step(bucket)
    chosen = [m for m in _unique_mentions(mentions) if key in m.tags and start <= m.at < end]
    per_bucket: list[list[Mention]] = [[] for _ in starts]
    for m in chosen:
        per_bucket[(m.at - starts[0]) // step].append(m)
    buckets = tuple(_bucket(at, ms) for at, ms in zip(starts, per_bucket, strict=True))
    labels = Counter(m.label for m in chosen)
    return CampaignView(
        tag=key,
        start=start,
        end=end,
        bucket=bucket,
        mentions=len(chosen),
        authors=len({(m.channel, m.author) for m in chosen}),
        reach=reach(chosen),
        unique_reach=unique_reach(chosen),
        positive=labels[POSITIVE],
        neutral=len(chosen) - labels[POSITIVE] - labels[NEGATIVE],
        negative=labels[NEGATIVE],
        buckets=buckets,
        languages=_sorted_counts(Counter(m.lang or "und" for m in chosen)),
        channels=_sorted_counts(Counter(m.channel for m in chosen)),
        top_accounts=_ranked_accounts(chosen, top),
    )


def _bucket(start: datetime, mentions: Sequence[Mention]) -> Bucket:
    labels = Counter(m.label for m in mentions)
    return Bucket(
        start=start,
        mentions=len(mentions),
        authors=len({(m.channel, m.author) for m in mentions}),
        positive=labels[POSITIVE],
        neutral=len(mentions) - labels[POSITIVE] - labels[NEGATIVE],
        negative=labels[NEGATIVE],
    )


def share_of_voice(counts: Mapping[str, int]) -> dict[str, float]:
    """Each account's part of the conversation: ``count / Σ counts`` (all 0 when nobody was mentioned)."""
    total = sum(_non_negative(c, f"counts[{name}]") for name, c in counts.items())
    return {name: (c / total if total else 0.0) for name, c in counts.items()}


def mention_counts(
    mentions: Iterable[Mention], accounts: Sequence[str], start: datetime, end: datetime
) -> dict[str, int]:
    """Mentions in ``[start, end)`` of each tracked account (lower case); one counts for each it names."""
    start, end = _window(start, end)
    wanted = [a.lower() for a in accounts]
    counts = dict.fromkeys(wanted, 0)
    for m in _unique_mentions(mentions):
        if not start <= m.at < end:
            continue
        named = set(m.accounts)
        for account in counts:
            if account in named:
                counts[account] += 1
    return counts


def share_of_voice_from(
    mentions: Iterable[Mention], accounts: Sequence[str], start: datetime, end: datetime
) -> dict[str, float]:
    """:func:`share_of_voice` of :func:`mention_counts`: ``mentions(a) / Σ mentions`` per tracked account."""
    return share_of_voice(mention_counts(mentions, accounts, start, end))


def sentiment_share_from_counts(rows: Iterable[tuple[datetime, int, int, int]]) -> list[SentimentShare]:
    """Shares of ``(start, positive, neutral, negative)`` rows: each count over its row's total, or 0."""
    out: list[SentimentShare] = []
    for at, pos, neu, neg in rows:
        named = ((pos, "positive"), (neu, "neutral"), (neg, "negative"))
        total = sum(_non_negative(c, name) for c, name in named)
        out.append(
            SentimentShare(
                start=at,
                positive=pos,
                neutral=neu,
                negative=neg,
                total=total,
                positive_share=pos / total if total else 0.0,
                neutral_share=neu / total if total else 0.0,
                negative_share=neg / total if total else 0.0,
            )
        )
    return out


def sentiment_share(
    mentions: Iterable[Mention],
    start: datetime,
    end: datetime,
    bucket: BucketSize = "day",
    tag: str | None = None,
) -> list[SentimentShare]:
    """Per UTC hour or day of ``[start, end)``: positive, neutral, negative mentions and each ``/ total``.

    Labels follow :func:`~proxima.analytics.model.sentiment_label`; with ``tag``, only mentions
    carrying it. Every bucket of the window is there; an empty one has fractions 0.
    """
    start, end = _window(start, end)
    key = None if tag is None else normalize_tag(tag)
    starts = _bucket_starts(start, end, bucket)
    step = _bucket_step(bucket)
    counts = [[0, 0, 0] for _ in starts]
    for m in _unique_mentions(mentions):
        if not start <= m.at < end or (key is not None and key not in m.tags):
            continue
        row = counts[(m.at - starts[0]) // step]
        row[0 if m.label == POSITIVE else 2 if m.label == NEGATIVE else 1] += 1
    return sentiment_share_from_counts(
        (at, pos, neu, neg) for at, (pos, neu, neg) in zip(starts, counts, strict=True)
    )


# --- influence ----------------------------------------------------------------------------------


def influence_scores(stats: Sequence[AccountStats]) -> dict[tuple[str, str], InfluenceScore]:
    """The Proxima influence score v1 of each ``(channel, account)``, from 1 to 100.

    Components: ``F = ln(1 + followers)``, ``E = ln(1 + engagement / posts)``,
    ``A = ln(1 + reposts_received / posts)`` (0 without posts), ``M = ln(1 + mentions_received)``;
    each divided by its largest value in the population (0 when that is 0). Composite
    ``C = 0.4 F + 0.3 E + 0.2 A + 0.1 M``; percentile ``p = (below + equal / 2) / N`` (accounts
    with a lower ``C``, with the same ``C`` including itself); ``score = round(1 + 99 p)``, halves
    to even, so a lone account (``p = 0.5``) scores 50.
    """
    seen: set[tuple[str, str]] = set()
    raw: list[tuple[AccountStats, tuple[float, float, float, float]]] = []
    for s in stats:
        key = (s.channel, s.account)
        if key in seen:
            raise InvalidInput(f"{s.channel}:{s.account} is given twice", field="stats")
        seen.add(key)
        for name in ("followers", "posts", "engagement", "mentions_received", "reposts_received"):
            _non_negative(getattr(s, name), f"{s.channel}:{s.account}.{name}")
        per_post = s.engagement / s.posts if s.posts else 0.0
        spread = s.reposts_received / s.posts if s.posts else 0.0
        raw.append(
            (
                s,
                (
                    math.log1p(s.followers),
                    math.log1p(per_post),
                    math.log1p(spread),
                    math.log1p(s.mentions_received),
                ),
            )
        )
    if not raw:
        return {}
    tops = [max(values[i] for _, values in raw) for i in range(4)]
    weights = [INFLUENCE_WEIGHTS[k] for k in ("followers", "engagement", "amplification", "mentions")]
    scaled: list[tuple[AccountStats, list[float], float]] = []
    for s, values in raw:
        parts = [v / top if top else 0.0 for v, top in zip(values, tops, strict=True)]
        composite = sum(w * p for w, p in zip(weights, parts, strict=True))
        scaled.append((s, parts, composite))
    composites = sorted(c for _, _, c in scaled)
    n = len(composites)
    out: dict[tuple[str, str], InfluenceScore] = {}
    for s, parts, composite in scaled:
        below = _count_below(composites, composite)
        equal = _count_below(composites, composite, inclusive=True) - below
        percentile = (below + equal / 2) / n
        out[(s.channel, s.account)] = InfluenceScore(
            channel=s.channel,
            account=s.account,
            score=round(1 + 99 * percentile),
            percentile=percentile,
            composite=composite,
            followers=parts[0],
            engagement=parts[1],
            amplification=parts[2],
            mentions=parts[3],
        )
    return out


def _count_below(ordered: Sequence[float], value: float, *, inclusive: bool = False) -> int:
    """How many of ``ordered`` (ascending) are ``< value`` (``<=`` when inclusive)."""
    return (bisect_right if inclusive else bisect_left)(ordered, value)


# --- best time to post --------------------------------------------------------------------------


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(
            f"unknown time zone {tz!r} (an IANA name such as Europe/Paris)", field="tz"
        ) from exc


def best_times(
    samples: Sequence[PostSample],
    tz: str,
    *,
    min_posts: int = 2,
    top: int = 3,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> dict[str, list[BestTime]]:
    """Per channel, the ``top`` (weekday, hour) slots of ``tz`` where its posts did best.

    Each channel post with a known rate goes to the local weekday and hour it was published at.
    A slot of ``n`` posts with mean rate ``r`` scores ``(n r + k m) / (n + k)``: the channel's mean
    rate ``m`` weighs as ``k = prior_weight`` posts, so a slot of few lucky posts does not win.
    Slots with fewer than ``min_posts`` posts are left out. Every channel of ``samples`` is a key,
    possibly with no slot. Ties: more posts, then earlier in the week.
    """
    zone = _zone(tz)
    if min_posts < 1:
        raise InvalidInput(f"{min_posts} posts per slot is too few (at least 1)", field="min_posts")
    _non_negative(top, "top")
    if not prior_weight >= 0 or math.isinf(prior_weight):
        raise InvalidInput(
            f"{prior_weight} is not a prior weight (a finite number >= 0)", field="prior_weight"
        )
    per_channel: dict[str, list[ChannelPost]] = {s.channel: [] for s in samples}
    for post in channel_posts(samples):
        if post.rate is not None:
            per_channel[post.channel].append(post)
    out: dict[str, list[BestTime]] = {}
    for channel, posts in sorted(per_channel.items()):
        slots: dict[tuple[int, int], list[float]] = defaultdict(list)
        for post in posts:
            local = _utc(post.published_at, "published_at").astimezone(zone)
            slots[(local.weekday(), local.hour)].append(post.rate or 0.0)
        mean = statistics.fmean(p.rate or 0.0 for p in posts) if posts else 0.0
        ranked = [
            BestTime(
                channel=channel,
                weekday=weekday,
                hour=hour,
                posts=len(rates),
                mean_rate=statistics.fmean(rates),
                score=(sum(rates) + prior_weight * mean) / (len(rates) + prior_weight),
            )
            for (weekday, hour), rates in slots.items()
            if len(rates) >= min_posts
        ]
        ranked.sort(key=lambda b: (-b.score, -b.posts, b.weekday, b.hour))
        out[channel] = ranked[:top]
    return out
