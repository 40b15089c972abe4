"""The node's persistent bundle store: SQLite in WAL mode, large bundles in files beside it.

A node keeps every bundle it accepted here until the next hop acknowledged it, it was delivered
locally, or it expired. The store is built so that a node killed at any instant (SIGKILL, a
crash, an OOM kill) restarts with every bundle whose ``add`` it saw committed:

* **One database, WAL mode.** ``PRAGMA journal_mode=WAL``. A commit appends to the write-ahead
  log; readers never block the writer.
* **synchronous=NORMAL by default.** In WAL mode a commit with NORMAL writes the log into the
  operating system (``write(2)``) but does not ``fsync`` it; checkpoints do. A committed
  transaction therefore survives the *process* dying at any instant: the kernel still holds
  the pages and writes them out. Only a *power loss or kernel crash* may lose the last
  transactions before a checkpoint, and even then the database stays consistent (it rolls back
  to an earlier commit; no half transaction, no corruption). Our requirement is process kill,
  so NORMAL gives it at a fraction of the cost. A node that must also survive power loss opens
  the store with ``synchronous="FULL"``: every commit then ``fsync``\\ s the log.
* **Large bundles in files.** A bundle bigger than ``large_threshold`` is written to
  ``payloads/<random>.bundle`` beside the database (into the operating system, ``write(2)``)
  just before the row naming it commits, so a killed process never leaves a committed row
  without its file, and a bundle removed in the transaction that added it (one an application
  read as it came) is never written at all. With ``synchronous="FULL"`` the file and then the
  directory are ``fsync``\\ ed before that commit too: a committed row never points at a missing
  or short file, even after a power loss. With NORMAL the files are ``fsync``\\ ed (with the
  directory; or, from 16 files, their file system with one ``syncfs``) by the checkpoint thread
  before it copies the log into the database, off the caller's path: a row that reached the
  database has its file on disk; after a power loss a row still only in the log may find its
  file missing or short, and is then quarantined at open (like the last transactions NORMAL may
  lose, that is the power-loss tradeoff). A file is unlinked only after the transaction deleting
  its row committed. Files without a row (a crash between writing the file and committing the
  row, or between committing a removal and unlinking) are removed at open.
* **Recycled payload files.** With ``recycle_below`` the file of a removed bundle smaller than
  that is kept (up to 2,048 files and 128 MiB) and written over by the next large bundle,
  truncated to its size when it was longer: creating and deleting a file per bundle is what
  costs most on ext4. With NORMAL, a power loss that undoes the removal's commit may leave that
  row pointing at the next bundle's bytes; the node then restores a copy of that bundle (its
  identity is in the bytes), which duplicate suppression absorbs.
* **Batches.** Every mutating call outside a batch is its own transaction, durable when it
  returns. ``with store.batch():`` groups many calls into one transaction, committed when the
  block ends (rolled back if it raises); or open the store with ``autocommit=False`` and call
  :meth:`BundleStore.flush` once per event-loop turn, before sending the acknowledgements.
* **Checkpoints off the caller's path.** SQLite's automatic checkpoint (copying the log into
  the database, with two fsyncs) would run inside whichever COMMIT crosses its threshold and
  stall it for tens of milliseconds; a background thread with its own connection runs them
  instead. Durability does not depend on it.
* **One store per directory, one process at a time.** The store holds an exclusive ``flock``
  on ``bundle-store.lock`` in its directory; a second opener gets a :class:`StoreError`
  instead of racing the orphan-file cleanup.

Bad data: a database SQLite cannot read, or whose ``quick_check`` fails, raises
:class:`StoreError` at open and is left untouched (:meth:`BundleStore.recover` moves it aside
and copies whatever is readable into a fresh store). A row whose payload file is missing or
has the wrong size is moved to the ``quarantine`` table at open, reported in
:attr:`BundleStore.problems`, and reading it raises :class:`StoreError` naming the problem;
every other bundle stays. Its identity is not "known", so a retransmission is accepted.

Tables: ``bundles`` (store id, the five identity columns, destination, received and expiry
times, size, class, state, next hop, and either ``data`` or ``file``), ``known`` (identities
of delivered bundles with their expiry, for duplicate suppression across restarts),
``counters`` (named integers: ``creation.time``/``creation.seq`` behind
:meth:`BundleStore.next_creation_stamp`, ``store.last_id`` so that store ids are never reused
(reserved a block at a time), ``removed.<reason>`` (statistics, written at most once a second
and at close); other names are the node's) and ``quarantine``. No table has an index on its
expiry times: the store keeps them in memory, and every index is one more page per commit.

Times are DTN milliseconds (since 2000-01-01T00:00:00Z). The store needs no decoding of its
own: the caller gives the identity, destination and expiry it already computed, or passes a
:class:`Bundle` from which they are read.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import io
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal, NamedTuple

from proxima.bpv7.bundle import Bundle, Reason, decode_bundle, encode_bundle
from proxima.bpv7.eid import EID
from proxima.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

__all__ = [
    "BundleIdentity",
    "BundleState",
    "BundleStore",
    "BundleWriter",
    "RecoveryReport",
    "RemoveReason",
    "StoreStats",
    "StoredBundle",
]

BundleIdentity = tuple[EID, int, int, int | None, int | None]
"""Source, creation time, sequence number, fragment offset and fragment payload length (the
last two None for a bundle that is not a fragment): the value of :attr:`Bundle.id`."""

DEPLETED_STORAGE: Final = int(Reason.DEPLETED_STORAGE)
DEFAULT_LARGE_THRESHOLD: Final = 64 * 1024
_MAX_BLOB: Final = 256 * 1024 * 1024  # SQLite's default length limit is 1e9; stay well below
_SCHEMA_VERSION: Final = 1
_APPLICATION_ID: Final = 0x50524F58  # "PROX"
_DTN_EPOCH_UNIX_MS: Final = 946_684_800_000
_U64: Final = 1 << 64
_I63: Final = 1 << 63
_FILE_NAME: Final = re.compile(r"[0-9a-f]{24}\.bundle")
_LOCK_NAME: Final = "bundle-store.lock"
_SAFETY_CHECKPOINT_PAGES: Final = 20_000
_WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
_ID_RESERVE: Final = 4096
"""Store ids reserved at a time: the counter is written once per this many new rows."""
_STATS_EVERY_S: Final = 1.0
"""Statistics counters (``removed.<reason>``) are written with a commit at most this often."""
_CHECKPOINT_PAUSE_S: Final = 1.0
"""Seconds between checkpoints at least (a relay's bundles mostly leave within one)."""
_DELETE_AWAY_FROM: Final = 16 * 1024 * 1024
"""Payload files from this size up are deleted by a thread of the store: freeing a large file's
blocks, and waiting for those being written back, takes the file system tenths of a second
(0.45-0.7 s for 1 GB here), which the event loop calling the store must not wait."""
_MAX_FREE_FILES: Final = 2048
_MAX_FREE_BYTES: Final = 128 * 1024 * 1024
"""Payload files kept for reuse at most, in number and in bytes (beyond, removed bundles' files
are deleted). A relay's backlog swings by hundreds of bundles: a pool smaller than the swing
creates and deletes a file per bundle again."""


def _max_kept_descriptors() -> int:
    """Payload files whose descriptor stays open from their first write to their reuse: up to
    1,024, and a quarter of the process's descriptor limit at most."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(0, min(1024, soft // 4))


_MAX_KEPT_FDS: Final = _max_kept_descriptors()
"""Opening a payload file to write it over cost more than writing 60 KB into it while a node
was busy (its path walk and file setup, then the close): the descriptors are kept instead."""


class BundleState(StrEnum):
    """Why a stored bundle is kept."""

    PENDING = "pending"
    """Waiting to be forwarded (to ``next_hop`` when set, else waiting for a route)."""
    FORWARDING = "forwarding"
    """Handed to a convergence layer for ``next_hop``; removed once the next hop acknowledges."""
    DELIVERING = "delivering"
    """For a local endpoint; removed once the application took it."""
    REASSEMBLING = "reassembling"
    """A fragment for a local endpoint, waiting for the rest of its application data unit."""


class RemoveReason(StrEnum):
    """Why a bundle left the store (counted in :attr:`StoreStats.removed`)."""

    FORWARDED = "forwarded"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    REASSEMBLED = "reassembled"
    DISCARDED = "discarded"


_STATES: Final = frozenset(s.value for s in BundleState)
_REASONS: Final = frozenset(r.value for r in RemoveReason)


class StoredBundle(NamedTuple):
    """What the store knows of a bundle, without its bytes."""

    store_id: int
    identity: BundleIdentity
    destination: EID
    received_ms: int
    expiry_ms: int
    size: int
    klass: int
    state: str
    next_hop: str | None
    in_file: bool


@dataclass(frozen=True, slots=True)
class StoreStats:
    """A summary of the store: bundle count and bytes, counts by state and by next hop."""

    count: int
    bytes: int
    by_state: dict[str, int]
    by_next_hop: dict[str | None, int]
    quota_bytes: int | None = None
    files: int = 0
    quarantined: int = 0
    known: int = 0
    removed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :meth:`BundleStore.recover` saved: rows copied and the problems met."""

    moved_to: Path
    bundles: int
    known: int
    counters: int
    problems: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Schema. The bundle bytes are the last column so that reading metadata never touches the
# overflow pages holding them. A bundle's identity is five NOT NULL columns (a UNIQUE
# constraint treats NULLs as distinct): for a bundle that is not a fragment, the fragment
# offset and length are both -1, which a fragment never has (its length is a real size).
# Unsigned 64-bit values are stored as the signed integer with the same 64 bits.

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS bundles (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    frag_offset INTEGER NOT NULL,
    frag_length INTEGER NOT NULL,
    destination TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    expiry_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    klass INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_hop TEXT,
    file TEXT,
    data BLOB,
    CHECK ((file IS NULL) <> (data IS NULL))
);
DROP INDEX IF EXISTS bundles_by_expiry;
DROP INDEX IF EXISTS bundles_queue;
DROP INDEX IF EXISTS bundles_files;
CREATE TABLE IF NOT EXISTS known (
    source TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    frag_offset INTEGER NOT NULL,
    frag_length INTEGER NOT NULL,
    expiry_ms INTEGER NOT NULL,
    PRIMARY KEY (source, creation_time, sequence, frag_offset, frag_length)
) WITHOUT ROWID;
DROP INDEX IF EXISTS known_by_expiry;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    frag_offset INTEGER NOT NULL,
    frag_length INTEGER NOT NULL,
    destination TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    expiry_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    klass INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_hop TEXT,
    file TEXT,
    problem TEXT NOT NULL,
    quarantined_ms INTEGER NOT NULL,
    data BLOB
);
"""

_SELECT_ROW: Final = (
    "SELECT id, source, creation_time, sequence, frag_offset, frag_length, destination, received_ms, "
    "expiry_ms, size, klass, state, next_hop, file IS NOT NULL FROM bundles "
)
_BY_ID: Final = _SELECT_ROW + "WHERE id = ?"
_INSERT: Final = (
    "INSERT INTO bundles (id, source, creation_time, sequence, frag_offset, frag_length, destination, "
    "received_ms, expiry_ms, size, klass, state, next_hop, file, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""The caller checked the in-memory identities (stored and known) first."""
