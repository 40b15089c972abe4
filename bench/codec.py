"""Bundle codec throughput: proxima against pyd3tn, side by side, on one 362-byte bundle.

Run: ``.venv/bin/python bench/codec.py [--seconds S] [--json]``

The bundle: ipn endpoint IDs, a primary block, a hop count block and a payload block, each with a
CRC-32C; the payload is sized so that proxima's encoding is exactly 362 bytes. pyd3tn's
``serialize_bundle7`` is given the same field values and must write the identical bytes.

To keep any per-bundle cache honest, every measurement cycles through a pool of distinct bundles
of that same shape and size (distinct sequence numbers and payload bytes); EIDs and the hop count
block are the same in all of them, as on a real link.

Measured (bundles per second, GC disabled while timing as ``timeit`` does):

* encode: proxima ``encode_bundle`` (validity checks on, CRCs computed) on prebuilt ``Bundle``
  values, against pyd3tn ``serialize_bundle7`` (builds its block objects from the arguments, then
  serializes with CRCs);
* decode: proxima ``decode_bundle`` (full validity checks, every CRC verified) against pyd3tn
  ``Bundle.parse`` (no CRC check at all);
* for reference only: pyd3tn ``bytes(Bundle)`` on prebuilt objects, and pyd3tn ``Bundle.parse``
  followed by ``calculate_crc()`` on every block (what a CRC check costs it).

Each measurement is warmed up, then timed in several repetitions; the figure reported is the
median repetition (the best is in the JSON output too). Targets: >= 100,000 decodes/s with CRC
checks and >= 100,000 encodes/s with CRCs.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pyd3tn import bundle7 as p7
from pyd3tn.helpers import DTN_EPOCH

import benchinfo
from proxima.bpv7 import (
    DTN_NONE,
    EID,
    Bundle,
    CRCType,
    PrimaryBlock,
    decode_bundle,
    encode_block,
    encode_bundle,
    encode_primary,
    hop_count_block,
    payload_block,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TARGET_SIZE = 362
TARGET_RATE = 100_000
POOL = 256

SOURCE = "ipn:1001.1"
DESTINATION = "ipn:2002.7"
LIFETIME_S = 86_400
CREATION_MS = 831_234_567_890  # 2026-05-04T18:29:27.890Z as DTN time (ms since 2000)
HOP_LIMIT = 32
FIRST_SEQUENCE = 1000  # 1000..1000+POOL-1 all take a 3-byte CBOR uint, so every bundle is 362 B


# ---------------------------------------------------------------------------------------------
# The bundles.


def proxima_bundle(sequence: int, payload: bytes) -> Bundle:
    primary = PrimaryBlock(
        destination=EID.parse(DESTINATION),
        source=EID.parse(SOURCE),
        report_to=DTN_NONE,
        creation_time=CREATION_MS,
        sequence=sequence,
        lifetime=LIFETIME_S * 1000,
        flags=0,
        crc_type=CRCType.CRC32C,
    )
    return Bundle(
        primary,
        (
            hop_count_block(HOP_LIMIT, 0, number=2, crc_type=CRCType.CRC32C),
            payload_block(payload, crc_type=CRCType.CRC32C),
        ),
    )


def pyd3tn_args(sequence: int, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of serialize_bundle7 for the same bundle (same block numbers and order)."""
    return (SOURCE, DESTINATION, payload), {
        "report_to_eid": "dtn:none",
        "crc_type_primary": p7.CRCType.CRC32,
        "creation_timestamp": DTN_EPOCH + timedelta(milliseconds=CREATION_MS),
        "sequence_number": sequence,
        "lifetime": LIFETIME_S,
        "hop_limit": HOP_LIMIT,
        "hop_count": 0,
        "crc_type_canonical": p7.CRCType.CRC32,
    }


def payload_length() -> int:
    """The payload length that makes proxima's encoding exactly TARGET_SIZE bytes."""
    for n in range(TARGET_SIZE):
        if len(encode_bundle(proxima_bundle(FIRST_SEQUENCE, bytes(n)))) == TARGET_SIZE:
            return n
    raise SystemExit(f"no payload length gives a {TARGET_SIZE}-byte bundle")


def payload_of(i: int, n: int) -> bytes:
    """``n`` payload bytes, different for every ``i`` of the pool."""
    return bytes((i * 31 + k * 7) & 0xFF for k in range(n))


