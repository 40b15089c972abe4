"""The ground service's data layer: posts in, review, calendar, deliveries out, all stored.

:class:`GroundService` is what the HTTP API, the command line and the DTN endpoint share. Every
method takes the current time as ``now`` (the runtime reads the clock, tests pass any time) and
commits before returning, so a service killed between two calls loses nothing it acknowledged.

What comes down from the station: signed posts (:mod:`proxima.outreach.provenance`) and media
parts (:mod:`proxima.outreach.post`), in any order. A post whose signature fails is refused and
the refusal kept with its reason; media bytes are assembled in files by SHA-256 and checked
against the signed hash when complete (a doctored image is refused with both hashes). A post goes
to review once all its media are there.

What goes up: acknowledgements (:mod:`proxima.outreach.uplink`) at each step the crew cares
about, queued in the ``uplink`` table until the DTN endpoint hands them to the node.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select, update

from proxima.errors import (
    ChannelError,
    Conflict,
    EnvelopeError,
    Incomplete,
    InvalidInput,
    NotFound,
    PostError,
    VerificationError,
)
from proxima.ground import accounts, calendar, questions, workflow
from proxima.ground.accounts import Account, Role, require
from proxima.ground.channels.base import MediaFile, Outgoing
from proxima.ground.models import (
    AuditEntry,
    Blob,
    Delivery,
    MediaFileRow,
    PostRow,
    PostVersion,
    Refusal,
    Slot,
    Uplink,
)
from proxima.ground.workflow import Action, DeliveryState, PostState
from proxima.outreach.post import (
    MAX_HASHTAGS,
    MAX_TEXT_CHARS,
    MediaPart,
    Post,
    decode_media_part,
    language_tag,
)
from proxima.outreach.provenance import (
    decode_signed_post,
    encode_signed_post,
    sign_post,
    verification_link,
    verify_media,
    verify_post,
)
from proxima.outreach.uplink import MAX_NOTE_CHARS, Ack, decode_question, encode_ack

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from sqlalchemy.orm import Session, sessionmaker

    from proxima.ground.channels.base import Limits, Published

__all__ = ["CREW", "DTN_EPOCH", "DueDelivery", "GroundService"]

DTN_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
CREW: Final = "crew"
"""The audit log's actor for what the station sent."""
LEASE: Final = timedelta(minutes=5)
"""A delivery being published is retried after this long if its publisher never came back (crash)."""


def dtn_time(ms: int) -> datetime:
    """A DTN time (milliseconds since 2000-01-01 UTC) as a datetime."""
    return DTN_EPOCH + timedelta(milliseconds=ms)


