"""The asyncio edge of the convergence layers: sockets around the sans-I/O cores.

Each driver is an :mod:`asyncio` protocol that only feeds received bytes into a pure core
(:mod:`proxima.cla.tcpcl`, :mod:`proxima.cla.framing`), writes out what the core has to send and
re-arms one timer, in the manner of aioquic's ``QuicConnectionProtocol``. Every driver object is
also the :class:`~proxima.runtime.links.Link` of its session, and hands what it receives to a
:class:`~proxima.runtime.links.BundleSink` piece by piece.

* **TCPCLv4** (:func:`tcpcl_listen`, :func:`tcpcl_connect`, :class:`TcpclLink`): ``send`` resolves on
  the peer's final XFER_ACK; many transfers may await their acknowledgement at once. A received
  transfer is acknowledged only after :meth:`IncomingBundle.commit` returned (refused with
  "Not Acceptable" when it raises :class:`~proxima.errors.BundleError`, "No Resources" for
  :class:`~proxima.errors.StoreError`). TLS is started with ``loop.start_tls`` when negotiated.
* **MTCP** and **STCP** (:func:`mtcp_listen`, :func:`mtcp_connect`, :func:`stcp_listen`,
  :func:`stcp_connect`, :class:`StreamLink`): ``send`` resolves once the bundle is written to the
  socket buffer (after flow control); there are no acknowledgements and no node IDs.
* **UDP** (:func:`udp_endpoint`, :class:`UdpLink`): one bundle per datagram.

``now`` is always ``loop.time()``; every TCP socket gets ``TCP_NODELAY``. A TCPCL session that
sends a bundle at once (the first of a loop turn) then yields the processor, so that the task
the write woke runs before the rest of the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
from collections import deque
from typing import TYPE_CHECKING, Final, cast

from proxima.cla import framing
from proxima.cla.tcpcl import (
    ConnectionClosed,
    ContactHeaderReceived,
    KeepaliveReceived,
    MessageRejected,
    ProtocolViolation,
    Role,
    SegmentReceived,
    SessionEstablished,
    SessionParameters,
    SessionTerminated,
    SessTermReason,
    StartTLS,
    State,
    TcpclConfig,
    TcpclConnection,
    TransferAborted,
    TransferAcknowledged,
    TransferRefused,
    TransferStarted,
    XferRefuseReason,
)
from proxima.errors import (
    BundleError,
    ConvergenceLayerError,
    LocalError,
    RemoteError,
    StoreError,
    TooLargeForLink,
)
from proxima.runtime.links import SplicedBundle, read_all

if TYPE_CHECKING:
    import ssl as _ssl
    from collections.abc import Callable, Coroutine
    from typing import Any

    from proxima.bpv7.eid import EID
    from proxima.runtime.links import BundleSink, IncomingBundle, Link

__all__ = [
    "DEFAULT_MAX_BUNDLE_SIZE",
    "STCP_DEFAULT_KEEPALIVE",
    "LinkClosedError",
    "StreamLink",
    "TcpclLink",
    "TransferRefusedError",
    "UdpLink",
    "mtcp_connect",
    "mtcp_listen",
    "refusal_reason",
    "stcp_connect",
    "stcp_listen",
    "tcpcl_connect",
    "tcpcl_listen",
    "udp_endpoint",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BUNDLE_SIZE: Final = 1 << 30
"""The largest bundle the MTCP and STCP drivers accept unless told otherwise."""
UDP_RECEIVE_BUFFER: Final = 4 * 1024 * 1024
"""Receive buffer asked for on a UDP endpoint's socket (SO_RCVBUF)."""
STCP_DEFAULT_KEEPALIVE: Final = 15.0
"""Seconds of sending nothing after which an STCP link sends a keepalive (four zero bytes)."""

_PIECE: Final = 1 << 20  # bytes of a large bundle handed to the TCPCL core per send_segment call
_SENDFILE_PIECE: Final = 1 << 20  # bytes of a stored bundle's file per segment sent with sendfile
_FLUSH_BYTES: Final = 1 << 18  # while pumping transfers, write out at least every this many bytes
_MAX_COMMITS: Final = 512  # commits in flight before reading from the peer pauses
_SCHED_YIELD: Final = getattr(os, "sched_yield", None)
_WRITEV_MAX: Final = 64  # pieces up to which a flush is written with writev rather than joined
_REFUSE_NAMES: Final = {
    XferRefuseReason.UNKNOWN: "Unknown",
    XferRefuseReason.COMPLETED: "Completed",
    XferRefuseReason.NO_RESOURCES: "No Resources",
    XferRefuseReason.RETRANSMIT: "Retransmit",
    XferRefuseReason.NOT_ACCEPTABLE: "Not Acceptable",
    XferRefuseReason.EXTENSION_FAILURE: "Extension Failure",
    XferRefuseReason.SESSION_TERMINATING: "Session Terminating",
}


class LinkClosedError(RemoteError):
    """The session ended (or is ending) before the bundle was sent or acknowledged."""


class TransferRefusedError(RemoteError):
    """The TCPCL peer refused the transfer; ``reason`` is the XFER_REFUSE reason code."""


def refusal_reason(exc: BaseException) -> XferRefuseReason:
    """The XFER_REFUSE reason answering a failed ``write`` or ``commit`` of a received bundle."""
    if isinstance(exc, StoreError):
        return XferRefuseReason.NO_RESOURCES
    if isinstance(exc, BundleError):
        return XferRefuseReason.NOT_ACCEPTABLE
    return XferRefuseReason.UNKNOWN


def _refuse_name(reason: int) -> str:
    try:
        return _REFUSE_NAMES[XferRefuseReason(reason)]
    except ValueError:
        return f"reason {reason}"


def _yield_processor() -> None:
    """Let a task waiting for this processor run first (``sched_yield``; nothing where absent)."""
    if _SCHED_YIELD is not None:
        _SCHED_YIELD()


