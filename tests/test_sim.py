"""The mission simulator: hand-checked small plans, failures, end-to-end mode, scenarios."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from proxima.errors import ConfigError, LocalError
from proxima.routing import Contact, ContactPlan, Range
from proxima.runtime.scenario import load_scenario, parse_scenario, parse_size
from proxima.sim import EndToEnd, Message, Reply, Simulator, cut_plan, percentile, periodic_windows
from proxima.sim.engine import HEADER_BYTES

if TYPE_CHECKING:
    from pathlib import Path

T0 = 800_000_000_000  # DTN ms, May 2025
S = 1000
A, B, C, D = 1, 2, 3, 4


def _plan(contacts: list[Contact], owlt_ms: int = 0) -> ContactPlan:
    ranges = [Range(c.from_node, c.to_node, c.start_ms, c.end_ms, owlt_ms) for c in contacts]
    return ContactPlan(contacts, ranges)


def _c(a: int, b: int, start_s: float, end_s: float, rate: float = 1000.0) -> Contact:
    return Contact(a, b, T0 + round(start_s * S), T0 + round(end_s * S), rate)


# -- hand-checked ------------------------------------------------------------------------------


def test_a_bundle_waits_for_the_second_contact_and_arrives_when_computed() -> None:
    # A -> B from 10 s; B -> C twice: from 5 s to 8 s (before the bundle is there) and from 100 s.
    contacts = [_c(A, B, 10, 20), _c(B, C, 5, 8), _c(B, C, 100, 200)]
    ranges = [
        Range(A, B, T0, T0 + 300 * S, 1200),  # 1.2 s of light time A -> B
        Range(B, C, T0, T0 + 300 * S, 800),  # 0.8 s B -> C
    ]
    plan = ContactPlan(contacts, ranges)
    size = 2500 - HEADER_BYTES  # 2,500 bytes on the wire: 2.5 s at 1,000 B/s
    result = Simulator(plan, [Message(T0, A, C, size, "post")], start_ms=T0, end_ms=T0 + 300 * S).run()
    [j] = result.journeys
    # 10 s (contact start) + 2.5 s + 1.2 s at B; then 100 s (second contact) + 2.5 s + 0.8 s at C
    assert j.status == "delivered"
    assert j.latency_ms == 100_000 + 2_500 + 800
    first, second = j.hops
    assert (first.from_node, first.to_node, first.start_ms, first.end_ms, first.arrival_ms) == (
        A,
        B,
        T0 + 10_000,
        T0 + 12_500,
        T0 + 13_700,
    )
    assert plan.contacts[second.contact] == contacts[2]
    assert (second.start_ms, second.arrival_ms) == (T0 + 100_000, T0 + 103_300)
    doc = result.to_json()
    assert doc["delivery_ratio"] == 1.0
    assert doc["classes"]["post"]["latency_s"]["p50"] == 103.3
    assert doc["nodes"]["ipn:2.0"]["peak_bytes"] == 2500  # it waited at B
    [row_ab] = [r for r in doc["contacts"] if (r["from"], r["to"]) == ("ipn:1.0", "ipn:2.0")]
    assert row_ab["bytes"] == 2500 and row_ab["use_pct"] == 25.0  # 2,500 of 10,000 bytes
    assert [r["bytes"] for r in doc["contacts"]] == [0, 2500, 2500]  # B -> C at 5 s carried nothing
    assert doc["journeys"][0]["hops"][1]["arrival_s"] == 103.3


def test_transmissions_on_a_link_are_serialised() -> None:
    plan = _plan([_c(A, B, 0, 100)])
    msgs = [Message(T0, A, B, 1000 - HEADER_BYTES, "x"), Message(T0, A, B, 1000 - HEADER_BYTES, "x")]
    result = Simulator(plan, msgs, start_ms=T0, end_ms=T0 + 100 * S).run()
    assert sorted(j.latency_ms or 0 for j in result.journeys) == [1000, 2000]


def test_a_contact_ending_mid_transfer_reroutes_the_bundle() -> None:
    # The routers believe A -> B lasts 100 s; it really stops after 5 s, in the middle of a
    # 10 s transmission. The bundle goes back to A, waits for the planned contact to end, and is
    # routed again: through D (slower, but there).
    plan = _plan([_c(A, B, 0, 100), _c(B, C, 0, 1000), _c(A, D, 0, 1000, 500.0), _c(D, C, 0, 1000, 500.0)])
    links = _plan([_c(A, B, 0, 5), _c(B, C, 0, 1000), _c(A, D, 0, 1000, 500.0), _c(D, C, 0, 1000, 500.0)])
    msg = Message(T0, A, C, 10_000 - HEADER_BYTES, "photo")
    result = Simulator(plan, [msg], link_plan=links, start_ms=T0, end_ms=T0 + 1000 * S).run()
    [j] = result.journeys
    assert j.status == "delivered"
    cut, *rest = j.hops
    assert (cut.to_node, cut.ok, cut.end_ms) == (B, False, T0 + 5000)
    assert [h.to_node for h in rest] == [D, C]
    assert j.reroutes >= 1
    assert rest[0].start_ms == T0 + 100_000  # routed again when the planned contact ended
    assert j.latency_ms == 100_000 + 20_000 + 20_000
    assert result.use[0].cut == 1


def test_an_unplanned_outage_holds_the_bundle_until_the_link_is_back() -> None:
    plan = _plan([_c(A, B, 0, 100)])
    links = cut_plan(plan, A, [(T0 + 2000, T0 + 30_000)])
    msg = Message(T0 + 10_000, A, B, 1000 - HEADER_BYTES, "post")
    result = Simulator(plan, [msg], link_plan=links, start_ms=T0, end_ms=T0 + 100 * S).run()
    assert result.journeys[0].delivered_ms == T0 + 31_000


def test_a_bundle_too_large_for_the_contact_waits_whole_for_the_next() -> None:
    # 5,000 bytes of room from 0 to 5 s, a 10,000-byte bundle: the simulator does not split
    # bundles (they carry no real payload), so it waits for the contact at 100 s.
    plan = _plan([_c(A, B, 0, 5), _c(A, B, 100, 200)])
    result = Simulator(
        plan, [Message(T0, A, B, 10_000 - HEADER_BYTES, "photo")], start_ms=T0, end_ms=T0 + 300 * S
    ).run()
    [j] = result.journeys
    assert (j.status, j.latency_ms, len(j.hops)) == ("delivered", 110_000, 1)


def test_no_path_at_all_is_not_delivered_and_says_why() -> None:
    plan = _plan([_c(A, B, 0, 100)])
    result = Simulator(plan, [Message(T0, A, C, 100, "post")], start_ms=T0, end_ms=T0 + 100 * S).run()
    [j] = result.journeys
    assert (j.status, j.reason, j.delivered_ms, j.hops) == ("lost", "no known route", None, [])
    doc = result.to_json()
    assert doc["delivery_ratio"] == 0.0 and doc["lost"] == {"no known route": 1}
    assert doc["classes"]["post"]["latency_s"]["p50"] is None
    assert doc["journeys"][0]["drops"] == [{"at": "ipn:1.0", "t_s": 0.0, "reason": "no known route"}]


def test_a_message_still_on_its_way_at_the_end_is_pending_where_it_waits() -> None:
    plan = _plan([_c(A, B, 10, 20), _c(B, C, 500, 600)])
    result = Simulator(plan, [Message(T0, A, C, 100, "post")], start_ms=T0, end_ms=T0 + 100 * S).run()
    [j] = result.journeys
    assert (j.status, j.at_node) == ("pending", B)
    assert result.stores[B].bytes == 100 + HEADER_BYTES


def test_an_expired_message_is_lost() -> None:
    plan = _plan([_c(A, B, 0, 10), _c(B, C, 500, 600)])
    msg = Message(T0, A, C, 100, "post", lifetime_ms=200 * S)
    result = Simulator(plan, [msg], start_ms=T0, end_ms=T0 + 900 * S, tick_ms=60 * S).run()
    [j] = result.journeys
    # no route reaches C before the bundle expires: CGR does not take it at all
    assert j.status == "lost"
    assert j.reason in ("no known route", "lifetime expired")


# -- end-to-end ----------------------------------------------------------------------------------


def _gap_plan() -> ContactPlan:
    # A -> B from 0 to 100 s and again from 250 s; B -> C only from 200 s: no complete path
    # before 250 s, while store-and-forward moves the bundle to B at once.
    return _plan([_c(A, B, 0, 100), _c(A, B, 250, 300), _c(B, C, 200, 300)], owlt_ms=100)


def test_store_and_forward_uses_the_gap() -> None:
    msg = Message(T0, A, C, 1000 - HEADER_BYTES, "post")
    result = Simulator(_gap_plan(), [msg], start_ms=T0, end_ms=T0 + 400 * S).run()
    assert result.journeys[0].latency_ms == 200_000 + 1000 + 100


def test_end_to_end_delays_to_the_next_complete_path() -> None:
    msg = Message(T0, A, C, 1000 - HEADER_BYTES, "post")
    result = Simulator(
        _gap_plan(), [msg], start_ms=T0, end_ms=T0 + 400 * S, end_to_end=EndToEnd(retry_every_ms=0)
    ).run()
    [j] = result.journeys
    # tried at 0 s (no path), at 200 s (B -> C starts, A -> B is over), at 250 s: through
    assert j.attempts == 3 and [d[1] - T0 for d in j.drops] == [0, 200_000]
    assert j.latency_ms == 250_000 + 1000 + 100 + 1000 + 100
    assert result.to_json()["mode"] == "end-to-end"


def test_end_to_end_without_retry_loses_what_store_and_forward_delivers() -> None:
    msg = Message(T0, A, C, 1000 - HEADER_BYTES, "post")
    e2e = Simulator(
        _gap_plan(), [msg], start_ms=T0, end_ms=T0 + 400 * S, end_to_end=EndToEnd(retry_every_ms=None)
    ).run()
    assert (e2e.journeys[0].status, e2e.delivered) == ("lost", 0)


def test_end_to_end_checks_the_real_links_not_the_plan() -> None:
    # The routers believe A -> B is up from 0 to 100 s; it is really down from 10 to 40 s. A
    # message posted at 20 s cannot go (store-and-forward would queue it for B); the sender
    # tries again at the next contact start, 40 s, when the link is back.
    plan = _plan([_c(A, B, 0, 100), _c(B, C, 0, 100)])
    links = cut_plan(plan, A, [(T0 + 10_000, T0 + 40_000)])
    msg = Message(T0 + 20_000, A, C, 1000 - HEADER_BYTES, "post")
    e2e = Simulator(
        plan, [msg], link_plan=links, start_ms=T0, end_ms=T0 + 100 * S, end_to_end=EndToEnd(0)
    ).run()
    [j] = e2e.journeys
    assert j.attempts == 2 and [t - T0 for _, t, _ in j.drops] == [20_000]
    assert j.delivered_ms == T0 + 42_000
    snf = Simulator(plan, [msg], link_plan=links, start_ms=T0, end_ms=T0 + 100 * S).run()
    assert snf.journeys[0].attempts == 1 and snf.journeys[0].delivered_ms == T0 + 42_000


def test_end_to_end_retries_only_in_the_senders_hours() -> None:
    day = T0 - T0 % 86_400_000  # midnight UTC
    plan = _plan([_c(A, B, 0, 2 * 86_400), _c(B, C, 0, 2 * 86_400)])
    plan = cut_plan(plan, A, [(day + 20 * 3_600_000, day + 20 * 3_600_000 + 600_000)])  # 20:00-20:10
    msg = Message(day + 20 * 3_600_000 + 60_000, A, C, 100, "post", hours=(7 * 3_600_000, 20 * 3_600_000))
    result = Simulator(
        plan, [msg], start_ms=T0, end_ms=day + 86_400_000 * 2, end_to_end=EndToEnd(retry_every_ms=1_800_000)
    ).run()
    [j] = result.journeys
    assert j.status == "delivered"
    assert j.hops[0].start_ms == day + 86_400_000 + 7 * 3_600_000  # the next morning at 07:00


# -- replies, determinism, helpers ----------------------------------------------------------------


def test_a_question_gets_its_answer() -> None:
    plan = _plan([_c(A, B, 0, 1000), _c(B, A, 0, 1000)])
    reply = Reply(size=500, delay_ms=60_000, klass="answer", lifetime_ms=3_600_000)
    msg = Message(T0, B, A, 300, "question", reply=reply)
    result = Simulator(plan, [msg], start_ms=T0, end_ms=T0 + 1000 * S).run()
    question, answer = result.journeys
    assert answer.in_reply_to == question.index == 0
    assert (answer.source, answer.destination, answer.klass) == (A, B, "answer")
    assert answer.posted_ms == (question.delivered_ms or 0) + 60_000
    assert answer.status == "delivered"


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_periodic_windows_and_cuts() -> None:
    spans = periodic_windows(T0, T0 + 250, 100, [(10, 20), (80, 20)], phase_ms=30)
    assert [(a - T0, b - T0) for a, b in spans] == [
        (10, 30),
        (40, 60),
        (110, 130),
        (140, 160),
        (210, 230),
        (240, 250),
    ]
    spans = periodic_windows(T0, T0 + 250, 100, [(90, 10)], phase_ms=5)  # one across the start
    assert [(a - T0, b - T0) for a, b in spans] == [(0, 5), (95, 105), (195, 205)]
    plan = _plan([_c(A, B, 0, 1), _c(C, D, 0, 1)])
    cut = cut_plan(plan, A, [(T0 + 100, T0 + 200), (T0 + 900, T0 + 2000)])
    assert [(c.from_node, c.start_ms - T0, c.end_ms - T0) for c in cut.contacts] == [
        (A, 0, 100),
        (C, 0, 1000),
        (A, 200, 900),
    ]
    with pytest.raises(LocalError):
        periodic_windows(T0, T0 + 10, 100, [(90, 20)])


def test_a_simulator_runs_once() -> None:
    sim = Simulator(_plan([_c(A, B, 0, 1)]), [], start_ms=T0, end_ms=T0 + 1000)
    sim.run()
    with pytest.raises(LocalError):
        sim.run()


# -- scenarios -----------------------------------------------------------------------------------


def test_the_shipped_scenario_runs_a_day_in_a_few_seconds() -> None:
    began = time.perf_counter()
    scenario = load_scenario(days=1)
    snf = scenario.run()
    e2e = scenario.run(end_to_end=True)
    assert time.perf_counter() - began < 10
    assert scenario.name == "Proxima" and len(scenario.messages) > 10
    assert {"ISS", "TDRS East", "White Sands", "Cologne"} <= set(scenario.names.values())
    assert snf.delivered > 0 and snf.delivery_ratio >= e2e.delivery_ratio - 0.05
    doc = snf.to_json()
    assert {"post", "photo", "question", "answer"} <= set(doc["classes"])
    assert doc["nodes"]["ISS"]["peak_bytes"] > 1_000_000
    json.dumps(doc)
    assert e2e.to_json()["attempts"] >= doc["attempts"]


def test_the_same_seed_gives_the_same_json() -> None:
    one = json.dumps(load_scenario(days=1, seed=7).run().to_json())
    two = json.dumps(load_scenario(days=1, seed=7).run().to_json())
    other = json.dumps(load_scenario(days=1, seed=8).run().to_json())
    assert one == two
    assert one != other


SCENARIO = """
name = "small"
seed = 1
[network]
plan = "plan.rc"
format = "ion"
nodes = {{ Station = "ipn:1.0", Relay = "ipn:2.0", Ground = "ipn:3.0" }}
[time]
start = "2026-03-11T00:00:00Z"
days = 1
drain_hours = 1
{extra}
"""

ION = """
a contact +0 +86400 1 2 100000
a contact +0 +86400 2 1 100000
a contact +3600 +7200 2 3 100000
a contact +3600 +7200 3 2 100000
a range +0 +90000 1 2 1
a range +0 +90000 2 3 0
"""


def _scenario(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "plan.rc").write_text(ION)
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(extra=extra))
    return path


def test_a_scenario_over_an_ion_plan_with_generators_and_events(tmp_path: Path) -> None:
    extra = """
