"""The persistent bundle store (proxima.runtime.store): SQLite in WAL mode, large bundles in files."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle as Handles
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from proxima.bpv7.bundle import (
    Bundle,
    BundleFlag,
    PrimaryBlock,
    age_block,
    decode_bundle,
    encode_bundle,
    payload_block,
)
from proxima.bpv7.eid import EID, DtnEID, IpnEID
from proxima.errors import LocalError, StoreError
from proxima.runtime.store import (
    BundleState,
    BundleStore,
    BundleWriter,
    RemoveReason,
    StoredBundle,
)
from proxima.speedups import compiled
from store_crash_child import LARGE_THRESHOLD, make_bundle
from strategies import bundles

STORE_COMPILED = compiled()["proxima.runtime.store"]

SRC = IpnEID(1, 1)
DST = IpnEID(2, 1)
T0 = 800_000_000_000
FAR = 900_000_000_000
HERE = Path(__file__).parent


def make(
    seq: int, size: int = 100, *, source: EID = SRC, dest: EID = DST, fragment: int | None = None
) -> Bundle:
    """A valid bundle with this sequence number and a payload of ``size`` bytes derived from it."""
    payload = random.Random(seq).randbytes(size)
    flags = 0
    offset = total = None
    if fragment is not None:
        flags, offset, total = int(BundleFlag.IS_FRAGMENT), fragment, fragment + size + 10
    primary = PrimaryBlock(
        destination=dest,
        source=source,
        creation_time=T0,
        sequence=seq,
        lifetime=60_000,
        flags=flags,
        fragment_offset=offset,
        total_adu_length=total,
    )
    return Bundle(primary, (age_block(0, number=2), payload_block(payload)))


def open_store(path: Path, **kwargs: object) -> BundleStore:
    kwargs.setdefault("quota_bytes", None)
    return BundleStore(path / "store.db", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BundleStore]:
    s = open_store(tmp_path)
    yield s
    s.close()


def open_writer(store: BundleStore, **kwargs: object) -> BundleWriter:
    writer = store.open_writer(**kwargs)  # type: ignore[arg-type]
    assert writer is not None
    return writer


def payload_files(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path / "payloads"))


# ---------------------------------------------------------------------------------------------
# Adding, reading, duplicates


def test_add_then_get_returns_the_encoding(store: BundleStore) -> None:
    b = make(1)
    stored = store.add(b, expiry_ms=FAR, klass=2, next_hop=IpnEID(3, 0), received_ms=5)
    assert isinstance(stored, StoredBundle)
    assert stored.identity == b.id
    assert stored.destination == DST
    assert (stored.expiry_ms, stored.klass, stored.next_hop, stored.state) == (FAR, 2, "ipn:3.0", "pending")
    assert stored.size == len(encode_bundle(b))
    assert stored.received_ms == 5
    assert not stored.in_file
    assert store.get(stored.store_id) == encode_bundle(b)
    assert decode_bundle(store.get(stored.store_id)) == b
    assert store.info(stored.store_id) == stored
    assert store.find(b.id) == stored
    assert len(store) == 1
    assert store.bytes_stored == stored.size


def test_add_bytes_with_and_without_identity(store: BundleStore) -> None:
    data = encode_bundle(make(1))
    given_id = store.add(data, identity=make(1).id, destination=DST, expiry_ms=FAR)
    decoded = store.add(encode_bundle(make(2)), expiry_ms=FAR)  # identity read from the bytes
    assert given_id is not None and decoded is not None
    assert decoded.identity == make(2).id and decoded.destination == DST
    assert store.get(given_id.store_id) == data


def test_duplicates_are_refused(store: BundleStore) -> None:
    first = store.add(make(1), expiry_ms=FAR)
    assert first is not None
    assert store.add(make(1), expiry_ms=FAR) is None
    assert store.add(encode_bundle(make(1)), identity=make(1).id, destination=DST, expiry_ms=FAR) is None
    assert len(store) == 1
    assert store.is_known(make(1).id)
    assert not store.is_known(make(2).id)


def test_delivered_bundles_stay_known_until_they_expire(store: BundleStore) -> None:
    stored = store.add(make(1), expiry_ms=T0 + 1000)
    assert stored is not None
    assert store.remove(stored.store_id, RemoveReason.DELIVERED)
    assert store.is_known(make(1).id)
    assert store.add(make(1), expiry_ms=T0 + 1000) is None
    store.mark_delivered(make(2).id, T0 + 2000)
    assert store.add(make(2), expiry_ms=T0 + 2000) is None
    store.expire(T0 + 1500)
    assert not store.is_known(make(1).id)
    assert store.is_known(make(2).id)
    assert store.add(make(1), expiry_ms=T0 + 5000) is not None


def test_forwarded_bundles_are_forgotten_unless_asked(store: BundleStore) -> None:
    a = store.add(make(1), expiry_ms=FAR)
    b = store.add(make(2), expiry_ms=FAR)
    assert a is not None and b is not None
    store.remove(a.store_id, "forwarded")
    store.remove(b.store_id, "forwarded", remember=True)
    assert not store.is_known(make(1).id)
    assert store.is_known(make(2).id)


def test_fragments_and_whole_bundles_are_distinct(store: BundleStore) -> None:
    whole = make(1, 50)
    frag_a = make(1, 50, fragment=0)
    frag_b = make(1, 50, fragment=50)
    frag_c = make(1, 60, fragment=0)  # same offset, another length
    for b in (whole, frag_a, frag_b, frag_c):
        stored = store.add(b, expiry_ms=FAR)
        assert stored is not None and stored.identity == b.id
    assert store.add(frag_b, expiry_ms=FAR) is None
    assert len(store) == 4


def test_extreme_identity_values_round_trip(store: BundleStore) -> None:
    top = (1 << 64) - 1
    identity = (DtnEID("//node/app"), top, top, top, 5)
    stored = store.add(encode_bundle(make(1)), identity=identity, destination=DST, expiry_ms=top)
    assert stored is not None
    assert stored.identity == identity
    assert store.find(identity) == stored
    assert store.is_known(identity)
    assert not store.is_known((DtnEID("//node/app"), top, top, None, None))
    assert store.pending()[0].expiry_ms == (1 << 63) - 1  # clamped to SQLite's range


@pytest.mark.parametrize(
    "identity",
    [
        None,
        (SRC, 1, 2),
        ("ipn:1.1", 1, 2, None, None),
        (SRC, -1, 2, None, None),
        (SRC, 1, 1 << 64, None, None),
        (SRC, 1, 2, 5, None),
        (SRC, 1, 2, None, 5),
        (SRC, 1, 2, 0, -1),
    ],
)
def test_malformed_identities_are_refused(store: BundleStore, identity: object) -> None:
    """The compiled store refuses what is not an identity tuple where it reads the argument
    (a TypeError); a tuple of the right shape with bad values, or the Python store, a StoreError."""
    shaped = isinstance(identity, tuple) and len(identity) == 5
    with pytest.raises(StoreError if shaped or not STORE_COMPILED else (StoreError, TypeError)):
        store.is_known(identity)  # type: ignore[arg-type]


def test_bad_arguments_are_refused(store: BundleStore) -> None:
    with pytest.raises(StoreError, match="state"):
        store.add(make(1), expiry_ms=FAR, state="flying")
    # The compiled store refuses a float where it reads an int (a TypeError), the Python one
    # names the argument.
    refused, named = (TypeError, "int") if STORE_COMPILED else (StoreError, "expiry_ms")
    with pytest.raises(refused, match=named):
        store.add(make(1), expiry_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="next hop"):
        store.add(make(1), expiry_ms=FAR, next_hop=7)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="reason"):
        store.remove(1, "lost")
    with pytest.raises(StoreError, match="no bundle"):
        store.get(99)
    assert len(store) == 0
    assert store.info(99) is None
    assert not store.remove(99, "forwarded")
    assert not store.set_state(99, "forwarding")
    with pytest.raises(StoreError):
        BundleStore(Path("unused.db"), quota_bytes=-1)


def test_hypothesis_bundles_round_trip(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=300) as store:

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(b=bundles())
        def check(b: Bundle) -> None:
            data = encode_bundle(b)
            stored = store.add(b, expiry_ms=FAR)
            if stored is None:  # the strategy drew an identity already stored
                assert store.is_known(b.id)
                return
            assert stored.identity == b.id
            assert stored.in_file == (len(data) > 300)
            assert store.get(stored.store_id) == data
            with store.open_reader(stored.store_id) as reader:
                assert reader.read() == data
            assert decode_bundle(store.get(stored.store_id)) == b
            assert store.find(b.id) == stored

        check()


# ---------------------------------------------------------------------------------------------
# Queues: pending order, states, next hops


def test_pending_is_highest_class_first_then_oldest(store: BundleStore) -> None:
    plan = [(1, 0, 30), (2, 2, 50), (3, 1, 10), (4, 2, 20), (5, 0, 10), (6, 2, 20)]
    ids = {}
    for seq, klass, received in plan:
        stored = store.add(make(seq), expiry_ms=FAR, klass=klass, received_ms=received)
        assert stored is not None
        ids[seq] = stored.store_id
    order = [b.identity[2] for b in store.pending()]
    assert order == [4, 6, 2, 3, 5, 1]  # class 2 by age (4 and 6 tie: older id first), class 1, class 0
    assert [b.identity[2] for b in store.pending(limit=2)] == [4, 6]
    assert store.pending(limit=0) == []


def test_pending_filters_by_next_hop_and_state(store: BundleStore) -> None:
    hop_a, hop_b = IpnEID(10, 0), "tcpcl://relay:4556"
    a1 = store.add(make(1), expiry_ms=FAR, next_hop=hop_a)
    a2 = store.add(make(2), expiry_ms=FAR, next_hop=hop_a, klass=1)
    b1 = store.add(make(3), expiry_ms=FAR, next_hop=hop_b)
    n1 = store.add(make(4), expiry_ms=FAR)
    d1 = store.add(make(5), expiry_ms=FAR, state=BundleState.DELIVERING)
    assert a1 and a2 and b1 and n1 and d1
    assert [b.store_id for b in store.pending(hop_a)] == [a2.store_id, a1.store_id]
    assert [b.store_id for b in store.pending("ipn:10.0")] == [a2.store_id, a1.store_id]
    assert [b.store_id for b in store.pending(hop_b)] == [b1.store_id]
    assert [b.store_id for b in store.pending(unrouted=True)] == [n1.store_id]
    assert {b.store_id for b in store.pending()} == {a1.store_id, a2.store_id, b1.store_id, n1.store_id}
    assert [b.store_id for b in store.pending(state="delivering")] == [d1.store_id]
    assert len(store.pending(state=None)) == 5

    assert store.set_state(a2.store_id, BundleState.FORWARDING)
    assert [b.store_id for b in store.pending(hop_a)] == [a1.store_id]
    assert [b.store_id for b in store.pending(hop_a, state="forwarding")] == [a2.store_id]
    assert store.set_next_hop(n1.store_id, hop_b, state="forwarding")
    assert store.set_next_hop(b1.store_id, None)
    assert [b.store_id for b in store.pending(unrouted=True)] == [b1.store_id]
    info = store.info(n1.store_id)
    assert info is not None and (info.next_hop, info.state) == (hop_b, "forwarding")

    # A link went down: what was in flight for it waits again.
    assert store.requeue(hop_a) == 1
    assert store.requeue() == 1
    assert store.pending(state="forwarding") == []


def test_stats(store: BundleStore) -> None:
    store.add(make(1), expiry_ms=FAR, next_hop="x")
    store.add(make(2), expiry_ms=FAR, next_hop="x", state="forwarding")
    store.add(make(3, 70_000), expiry_ms=FAR)
    c = store.add(make(4), expiry_ms=FAR, state="reassembling")
    assert c is not None
    store.remove(c.store_id, "reassembled")
    stats = store.stats()
    assert stats.count == 3 == len(store)
    assert stats.bytes == sum(len(encode_bundle(make(s, n))) for s, n in ((1, 100), (2, 100), (3, 70_000)))
    assert stats.by_state == {"pending": 2, "forwarding": 1}
    assert stats.by_next_hop == {"x": 2, None: 1}
    assert stats.files == 1
    assert stats.removed == {"reassembled": 1}
    assert stats.quota_bytes is None


# ---------------------------------------------------------------------------------------------
# Removal and expiry


def test_remove(store: BundleStore) -> None:
    a = store.add(make(1), expiry_ms=FAR)
    assert a is not None
    assert store.remove(a.store_id, "forwarded")
    assert not store.remove(a.store_id, "forwarded")
    assert len(store) == 0 and store.bytes_stored == 0
    with pytest.raises(StoreError, match="no bundle"):
        store.get(a.store_id)


def test_expire_removes_what_expired(store: BundleStore, tmp_path: Path) -> None:
    early = store.add(make(1), expiry_ms=T0 + 10)
    exact = store.add(make(2), expiry_ms=T0 + 20)
    big = store.add(make(3, 100_000), expiry_ms=T0 + 5)
    late = store.add(make(4), expiry_ms=T0 + 30)
    assert early and exact and big and late and big.in_file
    assert store.expire(T0) == []
    assert store.expire(T0 + 20) == sorted([early.store_id, exact.store_id, big.store_id])
    assert [b.store_id for b in store.pending(state=None)] == [late.store_id]
    assert payload_files(tmp_path) == []
    assert store.stats().removed == {"expired": 3}


def test_store_ids_are_never_reused(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        a = store.add(make(1), expiry_ms=FAR)
        b = store.add(make(2), expiry_ms=FAR)
        assert a and b
        store.remove(b.store_id, "forwarded")
        c = store.add(make(3), expiry_ms=FAR)
        assert c and c.store_id > b.store_id
        store.remove(c.store_id, "forwarded")
    with open_store(tmp_path) as store:
        d = store.add(make(4), expiry_ms=FAR)
        assert d and d.store_id > c.store_id


def test_most_commits_leave_the_counters_alone(tmp_path: Path) -> None:
    """Store ids are reserved in blocks and removal statistics written at most once a second
    (and at close): a commit adding and removing bundles then writes only their rows. Neither
    shortcut ever lets an id come back, and the statistics are all there after a close."""
    db = tmp_path / "store.db"

    def stored_counters() -> dict[str, int]:
        with sqlite3.connect(db) as conn:
            return dict(conn.execute("SELECT name, value FROM counters").fetchall())

    with open_store(tmp_path) as store:
        first = store.add(make(1), expiry_ms=FAR)
        assert first is not None
        reserved = stored_counters()["store.last_id"]
        assert reserved > first.store_id  # a block, not the id itself
        for i in range(2, 12):
            added = store.add(make(i), expiry_ms=FAR)
            assert added is not None
            store.remove(added.store_id, "forwarded")
        assert stored_counters()["store.last_id"] == reserved  # not written again
        assert store.stats().removed == {"forwarded": 10}  # counted in memory at once
        assert stored_counters().get("removed.forwarded", 0) < 10  # written later
    assert stored_counters()["removed.forwarded"] == 10  # written at close
    with open_store(tmp_path) as store:
        assert store.stats().removed == {"forwarded": 10}
        later = store.add(make(99), expiry_ms=FAR)
        assert later is not None and later.store_id > reserved


def test_expiry_needs_no_index_and_old_stores_lose_theirs(tmp_path: Path) -> None:
    """Expiry times are kept in memory: a store made with the indexes on them drops them at
    open (one page fewer per commit), and bundles and known identities still expire."""
    with open_store(tmp_path) as store:
        pass
    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("CREATE INDEX bundles_by_expiry ON bundles (expiry_ms)")
        conn.execute("CREATE INDEX known_by_expiry ON known (expiry_ms)")
    with open_store(tmp_path) as store:
        short = store.add(make(1), expiry_ms=1_000)
        long = store.add(make(2), expiry_ms=FAR)
        assert short is not None and long is not None
        store.mark_delivered(make(3).id, 2_000)
        assert store.expire(999) == []
        assert store.expire(1_500) == [short.store_id]
        assert store.is_known(make(3).id)
        store.expire(2_000)
        assert not store.is_known(make(3).id) and store.has(long.store_id)
    with sqlite3.connect(tmp_path / "store.db") as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not indexes & {"bundles_by_expiry", "known_by_expiry"}
        assert conn.execute("SELECT count(*) FROM known").fetchone() == (0,)
    with open_store(tmp_path) as store:
        assert not store.is_known(make(3).id) and store.has(long.store_id)


# ---------------------------------------------------------------------------------------------
# Quota


def test_quota_refuses_without_disturbing(tmp_path: Path) -> None:
    one = len(encode_bundle(make(1)))
    with open_store(tmp_path, quota_bytes=3 * one, large_threshold=one // 2) as store:
        ids = [store.add(make(i), expiry_ms=FAR) for i in range(3)]
        assert all(ids)
        before = (store.stats(), payload_files(tmp_path))
        with pytest.raises(StoreError) as info:
            store.add(make(9), expiry_ms=FAR)
        assert info.value.reason == 4  # depleted storage
        assert isinstance(info.value, LocalError)
        assert (store.stats(), payload_files(tmp_path)) == before
        # A duplicate is still a duplicate when the store is full.
        assert store.add(make(1), expiry_ms=FAR) is None
        # Inside a batch the refusal leaves the rest of the batch alone.
        with store.batch():
            store.remove(ids[0].store_id, "forwarded")  # type: ignore[union-attr]
            assert store.add(make(10), expiry_ms=FAR) is not None
            with pytest.raises(StoreError):
                store.add(make(11), expiry_ms=FAR)
        assert len(store) == 3
        assert store.find(make(10).id) is not None


def test_quota_counts_streams_in_progress(tmp_path: Path) -> None:
    with open_store(tmp_path, quota_bytes=10_000, large_threshold=1000) as store:
        writer = open_writer(store, expiry_ms=FAR, expected_size=8_000)
        with pytest.raises(StoreError) as info:
            store.add(make(1, 3000), expiry_ms=FAR)
        assert info.value.reason == 4
        writer.abort()
        assert store.add(make(1, 3000), expiry_ms=FAR) is not None
        with pytest.raises(StoreError) as info:
            open_writer(store, expiry_ms=FAR, expected_size=8_000)
        assert info.value.reason == 4


# ---------------------------------------------------------------------------------------------
# Batches and deferred commits


def test_batch_commits_once_at_the_end(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        raw = sqlite3.connect(tmp_path / "store.db")
        try:
            with store.batch():
                for i in range(50):
                    store.add(make(i), expiry_ms=FAR)
                assert store.in_transaction
                assert raw.execute("SELECT count(*) FROM bundles").fetchone() == (0,)
            assert not store.in_transaction
            assert raw.execute("SELECT count(*) FROM bundles").fetchone() == (50,)
        finally:
            raw.close()


def test_batch_rolls_back_when_it_raises(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=500) as store:
        kept = store.add(make(1, 2000), expiry_ms=FAR)
        assert kept is not None
        files = payload_files(tmp_path)
        before = store.stats()

        def work() -> None:
            with store.batch():
                store.add(make(2, 2000), expiry_ms=FAR)
                store.add(make(3), expiry_ms=FAR)
                store.remove(kept.store_id, "forwarded")
                store.set_counter("x", 5)
                with store.batch():  # nested: joins the outer one
                    store.add(make(4), expiry_ms=FAR)
                raise RuntimeError

        with pytest.raises(RuntimeError):
            work()
        assert store.stats() == before
        assert payload_files(tmp_path) == files
        assert store.counter("x") == 0
        assert store.get(kept.store_id) == encode_bundle(make(1, 2000))
        assert store.add(make(2, 2000), expiry_ms=FAR) is not None


def test_removed_file_goes_only_after_commit(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=500) as store:
        a = store.add(make(1, 2000), expiry_ms=FAR)
        assert a is not None
        with store.batch():
            store.remove(a.store_id, "forwarded")
            assert len(payload_files(tmp_path)) == 1  # the row's deletion is not durable yet
        assert payload_files(tmp_path) == []


def test_large_payload_files_are_deleted_by_a_thread_of_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a large file's blocks takes the file system tenths of a second: the commit that
    removes its bundle returns without waiting for it, and close() waits for every deletion."""

    deleted_by: dict[str, str] = {}
    release = threading.Event()
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        deleted_by[os.path.basename(path)] = threading.current_thread().name
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    store = open_store(tmp_path, large_threshold=500)
    store._delete_away_from = 10_000
    try:
        small = store.add(make(1, 2000), expiry_ms=FAR)
        large = store.add(make(2, 20_000), expiry_ms=FAR)
        assert small is not None and large is not None
        small_file, large_file = ((store.file_of(a.store_id) or (Path(), 0))[0].name for a in (small, large))
        with store.batch():
            store.remove(small.store_id, "forwarded")
            store.remove(large.store_id, "forwarded")
        assert payload_files(tmp_path) == [large_file]  # its deletion waits in the thread
        assert deleted_by[small_file] == threading.main_thread().name
        deadline = time.monotonic() + 10
        while large_file not in deleted_by and time.monotonic() < deadline:
            time.sleep(0.001)  # the thread may not have reached its unlink yet
        assert deleted_by[large_file].startswith("delete payloads")
        release.set()
    finally:
        release.set()
        store.close()
    assert payload_files(tmp_path) == []