_DELETE: Final = "DELETE FROM bundles WHERE id = ?"
_FORGET: Final = (
    "DELETE FROM known WHERE source = ? AND creation_time = ? AND sequence = ? "
    "AND frag_offset = ? AND frag_length = ?"
)
_REMEMBER: Final = (
    "INSERT INTO known VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
    "SET expiry_ms = max(expiry_ms, excluded.expiry_ms)"
)
_QUARANTINE: Final = (
    "INSERT OR REPLACE INTO quarantine (id, source, creation_time, sequence, frag_offset, frag_length, "
    "destination, received_ms, expiry_ms, size, klass, state, next_hop, file, problem, quarantined_ms, "
    "data) SELECT id, source, creation_time, sequence, frag_offset, frag_length, destination, "
    "received_ms, expiry_ms, size, klass, state, next_hop, file, ?, ?, data FROM bundles WHERE id = ?"
)

_Key = tuple[str, int, int, int, int]
_Row = tuple[int, str, int, int, int, int, str, int, int, int, int, str, "str | None", int]


def _dtn_now_ms() -> int:
    return time.time_ns() // 1_000_000 - _DTN_EPOCH_UNIX_MS


def _to_i64(v: int) -> int:
    return v - _U64 if v >= _I63 else v


def _from_i64(v: int) -> int:
    return v + _U64 if v < 0 else v


def _is_u64(v: object) -> bool:
    return type(v) is int and 0 <= v < _U64


def _clamp_i64(v: int) -> int:
    return _I63 - 1 if v >= _I63 else -_I63 if v < -_I63 else v


@functools.lru_cache(maxsize=4096)
def _parse_eid(text: str) -> EID:
    return EID.parse(text)


def _key_of(identity: BundleIdentity) -> _Key:
    """The five identity columns of a bundle identity; StoreError when it is malformed."""
    try:
        source, ctime, seq, offset, length = identity
    except (TypeError, ValueError):
        raise StoreError(
            f"a bundle identity is (source, time, sequence, offset, length), not {identity!r:.80}"
        ) from None
    if not isinstance(source, EID) or not _is_u64(ctime) or not _is_u64(seq):
        raise StoreError(f"malformed bundle identity {identity!r:.80}")
    if offset is None and length is None:
        return (source._text, _to_i64(ctime), _to_i64(seq), -1, -1)
    if type(offset) is not int or not 0 <= offset < _U64 or type(length) is not int or not 0 <= length < _I63:
        raise StoreError(f"malformed fragment identity {identity!r:.80}")
    return (source._text, _to_i64(ctime), _to_i64(seq), _to_i64(offset), length)


def _identity_of(source: str, ctime: int, seq: int, offset: int, length: int) -> BundleIdentity:
    if length < 0:
        return (_parse_eid(source), _from_i64(ctime), _from_i64(seq), None, None)
    return (_parse_eid(source), _from_i64(ctime), _from_i64(seq), _from_i64(offset), length)


def _stored(row: _Row) -> StoredBundle:
    return StoredBundle(
        row[0],
        _identity_of(row[1], row[2], row[3], row[4], row[5]),
        _parse_eid(row[6]),
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        bool(row[13]),
    )


def _state(state: BundleState | str) -> str:
    if type(state) is str and state in _STATES:
        return state
    if isinstance(state, BundleState):
        return state.value
    raise StoreError(f"unknown bundle state {state!r} (one of {', '.join(sorted(_STATES))})")


def _reason(reason: RemoveReason | str) -> str:
    if type(reason) is str and reason in _REASONS:
        return reason
    if isinstance(reason, RemoveReason):
        return reason.value
    raise StoreError(f"unknown removal reason {reason!r} (one of {', '.join(sorted(_REASONS))})")


