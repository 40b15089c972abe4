"""Regions on the Earth (country outlines) and when a ground track flies over them.

Pure and vectorized: outlines come in as GeoJSON text or dicts (the runtime loads the shipped Natural
Earth file), points as numpy arrays of latitude/longitude in degrees, a ground track as a callable of
times (float64 Unix seconds UTC). Edges are straight lines in longitude/latitude, as Natural Earth draws
them; a ring may cross the antimeridian (consecutive vertices about 360° apart in longitude) or wrap
around a pole (Antarctica), and both are handled.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import LocalError

__all__ = [
    "Overflight",
    "Region",
    "RegionError",
    "RegionSet",
    "Track",
    "overflights",
    "parse_regions_geojson",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Track = Callable[[FloatArray], tuple[ArrayLike, ArrayLike]]
"""A ground track: times (float64 Unix seconds UTC, 1-D) to (latitude_deg, longitude_deg) arrays."""

# Points per chunk times edges per ring bounds the size of the point-by-edge temporary arrays.
_CHUNK_CELLS = 2_000_000


class RegionError(LocalError, ValueError):
    """A region is unknown, its outline is malformed, or an overflight search was asked wrongly."""


@dataclass(frozen=True, eq=False)
class _Ring:
    """One closed ring made planar: longitudes unwrapped, a pole-encircling ring closed via the pole."""

    x: FloatArray
    y: FloatArray
    slope: FloatArray  # dx/dy of each edge (0 for horizontal edges, which never straddle a latitude)
    xmin: float
    xmax: float
    ymin: float
    ymax: float

    @classmethod
    def build(cls, points: Sequence[Sequence[float]], where: str) -> _Ring:
        """Unwrap longitudes so no edge jumps by more than 180°, and close a polar ring via its pole."""
        try:
            array = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RegionError(f"{where}: a ring is not a list of [lon, lat] pairs") from exc
        if array.ndim != 2 or array.shape[1] < 2 or array.shape[0] < 3:
            raise RegionError(f"{where}: a ring needs at least 3 [lon, lat] points")
        lon, lat = array[:, 0], array[:, 1]
        if not (np.all(np.isfinite(array[:, :2])) and np.all(np.abs(lat) <= 90.0)):
            raise RegionError(f"{where}: a ring has a non-finite coordinate or a latitude beyond ±90°")
        if lon[0] != lon[-1] or lat[0] != lat[-1]:
            lon, lat = np.append(lon, lon[0]), np.append(lat, lat[0])
        step = np.diff(lon)
        step -= 360.0 * np.round(step / 360.0)
        x = lon[0] + np.concatenate(([0.0], np.cumsum(step)))
        y = lat.copy()
        turn = x[-1] - x[0]
        if abs(turn) > 180.0:
            # The ring goes once around a pole: close it along the pole on the side where it lies.
            pole = -90.0 if float(np.mean(lat)) < 0.0 else 90.0
            x = np.concatenate((x, [x[-1], x[0], x[0]]))
            y = np.concatenate((y, [pole, pole, y[0]]))
        dx, dy = np.diff(x), np.diff(y)
        slope = np.divide(dx, dy, out=np.zeros_like(dx), where=dy != 0.0)
        return cls(x, y, slope, float(x.min()), float(x.max()), float(y.min()), float(y.max()))

    def contains(self, lon: FloatArray, lat: FloatArray) -> BoolArray:
        """Even-odd rule for points with longitudes in [-180, 180), tried at lon - 360, lon, lon + 360."""
        inside = np.zeros(lon.shape, dtype=np.bool_)
        for shift in (-360.0, 0.0, 360.0):
            xs = lon + shift
            candidates = np.flatnonzero(
                (xs >= self.xmin) & (xs <= self.xmax) & (lat >= self.ymin) & (lat <= self.ymax)
            )
            if candidates.size:
                inside[candidates] |= self._crossings_odd(xs[candidates], lat[candidates])
        return inside

    def _crossings_odd(self, px: FloatArray, py: FloatArray) -> BoolArray:
        """Ray casting towards +x, points by edges in chunks so the temporaries stay small."""
        x1, y1, y2 = self.x[:-1], self.y[:-1], self.y[1:]
        chunk = max(1, _CHUNK_CELLS // x1.size)
        out = np.empty(px.shape, dtype=np.bool_)
        for start in range(0, px.size, chunk):
            cx = px[start : start + chunk, None]
            cy = py[start : start + chunk, None]
            straddles = (y1 > cy) != (y2 > cy)
            crossing_x = x1 + (cy - y1) * self.slope
            out[start : start + chunk] = np.count_nonzero(straddles & (cx < crossing_x), axis=1) % 2 == 1
        return out


@dataclass(frozen=True, eq=False)
class _Polygon:
    """An exterior ring and its holes (lakes, enclaves such as Lesotho in South Africa)."""

    exterior: _Ring
    holes: tuple[_Ring, ...]

    def contains(self, lon: FloatArray, lat: FloatArray) -> BoolArray:
        """Inside the exterior and in no hole; holes are only tested for points still inside."""
        inside = self.exterior.contains(lon, lat)
        for hole in self.holes:
            candidates = np.flatnonzero(inside)
            if not candidates.size:
                break
            inside[candidates] &= ~hole.contains(lon[candidates], lat[candidates])
        return inside


def _as_points(lat_deg: ArrayLike, lon_deg: ArrayLike) -> tuple[FloatArray, FloatArray, tuple[int, ...]]:
    """Validate and flatten latitudes/longitudes; longitudes wrapped into [-180, 180)."""
    try:
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        lat, lon = np.broadcast_arrays(lat, lon)
    except (TypeError, ValueError) as exc:
        raise RegionError(f"latitudes and longitudes must be numbers of matching shapes: {exc}") from exc
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise RegionError("latitudes and longitudes must be finite")
    if np.any(np.abs(lat) > 90.0):
        raise RegionError(f"latitude out of range [-90, 90]: {float(lat[np.abs(lat) > 90.0].flat[0])!r}")
    shape = lat.shape
    flat_lon = np.mod(lon.ravel() + 180.0, 360.0) - 180.0
    return lat.ravel().copy(), flat_lon, shape


@dataclass(frozen=True, eq=False)
class Region:
    """A named area of the Earth: a multipolygon (each polygon an exterior ring and holes).

    ``polygons`` keeps the rings as given, GeoJSON order: ``[[ring, hole, ...], ...]`` with each ring a
    sequence of ``(lon_deg, lat_deg)``. Build one with :meth:`from_polygons`.
    """

    code: str
    name: str
    aliases: tuple[str, ...]
    polygons: tuple[tuple[tuple[tuple[float, float], ...], ...], ...]
    _prepared: tuple[_Polygon, ...] = field(repr=False)
    bbox: tuple[float, float, float, float] = field(repr=False)
    """(west, south, east, north) of the prepared rings; east may exceed 180 across the antimeridian."""

    @classmethod
    def from_polygons(
        cls,
        code: str,
        name: str,
        polygons: Sequence[Sequence[Sequence[Sequence[float]]]],
        aliases: Iterable[str] = (),
    ) -> Region:
        """Build a region from GeoJSON-ordered MultiPolygon coordinates ``[[[lon, lat], ...], ...]``."""
        where = f"region {code!r}"
        if not code or not name:
            raise RegionError(f"{where}: a region needs a code and a name")
        prepared: list[_Polygon] = []
        kept: list[tuple[tuple[tuple[float, float], ...], ...]] = []
        if not isinstance(polygons, Sequence) or not polygons:
            raise RegionError(f"{where}: no polygons")
        for polygon in polygons:
            if not isinstance(polygon, Sequence) or not polygon:
                raise RegionError(f"{where}: a polygon has no rings")
            rings = [_Ring.build(ring, where) for ring in polygon]
            prepared.append(_Polygon(rings[0], tuple(rings[1:])))
            kept.append(tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in polygon))
        exteriors = [p.exterior for p in prepared]
        bbox = (
            min(r.xmin for r in exteriors),
            min(r.ymin for r in exteriors),
            max(r.xmax for r in exteriors),
            max(r.ymax for r in exteriors),
        )
        return cls(code, name, tuple(aliases), tuple(kept), tuple(prepared), bbox)

    def contains(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> BoolArray:
        """Whether each point (degrees; any longitude convention) lies inside; same shape as the input."""
        lat, lon, shape = _as_points(lat_deg, lon_deg)
        inside = np.zeros(lat.shape, dtype=np.bool_)
        for polygon in self._prepared:
            rest = np.flatnonzero(~inside)
            if not rest.size:
                break
            inside[rest] = polygon.contains(lon[rest], lat[rest])
        return inside.reshape(shape)


def _fold(text: str) -> str:
    """Lookup form of a name: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