def test_deferred_mode_commits_on_flush(tmp_path: Path) -> None:
    with open_store(tmp_path, autocommit=False) as store:
        raw = sqlite3.connect(tmp_path / "store.db")
        try:
            store.add(make(1), expiry_ms=FAR)
            store.add(make(2), expiry_ms=FAR)
            assert store.in_transaction
            assert raw.execute("SELECT count(*) FROM bundles").fetchone() == (0,)
            store.flush()
            assert raw.execute("SELECT count(*) FROM bundles").fetchone() == (2,)
            store.add(make(3), expiry_ms=FAR)
        finally:
            raw.close()
    with open_store(tmp_path) as store:  # close committed what waited
        assert len(store) == 3


def test_threads_share_a_store(store: BundleStore) -> None:
    def work(base: int) -> None:
        for i in range(50):
            with store.batch():
                store.add(make(base + i), expiry_ms=FAR)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 200


# ---------------------------------------------------------------------------------------------
# Restart


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=1000) as store:
        small = store.add(make(1), expiry_ms=FAR, klass=3, next_hop="ipn:5.0", received_ms=7)
        large = store.add(make(2, 5000), expiry_ms=FAR + 1, state="delivering")
        store.mark_delivered(make(3).id, FAR)
        store.set_counter("bundles.received", 42)
        stamp = store.next_creation_stamp(T0)
        stats = store.stats()
    with open_store(tmp_path, large_threshold=1000) as store:
        assert store.problems == []
        assert store.info(small.store_id) == small  # type: ignore[union-attr]
        assert store.info(large.store_id) == large  # type: ignore[union-attr]
        assert store.get(large.store_id) == encode_bundle(make(2, 5000))  # type: ignore[union-attr]
        assert store.is_known(make(3).id)
        assert store.counter("bundles.received") == 42
        assert store.next_creation_stamp(T0) == (stamp[0], stamp[1] + 1)
        assert store.stats() == stats


