"""Pass alerts: anyone subscribes with a place and a channel, and is told before each visible pass.

A subscription names where the observer is (latitude, longitude, a place name, an IANA time zone),
how high a pass must climb to be worth it (``min_elevation_deg``, 10° by default), how long before
it to be told (``lead_minutes``, 10 by default) and one channel:

* ``email``: a message through the configured SMTP server. Double opt-in: subscribing sends a
  confirmation link, and nothing else is ever sent to the address until it is clicked;
* ``webhook``: a JSON POST signed per Standard Webhooks, with a secret derived for this
  subscription (given once, when subscribing);
* ``ntfy``: a plain-text POST with ``Title``/``Tags`` headers (an ntfy topic URL, or anything that
  speaks the same way).

Each alert carries a cancel link. Links hold tokens derived with HMAC from the service's secret
and the subscription's random id, and the table keeps only their SHA-256: the database alone does
not give them away, yet an alert can be written again at any time without storing the token.

Planning is pure (:func:`passes_for`, :func:`due_alerts`, :func:`compose`): a pass is *due* when
it is visible, its visible part climbs to at least the subscription's minimum elevation, and
``appears − lead − window ≤ now < appears``, where ``appears`` is when the station becomes visible
(10° up, or leaving the Earth's shadow). Passes are computed once for all observers with the
vectorized engine (:func:`proxima.orbit.passes.find_passes`).

Each pass is alerted at most once per subscription, across restarts and concurrent runners: an
``alert_sent`` row (unique per subscription and pass) is committed in state ``sending`` *before*
the message leaves, then set to ``sent``, ``failed`` or ``retry``. A crash during a send leaves
``sending``, which is never sent again (at most once: a lost alert rather than a duplicate). A
transient failure (network down, 4xx SMTP reply, HTTP 429/5xx) becomes ``retry`` and is tried
again by the next run while the pass is still ahead, up to :data:`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import smtplib
import ssl
import unicodedata
import urllib.parse
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import httpx
import numpy as np
from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from proxima.errors import (
    ChannelError,
    ConfigError,
    Conflict,
    GroundError,
    InvalidInput,
    NotFound,
    OrbitInputError,
    RateLimited,
)
from proxima.ground.api import client_key
from proxima.ground.channels.webhook import sign_webhook, webhook_id
from proxima.ground.db import Base
from proxima.ground.ratelimit import RateLimiter
from proxima.orbit.passes import compass, find_passes
from proxima.web.console import csrf_matches, csrf_token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    from sqlalchemy.orm import Session, sessionmaker
    from starlette.requests import Request
    from starlette.routing import BaseRoute
    from starlette.templating import Jinja2Templates

    from proxima.orbit.elements import Elements
    from proxima.orbit.passes import Pass

__all__ = [
    "APPEAR_ELEVATION_DEG",
    "MAX_ATTEMPTS",
    "Alert",
    "AlertMessage",
    "AlertSent",
    "AlertService",
    "AlertSubscription",
    "ChannelKind",
    "RunReport",
    "SenderConfig",
    "SmtpConfig",
    "Subscribed",
    "Watch",
    "alert_routes",
    "compose",
    "due_alerts",
    "pass_id",
    "passes_for",
]

log = logging.getLogger(__name__)

APPEAR_ELEVATION_DEG: Final = 10.0
"""Passes are searched from this elevation (Spot the Station's), or lower for a lower minimum."""
SAME_PASS_MINUTES: Final = 30
"""Pass ids this close are one pass: newer elements move a culmination by seconds, not by an orbit."""
MAX_ATTEMPTS: Final = 3
"""Sends of one alert before a transient failure is given up."""
CONFIRM_TTL: Final = timedelta(days=7)
"""An e-mail subscription not confirmed within this time cannot be confirmed any more."""
MAX_LEAD_MINUTES: Final = 120
MAX_PLACE_CHARS: Final = 100
MAX_TARGET_CHARS: Final = 500
MAX_BODY_BYTES: Final = 8192
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_COORDS = re.compile(r"\s*([+-]?\d{1,2}(?:\.\d+)?)\s*[,; ]\s*([+-]?\d{1,3}(?:\.\d+)?)\s*")
_PRIVATE_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".home.arpa")
_TRANSIENT_HTTP: Final = frozenset({408, 425, 429})


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# tables


class ChannelKind(StrEnum):
    """How a subscriber is told."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    NTFY = "ntfy"


class AlertSubscription(Base):
    """One subscriber's place and channel (table ``alert_subscriptions``)."""

    __tablename__ = "alert_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the cancel token."""
    confirm_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the confirmation token (used by e-mail subscriptions)."""
    lat_deg: Mapped[float]
    lon_deg: Mapped[float]
    place: Mapped[str] = mapped_column(String(MAX_PLACE_CHARS), default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    min_elevation_deg: Mapped[float] = mapped_column(default=10.0)
    lead_minutes: Mapped[int] = mapped_column(default=10)
    channel: Mapped[ChannelKind] = mapped_column(
        Enum(
            ChannelKind,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
        )
    )
    target: Mapped[str] = mapped_column(String(MAX_TARGET_CHARS))
    """The e-mail address, or the URL to POST to."""
    client: Mapped[str] = mapped_column(String(64), default="")
    """An opaque key of who subscribed (for abuse reports), never the address itself."""
    created: Mapped[datetime]
    confirmed: Mapped[bool] = mapped_column(default=False, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None, index=True)

    @property
    def active(self) -> bool:
        """Confirmed and not cancelled: alerts go out."""
        return self.confirmed and self.cancelled_at is None


class AlertSent(Base):
    """One alert of one pass to one subscription (table ``alert_sent``); at most one per pass."""

    __tablename__ = "alert_sent"
    __table_args__ = (UniqueConstraint("subscription_id", "pass_id", name="uq_alert_sent_pass"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("alert_subscriptions.id", ondelete="CASCADE"), index=True
    )
    pass_id: Mapped[int]
    """:func:`pass_id`: the Unix minute of the culmination."""
    sent_at: Mapped[datetime] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    """``sending`` (claimed, maybe delivered), ``sent``, ``retry`` (transient failure), ``failed``."""
    attempts: Mapped[int] = mapped_column(default=1)
    detail: Mapped[str | None] = mapped_column(String(500), default=None)


# --------------------------------------------------------------------------------------------
# pure planning


@dataclass(frozen=True, slots=True)
class Watch:
    """What planning needs of a subscription: where, how high, how early, and what was sent."""

    id: str
    lat_deg: float
    lon_deg: float
    min_elevation_deg: float = 10.0
    lead_minutes: int = 10
    sent: frozenset[int] = frozenset()
    """Pass ids already alerted (or being alerted)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert to send now: which subscription, which pass, and the pass itself."""

    subscription_id: str
    pass_id: int
    appears_unix: float
    sighting: Pass


def pass_id(p: Pass) -> int:
    """A pass's id: the Unix minute of its culmination (stable whatever the search threshold)."""
    return round(p.culmination.t_unix / 60.0)


