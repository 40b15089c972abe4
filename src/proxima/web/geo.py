"""Geometry for the public pages: world map, ground track, day and night, sky charts, places.

Pure: values in (element sets, Unix times, outlines, CSV text), data out (points, SVG path strings,
dataclasses); no clock and no file access. Maps use the equirectangular projection in degrees: the
SVG user space is ``x = lon + 180`` (0..360) and ``y = 90 - lat`` (0..180), so a ``viewBox`` of
``0 0 360 180`` shows the whole Earth and clips what lies outside it. Sky charts are polar plots in
a ``viewBox`` of ``-106 -106 212 212``: the zenith at the centre, the horizon on the circle of
radius :data:`SKY_RADIUS`, north up and east to the right (as seen looking up, map-like).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import InvalidInput, OrbitInputError
from proxima.orbit.frames import teme_position_to_itrf, topocentric
from proxima.orbit.passes import compass
from proxima.orbit.propagate import ground_track
from proxima.orbit.sun import sun_direction_itrf

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from proxima.orbit.elements import Elements
    from proxima.orbit.regions import RegionSet

__all__ = [
    "MAP_HEIGHT",
    "MAP_WIDTH",
    "SKY_RADIUS",
    "CountryShape",
    "Gazetteer",
    "Place",
    "SkyChart",
    "SkyMark",
    "country_shapes",
    "look_angles",
    "map_xy",
    "night_path",
    "night_ring",
    "parse_latlon",
    "ring_path",
    "sky_chart",
    "sky_xy",
    "split_antimeridian",
    "subsolar_point",
    "terminator",
    "track_path",
    "track_segments",
]

F64 = NDArray[np.float64]
Segment = list[tuple[float, float]]
"""A run of (lat_deg, lon_deg) points that does not cross the antimeridian."""

MAP_WIDTH: Final = 360.0
MAP_HEIGHT: Final = 180.0
SKY_RADIUS: Final = 90.0
"""Radius of the horizon circle of a sky chart, in SVG units (one unit per degree of elevation)."""


def map_xy(lat_deg: float, lon_deg: float) -> tuple[float, float]:
    """SVG coordinates of a point on the equirectangular map (longitude wrapped into [-180, 180))."""
    lon = (lon_deg + 180.0) % 360.0 - 180.0
    return lon + 180.0, 90.0 - lat_deg


def _num(v: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (keeps the SVG small)."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _polyline(x: F64, y: F64, *, close: bool) -> str:
    head = f"M{_num(float(x[0]))} {_num(float(y[0]))}"
    body = "".join(f"L{_num(float(a))} {_num(float(b))}" for a, b in zip(x[1:], y[1:], strict=True))
    return head + body + ("Z" if close else "")


# --------------------------------------------------------------------------------------------
# rings on the map (countries, night)


def _planar_ring(lon: F64, lat: F64, pole: float | None = None) -> tuple[F64, F64]:
    """Unwrap a ring's longitudes so no edge jumps by more than 180°; close one that winds around a
    pole along that pole (``pole`` ±90, or the side of its mean latitude when not given)."""
    step = np.diff(lon)
    step -= 360.0 * np.round(step / 360.0)
    x = lon[0] + np.concatenate(([0.0], np.cumsum(step)))
    y = lat.copy()
    if abs(x[-1] - x[0]) > 180.0:
        p = pole if pole is not None else (-90.0 if float(np.mean(lat)) < 0.0 else 90.0)
        x = np.concatenate((x, [x[-1], x[0], x[0]]))
        y = np.concatenate((y, [p, p, y[0]]))
    return x, y


def ring_path(lon_deg: ArrayLike, lat_deg: ArrayLike, pole: float | None = None) -> str:
    """SVG path of one closed ring of (lon, lat) vertices on the map.

    A ring that crosses the antimeridian is unwrapped and drawn again shifted by ±360° (the map's
    ``viewBox`` clips the copies), a ring around a pole is closed along that pole (Natural Earth's
    Antarctica, the night side in summer). Returns "" for fewer than 3 vertices.
    """
    lon = np.asarray(lon_deg, dtype=np.float64).ravel()
    lat = np.asarray(lat_deg, dtype=np.float64).ravel()
    if lon.size < 3 or lon.size != lat.size:
        return ""
    x, y = _planar_ring(lon, lat, pole)
    parts = []
    for shift in (-360.0, 0.0, 360.0):
        xs = x + shift
        if float(xs.max()) > -180.0 and float(xs.min()) < 180.0:
            parts.append(_polyline(xs + 180.0, 90.0 - y, close=True))
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class CountryShape:
    """One country on the map: ISO code, English name and its SVG path (even-odd fill for holes)."""

    code: str
    name: str
    path: str


def country_shapes(regions: RegionSet) -> tuple[CountryShape, ...]:
    """SVG paths of every region's outline, sorted by code (compute once and cache: ~180 kB)."""
    out = []
    for code in sorted(regions):
        region = regions[code]
        path = "".join(
            ring_path([p[0] for p in ring], [p[1] for p in ring])
            for polygon in region.polygons
            for ring in polygon
        )
        out.append(CountryShape(region.code, region.name, path))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# ground track


