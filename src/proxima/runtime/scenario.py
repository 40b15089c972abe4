"""Simulation scenarios in TOML: the network, the time span, link models and traffic.

This is where files are read and the seed is used: :func:`load_scenario` turns a scenario file
into plain values for the pure simulator (:mod:`proxima.sim`): two contact plans (what the
routers know, what the links do), node names and a list of messages, expanded from the traffic
generators by ``random.Random`` seeded from the scenario's seed (one generator per entry, so
adding a traffic line does not move the others). The same file and seed give the same run.
The shipped example, ``proxima:data/scenarios/proxima.toml``::

    name = "Proxima"
    seed = 2017

    [network]
    mission = "proxima"            # the shipped mission; or a mission file, relative to this file
    # or a plan file: plan = "contacts.rc", format = "ion" | "ud3tn" | "hdtn",
    # local = "ipn:1.0" (µD3TN: the node the plan is for), and names for its nodes:
    # nodes = { ISS = "ipn:10.0", Cologne = "ipn:40.0" }

    [time]
    start = "elements"             # the first spacecraft's element epoch, or ISO 8601 UTC
    days = 7
    drain_hours = 12               # the run goes on this long after the last post

    [links.blockage]               # a deterministic outage schedule, known to the routers
    node = "ISS"
    period_min = 92.9              # every orbit...
    windows_min = [[10, 8], [55, 6]]   # ...[offset, duration] in minutes
    phase_min = 0

    [links.outages]                # random outages drawn from the seed
    node = "ISS"
    per_day = 4                    # a Poisson process
    duration_min = [2, 15]         # uniform
    planned = false                # false: the routers do not know of them

    [end_to_end]                   # the "before 2016" run (--end-to-end)
    retry_every_min = 30           # the default; 0: at the next contact start anywhere
    retry = true                   # false: a message that cannot go at once is lost

    [[traffic]]                    # a generator
    class = "post"
    from = "ISS"
    to = "Cologne"
    per_day = 6                    # may be fractional
    size = ["300 B", "2 kB"]       # a range (uniform) or one size
    hours = [7, 21]                # UTC activity window of the sender
    lifetime_hours = 72
    priority = "expedited"         # or "bulk"; default: by size, as the agent does
    [traffic.reply]                # the receiver answers each one
    class = "answer"
    size = ["300 B", "1.5 kB"]
    delay_min = [10, 240]

    [[event]]                      # one message
    class = "video"
    from = "ISS"
    to = "Cologne"
    at = "2026-03-13T15:00:00Z"    # or at_hours = 52 (after the start)
    size = "200 MB"

Sizes are bytes as numbers, or text with a unit: ``B``, ``kB``/``KB``, ``MB``, ``GB`` (powers of
1000) or ``KiB``, ``MiB``, ``GiB``. Every error is a :class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import math
import random
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxima.agent.agent import CLASS_BULK, CLASS_EXPEDITED
from proxima.bpv7.eid import EID
from proxima.errors import ConfigError, InvalidEndpointID, ProximaError
from proxima.orbit.links import contacts as window_contacts
from proxima.orbit.timescale import iso_to_unix
from proxima.routing.contacts import ContactPlan, NodeMap, unix_s_to_dtn_ms
from proxima.routing.formats import read_plan
from proxima.runtime.mission import _Table, load_mission, mission_windows
from proxima.sim import EndToEnd, Message, Reply, Simulator, cut_plan, periodic_windows
from proxima.sim.outages import merge_spans

if TYPE_CHECKING:
    from proxima.sim.report import SimResult

__all__ = ["EXAMPLE_SCENARIO_RESOURCE", "Scenario", "load_scenario", "parse_scenario", "parse_size"]

EXAMPLE_SCENARIO_RESOURCE = ("data", "scenarios", "proxima.toml")
"""The shipped Proxima scenario inside the ``proxima`` package."""
_MIN = 60_000
_HOUR = 3_600_000
_DAY = 86_400_000
_SIZE_UNITS = {
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_SIZE_TEXT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]+)\s*$")
_PRIORITIES = {"expedited": CLASS_EXPEDITED, "bulk": CLASS_BULK}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded scenario: plans, nodes, messages and what the models assumed.

    ``plan`` is what the routers know (geometry less the planned blockage), ``link_plan`` what
    the links do (``plan`` less unplanned outages). ``end_ms`` ends the traffic; the run goes on
    to ``run_end_ms``.
    """

    name: str
    source: str
    seed: int
    start_ms: int
    end_ms: int
    run_end_ms: int
    plan: ContactPlan
    link_plan: ContactPlan
    nodes: NodeMap
    names: dict[int, str]
    messages: tuple[Message, ...]
    end_to_end: EndToEnd
    description: str = ""
    notes: tuple[str, ...] = field(default=())

    def simulator(self, *, end_to_end: bool = False) -> Simulator:
        """A simulator for this scenario, store-and-forward or end-to-end."""
        return Simulator(
            self.plan,
            self.messages,
            start_ms=self.start_ms,
            end_ms=self.run_end_ms,
            link_plan=self.link_plan,
            nodes=self.nodes,
            names=self.names,
            end_to_end=self.end_to_end if end_to_end else None,
        )

    def run(self, *, end_to_end: bool = False) -> SimResult:
        """Run it once."""
        return self.simulator(end_to_end=end_to_end).run()


