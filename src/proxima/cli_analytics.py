"""``proxima report`` and ``proxima analytics``: campaign reports and audience figures.

Both talk to a running ground service over its HTTP API (``--server``, default
``$PROXIMA_GROUND``; ``--token``, default ``$PROXIMA_TOKEN``, printed by ``proxima login``).
``report`` fetches a campaign's figures as JSON and renders the HTML or PDF here, so the service
need not carry a PDF engine's load; ``analytics collect`` asks the service to sample the networks
now; ``analytics export`` saves raw samples as CSV or JSON.

Conventions as everywhere: ``--help``, ``--json`` for machine output, exit 1 with one
``error: ...`` line on failure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import click

from proxima.cli_ground import _call, _echo_json, _json_option, _server_option, _token_option
from proxima.cli_support import fail, guard
from proxima.errors import InvalidInput

__all__ = ["analytics", "report"]

_SETTINGS = {"help_option_names": ["-h", "--help"]}

HOURLY_UP_TO: Final = timedelta(days=3)
"""Without ``--bucket``, windows up to this long are drawn per hour, longer ones per day."""


def parse_time(text: str, option: str) -> datetime:
    """An ISO-8601 date or time given on the command line, as UTC (no offset means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO-8601 date or time", field=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _window(start: str, end: str) -> tuple[datetime, datetime]:
    since, until = parse_time(start, "--from"), parse_time(end, "--to")
    if until <= since:
        raise InvalidInput(f"{_iso(until)} is not after --from {_iso(since)}", field="--to")
    return since, until


def campaign_tag(text: str) -> str:
    """A campaign's tag as analytics stores it: lower case, without ``#``."""
    tag = text.strip().lstrip("#").lower()
    if not tag or any(c.isspace() for c in tag):
        raise InvalidInput(f"{text!r} is not a hashtag", field="--campaign")
    return tag


def default_report_name(tag: str, start: datetime, fmt: str) -> str:
    """``report-TAG-FROM.html``: the tag reduced to safe file-name characters, FROM the UTC date
    (with the time, ``2026-03-01T0930Z``, when the window does not start at midnight)."""
    safe = re.sub(r"[^\w-]+", "_", tag, flags=re.ASCII).strip("_") or "campaign"
    start = start.astimezone(UTC)
    midnight = start.time() == datetime.min.time()
    when = start.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H%MZ")
    return f"report-{safe}-{when}.{fmt}"


# ------------------------------------------------------------------------ report


@click.command("report", context_settings=_SETTINGS)
@click.option("--campaign", required=True, help="The campaign's hashtag (with or without #).")
@click.option("--from", "start", required=True, help="ISO 8601 start of the window (no offset: UTC).")
@click.option("--to", "end", required=True, help="ISO 8601 end of the window, excluded (no offset: UTC).")
@click.option(
    "--bucket",
    type=click.Choice(["hour", "day"]),
    help="Chart mentions per hour or per day (default: per hour for windows up to 3 days).",
)
@click.option("--html", "fmt", flag_value="html", default=True, help="Write an HTML page (default).")
@click.option("--pdf", "fmt", flag_value="pdf", help="Write an A4 PDF.")
@click.option(
    "--output", type=click.Path(dir_okay=False), help="File to write (default report-TAG-FROM.html/pdf)."
)
@_server_option
@_token_option
@_json_option
@guard
def report(
    campaign: str,
    start: str,
    end: str,
    bucket: str | None,
    fmt: str,
    output: str | None,
    server: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Write a campaign's report: mentions, reach, sentiment, growth, top posts and accounts."""
    from proxima.analytics.report import render_html, render_pdf, report_from_json

    tag = campaign_tag(campaign)
    since, until = _window(start, end)
    if bucket is None:
        bucket = "hour" if until - since <= HOURLY_UP_TO else "day"
    data = _call(
        server,
        "GET",
        "/api/analytics/report",
        token,
        params={"campaign": tag, "from": _iso(since), "to": _iso(until), "bucket": bucket},
    )
    loaded = report_from_json(data)
    path = Path(output or default_report_name(tag, since, fmt))
    if fmt == "pdf":
        path.write_bytes(render_pdf(loaded))
    else:
        path.write_text(render_html(loaded), encoding="utf-8")
    if as_json:
        _echo_json({"path": str(path), "format": fmt, "report": data})
    else:
        click.echo(str(path))


# ------------------------------------------------------------------------ analytics


@click.group("analytics", context_settings=_SETTINGS)
def analytics() -> None:
    """Audience figures: collect samples now, export them."""


def _summary(value: Any, indent: str = "") -> list[str]:
    """Readable lines for the service's answer, whatever its shape: ``key: value`` per member."""
    if isinstance(value, dict):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}{key}:")
                lines += _summary(item, indent + "  ")
            else:
                lines.append(f"{indent}{key}: {item}")
        return lines
    if isinstance(value, list):
        return [line for item in value for line in _summary(item, indent)]
    return [f"{indent}{value}"]


@analytics.command("collect", context_settings=_SETTINGS)
@_server_option
@_token_option
@_json_option
@guard
def analytics_collect(server: str, token: str | None, as_json: bool) -> None:
    """Sample every channel now: followers, counters of published posts, new mentions."""
    data = _call(server, "POST", "/api/analytics/collect", token, {})
    if as_json:
        _echo_json(data)
        return
    for line in _summary(data):
        click.echo(line)


def _fetch(server: str, path: str, token: str | None, params: dict[str, str]) -> bytes:
    """GET a body that need not be JSON (a CSV export); errors as :func:`_call` reports them."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(f"{server.rstrip('/')}{path}", params=params, headers=headers, timeout=120.0)
    except httpx.HTTPError as exc:
        fail(f"{server}: {exc}")
    if r.status_code >= 400:
        try:
            data = r.json()
        except ValueError:
            fail(f"{server}{path}: HTTP {r.status_code}")
        message = data.get("error") if isinstance(data, dict) else None
        fail(str(message or f"HTTP {r.status_code}"))
    return r.content


@analytics.command("export", context_settings=_SETTINGS)
@click.option(
    "--kind", type=click.Choice(["followers", "posts", "mentions"]), required=True, help="What to export."
)
@click.option("--from", "start", required=True, help="ISO 8601 start (no offset: UTC).")
@click.option("--to", "end", required=True, help="ISO 8601 end, excluded (no offset: UTC).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="File to write (default: standard output).")
@_server_option
@_token_option
@guard
def analytics_export(
    kind: str, start: str, end: str, fmt: str, output: str | None, server: str, token: str | None
) -> None:
    """Export samples or mentions of a window, every sample with its time (UTC)."""
    since, until = _window(start, end)
    body = _fetch(
        server,
        "/api/analytics/export",
        token,
        {"kind": kind, "from": _iso(since), "to": _iso(until), "format": fmt},
    )
    if output is None:
        click.echo(body, nl=False)
        return
    Path(output).write_bytes(body)
    click.echo(f"{output}: {len(body):,} bytes", err=True)

