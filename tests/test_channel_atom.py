"""The Atom channel: entries stored per language, the feed parsed back with feedparser, served over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount

from loopback import bind, serve_in_thread
from proxima.errors import ChannelError, ConfigError
from proxima.ground.channels.atom import AtomChannel, AtomEntry, AtomMedia, render_html
from proxima.ground.channels.base import MediaFile, Outgoing, Published
from proxima.ground.db import make_engine, session_factory

BASE = "https://mission.example/news"
T0 = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
PHOTO = MediaFile(
    "cupola.jpg",
    "image/jpeg",
    b"\xff\xd8" + bytes(300) + b"\xff\xd9",
    {"en": "The cupola", "fr": "La coupole"},
)
CLIP = MediaFile("launch.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(100))
TAG = "tag:mission.example,2026:iss-news"


class Clock:
    """A clock that moves one minute each time it is read."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ground.db'}")
    AtomEntry.metadata.create_all(engine, tables=[AtomEntry.__table__, AtomMedia.__table__])  # type: ignore[list-item]
    yield session_factory(engine)
    engine.dispose()


def channel(sessions: sessionmaker[Session], clock: Clock, **options: Any) -> AtomChannel:
    return AtomChannel(
        sessions,
        base_url=BASE,
        feed_id="iss-news",
        title="News from the ISS",
        subtitle="Posts of the crew",
        author="Mission control",
        clock=clock,
        **options,
    )


def first_post(**changes: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "key": "post-1",
        "author": "thomas",
        "text": {
            "fr": "Bonjour depuis l'ISS !\n\nIci <script>alert(1)</script> & co.",
            "en": "Hello from the ISS!\n\nHere <script>alert(1)</script> & co.",
        },
        "created": T0 - timedelta(hours=3),
        "hashtags": ("ISS", "Space"),
        "media": (PHOTO, CLIP),
        "verify_url": "https://verify.example/p/ABCD",
    }
    return Outgoing(**(fields | changes))


def second_post() -> Outgoing:
    return Outgoing(
        key="post-2",
        author="oleg",
        text={"en": "A very long first line about the aurora over the southern ocean, seen from the cupola "
                    "on the night pass of orbit 12345\nand more"},
        created=T0 - timedelta(hours=1),
        title=None,
    )


def publish(ch: AtomChannel, *posts: Outgoing) -> list[Published]:
    async def run() -> list[Published]:
        return [await ch.publish(p) for p in posts]

    return asyncio.run(run())


def entry_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AtomEntry)) or 0


def test_bilingual_posts_become_entries_with_ids_titles_languages_and_order(
    sessions: sessionmaker[Session],
) -> None:
    ch = channel(sessions, Clock())
    one, two = publish(ch, first_post(), second_post())
    assert one.remote_id == f"{TAG}/post-1/fr"
    assert one.ids == (f"{TAG}/post-1/fr", f"{TAG}/post-1/en")
    assert two.remote_id == f"{TAG}/post-2/en"

    feed = feedparser.parse(ch.feed_xml())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.id == TAG
    assert feed.feed.title == "News from the ISS"
    assert [e.id for e in feed.entries] == [f"{TAG}/post-2/en", f"{TAG}/post-1/en", f"{TAG}/post-1/fr"]
    post2, post1_en, post1_fr = feed.entries
    assert post1_fr.title == "Bonjour depuis l'ISS !"
    assert post1_en.title == "Hello from the ISS!"
    assert post2.title.endswith("…")
    assert len(post2.title) <= 100
    assert post2.title.startswith("A very long first line about the aurora")
    assert post1_fr.title_detail.language == "fr"
    assert post1_en.content[0].language == "en"
    assert post1_fr.author == "thomas"
    assert post1_fr.published_parsed[:5] == (2026, 11, 3, 11, 0)
    assert post2.updated_parsed[:5] > post1_fr.updated_parsed[:5]
    assert [t.term for t in post1_fr.tags] == ["ISS", "Space"]
    assert "tags" not in post2

    related = [link.href for link in post1_fr.links if link.rel == "related"]
    assert related == ["https://verify.example/p/ABCD"]
    alternate = [link.href for link in post1_fr.links if link.rel == "alternate"]
    assert alternate == [one.url]
    enclosures = {e.type: e for e in post1_fr.enclosures}
    photo_sha = hashlib.sha256(PHOTO.data).hexdigest()
    assert enclosures["image/jpeg"].href == f"{BASE}/media/{photo_sha}.jpg"
    assert enclosures["image/jpeg"].length == str(len(PHOTO.data))
    assert enclosures["video/mp4"].length == str(len(CLIP.data))
    photo_link = next(link for link in post1_fr.links if link.get("type") == "image/jpeg")
    assert photo_link.title == "La coupole"


def test_text_is_escaped_and_inert(sessions: sessionmaker[Session]) -> None:
    ch = channel(sessions, Clock())
    publish(ch, first_post())
    xml = ch.feed_xml()
    assert b"<script" not in xml
    entry = feedparser.parse(xml).entries[-1]
    html = entry.content[0].value
    assert entry.content[0].type == "text/html"
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co." in html
    assert "<script" not in html
    assert "<p>Bonjour depuis l'ISS !</p>" in html
    assert 'alt="La coupole"' in html
    assert render_html('say "<b>"', verify_url='https://v.example/?a=1&b="x"') == (
        '<p>say "&lt;b&gt;"</p>\n'
        '<p>✔ <a href="https://v.example/?a=1&amp;b=&quot;x&quot;">https://v.example/?a=1&amp;b=&quot;x&quot;</a></p>'
    )


