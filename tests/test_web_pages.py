"""The public pages around the ground service: timeline, "verify a photo" (the fake selfie fails
with a clear reason), and "ask the crew" with CSRF, limits and escaping."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from ground_helpers import jpeg
from proxima.ground.channels.base import Published
from test_web_console import NOW, site  # noqa: F401  (the fixture)

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from proxima.web.app import WebApp
    from test_web_console import Clock, Crew


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def _published(web: WebApp, crew: Crew, photo: bytes) -> str:
    svc = web.runner.svc
    post, signed, parts = crew.post(media={"selfie.jpg": photo}, created=NOW, channels=("atom",))
    svc.receive_post(signed, source=None, now=NOW)
    for p in parts:
        svc.receive_media_part(p, now=NOW)
    from proxima.ground import accounts

    with svc.sessions() as s:
        marc = s.scalar(
            __import__("sqlalchemy").select(accounts.Account).where(accounts.Account.handle == "marc")
        )
        anne = s.scalar(
            __import__("sqlalchemy").select(accounts.Account).where(accounts.Account.handle == "anne")
        )
    assert marc is not None and anne is not None
    svc.approve(post.id, marc, now=NOW)
    svc.schedule(post.id, anne, NOW + timedelta(hours=1), now=NOW)
    for d in svc.due(NOW + timedelta(hours=1)):
        svc.published(d.id, Published("e1", "https://proxima.example/entries/e1"), attempt=d.attempt, now=NOW)
    return str(svc.show(post.id)["code"])


def test_timeline_and_photo_check(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:  # noqa: F811
    web, client, crew, _ = site
    photo = jpeg(size=(120, 90))
    code = _published(web, crew, photo)
    timeline = client.get("/timeline").text
    assert "Bonjour depuis l&#39;ISS" in timeline and f"/verify/{code}" in timeline
    page = client.get(f"/verify/{code.lower().replace('-', '')}").text
    assert "Authentic post" in page and "thomas" in page
    token = _csrf(page)
    ok = client.post(
        f"/verify/{code}", data={"csrf": token}, files={"photo": ("selfie.jpg", photo, "image/jpeg")}
    )
    assert ok.status_code == 200 and "This photo is authentic" in ok.text
    fake = jpeg(color=(250, 0, 0), size=(120, 90))
    bad = client.post(
        f"/verify/{code}", data={"csrf": token}, files={"photo": ("selfie.jpg", fake, "image/jpeg")}
    )
    assert "not the one the crew signed" in bad.text
    assert "media not listed: SHA-256 " in bad.text  # the reason, with the hash of the doctored file
    assert client.post(f"/verify/{code}", files={"photo": ("x.jpg", photo, "image/jpeg")}).status_code == 403
    assert client.get("/verify/AAAA-BBBB-CCCC-DDDD").status_code == 404


def test_ask_the_crew(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:  # noqa: F811
    _, client, _, clock = site
    form = client.get("/ask").text
    token = _csrf(form)
    r = client.post(
        "/ask", data={"csrf": token, "text": "<script>x()</script> Que voyez-vous ?", "lang": "fr"}
    )
    assert r.status_code == 201 and 'id="done"' in r.text
    assert client.post("/ask", data={"text": "Sans jeton ?", "lang": "fr"}).status_code == 403
    r = client.post("/ask", data={"csrf": token, "text": "x", "lang": "fr"})
    assert r.status_code == 400 and 'role="alert">text:' in r.text
    codes = [
        client.post("/ask", data={"csrf": token, "text": f"Question {i} ?", "lang": "en"}).status_code
        for i in range(12)
    ]
    assert 429 in codes
    clock.now += timedelta(hours=1)
    assert client.post("/ask", data={"csrf": token, "text": "Encore une ?", "lang": "fr"}).status_code == 201


def test_the_alert_form_is_served(site: tuple[WebApp, TestClient, Crew, Clock]) -> None:  # noqa: F811
    _, client, _, _ = site
    page = client.get("/alerts")
    assert page.status_code == 200 and "<form" in page.text
    r = client.post(
        "/api/alerts",
        json={
            "channel": "webhook",
            "target": "ftp://example.org/hook",
            "lat": 48.85,
            "lon": 2.35,
            "time_zone": "Europe/Paris",
        },
    )
    assert r.status_code == 400 and r.json()["field"] == "target"
