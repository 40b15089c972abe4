"""Where a satellite is at one instant: sub-satellite point, altitude, speeds, sunlight, footprint.

The answer to "where is the ISS now" (the caller passes "now"); see :func:`satellite_state`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from proxima.errors import OrbitInputError
from proxima.orbit.frames import footprint_radius
from proxima.orbit.propagate import DEFAULT_MAX_SPAN_DAYS, propagate
from proxima.orbit.sun import sun_position_teme, sunlit_fraction

if TYPE_CHECKING:
    from proxima.orbit.elements import Elements

__all__ = ["SatelliteState", "satellite_state"]


@dataclass(frozen=True, slots=True)
class SatelliteState:
    """A satellite's state at ``t_unix``: WGS84 sub-satellite point and altitude, inertial speed,
    ground speed, the fraction of the Sun's disk it sees (sunlit when > 0.5, Skyfield's convention)
    and the radius of its footprint at 0° elevation (km along the surface)."""

    name: str
    t_unix: float
    lat_deg: float
    lon_deg: float
    alt_km: float
    speed_km_s: float
    ground_speed_km_s: float
    sunlit_fraction: float
    footprint_km: float

    @property
    def sunlit(self) -> bool:
        """Whether the Sun's centre is above the Earth's limb as seen from the satellite."""
        return self.sunlit_fraction > 0.5


def satellite_state(
    elements: Elements, t_unix: float, *, max_span_days: float | None = DEFAULT_MAX_SPAN_DAYS
) -> SatelliteState:
    """The state of one satellite at one time (SGP4, WGS84); raises :class:`OrbitInputError` for a
    non-finite time or one too far from the elements' epoch."""
    if not math.isfinite(t_unix):
        raise OrbitInputError(f"time {t_unix!r} is not finite")
    track = propagate(elements, [t_unix], max_span_days=max_span_days)
    lat, lon, alt = track.geodetic()
    r_teme = track.r_teme_km[0, 0]
    fraction = sunlit_fraction(r_teme, sun_position_teme(np.float64(t_unix)))
    radius, _ = footprint_radius(alt[0, 0])
    return SatelliteState(
        name=elements.name,
        t_unix=float(t_unix),
        lat_deg=float(lat[0, 0]),
        lon_deg=float(lon[0, 0]),
        alt_km=float(alt[0, 0]),
        speed_km_s=float(track.speed_km_s()[0, 0]),
        ground_speed_km_s=float(track.ground_speed_km_s()[0, 0]),
        sunlit_fraction=float(fraction),
        footprint_km=float(radius),
    )
