"""Tables of the ground service's posts: versions, media, audit log, deliveries, slots, uplink queue.

Accounts, questions and each channel's own tables live beside their code, on the same
:class:`~proxima.ground.db.Base`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from proxima.ground.db import Base

__all__ = [
    "AuditEntry",
    "Blob",
    "Delivery",
    "MediaFileRow",
    "PostRow",
    "PostVersion",
    "Refusal",
    "Slot",
    "Uplink",
]


class PostRow(Base):
    """A crew post as received: the signed envelope, where it stands, when it goes out."""

    __tablename__ = "posts"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    author: Mapped[str] = mapped_column(String(64), index=True)
    signer: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    received_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(32), index=True)
    campaign: Mapped[str | None] = mapped_column(String(100), index=True)
    reply_to: Mapped[str | None] = mapped_column(String(128))
    scheduled_at: Mapped[datetime | None] = mapped_column(index=True)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    source: Mapped[str | None] = mapped_column(String(256))
    """The node endpoint the post came from, where acknowledgements go back."""

    versions: Mapped[list[PostVersion]] = relationship(
        back_populates="post", order_by="PostVersion.number", cascade="all, delete-orphan"
    )
    media: Mapped[list[MediaFileRow]] = relationship(
        back_populates="post", order_by="MediaFileRow.position", cascade="all, delete-orphan"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", order_by="Delivery.channel", cascade="all, delete-orphan"
    )


class PostVersion(Base):
    """One version of a post's words: 1 is the crew's, each edit adds one."""

    __tablename__ = "post_versions"
    __table_args__ = (UniqueConstraint("post_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    number: Mapped[int]
    text: Mapped[dict[str, Any]]
    hashtags: Mapped[list[Any]]
    channels: Mapped[list[Any]]
    alt: Mapped[dict[str, Any]]
    """Alt text per media name, then per language."""
    editor: Mapped[str | None] = mapped_column(String(64))
    """None for the crew's original."""
    created_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)

    post: Mapped[PostRow] = relationship(back_populates="versions")


class MediaFileRow(Base):
    """A media file the post lists: what was signed, and how much of it has arrived."""

    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("post_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)

    post: Mapped[PostRow] = relationship(back_populates="media")


class Blob(Base):
    """A media file's bytes as they arrive in parts, by SHA-256 (parts may come before their post)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    ranges: Mapped[list[Any]]
    """Byte ranges received so far, merged and sorted: [[start, end], ...]."""
    state: Mapped[str] = mapped_column(String(16), default="partial")
    """partial, complete (hash checked), or refused (the bytes are not the signed file)."""
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    """Who did what to which post, when, and what changed."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[str | None] = mapped_column(String(128), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[str | None] = mapped_column(String(32))
    after: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class Delivery(Base):
    """One post on one channel: tries, the next one, and where it was published."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "channel"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(Text)
    remote_ids: Mapped[list[Any] | None]
    """Every message the channel wrote (one per language, thread parts): what analytics samples."""
    url: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]

    post: Mapped[PostRow] = relationship(back_populates="deliveries")


class Slot(Base):
    """A recurring publication slot on the editorial calendar: a channel, a weekday, a local time."""

    __tablename__ = "slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    weekday: Mapped[int | None]
    """0 = Monday ... 6 = Sunday; None for every day."""
    time: Mapped[str] = mapped_column(String(5))
    """Local time of day, HH:MM."""
    tz: Mapped[str] = mapped_column(String(64))
    campaign: Mapped[str | None] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(200))


class Uplink(Base):
    """A message waiting to go up to the crew as a bundle (acknowledgements, questions)."""

    __tablename__ = "uplink"

    id: Mapped[int] = mapped_column(primary_key=True)
    destination: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(index=True)


class Refusal(Base):
    """Something that came down and was refused (bad signature, doctored media...), with the reason."""

    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    what: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[str | None] = mapped_column(String(128))
    failure: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
