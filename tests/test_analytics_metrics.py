"""The metric definitions of docs/analytics.md, checked against figures worked out by hand.

The fixture is a small launch campaign written out in full: a dozen published messages on four
channels (the mission's Proxima posts p1..p4 and one status of a tracked agency), follower
samples around launch day (Friday 27 March 2026), and 39 mention records in French and English
(one of them a duplicate). Every expected value is computed by hand in a comment next to it.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.analytics.metrics import (
    ENGAGEMENT_FIELDS,
    INFLUENCE_WEIGHTS,
    AccountStats,
    BestTime,
    best_times,
    campaign_view,
    channel_engagement,
    channel_posts,
    engagement,
    engagement_rate,
    follower_growth,
    growth_by_channel,
    influence_scores,
    latest,
    mention_counts,
    post_engagement,
    reach,
    sentiment_share,
    sentiment_share_from_counts,
    share_of_voice,
    share_of_voice_from,
    top_accounts,
    top_posts,
    unique_reach,
)
from proxima.analytics.model import (
    METRICS_VERSION,
    AccountActivity,
    Bucket,
    FollowerSample,
    Mention,
    PostSample,
)
from proxima.errors import InvalidInput
from proxima.ground.calendar import SlotSpec

MASTO = "@crew@proxima.social"
BSKY = "crew.proxima.space"
BSKY_FR = "equipage.proxima.space"
ACTOR = "https://ground.proxima.space/actor"
ESA = "@esa@esa.social"


def t(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A UTC time in March (day <= 31) or April 2026 (day 32 = 1 April...)."""
    since = timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
    return datetime(2026, 3, 1, tzinfo=UTC) + since


# --- posts --------------------------------------------------------------------------------------


def post(
    channel: str,
    remote_id: str,
    published: datetime,
    likes: int,
    reposts: int,
    replies: int,
    quotes: int | None,
    followers: int | None,
    *,
    post_id: str | None,
    account: str,
    at: datetime | None = None,
    lang: str = "en",
) -> PostSample:
    return PostSample(
        channel=channel,
        remote_id=remote_id,
        account=account,
        published_at=published,
        at=at or t(10, 12) + timedelta(days=30),
        likes=likes,
        reposts=reposts,
        replies=replies,
        quotes=quotes,
        followers=followers,
        post_id=post_id,
        lang=lang,
    )


# Europe/Paris changes to summer time on Sunday 29 March 2026 at 01:00 UTC: p1 (Friday 27 March,
# 08:15 UTC) and p2 (Friday 3 April, 07:20 UTC) were both published at 09:xx Paris time.
P1 = t(27, 8, 15)
P2 = t(34, 7, 20)  # 3 April
P3 = t(30, 16)  # Monday 30 March, 18:00 Paris
P4 = t(37, 16, 5)  # Monday 6 April, 18:05 Paris

POSTS = [
    # An early sample of m1, superseded by the later one.
    post("mastodon", "m1", P1, 10, 2, 1, None, 1000, post_id="p1", account=MASTO, at=t(27, 9)),
    post("mastodon", "m1", P1, 40, 12, 6, None, 1200, post_id="p1", account=MASTO, at=t(28)),  # 58
    post("mastodon", "m2", P1, 20, 5, 3, 2, 1200, post_id="p1", account=MASTO, at=t(28), lang="fr"),  # 30
    post("mastodon", "m3", P2, 30, 6, 4, 0, 1500, post_id="p2", account=MASTO),  # 40
    post("mastodon", "m4", P3, 5, 1, 0, None, 1200, post_id="p3", account=MASTO),  # 6
    post("mastodon", "m5", P4, 9, 2, 1, None, 1500, post_id="p4", account=MASTO),  # 12
    post("mastodon", "x1", t(27, 10), 100, 40, 10, None, 50000, post_id=None, account=ESA),  # 150
    post("bluesky", "b1", t(27, 8, 16), 50, 10, 5, 3, 800, post_id="p1", account=BSKY),  # 68
    post("bluesky", "b2", t(34, 7, 21), 12, 2, 1, 1, 900, post_id="p2", account=BSKY),  # 16
    post("bluesky", "b3", t(30, 16, 1), 0, 0, 0, 0, 0, post_id="p3", account=BSKY),  # 0, no followers
    post("activitypub", "a1", P1, 7, 3, 2, None, 150, post_id="p1", account=ACTOR),  # 12
    post("activitypub", "a2", P2, 1, 0, 0, None, None, post_id="p2", account=ACTOR),  # 1, followers unknown
    post("atom", "f1", P1, 0, 0, 0, None, None, post_id="p1", account="feed"),  # 0
]


def test_engagement_per_network() -> None:
    m1 = POSTS[1]
    # Mastodon: 40 favourites + 12 boosts + 6 replies + no quote count = 58.
    assert engagement(m1) == 58
    # m2 gives quotes: 20 + 5 + 3 + 2 = 30.
    assert engagement(POSTS[2]) == 30
    # ActivityPub counts Like, Announce and replies only: 7 + 3 + 2 = 12.
    assert engagement(POSTS[10]) == 12
    # A webhook has no feedback channel, whatever its counters say.
    hook = post("webhook", "w1", P1, 3, 3, 3, 3, 10, post_id="p1", account="hook")
    assert engagement(hook) == 0
    # The network kind can differ from the channel name: the same sample read as ActivityPub.
    assert engagement(POSTS[2], "activitypub") == 28
    # An unknown kind counts every interaction: 3 + 3 + 3 + 3.
    assert engagement(post("diaspora", "d", P1, 3, 3, 3, 3, 10, post_id=None, account="x")) == 12
    assert ENGAGEMENT_FIELDS["atom"] == ()
    assert "quotes" in ENGAGEMENT_FIELDS["bluesky"]
    assert "quotes" not in ENGAGEMENT_FIELDS["activitypub"]


