"""Link windows: when two nodes of a mission (spacecraft, relays, ground stations) can talk.

Pure and vectorized over time: the caller passes the span (float64 Unix seconds UTC), nodes come in
as :class:`~proxima.orbit.elements.Elements` (SGP4), :class:`~proxima.orbit.elements.GeoRelay`
(a station-kept geostationary slot) or :class:`GroundStation`, windows come out as
:class:`LinkWindow` rows that turn into directed :class:`Contact` rows for a contact plan.

Geometry, all in the Earth-fixed frame (ITRF):

- ground station ↔ anything in space: the target's elevation, seen from the station (geodetic
  up), must reach the station's :class:`ElevationMask` at the target's azimuth;
- space ↔ space (spacecraft ↔ relay, spacecraft ↔ spacecraft, relay ↔ relay): the straight line
  between them must clear the WGS84 ellipsoid inflated by a grazing height (semi-axes a + h and
  b + h, h = 100 km by default, to keep the beam out of the dense atmosphere). Scaling z by
  (a + h) / (b + h) turns that ellipsoid into a sphere of radius a + h, so the test is exact:
  the segment's closest approach to the centre, in the scaled frame, must exceed a + h;
- optionally the range must not exceed ``max_range_km``.

Each condition is a continuous *margin* (degrees above the mask, km above the grazing surface, km
inside the maximum range); a window is where the smallest margin is >= 0. The margin is sampled on
a grid of at most ``step_s`` seconds, every sign change is refined by vectorized bisection to
``tolerance_s`` (0.1 s by default) and the inner side of the final bracket is reported, so a window's
ends never claim a moment when the link is down and lose at most ``tolerance_s`` each. Every negative
local maximum of the margin is also searched (golden section) for a short window that fell between
two samples, so a brief grazing pass is not lost to the grid (two such windows within one step can
still be).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import OrbitInputError
from proxima.orbit.elements import Elements, GeoRelay
from proxima.orbit.frames import (
    EARTH_MEAN_RADIUS_KM,
    WGS84_A_KM,
    WGS84_B_KM,
    geodetic_to_itrf,
    teme_position_to_itrf,
    topocentric,
)
from proxima.orbit.propagate import DEFAULT_MAX_SPAN_DAYS, geo_relay_itrf, propagate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "DEFAULT_GRAZING_HEIGHT_KM",
    "DEFAULT_STEP_S",
    "DEFAULT_TOLERANCE_S",
    "FIBRE_SPEED_KM_S",
    "SPEED_OF_LIGHT_KM_S",
    "Contact",
    "ElevationMask",
    "GroundStation",
    "LinkWindow",
    "Node",
    "contacts",
    "default_kind",
    "line_of_sight_margin_km",
    "link_windows",
    "terrestrial_window",
]

SPEED_OF_LIGHT_KM_S = 299_792.458
FIBRE_SPEED_KM_S = SPEED_OF_LIGHT_KM_S / 1.468
"""Light in silica fibre (group index about 1.468): about 204,000 km/s, for terrestrial links."""
DEFAULT_GRAZING_HEIGHT_KM = 100.0
"""A space-to-space line of sight must pass this high above the WGS84 ellipsoid (the Kármán line)."""
DEFAULT_STEP_S = 15.0
"""Coarse sampling step; shorter windows are still found when the margin has one peak between samples."""
DEFAULT_TOLERANCE_S = 0.1
"""Bisection stops when a window's end is bracketed this tightly."""

