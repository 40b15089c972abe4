"""An Atom feed channel: the mission's own feed, one entry per post and language.

Publishing stores the entry in the ground database (tables ``atom_entries`` and ``atom_media``
on :class:`proxima.ground.db.Base`); the feed is rendered from there with ``feedgen`` whenever it
is asked for, and :meth:`AtomChannel.routes` serves it with the media files and a small page per
entry. An entry is keyed by ``(feed, post key, language)``, so publishing the same post again is
an update of the same entry, never a second one.

Media bytes are stored in the database, by SHA-256, rather than on disk: they are small once
fitted to the channel's limits, they are written in the same transaction as the entry that
names them (an entry never points at a missing file), and the ground service keeps one place to
back up. Entry and feed ids are ``tag:`` URIs (RFC 4151) built from the host of ``base_url``, a
``tag_date`` that must never change, the feed id, the post key and the language.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from feedgen.entry import FeedEntry  # type: ignore[import-untyped]
from feedgen.ext.base import BaseEntryExtension  # type: ignore[import-untyped]
from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]
from feedgen.util import xml_elem  # type: ignore[import-untyped]
from sqlalchemy import LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.responses import Response
from starlette.routing import Route

from proxima.errors import ChannelError, ConfigError
from proxima.ground.channels.base import Limits, Published
from proxima.ground.db import Base

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from starlette.requests import Request

    from proxima.ground.channels.base import MediaFile, Outgoing

__all__ = ["LIMITS", "AtomChannel", "AtomEntry", "AtomMedia", "render_html"]

ATOM_TYPE: Final = "application/atom+xml; charset=utf-8"
TITLE_CHARS: Final = 100
"""Entry titles longer than this are cut at a word and end with an ellipsis."""

LIMITS: Final = Limits(
    max_chars=100_000,
    max_media=10,
    max_media_bytes=40 * 1024 * 1024,
    media_types=frozenset(
        {
            "image/jpeg",
            "image/png",
            "image/webp",
            "image/gif",
            "video/mp4",
            "video/webm",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg",
        }
    ),
    threads=False,
)

_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
}
_LANG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_TAG_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")
_FEED_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class AtomEntry(Base):
    """One entry of an Atom feed: a post in one language."""

    __tablename__ = "atom_entries"
    __table_args__ = (UniqueConstraint("feed_id", "post_key", "lang", name="uq_atom_entries_post_lang"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[str] = mapped_column(String(100), index=True)
    post_key: Mapped[str] = mapped_column(String(500))
    lang: Mapped[str] = mapped_column(String(35))
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    entry_id: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    hashtags: Mapped[list[Any]]
    media: Mapped[list[Any]]
    """``[{"sha256", "name", "content_type", "size", "alt"}]``: the bytes are in ``atom_media``."""
    verify_url: Mapped[str | None] = mapped_column(String(2000))
    published: Mapped[datetime]
    updated: Mapped[datetime] = mapped_column(index=True)


class AtomMedia(Base):
    """A media file an Atom entry links to, by SHA-256 of its bytes."""

    __tablename__ = "atom_media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class _EntryExtras(BaseEntryExtension):  # type: ignore[misc]
    """Adds what feedgen 1.0 cannot: ``xml:lang`` on an entry, and links with their attributes.

    (feedgen 1.0.0 drops ``rel``, ``type`` and ``length`` of entry links: its loop rebinds the
    link dict to the new element before reading them.)
    """

    def __init__(self) -> None:
        self.lang: str | None = None
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: Any) -> Any:
        if self.lang:
            entry.set("{http://www.w3.org/XML/1998/namespace}lang", self.lang)
        for attributes in self.links:
            xml_elem("link", entry, **attributes)
        return entry


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def render_html(text: str, media: Sequence[tuple[str, str, str]] = (), verify_url: str | None = None) -> str:
    """The HTML of an entry: escaped paragraphs, images (``(url, content_type, alt)``), the link.

    Everything the crew wrote is escaped, so ``<script>`` in a post is shown, never run.
    """
    parts = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if paragraph.strip():
            lines = (html.escape(line.strip(), quote=False) for line in paragraph.strip().splitlines())
            parts.append("<p>" + "<br/>".join(lines) + "</p>")
    for url, ctype, alt in media:
        if ctype.startswith("image/"):
            parts.append(f'<p><img src="{html.escape(url)}" alt="{html.escape(alt)}"/></p>')
    if verify_url:
        link = html.escape(verify_url)
        parts.append(f'<p>✔ <a href="{link}">{link}</a></p>')
    return "\n".join(parts)


class AtomChannel:
    """Publishes posts as entries of an Atom feed served at ``base_url + "/feed.atom"``.

    ``session_factory`` makes sessions on the ground database; ``base_url`` is where
    :meth:`routes` are mounted (``https://mission.example/news``); ``feed_id`` tells this feed
    from others in the same database; ``languages`` limits the languages published (all of a
    post's by default); ``tag_date`` is the date in the ``tag:`` ids, a day the owner of
    ``base_url``'s host held it, never to be changed once a feed is public.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        base_url: str,
        feed_id: str,
        title: str,
        subtitle: str,
        author: str,
        name: str = "atom",
        languages: Sequence[str] | None = None,
        max_entries: int = 100,
        tag_date: str = "2026",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"atom channel {name}: base_url {base_url!r} is not an http(s) URL")
        if not _FEED_ID.fullmatch(feed_id):
            raise ConfigError(f"atom channel {name}: feed_id {feed_id!r}: 1 to 100 of A-Z a-z 0-9 . _ ~ -")
        if not _TAG_DATE.fullmatch(tag_date):
            raise ConfigError(f"atom channel {name}: tag_date {tag_date!r} is not YYYY, YYYY-MM, YYYY-MM-DD")
        for lang in languages or ():
            if not _LANG.fullmatch(lang):
                raise ConfigError(f"atom channel {name}: {lang!r} is not a language tag")
        if max_entries < 1:
            raise ConfigError(f"atom channel {name}: max_entries is {max_entries}, at least 1")
        self._sessions = session_factory
        self._base = base_url.rstrip("/")
        self._feed_id = feed_id
        self._title = title
        self._subtitle = subtitle
        self._author = author
        self._name = name
        self._languages = tuple(languages) if languages is not None else None
        self._max_entries = max_entries
        self._tag = f"tag:{parts.hostname},{tag_date}:{feed_id}"
        self._clock = clock

    @property
    def name(self) -> str:
        """The channel's name as posts list it."""
        return self._name

    @property
    def limits(self) -> Limits:
        """What one entry may hold."""
        return LIMITS

    def feed_url(self, lang: str | None = None) -> str:
        """The public address of the feed (of one language's feed)."""
        return f"{self._base}/feed.atom" if lang is None else f"{self._base}/feed.{lang}.atom"

    def entry_url(self, slug: str) -> str:
        """The public address of an entry's page."""
        return f"{self._base}/entries/{slug}"

    def media_url(self, sha256: str, content_type: str) -> str:
        """The public address of a stored media file."""
        return f"{self._base}/media/{sha256}{_EXTENSIONS.get(content_type, '')}"

    def _entry_id(self, key: str, lang: str) -> str:
        return f"{self._tag}/{quote(key, safe='')}/{lang}"

    def _slug(self, key: str, lang: str) -> str:
        return hashlib.sha256(f"{self._feed_id}\0{key}\0{lang}".encode()).hexdigest()[:32]

    async def publish(self, out: Outgoing) -> Published:
        """Store (or update) one entry per language of ``out``; the first language's page is the link."""
        langs = [lang for lang in out.text if self._languages is None or lang in self._languages]
        if not langs:
            raise ChannelError(
                f"post {out.key} has no text in {', '.join(self._languages or ())}",
                channel=self._name,
                transient=False,
            )
        for lang in langs:
            if not _LANG.fullmatch(lang):
                raise ChannelError(
                    f"post {out.key}: {lang!r} is not a language tag", channel=self._name, transient=False
                )
        try:
            await asyncio.to_thread(self._store, out, langs, self._clock())
        except SQLAlchemyError as exc:
            message = f"storing post {out.key} failed: {str(exc).splitlines()[0]}"
            raise ChannelError(message, channel=self._name, transient=True) from exc
        ids = tuple(self._entry_id(out.key, lang) for lang in langs)
        return Published(remote_id=ids[0], url=self.entry_url(self._slug(out.key, langs[0])), ids=ids)

    def _store(self, out: Outgoing, langs: list[str], now: datetime) -> None:
        with self._sessions() as session, session.begin():
            described = [self._keep_media(session, m) for m in out.media]
            for lang in langs:
                text = out.text[lang]
                fields: dict[str, Any] = {
                    "entry_id": self._entry_id(out.key, lang),
                    "title": _shorten(out.title or _first_line(text)) or out.key,
                    "text": text,
                    "author": out.author,
                    "hashtags": list(out.hashtags),
                    "media": [d | {"alt": d["alt"].get(lang, "")} for d in described],
                    "verify_url": out.verify_url,
                    "published": out.created,
                }
                row = session.scalars(
                    select(AtomEntry).where(
                        AtomEntry.feed_id == self._feed_id,
                        AtomEntry.post_key == out.key,
                        AtomEntry.lang == lang,
                    )
                ).one_or_none()
                if row is None:
                    session.add(
                        AtomEntry(
                            feed_id=self._feed_id,
                            post_key=out.key,
                            lang=lang,
                            slug=self._slug(out.key, lang),
                            updated=now,
                            **fields,
                        )
                    )
                elif any(getattr(row, k) != v for k, v in fields.items()):
                    for k, v in fields.items():
                        setattr(row, k, v)
                    row.updated = now

    @staticmethod
    def _keep_media(session: Session, media: MediaFile) -> dict[str, Any]:
        digest = hashlib.sha256(media.data).hexdigest()
        if session.get(AtomMedia, digest) is None:
            session.add(AtomMedia(sha256=digest, content_type=media.content_type, data=media.data))
        return {
            "sha256": digest,
            "name": media.name,
            "content_type": media.content_type,
            "size": len(media.data),
            "alt": dict(media.alt),
        }

    def _entries(self, lang: str | None) -> list[AtomEntry]:
        query = select(AtomEntry).where(AtomEntry.feed_id == self._feed_id)
        if lang is not None:
            query = query.where(AtomEntry.lang == lang)
        query = query.order_by(AtomEntry.updated.desc(), AtomEntry.id.desc()).limit(self._max_entries)
        with self._sessions() as session:
            return list(session.scalars(query))

    def _html(self, row: AtomEntry) -> str:
        images = [
            (self.media_url(m["sha256"], m["content_type"]), m["content_type"], m["alt"]) for m in row.media
        ]
        return render_html(row.text, images, row.verify_url)

    def _feed_entry(self, row: AtomEntry) -> FeedEntry:
        entry = FeedEntry()
        entry.register_extension("proxima", _EntryExtras, atom=True, rss=False)
        entry.id(row.entry_id)
        entry.title(row.title)
        entry.author({"name": row.author})
        entry.published(row.published)
        entry.updated(row.updated)
        entry.content(self._html(row), type="html")
        for tag in row.hashtags:
            entry.category({"term": tag, "label": f"#{tag}"})
        extras: _EntryExtras = entry.proxima
        extras.lang = row.lang
        extras.links.append({"href": self.entry_url(row.slug), "rel": "alternate", "type": "text/html"})
        if row.verify_url:
            extras.links.append({"href": row.verify_url, "rel": "related", "title": "verification"})
        for m in row.media:
            link = {
                "href": self.media_url(m["sha256"], m["content_type"]),
                "rel": "enclosure",
                "type": m["content_type"],
                "length": str(m["size"]),
            }
            if m["alt"]:
                link["title"] = m["alt"]
            extras.links.append(link)
        return entry

    def _render(self, lang: str | None) -> tuple[bytes, datetime]:
        rows = self._entries(lang)
        latest = max((r.updated for r in rows), default=_EPOCH)
        feed = FeedGenerator()
        feed.id(self._tag if lang is None else f"{self._tag}/{lang}")
        feed.title(self._title)
        feed.subtitle(self._subtitle)
        feed.author({"name": self._author})
        feed.link(href=self.feed_url(lang), rel="self", type="application/atom+xml")
        feed.link(href=f"{self._base}/", rel="alternate", type="text/html")
        if lang is not None:
            feed.language(lang)
        feed.updated(latest)
        for row in rows:
            feed.add_entry(self._feed_entry(row), order="append")
        data: bytes = feed.atom_str(pretty=True)
        return data, latest

    def feed_xml(self, lang: str | None = None) -> bytes:
        """The Atom document, newest entries first (at most ``max_entries``), of one language or all."""
        return self._render(lang)[0]

    def routes(self) -> list[Route]:
        """Starlette routes: ``/feed.atom``, ``/feed.<lang>.atom``, ``/media/<sha256>``, ``/entries/<slug>``.

        Mount them at the path of ``base_url``; the handlers are synchronous (Starlette runs them
        in its thread pool) because the database sessions are.
        """
        return [
            Route("/feed.atom", self._serve_feed, methods=["GET", "HEAD"]),
            Route("/feed.{lang}.atom", self._serve_feed, methods=["GET", "HEAD"]),
            Route("/media/{name}", self._serve_media, methods=["GET", "HEAD"]),
            Route("/entries/{slug}", self._serve_entry, methods=["GET", "HEAD"]),
        ]

    def _serve_feed(self, request: Request) -> Response:
        lang = request.path_params.get("lang")
        if lang is not None and (
            not _LANG.fullmatch(lang) or (self._languages is not None and lang not in self._languages)
        ):
            return Response("no such feed\n", status_code=404, media_type="text/plain")
        data, latest = self._render(lang)
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(latest, usegmt=True),
            "Cache-Control": "public, max-age=60",
        }
        if _not_modified(request, etag, latest):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=ATOM_TYPE, headers=headers)

    def _serve_media(self, request: Request) -> Response:
        digest = str(request.path_params["name"]).split(".", 1)[0]
        if not _SHA256.fullmatch(digest):
            return Response("no such file\n", status_code=404, media_type="text/plain")
        with self._sessions() as session:
            media = session.get(AtomMedia, digest)
        if media is None:
            return Response("no such file\n", status_code=404, media_type="text/plain")
        etag = f'"{digest}"'
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        }
        if _not_modified(request, etag, None):
            return Response(status_code=304, headers=headers)
        return Response(media.data, media_type=media.content_type, headers=headers)

    def _serve_entry(self, request: Request) -> Response:
        slug = str(request.path_params["slug"])
        with self._sessions() as session:
            row = session.scalars(
                select(AtomEntry).where(AtomEntry.feed_id == self._feed_id, AtomEntry.slug == slug)
            ).one_or_none()
        if row is None:
            return Response("no such entry\n", status_code=404, media_type="text/plain")
        page = (
            f'<!doctype html>\n<html lang="{html.escape(row.lang)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(row.title)}</title>"
            f'<link rel="alternate" type="application/atom+xml" href="{html.escape(self.feed_url())}">'
            f"</head><body><article><h1>{html.escape(row.title)}</h1>"
            f'<p><time datetime="{row.published.isoformat()}">{row.published:%Y-%m-%d %H:%M} UTC</time>'
            f" · {html.escape(row.author)}</p>\n{self._html(row)}"
            "</article></body></html>\n"
        )
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": "default-src 'none'; img-src 'self'"},
        )

    async def close(self) -> None:
        """Nothing to release: sessions are opened per call."""


def _not_modified(request: Request, etag: str, latest: datetime | None) -> bool:
    """Whether the client's cached copy (If-None-Match, else If-Modified-Since) is current."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since is None or latest is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return latest.replace(microsecond=0) <= when
