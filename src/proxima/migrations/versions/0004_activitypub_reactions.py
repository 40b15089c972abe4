"""Likes, boosts, replies and mentions the ActivityPub actor receives, for analytics.

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from proxima.ground.db import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "ap_reactions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("activity_id", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=1024), nullable=False),
        sa.Column("object", sa.String(length=1024), nullable=True),
        sa.Column("note", sa.String(length=1024), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=32), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("activity_id"),
    )
    with op.batch_alter_table("ap_reactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ap_reactions_object"), ["object"], unique=False)
        batch_op.create_index(batch_op.f("ix_ap_reactions_note"), ["note"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("ap_reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ap_reactions_note"))
        batch_op.drop_index(batch_op.f("ix_ap_reactions_object"))
    op.drop_table("ap_reactions")
