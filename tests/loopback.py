"""Serving an ASGI app on loopback inside the running event loop, and a client that talks to it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["bind", "client", "serve", "serve_in_thread"]


def bind() -> tuple[socket.socket, str]:
    """A socket bound to an ephemeral port on 127.0.0.1, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def client() -> httpx.AsyncClient:
    """An HTTP client that ignores proxy settings from the environment."""
    return httpx.AsyncClient(timeout=30, trust_env=False)


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn on ``sock`` inside the running loop."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.contextmanager
def serve_in_thread(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` with uvicorn on ``sock`` in a thread of its own (for synchronous tests and
    module-scoped fixtures); the socket is closed afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