def parse_size(value: Any, where: str) -> int:
    """Bytes from a number or text with a unit ("200 MB", "1.5 kB", "512 KiB")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where} must be bytes or text such as '3 MB', not {value!r}")
    if isinstance(value, str):
        match = _SIZE_TEXT.match(value)
        if match is None or match.group(2) not in _SIZE_UNITS:
            raise ConfigError(
                f"{where}: cannot read the size {value!r} (a number and one of {', '.join(_SIZE_UNITS)})"
            )
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        size = float(value)
    if not (math.isfinite(size) and 0 <= size < 1 << 50):
        raise ConfigError(f"{where} must be a size from 0 bytes to 1 PB, not {value!r}")
    return round(size)


def _pair(t: _Table, key: str, what: str, *, low: float = 0.0, high: float = math.inf) -> tuple[float, float]:
    """A [low, high] pair of numbers (one number means both)."""
    value = t.table[key]
    items = value if isinstance(value, list) else [value, value]
    if len(items) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
        raise t.fail(key, f"must be {what} or a pair [low, high], not {value!r}")
    a, b = float(items[0]), float(items[1])
    if not (low <= a <= b <= high):
        raise t.fail(key, f"must be within [{low:g}, {high:g}] with low <= high, not {value!r}")
    return a, b


def _sizes(t: _Table, key: str) -> tuple[int, int]:
    if not t.has(key):
        raise ConfigError(f"{t.where(key)} is missing")
    value = t.table[key]
    items = value if isinstance(value, list) else [value, value]
    if len(items) != 2:
        raise t.fail(key, f"must be a size or a pair [low, high], not {value!r}")
    a, b = parse_size(items[0], t.where(key)), parse_size(items[1], t.where(key))
    if a > b:
        raise t.fail(key, f"the low size is above the high one: {value!r}")
    return a, b


def _hours(t: _Table, key: str) -> tuple[int, int] | None:
    if not t.has(key):
        return None
    a, b = _pair(t, key, "hours", low=0.0, high=24.0)
    if a == b:
        raise t.fail(key, "an activity window needs two different hours")
    return round(a * _HOUR), round(b * _HOUR)


def _priority(t: _Table) -> int | None:
    if not t.has("priority"):
        return None
    text = t.text("priority")
    if text not in _PRIORITIES:
        raise t.fail("priority", f"must be one of {', '.join(_PRIORITIES)}, not {text!r}")
    return _PRIORITIES[text]


def _time(t: _Table, key: str) -> int:
    """An ISO 8601 UTC time as DTN ms."""
    text = t.text(key)
    try:
        return unix_s_to_dtn_ms(iso_to_unix(text))
    except (ProximaError, ValueError) as exc:
        raise t.fail(key, f"not an ISO 8601 UTC time: {text!r}") from exc


class _Network:
    """The nodes (names and numbers) and the geometric plan."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.by_name: dict[str, int] = {}
        self.nodes = NodeMap()
        self.plan = ContactPlan()
        self.notes: list[str] = []

    def add(self, name: str, eid: EID | None) -> int:
        if eid is None:
            eid = EID.parse(f"dtn://{_slug(name)}/")
        number = self.nodes.number(eid)
        if number is None:
            number = self.nodes.assign(eid)
        else:
            self.nodes.add(number, eid)
        self.names[number] = name
        self.by_name[name] = number
        return number

    def number(self, t: _Table, key: str) -> int:
        name = t.text(key)
        if name in self.by_name:
            return self.by_name[name]
        try:
            eid = EID.parse(name)
        except InvalidEndpointID:
            eid = None
        number = None if eid is None else self.nodes.number(eid)
        if number is None or number not in self.names:
            raise t.fail(key, f"no node {name!r} (known: {', '.join(self.by_name)})")
        return number


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower() or "node"


