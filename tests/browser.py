"""Debian's chromium driven by Playwright, and a web application running for it on loopback.

The browser is the machine's own (``/usr/bin/chromium``, installed by ``scripts/check``), started
headless with the flags a closed network needs. Screenshots go to ``$PROXIMA_ARTIFACTS`` (default
``build/screenshots``) so CI keeps them and the README can show them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.async_api import Browser, Page, async_playwright

from ground_helpers import PASSWORD, Crew
from proxima.demo import free_port
from proxima.ground import accounts
from proxima.ground.config import ChannelConfig, GroundConfig
from proxima.runtime.keys import save_public_key
from proxima.web.app import WebApp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(
    os.environ.get("PROXIMA_ARTIFACTS", Path(__file__).resolve().parent.parent / "build" / "screenshots")
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def have_chromium() -> bool:
    """Whether the machine has the browser the tests drive."""
    return os.access(CHROMIUM, os.X_OK)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless chromium."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as an artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


class Clock:
    """Real time plus an offset the test moves forward (``start``: what "now" is at first)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.offset = timedelta(0) if start is None else start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset




def web_app(tmp_path: Path, clock: Clock) -> tuple[WebApp, Crew, str]:
    """A WebApp (Atom channel only) with anne (editor) and marc (approver), and its base URL."""
    crew = Crew()
    (tmp_path / "keys").mkdir()
    save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = GroundConfig(
        database=f"sqlite:///{tmp_path / 'g.db'}",
        media_dir=tmp_path / "media",
        keyring=tmp_path / "keys",
        base_url=base,
        port=port,
        channels=(ChannelConfig("atom", "atom", {"title": "Proxima"}),),
        poll_s=0.1,
    )
    web = WebApp(config, clock=clock, allow_private_alert_targets=True)
    svc = web.runner.open()
    with svc.sessions.begin() as s:
        accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=clock())
        accounts.create_account(s, "marc", "Marc", "agency", ["approver", "editor"], PASSWORD, now=clock())
    return web, crew, base