def split_antimeridian(lat_deg: ArrayLike, lon_deg: ArrayLike) -> list[Segment]:
    """Cut a track of (lat, lon) points where it crosses the antimeridian.

    Consecutive longitudes more than 180° apart are taken to cross ±180°; the crossing latitude is
    interpolated linearly and ends one segment (at ±180) and starts the next (at ∓180), so drawn
    segments meet the map's edges instead of streaking across it. NaN points are dropped.
    """
    lat = np.asarray(lat_deg, dtype=np.float64).ravel()
    lon = np.asarray(lon_deg, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise OrbitInputError("track latitudes and longitudes differ in length")
    ok = np.isfinite(lat) & np.isfinite(lon)
    lat, lon = lat[ok], (lon[ok] + 180.0) % 360.0 - 180.0
    segments: list[Segment] = []
    if lat.size == 0:
        return segments
    current: Segment = [(float(lat[0]), float(lon[0]))]
    for i in range(1, lat.size):
        a_lat, a_lon, b_lat, b_lon = float(lat[i - 1]), float(lon[i - 1]), float(lat[i]), float(lon[i])
        if abs(b_lon - a_lon) > 180.0:
            edge = 180.0 if a_lon > 0.0 else -180.0
            b_unwrapped = b_lon + (360.0 if a_lon > 0.0 else -360.0)
            f = (edge - a_lon) / (b_unwrapped - a_lon)
            cross = a_lat + f * (b_lat - a_lat)
            current.append((cross, edge))
            segments.append(current)
            current = [(cross, -edge)]
        current.append((b_lat, b_lon))
    segments.append(current)
    return segments


def track_segments(
    elements: Elements, start_unix: float, *, orbits: float = 3.0, step_s: float = 60.0
) -> tuple[F64, list[Segment]]:
    """Times and antimeridian-split segments of the ground track over the next ``orbits``."""
    t, lat, lon = ground_track(elements, start_unix, orbits=orbits, step_s=step_s)
    return t, split_antimeridian(lat, lon)


def track_path(segments: Iterable[Segment]) -> str:
    """SVG path ("M… L…", one subpath per segment) of track segments on the map."""
    parts = []
    for seg in segments:
        if len(seg) < 2:
            continue
        arr = np.asarray(seg, dtype=np.float64)
        parts.append(_polyline(arr[:, 1] + 180.0, 90.0 - arr[:, 0], close=False))
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# day and night


def subsolar_point(t_unix: float) -> tuple[float, float]:
    """(lat, lon) in degrees where the Sun is at the zenith at ``t_unix`` (geocentric latitude)."""
    d = sun_direction_itrf(np.float64(t_unix))
    return math.degrees(math.asin(float(d[2]))), math.degrees(math.atan2(float(d[1]), float(d[0])))


def _circle(lat0: float, lon0: float, radius_deg: float, n: int) -> tuple[F64, F64]:
    """(lat, lon) of ``n`` points at a great-circle distance from a centre, by bearing 0..360°
    (both ends included, so the ring is closed and its longitudes unwrap to a full turn)."""
    phi0, lam0, d = math.radians(lat0), math.radians(lon0), math.radians(radius_deg)
    theta = np.linspace(0.0, 2.0 * math.pi, n)
    sin_phi = math.sin(phi0) * math.cos(d) + math.cos(phi0) * math.sin(d) * np.cos(theta)
    phi = np.arcsin(np.clip(sin_phi, -1.0, 1.0))
    lam = lam0 + np.arctan2(
        np.sin(theta) * math.sin(d) * math.cos(phi0), math.cos(d) - math.sin(phi0) * sin_phi
    )
    return np.degrees(phi), (np.degrees(lam) + 180.0) % 360.0 - 180.0


def terminator(t_unix: float, n: int = 361) -> tuple[F64, F64]:
    """(lat, lon) of ``n`` points of the day/night line: 90° from the subsolar point (spherical
    Earth, Sun's centre on the horizon, no refraction)."""
    lat_s, lon_s = subsolar_point(t_unix)
    return _circle(lat_s, lon_s, 90.0, n)


def night_ring(t_unix: float, sun_elevation_deg: float = 0.0, n: int = 361) -> tuple[F64, F64, float | None]:
    """The region where the Sun is below ``sun_elevation_deg`` (0 night, -6 end of civil twilight…).

    Returns (lat, lon, pole): a ring around the antisolar point of radius 90° + elevation, and the
    pole (±90) that the ring encloses (None when it encloses neither), for :func:`ring_path`.
    """
    if not -90.0 < sun_elevation_deg < 90.0:
        raise OrbitInputError(f"sun elevation {sun_elevation_deg}° is outside (-90°, 90°)")
    lat_s, lon_s = subsolar_point(t_unix)
    lat_a, lon_a = -lat_s, lon_s + 180.0
    radius = 90.0 + sun_elevation_deg
    lat, lon = _circle(lat_a, lon_a, radius, n)
    pole: float | None = None
    if 90.0 - lat_a < radius:
        pole = 90.0
    elif 90.0 + lat_a < radius:
        pole = -90.0
    return lat, lon, pole


def night_path(t_unix: float, sun_elevation_deg: float = 0.0) -> str:
    """SVG path of the night side (Sun below ``sun_elevation_deg``) at ``t_unix`` on the map."""
    lat, lon, pole = night_ring(t_unix, sun_elevation_deg)
    return ring_path(lon, lat, pole)


# --------------------------------------------------------------------------------------------
# sky charts


def look_angles(
    elements: Elements, lat_deg: float, lon_deg: float, height_km: float, t_unix: ArrayLike
) -> tuple[F64, F64]:
    """Azimuth and elevation (degrees) of the satellite from one observer at 1-D times (SGP4)."""
    from proxima.orbit.propagate import propagate

    t = np.atleast_1d(np.asarray(t_unix, dtype=np.float64))
    track = propagate(elements, t)
    r = teme_position_to_itrf(track.r_teme_km[0], t)
    topo = topocentric(lat_deg, lon_deg, height_km, r)
    return topo.az_deg[0], topo.el_deg[0]


def sky_xy(az_deg: float, el_deg: float) -> tuple[float, float]:
    """Sky-chart SVG coordinates of a direction: radius 90 − elevation, north up, east right."""
    r = SKY_RADIUS * (90.0 - min(90.0, max(0.0, el_deg))) / 90.0
    a = math.radians(az_deg)
    return r * math.sin(a), -r * math.cos(a)


def _sky_path(az: ArrayLike, el: ArrayLike) -> str:
    pts = [sky_xy(float(a), float(e)) for a, e in zip(np.ravel(az), np.ravel(el), strict=True)]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    if len(pts) < 2:
        return ""
    arr = np.asarray(pts)
    return _polyline(arr[:, 0], arr[:, 1], close=False)


@dataclass(frozen=True, slots=True)
class SkyMark:
    """A labelled point of a sky chart: ``kind`` is "start", "max" or "end"."""

    kind: str
    az_deg: float
    el_deg: float
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class SkyChart:
    """A pass drawn on a polar sky chart (SVG data; see the module docstring for the frame).

    ``pass_path`` is the whole pass above the chart's horizon, ``visible_path`` the part where the
    station can be seen, ``marks`` its appearance, highest point and disappearance, ``compass``
    the letters N/E/S/W with their positions, ``rings`` the radii of the 0°, 30° and 60° circles.
    """

    pass_path: str
    visible_path: str
    marks: tuple[SkyMark, ...]
    compass: tuple[tuple[str, float, float], ...]
    rings: tuple[tuple[int, float], ...]


def sky_chart(
    pass_az: ArrayLike,
    pass_el: ArrayLike,
    visible_az: ArrayLike,
    visible_el: ArrayLike,
    marks: Sequence[tuple[str, float, float]],
) -> SkyChart:
    """Build a sky chart from sampled look angles of a pass and its visible part.

    ``marks`` are (kind, az, el) for "start", "max" and "end"; each gets a label such as
    "10° NW".
    """
    letters = (("N", 0.0), ("E", 90.0), ("S", 180.0), ("W", 270.0))
    compass_pos = tuple(
        (name, round(SKY_RADIUS * 1.08 * math.sin(math.radians(a)), 2),
         round(-SKY_RADIUS * 1.08 * math.cos(math.radians(a)), 2))
        for name, a in letters
    )  # fmt: skip
    rings = tuple((el, SKY_RADIUS * (90.0 - el) / 90.0) for el in (0, 30, 60))
    mark_objs = []
    for kind, az, el in marks:
        if not (math.isfinite(az) and math.isfinite(el)):
            continue
        x, y = sky_xy(az, el)
        mark_objs.append(SkyMark(kind, az, el, round(x, 2), round(y, 2), f"{round(el)}° {compass(az)}"))
    return SkyChart(
        pass_path=_sky_path(pass_az, pass_el),
        visible_path=_sky_path(visible_az, visible_el),
        marks=tuple(mark_objs),
        compass=compass_pos,
        rings=rings,
    )


# --------------------------------------------------------------------------------------------
# places


_LATLON = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*[,;\s]\s*([+-]?\d+(?:\.\d+)?)\s*$")


def parse_latlon(text: str) -> tuple[float, float] | None:
    """(lat, lon) from "48.85, 2.35" (or "48.85 2.35"); None when the text is not two numbers.

    Raises :class:`InvalidInput` naming ``lat`` or ``lon`` when a number is out of range.
    """
    m = _LATLON.match(text)
    if m is None:
        return None
    lat, lon = float(m.group(1)), float(m.group(2))
    check_latlon(lat, lon)
    return lat, lon


def check_latlon(lat: float, lon: float) -> None:
    """Raise :class:`InvalidInput` (field ``lat`` or ``lon``) for a non-finite or out-of-range value."""
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"{lat!r} is not a latitude in [-90, 90]", field="lat")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInput(f"{lon!r} is not a longitude in [-180, 180]", field="lon")


