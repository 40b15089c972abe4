"""The DuckDB analytics store: round trips, dedupe, windows, and the SQL campaign dashboard.

The campaign dashboard computed in SQL (from per-tag rows and hourly/daily rollups) is checked
against a plain-Python reference on hypothesis-generated mentions, with windows that cut hours
and days at arbitrary microseconds so every path (raw edges, hours, days) is taken.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxima.analytics import metrics
from proxima.analytics.model import (
    AccountActivity,
    Bucket,
    CampaignView,
    FollowerSample,
    Mention,
    PostSample,
    sentiment_label,
)
from proxima.analytics.store import AnalyticsStore, MentionAuthor
from proxima.errors import ConfigError, InvalidInput, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

T0 = datetime(2026, 11, 10, 14, 20, tzinfo=UTC)
H = timedelta(hours=1)


def reference_campaign(
    mentions: Iterable[Mention],
    tag: str,
    start: datetime,
    end: datetime,
    bucket: Literal["hour", "day"] = "hour",
    top: int = 10,
) -> CampaignView:
    """CampaignView computed naively from its docstring (the pure reference of the SQL)."""
    chosen = [m for m in mentions if tag in m.tags and start <= m.at < end]
    width = H if bucket == "hour" else timedelta(days=1)
    s = start.astimezone(UTC)
    origin = s.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        origin = origin.replace(hour=0)
    starts = []
    b = origin
    while b < end:
        starts.append(b)
        b += width
    buckets = []
    for b in starts:
        inside = [m for m in chosen if b <= m.at < b + width]
        labels = Counter(m.label for m in inside)
        buckets.append(
            Bucket(
                b, len(inside), len({(m.channel, m.author) for m in inside}), labels[1], labels[0], labels[-1]
            )
        )
    per_author: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m in chosen:
        per_author[(m.channel, m.author)].append(m.author_followers or 0)
    labels = Counter(m.label for m in chosen)
    langs = Counter(m.lang or "und" for m in chosen)
    chans = Counter(m.channel for m in chosen)
    accounts = sorted(
        (AccountActivity(c, a, len(f), max(f)) for (c, a), f in per_author.items()),
        key=lambda x: (-x.mentions, -x.followers, x.author, x.channel),
    )
    return CampaignView(
        tag=tag,
        start=start,
        end=end,
        bucket=bucket,
        mentions=len(chosen),
        authors=len(per_author),
        reach=sum(m.author_followers or 0 for m in chosen),
        unique_reach=sum(max(f) for f in per_author.values()),
        positive=labels[1],
        neutral=labels[0],
        negative=labels[-1],
        buckets=tuple(buckets),
        languages=tuple(sorted(langs.items(), key=lambda x: (-x[1], x[0]))),
        channels=tuple(sorted(chans.items(), key=lambda x: (-x[1], x[0]))),
        top_accounts=tuple(accounts[:top]),
    )


def first_per_uri(mentions: Iterable[Mention]) -> list[Mention]:
    """What the store keeps: the first mention of each (channel, uri)."""
    seen: dict[tuple[str, str], Mention] = {}
    for m in mentions:
        seen.setdefault((m.channel, m.uri), m)
    return list(seen.values())


def mention(i: int, **kw: object) -> Mention:
    base = Mention(
        channel="mastodon",
        uri=f"https://piaille.fr/notes/{i}",
        author=f"user{i % 3}@piaille.fr",
        at=T0 + timedelta(minutes=13 * i),
        text=f"Allez Thomas ! n°{i} 🚀",
        sentiment=(0.6, 0.0, -0.4)[i % 3],
        lang=("fr", "en", None)[i % 3],
        lang_detected=i % 2 == 0,
        author_followers=None if i % 4 == 0 else 100 * i,
        tags=("allezthomas", "iss") if i % 2 else ("iss",),
        accounts=("@thom_astro@mastodon.social",) if i % 3 == 0 else (),
        keywords=("décollage",) if i % 5 == 0 else (),
        kind=("post", "reply", "quote", "repost")[i % 4],
        in_reply_to=None if i % 4 == 0 else f"https://piaille.fr/notes/{i - 1}",
        url=f"https://piaille.fr/@u/{i}",
        likes=i,
        reposts=i // 2,
        replies=i % 3,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def post_sample(remote: str, hours: float, likes: int, **kw: object) -> PostSample:
    base = PostSample(
        channel="bluesky",
        remote_id=remote,
        account="crew.bsky.social",
        published_at=T0,
        at=T0 + timedelta(hours=hours),
        likes=likes,
        reposts=2,
        replies=1,
        quotes=None,
        views=None,
        followers=1200,
        post_id="p-1",
        tags=("allezthomas",),
        lang="fr",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store() -> Iterable[AnalyticsStore]:
    with AnalyticsStore(threads=1) as s:
        yield s


# -- round trips ----------------------------------------------------------------------------


def test_followers_round_trip_in_time_order(store: AnalyticsStore) -> None:
    samples = [
        FollowerSample("mastodon", "@crew@m.social", T0 + 2 * H, 1510, following=12, posts=40),
        FollowerSample("mastodon", "@crew@m.social", T0, 1000),
        FollowerSample("bluesky", "crew.bsky.social", T0 + H, 300, following=None, posts=3),
    ]
    assert store.add_followers(samples) == 3
    assert store.follower_series() == [samples[1], samples[2], samples[0]]
    assert store.follower_series(channel="bluesky") == [samples[2]]
    assert store.follower_series(account="@crew@m.social", start=T0 + H) == [samples[0]]


def test_post_samples_round_trip_every_sample_kept(store: AnalyticsStore) -> None:
    samples = [post_sample("at://x/1", h, 10 * h) for h in (1, 2, 3)]
    other = post_sample(
        "110000001",
        2,
        7,
        channel="mastodon",
        quotes=0,
        views=None,
        followers=None,
        post_id=None,
        tags=(),
        lang=None,
    )
    assert store.add_post_samples([*samples, other]) == 4
    assert store.post_samples(remote_id="at://x/1") == samples
    assert store.post_samples(channel="mastodon") == [other]
    assert store.post_samples(post_id="p-1", start=T0 + 2 * H) == samples[1:]
    assert store.latest_post_samples() == [samples[2], other]
    assert store.latest_post_samples(channel="mastodon") == [other]
    assert store.latest_post_samples(published_from=T0 + H) == []


def test_mentions_round_trip_every_field(store: AnalyticsStore) -> None:
    items = [mention(i) for i in range(12)]
    assert store.add_mentions(items) == 12
    got = store.mentions()
    assert got == sorted(items, key=lambda m: m.at, reverse=True)
    assert store.mention_count() == 12


def test_mention_columns_equal_values(store: AnalyticsStore) -> None:
    items = [mention(i) for i in range(6)]
    cols = {
        "channel": np.array([m.channel for m in items], dtype=object),
        "uri": np.array([m.uri for m in items]),
        "author": np.array([m.author for m in items], dtype=object),
        "at": np.array([m.at.replace(tzinfo=None) for m in items], dtype="datetime64[ms]"),
        "text": np.array([m.text for m in items], dtype=object),
        "sentiment": np.array([m.sentiment for m in items]),
        "lang": np.array([m.lang for m in items], dtype=object),
        "lang_detected": np.array([m.lang_detected for m in items]),
        "author_followers": np.array([m.author_followers for m in items], dtype=object),
        "tags": np.array([list(m.tags) for m in items] + [[]], dtype=object)[:-1],
        "accounts": np.array([m.accounts for m in items] + [()], dtype=object)[:-1],
        "keywords": np.array([m.keywords for m in items] + [()], dtype=object)[:-1],
        "kind": np.array([m.kind for m in items], dtype=object),
        "in_reply_to": np.array([m.in_reply_to for m in items], dtype=object),
        "url": np.array([m.url for m in items], dtype=object),
        "likes": np.array([m.likes for m in items]),
        "reposts": np.array([m.reposts for m in items]),
        "replies": np.array([m.replies for m in items]),
    }
    assert store.add_mention_columns(cols) == 6
    assert sorted(store.mentions(), key=lambda m: m.uri) == sorted(items, key=lambda m: m.uri)


def test_mention_columns_defaults_and_int_times(store: AnalyticsStore) -> None:
    at = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    cols = {
        "channel": np.array(["bluesky"], dtype=object),
        "uri": np.array(["at://did:plc:x/app.bsky.feed.post/1"], dtype=object),
        "author": np.array(["fan.bsky.social"], dtype=object),
        "at": np.array([at], dtype=np.int64),
        "text": np.array(["go"], dtype=object),
        "sentiment": np.array([0.05]),
    }
    assert store.add_mention_columns(cols) == 1
    assert store.mentions() == [
        Mention("bluesky", "at://did:plc:x/app.bsky.feed.post/1", "fan.bsky.social", T0, "go", 0.05)
    ]


def test_mention_columns_refuse_bad_input(store: AnalyticsStore) -> None:
    cols = {
        "channel": np.array(["m"], dtype=object),
        "uri": np.array(["u"], dtype=object),
        "author": np.array(["a"], dtype=object),
        "at": np.array(["2026-01-01"], dtype="datetime64[us]"),
        "text": np.array(["t"], dtype=object),
        "sentiment": np.array([0.0]),
    }
    with pytest.raises(InvalidInput, match="unknown mention columns"):
        store.add_mention_columns({**cols, "colour": np.array(["x"])})
    with pytest.raises(InvalidInput, match="missing mention columns"):
        store.add_mention_columns({k: v for k, v in cols.items() if k != "uri"})
    with pytest.raises(InvalidInput, match="unknown kind 'shout'"):
        store.add_mention_columns({**cols, "kind": np.array(["shout"], dtype=object)})
    with pytest.raises(InvalidInput, match="text"):
        store.add_mention_columns({**cols, "text": np.array([None], dtype=object)})
    with pytest.raises(InvalidInput, match="likes"):
        store.add_mention_columns({**cols, "likes": np.array([1, 2])})
    assert store.mention_count() == 0
    assert store.add_mention_columns(cols) == 1


def test_cursors(store: AnalyticsStore) -> None:
    assert store.get_cursor("mastodon", "notifications") is None
    store.set_cursor("mastodon", "notifications", "1100")
    store.set_cursor("mastodon", "notifications", "1200")
    store.set_cursor("bluesky", "search:allezthomas", "cursor-é")
    assert store.get_cursor("mastodon", "notifications") == "1200"
    assert store.get_cursor("bluesky", "search:allezthomas") == "cursor-é"


# -- dedupe ---------------------------------------------------------------------------------


def test_mentions_dedupe_within_batch_and_against_store(store: AnalyticsStore) -> None:
    first = [mention(i) for i in range(5)]
    assert store.add_mentions(first) == 5
    again = [mention(3, text="edited"), mention(5), mention(5, text="later copy"), mention(6)]
    assert store.add_mentions(again) == 2
    assert store.mention_count() == 7
    kept = {m.uri: m.text for m in store.mentions()}
    assert kept[mention(3).uri] == mention(3).text
    assert kept[mention(5).uri] == mention(5).text
    # The same uri on another channel is another message.
    assert store.add_mentions([mention(3, channel="bluesky")]) == 1
    assert store.campaign("iss", T0, T0 + 3 * H).mentions == 8


def test_samples_exact_duplicates_ignored(store: AnalyticsStore) -> None:
    s = post_sample("at://x/1", 1, 5)
    assert store.add_post_samples([s, s]) == 1
    assert store.add_post_samples([s, replace(s, at=s.at + H)]) == 1
    assert len(store.post_samples()) == 2
    f = FollowerSample("mastodon", "@crew@m.social", T0, 1000)
    assert store.add_followers([f, f]) == 1
    assert store.add_followers([f]) == 0
    assert store.add_followers([]) == 0
    assert store.add_mentions([]) == 0


# -- windows --------------------------------------------------------------------------------


def test_windows_inclusive_start_exclusive_end(store: AnalyticsStore) -> None:
    store.add_followers([FollowerSample("m", "a", T0 + k * H, k) for k in range(4)])
    store.add_post_samples([post_sample("r", k, k) for k in range(4)])
    store.add_mentions([mention(i, at=T0 + i * H) for i in range(4)])
    start, end = T0 + H, T0 + 3 * H
    assert [f.followers for f in store.follower_series(start=start, end=end)] == [1, 2]
    assert [p.likes for p in store.post_samples(start=start, end=end)] == [1, 2]
    assert [m.at for m in store.mentions(start=start, end=end)] == [T0 + 2 * H, T0 + H]
    assert store.mention_count(tag="iss", start=start, end=end) == 2
    view = store.campaign("iss", start, end, bucket="hour")
    assert view.mentions == 2
    assert [b.mentions for b in view.buckets] == [1, 1, 0]  # 15:00, 16:00, 17:00 (until 17:20)
    assert store.sentiment_counts(start, end, bucket="hour")[0][0] == T0.replace(minute=0) + H


def test_mentions_paging_and_filters(store: AnalyticsStore) -> None:
    items = [mention(i) for i in range(10)]
    store.add_mentions(items)
    newest = sorted(items, key=lambda m: m.at, reverse=True)
    assert store.mentions(limit=3, offset=2) == newest[2:5]
    assert store.mentions(tag="allezthomas") == [m for m in newest if "allezthomas" in m.tags]
    assert store.mentions(account="@thom_astro@mastodon.social") == [m for m in newest if m.accounts]
    assert store.mention_count(tag="allezthomas", account="@thom_astro@mastodon.social") == 2
    with pytest.raises(InvalidInput, match="limit"):
        store.mentions(limit=-1)


def test_naive_datetimes_refused(store: AnalyticsStore) -> None:
    with pytest.raises(InvalidInput, match="no timezone"):
        store.add_followers([FollowerSample("m", "a", datetime(2026, 1, 1), 1)])
    with pytest.raises(InvalidInput, match="start"):
        store.campaign("iss", datetime(2026, 1, 1), T0)
    with pytest.raises(InvalidInput, match="bucket"):
        store.campaign("iss", T0, T0 + H, bucket="week")  # type: ignore[arg-type]


# -- empty store, unknown tag ---------------------------------------------------------------


def test_empty_store(store: AnalyticsStore) -> None:
    assert store.follower_series() == []
    assert store.post_samples() == []
    assert store.latest_post_samples() == []
    assert store.mentions() == []
    assert store.mention_count() == 0
    assert store.account_mentions(["@a"], T0, T0 + H) == {"@a": 0}
    assert store.mention_authors(T0, T0 + H) == []
    assert list(store.export("mentions", T0, T0 + H)) == []
    assert store.sentiment_counts(T0, T0 + 2 * H, bucket="hour") == [
        (T0.replace(minute=0), 0, 0, 0),
        (T0.replace(minute=0) + H, 0, 0, 0),
        (T0.replace(minute=0) + 2 * H, 0, 0, 0),
    ]
    view = store.campaign("allezthomas", T0, T0 + timedelta(days=2), bucket="day")
    assert view == reference_campaign([], "allezthomas", T0, T0 + timedelta(days=2), "day")
    assert len(view.buckets) == 3
    assert view.mentions == view.authors == view.reach == 0


def test_unknown_tag(store: AnalyticsStore) -> None:
    store.add_mentions([mention(i) for i in range(6)])
    view = store.campaign("nosuchtag", T0 - timedelta(days=1), T0 + timedelta(days=1), bucket="day")
    assert view.mentions == 0
    assert view.top_accounts == ()
    assert view.languages == view.channels == ()
    assert all(b.mentions == 0 for b in view.buckets)
    assert store.mentions(tag="nosuchtag") == []


# -- other reads ----------------------------------------------------------------------------


def test_campaign_example(store: AnalyticsStore) -> None:
    items = [mention(i) for i in range(20)]
    store.add_mentions(items)
    view = store.campaign("allezthomas", T0, T0 + 5 * H, top=2)
    # Odd i of 0..19, all within 5 h (13 min apart): 10 mentions; user1 (i = 1, 7, 13, 19) 4 of them,
    # user0 (3, 9, 15: at most 1500 followers) and user2 (5, 11, 17: 1700) 3 each.
    assert view.mentions == 10
    assert view.authors == 3
    assert [(a.author, a.mentions, a.followers) for a in view.top_accounts] == [
        ("user1@piaille.fr", 4, 1900),
        ("user2@piaille.fr", 3, 1700),
    ]
    assert view == reference_campaign(items, "allezthomas", T0, T0 + 5 * H, "hour", 2)


def test_sentiment_accounts_authors_export(store: AnalyticsStore) -> None:
    items = [mention(i) for i in range(9)]
    store.add_mentions(items)
    end = T0.replace(hour=0, minute=0) + timedelta(days=1)
    rows = store.sentiment_counts(T0, end, bucket="day")
    assert rows == [(T0.replace(hour=0, minute=0), 3, 3, 3)]
    assert store.sentiment_counts(T0, end, bucket="day", tag="allezthomas") == [
        (
            T0.replace(hour=0, minute=0),
            *(sum(1 for m in items if "allezthomas" in m.tags and m.label == k) for k in (1, 0, -1)),
        )
    ]
    assert store.account_mentions(["@thom_astro@mastodon.social", "@esa@esa.int"], T0, end) == {
        "@thom_astro@mastodon.social": 3,
        "@esa@esa.int": 0,
    }
    authors = store.mention_authors(T0, end, top=2)
    # user1: i = 1, 4, 7 (followers 100, None, 700; likes 1+4+7, reposts 0+2+3, replies 1+1+1);
    # user0: i = 0, 3, 6 (None, 300, 600; likes 0+3+6, reposts 0+1+3, replies 0); user2 tops at 500.
    assert authors == [
        MentionAuthor("mastodon", "user1@piaille.fr", 3, 700, 12 + 5 + 3, 5),
        MentionAuthor("mastodon", "user0@piaille.fr", 3, 600, 9 + 4 + 0, 4),
    ]
    exported = list(store.export("mentions", T0, T0 + 14 * timedelta(minutes=1)))
    assert exported == [
        {
            "channel": "mastodon",
            "uri": items[0].uri,
            "author": items[0].author,
            "at": "2026-11-10T14:20:00+00:00",
            "text": items[0].text,
            "sentiment": 0.6,
            "lang": "fr",
            "lang_detected": True,
            "author_followers": None,
            "tags": "iss",
            "accounts": "@thom_astro@mastodon.social",
            "keywords": "décollage",
            "kind": "post",
            "in_reply_to": None,
            "url": items[0].url,
            "likes": 0,
            "reposts": 0,
            "replies": 0,
        },
        {
            "channel": "mastodon",
            "uri": items[1].uri,
            "author": items[1].author,
            "at": "2026-11-10T14:33:00+00:00",
            "text": items[1].text,
            "sentiment": 0.0,
            "lang": "en",
            "lang_detected": False,
            "author_followers": 100,
            "tags": "allezthomas iss",
            "accounts": "",
            "keywords": "",
            "kind": "reply",
            "in_reply_to": items[0].uri,
            "url": items[1].url,
            "likes": 1,
            "reposts": 0,
            "replies": 1,
        },
    ]
    store.add_followers([FollowerSample("m", "a", T0, 5, posts=2)])
    store.add_post_samples([post_sample("r", 1, 3)])
    assert list(store.export("followers", T0, end)) == [
        {
            "channel": "m",
            "account": "a",
            "at": "2026-11-10T14:20:00+00:00",
            "followers": 5,
            "following": None,
            "posts": 2,
        }
    ]
    (post,) = store.export("posts", T0, end)
    assert post["published_at"] == "2026-11-10T14:20:00+00:00"
    assert post["at"] == "2026-11-10T15:20:00+00:00"
    assert post["tags"] == "allezthomas"
    with pytest.raises(InvalidInput, match="kind"):
        list(store.export("likes", T0, end))  # type: ignore[arg-type]


# -- the SQL dashboard against the reference ------------------------------------------------

BASE = datetime(2026, 11, 9, 22, 0, tzinfo=UTC)
SPAN_US = 3 * 86_400_000_000

mention_strategy = st.builds(
    Mention,
    channel=st.sampled_from(["mastodon", "bluesky"]),
    uri=st.integers(0, 40).map(lambda i: f"u{i}"),
    author=st.sampled_from(["ana", "bob", "cléo", "Dan"]),
    at=st.integers(0, SPAN_US).map(lambda us: BASE + timedelta(microseconds=us)),
    text=st.just("x"),
    sentiment=st.sampled_from([-1.0, -0.05, -0.0499, 0.0, 0.0499, 0.05, 0.7]),
    lang=st.sampled_from([None, "fr", "en"]),
    author_followers=st.one_of(st.none(), st.integers(0, 10**9)),
    tags=st.lists(st.sampled_from(["allezthomas", "iss", "esa"]), max_size=3).map(tuple),
)
window_strategy = st.tuples(st.integers(-3_600_000_000, SPAN_US), st.integers(0, SPAN_US + 3_600_000_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(mention_strategy, max_size=25), min_size=1, max_size=3),
    window=window_strategy,
    bucket=st.sampled_from(["hour", "day"]),
    tag=st.sampled_from(["allezthomas", "iss"]),
    top=st.integers(0, 5),
)
def test_campaign_sql_equals_reference(
    batches: list[list[Mention]],
    window: tuple[int, int],
    bucket: Literal["hour", "day"],
    tag: str,
    top: int,
) -> None:
    start = BASE + timedelta(microseconds=window[0])
    end = start + timedelta(microseconds=window[1])
    with AnalyticsStore(threads=1) as s:
        for batch in batches:
            s.add_mentions(batch)
        kept = first_per_uri(m for batch in batches for m in batch)
        assert s.mention_count() == len(kept)
        view = s.campaign(tag, start, end, bucket=bucket, top=top)
        assert view == reference_campaign(kept, tag, start, end, bucket, top)
        # The project's pure reference, given every mention as collected (it dedupes itself).
        pure = metrics.campaign_view([m for batch in batches for m in batch], tag, start, end, bucket, top)
        assert view == pure
        assert s.sentiment_counts(start, end, bucket=bucket, tag=tag) == [
            (b.start, b.positive, b.neutral, b.negative) for b in view.buckets
        ]


@settings(max_examples=20, deadline=None)
@given(st.lists(mention_strategy, max_size=30))
def test_mentions_newest_first_and_labels(items: list[Mention]) -> None:
    with AnalyticsStore(threads=1) as s:
        s.add_mentions(items)
        got = s.mentions()
        kept = first_per_uri(items)
        assert sorted(got, key=lambda m: (m.channel, m.uri)) == sorted(kept, key=lambda m: (m.channel, m.uri))
        assert [m.at for m in got] == sorted((m.at for m in kept), reverse=True)
        assert sum(r[1] for r in s.sentiment_counts(BASE, BASE + timedelta(days=4))) == sum(
            1 for m in kept if sentiment_label(m.sentiment) == 1 and m.at < BASE + timedelta(days=4)
        )


# -- files ----------------------------------------------------------------------------------


def test_file_store_reopened_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    items = [mention(i) for i in range(8)]
    f = FollowerSample("mastodon", "@crew@m.social", T0, 1000)
    p = post_sample("at://x/1", 1, 5)
    with AnalyticsStore(path) as s:
        s.add_mentions(items[:5])
        s.add_followers([f])
        s.add_post_samples([p])
        s.set_cursor("mastodon", "tag:iss", "42")
    with AnalyticsStore(path) as s:
        assert s.add_mentions(items) == 3
        assert sorted(s.mentions(), key=lambda m: m.uri) == sorted(items, key=lambda m: m.uri)
        assert s.follower_series() == [f]
        assert s.post_samples() == [p]
        assert s.get_cursor("mastodon", "tag:iss") == "42"
        assert s.campaign("iss", T0, T0 + 3 * H) == reference_campaign(items, "iss", T0, T0 + 3 * H)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.mention_count()


def test_newer_schema_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    AnalyticsStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("update meta set value = '99' where key = 'schema_version'")
    con.close()
    with pytest.raises(ConfigError, match=r"analytics\.duckdb.*version 99 is newer"):
        AnalyticsStore(path)


def test_not_a_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    path.write_bytes(b"this is not a database" * 300)
    with pytest.raises(ConfigError, match=r"analytics\.duckdb"):
        AnalyticsStore(path)
