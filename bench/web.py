"""Load on the public endpoints: the station's position and the passes for a place.

Starts ``proxima web`` in its own process (one uvicorn worker, SQLite, the shipped elements, a
mission clock a day after their epoch), then runs wrk (Debian's package) against
``/api/station`` and ``/api/passes?place=...`` and prints requests per second and latency
percentiles beside the target (at least 500 requests/s with p99 under 100 ms), as ratios.

    python bench/web.py [--seconds 10] [--connections 64] [--json]

The load generator runs on the same 2 cores as the server, so the figures are what this machine
can serve while also producing the load.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchinfo import machine

TARGET_RPS = 500.0
TARGET_P99_MS = 100.0
PLACES = ["Paris", "Toulouse", "Cologne", "Houston", "Tokyo", "Moscow", "Kourou", "Sydney"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if m is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    """Run wrk against ``url``; requests/s and latency percentiles in ms."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": pct["50"],
        "p90_ms": pct["90"],
        "p99_ms": pct["99"],
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 0.0
        if errors is None
        else float(sum(int(n) for n in re.findall(r"\d+", errors.group(1)))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="proxima-bench-web-") as tmp:
        work = Path(tmp)
        (work / "keys").mkdir()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from proxima.runtime.keys import save_public_key

        save_public_key(Ed25519PrivateKey.generate().public_key(), work / "keys" / "thomas.pub")
        port = _port()
        (work / "ground.toml").write_text(
            f'database = "sqlite:///ground.db"\nkeyring = "keys"\n[http]\nport = {port}\n'
            '[clock]\nstart = "2026-03-12T18:00:00Z"\n[[channel]]\nkind = "atom"\n'
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "proxima", "web", "--config", str(work / "ground.toml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/station", timeout=5).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        err = server.stderr.read().decode() if server.stderr else ""
                        print(f"the web server did not start: {err}", file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            for place in PLACES:  # the pass search runs once per place and hour; warm it as a site would
                urllib.request.urlopen(f"{base}/api/passes?place={place}", timeout=30).read()
            results: dict[str, Any] = {
                "station": wrk(f"{base}/api/station", args.seconds, args.connections),
                "passes_paris": wrk(f"{base}/api/passes?place=Paris", args.seconds, args.connections),
            }
        finally:
            server.terminate()
            server.wait(30)
    report = {
        "machine": machine(),
        "target": {"rps": TARGET_RPS, "p99_ms": TARGET_P99_MS},
        "connections": args.connections,
        "seconds": args.seconds,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']['cpu_model']} ({report['machine']['nproc']} cores)")
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, one uvicorn worker, wrk on the same cores")
    head = ("endpoint", "req/s", "× target", "p50 ms", "p99 ms", "target/p99", "non-2xx")
    print(f"{head[0]:<14} {head[1]:>9} {head[2]:>9} {head[3]:>8} {head[4]:>8} {head[5]:>10} {head[6]:>8}")
    for name, r in results.items():
        ratio, margin = r["rps"] / TARGET_RPS, TARGET_P99_MS / r["p99_ms"]
        print(
            f"{name:<14} {r['rps']:>9.0f} {ratio:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{margin:>10.1f} {r['non_2xx']:>8.0f}"
        )
    ok = all(
        r["rps"] >= TARGET_RPS and r["p99_ms"] < TARGET_P99_MS and r["non_2xx"] == 0 for r in results.values()
    )
    print("PASS" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
