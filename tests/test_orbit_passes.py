"""Passes, visibility and magnitudes: against Skyfield (tests/orbit_reference.py), invariants, bad input."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orbit_reference as ref
from proxima.errors import OrbitInputError
from proxima.orbit.elements import Elements, format_tle, parse_elements
from proxima.orbit.frames import topocentric
from proxima.orbit.passes import (
    SPOT_THE_STATION,
    PassTable,
    compass,
    find_passes,
    local_time_parts,
    phase_function,
    shadow_transitions,
    sightings,
    visual_magnitude,
)
from proxima.orbit.position import satellite_state
from proxima.orbit.propagate import propagate
from proxima.orbit.sun import sun_elevation_deg, sun_position_teme, sunlit_fraction
from proxima.runtime.elements import load_elements


@functools.cache
def iss() -> Elements:
    """The ISS from the shipped snapshot (epoch 2026-03-11T20:04:34Z)."""
    loaded = load_elements(now_unix=1.7732e9, max_age_days=None)
    return loaded.find("ISS")


def tle_lines() -> tuple[str, str]:
    _, line1, line2 = format_tle(iss())
    return line1, line2


def window(days_before: float = 2.0, days_after: float = 2.0) -> tuple[float, float]:
    epoch = iss().epoch_unix
    return epoch - days_before * 86400.0, epoch + days_after * 86400.0


SITES = {  # name: (lat, lon, height_km, min_el_deg)
    "paris": (48.8566, 2.3522, 0.035, 10.0),
    "houston": (29.5593, -95.0900, 0.010, 0.0),
    "cologne": (50.9375, 6.9603, 0.053, 0.0),
    # North of the ISS's 51.6° inclination: only low passes, so the horizon itself is the mask.
    "tromso": (69.6492, 18.9553, 0.020, 0.0),
}


@functools.cache
def site_table(site: str) -> PassTable:
    lat, lon, h, min_el = SITES[site]
    t0, t1 = window()
    return find_passes(iss(), lat, lon, h, t0_unix=t0, t1_unix=t1, min_elevation_deg=min_el)


@functools.cache
def site_reference(site: str) -> tuple[ref.ReferencePass, ...]:
    lat, lon, h, min_el = SITES[site]
    t0, t1 = window()
    line1, line2 = tle_lines()
    return tuple(ref.group_passes(ref.reference_passes(line1, line2, lat, lon, h * 1000.0, t0, t1, min_el)))


def complete(table: PassTable) -> PassTable:
    """Passes wholly inside the window (what ``group_passes`` of the reference gives)."""
    return table.select((table.rise_t >= table.t0_unix) & (table.set_t <= table.t1_unix))


def test_passes_match_skyfield_at_four_sites() -> None:
    """Rise, culmination and set within 1 s, elevations within 0.1°, the very same passes."""
    total = 0
    worst_t, worst_el, worst_az = 0.0, 0.0, 0.0
    for site in SITES:
        ours = complete(site_table(site))
        theirs = site_reference(site)
        assert len(ours) == len(theirs), site
        for i, p in enumerate(theirs):
            for t, event in (
                (ours.rise_t[i], p.rise),
                (ours.culm_t[i], p.culmination),
                (ours.set_t[i], p.set),
            ):
                worst_t = max(worst_t, abs(t - event.t_unix))
            worst_el = max(worst_el, abs(ours.culm_el[i] - p.culmination.elevation_deg))
            for az, event in (
                (ours.rise_az[i], p.rise),
                (ours.culm_az[i], p.culmination),
                (ours.set_az[i], p.set),
            ):
                worst_az = max(worst_az, abs((az - event.azimuth_deg + 180.0) % 360.0 - 180.0))
            min_el = SITES[site][3]
            assert ours.rise_el[i] == pytest.approx(min_el, abs=1e-6)
            assert ours.set_el[i] == pytest.approx(min_el, abs=1e-6)
        total += len(theirs)
    assert total >= 50
    assert worst_t < 1.0
    assert worst_el < 0.1
    assert worst_az < 0.1
    # Tromsø lies north of the orbit's inclination: only low passes.
    assert np.max(site_table("tromso").culm_el) < 10.0


def test_sunlit_transitions_match_skyfield() -> None:
    t0, t1 = window(1.0, 1.0)
    line1, line2 = tle_lines()
    theirs = ref.reference_sunlit_transitions(line1, line2, t0, t1)
    times, after = shadow_transitions(iss(), t0, t1)
    assert len(times) == len(theirs) >= 28
    for t, lit, tr in zip(times, after, theirs, strict=True):
        assert bool(lit) == tr.sunlit
        assert abs(t - tr.t_unix) < 2.0
    # the criterion is sunlit_fraction > 0.5: just before/after each crossing it flips
    r = propagate(iss(), np.concatenate([times - 1.0, times + 1.0])).r_teme_km[0]
    frac = sunlit_fraction(r, sun_position_teme(np.concatenate([times - 1.0, times + 1.0])))
    n = times.size
    assert np.all((frac[n:] > 0.5) == after)
    assert np.all((frac[:n] > 0.5) != after)


def test_visible_parts_are_sunlit_dark_and_inside_their_passes() -> None:
    t0, t1 = window()
    rng = np.random.default_rng(7)
    lat = rng.uniform(-60.0, 70.0, 300)
    lon = rng.uniform(-180.0, 180.0, 300)
    table = find_passes(iss(), lat, lon, 0.0, t0_unix=t0, t1_unix=t1, min_elevation_deg=10.0)
    vis = table.select(table.visible)
    assert len(vis) > 100
    eps = 1e-6
    assert np.all(vis.vis_start_t >= vis.rise_t - eps) and np.all(vis.vis_end_t <= vis.set_t + eps)
    assert np.all(vis.vis_start_t < vis.vis_end_t)
    assert np.all((vis.vis_peak_t >= vis.vis_start_t - eps) & (vis.vis_peak_t <= vis.vis_end_t + eps))
    assert np.all(vis.vis_peak_el >= np.maximum(vis.vis_start_el, vis.vis_end_el) - 1e-9)
    assert np.all(vis.vis_peak_el <= vis.culm_el + 1e-9)
    assert np.all(np.isfinite(vis.magnitude)) and np.all((vis.magnitude > -6.0) & (vis.magnitude < 6.0))
    # Mid-segment: sunlit and the observer in civil darkness, checked with the sun module directly.
    mid = 0.5 * (vis.vis_start_t + vis.vis_end_t)
    r = propagate(iss(), mid).r_teme_km[0]
    assert np.all(sunlit_fraction(r, sun_position_teme(mid)) > 0.5)
    sun_el = np.array(
        [sun_elevation_deg(lat[o], lon[o], 0.0, t)[0, 0] for o, t in zip(vis.observer, mid, strict=True)]
    )
    assert np.all(sun_el < -6.0)
    # Not visible: no visible fields.
    hidden = table.select(~table.visible)
    assert np.all(np.isnan(hidden.vis_start_t)) and np.all(np.isnan(hidden.magnitude))


def test_visibility_edges_match_skyfield_sun_and_shadow() -> None:
    """Where a visible part starts or ends inside a pass, it is at twilight or at a shadow crossing."""
    t0, t1 = window()
    line1, line2 = tle_lines()
    shadows = np.array(
        [tr.t_unix for tr in ref.reference_sunlit_transitions(line1, line2, t0 - 3600, t1 + 3600)]
    )
    checked = 0
    for site in ("paris", "cologne", "houston"):
        lat, lon, h, _ = SITES[site]
        table = site_table(site)
        for i in np.flatnonzero(table.visible):
            for edge, end in ((table.vis_start_t[i], table.rise_t[i]), (table.vis_end_t[i], table.set_t[i])):
                if abs(edge - end) < 1e-3:
                    continue  # the pass's own rise/set
                near_shadow = np.min(np.abs(shadows - edge)) < 2.0
                sun = ref.reference_sun_elevation(lat, lon, edge, h * 1000.0)
                assert near_shadow or abs(sun - (-6.0)) < 0.02, (site, edge, sun)
                checked += 1
    assert checked >= 3


def test_invariants_of_rises_and_sets() -> None:
    table = site_table("houston")
    assert len(table) >= 10
    assert np.all(table.rise_t < table.culm_t) and np.all(table.culm_t < table.set_t)
    assert np.all(table.set_t[:-1] < table.rise_t[1:])  # events alternate
    assert np.all(table.culm_el >= np.maximum(table.rise_el, table.set_el))
    lat, lon, h, _ = SITES["houston"]
    for t, sign in ((table.rise_t, 1.0), (table.set_t, -1.0)):
        tr = propagate(iss(), np.concatenate([t - 1.0, t + 1.0]))
        r, v = tr.itrf()
        look = topocentric(lat, lon, h, r[0], v[0])
        el = look.el_deg[0]
        n = t.size
        assert np.all(sign * (el[n:] - el[:n]) > 0)  # rising at a rise, sinking at a set
        assert look.range_rate_km_s is not None
        assert np.all(sign * look.range_rate_km_s[0, :n] < 0)  # approaching at a rise, receding at a set
    duration = table.duration_s
    assert np.all((duration > 0) & (duration < 12 * 60))


def test_many_observers_agree_with_one_at_a_time_and_with_a_dense_scan() -> None:
    t0, t1 = window(0.5, 0.5)
    rng = np.random.default_rng(3)
    n = 400
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    h = rng.uniform(0.0, 3.0, n)
    table = find_passes(iss(), lat, lon, h, t0_unix=t0, t1_unix=t1)
    assert table.n_observers == n and len(table) > n
    assert np.all(np.diff(table.observer) >= 0)
    for o in (0, 17, 123, 399):
        one = find_passes(iss(), lat[o], lon[o], h[o], t0_unix=t0, t1_unix=t1)
        mine = table.select(table.observer == o)
        assert len(one) == len(mine)
        np.testing.assert_allclose(one.culm_t, mine.culm_t, atol=1e-5)
        np.testing.assert_allclose(one.rise_t, mine.rise_t, atol=1e-5)
        np.testing.assert_array_equal(one.visible, mine.visible)
        assert [p.culmination for p in one.for_observer(0)] == [p.culmination for p in table.for_observer(o)]
    # Brute force: elevations every 5 s for every observer; count the stretches above 0°.
    t = np.arange(t0 - 600.0, t1 + 600.0, 5.0)
    r, _ = propagate(iss(), t).itrf()
    el = topocentric(lat, lon, h, r[0]).el_deg
    up = el > 0.0
    starts = up[:, 1:] & ~up[:, :-1]
    inside = (t[1:] >= t0) & (t[1:] <= t1)
    dense = np.sum(starts & inside, axis=1)
    ours = np.bincount(table.observer[(table.rise_t >= t0) & (table.rise_t <= t1)], minlength=n)
    # passes shorter than 5 s could slip through the dense scan; none do here
    np.testing.assert_array_equal(ours, dense)
    # the culmination is the highest point: no sample beats it, the nearest sample is close
    for k in range(0, len(table), 7):
        o = table.observer[k]
        inside_pass = (t >= table.rise_t[k]) & (t <= table.set_t[k])
        if inside_pass.any():
            assert np.max(el[o, inside_pass]) <= table.culm_el[k] + 1e-6
            # 5 s samples: within 0.5° of the top, or 3° near the zenith where it moves at ~1°/s
            assert np.max(el[o, inside_pass]) >= table.culm_el[k] - (0.5 if table.culm_el[k] < 60 else 3.0)


def test_observers_without_passes() -> None:
    """Near the poles the ISS never rises: an empty table, typed, and an empty listing."""
    t0, t1 = window(0.0, 1.0)
    table = find_passes(iss(), [89.0, -88.0], [0.0, 120.0], t0_unix=t0, t1_unix=t1, min_elevation_deg=0.0)
    assert len(table) == 0 and table.n_observers == 2
    assert table.observer.dtype == np.int64 and table.visible.dtype == np.bool_
    assert table.for_observer(1) == [] and sightings(table) == []


def test_dask_backend_gives_the_same_table() -> None:
    pytest.importorskip("dask")
    t0, t1 = window(0.5, 0.5)
    lat = np.linspace(-70.0, 70.0, 57)
    lon = np.linspace(-180.0, 180.0, 57)
    plain = find_passes(iss(), lat, lon, t0_unix=t0, t1_unix=t1)
    chunked = find_passes(iss(), lat, lon, t0_unix=t0, t1_unix=t1, backend="dask", chunk_observers=10)
    np.testing.assert_array_equal(plain.observer, chunked.observer)
    np.testing.assert_allclose(plain.culm_t, chunked.culm_t, atol=1e-6)
    np.testing.assert_array_equal(plain.visible, chunked.visible)


def test_edges_of_the_window() -> None:
    """Passes overlapping the window are kept, with their real rise/set outside it."""
    full = site_table("houston")
    mid = 0.5 * (full.rise_t[3] + full.set_t[3])
    cut = find_passes(iss(), *SITES["houston"][:3], t0_unix=mid, t1_unix=mid + 60.0)
    assert len(cut) == 1
    assert cut.rise_t[0] == pytest.approx(full.rise_t[3], abs=1e-5)
    assert cut.set_t[0] == pytest.approx(full.set_t[3], abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lat_deg": 91.0}, r"latitude 91\.0° is outside \[-90°, 90°\]"),
        ({"lat_deg": float("nan")}, "latitude nan"),
        ({"lon_deg": float("inf")}, "longitude inf° is not a finite number"),
        ({"height_km": 500.0}, "observer height 500.0 km"),
        ({"t1_unix": -1.0}, "must come after the start time"),
        ({"min_elevation_deg": 95.0}, "minimum elevation 95.0°"),
        ({"twilight": "dusk"}, "unknown twilight 'dusk'"),
        ({"step_s": 0.0}, "step_s 0.0"),
        ({"backend": "spark"}, "unknown backend 'spark'"),
        ({"lat_deg": [1.0, 2.0], "lon_deg": [1.0, 2.0, 3.0]}, "do not match"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs: dict[str, object], message: str) -> None:
    t0, t1 = window(0.0, 1.0)
    args: dict[str, object] = {
        "lat_deg": 48.0,
        "lon_deg": 2.0,
        "height_km": 0.0,
        "t0_unix": t0,
        "t1_unix": t1,
    }
    args.update(kwargs)
    with pytest.raises(OrbitInputError, match=message):
        find_passes(iss(), **args)  # type: ignore[arg-type]


def test_times_far_from_the_epoch_are_refused() -> None:
    t0 = iss().epoch_unix + 90 * 86400.0
    with pytest.raises(OrbitInputError, match=r"days from the elements' epoch .* exceeds the 30-day limit"):
        find_passes(iss(), 48.0, 2.0, t0_unix=t0, t1_unix=t0 + 86400.0)
    with pytest.raises(OrbitInputError, match="exceeds"):
        shadow_transitions(iss(), t0, t0 + 3600.0)
    with pytest.raises(OrbitInputError, match="exceeds"):
        satellite_state(iss(), t0)


def test_magnitude_model() -> None:
    assert phase_function(90.0) == pytest.approx(1.0)
    assert phase_function(0.0) == pytest.approx(math.pi)
    assert phase_function(180.0) == pytest.approx(0.0, abs=1e-12)
    # standard magnitude at 1000 km and 90° phase
    assert visual_magnitude(1000.0, 90.0) == pytest.approx(-1.8)
    assert visual_magnitude(1000.0, 90.0, std_magnitude=0.5) == pytest.approx(0.5)
    # an overhead ISS at 420 km, phase 60°: about magnitude -4.4, as observed
    assert visual_magnitude(420.0, 60.0) == pytest.approx(-4.4, abs=0.1)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(200.0, 3000.0),
    st.floats(1.0, 2.0),
    st.floats(0.0, 179.0),
    st.floats(0.1, 20.0),
)
def test_magnitude_brighter_when_closer_or_fuller(
    rng_km: float, factor: float, phase: float, dphase: float
) -> None:
    assert visual_magnitude(rng_km, phase) <= visual_magnitude(rng_km * factor, phase)
    assert visual_magnitude(rng_km, phase) <= visual_magnitude(rng_km, min(phase + dphase, 179.9))


def test_magnitudes_in_passes_brighter_when_closer() -> None:
    """Across the visible passes of a site, the nearest pass is brighter than the farthest."""
    t0, t1 = window(5.0, 5.0)
    rng = np.random.default_rng(11)
    lat, lon = rng.uniform(30.0, 55.0, 200), rng.uniform(-180.0, 180.0, 200)
    table = find_passes(iss(), lat, lon, t0_unix=t0, t1_unix=t1, min_elevation_deg=10.0)
    vis = table.select(table.visible)
    high = vis.vis_peak_el > 70.0
    low = vis.vis_peak_el < 20.0
    assert high.any() and low.any()
    assert np.median(vis.magnitude[high]) < np.median(vis.magnitude[low]) - 1.0


def test_spot_the_station_listing() -> None:
    t0, t1 = window(0.0, 7.0)
    lat, lon, h, _ = SITES["paris"]
    table = find_passes(iss(), lat, lon, h, t0_unix=t0, t1_unix=t1, **SPOT_THE_STATION)
    rows = sightings(table, 3600.0)
    assert rows and len(rows) == int(table.visible.sum())
    for s, p in zip(rows, [p for p in table.for_observer(0) if p.visible], strict=True):
        assert p.visible is not None
        assert s.t_unix == p.visible.start.t_unix
        assert s.local_iso.endswith("+01:00")
        assert s.minutes_visible == max(1, round(p.visible.duration_s / 60.0))
        assert s.max_height_deg >= 10
        assert s.appears.endswith(compass(p.visible.start.az_deg))
        assert " above " in s.appears and " above " in s.disappears
    # a callable offset (what a time zone's rules give), applied per sighting
    assert [s.local_iso[-6:] for s in sightings(table, lambda t: -5 * 3600.0)] == ["-05:00"] * len(rows)


def test_local_time_and_compass() -> None:
    t = 1773259474.597  # 2026-03-11T20:04:34.597Z, a Wednesday
    assert local_time_parts(t, 0.0) == ("2026-03-11T20:04:34+00:00", "Wed Mar 11", "8:04 PM")
    assert local_time_parts(t, 5.5 * 3600) == ("2026-03-12T01:34:34+05:30", "Thu Mar 12", "1:34 AM")
    assert local_time_parts(t, -8 * 3600)[1:] == ("Wed Mar 11", "12:04 PM")
    assert [compass(a) for a in (0.0, 11.2, 11.3, 90.0, 202.5, 348.7, 359.9, 720.0)] == [
        "N", "N", "NNE", "E", "SSW", "NNW", "N", "N",
    ]  # fmt: skip
    assert compass(float("nan")) == "?"


def test_satellite_state() -> None:
    e = iss()
    state = satellite_state(e, e.epoch_unix)
    assert 400.0 < state.alt_km < 440.0
    assert state.speed_km_s == pytest.approx(7.66, abs=0.05)
    assert 6.5 < state.ground_speed_km_s < 7.5
    assert abs(state.lat_deg) <= e.inclination_deg + 0.2
    assert 2000.0 < state.footprint_km < 2400.0
    times, after = shadow_transitions(e, e.epoch_unix - 7200.0, e.epoch_unix + 7200.0)
    before = np.flatnonzero(times <= e.epoch_unix)
    lit_now = bool(after[before[-1]]) if before.size else not bool(after[0])
    assert state.sunlit == lit_now


def test_text_elements_and_pairwise_order() -> None:
    """Any element set works (here a TLE given as text); passes of each observer are in order."""
    name, line1, line2 = format_tle(iss())
    e = parse_elements(f"{name}\n{line1}\n{line2}\n")[0]
    t0, t1 = window(0.0, 2.0)
    table = find_passes(e, [48.0, -33.9], [2.0, 151.2], t0_unix=t0, t1_unix=t1)
    for o in range(2):
        passes = table.for_observer(o)
        assert passes
        for a, b in itertools.pairwise(passes):
            assert a.set.t_unix < b.rise.t_unix
    with pytest.raises(OrbitInputError, match="observer index 2"):
        table.for_observer(2)
