"""NASA ION measured beside proxima in the same run: two ION nodes on loopback.

ION is not part of this project and nothing here builds it. When an ION installation is found
(``--ion DIR`` of ``bench/node.py``, its ``bin`` directory or the prefix holding it; else
``PROXIMA_BENCH_ION``; else ``bpdriver`` on ``PATH``), ``bench/node.py`` runs the same
measurements on two ION nodes after its own, with ION's own tools, and prints the ratios:

- bundles per second: ``bpcounter ipn:3.1 N`` on node 3, ``bpdriver N ipn:1.1 ipn:3.1 -SIZE``
  (streaming) on node 1, as ION's ``demos/bench-*`` scripts do. The time is bpcounter's own,
  from bpdriver's pilot bundle to the last bundle, less the fixed 0.1 s bpdriver sleeps after
  the pilot. It leaves out bpdriver writing its payload file and attaching to ION; where ION's
  TCPCL holds the pilot back, it is shorter than the real one, in ION's favour. The wall time
  from starting bpdriver to bpcounter's exit is kept beside it.
- round trips: ``bpecho ipn:3.2`` on node 3, ``bping -c N -i INTERVAL ipn:1.2 ipn:3.2``.
- CPU: every ION process whose working directory is a node's, sampled before and after, plus
  bpdriver's and bpcounter's own use.

Each node is configured as in ION's ``demos/bench-stcp`` and ``demos/bench-tcp``, ``stcp`` or
``tcp`` (ION 4.1.3's TCPCL, version 3) between them, with a larger heap: ION's 5,000,000 words
run out at about 11,000 queued 1-KB bundles and the sending node stops ("Can't increase large
pool size"). ``configFlags`` is ION's: 1 (its benchmark setting) keeps the SDR heap in shared
memory with no file behind it; 6 keeps it in a file, with transactions that can be rolled
back: ION's setting nearest to the proxima nodes' durable store. Everything runs in a temporary directory;
the nodes are stopped with ``bpadmin .`` and ``ionadmin .``, leftover processes killed, and the
shared memory and semaphores they created removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from proxima.client import PingResult

CLK_TCK = os.sysconf("SC_CLK_TCK")
PILOT_PAUSE_S = 0.1  # bpdriver: microsnooze(100000) after the pilot bundle, inside bpcounter's time
HEAP_WORDS = 50_000_000  # 400 MB of heap on a 64-bit machine; ION's bench scripts use 5,000,000
WM_SIZE = 50_000_000
NODES = (1, 3)  # ION node numbers: 1 sends (the ISS), 3 receives (the ground)


class IonError(RuntimeError):
    """ION could not be started or did not finish a measurement."""


def find_ion(explicit: str | None) -> Path | None:
    """The ``bin`` directory of an ION installation, or None when there is none."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("PROXIMA_BENCH_ION"):
        candidates.append(Path(os.environ["PROXIMA_BENCH_ION"]))
    else:
        found = shutil.which("bpdriver")
        if found:
            candidates.append(Path(found).parent)
    for c in candidates:
        for d in (c, c / "bin"):
            if (d / "bpdriver").is_file() and (d / "ionadmin").is_file():
                return d.resolve()
        if explicit:
            raise IonError(f"--ion {explicit}: no ION here (no bpdriver and ionadmin in it or in its bin/)")
    return None


def _ipc_keys(unattached: bool = False) -> set[tuple[str, str]]:
    """System V shared memory segments and semaphore sets, as (kind, id); with ``unattached``
    only the segments no process has attached."""
    keys: set[tuple[str, str]] = set()
    for kind, path in (("m", "/proc/sysvipc/shm"), ("s", "/proc/sysvipc/sem")):
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 6 and not (unattached and kind == "m" and fields[6] != "0"):
                    keys.add((kind, fields[1]))
    return keys


def _posix_sems() -> set[str]:
    with contextlib.suppress(OSError):
        return {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("sem.")}
    return set()