def test_engagement_rate_denominators() -> None:
    # 58 / 1200 followers at sample time.
    assert engagement_rate(POSTS[1]) == pytest.approx(0.048333, abs=1e-6)
    # The early sample of m1: (10 + 2 + 1) / 1000.
    assert engagement_rate(POSTS[0]) == pytest.approx(0.013)
    # Zero followers, unknown followers: no rate.
    assert engagement_rate(POSTS[9]) is None
    assert engagement_rate(POSTS[11]) is None
    # Views win over followers when given: 58 / 2900 = 0.02.
    with_views = post("mastodon", "v", P1, 40, 12, 6, None, 1200, post_id="p9", account=MASTO)
    with_views = PostSample(**{**_fields(with_views), "views": 2900})
    assert engagement_rate(with_views) == pytest.approx(0.02)
    # Views given as 0: unknown, followers are not used instead.
    assert engagement_rate(PostSample(**{**_fields(with_views), "views": 0})) is None


def _fields(sample: PostSample) -> dict[str, object]:
    return {name: getattr(sample, name) for name in PostSample.__slots__}


def test_latest_keeps_the_last_sample_of_each_message() -> None:
    last = latest(POSTS)
    # 13 samples of 12 messages.
    assert len(last) == 12
    m1 = [s for s in last if s.remote_id == "m1"]
    assert len(m1) == 1
    assert m1[0].likes == 40
    # Given in the other order, the latest still wins.
    assert [s.likes for s in latest(reversed(POSTS)) if s.remote_id == "m1"] == [40]
    # On equal sample times the one given last wins.
    twin = PostSample(**{**_fields(POSTS[1]), "likes": 41})
    assert [s.likes for s in latest([POSTS[1], twin]) if s.remote_id == "m1"] == [41]
    assert latest([]) == []


def test_channel_posts_group_the_messages_of_a_post() -> None:
    posts = {(p.channel, p.key): p for p in channel_posts(POSTS)}
    # 12 messages, m1 and m2 are one Mastodon channel post: 11 channel posts.
    assert len(posts) == 11
    p1 = posts[("mastodon", "p1")]
    assert p1.remote_ids == ("m1", "m2")
    # 58 + 30 = 88 over the one account's 1200 followers.
    assert p1.engagement == 88
    assert p1.rate == pytest.approx(88 / 1200)
    # The tracked agency's status has no post id: keyed by its remote id.
    assert posts[("mastodon", "x1")].post_id is None
    assert posts[("mastodon", "x1")].rate == pytest.approx(0.003)


def test_post_engagement_sums_every_channel() -> None:
    p1 = post_engagement(POSTS, "p1")
    # m1, m2, b1, a1, f1.
    assert p1.messages == 5
    # Mastodon 58 + 30 = 88, Bluesky 50 + 10 + 5 + 3 = 68, ActivityPub 12, Atom 0: 168.
    assert dict(p1.by_channel) == {"activitypub": 12, "atom": 0, "bluesky": 68, "mastodon": 88}
    assert p1.engagement == 168
    # Likes 40 + 20 + 50 + 7 + 0 = 117; reposts 12 + 5 + 10 + 3 = 30; replies 6 + 3 + 5 + 2 = 16;
    # quotes: m1 none, m2 2, b1 3, a1 none = 5.
    assert (p1.likes, p1.reposts, p1.replies, p1.quotes) == (117, 30, 16, 5)
    nothing = post_engagement(POSTS, "p-unknown")
    assert (nothing.messages, nothing.engagement, dict(nothing.by_channel)) == (0, 0, {})


def test_channel_engagement() -> None:
    masto = channel_engagement(POSTS, "mastodon")
    # Channel posts p1 88, p2 40, p3 6, p4 12, x1 150.
    assert masto.posts == 5
    assert masto.engagement == 296
    assert masto.mean == pytest.approx(59.2)
    assert masto.median == 40
    # Rates 88/1200 = 0.073333, 40/1500 = 0.026667, 6/1200 = 0.005, 12/1500 = 0.008,
    # 150/50000 = 0.003: sum 0.116, mean 0.0232.
    assert masto.mean_rate == pytest.approx(0.0232)
    assert masto.rated == 5
    sky = channel_engagement(POSTS, "bluesky")
    # 68, 16, 0: mean 28, median 16; b3 has no followers so only two rates:
    # (68/800 + 16/900) / 2 = (0.085 + 0.017778) / 2 = 0.051389.
    assert (sky.posts, sky.engagement, sky.mean, sky.median, sky.rated) == (3, 84, 28.0, 16.0, 2)
    assert sky.mean_rate == pytest.approx(0.051389, abs=1e-6)
    # Even count: median of 12 and 1 (a1, a2) is 6.5; only a1 has a rate, 12/150 = 0.08.
    ap = channel_engagement(POSTS, "activitypub")
    assert (ap.median, ap.mean_rate, ap.rated) == (6.5, pytest.approx(0.08), 1)
    feed = channel_engagement(POSTS, "atom")
    assert (feed.posts, feed.engagement, feed.mean_rate) == (1, 0, None)
    empty = channel_engagement(POSTS, "nowhere")
    assert (empty.posts, empty.engagement, empty.mean, empty.median) == (0, 0, None, None)
    assert empty.mean_rate is None


def test_top_posts() -> None:
    by_engagement = top_posts(POSTS, n=3)
    # x1 150, Mastodon p1 88, Bluesky p1 68.
    assert [(p.channel, p.key, p.engagement) for p in by_engagement] == [
        ("mastodon", "x1", 150),
        ("mastodon", "p1", 88),
        ("bluesky", "p1", 68),
    ]
    by_rate = top_posts(POSTS, n=4, by="rate")
    # Bluesky p1 0.085, ActivityPub p1 0.08, Mastodon p1 0.0733, Mastodon p2 0.0267.
    assert [(p.channel, p.key) for p in by_rate] == [
        ("bluesky", "p1"),
        ("activitypub", "p1"),
        ("mastodon", "p1"),
        ("mastodon", "p2"),
    ]
    # Posts without a rate never rank by rate: of 11 channel posts, Bluesky p3 (0 followers),
    # ActivityPub p2 (followers unknown) and the feed have none, so 8 rank.
    assert len(top_posts(POSTS, n=100, by="rate")) == 8
    assert top_posts([], n=3) == []
    assert top_posts(POSTS, n=0) == []
    with pytest.raises(InvalidInput, match="views"):
        top_posts(POSTS, by="views")  # type: ignore[arg-type]


