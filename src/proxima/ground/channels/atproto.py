"""The AT Protocol (Bluesky) channel: posts, threads, images with alt text, exactly once.

Each language of a post becomes its own thread of ``app.bsky.feed.post`` records, written to the
account's PDS through the ``atproto`` SDK. Hashtags and links get rich-text facets (byte offsets
into the UTF-8 text), images are uploaded as blobs and embedded in the first post of each thread
with the alt text of that thread's language.

Exactly once: a record's key is not left to the PDS but derived from the post. It must be a TID
(13 base32-sortable characters: microseconds since 1970, then a 10-bit clock id); here the
microseconds are :attr:`Outgoing.created` plus the message's index in its thread, and the clock
id is a hash of ``(key, language)``. A retry therefore looks for exactly the records a first try
may have written (``getRecord``) and only writes those that are missing; the ids returned are
the same. When a key is taken by an unrelated record (a clock-id collision), the next clock id
is tried, deterministically, so a retry follows the same path.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import httpx
from atproto import AsyncClient, models  # type: ignore[import-untyped]
from atproto_client.exceptions import (  # type: ignore[import-untyped]
    LoginRequiredError,
    RequestErrorBase,
)
from atproto_client.request import AsyncRequest  # type: ignore[import-untyped]
from atproto_core.exceptions import AtProtocolError  # type: ignore[import-untyped]

from proxima.errors import ChannelError

from .base import Limits, messages

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .base import MediaFile, Outgoing, Published

__all__ = [
    "LIMITS",
    "BlueskyChannel",
    "Facet",
    "bluesky_length",
    "detect_facets",
    "grapheme_count",
    "record_key",
]

POST = "app.bsky.feed.post"
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_PROBES = 8
"""Clock ids tried for one message before giving up (a collision needs the same microsecond)."""
_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing", "AuthRequired"})


# -- text measure --------------------------------------------------------------------------------


def _pictographic(cp: int) -> bool:
    return (
        0x1F300 <= cp <= 0x1F64F
        or 0x1F680 <= cp <= 0x1F6FF
        or 0x1F900 <= cp <= 0x1FAFF
        or (0x2600 <= cp <= 0x27BF)
    )


def _extends(ch: str) -> bool:
    """Whether ``ch`` continues the previous grapheme cluster (UAX #29 Extend, SpacingMark, ZWJ)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or cp == 0x200D
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    )


def grapheme_count(text: str) -> int:
    """User-perceived characters as Bluesky counts them (UAX #29 extended grapheme clusters).

    Joins what the standard joins in practice (CR LF, combining and spacing marks, variation
    selectors, skin tones, emoji ZWJ sequences, flag pairs); where it is unsure it counts more,
    never fewer, so a message it accepts is never too long for the network.
    """
    n = 0
    prev = ""
    base_pict = False
    after_zwj = False
    ri_open = False
    for ch in text:
        cp = ord(ch)
        if prev == "\r" and ch == "\n":
            pass
        elif prev and _extends(ch) and unicodedata.category(prev) != "Cc":
            after_zwj = cp == 0x200D
            prev = ch
            continue
        elif after_zwj and base_pict and _pictographic(cp):
            pass
        elif 0x1F1E6 <= cp <= 0x1F1FF and ri_open:
            ri_open = False
            prev = ch
            continue
        else:
            n += 1
            base_pict = _pictographic(cp)
            ri_open = 0x1F1E6 <= cp <= 0x1F1FF
        if not 0x1F1E6 <= cp <= 0x1F1FF:
            ri_open = False
        after_zwj = False
        prev = ch
    return n