F64 = NDArray[np.float64]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, slots=True)
class ElevationMask:
    """Minimum elevation a target must reach, constant or depending on the azimuth.

    ``azimuth_deg``/``min_elevation_deg`` are the table's points (azimuth from north, clockwise);
    between points the minimum is interpolated linearly, wrapping around at 360°. A constant mask
    has one point. Build with :meth:`constant` or :meth:`table`.
    """

    azimuth_deg: tuple[float, ...]
    min_elevation_deg: tuple[float, ...]

    @classmethod
    def constant(cls, min_elevation_deg: float) -> ElevationMask:
        """The same minimum elevation in every direction."""
        return cls.table([(0.0, min_elevation_deg)])

    @classmethod
    def table(cls, points: Iterable[tuple[float, float]]) -> ElevationMask:
        """A mask from (azimuth_deg, min_elevation_deg) points; azimuths are taken modulo 360."""
        pairs: list[tuple[float, float]] = []
        for point in points:
            try:
                az, el = (float(v) for v in point)
            except (TypeError, ValueError) as exc:
                raise OrbitInputError(f"mask point {point!r} is not an (azimuth, elevation) pair") from exc
            if not (math.isfinite(az) and math.isfinite(el)):
                raise OrbitInputError(f"mask point ({az}, {el}) is not finite")
            if not -90.0 <= el <= 90.0:
                raise OrbitInputError(f"mask elevation {el}° is outside [-90°, 90°]")
            pairs.append((az % 360.0, el))
        if not pairs:
            raise OrbitInputError("an elevation mask needs at least one (azimuth, elevation) point")
        pairs.sort()
        azimuths = [p[0] for p in pairs]
        if len(set(azimuths)) != len(azimuths):
            raise OrbitInputError("an elevation mask has two points at the same azimuth")
        return cls(tuple(azimuths), tuple(p[1] for p in pairs))

    @property
    def is_constant(self) -> bool:
        """Whether the minimum is the same in every direction."""
        return len(set(self.min_elevation_deg)) == 1

    def at(self, azimuth_deg: ArrayLike) -> F64:
        """The minimum elevation (deg) at each azimuth (deg), same shape."""
        az = np.asarray(azimuth_deg, dtype=np.float64)
        if self.is_constant:
            return np.full(az.shape, self.min_elevation_deg[0])
        out = np.interp(np.mod(az, 360.0), self.azimuth_deg, self.min_elevation_deg, period=360.0)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class GroundStation:
    """A ground station: WGS84 latitude/longitude (deg), height above the ellipsoid (km), a mask."""

    name: str
    lat_deg: float
    lon_deg: float
    alt_km: float = 0.0
    mask: ElevationMask = ElevationMask((0.0,), (0.0,))

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat_deg) and -90.0 <= self.lat_deg <= 90.0):
            raise OrbitInputError(f"station {self.name!r}: latitude {self.lat_deg}° is outside [-90°, 90°]")
        if not math.isfinite(self.lon_deg):
            raise OrbitInputError(f"station {self.name!r}: longitude {self.lon_deg}° is not finite")
        if not (math.isfinite(self.alt_km) and -1.0 <= self.alt_km <= 100.0):
            raise OrbitInputError(
                f"station {self.name!r}: height {self.alt_km} km is outside [-1 km, 100 km]"
            )

    def itrf_km(self) -> F64:
        """Earth-fixed position (3,) in km."""
        return np.asarray(geodetic_to_itrf(self.lat_deg, self.lon_deg, self.alt_km), dtype=np.float64)


Node: TypeAlias = Elements | GeoRelay | GroundStation
"""One end of a link: a spacecraft or relay by elements, a relay by its slot, or a ground station."""


class Contact(NamedTuple):
    """One directed contact for a contact plan: ``from_node`` can send to ``to_node`` at ``rate``.

    Times are Unix seconds UTC, the rate is bytes per second, ``owlt_s`` the one-way light time at
    the window's middle and ``owlt_max_s`` its largest value during the window.
    """

    from_node: str
    to_node: str
    start_unix: float
    end_unix: float
    rate_bytes_s: float
    owlt_s: float
    owlt_max_s: float
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class LinkWindow:
    """A span during which ends ``a`` and ``b`` see each other (the link is bidirectional).

    ``rate_ab_bytes_s`` is the rate from ``a`` to ``b``, ``rate_ba_bytes_s`` back. ``owlt_s`` is
    the one-way light time (range / c) at the window's middle, ``owlt_min_s``/``owlt_max_s`` its
    extremes over the window. ``cut_start``/``cut_end`` say the link already existed at the
    span's start or still exists at its end: the window was cut there.
    """

    a: str
    b: str
    kind: str
    start_unix: float
    end_unix: float
    owlt_s: float
    owlt_min_s: float
    owlt_max_s: float
    rate_ab_bytes_s: float
    rate_ba_bytes_s: float
    cut_start: bool = False
    cut_end: bool = False

    @property
    def duration_s(self) -> float:
        """Length of the window in seconds."""
        return self.end_unix - self.start_unix

    @property
    def pair(self) -> str:
        """``"a <-> b"``, for tables and messages."""
        return f"{self.a} <-> {self.b}"

    def contacts(self) -> list[Contact]:
        """The directed contacts a -> b and b -> a; a direction whose rate is 0 gives none."""
        out = []
        directions = ((self.a, self.b, self.rate_ab_bytes_s), (self.b, self.a, self.rate_ba_bytes_s))
        for src, dst, rate in directions:
            if rate > 0.0:
                out.append(
                    Contact(src, dst, self.start_unix, self.end_unix, rate, self.owlt_s, self.owlt_max_s)
                )
        return out


