"""``proxima plan`` and ``proxima route`` through click's test runner on the main group."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from proxima.cli import main
from proxima.routing import read_hdtn, read_ion, read_ud3tn
from proxima.runtime.mission import load_mission
from proxima.runtime.plans import (
    dtn_ms_to_iso,
    iso_to_dtn_ms,
    node_numbers,
    plan_from_json,
    plan_from_mission,
)

if TYPE_CHECKING:
    from pathlib import Path

START = "2026-03-11T00:00:00Z"
START_UNIX = 1_773_187_200.0

# A hand-checked plan (times after 2026-03-11T00:00:00Z). For 500 bytes ready at node 1 at +10 s:
# - via node 2: 1->2 sends 10 s..10.5 s (1000 B/s), +1 s light: at 2 at 11.5 s; 2->3 opens at 50 s,
#   sends 50 s..50.5 s, +2 s light: at 3 at 52.5 s (2 hops);
# - direct: 1->3 at 10 B/s sends 10 s..60 s, +5 s light: at 3 at 65 s (1 hop), later.
HAND_PLAN = """\
# three nodes
@ 2026/03/11-00:00:00
a contact +0 +100 1 2 1000
a contact +50 +200 2 3 1000
a contact +0 +1000 1 3 10
a range +0 +1000 1 2 1
a range +0 +1000 2 3 2
a range +0 +1000 1 3 5
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def _one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, lines
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def json_plan() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok("plan", "--from", START, "--format", "json").stdout)
    return doc


@pytest.fixture
def hand_plan(tmp_path: Path) -> Path:
    path = tmp_path / "hand.rc"
    path.write_text(HAND_PLAN)
    return path


# --- plan --------------------------------------------------------------------------------------------


def test_plan_json_shape(json_plan: dict[str, Any]) -> None:
    doc = json_plan
    assert doc["format"] == "proxima-contact-plan" and doc["version"] == 1
    assert doc["mission"] == "Proxima"
    assert (doc["from"], doc["to"]) == ("2026-03-11T00:00:00.000Z", "2026-03-12T00:00:00.000Z")
    nodes = {n["name"]: (n["number"], n["eid"]) for n in doc["nodes"]}
    assert nodes["ISS"] == (10, "ipn:10.0") and nodes["Cologne"] == (40, "ipn:40.0")
    assert len(doc["contacts"]) > 50 and len(doc["ranges"]) == len(doc["contacts"])
    first = doc["contacts"][0]
    assert set(first) == {"from", "to", "from_name", "to_name", "start", "end", "rate_bytes_s", "confidence"}
    assert first["start"] == "2026-03-11T00:00:00.000Z"
    iss_up = [c for c in doc["contacts"] if (c["from_name"], c["to_name"]) == ("ISS", "TDRS East")]
    assert iss_up and all(c["rate_bytes_s"] == 37_500_000 for c in iss_up)
    assert all(c["start"].endswith(".000Z") and c["end"].endswith(".000Z") for c in doc["contacts"])
    rng = doc["ranges"][0]
    assert set(rng) == {"from", "to", "from_name", "to_name", "start", "end", "owlt_s"}
    assert 0.1 < rng["owlt_s"] < 0.2  # the ISS to a geostationary relay: about 40,000 km
    # The file reads back as exactly the plan computed from the mission (to whole seconds).
    plan, nodes, names = plan_from_json(json.dumps(doc))
    expected, _ = plan_from_mission(load_mission(), START_UNIX, START_UNIX + 86_400, whole_seconds=True)
    assert plan == expected
    assert names[23] == "TDRS Indian Ocean" and str(nodes.eid(10)) == "ipn:10.0"


@pytest.mark.parametrize("times", ["absolute", "relative"])
def test_plan_ion_reads_back(tmp_path: Path, json_plan: dict[str, Any], times: str) -> None:
    out = tmp_path / "plan.rc"
    result = ok("plan", "--from", START, "--format", "ion", "--times", times, "--out", str(out))
    assert f"ion, {times} times" in result.stdout and str(out) in result.stdout
    text = out.read_text()
    if times == "relative":
        assert "@ 2026/03/11-00:00:00" in text and "a contact +0 +" in text
    else:
        assert "a contact 2026/03/11-00:00:00 " in text
    read = read_ion(text, epoch_ms=0)  # relative times count from the file's own '@' command
    assert len(read.plan.contacts) == len(json_plan["contacts"])
    assert len(read.plan.ranges) == len(json_plan["ranges"])
    plan, _, _ = plan_from_json(json.dumps(json_plan))
    assert read.plan.contacts == plan.contacts


