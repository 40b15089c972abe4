"""``proxima simulate``: run a mission scenario on a virtual clock and report what the network did.

A module-level :class:`click.Command` registered on the main group by :mod:`proxima.cli`.
Conventions as there: ``--help``, ``--json`` for machine output, exit 1 with one ``error: ...``
line on stderr for bad input. A progress bar shows on stderr when it is a terminal.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from typing import TYPE_CHECKING, Any

import click

from proxima.cli_support import fail
from proxima.errors import ProximaError

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxima.runtime.scenario import Scenario
    from proxima.sim.report import SimResult

__all__ = ["simulate"]


def _duration(seconds: float | None) -> str:
    """Seconds as short readable text: 0.32 s, 4.5 min, 2.1 h, 1.3 d."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _signed(seconds: float | None) -> str:
    """A difference in seconds with its sign."""
    if seconds is None:
        return "-"
    return ("-" if seconds < 0 else "+") + _duration(abs(seconds))


def _bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _run(scenario: Scenario, end_to_end: bool, label: str) -> SimResult:
    """Run once, with a progress bar on a terminal."""
    sim = scenario.simulator(end_to_end=end_to_end)
    if not sys.stderr.isatty():
        return sim.run()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    total = scenario.run_end_ms - scenario.start_ms
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        callback: Callable[[int], None] = lambda done: bar.update(task, completed=done)  # noqa: E731
        return sim.run(callback)


