"""End to end on loopback: a crew post with a photo goes from the station's node through a relay to
the ground, is reviewed over the HTTP API, scheduled, published on Mastodon (mastodon-mock), Bluesky
(a PDS on arroba), the Atom feed and a signed webhook, and the acknowledgements come back up to the
crew. A channel that is down is retried and publishes exactly once when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import feedparser
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ground_helpers import PASSWORD, Crew, jpeg
from local_bovine import start_bovine
from local_mastodon import local_mastodon
from local_pds import local_pds
from proxima.bpv7 import EID
from proxima.demo import free_port
from proxima.ground import accounts
from proxima.ground.channels.webhook import verify_webhook
from proxima.ground.config import ChannelConfig, DtnConfig, GroundConfig
from proxima.ground.runner import GroundRunner
from proxima.runtime.appif import AppInterface
from proxima.runtime.config import AppConfig, ListenConfig, NeighbourConfig, NodeConfig, RouteConfig
from proxima.runtime.crew import CrewLog, Draft, send_post, sync
from proxima.runtime.keys import save_public_key
from proxima.runtime.node import Node

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
CREW_EP, POSTS_EP, MEDIA_EP = "ipn:1.20", "ipn:3.10", "ipn:3.11"
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"




class Clock:
    """The ground's clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Hook:
    """A webhook receiver on loopback that checks signatures and keeps what it got."""

    port: int = field(default_factory=free_port)
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            wid = verify_webhook(dict(request.headers), body, SECRET, datetime.now(UTC).timestamp())
            self.got.append((wid, __import__("json").loads(body)))
            return JSONResponse({"ok": True})

        app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            threading.Event().wait(0.01)
        try:
            yield f"http://127.0.0.1:{self.port}/hook"
        finally:
            server.should_exit = True
            thread.join(10)


def _nodes(tmp_path: Path) -> tuple[list[Node], list[AppInterface], int, int]:
    p_iss, p_relay, p_ground = free_port(), free_port(), free_port()
    app_iss, app_ground = free_port(), free_port()

    def cfg(node: EID, **kw: Any) -> NodeConfig:
        return NodeConfig(node_id=node, store_path=tmp_path / f"store-{node.node}", **kw)

    iss = Node(
        cfg(
            ISS,
            endpoints=(EID.parse(CREW_EP),),
            app=AppConfig(port=app_iss),
            listen=(ListenConfig("tcpcl", "127.0.0.1", p_iss),),
            neighbours=(NeighbourConfig(RELAY, "tcpcl", "127.0.0.1", p_relay),),
            routes=(RouteConfig("*", RELAY),),
        )
    )
    relay = Node(
        cfg(
            RELAY,
            app=AppConfig(port=free_port()),
            listen=(ListenConfig("tcpcl", "127.0.0.1", p_relay),),
            neighbours=(
                NeighbourConfig(GROUND, "tcpcl", "127.0.0.1", p_ground),
                NeighbourConfig(ISS, "tcpcl", "127.0.0.1", p_iss),
            ),
        )
    )
    ground = Node(
        cfg(
            GROUND,
            endpoints=(EID.parse(POSTS_EP), EID.parse(MEDIA_EP)),
            app=AppConfig(port=app_ground),
            listen=(ListenConfig("tcpcl", "127.0.0.1", p_ground),),
            neighbours=(NeighbourConfig(RELAY, "tcpcl", "127.0.0.1", p_relay),),
            routes=(RouteConfig("*", RELAY),),
        )
    )
    apps = [AppInterface(iss, "127.0.0.1", app_iss), AppInterface(ground, "127.0.0.1", app_ground)]
    return [ground, relay, iss], apps, app_iss, app_ground


