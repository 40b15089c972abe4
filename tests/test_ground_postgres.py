"""The ground service on a real PostgreSQL server: migrations, and a post from arrival to publication."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ground_helpers import T0, Ground, jpeg, make_ground
from local_postgres import local_postgres, server_binaries
from proxima.errors import Conflict, Forbidden
from proxima.ground.channels.base import Published
from proxima.ground.db import Base, make_engine
from proxima.migrations import load_tables

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    server_binaries() is None and not __import__("os").environ.get("PROXIMA_TEST_POSTGRES"),
    reason="no PostgreSQL server on this machine (install Debian's postgresql, or set PROXIMA_TEST_POSTGRES)",
)


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    with local_postgres() as url:
        yield url


def test_post_lifecycle_on_postgresql(pg: str, tmp_path: Path) -> None:
    g = make_ground(tmp_path, url=pg)
    load_tables()
    engine = make_engine(pg)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        _lifecycle(g)
    finally:
        engine.dispose()
        g.service.sessions.kw["bind"].dispose()


def _lifecycle(g: Ground) -> None:
    post, signed, parts = g.crew.post(media={"earth.jpg": jpeg()}, part_bytes=300)
    for p in parts[1:]:
        g.service.receive_media_part(p, now=T0)
    g.service.receive_post(signed, source="ipn:1.20", now=T0)
    g.service.receive_media_part(parts[0], now=T0)
    assert g.service.show(post.id)["state"] == "in_review"
    with pytest.raises(Forbidden):
        g.service.approve(post.id, g.crew_account, now=T0)
    g.service.approve(post.id, g.approver, now=T0)
    at = T0 + timedelta(hours=1)
    g.service.schedule(post.id, g.editor, at, now=T0)
    due = g.service.due(at)
    assert len(due) == 2 and g.service.due(at) == []
    for d in due:
        g.service.published(d.id, Published("1", f"https://{d.channel}.example/1"), attempt=d.attempt, now=at)
    info = g.service.show(post.id)
    assert info["state"] == "published"
    assert info["scheduled_at"] == "2026-12-01T09:00:00+00:00"  # aware UTC round trip
    with pytest.raises(Conflict):
        g.service.reject(post.id, g.editor, "too late", now=at)
