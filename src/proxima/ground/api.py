"""The ground service's HTTP JSON API (Starlette), and the channels' own public routes.

Console endpoints need ``Authorization: Bearer <token>`` (``POST /api/login`` gives one) and the
role each step needs; public ones (timeline, verification, questions) need nothing and are rate
limited per client. Every error is ``{"error": message, "field": ...}`` with the status of the
:class:`~proxima.errors.GroundError` raised (404, 403, 409, 400, 429...). Texts are returned as
the JSON strings they are; whatever shows them as HTML escapes them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from proxima.errors import (
    EnvelopeError,
    Forbidden,
    GroundError,
    InvalidInput,
    NotFound,
    RateLimited,
    VerificationError,
)
from proxima.ground import accounts, questions
from proxima.ground.calendar import parse_time
from proxima.ground.openapi import openapi_document
from proxima.ground.ratelimit import RateLimiter
from proxima.outreach.provenance import decode_signed_post, normalize_code, verify_published

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from starlette.middleware import Middleware

    from proxima.ground.service import GroundService

__all__ = [
    "MAX_BODY_BYTES", "MAX_VERIFY_BYTES", "RASTER_TYPES", "api_handler", "bearer_account", "build_app",
    "client_key", "media_response",
]  # fmt: skip

MAX_BODY_BYTES = 256 * 1024
"""Largest JSON request body."""
MAX_VERIFY_BYTES = 64 * 1024 * 1024
"""Largest file accepted by the public photo check."""

Handler = Callable[[Request], Awaitable[Response]]


_WEEK = timedelta(days=7)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Api:
    def __init__(
        self,
        service: GroundService,
        *,
        clock: Callable[[], datetime],
        question_limiter: RateLimiter,
        login_limiter: RateLimiter,
        crew_endpoint: str | None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.questions = question_limiter
        self.logins = login_limiter
        self.crew_endpoint = crew_endpoint

    # ------------------------------------------------------------ plumbing

    @staticmethod
    async def capped(request: Request, limit: int) -> bytes:
        """The request body, refused (413) as soon as it passes ``limit`` bytes, never read whole first."""
        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isascii() or not declared.isdigit() or int(declared) > limit
        ):
            raise InvalidInput(
                f"request body of {declared[:20]} bytes, at most {limit}", field="body", status=413
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidInput(f"request body over {limit} bytes", field="body", status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def body(self, request: Request) -> dict[str, Any]:
        raw = await self.capped(request, MAX_BODY_BYTES)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"the body is not JSON: {exc}", field="body") from exc
        if not isinstance(value, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        return value

    def staff(self, request: Request) -> accounts.Account:
        """The logged-in account, if it may read the console (editor, approver or admin)."""
        account = self.account(request)
        accounts.require(account, accounts.Role.EDITOR, accounts.Role.APPROVER)
        return account

    def account(self, request: Request) -> accounts.Account:
        return bearer_account(self.service, request, now=self.clock())

    @staticmethod
    def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
        value = body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise InvalidInput("must be text", field=name)
        return value

    # ------------------------------------------------------------ login

    async def login(self, request: Request) -> Response:
        self.logins.check(client_key(request), time.time())  # real time, whatever the mission clock
        body = await self.body(request)
        handle = self.text_field(body, "handle") or ""
        password = self.text_field(body, "password") or ""
        now = self.clock()
        with self.service.sessions.begin() as s:
            account = accounts.authenticate(s, handle, password, now=now)
            token = accounts.issue_token(s, account, "api login", now=now)
            roles = sorted(str(r) for r in account.roles)
        return JSONResponse({"token": token, "handle": handle, "roles": roles})

    # ------------------------------------------------------------ posts

    async def list_posts(self, request: Request) -> Response:
        self.staff(request)
        state = request.query_params.get("state")
        campaign = request.query_params.get("campaign")
        return JSONResponse({"posts": self.service.list_posts(state=state, campaign=campaign)})

    async def draft(self, request: Request) -> Response:
        account = self.account(request)
        body = await self.body(request)
        for name, kind in (("text", dict), ("hashtags", list), ("channels", list)):
            if body.get(name) is not None and not isinstance(body[name], kind):
                raise InvalidInput(f"must be a JSON {'object' if kind is dict else 'array'}", field=name)
        row = self.service.draft(
            account,
            author=self.text_field(body, "author") or "",
            text=body.get("text") or {},
            hashtags=body.get("hashtags") or [],
            campaign=self.text_field(body, "campaign", required=False),
            channels=body.get("channels"),
            now=self.clock(),
        )
        return JSONResponse(self.service.show(row.id), status_code=201)

    async def show_post(self, request: Request) -> Response:
        self.staff(request)
        return JSONResponse(self.service.show(request.path_params["post_id"]))

    async def media(self, request: Request) -> Response:
        self.staff(request)
        info = self.service.show(request.path_params["post_id"])
        name = request.path_params["name"]
        for m in info["media"]:
            if m["name"] == name and m["state"] == "complete":
                return media_response(self.service.media_path(m["sha256"]), m["content_type"], m["name"])
        raise NotFound(f"post {info['id']} has no complete media file {name!r}")

    async def step(self, request: Request) -> Response:
        account = self.account(request)
        post_id = request.path_params["post_id"]
        action = request.path_params["action"]
        body = await self.body(request)
        now = self.clock()
        svc = self.service
        if action == "approve":
            svc.approve(post_id, account, now=now)
        elif action == "reject":
            svc.reject(post_id, account, self.text_field(body, "reason") or "", now=now)
        elif action == "request-changes":
            svc.request_changes(post_id, account, self.text_field(body, "note") or "", now=now)
        elif action == "edit":
            for name, kind in (("text", dict), ("hashtags", list), ("channels", list), ("alt", dict)):
                if body.get(name) is not None and not isinstance(body[name], kind):
                    raise InvalidInput(f"must be a JSON {'object' if kind is dict else 'array'}", field=name)
            svc.edit(
                post_id,
                account,
                now=now,
                text=body.get("text"),
                hashtags=body.get("hashtags"),
                channels=body.get("channels"),
                alt=body.get("alt"),
                note=self.text_field(body, "note", required=False),
            )
        elif action == "schedule":
            at_text = self.text_field(body, "at", required=False)
            at = (
                None
                if at_text is None
                else parse_time(at_text, tz=self.text_field(body, "tz", required=False))
            )
            svc.schedule(post_id, account, at, now=now)
        elif action == "unschedule":
            svc.unschedule(post_id, account, now=now)
        else:
            raise NotFound(
                f"no action {action!r} (approve, reject, request-changes, edit, schedule, unschedule)"
            )
        return JSONResponse(svc.show(post_id))

    # ------------------------------------------------------------ calendar

    async def calendar(self, request: Request) -> Response:
        self.staff(request)
        now = self.clock()
        start = parse_time(request.query_params.get("from", now.isoformat()), field="from")
        end_text = request.query_params.get("to")
        end = parse_time(end_text, field="to") if end_text else start.replace(microsecond=0) + _WEEK
        if end <= start:
            raise InvalidInput("'to' must come after 'from'", field="to")
        items = self.service.calendar_view(start, end, campaign=request.query_params.get("campaign"))
        return JSONResponse({"from": start.isoformat(), "to": end.isoformat(), "items": items})

    async def add_slot(self, request: Request) -> Response:
        account = self.account(request)
        body = await self.body(request)
        weekday = body.get("weekday")
        if weekday is not None and type(weekday) is not int:
            raise InvalidInput("must be 0 (Monday) to 6 (Sunday) or null", field="weekday")
        slot = self.service.add_slot(
            account,
            channel=self.text_field(body, "channel") or "",
            time_of_day=self.text_field(body, "time") or "",
            tz=self.text_field(body, "tz") or "",
            weekday=weekday,
            campaign=self.text_field(body, "campaign", required=False),
            label=self.text_field(body, "label", required=False),
        )
        return JSONResponse({"id": slot.id}, status_code=201)

    async def refusals(self, request: Request) -> Response:
        self.staff(request)
        return JSONResponse({"refusals": self.service.refusals()})

    # ------------------------------------------------------------ public

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.service.base_url))

    async def timeline(self, request: Request) -> Response:
        posts = self.service.list_posts(state="published")
        public = [
            {
                k: p[k]
                for k in ("id", "author", "created_at", "text", "hashtags", "campaign", "code", "verify_url")
            }
            | {"links": {d["channel"]: d["url"] for d in p["deliveries"] if d["url"]}}
            for p in posts
        ]
        return JSONResponse({"posts": public})

    async def verify_info(self, request: Request) -> Response:
        code = normalize_code(request.path_params["code"])
        signed = decode_signed_post(self.service.signed_post(code))
        verified, _ = verify_published(code, signed, self.service.keyring)
        post = verified.post
        return JSONResponse(
            {
                "code": verified.code,
                "authentic": True,
                "signer": verified.signer,
                "key_id": verified.key_id,
                "post": post.id,
                "author": post.author,
                "text": dict(post.text),
                "published_text": self.service.published_text(verified.code),
                "media": [{"name": m.name, "sha256": m.sha256_hex, "size": m.size} for m in post.media],
                "signed_post": f"{self.service.base_url}/api/verify/{verified.code}/signed",
            }
        )

    async def verify_signed(self, request: Request) -> Response:
        code = normalize_code(request.path_params["code"])
        return Response(self.service.signed_post(code), media_type="application/cbor")

    async def verify_media(self, request: Request) -> Response:
        self.questions.check("verify:" + client_key(request), time.time())
        code = normalize_code(request.path_params["code"])
        signed = decode_signed_post(self.service.signed_post(code))
        data = await self.capped(request, MAX_VERIFY_BYTES)
        if not data:
            raise InvalidInput("send the photo's bytes as the request body", field="body")
        try:
            verified, ref = verify_published(
                code, signed, self.service.keyring, data, request.query_params.get("name")
            )
        except VerificationError as exc:
            return JSONResponse({"authentic": False, "failure": exc.failure, "reason": str(exc)})
        return JSONResponse(
            {
                "authentic": True,
                "signer": verified.signer,
                "name": None if ref is None else ref.name,
                "sha256": None if ref is None else ref.sha256_hex,
            }
        )

    async def ask(self, request: Request) -> Response:
        body = await self.body(request)
        now = self.clock()
        with self.service.sessions.begin() as s:
            q = questions.submit_question(
                s,
                self.questions,
                client=client_key(request),
                text=self.text_field(body, "text") or "",
                lang=self.text_field(body, "lang") or "",
                name=self.text_field(body, "name", required=False),
                now=now,
            )
            return JSONResponse({"id": q.id, "state": q.state}, status_code=201)

    # ------------------------------------------------------------ questions (console)

    async def list_questions(self, request: Request) -> Response:
        self.staff(request)
        state = request.query_params.get("state")
        with self.service.sessions() as s:
            rows = questions.list_questions(s, state=state)
            return JSONResponse({"questions": [questions.question_to_json(q) for q in rows]})

    async def moderate(self, request: Request) -> Response:
        account = self.account(request)
        body = await self.body(request)
        approve = body.get("approve")
        if type(approve) is not bool:
            raise InvalidInput("must be true or false", field="approve")
        with self.service.sessions.begin() as s:
            q = questions.moderate(
                s,
                request.path_params["question_id"],
                approve=approve,
                moderator=account,
                reason=self.text_field(body, "reason", required=False),
                now=self.clock(),
            )
            return JSONResponse(questions.question_to_json(q))

    async def select(self, request: Request) -> Response:
        account = self.account(request)
        body = await self.body(request)
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise InvalidInput("give a non-empty list of question ids", field="ids")
        if self.crew_endpoint is None:
            raise InvalidInput("this ground service has no crew endpoint configured", field="crew_endpoint")
        out = self.service.select_questions(ids, account, destination=self.crew_endpoint, now=self.clock())
        return JSONResponse({"selected": out})


def client_key(request: Request) -> str:
    """An opaque key of the requesting client (a hash of its address), for rate limits and records."""
    host = request.client.host if request.client else "unknown"
    return hashlib.sha256(host.encode()).hexdigest()[:32]


RASTER_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def media_response(path: Path, content_type: str, name: str) -> Response:
    """A stored crew media file for staff eyes: raster images inline, anything else (SVG, video,
    audio) as a download; never sniffed, and sandboxed so a crafted file cannot run script."""
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
    if content_type not in RASTER_TYPES:
        safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-") or "media"
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return FileResponse(path, media_type=content_type, headers=headers)


def bearer_account(service: GroundService, request: Request, *, now: datetime) -> accounts.Account:
    """The account whose API token the request carries (401 when none or unknown)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Forbidden("log in first: send Authorization: Bearer <token>", status=401)
    with service.sessions.begin() as s:
        return accounts.account_for_token(s, token.strip(), now=now)


