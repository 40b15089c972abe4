"""Contact graph routing speed: route queries per second on a 10,000-contact plan.

Run: ``.venv/bin/python bench/routing.py [--seconds S] [--seed N] [--json]``

The plan (fixed seed): 50 nodes (``ipn`` 1..50) and 10,000 directed contacts spread uniformly
over 7 days, each 5 to 20 minutes long, between a random pair, at 10 kB/s to 10 MB/s, with a
one-way light time of 0 to 2 s (a range over the contact's span). Queries ask for a bundle of
1 to 100 kB from a random source to a random destination at a random time in the first 6 days.

Measured (queries per second, the median of several timed repetitions after a warm-up):

* **cold**: ``ContactGraph.best_route``, one full search per query (no cache);
* **cold, 3 routes**: ``ContactGraph.routes(max_routes=3)``, SABR's contact exclusion (three
  searches per query, as a route list is computed);
* **warm**: ``ContactGraphRouter.route(bundle, now_ms, size=...)`` from one node (node 1), the
  clock moving forward by 10 s per query across the 7 days, destinations at random: the
  router's per-destination route lists, checked against the bundle (size, booked volume,
  expiry) and recomputed when a route ends. Each query also books the bundle.

Target: at least 1,000 queries per second.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

import benchinfo
from proxima.bpv7 import EID, Bundle, PrimaryBlock, payload_block
from proxima.routing import Contact, ContactGraph, ContactGraphRouter, ContactPlan, Range

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

S = 1000
DAY = 86_400 * S
T0 = 780_000_000_000  # DTN ms, September 2024


def make_plan(seed: int, nodes: int = 50, contacts: int = 10_000, days: int = 7) -> ContactPlan:
    """The benchmark's random plan (deterministic for a seed)."""
    rng = random.Random(seed)
    cs: list[Contact] = []
    rs: list[Range] = []
    for _ in range(contacts):
        a = rng.randint(1, nodes)
        b = rng.randint(1, nodes - 1)
        b = b + 1 if b >= a else b
        start = T0 + rng.randrange(0, days * DAY - 20 * 60 * S)
        end = start + rng.randint(5 * 60, 20 * 60) * S
        rate = 10 ** rng.uniform(4, 7)
        cs.append(Contact(a, b, start, end, rate))
        rs.append(Range(a, b, start, end, rng.randint(0, 2000)))
    return ContactPlan(cs, rs)


def queries(seed: int, n: int, nodes: int = 50, days: int = 6) -> list[tuple[int, int, int, int]]:
    """(source, destination, time, size) for ``n`` queries."""
    rng = random.Random(seed + 1)
    out = []
    for _ in range(n):
        a = rng.randint(1, nodes)
        b = rng.randint(1, nodes - 1)
        b = b + 1 if b >= a else b
        out.append((a, b, T0 + rng.randrange(0, days * DAY), rng.randint(1_000, 100_000)))
    return out


def bundle_to(node: int, created: int) -> Bundle:
    primary = PrimaryBlock(
        destination=EID.parse(f"ipn:{node}.1"),
        source=EID.parse("ipn:1.1"),
        report_to=EID.parse("dtn:none"),
        creation_time=created,
        sequence=0,
        lifetime=7 * DAY,
        crc_type=2,
    )
    return Bundle(primary, (payload_block(b"", crc_type=2),))


def rate(fn: Callable[[int], int], seconds: float, repeats: int = 5) -> tuple[float, float, int]:
    """(median, best) calls per second of ``fn(i)`` over ``repeats`` timed slices; total calls."""
    fn(0)
    results = []
    total = 0
    i = 1
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / repeats
        while True:
            n += fn(i)
            i += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        results.append(n / (now - start))
        total += n
    return statistics.median(results), max(results), total


