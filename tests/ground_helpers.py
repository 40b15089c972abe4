"""Shared makings of the ground tests: a database, crew keys, signed posts and their media parts."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from proxima.ground import accounts
from proxima.ground.channels.base import Limits
from proxima.ground.db import make_engine, session_factory, upgrade
from proxima.ground.service import GroundService, dtn_ms
from proxima.outreach.post import MediaRef, Post, encode_media_part, media_parts
from proxima.outreach.provenance import encode_signed_post, sign_post

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

LIMITS = {
    "atom": Limits(
        max_chars=10_000, max_media=10, max_media_bytes=50_000_000, media_types=frozenset({"image/jpeg"})
    ),
    "mastodon": Limits(
        max_chars=500,
        max_media=4,
        max_media_bytes=16_000_000,
        media_types=frozenset({"image/jpeg", "image/png"}),
        lead_time_s=300,
        max_scheduled=300,
        max_per_day=25,
    ),
}


def jpeg(color: tuple[int, int, int] = (10, 20, 200), size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class Crew:
    """A crew member's key and a way to write signed posts."""

    name: str = "thomas"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def post(
        self,
        text: dict[str, str] | None = None,
        *,
        media: dict[str, bytes] | None = None,
        created: datetime = T0,
        channels: tuple[str, ...] = (),
        hashtags: tuple[str, ...] = ("Proxima",),
        reply_to: str | None = None,
        part_bytes: int = 10_000,
    ) -> tuple[Post, bytes, list[bytes]]:
        """A post, its signed bytes, and its media parts' bytes."""
        media = media or {}
        post = Post(
            id=str(uuid.uuid4()),
            author=self.name,
            created_ms=dtn_ms(created),
            text=text or {"fr": "Bonjour depuis l'ISS", "en": "Hello from the ISS"},
            hashtags=hashtags,
            campaign="Proxima",
            channels=channels,
            media=[
                MediaRef.for_bytes(name, "image/jpeg", data, {"fr": "La Terre", "en": "The Earth"})
                for name, data in media.items()
            ],
            reply_to=reply_to,
        )
        signed = encode_signed_post(sign_post(post, self.key))
        parts = [
            encode_media_part(p)
            for name, data in media.items()
            for p in media_parts(post, name, data, max_part_bytes=part_bytes)
        ]
        return post, signed, parts


@dataclass
class Ground:
    """A ground service on a temporary database, with an editor, an approver and a crew account."""

    service: GroundService
    crew: Crew
    editor: accounts.Account
    approver: accounts.Account
    crew_account: accounts.Account
    path: Path


def make_ground(
    tmp_path: Path, *, channels: dict[str, Limits] | None = None, url: str | None = None
) -> Ground:
    """A fresh ground service with accounts anne (editor), marc (approver), thomas (crew, approver).

    The database is a new SQLite file, or the empty database at ``url``, brought to the newest
    schema by the shipped migrations.
    """
    engine = make_engine(url or f"sqlite:///{tmp_path / 'ground.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    crew = Crew()
    service = GroundService(
        sessions,
        keyring={crew.name: crew.key.public_key()},
        media_dir=tmp_path / "media",
        base_url="https://proxima.example",
        channels=channels or LIMITS,
    )
    with sessions.begin() as s:
        editor = accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=T0)
        approver = accounts.create_account(
            s, "marc", "Marc", "agency", ["approver", "editor"], PASSWORD, now=T0
        )
        crew_account = accounts.create_account(
            s, "thomas", "Thomas", "crew", ["crew", "approver"], PASSWORD, now=T0
        )
    return Ground(service, crew, editor, approver, crew_account, tmp_path)