[[traffic]]
class = "post"
from = "Station"
to = "Ground"
per_day = 10
size = ["1 kB", "2 kB"]
hours = [0, 1]
[[event]]
class = "video"
from = "Station"
to = "Ground"
at_hours = 0.5
size = "20 MB"
"""
    scenario = load_scenario(_scenario(tmp_path, extra))
    assert scenario.end_to_end.retry_every_ms == 1_800_000  # the default
    assert load_scenario(_scenario(tmp_path, "[end_to_end]\nretry = false")).end_to_end.retry_every_ms is None
    assert [m.klass for m in scenario.messages].count("post") == 10
    assert all(1000 <= m.size <= 2000 for m in scenario.messages if m.klass == "post")
    result = scenario.run()
    assert result.delivered == 11
    # everything waits at the relay for the 01:00 contact; the video takes 200 s at 100 kB/s
    assert all((j.delivered_ms or 0) >= scenario.start_ms + 3_600_000 for j in result.journeys)
    assert result.name(2) == "Relay"
    assert json.loads(json.dumps(result.to_json()))["nodes"]["Relay"]["peak_bytes"] > 20_000_000


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[[traffic]]\nclass='x'\nfrom='Station'\nto='Nowhere'\nper_day=1\nsize=1", "traffic[0].to"),
        (
            "[[traffic]]\nclass='x'\nfrom='Station'\nto='Ground'\nper_day=1\nsize='3 parsecs'",
            "traffic[0].size",
        ),
        (
            "[[traffic]]\nclass='x'\nfrom='Station'\nto='Ground'\nper_day=1\nsize=1\ncolour=2",
            "traffic[0].colour",
        ),
        ("[[traffic]]\nclass='x'\nfrom='Station'\nto='Ground'\nsize=1", "traffic[0].per_day"),
        ("[[event]]\nclass='x'\nfrom='Station'\nto='Ground'\nsize=1", "event[0].at"),
        (
            "[links.blockage]\nnode='Station'\nperiod_min=10\nwindows_min=[[8, 5]]",
            "links.blockage.windows_min",
        ),
        ("[links.outages]\nnode='Station'\nper_day=1", "links.outages.duration_min"),
        ("[end_to_end]\nretry_every_min=-1", "end_to_end.retry_every_min"),
        ("[end_to_end]\nretry='no'", "end_to_end.retry"),
        ("[surprise]", "surprise"),
    ],
)
def test_scenario_errors_name_the_file_and_the_key(tmp_path: Path, extra: str, where: str) -> None:
    path = _scenario(tmp_path, extra)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: {where}"), str(info.value)


def test_a_scenario_over_an_hdtn_plan(tmp_path: Path) -> None:
    contacts = [
        {
            "contact": 0,
            "source": 1,
            "dest": 2,
            "startTime": 0,
            "endTime": 3600,
            "rateBitsPerSec": 8000,
            "owlt": 1,
        },
        {
            "contact": 1,
            "source": 2,
            "dest": 1,
            "startTime": 0,
            "endTime": 3600,
            "rateBitsPerSec": 8000,
            "owlt": 1,
        },
    ]
    (tmp_path / "plan.json").write_text(json.dumps({"contacts": contacts}))
    text = SCENARIO.format(
        extra='[[event]]\nclass="x"\nfrom="Station"\nto="Relay"\nat_hours=0.1\nsize="936 B"'
    )
    path = tmp_path / "s.toml"
    path.write_text(text.replace('plan = "plan.rc"', 'plan = "plan.json"').replace('"ion"', '"hdtn"'))
    result = load_scenario(path).run()
    [j] = result.journeys
    assert j.latency_ms == 1000 + 1000  # 1,000 bytes at 1,000 B/s, then 1 s of light time
    ud3tn = path.read_text().replace('"hdtn"', '"ud3tn"')
    path.write_text(ud3tn)
    with pytest.raises(ConfigError, match=r"network\.local is missing"):
        load_scenario(path)


def test_scenario_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the scenario"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_scenario("name = ", source="bad.toml")
    with pytest.raises(ConfigError, match="either mission or plan"):
        parse_scenario("[network]\n", source="empty.toml")
    path = _scenario(tmp_path, "")
    (tmp_path / "plan.rc").unlink()
    with pytest.raises(ConfigError, match=r"network\.plan: cannot read"):
        load_scenario(path)


def test_sizes() -> None:
    assert parse_size("200 MB", "k") == 200_000_000
    assert parse_size("1.5 kB", "k") == 1500
    assert parse_size("1 KiB", "k") == 1024
    assert parse_size(12, "k") == 12
    for bad in ("12 furlongs", True, -1, "MB"):
        with pytest.raises(ConfigError, match=r"^k"):
            parse_size(bad, "k")