def _mission_network(net: _Network, t: _Table, base: Path | None, start: str | None, days: float) -> int:
    """Nodes and plan from a mission file; returns the start (DTN ms)."""
    ref = t.text("mission")
    path = None if ref == "proxima" else (base or Path()) / ref
    mission = load_mission(path, max_age_days=None)
    for node in mission.nodes:
        net.add(node.name, node.node_id)
    if start is None:
        raise ConfigError(f"{t.source}: time.start is missing")
    if start == "elements":
        if not mission.elements:
            raise ConfigError(f"{t.source}: time.start: the mission has no element sets; give an ISO time")
        t0 = mission.elements[0].epoch_unix
    else:
        t0 = iso_to_unix(start)
    windows = mission_windows(mission, t0, t0 + days * 86_400.0)
    rows = [
        (c.from_node, c.to_node, c.start_unix, c.end_unix, c.rate_bytes_s, c.owlt_s)
        for c in window_contacts(windows)
    ]
    net.plan = ContactPlan.from_rows(rows, nodes=net.by_name)
    net.notes.append(f"plan: {len(net.plan)} contacts from {mission.source} ({len(windows)} link windows)")
    return unix_s_to_dtn_ms(t0)


def _plan_network(net: _Network, t: _Table, base: Path | None, start_ms: int) -> None:
    """Nodes and plan from a plan file in ION, µD3TN or HDTN format."""
    ref = t.text("plan")
    fmt = t.text("format", "ion")
    if fmt not in ("ion", "ud3tn", "hdtn"):
        raise t.fail("format", f"must be ion, ud3tn or hdtn, not {fmt!r}")
    path = (base or Path()) / ref
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise t.fail("plan", f"cannot read {path}: {exc.strerror or exc}") from exc
    names = t.sub("nodes")
    for name, value in names.table.items():
        if not isinstance(value, str):
            raise names.fail(name, f"must be a node ID such as 'ipn:10.0', not {value!r}")
        try:
            eid = EID.parse(value)
        except InvalidEndpointID as exc:
            raise names.fail(name, str(exc)) from exc
        net.add(name, eid.node_id)
    local_eid = None
    if fmt == "ud3tn":
        try:
            local_eid = EID.parse(t.text("local"))
        except InvalidEndpointID as exc:
            raise t.fail("local", str(exc)) from exc
    pf = read_plan(text, fmt, epoch_ms=start_ms, local=local_eid, nodes=net.nodes, source=str(path))
    if pf.nodes is not None:  # µD3TN names its dtn nodes
        for number, eid in pf.nodes.items():
            if number not in net.names:
                net.names[number] = str(eid)
                net.nodes.add(number, eid)
    net.plan = pf.plan
    for number in sorted(pf.plan.nodes):
        if number not in net.names:
            net.names[number] = str(net.nodes.eid(number))
            net.by_name.setdefault(net.names[number], number)
    net.notes.append(f"plan: {len(pf.plan)} contacts from {path} ({fmt})")