def test_creation_stamps_never_repeat(tmp_path: Path) -> None:
    seen = set()
    for now in (T0, T0, T0 - 5, T0 + 10, 0):  # the clock stands still, goes back, jumps, is lost
        with open_store(tmp_path) as store:
            for _ in range(3):
                stamp = store.next_creation_stamp(now)
                assert stamp not in seen
                assert stamp[0] >= max((s[0] for s in seen), default=0)
                seen.add(stamp)
    assert (T0 + 10, 0) in seen


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        with pytest.raises(StoreError, match="already open"):
            open_store(tmp_path)
        # Another database in the same directory would share payloads/: refused too.
        with pytest.raises(StoreError, match="one store per directory"):
            BundleStore(tmp_path / "other.db", quota_bytes=None)
    finally:
        store.close()
    open_store(tmp_path).close()


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.add(make(1), expiry_ms=FAR)
    with pytest.raises(StoreError, match="closed"):
        store.pending()


# ---------------------------------------------------------------------------------------------
# Large bundles: files, streams


def test_large_bundles_go_to_files_and_come_back_identical(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:  # default threshold: 64 KiB
        small = store.add(make(1, 60_000), expiry_ms=FAR)
        large = store.add(make(2, 300_000), expiry_ms=FAR)
        assert small is not None and not small.in_file
        assert large is not None and large.in_file
        files = payload_files(tmp_path)
        assert len(files) == 1
        data = encode_bundle(make(2, 300_000))
        assert (tmp_path / "payloads" / files[0]).read_bytes() == data
        assert store.get(large.store_id) == data
        with store.open_reader(large.store_id) as reader:
            chunks = iter(lambda: reader.read(7000), b"")
            assert b"".join(chunks) == data
        # A reader opened before removal still reads the whole bundle.
        reader = store.open_reader(large.store_id)
        store.remove(large.store_id, "forwarded")
        assert payload_files(tmp_path) == []
        with reader:
            assert reader.read() == data


def test_streamed_bundle_never_sits_in_memory(tmp_path: Path) -> None:
    b = make(1, 8_000_000)
    data = encode_bundle(b)
    with open_store(tmp_path) as store:
        view = memoryview(data)
        tracemalloc.start()
        try:
            writer = open_writer(store, expiry_ms=FAR, klass=1, expected_size=len(data))
            for i in range(0, len(data), 65_536):
                writer.write(view[i : i + 65_536])
            stored = writer.commit(identity=b.id, destination=DST)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000, peak
        assert stored is not None and stored.in_file and stored.size == len(data) and stored.klass == 1
        digest = hashlib.sha256()
        with store.open_reader(stored.store_id) as reader:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
        assert digest.digest() == hashlib.sha256(data).digest()
    with open_store(tmp_path) as store:
        assert decode_bundle(store.get(stored.store_id)) == b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 3000), cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_streamed_bundle_in_any_pieces_is_stored_whole(tmp_path: Path, size: int, cuts: list[int]) -> None:
    """Whatever the pieces, the stored bytes are the bundle's, in a file exactly when it is
    larger than the threshold."""
    b = make(size + 1, size)
    data = encode_bundle(b)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    with tempfile.TemporaryDirectory(dir=tmp_path) as d, open_store(Path(d), large_threshold=1000) as store:
        writer = open_writer(store, expiry_ms=FAR, identity=b.id, destination=DST)
        for lo, hi in itertools.pairwise(bounds):
            writer.write(data[lo:hi])
        stored = writer.commit()
        assert stored is not None and stored.in_file == (len(data) > 1000)
        assert store.get(stored.store_id) == data


