"""The ground service's data layer: posts in, review with four eyes, calendar, deliveries, acks."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from ground_helpers import PASSWORD, T0, Crew, Ground, jpeg, make_ground
from proxima.errors import ChannelError, Conflict, EnvelopeError, Forbidden, InvalidInput, VerificationError
from proxima.ground.channels.base import Published
from proxima.ground.service import LEASE, GroundService
from proxima.ground.workflow import MAX_ATTEMPTS
from proxima.outreach.uplink import decode_ack

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def g(tmp_path: Path) -> Ground:
    return make_ground(tmp_path)


def _receive(g: Ground, *, media: dict[str, bytes] | None = None, **kw: object) -> str:
    post, signed, parts = g.crew.post(media=media, **kw)  # type: ignore[arg-type]
    g.service.receive_post(signed, source="dtn://iss/crew", now=T0)
    for p in parts:
        g.service.receive_media_part(p, now=T0)
    return post.id


def _acks(g: Ground) -> list[tuple[str, str]]:
    return [(a.post_id, a.state) for a in (decode_ack(p) for _, _, p in g.service.pending_uplinks())]


def test_post_with_photo_goes_to_review_once_every_part_is_in(g: Ground) -> None:
    photo = jpeg()
    post, signed, parts = g.crew.post(media={"earth.jpg": photo}, part_bytes=200)
    assert len(parts) > 2
    # Parts may arrive before their post, and in any order.
    assert g.service.receive_media_part(parts[-1], now=T0) == "partial"
    g.service.receive_post(signed, source="dtn://iss/crew", now=T0)
    assert g.service.show(post.id)["state"] == "received"
    for p in parts[:-1]:
        g.service.receive_media_part(p, now=T0)
    info = g.service.show(post.id)
    assert info["state"] == "in_review"
    assert info["media"][0]["state"] == "complete"
    assert g.service.media_path(info["media"][0]["sha256"]).read_bytes() == photo
    assert _acks(g) == [(post.id, "received"), (post.id, "in_review")]


def test_same_post_twice_is_one_post(g: Ground) -> None:
    post, signed, _ = g.crew.post()
    g.service.receive_post(signed, source=None, now=T0)
    g.service.receive_post(signed, source=None, now=T0 + timedelta(seconds=5))
    assert [p["id"] for p in g.service.list_posts()] == [post.id]
    assert len(g.service.show(post.id)["versions"]) == 1


def test_tampered_post_is_refused_with_reason(g: Ground) -> None:
    _, signed, _ = g.crew.post(text={"en": "Hello"})
    forged = bytearray(signed)
    i = forged.index(b"Hello")
    forged[i : i + 5] = b"Hallo"
    with pytest.raises(VerificationError, match="bad signature"):
        g.service.receive_post(bytes(forged), source=None, now=T0)
    assert g.service.list_posts() == []
    refusal = g.service.refusals()[0]
    assert refusal["failure"] == "bad_signature"


def test_unknown_signer_is_refused(g: Ground) -> None:
    stranger = Crew(name="mallory")
    _, signed, _ = stranger.post()
    with pytest.raises(VerificationError, match="unknown signer 'mallory'"):
        g.service.receive_post(signed, source=None, now=T0)


def test_garbage_post_is_refused(g: Ground) -> None:
    with pytest.raises(EnvelopeError):
        g.service.receive_post(b"\x83\x01\x02", source=None, now=T0)
    assert g.service.refusals()[0]["failure"] == "malformed"


def test_doctored_photo_is_refused_and_the_genuine_one_still_gets_through(g: Ground) -> None:
    photo = jpeg()
    post, signed, parts = g.crew.post(media={"selfie.jpg": photo}, part_bytes=100_000)
    g.service.receive_post(signed, source=None, now=T0)
    # Same claimed hash and size, other bytes: the fake space selfie.
    fake = bytearray(parts[0])
    fake[-20:] = bytes(20)
    assert g.service.receive_media_part(bytes(fake), now=T0) == "refused"
    assert g.service.show(post.id)["state"] == "received"
    reasons = [r["reason"] for r in g.service.refusals()]
    assert any("differs from the one the crew signed" in r for r in reasons)
    with pytest.raises(Conflict):
        g.service.approve(post.id, g.approver, now=T0)
    # The forged bytes were dropped: the real photo, arriving later, completes the post.
    assert g.service.receive_media_part(parts[0], now=T0) == "complete"
    assert g.service.show(post.id)["state"] == "in_review"


def test_a_part_lying_about_the_size_is_refused_and_recorded(g: Ground) -> None:
    post, signed, parts = g.crew.post(media={"a.jpg": jpeg()}, part_bytes=100_000)
    g.service.receive_post(signed, source=None, now=T0)
    ref = post.media[0]
    from proxima.outreach.post import MediaPart, encode_media_part

    liar = encode_media_part(MediaPart(post.id, ref.sha256, 0, ref.size + 10, b"x" * 10))
    with pytest.raises(EnvelopeError, match="the crew signed"):
        g.service.receive_media_part(liar, now=T0)
    assert g.service.refusals()[0]["failure"] == "size_mismatch"
    assert g.service.receive_media_part(parts[0], now=T0) == "complete"


def test_a_post_id_reused_with_other_contents_is_refused_and_recorded(g: Ground) -> None:
    post, signed, _ = g.crew.post()
    g.service.receive_post(signed, source=None, now=T0)
    from proxima.outreach.post import Post
    from proxima.outreach.provenance import encode_signed_post, sign_post

    other = Post(id=post.id, author="thomas", created_ms=post.created_ms, text={"en": "Something else"})
    with pytest.raises(VerificationError, match="already received"):
        g.service.receive_post(encode_signed_post(sign_post(other, g.crew.key)), source=None, now=T0)
    assert g.service.refusals()[0]["failure"] == "duplicate_id"


def test_four_eyes(g: Ground) -> None:
    pid = _receive(g)
    with pytest.raises(Forbidden, match="wrote this post"):
        g.service.approve(pid, g.crew_account, now=T0)
    with pytest.raises(Forbidden, match="needs the approver role"):
        g.service.approve(pid, g.editor, now=T0)
    g.service.edit(pid, g.approver, text={"fr": "Bonjour !", "en": "Hello!"}, note="typo", now=T0)
    with pytest.raises(Forbidden, match="edited this post"):
        g.service.approve(pid, g.approver, now=T0)
    # A later, smaller edit by someone else does not clear marc's own words.
    g.service.edit(pid, g.editor, hashtags=["Proxima", "AllezThomas"], now=T0)
    with pytest.raises(Forbidden, match="edited this post"):
        g.service.approve(pid, g.approver, now=T0)
    assert g.service.show(pid)["state"] == "in_review"


def test_the_signer_cannot_approve_a_post_signed_for_a_persona(g: Ground) -> None:
    post, _, _ = g.crew.post()
    from proxima.outreach.post import Post
    from proxima.outreach.provenance import encode_signed_post, sign_post

    as_philae = Post(
        id="philae-1", author="philae", created_ms=post.created_ms, text={"fr": "Je suis sur la comète"}
    )
    g.service.receive_post(
        encode_signed_post(sign_post(as_philae, g.crew.key, "thomas")), source=None, now=T0
    )
    with pytest.raises(Forbidden, match="wrote this post"):
        g.service.approve("philae-1", g.crew_account, now=T0)
    g.service.approve("philae-1", g.approver, now=T0)


def test_edit_keeps_the_crew_original_and_audits_changes(g: Ground) -> None:
    pid = _receive(g)
    g.service.edit(pid, g.editor, text={"fr": "Bonjour", "en": "Hello"}, now=T0)
    info = g.service.show(pid)
    assert info["versions"][0]["editor"] is None
    assert info["versions"][0]["text"]["en"] == "Hello from the ISS"
    assert info["versions"][1]["text"]["en"] == "Hello"
    edit = next(a for a in info["audit"] if a["action"] == "edit")
    assert edit["actor"] == "anne"
    assert edit["detail"]["changes"]["text"]["before"]["en"] == "Hello from the ISS"
    with pytest.raises(InvalidInput, match="changes nothing"):
        g.service.edit(pid, g.editor, text={"fr": "Bonjour", "en": "Hello"}, now=T0)
    with pytest.raises(InvalidInput, match="unknown channel 'myspace'"):
        g.service.edit(pid, g.editor, channels=["myspace"], now=T0)
    with pytest.raises(InvalidInput, match=r"text\[en\]"):
        g.service.edit(pid, g.editor, text={"en": " "}, now=T0)


def test_rejected_post_is_never_due(g: Ground) -> None:
    pid = _receive(g)
    at = T0 + timedelta(hours=1)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, at, now=T0)
    assert len(g.service.show(pid)["deliveries"]) == 2  # booked on both channels
    g.service.reject(pid, g.editor, "off message\r\nsorry", now=T0)
    assert g.service.show(pid)["deliveries"] == []
    with pytest.raises(Conflict, match="rejected"):
        g.service.approve(pid, g.approver, now=T0)
    assert g.service.due(T0 + timedelta(days=30)) == []
    assert _acks(g)[-1] == (pid, "rejected")
    assert decode_ack(g.service.pending_uplinks()[-1][2]).note == "off message\nsorry"
    with pytest.raises(InvalidInput, match="at most 2000"):
        g.service.request_changes(_receive(g), g.editor, "x" * 2001, now=T0)


def test_approval_must_come_before_the_scheduled_time(g: Ground) -> None:
    pid = _receive(g)
    at = T0 + timedelta(hours=1)
    g.service.schedule(pid, g.editor, at, now=T0)
    assert g.service.show(pid)["state"] == "in_review"
    with pytest.raises(Conflict, match="before that time"):
        g.service.approve(pid, g.approver, now=at)
    with pytest.raises(InvalidInput, match="300 s ahead"):  # the calendar rules hold at approval too
        g.service.approve(pid, g.approver, now=at - timedelta(minutes=1))
    g.service.approve(pid, g.approver, now=at - timedelta(minutes=10))
    assert g.service.show(pid)["state"] == "scheduled"


def test_schedule_checks(g: Ground) -> None:
    first = _receive(g)
    second = _receive(g)
    with pytest.raises(InvalidInput, match="in the past"):
        g.service.schedule(first, g.editor, T0 - timedelta(minutes=1), now=T0)
    with pytest.raises(InvalidInput, match="at least 300 s ahead"):
        g.service.schedule(first, g.editor, T0 + timedelta(minutes=2), now=T0)
    g.service.schedule(first, g.editor, T0 + timedelta(hours=1), now=T0)
    with pytest.raises(Conflict, match=f"post {first} is scheduled"):
        g.service.schedule(second, g.editor, T0 + timedelta(hours=1, minutes=5), now=T0)
    g.service.schedule(second, g.editor, T0 + timedelta(hours=2), now=T0)


def test_publication_per_channel_then_published_with_links(g: Ground) -> None:
    pid = _receive(g, media={"earth.jpg": jpeg()})
    at = T0 + timedelta(hours=1)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, at, now=T0)
    assert g.service.due(at - timedelta(seconds=1)) == []
    due = g.service.due(at)
    assert sorted(d.channel for d in due) == ["atom", "mastodon"]
    out = due[0].outgoing
    assert out.key == pid
    assert out.verify_url is not None and out.verify_url.startswith("https://proxima.example/verify/")
    assert out.media[0].alt["fr"] == "La Terre"
    # Leased: not handed out twice while being published.
    assert g.service.due(at) == []
    for d in due:
        g.service.published(
            d.id,
            Published(f"id-{d.channel}", f"https://{d.channel}.example/{pid}"),
            attempt=d.attempt,
            now=at,
        )
    info = g.service.show(pid)
    assert info["state"] == "published"
    last = decode_ack(g.service.pending_uplinks()[-1][2])
    assert last.state == "published"
    assert dict(last.links) == {
        "atom": f"https://atom.example/{pid}",
        "mastodon": f"https://mastodon.example/{pid}",
    }


def test_transient_failures_retry_with_backoff_then_succeed_once(g: Ground) -> None:
    pid = _receive(g, channels=("atom",))
    at = T0 + timedelta(hours=1)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, at, now=T0)
    (d,) = g.service.due(at)
    g.service.failed(
        d.id, ChannelError("connection refused", channel="atom", transient=True), attempt=d.attempt, now=at
    )
    info = g.service.show(pid)["deliveries"][0]
    assert info["state"] == "retrying"
    assert g.service.due(at + timedelta(seconds=29)) == []
    (again,) = g.service.due(at + timedelta(seconds=40))
    assert again.attempt == 2 and again.outgoing.key == pid
    g.service.published(again.id, Published("1", "https://atom.example/1"), attempt=again.attempt, now=at)
    assert g.service.show(pid)["state"] == "published"
    assert g.service.due(at + timedelta(days=1)) == []


def test_permanent_failure_and_giving_up(g: Ground) -> None:
    pid = _receive(g, channels=("atom",))
    at = T0 + timedelta(hours=1)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, at, now=T0)
    now = at
    for _ in range(MAX_ATTEMPTS):
        (d,) = g.service.due(now)
        g.service.failed(
            d.id, ChannelError("503", channel="atom", transient=True, status=503), attempt=d.attempt, now=now
        )
        now += timedelta(hours=2)
    info = g.service.show(pid)
    assert info["state"] == "failed"
    assert info["deliveries"][0]["attempts"] == MAX_ATTEMPTS
    # Scheduled again, the failed channel is retried from scratch.
    g.service.schedule(pid, g.editor, now + timedelta(hours=1), now=now)
    (d,) = g.service.due(now + timedelta(hours=1))
    g.service.failed(
        d.id, ChannelError("401", channel="atom", transient=False, status=401), attempt=d.attempt, now=now
    )
    assert g.service.show(pid)["state"] == "failed"


def test_a_publisher_that_died_is_retried_after_its_lease(g: Ground) -> None:
    pid = _receive(g, channels=("atom",))
    at = T0 + timedelta(hours=1)
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, at, now=T0)
    (d,) = g.service.due(at)
    # The process dies here; a new one over the same database:
    fresh = GroundService(
        g.service.sessions,
        keyring=g.service.keyring,
        media_dir=g.service.media_dir,
        base_url=g.service.base_url,
        channels=g.service.channels,
    )
    assert fresh.due(at + LEASE - timedelta(seconds=1)) == []
    (again,) = fresh.due(at + LEASE)
    assert again.id == d.id and again.outgoing.key == d.outgoing.key
    # The first publisher comes back late: its report is ignored, the newer try stands.
    late = ChannelError("timed out", channel="atom", transient=True)
    assert g.service.failed(d.id, late, attempt=d.attempt, now=at + LEASE) is False
    assert fresh.published(
        again.id, Published("1", "javascript:alert(1)"), attempt=again.attempt, now=at + LEASE
    )
    info = fresh.show(pid)
    assert info["state"] == "published"
    assert info["deliveries"][0]["url"] is None  # not a link the public may follow


def test_free_calendar_slot(g: Ground) -> None:
    g.service.add_slot(g.editor, channel="atom", time_of_day="09:30", tz="Europe/Paris")
    pid = _receive(g, channels=("atom",))
    g.service.approve(pid, g.approver, now=T0)
    g.service.schedule(pid, g.editor, None, now=T0)
    info = g.service.show(pid)
    assert info["scheduled_at"] == "2026-12-01T08:30:00+00:00"  # 09:30 in Paris, winter time
    other = _receive(g, channels=("atom",))
    g.service.schedule(other, g.editor, None, now=T0)
    assert g.service.show(other)["scheduled_at"] == "2026-12-02T08:30:00+00:00"
    view = g.service.calendar_view(T0, T0 + timedelta(days=3))
    kinds = [(i["kind"], i["at"][:10]) for i in view]
    assert (
        ("post", "2026-12-01") in kinds
        and ("post", "2026-12-02") in kinds
        and ("slot", "2026-12-03") in kinds
    )
    with pytest.raises(InvalidInput, match="time zone"):
        g.service.add_slot(g.editor, channel="atom", time_of_day="09:30", tz="Mars/Olympus")
    with pytest.raises(InvalidInput, match="HH:MM"):
        g.service.add_slot(g.editor, channel="atom", time_of_day="25:00", tz="UTC")


def test_an_answer_replies_where_the_question_came_from(g: Ground) -> None:
    from proxima.ground import questions
    from proxima.ground.ratelimit import RateLimiter

    limiter = RateLimiter(rate_per_s=1, burst=5, max_clients=10)
    with g.service.sessions.begin() as s:
        q = questions.submit_question(
            s,
            limiter,
            client="c1",
            text="What do you eat?",
            lang="en",
            origin="mastodon",
            origin_id="109",
            now=T0,
        )
        qid = q.id
        questions.moderate(s, qid, approve=True, moderator=g.editor, now=T0)
    g.service.select_questions([qid], g.editor, destination="ipn:1.20", now=T0)
    (uid, dest, _) = g.service.pending_uplinks()[-1]
    assert dest == "ipn:1.20"
    g.service.uplink_sent([uid], now=T0)
    pid = _receive(g, reply_to=qid)
    with g.service.sessions() as s:
        row = questions.get_question(s, qid)
        assert (row.state, row.answer_post_id) == ("answered", pid)
    assert g.service.outgoing(pid, "mastodon").reply_to == "109"
    assert g.service.outgoing(pid, "atom").reply_to is None


def test_a_fediverse_reply_becomes_a_question_answered_in_the_same_thread(tmp_path: Path) -> None:
    from proxima.ground.channels.activitypub import Mention
    from proxima.ground.config import ChannelConfig, GroundConfig
    from proxima.ground.runner import GroundRunner
    from proxima.runtime.keys import save_public_key

    crew = Crew()
    (tmp_path / "keys").mkdir()
    save_public_key(crew.key.public_key(), tmp_path / "keys" / "thomas.pub")
    config = GroundConfig(
        database=f"sqlite:///{tmp_path / 'g.db'}",
        media_dir=tmp_path / "media",
        keyring=tmp_path / "keys",
        base_url="https://proxima.example",
        channels=(
            ChannelConfig("activitypub", "activitypub", {"key_file": str(tmp_path / "actor.pem")}),
            ChannelConfig("atom", "atom", {}),
        ),
    )
    runner = GroundRunner(config, clock=lambda: T0)
    svc = runner.open()
    note = "https://mastodon.example/users/lea/statuses/42"
    channel = runner.channels["activitypub"]
    channel.on_mention(
        Mention(
            origin_id=note, author="https://mastodon.example/users/lea", text="Que mangez-vous ?", lang="fr"
        )
    )  # type: ignore[attr-defined]
    from proxima.ground import accounts, questions

    with svc.sessions.begin() as s:
        (q,) = questions.list_questions(s)
        assert (q.origin, q.origin_id, q.lang) == ("activitypub", note, "fr")
        qid = q.id
        editor = accounts.create_account(s, "anne", "Anne", "agency", ["editor"], PASSWORD, now=T0)
        questions.moderate(s, qid, approve=True, moderator=editor, now=T0)
    svc.select_questions([qid], editor, destination="ipn:1.20", now=T0)
    svc.uplink_sent([u for u, _, _ in svc.pending_uplinks()], now=T0)
    _, signed, _ = crew.post(text={"fr": "Des plats lyophilisés."}, reply_to=qid)
    post = svc.receive_post(signed, source=None, now=T0)
    assert svc.outgoing(post.id, "activitypub").reply_to == note
    assert svc.outgoing(post.id, "atom").reply_to is None


def test_the_team_drafts_posts_for_a_persona_and_another_person_approves(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from proxima.ground import accounts
    from proxima.outreach.provenance import decode_signed_post, verify_post

    g = make_ground(tmp_path)
    esa = Ed25519PrivateKey.generate()
    g.service.signing_key = ("esa", esa)
    g.service.keyring["esa"] = esa.public_key()
    with pytest.raises(InvalidInput, match="persona"):
        g.service.draft(g.approver, author="esa", text={"fr": "Demain, sortie extravéhiculaire"}, now=T0)
    with g.service.sessions.begin() as s:
        accounts.create_account(s, "esa", "ESA", "agency", [], None, now=T0)
    row = g.service.draft(
        g.approver,
        author="esa",
        text={"fr": "Demain, sortie extravéhiculaire", "en": "Spacewalk tomorrow"},
        hashtags=["Proxima"],
        campaign="#Proxima",
        channels=["atom"],
        now=T0,
    )
    info = g.service.show(row.id)
    assert info["state"] == "in_review" and info["author"] == "esa" and info["signer"] == "esa"
    assert info["versions"][0]["editor"] == "marc"
    assert verify_post(decode_signed_post(row.signed), g.service.keyring).signer == "esa"
    with pytest.raises(Forbidden, match="edited this post"):
        g.service.approve(row.id, g.approver, now=T0)
    g.service.approve(row.id, g.crew_account, now=T0)  # someone else: thomas holds the approver role
    g.service.schedule(row.id, g.editor, T0 + timedelta(days=1), now=T0)
    other = _receive(g, channels=("atom",))
    g.service.schedule(other, g.editor, T0 + timedelta(days=2), now=T0)
    view = g.service.calendar_view(T0, T0 + timedelta(days=3), campaign="Proxima")
    assert [i["post"] for i in view if i["kind"] == "post"] == [
        row.id,
        other,
    ]  # the crew's posts say #Proxima too
    assert g.service.calendar_view(T0, T0 + timedelta(days=3), campaign="AllezThomas") == []
    assert {p["id"] for p in g.service.list_posts(campaign="Proxima")} == {row.id, other}
    assert g.service.list_posts(campaign="AllezThomas") == []
    with pytest.raises(InvalidInput):
        g.service.draft(g.editor, author="esa", text={"fr": ""}, now=T0)
