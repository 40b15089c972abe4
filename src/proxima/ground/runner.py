"""Running the ground service: database, channels, HTTP API, DTN endpoint and publisher together.

This is the runtime edge of the ground segment: it reads the clock, opens the database (migrating
it), serves the API with uvicorn, takes posts and media parts from the ground node's application
interface as they arrive, hands queued messages for the crew to the node, and publishes what is
due. Everything it decides goes through :class:`~proxima.ground.service.GroundService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import select

from proxima.client import NodeClient, parse_address
from proxima.errors import ChannelError, ConfigError, InvalidInput, MediaError, ProximaError
from proxima.ground import questions
from proxima.ground.api import build_app
from proxima.ground.calendar import SlotSpec
from proxima.ground.db import make_engine, session_factory, upgrade
from proxima.ground.media import fit_media
from proxima.ground.models import Slot
from proxima.ground.ratelimit import RateLimiter
from proxima.ground.service import GroundService
from proxima.runtime.keys import load_keyring, load_private_key

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping, Sequence

    from sqlalchemy.orm import Session, sessionmaker
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import BaseRoute

    from proxima.ground.channels.base import Channel
    from proxima.ground.config import ChannelConfig, GroundConfig
    from proxima.ground.service import DueDelivery

__all__ = ["GroundRunner", "build_channel"]

log = logging.getLogger("proxima.ground")
PUBLISH_TIMEOUT_S = 120.0
"""A channel that has not published within this long has failed this try (retried later)."""
REDELIVERY_S = 60.0
"""How often channels with their own per-server delivery queues retry (real seconds)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _opt(options: Mapping[str, Any], key: str, cfg: ChannelConfig, default: Any = ...) -> Any:
    if key in options:
        return options[key]
    if default is ...:
        raise ConfigError(f"channel {cfg.name!r} ({cfg.kind}): option {key!r} is required")
    return default


def build_channel(cfg: ChannelConfig, sessions: sessionmaker[Session], config: GroundConfig) -> Channel:
    """The channel adapter a configuration entry describes."""
    o = cfg.options
    if cfg.kind == "mastodon":
        from proxima.ground.channels.mastodon import MastodonChannel

        return MastodonChannel(
            _opt(o, "api_base_url", cfg), _opt(o, "access_token", cfg), name=cfg.name,
            visibility=_opt(o, "visibility", cfg, "public"), languages=_opt(o, "languages", cfg, None),
        )  # fmt: skip
    if cfg.kind == "bluesky":
        from proxima.ground.channels.atproto import BlueskyChannel

        return BlueskyChannel(
            _opt(o, "pds_url", cfg), _opt(o, "identifier", cfg), _opt(o, "password", cfg), name=cfg.name,
            languages=_opt(o, "languages", cfg, None), app_url=_opt(o, "app_url", cfg, "https://bsky.app"),
        )  # fmt: skip
    if cfg.kind == "webhook":
        from proxima.ground.channels.webhook import WebhookChannel

        return WebhookChannel(_opt(o, "url", cfg), _opt(o, "secret", cfg), name=cfg.name)
    if cfg.kind == "atom":
        from proxima.ground.channels.atom import AtomChannel

        return AtomChannel(
            sessions,
            base_url=config.base_url,
            feed_id=_opt(o, "feed_id", cfg, "proxima"),
            title=_opt(o, "title", cfg, "Proxima"),
            subtitle=_opt(o, "subtitle", cfg, "Posts from orbit"),
            author=_opt(o, "author", cfg, "Proxima"),
            name=cfg.name,
            languages=_opt(o, "languages", cfg, None),
        )
    if cfg.kind == "activitypub":
        from proxima.ground.channels.activitypub import ActivityPubChannel

        here = config.source.parent if config.source is not None else Path.cwd()
        key_file = here / _opt(o, "key_file", cfg)
        pem = _actor_key(key_file, cfg)
        return ActivityPubChannel(
            config.base_url,
            _opt(o, "username", cfg, "proxima"),
            _opt(o, "display_name", cfg, "Proxima"),
            _opt(o, "summary", cfg, "Posts from orbit"),
            pem,
            sessions,
            name=cfg.name,
            allow_private_network=bool(_opt(o, "allow_private_network", cfg, False)),
        )
    raise ConfigError(f"channel {cfg.name!r}: unknown kind {cfg.kind!r}")


