"""Load the country outlines shipped with Proxima (Natural Earth 1:110m) for region overflights."""

from __future__ import annotations

import functools
from importlib import resources

from proxima.orbit.regions import Region, RegionSet, parse_regions_geojson

__all__ = ["COUNTRIES_RESOURCE", "countries", "country"]

COUNTRIES_RESOURCE = ("data", "countries", "countries-110m.geojson")
"""Where the outlines live inside the ``proxima`` package (see the README beside them)."""


@functools.cache
def countries() -> RegionSet:
    """Every country outline, keyed by ISO 3166-1 alpha-2 code; parsed once, then cached."""
    text = resources.files("proxima").joinpath(*COUNTRIES_RESOURCE).read_text(encoding="utf-8")
    return parse_regions_geojson(text)


def country(key: str) -> Region:
    """One country by ISO code or English name (case-insensitive); RegionError lists near matches."""
    return countries().find(key)
