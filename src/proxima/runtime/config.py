"""Node configuration from a TOML file, checked with errors that name the file and the key.

Example::

    node_id = "ipn:2.0"
    endpoints = ["ipn:2.1"]

    [storage]
    path = "relay-store"          # relative to the configuration file
    quota_bytes = 1_000_000_000

    [app]                          # the local application interface (loopback only)
    host = "127.0.0.1"
    port = 4242

    [[listen]]
    cla = "tcpcl"                  # tcpcl, mtcp, stcp or udp
    host = "127.0.0.1"
    port = 4556

    [[neighbour]]
    node_id = "ipn:3.0"
    cla = "tcpcl"
    host = "127.0.0.1"
    port = 4557
    # rate = 10_000_000           # udp only: bytes per second at most (default: no limit)

    [[route]]
    destination = "ipn:3.*"        # *, an EID, ipn:N.*, dtn://node/*
    via = "ipn:3.0"

Instead of static routes, a contact plan (contact graph routing: links to neighbours are opened
when a contact starts and closed when it ends)::

    [contact_plan]
    file = "plan.rc"               # relative to the configuration file
    format = "ion"                 # ion, ud3tn or hdtn (default: .json is hdtn, else ion)
    epoch = "2026-03-11T00:00:00Z" # what "+0" means in the plan (default: when the node starts)

and a mission clock, for demonstrations and tests that run a plan faster than real time::

    [clock]
    start = "2026-03-11T00:00:00Z" # the mission time when the node starts (default: now)
    speed = 60.0                   # mission seconds per real second (default 1)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from proxima.bpv7.eid import EID
from proxima.errors import ConfigError, InvalidEndpointID

__all__ = [
    "AppConfig",
    "ClockConfig",
    "ContactPlanConfig",
    "ListenConfig",
    "NeighbourConfig",
    "NodeConfig",
    "RouteConfig",
    "load_config",
]

CLAS = ("tcpcl", "mtcp", "stcp", "udp")


@dataclass(frozen=True)
class ListenConfig:
    """A convergence-layer listener."""

    cla: str
    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class NeighbourConfig:
    """A peer this node connects to (and routes to directly)."""

    node_id: EID
    cla: str
    host: str
    port: int
    tls: bool = False
    tls_ca: Path | None = None
    rate: int | None = None
    """UDP only: the most bytes per second sent to it (None: as fast as the socket takes them).
    UDP has no flow control: a receiver whose socket buffer is small (ION's, at the kernel's
    default) drops what arrives in a burst, such as the fragments of a large bundle."""


@dataclass(frozen=True)
class RouteConfig:
    """A static route: destinations matching ``destination`` go through neighbour ``via``."""

    destination: str
    via: EID


@dataclass(frozen=True)
class AppConfig:
    """Where the local application interface listens."""

    host: str = "127.0.0.1"
    port: int = 4242


@dataclass(frozen=True)
class ContactPlanConfig:
    """A contact plan file: routing by contact graph, links opened during contacts only."""

    path: Path
    format: str = "ion"
    epoch_unix: float | None = None
    """What relative times in the plan count from (Unix seconds); None: when the node starts."""


@dataclass(frozen=True)
class ClockConfig:
    """The node's mission clock: ``start_unix`` at start (None: real time), ``speed`` × real time."""

    start_unix: float | None = None
    speed: float = 1.0