def _already(pid: int, sent: frozenset[int]) -> bool:
    return any(abs(pid - s) <= SAME_PASS_MINUTES for s in sent)


def due_alerts(
    subscriptions: Iterable[Watch],
    passes_by_subscription: Mapping[str, Sequence[Pass]],
    now: datetime,
    window: timedelta = timedelta(0),
) -> list[Alert]:
    """The alerts to send at ``now``, in time order.

    A pass is due for a subscription when it has a visible part climbing to at least the
    subscription's minimum elevation, it was not alerted yet, and
    ``appears − lead − window ≤ now < appears``. ``window`` is the scheduler's period: an alert
    falling before the next run goes now (up to ``window`` early) rather than that much late.
    """
    t = now.timestamp()
    slack = window.total_seconds()
    out: list[Alert] = []
    for sub in subscriptions:
        for p in passes_by_subscription.get(sub.id, ()):
            v = p.visible
            if v is None or v.peak.el_deg < sub.min_elevation_deg:
                continue
            appears = v.start.t_unix
            if not appears - sub.lead_minutes * 60.0 - slack <= t < appears:
                continue
            pid = pass_id(p)
            if _already(pid, sub.sent):
                continue
            out.append(Alert(sub.id, pid, appears, p))
    out.sort(key=lambda a: (a.appears_unix, a.subscription_id))
    return out


def passes_for(
    elements: Elements, subscriptions: Sequence[Watch], t0_unix: float, t1_unix: float
) -> dict[str, list[Pass]]:
    """Visible passes overlapping [t0, t1] over every subscriber, by subscription id.

    One vectorized :func:`find_passes` call per distinct search threshold
    (``min(APPEAR_ELEVATION_DEG, min_elevation_deg)``: nearly always a single call).
    """
    groups: dict[float, list[int]] = {}
    for i, sub in enumerate(subscriptions):
        # Whole degrees: a few searches however many subscribers (the alert still checks each one's
        # own minimum against the pass's peak).
        groups.setdefault(float(math.floor(min(APPEAR_ELEVATION_DEG, sub.min_elevation_deg))), []).append(i)
    out: dict[str, list[Pass]] = {sub.id: [] for sub in subscriptions}
    for threshold, members in groups.items():
        table = find_passes(
            elements,
            np.array([subscriptions[i].lat_deg for i in members], dtype=np.float64),
            np.array([subscriptions[i].lon_deg for i in members], dtype=np.float64),
            t0_unix=t0_unix,
            t1_unix=t1_unix,
            min_elevation_deg=threshold,
            twilight="civil",
        )
        visible = table.select(table.visible)
        # The table is sorted by observer: cut it into each observer's rows once.
        observers, starts, counts = np.unique(visible.observer, return_index=True, return_counts=True)
        for k, a, n in zip(observers.tolist(), starts.tolist(), counts.tolist(), strict=True):
            rows = visible.select(np.arange(a, a + n, dtype=np.int64))
            out[subscriptions[members[k]].id] = rows.for_observer(k)
    return out


# --------------------------------------------------------------------------------------------
# the message


