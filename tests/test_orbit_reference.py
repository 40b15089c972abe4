"""Sanity checks of the Skyfield reference harness (tests/orbit_reference.py) itself."""

from __future__ import annotations

import datetime as dt
import itertools
import socket

import numpy as np
import pytest
import skyfield.iokit

import orbit_reference as ref

# ISS (ZARYA), epoch 2024-05-06 19:53 UTC (a published element set; checksums valid).
ISS_LINE1 = "1 25544U 98067A   24127.82853009  .00015698  00000+0  27310-3 0  9995"
ISS_LINE2 = "2 25544  51.6393 160.4574 0003580 140.6673 205.7250 15.50957674452123"
EPOCH_UNIX = dt.datetime(2024, 5, 6, tzinfo=dt.UTC).timestamp() + 0.82853009 * 86400.0
T0 = EPOCH_UNIX
T1 = EPOCH_UNIX + 3 * 86400.0

SITES = {  # name: (lat, lon, height_m, min_el_deg)
    "paris": (48.8566, 2.3522, 35.0, 10.0),
    "houston": (29.5593, -95.0900, 10.0, 10.0),
    "helsinki": (60.1699, 24.9384, 20.0, 10.0),
    # North of the ISS's 51.6° inclination: only low passes, so the horizon itself is the mask.
    "tromso": (69.6492, 18.9553, 20.0, 0.0),
}


def test_no_network_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the reference from scratch must not try to download or open a socket."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference harness tried to reach the network")

    monkeypatch.setattr(skyfield.iokit, "download", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ref.reset()
    try:
        ref.skyfield_objects()
        assert ref.reference_sun_elevation(0.0, 0.0, T0) == pytest.approx(
            ref.reference_sun_elevation(0.0, 0.0, T0)
        )
        assert ref.reference_passes(ISS_LINE1, ISS_LINE2, 48.85, 2.35, 0.0, T0, T0 + 86400.0, 10.0)
    finally:
        ref.reset()


def test_unix_round_trip() -> None:
    t = np.array([0.0, 1.0e9 + 0.125, T0, T1 - 0.001])
    back = ref.time_to_unix(ref.unix_to_time(t))
    np.testing.assert_allclose(back, t, rtol=0, atol=1e-5)


@pytest.mark.parametrize("site", sorted(SITES))
def test_passes_alternate_and_last_minutes(site: str) -> None:
    lat, lon, height_m, min_el = SITES[site]
    events = ref.reference_passes(ISS_LINE1, ISS_LINE2, lat, lon, height_m, T0, T1, min_el)
    assert events, "three days always bring ISS passes at these sites"
    times = [e.t_unix for e in events]
    assert times == sorted(times)
    assert all(T0 <= t <= T1 for t in times)
    # Events cycle rise -> culminate -> set (a partial pass may open or close the window).
    order = {"rise": 0, "culminate": 1, "set": 2}
    for before, after in itertools.pairwise(events):
        assert order[after.kind] == (order[before.kind] + 1) % 3, (before, after)
    for event in events:
        assert 0.0 <= event.azimuth_deg < 360.0
        if event.kind == "culminate":
            assert min_el <= event.elevation_deg <= 90.0
        else:
            assert event.elevation_deg == pytest.approx(min_el, abs=1e-4)
    passes = ref.group_passes(events)
    assert passes
    for p in passes:
        assert 60.0 <= p.duration_s <= 12 * 60.0 or (site == "tromso" and p.duration_s <= 12 * 60.0)
        assert p.rise.t_unix < p.culmination.t_unix < p.set.t_unix
        assert p.culmination.elevation_deg >= max(p.rise.elevation_deg, p.set.elevation_deg)
    if site == "tromso":
        assert max(p.culmination.elevation_deg for p in passes) < 10.0


def test_sunlit_transitions_alternate_with_orbit_period() -> None:
    transitions = ref.reference_sunlit_transitions(ISS_LINE1, ISS_LINE2, T0, T0 + 86400.0)
    # In May the ISS orbit crosses the shadow on every revolution: about 15.5 eclipses a day.
    assert 28 <= len(transitions) <= 34
    flags = [tr.sunlit for tr in transitions]
    assert all(a != b for a, b in itertools.pairwise(flags))
    times = np.array([tr.t_unix for tr in transitions])
    assert np.all(np.diff(times) > 0)
    period_s = 86400.0 / 15.50957674
    same_kind_gaps = np.diff(times[::2])
    np.testing.assert_allclose(same_kind_gaps, period_s, atol=60.0)
    shadow = [b.t_unix - a.t_unix for a, b in itertools.pairwise(transitions) if not a.sunlit]
    assert shadow
    assert all(20 * 60.0 < s < 40 * 60.0 for s in shadow)


def test_sun_elevation_plausible() -> None:
    # Local noon near the June solstice at latitude 23.44 N: the Sun is close to the zenith.
    noon = dt.datetime(2024, 6, 20, 12, 2, tzinfo=dt.UTC).timestamp()
    assert ref.reference_sun_elevation(23.44, 0.0, noon) == pytest.approx(90.0, abs=0.5)
    # Midnight then at the same place: about -(90 - 2*23.44) below the horizon.
    assert ref.reference_sun_elevation(23.44, 0.0, noon + 43200.0) == pytest.approx(-43.1, abs=0.5)
    # Vectorized: one value per time, and the same as the scalar calls.
    times = noon + np.array([0.0, 3600.0, 7200.0])
    many = ref.reference_sun_elevation(48.85, 2.35, times)
    assert many.shape == (3,)
    assert many[1] == pytest.approx(ref.reference_sun_elevation(48.85, 2.35, float(times[1])), abs=1e-9)
