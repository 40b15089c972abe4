"""A real SMTP server on loopback (aiosmtpd in its own thread) that keeps every message it receives.

Bound to an ephemeral port on 127.0.0.1 before it starts (aiosmtpd's controller wants a fixed
port; here it is handed an already bound socket instead, so parallel test runs never collide).
``reply`` scripts the answer to the next messages (``"451 try later"``), for failure tests.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One message as the server got it: envelope sender, recipients, parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def body(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())


class _Handler:
    def __init__(self, owner: LocalSMTP) -> None:
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.owner.lock:
            if self.owner.replies:
                return self.owner.replies.pop(0)
            raw = envelope.original_content or envelope.content
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            msg = BytesParser(policy=policy.default).parsebytes(data)
            self.owner.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


class _BoundController(Controller):
    """aiosmtpd's controller serving on a socket bound beforehand (port 0: any free port)."""

    def __init__(self, handler: Any, sock: socket.socket, **smtp_options: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **smtp_options)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class LocalSMTP:
    """``with LocalSMTP() as smtp:`` a server at ``smtp.host``/``smtp.port``; ``smtp.messages``.

    With ``tls`` (a server SSL context) the server offers STARTTLS and refuses mail without it.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.host = "127.0.0.1"
        self.messages: list[Received] = []
        self.replies: list[str] = []
        self.lock = threading.Lock()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        self.port: int = sock.getsockname()[1]
        options: dict[str, Any] = {}
        if tls is not None:
            options = {"tls_context": tls, "require_starttls": True}
        self._controller = _BoundController(_Handler(self), sock, **options)

    def start(self) -> LocalSMTP:
        """Serve (returns once the server answers)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._controller.stop()

    def __enter__(self) -> LocalSMTP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        """Forget the messages and scripted replies so far."""
        with self.lock:
            self.messages.clear()
            self.replies.clear()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The messages once there are at least ``count`` (raises after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} messages, expected {count}")
            time.sleep(0.02)
