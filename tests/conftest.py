"""Refuse to test compiled cores older than their sources (an editable install not rebuilt)."""

from __future__ import annotations

import pytest

from proxima.speedups import stale


def pytest_sessionstart(session: pytest.Session) -> None:
    out_of_date = stale()
    if out_of_date:
        pytest.exit(
            "compiled modules older than their sources: " + ", ".join(out_of_date)
            + "; rebuild them with `pip install -e .`",
            returncode=4,
        )
