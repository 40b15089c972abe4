"""``proxima plan`` and ``proxima route``: write a mission's contact plan, and ask contact graph
routing which routes it picks for a bundle.

Two module-level :class:`click.Command` objects, registered lazily on the main group by
:mod:`proxima.cli`. Conventions as there: ``--help``, ``--json`` for machine output, exit 1 with one
``error: ...`` line on stderr for bad input (warnings, such as stale elements, go to stderr as
``warning: ...`` lines), 2 for a usage error. Times are UTC ISO 8601 (``2026-03-11T00:00:00Z``).

**plan.** The mission's link windows from ``--from`` (default: now, to the whole second) for
``--days`` become directed contacts with ranges (the window's largest light time), cut to whole
seconds (start up, end down; contacts under a second are left out) so every format carries the same
contacts. Formats:

* ``ion``: ``ionadmin`` ``a contact`` / ``a range`` commands. ``--times absolute`` (the default)
  writes UTC times (``2026/03/11-00:00:00``); ``--times relative`` writes ``+S`` seconds after the
  start, preceded by an ``@ START`` command that sets ION's reference time, so the file reads back
  alone.
* ``ud3tn``: µD3TN configuration messages for one node's view (its contacts to its neighbours):
  ``--node`` (a mission node name, node ID or number) is required.
* ``hdtn``: HDTN's ``contactPlan.json``; times are seconds after the start (HDTN counts from its own
  start), so reading it back needs that start as the epoch (``route --epoch``).
* ``json``: Proxima's JSON plan (:mod:`proxima.runtime.plans`): ISO times, node numbers, EIDs, names.

Node numbers are the mission's ``node_id`` ipn numbers.

**route.** Reads a plan file (``--plan``; format by extension, else by content) or computes the plan
of a mission (``--mission FILE``, or ``--mission shipped`` for the example; from ``--at`` for
``--days``), then runs CGR (:class:`~proxima.routing.ContactGraph`) from ``--from``'s node at ``--at``
for a bundle of ``--size`` bytes (and ``--lifetime``), searching for that bundle, and prints up to
``--routes`` routes, best first (earliest arrival, then fewest hops, then latest end): alternatives by
SABR's limiting-contact exclusion, as nodes route, or with ``--method yen`` the best loop-free
routes. Each route gives its next hop, its contacts in order with the projected arrival at each
hop, the arrival at the destination, its hops and its validity end (its first contact to end). Relative
times in an ION plan (without an ``@`` command) and HDTN's times count from ``--epoch``, by default
the ``--at`` time: ION's own rule (relative times count from when the plan is loaded).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from proxima.cli_support import guard
from proxima.errors import LocalError, OrbitInputError, ProximaError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from proxima.routing import CgrRoute, ContactGraph, ContactPlan, NodeMap

__all__ = ["plan", "route"]

_MAX_DAYS = 30.0
_PLAN_FORMATS = ("ion", "ud3tn", "hdtn", "json")
_DTN_EPOCH_UNIX_S = 946_684_800
_UD3TN_START = re.compile(r"[1-4]\(|4;")


def _time_ms(text: str, option: str) -> int:
    """DTN milliseconds of an ISO time given to ``option``."""
    from proxima.runtime.plans import iso_to_dtn_ms

    try:
        return iso_to_dtn_ms(text)
    except LocalError as exc:
        raise LocalError(f"{option}: {exc}") from None


def _iso(ms: int) -> str:
    from proxima.runtime.plans import dtn_ms_to_iso

    return dtn_ms_to_iso(ms)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise LocalError(f"{option}: unknown format {value!r} (one of {', '.join(choices)})")
    return value


def _rate(bytes_s: float) -> str:
    """A rate in bits per second with a decimal prefix: 37.5e6 B/s -> '300 Mbit/s'."""
    bits = bytes_s * 8.0
    for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bits >= factor:
            return f"{bits / factor:.4g} {unit}"
    return f"{bits:.4g} bit/s"


class _Nodes:
    """The nodes of a plan: numbers, node IDs and names, and how the options name them."""

    def __init__(self, nodes: NodeMap, names: Mapping[int, str], known: frozenset[int]) -> None:
        self.nodes = nodes
        self.names = dict(names)
        self.known = known

    def number(self, text: str, option: str) -> int:
        """The node ``text`` names (a name, a node number or an EID); it must be in the plan."""
        from proxima.bpv7.eid import EID

        by_name = {name: n for n, name in self.names.items()}
        found: int | None
        if text in by_name:
            found = by_name[text]
        elif text.isdigit() and len(text) < 20:
            found = int(text)
        else:
            try:
                found = self.nodes.number(EID.parse(text))
            except ProximaError:
                raise LocalError(
                    f"{option}: unknown node {text!r} (a node name, number or EID){self._list()}"
                ) from None
        if found is None or found not in self.known:
            raise LocalError(f"{option}: unknown node {text!r}: not in the plan{self._list()}")
        return found

    def _list(self) -> str:
        if not self.known:
            return " (the plan has no nodes)"
        items = [self.label(n) for n in sorted(self.known)]
        shown = ", ".join(items[:12]) + (", ..." if len(items) > 12 else "")
        return f" (nodes: {shown})"

    def label(self, n: int) -> str:
        """``ISS (ipn:10.0)``, or the EID alone for a node without a name."""
        eid = str(self.nodes.eid(n))
        return f"{self.names[n]} ({eid})" if n in self.names else eid

    def short(self, n: int) -> str:
        return self.names.get(n, str(self.nodes.eid(n)))

    def json(self, n: int) -> dict[str, Any]:
        return {"node": n, "eid": str(self.nodes.eid(n)), "name": self.names.get(n)}


def _with_hint(exc: OrbitInputError, start: str | None, option: str) -> OrbitInputError:
    """Add a hint to a propagation-limit error when the start time was the clock's."""
    text = str(exc).replace(" or a larger max_span_days", "")
    if start is None and "epoch" in text:
        text += f" (the start defaults to now: give {option} near the elements' epoch)"
    return OrbitInputError(text)


