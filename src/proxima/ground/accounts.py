"""Ground accounts, their roles, passwords and API tokens.

An account is a person or persona the ground service knows: a crew member, a robot speaking in
the first person (Philae), an agency. Its *roles* say what it may do: ``crew`` (write posts),
``editor`` (review posts, moderate public questions), ``approver`` (the second pair of eyes),
``admin`` (everything, accounts included).

Passwords are stored as argon2id hashes (``argon2-cffi``); personas that never log in have none.
API tokens are random (``prx_`` + 32 bytes, URL-safe base64), shown once, and stored as their
SHA-256 only: a leaked database gives no usable token. Every function takes a ``Session`` and
the current time, and flushes; committing is the caller's business.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Enum, ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from proxima.errors import Conflict, Forbidden, InvalidInput, NotFound, PostError
from proxima.ground.db import Base
from proxima.outreach.post import check_name

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "TOKEN_PREFIX",
    "Account",
    "AccountKind",
    "ApiToken",
    "Role",
    "account_for_token",
    "authenticate",
    "create_account",
    "get_account",
    "has_role",
    "issue_token",
    "list_tokens",
    "require",
    "revoke_token",
    "set_password",
]

MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 1024
"""Longer passwords are refused so that hashing one cannot be made arbitrarily slow."""
MAX_DISPLAY_NAME_CHARS: Final = 100
MAX_LABEL_CHARS: Final = 100
TOKEN_PREFIX: Final = "prx_"  # noqa: S105 - a prefix, not a secret
_BAD_LOGIN: Final = "wrong handle or password"
_BAD_TOKEN: Final = "unknown or revoked API token"  # noqa: S105 - a message


class Role(StrEnum):
    """What an account may do; ``admin`` implies every other role."""

    CREW = "crew"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


class AccountKind(StrEnum):
    """Who speaks through the account: a crew member, a robot persona, an agency."""

    CREW = "crew"
    ROBOT = "robot"
    AGENCY = "agency"


def _str_enum(cls: type[StrEnum]) -> Enum:
    """Stored as its value ("editor"), as a plain string column checked on write."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Account(Base):
    """A person or persona of the ground service."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME_CHARS))
    kind: Mapped[AccountKind] = mapped_column(_str_enum(AccountKind))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"Account({self.handle!r}, roles={self.roles!r})"


class ApiToken(Base):
    """An API token of an account, stored as the SHA-256 of its text (hexadecimal)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL_CHARS))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


_default_hasher: PasswordHasher | None = None


def _hasher(hasher: PasswordHasher | None) -> PasswordHasher:
    """The hasher given, else argon2-cffi's defaults (argon2id, RFC 9106 low-memory profile)."""
    global _default_hasher  # noqa: PLW0603 - created on first use, not at import
    if hasher is not None:
        return hasher
    if _default_hasher is None:
        _default_hasher = PasswordHasher()
    return _default_hasher


def _label(value: object, field_name: str, max_chars: int) -> str:
    """Single-line text: trimmed, not empty, no control characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be text, not {type(value).__name__}", field=field_name)
    text = value.strip()
    if not text:
        raise InvalidInput("is empty", field=field_name)
    if len(text) > max_chars:
        raise InvalidInput(f"{len(text)} characters, at most {max_chars}", field=field_name)
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise InvalidInput("contains a control character", field=field_name)
    return text


def _check_password(password: object) -> str:
    if not isinstance(password, str):
        raise InvalidInput(f"must be text, not {type(password).__name__}", field="password")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"{len(password)} characters, at least {MIN_PASSWORD_CHARS}", field="password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"{len(password)} characters, at most {MAX_PASSWORD_CHARS}", field="password")
    return password


def _roles(roles: Iterable[Role | str]) -> list[str]:
    if isinstance(roles, str):
        raise InvalidInput("must be a list of roles, not one text", field="roles")
    out: set[Role] = set()
    for role in roles:
        try:
            out.add(Role(role))
        except ValueError:
            raise InvalidInput(f"{role!r} is not a role ({', '.join(Role)})", field="roles") from None
    return [r.value for r in Role if r in out]


def create_account(
    session: Session,
    handle: str,
    display_name: str,
    kind: AccountKind | str,
    roles: Iterable[Role | str],
    password: str | None = None,
    *,
    now: datetime,
    hasher: PasswordHasher | None = None,
) -> Account:
    """Create an account; ``password`` is ``None`` for a persona that never logs in.

    Raises :class:`InvalidInput` naming the field (a handle that is not 1 to 64 lower-case
    letters, digits, ``.``, ``_``, ``-``; an unknown kind or role; a password shorter than
    12 characters) and :class:`Conflict` if the handle is taken.
    """
    try:
        check_name(handle, "handle")
    except PostError as exc:
        raise InvalidInput(str(exc).removeprefix("handle: "), field="handle") from exc
    name = _label(display_name, "display_name", MAX_DISPLAY_NAME_CHARS)
    try:
        account_kind = AccountKind(kind)
    except ValueError:
        raise InvalidInput(
            f"{kind!r} is not a kind of account ({', '.join(AccountKind)})", field="kind"
        ) from None
    role_list = _roles(roles)
    password_hash = None if password is None else _hasher(hasher).hash(_check_password(password))
    if session.scalar(select(Account.id).where(Account.handle == handle)) is not None:
        raise Conflict(f"{handle!r} is taken", field="handle")
    account = Account(
        handle=handle,
        display_name=name,
        kind=account_kind,
        roles=role_list,
        password_hash=password_hash,
        disabled=False,
        created_at=now,
    )
    session.add(account)
    try:
        session.flush()
    except IntegrityError as exc:  # taken by a concurrent transaction since the check above
        raise Conflict(f"{handle!r} is taken", field="handle") from exc
    return account


def get_account(session: Session, handle: str) -> Account:
    """The account with this handle; :class:`NotFound` if there is none."""
    account = session.scalar(select(Account).where(Account.handle == handle))
    if account is None:
        raise NotFound(f"no account {handle!r}", field="handle")
    return account


def set_password(
    session: Session, account: Account, password: str | None, *, hasher: PasswordHasher | None = None
) -> None:
    """Set the account's password (at least 12 characters), or remove it with ``None``."""
    account.password_hash = None if password is None else _hasher(hasher).hash(_check_password(password))
    session.flush()


