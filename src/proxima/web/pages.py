"""Public pages around the ground service: the mission's timeline, "verify a photo", "ask the crew".

The verification page is where every published post links (``/verify/CODE``): it shows who
signed the post and lets anyone upload a photo to check it is the one the crew signed (the fake
space selfie of January 2017 fails here with both hashes). Forms carry the session's CSRF token
and are rate limited per client; every text is escaped by the templates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from proxima.errors import GroundError, InvalidInput, RateLimited, VerificationError
from proxima.ground import questions
from proxima.ground.api import client_key
from proxima.outreach.provenance import decode_signed_post, normalize_code, verify_published
from proxima.web.console import _form, csrf_token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.templating import Jinja2Templates

    from proxima.ground.ratelimit import RateLimiter
    from proxima.ground.service import GroundService

__all__ = ["MAX_PHOTO_BYTES", "PagesContext", "page_routes"]

MAX_PHOTO_BYTES = 32 * 1024 * 1024


@dataclass
class PagesContext:
    """What the public pages need."""

    service: GroundService
    templates: Jinja2Templates
    clock: Callable[[], datetime]
    limiter: RateLimiter


def page_routes(ctx: PagesContext) -> list[BaseRoute]:
    """``/timeline``, ``/verify``, ``/verify/{code}``, ``/ask``."""
    svc = ctx.service

    def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
        return ctx.templates.TemplateResponse(
            request, f"pages/{name}", {"csrf": csrf_token(request), **values}, status_code=status
        )

    def wrap(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RateLimited as exc:
                return page(request, "message.html", 429, title="Too many requests", message=str(exc))
            except GroundError as exc:
                return page(request, "message.html", exc.status, title="Refused", message=str(exc))
            except VerificationError as exc:  # e.g. the signer's key was withdrawn from the keyring
                message = f"this post's signature cannot be checked any more: {exc}"
                return page(request, "message.html", 409, title="Cannot verify", message=message)

        return run

    async def timeline(request: Request) -> Response:
        posts = svc.list_posts(state="published", limit=100)
        return page(request, "timeline.html", posts=posts)

    async def verify_form(request: Request) -> Response:
        code = request.query_params.get("code")
        if code:
            return _redirect(f"/verify/{normalize_code(code)}")
        return page(request, "verify.html", post=None, result=None, code="")

    def _checked(
        code: str, media: bytes | None, name: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        signed = decode_signed_post(svc.signed_post(code))
        try:
            verified, ref = verify_published(code, signed, svc.keyring, media, name)
        except VerificationError as exc:
            if media is None:
                raise
            verified, _ = verify_published(code, signed, svc.keyring)
            post = _describe(verified, svc.published_text(verified.code))
            return post, {"authentic": False, "reason": str(exc), "failure": exc.failure}
        post = _describe(verified, svc.published_text(verified.code))
        result = None if ref is None else {"authentic": True, "name": ref.name, "sha256": ref.sha256_hex}
        return post, result

    async def verify(request: Request) -> Response:
        code = normalize_code(request.path_params["code"])
        post, _ = _checked(code, None, None)
        return page(request, "verify.html", post=post, result=None, code=code)

    async def verify_upload(request: Request) -> Response:
        ctx.limiter.check("verify:" + client_key(request), time.time())
        code = normalize_code(request.path_params["code"])
        declared = request.headers.get("content-length", "0")
        if not declared.isascii() or not declared.isdigit() or int(declared) > MAX_PHOTO_BYTES + 65536:
            raise InvalidInput(f"the photo is larger than {MAX_PHOTO_BYTES} bytes", field="photo", status=413)
        form = await request.form(max_files=1, max_fields=8, max_part_size=MAX_PHOTO_BYTES)
        try:
            await _form(request)  # the CSRF check, on the form parsed just above
            upload = form.get("photo")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("choose a photo file to check", field="photo")
            data = await upload.read(MAX_PHOTO_BYTES + 1)
        finally:
            await form.close()
        if not data:
            raise InvalidInput("the file is empty", field="photo")
        if len(data) > MAX_PHOTO_BYTES:
            raise InvalidInput(f"the photo is larger than {MAX_PHOTO_BYTES} bytes", field="photo", status=413)
        post, result = _checked(code, data, None)
        return page(request, "verify.html", post=post, result=result, code=code)

    async def ask_form(request: Request) -> Response:
        return page(request, "ask.html", done=None, error=None, values={})

    async def ask(request: Request) -> Response:
        form = await _form(request)
        values = {k: form.get(k, "") for k in ("text", "lang", "name")}
        try:
            with svc.sessions.begin() as s:
                q = questions.submit_question(
                    s,
                    ctx.limiter,
                    client=client_key(request),
                    text=values["text"],
                    lang=values["lang"] or "fr",
                    name=values["name"] or None,
                    now=ctx.clock(),
                )
                done = q.id
        except InvalidInput as exc:
            return page(request, "ask.html", 400, done=None, error=str(exc), values=values)
        return page(request, "ask.html", 201, done=done, error=None, values={})

    return [
        Route("/timeline", wrap(timeline)),
        Route("/verify", wrap(verify_form)),
        Route("/verify/{code}", wrap(verify), methods=["GET"]),
        Route("/verify/{code}", wrap(verify_upload), methods=["POST"]),
        Route("/ask", wrap(ask_form), methods=["GET"]),
        Route("/ask", wrap(ask), methods=["POST"]),
    ]


def _describe(verified: Any, published: dict[str, str]) -> dict[str, Any]:
    post = verified.post
    return {
        "id": post.id,
        "author": post.author,
        "signer": verified.signer,
        "key_id": verified.key_id,
        "code": verified.code,
        "text": dict(post.text),
        "published_text": published,
        "edited": published != dict(post.text),
        "media": [{"name": m.name, "sha256": m.sha256_hex, "size": m.size} for m in post.media],
    }


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)