_FR_POINTS: Final = {"W": "O", "WNW": "ONO", "NW": "NO", "NNW": "NNO", "SW": "SO", "SSW": "SSO", "WSW": "OSO"}
_FR_DAYS: Final = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_FR_MONTHS: Final = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
    "novembre", "décembre",
)  # fmt: skip
_EN_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One alert as words: subject, the French and English texts, and the facts for machines."""

    subject: str
    title: str
    """ASCII only (an HTTP header for ntfy)."""
    fr: str
    en: str
    facts: dict[str, Any]

    @property
    def text(self) -> str:
        """Both languages, French first."""
        return f"{self.fr}\n\n{self.en}"


def _fr_compass(az: float) -> str:
    point = compass(az)
    return _FR_POINTS.get(point, point)


def _fr_number(x: float) -> str:
    return f"{x:.1f}".replace(".", ",").replace("-", "−")


def compose(
    place: str, time_zone: str, sighting: Pass, cancel_url: str, *, now: datetime | None = None
) -> AlertMessage:
    """The alert for ``sighting`` in the subscriber's zone: when, where to look, how high and bright.

    ``now`` (when given) adds "in N min" to the texts.
    """
    v = sighting.visible
    if v is None:
        raise InvalidInput("only a visible pass can be alerted", field="pass")
    zone = zoneinfo.ZoneInfo(time_zone)
    start = datetime.fromtimestamp(v.start.t_unix, zone)
    end = datetime.fromtimestamp(v.end.t_unix, zone)
    hm, hm_end = start.strftime("%H:%M"), end.strftime("%H:%M")
    minutes = max(1, round(v.duration_s / 60.0))
    peak = round(v.peak.el_deg)
    date_fr = f"{_FR_DAYS[start.weekday()]} {start.day} {_FR_MONTHS[start.month - 1]}"
    date_en = f"{_EN_DAYS[start.weekday()]} {start.day} {_EN_MONTHS[start.month - 1]}"
    where_fr = f" à {place}" if place else ""
    where_en = f" from {place}" if place else ""
    soon_fr = soon_en = ""
    if now is not None:
        left = max(0, round((v.start.t_unix - now.timestamp()) / 60.0))
        soon_fr, soon_en = f" (dans {left} min)", f" (in {left} min)"
    fr = (
        f"Passage de l'ISS visible{where_fr} le {date_fr} : elle apparaît à {hm}{soon_fr} "
        f"(heure locale, {time_zone}) à {round(v.start.el_deg)}° au-dessus de l'horizon "
        f"{_fr_compass(v.start.az_deg)}, monte jusqu'à {peak}° ({_fr_compass(v.peak.az_deg)}) et "
        f"disparaît à {hm_end} vers {_fr_compass(v.end.az_deg)}. Visible {minutes} min, "
        f"magnitude {_fr_number(v.magnitude)}.\nSe désabonner : {cancel_url}"
    )
    en = (
        f"ISS pass visible{where_en} on {date_en}: it appears at {hm}{soon_en} (local time, "
        f"{time_zone}) {round(v.start.el_deg)}° above {compass(v.start.az_deg)}, climbs to {peak}° "
        f"({compass(v.peak.az_deg)}) and disappears at {hm_end} towards {compass(v.end.az_deg)}. "
        f"Visible {minutes} min, magnitude {v.magnitude:.1f}.\nUnsubscribe: {cancel_url}"
    )
    facts: dict[str, Any] = {
        "appears": _iso_utc(v.start.t_unix),
        "appears_local": start.isoformat(timespec="seconds"),
        "disappears": _iso_utc(v.end.t_unix),
        "disappears_local": end.isoformat(timespec="seconds"),
        "time_zone": time_zone,
        "appears_direction": compass(v.start.az_deg),
        "appears_elevation_deg": round(v.start.el_deg, 1),
        "max_elevation_deg": round(v.peak.el_deg, 1),
        "max_direction": compass(v.peak.az_deg),
        "disappears_direction": compass(v.end.az_deg),
        "duration_s": round(v.duration_s),
        "magnitude": round(v.magnitude, 1),
        "cancel_url": cancel_url,
    }
    return AlertMessage(
        subject=f"Passage de l'ISS à {hm} / ISS pass at {hm}",
        title=f"ISS {hm} - passage / pass {peak} deg",
        fr=fr,
        en=en,
        facts=facts,
    )


def _iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# validation


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _number(value: object, name: str, lo: float, hi: float, *, integer: bool = False) -> float:
    """A number from JSON or a form field within [lo, hi], or InvalidInput naming ``name``."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput("must be a number", field=name)
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise InvalidInput(f"{value[:30]!r} is not a number", field=name) from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise InvalidInput("must be a number", field=name)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InvalidInput(f"{number:g} is outside [{lo:g}, {hi:g}]", field=name)
    if integer and number != int(number):
        raise InvalidInput(f"{number:g} is not a whole number", field=name)
    return number


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean(text: str, limit: int, name: str) -> str:
    cleaned = " ".join(
        "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n").split()
    )
    if len(cleaned) > limit:
        raise InvalidInput(f"{len(cleaned)} characters, at most {limit}", field=name)
    return cleaned


def parse_coordinates(place: str) -> tuple[float, float] | None:
    """``"48.8566, 2.3522"`` as (lat, lon); ``None`` for anything else (the default geocoder)."""
    match = _COORDS.fullmatch(place)
    if match is None:
        return None
    return float(match.group(1)), float(match.group(2))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _ip_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and (ip in _NAT64 or ip in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _ip_is_public(embedded)
        if ip.is_site_local:
            return False
    return ip.is_global and not ip.is_multicast


def check_email(value: str) -> str:
    """The address if it looks deliverable (and cannot inject headers), else InvalidInput."""
    address = value.strip()
    if len(address) > 254 or _EMAIL.fullmatch(address) is None:
        raise InvalidInput(f"{address[:60]!r} is not an e-mail address", field="target")
    return address


def check_url(value: str) -> urllib.parse.SplitResult:
    """An http(s) URL with a host and no credentials, else InvalidInput naming ``target``."""
    url = value.strip()
    if len(url) > MAX_TARGET_CHARS:
        raise InvalidInput(f"{len(url)} characters, at most {MAX_TARGET_CHARS}", field="target")
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in url):
        raise InvalidInput("the URL holds spaces or control characters", field="target")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port out of range or not a number raises ValueError only when read
    except ValueError as exc:
        raise InvalidInput(f"not a URL: {exc}", field="target") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("only http:// and https:// URLs are accepted", field="target")
    if not parts.hostname:
        raise InvalidInput("the URL has no host", field="target")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("the URL must not carry a user name or password", field="target")
    return parts


async def _check_public(host: str) -> None:
    """Refuse a host that is, or resolves to, a private, loopback or otherwise non-public address."""
    name = host.rstrip(".").lower()
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        if not _ip_is_public(literal):
            raise InvalidInput(f"{host} is not a public address", field="target")
        return
    if name == "localhost" or name.endswith(_PRIVATE_SUFFIXES) or "." not in name:
        raise InvalidInput(f"{host} is not a public host name", field="target")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None), timeout=10.0)
    except (OSError, TimeoutError) as exc:
        raise InvalidInput(f"the host {host} does not resolve ({exc})", field="target") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not _ip_is_public(address):
            raise InvalidInput(f"{host} resolves to {address}, not a public address", field="target")