@dataclass(frozen=True)
class NodeConfig:
    """A node: identity, endpoints, storage, listeners, neighbours and routes."""

    node_id: EID
    store_path: Path
    endpoints: tuple[EID, ...] = ()
    quota_bytes: int | None = None
    app: AppConfig = field(default_factory=AppConfig)
    listen: tuple[ListenConfig, ...] = ()
    neighbours: tuple[NeighbourConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    keepalive: int = 15
    segment_mru: int = 1_000_000
    transfer_mru: int = 2_000_000_000
    contact_plan: ContactPlanConfig | None = None
    clock: ClockConfig = field(default_factory=ClockConfig)


def _iso(reader: _Reader, key: str) -> float | None:
    text = reader.get(key, str, None)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{reader.where(key)}: not an ISO 8601 time: {text!r}") from exc
    if when.tzinfo is None:
        raise ConfigError(f"{reader.where(key)}: give a time zone (e.g. 2026-03-11T00:00:00Z)")
    return when.timestamp()


class _Reader:
    """Typed access to a TOML table, with errors naming ``file: key``."""

    def __init__(self, source: str, table: dict[str, Any], prefix: str = "") -> None:
        self.source = source
        self.table = table
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.source}: {self.prefix}{key}"

    def get(self, key: str, kind: type, default: Any = ..., *, what: str = "") -> Any:
        if key not in self.table:
            if default is ...:
                raise ConfigError(f"{self.where(key)} is missing{f' ({what})' if what else ''}")
            return default
        value = self.table[key]
        if kind is int and (type(value) is not int):
            raise ConfigError(f"{self.where(key)} must be an integer, not {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise ConfigError(f"{self.where(key)} must be a {kind.__name__}, not {value!r}")
        return value

    def eid(self, key: str) -> EID:
        text = self.get(key, str, what="an endpoint ID such as ipn:2.0")
        try:
            return EID.parse(text)
        except InvalidEndpointID as exc:
            raise ConfigError(f"{self.where(key)}: {exc}") from exc

    def port(self, key: str = "port") -> int:
        port: int = self.get(key, int)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{self.where(key)} must be a TCP/UDP port 0..65535, not {port}")
        return port

    def cla(self) -> str:
        cla: str = self.get("cla", str, "tcpcl")
        if cla not in CLAS:
            raise ConfigError(f"{self.where('cla')} must be one of {', '.join(CLAS)}, not {cla!r}")
        return cla

    def tables(self, key: str) -> list[_Reader]:
        items = self.table.get(key, [])
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise ConfigError(f"{self.where(key)} must be an array of tables ([[{key}]])")
        return [_Reader(self.source, x, f"{self.prefix}{key}[{i}].") for i, x in enumerate(items)]

    def unknown(self, known: set[str]) -> None:
        extra = sorted(set(self.table) - known)
        if extra:
            raise ConfigError(f"{self.where(extra[0])}: unknown key (known: {', '.join(sorted(known))})")


def parse_config(text: str, *, source: str = "<config>", base: Path | None = None) -> NodeConfig:
    """Parse a node configuration; relative paths are taken from ``base``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    base = base or Path()
    r = _Reader(source, doc)
    r.unknown(
        {"node_id", "endpoints", "storage", "app", "listen", "neighbour", "route", "tcpcl"}
        | {"contact_plan", "clock"}
    )
    node_id = r.eid("node_id")
    if node_id.is_none or node_id != node_id.node_id:
        raise ConfigError(f"{r.where('node_id')} must be a node ID (ipn:N.0 or dtn://name/), not {node_id}")
    endpoints = []
    for i, text_eid in enumerate(r.get("endpoints", list, [])):
        if not isinstance(text_eid, str):
            raise ConfigError(f"{r.where(f'endpoints[{i}]')} must be text")
        try:
            endpoints.append(EID.parse(text_eid))
        except InvalidEndpointID as exc:
            raise ConfigError(f"{r.where(f'endpoints[{i}]')}: {exc}") from exc
    storage = _Reader(source, r.get("storage", dict, {}), "storage.")
    storage.unknown({"path", "quota_bytes"})
    store_path = base / storage.get("path", str, f"store-{str(node_id).replace(':', '-').replace('/', '_')}")
    quota = storage.get("quota_bytes", int, None)
    app_t = _Reader(source, r.get("app", dict, {}), "app.")
    app_t.unknown({"host", "port"})
    app = AppConfig(app_t.get("host", str, "127.0.0.1"), app_t.port() if "port" in app_t.table else 4242)
    tcpcl = _Reader(source, r.get("tcpcl", dict, {}), "tcpcl.")
    tcpcl.unknown({"keepalive", "segment_mru", "transfer_mru"})
    listen = []
    for t in r.tables("listen"):
        t.unknown({"cla", "host", "port", "tls_cert", "tls_key"})
        cert, key = t.get("tls_cert", str, None), t.get("tls_key", str, None)
        if (cert is None) != (key is None):
            raise ConfigError(f"{t.where('tls_cert')}: give both tls_cert and tls_key, or neither")
        listen.append(
            ListenConfig(
                t.cla(),
                t.get("host", str, "127.0.0.1"),
                t.port(),
                None if cert is None else base / cert,
                None if key is None else base / key,
            )
        )
    neighbours = []
    for t in r.tables("neighbour"):
        t.unknown({"node_id", "cla", "host", "port", "tls", "tls_ca", "rate"})
        ca = t.get("tls_ca", str, None)
        cla = t.cla()
        rate = t.get("rate", int, None)
        if rate is not None and (rate <= 0 or cla != "udp"):
            what = "a positive number of bytes per second" if rate <= 0 else "for a udp neighbour only"
            raise ConfigError(f"{t.where('rate')} must be {what}, not {rate!r} (cla {cla!r})")
        neighbours.append(
            NeighbourConfig(
                t.eid("node_id").node_id,
                cla,
                t.get("host", str, "127.0.0.1"),
                t.port(),
                t.get("tls", bool, False),
                None if ca is None else base / ca,
                rate,
            )
        )
    routes = []
    for t in r.tables("route"):
        t.unknown({"destination", "via"})
        routes.append(RouteConfig(t.get("destination", str), t.eid("via").node_id))
    plan = None
    if "contact_plan" in doc:
        cp = _Reader(source, r.get("contact_plan", dict), "contact_plan.")
        cp.unknown({"file", "format", "epoch"})
        plan_path = base / cp.get("file", str)
        fmt = cp.get("format", str, "hdtn" if plan_path.suffix == ".json" else "ion")
        if fmt not in ("ion", "ud3tn", "hdtn"):
            raise ConfigError(f"{cp.where('format')} must be ion, ud3tn or hdtn, not {fmt!r}")
        if routes:
            raise ConfigError(f"{r.where('route')}: static routes and a contact plan exclude each other")
        plan = ContactPlanConfig(plan_path, fmt, _iso(cp, "epoch"))
    ck = _Reader(source, r.get("clock", dict, {}), "clock.")
    ck.unknown({"start", "speed"})
    speed = ck.table.get("speed", 1.0)
    number = isinstance(speed, int | float) and not isinstance(speed, bool)
    if not number or not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"{ck.where('speed')} must be a number above 0, not {speed}")
    clock = ClockConfig(_iso(ck, "start"), float(speed))
    return NodeConfig(
        node_id=node_id,
        store_path=store_path,
        endpoints=tuple(endpoints),
        quota_bytes=quota,
        app=app,
        listen=tuple(listen),
        neighbours=tuple(neighbours),
        routes=tuple(routes),
        keepalive=tcpcl.get("keepalive", int, 15),
        segment_mru=tcpcl.get("segment_mru", int, 1_000_000),
        transfer_mru=tcpcl.get("transfer_mru", int, 2_000_000_000),
        contact_plan=plan,
        clock=clock,
    )


def load_config(path: Path | str) -> NodeConfig:
    """Read a node configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text") from exc
    return parse_config(text, source=str(p), base=p.parent)
