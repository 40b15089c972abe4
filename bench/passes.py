"""Visible passes with magnitudes for 10,000 observers over 10 days: proxima against Skyfield.

Run: ``.venv/bin/python bench/passes.py [--observers N] [--days D] [--sample S] [--json]``

* proxima: one :func:`proxima.orbit.passes.find_passes` call for all observers (the ISS from the
  shipped snapshot, 10 days centred on its epoch 2026-03-11, Spot the Station settings: rise/set
  at 10°, civil twilight), timed over several repetitions (median and best reported); the same
  with the 0° horizon for reference.
* Skyfield 1.55 (offline data from ``skyfield-data``): for each of ``--sample`` observers,
  ``EarthSatellite.find_events(altitude_degrees=10)`` and then, at every event, ``is_sunlit`` and
  the Sun's altitude at the observer, which is what a visible-pass predictor built on it does;
  the time per observer is extrapolated to all observers and compared as a ratio.
* Agreement on the sample: complete passes found by one side only, and the largest rise,
  culmination and set differences, against Skyfield's own events (found to about half a second)
  and against the same events refined to a microsecond (``tests/orbit_reference.py``). Each
  visible part proxima reports is checked with Skyfield at its middle (sunlit, Sun below -6°).
* ``proxima passes`` for one observer from a cold start (a new interpreter each time).

Observers are uniform over the sphere (area-uniform latitudes), seed 20260311.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import benchinfo  # noqa: E402
import orbit_reference as ref  # noqa: E402
from proxima.orbit.elements import Elements, format_tle  # noqa: E402
from proxima.orbit.passes import PassTable, find_passes  # noqa: E402
from proxima.runtime.elements import load_elements  # noqa: E402

SEED = 20260311
MIN_EL = 10.0
TWILIGHT = -6.0


def machine() -> dict[str, Any]:
    """CPU model, core count, OS and library versions."""
    import sgp4
    import skyfield

    return {
        **benchinfo.machine(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "numpy": np.__version__,
        "sgp4": sgp4.__version__,
        "skyfield": skyfield.__version__,
    }


def observers(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    return lat, lon


def time_proxima(iss: Elements, lat: np.ndarray, lon: np.ndarray, t0: float, t1: float, min_el: float,
                 repeats: int) -> tuple[PassTable, list[float]]:  # fmt: skip
    times = []
    table = None
    for _ in range(repeats):
        start = time.perf_counter()
        table = find_passes(iss, lat, lon, 0.0, t0_unix=t0, t1_unix=t1, min_elevation_deg=min_el)
        times.append(time.perf_counter() - start)
    assert table is not None
    return table, times


def skyfield_observer(
    sat: Any, ephemeris: Any, lat: float, lon: float, t0: Any, t1: Any
) -> list[dict[str, Any]]:
    """Skyfield the usual way: events, then sunlit and Sun altitude at each event."""
    from skyfield.api import wgs84

    topos = wgs84.latlon(lat, lon)
    times, codes = sat.find_events(topos, t0, t1, altitude_degrees=MIN_EL)
    if len(codes) == 0:
        return []
    sunlit = sat.at(times).is_sunlit(ephemeris)
    sun_alt = (ephemeris["earth"] + topos).at(times).observe(ephemeris["sun"]).apparent().altaz()[0].degrees
    unix = ref.time_to_unix(times)
    return [
        {"kind": ref.EVENT_NAMES[int(c)], "t": float(u), "visible": bool(s) and float(a) < TWILIGHT}
        for c, u, s, a in zip(codes, unix, sunlit, sun_alt, strict=True)
    ]


def group(events: list[dict[str, Any]]) -> list[tuple[float, float, float, bool]]:
    """Complete (rise, highest culmination, set, visible at an event) from Skyfield's event list."""
    out = []
    rise: dict[str, Any] | None = None
    culm: list[dict[str, Any]] = []
    for e in events:
        if e["kind"] == "rise":
            rise, culm = e, []
        elif e["kind"] == "culminate":
            culm.append(e)
        elif rise is not None and culm:
            seen = rise["visible"] or e["visible"] or any(c["visible"] for c in culm)
            out.append((rise["t"], culm[0]["t"], e["t"], seen))
            rise, culm = None, []
    return out


