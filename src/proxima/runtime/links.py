"""What convergence-layer drivers and the node offer each other at run time.

A driver (TCPCLv4, MTCP, STCP, UDP) owns sockets and turns a peer session into a :class:`Link`;
the node is a :class:`BundleSink` that drivers hand received bundles to. Received bytes go
into an :class:`IncomingBundle` piece by piece (a 1 GB bundle never has to be held whole), and
the driver acknowledges the bundle to the peer only after :meth:`IncomingBundle.commit`
returned, which is when the node has made it durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from proxima.bpv7.eid import EID

__all__ = ["BundleSink", "IncomingBundle", "Link"]


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

    async def send(self, data: bytes) -> None:
        """Send one bundle and return once the peer has it (TCPCL: its final XFER_ACK; the
        others: written to the socket). Raises :class:`~proxima.errors.ProximaError` or
        ``OSError`` on failure; the bundle is then still the node's to retry."""
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
