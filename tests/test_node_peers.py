"""A running node with TLS from its configuration, and with pyd3tn as a live MTCP peer both ways."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from pyd3tn import bundle7 as p7
from pyd3tn.mtcp import MTCPConnection, MTCPSocket

from proxima.bpv7 import EID
from proxima.runtime.config import ListenConfig, NeighbourConfig, NodeConfig, RouteConfig
from proxima.runtime.node import Node
from test_cla_drivers import make_certificate
from test_node_net import free_port

ISS, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")


def test_tcpcl_with_tls_from_the_node_configuration(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    port = free_port()
    ground = Node(
        NodeConfig(
            node_id=GROUND,
            store_path=tmp_path / "ground",
            endpoints=(POSTS,),
            listen=(ListenConfig("tcpcl", "127.0.0.1", port, tls_cert=cert, tls_key=key),),
        )
    )
    iss = Node(
        NodeConfig(
            node_id=ISS,
            store_path=tmp_path / "iss",
            neighbours=(NeighbourConfig(GROUND, "tcpcl", "localhost", port, tls=True, tls_ca=cert),),
            routes=(RouteConfig("*", GROUND),),
        )
    )

    async def main() -> None:
        await ground.start()
        await iss.start()
        await iss.send(POSTS, b"encrypted on the link")
        d = await ground.take(POSTS, timeout=10)
        assert d is not None and d.bundle.payload == b"encrypted on the link"
        assert any(getattr(link, "tls", False) for link in iss._links)
        await iss.stop()
        await ground.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_pyd3tn_sends_to_a_running_node_and_receives_from_one(tmp_path: Path) -> None:
    """pyd3tn's MTCPConnection sends to our node's MTCP listener; our node forwards to a pyd3tn
    MTCPSocket receiver configured as its neighbour."""
    p_ours = free_port()
    listener = socket.create_server(("127.0.0.1", 0))
    p_theirs = listener.getsockname()[1]
    relay = Node(
        NodeConfig(
            node_id=EID.parse("ipn:2.0"),
            store_path=tmp_path / "relay",
            endpoints=(EID.parse("ipn:2.5"),),
            listen=(ListenConfig("mtcp", "127.0.0.1", p_ours),),
            neighbours=(NeighbourConfig(EID.parse("ipn:7.0"), "mtcp", "127.0.0.1", p_theirs),),
        )
    )
    to_us = p7.serialize_bundle7("ipn:7.1", "ipn:2.5", b"hello from pyd3tn", creation_timestamp=None)
    onward = p7.serialize_bundle7(
        "ipn:7.1", "ipn:7.9", b"round trip through proxima", creation_timestamp=None
    )

    def pyd3tn_send() -> None:
        with MTCPConnection("127.0.0.1", p_ours, timeout=5) as conn:
            conn.send_bundle(to_us)
            conn.send_bundle(onward)

    def pyd3tn_receive() -> bytes:
        listener.settimeout(10)
        conn, _ = listener.accept()
        mtcp = MTCPSocket(conn, timeout=10)
        try:
            return bytes(mtcp.recv_bundle())
        finally:
            mtcp.disconnect()

    async def main() -> bytes:
        receiver = asyncio.ensure_future(asyncio.to_thread(pyd3tn_receive))
        await relay.start()
        await asyncio.to_thread(pyd3tn_send)
        d = await relay.take(EID.parse("ipn:2.5"), timeout=10)
        assert d is not None and d.bundle.payload == b"hello from pyd3tn"
        got = await asyncio.wait_for(receiver, 15)
        await relay.stop()
        return got

    try:
        got = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        listener.close()
    parsed = p7.Bundle.parse(got)
    assert parsed.payload_block.data == b"round trip through proxima"
    assert str(parsed.primary_block.destination) == "ipn:7.9"