def compare(
    ours: PassTable, index: int, theirs: list[tuple[float, float, float]]
) -> tuple[int, float, list[int]]:
    """(passes on one side only, max |dt| over matched events, indices of our matched rows)."""
    mine = np.flatnonzero(
        (ours.observer == index) & (ours.rise_t >= ours.t0_unix) & (ours.set_t <= ours.t1_unix)
    )
    used: set[int] = set()
    worst = 0.0
    matched = []
    for rise, culm, set_ in theirs:
        if mine.size == 0:
            break
        k = int(mine[np.argmin(np.abs(ours.culm_t[mine] - culm))])
        if abs(ours.culm_t[k] - culm) > 60.0 or k in used:
            continue
        used.add(k)
        matched.append(k)
        worst = max(worst, abs(ours.rise_t[k] - rise), abs(ours.culm_t[k] - culm), abs(ours.set_t[k] - set_))
    return (len(theirs) - len(used)) + (mine.size - len(used)), worst, matched


def cold_start(repeats: int, t0_iso: str) -> dict[str, Any]:
    """``proxima passes`` for one observer in a fresh interpreter (module command if registered)."""
    args = ["passes", "--lat", "48.8566", "--lon", "2.3522", "--from", t0_iso, "--days", "10", "--json"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    main = [sys.executable, "-m", "proxima", *args]
    probe = subprocess.run(main, capture_output=True, text=True, env=env, check=False)
    how = "python -m proxima passes"
    cmd = main
    if probe.returncode != 0:
        how = "python -c 'from proxima.cli_sky import passes; passes()' (command not registered yet)"
        cmd = [
            sys.executable,
            "-c",
            "import sys; from proxima.cli_sky import passes; passes(sys.argv[1:])",
            *args[1:],
        ]
    times = []
    out = ""
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        times.append(time.perf_counter() - start)
        out = done.stdout
    return {"how": how, "median_s": statistics.median(times), "best_s": min(times),
            "passes": len(json.loads(out)["passes"])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observers", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=10.0)
    parser.add_argument("--sample", type=int, default=20, help="observers run through Skyfield")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iss = load_elements(now_unix=time.time(), max_age_days=None).find("ISS")
    t0 = iss.epoch_unix - opts.days / 2 * 86400.0
    t1 = t0 + opts.days * 86400.0
    lat, lon = observers(opts.observers)

    table, times = time_proxima(iss, lat, lon, t0, t1, MIN_EL, opts.repeats)
    _, times0 = time_proxima(iss, lat, lon, t0, t1, 0.0, max(1, opts.repeats - 1))
    ours_s = statistics.median(times)
    dask_s = None
    try:
        import dask  # noqa: F401
    except ImportError:
        pass
    else:  # the optional backend: chunks of observers on dask's default (threaded) scheduler
        runs = []
        for _ in range(opts.repeats):
            start = time.perf_counter()
            find_passes(iss, lat, lon, 0.0, t0_unix=t0, t1_unix=t1, min_elevation_deg=MIN_EL, backend="dask",
                        chunk_observers=max(1, opts.observers // (2 * (os.cpu_count() or 1))))  # fmt: skip
            runs.append(time.perf_counter() - start)
        dask_s = statistics.median(runs)

    # Skyfield on a sample of observers
    timescale, ephemeris = ref.skyfield_objects()
    from skyfield.api import EarthSatellite

    _, line1, line2 = format_tle(iss)
    sat = EarthSatellite(line1, line2, "ISS", timescale)
    st0, st1 = ref.unix_to_time(t0), ref.unix_to_time(t1)
    sample = np.linspace(0, opts.observers - 1, opts.sample).astype(int)
    skyfield_observer(sat, ephemeris, 0.0, 0.0, st0, st0 + 0.1)  # warm caches
    start = time.perf_counter()
    events = [skyfield_observer(sat, ephemeris, float(lat[i]), float(lon[i]), st0, st1) for i in sample]
    sky_s = time.perf_counter() - start
    per_observer = sky_s / len(sample)
    sky_all_s = per_observer * opts.observers

    differ = differ_refined = 0
    worst = worst_refined = 0.0
    n_sky = n_visible_sky = n_visible_ours = vis_missed = 0
    confirmed = checked = 0
    for i, ev in zip(sample, events, strict=True):
        theirs = group(ev)
        n_sky += len(theirs)
        d, w, matched = compare(table, int(i), [(a, b, c) for a, b, c, _ in theirs])
        differ += d
        worst = max(worst, w)
        refined = ref.group_passes(
            ref.reference_passes(line1, line2, float(lat[i]), float(lon[i]), 0.0, t0, t1, MIN_EL)
        )
        rd, rw, _ = compare(
            table, int(i), [(p.rise.t_unix, p.culmination.t_unix, p.set.t_unix) for p in refined]
        )
        differ_refined += rd
        worst_refined = max(worst_refined, rw)
        for (_, culm, _, seen), k in zip(theirs, matched, strict=False):
            _ = culm
            n_visible_sky += seen
            vis_missed += seen and not bool(table.visible[k])
        rows = np.flatnonzero((table.observer == i) & table.visible)
        n_visible_ours += rows.size
        if rows.size:
            mid = 0.5 * (table.vis_start_t[rows] + table.vis_end_t[rows])
            lit = sat.at(ref.unix_to_time(mid)).is_sunlit(ephemeris)
            sun = ref.reference_sun_elevation(float(lat[i]), float(lon[i]), mid)
            confirmed += int(np.sum(np.asarray(lit) & (np.atleast_1d(sun) < TWILIGHT)))
            checked += rows.size

    cold = cold_start(5, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)))
    result = {
        "observers": opts.observers,
        "days": opts.days,
        "min_elevation_deg": MIN_EL,
        "passes": len(table),
        "visible_passes": int(table.visible.sum()),
        "proxima_s": {"median": ours_s, "best": min(times), "all": times},
        "proxima_horizon_0deg_s": statistics.median(times0),
        "proxima_dask_s": dask_s,
        "skyfield_sample": len(sample),
        "skyfield_sample_s": sky_s,
        "skyfield_per_observer_s": per_observer,
        "skyfield_extrapolated_s": sky_all_s,
        "ratio": sky_all_s / ours_s,
        "sample_passes_skyfield": n_sky,
        "sample_passes_differ": differ,
        "sample_max_dt_s": worst,
        "sample_passes_differ_refined": differ_refined,
        "sample_max_dt_refined_s": worst_refined,
        "sample_visible_ours": n_visible_ours,
        "sample_visible_confirmed_by_skyfield": confirmed,
        "sample_visible_at_a_skyfield_event": n_visible_sky,
        "sample_visible_at_a_skyfield_event_missed": vis_missed,
        "cold_start": cold,
        "targets": {"under_10_s": ours_s <= 10.0, "at_least_150x": sky_all_s / ours_s >= 150.0},
        "machine": machine(),
    }
    if opts.json:
        print(json.dumps(result, indent=2))
        return
    print(f"ISS, {opts.observers:,} observers, {opts.days:g} days, rise/set at {MIN_EL:g}°, civil twilight")
    print(f"proxima find_passes: {ours_s:.2f} s median ({min(times):.2f} s best) for {len(table):,} passes, "
          f"{int(table.visible.sum()):,} visible with magnitudes")  # fmt: skip
    print(f"  same at the 0° horizon: {statistics.median(times0):.2f} s")
    if dask_s is not None:
        print(f"  with backend='dask' (threads, {os.cpu_count()} cores): {dask_s:.2f} s median")
    print(f"Skyfield find_events + is_sunlit + Sun altitude: {per_observer * 1000:.0f} ms per observer "
          f"({len(sample)} observers, {sky_s:.1f} s)")  # fmt: skip
    print(f"  extrapolated: {sky_all_s / 60:.1f} min for {opts.observers:,}")
    print(f"ratio: {sky_all_s / ours_s:.0f}x")
    print(f"sample: {n_sky} complete passes in Skyfield; {differ} differ; max |dt| {worst:.3f} s "
          f"(Skyfield's own ~0.5 s resolution)")  # fmt: skip
    print(
        f"  against Skyfield refined to 1 us: {differ_refined} differ; max |dt| {worst_refined * 1000:.1f} ms"
    )
    print(f"  visible parts: {n_visible_ours}, {confirmed}/{checked} confirmed by Skyfield at their middle")
    print(f"  {n_visible_sky} passes visible at a Skyfield event, {vis_missed} of them not visible here")
    print(f"cold start `{cold['how']}`: {cold['median_s']:.2f} s median, {cold['best_s']:.2f} s best "
          f"({cold['passes']} passes)")  # fmt: skip
    m = result["machine"]
    print(f"targets: <= 10 s {'PASS' if ours_s <= 10 else 'FAIL'}; >= 150x "
          f"{'PASS' if sky_all_s / ours_s >= 150 else 'FAIL'}")  # fmt: skip
    print(f"machine: {m['cpu_model']}, nproc {m['nproc']}, Python {m['python']}, numpy {m['numpy']}, "
          f"sgp4 {m['sgp4']}, skyfield {m['skyfield']}")  # fmt: skip


if __name__ == "__main__":
    main()