def contacts(windows: Iterable[LinkWindow]) -> list[Contact]:
    """Both directed contacts of every window, sorted by start time, then sender, then receiver."""
    out = [c for w in windows for c in w.contacts()]
    out.sort(key=lambda c: (c.start_unix, c.from_node, c.to_node, c.end_unix))
    return out


def default_kind(a: Node, b: Node) -> str:
    """The link type of a pair: space-ground, relay-ground, space-relay, space-space, relay-relay
    or terrestrial (relays are GeoRelay slots; a relay given by elements counts as space here)."""
    ends = sorted(
        "ground" if isinstance(n, GroundStation) else "relay" if isinstance(n, GeoRelay) else "space"
        for n in (a, b)
    )
    pair = (ends[0], ends[1])
    return {
        ("ground", "ground"): "terrestrial",
        ("ground", "relay"): "relay-ground",
        ("ground", "space"): "space-ground",
        ("relay", "relay"): "relay-relay",
        ("relay", "space"): "space-relay",
        ("space", "space"): "space-space",
    }[pair]


# --- geometry --------------------------------------------------------------------------------------


def line_of_sight_margin_km(
    r1_km: ArrayLike, r2_km: ArrayLike, grazing_height_km: float = DEFAULT_GRAZING_HEIGHT_KM
) -> F64:
    """How far (km, in the frame scaled to a sphere) the segment r1-r2 passes above the grazing surface.

    Positions are Earth-fixed, shape (..., 3). The grazing surface is the WGS84 ellipsoid with both
    semi-axes grown by ``grazing_height_km``; z is scaled so it becomes a sphere of radius
    a + h, and the segment's closest approach to the centre minus a + h is returned: >= 0 means the
    line of sight clears it.
    """
    h = float(grazing_height_km)
    radius = WGS84_A_KM + h
    scale = np.array([1.0, 1.0, radius / (WGS84_B_KM + h)])
    p = np.asarray(r1_km, dtype=np.float64) * scale
    q = np.asarray(r2_km, dtype=np.float64) * scale
    d = q - p
    dd = np.sum(d * d, axis=-1)
    u = np.clip(np.divide(-np.sum(p * d, axis=-1), dd, out=np.zeros_like(dd), where=dd > 0.0), 0.0, 1.0)
    closest = p + u[..., None] * d
    return np.asarray(np.linalg.norm(closest, axis=-1) - radius, dtype=np.float64)


def _earth_fixed(node: Node) -> bool:
    return isinstance(node, GroundStation | GeoRelay)


def _positions(node: Node, t: F64, max_span_days: float | None) -> F64:
    """Earth-fixed positions (T, 3) of a link end at times t."""
    if isinstance(node, GroundStation):
        return np.broadcast_to(node.itrf_km(), (t.size, 3))
    if isinstance(node, GeoRelay):
        return geo_relay_itrf(node, t)[0]
    track = propagate(node, t, max_span_days=max_span_days)
    return teme_position_to_itrf(track.r_teme_km[0], t)


