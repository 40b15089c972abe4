"""The Bluesky channel against a real (arroba-based) PDS on 127.0.0.1: records, facets, exactly once."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from atproto import AsyncClient, models
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from local_pds import LocalPDS, Record, local_pds
from proxima.errors import ChannelError
from proxima.ground.channels.atproto import (
    LIMITS,
    BlueskyChannel,
    bluesky_length,
    detect_facets,
    grapheme_count,
    record_key,
)
from proxima.ground.channels.base import Channel, MediaFile, Outgoing, Published

CREATED = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
FR = "Été à bord de l’ISS 🚀👩‍🚀 : la Lune se lève ! #Espace #café. Photos sur https://example.org/été?x=1."
EN = "Summer aboard the ISS 🚀: moonrise! #Space"


def png(width: int = 40, height: int = 30) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def outgoing(key: str = "post-1", **kw: object) -> Outgoing:
    fields: dict[str, object] = {
        "key": key, "author": "crew", "text": {"fr": FR, "en": EN}, "created": CREATED,
        "hashtags": ("Proxima",), "verify_url": "https://verify.example/p/1",
    }
    fields.update(kw)
    return Outgoing(**fields)  # type: ignore[arg-type]


def publish(pds: LocalPDS, *outs: Outgoing, password: str | None = None) -> list[Published | ChannelError]:
    """Publish each of ``outs`` in turn with one channel; a ChannelError is returned, not raised."""

    async def run() -> list[Published | ChannelError]:
        channel = BlueskyChannel(pds.url, pds.handle, password or pds.password, app_url="https://bsky.test")
        results: list[Published | ChannelError] = []
        try:
            for out in outs:
                try:
                    results.append(await channel.publish(out))
                except ChannelError as exc:
                    results.append(exc)
        finally:
            await channel.close()
        return results

    return asyncio.run(run())


def published(result: Published | ChannelError) -> Published:
    if isinstance(result, ChannelError):
        raise AssertionError(f"publish failed: {result}")
    return result


def failed(result: Published | ChannelError) -> ChannelError:
    if not isinstance(result, ChannelError):
        raise AssertionError(f"publish succeeded: {result}")
    return result


def by_uri(pds: LocalPDS) -> dict[str, Record]:
    return {r.uri: r for r in pds.records()}


def facet_texts(record: Record) -> list[tuple[str, str, str]]:
    """(kind, feature value, the text the byte range covers) of each facet of a record."""
    raw = record.value["text"].encode("utf-8")
    out = []
    for facet in record.value.get("facets", []):
        covered = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")
        (feature,) = facet["features"]
        kind = feature["$type"].rsplit("#", 1)[1]
        out.append((kind, feature.get("tag") or feature.get("uri"), covered))
    return out


@pytest.fixture
def pds() -> Iterator[LocalPDS]:
    with local_pds() as server:
        yield server


def test_channel_protocol_and_limits() -> None:
    channel: Channel = BlueskyChannel("http://127.0.0.1:9", "crew.test", "pw")
    assert channel.name == "bluesky"
    assert (channel.limits.max_chars, channel.limits.max_media, channel.limits.max_media_bytes) == (
        300, 4, 1_000_000)
    assert channel.limits.media_types == {"image/jpeg", "image/png", "image/webp"}
    assert channel.limits.max_alt_chars == 2000
    asyncio.run(channel.close())


def test_bilingual_post_with_image(pds: LocalPDS) -> None:
    image = png()
    alts = {"fr": "La Lune au-dessus de la Terre", "en": "The Moon"}
    media = MediaFile("moon.png", "image/png", image, alts)
    result = published(publish(pds, outgoing(media=(media,)))[0])

    records = by_uri(pds)
    assert len(records) == 2 and set(result.ids) == set(records)
    assert result.remote_id == result.ids[0]
    fr, en = (records[uri] for uri in result.ids)
    assert result.url == f"https://bsky.test/profile/{pds.handle}/post/{fr.rkey}"
    assert fr.value["langs"] == ["fr"] and en.value["langs"] == ["en"]
    assert fr.value["text"] == f"{FR}\n\n#Proxima\n\nhttps://verify.example/p/1"
    assert en.value["text"].startswith(EN)
    assert "reply" not in fr.value and "reply" not in en.value

    # facets: byte offsets land exactly on the hashtags and links, accents and emoji before them
    assert facet_texts(fr) == [
        ("tag", "Espace", "#Espace"),
        ("tag", "café", "#café"),
        ("link", "https://example.org/été?x=1", "https://example.org/été?x=1"),
        ("tag", "Proxima", "#Proxima"),
        ("link", "https://verify.example/p/1", "https://verify.example/p/1"),
    ]
    assert [f[0:2] for f in facet_texts(en)] == [("tag", "Space"), ("tag", "Proxima"),
                                                 ("link", "https://verify.example/p/1")]

    # the image, uploaded once per thread, with the alt text of the thread's language
    for record, alt in ((fr, "La Lune au-dessus de la Terre"), (en, "The Moon")):
        embed = record.value["embed"]
        assert embed["$type"] == "app.bsky.embed.images"
        (img,) = embed["images"]
        assert img["alt"] == alt
        assert img["aspectRatio"] == {"$type": "app.bsky.embed.defs#aspectRatio", "width": 40, "height": 30}
        assert img["image"]["mimeType"] == "image/png" and img["image"]["size"] == len(image)
        assert pds.blob(img["image"]["ref"]["$link"]) == ("image/png", image)

    # record keys: TIDs derived from (key, lang, index) and the creation time
    assert fr.rkey == record_key("post-1", "fr", 0, CREATED)
    assert en.rkey == record_key("post-1", "en", 0, CREATED)
    assert all(TID.match(r.rkey) for r in records.values())
    assert fr.value["createdAt"] == "2026-05-01T12:30:15.123456Z"


def test_long_text_is_a_thread_with_reply_refs(pds: LocalPDS) -> None:
    words = " ".join(f"mot{i} é🚀" for i in range(180))
    result = published(publish(pds, outgoing(text={"fr": words}))[0])
    records = by_uri(pds)
    thread = [records[uri] for uri in result.ids]
    assert len(thread) >= 4
    root = thread[0]
    assert "reply" not in root.value
    for i, (prev, post) in enumerate(itertools.pairwise(thread), start=2):
        reply = post.value["reply"]
        assert reply["root"] == {"$type": "com.atproto.repo.strongRef", "uri": root.uri, "cid": root.cid}
        assert reply["parent"] == {"$type": "com.atproto.repo.strongRef", "uri": prev.uri, "cid": prev.cid}
        assert f" ({i}/{len(thread)})" in post.value["text"]
    for post in thread:
        assert grapheme_count(post.value["text"]) <= 300
        assert post.value["langs"] == ["fr"]
    # keys sort in thread order, so the repo lists the thread in order
    assert [r.rkey for r in thread] == sorted(r.rkey for r in thread)
    assert " ".join(p.value["text"] for p in thread).count("mot179") == 1


def test_reply_to_an_existing_post(pds: LocalPDS) -> None:
    q = published(publish(pds, outgoing("q", text={"en": "Can you see Paris tonight?"}, hashtags=(),
                                        verify_url=None))[0])
    long_answer = "Yes! " + "Paris glows under us like a necklace of lights. " * 12
    answer = published(publish(pds, outgoing("a", text={"en": long_answer}, reply_to=q.remote_id))[0])
    follow_up = published(publish(pds, outgoing("f", text={"en": "Merci !"}, reply_to=answer.ids[1]))[0])

    records = by_uri(pds)
    q_ref = {"$type": "com.atproto.repo.strongRef", "uri": q.remote_id, "cid": records[q.remote_id].cid}
    first, second = records[answer.ids[0]], records[answer.ids[1]]
    assert first.value["reply"] == {"$type": "app.bsky.feed.post#replyRef", "root": q_ref, "parent": q_ref}
    assert second.value["reply"]["root"] == q_ref
    assert second.value["reply"]["parent"]["uri"] == first.uri
    # answering a reply keeps the conversation's root
    last = records[follow_up.remote_id].value["reply"]
    assert last["root"] == q_ref and last["parent"]["uri"] == second.uri

    missing = failed(publish(pds, outgoing("b", reply_to=q.remote_id[:-3] + "zzz"))[0])
    assert not missing.transient and "does not exist" in str(missing)
    bad = failed(publish(pds, outgoing("c", reply_to="https://bsky.app/post/1"))[0])
    assert not bad.transient and "at://" in str(bad)


def test_retry_with_the_same_key_writes_nothing_twice(pds: LocalPDS) -> None:
    media = MediaFile("moon.png", "image/png", png(), {"en": "The Moon"})
    out = outgoing(media=(media,))
    first, again = publish(pds, out, out)
    assert published(first) == published(again)
    assert len(pds.records()) == 2
    # the retry only looked: no record written, no image uploaded again
    assert pds.calls["com.atproto.repo.createRecord"] == 2
    assert pds.calls["com.atproto.repo.uploadBlob"] == 2

    # another channel (a restarted worker) finds the same records too
    (later,) = publish(pds, out)
    assert published(later) == published(first)
    assert len(pds.records()) == 2


def test_retry_after_a_failure_midway_completes_the_thread(pds: LocalPDS) -> None:
    out = outgoing(text={"en": "One small step. " * 40})
    pds.fail("com.atproto.repo.createRecord", 503, error="ServiceUnavailable", skip=1)
    error = failed(publish(pds, out)[0])
    assert error.transient and error.reason == 503 and error.channel == "bluesky"
    assert "create post 2 of the en thread of post-1" in str(error)
    (written,) = pds.records()

    result = published(publish(pds, out)[0])
    records = pds.records()
    assert len(records) == len(result.ids) >= 3
    assert result.remote_id == written.uri
    assert {r.uri for r in records} == set(result.ids)
    assert by_uri(pds)[result.ids[1]].value["reply"]["root"]["cid"] == written.cid


def test_a_lost_answer_still_publishes_once(pds: LocalPDS) -> None:
    pds.fail("com.atproto.repo.createRecord", 502, after=True)
    result = published(publish(pds, outgoing())[0])
    assert len(pds.records()) == 2 and {r.uri for r in pds.records()} == set(result.ids)


def test_a_taken_record_key_moves_to_the_next_clock_id(pds: LocalPDS) -> None:
    out = outgoing(text={"en": EN})
    taken = record_key("post-1", "en", 0, CREATED)

    async def squat() -> None:
        """Another client writes an unrelated post at the key this post would take."""
        client = AsyncClient(base_url=pds.url)
        await client.login(pds.handle, pds.password, fetch_bsky_profile=False)
        record = models.AppBskyFeedPost.Record(text="squatter", created_at="2026-01-01T00:00:00Z")
        await client.com.atproto.repo.create_record(models.ComAtprotoRepoCreateRecord.Data(
            repo=pds.did, collection="app.bsky.feed.post", rkey=taken, record=record))
        await client.request.close()

    asyncio.run(squat())
    first, again = publish(pds, out, out)
    assert published(first) == published(again)
    assert published(first).remote_id.endswith(record_key("post-1", "en", 0, CREATED, probe=1))
    assert len(pds.records()) == 2
    assert by_uri(pds)[published(first).remote_id].value["text"].startswith(EN)
    assert pds.repo_record("app.bsky.feed.post", taken)["text"] == "squatter"


@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (503, True), (400, False),
                                                    (413, False), (404, False)])
def test_http_errors_map_to_transient_or_permanent(pds: LocalPDS, status: int, transient: bool) -> None:
    pds.fail("com.atproto.repo.createRecord", status, error="Whatever")
    error = failed(publish(pds, outgoing(text={"en": EN}))[0])
    assert (error.transient, error.reason) == (transient, status)
    assert "create post 1 of the en thread of post-1" in str(error) and str(status) in str(error)
    assert pds.records() == []


def test_stopped_pds_is_transient(pds: LocalPDS) -> None:
    url = pds.url
    pds.stop()
    error = failed(publish(pds, outgoing())[0])
    assert error.transient and error.reason is None
    assert "log in as crew.proxima.test" in str(error) and f"cannot reach {url}" in str(error)


def test_pds_stopping_between_posts_is_transient() -> None:
    with local_pds() as server:
        async def run() -> ChannelError:
            channel = BlueskyChannel(server.url, server.handle, server.password)
            await channel.publish(outgoing("first", text={"en": EN}))
            server.stop()
            try:
                await channel.publish(outgoing("second", text={"en": EN}))
            except ChannelError as exc:
                return exc
            finally:
                await channel.close()
            raise AssertionError("publish succeeded with the PDS stopped")

        error = asyncio.run(run())
    assert error.transient and error.reason is None and "cannot reach" in str(error)


def test_wrong_password_is_permanent(pds: LocalPDS) -> None:
    error = failed(publish(pds, outgoing(), password="wrong")[0])
    assert not error.transient and error.reason == 401
    assert "log in as crew.proxima.test" in str(error) and "Invalid identifier or password" in str(error)
    assert pds.records() == []


def test_session_is_reused_refreshed_and_renewed() -> None:
    # an access token of a minute: the SDK refreshes it before each call (15 minutes ahead)
    with local_pds(access_ttl=60) as server:
        async def run() -> list[Published]:
            channel = BlueskyChannel(server.url, server.handle, server.password)
            try:
                one = await channel.publish(outgoing("one", text={"en": EN}))
                two = await channel.publish(outgoing("two", text={"en": EN}))
                server.revoke_sessions()  # refresh token refused too: log in again
                three = await channel.publish(outgoing("three", text={"en": EN}))
            finally:
                await channel.close()
            return [one, two, three]

        results = asyncio.run(run())
        assert len({r.remote_id for r in results}) == 3 and len(server.records()) == 3
        assert server.calls["com.atproto.server.createSession"] == 2
        assert server.calls["com.atproto.server.refreshSession"] >= 2


def test_media_outside_the_limits_is_refused_before_any_request(pds: LocalPDS) -> None:
    image = MediaFile("a.png", "image/png", png())
    gif = MediaFile("a.gif", "image/gif", b"GIF89a")
    huge = MediaFile("big.png", "image/png", b"\0" * 1_000_001)
    results = publish(pds, outgoing(media=(image,) * 5), outgoing(media=(gif,)), outgoing(media=(huge,)))
    errors = [failed(r) for r in results]
    assert all(not e.transient for e in errors)
    assert "5 images, at most 4" in str(errors[0])
    assert "a.gif is image/gif" in str(errors[1])
    assert "big.png has 1000001 bytes" in str(errors[2])
    assert sum(pds.calls.values()) == 0


def test_long_alt_text_is_cut_to_2000_graphemes(pds: LocalPDS) -> None:
    media = MediaFile("a.png", "image/png", png(), {"en": "é" * 2500})
    result = published(publish(pds, outgoing(text={"en": EN}, media=(media,)))[0])
    alt = by_uri(pds)[result.remote_id].value["embed"]["images"][0]["alt"]
    assert grapheme_count(alt) == 2000 and alt.endswith("…")


def test_record_keys_are_tids_distinct_and_deterministic() -> None:
    keys = {record_key("p", lang, i, CREATED) for lang in ("fr", "en", "de") for i in range(50)}
    assert len(keys) == 150 and all(TID.match(k) for k in keys)
    assert record_key("p", "fr", 3, CREATED) == record_key("p", "fr", 3, CREATED)
    assert record_key("p", "fr", 0, CREATED) < record_key("p", "fr", 1, CREATED)
    assert record_key("p", "fr", 0, CREATED) != record_key("q", "fr", 0, CREATED)
    assert record_key("p", "fr", 0, CREATED, probe=1) != record_key("p", "fr", 0, CREATED)
    with pytest.raises(ValueError, match="outside the range"):
        record_key("p", "fr", 0, datetime(1960, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("text", "count"), [
    ("abc", 3), ("e\u0301te\u0301", 3), ("🇫🇷🇨🇦", 2), ("👩‍🚀", 1), ("👨‍👩‍👧‍👦!", 2), ("👍🏽", 1),
    ("a\u200db", 2), ("\r\n", 1), ("❤️", 1), ("", 0), ("🇫", 1), ("\n\u0301", 2),
])
def test_grapheme_count(text: str, count: int) -> None:
    assert grapheme_count(text) == count


def test_length_counts_bytes_too() -> None:
    assert bluesky_length("a" * 300) == 300
    family = "👨‍👩‍👧‍👦"  # one grapheme, 25 bytes
    assert bluesky_length(family * 150) == 375  # 3750 bytes: over 3000
    assert LIMITS.count is bluesky_length


# -- facets over arbitrary text -----------------------------------------------------------------

TAG_WORD = st.builds(
    lambda head, tail: head + tail,
    st.characters(categories=("L",)),
    st.text(st.characters(categories=("L", "N")), max_size=12),
)
LINK = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
    st.text(st.characters(categories=("L", "N")), max_size=10),
)
FILLER = st.text(max_size=20)
STOPS = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(FILLER, TAG_WORD.map(lambda w: ("#", w)), LINK.map(lambda u: ("link", u))),
                max_size=8))
def test_facets_cover_exactly_the_tags_and_links(parts: list[object]) -> None:
    text = ""
    expected: list[tuple[int, str, str]] = []
    for part in parts:
        text += " "
        if isinstance(part, tuple):
            kind, value = part
            token = f"#{value}" if kind == "#" else value
            expected.append((len(text.encode("utf-8")), "tag" if kind == "#" else "link", value))
            text += token
        else:
            text += str(part)
        text += " "
    raw = text.encode("utf-8")
    facets = detect_facets(text)

    # every facet covers a whole word (or its head) that is exactly its tag or link
    last_end = 0
    for f in facets:
        assert last_end <= f.start < f.end <= len(raw)
        last_end = f.end
        covered = raw[f.start : f.end].decode("utf-8")  # lands on character boundaries
        before = raw[: f.start].decode("utf-8")
        assert before == "" or before[-1].isspace()
        after = raw[f.end :].decode("utf-8")
        if f.tag is not None:
            assert covered[0] in "#＃" and covered[1:] == f.tag and f.uri is None
            assert after == "" or after[0].isspace() or after[0] in STOPS or (
                unicodedata.category(after[0]).startswith("P"))
        else:
            assert covered == f.uri and covered.startswith(("http://", "https://"))

    # and every tag and link put in the text has its facet
    found = {(f.start, "tag" if f.tag is not None else "link", f.tag or f.uri) for f in facets}
    for start, kind, value in expected:
        assert (start, kind, value) in found
