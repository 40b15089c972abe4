"""Analytics beside a running ground service: its store, its collectors, its routes and its schedule.

:class:`AnalyticsRuntime` is handed the ground service and its channels once they are open
(:meth:`attach`), builds one collector per channel that has an API to ask (Mastodon, Bluesky,
the mission's ActivityPub actor; Atom and webhooks give nothing back), and collects every
``interval_s`` mission seconds until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from proxima.analytics.api import analytics_routes
from proxima.analytics.classify import Classifier
from proxima.analytics.collect import (
    ActivityPubCollector,
    BlueskyCollector,
    MastodonCollector,
    Tracking,
)
from proxima.analytics.service import AnalyticsService
from proxima.analytics.store import AnalyticsStore
from proxima.errors import ConfigError
from proxima.ground.config import AnalyticsConfig

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from starlette.routing import BaseRoute

    from proxima.analytics.collect import Collector
    from proxima.ground.channels.base import Channel
    from proxima.ground.config import ChannelConfig, GroundConfig
    from proxima.ground.service import GroundService

__all__ = ["AnalyticsRuntime", "analytics_config", "build_collectors"]

log = logging.getLogger(__name__)


def analytics_config(config: GroundConfig) -> AnalyticsConfig:
    """The ``[analytics]`` table, or its defaults: a DuckDB file beside the ground database."""
    if config.analytics is not None:
        return config.analytics
    url = make_url(config.database)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        where = Path(url.database).parent
    else:
        where = config.media_dir.parent
    return AnalyticsConfig(database=where / "analytics.duckdb")


def _own_handle(cfg: ChannelConfig) -> str | None:
    o = cfg.options
    if cfg.kind == "bluesky":
        return str(o.get("identifier", "")).lower() or None
    if cfg.kind == "activitypub":
        return str(o.get("username", "proxima")).lower()
    return None


def build_collectors(
    config: GroundConfig,
    channels: Mapping[str, Channel],
    classifier: Classifier,
    *,
    tracked: tuple[str, ...] = (),
) -> dict[str, Collector]:
    """One collector per configured channel whose network answers questions about it."""
    out: dict[str, Collector] = {}
    for cfg in config.channels:
        o = cfg.options
        if cfg.kind == "mastodon":
            out[cfg.name] = MastodonCollector(
                cfg.name, o["api_base_url"], o["access_token"], classifier, tracked_accounts=tracked
            )
        elif cfg.kind == "bluesky":
            out[cfg.name] = BlueskyCollector(
                cfg.name, o["pds_url"], o["identifier"], o["password"], classifier, tracked_accounts=tracked
            )
        elif cfg.kind == "activitypub" and cfg.name in channels:
            from proxima.ground.channels.activitypub import ActivityPubChannel

            channel = channels[cfg.name]
            if isinstance(channel, ActivityPubChannel):
                out[cfg.name] = ActivityPubCollector(channel, classifier)
    return out


class AnalyticsRuntime:
    """The analytics store, service and collection loop of one ground service."""

    def __init__(
        self,
        config: GroundConfig,
        *,
        clock: Callable[[], datetime],
        collectors: Mapping[str, Collector] | None = None,
    ) -> None:
        self.config = config
        self.settings = analytics_config(config)
        self.clock = clock
        self._given = collectors
        self.service: AnalyticsService | None = None
        self._task: asyncio.Task[None] | None = None

    def routes(self, ground: GroundService, channels: Mapping[str, Channel]) -> list[BaseRoute]:
        """Open the store and the collectors for ``ground``; the API routes over them."""
        self.attach(ground, channels)
        if self.service is None:
            raise ConfigError("analytics is not attached")
        return analytics_routes(self.service, clock=self.clock)

    def attach(self, ground: GroundService, channels: Mapping[str, Channel]) -> AnalyticsService:
        """Open the store and build the collectors (once)."""
        if self.service is not None:
            return self.service
        s = self.settings
        s.database.parent.mkdir(parents=True, exist_ok=True)
        store = AnalyticsStore(s.database)
        classifier = Classifier()
        if self._given is not None:
            collectors = dict(self._given)
        else:
            collectors = build_collectors(self.config, channels, classifier, tracked=s.accounts)
        own = {h for cfg in self.config.channels if (h := _own_handle(cfg)) is not None}
        tracking = Tracking(accounts=tuple(sorted(own | set(s.accounts))), tags=s.tags, keywords=s.keywords)
        self.service = AnalyticsService(
            store, ground, collectors=collectors, tracking=tracking, others=frozenset(s.accounts), tz=s.tz
        )
        return self.service

    def start(self) -> None:
        """Collect now and then every ``interval_s`` mission seconds."""
        if self._task is None and self.service is not None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        service = self.service
        if service is None:
            return
        pause = self.settings.interval_s / max(self.config.clock_speed, 1e-9)
        while True:
            try:
                await service.collect(self.clock())
            except Exception:  # one failed round must not end collection
                log.exception("analytics collection")
            await asyncio.sleep(pause)

    async def stop(self) -> None:
        """Stop collecting, close the collectors and the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.service is not None:
            for collector in self.service.collectors.values():
                await collector.close()
            self.service.store.close()
            self.service = None
