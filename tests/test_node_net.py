"""Three real nodes on loopback relay bundles over each convergence layer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from proxima.bpv7 import EID
from proxima.runtime.config import ListenConfig, NeighbourConfig, NodeConfig, RouteConfig
from proxima.runtime.node import Node

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chain(tmp_path: Path, cla: str = "tcpcl", endpoint: EID = POSTS) -> tuple[Node, Node, Node]:
    """ISS -> relay -> ground over ``cla`` on loopback, ``endpoint`` registered on the ground."""
    kind = socket.SOCK_DGRAM if cla == "udp" else socket.SOCK_STREAM
    p_relay, p_ground = free_port(kind), free_port(kind)

    def cfg(node: EID, **kw: object) -> NodeConfig:
        return NodeConfig(node_id=node, store_path=tmp_path / str(node.node), **kw)  # type: ignore[arg-type]

    iss = Node(
        cfg(
            ISS,
            neighbours=(NeighbourConfig(RELAY, cla, "127.0.0.1", p_relay),),
            routes=(RouteConfig("*", RELAY),),
        )
    )
    relay = Node(
        cfg(
            RELAY,
            listen=(ListenConfig(cla, "127.0.0.1", p_relay),),
            neighbours=(NeighbourConfig(GROUND, cla, "127.0.0.1", p_ground),),
        )
    )
    ground = Node(cfg(GROUND, endpoints=(endpoint,), listen=(ListenConfig(cla, "127.0.0.1", p_ground),)))
    return iss, relay, ground


@pytest.mark.parametrize("cla", ["tcpcl", "mtcp", "stcp", "udp"])
def test_three_nodes_relay_over(cla: str, tmp_path: Path) -> None:
    iss, relay, ground = chain(tmp_path, cla)

    async def main() -> list[bytes]:
        for n in (ground, relay, iss):
            await n.start()
        posts = [f"post {i} via {cla}".encode() for i in range(20)] + [bytes(range(256)) * 200]
        for p in posts:
            await iss.send(POSTS, p)
        got = []
        for _ in posts:
            d = await ground.take(POSTS, timeout=10)
            assert d is not None, f"only {len(got)} of {len(posts)} arrived"
            got.append(d.bundle.payload)
            await ground.ack(POSTS, d.store_id)
        for n in (iss, relay, ground):
            await n.stop()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 60))
    assert sorted(got) == sorted(
        [f"post {i} via {cla}".encode() for i in range(20)] + [bytes(range(256)) * 200]
    )


def test_a_bundle_too_large_for_a_udp_datagram_goes_in_fragments_and_arrives_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """UDP carries at most 65,507 bytes a datagram: a larger bundle is split into fragments that
    each fit (RFC 9171 §5.8), relayed one by one and reassembled for the application. One that
    must not be fragmented is given up with a warning that says why."""
    from proxima.bpv7.bundle import BundleFlag

    iss, relay, ground = chain(tmp_path, "udp")
    big = bytes(range(256)) * 800  # 204,800 bytes

    async def main() -> None:
        for n in (ground, relay, iss):
            await n.start()
        await iss.send(POSTS, big)
        d = await ground.take(POSTS, timeout=10)
        assert d is not None and d.bundle.payload == big
        await ground.ack(POSTS, d.store_id)
        assert iss.agent.counters.fragmented == 1 and iss.agent.counters.deleted == 0
        assert not d.bundle.primary.flags & BundleFlag.IS_FRAGMENT  # reassembled
        with caplog.at_level("WARNING", logger="proxima.runtime.node"):
            await iss.send(POSTS, big, flags=int(BundleFlag.MUST_NOT_FRAGMENT))
            for _ in range(200):
                if iss.agent.counters.deleted:
                    break
                await asyncio.sleep(0.01)
        assert iss.agent.counters.deleted == 1 and iss.agent.counters.fragmented == 1
        assert any("does not fit in a datagram" in r.getMessage() for r in caplog.records)
        assert await ground.take(POSTS, timeout=0.3) is None
        for n in (iss, relay, ground):
            await n.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_udp_neighbour_s_rate_spaces_the_datagrams_so_a_small_receive_buffer_keeps_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver at the kernel's default UDP buffer (about 200 KiB, as ION's is) drops part of
    a burst of full datagrams. With ``rate`` on the neighbour, the five fragments of a 300-KB
    bundle leave one after another at that rate, and all of them arrive."""
    import time

    from proxima.runtime import cla_drivers

    monkeypatch.setattr(cla_drivers, "UDP_RECEIVE_BUFFER", 106_496)  # the kernel doubles it: 212,992
    port = free_port(socket.SOCK_DGRAM)
    rate = 2_000_000
    iss = Node(
        NodeConfig(
            node_id=ISS,
            store_path=tmp_path / "iss",
            neighbours=(NeighbourConfig(GROUND, "udp", "127.0.0.1", port, rate=rate),),
            routes=(RouteConfig("*", GROUND),),
        )
    )
    ground = Node(
        NodeConfig(
            node_id=GROUND,
            store_path=tmp_path / "ground",
            endpoints=(POSTS,),
            listen=(ListenConfig("udp", "127.0.0.1", port),),
        )
    )
    big = bytes(range(256)) * 1200  # 307,200 bytes: five fragments

    async def main() -> float:
        for n in (ground, iss):
            await n.start()
        started = time.monotonic()
        await iss.send(POSTS, big)
        d = await ground.take(POSTS, timeout=10)
        elapsed = time.monotonic() - started
        assert d is not None and d.bundle.payload == big
        assert iss.agent.counters.fragmented == 1 and iss.agent.counters.forwarded == 5
        for n in (iss, ground):
            await n.stop()
        return elapsed

    elapsed = asyncio.run(asyncio.wait_for(main(), 60))
    assert elapsed >= 4 * 60_000 / rate  # the last fragment left four slots after the first


def test_a_node_that_dialled_in_unannounced_gets_its_bundles_over_its_session(tmp_path: Path) -> None:
    """The ground knows nothing of the visitor (no neighbour, no route) until it dials in: a
    bundle for it then goes back over that TCPCL session (HDTN's bping expects its echoes so)."""
    visitor, home = EID.parse("ipn:9.0"), EID.parse("ipn:9.1")
    port = free_port()
    ground = Node(
        NodeConfig(
            node_id=GROUND, store_path=tmp_path / "ground", listen=(ListenConfig("tcpcl", "127.0.0.1", port),)
        )
    )
    guest = Node(
        NodeConfig(
            node_id=visitor,
            store_path=tmp_path / "visitor",
            endpoints=(home,),
            neighbours=(NeighbourConfig(GROUND, "tcpcl", "127.0.0.1", port),),
        )
    )

    async def main() -> bytes:
        await ground.start()
        await guest.start()
        for _ in range(1000):
            if visitor in ground.agent.links_up:
                break
            await asyncio.sleep(0.01)
        assert visitor in ground.agent.links_up
        await ground.send(home, b"back over your own session")
        d = await guest.take(home, timeout=10)
        assert d is not None, "the bundle for the visitor never arrived"
        for n in (guest, ground):
            await n.stop()
        return d.bundle.payload

    assert asyncio.run(asyncio.wait_for(main(), 60)) == b"back over your own session"