def authenticate(
    session: Session, handle: str, password: str, *, now: datetime, hasher: PasswordHasher | None = None
) -> Account:
    """The account whose handle and password these are.

    A wrong handle, a wrong password and an account without a password all raise the same
    :class:`Forbidden` (401), after the same hashing work, so neither the answer nor its timing
    tells which accounts exist. A disabled account is refused (403) once the password is right.
    The hash is upgraded when the hasher's parameters changed since it was made.
    """
    h = _hasher(hasher)
    account = None
    if isinstance(handle, str) and len(handle) <= 64:
        account = session.scalar(select(Account).where(Account.handle == handle.strip().lower()))
    stored = account.password_hash if account is not None else None
    if (
        not isinstance(password, str)
        or len(password) > MAX_PASSWORD_CHARS
        or not _verify(h, stored, password)
        or account is None
    ):
        raise Forbidden(_BAD_LOGIN, status=401)
    if account.disabled:
        raise Forbidden(f"account {account.handle!r} is disabled", status=403)
    if stored is not None and h.check_needs_rehash(stored):
        account.password_hash = h.hash(password)
    session.flush()
    return account


_dummy_hashes: dict[tuple[int, ...], str] = {}


def _verify(h: PasswordHasher, stored: str | None, password: str) -> bool:
    if stored is None:
        # Spend the time a real check would, against a hash of the same parameters.
        key = (h.time_cost, h.memory_cost, h.parallelism, h.hash_len, h.salt_len, h.type.value)
        if key not in _dummy_hashes:
            _dummy_hashes[key] = h.hash(secrets.token_urlsafe(16))
        stored = _dummy_hashes[key]
        result = False
    else:
        result = True
    try:
        h.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return result


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, account: Account, label: str, *, now: datetime) -> str:
    """A new API token for the account; its text is returned once and never stored."""
    text = _label(label, "label", MAX_LABEL_CHARS)
    if account.disabled:
        raise Forbidden(f"account {account.handle!r} is disabled", status=403)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(account_id=account.id, token_hash=_token_hash(token), label=text, created_at=now))
    session.flush()
    return token


def account_for_token(session: Session, token: str, *, now: datetime) -> Account:
    """The account an API token belongs to, noting when it was used.

    Raises :class:`Forbidden` 401 for an unknown or revoked token, 403 if the account is disabled.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 256:
        raise Forbidden(_BAD_TOKEN, status=401)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise Forbidden(_BAD_TOKEN, status=401)
    idle_since = row.last_used_at or row.created_at
    if now - idle_since > TOKEN_IDLE_LIMIT:
        raise Forbidden(
            f"this token was unused for more than {TOKEN_IDLE_LIMIT.days} days: log in again", status=401
        )
    account = session.get(Account, row.account_id)
    if account is None:
        raise Forbidden(_BAD_TOKEN, status=401)
    if account.disabled:
        raise Forbidden(f"account {account.handle!r} is disabled", status=403)
    row.last_used_at = now
    session.flush()
    return account


TOKEN_IDLE_LIMIT = timedelta(days=30)
"""A token unused for this long stops working (a forgotten laptop does not keep the console open)."""


def list_tokens(session: Session, account: Account) -> list[ApiToken]:
    """The account's API tokens (revoked ones included), oldest first."""
    return list(
        session.scalars(select(ApiToken).where(ApiToken.account_id == account.id).order_by(ApiToken.id))
    )


def revoke_token(session: Session, token: int | str, *, now: datetime, by: Account | None = None) -> ApiToken:
    """Revoke an API token given by its id or its text; revoking it again changes nothing.

    With ``by``, only the token's own account or an admin may revoke it (:class:`Forbidden`).
    Raises :class:`NotFound` if there is no such token.
    """
    if isinstance(token, str):
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    else:
        row = session.get(ApiToken, token)
    if row is None:
        raise NotFound("no such API token", field="token")
    if by is not None and by.id != row.account_id and not has_role(by, Role.ADMIN):
        raise Forbidden("only its own account or an admin may revoke a token", status=403)
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


def has_role(account: Account, role: Role) -> bool:
    """Whether the account holds the role (admins hold every role; disabled accounts none)."""
    if account.disabled:
        return False
    return Role.ADMIN.value in account.roles or Role(role).value in account.roles


def require(account: Account, role: Role, *more: Role) -> None:
    """Refuse (:class:`Forbidden`, 403) unless the account holds at least one of the roles given.

    The message names the role needed, so the refusal says what to ask an admin for.
    """
    if account.disabled:
        raise Forbidden(f"account {account.handle!r} is disabled", status=403)
    wanted = (role, *more)
    if any(has_role(account, r) for r in wanted):
        return
    needed = " or ".join(Role(r).value for r in wanted)
    raise Forbidden(f"{account.handle!r} needs the {needed} role", status=403)