class RegionSet(Mapping[str, Region]):
    """Regions keyed by code; :meth:`find` also accepts names and aliases, case-insensitively."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self._by_code: dict[str, Region] = {}
        self._by_key: dict[str, Region] = {}
        for region in regions:
            if region.code.upper() in self._by_code:
                raise RegionError(f"two regions have the code {region.code!r}")
            self._by_code[region.code.upper()] = region
        # Codes first, then names, then aliases: an alias never hides a code or a name.
        for region in self._by_code.values():
            self._by_key.setdefault(_fold(region.code), region)
        for region in self._by_code.values():
            self._by_key.setdefault(_fold(region.name), region)
        for region in self._by_code.values():
            for alias in region.aliases:
                self._by_key.setdefault(_fold(alias), region)

    def __getitem__(self, code: str) -> Region:
        return self._by_code[code.upper()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def find(self, key: str) -> Region:
        """The region whose code, name or alias is ``key`` (case-insensitive); else a RegionError
        naming the closest matches."""
        region = self._by_key.get(_fold(key))
        if region is not None:
            return region
        labels = {_fold(r.name): r.name for r in self._by_code.values()}
        labels.update({_fold(a): a for r in self._by_code.values() for a in r.aliases})
        close = difflib.get_close_matches(_fold(key), list(labels), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(labels[c]) for c in close)}?" if close else ""
        raise RegionError(
            f"unknown region {key!r}{hint} (give an ISO 3166-1 alpha-2 code such as 'FR', or an English name)"
        )


_CODE_KEYS = ("code", "ISO_A2_EH", "ISO_A2", "iso_a2")
_NAME_KEYS = ("name", "NAME", "ADMIN", "NAME_EN")


def parse_regions_geojson(source: str | bytes | Mapping[str, Any]) -> RegionSet:
    """Regions from a GeoJSON FeatureCollection of Polygon/MultiPolygon features (text or parsed).

    The code comes from the ``code`` property (or Natural Earth's ``ISO_A2_EH``/``ISO_A2``, or the
    feature id), the name from ``name`` (or ``NAME``/``ADMIN``); ``aliases`` is an optional list.
    """
    if isinstance(source, str | bytes):
        try:
            document = json.loads(source)
        except ValueError as exc:
            raise RegionError(f"region outlines are not valid JSON: {exc}") from exc
    else:
        document = source
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        raise RegionError("region outlines must be a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise RegionError("region outlines: 'features' must be a list")
    regions = []
    for number, feature in enumerate(features):
        if not isinstance(feature, Mapping):
            raise RegionError(f"region outlines: feature {number} is not an object")
        properties = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        if not isinstance(properties, Mapping) or not isinstance(geometry, Mapping):
            raise RegionError(f"region outlines: feature {number} has malformed properties or geometry")
        code = next((str(properties[k]) for k in _CODE_KEYS if properties.get(k) not in (None, "-99")), None)
        code = code or (str(feature["id"]) if feature.get("id") is not None else None)
        name = next((str(properties[k]) for k in _NAME_KEYS if properties.get(k)), code)
        if code is None or name is None:
            raise RegionError(f"region outlines: feature {number} has neither a code nor a name")
        kind: Any = geometry.get("type")
        coordinates: Any = geometry.get("coordinates")
        if kind == "Polygon":
            coordinates = [coordinates]
        elif kind != "MultiPolygon":
            raise RegionError(f"region outlines: feature {code!r} is a {kind!r}, not a (Multi)Polygon")
        aliases = properties.get("aliases") or []
        regions.append(Region.from_polygons(code, name, coordinates, aliases=[str(a) for a in aliases]))
    return RegionSet(regions)


class Overflight(NamedTuple):
    """One stay of the ground track inside a region (times float64 Unix seconds UTC, angles degrees).

    ``open_at_start``/``open_at_end`` say the track was already inside at ``t0`` or still inside at
    ``t1``: the window was cut there, and ``enter_unix``/``leave_unix`` are ``t0``/``t1``.
    """

    enter_unix: float
    leave_unix: float
    duration_s: float
    enter_lat_deg: float
    enter_lon_deg: float
    leave_lat_deg: float
    leave_lon_deg: float
    open_at_start: bool
    open_at_end: bool


def _track_inside(
    track: Track, region: Region, times: FloatArray
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Evaluate the track at ``times``, check its shapes, and say which points are inside."""
    lat_raw, lon_raw = track(times)
    lat = np.asarray(lat_raw, dtype=np.float64)
    lon = np.asarray(lon_raw, dtype=np.float64)
    if lat.shape != times.shape or lon.shape != times.shape:
        raise RegionError(
            f"the track returned arrays of shapes {lat.shape} and {lon.shape} for {times.shape[0]} times"
        )
    return region.contains(lat, lon), lat, lon


