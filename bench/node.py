"""Node throughput and latency: proxima nodes in a chain on loopback over TCPCLv4 (three, or two).

Run: ``.venv/bin/python bench/node.py [--quick] [--json] [--nodes 2|3] [--count N] [--batch N]
[--sizes 10K 60K 10M 1G] [--size-batch N] [--file-threshold 64M]``

The chain: ISS ``ipn:1.0`` -> relay ``ipn:2.0`` -> ground ``ipn:3.0`` (``--nodes 3``, the
default), or ISS ``ipn:1.0`` -> ground ``ipn:3.0`` directly (``--nodes 2``, the ISS dialling the
ground, as ION's two-node figures), each node its own process (``python -m proxima node run
--config FILE``, configuration generated in a temporary directory), TCPCLv4 between them,
persistence on (each node's SQLite store in that directory), application interfaces on free
loopback ports. Every figure is end to end: from the first ``send`` into the ISS node's
application interface to the last bundle read with ``recv`` from the ground node's.

Measured:

1. 1 KB bundles per second sustained over ``--count`` bundles (default 100,000; ``--quick``
   10,000), the sends pipelined over several connections (``--window`` bundles outstanding,
   default 1,024) in ``send_many`` batches of ``--batch`` bundles (default 256; 1: one ``send``
   per bundle), and whether every bundle
   arrived exactly once (each payload carries its index);
2. MB/s and Gbit/s for bundles of 10 KB, 60 KB, 10 MB and 1 GB (sizes binary: 1 KB = 1,024
   payload bytes; rates decimal: 1 MB/s = 10^6 B/s), with the peak RSS of every node
   (``VmHWM``, reset before each size through ``/proc/PID/clear_refs``); the table shows the
   relay's (with two nodes, the ground's: there is no relay), and for 1 GB checks it against
   the < 200 MB target. Sizes below ``--file-threshold`` (default 64M) go as attachments, in
   ``send_many`` requests of ``--size-batch`` bundles (default 8; fewer when that would pass
   1 MiB per request, so one ``send`` per 10-MB bundle; 1: one ``send`` each), each payload
   checked on arrival. Sizes from it up go through files:
   one source file of that size is written in the temporary directory (1 MiB pieces of random
   bytes), sent ``count`` times with ``NodeClient.send_file`` (2 outstanding; the node reads
   the file itself), and received with ``recv(save_dir=...)`` (the node writes each payload to
   a file); after the timing every received file is compared with the source piece by piece
   and deleted, and exactly once is checked by (creation time, sequence number) of what
   ``send_file`` answered. ``count`` there is about ``--volume`` bytes, at least 2 bundles
   (``--quick``: 1), so 2 of 1 GB in a full run, 1 in a quick one. When the disk's free space
   is less than 3x the worst case needed (the source file, each bundle in every node's store
   at once and its received file), the size is reported "not measured: not enough disk". A
   payload the application interface cannot carry is reported "not measured" with the reason;
3. ping round trips ISS -> ground echo -> ISS (``NodeClient.ping``, interval 0), p50 and p99,
   and with three nodes for reference ISS -> relay echo (two nodes, as in ION's figure).

Printed side by side with NASA ION 4.1.3's figures *quoted* from issue 3 (ION on the same kind
of machine, two nodes on loopback). With ``--nodes 2`` and ION installed (``--ion DIR``,
``PROXIMA_BENCH_ION`` or ``bpdriver`` on ``PATH``; ``--no-ion`` to skip), the same run then
measures two ION nodes with ION's own tools, after the proxima nodes have stopped, and prints a
second table of proxima/ION ratios: over STCP and over ION's TCPCL (version 3) with ION's
benchmark configuration (its store in shared memory), and over STCP with its store in a file and
transactions that roll back (nearest to the proxima stores; ``--ion-persistent-count`` 1-KB
bundles, default 10,000, as it runs at about a hundred a second). Each size is sent the same
number of times as proxima's; ping compares both at one round trip every 10 ms, as bping cannot
go back to back. See ``bench/ion.py``.
Targets: >= 10,000 1-KB bundles/s sustained over 100,000; >= 1.5 Gbit/s for bundles of 60 KB
and more; relay peak memory < 200 MB while relaying a 1 GB bundle; ping p50 < 0.5 ms.
``--json`` prints every record (each size says ``"via": "files"`` or ``"attachments"``).

All node processes run in their own process groups (and die with this process through
``PR_SET_PDEATHSIG``); they are stopped and the temporary directory removed on exit, Ctrl-C or
failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.metadata
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import benchinfo
import ion as ion_peer
from proxima.client import MAX_ATTACHMENT, NodeClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from proxima.client import Received

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
HEADER = 16  # payload prefix: 8-byte run tag, 8-byte index
APP_PAYLOAD_LIMIT = MAX_ATTACHMENT  # what NodeClient.send accepts (a binary attachment)
STALL_S = 60.0  # a measurement is abandoned when nothing arrives for this long
STALL_FILE_RATE = 4e6  # ... or, through files, for the time one bundle takes at 4 MB/s if longer
FILE_PIECE = MIB  # the source file is written, and received files checked, in pieces this long
START_TIMEOUT_S = 30.0

TARGET_RATE_1K = 10_000
TARGET_RATE_COUNT = 100_000
TARGET_GBITS = 1.5
TARGET_GBITS_MIN_SIZE = 60 * KIB
TARGET_PEAK_MB_1G = 200
TARGET_PING_P50_MS = 0.5
PING_SPACING_S = 0.01  # for the side-by-side with ION's bping, which sends one every -i seconds
ION_TIMEOUT_S = 600.0

# NASA ION 4.1.3, two nodes on loopback, same kind of machine: quoted from issue 3, not measured.
ION: dict[str, Any] = {
    "rate_1k_sustained": 4_500,  # TCP CL, sustained over 100,000 bundles
    "rate_1k_short": (6_700, 8_200),  # TCP CL, short runs
    "rate_1k_stcp": (3_800, 8_400),
    "rate_60k": 2_400,  # 60 KB bundles/s
    "gbits_60k": 1.17,
    "rtt_stcp_ms": 0.21,
    "rtt_tcpcl_ms": 70.0,  # no TCP_NODELAY
}

ISS, RELAY, GROUND = "iss", "relay", "ground"
NODE_IDS = {ISS: "ipn:1.0", RELAY: "ipn:2.0", GROUND: "ipn:3.0"}
LABELS = {ISS: "ISS", RELAY: "relay", GROUND: "ground"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The chain of node processes.


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def configs(app: dict[str, int], cl_relay: int, cl_ground: int, nodes: int = 3) -> dict[str, str]:
    """The TOML configurations (store paths relative to each file): three nodes ISS -> relay ->
    ground, or with ``nodes`` 2 ISS -> ground directly (the ISS dials the ground)."""
    if nodes == 2:
        return {
            ISS: f"""node_id = "ipn:1.0"