def bluesky_length(text: str) -> int:
    """A post's size against its limits: 300 graphemes and 3000 UTF-8 bytes, as one number."""
    return max(grapheme_count(text), -(-len(text.encode("utf-8")) // 10))


LIMITS = Limits(
    max_chars=300,
    max_media=4,
    max_media_bytes=1_000_000,
    media_types=frozenset({"image/jpeg", "image/png", "image/webp"}),
    max_alt_chars=2000,
    threads=True,
    count=bluesky_length,
)
"""What one Bluesky post holds."""


# -- facets ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facet:
    """A hashtag (``tag``, without ``#``) or a link (``uri``) at UTF-8 bytes ``[start, end)``."""

    start: int
    end: int
    tag: str | None = None
    uri: str | None = None


_TOKEN = re.compile(r"\S+")
_TAG_STOPS = re.compile("[\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2]")
_LINK_TRAILING = ".,;:!?\"'»…"
_MAX_TAG_GRAPHEMES = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _strip_punctuation(word: str) -> str:
    while word and unicodedata.category(word[-1]).startswith("P"):
        word = word[:-1]
    return word


def _link(token: str) -> str | None:
    scheme = "https://" if token.startswith("https://") else "http://"
    if not token.startswith(scheme):
        return None
    while token and (token[-1] in _LINK_TRAILING or (token[-1] == ")" and "(" not in token)):
        token = token[:-1]
    rest = token[len(scheme) :]
    return token if rest and rest[0] != "/" else None


def _tag(token: str) -> str | None:
    if token[:1] not in ("#", "＃") or token[1:2] == "\ufe0f":
        return None
    tag = _strip_punctuation(_TAG_STOPS.split(token[1:], maxsplit=1)[0])
    if not tag or all(ch.isdigit() or unicodedata.category(ch).startswith("P") for ch in tag):
        return None
    if grapheme_count(tag) > _MAX_TAG_GRAPHEMES or len(tag.encode("utf-8")) > 640:
        return None
    return tag


def detect_facets(text: str) -> list[Facet]:
    """The hashtags and links of ``text`` with their UTF-8 byte ranges, in order.

    A hashtag is ``#`` (or ``＃``) at the start of a whitespace-separated word, followed by a
    word that is not only digits or punctuation, trailing punctuation excluded; a link is a word
    starting with ``http://`` or ``https://``, trailing punctuation and an unbalanced ``)``
    excluded.
    """
    facets: list[Facet] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        start = len(text[: match.start()].encode("utf-8"))
        if (uri := _link(token)) is not None:
            facets.append(Facet(start, start + len(uri.encode("utf-8")), uri=uri))
        elif (tag := _tag(token)) is not None:
            facets.append(Facet(start, start + len(token[0].encode("utf-8") + tag.encode("utf-8")), tag=tag))
    return facets


def _facet_models(text: str) -> list[Any] | None:
    out = []
    for f in detect_facets(text):
        feature = (
            models.AppBskyRichtextFacet.Tag(tag=f.tag)
            if f.tag is not None
            else models.AppBskyRichtextFacet.Link(uri=f.uri)
        )
        index = models.AppBskyRichtextFacet.ByteSlice(byte_start=f.start, byte_end=f.end)
        out.append(models.AppBskyRichtextFacet.Main(features=[feature], index=index))
    return out or None


# -- record keys ----------------------------------------------------------------------------------


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


def record_key(key: str, lang: str, index: int, created: datetime, probe: int = 0) -> str:
    """The TID record key of message ``index`` of the ``lang`` thread of post ``key``.

    Microseconds: ``created`` plus ``index`` (a thread's keys sort in order); clock id: a hash of
    ``(key, lang)``, moved by ``probe`` when that key is taken by another record.
    """
    micros = _micros(created) + index
    if not 0 <= micros < 1 << 53:
        raise ValueError(f"creation time {created.isoformat()} is outside the range of record keys")
    digest = hashlib.sha256(f"{key}\x00{lang}".encode()).digest()
    clock = (int.from_bytes(digest[:2], "big") + probe) % 1024
    n = micros << 10 | clock
    return "".join(_S32[(n >> shift) & 31] for shift in range(60, -1, -5))


def _created_at(created: datetime, index: int) -> str:
    when = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    when = when.astimezone(UTC) + timedelta(microseconds=index)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the channel ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    uri: str
    cid: str

    def model(self) -> Any:
        return models.ComAtprotoRepoStrongRef.Main(uri=self.uri, cid=self.cid)


def _at_uri_parts(uri: str) -> tuple[str, str, str] | None:
    if not uri.startswith("at://"):
        return None
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _fit_alt(alt: str, limit: int) -> str:
    if grapheme_count(alt) <= limit:
        return alt
    # a prefix of n code points never holds more than n graphemes
    return alt[: limit - 1].rstrip() + "…"


def _aspect_ratio(data: bytes) -> Any | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    if width < 1 or height < 1:
        return None
    return models.AppBskyEmbedDefs.AspectRatio(width=width, height=height)


class BlueskyChannel:
    """Publishes to one Bluesky (AT Protocol) account on the PDS at ``pds_url``.

    ``identifier`` is the handle or DID, ``password`` preferably an app password; ``languages``
    limits the languages published (all of a post's by default); ``app_url`` is the web app
    whose post links :class:`Published` carries. The session is created on the first publish,
    refreshed by the SDK before its access token expires, and created again if the PDS rejects it.
    """

    def __init__(
        self,
        pds_url: str,
        identifier: str,
        password: str,
        *,
        name: str = "bluesky",
        languages: Sequence[str] | None = None,
        timeout: float = 30.0,
        app_url: str = "https://bsky.app",
    ) -> None:
        self._name = name
        self._pds_url = pds_url.rstrip("/")
        self._identifier = identifier
        self._password = password
        self._languages = list(languages) if languages is not None else None
        self._app_url = app_url.rstrip("/")
        self._client = AsyncClient(base_url=self._pds_url, request=AsyncRequest(timeout=timeout))
        self._logged_in = False
        self._did = ""
        self._handle = ""

    @property
    def name(self) -> str:
        """The channel's name (``bluesky`` unless configured otherwise)."""
        return self._name

    @property
    def limits(self) -> Limits:
        """300 graphemes, 4 images of at most 1 MB (JPEG, PNG, WebP), alt text up to 2000."""
        return LIMITS

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.request.close()

    # -- publishing ------------------------------------------------------------------------------

    async def publish(self, out: Outgoing) -> Published:
        """Publish every language of ``out`` as its own thread; a retry writes nothing twice."""
        from .base import Published

        threads = messages(out, LIMITS, self._languages)
        if not threads:
            raise self._permanent(f"post {out.key} has no text in the languages {self._languages}")
        self._check_media(out.key, out.media)
        if not 0 <= _micros(out.created) < (1 << 53) - 1000:
            raise self._permanent(f"post {out.key}: creation time {out.created} cannot make a record key")
        await self._login()
        answered = await self._reply_target(out.reply_to) if out.reply_to else None

        ids: list[str] = []
        for lang, texts in threads:
            root, parent = answered if answered is not None else (None, None)
            blobs: list[Any] = []
            for index, text in enumerate(texts):
                embed = out.media if index == 0 else ()
                ref = await self._write_post(out, lang, index, text, root, parent, embed, blobs)
                root = root or ref
                parent = ref
                ids.append(ref.uri)
        first = ids[0].rsplit("/", 1)[-1]
        return Published(
            remote_id=ids[0], url=f"{self._app_url}/profile/{self._handle}/post/{first}", ids=tuple(ids)
        )

    def _check_media(self, key: str, media: Sequence[MediaFile]) -> None:
        if len(media) > LIMITS.max_media:
            raise self._permanent(f"post {key} has {len(media)} images, at most {LIMITS.max_media}")
        for m in media:
            if m.content_type not in LIMITS.media_types:
                raise self._permanent(
                    f"post {key}: image {m.name} is {m.content_type}, not one of "
                    f"{', '.join(sorted(LIMITS.media_types))}"
                )
            if len(m.data) > LIMITS.max_media_bytes:
                raise self._permanent(
                    f"post {key}: image {m.name} has {len(m.data)} bytes, at most {LIMITS.max_media_bytes}"
                )

    async def _write_post(
        self,
        out: Outgoing,
        lang: str,
        index: int,
        text: str,
        root: _Ref | None,
        parent: _Ref | None,
        media: Sequence[MediaFile],
        blobs: list[Any],
    ) -> _Ref:
        """Find message ``index`` of the ``lang`` thread if a first try wrote it, else write it."""
        created_at = _created_at(out.created, index)
        for probe in range(_PROBES):
            rkey = record_key(out.key, lang, index, out.created, probe)
            found = await self._find_post(rkey, text, created_at)
            if found is not None:
                if found.uri:
                    return found
                continue  # the key holds another post: try the next clock id
            if media and not blobs:
                blobs.extend([await self._upload(out.key, m) for m in media])
            record = models.AppBskyFeedPost.Record(
                text=text,
                created_at=created_at,
                langs=[lang],
                facets=_facet_models(text),
                reply=(
                    models.AppBskyFeedPost.ReplyRef(root=root.model(), parent=parent.model())
                    if root is not None and parent is not None
                    else None
                ),
                embed=self._embed(media, blobs, lang) if media else None,
            )
            data = models.ComAtprotoRepoCreateRecord.Data(
                repo=self._did, collection=POST, rkey=rkey, record=record
            )
            what = f"create post {index + 1} of the {lang} thread of {out.key}"
            try:
                created = await self._call(what, partial(self._client.com.atproto.repo.create_record, data))
            except ChannelError as error:
                # The write may have landed with its answer lost (bsky.social answers 500 for an
                # existing key, too): look once more before giving up.
                try:
                    again = await self._find_post(rkey, text, created_at)
                except ChannelError:
                    raise error from None
                if again is not None and again.uri:
                    return again
                raise
            return _Ref(str(created.uri), str(created.cid))
        raise self._permanent(f"post {out.key}: no free record key for message {index + 1} of {lang}")

    async def _find_post(self, rkey: str, text: str, created_at: str) -> _Ref | None:
        """The post at ``rkey`` if it is this message; ``_Ref("", "")`` if it is another; else None."""
        params = models.ComAtprotoRepoGetRecord.Params(repo=self._did, collection=POST, rkey=rkey)
        try:
            got = await self._call(
                f"look up post {rkey}",
                lambda: self._client.com.atproto.repo.get_record(params),
                missing_ok=True,
            )
        except _Missing:
            return None
        value = got.value
        same = getattr(value, "text", None) == text and getattr(value, "created_at", None) == created_at
        return _Ref(str(got.uri), str(got.cid)) if same else _Ref("", "")

    def _embed(self, media: Sequence[MediaFile], blobs: list[Any], lang: str) -> Any:
        images = []
        for m, blob in zip(media, blobs, strict=True):
            alt = m.alt.get(lang) or next(iter(m.alt.values()), "")
            images.append(
                models.AppBskyEmbedImages.Image(
                    alt=_fit_alt(alt, LIMITS.max_alt_chars), image=blob, aspect_ratio=_aspect_ratio(m.data)
                )
            )
        return models.AppBskyEmbedImages.Main(images=images)

    async def _upload(self, key: str, media: MediaFile) -> Any:
        response = await self._call(
            f"upload image {media.name} of {key}",
            # The bytes go as httpx ``content=``: the SDK would pass them as ``data=``, which
            # httpx deprecates (a DeprecationWarning on every upload).
            lambda: self._client.com.atproto.repo.upload_blob(
                None, content=media.data, headers={"Content-Type": media.content_type}
            ),
        )
        return response.blob

    async def _reply_target(self, uri: str) -> tuple[_Ref, _Ref]:
        """The (root, parent) references of a reply to the post at ``uri``."""
        parts = _at_uri_parts(uri)
        if parts is None:
            raise self._permanent(f"the post answered, {uri!r}, is not an at:// URI of a record")
        repo, collection, rkey = parts
        params = models.ComAtprotoRepoGetRecord.Params(repo=repo, collection=collection, rkey=rkey)
        try:
            got = await self._call(
                f"look up the post answered, {uri}",
                lambda: self._client.com.atproto.repo.get_record(params),
                missing_ok=True,
            )
        except _Missing:
            raise self._permanent(f"the post answered, {uri}, does not exist (any more)") from None
        parent = _Ref(str(got.uri), str(got.cid))
        reply = getattr(got.value, "reply", None)
        root = _Ref(str(reply.root.uri), str(reply.root.cid)) if reply is not None else parent
        return root, parent

    # -- session and errors --------------------------------------------------------------------------

    async def _login(self) -> None:
        if self._logged_in:
            return
        try:
            await self._client.login(self._identifier, self._password, fetch_bsky_profile=False)
        except (AtProtocolError, httpx.HTTPError) as exc:
            raise self._error(f"log in as {self._identifier}", exc) from exc
        session = self._client._session
        self._did, self._handle = str(session.did), str(session.handle)
        self._logged_in = True

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]], *, missing_ok: bool = False) -> Any:
        """Run one XRPC call; log in again once if the session was refused; map every failure."""
        for attempt in (1, 2):
            try:
                return await call()
            except (AtProtocolError, httpx.HTTPError) as exc:
                if missing_ok and _error_name(exc) == "RecordNotFound":
                    raise _Missing from exc
                if attempt == 1 and _session_refused(exc):
                    self._logged_in = False
                    await self._login()
                    continue
                raise self._error(what, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _permanent(self, message: str) -> ChannelError:
        return ChannelError(message, channel=self._name, transient=False)

    def _error(self, what: str, exc: BaseException) -> ChannelError:
        """A :class:`ChannelError` saying what failed and whether trying again may help."""
        response = exc.response if isinstance(exc, RequestErrorBase) else None
        if response is None:
            if isinstance(exc, (RequestErrorBase, httpx.HTTPError)):
                cause = exc.__cause__ or exc
                reason = str(cause) or type(cause).__name__
                return ChannelError(
                    f"{what}: cannot reach {self._pds_url} ({reason})", channel=self._name, transient=True
                )
            return ChannelError(f"{what}: {exc or type(exc).__name__}", channel=self._name, transient=False)
        status = int(response.status_code)
        transient = status in (408, 429) or status >= 500
        return ChannelError(
            f"{what}: {self._pds_url} answered {exc}", channel=self._name, transient=transient, status=status
        )


class _Missing(Exception):
    """getRecord answered RecordNotFound (internal control flow)."""


def _error_name(exc: BaseException) -> str | None:
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    content = getattr(response, "content", None)
    return cast("str | None", getattr(content, "error", None))


def _session_refused(exc: BaseException) -> bool:
    """Whether the PDS refused the session (expired, revoked): logging in again may help."""
    if isinstance(exc, LoginRequiredError):
        return True
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    return response is not None and (response.status_code == 401 or _error_name(exc) in _SESSION_ERRORS)