def test_plan_ud3tn_reads_back(tmp_path: Path, json_plan: dict[str, Any]) -> None:
    out = tmp_path / "iss.ud3tn"
    result = ok("plan", "--from", START, "--format", "ud3tn", "--node", "ISS", "--out", str(out))
    assert "the view of ISS (ipn:10.0)" in result.stdout
    read = read_ud3tn(out.read_text(), local=10)
    mine = [c for c in json_plan["contacts"] if c["from"] == 10]
    assert len(read.plan.contacts) == len(mine) > 0
    assert {c.to_node for c in read.plan.contacts} == {21, 22, 23}
    # --node also takes a node ID or a number
    by_eid = ok("plan", "--from", START, "--format", "ud3tn", "--node", "ipn:10.0").stdout
    assert (
        by_eid == out.read_text() == ok("plan", "--from", START, "--format", "ud3tn", "--node", "10").stdout
    )


def test_plan_hdtn_reads_back(tmp_path: Path, json_plan: dict[str, Any]) -> None:
    out = tmp_path / "contactPlan.json"
    ok("plan", "--from", START, "--format", "hdtn", "--out", str(out))
    doc = json.loads(out.read_text())
    assert doc["contacts"][0]["startTime"] == 0 and doc["contacts"][0]["rateBitsPerSec"] == 300_000_000
    read = read_hdtn(out.read_text(), epoch_ms=iso_to_dtn_ms(START))
    assert len(read.plan.contacts) == len(json_plan["contacts"])
    plan, _, _ = plan_from_json(json.dumps(json_plan))
    assert read.plan.contacts == plan.contacts


def test_plan_to_stdout_is_the_file() -> None:
    text = ok("plan", "--from", START, "--days", "0.25").stdout
    assert text.startswith("# contact plan written by proxima\na contact ")
    assert read_ion(text).plan.contacts[-1].start_ms < iso_to_dtn_ms("2026-03-11T06:00:00Z")


def test_plan_bad_input(tmp_path: Path) -> None:
    _one_error_line(run("plan", "--from", START, "--format", "xml"), "--format", "'xml'", "ion, ud3tn")
    _one_error_line(run("plan", "--from", START, "--times", "soon"), "--times")
    _one_error_line(run("plan", "--from", START, "--format", "ud3tn"), "give --node")
    _one_error_line(
        run("plan", "--from", START, "--format", "ud3tn", "--node", "Mars"), "unknown node 'Mars'"
    )
    ud3tn = ["plan", "--from", START, "--format", "ud3tn"]
    _one_error_line(run(*ud3tn, "--node", "ipn:99.0"), "--node", "not in the plan")
    _one_error_line(run("plan", "--from", START, "--node", "ISS"), "--node is for --format ud3tn")
    _one_error_line(run("plan", "--from", "yesterday"), "--from", "not an ISO 8601 time")
    _one_error_line(run("plan", "--from", "2026-03-11T00:00:00+02:00"), "UTC offset")
    _one_error_line(run("plan", "--mission", str(tmp_path / "absent.toml")), "absent.toml", "cannot read")
    _one_error_line(
        run("plan", "--from", START, "--out", str(tmp_path / "no" / "dir" / "p.rc")), "No such file"
    )
    assert run("plan", "--days", "0").exit_code == 2


def test_plan_far_from_the_elements_epoch() -> None:
    result = run("plan", "--from", "2027-01-01T00:00:00Z")
    _one_error_line(result, "exceeds the 30-day limit")
    assert "give --from" not in result.stderr
    assert "warning: " in result.stderr  # stale elements are reported too
    now = run("plan")  # the clock: the shipped elements are from 2026-03-11
    if now.exit_code:
        _one_error_line(now, "30-day limit", "give --from near the elements' epoch")


# --- route -------------------------------------------------------------------------------------------