# ---------------------------------------------------------------------------------------------
# Timing.


def measure(
    run: Callable[[], None], per_call: int, seconds: float, repeats: int
) -> dict[str, float]:
    """Bundles per second of ``run`` (which handles ``per_call`` bundles): warm up, calibrate a
    loop count for ``seconds / repeats`` per repetition, then time ``repeats`` repetitions."""
    # Warm-up and calibration: grow the loop until one pass takes >= 20 ms.
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            run()
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.02:
            break
        loops *= 2
    target = seconds / repeats
    loops = max(1, round(loops * target / elapsed))
    rates = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(loops):
                run()
            elapsed = time.perf_counter() - t0
            rates.append(loops * per_call / elapsed)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        "median": statistics.median(rates),
        "best": max(rates),
        "worst": min(rates),
        "repeats": repeats,
        "bundles_per_repeat": loops * per_call,
    }


def over(items: Sequence[Any], fn: Callable[[Any], Any]) -> Callable[[], None]:
    def run() -> None:
        for x in items:
            fn(x)

    return run


def over_star(
    items: Sequence[tuple[tuple[Any, ...], dict[str, Any]]], fn: Callable[..., Any]
) -> Callable[[], None]:
    def run() -> None:
        for args, kwargs in items:
            fn(*args, **kwargs)

    return run


def pyd3tn_parse_and_check(raw: bytes) -> None:
    b = p7.Bundle.parse(raw)
    for blk in b:
        if blk.crc_type != p7.CRCType.NONE and blk.calculate_crc() != blk.crc_provided:
            raise ValueError("CRC mismatch")


# ---------------------------------------------------------------------------------------------
# Machine description.


