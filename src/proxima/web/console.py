"""The communication team's console: review queue, a post with its provenance, the calendar week,
channel failures and the public's questions.

Login sets a signed session cookie (HttpOnly, SameSite=Strict); every form and every script call
that changes something carries the session's CSRF token (a hidden field or the ``X-CSRF-Token``
header), compared in constant time. Only editors, approvers and admins get in; each step is then
checked again by the service (roles, four eyes). Templates escape every text they show.
"""

from __future__ import annotations

import hmac
import secrets
import time as systime
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from proxima.errors import Forbidden, GroundError, InvalidInput, RateLimited
from proxima.ground import accounts, questions
from proxima.ground.api import media_response
from proxima.ground.calendar import parse_time
from proxima.web.network import contact_bars, journeys, node_statuses

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.templating import Jinja2Templates

    from proxima.ground.config import NetworkConfig
    from proxima.ground.ratelimit import RateLimiter
    from proxima.ground.service import GroundService

__all__ = ["CSRF_HEADER", "ConsoleContext", "console_routes", "csrf_matches", "csrf_token"]

CSRF_HEADER = "x-csrf-token"


@dataclass
class ConsoleContext:
    """What the console's pages need."""

    service: GroundService
    templates: Jinja2Templates
    clock: Callable[[], datetime]
    login_limiter: RateLimiter
    crew_endpoint: str | None = None
    network: NetworkConfig | None = None


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_matches(request: Request, given: object) -> bool:
    """Whether ``given`` is the session's CSRF token (compared in constant time)."""
    expected = request.session.get("csrf")
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(given, expected)


