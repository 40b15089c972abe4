"""``proxima demo``: the Proxima mission end to end on one machine.

Real DTN nodes for the ISS, three TDRS-like relays, White Sands, Guam and the Cologne
communication centre talk TCPCLv4 on loopback, opening links only during the contacts computed
from the orbits (SGP4) and routing by contact graph routing; all run on one mission clock sped up
``speed`` times. The ground service (Atom feed and the mission's ActivityPub actor) and the web
app serve the console and the public pages. The crew writes the posts of a shipped playlist
(bilingual, with drawn photos and a video-sized file) from the station's node; the public asks
questions; a scripted team reviews (two people: four eyes), schedules, selects questions, and the
crew answers them.

State lives in a directory (default ``proxima-demo``): a second run resumes from it, ``--fresh``
starts over. ``--headless --hours H`` runs H mission hours as fast as the machine allows and
reports; it succeeds only if every post that could reach the ground and be reviewed in the window
was published exactly once on every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from proxima.bpv7 import EID
from proxima.errors import ConfigError, ProximaError
from proxima.ground.service import dtn_ms, dtn_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxima.ground.service import GroundService

__all__ = ["DEMO_START", "DemoOptions", "DemoReport", "free_port", "run_demo"]

DEMO_START: Final = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
"""Mission time when a fresh demo starts: the morning after the shipped elements' epoch."""
PASSWORD: Final = "proxima-demo"  # noqa: S105 - the printed demo login, on loopback only
CREW_EP: Final = "ipn:10.20"
POSTS_EP: Final = "ipn:40.10"
MEDIA_EP: Final = "ipn:40.11"
REVIEW_AFTER: Final = timedelta(minutes=20)
"""Mission time the scripted team waits before reviewing (the console user can act first)."""
PUBLISH_AFTER: Final = timedelta(minutes=15)
"""How far ahead the team schedules an approved post."""


@dataclass
class DemoOptions:
    """How to run the demo."""

    workdir: Path = Path("proxima-demo")
    speed: float = 120.0
    hours: float | None = None
    headless: bool = False
    fresh: bool = False
    http_port: int = 8080
    on_status: Callable[[dict[str, Any]], None] | None = None


