"""The application interface, the client and the node commands, over real loopback sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxima import speedups
from proxima.bpv7 import EID
from proxima.cli import main
from proxima.client import (
    NodeClient,
    NodeConnectionError,
    NodeRequestError,
    PingResult,
    Received,
    parse_address,
)
from proxima.errors import LocalError
from proxima.runtime.appif import MAX_ATTACHMENT, MAX_BATCH, AppInterface, echo_endpoint
from proxima.runtime.config import NodeConfig, RouteConfig
from proxima.runtime.node import GC_THRESHOLDS, Node
from test_node import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

ISS, GROUND = EID.parse("ipn:1.0"), EID.parse("ipn:3.0")
POSTS = EID.parse("ipn:3.7")
LIMIT = 20.0  # seconds any one test may take at most


def join(a: Node, b: Node) -> None:
    connect(a, b)


def make(tmp: Path, node_id: EID, **kw: Any) -> Node:
    config = NodeConfig(
        node_id=node_id, store_path=tmp / str(node_id).replace(":", "_").replace("/", "_"), **kw
    )
    node = Node(config)
    node.open()
    return node


class Pair:
    """Two nodes joined in memory, each with its application interface on a free port."""

    def __init__(self, tmp: Path, *, joined: bool = True) -> None:
        self.tmp = tmp
        self.iss = make(tmp, ISS, routes=(RouteConfig("*", GROUND),))
        self.ground = make(tmp, GROUND, routes=(RouteConfig("*", ISS),))
        self.iss_app = AppInterface(self.iss, "127.0.0.1", 0)
        self.ground_app = AppInterface(self.ground, "127.0.0.1", 0)
        if joined:
            join(self.iss, self.ground)

    async def start(self) -> None:
        await self.iss_app.start()
        await self.ground_app.start()

    async def stop(self) -> None:
        for app in (self.iss_app, self.ground_app):
            await app.stop()
        for node in (self.iss, self.ground):
            await node.stop()

    async def client(self, app: AppInterface) -> NodeClient:
        return await NodeClient.connect(*app.address)


@contextlib.asynccontextmanager
async def pair(tmp: Path, *, joined: bool = True) -> AsyncIterator[Pair]:
    p = Pair(tmp, joined=joined)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def run(tmp: Path, body: Callable[[Pair], Awaitable[None]], *, joined: bool = True) -> None:
    async def main() -> None:
        async with pair(tmp, joined=joined) as p:
            await body(p)

    asyncio.run(asyncio.wait_for(main(), LIMIT))


class Raw:
    """A bare protocol connection: write lines, read JSON answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, app: AppInterface) -> Raw:
        return cls(*await asyncio.open_connection(*app.address))

    async def line(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, **req: Any) -> None:
        await self.line(json.dumps(req).encode() + b"\n")

    async def send_bin(self, data: bytes | list[bytes], **req: Any) -> None:
        """A request line, then its attachments (raw, as they are)."""
        parts = data if isinstance(data, list) else [data]
        await self.line(json.dumps(req).encode() + b"\n" + b"".join(parts))

    async def answer(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line, "the server closed the connection"
        doc: dict[str, Any] = json.loads(line)
        if "bin" in doc:
            doc["bin"] = await asyncio.wait_for(self.reader.readexactly(doc["bin"]), 5)
        return doc

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


# -- the protocol, through the client ------------------------------------------------------------


def test_register_send_recv_between_two_nodes(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            sent = await iss.send(POSTS, "Bonjour depuis l'ISS", lifetime=600)
            assert sent.source == "ipn:1.0" and sent.creation_time > 0
            sent2 = await iss.send(POSTS, b"\x00\xffbinary", source="ipn:1.5", klass="bulk")
            assert sent2.source == "ipn:1.5"
            assert (sent2.creation_time, sent2.sequence) > (sent.creation_time, sent.sequence)
            got = await ground.recv(POSTS, count=2, timeout=5)
            assert [b.payload for b in got] == [b"Bonjour depuis l'ISS", b"\x00\xffbinary"]
            first = got[0]
            assert (first.source, first.destination, first.endpoint) == ("ipn:1.0", "ipn:3.7", "ipn:3.7")
            assert (first.creation_time, first.sequence) == (sent.creation_time, sent.sequence)
            assert first.lifetime_ms == 600_000
            assert await ground.recv(POSTS, count=1, timeout=0) == []  # acknowledged: gone
        assert p.ground.pending_deliveries(POSTS) == 0
        assert p.ground.status()["stored"]["bundles"] == 0

    run(tmp_path, body)


def test_recv_waits_for_a_bundle_sent_later(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            waiting = asyncio.create_task(ground.recv(POSTS, count=1, timeout=10))
            await until(lambda: POSTS in p.ground.agent.endpoints)  # recv registers the endpoint
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await iss.send(POSTS, "late post")
            got = await waiting
            assert [b.payload for b in got] == [b"late post"]

    run(tmp_path, body)


def test_recv_streams_until_count_and_times_out(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            for i in range(3):
                await iss.send(POSTS, f"post {i}")
            seen = [b.payload async for b in ground.recv_iter(POSTS, count=0, timeout=0.5)]
            assert seen == [b"post 0", b"post 1", b"post 2"]

    run(tmp_path, body)


def test_unread_bundles_stay_for_the_next_client(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        app = p.ground_app
        # A client asks, then goes away before anything arrives.
        raw = await Raw.open(app)
        await raw.request(id=1, op="recv", endpoint=str(POSTS), count=1, timeout_s=10)
        await until(lambda: POSTS in p.ground.agent.endpoints)
        await raw.close()
        await until(lambda: app.connections == 0)
        async with await p.client(p.iss_app) as iss:
            await iss.send(POSTS, "kept for the next one")
        await until(lambda: p.ground.pending_deliveries(POSTS) == 1)
        await asyncio.sleep(0.05)
        assert p.ground.pending_deliveries(POSTS) == 1  # nobody acknowledged it
        async with await p.client(app) as ground:
            got = await ground.recv(POSTS, count=1, timeout=5)
        assert [b.payload for b in got] == [b"kept for the next one"]
        assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


def test_bundles_read_after_an_early_break_go_to_the_next_recv(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            for i in range(4):
                await iss.send(POSTS, f"post {i}")
            await until(lambda: p.ground.pending_deliveries(POSTS) == 4)
            first: list[bytes] = []
            async with contextlib.aclosing(ground.recv_iter(POSTS, count=4, timeout=5)) as it:
                async for b in it:
                    first.append(b.payload)
                    break
            rest = await ground.recv(POSTS, count=0, timeout=0.3)
            assert first + [b.payload for b in rest] == [f"post {i}".encode() for i in range(4)]

    run(tmp_path, body)


def test_waiting_bundles_go_out_in_batches_each_once_in_order(tmp_path: Path) -> None:
    """Many waiting bundles are written and acknowledged together; ``count`` still bounds a
    recv exactly, and what is left goes to the next one."""

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            n = 300
            for start in range(0, n, 100):
                await asyncio.gather(*(iss.send(POSTS, f"post {i}") for i in range(start, start + 100)))
            await until(lambda: p.ground.pending_deliveries(POSTS) == n)
            first = await ground.recv(POSTS, count=5, timeout=5)
            assert len(first) == 5
            assert p.ground.pending_deliveries(POSTS) == n - 5
            rest = await ground.recv(POSTS, count=n - 5, timeout=5)
            got = sorted(int(b.payload.split()[1]) for b in [*first, *rest])
            assert got == list(range(n))
            assert p.ground.pending_deliveries(POSTS) == 0
            assert await ground.recv(POSTS, count=0, timeout=0.2) == []
            stats = p.ground.store.stats() if p.ground.store is not None else None
            assert stats is not None and stats.count == 0

    run(tmp_path, body)


class _CountingInserts:
    """Stands for a store's SQLite connection and counts the bundle rows inserted."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.rows = 0

    def executemany(self, sql: str, rows: Any) -> Any:
        from proxima.runtime import store as store_module

        rows = list(rows)
        if sql == store_module._INSERT:
            self.rows += len(rows)
        return self.conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_a_waiting_recv_takes_bundles_before_the_commit_that_would_store_them(tmp_path: Path) -> None:
    """Bundles arriving for a recv that waits are written to it just before the ground's group
    commit and forgotten by that commit: no row is inserted for them. They come in order,
    each once, a payload too large for memory among them (streamed by the ordinary path), and
    their identities are remembered: a copy arriving later, even after a restart, is a
    duplicate."""
    from proxima.runtime.node import STREAM_THRESHOLD

    sizes = [10, 40_000, 1000, STREAM_THRESHOLD + 10, 20, 50_000]

    async def body(p: Pair) -> None:
        store = p.ground.store
        assert store is not None
        counting = _CountingInserts(store._conn)
        store._conn = counting
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            waiting = asyncio.create_task(ground.recv(POSTS, count=len(sizes) * 3, timeout=10))
            await until(lambda: POSTS in p.ground._consumers)
            sent = []
            for rnd in range(3):
                for i, size in enumerate(sizes):
                    sent.append(await iss.send(POSTS, bytes([rnd * 10 + i]) * size))
                    if size > STREAM_THRESHOLD:
                        # The recv streams it by the ordinary path, then waits again: what comes
                        # next must find it waiting (else it is stored, as for a slow reader).
                        await until(
                            lambda: p.ground.agent.counters.delivered >= len(sent)
                            and p.ground.pending_deliveries(POSTS) == 0
                            and POSTS in p.ground._consumers
                        )
            got = await waiting
        assert [(b.creation_time, b.sequence) for b in got] == [(s.creation_time, s.sequence) for s in sent]
        expected = [bytes([r * 10 + i]) * n for r in range(3) for i, n in enumerate(sizes)]
        assert [b.payload for b in got] == expected
        assert counting.rows <= 3  # at most the streamed ones, which go through the store
        assert p.ground.pending_deliveries(POSTS) == 0 and store.stats().count == 0
        store._conn = counting.conn
        identities = [(EID.parse(b.source), b.creation_time, b.sequence, None, None) for b in got]
        assert all(store.is_known(i) for i in identities)
        await p.ground.stop()
        p.ground.open()  # the commit made them durable: known after a restart too
        restarted = p.ground.store
        assert restarted is not None and all(restarted.is_known(i) for i in identities)

    run(tmp_path, body)


def test_a_waiting_recv_stops_at_its_count_and_leaves_the_rest_queued(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            waiting = asyncio.create_task(ground.recv(POSTS, count=5, timeout=10))
            await until(lambda: POSTS in p.ground._consumers)
            await iss.send_many([(POSTS, f"post {i}".encode()) for i in range(8)])
            got = await waiting
            assert [b.payload for b in got] == [f"post {i}".encode() for i in range(5)]
            await until(lambda: p.ground.pending_deliveries(POSTS) == 3)
            assert POSTS not in p.ground._consumers
            rest = await ground.recv(POSTS, count=0, timeout=0.3)
            assert [b.payload for b in rest] == [f"post {i}".encode() for i in range(5, 8)]

    run(tmp_path, body)


def test_a_client_slow_to_read_gets_its_bundles_through_the_ordinary_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the client's transport holds more than PUSH_BUFFER bytes, bundles wait for it to
    read (here always): all the same, each arrives once and in order."""
    from proxima.runtime import appif

    monkeypatch.setattr(appif, "PUSH_BUFFER", -1)

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            waiting = asyncio.create_task(ground.recv(POSTS, count=40, timeout=10))
            await until(lambda: POSTS in p.ground._consumers)
            for start in range(0, 40, 10):
                await iss.send_many([(POSTS, f"post {i}".encode()) for i in range(start, start + 10)])
            got = await waiting
            assert [b.payload for b in got] == [f"post {i}".encode() for i in range(40)]
            assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recvs_of_random_counts_over_both_paths_get_every_bundle_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Bundles of mixed sizes (one too large for memory now and then) sent in bursts while
    recvs of random counts read them, with a transport limit low enough that the ordinary
    path and the one before the commit take turns: together the recvs get every bundle once,
    in the order sent."""
    import random

    from proxima.runtime import appif
    from proxima.runtime.node import STREAM_THRESHOLD

    monkeypatch.setattr(appif, "PUSH_BUFFER", 64 * 1024)
    rng = random.Random(seed)
    sizes = [rng.choice([5, 900, 40_000, 70_000]) for _ in range(120)]
    sizes[rng.randrange(len(sizes))] = STREAM_THRESHOLD + 1

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            payloads = [i.to_bytes(4, "big") * (n // 4 + 1) for i, n in enumerate(sizes)]

            async def send() -> None:
                at = 0
                while at < len(payloads):
                    burst = rng.randint(1, 12)
                    # One class for all: the ISS sends small bundles before bulk ones otherwise.
                    await iss.send_many([(POSTS, x) for x in payloads[at : at + burst]], klass="bulk")
                    at += burst
                    await asyncio.sleep(rng.choice([0, 0, 0.002]))

            async def receive() -> list[bytes]:
                got: list[bytes] = []
                while len(got) < len(payloads):
                    count = min(rng.randint(1, 30), len(payloads) - len(got))
                    got += [b.payload for b in await ground.recv(POSTS, count=count, timeout=10)]
                return got

            _, got = await asyncio.gather(send(), receive())
            assert len(got) == len(payloads)
            order = [int.from_bytes(g[:4], "big") for g in got]
            assert order == list(range(len(payloads))), order  # in order, each once
            assert got == payloads
            assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


def test_ping_between_two_nodes(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        assert p.ground_app.echo_endpoint == EID.parse("ipn:3.2047")
        async with await p.client(p.iss_app) as iss:
            seen: list[Any] = []
            result = await iss.ping("ipn:3.0", count=3, size=100, timeout=5, interval=0, on_reply=seen.append)
            assert isinstance(result, PingResult)
            assert (result.to, result.sent, result.received, result.loss) == ("ipn:3.2047", 3, 3, 0.0)
            assert [r.seq for r in seen] == [0, 1, 2]
            assert all(r.rtt_ms is not None and r.rtt_ms >= 0 and r.size == 100 for r in seen)
            assert seen[0].source == "ipn:3.2047"
            stats = result.stats()
            assert stats["min_ms"] is not None and stats["max_ms"] is not None
            assert stats["min_ms"] <= (stats["p50_ms"] or 0) <= stats["max_ms"]
        # Nothing is left behind: requests and replies were all acknowledged.
        await until(
            lambda: p.iss.status()["stored"]["bundles"] == 0 and p.ground.status()["stored"]["bundles"] == 0
        )

    run(tmp_path, body)


def test_ping_without_a_path_times_out(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.iss_app) as iss:
            result = await iss.ping("ipn:3.0", count=2, timeout=0.1, interval=0)
            assert (result.sent, result.received, result.rtts_ms) == (2, 0, [None, None])
            assert result.stats()["avg_ms"] is None

    run(tmp_path, body, joined=False)


def test_a_send_to_the_own_echo_endpoint_answers_its_own_identity(tmp_path: Path) -> None:
    """The echo answers in the same turn as the send: the identity the send reports is still
    the request's, not that of the reply made meanwhile."""

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground:
            for sent in [
                await ground.send("ipn:3.2047", b"echo me"),
                *(await ground.send_many([("ipn:3.2047", b"echo me")])),
            ]:
                reply = await p.ground.take(GROUND, timeout=5)  # the echo comes back to ipn:3.0
                assert reply is not None and reply.bundle.payload == b"echo me"
                r = reply.bundle.primary
                assert str(r.source) == "ipn:3.2047"
                assert (sent.creation_time, sent.sequence) != (r.creation_time, r.sequence)
                assert (sent.creation_time, sent.sequence) < (r.creation_time, r.sequence)
                await p.ground.ack(GROUND, reply.store_id)

    run(tmp_path, body)


def test_a_node_pings_itself_and_dtn_nodes_have_an_echo_endpoint(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground:
            result = await ground.ping("ipn:3.0", count=1, timeout=5)
            assert result.received == 1

    assert echo_endpoint(EID.parse("dtn://relay/anything")) == EID.parse("dtn://relay/echo")

    run(tmp_path, body)


def test_status(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.iss_app) as iss:
            status = await iss.status()
            assert status["node_id"] == "ipn:1.0"
            assert status["peers_up"] == ["ipn:3.0"]
            assert status["links_up"] == {"mem": 1}
            assert status["app"]["port"] == p.iss_app.address[1]
            assert status["app"]["clients"] == 1
            assert status["app"]["echo_endpoint"] == "ipn:1.2047"
            assert set(status["counters"]) >= {"originated", "delivered"}

    run(tmp_path, body)


def test_node_refusals_are_errors_with_codes(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.iss_app) as iss:
            with pytest.raises(NodeRequestError, match="malformed ipn endpoint ID") as info:
                await iss.send("ipn:nope", "x")
            assert info.value.code == "bad_request"
            with pytest.raises(NodeRequestError, match="not an endpoint of this node") as info:
                await iss.send(POSTS, "x", source="ipn:9.1")
            with pytest.raises(NodeRequestError, match="fragment") as info:
                await iss.send(POSTS, "x", flags=1)
            with pytest.raises(NodeRequestError, match="cannot register dtn:none") as info:
                await iss.register("dtn:none")
            assert info.value.code == "refused"
            with pytest.raises(NodeRequestError, match=r"ipn:3\.7 is not an endpoint of this node") as info:
                await iss.recv(POSTS, timeout=0)
            assert info.value.code == "refused"
            assert (await iss.status())["node_id"] == "ipn:1.0"  # the connection still serves

    run(tmp_path, body)


# -- the protocol, raw ---------------------------------------------------------------------------


def test_malformed_lines_and_unknown_ops_get_errors_and_the_server_keeps_serving(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        raw = await Raw.open(p.iss_app)
        other = await Raw.open(p.iss_app)
        try:
            await raw.line(b"{not json\n")
            a = await raw.answer()
            assert (a["id"], a["code"]) == (None, "bad_json") and "\n" not in a["error"]
            await raw.line(b"\xff\xfe\n")
            assert (await raw.answer())["code"] == "bad_json"
            await raw.line(b"[1, 2]\n")
            assert (await raw.answer())["code"] == "bad_request"
            await raw.request(id="a", op="teleport")
            a = await raw.answer()
            assert (a["id"], a["code"]) == ("a", "unknown_op") and "send" in a["error"]
            await raw.request(id=7)
            assert (await raw.answer())["code"] == "unknown_op"
            await raw.request(id=8, op="send", to=str(POSTS), payload="***")
            a = await raw.answer()
            assert (a["id"], a["code"]) == (8, "bad_request") and "base64" in a["error"]
            await raw.request(id=9, op="recv", endpoint="ipn:1.7", count=True)
            assert (await raw.answer())["code"] == "bad_request"
            await raw.line(b"[" * 100_000 + b"\n")
            assert (await raw.answer())["code"] == "bad_json"
            await raw.line(b'{"id": "\\ud800", "op": "nope"}\n')  # a lone surrogate, echoed escaped
            a = await raw.answer()
            assert (a["id"], a["code"]) == ("\ud800", "unknown_op")
            await raw.line(b"\n")  # blank lines are ignored
            await raw.request(id=10, op="send", to=str(POSTS), payload=base64.b64encode(b"ok").decode())
            a = await raw.answer()
            assert a["id"] == 10 and a["ok"] is True and a["source"] == "ipn:1.0"
            await other.request(id=1, op="status")
            assert (await other.answer())["status"]["node_id"] == "ipn:1.0"
        finally:
            await raw.close()
            await other.close()

    run(tmp_path, body)


def test_concurrent_requests_and_cancel(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            await raw.request(id=1, op="recv", endpoint=str(POSTS), timeout_s=30)
            await raw.request(id=1, op="status")
            assert (await raw.answer())["code"] == "bad_request"  # id 1 is still running
            await raw.request(id=2, op="status")
            assert (await raw.answer())["id"] == 2  # answered while recv waits
            await raw.request(id=3, op="cancel", target=1)
            answers: dict[Any, dict[str, Any]] = {}
            for _ in range(2):
                a = await raw.answer()
                answers[a["id"]] = a
            assert answers[3] == {"id": 3, "ok": True, "cancelled": True}
            assert answers[1]["code"] == "cancelled"
        finally:
            await raw.close()

    run(tmp_path, body)


def test_too_long_line_closes_only_that_client(tmp_path: Path) -> None:
    async def main() -> None:
        node = make(tmp_path, ISS)
        app = AppInterface(node, "127.0.0.1", 0, max_line=1024)
        await app.start()
        try:
            raw = await Raw.open(app)
            await raw.line(b'{"id": 1, "op": "send", "payload": "' + b"A" * 4096 + b'"}\n')
            a = await raw.answer()
            assert a["code"] == "too_long"
            assert await asyncio.wait_for(raw.reader.read(), 5) == b""  # closed
            await raw.close()
            async with await NodeClient.connect(*app.address) as c:
                assert (await c.status())["node_id"] == "ipn:1.0"
        finally:
            await app.stop()
            await node.stop()

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_a_bundle_too_large_for_a_line_stays_stored(tmp_path: Path) -> None:
    """A base64 recv cannot carry a payload longer than a line: it stays for a binary one."""

    async def main() -> None:
        node = make(tmp_path, GROUND, endpoints=(POSTS,))
        app = AppInterface(node, "127.0.0.1", 0, max_line=8192)
        await app.start()
        try:
            async with await NodeClient.connect(*app.address) as c:
                await c.send(POSTS, b"x" * 3500)  # attached: the line limit is the JSON's only
                raw = await Raw.open(app)
                await raw.request(id=1, op="recv", endpoint=str(POSTS), timeout_s=5)
                a = await raw.answer()
                assert a["code"] == "too_large" and "3500-byte payload" in a["error"]
                await raw.close()
                assert node.pending_deliveries(POSTS) == 1
                got = await c.recv(POSTS, timeout=5)
                assert [b.payload for b in got] == [b"x" * 3500]
            assert node.pending_deliveries(POSTS) == 0
        finally:
            await app.stop()
            await node.stop()

    asyncio.run(asyncio.wait_for(main(), LIMIT))


# -- binary attachments and batches --------------------------------------------------------------

EVERY_BYTE = bytes(range(256)) * 3 + b'\n\r\n{}"\\\n' + b"\x00" * 10


def test_binary_send_and_recv_round_trip_raw(tmp_path: Path) -> None:
    """``bin`` attachments both ways, newlines and every byte value included, on one raw
    connection interleaved with ordinary lines."""

    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            await raw.send_bin(EVERY_BYTE, id=1, op="send", to="ipn:3.7", bin=len(EVERY_BYTE))
            a = await raw.answer()
            assert a["id"] == 1 and a["ok"] is True and a["source"] == "ipn:3.0"
            await raw.send_bin(b"", id=2, op="send", to="ipn:3.7", bin=0)  # an empty payload
            assert (await raw.answer())["ok"] is True
            await raw.send_bin(b"\n", id=3, op="send", to="ipn:3.7", bin=1, lifetime_s=60)
            assert (await raw.answer())["ok"] is True
            await raw.request(id=4, op="recv", endpoint="ipn:3.7", count=3, timeout_s=5, binary=True)
            events = [await raw.answer() for _ in range(4)]
            assert [e.get("bin") for e in events[:3]] == [EVERY_BYTE, b"", b"\n"]
            assert all("payload" not in e and e["event"] == "bundle" for e in events[:3])
            assert events[0]["source"] == "ipn:3.0" and events[2]["lifetime_ms"] == 60_000
            assert events[3] == {"id": 4, "ok": True, "count": 3}
            await raw.request(id=5, op="status")  # the stream is still in step
            assert (await raw.answer())["status"]["node_id"] == "ipn:3.0"
        finally:
            await raw.close()

    run(tmp_path, body)


def test_batched_recv_raw(tmp_path: Path) -> None:
    """``batch``: bundles handed over together come as one ``bundles`` event, their payloads
    one attachment; without ``binary`` the request is refused."""

    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            await raw.request(id=1, op="recv", endpoint="ipn:3.7", batch=True)
            refused = await raw.answer()
            assert refused["code"] == "bad_request" and "'batch' needs 'binary'" in refused["error"]
            payloads = [EVERY_BYTE, b"", b"\n"]
            for i, data in enumerate(payloads):
                await raw.send_bin(data, id=10 + i, op="send", to="ipn:3.7", bin=len(data), lifetime_s=60)
                assert (await raw.answer())["ok"] is True
            await until(lambda: p.ground.pending_deliveries(POSTS) == 3)
            await raw.request(id=2, op="recv", endpoint="ipn:3.7", count=3, binary=True, batch=True)
            event, done = await raw.answer(), await raw.answer()
            assert event["event"] == "bundles" and event["endpoint"] == "ipn:3.7"
            assert event["bin"] == b"".join(payloads)
            assert [item[-1] for item in event["bundles"]] == [len(d) for d in payloads]
            source, destination, _, _, lifetime, flags, _ = event["bundles"][0]
            assert (source, destination, lifetime, flags) == ("ipn:3.0", "ipn:3.7", 60_000, 0)
            stamps = [(item[2], item[3]) for item in event["bundles"]]
            assert stamps == sorted(stamps) and len(set(stamps)) == 3  # in the order sent
            assert done == {"id": 2, "ok": True, "count": 3}
            assert p.ground.pending_deliveries(POSTS) == 0
        finally:
            await raw.close()

    run(tmp_path, body)


def test_a_malformed_bundles_event_is_a_protocol_error() -> None:
    good = {"endpoint": "ipn:3.7", "bundles": [["ipn:1.0", "ipn:3.7", 5, 0, 60, 0, 2]], "bin": b"ok"}
    (only,) = Received.many_from_message(good)
    assert (only.source, only.sequence, only.payload) == ("ipn:1.0", 0, b"ok")
    for bad in (
        {**good, "bin": b"o"},  # shorter than said
        {**good, "bin": b"okk"},  # longer
        {**good, "bundles": [["ipn:1.0", "ipn:3.7", 5, 0, 60, 0, -1]]},
        {**good, "bundles": [["ipn:1.0", 5]]},
        {**good, "bin": 2},
    ):
        with pytest.raises(NodeRequestError, match="malformed bundles event"):
            Received.many_from_message(bad)


def test_client_payloads_with_newlines_and_every_byte_value(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            payloads = [EVERY_BYTE, b"\n" * 1000, b"", bytearray(b"\xff\n\x00"), "texte\nà la ligne"]
            for payload in payloads:
                await iss.send(POSTS, payload)
            got = await ground.recv(POSTS, count=len(payloads), timeout=5)
            assert [b.payload for b in got] == [
                EVERY_BYTE,
                b"\n" * 1000,
                b"",
                b"\xff\n\x00",
                "texte\nà la ligne".encode(),
            ]

    run(tmp_path, body)


def test_send_many_of_500_mixed_sizes_arrives_once_in_order(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            sizes = [(i * 7919) % 5000 for i in range(500)]
            payloads = [
                i.to_bytes(2, "big") + bytes((i + k) % 256 for k in range(n)) for i, n in enumerate(sizes)
            ]
            items: list[Any] = [(POSTS, payload) for payload in payloads]
            items[10] = {"to": str(POSTS), "payload": payloads[10], "lifetime": 60}
            sent = await iss.send_many(items, lifetime=600)
            assert len(sent) == 500 and all(s.source == "ipn:1.0" for s in sent)
            keys = [(s.creation_time, s.sequence) for s in sent]
            assert keys == sorted(keys) and len(set(keys)) == 500
            got = await ground.recv(POSTS, count=500, timeout=10)
            assert [b.payload for b in got] == payloads
            assert [(b.creation_time, b.sequence) for b in got] == keys
            assert got[10].lifetime_ms == 60_000 and got[11].lifetime_ms == 600_000
            assert await ground.recv(POSTS, count=0, timeout=0.2) == []
            assert await iss.send_many([]) == []

    run(tmp_path, body)


def test_send_many_splits_long_lists_into_batches(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground:
            n = MAX_BATCH + 5
            sent = await ground.send_many([(POSTS, i.to_bytes(4, "big")) for i in range(n)])
            assert len(sent) == n
            got = await ground.recv(POSTS, count=n, timeout=10)
            assert [int.from_bytes(b.payload, "big") for b in got] == list(range(n))

    run(tmp_path, body)


def test_a_batch_with_one_bad_item_sends_nothing_and_names_it(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.iss_app) as iss:
            items: list[Any] = [(POSTS, b"a"), (POSTS, b"b"), ("ipn:nope", b"c"), (POSTS, b"d")]
            with pytest.raises(NodeRequestError, match=r"bundles\[2\]: to: malformed ipn") as info:
                await iss.send_many(items)
            assert info.value.code == "bad_request"
            with pytest.raises(NodeRequestError, match=r"bundles\[1\]: 'lifetime_s' must be more than 0"):
                await iss.send_many(
                    [{"to": POSTS, "payload": b"x"}, {"to": POSTS, "payload": b"y", "lifetime": 0}]
                )
            with pytest.raises(LocalError, match="item 1 must have 'to' and 'payload'"):
                await iss.send_many([(POSTS, b"x"), {"to": POSTS, "data": b"y"}])
            assert p.iss.status()["stored"]["bundles"] == 0  # nothing was sent
            assert p.iss.status()["counters"].get("originated", 0) == 0
        raw = await Raw.open(p.iss_app)
        try:
            await raw.send_bin(
                [b"12", b"345"],
                id=1,
                op="send_many",
                bundles=[{"to": "ipn:3.7", "bin": 2}, {"to": "ipn:3.7", "bin": 3, "flags": 1}],
            )
            a = await raw.answer()
            assert a["id"] == 1 and a["code"] == "bad_request" and "bundles[1]: 'flags'" in a["error"]
            await raw.send_bin(b"", id=2, op="send_many", bundles=[{"to": "ipn:3.7"}, 5])
            a = await raw.answer()
            assert "bundles[0]: the field 'payload' is missing" in a["error"]
            await raw.request(id=3, op="send_many", bundles=[{"to": "ipn:3.7", "payload": "eA=="}, 5])
            assert "bundles[1] is not an object" in (await raw.answer())["error"]
            await raw.request(
                id=4, op="send_many", bundles=[{"to": "ipn:3.7", "payload": "eA=="}] * (MAX_BATCH + 1)
            )
            assert f"more than {MAX_BATCH} bundles" in (await raw.answer())["error"]
            await raw.request(id=5, op="send_many", bundles={})
            assert (await raw.answer())["code"] == "bad_request"
            assert p.iss.status()["stored"]["bundles"] == 0
            await raw.send_bin(
                [b"12", b"345"],
                id=6,
                op="send_many",
                bundles=[
                    {"to": "ipn:3.7", "bin": 2},
                    {"to": "ipn:3.7", "payload": "eA=="},
                    {"to": "ipn:3.8", "bin": 3},
                ],
            )
            a = await raw.answer()
            assert a["ok"] is True and [s["source"] for s in a["sent"]] == ["ipn:1.0"] * 3
        finally:
            await raw.close()

    run(tmp_path, body)


def test_bin_and_payload_together_are_refused_and_the_stream_stays_in_step(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            # The attachment holds what looks like a request: it must be skipped, not run.
            trap = b'{"id": 99, "op": "status"}\n'
            await raw.send_bin(trap, id=1, op="send", to="ipn:3.7", payload="eA==", bin=len(trap))
            a = await raw.answer()
            assert (a["id"], a["code"]) == (1, "bad_request") and "not both" in a["error"]
            await raw.send_bin(b"xyz", id=2, op="teleport", bin=3)  # unknown op: attachment skipped too
            assert (await raw.answer())["code"] == "unknown_op"
            await raw.send_bin(b"ok", id=3, op="send", to="ipn:3.7", bin=2)
            a = await raw.answer()
            assert a["id"] == 3 and a["ok"] is True
            await raw.request(id=4, op="recv", endpoint="ipn:3.7", count=0, timeout_s=0.2, binary=True)
            assert (await raw.answer())["bin"] == b"ok"  # only the good send went out
            assert await raw.answer() == {"id": 4, "ok": True, "count": 1}
        finally:
            await raw.close()

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("bin_value", "code"),
    [(-1, "bad_request"), ("3", "bad_request"), (True, "bad_request"), (MAX_ATTACHMENT + 1, "too_long")],
)
def test_an_unusable_bin_closes_only_that_connection(tmp_path: Path, bin_value: Any, code: str) -> None:
    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            await raw.request(id=1, op="send", to="ipn:3.7", bin=bin_value)
            a = await raw.answer()
            assert (a["id"], a["code"]) == (1, code) and "closing the connection" in a["error"]
            assert await asyncio.wait_for(raw.reader.read(), 5) == b""
        finally:
            await raw.close()
        async with await p.client(p.ground_app) as c:
            assert (await c.status())["node_id"] == "ipn:3.0"

    run(tmp_path, body)


def test_a_client_gone_inside_an_attachment_disturbs_no_other(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as other:
            await other.register(POSTS)
            raw = await Raw.open(p.ground_app)
            await raw.line(b'{"id": 1, "op": "send", "to": "ipn:3.7", "bin": 1000}\n' + b"x" * 400)
            await until(lambda: p.ground_app.connections == 2)
            sent = asyncio.create_task(other.send(POSTS, b"meanwhile"))
            await raw.close()
            await until(lambda: p.ground_app.connections == 1)
            await sent
            got = await other.recv(POSTS, count=0, timeout=0.3)
            assert [b.payload for b in got] == [b"meanwhile"]  # the half bundle was never sent
            assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


def test_old_base64_clients_still_work(tmp_path: Path) -> None:
    """A client of the JSON-only protocol: base64 payloads in, base64 events out."""

    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            await raw.line(
                b'{"id": "s", "op": "send", "to": "ipn:3.7", "payload": "'
                + base64.b64encode(EVERY_BYTE)
                + b'"}\n'
            )
            assert (await raw.answer())["ok"] is True
            await raw.request(id="r", op="recv", endpoint="ipn:3.7", count=1, timeout_s=5)
            event = await raw.answer()
            assert "bin" not in event and base64.b64decode(event["payload"], validate=True) == EVERY_BYTE
            assert list(event) == [
                "id",
                "event",
                "endpoint",
                "source",
                "destination",
                "creation_time",
                "sequence",
                "lifetime_ms",
                "flags",
                "payload",
            ]
            assert await raw.answer() == {"id": "r", "ok": True, "count": 1}
        finally:
            await raw.close()

    run(tmp_path, body)


def test_answers_of_one_turn_go_out_in_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends pipelined on one connection are answered together, not one write each."""
    writes: list[bytes] = []
    original = asyncio.StreamWriter.write

    def counting(self: asyncio.StreamWriter, data: bytes | bytearray | memoryview) -> None:
        if b'"sequence"' in bytes(data):
            writes.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", counting)

    async def body(p: Pair) -> None:
        raw = await Raw.open(p.ground_app)
        try:
            lines = b"".join(
                json.dumps({"id": i, "op": "send", "to": "ipn:3.9", "bin": 1}).encode() + b"\n!"
                for i in range(50)
            )
            await raw.line(lines)
            answers = [await raw.answer() for _ in range(50)]
            assert [a["id"] for a in answers] == list(range(50))
            keys = [(a["creation_time"], a["sequence"]) for a in answers]
            assert keys == sorted(keys) and len(set(keys)) == 50
            assert 1 <= len(writes) <= 3  # one per commit: 50 answers, not 50 writes
        finally:
            await raw.close()

    run(tmp_path, body)


def test_large_payloads_round_trip_as_attachments(tmp_path: Path) -> None:
    """Multi-MB payloads, over the link and locally (those the store keeps in a file are
    streamed from it)."""

    async def body(p: Pair) -> None:
        big = bytes(range(256)) * (12 * 1024 * 1024 // 256) + b"\n end"
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            await asyncio.gather(iss.send(POSTS, big), iss.send(POSTS, b"small"), ground.send(POSTS, big))
            got = await ground.recv(POSTS, count=3, timeout=15)
            assert sorted(len(b.payload) for b in got) == [5, len(big), len(big)]
            assert all(b.payload in (big, b"small") for b in got)
            assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


def test_any_payloads_round_trip_through_send_many_and_binary_recv(tmp_path: Path) -> None:
    with Background(tmp_path) as bg:
        assert bg.pair is not None
        p = bg.pair
        rounds = iter(range(1_000_000))

        async def check(payloads: list[bytes]) -> None:
            endpoint = f"ipn:3.{1000 + next(rounds)}"
            async with await p.client(p.iss_app) as iss, await p.client(p.ground_app) as ground:
                await ground.register(endpoint)
                sent = await iss.send_many([(endpoint, x) for x in payloads])
                assert len(sent) == len(payloads)
                got = await ground.recv(endpoint, count=len(payloads), timeout=5) if payloads else []
                assert [b.payload for b in got] == payloads
                assert await ground.recv(endpoint, count=0, timeout=0) == []

        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(st.binary(min_size=0, max_size=5000), max_size=30))
        def round_trip(payloads: list[bytes]) -> None:
            bg.call(check(payloads))

        round_trip()


def test_only_loopback(tmp_path: Path) -> None:
    node = Node(NodeConfig(node_id=ISS, store_path=tmp_path / "s"))
    with pytest.raises(LocalError, match="loopback only"):
        AppInterface(node, "0.0.0.0", 0)
    AppInterface(node, "::1", 0)
    AppInterface(node, "localhost", 0)


def test_client_errors(tmp_path: Path) -> None:
    port = free_port()

    async def main() -> None:
        with pytest.raises(NodeConnectionError, match=f"cannot reach the node at 127.0.0.1:{port}: "):
            await NodeClient.connect("127.0.0.1", port)

    asyncio.run(main())
    assert parse_address("127.0.0.1:4242") == ("127.0.0.1", 4242)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address("4300") == ("127.0.0.1", 4300)
    for bad in ("nohost", "h:0", "h:99999", "::1:80", ":80"):
        with pytest.raises(LocalError):
            parse_address(bad)


def test_connection_lost_fails_pending_requests(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        client = await p.client(p.ground_app)
        waiting = asyncio.create_task(client.recv(POSTS, timeout=30))
        await until(lambda: POSTS in p.ground.agent.endpoints)
        await p.ground_app.stop()
        with pytest.raises(NodeConnectionError, match="closed the connection"):
            await waiting
        with pytest.raises(NodeConnectionError):
            await client.status()
        await client.close()

    run(tmp_path, body)


# -- the command line ----------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Background:
    """Two joined nodes and their interfaces, served by an event loop in another thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.pair: Pair | None = None

    def call(self, coro: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(LIMIT)

    def __enter__(self) -> Background:
        self.thread.start()

        async def setup() -> Pair:
            p = Pair(self.tmp)
            await p.start()
            return p

        self.pair = self.call(setup())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pair is not None:
            self.call(self.pair.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LIMIT)
        self.loop.close()

    @property
    def iss(self) -> str:
        assert self.pair is not None
        return f"127.0.0.1:{self.pair.iss_app.address[1]}"

    @property
    def ground(self) -> str:
        assert self.pair is not None
        return f"127.0.0.1:{self.pair.ground_app.address[1]}"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Background]:
    with Background(tmp_path) as bg:
        yield bg


def cli(*args: str, stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_cli_send_and_recv(nodes: Background, tmp_path: Path) -> None:
    # Nothing yet (and recv registers the endpoint, so what is sent next waits for it).
    r = cli("recv", "--node", nodes.ground, "--endpoint", "ipn:3.7", "--timeout", "0.2")
    assert r.exit_code == 1
    assert r.stderr == "error: timed out after 0.2 s: received 0 of 1 bundle\n"
    r = cli("send", "--node", nodes.iss, "--to", "ipn:3.7", "--payload", "Bonjour", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"to", "source", "creation_time", "sequence", "bytes"}
    assert (doc["to"], doc["source"], doc["bytes"]) == ("ipn:3.7", "ipn:1.0", 7)
    r = cli("recv", "--node", nodes.ground, "--endpoint", "ipn:3.7", "--timeout", "5")
    assert (r.exit_code, r.stdout) == (0, "Bonjour\n")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)))
    r = cli("send", "--node", nodes.iss, "--to", "ipn:3.7", "--file", str(photo), "--lifetime", "60")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("sent 256 bytes to ipn:3.7 (bundle ipn:1.0 ")
    r = cli("send", "--node", nodes.iss, "--to", "ipn:3.7", "--payload", "deuxième")
    assert r.exit_code == 0, r.output
    out = tmp_path / "inbox"
    r = cli("recv", "--node", nodes.ground, "--endpoint", "ipn:3.7", "--out-dir", str(out), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["source"], doc["bytes"], doc["lifetime_ms"]) == ("ipn:1.0", 256, 60_000)
    assert Path(doc["file"]).read_bytes() == bytes(range(256))
    assert Path(doc["file"]).parent == out
    r = cli("recv", "--node", nodes.ground, "--endpoint", "ipn:3.7", "--count", "0", "--timeout", "0.3")
    assert r.exit_code == 0, r.output
    assert r.stdout == "deuxième\n"
    r = cli("send", "--node", nodes.iss, "--to", "ipn:3.7", "--payload", "trois", "--json")
    assert r.exit_code == 0, r.output
    r = cli("recv", "--node", nodes.ground, "--endpoint", "ipn:3.7", "--json", "--timeout", "5")
    doc = json.loads(r.stdout)
    assert (doc["text"], base64.b64decode(doc["payload"])) == ("trois", b"trois")


def test_cli_ping(nodes: Background) -> None:
    r = cli("ping", "ipn:3.0", "--node", nodes.iss, "--count", "3", "--interval", "0", "--size", "32")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "PING ipn:3.0 (ipn:3.2047): 32-byte bundles"
    for seq, line in enumerate(lines[1:4]):
        assert re.fullmatch(rf"32 bytes from ipn:3\.2047: seq={seq} time=\d+\.\d{{3}} ms", line), line
    assert lines[4] == "--- ipn:3.0 ping statistics ---"
    assert lines[5] == "3 bundles sent, 3 received, 0% loss"
    assert re.fullmatch(r"rtt min/avg/max/p50/p99 = (\d+\.\d{3}/){4}\d+\.\d{3} ms", lines[6]), lines[6]
    r = cli("ping", "ipn:3.5", "--node", nodes.iss, "--count", "2", "--interval", "0", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["to"], doc["echo"], doc["sent"], doc["received"], doc["loss_percent"]) == (
        "ipn:3.5",
        "ipn:3.2047",
        2,
        2,
        0,
    )
    assert len(doc["rtts_ms"]) == 2 and set(doc) >= {"min_ms", "avg_ms", "max_ms", "p50_ms", "p99_ms"}


def test_cli_ping_without_reply_exits_1(tmp_path: Path) -> None:
    with Background(tmp_path) as bg:
        r = cli("ping", "ipn:9.0", "--node", bg.iss, "--count", "1", "--timeout", "0.1")
    assert r.exit_code == 1
    assert "no reply for seq=0 within 0.1 s" in r.stdout
    assert "1 bundle sent, 0 received, 100% loss" in r.stdout
    assert r.stderr == "error: no reply from ipn:9.0\n"


def test_cli_node_status(nodes: Background) -> None:
    r = cli("node", "status", "--node", nodes.iss, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["node_id"] == "ipn:1.0" and doc["peers_up"] == ["ipn:3.0"]
    ground = json.loads(cli("node", "status", "--node", nodes.ground, "--json").stdout)
    assert {"received", "forwarded", "delivered", "deleted", "duplicates"} <= set(ground["counters"])
    assert sum(ground["links_up"].values()) >= 1 and ground["peers_up"] == ["ipn:1.0"]
    r = cli("node", "status", "--node", nodes.ground)  # nothing moves in between: the same figures
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("node ipn:3.0, up ")
    assert "peers up: ipn:1.0" in r.stdout and "application interface: 127.0.0.1:" in r.stdout
    n = ground["stored"]["bundles"]
    assert f"  stored: {n} bundle{'' if n == 1 else 's'}, {ground['stored']['bytes']} bytes" in r.stdout
    counters = ", ".join(f"{k} {v}" for k, v in sorted(ground["counters"].items()))
    assert f"  counters: {counters}" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("node", "status"),
        ("send", "--to", "ipn:3.7", "--payload", "x"),
        ("recv", "--endpoint", "ipn:3.7"),
        ("ping", "ipn:3.0"),
    ],
)
def test_cli_unreachable_node_is_a_one_line_error(args: tuple[str, ...]) -> None:
    port = free_port()
    r = cli(*args, "--node", f"127.0.0.1:{port}")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: cannot reach the node at 127.0.0.1:{port}: ")
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("send", "--to", "ipn:3.7"), 2, "give exactly one of --payload and --file"),
        (("send", "--to", "ipn:3.7", "--payload", "x", "--file", "f"), 2, "give exactly one"),
        (("send", "--to", "nope", "--payload", "x"), 1, "--to: endpoint ID 'nope' has no scheme"),
        (("send", "--node", "nohost", "--to", "ipn:3.7", "--payload", "x"), 2, "is not HOST:PORT"),
        (("recv", "--endpoint", "ipn:x"), 1, "--endpoint: malformed ipn endpoint ID"),
        (("ping", "dtn:none"), 1, "EID: dtn:none names no node to ping"),
        (("ping", "ipn:3.0", "--size", "4"), 2, "--size"),
        (("node", "run", "--config", "/nonexistent/n.toml"), 1, "cannot read the configuration"),
    ],
)
def test_cli_usage_errors(args: tuple[str, ...], code: int, message: str) -> None:
    r = cli(*args)
    assert r.exit_code == code, r.output
    assert message in r.stderr


def test_cli_help() -> None:
    for args in (["node", "run"], ["node", "status"], ["send"], ["recv"], ["ping"]):
        r = cli(*args, "--help")
        assert r.exit_code == 0 and ("--node" in r.stdout or "--config" in r.stdout)


class NodeProcess:
    """``proxima node run`` in a child process; ``port`` is its application interface."""

    def __init__(self, config: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proxima", "node", "run", "--config", str(config), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline()
        m = re.match(r"node \S+ running: application interface on 127\.0\.0\.1:(\d+)", self.line)
        if m is None:
            self.kill()
            pytest.fail(f"node run printed {self.line!r}")
        self.node = f"127.0.0.1:{m.group(1)}"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=LIMIT)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_node_run_serves_until_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    config = tmp_path / "n.toml"
    config.write_text('node_id = "ipn:5.0"\n[app]\nport = 0\n[storage]\npath = "store"\n')
    node = NodeProcess(config)
    try:
        assert node.line.endswith(f"; store {tmp_path / 'store'}\n")
        r = cli("node", "status", "--node", node.node, "--json")
        status = json.loads(r.stdout)
        assert status["node_id"] == "ipn:5.0"
        # The node process tunes its collector (tune_gc) and says which cores it runs.
        assert status["runtime"] == {"cores": speedups.summary(), "gc_thresholds": list(GC_THRESHOLDS)}
        r = cli("node", "status", "--node", node.node)
        assert f"protocol cores: {speedups.summary()}; collector thresholds 50000/20/100" in r.stdout
        r = cli("send", "--node", node.node, "--to", "ipn:5.0", "--payload", "self")
        assert r.exit_code == 0, r.output
        assert node.stop(sig) == (0, "node ipn:5.0 stopped\n", "")
    finally:
        node.kill()


@pytest.mark.parametrize("level", ["debug", "warning"])
def test_node_run_writes_log_messages_from_the_level_asked(tmp_path: Path, level: str) -> None:
    """A datagram that is not a bundle is logged at debug level: with --log-level debug the
    line reaches stderr, with the default (warning) nothing does."""
    port = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "n.toml"
    config.write_text(
        f'node_id = "ipn:5.0"\n[app]\nport = 0\n[storage]\npath = "store"\n'
        f'[[listen]]\ncla = "udp"\nhost = "127.0.0.1"\nport = {port}\n'
    )
    node = NodeProcess(config, "--log-level", level)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"not a bundle", ("127.0.0.1", port))
        cli("node", "status", "--node", node.node)  # a round trip: the datagram was read by then
        code, out, err = node.stop()
        assert (code, out) == (0, "node ipn:5.0 stopped\n")
        if level == "debug":
            assert "DEBUG proxima.runtime.cla_drivers: UDP: dropping a datagram" in err, err
        else:
            assert err == ""
    finally:
        node.kill()


def test_two_nodes_over_tcpcl(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(2)]
    for i, (me, other) in enumerate([(1, 2), (2, 1)]):
        (tmp_path / f"{me}.toml").write_text(
            f'node_id = "ipn:{me}.0"\n[app]\nport = 0\n'
            f'[[listen]]\ncla = "tcpcl"\nport = {ports[i]}\n'
            f'[[neighbour]]\nnode_id = "ipn:{other}.0"\ncla = "tcpcl"\nport = {ports[1 - i]}\n'
        )
    one, two = NodeProcess(tmp_path / "1.toml"), NodeProcess(tmp_path / "2.toml")
    try:
        assert f"tcpcl on 127.0.0.1:{ports[0]}" in one.line
        r = cli("ping", "ipn:2.0", "--node", one.node, "--count", "2", "--interval", "0", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["received"] == 2
        r = cli("recv", "--node", two.node, "--endpoint", "ipn:2.5", "--timeout", "0")  # registers it
        assert r.exit_code == 1
        r = cli("send", "--node", one.node, "--to", "ipn:2.5", "--payload", "over TCPCL")
        assert r.exit_code == 0, r.output
        r = cli("recv", "--node", two.node, "--endpoint", "ipn:2.5", "--timeout", "10")
        assert (r.exit_code, r.stdout) == (0, "over TCPCL\n")
        assert one.stop()[0] == 0
        assert two.stop()[0] == 0
    finally:
        one.kill()
        two.kill()


def test_files_of_any_size_go_in_and_out_without_passing_through_the_connection(tmp_path: Path) -> None:
    """send with "file" and recv with "save_dir": the node reads and writes the files itself,
    a large one streamed through its store (the bundle never whole in memory)."""
    from proxima.runtime.node import STREAM_THRESHOLD

    big = bytes(range(256)) * ((STREAM_THRESHOLD + 123_457) // 256)
    small = b"caption\n\x00\xff"
    (tmp_path / "video.bin").write_bytes(big)
    (tmp_path / "caption.txt").write_bytes(small)
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            sent = await iss.send_file(POSTS, tmp_path / "video.bin")
            await iss.send_file(POSTS, tmp_path / "caption.txt")
            got = await ground.recv(POSTS, count=2, timeout=15, save_dir=inbox)
            assert [b.payload for b in got] == [b"", b""]
            files = {Path(b.file).read_bytes() for b in got if b.file is not None}
            assert files == {big, small}
            assert got[0].creation_time == sent.creation_time and got[0].sequence == sent.sequence
            assert sorted(f.name for f in inbox.iterdir()) == sorted(Path(b.file).name for b in got if b.file)
            assert p.ground.pending_deliveries(POSTS) == 0
            # Bad requests: a relative path, a missing file, payload and file together.
            with pytest.raises(NodeRequestError, match="absolute path"):
                await iss.call("send", to=str(POSTS), file="relative.bin")
            with pytest.raises(NodeRequestError, match="cannot read the file"):
                await iss.send_file(POSTS, tmp_path / "missing.bin")
            with pytest.raises(NodeRequestError, match="one of 'payload', 'bin' or 'file'"):
                await iss.call("send", to=str(POSTS), file=str(tmp_path / "caption.txt"), payload="eA==")
            with pytest.raises(NodeRequestError, match="not a directory"):
                await ground.recv(POSTS, count=1, timeout=1, save_dir=tmp_path / "caption.txt")

    run(tmp_path, body)


def test_only_the_node_s_own_user_may_have_it_read_or_write_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node reads "file" and writes "save_dir" with its own rights: a client run by another
    user is refused them (the kernel's socket table says who runs it), and keeps the rest."""
    import os

    from proxima.runtime import appif

    (tmp_path / "secret.txt").write_bytes(b"not for you")
    monkeypatch.setattr(appif, "peer_uid", lambda local, peer: os.getuid() + 1)

    async def body(p: Pair) -> None:
        async with await p.client(p.ground_app) as ground, await p.client(p.iss_app) as iss:
            await ground.register(POSTS)
            with pytest.raises(NodeRequestError, match="not as the node's user") as info:
                await iss.send_file(POSTS, tmp_path / "secret.txt")
            assert info.value.code == "refused"
            items = [{"to": str(POSTS), "payload": "eA=="}, {"to": str(POSTS), "file": "/etc/hostname"}]
            with pytest.raises(NodeRequestError, match=r"bundles\[1\]: 'file': this client runs as user"):
                await iss.call("send_many", bundles=items)
            with pytest.raises(NodeRequestError, match="recv: 'save_dir': this client runs as user"):
                await ground.recv(POSTS, count=1, timeout=1, save_dir=tmp_path)
            await iss.send(POSTS, b"plain sends still go")
            (got,) = await ground.recv(POSTS, count=1, timeout=5)
            assert got.payload == b"plain sends still go"
            assert p.ground.pending_deliveries(POSTS) == 0

    run(tmp_path, body)


def test_the_peer_of_a_loopback_connection_is_found_in_the_kernel_s_socket_table(tmp_path: Path) -> None:
    """peer_uid() reads /proc/net/tcp and tcp6 (IPv4, IPv6 and v4-mapped addresses, words in
    host byte order); without the tables it says None."""
    import os

    from proxima.runtime.appif import peer_uid

    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp: not Linux")
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError:
            continue  # no IPv6 loopback here
        server.listen()
        client = socket.create_connection(server.getsockname()[:2])
        conn, _ = server.accept()
        try:
            assert peer_uid(conn.getsockname(), conn.getpeername()) == os.getuid()
            assert peer_uid(conn.getsockname(), ("127.0.0.2", 1)) is None  # no such socket
        finally:
            for sock in (client, conn, server):
                sock.close()
    table = tmp_path / "tcp"
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    table.write_text(
        header + "   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1234\n"
    )
    mapped = tmp_path / "tcp6"
    mapped.write_text(
        header
        + "   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D432 01 "
        "00000000:00000000 00:00000000 00000000  4321\n"
    )
    if sys.byteorder == "little":
        assert peer_uid(("127.0.0.1", 54321), ("127.0.0.1", 8080), (str(table),)) == 1234
        assert peer_uid(("127.0.0.1", 54322), ("127.0.0.1", 8080), (str(mapped),)) == 4321
    assert peer_uid(("127.0.0.1", 1), ("127.0.0.1", 2), (str(tmp_path / "missing"),)) is None


def test_a_payload_streamed_from_the_store_is_not_interleaved_with_other_answers(tmp_path: Path) -> None:
    """A large binary recv writes its attachment in pieces; answers to other requests on the
    same connection wait until it is whole."""
    from proxima.bpv7.bundle import Bundle, PrimaryBlock, encode_bundle, payload_block
    from proxima.bpv7.eid import DTN_NONE
    from proxima.runtime.node import STREAM_THRESHOLD, dtn_now_ms

    payload = bytes(range(256)) * (3 * STREAM_THRESHOLD // 256)

    async def main() -> None:
        node = make(tmp_path, GROUND, endpoints=(POSTS,))
        primary = PrimaryBlock(
            destination=POSTS,
            source=ISS,
            report_to=DTN_NONE,
            creation_time=dtn_now_ms(),
            sequence=1,
            lifetime=86_400_000,
            crc_type=2,
        )
        data = encode_bundle(Bundle(primary, (payload_block(payload, crc_type=2),)))
        incoming = node.open_incoming(None, len(data))
        incoming.write(data)
        await incoming.commit()
        app = AppInterface(node, "127.0.0.1", 0)
        await app.start()
        reader, writer = await asyncio.open_connection(*app.address)
        writer.write(b'{"id":1,"op":"recv","endpoint":"ipn:3.7","count":1,"timeout_s":5,"binary":true}\n')
        await writer.drain()
        await asyncio.sleep(0.05)  # the attachment is on its way; the client does not read yet
        for i in range(5):
            writer.write(
                json.dumps({"id": 100 + i, "op": "send", "to": "ipn:9.1", "payload": ""}).encode() + b"\n"
            )
            writer.write(json.dumps({"id": 200 + i, "op": "status"}).encode() + b"\n")
            await writer.drain()
            await asyncio.sleep(0.02)
        event = json.loads(await reader.readline())
        assert event["event"] == "bundle"
        assert await reader.readexactly(event["bin"]) == payload
        answers = [json.loads(await reader.readline()) for _ in range(11)]
        assert sorted(a["id"] for a in answers) == [1, *range(100, 105), *range(200, 205)]
        writer.close()
        await app.stop()
        await node.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
