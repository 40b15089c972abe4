"""Pass alerts end to end: a real SMTP server and a real HTTP receiver on loopback, real passes.

The clock is set around a visible pass over Paris that the orbit engine finds for the shipped
ISS elements (March 2026); every alert is checked against that pass in Paris time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import ssl
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.testclient import TestClient

from local_smtp import LocalSMTP
from loopback import bind, serve_in_thread
from proxima.errors import ChannelError, InvalidInput, NotFound, RateLimited
from proxima.ground.channels.webhook import verify_webhook
from proxima.ground.db import Base, make_engine, session_factory
from proxima.ground.ratelimit import RateLimiter
from proxima.orbit.passes import Look, Pass, VisiblePart, find_passes
from proxima.runtime.elements import load_elements
from proxima.web import alerts
from proxima.web.alerts import (
    AlertSent,
    AlertService,
    AlertSubscription,
    SenderConfig,
    SmtpConfig,
    Watch,
    alert_routes,
    due_alerts,
    pass_id,
)

PARIS = (48.8566, 2.3522)
SECRET = b"0123456789abcdef0123456789abcdef"
BASE = "https://iss.example"
TEMPLATES = Path(alerts.__file__).parent / "templates"


# --------------------------------------------------------------------------------------------
# the passes the tests are built around


def _paris_passes() -> list[Pass]:
    t0 = datetime(2026, 3, 11, 12, tzinfo=UTC).timestamp()
    elements = load_elements(None, now_unix=t0, max_age_days=None).find("ISS")
    table = find_passes(elements, *PARIS, t0_unix=t0, t1_unix=t0 + 86400, min_elevation_deg=10.0)
    return [p for p in table.for_observer(0) if p.visible is not None]


VISIBLE = _paris_passes()
FIRST, SECOND = VISIBLE[0], VISIBLE[1]


def appears(p: Pass) -> datetime:
    assert p.visible is not None
    return datetime.fromtimestamp(p.visible.start.t_unix, UTC)


def paris_hm(p: Pass) -> str:
    return appears(p).astimezone(zoneinfo.ZoneInfo("Europe/Paris")).strftime("%H:%M")


def test_the_chosen_passes_are_evening_passes_in_paris_winter_time() -> None:
    # Independent check of the zone arithmetic the alerts rely on: CET is UTC+1 until March 29.
    assert appears(FIRST).date().isoformat() == "2026-03-11"
    assert appears(FIRST).astimezone(zoneinfo.ZoneInfo("Europe/Paris")).utcoffset() == timedelta(hours=1)
    assert paris_hm(FIRST) == (appears(FIRST) + timedelta(hours=1)).strftime("%H:%M")
    assert appears(SECOND) - appears(FIRST) > timedelta(minutes=80)


# --------------------------------------------------------------------------------------------
# fixtures


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Receiver:
    """Records every POST; ``script`` gives the next statuses (200 once it is empty)."""

    port: int = 0
    script: list[int] = field(default_factory=list)
    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.got.append((request.url.path, dict(request.headers), body))
        status = self.script.pop(0) if self.script else 200
        return PlainTextResponse("ok" if status < 300 else "later", status_code=status)


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[LocalSMTP]:
    with LocalSMTP() as server:
        yield server


@pytest.fixture
def smtp(smtp_server: LocalSMTP) -> LocalSMTP:
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["POST"])])
    sock, _ = bind()
    rec.port = sock.getsockname()[1]
    with serve_in_thread(app, sock):
        yield rec


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.got.clear()
    receiver_server.script.clear()
    return receiver_server


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alerts.db'}")
    Base.metadata.create_all(engine, tables=[AlertSubscription.__table__, AlertSent.__table__])  # type: ignore[list-item]
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(appears(FIRST) - timedelta(hours=3))


def roomy() -> RateLimiter:
    return RateLimiter(rate_per_s=1.0, burst=1000, max_clients=100)


def make_service(
    sessions: sessionmaker[Session],
    clock: Clock,
    smtp: LocalSMTP | None = None,
    *,
    allow_private: bool = True,
    limiter: RateLimiter | None = None,
) -> AlertService:
    cfg = (
        SmtpConfig(host=smtp.host, port=smtp.port, sender="alerts@iss.example", timeout=30) if smtp else None
    )
    return AlertService(
        sessions,
        secret=SECRET,
        base_url=BASE,
        senders=SenderConfig(smtp=cfg, http_timeout=30),
        clock=clock,
        limiter=limiter or roomy(),
        target_limiter=roomy(),
        allow_private_targets=allow_private,
    )


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return Jinja2Templates(env=env)


def client_for(service: AlertService) -> TestClient:
    return TestClient(Starlette(routes=alert_routes(service, templates())), base_url=BASE)


def link(text: str, kind: str) -> str:
    match = re.search(rf"{re.escape(BASE)}/alerts/{kind}/[A-Za-z0-9_-]+", text)
    assert match is not None, text
    return match.group(0)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


# --------------------------------------------------------------------------------------------
# e-mail, from subscription to the one alert of a pass


def test_email_double_opt_in_then_exactly_one_alert_per_pass(
    sessions: sessionmaker[Session], clock: Clock, smtp: LocalSMTP
) -> None:
    service = make_service(sessions, clock, smtp)
    done = asyncio.run(
        service.subscribe(
            channel="email", target="ada@example.org", time_zone="Europe/Paris", lat=PARIS[0],
            lon=PARIS[1], place="Paris", client="c1",
        )
    )  # fmt: skip
    assert done.confirmed is False
    [confirmation] = smtp.wait_for(1)
    assert confirmation.rcpt_tos == ("ada@example.org",)
    assert "Confirm" in confirmation.message["Subject"]
    confirm_link = link(confirmation.body, "confirm")
    assert link(done.cancel_url, "cancel") == done.cancel_url

    due_at = appears(FIRST) - timedelta(minutes=10)
    # Not confirmed yet: nothing goes, even at the right time.
    assert asyncio.run(service.run_once(due_at)).sent == []
    assert len(smtp.messages) == 1

    assert service.confirm(token_of(confirm_link)).confirmed
    assert service.confirm(token_of(confirm_link)).confirmed  # a second click is harmless

    # Eleven minutes before: not yet.
    assert asyncio.run(service.run_once(due_at - timedelta(minutes=1))).sent == []
    report = asyncio.run(service.run_once(due_at))
    assert report.sent == [(done.id, pass_id(FIRST))]
    mails = smtp.wait_for(2)
    assert len(mails) == 2
    alert = mails[1]
    hm = paris_hm(FIRST)
    assert alert.rcpt_tos == ("ada@example.org",)
    assert hm in alert.message["Subject"]
    assert f"apparaît à {hm} (dans 10 min) (heure locale, Europe/Paris)" in alert.body
    assert f"appears at {hm} (in 10 min) (local time, Europe/Paris)" in alert.body
    assert "Paris" in alert.body
    assert FIRST.visible is not None
    assert f"climbs to {round(FIRST.visible.peak.el_deg)}°" in alert.body
    assert link(alert.body, "cancel") == done.cancel_url
    assert alert.message["List-Unsubscribe"] == f"<{done.cancel_url}>"

    # Again, a minute later, and after a restart: nothing more for this pass.
    assert asyncio.run(service.run_once(due_at)).sent == []
    assert asyncio.run(service.run_once(due_at + timedelta(minutes=1))).sent == []
    restarted = make_service(sessions, clock, smtp)
    assert asyncio.run(restarted.run_once(due_at + timedelta(minutes=2))).sent == []
    time.sleep(0.2)
    assert len(smtp.messages) == 2
    with sessions() as s:
        rows = s.scalars(select(AlertSent)).all()
    assert [(r.subscription_id, r.pass_id, r.outcome) for r in rows] == [(done.id, pass_id(FIRST), "sent")]


def test_cancel_link_stops_alerts(sessions: sessionmaker[Session], clock: Clock, smtp: LocalSMTP) -> None:
    service = make_service(sessions, clock, smtp)

    def subscribe(address: str) -> str:
        asyncio.run(
            service.subscribe(channel="email", target=address, time_zone="Europe/Paris",
                              lat=PARIS[0], lon=PARIS[1], client="c1")
        )  # fmt: skip
        mail = smtp.wait_for(len(smtp.messages))[-1]
        service.confirm(token_of(link(mail.body, "confirm")))
        return mail.rcpt_tos[0]

    subscribe("leaves@example.org")
    subscribe("stays@example.org")
    asyncio.run(service.run_once(appears(FIRST) - timedelta(minutes=5)))
    first_alerts = smtp.wait_for(4)[2:]
    assert sorted(m.rcpt_tos[0] for m in first_alerts) == ["leaves@example.org", "stays@example.org"]
    cancel = link(next(m for m in first_alerts if m.rcpt_tos[0] == "leaves@example.org").body, "cancel")

    with client_for(service) as web:
        page = web.get(cancel.removeprefix(BASE), headers={"accept-language": "en"})
        assert page.status_code == 200
        assert "Unsubscribe</button>" in page.text
        assert 'name="csrf_token"' in page.text
        done = web.post(cancel.removeprefix(BASE), data={"csrf_token": ""}, headers={"accept-language": "en"})
        assert done.status_code == 200
        assert "no more alerts" in done.text
        again = web.get(cancel.removeprefix(BASE), headers={"accept-language": "en"})
        assert 'data-key="cancelled"' in again.text

    report = asyncio.run(service.run_once(appears(SECOND) - timedelta(minutes=5)))
    assert len(report.sent) == 1
    mails = smtp.wait_for(5)
    time.sleep(0.2)
    assert [m.rcpt_tos[0] for m in smtp.messages[4:]] == ["stays@example.org"]
    assert paris_hm(SECOND) in mails[4].message["Subject"]


def test_one_click_unsubscribe_and_unknown_links(
    sessions: sessionmaker[Session], clock: Clock, receiver: Receiver
) -> None:
    service = make_service(sessions, clock)
    done = asyncio.run(
        service.subscribe(
            channel="ntfy", target=receiver.url("/t"), time_zone="UTC", lat=1, lon=2, client="c"
        )
    )
    with client_for(service) as web:
        path = done.cancel_url.removeprefix(BASE)
        bare = web.post(path, data={"List-Unsubscribe": "One-Click"})
        assert bare.status_code == 200
        assert bare.text == "unsubscribed\n"
        assert web.get("/alerts/cancel/" + "A" * 43).status_code == 404
        assert web.get("/alerts/confirm/short").status_code == 404
        assert web.delete("/api/alerts/" + "B" * 43).status_code == 404
    with sessions() as s:
        sub = s.get(AlertSubscription, done.id)
        assert sub is not None
        assert sub.cancelled_at is not None


# --------------------------------------------------------------------------------------------
# webhook and ntfy


def test_webhook_and_ntfy_alerts_reach_a_real_receiver(
    sessions: sessionmaker[Session], clock: Clock, receiver: Receiver
) -> None:
    service = make_service(sessions, clock)
    hook = asyncio.run(
        service.subscribe(channel="webhook", target=receiver.url("/hook"), time_zone="Europe/Paris",
                          place="Paris <Louvre>", lat=PARIS[0], lon=PARIS[1], client="c")
    )  # fmt: skip
    ntfy = asyncio.run(
        service.subscribe(channel="ntfy", target=receiver.url("/iss-paris"), time_zone="Europe/Paris",
                          lat=str(PARIS[0]), lon=str(PARIS[1]), lead_minutes="15", client="c")
    )  # fmt: skip
    assert hook.confirmed and ntfy.confirmed
    assert hook.webhook_secret is not None and hook.webhook_secret.startswith("whsec_")
    assert ntfy.webhook_secret is None

    # Twelve minutes before: inside ntfy's 15 min lead, outside the webhook's 10.
    clock.now = appears(FIRST) - timedelta(minutes=12)
    report = asyncio.run(service.run_once(clock.now))
    assert report.sent == [(ntfy.id, pass_id(FIRST))]
    [(path, headers, body)] = receiver.got
    hm = paris_hm(FIRST)
    assert path == "/iss-paris"
    assert hm in headers["title"]
    assert headers["tags"] == "artificial_satellite"
    text = body.decode()
    assert f"apparaît à {hm}" in text
    assert f"appears at {hm}" in text
    assert link(text, "cancel") == ntfy.cancel_url

    clock.now = appears(FIRST) - timedelta(minutes=9)
    report = asyncio.run(service.run_once(clock.now))
    assert report.sent == [(hook.id, pass_id(FIRST))]
    assert len(receiver.got) == 2
    path, headers, body = receiver.got[1]
    assert path == "/hook"
    verify_webhook(headers, body, hook.webhook_secret, now=clock.now.timestamp())
    data = json.loads(body)["data"]
    assert data["subscription"] == hook.id
    assert data["place"] == "Paris <Louvre>"
    assert data["appears_local"][11:16] == hm
    assert data["appears_local"].endswith("+01:00")
    assert FIRST.visible is not None
    assert data["max_elevation_deg"] == round(FIRST.visible.peak.el_deg, 1)
    assert data["cancel_url"] == hook.cancel_url
    assert f"appears at {hm}" in data["text"]["en"]
    # Nothing more for this pass, for either.
    assert asyncio.run(service.run_once(clock.now + timedelta(minutes=1))).sent == []
    assert len(receiver.got) == 2


def test_a_transient_failure_is_retried_and_a_claimed_send_is_never_repeated(
    sessions: sessionmaker[Session], clock: Clock, receiver: Receiver
) -> None:
    service = make_service(sessions, clock)
    flaky = asyncio.run(
        service.subscribe(channel="ntfy", target=receiver.url("/flaky"), time_zone="UTC", lat=PARIS[0],
                          lon=PARIS[1], client="c")
    )  # fmt: skip
    crashed = asyncio.run(
        service.subscribe(channel="ntfy", target=receiver.url("/crashed"), time_zone="UTC", lat=PARIS[0],
                          lon=PARIS[1], client="c")
    )  # fmt: skip
    now = appears(FIRST) - timedelta(minutes=8)
    # A run that died after claiming the alert, while sending it: left in state "sending".
    with sessions.begin() as s:
        s.add(AlertSent(subscription_id=crashed.id, pass_id=pass_id(FIRST), sent_at=now, outcome="sending"))
    receiver.script.append(503)
    report = asyncio.run(service.run_once(now))
    assert report.sent == []
    assert [f[0] for f in report.failed] == [flaky.id]
    assert [g[0] for g in receiver.got] == ["/flaky"]
    report = asyncio.run(service.run_once(now + timedelta(minutes=1)))
    assert report.sent == [(flaky.id, pass_id(FIRST))]
    assert [g[0] for g in receiver.got] == ["/flaky", "/flaky"]
    with sessions() as s:
        row = s.scalar(select(AlertSent).where(AlertSent.subscription_id == flaky.id))
        assert row is not None
        assert (row.outcome, row.attempts) == ("sent", 2)


def test_a_pass_too_low_for_the_subscriber_is_not_alerted(
    sessions: sessionmaker[Session], clock: Clock, receiver: Receiver
) -> None:
    assert FIRST.visible is not None
    peak = FIRST.visible.peak.el_deg
    service = make_service(sessions, clock)
    for name, minimum in (("/low", peak - 1), ("/high", peak + 1)):
        asyncio.run(
            service.subscribe(channel="ntfy", target=receiver.url(name), time_zone="UTC", lat=PARIS[0],
                              lon=PARIS[1], min_elevation_deg=minimum, client="c")
        )  # fmt: skip
    asyncio.run(service.run_once(appears(FIRST) - timedelta(minutes=3)))
    assert [g[0] for g in receiver.got] == ["/low"]


# --------------------------------------------------------------------------------------------
# refusals


GOOD: dict[str, Any] = {
    "channel": "webhook", "target": "https://hooks.example.com/iss", "time_zone": "Europe/Paris",
    "lat": 48.85, "lon": 2.35, "lead_minutes": 10, "min_elevation_deg": 10,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lat": 90.5}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"lat": True}, "lat"),
        ({"lon": -180.01}, "lon"),
        ({"lon": float("nan")}, "lon"),
        ({"lat": None, "lon": None}, "lat"),
        ({"lat": "", "lon": "", "place": "Atlantis"}, "place"),
        ({"place": "x" * 101}, "place"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"lead_minutes": 0}, "lead_minutes"),
        ({"lead_minutes": 121}, "lead_minutes"),
        ({"lead_minutes": 2.5}, "lead_minutes"),
        ({"min_elevation_deg": -1}, "min_elevation_deg"),
        ({"min_elevation_deg": 90.1}, "min_elevation_deg"),
        ({"channel": "sms"}, "channel"),
        ({"channel": "email", "target": "not-an-address"}, "target"),
        ({"channel": "email", "target": "a@example.org\r\nBcc: victim@example.org"}, "target"),
        ({"target": ""}, "target"),
        ({"target": "ftp://files.example.com/x"}, "target"),
        ({"target": "javascript:alert(1)"}, "target"),
        ({"target": "https://user:pw@hooks.example.com/"}, "target"),
        ({"target": "http://127.0.0.1:8080/hook"}, "target"),
        ({"target": "http://10.1.2.3/hook"}, "target"),
        ({"target": "http://192.168.0.10/hook"}, "target"),
        ({"target": "http://169.254.169.254/latest/meta-data"}, "target"),
        ({"target": "http://[::1]/hook"}, "target"),
        ({"target": "http://[::ffff:127.0.0.1]/hook"}, "target"),
        ({"target": "http://localhost/hook"}, "target"),
        ({"target": "http://printer.local/hook"}, "target"),
        ({"channel": "ntfy", "target": "http://0.0.0.0/topic"}, "target"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    sessions: sessionmaker[Session], clock: Clock, smtp: LocalSMTP, change: dict[str, Any], field: str
) -> None:
    service = make_service(sessions, clock, smtp, allow_private=False)
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(service.subscribe(**(GOOD | change), client="c"))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert smtp.messages == []
    with sessions() as s:
        assert s.scalars(select(AlertSubscription)).all() == []


def test_email_needs_an_smtp_server_and_coordinates_may_come_as_text(
    sessions: sessionmaker[Session], clock: Clock
) -> None:
    service = make_service(sessions, clock, None, allow_private=False)
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(service.subscribe(**(GOOD | {"channel": "email", "target": "a@example.org"}), client="c"))
    assert caught.value.field == "channel"
    done = asyncio.run(
        service.subscribe(**(GOOD | {"lat": "", "lon": "", "place": "48.8566, 2.3522",
                                     "target": "https://93.184.215.14/hook"}), client="c")
    )  # fmt: skip
    with sessions() as s:
        sub = s.get(AlertSubscription, done.id)
        assert sub is not None
        assert (sub.lat_deg, sub.lon_deg, sub.place) == (48.8566, 2.3522, "48.8566, 2.3522")


def test_the_json_api_names_the_field_and_cuts_a_flood(sessions: sessionmaker[Session], clock: Clock) -> None:
    service = make_service(
        sessions, clock, allow_private=False, limiter=RateLimiter(rate_per_s=1 / 60, burst=5, max_clients=100)
    )
    with client_for(service) as web:
        bad = web.post("/api/alerts", json=GOOD | {"time_zone": "Nowhere/City"})
        assert bad.status_code == 400
        assert bad.json()["field"] == "time_zone"
        assert web.post("/api/alerts", content=b"[1]").json()["field"] == "body"
        accepted = [
            web.post("/api/alerts", json=GOOD | {"target": "https://93.184.215.14/h"}) for _ in range(4)
        ]
        assert [r.status_code for r in accepted] == [201] * 4
        flood = web.post("/api/alerts", json=GOOD | {"target": "https://93.184.215.14/h"})
        assert flood.status_code == 429
        assert int(flood.headers["retry-after"]) >= 1
        body = accepted[0].json()
        assert body["confirmed"] is True
        assert body["webhook_secret"].startswith("whsec_")
        gone = web.delete("/api/alerts/" + token_of(body["cancel_url"]))
        assert gone.json() == {"id": body["id"], "cancelled": True}


def test_a_flood_from_one_client_is_cut_off(sessions: sessionmaker[Session], clock: Clock) -> None:
    service = make_service(
        sessions, clock, allow_private=False, limiter=RateLimiter(rate_per_s=1 / 60, burst=5, max_clients=100)
    )
    target = GOOD | {"target": "https://93.184.215.14/hook"}
    for _ in range(5):
        asyncio.run(service.subscribe(**target, client="flooder"))
    for _ in range(20):
        with pytest.raises(RateLimited) as caught:
            asyncio.run(service.subscribe(**target, client="flooder"))
        assert caught.value.retry_after > 0
    # Invalid attempts count too, and another client is not affected.
    with pytest.raises(RateLimited):
        asyncio.run(service.subscribe(**(target | {"lat": 99}), client="flooder"))
    asyncio.run(service.subscribe(**target, client="neighbour"))
    clock.now += timedelta(seconds=61)
    asyncio.run(service.subscribe(**target, client="flooder"))
    with sessions() as s:
        assert len(s.scalars(select(AlertSubscription)).all()) == 7


# --------------------------------------------------------------------------------------------
# the HTML form


def test_the_form_subscribes_escapes_and_shows_errors(
    sessions: sessionmaker[Session], clock: Clock, smtp: LocalSMTP
) -> None:
    service = make_service(sessions, clock, smtp)
    with client_for(service) as web:
        page = web.get("/alerts?lang=en")
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.text
        assert "Europe/Paris" in page.text
        form = {"place": "<script>alert(1)</script>", "lat": "48,8566", "lon": "2.3522",
                "time_zone": "Europe/Paris", "channel": "email", "target": "bob@example.org",
                "lead_minutes": "500", "min_elevation_deg": "10", "csrf_token": ""}  # fmt: skip
        refused = web.post("/alerts?lang=en", data=form)
        assert refused.status_code == 400
        assert 'data-field="lead_minutes"' in refused.text
        assert "<script>alert(1)</script>" not in refused.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text
        assert smtp.messages == []
        accepted = web.post("/alerts?lang=fr", data=form | {"lead_minutes": "20"})
        assert accepted.status_code == 201
        assert 'id="alert-check-mail"' in accepted.text
        [mail] = smtp.wait_for(1)
        confirm = link(mail.body, "confirm")
        confirmed = web.get(confirm.removeprefix(BASE) + "?lang=fr")
        assert confirmed.status_code == 200
        assert 'data-key="confirmed"' in confirmed.text
    with sessions() as s:
        [sub] = s.scalars(select(AlertSubscription)).all()
        assert (sub.confirmed, sub.lead_minutes, sub.lat_deg, sub.place) == (
            True, 20, 48.8566, "<script>alert(1)</script>",
        )  # fmt: skip


def test_confirmation_expires_and_cancelled_cannot_be_confirmed(
    sessions: sessionmaker[Session], clock: Clock, smtp: LocalSMTP
) -> None:
    service = make_service(sessions, clock, smtp)
    for address in ("late@example.org", "gone@example.org"):
        asyncio.run(service.subscribe(**(GOOD | {"channel": "email", "target": address}), client="c"))
    late, gone = smtp.wait_for(2)
    cancel_gone = service.cancel_url(
        next(s.id for s in sessions().scalars(select(AlertSubscription)) if s.target == "gone@example.org")
    )
    service.cancel(token_of(cancel_gone))
    with client_for(service) as web:
        assert web.get(link(gone.body, "confirm").removeprefix(BASE)).status_code == 409
        clock.now += timedelta(days=8)
        assert web.get(link(late.body, "confirm").removeprefix(BASE)).status_code == 409
    with pytest.raises(NotFound):
        service.confirm("x" * 43)


# --------------------------------------------------------------------------------------------
# planning, pure


def _pass(appear_t: float, peak_el: float, *, visible: bool = True) -> Pass:
    look = Look(appear_t, 300.0, 10.0)
    vis = VisiblePart(look, Look(appear_t + 120, 200.0, peak_el), Look(appear_t + 300, 100.0, 12.0), -2.0)
    return Pass(0, look, Look(appear_t + 120, 200.0, peak_el), Look(appear_t + 300, 100.0, 10.0), 500.0,
                vis if visible else None)  # fmt: skip


def test_due_alerts_rules() -> None:
    t = datetime(2026, 3, 11, 19, tzinfo=UTC)
    appear = t.timestamp() + 600
    p = _pass(appear, 40.0)
    watch = Watch("s", 0.0, 0.0, min_elevation_deg=10.0, lead_minutes=10)
    assert [a.pass_id for a in due_alerts([watch], {"s": [p]}, t)] == [pass_id(p)]
    # Too early, unless the run's window reaches the alert time; too late once it appears.
    assert due_alerts([watch], {"s": [p]}, t - timedelta(seconds=1)) == []
    assert len(due_alerts([watch], {"s": [p]}, t - timedelta(seconds=50), timedelta(seconds=60))) == 1
    assert due_alerts([watch], {"s": [p]}, t + timedelta(minutes=10)) == []
    assert len(due_alerts([watch], {"s": [p]}, t + timedelta(minutes=9, seconds=59))) == 1
    # Not visible, too low, already sent (also under a pass id a few minutes off).
    assert due_alerts([watch], {"s": [_pass(appear, 40.0, visible=False)]}, t) == []
    assert due_alerts([Watch("s", 0, 0, min_elevation_deg=41.0)], {"s": [p]}, t) == []
    for sent in (pass_id(p), pass_id(p) + 3, pass_id(p) - 30):
        assert due_alerts([Watch("s", 0, 0, sent=frozenset({sent}))], {"s": [p]}, t) == []
    assert len(due_alerts([Watch("s", 0, 0, sent=frozenset({pass_id(p) - 95}))], {"s": [p]}, t)) == 1
    # Each subscription with its own lead; time order.
    early = Watch("early", 0, 0, lead_minutes=30)
    q = _pass(appear - 300, 50.0)
    got = due_alerts([watch, early], {"s": [p], "early": [q, p]}, t)
    assert [(a.subscription_id, a.appears_unix) for a in got] == [
        ("early", appear - 300), ("early", appear), ("s", appear),
    ]  # fmt: skip


def test_passes_for_many_observers_matches_one_at_a_time() -> None:
    t0 = appears(FIRST).timestamp() - 3600
    elements = load_elements(None, now_unix=t0, max_age_days=None).find("ISS")
    watches = [
        Watch("paris", *PARIS),
        Watch("low", 45.76, 4.84, min_elevation_deg=5.0),
        Watch("south", -33.9, 151.2),
    ]
    got = alerts.passes_for(elements, watches, t0, t0 + 4 * 3600)
    assert [pass_id(p) for p in got["paris"]] == [pass_id(p) for p in (FIRST, SECOND)]
    assert all(p.visible is not None for ps in got.values() for p in ps)
    single = find_passes(elements, 45.76, 4.84, t0_unix=t0, t1_unix=t0 + 4 * 3600, min_elevation_deg=5.0)
    assert [pass_id(p) for p in got["low"]] == [pass_id(p) for p in single.for_observer(0) if p.visible]
    assert got["low"]


# --------------------------------------------------------------------------------------------
# STARTTLS


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


def test_email_through_starttls(sessions: sessionmaker[Session], clock: Clock, tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)
    with LocalSMTP(tls=server_tls) as smtp:
        plain = AlertService(
            sessions, secret=SECRET, base_url=BASE, clock=clock, limiter=roomy(), target_limiter=roomy(),
            senders=SenderConfig(smtp=SmtpConfig(host=smtp.host, port=smtp.port, timeout=30)),
        )  # fmt: skip
        # The server insists on STARTTLS: without it the confirmation cannot go, and the
        # subscription is dropped (cancelled) rather than left waiting.
        with pytest.raises(ChannelError) as caught:
            asyncio.run(
                plain.subscribe(**(GOOD | {"channel": "email", "target": "t@example.org"}), client="c")
            )
        assert caught.value.channel == "email"
        with sessions() as s:
            [dropped] = s.scalars(select(AlertSubscription)).all()
            assert dropped.cancelled_at is not None
        tls = SmtpConfig(host=smtp.host, port=smtp.port, starttls=True, ssl_context=client_tls, timeout=30)
        service = AlertService(
            sessions, secret=SECRET, base_url=BASE, clock=clock, limiter=roomy(), target_limiter=roomy(),
            senders=SenderConfig(smtp=tls),
        )  # fmt: skip
        asyncio.run(service.subscribe(**(GOOD | {"channel": "email", "target": "t@example.org"}), client="c"))
        [mail] = smtp.wait_for(1)
        assert mail.rcpt_tos == ("t@example.org",)
        assert "/alerts/confirm/" in mail.body
