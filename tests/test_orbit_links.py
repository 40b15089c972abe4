"""Link windows (proxima.orbit.links) against brute-force scans that share none of its search code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import OrbitInputError
from proxima.orbit.elements import Elements, GeoRelay
from proxima.orbit.frames import WGS84_A_KM, geodetic_to_itrf, itrf_to_geodetic, teme_position_to_itrf
from proxima.orbit.links import (
    SPEED_OF_LIGHT_KM_S,
    Contact,
    ElevationMask,
    GroundStation,
    LinkWindow,
    contacts,
    default_kind,
    line_of_sight_margin_km,
    link_windows,
    terrestrial_window,
)
from proxima.orbit.propagate import geo_relay_itrf, propagate
from proxima.orbit.timescale import iso_to_unix
from proxima.runtime.elements import load_elements

T0 = iso_to_unix("2026-03-11T12:00:00Z")
DAY = 86400.0

WHITE_SANDS = GroundStation("White Sands", 32.5, -106.6, 1.2, ElevationMask.constant(5.0))
TDRS_EAST = GeoRelay("TDRS East", -41.0)
TDRS_ZOE = GeoRelay("TDRS Z", 85.0)


@pytest.fixture(scope="module")
def iss() -> Elements:
    return load_elements(now_unix=T0, max_age_days=None).find("ISS")


# --- independent brute force ---------------------------------------------------------------------------


def _iss_itrf(iss: Elements, t: np.ndarray) -> np.ndarray:
    return teme_position_to_itrf(propagate(iss, t).r_teme_km[0], t)


def _elevation_azimuth(station: GroundStation, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elevation/azimuth from the geodetic normal and local east/north, written out independently."""
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    up = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.cross(up, east)
    d = r - geodetic_to_itrf(station.lat_deg, station.lon_deg, station.alt_km)
    rho = np.linalg.norm(d, axis=-1)
    el = np.degrees(np.arcsin(d @ up / rho))
    az = np.degrees(np.arctan2(d @ east, d @ north)) % 360.0
    return el, az


def _crossings(t: np.ndarray, margin: np.ndarray) -> list[tuple[float, float]]:
    """Windows where margin >= 0 from a dense scan, ends placed by linear interpolation."""
    inside = margin >= 0.0
    edges = np.flatnonzero(inside[1:] != inside[:-1])
    times = []
    for i in edges:
        m0, m1 = margin[i], margin[i + 1]
        times.append(float(t[i] + (t[i + 1] - t[i]) * m0 / (m0 - m1)))
    if inside[0]:
        times.insert(0, float(t[0]))
    if inside[-1]:
        times.append(float(t[-1]))
    return list(zip(times[::2], times[1::2], strict=True))


def _match(found: list[LinkWindow], expected: list[tuple[float, float]], tolerance: float) -> None:
    assert len(found) == len(expected), (
        [(w.start_unix, w.end_unix) for w in found],
        expected,
    )
    for w, (start, end) in zip(found, expected, strict=True):
        assert abs(w.start_unix - start) < tolerance, (w, start)
        assert abs(w.end_unix - end) < tolerance, (w, end)


STATIONS = [
    GroundStation("White Sands", 32.5, -106.6, 1.2, ElevationMask.constant(5.0)),
    GroundStation("Cologne", 50.85, 7.13, 0.06, ElevationMask.constant(0.0)),
    GroundStation("Kiruna", 67.86, 20.96, 0.4, ElevationMask.constant(0.0)),
    GroundStation("Svalbard (never sees the ISS)", 78.23, 15.39, 0.5, ElevationMask.constant(10.0)),
    GroundStation("Kourou", 5.25, -52.8, 0.0, ElevationMask.constant(20.0)),
]


@pytest.mark.parametrize("station", STATIONS, ids=lambda s: s.name)
def test_ground_windows_match_a_per_second_elevation_scan(iss: Elements, station: GroundStation) -> None:
    t0, t1 = T0, T0 + DAY
    found = link_windows(iss, station, t0, t1, rate_ab_bytes_s=1.0)
    t = np.arange(t0, t1 + 0.5, 1.0)
    el, _ = _elevation_azimuth(station, _iss_itrf(iss, t))
    expected = _crossings(t, el - station.mask.min_elevation_deg[0])
    assert bool(found) == ("never" not in station.name)
    _match(found, expected, 0.5)
    for w in found:
        assert w.kind == "space-ground"
        assert (w.a, w.b) == (iss.name, station.name)


