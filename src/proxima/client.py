"""A client for a node's local application interface (see :mod:`proxima.runtime.appif`).

:class:`NodeClient` is the asyncio client; one connection carries any number of requests at
once (each answer names its request). Payloads travel as binary attachments both ways (no
base64), up to :data:`MAX_ATTACHMENT` bytes each; requests made in one event-loop turn go out
in one write. The ``*_sync`` functions wrap one request each in :func:`asyncio.run` for scripts
and the command line::

    async with await NodeClient.connect("127.0.0.1", 4242) as node:
        await node.send("ipn:3.7", b"Bonjour")
        await node.send_many([("ipn:3.7", b"one"), ("ipn:3.8", b"two")], lifetime=600)
        for bundle in await node.recv("ipn:2.7", count=1, timeout=10):
            print(bundle.payload)

Errors: :class:`NodeConnectionError` when the node cannot be reached or the connection drops,
:class:`NodeRequestError` (with the node's ``code``) when the node refuses a request.

Delivery is at least once: the node forgets a bundle once it was written to this client's
socket. Bundles already read from the socket when an iteration of :meth:`NodeClient.recv_iter`
stops early are kept by the client and handed out first by the next ``recv`` on that endpoint.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import itertools
import json
import math
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from proxima.bpv7.eid import EID
from proxima.errors import LocalError, RemoteError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_ATTACHMENT",
    "MAX_BATCH",
    "NodeClient",
    "NodeConnectionError",
    "NodeRequestError",
    "PingReply",
    "PingResult",
    "Received",
    "Sent",
    "format_address",
    "parse_address",
    "ping_sync",
    "recv_sync",
    "run",
    "send_sync",
    "status_sync",
]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4242
MAX_LINE: Final = 64 * 1024 * 1024 + 4096
"""The longest JSON line exchanged (the node accepts request lines up to 64 MiB)."""
MAX_ATTACHMENT: Final = 1024 * 1024 * 1024
"""The largest payload sent or received (a binary attachment; the node's limit too)."""
MAX_BATCH: Final = 4096
"""The most bundles the node takes in one ``send_many`` request (longer lists are split)."""
BATCH_BYTES: Final = 64 * 1024 * 1024
"""Payload bytes after which :meth:`NodeClient.send_many` starts another request."""
FLUSH_BYTES: Final = 256 * 1024
"""Queued request bytes written at once rather than at the end of the event-loop turn."""
_SEND_OPTIONS: Final = {"lifetime", "report_to", "flags", "klass", "source"}

T = TypeVar("T")
Message = dict[str, Any]
Payload = bytes | bytearray | memoryview | str
"""A payload: bytes, or text sent as UTF-8."""


class NodeRequestError(RemoteError):
    """The node refused a request; ``code`` is its error code (``refused``, ``store``...)."""

    def __init__(self, message: str, *, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


class NodeConnectionError(RemoteError):
    """The node cannot be reached, or the connection to it was lost."""


# -- addresses -----------------------------------------------------------------------------------


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; a bare ``PORT`` means 127.0.0.1) as (host, port)."""
    text = text.strip()
    if text.isdigit():
        host, port_text = DEFAULT_HOST, text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise LocalError(f"{text!r} is not HOST:PORT")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise LocalError(f"{text!r} is not HOST:PORT")
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise LocalError(f"{text!r}: the port must be a number 1..65535")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """The text form of an address, IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A bundle the node has made durable: its source and creation timestamp."""

    source: str
    creation_time: int
    sequence: int


@dataclass(frozen=True)
class Received:
    """A bundle delivered to an endpoint."""

    endpoint: str
    source: str
    destination: str
    creation_time: int
    sequence: int
    lifetime_ms: int
    flags: int
    payload: bytes
    file: str | None = None
    """Where the node wrote the payload (``recv`` with ``save_dir``); ``payload`` is then empty."""

    @classmethod
    def from_message(cls, msg: Message) -> Received:
        """Build from a ``bundle`` event; raises :class:`NodeRequestError` if it is malformed."""
        try:
            return cls(
                endpoint=str(msg["endpoint"]),
                source=str(msg["source"]),
                destination=str(msg.get("destination", msg["endpoint"])),
                creation_time=int(msg["creation_time"]),
                sequence=int(msg["sequence"]),
                lifetime_ms=int(msg.get("lifetime_ms", 0)),
                flags=int(msg.get("flags", 0)),
                payload=b""
                if "file" in msg
                else _attached(msg)
                if "bin" in msg
                else _unb64(msg["payload"]),
                file=str(msg["file"]) if "file" in msg else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeRequestError(f"the node sent a malformed bundle event: {exc}", code="protocol") from exc

    @classmethod
    def many_from_message(cls, msg: Message) -> list[Received]:
        """Build from a ``bundles`` event (several bundles, their payloads in one attachment);
        raises :class:`NodeRequestError` if it is malformed."""
        try:
            endpoint = str(msg["endpoint"])
            data = _attached(msg)
            out: list[Received] = []
            at = 0
            for source, destination, created, seq, lifetime, flags, length in msg["bundles"]:
                if type(length) is not int or length < 0:
                    raise ValueError(f"a payload length must be a non-negative integer, not {length!r}")
                end = at + length
                if end > len(data):
                    raise ValueError("the payloads are shorter than their lengths say")
                out.append(
                    cls(
                        endpoint,
                        str(source),
                        str(destination),
                        int(created),
                        int(seq),
                        int(lifetime),
                        int(flags),
                        data[at:end],
                    )
                )
                at = end
            if at != len(data):
                raise ValueError("the payloads are longer than their lengths say")
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"the node sent a malformed bundles event: {exc}"
            raise NodeRequestError(problem, code="protocol") from exc
        return out


@dataclass(frozen=True)
class PingReply:
    """One ping: its round-trip time in ms, or None when no reply came in time."""

    seq: int
    rtt_ms: float | None
    size: int = 0
    source: str = ""


@dataclass(frozen=True)
class PingResult:
    """A finished ping: the echo endpoint asked and every round-trip time (None: lost)."""

    to: str
    size: int
    rtts_ms: list[float | None] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.rtts_ms)

    @property
    def received(self) -> int:
        return sum(1 for r in self.rtts_ms if r is not None)

    @property
    def loss(self) -> float:
        """Lost bundles as a percentage of those sent."""
        return 0.0 if not self.sent else 100.0 * (self.sent - self.received) / self.sent

    def stats(self) -> dict[str, float | None]:
        """min/avg/max/p50/p99 of the round-trip times in ms (None when nothing came back)."""
        rtts = sorted(r for r in self.rtts_ms if r is not None)
        if not rtts:
            return {"min_ms": None, "avg_ms": None, "max_ms": None, "p50_ms": None, "p99_ms": None}
        return {
            "min_ms": rtts[0],
            "avg_ms": round(sum(rtts) / len(rtts), 3),
            "max_ms": rtts[-1],
            "p50_ms": _percentile(rtts, 50),
            "p99_ms": _percentile(rtts, 99),
        }


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the client ----------------------------------------------------------------------------------


class _Request:
    """One request in flight: its answers queue up until the final one."""

    def __init__(self, rid: int) -> None:
        self.rid = rid
        self.queue: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self.done = False
        self.orphan: Callable[[Message | BaseException], None] | None = None

    def deliver(self, item: Message | BaseException) -> bool:
        """Hand over an answer; True once the request is over."""
        final = not isinstance(item, dict) or "ok" in item or "error" in item
        if self.orphan is not None:
            self.orphan(item)
        else:
            self.queue.put_nowait(item)
        return final

    async def next(self) -> Message:
        """The next answer: an event, or the final ``ok`` one; raises the node's error."""
        item = await self.queue.get()
        if isinstance(item, BaseException):
            self.done = True
            raise item
        if "error" in item:
            self.done = True
            raise NodeRequestError(str(item["error"]), code=str(item.get("code", "error")))
        if "ok" in item:
            self.done = True
        return item


class NodeClient:
    """A connection to a node's application interface."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, _Request] = {}
        self._leftover: dict[str, deque[Received]] = {}
        self._draining: dict[str, asyncio.Event] = {}
        self._failure: BaseException | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_handle: asyncio.Handle | None = None
        self._read_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(
        cls, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, timeout: float = 10.0
    ) -> NodeClient:
        """Connect to the node at ``host:port``; raises :class:`NodeConnectionError`."""
        address = format_address(host, port)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_LINE), timeout
            )
        except TimeoutError as exc:
            raise NodeConnectionError(f"cannot reach the node at {address}: timed out") from exc
        except OSError as exc:
            raise NodeConnectionError(f"cannot reach the node at {address}: {_os_reason(exc)}") from exc
        return cls(reader, writer, address)

    async def close(self) -> None:
        """Close the connection (requests still running end with NodeConnectionError)."""
        self._flush()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing

    async def _read_loop(self) -> None:
        failure: BaseException | None = None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError("an answer is not a JSON object")
                size = msg.get("bin")
                if size is not None:
                    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_ATTACHMENT:
                        raise ValueError(f"'bin' must be an integer in 0..{MAX_ATTACHMENT}, not {size!r}")
                    msg["bin"] = await self._reader.readexactly(size) if size else b""
                rid = msg.get("id")
                request = self._pending.get(rid) if isinstance(rid, int) else None
                if request is None:
                    if "error" in msg:  # about no request of ours, e.g. too_long before closing
                        failure = NodeRequestError(str(msg["error"]), code=str(msg.get("code", "error")))
                    continue
                if request.deliver(msg):
                    self._pending.pop(request.rid, None)
        except OSError as exc:
            failure = failure or NodeConnectionError(
                f"lost the connection to the node at {self.address}: {_os_reason(exc)}"
            )
        except asyncio.IncompleteReadError:
            failure = NodeConnectionError(
                f"the node at {self.address} closed the connection inside an attachment"
            )
        except ValueError as exc:
            failure = NodeRequestError(
                f"the node at {self.address} sent a malformed answer: {exc}", code="protocol"
            )
        finally:
            self._failure = failure or NodeConnectionError(
                f"the node at {self.address} closed the connection"
            )
            for request in self._pending.values():
                request.deliver(self._failure)
            self._pending.clear()

    def _post(self, pieces: Sequence[bytes]) -> None:
        """Queue bytes for the node: written at the end of this event-loop turn, together with
        whatever else is queued by then (at once past FLUSH_BYTES)."""
        self._out.extend(pieces)
        self._out_size += sum(len(p) for p in pieces)
        if self._out_size >= FLUSH_BYTES:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._out:
            return
        out, self._out, self._out_size = self._out, [], 0
        if self._writer.is_closing():
            return
        if len(out) == 1:
            self._writer.write(out[0])
        else:
            self._writer.writelines(out)

    async def _start(self, op: str, attachments: Sequence[bytes] = (), **fields: Any) -> _Request:
        """Send a request (``fields`` that are None left out) followed by ``attachments``."""
        if self._failure is not None or self._writer.is_closing():
            raise self._failure or NodeConnectionError(f"the connection to {self.address} is closed")
        request = _Request(next(self._ids))
        line = _encode({"id": request.rid, "op": op, **{k: v for k, v in fields.items() if v is not None}})
        self._pending[request.rid] = request
        self._post([line, *attachments])
        if self._writer.transport.get_write_buffer_size():
            try:
                await self._writer.drain()  # waits only while the node does not keep up
            except OSError as exc:
                self._pending.pop(request.rid, None)
                raise NodeConnectionError(
                    f"lost the connection to the node at {self.address}: {_os_reason(exc)}"
                ) from exc
        return request

    def _abandon(self, request: _Request, orphan: Callable[[Message | BaseException], None]) -> None:
        """Stop waiting for ``request``: ask the node to cancel it, pass what still comes to ``orphan``."""
        request.orphan = orphan
        while not request.queue.empty():
            orphan(request.queue.get_nowait())
        if request.rid not in self._pending or self._writer.is_closing():
            return
        cancel = _Request(next(self._ids))
        cancel.orphan = _ignore
        self._pending[cancel.rid] = cancel
        with contextlib.suppress(Exception):
            self._post([_encode({"id": cancel.rid, "op": "cancel", "target": request.rid})])

    async def call(self, op: str, *, attachment: bytes | None = None, **fields: Any) -> Message:
        """Send one request and return its final answer (events, if any, are skipped).

        ``attachment``: raw bytes sent after the request line (its ``bin`` field is set).
        """
        if attachment is None:
            return await self._call(op, (), fields)
        return await self._call(op, (attachment,), {**fields, "bin": len(attachment)})

    async def _call(self, op: str, attachments: Sequence[bytes], fields: Message) -> Message:
        """:meth:`call` with any attachments (whose sizes ``fields`` already give)."""
        request = await self._start(op, attachments, **fields)
        try:
            while True:
                msg = await request.next()
                if request.done:
                    return msg
        finally:
            if not request.done:
                self._abandon(request, _ignore)

    # -- operations

    async def register(self, endpoint: str | EID) -> None:
        """Have the node deliver bundles for ``endpoint`` (kept until received)."""
        await self.call("register", endpoint=str(endpoint))

    async def send(
        self,
        to: str | EID,
        payload: Payload,
        *,
        lifetime: float | None = None,
        report_to: str | EID | None = None,
        flags: int | None = None,
        klass: int | str | None = None,
        source: str | EID | None = None,
    ) -> Sent:
        """Send a bundle; returns once the node has stored it durably.

        ``lifetime`` in seconds (the node's default: a day); ``klass`` ``"bulk"`` or
        ``"expedited"``; ``source`` an endpoint of the node (default: the node's ID).
        The payload travels as a binary attachment (up to :data:`MAX_ATTACHMENT` bytes).
        """
        data = _payload_bytes(payload, "send")
        fields = _send_fields(to, lifetime, report_to, flags, klass, source)
        msg = await self.call("send", attachment=data, **fields)
        return _sent(msg)

    async def send_file(
        self,
        to: str | EID,
        path: str | Path,
        *,
        lifetime: float | None = None,
        report_to: str | EID | None = None,
        flags: int | None = None,
        klass: int | str | None = None,
        source: str | EID | None = None,
    ) -> Sent:
        """Send the file at ``path`` as one bundle's payload; returns once it is durable.

        The node reads the file itself (it runs on this machine): a file of any size goes into
        its store piece by piece without passing through this connection or memory.
        """
        fields = _send_fields(to, lifetime, report_to, flags, klass, source)
        msg = await self.call("send", file=str(Path(path).resolve()), **fields)
        return _sent(msg)

    async def send_many(
        self,
        items: Sequence[tuple[str | EID, Payload]] | Sequence[Mapping[str, Any]],
        *,
        lifetime: float | None = None,
        report_to: str | EID | None = None,
        flags: int | None = None,
        klass: int | str | None = None,
        source: str | EID | None = None,
    ) -> list[Sent]:
        """Send several bundles in few requests; returns their identities, in order, once all
        are durable.

        Each item is ``(to, payload)`` or a mapping with ``to`` and ``payload`` and any of the
        options of :meth:`send` (``lifetime``, ``report_to``, ``flags``, ``klass``,
        ``source``), which override the options given here for all. Items go out in requests
        of at most :data:`MAX_BATCH` bundles and about :data:`BATCH_BYTES` payload bytes; the
        node checks each request whole and sends none of it when an item is bad (the error
        names it). When one request fails, those before it may have been sent.
        """
        common: dict[str, Any] = {
            "lifetime": lifetime,
            "report_to": report_to,
            "flags": flags,
            "klass": klass,
            "source": source,
        }
        chunks: list[tuple[list[Message], list[bytes]]] = []
        entries: list[Message] = []
        datas: list[bytes] = []
        size = 0
        for n, item in enumerate(items):
            if isinstance(item, Mapping):
                unknown = set(item) - _SEND_OPTIONS - {"to", "payload"}
                if unknown or "to" not in item or "payload" not in item:
                    raise LocalError(
                        f"send_many: item {n} must have 'to' and 'payload' and only the options "
                        f"{', '.join(sorted(_SEND_OPTIONS))}"
                    )
                to, payload = item["to"], item["payload"]
                options = {**common, **{k: v for k, v in item.items() if k in _SEND_OPTIONS}}
            elif isinstance(item, tuple) and len(item) == 2:
                to, payload = item
                options = common
            else:
                raise LocalError(f"send_many: item {n} must be a (to, payload) pair or a mapping")
            data = _payload_bytes(payload, f"send_many: item {n}")
            fields = _send_fields(to, **options)
            if entries and (len(entries) >= MAX_BATCH or size + len(data) > BATCH_BYTES):
                chunks.append((entries, datas))
                entries, datas, size = [], [], 0
            entries.append({**fields, "bin": len(data)})
            datas.append(data)
            size += len(data)
        if entries:
            chunks.append((entries, datas))
        answers = await asyncio.gather(
            *(self._send_batch(entries, datas) for entries, datas in chunks), return_exceptions=True
        )
        sent: list[Sent] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            sent += answer
        return sent

    async def _send_batch(self, bundles: list[Message], attachments: Sequence[bytes]) -> list[Sent]:
        """One ``send_many`` request: ``bundles`` (protocol fields, each with its ``bin``) and
        their payloads in order."""
        msg = await self._call("send_many", attachments, {"bundles": bundles})
        try:
            return [_sent(s) for s in msg["sent"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeRequestError(
                f"the node sent a malformed send_many answer: {exc}", code="protocol"
            ) from exc

    async def recv_iter(
        self,
        endpoint: str | EID,
        count: int = 1,
        timeout: float | None = None,
        *,
        save_dir: str | Path | None = None,
    ) -> AsyncGenerator[Received, None]:
        """Bundles for ``endpoint`` as they come: up to ``count`` (0: no limit) within ``timeout`` s.

        Stopping early (``break``; close it with :func:`contextlib.aclosing`) cancels the
        request; bundles already on their way are kept for the next ``recv`` on the endpoint.
        Payloads arrive as binary attachments (the request asks for ``binary``), or, with
        ``save_dir`` (a directory the node can write: it runs on this machine), are written
        there by the node and named in :attr:`Received.file`: a payload of any size then
        never passes through memory.
        """
        key = str(EID.parse(str(endpoint)))
        draining = self._draining.get(key)
        if draining is not None:  # an abandoned recv on this endpoint still hands bundles over
            await draining.wait()
        left = self._leftover.setdefault(key, deque())
        taken = 0
        while left and (count == 0 or taken < count):
            taken += 1
            yield left.popleft()
        if count and taken >= count:
            return
        request = await self._start(
            "recv",
            endpoint=key,
            count=count - taken if count else 0,
            timeout_s=timeout,
            binary=True,
            batch=True,
            save_dir=None if save_dir is None else str(Path(save_dir).resolve()),
        )

        drained = asyncio.Event()

        def keep(item: Message | BaseException) -> None:
            if isinstance(item, dict) and item.get("event") == "bundle":
                with contextlib.suppress(NodeRequestError):
                    left.append(Received.from_message(item))
            elif isinstance(item, dict) and item.get("event") == "bundles":
                with contextlib.suppress(NodeRequestError):
                    left.extend(Received.many_from_message(item))
            elif not isinstance(item, dict) or "ok" in item or "error" in item:
                drained.set()
                if self._draining.get(key) is drained:
                    del self._draining[key]

        try:
            while True:
                msg = await request.next()
                if request.done:
                    return
                event = msg.get("event")
                if event == "bundles":
                    many = deque(Received.many_from_message(msg))
                    try:
                        while many:
                            yield many.popleft()
                    finally:
                        left.extend(many)  # stopped early: kept for the next recv
                elif event == "bundle":
                    yield Received.from_message(msg)
        finally:
            if not request.done:
                self._draining[key] = drained
                self._abandon(request, keep)

    async def recv(
        self,
        endpoint: str | EID,
        count: int = 1,
        timeout: float | None = None,
        *,
        save_dir: str | Path | None = None,
    ) -> list[Received]:
        """Up to ``count`` bundles for ``endpoint`` (0: all until ``timeout``) within ``timeout`` s."""
        return [b async for b in self.recv_iter(endpoint, count, timeout, save_dir=save_dir)]

    async def status(self) -> dict[str, Any]:
        """The node's status: counters, stored bundles, links, this interface."""
        msg = await self.call("status")
        status: dict[str, Any] = msg["status"]
        return status

    async def ping(
        self,
        to: str | EID,
        *,
        count: int = 4,
        size: int = 64,
        timeout: float = 10.0,
        interval: float = 1.0,
        on_reply: Callable[[PingReply], None] | None = None,
    ) -> PingResult:
        """Ping the echo endpoint of ``to``'s node; ``on_reply`` sees each reply or timeout."""
        request = await self._start(
            "ping", to=str(to), count=count, size=size, timeout_s=timeout, interval_s=interval
        )
        try:
            while True:
                msg = await request.next()
                if request.done:
                    rtts = [None if r is None else float(r) for r in msg.get("rtts_ms", [])]
                    return PingResult(str(msg.get("to", to)), size, rtts)
                if on_reply is not None and msg.get("event") in {"reply", "timeout"}:
                    rtt = msg.get("rtt_ms")
                    on_reply(
                        PingReply(
                            int(msg.get("seq", 0)),
                            None if rtt is None else float(rtt),
                            int(msg.get("bytes", size)),
                            str(msg.get("from", "")),
                        )
                    )
        finally:
            if not request.done:
                self._abandon(request, _ignore)


def _ignore(item: Message | BaseException) -> None:
    """Drop an answer nobody waits for any more."""


def _encode(msg: Message) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode("ascii")


def _payload_bytes(payload: Payload, what: str) -> bytes:
    """A payload as bytes (text as UTF-8); raises LocalError when it is too large to send."""
    if isinstance(payload, str):
        data = payload.encode("utf-8")
    elif isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, bytearray | memoryview):
        data = bytes(payload)
    else:
        raise LocalError(f"{what}: a payload must be bytes or text, not {type(payload).__name__}")
    if len(data) > MAX_ATTACHMENT:
        raise LocalError(f"{what}: a {len(data)}-byte payload is too large for the application interface")
    return data


def _send_fields(
    to: str | EID,
    lifetime: float | None = None,
    report_to: str | EID | None = None,
    flags: int | None = None,
    klass: int | str | None = None,
    source: str | EID | None = None,
) -> Message:
    """The protocol fields of a send (options left as None are not sent)."""
    fields: Message = {"to": str(to)}
    if lifetime is not None:
        fields["lifetime_s"] = lifetime
    if report_to is not None:
        fields["report_to"] = str(report_to)
    if flags is not None:
        fields["flags"] = flags
    if klass is not None:
        fields["class"] = klass
    if source is not None:
        fields["source"] = str(source)
    return fields


def _sent(msg: Message) -> Sent:
    return Sent(str(msg["source"]), int(msg["creation_time"]), int(msg["sequence"]))


def _attached(msg: Message) -> bytes:
    """The attachment the read loop put in place of a message's ``bin`` count."""
    data = msg["bin"]
    if not isinstance(data, bytes):
        raise TypeError("the attachment is missing")
    return data


def _unb64(text: object) -> bytes:
    """Strict base64 (alphabet only, padding at the end), as b64decode(validate=True)."""
    if not isinstance(text, str):
        raise TypeError("the payload is not base64 text")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:
        raise binascii.Error(str(exc)) from exc


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


# -- synchronous wrappers ------------------------------------------------------------------------


def run(host: str, port: int, action: Callable[[NodeClient], Awaitable[T]], *, timeout: float = 10.0) -> T:
    """Connect, run ``action(client)`` in a fresh event loop, close; returns its result."""

    async def main() -> T:
        async with await NodeClient.connect(host, port, timeout=timeout) as client:
            return await action(client)

    return asyncio.run(main())


def send_sync(host: str, port: int, to: str | EID, payload: bytes | str, **options: Any) -> Sent:
    """:meth:`NodeClient.send` on a connection of its own."""
    return run(host, port, lambda c: c.send(to, payload, **options))


def send_file_sync(host: str, port: int, to: str | EID, path: str | Path, **options: Any) -> Sent:
    """:meth:`NodeClient.send_file` on a connection of its own."""
    return run(host, port, lambda c: c.send_file(to, path, **options))


def recv_sync(
    host: str,
    port: int,
    endpoint: str | EID,
    count: int = 1,
    timeout: float | None = None,
    *,
    on_bundle: Callable[[Received], None] | None = None,
    save_dir: str | Path | None = None,
) -> list[Received]:
    """:meth:`NodeClient.recv`; ``on_bundle`` sees each bundle as it arrives."""

    async def action(client: NodeClient) -> list[Received]:
        got: list[Received] = []
        async for bundle in client.recv_iter(endpoint, count, timeout, save_dir=save_dir):
            got.append(bundle)
            if on_bundle is not None:
                on_bundle(bundle)
        return got

    return run(host, port, action)


def status_sync(host: str, port: int) -> dict[str, Any]:
    """:meth:`NodeClient.status` on a connection of its own."""
    return run(host, port, lambda c: c.status())


def ping_sync(host: str, port: int, to: str | EID, **options: Any) -> PingResult:
    """:meth:`NodeClient.ping` on a connection of its own."""
    return run(host, port, lambda c: c.ping(to, **options))
