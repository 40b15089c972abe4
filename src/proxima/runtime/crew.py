"""On board: write a post, sign it, hand it to the station's node; read what the ground sent back.

A post is handed to the local node only; the node keeps its bundles until a contact carries them
down, so a post can be written at any time, link or no link. The signed envelope goes first as an
expedited bundle, then each media file in parts as bulk bundles (the node fragments them further
to fit contacts). Acknowledgements (received, approved, published with links...) and public
questions come back up to the crew endpoint; :func:`sync` takes them from the node and keeps them
in a small SQLite log beside the crew's key, which :func:`status` reads.
"""

from __future__ import annotations

import json
import mimetypes
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from proxima.client import NodeClient, parse_address
from proxima.errors import EnvelopeError, Incomplete, PostError, StoreError
from proxima.outreach.post import MediaRef, Post, encode_media_part, media_parts
from proxima.outreach.provenance import encode_signed_post, sign_post, verification_code
from proxima.outreach.uplink import Ack, CrewQuestion, decode_uplink

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["PART_BYTES", "CrewLog", "Draft", "send_post", "sync"]

PART_BYTES: Final = 256 * 1024
"""Media bytes per media-part bundle."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,
    media TEXT NOT NULL, code TEXT NOT NULL, bundles INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    post_id TEXT NOT NULL, state TEXT NOT NULL, at_ms INTEGER NOT NULL, links TEXT NOT NULL, note TEXT,
    UNIQUE (post_id, state, at_ms)
);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY, text TEXT NOT NULL, lang TEXT NOT NULL, asked_ms INTEGER NOT NULL, name TEXT
);
"""


@dataclass(frozen=True, slots=True)
class Draft:
    """What the crew member wrote: text per language, media files with alt text, tags, channels."""

    text: Mapping[str, str]
    media: Sequence[Path] = ()
    alt: Mapping[str, str] | None = None
    """Alt text per language, for every media file."""
    hashtags: Sequence[str] = ()
    campaign: str | None = None
    channels: Sequence[str] = ()
    reply_to: str | None = None


class CrewLog:
    """The crew's own record of posts sent and of what came back up (a SQLite file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the crew log: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def add_post(self, post: Post, code: str, bundles: int) -> None:
        """Record a post handed to the node."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO posts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    post.id,
                    post.created_ms,
                    post.author,
                    json.dumps(dict(post.text), ensure_ascii=False),
                    json.dumps([m.name for m in post.media]),
                    code,
                    bundles,
                ),
            )

    def add(self, item: Ack | CrewQuestion) -> None:
        """Record an acknowledgement or a question (a second copy of the same is ignored)."""
        with self._db:
            if isinstance(item, Ack):
                self._db.execute(
                    "INSERT OR IGNORE INTO acks VALUES (?, ?, ?, ?, ?)",
                    (
                        item.post_id,
                        item.state,
                        item.at_ms,
                        json.dumps([list(p) for p in item.links]),
                        item.note,
                    ),
                )
            else:
                self._db.execute(
                    "INSERT OR IGNORE INTO questions VALUES (?, ?, ?, ?, ?)",
                    (item.id, item.text, item.lang, item.asked_ms, item.name),
                )

    def status(self) -> list[dict[str, Any]]:
        """Every post sent, newest first, with its latest state, its links and its history."""
        out: list[dict[str, Any]] = []
        rows = self._db.execute(
            "SELECT id, created_ms, author, text, media, code, bundles FROM posts"
        ).fetchall()
        for pid, created, author, text, media, code, bundles in sorted(rows, key=lambda r: -r[1]):
            acks = self._db.execute(
                "SELECT state, at_ms, links, note FROM acks WHERE post_id = ? ORDER BY at_ms, rowid", (pid,)
            ).fetchall()
            links: dict[str, str] = {}
            for _, _, pairs, _ in acks:
                for channel, url in json.loads(pairs):
                    links.setdefault(channel, url)
            out.append(
                {
                    "id": pid,
                    "created_ms": created,
                    "author": author,
                    "text": json.loads(text),
                    "media": json.loads(media),
                    "code": code,
                    "bundles": bundles,
                    "state": acks[-1][0] if acks else "sent",
                    "links": links,
                    "history": [{"state": s, "at_ms": t, "note": n} for s, t, _, n in acks],
                }
            )
        return out

    def questions(self) -> list[dict[str, Any]]:
        """Public questions sent up by the ground team, oldest first."""
        rows = self._db.execute(
            "SELECT id, text, lang, asked_ms, name FROM questions ORDER BY asked_ms"
        ).fetchall()
        return [{"id": i, "text": t, "lang": la, "asked_ms": a, "name": n} for i, t, la, a, n in rows]