async def _form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token checked (form field or header)."""
    form = await request.form(max_files=0, max_fields=64)
    given = form.get("csrf") or request.headers.get(CSRF_HEADER) or ""
    if not csrf_matches(request, given):
        raise Forbidden(
            "the form is stale or forged (CSRF token missing or wrong): reload the page", status=403
        )
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _staff(ctx: ConsoleContext, request: Request) -> accounts.Account:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise _Redirect(f"/console/login?{urlencode({'next': target})}")
    with ctx.service.sessions() as s:
        account = s.get(accounts.Account, uid)
        if account is None or account.disabled:
            request.session.clear()
            raise _Redirect("/console/login")
        accounts.require(account, accounts.Role.EDITOR, accounts.Role.APPROVER)
        return account


def _page(ctx: ConsoleContext, request: Request, name: str, status: int = 200, **values: Any) -> Response:
    values.setdefault("user", None)
    return ctx.templates.TemplateResponse(
        request, f"console/{name}", {"csrf": csrf_token(request), **values}, status_code=status
    )


def _wrap(
    ctx: ConsoleContext, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except _Redirect as r:
            return RedirectResponse(r.url, status_code=303)
        except RateLimited as exc:
            return _page(ctx, request, "error.html", 429, message=str(exc))
        except GroundError as exc:
            return _page(ctx, request, "error.html", exc.status, message=str(exc))

    return run


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def console_routes(ctx: ConsoleContext) -> list[BaseRoute]:
    """The console's routes, under ``/console``."""
    svc = ctx.service

    async def login_page(request: Request) -> Response:
        return _page(
            ctx, request, "login.html", next=request.query_params.get("next", "/console"), error=None
        )

    async def login(request: Request) -> Response:
        form = await _form(request)
        host = request.client.host if request.client else "unknown"
        ctx.login_limiter.check(f"console:{host}", systime.time())  # real time, whatever the mission clock
        target = form.get("next", "/console")
        if not target.startswith("/console"):
            target = "/console"
        try:
            with svc.sessions.begin() as s:
                account = accounts.authenticate(
                    s, form.get("handle", ""), form.get("password", ""), now=ctx.clock()
                )
                accounts.require(account, accounts.Role.EDITOR, accounts.Role.APPROVER)
                uid = account.id
        except Forbidden as exc:
            return _page(ctx, request, "login.html", exc.status, next=target, error=str(exc))
        request.session.clear()
        request.session["uid"] = uid
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        await _form(request)
        request.session.clear()
        return RedirectResponse("/console/login", status_code=303)

    async def queue(request: Request) -> Response:
        user = _staff(ctx, request)
        waiting = [
            p
            for p in svc.list_posts(limit=500)
            if p["state"] in ("received", "in_review", "changes_requested")
        ]
        recent = [
            p
            for p in svc.list_posts(limit=50)
            if p["state"] not in ("received", "in_review", "changes_requested")
        ]
        return _page(ctx, request, "queue.html", user=user, waiting=waiting, recent=recent)

    async def post(request: Request) -> Response:
        user = _staff(ctx, request)
        info = svc.show(request.path_params["post_id"])
        refusals = [r for r in svc.refusals(limit=500) if r["post"] == info["id"]]
        return _page(
            ctx, request, "post.html", user=user, post=info, refusals=refusals, channels=list(svc.channels)
        )

    async def media(request: Request) -> Response:
        _staff(ctx, request)
        info = svc.show(request.path_params["post_id"])
        for m in info["media"]:
            if m["name"] == request.path_params["name"] and m["state"] == "complete":
                return media_response(svc.media_path(m["sha256"]), m["content_type"], m["name"])
        return _page(ctx, request, "error.html", 404, message="no such media file")

    async def step(request: Request) -> Response:
        user = _staff(ctx, request)
        form = await _form(request)
        post_id = request.path_params["post_id"]
        action = request.path_params["action"]
        now = ctx.clock()
        if action == "approve":
            svc.approve(post_id, user, now=now)
        elif action == "reject":
            svc.reject(post_id, user, form.get("reason", ""), now=now)
        elif action == "request-changes":
            svc.request_changes(post_id, user, form.get("note", ""), now=now)
        elif action == "edit":
            text = {
                k.removeprefix("text_"): v for k, v in form.items() if k.startswith("text_") and v.strip()
            }
            svc.edit(post_id, user, text=text or None, note=form.get("note") or None, now=now)
        elif action == "schedule":
            at = form.get("at", "").strip()
            when = parse_time(at, tz=form.get("tz") or "UTC") if at else None
            svc.schedule(post_id, user, when, now=now)
        elif action == "unschedule":
            svc.unschedule(post_id, user, now=now)
        else:
            raise InvalidInput(f"no action {action!r}", status=404)
        if request.headers.get(CSRF_HEADER):  # a script call (calendar drag): answer in JSON terms
            return Response(status_code=204)
        return RedirectResponse(f"/console/posts/{post_id}", status_code=303)

    async def week(request: Request) -> Response:
        user = _staff(ctx, request)
        today = ctx.clock().astimezone(UTC).date()
        try:
            start_day = date.fromisoformat(request.query_params.get("start", _monday(today).isoformat()))
        except ValueError as exc:
            raise InvalidInput("start must be a date YYYY-MM-DD", field="start") from exc
        if not 1970 <= start_day.year <= 9000:
            raise InvalidInput("start must be a date between 1970 and 9000", field="start")
        start_day = _monday(start_day)
        start = datetime.combine(start_day, time(0), tzinfo=UTC)
        items = svc.calendar_view(
            start, start + timedelta(days=7), campaign=request.query_params.get("campaign") or None
        )
        days = [start_day + timedelta(days=i) for i in range(7)]
        by_day: dict[str, list[dict[str, Any]]] = {d.isoformat(): [] for d in days}
        for item in items:
            by_day.setdefault(item["at"][:10], []).append(item)
        return _page(
            ctx,
            request,
            "calendar.html",
            user=user,
            days=days,
            by_day=by_day,
            prev=(start_day - timedelta(days=7)).isoformat(),
            next=(start_day + timedelta(days=7)).isoformat(),
            campaign=request.query_params.get("campaign", ""),
        )

    async def channels(request: Request) -> Response:
        user = _staff(ctx, request)
        rows = []
        for p in svc.list_posts(limit=500):
            for d in p["deliveries"]:
                rows.append({"post": p["id"], "text": next(iter(p["text"].values()), ""), **d})
        status = {
            name: {
                "published": sum(1 for r in rows if r["channel"] == name and r["state"] == "published"),
                "waiting": sum(
                    1
                    for r in rows
                    if r["channel"] == name and r["state"] in ("pending", "publishing", "retrying")
                ),
                "failed": sum(1 for r in rows if r["channel"] == name and r["state"] == "failed"),
            }
            for name in svc.channels
        }
        problems = [r for r in rows if r["state"] in ("retrying", "failed")]
        return _page(ctx, request, "channels.html", user=user, channel_status=status, problems=problems)

    async def network(request: Request) -> Response:
        user = _staff(ctx, request)
        now = ctx.clock()
        nodes: list[dict[str, Any]] = []
        links: list[str] = []
        bars: list[Any] = []
        if ctx.network is not None:
            nodes = await node_statuses(ctx.network)
            links, bars = contact_bars(ctx.network, now, before=timedelta(hours=3), after=timedelta(hours=12))
        return _page(
            ctx,
            request,
            "network.html",
            user=user,
            nodes=nodes,
            links=links,
            bars=bars,
            now=now,
            journeys=journeys(svc),
            configured=ctx.network is not None,
        )

    async def question_list(request: Request) -> Response:
        user = _staff(ctx, request)
        with svc.sessions() as s:
            rows = [questions.question_to_json(q) for q in questions.list_questions(s, limit=500)]
        rows.reverse()
        return _page(ctx, request, "questions.html", user=user, questions=rows, crew=ctx.crew_endpoint)

    async def moderate(request: Request) -> Response:
        user = _staff(ctx, request)
        form = await _form(request)
        with svc.sessions.begin() as s:
            questions.moderate(
                s,
                request.path_params["question_id"],
                approve=form.get("decision") == "approve",
                moderator=user,
                reason=form.get("reason") or None,
                now=ctx.clock(),
            )
        return RedirectResponse("/console/questions", status_code=303)

    async def select(request: Request) -> Response:
        user = _staff(ctx, request)
        await _form(request)
        form = await request.form()
        ids = [v for v in form.getlist("id") if isinstance(v, str)]
        if not ids:
            raise InvalidInput("tick at least one question", field="id")
        if ctx.crew_endpoint is None:
            raise InvalidInput("this ground service has no crew endpoint configured", field="crew_endpoint")
        svc.select_questions(ids, user, destination=ctx.crew_endpoint, now=ctx.clock())
        return RedirectResponse("/console/questions", status_code=303)

    w = _wrap
    return [
        Route("/console/login", w(ctx, login_page), methods=["GET"]),
        Route("/console/login", w(ctx, login), methods=["POST"]),
        Route("/console/logout", w(ctx, logout), methods=["POST"]),
        Route("/console", w(ctx, queue)),
        Route("/console/posts/{post_id}", w(ctx, post)),
        Route("/console/posts/{post_id}/media/{name}", w(ctx, media)),
        Route("/console/posts/{post_id}/{action}", w(ctx, step), methods=["POST"]),
        Route("/console/calendar", w(ctx, week)),
        Route("/console/channels", w(ctx, channels)),
        Route("/console/network", w(ctx, network)),
        Route("/console/questions", w(ctx, question_list)),
        Route("/console/questions/select", w(ctx, select), methods=["POST"]),
        Route("/console/questions/{question_id}/moderate", w(ctx, moderate), methods=["POST"]),
    ]
