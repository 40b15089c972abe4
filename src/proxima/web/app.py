"""The web application: the ground service's API, the console and the public pages in one server.

:class:`WebApp` runs a :class:`~proxima.ground.runner.GroundRunner` (database, channels, DTN
endpoint, publishers) with the pages added to its Starlette application, the session middleware
(cookie signed with a key kept beside the database, made on first start, mode 0600), and the
static files shipped in this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from proxima.analytics.runtime import AnalyticsRuntime
from proxima.errors import ConfigError
from proxima.ground.ratelimit import RateLimiter
from proxima.ground.runner import GroundRunner
from proxima.web.alerts import AlertService, SenderConfig, SmtpConfig, alert_routes
from proxima.web.analytics import AnalyticsPages, analytics_pages
from proxima.web.console import ConsoleContext, console_routes
from proxima.web.pages import PagesContext, page_routes
from proxima.web.public import PublicContext, default_gazetteer, public_routes, snapshot_elements

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from starlette.types import ASGIApp, Receive, Scope, Send

    from proxima.ground.channels.base import Channel
    from proxima.ground.config import GroundConfig
    from proxima.ground.service import GroundService

__all__ = ["HERE", "WebApp", "session_secret", "templates"]

HERE = Path(__file__).parent
ALERT_PERIOD = timedelta(seconds=60)
"""How often due pass alerts are looked for (an alert may go up to this much early, never late)."""
log = logging.getLogger("proxima.web")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def templates() -> Jinja2Templates:
    """The package's templates, autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return Jinja2Templates(env=env)


def session_secret(path: Path) -> str:
    """The key signing session cookies, made on first use (readable by its owner only)."""
    try:
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key)
        return key
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read or make the session key: {exc.strerror or exc}") from exc


class BodyLimit:
    """Refuse request bodies before they are read: 411 without a length, 413 above the path's cap.

    Browsers always send ``Content-Length`` with a form; uvicorn (h11) then delivers exactly that
    many bytes, so checking the header caps what any handler may read.
    """

    def __init__(self, app: ASGIApp, *, default: int, limits: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.limits = list(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length of a request with a body, then pass it on."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for prefix, n in self.limits if path.startswith(prefix)), self.default)
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        status, message = 0, ""
        if declared is None:
            if headers.get(b"transfer-encoding"):
                status, message = 411, "send the body with a Content-Length"
        elif not declared.isdigit() or len(declared) > 15:
            status, message = 400, "unreadable Content-Length"
        elif int(declared) > limit:
            status, message = 413, f"request body of {int(declared)} bytes, at most {limit}"
        if status:
            response = JSONResponse({"error": message, "field": "body"}, status_code=status)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class WebApp:
    """The ground service with its web pages: ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        config: GroundConfig,
        *,
        clock: Callable[[], datetime] = _utcnow,
        channels: Mapping[str, Channel] | None = None,
        secure_cookies: bool = False,
        allow_private_alert_targets: bool = False,
    ) -> None:
        self.allow_private_alert_targets = allow_private_alert_targets
        self.config = config
        self.clock = clock
        self.templates = templates()
        secret = session_secret(config.media_dir.parent / "session.key")
        middleware = [
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="proxima_session",
                same_site="strict",
                https_only=secure_cookies,
                max_age=12 * 3600,
            )
        ]
        middleware.insert(
            0,
            Middleware(
                BodyLimit,
                default=2 * 1024 * 1024,
                limits=[("/verify/", 34 * 1024 * 1024), ("/api/verify/", 65 * 1024 * 1024)],
            ),
        )
        self.runner = GroundRunner(
            config, clock=clock, channels=channels, extra_routes=self._routes, middleware=middleware
        )
        self.analytics = AnalyticsRuntime(config, clock=clock)
        self.alerts: AlertService | None = None
        self._alert_task: asyncio.Task[None] | None = None

    def _routes(self, service: GroundService) -> list[BaseRoute]:
        dtn = self.config.dtn
        console = ConsoleContext(
            service=service,
            templates=self.templates,
            clock=self.clock,
            login_limiter=RateLimiter(rate_per_s=1 / 10, burst=10, max_clients=100_000),
            crew_endpoint=dtn.crew if dtn else None,
            network=self.config.network,
        )
        pages = PagesContext(
            service=service,
            templates=self.templates,
            clock=self.clock,
            limiter=RateLimiter(rate_per_s=1 / 30, burst=10, max_clients=100_000),
        )
        smtp = None
        if self.config.smtp is not None:
            smtp = SmtpConfig(**self.config.smtp)
        places = default_gazetteer()

        async def geocode(text: str) -> tuple[float, float, str | None] | None:
            found = places.search(text)
            return None if not found else (found[0].lat, found[0].lon, found[0].timezone)

        self.alerts = AlertService(
            service.sessions,
            secret=session_secret(self.config.media_dir.parent / "alerts.key").encode(),
            base_url=self.config.base_url,
            senders=SenderConfig(smtp=smtp),
            clock=self.clock,
            allow_private_targets=self.allow_private_alert_targets,
            geocode=geocode,
        )
        public = PublicContext(
            elements=snapshot_elements(), clock=self.clock, templates=self.templates, places=places
        )
        analytics = self.analytics.attach(service, self.runner.channels)
        return [
            *self.analytics.routes(service, self.runner.channels),
            *analytics_pages(AnalyticsPages(console, analytics)),
            *public_routes(public),
            *console_routes(console),
            *page_routes(pages),
            *alert_routes(self.alerts, self.templates),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]

    @property
    def port(self) -> int | None:
        """The HTTP port once started."""
        return self.runner.port

    async def start(self) -> None:
        """Open the database, start the channels, the DTN endpoint, the server and the alerts."""
        await self.runner.start()
        self.analytics.start()
        self._alert_task = asyncio.create_task(self._alert_loop())

    async def _alert_loop(self) -> None:
        while self.alerts is not None:
            try:
                await self.alerts.run_once(self.clock(), window=ALERT_PERIOD)
            except Exception:  # one bad run must not end the alerts
                log.exception("pass alerts")
            await asyncio.sleep(ALERT_PERIOD.total_seconds())

    async def stop(self) -> None:
        """Stop everything."""
        if self._alert_task is not None:
            self._alert_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alert_task
        await self.analytics.stop()
        await self.runner.stop()
