"""Crash safety: a relay killed with SIGKILL at random moments loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from proxima.bpv7 import EID
from proxima.runtime.config import ListenConfig, NeighbourConfig, NodeConfig, RouteConfig
from proxima.runtime.node import Node
from test_node_net import free_port

ISS, RELAY, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:2.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")
CHILD = Path(__file__).with_name("node_child.py")


def test_relay_killed_at_random_moments(tmp_path: Path) -> None:
    rnd = random.Random(20261122)
    p_relay, p_ground = free_port(), free_port()
    relay_conf = tmp_path / "relay.toml"
    relay_conf.write_text(
        f"""
node_id = "ipn:2.0"
[storage]
path = "relay-store"
[tcpcl]
keepalive = 1
[[listen]]
cla = "tcpcl"
port = {p_relay}
[[neighbour]]
node_id = "ipn:3.0"
cla = "tcpcl"
port = {p_ground}
"""
    )
    iss = Node(
        NodeConfig(
            node_id=ISS,
            store_path=tmp_path / "iss",
            neighbours=(NeighbourConfig(RELAY, "tcpcl", "127.0.0.1", p_relay),),
            routes=(RouteConfig("*", RELAY),),
            keepalive=1,
        )
    )
    ground = Node(
        NodeConfig(
            node_id=GROUND,
            store_path=tmp_path / "ground",
            endpoints=(POSTS,),
            listen=(ListenConfig("tcpcl", "127.0.0.1", p_ground),),
            keepalive=1,
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(CHILD), str(relay_conf)], stdout=subprocess.DEVNULL, env=env, cwd=tmp_path
        )

    count = 600
    kills = 0

    async def main() -> list[bytes]:
        nonlocal kills
        await ground.start()
        await iss.start()
        relay = spawn()
        got: list[bytes] = []

        async def sender() -> None:
            for i in range(count):
                await iss.send(POSTS, f"post {i:04d}".encode() + bytes(rnd.randrange(0, 3000)))
                if i % 10 == 0:
                    await asyncio.sleep(rnd.uniform(0, 0.05))

        async def receiver() -> None:
            while len(got) < count:
                d = await ground.take(POSTS, timeout=60)
                assert d is not None, f"{len(got)} of {count} arrived"
                got.append(d.bundle.payload[:9])
                await ground.ack(POSTS, d.store_id)

        async def killer() -> None:
            nonlocal relay, kills
            while len(got) < count and kills < 15:
                await asyncio.sleep(rnd.uniform(0.05, 0.4))
                relay.send_signal(signal.SIGKILL)
                relay.wait()
                kills += 1
                relay = spawn()

        recv = asyncio.create_task(receiver())
        await asyncio.gather(sender(), killer())
        await recv
        # A copy resent after a kill would come late: none may come while the chain stays up.
        late = await ground.take(POSTS, timeout=2.0)
        assert late is None, f"{late.bundle.payload[:9]!r} delivered twice"
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        await iss.stop()
        await ground.stop()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 120))
    assert kills >= 3
    assert sorted(got) == [f"post {i:04d}".encode() for i in range(count)]  # all, each once