# --- followers ----------------------------------------------------------------------------------


def fs(channel: str, account: str, at: datetime, followers: int) -> FollowerSample:
    return FollowerSample(channel=channel, account=account, at=at, followers=followers)


FOLLOWERS = [
    fs("mastodon", MASTO, t(26), 1000),
    fs("mastodon", MASTO, t(27), 1000),
    fs("mastodon", MASTO, t(28), 1510),
    fs("mastodon", MASTO, t(29), 1600),
    fs("mastodon", ESA, t(26), 50000),
    fs("mastodon", ESA, t(28), 50500),
    fs("bluesky", BSKY, t(27), 800),
    fs("bluesky", BSKY, t(27, 12), 900),
    fs("bluesky", BSKY, t(28), 1000),
    fs("bluesky", BSKY_FR, t(27, 6), 200),
    fs("bluesky", BSKY_FR, t(28), 260),
    fs("activitypub", ACTOR, t(26), 0),
    fs("activitypub", ACTOR, t(28), 150),
]


def series(channel: str, account: str) -> list[FollowerSample]:
    return [s for s in FOLLOWERS if (s.channel, s.account) == (channel, account)]


def test_follower_growth_after_launch_day() -> None:
    growth = follower_growth(series("mastodon", MASTO), t(27), t(28))
    # 1000 at 27 March 00:00, 1510 at 28 March 00:00: +510, +51 %.
    assert growth is not None
    assert (growth.start_followers, growth.end_followers, growth.delta) == (1000, 1510, 510)
    assert growth.percent == pytest.approx(51.0)
    # End between samples: the last one at or before 27 March 18:00 is 900 (taken at 12:00).
    mid = follower_growth(series("bluesky", BSKY), t(27, 1), t(27, 18))
    assert mid is not None
    assert (mid.start_followers, mid.end_followers, mid.delta) == (800, 900, 100)
    assert mid.percent == pytest.approx(12.5)
    # Starting before the first sample: unknown, not zero.
    assert follower_growth(series("bluesky", BSKY_FR), t(27), t(28)) is None
    # A window with no sample at all, and an empty series.
    assert follower_growth(series("mastodon", MASTO), t(20), t(21)) is None
    assert follower_growth([], t(27), t(28)) is None
    # Zero followers at the start: delta 150, no percentage.
    zero = follower_growth(series("activitypub", ACTOR), t(27), t(28))
    assert zero is not None
    assert (zero.delta, zero.percent) == (150, None)
    # Samples out of order give the same answer.
    again = follower_growth(list(reversed(series("mastodon", MASTO))), t(27), t(28))
    assert again == growth


def test_follower_growth_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput, match="mixes 2 accounts"):
        follower_growth(FOLLOWERS[:6], t(27), t(28))
    with pytest.raises(InvalidInput, match="before it starts"):
        follower_growth(series("mastodon", MASTO), t(28), t(27))
    with pytest.raises(InvalidInput, match="start"):
        follower_growth(series("mastodon", MASTO), datetime(2026, 3, 27), t(28))


def test_growth_by_channel() -> None:
    mine = {MASTO, BSKY, BSKY_FR, ACTOR}
    growth = growth_by_channel(FOLLOWERS, t(27), t(28), accounts=mine)
    # Mastodon 1000 -> 1510 (+51 %); Bluesky: only crew counts (equipage first sampled at 06:00,
    # inside the window): 800 -> 1000, +25 %; ActivityPub 0 -> 150, no percentage.
    assert sorted(growth) == ["activitypub", "bluesky", "mastodon"]
    assert (growth["mastodon"].delta, growth["mastodon"].percent) == (510, pytest.approx(51.0))
    assert (growth["bluesky"].start_followers, growth["bluesky"].end_followers) == (800, 1000)
    assert growth["bluesky"].percent == pytest.approx(25.0)
    assert (growth["activitypub"].delta, growth["activitypub"].percent) == (150, None)
    assert growth["mastodon"].account is None
    # Without the filter, the tracked agency is summed in: 51000 -> 52010, +1010, 1.980392 %.
    everyone = growth_by_channel(FOLLOWERS, t(27), t(28))
    assert everyone["mastodon"].delta == 1010
    assert everyone["mastodon"].percent == pytest.approx(1.980392, abs=1e-6)
    # From 28 March, equipage counts too: 1000 + 260 at both ends (no later sample).
    later = growth_by_channel(FOLLOWERS, t(28), t(29), accounts=mine)
    assert (later["bluesky"].start_followers, later["bluesky"].delta) == (1260, 0)
    assert growth_by_channel(FOLLOWERS, t(1), t(2)) == {}
    assert growth_by_channel([], t(27), t(28)) == {}


# --- mentions -----------------------------------------------------------------------------------

MARIE, JEAN, ASTRO, TROLL, LUCIE = (
    "@marie@piaille.fr",
    "@jean@mastodon.social",
    "@astro_fan@mastodon.social",
    "@troll@bad.example",
    "@lucie@framapiaf.org",
)
KEV = "@kev@mastodon.social"
PAUL, NEWS = "paul.bsky.social", "space.news.bsky.social"
CLAIRE, ANA = "claire.bsky.social", "ana.bsky.social"
NINA = "https://kolektiva.example/users/nina"
AT, PX, ES = ("allezthomas",), ("allezthomas", "proxima"), ("esa",)

_TEXT = {
    "fr": {
        1: "Bravo l'équipage, quel décollage magnifique !",
        0: "Le lancement est prévu à 9h.",
        -1: "Encore un retard, c'est décevant.",
    },
    "en": {1: "Great launch, well done crew!", 0: "Launch is scheduled at 9.", -1: "What a waste of money."},
}


def mention(
    n: int,
    channel: str,
    author: str,
    at: datetime,
    lang: str | None,
    followers: int | None,
    sentiment: float,
    tags: tuple[str, ...] = (),
    accounts: tuple[str, ...] = (),
) -> Mention:
    label = 1 if sentiment >= 0.05 else -1 if sentiment <= -0.05 else 0
    return Mention(
        channel=channel,
        uri=f"{channel}:{n}",
        author=author,
        at=at,
        text=_TEXT[lang or "en"][label],
        sentiment=sentiment,
        lang=lang,
        author_followers=followers,
        tags=tags,
        accounts=accounts,
    )


