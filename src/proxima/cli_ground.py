"""``proxima ground|login|review|calendar|questions|crew``: the ground service and the crew's side.

``ground run`` and ``ground account`` work on the service's own machine (its configuration file).
``login``, ``review``, ``calendar`` and ``questions`` talk to a running service over its HTTP API
(``--server``, default ``$PROXIMA_GROUND`` or http://127.0.0.1:8080; ``--token``, default
``$PROXIMA_TOKEN``, printed by ``login``), so every step is done, and audited, as a person.
``crew post`` and ``crew status`` run on board, against the station's node.

Conventions as everywhere: ``--help``, ``--json`` for machine output, exit 1 with one
``error: ...`` line on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from proxima.cli_support import fail, guard
from proxima.errors import InvalidInput

__all__ = ["calendar", "crew", "ground", "login", "questions", "review", "web"]

_SETTINGS = {"help_option_names": ["-h", "--help"]}
_DTN_EPOCH_UNIX_MS = 946_684_800_000

_server_option = click.option(
    "--server",
    default="http://127.0.0.1:8080",
    envvar="PROXIMA_GROUND",
    show_default=True,
    help="URL of the ground service (or $PROXIMA_GROUND).",
)
_token_option = click.option(
    "--token", envvar="PROXIMA_TOKEN", help="API token from 'proxima login' (or $PROXIMA_TOKEN)."
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _call(
    server: str,
    method: str,
    path: str,
    token: str | None,
    body: dict[str, Any] | None = None,
    *,
    params: dict[str, Any] | None = None,
) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.request(
            method,
            f"{server.rstrip('/')}{path}",
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers=headers,
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        fail(f"{server}: {exc}")
    try:
        data = r.json()
    except ValueError:
        fail(f"{server}{path}: HTTP {r.status_code}, not JSON")
    if r.status_code >= 400:
        fail(
            str(data.get("error", f"HTTP {r.status_code}"))
            if isinstance(data, dict)
            else f"HTTP {r.status_code}"
        )
    return data


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------------ ground


@click.group("ground", context_settings=_SETTINGS)
def ground() -> None:
    """The ground service: receive, review, schedule and publish crew posts."""


@ground.command("run", context_settings=_SETTINGS)
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Ground TOML file."
)
@guard
def ground_run(config_path: str) -> None:
    """Run the ground service until Ctrl-C: HTTP API, DTN endpoint, scheduler and publishers."""
    from proxima.analytics.runtime import AnalyticsRuntime
    from proxima.ground.config import load_ground_config, mission_clock
    from proxima.ground.runner import GroundRunner

    config = load_ground_config(config_path)

    async def run() -> None:
        clock = mission_clock(config)
        analytics = AnalyticsRuntime(config, clock=clock)
        runner = GroundRunner(
            config, clock=clock, extra_routes=lambda svc: analytics.routes(svc, runner.channels)
        )
        await runner.start()
        analytics.start()
        click.echo(
            f"ground service on http://{config.host}:{runner.port} (public base {config.base_url})", err=True
        )
        try:
            await asyncio.Event().wait()
        finally:
            await analytics.stop()
            await runner.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.command("web", context_settings=_SETTINGS)
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Ground TOML file."
)
@click.option("--secure-cookies", is_flag=True, help="Send the session cookie over HTTPS only (behind TLS).")
@guard
def web(config_path: str, secure_cookies: bool) -> None:
    """Run the web application until Ctrl-C: public pages, the team's console, and the ground service."""
    from proxima.ground.config import load_ground_config, mission_clock
    from proxima.web.app import WebApp

    config = load_ground_config(config_path)

    async def run() -> None:
        app = WebApp(config, secure_cookies=secure_cookies, clock=mission_clock(config))
        await app.start()
        click.echo(f"console: http://{config.host}:{app.port}/console  public: {config.base_url}/", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await app.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@ground.command("account", context_settings=_SETTINGS)
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Ground TOML file."
)
@click.option("--handle", required=True, help="Login name (lower case).")
@click.option("--name", "display_name", required=True, help="Name shown to others.")
@click.option("--kind", type=click.Choice(["crew", "robot", "agency"]), default="agency", show_default=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["crew", "editor", "approver", "admin"]),
    help="Repeatable.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else none: a persona)."
)
@_json_option
@guard
def ground_account(
    config_path: str,
    handle: str,
    display_name: str,
    kind: str,
    roles: tuple[str, ...],
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create an account or persona in the service's database."""
    from proxima.ground import accounts
    from proxima.ground.config import load_ground_config
    from proxima.ground.db import make_engine, session_factory, upgrade

    config = load_ground_config(config_path)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    engine = make_engine(config.database)
    upgrade(engine)
    with session_factory(engine).begin() as s:
        account = accounts.create_account(
            s, handle, display_name, kind, roles, password, now=datetime.now(UTC)
        )
        out = {"handle": account.handle, "kind": str(account.kind), "roles": list(account.roles)}
    if as_json:
        _echo_json(out)
    else:
        click.echo(f"created {out['handle']} ({out['kind']}; roles: {', '.join(out['roles']) or 'none'})")


@click.command("login", context_settings=_SETTINGS)
@_server_option
@click.option("--handle", required=True, help="Your login name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting."
)
@guard
def login(server: str, handle: str, password_stdin: bool) -> None:
    """Log in to the ground service and print an API token (export it as PROXIMA_TOKEN)."""
    password = (
        sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("password", hide_input=True)
    )
    data = _call(server, "POST", "/api/login", None, {"handle": handle, "password": password})
    click.echo(data["token"])


# ------------------------------------------------------------------------ review


@click.group("review", context_settings=_SETTINGS)
def review() -> None:
    """Review crew posts: list, show, edit, approve, request changes, reject, schedule."""


def _line(p: dict[str, Any]) -> str:
    text = next(iter(p["text"].values()), "")
    text = " ".join(text.split())
    when = p["scheduled_at"] or "-"
    return f"{p['id']}  {p['state']:<17} {p['author']:<10} {when:<25} {text[:60]}"


@review.command("list", context_settings=_SETTINGS)
@click.option("--state", help="Only posts in this state (in_review, approved, scheduled...).")
@_server_option
@_token_option
@_json_option
@guard
def review_list(state: str | None, server: str, token: str | None, as_json: bool) -> None:
    """Posts, newest first."""
    posts = _call(server, "GET", "/api/posts", token, params={"state": state})["posts"]
    if as_json:
        _echo_json(posts)
        return
    for p in posts:
        click.echo(_line(p))


@review.command("show", context_settings=_SETTINGS)
@click.argument("post_id")
@_server_option
@_token_option
@_json_option
@guard
def review_show(post_id: str, server: str, token: str | None, as_json: bool) -> None:
    """One post: its versions, media, deliveries and audit log."""
    p = _call(server, "GET", f"/api/posts/{post_id}", token)
    if as_json:
        _echo_json(p)
        return
    click.echo(_line(p))
    for v in p["versions"]:
        click.echo(f"  version {v['number']} by {v['editor'] or 'crew'}:")
        for lang, text in v["text"].items():
            click.echo(f"    [{lang}] {text}")
    for m in p["media"]:
        click.echo(f"  media {m['name']} {m['content_type']} {m['size']} B {m['state']}")
    for d in p["deliveries"]:
        click.echo(f"  {d['channel']}: {d['state']} {d['url'] or d['error'] or ''}")
    for a in p["audit"]:
        click.echo(f"  {a['at']} {a['actor']} {a['action']} {a['before'] or ''}->{a['after'] or ''}")


def _step(
    server: str, token: str | None, post_id: str, action: str, body: dict[str, Any], as_json: bool
) -> None:
    p = _call(server, "POST", f"/api/posts/{post_id}/{action}", token, body)
    if as_json:
        _echo_json(p)
    else:
        click.echo(_line(p))


@review.command("approve", context_settings=_SETTINGS)
@click.argument("post_id")
@_server_option
@_token_option
@_json_option
@guard
def review_approve(post_id: str, server: str, token: str | None, as_json: bool) -> None:
    """Approve the current version (not your own, and before its scheduled time)."""
    _step(server, token, post_id, "approve", {}, as_json)


@review.command("reject", context_settings=_SETTINGS)
@click.argument("post_id")
@click.option("--reason", required=True, help="Why (told to the crew).")
@_server_option
@_token_option
@_json_option
@guard
def review_reject(post_id: str, reason: str, server: str, token: str | None, as_json: bool) -> None:
    """Reject the post: it is never published."""
    _step(server, token, post_id, "reject", {"reason": reason}, as_json)


@review.command("changes", context_settings=_SETTINGS)
@click.argument("post_id")
@click.option("--note", required=True, help="What to change (told to the crew).")
@_server_option
@_token_option
@_json_option
@guard
def review_changes(post_id: str, note: str, server: str, token: str | None, as_json: bool) -> None:
    """Request changes."""
    _step(server, token, post_id, "request-changes", {"note": note}, as_json)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        lang, sep, text = v.partition("=")
        if not sep or not lang:
            raise InvalidInput(f"{v!r}: write LANG=TEXT", field=option)
        out[lang] = text
    return out


@review.command("edit", context_settings=_SETTINGS)
@click.argument("post_id")
@click.option("--text", "texts", multiple=True, help="LANG=TEXT; repeat per language (replaces all texts).")
@click.option("--hashtag", "hashtags", multiple=True, help="Repeatable; replaces the hashtags.")
@click.option("--channel", "channels", multiple=True, help="Repeatable; replaces the channels.")
@click.option("--note", help="Why the edit.")
@_server_option
@_token_option
@_json_option
@guard
def review_edit(
    post_id: str,
    texts: tuple[str, ...],
    hashtags: tuple[str, ...],
    channels: tuple[str, ...],
    note: str | None,
    server: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Make a new version (the crew's original is kept)."""
    body: dict[str, Any] = {"note": note}
    if texts:
        body["text"] = _pairs(texts, "--text")
    if hashtags:
        body["hashtags"] = list(hashtags)
    if channels:
        body["channels"] = list(channels)
    _step(server, token, post_id, "edit", body, as_json)


@review.command("schedule", context_settings=_SETTINGS)
@click.argument("post_id")
@click.option("--at", help="ISO 8601 time (without offset: read in --tz); default: the next free slot.")
@click.option("--tz", help="IANA time zone for --at (Europe/Paris).")
@_server_option
@_token_option
@_json_option
@guard
def review_schedule(
    post_id: str, at: str | None, tz: str | None, server: str, token: str | None, as_json: bool
) -> None:
    """Give the post a publication time."""
    _step(server, token, post_id, "schedule", {"at": at, "tz": tz}, as_json)


# ------------------------------------------------------------------------ calendar


@click.group("calendar", context_settings=_SETTINGS, invoke_without_command=True)
@click.option("--from", "start", help="ISO 8601 start (default now).")
@click.option("--to", "end", help="ISO 8601 end (default a week later).")
@_server_option
@_token_option
@_json_option
@click.pass_context
@guard
def calendar(
    ctx: click.Context, start: str | None, end: str | None, server: str, token: str | None, as_json: bool
) -> None:
    """The editorial calendar: scheduled posts and free slots."""
    if ctx.invoked_subcommand is not None:
        return
    data = _call(server, "GET", "/api/calendar", token, params={"from": start, "to": end})
    if as_json:
        _echo_json(data)
        return
    for item in data["items"]:
        if item["kind"] == "post":
            click.echo(
                f"{item['at']}  post {item['post']} ({item['state']}) on {', '.join(item['channels'])}"
            )
        else:
            click.echo(f"{item['at']}  free slot on {item['channel']} {item.get('label') or ''}".rstrip())


@calendar.command("slot", context_settings=_SETTINGS)
@click.option("--channel", required=True)
@click.option("--time", "time_of_day", required=True, help="Local time HH:MM.")
@click.option("--tz", required=True, help="IANA time zone.")
@click.option("--weekday", type=click.IntRange(0, 6), help="0 = Monday ... 6 = Sunday (default every day).")
@click.option("--campaign")
@click.option("--label")
@_server_option
@_token_option
@guard
def calendar_slot(
    channel: str, time_of_day: str, tz: str, weekday: int | None, campaign: str | None, label: str | None,
    server: str, token: str | None,
) -> None:  # fmt: skip
    """Add a recurring publication slot."""
    body = {
        "channel": channel,
        "time": time_of_day,
        "tz": tz,
        "weekday": weekday,
        "campaign": campaign,
        "label": label,
    }
    data = _call(server, "POST", "/api/slots", token, body)
    click.echo(f"slot {data['id']} added")


# ------------------------------------------------------------------------ questions


@click.group("questions", context_settings=_SETTINGS)
def questions() -> None:
    """The public's questions: list, moderate, select for the crew."""


@questions.command("list", context_settings=_SETTINGS)
@click.option("--state", help="submitted, approved, rejected, selected, sent, answered.")
@_server_option
@_token_option
@_json_option
@guard
def questions_list(state: str | None, server: str, token: str | None, as_json: bool) -> None:
    """Questions, newest first."""
    rows = _call(server, "GET", "/api/questions", token, params={"state": state})["questions"]
    if as_json:
        _echo_json(rows)
        return
    for q in rows:
        click.echo(f"{q['id']}  {q['state']:<10} [{q['lang']}] {' '.join(q['text'].split())[:70]}")


@questions.command("moderate", context_settings=_SETTINGS)
@click.argument("question_id")
@click.option("--approve/--reject", "approve", required=True)
@click.option("--reason")
@_server_option
@_token_option
@guard
def questions_moderate(
    question_id: str, approve: bool, reason: str | None, server: str, token: str | None
) -> None:
    """Approve or reject a question."""
    q = _call(
        server,
        "POST",
        f"/api/questions/{question_id}/moderate",
        token,
        {"approve": approve, "reason": reason},
    )
    click.echo(f"{q['id']}  {q['state']}")


@questions.command("select", context_settings=_SETTINGS)
@click.argument("question_ids", nargs=-1, required=True)
@_server_option
@_token_option
@guard
def questions_select(question_ids: tuple[str, ...], server: str, token: str | None) -> None:
    """Send approved questions up to the crew."""
    data = _call(server, "POST", "/api/questions/select", token, {"ids": list(question_ids)})
    click.echo(f"{len(data['selected'])} question(s) queued for the crew")


# ------------------------------------------------------------------------ crew

_crew_node = click.option(
    "--node",
    default="127.0.0.1:4242",
    envvar="PROXIMA_NODE",
    show_default=True,
    help="The station node's HOST:PORT.",
)
_crew_log = click.option(
    "--log",
    "log_path",
    default=lambda: os.environ.get("PROXIMA_CREW_LOG", str(Path.home() / ".proxima" / "crew.db")),
    help="The crew's log of posts and acknowledgements (or $PROXIMA_CREW_LOG).",
)


@click.group("crew", context_settings=_SETTINGS)
def crew() -> None:
    """On board: write posts, see what became of them, read the public's questions."""


@crew.command("post", context_settings=_SETTINGS)
@click.argument("text")
@click.option("--lang", default="fr", show_default=True, help="Language of TEXT.")
@click.option("--also", "also", multiple=True, help="LANG=TEXT in another language; repeatable.")
@click.option(
    "--media",
    "media",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Photo, video or audio; repeatable.",
)
@click.option("--alt", "alts", multiple=True, help="LANG=ALT TEXT for the media; repeatable.")
@click.option("--hashtag", "hashtags", multiple=True, help="Repeatable.")
@click.option("--campaign", help="Campaign hashtag (Proxima).")
@click.option("--channels", "channels", multiple=True, help="Target channels; repeatable (default: all).")
@click.option("--reply-to", help="Id of the public question this answers.")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The crew member's private key (NAME.key).",
)
@click.option("--author", help="Crew member or persona (default: the key file's name).")
@click.option("--to", "posts_endpoint", default="dtn://ground/posts", show_default=True)
@click.option("--media-to", "media_endpoint", default="dtn://ground/media", show_default=True)
@click.option(
    "--source", default=None, help="Endpoint of this node to send from (where acknowledgements come back)."
)
@_crew_node
@_crew_log
@_json_option
@guard
def crew_post(
    text: str, lang: str, also: tuple[str, ...], media: tuple[str, ...], alts: tuple[str, ...],
    hashtags: tuple[str, ...], campaign: str | None, channels: tuple[str, ...], reply_to: str | None,
    key_path: str, author: str | None, posts_endpoint: str, media_endpoint: str, source: str | None,
    node: str, log_path: str, as_json: bool,
) -> None:  # fmt: skip
    """Write a post: signed here, handed to the node, sent down at the next contacts."""
    from proxima.runtime.crew import CrewLog, Draft, send_post
    from proxima.runtime.keys import load_private_key

    key = load_private_key(key_path)
    draft = Draft(
        text={lang: text, **_pairs(also, "--also")},
        media=[Path(m) for m in media],
        alt=_pairs(alts, "--alt") or None,
        hashtags=list(hashtags),
        campaign=campaign,
        channels=list(channels),
        reply_to=reply_to,
    )
    log = CrewLog(log_path)
    try:
        post, bundles = asyncio.run(
            send_post(
                draft,
                key=key,
                author=author or Path(key_path).stem,
                created_ms=time.time_ns() // 1_000_000 - _DTN_EPOCH_UNIX_MS,
                node=node,
                posts_endpoint=posts_endpoint,
                media_endpoint=media_endpoint,
                source=source,
                log=log,
            )
        )
    finally:
        log.close()
    if as_json:
        _echo_json({"id": post.id, "bundles": bundles})
    else:
        click.echo(
            f"post {post.id} handed to the node in {bundles} bundle(s); it goes down at the next contact"
        )


@crew.command("status", context_settings=_SETTINGS)
@click.option(
    "--endpoint", default="dtn://iss/crew", show_default=True, help="Where acknowledgements arrive."
)
@click.option("--offline", is_flag=True, help="Only read the log; do not ask the node for news.")
@_crew_node
@_crew_log
@_json_option
@guard
def crew_status(endpoint: str, offline: bool, node: str, log_path: str, as_json: bool) -> None:
    """What became of each post: received, in review, approved, published (with links)..."""
    from proxima.runtime.crew import CrewLog, sync

    log = CrewLog(log_path)
    try:
        if not offline:
            _, bad = asyncio.run(sync(node=node, endpoint=endpoint, log=log))
            for line in bad:
                click.echo(f"warning: {line}", err=True)
        posts = log.status()
    finally:
        log.close()
    if as_json:
        _echo_json(posts)
        return
    for p in posts:
        text = " ".join(next(iter(p["text"].values()), "").split())
        click.echo(f"{p['id']}  {p['state']:<17} {text[:50]}")
        for channel, url in p["links"].items():
            click.echo(f"    {channel}: {url}")


@crew.command("questions", context_settings=_SETTINGS)
@click.option("--endpoint", default="dtn://iss/crew", show_default=True)
@click.option("--offline", is_flag=True, help="Only read the log.")
@_crew_node
@_crew_log
@_json_option
@guard
def crew_questions(endpoint: str, offline: bool, node: str, log_path: str, as_json: bool) -> None:
    """Questions from the public that the ground team sent up (answer with crew post --reply-to ID)."""
    from proxima.runtime.crew import CrewLog, sync

    log = CrewLog(log_path)
    try:
        if not offline:
            asyncio.run(sync(node=node, endpoint=endpoint, log=log))
        rows = log.questions()
    finally:
        log.close()
    if as_json:
        _echo_json(rows)
        return
    for q in rows:
        who = f" ({q['name']})" if q["name"] else ""
        click.echo(f"{q['id']}  [{q['lang']}]{who} {q['text']}")
