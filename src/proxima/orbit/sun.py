"""The Sun: vectorized position (about 1" over 1900-2100), elevation, Earth shadow, twilight.

The position is Meeus' method (*Astronomical Algorithms* ch. 25, "higher accuracy"): a truncated
VSOP87 series for the Earth, the FK5 correction, the main nutation terms and annual aberration,
giving the apparent Sun in true-of-date coordinates; it is then turned to TEME (by the equation of
the equinoxes) and to ITRF (by GMST). TT is taken as UTC + 69.184 s (the offset since 2017; a few
seconds' error moves the Sun by < 0.0001°).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proxima.orbit._vsop87 import _VSOP87D_EARTH
from proxima.orbit.frames import WGS84_A_KM, teme_position_to_itrf, topocentric
from proxima.orbit.timescale import J2000_UNIX, SECONDS_PER_DAY

__all__ = [
    "AU_KM",
    "SUN_RADIUS_KM",
    "TWILIGHT",
    "sun_direction_itrf",
    "sun_elevation_deg",
    "sun_position_itrf",
    "sun_position_teme",
    "sunlit_fraction",
]

AU_KM: Final = 149_597_870.7
SUN_RADIUS_KM: Final = 695_700.0
"""Nominal solar radius (IAU 2015 Resolution B3)."""
_TT_MINUS_UTC_S: Final = 69.184

TWILIGHT: Final[dict[str, float]] = {
    "sunset": -0.833,
    "civil": -6.0,
    "nautical": -12.0,
    "astronomical": -18.0,
}
"""Sun-centre elevations (degrees) that end daylight for an observer.

- ``sunset`` −0.833°: the almanac (USNO) sunrise/sunset: upper limb on the horizon, 16′ solar
  semidiameter plus 34′ standard refraction.
