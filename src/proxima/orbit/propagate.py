"""SGP4 propagation of one or many element sets over a time array (the C++ ``SatrecArray``).

:func:`propagate` returns a :class:`Track`: TEME positions and velocities of shape (S, T, 3) for S
element sets and T times, SGP4's error code per point, and helpers for Earth-fixed states,
geodetic coordinates and speeds. :func:`geo_relay_itrf` places a :class:`GeoRelay` in ITRF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import SGP4_ERRORS, SatrecArray

from proxima.errors import ElementsError, OrbitInputError
from proxima.orbit.elements import Elements, GeoRelay
from proxima.orbit.frames import (
    EARTH_ROTATION_RAD_S,
    WGS84_A_KM,
    itrf_to_geodetic,
    teme_position_to_itrf,
    teme_to_itrf,
)
from proxima.orbit.timescale import SECONDS_PER_DAY, UNIX_EPOCH_JD, gmst_rad, unix_to_iso

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEFAULT_MAX_SPAN_DAYS",
    "GEO_ALTITUDE_KM",
    "Track",
    "geo_relay_itrf",
    "geo_relay_teme",
    "ground_track",
    "propagate",
    "propagate_minutes",
]

DEFAULT_MAX_SPAN_DAYS = 30.0
"""Times further than this from an element set's epoch are refused by default: SGP4 errors grow
by kilometres a day for low orbits, so a month away the positions are no longer meaningful."""
GEO_ALTITUDE_KM = 35786.0
"""Altitude of the geostationary orbit above the equator (radius 42,164 km)."""

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Track:
    """States of S element sets at T times; arrays are (S, T, 3) or (S, T); units km, km/s.

    ``error`` is SGP4's code per point (0 = fine; 1-4 bad elements, 6 = decayed); positions and
    velocities are NaN where it is not 0.
    """

    names: tuple[str, ...]
    t_unix: F64
    r_teme_km: F64
    v_teme_km_s: F64
    error: NDArray[np.uint8]

    def itrf(self) -> tuple[F64, F64]:
        """Earth-fixed position (km) and Earth-relative velocity (km/s), each (S, T, 3)."""
        return teme_to_itrf(self.r_teme_km, self.v_teme_km_s, self.t_unix[None, :])

    def geodetic(self) -> tuple[F64, F64, F64]:
        """WGS84 latitude (deg), longitude (deg, -180..180) and altitude (km), each (S, T)."""
        return itrf_to_geodetic(teme_position_to_itrf(self.r_teme_km, self.t_unix[None, :]))

    def subpoint(self) -> tuple[F64, F64]:
        """Sub-satellite point (geodetic latitude, longitude) in degrees, each (S, T)."""
        lat, lon, _ = self.geodetic()
        return lat, lon

    def speed_km_s(self) -> F64:
        """Inertial speed (TEME), (S, T)."""
        return np.asarray(np.linalg.norm(self.v_teme_km_s, axis=-1), dtype=np.float64)

    def ground_speed_km_s(self) -> F64:
        """Speed of the sub-satellite point over the WGS84 surface, (S, T).

        The Earth-relative velocity's horizontal part, scaled from the satellite's radius down to
        the ellipsoid radius beneath it.
        """
        r, v = self.itrf()
        rn = np.linalg.norm(r, axis=-1)
        radial = np.sum(r * v, axis=-1) / rn
        horizontal = np.sqrt(np.maximum(np.sum(v * v, axis=-1) - radial * radial, 0.0))
        _, _, alt = itrf_to_geodetic(r)
        return np.asarray(horizontal * (rn - alt) / rn, dtype=np.float64)


def _as_list(elements: Elements | Sequence[Elements]) -> list[Elements]:
    items = [elements] if isinstance(elements, Elements) else list(elements)
    if not items:
        raise OrbitInputError("no element sets to propagate")
    return items


def _check(items: list[Elements], t: F64, error: NDArray[np.uint8]) -> None:
    bad = np.argwhere(error != 0)
    if bad.size == 0:
        return
    s, k = (int(v) for v in bad[0])
    code = int(error[s, k])
    when = unix_to_iso(float(t[k])) if math.isfinite(t[k]) else repr(float(t[k]))
    what = SGP4_ERRORS.get(code, f"SGP4 error {code}")
    name = items[s].name
    if code == 6:
        raise OrbitInputError(
            f"{name}: SGP4 says the satellite has decayed by {when} (error 6: {what}); "
            "use times nearer the elements' epoch or newer elements"
        )
    raise ElementsError(f"SGP4 rejects the elements at {when} (error {code}: {what})", source=name)


def _run(items: list[Elements], jd: F64, fr: F64) -> tuple[F64, F64, NDArray[np.uint8]]:
    sats = SatrecArray([e.satrec() for e in items])
    e, r, v = sats.sgp4(np.ascontiguousarray(jd), np.ascontiguousarray(fr))
    return r, v, np.asarray(e, dtype=np.uint8)


def propagate(
    elements: Elements | Sequence[Elements],
    t_unix: ArrayLike,
    *,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
    check: bool = True,
) -> Track:
    """Propagate element sets to Unix times with SGP4 (vectorized C++); arrays are (S, T[, 3]).

    Times further than ``max_span_days`` from an element set's epoch raise
    :class:`OrbitInputError` (None disables the check). With ``check`` an SGP4 error raises:
    decay (6) as :class:`OrbitInputError` (the time is past the elements' useful life), other codes
    as :class:`ElementsError` (the elements themselves are invalid); without it the codes are left
    in :attr:`Track.error`.

    Float64 Unix seconds resolve about 0.2 µs today (under 2 mm along track); for sub-millimetre
    work relative to the epoch use :func:`propagate_minutes`.
    """
    items = _as_list(elements)
    t = np.atleast_1d(np.asarray(t_unix, dtype=np.float64))
    if t.ndim != 1:
        raise OrbitInputError("times must be a scalar or a 1-D array")
    if not np.all(np.isfinite(t)):
        raise OrbitInputError("times must be finite")
    if max_span_days is not None and t.size:
        for e in items:
            far = max(abs(float(t.min()) - e.epoch_unix), abs(float(t.max()) - e.epoch_unix))
            span = far / SECONDS_PER_DAY
            if span > max_span_days:
                raise OrbitInputError(
                    f"{e.name}: time {span:.1f} days from the elements' epoch "
                    f"({unix_to_iso(e.epoch_unix)}) exceeds the {max_span_days:g}-day limit; "
                    "use newer elements or a larger max_span_days"
                )
    days = np.floor(t / SECONDS_PER_DAY)
    jd = days + UNIX_EPOCH_JD
    fr = (t - days * SECONDS_PER_DAY) / SECONDS_PER_DAY
    r, v, error = _run(items, jd, fr)
    if check:
        _check(items, t, error)
    return Track(tuple(e.name for e in items), t, r, v, error)


def propagate_minutes(elements: Elements, tsince_min: ArrayLike, *, check: bool = True) -> Track:
    """Propagate one element set to times given in minutes since its epoch (SGP4's ``tsince``).

    Exact to SGP4's own precision (used to reproduce Vallado's verification output); the Track's
    ``t_unix`` is the corresponding Unix time.
    """
    items = [elements]
    m = np.atleast_1d(np.asarray(tsince_min, dtype=np.float64))
    sat = elements.satrec()
    jd = np.full(m.shape, sat.jdsatepoch)
    fr = sat.jdsatepochF + m / 1440.0
    r, v, error = _run(items, jd, fr)
    t = elements.epoch_unix + m * 60.0
    if check:
        _check(items, t, error)
    return Track((elements.name,), t, r, v, error)


def ground_track(
    elements: Elements,
    start_unix: float,
    *,
    orbits: float = 1.0,
    step_s: float = 30.0,
    max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS,
) -> tuple[F64, F64, F64]:
    """Sub-satellite points over ``orbits`` revolutions from ``start_unix``: (t_unix, lat, lon).

    Longitudes are in [-180, 180); a map drawing should break the line where consecutive
    longitudes jump by more than 180°.
    """
    if not (orbits > 0 and step_s > 0):
        raise OrbitInputError("orbits and step_s must be positive")
    duration = orbits * elements.period_minutes * 60.0
    t = start_unix + np.arange(0.0, duration + step_s / 2, step_s)
    track = propagate(elements, t, max_span_days=max_span_days)
    lat, lon = track.subpoint()
    return t, lat[0], lon[0]


def geo_relay_itrf(relay: GeoRelay, t_unix: ArrayLike) -> tuple[F64, F64]:
    """ITRF position and (zero) Earth-relative velocity of a station-kept relay, each (T, 3).

    The relay sits on the equator at its longitude, 35,786 km above the WGS84 equator.
    """
    t = np.atleast_1d(np.asarray(t_unix, dtype=np.float64))
    lon = math.radians(relay.longitude_deg)
    radius = WGS84_A_KM + GEO_ALTITUDE_KM
    r = np.empty((t.size, 3))
    r[:, 0] = radius * math.cos(lon)
    r[:, 1] = radius * math.sin(lon)
    r[:, 2] = 0.0
    return r, np.zeros_like(r)


def geo_relay_teme(relay: GeoRelay, t_unix: ArrayLike) -> tuple[F64, F64]:
    """TEME position and inertial velocity of a station-kept relay, each (T, 3)."""
    t = np.atleast_1d(np.asarray(t_unix, dtype=np.float64))
    angle = gmst_rad(t) + math.radians(relay.longitude_deg)
    radius = WGS84_A_KM + GEO_ALTITUDE_KM
    r = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.zeros_like(angle)], axis=-1)
    w = EARTH_ROTATION_RAD_S
    v = np.stack([-w * r[:, 1], w * r[:, 0], np.zeros_like(angle)], axis=-1)
    return r, v
