"""``proxima where`` and ``proxima passes`` through click's CliRunner (the command objects directly)."""

from __future__ import annotations

import json
import types
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from proxima import cli_sky
from proxima.cli_sky import passes, where
from proxima.orbit.elements import format_tle
from proxima.orbit.timescale import iso_to_unix
from proxima.runtime.elements import load_elements

if TYPE_CHECKING:
    from pathlib import Path

    import click
    from click.testing import Result

NEAR_EPOCH = "2026-03-11T00:00:00Z"  # the snapshot's ISS epoch is 2026-03-11T20:04:35Z
PARIS = ["--lat", "48.8566", "--lon", "2.3522", "--height", "35"]


def run(command: click.Command, *args: str) -> Result:
    return CliRunner().invoke(command, list(args))


def one_error_line(result: Result, text: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]
    assert "Traceback" not in result.output


def iss_file(tmp_path: Path) -> Path:
    iss = load_elements(now_unix=iso_to_unix(NEAR_EPOCH), max_age_days=None).find("ISS")
    path = tmp_path / "iss.tle"
    path.write_text("\n".join(format_tle(iss)) + "\n", encoding="utf-8")
    return path


def test_help() -> None:
    for command in (where, passes):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "--json" in result.output and "--elements" in result.output
    assert "--twilight" in run(passes, "--help").output


def test_where_text_and_json() -> None:
    result = run(where, "--at", "2026-03-11T20:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ISS (ZARYA) at 2026-03-11T20:00:00Z")
    for word in ("altitude", "speed", "ground", "sunlit", "footprint", "days old"):
        assert word in result.stdout
    assert result.stderr == ""
    data = json.loads(run(where, "--at", "2026-03-11T20:00:00Z", "--json").stdout)
    assert data["satellite"] == "ISS (ZARYA)" and data["time"] == "2026-03-11T20:00:00.000Z"
    assert 400 < data["alt_km"] < 440 and abs(data["lat_deg"]) < 52
    assert 7.5 < data["speed_km_s"] < 7.8 and isinstance(data["sunlit"], bool)
    assert data["elements"]["age_days"] == pytest.approx(-0.003, abs=0.001)


