"""Country outlines, point-in-region and region overflights (proxima.orbit.regions)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxima.errors import LocalError
from proxima.orbit.regions import (
    Overflight,
    Region,
    RegionError,
    RegionSet,
    overflights,
    parse_regions_geojson,
)
from proxima.runtime.regions import countries, country

T0 = 1_750_000_000.0  # 2025-06-15, any instant serves: the tracks here are synthetic
SIDEREAL_DAY_S = 86164.0905

Track = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# --- shipped outlines ----------------------------------------------------------------------------------


def test_shipped_outlines_load() -> None:
    regions = countries()
    assert len(regions) == 177
    assert {"FR", "US", "RU", "FJ", "AQ", "ZA", "LS", "XK"} <= set(regions)
    assert regions["fr"] is regions["FR"]
    assert country("France").code == "FR"


CITIES = [  # (place, lat, lon, code it lies in, or None for open sea / no country at 1:110m)
    ("Paris", 48.8566, 2.3522, "FR"),
    ("Lausanne", 46.5197, 6.6323, "CH"),
    ("Bern", 46.9480, 7.4474, "CH"),
    ("Honolulu", 21.3069, -157.8583, "US"),
    ("Anchorage", 61.2181, -149.9003, "US"),
    ("Maseru (Lesotho, a hole in South Africa)", -29.3151, 27.4869, "LS"),
    ("Johannesburg", -26.2041, 28.0473, "ZA"),
    ("Vanua Levu, west of 180°", -16.6, 179.5, "FJ"),
    ("Vanua Levu, east of 180°", -16.2, -179.88, "FJ"),
    ("Vanua Levu, east of 180° written as 180.12°", -16.2, 180.12, "FJ"),
    ("Viti Levu", -17.8, 178.0, "FJ"),
    ("Chukotka, east of 180°", 66.0, -172.0, "RU"),
    ("Chukotka as 188°E", 66.0, 188.0, "RU"),
    ("Anadyr", 64.73, 177.5, "RU"),
    ("Moscow", 55.7558, 37.6173, "RU"),
    ("South Pole", -89.99, 0.0, "AQ"),
    ("South Pole, other side", -89.99, 179.0, "AQ"),
    ("Vostok station", -78.46, 106.84, "AQ"),
    ("Antarctic Peninsula", -64.0, -60.0, "AQ"),
    ("Southern Ocean", -60.0, 0.0, None),
    ("North Pole", 89.99, 0.0, None),
    ("Pacific", 0.0, -140.0, None),
    ("Tokyo", 35.6762, 139.6503, "JP"),
    ("Buenos Aires", -34.6037, -58.3816, "AR"),
]


@pytest.mark.parametrize(("place", "lat", "lon", "code"), CITIES, ids=[c[0] for c in CITIES])
def test_known_places(place: str, lat: float, lon: float, code: str | None) -> None:
    regions = countries()
    found = [c for c, region in regions.items() if bool(region.contains(lat, lon))]
    assert found == ([code] if code else []), place


def test_geneva_is_a_110m_border_case() -> None:
    """At 1:110m the Swiss outline cuts off Geneva's tip, so Geneva lands in France's outline; the
    border is about 0.15° away, within the resolution of the data (documented in its README)."""
    geneva = (46.2044, 6.1432)
    assert not country("CH").contains(*geneva)
    assert country("FR").contains(*geneva)
    ring = np.array(country("CH").polygons[0][0])
    nearest = np.min(np.hypot(ring[:, 0] - geneva[1], ring[:, 1] - geneva[0]))
    assert nearest < 0.2


def test_lesotho_is_a_hole_in_south_africa() -> None:
    za = country("ZA")
    assert len(za.polygons[0]) == 2, "South Africa's polygon has Lesotho as its hole"
    assert not za.contains(-29.3151, 27.4869)


def test_no_point_is_in_two_countries() -> None:
    rng = np.random.default_rng(7)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 20_000)))
    lon = rng.uniform(-180.0, 180.0, 20_000)
    total = sum(region.contains(lat, lon).astype(int) for region in countries().values())
    assert int(np.max(total)) == 1
    assert 0.25 < float(np.mean(total > 0)) < 0.33  # land is about 29 % of the Earth's surface


def test_contains_keeps_shape_and_broadcasts() -> None:
    fr = country("FR")
    lat = np.array([[48.85, 0.0], [45.0, 10.0]])
    lon = np.array([[2.35, 0.0], [2.0, 10.0]])
    assert fr.contains(lat, lon).tolist() == [[True, False], [True, False]]
    assert fr.contains(48.85, np.array([2.35, 2.35 + 360.0, 2.35 - 720.0])).tolist() == [True] * 3
    assert fr.contains(48.85, 2.35).shape == ()


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (math.nan, 0.0), (0.0, math.inf), ("x", 0.0)])
def test_bad_points_rejected(lat: object, lon: object) -> None:
    with pytest.raises(RegionError):
        country("FR").contains(lat, lon)  # type: ignore[arg-type]


# --- lookup --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("FR", "FR"),
        ("fr", "FR"),
        ("France", "FR"),
        ("  FRANCE ", "FR"),
        ("Russian Federation", "RU"),
        ("russia", "RU"),
        ("United States", "US"),
        ("USA", "US"),
        ("Côte d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Congo", "CG"),
        ("Democratic Republic of the Congo", "CD"),
        ("Kosovo", "XK"),
    ],
)
def test_lookup_by_code_name_or_alias(key: str, code: str) -> None:
    assert countries().find(key).code == code


def test_unknown_name_lists_near_matches() -> None:
    with pytest.raises(RegionError) as info:
        countries().find("Frnace")
    assert isinstance(info.value, LocalError)
    message = str(info.value)
    assert "'Frnace'" in message
    assert "did you mean 'France'" in message
    assert "\n" not in message
    with pytest.raises(RegionError, match="unknown region 'Qwxz' \\(give"):
        countries().find("Qwxz")


# --- parsing ---------------------------------------------------------------------------------------------


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def test_parse_geojson_polygon_with_hole_and_natural_earth_keys() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"ISO_A2": "-99", "ISO_A2_EH": "QQ", "NAME": "Donut"},
                "geometry": {"type": "Polygon", "coordinates": [square(0, 0, 10, 10), square(4, 4, 6, 6)]},
            },
        ],
    }
    regions = parse_regions_geojson(document)
    donut = regions.find("donut")
    assert donut.code == "QQ"
    assert donut.contains([1.0, 5.0, 11.0], [1.0, 5.0, 1.0]).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "Feature"}', "FeatureCollection"),
        ('{"type": "FeatureCollection", "features": [{"properties": {"code": "P"},'
         ' "geometry": {"type": "Point", "coordinates": [0, 0]}}]}', "not a \\(Multi\\)Polygon"),
        ('{"type": "FeatureCollection", "features": [{"properties": {"code": "P"},'
         ' "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}]}', "at least 3"),
        ('{"type": "FeatureCollection", "features": [{"properties": {"code": "P"},'
         ' "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 95], [2, 0]]]}}]}', "beyond"),
    ],
)
def test_parse_errors(text: str, match: str) -> None:
    with pytest.raises(RegionError, match=match):
        parse_regions_geojson(text)


def test_duplicate_codes_rejected() -> None:
    a = Region.from_polygons("AA", "A", [[square(0, 0, 1, 1)]])
    with pytest.raises(RegionError, match="two regions"):
        RegionSet([a, Region.from_polygons("aa", "B", [[square(2, 2, 3, 3)]])])


# --- overflights ------------------------------------------------------------------------------------------

BOX = Region.from_polygons("BX", "Box", [[square(-10.0, -5.0, 10.0, 5.0)]])
DEG_PER_S = 360.0 / 5400.0


def equatorial(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Along the equator eastwards at 360° per 90 minutes, at lon -30° at T0."""
    return np.zeros_like(t), -30.0 + DEG_PER_S * (t - T0)


