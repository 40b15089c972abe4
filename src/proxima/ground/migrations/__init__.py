"""Alembic migrations of the ground database (run by :func:`proxima.ground.db.upgrade`)."""
