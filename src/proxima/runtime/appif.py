"""The local application interface: newline-delimited JSON over TCP on loopback.

Each message is one line holding a JSON object (UTF-8), optionally followed by a binary
attachment. A request names an ``op`` and carries an ``id`` (a string, an integer or null)
that every message answering it echoes. A request ends with exactly one final message, which
holds ``"ok": true`` or ``"error"``; streaming requests (``recv``, ``ping``) send ``event``
messages before it. Requests on one connection run concurrently, and answers produced together
go out together (one write per event-loop turn).

Binary attachments: any message, in either direction, may carry ``"bin": N`` (an integer,
0 <= N <= :data:`MAX_ATTACHMENT`); the N raw bytes follow immediately after its newline, and
are its payload. The JSON line itself stays within ``max_line`` (64 MiB by default). A payload
travels either attached (``bin``) or as base64 text in the field ``payload``, never both: a
message with both is answered ``bad_request`` (its attachment is read all the same, so the
connection stays usable). A ``bin`` that is not such an integer loses the framing: it is
answered ``bad_request`` (``too_long`` above the maximum) and the connection is closed, as is a
connection that ends inside an attachment.

Requests and their answers::

    {"id": 1, "op": "register", "endpoint": "ipn:2.7"}      (an endpoint of this node)
        -> {"id": 1, "ok": true, "endpoint": "ipn:2.7"}
    {"id": 2, "op": "send", "to": "ipn:3.7", "bin": 5}\\n<5 bytes>      (or "payload": "<base64>",
                                                                  or "file": "/absolute/path")
     optional: "lifetime_s": 3600, "report_to": "dtn:none", "flags": 0, "class": "bulk",
               "source": "ipn:2.7"
        -> {"id": 2, "ok": true, "source": "ipn:2.0", "creation_time": 780000000000, "sequence": 0}
           (once the bundle is durable; a "file" the node reads itself, this interface being
           on loopback only: a large one goes into the store piece by piece, never whole)
    {"id": 3, "op": "send_many", "bundles": [{"to": "ipn:3.7", "bin": 5}, {"to": "ipn:3.8", "bin": 2,
     "lifetime_s": 60}]}\\n<5 bytes><2 bytes>
        -> {"id": 3, "ok": true, "sent": [{"source": "ipn:2.0", "creation_time": 780000000000,
            "sequence": 1}, {...}]}
           (each item as a send, with "bin" or "payload"; at most MAX_BATCH items and
           MAX_ATTACHMENT bytes attached in all; every item is checked before any is sent, and
           the error names the first bad one: "send_many: bundles[4]: ..."; answered once all
           are durable)
    {"id": 4, "op": "recv", "endpoint": "ipn:2.7", "count": 1, "timeout_s": 10, "binary": true}
        -> {"id": 4, "event": "bundle", "endpoint": "ipn:2.7", "source": "ipn:3.1",
            "destination": "ipn:2.7", "creation_time": 780000000000, "sequence": 0,
            "lifetime_ms": 86400000, "flags": 0, "bin": 5}\\n<5 bytes>   (up to count times)
        -> {"id": 4, "ok": true, "count": 1}
           (count 0: no limit; no timeout_s: wait for ever; recv also registers the endpoint;
           without "binary": true the events carry "payload": "<base64>" instead of "bin";
           with "save_dir": "/absolute/dir" each payload is written to a new file there instead,
           and the event carries "file": "/absolute/dir/NAME" and "length": N)
        with "binary": true and "batch": true, the bundles handed over together come as one event:
        -> {"id": 4, "event": "bundles", "endpoint": "ipn:2.7", "bundles": [["ipn:3.1", "ipn:2.7",
            780000000000, 0, 86400000, 0, 5], ...], "bin": 7}\n<5 bytes><2 bytes>
           (each item: source, destination, creation time, sequence, lifetime in ms, flags and
           payload length; the attachment is the payloads one after the other. A payload the
           store keeps in a file still comes alone, as a "bundle" event)
    {"id": 5, "op": "status"}  -> {"id": 5, "ok": true, "status": {...Node.status(), "app": {...}}}
    {"id": 6, "op": "ping", "to": "ipn:3.0", "count": 4, "size": 64, "timeout_s": 10, "interval_s": 1}
        -> {"id": 6, "event": "reply", "seq": 0, "rtt_ms": 12.5, "bytes": 64, "from": "ipn:3.2047"}
        -> {"id": 6, "event": "timeout", "seq": 1}
        -> {"id": 6, "ok": true, "to": "ipn:3.2047", "sent": 4, "received": 3, "rtts_ms": [12.5, null, ...]}
    {"id": 7, "op": "cancel", "target": 4}
        -> {"id": 7, "ok": true, "cancelled": true}, and request 4 ends with code "cancelled"

Errors: ``{"id": ..., "error": "one line", "code": "..."}`` where ``code`` is one of
``bad_json``, ``bad_request``, ``unknown_op``, ``too_long`` (the connection is then closed),
``too_large`` (a bundle to receive is larger than a line may be, or than an attachment when
binary: it stays stored), ``busy``, ``refused`` (the node refuses: a bundle rule, another
node's endpoint...), ``store``, ``cancelled``, ``error`` or ``internal``. A malformed line
never ends the connection (a malformed ``bin`` does, see above), and one client never disturbs
another. A ``send_many`` the node refuses part-way (e.g. its store is full) answers an error
that says how many items went out, with their identities in ``"sent"``.

Files: a ``file`` to send and a ``save_dir`` to receive into are read and written by the node,
with its own rights. On Linux the node looks the client's socket up in the kernel's tables
(``/proc/net/tcp``, ``tcp6``) and refuses both (code ``refused``) to a client run by another user;
elsewhere the interface being on loopback is the only guard.

Sends are not limited in number per connection: past :data:`MAX_PENDING_SENDS` bundles waiting
for durability, and while the client does not read its answers, the node stops reading from it.

Delivery is at least once *to the socket*: ``recv`` acknowledges a bundle to the node (which
then forgets it) only after its message was written to the client's transport; a bundle whose
client goes away before that stays in the store for the next ``recv``. A binary batch ``recv``
that waits for bundles gets them just before the node's next group commit, which then forgets
them: a client that keeps up costs the store neither a row nor a payload file per bundle.

The node also answers pings here: bundles for its echo endpoint (``ipn:N.2047`` or
``dtn://name/echo``) are sent back to their source, and replies to this node's pings arrive on
one endpoint with a random service number (``ipn:N.S``, ``dtn://name/ping-XXXX``) chosen at start.
A ping bundle's payload is ``PXP1``, an 8-byte token of the ping request and a 4-byte sequence
number, padded with zeros to ``size`` (16 bytes at least); its lifetime is ``timeout_s`` (1 s at
least), and the echo keeps the lifetime it was sent with.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import ipaddress
import json
import logging
import math
import os
import secrets
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from proxima.bpv7.bundle import BundleFlag
from proxima.bpv7.eid import DTN_NONE, EID, DtnEID, IpnEID
from proxima.errors import InvalidEndpointID, LocalError, ProximaError, StoreError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
    from types import EllipsisType
    from typing import TypeAlias

    from proxima.runtime.node import Delivery, Node, PayloadFile

    Emit: TypeAlias = Callable[["Message"], Awaitable[None]]
    Handler: TypeAlias = Callable[["_Connection", "Message", Emit], Awaitable["Message"]]
    SyncHandler: TypeAlias = Callable[["_Connection", "RequestId", "Message"], None]

__all__ = ["MAX_ATTACHMENT", "MAX_BATCH", "MAX_LINE", "AppInterface", "echo_endpoint"]

log = logging.getLogger("proxima.appif")

MAX_LINE: Final = 64 * 1024 * 1024
"""The longest JSON line accepted (bytes, newline included): about 48 MiB of base64 payload."""
MAX_ATTACHMENT: Final = 1024 * 1024 * 1024
"""The most bytes attached to one message (``bin``; all the items of a ``send_many`` together)."""
MAX_BATCH: Final = 4096
"""The most bundles in one ``send_many``."""
MAX_PENDING_SENDS: Final = 16_384
"""Bundles of one connection waiting for durability before the node stops reading from it."""
MAX_INFLIGHT: Final = 256
"""Streaming and other task-run requests (all but sends) running at once on one connection."""
RECV_BATCH: Final = 256
"""Bundles a ``recv`` writes at once (one write, one acknowledgement) when several wait."""
RECV_BATCH_BYTES: Final = 4 * 1024 * 1024
"""Payload bytes after which a ``recv`` batch ends (one bundle at least)."""
STREAM_CHUNK: Final = 1024 * 1024
"""Bytes read from the store's file and written at a time when a large payload is handed over."""
FAIR_TURN: Final = 512
"""Requests read from one connection before it lets the others run (when they arrive faster)."""
ECHO_SERVICE: Final = 2047
PING_MAGIC: Final = b"PXP1"
PING_HEADER: Final = struct.Struct(">4s8sI")  # magic, session token, sequence number
MAX_PING_COUNT: Final = 100_000
MAX_PING_SIZE: Final = 16 * 1024 * 1024
CLASSES: Final = {"bulk": 0, "expedited": 1}
_APP_FLAGS: Final = ~int(BundleFlag.IS_FRAGMENT | BundleFlag.ADMIN_RECORD)

