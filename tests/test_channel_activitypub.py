"""The mission's ActivityPub actor: against bovine-herd on loopback, against itself, and in process."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_bovine import Bovine, start_bovine
from loopback import bind as _bind
from loopback import client as _client
from loopback import serve as _serve
from proxima.errors import ChannelError, VerificationError
from proxima.ground.channels.activitypub import (
    AS_PUBLIC,
    ActivityPubChannel,
    ApActivity,
    ApDelivery,
    ApFollower,
    render_html,
)
from proxima.ground.channels.base import MediaFile, Outgoing
from proxima.ground.db import Base, make_engine, session_factory
from proxima.ground.httpsig import sign_request, verify_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from sqlalchemy.orm import Session, sessionmaker


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


OUR_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
WRONG_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 40)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()



def _sessions(tmp_path: Path, name: str = "ground.db") -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    Base.metadata.create_all(engine)
    return session_factory(engine)


def _channel(
    base: str, sessions: sessionmaker[Session], username: str = "mission", **kw: Any
) -> ActivityPubChannel:
    return ActivityPubChannel(
        base, username, "Proxima Mission", "Posts from orbit.\n\nReviewed on the ground.", _pem(OUR_KEY),
        sessions, http_client=_client, allow_private_network=True, **kw,
    )  # fmt: skip




async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _post(key: str = "post-1", **kw: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "key": key,
        "author": "astro",
        "text": {"en": "Hello from orbit! <script>alert(1)</script>", "fr": "Bonjour depuis l'orbite !"},
        "created": datetime(2030, 6, 1, 12, 0, tzinfo=UTC),
        "hashtags": ("ISS", "Proxima"),
        "verify_url": "https://ground.example/v/ABC123",
        "media": (
            MediaFile("earth.png", "image/png", PNG, {"en": "The Earth at night", "fr": "La Terre de nuit"}),
        ),
    }
    fields.update(kw)
    return Outgoing(**fields)


# -- against bovine-herd -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bovine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bovine]:
    with start_bovine(tmp_path_factory.mktemp("bovine")) as server:
        yield server


def test_bovine_follows_and_receives_the_bilingual_post(bovine: Bovine, tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    sock, base = _bind()
    channel = _channel(base, sessions)

    async def scenario() -> None:
        async with _serve(Starlette(routes=channel.routes()), sock):
            # bovine's actor follows ours: a signed Follow reaches our inbox, we answer Accept.
            await bovine.post("/_test/follow", {"object": channel.actor_id})
            following = await _until(
                lambda: _following(bovine, channel.actor_id), "bovine to record our Accept"
            )
            assert channel.actor_id in following
            with sessions() as session:
                follower = session.get(ApFollower, bovine.actor)
                assert follower is not None
                assert follower.inbox.startswith(bovine.base)

            published = await channel.publish(_post())
            assert published.remote_id == channel.note_id("post-1")
            create = await _until(
                lambda: _create_in_inbox(bovine, published.remote_id), "the Create at bovine"
            )
            assert create["actor"] == channel.actor_id
            assert create["id"].endswith("/ap/activities/" + published.remote_id.rsplit("/", 1)[1])

            note = await bovine.get("/_test/object", id=published.remote_id)
            assert note["type"] == "Note"
            assert note["attributedTo"] == channel.actor_id
            assert set(note["contentMap"]) == {"en", "fr"}
            assert "Bonjour depuis l&#x27;orbite !" in note["contentMap"]["fr"]
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in note["contentMap"]["en"]
            assert "<script>" not in json.dumps(note)
            assert "https://ground.example/v/ABC123" in note["contentMap"]["en"]
            attachments = note["attachment"]
            assert len(attachments) == 1
            assert attachments[0]["name"] == "The Earth at night"
            assert attachments[0]["mediaType"] == "image/png"
            tags = {t["name"] for t in note["tag"]}
            assert tags == {"#ISS", "#Proxima"}
            # The image is served where the attachment says.
            async with _client() as client:
                image = await client.get(attachments[0]["url"])
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/png"
            assert image.content == PNG

            # Publishing the same key again makes nothing new and sends nothing again.
            again = await channel.publish(_post())
            assert again == published
            await asyncio.sleep(0.5)
            inbox = await bovine.get("/_test/inbox")
            assert sum(1 for item in inbox["items"] if item.get("type") == "Create") == 1
            with sessions() as session:
                rows = session.scalars(select(ApDelivery).where(ApDelivery.state == "delivered")).all()
                create_rows = [r for r in rows if session.get(ApActivity, r.activity_seq).kind == "Create"]
                assert [r.attempts for r in create_rows] == [1]
        await channel.close()

    asyncio.run(scenario())


async def _following(bovine: Bovine, actor: str) -> list[str] | None:
    items: list[str] = (await bovine.get("/_test/following"))["items"]
    return items if actor in items else None


async def _create_in_inbox(bovine: Bovine, note_id: str) -> dict[str, Any] | None:
    for item in (await bovine.get("/_test/inbox"))["items"]:
        if item.get("type") == "Create" and item.get("object") in (note_id, {"id": note_id}):
            return dict(item)
    return None


# -- against another actor of our own, over real HTTP ---------------------------------------------


def test_inbox_verifies_signatures_follows_and_unfollows(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    other_sessions = _sessions(tmp_path, "other.db")
    sock, base = _bind()
    other_sock, other_base = _bind()
    channel = _channel(base, sessions)
    other = ActivityPubChannel(
        other_base, "friend", "A friend", "", _pem(OTHER_KEY), other_sessions,
        http_client=_client, allow_private_network=True,
    )  # fmt: skip

    async def send(activity: dict[str, Any], *, key: rsa.RSAPrivateKey = OTHER_KEY, body: bytes | None = None,
                   now: datetime | None = None, signed: bool = True) -> httpx.Response:  # fmt: skip
        raw = json.dumps(activity).encode()
        headers = {"Content-Type": "application/activity+json"}
        if signed:
            headers.update(
                sign_request(
                    "POST", channel.inbox_url, headers, raw, other.key_id, key, now or datetime.now(UTC)
                )
            )
        async with _client() as client:
            return await client.post(
                channel.inbox_url, content=body if body is not None else raw, headers=headers
            )

    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{other.actor_id}#follows/1",
        "type": "Follow",
        "actor": other.actor_id,
        "object": channel.actor_id,
    }

    async def scenario() -> None:
        async with (
            _serve(Starlette(routes=channel.routes()), sock),
            _serve(Starlette(routes=other.routes()), other_sock),
        ):
            unsigned = await send(follow, signed=False)
            assert unsigned.status_code == 401
            assert unsigned.json()["failure"] == "missing_signature"
            wrong_key = await send(follow, key=WRONG_KEY)
            assert wrong_key.status_code == 401
            assert wrong_key.json()["failure"] == "bad_signature"
            tampered = await send(follow, body=json.dumps({**follow, "object": "x"}).encode())
            assert tampered.status_code == 401
            assert tampered.json()["failure"] == "digest_mismatch"
            stale = await send(follow, now=datetime.now(UTC) - timedelta(hours=1))
            assert stale.status_code == 401
            assert stale.json()["failure"] == "expired"
            impostor = await send({**follow, "actor": "http://127.0.0.1:9/users/someone"})
            assert impostor.status_code == 401
            with sessions() as session:
                assert session.scalar(select(func.count()).select_from(ApFollower)) == 0

            accepted = await send(follow)
            assert accepted.status_code == 202
            with sessions() as session:
                follower = session.get(ApFollower, other.actor_id)
                assert follower is not None
                assert follower.inbox == other.inbox_url
                assert follower.shared_inbox == other.inbox_url

            # The Accept went out signed; the other actor's inbox verified it (it answers 401 otherwise).
            async def accept_delivered() -> bool:
                with sessions() as session:
                    accept = session.scalar(select(ApActivity).where(ApActivity.kind == "Accept"))
                    if accept is None:
                        return False
                    delivery = session.get(ApDelivery, (accept.seq, other.inbox_url))
                    return delivery is not None and delivery.state == "delivered"

            await _until(accept_delivered, "the Accept to be delivered")
            async with _client() as client:
                followers = (await client.get(channel.followers_url)).json()
            assert followers["totalItems"] == 1

            ignored = await send({"type": "Like", "id": f"{other.actor_id}#likes/1", "actor": other.actor_id})
            assert ignored.status_code == 202
            undo = await send(
                {"type": "Undo", "id": f"{other.actor_id}#undo/1", "actor": other.actor_id, "object": follow}
            )
            assert undo.status_code == 202
            with sessions() as session:
                assert session.get(ApFollower, other.actor_id) is None
        await channel.close()
        await other.close()

    asyncio.run(scenario())


# -- deliveries, against a recording inbox server --------------------------------------------------


class Recorder:
    """Inboxes that check our signatures and record what they get; some can be told to fail."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.status: dict[str, int] = {}

    async def inbox(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify_request(
                "POST", request.url.path, request.headers, body, self.public_key, datetime.now(UTC)
            )
        except VerificationError as exc:
            return JSONResponse({"error": exc.message}, status_code=401)
        name = str(request.path_params["name"])
        status = self.status.get(name, 202)
        if status < 300:
            self.received.append((name, json.loads(body)))
        return Response(status_code=status)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.received if n == name)


