"""A webhook channel: each post is POSTed as JSON to a URL, signed per Standard Webhooks.

The receiver (a mission's own website, a partner's newsroom) gets the post's text in every
language, its hashtags, its media described by SHA-256 and size (not the bytes: they are fetched
from the public copies), the verification link and the post it answers. Each request carries the
three headers of the `Standard Webhooks <https://www.standardwebhooks.com/>`_ specification:

* ``webhook-id``: derived from the post's key, the same on every retry, so receivers deduplicate;
* ``webhook-timestamp``: Unix seconds when this attempt was sent;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

Signing and :func:`verify_webhook` are pure (the time is passed in); only
:class:`WebhookChannel` reads the clock, at the moment it sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final

import httpx

from proxima.errors import ChannelError, ConfigError, VerificationError
from proxima.ground.channels.base import Limits, Published

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from proxima.ground.channels.base import Outgoing

__all__ = [
    "EVENT_TYPE",
    "WebhookChannel",
    "decode_secret",
    "payload",
    "sign_webhook",
    "verify_webhook",
    "webhook_id",
]

EVENT_TYPE: Final = "post.published"
"""The ``type`` of every payload this channel sends."""

_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
_TRANSIENT: Final = frozenset({408, 425, 429})

LIMITS: Final = Limits(
    max_chars=100_000,
    max_media=10,
    max_media_bytes=512 * 1024 * 1024,
    media_types=frozenset(
        {
            "image/jpeg",
            "image/png",
            "image/webp",
            "image/gif",
            "image/avif",
            "video/mp4",
            "video/webm",
            "video/quicktime",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg",
            "audio/wav",
            "audio/flac",
        }
    ),
    threads=False,
)
"""Only metadata travels, so the limits are those of a crew post itself."""


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` as Standard Webhooks writes it, or raw bytes."""
    if isinstance(secret, bytes):
        key = secret
    elif secret.startswith(_SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
        except binascii.Error as exc:
            raise ConfigError(f"webhook secret: the part after {_SECRET_PREFIX!r} is not base64") from exc
    else:
        raise ConfigError(f"webhook secret: a text secret starts with {_SECRET_PREFIX!r} (whsec_<base64>)")
    if not key:
        raise ConfigError("webhook secret: empty")
    return key


def webhook_id(key: str) -> str:
    """The ``webhook-id`` of the post with ``key``: stable, so a retried delivery is recognised."""
    digest = hashlib.sha256(key.encode()).digest()[:18]
    return "msg_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_webhook(msg_id: str, timestamp: int, body: bytes, secret: str | bytes) -> str:
    """The ``webhook-signature`` header value for one delivery: ``v1,<base64>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(
    headers: Mapping[str, str], body: bytes, secret: str | bytes, now: float, tolerance_s: float = 300
) -> str:
    """Check a received delivery; return its ``webhook-id`` (for deduplication).

    ``now`` is the receiver's Unix time; a timestamp further than ``tolerance_s`` from it either
    way is refused, so a captured request cannot be replayed later. Raises
    :class:`VerificationError` whose ``failure`` is ``"missing_header"``, ``"bad_timestamp"``,
    ``"stale_timestamp"`` or ``"bad_signature"``.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(h)]
    if missing:
        raise VerificationError(f"webhook: missing header {', '.join(missing)}", failure="missing_header")
    msg_id, stamp = lowered["webhook-id"], lowered["webhook-timestamp"]
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 15:
        raise VerificationError(
            f"webhook: timestamp {stamp[:40]!r} is not Unix seconds", failure="bad_timestamp"
        )
    skew = now - int(stamp)
    if abs(skew) > tolerance_s:
        raise VerificationError(
            f"webhook: timestamp {stamp} is {skew:+.0f} s from now, the tolerance is ±{tolerance_s:g} s",
            failure="stale_timestamp",
        )
    expected = sign_webhook(msg_id, int(stamp), body, secret).encode()
    for candidate in lowered["webhook-signature"].split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise VerificationError(
        f"webhook {msg_id}: no v1 signature matches the body with this secret", failure="bad_signature"
    )


def payload(out: Outgoing) -> dict[str, Any]:
    """The JSON document delivered for ``out`` (media described, not included)."""
    return {
        "type": EVENT_TYPE,
        "data": {
            "key": out.key,
            "author": out.author,
            "title": out.title,
            "languages": list(out.text),
            "text": dict(out.text),
            "hashtags": list(out.hashtags),
            "media": [
                {
                    "name": m.name,
                    "content_type": m.content_type,
                    "size": len(m.data),
                    "sha256": hashlib.sha256(m.data).hexdigest(),
                    "alt": dict(m.alt),
                }
                for m in out.media
            ],
            "verify_url": out.verify_url,
            "reply_to": out.reply_to,
            "created": out.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
    }


class WebhookChannel:
    """POSTs each post to ``url``, signed with ``secret`` (``whsec_<base64>`` or raw bytes).

    ``clock`` gives Unix seconds for the ``webhook-timestamp`` header (the wall clock by default).
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        name: str = "webhook",
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._secret = decode_secret(secret)
        self._name = name
        self._timeout = timeout
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        """The channel's name as posts list it."""
        return self._name

    @property
    def limits(self) -> Limits:
        """What one delivery may hold."""
        return LIMITS

    def _fail(self, message: str, *, transient: bool, status: int | None = None) -> ChannelError:
        return ChannelError(message, channel=self._name, transient=transient, status=status)

    async def publish(self, out: Outgoing) -> Published:
        """Deliver ``out``; 2xx is success, 408/429/5xx and network failures are transient."""
        body = json.dumps(payload(out), ensure_ascii=False, separators=(",", ":")).encode()
        msg_id = webhook_id(out.key)
        stamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(msg_id, stamp, body, self._secret),
        }
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise self._fail(f"POST {self._url} failed: {type(exc).__name__}: {exc}", transient=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            location = response.headers.get("location")
            url = str(response.url.join(location)) if location else self._url
            return Published(remote_id=msg_id, url=url, ids=(msg_id,))
        detail = response.text[:200].strip()
        message = f"POST {self._url} answered {status} {response.reason_phrase}"
        if detail:
            message += f": {detail}"
        raise self._fail(message, transient=status in _TRANSIENT or status >= 500, status=status)

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