def test_where_warns_on_stale_elements() -> None:
    result = run(where, "--at", "2026-03-25T00:00:00Z", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["elements"]["age_days"] == pytest.approx(13.16, abs=0.01)
    assert result.stderr.startswith("warning: elements for ISS (ZARYA) are 13.2 days old")


def test_where_with_a_user_file(tmp_path: Path) -> None:
    path = iss_file(tmp_path)
    data = json.loads(run(where, "--at", NEAR_EPOCH, "--elements", str(path), "--json").stdout)
    assert data["elements"]["source"] == str(path)


def test_passes_table() -> None:
    result = run(passes, *PARIS, "--from", NEAR_EPOCH, "--days", "2", "--tz", "Europe/Paris")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "ISS (ZARYA) passes over 48.8566°N 2.3522°E" in lines[0] and "Europe/Paris" in lines[0]
    assert lines[2].split()[:3] == ["Date", "Rise", "Dir"]
    assert len(lines) > 6
    assert any("mag" in line for line in lines[3:])  # some are visible


def test_passes_visible_listing_like_spot_the_station() -> None:
    result = run(passes, *PARIS, "--from", NEAR_EPOCH, "--days", "7", "--visible", "--tz", "+01:00")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split()[:5] == ["Date", "Time", "Visible", "Max", "Height"]
    rows = lines[3:]
    assert len(rows) >= 5
    for row in rows:
        assert " min " in row and " above " in row and ("AM" in row or "PM" in row)


def test_passes_json() -> None:
    args = [*PARIS, "--from", NEAR_EPOCH, "--days", "3", "--tz", "Europe/Paris", "--json"]
    data = json.loads(run(passes, *args).stdout)
    assert data["time_zone"] == "Europe/Paris" and data["min_elevation_deg"] == 10.0
    assert data["twilight"] == "civil" and data["twilight_sun_elevation_deg"] == -6.0
    assert data["from"] == "2026-03-11T00:00:00.000Z" and data["to"] == "2026-03-14T00:00:00.000Z"
    items = data["passes"]
    assert len(items) >= 10
    for p in items:
        rise, culm, set_ = p["rise"], p["culmination"], p["set"]
        assert rise["time"] < culm["time"] < set_["time"] and rise["time"].endswith("Z")
        assert rise["local"].endswith("+01:00")
        assert rise["elevation_deg"] == pytest.approx(10.0, abs=1e-3)
        assert 0 < p["duration_s"] < 720
        if p["visible"] is not None:
            v = p["visible"]
            assert rise["time"] <= v["start"]["time"] < v["end"]["time"] <= set_["time"]
            assert -6 < v["magnitude"] < 4 and v["appears"].endswith(v["start"]["direction"])
    assert any(p["visible"] for p in items)
    visible = json.loads(run(passes, *args, "--visible").stdout)["passes"]
    assert visible == [p for p in items if p["visible"]]


def test_passes_options_change_the_answer() -> None:
    base = [*PARIS, "--from", NEAR_EPOCH, "--days", "3", "--json"]
    low = json.loads(run(passes, *base, "--min-elevation", "0").stdout)["passes"]
    high = json.loads(run(passes, *base, "--min-elevation", "30").stdout)["passes"]
    assert len(low) > len(high) > 0
    civil = sum(1 for p in json.loads(run(passes, *base).stdout)["passes"] if p["visible"])
    astro = sum(
        1
        for p in json.loads(run(passes, *base, "--twilight", "astronomical").stdout)["passes"]
        if p["visible"]
    )
    assert civil > astro


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--lat", "91", "--lon", "0"], "latitude 91.0° is outside [-90°, 90°]"),
        (["--lat", "48", "--lon", "2", "--from", "next tuesday"], "--from: not an ISO 8601 time"),
        (["--lat", "48", "--lon", "2", "--tz", "Mars/Olympus_Mons"], "unknown time zone 'Mars/Olympus_Mons'"),
        (["--lat", "48", "--lon", "2", "--tz", "+15:00"], "outside ±14:00"),
        (["--lat", "48", "--lon", "2", "--days", "0"], "--days 0 must be within (0, 30]"),
        (["--lat", "48", "--lon", "2", "--days", "40"], "--days 40 must be within"),
        (["--lat", "48", "--lon", "2", "--min-elevation", "95"], "minimum elevation 95.0°"),
        (["--lat", "48", "--lon", "2", "--elements", "/nonexistent/iss.tle"], "does not exist"),
        (["--lat", "48", "--lon", "2", "--satellite", "HUBBLE"], "no element set named 'HUBBLE'"),
    ],
)
def test_passes_bad_input(args: list[str], text: str) -> None:
    one_error_line(
        run(passes, *args, "--from", NEAR_EPOCH) if "--from" not in args else run(passes, *args), text
    )


def test_bad_elements_file(tmp_path: Path) -> None:
    path = iss_file(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:-1] + str((int(lines[2][-1]) + 1) % 10)  # break line 2's checksum
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one_error_line(run(passes, *PARIS, "--from", NEAR_EPOCH, "--elements", str(path)), "checksum")
    one_error_line(run(where, "--at", NEAR_EPOCH, "--elements", str(path)), "checksum")


def test_times_far_from_the_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    one_error_line(run(where, "--at", "2027-01-01T00:00:00Z"), "exceeds the 30-day limit")
    one_error_line(run(where, "--at", "yesterday"), "--at: not an ISO 8601 time")
    # the default time is now; months after the snapshot a hint says what to do
    later = iso_to_unix("2026-11-22T06:00:00Z")
    monkeypatch.setattr(cli_sky, "time", types.SimpleNamespace(time=lambda: later))
    one_error_line(run(passes, *PARIS), "give --from near the elements' epoch")
    one_error_line(run(where), "give --at near the elements' epoch")
