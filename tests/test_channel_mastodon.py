"""The Mastodon channel against a real Mastodon API on loopback (``mastodon-mock``).

Everything is read back through the server's own API: languages, media and their alt text,
the reply chain, hashtags, the verification link, and how retries and failures come out.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from local_mastodon import LocalMastodon, local_mastodon
from proxima.errors import ChannelError, ConfigError
from proxima.ground.channels.base import MediaFile, Outgoing, Published, graphemes
from proxima.ground.channels.mastodon import IMAGE_LIMIT, MastodonChannel

CREATED = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)
VERIFY = "https://ground.example/v/7Q2K"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalMastodon]:
    with local_mastodon() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults_left(server: LocalMastodon) -> Iterator[None]:
    yield
    server.clear_faults()


def jpeg(colour: tuple[int, int, int] = (20, 40, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, "JPEG")
    return out.getvalue()


def photo(alt: dict[str, str] | None = None, data: bytes | None = None) -> MediaFile:
    alt = {"fr": "La Terre vue du hublot", "en": "Earth seen from the window"} if alt is None else alt
    return MediaFile(name="photo.jpg", content_type="image/jpeg", data=data or jpeg(), alt=alt)


def post(key: str, text: dict[str, str], **fields: Any) -> Outgoing:
    return Outgoing(key=key, author="crew-1", text=text, created=CREATED, **fields)


def publish(channel: MastodonChannel, out: Outgoing) -> Published:
    """Publish, then close the channel, in one event loop."""

    async def run() -> Published:
        try:
            return await channel.publish(out)
        finally:
            await channel.close()

    return asyncio.run(run())


def failure(channel: MastodonChannel, out: Outgoing) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        publish(channel, out)
    return caught.value


def source(server: LocalMastodon, status_id: str) -> str:
    text: str = server.get(f"/api/v1/statuses/{status_id}/source")["text"]
    return text


def texts_of(server: LocalMastodon) -> list[str]:
    return [source(server, s["id"]) for s in server.statuses()]


def test_bilingual_post_with_photo(server: LocalMastodon) -> None:
    image = jpeg()
    out = post(
        "p-bilingual",
        {"fr": "Bonjour depuis l'orbite ! La mer est bleue.", "en": "Hello from orbit! The sea is blue."},
        hashtags=("Proxima", "ISS"),
        media=[photo(data=image)],
        verify_url=VERIFY,
    )
    published = publish(MastodonChannel(server.base_url, server.token), out)

    assert len(published.ids) == 2
    assert published.remote_id == published.ids[0]
    fr, en = (server.get(f"/api/v1/statuses/{i}") for i in published.ids)
    assert published.url == fr["url"]
    assert (fr["language"], en["language"]) == ("fr", "en")
    assert fr["in_reply_to_id"] is None
    assert en["in_reply_to_id"] == fr["id"]
    assert fr["account"]["username"] == server.username
    assert fr["visibility"] == "public"
    for status, alt in ((fr, "La Terre vue du hublot"), (en, "Earth seen from the window")):
        assert [m["description"] for m in status["media_attachments"]] == [alt]
        assert status["media_attachments"][0]["type"] == "image"
        assert httpx.get(status["media_attachments"][0]["url"], timeout=30).content == image
        assert {t["name"].casefold() for t in status["tags"]} == {"proxima", "iss"}
        text = source(server, status["id"])
        assert text.endswith(f"\n\n{VERIFY}")
        assert "#Proxima #ISS" in text
    assert source(server, fr["id"]).startswith("Bonjour depuis l'orbite !")
    assert source(server, en["id"]).startswith("Hello from orbit!")


def test_long_text_becomes_a_numbered_thread(server: LocalMastodon) -> None:
    words = [f"mot{i:03d}" for i in range(260)]
    out = post("p-long", {"fr": " ".join(words)}, verify_url=VERIFY)
    published = publish(MastodonChannel(server.base_url, server.token), out)

    n = len(published.ids)
    assert n >= 3
    parent = None
    seen: list[str] = []
    for i, status_id in enumerate(published.ids, 1):
        status = server.get(f"/api/v1/statuses/{status_id}")
        text = source(server, status_id)
        assert status["in_reply_to_id"] == parent
        assert status["language"] == "fr"
        assert graphemes(text) <= 500
        body, marker, tail = re.fullmatch(r"(.*) \((\d+/\d+)\)(\n\n\S+)?", text, re.DOTALL).groups()
        assert marker == f"{i}/{n}"
        assert (tail == f"\n\n{VERIFY}") == (i == n)
        seen += body.split()
        parent = status_id
    assert seen == words


def test_reply_to_is_honoured(server: LocalMastodon) -> None:
    question = server.post("/api/v1/statuses", {"status": "What do you see?"}, token=server.other_token)
    out = post("p-answer", {"en": "The Alps, under snow."}, reply_to=question["id"])
    published = publish(MastodonChannel(server.base_url, server.token), out)

    status = server.get(f"/api/v1/statuses/{published.remote_id}")
    assert status["in_reply_to_id"] == question["id"]
    assert status["in_reply_to_account_id"] == question["account"]["id"]


def test_languages_filter_and_alt_text_fallback(server: LocalMastodon) -> None:
    out = post(
        "p-english-only",
        {"fr": "Seulement en français ici.", "en": "Only the English goes here."},
        media=[photo(alt={"fr": "Une aurore"})],
    )
    channel = MastodonChannel(server.base_url, server.token, languages=["en"], visibility="unlisted")
    published = publish(channel, out)

    assert len(published.ids) == 1
    status = server.get(f"/api/v1/statuses/{published.remote_id}")
    assert status["language"] == "en"
    assert status["visibility"] == "unlisted"
    assert [m["description"] for m in status["media_attachments"]] == ["Une aurore"]


def test_same_key_twice_publishes_once(server: LocalMastodon) -> None:
    """The mock honours Idempotency-Key as Mastodon does: a second publish finds the first."""
    out = post("p-twice", {"fr": "Une fois.", "en": "Once."}, media=[photo()])
    first = publish(MastodonChannel(server.base_url, server.token), out)
    before = len(server.statuses())
    again = publish(MastodonChannel(server.base_url, server.token), out)

    assert again == first
    assert len(server.statuses()) == before
    other = publish(MastodonChannel(server.base_url, server.token), post("p-twice-v2", dict(out.text)))
    assert set(other.ids).isdisjoint(first.ids)


class AnswerEater:
    """A loopback TCP relay to the server that loses the answer to one status post.

    The request reaches the server (which publishes), the answer never comes back: the client
    times out exactly as it would when a link drops after sending.
    """

    def __init__(self, port: int, *, skip: int = 0) -> None:
        self._port = port
        self._skip = skip
        self._armed = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.eaten = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._port))
            self._sockets += [client, upstream]
            lost = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, lost), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, lost), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, lost: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if data.startswith(b"POST /api/v1/statuses "):
                    with self._lock:
                        if self._armed and self._skip == 0:
                            self._armed = False
                            lost.set()
                        self._skip -= 1
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _down(self, upstream: socket.socket, client: socket.socket, lost: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if lost.is_set():
                    self.eaten += 1
                    continue
                client.sendall(data)
        except OSError:
            pass
        finally:
            client.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def test_retry_after_a_lost_answer_does_not_duplicate(server: LocalMastodon) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    relay = AnswerEater(port, skip=1)
    try:
        out = post("p-lost", {"fr": "Perdu puis retrouvé.", "en": "Lost, then found."}, media=[photo()])
        before = len(server.statuses())
        # The server answers in milliseconds; 1.5 s leaves room on a loaded machine.
        error = failure(MastodonChannel(relay.url, server.token, timeout=1.5), out)

        assert error.transient
        assert error.reason is None
        assert "posting the en message 1/1 of p-lost: network error" in str(error)
        assert "timed out" in str(error)
        assert relay.eaten >= 1
        statuses = server.statuses()
        assert len(statuses) == before + 2  # the server did publish both

        published = publish(MastodonChannel(relay.url, server.token, timeout=5.0), out)
        assert set(published.ids) == {s["id"] for s in statuses[:2]}
        assert len(server.statuses()) == before + 2
        en = server.get(f"/api/v1/statuses/{published.ids[1]}")
        assert en["language"] == "en"
        assert en["in_reply_to_id"] == published.ids[0]
    finally:
        relay.close()


def test_waits_for_media_processing(server: LocalMastodon) -> None:
    uploaded = server.post(
        "/api/v2/media",
        {"description": "Orage vu d'en haut"},
        files={"file": ("storm.jpg", jpeg((200, 200, 200)), "image/jpeg")},
    )
    pending = {**uploaded, "url": None, "preview_url": None}
    server.fault("/api/v2/media", status=202, body=pending)
    server.fault(f"/api/v1/media/{uploaded['id']}", methods=("GET",), status=206, body=pending)

    channel = MastodonChannel(server.base_url, server.token, poll_interval=0.05)
    published = publish(channel, post("p-processing", {"fr": "Un orage."}, media=[photo()]))

    assert server.get("/api/v1/_mock/faults") == []  # the upload answer and the poll were both used
    status = server.get(f"/api/v1/statuses/{published.remote_id}")
    assert [m["id"] for m in status["media_attachments"]] == [uploaded["id"]]


def test_media_still_processing_is_transient(server: LocalMastodon) -> None:
    uploaded = server.post("/api/v2/media", {}, files={"file": ("clip.jpg", jpeg((9, 9, 9)), "image/jpeg")})
    pending = {**uploaded, "url": None}
    server.fault("/api/v2/media", status=202, body=pending)
    server.fault(f"/api/v1/media/{uploaded['id']}", methods=("GET",), status=206, body=pending, count=None)
    before = len(server.statuses())

    channel = MastodonChannel(server.base_url, server.token, poll_interval=0.05, processing_timeout=0.4)
    error = failure(channel, post("p-slow", {"fr": "Trop lent."}, media=[photo()]))

    assert error.transient
    assert "photo.jpg (fr) still processing" in str(error)
    assert len(server.statuses()) == before


@pytest.mark.parametrize(
    ("path", "kind", "status", "transient", "words"),
    [
        ("/api/v2/media", "status", 413, False, "uploading photo.jpg (fr): HTTP 413"),
        ("/api/v2/media", "status", 422, False, "uploading photo.jpg (fr): HTTP 422"),
        ("/api/v1/statuses", "status", 403, False, "posting the fr message 1/1 of p-err: HTTP 403"),
        ("/api/v1/statuses", "status", 404, False, "HTTP 404"),
        ("/api/v1/statuses", "status", 503, True, "posting the fr message 1/1 of p-err: HTTP 503"),
        ("/api/v1/statuses", "status", 500, True, "HTTP 500"),
        ("/api/v1/statuses", "ratelimit", 429, True, "HTTP 429"),
        ("/api/v2/media", "malformed", None, True, "uploading photo.jpg (fr): unreadable answer"),
    ],
)
def test_http_errors_are_mapped(
    server: LocalMastodon, path: str, kind: str, status: int | None, transient: bool, words: str
) -> None:
    server.fault(path, kind=kind, status=status or 200, body={"error": "refused here"})
    error = failure(
        MastodonChannel(server.base_url, server.token), post("p-err", {"fr": "Essai."}, media=[photo()])
    )

    assert error.channel == "mastodon"
    assert error.transient is transient
    assert error.reason == status
    assert words in str(error)
    assert str(error).startswith("mastodon: ")
    if kind == "status":
        assert "refused here" in str(error)


def test_validation_error_names_the_reason(server: LocalMastodon) -> None:
    """A refusal by the server itself, not injected: its 422 and its reason reach the caller.

    The mock counts a link at its length where Mastodon counts 23: this text fits Mastodon
    (494 characters) but is 531 to the mock, which refuses it as too long.
    """
    text = "a" * 470 + " https://example.org/" + "x" * 40
    error = failure(
        MastodonChannel(server.base_url, server.token, name="masto-fr"), post("p-422", {"fr": text})
    )

    assert not error.transient
    assert error.reason == 422
    assert "masto-fr: posting the fr message 1/1 of p-422: HTTP 422" in str(error)
    assert "too long" in str(error)


def test_bad_token_is_permanent(server: LocalMastodon) -> None:
    error = failure(MastodonChannel(server.base_url, "not-a-token"), post("p-401", {"en": "Hi."}))

    assert not error.transient
    assert error.reason == 401
    assert "posting the en message 1/1 of p-401: HTTP 401" in str(error)


def test_server_down_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    error = failure(MastodonChannel(f"http://127.0.0.1:{port}", "token"), post("p-down", {"en": "Anyone?"}))

    assert error.transient
    assert error.reason is None
    assert "posting the en message 1/1 of p-down: network error" in str(error)


HUGE = MediaFile(name="big.png", content_type="image/png", data=bytes(IMAGE_LIMIT + 1))
TIFF = MediaFile(name="scan.tiff", content_type="image/tiff", data=b"II*\0")


@pytest.mark.parametrize(
    ("out", "words"),
    [
        (post("p-5", {"fr": "Cinq."}, media=[photo()] * 5), "5 media files, at most 4"),
        (
            post("p-big", {"fr": "Gros."}, media=[HUGE]),
            f"big.png: {IMAGE_LIMIT + 1} bytes, at most {IMAGE_LIMIT}",
        ),
        (post("p-tiff", {"fr": "Tiff."}, media=[TIFF]), "scan.tiff: media type image/tiff not accepted"),
        (post("p-none", {"de": "Nur Deutsch."}), "post p-none has no text in fr"),
    ],
    ids=["too-many", "too-big", "bad-type", "no-language"],
)
def test_refused_before_any_request(server: LocalMastodon, out: Outgoing, words: str) -> None:
    before = len(server.statuses())
    error = failure(MastodonChannel(server.base_url, server.token, languages=["fr"]), out)

    assert not error.transient
    assert error.reason is None
    assert words in str(error)
    assert len(server.statuses()) == before


def test_closed_channel_refuses() -> None:
    channel = MastodonChannel("http://127.0.0.1:9", "token")
    asyncio.run(channel.close())
    error = failure(channel, post("p-closed", {"en": "Late."}))
    assert not error.transient
    assert "closed" in str(error)


def test_limits_and_configuration() -> None:
    limits = MastodonChannel("https://social.example", "token").limits
    assert (limits.max_chars, limits.link_chars, limits.max_media, limits.max_alt_chars) == (500, 23, 4, 1500)
    assert (limits.lead_time_s, limits.max_scheduled, limits.max_per_day) == (300, 300, 25)
    assert limits.threads
    assert limits.max_media_bytes == 99 * 1024 * 1024
    assert {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/webm",
    } <= limits.media_types
    assert {"audio/mpeg", "audio/ogg"} <= limits.media_types
    assert MastodonChannel("https://social.example", "token", name="masto2").name == "masto2"
    with pytest.raises(ConfigError, match="visibility 'everyone'"):
        MastodonChannel("https://social.example", "token", visibility="everyone")
    with pytest.raises(ConfigError, match="not an http"):
        MastodonChannel("social.example", "token")
