"""``proxima simulate`` through click's test runner."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner, Result

from proxima.cli_sim import simulate

if TYPE_CHECKING:
    from pathlib import Path


def run(*args: str) -> Result:
    return CliRunner().invoke(simulate, list(args))


def _one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_tables_for_half_a_day_of_the_shipped_scenario() -> None:
    result = run("proxima", "--days", "1", "--journeys", "3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Proxima (proxima:data/scenarios/proxima.toml), seed 2017, store-and-forward")
    assert "blockage: ISS's links cut" in out
    for title in ("Traffic classes", "Storage per node", "Traffic per link", "Journeys (the 3 slowest"):
        assert title in out
    assert "ISS" in out and "Cologne" in out and "p99" in out


def test_json_and_seed() -> None:
    one = run("--days", "0.5", "--seed", "3", "--json")
    two = run("--days", "0.5", "--seed", "3", "--json")
    assert one.exit_code == 0, one.output
    assert one.stdout == two.stdout
    doc = json.loads(one.stdout)
    assert doc["seed"] == 3 and doc["mode"] == "store-and-forward"
    assert doc["messages"] == len(doc["journeys"]) > 0
    assert {"delivery_ratio", "classes", "nodes", "contacts", "notes"} <= set(doc)
    journey = doc["journeys"][0]
    assert {"class", "from", "to", "size", "posted_s", "status", "latency_s", "hops"} <= set(journey)


def test_end_to_end_and_compare() -> None:
    e2e = run("--days", "0.5", "--end-to-end", "--json")
    assert e2e.exit_code == 0, e2e.output
    assert json.loads(e2e.stdout)["mode"] == "end-to-end"
    both = run("--days", "1", "--compare", "--json")
    assert both.exit_code == 0, both.output
    doc = json.loads(both.stdout)
    assert doc["store_and_forward"]["mode"] == "store-and-forward"
    assert doc["end_to_end"]["mode"] == "end-to-end"
    assert set(doc["difference"]) == set(doc["store_and_forward"]["classes"])
    table = run("--days", "1", "--compare", "--journeys", "0")
    assert table.exit_code == 0, table.output
    assert "End-to-end against store-and-forward" in table.stdout
    assert "Journeys" not in table.stdout


def test_bad_input_is_one_error_line(tmp_path: Path) -> None:
    _one_error_line(run(str(tmp_path / "nope.toml")), "nope.toml", "cannot read the scenario")
    _one_error_line(run("--days", "0"), "--days")
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\nmission = "proxima"\n[time]\nstart = "elements"\n[[traffic]]\nclass = 1\n')
    _one_error_line(run(str(bad)), str(bad), "traffic[0].class")
    assert run("--days", "x").exit_code == 2  # a usage error, as click has it