def test_one_large_piece_goes_to_the_file_without_a_copy(tmp_path: Path) -> None:
    b = make(1, 8_000_000)
    data = encode_bundle(b)
    with open_store(tmp_path) as store:
        writer = open_writer(store, expiry_ms=FAR, expected_size=len(data))
        tracemalloc.start()
        try:
            writer.write(data[:10])
            writer.write(memoryview(data)[10:])  # as a node writes a payload it holds
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000, peak
        stored = writer.commit(identity=b.id, destination=DST)
        assert stored is not None and stored.in_file
        assert store.get(stored.store_id) == data


def test_small_streamed_bundle_stays_in_the_database(store: BundleStore, tmp_path: Path) -> None:
    data = encode_bundle(make(1))
    with open_writer(store, expiry_ms=FAR) as writer:
        writer.write(data[:10])
        writer.write(data[10:])
        stored = writer.commit()  # identity and destination decoded from the bytes
    assert stored is not None and not stored.in_file
    assert stored.identity == make(1).id
    assert payload_files(tmp_path) == []
    assert store.get(stored.store_id) == data


def test_stream_abort_duplicate_and_quota(tmp_path: Path) -> None:
    data = encode_bundle(make(1, 5000))
    with open_store(tmp_path, quota_bytes=12_000, large_threshold=1000) as store:
        with open_writer(store, expiry_ms=FAR, identity=make(1, 5000).id, destination=DST) as writer:
            writer.write(data)
            assert len(payload_files(tmp_path)) == 1
        assert payload_files(tmp_path) == []  # left without commit: aborted
        assert len(store) == 0

        assert store.add(make(1, 5000), expiry_ms=FAR) is not None
        writer = open_writer(store, expiry_ms=FAR)
        writer.write(data)
        assert writer.commit(identity=make(1, 5000).id, destination=DST) is None  # duplicate
        assert len(payload_files(tmp_path)) == 1
        assert store.open_writer(expiry_ms=FAR, identity=make(1, 5000).id) is None  # known already

        writer = open_writer(store, expiry_ms=FAR)
        writer.write(data)
        with pytest.raises(StoreError) as info:
            writer.write(data)  # 10 000 more bytes exceed the quota
        assert info.value.reason == 4
        assert writer.done
        assert len(payload_files(tmp_path)) == 1
        with pytest.raises(StoreError):
            writer.write(b"x")

        writer = open_writer(store, expiry_ms=FAR)
        writer.write(data)
        with pytest.raises(StoreError, match="identity"):
            writer.commit()  # a large bundle is not decoded to find its identity
        assert len(payload_files(tmp_path)) == 1

        writer = open_writer(store, expiry_ms=FAR)
        writer.write(data)
    assert writer.done  # closing the store aborted it
    assert len(payload_files(tmp_path)) == 1


