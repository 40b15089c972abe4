"""Skyfield as the reference the orbit engine is compared against (helper module, not a test file).

Skyfield 1.55 runs fully offline here: the ephemeris (de421.bsp) and Earth-orientation file
(finals2000A.all) come from the ``skyfield-data`` package, and the loader is built with ``expire=False``
so it never tries to refresh them. Times go in and out as float64 Unix seconds UTC, angles in degrees.

Conventions of the reference, which the engine's comparison tests must share:
- elevations are geometric (no atmospheric refraction), for a WGS84 observer;
- "sunlit" is Skyfield's ``is_sunlit``: the line from the satellite to the Sun's centre clears a sphere
  of the Earth's equatorial radius (no penumbra, no atmosphere);
- the Sun's elevation is apparent (light time, aberration, deflection) but unrefracted.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from typing import Any, NamedTuple

import numpy as np
import skyfield_data
from numpy.typing import ArrayLike, NDArray
from skyfield.api import EarthSatellite, Loader, wgs84
from skyfield.searchlib import find_discrete

__all__ = [
    "EVENT_NAMES",
    "ReferenceEvent",
    "ReferencePass",
    "SunlitTransition",
    "group_passes",
    "reference_passes",
    "reference_sun_elevation",
    "reference_sunlit_transitions",
    "reset",
    "skyfield_objects",
    "time_to_unix",
    "unix_to_time",
]

EVENT_NAMES = ("rise", "culminate", "set")
"""Skyfield's ``find_events`` codes 0, 1, 2."""

_UNIX_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


class ReferenceEvent(NamedTuple):
    """One ``find_events`` event: ``kind`` is "rise", "culminate" or "set"."""

    kind: str
    t_unix: float
    azimuth_deg: float
    elevation_deg: float


class ReferencePass(NamedTuple):
    """A complete pass: a rise, its highest culmination and the set that follows."""

    rise: ReferenceEvent
    culmination: ReferenceEvent
    set: ReferenceEvent

    @property
    def duration_s(self) -> float:
        """Seconds from rise to set."""
        return self.set.t_unix - self.rise.t_unix


class SunlitTransition(NamedTuple):
    """A shadow crossing; ``sunlit`` is the state after it: False entering the shadow, True leaving it."""

    t_unix: float
    sunlit: bool


@functools.cache
def skyfield_objects() -> tuple[Any, Any]:
    """The offline (timescale, ephemeris) pair, built once; never touches the network."""
    with warnings.catch_warnings():
        # skyfield-data warns once its finals file passes the date its authors chose; the file still
        # covers the dates the tests use (measured values to 2025-08, predictions to 2026-10).
        warnings.simplefilter("ignore", RuntimeWarning)
        path = skyfield_data.get_skyfield_data_path()
    loader = Loader(path, expire=False, verbose=False)
    timescale = loader.timescale(builtin=False)
    ephemeris = loader("de421.bsp")
    return timescale, ephemeris


def reset() -> None:
    """Close the cached ephemeris and forget the cached objects (the next call rebuilds them)."""
    if skyfield_objects.cache_info().currsize:
        _, ephemeris = skyfield_objects()
        ephemeris.close()
    skyfield_objects.cache_clear()


def unix_to_time(t_unix: ArrayLike) -> Any:
    """A Skyfield Time for Unix seconds (POSIX days of 86,400 s each, then seconds of that UTC day)."""
    timescale, _ = skyfield_objects()
    unix = np.asarray(t_unix, dtype=np.float64)
    days = np.floor(unix / 86400.0)
    # Whole days go in the day field so Skyfield applies the leap seconds of that date, not of 1970.
    return timescale.utc(1970, 1, 1 + days.astype(np.int64), 0, 0, unix - days * 86400.0)


def time_to_unix(t: Any) -> NDArray[np.float64]:
    """Unix seconds of a Skyfield Time (scalar or array), keeping sub-millisecond precision."""
    year, month, day, hour, minute, second = (np.atleast_1d(np.asarray(part)) for part in t.utc)
    days = np.array(
        [
            dt.date(int(y), int(m), int(d)).toordinal() - _UNIX_EPOCH_ORDINAL
            for y, m, d in zip(year, month, day, strict=True)
        ],
        dtype=np.float64,
    )
    return days * 86400.0 + hour * 3600.0 + minute * 60.0 + second


def _satellite(tle_line1: str, tle_line2: str) -> Any:
    timescale, _ = skyfield_objects()
    return EarthSatellite(tle_line1, tle_line2, "reference", timescale)


