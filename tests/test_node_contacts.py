"""A node following a contact plan, on loopback, with its mission clock sped up: bundles wait in
storage while there is no contact, flow when it opens, and wait again after it ends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from proxima.bpv7 import EID
from proxima.errors import ConfigError
from proxima.runtime.config import parse_config
from proxima.runtime.node import Node
from test_node_net import free_port

ISS, GROUND, POSTS = EID.parse("ipn:1.0"), EID.parse("ipn:3.0"), EID.parse("ipn:3.7")
SPEED = 40.0  # mission seconds per real second
PLAN = """# two passes over the ground station, in mission seconds from the epoch
a contact +80 +160 1 3 1000000
a contact +80 +160 3 1 1000000
a contact +280 +360 1 3 1000000
a contact +280 +360 3 1 1000000
a range +0 +1000 1 3 0
"""


def configs(tmp: Path, port: int, epoch: str) -> tuple[str, str]:
    (tmp / "plan.rc").write_text(PLAN, encoding="utf-8")
    common = f"""
[contact_plan]
file = "plan.rc"
epoch = "{epoch}"
[clock]
start = "{epoch}"
speed = {SPEED}
"""
    iss = f"""node_id = "ipn:1.0"
[storage]
path = "iss"
[[neighbour]]
node_id = "ipn:3.0"
cla = "tcpcl"
host = "127.0.0.1"
port = {port}
{common}"""
    ground = f"""node_id = "ipn:3.0"
endpoints = ["ipn:3.7"]
[storage]
path = "ground"
[[listen]]
cla = "tcpcl"
host = "127.0.0.1"
port = {port}
{common}"""
    return iss, ground


def mission_s(node: Node, epoch_ms: int) -> float:
    return (node.clock() - epoch_ms) / 1000


async def until_mission_s(node: Node, epoch_ms: int, t: float) -> None:
    """Wait until ``node``'s clock reads mission second ``t``."""
    while mission_s(node, epoch_ms) < t:
        await asyncio.sleep(0.01)


def test_bundles_wait_for_a_contact_and_flow_during_it(tmp_path: Path) -> None:
    epoch = "2026-03-11T00:00:00Z"
    iss_text, ground_text = configs(tmp_path, free_port(), epoch)
    iss = Node(parse_config(iss_text, source="iss.toml", base=tmp_path))
    ground = Node(parse_config(ground_text, source="ground.toml", base=tmp_path))
    epoch_ms = iss.clock() - 0  # the clocks start at the epoch: mission second 0 is now
    log: list[tuple[str, float]] = []

    async def main() -> None:
        await ground.start()
        await iss.start()
        try:
            await iss.send(POSTS, b"Premier message depuis l'ISS")
            # Mission second ~40: no contact yet. The post waits on board.
            await until_mission_s(iss, epoch_ms, 40)
            assert iss.store is not None and len(iss.store) == 1
            assert ground.pending_deliveries(POSTS) == 0
            assert not iss.agent.links_up
            d = await ground.take(POSTS, timeout=10)
            assert d is not None and d.bundle.payload == b"Premier message depuis l'ISS"
            log.append(("delivered", mission_s(ground, epoch_ms)))
            await ground.ack(POSTS, d.store_id)
            # After the pass (mission second 160) the link closes; a new post waits again.
            await until_mission_s(iss, epoch_ms, 175)
            assert not iss.agent.links_up
            await iss.send(POSTS, b"second")
            await until_mission_s(iss, epoch_ms, 240)
            assert len(iss.store) == 1 and ground.pending_deliveries(POSTS) == 0
            d = await ground.take(POSTS, timeout=10)
            assert d is not None and d.bundle.payload == b"second"
            log.append(("delivered", mission_s(ground, epoch_ms)))
            await ground.ack(POSTS, d.store_id)
            await asyncio.sleep(0.1)
            assert len(iss.store) == 0
        finally:
            await iss.stop()
            await ground.stop()

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(main(), 30))
    # each delivery happened inside its contact (mission seconds 80-160, then 280-360)
    (_, first), (_, second) = log
    assert 80 <= first < 160, log
    assert 280 <= second < 360, log
    assert time.monotonic() - started < 15


