"""The analytics part of the ground API: figures as JSON, exports as CSV or JSON, collection on demand.

Every route needs a console account (``Authorization: Bearer``): reading needs the editor or
approver role, collecting and changing the calendar need the editor role. Windows are given as
``from``/``to`` ISO 8601 times with an offset; without them a route covers the last 30 days.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from proxima.analytics.report import report_to_json
from proxima.errors import InvalidInput
from proxima.ground.accounts import Role, require
from proxima.ground.api import api_handler, bearer_account
from proxima.ground.calendar import parse_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from proxima.analytics.service import AnalyticsService
    from proxima.ground.accounts import Account

__all__ = ["DEFAULT_WINDOW", "EXPORT_KINDS", "analytics_routes", "jsonable", "window"]

DEFAULT_WINDOW: Final = timedelta(days=30)
EXPORT_KINDS: Final = ("followers", "posts", "mentions")


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as JSON values (times in ISO 8601)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def window(params: Any, now: datetime, *, default: timedelta = DEFAULT_WINDOW) -> tuple[datetime, datetime]:
    """``from``/``to`` query parameters (``to`` defaults to now, ``from`` to ``default`` before it)."""
    end_text = params.get("to")
    end = parse_time(end_text, field="to") if end_text else now
    start_text = params.get("from")
    start = parse_time(start_text, field="from") if start_text else end - default
    if end <= start:
        raise InvalidInput("'to' must come after 'from'", field="to")
    return start, end


class _Routes:
    def __init__(self, analytics: AnalyticsService, clock: Callable[[], datetime]) -> None:
        self.analytics = analytics
        self.clock = clock

    def staff(self, request: Request) -> Account:
        account = bearer_account(self.analytics.ground, request, now=self.clock())
        require(account, Role.EDITOR, Role.APPROVER)
        return account

    def editor(self, request: Request) -> Account:
        account = bearer_account(self.analytics.ground, request, now=self.clock())
        require(account, Role.EDITOR)
        return account

    async def overview(self, request: Request) -> Response:
        self.staff(request)
        start, end = window(request.query_params, self.clock())
        a = self.analytics
        last = a.last.as_json() if a.last is not None else None
        return JSONResponse(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "growth": jsonable(a.growth(start, end)),
                "followers": {
                    c: [[t.isoformat(), n] for t, n in pts]
                    for c, pts in a.follower_curves(start, end).items()
                },
                "engagement": jsonable(a.channel_engagement(start, end)),
                "top_posts": jsonable(a.top_posts(start, end)),
                "sentiment": jsonable(a.store.sentiment_counts(start, end, bucket="day")),
                "last_collection": last,
            }
        )

    def _campaign_args(self, request: Request) -> tuple[str, datetime, datetime, str]:
        tag = request.query_params.get("campaign", "")
        start, end = window(request.query_params, self.clock())
        return tag, start, end, request.query_params.get("bucket", "hour")

    async def campaign(self, request: Request) -> Response:
        self.staff(request)
        tag, start, end, bucket = self._campaign_args(request)
        return JSONResponse(jsonable(self.analytics.campaign_view(tag, start, end, bucket=bucket)))

    async def report(self, request: Request) -> Response:
        self.staff(request)
        tag, start, end, bucket = self._campaign_args(request)
        report = self.analytics.campaign_report(tag, start, end, bucket=bucket, now=self.clock())
        return JSONResponse(report_to_json(report))

    async def post(self, request: Request) -> Response:
        self.staff(request)
        post_id = request.path_params["post_id"]
        samples = self.analytics.post_samples(post_id)
        return JSONResponse({"post_id": post_id, "samples": jsonable(samples)})

    async def influence(self, request: Request) -> Response:
        self.staff(request)
        start, end = window(request.query_params, self.clock())
        scores = self.analytics.influence(start, end)
        rows = [{"channel": c, "account": a, **jsonable(s)} for (c, a), s in scores.items()]
        rows.sort(key=lambda r: (-r["score"], r["channel"], r["account"]))
        return JSONResponse({"from": start.isoformat(), "to": end.isoformat(), "scores": rows})

    async def best_times(self, request: Request) -> Response:
        self.staff(request)
        return JSONResponse({"tz": self.analytics.tz, "channels": jsonable(self.analytics.best_times())})

    async def apply_best_times(self, request: Request) -> Response:
        account = self.editor(request)
        slots = self.analytics.apply_best_times(account)
        made = [
            {"id": s.id, "channel": s.channel, "weekday": s.weekday, "time": s.time, "tz": s.tz}
            for s in slots
        ]
        return JSONResponse({"slots": made}, status_code=201 if made else 200)

    async def mentions(self, request: Request) -> Response:
        self.staff(request)
        start, end = window(request.query_params, self.clock())
        try:
            limit = min(1000, max(1, int(request.query_params.get("limit", "100"))))
        except ValueError as exc:
            raise InvalidInput("must be a whole number", field="limit") from exc
        tag = request.query_params.get("tag")
        found = self.analytics.store.mentions(tag=tag or None, start=start, end=end, limit=limit)
        return JSONResponse({"mentions": jsonable(found)})

    async def export(self, request: Request) -> Response:
        self.staff(request)
        kind = request.query_params.get("kind", "")
        if kind not in EXPORT_KINDS:
            raise InvalidInput(f"{kind!r} is not one of {', '.join(EXPORT_KINDS)}", field="kind")
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "json"):
            raise InvalidInput(f"{fmt!r} is not csv or json", field="format")
        start, end = window(request.query_params, self.clock())
        rows = list(self.analytics.store.export(kind, start, end))  # type: ignore[arg-type]
        name = f"proxima-{kind}-{start:%Y%m%d}-{end:%Y%m%d}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "json":
            body = json.dumps({"kind": kind, "from": start.isoformat(), "to": end.isoformat(), "rows": rows})
            return Response(body, media_type="application/json", headers=headers)
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    async def collect(self, request: Request) -> Response:
        self.editor(request)
        report = await self.analytics.collect(self.clock())
        return JSONResponse(report.as_json())


def _cell(value: object) -> object:
    """A CSV cell: lists as space-separated words, formula-looking text defused."""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def analytics_routes(analytics: AnalyticsService, *, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """The ``/api/analytics/...`` routes."""
    r = _Routes(analytics, clock)
    w = api_handler
    return [
        Route("/api/analytics/overview", w(r.overview)),
        Route("/api/analytics/campaign", w(r.campaign)),
        Route("/api/analytics/report", w(r.report)),
        Route("/api/analytics/posts/{post_id}", w(r.post)),
        Route("/api/analytics/influence", w(r.influence)),
        Route("/api/analytics/best-times", w(r.best_times)),
        Route("/api/analytics/best-times/apply", w(r.apply_best_times), methods=["POST"]),
        Route("/api/analytics/mentions", w(r.mentions)),
        Route("/api/analytics/export", w(r.export)),
        Route("/api/analytics/collect", w(r.collect), methods=["POST"]),
    ]
