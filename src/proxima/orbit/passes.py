"""Passes of a satellite over one or many observers: rise, culmination, set, the visible part, magnitude.

Definitions (the ones Skyfield's ``EarthSatellite.find_events(altitude_degrees=...)`` uses, so the
two can be compared like with like):

- elevations are **geometric** (no atmospheric refraction) above the WGS84 horizon of the observer;
- a pass is a stretch of time with the satellite at or above ``min_elevation_deg``; its rise and set
  are the crossings of that elevation (not of 0°), its culmination the highest point in between;
- "sunlit" is :func:`proxima.orbit.sun.sunlit_fraction` > 0.5 with a spherical Earth of equatorial
  radius, i.e. the Sun's centre above the Earth's limb as seen from the satellite (Skyfield's
  ``is_sunlit``); the observer is "in darkness" when the Sun's centre is below the twilight
  elevation (:data:`proxima.orbit.sun.TWILIGHT`, civil −6° by default);
- the visible part of a pass is where the satellite is up, sunlit, and the observer is in darkness.

Method, for any number of observers at once: SGP4 is run once, every ``step_s`` / 3 (20 s by
default) over the window plus half an orbit on each side, and the satellite is interpolated in
between with cubic Hermite polynomials on its Earth-fixed position and velocity (error about 5 mm
for the ISS), so refinement costs no further SGP4 call. Observers are culled by footprint: the
central angle between observer and sub-satellite point, with BLAS products of unit vectors on a
coarse grid and then exactly on the detection grid (``step_s``, 60 s), keeps only the grid points
where the satellite may be above the threshold (about 2 % of them at 10°). On those, local maxima
of elevation are found (elevation rises and falls once per revolution, so the grid point nearest
any culmination is a local maximum whatever the step), refined by Newton's method on the
elevation rate, and kept when they clear the threshold; rises and sets are refined by Newton's
method from the grid's sign changes. Every stage is a numpy operation over all candidate passes
of a chunk of observers; there is no Python loop per observer or per pass.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import OrbitInputError
from proxima.orbit.frames import WGS84_A_KM, geodetic_to_itrf, teme_to_itrf
from proxima.orbit.propagate import DEFAULT_MAX_SPAN_DAYS, propagate
from proxima.orbit.sun import TWILIGHT, sun_position_teme
from proxima.orbit.timescale import gmst_rad

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from proxima.orbit.elements import Elements

__all__ = [
    "COMPASS_POINTS",
    "DEFAULT_STD_MAGNITUDE",
    "SPOT_THE_STATION",
    "Look",
    "Pass",
    "PassTable",
    "Sighting",
    "VisiblePart",
    "compass",
    "find_passes",
    "local_time_parts",
    "phase_function",
    "shadow_transitions",
    "sightings",
    "visual_magnitude",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]

DEFAULT_STD_MAGNITUDE: Final = -1.8
"""Standard magnitude of the ISS: its brightness at 1000 km range and 90° phase angle (half lit)."""

SPOT_THE_STATION: Final[dict[str, Any]] = {"min_elevation_deg": 10.0, "twilight": "civil"}
"""Settings that list sightings the way NASA's Spot the Station does: passes that climb at least
10° and are seen in darkness or civil twilight, with "appears"/"disappears" at 10° or where the
station enters or leaves the Earth's shadow."""

COMPASS_POINTS: Final = (
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW",
)  # fmt: skip

_POLAR_RADIUS_KM: Final = 6356.752
_CHUNK_POINTS: Final = 16_000_000
"""Observer × detection-grid pairs culled at once (a float32 matrix of 64 MB)."""
_ROOT_TOL_S: Final = 1e-6
_NEWTON_STEP_S: Final = 1e-3
"""Newton stops once its step is under a millisecond: the step taken is then exact to ~1e-9 s."""


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, slots=True)
class Look:
    """Where the satellite is at one instant: Unix time, azimuth (from north, clockwise), elevation."""

    t_unix: float
    az_deg: float
    el_deg: float