[storage]
path = "iss-store"
[app]
host = "127.0.0.1"
port = {app[ISS]}
[[neighbour]]
node_id = "ipn:3.0"
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_ground}
[[route]]
destination = "*"
via = "ipn:3.0"
""",
            GROUND: f"""node_id = "ipn:3.0"
[storage]
path = "ground-store"
[app]
host = "127.0.0.1"
port = {app[GROUND]}
[[listen]]
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_ground}
[[route]]
destination = "*"
via = "ipn:1.0"
""",
        }
    return {
        ISS: f"""node_id = "ipn:1.0"
[storage]
path = "iss-store"
[app]
host = "127.0.0.1"
port = {app[ISS]}
[[neighbour]]
node_id = "ipn:2.0"
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_relay}
[[route]]
destination = "*"
via = "ipn:2.0"
""",
        RELAY: f"""node_id = "ipn:2.0"
[storage]
path = "relay-store"
[app]
host = "127.0.0.1"
port = {app[RELAY]}
[[listen]]
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_relay}
[[neighbour]]
node_id = "ipn:3.0"
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_ground}
[[route]]
destination = "ipn:1.*"
via = "ipn:1.0"
""",
        GROUND: f"""node_id = "ipn:3.0"
[storage]
path = "ground-store"
[app]
host = "127.0.0.1"
port = {app[GROUND]}
[[listen]]
cla = "tcpcl"
host = "127.0.0.1"
port = {cl_ground}
[[route]]
destination = "*"
via = "ipn:2.0"
""",
    }


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the bench process dies, however it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Chain:
    """Three (or two) node processes; :meth:`stop` kills them all and removes the directory."""

    def __init__(self, nodes: int = 3) -> None:
        self.nodes = nodes
        self.names = [ISS, RELAY, GROUND] if nodes == 3 else [ISS, GROUND]
        # The node whose peak memory the table shows: the relay, or the ground without one.
        self.mem_node = RELAY if nodes == 3 else GROUND
        self.dir = Path(tempfile.mkdtemp(prefix="proxima-bench-node-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        ports = free_ports(5)
        self.app = {ISS: ports[0], RELAY: ports[1], GROUND: ports[2]}
        self.cl_relay, self.cl_ground = ports[3], ports[4]

    def describe(self) -> str:
        return " -> ".join(f"{LABELS[name]} {NODE_IDS[name]}" for name in self.names)

    def start(self) -> None:
        """Write the configurations, start ground, relay, then ISS; wait for each to be up."""
        for name, text in configs(self.app, self.cl_relay, self.cl_ground, self.nodes).items():
            (self.dir / f"{name}.toml").write_text(text, encoding="utf-8")
        for name in reversed(self.names):
            log = (self.dir / f"{name}.log").open("wb")
            try:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "proxima", "node", "run", "--config", f"{name}.toml"],
                    cwd=self.dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: killpg reaches all of it
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
                )
            finally:
                log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        for name, proc in self.procs.items():
            log_path = self.dir / f"{name}.log"
            while b" running: " not in log_path.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} node exited ({proc.returncode}): {self.log_tail(name)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} node did not start: {self.log_tail(name)}")
                time.sleep(0.02)

    def log_tail(self, name: str, lines: int = 8) -> str:
        try:
            text = (self.dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} node died ({proc.returncode}): {self.log_tail(name)}")

    def stop(self) -> None:
        """SIGTERM every node's process group, SIGKILL what is left after 5 s; remove the directory."""
        try:
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5.0
            for proc in self.procs.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the group: anything a node may have started
                proc.wait()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def wait_sessions(self) -> None:
        """Wait until ISS-relay and relay-ground (or ISS-ground) TCPCL sessions are up on both sides."""
        if self.nodes == 2:
            want = {ISS: {"ipn:3.0"}, GROUND: {"ipn:1.0"}}
        else:
            want = {ISS: {"ipn:2.0"}, RELAY: {"ipn:1.0", "ipn:3.0"}, GROUND: {"ipn:2.0"}}
        deadline = time.monotonic() + START_TIMEOUT_S
        for name, peers in want.items():
            async with await NodeClient.connect(port=self.app[name]) as c:
                while not peers <= set((await c.status()).get("peers_up", [])):
                    self.check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: TCPCL sessions to {sorted(peers)} not up")
                    await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Process probes: peak RSS and CPU time.


def proc_status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM (peak RSS) of ``pid`` to its current RSS; False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


class Probe:
    """Over one measurement: each node's peak RSS (VmHWM, and sampled VmRSS) and CPU use."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.pids = {name: chain.pid(name) for name in chain.names}
        self.sampled: dict[str, int] = {}
        self.hwm_reset = False
        self._task: asyncio.Task[None] | None = None
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0

    async def __aenter__(self) -> Probe:
        resets = [reset_hwm(pid) for pid in self.pids.values()]  # every one, no short cut
        self.hwm_reset = all(resets)
        self.sampled = {name: proc_status_kb(pid, "VmRSS") or 0 for name, pid in self.pids.items()}
        self._cpu0 = {name: proc_cpu_s(pid) for name, pid in self.pids.items()}
        self._cpu0["client"] = time.process_time()
        self._t0 = time.perf_counter()
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            for name, pid in self.pids.items():
                self.sampled[name] = max(self.sampled[name], proc_status_kb(pid, "VmRSS") or 0)

    async def __aexit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        cpu = {name: proc_cpu_s(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        cpu["client"] = time.process_time() - self._cpu0["client"]
        self.cpu_percent = {name: round(100 * s / wall, 1) if wall > 0 else 0.0 for name, s in cpu.items()}
        self.cpu_seconds = {name: round(s, 3) for name, s in cpu.items()}
        self.peak_mb: dict[str, float] = {}
        for name, pid in self.pids.items():
            hwm = proc_status_kb(pid, "VmHWM") if self.hwm_reset else None
            self.peak_mb[name] = round(max(hwm or 0, self.sampled[name]) * 1024 / 1e6, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": self.peak_mb,
            "peak_from": "VmHWM reset before the run" if self.hwm_reset else "VmRSS sampled every 50 ms",
            "cpu_percent_of_one_core": self.cpu_percent,
            "cpu_seconds": self.cpu_seconds,
        }


# ---------------------------------------------------------------------------------------------
# Measurements.


async def _items(gen: AsyncIterator[Received], stall: float) -> AsyncIterator[Received]:
    """``gen``'s items, failing (TimeoutError) when none comes for ``stall`` seconds (noticed
    within twice that). The deadline moves at most once per ``stall`` seconds: a timer (or a
    task, as with ``wait_for``) per item would cost the client more than it reads."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(2 * stall) as deadline:
            async for item in gen:
                now = loop.time()
                when = deadline.when()
                if when is not None and when - now < stall:
                    deadline.reschedule(now + 2 * stall)
                yield item
    finally:
        with contextlib.suppress(Exception):
            await gen.aclose()  # type: ignore[attr-defined]