def dtn_ms(when: datetime) -> int:
    """A datetime as DTN milliseconds."""
    return int((when - DTN_EPOCH) / timedelta(milliseconds=1))


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery whose time has come: publish ``outgoing`` on ``channel``, then report back."""

    id: int
    post_id: str
    channel: str
    attempt: int
    outgoing: Outgoing


def _note(text: str, field: str) -> str:
    """A note or reason for the crew: line breaks normalised, no control characters, not too long."""
    if not isinstance(text, str):
        raise InvalidInput("must be text", field=field)
    clean = "".join(
        ch for ch in text.replace("\r\n", "\n").replace("\r", "\n") if ch in "\n\t" or ch.isprintable()
    )
    clean = clean.strip()
    if len(clean) > MAX_NOTE_CHARS:
        raise InvalidInput(f"{len(clean)} characters, at most {MAX_NOTE_CHARS}", field=field)
    return clean


def _public_url(url: str | None) -> str | None:
    """A channel's link if it is one the public can follow (http or https, or at://), else None."""
    if not isinstance(url, str) or len(url) > 2048 or any(ch.isspace() for ch in url):
        return None
    return url if url.startswith(("https://", "http://", "at://")) else None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _merge(ranges: list[list[int]], start: int, end: int) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted([*ranges, [start, end]]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


class GroundService:
    """Posts, review, calendar and deliveries over one database and one media directory."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        keyring: Mapping[str, Ed25519PublicKey],
        media_dir: str | os.PathLike[str],
        base_url: str,
        channels: Mapping[str, Limits],
        default_channels: Sequence[str] | None = None,
        signing_key: tuple[str, Ed25519PrivateKey] | None = None,
    ) -> None:
        self.sessions = sessions
        self.signing_key = signing_key
        self.keyring = dict(keyring)
        self.media_dir = Path(media_dir)
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/")
        self.channels = dict(channels)
        self.default_channels = list(default_channels if default_channels is not None else channels)

    # ---------------------------------------------------------------- what the team writes

    def draft(
        self,
        actor: Account,
        *,
        author: str,
        text: Mapping[str, str],
        now: datetime,
        hashtags: Sequence[str] = (),
        campaign: str | None = None,
        channels: Sequence[str] | None = None,
    ) -> PostRow:
        """A post the team prepares in advance for a persona (the agency, Philae...), signed by the
        ground's own key so it verifies like the crew's; it goes to review like any other, and its
        drafter counts as its editor, so someone else must approve it."""
        require(actor, Role.EDITOR)
        if self.signing_key is None:
            raise Conflict("this ground service has no signing key: set signing_key in its configuration")
        name, key = self.signing_key
        with self.sessions() as s:
            persona = s.scalar(select(accounts.Account).where(accounts.Account.handle == author))
            if persona is None or persona.kind not in (
                accounts.AccountKind.AGENCY,
                accounts.AccountKind.ROBOT,
            ):
                raise InvalidInput(
                    f"{author!r} is not an agency or robot persona of this service", field="author"
                )
        chosen = self.default_channels if channels is None else self._check_channels(channels)
        try:
            post = Post(
                id=f"team-{uuid.uuid4()}",
                author=author,
                created_ms=dtn_ms(now),
                text=self._check_text(text),
                hashtags=self._check_tags(hashtags),
                campaign=campaign,
                channels=list(chosen),
            )
        except PostError as exc:
            raise InvalidInput(str(exc), field=exc.field) from exc
        row = self.receive_post(encode_signed_post(sign_post(post, key, name)), source=None, now=now)
        with self.sessions.begin() as s:
            stored = self._get(s, row.id)
            stored.versions[0].editor = actor.handle
            self._audit(s, row.id, actor.handle, "drafted", None, None, now, persona=author)
            return stored

    # ---------------------------------------------------------------- what comes down

    def receive_post(self, data: bytes, *, source: str | None, now: datetime) -> PostRow:
        """Take a signed post from the station: verify it, store it, acknowledge it.

        A post already received is answered with the stored one (bundles may come twice). A post
        that fails verification raises :class:`VerificationError` or :class:`EnvelopeError` after
        its refusal is stored.
        """
        try:
            signed = decode_signed_post(data)
            verified = verify_post(signed, self.keyring)
        except Incomplete as exc:  # a bundle payload is whole: cut short means malformed
            self._refuse("post", None, "malformed", f"signed post cut short: {exc}", now)
            raise EnvelopeError(f"cut short: {exc}", field="signed post") from exc
        except (EnvelopeError, VerificationError) as exc:
            failure = getattr(exc, "failure", "malformed")
            self._refuse("post", None, failure, str(exc), now)
            raise
        post = verified.post
        with self.sessions.begin() as s:
            existing = s.get(PostRow, post.id)
            if existing is not None and existing.code == verified.code:
                return existing
            clash = None if existing is None else existing.code
        if clash is not None:
            reason = f"post id {post.id} was already received with other contents ({clash})"
            self._refuse("post", post.id, "duplicate_id", reason, now)
            raise VerificationError(reason, failure="duplicate_id")
        with self.sessions.begin() as s:
            unknown = [c for c in post.channels if c not in self.channels]
            channels = [c for c in post.channels if c in self.channels]
            if not post.channels:
                channels = list(self.default_channels)
            row = PostRow(
                id=post.id,
                author=post.author,
                signer=verified.signer,
                key_id=verified.key_id,
                code=verified.code,
                signed=bytes(data),
                created_at=dtn_time(post.created_ms),
                received_at=now,
                state=PostState.RECEIVED.value,
                campaign=post.campaign,
                reply_to=post.reply_to,
                version=1,
                source=source,
            )
            row.versions.append(
                PostVersion(
                    number=1,
                    text=dict(post.text),
                    hashtags=list(post.hashtags),
                    channels=channels,
                    alt={m.name: dict(m.alt) for m in post.media},
                    editor=None,
                    created_at=now,
                    note=f"unknown channels dropped: {', '.join(unknown)}" if unknown else None,
                )
            )
            for i, m in enumerate(post.media):
                row.media.append(
                    MediaFileRow(
                        position=i, name=m.name, content_type=m.content_type, size=m.size, sha256=m.sha256_hex
                    )
                )
            s.add(row)
            self._audit(s, post.id, CREW, "received", None, PostState.RECEIVED, now, signer=verified.signer)
            self._ack(s, row, "received", now)
            if post.reply_to is not None:
                self._answer(s, post.reply_to, post.id, now)
            self._maybe_complete(s, row, now)
            return row

    def _answer(self, s: Session, question_id: str, post_id: str, now: datetime) -> None:
        try:
            questions.attach_answer(s, question_id, post_id, now=now)
        except (NotFound, Conflict, InvalidInput) as exc:
            self._audit(
                s, post_id, CREW, "answer_unlinked", None, None, now, question=question_id, reason=str(exc)
            )

    def receive_media_part(self, data: bytes, *, now: datetime) -> str:
        """Take one media part; returns the blob's state (``partial``, ``complete`` or ``refused``)."""
        try:
            part = decode_media_part(data)
        except Incomplete as exc:
            self._refuse("media", None, "malformed", f"media part cut short: {exc}", now)
            raise EnvelopeError(f"cut short: {exc}", field="media part") from exc
        except EnvelopeError as exc:
            self._refuse("media", None, "malformed", str(exc), now)
            raise
        digest = part.sha256.hex()
        refusals: list[tuple[str, str | None, str, str]] = []
        try:
            with self.sessions.begin() as s:
                state = self._take_part(s, part, digest, refusals, now)
        finally:
            for what, post_id, failure, reason in refusals:
                self._refuse(what, post_id, failure, reason, now)
        return state

    def _take_part(
        self,
        s: Session,
        part: MediaPart,
        digest: str,
        refusals: list[tuple[str, str | None, str, str]],
        now: datetime,
    ) -> str:
        signed_size = s.scalar(select(MediaFileRow.size).where(MediaFileRow.sha256 == digest).limit(1))
        if signed_size is not None and signed_size != part.total_size:
            reason = f"media {digest}: a part says {part.total_size} bytes, the crew signed {signed_size}"
            refusals.append(("media", part.post_id, "size_mismatch", reason))
            raise EnvelopeError(reason, field="total_size")
        blob = s.get(Blob, digest)
        if blob is None:
            blob = Blob(sha256=digest, size=part.total_size, ranges=[], state="partial", updated_at=now)
            s.add(blob)
        elif blob.size != part.total_size:
            if signed_size is None:
                reason = f"media {digest}: a part says {part.total_size} bytes, earlier parts {blob.size}"
                refusals.append(("media", part.post_id, "size_mismatch", reason))
                raise EnvelopeError(reason, field="total_size")
            # Earlier parts lied about the size before the signed post said it: start again.
            blob.size, blob.ranges, blob.state = signed_size, [], "partial"
            self._part_path(digest).unlink(missing_ok=True)
        if blob.state == "complete" or self._recover(blob):
            self._complete_posts(s, digest, now)
            return "complete"
        path = self._part_path(digest)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, part.data, part.offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        blob.ranges = _merge([list(r) for r in blob.ranges], part.offset, part.offset + len(part.data))
        blob.updated_at = now
        if blob.ranges != [[0, blob.size]]:
            return "partial"
        failure = self._finish_blob(s, blob)
        if failure is not None:
            for post_id, reason in failure:
                refusals.append(("media", post_id, "media_mismatch", reason))
            return "refused"
        self._complete_posts(s, digest, now)
        return "complete"

    def _recover(self, blob: Blob) -> bool:
        """A complete file already in place (the process died after renaming it, before committing)."""
        final = self.media_path(blob.sha256)
        if not final.exists() or _sha256_file(final) != blob.sha256:
            return False
        blob.state, blob.ranges = "complete", [[0, blob.size]]
        return True

    def _complete_posts(self, s: Session, digest: str, now: datetime) -> None:
        for row in s.scalars(select(PostRow).join(MediaFileRow).where(MediaFileRow.sha256 == digest)).all():
            self._maybe_complete(s, row, now)

    def _part_path(self, digest: str) -> Path:
        return self.media_dir / f"{digest}.part"

    def media_path(self, digest: str) -> Path:
        """Where a complete media file is kept."""
        return self.media_dir / digest

    def _finish_blob(self, s: Session, blob: Blob) -> list[tuple[str | None, str]] | None:
        """Check a complete file against its hash: keep it, or drop the bytes and say why.

        Bytes that do not match are thrown away and the file starts again from nothing, so a
        forged or damaged part never blocks the genuine file that follows it.
        """
        part = self._part_path(blob.sha256)
        got = _sha256_file(part)
        if got == blob.sha256:
            part.replace(self.media_path(blob.sha256))
            blob.state = "complete"
            return None
        data = part.read_bytes()
        part.unlink()
        blob.ranges, blob.state = [], "partial"
        rows = s.scalars(select(MediaFileRow).where(MediaFileRow.sha256 == blob.sha256)).all()
        out: list[tuple[str | None, str]] = []
        for m in rows:
            reason = f"media {blob.sha256}: the bytes received hash to {got}"
            try:
                verify_media(data, verify_post(decode_signed_post(m.post.signed), self.keyring), m.name)
            except VerificationError as exc:
                reason = str(exc)
            out.append((m.post_id, reason))
        return out or [(None, f"media {blob.sha256}: the bytes received hash to {got}")]

    def _maybe_complete(self, s: Session, row: PostRow, now: datetime) -> None:
        if row.state != PostState.RECEIVED.value:
            return
        for m in row.media:
            blob = s.get(Blob, m.sha256)
            if blob is None or blob.state != "complete":
                return
        self._step(s, row, Action.MEDIA_COMPLETE, CREW, now)

    def _refuse(self, what: str, post_id: str | None, failure: str, reason: str, now: datetime) -> None:
        with self.sessions.begin() as s:
            s.add(Refusal(at=now, what=what, post_id=post_id, failure=failure, reason=reason))

    # ---------------------------------------------------------------- review

    def _get(self, s: Session, post_id: str) -> PostRow:
        row = s.get(PostRow, post_id)
        if row is None:
            raise NotFound(f"no post {post_id!r}")
        return row

    def _step(
        self, s: Session, row: PostRow, action: Action, actor: str, now: datetime, **detail: Any
    ) -> PostState:
        before = PostState(row.state)
        after = workflow.next_state(before, action)
        row.state = after.value
        self._audit(s, row.id, actor, action.value, before, after, now, **detail)
        if after is not before or action in (Action.SCHEDULE, Action.EDIT):
            self._ack(s, row, after.value, now, note=detail.get("reason") or detail.get("note"))
        return after

    def _audit(
        self,
        s: Session,
        post_id: str | None,
        actor: str,
        action: str,
        before: PostState | None,
        after: PostState | None,
        now: datetime,
        **detail: Any,
    ) -> None:
        s.add(
            AuditEntry(
                post_id=post_id,
                at=now,
                actor=actor,
                action=action,
                before=None if before is None else before.value,
                after=None if after is None else after.value,
                detail={k: v for k, v in detail.items() if v is not None},
            )
        )

    def _ack(self, s: Session, row: PostRow, state: str, now: datetime, *, note: str | None = None) -> None:
        if row.source is None:
            return
        links = tuple(
            (d.channel, d.url) for d in row.deliveries if d.state == DeliveryState.PUBLISHED.value and d.url
        )
        short = None if note is None else note[:MAX_NOTE_CHARS]
        try:
            ack = Ack(post_id=row.id, state=state, at_ms=dtn_ms(now), links=links, note=short)
        except PostError:  # a link the crew's format cannot carry must not block the step
            ack = Ack(post_id=row.id, state=state, at_ms=dtn_ms(now), note=short)
        s.add(Uplink(destination=row.source, kind="ack", payload=encode_ack(ack), created_at=now))

    def edit(
        self,
        post_id: str,
        actor: Account,
        *,
        now: datetime,
        text: Mapping[str, str] | None = None,
        hashtags: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
        alt: Mapping[str, Mapping[str, str]] | None = None,
        note: str | None = None,
    ) -> PostVersion:
        """Make a new version with the given changes (the crew's original is kept as version 1)."""
        require(actor, Role.EDITOR)
        note = None if note is None else _note(note, "note") or None
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            self._no_deliveries_started(row, "edit")
            current = row.versions[-1]
            new_text = dict(current.text) if text is None else self._check_text(text)
            new_tags = list(current.hashtags) if hashtags is None else self._check_tags(hashtags)
            new_channels = list(current.channels) if channels is None else self._check_channels(channels)
            new_alt = {k: dict(v) for k, v in current.alt.items()}
            for name, per_lang in (alt or {}).items():
                if name not in new_alt:
                    raise InvalidInput(f"the post has no media file {name!r}", field="alt")
                new_alt[name] = self._check_text(per_lang, field=f"alt[{name}]")
            changes = {
                key: {"before": old, "after": new}
                for key, old, new in (
                    ("text", current.text, new_text),
                    ("hashtags", current.hashtags, new_tags),
                    ("channels", current.channels, new_channels),
                    ("alt", current.alt, new_alt),
                )
                if old != new
            }
            if not changes:
                raise InvalidInput("the edit changes nothing", field="edit")
            version = PostVersion(
                number=current.number + 1,
                text=new_text,
                hashtags=new_tags,
                channels=new_channels,
                alt=new_alt,
                editor=actor.handle,
                created_at=now,
                note=note,
            )
            row.versions.append(version)
            row.version = version.number
            row.approved_by = row.approved_at = None
            if row.state == PostState.SCHEDULED.value:
                self._drop_deliveries(s, row)
            self._step(
                s, row, Action.EDIT, actor.handle, now, version=version.number, changes=changes, note=note
            )
            return version

    def _check_text(self, text: Mapping[str, str], *, field: str = "text") -> dict[str, str]:
        if not isinstance(text, dict) or not text:
            raise InvalidInput('give the text per language, e.g. {"fr": "...", "en": "..."}', field=field)
        out: dict[str, str] = {}
        for lang, value in text.items():
            try:
                tag = language_tag(lang, f"{field}[{lang}]")
            except PostError as exc:
                raise InvalidInput(str(exc)) from exc
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput("must be non-empty text", field=f"{field}[{lang}]")
            if len(value) > MAX_TEXT_CHARS:
                raise InvalidInput(
                    f"{len(value)} characters, at most {MAX_TEXT_CHARS}", field=f"{field}[{lang}]"
                )
            out[tag] = value
        return out

    def _check_tags(self, tags: Sequence[str]) -> list[str]:
        if isinstance(tags, str) or len(tags) > MAX_HASHTAGS:
            raise InvalidInput(f"must be a list of at most {MAX_HASHTAGS} hashtags", field="hashtags")
        try:
            probe = Post(id="x", author="x", created_ms=0, text={"en": "x"}, hashtags=list(tags))
        except PostError as exc:
            raise InvalidInput(str(exc)) from exc
        return list(probe.hashtags)

    def _check_channels(self, channels: Sequence[str]) -> list[str]:
        if isinstance(channels, str) or not channels:
            raise InvalidInput("must be a non-empty list of channel names", field="channels")
        unknown = [c for c in channels if c not in self.channels]
        if unknown:
            raise InvalidInput(
                f"unknown channel {unknown[0]!r} (this service has: {', '.join(self.channels)})",
                field="channels",
            )
        return list(dict.fromkeys(channels))

    def _no_deliveries_started(self, row: PostRow, what: str) -> None:
        started = [d.channel for d in row.deliveries if d.state != DeliveryState.PENDING.value]
        if started:
            raise Conflict(
                f"cannot {what} post {row.id}: publication already started on {', '.join(started)}"
            )

    def _drop_deliveries(self, s: Session, row: PostRow) -> None:
        for d in list(row.deliveries):
            row.deliveries.remove(d)
            s.delete(d)
        row.scheduled_at = None

    def approve(self, post_id: str, actor: Account, *, now: datetime) -> PostRow:
        """Approve the current version (four eyes: not its author or signer, no editor of it, in time)."""
        require(actor, Role.APPROVER)
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            workflow.next_state(PostState(row.state), Action.APPROVE)
            workflow.check_approver(
                actor.handle,
                author=row.author,
                signer=row.signer,
                editors={v.editor for v in row.versions if v.editor is not None},
                scheduled_at=row.scheduled_at,
                now=now,
            )
            row.approved_by, row.approved_at = actor.handle, now
            self._step(s, row, Action.APPROVE, actor.handle, now, version=row.version)
            if row.scheduled_at is not None:
                self._book(s, row, row.scheduled_at, actor.handle, now)
            return row

    def request_changes(self, post_id: str, actor: Account, note: str, *, now: datetime) -> PostRow:
        """Send the post back to its author with what to change."""
        require(actor, Role.EDITOR)
        note = _note(note, "note")
        if not note:
            raise InvalidInput("say what should change", field="note")
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            self._step(s, row, Action.REQUEST_CHANGES, actor.handle, now, note=note.strip())
            return row

    def reject(self, post_id: str, actor: Account, reason: str, *, now: datetime) -> PostRow:
        """Reject the post for good: it is never published anywhere."""
        require(actor, Role.EDITOR)
        reason = _note(reason, "reason")
        if not reason:
            raise InvalidInput("give a reason", field="reason")
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            self._no_deliveries_started(row, "reject")
            self._step(s, row, Action.REJECT, actor.handle, now, reason=reason.strip())
            self._drop_deliveries(s, row)
            return row

    def schedule(self, post_id: str, actor: Account, at: datetime | None, *, now: datetime) -> PostRow:
        """Give the post a publication time (``None``: the next free calendar slot of its channels).

        Before approval the time is kept and the approval must come before it; once approved the
        post is scheduled and one delivery per channel is booked.
        """
        require(actor, Role.EDITOR)
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            state = PostState(row.state)
            workflow.next_state(state, Action.SCHEDULE)
            if state is PostState.SCHEDULED:
                self._no_deliveries_started(row, "reschedule")
            channels = row.versions[-1].channels
            when = self._free_slot(s, row, channels, now) if at is None else at.astimezone(UTC)
            calendar.check_schedule(
                when,
                now=now,
                channels={c: self.channels[c] for c in channels if c in self.channels},
                booked=self._booked(s, channels),
                post_id=row.id,
            )
            if state is PostState.FAILED:
                for d in row.deliveries:
                    if d.state == DeliveryState.FAILED.value:
                        d.state, d.attempts, d.next_attempt_at = DeliveryState.PENDING.value, 0, when
                row.scheduled_at = when
                self._step(s, row, Action.SCHEDULE, actor.handle, now, at=when.isoformat())
                return row
            row.scheduled_at = when
            if state in (PostState.APPROVED, PostState.SCHEDULED):
                self._book(s, row, when, actor.handle, now)
            else:
                self._step(s, row, Action.SCHEDULE, actor.handle, now, at=when.isoformat())
            return row

    def unschedule(self, post_id: str, actor: Account, *, now: datetime) -> PostRow:
        """Take a scheduled post off the calendar (it stays approved)."""
        require(actor, Role.EDITOR)
        with self.sessions.begin() as s:
            row = self._get(s, post_id)
            self._no_deliveries_started(row, "unschedule")
            self._step(s, row, Action.UNSCHEDULE, actor.handle, now)
            self._drop_deliveries(s, row)
            return row

    def _book(self, s: Session, row: PostRow, when: datetime, actor: str, now: datetime) -> None:
        channels = row.versions[-1].channels
        if not channels:
            raise Conflict(f"post {row.id} has no channel to go to: edit its channels first")
        calendar.check_schedule(
            when,
            now=now,
            channels={c: self.channels[c] for c in channels if c in self.channels},
            booked=self._booked(s, channels),
            post_id=row.id,
        )
        for d in list(row.deliveries):
            row.deliveries.remove(d)
            s.delete(d)
        s.flush()
        for channel in row.versions[-1].channels:
            row.deliveries.append(
                Delivery(channel=channel, state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=when)
            )
        row.scheduled_at = when
        self._step(s, row, Action.SCHEDULE, actor, now, at=when.isoformat())

    def _booked(self, s: Session, channels: Iterable[str]) -> dict[str, list[tuple[datetime, str]]]:
        wanted = set(channels)
        out: dict[str, list[tuple[datetime, str]]] = {c: [] for c in wanted}
        rows = s.scalars(
            select(PostRow).where(
                PostRow.scheduled_at.is_not(None),
                PostRow.state.in_(
                    [
                        PostState.SCHEDULED.value,
                        PostState.APPROVED.value,
                        PostState.IN_REVIEW.value,
                        PostState.CHANGES_REQUESTED.value,
                    ]
                ),
            )
        ).all()
        for row in rows:
            if row.scheduled_at is None:
                continue
            for c in row.versions[-1].channels:
                if c in wanted:
                    out[c].append((row.scheduled_at, row.id))
        return out

    def _free_slot(self, s: Session, row: PostRow, channels: Sequence[str], now: datetime) -> datetime:
        specs = [self._spec(slot) for slot in s.scalars(select(Slot)).all()]
        specs = [
            p for p in specs if p.channel in channels and (p.campaign is None or p.campaign == row.campaign)
        ]
        if not specs:
            raise Conflict(f"no calendar slot for {', '.join(channels)}: give a time")
        lead = max((self.channels[c].lead_time_s for c in channels if c in self.channels), default=0.0)
        booked = self._booked(s, channels)
        for when, _slot in calendar.next_slots(specs, now + timedelta(seconds=lead), 200):
            try:
                calendar.check_schedule(
                    when,
                    now=now,
                    channels={c: self.channels[c] for c in channels if c in self.channels},
                    booked=booked,
                    post_id=row.id,
                )
            except (Conflict, InvalidInput):
                continue
            return when
        raise Conflict(f"no free calendar slot for {', '.join(channels)} in the coming weeks")

    @staticmethod
    def _spec(slot: Slot) -> calendar.SlotSpec:
        hh, mm = slot.time.split(":")
        return calendar.SlotSpec(
            channel=slot.channel,
            at=datetime.min.replace(hour=int(hh), minute=int(mm)).time(),
            tz=slot.tz,
            weekday=slot.weekday,
            campaign=slot.campaign,
            label=slot.label,
        )

    def add_slot(
        self,
        actor: Account,
        *,
        channel: str,
        time_of_day: str,
        tz: str,
        weekday: int | None = None,
        campaign: str | None = None,
        label: str | None = None,
    ) -> Slot:
        """Add a recurring calendar slot (checked: known channel, HH:MM, IANA zone, weekday 0..6)."""
        require(actor, Role.EDITOR)
        self._check_channels([channel])
        try:
            parsed = datetime.strptime(time_of_day, "%H:%M").time()
        except ValueError as exc:
            raise InvalidInput(f"{time_of_day!r} is not a time of day HH:MM", field="time") from exc
        calendar.SlotSpec(channel=channel, at=parsed, tz=tz, weekday=weekday)
        with self.sessions.begin() as s:
            slot = Slot(
                channel=channel,
                weekday=weekday,
                time=parsed.strftime("%H:%M"),
                tz=tz,
                campaign=campaign,
                label=label,
            )
            s.add(slot)
            return slot

    def calendar_view(
        self, start: datetime, end: datetime, *, campaign: str | None = None
    ) -> list[dict[str, Any]]:
        """Scheduled posts and free slots between ``start`` and ``end``, in time order; with
        ``campaign``, only that campaign's posts and slots (the campaign view)."""
        with self.sessions() as s:
            items: list[dict[str, Any]] = []
            query = select(PostRow).where(PostRow.scheduled_at >= start, PostRow.scheduled_at < end)
            if campaign is not None:
                query = query.where(PostRow.campaign == campaign.lstrip("#"))
            rows = s.scalars(query).all()
            for row in rows:
                if row.scheduled_at is None or row.state == PostState.REJECTED.value:
                    continue
                items.append(
                    {
                        "at": row.scheduled_at.isoformat(),
                        "kind": "post",
                        "post": row.id,
                        "state": row.state,
                        "campaign": row.campaign,
                        "channels": list(row.versions[-1].channels),
                    }
                )
            specs = [self._spec(slot) for slot in s.scalars(select(Slot)).all()]
            if campaign is not None:
                specs = [p for p in specs if p.campaign == campaign.lstrip("#")]
            taken = {(i["at"], c) for i in items for c in i["channels"]}
            for when, spec in calendar.next_slots(specs, start, 500):
                if when >= end:
                    break
                if (when.isoformat(), spec.channel) not in taken:
                    items.append(
                        {
                            "at": when.isoformat(),
                            "kind": "slot",
                            "channel": spec.channel,
                            "campaign": spec.campaign,
                            "label": spec.label,
                        }
                    )
            items.sort(key=lambda i: i["at"])
            return items

    # ---------------------------------------------------------------- publication

    def due(self, now: datetime, *, limit: int = 10) -> list[DueDelivery]:
        """Deliveries to try now; each is claimed (leased) before it is returned.

        The claim is one conditional update per delivery, so two publishers never take the same
        one; media are read after the claim is committed, outside the transaction.
        """
        claimed: list[tuple[int, str, str, int]] = []
        with self.sessions.begin() as s:
            candidates = s.execute(
                select(Delivery.id, Delivery.post_id, Delivery.channel, Delivery.state, Delivery.attempts)
                .join(PostRow)
                .where(
                    PostRow.state == PostState.SCHEDULED.value,
                    Delivery.state.in_(
                        [
                            DeliveryState.PENDING.value,
                            DeliveryState.RETRYING.value,
                            DeliveryState.PUBLISHING.value,
                        ]
                    ),
                    Delivery.next_attempt_at <= now,
                )
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            ).all()
            for did, post_id, channel, state, attempts in candidates:
                taken = s.execute(
                    update(Delivery)
                    .where(Delivery.id == did, Delivery.state == state, Delivery.attempts == attempts)
                    .values(
                        state=DeliveryState.PUBLISHING.value,
                        attempts=attempts + 1,
                        next_attempt_at=now + LEASE,
                    )
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append((did, post_id, channel, attempts + 1))
        out: list[DueDelivery] = []
        for did, post_id, channel, attempt in claimed:
            try:
                outgoing = self.outgoing(post_id, channel)
            except OSError as exc:
                error = ChannelError(
                    f"media file unreadable: {exc.strerror or exc}", channel=channel, transient=False
                )
                self.failed(did, error, attempt=attempt, now=now)
                continue
            out.append(DueDelivery(did, post_id, channel, attempt, outgoing))
        return out

    def outgoing(self, post_id: str, channel: str) -> Outgoing:
        """The post as ``channel`` gets it: the current version, media bytes, verification link,
        and the channel's own id of the question it answers when the question came from there."""
        with self.sessions() as s:
            row = self._get(s, post_id)
            reply_to = None
            if row.reply_to is not None:
                q = s.get(questions.Question, row.reply_to)
                if q is not None and q.origin == channel:
                    reply_to = q.origin_id
            return self._outgoing(row, reply_to)

    def _outgoing(self, row: PostRow, reply_to: str | None) -> Outgoing:
        version = row.versions[-1]
        media = [
            MediaFile(
                name=m.name,
                content_type=m.content_type,
                data=self.media_path(m.sha256).read_bytes(),
                alt=dict(version.alt.get(m.name, {})),
            )
            for m in row.media
        ]
        signed = decode_signed_post(row.signed)
        return Outgoing(
            key=row.id,
            author=row.author,
            text=dict(version.text),
            created=row.created_at,
            hashtags=tuple(version.hashtags),
            media=media,
            verify_url=verification_link(signed, self.base_url),
            reply_to=reply_to,
        )

    def published(self, delivery_id: int, result: Published, *, attempt: int, now: datetime) -> bool:
        """Record a successful publication; the post is published once every channel is.

        Only the publisher holding the lease of try ``attempt`` may report; a late report from
        one whose lease ran out is ignored (returns False), so it cannot undo a newer outcome.
        """
        with self.sessions.begin() as s:
            d = self._leased(s, delivery_id, attempt)
            if d is None:
                return False
            d.state = DeliveryState.PUBLISHED.value
            d.remote_id, d.url, d.published_at = result.remote_id[:4096], _public_url(result.url), now
            d.remote_ids = list(result.ids or (result.remote_id,))
            d.next_attempt_at = None
            d.last_error = None
            row = d.post
            self._audit(s, row.id, d.channel, "delivered", None, None, now, url=d.url, id=d.remote_id)
            self._settle(s, row, now)
            return True

    def _leased(self, s: Session, delivery_id: int, attempt: int) -> Delivery | None:
        d = s.get(Delivery, delivery_id)
        if d is None:
            raise NotFound(f"no delivery {delivery_id}")
        if d.state != DeliveryState.PUBLISHING.value or d.attempts != attempt:
            return None
        return d

    def failed(self, delivery_id: int, error: ChannelError, *, attempt: int, now: datetime) -> bool:
        """Record a failed try: retried with backoff while transient and under the limit, else failed.

        As for :meth:`published`, only the holder of try ``attempt`` may report.
        """
        with self.sessions.begin() as s:
            d = self._leased(s, delivery_id, attempt)
            if d is None:
                return False
            d.last_error = str(error)[:2000]
            if error.transient and d.attempts < workflow.MAX_ATTEMPTS:
                spread = (zlib.crc32(f"{d.post_id}/{d.channel}".encode()) % 1000) / 1000
                d.state = DeliveryState.RETRYING.value
                d.next_attempt_at = now + workflow.backoff(d.attempts, spread=spread)
            else:
                d.state = DeliveryState.FAILED.value
                d.next_attempt_at = None
            self._audit(
                s,
                d.post_id,
                d.channel,
                "delivery_failed",
                None,
                None,
                now,
                error=str(error),
                transient=error.transient,
                attempt=d.attempts,
            )
            self._settle(s, d.post, now)
            return True

    def _settle(self, s: Session, row: PostRow, now: datetime) -> None:
        states = {d.state for d in row.deliveries}
        if row.state != PostState.SCHEDULED.value:
            return
        if states == {DeliveryState.PUBLISHED.value}:
            s.flush()
            self._step(s, row, Action.PUBLISHED, "publisher", now)
        elif states <= {DeliveryState.PUBLISHED.value, DeliveryState.FAILED.value}:
            failed = [d.channel for d in row.deliveries if d.state == DeliveryState.FAILED.value]
            self._step(s, row, Action.FAILED, "publisher", now, reason=f"gave up on {', '.join(failed)}")

    # ---------------------------------------------------------------- reading

    def list_posts(
        self, *, state: str | None = None, campaign: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Posts, newest first, optionally in one state or one campaign."""
        if state is not None and state not in {p.value for p in PostState}:
            raise InvalidInput(
                f"unknown state {state!r} ({', '.join(p.value for p in PostState)})", field="state"
            )
        with self.sessions() as s:
            q = select(PostRow).order_by(PostRow.received_at.desc()).limit(limit)
            if state is not None:
                q = q.where(PostRow.state == state)
            if campaign is not None:
                q = q.where(PostRow.campaign == campaign.lstrip("#"))
            return [self._summary(row) for row in s.scalars(q).all()]

    def show(self, post_id: str) -> dict[str, Any]:
        """Everything about one post: versions, media, deliveries, audit log."""
        with self.sessions() as s:
            row = self._get(s, post_id)
            out = self._summary(row)
            out["versions"] = [
                {
                    "number": v.number,
                    "text": v.text,
                    "hashtags": v.hashtags,
                    "channels": v.channels,
                    "alt": v.alt,
                    "editor": v.editor,
                    "created_at": v.created_at.isoformat(),
                    "note": v.note,
                }
                for v in row.versions
            ]
            out["media"] = [
                {
                    "name": m.name,
                    "content_type": m.content_type,
                    "size": m.size,
                    "sha256": m.sha256,
                    "state": (b.state if (b := s.get(Blob, m.sha256)) else "missing"),
                    "received": sum(e - a for a, e in b.ranges) if b else 0,
                }
                for m in row.media
            ]
            out["deliveries"] = [self._delivery(d) for d in row.deliveries]
            out["audit"] = [
                {
                    "at": a.at.isoformat(),
                    "actor": a.actor,
                    "action": a.action,
                    "before": a.before,
                    "after": a.after,
                    "detail": a.detail,
                }
                for a in s.scalars(
                    select(AuditEntry).where(AuditEntry.post_id == post_id).order_by(AuditEntry.id)
                )
            ]
            return out

    def _summary(self, row: PostRow) -> dict[str, Any]:
        v = row.versions[-1]
        return {
            "id": row.id,
            "author": row.author,
            "state": row.state,
            "created_at": row.created_at.isoformat(),
            "received_at": row.received_at.isoformat(),
            "scheduled_at": None if row.scheduled_at is None else row.scheduled_at.isoformat(),
            "version": row.version,
            "text": v.text,
            "hashtags": v.hashtags,
            "campaign": row.campaign,
            "channels": v.channels,
            "code": row.code,
            "verify_url": f"{self.base_url}/verify/{row.code}",
            "signer": row.signer,
            "approved_by": row.approved_by,
            "deliveries": [self._delivery(d) for d in row.deliveries],
        }

    @staticmethod
    def _delivery(d: Delivery) -> dict[str, Any]:
        return {
            "channel": d.channel,
            "state": d.state,
            "attempts": d.attempts,
            "next_attempt_at": None if d.next_attempt_at is None else d.next_attempt_at.isoformat(),
            "url": d.url,
            "remote_id": d.remote_id,
            "error": d.last_error,
        }

    def refusals(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """What was refused, newest first, with the reason."""
        with self.sessions() as s:
            rows = s.scalars(select(Refusal).order_by(Refusal.id.desc()).limit(limit)).all()
            return [
                {
                    "at": r.at.isoformat(),
                    "what": r.what,
                    "post": r.post_id,
                    "failure": r.failure,
                    "reason": r.reason,
                }
                for r in rows
            ]

    def signed_post(self, code: str) -> bytes:
        """The signed post published with this verification code (what anyone may check)."""
        with self.sessions() as s:
            row = s.scalars(select(PostRow).where(PostRow.code == code)).first()
            published = row is not None and any(
                d.state == DeliveryState.PUBLISHED.value for d in row.deliveries
            )
            if row is None or not published:
                raise NotFound(f"no published post with code {code}")
            return row.signed

    def published_text(self, code: str) -> dict[str, str]:
        """The words as published (the team's last version), beside the crew's signed original."""
        with self.sessions() as s:
            row = s.scalars(select(PostRow).where(PostRow.code == code)).first()
            if row is None:
                raise NotFound(f"no post with code {code}")
            return dict(row.versions[-1].text)

    # ---------------------------------------------------------------- uplink

    def pending_uplinks(self, *, limit: int = 100) -> list[tuple[int, str, bytes]]:
        """Messages for the crew not yet handed to the node: (id, destination, payload)."""
        with self.sessions() as s:
            rows = s.scalars(
                select(Uplink).where(Uplink.sent_at.is_(None)).order_by(Uplink.id).limit(limit)
            ).all()
            return [(u.id, u.destination, u.payload) for u in rows]

    def uplink_sent(self, ids: Iterable[int], *, now: datetime) -> None:
        """Mark uplink messages as handed to the node (it stores them until a contact)."""
        with self.sessions.begin() as s:
            for i in ids:
                u = s.get(Uplink, i)
                if u is None or u.sent_at is not None:
                    continue
                u.sent_at = now
                if u.kind == "question":
                    qid = decode_question(u.payload).id
                    with contextlib.suppress(NotFound, Conflict):
                        questions.mark_sent(s, qid, now=now)

    def select_questions(
        self, ids: Sequence[str], editor: Account, *, destination: str, now: datetime
    ) -> list[dict[str, Any]]:
        """Select approved questions for the crew and queue them up, in one transaction."""
        with self.sessions.begin() as s:
            chosen = questions.select(s, list(ids), editor=editor, now=now)
            for q in chosen:
                s.add(
                    Uplink(
                        destination=destination,
                        kind="question",
                        payload=questions.uplink_payload(q),
                        created_at=now,
                    )
                )
            return [questions.question_to_json(q) for q in chosen]