def test_delivery_once_per_shared_inbox_and_retries_only_failures(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    recorder = Recorder(OUR_KEY.public_key())
    rsock, rbase = _bind()
    channel = _channel("https://ground.example", sessions)
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add_all([
            ApFollower(actor_id=f"{rbase}/users/a", inbox=f"{rbase}/in/a", shared_inbox=f"{rbase}/in/shared",
                       follow_id=None, since=now),
            ApFollower(actor_id=f"{rbase}/users/b", inbox=f"{rbase}/in/b", shared_inbox=f"{rbase}/in/shared",
                       follow_id=None, since=now),
            ApFollower(actor_id=f"{rbase}/users/c", inbox=f"{rbase}/in/c", shared_inbox=None,
                       follow_id=None, since=now),
            ApFollower(actor_id=f"{rbase}/users/d", inbox=f"{rbase}/in/d", shared_inbox=None,
                       follow_id=None, since=now),
        ])  # fmt: skip
    app = Starlette(routes=[Route("/in/{name}", recorder.inbox, methods=["POST"])])

    async def scenario() -> None:
        async with _serve(app, rsock):
            recorder.status = {"c": 503, "d": 403}
            first = await channel.publish(_post("k1"))
            assert recorder.count("shared") == 1
            assert recorder.count("c") == 0
            assert recorder.received[0][1]["object"]["id"] == first.remote_id
            with sessions() as session:
                states = {d.inbox.rsplit("/", 1)[1]: d.state for d in session.scalars(select(ApDelivery))}
            assert states == {"shared": "delivered", "c": "failed", "d": "rejected"}

            recorder.status = {"d": 403}
            second = await channel.publish(_post("k1"))
            assert second == first
            assert (recorder.count("shared"), recorder.count("c"), recorder.count("d")) == (1, 1, 0)
            with sessions() as session:
                assert session.scalar(select(func.count()).select_from(ApActivity)) == 1

            # Nobody reachable: a transient error; the activity is kept and a retry completes it.
            recorder.status = {"shared": 502, "c": 500, "d": 403}
            with pytest.raises(ChannelError) as info:
                await channel.publish(_post("k2"))
            assert info.value.transient
            assert info.value.channel == "activitypub"
            recorder.status = {"d": 403}
            assert await channel.retry_deliveries() == 2
            assert (recorder.count("shared"), recorder.count("c")) == (2, 2)
            await channel.publish(_post("k2"))
            assert (recorder.count("shared"), recorder.count("c"), recorder.count("d")) == (2, 2, 0)
        await channel.close()

    asyncio.run(scenario())


def test_unreachable_followers_raise_transient(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    closed, dead = _bind()
    closed.close()
    channel = _channel("https://ground.example", sessions)
    with sessions() as session, session.begin():
        session.add(ApFollower(actor_id=f"{dead}/u", inbox=f"{dead}/inbox", shared_inbox=None, follow_id=None,
                               since=datetime.now(UTC)))  # fmt: skip

    async def scenario() -> None:
        with pytest.raises(ChannelError) as info:
            await channel.publish(_post())
        assert info.value.transient
        assert "no follower inbox could be reached" in str(info.value)
        await channel.close()

    asyncio.run(scenario())


# -- in process ------------------------------------------------------------------------------------


def _asgi(channel: ActivityPubChannel) -> httpx.AsyncClient:
    app = Starlette(routes=channel.routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://ground.example")


def test_webfinger_actor_and_nodeinfo(tmp_path: Path) -> None:
    channel = _channel("https://ground.example", _sessions(tmp_path))

    async def scenario() -> None:
        async with _asgi(channel) as client:
            finger = await client.get(
                "/.well-known/webfinger", params={"resource": "acct:mission@ground.example"}
            )
            assert finger.status_code == 200
            assert finger.headers["content-type"].startswith("application/jrd+json")
            jrd = finger.json()
            assert jrd["subject"] == "acct:mission@ground.example"
            selfs = [link for link in jrd["links"] if link["rel"] == "self"]
            assert selfs == [
                {
                    "rel": "self",
                    "type": "application/activity+json",
                    "href": "https://ground.example/users/mission",
                }
            ]
            other = await client.get(
                "/.well-known/webfinger", params={"resource": "acct:someone@ground.example"}
            )
            assert other.status_code == 404
            assert (await client.get("/.well-known/webfinger")).status_code == 400

            actor = await client.get("/users/mission")
            assert actor.headers["content-type"].startswith("application/activity+json")
            doc = actor.json()
            assert doc["id"] == channel.actor_id
            assert doc["type"] == "Person"
            assert doc["preferredUsername"] == "mission"
            assert doc["name"] == "Proxima Mission"
            assert doc["summary"] == "<p>Posts from orbit.</p><p>Reviewed on the ground.</p>"
            assert doc["inbox"] == "https://ground.example/users/mission/inbox"
            assert doc["outbox"] == "https://ground.example/users/mission/outbox"
            assert doc["followers"] == "https://ground.example/users/mission/followers"
            assert doc["url"]
            key = doc["publicKey"]
            assert key["id"] == "https://ground.example/users/mission#main-key"
            assert key["owner"] == channel.actor_id
            loaded = serialization.load_pem_public_key(key["publicKeyPem"].encode())
            assert isinstance(loaded, rsa.RSAPublicKey)
            assert loaded.public_numbers() == OUR_KEY.public_key().public_numbers()

            links = (await client.get("/.well-known/nodeinfo")).json()["links"]
            info = (await client.get(links[0]["href"].removeprefix("https://ground.example"))).json()
            assert info["protocols"] == ["activitypub"]
            assert info["usage"]["users"]["total"] == 1

            unsigned = await client.post("/users/mission/inbox", json={"type": "Follow"})
            assert unsigned.status_code == 401
            garbled = await client.post(
                "/users/mission/inbox",
                json={"type": "Follow"},
                headers={"Signature": 'keyId="x",signature=AAAA'},
            )
            assert garbled.status_code == 401
            assert garbled.json()["failure"] == "malformed"
        await channel.close()

    asyncio.run(scenario())


def test_note_shape_outbox_pages_and_escaping(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    channel = _channel("https://ground.example", sessions, page_size=2)

    async def scenario() -> None:
        first = await channel.publish(_post("a", reply_to="https://elsewhere.example/notes/9"))
        for key in ("b", "c"):
            await channel.publish(_post(key, text={"en": f"Post {key} #Orbit"}, media=(), hashtags=()))
        async with _asgi(channel) as client:
            note = (await client.get(first.remote_id.removeprefix("https://ground.example"))).json()
            assert note["type"] == "Note"
            assert note["content"] == note["contentMap"]["en"]
            assert "<script>" not in note["content"]
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in note["content"]
            assert note["content"].startswith("<p>Hello from orbit! ")
            assert 'href="https://ground.example/ap/tags/iss"' in note["content"]
            assert note["inReplyTo"] == "https://elsewhere.example/notes/9"
            assert note["to"] == [AS_PUBLIC]
            assert note["cc"] == [channel.followers_url]
            assert note["attachment"][0]["nameMap"] == {"en": "The Earth at night", "fr": "La Terre de nuit"}
            assert (note["attachment"][0]["width"], note["attachment"][0]["height"]) == (32, 24)
            assert note["tag"][0] == {
                "type": "Hashtag",
                "href": "https://ground.example/ap/tags/iss",
                "name": "#ISS",
            }
            html_view = await client.get(first.remote_id, headers={"Accept": "text/html"})
            assert html_view.headers["content-type"].startswith("text/html")
            assert "&lt;script&gt;" in html_view.text

            outbox = (await client.get("/users/mission/outbox")).json()
            assert outbox["type"] == "OrderedCollection"
            assert outbox["totalItems"] == 3
            page1 = (await client.get("/users/mission/outbox", params={"page": "1"})).json()
            assert [i["object"]["contentMap"]["en"][:9] for i in page1["orderedItems"]] == [
                "<p>Post c",
                "<p>Post b",
            ]
            assert page1["next"].endswith("page=2")
            page2 = (await client.get("/users/mission/outbox", params={"page": "2"})).json()
            assert [i["object"]["id"] for i in page2["orderedItems"]] == [first.remote_id]
            assert "next" not in page2
            assert (await client.get("/users/mission/outbox", params={"page": "3"})).status_code == 404
            assert (await client.get("/users/mission/outbox", params={"page": "x"})).status_code == 404

            tagged = (await client.get("/ap/tags/orbit")).json()
            assert tagged["totalItems"] == 2
            assert (await client.get("/ap/media/" + "0" * 64)).status_code == 404
            assert (await client.get("/ap/objects/nothing")).status_code == 404
        await channel.close()

    asyncio.run(scenario())


def test_render_html() -> None:
    def tag(t: str) -> str:
        return f"https://g.example/tags/{t.lower()}"

    html = render_html(
        "One <b>line</b>\nnext line, see https://example.org/a?b=1&c=2.\n\n\n#Mars & more",
        tag,
        extra_tags=("mars", "Moon"),
        link="https://g.example/v/1",
    )
    assert html == (
        "<p>One &lt;b&gt;line&lt;/b&gt;<br>next line, see "
        '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer" target="_blank">'
        "https://example.org/a?b=1&amp;c=2</a>.</p>"
        '<p><a href="https://g.example/tags/mars" class="mention hashtag" rel="tag">#<span>Mars</span></a>'
        " &amp; more</p>"
        '<p><a href="https://g.example/tags/moon" class="mention hashtag" rel="tag">'
        "#<span>Moon</span></a></p>"
        '<p><a href="https://g.example/v/1" rel="nofollow noopener noreferrer" target="_blank">'
        "https://g.example/v/1</a></p>"
    )
    assert render_html("x#notatag &#39; #123", tag) == "<p>x#notatag &amp;#39; #123</p>"


def test_private_addresses_are_refused_in_production(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    channel = ActivityPubChannel(
        "https://ground.example", "mission", "M", "", _pem(OUR_KEY), sessions, http_client=_client
    )
    with sessions() as session, session.begin():
        session.add(ApFollower(actor_id="http://127.0.0.1:9/u", inbox="https://127.0.0.1:9/inbox",
                               shared_inbox=None, follow_id=None, since=datetime.now(UTC)))  # fmt: skip

    async def scenario() -> None:
        await channel.publish(_post())  # refused, not failed: no retry would help
        with sessions() as session:
            delivery = session.scalars(select(ApDelivery)).one()
            assert delivery.state == "rejected"
            assert "non-public address" in (delivery.last_error or "")
        await channel.close()

    asyncio.run(scenario())


def test_replies_and_mentions_become_mentions(tmp_path: Path) -> None:
    """A signed reply to one of our notes, or a note mentioning our actor, reaches ``on_mention``."""
    sessions = _sessions(tmp_path)
    other_sessions = _sessions(tmp_path, "other.db")
    sock, base = _bind()
    other_sock, other_base = _bind()
    channel = _channel(base, sessions)
    other = ActivityPubChannel(
        other_base, "friend", "A friend", "", _pem(OTHER_KEY), other_sessions,
        http_client=_client, allow_private_network=True,
    )  # fmt: skip
    got: list[Any] = []
    channel.on_mention = got.append

    async def send(activity: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(activity).encode()
        headers = {"Content-Type": "application/activity+json"}
        headers.update(
            sign_request("POST", channel.inbox_url, headers, raw, other.key_id, OTHER_KEY, datetime.now(UTC))
        )
        async with _client() as client:
            return await client.post(channel.inbox_url, content=raw, headers=headers)

    def create(n: int, **note: Any) -> dict[str, Any]:
        obj = {"id": f"{other.actor_id}/notes/{n}", "type": "Note", "attributedTo": other.actor_id, **note}
        return {"id": f"{obj['id']}/activity", "type": "Create", "actor": other.actor_id, "object": obj}

    async def scenario() -> None:
        async with (
            _serve(Starlette(routes=channel.routes()), sock),
            _serve(Starlette(routes=other.routes()), other_sock),
        ):
            ours = channel.note_id("post-1")
            question = "<p><span>@proxima</span> Que mangez-vous&nbsp;?</p>"
            r = await send(create(1, inReplyTo=ours, content=question, contentMap={"fr": "..."}))
            assert r.status_code == 202
            mention = {"type": "Mention", "href": channel.actor_id}
            await send(create(2, tag=[mention], content="<p>Hello <b>ISS</b>!</p>"))
            await send(create(3, content="<p>not for us</p>"))
            await send(create(4, inReplyTo="https://elsewhere.example/notes/1", content="<p>nor this</p>"))
            forged = create(5, tag=[mention], content="spoofed")
            forged["object"]["attributedTo"] = "https://someone.else/users/x"
            await send(forged)
        await channel.close()
        await other.close()

    asyncio.run(scenario())
    assert [(m.origin_id.rsplit("/", 1)[1], m.text, m.lang) for m in got] == [
        ("1", "Que mangez-vous ?", "fr"),
        ("2", "Hello ISS !", None),
    ]
    assert all(m.author == other.actor_id for m in got)
