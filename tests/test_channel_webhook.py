"""The webhook channel against a real receiver on loopback that checks Standard Webhooks signatures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loopback import bind, serve_in_thread
from proxima.errors import ChannelError, ConfigError, VerificationError
from proxima.ground.channels.base import MediaFile, Outgoing, Published
from proxima.ground.channels.webhook import (
    WebhookChannel,
    decode_secret,
    sign_webhook,
    verify_webhook,
    webhook_id,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
PHOTO = MediaFile("cupola.jpg", "image/jpeg", b"\xff\xd8" + bytes(500) + b"\xff\xd9", {"en": "The cupola"})


def post(key: str = "post-42") -> Outgoing:
    return Outgoing(
        key=key,
        author="thomas",
        text={"fr": "Bonjour <depuis> l'ISS", "en": "Hello from the ISS"},
        created=datetime(2026, 11, 3, 14, 5, 9, tzinfo=UTC),
        hashtags=("ISS", "Space"),
        media=(PHOTO,),
        verify_url="https://verify.example/p/ABCD",
        reply_to="question-7",
        title="Greetings",
    )


@dataclass
class Receiver:
    """A webhook receiver: verifies each delivery, records it, answers the scripted statuses."""

    secret: str | bytes
    script: list[int] = field(default_factory=list)
    deliveries: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            msg_id = verify_webhook(dict(request.headers), body, self.secret, now=time.time())
        except VerificationError as exc:
            self.refusals.append(exc.failure)
            return JSONResponse({"error": exc.failure}, status_code=400)
        self.deliveries.append((dict(request.headers), json.loads(body)))
        status = self.script.pop(0) if self.script else 200
        if status >= 300:
            return Response("try later" if status >= 500 else "no", status_code=status)
        return JSONResponse({"ok": True}, status_code=status, headers={"location": f"/posts/{msg_id}"})


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver(SECRET)
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    sock, _ = bind()
    rec.port = sock.getsockname()[1]
    with serve_in_thread(app, sock):
        yield rec


@pytest.fixture
def fresh(receiver: Receiver) -> Receiver:
    receiver.script.clear()
    receiver.deliveries.clear()
    receiver.refusals.clear()
    return receiver


def test_a_delivery_is_signed_verified_and_carries_the_post(fresh: Receiver) -> None:
    async def run() -> Published:
        channel = WebhookChannel(fresh.url, SECRET)
        try:
            return await channel.publish(post())
        finally:
            await channel.close()

    published = asyncio.run(run())
    assert fresh.refusals == []
    [(headers, body)] = fresh.deliveries
    assert published.remote_id == headers["webhook-id"] == webhook_id("post-42")
    assert published.url == f"http://127.0.0.1:{fresh.port}/posts/{published.remote_id}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert body["type"] == "post.published"
    data = body["data"]
    assert data["key"] == "post-42"
    assert data["languages"] == ["fr", "en"]
    assert data["text"]["fr"] == "Bonjour <depuis> l'ISS"
    assert data["hashtags"] == ["ISS", "Space"]
    assert data["verify_url"] == "https://verify.example/p/ABCD"
    assert data["reply_to"] == "question-7"
    assert data["created"] == "2026-11-03T14:05:09Z"
    [media] = data["media"]
    assert media == {
        "name": "cupola.jpg",
        "content_type": "image/jpeg",
        "size": len(PHOTO.data),
        "sha256": hashlib.sha256(PHOTO.data).hexdigest(),
        "alt": {"en": "The cupola"},
    }
    assert "data" not in media


def test_retry_after_503_keeps_the_webhook_id(fresh: Receiver) -> None:
    fresh.script[:] = [503, 200]

    async def run() -> tuple[ChannelError, Published]:
        channel = WebhookChannel(fresh.url, SECRET)
        try:
            with pytest.raises(ChannelError) as caught:
                await channel.publish(post("post-43"))
            return caught.value, await channel.publish(post("post-43"))
        finally:
            await channel.close()

    error, published = asyncio.run(run())
    assert error.transient is True
    assert error.reason == 503
    assert error.channel == "webhook"
    assert "503" in str(error)
    first, second = (h["webhook-id"] for h, _ in fresh.deliveries)
    assert first == second == published.remote_id == webhook_id("post-43")


def test_429_is_transient_and_400_is_permanent(fresh: Receiver) -> None:
    fresh.script[:] = [429, 400, 404]

    async def run() -> list[ChannelError]:
        channel = WebhookChannel(fresh.url, SECRET, name="newsroom")
        errors = []
        try:
            for _ in range(3):
                with pytest.raises(ChannelError) as caught:
                    await channel.publish(post())
                errors.append(caught.value)
        finally:
            await channel.close()
        return errors

    too_many, bad, missing = asyncio.run(run())
    assert (too_many.transient, too_many.reason) == (True, 429)
    assert (bad.transient, bad.reason) == (False, 400)
    assert (missing.transient, missing.reason) == (False, 404)
    assert str(bad).startswith("newsroom: POST ")


def test_a_wrong_secret_is_refused_by_the_receiver_and_permanent(fresh: Receiver) -> None:
    async def run() -> ChannelError:
        channel = WebhookChannel(fresh.url, b"another secret entirely")
        try:
            with pytest.raises(ChannelError) as caught:
                await channel.publish(post())
            return caught.value
        finally:
            await channel.close()

    error = asyncio.run(run())
    assert fresh.refusals == ["bad_signature"]
    assert fresh.deliveries == []
    assert (error.transient, error.reason) == (False, 400)


def test_a_stale_clock_is_refused_by_the_receiver(fresh: Receiver) -> None:
    async def run() -> None:
        channel = WebhookChannel(fresh.url, SECRET, clock=lambda: time.time() - 3600)
        try:
            with pytest.raises(ChannelError):
                await channel.publish(post())
        finally:
            await channel.close()

    asyncio.run(run())
    assert fresh.refusals == ["stale_timestamp"]


def test_an_unreachable_receiver_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        async def run() -> ChannelError:
            channel = WebhookChannel(f"http://127.0.0.1:{port}/hook", SECRET, timeout=5)
            try:
                with pytest.raises(ChannelError) as caught:
                    await channel.publish(post())
                return caught.value
            finally:
                await channel.close()

        error = asyncio.run(run())
    assert error.transient is True
    assert error.reason is None


def signed(body: bytes, stamp: int = 1_700_000_000, msg_id: str = "msg_abc") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(msg_id, stamp, body, SECRET),
    }


def test_the_signature_matches_the_standard_webhooks_example() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign_webhook("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, secret) == expected


def test_tampering_is_caught_with_the_right_failure_word() -> None:
    body = b'{"data":{"text":"hello"}}'
    now = 1_700_000_100.0
    assert verify_webhook(signed(body), body, SECRET, now) == "msg_abc"
    assert verify_webhook({k.upper(): v for k, v in signed(body).items()}, body, SECRET, now) == "msg_abc"
    several = signed(body) | {"webhook-signature": "v1,AAAA " + signed(body)["webhook-signature"]}
    assert verify_webhook(several, body, SECRET, now) == "msg_abc"
    other_version = "v2," + signed(body)["webhook-signature"][3:]
    cases: list[tuple[dict[str, str], bytes, str]] = [
        (signed(body), b'{"data":{"text":"hellO"}}', "bad_signature"),
        (signed(body) | {"webhook-id": "msg_abd"}, body, "bad_signature"),
        (signed(body) | {"webhook-timestamp": "1700000001"}, body, "bad_signature"),
        (signed(body) | {"webhook-signature": other_version}, body, "bad_signature"),
        (signed(body, stamp=1_699_999_000), body, "stale_timestamp"),
        (signed(body, stamp=1_700_001_000), body, "stale_timestamp"),
        (signed(body) | {"webhook-timestamp": "17e8"}, body, "bad_timestamp"),
        ({"webhook-id": "msg_abc", "webhook-timestamp": "1700000000"}, body, "missing_header"),
    ]
    for headers, received, failure in cases:
        with pytest.raises(VerificationError) as caught:
            verify_webhook(headers, received, SECRET, now)
        assert caught.value.failure == failure, (headers, failure)
    with pytest.raises(VerificationError) as caught:
        verify_webhook(signed(body), body, b"not the secret", now)
    assert caught.value.failure == "bad_signature"
    assert verify_webhook(signed(body, stamp=1_699_999_000), body, SECRET, now, tolerance_s=2000) == "msg_abc"


def test_secrets_are_whsec_base64_or_raw_bytes() -> None:
    assert decode_secret(SECRET) == KEY
    assert decode_secret(KEY) == KEY
    assert sign_webhook("m", 1, b"x", SECRET) == sign_webhook("m", 1, b"x", KEY)
    for bad in ("plain text", "whsec_not*base64", "whsec_", b""):
        with pytest.raises(ConfigError, match="webhook secret"):
            decode_secret(bad)


def test_webhook_ids_are_stable_and_distinct() -> None:
    assert webhook_id("post-1") == webhook_id("post-1")
    assert webhook_id("post-1") != webhook_id("post-1/v2")
    assert webhook_id("post-1").startswith("msg_")


@settings(max_examples=200, deadline=None)
@given(
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    stamp=st.integers(0, 2**40),
    body=st.binary(max_size=300),
    key=st.binary(min_size=1, max_size=64),
    skew=st.integers(-300, 300),
    flip=st.integers(0, 10_000),
)
def test_sign_then_verify_round_trips_and_any_flipped_bit_fails(
    msg_id: str, stamp: int, body: bytes, key: bytes, skew: int, flip: int
) -> None:
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(msg_id, stamp, body, key),
    }
    assert verify_webhook(headers, body, key, now=stamp + skew) == msg_id
    if body:
        i = flip % len(body)
        altered = body[:i] + bytes([body[i] ^ (1 << (flip % 8))]) + body[i + 1 :]
        with pytest.raises(VerificationError):
            verify_webhook(headers, altered, key, now=stamp)