def test_streamed_bundle_joins_the_batch(tmp_path: Path) -> None:
    data = encode_bundle(make(1, 5000))
    with open_store(tmp_path, large_threshold=1000) as store:

        def work() -> None:
            with store.batch():
                writer = open_writer(store, expiry_ms=FAR, identity=make(1, 5000).id, destination=DST)
                writer.write(data)
                assert writer.commit() is not None
                raise RuntimeError

        with pytest.raises(RuntimeError):
            work()
        assert len(store) == 0
        assert payload_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Bad data


def test_orphan_files_are_removed_at_open(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=1000) as store:
        kept = store.add(make(1, 5000), expiry_ms=FAR)
        assert kept is not None
    orphan = tmp_path / "payloads" / ("ab" * 12 + ".bundle")
    orphan.write_bytes(b"half a bundle")
    stranger = tmp_path / "payloads" / "notes.txt"
    stranger.write_text("not ours")
    with open_store(tmp_path, large_threshold=1000) as store:
        assert store.orphans_removed == 1
        assert not orphan.exists()
        assert stranger.exists()
        assert store.get(kept.store_id) == encode_bundle(make(1, 5000))
        assert store.problems == []


def test_missing_or_short_file_quarantines_only_that_row(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=1000) as store:
        gone = store.add(make(1, 5000), expiry_ms=FAR)
        short = store.add(make(2, 5000), expiry_ms=FAR)
        fine_file = store.add(make(3, 5000), expiry_ms=FAR)
        fine_row = store.add(make(4), expiry_ms=FAR)
        assert gone and short and fine_file and fine_row
    name_gone = tmp_path / "payloads" / store_file(tmp_path, gone.store_id)
    name_short = tmp_path / "payloads" / store_file(tmp_path, short.store_id)
    name_gone.unlink()
    name_short.write_bytes(name_short.read_bytes()[:100])
    with open_store(tmp_path, large_threshold=1000) as store:
        messages = [str(p) for p in store.problems]
        assert len(messages) == 2
        assert f"bundle {gone.store_id}" in messages[0] and name_gone.name in messages[0]
        assert "missing" in messages[0]
        assert f"bundle {short.store_id}" in messages[1] and "100 bytes" in messages[1]
        with pytest.raises(StoreError, match=f"bundle {gone.store_id} is quarantined.*missing"):
            store.get(gone.store_id)
        assert store.get(fine_file.store_id) == encode_bundle(make(3, 5000))
        assert store.get(fine_row.store_id) == encode_bundle(make(4))
        assert len(store) == 2
        assert [q[0] for q in store.quarantined()] == [gone.store_id, short.store_id]
        assert store.stats().quarantined == 2
        # The lost bundle is not known: a retransmission is accepted.
        assert not store.is_known(make(1, 5000).id)
        again = store.add(make(1, 5000), expiry_ms=FAR)
        assert again is not None and again.store_id > fine_row.store_id
        # The short file is kept for inspection while its row is quarantined...
        assert name_short.exists()
    with open_store(tmp_path, large_threshold=1000) as store:
        assert store.problems == []
        assert name_short.exists()
        # ...and goes when the quarantined row expires.
        store.expire(FAR)
        assert not name_short.exists()


def store_file(tmp_path: Path, store_id: int) -> str:
    raw = sqlite3.connect(tmp_path / "store.db")
    try:
        return str(raw.execute("SELECT file FROM bundles WHERE id = ?", (store_id,)).fetchone()[0])
    finally:
        raw.close()


def test_file_lost_while_running_is_quarantined_on_read(tmp_path: Path) -> None:
    with open_store(tmp_path, large_threshold=1000) as store:
        b = store.add(make(1, 5000), expiry_ms=FAR)
        assert b is not None
        for name in payload_files(tmp_path):
            (tmp_path / "payloads" / name).unlink()
        with pytest.raises(StoreError, match="quarantined"):
            store.open_reader(b.store_id)
        assert len(store) == 0
        with pytest.raises(StoreError, match="quarantined"):
            store.get(b.store_id)


def test_garbage_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(b"this is not a database at all" * 200)
    before = db.read_bytes()
    with pytest.raises(StoreError, match=r"store\.db is not a readable SQLite database"):
        open_store(tmp_path)
    assert db.read_bytes() == before
    db.unlink()
    open_store(tmp_path).close()  # the failed open released its lock


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "store.db")
    raw.execute("CREATE TABLE people (name TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="not a Proxima bundle store"):
        open_store(tmp_path)


def test_corrupt_database_is_refused_then_recovered(tmp_path: Path) -> None:
    n = 400
    with open_store(tmp_path, large_threshold=3000) as store:
        for i in range(n):
            store.add(make(i, 5000 if i % 50 == 0 else 700), expiry_ms=FAR, klass=i % 3)
        store.mark_delivered(make(10_000).id, FAR)
        store.set_counter("bundles.received", n)
        stamp = store.next_creation_stamp(T0)
    db = tmp_path / "store.db"
    assert not Path(f"{db}-wal").exists()  # closing checkpointed everything into the database
    raw = bytearray(db.read_bytes())
    page = 4096
    victim = raw.find(make(201, 700).payload)  # a leaf page of the bundles table
    assert victim > 0
    start = victim // page * page
    raw[start : start + page] = b"\xa5" * page
    db.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="corrupt"):
        open_store(tmp_path)
    assert db.read_bytes() == bytes(raw)  # left untouched

    report = BundleStore.recover(db)
    assert report.moved_to.name == "store.db.corrupt-1"
    assert report.moved_to.read_bytes() == bytes(raw)
    assert 0 < report.bundles < n
    with open_store(tmp_path, large_threshold=3000) as store:
        survivors = store.pending(state=None)
        assert len(survivors) == report.bundles
        for b in survivors:  # every row copied is intact
            seq = b.identity[2]
            assert store.get(b.store_id) == encode_bundle(make(seq, 5000 if seq % 50 == 0 else 700))
        # Files whose rows survived are kept; the others were orphans and went.
        assert len(payload_files(tmp_path)) == sum(1 for b in survivors if b.in_file)
        assert store.counter("bundles.received") in (n, 0)
        later = store.next_creation_stamp(T0)
        assert later > stamp


# ---------------------------------------------------------------------------------------------
# Model-based: the store against a dictionary, across batches, rollbacks and restarts


