"""Ground service configuration from a TOML file, checked with errors naming the file and the key.

Example (paths are relative to the file)::

    database = "sqlite:///ground.db"   # any SQLAlchemy URL; sqlite paths relative to the file
    media_dir = "media"
    keyring = "keys"                   # directory of NAME.pub, or a TOML keyring
    signing_key = "keys/esa.key"       # optional: the ground's own key, for posts the team drafts
    base_url = "http://127.0.0.1:8080" # where the public reaches this service (verification links)

    [http]
    host = "127.0.0.1"
    port = 8080

    [dtn]
    node = "127.0.0.1:4242"            # the ground node's application interface
    posts = "dtn://ground/posts"       # endpoint the crew sends signed posts to
    media = "dtn://ground/media"       # endpoint the crew sends media parts to
    crew = "dtn://iss/crew"            # where selected questions go up

    [[channel]]
    kind = "atom"                      # atom, activitypub, mastodon, bluesky, webhook
    name = "atom"                      # as posts list it (default: the kind)
    title = "Proxima"                  # other keys are the channel's own options

    [clock]                            # optional: a mission clock (demonstrations, old elements)
    start = "2026-03-12T00:00:00Z"     # what "now" is when the service starts
    speed = 60.0                       # mission seconds per real second

    [network]                          # optional: what the console's network view shows
    plan = "plan.rc"                   # the mission's contact plan (proxima plan)
    plan_format = "ion"                # ion, ud3tn or hdtn
    epoch = "2026-03-11T00:00:00Z"     # what +0 means in the plan
    nodes = [{ name = "ISS", node = "127.0.0.1:4243", ipn = 1 }]   # application interfaces to ask

    [smtp]                             # optional: where pass alerts by e-mail go out
    host = "localhost"
    port = 25
    sender = "alerts@proxima.example"
    starttls = false

    [analytics]                        # optional: audience analytics and social listening
    database = "analytics.duckdb"      # DuckDB file (relative to this file); the default
    interval_s = 900                   # collect followers, post counters and mentions this often
    tz = "Europe/Paris"                # where "best time to post" hours are read
    tags = ["AllezThomas", "Proxima"]  # hashtags to listen to (campaigns)
    keywords = ["Pesquet"]             # words to listen to
    accounts = ["esa"]                 # other accounts to track (share of voice), besides the mission's

    [[slot]]
    channel = "atom"
    time = "09:30"
    tz = "Europe/Paris"
    weekday = 0                        # optional: 0 = Monday ... 6 = Sunday; every day when absent
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from proxima.bpv7.eid import EID
from proxima.errors import ConfigError, InvalidEndpointID

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CHANNEL_KINDS",
    "AnalyticsConfig",
    "ChannelConfig",
    "DtnConfig",
    "GroundConfig",
    "NetworkConfig",
    "NetworkNode",
    "SlotConfig",
    "load_ground_config",
    "mission_clock",
]

CHANNEL_KINDS: Final = ("atom", "activitypub", "mastodon", "bluesky", "webhook")


@dataclass(frozen=True, slots=True)
class DtnConfig:
    """Where the ground node is, and the endpoints the service uses on it."""

    node: str = "127.0.0.1:4242"
    posts: str = "dtn://ground/posts"
    media: str = "dtn://ground/media"
    crew: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One publishing channel: its kind, its name, and the kind's own options."""

    kind: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SlotConfig:
    """A recurring calendar slot set up at start."""

    channel: str
    time: str
    tz: str
    weekday: int | None = None
    campaign: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkNode:
    """A node the console's network view asks for its status."""

    name: str
    node: str
    """HOST:PORT of its application interface."""
    ipn: int | None = None
    """Its ipn node number in the contact plan."""


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """The nodes and the contact plan the network view shows."""

    nodes: tuple[NetworkNode, ...] = ()
    plan: Path | None = None
    plan_format: str = "ion"
    epoch: datetime | None = None


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """Where analytics keeps its samples, how often it collects, and what it listens to."""

    database: Path
    interval_s: float = 900.0
    tz: str = "UTC"
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroundConfig:
    """A whole ground service configuration."""

    database: str
    media_dir: Path
    keyring: Path
    base_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    dtn: DtnConfig | None = None
    channels: tuple[ChannelConfig, ...] = ()
    slots: tuple[SlotConfig, ...] = ()
    poll_s: float = 1.0
    source: Path | None = None
    signing_key: Path | None = None
    smtp: dict[str, Any] | None = None
    """The [smtp] table as given (host, port, sender, starttls, username, password)."""
    network: NetworkConfig | None = None
    clock_start: datetime | None = None
    """The mission time when the service starts (None: real time)."""
    clock_speed: float = 1.0
    analytics: AnalyticsConfig | None = None
    """None: no ``[analytics]`` table; analytics then runs with its defaults beside the database."""