async def stream(
    chain: Chain,
    endpoints: Sequence[str],
    size: int,
    count: int,
    window: int,
    conns: int,
    batch: int = 1,
) -> dict[str, Any]:
    """Send ``count`` bundles of ``size`` payload bytes ISS -> ground; time them, check them.

    Bundle ``i`` goes to ``endpoints[i % len(endpoints)]``; each endpoint has its own receiving
    connection to the ground node. About ``window`` bundles are outstanding at once over
    ``conns`` connections to the ISS node, sent ``batch`` at a time with ``send_many`` (1: one
    ``send`` each).
    """
    probe = Probe(chain)
    tag = os.urandom(8)
    body = os.urandom(size - HEADER) if size > 4 * KIB else bytes(size - HEADER)
    seen = bytearray(count)
    got = dup = bad = 0
    marks: list[float] = []  # time at which each tenth of the bundles had arrived
    step = max(1, count // 10)
    n_ep = len(endpoints)
    receivers = [await NodeClient.connect(port=chain.app[GROUND]) for _ in endpoints]
    senders = [await NodeClient.connect(port=chain.app[ISS]) for _ in range(conns)]
    try:
        for receiver, endpoint in zip(receivers, endpoints, strict=True):
            await receiver.register(endpoint)
        indices = iter(range(count))
        sent_done = 0.0

        async def send_worker(client: NodeClient) -> None:
            nonlocal sent_done
            if batch == 1:
                for i in indices:  # shared by all workers: each index is sent once
                    await client.send(endpoints[i % n_ep], tag + i.to_bytes(8, "big") + body)
            else:
                while chunk := list(itertools.islice(indices, batch)):
                    await client.send_many(
                        [(endpoints[i % n_ep], tag + i.to_bytes(8, "big") + body) for i in chunk]
                    )
            sent_done = time.perf_counter()

        def check(b: Received) -> None:
            nonlocal got, dup, bad
            p = b.payload
            if len(p) != size or not p.startswith(tag) or not p.endswith(body):
                bad += 1
                return
            i = int.from_bytes(p[8:HEADER], "big")
            if not 0 <= i < count or endpoints[i % n_ep] != b.endpoint:
                bad += 1
            elif seen[i]:
                dup += 1
            else:
                seen[i] = 1
            got += 1

        async def receive(receiver: NodeClient, e: int) -> float:
            expected = len(range(e, count, n_ep))
            async for b in _items(receiver.recv_iter(endpoints[e], count=expected), STALL_S):
                check(b)
                if got % step == 0:
                    marks.append(time.perf_counter())
            return time.perf_counter()

        async with probe:  # over the timed part only: not the connections, nor the look for strays
            t0 = time.perf_counter()
            recv_tasks = [asyncio.create_task(receive(r, e)) for e, r in enumerate(receivers)]
            n_workers = window if batch == 1 else max(conns, -(-window // batch))
            workers = [asyncio.create_task(send_worker(senders[k % conns])) for k in range(n_workers)]
            try:
                await asyncio.gather(*recv_tasks, *workers)
            except BaseException:
                for task in [*workers, *recv_tasks]:
                    task.cancel()
                raise
            t_end = max(task.result() for task in recv_tasks)
        # Anything more arriving now would be a duplicate (or a stray): look for a moment.
        extra = await asyncio.gather(
            *(r.recv(ep, count=0, timeout=1.0) for r, ep in zip(receivers, endpoints, strict=True))
        )
        for b in (b for bundles in extra for b in bundles):
            check(b)
    except TimeoutError:
        chain.check_alive()
        return {
            "size": size,
            "via": "attachments",
            "error": f"stalled: {got} of {count} bundles arrived, then nothing for {STALL_S:g} s",
            **(probe.as_dict() if hasattr(probe, "peak_mb") else {}),
        }
    finally:
        for c in [*receivers, *senders]:
            await c.close()
    elapsed = t_end - t0
    missing = count - sum(seen)
    tenths = [step / (b - a) for a, b in zip([t0, *marks], marks, strict=False) if b > a]
    return {
        "size": size,
        "via": "attachments",
        "count": count,
        "window": window,
        "batch": batch,
        "connections": conns,
        "endpoints": list(endpoints),
        "seconds": round(elapsed, 3),
        "bundles_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "gbit_per_s": count * size * 8 / elapsed / 1e9,
        "accepted_by_iss_per_s": count / (sent_done - t0) if sent_done > t0 else None,
        "rate_per_tenth": [round(r) for r in tenths],
        "received": got,
        "missing": missing,
        "duplicates": dup,
        "corrupt_or_stray": bad,
        "exactly_once": missing == 0 and dup == 0 and bad == 0,
        **probe.as_dict(),
    }


def size_plan(size: int, volume: int, quick: bool, batch: int = 1) -> tuple[int, int, int]:
    """(bundles, outstanding bundles, bundles per send_many request) for one size: about
    ``volume`` bytes, at least 8 bundles; at most ``batch`` bundles and 1 MiB per request."""
    count = max(8, min(20_000 if not quick else 4_000, volume // size))
    window = max(2, min(128, (32 * MIB) // size))
    return count, window, max(1, min(batch, MIB // size, window))


def file_piece(base: bytes, k: int, size: int) -> bytes:
    """Piece ``k`` (of :data:`FILE_PIECE` bytes) of the source file for bundles of ``size`` bytes:
    ``base`` (random) with the piece's index in its first 8 bytes, cut short at the end."""
    n = min(FILE_PIECE, size - k * FILE_PIECE)
    return (k.to_bytes(8, "big") + base[8:])[:n]


def write_source(path: Path, size: int) -> bytes:
    """Write the source file, a piece at a time; the random base its pieces are made of."""
    base = os.urandom(FILE_PIECE)
    with path.open("wb") as f:
        for k in range(-(-size // FILE_PIECE)):
            f.write(file_piece(base, k, size))
    return base


def same_as_source(path: Path, base: bytes, size: int) -> bool:
    """Whether the file at ``path`` holds exactly the source file's bytes (read piece by piece)."""
    try:
        if path.stat().st_size != size:
            return False
        with path.open("rb") as f:
            for k in range(-(-size // FILE_PIECE)):
                piece = file_piece(base, k, size)
                if f.read(len(piece)) != piece:
                    return False
            return f.read(1) == b""
    except OSError:
        return False


def file_plan(size: int, volume: int, quick: bool, nodes: int) -> tuple[int, int, int]:
    """(bundles, outstanding sends, disk bytes needed) for a size sent through files: about
    ``volume`` bytes, at least 2 bundles (``quick``: 1), 2 sends outstanding. The disk needed,
    at worst: the source file, each bundle in every node's store at once and its received file."""
    count = max(1 if quick else 2, min(20_000 if not quick else 4_000, volume // size))
    return count, min(2, count), size * (1 + count * (nodes + 1))


async def stream_files(chain: Chain, endpoint: str, size: int, count: int, window: int) -> dict[str, Any]:
    """Send ``count`` bundles of ``size`` payload bytes ISS -> ground through files; time them,
    then check them.

    One source file of ``size`` bytes in the chain's directory is sent ``count`` times with
    ``send_file`` (``window`` outstanding, over up to 2 connections); the ground node writes
    each payload into a directory there (``recv`` with ``save_dir``). The time runs from the
    first ``send_file`` to the last bundle's event. After it every received file is compared
    with the source piece by piece and deleted; exactly once is checked by (creation time,
    sequence number) against what ``send_file`` answered.
    """
    source = chain.dir / f"source-{size}.bin"
    save_dir = chain.dir / f"received-{size}"
    save_dir.mkdir(exist_ok=True)
    try:
        base = await asyncio.to_thread(write_source, source, size)
        return await _stream_files(chain, endpoint, size, count, window, source, base, save_dir)
    finally:  # whatever happened: give the disk back
        source.unlink(missing_ok=True)
        shutil.rmtree(save_dir, ignore_errors=True)


async def _stream_files(
    chain: Chain,
    endpoint: str,
    size: int,
    count: int,
    window: int,
    source: Path,
    base: bytes,
    save_dir: Path,
) -> dict[str, Any]:
    stall = max(STALL_S, size / STALL_FILE_RATE)
    conns = min(2, window)
    receiver = await NodeClient.connect(port=chain.app[GROUND])
    senders = [await NodeClient.connect(port=chain.app[ISS]) for _ in range(conns)]
    sent: list[tuple[int, int]] = []
    received: list[Received] = []
    probe = Probe(chain)  # over the timed part only: not the source's writing nor the checks
    try:
        await receiver.register(endpoint)
        indices = iter(range(count))
        sent_done = 0.0

        async def send_worker(client: NodeClient) -> None:
            nonlocal sent_done
            for _ in indices:  # shared by all workers
                s = await client.send_file(endpoint, source)
                sent.append((s.creation_time, s.sequence))
            sent_done = time.perf_counter()

        async def receive() -> float:
            gen = receiver.recv_iter(endpoint, count=count, save_dir=save_dir)
            async for b in _items(gen, stall):
                received.append(b)
            return time.perf_counter()

        async with probe:
            t0 = time.perf_counter()
            recv_task = asyncio.create_task(receive())
            workers = [asyncio.create_task(send_worker(senders[k % conns])) for k in range(window)]
            try:
                await asyncio.gather(recv_task, *workers)
            except BaseException:
                for task in [*workers, recv_task]:
                    task.cancel()
                raise
            t_end = recv_task.result()
            # Anything more arriving now would be a duplicate (or a stray): look for a moment.
            received += await receiver.recv(endpoint, count=0, timeout=1.0, save_dir=save_dir)
    except TimeoutError:
        chain.check_alive()
        return {
            "size": size,
            "via": "files",
            "error": f"stalled: {len(received)} of {count} bundles arrived, then nothing for {stall:g} s",
            **(probe.as_dict() if hasattr(probe, "peak_mb") else {}),
        }
    finally:
        for c in [receiver, *senders]:
            await c.close()

    # After the timing: check each received file against the source, then delete it.
    t_check = time.perf_counter()
    wanted = set(sent)
    seen: set[tuple[int, int]] = set()
    dup = bad = 0
    for b in received:
        key = (b.creation_time, b.sequence)
        if key in seen:
            dup += 1
            continue
        ok = (
            b.file is not None
            and key in wanted
            and b.endpoint == endpoint
            and b.source == NODE_IDS[ISS]
            and await asyncio.to_thread(same_as_source, Path(b.file), base, size)
        )
        if ok:
            seen.add(key)
        else:
            bad += 1
        if b.file is not None:
            Path(b.file).unlink(missing_ok=True)
    elapsed = t_end - t0
    missing = len(wanted - seen)
    return {
        "size": size,
        "via": "files",
        "count": count,
        "window": window,
        "connections": conns,
        "endpoints": [endpoint],
        "seconds": round(elapsed, 3),
        "bundles_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "gbit_per_s": count * size * 8 / elapsed / 1e9,
        "accepted_by_iss_per_s": count / (sent_done - t0) if sent_done > t0 else None,
        "received": len(received),
        "missing": missing,
        "duplicates": dup,
        "corrupt_or_stray": bad,
        "exactly_once": len(sent) == count and missing == 0 and dup == 0 and bad == 0,
        "check_seconds": round(time.perf_counter() - t_check, 1),
        **probe.as_dict(),
    }


async def ping(chain: Chain, to: str, count: int, interval: float = 0.0) -> dict[str, Any]:
    """``count`` round trips ``interval`` seconds apart (start to start; 0: each after the last reply)."""
    async with await NodeClient.connect(port=chain.app[ISS]) as c:
        await c.ping(to, count=20, size=64, timeout=5.0, interval=interval)  # warm-up
        result = await c.ping(to, count=count, size=64, timeout=5.0, interval=interval)
    return {
        "to": result.to,
        "count": count,
        "size": 64,
        "interval_s": interval,
        "received": result.received,
        **result.stats(),
    }


async def run_all(args: argparse.Namespace, chain: Chain, log: Any) -> dict[str, Any]:
    t_start = time.perf_counter()
    log(f"starting {'three' if chain.nodes == 3 else 'two'} nodes in {chain.dir} ...")
    chain.start()
    await chain.wait_sessions()
    log("nodes up: " + ", ".join(f"{name} pid {chain.pid(name)}" for name in chain.names))
    log("sessions up; warming up")
    await stream(chain, ["ipn:3.5"], KIB, 2_000, 128, 2)

    results: dict[str, Any] = {"chain": {"nodes": chain.nodes, "path": chain.describe()}}

    def eps(first: int) -> list[str]:
        return [f"ipn:3.{first + k}" for k in range(args.endpoints)]

    log(
        f"ping: {args.pings} round trips ISS -> ground echo -> ISS"
        + (", then ISS -> relay echo" if chain.nodes == 3 else "")
    )
    results["ping_ground"] = await ping(chain, "ipn:3.0", args.pings)
    if args.ion_bin is not None:  # ION's bping cannot go back to back: compare at its spacing too
        results["ping_ground_spaced"] = await ping(chain, "ipn:3.0", args.pings, PING_SPACING_S)
    if chain.nodes == 3:
        results["ping_relay"] = await ping(chain, "ipn:2.0", args.pings)

    how = "one send each" if args.batch == 1 else f"send_many batches of {args.batch}"
    log(f"1 KB: {args.count:,} bundles, {args.window} outstanding over {args.conns} connections, {how}")
    results["rate_1k"] = await stream(chain, eps(100), KIB, args.count, args.window, args.conns, args.batch)

    results["sizes"] = []
    for n, size in enumerate(args.sizes):
        if size < HEADER:
            results["sizes"].append({"size": size, "error": f"not measured: smaller than {HEADER} bytes"})
            continue
        if size >= args.file_threshold:
            count, window, needed = file_plan(size, args.volume, args.quick, chain.nodes)
            free = shutil.disk_usage(chain.dir).free
            if free < 3 * needed:
                results["sizes"].append(
                    {
                        "size": size,
                        "via": "files",
                        "count": count,
                        "not_measured": (
                            f"not enough disk: {free / 1e9:.1f} GB free in {chain.dir.parent}, "
                            f"less than 3 × the {needed / 1e9:.1f} GB {count} bundle(s) may need"
                        ),
                    }
                )
                log(f"{human(size)}: not measured (not enough disk)")
                continue
            log(f"{human(size)}: {count:,} bundle(s) through files, {window} outstanding send_file")
            results["sizes"].append(await stream_files(chain, f"ipn:3.{200 + 10 * n}", size, count, window))
            continue
        if size > APP_PAYLOAD_LIMIT:
            results["sizes"].append(
                {
                    "size": size,
                    "via": "attachments",
                    "not_measured": (
                        f"the application interface carries payloads of at most {APP_PAYLOAD_LIMIT:,} "
                        f"bytes (one binary attachment), so a {human(size)} bundle cannot enter the ISS "
                        "node nor leave the ground node"
                    ),
                }
            )
            log(f"{human(size)}: not measured (larger than the application interface carries)")
            continue
        count, window, batch = size_plan(size, args.volume, args.quick, args.size_batch)
        how = "one send each" if batch == 1 else f"send_many batches of {batch}"
        log(f"{human(size)}: {count:,} bundles, {window} outstanding, {how}")
        results["sizes"].append(
            await stream(chain, eps(200 + 10 * n), size, count, window, min(2, window), batch)
        )
    chain.check_alive()
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    return results


# ---------------------------------------------------------------------------------------------
# ION beside it, when installed (bench/ion.py).

# (label, ION CLA, configFlags, what it measures). Flags 1: ION's benchmark configuration, its
# store in shared memory; 6: in a file, with transactions that roll back: nearest to the proxima
# nodes' durable store.
ION_SETUPS = (
    ("stcp", "stcp", 1, "all"),
    ("tcp", "tcp", 1, "1k+60k+ping"),
    ("stcp-file", "stcp", 6, "1k+60k"),
)


def run_ion(args: argparse.Namespace, results: dict[str, Any], log: Any) -> dict[str, Any]:
    """The same measurements on two ION nodes, each setup of :data:`ION_SETUPS` in turn."""
    bindir: Path = args.ion_bin
    out: dict[str, Any] = {"bin": str(bindir), "setups": {}}
    counts = {x["size"]: x["count"] for x in results["sizes"] if "count" in x and "error" not in x}
    for label, cla, flags, what in ION_SETUPS:
        workdir = Path(tempfile.mkdtemp(prefix=f"proxima-bench-ion-{label}-"))
        first, second = free_ports(2)
        pair = ion_peer.IonPair(bindir, workdir, cla, (first, second), flags)
        setup: dict[str, Any] = {"cla": cla, "config_flags": flags}
        out["setups"][label] = setup
        try:
            out.setdefault("version", pair.version())
            log(f"ION {label}: two nodes, {cla.upper()}, configFlags {flags}, in {workdir}")
            pair.start()
            pair.rate(KIB, 2_000, ION_TIMEOUT_S)  # warm-up, and waits out the first connection
            if "ping" in what or what == "all":
                log(f"ION {label}: {args.pings} bping round trips, {PING_SPACING_S * 1e3:.0f} ms apart")
                setup["ping"] = pair.ping(args.pings, PING_SPACING_S)
            n1k = args.count if flags == 1 else min(args.count, args.ion_persistent_count)
            log(f"ION {label}: 1 KB, {n1k:,} bundles")
            setup["rate_1k"] = pair.rate(KIB, n1k, ION_TIMEOUT_S)
            setup["sizes"] = []
            for size, ours in counts.items():
                if what != "all" and size != 60 * KIB:
                    continue
                count = ours if flags == 1 else min(ours, max(8, args.ion_persistent_count // 10))
                log(f"ION {label}: {human(size)}, {count:,} bundles")
                try:
                    setup["sizes"].append(pair.rate(size, count, ION_TIMEOUT_S))
                except ion_peer.IonError as exc:
                    setup["sizes"].append({"size": size, "count": count, "error": str(exc)})
                    log(f"ION {label}: {exc}")
                    break  # the node may be down; the next setup starts afresh
        except (ion_peer.IonError, OSError, subprocess.SubprocessError) as exc:
            setup["error"] = str(exc)
            log(f"ION {label}: {exc}")
        finally:
            pair.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# Report.


def human(size: int) -> str:
    for unit, mult in (("GB", GIB), ("MB", MIB), ("KB", KIB)):
        if size >= mult and size % mult == 0:
            return f"{size // mult} {unit}"
    return f"{size} B"


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": KIB, "M": MIB, "G": GIB}.get(text[-1:], 1)
    number = text[:-1] if mult != 1 else text
    try:
        value = int(float(number) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 60K, 10M or 1G") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a size must be positive")
    return value


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+uncommitted changes" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        **benchinfo.machine(),
        "sqlite": sqlite3.sqlite_version,
        "proxima": importlib.metadata.version("proxima"),
        "commit": git_commit(),
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def summarise(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """Targets and ratios against ION's quoted figures."""
    r1 = results["rate_1k"]
    rate = r1.get("bundles_per_s")
    full_length = args.count >= TARGET_RATE_COUNT
    s: dict[str, Any] = {
        "rate_1k": rate,
        "rate_1k_ratio_to_ion_sustained": rate / ION["rate_1k_sustained"] if rate else None,
        "rate_1k_ratio_to_ion_short_best": rate / ION["rate_1k_short"][1] if rate else None,
        "rate_1k_exactly_once": r1.get("exactly_once", False),
        "rate_1k_over_target_length": full_length,
        "rate_1k_pass": bool(rate and rate >= TARGET_RATE_1K and r1.get("exactly_once") and full_length),
    }
    gbit_checks = []
    peak_1g: float | None = None
    mem_node = RELAY if results["chain"]["nodes"] == 3 else GROUND
    for r in results["sizes"]:
        if r["size"] == 60 * KIB and "gbit_per_s" in r:
            s["gbit_60k"] = r["gbit_per_s"]
            s["gbit_60k_ratio_to_ion"] = r["gbit_per_s"] / ION["gbits_60k"]
            s["rate_60k_ratio_to_ion"] = r["bundles_per_s"] / ION["rate_60k"]
        if r["size"] >= TARGET_GBITS_MIN_SIZE:
            ok = "gbit_per_s" in r and r["gbit_per_s"] >= TARGET_GBITS and r["exactly_once"]
            gbit_checks.append(None if "not_measured" in r else ok)
        if r["size"] == GIB and "peak_rss_mb" in r and "error" not in r:
            peak_1g = r["peak_rss_mb"][mem_node]
    measured = [c for c in gbit_checks if c is not None]
    s["gbit_pass"] = bool(measured) and all(measured)
    s["gbit_sizes_not_measured"] = sum(1 for c in gbit_checks if c is None)
    s["peak_1g_node"] = mem_node  # the relay; the ground with two nodes (no relay)
    s["peak_1g_mb"] = peak_1g
    if mem_node == RELAY:
        s["peak_1g_relay_mb"] = peak_1g
    s["peak_1g_pass"] = None if peak_1g is None else peak_1g < TARGET_PEAK_MB_1G
    p50 = results["ping_ground"].get("p50_ms")
    s["ping_p50_ms"] = p50
    s["ping_p50_ratio_to_ion_stcp"] = p50 / ION["rtt_stcp_ms"] if p50 else None
    s["ping_p50_ratio_to_ion_tcpcl"] = p50 / ION["rtt_tcpcl_ms"] if p50 else None
    s["ping_pass"] = p50 is not None and p50 < TARGET_PING_P50_MS
    if "ion" in results:
        s["ion_measured"] = side_by_side(results)
    return s


def side_by_side(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of proxima against each measured ION setup: the figures, and proxima/ION."""
    setups: dict[str, Any] = results["ion"]["setups"]
    rows: list[dict[str, Any]] = []

    def cpu_us(x: dict[str, Any]) -> float | None:
        cpu, n = x.get("cpu_seconds"), x.get("count")
        return 1e6 * sum(cpu.values()) / n if cpu and n else None

    def sized(setup: dict[str, Any], size: int) -> dict[str, Any]:
        return next((x for x in setup.get("sizes", []) if x["size"] == size), {})

    def add(what: str, ours: float | None, theirs: Any, better: str = "higher") -> None:
        row: dict[str, Any] = {"measurement": what, "proxima": ours, "better": better, "ion": {}}
        for label, setup in setups.items():
            x = theirs(setup)
            value = x if isinstance(x, (int, float)) else None
            row["ion"][label] = {"value": value, "ratio": ours / value if ours and value else None}
        rows.append(row)

    r1 = results["rate_1k"]
    add("1 KB bundles/s", r1.get("bundles_per_s"), lambda st: st.get("rate_1k", {}).get("bundles_per_s"))
    add("  CPU µs per 1-KB bundle", cpu_us(r1), lambda st: cpu_us(st.get("rate_1k", {})), "lower")
    for x in results["sizes"]:
        if "gbit_per_s" in x:
            size = x["size"]
            add(f"{human(size)} Gbit/s", x["gbit_per_s"], lambda st, z=size: sized(st, z).get("gbit_per_s"))
    spaced = results.get("ping_ground_spaced", {})
    add(
        f"ping p50 ms, one every {PING_SPACING_S * 1e3:.0f} ms",
        spaced.get("p50_ms"),
        lambda st: st.get("ping", {}).get("p50_ms"),
        "lower",
    )
    return rows


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "PASS" if ok else "FAIL"


def _per_s(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2f}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def print_report(report: dict[str, Any]) -> None:
    m, r, s = report["machine"], report["results"], report["summary"]
    nodes = r["chain"]["nodes"]
    mem = s["peak_1g_node"]  # the relay's peak memory; the ground's with two nodes (no relay)
    mem_label = LABELS[mem] + ("" if mem == RELAY else " (no relay)")
    print()
    print(
        f"Machine: {m['cpu_model'] or 'unknown CPU'}, nproc {m['nproc']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}, {m['platform']}"
    )
    print(
        f"proxima {m['proxima']} ({m['proxima_cores']} cores) at {m['commit']}, {report['date']}, "
        f"load average {report['loadavg_before']} before, {report['loadavg_after']} after"
    )
    print(
        f"Chain: {r['chain']['path']}"
        + (" (two nodes, as ION's figures)" if nodes == 2 else "")
        + ", one process each, TCPCLv4 on loopback, SQLite stores on; end to end through the "
        "application interfaces."
    )
    if "ion" in r:
        print(
            "The ION column of this first table is QUOTED from issue 3; "
            f"{r['ion'].get('version', 'ION')}, measured in this run, is in the second."
        )
    else:
        print("ION 4.1.3 figures are QUOTED from issue 3 (two nodes, same kind of machine), NOT measured:")
        print("ION is measured beside proxima only with --nodes 2 and ION installed (see --ion).")
    print()
    rows: list[tuple[str, str, str, str, str, str]] = []
    r1 = r["rate_1k"]
    if "error" in r1:
        rows.append(
            (
                f"1 KB bundles/s over {report['args']['count']:,}",
                r1["error"],
                "4,500",
                "—",
                "≥ 10,000 over 100,000",
                "FAIL",
            )
        )
    else:
        once = (
            "each exactly once"
            if r1["exactly_once"]
            else (f"{r1['missing']} missing, {r1['duplicates']} dup, {r1['corrupt_or_stray']} bad")
        )
        verdict = (
            _verdict(s["rate_1k_pass"])
            if s["rate_1k_over_target_length"]
            else (
                ("PASS" if r1["bundles_per_s"] >= TARGET_RATE_1K and r1["exactly_once"] else "FAIL")
                + f" (over {r1['count']:,} only)"
            )
        )
        batch = r1.get("batch", 1)
        rows.append(
            (
                f"1 KB bundles/s over {r1['count']:,} ("
                + ("send each" if batch == 1 else f"send_many ×{batch}")
                + ")",
                f"{r1['bundles_per_s']:,.0f}/s ({once})",
                "4,500 (100k); 6,700–8,200 short",
                _ratio(s["rate_1k_ratio_to_ion_sustained"]),
                "≥ 10,000 over 100,000",
                verdict,
            )
        )
    for x in r["sizes"]:
        how = f" (send_many ×{x['batch']})" if x.get("batch", 1) > 1 else ""
        label = f"{human(x['size'])} bundles" + (" (files)" if x.get("via") == "files" else how)
        ion = f"2,400/s = {ION['gbits_60k']} Gbit/s" if x["size"] == 60 * KIB else "—"
        target = f"≥ {TARGET_GBITS} Gbit/s" if x["size"] >= TARGET_GBITS_MIN_SIZE else "—"
        if "not_measured" in x or "error" in x:
            rows.append(
                (
                    label,
                    "not measured (see below)" if "not_measured" in x else x["error"],
                    ion,
                    "—",
                    target,
                    "not measured" if "not_measured" in x else "FAIL",
                )
            )
            if x["size"] == GIB:
                rows.append(
                    (
                        f"  {mem_label} peak RSS, 1 GB",
                        "not measured",
                        "—",
                        "—",
                        f"< {TARGET_PEAK_MB_1G} MB",
                        "not measured",
                    )
                )
            continue
        ratio = _ratio(x["gbit_per_s"] / ION["gbits_60k"]) if x["size"] == 60 * KIB else "—"
        ok = x["gbit_per_s"] >= TARGET_GBITS and x["exactly_once"]
        rows.append(
            (
                label,
                f"{x['mb_per_s']:,.1f} MB/s = {x['gbit_per_s']:.3f} Gbit/s ({_per_s(x['bundles_per_s'])}/s)"
                + ("" if x["exactly_once"] else " NOT exactly once"),
                ion,
                ratio,
                target,
                _verdict(ok) if x["size"] >= TARGET_GBITS_MIN_SIZE else "—",
            )
        )
        is_1g = x["size"] == GIB
        rows.append(
            (
                f"  {mem_label} peak RSS, {human(x['size'])}",
                f"{x['peak_rss_mb'][mem]:,.1f} MB",
                "—",
                "—",
                f"< {TARGET_PEAK_MB_1G} MB" if is_1g else "—",
                _verdict(s["peak_1g_pass"]) if is_1g else "—",
            )
        )
    pg = r["ping_ground"]
    pr = r.get("ping_relay")
    rows.append(
        (
            "ping ISS→ground echo p50 / p99",
            f"{pg['p50_ms']:.3f} / {pg['p99_ms']:.3f} ms" if pg.get("p50_ms") is not None else "no reply",
            "0.21 ms STCP; ~70 ms TCPCL",
            f"{_ratio(s['ping_p50_ratio_to_ion_stcp'])} / {_ratio(s['ping_p50_ratio_to_ion_tcpcl'])}",
            f"p50 < {TARGET_PING_P50_MS} ms",
            _verdict(s["ping_pass"]),
        )
    )
    if pr is not None:  # three nodes only
        rows.append(
            (
                "  ping ISS→relay echo p50 / p99",
                f"{pr['p50_ms']:.3f} / {pr['p99_ms']:.3f} ms" if pr.get("p50_ms") is not None else "no reply",
                "(two nodes, as ION's)",
                "—",
                "—",
                "—",
            )
        )
    head = ("measurement", "proxima (measured)", "ION 4.1.3 (quoted)", "proxima/ION", "target", "verdict")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(6)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    print()
    print("Ratios are proxima/ION: above 1 is better for rates, below 1 is better for round trips.")
    if "ion" in r:
        print_side_by_side(r["ion"], s["ion_measured"])
    for x in r["sizes"]:
        if "not_measured" in x:
            print(f"{human(x['size'])}: not measured: {x['not_measured']}.")
    files = [x for x in r["sizes"] if x.get("via") == "files" and "seconds" in x]
    if files:
        print(
            "(files): sent with send_file from one source file, received with recv(save_dir=...); "
            "each received file checked against the source after the timing, then deleted:"
        )
        for x in files:
            print(
                f"  {human(x['size'])}: {x['count']} bundle(s), {x['window']} outstanding, "
                f"{x['seconds']} s, "
                + (
                    "each exactly once and intact"
                    if x["exactly_once"]
                    else f"{x['missing']} missing, {x['duplicates']} dup, {x['corrupt_or_stray']} bad"
                )
                + f" (checked in {x['check_seconds']} s)"
            )
    print()
    print("CPU use during each measurement (% of one core; 2 cores = 200 %) and peak RSS (MB):")
    for name, x in [("1 KB", r1), *((human(x["size"]), x) for x in r["sizes"])]:
        if "cpu_percent_of_one_core" not in x:
            continue
        cpu, peak = x["cpu_percent_of_one_core"], x["peak_rss_mb"]
        names = [n for n in (ISS, RELAY, GROUND) if n in cpu]
        print(
            f"  {name:>6}: "
            + "  ".join(f"{LABELS[n]} {cpu[n]:5.1f} %" for n in names)
            + f"  bench client {cpu['client']:5.1f} %   peak RSS "
            + ", ".join(f"{LABELS[n]} {peak[n]:.0f}" for n in names)
        )
    print("CPU time per bundle (us; time the host takes from this machine inflates it less than the rates):")
    for name, x in [("1 KB", r1), *((human(x["size"]), x) for x in r["sizes"])]:
        if "cpu_seconds" not in x or not x.get("count"):
            continue
        cpu = x["cpu_seconds"]
        names = [n for n in (ISS, RELAY, GROUND) if n in cpu]
        per = {n: 1e6 * cpu[n] / x["count"] for n in [*names, "client"]}
        print(
            f"  {name:>6}: "
            + "  ".join(f"{LABELS[n]} {per[n]:,.0f}" for n in names)
            + f"  bench client {per['client']:,.0f}   all {sum(per.values()):,.0f}"
        )
    if "rate_per_tenth" in r1:
        print("1 KB rate per tenth of the run (/s): " + ", ".join(f"{v:,}" for v in r1["rate_per_tenth"]))
        if r1.get("accepted_by_iss_per_s"):
            print(f"1 KB sends accepted (durable) by the ISS node: {r1['accepted_by_iss_per_s']:,.0f}/s")
    print()
    print(f"Total {r['total_seconds']} s.")


def print_side_by_side(ion: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    setups: dict[str, Any] = ion["setups"]
    print()
    print(f"Side by side, measured in this run: {ion.get('version', 'ION')} from {ion['bin']}, two nodes")
    for label, st in setups.items():
        store = (
            "its store in shared memory (ION's benchmark setting)"
            if st["config_flags"] == 1
            else ("its store in a file, transactions that roll back (nearest to proxima's durable store)")
        )
        n1k = st.get("rate_1k", {}).get("count")
        print(
            f"  ION {label}: {st['cla'].upper()}, configFlags {st['config_flags']}, {store}"
            + (f"; 1 KB over {n1k:,} bundles" if n1k else "")
            + (f"; FAILED: {st['error']}" if "error" in st else "")
        )
        for x in st.get("sizes", []):
            if "error" in x:
                print(f"    {human(x['size'])}: {x['error']}")

    def fmt(v: float | None, what: str) -> str:
        if v is None:
            return "—"
        if "bundles/s" in what:
            return f"{v:,.0f}"
        return f"{v:,.0f}" if v >= 100 else f"{v:.3f}"

    head = ["measurement", "proxima"] + [x for label in setups for x in (f"ION {label}", "proxima/ION")]
    table = [head]
    for row in rows:
        cells = [row["measurement"], fmt(row["proxima"], row["measurement"])]
        for label in setups:
            cell = row["ion"][label]
            cells += [fmt(cell["value"], row["measurement"]), _ratio(cell["ratio"])]
        table.append(cells)
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for k, t in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(
        "ION's times are bpcounter's, less bpdriver's fixed 0.1 s pause; its CPU is every ION process of "
        "both nodes plus bpdriver and bpcounter, proxima's every node plus the bench client."
    )


# ---------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="10,000 1-KB bundles and less data per size")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--count", type=int, default=None, help="1-KB bundles (default 100,000; --quick 10,000)")
    ap.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="bundle payload sizes for the MB/s runs (default 10K 60K 10M 1G; K, M, G are binary)",
    )
    ap.add_argument(
        "--nodes",
        type=int,
        choices=(2, 3),
        default=3,
        help="3: ISS -> relay -> ground (default); 2: ISS -> ground directly, as ION's figures",
    )
    ap.add_argument(
        "--file-threshold",
        type=parse_size,
        default=64 * MIB,
        metavar="SIZE",
        help="sizes from this one up go through files: send_file and recv(save_dir=...) (default 64M)",
    )
    ap.add_argument(
        "--volume",
        type=parse_size,
        default=None,
        help=(
            "payload bytes sent per size (default 256M; --quick 64M; at least 8 bundles, through "
            "files at least 2, --quick 1)"
        ),
    )
    ap.add_argument("--window", type=int, default=1024, help="outstanding 1-KB bundles (default 1024)")
    ap.add_argument(
        "--batch",
        type=int,
        default=256,
        help="1-KB bundles per send_many request (default 256; 1: one send request per bundle)",
    )
    ap.add_argument(
        "--size-batch",
        type=int,
        default=8,
        help="bundles per send_many request for the MB/s runs, at most 1 MiB per request "
        "(default 8; 1: one send request per bundle)",
    )
    ap.add_argument("--conns", type=int, default=2, help="sender connections for 1-KB bundles (default 2)")
    ap.add_argument(
        "--endpoints",
        type=int,
        default=1,
        help="ground endpoints the bundles are spread over, one receiving connection each (default 1)",
    )
    ap.add_argument("--pings", type=int, default=200, help="pings per target (default 200)")
    ap.add_argument("--check", action="store_true", help="exit status 1 when a measured target is missed")
    ap.add_argument(
        "--ion",
        metavar="DIR",
        default=None,
        help="ION's bin directory (or its prefix) to measure beside proxima (default: PROXIMA_BENCH_ION, "
        "else bpdriver on PATH; none found: ION's figures quoted from issue 3)",
    )
    ap.add_argument("--no-ion", action="store_true", help="do not measure ION even when it is installed")
    ap.add_argument(
        "--ion-persistent-count",
        type=int,
        default=None,
        help="1-KB bundles for ION with its store in a file (default 10,000; --quick 2,000; a tenth of it "
        "at 60 KB): it runs at about a hundred a second",
    )
    args = ap.parse_args(argv)
    args.count = args.count or (10_000 if args.quick else 100_000)
    args.sizes = args.sizes or [10 * KIB, 60 * KIB, 10 * MIB, GIB]
    args.volume = args.volume or (64 * MIB if args.quick else 256 * MIB)
    args.ion_persistent_count = args.ion_persistent_count or (2_000 if args.quick else 10_000)
    counts = (args.window, args.conns, args.pings, args.endpoints, args.batch, args.size_batch)
    if args.count < 10 or min(counts) < 1 or args.ion_persistent_count < 10:
        ap.error(
            "--count and --ion-persistent-count must be >= 10; "
            "--window, --conns, --endpoints, --batch, --size-batch, --pings >= 1"
        )
    if args.ion and args.nodes != 2:
        ap.error("--ion measures two ION nodes beside two proxima nodes: add --nodes 2")
    try:  # found on its own, ION is measured with two nodes only: like against like
        args.ion_bin = None if args.no_ion or args.nodes != 2 else ion_peer.find_ion(args.ion)
    except ion_peer.IonError as exc:
        ap.error(str(exc))

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too, even if inherited ignored
        signal.signal(sig, _interrupt)
    before = loadavg()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    chain = Chain(args.nodes)
    try:
        results = asyncio.run(run_all(args, chain, log))
        chain.stop()  # ION runs alone after it
        if args.ion_bin is not None:
            results["ion"] = run_ion(args, results, log)
    except KeyboardInterrupt:
        log("interrupted; stopping the nodes")
        return 130
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        for name in chain.procs:
            log(f"{name} log: {chain.log_tail(name)}")
        return 2
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
        chain.stop()
    report: dict[str, Any] = {
        "date": date,
        "args": dict(vars(args)),
        "machine": machine(),
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "ion_4_1_3_quoted_from_issue": ION,
        "results": results,
    }
    report["summary"] = summarise(args, results)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        print_report(report)
    s = report["summary"]
    rate_ok = (s["rate_1k"] or 0) >= TARGET_RATE_1K and s["rate_1k_exactly_once"]  # at any --count
    missed = not rate_ok or not s["gbit_pass"] or not s["ping_pass"] or s["peak_1g_pass"] is False
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