@dataclass(frozen=True, slots=True)
class VisiblePart:
    """The part of a pass where the satellite is sunlit and the observer in darkness.

    ``peak`` is the highest point of that part (the culmination if it lies inside), ``magnitude``
    the estimated visual magnitude there.
    """

    start: Look
    peak: Look
    end: Look
    magnitude: float

    @property
    def duration_s(self) -> float:
        """Seconds from appearance to disappearance."""
        return self.end.t_unix - self.start.t_unix


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass over one observer; ``rise``/``set`` may have a NaN time when they fall outside the
    searched span (a satellite that stays up)."""

    observer: int
    rise: Look
    culmination: Look
    set: Look
    range_km: float
    visible: VisiblePart | None

    @property
    def duration_s(self) -> float:
        """Seconds from rise to set."""
        return self.set.t_unix - self.rise.t_unix


_LOOK_FIELDS = ("rise", "culm", "set", "vis_start", "vis_peak", "vis_end")


@dataclass(frozen=True, slots=True)
class PassTable:
    """Passes of one satellite over many observers, as flat arrays (one entry per pass).

    Sorted by observer index, then culmination time. For each of the looks ``rise``, ``culm``,
    ``set``, ``vis_start``, ``vis_peak``, ``vis_end`` there are ``<look>_t``, ``<look>_az`` and
    ``<look>_el`` arrays (degrees; NaN where there is none, e.g. for passes not visible).
    ``culm_range_km`` is the range at culmination, ``magnitude`` the visual magnitude at
    ``vis_peak`` (NaN when not visible), ``visible`` whether the pass has a visible part.
    """

    name: str
    n_observers: int
    t0_unix: float
    t1_unix: float
    min_elevation_deg: float
    twilight_deg: float
    observer: I64
    rise_t: F64
    rise_az: F64
    rise_el: F64
    culm_t: F64
    culm_az: F64
    culm_el: F64
    culm_range_km: F64
    set_t: F64
    set_az: F64
    set_el: F64
    visible: Bool
    vis_start_t: F64
    vis_start_az: F64
    vis_start_el: F64
    vis_peak_t: F64
    vis_peak_az: F64
    vis_peak_el: F64
    vis_end_t: F64
    vis_end_az: F64
    vis_end_el: F64
    magnitude: F64

    def __len__(self) -> int:
        return int(self.observer.size)

    @property
    def duration_s(self) -> F64:
        """Seconds from rise to set, per pass."""
        return self.set_t - self.rise_t

    def select(self, mask: Bool | I64) -> PassTable:
        """A table with only the passes picked by a boolean mask or index array."""
        arrays = {name: getattr(self, name)[mask] for name in _ARRAY_FIELDS}
        return PassTable(
            self.name, self.n_observers, self.t0_unix, self.t1_unix, self.min_elevation_deg,
            self.twilight_deg, **arrays,
        )  # fmt: skip

    def for_observer(self, index: int) -> list[Pass]:
        """The passes of one observer as :class:`Pass` objects, in time order."""
        if not 0 <= index < self.n_observers:
            raise OrbitInputError(f"observer index {index} is outside [0, {self.n_observers})")
        rows = np.flatnonzero(self.observer == index)
        return [self._row(int(i)) for i in rows]

    def _look(self, prefix: str, i: int) -> Look:
        return Look(
            float(getattr(self, prefix + "_t")[i]),
            float(getattr(self, prefix + "_az")[i]),
            float(getattr(self, prefix + "_el")[i]),
        )

    def _row(self, i: int) -> Pass:
        vis = None
        if self.visible[i]:
            vis = VisiblePart(
                self._look("vis_start", i), self._look("vis_peak", i), self._look("vis_end", i),
                float(self.magnitude[i]),
            )  # fmt: skip
        return Pass(
            int(self.observer[i]), self._look("rise", i), self._look("culm", i), self._look("set", i),
            float(self.culm_range_km[i]), vis,
        )  # fmt: skip


_ARRAY_FIELDS = (
    "observer", *(f"{p}_{q}" for p in _LOOK_FIELDS[:2] for q in ("t", "az", "el")), "culm_range_km",
    *(f"set_{q}" for q in ("t", "az", "el")), "visible",
    *(f"{p}_{q}" for p in _LOOK_FIELDS[3:] for q in ("t", "az", "el")), "magnitude",
)  # fmt: skip


def _concat(parts: Sequence[PassTable], template: PassTable) -> PassTable:
    if not parts:
        return template
    arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAY_FIELDS}
    return PassTable(
        template.name, template.n_observers, template.t0_unix, template.t1_unix,
        template.min_elevation_deg, template.twilight_deg, **arrays,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# magnitude


def phase_function(phase_deg: ArrayLike) -> F64:
    """Brightness of a diffusely reflecting (Lambertian) sphere against its phase angle.

    F(φ) = sin φ + (π − φ) cos φ, normalised so that F(90°) = 1 (half lit); F(0°) = π (full),
    F(180°) = 0. This is the law the visual observers' "standard magnitudes" are defined with.
    """
    phi = np.radians(np.asarray(phase_deg, dtype=np.float64))
    return np.asarray(np.sin(phi) + (math.pi - phi) * np.cos(phi), dtype=np.float64)


def visual_magnitude(
    range_km: ArrayLike, phase_deg: ArrayLike, std_magnitude: float = DEFAULT_STD_MAGNITUDE
) -> F64:
    """Estimated visual magnitude: m = m_std − 15 + 5 log10(range_km) − 2.5 log10(F(phase)).

    F is :func:`phase_function` (diffuse sphere, F(90°) = 1), so ``std_magnitude`` is the
    magnitude at 1000 km (the −15 is 5 log10 1000) and 90° phase angle, the convention of the
    visual observers' lists (McCants' ``qs.mag``, SkyMap). Source: the SeeSat-L formula
    (satobs.org/seesat/Apr-2001/0313.html), with the ISS's usual standard magnitude −1.8. A
    standard magnitude quoted at full phase (QuickSat's convention) is 2.5 log10 π = 1.24 fainter
    than this one. Atmospheric extinction is left out (it dims a satellite low in the sky by up to
    a magnitude). Returns +inf where no lit face is seen (phase 180°).
    """
    f = phase_function(phase_deg)
    r = np.asarray(range_km, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(std_magnitude - 15.0 + 5.0 * np.log10(r) - 2.5 * np.log10(f), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# the satellite on a grid, with Hermite interpolation


class _Track:
    """Earth-fixed position/velocity of one satellite on a uniform grid, interpolated in between."""

    def __init__(self, elements: Elements, start: float, stop: float, step: float, max_span: float | None):
        n = math.ceil((stop - start) / step) + 1
        self.t0 = start
        self.h = step
        self.t = start + step * np.arange(n, dtype=np.float64)
        track = propagate(elements, self.t, max_span_days=max_span)
        r, v = teme_to_itrf(track.r_teme_km[0], track.v_teme_km_s[0], self.t)
        self.r = np.ascontiguousarray(r)
        self.v = np.ascontiguousarray(v)
        # cubic Hermite coefficients per interval: p(s) = a0 + a1 s + a2 s² + a3 s³, s in [0, 1]
        p0, p1, m0, m1 = r[:-1], r[1:], v[:-1] * step, v[1:] * step
        self.coef = np.ascontiguousarray(
            np.stack([p0, m0, 3 * (p1 - p0) - 2 * m0 - m1, 2 * (p0 - p1) + m0 + m1], axis=1)
        )
        self.coef_t = np.ascontiguousarray(self.coef.transpose(1, 2, 0))  # (4, 3, T - 1)
        # Sun in TEME every 10 minutes: it moves 0.007° in that time, so linear interpolation of
        # the vector is exact to about 1e-9 rad.
        self.sun_h = 600.0
        ns = math.ceil((stop - start) / self.sun_h) + 2
        self.sun_t = start + self.sun_h * np.arange(ns, dtype=np.float64)
        self.sun_teme = sun_position_teme(self.sun_t)

    def _index(self, t: F64, h: float, t0: float, n: int) -> tuple[I64, F64]:
        x = (t - t0) / h
        k = np.clip(np.floor(x), 0, n - 2).astype(np.int64)
        return k, x - k

    def state(self, t: F64) -> tuple[F64, F64]:
        """Position (km) and velocity (km/s) at 1-D times ``t`` by cubic Hermite interpolation, (n, 3)."""
        pos, vel, _ = self.state3(t)
        return pos, vel

    def state3(self, t: F64) -> tuple[F64, F64, F64]:
        """Position, velocity and acceleration (km, km/s, km/s²) at 1-D times ``t``, each (n, 3)."""
        pos, vel, acc = self.state3_t(t)
        return pos.T, vel.T, acc.T

    def state3_t(self, t: F64) -> tuple[F64, F64, F64]:
        """As :meth:`state3` but component-major, each (3, n): long inner loops, several times faster."""
        k, s = self._index(t, self.h, self.t0, self.t.size)
        a0, a1, a2, a3 = np.take(self.coef_t, k, axis=2)  # each (3, n)
        pos = a0 + s * (a1 + s * (a2 + s * a3))
        vel = (a1 + s * (2.0 * a2 + s * (3.0 * a3))) * (1.0 / self.h)
        acc = (2.0 * a2 + s * (6.0 * a3)) * (1.0 / (self.h * self.h))
        return pos, vel, acc

    def sun_itrf(self, t: F64) -> F64:
        """Apparent Sun position (km) in ITRF at times ``t``, interpolated from the 10-minute table."""
        k, s = self._index(t, self.sun_h, self.t0, self.sun_t.size)
        s = s[..., None]
        teme = (1.0 - s) * self.sun_teme[k] + s * self.sun_teme[k + 1]
        theta = gmst_rad(t)
        c, sn = np.cos(theta), np.sin(theta)
        x = c * teme[..., 0] + sn * teme[..., 1]
        y = -sn * teme[..., 0] + c * teme[..., 1]
        return np.stack([x, y, teme[..., 2]], axis=-1)


# --------------------------------------------------------------------------------------------
# vectorized root finding


def _bracketed_root(func: Callable[[F64], F64], lo: F64, hi: F64, f_lo: F64, f_hi: F64) -> F64:
    """Roots of ``func`` in [lo, hi] (opposite signs at the ends), Illinois regula falsi, vectorized.

    Converges superlinearly; stops when every bracket is narrower than a microsecond (or after 60
    rounds, then the bracket's middle is returned).
    """
    lo, hi, f_lo, f_hi = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    side = np.zeros(lo.shape, dtype=np.int8)
    for _ in range(60):
        active = (hi - lo) > _ROOT_TOL_S
        if not active.any():
            break
        denom = f_hi - f_lo
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(denom != 0.0, (lo * f_hi - hi * f_lo) / denom, 0.5 * (lo + hi))
        x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
        fx = func(x)
        same_lo = np.sign(fx) == np.sign(f_lo)
        # move the end whose sign fx shares; halve the stale end's value twice in a row (Illinois)
        lo = np.where(active & same_lo, x, lo)
        f_lo = np.where(active & same_lo, fx, np.where(active & ~same_lo & (side == -1), f_lo * 0.5, f_lo))
        hi = np.where(active & ~same_lo, x, hi)
        f_hi = np.where(active & ~same_lo, fx, np.where(active & same_lo & (side == 1), f_hi * 0.5, f_hi))
        side = np.where(active, np.where(same_lo, 1, -1), side).astype(np.int8)
        exact = active & (fx == 0.0)
        lo = np.where(exact, x, lo)
        hi = np.where(exact, x, hi)
    return 0.5 * (lo + hi)


def _newton_root(func: Callable[[F64, I64], tuple[F64, F64]], lo: F64, hi: F64, x0: F64, rising: Bool) -> F64:
    """Roots in [lo, hi] by Newton's method kept inside the bracket, vectorized.

    ``func(x, idx)`` returns the value and derivative for the problems ``idx``; ``rising`` says
    whether each function goes from negative to positive across its bracket; ``x0`` is the first
    guess. Only problems not yet converged (step over a millisecond) are evaluated, so the cost
    falls with each round. A Newton step leaving the bracket is replaced by bisection, so
    convergence is guaranteed (to an end of the bracket if there is no root inside).
    """
    lo, hi = lo.copy(), hi.copy()
    x = np.clip(x0, lo, hi)
    act = np.arange(lo.size, dtype=np.int64)
    for _ in range(60):
        if act.size == 0:
            break
        xa = x[act]
        f, df = func(xa, act)
        right = (f < 0.0) == rising[act]  # the root lies after xa
        la = np.where(right, xa, lo[act])
        ha = np.where(right, hi[act], xa)
        lo[act], hi[act] = la, ha
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - f / df
        newton = (xn >= la) & (xn <= ha)
        xn = np.where(newton, xn, 0.5 * (la + ha))
        x[act] = xn
        done = (newton & (np.abs(xn - xa) < _NEWTON_STEP_S)) | (ha - la < _ROOT_TOL_S) | (f == 0.0)
        act = act[~done]
    return x


# --------------------------------------------------------------------------------------------
# observers


@dataclass(frozen=True, slots=True)
class _Observers:
    pos: F64  # ITRF km (N, 3)
    up: F64  # geodetic normal (N, 3)
    east: F64
    north: F64
    unit: F64  # geocentric direction (N, 3)

    @classmethod
    def build(cls, lat: F64, lon: F64, height_km: F64) -> _Observers:
        pos = geodetic_to_itrf(lat, lon, height_km)
        phi, lam = np.radians(lat), np.radians(lon)
        sp, cp, sl, cl = np.sin(phi), np.cos(phi), np.sin(lam), np.cos(lam)
        up = np.stack([cp * cl, cp * sl, sp], axis=-1)
        east = np.stack([-sl, cl, np.zeros_like(sl)], axis=-1)
        north = np.stack([-sp * cl, -sp * sl, cp], axis=-1)
        unit = pos / np.linalg.norm(pos, axis=-1, keepdims=True)
        return cls(pos, up, east, north, unit)

    def take(self, idx: I64) -> _Observers:
        return _Observers(self.pos[idx], self.up[idx], self.east[idx], self.north[idx], self.unit[idx])


def _sin_el(r: F64, obs: _Observers) -> F64:
    d = r - obs.pos
    return np.asarray(np.einsum("...i,...i->...", d, obs.up) / np.linalg.norm(d, axis=-1), dtype=np.float64)


def _el_derivatives_t(p: F64, v: F64, a: F64, pair: _Pair) -> tuple[F64, F64, F64]:
    """sin(elevation) and its first and second time derivatives, observers fixed to the Earth.

    Component-major (3, n) arrays: long inner loops make this hot path several times faster.
    """
    d = p - pair.pos_t
    up = pair.up_t
    u = (d * up).sum(axis=0)
    u1 = (v * up).sum(axis=0)
    u2 = (a * up).sum(axis=0)
    rho = np.sqrt((d * d).sum(axis=0))
    inv = 1.0 / rho
    rho1 = (d * v).sum(axis=0) * inv
    rho2 = ((v * v).sum(axis=0) + (d * a).sum(axis=0) - rho1 * rho1) * inv
    s0 = u * inv
    s1 = (u1 - s0 * rho1) * inv
    s2 = (u2 - 2.0 * s1 * rho1 - s0 * rho2) * inv
    return s0, s1, s2


class _Pair:
    """Observer positions and up vectors per problem, component-major (3, n), indexable."""

    def __init__(self, pos_t: F64, up_t: F64) -> None:
        self.pos_t = pos_t
        self.up_t = up_t

    def take(self, idx: I64) -> _Pair:
        return _Pair(np.take(self.pos_t, idx, axis=1), np.take(self.up_t, idx, axis=1))


def _look(track: _Track, t: F64, obs: _Observers) -> tuple[F64, F64, F64, F64]:
    """Azimuth, elevation (deg), range (km) and the satellite's ITRF position (n, 3) at times ``t``."""
    r, _, _ = track.state3_t(t)
    d = r - obs.pos.T
    e = (d * obs.east.T).sum(axis=0)
    n = (d * obs.north.T).sum(axis=0)
    u = (d * obs.up.T).sum(axis=0)
    az = np.mod(np.degrees(np.arctan2(e, n)), 360.0)
    el = np.degrees(np.arctan2(u, np.hypot(e, n)))
    return az, el, np.sqrt(e * e + n * n + u * u), r.T


def _sun_el_sin(track: _Track, t: F64, obs: _Observers) -> F64:
    return _sin_el(track.sun_itrf(t), obs)


# --------------------------------------------------------------------------------------------
# shadow


def _shadow_function(track: _Track, t: F64) -> F64:
    """Angle (rad) between the Sun's centre and the Earth's limb seen from the satellite: > 0 sunlit.

    Zero exactly where :func:`~proxima.orbit.sun.sunlit_fraction` is 0.5 to within 0.01 s (the
    Sun's disk is small against the Earth's), and smooth, so roots refine quickly.
    """
    r, _ = track.state(t)
    to_sun = track.sun_itrf(t) - r
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_sat = np.linalg.norm(r, axis=-1)
    cos_c = -np.einsum("...i,...i->...", to_sun, r) / (d_sun * d_sat)
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    b = np.arcsin(np.clip(WGS84_A_KM / d_sat, 0.0, 1.0))
    return np.asarray(c - b, dtype=np.float64)


def _transitions(track: _Track) -> tuple[F64, bool]:
    """Shadow crossings on the track's span (sorted) and whether the satellite is sunlit at its start."""
    g = _shadow_function(track, track.t)
    lit = g > 0.0
    k = np.flatnonzero(lit[1:] != lit[:-1])
    if k.size == 0:
        return np.empty(0), bool(lit[0])
    roots = _bracketed_root(lambda x: _shadow_function(track, x), track.t[k], track.t[k + 1], g[k], g[k + 1])
    return roots, bool(lit[0])


def shadow_transitions(
    elements: Elements,
    t0_unix: float,
    t1_unix: float,
    *,
    step_s: float = 20.0,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
) -> tuple[F64, Bool]:
    """Times the satellite enters or leaves the Earth's shadow in [t0, t1], and its state after each.

    Returns (times, sunlit_after): ``sunlit_after[i]`` is False when entering the shadow. The
    criterion is ``sunlit_fraction > 0.5`` (the Sun's centre above the Earth's limb, spherical Earth
    of equatorial radius), as Skyfield's ``is_sunlit``; times are refined to a microsecond. Shadow
    or sunlit stretches shorter than ``step_s`` may be missed.
    """
    _check_window(t0_unix, t1_unix)
    track = _Track(elements, t0_unix, t1_unix, _check_step(step_s), max_span_days)
    times, lit0 = _transitions(track)
    keep = (times >= t0_unix) & (times <= t1_unix)
    after = np.arange(1, times.size + 1) % 2 == (0 if lit0 else 1)
    return times[keep], after[keep]


# --------------------------------------------------------------------------------------------
# validation


def _check_window(t0: float, t1: float) -> None:
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise OrbitInputError("start and end times must be finite")
    if t1 <= t0:
        raise OrbitInputError(f"the end time ({t1}) must come after the start time ({t0})")


def _check_step(step: float) -> float:
    if not (math.isfinite(step) and 1.0 <= step <= 120.0):
        raise OrbitInputError(f"step_s {step} must be within [1, 120] seconds")
    return float(step)


def _observers(lat: ArrayLike, lon: ArrayLike, height_km: ArrayLike) -> tuple[F64, F64, F64]:
    try:
        la, lo, h = np.broadcast_arrays(
            np.atleast_1d(np.asarray(lat, dtype=np.float64)),
            np.atleast_1d(np.asarray(lon, dtype=np.float64)),
            np.atleast_1d(np.asarray(height_km, dtype=np.float64)),
        )
    except (ValueError, TypeError) as exc:
        raise OrbitInputError(f"observer latitudes, longitudes and heights do not match: {exc}") from exc
    if la.ndim != 1 or la.size == 0:
        raise OrbitInputError("observers must be scalars or non-empty 1-D arrays")
    bad = ~(np.abs(la) <= 90.0)
    if bad.any():
        raise OrbitInputError(f"latitude {float(la[bad][0])}° is outside [-90°, 90°]")
    bad = ~np.isfinite(lo)
    if bad.any():
        raise OrbitInputError(f"longitude {float(lo[bad][0])}° is not a finite number")
    bad = ~((h >= -1.0) & (h <= 100.0))
    if bad.any():
        raise OrbitInputError(f"observer height {float(h[bad][0])} km is outside [-1, 100] km")
    return np.ascontiguousarray(la), np.ascontiguousarray(lo), np.ascontiguousarray(h)


def _twilight(twilight: str | float) -> float:
    if isinstance(twilight, str):
        if twilight not in TWILIGHT:
            raise OrbitInputError(f"unknown twilight {twilight!r} (use one of {', '.join(TWILIGHT)})")
        return TWILIGHT[twilight]
    value = float(twilight)
    if not -90.0 <= value <= 90.0:
        raise OrbitInputError(f"twilight Sun elevation {value}° is outside [-90°, 90°]")
    return value


# --------------------------------------------------------------------------------------------
# the search


@dataclass(frozen=True, slots=True)
class _Context:
    track: _Track
    name: str
    t0: float
    t1: float
    min_el: float
    sin_min: float
    twilight: float
    std_mag: float
    m: int  # interpolation steps per detection step
    grid_unit: NDArray[np.float32]  # (3, G): sub-satellite directions on the detection grid
    cos_cap: float
    cos_cap_coarse: float
    lit_bounds: F64  # -inf, transitions..., +inf
    lit_state: Bool  # state of each interval between bounds


def _prepare(
    elements: Elements,
    t0: float,
    t1: float,
    min_el: float,
    twilight: float,
    std_mag: float,
    step: float,
    max_span: float | None,
) -> _Context:
    half_orbit = 0.5 * elements.period_minutes * 60.0
    pad = min(half_orbit, 6 * 3600.0) + 2 * step
    m = 3
    track = _Track(elements, t0 - pad, t1 + pad, step / m, max_span)
    rn = np.linalg.norm(track.r, axis=-1)
    # Footprint (Earth-central angle) at the threshold on a sphere of the polar radius (larger than
    # any real footprint), plus 0.5° for the tilt of the ellipsoid's normals (< 0.2°) and heights,
    # plus how far the sub-satellite point moves in half a detection step.
    e = math.radians(min_el)
    lam = np.arccos(np.clip((_POLAR_RADIUS_KM - 1.0) * math.cos(e) / rn, -1.0, 1.0)) - e
    ang_rate = float(np.max(np.linalg.norm(np.cross(track.r, track.v), axis=-1) / (rn * rn)))
    cap = float(np.max(lam)) + math.radians(0.5) + ang_rate * 0.5 * step * 1.1
    unit = (track.r / rn[:, None])[::m].T.astype(np.float32)
    times, lit0 = _transitions(track)
    bounds = np.concatenate([[-np.inf], times, [np.inf]])
    state = (np.arange(times.size + 1) % 2 == 0) == lit0
    return _Context(
        track, elements.name, t0, t1, min_el, math.sin(e), twilight, std_mag, m,
        np.ascontiguousarray(unit), math.cos(min(cap, math.pi)),
        math.cos(min(cap + ang_rate * 2.0 * step * 1.1, math.pi)), bounds, state,
    )  # fmt: skip


def _segments(ctx: _Context, unit: F64) -> tuple[I64, I64, I64]:
    """Culling: for each observer, runs of detection-grid indices where the satellite may be up.

    A grid point is kept when the sub-satellite point is within the footprint cap of the observer
    (a BLAS product of unit vectors); each run of kept points is widened by one point on each
    side, which lies outside the cap and so below the threshold. The grid point nearest any
    culmination above the threshold is always kept. Returns (observer, first, last) per run
    (inclusive detection-grid indices), observer-major.
    """
    # Two levels: every 4th grid point with a cap widened by two steps of motion (BLAS), then
    # the grid points around the hits, each tested exactly against the cap.
    u32 = unit.astype(np.float32)
    g = ctx.grid_unit.shape[1]
    coarse = u32 @ ctx.grid_unit[:, ::4]  # (n, ceil(G / 4))
    r1, c1 = np.nonzero(coarse > np.float32(ctx.cos_cap_coarse))
    del coarse
    cols = (c1[:, None] * 4 + np.arange(-2, 2)).ravel()
    rows = np.repeat(r1, 4)
    ok = (cols >= 0) & (cols < g)
    rows, cols = rows[ok], cols[ok]
    cos = (np.take(np.ascontiguousarray(u32.T), rows, axis=1) * np.take(ctx.grid_unit, cols, axis=1)).sum(
        axis=0
    )
    hit = cos > np.float32(ctx.cos_cap)
    rows, cols = rows[hit], cols[hit]
    if rows.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    new = np.ones(rows.size, dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], rows.size) - 1
    first = np.maximum(cols[starts] - 1, 0)
    last = np.minimum(cols[ends] + 1, g - 1)
    return rows[starts].astype(np.int64), first.astype(np.int64), last.astype(np.int64)


def _empty(ctx: _Context, n_obs: int) -> PassTable:
    arrays: dict[str, Any] = {name: np.empty(0) for name in _ARRAY_FIELDS}
    arrays["observer"] = np.empty(0, dtype=np.int64)
    arrays["visible"] = np.empty(0, dtype=bool)
    return PassTable(ctx.name, n_obs, ctx.t0, ctx.t1, ctx.min_el, ctx.twilight, **arrays)


def _chunk(ctx: _Context, obs_all: _Observers, offset: int, n_total: int) -> PassTable:
    """All passes of a chunk of observers (indices ``offset``... in the full table)."""
    track = ctx.track
    rows, first, last = _segments(ctx, obs_all.unit)
    if rows.size == 0:
        return _empty(ctx, n_total)
    lengths = last - first + 1
    total = int(lengths.sum())
    seg_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    seg_of = np.repeat(np.arange(rows.size), lengths)
    pos = np.arange(total, dtype=np.int64)
    j = (pos - seg_start + first[seg_of]) * ctx.m  # index into the interpolation table
    ob = rows[seg_of]
    del seg_of
    # sin(elevation) - sin(threshold) on the detection grid
    d = track.r[j] - obs_all.pos[ob]
    f = np.einsum("ij,ij->i", d, obs_all.up[ob]) / np.sqrt(np.einsum("ij,ij->i", d, d)) - ctx.sin_min
    del d
    seg_last = seg_start + np.repeat(lengths, lengths) - 1
    interior = (pos > seg_start) & (pos < seg_last)
    prev = np.roll(f, 1)
    nxt = np.roll(f, -1)
    cand = np.flatnonzero(interior & (f >= prev) & (f > nxt))
    if cand.size == 0:
        return _empty(ctx, n_total)
    last_le = np.maximum.accumulate(np.where(f <= 0.0, pos, -1))
    first_le = np.minimum.accumulate(np.where(f <= 0.0, pos, total)[::-1])[::-1]

    pair = _Pair(np.ascontiguousarray(obs_all.pos[ob[cand]].T), np.ascontiguousarray(obs_all.up[ob[cand]].T))
    big_h = track.h * ctx.m
    tj = track.t[j[cand]]
    fm, f0, fp = prev[cand], f[cand], nxt[cand]
    del prev, nxt

    def rate_newton(x: F64, idx: I64) -> tuple[F64, F64]:
        _, s1, s2 = _el_derivatives_t(*track.state3_t(x), pair.take(idx))
        return s1, s2

    # culmination: Newton on the elevation rate from the vertex of the parabola through the grid
    curv = fm - 2.0 * f0 + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curv < 0.0, 0.5 * big_h * (fm - fp) / curv, 0.0)
    guess = tj + np.clip(shift, -big_h, big_h)
    falling = np.zeros(cand.size, dtype=bool)
    tc = _newton_root(rate_newton, tj - big_h, tj + big_h, guess, falling)
    fc = _el_derivatives_t(*track.state3_t(tc), pair)[0] - ctx.sin_min
    keep = np.flatnonzero(fc > 0.0)
    if keep.size == 0:
        return _empty(ctx, n_total)
    cand, tc, fc, tj, pair = cand[keep], tc[keep], fc[keep], tj[keep], pair.take(keep)
    # rise: the last grid point at or below the threshold before the culmination, same run
    q_before = np.where(tj <= tc, cand, cand - 1)
    q_after = np.where(tj >= tc, cand, cand + 1)
    lr = last_le[q_before]
    rs = first_le[q_after]
    rise_ok = lr >= seg_start[cand]
    set_ok = rs <= seg_last[cand]
    # one pass per run above the threshold: keep the highest culmination of each
    key_obs = ob[cand]
    key_run = np.where(rise_ok, lr, -1 - rs)
    order = np.lexsort((-fc, key_run, key_obs))
    take = np.ones(order.size, dtype=bool)
    take[1:] = (key_obs[order][1:] != key_obs[order][:-1]) | (key_run[order][1:] != key_run[order][:-1])
    sel = order[take]
    cand, tc, fc, rise_ok, set_ok, lr, rs = (
        cand[sel],
        tc[sel],
        fc[sel],
        rise_ok[sel],
        set_ok[sel],
        lr[sel],
        rs[sel],
    )
    pair = pair.take(sel)

    def level_newton(x: F64, idx: I64) -> tuple[F64, F64]:
        s0, s1, _ = _el_derivatives_t(*track.state3_t(x), pair.take(idx))
        return s0 - ctx.sin_min, s1

    # brackets from the grid: [last point below, min(next point, culmination)], and for the set
    # [max(previous point, culmination), first point below]; first guesses by linear interpolation
    lr_c = np.where(rise_ok, lr, cand)
    rs_c = np.where(set_ok, rs, cand)
    r_lo, f_lo = track.t[j[lr_c]], f[lr_c]
    nxt_pt = np.minimum(lr_c + 1, total - 1)
    r_hi = np.where(track.t[j[nxt_pt]] < tc, track.t[j[nxt_pt]], tc)
    f_hi = np.where(track.t[j[nxt_pt]] < tc, f[nxt_pt], fc)
    s_hi, g_hi = track.t[j[rs_c]], f[rs_c]
    prv_pt = np.maximum(rs_c - 1, 0)
    s_lo = np.where(track.t[j[prv_pt]] > tc, track.t[j[prv_pt]], tc)
    g_lo = np.where(track.t[j[prv_pt]] > tc, f[prv_pt], fc)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_guess = r_lo - f_lo * (r_hi - r_lo) / (f_hi - f_lo)
        s_guess = s_lo - g_lo * (s_hi - s_lo) / (g_hi - g_lo)
    n = cand.size
    t_rise = _newton_root(
        level_newton, r_lo, r_hi, _fill(r_guess, 0.5 * (r_lo + r_hi)), np.ones(n, dtype=bool)
    )
    t_set = _newton_root(
        level_newton, s_lo, s_hi, _fill(s_guess, 0.5 * (s_lo + s_hi)), np.zeros(n, dtype=bool)
    )
    t_rise = np.where(rise_ok, t_rise, np.nan)
    t_set = np.where(set_ok, t_set, np.nan)
    # passes overlapping [t0, t1]
    inside = ~(t_set < ctx.t0) & ~(t_rise > ctx.t1)  # a NaN end counts as open
    sel = np.flatnonzero(inside)
    idx = ob[cand[sel]]
    obs = obs_all.take(idx)
    return _describe(ctx, obs, idx + offset, t_rise[sel], tc[sel], t_set[sel], n_total)