def _writev(fd: int, chunks: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """Write ``chunks`` (at most ``_WRITEV_MAX``) to the non-blocking socket ``fd`` with one
    ``writev``, as much as it takes now; return what is left (the first piece cut where the
    socket stopped), ``[]`` when all went. An error leaves them all, for the transport's own
    write to meet and report."""
    try:
        sent = os.writev(fd, chunks)
    except OSError:
        return chunks
    for i, chunk in enumerate(chunks):
        size = len(chunk)
        if sent < size:
            rest = chunks[i:]
            if sent:
                rest[0] = memoryview(chunk)[sent:]
            return rest
        sent -= size
    return []


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the socket may have died already
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    """Fail ``fut`` unless it is done; the exception counts as retrieved (a caller may be gone)."""
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()


def _abort_incoming(incoming: IncomingBundle) -> None:
    try:
        incoming.abort()
    except Exception:
        log.exception("IncomingBundle.abort() failed")


class _Tasks:
    """Keeps references to the driver's background tasks (commits, TLS) until they finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _ReadGate:
    """Pauses reading from the peer while too many received bundles await their commit."""

    def __init__(self) -> None:
        self.pending = 0
        self.paused = False

    def started(self, transport: asyncio.Transport | None) -> None:
        self.pending += 1
        if self.pending >= _MAX_COMMITS and not self.paused and transport is not None:
            self.paused = True
            transport.pause_reading()

    def finished(self, transport: asyncio.Transport | None) -> None:
        self.pending -= 1
        if self.paused and self.pending <= _MAX_COMMITS // 2:
            self.paused = False
            if transport is not None and not transport.is_closing():
                transport.resume_reading()


# ============================================================================================
# TCPCLv4
# ============================================================================================


class TcpclLink(asyncio.Protocol):
    """One TCPCLv4 session: the asyncio protocol around a :class:`TcpclConnection`, and its Link.

    Counters: ``bundles_sent`` (acknowledged), ``bundles_received`` (committed and acknowledged),
    ``bundles_refused`` (received but refused), ``keepalives_received``, ``protocol_violations``,
    ``bytes_sendfile`` (bytes of stored bundles sent from their file with ``sendfile``).

    A bundle stored in a file (:class:`SplicedBundle`) goes from the file to the socket with
    ``os.sendfile`` on a session without TLS, a segment at a time, whenever the transport has
    nothing buffered: its bytes are never copied through this process. What the socket does not
    take at once is read and written through the transport as usual.
    """

    def __init__(
        self,
        role: Role,
        config: TcpclConfig,
        sink: BundleSink,
        ssl_context: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._role = role
        self._config = config
        self._sink = sink
        self._ssl = ssl_context
        self._server_hostname = server_hostname
        self._conn: TcpclConnection | None = None
        self._transport: asyncio.Transport | None = None
        self._peer: EID | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._write_paused = False
        self._gate = _ReadGate()
        self._service_scheduled = False
        self._pump_scheduled = False
        self._burst = False  # a bundle was sent at once this loop turn: the next ones wait
        self._queue: deque[tuple[memoryview | SplicedBundle, asyncio.Future[None]]] = deque()
        # the transfer being sent and its next offset
        self._current: tuple[int, memoryview | SplicedBundle, int] | None = None
        self._tx: dict[int, asyncio.Future[None]] = {}
        self._rx: dict[int, IncomingBundle] = {}
        # Received bundles waiting for the same group commit, and the future of that commit.
        self._durable_wait: asyncio.Future[None] | None = None
        self._durable_batch: list[tuple[int, IncomingBundle]] = []
        self._tasks = _Tasks()
        self._tls_early: list[bytes] | None = None  # not None while the TLS handshake runs
        self._up = False
        self._ending = False
        self._finished = False
        self._established: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self.bundles_sent = 0
        self.bundles_received = 0
        self.bundles_refused = 0
        self.keepalives_received = 0
        self.protocol_violations = 0
        self.bytes_sendfile = 0
        self._sendfile_sock: int | None = None  # the socket's descriptor, once sendfile may be used
        self._writev_fd: int | None = None  # the same, once writev may be used

    def __repr__(self) -> str:
        return f"<TcpclLink {self._role.value} peer={self._peer} {self.state.value}>"

    # ---- Link ---------------------------------------------------------------------------------

    @property
    def peer(self) -> EID | None:
        """The node ID the peer sent in SESS_INIT (None before the session is up, or if it sent none)."""
        return self._peer

    @property
    def cla(self) -> str:
        """``tcpcl``."""
        return "tcpcl"

    @property
    def state(self) -> State:
        """The session state of the core."""
        return State.CONTACT_WAIT if self._conn is None else self._conn.state

    @property
    def session(self) -> SessionParameters | None:
        """The negotiated session parameters, once the session is up."""
        return None if self._conn is None else self._conn.session

    @property
    def tls(self) -> bool:
        """True when the session runs over TLS."""
        session = self.session
        return session is not None and session.tls

    @property
    def is_up(self) -> bool:
        """True from SessionEstablished until the session starts ending."""
        return self._up and not self._ending and not self._finished

    @property
    def peer_address(self) -> Any:
        """The peer's socket address."""
        return None if self._transport is None else self._transport.get_extra_info("peername")

    async def send(self, data: bytes | SplicedBundle) -> None:
        """Send one bundle as one transfer; return on its final XFER_ACK.

        Raises :class:`TransferRefusedError` (XFER_REFUSE), :class:`LinkClosedError` (the session
        ended first) or :class:`~proxima.errors.LocalError` (e.g. over the peer's Transfer MRU).
        """
        await self.send_future(data)

    def send_future(self, data: bytes | SplicedBundle) -> asyncio.Future[None]:
        """:meth:`send` without a coroutine: queue the bundle now; the future resolves on its
        final XFER_ACK (or fails as :meth:`send` raises). Cancelling it abandons the transfer
        if it has not started. A :class:`SplicedBundle` is read a segment at a time."""
        if self._finished or self._ending:
            raise LinkClosedError(f"TCPCL session with {self._peer} is closed or ending")
        fut: asyncio.Future[None] = self._loop.create_future()
        queue = self._queue
        idle = not queue and self._current is None and not self._pump_scheduled and not self._burst
        queue.append((memoryview(data) if isinstance(data, bytes) else data, fut))
        if idle and not self._write_paused:
            # The first bundle of a loop turn leaves now (a ping, a post) instead of after the
            # rest of the turn; those queued behind it in the same turn go out together at the
            # next pump, in one write.
            self._burst = True
            self._loop.call_soon(self._end_burst)
            self._pump_scheduled = True
            self._pump()
            # The write woke the peer or a local application; Linux runs a task woken by a
            # socket write on the writer's processor, expecting the writer to sleep. This
            # loop has a commit and more to do first: let the woken task run now.
            _yield_processor()
        elif not self._pump_scheduled:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)
        return fut

    def _end_burst(self) -> None:
        self._burst = False

    async def close(self, reason: int = SessTermReason.UNKNOWN) -> None:
        """End the session with SESS_TERM; transfers in progress may finish. Returns once closed."""
        conn = self._conn
        if conn is not None and not self._finished:
            conn.close(reason, self._loop.time())
            self._service()
        await asyncio.shield(self._closed)

    def abort(self) -> None:
        """Close at once (SESS_TERM queued, connection closed): an unclean termination."""
        conn = self._conn
        if conn is not None and not self._finished:
            conn.close(SessTermReason.UNKNOWN, self._loop.time(), immediate=True)
            self._service()
        elif self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Return once the connection is closed."""
        await asyncio.shield(self._closed)

    async def _wait_established(self) -> None:
        await asyncio.shield(self._established)

    # ---- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the core (the active side's contact header goes out at once)."""
        self._transport = cast("asyncio.Transport", transport)
        _set_nodelay(transport)
        self._conn = TcpclConnection(self._role, self._config, self._loop.time())
        self._service()

    def data_received(self, data: bytes) -> None:
        """Feed the core."""
        if self._tls_early is not None:
            # Decrypted data the TLS layer delivers before start_tls() has returned to us.
            self._tls_early.append(data)
            return
        conn = self._conn
        if conn is not None:
            conn.receive_data(data, self._loop.time())
            self._service()

    def eof_received(self) -> bool | None:
        """The peer closed its side: the core closes the session."""
        self._connection_ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: the core closes, pending sends fail."""
        if exc is not None:
            log.debug("TCPCL connection with %s lost: %s", self._peer, exc)
        self._connection_ended()

    def pause_writing(self) -> None:
        """The transport's buffer is full: stop feeding it transfers."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport's buffer drained: go on sending."""
        self._write_paused = False
        self._schedule_pump()

    # ---- driving the core -------------------------------------------------------------------

    def _connection_ended(self) -> None:
        conn = self._conn
        if conn is not None and conn.state is not State.CLOSED:
            conn.receive_eof(self._loop.time())
            self._service()
        self._finish()

    def _service(self) -> None:
        """After every call into the core: act on its events, write its output, re-arm its timer."""
        self._service_scheduled = False
        conn = self._conn
        if conn is None:
            return
        events = conn.events()
        for event in events:
            self._handle(event, conn)
        self._flush(conn)
        if not self._finished:
            self._rearm(conn)

    def _schedule_service(self) -> None:
        if not self._service_scheduled:
            self._service_scheduled = True
            self._loop.call_soon(self._service)

    def _flush(self, conn: TcpclConnection) -> None:
        chunks = conn.data_chunks_to_send()
        transport = self._transport
        if chunks and transport is not None and not self._finished:
            fd = self._writev_fd
            if (
                fd is not None
                and len(chunks) <= _WRITEV_MAX
                and transport.get_write_buffer_size() == 0
                and not transport.is_closing()
            ):
                # A few pieces (large segments) go straight to the socket, without being joined
                # (and, when the socket takes only part, copied again twice) by the transport.
                # Many small ones cost less joined: the kernel takes each piece of a writev
                # on its own.
                for chunk in _writev(fd, chunks):
                    transport.write(chunk)  # one copy each into its buffer, none joined
                return
            if len(chunks) == 1:
                transport.write(chunks[0])
            else:
                transport.writelines(chunks)

    def _rearm(self, conn: TcpclConnection) -> None:
        when = conn.get_timer()
        handle = self._timer
        if when is None:
            if handle is not None:
                handle.cancel()
                self._timer = None
            return
        if handle is not None:
            if self._timer_at <= when:
                return  # it fires early, finds nothing due, and re-arms
            handle.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        conn = self._conn
        if conn is not None and not self._finished:
            conn.handle_timer(max(self._loop.time(), self._timer_at))
            self._service()

    def _handle(self, event: object, conn: TcpclConnection) -> None:
        """Act on one core event."""
        cls = type(event)
        if cls is SegmentReceived:
            self._on_segment(cast("SegmentReceived", event), conn)
        elif cls is TransferAcknowledged:
            ack = cast("TransferAcknowledged", event)
            if ack.complete:
                fut = self._tx.pop(ack.transfer_id, None)
                self.bundles_sent += 1
                if fut is not None and not fut.done():
                    fut.set_result(None)
        elif cls is TransferStarted:
            self._on_transfer_started(cast("TransferStarted", event), conn)
        elif cls is TransferRefused:
            refused = cast("TransferRefused", event)
            cur = self._current
            if cur is not None and cur[0] == refused.transfer_id:
                self._current = None
            fut = self._tx.pop(refused.transfer_id, None)
            if fut is not None:
                _fail(
                    fut,
                    TransferRefusedError(
                        f"TCPCL peer {self._peer} refused the transfer: {_refuse_name(refused.reason)}",
                        reason=refused.reason,
                    ),
                )
            self._schedule_pump()
        elif cls is TransferAborted:
            aborted = cast("TransferAborted", event)
            if aborted.incoming:
                incoming = self._rx.pop(aborted.transfer_id, None)
                if incoming is not None:
                    _abort_incoming(incoming)
            else:
                fut = self._tx.pop(aborted.transfer_id, None)
                if fut is not None:
                    _fail(fut, LinkClosedError(f"TCPCL session with {self._peer} closed during the transfer"))
        elif cls is KeepaliveReceived:
            self.keepalives_received += 1
        elif cls is SessionEstablished:
            self._on_established(cast("SessionEstablished", event))
        elif cls is StartTLS:
            self._start_tls(cast("StartTLS", event).server_side, conn)
        elif cls is SessionTerminated:
            term = cast("SessionTerminated", event)
            log.debug(
                "TCPCL session with %s ending (reason %d, peer: %s)",
                self._peer,
                term.reason,
                term.initiated_by_peer,
            )
            self._ending = True
            self._fail_queue(LinkClosedError(f"TCPCL session with {self._peer} is ending"))
        elif cls is ProtocolViolation:
            self.protocol_violations += 1
            log.warning(
                "TCPCL peer %s: %s", self._peer or self.peer_address, cast("ProtocolViolation", event).error
            )
        elif cls is MessageRejected:
            rejected = cast("MessageRejected", event)
            log.warning(
                "TCPCL peer %s rejected message type %d (reason %d)",
                self._peer,
                rejected.header,
                rejected.reason,
            )
        elif cls is ConnectionClosed:
            self._finish()
        elif cls is ContactHeaderReceived:
            pass

    def _on_established(self, event: SessionEstablished) -> None:
        self._peer = event.peer_node_id
        self._up = True
        transport = self._transport
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is not None and not self.tls:
            if hasattr(os, "sendfile"):
                self._sendfile_sock = sock.fileno()
            if hasattr(os, "writev"):
                self._writev_fd = sock.fileno()
            # Resume sending only once the transport's buffer is empty, so that the next
            # segment of a stored bundle can go with sendfile again.
            _, high = cast("asyncio.WriteTransport", transport).get_write_buffer_limits()
            cast("asyncio.WriteTransport", transport).set_write_buffer_limits(high=high, low=0)
        if not self._established.done():
            self._established.set_result(None)
        try:
            self._sink.link_up(self)
        except Exception:
            log.exception("BundleSink.link_up() failed")
        self._schedule_pump()

    def _on_transfer_started(self, event: TransferStarted, conn: TcpclConnection) -> None:
        try:
            incoming = self._sink.open_incoming(self, event.total_length)
        except Exception as exc:
            self._refuse(event.transfer_id, exc, conn)
            return
        self._rx[event.transfer_id] = incoming

    def _on_segment(self, event: SegmentReceived, conn: TcpclConnection) -> None:
        transfer_id = event.transfer_id
        incoming = self._rx.get(transfer_id)
        if incoming is None:
            return  # refused already
        try:
            incoming.write(event.data)
        except Exception as exc:
            del self._rx[transfer_id]
            _abort_incoming(incoming)
            self._refuse(transfer_id, exc, conn)
            return
        if event.end:
            del self._rx[transfer_id]
            self._gate.started(self._transport)
            start = getattr(incoming, "commit_nowait", None)
            if start is None:
                self._tasks.spawn(self._commit(transfer_id, incoming))
                return
            # The node's fast path: the bundle is checked and applied now, and only its
            # durability is waited for, with one callback for all the bundles of a commit.
            try:
                durable: asyncio.Future[None] = start()
            except Exception as exc:
                self._committed(transfer_id, incoming, exc)
                return
            if durable is self._durable_wait:
                self._durable_batch.append((transfer_id, incoming))
                return
            batch = [(transfer_id, incoming)]
            self._durable_wait, self._durable_batch = durable, batch
            durable.add_done_callback(functools.partial(self._commit_done, batch))

    def _refuse(self, transfer_id: int, exc: BaseException, conn: TcpclConnection) -> None:
        reason = refusal_reason(exc)
        if reason is XferRefuseReason.UNKNOWN:
            log.error("refusing TCPCL transfer %d from %s", transfer_id, self._peer, exc_info=exc)
        else:
            log.info("refusing TCPCL transfer %d from %s: %s", transfer_id, self._peer, exc)
        self.bundles_refused += 1
        with contextlib.suppress(LocalError):  # the core may have ended it (aborted, or closed)
            conn.refuse_transfer(transfer_id, reason, self._loop.time())

    async def _commit(self, transfer_id: int, incoming: IncomingBundle) -> None:
        conn = self._conn
        if conn is None:  # pragma: no cover - transfers only arrive on a connection
            return
        try:
            await incoming.commit()
        except Exception as exc:
            self._committed(transfer_id, incoming, exc)
        else:
            self._committed(transfer_id, incoming, None)

    def _commit_done(
        self, batch: list[tuple[int, IncomingBundle]], durable: asyncio.Future[None]
    ) -> None:
        if durable is self._durable_wait:
            self._durable_wait = None
        if durable.cancelled():
            for _ in batch:
                self._gate.finished(None if self._finished else self._transport)
            return
        exc = durable.exception()
        for transfer_id, incoming in batch:
            self._committed(transfer_id, incoming, exc if isinstance(exc, Exception) else None)

    def _committed(self, transfer_id: int, incoming: IncomingBundle, exc: Exception | None) -> None:
        """A received bundle is durable (``exc`` None): acknowledge it; else refuse it."""
        conn = self._conn
        if conn is None:  # pragma: no cover - transfers only arrive on a connection
            return
        if exc is not None:
            _abort_incoming(incoming)
            self._refuse(transfer_id, exc, conn)
        else:
            self.bundles_received += 1
            with contextlib.suppress(LocalError):  # closed meanwhile: the peer will send it again
                conn.complete_transfer(transfer_id, self._loop.time())
        # The core keeps acknowledgements in transfer order even when commits end out of order.
        self._schedule_service()
        self._gate.finished(None if self._finished else self._transport)

    # ---- sending ----------------------------------------------------------------------------

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled and (self._queue or self._current is not None):
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Feed queued bundles to the core, one transfer at a time, while the transport takes them."""
        self._pump_scheduled = False
        conn = self._conn
        if conn is None or self._finished:
            return
        written = 0
        queue = self._queue
        while not self._write_paused:
            cur = self._current
            if cur is not None:
                transfer_id, view, offset = cur
                end = min(offset + _PIECE, len(view))
                if self._sendfile_sock is not None and type(view) is SplicedBundle:
                    head = len(view.head)
                    if offset >= head:
                        if not self._send_region(conn, transfer_id, view, offset):
                            return
                        continue
                    end = min(end, head)  # the file's part goes with sendfile
                last = end == len(view)
                try:
                    piece = view[offset:end]
                except OSError as exc:
                    self._stored_file_failed(exc)
                    return
                if conn.send_segment(transfer_id, piece, last, self._loop.time()) and not last:
                    self._current = (transfer_id, view, end)
                else:
                    self._current = None
                written += end - offset
                if written >= _FLUSH_BYTES:
                    written = 0
                    self._flush(conn)
            elif queue and conn.can_start_transfer:
                view, fut = queue.popleft()
                if fut.done():
                    continue  # the sender gave up before it started
                try:
                    transfer_id = conn.start_transfer(len(view), self._loop.time())
                except LocalError as exc:
                    _fail(fut, exc)
                    continue
                self._tx[transfer_id] = fut
                self._current = (transfer_id, view, 0)
            else:
                break
        self._service()

    def _send_region(self, conn: TcpclConnection, transfer_id: int, view: SplicedBundle, offset: int) -> bool:
        """Send the next segment of a stored bundle's file region: its header through the
        transport, then its bytes with ``sendfile`` when the transport has nothing buffered, the
        rest read and written through the transport. False when the session was aborted."""
        session = conn.session
        transport = self._transport
        sock = self._sendfile_sock
        if session is None or transport is None or sock is None:  # pragma: no cover - checked by the caller
            return False
        n = min(len(view) - offset, _SENDFILE_PIECE, session.segment_mtu)
        last = offset + n == len(view)
        if not conn.send_segment_header(transfer_id, n, last, self._loop.time()):
            self._current = None
            return True
        self._current = None if last else (transfer_id, view, offset + n)
        self._flush(conn)  # the header, and whatever the core had before it
        sent = 0
        try:
            if transport.get_write_buffer_size() == 0:
                fd, position = view.region(offset)
                try:
                    sent = os.sendfile(sock, fd, position, n)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        self._sendfile_sock = None  # not for this file or socket: copy from now on
                    # Otherwise the connection failed: the transport's write below finds out.
                    sent = 0
                self.bytes_sendfile += sent
            if sent < n:
                transport.write(view[offset + sent : offset + n])
        except (OSError, ValueError) as exc:
            self._stored_file_failed(exc)
            return False
        return True

    def _stored_file_failed(self, exc: Exception) -> None:
        """A stored bundle being sent cannot be read: the transfer, and so the session, cannot go on."""
        log.error("TCPCL: cannot read a bundle being sent to %s: %s", self._peer, exc)
        self.abort()

    def _fail_queue(self, exc: Exception) -> None:
        queue = self._queue
        while queue:
            _fail(queue.popleft()[1], exc)

    # ---- TLS --------------------------------------------------------------------------------

    def _start_tls(self, server_side: bool, conn: TcpclConnection) -> None:
        transport = self._transport
        if transport is None:  # pragma: no cover - events only come after connection_made
            return
        # Bytes arriving from now on are TLS records for the TLS layer, not for the core.
        transport.pause_reading()
        self._tls_early = []
        self._tasks.spawn(self._do_tls(transport, server_side, conn))

    async def _do_tls(self, transport: asyncio.Transport, server_side: bool, conn: TcpclConnection) -> None:
        loop = self._loop
        context = self._ssl
        trailing = conn.trailing_data
        if trailing:
            # TLS records that came with the contact header: hand them to the TLS layer after
            # start_tls has made it the transport's protocol, before anything newer is read.
            loop.call_soon(loop.call_soon, _feed_protocol, transport, trailing)
        try:
            if context is None:
                raise LocalError("TCPCL: TLS was negotiated but no SSL context was given")
            new = await loop.start_tls(
                transport,
                self,
                context,
                server_side=server_side,
                server_hostname=None if server_side else self._server_hostname,
                ssl_handshake_timeout=self._config.contact_timeout,
            )
        except Exception as exc:  # OSError/SSLError, TimeoutError, LocalError: the session cannot go on
            log.warning("TCPCL: TLS handshake with %s failed: %s", transport.get_extra_info("peername"), exc)
            transport.abort()
            if not self._established.done():
                _fail(self._established, LinkClosedError(f"TCPCL: TLS handshake failed: {exc}"))
            self._connection_ended()
            return
        if new is None or self._finished:  # pragma: no cover - closed during the handshake
            self._connection_ended()
            return
        self._transport = new
        early = self._tls_early or []
        self._tls_early = None
        now = loop.time()
        conn.tls_established(now)
        for data in early:
            conn.receive_data(data, now)
        self._service()

    # ---- the end ----------------------------------------------------------------------------

    def _finish(self) -> None:
        if self._finished:
            return
        conn = self._conn
        if conn is not None:
            self._flush(conn)  # the last SESS_TERM, MSG_REJECT...
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
        error = LinkClosedError(f"TCPCL session with {self._peer} closed")
        for fut in self._tx.values():
            _fail(fut, error)
        self._tx.clear()
        self._current = None
        self._fail_queue(error)
        for incoming in self._rx.values():
            _abort_incoming(incoming)
        self._rx.clear()
        _fail(self._established, LinkClosedError("TCPCL session closed before it was established"))
        if self._up:
            try:
                self._sink.link_down(self)
            except Exception:
                log.exception("BundleSink.link_down() failed")
        if not self._closed.done():
            self._closed.set_result(None)


