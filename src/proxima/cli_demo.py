"""``proxima demo``: the whole mission on one machine (see :mod:`proxima.demo`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from proxima.cli_support import fail, guard

__all__ = ["demo"]


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dir",
    "workdir",
    default="proxima-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its state (a second run resumes from it).",
)
@click.option(
    "--speed",
    type=click.FloatRange(1, 100_000),
    default=None,
    help="Mission seconds per real second (default 120 live, as fast as useful headless).",
)
@click.option(
    "--hours", type=click.FloatRange(0.1, 24 * 14), default=None, help="Mission hours to run, then stop."
)
@click.option(
    "--headless", is_flag=True, help="No live display: run --hours (default 24) and print a report."
)
@click.option("--fresh", is_flag=True, help="Forget the stored state and start the mission over.")
@click.option(
    "--port",
    "http_port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of the web app (0: any free port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@guard
def demo(
    workdir: str, speed: float | None, hours: float | None, headless: bool, fresh: bool, http_port: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Run the Proxima mission end to end: DTN nodes for the ISS, three relays and the ground, the
    ground service, the web app and the crew's playlist, on a sped-up mission clock."""
    from proxima.demo import PASSWORD, DemoOptions, run_demo

    if headless and hours is None:
        hours = 24.0
    if http_port == 0:
        from proxima.demo import free_port

        http_port = free_port()
    options = DemoOptions(
        workdir=Path(workdir),
        speed=speed if speed is not None else (720.0 if headless else 120.0),
        hours=hours,
        headless=headless,
        fresh=fresh,
        http_port=http_port,
    )
    if headless:
        report = asyncio.run(run_demo(options))
        _print(report.as_dict(), as_json)
        if not report.ok:
            fail(
                f"{len(report.missing)} deliverable post(s) not published, "
                f"{len(report.duplicates)} published more than once"
            )
        return
    from rich.live import Live
    from rich.table import Table

    state: dict[str, Any] = {}

    def table() -> Table:
        t = Table(title="Proxima — mission running (Ctrl-C to stop)")
        for key in ("mission_time", "links_up", "bundles_stored", "posts", "in_review", "published"):
            t.add_row(key.replace("_", " "), str(state.get(key, "…")))
        return t

    with Live(table(), refresh_per_second=2) as live:

        def on_status(s: dict[str, Any]) -> None:
            state.update(s)
            live.update(table())

        options.on_status = on_status
        port = http_port
        live.console.print(
            f"console: http://127.0.0.1:{port}/console (login editor or approver, password {PASSWORD})\n"
            f"public page: http://127.0.0.1:{port}/   feed: http://127.0.0.1:{port}/feed.atom"
        )
        try:
            report = asyncio.run(run_demo(options))
        except KeyboardInterrupt:
            live.console.print("stopped; run again to resume, or with --fresh to start over")
            return
    _print(report.as_dict(), as_json)


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    posts, lat = report["posts"], report["latency_writing_to_publication_min"]
    click.echo(
        f"mission {report['mission']['start']} → {report['mission']['end']} in {report['real_seconds']} s"
    )
    click.echo(
        f"posts: {posts['written']} written, {posts['delivered']} delivered, {posts['reviewed']} reviewed, "
        f"{posts['published']} published ({posts['deliverable_in_window']} could be in the window)"
    )
    if lat["min"] is not None:
        click.echo(
            f"writing → publication: min {lat['min']} min, median {lat['median']} min, max {lat['max']} min"
        )
    click.echo(
        f"contacts: {report['contacts']['planned']} planned, "
        f"{report['contacts']['with_links_up']} seen with links up"
    )
    click.echo(
        "store peaks (bundles): " + ", ".join(f"{k} {v}" for k, v in report["store_peaks_bundles"].items())
    )
    click.echo(f"questions answered by the crew: {report['questions_answered']}")
    net = report["network"]
    click.echo(
        f"network: {net['delivered']} delivered, median writing → ground "
        f"{net['median_writing_to_ground_min']} min; the simulator on the same plan: "
        f"{net['simulator_delivered']}, median {net['simulator_median_min']} min"
    )
    click.echo("OK: every deliverable post published exactly once" if report["ok"] else "FAILED")
