"""Alembic migrations of the ground database: every table of the ground service and the web app.

:func:`proxima.ground.db.upgrade` runs them; :func:`load_tables` makes every table known to the
metadata (for Alembic's comparisons and ``autogenerate``).
"""

from __future__ import annotations


def load_tables() -> None:
    """Import every module that declares tables on :class:`proxima.ground.db.Base`."""
    import proxima.ground.accounts
    import proxima.ground.channels.activitypub
    import proxima.ground.channels.atom
    import proxima.ground.models
    import proxima.ground.questions
    import proxima.web.alerts  # noqa: F401