class IonPair:
    """Two ION nodes on loopback (``ipn:1`` -> ``ipn:3``) over ``cla`` (``stcp`` or ``tcp``)."""

    def __init__(
        self, bindir: Path, workdir: Path, cla: str, ports: tuple[int, int], config_flags: int = 1
    ) -> None:
        self.bindir = bindir
        self.config_flags = config_flags
        self.dir = workdir
        self.cla = cla
        self.ports = dict(zip(NODES, ports, strict=True))
        self.env = dict(os.environ)
        self.env["PATH"] = f"{bindir}{os.pathsep}{self.env.get('PATH', '')}"
        lib = bindir.parent / "lib"
        if lib.is_dir():
            self.env["LD_LIBRARY_PATH"] = f"{lib}{os.pathsep}{self.env.get('LD_LIBRARY_PATH', '')}"
        self.env["ION_NODE_LIST_DIR"] = str(workdir)
        self._ipc_before = _ipc_keys()  # before any ION tool runs: even ionadmin's version creates some
        self._sems_before = _posix_sems()
        self.started = False

    def node_dir(self, n: int) -> Path:
        return self.dir / f"node{n}"

    def version(self) -> str:
        """ION's version as ``ionadmin``'s ``v`` command prints it, e.g. ``ION-OPEN-SOURCE-4.1.3``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [str(self.bindir / "ionadmin")],
            check=False,
            input="v\nq\n",
            capture_output=True,
            text=True,
            env=self.env,
            timeout=20,
            cwd=self.dir,
        ).stdout
        self.started = True  # ionadmin leaves shared memory and semaphores behind even for this
        m = re.search(r"ION-OPEN-SOURCE-[\w.\-]+", out)
        return m.group(0) if m else "unknown version"

    def _write_configs(self) -> None:
        key_base = 0x5000 + (os.getpid() % 0x4000) * 4  # apart from ION's defaults and other runs
        for n in NODES:
            other = NODES[1] if n == NODES[0] else NODES[0]
            d = self.node_dir(n)
            d.mkdir(parents=True, exist_ok=True)
            (d / "node.ionconfig").write_text(
                f"wmKey {key_base + n}\nsdrName proximabench{os.getpid()}n{n}\nwmSize {WM_SIZE}\n"
                f"configFlags {self.config_flags}\nheapWords {HEAP_WORDS}\npathName {d}\n"
            )
            (d / "node.ionrc").write_text(f"1 {n} node.ionconfig\ns\nm horizon +0\n")
            (d / "node.ionsecrc").write_text("1\n")
            here, there = self.ports[n], self.ports[other]
            clo = "stcpclo" if self.cla == "stcp" else "''"
            (d / "node.bprc").write_text(
                "1\n"
                "a scheme ipn 'ipnfw' 'ipnadminep'\n"
                + "".join(f"a endpoint ipn:{n}.{s} x\n" for s in (0, 1, 2))
                + f"a protocol {self.cla} 1400 100 -1\n"
                f"a induct {self.cla} 127.0.0.1:{here} {self.cla}cli\n"
                f"a outduct {self.cla} 127.0.0.1:{there} {clo}\n"
                "r 'ipnadmin node.ipnrc'\n"
                "s\n"
            )
            (d / "node.ipnrc").write_text(f"a plan {other} {self.cla}/127.0.0.1:{there}\n")

    def _admin(self, n: int, *cmd: str, timeout: float = 30) -> None:
        # Not a pipe: the daemons these commands start inherit it, and would hold it open.
        with (self.node_dir(n) / "admin.log").open("ab") as log:
            r = subprocess.run(
                list(cmd),
                check=False,
                cwd=self.node_dir(n),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if r.returncode != 0:
            raise IonError(f"ION node {n}: {' '.join(cmd)} exited {r.returncode}: {self.log_tail(n)}")

    def start(self) -> None:
        """Start both nodes; raises IonError with the end of ION's log when one does not come up."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_configs()
        self.started = True
        for n in NODES:
            self._admin(n, "ionadmin", "node.ionrc")
            self._admin(n, "ionsecadmin", "node.ionsecrc")
            self._admin(n, "bpadmin", "node.bprc")

    def log_tail(self, n: int, lines: int = 3) -> str:
        log = self.node_dir(n) / "ion.log"
        try:
            return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no ion.log)"

    def pids(self) -> list[int]:
        """Every process whose working directory is one of the nodes'."""
        found = []
        dirs = {str(self.node_dir(n).resolve()) for n in NODES}
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(p / "cwd") in dirs:
                    found.append(int(p.name))
        return found

    def cpu_seconds(self) -> float:
        """CPU time of the nodes' daemons, so far."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def _spawn(self, n: int, *cmd: str) -> subprocess.Popen[str]:
        """One of ION's tools, run on node ``n`` in its own session, its output piped."""
        return subprocess.Popen(
            list(cmd),
            cwd=self.node_dir(n),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def rate(self, size: int, count: int, timeout: float) -> dict[str, Any]:
        """``count`` bundles of ``size`` bytes streamed from node 1's bpdriver to node 3's bpcounter."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemons = self.cpu_seconds()
        counter = self._spawn(3, "bpcounter", "ipn:3.1", str(count))
        time.sleep(1.0)  # as ION's scripts: let bpcounter open its endpoint
        t0 = time.perf_counter()
        driver = self._spawn(1, "bpdriver", str(count), "ipn:1.1", "ipn:3.1", str(-size))
        try:
            out, _ = counter.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in (counter, driver):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            counter.communicate()
            driver.communicate()
            received = re.findall(r"Bundles received: (\d+)", counter.stdout.read() if counter.stdout else "")
            raise IonError(
                f"{count} bundles of {size} bytes: not all arrived within {timeout:.0f} s"
                + (f" ({received[-1]} did)" if received else "")
                + f"; node 1: {self.log_tail(1)}"
            ) from None
        wall = time.perf_counter() - t0
        try:
            driver.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
        daemons = self.cpu_seconds() - daemons
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        tools = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        got = re.search(r"bundles received: (\d+)", out)
        secs = re.search(r"Time \(seconds\): ([\d.]+)", out)
        if not got or not secs or int(got.group(1)) != count:
            raise IonError(f"bpcounter did not count {count} bundles: {out.strip()[-200:]!r}")
        seconds = float(secs.group(1)) - PILOT_PAUSE_S
        if seconds <= 0:  # the pilot came late, behind the others (ION's TCPCL, a short run)
            seconds = wall - PILOT_PAUSE_S
        return {
            "size": size,
            "count": count,
            "seconds": round(seconds, 3),
            "wall_seconds": round(wall, 3),
            "bundles_per_s": count / seconds,
            "mb_per_s": count * size / seconds / 1e6,
            "gbit_per_s": count * size * 8 / seconds / 1e9,
            "cpu_seconds": {"ion": round(daemons, 3), "bpdriver+bpcounter": round(tools, 3)},
        }

    def ping(self, count: int, interval: float, timeout: float = 60) -> dict[str, Any]:
        """``count`` bping round trips to node 3's bpecho, one every ``interval`` seconds."""
        echo = self._spawn(3, "bpecho", "ipn:3.2")
        try:
            time.sleep(1.0)
            r = subprocess.run(
                ["bping", "-c", str(count), "-i", repr(interval), "-q", "2", "ipn:1.2", "ipn:3.2"],
                cwd=self.node_dir(1),
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(echo.pid, signal.SIGINT)
            try:
                echo.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(echo.pid, signal.SIGKILL)
                echo.communicate()
        rtts: list[float | None] = [1e3 * float(t) for t in re.findall(r"seq=\d+ time=([\d.]+) s", r.stdout)]
        # The statistics proxima's own pings get (nearest rank), so the two sides compare.
        out: dict[str, Any] = {"count": count, "interval_s": interval, "received": len(rtts)}
        out.update(PingResult("ipn:3.2", 64, rtts).stats())
        return out

    def stop(self) -> None:
        """Stop both nodes and remove what they left: processes, shared memory, semaphores."""
        if not self.started:
            return
        self.started = False
        for n in NODES:
            for cmd in ("bpadmin", "ionadmin"):
                with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                    subprocess.run(
                        [cmd, "."],
                        cwd=self.node_dir(n),
                        env=self.env,
                        capture_output=True,
                        timeout=20,
                        check=False,
                    )
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for kind, ident in _ipc_keys(unattached=True) - self._ipc_before:
            subprocess.run(["ipcrm", f"-{kind}", ident], capture_output=True, check=False)
        for name in _posix_sems() - self._sems_before:
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / name).unlink()