async def _until(check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_crew_post_to_four_kinds_of_channel_and_back(tmp_path: Path) -> None:
    crew = Crew()
    keys = tmp_path / "keys"
    keys.mkdir()
    save_public_key(crew.key.public_key(), keys / "thomas.pub")
    photo_path = tmp_path / "cupola.jpg"
    photo = jpeg(size=(640, 480))
    photo_path.write_bytes(photo)
    hook = Hook()
    clock = Clock()
    (tmp_path / "bovine").mkdir()

    with (
        local_mastodon() as masto,
        local_pds() as pds,
        hook.running() as hook_url,
        start_bovine(tmp_path / "bovine") as bovine,
    ):
        nodes, apps, app_iss, app_ground = _nodes(tmp_path)
        base_port = free_port()
        config = GroundConfig(
            database=f"sqlite:///{tmp_path / 'ground.db'}",
            media_dir=tmp_path / "media",
            keyring=keys,
            base_url=f"http://127.0.0.1:{base_port}",
            port=base_port,
            dtn=DtnConfig(node=f"127.0.0.1:{app_ground}", posts=POSTS_EP, media=MEDIA_EP, crew=CREW_EP),
            channels=(
                ChannelConfig(
                    "mastodon", "mastodon", {"api_base_url": masto.base_url, "access_token": masto.token}
                ),
                ChannelConfig(
                    "bluesky",
                    "bluesky",
                    {"pds_url": pds.url, "identifier": pds.handle, "password": pds.password},
                ),
                ChannelConfig("atom", "atom", {"title": "Proxima"}),
                ChannelConfig(
                    "activitypub",
                    "activitypub",
                    {"key_file": str(tmp_path / "actor.pem"), "allow_private_network": True},
                ),
                ChannelConfig("webhook", "webhook", {"url": hook_url, "secret": SECRET}),
            ),
            poll_s=0.1,
        )
        runner = GroundRunner(config, clock=clock)
        api = f"http://127.0.0.1:{base_port}/api"

        async def main() -> None:
            for n in nodes:
                await n.start()
            for a in apps:
                await a.start()
            svc = runner.open()
            with svc.sessions.begin() as s:
                accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=clock())
                accounts.create_account(s, "marc", "Marc", "agency", ["approver"], PASSWORD, now=clock())
            await runner.start()
            actor = f"http://127.0.0.1:{base_port}/users/proxima"
            await bovine.post("/_test/follow", {"object": actor})

            async def followed() -> bool:
                return actor in (await bovine.get("/_test/following"))["items"]

            await _until(followed, "bovine to follow the mission's actor")
            log = CrewLog(tmp_path / "crew.db")
            try:
                # On board: written with the node only; the bundles go down through the relay.
                draft = Draft(
                    text={"fr": "Lever de soleil depuis la Cupola", "en": "Sunrise from the Cupola"},
                    media=[photo_path],
                    alt={"fr": "Le Soleil sur l'horizon", "en": "The Sun on the horizon"},
                    hashtags=["Proxima"],
                    campaign="Proxima",
                )
                created = int((clock() - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
                post, bundles = await send_post(
                    draft,
                    key=crew.key,
                    author="thomas",
                    created_ms=created,
                    node=f"127.0.0.1:{app_iss}",
                    posts_endpoint=POSTS_EP,
                    media_endpoint=MEDIA_EP,
                    source=CREW_EP,
                    log=log,
                    part_bytes=1000,
                )
                assert bundles > 2
                await _until(lambda: svc.show(post.id)["state"] == "in_review", "the post to reach review")

                async with httpx.AsyncClient(base_url=api, timeout=30) as http:

                    async def login(handle: str) -> dict[str, str]:
                        r = await http.post("/login", json={"handle": handle, "password": PASSWORD})
                        return {"Authorization": f"Bearer {r.json()['token']}"}

                    anne, marc = await login("anne"), await login("marc")
                    listed = (await http.get("/posts", params={"state": "in_review"}, headers=anne)).json()
                    assert [p["id"] for p in listed["posts"]] == [post.id]
                    r = await http.post(f"/posts/{post.id}/approve", headers=marc)
                    assert r.status_code == 200, r.text
                    at = (clock() + timedelta(minutes=6)).isoformat()
                    r = await http.post(f"/posts/{post.id}/schedule", headers=anne, json={"at": at})
                    assert r.status_code == 200 and r.json()["state"] == "scheduled", r.text

                # Mastodon is down at the scheduled time.
                masto.fault("/api/v1/statuses", status=503, count=1)
                clock.offset += timedelta(minutes=7)
                await _until(
                    lambda: (
                        {d["channel"]: d["state"] for d in svc.show(post.id)["deliveries"]}
                        == {
                            "activitypub": "published",
                            "atom": "published",
                            "bluesky": "published",
                            "mastodon": "retrying",
                            "webhook": "published",
                        }
                    ),
                    "three channels published and Mastodon retrying",
                )
                clock.offset += timedelta(minutes=2)
                await _until(lambda: svc.show(post.id)["state"] == "published", "the post to be published")

                # Acknowledgements come back up to the station.
                async def acked() -> bool:
                    await sync(node=f"127.0.0.1:{app_iss}", endpoint=CREW_EP, log=log, timeout=0.2)
                    return log.status()[0]["state"] == "published"

                await _until(acked, "the published acknowledgement on board")
                status = log.status()[0]
                assert set(status["links"]) == {"activitypub", "atom", "bluesky", "mastodon", "webhook"}
                assert [h["state"] for h in status["history"]][:2] == ["received", "in_review"]

                # The public asks; the team selects the question; it goes up; the crew answers.
                async with httpx.AsyncClient(base_url=api, timeout=30) as http:
                    q = (
                        await http.post("/questions", json={"text": "Que voyez-vous la nuit ?", "lang": "fr"})
                    ).json()
                    r = await http.post(
                        f"/questions/{q['id']}/moderate", headers=anne, json={"approve": True}
                    )
                    assert r.status_code == 200, r.text
                    r = await http.post("/questions/select", headers=anne, json={"ids": [q["id"]]})
                    assert r.status_code == 200, r.text

                    async def asked() -> bool:
                        await sync(node=f"127.0.0.1:{app_iss}", endpoint=CREW_EP, log=log, timeout=0.2)
                        return any(x["id"] == q["id"] for x in log.questions())

                    await _until(asked, "the question on board")
                    answer, _ = await send_post(
                        Draft(text={"fr": "Des villes illuminées et des aurores."}, reply_to=q["id"]),
                        key=crew.key,
                        author="thomas",
                        created_ms=created + 1000,
                        node=f"127.0.0.1:{app_iss}",
                        posts_endpoint=POSTS_EP,
                        media_endpoint=MEDIA_EP,
                        source=CREW_EP,
                        log=log,
                    )

                    async def answered() -> bool:
                        rows = (
                            await http.get("/questions", params={"state": "answered"}, headers=anne)
                        ).json()
                        return any(
                            x["id"] == q["id"] and x["answer_post_id"] == answer.id for x in rows["questions"]
                        )

                    await _until(answered, "the question to be answered by the crew's post")
                    assert svc.show(answer.id)["state"] == "in_review"

                async with httpx.AsyncClient(timeout=30) as http:
                    feed = feedparser.parse(
                        (await http.get(f"http://127.0.0.1:{base_port}/feed.atom")).content
                    )
                    code = svc.show(post.id)["code"]
                    verify = (await http.get(f"{api}/verify/{code}")).json()
                    assert verify["authentic"] is True
                note_id = next(
                    d["remote_id"] for d in svc.show(post.id)["deliveries"] if d["channel"] == "activitypub"
                )

                async def delivered() -> bool:
                    items = (await bovine.get("/_test/inbox"))["items"]
                    return any(
                        i.get("type") == "Create" and i.get("object") in (note_id, {"id": note_id})
                        for i in items
                    )

                await _until(delivered, "the Create at bovine's inbox")
                note = await bovine.get("/_test/object", id=note_id)
                assert set(note["contentMap"]) == {"fr", "en"}
            finally:
                log.close()
                await runner.stop()
                for a in apps:
                    await a.stop()
                for n in nodes:
                    await n.stop()
            titles = sorted(e.title for e in feed.entries)
            assert titles == ["Lever de soleil depuis la Cupola", "Sunrise from the Cupola"]
            statuses = masto.statuses()
            assert len(statuses) == 2  # fr and en, once each despite the retry
            assert {s["language"] for s in statuses} == {"fr", "en"}
            assert all(code in s["content"] for s in statuses)
            records = pds.records()
            assert sorted(r.value["langs"][0] for r in records) == ["en", "fr"]
            assert (
                len(hook.got) == 1
                and hook.got[0][1]["data"]["text"]["fr"] == "Lever de soleil depuis la Cupola"
            )

        asyncio.run(asyncio.wait_for(main(), 120))