def test_azimuth_mask_blocking_the_western_half(iss: Elements) -> None:
    # Open to the east (azimuth 0-180 at 0°), blocked to the west (90° can only be reached overhead).
    mask = ElevationMask.table([(0.0, 0.0), (180.0, 0.0), (180.5, 90.0), (359.5, 90.0)])
    station = GroundStation("Half", 45.0, 10.0, 0.0, mask)
    open_sky = GroundStation("Open", 45.0, 10.0, 0.0, ElevationMask.constant(0.0))
    t0, t1 = T0, T0 + 2 * DAY
    found = link_windows(iss, station, t0, t1, rate_ab_bytes_s=1.0)
    t = np.arange(t0, t1 + 0.5, 1.0)
    el, az = _elevation_azimuth(station, _iss_itrf(iss, t))
    limit = np.interp(az, [0.0, 180.0, 180.5, 359.5, 360.0], [0.0, 0.0, 90.0, 90.0, 0.0])
    expected = [(s, e) for s, e in _crossings(t, el - limit) if e - s > 1.0]
    _match([w for w in found if w.duration_s > 1.0], expected, 0.5)
    assert found
    # Every moment of a masked window is inside an open-sky window, and in the eastern half.
    unmasked = link_windows(iss, open_sky, t0, t1, rate_ab_bytes_s=1.0)
    assert sum(w.duration_s for w in found) < 0.8 * sum(w.duration_s for w in unmasked)
    for w in found:
        assert any(u.start_unix - 0.2 <= w.start_unix and w.end_unix <= u.end_unix + 0.2 for u in unmasked)
        mid = np.linspace(w.start_unix + 0.2, w.end_unix - 0.2, 9)
        _, az_mid = _elevation_azimuth(station, _iss_itrf(iss, mid))
        assert np.all((az_mid <= 180.5) | (az_mid >= 359.5))


