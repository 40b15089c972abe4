"""`proxima demo --headless`: the mission end to end, as CI's acceptance test, and resuming a run."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path


def _demo(tmp_path: Path, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxima",
            "demo",
            "--headless",
            "--json",
            "--port",
            "0",
            "--dir",
            str(tmp_path / "demo"),
            *args,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, report, proc.stderr


def test_a_mission_day_end_to_end(tmp_path: Path) -> None:
    code, report, err = _demo(tmp_path, "--hours", "24")
    assert code == 0, err
    posts = report["posts"]
    # Six playlist posts and two answers, every one delivered, reviewed by two people and published once.
    assert posts["written"] == 8
    assert posts["delivered"] == posts["reviewed"] == posts["published"] == 8
    assert posts["deliverable_in_window"] == 8 and posts["missing"] == [] and posts["published_twice"] == []
    assert report["questions_answered"] == 2
    # mastodon-mock and arroba come with the test tools: the demo publishes on a local Mastodon and
    # a local PDS too, once per language (the report checks each by the post's verification code).
    assert report["channels"] == ["activitypub", "atom", "bluesky", "mastodon"]
    assert report["contacts"]["with_links_up"] > 0
    assert report["contacts"]["with_links_up"] <= report["contacts"]["planned"]
    lat = report["latency_writing_to_publication_min"]
    assert (
        35 <= lat["min"] <= lat["median"] <= lat["max"] < 180
    )  # review after 20 min, publication 15 min later
    assert report["store_peaks_bundles"]["ISS"] >= 1
    # The network's part agrees with the simulator's for the same posts over the same plan.
    net = report["network"]
    assert net["simulator_delivered"] == net["delivered"] == 8
    assert abs(net["median_writing_to_ground_min"] - net["simulator_median_min"]) < 5
    assert report["ok"] is True


def test_a_second_run_resumes_and_fresh_starts_over(tmp_path: Path) -> None:
    code, first, err = _demo(tmp_path, "--hours", "1", "--speed", "600")
    assert code == 0, err
    assert first["posts"]["written"] == 1  # the 00:30 post
    code, second, err = _demo(tmp_path, "--hours", "3.5", "--speed", "600")
    assert code == 0, err
    assert second["mission"]["start"] == first["mission"]["start"]
    assert (
        second["posts"]["written"] == 3
    )  # 00:30 and 03:00, and the answer to the 01:00 question, none twice
    assert second["posts"]["published_twice"] == []
    code, again, err = _demo(tmp_path, "--hours", "1", "--speed", "600", "--fresh")
    assert code == 0, err
    assert again["posts"]["written"] == 1


def test_the_demo_never_hands_out_one_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each port the demo picks is free until its server binds it, so picking one twice would
    start two servers on it: the picks of a run are distinct even in a narrow range."""
    import proxima.demo as demo

    monkeypatch.setattr(demo, "_ephemeral_low", lambda: 1_125)  # 100 ports: 1,025-1,124
    ports = [demo.free_port() for _ in range(40)]
    assert all(1_025 <= p < 1_125 for p in ports)
    assert len(set(ports)) == len(ports)
