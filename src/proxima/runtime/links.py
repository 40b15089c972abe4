"""What convergence-layer drivers and the node offer each other at run time.

A driver (TCPCLv4, MTCP, STCP, UDP) owns sockets and turns a peer session into a :class:`Link`;
the node is a :class:`BundleSink` that drivers hand received bundles to. Received bytes go
into an :class:`IncomingBundle` piece by piece (a 1 GB bundle never has to be held whole), and
the driver acknowledges the bundle to the peer only after :meth:`IncomingBundle.commit`
returned, which is when the node has made it durable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, overload

if TYPE_CHECKING:
    from pathlib import Path

    from proxima.bpv7.eid import EID

__all__ = ["BundleSink", "IncomingBundle", "Link", "SplicedBundle", "read_all"]


class SplicedBundle:
    """An outgoing bundle too large to hold: ``head`` in memory, then a region of a stored file.

    Sliced like the bytes it stands for (``len(b)``, ``b[i:j]`` reads just that piece with
    ``pread``), so a convergence layer sends it piece by piece exactly as it sends bytes. The
    file is opened at once: it stays readable even if the store removes it meanwhile.
    """

    __slots__ = ("_fd", "_length", "_offset", "head")

    def __init__(self, head: bytes, path: Path, offset: int, length: int) -> None:
        self.head = head
        self._offset = offset
        self._length = length
        self._fd: int | None = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.head) + self._length

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...
    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, int):
            return self[index : index + 1][0]
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("a spliced bundle is read in contiguous pieces")
        pieces: list[bytes] = []
        h = len(self.head)
        if start < h:
            pieces.append(self.head[start : min(stop, h)])
            start = min(stop, h)
        if start < stop:
            if self._fd is None:
                raise ValueError("the spliced bundle is closed")
            offset = self._offset + start - h
            want = stop - start
            while want:
                piece = os.pread(self._fd, want, offset)
                if not piece:
                    raise OSError(f"the stored bundle file ends {want} bytes early")
                pieces.append(piece)
                offset += len(piece)
                want -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def region(self, start: int) -> tuple[int, int]:
        """The open file and its offset holding byte ``start`` of the bundle, at or after the
        head (for ``sendfile``); the file holds ``len(self) - start`` bytes from there."""
        h = len(self.head)
        if not h <= start <= len(self):
            raise ValueError(f"byte {start} is not in the stored part ({h} to {len(self)})")
        if self._fd is None:
            raise ValueError("the spliced bundle is closed")
        return self._fd, self._offset + start - h

    def close(self) -> None:
        """Release the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_all(data: bytes | SplicedBundle) -> bytes:
    """The whole bundle as bytes (for a convergence layer that cannot stream, e.g. UDP)."""
    return data if isinstance(data, bytes) else data[0 : len(data)]


class IncomingBundle(Protocol):
    """A bundle being received from a peer."""

    def write(self, data: bytes | memoryview) -> None:
        """Append received bytes. Raises :class:`~proxima.errors.StoreError` when the bundle
        cannot be kept (store full: the driver refuses the transfer)."""
        ...

    async def commit(self) -> None:
        """The last byte arrived: check the bundle and make it durable.

        Raises :class:`~proxima.errors.BundleError` (invalid bundle: refuse it) or
        :class:`~proxima.errors.StoreError` (no room). Once it returns, acknowledge it.
        """
        ...

    def abort(self) -> None:
        """The transfer failed or was cancelled: forget what was written."""
        ...


class Link(Protocol):
    """An up session with one peer over one convergence layer."""

    @property
    def peer(self) -> EID | None:
        """The peer's node ID when the convergence layer tells it (TCPCL does), else None."""
        ...

    @property
    def cla(self) -> str:
        """The convergence layer's name: ``tcpcl``, ``mtcp``, ``stcp`` or ``udp``."""
        ...

    async def send(self, data: bytes | SplicedBundle) -> None:
        """Send one bundle and return once the peer has it (TCPCL: its final XFER_ACK; the
        others: written to the socket). Raises :class:`~proxima.errors.ProximaError` or
        ``OSError`` on failure; the bundle is then still the node's to retry. A
        :class:`SplicedBundle` is read piece by piece, never whole (UDP excepted)."""
        ...

    async def close(self) -> None:
        """End the session cleanly (TCPCL: SESS_TERM)."""
        ...


class BundleSink(Protocol):
    """What the node offers to convergence-layer drivers."""

    def open_incoming(self, link: Link | None, length: int | None) -> IncomingBundle:
        """Start receiving a bundle of ``length`` bytes (None when unknown) from ``link``."""
        ...

    def link_up(self, link: Link) -> None:
        """A session is up: the node may start sending over it."""
        ...

    def link_down(self, link: Link) -> None:
        """The session ended; bundles in flight on it are retried elsewhere or later."""
        ...