Message = dict[str, Any]
T = TypeVar("T")
RequestId = str | int | None


class _BadRequest(Exception):
    """The request is malformed; answered with ``code`` and the message."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class _BadFraming(_BadRequest):
    """A ``bin`` field that cannot be trusted: where the next message starts is unknown."""


def echo_endpoint(node: EID) -> EID:
    """The echo endpoint of the node owning ``node``: ``ipn:N.2047`` or ``dtn://name/echo``."""
    if isinstance(node, IpnEID):
        return IpnEID(node.node, ECHO_SERVICE)
    if isinstance(node, DtnEID) and not node.is_none:
        return DtnEID(f"//{node.node_name}/echo")
    raise InvalidEndpointID(f"{node} names no node to ping")


def _ping_endpoint(node: EID) -> EID:
    if isinstance(node, IpnEID):
        return IpnEID(node.node, 1 << 20 | secrets.randbits(31))
    if isinstance(node, DtnEID):
        return DtnEID(f"//{node.node_name}/ping-{secrets.token_hex(6)}")
    raise LocalError(f"{node} cannot have a ping endpoint")


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


def _line(message: Message) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")


# -- request fields ------------------------------------------------------------------------------


def _get(req: Message, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if name not in req or req[name] is None:
        if default is ...:
            raise _BadRequest(f"{req.get('op')}: the field {name!r} is missing")
        return default
    value = req[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _BadRequest(f"{req.get('op')}: {name!r} must not be a boolean")
    if not isinstance(value, kind):
        raise _BadRequest(f"{req.get('op')}: {name!r} has the wrong type ({type(value).__name__})")
    return value


def _int(req: Message, name: str, low: int, high: int, default: int | None = None) -> int:
    value: int = _get(req, name, int, ... if default is None else default)
    if not low <= value <= high:
        raise _BadRequest(f"{req.get('op')}: {name!r} must be in {low}..{high}, not {value}")
    return value


def _seconds(req: Message, name: str, default: float | None) -> float | None:
    value = _get(req, name, (int, float), default)
    if value is None:
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or seconds > 10 * 365 * 86_400:
        raise _BadRequest(f"{req.get('op')}: {name!r} must be a number of seconds >= 0, not {value}")
    return seconds


def _eid(req: Message, name: str, default: EID | None = None) -> EID:
    text = _get(req, name, str, None)
    if text is None:
        if default is None:
            raise _BadRequest(f"{req.get('op')}: the field {name!r} is missing")
        return default
    try:
        return _parse_eid(text)
    except InvalidEndpointID as exc:
        raise _BadRequest(f"{req.get('op')}: {name}: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def _parse_eid(text: str) -> EID:
    """EID.parse, remembered: a client names the same few endpoints again and again."""
    return EID.parse(text)


@functools.lru_cache(maxsize=1024)
def _json_eid(eid: EID) -> str:
    """An EID as a JSON string, remembered (events name the same few endpoints)."""
    return json.dumps(str(eid))


def _payload(req: Message) -> bytes:
    """The payload: the attachment (``bin``, already read) or the base64 ``payload``."""
    attached = req.get("bin")
    if isinstance(attached, bytes):
        if req.get("payload") is not None:
            raise _BadRequest(f"{req.get('op')}: give 'payload' or 'bin', not both")
        return attached
    text: str = _get(req, "payload", str)
    try:
        # strict: only the base64 alphabet, padding only at the end (as b64decode(validate=True),
        # without its regular-expression pass over the whole text)
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _BadRequest(f"{req.get('op')}: 'payload' is not base64: {exc}") from exc


def _bin_size(value: object, where: str) -> int:
    """The byte count of a ``bin`` field (0 when absent); raises _BadFraming when unusable."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _BadFraming(f"{where}: 'bin' must be an integer >= 0, not {value!r}")
    if value > MAX_ATTACHMENT:
        raise _BadFraming(f"{where}: 'bin' {value} is more than {MAX_ATTACHMENT} bytes", "too_long")
    return value


def _attachments(req: Message) -> tuple[int, list[tuple[Message, int]]]:
    """What follows the line of ``req``: its own attachment's size, then the items of a
    ``send_many`` with theirs (in order); raises _BadFraming when a size is unusable."""
    op = req.get("op")
    own = _bin_size(req.get("bin"), str(op))
    items: list[tuple[Message, int]] = []
    bundles = req.get("bundles") if op == "send_many" else None
    total = own
    if isinstance(bundles, list):
        for i, item in enumerate(bundles):
            if isinstance(item, dict):
                size = _bin_size(item.get("bin"), f"send_many: bundles[{i}]")
                if size or item.get("bin") is not None:
                    items.append((item, size))
                    total += size
    if total > MAX_ATTACHMENT:
        raise _BadFraming(f"{op}: more than {MAX_ATTACHMENT} bytes attached", "too_long")
    return own, items


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, _BadRequest):
        return exc.code
    if isinstance(exc, InvalidEndpointID):
        return "bad_request"
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, LocalError):
        return "refused"
    if isinstance(exc, ProximaError):
        return "error"
    return "internal"


async def _acquire(lock: asyncio.Lock, timeout: float | None) -> bool:
    """Take ``lock`` within ``timeout`` seconds (at once when it is free, even for 0)."""
    if not lock.locked():
        await lock.acquire()
        return True
    try:
        await asyncio.wait_for(lock.acquire(), timeout)
    except TimeoutError:
        return False
    return True


# -- one client connection -----------------------------------------------------------------------


class _Connection:
    """One client: reads requests (and their attachments), runs them, writes answers.

    Sends are handled at once, up to the node's durability future, and answered from its
    callback; other requests run as tasks. What is written in one event-loop turn goes out in
    one ``transport.write``.
    """

    def __init__(self, app: AppInterface, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.app = app
        self.reader = reader
        self.writer = writer
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_id: dict[str | int, asyncio.Task[None]] = {}
        self._cancelled: set[asyncio.Task[None]] = set()
        self._pending_sends = 0
        self._send_room = asyncio.Event()
        self._send_room.set()
        self._exclusive = asyncio.Lock()  # held while an attachment streams from a file
        self._peer_uid: int | EllipsisType | None = ...  # looked up on the first file request
        self._held = False  # then queued answers wait: they must not land inside it

    # -- writing

    def post(self, *pieces: bytes) -> None:
        """Queue bytes for the client: they go out with all else queued in this event-loop turn."""
        self._out.extend(pieces)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def post_message(self, message: Message) -> None:
        """Queue one message (without attachment)."""
        self.post(_line(message))

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._out or self._held:
            return
        out, self._out = self._out, []
        if not self.writer.is_closing():
            self.writer.write(out[0] if len(out) == 1 else b"".join(out))

    async def write_pieces(self, pieces: Sequence[bytes]) -> None:
        """Write bytes now (after whatever is queued) and wait for room in the transport;
        raises ConnectionError when the client is gone."""
        async with self._exclusive:
            await self.raw_write(pieces)

    def write_now(self, pieces: Sequence[bytes]) -> None:
        """Hand bytes to the transport now (after whatever is queued), without waiting for room;
        raises ConnectionError when the client is gone. For the holder of :meth:`exclusive`'s
        lock, or when it is free."""
        if self.writer.is_closing():
            raise ConnectionResetError("the client went away")
        if self._held:  # streaming: only these bytes; answers queued meanwhile wait
            self.writer.write(b"".join(pieces))
        else:
            self._out.extend(pieces)
            self._flush()

    async def raw_write(self, pieces: Sequence[bytes]) -> None:
        """:meth:`write_pieces` for the holder of :meth:`exclusive`."""
        self.write_now(pieces)
        await self.writer.drain()
        if self.writer.is_closing():
            raise ConnectionResetError("the client went away")

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The connection's output to oneself (an attachment streamed in pieces): other answers
        queue meanwhile and follow it."""
        async with self._exclusive:
            self._held = True
            try:
                yield
            finally:
                self._held = False
                self._flush()

    async def write(self, message: Message) -> None:
        """Write one message now; raises ConnectionError when the client is gone."""
        await self.write_pieces([_line(message)])

    def check_file_access(self, what: str) -> None:
        """Refuse ``file`` and ``save_dir`` to a client run by another user than the node's: the
        node reads and writes those paths with its own rights. (Where the kernel's socket tables
        cannot say, as off Linux, the interface being on loopback is the only guard.)"""
        if self._peer_uid is ...:
            transport = self.writer.transport
            sock = transport.get_extra_info("socket")
            try:
                self._peer_uid = None if sock is None else peer_uid(sock.getsockname(), sock.getpeername())
            except OSError:
                self._peer_uid = None
        uid = self._peer_uid
        if uid is not None and uid != os.getuid():
            raise _BadRequest(
                f"{what}: this client runs as user {uid}, not as the node's user {os.getuid()}: "
                "only the node's own user may have it read or write files",
                "refused",
            )

    def error(self, rid: RequestId, message: str, code: str, **extra: Any) -> None:
        """Queue an error answer."""
        self.post_message({"id": rid, "error": _one_line(message), "code": code, **extra})

    # -- reading

    async def run(self) -> None:
        try:
            read = 0
            while True:
                try:
                    line = await self.reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    self.error(None, f"request line longer than {self.app.max_line} bytes", "too_long")
                    return
                except ConnectionError:
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                if not await self._request(line):
                    return
                read += 1
                if read % FAIR_TURN == 0:
                    await asyncio.sleep(0)  # let other clients (and the node) have a turn
                if self._pending_sends >= MAX_PENDING_SENDS:
                    await self._send_room.wait()
                if self.writer.transport.get_write_buffer_size():
                    with contextlib.suppress(ConnectionError):
                        await self.writer.drain()  # a client that does not read is not read either
        finally:
            for task in self._tasks:
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._flush()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _request(self, line: bytes) -> bool:
        """Parse one request line, read its attachments and dispatch it; False to close."""
        try:
            req = json.loads(line)
        except (ValueError, RecursionError) as exc:
            self.error(None, f"the line is not JSON: {exc}", "bad_json")
            return True
        if not isinstance(req, dict):
            self.error(None, "a request must be a JSON object", "bad_request")
            return True
        rid = req.get("id")
        if isinstance(rid, bool) or not isinstance(rid, str | int | None):
            rid = None
        try:
            own, items = _attachments(req)
        except _BadFraming as exc:
            self.error(rid, f"{exc}; closing the connection", exc.code)
            return False
        try:
            if req.get("bin") is not None:
                req["bin"] = await self.reader.readexactly(own) if own else b""
            for item, size in items:
                item["bin"] = await self.reader.readexactly(size) if size else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            return False  # the client went away inside an attachment
        self._dispatch(req)
        return True

    def _dispatch(self, req: Message) -> None:
        rid = req.get("id")
        if isinstance(rid, bool) or not isinstance(rid, str | int | None):
            self.error(None, "'id' must be a string, an integer or null", "bad_request")
            return
        op = req.get("op")
        sync = self.app.sync_handler(op) if isinstance(op, str) else None
        if sync is not None:
            try:
                sync(self, rid, req)
            except Exception as exc:
                self._failed(rid, req, exc)
            return
        handler = self.app.handler(op) if isinstance(op, str) else None
        if handler is None:
            known = ", ".join(self.app.ops())
            self.error(rid, f"unknown op {op!r} (known: {known})", "unknown_op")
            return
        if rid is not None and rid in self._by_id:
            self.error(rid, f"request {rid!r} is still running on this connection", "bad_request")
            return
        if len(self._tasks) >= MAX_INFLIGHT:
            self.error(rid, f"more than {MAX_INFLIGHT} requests running on this connection", "busy")
            return
        task = asyncio.create_task(self._run(rid, handler, req))
        self._tasks.add(task)
        if rid is not None:
            self._by_id[rid] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._cancelled.discard(t)
            if rid is not None and self._by_id.get(rid) is t:
                del self._by_id[rid]

        task.add_done_callback(done)

    def _failed(self, rid: RequestId, req: Message, exc: BaseException, **extra: Any) -> None:
        if not isinstance(exc, ProximaError | _BadRequest):
            log.error("app interface: %s request failed", req.get("op"), exc_info=exc)
        self.error(rid, str(exc) or type(exc).__name__, _error_code(exc), **extra)

    async def _run(self, rid: RequestId, handler: Handler, req: Message) -> None:
        async def emit(event: Message) -> None:
            await self.write({"id": rid, **event})

        try:
            result = await handler(self, req, emit)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task not in self._cancelled:
                raise
            self.error(rid, "cancelled by the client", "cancelled")
            return
        except ConnectionError:
            return  # the client went away: nothing to answer
        except Exception as exc:
            self._failed(rid, req, exc)
            return
        self.post_message({"id": rid, "ok": True, **result})

    # -- sends

    def answer_when_durable(
        self,
        rid: RequestId,
        req: Message,
        durables: list[asyncio.Future[None]],
        result: Message,
        failure: tuple[str, str] | None = None,
        bundles: list[int] | None = None,
    ) -> None:
        """Answer ``result`` once every future in ``durables`` is done: an error if one failed,
        or the error ``failure`` (message, code) with ``result`` as extra fields when given.
        ``bundles`` says how many bundles each future stands for (one each by default).

        The futures are never cancelled from here: a bundle handed to the node is made durable
        even if the client goes away."""
        remaining = len(durables)
        weights = [1] * remaining if bundles is None else bundles
        self._pending_sends += sum(weights)
        if self._pending_sends >= MAX_PENDING_SENDS:
            self._send_room.clear()

        def finish() -> None:
            problem: BaseException | None = None
            for fut in durables:
                if fut.cancelled():
                    problem = StoreError("the node stopped before the bundle was durable")
                elif fut.exception() is not None:
                    problem = fut.exception()
                if problem is not None:
                    break
            if problem is not None:
                self._failed(rid, req, problem)
            elif failure is not None:
                self.error(rid, failure[0], failure[1], **result)
            else:
                self.post_message({"id": rid, "ok": True, **result})

        def one_done(weight: int, _: asyncio.Future[None]) -> None:
            nonlocal remaining
            remaining -= 1
            self._pending_sends -= weight
            if self._pending_sends < MAX_PENDING_SENDS // 2:
                self._send_room.set()
            if remaining == 0:
                finish()

        if not durables:
            finish()
        for fut, weight in zip(durables, weights, strict=True):
            fut.add_done_callback(functools.partial(one_done, weight))

    def cancel(self, target: str | int) -> bool:
        task = self._by_id.get(target)
        if task is None or task is asyncio.current_task():
            return False
        self._cancelled.add(task)
        task.cancel()
        return True


# -- ping ----------------------------------------------------------------------------------------


class _PingSession:
    """One ping request: its token and the replies it waits for (seq -> arrival time)."""

    def __init__(self) -> None:
        self.token = secrets.token_bytes(8)
        self.waiting: dict[int, asyncio.Future[tuple[float, EID]]] = {}


# -- the server ----------------------------------------------------------------------------------


class AppInterface:
    """The application interface of one node, and its echo and ping services.

    ``port`` 0 picks a free port (see :attr:`address` once started). Only loopback addresses
    are accepted: the interface has no authentication.
    """

    def __init__(
        self, node: Node, host: str = "127.0.0.1", port: int = 4242, *, max_line: int = MAX_LINE
    ) -> None:
        if not _is_loopback(host):
            raise LocalError(f"the application interface listens on loopback only, not on {host!r}")
        self.node = node
        self.host = host
        self.port = port
        self.max_line = max_line
        self.echo_endpoint = echo_endpoint(node.config.node_id)
        self.ping_endpoint = _ping_endpoint(node.config.node_id)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._locks: dict[EID, asyncio.Lock] = {}
        self._pings: dict[bytes, _PingSession] = {}
        self._handlers: dict[str, Handler] = {
            "register": _op_register,
            "recv": _op_recv,
            "status": _op_status,
            "ping": _op_ping,
            "cancel": _op_cancel,
        }
        self._sync_handlers: dict[str, SyncHandler] = {"send": _op_send, "send_many": _op_send_many}

    # -- lifecycle

    async def start(self) -> None:
        """Register the echo and ping endpoints with their handlers, and listen."""
        self.node.set_handler(self.echo_endpoint, self._echo)
        self.node.set_handler(self.ping_endpoint, self._ping_reply)
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=self.max_line)
        except OSError as exc:
            await self.stop()
            where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            raise LocalError(
                f"the application interface cannot listen on {where}: {exc.strerror or exc}"
            ) from exc
        self.port = self.address[1]

    async def stop(self) -> None:
        """Stop listening, drop the clients (unacknowledged bundles stay stored) and the services."""
        if self._server is not None:
            self._server.close()
        self.node.remove_handler(self.echo_endpoint)
        self.node.remove_handler(self.ping_endpoint)
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        for task in [*tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AppInterface:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on."""
        if self._server is None or not self._server.sockets:
            return self.host, self.port
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def connections(self) -> int:
        """Clients connected now."""
        return len(self._connections)

    def handler(self, op: str) -> Handler | None:
        """The coroutine running ``op`` as a task, if it is run so."""
        return self._handlers.get(op)

    def sync_handler(self, op: str) -> SyncHandler | None:
        """The function handling ``op`` at once (sends: they answer from a callback)."""
        return self._sync_handlers.get(op)

    def ops(self) -> list[str]:
        return sorted([*self._handlers, *self._sync_handlers])

    def background(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task that :meth:`stop` waits for."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def lock(self, endpoint: EID) -> asyncio.Lock:
        """Serialises takers of one endpoint (the node hands the oldest bundle to each)."""
        return self._locks.setdefault(endpoint, asyncio.Lock())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            pass  # stop(): asyncio (3.11) would log a cancelled client task as an error
        finally:
            if task is not None:
                self._connections.discard(task)

    # -- services on the node's own endpoints

    def _echo(self, delivery: Delivery) -> None:
        """Send a bundle for the echo endpoint back to its source (run as it is delivered)."""
        p = delivery.bundle.primary
        if p.source.is_none or p.flags & BundleFlag.ADMIN_RECORD:
            return
        if delivery.payload_file is not None:
            size = delivery.payload_length
            log.warning("%s: not echoing a %d-byte bundle from %s", self.echo_endpoint, size, p.source)
            return
        lifetime = max(1, min(p.lifetime, 86_400_000))
        try:
            # Not awaited: the acknowledgement of the request waits for the same commit, which
            # makes the reply durable too (one commit for both, not two in a row).
            durable = self.node.send(
                p.source, delivery.bundle.payload, source=self.echo_endpoint, lifetime_ms=lifetime
            )
        except ProximaError as exc:
            log.warning("%s: cannot answer %s: %s", self.echo_endpoint, p.source, exc)
            return
        durable.add_done_callback(_retrieve)

    def _ping_reply(self, delivery: Delivery) -> None:
        """Match an echo reply with the ping waiting for it (run as it is delivered)."""
        bundle = delivery.bundle
        data = bundle.payload
        if len(data) < PING_HEADER.size:
            return
        magic, token, seq = PING_HEADER.unpack_from(data)
        session = self._pings.get(token) if magic == PING_MAGIC else None
        if session is None:
            return  # a late reply to a finished ping
        waiter = session.waiting.get(seq)
        if waiter is not None and not waiter.done():
            waiter.set_result((time.monotonic(), bundle.primary.source))

    async def ping(
        self,
        to: EID,
        emit: Emit,
        *,
        count: int,
        size: int,
        timeout: float,
        interval: float,
    ) -> Message:
        """Send ``count`` bundles to the echo endpoint of ``to``'s node, reporting each reply."""
        target = echo_endpoint(to)
        session = _PingSession()
        self._pings[session.token] = session
        lifetime_ms = max(1000, math.ceil(timeout * 1000))
        rtts: list[float | None] = []
        loop = asyncio.get_running_loop()
        try:
            for seq in range(count):
                started = time.monotonic()
                waiter: asyncio.Future[tuple[float, EID]] = loop.create_future()
                session.waiting[seq] = waiter
                header = PING_HEADER.pack(PING_MAGIC, session.token, seq)
                payload = header + bytes(size - len(header))
                sent = self.node.send(target, payload, source=self.ping_endpoint, lifetime_ms=lifetime_ms)
                await asyncio.shield(sent)
                try:
                    arrived, source = await asyncio.wait_for(
                        waiter, max(0.0, timeout - (time.monotonic() - started))
                    )
                except TimeoutError:
                    rtts.append(None)
                    await emit({"event": "timeout", "seq": seq})
                else:
                    rtt = round((arrived - started) * 1000, 3)
                    rtts.append(rtt)
                    await emit(
                        {"event": "reply", "seq": seq, "rtt_ms": rtt, "bytes": size, "from": str(source)}
                    )
                finally:
                    session.waiting.pop(seq, None)
                if seq + 1 < count:
                    await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        finally:
            del self._pings[session.token]
        received = sum(1 for r in rtts if r is not None)
        return {"to": str(target), "sent": len(rtts), "received": received, "rtts_ms": rtts}


def _retrieve(fut: asyncio.Future[None]) -> None:
    """Done callback of a durability wait nobody awaits: log its failure."""
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("a commit failed: %s", fut.exception())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proc_address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """An ``ADDRESS:PORT`` of ``/proc/net/tcp`` or ``tcp6`` (the address in 32-bit words of
    host byte order, the port in hex)."""
    hex_ip, hex_port = text.split(":")
    raw = bytes.fromhex(hex_ip)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return _unmapped(ipaddress.ip_address(raw)), int(hex_port, 16)


def _endpoint(name: Any) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    return _unmapped(ipaddress.ip_address(str(name[0]).split("%")[0])), int(name[1])


def _unmapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it maps (a dual-stack socket's view)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_SOCKET_TABLES: Final = ("/proc/net/tcp", "/proc/net/tcp6")


def peer_uid(local: Any, peer: Any, tables: Sequence[str] = _SOCKET_TABLES) -> int | None:
    """The user owning the other end of a loopback TCP connection, from the kernel's socket
    tables (``local`` and ``peer`` as ``getsockname()``/``getpeername()`` give them); None
    where there are no such tables (not Linux) or the socket is not found."""
    ours, theirs = _endpoint(local), _endpoint(peer)
    for table in tables:
        try:
            with open(table, encoding="ascii") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            try:
                if _proc_address(fields[1]) == theirs and _proc_address(fields[2]) == ours:
                    return int(fields[7])
            except ValueError:
                continue
    return None


# -- operations ----------------------------------------------------------------------------------


async def _op_register(conn: _Connection, req: Message, emit: Emit) -> Message:
    endpoint = _local_endpoint(conn.app.node, req)
    conn.app.node.register(endpoint)
    return {"endpoint": str(endpoint)}


def _local_endpoint(node: Node, req: Message) -> EID:
    """The request's ``endpoint``, which must belong to this node unless it names a group."""
    endpoint = _eid(req, "endpoint")
    own = node.agent.node_id
    if endpoint.is_singleton and endpoint.node_id != own:
        raise _BadRequest(f"{req.get('op')}: {endpoint} is not an endpoint of this node ({own})", "refused")
    return endpoint


class _SendArgs:
    """One checked ``send`` (or ``send_many`` item): what ``Node.send`` takes."""

    __slots__ = ("file", "flags", "klass", "lifetime_ms", "payload", "report_to", "source", "to")

    def __init__(self, node: Node, req: Message) -> None:
        op = req.get("op")
        self.to = _eid(req, "to")
        file: str | None = _get(req, "file", str, None)
        self.file: Path | None = None
        self.payload = b""
        if file is None:
            self.payload = _payload(req)
        elif req.get("payload") is not None or isinstance(req.get("bin"), bytes):
            raise _BadRequest(f"{op}: give one of 'payload', 'bin' or 'file'")
        else:
            self.file = _absolute(file, f"{op}: 'file'")
        lifetime = _seconds(req, "lifetime_s", 86_400.0)
        self.lifetime_ms = math.ceil((lifetime or 0.0) * 1000)
        if self.lifetime_ms <= 0:
            raise _BadRequest(f"{op}: 'lifetime_s' must be more than 0")
        self.report_to = _eid(req, "report_to", DTN_NONE)
        self.flags = _int(req, "flags", 0, (1 << 64) - 1, 0)
        if self.flags & ~_APP_FLAGS:
            raise _BadRequest(
                f"{op}: 'flags' may not mark a bundle as a fragment or an administrative record"
            )
        self.klass = _class(req)
        own = node.agent.node_id
        self.source = _eid(req, "source", own)
        if not self.source.is_none and self.source.node_id != own:
            raise _BadRequest(f"{op}: 'source' {self.source} is not an endpoint of this node ({own})")

    @classmethod
    def plain(cls, node: Node, to: EID, payload: bytes) -> _SendArgs:
        """A send with every option at its default: the common ``send_many`` item, checked
        without going through each option."""
        args = cls.__new__(cls)
        args.to, args.payload, args.file = to, payload, None
        args.lifetime_ms, args.report_to, args.flags, args.klass = 86_400_000, DTN_NONE, 0, None
        args.source = node.agent.node_id
        return args

    def send(self, node: Node) -> tuple[asyncio.Future[None] | None, Message]:
        """Hand the bundle to the node: its durability future and its identity. A bundle in
        memory gets no future of its own (None): the caller waits on ``node.durable()``, once
        for all it sent in this turn."""
        if self.file is not None:
            (created, sequence), durable = node.start_send_file(
                self.to,
                self.file,
                source=self.source,
                lifetime_ms=self.lifetime_ms,
                report_to=self.report_to,
                flags=self.flags,
                klass=self.klass,
            )
            return durable, {"source": str(self.source), "creation_time": created, "sequence": sequence}
        p = node.originate(
            self.to,
            self.payload,
            source=self.source,
            lifetime_ms=self.lifetime_ms,
            report_to=self.report_to,
            flags=self.flags,
            klass=self.klass,
        ).primary
        identity = {"source": str(self.source), "creation_time": p.creation_time, "sequence": p.sequence}
        return None, identity


def _absolute(text: str, what: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise _BadRequest(f"{what} must be an absolute path (the node resolves it), not {text!r}")
    return path


def _op_send(conn: _Connection, rid: RequestId, req: Message) -> None:
    node = conn.app.node
    args = _SendArgs(node, req)
    if args.file is not None:
        conn.check_file_access("send: 'file'")
    durable, sent = args.send(node)
    conn.answer_when_durable(rid, req, [node.durable() if durable is None else durable], sent)


def _op_send_many(conn: _Connection, rid: RequestId, req: Message) -> None:
    """Check every item, then send them all in this event-loop turn; answer once all are durable."""
    node = conn.app.node
    bundles: list[Any] = _get(req, "bundles", list)
    if len(bundles) > MAX_BATCH:
        raise _BadRequest(f"send_many: more than {MAX_BATCH} bundles ({len(bundles)})")
    if req.get("bin") is not None:
        raise _BadRequest("send_many: attachments belong to the items ('bundles[i].bin'), not the request")
    checked: list[_SendArgs] = []
    for i, item in enumerate(bundles):
        if not isinstance(item, dict):
            raise _BadRequest(f"send_many: bundles[{i}] is not an object")
        if len(item) == 2 and type(payload := item.get("bin")) is bytes and type(to := item.get("to")) is str:
            with contextlib.suppress(InvalidEndpointID):
                checked.append(_SendArgs.plain(node, _parse_eid(to), payload))
                continue
        args = _SendArgs(node, {**item, "op": f"send_many: bundles[{i}]"})
        if args.file is not None:
            conn.check_file_access(f"send_many: bundles[{i}]: 'file'")
        checked.append(args)
    durables: list[asyncio.Future[None]] = []
    sent: list[Message] = []
    failure: tuple[str, str] | None = None
    in_memory = 0  # bundles sent without a future of their own: one wait covers them
    for i, args in enumerate(checked):
        try:
            durable, identity = args.send(node)
        except ProximaError as exc:
            failure = (f"send_many: bundles[{i}]: {exc} (the {i} before it were sent)", _error_code(exc))
            break
        if durable is None:
            in_memory += 1
        else:
            durables.append(durable)
        sent.append(identity)
    weights = [1] * len(durables)
    if in_memory:
        durables.append(node.durable())
        weights.append(in_memory)
    conn.answer_when_durable(rid, req, durables, {"sent": sent}, failure, weights)


def _class(req: Message) -> int | None:
    value = _get(req, "class", (int, str), None)
    if value is None:
        return None
    if isinstance(value, str):
        if value not in CLASSES:
            raise _BadRequest(f"{req.get('op')}: 'class' must be one of {', '.join(CLASSES)}, not {value!r}")
        return CLASSES[value]
    if value not in CLASSES.values():
        raise _BadRequest(f"{req.get('op')}: 'class' must be 0 (bulk) or 1 (expedited), not {value}")
    return int(value)


async def _op_recv(conn: _Connection, req: Message, emit: Emit) -> Message:
    app, node = conn.app, conn.app.node
    endpoint = _local_endpoint(node, req)
    count = _int(req, "count", 0, 1 << 32, 1)
    timeout = _seconds(req, "timeout_s", None)
    binary: bool = _get(req, "binary", bool, False)
    batch: bool = _get(req, "batch", bool, False)
    if batch and not binary:
        raise _BadRequest("recv: 'batch' needs 'binary'")
    save_text: str | None = _get(req, "save_dir", str, None)
    save_dir = None if save_text is None else _absolute(save_text, "recv: 'save_dir'")
    if save_dir is not None:
        conn.check_file_access("recv: 'save_dir'")
    if save_dir is not None and not save_dir.is_dir():
        raise _BadRequest(f"recv: 'save_dir' {save_dir} is not a directory")
    node.register(endpoint)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    lock = app.lock(endpoint)
    received = 0
    push = batch and save_dir is None
    while count == 0 or received < count:
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        if not await _acquire(lock, remaining):
            break
        handed = False
        try:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            limit = RECV_BATCH if count == 0 else min(RECV_BATCH, count - received)
            deliveries = node.take_ready(endpoint, limit)
            if not deliveries and push:
                left = count - received if count else 0
                pushed, more = await _consume(conn, req.get("id"), endpoint, left, remaining)
                received += pushed
                if not more:
                    break
                continue
            if not deliveries:
                delivery = await node.take(endpoint, remaining)
                if delivery is None:
                    break
                deliveries = [delivery, *node.take_ready(endpoint, limit)[1:]]
            # Once begun, handing the bundles over finishes even if this request is cancelled,
            # so a bundle written to the socket is always acknowledged, and only once.
            handed = True
            written = await asyncio.shield(
                app.background(
                    _hand_over_many(
                        conn, req.get("id"), endpoint, deliveries, lock, binary, save_dir, batch
                    )
                )
            )
        finally:
            if not handed:
                lock.release()
        if not written:
            raise ConnectionResetError("the client went away")
        received += written
    return {"count": received}


def _bundle_event(
    app: AppInterface, prefix: str, delivery: Delivery, binary: bool, saved: Path | None = None
) -> bytes:
    """The ``bundle`` event line for a delivery; when ``binary``, its attachment follows it;
    when the payload was ``saved`` to a file, the event names it.

    Built by hand from ``prefix`` (the id and endpoint, in JSON): every other field is an
    integer or a remembered EID, and a base64 payload needs no JSON escaping."""
    p = delivery.bundle.primary
    size = delivery.payload_length
    if saved is None and (
        (size > MAX_ATTACHMENT) if binary else ((size + 2) // 3 * 4 > app.max_line - 4096)
    ):
        raise _BadRequest(
            f"recv: the bundle from {p.source} ({p.creation_time}.{p.sequence}) has a "
            f"{size}-byte payload, more than this interface carries; it stays stored",
            "too_large",
        )
    head = (
        f'{prefix},"source":{_json_eid(p.source)},"destination":{_json_eid(p.destination)},'
        f'"creation_time":{p.creation_time},"sequence":{p.sequence},"lifetime_ms":{p.lifetime},'
        f'"flags":{int(p.flags)}'
    )
    if saved is not None:
        return f'{head},"file":{json.dumps(str(saved))},"length":{size}}}\n'.encode()
    if binary:
        return f'{head},"bin":{size}}}\n'.encode("ascii")
    return (head + ',"payload":"' + _b64(delivery.read_payload()) + '"}\n').encode("ascii")


def _save(delivery: Delivery, directory: Path) -> Path:
    """Write a delivered payload to a file of its own in ``directory`` (replacing one of the
    same bundle left by an earlier, unacknowledged delivery); its path."""
    p = delivery.bundle.primary
    source = "".join(c if c.isalnum() or c in "-." else "_" for c in str(p.source))
    target = directory / f"{source}-{p.creation_time}-{p.sequence}.bin"
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    if delivery.payload_file is not None:
        delivery.payload_file.copy_to(partial)
    else:
        partial.write_bytes(delivery.bundle.payload)
    partial.replace(target)
    return target


async def _stream_payload(conn: _Connection, payload: PayloadFile) -> None:
    """Write a payload kept in the store's file as it is read, a chunk at a time.

    Raises ConnectionError when the client is gone, StoreError when the file falls short
    (the connection is then out of step: the caller closes it)."""
    with payload.path.open("rb") as f:
        f.seek(payload.offset)
        left = payload.length
        while left:
            chunk = f.read(min(STREAM_CHUNK, left))
            if not chunk:
                raise StoreError(f"{payload.path.name}: the stored bundle ends {left} bytes early")
            await conn.raw_write([chunk])
            left -= len(chunk)


async def _hand_over_many(
    conn: _Connection,
    rid: RequestId,
    endpoint: EID,
    deliveries: list[Delivery],
    lock: asyncio.Lock,
    binary: bool,
    save_dir: Path | None = None,
    batch: bool = False,
) -> int:
    """Write bundles to the client in one go, then acknowledge them to the node together
    (without waiting for that to be durable).

    Returns how many were handed over (0 if the client is gone: none is acknowledged then).
    A bundle too large to carry ends the batch; it is reported (``too_large``) when it
    comes first. A payload the store keeps in a file goes alone, streamed from the file.
    """
    app = conn.app
    acked: list[int] = []
    durable: asyncio.Future[None] | None = None
    try:
        prefix = '{"id":' + json.dumps(rid) + ',"event":"bundle","endpoint":' + _json_eid(endpoint)
        pieces: list[bytes] = []
        stream: PayloadFile | None = None
        size = 0
        written = _batch_event(rid, endpoint, deliveries, pieces) if batch and save_dir is None else 0
        for delivery in deliveries if not written else ():
            if written and (size >= RECV_BATCH_BYTES or (binary and delivery.payload_file is not None)):
                break
            saved = None
            if save_dir is not None:
                try:
                    saved = await asyncio.to_thread(_save, delivery, save_dir)
                except OSError as exc:
                    if not written:
                        problem = f"recv: cannot write to {save_dir}: {exc.strerror}"
                        raise _BadRequest(problem, "error") from exc
                    break
            try:
                pieces.append(_bundle_event(app, prefix, delivery, binary, saved))
            except _BadRequest:
                if not written:
                    raise
                break
            written += 1
            size += delivery.payload_length
            if binary and saved is None:
                if delivery.payload_file is not None:
                    stream = delivery.payload_file
                    break
                pieces.append(delivery.bundle.payload)
        drain = False
        try:
            if stream is None:
                async with conn._exclusive:
                    conn.write_now(pieces)
                drain = True
            else:
                async with conn.exclusive():
                    await conn.raw_write(pieces)
                    try:
                        await _stream_payload(conn, stream)
                    except ConnectionError:
                        raise
                    except Exception as exc:
                        log.warning("%s: cannot hand a bundle over: %s; closing the client", endpoint, exc)
                        conn.writer.close()  # halfway through an attachment: the stream is out of step
                        return 0
        except ConnectionError:
            return 0  # not acknowledged: the store keeps them for the next recv
        # Written to the client's transport: from now on the bundles are the client's.
        acked = [d.store_id for d in deliveries[:written]]
        try:
            durable = app.node.ack_many(endpoint, acked)
        except ProximaError as exc:
            log.warning("%s: cannot forget delivered bundles: %s", endpoint, exc)
        if drain:
            # After the acknowledgement: bundles the node forgets before its next commit need
            # not be written to its store at all.
            with contextlib.suppress(ConnectionError):
                await conn.writer.drain()
    finally:
        lock.release()
    if durable is not None:
        # Not awaited: the next batch need not wait for this commit. Should the node stop
        # before it, the bundles are delivered again (at least once).
        durable.add_done_callback(_retrieve)
    return len(acked)


PUSH_BUFFER: Final = 4 * 1024 * 1024
"""Bytes waiting in a client's transport beyond which bundles are no longer written to it as
they come: the ``recv`` then waits for the client to read, as it does for a batch."""


async def _consume(
    conn: _Connection, rid: RequestId, endpoint: EID, limit: int, timeout: float | None
) -> tuple[int, bool]:
    """Wait for bundles for ``endpoint`` by writing them to the client just before each of
    the node's group commits, and acknowledging them then (see :meth:`Node.set_consumer`):
    bundles read as fast as they come then never reach the store's tables or files.

    Called with the endpoint's lock held and nothing ready. Returns how many were written (at
    most ``limit``, 0: no limit) and whether to go on: False on timeout, True when the limit
    is reached or when what waits is for the ordinary path (a payload kept in a file, or a
    client slow to read). Raises ConnectionError when the client is gone.
    """
    node = conn.app.node
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    pushed = 0
    transport = conn.writer.transport

    def consume() -> None:
        nonlocal pushed
        if done.done():
            return
        try:
            while limit == 0 or pushed < limit:
                if conn._held or conn._exclusive.locked() or transport.get_write_buffer_size() > PUSH_BUFFER:
                    break  # the ordinary path waits for room, or for the streamed attachment
                n = RECV_BATCH if limit == 0 else min(RECV_BATCH, limit - pushed)
                deliveries = node.take_ready(endpoint, n)
                if not deliveries:
                    return
                pieces: list[bytes] = []
                written = _batch_event(rid, endpoint, deliveries, pieces)
                if not written:
                    break  # a payload in a file: streamed by the ordinary path
                conn.write_now(pieces)
                # Written to the client's transport: from now on the bundles are the client's.
                node.ack_before_commit(endpoint, [d.store_id for d in deliveries[:written]])
                pushed += written
        except ConnectionError as exc:
            done.set_exception(exc)
            return
        done.set_result(None)

    node.set_consumer(endpoint, consume)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return pushed, False
    finally:
        node.remove_consumer(endpoint, consume)
    return pushed, True


def _batch_event(rid: RequestId, endpoint: EID, deliveries: list[Delivery], pieces: list[bytes]) -> int:
    """Append to ``pieces`` one ``bundles`` event and its attachment for the first deliveries
    held in memory (up to :data:`RECV_BATCH_BYTES` of payload, one at least); how many it
    holds (0 when the first one's payload is in a file: it goes alone, as a ``bundle`` event)."""
    items: list[list[object]] = []
    payloads: list[bytes] = []
    size = 0
    for delivery in deliveries:
        if delivery.payload_file is not None or (items and size + delivery.payload_length > RECV_BATCH_BYTES):
            break
        p = delivery.bundle.primary
        payload = delivery.bundle.payload
        fields = [str(p.source), str(p.destination), p.creation_time, p.sequence, p.lifetime, int(p.flags)]
        items.append([*fields, len(payload)])
        payloads.append(payload)
        size += len(payload)
    if not items:
        return 0
    head = {"id": rid, "event": "bundles", "endpoint": str(endpoint), "bundles": items, "bin": size}
    pieces.append(json.dumps(head, separators=(",", ":")).encode() + b"\n")
    pieces.extend(payloads)
    return len(items)


async def _op_status(conn: _Connection, req: Message, emit: Emit) -> Message:
    app = conn.app
    status = app.node.status()
    host, port = app.address
    status["app"] = {
        "host": host,
        "port": port,
        "clients": app.connections,
        "echo_endpoint": str(app.echo_endpoint),
        "ping_endpoint": str(app.ping_endpoint),
    }
    return {"status": status}


async def _op_ping(conn: _Connection, req: Message, emit: Emit) -> Message:
    to = _eid(req, "to")
    if to.is_none:
        raise _BadRequest("ping: 'to' must name a node, not dtn:none")
    count = _int(req, "count", 1, MAX_PING_COUNT, 4)
    size = _int(req, "size", PING_HEADER.size, MAX_PING_SIZE, 64)
    timeout = _seconds(req, "timeout_s", 10.0) or 0.0
    interval = _seconds(req, "interval_s", 1.0) or 0.0
    return await conn.app.ping(to, emit, count=count, size=size, timeout=timeout, interval=interval)


async def _op_cancel(conn: _Connection, req: Message, emit: Emit) -> Message:
    target = _get(req, "target", (str, int))
    return {"cancelled": conn.cancel(target)}
