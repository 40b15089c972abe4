"""Proxima: a crew posts to social networks from orbit over a delay-tolerant network."""

from __future__ import annotations

import os

if os.environ.get("PROXIMA_PURE_PYTHON") == "1":
    from proxima.speedups import prefer_sources

    prefer_sources()

__version__ = "0.1.0"
__all__ = ["__version__"]