def _blockage(t: _Table, net: _Network, start_ms: int, end_ms: int) -> tuple[int, list[tuple[int, int]]]:
    t.unknown({"node", "period_min", "windows_min", "phase_min"})
    node = net.number(t, "node")
    period = round(t.number("period_min", low=1.0, high=10_000.0) * _MIN)
    raw = t.table.get("windows_min")
    if not isinstance(raw, list) or not raw:
        raise t.fail("windows_min", "must be a list of [offset_min, duration_min] pairs")
    windows = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 2
        if not ok or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in item):
            raise t.fail("windows_min", f"each window is [offset_min, duration_min], not {item!r}")
        offset, duration = round(item[0] * _MIN), round(item[1] * _MIN)
        if offset < 0 or duration <= 0 or offset + duration > period:
            raise t.fail("windows_min", f"the window {item!r} does not fit in the period")
        windows.append((offset, duration))
    phase = round(t.number("phase_min", 0.0, low=0.0, high=10_000.0) * _MIN)
    return node, periodic_windows(start_ms, end_ms, period, windows, phase_ms=phase)


def _outages(
    t: _Table, net: _Network, start_ms: int, end_ms: int, rng: random.Random
) -> tuple[int, list[tuple[int, int]], bool]:
    t.unknown({"node", "per_day", "duration_min", "planned"})
    node = net.number(t, "node")
    per_day = t.number("per_day", low=0.0, high=10_000.0)
    if not t.has("duration_min"):
        raise ConfigError(f"{t.where('duration_min')} is missing")
    low, high = _pair(t, "duration_min", "minutes", low=0.0, high=1440.0)
    planned = t.table.get("planned", False)
    if not isinstance(planned, bool):
        raise t.fail("planned", f"must be true or false, not {planned!r}")
    spans: list[tuple[int, int]] = []
    if per_day > 0:
        time = float(start_ms)
        while True:
            time += rng.expovariate(per_day / _DAY)
            if time >= end_ms:
                break
            duration = rng.uniform(low, high) * _MIN
            spans.append((round(time), round(time + duration)))
    return node, merge_spans(spans), planned


def _reply(t: _Table, rng: random.Random, lifetime_ms: int) -> Reply:
    t.unknown({"class", "size", "delay_min", "lifetime_hours", "priority", "hours"})
    klass = t.text("class")
    size_low, size_high = _sizes(t, "size")
    if not t.has("delay_min"):
        raise ConfigError(f"{t.where('delay_min')} is missing")
    d_low, d_high = _pair(t, "delay_min", "minutes", low=0.0, high=100_000.0)
    life = round(t.number("lifetime_hours", lifetime_ms / _HOUR, low=0.001, high=1e6) * _HOUR)
    return Reply(
        rng.randint(size_low, size_high),
        round(rng.uniform(d_low, d_high) * _MIN),
        klass,
        life,
        _priority(t),
        _hours(t, "hours"),
    )


