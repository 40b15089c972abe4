"""Proxima: a crew posts to social networks from orbit over a delay-tolerant network."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
