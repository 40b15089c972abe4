"""ActivityPub: the mission is its own fediverse actor, served by the ground service.

:class:`ActivityPubChannel` is both halves of that actor. As a channel, ``publish`` turns a post
into one ``Create{Note}`` (every language in ``contentMap``, hashtags as ``Hashtag`` tags, media
as ``Document`` attachments whose ``name`` is the alt text), stores it in the outbox and delivers
it, signed with HTTP Signatures (:mod:`proxima.ground.httpsig`), to every follower's inbox, once
per shared inbox. As a web application, :meth:`ActivityPubChannel.routes` answers WebFinger,
NodeInfo, the actor document, its outbox and followers collections, the notes, the media files,
and the inbox, where a signed ``Follow`` makes a follower (answered with a signed ``Accept``) and
``Undo{Follow}`` removes it.

Exactly once: the note's id is derived from :attr:`Outgoing.key`, so a second ``publish`` of
the same key finds the stored activity instead of making another, and each inbox's delivery
state is recorded: a retry only sends to the inboxes that have not acknowledged it yet, and
receivers that got it twice deduplicate on the id anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from sqlalchemy import ForeignKey, LargeBinary, String, Text, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.background import BackgroundTask
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from proxima.errors import ChannelError, ProximaError, VerificationError
from proxima.ground.channels.base import Limits, Published
from proxima.ground.db import Base
from proxima.ground.httpsig import (
    load_private_key,
    load_public_key,
    parse_signature_header,
    sign_request,
    verify_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cryptography.hazmat.primitives.asymmetric import rsa
    from sqlalchemy.orm import Session, sessionmaker
    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from proxima.ground.channels.base import MediaFile, Outgoing

__all__ = [
    "ACTIVITYPUB_LIMITS",
    "AS_PUBLIC",
    "REACTION_KINDS",
    "ActivityPubChannel",
    "ApActivity",
    "ApDelivery",
    "ApFollower",
    "ApMedia",
    "ApReaction",
    "Mention",
    "Reaction",
    "render_html",
]

log = logging.getLogger(__name__)

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
_ACCEPT = f'{ACTIVITY_JSON}, application/ld+json; profile="{AS_CONTEXT}"'
_NOTE_CONTEXT: list[Any] = [AS_CONTEXT, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"}]
_MAX_INBOX_BYTES = 1024 * 1024
_MAX_FETCH_BYTES = 1024 * 1024
_KEY_CACHE_SIZE = 1024

ACTIVITYPUB_LIMITS = Limits(
    max_chars=20_000,
    max_media=4,
    max_media_bytes=16 * 1024 * 1024,
    media_types=frozenset(
        {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "video/mp4", "video/webm"}
    ),
    max_alt_chars=1500,
    threads=False,
)
"""What the actor publishes: one note per post (no thread), at most 4 media of 16 MB, as the
most common receivers (Mastodon) display them."""


# -- storage -----------------------------------------------------------------------------------


class ApFollower(Base):
    """A remote actor following the mission, and where its deliveries go."""

    __tablename__ = "ap_followers"

    actor_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    inbox: Mapped[str] = mapped_column(String(1024))
    shared_inbox: Mapped[str | None] = mapped_column(String(1024))
    follow_id: Mapped[str | None] = mapped_column(String(1024))
    since: Mapped[datetime]


class ApActivity(Base):
    """An activity of the mission's actor: a public ``Create`` (the outbox) or an ``Accept``."""

    __tablename__ = "ap_activities"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    activity_id: Mapped[str] = mapped_column(String(1024), unique=True)
    key: Mapped[str | None] = mapped_column(String(512), unique=True)
    """:attr:`Outgoing.key` of a published post; ``None`` for an ``Accept``."""
    kind: Mapped[str] = mapped_column(String(32))
    public: Mapped[bool]
    activity: Mapped[dict[str, Any]]
    published: Mapped[datetime]


class ApDelivery(Base):
    """One activity sent to one inbox: ``pending``, ``delivered``, ``failed`` (retry) or ``rejected``."""

    __tablename__ = "ap_deliveries"

    activity_seq: Mapped[int] = mapped_column(
        ForeignKey("ap_activities.seq", ondelete="CASCADE"), primary_key=True
    )
    inbox: Mapped[str] = mapped_column(String(1024), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[datetime]


class ApMedia(Base):
    """A media file a published note attaches, served at ``/ap/media/<sha256>``."""

    __tablename__ = "ap_media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(128))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime]


class ApReaction(Base):
    """What the fediverse did with the mission's notes, or said to it, as received at the inbox.

    ``kind`` is ``like``, ``announce`` (a boost), ``reply`` (a note answering one of ours),
    ``mention`` (a note naming our actor) or ``tagged`` (another public note with hashtags).
    ``object`` is our note concerned (likes, boosts, replies); ``note`` the received note's id
    (replies, mentions, tagged notes), whose text, language and hashtags are kept for listening.
    An ``Undo`` of a like or boost, or a ``Delete`` of a note, removes its row.
    """

    __tablename__ = "ap_reactions"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    activity_id: Mapped[str] = mapped_column(String(1024), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(1024))
    object: Mapped[str | None] = mapped_column(String(1024), index=True)
    note: Mapped[str | None] = mapped_column(String(1024), index=True)
    text: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[Any]]
    mentions: Mapped[list[Any]]
    at: Mapped[datetime]


# -- text --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?P<url>https?://[^\s<>\"']+)|(?<![\w/&#])#(?P<tag>\w*[^\W\d_]\w*)")
_TRAILING = ".,;:!?)]}'\""