def reference_passes(
    tle_line1: str,
    tle_line2: str,
    lat: float,
    lon: float,
    height_m: float,
    t0_unix: float,
    t1_unix: float,
    min_el_deg: float,
) -> list[ReferenceEvent]:
    """Rise, culmination and set events between t0 and t1 (Skyfield ``find_events``), with az/el.

    ``find_events`` finds times to half a second; they are then refined to about a microsecond.
    The list is in time order; at the window's edges a pass may be partial (a set without its rise).
    """
    satellite = _satellite(tle_line1, tle_line2)
    observer = wgs84.latlon(lat, lon, elevation_m=height_m)
    times, codes = satellite.find_events(
        observer, unix_to_time(t0_unix), unix_to_time(t1_unix), altitude_degrees=min_el_deg
    )
    if len(codes) == 0:
        return []
    topocentric = satellite - observer
    unix = _refine(topocentric, time_to_unix(times), np.asarray(codes), min_el_deg)
    elevation, azimuth, _ = topocentric.at(unix_to_time(unix)).altaz()
    return [
        ReferenceEvent(EVENT_NAMES[int(code)], float(u), float(az), float(el))
        for code, u, az, el in zip(codes, unix, azimuth.degrees, elevation.degrees, strict=True)
    ]


def _elevation_deg(topocentric: Any, unix: NDArray[np.float64]) -> NDArray[np.float64]:
    elevation, _, _ = topocentric.at(unix_to_time(unix)).altaz()
    return np.asarray(elevation.degrees, dtype=np.float64)


def _refine(
    topocentric: Any, unix: NDArray[np.float64], codes: NDArray[Any], min_el_deg: float
) -> NDArray[np.float64]:
    """Sharpen ``find_events``'s half-second times to about a microsecond.

    Rises and sets: bisection of elevation - min_el over ±2 s. Culminations: ternary search of the
    elevation maximum over ±2 s. Vectorized over all events; an unbracketed event keeps its time.
    """
    out = unix.copy()
    crossing = codes != 1
    if np.any(crossing):
        t = unix[crossing]
        low, high = t - 2.0, t + 2.0
        f_low = _elevation_deg(topocentric, low) - min_el_deg
        f_high = _elevation_deg(topocentric, high) - min_el_deg
        bracketed = np.sign(f_low) != np.sign(f_high)
        for _ in range(24):
            middle = 0.5 * (low + high)
            f_middle = _elevation_deg(topocentric, middle) - min_el_deg
            left = np.sign(f_middle) == np.sign(f_low)
            low, f_low = np.where(left, middle, low), np.where(left, f_middle, f_low)
            high = np.where(left, high, middle)
        out[crossing] = np.where(bracketed, 0.5 * (low + high), t)
    peak = codes == 1
    if np.any(peak):
        low, high = unix[peak] - 2.0, unix[peak] + 2.0
        for _ in range(40):
            a, b = low + (high - low) / 3.0, high - (high - low) / 3.0
            rising = _elevation_deg(topocentric, a) < _elevation_deg(topocentric, b)
            low, high = np.where(rising, a, low), np.where(rising, high, b)
        out[peak] = 0.5 * (low + high)
    return out


def group_passes(events: list[ReferenceEvent]) -> list[ReferencePass]:
    """Complete passes from an event list: each rise with its highest culmination and next set."""
    passes: list[ReferencePass] = []
    rise: ReferenceEvent | None = None
    best: ReferenceEvent | None = None
    for event in events:
        if event.kind == "rise":
            rise, best = event, None
        elif event.kind == "culminate":
            if rise is not None and (best is None or event.elevation_deg > best.elevation_deg):
                best = event
        else:
            if rise is not None and best is not None:
                passes.append(ReferencePass(rise, best, event))
            rise, best = None, None
    return passes


def reference_sunlit_transitions(
    tle_line1: str, tle_line2: str, t0_unix: float, t1_unix: float, step_s: float = 300.0
) -> list[SunlitTransition]:
    """Times the satellite enters or leaves the Earth's shadow (``is_sunlit`` + ``find_discrete``).

    ``step_s`` is the search grid; it must be shorter than the shortest sunlit or shadowed stretch
    (about 30 minutes for the ISS). Roots are refined to Skyfield's default 1 ms.
    """
    _, ephemeris = skyfield_objects()
    satellite = _satellite(tle_line1, tle_line2)

    def sunlit(t: Any) -> Any:
        return satellite.at(t).is_sunlit(ephemeris)

    sunlit.step_days = step_s / 86400.0  # type: ignore[attr-defined]
    times, values = find_discrete(unix_to_time(t0_unix), unix_to_time(t1_unix), sunlit)
    return [SunlitTransition(float(u), bool(v)) for u, v in zip(time_to_unix(times), values, strict=True)]


def reference_sun_elevation(lat: float, lon: float, t_unix: ArrayLike, height_m: float = 0.0) -> Any:
    """Apparent (unrefracted) elevation of the Sun in degrees; a float or an array like ``t_unix``."""
    _, ephemeris = skyfield_objects()
    observer = ephemeris["earth"] + wgs84.latlon(lat, lon, elevation_m=height_m)
    elevation, _, _ = observer.at(unix_to_time(t_unix)).observe(ephemeris["sun"]).apparent().altaz()
    degrees = elevation.degrees
    return float(degrees) if np.ndim(degrees) == 0 else np.asarray(degrees, dtype=np.float64)