def fold(text: str) -> str:
    """Text folded for lookups: no accents, case-folded, punctuation as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = plain.replace("ß", "ss").replace("ı", "i")
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


@dataclass(frozen=True, slots=True)
class Place:
    """One place of the gazetteer (or a point given by coordinates, then ``country`` is "")."""

    name: str
    country: str
    country_name: str
    lat: float
    lon: float
    timezone: str
    population: int
    alt_names: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The display name, like "Paris, France" (just the name when the country is unknown)."""
        return f"{self.name}, {self.country_name}" if self.country_name else self.name

    @property
    def query(self) -> str:
        """The text that finds exactly this place again: "Valencia, VE"."""
        return f"{self.name}, {self.country}" if self.country else self.name


class Gazetteer:
    """Places from CSV text (``name,country,lat,lon,timezone,population,alt_names``), searchable
    by name regardless of case, accents and punctuation."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.places: tuple[Place, ...] = tuple(places)
        self._by_key: dict[str, list[Place]] = {}
        for place in self.places:
            for key in {fold(place.name), *(fold(a) for a in place.alt_names)}:
                self._by_key.setdefault(key, []).append(place)

    @classmethod
    def from_csv(cls, text: str, country_names: dict[str, str] | None = None) -> Gazetteer:
        """Parse the CSV; ``country_names`` maps ISO codes to names (else the code is shown)."""
        names = country_names or {}
        places = []
        for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            try:
                lat, lon = float(row["lat"]), float(row["lon"])
                check_latlon(lat, lon)
                code = row["country"].strip().upper()
                alt = tuple(a.strip() for a in (row.get("alt_names") or "").split("|") if a.strip())
                places.append(
                    Place(row["name"].strip(), code, names.get(code, code), lat, lon,
                          row["timezone"].strip(), int(row["population"] or 0), alt)
                )  # fmt: skip
            except (KeyError, ValueError, TypeError, InvalidInput) as exc:
                raise InvalidInput(f"line {i}: {exc}", field="places.csv") from exc
        return cls(places)

    def _order(self, places: Iterable[Place]) -> list[Place]:
        return sorted(set(places), key=lambda p: (-p.population, p.name, p.country))

    def search(self, text: str) -> list[Place]:
        """Places named ``text`` (or an alternative name), biggest first.

        "Name, CC" (a country code or name after a comma) narrows to that country. When no name
        matches exactly, the places whose name starts with the text are returned; an empty list
        means nothing matched.
        """
        name, _, where = text.partition(",")
        key = fold(name)
        if not key:
            return []
        country = fold(where)
        found = self._by_key.get(key, [])
        if not found:
            found = [p for k, ps in self._by_key.items() if k.startswith(key) for p in ps]
        if country:
            found = [p for p in found if country in (fold(p.country), fold(p.country_name))]
        return self._order(found)

    def suggestions(self, text: str, n: int = 5) -> list[Place]:
        """Places with names close to ``text`` (for "did you mean…")."""
        keys = difflib.get_close_matches(fold(text.partition(",")[0]), list(self._by_key), n=n, cutoff=0.7)
        return self._order(p for k in keys for p in self._by_key[k])[:n]

    def nearest(self, lat: float, lon: float) -> tuple[Place, float]:
        """The place nearest to a point and its great-circle distance in km (spherical Earth)."""
        if not self.places:
            raise InvalidInput("the gazetteer is empty", field="place")
        lats = np.radians([p.lat for p in self.places])
        lons = np.radians([p.lon for p in self.places])
        phi, lam = math.radians(lat), math.radians(lon)
        cos_c = np.sin(lats) * math.sin(phi) + np.cos(lats) * math.cos(phi) * np.cos(lons - lam)
        i = int(np.argmax(cos_c))
        return self.places[i], 6371.0 * math.acos(min(1.0, max(-1.0, float(cos_c[i]))))
