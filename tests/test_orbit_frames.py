"""Frames, time, Sun and shadow, checked against invariants and against Skyfield (offline data)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import OrbitInputError
from proxima.orbit.elements import GeoRelay, parse_tle
from proxima.orbit.frames import (
    EARTH_MEAN_RADIUS_KM,
    footprint_radius,
    geodetic_to_itrf,
    itrf_to_geodetic,
    teme_to_itrf,
    topocentric,
)
from proxima.orbit.propagate import GEO_ALTITUDE_KM, geo_relay_itrf, geo_relay_teme, ground_track, propagate
from proxima.orbit.sun import (
    TWILIGHT,
    sun_direction_itrf,
    sun_elevation_deg,
    sun_position_itrf,
    sun_position_teme,
    sunlit_fraction,
)
from proxima.orbit.timescale import gmst_rad, iso_to_unix, jd_to_unix, unix_to_iso, unix_to_jd

ISS_3LE = """ISS (ZARYA)
1 25544U 98067A   26070.83651154  .00008338  00000+0  16153-3 0  9998
2 25544  51.6324  61.7417 0007972 182.2925 177.8028 15.48586968556664
"""
ISS = parse_tle(ISS_3LE, "iss.tle")[0]


@functools.cache
def skyfield() -> tuple[Any, Any]:
    """Skyfield's timescale and DE421 from the skyfield-data package, never downloading."""
    import skyfield_data
    from skyfield.api import Loader

    with warnings.catch_warnings():
        # skyfield-data warns when its finals file passes a date its authors chose; UT1 is still
        # tabulated (then predicted) for the dates used here.
        warnings.simplefilter("ignore", RuntimeWarning)
        load = Loader(skyfield_data.get_skyfield_data_path(), expire=False)
        return load.timescale(builtin=False), load("de421.bsp")


def sf_times(t_unix: np.ndarray) -> Any:
    ts, _ = skyfield()
    return ts.from_datetimes([dt.datetime.fromtimestamp(float(x), tz=dt.UTC) for x in t_unix])


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(2 * np.arcsin(np.linalg.norm(a - b, axis=-1) / 2))


# ---------------------------------------------------------------- time


def test_time_conversions() -> None:
    t = iso_to_unix("2026-03-11T20:04:34.597056Z")
    assert t == pytest.approx(ISS.epoch_unix, abs=1e-6)
    assert unix_to_iso(t, digits=3) == "2026-03-11T20:04:34.597Z"
    assert unix_to_iso(0.0) == "1970-01-01T00:00:00Z"
    assert iso_to_unix("2000-01-01T12:00:00+00:00") == 946728000.0
    assert list(iso_to_unix(["1970-01-02", "1970-01-01 00:01"])) == [86400.0, 60.0]
    with pytest.raises(OrbitInputError, match="offset"):
        iso_to_unix("2026-03-11T20:00:00+02:00")
    with pytest.raises(OrbitInputError):
        iso_to_unix("next tuesday")
    jd, fr = unix_to_jd(np.array([0.0, 1773259474.597056]))
    assert jd[0] == 2440587.5 and fr[0] == 0.0 and 0.0 <= fr[1] < 1.0
    assert jd_to_unix(jd, fr)[1] == pytest.approx(1773259474.597056, abs=1e-6)


def test_gmst_is_sgp4s() -> None:
    from sgp4.propagation import gstime

    t = np.linspace(0.0, 2.5e9, 41)
    jd, fr = unix_to_jd(t)
    theirs = np.array([gstime(float(a + b)) for a, b in zip(jd, fr, strict=True)])
    diff = (gmst_rad(t) - theirs + math.pi) % (2 * math.pi) - math.pi
    assert np.abs(diff).max() < 5e-9  # gstime's jd + fr sum rounds to 40 µs (3e-9 rad)