def _mission_plan(
    mission_file: str | None, t0_ms: int, days: float, start: str | None, option: str, whole_seconds: bool
) -> tuple[Any, ContactPlan, _Nodes]:
    """The mission, its plan over [t0, t0 + days] and its nodes (imports the orbit engine)."""
    from proxima.runtime.mission import load_mission
    from proxima.runtime.plans import node_numbers, plan_from_mission

    t0 = t0_ms / 1000 + _DTN_EPOCH_UNIX_S
    mission = load_mission(mission_file, now_unix=t0)
    try:
        plan_, nodes = plan_from_mission(mission, t0, t0 + days * 86_400, whole_seconds=whole_seconds)
    except OrbitInputError as exc:
        raise _with_hint(exc, start, option) from exc
    numbers, _ = node_numbers(mission)
    names = {n: name for name, n in numbers.items()}
    return mission, plan_, _Nodes(nodes, names, frozenset(numbers.values()) | plan_.nodes)


# --- plan --------------------------------------------------------------------------------------------


def _ion_relative(text: str, epoch_ms: int) -> str:
    """ION commands with ``@ START`` after the header comments (ION's reference time)."""
    from proxima.routing.formats import utc_from_dtn_ms

    y, mo, d, h, mi, s = utc_from_dtn_ms(epoch_ms)
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(at, f"@ {y:04d}/{mo:02d}/{d:02d}-{h:02d}:{mi:02d}:{s:02d}")
    return "\n".join(lines) + "\n"


