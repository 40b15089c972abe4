"""Reference frames: TEME -> ITRF, ITRF <-> WGS84 geodetic, topocentric look angles, footprints.

TEME -> ITRF is a rotation by GMST (IAU 1982, UT1 = UTC) about the pole; polar motion (< 0.5",
about 15 m on the ground) is neglected, as SGP4's own accuracy (km) makes it irrelevant.
Positions are km, velocities km/s, angles degrees; everything is vectorized over leading axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.errors import OrbitInputError
from proxima.orbit.timescale import gmst_rad

__all__ = [
    "EARTH_MEAN_RADIUS_KM",
    "EARTH_ROTATION_RAD_S",
    "WGS84_A_KM",
    "WGS84_E2",
    "WGS84_F",
    "Topocentric",
    "footprint_radius",
    "geodetic_to_itrf",
    "itrf_to_geodetic",
    "teme_position_to_itrf",
    "teme_to_itrf",
    "topocentric",
]

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
WGS84_B_KM = WGS84_A_KM * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
_EP2 = WGS84_E2 / (1.0 - WGS84_E2)
EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, used where a spherical Earth is good enough (footprints)."""
EARTH_ROTATION_RAD_S = 7.292115146706979e-5
"""Earth's rotation rate as used by Vallado's TEME -> PEF velocity transformation."""

F64 = NDArray[np.float64]


def teme_position_to_itrf(r_teme_km: ArrayLike, t_unix: ArrayLike) -> F64:
    """Rotate TEME positions (..., 3) to Earth-fixed ITRF; ``t_unix`` broadcasts against r[..., 0]."""
    r = np.asarray(r_teme_km, dtype=np.float64)
    theta = gmst_rad(t_unix)
    c, s = np.cos(theta), np.sin(theta)
    x = c * r[..., 0] + s * r[..., 1]
    y = -s * r[..., 0] + c * r[..., 1]
    return np.stack(np.broadcast_arrays(x, y, r[..., 2]), axis=-1)


def teme_to_itrf(r_teme_km: ArrayLike, v_teme_km_s: ArrayLike, t_unix: ArrayLike) -> tuple[F64, F64]:
    """Rotate TEME position and velocity to ITRF (polar motion neglected).

    The returned velocity is Earth-relative (the ω × r term removed), as needed for range rates
    and ground speed.
    """
    theta = gmst_rad(t_unix)
    c, s = np.cos(theta), np.sin(theta)
    r_itrf = teme_position_to_itrf(r_teme_km, t_unix)
    v = np.asarray(v_teme_km_s, dtype=np.float64)
    vx = c * v[..., 0] + s * v[..., 1] + EARTH_ROTATION_RAD_S * r_itrf[..., 1]
    vy = -s * v[..., 0] + c * v[..., 1] - EARTH_ROTATION_RAD_S * r_itrf[..., 0]
    v_itrf = np.stack(np.broadcast_arrays(vx, vy, v[..., 2]), axis=-1)
    return r_itrf, v_itrf


def itrf_to_geodetic(r_itrf_km: ArrayLike) -> tuple[F64, F64, F64]:
    """WGS84 geodetic (lat_deg, lon_deg, alt_km) of ITRF positions of shape (..., 3).

    Bowring's iteration, run to convergence (four rounds give < 1 µm from the surface to beyond
    geostationary altitude); the height formula is the one stable at the poles and the equator.
    """
    r = np.asarray(r_itrf_km, dtype=np.float64)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    beta = np.arctan2(z, (1.0 - WGS84_F) * p)
    lat = beta
    for _ in range(4):
        sb, cb = np.sin(beta), np.cos(beta)
        lat = np.arctan2(z + _EP2 * WGS84_B_KM * sb**3, p - WGS84_E2 * WGS84_A_KM * cb**3)
        beta = np.arctan2((1.0 - WGS84_F) * np.sin(lat), np.cos(lat))
    sl, cl = np.sin(lat), np.cos(lat)
    n = WGS84_A_KM / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    alt = p * cl + z * sl - WGS84_A_KM * WGS84_A_KM / n
    return np.degrees(lat), np.degrees(lon), alt