def _grazing_altitude_km(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Lowest WGS84 geodetic altitude along each segment r1[i]-r2[i], by dense sampling near the
    point closest to the Earth's centre (geodetic heights, not the scaled sphere the code uses)."""
    d = r2 - r1
    u0 = np.clip(-np.sum(r1 * d, axis=-1) / np.sum(d * d, axis=-1), 0.0, 1.0)
    offsets = np.linspace(-0.01, 0.01, 101)
    u = np.clip(u0[:, None] + offsets[None, :], 0.0, 1.0)
    points = r1[:, None, :] + u[..., None] * d[:, None, :]
    _, _, alt = itrf_to_geodetic(points)
    return np.asarray(alt.min(axis=1))


@pytest.mark.parametrize("relay", [TDRS_EAST, TDRS_ZOE], ids=lambda r: r.name)
def test_relay_windows_match_a_geometric_line_of_sight_scan(iss: Elements, relay: GeoRelay) -> None:
    t0, t1 = T0, T0 + DAY / 4
    found = link_windows(iss, relay, t0, t1, rate_ab_bytes_s=1.0)
    t = np.arange(t0, t1 + 0.5, 1.0)
    r_iss = _iss_itrf(iss, t)
    r_geo = geo_relay_itrf(relay, t)[0]
    expected = _crossings(t, _grazing_altitude_km(r_iss, r_geo) - 100.0)
    assert len(found) >= 3
    _match(found, expected, 0.5)
    # Range from GEO to low orbit: 0.12 s to 0.16 s of light time.
    for w in found:
        assert 0.115 < w.owlt_min_s <= w.owlt_s <= w.owlt_max_s < 0.16
        assert w.kind == "space-relay"


def test_a_higher_grazing_height_shortens_relay_windows(iss: Elements) -> None:
    t0, t1 = T0, T0 + DAY / 4
    low = link_windows(iss, TDRS_EAST, t0, t1, rate_ab_bytes_s=1.0, grazing_height_km=0.0)
    high = link_windows(iss, TDRS_EAST, t0, t1, rate_ab_bytes_s=1.0, grazing_height_km=300.0)
    assert sum(w.duration_s for w in high) < sum(w.duration_s for w in low)


def test_maximum_range_caps_the_window(iss: Elements) -> None:
    t0, t1 = T0, T0 + DAY / 4
    free = link_windows(iss, TDRS_EAST, t0, t1, rate_ab_bytes_s=1.0)
    capped = link_windows(iss, TDRS_EAST, t0, t1, rate_ab_bytes_s=1.0, max_range_km=40_000.0)
    assert capped
    assert sum(w.duration_s for w in capped) < sum(w.duration_s for w in free)
    for w in capped:
        assert w.owlt_max_s * SPEED_OF_LIGHT_KM_S <= 40_000.0 + 1.0
        assert any(f.start_unix - 0.2 <= w.start_unix and w.end_unix <= f.end_unix + 0.2 for f in free)


def test_geo_relay_above_the_mask_is_one_window_for_the_whole_span() -> None:
    t0, t1 = T0, T0 + 7 * DAY
    [window] = link_windows(TDRS_EAST, WHITE_SANDS, t0, t1, rate_ab_bytes_s=37.5e6, rate_ba_bytes_s=9000.0)
    assert (window.start_unix, window.end_unix) == (t0, t1)
    assert window.cut_start and window.cut_end
    assert window.kind == "relay-ground"
    assert 0.119 < window.owlt_s < 0.14  # GEO: 35,786 km straight down is 0.119 s
    assert window.owlt_min_s == window.owlt_max_s == window.owlt_s
    # The Indian Ocean slot is below White Sands' horizon.
    assert link_windows(TDRS_ZOE, WHITE_SANDS, t0, t1, rate_ab_bytes_s=1.0) == []
    # A mask higher than the relay's elevation (about 15°) hides it too.
    steep = GroundStation("steep", 32.5, -106.6, 1.2, ElevationMask.constant(30.0))
    assert link_windows(steep, TDRS_EAST, t0, t1, rate_ab_bytes_s=1.0) == []


def test_short_windows_between_coarse_samples_are_found(iss: Elements) -> None:
    fine = link_windows(iss, WHITE_SANDS, T0, T0 + DAY, rate_ab_bytes_s=1.0)
    coarse = link_windows(iss, WHITE_SANDS, T0, T0 + DAY, rate_ab_bytes_s=1.0, step_s=900.0)
    _match(coarse, [(w.start_unix, w.end_unix) for w in fine], 0.3)


def test_windows_cut_at_the_span_ends_are_flagged(iss: Elements) -> None:
    [whole] = link_windows(iss, TDRS_EAST, T0, T0 + 4 * 3600.0, rate_ab_bytes_s=1.0)[:1]
    middle = 0.5 * (whole.start_unix + whole.end_unix)
    cut = link_windows(iss, TDRS_EAST, middle, middle + 600.0, rate_ab_bytes_s=1.0)
    assert len(cut) == 1
    assert cut[0].cut_start and cut[0].start_unix == middle
    inside = link_windows(iss, TDRS_EAST, middle - 10.0, whole.end_unix + 10.0, rate_ab_bytes_s=1.0)
    assert inside[0].cut_start and not inside[0].cut_end


@settings(max_examples=25, deadline=None)
@given(
    lat=st.floats(-89.0, 89.0),
    lon=st.floats(-180.0, 180.0),
    alt=st.floats(0.0, 4.0),
    mask=st.floats(-1.0, 40.0),
    start=st.floats(-3 * DAY, 3 * DAY),
    hours=st.floats(0.5, 12.0),
)
def test_windows_are_ordered_disjoint_and_inside_the_span(
    iss: Elements, lat: float, lon: float, alt: float, mask: float, start: float, hours: float
) -> None:
    station = GroundStation("random", lat, lon, alt, ElevationMask.constant(mask))
    t0 = T0 + start
    t1 = t0 + hours * 3600.0
    for other in (iss, TDRS_EAST):
        windows = link_windows(other, station, t0, t1, rate_ab_bytes_s=1.0)
        for w in windows:
            assert t0 <= w.start_unix < w.end_unix <= t1
            assert w.cut_start == (w.start_unix == t0)
            assert w.cut_end == (w.end_unix == t1)
            assert w.owlt_min_s <= w.owlt_s <= w.owlt_max_s
        for before, after in itertools.pairwise(windows):
            assert before.end_unix < after.start_unix


def test_light_time_of_a_ground_pass_is_milliseconds(iss: Elements) -> None:
    windows = link_windows(iss, WHITE_SANDS, T0, T0 + DAY, rate_ab_bytes_s=1.0)
    for w in windows:
        assert 400.0 / SPEED_OF_LIGHT_KM_S < w.owlt_min_s <= w.owlt_s <= w.owlt_max_s < 0.0095


def test_contacts_are_directed_with_their_own_rates() -> None:
    [window] = link_windows(TDRS_EAST, WHITE_SANDS, T0, T0 + DAY, rate_ab_bytes_s=100.0, rate_ba_bytes_s=5.0)
    down, up = window.contacts()
    assert down == Contact("TDRS East", "White Sands", T0, T0 + DAY, 100.0, window.owlt_s, window.owlt_max_s)
    assert (up.from_node, up.to_node, up.rate_bytes_s) == ("White Sands", "TDRS East", 5.0)
    one_way = link_windows(TDRS_EAST, WHITE_SANDS, T0, T0 + DAY, rate_ab_bytes_s=100.0, rate_ba_bytes_s=0.0)
    assert [c.from_node for c in one_way[0].contacts()] == ["TDRS East"]
    plan = contacts([window, *one_way])
    assert [c.start_unix for c in plan] == sorted(c.start_unix for c in plan)
    assert len(plan) == 3


def test_terrestrial_window_is_always_on() -> None:
    cologne = GroundStation("Cologne", 50.85, 7.13)
    window = terrestrial_window(WHITE_SANDS, cologne, T0, T0 + DAY, rate_ab_bytes_s=1e6)
    assert (window.start_unix, window.end_unix, window.kind) == (T0, T0 + DAY, "terrestrial")
    assert window.rate_ba_bytes_s == 1e6
    assert 0.03 < window.owlt_s < 0.07  # about 8,900 km great circle, 1.5x routed, in fibre
    fixed = terrestrial_window(WHITE_SANDS, cologne, T0, T0 + DAY, rate_ab_bytes_s=1.0, owlt_s=0.04)
    assert fixed.owlt_s == fixed.owlt_max_s == 0.04


def test_line_of_sight_margin_uses_the_flattened_earth() -> None:
    b = WGS84_A_KM * (1.0 - 1.0 / 298.257223563)
    over_pole = line_of_sight_margin_km([-3000.0, 0.0, b + 150.0], [3000.0, 0.0, b + 150.0], 100.0)
    assert over_pole == pytest.approx(50.0, abs=0.5)
    over_equator = line_of_sight_margin_km(
        [WGS84_A_KM + 150.0, -3000.0, 0.0], [WGS84_A_KM + 150.0, 3000.0, 0.0]
    )
    assert over_equator == pytest.approx(50.0, abs=1e-6)
    through = line_of_sight_margin_km([10_000.0, 0.0, 0.0], [-10_000.0, 0.0, 0.0])
    assert through < -6000.0


def test_default_kinds(iss: Elements) -> None:
    assert default_kind(iss, WHITE_SANDS) == "space-ground"
    assert default_kind(TDRS_EAST, iss) == "space-relay"
    assert default_kind(WHITE_SANDS, TDRS_EAST) == "relay-ground"
    assert default_kind(iss, iss) == "space-space"
    assert default_kind(TDRS_EAST, TDRS_ZOE) == "relay-relay"
    assert default_kind(WHITE_SANDS, WHITE_SANDS) == "terrestrial"


def test_two_relays_far_apart_still_see_each_other() -> None:
    [window] = link_windows(TDRS_EAST, TDRS_ZOE, T0, T0 + DAY, rate_ab_bytes_s=1.0)
    assert window.cut_start and window.cut_end
    opposite = GeoRelay("far side", 139.0)  # 180° from TDRS East: the Earth is in the way
    assert link_windows(TDRS_EAST, opposite, T0, T0 + DAY, rate_ab_bytes_s=1.0) == []


def test_bad_input_is_refused(iss: Elements) -> None:
    with pytest.raises(OrbitInputError, match="t1 > t0"):
        link_windows(iss, WHITE_SANDS, T0, T0, rate_ab_bytes_s=1.0)
    with pytest.raises(OrbitInputError, match="both ground stations"):
        link_windows(WHITE_SANDS, WHITE_SANDS, T0, T0 + 1, rate_ab_bytes_s=1.0)
    with pytest.raises(OrbitInputError, match="bytes per second"):
        link_windows(iss, WHITE_SANDS, T0, T0 + 60, rate_ab_bytes_s=-1.0)
    with pytest.raises(OrbitInputError, match="grazing"):
        link_windows(iss, TDRS_EAST, T0, T0 + 60, rate_ab_bytes_s=1.0, grazing_height_km=-5.0)
    with pytest.raises(OrbitInputError, match="maximum range"):
        link_windows(iss, TDRS_EAST, T0, T0 + 60, rate_ab_bytes_s=1.0, max_range_km=0.0)
    with pytest.raises(OrbitInputError, match="exceeds the 30-day limit"):
        link_windows(iss, WHITE_SANDS, T0 + 60 * DAY, T0 + 61 * DAY, rate_ab_bytes_s=1.0)
    with pytest.raises(OrbitInputError, match="latitude"):
        GroundStation("x", 91.0, 0.0)
    with pytest.raises(OrbitInputError, match="outside"):
        ElevationMask.table([(0.0, 95.0)])
    with pytest.raises(OrbitInputError, match="same azimuth"):
        ElevationMask.table([(0.0, 5.0), (360.0, 6.0)])
    with pytest.raises(OrbitInputError, match="at least one"):
        ElevationMask.table([])