def machine() -> dict[str, Any]:
    return {
        **benchinfo.machine(),
        "cbor2": importlib.metadata.version("cbor2"),
        "cbor2_c_extension": importlib.util.find_spec("_cbor2") is not None,
        "fastcrc": importlib.metadata.version("fastcrc"),
        "pyd3tn": importlib.metadata.version("pyd3tn"),
    }


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="timed seconds per measurement, split over the repetitions (default 2.0; "
        "six measurements, so about 15 s in all)",
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions (default 5)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.repeats < 1:
        ap.error("--seconds must be > 0 and --repeats >= 1")

    n = payload_length()
    bundles = [proxima_bundle(FIRST_SEQUENCE + i, payload_of(i, n)) for i in range(POOL)]
    wires = [encode_bundle(b) for b in bundles]
    calls = [pyd3tn_args(FIRST_SEQUENCE + i, payload_of(i, n)) for i in range(POOL)]
    pyd3tn_wires = [p7.serialize_bundle7(*a, **kw) for a, kw in calls]
    pyd3tn_objects = [p7.create_bundle7(*a, **kw) for a, kw in calls]

    # Sanity: one size, identical bytes from both encoders, each decodes the other's output.
    assert {len(w) for w in wires} == {TARGET_SIZE}, {len(w) for w in wires}
    identical = wires == pyd3tn_wires
    assert all(decode_bundle(w) == b for w, b in zip(pyd3tn_wires, bundles, strict=True))
    for w in wires:
        pyd3tn_parse_and_check(w)

    b0 = bundles[0]
    composition = {
        "primary_block": len(encode_primary(b0.primary)),
        "hop_count_block": len(encode_block(b0.blocks[0])),
        "payload_block": len(encode_block(b0.blocks[1])),
        "payload_bytes": n,
        "array_head_and_break": 2,
        "total": len(wires[0]),
    }

    per = args.seconds
    reps = args.repeats
    results = {
        "encode": {
            "proxima encode_bundle": measure(over(bundles, encode_bundle), POOL, per, reps),
            "pyd3tn serialize_bundle7": measure(
                over_star(calls, p7.serialize_bundle7), POOL, per, reps
            ),
        },
        "decode": {
            "proxima decode_bundle (CRCs verified)": measure(
                over(wires, decode_bundle), POOL, per, reps
            ),
            "pyd3tn Bundle.parse (no CRC check)": measure(
                over(wires, p7.Bundle.parse), POOL, per, reps
            ),
        },
        "reference": {
            "pyd3tn bytes(Bundle) on prebuilt objects": measure(
                over(pyd3tn_objects, bytes), POOL, per, reps
            ),
            "pyd3tn Bundle.parse + calculate_crc on every block": measure(
                over(wires, pyd3tn_parse_and_check), POOL, per, reps
            ),
        },
    }
    enc = results["encode"]["proxima encode_bundle"]["median"]
    dec = results["decode"]["proxima decode_bundle (CRCs verified)"]["median"]
    pyd3tn_enc = results["encode"]["pyd3tn serialize_bundle7"]["median"]
    pyd3tn_dec = results["decode"]["pyd3tn Bundle.parse (no CRC check)"]["median"]
    summary = {
        "encode_ratio_proxima_over_pyd3tn": enc / pyd3tn_enc,
        "decode_ratio_proxima_over_pyd3tn": dec / pyd3tn_dec,
        "encode_target": TARGET_RATE,
        "decode_target": TARGET_RATE,
        "encode_pass": enc >= TARGET_RATE,
        "decode_pass": dec >= TARGET_RATE,
    }
    report = {
        "bundle": {
            "size": TARGET_SIZE,
            "source": SOURCE,
            "destination": DESTINATION,
            "report_to": "dtn:none",
            "blocks": "primary (CRC-32C) + hop count (CRC-32C) + payload (CRC-32C)",
            "composition_bytes": composition,
            "pool_of_distinct_bundles": POOL,
            "pyd3tn_bytes_identical": identical,
        },
        "statistic": "median of repetitions (bundles/s)",
        "seconds_per_measurement": per,
        "results": results,
        "summary": summary,
        "machine": machine(),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(report)
    if args.check and not (summary["encode_pass"] and summary["decode_pass"]):
        return 1
    return 0


def print_report(r: dict[str, Any]) -> None:
    m = r["machine"]
    c = r["bundle"]["composition_bytes"]
    print(
        f"Machine: {m['cpu_model']}, nproc {m['nproc']}, Python {m['python']}, "
        f"cbor2 {m['cbor2']} (C extension: {'yes' if m['cbor2_c_extension'] else 'no'}), "
        f"fastcrc {m['fastcrc']}, pyd3tn {m['pyd3tn']}; proxima cores {m['proxima_cores']}"
    )
    print(f"Bundle: {r['bundle']['size']} bytes, {r['bundle']['source']} -> "
          f"{r['bundle']['destination']}, report-to {r['bundle']['report_to']}")
    print(
        f"  = 2 (0x9f ... 0xff) + primary {c['primary_block']}"
        f" + hop count {c['hop_count_block']} + payload block {c['payload_block']}"
        f" ({c['payload_bytes']} payload bytes); CRC-32C on every block"
    )
    print(f"  pyd3tn serialize_bundle7 writes identical bytes: "
          f"{'yes' if r['bundle']['pyd3tn_bytes_identical'] else 'NO'}")
    print(f"  pool of {r['bundle']['pool_of_distinct_bundles']} distinct bundles; "
          f"{r['seconds_per_measurement']:g} s per measurement; figures are the "
          f"{r['statistic']}")
    print()
    width = 52
    for section, rows in r["results"].items():
        print(f"{section}:")
        for name, res in rows.items():
            print(f"  {name:<{width}} {res['median']:>12,.0f} /s   (best {res['best']:,.0f})")
    s = r["summary"]
    print()
    print(f"encode ratio proxima/pyd3tn: {s['encode_ratio_proxima_over_pyd3tn']:.1f}x")
    print(
        f"decode ratio proxima/pyd3tn: {s['decode_ratio_proxima_over_pyd3tn']:.1f}x "
        "(proxima verifies CRCs, pyd3tn does not)"
    )
    enc = r["results"]["encode"]["proxima encode_bundle"]["median"]
    dec = r["results"]["decode"]["proxima decode_bundle (CRCs verified)"]["median"]
    print(f"target encode >= {s['encode_target']:,}/s with CRCs: "
          f"{'PASS' if s['encode_pass'] else 'FAIL'} ({enc:,.0f}/s)")
    print(f"target decode >= {s['decode_target']:,}/s with CRC checks: "
          f"{'PASS' if s['decode_pass'] else 'FAIL'} ({dec:,.0f}/s)")


if __name__ == "__main__":
    sys.exit(main())