def test_route_hand_checked(hand_plan: Path) -> None:
    args = ["route", "--plan", str(hand_plan), "--from", "ipn:1.0", "--to", "3"]
    out = ok(*args, "--at", "2026-03-11T00:00:10Z", "--size", "500").stdout
    lines = out.splitlines()
    assert lines[0] == "CGR from ipn:1.0 to ipn:3.0 at 2026-03-11T00:00:10.000Z, 500 bytes: 2 routes"
    assert lines[1].startswith("1. next hop ipn:2.0: arrives 2026-03-11T00:00:52.500Z (42.5 s), 2 hops")
    assert "valid until 2026-03-11T00:01:40.000Z" in lines[1]
    assert "ipn:1.0 -> ipn:2.0" in lines[2] and lines[2].endswith("arrives 2026-03-11T00:00:11.500Z")
    assert "ipn:2.0 -> ipn:3.0" in lines[3] and lines[3].endswith("arrives 2026-03-11T00:00:52.500Z")
    assert lines[4].startswith("2. next hop ipn:3.0: arrives 2026-03-11T00:01:05.000Z (55 s), 1 hop,")

    doc = json.loads(ok(*args, "--at", "2026-03-11T00:00:10Z", "--size", "500", "--json").stdout)
    assert doc["from"] == {"node": 1, "eid": "ipn:1.0", "name": None}
    assert doc["to"]["eid"] == "ipn:3.0" and doc["size_bytes"] == 500 and doc["expiry"] is None
    assert doc["plan"] == {"file": str(hand_plan), "format": "ion", "contacts": 3, "ranges": 3, "notes": []}
    best, second = doc["routes"]
    assert set(best) == {
        "rank",
        "next_hop",
        "arrival",
        "latency_s",
        "hops",
        "departure",
        "valid_until",
        "confidence",
        "contacts",
    }
    assert best["rank"] == 1 and best["next_hop"]["node"] == 2 and best["hops"] == 2
    assert best["arrival"] == "2026-03-11T00:00:52.500Z" and best["latency_s"] == 42.5
    assert best["departure"] == "2026-03-11T00:00:10.000Z"
    assert best["valid_until"] == "2026-03-11T00:01:40.000Z"
    hop = best["contacts"][1]
    assert hop["from"]["node"] == 2 and hop["to"]["node"] == 3 and hop["rate_bytes_s"] == 1000
    assert (hop["start"], hop["end"]) == ("2026-03-11T00:00:50.000Z", "2026-03-11T00:03:20.000Z")
    assert hop["arrival"] == best["arrival"]
    assert second["next_hop"]["node"] == 3 and second["arrival"] == "2026-03-11T00:01:05.000Z"

    yen = json.loads(
        ok(*args, "--at", "2026-03-11T00:00:10Z", "--size", "500", "--json", "--method", "yen").stdout
    )
    assert yen["method"] == "yen" and [r["arrival"] for r in yen["routes"]] == [
        best["arrival"],
        second["arrival"],
    ]

    # --routes 1 keeps the best; a lifetime of 50 s (expiry at +60 s) drops the direct route
    one = json.loads(ok(*args, "--at", START, "--size", "500", "--json", "--routes", "1").stdout)
    assert len(one["routes"]) == 1 and one["routes"][0]["next_hop"]["node"] == 2
    short = ok(*args, "--at", "2026-03-11T00:00:10Z", "--size", "500", "--lifetime", "50", "--json")
    doc = json.loads(short.stdout)
    assert doc["expiry"] == "2026-03-11T00:01:00.000Z" and [r["hops"] for r in doc["routes"]] == [2]


def test_route_relative_times_count_from_the_epoch(tmp_path: Path) -> None:
    path = tmp_path / "relative.rc"
    path.write_text(HAND_PLAN.replace("@ 2026/03/11-00:00:00\n", ""))
    args = ["route", "--plan", str(path), "--from", "1", "--to", "3", "--size", "500", "--json"]
    # no --epoch: relative times count from --at (ION's rule), so 2->3 opens at +60 s
    doc = json.loads(ok(*args, "--at", "2026-03-11T00:00:10Z").stdout)
    assert doc["routes"][0]["arrival"] == "2026-03-11T00:01:02.500Z"
    doc = json.loads(ok(*args, "--at", "2026-03-11T00:00:10Z", "--epoch", START).stdout)
    assert doc["routes"][0]["arrival"] == "2026-03-11T00:00:52.500Z"


