"""A running DTN node: the pure agent, the SQLite store and the convergence layers, on asyncio.

The node is the only place where the agent's decisions meet the world: it reads the clock,
makes ``Persist`` durable (one group commit per event-loop turn, before any received bundle is
acknowledged to its sender), pulls bundles for each up link in class order, and keeps bundles
for local endpoints in the store until an application takes them, so nothing accepted is lost
when the process is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from proxima import speedups
from proxima.agent.agent import (
    BundleAgent,
    Deliver,
    Identity,
    Persist,
    Transmit,
    Unpersist,
    default_class,
    expiry_of,
)
from proxima.agent.routing import StaticRouter
from proxima.bpv7.bundle import Bundle, BundleFlag, PrimaryBlock, bundle_identity, decode_bundle
from proxima.bpv7.eid import DTN_NONE, EID
from proxima.bpv7.stream import BundleHead, PayloadCRC, decode_bundle_head
from proxima.errors import (
    BundleError,
    ConfigError,
    Incomplete,
    LocalError,
    ProximaError,
    StoreError,
    TooLargeForLink,
)
from proxima.routing.router import ContactGraphRouter
from proxima.runtime.links import SplicedBundle
from proxima.runtime.store import BundleState, BundleStore, RemoveReason

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxima.agent.agent import Action
    from proxima.runtime.config import NodeConfig
    from proxima.runtime.links import Link
    from proxima.runtime.store import BundleWriter, StoredBundle
    from proxima.runtime.transports import Closable

__all__ = ["Delivery", "Node", "dtn_now_ms"]

DTN_EPOCH_UNIX_MS: Final = 946_684_800_000
_REPORT_DELIVERY: Final = int(BundleFlag.REPORT_DELIVERY)
_STAMP_TIME: Final = "agent.creation_time"
_STAMP_SEQ: Final = "agent.sequence"
STAMP_RESERVE_MS: Final = 2_000
"""Creation times reserved ahead in the store: after a restart within that time, the node's
new bundles carry a creation time up to this far ahead of its clock, never one it used."""
STAMP_RESERVE_SEQ: Final = 1 << 16
"""Sequence numbers reserved ahead by a node without an accurate clock (creation time 0)."""
RETRY_DELAY: Final = 0.5
"""Seconds before a bundle whose send failed is queued again."""
SEND_WINDOW: Final = 1024
"""Bundles in flight per link at once (TCPCL pipelines transfers)."""
SEND_WINDOW_BYTES: Final = 16 * 1024 * 1024
"""Encoded bytes in flight per link at once (one bundle at least, however big)."""
LARGE_THRESHOLD: Final = 32 * 1024
"""Bundles above this size are stored in files of their own: each byte then goes to disk once,
not into the write-ahead log and again into the database by the checkpoint."""
DELIVERY_CACHE_BYTES: Final = 32 * 1024 * 1024
"""Payload bytes of waiting deliveries kept decoded in memory (beyond it they are read back)."""
STREAM_THRESHOLD: Final = 4 * 1024 * 1024
"""Bundles larger than this never sit whole in memory: they go to a store file as they arrive,
only their blocks before the payload are decoded, and they leave again read from that file."""
MAX_HEAD: Final = 1024 * 1024
"""The most bytes a streamed bundle may have before its payload data (its other blocks)."""
_CHUNK: Final = 1024 * 1024

GC_THRESHOLDS: Final = (50_000, 20, 100)
"""The cyclic collector's thresholds in a node process (CPython's defaults: 700, 10, 10)."""

log = logging.getLogger("proxima.node")


def tune_gc() -> None:
    """Set the collector up for a long-running node: what exists at start-up is frozen (never
    scanned again) and collections run per 50,000 allocations instead of 700.

    A busy node holds tens of thousands of bundles, each a few long-lived objects, and allocates
    a few dozen short-lived ones per bundle; with the defaults the collector rescans the held
    ones over and over (two nodes relaying 100,000 1-KB bundles went from about 5,200 to 8,200
    per second with these thresholds). Cycles are still collected, only in larger batches.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def dtn_now_ms() -> int:
    """The current DTN time: milliseconds since 2000-01-01T00:00:00Z."""
    return time.time_ns() // 1_000_000 - DTN_EPOCH_UNIX_MS


def mission_clock(start_unix: float | None, speed: float) -> Callable[[], int]:
    """A DTN clock that reads ``start_unix`` now and runs ``speed`` times faster than real time
    (a plan of days played in minutes); with no start and speed 1, the real clock."""
    if start_unix is None and speed == 1.0:
        return dtn_now_ms
    real0 = time.monotonic()
    start_ms = dtn_now_ms() if start_unix is None else round(start_unix * 1000) - DTN_EPOCH_UNIX_MS

    def now() -> int:
        return start_ms + round((time.monotonic() - real0) * 1000 * speed)

    return now


class PayloadFile:
    """Where a large delivered payload lies: ``length`` bytes at ``offset`` in ``path``."""

    __slots__ = ("length", "offset", "path")

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self.path = path
        self.offset = offset
        self.length = length

    def read(self) -> bytes:
        """The whole payload in memory."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read(self.length)

    def copy_to(self, target: Path) -> None:
        """Write the payload to a new file ``target`` without holding it in memory: with
        ``copy_file_range`` (the kernel copies, or shares blocks where the file system can),
        else read and written a chunk at a time."""
        with self.path.open("rb") as src, target.open("xb") as dst:
            offset, left = self.offset, self.length
            with contextlib.suppress(OSError):  # not across these file systems: copy by hand
                while left:
                    n = os.copy_file_range(src.fileno(), dst.fileno(), left, offset)
                    if not n:
                        raise StoreError(f"{self.path.name}: the stored bundle ends {left} bytes early")
                    offset += n
                    left -= n
            src.seek(offset)
            while left:
                chunk = src.read(min(_CHUNK, left))
                if not chunk:
                    raise StoreError(f"{self.path.name}: the stored bundle ends {left} bytes early")
                dst.write(chunk)
                left -= len(chunk)


class Delivery:
    """A bundle waiting in the store for the application registered on its destination.

    A large one (``payload_file`` set) has an empty payload block in ``bundle``: its payload
    stays in the store's file until the application copies it out.
    """

    __slots__ = ("bundle", "payload_file", "store_id")

    def __init__(self, store_id: int, bundle: Bundle, payload_file: PayloadFile | None = None) -> None:
        self.store_id = store_id
        self.bundle = bundle
        self.payload_file = payload_file

    @property
    def payload_length(self) -> int:
        """The payload's size in bytes."""
        return len(self.bundle.payload) if self.payload_file is None else self.payload_file.length

    def read_payload(self) -> bytes:
        """The payload in memory (read from the store for a large one)."""
        return self.bundle.payload if self.payload_file is None else self.payload_file.read()


def _payload_block_start(head: BundleHead) -> int:
    return head.payload_offset - len(head.payload_head)