# ---------------------------------------------------------------- geodetic


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-90.0, 90.0),
    st.floats(-180.0, 179.999999),
    st.floats(-10.0, 50000.0),
)
def test_geodetic_round_trip(lat: float, lon: float, alt: float) -> None:
    r = geodetic_to_itrf(lat, lon, alt)
    lat2, lon2, alt2 = itrf_to_geodetic(r)
    assert float(lat2) == pytest.approx(lat, abs=1e-9)  # 1e-9° is 0.1 mm on the ground
    assert float(alt2) == pytest.approx(alt, abs=1e-6)  # 1 mm
    if abs(lat) < 89.9999:
        dlon = (float(lon2) - lon + 180.0) % 360.0 - 180.0
        assert abs(dlon) * math.cos(math.radians(lat)) < 1e-9
    assert np.linalg.norm(geodetic_to_itrf(lat2, lon2, alt2) - r) < 1e-6


def test_latitude_outside_range_is_refused() -> None:
    with pytest.raises(OrbitInputError, match=r"latitude 91.0° is outside"):
        geodetic_to_itrf(91.0, 0.0)
    with pytest.raises(OrbitInputError):
        topocentric([0.0, -90.5], [0.0, 0.0], 0.0, np.zeros((1, 3)))
    with pytest.raises(OrbitInputError):
        sun_elevation_deg(float("nan"), 0.0, 0.0, 0.0)


def test_known_points() -> None:
    assert np.allclose(geodetic_to_itrf(0.0, 0.0, 0.0), [6378.137, 0.0, 0.0])
    assert np.allclose(geodetic_to_itrf(90.0, 0.0, 0.0), [0.0, 0.0, 6356.752314245], atol=1e-9)
    lat, lon, alt = itrf_to_geodetic(np.array([[0.0, 0.0, -7000.0], [0.0, 7000.0, 0.0]]))
    assert list(lat) == [-90.0, 0.0] and alt == pytest.approx([7000.0 - 6356.752314245, 7000.0 - 6378.137])
    assert lon[1] == 90.0


# ---------------------------------------------------------------- against Skyfield


def _iss_times() -> np.ndarray:
    return ISS.epoch_unix + np.linspace(-2 * 86400, 2 * 86400, 577)


def test_iss_subpoint_matches_skyfield() -> None:
    from skyfield.api import EarthSatellite, wgs84

    ts, _ = skyfield()
    t = _iss_times()
    lines = ISS_3LE.splitlines()
    at = EarthSatellite(lines[1], lines[2], lines[0], ts).at(sf_times(t))
    sub = wgs84.subpoint_of(at)
    lat, lon, alt = propagate(ISS, t).geodetic()
    # Latitude and height differ only by polar motion, which both neglect here, and rounding.
    assert np.abs(lat[0] - sub.latitude.degrees).max() < 1e-5
    assert np.abs(alt[0] - wgs84.height_of(at).km).max() < 1e-3
    # Longitude: Skyfield rotates the Earth by UT1, this engine by UTC (|UT1 - UTC| < 0.9 s, 0.004°).
    dlon = (lon[0] - sub.longitude.degrees + 180.0) % 360.0 - 180.0
    assert np.abs(dlon).max() < 0.004


