"""The shipped Alembic migrations build exactly the schema the models declare, and run twice safely."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from proxima.ground.db import Base, make_engine, upgrade
from proxima.migrations import load_tables

if TYPE_CHECKING:
    from pathlib import Path


def test_upgrade_matches_the_models(tmp_path: Path) -> None:
    load_tables()
    engine = make_engine(f"sqlite:///{tmp_path / 'ground.db'}")
    upgrade(engine)
    upgrade(engine)  # already at head: nothing to do, nothing lost
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"posts", "accounts", "questions", "atom_entries", "ap_followers", "alembic_version"} <= tables