def test_route_no_route(hand_plan: Path) -> None:
    args = ["route", "--plan", str(hand_plan), "--from", "1", "--to", "3", "--size", "10"]
    result = ok(*args, "--at", "2026-03-12T00:00:00Z")
    assert ": 0 routes" in result.stdout and "no route" in result.stdout
    doc = json.loads(ok(*args, "--at", "2026-03-12T00:00:00Z", "--json").stdout)
    assert doc["routes"] == []
    # nothing goes back from 3 to 1 in this plan
    assert (
        json.loads(ok(*args[:3], "--from", "3", "--to", "1", "--size", "1", "--at", START, "--json").stdout)[
            "routes"
        ]
        == []
    )


def test_route_from_the_shipped_mission() -> None:
    args = [
        "route",
        "--mission",
        "shipped",
        "--from",
        "ISS",
        "--to",
        "Cologne",
        "--at",
        "2026-03-11T06:00:00Z",
    ]
    doc = json.loads(ok(*args, "--size", "1000000", "--json").stdout)
    assert doc["from"] == {"node": 10, "eid": "ipn:10.0", "name": "ISS"}
    assert doc["to"] == {"node": 40, "eid": "ipn:40.0", "name": "Cologne"}
    assert doc["plan"]["mission"] == "Proxima" and doc["plan"]["contacts"] > 50
    routes = doc["routes"]
    assert len(routes) == 3
    arrivals = [iso_to_dtn_ms(r["arrival"]) for r in routes]
    assert arrivals == sorted(arrivals) and arrivals[0] > iso_to_dtn_ms("2026-03-11T06:00:00Z")
    for r in routes:
        chain = r["contacts"]
        assert chain[0]["from"]["name"] == "ISS" and chain[-1]["to"]["name"] == "Cologne"
        assert r["next_hop"] == chain[0]["to"] and r["hops"] == len(chain)
        assert all(a["to"] == b["from"] for a, b in itertools.pairwise(chain))
        assert chain[-1]["arrival"] == r["arrival"]
        assert r["next_hop"]["name"].startswith("TDRS")
    text = ok(*args, "--size", "1000").stdout
    assert text.startswith("CGR from ISS (ipn:10.0) to Cologne (ipn:40.0) at 2026-03-11T06:00:00.000Z")
    assert "White Sands -> Cologne" in text


def test_route_on_written_plans(tmp_path: Path) -> None:
    """A plan written in each format routes as the mission does (to whole-second rounding)."""
    at, common = "2026-03-11T06:00:00Z", ["--to", "40", "--size", "1000", "--json", "--routes", "1"]
    written = {}
    for fmt in ("ion", "hdtn", "json"):
        path = tmp_path / f"plan.{fmt}"
        ok("plan", "--from", START, "--format", fmt, "--out", str(path))
        written[fmt] = path
    arrivals = set()
    for fmt, path in written.items():
        extra = ["--epoch", START] if fmt == "hdtn" else []
        doc = json.loads(ok("route", "--plan", str(path), "--from", "10", "--at", at, *extra, *common).stdout)
        assert doc["plan"]["format"] == ("hdtn" if fmt == "hdtn" else "ion" if fmt == "ion" else "json")
        arrivals.add((doc["routes"][0]["next_hop"]["node"], doc["routes"][0]["hops"]))
    assert len(arrivals) == 1
    ud3tn = tmp_path / "iss.ud3tn"
    ok("plan", "--from", START, "--format", "ud3tn", "--node", "ISS", "--out", str(ud3tn))
    args = ["route", "--plan", str(ud3tn), "--from", "ipn:10.0", "--to", "ipn:22.0", "--at", at]
    doc = json.loads(ok(*args, "--size", "1", "--json").stdout)
    assert doc["plan"]["format"] == "ud3tn" and doc["routes"][0]["hops"] == 1