class _Geometry:
    """The margin and range of one pair as functions of time (vectorized)."""

    def __init__(
        self,
        a: Node,
        b: Node,
        grazing_height_km: float,
        max_range_km: float | None,
        max_span_days: float | None,
    ) -> None:
        self.a, self.b = a, b
        self.grazing = grazing_height_km
        self.max_range = max_range_km
        self.span = max_span_days

    def evaluate(self, t: F64) -> tuple[F64, F64]:
        """(margin, range_km) at times t; margin >= 0 where the link exists."""
        ra = _positions(self.a, t, self.span)
        rb = _positions(self.b, t, self.span)
        rng = np.asarray(np.linalg.norm(rb - ra, axis=-1), dtype=np.float64)
        ground, target = (self.a, rb) if isinstance(self.a, GroundStation) else (self.b, ra)
        if isinstance(ground, GroundStation):
            look = topocentric(ground.lat_deg, ground.lon_deg, ground.alt_km, target)
            margin = look.el_deg[0] - ground.mask.at(look.az_deg[0])
        else:
            margin = line_of_sight_margin_km(ra, rb, self.grazing)
        if self.max_range is not None:
            margin = np.minimum(margin, self.max_range - rng)
        return np.asarray(margin, dtype=np.float64), rng

    def margin(self, t: F64) -> F64:
        """The margin alone."""
        return self.evaluate(t)[0]


def _bisect(
    fn: Callable[[F64], F64], low: F64, high: F64, low_inside: NDArray[np.bool_], tolerance_s: float
) -> tuple[F64, F64]:
    """Shrink brackets [low, high] around a margin sign change until narrower than tolerance_s.

    ``low_inside`` (bool array) says whether the margin is >= 0 at ``low``; the bracket keeps that
    invariant, so the margin is >= 0 at one end and < 0 at the other throughout.
    """
    low, high = low.copy(), high.copy()
    if low.size == 0:
        return low, high
    widest = float(np.max(high - low))
    rounds = min(64, math.ceil(math.log2(widest / tolerance_s))) if widest > tolerance_s else 0
    for _ in range(rounds):
        middle = 0.5 * (low + high)
        same = (fn(middle) >= 0.0) == low_inside
        low = np.where(same, middle, low)
        high = np.where(same, high, middle)
    return low, high


def _peaks(fn: Callable[[F64], F64], low: F64, high: F64, tolerance_s: float) -> tuple[F64, F64]:
    """Golden-section search for the margin's maximum in each [low, high]; (time, margin)."""
    a, b = low.copy(), high.copy()
    c = b - _GOLDEN * (b - a)
    d = a + _GOLDEN * (b - a)
    fc, fd = fn(c), fn(d)
    widest = float(np.max(b - a))
    rounds = math.ceil(math.log(tolerance_s / widest) / math.log(_GOLDEN)) if widest > tolerance_s else 0
    for _ in range(rounds):
        left = fc >= fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - _GOLDEN * (b - a)
        new_d = a + _GOLDEN * (b - a)
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        probe = np.where(left, c_next, d_next)
        fp = fn(probe)
        fc, fd = np.where(left, fp, fd), np.where(left, fc, fp)
        c, d = c_next, d_next
    best = np.where(fc >= fd, c, d)
    return best, np.maximum(fc, fd)


def _check_span(t0_unix: float, t1_unix: float, step_s: float, tolerance_s: float) -> tuple[float, float]:
    t0, t1 = float(t0_unix), float(t1_unix)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise OrbitInputError(f"link windows need finite times with t1 > t0, got t0={t0!r}, t1={t1!r}")
    if not (math.isfinite(step_s) and step_s > 0.0):
        raise OrbitInputError(f"step_s must be a positive number of seconds, got {step_s!r}")
    if not (math.isfinite(tolerance_s) and 0.0 < tolerance_s <= step_s):
        raise OrbitInputError(f"tolerance_s must be positive and at most step_s, got {tolerance_s!r}")
    return t0, t1


def _check_rate(value: float, what: str) -> float:
    rate = float(value)
    if not (math.isfinite(rate) and rate >= 0.0):
        raise OrbitInputError(f"{what} must be a finite number of bytes per second >= 0, got {value!r}")
    return rate