def test_look_angles_match_skyfield() -> None:
    from skyfield.api import EarthSatellite, wgs84

    ts, _ = skyfield()
    t = ISS.epoch_unix + np.arange(0.0, 6 * 3600.0, 20.0)
    lines = ISS_3LE.splitlines()
    sites = [(48.85, 2.35, 0.035), (-33.9, 151.2, 0.0), (78.2, 15.4, 0.46)]
    r, v = propagate(ISS, t).itrf()
    look = topocentric([s[0] for s in sites], [s[1] for s in sites], [s[2] for s in sites], r[0], v[0])
    assert look.el_deg.shape == (3, t.size)
    sat = EarthSatellite(lines[1], lines[2], lines[0], ts)
    times = sf_times(t)
    for i, (la, lo, h) in enumerate(sites):
        alt_sf, az_sf, dist_sf = (sat - wgs84.latlon(la, lo, h * 1000.0)).at(times).altaz()
        up = alt_sf.degrees > -10.0
        # The differences come from UT1 - UTC (Skyfield turns the observer with UT1, about 0.06 s
        # apart here: 30 m at the equator) and are far below what a pass prediction needs.
        assert np.abs(look.el_deg[i] - alt_sf.degrees)[up].max() < 0.01
        assert np.abs(look.range_km[i] - dist_sf.km)[up].max() < 0.05
        daz = (look.az_deg[i] - az_sf.degrees + 180.0) % 360.0 - 180.0
        assert np.abs(daz[up & (alt_sf.degrees < 80.0)]).max() < 0.02
    # The range rate is the derivative of the range (central difference over ±0.5 s).
    assert look.range_rate_km_s is not None
    r_lo, _ = propagate(ISS, t - 0.5).itrf()
    r_hi, _ = propagate(ISS, t + 0.5).itrf()
    lats, lons, hs = ([s[k] for s in sites] for k in range(3))
    finite = topocentric(lats, lons, hs, r_hi[0]).range_km - topocentric(lats, lons, hs, r_lo[0]).range_km
    assert np.abs(finite - look.range_rate_km_s).max() < 1e-3


def test_sun_matches_skyfield() -> None:
    from skyfield.framelib import itrs
    from skyfield.sgp4lib import TEME

    _, eph = skyfield()
    rng = np.random.default_rng(2026)
    t = rng.uniform(iso_to_unix("2000-01-01"), iso_to_unix("2050-01-01"), 300)
    apparent = eph["earth"].at(sf_times(t)).observe(eph["sun"]).apparent()
    # In TEME (no Earth rotation involved) the series is good to about 1".
    assert angle_deg(sun_position_teme(t), apparent.frame_xyz(TEME).km.T).max() < 0.001
    assert np.abs(np.linalg.norm(sun_position_teme(t), axis=-1) / apparent.distance().km - 1).max() < 1e-5
    # Earth-fixed: within 0.01°, the rest being UT1 - UTC (Skyfield predicts UT1 after 2026).
    assert angle_deg(sun_direction_itrf(t), apparent.frame_xyz(itrs).km.T).max() < 0.01


def test_sun_elevation_matches_skyfield() -> None:
    from skyfield.api import wgs84

    _, eph = skyfield()
    t = iso_to_unix("2026-06-21T00:00:00Z") + np.arange(0.0, 86400.0, 600.0)
    sites = [(51.48, 0.0), (-45.0, 170.0), (69.65, 18.96)]
    el = sun_elevation_deg([s[0] for s in sites], [s[1] for s in sites], 0.0, t)
    for i, (la, lo) in enumerate(sites):
        alt, _, _ = (
            (eph["earth"] + wgs84.latlon(la, lo)).at(sf_times(t)).observe(eph["sun"]).apparent().altaz()
        )
        assert np.abs(el[i] - alt.degrees).max() < 0.01


# ---------------------------------------------------------------- shadow


def test_shadow_extremes() -> None:
    t = np.array([ISS.epoch_unix])
    sun = sun_position_teme(t)[0]
    u = sun / np.linalg.norm(sun)
    assert sunlit_fraction(-6800.0 * u, sun) == 0.0  # straight behind the Earth: umbra
    assert sunlit_fraction(6800.0 * u, sun) == 1.0
    side = np.cross(u, [0.0, 0.0, 1.0])
    side = 6800.0 * side / np.linalg.norm(side)
    assert sunlit_fraction(side, sun) == 1.0  # beside the Earth, above the terminator
    far_behind = -2e6 * u  # beyond the umbra's tip (~1.38 million km): an annular eclipse
    assert 0.0 < sunlit_fraction(far_behind, sun) < 1.0