def _describe(
    ctx: _Context, obs: _Observers, observer: I64, t_rise: F64, tc: F64, t_set: F64, n_total: int
) -> PassTable:
    """Look angles at the events, the visible part of each pass and its magnitude."""
    track = ctx.track
    rise_az, rise_el, _, _ = _look(track, _fill(t_rise, tc), obs)
    set_az, set_el, _, _ = _look(track, _fill(t_set, tc), obs)
    culm_az, culm_el, culm_rng, _ = _look(track, tc, obs)
    nan = np.full(tc.shape, np.nan)
    rise_az, rise_el = np.where(np.isnan(t_rise), nan, rise_az), np.where(np.isnan(t_rise), nan, rise_el)
    set_az, set_el = np.where(np.isnan(t_set), nan, set_az), np.where(np.isnan(t_set), nan, set_el)

    # sunlit: the longest sunlit stretch of [rise, set]
    a = _fill(t_rise, track.t[0])
    b = _fill(t_set, track.t[-1])
    bounds, state = ctx.lit_bounds, ctx.lit_state
    i_a = np.searchsorted(bounds, a, side="right") - 1
    i_b = np.searchsorted(bounds, b, side="right") - 1
    best_lo, best_hi = nan.copy(), nan.copy()
    best_len = np.full(tc.shape, -1.0)
    for k in range(int(np.max(i_b - i_a, initial=0)) + 1):
        i = np.minimum(i_a + k, state.size - 1)
        lo = np.maximum(a, bounds[i])
        hi = np.minimum(b, bounds[i + 1])
        good = (i_a + k <= i_b) & state[i] & (hi > lo) & (hi - lo > best_len)
        best_lo, best_hi = np.where(good, lo, best_lo), np.where(good, hi, best_hi)
        best_len = np.where(good, hi - lo, best_len)
    lit = best_len > 0

    # observer in darkness: the Sun below the twilight elevation; at most one crossing per pass
    sin_tw = math.sin(math.radians(ctx.twilight))
    lo_t = np.where(lit, best_lo, tc)
    hi_t = np.where(lit, best_hi, tc)
    s_lo = _sun_el_sin(track, lo_t, obs) - sin_tw
    s_hi = _sun_el_sin(track, hi_t, obs) - sin_tw
    dark_lo, dark_hi = s_lo < 0, s_hi < 0
    cross = lit & (dark_lo != dark_hi)
    vis_lo, vis_hi = lo_t.copy(), hi_t.copy()
    if cross.any():
        ic = np.flatnonzero(cross)
        sub = obs.take(ic)
        x = _bracketed_root(
            lambda t: _sun_el_sin(track, t, sub) - sin_tw, lo_t[ic], hi_t[ic], s_lo[ic], s_hi[ic]
        )
        vis_lo[ic] = np.where(dark_hi[ic], x, lo_t[ic])
        vis_hi[ic] = np.where(dark_lo[ic], x, hi_t[ic])
    visible = lit & (dark_lo | dark_hi) & (vis_hi > vis_lo)
    vis_lo, vis_hi = np.where(visible, vis_lo, nan), np.where(visible, vis_hi, nan)

    ts = _fill(vis_lo, tc)
    te = _fill(vis_hi, tc)
    vs_az, vs_el, _, _ = _look(track, ts, obs)
    ve_az, ve_el, _, _ = _look(track, te, obs)
    peak_t = np.where((tc >= ts) & (tc <= te), tc, np.where(vs_el >= ve_el, ts, te))
    vp_az, vp_el, vp_rng, vp_r = _look(track, peak_t, obs)
    to_sun = track.sun_itrf(peak_t) - vp_r
    to_obs = obs.pos - vp_r
    cos_phase = np.einsum("ij,ij->i", to_sun, to_obs) / (
        np.linalg.norm(to_sun, axis=-1) * np.linalg.norm(to_obs, axis=-1)
    )
    phase = np.degrees(np.arccos(np.clip(cos_phase, -1.0, 1.0)))
    mag = visual_magnitude(vp_rng, phase, ctx.std_mag)

    def hide(x: F64) -> F64:
        return np.where(visible, x, nan)

    return PassTable(
        ctx.name, n_total, ctx.t0, ctx.t1, ctx.min_el, ctx.twilight,
        observer=observer.astype(np.int64),
        rise_t=t_rise, rise_az=rise_az, rise_el=rise_el,
        culm_t=tc, culm_az=culm_az, culm_el=culm_el, culm_range_km=culm_rng,
        set_t=t_set, set_az=set_az, set_el=set_el,
        visible=visible,
        vis_start_t=vis_lo, vis_start_az=hide(vs_az), vis_start_el=hide(vs_el),
        vis_peak_t=hide(peak_t), vis_peak_az=hide(vp_az), vis_peak_el=hide(vp_el),
        vis_end_t=vis_hi, vis_end_az=hide(ve_az), vis_end_el=hide(ve_el),
        magnitude=hide(mag),
    )  # fmt: skip


