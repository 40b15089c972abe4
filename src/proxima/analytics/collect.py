"""Collectors: what each network says of the mission's audience, posts and mentions, as samples.

One collector per channel, each async (the synchronous SDKs run in :func:`asyncio.to_thread`),
each told the time ``now`` instead of reading a clock, so the samples it returns carry exactly
the moment the caller decided on:

* :meth:`Collector.followers` samples the mission's account (and the tracked accounts the
  network can look up);
* :meth:`Collector.posts` samples the counters of the mission's published messages; a message
  the network no longer has is skipped, logged, and listed in :attr:`Collector.skipped`;
* :meth:`Collector.mentions` returns what the public wrote since a cursor, and the next cursor
  (an opaque string the caller stores and passes back).

:class:`MastodonCollector` uses ``Mastodon.py`` (the account, statuses, hashtag timelines and
mention notifications), :class:`BlueskyCollector` the ``atproto`` SDK (``getProfile``,
``getPosts``, ``searchPosts``), :class:`ActivityPubCollector` what the mission's own actor
received at its inbox (followers, likes, boosts, replies, mentions). Every failure of a network
is a :class:`~proxima.errors.ChannelError` naming the channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
from atproto import AsyncClient  # type: ignore[import-untyped]
from atproto_client.exceptions import RequestErrorBase  # type: ignore[import-untyped]
from atproto_client.request import AsyncRequest  # type: ignore[import-untyped]
from atproto_core.exceptions import AtProtocolError  # type: ignore[import-untyped]
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
)
from sqlalchemy.exc import SQLAlchemyError

from proxima.analytics.classify import Classifier, Tracking
from proxima.analytics.model import FollowerSample, Mention, PostSample
from proxima.errors import ChannelError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from proxima.ground.channels.activitypub import ActivityPubChannel

__all__ = [
    "ActivityPubCollector",
    "BlueskyCollector",
    "Collector",
    "MastodonCollector",
    "PublishedMessage",
    "Tracking",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_PAGE = 40
_MAX_PAGES = 50
"""Pages read per source and collection: a backlog larger than this is read at the next one."""
_BSKY_BATCH = 25


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    """One message the mission published on a channel, whose counters are to be sampled."""

    channel: str
    remote_id: str
    post_id: str | None
    published_at: datetime
    tags: tuple[str, ...] = ()
    lang: str | None = None


class Collector(Protocol):
    """What the analytics scheduler asks of each channel."""

    @property
    def channel(self) -> str:
        """The channel's name, as the samples carry it."""
        ...

    @property
    def skipped(self) -> tuple[str, ...]:
        """The messages the last :meth:`posts` could not find (deleted, unknown)."""
        ...

    async def followers(self, now: datetime) -> list[FollowerSample]:
        """The mission's account and the tracked accounts known to the network, at ``now``."""
        ...

    async def posts(self, messages: Sequence[PublishedMessage], now: datetime) -> list[PostSample]:
        """The counters of ``messages`` at ``now``; those the network lacks are skipped."""
        ...

    async def mentions(
        self, tracking: Tracking, cursor: str | None, now: datetime
    ) -> tuple[list[Mention], str | None]:
        """Mentions since ``cursor`` (everything reachable when None), and the next cursor."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _own_replies(parents: Iterable[tuple[str, object]]) -> dict[str, int]:
    """How many of our own messages answer each of our messages (a post's thread): not engagement."""
    pairs = list(parents)
    ours = {message for message, _ in pairs}
    counts: dict[str, int] = {}
    for _, parent in pairs:
        if parent is not None and str(parent) in ours:
            counts[str(parent)] = counts.get(str(parent), 0) + 1
    return counts


def _reply_parent(view: Any) -> str | None:
    """The at:// URI a post view's record answers, if any."""
    reply = getattr(getattr(view, "record", None), "reply", None)
    parent = getattr(reply, "parent", None)
    uri = getattr(parent, "uri", None)
    return str(uri) if uri else None


def _with_account(tracking: Tracking, account: str) -> Tracking:
    """``tracking`` plus the mission's own account: a message naming it is always a mention."""
    if any(a.casefold() == account.casefold() for a in tracking.accounts):
        return tracking
    return Tracking(accounts=(*tracking.accounts, account), tags=tracking.tags, keywords=tracking.keywords)


def _load_cursor(channel: str, cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(f"channel {channel!r}: listening cursor {cursor!r} is not one this collector made")
    return value


# -- Mastodon ----------------------------------------------------------------------------------


class MastodonCollector:
    """Samples one Mastodon account through ``Mastodon.py``.

    ``tracked_accounts`` are other accounts (``user@instance``) whose followers are sampled too
    (share of voice); they must be known to the instance. Listening reads the hashtag timeline
    of every tracked tag and the account's ``mention`` notifications; the cursor keeps the
    newest id seen per source, and the next collection pages forward from it (``min_id``).
    """

    def __init__(
        self,
        channel: str,
        base_url: str,
        access_token: str,
        classifier: Classifier,
        *,
        tracked_accounts: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"channel {channel!r}: base_url {base_url!r} is not an http(s) URL")
        if not access_token:
            raise ConfigError(f"channel {channel!r}: access_token is empty")
        self._channel = channel
        self._host = (urlsplit(base_url).hostname or "").casefold()
        self._classifier = classifier
        self._tracked = tuple(tracked_accounts)
        self._api = Mastodon(
            access_token=access_token,
            api_base_url=base_url.rstrip("/"),
            request_timeout=timeout,
            ratelimit_method="throw",
            mastodon_version="4.0.0",
            version_check_mode="none",
            user_agent="proxima-analytics",
        )
        self._me: dict[str, Any] | None = None
        self._skipped: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        """The channel's name."""
        return self._channel

    @property
    def skipped(self) -> tuple[str, ...]:
        """Status ids the last :meth:`posts` did not find."""
        return self._skipped

    def _handle(self, account: dict[str, Any]) -> str:
        acct = str(account["acct"])
        if "@" in acct:
            return f"@{acct}".casefold()
        # A local account's acct has no domain: the instance's own, as its profile URL shows it.
        host = urlsplit(str(account.get("url") or "")).hostname or self._host
        return f"@{acct}@{host}".casefold()

    async def _account(self) -> dict[str, Any]:
        me: dict[str, Any] = await self._call("reading the account", self._api.account_verify_credentials)
        self._me = me
        return me

    def _sample(self, account: dict[str, Any], now: datetime) -> FollowerSample:
        return FollowerSample(
            channel=self._channel,
            account=self._handle(account),
            at=now,
            followers=int(account.get("followers_count") or 0),
            following=int(account.get("following_count") or 0),
            posts=int(account.get("statuses_count") or 0),
        )

    async def followers(self, now: datetime) -> list[FollowerSample]:
        """The account's followers, following and statuses; then each tracked account's."""
        samples = [self._sample(await self._account(), now)]
        for acct in self._tracked:
            try:
                other = await self._call(f"looking up {acct}", self._api.account_lookup, acct.lstrip("@"))
            except ChannelError as exc:
                if exc.reason != 404:
                    raise
                log.warning("%s: tracked account %s is unknown to the instance", self._channel, acct)
                continue
            samples.append(self._sample(other, now))
        return samples

    async def posts(self, messages: Sequence[PublishedMessage], now: datetime) -> list[PostSample]:
        """Favourites, boosts, replies (and quotes, from Mastodon 4.5) of each status."""
        me = await self._account()
        account, followers = self._handle(me), int(me.get("followers_count") or 0)
        samples: list[PostSample] = []
        skipped: list[str] = []
        statuses: dict[str, dict[str, Any]] = {}
        for message in messages:
            try:
                statuses[message.remote_id] = await self._call(
                    f"reading status {message.remote_id}", self._api.status, message.remote_id
                )
            except ChannelError as exc:
                if exc.reason != 404:
                    raise
                log.warning("%s: status %s is gone; not sampled", self._channel, message.remote_id)
                skipped.append(message.remote_id)
        own = _own_replies((sid, status.get("in_reply_to_id")) for sid, status in statuses.items())
        for message in messages:
            status = statuses.get(message.remote_id)
            if status is None:
                continue
            quotes = status.get("quotes_count")
            samples.append(
                PostSample(
                    channel=self._channel, remote_id=message.remote_id, account=account,
                    published_at=message.published_at, at=now,
                    likes=int(status.get("favourites_count") or 0),
                    reposts=int(status.get("reblogs_count") or 0),
                    replies=max(0, int(status.get("replies_count") or 0) - own.get(message.remote_id, 0)),
                    quotes=int(quotes) if quotes is not None else None,
                    followers=followers, post_id=message.post_id, tags=message.tags, lang=message.lang,
                )
            )  # fmt: skip
        self._skipped = tuple(skipped)
        return samples

    async def _forward(self, what: str, fetch: Callable[..., Any], since: str) -> list[dict[str, Any]]:
        """Every item above id ``since``, paging forward with ``min_id``."""
        items: list[dict[str, Any]] = []
        for _ in range(_MAX_PAGES):
            page = await self._call(what, fetch, min_id=since, limit=_PAGE)
            if not page:
                break
            items.extend(page)
            since = max((str(item["id"]) for item in page), key=int)
            if len(page) < _PAGE:
                break
        return items

    async def mentions(
        self, tracking: Tracking, cursor: str | None, now: datetime
    ) -> tuple[list[Mention], str | None]:
        """Statuses of the tracked hashtags' timelines and those mentioning the account, since ``cursor``."""
        state = _load_cursor(self._channel, cursor)
        me = self._me if self._me is not None else await self._account()
        tracking = _with_account(tracking, self._handle(me))
        found: dict[str, dict[str, Any]] = {}
        for tag in dict.fromkeys(t.lstrip("#").casefold() for t in tracking.tags):
            key = f"tag:{tag}"
            statuses = await self._forward(
                f"reading the #{tag} timeline",
                lambda tag=tag, **kw: self._api.timeline_hashtag(tag, **kw),
                str(state.get(key, "0")),
            )
            for status in statuses:
                found.setdefault(str(status["uri"]), status)
            if statuses:
                state[key] = max((str(s["id"]) for s in statuses), key=int)
        notifications = await self._forward(
            "reading mention notifications",
            lambda **kw: self._api.notifications(types=["mention"], **kw),
            str(state.get("notifications", "0")),
        )
        for notification in notifications:
            mentioning = notification.get("status")
            if notification.get("type") == "mention" and mentioning is not None:
                found.setdefault(str(mentioning["uri"]), mentioning)
        if notifications:
            state["notifications"] = max((str(n["id"]) for n in notifications), key=int)
        mentions = [
            self._mention(status, tracking, now)
            for status in found.values()
            if str(status["account"]["id"]) != str(me["id"]) and status.get("reblog") is None
        ]
        mentions.sort(key=lambda m: (m.at, m.uri))
        return mentions, json.dumps(state, sort_keys=True) if state else cursor

    def _mention(self, status: dict[str, Any], tracking: Tracking, now: datetime) -> Mention:
        quote = status.get("quote")
        quoted = quote.get("quoted_status") if isinstance(quote, dict) else None
        if status.get("in_reply_to_id") is not None:
            kind, parent = "reply", str(status["in_reply_to_id"])
        elif isinstance(quoted, dict):
            kind, parent = "quote", str(quoted["id"])
        else:
            kind, parent = "post", None
        account = status["account"]
        return self._classifier.mention(
            channel=self._channel, uri=str(status["uri"]), author=self._handle(account),
            at=_parse_time(status.get("created_at")) or now,
            text=str(status.get("content") or ""), tracking=tracking, declared_lang=status.get("language"),
            is_html=True, tags=[str(t["name"]) for t in status.get("tags") or ()],
            mentioned=[self._handle(m) for m in status.get("mentions") or ()],
            author_followers=account.get("followers_count"), kind=kind, in_reply_to=parent,  # type: ignore[arg-type]
            url=status.get("url"), likes=int(status.get("favourites_count") or 0),
            reposts=int(status.get("reblogs_count") or 0), replies=int(status.get("replies_count") or 0),
        )  # fmt: skip

    async def close(self) -> None:
        """Close the HTTP session."""
        await asyncio.to_thread(self._api.session.close)

    async def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one ``Mastodon.py`` call in a thread; map its errors to :class:`ChannelError`."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except MastodonRatelimitError as exc:
            raise self._error(f"{what}: HTTP 429 rate limited", True, 429) from exc
        except MastodonNetworkError as exc:
            raise self._error(f"{what}: network error: {exc}", True) from exc
        except MastodonNotFoundError as exc:
            raise self._error(f"{what}: HTTP 404 not found", False, 404) from exc
        except MastodonAPIError as exc:
            args = exc.args
            if len(args) >= 2 and isinstance(args[1], int):
                status = args[1]
                detail = " ".join(str(a) for a in args[2:] if a)
                raise self._error(
                    f"{what}: HTTP {status} {detail}".rstrip(), status >= 500 or status in {408, 429}, status
                ) from exc
            raise self._error(f"{what}: unreadable answer: {exc}", True) from exc
        except MastodonError as exc:
            raise self._error(f"{what}: {exc}", False) from exc

    def _error(self, message: str, transient: bool, status: int | None = None) -> ChannelError:
        return ChannelError(message, channel=self._channel, transient=transient, status=status)


# -- Bluesky -----------------------------------------------------------------------------------


class BlueskyCollector:
    """Samples one AT Protocol account through its PDS (which proxies the AppView queries).

    Listening searches (``app.bsky.feed.searchPosts``) ``#tag`` for each tracked tag, each
    keyword, and each tracked account's handle. The cursor keeps the newest post time seen and
    the posts seen at that very time (``since`` is inclusive).
    """

    def __init__(
        self,
        channel: str,
        base_url: str,
        handle: str,
        password: str,
        classifier: Classifier,
        *,
        tracked_accounts: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"channel {channel!r}: base_url {base_url!r} is not an http(s) URL")
        self._channel = channel
        self._base = base_url.rstrip("/")
        self._identifier = handle
        self._password = password
        self._classifier = classifier
        self._tracked = tuple(tracked_accounts)
        self._client = AsyncClient(base_url=self._base, request=AsyncRequest(timeout=timeout))
        self._did = ""
        self._handle = handle.casefold()
        self._logged_in = False
        self._skipped: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        """The channel's name."""
        return self._channel

    @property
    def skipped(self) -> tuple[str, ...]:
        """at:// URIs the last :meth:`posts` did not find."""
        return self._skipped

    async def _login(self) -> None:
        if self._logged_in:
            return
        await self._call(
            "logging in", self._client.login, self._identifier, self._password, fetch_bsky_profile=False
        )
        session = self._client._session
        self._did, self._handle = str(session.did), str(session.handle).casefold()
        self._logged_in = True

    async def _profile(self) -> Any:
        get_profile = self._client.app.bsky.actor.get_profile
        return await self._call("reading the profile", get_profile, {"actor": self._did})

    async def _profiles(self, actors: Sequence[str]) -> list[Any]:
        found: list[Any] = []
        unique = list(dict.fromkeys(actors))
        for start in range(0, len(unique), _BSKY_BATCH):
            batch = unique[start : start + _BSKY_BATCH]
            answer = await self._call(
                "reading profiles", self._client.app.bsky.actor.get_profiles, {"actors": batch}
            )
            found.extend(answer.profiles)
        return found

    def _sample(self, profile: Any, now: datetime) -> FollowerSample:
        return FollowerSample(
            channel=self._channel, account=str(profile.handle).casefold(), at=now,
            followers=int(profile.followers_count or 0), following=profile.follows_count,
            posts=profile.posts_count,
        )  # fmt: skip

    async def followers(self, now: datetime) -> list[FollowerSample]:
        """``followersCount`` of the account, then of each tracked account the AppView knows."""
        await self._login()
        me = await self._profile()
        samples = [self._sample(me, now)]
        if self._tracked:
            profiles = await self._profiles(self._tracked)
            known = {str(p.handle).casefold() for p in profiles} | {str(p.did) for p in profiles}
            for actor in self._tracked:
                if actor.casefold() not in known:
                    log.warning("%s: tracked account %s is unknown to the AppView", self._channel, actor)
            samples.extend(self._sample(p, now) for p in profiles)
        return samples

    async def posts(self, messages: Sequence[PublishedMessage], now: datetime) -> list[PostSample]:
        """Likes, reposts, replies and quotes of each post (``getPosts``, 25 at a time)."""
        await self._login()
        me = await self._profile()
        views: dict[str, Any] = {}
        uris = list(dict.fromkeys(m.remote_id for m in messages))
        for start in range(0, len(uris), _BSKY_BATCH):
            batch = uris[start : start + _BSKY_BATCH]
            answer = await self._call("reading posts", self._client.app.bsky.feed.get_posts, {"uris": batch})
            views.update({str(v.uri): v for v in answer.posts})
        samples: list[PostSample] = []
        skipped: list[str] = []
        own = _own_replies((uri, _reply_parent(view)) for uri, view in views.items())
        for message in messages:
            view = views.get(message.remote_id)
            if view is None:
                log.warning("%s: post %s is gone; not sampled", self._channel, message.remote_id)
                skipped.append(message.remote_id)
                continue
            samples.append(
                PostSample(
                    channel=self._channel, remote_id=message.remote_id, account=self._handle,
                    published_at=message.published_at, at=now, likes=int(view.like_count or 0),
                    reposts=int(view.repost_count or 0),
                    replies=max(0, int(view.reply_count or 0) - own.get(message.remote_id, 0)),
                    quotes=int(view.quote_count or 0), followers=int(me.followers_count or 0),
                    post_id=message.post_id, tags=message.tags, lang=message.lang,
                )
            )  # fmt: skip
        self._skipped = tuple(skipped)
        return samples

    async def _search(self, q: str, since: str | None) -> list[Any]:
        posts: list[Any] = []
        page_cursor: str | None = None
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {"q": q, "limit": 100, "sort": "latest"}
            if since:
                params["since"] = since
            if page_cursor:
                params["cursor"] = page_cursor
            answer = await self._call(f"searching {q!r}", self._client.app.bsky.feed.search_posts, params)
            posts.extend(answer.posts)
            page_cursor = answer.cursor
            if not page_cursor or not answer.posts:
                break
        return posts

    async def mentions(
        self, tracking: Tracking, cursor: str | None, now: datetime
    ) -> tuple[list[Mention], str | None]:
        """Posts with a tracked tag, keyword or handle since ``cursor``, newest time kept as the next."""
        await self._login()
        state = _load_cursor(self._channel, cursor)
        since = state.get("since") if isinstance(state.get("since"), str) else None
        seen = set(state.get("seen") or ())
        tracking = _with_account(tracking, self._handle)
        queries = [
            *(f"#{t.lstrip('#')}" for t in tracking.tags),
            *tracking.keywords,
            *(a.lstrip("@") for a in tracking.accounts),
        ]
        found: dict[str, Any] = {}
        for q in dict.fromkeys(queries):
            for view in await self._search(q, since):
                uri = str(view.uri)
                if uri not in seen and str(view.author.did) != self._did:
                    found.setdefault(uri, view)
        if not found:
            return [], cursor
        profiles = await self._profiles([str(v.author.did) for v in found.values()])
        followers = {str(p.did): p.followers_count for p in profiles}
        mentions = [
            self._mention(view, tracking, followers.get(str(view.author.did)), now) for view in found.values()
        ]
        mentions.sort(key=lambda m: (m.at, m.uri))
        newest = max(m.at for m in mentions)
        stamp = newest.isoformat().replace("+00:00", "Z")
        at_newest = [m.uri for m in mentions if m.at == newest]
        if stamp == since:
            at_newest = sorted(seen | set(at_newest))
        return mentions, json.dumps({"since": stamp, "seen": sorted(at_newest)})

    def _mention(self, view: Any, tracking: Tracking, followers: int | None, now: datetime) -> Mention:
        record = view.record
        tags = list(getattr(record, "tags", None) or ())
        mentioned: list[str] = []
        for facet in getattr(record, "facets", None) or ():
            for feature in facet.features:
                if getattr(feature, "tag", None):
                    tags.append(str(feature.tag))
                if getattr(feature, "did", None) == self._did:
                    mentioned.append(self._handle)
        reply = getattr(record, "reply", None)
        embed = getattr(record, "embed", None)
        quoted = getattr(embed, "record", None)
        quoted = getattr(quoted, "record", quoted)  # recordWithMedia nests the record once more
        if reply is not None:
            kind, parent = "reply", str(reply.parent.uri)
        elif quoted is not None and isinstance(getattr(quoted, "uri", None), str):
            kind, parent = "quote", str(quoted.uri)
        else:
            kind, parent = "post", None
        langs = list(getattr(record, "langs", None) or ())
        rkey = str(view.uri).rsplit("/", 1)[-1]
        return self._classifier.mention(
            channel=self._channel, uri=str(view.uri), author=str(view.author.handle),
            at=_parse_time(getattr(record, "created_at", None)) or _parse_time(view.indexed_at) or now,
            text=str(getattr(record, "text", "") or ""), tracking=tracking,
            declared_lang=langs[0] if langs else None, tags=tags, mentioned=mentioned,
            author_followers=followers, kind=kind, in_reply_to=parent,  # type: ignore[arg-type]
            url=f"https://bsky.app/profile/{view.author.handle}/post/{rkey}",
            likes=int(view.like_count or 0), reposts=int(view.repost_count or 0),
            replies=int(view.reply_count or 0),
        )  # fmt: skip

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.request.close()

    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """Run one XRPC call; map every failure to a :class:`ChannelError`."""
        try:
            return await fn(*args, **kwargs)
        except (AtProtocolError, httpx.HTTPError) as exc:
            response = exc.response if isinstance(exc, RequestErrorBase) else None
            if response is None:
                cause = exc.__cause__ or exc
                raise ChannelError(
                    f"{what}: cannot reach {self._base} ({cause or type(cause).__name__})",
                    channel=self._channel, transient=True,
                ) from exc  # fmt: skip
            status = int(response.status_code)
            if status == 401:
                self._logged_in = False
            raise ChannelError(
                f"{what}: {self._base} answered HTTP {status} {getattr(response, 'content', '')}".rstrip(),
                channel=self._channel, transient=status in (408, 429) or status >= 500, status=status,
            ) from exc  # fmt: skip


# -- ActivityPub -------------------------------------------------------------------------------


class ActivityPubCollector:
    """Samples the mission's own ActivityPub actor from what its inbox received.

    Followers are the actor's followers table; a note's counters are the ``Like``, ``Announce``
    and replies stored for it (quotes and views are not given: None); mentions are the received
    notes that answer ours, name our actor, or carry a tracked hashtag or keyword. The cursor is
    the last reaction's sequence number.
    """

    def __init__(self, channel: ActivityPubChannel, classifier: Classifier) -> None:
        self._ap = channel
        self._classifier = classifier
        self._skipped: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        """The channel's name."""
        return self._ap.name

    @property
    def skipped(self) -> tuple[str, ...]:
        """Note ids the last :meth:`posts` did not find among the actor's notes."""
        return self._skipped

    async def followers(self, now: datetime) -> list[FollowerSample]:
        """How many actors follow the mission (remote accounts cannot be looked up from here)."""
        count = await self._db(self._ap.follower_count)
        return [FollowerSample(channel=self.channel, account=self._ap.actor_id, at=now, followers=count)]

    async def posts(self, messages: Sequence[PublishedMessage], now: datetime) -> list[PostSample]:
        """Likes, boosts and replies received for each of our notes."""
        counts = await self._db(self._ap.reaction_counts, [m.remote_id for m in messages])
        followers = await self._db(self._ap.follower_count)
        samples: list[PostSample] = []
        skipped: list[str] = []
        for message in messages:
            got = counts.get(message.remote_id)
            if got is None:
                log.warning("%s: note %s is not one of ours; not sampled", self.channel, message.remote_id)
                skipped.append(message.remote_id)
                continue
            samples.append(
                PostSample(
                    channel=self.channel, remote_id=message.remote_id, account=self._ap.actor_id,
                    published_at=message.published_at, at=now, likes=got["like"], reposts=got["announce"],
                    replies=got["reply"], followers=followers, post_id=message.post_id, tags=message.tags,
                    lang=message.lang,
                )
            )  # fmt: skip
        self._skipped = tuple(skipped)
        return samples

    async def mentions(
        self, tracking: Tracking, cursor: str | None, now: datetime
    ) -> tuple[list[Mention], str | None]:
        """Replies, mentions and tracked notes received after ``cursor``."""
        if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
            raise ConfigError(f"channel {self.channel!r}: listening cursor {cursor!r} is not a number")
        after = int(cursor or 0)
        tracking = _with_account(tracking, self._ap.actor_id)
        mentions: list[Mention] = []
        while True:
            rows = await self._db(self._ap.reactions, after, kinds=("reply", "mention", "tagged"))
            if not rows:
                break
            for row in rows:
                after = row.seq
                mention = self._classifier.mention(
                    channel=self.channel, uri=row.note or "", author=row.actor, at=row.at,
                    text=row.text or "", tracking=tracking, declared_lang=row.lang, tags=row.tags,
                    mentioned=row.mentions, kind="reply" if row.kind == "reply" else "post",
                    in_reply_to=row.object,
                )  # fmt: skip
                if row.kind != "tagged" or self._classifier.relevant(mention, tracking):
                    mentions.append(mention)
        return mentions, str(after) if after else cursor

    async def close(self) -> None:
        """Nothing to release: the channel owns its connections."""

    async def _db(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise ChannelError(
                f"reading the inbox's records failed: {exc}", channel=self.channel, transient=True
            ) from exc
