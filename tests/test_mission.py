"""Mission descriptions (proxima.runtime.mission): the shipped example, every error, the windows."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from proxima.bpv7.eid import EID
from proxima.errors import ConfigError
from proxima.orbit.elements import Elements, GeoRelay
from proxima.orbit.links import GroundStation, contacts
from proxima.orbit.timescale import iso_to_unix
from proxima.runtime.elements import StaleElementsWarning
from proxima.runtime.mission import (
    Mission,
    load_mission,
    mission_windows,
    parse_mission,
    parse_rate,
)

T0 = iso_to_unix("2026-03-11T12:00:00Z")
DAY = 86400.0

SMALL = """
name = "small"

[[spacecraft]]
name = "ISS"

[[relay]]
name = "R"
longitude_deg = -41.0

[[ground]]
name = "G"
latitude_deg = 32.5
longitude_deg = -106.6

[rates.space-relay]
up = 1000
down = 2000

[rates.relay-ground]
rate = "8 kbit/s"

[[link]]
between = ["ISS", "R"]

[[link]]
between = ["G", "R"]
"""


@pytest.fixture(scope="module")
def example() -> Mission:
    return load_mission()


def test_the_shipped_example_parses(example: Mission) -> None:
    assert example.name == "Proxima"
    assert example.source == "proxima:data/missions/proxima.toml"
    roles = {n.name: n.role for n in example.nodes}
    assert roles == {
        "ISS": "spacecraft",
        "TDRS East": "relay",
        "TDRS West": "relay",
        "TDRS Indian Ocean": "relay",
        "White Sands": "ground",
        "Guam": "ground",
        "Cologne": "ground",
    }
    iss = example.node("ISS")
    assert isinstance(iss.position, Elements) and iss.position.name == "ISS"
    assert iss.position.catalog == "25544"
    assert iss.node_id == EID.parse("ipn:10.0")
    east = example.node("TDRS East").position
    assert isinstance(east, GeoRelay) and east.longitude_deg == -41.0
    sands = example.node("White Sands").position
    assert isinstance(sands, GroundStation) and sands.alt_km == pytest.approx(1.45)
    assert sands.mask.min_elevation_deg == (5.0,)
    kinds = {(link.a, link.b): link.kind for link in example.links}
    assert kinds[("ISS", "TDRS East")] == "space-relay"
    assert kinds[("TDRS East", "White Sands")] == "relay-ground"
    assert kinds[("White Sands", "Cologne")] == "terrestrial"
    assert not any("ISS" in pair and kind != "space-relay" for pair, kind in kinds.items())
    down = next(link for link in example.links if link.a == "ISS")
    assert down.rate_ab_bytes_s == 300e6 / 8  # ISS -> relay: Ku-band return
    assert down.rate_ba_bytes_s == 72e3 / 8  # relay -> ISS: S-band forward
    assert [e.name for e in example.elements] == ["ISS"]


def test_example_windows_for_a_day(example: Mission) -> None:
    windows = mission_windows(example, T0, T0 + DAY)
    pairs = {(w.a, w.b) for w in windows}
    assert ("ISS", "TDRS East") in pairs and ("ISS", "TDRS Indian Ocean") in pairs
    # Relays by longitude are always in view of their ground terminal, the ground is always linked.
    for pair in [("TDRS East", "White Sands"), ("TDRS Indian Ocean", "Guam"), ("White Sands", "Cologne")]:
        [always] = [w for w in windows if (w.a, w.b) == pair]
        assert (always.start_unix, always.end_unix) == (T0, T0 + DAY)
    assert [w.start_unix for w in windows] == sorted(w.start_unix for w in windows)
    iss = [w for w in windows if w.a == "ISS"]
    assert len(iss) > 30  # three relays, about 15 windows each a day
    # The three relays together keep the ISS in touch most of the time.
    covered = _union_seconds([(w.start_unix, w.end_unix) for w in iss])
    assert covered > 0.9 * DAY
    plan = contacts(windows)
    assert len(plan) == 2 * len(windows)
    up = next(c for c in plan if c.to_node == "ISS")
    assert up.rate_bytes_s == 9000.0 and 0.11 < up.owlt_s < 0.16


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, -1e300
    for start, stop in sorted(spans):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def test_a_small_mission_and_its_rates() -> None:
    mission = parse_mission(SMALL, source="small.toml")
    [sat_relay, relay_ground] = mission.links
    assert (sat_relay.rate_ab_bytes_s, sat_relay.rate_ba_bytes_s) == (2000.0, 1000.0)  # down, up
    assert (relay_ground.a, relay_ground.b) == ("G", "R")
    assert relay_ground.rate_ab_bytes_s == relay_ground.rate_ba_bytes_s == 1000.0
    assert mission.node("ISS").position.name == "ISS"  # found by name prefix in the snapshot
    windows = mission_windows(mission, T0, T0 + DAY / 4)
    assert any(w.kind == "relay-ground" for w in windows)


def test_groups_masks_files_and_overrides(tmp_path: Path) -> None:
    from importlib import resources

    from proxima.runtime.elements import SNAPSHOT_RESOURCE

    lines = resources.files("proxima").joinpath(*SNAPSHOT_RESOURCE).read_text(encoding="utf-8").splitlines()
    (tmp_path / "iss.tle").write_text("\n".join(lines[:3]) + "\n")
    text = """