def api_handler(handler: Handler) -> Handler:
    """``handler`` with the API's errors turned into their JSON answers and statuses."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except RateLimited as exc:
            return JSONResponse(
                {"error": str(exc)},
                status_code=429,
                headers={"Retry-After": str(max(1, round(exc.retry_after)))},
            )
        except GroundError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status)
        except VerificationError as exc:
            return JSONResponse({"error": str(exc), "failure": exc.failure}, status_code=422)
        except EnvelopeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    return run


def build_app(
    service: GroundService,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    clock: Callable[[], datetime] = _utcnow,
    crew_endpoint: str | None = None,
    question_limiter: RateLimiter | None = None,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """The ground service's Starlette application (API under ``/api``, channels' routes at the root)."""
    api = _Api(
        service,
        clock=clock,
        question_limiter=question_limiter
        if question_limiter is not None
        else RateLimiter(rate_per_s=1 / 60, burst=5, max_clients=100_000),
        login_limiter=RateLimiter(rate_per_s=1 / 10, burst=10, max_clients=100_000),
        crew_endpoint=crew_endpoint,
    )
    w = api_handler
    routes: list[BaseRoute] = [
        Route("/api/openapi.json", w(api.openapi)),
        Route("/api/login", w(api.login), methods=["POST"]),
        Route("/api/posts", w(api.list_posts), methods=["GET"]),
        Route("/api/posts", w(api.draft), methods=["POST"]),
        Route("/api/posts/{post_id}", w(api.show_post)),
        Route("/api/posts/{post_id}/media/{name}", w(api.media)),
        Route("/api/posts/{post_id}/{action}", w(api.step), methods=["POST"]),
        Route("/api/calendar", w(api.calendar)),
        Route("/api/slots", w(api.add_slot), methods=["POST"]),
        Route("/api/refusals", w(api.refusals)),
        Route("/api/timeline", w(api.timeline)),
        Route("/api/verify/{code}", w(api.verify_info)),
        Route("/api/verify/{code}/signed", w(api.verify_signed)),
        Route("/api/verify/{code}/media", w(api.verify_media), methods=["POST"]),
        Route("/api/questions", w(api.ask), methods=["POST"]),
        Route("/api/questions", w(api.list_questions), methods=["GET"]),
        Route("/api/questions/select", w(api.select), methods=["POST"]),
        Route("/api/questions/{question_id}/moderate", w(api.moderate), methods=["POST"]),
        *extra_routes,
    ]
    return Starlette(routes=routes, middleware=list(middleware))
