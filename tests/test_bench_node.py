"""`bench/node.py` itself, run small: three nodes, every measurement it reports, exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "node.py"


def test_the_node_bench_runs_small_and_checks_what_it_measures(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--json",
            "--no-ion",
            "--count", "300",
            "--sizes", "10K", "5M",
            "--file-threshold", "4M",
            "--volume", "12M",
            "--pings", "5",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    results = report["results"]
    assert results["chain"]["nodes"] == 3
    one_kb = results["rate_1k"]
    assert (one_kb["received"], one_kb["missing"], one_kb["duplicates"]) == (300, 0, 0)
    assert one_kb["exactly_once"] and one_kb["bundles_per_s"] > 0
    by_size = {s["size"]: s for s in results["sizes"]}
    assert set(by_size) == {10 * 1024, 5 * 1024 * 1024}
    assert by_size[5 * 1024 * 1024]["via"] == "files"  # at or above --file-threshold
    for s in by_size.values():
        assert s["exactly_once"] and s["received"] == s["count"] > 0, s
        assert s["peak_rss_mb"]["relay"] > 0
    for ping in (results["ping_ground"], results["ping_relay"]):
        assert ping["received"] == 5 and 0 < ping["p50_ms"] <= ping["p99_ms"]
    summary = report["summary"]
    assert summary["rate_1k_exactly_once"] is True
    assert summary["rate_1k_over_target_length"] is False  # 300 bundles, not 100,000: no verdict
    assert summary["rate_1k_pass"] is False
    assert summary["ping_p50_ms"] == results["ping_ground"]["p50_ms"]