@click.command("plan", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--mission",
    "mission_file",
    type=click.Path(),
    default=None,
    help="Mission description (TOML); default: the shipped Proxima example.",
)
@click.option(
    "--days",
    type=click.FloatRange(0, _MAX_DAYS, min_open=True),
    default=1.0,
    show_default=True,
    help="How many days of contacts.",
)
@click.option("--from", "start", default=None, help="Start time, ISO 8601 UTC (default: now).")
@click.option(
    "--format", "fmt", default="ion", show_default=True, help="Plan format: ion, ud3tn, hdtn or json."
)
@click.option(
    "--times",
    default="absolute",
    show_default=True,
    help="ION times: absolute (UTC) or relative (+seconds after an '@ START' command).",
)
@click.option(
    "--node", default=None, help="ud3tn: the node whose contacts to write (a name, number or node ID)."
)
@click.option("--out", "out_file", type=click.Path(), default=None, help="Write here (default: stdout).")
@guard
def plan(
    mission_file: str | None,
    days: float,
    start: str | None,
    fmt: str,
    times: str,
    node: str | None,
    out_file: str | None,
) -> None:
    """Write the mission's contact plan (contacts and ranges) in ION, µD3TN, HDTN or JSON form."""
    from proxima.routing import write_hdtn, write_ion, write_ud3tn
    from proxima.runtime.plans import plan_to_json

    _choice(fmt, _PLAN_FORMATS, "--format")
    _choice(times, ("absolute", "relative"), "--times")
    if fmt == "ud3tn" and node is None:
        raise LocalError("--format ud3tn writes one node's contacts: give --node NAME")
    if fmt != "ud3tn" and node is not None:
        raise LocalError(f"--node is for --format ud3tn (a {fmt} plan holds every node's contacts)")
    if start is None:
        t0_ms = (time.time_ns() // 1_000_000_000 - _DTN_EPOCH_UNIX_S) * 1000
    else:
        t0_ms = _time_ms(start, "--from") // 1000 * 1000
    t1_ms = t0_ms + round(days * 86_400_000)
    mission, plan_, nodes = _mission_plan(mission_file, t0_ms, days, start, "--from", whole_seconds=True)
    local = None if node is None else nodes.number(node, "--node")
    if fmt == "ion":
        text = (
            write_ion(plan_)
            if times == "absolute"
            else _ion_relative(write_ion(plan_, epoch_ms=t0_ms), t0_ms)
        )
        what = f"ion, {times} times"
    elif fmt == "ud3tn":
        if local is None:  # pragma: no cover - checked above
            raise LocalError("--node is required")
        text = write_ud3tn(plan_, local=local, nodes=nodes.nodes)
        what = f"ud3tn, the view of {nodes.label(local)}"
    elif fmt == "hdtn":
        text = write_hdtn(plan_, epoch_ms=t0_ms)
        what = f"hdtn, seconds after {_iso(t0_ms)}"
    else:
        extra = {"mission": mission.name, "source": mission.source, "from": _iso(t0_ms), "to": _iso(t1_ms)}
        text = plan_to_json(plan_, nodes=nodes.nodes, names=nodes.names, extra=extra)
        what = "json"
    if out_file is None:
        click.echo(text, nl=False)
        return
    Path(out_file).write_text(text, encoding="utf-8")
    count = len(plan_.contacts) if local is None else sum(1 for c in plan_.contacts if c.from_node == local)
    click.echo(f"wrote {count} contacts of {mission.name} ({what}) to {out_file}")


# --- route -------------------------------------------------------------------------------------------


def _detect(path: str, text: str) -> str:
    """A plan file's format, by extension, else by content."""
    suffix = Path(path).suffix.lower()
    if suffix in (".rc", ".ionrc", ".ion"):
        return "ion"
    if suffix == ".ud3tn":
        return "ud3tn"
    body = text.lstrip()
    if suffix == ".json" or body.startswith("{"):
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return "json" if '"proxima-contact-plan"' in text[:4096] else "hdtn"  # its reader says where
        from proxima.runtime.plans import JSON_PLAN_FORMAT

        return "json" if isinstance(doc, dict) and doc.get("format") == JSON_PLAN_FORMAT else "hdtn"
    first = next((line.strip() for line in text.splitlines() if line.strip() and line.strip()[0] != "#"), "")
    return "ud3tn" if _UD3TN_START.match(first) else "ion"


def _read_plan(path: str, fmt: str, epoch_ms: int, local: str) -> tuple[ContactPlan, _Nodes, str, list[str]]:
    """The plan in ``path``, its nodes, its format and the reader's notes."""
    from proxima.bpv7.eid import EID
    from proxima.routing import NodeMap, PlanError
    from proxima.routing.formats import read_plan
    from proxima.runtime.plans import plan_from_json

    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"not UTF-8 text (byte {exc.start})", source=path) from None
    if fmt == "auto":
        fmt = _detect(path, text)
    names: dict[int, str] = {}
    if fmt == "json":
        plan_, nodes, names = plan_from_json(text, source=path)
        notes: tuple[str, ...] = ()
    elif fmt in ("hdtn", "ion"):
        plan_, notes, _, _ = read_plan(text, fmt, epoch_ms=epoch_ms, source=path)
        nodes = NodeMap()
    else:
        here: int | EID
        if local.isdigit() and len(local) < 20:
            here = int(local)
        else:
            try:
                here = EID.parse(local)
            except ProximaError as exc:
                raise LocalError(f"--from: {exc}") from None
        read = read_plan(text, "ud3tn", local=here, source=path)
        plan_, notes = read.plan, read.notes
        nodes = read.nodes or NodeMap()
    known = plan_.nodes | {n for n, _ in nodes.items()}
    return plan_, _Nodes(nodes, names, frozenset(known)), fmt, list(notes)