def machine() -> dict[str, Any]:
    return benchinfo.machine()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="time per measurement (default 6)")
    ap.add_argument("--seed", type=int, default=2026, help="random seed of the plan and queries")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--no-simulator", action="store_true", help="skip the simulator's speed")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    plan = make_plan(args.seed)
    build_plan_s = time.perf_counter() - t
    t = time.perf_counter()
    graph = ContactGraph(plan)
    build_graph_s = time.perf_counter() - t
    qs = queries(args.seed, 20_000)
    found = sum(1 for a, b, at, size in qs[:500] if graph.best_route(a, b, at, size=size) is not None)

    def cold(i: int) -> int:
        a, b, at, size = qs[i % len(qs)]
        graph.best_route(a, b, at, size=size)
        return 1

    def cold3(i: int) -> int:
        a, b, at, size = qs[i % len(qs)]
        graph.routes(a, b, at, size=size, max_routes=3)
        return 1

    router = ContactGraphRouter(plan, 1)
    rng = random.Random(args.seed + 2)
    warm_q = [(rng.randint(2, 50), rng.randint(1_000, 100_000)) for _ in range(20_000)]
    bundles = {n: bundle_to(n, T0) for n in range(2, 51)}
    clock = [T0]

    def warm(i: int) -> int:
        dest, size = warm_q[i % len(warm_q)]
        clock[0] += 10 * S
        if clock[0] > T0 + 6 * DAY:
            clock[0] = T0
            router.graph.booked.clear()
            router.invalidate()
        router.route(bundles[dest], clock[0], size=size)
        return 1

    cold_med, cold_best, cold_n = rate(cold, args.seconds)
    cold3_med, cold3_best, cold3_n = rate(cold3, args.seconds)
    warm_med, warm_best, warm_n = rate(warm, args.seconds)
    report: dict[str, Any] = {
        "plan": {
            "nodes": 50,
            "contacts": len(plan),
            "days": 7,
            "seed": args.seed,
            "build_plan_s": round(build_plan_s, 3),
            "build_graph_s": round(build_graph_s, 3),
            "queries_with_a_route_pct": round(found / 5, 1),
        },
        "cold_queries_per_s": round(cold_med),
        "cold_queries_per_s_best": round(cold_best),
        "cold_queries": cold_n,
        "cold_3_routes_per_s": round(cold3_med),
        "cold_3_routes_per_s_best": round(cold3_best),
        "cold_3_routes_queries": cold3_n,
        "warm_queries_per_s": round(warm_med),
        "warm_queries_per_s_best": round(warm_best),
        "warm_queries": warm_n,
        "warm_route_lists_computed": router.recomputed,
        "target_queries_per_s": 1000,
        "machine": machine(),
    }
    if not args.no_simulator:
        # The simulator's speed on the 7-day Proxima scenario (bench/simulate.py has more).
        import simulate
        from proxima.runtime.scenario import load_scenario

        sim: dict[str, Any] = simulate.measure(load_scenario(), end_to_end=False, repeats=3)
        sim["target_mission_s_per_s"] = simulate.TARGET
        report["simulator"] = sim
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return 0


def print_report(r: dict[str, Any]) -> None:
    p, m = r["plan"], r["machine"]
    print(
        f"Plan: {p['contacts']} contacts, {p['nodes']} nodes, {p['days']} days (seed {p['seed']}); "
        f"built in {p['build_plan_s']} s, indexed in {p['build_graph_s']} s; "
        f"{p['queries_with_a_route_pct']} % of queries have a route"
    )
    impl = f"{m['python_implementation']} {m['python']}"
    print(f"Machine: {m['cpu_model']}, nproc {m['nproc']}, {impl}, {m['platform']}")
    print(f"{'':32} {'median /s':>10} {'best /s':>10} {'queries':>9}")
    rows = [
        ("cold (best_route, no cache)", "cold_queries", "cold_queries"),
        ("cold, 3 routes (exclusion)", "cold_3_routes", "cold_3_routes_queries"),
        ("warm (router, cached lists)", "warm_queries", "warm_queries"),
    ]
    for name, key, count in rows:
        print(f"{name:32} {r[key + '_per_s']:>10,} {r[key + '_per_s_best']:>10,} {r[count]:>9,}")
    computed = r["warm_route_lists_computed"]
    print(f"warm: {computed} route lists computed; target {r['target_queries_per_s']:,}/s")
    sim = r.get("simulator")
    if sim is not None:
        print(
            f"simulator, 7-day Proxima scenario: {sim['mission_s_per_s']:,} mission-seconds per second "
            f"({sim['wall_s']} s for {sim['mission_s']:,.0f} s, {sim['events']:,} events); "
            f"target {sim['target_mission_s_per_s']:,.0f}"
        )


if __name__ == "__main__":
    sys.exit(main())