def test_route_bad_input(tmp_path: Path, hand_plan: Path) -> None:
    base = ["route", "--from", "1", "--to", "3", "--at", START, "--size", "1"]
    plan = ["--plan", str(hand_plan)]
    _one_error_line(run(*base, *plan, "--format", "xml"), "--format", "unknown format 'xml'")
    _one_error_line(run(*base, *plan, "--method", "dijkstra"), "--method", "'dijkstra'")
    _one_error_line(run(*base), "give one of --plan FILE or --mission FILE")
    _one_error_line(run(*base, *plan, "--mission", "shipped"), "give one of")
    _one_error_line(run(*base, *plan, "--to", "ipn:99.0"), "--to", "'ipn:99.0'", "not in the plan", "ipn:2.0")
    _one_error_line(run(*base, *plan, "--to", "Mars"), "--to", "unknown node 'Mars'")
    _one_error_line(run(*base, *plan, "--to", "1"), "same node")
    _one_error_line(run(*base, *plan, "--at", "tomorrow"), "--at", "not an ISO 8601 time")
    _one_error_line(run(*base, *plan, "--epoch", "2026-13-01"), "--epoch")
    _one_error_line(run(*base, "--plan", str(tmp_path / "absent.rc")), "absent.rc", "No such file")
    bad = tmp_path / "bad.rc"
    bad.write_text("# a plan\na contact +0 +100 1 2 1000\na contact +0 +10 1 two 1000\n")
    _one_error_line(run(*base, "--plan", str(bad)), "bad.rc line 3", "to node", "'two'")
    bad.write_text("a contact +100 +10 1 2 1000\n")
    _one_error_line(run(*base, "--plan", str(bad)), "bad.rc line 1", "stops before it starts")
    binary = tmp_path / "bin.rc"
    binary.write_bytes(b"a contact \xff\n")
    _one_error_line(run(*base, "--plan", str(binary)), "bin.rc", "not UTF-8")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n "format": "proxima-contact-plan",\n "contacts": [\n  {"from": 1,}\n ]\n}\n')
    _one_error_line(run(*base, "--plan", str(bad_json)), "bad.json line 4", "not JSON")
    bad_json.write_text(
        '{"format": "proxima-contact-plan", "contacts": [{"from": 1, "to": 2, "start": "x"}]}'
    )
    _one_error_line(run(*base, "--plan", str(bad_json)), "contacts[0].start", "ISO 8601")
    hdtn = tmp_path / "hdtn.json"
    hdtn.write_text('{"contacts": [{"source": 1, "dest": 3, "startTime": 0, "endTime": -5}]}')
    _one_error_line(run(*base, "--plan", str(hdtn)), "hdtn.json", "contacts[0].endTime")
    ud3tn = tmp_path / "p.ud3tn"
    ud3tn.write_text("1(ipn:3.0):::[{1,x,3}];\n")
    _one_error_line(run(*base, "--plan", str(ud3tn)), "p.ud3tn line 1", "contact end")
    assert run(*base, *plan, "--size", "-1").exit_code == 2
    assert run(*base, *plan, "--routes", "0").exit_code == 2


def test_times_round_trip() -> None:
    for text in ("2026-03-11T00:00:00.000Z", "2000-01-01T00:00:00.001Z", "1999-12-31T23:59:59.999Z"):
        assert dtn_ms_to_iso(iso_to_dtn_ms(text)) == text
    assert iso_to_dtn_ms("2026-03-11") == iso_to_dtn_ms("2026-03-11T00:00:00+00:00")


def test_node_numbers_for_nodes_without_ipn_ids() -> None:
    from proxima.runtime.mission import parse_mission

    mission = parse_mission(
        '[[ground]]\nname = "A"\nlatitude_deg = 0\nlongitude_deg = 0\nnode_id = "ipn:7.0"\n'
        '[[ground]]\nname = "B"\nlatitude_deg = 1\nlongitude_deg = 0\nnode_id = "dtn://b/"\n'
        '[[ground]]\nname = "C"\nlatitude_deg = 2\nlongitude_deg = 0\n'
        '[rates.terrestrial]\nrate = 1000\n[[link]]\nbetween = ["A", "B"]\n'
        '[[link]]\nbetween = ["B", "C"]\n[[link]]\nbetween = ["A", "C"]\n'
    )
    numbers, nodes = node_numbers(mission)
    assert numbers == {"A": 7, "B": 8, "C": 9}
    assert str(nodes.eid(8)) == "dtn://b/" and str(nodes.eid(9)) == "ipn:9.0"
    plan, _ = plan_from_mission(mission, START_UNIX, START_UNIX + 3600)
    assert len(plan.contacts) == 6 and plan.nodes == {7, 8, 9}


def test_commands_are_listed_and_loaded_lazily() -> None:
    code = "import sys, proxima.cli_routing; print('numpy' in sys.modules, 'sgp4' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    listing = ok("--help").stdout
    assert "plan" in listing and "route" in listing
    assert "--format" in ok("plan", "--help").stdout and "--times" in ok("plan", "--help").stdout
    assert "--epoch" in ok("route", "--help").stdout