[[spacecraft]]
name = "Station"
elements_file = "iss.tle"

[[relay]]
name = "TDRS 5 by elements"
elements = 21639

[[relay]]
name = "East"
longitude_deg = 319.0

[[ground]]
name = "Masked"
latitude_deg = 45
longitude_deg = 10
mask = [[0, 0], [180, 0], [180.5, 90], [359.5, 90]]

[[ground]]
name = "Other"
latitude_deg = 40
longitude_deg = -3
height_m = 600

[rates.space-ground]
up = "1 Mbit/s"
down = "2 MB/s"

[rates.space-relay]
up = 1
down = 2

[[link]]
between = ["@spacecraft", "@ground"]

[[link]]
between = ["@relays", "Station"]
max_range_km = 40000
grazing_height_km = 0
min_duration_s = 60

[[link]]
between = ["Masked", "Other"]
rate = "1 Gbps"
light_time_s = 0.01
"""
    path = tmp_path / "m.toml"
    path.write_text(text)
    mission = load_mission(path)
    assert mission.node("Station").source == str(tmp_path / "iss.tle")
    relay = mission.node("TDRS 5 by elements").position
    assert isinstance(relay, Elements) and relay.catalog == "21639"
    east = mission.node("East").position
    assert isinstance(east, GeoRelay) and east.longitude_deg == -41.0
    masked = mission.node("Masked").position
    assert isinstance(masked, GroundStation) and not masked.mask.is_constant
    by_pair = {(link.a, link.b): link for link in mission.links}
    assert set(by_pair) == {
        ("Station", "Masked"),
        ("Station", "Other"),
        ("TDRS 5 by elements", "Station"),
        ("East", "Station"),
        ("Masked", "Other"),
    }
    assert by_pair[("Station", "Masked")].rate_ab_bytes_s == 2e6
    assert by_pair[("Station", "Masked")].rate_ba_bytes_s == 125e3
    assert by_pair[("East", "Station")].rate_ab_bytes_s == 1.0  # relay -> spacecraft is up
    assert by_pair[("East", "Station")].max_range_km == 40000
    assert by_pair[("Masked", "Other")].rate_ab_bytes_s == 125e6
    windows = mission_windows(mission, T0, T0 + DAY / 2)
    assert all(w.duration_s >= 60 for w in windows if w.kind == "space-relay")
    [ground] = [w for w in windows if w.kind == "terrestrial"]
    assert ground.owlt_s == 0.01


def test_stale_elements_warn_only_for_the_sets_used() -> None:
    with pytest.warns(StaleElementsWarning, match=r"spacecraft\[0\].elements: elements for ISS"):
        parse_mission(SMALL, source="small.toml", now_unix=T0 + 20 * DAY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_mission(SMALL, source="small.toml", now_unix=T0)  # TDRS 3 is older, but unused


@pytest.mark.parametrize(
    ("replace", "by", "key", "what"),
    [
        ('name = "small"', 'name = "small"\ncolour = "red"', "colour", "unknown key"),
        ('name = "ISS"', 'name = "ISS"\nelements = "HUBBLE"', r"spacecraft\[0\]\.elements", "HUBBLE"),
        ('name = "ISS"', 'name = "ISS"\nelements_file = "nope.tle"', r"spacecraft\[0\]\.elements_file", ""),
        ('name = "ISS"', 'name = "ISS"\nnode_id = "ipn:1.5"', r"spacecraft\[0\]\.node_id", "node ID"),
        ('name = "ISS"', 'name = "ISS"\nnode_id = "bogus"', r"spacecraft\[0\]\.node_id", ""),
        ("longitude_deg = -41.0", "longitude_deg = 400", r"relay\[0\]\.longitude_deg", "within"),
        ("longitude_deg = -41.0", 'longitude_deg = "west"', r"relay\[0\]\.longitude_deg", "number"),
        ("longitude_deg = -41.0", 'elements = "TDRS 5"', "", ""),  # fine: a relay by elements
        ("longitude_deg = -41.0", "", r"relay\[0\]\.longitude_deg", "either"),
        ("latitude_deg = 32.5", "latitude_deg = 91", r"ground\[0\]\.latitude_deg", "within"),
        ("latitude_deg = 32.5", "", r"ground\[0\]\.latitude_deg is missing", ""),
        (
            "longitude_deg = -106.6",
            "longitude_deg = -106.6\nmask = [[0, 5, 7]]",
            r"ground\[0\]\.mask\[0\]",
            "",
        ),
        (
            "longitude_deg = -106.6",
            "longitude_deg = -106.6\nmask = [[0, 95]]",
            r"ground\[0\]\.mask",
            "outside",
        ),
        (
            "longitude_deg = -106.6",
            "longitude_deg = -106.6\nmask = []\nmin_elevation_deg = 3",
            r"ground\[0\]\.mask",
            "not both",
        ),
        ("up = 1000", 'up = "fast"', r"rates\.space-relay\.up", "cannot read the rate"),
        ("up = 1000", "up = -5", r"rates\.space-relay\.up", ">= 0"),
        ("up = 1000", "", r"rates\.space-relay\.up is missing", ""),
        ("[rates.relay-ground]", "[rates.relay-grund]", r"rates\.relay-grund", "unknown key"),
        ('rate = "8 kbit/s"', 'rate = "8 kbit/s"\nup = 5', r"rates\.relay-ground\.rate", "not both"),
        ('between = ["ISS", "R"]', 'between = ["ISS", "Q"]', r"link\[0\]\.between\[1\]", "no node named 'Q'"),
        ('between = ["ISS", "R"]', 'between = ["ISS"]', r"link\[0\]\.between", "two node names"),
        ('between = ["ISS", "R"]', 'between = ["R", "R"]', r"link\[0\]\.between", "itself"),
        ('between = ["G", "R"]', 'between = ["R", "ISS"]', r"link\[1\]\.between", "already linked"),
        ('between = ["G", "R"]', 'between = ["G", "ISS"]', r"link\[1\]\.between", r"rates\.space-ground"),
        ('between = ["G", "R"]', 'between = ["G", "R"]\nlight_time_s = 1', r"link\[1\]\.light_time_s", ""),
        ('between = ["G", "R"]', 'between = ["G", "R"]\nspeed = 1', r"link\[1\]\.speed", "unknown key"),
        ('name = "G"', 'name = "R"', r"ground\[0\]\.name", "second node"),
        ('name = "G"', 'name = "@ground"', r"ground\[0\]\.name", "reserved"),
        ('name = "G"', "name = 5", r"ground\[0\]\.name", "text"),
        ('[[spacecraft]]\nname = "ISS"', "spacecraft = 5", "spacecraft", "array of tables"),
        ('name = "small"', 'name = "small', "", "not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_the_key(replace: str, by: str, key: str, what: str) -> None:
    assert replace in SMALL
    text = SMALL.replace(replace, by, 1)
    if not key and not what:
        parse_mission(text, source="bad.toml")
        return
    with pytest.raises(ConfigError, match=rf"^bad\.toml: {key}.*{what}") as caught:
        parse_mission(text, source="bad.toml")
    assert "\n" not in str(caught.value) or "TOML" in str(caught.value)


def test_same_level_links_need_a_single_rate() -> None:
    text = SMALL + '\n[rates.relay-relay]\nup = 1\ndown = 2\n\n[[relay]]\nname = "R2"\nlongitude_deg = 0\n'
    text += '\n[[link]]\nbetween = ["R", "R2"]\n'
    with pytest.raises(ConfigError, match=r"link\[2\]\.between: a relay-relay link has no up or down"):
        parse_mission(text, source="bad.toml")
    fine = text.replace("up = 1\ndown = 2", "rate = 3")
    [*_, crosslink] = parse_mission(fine, source="ok.toml").links
    assert (crosslink.kind, crosslink.rate_ab_bytes_s, crosslink.rate_ba_bytes_s) == ("relay-relay", 3.0, 3.0)


def test_a_mission_without_nodes_or_file() -> None:
    with pytest.raises(ConfigError, match="needs nodes"):
        parse_mission('name = "empty"', source="empty.toml")
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        load_mission("missing.toml")


def test_rates_with_units() -> None:
    assert parse_rate("300 Mbit/s", "x") == 37.5e6
    assert parse_rate("72 kbps", "x") == 9000.0
    assert parse_rate("1.5 GB/s", "x") == 1.5e9
    assert parse_rate(1e3, "x") == 1000.0
    for bad in ("300 mbit/s", "fast", True, [1], "1e400 B/s"):
        with pytest.raises(ConfigError, match=r"^x"):
            parse_rate(bad, "x")