def _spans(
    geometry: _Geometry, t0: float, t1: float, step_s: float, tolerance_s: float
) -> list[tuple[float, float, bool, bool]]:
    """(start, end, cut_start, cut_end) of each span where the margin is >= 0, in time order."""
    if _earth_fixed(geometry.a) and _earth_fixed(geometry.b):
        always = bool(geometry.margin(np.array([t0]))[0] >= 0.0)
        return [(t0, t1, True, True)] if always else []
    count = max(2, math.ceil((t1 - t0) / step_s) + 1)
    t = np.linspace(t0, t1, count, dtype=np.float64)
    m = geometry.margin(t)
    inside = m >= 0.0
    # Sign changes between samples.
    change = np.flatnonzero(inside[1:] != inside[:-1])
    rise_lo, rise_hi = t[change][~inside[change]], t[change + 1][~inside[change]]
    set_lo, set_hi = t[change][inside[change]], t[change + 1][inside[change]]
    # Negative local maxima: a short window may hide between samples.
    padded = np.concatenate(([-np.inf], m, [-np.inf]))
    peak = np.flatnonzero((m < 0.0) & (m >= padded[:-2]) & (m >= padded[2:]))
    if peak.size:
        lo = t[np.maximum(peak - 1, 0)]
        hi = t[np.minimum(peak + 1, count - 1)]
        tp, mp = _peaks(geometry.margin, lo, hi, tolerance_s)
        found = mp >= 0.0
        rise_lo = np.concatenate((rise_lo, lo[found]))
        rise_hi = np.concatenate((rise_hi, tp[found]))
        set_lo = np.concatenate((set_lo, tp[found]))
        set_hi = np.concatenate((set_hi, hi[found]))
    _, starts = _bisect(geometry.margin, rise_lo, rise_hi, np.zeros(rise_lo.shape, bool), tolerance_s)
    ends, _ = _bisect(geometry.margin, set_lo, set_hi, np.ones(set_lo.shape, bool), tolerance_s)
    events = sorted([(float(s), 1) for s in starts] + [(float(e), -1) for e in ends])
    out: list[tuple[float, float, bool, bool]] = []
    open_at: float | None = t0 if inside[0] else None
    cut = bool(inside[0])
    for when, kind in events:
        if kind == 1 and open_at is None:
            open_at = when
        elif kind == -1 and open_at is not None:
            if when > open_at:
                out.append((open_at, when, cut, False))
            open_at, cut = None, False
    if open_at is not None:
        out.append((open_at, t1, cut, True))
    return out


