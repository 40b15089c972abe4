"""Analytics through the running service: posts published on a real (local) Mastodon, the public
follows, favourites, boosts and answers, the service collects, and the figures come out of the
API, the console pages, the exports and ``proxima report``, each checked against a count made
by hand from what the corpus did."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from ground_helpers import PASSWORD, Crew
from local_mastodon import local_mastodon
from proxima.cli import main
from proxima.ground import accounts
from proxima.ground.config import AnalyticsConfig, ChannelConfig, GroundConfig
from proxima.ground.models import Slot
from proxima.runtime.keys import save_public_key
from proxima.web.app import WebApp

if TYPE_CHECKING:
    from pathlib import Path

# The local Mastodon dates what the public writes by the wall clock: the mission clock starts at
# the current hour so that both agree.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PARIS = ZoneInfo("Europe/Paris")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def test_collect_then_figures_pages_exports_and_report(tmp_path: Path) -> None:
    with local_mastodon(extra_users=("alice", "bruno", "chloe")) as masto:
        crew = Crew()
        (tmp_path / "keys").mkdir()
        save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
        config = GroundConfig(
            database=f"sqlite:///{tmp_path / 'g.db'}",
            media_dir=tmp_path / "media",
            keyring=tmp_path / "keys",
            base_url="https://proxima.example",
            port=0,
            channels=(
                ChannelConfig(
                    "mastodon", "mastodon", {"api_base_url": masto.base_url, "access_token": masto.token}
                ),
                ChannelConfig("atom", "atom", {}),
            ),
            analytics=AnalyticsConfig(
                database=tmp_path / "analytics.duckdb",
                tz="Europe/Paris",
                tags=("allezthomas",),
                accounts=("houston",),
            ),
        )
        clock = Clock()
        web = WebApp(config, clock=clock)
        svc = web.runner.open()
        with svc.sessions.begin() as s:
            accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=T0)
            accounts.create_account(s, "marc", "Marc", "agency", ["approver", "editor"], PASSWORD, now=T0)
            marc = s.scalars(select(accounts.Account).where(accounts.Account.handle == "marc")).one()
            s.expunge(marc)

        def act(who: str, path: str, **data: Any) -> Any:
            r = httpx.post(
                masto.base_url + path,
                data=data,
                headers={"Authorization": f"Bearer {masto.tokens[who]}"},
                timeout=30,
            )
            r.raise_for_status()
            return r.json()

        me = masto.get("/api/v1/accounts/verify_credentials")
        alice = masto.get("/api/v1/accounts/verify_credentials", token=masto.tokens["alice"])
        act("alice", f"/api/v1/accounts/{me['id']}/follow")

        async def scenario() -> None:
            await web.start()
            base = f"http://127.0.0.1:{web.port}"
            try:
                await _run(base)
            finally:
                await web.stop()

        async def _run(base: str) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                token = (await http.post("/api/login", json={"handle": "marc", "password": PASSWORD})).json()[
                    "token"
                ]
                auth = {"Authorization": f"Bearer {token}"}
                # The service collected once as it started (at T0); asking again at T0 adds nothing.
                first = (await http.post("/api/analytics/collect", headers=auth)).json()
                assert first["errors"] == {}
                assert first["followers"]["mastodon"] == 0

                # Two posts of the #AllezThomas campaign, both published in the same hour.
                ids = []
                for minutes, text in ((10, "Le lever de Soleil"), (25, "La Lune ce soir")):
                    post, signed, _ = crew.post(
                        {"fr": text, "en": "From the station"}, created=clock(), channels=("mastodon",),
                        hashtags=("AllezThomas",),
                    )  # fmt: skip
                    svc.receive_post(signed, source=None, now=clock())
                    svc.approve(post.id, marc, now=clock())
                    svc.schedule(post.id, marc, T0 + timedelta(minutes=minutes), now=clock())
                    ids.append(post.id)
                for minutes in (11, 26):
                    clock.now = T0 + timedelta(minutes=minutes)
                    assert await web.runner.publish_once() == 1
                statuses = {s["id"]: s for s in masto.get(f"/api/v1/accounts/{me['id']}/statuses")}
                first_fr = next(
                    sid
                    for sid, s in statuses.items()
                    if "lever de Soleil" in s["content"] and s["language"] == "fr"
                )

                # The public: two more followers, favourites, a boost, a reply and posts with the tag.
                act("bruno", f"/api/v1/accounts/{me['id']}/follow")
                act("chloe", f"/api/v1/accounts/{me['id']}/follow")
                act("bruno", f"/api/v1/accounts/{alice['id']}/follow")
                act("chloe", f"/api/v1/accounts/{alice['id']}/follow")
                act("alice", f"/api/v1/statuses/{first_fr}/favourite")
                act("bruno", f"/api/v1/statuses/{first_fr}/favourite")
                act("chloe", f"/api/v1/statuses/{first_fr}/reblog")
                act(
                    "bruno", "/api/v1/statuses", status="Bravo Thomas, c'est magnifique ! #AllezThomas",
                    in_reply_to_id=first_fr,
                    language="fr",
                )  # fmt: skip
                sad = "What a terrible, sad delay. So disappointing #AllezThomas"
                act("alice", "/api/v1/statuses", status=sad, language="en")
                act("chloe", "/api/v1/statuses", status="La station passe ce soir #ISS", language="fr")

                clock.now = T0 + timedelta(hours=1)
                second = await asyncio.to_thread(
                    CliRunner().invoke,
                    main,
                    ["analytics", "collect", "--server", base, "--token", token, "--json"],
                )
                assert second.exit_code == 0, second.output
                collected = json.loads(second.output)
                assert collected["followers"]["mastodon"] == 2  # the mission's account and houston (tracked)
                assert (
                    collected["mentions"]["mastodon"] == 2
                )  # bruno's reply and alice's post; not chloe's #ISS

                window = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}
                wide = {
                    "from": (T0 - timedelta(hours=1)).isoformat(),
                    "to": (T0 + timedelta(hours=3)).isoformat(),
                }
                overview = (await http.get("/api/analytics/overview", params=window, headers=auth)).json()
                growth = overview["growth"]["mastodon"]
                assert (growth["start_followers"], growth["end_followers"], growth["delta"]) == (1, 3, 2)
                assert growth["percent"] == 200.0
                top = overview["top_posts"][0]
                # The French status: 2 favourites + 1 boost + 1 reply; the English one nothing (the French
                # status answers it, but that is the post's own thread, not engagement).
                assert (top["post_id"], top["engagement"]) == (ids[0], 4)
                assert overview["engagement"]["mastodon"]["posts"] == 2

                params = {**wide, "campaign": "#AllezThomas", "bucket": "hour"}
                view = (await http.get("/api/analytics/campaign", params=params, headers=auth)).json()
                assert (view["mentions"], view["authors"], view["positive"], view["negative"]) == (2, 2, 1, 1)
                # Followers when collected: alice 2 (bruno, chloe), bruno 0.
                assert (view["reach"], view["unique_reach"]) == (2, 2)
                assert dict(map(tuple, view["languages"])) == {"en": 1, "fr": 1}
                assert len(view["buckets"]) == 4
                assert sum(b["mentions"] for b in view["buckets"]) == 2

                export = await http.get(
                    "/api/analytics/export",
                    params={**wide, "kind": "mentions", "format": "csv"},
                    headers=auth,
                )
                rows = list(csv.DictReader(io.StringIO(export.text)))
                # Cells a spreadsheet would run as a formula (=, +, -, @...) are quoted.
                assert sorted(r["author"] for r in rows) == ["'@alice@mock.local", "'@bruno@mock.local"]
                bad = await http.get("/api/analytics/export", params={"kind": "likes"}, headers=auth)
                assert bad.status_code == 400
                assert "likes" in bad.json()["error"]
                assert (await http.get("/api/analytics/overview")).status_code == 401

                best = (await http.get("/api/analytics/best-times", headers=auth)).json()
                local = (T0 + timedelta(minutes=10)).astimezone(PARIS)
                expected = (local.weekday(), local.hour, 2)
                assert [(b["weekday"], b["hour"], b["posts"]) for b in best["channels"]["mastodon"]] == [
                    expected
                ]
                applied = await http.post("/api/analytics/best-times/apply", headers=auth)
                assert applied.status_code == 201
                with svc.sessions() as s:
                    slot = s.scalars(select(Slot).where(Slot.channel == "mastodon")).one()
                    assert (slot.weekday, slot.time, slot.tz) == (
                        local.weekday(),
                        f"{local.hour:02d}:00",
                        "Europe/Paris",
                    )

                out = tmp_path / "report.pdf"
                cli = await asyncio.to_thread(
                    CliRunner().invoke, main,
                    ["report", "--campaign", "AllezThomas", "--from", wide["from"], "--to", wide["to"],
                     "--pdf", "--output", str(out), "--server", base, "--token", token],
                )  # fmt: skip
                assert cli.exit_code == 0, cli.output
                assert out.read_bytes().startswith(b"%PDF")
                html = tmp_path / "report.html"
                cli = await asyncio.to_thread(
                    CliRunner().invoke, main,
                    ["report", "--campaign", "AllezThomas", "--from", wide["from"], "--to", wide["to"],
                     "--output", str(html), "--server", base, "--token", token],
                )  # fmt: skip
                assert cli.exit_code == 0, cli.output
                text = html.read_text()
                assert "allezthomas" in text
                assert text.count("data:image/png;base64,") >= 3

            # The console, logged in with a session cookie.
            async with httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=True) as browser:
                page = await browser.get("/console/login")
                await browser.post(
                    "/console/login",
                    data={
                        "csrf": _csrf(page.text),
                        "handle": "anne",
                        "password": PASSWORD,
                        "next": "/console",
                    },
                )
                q = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}
                page = await browser.get("/console/analytics", params=q)
                assert page.status_code == 200
                assert "+200.0 %" in page.text
                assert "Proxima influence score (v1)" in page.text
                chart = await browser.get("/console/analytics/chart/growth.svg", params=q)
                assert chart.headers["content-type"].startswith("image/svg+xml")
                assert b"<svg" in chart.content
                campaign = await browser.get(
                    "/console/analytics/campaign",
                    params={**wide, "campaign": "allezthomas", "bucket": "hour"},
                )
                assert '<td id="mentions">2</td>' in campaign.text
                life = await browser.get(f"/console/analytics/posts/{ids[0]}")
                assert life.status_code == 200
                assert (await browser.get("/console/analytics/posts/nope")).status_code == 404
                pdf = await browser.get(
                    "/console/analytics/report.pdf", params={**q, "campaign": "allezthomas"}
                )
                assert pdf.content.startswith(b"%PDF")
                forged = await browser.post("/console/analytics/collect", data={"csrf": "forged"})
                assert forged.status_code == 403

        asyncio.run(asyncio.wait_for(scenario(), 180))
