"""``proxima overflights`` and ``proxima links`` through click's test runner."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from proxima.cli_links import links, overflights
from proxima.orbit.timescale import iso_to_unix

if TYPE_CHECKING:
    from pathlib import Path

    import click

START = "2026-03-11T12:00:00Z"


def run(command: click.Command, *args: str) -> Result:
    return CliRunner().invoke(command, list(args))


def _one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, lines
    for fragment in fragments:
        assert fragment in errors[0]
    assert "Traceback" not in result.stderr


def test_links_table_for_the_shipped_mission() -> None:
    result = run(links, "--from", START, "--days", "0.5")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(
        "Proxima (proxima:data/missions/proxima.toml), 2026-03-11T12:00:00Z to 2026-03-12T00:00:00Z"
    )
    assert "ISS <-> TDRS East" in out and "space-relay" in out
    assert "300 Mbit/s / 72 kbit/s" in out
    assert "White Sands <-> Cologne" in out and "terrestrial" in out
    assert "* cut at the start or end" in out
    assert "elements: ISS of 2026-03-11T20:04:35Z" in out


def test_links_json() -> None:
    result = run(links, "--from", START, "--days", "1", "--json", "--node", "TDRS West")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mission"] == "Proxima"
    assert doc["from"] == "2026-03-11T12:00:00.000Z"
    assert doc["to"] == "2026-03-12T12:00:00.000Z"
    windows = doc["windows"]
    assert windows and all("TDRS West" in (w["a"], w["b"]) for w in windows)
    first = windows[0]
    assert set(first) >= {
        "a",
        "b",
        "kind",
        "start",
        "end",
        "duration_s",
        "owlt_s",
        "rate_ab_bytes_s",
        "cut_start",
    }
    assert iso_to_unix(first["start"]) == pytest.approx(first["start_unix"], abs=0.06)
    relay_ground = [w for w in windows if w["kind"] == "relay-ground"]
    assert relay_ground[0]["cut_start"] and relay_ground[0]["cut_end"]
    assert relay_ground[0]["duration_s"] == 86400.0


def test_links_with_a_mission_file(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(
        '[[relay]]\nname = "R"\nlongitude_deg = 0\n'
        '[[ground]]\nname = "G"\nlatitude_deg = 0\nlongitude_deg = 0\n'
        '[rates.relay-ground]\nrate = "1 kbit/s"\n[[link]]\nbetween = ["R", "G"]\n'
    )
    result = run(links, "--mission", str(path), "--days", "2")  # no elements: any start time will do
    assert result.exit_code == 0, result.output
    assert (
        "R <-> G" in result.stdout
        and "2d 0:00:00" in result.stdout
        and "1 kbit/s / 1 kbit/s" in result.stdout
    )


def test_links_bad_mission_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[ground]]\nname = "G"\nlatitude_deg = 95\nlongitude_deg = 0\n')
    _one_error_line(run(links, "--mission", str(path)), str(path), "ground[0].latitude_deg")
    _one_error_line(run(links, "--mission", str(tmp_path / "absent.toml")), "absent.toml", "cannot read")
    _one_error_line(run(links, "--from", "yesterday"), "ISO 8601")
    _one_error_line(run(links, "--from", START, "--node", "Mars"), "no node named 'Mars'")


def test_links_far_from_the_elements_epoch() -> None:
    result = run(links, "--from", "2027-01-01T00:00:00Z")
    _one_error_line(result, "exceeds the 30-day limit")
    assert "warning: " in result.stderr  # stale elements are reported too
    # Without --from the clock is used; the hint says what to do if that is too far.
    now = run(links)
    if now.exit_code:
        _one_error_line(now, "give --from")


def test_links_usage_errors() -> None:
    assert run(links, "--days", "0").exit_code == 2
    assert run(links, "--days", "31").exit_code == 2
    assert "Link windows" in run(links, "--help").stdout


def test_overflights_table_and_json() -> None:
    result = run(overflights, "--region", "FR", "--from", START, "--days", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "ISS (ZARYA) over France (FR), 2026-03-11T12:00:00Z to 2026-03-13T12:00:00Z"
    )
    assert "overflights" in result.stdout and "°N" in result.stdout
    as_json = run(overflights, "--region", "france", "--from", START, "--days", "2", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["region"] == {"code": "FR", "name": "France"}
    assert doc["satellite"] == "ISS (ZARYA)" and doc["catalog"] == "25544"
    found = doc["overflights"]
    assert found and all(o["leave_unix"] > o["enter_unix"] for o in found)
    assert all(30.0 < o["enter_lat_deg"] < 55.0 for o in found)


def test_overflights_with_an_elements_file(tmp_path: Path) -> None:
    from importlib import resources

    from proxima.runtime.elements import SNAPSHOT_RESOURCE

    lines = resources.files("proxima").joinpath(*SNAPSHOT_RESOURCE).read_text(encoding="utf-8").splitlines()
    snapshot = tmp_path / "tdrs3.tle"
    snapshot.write_text("\n".join(lines[3:6]) + "\n")  # TDRS 3 only: a one-set file needs no --satellite
    result = run(overflights, "--region", "BR", "--from", START, "--elements", str(snapshot), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["satellite"] == "TDRS 3"


def test_overflights_bad_input() -> None:
    _one_error_line(run(overflights, "--region", "Atlantis", "--from", START), "unknown region 'Atlantis'")
    _one_error_line(run(overflights, "--region", "Frnace", "--from", START), "did you mean 'France'")
    _one_error_line(run(overflights, "--region", "FR", "--from", START, "--satellite", "HUBBLE"), "HUBBLE")
    _one_error_line(run(overflights, "--region", "FR", "--elements", "/nonexistent.tle"), "does not exist")
    _one_error_line(run(overflights, "--region", "FR", "--from", "2027-06-01T00:00:00Z"), "30-day limit")
    assert run(overflights).exit_code == 2  # --region is required