def _fill(x: F64, default: F64 | float) -> F64:
    """``x`` with its NaNs replaced by ``default`` (broadcast)."""
    return np.asarray(np.where(np.isnan(x), default, x), dtype=np.float64)


def _sorted(table: PassTable) -> PassTable:
    order = np.lexsort((table.culm_t, table.observer))
    return table.select(order)


def find_passes(
    elements: Elements,
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    height_km: ArrayLike = 0.0,
    *,
    t0_unix: float,
    t1_unix: float,
    min_elevation_deg: float = 0.0,
    twilight: str | float = "civil",
    std_magnitude: float = DEFAULT_STD_MAGNITUDE,
    step_s: float = 60.0,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
    backend: Literal["numpy", "dask"] = "numpy",
    chunk_observers: int | None = None,
) -> PassTable:
    """Passes of a satellite over observers (1-D arrays or scalars) that overlap [t0, t1].

    Observers are WGS84 latitudes, longitudes (degrees) and heights (km). Rise and set are where
    the geometric elevation crosses ``min_elevation_deg`` (default 0°, the geometric horizon, no
    refraction), as in Skyfield's ``find_events(altitude_degrees=...)``; times are refined to
    well under a millisecond. ``twilight`` is a :data:`~proxima.orbit.sun.TWILIGHT` preset name
    or a Sun elevation in degrees; ``std_magnitude`` feeds :func:`visual_magnitude`, evaluated at
    the highest point of the visible part. Rises and sets are searched up to half an orbit (at most 6 h)
    beyond the window; one not found (a satellite that stays up, e.g. a geostationary one) has a
    NaN time. The visible part is the
    longest sunlit stretch of a pass, cut where the Sun crosses the twilight elevation (assumed
    to happen at most once in a pass). ``step_s`` is the detection grid (SGP4 runs three times
    as often); passes are found from elevation maxima, so short low passes are not missed.

    ``backend="dask"`` computes chunks of ``chunk_observers`` in parallel with Dask (imported only
    then; the default scheduler, or a ``dask.distributed`` client if one is active). Raises
    :class:`OrbitInputError` for bad observers, an empty or reversed window, or times too far from
    the elements' epoch (``max_span_days``).
    """
    lat, lon, h = _observers(lat_deg, lon_deg, height_km)
    t0, t1 = float(t0_unix), float(t1_unix)
    _check_window(t0, t1)
    if not -10.0 <= min_elevation_deg <= 89.0:
        raise OrbitInputError(f"minimum elevation {min_elevation_deg}° is outside [-10°, 89°]")
    if not math.isfinite(std_magnitude):
        raise OrbitInputError("the standard magnitude must be a finite number")
    if backend not in ("numpy", "dask"):
        raise OrbitInputError(f"unknown backend {backend!r} (use 'numpy' or 'dask')")
    ctx = _prepare(
        elements, t0, t1, float(min_elevation_deg), _twilight(twilight), float(std_magnitude),
        _check_step(step_s), max_span_days,
    )  # fmt: skip
    n = lat.size
    per = chunk_observers or max(1, min(n, _CHUNK_POINTS // max(ctx.grid_unit.shape[1], 1)))
    if per < 1:
        raise OrbitInputError("chunk_observers must be at least 1")
    starts = range(0, n, per)

    def run(s: int) -> PassTable:
        sl = slice(s, min(n, s + per))
        return _chunk(ctx, _Observers.build(lat[sl], lon[sl], h[sl]), s, n)

    if backend == "dask":
        try:
            dask: Any = importlib.import_module("dask")
        except ImportError as exc:
            raise OrbitInputError("backend 'dask' needs the dask package (pip install dask)") from exc
        tasks = [dask.delayed(run)(s) for s in starts]
        parts = list(dask.compute(*tasks))
    else:
        parts = [run(s) for s in starts]
    return _sorted(_concat(parts, _empty(ctx, n)))


# --------------------------------------------------------------------------------------------
# Spot the Station listing


def compass(az_deg: float) -> str:
    """The 16-point compass direction of an azimuth ("N", "NNE", ... "NNW")."""
    if not math.isfinite(az_deg):
        return "?"
    return COMPASS_POINTS[math.floor((az_deg % 360.0) / 22.5 + 0.5) % 16]


@dataclass(frozen=True, slots=True)
class Sighting:
    """One line of a Spot-the-Station-style listing, in the caller's local time.

    ``date`` is like "Wed Mar 11", ``time`` like "8:04 PM", ``local_iso`` the appearance time as
    ISO 8601 with its UTC offset; ``appears``/``disappears`` read like "10° above NW".
    """

    t_unix: float
    local_iso: str
    date: str
    time: str
    minutes_visible: int
    max_height_deg: int
    appears: str
    disappears: str
    magnitude: float


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _offset_text(offset_s: float) -> str:
    sign = "-" if offset_s < 0 else "+"
    minutes = round(abs(offset_s) / 60.0)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local_time_parts(t_unix: float, offset_s: float) -> tuple[str, str, str]:
    """(ISO with offset, "Wed Mar 11", "8:04 PM") for a Unix time shifted by a UTC offset."""
    local = np.datetime64(math.floor(t_unix + offset_s), "s")
    iso = str(local) + _offset_text(offset_s)
    day = local.astype("datetime64[D]")
    weekday = (int(day.astype(np.int64)) + 3) % 7  # 1970-01-01 was a Thursday
    year_month = str(day)[:7]
    month = int(year_month[5:7])
    hh, mm = int(iso[11:13]), int(iso[14:16])
    ampm = "AM" if hh < 12 else "PM"
    date = f"{_DAYS[weekday]} {_MONTHS[month - 1]} {int(str(day)[8:10])}"
    return iso, date, f"{(hh % 12) or 12}:{mm:02d} {ampm}"


def _where(el: float, az: float) -> str:
    return f"{max(0, round(el))}° above {compass(az)}"


def sightings(
    passes: PassTable | Sequence[Pass],
    utc_offset_s: float | Callable[[float], float] = 0.0,
) -> list[Sighting]:
    """Visible passes as a Spot the Station listing (only passes with a visible part), time-ordered.

    ``passes`` is a list of :class:`Pass` or a table (then its observer 0, the usual one-observer
    call). ``utc_offset_s`` is the local time's offset from UTC in seconds, or a function giving it for a
    Unix time (so the caller can apply a time zone's daylight saving rules; this module has no
    clock and no zone database). Minutes are rounded, with at least 1.
    """
    items = passes.for_observer(0) if isinstance(passes, PassTable) else list(passes)
    out: list[Sighting] = []
    for p in items:
        v = p.visible
        if v is None:
            continue
        offset = utc_offset_s(v.start.t_unix) if callable(utc_offset_s) else float(utc_offset_s)
        iso, date, clock = local_time_parts(v.start.t_unix, offset)
        out.append(
            Sighting(
                t_unix=v.start.t_unix,
                local_iso=iso,
                date=date,
                time=clock,
                minutes_visible=max(1, round(v.duration_s / 60.0)),
                max_height_deg=round(v.peak.el_deg),
                appears=_where(v.start.el_deg, v.start.az_deg),
                disappears=_where(v.end.el_deg, v.end.az_deg),
                magnitude=v.magnitude,
            )
        )
    out.sort(key=lambda s: s.t_unix)
    return out
