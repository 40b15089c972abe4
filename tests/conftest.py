"""Refuse to test compiled cores older than their sources (an editable install not rebuilt),
or compiled modules left from a build that no longer makes them."""

from __future__ import annotations

import pytest

from proxima.speedups import leftovers, stale


def pytest_sessionstart(session: pytest.Session) -> None:
    out_of_date = stale()
    if out_of_date:
        pytest.exit(
            "compiled modules older than their sources: " + ", ".join(out_of_date)
            + "; rebuild them with `pip install -e .`",
            returncode=4,
        )
    left = leftovers()
    if left:
        pytest.exit(
            "compiled modules no longer built, in place of their sources: "
            + ", ".join(str(path) for path in left) + "; delete them",
            returncode=4,
        )