def test_a_retry_is_an_upsert_and_an_edit_updates_the_same_entry(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    ch = channel(sessions, clock)
    first = publish(ch, first_post(), second_post())
    before = feedparser.parse(ch.feed_xml())
    again = publish(ch, first_post())
    assert again[0] == first[0]
    assert entry_count(sessions) == 3
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AtomMedia)) == 2
    after = feedparser.parse(ch.feed_xml())
    assert [(e.id, e.updated) for e in after.entries] == [(e.id, e.updated) for e in before.entries]

    edited = first_post(text={"fr": "Bonjour, version corrigée", "en": "Hello from the ISS!\n\nHere"})
    publish(ch, edited)
    assert entry_count(sessions) == 3
    feed = feedparser.parse(ch.feed_xml())
    assert [e.id for e in feed.entries][:2] == [f"{TAG}/post-1/en", f"{TAG}/post-1/fr"]
    assert feed.entries[1].title == "Bonjour, version corrigée"
    assert feed.entries[1].updated_parsed > before.entries[-1].updated_parsed


def test_language_feeds_languages_and_max_entries(sessions: sessionmaker[Session]) -> None:
    ch = channel(sessions, Clock(), max_entries=2)
    publish(ch, first_post(), second_post())
    all_langs = feedparser.parse(ch.feed_xml())
    assert len(all_langs.entries) == 2
    french = feedparser.parse(ch.feed_xml("fr"))
    assert [e.id for e in french.entries] == [f"{TAG}/post-1/fr"]
    assert french.feed.id == f"{TAG}/fr"
    assert french.feed.language == "fr"

    english_only = AtomChannel(
        sessions, base_url=BASE, feed_id="en-news", title="t", subtitle="s", author="a", languages=["en"]
    )
    [published] = publish(english_only, first_post())
    assert published.remote_id == "tag:mission.example,2026:en-news/post-1/en"
    assert [e.id for e in feedparser.parse(english_only.feed_xml()).entries] == [published.remote_id]
    with pytest.raises(ChannelError) as caught:
        publish(english_only, first_post(key="post-9", text={"fr": "Seulement en français"}))
    assert caught.value.transient is False


def test_configuration_errors_name_the_field(sessions: sessionmaker[Session]) -> None:
    common: dict[str, Any] = {"title": "t", "subtitle": "s", "author": "a"}
    with pytest.raises(ConfigError, match="base_url"):
        AtomChannel(sessions, base_url="mission.example", feed_id="x", **common)
    with pytest.raises(ConfigError, match="feed_id"):
        AtomChannel(sessions, base_url=BASE, feed_id="a b", **common)
    with pytest.raises(ConfigError, match="tag_date"):
        AtomChannel(sessions, base_url=BASE, feed_id="x", tag_date="yesterday", **common)


@contextmanager
def serving(app: Starlette) -> Iterator[httpx.Client]:
    """``app`` served by uvicorn on a loopback port, in a thread; a client pointed at it."""
    sock, base_url = bind()
    with serve_in_thread(app, sock), httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def test_the_feed_entries_and_media_are_served(sessions: sessionmaker[Session]) -> None:
    ch = channel(sessions, Clock(), languages=["fr", "en"])
    [one, _] = publish(ch, first_post(), second_post())
    app = Starlette(routes=[Mount(urlsplit(BASE).path, routes=ch.routes())])
    with serving(app) as client:
        response = client.get("/news/feed.atom")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        assert response.content == ch.feed_xml()
        etag, modified = response.headers["etag"], response.headers["last-modified"]
        assert modified == format_datetime(T0 + timedelta(minutes=2), usegmt=True)
        assert client.get("/news/feed.atom", headers={"if-none-match": etag}).status_code == 304
        assert client.get("/news/feed.atom", headers={"if-none-match": '"other"'}).status_code == 200
        assert client.get("/news/feed.atom", headers={"if-modified-since": modified}).status_code == 304
        earlier = format_datetime(T0, usegmt=True)
        assert client.get("/news/feed.atom", headers={"if-modified-since": earlier}).status_code == 200

        french = client.get("/news/feed.fr.atom")
        assert french.status_code == 200
        assert [e.id for e in feedparser.parse(french.content).entries] == [f"{TAG}/post-1/fr"]
        assert client.get("/news/feed.de.atom").status_code == 404

        entry = feedparser.parse(response.content).entries[-1]
        for enclosure, media in zip(entry.enclosures, (PHOTO, CLIP), strict=True):
            served = client.get(urlsplit(enclosure.href).path)
            assert served.status_code == 200
            assert served.content == media.data
            assert served.headers["content-type"] == media.content_type
        assert client.get("/news/media/" + "0" * 64).status_code == 404

        page = client.get(urlsplit(one.url).path)
        assert page.status_code == 200
        assert '<html lang="fr">' in page.text
        assert "&lt;script&gt;" in page.text
        assert "<script>" not in page.text
        assert client.get("/news/entries/nope").status_code == 404