def great_circle(inclination_deg: float, node_deg: float, phase_deg: float, period_s: float) -> Track:
    """A circular orbit's ground track over a rotating spherical Earth, analytically."""
    inc, omega = math.radians(inclination_deg), 2.0 * math.pi / period_s
    earth_deg_per_s = 360.0 / SIDEREAL_DAY_S

    def track(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = math.radians(phase_deg) + omega * (t - T0)
        lat = np.degrees(np.arcsin(np.sin(inc) * np.sin(u)))
        lon = node_deg + np.degrees(np.arctan2(math.cos(inc) * np.sin(u), np.cos(u)))
        lon = lon - earth_deg_per_s * (t - T0)
        return lat, np.mod(lon + 180.0, 360.0) - 180.0

    return track


def test_equatorial_box_crossings_match_the_analytic_times() -> None:
    windows = overflights(equatorial, BOX, T0, T0 + 3 * 5400.0, step_s=7.0)
    assert len(windows) == 3
    for k, w in enumerate(windows):
        assert isinstance(w, Overflight)
        assert w.enter_unix == pytest.approx(T0 + 300.0 + k * 5400.0, abs=0.1)
        assert w.leave_unix == pytest.approx(T0 + 600.0 + k * 5400.0, abs=0.1)
        assert w.duration_s == pytest.approx(300.0, abs=0.2)
        assert (w.enter_lat_deg, w.leave_lat_deg) == (0.0, 0.0)
        assert w.enter_lon_deg == pytest.approx(-10.0, abs=0.01)
        assert w.leave_lon_deg == pytest.approx(10.0, abs=0.01)
        assert not (w.open_at_start or w.open_at_end)


def test_windows_open_at_the_edges_are_cut_and_flagged() -> None:
    (w,) = overflights(equatorial, BOX, T0 + 400.0, T0 + 500.0)
    assert (w.enter_unix, w.leave_unix, w.duration_s) == (T0 + 400.0, T0 + 500.0, 100.0)
    assert w.open_at_start
    assert w.open_at_end
    first, second = overflights(equatorial, BOX, T0 + 400.0, T0 + 5800.0)
    assert first.open_at_start and not first.open_at_end
    assert first.enter_unix == T0 + 400.0
    assert first.leave_unix == pytest.approx(T0 + 600.0, abs=0.1)
    assert not second.open_at_start and second.open_at_end
    assert second.enter_unix == pytest.approx(T0 + 5700.0, abs=0.1)
    assert second.leave_unix == T0 + 5800.0
    assert overflights(equatorial, BOX, T0 + 1000.0, T0 + 2000.0) == []


def _winding_inside(ring: np.ndarray, lat: float, lon: float) -> bool:
    """Independent point-in-ring test: the winding number from summed subtended angles."""
    dx, dy = ring[:, 0] - lon, ring[:, 1] - lat
    angles = np.arctan2(dy, dx)
    turns = np.diff(angles)
    turns = (turns + np.pi) % (2.0 * np.pi) - np.pi
    return abs(float(np.sum(turns))) > np.pi


def _independent_inside(region: Region, lat: float, lon: float) -> bool:
    for polygon in region.polygons:
        rings = [np.array(r) for r in polygon]
        if _winding_inside(rings[0], lat, lon) and not any(_winding_inside(h, lat, lon) for h in rings[1:]):
            return True
    return False


def _independent_crossing(track: Track, region: Region, low: float, high: float) -> float:
    """Scalar bisection, with its own point-in-polygon, of one state change between low and high."""

    def inside(t: float) -> bool:
        lat, lon = track(np.array([t]))
        return _independent_inside(region, float(lat[0]), float(lon[0]))

    state_low = inside(low)
    assert inside(high) != state_low
    while high - low > 1e-3:
        middle = 0.5 * (low + high)
        if inside(middle) == state_low:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def test_great_circle_over_france_matches_an_independent_bisection() -> None:
    track = great_circle(51.6, 10.0, 0.0, 5556.0)
    france = country("FR")
    t1 = T0 + 2 * 86400.0
    windows = overflights(track, france, T0, t1, step_s=5.0)
    assert len(windows) >= 2, "two days of a 51.6° orbit cross France several times"
    gaps = [b.enter_unix - a.leave_unix for a, b in itertools.pairwise(windows)]
    for k, w in enumerate(windows):
        assert 0.0 < w.duration_s < 15 * 60.0
        # Independent: bracket each reported crossing by up to ±3 s (less than half the window and
        # the gaps around it) and bisect with a winding-number test.
        before = gaps[k - 1] if k else 6.0
        after = gaps[k] if k < len(gaps) else 6.0
        h_enter = min(3.0, w.duration_s / 2, before / 2)
        h_leave = min(3.0, w.duration_s / 2, after / 2)
        enter = _independent_crossing(track, france, w.enter_unix - h_enter, w.enter_unix + h_enter)
        leave = _independent_crossing(track, france, w.leave_unix - h_leave, w.leave_unix + h_leave)
        assert w.enter_unix == pytest.approx(enter, abs=0.1)
        assert w.leave_unix == pytest.approx(leave, abs=0.1)
        lat, lon = track(np.array([w.enter_unix, w.leave_unix]))
        assert (w.enter_lat_deg, w.enter_lon_deg) == pytest.approx((lat[0], lon[0]))
        assert (w.leave_lat_deg, w.leave_lon_deg) == pytest.approx((lat[1], lon[1]))
    # No window missed: a dense independent scan (1 s) finds the same number of entries.
    times = np.arange(T0, t1, 1.0)
    lat, lon = track(times)
    candidates = np.flatnonzero(france.contains(lat, lon) | _near_bbox(france, lat, lon))
    scan = np.zeros(times.shape, dtype=bool)
    scan[candidates] = [_independent_inside(france, lat[i], lon[i]) for i in candidates]
    entries = int(np.count_nonzero(scan[1:] & ~scan[:-1])) + int(scan[0])
    assert entries == len(windows)


def _near_bbox(region: Region, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    west, south, east, north = region.bbox
    return (lat > south - 1) & (lat < north + 1) & (lon > west - 1) & (lon < east + 1)


def test_overflight_across_the_antimeridian_has_no_break_at_180() -> None:
    def eastwards(lat: float, lon0: float, deg_per_s: float) -> Track:
        def track(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return np.full_like(t, lat), np.mod(lon0 + deg_per_s * (t - T0) + 180.0, 360.0) - 180.0

        return track

    (fiji,) = overflights(eastwards(-16.2, 179.0, 0.001), country("FJ"), T0, T0 + 2000.0)
    assert 179.0 < fiji.enter_lon_deg < 180.0
    assert -180.0 < fiji.leave_lon_deg < -179.0
    windows = overflights(eastwards(66.0, 150.0, 0.01), country("RU"), T0, T0 + 5000.0)
    assert windows[0].open_at_start
    assert windows[-1].leave_lon_deg == pytest.approx(-169.94, abs=0.05)  # Chukotka's east coast
    for w in windows:
        assert abs(abs(w.enter_lon_deg) - 180.0) > 0.1 or w.open_at_start
        assert abs(abs(w.leave_lon_deg) - 180.0) > 0.1


def test_polar_orbit_windows_lie_inside_russia_and_antarctica() -> None:
    track = great_circle(97.5, 178.0, 0.0, 5800.0)
    for code in ("RU", "AQ"):
        region = country(code)
        windows = overflights(track, region, T0, T0 + 86400.0, step_s=2.0)
        assert len(windows) > 10
        middles = np.array([0.5 * (w.enter_unix + w.leave_unix) for w in windows if w.duration_s > 2.0])
        lat, lon = track(middles)
        assert region.contains(lat, lon).all()
        outside = np.array([w.enter_unix - 0.1 for w in windows] + [w.leave_unix + 0.1 for w in windows])
        lat, lon = track(outside)
        assert not region.contains(lat, lon).any()


@pytest.mark.parametrize(
    ("t0", "t1", "step", "match"),
    [
        (T0, T0, 5.0, "t1 > t0"),
        (T0, T0 - 1, 5.0, "t1 > t0"),
        (T0, math.nan, 5.0, "finite"),
        (T0, T0 + 9, 0.0, "step_s"),
    ],
)
def test_overflight_bad_arguments(t0: float, t1: float, step: float, match: str) -> None:
    with pytest.raises(RegionError, match=match):
        overflights(equatorial, BOX, t0, t1, step_s=step)


def test_track_returning_wrong_shapes_is_rejected() -> None:
    def bad(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(1), np.zeros(1)

    with pytest.raises(RegionError, match="shapes"):
        overflights(bad, BOX, T0, T0 + 100.0)


RING_REGION = Region.from_polygons(
    "RG",
    "Ring across the antimeridian",
    [[square(170.0, -20.0, 190.0, 20.0), square(175.0, -5.0, 185.0, 5.0)], [square(-20.0, 40.0, 20.0, 60.0)]],
)


@settings(max_examples=60, deadline=None)
@given(
    inclination=st.floats(0.0, 180.0),
    node=st.floats(-180.0, 180.0),
    phase=st.floats(0.0, 360.0),
    period=st.floats(5200.0, 7000.0),
    start=st.floats(0.0, 86400.0),
    span=st.floats(1.0, 4 * 86400.0),
    step=st.floats(1.0, 30.0),
)
def test_windows_never_overlap_and_stay_in_range(
    inclination: float, node: float, phase: float, period: float, start: float, span: float, step: float
) -> None:
    track = great_circle(inclination, node, phase, period)
    t0, t1 = T0 + start, T0 + start + span
    windows = overflights(track, RING_REGION, t0, t1, step_s=step)
    for w in windows:
        assert t0 <= w.enter_unix <= w.leave_unix <= t1
        assert w.duration_s == pytest.approx(w.leave_unix - w.enter_unix)
    for before, after in itertools.pairwise(windows):
        assert before.leave_unix < after.enter_unix
    for k, w in enumerate(windows):
        assert w.open_at_start == (k == 0 and w.enter_unix == t0 and bool(_inside_at(track, t0)))
        assert w.open_at_end == (k == len(windows) - 1 and w.leave_unix == t1 and bool(_inside_at(track, t1)))


def _inside_at(track: Track, t: float) -> bool:
    lat, lon = track(np.array([t]))
    return bool(RING_REGION.contains(lat[0], lon[0]))
