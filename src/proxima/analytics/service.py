"""Analytics as the ground service runs it: collect from each channel, then answer the console.

:class:`AnalyticsService` joins three things: the ground database (which posts were published
where, under which campaign), the collectors (one per channel that has an API to ask), and the
DuckDB store of samples and mentions. Every method takes the time it works at as ``now``, so the
mission clock of a demonstration and the tests' fixed times work the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from proxima.analytics import metrics
from proxima.analytics.collect import PublishedMessage, Tracking
from proxima.analytics.model import METRICS_VERSION
from proxima.analytics.report import BestTimeRow, CampaignReport, GrowthRow, InfluenceRow, TopPost
from proxima.errors import ChannelError, InvalidInput
from proxima.ground.accounts import Role, require
from proxima.ground.models import Delivery, PostRow, Slot

if TYPE_CHECKING:
    from collections.abc import Mapping

    from proxima.analytics.collect import Collector
    from proxima.analytics.model import CampaignView, FollowerSample, PostSample
    from proxima.analytics.store import AnalyticsStore
    from proxima.ground.accounts import Account
    from proxima.ground.service import GroundService

__all__ = ["BEST_TIME_LABEL", "AnalyticsService", "CollectReport"]

log = logging.getLogger(__name__)

BEST_TIME_LABEL = f"best time (analytics v{METRICS_VERSION})"
"""Label of the calendar slots that best-time suggestions create, so they can be told apart."""


@dataclass(slots=True)
class CollectReport:
    """What one collection round brought in, per channel, and which channels failed and why."""

    at: datetime
    followers: dict[str, int] = field(default_factory=dict)
    posts: dict[str, int] = field(default_factory=dict)
    mentions: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values."""
        return {
            "at": self.at.isoformat(),
            "followers": self.followers,
            "posts": self.posts,
            "mentions": self.mentions,
            "errors": self.errors,
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AnalyticsService:
    """Collection rounds, metrics and reports over one store and one ground database."""

    def __init__(
        self,
        store: AnalyticsStore,
        ground: GroundService,
        *,
        collectors: Mapping[str, Collector],
        tracking: Tracking,
        others: frozenset[str] = frozenset(),
        tz: str = "UTC",
    ) -> None:
        self.store = store
        self.others = others
        self.ground = ground
        self.collectors = dict(collectors)
        self.tracking = tracking
        self.tz = tz
        self.last: CollectReport | None = None

    # ------------------------------------------------------------ collection

    def published_messages(self) -> list[PublishedMessage]:
        """Every message the channels published, with its post's hashtags and language."""
        out: list[PublishedMessage] = []
        with self.ground.sessions.begin() as s:
            rows = s.execute(
                select(Delivery, PostRow)
                .join(PostRow, Delivery.post_id == PostRow.id)
                .where(Delivery.published_at.is_not(None))
                .order_by(Delivery.published_at)
            ).all()
            for d, post in rows:
                version = post.versions[-1] if post.versions else None
                tags = tuple(str(t).lstrip("#").lower() for t in (version.hashtags if version else []))
                langs = list((version.text if version else {}) or {})
                ids = [str(i) for i in (d.remote_ids or ([d.remote_id] if d.remote_id else []))]
                published = d.published_at
                if published is None:
                    continue
                for i, remote in enumerate(ids):
                    lang = langs[i] if len(ids) == len(langs) and i < len(langs) else None
                    out.append(
                        PublishedMessage(
                            channel=d.channel,
                            remote_id=remote,
                            post_id=post.id,
                            published_at=_utc(published),
                            tags=tags,
                            lang=lang,
                        )
                    )
        return out

    async def collect(self, now: datetime, *, channels: list[str] | None = None) -> CollectReport:
        """One round: followers, every published message's counters, and new mentions, per channel.

        A channel that fails is reported (its error text) and the others go on; what was
        collected before the failure is kept.
        """
        report = CollectReport(at=now)
        messages = self.published_messages()
        for name, collector in self.collectors.items():
            if channels is not None and name not in channels:
                continue
            try:
                followers = await collector.followers(now)
                report.followers[name] = self.store.add_followers(followers)
                mine = [m for m in messages if m.channel == name]
                samples = await collector.posts(mine, now) if mine else []
                report.posts[name] = self.store.add_post_samples(samples)
                cursor = self.store.get_cursor(name, "mentions")
                found, cursor = await collector.mentions(self.tracking, cursor, now)
                report.mentions[name] = self.store.add_mentions(found)
                if cursor is not None:
                    self.store.set_cursor(name, "mentions", cursor)
            except ChannelError as exc:
                report.errors[name] = str(exc)
                log.warning("analytics: %s: %s", name, exc)
        self.last = report
        return report

    # ------------------------------------------------------------ reading

    def growth(self, start: datetime, end: datetime) -> dict[str, metrics.Growth]:
        """Follower growth per channel over ``[start, end]`` (the mission's accounts only)."""
        series = [s for s in self.store.follower_series(end=end) if self._ours(s)]
        return metrics.growth_by_channel(series, start, end)

    def _ours(self, sample: FollowerSample) -> bool:
        return sample.account.lower().lstrip("@") not in self.others

    def follower_curves(self, start: datetime, end: datetime) -> dict[str, tuple[tuple[datetime, int], ...]]:
        """Followers per channel over time: each sample's time and the channel's total then."""
        curves: dict[str, dict[datetime, dict[str, int]]] = {}
        for s in self.store.follower_series(start=start, end=end):
            if self._ours(s):
                curves.setdefault(s.channel, {}).setdefault(s.at, {})[s.account] = s.followers
        out: dict[str, tuple[tuple[datetime, int], ...]] = {}
        for channel, by_time in curves.items():
            latest: dict[str, int] = {}
            points = []
            for at in sorted(by_time):
                latest.update(by_time[at])
                points.append((at, sum(latest.values())))
            out[channel] = tuple(points)
        return out

    def post_samples(self, post_id: str) -> list[PostSample]:
        """Every sample of every message of one post (its life)."""
        return self.store.post_samples(post_id=post_id)

    def channel_engagement(self, start: datetime, end: datetime) -> dict[str, metrics.ChannelEngagement]:
        """Engagement per channel for the posts published in ``[start, end)``."""
        latest = self.store.latest_post_samples(published_from=start, published_to=end)
        return {c: metrics.channel_engagement(latest, c) for c in sorted({s.channel for s in latest})}

    def top_posts(
        self, start: datetime, end: datetime, *, n: int = 10, tag: str | None = None
    ) -> list[TopPost]:
        """The posts with the most engagement among those published in ``[start, end)``."""
        latest = self.store.latest_post_samples(published_from=start, published_to=end)
        if tag is not None:
            latest = [s for s in latest if tag in s.tags]
        per_post: dict[tuple[str, str], list[PostSample]] = {}
        for sample in latest:
            per_post.setdefault((sample.channel, sample.post_id or sample.remote_id), []).append(sample)
        texts, urls = self._texts_and_urls({pid for _, pid in per_post})
        rows = []
        for (channel, pid), samples in per_post.items():
            total = sum(metrics.engagement(s) for s in samples)
            rates = [r for r in (metrics.engagement_rate(s) for s in samples) if r is not None]
            rows.append(
                TopPost(
                    channel=channel,
                    post_id=pid,
                    text=texts.get(pid, ""),
                    url=urls.get((pid, channel), ""),
                    engagement=total,
                    rate=(sum(rates) / len(rates)) if rates else None,
                )
            )
        rows.sort(key=lambda r: (-r.engagement, r.channel, r.post_id))
        return rows[:n]

    def _texts_and_urls(self, post_ids: set[str]) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        texts: dict[str, str] = {}
        urls: dict[tuple[str, str], str] = {}
        if not post_ids:
            return texts, urls
        with self.ground.sessions.begin() as s:
            for post in s.scalars(select(PostRow).where(PostRow.id.in_(post_ids))):
                version = post.versions[-1] if post.versions else None
                text = version.text if version else {}
                texts[post.id] = next(iter(text.values()), "") if text else ""
                for d in post.deliveries:
                    if d.url:
                        urls[(post.id, d.channel)] = d.url
        return texts, urls

    def influence(self, start: datetime, end: datetime) -> dict[tuple[str, str], metrics.InfluenceScore]:
        """The Proxima influence score of the mission's accounts and of every mentioning account."""
        stats: list[metrics.AccountStats] = []
        latest = self.store.latest_post_samples(published_from=start, published_to=end)
        followers: dict[tuple[str, str], int] = {}
        for f in self.store.follower_series(end=end):
            followers[(f.channel, f.account)] = f.followers
        own: dict[tuple[str, str], list[PostSample]] = {}
        for sample in latest:
            own.setdefault((sample.channel, sample.account), []).append(sample)
        mentioned = self.store.account_mentions(sorted({a for _, a in followers}), start, end)
        for key, count in followers.items():
            samples = own.get(key, [])
            stats.append(
                metrics.AccountStats(
                    channel=key[0],
                    account=key[1],
                    followers=count,
                    posts=len({s.post_id or s.remote_id for s in samples}),
                    engagement=sum(metrics.engagement(s) for s in samples),
                    mentions_received=mentioned.get(key[1], 0),
                    reposts_received=sum(s.reposts for s in samples),
                )
            )
        known = set(followers)
        for a in self.store.mention_authors(start, end):
            if (a.channel, a.author) in known:
                continue
            stats.append(
                metrics.AccountStats(
                    channel=a.channel,
                    account=a.author,
                    followers=a.followers,
                    posts=a.mentions,
                    engagement=a.engagement,
                    mentions_received=0,
                    reposts_received=a.reposts,
                )
            )
        return metrics.influence_scores(stats)

    def best_times(self, *, top: int = 3) -> dict[str, list[metrics.BestTime]]:
        """Best hours to post per channel, from the engagement of everything published so far."""
        return metrics.best_times(self.store.latest_post_samples(), self.tz, top=top)

    def apply_best_times(self, actor: Account, *, top: int = 3) -> list[Slot]:
        """Add the suggested hours to the editorial calendar as slots (those not there yet)."""
        require(actor, Role.EDITOR)
        suggestions = self.best_times(top=top)
        with self.ground.sessions.begin() as s:
            have = {(x.channel, x.weekday, x.time, x.tz) for x in s.scalars(select(Slot))}
        made = []
        for channel, times in sorted(suggestions.items()):
            if channel not in self.ground.channels:
                continue
            for best in times:
                hhmm = f"{best.hour:02d}:00"
                if (channel, best.weekday, hhmm, self.tz) in have:
                    continue
                made.append(
                    self.ground.add_slot(
                        actor,
                        channel=channel,
                        time_of_day=hhmm,
                        tz=self.tz,
                        weekday=best.weekday,
                        label=BEST_TIME_LABEL,
                    )
                )
        return made

    def campaign_view(
        self, tag: str, start: datetime, end: datetime, *, bucket: str = "hour"
    ) -> CampaignView:
        """The campaign dashboard of one hashtag over ``[start, end)`` (the request checked first)."""
        tag = tag.strip().lstrip("#").lower()
        if not tag:
            raise InvalidInput("name the campaign's hashtag", field="campaign")
        if end <= start:
            raise InvalidInput("the window ends before it starts", field="to")
        if end - start > timedelta(days=400):
            raise InvalidInput("the window is longer than 400 days", field="to")
        if bucket not in ("hour", "day"):
            raise InvalidInput(f"{bucket!r} is not hour or day", field="bucket")
        return self.store.campaign(tag, start, end, bucket=bucket)  # type: ignore[arg-type]

    def campaign_report(
        self, tag: str, start: datetime, end: datetime, *, bucket: str = "hour", now: datetime
    ) -> CampaignReport:
        """Everything a campaign report shows, for one hashtag over ``[start, end)``."""
        view = self.campaign_view(tag, start, end, bucket=bucket)
        tag = view.tag
        growth = [
            GrowthRow(
                channel=c,
                start_followers=g.start_followers,
                end_followers=g.end_followers,
                delta=g.delta,
                percent=g.percent,
            )
            for c, g in sorted(self.growth(start, end).items())
        ]
        scores = self.influence(start, end)
        followers = {(f.channel, f.account): f.followers for f in self.store.follower_series(end=end)}
        ours = [k for k in followers if k[1].lower().lstrip("@") not in self.others]
        influence = [
            InfluenceRow(channel=c, account=a, score=scores[(c, a)].score, followers=followers[(c, a)])
            for c, a in sorted(ours)
            if (c, a) in scores
        ]
        counts = self.store.account_mentions(list(self.tracking.accounts), start, end)
        shares = metrics.share_of_voice(counts)
        best = [
            BestTimeRow(channel=c, weekday=b.weekday, hour=b.hour, posts=b.posts, score=b.score)
            for c, times in sorted(self.best_times().items())
            for b in times
        ]
        return CampaignReport(
            tag=tag,
            start=start,
            end=end,
            generated_at=now,
            metrics_version=METRICS_VERSION,
            view=view,
            growth=tuple(growth),
            follower_series=self.follower_curves(start, end),
            sentiment=tuple(self.store.sentiment_counts(start, end, bucket="day", tag=tag)),
            top_posts=tuple(self.top_posts(start, end, tag=tag)),
            influence=tuple(influence),
            best_times=tuple(best),
            share_of_voice=tuple((a, counts.get(a, 0), shares.get(a, 0.0)) for a in sorted(counts)),
        )
