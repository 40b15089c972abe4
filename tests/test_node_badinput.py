"""A running node facing bad peers: it refuses what it must, with the right codes, and keeps serving."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from proxima.bpv7 import EID, Bundle, PrimaryBlock, encode_bundle, payload_block
from proxima.cla.tcpcl import TcpclConfig, XferRefuseReason
from proxima.runtime.cla_drivers import TransferRefusedError, tcpcl_connect
from proxima.runtime.config import ListenConfig, NodeConfig
from proxima.runtime.links import IncomingBundle, Link
from proxima.runtime.node import Node, dtn_now_ms
from test_node_net import free_port

GROUND, POSTS = EID.parse("ipn:3.0"), EID.parse("ipn:3.7")


class NullSink:
    def open_incoming(self, link: Link | None, length: int | None) -> IncomingBundle:
        raise AssertionError("nothing is sent back in these tests")

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link) -> None:
        pass


def post(seq: int, size: int = 10) -> bytes:
    return encode_bundle(
        Bundle(
            PrimaryBlock(POSTS, EID.parse("ipn:9.1"), creation_time=dtn_now_ms(), sequence=seq),
            (payload_block(bytes(size)),),
        )
    )


def run_against_ground(tmp_path: Path, body: object, *, quota: int | None = None) -> None:
    port = free_port()
    ground = Node(
        NodeConfig(
            node_id=GROUND,
            store_path=tmp_path / "ground",
            endpoints=(POSTS,),
            listen=(ListenConfig("tcpcl", "127.0.0.1", port),),
            quota_bytes=quota,
        )
    )

    async def main() -> None:
        await ground.start()
        try:
            await body(ground, port)  # type: ignore[operator]
        finally:
            await ground.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_invalid_bundle_is_refused_not_acceptable_and_session_goes_on(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        with pytest.raises(TransferRefusedError) as info:
            await link.send(b"\x9f\x89\x07\xff")  # not a bundle
        assert info.value.reason == XferRefuseReason.NOT_ACCEPTABLE
        bad_crc = bytearray(post(1))
        bad_crc[-2] ^= 0xFF
        good = post(2)
        await link.send(good)  # the same session still works
        assert (await ground.take(POSTS, timeout=5)) is not None
        assert ground.status()["counters"]["received"] >= 1
        await link.close()

    run_against_ground(tmp_path, body)


def test_bundle_over_quota_is_refused_no_resources(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        with pytest.raises(TransferRefusedError) as info:
            await link.send(post(1, size=50_000))
        assert info.value.reason == XferRefuseReason.NO_RESOURCES
        await link.send(post(2))
        assert (await ground.take(POSTS, timeout=5)) is not None
        await link.close()

    run_against_ground(tmp_path, body, quota=20_000)


def test_garbage_peer_is_dropped_and_others_are_served(tmp_path: Path) -> None:
    async def body(ground: Node, port: int) -> None:
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setblocking(False)
            await loop.sock_sendall(raw, b"GET / HTTP/1.1\r\n\r\n" * 10)
            closed = await asyncio.wait_for(loop.sock_recv(raw, 100), 5)
            assert closed == b""  # not a TCPCL peer: closed without a word (RFC 9174 §4.3)
        link = await tcpcl_connect("127.0.0.1", port, TcpclConfig(node_id="ipn:9.0"), NullSink())
        await link.send(post(3))
        assert (await ground.take(POSTS, timeout=5)) is not None
        await link.close()

    run_against_ground(tmp_path, body)