def overflights(
    track: Track,
    region: Region,
    t0_unix: float,
    t1_unix: float,
    *,
    step_s: float = 5.0,
    tolerance_s: float = 0.05,
) -> list[Overflight]:
    """When the ground track is over ``region`` between ``t0_unix`` and ``t1_unix``.

    The track is sampled every ``step_s`` seconds (at most) and each change between samples is refined
    by vectorized bisection until its bracket is under ``tolerance_s``; the reported time is the
    bracket's middle, so the error is under ``tolerance_s / 2``. A stay shorter than ``step_s`` that
    falls between two samples can be missed: lower ``step_s`` for small regions (the ISS moves about
    7 km/s over the ground). Windows come back in time order and never overlap.
    """
    t0, t1 = float(t0_unix), float(t1_unix)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise RegionError(f"overflight search needs finite times with t1 > t0, got t0={t0!r}, t1={t1!r}")
    if not (math.isfinite(step_s) and step_s > 0.0):
        raise RegionError(f"step_s must be a positive number of seconds, got {step_s!r}")
    if not (math.isfinite(tolerance_s) and tolerance_s > 0.0):
        raise RegionError(f"tolerance_s must be a positive number of seconds, got {tolerance_s!r}")
    count = max(2, math.ceil((t1 - t0) / step_s) + 1)
    times = np.linspace(t0, t1, count, dtype=np.float64)
    inside, _, _ = _track_inside(track, region, times)
    change = np.flatnonzero(inside[1:] != inside[:-1])
    low, high = times[change].copy(), times[change + 1].copy()
    inside_low = inside[change]
    widest = float(np.max(high - low)) if change.size else 0.0
    halvings = min(64, math.ceil(math.log2(widest / tolerance_s)) + 1) if widest >= tolerance_s else 0
    for _ in range(halvings):
        middle = 0.5 * (low + high)
        inside_middle, _, _ = _track_inside(track, region, middle)
        same = inside_middle == inside_low
        low = np.where(same, middle, low)
        high = np.where(same, high, middle)
    crossings = 0.5 * (low + high)
    entering = ~inside_low
    enters: list[float] = crossings[entering].tolist()
    leaves: list[float] = crossings[~entering].tolist()
    open_start, open_end = bool(inside[0]), bool(inside[-1])
    if open_start:
        enters.insert(0, t0)
    if open_end:
        leaves.append(t1)
    if len(enters) != len(leaves):  # cannot happen: changes alternate between samples
        raise RegionError("internal error: unmatched region entries and exits")
    if not enters:
        return []
    ends = np.array(enters + leaves, dtype=np.float64)
    _, lat, lon = _track_inside(track, region, ends)
    lon = np.mod(lon + 180.0, 360.0) - 180.0
    n = len(enters)
    return [
        Overflight(
            enter_unix=enters[i],
            leave_unix=leaves[i],
            duration_s=leaves[i] - enters[i],
            enter_lat_deg=float(lat[i]),
            enter_lon_deg=float(lon[i]),
            leave_lat_deg=float(lat[n + i]),
            leave_lon_deg=float(lon[n + i]),
            open_at_start=open_start and i == 0,
            open_at_end=open_end and i == n - 1,
        )
        for i in range(n)
    ]