class _Streamed:
    """A bundle arriving too large to hold: written to a store file as it comes, its blocks
    before the payload decoded as soon as they are there, its payload CRC computed on the way."""

    __slots__ = ("crc", "head", "pending", "size", "trailer", "writer")

    def __init__(self, writer: BundleWriter) -> None:
        self.writer = writer
        self.pending = bytearray()  # the first bytes, until the head decodes
        self.head: BundleHead | None = None
        self.crc: PayloadCRC | None = None
        self.size = 0
        self.trailer = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writer.write(data)
        pos = self.size
        self.size += len(data)
        if self.head is None:
            self.pending += data
            try:
                head = decode_bundle_head(self.pending)
            except Incomplete:
                if len(self.pending) > MAX_HEAD:
                    raise BundleError(
                        f"the blocks before the payload take more than {MAX_HEAD} bytes", reason=8
                    ) from None
                return
            self.head = head
            self.crc = PayloadCRC(head.payload_head, head.payload_block.crc_type)
            data, pos, self.pending = bytes(self.pending), 0, bytearray()
        head, crc = self.head, self.crc
        if crc is None:  # pragma: no cover - set with head
            return
        start = head.payload_offset
        end = start + head.payload_length
        lo, hi = max(pos, start), min(pos + len(data), end)
        view = memoryview(data)
        if lo < hi:
            crc.update(view[lo - pos : hi - pos])
        if pos + len(data) > end:
            self.trailer += view[max(end, pos) - pos :]
            if len(self.trailer) > 6:
                raise BundleError("the bundle goes on after its payload block", reason=8)

    def finish(self) -> BundleHead:
        """The last byte arrived: the head, once the payload CRC and the end are checked."""
        head, crc = self.head, self.crc
        if head is None or crc is None:
            raise BundleError("the bundle is truncated before its payload", reason=8)
        if self.size < head.total_length:
            raise BundleError(
                f"the bundle is truncated: {self.size} of {head.total_length} bytes", reason=8
            )
        crc.check_trailer(self.trailer)
        return head


class _Incoming:
    """A bundle arriving from a link: its pieces accumulate (or stream to a file once the bundle
    is large), commit decodes and persists. A bundle that came in one piece is used as it came,
    never copied.

    One the store has no room for is refused (StoreError, reason 4) only once its blocks before
    the payload are in, so that the deletion status report it may ask for can be sent."""

    __slots__ = ("_head", "_link", "_node", "_pieces", "_refusal", "_size", "_stream")

    def __init__(self, node: Node, link: Link | None, length: int | None = None) -> None:
        self._node = node
        self._link = link
        self._pieces: list[bytes] = []
        self._size = 0
        self._stream: _Streamed | None = None
        self._refusal: StoreError | None = None
        self._head: bytearray | None = None  # while refusing: the bytes up to the payload
        quota = node.config.quota_bytes
        if quota is not None and length is not None and length > quota:
            self._refusal = StoreError(f"a {length}-byte bundle exceeds the store quota of {quota}", reason=4)
        elif length is not None and length > STREAM_THRESHOLD:
            try:
                self._stream = node.open_stream(length)
            except StoreError as exc:
                if exc.reason != 4:
                    raise
                self._refusal = exc

    def _refusing(self, refusal: StoreError, data: bytes | memoryview) -> None:
        """Read up to the payload of a bundle that will be refused; then report and refuse it."""
        buffer = self._head
        if buffer is None:
            buffer = self._head = bytearray()
        buffer += data
        try:
            head = decode_bundle_head(buffer)
        except Incomplete:
            if len(buffer) <= MAX_HEAD:
                return
            raise refusal from None
        except BundleError:
            raise refusal from None
        self._node.report_refused(head)
        raise refusal

    def write(self, data: bytes | memoryview) -> None:
        stream = self._stream
        if stream is not None:
            stream.write(data)
            return
        refusal = self._refusal
        if refusal is not None:
            self._refusing(refusal, data)
            return
        self._pieces.append(data if type(data) is bytes else bytes(data))
        self._size += len(data)
        quota = self._node.config.quota_bytes
        if quota is not None and self._size > quota:
            self._refusal = refusal = StoreError("the bundle is larger than the whole store quota", reason=4)
            pieces, self._pieces, self._size = self._pieces, [], 0
            self._refusing(refusal, b"".join(pieces))
            return
        if self._size > STREAM_THRESHOLD:
            self._stream = stream = self._node.open_stream(None)
            pieces, self._pieces, self._size = self._pieces, [], 0
            for piece in pieces:
                stream.write(piece)

    async def commit(self) -> None:
        await asyncio.shield(self.commit_nowait())

    def commit_nowait(self) -> asyncio.Future[None]:
        """:meth:`commit` without a coroutine: check and apply the bundle now (raising
        BundleError or StoreError), then the future resolves once it is durable. The future is
        shared by every bundle of the same group commit: wait on it, never cancel it."""
        if self._refusal is not None:
            raise self._refusal
        stream, self._stream = self._stream, None
        if stream is not None:
            self._node.accept_streamed(stream, self._link)
            return self._node.durable_shared()
        pieces, self._pieces, self._size = self._pieces, [], 0
        self._node.accept(pieces[0] if len(pieces) == 1 else b"".join(pieces), self._link)
        return self._node.durable_shared()

    def abort(self) -> None:
        self._pieces, self._size = [], 0
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.writer.abort()