def render_html(
    text: str, tag_url: Callable[[str], str], *, extra_tags: Iterable[str] = (), link: str | None = None
) -> str:
    """``text`` as the HTML of a note: escaped, one ``<p>`` per paragraph, ``<br>`` per line break.

    Links and hashtags become anchors (hashtags to ``tag_url(tag)``); ``extra_tags`` not already in
    the text end in a paragraph of their own, and ``link`` (the verification page) in the last.
    """
    folded = text.casefold()
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    out = [
        "<p>" + "<br>".join(_inline(line, tag_url) for line in p.strip().split("\n")) + "</p>"
        for p in paragraphs
    ]
    missing = [t for t in extra_tags if f"#{t.casefold()}" not in folded]
    if missing:
        out.append("<p>" + " ".join(_hashtag(t, tag_url) for t in missing) + "</p>")
    if link:
        out.append(f"<p>{_anchor(link)}</p>")
    return "".join(out)


def _anchor(url: str) -> str:
    href = html.escape(url, quote=True)
    return f'<a href="{href}" rel="nofollow noopener noreferrer" target="_blank">{html.escape(url)}</a>'


def _hashtag(tag: str, tag_url: Callable[[str], str]) -> str:
    href = html.escape(tag_url(tag), quote=True)
    return f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{html.escape(tag)}</span></a>'


def _inline(line: str, tag_url: Callable[[str], str]) -> str:
    parts: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(line):
        parts.append(html.escape(line[pos : match.start()]))
        if match.group("url") is not None:
            url = match.group("url")
            stripped = url.rstrip(_TRAILING)
            parts.append(_anchor(stripped) + html.escape(url[len(stripped) :]))
        else:
            parts.append(_hashtag(match.group("tag"), tag_url))
        pos = match.end()
    parts.append(html.escape(line[pos:]))
    return "".join(parts)


def _inline_tags(text: str) -> list[str]:
    return [m.group("tag") for m in _TOKEN.finditer(text) if m.group("tag") is not None]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


def _id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class _ActivityJSON(JSONResponse):
    """JSON served as ``application/activity+json``, as fediverse servers expect."""

    media_type = ACTIVITY_JSON


@dataclass(frozen=True, slots=True)
class _RemoteActor:
    """What the inbox needs of a sender: its id, the key that signed, and where to deliver."""

    id: str
    key_id: str
    public_key: rsa.RSAPublicKey
    inbox: str
    shared_inbox: str | None
    fetched: float


@dataclass(frozen=True, slots=True)
class Mention:
    """A note from the fediverse addressed to the mission: a reply to one of its notes or a mention."""

    origin_id: str
    """The note's id: an answer is published in reply to it."""
    author: str
    """The sending actor's id."""
    text: str
    """The note's text without markup or @mentions."""
    lang: str | None


@dataclass(frozen=True, slots=True)
class Reaction:
    """One stored :class:`ApReaction`, as :meth:`ActivityPubChannel.reactions` lists it."""

    seq: int
    kind: str
    actor: str
    object: str | None
    note: str | None
    text: str | None
    lang: str | None
    tags: tuple[str, ...]
    mentions: tuple[str, ...]
    at: datetime