class StoreMachine(RuleBasedStateMachine):
    """Adds, removals, expiry, state changes, batches (committed or rolled back) and reopening."""

    stored = Handles("stored")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name)
        self.store = open_store(self.path, large_threshold=400)
        self.model: dict[int, tuple[int, int, int, str]] = {}  # store id -> seq, size, expiry, state
        self.known: dict[int, int] = {}  # seq -> expiry, for delivered bundles
        self.next_seq = 0
        self.last_id = 0

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    @rule(target=stored, size=st.sampled_from([10, 200, 1000]), expiry=st.integers(1, 100))
    def add(self, size: int, expiry: int) -> int:
        seq = self.next_seq
        self.next_seq += 1
        result = self.store.add(make(seq, size), expiry_ms=expiry)
        assert result is not None
        assert result.store_id > self.last_id
        self.last_id = result.store_id
        self.model[result.store_id] = (seq, size, expiry, "pending")
        return result.store_id

    @rule(handle=stored)
    def add_again(self, handle: int) -> None:
        if handle in self.model:
            seq, size, expiry, _ = self.model[handle]
            assert self.store.add(make(seq, size), expiry_ms=expiry) is None

    @rule(handle=stored, reason=st.sampled_from(list(RemoveReason)))
    def remove(self, handle: int, reason: RemoveReason) -> None:
        present = handle in self.model
        assert self.store.remove(handle, reason) == present
        if present:
            seq, _, expiry, _ = self.model.pop(handle)
            if reason is RemoveReason.DELIVERED:
                self.known[seq] = expiry

    @rule(handle=stored, state=st.sampled_from(list(BundleState)))
    def set_state(self, handle: int, state: BundleState) -> None:
        assert self.store.set_state(handle, state) == (handle in self.model)
        if handle in self.model:
            self.model[handle] = (*self.model[handle][:3], state.value)

    @rule(now=st.integers(0, 100))
    def expire(self, now: int) -> None:
        expected = sorted(k for k, v in self.model.items() if v[2] <= now)
        assert self.store.expire(now) == expected
        for k in expected:
            del self.model[k]
        self.known = {s: e for s, e in self.known.items() if e > now}

    @rule(sizes=st.lists(st.sampled_from([10, 1000]), min_size=1, max_size=5), commit=st.booleans())
    def batch(self, sizes: list[int], commit: bool) -> None:
        added = {}
        try:
            with self.store.batch():
                for size in sizes:
                    seq = self.next_seq
                    self.next_seq += 1
                    result = self.store.add(make(seq, size), expiry_ms=100)
                    assert result is not None
                    added[result.store_id] = (seq, size, 100, "pending")
                if not commit:
                    raise KeyboardInterrupt  # any exception rolls back
        except KeyboardInterrupt:
            return
        self.model.update(added)
        self.last_id = max(added)

    @precondition(lambda self: self.model)
    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = open_store(self.path, large_threshold=400)
        assert self.store.problems == []

    @invariant()
    def agrees_with_the_model(self) -> None:
        rows = {b.store_id: b for b in self.store.pending(state=None)}
        assert rows.keys() == self.model.keys()
        for k, (seq, _, expiry, state) in self.model.items():
            assert rows[k].identity[2] == seq
            assert (rows[k].expiry_ms, rows[k].state) == (expiry, state)
            assert rows[k].in_file == (rows[k].size > 400)
        for seq in self.known:
            assert self.store.is_known(make(seq).id)
        assert len(payload_files(self.path)) == sum(1 for b in rows.values() if b.in_file)
        assert self.store.bytes_stored == sum(b.size for b in rows.values())

    @invariant()
    def stored_bytes_are_intact(self) -> None:
        for k, (seq, size, _, _) in list(self.model.items())[:5]:
            assert self.store.get(k) == encode_bundle(make(seq, size))


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


# ---------------------------------------------------------------------------------------------
# Crash: SIGKILL at random moments loses nothing acknowledged


def test_sigkill_at_random_moments_loses_no_acknowledged_bundle(tmp_path: Path) -> None:
    db = tmp_path / "node" / "store.db"
    rng = random.Random(20240517)
    status: dict[int, str] = {}  # seq -> "acked", "removed" or "maybe" (removal not acknowledged)
    iterations = 30
    deadline = time.monotonic() + 16
    runs = 0
    acked_total = 0
    while runs < iterations and time.monotonic() < deadline:
        runs += 1
        out_path = tmp_path / f"child-{runs}.out"
        with out_path.open("wb") as out:
            child = subprocess.Popen(
                [sys.executable, str(HERE / "store_crash_child.py"), str(db), str(rng.randrange(1 << 30))],
                stdout=out,
                stderr=subprocess.PIPE,
            )
        try:
            ready_by = time.monotonic() + 20
            while not out_path.read_bytes().startswith(b"ready\n"):
                if child.poll() is not None or time.monotonic() > ready_by:
                    err = child.stderr.read().decode() if child.stderr else ""
                    pytest.fail(f"child did not start: {err}")
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            if child.stderr is not None:
                child.stderr.close()
        assert child.returncode == -signal.SIGKILL, out_path.read_text()[-500:]

        text = out_path.read_text()
        lines = text.split("\n")[:-1]  # a last line without its newline was never acknowledged
        removing: set[int] = set()
        for line in lines[1:]:
            kind, _, value = line.partition(" ")
            seq = int(value)
            if kind == "add":
                status[seq] = "acked"
                acked_total += 1
            elif kind == "rm?":
                removing.add(seq)
            elif kind == "del":
                status[seq] = "removed"
                removing.discard(seq)
            else:
                pytest.fail(f"child reported {line!r}")
        for seq in removing:
            status[seq] = "maybe"

        with BundleStore(db, quota_bytes=None, large_threshold=LARGE_THRESHOLD) as store:
            assert store.problems == []  # no row ever points to a missing or short file
            rows = store.pending(state=None)
            seqs = [b.identity[2] for b in rows]
            assert len(seqs) == len(set(seqs))  # none twice
            present = set(seqs)
            lost = [s for s, st_ in status.items() if st_ == "acked" and s not in present]
            assert lost == [], f"run {runs}: acknowledged bundles lost: {lost[:10]}"
            back = [s for s, st_ in status.items() if st_ == "removed" and s in present]
            assert back == [], f"run {runs}: acknowledged removals undone: {back[:10]}"
            for b in rows:
                seq = b.identity[2]
                expected = make_bundle(seq)
                assert b.identity == expected.id
                assert decode_bundle(store.get(b.store_id)) == expected
            files = payload_files(db.parent)
            assert len(files) == sum(1 for b in rows if b.in_file)
    assert runs >= 10
    assert acked_total > 100


def test_identities_are_checked_in_memory_and_follow_every_change(tmp_path: Path) -> None:
    """Duplicate checks use identities kept in memory: they follow adds, removals, expiry,
    rollbacks and a reopen exactly as the tables do."""
    with open_store(tmp_path) as store:
        a, b, c = make(1), make(2), make(3)
        sa = store.add(a, expiry_ms=FAR)
        sb = store.add(b, expiry_ms=FAR)
        assert sa is not None and sb is not None
        assert store.is_known(a.id) and store.is_known(b.id) and not store.is_known(c.id)
        assert store.has(sa.store_id) and not store.has(sb.store_id + 100)
        assert store.add(a, expiry_ms=FAR) is None
        store.remove(sa.store_id, RemoveReason.DELIVERED)  # remembered
        store.remove(sb.store_id, RemoveReason.FORWARDED)  # forgotten
        assert store.is_known(a.id) and not store.is_known(b.id)
        assert not store.has(sa.store_id) and store.find(a.id) is None
        assert store.add(a, expiry_ms=FAR) is None
        assert store.add(b, expiry_ms=FAR) is not None

        def add_then_fail() -> None:
            with store.batch():
                store.add(c, expiry_ms=FAR)
                assert store.is_known(c.id)
                raise RuntimeError

        with pytest.raises(RuntimeError):
            add_then_fail()
        assert not store.is_known(c.id)  # rolled back
        store.mark_delivered(c.id, 10)
        assert store.is_known(c.id)
        store.expire(10)
        assert not store.is_known(c.id)
    with open_store(tmp_path) as store:
        assert store.is_known(a.id) and store.is_known(b.id) and not store.is_known(c.id)
        found = store.find(b.id)
        assert found is not None and store.has(found.store_id)