def _tables(result: SimResult, scenario: Scenario, journeys: int) -> str:
    """The report as rich tables rendered to plain text."""
    from rich.console import Console
    from rich.table import Table

    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
    buf = io.StringIO()
    console = Console(file=buf, width=max(80, width), color_system=None, highlight=False)
    doc = result.to_json(journeys=False)
    console.print(
        f"{scenario.name} ({scenario.source}), seed {scenario.seed}, {result.mode}: "
        f"{doc['duration_s'] / 86400:.2f} days, {doc['messages']} messages, "
        f"{doc['delivered']} delivered ({100 * doc['delivery_ratio']:.1f} %), "
        f"{sum(doc['lost'].values())} lost, {doc['pending']} still on their way"
    )
    for note in (*scenario.notes, *doc["notes"]):
        console.print(f"  {note}")
    classes = Table(title="Traffic classes (latency from posting to delivery)", title_justify="left")
    for name in ("class", "messages", "delivered", "lost", "pending", "sent", "p50", "p90", "p99", "max"):
        classes.add_column(name, justify="left" if name == "class" else "right")
    for name, c in doc["classes"].items():
        lat = c["latency_s"]
        classes.add_row(
            name,
            str(c["messages"]),
            f"{c['delivered']} ({100 * c['delivery_ratio']:.0f} %)",
            str(c["lost"]),
            str(c["pending"]),
            str(c["attempts"]),
            *(_duration(lat[k]) for k in ("p50", "p90", "p99", "max")),
        )
    console.print(classes)
    nodes = Table(title="Storage per node", title_justify="left")
    for name in ("node", "peak", "peak bundles", "at end"):
        nodes.add_column(name, justify="left" if name == "node" else "right")
    for name, n in doc["nodes"].items():
        nodes.add_row(name, _bytes(n["peak_bytes"]), str(n["peak_bundles"]), _bytes(n["bytes_at_end"]))
    console.print(nodes)
    links: dict[tuple[str, str], list[float]] = {}
    for row in doc["contacts"]:
        if not (row["bundles"] or row["cut"]):
            continue
        total = links.setdefault((row["from"], row["to"]), [0.0, 0.0, 0.0, 0.0])
        total[0] += 1
        total[1] += row["bytes"]
        total[2] += row["bundles"]
        total[3] += row["cut"]
    contacts = Table(title="Traffic per link (contacts that carried bundles)", title_justify="left")
    for name in ("from", "to", "contacts", "bytes", "bundles", "cut", "busiest contact"):
        contacts.add_column(name, justify="left" if name in ("from", "to") else "right")
    for (a, b), (count, nbytes, bundles, cut) in sorted(links.items(), key=lambda kv: -kv[1][1]):
        busiest = max(
            (r["use_pct"] or 0.0 for r in doc["contacts"] if (r["from"], r["to"]) == (a, b)), default=0.0
        )
        contacts.add_row(
            a, b, str(int(count)), _bytes(nbytes), str(int(bundles)), str(int(cut)), f"{busiest:.3f} %"
        )
    console.print(contacts)
    if journeys:
        chosen = sorted(
            result.journeys,
            key=lambda j: (j.status == "delivered", -(j.latency_ms or 0), j.index),
        )[:journeys]
        table = Table(title=f"Journeys (the {len(chosen)} slowest or undelivered)", title_justify="left")
        for name in ("#", "class", "size", "posted", "status", "latency", "path"):
            table.add_column(name, justify="right" if name in ("#", "size", "posted", "latency") else "left")
        for j in chosen:
            hops = [h for h in j.hops if h.ok and h.attempt == j.attempts]
            path = " > ".join([result.name(j.source)] + [result.name(h.to_node) for h in hops])
            status = j.status if not j.reason else f"{j.status}: {j.reason}"
            if j.attempts > 1:
                status += f" ({j.attempts} tries)"
            table.add_row(
                str(j.index),
                j.klass,
                _bytes(j.size),
                _duration((j.posted_ms - result.start_ms) / 1000.0),
                status,
                _duration(None if j.latency_ms is None else j.latency_ms / 1000.0),
                path,
            )
        console.print(table)
    return buf.getvalue().rstrip("\n")


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What end-to-end (``b``) lost or delayed against store-and-forward (``a``), per class."""
    out: dict[str, Any] = {}
    for name, ca in a["classes"].items():
        cb = b["classes"].get(name)
        if cb is None:
            continue
        row: dict[str, Any] = {"delivered": cb["delivered"] - ca["delivered"]}
        for k in ("p50", "p90", "p99", "max", "mean"):
            la, lb = ca["latency_s"][k], cb["latency_s"][k]
            row[f"{k}_s"] = None if la is None or lb is None else round(lb - la, 3)
        out[name] = row
    return out


@click.command("simulate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("scenario", default="proxima")
@click.option("--days", type=float, default=None, help="Simulate this many days (default: the scenario's).")
@click.option(
    "--seed", type=int, default=None, help="Seed for traffic and outages (default: the scenario's)."
)
@click.option("--end-to-end", "end_to_end", is_flag=True, help="Require a complete path at sending time.")
@click.option("--compare", is_flag=True, help="Run store-and-forward and end-to-end, and show both.")
@click.option("--journeys", type=click.IntRange(0), default=10, show_default=True, help="Journeys to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with every journey).")
def simulate(
    scenario: str,
    days: float | None,
    seed: int | None,
    end_to_end: bool,
    compare: bool,
    journeys: int,
    as_json: bool,
) -> None:
    """Run SCENARIO (a scenario file, or "proxima" for the shipped one) on a virtual clock: delivery,
    latency per traffic class, storage per node, use of each contact, each message's journey."""
    from proxima.runtime.scenario import load_scenario

    try:
        if days is not None and not 0 < days <= 366:
            raise click.BadParameter(f"must be within (0, 366], not {days:g}", param_hint="--days")
        loaded = load_scenario(scenario, days=days, seed=seed)
        modes = [False, True] if compare else [end_to_end]
        results = [_run(loaded, e2e, "end-to-end" if e2e else "store-and-forward") for e2e in modes]
    except click.BadParameter as exc:
        fail(exc.format_message())
    except ProximaError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    if as_json:
        docs = [r.to_json() for r in results]
        head = {
            "scenario": loaded.name,
            "source": loaded.source,
            "seed": loaded.seed,
            "notes": list(loaded.notes),
        }
        if compare:
            doc = {
                **head,
                "store_and_forward": docs[0],
                "end_to_end": docs[1],
                "difference": _difference(docs[0], docs[1]),
            }
        else:
            doc = {**head, **docs[0]}
        click.echo(json.dumps(doc))
        return
    for i, r in enumerate(results):
        if i:
            click.echo("")
        click.echo(_tables(r, loaded, journeys))
    if compare:
        diff = _difference(results[0].to_json(journeys=False), results[1].to_json(journeys=False))
        click.echo("")
        click.echo("End-to-end against store-and-forward (extra latency, fewer deliveries):")
        for name, row in diff.items():
            extra = ", ".join(
                f"{k[:-2]} {_signed(row[k])}" for k in ("p50_s", "p90_s", "p99_s", "max_s", "mean_s")
            )
            click.echo(f"  {name:<10} delivered {row['delivered']:+d}; {extra}")
