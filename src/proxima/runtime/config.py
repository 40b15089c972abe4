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

    [[route]]
    destination = "ipn:3.*"        # *, an EID, ipn:N.*, dtn://node/*
    via = "ipn:3.0"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxima.bpv7.eid import EID
from proxima.errors import ConfigError, InvalidEndpointID

__all__ = ["AppConfig", "ListenConfig", "NeighbourConfig", "NodeConfig", "RouteConfig", "load_config"]

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
    r.unknown({"node_id", "endpoints", "storage", "app", "listen", "neighbour", "route", "tcpcl"})
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
        t.unknown({"node_id", "cla", "host", "port", "tls", "tls_ca"})
        ca = t.get("tls_ca", str, None)
        neighbours.append(
            NeighbourConfig(
                t.eid("node_id").node_id,
                t.cla(),
                t.get("host", str, "127.0.0.1"),
                t.port(),
                t.get("tls", bool, False),
                None if ca is None else base / ca,
            )
        )
    routes = []
    for t in r.tables("route"):
        t.unknown({"destination", "via"})
        routes.append(RouteConfig(t.get("destination", str), t.eid("via").node_id))
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