def link_windows(
    a: Node,
    b: Node,
    t0_unix: float,
    t1_unix: float,
    *,
    rate_ab_bytes_s: float,
    rate_ba_bytes_s: float | None = None,
    kind: str | None = None,
    grazing_height_km: float = DEFAULT_GRAZING_HEIGHT_KM,
    max_range_km: float | None = None,
    min_duration_s: float = 0.0,
    step_s: float = DEFAULT_STEP_S,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
) -> list[LinkWindow]:
    """Windows in [t0_unix, t1_unix] during which ``a`` and ``b`` see each other, in time order.

    A ground station end applies its elevation mask to the other end; two ends in space need a line
    of sight clearing the WGS84 ellipsoid plus ``grazing_height_km``; ``max_range_km`` (if given)
    caps the range. Two Earth-fixed ends (a station and a GeoRelay slot) give one window covering
    the whole span, or none. Rates are bytes/s; ``rate_ba_bytes_s`` defaults to ``rate_ab_bytes_s``.
    ``kind`` labels the link (default from :func:`default_kind`). Windows shorter than
    ``min_duration_s`` are dropped. Elements are propagated with ``max_span_days`` as in
    :func:`~proxima.orbit.propagate.propagate` (times too far from the epoch raise).
    """
    t0, t1 = _check_span(t0_unix, t1_unix, step_s, tolerance_s)
    if isinstance(a, GroundStation) and isinstance(b, GroundStation):
        raise OrbitInputError(f"{a.name} and {b.name} are both ground stations: use terrestrial_window")
    rate_ab = _check_rate(rate_ab_bytes_s, "rate_ab_bytes_s")
    rate_ba = rate_ab if rate_ba_bytes_s is None else _check_rate(rate_ba_bytes_s, "rate_ba_bytes_s")
    if not (math.isfinite(grazing_height_km) and grazing_height_km >= 0.0):
        raise OrbitInputError(f"grazing height must be >= 0 km, got {grazing_height_km!r}")
    if max_range_km is not None and not (math.isfinite(max_range_km) and max_range_km > 0.0):
        raise OrbitInputError(f"maximum range must be a positive number of km, got {max_range_km!r}")
    geometry = _Geometry(a, b, grazing_height_km, max_range_km, max_span_days)
    spans = [s for s in _spans(geometry, t0, t1, step_s, tolerance_s) if s[1] - s[0] >= min_duration_s]
    if not spans:
        return []
    # Light time: range at each window's middle, and its extremes over 33 samples of the window.
    samples = 33
    starts = np.array([s[0] for s in spans])
    ends = np.array([s[1] for s in spans])
    grid = starts[:, None] + (ends - starts)[:, None] * np.linspace(0.0, 1.0, samples)[None, :]
    _, rng = geometry.evaluate(grid.ravel())
    owlt = rng.reshape(grid.shape) / SPEED_OF_LIGHT_KM_S
    label = kind or default_kind(a, b)
    return [
        LinkWindow(
            a=a.name,
            b=b.name,
            kind=label,
            start_unix=start,
            end_unix=end,
            owlt_s=float(owlt[i, samples // 2]),
            owlt_min_s=float(owlt[i].min()),
            owlt_max_s=float(owlt[i].max()),
            rate_ab_bytes_s=rate_ab,
            rate_ba_bytes_s=rate_ba,
            cut_start=cut_start,
            cut_end=cut_end,
        )
        for i, (start, end, cut_start, cut_end) in enumerate(spans)
    ]


def terrestrial_window(
    a: GroundStation,
    b: GroundStation,
    t0_unix: float,
    t1_unix: float,
    *,
    rate_ab_bytes_s: float,
    rate_ba_bytes_s: float | None = None,
    owlt_s: float | None = None,
) -> LinkWindow:
    """An always-on ground link (leased line, internet) between two stations over the whole span.

    Without ``owlt_s`` the light time is the great-circle distance over a mean-radius sphere,
    times 1.5 for cable routing, at the speed of light in fibre: an estimate, not a measurement.
    """
    t0, t1 = _check_span(t0_unix, t1_unix, 1.0, 1.0)
    rate_ab = _check_rate(rate_ab_bytes_s, "rate_ab_bytes_s")
    rate_ba = rate_ab if rate_ba_bytes_s is None else _check_rate(rate_ba_bytes_s, "rate_ba_bytes_s")
    if owlt_s is None:
        ua, ub = (
            np.array(
                [
                    math.cos(math.radians(s.lat_deg)) * math.cos(math.radians(s.lon_deg)),
                    math.cos(math.radians(s.lat_deg)) * math.sin(math.radians(s.lon_deg)),
                    math.sin(math.radians(s.lat_deg)),
                ]
            )
            for s in (a, b)
        )
        central = math.acos(max(-1.0, min(1.0, float(np.dot(ua, ub)))))
        light = 1.5 * EARTH_MEAN_RADIUS_KM * central / FIBRE_SPEED_KM_S
    else:
        light = float(owlt_s)
        if not (math.isfinite(light) and light >= 0.0):
            raise OrbitInputError(f"light time must be a finite number of seconds >= 0, got {owlt_s!r}")
    return LinkWindow(
        a=a.name,
        b=b.name,
        kind="terrestrial",
        start_unix=t0,
        end_unix=t1,
        owlt_s=light,
        owlt_min_s=light,
        owlt_max_s=light,
        rate_ab_bytes_s=rate_ab,
        rate_ba_bytes_s=rate_ba,
        cut_start=True,
        cut_end=True,
    )
