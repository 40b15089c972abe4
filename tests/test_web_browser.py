"""The web app in a real browser (Debian's chromium through Playwright): an editor approves a post and
sees it published, the public checks a photo and asks a question. Screenshots are kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from browser import Clock, chromium, have_chromium, shot, web_app
from ground_helpers import PASSWORD, jpeg
from proxima.analytics.model import FollowerSample, Mention

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    not have_chromium(), reason="Debian's chromium is not installed (scripts/check installs it)"
)


def test_an_editor_approves_a_post_and_sees_it_published(tmp_path: Path) -> None:
    clock = Clock()
    web, crew, base = web_app(tmp_path, clock)
    photo = jpeg(size=(320, 200))
    post, signed, parts = crew.post(media={"cupola.jpg": photo}, created=clock(), channels=("atom",))
    svc = web.runner.svc
    svc.receive_post(signed, source=None, now=clock())
    for p in parts:
        svc.receive_media_part(p, now=clock())

    async def main() -> None:
        await web.start()
        try:
            async with chromium() as browser:
                page = await browser.new_page()
                await page.goto(f"{base}/console")
                await page.fill("input[name=handle]", "marc")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/console")
                await shot(page, "console-queue")
                await page.click(f"a[href='/console/posts/{post.id}']")
                await page.wait_for_selector("text=Signed by")
                assert await page.locator(".media img").count() == 1
                await shot(page, "console-post")
                await page.click("button.approve")
                await page.wait_for_selector(".badge.state-approved")
                at = (clock() + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
                await page.fill("input[name=at]", at)
                await page.fill("input[name=tz]", "UTC")
                await page.click("text=Schedule (empty: next free slot)")
                await page.wait_for_selector(".badge.state-scheduled")
                clock.offset += timedelta(minutes=11)
                for _ in range(100):
                    await asyncio.sleep(0.1)
                    if svc.show(post.id)["state"] == "published":
                        break
                await page.reload()
                await page.wait_for_selector(".badge.state-published")
                link = page.locator("section >> a[href*='/entries/']")
                assert await link.count() == 1
                await shot(page, "console-published")

                public = await browser.new_page()
                await public.goto(f"{base}/timeline")
                await public.wait_for_selector(f"#post-{post.id}")
                await public.click(f"#post-{post.id} a[href^='/verify/']")
                await public.wait_for_selector("text=Authentic post")
                await public.set_input_files(
                    "input[name=photo]",
                    files=[{"name": "cupola.jpg", "mimeType": "image/jpeg", "buffer": photo}],
                )
                await public.click("text=Check this photo")
                await public.wait_for_selector("#result")
                assert "is authentic" in (await public.inner_text("#result"))
                fake = jpeg(color=(255, 0, 0), size=(320, 200))
                await public.set_input_files(
                    "input[name=photo]",
                    files=[{"name": "cupola.jpg", "mimeType": "image/jpeg", "buffer": fake}],
                )
                await public.click("text=Check this photo")
                await public.wait_for_selector("#result.error")
                assert "not the one the crew signed" in (await public.inner_text("#result"))
                await shot(public, "verify-doctored")

                await public.goto(f"{base}/ask")
                await public.fill("textarea[name=text]", "<script>window.pwned=1</script> Que voyez-vous ?")
                await public.click("text=Send")
                await public.wait_for_selector("#done")
                await page.goto(f"{base}/console/questions")
                await page.wait_for_selector("text=Que voyez-vous")
                assert await page.evaluate("window.pwned === undefined")
                await shot(page, "console-questions")
        finally:
            await web.stop()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_the_public_sees_the_station_its_passes_and_subscribes_to_alerts(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 3, 12, 18, 0, tzinfo=UTC))  # a day after the shipped elements' epoch
    web, _, base = web_app(tmp_path, clock)

    async def main() -> None:
        await web.start()
        try:
            async with chromium() as browser:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(f"{base}/")
                marker = page.locator("#station-marker")
                await marker.wait_for()
                assert await page.locator("#world-map path").count() > 100  # the country outlines
                assert "km" in await page.inner_text("#st-alt")
                await shot(page, "public-station")

                await page.goto(f"{base}/passes")
                await page.fill("input[name=place]", "Paris")
                await page.click("text=Show sightings")
                await page.wait_for_url("**/passes?place=Paris**")
                rows = page.locator("svg.sky-chart, .sky-chart svg, figure svg")
                await page.wait_for_selector("text=Paris")
                assert await rows.count() >= 1
                await shot(page, "public-passes-paris")

                await page.goto(f"{base}/alerts")
                await page.fill("input[name=place]", "Paris")
                await page.fill("input[name=time_zone]", "Europe/Paris")
                await page.select_option("select[name=channel]", "ntfy")
                await page.fill("input[name=target]", "http://127.0.0.1:9/proxima-alerts")
                await page.click("button[type=submit]")
                await page.wait_for_selector("#alert-done")
                await shot(page, "public-alert-subscribed")
        finally:
            await web.stop()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_an_editor_reads_the_analytics_and_opens_a_campaign(tmp_path: Path) -> None:
    clock = Clock()
    web, _, base = web_app(tmp_path, clock)
    now = clock()
    analytics = web.analytics.attach(web.runner.svc, web.runner.channels)
    # Audience and mentions as collectors would have stored them: 100 followers growing to 151.
    analytics.store.add_followers(
        [
            FollowerSample("atom", "proxima", now - timedelta(days=2), 100),
            FollowerSample("atom", "proxima", now - timedelta(hours=1), 151),
        ]
    )
    analytics.store.add_mentions(
        [
            Mention(
                "atom",
                f"m{i}",
                f"fan{i % 3}",
                now - timedelta(hours=3, minutes=i),
                text,
                sentiment=score,
                lang=lang,
                tags=("allezthomas",),
                author_followers=10 * i,
            )
            for i, (text, score, lang) in enumerate(
                [
                    ("Bravo Thomas !", 0.6, "fr"),
                    ("<img src=x onerror=window.pwned=1>", 0.0, "en"),
                    ("Quelle tristesse", -0.5, "fr"),
                ]
            )
        ]
    )

    async def main() -> None:
        await web.start()
        try:
            async with chromium() as browser:
                page = await browser.new_page()
                await page.goto(f"{base}/console/analytics")
                await page.fill("input[name=handle]", "anne")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_selector("text=Audience growth")
                start = quote((now - timedelta(days=2)).isoformat())
                await page.goto(f"{base}/console/analytics?from={start}")
                assert "+51.0 %" in await page.inner_text("main")
                await page.wait_for_load_state("networkidle")
                widths = await page.eval_on_selector_all("img.chart", "imgs => imgs.map(i => i.naturalWidth)")
                assert len(widths) == 2
                assert all(w > 0 for w in widths)
                await shot(page, "console-analytics")
                await page.fill("input[name=campaign]", "#AllezThomas")
                await page.click("text=Open")
                await page.wait_for_selector("#mentions")
                assert await page.inner_text("#mentions") == "3"
                assert await page.inner_text("#authors") == "3"
                await page.wait_for_load_state("networkidle")
                assert await page.evaluate("window.pwned === undefined")
                await shot(page, "console-campaign")
        finally:
            await web.stop()

    asyncio.run(asyncio.wait_for(main(), 120))