def _content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None or guessed.split("/", 1)[0] not in ("image", "video", "audio"):
        raise PostError(
            f"{path.name}: not a photo, video or audio file (type {guessed or 'unknown'})", field="media"
        )
    return guessed


def build_post(
    draft: Draft, *, author: str, created_ms: int, post_id: str | None = None
) -> tuple[Post, dict[str, bytes]]:
    """The post a draft makes, and its media bytes by name (files read here)."""
    files: dict[str, bytes] = {}
    refs: list[MediaRef] = []
    for path in draft.media:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PostError(f"{path}: cannot read: {exc.strerror or exc}", field="media") from exc
        if path.name in files:
            raise PostError(f"two media files are named {path.name}", field="media")
        files[path.name] = data
        refs.append(MediaRef.for_bytes(path.name, _content_type(path), data, dict(draft.alt or {})))
    post = Post(
        id=post_id or str(uuid.uuid4()),
        author=author,
        created_ms=created_ms,
        text=dict(draft.text),
        hashtags=list(draft.hashtags),
        campaign=draft.campaign,
        channels=list(draft.channels),
        media=refs,
        reply_to=draft.reply_to,
    )
    return post, files


async def send_post(
    draft: Draft,
    *,
    key: Ed25519PrivateKey,
    author: str,
    created_ms: int,
    node: str,
    posts_endpoint: str,
    media_endpoint: str,
    source: str | None,
    log: CrewLog,
    part_bytes: int = PART_BYTES,
    lifetime_s: float = 7 * 86400.0,
) -> tuple[Post, int]:
    """Sign the draft and hand it to the node; returns the post and how many bundles it took."""
    post, files = build_post(draft, author=author, created_ms=created_ms)
    signed = sign_post(post, key)
    parts = [
        encode_media_part(p)
        for name, data in files.items()
        for p in media_parts(post, name, data, max_part_bytes=part_bytes)
    ]
    host, port = parse_address(node)
    client = await NodeClient.connect(host, port)
    try:
        await client.send(
            posts_endpoint, encode_signed_post(signed), klass="expedited", lifetime=lifetime_s, source=source
        )
        if parts:
            await client.send_many(
                [(media_endpoint, p) for p in parts], klass="bulk", lifetime=lifetime_s, source=source
            )
    finally:
        await client.close()
    log.add_post(post, verification_code(signed), 1 + len(parts))
    return post, 1 + len(parts)


async def sync(*, node: str, endpoint: str, log: CrewLog, timeout: float = 0.5) -> tuple[int, list[str]]:
    """Take every acknowledgement and question waiting at the crew endpoint into the log.

    Returns how many were taken, and a line for each bundle that could not be read.
    """
    host, port = parse_address(node)
    client = await NodeClient.connect(host, port)
    taken, bad = 0, []
    try:
        await client.register(endpoint)
        for bundle in await client.recv(endpoint, count=0, timeout=timeout):
            try:
                log.add(decode_uplink(bundle.payload))
                taken += 1
            except (EnvelopeError, Incomplete) as exc:
                bad.append(f"bundle from {bundle.source}: {exc}")
    finally:
        await client.close()
    return taken, bad
