"""What every publishing channel shares: the post as handed to a channel, limits, and text layout.

A channel adapter turns an :class:`Outgoing` post into messages on its network and answers with
:class:`Published` (the network's id and a public link). It must be *idempotent by key*: calling
``publish`` twice with the same :attr:`Outgoing.key` (a retry after a timeout whose first try did
reach the network) leaves one publication, not two. Each adapter does it the way its network
allows (an ``Idempotency-Key`` header, a record key derived from the post, an object id the
receivers deduplicate on).

Layout is pure and shared: :func:`messages` writes one message series per language, with the
hashtags that the text does not already carry and the verification link, and cuts text longer than
the channel allows into a numbered thread at word boundaries.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

__all__ = [
    "Channel",
    "Limits",
    "MediaFile",
    "Outgoing",
    "Published",
    "graphemes",
    "messages",
    "split_thread",
]


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One media file as a channel receives it (already fitted to the channel's limits)."""

    name: str
    content_type: str
    data: bytes
    alt: Mapping[str, str] = field(default_factory=dict)
    """Alt text per language tag."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A reviewed post, ready for one channel.

    ``key`` is stable across retries (the post id, plus its version when an edit must appear as
    a new publication); ``text`` maps language tags to text in the order they are published;
    ``reply_to`` is this channel's id of the message the post answers (a public question that
    came from this channel), if any.
    """

    key: str
    author: str
    text: Mapping[str, str]
    created: datetime
    hashtags: Sequence[str] = ()
    media: Sequence[MediaFile] = ()
    verify_url: str | None = None
    reply_to: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """Where the post now is: the network's id of its first message, a public link, every id."""

    remote_id: str
    url: str
    ids: tuple[str, ...] = ()


def graphemes(text: str) -> int:
    """Approximate user-perceived characters: code points minus combining marks (Bluesky counts these)."""
    return sum(1 for ch in text if not unicodedata.combining(ch) and ch != "\u200d")


@dataclass(frozen=True, slots=True)
class Limits:
    """What a channel accepts per message, and how far ahead it can schedule."""

    max_chars: int
    max_media: int
    max_media_bytes: int
    media_types: frozenset[str]
    max_alt_chars: int = 1500
    max_image_bytes: int | None = None
    """Bytes of one image when images have a lower cap than other media (Mastodon: 16 MB)."""
    threads: bool = True
    """Long text continues in replies; otherwise it is cut and ends with an ellipsis."""
    lead_time_s: float = 0.0
    """A post scheduled on this channel must be at least this far in the future (Mastodon: 300 s)."""
    max_scheduled: int | None = None
    """At most this many posts may be scheduled ahead on the channel (Mastodon: 300)."""
    max_per_day: int | None = None
    """At most this many scheduled for one UTC day (Mastodon: 25)."""
    count: Callable[[str], int] = len
    """How the network counts characters."""
    link_chars: int | None = None
    """Characters a link counts for, whatever its length (Mastodon: 23)."""


class Channel(Protocol):
    """A publishing channel: a name, limits, and an idempotent ``publish``."""

    @property
    def name(self) -> str:
        """The channel's name as posts list it (``mastodon``, ``bluesky``, ``activitypub``...)."""
        ...

    @property
    def limits(self) -> Limits:
        """What one message may hold."""
        ...

    async def publish(self, out: Outgoing) -> Published:
        """Publish ``out``; raise :class:`~proxima.errors.ChannelError` on failure."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _measure(text: str, limits: Limits) -> int:
    n = limits.count(text)
    if limits.link_chars is None:
        return n
    for word in text.split():
        if word.startswith(("https://", "http://")):
            n += limits.link_chars - limits.count(word)
    return n


def _cut(words: list[str], budget: int, limits: Limits) -> tuple[str, list[str]]:
    """The longest prefix of ``words`` fitting ``budget``; a single too-long word is split."""
    line = ""
    for i, word in enumerate(words):
        candidate = word if not line else f"{line} {word}"
        if _measure(candidate, limits) <= budget:
            line = candidate
            continue
        if line:
            return line, words[i:]
        head = word
        while head and _measure(head, limits) > budget:
            head = head[:-1]
        head = head or word[:1]
        return head, [word[len(head) :], *words[i + 1 :]]
    return line, []


def split_thread(text: str, limits: Limits, tail: str = "") -> list[str]:
    """Cut ``text`` into messages of at most ``limits.max_chars``; ``tail`` ends the last one.

    With threads, every message of a series of several ends with `` (i/n)``; without, the text is
    cut with ``…`` and only one message is returned. Paragraph breaks inside a message are kept.
    """
    text = text.strip()
    suffix = f"\n\n{tail}" if tail else ""
    whole = text + suffix
    if _measure(whole, limits) <= limits.max_chars:
        return [whole]
    if not limits.threads:
        words = text.split(" ")
        line, _ = _cut(words, limits.max_chars - _measure(suffix, limits) - 1, limits)
        return [f"{line.rstrip()}…{suffix}"]
    for guess in (9, 99, 999):
        marker = len(f" ({guess}/{guess})")
        pieces: list[str] = []
        words = text.split(" ")
        while words:
            budget = limits.max_chars - marker
            line, words = _cut(words, budget, limits)
            pieces.append(line.rstrip())
        if _measure(suffix, limits) + _measure(pieces[-1], limits) + marker > limits.max_chars:
            pieces.append("")
        if len(pieces) <= guess:
            n = len(pieces)
            out = [f"{p} ({i}/{n})" if p else f"({i}/{n})" for i, p in enumerate(pieces, 1)]
            out[-1] += suffix
            return out
    raise ValueError("text too long to thread")  # pragma: no cover - 999 messages of text


def messages(
    out: Outgoing, limits: Limits, languages: Sequence[str] | None = None
) -> list[tuple[str, list[str]]]:
    """The messages to publish: per language (``languages`` or all of the post's), a thread.

    Hashtags the text does not already contain are appended; the verification link ends the
    last message of each language.
    """
    result: list[tuple[str, list[str]]] = []
    for lang, text in out.text.items():
        if languages is not None and lang not in languages:
            continue
        folded = text.casefold()
        tags = " ".join(f"#{t}" for t in out.hashtags if f"#{t.casefold()}" not in folded)
        body = f"{text.rstrip()}\n\n{tags}" if tags else text
        result.append((lang, split_thread(body, limits, out.verify_url or "")))
    return result