def _fail(source: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _str(doc: dict[str, Any], key: str, source: Path, where: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise _fail(source, f"{where}{key}", "must be non-empty text" if key in doc else "is required")
    return value


def _eid(value: str, source: Path, key: str) -> str:
    try:
        return str(EID.parse(value))
    except InvalidEndpointID as exc:
        raise _fail(source, key, str(exc)) from exc


def load_ground_config(path: str | Path) -> GroundConfig:
    """Read and check a ground configuration file."""
    source = Path(path)
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    base = source.parent.resolve()
    known = {
        "database",
        "media_dir",
        "keyring",
        "signing_key",
        "base_url",
        "http",
        "dtn",
        "channel",
        "slot",
        "poll_s",
        "smtp",
        "network",
        "clock",
        "analytics",
    }
    for key in doc:
        if key not in known:
            raise _fail(source, key, f"unknown key (known: {', '.join(sorted(known))})")
    database = _str(doc, "database", source, "", "sqlite:///ground.db")
    if database.startswith("sqlite:///") and not database.startswith("sqlite:////"):
        rel = database.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            database = f"sqlite:///{base / rel}"
    http = doc.get("http", {})
    if not isinstance(http, dict):
        raise _fail(source, "http", "must be a table")
    host = _str(http, "host", source, "http.", "127.0.0.1")
    port = http.get("port", 8080)
    if type(port) is not int or not 0 <= port <= 65535:
        raise _fail(source, "http.port", f"{port!r} is not a TCP port")
    base_url = _str(doc, "base_url", source, "", f"http://{host}:{port}")
    if not base_url.startswith(("http://", "https://")):
        raise _fail(source, "base_url", f"{base_url!r} is not an http(s) URL")
    dtn: DtnConfig | None = None
    if "dtn" in doc:
        table = doc["dtn"]
        if not isinstance(table, dict):
            raise _fail(source, "dtn", "must be a table")
        crew = table.get("crew")
        dtn = DtnConfig(
            node=_str(table, "node", source, "dtn.", "127.0.0.1:4242"),
            posts=_eid(_str(table, "posts", source, "dtn.", "dtn://ground/posts"), source, "dtn.posts"),
            media=_eid(_str(table, "media", source, "dtn.", "dtn://ground/media"), source, "dtn.media"),
            crew=None if crew is None else _eid(_str(table, "crew", source, "dtn."), source, "dtn.crew"),
        )
    channels: list[ChannelConfig] = []
    for i, item in enumerate(doc.get("channel", [])):
        where = f"channel[{i}]."
        if not isinstance(item, dict):
            raise _fail(source, f"channel[{i}]", "must be a table")
        kind = _str(item, "kind", source, where)
        if kind not in CHANNEL_KINDS:
            raise _fail(source, f"{where}kind", f"{kind!r} is not one of {', '.join(CHANNEL_KINDS)}")
        name = _str(item, "name", source, where, kind)
        if any(c.name == name for c in channels):
            raise _fail(source, f"{where}name", f"channel {name!r} given twice")
        options = {k: v for k, v in item.items() if k not in ("kind", "name")}
        channels.append(ChannelConfig(kind, name, options))
    slots: list[SlotConfig] = []
    for i, item in enumerate(doc.get("slot", [])):
        where = f"slot[{i}]."
        if not isinstance(item, dict):
            raise _fail(source, f"slot[{i}]", "must be a table")
        weekday = item.get("weekday")
        if weekday is not None and (type(weekday) is not int or not 0 <= weekday <= 6):
            raise _fail(source, f"{where}weekday", f"{weekday!r} is not 0 (Monday) to 6 (Sunday)")
        slots.append(
            SlotConfig(
                channel=_str(item, "channel", source, where),
                time=_str(item, "time", source, where),
                tz=_str(item, "tz", source, where),
                weekday=weekday,
                campaign=item.get("campaign"),
                label=item.get("label"),
            )
        )
    poll = doc.get("poll_s", 1.0)
    if not isinstance(poll, (int, float)) or not 0 < poll <= 3600:
        raise _fail(source, "poll_s", f"{poll!r} is not a number of seconds in (0, 3600]")
    return GroundConfig(
        database=database,
        media_dir=base / _str(doc, "media_dir", source, "", "media"),
        keyring=base / _str(doc, "keyring", source, "", "keys"),
        base_url=base_url.rstrip("/"),
        host=host,
        port=port,
        dtn=dtn,
        channels=tuple(channels),
        slots=tuple(slots),
        poll_s=float(poll),
        source=source,
        signing_key=None if "signing_key" not in doc else base / _str(doc, "signing_key", source, ""),
        smtp=_smtp(doc.get("smtp"), source),
        network=_network(doc.get("network"), source, base),
        analytics=_analytics(doc.get("analytics"), source, base),
        **_clock(doc.get("clock"), source),
    )


def _words(table: dict[str, Any], key: str, source: Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, f"analytics.{key}", "must be a list of non-empty texts")
    return tuple(v.strip().lstrip("#@").lower() for v in value)


def _analytics(table: object, source: Path, base: Path) -> AnalyticsConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _fail(source, "analytics", "must be a table")
    known = ("database", "interval_s", "tz", "tags", "keywords", "accounts")
    for key in table:
        if key not in known:
            raise _fail(source, f"analytics.{key}", f"unknown key (known: {', '.join(known)})")
    interval = table.get("interval_s", 900)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 10 <= interval <= 86400:
        raise _fail(source, "analytics.interval_s", f"{interval!r} is not a number of seconds in [10, 86400]")
    tz = _str(table, "tz", source, "analytics.", "UTC")
    try:
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise _fail(source, "analytics.tz", f"{tz!r} is not a time zone") from exc
    return AnalyticsConfig(
        database=base / _str(table, "database", source, "analytics.", "analytics.duckdb"),
        interval_s=float(interval),
        tz=tz,
        tags=_words(table, "tags", source),
        keywords=_words(table, "keywords", source),
        accounts=_words(table, "accounts", source),
    )


def _clock(table: object, source: Path) -> dict[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise _fail(source, "clock", "must be a table")
    for key in table:
        if key not in ("start", "speed"):
            raise _fail(source, f"clock.{key}", "unknown key (known: start, speed)")
    out: dict[str, Any] = {}
    if "start" in table:
        try:
            start = datetime.fromisoformat(str(table["start"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise _fail(source, "clock.start", f"{table['start']!r} is not an ISO 8601 time") from exc
        if start.tzinfo is None:
            raise _fail(source, "clock.start", "give a UTC offset (2026-03-12T00:00:00Z)")
        out["clock_start"] = start
    speed = table.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0 < speed <= 1e6:
        raise _fail(source, "clock.speed", f"{speed!r} is not a speed-up factor in (0, 1e6]")
    out["clock_speed"] = float(speed)
    return out


def _network(table: object, source: Path, base: Path) -> NetworkConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _fail(source, "network", "must be a table")
    nodes: list[NetworkNode] = []
    for i, item in enumerate(table.get("nodes", [])):
        where = f"network.nodes[{i}]."
        if not isinstance(item, dict):
            raise _fail(source, f"network.nodes[{i}]", "must be a table")
        ipn = item.get("ipn")
        if ipn is not None and (type(ipn) is not int or ipn < 0):
            raise _fail(source, f"{where}ipn", f"{ipn!r} is not an ipn node number")
        nodes.append(NetworkNode(_str(item, "name", source, where), _str(item, "node", source, where), ipn))
    plan = table.get("plan")
    if plan is not None and (not isinstance(plan, str) or not plan):
        raise _fail(source, "network.plan", "must be a file name")
    fmt = table.get("plan_format", "ion")
    if fmt not in ("ion", "ud3tn", "hdtn"):
        raise _fail(source, "network.plan_format", f"{fmt!r} is not ion, ud3tn or hdtn")
    epoch = table.get("epoch")
    epoch_dt = None
    if epoch is not None:
        try:
            epoch_dt = datetime.fromisoformat(str(epoch).replace("Z", "+00:00"))
        except ValueError as exc:
            raise _fail(source, "network.epoch", f"{epoch!r} is not an ISO 8601 time") from exc
        if epoch_dt.tzinfo is None:
            raise _fail(source, "network.epoch", "give a UTC offset (2026-03-11T00:00:00Z)")
    return NetworkConfig(
        nodes=tuple(nodes), plan=None if plan is None else base / plan, plan_format=fmt, epoch=epoch_dt
    )


def _smtp(table: object, source: Path) -> dict[str, Any] | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _fail(source, "smtp", "must be a table")
    known = {"host": str, "port": int, "sender": str, "starttls": bool, "username": str, "password": str}
    for key, value in table.items():
        if key not in known:
            raise _fail(source, f"smtp.{key}", f"unknown key (known: {', '.join(known)})")
        if type(value) is not known[key]:
            raise _fail(source, f"smtp.{key}", f"must be {known[key].__name__}")
    return dict(table)


def mission_clock(config: GroundConfig) -> Callable[[], datetime]:
    """The service's clock: real time, or the configured mission time running ``clock_speed`` fast."""
    if config.clock_start is None and config.clock_speed == 1.0:
        return lambda: datetime.now(UTC)
    start = config.clock_start or datetime.now(UTC)
    real0 = time.monotonic()
    speed = config.clock_speed
    return lambda: start + timedelta(seconds=(time.monotonic() - real0) * speed)
