"""Mission simulator speed: mission-seconds simulated per wall-clock second on the Proxima scenario.

Run: ``.venv/bin/python bench/simulate.py [--days D] [--repeats N] [--traffic-scale K] [--json] [--check]``

The shipped scenario (``proxima:data/scenarios/proxima.toml``, seed 2017): the ISS, three relays,
White Sands, Guam and Cologne over 7 days plus 12 hours of drain, with the Ku-band blockage and
the seeded outages, and a week of posts, photos, clips, a video, questions and answers.

Measured, each the median of ``--repeats`` runs:

* **load**: ``load_scenario()``: the mission's link windows from the orbit engine, the contact
  plan, the blockage and outages cut out of it, the traffic expanded from the seed;
* **store-and-forward** and **end-to-end**: building the simulator (one agent and one contact
  graph router per node) and running it to the end; the figure is the run's mission time over
  that wall time.

``--traffic-scale K`` posts every message K times (1 ms apart) to see how the speed follows the
load. Target: at least 10,000 mission-seconds per second on the 7-day scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

import benchinfo
from proxima.runtime.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from collections.abc import Sequence

TARGET = 10_000.0


def machine() -> dict[str, Any]:
    """The CPU, Python and OS the figures come from."""
    return benchinfo.machine()


def scaled(scenario: Scenario, k: int) -> Scenario:
    """The scenario with every message posted ``k`` times, 1 ms apart."""
    if k == 1:
        return scenario
    messages = tuple(dataclasses.replace(m, at_ms=m.at_ms + i) for m in scenario.messages for i in range(k))
    return dataclasses.replace(scenario, messages=messages)


def measure(scenario: Scenario, end_to_end: bool, repeats: int) -> dict[str, Any]:
    """Median wall time of building and running the simulator, and what the run did."""
    walls: list[float] = []
    doc: dict[str, Any] = {}
    for _ in range(repeats):
        began = time.perf_counter()
        result = scenario.simulator(end_to_end=end_to_end).run()
        walls.append(time.perf_counter() - began)
        doc = result.to_json(journeys=False)
    mission_s = (scenario.run_end_ms - scenario.start_ms) / 1000.0
    wall = statistics.median(walls)
    return {
        "mission_s": mission_s,
        "wall_s": round(wall, 4),
        "wall_s_best": round(min(walls), 4),
        "mission_s_per_s": round(mission_s / wall),
        "events": doc["events"],
        "events_per_s": round(doc["events"] / wall),
        "messages": doc["messages"],
        "delivered": doc["delivered"],
        "attempts": doc["attempts"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--days", type=float, default=None, help="days to simulate (default: the scenario's 7)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement (default 5)")
    ap.add_argument("--traffic-scale", type=int, default=1, help="post every message this many times")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args(argv)

    began = time.perf_counter()
    scenario = load_scenario(days=args.days)
    loads = [time.perf_counter() - began]
    for _ in range(max(1, args.repeats) - 1):
        began = time.perf_counter()
        load_scenario(days=args.days)
        loads.append(time.perf_counter() - began)
    scenario = scaled(scenario, max(1, args.traffic_scale))
    report: dict[str, Any] = {
        "scenario": scenario.source,
        "seed": scenario.seed,
        "days": (scenario.end_ms - scenario.start_ms) / 86_400_000,
        "drain_hours": (scenario.run_end_ms - scenario.end_ms) / 3_600_000,
        "traffic_scale": args.traffic_scale,
        "contacts": len(scenario.link_plan),
        "load_s": round(statistics.median(loads), 4),
        "store_and_forward": measure(scenario, False, args.repeats),
        "end_to_end": measure(scenario, True, args.repeats),
        "target_mission_s_per_s": TARGET,
        "machine": machine(),
    }
    worst = min(report["store_and_forward"]["mission_s_per_s"], report["end_to_end"]["mission_s_per_s"])
    report["pass"] = worst >= TARGET
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(report)
    return 1 if args.check and not report["pass"] else 0


def print_report(r: dict[str, Any]) -> None:
    """The figures as text."""
    print(
        f"{r['scenario']} (seed {r['seed']}): {r['days']:g} days + {r['drain_hours']:g} h of drain, "
        f"{r['contacts']} contacts, traffic x{r['traffic_scale']}"
    )
    print(f"  load (windows, plan, outages, traffic): {r['load_s'] * 1000:.0f} ms")
    for name in ("store_and_forward", "end_to_end"):
        m = r[name]
        label = name.replace("_", "-")
        print(
            f"  {label:<18} {m['wall_s'] * 1000:8.0f} ms  {m['mission_s_per_s']:>12,} mission-s/s"
            f"  ({m['events']:,} events, {m['events_per_s']:,}/s;"
            f" {m['delivered']}/{m['messages']} delivered)"
        )
    verdict = "PASS" if r["pass"] else "FAIL"
    print(f"  target >= {r['target_mission_s_per_s']:,.0f} mission-s/s: {verdict}")
    m = r["machine"]
    python = f"{m['python_implementation']} {m['python']}"
    print(f"Machine: {m['cpu_model']}, nproc {m['nproc']}, {python}, {m['platform']}")


if __name__ == "__main__":
    sys.exit(main())
