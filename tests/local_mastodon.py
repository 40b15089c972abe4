"""A real Mastodon API on loopback for tests: the ``mastodon-mock`` server, started and stopped.

Usage::

    from local_mastodon import local_mastodon

    with local_mastodon() as server:
        channel = MastodonChannel(server.base_url, server.token)
        ...
        status = server.get(f"/api/v1/statuses/{published.remote_id}")

``local_mastodon()`` runs the mock's own threaded uvicorn server (``MockServer``, the way the
package's pytest plugin does) on 127.0.0.1 with a port chosen by the system, an in-memory
database and a temporary media directory. It seeds two accounts with fresh random tokens: the
publishing account (``token``) and another one (``other_token``) whose statuses the publishing
account can answer. On leaving the block the server stops and the media directory is removed.

The mock answers what a Mastodon 4 instance would (it honours ``Idempotency-Key``), and offers
fault injection (:meth:`LocalMastodon.fault`): a forced status code, or a ``202``/``206`` body.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from mastodon_mock.config import (
    DatabaseConfig,
    MastodonMockConfig,
    SeedAccount,
    SeedConfig,
    StreamingConfig,
)
from mastodon_mock.testing.server import MockServer

__all__ = ["LocalMastodon", "local_mastodon"]


@dataclass(frozen=True)
class LocalMastodon:
    """A running mock instance: where it is, who may post, and a few reading helpers."""

    base_url: str
    token: str
    """Access token of the publishing account (``username``)."""
    username: str
    other_token: str
    """Access token of a second account (``other_username``)."""
    other_username: str
    tokens: dict[str, str] = field(default_factory=dict)
    """Access token of every seeded account by username (the two above and ``extra_users``)."""

    def get(self, path: str, *, token: str | None = None, **params: Any) -> Any:
        """``GET base_url + path`` as the publishing account (or ``token``); the decoded JSON."""
        response = httpx.get(
            self.base_url + path,
            params=params,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30.0,
        )
        response.raise_for_status()
        return response.json()

    def post(
        self,
        path: str,
        data: dict[str, Any],
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        token: str | None = None,
    ) -> Any:
        """``POST`` a form (and ``files``) as the publishing account (or ``token``); the decoded JSON."""
        response = httpx.post(
            self.base_url + path,
            data=data,
            files=files,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30.0,
        )
        response.raise_for_status()
        return response.json()

    def statuses(self) -> list[dict[str, Any]]:
        """Every status of the publishing account, newest first."""
        me = self.get("/api/v1/accounts/verify_credentials")
        found: list[dict[str, Any]] = self.get(f"/api/v1/accounts/{me['id']}/statuses", limit=40)
        return found

    def fault(
        self,
        path: str,
        *,
        methods: tuple[str, ...] = ("POST",),
        status: int = 500,
        body: Any = None,
        kind: str = "status",
        count: int | None = 1,
    ) -> str:
        """Make the next ``count`` requests to ``path`` (``*`` globs allowed) answer ``status``.

        ``kind`` is the mock's effect type (``status``, ``ratelimit``...); ``body`` the JSON
        answered. Returns the rule's id; :meth:`clear_faults` removes every rule.
        """
        effect: dict[str, Any] = {"type": kind, "status": status}
        if body is not None:
            effect["body"] = body
        rule = {"match": {"methods": list(methods), "path": path}, "effect": effect, "count": count}
        response = httpx.post(f"{self.base_url}/api/v1/_mock/faults", json=rule, timeout=30.0)
        response.raise_for_status()
        rule_id: str = response.json()["id"]
        return rule_id

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        httpx.delete(f"{self.base_url}/api/v1/_mock/faults", timeout=30.0).raise_for_status()


@contextlib.contextmanager
def local_mastodon(
    *,
    username: str = "proxima",
    other_username: str = "houston",
    extra_users: tuple[str, ...] = (),
    startup_timeout: float = 30.0,
) -> Iterator[LocalMastodon]:
    """Run a ``mastodon-mock`` server on 127.0.0.1 (ephemeral port) for the ``with`` block.

    ``extra_users`` are more accounts of the public, each with its own token in ``tokens``.
    """
    token = secrets.token_urlsafe(24)
    other_token = secrets.token_urlsafe(24)
    tokens = {username: token, other_username: other_token}
    tokens.update({name: secrets.token_urlsafe(24) for name in extra_users})
    with tempfile.TemporaryDirectory(prefix="proxima-mastodon-") as media:
        config = MastodonMockConfig(
            database=DatabaseConfig(path=":memory:"),
            media_storage_path=media,
            # No streaming: nothing listens, and its heartbeat tasks would only slow the stop.
            streaming=StreamingConfig(enabled=False),
            seed=SeedConfig(
                accounts=[
                    SeedAccount(username=username, display_name="Proxima crew", access_token=token),
                    SeedAccount(username=other_username, display_name="Houston", access_token=other_token),
                    *(SeedAccount(username=n, access_token=tokens[n]) for n in extra_users),
                ]
            ),
        )
        server = MockServer(config=config, host="127.0.0.1", startup_timeout=startup_timeout)
        with server:
            yield LocalMastodon(
                base_url=server.base_url,
                token=token,
                username=username,
                other_token=other_token,
                other_username=other_username,
                tokens=tokens,
            )