M = "mastodon"
B = "bluesky"
A = "activitypub"

MENTIONS = [
    # Launch day, 08:00 hour: 8 mentions, 7 authors, 5 positive 1 neutral 2 negative.
    mention(1, M, MARIE, t(27, 8, 5), "fr", 1200, 0.8, AT, (MASTO,)),
    mention(2, M, JEAN, t(27, 8, 10), "en", 300, 0.6, PX, (MASTO,)),
    mention(3, B, PAUL, t(27, 8, 20), "en", 800, 0.0, AT),
    mention(4, B, NEWS, t(27, 8, 30), "en", 20000, 0.05, PX, (BSKY,)),  # exactly positive
    mention(5, M, ASTRO, t(27, 8, 45), "fr", 5000, 0.4, AT),
    mention(6, M, TROLL, t(27, 8, 50), "en", 10, -0.7, AT, (MASTO,)),
    mention(7, M, MARIE, t(27, 8, 55), "fr", 1250, 0.3, AT),
    mention(8, A, NINA, t(27, 8, 59, 59), "fr", 60, -0.05, AT, (ACTOR,)),  # exactly negative
    # 09:00 hour (allezthomas): 6 mentions, 6 authors, 2 / 2 / 2.
    mention(9, M, JEAN, t(27, 9), "en", 300, 0.2, AT),
    mention(10, B, CLAIRE, t(27, 9, 5), "fr", 150, 0.0499, AT),  # just neutral
    mention(11, M, LUCIE, t(27, 9, 10), None, None, 0.0, AT),
    mention(12, B, PAUL, t(27, 9, 20), "en", 820, -0.3, AT, (BSKY,)),
    mention(13, M, MARIE, t(27, 9, 30), "fr", 1240, 0.9, PX, (MASTO, ESA)),  # she lost 10 followers
    mention(14, B, NEWS, t(27, 9, 45), "en", 20000, 0.1, ("proxima",)),
    mention(15, M, ASTRO, t(27, 9, 50), "fr", 5000, -0.2, AT, (ESA,)),
    # 10:00 hour (allezthomas): 4 mentions, 3 authors, 2 / 0 / 2.
    mention(16, M, TROLL, t(27, 10), "en", 10, -0.9, AT),
    mention(17, M, TROLL, t(27, 10, 1), "en", 10, -0.8, AT),
    mention(18, A, NINA, t(27, 10, 15), "fr", 60, 0.5, AT),
    mention(19, B, PAUL, t(27, 10, 30), "en", 850, 0.7, AT),
    mention(20, B, CLAIRE, t(27, 10, 40), "fr", 150, 0.6, ("proxima",)),
    # 11:00 hour: nothing. 12:00 is the end of the morning window (excluded), 07:59:59 before it.
    mention(21, M, MARIE, t(27, 12), "fr", 1300, 0.5, AT),
    mention(22, M, JEAN, t(27, 7, 59, 59), "en", 300, 0.5, AT),
    # The day before.
    mention(25, M, KEV, t(26, 10), "en", 400, 0.3, ES, (ESA,)),
    mention(26, B, ANA, t(26, 11), "fr", 90, -0.4, (), (BSKY,)),
    mention(27, M, KEV, t(26, 12), "en", 400, 0.0, ES),
    # The day after.
    mention(28, M, MARIE, t(28, 9), "fr", 1300, 0.6, AT, (MASTO,)),
    mention(29, B, PAUL, t(28, 10), "en", 850, 0.2, AT),
    mention(30, M, KEV, t(28, 11), "en", 400, -0.6, ES, (ESA,)),
    mention(31, A, NINA, t(28, 12), "fr", 60, 0.0, ("proxima",), (ACTOR,)),
    mention(32, M, JEAN, t(28, 13), "en", 300, 0.8, PX, (MASTO, ESA)),
    mention(33, B, NEWS, t(28, 14), "en", 20000, 0.0, ("proxima",), (BSKY,)),
    mention(34, M, ASTRO, t(28, 15), "fr", 5000, 0.5, AT),
    # Launch day afternoon and evening.
    mention(35, M, KEV, t(27, 13), "en", 400, 0.4, ES, (ESA,)),
    mention(36, B, ANA, t(27, 14), "fr", 90, 0.3, AT, (BSKY,)),
    mention(37, M, LUCIE, t(27, 15), None, None, -0.1, AT),
    mention(38, M, MARIE, t(27, 20), "fr", 1300, 0.2, AT, (MASTO,)),
    mention(39, B, PAUL, t(27, 23, 59, 59), "en", 850, 0.0, AT),
    # The next night, outside the two launch days.
    mention(40, M, TROLL, t(29), "en", 10, -0.9, AT, (MASTO,)),
    # Mention 1 collected a second time (with another score): counted once, the first one kept.
    mention(1, M, MARIE, t(27, 8, 5), "fr", 1200, -0.9, AT, (MASTO,)),
]


def test_fixture_is_the_one_described() -> None:
    assert len(MENTIONS) == 39
    assert len({(m.channel, m.uri) for m in MENTIONS}) == 38
    assert {m.lang for m in MENTIONS} == {"fr", "en", None}