def test_normal_mode_syncs_payload_files_off_the_commit(tmp_path: Path) -> None:
    """In NORMAL mode a payload file is written before its row commits and synced later by the
    checkpoint thread; the bundle reads back whole, and after a reopen too."""
    with open_store(tmp_path, large_threshold=1000) as store:
        big = make(1, size=5000)
        stored = store.add(big, expiry_ms=FAR)
        assert stored is not None and stored.in_file
        assert store.get(stored.store_id) == encode_bundle(big)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer.sync_files()  # what the thread does before a checkpoint
        assert not checkpointer.pending
    with open_store(tmp_path, large_threshold=1000) as store:
        assert store.get(stored.store_id) == encode_bundle(big)
        assert not store.problems


def test_payload_files_removed_before_a_checkpoint_are_never_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle acknowledged before the checkpoint thread reached its file costs no fsync: only
    files still holding a committed bundle are synced, recycled ones are not."""

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    with open_store(tmp_path, large_threshold=1000, recycle_below=1 << 20) as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        waiting = checkpointer.wake
        checkpointer.wake = threading.Event()  # the thread sleeps on the old one: paused
        try:
            gone = store.add(make(1, size=5000), expiry_ms=FAR)
            kept = store.add(make(2, size=5000), expiry_ms=FAR)
            assert gone is not None and kept is not None
            gone_file, kept_file = store.file_of(gone.store_id), store.file_of(kept.store_id)
            assert gone_file is not None and kept_file is not None
            assert set(checkpointer.pending) == {gone_file[0].name, kept_file[0].name}
            with store.batch():  # written and removed in one transaction: never pending
                brief = store.add(make(3, size=5000), expiry_ms=FAR)
                assert brief is not None
                store.remove(brief.store_id, "forwarded")
            store.remove(gone.store_id, "forwarded")
            assert checkpointer.pending == (kept_file[0].name,)
            monkeypatch.setattr(os, "fsync", fsync)
            checkpointer.sync_files()
            monkeypatch.undo()
            assert synced == [kept_file[0].name, "payloads"]  # the file, then its directory
            assert not checkpointer.pending
        finally:
            checkpointer.wake = waiting
            waiting.set()
        assert store.get(kept.store_id) == encode_bundle(make(2, size=5000))


@pytest.mark.parametrize("syncfs_works", [True, False])
def test_many_payload_files_are_synced_with_one_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs_works: bool
) -> None:
    """From 16 files to sync, one syncfs of their file system replaces an fsync each; when
    syncfs fails, every file is synced on its own, then the directory."""

    calls: list[str] = []
    synced: list[str] = []
    real_fsync = os.fsync

    def syncfs(fd: int) -> int:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        return 0 if syncfs_works else -1

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    with open_store(tmp_path, large_threshold=1000) as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        waiting = checkpointer.wake
        checkpointer.wake = threading.Event()  # the thread sleeps on the old one: paused
        try:
            with store.batch():
                for i in range(16):
                    store.add(make(i, size=2000), expiry_ms=FAR)
            pending = set(checkpointer.pending)
            assert len(pending) == 16
            checkpointer.syncfs = syncfs
            monkeypatch.setattr(os, "fsync", fsync)
            checkpointer.sync_files()
            monkeypatch.undo()
            assert calls == [str(tmp_path / "payloads")]
            if syncfs_works:
                assert synced == []
            else:
                assert set(synced[:-1]) == pending and synced[-1] == "payloads"
            assert not checkpointer.pending
        finally:
            checkpointer.wake = waiting
            waiting.set()


def test_a_failed_statement_in_deferred_mode_makes_the_next_flush_fail_too(tmp_path: Path) -> None:
    """Changes waiting for a commit are rolled back with the statement that failed: whoever
    waits for them must hear it from flush(), never a silent success."""
    import sqlite3

    with open_store(tmp_path, autocommit=False) as store:
        real = store._conn

        class Failing:
            def executemany(self, *args: object) -> object:
                raise sqlite3.OperationalError("database or disk is full")

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        a = store.add(make(1), expiry_ms=FAR)
        assert a is not None
        store._conn = Failing()  # type: ignore[assignment]
        with pytest.raises(StoreError, match="disk is full"):
            store.stats()  # a read writes the deferred row first, and that fails
        store._conn = real
        with pytest.raises(StoreError, match="rolled back"):
            store.flush()
        store.flush()  # reported once; the store goes on
        assert len(store) == 0
        b = store.add(make(2), expiry_ms=FAR)
        assert b is not None and b.store_id > a.store_id  # no store id is handed out twice
        store.flush()
    with open_store(tmp_path) as store:
        assert [x.identity[2] for x in store.pending(state=None)] == [2]


def test_rows_removed_and_added_again_in_one_transaction_on_a_store_with_the_old_unique_index(
    tmp_path: Path,
) -> None:
    """Stores made before the identity index was dropped keep it: deletions go first."""
    import sqlite3

    with open_store(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "store.db")
    conn.execute(
        "CREATE UNIQUE INDEX old_identity ON bundles "
        "(source, creation_time, sequence, frag_offset, frag_length)"
    )
    conn.commit()
    conn.close()
    with open_store(tmp_path, autocommit=False) as store:
        a = store.add(make(1), expiry_ms=FAR)
        assert a is not None
        store.flush()
        store.remove(a.store_id, "forwarded")
        again = store.add(make(1), expiry_ms=FAR)
        other = store.add(make(2), expiry_ms=FAR)
        assert again is not None and other is not None
        store.flush()
        assert len(store) == 2


def test_payload_files_of_removed_bundles_are_written_over_instead_of_created_anew(tmp_path: Path) -> None:
    """With recycle_below, a removed bundle's file serves the next large bundle (truncated to
    its size); expired bundles' files are deleted, and close leaves no spare file behind."""
    with open_store(tmp_path, large_threshold=500, recycle_below=100_000) as store:
        a = store.add(make(1, 5000), expiry_ms=FAR)
        assert a is not None and a.in_file
        [name] = payload_files(tmp_path)
        store.remove(a.store_id, "forwarded")
        assert payload_files(tmp_path) == [name]  # kept for the next one
        b = store.add(make(2, 2000), expiry_ms=FAR)  # smaller: the old bytes must not linger
        assert b is not None and payload_files(tmp_path) == [name]
        assert decode_bundle(store.get(b.store_id)).payload == make(2, 2000).payload
        assert (tmp_path / "payloads" / name).stat().st_size == b.size
        c = store.add(make(3, 5000), expiry_ms=T0 + 5)
        assert c is not None
        assert store.expire(T0 + 10) == [c.store_id]
        assert payload_files(tmp_path) == [name]  # expired: deleted, not kept (a reader may hold it)
    assert payload_files(tmp_path) == [name]  # the live bundle's file
    with open_store(tmp_path, large_threshold=500, recycle_below=100_000) as store:
        assert decode_bundle(store.get(b.store_id)).payload == make(2, 2000).payload
        store.remove(b.store_id, "forwarded")
    assert payload_files(tmp_path) == []  # the spare file goes at close