def _actor_key(path: Path, cfg: ChannelConfig) -> bytes:
    """The actor's RSA key (PEM), made on first start when the file does not exist yet."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            return pem
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"channel {cfg.name!r}: key_file {path}: {exc.strerror or exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to whoever runs the event loop (Ctrl-C stops everything)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class GroundRunner:
    """The ground service as a running thing: ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        config: GroundConfig,
        *,
        clock: Callable[[], datetime] = _utcnow,
        channels: Mapping[str, Channel] | None = None,
        extra_routes: Callable[[GroundService], Sequence[BaseRoute]] | None = None,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.config = config
        self._extra_routes = extra_routes
        self._middleware = list(middleware)
        self.clock = clock
        self._given = channels
        self.channels: dict[str, Channel] = {}
        self.service: GroundService | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.port: int | None = None
        self.published = 0
        self._mention_limiter = RateLimiter(rate_per_s=1 / 60, burst=5, max_clients=100_000)

    @property
    def svc(self) -> GroundService:
        """The service (after :meth:`start`)."""
        if self.service is None:
            raise ConfigError("the ground service is not started")
        return self.service

    def open(self) -> GroundService:
        """Open (and migrate) the database and build the channels, without serving anything."""
        engine = make_engine(self.config.database)
        upgrade(engine)
        sessions = session_factory(engine)
        keyring = load_keyring(self.config.keyring)
        if self._given is not None:
            self.channels = dict(self._given)
        else:
            self.channels = {c.name: build_channel(c, sessions, self.config) for c in self.config.channels}
        signing = None
        if self.config.signing_key is not None:
            signing = (self.config.signing_key.stem, load_private_key(self.config.signing_key))
            keyring.setdefault(signing[0], signing[1].public_key())
        self.service = GroundService(
            sessions,
            signing_key=signing,
            keyring=keyring,
            media_dir=self.config.media_dir,
            base_url=self.config.base_url,
            channels={name: ch.limits for name, ch in self.channels.items()},
        )
        self._seed_slots(sessions)
        for name, ch in self.channels.items():
            if hasattr(ch, "on_mention"):
                ch.on_mention = functools.partial(self._on_mention, name)
        return self.service

    def _on_mention(self, channel: str, mention: Any) -> None:
        """A reply or mention from a channel becomes a public question, answered where it was asked."""
        with self.svc.sessions.begin() as s:
            questions.submit_question(
                s,
                self._mention_limiter,
                client=hashlib.sha256(f"{channel}:{mention.author}".encode()).hexdigest()[:32],
                text=mention.text,
                lang=mention.lang or "und",
                origin=channel,
                origin_id=mention.origin_id,
                now=self.clock(),
            )

    def _seed_slots(self, sessions: sessionmaker[Session]) -> None:
        where = self.config.source or "the ground configuration"
        specs = []
        for i, slot in enumerate(self.config.slots):
            if slot.channel not in self.channels:
                raise ConfigError(f"{where}: slot[{i}].channel: no channel named {slot.channel!r}")
            try:
                at = datetime.strptime(slot.time, "%H:%M").time()
                SlotSpec(channel=slot.channel, at=at, tz=slot.tz, weekday=slot.weekday)
            except ValueError as exc:
                raise ConfigError(f"{where}: slot[{i}].time: {slot.time!r} is not HH:MM") from exc
            except InvalidInput as exc:
                raise ConfigError(f"{where}: slot[{i}]: {exc}") from exc
            specs.append((slot, at.strftime("%H:%M")))
        with sessions.begin() as s:
            have = {(x.channel, x.weekday, x.time, x.tz) for x in s.scalars(select(Slot)).all()}
            for slot, hhmm in specs:
                if (slot.channel, slot.weekday, hhmm, slot.tz) not in have:
                    s.add(
                        Slot(
                            channel=slot.channel,
                            weekday=slot.weekday,
                            time=hhmm,
                            tz=slot.tz,
                            campaign=slot.campaign,
                            label=slot.label,
                        )
                    )

    def asgi(self) -> Starlette:
        """The HTTP application (API, channels' routes, extra routes), opening the service if needed."""
        service = self.service if self.service is not None else self.open()
        routes: list[BaseRoute] = [] if self._extra_routes is None else list(self._extra_routes(service))
        for ch in self.channels.values():
            extra = getattr(ch, "routes", None)
            if callable(extra):
                routes += extra()
        dtn = self.config.dtn
        return build_app(
            service,
            extra_routes=routes,
            clock=self.clock,
            crew_endpoint=dtn.crew if dtn else None,
            middleware=self._middleware,
        )

    async def start(self) -> None:
        """Open everything and start serving, receiving and publishing."""
        app = self.asgi()
        dtn = self.config.dtn
        config = uvicorn.Config(
            app, host=self.config.host, port=self.config.port, log_level="warning", lifespan="off"
        )
        self._server = _Server(config)
        self._tasks.append(asyncio.create_task(self._serve()))
        while not self._server.started:
            if self._tasks[0].done():
                self._tasks[0].result()
                raise ConfigError(f"the HTTP server on {self.config.host}:{self.config.port} did not start")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._publish_loop()))
        self._tasks.append(asyncio.create_task(self._redelivery_loop()))
        if dtn is not None:
            self._tasks.append(asyncio.create_task(self._dtn_loop()))

    async def _serve(self) -> None:
        if self._server is not None:
            await self._server.serve()

    async def stop(self) -> None:
        """Stop serving and close the channels."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks:
            if task is not self._tasks[0]:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for ch in self.channels.values():
            with contextlib.suppress(Exception):
                await ch.close()

    # ---------------------------------------------------------------- publishing

    async def publish_once(self) -> int:
        """Publish every delivery due now; returns how many were tried."""
        due = self.svc.due(self.clock())
        await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def redeliver(self) -> None:
        """Give channels that deliver to many servers (ActivityPub inboxes) a chance to retry."""
        for ch in self.channels.values():
            retry = getattr(ch, "retry_deliveries", None)
            if callable(retry):
                await retry()

    async def _deliver(self, d: DueDelivery) -> None:
        channel = self.channels.get(d.channel)
        try:
            if channel is None:
                raise ChannelError(
                    "no such channel is configured any more", channel=d.channel, transient=False
                )
            limits = channel.limits
            try:
                media = await asyncio.to_thread(lambda: [fit_media(m, limits) for m in d.outgoing.media])
            except MediaError as exc:
                raise ChannelError(f"media does not fit: {exc}", channel=d.channel, transient=False) from exc
            try:
                result = await asyncio.wait_for(
                    channel.publish(dataclasses.replace(d.outgoing, media=media)), PUBLISH_TIMEOUT_S
                )
            except TimeoutError:
                raise ChannelError(
                    f"no answer within {PUBLISH_TIMEOUT_S:.0f} s", channel=d.channel, transient=True
                ) from None
        except ChannelError as exc:
            log.warning("post %s on %s, try %d: %s", d.post_id, d.channel, d.attempt, exc)
            self.svc.failed(d.id, exc, attempt=d.attempt, now=self.clock())
        except Exception as exc:  # an adapter bug must not stop the other channels
            log.exception("post %s on %s: unexpected error", d.post_id, d.channel)
            error = ChannelError(f"unexpected {type(exc).__name__}: {exc}", channel=d.channel, transient=True)
            self.svc.failed(d.id, error, attempt=d.attempt, now=self.clock())
        else:
            self.published += 1
            self.svc.published(d.id, result, attempt=d.attempt, now=self.clock())

    async def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.publish_once()
            except Exception:  # the loop must outlive any one failure (a locked database...)
                log.exception("publisher")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.poll_s)

    async def _redelivery_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), REDELIVERY_S)
            try:
                await asyncio.wait_for(self.redeliver(), REDELIVERY_S)
            except Exception:
                log.exception("redelivery")

    # ---------------------------------------------------------------- DTN

    async def _dtn_loop(self) -> None:
        dtn = self.config.dtn
        if dtn is None:
            return
        host, port = parse_address(dtn.node)
        delay = 0.5
        while not self._stopping.is_set():
            try:
                client = await NodeClient.connect(host, port)
            except (OSError, ProximaError) as exc:
                log.warning("ground node %s unreachable (%s); retrying in %.1f s", dtn.node, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            try:
                await client.register(dtn.posts)
                await client.register(dtn.media)
                await asyncio.gather(
                    self._take(client, dtn.posts, self._on_post),
                    self._take(client, dtn.media, self._on_media),
                    self._uplink(client),
                )
            except (OSError, ProximaError) as exc:
                log.warning("ground node connection lost: %s", exc)
            except Exception:
                log.exception("ground node connection: unexpected error; reconnecting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            finally:
                with contextlib.suppress(Exception):
                    await client.close()

    async def _take(self, client: NodeClient, endpoint: str, handle: Callable[[bytes, str], None]) -> None:
        async for bundle in client.recv_iter(endpoint, count=0):
            try:
                handle(bundle.payload, str(bundle.source))
            except ProximaError as exc:
                log.warning("refused a bundle from %s on %s: %s", bundle.source, endpoint, exc)
            except Exception:  # a full disk, a locked database: say so, keep taking bundles
                log.exception("could not store a bundle from %s on %s", bundle.source, endpoint)

    def _on_post(self, payload: bytes, source: str) -> None:
        self.svc.receive_post(payload, source=source, now=self.clock())

    def _on_media(self, payload: bytes, source: str) -> None:
        self.svc.receive_media_part(payload, now=self.clock())

    async def _uplink(self, client: NodeClient) -> None:
        while not self._stopping.is_set():
            pending = self.svc.pending_uplinks()
            if pending:
                await client.send_many(
                    [{"to": dest, "payload": payload, "klass": "expedited"} for _, dest, payload in pending]
                )
                self.svc.uplink_sent([i for i, _, _ in pending], now=self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.poll_s)