def test_campaign_view_by_hour() -> None:
    view = campaign_view(MENTIONS, "#AllezThomas", t(27, 8), t(27, 12), "hour", top=5)
    assert view.tag == "allezthomas"
    assert (view.start, view.end, view.bucket) == (t(27, 8), t(27, 12), "hour")
    # Mentions 1-13 and 15-19 (14 has no #allezthomas, 21 is at the end, 22 before the start,
    # the duplicate of 1 counts once): 18.
    assert view.mentions == 18
    # marie, jean, paul, space.news, astro_fan, troll, nina, claire, lucie.
    assert view.authors == 9
    # 1200+300+800+20000+5000+10+1250+60 + 300+150+0+820+1240+5000 + 10+10+60+850 = 37060.
    assert view.reach == 37060
    # Largest audience per author (not the last seen): marie 1250 (then 1240), jean 300, paul 850,
    # news 20000, astro 5000, troll 10, nina 60, claire 150, lucie 0 = 27620.
    assert view.unique_reach == 27620
    assert (view.positive, view.neutral, view.negative) == (9, 3, 6)
    assert view.buckets == (
        Bucket(t(27, 8), mentions=8, authors=7, positive=5, neutral=1, negative=2),
        Bucket(t(27, 9), mentions=6, authors=6, positive=2, neutral=2, negative=2),
        Bucket(t(27, 10), mentions=4, authors=3, positive=2, neutral=0, negative=2),
        Bucket(t(27, 11), mentions=0, authors=0, positive=0, neutral=0, negative=0),
    )
    # en: 2,3,4,6,9,12,16,17,19; fr: 1,5,7,8,10,13,15,18; und: 11.
    assert view.languages == (("en", 9), ("fr", 8), ("und", 1))
    assert view.channels == (("mastodon", 11), ("bluesky", 5), ("activitypub", 2))
    # Three authors with 3 mentions, ranked by audience: marie 1250, paul 850, troll 10; then
    # those with 2: astro_fan 5000, jean 300 (nina 60 is sixth).
    assert view.top_accounts == (
        AccountActivity(M, MARIE, 3, 1250),
        AccountActivity(B, PAUL, 3, 850),
        AccountActivity(M, TROLL, 3, 10),
        AccountActivity(M, ASTRO, 2, 5000),
        AccountActivity(M, JEAN, 2, 300),
    )


def test_campaign_view_by_day() -> None:
    view = campaign_view(MENTIONS, "allezthomas", t(27), t(29), "day")
    # 27 March: the 18 of the morning + 21, 22, 36, 37, 38, 39 = 24; 28 March: 28, 29, 32, 34.
    assert [b.mentions for b in view.buckets] == [24, 4]
    assert view.mentions == 28
    # The morning's 9 authors plus ana; the next day's four were all seen the day before.
    assert view.authors == 10
    assert [b.authors for b in view.buckets] == [10, 4]
    # 27 March: 9/3/6 + positive 21, 22, 36, 38, neutral 39, negative 37 = 13/4/7; 28 March: 4/0/0.
    assert [(b.positive, b.neutral, b.negative) for b in view.buckets] == [(13, 4, 7), (4, 0, 0)]
    # 37060 + 1300 + 300 + 90 + 0 + 1300 + 850 + 1300 + 850 + 300 + 5000 = 48350.
    assert view.reach == 48350
    # As by hour, but marie's largest is now 1300, plus ana 90: 27620 + 50 + 90 = 27760.
    assert view.unique_reach == 27760


def test_campaign_view_window_edges() -> None:
    # Bucket alignment: a window starting at 08:30 has buckets from 08:00, the mentions before
    # 08:30 are not counted but the bucket is there.
    view = campaign_view(MENTIONS, "allezthomas", t(27, 8, 30), t(27, 9, 30))
    assert [b.start for b in view.buckets] == [t(27, 8), t(27, 9)]
    # 08:30 to 09:30: 4 (at 08:30 exactly), 5, 6, 7, 8 and 9, 10, 11, 12 (13 is at 09:30, excluded).
    assert [b.mentions for b in view.buckets] == [5, 4]
    # An unknown tag and an empty window give zeros.
    nothing = campaign_view(MENTIONS, "nope", t(27), t(28), "day")
    assert (nothing.mentions, nothing.reach, nothing.top_accounts) == (0, 0, ())
    assert nothing.buckets == (Bucket(t(27), 0, 0, 0, 0, 0),)
    assert campaign_view(MENTIONS, "allezthomas", t(27, 8), t(27, 8)).buckets == ()
    # An empty window off a boundary still shows the bucket it lies in, empty.
    assert campaign_view(MENTIONS, "allezthomas", t(27, 8, 30), t(27, 8, 30)).buckets == (
        Bucket(t(27, 8), 0, 0, 0, 0, 0),
    )
    assert campaign_view([], "allezthomas", t(27), t(28)).mentions == 0
    # Aware times in another zone are read in UTC: 10:00 in Paris (winter) is 09:00 UTC, and
    # 09:00 to 12:00 holds 6 + 4 mentions.
    paris = datetime(2026, 3, 27, 10, tzinfo=ZoneInfo("Europe/Paris"))
    assert campaign_view(MENTIONS, "allezthomas", paris, t(27, 12)).mentions == 10
    with pytest.raises(InvalidInput, match="bucket"):
        campaign_view(MENTIONS, "allezthomas", t(27), t(28), "week")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="hashtag"):
        campaign_view(MENTIONS, "#", t(27), t(28))
    with pytest.raises(InvalidInput, match="end"):
        campaign_view(MENTIONS, "allezthomas", t(28), t(27))


def test_reach_helpers() -> None:
    morning = MENTIONS[:8]
    # 1200 + 300 + 800 + 20000 + 5000 + 10 + 1250 + 60 = 28620.
    assert reach(morning) == 28620
    # marie counted once, with 1250: 28620 - 1200 = 27420.
    assert unique_reach(morning) == 27420
    assert reach([]) == unique_reach([]) == 0


