"""The ground service's HTTP API: login, roles, review steps, public timeline, verification, questions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from starlette.testclient import TestClient

from ground_helpers import PASSWORD, T0, Ground, jpeg, make_ground
from proxima.ground import accounts
from proxima.ground.api import build_app
from proxima.ground.channels.base import Published
from proxima.ground.ratelimit import RateLimiter

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def env(tmp_path: Path) -> tuple[Ground, TestClient, Clock]:
    g = make_ground(tmp_path)
    clock = Clock(T0)
    app = build_app(
        g.service,
        clock=clock,
        crew_endpoint="dtn://iss/crew",
        question_limiter=RateLimiter(rate_per_s=1 / 60, burst=3, max_clients=1000),
    )
    return g, TestClient(app), clock


def _token(client: TestClient, handle: str) -> dict[str, str]:
    r = client.post("/api/login", json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _post(g: Ground, photo: bytes | None = None) -> tuple[str, bytes]:
    media = {"earth.jpg": photo} if photo else None
    post, signed, parts = g.crew.post(media=media)
    g.service.receive_post(signed, source="dtn://iss/crew", now=T0)
    for p in parts:
        g.service.receive_media_part(p, now=T0)
    return post.id, signed


def test_console_needs_a_token_and_the_right_role(env: tuple[Ground, TestClient, Clock]) -> None:
    g, client, clock = env
    pid, _ = _post(g)
    assert client.get("/api/posts").status_code == 401
    assert client.get("/api/posts", headers={"Authorization": "Bearer prx_nope"}).status_code == 401
    bad = client.post("/api/login", json={"handle": "anne", "password": "wrong password!"})
    assert bad.status_code == 401
    anne = _token(client, "anne")
    assert [p["id"] for p in client.get("/api/posts", headers=anne).json()["posts"]] == [pid]
    r = client.post(f"/api/posts/{pid}/approve", headers=anne)
    assert r.status_code == 403 and "approver" in r.json()["error"]
    thomas = _token(client, "thomas")
    r = client.post(f"/api/posts/{pid}/approve", headers=thomas)
    assert r.status_code == 403 and "four eyes" in r.json()["error"]
    marc = _token(client, "marc")
    r = client.post(f"/api/posts/{pid}/approve", headers=marc)
    assert r.status_code == 200 and r.json()["state"] == "approved"
    r = client.post(f"/api/posts/{pid}/approve", headers=marc)
    assert r.status_code == 409
    # A crew account may not read the console; a token left unused for a month stops working.
    with g.service.sessions.begin() as s:
        accounts.create_account(s, "samantha", "Samantha", "crew", ["crew"], PASSWORD, now=T0)
    assert client.get("/api/posts", headers=_token(client, "samantha")).status_code == 403
    clock.now += timedelta(days=31)
    assert client.get("/api/posts", headers=anne).status_code == 401


def test_schedule_validation_over_http(env: tuple[Ground, TestClient, Clock]) -> None:
    g, client, _ = env
    pid, _ = _post(g)
    anne = _token(client, "anne")
    r = client.post(f"/api/posts/{pid}/schedule", headers=anne, json={"at": "tomorrow-ish"})
    assert r.status_code == 400 and r.json()["field"] == "at"
    r = client.post(f"/api/posts/{pid}/schedule", headers=anne, json={"at": "2026-12-01T09:00"})
    assert r.status_code == 400 and "no UTC offset" in r.json()["error"]
    r = client.post(
        f"/api/posts/{pid}/schedule", headers=anne, json={"at": "2026-12-01T10:00", "tz": "Europe/Paris"}
    )
    assert r.status_code == 200 and r.json()["scheduled_at"] == "2026-12-01T09:00:00+00:00"
    r = client.post(f"/api/posts/{pid}/frobnicate", headers=anne)
    assert r.status_code == 404
    r = client.post(f"/api/posts/{pid}/edit", headers=anne, content=b"{not json")
    assert r.status_code == 400
    r = client.post(f"/api/posts/{pid}/edit", headers=anne, json={"hashtags": "Proxima"})
    assert r.status_code == 400 and r.json()["field"] == "hashtags"
    r = client.post(f"/api/posts/{pid}/edit", headers=anne, content=b"x" * 300_000)
    assert r.status_code == 413


def test_public_timeline_and_photo_verification(env: tuple[Ground, TestClient, Clock]) -> None:
    g, client, _ = env
    photo = jpeg()
    pid, _ = _post(g, photo)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, T0 + timedelta(hours=1), now=T0)
    assert client.get("/api/timeline").json()["posts"] == []
    # Nothing of a post is shown before it is published, not even through its code.
    unpublished = g.service.show(pid)["code"]
    assert client.get(f"/api/verify/{unpublished}").status_code == 404
    for d in g.service.due(T0 + timedelta(hours=1)):
        g.service.published(
            d.id,
            Published("1", f"https://{d.channel}.example/1"),
            attempt=d.attempt,
            now=T0 + timedelta(hours=1),
        )
    (pub,) = client.get("/api/timeline").json()["posts"]
    assert pub["id"] == pid and pub["links"]["atom"] == "https://atom.example/1"
    code = pub["code"]
    info = client.get(f"/api/verify/{code.lower()}").json()
    assert info["authentic"] is True and info["signer"] == "thomas"
    ok = client.post(f"/api/verify/{code}/media", content=photo).json()
    assert ok == {
        "authentic": True,
        "signer": "thomas",
        "name": "earth.jpg",
        "sha256": info["media"][0]["sha256"],
    }
    fake = client.post(f"/api/verify/{code}/media", content=jpeg(color=(200, 0, 0))).json()
    assert fake["authentic"] is False and fake["failure"] == "media_not_listed"
    assert client.get("/api/verify/AAAA-AAAA-AAAA-AAAA").status_code == 404
    signed = client.get(f"/api/verify/{code}/signed")
    assert signed.headers["content-type"] == "application/cbor" and len(signed.content) > 64


def test_questions_flood_html_and_uplink(env: tuple[Ground, TestClient, Clock]) -> None:
    g, client, clock = env
    ask = {"text": "<script>alert(1)</script> Que voyez-vous la nuit ?", "lang": "fr", "name": "Léa"}
    ids = []
    for _ in range(3):
        r = client.post("/api/questions", json=ask)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    flood = client.post("/api/questions", json=ask)
    assert flood.status_code == 429 and int(flood.headers["retry-after"]) >= 1
    clock.now += timedelta(minutes=2)
    assert client.post("/api/questions", json=ask).status_code == 201
    clock.now += timedelta(minutes=2)
    assert client.post("/api/questions", json={"text": "x", "lang": "fr"}).status_code == 400
    clock.now += timedelta(minutes=2)
    assert (
        client.post("/api/questions", json={"text": "Une question ?", "lang": "xx-notalang-!"}).status_code
        == 400
    )
    anne = _token(client, "anne")
    listed = client.get("/api/questions", headers=anne).json()["questions"]
    assert any(q["text"].startswith("<script>") for q in listed)  # kept as text; escaped where shown
    r = client.post(f"/api/questions/{ids[0]}/moderate", headers=anne, json={"approve": True})
    assert r.status_code == 200
    r = client.post("/api/questions/select", headers=anne, json={"ids": [ids[0]]})
    assert r.status_code == 200
    (_, dest, payload) = g.service.pending_uplinks()[-1]
    assert dest == "dtn://iss/crew" and b"Que voyez-vous" in payload
    r = client.post("/api/questions/select", headers=anne, json={"ids": [ids[1]]})
    assert r.status_code == 409


def test_team_draft_over_http(env: tuple[Ground, TestClient, Clock]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    g, client, _ = env
    key = Ed25519PrivateKey.generate()
    g.service.signing_key = ("esa", key)
    g.service.keyring["esa"] = key.public_key()
    with g.service.sessions.begin() as s:
        accounts.create_account(s, "esa", "ESA", "agency", [], None, now=T0)
    anne = _token(client, "anne")
    body = {"author": "esa", "text": {"en": "<b>Launch</b> at 10:00"}, "campaign": "Proxima"}
    r = client.post("/api/posts", headers=anne, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "in_review" and r.json()["text"]["en"] == "<b>Launch</b> at 10:00"
    assert client.post("/api/posts", headers=anne, json={**body, "text": "plain"}).status_code == 400
    assert client.post("/api/posts", json=body).status_code == 401