# --------------------------------------------------------------------------------------------
# senders


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where e-mail goes out: an SMTP server, STARTTLS or not, optional login."""

    host: str = "localhost"
    port: int = 25
    sender: str = "alerts@localhost"
    starttls: bool = False
    ssl_context: ssl.SSLContext | None = None
    """For STARTTLS; the system's default trust store when ``None``."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class SenderConfig:
    """The senders' settings: SMTP (``None``: no e-mail channel), HTTP timeout and user agent."""

    smtp: SmtpConfig | None = None
    http_timeout: float = 10.0
    user_agent: str = "Proxima pass alerts"
    concurrency: int = 8
    """Alerts sent at once by one run."""


def _smtp_send(cfg: SmtpConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
        if cfg.starttls:
            smtp.starttls(context=cfg.ssl_context or ssl.create_default_context())
        if cfg.username is not None:
            smtp.login(cfg.username, cfg.password or "")
        smtp.send_message(message)


async def send_email(cfg: SmtpConfig, message: EmailMessage) -> None:
    """Send through SMTP in a worker thread; failures become :class:`ChannelError` (4xx transient)."""
    try:
        await asyncio.to_thread(_smtp_send, cfg, message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        transient = all(400 <= c < 500 for c in codes)
        raise ChannelError(
            f"{cfg.host}:{cfg.port} refused the recipient: {exc.recipients}", channel="email",
            transient=transient, status=codes[0] if codes else None,
        ) from exc  # fmt: skip
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(
            f"{cfg.host}:{cfg.port} answered {exc.smtp_code} {exc.smtp_error!r}", channel="email",
            transient=400 <= exc.smtp_code < 500, status=exc.smtp_code,
        ) from exc  # fmt: skip
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(
            f"{cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}", channel="email", transient=True
        ) from exc


async def _post(client: httpx.AsyncClient, kind: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TransportError as exc:
        raise ChannelError(
            f"POST {url} failed: {type(exc).__name__}: {exc}", channel=kind, transient=True
        ) from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = response.text[:200].strip()
    raise ChannelError(
        f"POST {url} answered {status} {response.reason_phrase}" + (f": {detail}" if detail else ""),
        channel=kind, transient=status in _TRANSIENT_HTTP or status >= 500, status=status,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True, slots=True)
class Subscribed:
    """What a new subscriber is told: the id, whether alerts go already, the cancel link and,
    for a webhook, its signing secret (shown this once)."""

    id: str
    channel: ChannelKind
    confirmed: bool
    cancel_url: str
    webhook_secret: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As the JSON API answers it."""
        out: dict[str, Any] = {
            "id": self.id, "channel": self.channel.value, "confirmed": self.confirmed,
            "cancel_url": self.cancel_url,
        }  # fmt: skip
        if self.webhook_secret is not None:
            out["webhook_secret"] = self.webhook_secret
        return out


@dataclass(slots=True)
class RunReport:
    """What one :meth:`AlertService.run_once` did."""

    considered: int = 0
    sent: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    error: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _default_elements(now_unix: float) -> Elements:
    from proxima.runtime.elements import load_elements

    return load_elements(None, now_unix=now_unix, max_age_days=None).find("ISS")


async def _no_geocoder(_place: str) -> tuple[float, float, str | None] | None:
    return None


class AlertService:
    """Subscriptions, confirmations, cancellations, and the runs that send due alerts.

    ``secret`` (at least 16 bytes) derives every link token and webhook secret: keep it, or
    every link already sent stops working. ``base_url`` is the public address links start
    with. ``clock`` is read for subscriptions and rate limits; :meth:`run_once` is given its
    time. ``allow_private_targets`` lets webhooks and ntfy post to loopback or private
    addresses (tests, or an intranet); otherwise such URLs are refused. ``geocode`` turns a place
    name into (lat, lon, IANA zone or None) when a subscriber gives no latitude and longitude
    (``"lat, lon"`` text is always understood); the zone found is used when none is given.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        secret: bytes,
        base_url: str,
        senders: SenderConfig,
        clock: Callable[[], datetime] = _utcnow,
        elements: Callable[[float], Elements] = _default_elements,
        limiter: RateLimiter | None = None,
        target_limiter: RateLimiter | None = None,
        allow_private_targets: bool = False,
        geocode: Callable[[str], Awaitable[tuple[float, float, str | None] | None]] = _no_geocoder,
    ) -> None:
        if len(secret) < 16:
            raise ConfigError("alerts secret: at least 16 bytes")
        self.sessions = sessions
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.senders = senders
        self._secret = bytes(secret)
        self._elements = elements
        self._limiter = limiter or RateLimiter(rate_per_s=1 / 60, burst=5, max_clients=100_000)
        self._target_limiter = target_limiter or RateLimiter(
            rate_per_s=1 / 3600, burst=3, max_clients=100_000
        )
        self.allow_private_targets = allow_private_targets
        self._geocode = geocode

    # ------------------------------------------------------------ tokens and links

    def _token(self, purpose: str, sub_id: str) -> str:
        mac = hmac.new(self._secret, f"proxima-alerts/{purpose}/{sub_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def cancel_url(self, sub_id: str) -> str:
        """The link that cancels subscription ``sub_id``."""
        return f"{self.base_url}/alerts/cancel/{self._token('cancel', sub_id)}"

    def confirm_url(self, sub_id: str) -> str:
        """The link that confirms e-mail subscription ``sub_id``."""
        return f"{self.base_url}/alerts/confirm/{self._token('confirm', sub_id)}"

    def webhook_secret(self, sub_id: str) -> str:
        """The Standard Webhooks secret (``whsec_...``) this subscription's deliveries are signed with."""
        mac = hmac.new(self._secret, f"proxima-alerts/webhook/{sub_id}".encode(), hashlib.sha256)
        return "whsec_" + base64.b64encode(mac.digest()).decode()

    # ------------------------------------------------------------ subscribing

    async def subscribe(
        self,
        *,
        channel: object,
        target: object,
        time_zone: object,
        lat: object = None,
        lon: object = None,
        place: object = "",
        lead_minutes: object = 10,
        min_elevation_deg: object = 10.0,
        client: str,
    ) -> Subscribed:
        """Record a subscription; for e-mail, send the confirmation link (nothing else goes before).

        Every field is checked, and :class:`InvalidInput` names the first that is wrong.
        ``client`` is an opaque key of the requester; too many subscriptions from one client
        (or confirmation mails to one address) raise :class:`RateLimited`.
        """
        now = self.clock()
        self._limiter.check(client, now.timestamp())
        if not isinstance(channel, str) or channel not in {k.value for k in ChannelKind}:
            raise InvalidInput("choose email, webhook or ntfy", field="channel")
        kind = ChannelKind(channel)
        if not isinstance(target, str) or not target.strip():
            raise InvalidInput("give an e-mail address or a URL", field="target")
        if not isinstance(place, str):
            raise InvalidInput("must be text", field="place")
        place_name = _clean(place, MAX_PLACE_CHARS, "place")
        if _blank(lat) and _blank(lon):
            coords = parse_coordinates(place_name) if place_name else None
            found: tuple[float, float, str | None] | None = None
            if coords is not None:
                found = (coords[0], coords[1], None)
            if found is None and place_name:
                found = await self._geocode(place_name)
            if found is None:
                raise InvalidInput(
                    "give a latitude and longitude (or a place this server knows)",
                    field="place" if place_name else "lat",
                )
            lat, lon, found_zone = found
            if _blank(time_zone) and found_zone is not None:
                time_zone = found_zone
        lat_deg = _number(lat, "lat", -90.0, 90.0)
        lon_deg = _number(lon, "lon", -180.0, 180.0)
        if not isinstance(time_zone, str) or time_zone.strip() not in _zones():
            shown = time_zone[:40] if isinstance(time_zone, str) else time_zone
            raise InvalidInput(
                f"{shown!r} is not a known IANA time zone (like Europe/Paris)", field="time_zone"
            )
        zone = time_zone.strip()
        lead = int(_number(lead_minutes, "lead_minutes", 1, MAX_LEAD_MINUTES, integer=True))
        min_el = _number(min_elevation_deg, "min_elevation_deg", 0.0, 90.0)
        if kind is ChannelKind.EMAIL:
            if self.senders.smtp is None:
                raise InvalidInput("e-mail alerts are not available on this server", field="channel")
            address = check_email(target)
            self._target_limiter.check("email:" + _hash(address.lower()), now.timestamp())
        else:
            address = target.strip()
            parts = check_url(address)
            if not self.allow_private_targets:
                await _check_public(parts.hostname or "")
        sub_id = str(uuid.uuid4())
        sub = AlertSubscription(
            id=sub_id,
            token_hash=_hash(self._token("cancel", sub_id)),
            confirm_hash=_hash(self._token("confirm", sub_id)),
            lat_deg=lat_deg,
            lon_deg=lon_deg,
            place=place_name,
            time_zone=zone,
            min_elevation_deg=min_el,
            lead_minutes=lead,
            channel=kind,
            target=address,
            client=client[:64],
            created=now,
            confirmed=kind is not ChannelKind.EMAIL,
            confirmed_at=None if kind is ChannelKind.EMAIL else now,
        )
        with self.sessions.begin() as s:
            s.add(sub)
        if kind is ChannelKind.EMAIL:
            try:
                await self._send_confirmation(sub)
            except ChannelError:
                with self.sessions.begin() as s:
                    s.execute(
                        update(AlertSubscription)
                        .where(AlertSubscription.id == sub_id)
                        .values(cancelled_at=now)
                    )
                raise
        return Subscribed(
            id=sub_id,
            channel=kind,
            confirmed=sub.confirmed,
            cancel_url=self.cancel_url(sub_id),
            webhook_secret=self.webhook_secret(sub_id) if kind is ChannelKind.WEBHOOK else None,
        )

    def _email(self, to: str, subject: str, body: str, cancel_url: str | None) -> EmailMessage:
        cfg = self.senders.smtp
        if cfg is None:  # pragma: no cover - subscribe refuses e-mail without SMTP
            raise ConfigError("no SMTP server configured for e-mail alerts")
        msg = EmailMessage()
        msg["From"] = cfg.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.clock())
        msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        if cancel_url is not None:
            msg["List-Unsubscribe"] = f"<{cancel_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(body)
        return msg

    async def _send_confirmation(self, sub: AlertSubscription) -> None:
        cfg = self.senders.smtp
        if cfg is None:  # pragma: no cover - subscribe refuses e-mail without SMTP
            raise ConfigError("no SMTP server configured for e-mail alerts")
        link = self.confirm_url(sub.id)
        where_fr = f" à {sub.place}" if sub.place else ""
        where_en = f" from {sub.place}" if sub.place else ""
        body = (
            f"Bonjour,\n\nQuelqu'un (vous, espérons-le) a demandé à recevoir une alerte "
            f"{sub.lead_minutes} min avant chaque passage visible de l'ISS{where_fr} "
            f"({sub.lat_deg:.4f}, {sub.lon_deg:.4f}). "
            f"Pour confirmer, ouvrez ce lien :\n{link}\n\n"
            "Sans confirmation, vous ne recevrez rien d'autre.\n\n"
            f"---\n\nHello,\n\nSomeone (you, we hope) asked for an alert {sub.lead_minutes} min before each "
            f"visible pass of the ISS{where_en} ({sub.lat_deg:.4f}, {sub.lon_deg:.4f}). To confirm, open "
            f"this link:\n{link}\n\nWithout confirmation you will receive nothing else.\n"
        )
        message = self._email(
            sub.target, "Confirmez vos alertes ISS / Confirm your ISS alerts", body, cancel_url=None
        )
        await send_email(cfg, message)

    # ------------------------------------------------------------ links

    def _by_token(self, s: Session, column: Any, token: str) -> AlertSubscription:
        if _TOKEN.fullmatch(token) is None:
            raise NotFound("no such alert subscription (the link is incomplete?)", field="token")
        sub = s.scalar(select(AlertSubscription).where(column == _hash(token)))
        if sub is None:
            raise NotFound("no such alert subscription", field="token")
        return sub

    def lookup(self, token: str) -> AlertSubscription:
        """The subscription a cancel token belongs to (for the page asking to confirm)."""
        with self.sessions() as s:
            return self._by_token(s, AlertSubscription.token_hash, token)

    def confirm(self, token: str) -> AlertSubscription:
        """Confirm an e-mail subscription (idempotent); alerts go from now on.

        :class:`NotFound` for an unknown token, :class:`Conflict` for a cancelled subscription or
        a link older than :data:`CONFIRM_TTL`.
        """
        now = self.clock()
        with self.sessions.begin() as s:
            sub = self._by_token(s, AlertSubscription.confirm_hash, token)
            if sub.cancelled_at is not None:
                raise Conflict("this subscription was cancelled; subscribe again", field="token")
            if sub.confirmed:
                return sub
            if now - sub.created > CONFIRM_TTL:
                raise Conflict("this confirmation link has expired; subscribe again", field="token")
            sub.confirmed = True
            sub.confirmed_at = now
            return sub

    def cancel(self, token: str) -> AlertSubscription:
        """Cancel the subscription of a cancel token (idempotent); no alert goes after this."""
        now = self.clock()
        with self.sessions.begin() as s:
            sub = self._by_token(s, AlertSubscription.token_hash, token)
            if sub.cancelled_at is None:
                sub.cancelled_at = now
            return sub

    # ------------------------------------------------------------ sending

    def _watches(self, now: datetime) -> tuple[list[Watch], dict[str, AlertSubscription]]:
        horizon = now - timedelta(days=1)
        with self.sessions() as s:
            subs = list(
                s.scalars(
                    select(AlertSubscription).where(
                        AlertSubscription.confirmed.is_(True), AlertSubscription.cancelled_at.is_(None)
                    )
                )
            )
            done: dict[str, set[int]] = {}
            rows = s.execute(
                select(
                    AlertSent.subscription_id, AlertSent.pass_id, AlertSent.outcome, AlertSent.attempts
                ).where(AlertSent.sent_at >= horizon)
            )
            for sub_id, pid, outcome, attempts in rows:
                if outcome == "retry" and attempts < MAX_ATTEMPTS:
                    continue
                done.setdefault(sub_id, set()).add(pid)
        watches = [
            Watch(sub.id, sub.lat_deg, sub.lon_deg, sub.min_elevation_deg, sub.lead_minutes,
                  frozenset(done.get(sub.id, ())))
            for sub in subs
        ]  # fmt: skip
        return watches, {sub.id: sub for sub in subs}

    def _claim(self, alert: Alert, now: datetime) -> bool:
        """Record the alert as being sent; False when another run already has it."""
        try:
            with self.sessions.begin() as s:
                row = s.scalar(
                    select(AlertSent).where(
                        AlertSent.subscription_id == alert.subscription_id, AlertSent.pass_id == alert.pass_id
                    )
                )
                if row is None:
                    s.add(AlertSent(subscription_id=alert.subscription_id, pass_id=alert.pass_id,
                                    sent_at=now, outcome="sending", attempts=1))  # fmt: skip
                    return True
                if row.outcome != "retry" or row.attempts >= MAX_ATTEMPTS:
                    return False
                claimed = s.execute(
                    update(AlertSent)
                    .where(
                        AlertSent.id == row.id,
                        AlertSent.outcome == "retry",
                        AlertSent.attempts == row.attempts,
                    )
                    .values(outcome="sending", attempts=row.attempts + 1, sent_at=now)
                )
                return bool(getattr(claimed, "rowcount", 0) == 1)
        except IntegrityError:
            return False

    def _record(self, alert: Alert, outcome: str, detail: str | None) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(AlertSent)
                .where(AlertSent.subscription_id == alert.subscription_id, AlertSent.pass_id == alert.pass_id)
                .values(outcome=outcome, detail=detail[:500] if detail else None)
            )

    async def _deliver(
        self, sub: AlertSubscription, alert: Alert, message: AlertMessage, client: httpx.AsyncClient
    ) -> None:
        if sub.channel is ChannelKind.EMAIL:
            cfg = self.senders.smtp
            if cfg is None:
                raise ChannelError("no SMTP server configured", channel="email", transient=False)
            await send_email(
                cfg, self._email(sub.target, message.subject, message.text, message.facts["cancel_url"])
            )
            return
        if not self.allow_private_targets:
            # Checked again at each send: a name may have been pointed elsewhere since.
            try:
                await _check_public(urllib.parse.urlsplit(sub.target).hostname or "")
            except InvalidInput as exc:
                raise ChannelError(str(exc), channel=sub.channel.value, transient=False) from exc
        headers = {"user-agent": self.senders.user_agent}
        if sub.channel is ChannelKind.NTFY:
            headers |= {"content-type": "text/plain; charset=utf-8", "title": message.title,
                        "tags": "artificial_satellite", "click": message.facts["cancel_url"]}  # fmt: skip
            await _post(client, "ntfy", sub.target, message.text.encode(), headers)
            return
        body = json.dumps(
            {
                "type": "pass.alert",
                "data": {
                    "subscription": sub.id, "pass_id": alert.pass_id, "place": sub.place,
                    "lat_deg": sub.lat_deg, "lon_deg": sub.lon_deg, **message.facts,
                    "text": {"fr": message.fr, "en": message.en},
                },
            },
            ensure_ascii=False, separators=(",", ":"),
        ).encode()  # fmt: skip
        msg_id = webhook_id(f"alert:{sub.id}:{alert.pass_id}")
        stamp = int(self.clock().timestamp())
        headers |= {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(msg_id, stamp, body, self.webhook_secret(sub.id)),
        }
        await _post(client, "webhook", sub.target, body, headers)

    async def run_once(self, now: datetime, window: timedelta = timedelta(0)) -> RunReport:
        """Compute the passes of every active subscription and send the alerts due at ``now``."""
        report = RunReport()
        watches, subs = self._watches(now)
        report.considered = len(watches)
        if not watches:
            return report
        t0 = now.timestamp()
        t1 = t0 + (MAX_LEAD_MINUTES + 30) * 60.0 + window.total_seconds()
        try:
            passes = await asyncio.to_thread(passes_for, self._elements(t0), watches, t0, t1)
        except OrbitInputError as exc:
            log.warning("pass alerts: no passes computed at %s: %s", now.isoformat(), exc)
            report.error = str(exc)
            return report
        due = due_alerts(watches, passes, now, window)
        gate = asyncio.Semaphore(max(1, self.senders.concurrency))

        async def one(alert: Alert, client: httpx.AsyncClient) -> None:
            sub = subs[alert.subscription_id]
            if not self._claim(alert, now):
                return
            message = compose(sub.place, sub.time_zone, alert.sighting, self.cancel_url(sub.id), now=now)
            async with gate:
                try:
                    await self._deliver(sub, alert, message, client)
                except ChannelError as exc:
                    self._record(alert, "retry" if exc.transient else "failed", str(exc))
                    report.failed.append((sub.id, alert.pass_id, str(exc)))
                    log.warning("pass alert to %s failed: %s", sub.id, exc)
                    return
            self._record(alert, "sent", None)
            report.sent.append((sub.id, alert.pass_id))

        async with httpx.AsyncClient(timeout=self.senders.http_timeout, follow_redirects=False) as client:
            await asyncio.gather(*(one(a, client) for a in due))
        return report


# --------------------------------------------------------------------------------------------
# routes


_TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "Alertes de passage de l'ISS",
        "intro": "Recevez un message quelques minutes avant chaque passage visible de l'ISS "
        "au-dessus de chez vous.",
        "place": "Lieu (nom, ou « latitude, longitude »)",
        "lat": "Latitude (°, nord positif)",
        "lon": "Longitude (°, est positif)",
        "time_zone": "Fuseau horaire (IANA, ex. Europe/Paris)",
        "channel": "Canal",
        "target": "Adresse e-mail ou URL",
        "lead_minutes": "Prévenir combien de minutes avant (1 à 120)",
        "min_elevation_deg": "Hauteur minimale du passage (°, 0 à 90)",
        "submit": "S'abonner",
        "error": "Vérifiez le champ",
        "check_mail": "Un e-mail de confirmation vient d'être envoyé. "
        "Rien d'autre ne sera envoyé avant la confirmation.",
        "done": "Abonnement enregistré. Les alertes arriveront sur ce canal.",
        "secret": "Secret de signature du webhook (affiché une seule fois)",
        "keep_link": "Lien de désabonnement (à conserver)",
        "confirmed": "Merci ! Vos alertes sont confirmées.",
        "cancel_ask": "Arrêter les alertes de passage pour ce lieu ?",
        "cancel_button": "Me désabonner",
        "cancelled": "C'est fait : vous ne recevrez plus d'alertes.",
        "not_found": "Ce lien ne correspond à aucun abonnement.",
        "conflict": "Ce lien ne peut plus servir",
        "too_many": "Trop de demandes ; réessayez plus tard.",
        "send_failed": "L'e-mail de confirmation n'a pas pu partir ; réessayez plus tard.",
        "other": "English",
    },
    "en": {
        "title": "ISS pass alerts",
        "intro": "Get a message a few minutes before each visible pass of the ISS over your place.",
        "place": "Place (a name, or “latitude, longitude”)",
        "lat": "Latitude (°, north positive)",
        "lon": "Longitude (°, east positive)",
        "time_zone": "Time zone (IANA, e.g. Europe/London)",
        "channel": "Channel",
        "target": "E-mail address or URL",
        "lead_minutes": "Minutes of warning (1 to 120)",
        "min_elevation_deg": "Lowest worthwhile pass (°, 0 to 90)",
        "submit": "Subscribe",
        "error": "Please check",
        "check_mail": "A confirmation e-mail is on its way. Nothing else is sent before you confirm.",
        "done": "Subscribed. Alerts will arrive on this channel.",
        "secret": "Webhook signing secret (shown only this once)",
        "keep_link": "Unsubscribe link (keep it)",
        "confirmed": "Thank you! Your alerts are confirmed.",
        "cancel_ask": "Stop the pass alerts for this place?",
        "cancel_button": "Unsubscribe",
        "cancelled": "Done: you will receive no more alerts.",
        "not_found": "This link matches no subscription.",
        "conflict": "This link cannot be used any more",
        "too_many": "Too many requests; try again later.",
        "send_failed": "The confirmation e-mail could not be sent; try again later.",
        "other": "Français",
    },
}
_FORM_FIELDS: Final = (
    "place",
    "lat",
    "lon",
    "time_zone",
    "channel",
    "target",
    "lead_minutes",
    "min_elevation_deg",
)


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in _TEXTS:
        return asked
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";", 1)[0].strip().lower()[:2]
        if tag in _TEXTS:
            return tag
    return "fr"


