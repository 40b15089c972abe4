"""What a hostile or clumsy client gets: bounded bodies, clear 4xx for odd input, inert media."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from proxima.outreach.post import MediaRef, Post
from proxima.outreach.provenance import encode_signed_post, sign_post
from proxima.web.alerts import _ip_is_public
from test_web_console import NOW, _login, site  # noqa: F401  (the fixture)

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from proxima.web.app import WebApp
    from test_web_console import Clock, Crew

Site = tuple["WebApp", "TestClient", "Crew", "Clock"]


def test_bodies_are_bounded_before_they_are_read(site: Site) -> None:  # noqa: F811
    _, client, _, _ = site
    big = client.post(
        "/ask",
        content=b"x" * (3 * 1024 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413 and "at most" in big.json()["error"]

    def chunks():  # type: ignore[no-untyped-def]
        yield b"text=hello"

    chunked = client.post(
        "/ask", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert chunked.status_code == 411


def test_odd_input_gets_a_clear_4xx(site: Site) -> None:  # noqa: F811
    _, client, _, _ = site
    assert client.get("/passes", params={"place": "Paris", "tz": "Europe"}).status_code == 400
    assert client.get("/api/passes", params={"lat": "1", "lon": "1", "tz": "A" * 300}).status_code == 400
    fields = "&".join(f"f{i}=x" for i in range(40))
    r = client.post(
        "/alerts", content=fields.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413
    r = client.post("/api/alerts", content=b'{"channel": "ntfy"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415
    _login(client, "anne")
    assert client.get("/console/calendar", params={"start": "0001-01-01"}).status_code == 400
    client.post("/console/logout", data={"csrf": "x"})


def test_login_redirect_keeps_the_query(site: Site) -> None:  # noqa: F811
    _, client, _, _ = site
    client.cookies.clear()
    r = client.get("/console/calendar?start=2026-12-07", follow_redirects=False)
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fcalendar%3Fstart%3D2026-12-07"


def test_an_svg_from_the_crew_is_never_run_in_the_console(site: Site) -> None:  # noqa: F811
    web, client, crew, _ = site
    svc = web.runner.svc
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    post = Post(
        id="svg-1",
        author="thomas",
        created_ms=800_000_000_000,
        text={"en": "A drawing"},
        media=[MediaRef.for_bytes("x.svg", "image/svg+xml", svg, {"en": "x"})],
    )
    svc.receive_post(encode_signed_post(sign_post(post, crew.key)), source=None, now=NOW)
    from proxima.outreach.post import encode_media_part, media_parts

    for part in media_parts(post, "x.svg", svg):
        svc.receive_media_part(encode_media_part(part), now=NOW)
    _login(client, "anne")
    r = client.get("/console/posts/svg-1/media/x.svg")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["content-disposition"].startswith("attachment")


def test_a_withdrawn_key_makes_verification_say_so(site: Site) -> None:  # noqa: F811
    web, client, crew, _ = site
    from ground_helpers import jpeg
    from test_web_pages import _published

    code = _published(web, crew, jpeg())
    web.runner.svc.keyring.clear()
    r = client.get(f"/verify/{code}")
    assert r.status_code == 409 and re.search("cannot be checked any more", r.text)


def test_addresses_hidden_inside_ipv6_are_not_public() -> None:
    import ipaddress

    for text in ("64:ff9b::a00:1", "2002:7f00:1::", "::7f00:1", "fec0::1", "::ffff:10.0.0.1"):
        assert not _ip_is_public(ipaddress.ip_address(text)), text
    assert _ip_is_public(ipaddress.ip_address("2606:4700::1111"))