def test_share_of_voice() -> None:
    counts = mention_counts(MENTIONS, [MASTO, ESA, BSKY], t(26), t(29))
    # @crew: 1, 2, 6, 13, 28, 32, 38 (40 is on 29 March); @esa: 13, 15, 25, 30, 32, 35;
    # crew.proxima.space: 4, 12, 26, 33, 36. Mentions 13 and 32 count for two accounts.
    assert counts == {MASTO: 7, ESA: 6, BSKY: 5}
    shares = share_of_voice_from(MENTIONS, [MASTO, ESA, BSKY], t(26), t(29))
    assert shares == {MASTO: pytest.approx(7 / 18), ESA: pytest.approx(6 / 18), BSKY: pytest.approx(5 / 18)}
    # Accounts are matched in lower case.
    assert mention_counts(MENTIONS, [ESA.upper()], t(26), t(29)) == {ESA.lower(): 6}
    assert share_of_voice({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    assert share_of_voice({}) == {}
    assert share_of_voice({"a": 1, "b": 3}) == {"a": 0.25, "b": 0.75}
    with pytest.raises(InvalidInput, match=r"counts\[a\]"):
        share_of_voice({"a": -1, "b": 3})


def test_sentiment_share() -> None:
    rows = sentiment_share(MENTIONS, t(25), t(29), "day")
    assert [r.start for r in rows] == [t(25), t(26), t(27), t(28)]
    # 25 March: nothing, shares 0.
    empty = rows[0]
    assert (empty.total, empty.positive_share, empty.neutral_share, empty.negative_share) == (0, 0, 0, 0)
    # 26 March: 25 positive, 26 negative, 27 neutral.
    assert (rows[1].positive, rows[1].neutral, rows[1].negative) == (1, 1, 1)
    assert rows[1].positive_share == pytest.approx(1 / 3)
    # 27 March, all 27 of them: the morning's allezthomas 9/3/6, plus positive 14, 20, 21, 22, 35,
    # 36, 38, neutral 39, negative 37 = 16/4/7.
    assert (rows[2].positive, rows[2].neutral, rows[2].negative, rows[2].total) == (16, 4, 7, 27)
    assert rows[2].negative_share == pytest.approx(7 / 27)
    # 28 March: positive 28, 29, 32, 34; neutral 31, 33; negative 30.
    assert (rows[3].positive, rows[3].neutral, rows[3].negative) == (4, 2, 1)
    assert (rows[3].positive_share, rows[3].neutral_share) == (pytest.approx(4 / 7), pytest.approx(2 / 7))
    tagged = sentiment_share(MENTIONS, t(27), t(29), "day", tag="AllezThomas")
    assert [(r.positive, r.neutral, r.negative) for r in tagged] == [(13, 4, 7), (4, 0, 0)]
    hourly = sentiment_share(MENTIONS, t(27, 8), t(27, 10), "hour", tag="allezthomas")
    assert [(r.positive, r.neutral, r.negative) for r in hourly] == [(5, 1, 2), (2, 2, 2)]
    # The store's rows give the same values.
    assert sentiment_share_from_counts((r.start, r.positive, r.neutral, r.negative) for r in rows) == rows
    assert sentiment_share([], t(27), t(27)) == []


def test_top_accounts() -> None:
    top = top_accounts(MENTIONS, n=5)
    # marie 6 (1, 7, 13, 21, 28, 38), paul 5 (3, 12, 19, 29, 39), then kev, jean and troll with 4,
    # by audience 400, 300, 10.
    assert top == [
        AccountActivity(M, MARIE, 6, 1300),
        AccountActivity(B, PAUL, 5, 850),
        AccountActivity(M, KEV, 4, 400),
        AccountActivity(M, JEAN, 4, 300),
        AccountActivity(M, TROLL, 4, 10),
    ]
    # Unknown followers count 0.
    lucie = [a for a in top_accounts(MENTIONS, n=100) if a.author == LUCIE]
    assert lucie == [AccountActivity(M, LUCIE, 2, 0)]
    assert top_accounts([]) == []


# --- influence ----------------------------------------------------------------------------------

POPULATION = [
    AccountStats(B, NEWS, followers=20000, posts=3, engagement=300, mentions_received=0, reposts_received=60),
    AccountStats(M, ASTRO, followers=5000, posts=3, engagement=30, mentions_received=2, reposts_received=3),
    AccountStats(M, MARIE, followers=1300, posts=6, engagement=60, mentions_received=0, reposts_received=6),
    AccountStats(M, TROLL, followers=10, posts=4, engagement=0),
    AccountStats(M, "@troll2@bad.example", followers=10, posts=4, engagement=0),
]


def test_influence_scores_worked_example() -> None:
    scores = influence_scores(POPULATION)
    news, astro, marie = scores[(B, NEWS)], scores[(M, ASTRO)], scores[(M, MARIE)]
    troll, troll2 = scores[(M, TROLL)], scores[(M, "@troll2@bad.example")]
    # space.news has the largest followers, engagement per post (100) and reposts per post (20):
    # 0.4 + 0.3 + 0.2 + 0.1 * 0 = 0.9.
    assert (news.followers, news.engagement, news.amplification, news.mentions) == (1.0, 1.0, 1.0, 0.0)
    assert news.composite == pytest.approx(0.9)
    # astro_fan: ln 5001 / ln 20001 = 8.5174 / 9.9035 = 0.8600; ln 11 / ln 101 = 2.3979 / 4.6151
    # = 0.5196; ln 2 / ln 21 = 0.6931 / 3.0445 = 0.2277; mentions the largest: 1.
    assert astro.followers == pytest.approx(0.8600, abs=1e-4)
    assert astro.engagement == pytest.approx(0.5196, abs=1e-4)
    assert astro.amplification == pytest.approx(0.2277, abs=1e-4)
    assert astro.mentions == 1.0
    # 0.344 + 0.15588 + 0.04554 + 0.1 = 0.6454.
    assert astro.composite == pytest.approx(0.6454, abs=1e-4)
    # marie: ln 1301 / ln 20001 = 7.1709 / 9.9035 = 0.7241; 10 per post and 1 repost per post as
    # astro_fan: 0.28964 + 0.15588 + 0.04554 = 0.4911.
    assert marie.composite == pytest.approx(0.4911, abs=1e-4)
    # troll: ln 11 / ln 20001 = 0.2421, times 0.4 = 0.0968; troll2 ties.
    assert troll.composite == pytest.approx(0.0968, abs=1e-4)
    # Percentiles (below + equal / 2) / 5: trolls (0 + 1) / 5 = 0.2, marie 2.5 / 5 = 0.5,
    # astro 3.5 / 5 = 0.7, news 4.5 / 5 = 0.9.
    ranked = (troll, troll2, marie, astro, news)
    assert [s.percentile for s in ranked] == pytest.approx([0.2, 0.2, 0.5, 0.7, 0.9])
    # 1 + 99 p: 20.8 -> 21, 50.5 -> 50 (half to even), 70.3 -> 70, 90.1 -> 90.
    assert [s.score for s in ranked] == [21, 21, 50, 70, 90]
    assert news.version == METRICS_VERSION
    assert sum(INFLUENCE_WEIGHTS.values()) == pytest.approx(1.0)


def test_influence_edge_cases() -> None:
    assert influence_scores([]) == {}
    # A lone account: p = 0.5, 1 + 49.5 = 50.5, half to even: 50.
    alone = influence_scores([POPULATION[0]])[(B, NEWS)]
    assert (alone.percentile, alone.score) == (0.5, 50)
    # Two accounts: 0.25 -> 25.75 -> 26, 0.75 -> 75.25 -> 75.
    pair = influence_scores(POPULATION[:2])
    assert (pair[(B, NEWS)].score, pair[(M, ASTRO)].score) == (75, 26)
    # Nobody has anything: every component is 0 and everyone ties at 50.
    nobody = influence_scores([AccountStats(M, "a", 0, 0, 0), AccountStats(M, "b", 0, 0, 0)])
    assert {s.score for s in nobody.values()} == {50}
    assert {s.composite for s in nobody.values()} == {0.0}
    with pytest.raises(InvalidInput, match="given twice"):
        influence_scores([POPULATION[0], POPULATION[0]])
    with pytest.raises(InvalidInput, match="followers"):
        influence_scores([AccountStats(M, "a", -1, 0, 0)])


# --- best time to post --------------------------------------------------------------------------


def test_best_times_follow_local_time_across_dst() -> None:
    best = best_times(POSTS, "Europe/Paris")
    assert sorted(best) == ["activitypub", "atom", "bluesky", "mastodon"]
    # Mastodon channel mean over its 5 rated posts: 0.116 / 5 = 0.0232. Friday (4) 09:00 Paris
    # holds p1 (08:15 UTC, winter) and p2 (07:20 UTC, summer): rates 0.073333 + 0.026667 = 0.1;
    # (0.1 + 3 * 0.0232) / 5 = 0.03392. Monday (0) 18:00: 0.005 + 0.008 = 0.013;
    # (0.013 + 0.0696) / 5 = 0.01652. x1 (Friday 11:00 Paris) is alone in its slot: left out.
    assert best["mastodon"] == [
        BestTime("mastodon", 4, 9, 2, pytest.approx(0.05), pytest.approx(0.03392)),  # type: ignore[arg-type]
        BestTime("mastodon", 0, 18, 2, pytest.approx(0.0065), pytest.approx(0.01652)),  # type: ignore[arg-type]
    ]
    # Bluesky: b1 Friday 09:16 and b2 Friday 09:21 Paris both rated (b3 has no followers):
    # mean 0.051389, score (0.102778 + 3 * 0.051389) / 5 = 0.051389.
    assert [(b.weekday, b.hour, b.posts) for b in best["bluesky"]] == [(4, 9, 2)]
    assert best["bluesky"][0].score == pytest.approx(0.051389, abs=1e-6)
    # Feeds have no rate, ActivityPub has a single rated post: no slot.
    assert best["atom"] == best["activitypub"] == []
    # In UTC the Friday posts fall in two different hours (08 and 07) and no slot has two posts.
    assert best_times(POSTS, "UTC")["mastodon"] == [
        BestTime("mastodon", 0, 16, 2, pytest.approx(0.0065), pytest.approx(0.01652)),  # type: ignore[arg-type]
    ]


def test_best_times_parameters() -> None:
    # min_posts 1 keeps single posts; with no prior weight a slot's score is its mean rate.
    raw = best_times(POSTS, "Europe/Paris", min_posts=1, top=10, prior_weight=0)
    assert [(b.weekday, b.hour, b.score) for b in raw["mastodon"]] == [
        (4, 9, pytest.approx(0.05)),
        (0, 18, pytest.approx(0.0065)),
        (4, 11, pytest.approx(0.003)),
    ]
    assert raw["activitypub"] == [BestTime("activitypub", 4, 9, 1, pytest.approx(0.08), pytest.approx(0.08))]
    assert best_times(POSTS, "Europe/Paris", top=1)["mastodon"][0].hour == 9
    assert best_times([], "Europe/Paris") == {}
    with pytest.raises(InvalidInput, match="Mars/Olympus"):
        best_times(POSTS, "Mars/Olympus")
    with pytest.raises(InvalidInput, match="min_posts"):
        best_times(POSTS, "UTC", min_posts=0)
    with pytest.raises(InvalidInput, match="prior weight"):
        best_times(POSTS, "UTC", prior_weight=math.nan)


def test_best_time_slots_feed_the_calendar() -> None:
    best = best_times(POSTS, "Europe/Paris")
    slots = [
        SlotSpec(channel=b.channel, at=time(b.hour), tz="Europe/Paris", weekday=b.weekday)
        for channel in sorted(best)
        for b in best[channel]
    ]
    assert [(s.channel, s.weekday, s.at) for s in slots] == [
        ("bluesky", 4, time(9)),
        ("mastodon", 4, time(9)),
        ("mastodon", 0, time(18)),
    ]
    # A Friday slot at 09:00 Paris is 08:00 UTC before the change and 07:00 UTC after it.
    assert slots[1].on(t(27).date()) == t(27, 8)
    assert slots[1].on(t(34).date()) == t(34, 7)


# --- properties ---------------------------------------------------------------------------------

_CHANNELS = st.sampled_from(["mastodon", "bluesky", "activitypub"])
_AUTHORS = st.sampled_from(["a", "b", "c", "d", "e"])
_TAGS = st.lists(st.sampled_from(["allezthomas", "proxima", "esa"]), max_size=3, unique=True).map(tuple)
_TIMES = st.integers(min_value=0, max_value=3 * 24 * 3600 - 1).map(lambda s: t(26) + timedelta(seconds=s))


@st.composite
def mentions_lists(draw: st.DrawFn) -> list[Mention]:
    n = draw(st.integers(min_value=0, max_value=30))
    return [
        Mention(
            channel=draw(_CHANNELS),
            uri=str(draw(st.integers(min_value=0, max_value=40))),
            author=draw(_AUTHORS),
            at=draw(_TIMES),
            text="",
            sentiment=draw(st.floats(min_value=-1, max_value=1)),
            lang=draw(st.sampled_from(["fr", "en", None])),
            author_followers=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
            tags=draw(_TAGS),
            accounts=tuple(draw(st.lists(st.sampled_from([MASTO, ESA, BSKY]), max_size=3, unique=True))),
        )
        for _ in range(n)
    ]


@settings(max_examples=60, deadline=None)
@given(mentions_lists(), st.sampled_from(["hour", "day"]), _TIMES, _TIMES)
def test_campaign_view_is_consistent(ms: list[Mention], bucket: str, a: datetime, b: datetime) -> None:
    start, end = min(a, b), max(a, b)
    view = campaign_view(ms, "allezthomas", start, end, bucket, top=3)  # type: ignore[arg-type]
    assert 0 <= view.unique_reach <= view.reach
    assert view.authors <= view.mentions
    assert sum(bk.mentions for bk in view.buckets) == view.mentions
    assert view.positive + view.neutral + view.negative == view.mentions
    assert sum(bk.positive for bk in view.buckets) == view.positive
    assert sum(c for _, c in view.languages) == sum(c for _, c in view.channels) == view.mentions
    assert all(bk.authors <= bk.mentions for bk in view.buckets)
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    starts = [bk.start for bk in view.buckets]
    assert all(later - earlier == step for earlier, later in itertools.pairwise(starts))
    if start < end:
        assert starts[0] <= start < starts[0] + step
        assert starts[-1] < end <= starts[-1] + step
    else:
        # An empty window: the bucket it lies in, unless it sits on a boundary.
        floor = start - (start - t(1)) % step
        assert starts == ([] if floor == start else [floor])
    assert len(view.top_accounts) <= 3
    counts = [x.mentions for x in view.top_accounts]
    assert counts == sorted(counts, reverse=True)


@settings(max_examples=60, deadline=None)
@given(mentions_lists())
def test_unique_reach_never_exceeds_reach(ms: list[Mention]) -> None:
    assert unique_reach(ms) <= reach(ms)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=10**6)))