async def _capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise InvalidInput(f"request body over {MAX_BODY_BYTES} bytes", field="body", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidInput(f"request body over {MAX_BODY_BYTES} bytes", field="body", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _session_csrf(request: Request) -> str:
    """The session's CSRF token (made on first use) when a session middleware is installed."""
    if "session" not in request.scope:
        return str(getattr(request.state, "csrf_token", ""))
    return csrf_token(request)


def _csrf_ok(request: Request, given: str | None) -> bool:
    """Whether a posted form carries the session's CSRF token (always true without sessions)."""
    return "session" not in request.scope or csrf_matches(request, given)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind the alert forms send)."""
    raw = await _capped(request)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8", field="body") from None
    try:
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=32))
    except ValueError:
        raise InvalidInput("the form has too many fields", field="body", status=413) from None


async def _json(request: Request) -> dict[str, Any]:
    # A JSON content type forces browsers into a CORS preflight: no cross-site subscriptions.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidInput("send the request as application/json", field="body", status=415)
    raw = await _capped(request)
    try:
        value = json.loads(raw) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return value


def _json_error(exc: GroundError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status, headers=headers)


def alert_routes(
    service: AlertService, templates: Jinja2Templates, *, layout: str = "base.html"
) -> list[BaseRoute]:
    """The alert pages and API: ``/alerts`` (form), ``/alerts/confirm/{token}``,
    ``/alerts/cancel/{token}`` (GET asks, POST cancels), ``POST /api/alerts``,
    ``DELETE /api/alerts/{token}``.

    Pages extend ``layout`` (the site's ``base.html``: its ``title`` and ``main`` blocks), with
    ``active="alerts"`` for its navigation. Forms carry a ``csrf_token`` hidden field, filled
    from ``request.state.csrf_token`` when a middleware sets it (checking it is that
    middleware's job).
    """

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        lang = _lang(request)
        context = {"error": None, "detail": None, "values": defaults()} | context | {
            "t": _TEXTS[lang], "lang": lang, "other_lang": "en" if lang == "fr" else "fr",
            "layout": layout, "active": "alerts", "csrf_token": _session_csrf(request),
        }  # fmt: skip
        return templates.TemplateResponse(request, name, context, status_code=status)

    def defaults() -> dict[str, str]:
        return {"place": "", "lat": "", "lon": "", "time_zone": "Europe/Paris", "channel": "email",
                "target": "", "lead_minutes": "10", "min_elevation_deg": "10"}  # fmt: skip

    async def form_page(request: Request) -> Response:
        if request.method == "GET":
            return page(request, "alerts/subscribe.html", values=defaults(), error=None)
        try:
            data = await _form(request)
        except InvalidInput as exc:
            return page(request, "alerts/subscribe.html", exc.status, values=defaults(), error=exc)
        values = defaults() | {k: data.get(k, "") for k in _FORM_FIELDS}
        if not _csrf_ok(request, data.get("csrf_token")):
            stale = InvalidInput(
                "the form is stale or forged (CSRF token missing or wrong): reload the page", status=403
            )
            return page(request, "alerts/subscribe.html", 403, values=values, error=stale)
        try:
            done = await service.subscribe(
                channel=values["channel"], target=values["target"], time_zone=values["time_zone"],
                lat=values["lat"], lon=values["lon"], place=values["place"],
                lead_minutes=values["lead_minutes"], min_elevation_deg=values["min_elevation_deg"],
                client=client_key(request),
            )  # fmt: skip
        except RateLimited as exc:
            response = page(request, "alerts/subscribe.html", 429, values=values, error=exc)
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        except GroundError as exc:
            return page(request, "alerts/subscribe.html", exc.status, values=values, error=exc)
        except ChannelError:
            return page(request, "alerts/message.html", 503, message_key="send_failed")
        return page(request, "alerts/subscribed.html", 201, done=done)

    async def confirm_page(request: Request) -> Response:
        try:
            service.confirm(request.path_params["token"])
        except NotFound:
            return page(request, "alerts/message.html", 404, message_key="not_found")
        except Conflict as exc:
            return page(request, "alerts/message.html", 409, message_key="conflict", detail=str(exc))
        return page(request, "alerts/message.html", message_key="confirmed")

    async def cancel_page(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "GET":
                sub = service.lookup(token)
                return page(request, "alerts/cancel.html", sub=sub, token=token)
            form = await _form(request)
            service.cancel(token)
        except NotFound:
            return page(request, "alerts/message.html", 404, message_key="not_found")
        except InvalidInput as exc:
            return page(request, "alerts/message.html", exc.status, message_key="not_found")
        if form.get("List-Unsubscribe") == "One-Click":
            # RFC 8058: a mail client's one-click unsubscribe wants no page.
            return PlainTextResponse("unsubscribed\n")
        return page(request, "alerts/message.html", message_key="cancelled")

    async def api_subscribe(request: Request) -> Response:
        try:
            body = await _json(request)
            done = await service.subscribe(
                channel=body.get("channel"), target=body.get("target"), time_zone=body.get("time_zone"),
                lat=body.get("lat"), lon=body.get("lon"), place=body.get("place", ""),
                lead_minutes=body.get("lead_minutes", 10),
                min_elevation_deg=body.get("min_elevation_deg", 10.0),
                client=client_key(request),
            )  # fmt: skip
        except GroundError as exc:
            return _json_error(exc)
        except ChannelError as exc:
            return JSONResponse({"error": str(exc), "field": "target"}, status_code=503)
        return JSONResponse(done.to_json(), status_code=201)

    async def api_cancel(request: Request) -> Response:
        try:
            sub = service.cancel(request.path_params["token"])
        except GroundError as exc:
            return _json_error(exc)
        return JSONResponse({"id": sub.id, "cancelled": True})

    return [
        Route("/alerts", form_page, methods=["GET", "POST"]),
        Route("/alerts/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/alerts/cancel/{token}", cancel_page, methods=["GET", "POST"]),
        Route("/api/alerts", api_subscribe, methods=["POST"]),
        Route("/api/alerts/{token}", api_cancel, methods=["DELETE"]),
    ]