def _traffic(t: _Table, net: _Network, start_ms: int, end_ms: int, rng: random.Random) -> list[Message]:
    t.unknown({"class", "from", "to", "per_day", "size", "hours", "lifetime_hours", "priority", "reply"})
    klass = t.text("class")
    src, dst = net.number(t, "from"), net.number(t, "to")
    if src == dst:
        raise t.fail("to", "a message needs another node than its sender")
    per_day = t.number("per_day", low=0.0, high=1e6)
    size_low, size_high = _sizes(t, "size")
    hours = _hours(t, "hours")
    lifetime = round(t.number("lifetime_hours", 168.0, low=0.001, high=1e6) * _HOUR)
    priority = _priority(t)
    reply_table = t.sub("reply") if t.has("reply") else None
    out: list[Message] = []
    day = start_ms - start_ms % _DAY
    while day < end_ms:
        a, b = (0, _DAY) if hours is None else hours
        spans = [(day + a, day + b)] if a < b else [(day, day + b), (day + a, day + _DAY)]
        for s0, s1 in spans:
            lo, hi = max(s0, start_ms), min(s1, end_ms)
            if hi <= lo:
                continue
            active = sum(y - x for x, y in spans)
            expected = per_day * (hi - lo) / active
            count = math.floor(expected) + (1 if rng.random() < expected - math.floor(expected) else 0)
            times = sorted(rng.randrange(lo, hi) for _ in range(count))
            for at in times:
                size = rng.randint(size_low, size_high)
                reply = None if reply_table is None else _reply(reply_table, rng, lifetime)
                out.append(Message(at, src, dst, size, klass, lifetime, priority, hours, reply))
        day += _DAY
    return out


def _event(t: _Table, net: _Network, start_ms: int, end_ms: int, rng: random.Random) -> Message | None:
    """One message; None when it falls after the end (a run shortened with ``days``)."""
    t.unknown(
        {"class", "from", "to", "at", "at_hours", "size", "hours", "lifetime_hours", "priority", "reply"}
    )
    klass = t.text("class")
    src, dst = net.number(t, "from"), net.number(t, "to")
    if src == dst:
        raise t.fail("to", "a message needs another node than its sender")
    if t.has("at") == t.has("at_hours"):
        raise ConfigError(f"{t.where('at')}: give either at (ISO 8601 UTC) or at_hours (after the start)")
    if t.has("at"):
        at = _time(t, "at")
    else:
        at = start_ms + round(t.number("at_hours", low=0.0, high=1e6) * _HOUR)
    if at < start_ms:
        raise t.fail("at", "is before the scenario's start")
    if at >= end_ms:
        return None
    size = parse_size(t.table.get("size"), t.where("size")) if t.has("size") else None
    if size is None:
        raise ConfigError(f"{t.where('size')} is missing")
    lifetime = round(t.number("lifetime_hours", 168.0, low=0.001, high=1e6) * _HOUR)
    reply = _reply(t.sub("reply"), rng, lifetime) if t.has("reply") else None
    return Message(at, src, dst, size, klass, lifetime, _priority(t), _hours(t, "hours"), reply)


