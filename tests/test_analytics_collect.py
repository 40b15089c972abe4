"""Collection and listening against the real local servers: mastodon-mock, the arroba PDS, our actor.

Each test builds a small bilingual corpus through the server's own API (public accounts follow,
favourite, boost, reply, quote and post with #AllezThomas / #Proxima, in French and English, some
pleased and some not), then checks every number the collector returns against what the corpus
did, counted by hand here; the language and sentiment of each mention; that a second collection
from the returned cursor only brings what is new; and that a bad credential or a server that is
down gives a ChannelError naming the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from starlette.applications import Starlette

from local_mastodon import local_mastodon
from local_pds import LocalPDS, local_pds
from loopback import bind as _bind
from loopback import client as _client
from loopback import serve as _serve
from proxima.analytics.classify import Classifier, Tracking, hashtags, strip_html
from proxima.analytics.collect import (
    ActivityPubCollector,
    BlueskyCollector,
    MastodonCollector,
    PublishedMessage,
)
from proxima.analytics.model import NEGATIVE, NEUTRAL, POSITIVE, Mention
from proxima.errors import ChannelError
from proxima.ground.channels.activitypub import ActivityPubChannel, ApReaction
from proxima.ground.channels.base import Outgoing
from proxima.ground.db import Base, make_engine, session_factory
from proxima.ground.httpsig import sign_request

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy.orm import Session, sessionmaker

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
TRACK = Tracking(tags=("AllezThomas", "proxima"))
CLASSIFIER = Classifier(("en", "fr"))

# What the public writes: (text, declared language or None, expected language, expected label).
FR_PLEASED = "Bravo Thomas, quelle mission magnifique ! Nous sommes tous fiers de toi #AllezThomas"
FR_ANGRY = "Quel échec lamentable, c'est une honte et un gâchis horrible #AllezThomas"
EN_PLEASED = "What a wonderful launch, the crew looks happy and the photos are great #Proxima"
EN_ANGRY = "Terrible news, the docking failed again. Awful and sad. #Proxima"
FR_NEUTRAL = "La fusée décolle demain à dix heures depuis le centre spatial #Proxima"


def _labels(mentions: list[Mention]) -> dict[str, tuple[str | None, bool, int]]:
    return {m.text: (m.lang, m.lang_detected, m.label) for m in mentions}


# -- the classifier ------------------------------------------------------------------------------


def test_language_sentiment_and_mention_fields() -> None:
    c = CLASSIFIER
    assert c.language(FR_PLEASED, None) == ("fr", True)
    assert c.language(EN_ANGRY, None) == ("en", True)
    assert c.language("ok", None) == (None, False)
    assert c.language("#AllezThomas #Proxima", None) == (None, False)
    assert c.language("ok", "fr-FR") == ("fr", False)
    assert c.language(EN_PLEASED, "de") == ("en", True)  # a language the mission does not use: detected
    assert c.sentiment(FR_PLEASED, "fr") > 0.05
    assert c.sentiment(FR_ANGRY, "fr") < -0.05
    assert abs(c.sentiment(FR_NEUTRAL, "fr")) < 0.05
    assert c.sentiment(EN_PLEASED, "en") > 0.05
    assert c.sentiment(EN_ANGRY, None) < -0.05
    assert c.sentiment("", "en") == 0.0

    assert strip_html("<p>Quel <b>échec</b>&nbsp;!<br>L&#39;ISS</p>") == "Quel échec !\nL'ISS"
    assert hashtags("#Proxima et #AllezThomas, encore #proxima ; pas#ceci ni #123") == (
        "proxima",
        "allezthomas",
    )

    m = c.mention(
        channel="mastodon", uri="https://x/1", author="@Fan@Example.Social", at=T0,
        text='<p><a href="#">@proxima</a> Bravo pour la mission, magnifique ! #AllezThomas <b>ISS</b></p>',
        tracking=Tracking(accounts=("@proxima@mock.local",), tags=("allezthomas",), keywords=("ISS", "lune")),
        is_html=True, declared_lang="fr-CA", tags=["AllezThomas"], mentioned=["proxima"], author_followers=12,
    )  # fmt: skip
    assert m.text == "@proxima Bravo pour la mission, magnifique ! #AllezThomas ISS"
    assert (m.lang, m.lang_detected, m.label) == ("fr", False, POSITIVE)
    assert m.author == "@fan@example.social"
    assert m.tags == ("allezthomas",)
    assert m.accounts == ("@proxima@mock.local",)
    assert m.keywords == ("iss",)
    assert m.author_followers == 12


# -- Mastodon --------------------------------------------------------------------------------------

FANS = ("alice", "bruno", "chloe", "dave")


@contextlib.contextmanager
def _mastodon() -> Iterator[tuple[str, dict[str, str]]]:
    with local_mastodon(extra_users=FANS) as server:
        yield server.base_url, server.tokens


class _Masto:
    """The corpus's hands on the mock: each account acts with its own token."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base, self.tokens = base, tokens

    def post(self, who: str, path: str, **data: Any) -> Any:
        response = httpx.post(
            self.base + path, data=data, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def delete(self, who: str, path: str) -> None:
        httpx.delete(
            self.base + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30
        ).raise_for_status()

    def status(self, who: str, text: str, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.post(who, "/api/v1/statuses", status=text, **kw)
        return result


def test_mastodon_followers_posts_and_listening() -> None:
    with _mastodon() as (base, tokens):
        m = _Masto(base, tokens)
        me = httpx.get(
            f"{base}/api/v1/accounts/verify_credentials",
            headers={"Authorization": f"Bearer {tokens['proxima']}"}, timeout=30,
        ).json()  # fmt: skip
        collector = MastodonCollector(
            "mastodon", base, tokens["proxima"], CLASSIFIER, tracked_accounts=("houston", "nobody")
        )
        launch = m.status("proxima", "Décollage réussi ! #AllezThomas", language="fr")
        orbit = m.status("proxima", "First photos from orbit #Proxima", language="en")
        messages = [
            PublishedMessage("mastodon", launch["id"], "post-1", T0, ("allezthomas",), "fr"),
            PublishedMessage("mastodon", orbit["id"], "post-2", T0, ("proxima",), "en"),
        ]

        async def scenario() -> None:
            # The follower curve: 1, then 3, then 3 again (one more, one less), houston followed by 2.
            m.post("alice", f"/api/v1/accounts/{me['id']}/follow")
            first = await collector.followers(T0)
            for fan in ("bruno", "chloe"):
                m.post(fan, f"/api/v1/accounts/{me['id']}/follow")
            houston = httpx.get(
                f"{base}/api/v1/accounts/lookup", params={"acct": "houston"}, timeout=30
            ).json()
            for fan in ("alice", "dave"):
                m.post(fan, f"/api/v1/accounts/{houston['id']}/follow")
            second = await collector.followers(T0 + timedelta(hours=1))
            m.post("dave", f"/api/v1/accounts/{me['id']}/follow")
            m.post("bruno", f"/api/v1/accounts/{me['id']}/unfollow")
            third = await collector.followers(T0 + timedelta(hours=2))
            ours = "@proxima@mock.local"
            assert [(s.account, s.at, s.followers) for s in first] == [
                (ours, T0, 1),
                ("@houston@mock.local", T0, 0),
            ]
            assert [(s.account, s.followers) for s in second] == [(ours, 3), ("@houston@mock.local", 2)]
            assert [(s.account, s.followers, s.posts) for s in third] == [
                (ours, 3, 2),
                ("@houston@mock.local", 2, 0),
            ]

            # Reactions: launch gets 3 favourites, 2 boosts, 2 replies; orbit 1, 0, 1.
            for fan in ("alice", "bruno", "chloe"):
                m.post(fan, f"/api/v1/statuses/{launch['id']}/favourite")
            m.post("dave", f"/api/v1/statuses/{orbit['id']}/favourite")
            for fan in ("bruno", "dave"):
                m.post(fan, f"/api/v1/statuses/{launch['id']}/reblog")
            m.status("alice", FR_PLEASED, in_reply_to_id=launch["id"], language="fr")
            m.status("chloe", FR_ANGRY, in_reply_to_id=launch["id"])  # no language: detected
            m.status("bruno", EN_PLEASED, in_reply_to_id=orbit["id"], language="en")
            m.status("dave", EN_ANGRY)  # no language: detected
            m.status("houston", FR_NEUTRAL, language="fr")
            m.status("dave", "@proxima thank you for the lovely pictures, they made my day!", language="en")
            m.status("chloe", "Rien à voir, je parle de cuisine aujourd'hui")  # neither tag nor mention
            m.status("proxima", "Our own words do not count #Proxima", language="en")

            now = T0 + timedelta(hours=3)
            samples = await collector.posts(messages, now)
            counts = {s.post_id: (s.likes, s.reposts, s.replies, s.quotes) for s in samples}
            assert counts == {"post-1": (3, 2, 2, None), "post-2": (1, 0, 1, None)}
            assert all(s.at == now and s.followers == 3 and s.account == ours for s in samples)
            assert collector.skipped == ()

            mentions, cursor = await collector.mentions(TRACK, None, now)
            assert _labels(mentions) == {
                FR_PLEASED: ("fr", False, POSITIVE),
                FR_ANGRY: ("fr", True, NEGATIVE),
                EN_PLEASED: ("en", False, POSITIVE),
                EN_ANGRY: ("en", True, NEGATIVE),
                FR_NEUTRAL: ("fr", False, NEUTRAL),
                "@proxima thank you for the lovely pictures, they made my day!": ("en", False, POSITIVE),
            }
            by_text = {x.text: x for x in mentions}
            assert by_text[FR_PLEASED].kind == "reply"
            assert by_text[FR_PLEASED].in_reply_to == launch["id"]
            assert by_text[FR_PLEASED].author == "@alice@mock.local"
            assert by_text[FR_PLEASED].tags == ("allezthomas",)
            assert by_text[FR_PLEASED].author_followers == 0
            assert by_text[FR_NEUTRAL].author_followers == 2
            assert by_text[EN_ANGRY].kind == "post"
            thanks = by_text["@proxima thank you for the lovely pictures, they made my day!"]
            assert thanks.accounts == (ours,)
            assert thanks.tags == ()
            assert cursor is not None

            # A second collection from the cursor brings only what is new.
            again, same = await collector.mentions(TRACK, cursor, now)
            assert (again, same) == ([], cursor)
            m.status(
                "bruno", "Encore un lancement magnifique, bravo à toute l'équipe ! #Proxima", language="fr"
            )
            m.status("alice", "@proxima merci pour cette superbe vidéo", language="fr")
            new, newer = await collector.mentions(TRACK, cursor, now)
            assert sorted(x.author for x in new) == ["@alice@mock.local", "@bruno@mock.local"]
            assert all(x.lang == "fr" and x.label == POSITIVE for x in new)
            assert newer != cursor

            # A deleted status is skipped and reported, the rest is still sampled.
            m.delete("proxima", f"/api/v1/statuses/{orbit['id']}")
            samples = await collector.posts(messages, now)
            assert [s.post_id for s in samples] == ["post-1"]
            assert collector.skipped == (orbit["id"],)

            bad = MastodonCollector("mastodon-bad", base, "not-a-token", CLASSIFIER)
            with pytest.raises(ChannelError) as refused:
                await bad.followers(now)
            assert refused.value.channel == "mastodon-bad"
            assert refused.value.reason == 401
            assert not refused.value.transient
            assert str(refused.value).startswith("mastodon-bad: ")
            await bad.close()
            await collector.close()

        asyncio.run(scenario())

    down = MastodonCollector("mastodon", base, tokens["proxima"], CLASSIFIER, timeout=5)

    async def unreachable() -> None:
        with pytest.raises(ChannelError) as failed:
            await down.mentions(TRACK, None, T0)
        assert failed.value.channel == "mastodon"
        assert failed.value.transient
        await down.close()

    asyncio.run(unreachable())


# -- Bluesky ---------------------------------------------------------------------------------------


class _Sky:
    """The corpus's hands on the PDS: each account logs in and writes its own records."""

    def __init__(self, pds: LocalPDS) -> None:
        self.pds = pds
        self.tokens: dict[str, str] = {}
        self.dids: dict[str, str] = {}

    def login(self, handle: str, password: str) -> None:
        response = httpx.post(
            f"{self.pds.url}/xrpc/com.atproto.server.createSession",
            json={"identifier": handle, "password": password}, timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        session = response.json()
        self.tokens[handle], self.dids[handle] = session["accessJwt"], session["did"]

    def write(self, handle: str, collection: str, record: dict[str, Any]) -> dict[str, str]:
        response = httpx.post(
            f"{self.pds.url}/xrpc/com.atproto.repo.createRecord",
            json={"repo": self.dids[handle], "collection": collection,
                  "record": {"$type": collection, **record}},
            headers={"Authorization": f"Bearer {self.tokens[handle]}"}, timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        result: dict[str, str] = response.json()
        return result

    def post(
        self, handle: str, text: str, at: datetime, langs: tuple[str, ...] = (), **extra: Any
    ) -> dict[str, str]:
        facets = []
        for word in text.split():
            start = len(text[: text.index(word)].encode())
            index = {"byteStart": start, "byteEnd": start + len(word.encode())}
            if word.startswith("#"):
                facets.append(
                    {"index": index, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": word[1:]}]}
                )
            elif word.startswith("@") and word[1:] in self.dids:
                mention = {"$type": "app.bsky.richtext.facet#mention", "did": self.dids[word[1:]]}
                facets.append({"index": index, "features": [mention]})
        record: dict[str, Any] = {"text": text, "createdAt": at.isoformat().replace("+00:00", "Z"), **extra}
        if langs:
            record["langs"] = list(langs)
        if facets:
            record["facets"] = facets
        return self.write(handle, "app.bsky.feed.post", record)

    def react(self, handle: str, collection: str, target: dict[str, str], at: datetime) -> None:
        self.write(handle, collection, {"subject": target, "createdAt": at.isoformat()})


def test_bluesky_followers_posts_and_listening() -> None:
    with local_pds() as pds:
        sky = _Sky(pds)
        sky.login(pds.handle, pds.password)
        fans = [pds.create_account(f"{name}.fans.test") for name in FANS]
        rival = pds.create_account("rival.space.test")
        for account in (*fans, rival):
            sky.login(account.handle, account.password)
        alice, bruno, chloe, dave = (a.handle for a in fans)
        collector = BlueskyCollector(
            "bluesky", pds.url, pds.handle, pds.password, CLASSIFIER,
            tracked_accounts=(rival.handle, "ghost.test"),
        )  # fmt: skip
        launch = sky.post(pds.handle, "Décollage réussi ! #AllezThomas", T0, ("fr",))
        orbit = sky.post(pds.handle, "First photos from orbit #Proxima", T0, ("en",))
        messages = [
            PublishedMessage("bluesky", launch["uri"], "post-1", T0, ("allezthomas",), "fr"),
            PublishedMessage("bluesky", orbit["uri"], "post-2", T0, ("proxima",), "en"),
            PublishedMessage("bluesky", launch["uri"].rsplit("/", 1)[0] + "/3zzzzzzzzzzzz", "post-3", T0),
        ]

        def follow(who: str, whom: str) -> None:
            sky.write(who, "app.bsky.graph.follow", {"subject": sky.dids[whom], "createdAt": T0.isoformat()})

        async def scenario() -> None:
            follow(alice, pds.handle)
            first = await collector.followers(T0)
            follow(bruno, pds.handle)
            follow(chloe, pds.handle)
            follow(dave, rival.handle)
            second = await collector.followers(T0 + timedelta(hours=1))
            assert [(s.account, s.followers) for s in first] == [(pds.handle, 1), (rival.handle, 0)]
            assert [(s.account, s.followers, s.posts) for s in second] == [
                (pds.handle, 3, 2),
                (rival.handle, 1, 0),
            ]

            # launch: 2 likes, 1 repost, 2 replies, 1 quote; orbit: 1 like, 2 reposts, 1 reply, 0 quotes.
            for who in (alice, bruno):
                sky.react(who, "app.bsky.feed.like", launch, T0)
            sky.react(chloe, "app.bsky.feed.like", orbit, T0)
            sky.react(dave, "app.bsky.feed.repost", launch, T0)
            for who in (alice, chloe):
                sky.react(who, "app.bsky.feed.repost", orbit, T0)
            at = T0 + timedelta(minutes=10)
            reply_to_launch = {"root": launch, "parent": launch}
            sky.post(alice, FR_PLEASED, at, ("fr",), reply=reply_to_launch)
            sky.post(chloe, FR_ANGRY, at + timedelta(minutes=1), reply=reply_to_launch)
            sky.post(
                bruno, EN_PLEASED, at + timedelta(minutes=2), ("en",), reply={"root": orbit, "parent": orbit}
            )
            sky.post(dave, EN_ANGRY, at + timedelta(minutes=3), ("en",),
                     embed={"$type": "app.bsky.embed.record", "record": launch})  # fmt: skip
            sky.post(rival.handle, FR_NEUTRAL, at + timedelta(minutes=4), ("fr",))
            sky.post(
                dave,
                f"Thank you @{pds.handle} for the lovely pictures, they made my day!",
                at + timedelta(minutes=5),
            )
            sky.post(
                chloe, "Rien à voir, je parle de cuisine aujourd'hui", at + timedelta(minutes=6), ("fr",)
            )
            sky.post(pds.handle, "Our own words do not count #Proxima", at + timedelta(minutes=7), ("en",))

            now = T0 + timedelta(hours=3)
            samples = await collector.posts(messages, now)
            counts = {s.post_id: (s.likes, s.reposts, s.replies, s.quotes) for s in samples}
            assert counts == {"post-1": (2, 1, 2, 1), "post-2": (1, 2, 1, 0)}
            assert all(s.followers == 3 and s.account == pds.handle and s.at == now for s in samples)
            assert collector.skipped == (messages[2].remote_id,)

            mentions, cursor = await collector.mentions(TRACK, None, now)
            thanks = f"Thank you @{pds.handle} for the lovely pictures, they made my day!"
            assert _labels(mentions) == {
                FR_PLEASED: ("fr", False, POSITIVE),
                FR_ANGRY: ("fr", True, NEGATIVE),
                EN_PLEASED: ("en", False, POSITIVE),
                EN_ANGRY: ("en", False, NEGATIVE),
                FR_NEUTRAL: ("fr", False, NEUTRAL),
                thanks: ("en", True, POSITIVE),
            }
            by_text = {x.text: x for x in mentions}
            assert (by_text[FR_PLEASED].kind, by_text[FR_PLEASED].in_reply_to) == ("reply", launch["uri"])
            assert (by_text[EN_ANGRY].kind, by_text[EN_ANGRY].in_reply_to) == ("quote", launch["uri"])
            assert by_text[FR_NEUTRAL].author == rival.handle
            assert by_text[FR_NEUTRAL].author_followers == 1
            assert by_text[FR_PLEASED].tags == ("allezthomas",)
            assert by_text[thanks].accounts == (pds.handle,)
            assert [x.at for x in mentions] == sorted(x.at for x in mentions)

            again, same = await collector.mentions(TRACK, cursor, now)
            assert (again, same) == ([], cursor)
            late = at + timedelta(minutes=5)  # the same time as the newest one already seen
            sky.post(
                bruno, "Encore un lancement magnifique, bravo à toute l'équipe ! #Proxima", late, ("fr",)
            )
            sky.post(
                alice, "Superbe vidéo de la station, merci ! #AllezThomas", at + timedelta(hours=1), ("fr",)
            )
            new, newer = await collector.mentions(TRACK, cursor, now)
            assert sorted(x.author for x in new) == [alice, bruno]
            assert all(x.label == POSITIVE for x in new)
            assert json.loads(newer or "")["since"] == "2030-03-01T10:10:00Z"

            bad = BlueskyCollector("bluesky-bad", pds.url, pds.handle, "wrong password", CLASSIFIER)
            with pytest.raises(ChannelError) as refused:
                await bad.followers(now)
            assert (refused.value.channel, refused.value.reason, refused.value.transient) == (
                "bluesky-bad",
                401,
                False,
            )
            await bad.close()
            pds.stop()
            with pytest.raises(ChannelError) as down:
                await collector.posts(messages, now)
            assert down.value.channel == "bluesky"
            assert down.value.transient
            await collector.close()

        asyncio.run(scenario())


# -- ActivityPub -----------------------------------------------------------------------------------


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )



def _sessions(tmp_path: Path, name: str) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    Base.metadata.create_all(engine)
    return session_factory(engine)




class _Fan:
    """A remote fediverse actor (our own actor code, on its own port) that signs what it sends."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sock, base = _bind()
        self.actor = ActivityPubChannel(
            base, name, name, "", _pem(self.key), _sessions(tmp_path, f"{name}.db"),
            http_client=_client, allow_private_network=True,
        )  # fmt: skip
        self.id = self.actor.actor_id
        self.n = 0

    async def send(self, inbox: str, kind: str, obj: Any, *, again: int | None = None) -> int:
        """Sign and post an activity; ``again`` sends activity number ``again`` once more."""
        if again is None:
            self.n += 1
        n = again or self.n
        activity = {"id": f"{self.id}/activities/{n}", "type": kind, "actor": self.id, "object": obj}
        raw = json.dumps(activity).encode()
        headers = {"Content-Type": "application/activity+json"}
        headers.update(
            sign_request("POST", inbox, headers, raw, self.actor.key_id, self.key, datetime.now(UTC))
        )
        async with _client() as client:
            response = await client.post(inbox, content=raw, headers=headers)
        assert response.status_code == 202, response.text
        return n

    def note(self, n: int, content: str, **kw: Any) -> dict[str, Any]:
        return {
            "id": f"{self.id}/notes/{n}",
            "type": "Note",
            "attributedTo": self.id,
            "content": content,
            **kw,
        }


def test_activitypub_followers_reactions_and_listening(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path, "ground.db")
    sock, base = _bind()
    channel = ActivityPubChannel(
        base, "mission", "Proxima", "", _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        sessions, http_client=_client, allow_private_network=True,
    )  # fmt: skip
    fans = [_Fan(tmp_path, name) for name in ("anna", "boris")]
    anna, boris = fans
    collector = ActivityPubCollector(channel, CLASSIFIER)
    questions: list[Any] = []
    channel.on_mention = questions.append
    inbox = channel.inbox_url

    def hashtag(name: str) -> dict[str, str]:
        return {"type": "Hashtag", "name": f"#{name}", "href": f"https://elsewhere.example/tags/{name}"}

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_serve(Starlette(routes=channel.routes()), sock))
            for fan in fans:
                await stack.enter_async_context(_serve(Starlette(routes=fan.actor.routes()), fan.sock))
            created = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
            launch = await channel.publish(
                Outgoing("post-1", "crew", {"fr": "Décollage réussi !"}, created, hashtags=("AllezThomas",))
            )
            orbit = await channel.publish(Outgoing("post-2", "crew", {"en": "Photos from orbit"}, created))
            messages = [
                PublishedMessage("activitypub", launch.remote_id, "post-1", created, ("allezthomas",), "fr"),
                PublishedMessage("activitypub", orbit.remote_id, "post-2", created, (), "en"),
                PublishedMessage("activitypub", f"{base}/ap/objects/unknown", "post-3", created),
            ]

            await anna.send(inbox, "Follow", channel.actor_id)
            first = await collector.followers(T0)
            await boris.send(inbox, "Follow", channel.actor_id)
            second = await collector.followers(T0 + timedelta(hours=1))
            assert [(s.account, s.at, s.followers) for s in first + second] == [
                (channel.actor_id, T0, 1),
                (channel.actor_id, T0 + timedelta(hours=1), 2),
            ]

            # launch: 2 likes (3 sent, one undone, one sent twice), 1 boost, 2 replies; orbit: 1, 1, 0.
            await anna.send(inbox, "Like", launch.remote_id)
            liked = await boris.send(inbox, "Like", launch.remote_id)
            await boris.send(inbox, "Like", launch.remote_id, again=liked)
            undone = await anna.send(inbox, "Like", orbit.remote_id)
            await anna.send(inbox, "Undo", f"{anna.id}/activities/{undone}")
            await boris.send(inbox, "Like", orbit.remote_id)
            await anna.send(inbox, "Announce", launch.remote_id)
            await boris.send(inbox, "Announce", orbit.remote_id)
            await anna.send(inbox, "Like", "https://elsewhere.example/notes/9")  # not ours: ignored
            mention = {"type": "Mention", "href": channel.actor_id}
            await anna.send(
                inbox,
                "Create",
                anna.note(
                    1,
                    f"<p>{FR_PLEASED}</p>",
                    inReplyTo=launch.remote_id,
                    contentMap={"fr": f"<p>{FR_PLEASED}</p>"},
                    tag=[hashtag("AllezThomas")],
                ),
            )
            angry = boris.note(2, f"<p>{FR_ANGRY}</p>", inReplyTo=launch.remote_id)
            await boris.send(inbox, "Create", angry)
            await boris.send(
                inbox,
                "Create",
                boris.note(
                    3, f"<p>{EN_ANGRY}</p>", tag=[hashtag("Proxima")], contentMap={"en": f"<p>{EN_ANGRY}</p>"}
                ),
            )
            await anna.send(
                inbox,
                "Create",
                anna.note(4, "<p>@mission thank you for the lovely pictures!</p>", tag=[mention]),
            )
            await anna.send(
                inbox, "Create", anna.note(5, "<p>Un autre sujet #cuisine</p>", tag=[hashtag("cuisine")])
            )
            await boris.send(inbox, "Create", boris.note(6, "<p>A note for nobody in particular</p>"))

            now = T0 + timedelta(hours=3)
            samples = await collector.posts(messages, now)
            counts = {s.post_id: (s.likes, s.reposts, s.replies, s.quotes) for s in samples}
            assert counts == {"post-1": (2, 1, 2, None), "post-2": (1, 1, 0, None)}
            assert all(s.followers == 2 and s.account == channel.actor_id for s in samples)
            assert collector.skipped == (messages[2].remote_id,)

            mentions, cursor = await collector.mentions(TRACK, None, now)
            thanks = "@mission thank you for the lovely pictures!"
            assert _labels(mentions) == {
                FR_PLEASED: ("fr", False, POSITIVE),
                FR_ANGRY: ("fr", True, NEGATIVE),
                EN_ANGRY: ("en", False, NEGATIVE),
                thanks: ("en", True, POSITIVE),
            }
            by_text = {x.text: x for x in mentions}
            assert (by_text[FR_ANGRY].kind, by_text[FR_ANGRY].in_reply_to) == ("reply", launch.remote_id)
            assert by_text[thanks].accounts == (channel.actor_id.casefold(),)
            assert by_text[EN_ANGRY].tags == ("proxima",)
            assert by_text[FR_PLEASED].author == anna.id.casefold()
            # The public-questions hook still sees replies and mentions, as before.
            assert len(questions) == 3

            again, same = await collector.mentions(TRACK, cursor, now)
            assert (again, same) == ([], cursor)
            await boris.send(
                inbox,
                "Create",
                boris.note(
                    7,
                    "<p>Magnifique, bravo à toute l'équipe ! #AllezThomas</p>",
                    tag=[hashtag("AllezThomas")],
                ),
            )
            # The like delivered twice (same activity id) was stored once; deleting a reply removes it.
            await boris.send(inbox, "Delete", boris.note(2, "")["id"])
            new, _ = await collector.mentions(TRACK, cursor, now)
            assert [(x.author, x.lang, x.label) for x in new] == [(boris.id.casefold(), "fr", POSITIVE)]
            samples = await collector.posts(messages[:1], now)
            assert (samples[0].likes, samples[0].replies) == (2, 1)
            with sessions() as session:
                assert session.scalar(
                    select(func.count()).select_from(ApReaction).where(
                        ApReaction.activity_id == f"{boris.id}/activities/{liked}"
                    )
                ) == 1  # fmt: skip
        await channel.close()
        for fan in fans:
            await fan.actor.close()

    asyncio.run(scenario())