def test_a_link_the_peer_opened_lasts_as_long_as_the_peer_s_contact(tmp_path: Path) -> None:
    """Contacts are one-way: when this node's contact to a neighbour ends while the neighbour's
    contact to it goes on, the link the neighbour opened stays up (it is the neighbour's to
    close), and bundles keep coming over it."""
    epoch = "2026-03-11T00:00:00Z"
    ports = free_port(), free_port()
    (tmp_path / "plan.rc").write_text(
        "a contact +20 +60 1 3 1000000\na contact +20 +200 3 1 1000000\na range +0 +1000 1 3 0\n",
        encoding="utf-8",
    )
    speed = 100.0

    def config(me: str, peer: str, listen: int, dial: int) -> str:
        return f"""node_id = "{me}"
endpoints = ["{me[:-1]}7"]
[storage]
path = "{me[4]}"
[[listen]]
cla = "tcpcl"
host = "127.0.0.1"
port = {listen}
[[neighbour]]
node_id = "{peer}"
cla = "tcpcl"
host = "127.0.0.1"
port = {dial}
[contact_plan]
file = "plan.rc"
epoch = "{epoch}"
[clock]
start = "{epoch}"
speed = {speed}
"""

    iss = Node(parse_config(config("ipn:1.0", "ipn:3.0", ports[0], ports[1]), source="iss", base=tmp_path))
    ground = Node(parse_config(config("ipn:3.0", "ipn:1.0", ports[1], ports[0]), source="gr", base=tmp_path))
    epoch_ms = iss.clock()
    sessions: list[float] = []  # mission time at which each of the ISS's sessions was seen up

    async def watch() -> None:
        while True:
            opened = sum(iss.links_opened.values())
            if opened > len(sessions):
                sessions.extend([mission_s(iss, epoch_ms)] * (opened - len(sessions)))
            await asyncio.sleep(0.002)

    async def main() -> None:
        await ground.start()
        await iss.start()
        watcher = asyncio.create_task(watch())
        try:
            await until_mission_s(iss, epoch_ms, 100)  # the ISS's contact to the ground ended at 60
            await ground.send(EID.parse("ipn:1.7"), b"still talking")
            d = await iss.take(EID.parse("ipn:1.7"), timeout=5)
            assert d is not None and d.bundle.payload == b"still talking"
            assert mission_s(iss, epoch_ms) < 200
            assert GROUND in iss.agent.links_up
        finally:
            watcher.cancel()
            await iss.stop()
            await ground.stop()

    asyncio.run(asyncio.wait_for(main(), 20))
    # one session each way, opened in the first contact; none was closed and opened again
    assert len(sessions) == 2 and all(20 <= t < 60 for t in sessions), sessions


def test_contact_plan_configuration_errors(tmp_path: Path) -> None:
    base = 'node_id = "ipn:1.0"\n'
    with pytest.raises(ConfigError, match=r"contact_plan\.format must be ion, ud3tn or hdtn"):
        parse_config(base + '[contact_plan]\nfile = "p.rc"\nformat = "xml"\n', base=tmp_path)
    with pytest.raises(ConfigError, match="static routes and a contact plan"):
        parse_config(
            base + '[[route]]\ndestination = "*"\nvia = "ipn:3.0"\n[contact_plan]\nfile = "p.rc"\n',
            base=tmp_path,
        )
    with pytest.raises(ConfigError, match=r"clock\.speed must be a number above 0"):
        parse_config(base + "[clock]\nspeed = 0\n", base=tmp_path)
    with pytest.raises(ConfigError, match=r"clock\.start: give a time zone"):
        parse_config(base + '[clock]\nstart = "2026-03-11T00:00:00"\n', base=tmp_path)
    config = parse_config(base + '[contact_plan]\nfile = "missing.rc"\n', base=tmp_path)
    with pytest.raises(ConfigError, match="cannot read the contact plan"):
        Node(config)
    (tmp_path / "bad.rc").write_text("a contact +0 +10 1 3 fast\n", encoding="utf-8")
    config = parse_config(base + '[contact_plan]\nfile = "bad.rc"\n', base=tmp_path)
    with pytest.raises(ConfigError, match="line 1"):
        Node(config)
