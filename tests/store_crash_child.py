"""Child process of the store crash test (tests/test_store.py): killed with SIGKILL at random.

Usage: ``python store_crash_child.py DB SEED``. Opens the store, prints ``ready``, then loops:
prints ``rm? SEQ`` for each bundle it is about to remove, runs one batch (adds 1-20 bundles,
some large enough for a payload file, and removes those), and only after the batch committed
prints ``add SEQ`` and ``del SEQ``. A line printed is therefore an acknowledgement. Prints
``dup SEQ`` and exits 3 if the store calls a fresh bundle a duplicate (a reused sequence
number). Each bundle's content is a function of its sequence number: see :func:`make_bundle`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from proxima.bpv7.bundle import Bundle, PrimaryBlock, age_block, payload_block
from proxima.bpv7.eid import IpnEID
from proxima.runtime.store import BundleStore

SOURCE = IpnEID(7, 1)
DESTINATION = IpnEID(9, 1)
CREATION_TIME = 800_000_000_000  # fixed, so that every bundle takes the next sequence number
EXPIRY_MS = 900_000_000_000
LARGE_THRESHOLD = 4096
SIZES = (10, 300, 2_000, 5_000, 20_000)


def make_bundle(seq: int) -> Bundle:
    """The bundle with this sequence number: its payload is derived from ``seq``."""
    size = SIZES[seq % len(SIZES)]
    payload = random.Random(seq).randbytes(size)
    primary = PrimaryBlock(
        destination=DESTINATION, source=SOURCE, creation_time=CREATION_TIME, sequence=seq, lifetime=100_000
    )
    return Bundle(primary, (age_block(0, number=2), payload_block(payload)))


def main() -> int:
    db, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    store = BundleStore(db, quota_bytes=None, large_threshold=LARGE_THRESHOLD)
    candidates = [(b.store_id, b.identity[2]) for b in store.pending(state=None)]
    print("ready", flush=True)
    while True:
        removing = []
        crowded = len(candidates) > 300  # keep the store small: remove more when it grows
        if candidates and rng.random() < (0.9 if crowded else 0.4):
            for _ in range(rng.randint(1, min(30 if crowded else 5, len(candidates)))):
                removing.append(candidates.pop(rng.randrange(len(candidates))))
            print("".join(f"rm? {seq}\n" for _, seq in removing), end="", flush=True)
        added = []
        with store.batch():
            for _ in range(rng.randint(1, 20)):
                time, seq = store.next_creation_stamp(CREATION_TIME)
                if time != CREATION_TIME:
                    print(f"bad stamp {time}", flush=True)
                    return 4
                stored = store.add(make_bundle(seq), expiry_ms=EXPIRY_MS, klass=seq % 3)
                if stored is None:
                    print(f"dup {seq}", flush=True)
                    return 3
                added.append((stored.store_id, seq))
            for store_id, _ in removing:
                store.remove(store_id, "forwarded")
        candidates.extend(added)
        lines = [f"add {seq}\n" for _, seq in added] + [f"del {seq}\n" for _, seq in removing]
        print("".join(lines), end="", flush=True)


if __name__ == "__main__":
    sys.exit(main())
