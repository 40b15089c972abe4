"""The console in a browser's terms: login with a session cookie, CSRF on every form, roles,
the review steps, the calendar week, channel status, and questions; all text escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from starlette.testclient import TestClient

from ground_helpers import PASSWORD, Crew
from proxima.errors import ChannelError
from proxima.ground import accounts
from proxima.ground.config import ChannelConfig, GroundConfig
from proxima.runtime.keys import save_public_key
from proxima.web.app import WebApp

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def site(tmp_path: Path) -> tuple[WebApp, TestClient, Crew, Clock]:
    crew = Crew()
    (tmp_path / "keys").mkdir()
    save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
    config = GroundConfig(
        database=f"sqlite:///{tmp_path / 'g.db'}",
        media_dir=tmp_path / "media",
        keyring=tmp_path / "keys",
        base_url="https://proxima.example",
        channels=(ChannelConfig("atom", "atom", {}),),
    )
    clock = Clock()
    web = WebApp(config, clock=clock)
    app = web.runner.asgi()
    svc = web.runner.svc
    with svc.sessions.begin() as s:
        accounts.create_account(s, "anne", "Anne <Editor>", "agency", ["editor"], PASSWORD, now=NOW)
        accounts.create_account(s, "marc", "Marc", "agency", ["approver", "editor"], PASSWORD, now=NOW)
        accounts.create_account(s, "sam", "Sam", "crew", ["crew"], PASSWORD, now=NOW)
    return web, TestClient(app, base_url="https://testserver"), crew, clock


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def _login(client: TestClient, handle: str) -> str:
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"csrf": _csrf(page.text), "handle": handle, "password": PASSWORD, "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(client.get("/console").text)


def test_login_cookie_and_csrf(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:
    _, client, _, _ = site
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    page = client.get("/console/login")
    forged = client.post("/console/login", data={"csrf": "nope", "handle": "anne", "password": PASSWORD})
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = client.post(
        "/console/login", data={"csrf": _csrf(page.text), "handle": "anne", "password": "bad password!!"}
    )
    assert wrong.status_code == 401
    crew_only = client.post(
        "/console/login", data={"csrf": _csrf(page.text), "handle": "sam", "password": PASSWORD}
    )
    assert crew_only.status_code == 403 and "editor or approver" in crew_only.text
    r = client.post(
        "/console/login",
        data={"csrf": _csrf(page.text), "handle": "anne", "password": PASSWORD},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"].lower()
    assert "proxima_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    home = client.get("/console")
    assert "Anne &lt;Editor&gt;" in home.text and "<Editor>" not in home.text
    assert client.post("/console/logout", data={"csrf": "stale"}).status_code == 403


def test_review_steps_in_the_console(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:
    web, client, crew, clock = site
    svc = web.runner.svc
    post, signed, _ = crew.post(
        text={"en": "<script>alert('x')</script> Hello", "fr": "Bonjour"}, created=NOW
    )
    svc.receive_post(signed, source=None, now=NOW)
    token = _login(client, "anne")
    queue = client.get("/console").text
    assert post.id[:8] in queue
    assert "<script>alert" not in queue and "&lt;script&gt;" in queue
    page = client.get(f"/console/posts/{post.id}").text
    assert "Signed by <strong>thomas</strong>" in page and "<script>alert" not in page
    r = client.post(f"/console/posts/{post.id}/approve", data={"csrf": token})
    assert r.status_code == 403 and "approver" in r.text
    r = client.post(f"/console/posts/{post.id}/approve", data={})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post(
        f"/console/posts/{post.id}/edit", data={"csrf": token, "text_en": "Hello", "text_fr": "Bonjour !"}
    )
    assert r.status_code == 200 and svc.show(post.id)["versions"][-1]["editor"] == "anne"
    client.post("/console/logout", data={"csrf": token})
    token = _login(client, "marc")
    r = client.post(f"/console/posts/{post.id}/approve", data={"csrf": token})
    assert r.status_code == 200 and svc.show(post.id)["state"] == "approved"
    # The calendar's drag and drop: a script call with the token in a header.
    at = (NOW + timedelta(days=1)).isoformat()
    r = client.post(
        f"/console/posts/{post.id}/schedule", data={"at": at, "tz": "UTC"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 204 and svc.show(post.id)["scheduled_at"] == at
    week = client.get("/console/calendar").text
    assert f'data-post="{post.id}"' in week
    r = client.post(
        f"/console/posts/{post.id}/schedule",
        data={"at": "yesterday", "tz": "UTC"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 400
    clock.now += timedelta(days=1, minutes=1)
    for d in svc.due(clock.now):
        svc.failed(
            d.id,
            ChannelError("boom", channel="atom", transient=True),
            attempt=d.attempt,
            now=clock.now,
        )
    channels = client.get("/console/channels").text
    assert "retrying" in channels and "boom" in channels


def test_questions_in_the_console(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:
    _, client, _, _ = site
    q = client.post(
        "/api/questions", json={"text": "<img src=x onerror=alert(1)> Quelle vue ?", "lang": "fr"}
    ).json()
    token = _login(client, "anne")
    page = client.get("/console/questions").text
    assert "&lt;img src=x" in page and "<img src=x" not in page
    r = client.post(f"/console/questions/{q['id']}/moderate", data={"csrf": token, "decision": "approve"})
    assert r.status_code == 200 and "approved" in r.text
    r = client.post("/console/questions/select", data={"csrf": token, "id": q["id"]})
    assert r.status_code == 400 and "no crew endpoint" in r.text


def test_network_view(tmp_path: Path) -> None:
    import asyncio
    import threading

    from proxima.bpv7 import EID
    from proxima.ground.config import NetworkConfig, NetworkNode
    from proxima.runtime.appif import AppInterface
    from proxima.runtime.config import NodeConfig
    from proxima.runtime.node import Node

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    node = Node(NodeConfig(node_id=EID.parse("ipn:3.0"), store_path=tmp_path / "store"))
    appif = AppInterface(node, "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(node.start(), loop).result(30)
    asyncio.run_coroutine_threadsafe(appif.start(), loop).result(30)
    try:
        plan = tmp_path / "plan.rc"
        plan.write_text(
            "a contact +0 +3600 1 2 100000\na contact +7200 +9000 2 3 1000000\na range +0 +9000 1 2 1\n"
        )
        crew = Crew()
        (tmp_path / "keys").mkdir()
        save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
        config = GroundConfig(
            database=f"sqlite:///{tmp_path / 'g.db'}",
            media_dir=tmp_path / "media",
            keyring=tmp_path / "keys",
            base_url="https://proxima.example",
            channels=(ChannelConfig("atom", "atom", {}),),
            network=NetworkConfig(
                nodes=(
                    NetworkNode("White Sands", f"127.0.0.1:{appif.address[1]}", 3),
                    NetworkNode("ISS", "127.0.0.1:9", 1),
                ),
                plan=plan,
                epoch=NOW - timedelta(minutes=30),
            ),
        )
        web = WebApp(config, clock=lambda: NOW)
        client = TestClient(web.runner.asgi(), base_url="https://testserver")
        with web.runner.svc.sessions.begin() as s:
            accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=NOW)
        _, signed, _ = crew.post(created=NOW - timedelta(minutes=20))
        web.runner.svc.receive_post(signed, source=None, now=NOW)
        _login(client, "anne")
        page = client.get("/console/network").text
        assert "ipn:3.0" in page and "unreachable" in page
        assert "ISS → 2" in page and "2 → White Sands" in page
        assert page.count('fill="#2a7"') == 1  # the ISS contact is on now, the other later
        assert "written on board" in page and "+20 min" in page
    finally:
        asyncio.run_coroutine_threadsafe(appif.stop(), loop).result(30)
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
