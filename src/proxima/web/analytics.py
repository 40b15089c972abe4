"""The console's analytics pages: audience growth, a campaign's day, a post's life, sentiment.

Charts are drawn on the server (:mod:`proxima.analytics.charts`, SVG) so the pages need no
script library; the same figures go into the downloadable campaign report (HTML or PDF) and the
CSV/JSON exports. Windows come as ``from``/``to`` query parameters (ISO 8601 or a date), the
last 30 days by default.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from proxima.analytics import charts
from proxima.analytics.api import DEFAULT_WINDOW
from proxima.analytics.report import render_html, render_pdf
from proxima.errors import InvalidInput, NotFound
from proxima.ground.calendar import parse_time
from proxima.web.console import _form, _page, _staff, _wrap

if TYPE_CHECKING:
    from starlette.requests import Request

    from proxima.analytics.service import AnalyticsService
    from proxima.web.console import ConsoleContext

__all__ = ["AnalyticsPages", "analytics_pages"]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class AnalyticsPages:
    """What the analytics pages need: the console's context and the analytics service."""

    console: ConsoleContext
    analytics: AnalyticsService


def _when(text: str | None, field: str) -> datetime | None:
    """A ``from``/``to`` value: an ISO 8601 time, or a date meaning its midnight UTC."""
    if not text:
        return None
    text = text.strip()
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        except ValueError as exc:
            raise InvalidInput(f"{text!r} is not a date (2026-11-22)", field=field) from exc
    return parse_time(text, field=field)


def _window(request: Request, now: datetime) -> tuple[datetime, datetime]:
    end = _when(request.query_params.get("to"), "to") or now
    start = _when(request.query_params.get("from"), "from") or end - DEFAULT_WINDOW
    if end <= start:
        raise InvalidInput("'to' must come after 'from'", field="to")
    return start, end


def _svg(data: bytes) -> Response:
    return Response(
        data,
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


def analytics_pages(p: AnalyticsPages) -> list[BaseRoute]:
    """The ``/console/analytics`` routes."""
    ctx = p.console
    a = p.analytics

    def query(start: datetime, end: datetime, **more: str) -> str:
        return urlencode({"from": start.isoformat(), "to": end.isoformat(), **more})

    async def overview(request: Request) -> Response:
        user = _staff(ctx, request)
        start, end = _window(request, ctx.clock())
        growth = a.growth(start, end)
        scores = a.influence(start, end)
        ours = sorted(
            ((c, acc, s) for (c, acc), s in scores.items() if acc.lower().lstrip("@") not in a.others),
            key=lambda r: (r[0], r[1]),
        )
        return _page(
            ctx, request, "analytics.html", user=user, start=start, end=end, q=query(start, end),
            growth=growth, engagement=a.channel_engagement(start, end), top_posts=a.top_posts(start, end),
            influence=ours, best=a.best_times(), weekdays=WEEKDAYS, last=a.last, tz=a.tz,
            tags=a.tracking.tags,
        )  # fmt: skip

    async def campaign(request: Request) -> Response:
        user = _staff(ctx, request)
        start, end = _window(request, ctx.clock())
        tag = request.query_params.get("campaign", "")
        bucket = request.query_params.get("bucket", "hour")
        report = a.campaign_report(tag, start, end, bucket=bucket, now=ctx.clock())
        return _page(
            ctx, request, "analytics_campaign.html", user=user, r=report, v=report.view,
            q=query(start, end, campaign=report.tag, bucket=bucket),
        )  # fmt: skip

    async def post_life(request: Request) -> Response:
        user = _staff(ctx, request)
        post_id = request.path_params["post_id"]
        samples = a.post_samples(post_id)
        if not samples:
            raise NotFound(f"no counters collected for post {post_id!r} yet")
        return _page(ctx, request, "analytics_post.html", user=user, post_id=post_id, samples=samples)

    async def chart(request: Request) -> Response:
        _staff(ctx, request)
        name = request.path_params["name"]
        start, end = _window(request, ctx.clock())
        if name == "growth":
            data = await asyncio.to_thread(
                charts.growth_chart, a.follower_curves(start, end), title="Followers per network", fmt="svg"
            )
        elif name == "sentiment":
            tag = request.query_params.get("campaign") or None
            rows = a.store.sentiment_counts(start, end, bucket="day", tag=tag)
            data = await asyncio.to_thread(charts.sentiment_chart, rows, fmt="svg")
        elif name == "campaign":
            view = a.campaign_view(
                request.query_params.get("campaign", ""), start, end,
                bucket=request.query_params.get("bucket", "hour"),
            )  # fmt: skip
            data = await asyncio.to_thread(charts.campaign_chart, view, fmt="svg")
        elif name == "post":
            samples = a.post_samples(request.query_params.get("post", ""))
            data = await asyncio.to_thread(charts.post_life_chart, samples, fmt="svg")
        else:
            raise NotFound(f"no chart named {name!r}")
        return _svg(data)

    async def report(request: Request) -> Response:
        _staff(ctx, request)
        start, end = _window(request, ctx.clock())
        fmt = request.path_params["fmt"]
        if fmt not in ("html", "pdf"):
            raise NotFound(f"no report as {fmt!r}: html or pdf")
        built = a.campaign_report(
            request.query_params.get("campaign", ""), start, end,
            bucket=request.query_params.get("bucket", "hour"), now=ctx.clock(),
        )  # fmt: skip
        name = f"report-{built.tag}-{start:%Y%m%d}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "pdf":
            return Response(
                await asyncio.to_thread(render_pdf, built), media_type="application/pdf", headers=headers
            )
        body = await asyncio.to_thread(render_html, built)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    async def collect(request: Request) -> Response:
        _staff(ctx, request)
        await _form(request)
        await a.collect(ctx.clock())
        return RedirectResponse("/console/analytics", status_code=303)

    async def apply_best(request: Request) -> Response:
        user = _staff(ctx, request)
        await _form(request)
        a.apply_best_times(user)
        return RedirectResponse("/console/calendar", status_code=303)

    w = _wrap
    return [
        Route("/console/analytics", w(ctx, overview)),
        Route("/console/analytics/campaign", w(ctx, campaign)),
        Route("/console/analytics/posts/{post_id}", w(ctx, post_life)),
        Route("/console/analytics/chart/{name}.svg", w(ctx, chart)),
        Route("/console/analytics/report.{fmt:str}", w(ctx, report)),
        Route("/console/analytics/collect", w(ctx, collect), methods=["POST"]),
        Route("/console/analytics/best-times", w(ctx, apply_best), methods=["POST"]),
    ]