def test_shares_sum_to_one(counts: dict[str, int]) -> None:
    shares = share_of_voice(counts)
    assert set(shares) == set(counts)
    if sum(counts.values()):
        assert sum(shares.values()) == pytest.approx(1.0)
    else:
        assert all(v == 0 for v in shares.values())


@settings(max_examples=50, deadline=None)
@given(mentions_lists())
def test_sentiment_shares_sum_to_one_or_zero(ms: list[Mention]) -> None:
    for row in sentiment_share(ms, t(26), t(29), "hour"):
        total = row.positive_share + row.neutral_share + row.negative_share
        assert total == (pytest.approx(1.0) if row.total else 0.0)


_STATS = st.builds(
    AccountStats,
    channel=_CHANNELS,
    account=st.text(min_size=1, max_size=4),
    followers=st.integers(min_value=0, max_value=10**7),
    posts=st.integers(min_value=0, max_value=500),
    engagement=st.integers(min_value=0, max_value=10**5),
    mentions_received=st.integers(min_value=0, max_value=1000),
    reposts_received=st.integers(min_value=0, max_value=10**4),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_STATS, max_size=12, unique_by=lambda s: (s.channel, s.account)))
def test_influence_scores_are_in_range(stats: list[AccountStats]) -> None:
    scores = influence_scores(stats)
    assert len(scores) == len(stats)
    for s in scores.values():
        assert 1 <= s.score <= 100
        assert 0 < s.percentile < 1
        assert 0 <= s.composite <= 1 + 1e-9
    # A higher composite never scores lower.
    ranked = sorted(scores.values(), key=lambda s: s.composite)
    assert [s.score for s in ranked] == sorted(s.score for s in ranked)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_STATS, max_size=8, unique_by=lambda s: (s.channel, s.account)),
    _STATS,
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=1, max_value=10**7),
)
def test_influence_is_monotone_in_followers(
    others: list[AccountStats], base: AccountStats, followers: int, more: int
) -> None:
    low = AccountStats(
        "x", "low", followers, base.posts, base.engagement, base.mentions_received, base.reposts_received
    )
    high = AccountStats(
        "x",
        "high",
        followers + more,
        base.posts,
        base.engagement,
        base.mentions_received,
        base.reposts_received,
    )
    scores = influence_scores([*others, low, high])
    assert scores[("x", "high")].score >= scores[("x", "low")].score
    assert scores[("x", "high")].composite > scores[("x", "low")].composite


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**7),
    st.lists(_TIMES, min_size=1, max_size=10),
    _TIMES,
    _TIMES,
)
def test_growth_of_a_constant_series_is_zero(
    value: int, ats: list[datetime], a: datetime, b: datetime
) -> None:
    start, end = min(a, b), max(a, b)
    growth = follower_growth([fs("mastodon", MASTO, at, value) for at in ats], start, end)
    if min(ats) > start:
        assert growth is None
        return
    assert growth is not None
    assert growth.delta == 0
    assert growth.percent == (0.0 if value else None)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.builds(
            post,
            _CHANNELS,
            st.sampled_from(["r1", "r2", "r3"]),
            _TIMES,
            st.integers(0, 1000),
            st.integers(0, 1000),
            st.integers(0, 1000),
            st.none() | st.integers(0, 1000),
            st.none() | st.integers(0, 10**5),
            post_id=st.none() | st.sampled_from(["p1", "p2"]),
            account=st.just(MASTO),
            at=_TIMES,
        ),
        max_size=15,
    )
)
def test_post_figures_add_up(samples: list[PostSample]) -> None:
    posts = channel_posts(samples)
    assert sum(p.engagement for p in posts) == sum(engagement(s) for s in latest(samples))
    for p in posts:
        assert p.rate is None or p.rate >= 0
    total = sum(post_engagement(samples, pid).engagement for pid in ("p1", "p2"))
    assert total == sum(p.engagement for p in posts if p.post_id is not None)
    for channel in ("mastodon", "bluesky", "activitypub"):
        ce = channel_engagement(samples, channel)
        assert ce.engagement == sum(p.engagement for p in posts if p.channel == channel)