REACTION_KINDS = frozenset({"like", "announce", "reply", "mention", "tagged"})


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How one delivery went: its new state, the HTTP status if any, and why it failed."""

    state: str
    status: int | None
    error: str | None


# -- the channel -------------------------------------------------------------------------------


class ActivityPubChannel:
    """The mission's ActivityPub actor: a publishing channel and the routes that serve it.

    ``base_url`` is where the ground service is reachable from the fediverse (``https://host``);
    the actor is ``{base_url}/users/{username}``. ``private_key_pem`` is its RSA key (PEM).
    ``session_factory`` makes the database sessions of the tables above. ``http_client`` makes
    the ``httpx.AsyncClient`` used for deliveries and key fetches (one, kept until
    :meth:`close`). ``allow_private_network`` lets the actor talk to loopback and private
    addresses (and plain http): off in production, so that a forged ``keyId`` cannot make it
    fetch internal URLs. Signed requests name the host they were signed for, and the inbox only
    accepts its own: a reverse proxy in front of the service must pass the ``Host`` header on.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        display_name: str,
        summary: str,
        private_key_pem: str | bytes,
        session_factory: sessionmaker[Session],
        *,
        http_client: Callable[[], httpx.AsyncClient] | None = None,
        timeout: float = 10.0,
        name: str = "activitypub",
        clock: Callable[[], datetime] | None = None,
        allow_private_network: bool = False,
        icon_url: str | None = None,
        page_size: int = 20,
        key_cache_s: float = 3600.0,
        max_skew_s: float = 300.0,
        limits: Limits = ACTIVITYPUB_LIMITS,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"base_url {base_url!r} must be an http(s) URL without query or fragment")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", username):
            raise ValueError(f"username {username!r} must be letters, digits, '_', '.' or '-'")
        self._base = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self.host = parts.netloc.lower()
        self.username = username
        self.display_name = display_name
        self.summary = summary
        self._private_key = load_private_key(private_key_pem)
        self.public_key_pem = (
            self._private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )
        self._sessions = session_factory
        self._client_factory = http_client or (lambda: httpx.AsyncClient(timeout=timeout))
        self._client: httpx.AsyncClient | None = None
        self._name = name
        self.on_mention: Callable[[Mention], None] | None = None
        """Called with each reply or mention received (the ground service turns them into questions)."""
        self._clock = clock or (lambda: datetime.now(UTC))
        self._allow_private = allow_private_network
        self._icon_url = icon_url
        self._page_size = page_size
        self._key_cache_s = key_cache_s
        self._max_skew_s = max_skew_s
        self._limits = limits
        self._keys: dict[str, _RemoteActor] = {}
        self._delivery_slots = asyncio.Semaphore(8)

        self.actor_id = f"{self._base}/users/{username}"
        self.key_id = f"{self.actor_id}#main-key"
        self.inbox_url = f"{self.actor_id}/inbox"
        self.outbox_url = f"{self.actor_id}/outbox"
        self.followers_url = f"{self.actor_id}/followers"

    # -- Channel ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The channel's name as posts list it."""
        return self._name

    @property
    def limits(self) -> Limits:
        """What one note may hold."""
        return self._limits

    def note_id(self, key: str) -> str:
        """The id of the note that publishing ``key`` makes (stable across retries)."""
        return f"{self._base}/ap/objects/{_digest(key)}"

    def tag_url(self, tag: str) -> str:
        """Where a hashtag links: the collection of the actor's notes carrying it."""
        return f"{self._base}/ap/tags/{quote(tag.casefold(), safe='')}"

    def media_url(self, sha256: str) -> str:
        """Where a published media file is served."""
        return f"{self._base}/ap/media/{sha256}"

    async def publish(self, out: Outgoing) -> Published:
        """Store ``out`` as a ``Create{Note}`` and deliver it to every follower inbox.

        Publishing a key again reuses the stored activity and only sends it to the inboxes that
        have not acknowledged it. Raises a transient :class:`ChannelError` when there are
        followers and not one of their inboxes could be reached.
        """
        if not out.text:
            raise ChannelError(f"post {out.key!r} has no text", channel=self._name, transient=False)
        now = self._clock()
        try:
            seq, note_id, inboxes = self._store(out, now)
        except IntegrityError:
            # A concurrent publish of the same key stored it first: use that one.
            seq, note_id, inboxes = self._store(out, now)
        if not inboxes:
            return Published(remote_id=note_id, url=note_id, ids=(note_id,))
        states = await self._deliver(seq, inboxes)
        delivered = sum(1 for s in states.values() if s.state == "delivered")
        failed = {inbox: s for inbox, s in states.items() if s.state == "failed"}
        if delivered == 0 and failed:
            first = next(iter(failed.items()))
            raise ChannelError(
                f"no follower inbox could be reached for {note_id} ({len(failed)} failed; "
                f"{first[0]}: {first[1].error})",
                channel=self._name,
                transient=True,
                status=first[1].status,
            )
        return Published(remote_id=note_id, url=note_id, ids=(note_id,))

    def _store(self, out: Outgoing, now: datetime) -> tuple[int, str, list[str]]:
        """Store the post's activity unless stored already; list the inboxes it goes to."""
        with self._sessions() as session, session.begin():
            row = session.scalar(select(ApActivity).where(ApActivity.key == out.key))
            if row is None:
                create = self._create(out, now)
                row = ApActivity(
                    activity_id=create["id"], key=out.key, kind="Create", public=True, activity=create,
                    published=now,
                )  # fmt: skip
                session.add(row)
                for media in out.media:
                    self._store_media(session, media, now)
                session.flush()
            seq, note_id = row.seq, str(row.activity["object"]["id"])
            inboxes = sorted({f.shared_inbox or f.inbox for f in session.scalars(select(ApFollower))})
            for inbox in inboxes:
                if session.get(ApDelivery, (seq, inbox)) is None:
                    session.add(
                        ApDelivery(activity_seq=seq, inbox=inbox, state="pending", attempts=0, updated=now)
                    )
        return seq, note_id, inboxes

    async def retry_deliveries(self, max_attempts: int = 10) -> int:
        """Send again every delivery that failed (of any activity) fewer than ``max_attempts`` times.

        Returns how many are now delivered. A periodic job of the service calls it, so followers
        whose server was down still receive the notes once it is back.
        """
        with self._sessions() as session:
            rows = session.execute(
                select(ApDelivery.activity_seq, ApDelivery.inbox).where(
                    ApDelivery.state.in_(("pending", "failed")), ApDelivery.attempts < max_attempts
                )
            ).all()
        by_activity: dict[int, list[str]] = {}
        for seq, inbox in rows:
            by_activity.setdefault(seq, []).append(inbox)
        done = 0
        for seq, inboxes in by_activity.items():
            states = await self._deliver(seq, inboxes)
            done += sum(1 for s in states.values() if s.state == "delivered")
        return done

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- building ----------------------------------------------------------------------------------

    def _create(self, out: Outgoing, now: datetime) -> dict[str, Any]:
        oid = _digest(out.key)
        languages = list(out.text)
        content = {
            lang: render_html(text, self.tag_url, extra_tags=out.hashtags, link=out.verify_url)
            for lang, text in out.text.items()
        }
        tags: dict[str, str] = {}
        for tag in [*out.hashtags, *(t for text in out.text.values() for t in _inline_tags(text))]:
            tags.setdefault(tag.casefold(), tag)
        note: dict[str, Any] = {
            "id": self.note_id(out.key),
            "type": "Note",
            "attributedTo": self.actor_id,
            "published": _iso(now),
            "url": self.note_id(out.key),
            "to": [AS_PUBLIC],
            "cc": [self.followers_url],
            "sensitive": False,
            "content": content[languages[0]],
            "contentMap": content,
            "tag": [{"type": "Hashtag", "href": self.tag_url(t), "name": f"#{t}"} for t in tags.values()],
            "attachment": [self._attachment(m, languages) for m in out.media],
        }
        if out.reply_to:
            note["inReplyTo"] = out.reply_to
        return {
            "@context": _NOTE_CONTEXT,
            "id": f"{self._base}/ap/activities/{oid}",
            "type": "Create",
            "actor": self.actor_id,
            "published": note["published"],
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }

    def _attachment(self, media: MediaFile, languages: list[str]) -> dict[str, Any]:
        sha = hashlib.sha256(media.data).hexdigest()
        doc: dict[str, Any] = {
            "type": "Document",
            "mediaType": media.content_type,
            "url": self.media_url(sha),
        }
        alt = next((media.alt[lang] for lang in languages if media.alt.get(lang)), None)
        alt = alt or next((a for a in media.alt.values() if a), None)
        if alt:
            doc["name"] = alt
            doc["nameMap"] = {lang: a for lang, a in media.alt.items() if a}
        size = _image_size(media)
        if size is not None:
            doc["width"], doc["height"] = size
        return doc

    def _store_media(self, session: Session, media: MediaFile, now: datetime) -> None:
        sha = hashlib.sha256(media.data).hexdigest()
        if session.get(ApMedia, sha) is None:
            session.add(ApMedia(sha256=sha, content_type=media.content_type, data=media.data, created=now))

    def actor_document(self) -> dict[str, Any]:
        """The actor as the fediverse sees it: names, collections and the public key."""
        doc: dict[str, Any] = {
            "@context": [
                AS_CONTEXT,
                SECURITY_CONTEXT,
                {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"},
            ],
            "id": self.actor_id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.display_name,
            "summary": render_html(self.summary, self.tag_url),
            "url": self.actor_id,
            "inbox": self.inbox_url,
            "outbox": self.outbox_url,
            "followers": self.followers_url,
            "endpoints": {"sharedInbox": self.inbox_url},
            "manuallyApprovesFollowers": False,
            "publicKey": {"id": self.key_id, "owner": self.actor_id, "publicKeyPem": self.public_key_pem},
        }
        if self._icon_url:
            doc["icon"] = {"type": "Image", "url": self._icon_url}
        return doc

    # -- delivering --------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    async def _deliver(self, seq: int, inboxes: Iterable[str]) -> dict[str, _Outcome]:
        """Send activity ``seq`` to ``inboxes`` (skipping those already done); record each outcome."""
        with self._sessions() as session:
            row = session.get(ApActivity, seq)
            if row is None:
                raise ChannelError(f"activity #{seq} is not stored", channel=self._name, transient=False)
            body = json.dumps(row.activity, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            todo = []
            for inbox in inboxes:
                delivery = session.get(ApDelivery, (seq, inbox))
                if delivery is None or delivery.state not in {"delivered", "rejected"}:
                    todo.append(inbox)
        outcomes = await asyncio.gather(*(self._post(inbox, body) for inbox in todo))
        now = self._clock()
        result: dict[str, _Outcome] = {}
        with self._sessions() as session, session.begin():
            for inbox, outcome in zip(todo, outcomes, strict=True):
                delivery = session.get(ApDelivery, (seq, inbox))
                if delivery is None:
                    delivery = ApDelivery(activity_seq=seq, inbox=inbox, attempts=0, updated=now)
                    session.add(delivery)
                delivery.state = outcome.state
                delivery.attempts = (delivery.attempts or 0) + 1
                delivery.last_status = outcome.status
                delivery.last_error = outcome.error
                delivery.updated = now
                result[inbox] = outcome
            for delivery in session.scalars(select(ApDelivery).where(ApDelivery.activity_seq == seq)):
                result.setdefault(delivery.inbox, _Outcome(delivery.state, delivery.last_status, None))
        return result

    async def _post(self, inbox: str, body: bytes) -> _Outcome:
        headers = {"Content-Type": ACTIVITY_JSON, "Accept": _ACCEPT}
        async with self._delivery_slots:
            try:
                await self._check_target(inbox)
                headers.update(
                    sign_request("POST", inbox, headers, body, self.key_id, self._private_key, self._clock())
                )
                response = await self._http().post(inbox, content=body, headers=headers)
            except ChannelError as exc:
                return _Outcome("rejected", None, exc.message)
            except (ValueError, httpx.InvalidURL) as exc:
                return _Outcome("rejected", None, f"bad inbox URL: {exc}")
            except (httpx.HTTPError, OSError) as exc:
                log.info("delivery to %s failed: %s", inbox, exc)
                return _Outcome("failed", None, f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome("delivered", status, None)
        detail = f"HTTP {status}: {response.text[:200]}"
        if status in {408, 425, 429} or status >= 500:
            return _Outcome("failed", status, detail)
        return _Outcome("rejected", status, detail)

    async def _check_target(self, url: str) -> None:
        """Refuse URLs the actor must not contact: other schemes, and private addresses unless allowed."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ChannelError(f"{url!r} is not an http(s) URL", channel=self._name, transient=False)
        if self._allow_private:
            return
        if parts.scheme != "https":
            raise ChannelError(f"{url!r} is not https", channel=self._name, transient=False)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {parts.hostname}: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global:
                raise ChannelError(
                    f"{parts.hostname} resolves to the non-public address {address}",
                    channel=self._name,
                    transient=False,
                )

    # -- fetching remote actors ----------------------------------------------------------------------

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        """GET an ActivityPub document, signed (servers in authorized-fetch mode require it)."""
        await self._check_target(url)
        headers = {"Accept": _ACCEPT}
        headers.update(sign_request("GET", url, headers, None, self.key_id, self._private_key, self._clock()))
        async with self._http().stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise VerificationError(
                    f"GET {url} answered {response.status_code}", failure="unknown_signer"
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > _MAX_FETCH_BYTES:
                    raise VerificationError(
                        f"{url} is larger than {_MAX_FETCH_BYTES} bytes", failure="unknown_signer"
                    )
        try:
            doc = json.loads(bytes(data))
        except ValueError as exc:
            raise VerificationError(f"{url} is not JSON", failure="unknown_signer") from exc
        if not isinstance(doc, dict):
            raise VerificationError(f"{url} is not a JSON object", failure="unknown_signer")
        return doc

    async def _remote_actor(self, key_id: str, *, refresh: bool = False) -> _RemoteActor:
        """The actor owning ``key_id``, from the cache or fetched (its key, inbox, shared inbox)."""
        now = self._clock().timestamp()
        cached = self._keys.get(key_id)
        if cached is not None and not refresh and now - cached.fetched < self._key_cache_s:
            return cached
        try:
            actor = await self._load_actor(key_id, now)
        except (httpx.HTTPError, OSError, ChannelError) as exc:
            raise VerificationError(f"cannot fetch key {key_id}: {exc}", failure="unknown_signer") from exc
        if len(self._keys) >= _KEY_CACHE_SIZE:
            oldest = min(self._keys, key=lambda k: self._keys[k].fetched)
            del self._keys[oldest]
        self._keys[key_id] = actor
        return actor

    async def _load_actor(self, key_id: str, now: float) -> _RemoteActor:
        doc = await self._fetch_json(key_id.split("#", 1)[0])
        if "publicKey" in doc:
            actor_doc = doc
        elif "publicKeyPem" in doc and isinstance(doc.get("owner"), str):
            actor_doc = await self._fetch_json(doc["owner"])
        else:
            raise VerificationError(f"{key_id} is neither an actor nor a key", failure="unknown_signer")
        actor_id = actor_doc.get("id")
        if not isinstance(actor_id, str) or not _same_origin(actor_id, key_id):
            raise VerificationError(f"{key_id} belongs to no actor of its origin", failure="unknown_signer")
        keys = actor_doc.get("publicKey")
        candidates = keys if isinstance(keys, list) else [keys]
        key = next((k for k in candidates if isinstance(k, dict) and k.get("id") == key_id), None)
        if key is None or key.get("owner", actor_id) != actor_id:
            raise VerificationError(
                f"actor {actor_id} does not list the key {key_id}", failure="unknown_signer"
            )
        pem = key.get("publicKeyPem")
        if not isinstance(pem, str):
            raise VerificationError(f"key {key_id} has no publicKeyPem", failure="bad_key")
        inbox = actor_doc.get("inbox")
        if not isinstance(inbox, str) or not _same_origin(inbox, actor_id):
            raise VerificationError(f"actor {actor_id} has no inbox of its origin", failure="unknown_signer")
        endpoints = actor_doc.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        return _RemoteActor(
            id=actor_id,
            key_id=key_id,
            public_key=load_public_key(pem),
            inbox=inbox,
            shared_inbox=shared if isinstance(shared, str) and _same_origin(shared, actor_id) else None,
            fetched=now,
        )

    # -- web -----------------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The actor's HTTP side, to mount at the root of the service's application."""
        actor_path = urlsplit(self.actor_id).path
        p = self._prefix
        return [
            Route("/.well-known/webfinger", self._webfinger, methods=["GET"]),
            Route("/.well-known/nodeinfo", self._nodeinfo_links, methods=["GET"]),
            Route(f"{p}/ap/nodeinfo/2.0", self._nodeinfo, methods=["GET"]),
            Route(actor_path, self._actor, methods=["GET"]),
            Route(f"{actor_path}/inbox", self._inbox, methods=["POST"]),
            Route(f"{actor_path}/outbox", self._outbox, methods=["GET"]),
            Route(f"{actor_path}/followers", self._followers, methods=["GET"]),
            Route(p + "/ap/objects/{oid:str}", self._object, methods=["GET"]),
            Route(p + "/ap/activities/{oid:str}", self._activity, methods=["GET"]),
            Route(p + "/ap/media/{sha256:str}", self._media, methods=["GET"]),
            Route(p + "/ap/tags/{tag:str}", self._tag, methods=["GET"]),
        ]

    async def _webfinger(self, request: Request) -> Response:
        resource = request.query_params.get("resource")
        if not resource:
            return JSONResponse({"error": "the 'resource' parameter is required"}, status_code=400)
        if resource.lower() not in {f"acct:{self.username}@{self.host}".lower(), self.actor_id.lower()}:
            return JSONResponse({"error": f"no such account: {resource}"}, status_code=404)
        return JSONResponse(
            {
                "subject": f"acct:{self.username}@{self.host}",
                "aliases": [self.actor_id],
                "links": [
                    {"rel": "self", "type": ACTIVITY_JSON, "href": self.actor_id},
                    {
                        "rel": "http://webfinger.net/rel/profile-page",
                        "type": "text/html",
                        "href": self.actor_id,
                    },
                ],
            },
            media_type="application/jrd+json",
            headers={"Access-Control-Allow-Origin": "*"},
        )

    async def _nodeinfo_links(self, request: Request) -> Response:
        href = f"{self._base}/ap/nodeinfo/2.0"
        return JSONResponse(
            {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": href}]}
        )

    async def _nodeinfo(self, request: Request) -> Response:
        with self._sessions() as session:
            posts = session.scalar(select(func.count()).select_from(ApActivity).where(ApActivity.public)) or 0
        return JSONResponse(
            {
                "version": "2.0",
                "software": {"name": "proxima", "version": _version()},
                "protocols": ["activitypub"],
                "services": {"inbound": [], "outbound": []},
                "openRegistrations": False,
                "usage": {"users": {"total": 1}, "localPosts": posts},
                "metadata": {},
            },
            media_type='application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.0#"',
        )

    async def _actor(self, request: Request) -> Response:
        return _ActivityJSON(self.actor_document())

    async def _outbox(self, request: Request) -> Response:
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(ApActivity).where(ApActivity.public)) or 0
            pages = max(1, -(-total // self._page_size))
            raw = request.query_params.get("page")
            if raw is None:
                return _ActivityJSON(
                    {
                        "@context": AS_CONTEXT,
                        "id": self.outbox_url,
                        "type": "OrderedCollection",
                        "totalItems": total,
                        "first": f"{self.outbox_url}?page=1",
                        "last": f"{self.outbox_url}?page={pages}",
                    }
                )
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= pages:
                return JSONResponse({"error": f"page must be 1 to {pages}"}, status_code=404)
            page = int(raw)
            rows = session.scalars(
                select(ApActivity)
                .where(ApActivity.public)
                .order_by(ApActivity.seq.desc())
                .offset((page - 1) * self._page_size)
                .limit(self._page_size)
            ).all()
            items = [{k: v for k, v in row.activity.items() if k != "@context"} for row in rows]
        doc: dict[str, Any] = {
            "@context": _NOTE_CONTEXT,
            "id": f"{self.outbox_url}?page={page}",
            "type": "OrderedCollectionPage",
            "partOf": self.outbox_url,
            "totalItems": total,
            "orderedItems": items,
        }
        if page < pages:
            doc["next"] = f"{self.outbox_url}?page={page + 1}"
        if page > 1:
            doc["prev"] = f"{self.outbox_url}?page={page - 1}"
        return _ActivityJSON(doc)

    async def _followers(self, request: Request) -> Response:
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(ApFollower)) or 0
        # The count only: who follows the mission is the followers' business.
        return _ActivityJSON(
            {
                "@context": AS_CONTEXT,
                "id": self.followers_url,
                "type": "OrderedCollection",
                "totalItems": total,
            }
        )

    def _stored_create(self, oid: str) -> dict[str, Any] | None:
        activity_id = f"{self._base}/ap/activities/{oid}"
        with self._sessions() as session:
            row = session.scalar(
                select(ApActivity).where(ApActivity.activity_id == activity_id, ApActivity.public)
            )
            return None if row is None else dict(row.activity)

    async def _object(self, request: Request) -> Response:
        create = self._stored_create(str(request.path_params["oid"]))
        if create is None:
            return JSONResponse({"error": "no such object"}, status_code=404)
        note = {"@context": _NOTE_CONTEXT, **create["object"]}
        accept = request.headers.get("accept", "")
        if "text/html" in accept and "json" not in accept:
            return HTMLResponse(
                f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(self.display_name)}'
                f'</title><link rel="alternate" type="{ACTIVITY_JSON}" href="{html.escape(note["id"])}">'
                f"</head><body><article>{note['content']}</article></body></html>"
            )
        return _ActivityJSON(note)

    async def _activity(self, request: Request) -> Response:
        create = self._stored_create(str(request.path_params["oid"]))
        if create is None:
            return JSONResponse({"error": "no such activity"}, status_code=404)
        return _ActivityJSON(create)

    async def _media(self, request: Request) -> Response:
        sha = str(request.path_params["sha256"]).lower()
        with self._sessions() as session:
            row = session.get(ApMedia, sha)
            if row is None:
                return JSONResponse({"error": "no such media"}, status_code=404)
            data, content_type = row.data, row.content_type
        return Response(
            data,
            media_type=content_type,
            headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{sha}"'},
        )

    async def _tag(self, request: Request) -> Response:
        tag = str(request.path_params["tag"]).casefold()
        href = self.tag_url(tag)
        with self._sessions() as session:
            rows = session.scalars(
                select(ApActivity).where(ApActivity.public).order_by(ApActivity.seq.desc())
            ).all()
            items = [
                row.activity["object"]["id"]
                for row in rows
                if any(t.get("href") == href for t in row.activity["object"].get("tag", []))
            ]
        return _ActivityJSON(
            {
                "@context": AS_CONTEXT,
                "id": href,
                "type": "OrderedCollection",
                "totalItems": len(items),
                "orderedItems": items,
            }
        )

    async def _inbox(self, request: Request) -> Response:
        """Verify the sender's signature, then follow, unfollow, or ignore what was sent."""
        declared = request.headers.get("content-length", "0")
        if (
            not (declared.isascii() and declared.isdigit())
            or len(declared) > 12
            or int(declared) > _MAX_INBOX_BYTES
        ):
            return JSONResponse({"error": f"body larger than {_MAX_INBOX_BYTES} bytes"}, status_code=413)
        received = bytearray()
        async for chunk in request.stream():
            received += chunk
            if len(received) > _MAX_INBOX_BYTES:
                return JSONResponse({"error": f"body larger than {_MAX_INBOX_BYTES} bytes"}, status_code=413)
        body = bytes(received)
        try:
            sender = await self._verify(request, body)
        except VerificationError as exc:
            log.info("inbox refused a request: %s (%s)", exc.message, exc.failure)
            return JSONResponse({"error": exc.message, "failure": exc.failure}, status_code=401)
        try:
            activity = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
            return JSONResponse({"error": "the body is not an activity"}, status_code=400)
        if _id_of(activity.get("actor")) != sender.id:
            return JSONResponse(
                {"error": f"the activity's actor is not the signer {sender.id}", "failure": "bad_signature"},
                status_code=401,
            )
        kind = activity["type"]
        if kind == "Follow":
            return self._on_follow(activity, sender)
        if kind == "Undo":
            self._on_undo(activity, sender)
        if kind in {"Like", "Announce"}:
            self._on_reaction(activity, sender)
        if kind == "Create":
            self._on_note(activity, sender)
        if kind == "Delete":
            self._on_delete(activity, sender)
        if kind == "Create" and self.on_mention is not None:
            mention = self._mention(activity.get("object"), sender)
            if mention is not None:
                try:
                    self.on_mention(mention)
                except ProximaError as exc:  # refused (rate limited, too long...): the sender still gets 202
                    log.info("mention %s from %s not taken: %s", mention.origin_id, sender.id, exc)
        return JSONResponse({"status": "accepted"}, status_code=202)

    def _mention(self, note: object, sender: _RemoteActor) -> Mention | None:
        """A Note that replies to one of ours or mentions our actor, as a question from the fediverse."""
        if not isinstance(note, dict) or note.get("type") != "Note" or not isinstance(note.get("id"), str):
            return None
        if _id_of(note.get("attributedTo", sender.id)) != sender.id:
            return None
        ours = f"{self._base}/ap/objects/"
        replying = isinstance(note.get("inReplyTo"), str) and note["inReplyTo"].startswith(ours)
        raw_tags = note.get("tag")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        mentioning = any(isinstance(t, dict) and t.get("href") == self.actor_id for t in tags)
        if not (replying or mentioning):
            return None
        raw_map = note.get("contentMap")
        content_map: dict[str, Any] = raw_map if isinstance(raw_map, dict) else {}
        lang = next((k for k in content_map if isinstance(k, str)), None)
        content = note.get("content") or (content_map.get(lang) if lang else None)
        if not isinstance(content, str):
            return None
        text = html.unescape(re.sub(r"<[^>]*>", " ", content))
        text = " ".join(w for w in text.split() if not w.startswith("@"))
        return Mention(origin_id=note["id"], author=sender.id, text=text, lang=lang)

    async def _verify(self, request: Request, body: bytes) -> _RemoteActor:
        signature = request.headers.get("signature")
        if not signature:
            raise VerificationError("the request is not signed", failure="missing_signature")
        params = parse_signature_header(signature)
        host = request.headers.get("host", "").lower()
        if host != self.host:
            raise VerificationError(
                f"the request was signed for {host!r}, not {self.host!r}", failure="bad_signature"
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        cached = self._keys.get(params.key_id)
        sender = await self._remote_actor(params.key_id)
        try:
            verify_request(
                "POST", target, request.headers, body, sender.public_key, self._clock(), self._max_skew_s
            )
        except VerificationError as exc:
            if exc.failure != "bad_signature" or sender is not cached:
                raise
            # The actor may have changed its key since it was cached: fetch it once more.
            sender = await self._remote_actor(params.key_id, refresh=True)
            verify_request(
                "POST", target, request.headers, body, sender.public_key, self._clock(), self._max_skew_s
            )
        return sender

    def _on_follow(self, follow: dict[str, Any], sender: _RemoteActor) -> Response:
        if _id_of(follow.get("object")) != self.actor_id:
            return JSONResponse({"status": "ignored: not a follow of this actor"}, status_code=202)
        now = self._clock()
        follow_id = _id_of(follow)
        accept = {
            "@context": AS_CONTEXT,
            "id": f"{self.actor_id}#accepts/{_digest(follow_id or sender.id + _iso(now))}",
            "type": "Accept",
            "actor": self.actor_id,
            "to": [sender.id],
            "object": {k: v for k, v in follow.items() if k in {"id", "type", "actor", "object"}},
        }
        with self._sessions() as session, session.begin():
            follower = session.get(ApFollower, sender.id)
            if follower is None:
                session.add(
                    ApFollower(
                        actor_id=sender.id,
                        inbox=sender.inbox,
                        shared_inbox=sender.shared_inbox,
                        follow_id=follow_id,
                        since=now,
                    )
                )
            else:
                follower.inbox, follower.shared_inbox, follower.follow_id = (
                    sender.inbox,
                    sender.shared_inbox,
                    follow_id,
                )
            row = session.scalar(select(ApActivity).where(ApActivity.activity_id == accept["id"]))
            if row is None:
                row = ApActivity(
                    activity_id=accept["id"],
                    key=None,
                    kind="Accept",
                    public=False,
                    activity=accept,
                    published=now,
                )
                session.add(row)
                session.flush()
            seq = row.seq
            delivery = session.get(ApDelivery, (seq, sender.inbox))
            if delivery is None:
                session.add(
                    ApDelivery(activity_seq=seq, inbox=sender.inbox, state="pending", attempts=0, updated=now)
                )
            else:
                delivery.state = "pending"  # asked again: the first Accept may have been lost
        log.info("%s follows %s", sender.id, self.actor_id)
        return JSONResponse(
            {"status": "accepted"},
            status_code=202,
            background=BackgroundTask(self._deliver, seq, [sender.inbox]),
        )

    # -- reactions -----------------------------------------------------------------------------------

    def _ours(self, object_id: str | None) -> bool:
        return object_id is not None and object_id.startswith(f"{self._base}/ap/objects/")

    def _received_at(self, value: object) -> datetime:
        """A ``published`` time of the sender when it is a sane one, else the time received."""
        now = self._clock()
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return now
            if when.tzinfo is not None and abs((when - now).total_seconds()) < 366 * 86400:
                return when.astimezone(UTC)
        return now

    def _store_reaction(self, row: ApReaction) -> None:
        try:
            with self._sessions() as session, session.begin():
                known = select(ApReaction.seq).where(ApReaction.activity_id == row.activity_id)
                if session.scalar(known) is None:
                    session.add(row)
        except IntegrityError:
            pass  # the same activity delivered twice at once: the first one is kept

    def _on_reaction(self, activity: dict[str, Any], sender: _RemoteActor) -> None:
        """Record a ``Like`` or ``Announce`` of one of our notes (anything else is ignored)."""
        target = _id_of(activity.get("object"))
        activity_id = _id_of(activity)
        if not self._ours(target) or activity_id is None:
            return
        kind = "like" if activity["type"] == "Like" else "announce"
        self._store_reaction(
            ApReaction(
                activity_id=activity_id, kind=kind, actor=sender.id, object=target, note=None, text=None,
                lang=None, tags=[], mentions=[], at=self._received_at(activity.get("published")),
            )
        )  # fmt: skip

    def _on_note(self, create: dict[str, Any], sender: _RemoteActor) -> None:
        """Record a note that replies to ours, mentions our actor, or carries hashtags."""
        note = create.get("object")
        if not isinstance(note, dict) or note.get("type") != "Note" or not isinstance(note.get("id"), str):
            return
        if _id_of(note.get("attributedTo", sender.id)) != sender.id:
            return
        raw_tags = note.get("tag")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        names = [
            str(t["name"]).lstrip("#").casefold()
            for t in tags
            if isinstance(t, dict) and t.get("type") == "Hashtag" and isinstance(t.get("name"), str)
        ]
        mentioned = [
            str(t["href"])
            for t in tags
            if isinstance(t, dict) and t.get("type") == "Mention" and isinstance(t.get("href"), str)
        ]
        reply_to = note.get("inReplyTo") if isinstance(note.get("inReplyTo"), str) else None
        if self._ours(reply_to):
            kind = "reply"
        elif self.actor_id in mentioned:
            kind = "mention"
        elif names:
            kind = "tagged"
        else:
            return
        raw_map = note.get("contentMap")
        content_map: dict[str, Any] = raw_map if isinstance(raw_map, dict) else {}
        lang = next((k for k in content_map if isinstance(k, str)), None)
        content = note.get("content") or (content_map.get(lang) if lang else None)
        text = html.unescape(re.sub(r"<[^>]*>", " ", content)) if isinstance(content, str) else ""
        self._store_reaction(
            ApReaction(
                activity_id=_id_of(create) or note["id"], kind=kind, actor=sender.id,
                object=reply_to if kind == "reply" else None, note=note["id"], text=" ".join(text.split()),
                lang=lang, tags=names, mentions=mentioned, at=self._received_at(note.get("published")),
            )
        )  # fmt: skip

    def _on_delete(self, delete_activity: dict[str, Any], sender: _RemoteActor) -> None:
        """A deleted note no longer counts as a reply or a mention."""
        target = _id_of(delete_activity.get("object"))
        if target is None:
            return
        with self._sessions() as session, session.begin():
            session.execute(
                delete(ApReaction).where(ApReaction.note == target, ApReaction.actor == sender.id)
            )

    def reactions(
        self, after: int = 0, *, kinds: Iterable[str] = REACTION_KINDS, limit: int = 1000
    ) -> list[Reaction]:
        """Stored reactions with ``seq`` above ``after``, oldest first, at most ``limit``."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ApReaction)
                .where(ApReaction.seq > after, ApReaction.kind.in_(list(kinds)))
                .order_by(ApReaction.seq)
                .limit(limit)
            ).all()
            return [
                Reaction(
                    seq=r.seq, kind=r.kind, actor=r.actor, object=r.object, note=r.note, text=r.text,
                    lang=r.lang, tags=tuple(r.tags or ()), mentions=tuple(r.mentions or ()), at=r.at,
                )
                for r in rows
            ]  # fmt: skip

    def reaction_counts(self, notes: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per note of ours in ``notes`` that is stored: likes, announces and replies received."""
        wanted = list(dict.fromkeys(notes))
        with self._sessions() as session:
            stored = {
                str(row.activity["object"]["id"])
                for row in session.scalars(select(ApActivity).where(ApActivity.kind == "Create"))
            }
            counts: dict[str, dict[str, int]] = {
                n: {"like": 0, "announce": 0, "reply": 0} for n in wanted if n in stored
            }
            rows = session.execute(
                select(ApReaction.object, ApReaction.kind, func.count())
                .where(ApReaction.object.in_(list(counts)))
                .group_by(ApReaction.object, ApReaction.kind)
            ).all()
        for obj, kind, n in rows:
            if obj is not None and kind in counts[obj]:
                counts[obj][kind] = int(n)
        return counts

    def follower_count(self) -> int:
        """How many actors follow the mission now."""
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(ApFollower)) or 0

    def _on_undo(self, undo: dict[str, Any], sender: _RemoteActor) -> None:
        undone = _id_of(undo.get("object"))
        if undone is not None:
            with self._sessions() as session, session.begin():
                removed = session.execute(
                    delete(ApReaction).where(
                        ApReaction.activity_id == undone,
                        ApReaction.actor == sender.id,
                        ApReaction.kind.in_(("like", "announce")),
                    )
                )
            if getattr(removed, "rowcount", 0):
                return
        inner = undo.get("object")
        if isinstance(inner, dict):
            if inner.get("type") != "Follow" or _id_of(inner.get("actor")) != sender.id:
                return
            if _id_of(inner.get("object")) not in {None, self.actor_id}:
                return
        elif not isinstance(inner, str):
            return
        with self._sessions() as session, session.begin():
            follower = session.get(ApFollower, sender.id)
            if follower is None:
                return
            if isinstance(inner, str) and follower.follow_id not in {None, inner}:
                return
            session.execute(delete(ApFollower).where(ApFollower.actor_id == sender.id))
        log.info("%s no longer follows %s", sender.id, self.actor_id)


def _image_size(media: MediaFile) -> tuple[int, int] | None:
    if not media.content_type.startswith("image/"):
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(media.data)) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # an unreadable image is still served, only without its size
    return int(width), int(height)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("proxima")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