def test_the_pool_of_files_kept_for_reuse_is_bounded_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spare files beyond the byte bound are deleted; a streamed bundle written into a longer
    spare file is cut to its own size."""

    with open_store(tmp_path, large_threshold=500, recycle_below=100_000) as store:
        store._max_free_bytes = 12_000
        added = [store.add(make(i, 5000), expiry_ms=FAR) for i in range(4)]
        assert len(payload_files(tmp_path)) == 4
        with store.batch():
            for a in added:
                assert a is not None
                store.remove(a.store_id, "forwarded")
        assert len(payload_files(tmp_path)) == 2  # two of about 5,100 bytes fit in 12,000
        bundle = make(9, 1000)
        writer = store.open_writer(expiry_ms=FAR, identity=bundle.id, destination=DST)
        assert writer is not None
        encoded = encode_bundle(bundle)
        for i in range(0, len(encoded), 300):
            writer.write(encoded[i : i + 300])
        stored = writer.commit()
        assert stored is not None and stored.in_file
        assert len(payload_files(tmp_path)) == 2  # a spare one, written over
        assert decode_bundle(store.get(stored.store_id)).payload == bundle.payload
        path, size = store.file_of(stored.store_id) or (None, 0)
        assert path is not None and path.stat().st_size == size == len(encoded)


def _payload_descriptors(tmp_path: Path) -> int:
    """Descriptors of this process open for writing on files of the store's payload directory:
    the store's own (the checkpoint thread opens files read-only, for a moment, to fsync them)."""
    where = str(tmp_path / "payloads") + "/"
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(where) and _writable(int(fd)):
                count += 1
    return count


def _writable(fd: int) -> bool:
    """Whether descriptor ``fd`` was opened for writing (its flags in /proc/self/fdinfo)."""
    with open(f"/proc/self/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & (os.O_WRONLY | os.O_RDWR) != 0
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_payload_files_keep_their_descriptors_for_reuse_up_to_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payload file written over is not opened again: its descriptor was kept from its first
    write (up to _MAX_KEPT_FDS of them); deleting a file or closing the store closes them."""
    import proxima.runtime.store as store_module

    # The checkpoint thread opens payload files for a moment to fsync them: in FULL mode the
    # commit syncs them itself and leaves the thread nothing to open, so all counted are kept.
    with open_store(tmp_path, large_threshold=500, recycle_below=100_000, synchronous="FULL") as store:
        store._max_kept_fds = 3
        added = [store.add(make(i, 5000), expiry_ms=FAR) for i in range(4)]
        assert _payload_descriptors(tmp_path) == 3  # the fourth was closed: over the limit
        with store.batch():
            for a in added:
                assert a is not None
                store.remove(a.store_id, "forwarded")
        opened: list[str] = []
        real_open = os.open

        def counting_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            opened.append(str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(store_module.os, "open", counting_open)
        again = [store.add(make(10 + i, 3000 + 1000 * i), expiry_ms=FAR) for i in range(4)]
        monkeypatch.setattr(store_module.os, "open", real_open)
        assert len([p for p in opened if p.endswith(".bundle")]) == 1  # only the one not kept
        assert len(payload_files(tmp_path)) == 4
        for i, b in enumerate(again):
            assert b is not None
            assert decode_bundle(store.get(b.store_id)).payload == make(10 + i, 3000 + 1000 * i).payload
        store._max_kept_fds = 10
        c = store.add(make(20, 5000), expiry_ms=T0 + 5)  # a new file; expiry deletes it
        assert c is not None and len(payload_files(tmp_path)) == 5
        kept = _payload_descriptors(tmp_path)
        assert store.expire(T0 + 10) == [c.store_id]
        assert _payload_descriptors(tmp_path) == kept - 1
        assert len(payload_files(tmp_path)) == 4
    assert _payload_descriptors(tmp_path) == 0


def test_a_payload_file_is_written_at_the_commit_and_not_at_all_when_removed_before(
    tmp_path: Path,
) -> None:
    """In deferred mode a large bundle's file is written just before the commit; a read
    before it sees the bundle whole; one removed before the commit is never written."""
    with open_store(tmp_path, autocommit=False, large_threshold=500, recycle_below=100_000) as store:
        gone = store.add(make(1, 5000), expiry_ms=FAR)
        kept = store.add(make(2, 6000), expiry_ms=FAR)
        assert gone is not None and kept is not None and gone.in_file and kept.in_file
        sizes = {p.stat().st_size for p in (tmp_path / "payloads").iterdir()}
        assert sizes == {0}  # claimed, not written yet
        store.remove(gone.store_id, "delivered")
        store.flush()
        on_disk = sorted(p.stat().st_size for p in (tmp_path / "payloads").iterdir())
        assert on_disk == [0, kept.size]  # the removed one's file: a spare, never written
        read_early = store.add(make(3, 7000), expiry_ms=FAR)  # takes the spare file
        assert read_early is not None
        assert decode_bundle(store.get(read_early.store_id)).payload == make(3, 7000).payload
        store.flush()
        assert not store.is_known(make(9).id) and store.is_known(make(1).id)  # remembered
    with open_store(tmp_path, large_threshold=500) as store:
        assert [decode_bundle(store.get(b.store_id)).payload for b in store.pending(state=None)] == [
            make(2, 6000).payload,
            make(3, 7000).payload,
        ]


def test_a_payload_file_that_cannot_be_written_at_the_commit_rolls_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk when the files are written: the commit fails with reason 4 (depleted
    storage), nothing of the transaction stays, no descriptor leaks, and the store goes on."""
    import errno as errno_module

    with open_store(tmp_path, autocommit=False, large_threshold=500, recycle_below=100_000) as store:
        first = store.add(make(1, 5000), expiry_ms=FAR)
        store.flush()
        real = os.pwrite
        calls = 0

        def failing(fd: int, data: Any, offset: int) -> int:  # how the store writes payload files
            nonlocal calls
            calls += 1
            if calls == 2:
                raise OSError(errno_module.ENOSPC, "No space left on device")
            return real(fd, data, offset)

        monkeypatch.setattr(os, "pwrite", failing)
        for i in range(2, 5):
            assert store.add(make(i, 5000), expiry_ms=FAR) is not None
        with pytest.raises(StoreError) as failed:
            store.flush()
        assert failed.value.reason == 4 and "payload file" in str(failed.value)
        monkeypatch.setattr(os, "pwrite", real)
        store.flush()  # reported once
        assert first is not None and len(store) == 1
        assert len(payload_files(tmp_path)) == 1
        assert _payload_descriptors(tmp_path) <= 1
        again = store.add(make(2, 5000), expiry_ms=FAR)
        store.flush()
        assert again is not None and decode_bundle(store.get(again.store_id)).payload == make(2, 5000).payload
    assert _payload_descriptors(tmp_path) == 0