def _hops(graph: ContactGraph, r: CgrRoute, at_ms: int, size: int, nodes: _Nodes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    t = at_ms
    for i in r.contacts:
        c = graph.contacts[i]
        arrival = graph.through(i, t, size)
        out.append(
            {
                "contact": i,
                "from": nodes.json(c.from_node),
                "to": nodes.json(c.to_node),
                "start": _iso(c.start_ms),
                "end": _iso(c.end_ms),
                "rate_bytes_s": c.rate_bytes_s,
                "confidence": c.confidence,
                "arrival": None if arrival is None else _iso(arrival),
            }
        )
        t = at_ms if arrival is None else arrival
    return out


@click.command("route", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plan", "plan_file", type=click.Path(), default=None, help="Contact plan file.")
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    help="Plan file format: auto (by extension, else content), ion, ud3tn, hdtn or json.",
)
@click.option(
    "--epoch",
    default=None,
    help="What relative ION times and HDTN times count from, ISO 8601 UTC (default: --at).",
)
@click.option(
    "--mission",
    "mission_file",
    type=click.Path(),
    default=None,
    help="Route on this mission's plan instead ('shipped' for the Proxima example).",
)
@click.option(
    "--days",
    type=click.FloatRange(0, _MAX_DAYS, min_open=True),
    default=1.0,
    show_default=True,
    help="With --mission: how many days of contacts from --at.",
)
@click.option("--from", "source", required=True, help="Sending node: EID (ipn:10.0), number or name.")
@click.option("--to", "dest", required=True, help="Destination node: EID, number or name.")
@click.option("--at", "at", required=True, help="When the bundle is ready, ISO 8601 UTC.")
@click.option("--size", type=click.IntRange(min=0), required=True, help="Bundle size in bytes.")
@click.option(
    "--lifetime",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Bundle lifetime in seconds: routes arriving after it expires are not used (default: none).",
)
@click.option(
    "--routes",
    "max_routes",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Routes to list.",
)
@click.option(
    "--method",
    default="exclusion",
    show_default=True,
    help="Alternative routes: exclusion (SABR's limiting-contact exclusion, as nodes route) or yen "
    "(the best loop-free routes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def route(
    plan_file: str | None,
    fmt: str,
    epoch: str | None,
    mission_file: str | None,
    days: float,
    source: str,
    dest: str,
    at: str,
    size: int,
    lifetime: float | None,
    max_routes: int,
    method: str,
    as_json: bool,
) -> None:
    """The routes contact graph routing picks for a bundle, best first."""
    from proxima.routing import NO_EXPIRY, ContactGraph

    if (plan_file is None) == (mission_file is None):
        raise LocalError("give one of --plan FILE or --mission FILE")
    _choice(fmt, ("auto", *_PLAN_FORMATS), "--format")
    if method not in ("exclusion", "yen"):
        raise LocalError(f"--method: unknown method {method!r} (exclusion or yen)")
    at_ms = _time_ms(at, "--at")
    epoch_ms = at_ms if epoch is None else _time_ms(epoch, "--epoch")
    notes: list[str] = []
    if plan_file is not None:
        plan_, nodes, used, notes = _read_plan(plan_file, fmt, epoch_ms, source)
        where: dict[str, Any] = {"file": plan_file, "format": used}
    else:
        chosen = None if mission_file == "shipped" else mission_file
        mission, plan_, nodes = _mission_plan(chosen, at_ms, days, at, "--at", whole_seconds=False)
        where = {"mission": mission.name, "source": mission.source, "from": _iso(at_ms), "days": days}
    src, dst = nodes.number(source, "--from"), nodes.number(dest, "--to")
    if src == dst:
        raise LocalError(f"--from and --to are the same node ({nodes.label(src)})")
    expiry = None if lifetime is None else at_ms + math.ceil(lifetime * 1000)
    graph = ContactGraph(plan_)
    found = graph.routes(
        src,
        dst,
        at_ms,
        size=size,
        expiry_ms=NO_EXPIRY if expiry is None else expiry,
        max_routes=max_routes,
        method=method,
    )
    docs: list[dict[str, Any]] = [
        {
            "rank": rank,
            "next_hop": nodes.json(r.next_node),
            "arrival": _iso(r.arrival_ms),
            "latency_s": (r.arrival_ms - at_ms) / 1000,
            "hops": r.hops,
            "departure": _iso(max(r.from_ms, at_ms)),
            "valid_until": _iso(r.to_ms),
            "confidence": r.confidence,
            "contacts": _hops(graph, r, at_ms, size, nodes),
        }
        for rank, r in enumerate(found, 1)
    ]
    if as_json:
        doc = {
            "from": nodes.json(src),
            "to": nodes.json(dst),
            "at": _iso(at_ms),
            "size_bytes": size,
            "expiry": None if expiry is None else _iso(expiry),
            "method": method,
            "plan": {**where, "contacts": len(plan_.contacts), "ranges": len(plan_.ranges), "notes": notes},
            "routes": docs,
        }
        click.echo(json.dumps(doc))
        return
    count = f"{len(docs)} route{'' if len(docs) == 1 else 's'}"
    click.echo(
        f"CGR from {nodes.label(src)} to {nodes.label(dst)} at {_iso(at_ms)}, {size} bytes"
        f"{'' if expiry is None else f', expiring {_iso(expiry)}'}: {count}"
    )
    for d, r in zip(docs, found, strict=True):
        click.echo(
            f"{d['rank']}. next hop {nodes.label(r.next_node)}: arrives {d['arrival']} "
            f"({d['latency_s']:g} s), {r.hops} hop{'' if r.hops == 1 else 's'}, valid until "
            f"{d['valid_until']}, confidence {r.confidence:g}"
        )
        for i, hop in zip(r.contacts, d["contacts"], strict=True):
            c = graph.contacts[i]
            pair = f"{nodes.short(c.from_node)} -> {nodes.short(c.to_node)}"
            click.echo(
                f"     {pair:<28} {hop['start']} to {hop['end']}  {_rate(c.rate_bytes_s):>12}  "
                f"arrives {hop['arrival']}"
            )
    if not docs:
        click.echo("  no route: no chain of contacts can deliver the bundle in time")
