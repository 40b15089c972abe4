"""Mastodon: a post becomes one thread per language, with its media and their alt text.

The adapter talks to one account of one instance through ``Mastodon.py``, which is synchronous:
every call runs in a worker thread (:func:`asyncio.to_thread`) so the event loop never blocks.

Exactly once: every status is posted with ``Idempotency-Key: {key}:{lang}:{i}``. Mastodon keeps
the key (per account, for about an hour) and answers a repeated request with the status it
already created, so a retry after a timeout or a partial failure finds the messages already
published instead of duplicating them. Media are uploaded again on such a retry (an upload has no
idempotency key); the extra, never attached uploads are removed by the instance's own cleanup.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, TypeVar

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
)

from proxima.errors import ChannelError, ConfigError
from proxima.ground.channels.base import Limits, Published, graphemes, messages

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from proxima.ground.channels.base import MediaFile, Outgoing

__all__ = ["IMAGE_LIMIT", "MASTODON_LIMITS", "VIDEO_LIMIT", "MastodonChannel"]

_T = TypeVar("_T")

IMAGE_LIMIT = 16 * 1024 * 1024
"""Largest image Mastodon accepts (bytes)."""
VIDEO_LIMIT = 99 * 1024 * 1024
"""Largest video or audio file Mastodon accepts (bytes)."""

_IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif", "image/avif"}
)
_VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime", "video/ogg"})
_AUDIO_TYPES = frozenset(
    {
        "audio/mpeg", "audio/mp3", "audio/ogg", "audio/vorbis", "audio/wav", "audio/wave",
        "audio/x-wav", "audio/vnd.wave", "audio/flac", "audio/aac", "audio/mp4", "audio/m4a",
        "audio/x-m4a", "audio/webm", "audio/3gpp",
    }
)  # fmt: skip

MASTODON_LIMITS = Limits(
    max_chars=500,
    max_media=4,
    max_media_bytes=VIDEO_LIMIT,
    media_types=_IMAGE_TYPES | _VIDEO_TYPES | _AUDIO_TYPES,
    max_alt_chars=1500,
    threads=True,
    lead_time_s=300.0,
    max_scheduled=300,
    max_per_day=25,
    count=graphemes,
    link_chars=23,
)
"""A default Mastodon instance (4.x): 500 characters with any link counted as 23, 4 media of at
most 16 MB (images) or 99 MB (video, audio), alt text up to 1500 characters. ``max_media_bytes``
is the larger of the two sizes: :class:`MastodonChannel` refuses an image above 16 MB itself."""

_VISIBILITIES = ("public", "unlisted", "private", "direct")
_MAX_POLL_INTERVAL = 5.0
# Mastodon.py checks the server version before some calls; naming one up front saves a request
# and selects the asynchronous /api/v2/media upload that every supported Mastodon has.
_ASSUMED_VERSION = "4.0.0"


class MastodonChannel:
    """Publishes to one Mastodon account; see the module docstring for the exactly-once rule.

    ``languages`` restricts which of a post's languages are published here (all by default);
    ``timeout`` bounds each HTTP request, ``processing_timeout`` the wait for an uploaded video
    to be processed, polled every ``poll_interval`` seconds at first, then less often.
    """

    def __init__(
        self,
        api_base_url: str,
        access_token: str,
        *,
        name: str = "mastodon",
        visibility: str = "public",
        languages: Sequence[str] | None = None,
        timeout: float = 30.0,
        processing_timeout: float = 300.0,
        poll_interval: float = 1.0,
    ) -> None:
        if visibility not in _VISIBILITIES:
            raise ConfigError(
                f"channel {name!r}: visibility {visibility!r} is not one of {', '.join(_VISIBILITIES)}"
            )
        if not api_base_url.startswith(("https://", "http://")):
            raise ConfigError(f"channel {name!r}: api_base_url {api_base_url!r} is not an http(s) URL")
        if not access_token:
            raise ConfigError(f"channel {name!r}: access_token is empty")
        if timeout <= 0 or processing_timeout <= 0 or poll_interval <= 0:
            raise ConfigError(f"channel {name!r}: timeouts and poll_interval must be positive")
        self._name = name
        self._visibility = visibility
        self._languages = tuple(languages) if languages is not None else None
        self._processing_timeout = processing_timeout
        self._poll_interval = poll_interval
        self._api = Mastodon(
            access_token=access_token,
            api_base_url=api_base_url.rstrip("/"),
            request_timeout=timeout,
            # A 429 must reach the caller as a transient error, not put a worker thread to sleep.
            ratelimit_method="throw",
            mastodon_version=_ASSUMED_VERSION,
            version_check_mode="created",
            user_agent="proxima-ground",
        )
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        """The channel's name, as errors and posts list it."""
        return self._name

    @property
    def limits(self) -> Limits:
        """What a default Mastodon instance accepts."""
        return MASTODON_LIMITS

    async def publish(self, out: Outgoing) -> Published:
        """Post ``out``: per language, upload the media (alt text in that language), then the thread.

        All messages form one reply chain (first language's thread, then the next...), whose
        first message answers ``out.reply_to`` when set. Raises :class:`ChannelError`.
        """
        if self._closed:
            raise self._error("publishing on a closed channel", transient=False)
        series = messages(out, self.limits, self._languages)
        if not series:
            wanted = ", ".join(self._languages or ()) or "any language"
            raise self._error(f"post {out.key} has no text in {wanted}", transient=False)
        self._check_media(out.media)
        async with self._lock:
            ids: list[str] = []
            first_url = ""
            parent = out.reply_to
            for lang, thread in series:
                media_ids = [await self._upload(media, lang) for media in out.media]
                for i, text in enumerate(thread):
                    what = f"posting the {lang} message {i + 1}/{len(thread)} of {out.key}"
                    status = await self._call(
                        what,
                        self._api.status_post,
                        text,
                        in_reply_to_id=parent,
                        media_ids=media_ids if i == 0 and media_ids else None,
                        visibility=self._visibility,
                        language=lang,
                        idempotency_key=f"{out.key}:{lang}:{i}",
                    )
                    status_id = str(status["id"])
                    if not ids:
                        first_url = str(status.get("url") or status.get("uri") or "")
                    ids.append(status_id)
                    parent = status_id
            return Published(remote_id=ids[0], url=first_url, ids=tuple(ids))

    async def close(self) -> None:
        """Close the HTTP session; ``publish`` refuses afterwards."""
        self._closed = True
        async with self._lock:
            await asyncio.to_thread(self._api.session.close)

    def _check_media(self, media: Sequence[MediaFile]) -> None:
        """Refuse before any upload what the instance would refuse after some of them."""
        limits = self.limits
        if len(media) > limits.max_media:
            raise self._error(f"{len(media)} media files, at most {limits.max_media}", transient=False)
        for item in media:
            if item.content_type not in limits.media_types:
                raise self._error(
                    f"{item.name}: media type {item.content_type} not accepted", transient=False
                )
            most = IMAGE_LIMIT if item.content_type in _IMAGE_TYPES else VIDEO_LIMIT
            if len(item.data) > most:
                raise self._error(
                    f"{item.name}: {len(item.data)} bytes, at most {most} for {item.content_type}",
                    transient=False,
                )

    async def _upload(self, media: MediaFile, lang: str) -> str:
        """Upload ``media`` with its ``lang`` alt text; wait until the instance has processed it."""
        alt = media.alt.get(lang) or next(iter(media.alt.values()), None)
        if alt is not None and len(alt) > self.limits.max_alt_chars:
            alt = alt[: self.limits.max_alt_chars - 1] + "…"
        attachment = await self._call(
            f"uploading {media.name} ({lang})",
            self._api.media_post,
            media.data,
            mime_type=media.content_type,
            description=alt,
            file_name=media.name,
        )
        media_id = str(attachment["id"])
        deadline = time.monotonic() + self._processing_timeout
        delay = self._poll_interval
        # Mastodon answers 202 with a null url while it still transcodes (videos, large images).
        while attachment.get("url") is None:
            if time.monotonic() + delay > deadline:
                raise self._error(
                    f"{media.name} ({lang}) still processing after {self._processing_timeout:g} s",
                    transient=True,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_POLL_INTERVAL)
            attachment = await self._call(
                f"waiting for {media.name} ({lang}) to be processed", self._api.media, media_id
            )
        return media_id

    async def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one ``Mastodon.py`` call in a thread, turning its errors into :class:`ChannelError`."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except MastodonRatelimitError as exc:
            raise self._error(f"{what}: HTTP 429 rate limited ({exc})", transient=True, status=429) from exc
        except MastodonNetworkError as exc:
            raise self._error(f"{what}: network error: {exc}", transient=True) from exc
        except MastodonAPIError as exc:
            raise self._http_error(what, exc) from exc
        except MastodonError as exc:
            raise self._error(f"{what}: {exc}", transient=False) from exc

    def _http_error(self, what: str, exc: MastodonAPIError) -> ChannelError:
        """Map an HTTP error: 408, 429 and 5xx may pass; other 4xx will not."""
        # Mastodon.py raises with args (message, status, reason, error text) for HTTP errors.
        args = exc.args
        if len(args) >= 2 and isinstance(args[1], int):
            status = args[1]
            reason = str(args[2]) if len(args) > 2 and args[2] else ""
            detail = f": {args[3]}" if len(args) > 3 and args[3] else ""
            transient = status >= 500 or status in {408, 429}
            return self._error(f"{what}: HTTP {status} {reason}{detail}".rstrip(), transient, status)
        # A 2xx whose body is not the JSON expected: the request may have been applied or not;
        # a retry is safe (idempotency keys) and may get a proper answer.
        return self._error(f"{what}: unreadable answer: {' '.join(map(str, args))}", transient=True)

    def _error(self, message: str, transient: bool, status: int | None = None) -> ChannelError:
        return ChannelError(message, channel=self._name, transient=transient, status=status)