class Node:
    """A DTN node. ``clock`` returns DTN ms (a test passes a virtual one)."""

    def __init__(self, config: NodeConfig, *, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        self.clock = mission_clock(config.clock.start_unix, config.clock.speed) if clock is None else clock
        self.plan_router: ContactGraphRouter | None = None
        router: StaticRouter | ContactGraphRouter
        if config.contact_plan is None:
            router = StaticRouter([n.node_id for n in config.neighbours])
            for r in config.routes:
                router.add_route(r.destination, r.via)
        else:
            router = self.plan_router = _load_plan(config, self.clock())
        self.router = router
        self.store: BundleStore | None = None
        self.agent = BundleAgent(config.node_id, self.router, endpoints=config.endpoints)
        self._sid: dict[int, int] = {}  # agent key -> store id
        self._kept: set[int] = set()  # agent keys whose row became a delivery
        self._deliveries: dict[EID, list[int]] = {}  # endpoint -> store ids, oldest first
        self._received: tuple[Bundle, bytes] | None = None
        self._prestored: tuple[Identity, int] | None = None  # a large bundle the store already has
        self._external: dict[int, int] = {}  # store id -> its payload block's offset in the file
        # deliveries whose bundle asked for a delivery report, sent when the application has it
        self._report_on_ack: dict[int, Bundle] = {}
        self._cached: dict[int, Bundle] = {}  # store id -> the decoded bundle waiting for delivery
        self._cached_bytes = 0
        self._arrived: dict[EID, asyncio.Event] = {}  # endpoint -> set when a bundle is queued
        self._work = asyncio.Event()  # wakes the task-driven senders (links without send_future)
        self._pumps: dict[Link, _LinkPump] = {}
        self._handlers: dict[EID, Callable[[Delivery], None]] = {}
        self._consumers: dict[EID, Callable[[], None]] = {}  # offered deliveries before a commit
        self._handing: list[tuple[EID, int]] = []  # deliveries for handlers, oldest first
        self._applying = 0
        self._handing_over = False
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._shared_waiter: asyncio.Future[None] | None = None
        self.last_sent: Bundle | None = None
        self._saved_stamp: tuple[int, int] = (0, -1)
        self._links: dict[Link, asyncio.Task[None] | None] = {}  # None: fed by a pump
        self._tasks: list[asyncio.Task[Any]] = []
        self._servers: list[Closable] = []
        self._closed: dict[int, asyncio.Event] = {}
        self.links_up: dict[str, int] = {}
        self.links_opened: dict[str, int] = {}
        """Sessions that came up since the start, per convergence layer: a link that keeps
        dropping and coming back shows here, where ``links_up`` stays at 1."""
        self.send_window = SEND_WINDOW
        """Bundles in flight per link at most."""
        self.started_ms = 0
        self._copies: set[asyncio.Future[None]] = set()  # files being copied into the store
        self.failure: StoreError | None = None
        """Set when the store failed in a way that may leave it and the agent apart."""
        self.failed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and take back every bundle it holds (the restart path)."""
        directory = self.config.store_path
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{directory}: cannot create the store directory: {exc.strerror}") from exc
        self.store = store = BundleStore(
            directory / "bundles.db",
            quota_bytes=self.config.quota_bytes,
            large_threshold=LARGE_THRESHOLD,
            autocommit=False,
            recycle_below=STREAM_THRESHOLD,  # larger ones are read while being sent: never reused
        )
        store.requeue()
        self.started_ms = now = self.clock()
        stamp = (store.counter(_STAMP_TIME), store.counter(_STAMP_SEQ))
        if stamp != (0, 0):
            self.agent.resume_timestamps(stamp)  # never reuse a (creation time, sequence) pair
        self._saved_stamp = self.agent.sequence_state
        restored: list[Action] = []
        for info in store.pending(state=None):
            if info.state == BundleState.DELIVERING and info.next_hop is not None:
                self._deliveries.setdefault(EID.parse(info.next_hop), []).append(info.store_id)
                continue
            try:
                actions: list[Action] = []
                head = self._stored_head(info.store_id) if info.size > STREAM_THRESHOLD else None
                if head is not None and self._is_local_fragment(head.primary):
                    head = None  # reassembly needs the payload in memory, as accept_streamed does
                if head is None:
                    key = self.agent.restore(
                        store.get(info.store_id),
                        received_ms=info.received_ms,
                        klass=info.klass,
                        now_ms=now,
                        actions=actions,
                    )
                else:
                    self._external[info.store_id] = _payload_block_start(head)
                    key = self.agent.restore_bundle(
                        Bundle(head.primary, head.blocks),
                        received_ms=info.received_ms,
                        klass=info.klass,
                        now_ms=now,
                        actions=actions,
                        payload_length=head.payload_length,
                    )
            except ProximaError:
                continue  # quarantined or unreadable: the store already reports it
            self._sid[key] = info.store_id
            restored.extend(actions)
        self._apply(restored)
        store.flush()

    async def start(self) -> None:
        """Open the store, start listeners, the app interface and the neighbour dialers."""
        if self.store is None:
            self.open()
        from proxima.runtime import transports  # sockets live there, not in the cores

        for lc in self.config.listen:
            self._servers.append(await transports.listen(lc, self))
        if self.plan_router is None:
            for nc in self.config.neighbours:
                self._tasks.append(asyncio.create_task(self._dial(nc)))
        else:
            self._tasks.append(asyncio.create_task(self._contact_loop(self.plan_router)))
        self._tasks.append(asyncio.create_task(self._expiry_loop()))

    async def stop(self) -> None:
        """Close links and listeners, flush and close the store."""
        for task in self._tasks:
            task.cancel()
        for server in self._servers:
            server.close()
        for link in list(self._links):
            with contextlib.suppress(Exception):
                await link.close()
        for task in [*self._tasks, *(t for t in self._links.values() if t is not None)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for copy in list(self._copies):  # files being copied in: their threads finish first
            copy.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await copy
        self._tasks.clear()
        if self.store is not None:
            self.store.flush()
            self.store.close()
            self.store = None

    # -- durability ----------------------------------------------------------------------------

    def durable(self) -> asyncio.Future[None]:
        """A future that resolves once everything applied so far is committed.

        Every caller gets its own future (cancelling one wait cancels no other), and all of
        them are served by one commit per event-loop turn (group commit).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not self._flush_waiters:
            # One turn later: what this turn woke (a sender forwarding the bundle, an echo) goes
            # first, so the commit is not on a bundle's way through the node, only before its ack.
            loop.call_soon(loop.call_soon, self._flush)
        self._flush_waiters.append(fut)
        return fut

    def durable_shared(self) -> asyncio.Future[None]:
        """:meth:`durable` for callers that only wait: one future for everyone until the next
        commit, so a link acknowledging a burst of bundles registers one callback, not one per
        bundle. Cancelling it would cancel it for all of them: never do."""
        fut = self._shared_waiter
        if fut is None or fut.done():
            fut = self._shared_waiter = self.durable()
        return fut

    def _flush(self) -> None:
        self._shared_waiter = None
        if self._consumers and self.store is not None:
            for endpoint, consume in list(self._consumers.items()):
                try:
                    consume()
                except Exception:
                    log.exception("%s: a consumer failed before a commit", endpoint)
        waiters, self._flush_waiters = self._flush_waiters, []
        error: StoreError | None = None
        try:
            if self.store is not None:
                self.store.flush()
        except StoreError as exc:
            error = exc
            self._store_failed(exc)
        for fut in waiters:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def _store_failed(self, exc: StoreError) -> None:
        """A commit failed or changes were rolled back: what the agent holds and what the store
        holds may now differ. The node stops taking bundles and says so (``failed``); a restart
        resumes from the store, which is consistent (crash-only)."""
        if self.failure is None:
            self.failure = exc
            log.critical("the bundle store failed (%s); the node must restart", exc)
            self.failed.set()
            for link in list(self._links):
                abort = getattr(link, "abort", None)
                if abort is not None:
                    with contextlib.suppress(Exception):
                        abort()

    def _check_failed(self) -> None:
        if self.failure is not None:
            raise StoreError(f"the node stopped after a store failure ({self.failure}); restart it")

    # -- actions -------------------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        """Carry out the agent's actions; then, outside any other call of it, hand deliveries to
        the endpoints' handlers and feed the links, all within this event-loop turn."""
        self._applying += 1
        try:
            self._apply_actions(actions)
        finally:
            self._applying -= 1
        if self._applying:
            return
        self._work.set()
        if self._handing:
            self._hand_over()
        for pump in list(self._pumps.values()):
            pump.run()

    def _apply_actions(self, actions: list[Action]) -> None:
        store = self._require_store()
        stamp = self.agent.sequence_state
        saved = self._saved_stamp
        if (stamp >= saved) if stamp[0] else (stamp[1] >= saved[1]):
            # Reserve ahead, so that most commits leave the counters' page alone: a restart
            # resumes after the reservation. The sequence mark never goes down, so a node that
            # loses its clock (creation time 0) never reuses a sequence number either.
            if stamp[0]:
                reserved = (stamp[0] + STAMP_RESERVE_MS, max(saved[1], stamp[1]))
            else:
                reserved = (saved[0], stamp[1] + STAMP_RESERVE_SEQ)
            store.set_counter(_STAMP_TIME, reserved[0])
            store.set_counter(_STAMP_SEQ, reserved[1])
            self._saved_stamp = reserved
        # A bundle for a local endpoint comes as Persist then Deliver: store it as a delivery
        # at once (one INSERT) instead of inserting, finding and updating it.
        delivering: dict[Any, EID] | None = None
        merged: dict[Any, int] | None = None
        if len(actions) > 1:
            for a in actions:
                if isinstance(a, Deliver):
                    if delivering is None:
                        delivering = {}
                    delivering[a.identity] = a.endpoint
        received = self._received
        prestored = self._prestored
        for a in actions:
            if prestored is not None and isinstance(a, Persist) and a.identity == prestored[0]:
                pre_sid = prestored[1]
                self._sid[a.key] = pre_sid
                endpoint = None if delivering is None else delivering.get(a.identity)
                if endpoint is not None:
                    store.set_next_hop(pre_sid, str(endpoint), state=BundleState.DELIVERING)
                    self._kept.add(a.key)
                    if merged is None:
                        merged = {}
                    merged[a.identity] = pre_sid
                self._prestored = None
                prestored = None
                continue
            if isinstance(a, Persist):
                # The bytes as received, when the agent keeps the decoded bundle unchanged.
                content: Bundle | bytes = (
                    a.data
                    if a.data is not None
                    else received[1]
                    if received is not None and a.bundle is received[0]
                    else a.bundle
                )
                endpoint = None if delivering is None else delivering.get(a.identity)
                if endpoint is not None:
                    stored = store.add(
                        content,
                        expiry_ms=a.expiry_ms,
                        identity=a.identity,
                        destination=a.bundle.primary.destination,
                        klass=a.klass,
                        received_ms=a.received_ms,
                        next_hop=str(endpoint),
                        state=BundleState.DELIVERING,
                    )
                    if stored is not None:
                        self._sid[a.key] = stored.store_id
                        self._kept.add(a.key)
                        if merged is None:
                            merged = {}
                        merged[a.identity] = stored.store_id
                    continue
                stored = store.add(
                    content,
                    expiry_ms=a.expiry_ms,
                    identity=a.identity,
                    destination=a.bundle.primary.destination,
                    klass=a.klass,
                    received_ms=a.received_ms,
                )
                if stored is not None:
                    self._sid[a.key] = stored.store_id
            elif isinstance(a, Unpersist):
                sid = self._sid.pop(a.key, None)
                if a.key in self._kept:
                    self._kept.discard(a.key)
                elif sid is not None:
                    reason = (
                        RemoveReason.FORWARDED
                        if a.reason == 0
                        else RemoveReason.EXPIRED
                        if a.reason == 1
                        else RemoveReason.DISCARDED
                    )
                    store.remove(sid, reason)
                    self._external.pop(sid, None)
            elif isinstance(a, Deliver):
                sid = None if merged is None else merged.get(a.identity)
                if sid is None:
                    sid = self._deliver(a)
                else:
                    self._queue_delivery(a.endpoint, sid, a.bundle)
                if a.report and sid is not None:
                    self._report_on_ack[sid] = Bundle(a.bundle.primary, ())

    def _queue_delivery(self, endpoint: EID, sid: int, bundle: Bundle | None) -> None:
        if endpoint in self._handlers:
            self._handing.append((endpoint, sid))
        self._deliveries.setdefault(endpoint, []).append(sid)
        if bundle is not None and sid not in self._external and self._cached_bytes < DELIVERY_CACHE_BYTES:
            self._cached[sid] = bundle
            self._cached_bytes += len(bundle.payload)
        arrived = self._arrived.get(endpoint)
        if arrived is not None:
            arrived.set()  # wakes the takers of this endpoint only

    def set_handler(self, endpoint: EID, handler: Callable[[Delivery], None]) -> None:
        """Hand every bundle for ``endpoint`` to ``handler`` as it is delivered, in the event-loop
        turn it arrives in, then forget it as an application's ack would (the node's own echo
        and ping services: no task to wake, no turn lost). Bundles already waiting go first.
        An exception from the handler is logged and the bundle forgotten all the same."""
        self.register(endpoint)
        self._handlers[endpoint] = handler
        self._handing.extend((endpoint, sid) for sid in self._deliveries.get(endpoint, ()))
        if not self._applying:
            self._hand_over()

    def set_consumer(self, endpoint: EID, consume: Callable[[], None]) -> None:
        """Call ``consume`` before each group commit while it is set: it may take the bundles
        ready for ``endpoint`` (:meth:`take_ready`) and acknowledge them with
        :meth:`ack_before_commit`. A bundle acknowledged so is forgotten by the very commit that
        would have stored it: an application reading a stream as fast as bundles come costs the
        store no row and no payload file for them."""
        self._consumers[endpoint] = consume

    def remove_consumer(self, endpoint: EID, consume: Callable[[], None]) -> None:
        """Stop calling ``consume`` (if it is still the consumer of ``endpoint``)."""
        if self._consumers.get(endpoint) is consume:
            del self._consumers[endpoint]

    def ack_before_commit(self, endpoint: EID, store_ids: list[int]) -> None:
        """:meth:`ack_many` for a consumer (see :meth:`set_consumer`): the commit about to run
        makes it durable, so no further commit is asked for."""
        for sid in store_ids:
            self._forget_delivery(endpoint, sid)

    def remove_handler(self, endpoint: EID) -> None:
        """Stop handing bundles for ``endpoint`` over: they wait for :meth:`take` again."""
        self._handlers.pop(endpoint, None)

    def _hand_over(self) -> None:
        """Give the queued deliveries to their handlers (a handler's own sends do not come back
        here: this loop takes what they deliver)."""
        if self._handing_over:
            return
        self._handing_over = True
        try:
            while self._handing:
                endpoint, sid = self._handing.pop(0)
                handler = self._handlers.get(endpoint)
                if handler is None or sid not in self._deliveries.get(endpoint, ()):
                    continue
                try:
                    bundle = self._cached.get(sid)
                    payload = None
                    if bundle is None:
                        bundle, payload = self._load_delivery(sid)
                    handler(Delivery(sid, bundle, payload))
                except Exception:
                    log.exception("%s: the handler failed on bundle %d; forgetting it", endpoint, sid)
                self._forget_delivery(endpoint, sid)
        finally:
            self._handing_over = False

    def _uncache(self, sid: int) -> None:
        bundle = self._cached.pop(sid, None)
        if bundle is not None:
            self._cached_bytes -= len(bundle.payload)

    def _deliver(self, a: Deliver) -> int | None:
        store = self._require_store()
        found = store.find(a.identity)
        if found is not None:
            sid = found.store_id
            if sid in self._deliveries.get(a.endpoint, ()):
                return sid  # already waiting for its application (reassembled again after a restart)
            store.set_next_hop(sid, str(a.endpoint), state=BundleState.DELIVERING)
            for key, s in self._sid.items():
                if s == sid:
                    self._kept.add(key)
                    break
        else:
            stored = store.add(
                a.bundle,
                expiry_ms=a.expiry_ms,
                identity=a.identity,
                destination=a.endpoint,
                next_hop=str(a.endpoint),
                state=BundleState.DELIVERING,
            )
            if stored is None:
                return None
            sid = stored.store_id
        self._queue_delivery(a.endpoint, sid, a.bundle)
        return sid

    def _require_store(self) -> BundleStore:
        if self.store is None:
            raise LocalError("the node is not open")
        return self.store

    # -- receiving (BundleSink) ----------------------------------------------------------------

    def open_incoming(self, link: Link | None, length: int | None) -> _Incoming:
        """A convergence layer starts receiving a bundle."""
        return _Incoming(self, link, length)

    def report_refused(self, head: BundleHead) -> None:
        """Count and report (when it asks) a bundle refused for want of room, of which only the
        blocks before the payload were read. A report the store has no room for is dropped."""
        bundle = Bundle(head.primary, head.blocks)
        if self.store is not None and self.store.is_known(bundle_identity(bundle, head.payload_length)):
            return  # a copy is stored already: nothing was lost
        with contextlib.suppress(StoreError):
            self._apply(self.agent.refuse(bundle, self.clock(), 4, head.payload_length))

    def open_stream(self, length: int | None) -> _Streamed:
        """Start writing an arriving large bundle to the store (``length`` reserved when known)."""
        self._check_failed()
        writer = self._require_store().open_writer(expiry_ms=0, expected_size=length)
        if writer is None:  # pragma: no cover - only with an identity given
            raise StoreError("the store refused a new bundle writer")
        return _Streamed(writer)

    def accept_streamed(self, stream: _Streamed, link: Link | None = None) -> None:
        """Take a large received bundle the store already holds in a file: :meth:`accept`
        without ever reading its payload into memory."""
        store = self._require_store()
        writer = stream.writer
        try:
            head = stream.finish()
            bundle = Bundle(head.primary, head.blocks)
            identity = bundle_identity(bundle, head.payload_length)
            if store.is_known(identity):
                self.agent.counters.duplicates += 1
                writer.abort()
                return
            now = self.clock()
            writer.expiry_ms = expiry_of(bundle, now)
            writer.klass = default_class(bundle, head.payload_length)
            writer.received_ms = now
            stored = writer.commit(identity=identity, destination=head.primary.destination)
        except BaseException:
            writer.abort()
            raise
        if stored is None:
            self.agent.counters.duplicates += 1
            return
        sid = stored.store_id
        if self._is_local_fragment(head.primary):
            # A fragment for this node is reassembled in memory: take it the ordinary way.
            data = store.get(sid)
            store.remove(sid, RemoveReason.DISCARDED, remember=False)
            self.accept(data, link)
            return
        self._external[sid] = _payload_block_start(head)
        actions = self.agent.receive_bundle(bundle, now_ms=now, payload_length=head.payload_length)
        self._prestored = (identity, sid)
        try:
            self._apply(actions)
        finally:
            if self._take_prestored() is not None:  # the agent did not keep it (expired...)
                self._external.pop(sid, None)
                store.remove(sid, RemoveReason.DISCARDED, remember=False)

    def _take_prestored(self) -> tuple[Identity, int] | None:
        """The bundle :meth:`_apply_actions` was to adopt from the store and did not, if any;
        cleared. (Read through a call: the caller's view of the attribute is the one it set
        before :meth:`_apply`, which may have cleared it since.)"""
        prestored, self._prestored = self._prestored, None
        return prestored

    def _is_local_fragment(self, p: PrimaryBlock) -> bool:
        """A fragment this node reassembles (its destination is here)."""
        return bool(p.flags & BundleFlag.IS_FRAGMENT) and self.agent.is_local(p.destination)

    def _stored_head(self, sid: int) -> BundleHead | None:
        """The blocks before the payload of a stored bundle kept in a file (None if inline)."""
        store = self._require_store()
        if store.file_of(sid) is None:
            return None
        with store.open_reader(sid) as f:
            return decode_bundle_head(f.read(MAX_HEAD))

    def accept(self, data: bytes, link: Link | None = None) -> None:
        """Take a received bundle: decode it, drop duplicates, let the agent decide, persist.

        Raises :class:`BundleError` for an invalid bundle and :class:`StoreError` when it
        cannot be kept; the caller then refuses it instead of acknowledging.
        """
        store = self._require_store()
        self._check_failed()
        try:
            bundle = decode_bundle(data)
        except (BundleError, Incomplete) as exc:
            self.agent.count_invalid()
            if isinstance(exc, BundleError):
                raise
            # the transfer is complete, so a bundle that needs more bytes is simply invalid
            raise BundleError(f"the bundle is truncated: {exc}", reason=8) from exc
        identity = bundle.id
        if store.is_known(identity):  # stored or delivered: the store keeps them in memory
            self.agent.counters.duplicates += 1
            return
        self._check_room(len(data), bundle)
        actions = self.agent.receive_bundle(bundle, now_ms=self.clock())
        self._received = (bundle, data)  # stored as received when the agent keeps it unchanged
        try:
            self._apply(actions)
        finally:
            self._received = None

    def _check_room(self, size: int, bundle: Bundle | None) -> None:
        """Refuse, before the agent takes it, a bundle the store has no room for (reason 4)."""
        quota = self.config.quota_bytes
        store = self._require_store()
        if quota is None or store.bytes_stored + size <= quota:
            return
        if bundle is not None:
            with contextlib.suppress(StoreError):  # the deletion report itself may not fit
                self._apply(self.agent.refuse(bundle, self.clock(), 4))
        raise StoreError(
            f"store full: {store.bytes_stored} of {quota} bytes used, no room for {size} more",
            reason=4,
        )

    def link_up(self, link: Link) -> None:
        """A session is up; when its peer is known, start sending to it."""
        self.links_up[link.cla] = self.links_up.get(link.cla, 0) + 1
        self.links_opened[link.cla] = self.links_opened.get(link.cla, 0) + 1
        peer = link.peer
        if peer is None:
            return
        start: Callable[[bytes | SplicedBundle], asyncio.Future[None]] | None = getattr(
            link, "send_future", None
        )
        if start is None:
            self._links[link] = asyncio.create_task(self._sender(link, peer.node_id))
        else:
            self._links[link] = None
            self._pumps[link] = _LinkPump(self, peer.node_id, start)
        self._apply(self.agent.link_up(peer, self.clock()))

    def link_down(self, link: Link) -> None:
        """A session ended; its sender stops and in-flight bundles are retried."""
        self.links_up[link.cla] = max(0, self.links_up.get(link.cla, 0) - 1)
        task = self._links.pop(link, None)
        if task is not None:
            task.cancel()
        pump = self._pumps.pop(link, None)
        if pump is not None:
            pump.close()
        peer = link.peer
        if peer is not None and not any(lk.peer == peer for lk in self._links):
            self._apply(self.agent.link_down(peer, self.clock()))
        self._closed_event(link).set()

    def _closed_event(self, link: Link) -> asyncio.Event:
        return self._closed.setdefault(id(link), asyncio.Event())

    # -- sending -------------------------------------------------------------------------------

    async def _sender(self, link: Link, peer: EID) -> None:
        """Feed a link that sends one bundle per call (MTCP, STCP, UDP): a task per bundle in
        flight, at most :attr:`send_window` of them."""
        window = asyncio.Semaphore(self.send_window)
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                await window.acquire()
                t = self.agent.next_to_send(peer, self.clock())
                if t is None:
                    window.release()
                    self._work.clear()
                    await self._work.wait()
                    continue
                try:
                    data = self._outgoing(t)
                except ProximaError as exc:
                    window.release()
                    self._failed(t.key, exc)
                    continue
                task = asyncio.create_task(self._send_one(link, t, data, window))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
        finally:
            for task in inflight:
                task.cancel()

    def _outgoing(self, t: Transmit) -> bytes | SplicedBundle:
        """What to send for ``t``: its bytes, or its head spliced to the stored payload block."""
        if not t.external:
            return t.data
        sid = self._sid.get(t.key)
        start = None if sid is None else self._external.get(sid)
        located = None if sid is None else self._require_store().file_of(sid)
        if sid is None or start is None or located is None:
            raise StoreError(f"the stored copy of a large bundle (key {t.key}) is missing")
        path, size = located
        try:
            return SplicedBundle(t.data, path, start, size - start)
        except OSError as exc:
            raise StoreError(f"cannot read the stored bundle {path.name}: {exc.strerror}") from exc

    async def _send_one(
        self, link: Link, t: Transmit, data: bytes | SplicedBundle, window: asyncio.Semaphore
    ) -> None:
        try:
            await link.send(data)
        except asyncio.CancelledError:
            self._apply(self.agent.transmit_failed(t.key, self.clock()))
            raise
        except Exception as exc:
            self._failed(t.key, exc)
        else:
            self._apply(self.agent.transmitted(t.key, self.clock()))
        finally:
            window.release()
            if isinstance(data, SplicedBundle):
                data.close()

    def _failed(self, key: int, exc: BaseException) -> None:
        """A send failed: give up on bundles the next hop will never take (reason 3), retry the
        others after a pause so a refusing peer is not hammered."""
        refusal = getattr(exc, "reason", None)
        refused_for_good = type(exc).__name__ == "TransferRefusedError" and refusal in (4, 5)
        if isinstance(exc, TooLargeForLink):
            actions = self.agent.refragment(key, exc.limit, self.clock())
            if actions is not None:
                log.info("%s; sending it in fragments of at most %d bytes", exc, exc.limit)
                self._apply(actions)
                return
        if isinstance(exc, LocalError) or refused_for_good:
            log.warning("giving up on a bundle (reason 3, transmission cancelled): %s", exc)
            self._apply(self.agent.cancel(key, self.clock()))
            return
        loop = asyncio.get_running_loop()
        loop.call_later(RETRY_DELAY, lambda: self._apply(self.agent.transmit_failed(key, self.clock())))

    async def _dial(self, nc: Any) -> None:
        """Keep a session up with a configured neighbour, retrying with backoff."""
        from proxima.runtime import transports

        delay = 0.2
        while True:
            try:
                link = await transports.connect(nc, self)
            except Exception:  # refused, unreachable, handshake failed: try again later
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2
            await self._closed_event(link).wait()
            self._closed.pop(id(link), None)

    async def _contact_loop(self, router: ContactGraphRouter) -> None:
        """Follow the contact plan: dial each configured neighbour while a contact to it lasts,
        close the links at its end (unless a contact from that neighbour still lasts: its link
        is then its to close) and route again what was queued for it."""
        dialers: dict[EID, asyncio.Task[None]] = {}
        by_peer = {nc.node_id: nc for nc in self.config.neighbours}
        try:
            while True:
                now = self.clock()
                wanted = set(router.peers_in_contact(now))
                for peer in wanted - dialers.keys():
                    nc = by_peer.get(peer)
                    if nc is not None:
                        dialers[peer] = asyncio.create_task(self._dial(nc))
                reaching = set(router.peers_reaching(now))
                for peer in set(by_peer) - wanted:
                    task = dialers.pop(peer, None)
                    if task is not None:
                        task.cancel()
                    if peer not in reaching:  # while the peer's contact to us lasts, so does its link
                        for link in [lk for lk in self._links if lk.peer == peer]:
                            with contextlib.suppress(Exception):
                                await link.close()
                    self._apply(self.agent.requeue(peer, self.clock()))
                change = router.next_contact_change(now)
                if change is None:
                    await asyncio.Event().wait()  # no more contacts: nothing left to follow
                    continue
                speed = self.config.clock.speed
                await asyncio.sleep(max(0.0, (change - self.clock()) / 1000 / speed) + 0.001)
        finally:
            for task in dialers.values():
                task.cancel()

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self._expire_once()
            except ProximaError:
                continue  # e.g. the store is full or failing: try again next second

    def _expire_once(self) -> None:
        """Delete expired bundles: those the agent holds, and deliveries no one took in time."""
        now = self.clock()
        store = self._require_store()
        self._apply(self.agent.tick(now))
        for sid in store.expire(now):
            self._uncache(sid)
            self._external.pop(sid, None)
        for endpoint, sids in self._deliveries.items():
            alive = [s for s in sids if store.has(s)]
            if len(alive) != len(sids):
                for s in set(sids).difference(alive):
                    self._uncache(s)
                self._deliveries[endpoint] = alive

    # -- the application side ------------------------------------------------------------------

    def register(self, endpoint: EID) -> None:
        """Deliver bundles for ``endpoint`` here (what waits for it is kept until taken)."""
        self.agent.register(endpoint)

    def send(
        self,
        destination: EID,
        payload: bytes,
        *,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
        klass: int | None = None,
    ) -> asyncio.Future[None]:
        """Originate a bundle; the returned future resolves once it is durable."""
        self.originate(
            destination,
            payload,
            source=source,
            lifetime_ms=lifetime_ms,
            report_to=report_to,
            flags=flags,
            klass=klass,
        )
        return self.durable()

    def originate(
        self,
        destination: EID,
        payload: bytes,
        *,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
        klass: int | None = None,
    ) -> Bundle:
        """:meth:`send` without its own durability future: a caller originating many bundles
        in one event-loop turn waits once, on :meth:`durable`, which covers them all. Returns
        the bundle (its creation timestamp identifies it).

        A payload above :data:`STREAM_THRESHOLD` goes to the store's file at once and the
        bundle is queued from there, as :meth:`start_send_file` does: a backlog of large bundles
        waiting for a contact then stays on disk, not in memory.
        """
        self._check_failed()
        if len(payload) > STREAM_THRESHOLD and self.store is not None:
            now = self.clock()
            bundle, head, crc, writer = self._prepare_stored(
                destination, len(payload), now, source=source, lifetime_ms=lifetime_ms,
                report_to=report_to, flags=flags, klass=klass,
            )
            self._store_payload(writer, bundle, head, crc, payload, now, klass)
        else:
            self._check_room(len(payload) + 100, None)
            bundle, actions = self.agent.send(
                destination,
                payload,
                now_ms=self.clock(),
                source=source,
                lifetime_ms=lifetime_ms,
                report_to=report_to,
                flags=flags,
                klass=klass,
            )
            self._apply(actions)  # may hand bundles to handlers, which may send bundles of their own
        self.last_sent = bundle
        return bundle

    def _store_payload(
        self,
        writer: BundleWriter,
        bundle: Bundle,
        head: bytes,
        crc: PayloadCRC,
        payload: bytes,
        now: int,
        klass: int | None,
    ) -> None:
        """Write a large payload held in memory into the store (head, payload, CRC), then queue
        the bundle from there: the rest of :meth:`originate` for it."""
        try:
            crc.update(payload)
            writer.write(head)
            writer.write(payload)
            writer.write(crc.trailer())
            stored = writer.commit()
        finally:
            writer.abort()  # no-op once committed
        self._adopt_stored(bundle, head, stored, len(payload), now, klass)

    def _prepare_stored(
        self,
        destination: EID,
        size: int,
        now: int,
        *,
        source: EID | None,
        lifetime_ms: int,
        report_to: EID,
        flags: int,
        klass: int | None,
    ) -> tuple[Bundle, bytes, PayloadCRC, BundleWriter]:
        """The first step of a bundle originated straight into the store: its creation
        timestamp, its head, the CRC to feed its payload to, and the store's writer for it."""
        store = self._require_store()
        self._check_room(size + 1024, None)
        bundle, head, crc = self.agent.prepare(
            destination,
            size,
            now_ms=now,
            source=source,
            lifetime_ms=lifetime_ms,
            report_to=report_to,
            flags=flags,
        )
        writer = store.open_writer(
            expiry_ms=expiry_of(bundle, now),
            identity=bundle.id,
            destination=destination,
            klass=default_class(bundle, size) if klass is None else klass,
            received_ms=now,
            expected_size=len(head) + size + 6,
        )
        if writer is None:  # pragma: no cover - a fresh creation timestamp is never known
            raise StoreError("the store already holds a bundle with this creation timestamp")
        return bundle, head, crc, writer

    def _adopt_stored(
        self, bundle: Bundle, head: bytes, stored: StoredBundle | None, size: int, now: int, klass: int | None
    ) -> None:
        """Hand the agent a bundle originated straight into the store (payload in its file)."""
        if stored is None:  # pragma: no cover - a fresh creation timestamp is never known
            raise StoreError("the store already holds a bundle with this creation timestamp")
        sid = stored.store_id
        self._external[sid] = _payload_block_start(decode_bundle_head(head))
        self._prestored = (bundle.id, sid)
        try:
            self._apply(self.agent.originate(bundle, now_ms=now, payload_length=size, klass=klass))
        finally:
            self._take_prestored()

    async def send_file(
        self,
        destination: EID,
        path: Path | str,
        *,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
        klass: int | None = None,
    ) -> tuple[int, int]:
        """Originate a bundle whose payload is the file at ``path``; returns its (creation time,
        sequence) once it is durable. See :meth:`start_send_file`."""
        stamp, durable = self.start_send_file(
            destination,
            path,
            source=source,
            lifetime_ms=lifetime_ms,
            report_to=report_to,
            flags=flags,
            klass=klass,
        )
        await durable
        return stamp

    def start_send_file(
        self,
        destination: EID,
        path: Path | str,
        *,
        source: EID | None = None,
        lifetime_ms: int = 86_400_000,
        report_to: EID = DTN_NONE,
        flags: int = 0,
        klass: int | None = None,
    ) -> tuple[tuple[int, int], asyncio.Future[None]]:
        """Originate a bundle from a file: its (creation time, sequence) at once, and a future
        resolving once it is durable.

        A file above :data:`STREAM_THRESHOLD` is copied into the store piece by piece (in a
        thread, its payload CRC computed on the way) and is never held in memory; a smaller one
        is read and sent as :meth:`send` does.
        """
        self._check_failed()
        path = Path(path)
        try:
            size = path.stat().st_size
            payload = path.read_bytes() if size <= STREAM_THRESHOLD else None
        except OSError as exc:
            raise LocalError(f"{path}: cannot read the file to send: {exc.strerror}") from exc
        if payload is not None:
            p = self.originate(
                destination,
                payload,
                source=source,
                lifetime_ms=lifetime_ms,
                report_to=report_to,
                flags=flags,
                klass=klass,
            ).primary
            return (p.creation_time, p.sequence), self.durable()
        now = self.clock()
        bundle, head, crc, writer = self._prepare_stored(
            destination, size, now, source=source, lifetime_ms=lifetime_ms, report_to=report_to,
            flags=flags, klass=klass,
        )
        stamp = self.agent.sequence_state
        task = asyncio.ensure_future(self._store_file(writer, bundle, head, crc, path, size, now, klass))
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)
        return stamp, task

    async def _store_file(
        self,
        writer: BundleWriter,
        bundle: Bundle,
        head: bytes,
        crc: PayloadCRC,
        path: Path,
        size: int,
        now: int,
        klass: int | None,
    ) -> None:
        copy = asyncio.ensure_future(asyncio.to_thread(_copy_into, writer, head, path, size, crc))
        try:
            try:
                await asyncio.shield(copy)
            except asyncio.CancelledError:
                # the thread cannot be stopped: let it finish before its file is closed
                with contextlib.suppress(Exception):
                    await copy
                raise
            stored = writer.commit()
        except OSError as exc:
            raise LocalError(f"{path}: cannot read the file to send: {exc.strerror}") from exc
        finally:
            writer.abort()  # no-op once committed
        self._adopt_stored(bundle, head, stored, size, now, klass)
        await self.durable()

    def pending_deliveries(self, endpoint: EID) -> int:
        """How many bundles wait for ``endpoint``."""
        return len(self._deliveries.get(endpoint, ()))

    async def take(self, endpoint: EID, timeout: float | None = None) -> Delivery | None:
        """The oldest bundle waiting for ``endpoint``, waiting up to ``timeout`` seconds.

        The bundle stays stored until :meth:`ack` says the application has it.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._require_store()
        arrived = self._arrived.get(endpoint)
        if arrived is None:
            arrived = self._arrived[endpoint] = asyncio.Event()
        while True:
            ready = self.take_ready(endpoint, 1)
            if ready:
                return ready[0]
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                return None

    def take_ready(self, endpoint: EID, limit: int) -> list[Delivery]:
        """Up to ``limit`` of the oldest bundles waiting for ``endpoint``, without waiting.

        They stay stored (and first in the queue) until :meth:`ack` or :meth:`ack_many`.
        """
        self._require_store()
        queue = self._deliveries.get(endpoint)
        out: list[Delivery] = []
        i = 0
        while queue and i < len(queue) and len(out) < limit:
            sid = queue[i]
            bundle = self._cached.get(sid)
            payload_file = None
            if bundle is None:
                try:
                    bundle, payload_file = self._load_delivery(sid)
                except ProximaError:
                    del queue[i]
                    continue
            out.append(Delivery(sid, bundle, payload_file))
            i += 1
        return out

    def _load_delivery(self, sid: int) -> tuple[Bundle, PayloadFile | None]:
        store = self._require_store()
        located = store.file_of(sid)
        if located is None or located[1] <= STREAM_THRESHOLD:
            bundle = decode_bundle(store.get(sid))
            self._note_report(sid, bundle)
            return bundle, None
        try:
            head = self._stored_head(sid)
        except OSError as exc:
            raise StoreError(f"bundle {sid}: cannot read its file: {exc.strerror}") from exc
        if head is None:  # pragma: no cover - located in a file just above
            raise StoreError(f"bundle {sid} has no file")
        self._note_report(sid, Bundle(head.primary, ()))
        payload = PayloadFile(located[0], head.payload_offset, head.payload_length)
        return Bundle(head.primary, head.blocks), payload

    def _note_report(self, sid: int, bundle: Bundle) -> None:
        """A delivery read back from the store (after a restart): remember whether it asked
        for a delivery report."""
        if bundle.primary.flags & _REPORT_DELIVERY and sid not in self._report_on_ack:
            self._report_on_ack[sid] = Bundle(bundle.primary, ())

    def _forget_delivery(self, endpoint: EID, store_id: int) -> None:
        queue = self._deliveries.get(endpoint, [])
        if queue and queue[0] == store_id:
            del queue[0]
        elif store_id in queue:
            queue.remove(store_id)
        self._uncache(store_id)
        self._external.pop(store_id, None)
        self._require_store().remove(store_id, RemoveReason.DELIVERED)
        subject = self._report_on_ack.pop(store_id, None)
        if subject is not None:  # the application has it now: that is delivery (RFC 9171 §5.7)
            self._apply(self.agent.report_delivered(subject, self.clock()))

    def ack(self, endpoint: EID, store_id: int) -> asyncio.Future[None]:
        """The application has the bundle: forget it, remembering its identity."""
        self._forget_delivery(endpoint, store_id)
        return self.durable()

    def ack_many(self, endpoint: EID, store_ids: list[int]) -> asyncio.Future[None]:
        """:meth:`ack` for several bundles, with one wait for their durability."""
        for sid in store_ids:
            self._forget_delivery(endpoint, sid)
        return self.durable()

    def status(self) -> dict[str, Any]:
        """Counters, stored bundles and sessions, for ``proxima node status``."""
        store = self._require_store()
        stats = store.stats()
        return {
            "node_id": str(self.config.node_id),
            "uptime_ms": self.clock() - self.started_ms,
            "stored": {"bundles": stats.count, "bytes": stats.bytes, "by_state": dict(stats.by_state)},
            "held_by_agent": self.agent.held(),
            "deliveries_waiting": {str(e): len(q) for e, q in self._deliveries.items() if q},
            "links_up": {k: v for k, v in self.links_up.items() if v},
            "links_opened": dict(self.links_opened),
            "peers_up": sorted(str(p) for p in self.agent.links_up),
            "counters": self.agent.counters.as_dict(),
            "runtime": {"cores": speedups.summary(), "gc_thresholds": list(gc.get_threshold())},
        }


def _load_plan(config: NodeConfig, now_ms: int) -> ContactGraphRouter:
    """The contact graph router for the node's contact plan file."""
    from proxima.routing import formats

    cp = config.contact_plan
    if cp is None:  # pragma: no cover - only called with a plan
        raise LocalError("the node has no contact plan")
    try:
        text = cp.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{cp.path}: cannot read the contact plan: {exc.strerror}") from exc
    epoch = now_ms if cp.epoch_unix is None else round(cp.epoch_unix * 1000) - DTN_EPOCH_UNIX_MS
    plan = formats.read_plan(text, cp.format, epoch_ms=epoch, local=config.node_id, source=str(cp.path))
    return ContactGraphRouter(plan.plan, config.node_id, nodes=plan.nodes)