def _check_lat(lat_deg: F64) -> None:
    if not np.all(np.isfinite(lat_deg)) or np.any(np.abs(lat_deg) > 90.0):
        bad = lat_deg[~(np.abs(lat_deg) <= 90.0)]
        raise OrbitInputError(f"latitude {float(bad.flat[0])}° is outside [-90°, 90°]")


def geodetic_to_itrf(lat_deg: ArrayLike, lon_deg: ArrayLike, alt_km: ArrayLike = 0.0) -> F64:
    """ITRF position (..., 3) in km of WGS84 geodetic coordinates; latitudes beyond ±90° raise."""
    lat_a = np.asarray(lat_deg, dtype=np.float64)
    _check_lat(lat_a)
    lat = np.radians(lat_a)
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_km, dtype=np.float64)
    sl, cl = np.sin(lat), np.cos(lat)
    n = WGS84_A_KM / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    x = (n + h) * cl * np.cos(lon)
    y = (n + h) * cl * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * sl
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


@dataclass(frozen=True, slots=True)
class Topocentric:
    """Look angles from observers to targets: arrays of shape (observers, *target_shape)."""

    az_deg: F64
    el_deg: F64
    range_km: F64
    range_rate_km_s: F64 | None


def topocentric(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    alt_km: ArrayLike,
    r_itrf_km: ArrayLike,
    v_itrf_km_s: ArrayLike | None = None,
) -> Topocentric:
    """Azimuth (from north, clockwise), elevation and range from observers to ITRF targets.

    Observers are 1-D arrays (or scalars) of length O; targets have shape (*S, 3) (e.g. times × 3
    for one satellite). Results have shape (O, *S). With Earth-relative target velocities the
    range rate (km/s, positive when receding) is computed too. Observers are fixed to the Earth.
    """
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    alt = np.atleast_1d(np.asarray(alt_km, dtype=np.float64))
    lat, lon, alt = np.broadcast_arrays(lat, lon, alt)
    if lat.ndim != 1:
        raise OrbitInputError("observers must be given as scalars or 1-D arrays")
    obs = geodetic_to_itrf(lat, lon, alt)  # (O, 3)
    r = np.asarray(r_itrf_km, dtype=np.float64)
    extra = (1,) * (r.ndim - 1)
    d = r[None, ...] - obs.reshape((obs.shape[0], *extra, 3))
    phi = np.radians(lat).reshape((-1, *extra))
    lam = np.radians(lon).reshape((-1, *extra))
    sphi, cphi, slam, clam = np.sin(phi), np.cos(phi), np.sin(lam), np.cos(lam)
    east = -slam * d[..., 0] + clam * d[..., 1]
    north = -sphi * clam * d[..., 0] - sphi * slam * d[..., 1] + cphi * d[..., 2]
    up = cphi * clam * d[..., 0] + cphi * slam * d[..., 1] + sphi * d[..., 2]
    rng = np.sqrt(east * east + north * north + up * up)
    el = np.degrees(np.arctan2(up, np.hypot(east, north)))
    az = np.mod(np.degrees(np.arctan2(east, north)), 360.0)
    rate = None
    if v_itrf_km_s is not None:
        v = np.asarray(v_itrf_km_s, dtype=np.float64)[None, ...]
        rate = np.sum(d * v, axis=-1) / rng
    return Topocentric(az_deg=az, el_deg=el, range_km=rng, range_rate_km_s=rate)


def footprint_radius(alt_km: ArrayLike, min_el_deg: ArrayLike = 0.0) -> tuple[F64, F64]:
    """Ground radius (km along the surface) and Earth-central angle (deg) of a satellite's footprint.

    The footprint is where the satellite is at least ``min_el_deg`` above the horizon; a spherical
    Earth of mean radius is used (the ellipsoid changes it by < 0.5 %), fine for culling observers.
    """
    h = np.asarray(alt_km, dtype=np.float64)
    el = np.radians(np.asarray(min_el_deg, dtype=np.float64))
    if np.any(h <= 0.0):
        raise OrbitInputError("footprint needs a positive altitude")
    if np.any(np.abs(el) >= math.pi / 2):
        raise OrbitInputError("minimum elevation must be within (-90°, 90°)")
    rr = EARTH_MEAN_RADIUS_KM
    central = math.pi / 2 - el - np.arcsin(np.clip(rr * np.cos(el) / (rr + h), -1.0, 1.0))
    central = np.maximum(central, 0.0)
    return rr * central, np.degrees(central)