@dataclass
class DemoReport:
    """What happened, for the headless report."""

    mission_start: str
    mission_end: str
    written: int = 0
    delivered: int = 0
    reviewed: int = 0
    published: int = 0
    deliverable: int = 0
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    latency_min: list[float] = field(default_factory=list)
    contacts: int = 0
    contacts_used: int = 0
    store_peaks: dict[str, int] = field(default_factory=dict)
    questions_answered: int = 0
    real_seconds: float = 0.0
    ground_latency_min: list[float] = field(default_factory=list)
    """Writing on board to reception on the ground, per post delivered."""
    sim_delivered: int = 0
    sim_latency_min: list[float] = field(default_factory=list)
    """The simulator's figures for the same posts over the same plan."""
    channels: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every deliverable post published exactly once, and nothing published twice."""
        return not self.missing and not self.duplicates

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        lat = sorted(self.latency_min)
        return {
            "mission": {"start": self.mission_start, "end": self.mission_end},
            "posts": {
                "written": self.written,
                "delivered": self.delivered,
                "reviewed": self.reviewed,
                "published": self.published,
                "deliverable_in_window": self.deliverable,
                "missing": self.missing,
                "published_twice": self.duplicates,
            },
            "latency_writing_to_publication_min": {
                "min": lat[0] if lat else None,
                "median": statistics.median(lat) if lat else None,
                "max": lat[-1] if lat else None,
            },
            "channels": self.channels,
            "contacts": {"planned": self.contacts, "with_links_up": self.contacts_used},
            "store_peaks_bundles": self.store_peaks,
            "questions_answered": self.questions_answered,
            "network": {
                "delivered": self.delivered,
                "median_writing_to_ground_min": _median(self.ground_latency_min),
                "simulator_delivered": self.sim_delivered,
                "simulator_median_min": _median(self.sim_latency_min),
            },
            "real_seconds": round(self.real_seconds, 1),
            "ok": self.ok,
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_RECENT_PORTS: deque[int] = deque(maxlen=64)


def free_port() -> int:
    """A free TCP port on loopback below the ephemeral range, so that no outgoing connection of
    the demo's own nodes can take it between this choice and the server binding it; never one
    of the last ports it gave, which are free too until their servers bind them."""
    low = max(1025, min(20000, _ephemeral_low() - 4000))
    high = max(low + 100, _ephemeral_low())
    for _ in range(200):
        port = secrets.randbelow(high - low) + low
        if port in _RECENT_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _RECENT_PORTS.append(port)
            return port
    raise ConfigError("no free TCP port on loopback below the ephemeral range")


def _playlist() -> dict[str, Any]:
    text = resources.files("proxima").joinpath("data/demo/playlist.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _photo(label: str, seed: int) -> bytes:
    """A drawn picture for a post: a gradient sky, a curved Earth limb and the label."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (800, 500))
    draw = ImageDraw.Draw(img)
    for y in range(500):
        shade = int(10 + 40 * y / 500)
        draw.line([(0, y), (800, y)], fill=(shade // 2, shade // 2, shade + (seed * 37) % 60))
    draw.ellipse([-400, 330, 1200, 1300], fill=(30, 80 + seed % 60, 160), outline=(120, 180, 255), width=6)
    draw.text((30, 30), f"Proxima · {label}", fill=(255, 255, 230))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


class _State:
    """The demo directory's state file: mission time reached, playlist items done."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        if fresh or not path.exists():
            self.data: dict[str, Any] = {"start": DEMO_START.isoformat(), "elapsed_s": 0.0, "done": []}
        else:
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{path}: unreadable demo state ({exc}); run with --fresh") from exc

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.data["start"])

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
        tmp.replace(self.path)


class Demo:
    """The whole mission on one machine."""

    def __init__(self, options: DemoOptions) -> None:
        self.o = options
        self.work = options.workdir.resolve()
        if options.fresh and self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.state = _State(self.work / "state.json", options.fresh)
        self.mission_t0 = self.state.start + timedelta(seconds=float(self.state.data["elapsed_s"]))
        self.stop = asyncio.Event()
        self.nodes: dict[str, Any] = {}
        self.apps: dict[str, Any] = {}
        self.peaks: dict[str, int] = {}
        self.used_contacts: set[int] = set()
        self.plan: Any = None
        self.end: datetime | None = None
        self.mastodon: tuple[str, str] | None = None
        self.bluesky: tuple[str, str, str] | None = None
        self.pds: Any = None

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """Mission time: the station node's clock once it runs (every node keeps the same one)."""
        iss = self.nodes.get("ISS")
        if iss is not None:
            return dtn_time(int(iss.clock()))
        return self.mission_t0

    def acting(self) -> bool:
        """Whether the actors may still act: the run goes on and its window has not ended (the
        clock may overshoot the end a little before the run stops; nothing new starts then)."""
        return not self.stop.is_set() and (self.end is None or self.now() < self.end)

    async def sleep_mission(self, minutes: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), minutes * 60 / self.o.speed)

    # ------------------------------------------------------------------ set-up

    def _keys(self) -> None:
        from proxima.runtime.keys import load_private_key, new_key_pair

        keys, private = self.work / "keys", self.work / "private"
        keys.mkdir(exist_ok=True)
        private.mkdir(exist_ok=True, mode=0o700)
        for name in ("thomas", "esa"):
            if not (private / f"{name}.key").exists():
                pair = new_key_pair(name, private)
                shutil.copy(pair.public_path, keys / f"{name}.pub")
        self.crew_key = load_private_key(private / "thomas.key")

    def _plan(self) -> tuple[Any, Any, dict[str, int]]:
        from proxima.routing import formats
        from proxima.runtime.mission import load_mission
        from proxima.runtime.plans import node_numbers, plan_from_mission

        mission = load_mission(None, now_unix=self.state.start.timestamp())
        hours = (self.o.hours or 48.0) + 24.0
        start = self.state.start
        t0 = start.timestamp()
        t1 = max(t0, self.mission_t0.timestamp()) + hours * 3600
        plan, _ = plan_from_mission(mission, t0, t1, whole_seconds=True)
        epoch_ms = dtn_ms(start)
        (self.work / "plan.rc").write_text(formats.write_ion(plan, epoch_ms=epoch_ms), encoding="utf-8")
        numbers, _ = node_numbers(mission)
        return mission, plan, numbers

    async def _start_nodes(self, numbers: dict[str, int]) -> None:
        from proxima.runtime.appif import AppInterface
        from proxima.runtime.config import (
            AppConfig,
            ClockConfig,
            ContactPlanConfig,
            ListenConfig,
            NeighbourConfig,
            NodeConfig,
        )
        from proxima.runtime.node import Node

        ports = {name: free_port() for name in numbers}
        self.app_ports = {name: free_port() for name in numbers}
        for name, number in numbers.items():
            endpoints: tuple[EID, ...] = ()
            if name == "ISS":
                endpoints = (EID.parse(CREW_EP),)
            elif name == "Cologne":
                endpoints = (EID.parse(POSTS_EP), EID.parse(MEDIA_EP))
            config = NodeConfig(
                node_id=EID.parse(f"ipn:{number}.0"),
                store_path=self.work / "nodes" / name.lower().replace(" ", "-"),
                endpoints=endpoints,
                app=AppConfig("127.0.0.1", self.app_ports[name]),
                listen=(ListenConfig("tcpcl", "127.0.0.1", ports[name]),),
                neighbours=tuple(
                    NeighbourConfig(EID.parse(f"ipn:{n}.0"), "tcpcl", "127.0.0.1", ports[other])
                    for other, n in numbers.items()
                    if other != name
                ),
                contact_plan=ContactPlanConfig(self.work / "plan.rc", "ion", self.state.start.timestamp()),
                clock=ClockConfig(start_unix=self.now().timestamp(), speed=self.o.speed),
            )
            node = Node(config)
            await node.start()
            app = AppInterface(node, "127.0.0.1", self.app_ports[name])
            await app.start()
            self.nodes[name], self.apps[name] = node, app

    def _mastodon(self, stack: contextlib.ExitStack) -> Any:
        """A local Mastodon (the ``mastodon-mock`` package, when installed), or None."""
        import importlib.util

        if importlib.util.find_spec("mastodon_mock") is None:
            return None
        from mastodon_mock.config import (
            DatabaseConfig,
            MastodonMockConfig,
            SeedAccount,
            SeedConfig,
            StreamingConfig,
        )
        from mastodon_mock.testing.server import MockServer

        token = secrets.token_urlsafe(24)
        media = self.work / "mastodon-media"
        media.mkdir(exist_ok=True)
        config = MastodonMockConfig(
            database=DatabaseConfig(path=":memory:"),  # a fresh local server each run
            media_storage_path=str(media),
            streaming=StreamingConfig(enabled=False),
            seed=SeedConfig(
                accounts=[SeedAccount(username="proxima", display_name="Proxima crew", access_token=token)]
            ),
        )
        server = stack.enter_context(MockServer(config=config, host="127.0.0.1", startup_timeout=60))
        self.mastodon = (str(server.base_url), token)
        return self.mastodon

    def _bluesky(self, stack: contextlib.ExitStack) -> None:
        """A local AT Protocol PDS (built on ``arroba``, when installed)."""
        import importlib.util

        if importlib.util.find_spec("arroba") is None or importlib.util.find_spec("flask") is None:
            return
        from proxima.devservers.pds import local_pds

        password = secrets.token_urlsafe(16)
        pds = stack.enter_context(local_pds("crew.proxima.test", password))
        self.bluesky = (pds.url, pds.handle, password)
        self.pds = pds

    def _ground_config(self, numbers: dict[str, int]) -> Any:
        from proxima.ground.config import (
            AnalyticsConfig,
            ChannelConfig,
            DtnConfig,
            GroundConfig,
            NetworkConfig,
            NetworkNode,
        )

        port = self.o.http_port or free_port()
        return GroundConfig(
            database=f"sqlite:///{self.work / 'ground.db'}",
            media_dir=self.work / "media",
            keyring=self.work / "keys",
            base_url=f"http://127.0.0.1:{port}",
            port=port,
            signing_key=self.work / "private" / "esa.key",
            dtn=DtnConfig(
                node=f"127.0.0.1:{self.app_ports['Cologne']}", posts=POSTS_EP, media=MEDIA_EP, crew=CREW_EP
            ),
            channels=(
                *(
                    ()
                    if self.mastodon is None
                    else (
                        ChannelConfig(
                            "mastodon",
                            "mastodon",
                            {"api_base_url": self.mastodon[0], "access_token": self.mastodon[1]},
                        ),
                    )
                ),
                *(
                    ()
                    if self.bluesky is None
                    else (
                        ChannelConfig(
                            "bluesky",
                            "bluesky",
                            {
                                "pds_url": self.bluesky[0],
                                "identifier": self.bluesky[1],
                                "password": self.bluesky[2],
                                "app_url": self.bluesky[0],
                            },
                        ),
                    )
                ),
                ChannelConfig("atom", "atom", {"title": "Proxima — from the ISS"}),
                ChannelConfig(
                    "activitypub",
                    "activitypub",
                    {"key_file": str(self.work / "private" / "actor.pem"), "allow_private_network": True},
                ),
            ),
            network=NetworkConfig(
                nodes=tuple(
                    NetworkNode(name, f"127.0.0.1:{self.app_ports[name]}", number)
                    for name, number in numbers.items()
                ),
                plan=self.work / "plan.rc",
                epoch=self.state.start,
            ),
            analytics=AnalyticsConfig(
                database=self.work / "analytics.duckdb",
                interval_s=900,
                tz="Europe/Paris",
                tags=("allezthomas", "proxima", "cometlanding"),
                keywords=("pesquet",),
            ),
            poll_s=0.2,
        )

    def _accounts(self, svc: GroundService) -> None:
        from proxima.ground import accounts

        with svc.sessions.begin() as s:
            have = {a.handle for a in s.query(accounts.Account).all()}
            wanted = [
                ("editor", "Claudie (editor)", "agency", ["editor"], PASSWORD),
                ("approver", "Jean-Loup (approver)", "agency", ["approver", "editor"], PASSWORD),
                ("admin", "Admin", "agency", ["admin"], PASSWORD),
                ("thomas", "Thomas Pesquet", "crew", ["crew"], None),
                ("philae", "Philae", "robot", [], None),
            ]
            for handle, name, kind, roles, password in wanted:
                if handle not in have:
                    accounts.create_account(s, handle, name, kind, roles, password, now=self.now())

    # ------------------------------------------------------------------ actors

    async def _crew(self, svc: GroundService, playlist: dict[str, Any]) -> None:
        from proxima.runtime.crew import CrewLog, Draft, send_post, sync

        log = CrewLog(self.work / "crew.db")
        media_dir = self.work / "crew-media"
        media_dir.mkdir(exist_ok=True)
        iss = f"127.0.0.1:{self.app_ports['ISS']}"
        answers = {q["text"]: q for q in playlist.get("question", [])}
        done: list[str] = self.state.data["done"]
        try:
            while not self.stop.is_set():
                if not self.acting():
                    await self.sleep_mission(5)
                    continue
                elapsed_h = (self.now() - self.state.start).total_seconds() / 3600
                for i, item in enumerate(playlist.get("post", [])):
                    if item["id"] in done or item["at_h"] > elapsed_h:
                        continue
                    files: list[Path] = []
                    if "photo" in item:
                        path = media_dir / f"{item['id']}.jpg"
                        path.write_bytes(_photo(item["photo"], i))
                        files.append(path)
                    if "video_bytes" in item:
                        path = media_dir / f"{item['id']}.mp4"
                        path.write_bytes(os.urandom(int(item["video_bytes"])))
                        files.append(path)
                    alt = (
                        {"fr": item.get("photo", "Vidéo"), "en": item.get("photo", "Video")}
                        if files
                        else None
                    )
                    draft = Draft(
                        text={"fr": item["fr"], "en": item["en"]},
                        media=files,
                        alt=alt,
                        hashtags=item.get("hashtags", []),
                        campaign=item.get("campaign"),
                    )
                    await self._send(send_post, draft, log, iss)
                    done.append(item["id"])
                    self.state.save()
                with contextlib.suppress(ProximaError, OSError):
                    await sync(node=iss, endpoint=CREW_EP, log=log, timeout=0.05)
                for q in log.questions():
                    script = answers.get(q["text"])
                    if script is None or f"answer:{q['id']}" in done or not self.acting():
                        continue
                    draft = Draft(
                        text={"fr": script["answer_fr"], "en": script["answer_en"]}, reply_to=q["id"]
                    )
                    await self._send(send_post, draft, log, iss)
                    done.append(f"answer:{q['id']}")
                    self.state.save()
                await self.sleep_mission(5)
        finally:
            log.close()

    async def _send(self, send_post: Any, draft: Any, log: Any, iss: str) -> None:
        created = dtn_ms(self.now())
        await send_post(
            draft,
            key=self.crew_key,
            author="thomas",
            created_ms=created,
            node=iss,
            posts_endpoint=POSTS_EP,
            media_endpoint=MEDIA_EP,
            source=CREW_EP,
            log=log,
        )

    async def _public_and_team(self, svc: GroundService, playlist: dict[str, Any]) -> None:
        from proxima.ground import accounts, questions
        from proxima.ground.ratelimit import RateLimiter

        done: list[str] = self.state.data["done"]
        limiter = RateLimiter(rate_per_s=1, burst=100, max_clients=100)
        with svc.sessions() as s:
            editor = accounts.get_account(s, "editor")
            approver = accounts.get_account(s, "approver")
        while not self.stop.is_set():
            now = self.now()
            if not self.acting():
                await self.sleep_mission(2)
                continue
            elapsed_h = (now - self.state.start).total_seconds() / 3600
            for i, q in enumerate(playlist.get("question", [])):
                key = f"question:{i}"
                if key not in done and q["at_h"] <= elapsed_h:
                    with svc.sessions.begin() as s:
                        questions.submit_question(
                            s,
                            limiter,
                            client=f"demo-public-{i}",
                            text=q["text"],
                            lang=q["lang"],
                            name=q.get("name"),
                            now=now,
                        )
                    done.append(key)
                    self.state.save()
            for t in playlist.get("team", []):
                key = f"team:{t['id']}"
                if key not in done and t["at_h"] <= elapsed_h:
                    svc.draft(
                        editor,
                        author=t["author"],
                        text={"fr": t["fr"], "en": t["en"]},
                        hashtags=t.get("hashtags", []),
                        campaign=t.get("campaign"),
                        now=now,
                    )
                    done.append(key)
                    self.state.save()
            with contextlib.suppress(ProximaError):
                self._review(svc, editor, approver, now)
            with contextlib.suppress(ProximaError), svc.sessions.begin() as s:
                pending = [q.id for q in questions.list_questions(s, state="submitted")]
                for qid in pending:
                    questions.moderate(s, qid, approve=True, moderator=editor, now=now)
            with svc.sessions() as s:
                approved = [q.id for q in questions.list_questions(s, state="approved")]
            if approved:
                with contextlib.suppress(ProximaError):
                    svc.select_questions(approved, editor, destination=CREW_EP, now=now)
            await self.sleep_mission(2)

    def _review(self, svc: GroundService, editor: Any, approver: Any, now: datetime) -> None:
        """The scripted team: after a while in review, schedule a quarter hour ahead, then approve."""
        for p in svc.list_posts(state="in_review", limit=200):
            received = datetime.fromisoformat(p["received_at"])
            if now - received < REVIEW_AFTER:
                continue
            # A channel that cannot carry the post's media (a video on Bluesky) is left out, as an
            # editor would; the edit makes the approver someone else than the editor anyway.
            types = {m["content_type"] for m in svc.show(p["id"])["media"]}
            fit = [c for c in p["channels"] if types <= svc.channels[c].media_types]
            if fit and fit != p["channels"]:
                svc.edit(p["id"], editor, channels=fit, note="media this channel cannot carry", now=now)
            svc.schedule(p["id"], editor, now + PUBLISH_AFTER, now=now)
            reviewer = approver if p["author"] != "approver" else editor
            svc.approve(p["id"], reviewer, now=now)

    async def _sample(self) -> None:
        """Store peaks per node, and which planned contacts were seen with their link up."""
        while not self.stop.is_set():
            now_ms = dtn_ms(self.now())
            for name, node in self.nodes.items():
                with contextlib.suppress(Exception):
                    count = int(node.status()["stored"]["bundles"])
                    self.peaks[name] = max(self.peaks.get(name, 0), count)
                mine = node.config.node_id.node
                for peer in list(node.agent.links_up):
                    other = getattr(peer, "node", None)
                    for i, c in enumerate(self.plan.contacts if self.plan is not None else ()):
                        if c.from_node == mine and c.to_node == other and c.start_ms <= now_ms < c.end_ms:
                            self.used_contacts.add(i)
            if self.o.on_status is not None and self.svc is not None:
                self.o.on_status(self.status())
            await asyncio.sleep(0.25)

    def status(self) -> dict[str, Any]:
        """A summary for the live display."""
        posts = self.svc.list_posts(limit=1000) if self.svc is not None else []
        in_flight = 0
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                in_flight += int(node.status()["stored"]["bundles"])
        links = sum(1 for node in self.nodes.values() for up in getattr(node, "links_up", {}).values() if up)
        return {
            "mission_time": self.now().strftime("%Y-%m-%d %H:%M"),
            "links_up": links // 2,
            "bundles_stored": in_flight,
            "posts": len(posts),
            "in_review": sum(1 for p in posts if p["state"] == "in_review"),
            "published": sum(1 for p in posts if p["state"] == "published"),
        }

    # ------------------------------------------------------------------ run

    async def run(self) -> DemoReport:

        self.svc: GroundService | None = None
        stack = contextlib.ExitStack()
        self._mastodon(stack)
        self._bluesky(stack)
        try:
            return await self._run()
        finally:
            stack.close()

    async def _run(self) -> DemoReport:
        from proxima.web.app import WebApp

        self._keys()
        _, plan, numbers = self._plan()
        self.plan = plan
        await self._start_nodes(numbers)
        config = self._ground_config(numbers)
        web = WebApp(config, clock=self.now, allow_private_alert_targets=True)
        self.svc = web.runner.open()
        self._accounts(self.svc)
        await web.start()
        self.base_url = config.base_url
        playlist = _playlist()
        tasks = [
            asyncio.create_task(self._crew(self.svc, playlist)),
            asyncio.create_task(self._public_and_team(self.svc, playlist)),
            asyncio.create_task(self._sample()),
        ]
        end = None if self.o.hours is None else self.state.start + timedelta(hours=self.o.hours)
        self.end = end
        real_start = time.monotonic()
        try:
            while not self.stop.is_set():
                if end is not None and self.now() >= end:
                    break
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                await asyncio.sleep(0.2)
        finally:
            self.stop.set()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            self.state.data["elapsed_s"] = (self.now() - self.state.start).total_seconds()
            self.state.save()
            report = self._report(plan, numbers, end or self.now())
            report.real_seconds = time.monotonic() - real_start
            await web.stop()
            for app in self.apps.values():
                await app.stop()
            for node in self.nodes.values():
                await node.stop()
        return report

    def _toots(self) -> dict[str, int] | None:
        """Statuses on the local Mastodon per verification code (each language is one status)."""
        if self.mastodon is None:
            return None
        import httpx

        base, token = self.mastodon
        headers = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{base}/api/v1/accounts/verify_credentials", headers=headers, timeout=30).json()
        statuses = httpx.get(
            f"{base}/api/v1/accounts/{me['id']}/statuses", params={"limit": 40}, headers=headers, timeout=30
        ).json()
        counts: dict[str, int] = {}
        for status in statuses:
            for code in set(re.findall(r"/verify/([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})", status["content"])):
                counts[code] = counts.get(code, 0) + 1
        return counts

    def _skeets(self) -> dict[str, int] | None:
        """Posts on the local PDS per verification code (one per language)."""
        if self.pds is None:
            return None
        counts: dict[str, int] = {}
        for record in self.pds.records("app.bsky.feed.post"):
            for code in set(
                re.findall(r"/verify/([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})", str(record.value.get("text", "")))
            ):
                counts[code] = counts.get(code, 0) + 1
        return counts

    def _report(self, plan: Any, numbers: dict[str, int], end: datetime) -> DemoReport:
        from proxima.ground import questions
        from proxima.ground.channels.activitypub import ApActivity
        from proxima.ground.channels.atom import AtomEntry
        from proxima.routing.router import ContactGraphRouter
        from proxima.runtime.crew import CrewLog

        svc = self.svc
        if svc is None:
            raise ConfigError("the demo did not start")
        report = DemoReport(self.state.start.isoformat(), end.isoformat())
        log = CrewLog(self.work / "crew.db")
        written = log.status()
        log.close()
        report.written = len(written)
        posts = {p["id"]: p for p in svc.list_posts(limit=10_000)}
        crew_posts = {pid: p for pid, p in posts.items() if p["author"] == "thomas"}
        report.delivered = sum(1 for w in written if w["id"] in crew_posts)
        report.reviewed = sum(
            1 for p in crew_posts.values() if p["approved_by"] or p["state"] in ("rejected",)
        )
        report.published = sum(1 for p in crew_posts.values() if p["state"] == "published")
        router = ContactGraphRouter(plan, numbers["ISS"])
        margin = REVIEW_AFTER + PUBLISH_AFTER + timedelta(minutes=10)
        with svc.sessions() as s:
            atom: dict[str, int] = {}
            for e in s.query(AtomEntry).all():
                atom[e.post_key] = atom.get(e.post_key, 0) + 1
            creates: dict[str, int] = {}
            for a in s.query(ApActivity).filter(ApActivity.kind == "Create").all():
                if a.key is not None:
                    creates[a.key] = creates.get(a.key, 0) + 1
            report.questions_answered = len(questions.list_questions(s, state="answered", limit=1000))
        fresh = self.mission_t0 == self.state.start
        toots = self._toots() if fresh else None
        skeets = self._skeets() if fresh else None
        report.channels = sorted(svc.channels)
        for w in written:
            created = dtn_time(w["created_ms"])
            routes = router.routes_for(numbers["Cologne"], w["created_ms"], size=1000)
            arrival = None if not routes else dtn_time(routes[0].arrival_ms)
            p = crew_posts.get(w["id"])
            if arrival is not None and arrival + margin <= end:
                report.deliverable += 1
                if p is None or p["state"] != "published":
                    report.missing.append(w["id"])
            if p is not None and p["state"] == "published":
                langs = len(p["text"])
                on_mastodon = toots.get(p["code"], langs) if toots is not None else langs
                on_bluesky = (
                    skeets.get(p["code"], langs)
                    if skeets is not None and "bluesky" in p["channels"]
                    else langs
                )
                if (
                    atom.get(w["id"], 0) != langs
                    or creates.get(w["id"], 0) != 1
                    or langs != on_mastodon
                    or langs != on_bluesky
                ):
                    report.duplicates.append(w["id"])
                first = min(
                    datetime.fromisoformat(a["at"])
                    for a in svc.show(w["id"])["audit"]
                    if a["action"] == "delivered"
                )
                report.latency_min.append(round((first - created).total_seconds() / 60, 1))
        t0, t1 = dtn_ms(self.state.start), dtn_ms(end)
        for w in written:
            p = crew_posts.get(w["id"])
            if p is not None:
                received = datetime.fromisoformat(p["received_at"])
                created = dtn_time(w["created_ms"])
                report.ground_latency_min.append(round((received - created).total_seconds() / 60, 2))
        # The simulator, on the same plan with the same posts (their envelopes), for comparison.
        from proxima.sim import Message, Simulator

        messages = [
            Message(
                at_ms=w["created_ms"],
                source=numbers["ISS"],
                destination=numbers["Cologne"],
                size=1500,
                klass="post",
            )
            for w in written
            if t0 <= w["created_ms"] < t1
        ]
        if messages:
            sim = Simulator(plan, messages, start_ms=t0, end_ms=t1).run()
            report.sim_delivered = sim.delivered
            report.sim_latency_min = [
                round((j.delivered_ms - j.posted_ms) / 60_000, 2)
                for j in sim.journeys
                if j.status == "delivered" and j.delivered_ms is not None
            ]
        window = [c for c in plan.contacts if c.start_ms < t1 and c.end_ms > t0]
        report.contacts = len(window)
        report.contacts_used = len(self.used_contacts)
        report.store_peaks = dict(self.peaks)
        return report


async def run_demo(options: DemoOptions) -> DemoReport:
    """Run the demo until Ctrl-C (or ``options.hours`` mission hours) and report."""
    demo = Demo(options)
    return await demo.run()
