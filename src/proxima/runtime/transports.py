"""Open a node's configured listeners and neighbour sessions with the right convergence layer."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Protocol

from proxima.cla.tcpcl import TcpclConfig
from proxima.errors import ConfigError
from proxima.runtime import cla_drivers
from proxima.runtime.links import BundleSink

if TYPE_CHECKING:
    from proxima.runtime.config import ListenConfig, NeighbourConfig, NodeConfig
    from proxima.runtime.links import Link

__all__ = ["Closable", "connect", "listen", "tcpcl_config"]


class Closable(Protocol):
    """A listener the node closes when it stops."""

    def close(self) -> None:
        """Stop accepting."""
        ...


class _NodeLike(Protocol):
    config: NodeConfig


class _Sink(BundleSink, _NodeLike, Protocol):
    pass


class _UdpListener:
    """A bound UDP socket seen as a listener."""

    def __init__(self, link: cla_drivers.UdpLink) -> None:
        self.link = link
        self._closing: asyncio.Task[None] | None = None

    def close(self) -> None:
        self._closing = asyncio.ensure_future(self.link.close())


def tcpcl_config(config: NodeConfig, *, can_tls: bool = False) -> TcpclConfig:
    """The TCPCLv4 session parameters of a node."""
    return TcpclConfig(
        node_id=str(config.node_id),
        keepalive=config.keepalive,
        segment_mru=config.segment_mru,
        transfer_mru=config.transfer_mru,
        can_tls=can_tls,
    )


def _server_context(lc: ListenConfig) -> ssl.SSLContext | None:
    if lc.tls_cert is None or lc.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(lc.tls_cert, lc.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"listen {lc.cla}:{lc.port}: cannot load the TLS certificate: {exc}") from exc
    return context


def _client_context(nc: NeighbourConfig) -> ssl.SSLContext | None:
    if not nc.tls:
        return None
    try:
        return ssl.create_default_context(cafile=None if nc.tls_ca is None else str(nc.tls_ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"neighbour {nc.node_id}: cannot load the TLS CA file: {exc}") from exc


async def listen(lc: ListenConfig, node: _Sink) -> Closable:
    """Start one configured listener; bundles received go to ``node``."""
    if lc.cla == "tcpcl":
        context = _server_context(lc)
        cfg = tcpcl_config(node.config, can_tls=context is not None)
        return await cla_drivers.tcpcl_listen(lc.host, lc.port, cfg, node, ssl=context)
    if lc.cla == "mtcp":
        return await cla_drivers.mtcp_listen(lc.host, lc.port, node)
    if lc.cla == "stcp":
        return await cla_drivers.stcp_listen(lc.host, lc.port, node)
    if lc.cla == "udp":
        return _UdpListener(await cla_drivers.udp_endpoint(lc.host, lc.port, node))
    raise ConfigError(f"unknown convergence layer {lc.cla!r}")


async def connect(nc: NeighbourConfig, node: _Sink) -> Link:
    """Open a session to a configured neighbour."""
    if nc.cla == "tcpcl":
        context = _client_context(nc)
        cfg = tcpcl_config(node.config, can_tls=context is not None)
        return await cla_drivers.tcpcl_connect(nc.host, nc.port, cfg, node, ssl=context)
    if nc.cla == "mtcp":
        return await cla_drivers.mtcp_connect(nc.host, nc.port, node, peer=nc.node_id)
    if nc.cla == "stcp":
        return await cla_drivers.stcp_connect(nc.host, nc.port, node, peer=nc.node_id)
    if nc.cla == "udp":
        return await cla_drivers.udp_endpoint(
            "127.0.0.1", 0, node, peer_addr=(nc.host, nc.port), peer=nc.node_id, rate=nc.rate
        )
    raise ConfigError(f"unknown convergence layer {nc.cla!r}")