def _feed_protocol(transport: asyncio.BaseTransport, data: bytes) -> None:
    """Deliver ``data`` to the transport's current protocol as if it had just been read."""
    protocol = transport.get_protocol()
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buf = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


def _check_tls(config: TcpclConfig, context: _ssl.SSLContext | None) -> None:
    if config.can_tls and context is None:
        raise LocalError("TCPCL: can_tls needs an SSL context (ssl=...)")
    if context is not None and not config.can_tls:
        raise LocalError("TCPCL: an SSL context was given but the config does not set can_tls")


async def tcpcl_listen(
    host: str | None,
    port: int,
    config: TcpclConfig,
    sink: BundleSink,
    *,
    ssl: _ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Accept TCPCLv4 sessions on ``host:port``; each one reaches ``sink.link_up`` once established.

    ``ssl`` is the server context used when both sides negotiate TLS (the config's ``can_tls``).
    """
    _check_tls(config, ssl)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: TcpclLink(Role.PASSIVE, config, sink, ssl), host, port)


async def tcpcl_connect(
    host: str,
    port: int,
    config: TcpclConfig,
    sink: BundleSink,
    *,
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> TcpclLink:
    """Open a TCPCLv4 session to ``host:port``; return its link once SESS_INIT is exchanged.

    ``ssl`` is the client context used when TLS is negotiated; the certificate is checked
    against ``server_hostname`` (default ``host``). Raises ``OSError`` when the connection fails
    and :class:`LinkClosedError` when the session fails before it is established.
    """
    _check_tls(config, ssl)
    loop = asyncio.get_running_loop()
    name = server_hostname if server_hostname is not None else host
    _, link = await loop.create_connection(
        lambda: TcpclLink(Role.ACTIVE, config, sink, ssl, name), host, port
    )
    try:
        await link._wait_established()
    except BaseException:
        link.abort()
        raise
    return link


# ============================================================================================
# MTCP and STCP
# ============================================================================================


class _WriteGate:
    """Flow control shared by the stream and datagram links: senders wait while the transport's
    buffer is full, and fail when the link closes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.paused = False
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        """Return once the transport can take more (at once when it is not paused)."""
        if self.paused:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def pause(self) -> None:
        """The transport's buffer is full."""
        self.paused = True

    def resume(self) -> None:
        """The transport drained: release the waiting senders."""
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """The link closed: every waiting sender fails with ``error``."""
        for waiter in self._waiters:
            _fail(waiter, error)
        self._waiters.clear()


class StreamLink(asyncio.Protocol):
    """An MTCP or STCP connection and its Link: length-prefixed bundles, no acknowledgement.

    Counters: ``bundles_sent`` (written), ``bundles_received`` (committed), ``bundles_dropped``
    (received but not kept), ``keepalives_received`` (STCP).
    """

    def __init__(
        self,
        cla: str,
        sink: BundleSink,
        *,
        peer: EID | None = None,
        max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE,
        keepalive: float | None = None,
    ) -> None:
        if cla == "mtcp":
            self._decoder: framing.MtcpDecoder | framing.StcpDecoder = framing.MtcpDecoder(max_bundle_size)
            self._head: Callable[[int], bytes] = framing.mtcp_head
        elif cla == "stcp":
            self._decoder = framing.StcpDecoder(max_bundle_size)
            self._head = framing.stcp_head
        else:
            raise LocalError(f"unknown stream convergence layer {cla!r} (mtcp or stcp)")
        if keepalive is not None and (cla != "stcp" or keepalive <= 0):
            raise LocalError("keepalive is an STCP option and must be positive")
        self._cla = cla
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._peer = peer
        self._keepalive = keepalive
        self._transport: asyncio.Transport | None = None
        self._incoming: IncomingBundle | None = None
        self._discard = False  # the current frame is being skipped
        self._tasks = _Tasks()
        self._gate = _ReadGate()
        self._writes = _WriteGate(self._loop)
        self._spliced = asyncio.Lock()  # held while a large bundle is written piece by piece
        self._timer: asyncio.TimerHandle | None = None
        self._last_sent = 0.0
        self._up = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self.bundles_sent = 0
        self.bundles_received = 0
        self.bundles_dropped = 0
        self.keepalives_received = 0

    def __repr__(self) -> str:
        return f"<StreamLink {self._cla} peer={self._peer} {self.peer_address}>"

    @property
    def peer(self) -> EID | None:
        """The neighbour's node ID when the caller configured it (MTCP/STCP carry none)."""
        return self._peer

    @property
    def cla(self) -> str:
        """``mtcp`` or ``stcp``."""
        return self._cla

    @property
    def peer_address(self) -> Any:
        """The peer's socket address."""
        return None if self._transport is None else self._transport.get_extra_info("peername")

    @property
    def is_up(self) -> bool:
        """True while the connection is open."""
        return self._up

    async def send(self, data: bytes | SplicedBundle) -> None:
        """Write one framed bundle; return once the transport takes more (flow control).

        A :class:`SplicedBundle` is written a piece at a time, waiting for the transport to
        drain between pieces.
        """
        transport = self._transport
        if transport is None or not self._up or transport.is_closing():
            raise LinkClosedError(f"{self._cla.upper()} connection {self.peer_address} is closed")
        head = self._head(len(data))
        if isinstance(data, SplicedBundle):
            async with self._spliced:  # other bundles wait: frames must not interleave
                transport.write(head)
                try:
                    for start in range(0, len(data), _PIECE):
                        await self._writes.wait()
                        if transport.is_closing():
                            raise LinkClosedError(
                                f"{self._cla.upper()} connection {self.peer_address} is closed"
                            )
                        transport.write(data[start : start + _PIECE])
                except BaseException:
                    transport.abort()  # a frame cut short: the peer would read what follows as its end
                    raise
        elif self._spliced.locked():
            async with self._spliced:
                transport.write(head + data)
        elif len(data) <= 4096:
            transport.write(head + data)
        else:
            transport.writelines([head, data])
        self._last_sent = self._loop.time()
        self.bundles_sent += 1
        await self._writes.wait()

    async def close(self) -> None:
        """Close the connection (after what is written is sent); return once closed."""
        if self._transport is not None:
            self._transport.close()
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Return once the connection is closed."""
        await asyncio.shield(self._closed)

    # ---- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The connection is up: so is the link."""
        self._transport = cast("asyncio.Transport", transport)
        _set_nodelay(transport)
        self._last_sent = self._loop.time()
        self._up = True
        self._arm_keepalive()
        try:
            self._sink.link_up(self)
        except Exception:
            log.exception("BundleSink.link_up() failed")

    def data_received(self, data: bytes) -> None:
        """Decode frames; hand their pieces to the sink."""
        self._decoder.receive_data(data)
        self._decode()

    def eof_received(self) -> bool | None:
        """The peer is done sending: a frame cut short is dropped, then the connection closes."""
        self._decoder.receive_eof()
        self._decode()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The link is down; writers waiting for flow control fail."""
        if exc is not None:
            log.debug("%s connection %s lost: %s", self._cla.upper(), self.peer_address, exc)
        self._up = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._incoming is not None:
            _abort_incoming(self._incoming)
            self._incoming = None
            self.bundles_dropped += 1
        self._writes.fail(LinkClosedError(f"{self._cla.upper()} connection closed"))
        try:
            self._sink.link_down(self)
        except Exception:
            log.exception("BundleSink.link_down() failed")
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """Senders wait until the transport drains."""
        self._writes.pause()

    def resume_writing(self) -> None:
        """Release waiting senders."""
        self._writes.resume()

    # ---- receiving ------------------------------------------------------------------------

    def _decode(self) -> None:
        decoder = self._decoder
        while True:
            try:
                event = decoder.next_event()
            except ConvergenceLayerError as exc:
                log.warning("%s peer %s: %s", self._cla.upper(), self.peer_address, exc)
                self._drop_frame()
                if self._transport is not None:
                    self._transport.close()
                return
            cls = type(event)
            if cls is framing.FrameData:
                incoming = self._incoming
                if incoming is not None:
                    try:
                        incoming.write(cast("framing.FrameData", event).data)
                    except Exception as exc:
                        log.warning(
                            "%s: dropping a bundle from %s: %s", self._cla.upper(), self.peer_address, exc
                        )
                        self._drop_frame()
            elif cls is framing.FrameStart:
                try:
                    self._incoming = self._sink.open_incoming(self, cast("framing.FrameStart", event).length)
                except Exception as exc:
                    log.warning(
                        "%s: dropping a bundle from %s: %s", self._cla.upper(), self.peer_address, exc
                    )
                    self._incoming = None
                    self.bundles_dropped += 1
            elif cls is framing.FrameEnd:
                incoming = self._incoming
                self._incoming = None
                if incoming is not None:
                    self._gate.started(self._transport)
                    self._tasks.spawn(self._commit(incoming))
            elif cls is framing.Keepalive:
                self.keepalives_received += 1
            else:  # NEED_DATA or CLOSED
                return

    def _drop_frame(self) -> None:
        incoming = self._incoming
        if incoming is not None:
            self._incoming = None
            _abort_incoming(incoming)
            self.bundles_dropped += 1

    async def _commit(self, incoming: IncomingBundle) -> None:
        try:
            await incoming.commit()
        except Exception as exc:
            self.bundles_dropped += 1
            _abort_incoming(incoming)
            if isinstance(exc, BundleError | StoreError):
                log.warning("%s: bundle from %s not kept: %s", self._cla.upper(), self.peer_address, exc)
            else:
                log.exception("%s: committing a bundle from %s failed", self._cla.upper(), self.peer_address)
        else:
            self.bundles_received += 1
        self._gate.finished(self._transport if self._up else None)

    # ---- STCP keepalive -------------------------------------------------------------------

    def _arm_keepalive(self) -> None:
        if self._keepalive is not None and self._up:
            self._timer = self._loop.call_at(self._last_sent + self._keepalive, self._on_keepalive)

    def _on_keepalive(self) -> None:
        self._timer = None
        transport = self._transport
        keepalive = self._keepalive
        if transport is None or keepalive is None or not self._up or transport.is_closing():
            return
        now = self._loop.time()
        if now >= self._last_sent + keepalive and not self._writes.paused:
            transport.write(framing.STCP_KEEPALIVE)
            self._last_sent = now
        elif self._writes.paused:
            self._last_sent = now  # the link is busy, not idle
        self._arm_keepalive()


async def _stream_listen(
    cla: str,
    host: str | None,
    port: int,
    sink: BundleSink,
    max_bundle_size: int,
    keepalive: float | None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    if max_bundle_size < 0:
        raise LocalError("max_bundle_size must be >= 0")
    if keepalive is not None and keepalive <= 0:
        raise LocalError("keepalive must be positive")
    return await loop.create_server(
        lambda: StreamLink(cla, sink, max_bundle_size=max_bundle_size, keepalive=keepalive), host, port
    )


async def _stream_connect(
    cla: str,
    host: str,
    port: int,
    sink: BundleSink,
    peer: EID | None,
    max_bundle_size: int,
    keepalive: float | None,
) -> StreamLink:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(
        lambda: StreamLink(cla, sink, peer=peer, max_bundle_size=max_bundle_size, keepalive=keepalive),
        host,
        port,
    )
    return link


async def mtcp_listen(
    host: str | None, port: int, sink: BundleSink, *, max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE
) -> asyncio.Server:
    """Accept MTCP connections (µD3TN, dtn7); each is a link (``peer`` None) given to ``sink.link_up``."""
    return await _stream_listen("mtcp", host, port, sink, max_bundle_size, None)


async def mtcp_connect(
    host: str,
    port: int,
    sink: BundleSink,
    *,
    peer: EID | None = None,
    max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE,
) -> StreamLink:
    """Open an MTCP connection; ``peer`` is the neighbour's node ID when configured."""
    return await _stream_connect("mtcp", host, port, sink, peer, max_bundle_size, None)


async def stcp_listen(
    host: str | None,
    port: int,
    sink: BundleSink,
    *,
    keepalive: float | None = STCP_DEFAULT_KEEPALIVE,
    max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE,
) -> asyncio.Server:
    """Accept STCP connections (ION, HDTN); ``keepalive`` seconds idle sends four zero bytes (None: never)."""
    return await _stream_listen("stcp", host, port, sink, max_bundle_size, keepalive)


async def stcp_connect(
    host: str,
    port: int,
    sink: BundleSink,
    *,
    peer: EID | None = None,
    keepalive: float | None = STCP_DEFAULT_KEEPALIVE,
    max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE,
) -> StreamLink:
    """Open an STCP connection; ``peer`` is the neighbour's node ID when configured."""
    return await _stream_connect("stcp", host, port, sink, peer, max_bundle_size, keepalive)


# ============================================================================================
# UDP
# ============================================================================================


class UdpLink(asyncio.DatagramProtocol):
    """A UDP endpoint: one bundle per datagram, in both directions.

    It is an up link (given to ``sink.link_up``) only when it has a ``peer_addr`` to send to.
    Counters: ``bundles_sent``, ``bundles_received``, ``bundles_dropped``, ``invalid_datagrams``
    (not BPv7 bundles: dropped), ``errors`` (ICMP errors reported by the socket).
    """

    def __init__(
        self,
        sink: BundleSink,
        *,
        peer_addr: tuple[str, int] | None = None,
        peer: EID | None = None,
        max_datagram: int = framing.UDP_MAX_DATAGRAM,
        rate: int | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._peer_addr = peer_addr
        self._peer = peer
        self._max = max_datagram
        self._rate = rate  # bytes per second at most, or None
        self._next_send = 0.0  # loop time from which the next datagram may leave
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks = _Tasks()
        self._writes = _WriteGate(self._loop)
        self._up = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self.bundles_sent = 0
        self.bundles_received = 0
        self.bundles_dropped = 0
        self.invalid_datagrams = 0
        self.errors = 0

    def __repr__(self) -> str:
        return f"<UdpLink {self.local_address} -> {self._peer_addr} peer={self._peer}>"

    @property
    def peer(self) -> EID | None:
        """The neighbour's node ID when the caller configured it."""
        return self._peer

    @property
    def cla(self) -> str:
        """``udp``."""
        return "udp"

    @property
    def peer_address(self) -> tuple[str, int] | None:
        """Where ``send`` sends datagrams."""
        return self._peer_addr

    @property
    def local_address(self) -> Any:
        """The bound socket address."""
        return None if self._transport is None else self._transport.get_extra_info("sockname")

    async def send(self, data: bytes | SplicedBundle) -> None:
        """Send one bundle in one datagram; a bundle above the datagram limit raises LocalError."""
        if self._peer_addr is None:
            raise LocalError("UDP: this endpoint has no peer address to send to")
        if isinstance(data, SplicedBundle) and len(data) > self._max:  # never read it whole to refuse it
            raise TooLargeForLink(
                f"UDP: a {len(data)}-byte bundle does not fit in a datagram of {self._max}", limit=self._max
            )
        datagram = framing.udp_datagram(read_all(data), self._max)
        if self._rate is not None:
            # Each datagram takes its turn at the rate, in the order the sends were called.
            now = self._loop.time()
            start = max(now, self._next_send)
            self._next_send = start + len(datagram) / self._rate
            if start > now:
                await asyncio.sleep(start - now)
        transport = self._transport
        if transport is None or transport.is_closing():
            raise LinkClosedError("UDP endpoint is closed")
        transport.sendto(datagram, self._peer_addr)
        self.bundles_sent += 1
        await self._writes.wait()

    async def close(self) -> None:
        """Close the socket; return once closed."""
        if self._transport is not None:
            self._transport.close()
        await asyncio.shield(self._closed)

    # ---- asyncio.DatagramProtocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is bound; with a peer address the link is up."""
        self._transport = cast("asyncio.DatagramTransport", transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Room for a burst of full datagrams (the kernel caps it at net.core.rmem_max): the
            # default of about 200 KiB holds three, and UDP drops what does not fit.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        if self._peer_addr is not None:
            self._up = True
            try:
                self._sink.link_up(self)
            except Exception:
                log.exception("BundleSink.link_up() failed")

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Check the datagram is a BPv7 bundle, then hand it to the sink whole."""
        try:
            bundle = framing.check_udp_datagram(data, self._max)
        except ConvergenceLayerError as exc:
            self.invalid_datagrams += 1
            log.debug("UDP: dropping a datagram from %s: %s", addr, exc)
            return
        try:
            incoming = self._sink.open_incoming(self if self._up else None, len(bundle))
        except Exception as exc:
            self.bundles_dropped += 1
            log.warning("UDP: dropping a bundle from %s: %s", addr, exc)
            return
        try:
            incoming.write(bundle)
        except Exception as exc:
            self.bundles_dropped += 1
            _abort_incoming(incoming)
            log.warning("UDP: dropping a bundle from %s: %s", addr, exc)
            return
        self._tasks.spawn(self._commit(incoming, addr))

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier datagram: count it."""
        self.errors += 1
        log.debug("UDP endpoint %s: %s", self.local_address, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is closed: the link is down."""
        self._writes.fail(LinkClosedError("UDP endpoint closed"))
        if self._up:
            self._up = False
            try:
                self._sink.link_down(self)
            except Exception:
                log.exception("BundleSink.link_down() failed")
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """Senders wait until the socket drains."""
        self._writes.pause()

    def resume_writing(self) -> None:
        """Release waiting senders."""
        self._writes.resume()

    async def _commit(self, incoming: IncomingBundle, addr: object) -> None:
        try:
            await incoming.commit()
        except Exception as exc:
            self.bundles_dropped += 1
            _abort_incoming(incoming)
            if isinstance(exc, BundleError | StoreError):
                log.warning("UDP: bundle from %s not kept: %s", addr, exc)
            else:
                log.exception("UDP: committing a bundle from %s failed", addr)
        else:
            self.bundles_received += 1


async def udp_endpoint(
    host: str,
    port: int,
    sink: BundleSink,
    *,
    peer_addr: tuple[str, int] | None = None,
    peer: EID | None = None,
    max_datagram: int = framing.UDP_MAX_DATAGRAM,
    rate: int | None = None,
) -> UdpLink:
    """Bind a UDP socket on ``host:port`` receiving bundles (from anyone) and sending to
    ``peer_addr``, at most ``rate`` bytes per second when given."""
    loop = asyncio.get_running_loop()
    _, link = await loop.create_datagram_endpoint(
        lambda: UdpLink(sink, peer_addr=peer_addr, peer=peer, max_datagram=max_datagram, rate=rate),
        local_addr=(host, port),
    )
    return link


if TYPE_CHECKING:

    def _is_link(link: TcpclLink | StreamLink | UdpLink) -> Link:
        """Lets mypy check that every driver implements the Link protocol."""
        return link