def _hop(next_hop: EID | str | None) -> str | None:
    if next_hop is None or type(next_hop) is str:
        return next_hop
    if isinstance(next_hop, EID):
        return next_hop._text
    if isinstance(next_hop, str):
        return str(next_hop)
    raise StoreError(f"a next hop is an EID, a string or None, not {type(next_hop).__name__}")


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise StoreError(f"{what} must be an integer, not {value!r:.40}")
    return value


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, or None where there is none (it is Linux's)."""
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None


_SYNCFS: Final = _load_syncfs()
_SYNCFS_FROM: Final = 16
"""Payload files to sync from which one ``syncfs`` on their file system replaces an ``fsync``
each: every fsync commits the file system's journal on its own and costs tens of microseconds
of CPU, while a syncfs writes everything back with one commit."""


def _syncfs(path: Path, syncfs: Callable[[int], int] | None) -> bool:
    """Write back the whole file system holding ``path`` with ``syncfs`` (libc's, or None);
    False when syncfs is unavailable or failed (the caller then syncs file by file)."""
    if syncfs is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(what: str, exc: OSError) -> StoreError:
    reason = DEPLETED_STORAGE if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    return StoreError(f"{what}: {exc.strerror or exc}", reason=reason)


def _db_error(what: str, exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    reason = DEPLETED_STORAGE if code == sqlite3.SQLITE_FULL else None
    return StoreError(f"{what}: {exc}", reason=reason)


def _unlink(path: Path | str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _close_and_unlink(fd: int | None, path: str) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    _unlink(path)


class BundleStore:
    """The node's persistent bundle store (see the module documentation for its guarantees).

    ``path`` is the SQLite database file; large bundles go to ``payloads/`` in the same
    directory, so each store needs a directory of its own (a lock enforces it).
    ``quota_bytes`` bounds the sum of stored bundle sizes (None: unbounded); a bundle that
    would exceed it is refused with a :class:`StoreError` whose ``reason`` is 4 (depleted
    storage). Bundles larger than ``large_threshold`` bytes are kept in files. ``check`` runs
    SQLite's ``quick_check`` at open. ``synchronous`` and ``autocommit``: see the module
    documentation. Thread-safe: one lock serializes the calls, and a batch holds it until it
    ends.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        quota_bytes: int | None,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        autocommit: bool = True,
        check: bool = True,
        recycle_below: int = 0,
    ) -> None:
        if quota_bytes is not None and (type(quota_bytes) is not int or quota_bytes < 0):
            raise StoreError(f"quota_bytes must be a non-negative integer or None, not {quota_bytes!r}")
        if type(large_threshold) is not int or not 0 <= large_threshold <= _MAX_BLOB:
            raise StoreError(
                f"large_threshold must be an integer from 0 to {_MAX_BLOB}, not {large_threshold!r}"
            )
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path)
        self.payload_dir = self.path.parent / "payloads"
        self._pdir = os.path.join(self.payload_dir, "")
        """The payload directory as a string ending with a separator: a file's path is
        ``self._pdir + name`` (a Path per call showed in profiles)."""
        self.quota_bytes = quota_bytes
        self.large_threshold = large_threshold
        self.synchronous = synchronous
        self.problems: list[StoreError] = []
        """Problems met at open (quarantined rows); each names the bundle and what is wrong."""
        self.orphans_removed = 0
        """How many payload files without a row were removed at open."""
        self._lock = threading.RLock()
        self._autocommit = autocommit
        self._closed = True
        self._depth = 0
        self._in_txn = False
        self._count = 0
        self._bytes = 0
        self._reserved = 0
        self._last_id = 0
        self._snapshot = (0, 0, 0)
        self._counters_snapshot: tuple[dict[str, int], set[str]] = ({}, set())
        self._dir_dirty = False
        self._txn_files: set[str] = set()
        self._unlink_after: set[str] = set()
        self._deleter: ThreadPoolExecutor | None = None  # deletes large files; see _DELETE_AWAY_FROM
        self._delete_away_from = _DELETE_AWAY_FROM
        self._max_free_files = _MAX_FREE_FILES
        self._max_free_bytes = _MAX_FREE_BYTES
        self._max_kept_fds = _MAX_KEPT_FDS
        # Payload files of removed bundles smaller than recycle_below are written over by the
        # next bundles instead of being deleted and created again: on this kind of file system
        # creating and deleting a file per bundle costs more than writing it. (Only for sizes
        # nobody reads with open_reader after a removal: the node streams larger ones.)
        self.recycle_below = recycle_below
        self._recyclable: dict[str, int] = {}
        self._free: list[tuple[str, int]] = []
        self._free_bytes = 0
        self._fds: dict[str, int] = {}  # payload file name -> its descriptor, kept for reuse
        # Payload files of rows inserted in the open transaction, written just before it
        # commits (store id -> file name, its descriptor, its present size, the bytes to
        # write): a bundle removed before the commit, as one an application reads as it comes,
        # is never written.
        self._unwritten: dict[int, tuple[str, int, int, bytes]] = {}
        self._counters: dict[str, int] = {}
        self._dirty_counters: set[str] = set()
        self._dirty_stats: set[str] = set()
        self._stats_due = 0.0
        self._writers: set[BundleWriter] = set()
        # Identities held in memory so that duplicate checks need no SELECT: the stored rows
        # (identity -> store id, and back) and the known (delivered) identities with their expiry.
        self._id_by_key: dict[_Key, int] = {}
        self._key_by_id: dict[int, _Key] = {}
        self._known_keys: dict[_Key, int] = {}
        self._meta: dict[int, tuple[int, str | None, int]] = {}  # store id -> (size, file, expiry)
        self._meta_min_expiry = _I63  # no stored bundle expires before (a lower bound)
        self._known_min_expiry = _I63  # no known identity expires before (a lower bound)
        self._quarantined_rows = 0
        # Rows added, removed and remembered in the open transaction, written together (one
        # executemany each) before the commit or any other statement: a bundle stored then
        # forwarded before the commit never touches the database at all.
        self._lost: StoreError | None = None  # a rollback the next flush must report
        self._ins: dict[int, tuple[object, ...]] = {}
        self._del: list[tuple[int]] = []
        self._rem: list[tuple[object, ...]] = []
        self._checkpointer: _Checkpointer | None = None
        self._lock_fd = _lock(self.path)
        try:
            self._conn = self._connect(check)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._closed = False
        try:
            self._load_totals()
            self._check_files()
            self._checkpointer = _Checkpointer(self.path, synchronous, self.payload_dir)
        except BaseException:
            self._close_quietly()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _connect(self, check: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _db_error(f"cannot open the bundle store {self.path}", exc) from exc
        try:
            self._prepare(conn, check)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection, check: bool) -> None:
        where = f"the bundle store {self.path}"
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise _db_error(f"{where} is not a readable SQLite database (left untouched)", exc) from exc
        if tables and app_id != _APPLICATION_ID:
            raise StoreError(f"{where} is a SQLite database but not a Proxima bundle store (left untouched)")
        if version > _SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema version {version}; this Proxima reads up to {_SCHEMA_VERSION}"
            )
        if check and tables:
            try:
                result = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as exc:
                raise _db_error(
                    f"{where} is corrupt (left untouched; BundleStore.recover copies what is readable)", exc
                ) from exc
            if result != ["ok"]:
                raise StoreError(
                    f"{where} is corrupt (left untouched; BundleStore.recover copies what is readable): "
                    + "; ".join(str(r) for r in result)
                )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{where}: SQLite refused WAL mode (journal mode stays {mode!r})")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA cache_size=-16384")
            # Checkpoints run on a background thread (_Checkpointer); this high threshold is only
            # a safety net should that thread fall behind.
            conn.execute(f"PRAGMA wal_autocheckpoint={_SAFETY_CHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("BEGIN IMMEDIATE")
            _create_schema(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise _db_error(f"cannot prepare {where}", exc) from exc
        try:
            self.payload_dir.mkdir(exist_ok=True)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise _os_error(f"cannot create {self.payload_dir}", exc) from exc

    def _check_files(self) -> None:
        """Quarantine rows whose payload file is missing or short; remove files without a row."""
        on_disk: dict[str, int] = {}
        try:
            with os.scandir(self.payload_dir) as entries:
                for entry in entries:
                    if _FILE_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                        on_disk[entry.name] = entry.stat(follow_symlinks=False).st_size
        except OSError as exc:
            raise _os_error(f"cannot list {self.payload_dir}", exc) from exc
        conn = self._conn
        referenced: set[str] = set()
        bad: list[tuple[int, str]] = []
        try:
            for sid, name, size in conn.execute(
                "SELECT id, file, size FROM bundles WHERE file IS NOT NULL ORDER BY id"
            ):
                referenced.add(name)
                actual = on_disk.get(name)
                if actual is None:
                    bad.append((sid, f"its payload file payloads/{name} is missing"))
                elif actual != size:
                    bad.append((sid, f"its payload file payloads/{name} has {actual} bytes, not {size}"))
            referenced.update(
                r[0] for r in conn.execute("SELECT file FROM quarantine WHERE file IS NOT NULL")
            )
        except sqlite3.Error as exc:
            raise _db_error(f"cannot read the bundle store {self.path}", exc) from exc
        if bad:
            self._begin()
            for sid, problem in bad:
                self._quarantine(sid, problem)
                self.problems.append(StoreError(f"bundle {sid} was quarantined at open: {problem}"))
            self._commit()
        for name in on_disk.keys() - referenced:
            _unlink(self.payload_dir / name)
            self.orphans_removed += 1

    def _load_totals(self) -> None:
        try:
            conn = self._conn
            count, total, top = conn.execute(
                "SELECT count(*), ifnull(sum(size), 0), ifnull(max(id), 0) FROM bundles"
            ).fetchone()
            (top_quarantined, self._quarantined_rows) = conn.execute(
                "SELECT ifnull(max(id), 0), count(*) FROM quarantine"
            ).fetchone()
            self._counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            self._load_keys()
        except sqlite3.Error as exc:
            raise _db_error(f"cannot read the bundle store {self.path}", exc) from exc
        self._count, self._bytes = count, total
        # Store ids are never reused: the highest ever handed out is kept as a counter.
        self._last_id = max(top, top_quarantined, self._counters.get("store.last_id", 0))

    def _load_keys(self) -> None:
        """Read the stored and known identities into memory (at open and after a rollback)."""
        conn = self._conn
        intern = sys.intern
        id_by_key: dict[_Key, int] = {}
        key_by_id: dict[int, _Key] = {}
        meta: dict[int, tuple[int, str | None, int]] = {}
        for sid, source, ctime, seq, offset, length, size, name, expiry in conn.execute(
            "SELECT id, source, creation_time, sequence, frag_offset, frag_length, size, file, expiry_ms "
            "FROM bundles"
        ):
            key = (intern(source), ctime, seq, offset, length)
            id_by_key[key] = sid
            key_by_id[sid] = key
            meta[sid] = (size, name, expiry)
        known: dict[_Key, int] = {}
        for source, ctime, seq, offset, length, expiry in conn.execute(
            "SELECT source, creation_time, sequence, frag_offset, frag_length, expiry_ms FROM known"
        ):
            known[(intern(source), ctime, seq, offset, length)] = expiry
        self._id_by_key, self._key_by_id, self._known_keys = id_by_key, key_by_id, known
        self._meta = meta
        self._meta_min_expiry = min((e for _, _, e in meta.values()), default=_I63)
        self._known_min_expiry = min(known.values(), default=_I63)

    def _forget_row(self, sid: int) -> None:
        key = self._key_by_id.pop(sid, None)
        self._meta.pop(sid, None)
        if key is not None and self._id_by_key.get(key) == sid:
            del self._id_by_key[key]

    def _write_pending(self) -> None:
        """Write the deferred inserts, deletes and remembered identities (lock held, in the open
        transaction); on failure roll back and raise StoreError."""
        if not (self._ins or self._del or self._rem):
            return
        if self._unwritten:
            self._write_files()
        conn = self._conn
        try:
            # Deletions first: a store made by an earlier version keeps a UNIQUE identity index,
            # and a bundle removed then taken again in one transaction must not collide.
            if self._del:
                conn.executemany(_DELETE, self._del)
                self._del.clear()
            if self._ins:
                conn.executemany(_INSERT, self._ins.values())
                self._ins.clear()
            if self._rem:
                conn.executemany(_REMEMBER, self._rem)
                self._rem.clear()
        except sqlite3.Error as exc:
            raise self._fail("writing the store's changes", exc) from exc

    def _write_files(self) -> None:
        """Write the payload files of the rows about to be inserted (lock held, in the open
        transaction); on failure roll back and raise StoreError."""
        pending = list(self._unwritten.values())
        self._unwritten.clear()
        for i, (name, fd, old_size, data) in enumerate(pending):
            try:
                self._write_into(fd, data, old_size)
            except OSError as exc:
                for other, other_fd, _, _ in pending[i:]:  # the rollback deletes their files
                    self._keep(other, other_fd)
                raise self._abandon(_os_error(f"cannot write the payload file payloads/{name}", exc)) from exc
            self._keep(name, fd)

    def _remember(self, key: _Key, expiry: int) -> None:
        old = self._known_keys.get(key)
        if old is None or expiry > old:
            self._known_keys[key] = expiry
            self._known_min_expiry = min(self._known_min_expiry, expiry)

    # -- transactions -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the bundle store {self.path} is closed")

    def _begin(self) -> None:
        """Open the write transaction if none is open (caller holds the lock)."""
        if not self._in_txn:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _db_error("cannot start a store transaction", exc) from exc
            self._in_txn = True
            self._snapshot = (self._count, self._bytes, self._last_id)
            self._counters_snapshot = (dict(self._counters), set(self._dirty_stats))

    def _end(self) -> None:
        """End a mutating call: commit unless a batch or the deferred mode keeps it open."""
        if self._depth == 0 and self._autocommit:
            self._commit()

    def _commit(self) -> None:
        """Make the open transaction durable; on failure roll it back and raise StoreError."""
        if not self._in_txn:
            return
        self._write_pending()
        conn = self._conn
        try:
            if self._dir_dirty:
                if self.synchronous == "FULL":
                    _fsync_dir(self.payload_dir)
                self._dir_dirty = False
            if self._counters.get("store.last_id", 0) < self._last_id:
                self._counters["store.last_id"] = self._last_id + _ID_RESERVE
                self._dirty_counters.add("store.last_id")
            if self._dirty_stats and (self._dirty_counters or time.monotonic() >= self._stats_due):
                self._dirty_counters |= self._dirty_stats
                self._dirty_stats.clear()
                self._stats_due = time.monotonic() + _STATS_EVERY_S
            if self._dirty_counters:
                conn.executemany(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [(name, self._counters[name]) for name in self._dirty_counters],
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _db_error("the store transaction failed and was rolled back", exc) from exc
        except OSError as exc:
            self._rollback()
            raise _os_error("the store transaction failed and was rolled back", exc) from exc
        self._in_txn = False
        checkpointer = self._checkpointer
        if checkpointer is not None:
            if self.synchronous != "FULL":
                if self._txn_files:
                    checkpointer.written(self._txn_files)
                if self._unlink_after:
                    checkpointer.removed(self._unlink_after)
            if not checkpointer.wake.is_set():  # set() takes a lock and notifies: per commit
                checkpointer.wake.set()
        self._dirty_counters.clear()
        self._txn_files.clear()
        if self._unlink_after:
            free, recyclable = self._free, self._recyclable
            for name in self._unlink_after:
                size = recyclable.get(name)
                if (
                    size is not None
                    and len(free) < self._max_free_files
                    and self._free_bytes + size <= self._max_free_bytes
                ):
                    free.append((name, size))
                    self._free_bytes += size
                else:
                    self._drop(name)
            self._unlink_after.clear()
            recyclable.clear()

    def _rollback(self) -> None:
        """Undo the open transaction and everything the process did for it."""
        if not self._in_txn:
            return
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        self._in_txn = False
        self._ins.clear()
        self._del.clear()
        self._rem.clear()
        last_id = self._last_id
        self._count, self._bytes, _ = self._snapshot
        self._last_id = last_id  # ids handed out stay used: nothing may point at a reused one
        unwritten, self._unwritten = self._unwritten, {}
        for name, fd, _, _ in unwritten.values():
            self._keep(name, fd)  # then closed with the files of the transaction
        for name in self._txn_files:
            self._drop(name)
        self._txn_files.clear()
        self._unlink_after.clear()
        self._recyclable.clear()
        self._dirty_counters.clear()
        counters, stats = self._counters_snapshot
        self._counters, self._dirty_stats = dict(counters), set(stats)
        with contextlib.suppress(sqlite3.Error):
            self._load_keys()

    def _fail(self, what: str, exc: sqlite3.Error) -> StoreError:
        """Roll back after a failed statement; the error to raise.

        In deferred mode the transaction rolled back may hold changes other callers are waiting
        to see committed: the next :meth:`flush` raises too, so none of them is told "durable".
        """
        return self._abandon(_db_error(f"{what} failed; the open transaction was rolled back", exc))

    def _abandon(self, error: StoreError) -> StoreError:
        """Roll the open transaction back because of ``error``; ``error``, to raise (see
        :meth:`_fail`: in deferred mode the next :meth:`flush` raises it too)."""
        lost = self._in_txn and not self._autocommit and self._depth == 0
        self._rollback()
        if lost:
            self._lost = error
        return error

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group the calls made inside the block into one transaction, committed at its end.

        The commit is durable when the block exits normally (acknowledge the bundles then); if
        the block raises, everything it did is rolled back. Nested batches join the outer one.
        The store's lock is held for the whole block.
        """
        with self._lock:
            self._check_open()
            self._depth += 1
            ok = False
            try:
                yield
                ok = True
            finally:
                self._depth -= 1
                if self._depth == 0 and not self._closed:
                    if ok:
                        self._commit()
                    else:
                        self._rollback()

    def flush(self) -> None:
        """Commit what the calls since the last commit did (for ``autocommit=False``)."""
        with self._lock:
            self._check_open()
            lost, self._lost = self._lost, None
            if lost is not None:
                raise lost
            if self._depth == 0:
                try:
                    self._commit()
                finally:
                    self._lost = None  # a failure of this very commit is reported here

    @property
    def in_transaction(self) -> bool:
        """True while changes wait for a commit (inside a batch, or unflushed)."""
        return self._in_txn

    # -- adding -------------------------------------------------------------------------------

    def add(
        self,
        bundle: Bundle | bytes | bytearray | memoryview,
        *,
        expiry_ms: int,
        identity: BundleIdentity | None = None,
        destination: EID | None = None,
        klass: int = 0,
        next_hop: EID | str | None = None,
        state: BundleState | str = BundleState.PENDING,
        received_ms: int | None = None,
    ) -> StoredBundle | None:
        """Store a bundle (a :class:`Bundle` or its encoding); None when it is a duplicate.

        A duplicate is a bundle whose identity is stored or was marked delivered. For encoded
        bytes give ``identity`` and ``destination`` (else the bytes are decoded to find them).
        ``expiry_ms`` is the DTN time at which the bundle expires; ``klass`` its class of
        service (higher is sent first). Raises :class:`StoreError` (reason 4) when it would
        exceed the quota; nothing stored changes then.
        """
        if type(bundle) is bytes:
            data = bundle
        elif isinstance(bundle, Bundle):
            data = encode_bundle(bundle)
            if identity is None:
                identity = bundle.id
            if destination is None:
                destination = bundle.primary.destination
        else:
            data = bytes(bundle)
        if identity is None or destination is None:
            decoded = decode_bundle(data)
            identity = decoded.id if identity is None else identity
            destination = decoded.primary.destination if destination is None else destination
        if type(identity) is not tuple:
            identity = tuple(identity)  # type: ignore[assignment]
        return self._add(
            data,
            _key_of(identity),
            identity,
            destination,
            expiry_ms,
            klass,
            _hop(next_hop),
            _state(state),
            received_ms,
        )

    def _add(
        self,
        data: bytes,
        key: _Key,
        identity: BundleIdentity,
        destination: EID,
        expiry_ms: int,
        klass: int,
        next_hop: str | None,
        state: str,
        received_ms: int | None,
    ) -> StoredBundle | None:
        if not isinstance(destination, EID):
            raise StoreError(f"the destination must be an EID, not {destination!r:.40}")
        expiry = _clamp_i64(_int(expiry_ms, "expiry_ms"))
        if type(klass) is not int or not -_I63 <= klass < _I63:
            klass = _clamp_i64(_int(klass, "klass"))
        received = _dtn_now_ms() if received_ms is None else _clamp_i64(_int(received_ms, "received_ms"))
        size = len(data)
        with self._lock:
            self._check_open()
            quota = self.quota_bytes
            if quota is not None and self._bytes + self._reserved + size > quota:
                if self._known(key):
                    return None
                raise StoreError(
                    f"bundle store full: {size} more bytes would exceed the quota of {quota} "
                    f"({self._bytes} stored, {self._reserved} reserved)",
                    reason=DEPLETED_STORAGE,
                )
            name: str | None = None
            unwritten: tuple[int, int, bytes] | None = None
            if size > self.large_threshold:
                if self._known(key):
                    return None
                name, fd, old_size = self._new_file()
                unwritten = (fd, old_size, data)
            return self._insert(
                key,
                identity,
                destination,
                received,
                expiry,
                size,
                klass,
                state,
                next_hop,
                name,
                None if name else data,
                unwritten,
            )

    def _insert(
        self,
        key: _Key,
        identity: BundleIdentity,
        destination: EID,
        received: int,
        expiry: int,
        size: int,
        klass: int,
        state: str,
        next_hop: str | None,
        name: str | None,
        blob: bytes | None,
        unwritten: tuple[int, int, bytes] | None = None,
    ) -> StoredBundle | None:
        """Insert a row unless its identity is known (caller holds the lock, checked the quota,
        and wrote the file ``name`` if any, which is unlinked here if the row is not stored).
        With ``unwritten`` (the file's open descriptor, its present size and the bytes for it),
        the file ``name`` is written just before the commit instead, unless the row is removed
        first."""
        sid = self._last_id + 1
        if key in self._id_by_key or key in self._known_keys:
            self._discard(name, unwritten)
            return None
        if not self._in_txn:
            try:
                self._begin()
            except StoreError:
                self._discard(name, unwritten)
                raise
        row = (sid, *key, destination._text, received, expiry, size, klass, state, next_hop, name, blob)
        self._ins[sid] = row
        if unwritten is not None and name is not None:
            self._unwritten[sid] = (name, *unwritten)
        self._meta[sid] = (size, name, expiry)
        self._meta_min_expiry = min(self._meta_min_expiry, expiry)
        if name is not None:
            self._txn_files.add(name)
            self._dir_dirty = True
        self._last_id = sid
        self._id_by_key[key] = sid
        self._key_by_id[sid] = key
        self._count += 1
        self._bytes += size
        if self._depth == 0 and self._autocommit:
            self._commit()
        return StoredBundle(
            sid,
            identity,
            destination,
            received,
            expiry,
            size,
            klass,
            state,
            next_hop,
            name is not None,
        )

    def _new_file(self) -> tuple[str, int, int]:
        """A payload file to write from its start (a recycled one, or a new one); its name, an
        open descriptor and its present size. The writer truncates it to what it wrote when it
        was longer."""
        while self._free:
            name, size = self._free.pop()
            self._free_bytes -= size
            fd = self._fds.pop(name, None)
            if fd is not None:
                return name, fd, size
            try:
                return name, os.open(self._pdir + name, os.O_WRONLY), size
            except OSError:
                continue  # gone meanwhile: take another
        for _ in range(8):
            name = secrets.token_hex(12) + ".bundle"
            try:
                fd = os.open(self._pdir + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            except OSError as exc:
                raise _os_error(f"cannot create a payload file in {self.payload_dir}", exc) from exc
            return name, fd, 0
        raise StoreError(f"cannot find a free payload file name in {self.payload_dir}")

    def _write_into(self, fd: int, data: bytes, old_size: int) -> None:
        """Write a payload file from its start, cut to ``data`` when it was longer (fsync'd now
        in FULL mode, by the checkpointer in NORMAL)."""
        size = len(data)
        done = os.pwrite(fd, data, 0)
        if done < size:
            view = memoryview(data)
            while done < size:
                done += os.pwrite(fd, view[done:], done)
        if old_size > size:
            os.ftruncate(fd, size)
        if self.synchronous == "FULL":
            os.fsync(fd)

    def _discard(self, name: str | None, unwritten: tuple[int, int, bytes] | None) -> None:
        """Delete the payload file of a row not inserted, and close its descriptor."""
        if unwritten is not None:
            with contextlib.suppress(OSError):
                os.close(unwritten[0])
        if name is not None:
            self._drop(name)

    def _keep(self, name: str, fd: int) -> None:
        """Keep a written payload file's descriptor for its reuse, or close it past the limit.
        Kept descriptors are only ever written with ``pwrite``: their offset stays at 0, as a
        :class:`BundleWriter` that takes one from :meth:`_new_file` needs."""
        if len(self._fds) < self._max_kept_fds:
            self._fds[name] = fd
        else:
            os.close(fd)

    def _drop(self, name: str) -> None:
        """Delete a payload file, closing its kept descriptor (a large one in a thread)."""
        fd = self._fds.pop(name, None)
        path = self._pdir + name
        try:
            size = os.stat(path).st_size if fd is None else os.fstat(fd).st_size
        except OSError:
            size = 0
        if size >= self._delete_away_from:
            if self._deleter is None:
                self._deleter = ThreadPoolExecutor(1, thread_name_prefix="delete payloads")
            self._deleter.submit(_close_and_unlink, fd, path)
            return
        _close_and_unlink(fd, path)

    def open_writer(
        self,
        *,
        expiry_ms: int,
        identity: BundleIdentity | None = None,
        destination: EID | None = None,
        klass: int = 0,
        next_hop: EID | str | None = None,
        state: BundleState | str = BundleState.PENDING,
        received_ms: int | None = None,
        expected_size: int | None = None,
    ) -> BundleWriter | None:
        """A writer that stores a bundle arriving piece by piece without holding it in memory.

        Write the encoded bundle with :meth:`BundleWriter.write`, then :meth:`BundleWriter.commit`
        (which may be given the identity and destination once the primary block is known).
        ``expected_size`` reserves quota up front so a transfer too big is refused at once
        (StoreError, reason 4). None when ``identity`` is given and already known (a duplicate).
        """
        if expected_size is not None and (type(expected_size) is not int or expected_size < 0):
            raise StoreError(f"expected_size must be a non-negative integer, not {expected_size!r:.40}")
        with self._lock:
            self._check_open()
            if identity is not None and self._known(_key_of(identity)):
                return None
            writer = BundleWriter(
                self,
                identity=identity,
                destination=destination,
                expiry_ms=_int(expiry_ms, "expiry_ms"),
                klass=_int(klass, "klass"),
                next_hop=_hop(next_hop),
                state=_state(state),
                received_ms=_dtn_now_ms() if received_ms is None else _int(received_ms, "received_ms"),
            )
            if expected_size is not None:
                writer._reserve(expected_size)
            self._writers.add(writer)
            return writer

    def _reserve(self, n: int) -> None:
        with self._lock:
            self._check_open()
            quota = self.quota_bytes
            if quota is not None and self._bytes + self._reserved + n > quota:
                raise StoreError(
                    f"bundle store full: {n} more bytes would exceed the quota of {quota}",
                    reason=DEPLETED_STORAGE,
                )
            self._reserved += n

    def _release(self, writer: BundleWriter) -> None:
        with self._lock:
            self._reserved -= writer._reserved
            writer._reserved = 0
            self._writers.discard(writer)

    def _commit_writer(
        self,
        writer: BundleWriter,
        identity: BundleIdentity,
        destination: EID,
        data: bytes | None,
        name: str | None,
    ) -> StoredBundle | None:
        """Store what a writer received: ``data`` when it stayed small, else the file ``name``."""
        with self._lock:
            self._release(writer)
            self._check_open()
            key = _key_of(identity)
            if data is not None:
                return self._add(
                    data,
                    key,
                    identity,
                    destination,
                    writer.expiry_ms,
                    writer.klass,
                    writer.next_hop,
                    writer.state,
                    writer.received_ms,
                )
            if name is None:
                raise StoreError("a bundle writer has neither data nor a file")
            path = self.payload_dir / name
            size = writer.size
            if not isinstance(destination, EID):
                _unlink(path)
                raise StoreError(f"the destination must be an EID, not {destination!r:.40}")
            if self._known(key):
                _unlink(path)
                return None
            quota = self.quota_bytes
            if quota is not None and self._bytes + self._reserved + size > quota:
                _unlink(path)
                raise StoreError(f"bundle store full: {size} bytes exceed the quota", reason=DEPLETED_STORAGE)
            return self._insert(
                key,
                identity,
                destination,
                _clamp_i64(writer.received_ms),
                _clamp_i64(writer.expiry_ms),
                size,
                _clamp_i64(writer.klass),
                writer.state,
                writer.next_hop,
                name,
                None,
            )

    # -- reading ------------------------------------------------------------------------------

    def _known(self, key: _Key) -> bool:
        return key in self._id_by_key or key in self._known_keys

    def is_known(self, identity: BundleIdentity) -> bool:
        """True when a bundle with this identity is stored or was marked delivered."""
        key = _key_of(identity)
        with self._lock:
            self._check_open()
            return self._known(key)

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            self._check_open()
            self._write_pending()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _db_error("reading the bundle store", exc) from exc

    def info(self, store_id: int) -> StoredBundle | None:
        """What is stored under this store id, or None."""
        rows = self._query(_BY_ID, (store_id,))
        return _stored(rows[0]) if rows else None

    def find(self, identity: BundleIdentity) -> StoredBundle | None:
        """The stored bundle with this identity, or None."""
        key = _key_of(identity)
        with self._lock:
            self._check_open()
            sid = self._id_by_key.get(key)
            if sid is None:
                return None
            rows = self._query(_BY_ID, (sid,))
        return _stored(rows[0]) if rows else None

    def has(self, store_id: int) -> bool:
        """True when a bundle is stored under this store id (no database access)."""
        return store_id in self._key_by_id

    def _missing(self, store_id: int) -> StoreError:
        rows = self._query("SELECT problem FROM quarantine WHERE id = ?", (store_id,))
        if rows:
            return StoreError(f"bundle {store_id} is quarantined: {rows[0][0]}")
        return StoreError(f"no bundle with store id {store_id}")

    def _locate(self, store_id: int) -> tuple[bytes | None, Path | None, int]:
        rows = self._query("SELECT data, file, size FROM bundles WHERE id = ?", (store_id,))
        if not rows:
            raise self._missing(store_id)
        data, name, size = rows[0]
        if name is None:
            return bytes(data), None, int(size)
        return None, self.payload_dir / str(name), int(size)

    def file_of(self, store_id: int) -> tuple[Path, int] | None:
        """The payload file holding a bundle and its size, or None when it is kept in the database."""
        _, path, size = self._locate(store_id)
        return None if path is None else (path, size)

    def _file_lost(self, store_id: int, path: Path, exc: OSError) -> StoreError:
        """Quarantine a row whose file cannot be read; the error to raise."""
        problem = f"its payload file payloads/{path.name} cannot be read ({exc.strerror or exc})"
        with self._lock:
            self._check_open()
            rows = self._query("SELECT 1 FROM bundles WHERE id = ? AND file = ?", (store_id, path.name))
            if not rows:  # removed meanwhile, by another thread
                return self._missing(store_id)
            self._begin()
            self._quarantine(store_id, problem)
            self._end()
        return StoreError(f"bundle {store_id} was quarantined: {problem}")

    def get(self, store_id: int) -> bytes:
        """The encoded bundle stored under this id (StoreError when there is none)."""
        data, path, size = self._locate(store_id)
        if data is not None:
            return data
        if path is None:
            raise StoreError(f"bundle {store_id} has neither data nor a file")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise self._file_lost(store_id, path, exc) from exc
        if len(content) != size:
            raise StoreError(
                f"bundle {store_id}: payload file {path.name} has {len(content)} bytes, not {size}"
            )
        return content

    def open_reader(self, store_id: int) -> BinaryIO:
        """A binary file object streaming the encoded bundle (close it when done).

        It stays readable even if the bundle is removed meanwhile.
        """
        data, path, _ = self._locate(store_id)
        if data is not None:
            return io.BytesIO(data)
        if path is None:
            raise StoreError(f"bundle {store_id} has neither data nor a file")
        try:
            return path.open("rb")
        except OSError as exc:
            raise self._file_lost(store_id, path, exc) from exc

    def pending(
        self,
        next_hop: EID | str | None = None,
        *,
        state: BundleState | str | None = BundleState.PENDING,
        unrouted: bool = False,
        limit: int | None = None,
    ) -> list[StoredBundle]:
        """Bundles waiting, highest class of service first, then oldest received first.

        ``next_hop`` keeps those bound to that next hop (None: any next hop; ``unrouted=True``:
        only those with no next hop). ``state`` keeps one state (None: every state).
        """
        where: list[str] = []
        params: list[object] = []
        hop = _hop(next_hop)
        if hop is not None:
            where.append("next_hop = ?")
            params.append(hop)
        elif unrouted:
            where.append("next_hop IS NULL")
        if state is not None:
            where.append("state = ?")
            params.append(_state(state))
        sql = _SELECT_ROW
        if where:
            sql += "WHERE " + " AND ".join(where)
        sql += " ORDER BY klass DESC, received_ms, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, _int(limit, "limit")))
        return [_stored(r) for r in self._query(sql, tuple(params))]

    # -- changing -----------------------------------------------------------------------------

    def _update(self, sql: str, params: tuple[object, ...]) -> int:
        with self._lock:
            self._check_open()
            self._begin()
            self._write_pending()
            try:
                n = self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise self._fail("updating the bundle store", exc) from exc
            self._end()
            return n

    def set_state(self, store_id: int, state: BundleState | str) -> bool:
        """Change a bundle's state; False when there is no such bundle."""
        return self._update("UPDATE bundles SET state = ? WHERE id = ?", (_state(state), store_id)) > 0

    def set_next_hop(
        self, store_id: int, next_hop: EID | str | None, *, state: BundleState | str | None = None
    ) -> bool:
        """Bind a bundle to a next hop (None: unbind), optionally changing its state too."""
        if state is None:
            return (
                self._update("UPDATE bundles SET next_hop = ? WHERE id = ?", (_hop(next_hop), store_id)) > 0
            )
        return (
            self._update(
                "UPDATE bundles SET next_hop = ?, state = ? WHERE id = ?",
                (_hop(next_hop), _state(state), store_id),
            )
            > 0
        )

    def requeue(
        self,
        next_hop: EID | str | None = None,
        *,
        from_state: BundleState | str = BundleState.FORWARDING,
        to_state: BundleState | str = BundleState.PENDING,
    ) -> int:
        """Move every bundle in ``from_state`` (for ``next_hop``, or any) to ``to_state``.

        For a link that went down, and at start for the transfers a crash interrupted.
        Returns how many bundles moved.
        """
        hop = _hop(next_hop)
        if hop is None:
            return self._update(
                "UPDATE bundles SET state = ? WHERE state = ?", (_state(to_state), _state(from_state))
            )
        return self._update(
            "UPDATE bundles SET state = ? WHERE state = ? AND next_hop = ?",
            (_state(to_state), _state(from_state), hop),
        )

    def remove(self, store_id: int, reason: RemoveReason | str, *, remember: bool | None = None) -> bool:
        """Delete a bundle; False when there was none. Its file goes once the removal commits.

        With ``remember`` (the default for DELIVERED) its identity is kept, until it expires,
        so that a copy received later is recognised as a duplicate.
        """
        why = _reason(reason)
        keep = why == "delivered" if remember is None else remember
        with self._lock:
            self._check_open()
            meta = self._meta.get(store_id)
            key = self._key_by_id.get(store_id)
            if meta is None or key is None:
                return False
            self._begin()
            if self._ins.pop(store_id, None) is None:
                self._del.append((store_id,))
            unwritten = self._unwritten.pop(store_id, None)
            size, name, expiry = meta
            if keep:
                self._rem.append((*key, expiry))
                self._remember(key, expiry)
            self._forget_row(store_id)
            self._count -= 1
            self._bytes -= size
            if name is not None:
                self._unlink_after.add(name)
                if unwritten is not None:  # never written, never read: reusable as it is
                    self._keep(name, unwritten[1])
                    if self.recycle_below:
                        self._recyclable[name] = unwritten[2]
                elif size < self.recycle_below:
                    self._recyclable[name] = size
            self._bump("removed." + why, 1)
            self._end()
            return True

    def mark_delivered(self, identity: BundleIdentity, expiry_ms: int) -> None:
        """Remember that this bundle was delivered (or seen) until ``expiry_ms``: a later copy
        is a duplicate."""
        key = _key_of(identity)
        expiry = _clamp_i64(_int(expiry_ms, "expiry_ms"))
        with self._lock:
            self._check_open()
            self._begin()
            self._rem.append((*key, expiry))
            self._remember(key, expiry)
            self._end()

    def expire(self, now_ms: int) -> list[int]:
        """Remove every bundle whose expiry is at or before ``now_ms``; their store ids.

        Also forgets delivered identities and quarantined rows that expired.
        """
        now = _clamp_i64(_int(now_ms, "now_ms"))
        with self._lock:
            self._check_open()
            # The expiry times are in memory, with the earliest of each kind: the tables need no
            # index on them (each index is one more page to write with every commit).
            rows: list[tuple[int, int, str | None]] = []
            if now >= self._meta_min_expiry:
                later = _I63  # one pass: what expires, and the earliest of what stays
                for sid, (size, name, e) in self._meta.items():
                    if e <= now:
                        rows.append((sid, size, name))
                    elif e < later:
                        later = e
                self._meta_min_expiry = later
            keys: list[_Key] = []
            if now >= self._known_min_expiry:
                later = _I63
                for key, e in self._known_keys.items():
                    if e <= now:
                        keys.append(key)
                    elif e < later:
                        later = e
                for key in keys:
                    del self._known_keys[key]
                self._known_min_expiry = later
            if not rows and not keys and not self._quarantined_rows:
                return []
            self._begin()
            self._write_pending()
            conn = self._conn
            try:
                if rows:
                    conn.executemany(_DELETE, [(sid,) for sid, _, _ in rows])
                if keys:
                    conn.executemany(_FORGET, keys)
                gone = []
                if self._quarantined_rows:
                    gone = conn.execute(
                        "DELETE FROM quarantine WHERE expiry_ms <= ? RETURNING file", (now,)
                    ).fetchall()
                    (self._quarantined_rows,) = conn.execute("SELECT count(*) FROM quarantine").fetchone()
            except sqlite3.Error as exc:
                raise self._fail("expiring bundles", exc) from exc
            for sid, size, name in rows:
                self._forget_row(sid)
                self._count -= 1
                self._bytes -= size
                if name is not None:
                    self._unlink_after.add(name)
            for (name,) in gone:
                if name is not None:
                    self._unlink_after.add(name)
            if rows:
                self._bump("removed.expired", len(rows))
            self._end()
            return sorted(r[0] for r in rows)

    def _quarantine(self, store_id: int, problem: str) -> None:
        """Move a row to the quarantine table (caller holds the lock, transaction open)."""
        self._write_pending()
        try:
            self._conn.execute(_QUARANTINE, (problem, _dtn_now_ms(), store_id))
            rows = self._conn.execute(
                "DELETE FROM bundles WHERE id = ? RETURNING size", (store_id,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._fail("quarantining a bundle", exc) from exc
        self._quarantined_rows += 1
        if rows:
            self._forget_row(store_id)
            self._count -= 1
            self._bytes -= rows[0][0]

    def quarantined(self) -> list[tuple[int, str]]:
        """The quarantined rows: (store id, problem)."""
        return [(int(r[0]), str(r[1])) for r in self._query("SELECT id, problem FROM quarantine ORDER BY id")]

    # -- counters -----------------------------------------------------------------------------

    def _bump(self, name: str, delta: int) -> None:
        """Count into a statistics counter: written with the next commit that writes counters
        anyway, or after :data:`_STATS_EVERY_S`, so that most commits leave the counters
        alone. A process killed may lose the last second of counts, never a bundle."""
        self._counters[name] = self._counters.get(name, 0) + delta
        self._dirty_stats.add(name)

    def counter(self, name: str) -> int:
        """A node counter (0 when never set)."""
        with self._lock:
            self._check_open()
            return self._counters.get(name, 0)

    def set_counter(self, name: str, value: int) -> None:
        """Set a node counter (a signed 64-bit integer); durable with the next commit."""
        if type(value) is not int or not -_I63 <= value < _I63:
            raise StoreError(f"a counter is a signed 64-bit integer, not {value!r:.40}")
        with self._lock:
            self._check_open()
            self._begin()
            self._counters[name] = value
            self._dirty_counters.add(name)
            self._end()

    def next_creation_stamp(self, now_ms: int) -> tuple[int, int]:
        """A (creation time, sequence number) pair never handed out before, even across restarts.

        The time is ``now_ms`` unless the clock went back (or is 0, no accurate clock): then the
        last time is kept and the sequence number goes on from the last one. Durable with the
        commit of the batch that stores the bundle.
        """
        if not _is_u64(now_ms):
            raise StoreError(f"now_ms must be an unsigned 64-bit integer, not {now_ms!r:.40}")
        with self._lock:
            self._check_open()
            last_time = _from_i64(self._counters.get("creation.time", 0))
            if "creation.seq" in self._counters and now_ms <= last_time:
                stamp = (last_time, _from_i64(self._counters["creation.seq"]) + 1)
                if stamp[1] >= _U64:
                    raise StoreError("creation sequence numbers exhausted for this creation time")
            else:
                stamp = (now_ms, 0)
            self._begin()
            self._counters["creation.time"] = _to_i64(stamp[0])
            self._counters["creation.seq"] = _to_i64(stamp[1])
            self._dirty_counters.update(("creation.time", "creation.seq"))
            self._end()
            return stamp

    # -- summary and closing ------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def bytes_stored(self) -> int:
        """The sum of the sizes of the stored bundles."""
        return self._bytes

    def stats(self) -> StoreStats:
        """Counts and bytes, by state and by next hop, and removal counters."""
        with self._lock:
            self._check_open()
            by_state = {
                str(s): int(n) for s, n in self._query("SELECT state, count(*) FROM bundles GROUP BY state")
            }
            by_hop: dict[str | None, int] = {
                (None if h is None else str(h)): int(n)
                for h, n in self._query("SELECT next_hop, count(*) FROM bundles GROUP BY next_hop")
            }
            files = int(self._query("SELECT count(*) FROM bundles WHERE file IS NOT NULL")[0][0])
            quarantined = int(self._query("SELECT count(*) FROM quarantine")[0][0])
            known = int(self._query("SELECT count(*) FROM known")[0][0])
            removed = {k.split(".", 1)[1]: v for k, v in self._counters.items() if k.startswith("removed.")}
            return StoreStats(
                self._count,
                self._bytes,
                by_state,
                by_hop,
                self.quota_bytes,
                files,
                quarantined,
                known,
                removed,
            )

    def close(self) -> None:
        """Commit what waits, abort open writers, and close the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            if self._depth:
                raise StoreError("cannot close the bundle store inside a batch")
            for writer in list(self._writers):
                writer.abort()
            try:
                if self._dirty_stats:
                    self._begin()
                    self._stats_due = 0.0
                self._commit()
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
            finally:
                for name, _ in self._free:  # files kept for reuse hold nothing
                    self._drop(name)
                self._free.clear()
                self._free_bytes = 0
                self._close_quietly()

    def _close_quietly(self) -> None:
        self._closed = True
        fds, self._fds = self._fds, {}
        unwritten, self._unwritten = self._unwritten, {}
        for fd in [*fds.values(), *(u[1] for u in unwritten.values())]:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._deleter is not None:
            self._deleter.shutdown()  # every file deleted before the lock is released
            self._deleter = None
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def __enter__(self) -> BundleStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._count} bundles, {self._bytes} bytes"
        return f"<BundleStore {str(self.path)!r}: {state}>"

    # -- recovery -----------------------------------------------------------------------------

    @classmethod
    def recover(cls, path: Path | str) -> RecoveryReport:
        """Copy every readable row of a corrupt store into a fresh database at the same path.

        The corrupt database (with its ``-wal``) is renamed ``<name>.corrupt-<n>`` and kept.
        Payload files stay where they are and rows copied keep naming them; open the store
        afterwards as usual (its checks at open then quarantine rows whose file is gone and
        remove files no row names). A row whose metadata is readable but whose bytes are not is
        copied to the quarantine table. Lost counters are replaced by safe values (the
        creation-time counter restarts at the current time).
        """
        path = Path(path)
        lock_fd = _lock(path)
        try:
            n = 1
            while path.with_name(f"{path.name}.corrupt-{n}").exists():
                n += 1
            moved = path.with_name(f"{path.name}.corrupt-{n}")
            try:
                for suffix in ("", "-wal", "-shm"):
                    src = Path(f"{path}{suffix}")
                    if src.exists():
                        os.replace(src, Path(f"{moved}{suffix}"))
                _fsync_dir(path.parent)
            except OSError as exc:
                raise _os_error(f"cannot move the corrupt store {path} aside", exc) from exc
            return _salvage(moved, path)
        finally:
            os.close(lock_fd)


class _Checkpointer:
    """Copies the write-ahead log into the database from a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold and, with
    its fsyncs, can take tens of milliseconds: too long for a call made from an event loop. This
    thread, on its own connection, runs a PASSIVE checkpoint (which never blocks the writer) at
    most every second after a commit woke it. Durability does not depend on it: a committed
    transaction is in the log whether or not it was checkpointed. The pause also spares fsyncs:
    a payload file whose bundle left before the next checkpoint is never synced.
    """

    def __init__(self, path: Path, synchronous: str, payload_dir: Path | None = None) -> None:
        self.wake = threading.Event()
        self.syncfs: Callable[[int], int] | None = _SYNCFS
        """libc's ``syncfs`` (None where there is none)."""
        self._unsynced: dict[str, None] = {}
        """Payload files written without fsync (NORMAL mode), synced before the next checkpoint."""
        self._unsynced_lock = threading.Lock()
        self._payload_dir = payload_dir
        self._pdir = "" if payload_dir is None else os.path.join(payload_dir, "")
        self._stopping = threading.Event()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        # Not ``_thread``: mypyc names the C field after the attribute, and ``__thread`` is C's.
        self._runner = threading.Thread(target=self._run, name=f"checkpoint {path.name}", daemon=True)
        self._runner.start()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            if self._stopping.is_set():
                return
            self.wake.clear()
            self.sync_files()
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if self._stopping.wait(_CHECKPOINT_PAUSE_S):
                return

    def written(self, names: Iterable[str]) -> None:
        """Payload files whose rows just committed: fsync them before the next checkpoint."""
        with self._unsynced_lock:
            self._unsynced.update(dict.fromkeys(names))

    def removed(self, names: Iterable[str]) -> None:
        """Payload files whose rows' removal just committed: no checkpoint needs them synced.

        A file recycled or unlinked before a checkpoint reached it then never costs an fsync,
        which on a busy relay is nearly every one of them.
        """
        with self._unsynced_lock:
            for name in names:
                self._unsynced.pop(name, None)

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the payload files the next :meth:`sync_files` will fsync."""
        with self._unsynced_lock:
            return tuple(self._unsynced)

    def sync_files(self) -> None:
        """fsync the payload files written since the last call (those still holding a bundle),
        then their directory; or, when there are many, ``syncfs`` their file system once."""
        if self._payload_dir is None:
            return
        with self._unsynced_lock:
            names, self._unsynced = list(self._unsynced), {}
        if len(names) >= _SYNCFS_FROM and _syncfs(self._payload_dir, self.syncfs):
            return
        synced = False
        for name in names:
            try:
                fd = os.open(self._pdir + name, os.O_RDONLY)
            except OSError:
                continue  # removed meanwhile
            try:
                os.fsync(fd)
                synced = True
            except OSError:
                pass
            finally:
                os.close(fd)
        if synced:
            with contextlib.suppress(OSError):
                _fsync_dir(self._payload_dir)

    def stop(self) -> None:
        """End the thread and close its connection."""
        self._stopping.set()
        self.wake.set()
        self._runner.join()
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()


class BundleWriter:
    """Stores one bundle arriving piece by piece; from :meth:`BundleStore.open_writer`.

    The bytes stay in memory while the bundle is no bigger than the store's large threshold,
    then go to a payload file. Nothing is stored until :meth:`commit`; :meth:`abort` (or leaving
    a ``with`` block without committing) discards everything.
    """

    def __init__(
        self,
        store: BundleStore,
        *,
        identity: BundleIdentity | None,
        destination: EID | None,
        expiry_ms: int,
        klass: int,
        next_hop: str | None,
        state: str,
        received_ms: int,
    ) -> None:
        self._store = store
        self.identity = identity
        self.destination = destination
        self.expiry_ms = expiry_ms
        self.klass = klass
        self.next_hop = next_hop
        self.state = state
        self.received_ms = received_ms
        self.size = 0
        """Bytes written so far."""
        self._reserved = 0
        self._buffer = bytearray()
        self._fd: int | None = None
        self._name: str | None = None
        self._old_size = 0
        self._done = False

    def _reserve(self, n: int) -> None:
        self._store._reserve(n)
        self._reserved += n

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._fd
        if fd is None:
            raise StoreError("a bundle writer lost its file")
        view = memoryview(data).cast("B")
        while view:
            done = os.write(fd, view)
            view = view[done:]

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append bytes of the encoded bundle; StoreError (reason 4) when the quota is exceeded,
        which also aborts the writer."""
        if self._done:
            raise StoreError("this bundle writer is already committed or aborted")
        n = memoryview(data).nbytes
        try:
            if self.size + n > self._reserved:
                self._reserve(self.size + n - self._reserved)
            if self._fd is None:
                if len(self._buffer) + n <= self._store.large_threshold:
                    self._buffer += data
                else:  # to a file now: what was buffered, then ``data`` without copying it first
                    self._name, self._fd, self._old_size = self._store._new_file()
                    if self._buffer:
                        self._write_all(self._buffer)
                    self._write_all(data)
                    self._buffer = bytearray()
            else:
                self._write_all(data)
        except OSError as exc:
            self.abort()
            raise _os_error("cannot write a payload file", exc) from exc
        except BaseException:
            self.abort()
            raise
        self.size += n
        return n

    def commit(
        self, *, identity: BundleIdentity | None = None, destination: EID | None = None
    ) -> StoredBundle | None:
        """Store the bundle durably (within the current batch, if any); None for a duplicate.

        ``identity`` and ``destination`` may be given here when they were not known at open;
        for a bundle that stayed in memory they may be left out and are then decoded.
        """
        if self._done:
            raise StoreError("this bundle writer is already committed or aborted")
        try:
            identity = self.identity if identity is None else identity
            destination = self.destination if destination is None else destination
            if identity is None or destination is None:
                if self._fd is not None:
                    raise StoreError("a large bundle needs its identity and destination at commit")
                decoded = decode_bundle(bytes(self._buffer))
                identity = decoded.id if identity is None else identity
                destination = decoded.primary.destination if destination is None else destination
            _key_of(identity)  # refuse a malformed identity before the file is closed
            if self._fd is not None:
                if self._old_size > self.size:  # a recycled file that was longer
                    os.ftruncate(self._fd, self.size)
                if self._store.synchronous == "FULL":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
        except OSError as exc:
            self.abort()
            raise _os_error("cannot write a payload file", exc) from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        name = self._name
        data = None if name is not None else bytes(self._buffer)
        self._buffer = bytearray()
        try:
            return self._store._commit_writer(self, identity, destination, data, name)
        except BaseException:
            if name is not None:
                _unlink(self._store.payload_dir / name)
            raise

    def abort(self) -> None:
        """Discard what was written. Does nothing once committed or aborted."""
        if self._done:
            return
        self._done = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self._name is not None:
            _unlink(self._store.payload_dir / self._name)
        self._buffer = bytearray()
        self._store._release(self)

    @property
    def done(self) -> bool:
        """True once committed or aborted."""
        return self._done

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()


# ---------------------------------------------------------------------------------------------
# Recovery of a corrupt database: copy what SQLite can still read.

_OLD_RANGE: Final = (
    "SELECT id, source, creation_time, sequence, frag_offset, frag_length, destination, received_ms, "
    "expiry_ms, size, klass, state, next_hop, file, data FROM bundles WHERE id > ? ORDER BY id"
)
_OLD_ONE: Final = (
    "SELECT id, source, creation_time, sequence, frag_offset, frag_length, destination, received_ms, "
    "expiry_ms, size, klass, state, next_hop, file, data FROM bundles WHERE id = ?"
)
_OLD_META: Final = (
    "SELECT id, source, creation_time, sequence, frag_offset, frag_length, destination, received_ms, "
    "expiry_ms, size, klass, state, next_hop, file FROM bundles WHERE id = ?"
)
_NEW_BUNDLE: Final = (
    "INSERT OR IGNORE INTO bundles (id, source, creation_time, sequence, frag_offset, frag_length, "
    "destination, received_ms, expiry_ms, size, klass, state, next_hop, file, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NEW_QUARANTINED: Final = (
    "INSERT OR REPLACE INTO quarantine (id, source, creation_time, sequence, frag_offset, frag_length, "
    "destination, received_ms, expiry_ms, size, klass, state, next_hop, file, problem, quarantined_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PROBE_LIMIT: Final = 1_000_000


def _lock(path: Path) -> int:
    """Take the exclusive lock of the store's directory; the descriptor holding it.

    The lock is per directory, not per database file, because the payload files of a store
    live in the directory's ``payloads/``: a second store there would take them for orphans.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _os_error(f"cannot open the bundle store {path}", exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreError(
            f"cannot open the bundle store {path}: a store in {path.parent} is already open "
            "(by this or another process; one store per directory)"
        ) from exc
    return fd


def _create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes (inside the caller's transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")


def _salvage(old_path: Path, new_path: Path) -> RecoveryReport:
    problems: list[str] = []
    try:
        old = sqlite3.connect(old_path, isolation_level=None)
    except sqlite3.Error as exc:
        raise _db_error(f"cannot open {old_path}", exc) from exc
    try:
        new = sqlite3.connect(new_path, isolation_level=None)
    except sqlite3.Error as exc:
        old.close()
        raise _db_error(f"cannot create {new_path}", exc) from exc
    try:
        new.execute("PRAGMA journal_mode=WAL")
        new.execute("BEGIN IMMEDIATE")
        _create_schema(new)
        bundles = _salvage_bundles(old, new, problems)
        known = _salvage_table(old, new, "known", 6, problems)
        _salvage_table(old, new, "quarantine", 17, problems)
        counters = _salvage_table(old, new, "counters", 2, problems)
        row = new.execute("SELECT value FROM counters WHERE name = 'creation.time'").fetchone()
        if (
            row is None
            or new.execute("SELECT 1 FROM counters WHERE name = 'creation.seq'").fetchone() is None
        ):
            new.execute(
                "INSERT OR REPLACE INTO counters VALUES ('creation.time', ?), ('creation.seq', 0)",
                (max(_dtn_now_ms(), 0),),
            )
            problems.append("no creation-time counter was recovered; it restarts at the current time")
        new.execute("COMMIT")
    except sqlite3.Error as exc:
        raise _db_error(f"cannot write the recovered store {new_path}", exc) from exc
    finally:
        old.close()
        new.close()
    return RecoveryReport(old_path, bundles, known, counters, tuple(problems))


def _salvage_bundles(old: sqlite3.Connection, new: sqlite3.Connection, problems: list[str]) -> int:
    """Copy the bundles table id by id range, probing single ids around unreadable pages."""
    highest = 0
    for sql in ("SELECT max(id) FROM bundles", "SELECT value FROM counters WHERE name = 'store.last_id'"):
        with contextlib.suppress(sqlite3.Error):
            value = old.execute(sql).fetchone()
            if value and isinstance(value[0], int):
                highest = max(highest, value[0])
    copied = 0
    last = 0
    probes = 0
    while True:
        try:
            for row in old.execute(_OLD_RANGE, (last,)):
                new.execute(_NEW_BUNDLE, row)
                copied += 1
                last = row[0]
            break
        except sqlite3.DatabaseError as exc:
            # Step over the unreadable stretch one store id at a time.
            first = last + 1
            resumed = False
            while last < highest and probes < _PROBE_LIMIT:
                last += 1
                probes += 1
                try:
                    one = old.execute(_OLD_ONE, (last,)).fetchall()
                except sqlite3.DatabaseError:
                    _salvage_metadata(old, new, last, problems)
                    continue
                if one:
                    new.execute(_NEW_BUNDLE, one[0])
                    copied += 1
                    resumed = True
                    break
            end = last - 1 if resumed else last
            if end >= first:
                problems.append(f"bundles with store ids {first} to {end} could not be read ({exc})")
            if not resumed:
                break
    new.execute("INSERT OR REPLACE INTO counters VALUES ('store.last_id', ?)", (highest,))
    return copied


def _salvage_metadata(
    old: sqlite3.Connection, new: sqlite3.Connection, store_id: int, problems: list[str]
) -> None:
    """Quarantine a bundle whose row cannot be read whole but whose metadata can."""
    try:
        meta = old.execute(_OLD_META, (store_id,)).fetchall()
    except sqlite3.DatabaseError:
        return
    if meta:
        problem = "its bytes were unreadable in a corrupt database"
        new.execute(_NEW_QUARANTINED, (*meta[0], problem, _dtn_now_ms()))
        problems.append(f"bundle {store_id} quarantined: {problem}")


def _salvage_table(
    old: sqlite3.Connection, new: sqlite3.Connection, table: str, width: int, problems: list[str]
) -> int:
    """Copy the rows of a small table up to the first unreadable one."""
    copied = 0
    try:
        cursor = old.execute(f"SELECT * FROM {table}")  # noqa: S608 - the table name is ours
        for row in cursor:
            if len(row) == width:
                new.execute(f"INSERT OR IGNORE INTO {table} VALUES ({', '.join('?' * width)})", row)  # noqa: S608
                copied += 1
    except sqlite3.DatabaseError as exc:
        problems.append(f"table {table}: stopped after {copied} rows ({exc})")
    return copied