class _LinkPump:
    """Feeds a link whose sends are futures (TCPCL) from the agent's queue for its peer, from
    callbacks instead of a task: a bundle queued in an event-loop turn leaves in that same turn,
    and each acknowledgement makes room for the next bundle at once.

    At most the node's :attr:`~Node.send_window` bundles and :data:`SEND_WINDOW_BYTES` bytes
    (one bundle at least) are in flight. :meth:`run` is safe to call from anywhere, its own
    callbacks included.
    """

    __slots__ = (
        "_again",
        "_bytes",
        "_closed",
        "_inflight",
        "_node",
        "_running",
        "_start",
        "_waiting",
        "peer",
    )

    def __init__(
        self, node: Node, peer: EID, start: Callable[[bytes | SplicedBundle], asyncio.Future[None]]
    ) -> None:
        self._node = node
        self.peer = peer
        self._start = start
        self._inflight: dict[asyncio.Future[None], int] = {}  # -> its agent key
        self._bytes = 0
        self._waiting: tuple[Transmit, bytes | SplicedBundle] | None = None  # taken, no room yet
        self._running = self._again = self._closed = False

    def run(self) -> None:
        """Start as many transfers as the window allows."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            self._again = True
            while self._again and not self._closed:
                self._again = False
                self._fill()
        finally:
            self._running = False

    def _fill(self) -> None:
        node = self._node
        agent = node.agent
        inflight = self._inflight
        window = node.send_window
        while len(inflight) < window and not self._closed:
            if self._waiting is not None:
                t, data = self._waiting
                self._waiting = None
            else:
                taken = agent.next_to_send(self.peer, node.clock())
                if taken is None:
                    return
                t = taken
                try:
                    data = node._outgoing(t)
                except ProximaError as exc:
                    node._failed(t.key, exc)
                    continue
            size = len(data)
            if inflight and self._bytes + size > SEND_WINDOW_BYTES:
                self._waiting = (t, data)
                return
            try:
                fut = self._start(data)
            except Exception:  # the link is closing: link_down() follows and closes this pump
                if isinstance(data, SplicedBundle):
                    data.close()
                self._closed = True
                node._apply(agent.transmit_failed(t.key, node.clock()))
                return
            if isinstance(data, SplicedBundle):
                fut.add_done_callback(functools.partial(_close_spliced, data))
            inflight[fut] = t.key
            self._bytes += size
            fut.add_done_callback(functools.partial(self._sent, t.key, size))

    def _sent(self, key: int, size: int, fut: asyncio.Future[None]) -> None:
        if self._inflight.pop(fut, None) is None:
            return  # closed meanwhile: close() gave the bundle back
        self._bytes -= size
        node = self._node
        if fut.cancelled():
            node._apply(node.agent.transmit_failed(key, node.clock()))
        elif (exc := fut.exception()) is not None:
            node._failed(key, exc)
            self.run()
        else:
            node._apply(node.agent.transmitted(key, node.clock()))

    def close(self) -> None:
        """The link is down: the bundles in flight and the one waiting for room go back to the
        agent's queue."""
        self._closed = True
        node = self._node
        inflight, self._inflight = self._inflight, {}
        keys = list(inflight.values())
        for fut in inflight:
            fut.cancel()
        if self._waiting is not None:
            t, data = self._waiting
            self._waiting = None
            keys.append(t.key)
            if isinstance(data, SplicedBundle):
                data.close()
        for key in keys:
            node._apply(node.agent.transmit_failed(key, node.clock()))


def _close_spliced(data: SplicedBundle, fut: asyncio.Future[None]) -> None:
    data.close()


def _copy_into(writer: BundleWriter, head: bytes, path: Path, size: int, crc: PayloadCRC) -> None:
    """Write a bundle to the store: its head, the file's bytes (fed to the CRC), the trailer."""
    writer.write(head)
    copied = 0
    with path.open("rb") as f:
        while copied < size:
            chunk = f.read(min(_CHUNK, size - copied))
            if not chunk:
                break
            crc.update(chunk)
            writer.write(chunk)
            copied += len(chunk)
    if copied != size:
        raise LocalError(f"{path}: the file changed size while it was being sent")
    writer.write(crc.trailer())


def is_admin(bundle: Bundle) -> bool:
    """Whether the bundle carries an administrative record."""
    return bool(bundle.primary.flags & BundleFlag.ADMIN_RECORD)