- ``civil`` −6°, ``nautical`` −12°, ``astronomical`` −18°: the USNO twilight definitions (Sun's
  centre that far below the horizon). ``civil`` is the usual threshold for "observer in darkness"
  when predicting naked-eye satellite sightings (the bright ISS is seen well in civil twilight,
  which is when NASA's Spot the Station lists most sightings, around dusk and dawn).
"""

F64 = NDArray[np.float64]


def _series(name: str, tau: F64) -> F64:
    """Sum of the VSOP87 terms L0, L1, ... (or B, R) as a polynomial in tau."""
    total = np.zeros_like(tau)
    power = np.ones_like(tau)
    k = 0
    while f"{name}{k}" in _VSOP87D_EARTH:
        terms = np.asarray(_VSOP87D_EARTH[f"{name}{k}"], dtype=np.float64)
        a, b, c = terms[:, 0], terms[:, 1], terms[:, 2]
        total = total + power * np.sum(a * np.cos(b + c * tau[..., None]), axis=-1)
        power = power * tau
        k += 1
    return total * 1e-8


def _sun_true_of_date(t_unix: ArrayLike) -> tuple[F64, F64, F64, F64]:
    """Right ascension, declination (rad, true equator and equinox of date), distance (km), eqeq."""
    t = np.asarray(t_unix, dtype=np.float64)
    tc = (t + _TT_MINUS_UTC_S - J2000_UNIX) / (SECONDS_PER_DAY * 36525.0)
    tau = tc / 10.0
    lon = _series("L", tau) + math.pi  # geocentric Sun = heliocentric Earth + 180°
    lat = -_series("B", tau)
    dist_au = _series("R", tau)
    # VSOP87 -> FK5 (Meeus 32.3), arcseconds
    lam1 = lon - np.radians(1.397 * tc + 0.00031 * tc * tc)
    arcsec = math.pi / (180.0 * 3600.0)
    lon = lon - 0.09033 * arcsec
    lat = lat + 0.03916 * arcsec * (np.cos(lam1) - np.sin(lam1))
    # nutation (main terms, Meeus ch. 22) and annual aberration
    omega = np.radians(125.04452 - 1934.136261 * tc)
    l_sun = np.radians(280.4665 + 36000.7698 * tc)
    l_moon = np.radians(218.3165 + 481267.8813 * tc)
    dpsi = (
        -17.20 * np.sin(omega)
        - 1.32 * np.sin(2 * l_sun)
        - 0.23 * np.sin(2 * l_moon)
        + 0.21 * np.sin(2 * omega)
    ) * arcsec
    deps = (
        9.20 * np.cos(omega) + 0.57 * np.cos(2 * l_sun) + 0.10 * np.cos(2 * l_moon) - 0.09 * np.cos(2 * omega)
    ) * arcsec
    lam = lon + dpsi - 20.4898 * arcsec / dist_au
    eps0 = 23.0 + (26.0 + (21.448 - tc * (46.8150 + tc * (0.00059 - 0.001813 * tc))) / 60.0) / 60.0
    eps = np.radians(eps0) + deps
    se, ce = np.sin(eps), np.cos(eps)
    ra = np.arctan2(np.sin(lam) * ce - np.tan(lat) * se, np.cos(lam))
    dec = np.arcsin(np.sin(lat) * ce + np.cos(lat) * se * np.sin(lam))
    return ra, dec, dist_au * AU_KM, dpsi * ce


def sun_position_teme(t_unix: ArrayLike) -> F64:
    """Geocentric apparent Sun position in TEME (the frame of SGP4 output), km, shape (..., 3)."""
    ra, dec, dist, eqeq = _sun_true_of_date(t_unix)
    ra_teme = ra - eqeq  # TEME's x axis is the equinox moved back by the equation of the equinoxes
    cd = np.cos(dec)
    return np.stack([dist * cd * np.cos(ra_teme), dist * cd * np.sin(ra_teme), dist * np.sin(dec)], axis=-1)


def sun_position_itrf(t_unix: ArrayLike) -> F64:
    """Geocentric apparent Sun position in ITRF (Earth-fixed), km, shape (..., 3)."""
    t = np.asarray(t_unix, dtype=np.float64)
    return teme_position_to_itrf(sun_position_teme(t), t)


def sun_direction_itrf(t_unix: ArrayLike) -> F64:
    """Unit vector towards the Sun in ITRF, shape (..., 3)."""
    r = sun_position_itrf(t_unix)
    return np.asarray(r / np.linalg.norm(r, axis=-1, keepdims=True), dtype=np.float64)


def sun_elevation_deg(lat_deg: ArrayLike, lon_deg: ArrayLike, alt_km: ArrayLike, t_unix: ArrayLike) -> F64:
    """Sun-centre elevation (degrees, geometric, no refraction) for observers × times: (O, T)."""
    t = np.atleast_1d(np.asarray(t_unix, dtype=np.float64))
    return topocentric(lat_deg, lon_deg, alt_km, sun_position_itrf(t)).el_deg


def sunlit_fraction(r_sat_km: ArrayLike, r_sun_km: ArrayLike, *, earth_radius_km: float = WGS84_A_KM) -> F64:
    """Fraction of the solar disk seen from satellites: 0 in umbra, 1 sunlit, between in penumbra.

    Conical shadow of a spherical Earth (equatorial radius by default): the overlap of the Sun's
    and the Earth's disks as seen from the satellite. Both positions in the same Earth-centred
    frame, shapes broadcasting to (..., 3). The value 0.5 is reached when the Sun's centre is on
    the Earth's limb, the criterion of a geometric "is sunlit" test.
    """
    r = np.asarray(r_sat_km, dtype=np.float64)
    s = np.asarray(r_sun_km, dtype=np.float64)
    to_sun = s - r
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_earth = np.linalg.norm(r, axis=-1)
    a = np.arcsin(np.clip(SUN_RADIUS_KM / d_sun, 0.0, 1.0))
    b = np.arcsin(np.clip(earth_radius_km / d_earth, 0.0, 1.0))
    cos_c = -np.sum(to_sun * r, axis=-1) / (d_sun * d_earth)
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        x1 = np.clip((c * c + a * a - b * b) / (2 * c * a), -1.0, 1.0)
        x2 = np.clip((c * c + b * b - a * a) / (2 * c * b), -1.0, 1.0)
        k = (-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b)
        overlap = a * a * np.arccos(x1) + b * b * np.arccos(x2) - 0.5 * np.sqrt(np.maximum(k, 0.0))
        partial = 1.0 - overlap / (math.pi * a * a)
    out = np.where(
        c >= a + b,
        1.0,
        np.where(c <= b - a, 0.0, np.where(c <= a - b, 1.0 - (b * b) / (a * a), partial)),
    )
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)