def test_iss_eclipse_entry_is_monotonic_and_matches_skyfield() -> None:
    from skyfield.api import EarthSatellite

    ts, eph = skyfield()
    t = ISS.epoch_unix + np.arange(0.0, 3 * 5560.0, 1.0)
    track = propagate(ISS, t)
    frac = sunlit_fraction(track.r_teme_km[0], sun_position_teme(t))
    assert frac.min() == 0.0 and frac.max() == 1.0
    entries = np.flatnonzero((frac[:-1] == 1.0) & (frac[1:] < 1.0))
    assert entries.size >= 2
    for start in entries:
        end = start + np.argmax(frac[start:] == 0.0)
        seg = frac[start : end + 1]
        assert np.all(np.diff(seg) <= 0.0)  # the Sun only disappears on the way in
        assert 3 <= end - start <= 30  # the ISS's penumbra lasts some seconds
    # Skyfield's geometric is_sunlit (Sun's centre above the limb) agrees wherever the fraction is
    # not within 0.5 ± 0.45 (a few seconds either side of the transition).
    lines = ISS_3LE.splitlines()
    sample = slice(0, None, 7)
    lit = EarthSatellite(lines[1], lines[2], lines[0], ts).at(sf_times(t[sample])).is_sunlit(eph)
    clear = np.abs(frac[sample] - 0.5) > 0.45
    assert np.array_equal(lit[clear], frac[sample][clear] > 0.5)


# ---------------------------------------------------------------- propagation helpers


def test_speeds_ground_track_and_footprint() -> None:
    track = propagate(ISS, ISS.epoch_unix + np.arange(0.0, 5600.0, 60.0))
    assert 7.6 < track.speed_km_s().mean() < 7.7
    assert 6.8 < track.ground_speed_km_s().mean() < 7.3
    _, _, alt = track.geodetic()
    assert alt.min() > 400 and alt.max() < 440
    t, lat, lon = ground_track(ISS, ISS.epoch_unix, orbits=2, step_s=30.0)
    assert t[-1] - t[0] == pytest.approx(2 * ISS.period_minutes * 60.0, abs=30.0)
    assert np.abs(lat).max() == pytest.approx(51.6324, abs=0.3)
    assert np.all((lon >= -180.0) & (lon <= 180.0))
    radius_km, central_deg = footprint_radius(420.0, 0.0)
    assert math.cos(math.radians(float(central_deg))) == pytest.approx(
        EARTH_MEAN_RADIUS_KM / (EARTH_MEAN_RADIUS_KM + 420.0)
    )
    assert float(radius_km) == pytest.approx(2252.4, abs=1.0)
    r10, _ = footprint_radius(np.array([420.0, 420.0]), np.array([10.0, 30.0]))
    assert 0 < r10[1] < r10[0] < radius_km
    with pytest.raises(OrbitInputError):
        footprint_radius(-1.0)


def test_geo_relay_and_shipped_tdrs() -> None:
    relay = GeoRelay("TDRS East", -41.0)
    t = ISS.epoch_unix + np.arange(0.0, 86400.0, 3600.0)
    r, v = geo_relay_itrf(relay, t)
    lat, lon, alt = itrf_to_geodetic(r)
    assert np.allclose(lat, 0.0) and np.allclose(lon, -41.0) and np.allclose(alt, GEO_ALTITUDE_KM)
    assert not v.any()
    r_teme, v_teme = geo_relay_teme(relay, t)
    r2, v2 = teme_to_itrf(r_teme, v_teme, t)
    assert np.allclose(r2, r) and np.allclose(v2, 0.0, atol=1e-9)
    assert np.linalg.norm(v_teme, axis=-1) == pytest.approx(3.0747, abs=1e-3)


def test_sun_twilight_presets() -> None:
    assert TWILIGHT == {"sunset": -0.833, "civil": -6.0, "nautical": -12.0, "astronomical": -18.0}
    t = iso_to_unix("2026-03-20T12:00:00Z")  # equinox noon at Greenwich: the Sun is high
    assert sun_elevation_deg(0.0, 0.0, 0.0, t)[0, 0] > 85.0
    assert np.linalg.norm(sun_position_itrf(t)) == pytest.approx(1.496e8, rel=0.02)
