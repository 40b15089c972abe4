"""Alembic environment: the ground service's metadata, on the connection the caller passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from proxima.ground.db import Base
from proxima.migrations import load_tables

load_tables()
config = context.config
connection = config.attributes.get("connection")


def _render_item(kind: str, obj: object, _ctx: object) -> str | bool:
    """Render the ground's own column type by its imported name (the template imports it)."""
    if kind == "type" and type(obj).__name__ == "UTCDateTime":
        return "UTCDateTime()"
    return False


def _run(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x or the ini file) to migrate a ground database")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