def parse_scenario(
    text: str,
    *,
    source: str = "<scenario>",
    base: Path | None = None,
    days: float | None = None,
    seed: int | None = None,
) -> Scenario:
    """Parse a scenario; files it names are relative to ``base``. ``days`` and ``seed``
    override the file's."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    top = _Table(source, doc)
    top.unknown({"name", "description", "seed", "network", "time", "links", "end_to_end", "traffic", "event"})
    if seed is None:
        seed = round(top.number("seed", 0, low=0, high=2**63))
    span = top.sub("time")
    span.unknown({"start", "days", "drain_hours"})
    if days is None:
        days = span.number("days", 7.0, low=0.001, high=366.0)
    elif not (0 < days <= 366):
        raise ConfigError(f"{source}: days must be within (0, 366], not {days!r}")
    drain_ms = round(span.number("drain_hours", 12.0, low=0.0, high=24.0 * 366) * _HOUR)
    net_table = top.sub("network")
    net_table.unknown({"mission", "plan", "format", "local", "nodes"})
    net = _Network()
    start_text = span.text("start") if span.has("start") else None
    total_days = days + drain_ms / _DAY
    try:
        if net_table.has("mission") == net_table.has("plan"):
            raise ConfigError(f"{source}: network: give either mission or plan")
        if net_table.has("mission"):
            start_ms = _mission_network(net, net_table, base, start_text, total_days)
        else:
            if start_text is None or start_text == "elements":
                raise ConfigError(f"{span.where('start')}: a plan file needs an ISO 8601 start time")
            start_ms = _time(span, "start")
            _plan_network(net, net_table, base, start_ms)
    except ConfigError:
        raise
    except ProximaError as exc:
        raise ConfigError(f"{source}: network: {exc}") from exc
    end_ms = start_ms + round(days * _DAY)
    run_end_ms = end_ms + drain_ms
    notes = list(net.notes)
    links = top.sub("links")
    links.unknown({"blockage", "outages"})
    plan = net.plan
    link_plan = plan
    if links.has("blockage"):
        node, spans = _blockage(links.sub("blockage"), net, start_ms, run_end_ms)
        plan = link_plan = cut_plan(plan, node, spans)
        blocked = sum(b - a for a, b in spans)
        notes.append(
            f"blockage: {net.names[node]}'s links cut {len(spans)} times, "
            f"{100.0 * blocked / (run_end_ms - start_ms):.1f} % of the time (planned)"
        )
    if links.has("outages"):
        rng = random.Random(f"{seed}:outages")
        node, spans, planned = _outages(links.sub("outages"), net, start_ms, run_end_ms, rng)
        link_plan = cut_plan(plan, node, spans)
        if planned:
            plan = link_plan
        minutes = sum(b - a for a, b in spans) / _MIN
        notes.append(
            f"outages: {len(spans)} on {net.names[node]}'s links, {minutes:.0f} min in all "
            f"({'planned' if planned else 'unplanned: the routers do not know'})"
        )
    e2e = top.sub("end_to_end")
    e2e.unknown({"retry", "retry_every_min"})
    retry = e2e.number("retry_every_min", 30.0, low=0.0, high=1e6)
    retrying = e2e.table.get("retry", True)
    if not isinstance(retrying, bool):
        raise e2e.fail("retry", f"must be true or false, not {retrying!r}")
    end_to_end = EndToEnd(round(retry * _MIN) if retrying else None)
    messages: list[Message] = []
    for i, t in enumerate(top.tables("traffic")):
        messages += _traffic(t, net, start_ms, end_ms, random.Random(f"{seed}:traffic:{i}"))
    for i, t in enumerate(top.tables("event")):
        event = _event(t, net, start_ms, end_ms, random.Random(f"{seed}:event:{i}"))
        if event is None:
            notes.append(f"event[{i}] comes after the end of the run: left out")
        else:
            messages.append(event)
    messages.sort(key=lambda m: (m.at_ms, m.source, m.destination, m.klass))
    return Scenario(
        name=top.text("name", "scenario"),
        source=source,
        seed=seed,
        start_ms=start_ms,
        end_ms=end_ms,
        run_end_ms=run_end_ms,
        plan=plan,
        link_plan=link_plan,
        nodes=net.nodes,
        names=net.names,
        messages=tuple(messages),
        end_to_end=end_to_end,
        description=top.text("description", ""),
        notes=tuple(notes),
    )


def load_scenario(
    path: str | Path | None = None, *, days: float | None = None, seed: int | None = None
) -> Scenario:
    """Read a scenario file (None or ``"proxima"``: the shipped Proxima scenario)."""
    if path is None or str(path) == "proxima":
        resource = resources.files("proxima").joinpath(*EXAMPLE_SCENARIO_RESOURCE)
        text = resource.read_text(encoding="utf-8")
        return parse_scenario(
            text, source="proxima:" + "/".join(EXAMPLE_SCENARIO_RESOURCE), days=days, seed=seed
        )
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the scenario: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text") from exc
    return parse_scenario(text, source=str(p), base=p.parent, days=days, seed=seed)
