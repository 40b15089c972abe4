"""Ground accounts: handles, roles, argon2id passwords, API tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from proxima.errors import Conflict, Forbidden, InvalidInput, NotFound
from proxima.ground import accounts
from proxima.ground.accounts import (
    TOKEN_PREFIX,
    Account,
    AccountKind,
    ApiToken,
    Role,
    account_for_token,
    authenticate,
    create_account,
    get_account,
    has_role,
    issue_token,
    list_tokens,
    require,
    revoke_token,
    set_password,
)
from proxima.ground.db import Base, make_engine, session_factory

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
# Cheap parameters keep the tests fast; production uses argon2-cffi's defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SLOWER = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ground.db'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


def _thomas(session: Session, **changes: object) -> Account:
    args: dict[str, object] = {
        "handle": "thomas",
        "display_name": "Thomas Pesquet",
        "kind": AccountKind.CREW,
        "roles": [Role.CREW],
        "password": PASSWORD,
    }
    args.update(changes)
    return create_account(session, now=NOW, hasher=FAST, **args)  # type: ignore[arg-type]


# -- creation ---------------------------------------------------------------------------------


def test_create_account_stores_an_argon2id_hash(session: Session) -> None:
    account = _thomas(session, roles=["editor", Role.CREW, "editor"])
    session.commit()
    stored = session.scalars(select(Account)).one()
    assert stored.handle == "thomas"
    assert stored.kind is AccountKind.CREW
    assert stored.roles == ["crew", "editor"]
    assert stored.created_at == NOW
    assert stored.disabled is False
    assert stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert get_account(session, "thomas") is account


def test_persona_without_password_cannot_log_in(session: Session) -> None:
    philae = create_account(session, "philae", "Philae", "robot", ["crew"], now=NOW, hasher=FAST)
    assert philae.password_hash is None
    assert philae.kind is AccountKind.ROBOT
    with pytest.raises(Forbidden) as info:
        authenticate(session, "philae", "", now=NOW, hasher=FAST)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"handle": "Thomas"}, "handle", "is not a name"),
        ({"handle": "thomas pesquet"}, "handle", "is not a name"),
        ({"handle": "-thomas"}, "handle", "is not a name"),
        ({"handle": "t" * 65}, "handle", "is not a name"),
        ({"handle": ""}, "handle", "is not a name"),
        ({"display_name": "  "}, "display_name", "is empty"),
        ({"display_name": "Thomas\x00"}, "display_name", "control character"),
        ({"kind": "astronaut"}, "kind", "not a kind of account"),
        ({"roles": ["pilot"]}, "roles", "not a role"),
        ({"roles": "editor"}, "roles", "list of roles"),
        ({"password": "short pass"}, "password", "10 characters, at least 12"),
        ({"password": "x" * 11}, "password", "at least 12"),
        ({"password": "x" * 1025}, "password", "at most 1024"),
    ],
)
def test_create_account_refusals_name_the_field(
    session: Session, changes: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        _thomas(session, **changes)
    assert info.value.field == field
    assert info.value.status == 400
    assert session.scalars(select(Account)).first() is None


def test_duplicate_handle_is_a_conflict(session: Session) -> None:
    _thomas(session)
    session.commit()
    with pytest.raises(Conflict, match="'thomas' is taken") as info:
        _thomas(session, display_name="Another Thomas")
    assert info.value.field == "handle"
    assert info.value.status == 409


def test_get_account_unknown(session: Session) -> None:
    with pytest.raises(NotFound, match="no account 'nobody'"):
        get_account(session, "nobody")


# -- passwords --------------------------------------------------------------------------------


def test_authenticate(session: Session) -> None:
    account = _thomas(session)
    assert authenticate(session, "thomas", PASSWORD, now=NOW, hasher=FAST) is account
    assert authenticate(session, " Thomas ", PASSWORD, now=NOW, hasher=FAST) is account


@pytest.mark.parametrize(
    ("handle", "password"),
    [
        ("thomas", "correct horse battery!"),
        ("thomas", ""),
        ("thomas", "x" * 5000),
        ("nobody", PASSWORD),
        ("t" * 300, PASSWORD),
    ],
)
def test_authenticate_refuses_alike(session: Session, handle: str, password: str) -> None:
    _thomas(session)
    with pytest.raises(Forbidden) as info:
        authenticate(session, handle, password, now=NOW, hasher=FAST)
    assert str(info.value) == "wrong handle or password"
    assert info.value.status == 401


class CountingHasher(PasswordHasher):
    """Records the hashes it verifies against."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(str(hash))
        return super().verify(hash, password)


@pytest.mark.parametrize("handle", ["nobody", "philae"])
def test_refusal_costs_a_hash_even_without_one(session: Session, handle: str) -> None:
    create_account(session, "philae", "Philae", "robot", ["crew"], now=NOW, hasher=FAST)
    hasher = CountingHasher()
    with pytest.raises(Forbidden, match="wrong handle or password"):
        authenticate(session, handle, PASSWORD, now=NOW, hasher=hasher)
    assert len(hasher.verified) == 1
    assert hasher.verified[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_disabled_account_cannot_log_in(session: Session) -> None:
    account = _thomas(session)
    account.disabled = True
    with pytest.raises(Forbidden, match="disabled") as info:
        authenticate(session, "thomas", PASSWORD, now=NOW, hasher=FAST)
    assert info.value.status == 403
    # A wrong password still gets the same answer as for anyone else.
    with pytest.raises(Forbidden, match="wrong handle or password"):
        authenticate(session, "thomas", "not the password", now=NOW, hasher=FAST)


def test_rehash_when_parameters_change(session: Session) -> None:
    account = _thomas(session)
    old = account.password_hash
    assert old is not None
    assert SLOWER.check_needs_rehash(old)
    authenticate(session, "thomas", PASSWORD, now=NOW, hasher=SLOWER)
    new = account.password_hash
    assert new is not None
    assert new != old
    assert not SLOWER.check_needs_rehash(new)
    assert SLOWER.verify(new, PASSWORD)
    authenticate(session, "thomas", PASSWORD, now=NOW, hasher=SLOWER)
    assert account.password_hash == new  # parameters unchanged: no new hash


def test_set_password(session: Session) -> None:
    account = _thomas(session)
    set_password(session, account, "a brand new passphrase", hasher=FAST)
    with pytest.raises(Forbidden):
        authenticate(session, "thomas", PASSWORD, now=NOW, hasher=FAST)
    assert authenticate(session, "thomas", "a brand new passphrase", now=NOW, hasher=FAST) is account
    with pytest.raises(InvalidInput, match="at least 12") as info:
        set_password(session, account, "too short", hasher=FAST)
    assert info.value.field == "password"
    set_password(session, account, None)
    with pytest.raises(Forbidden):
        authenticate(session, "thomas", "a brand new passphrase", now=NOW, hasher=FAST)


def test_default_hasher_is_argon2id(session: Session) -> None:
    account = create_account(session, "esa", "ESA", "agency", ["editor"], "agency password!", now=NOW)
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert authenticate(session, "esa", "agency password!", now=NOW) is account


# -- API tokens -------------------------------------------------------------------------------


def test_token_round_trip(session: Session) -> None:
    account = _thomas(session)
    token = issue_token(session, account, "laptop", now=NOW)
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) == len(TOKEN_PREFIX) + 43  # 32 bytes in URL-safe base64, unpadded
    assert issue_token(session, account, "phone", now=NOW) != token
    session.commit()
    rows = list_tokens(session, account)
    assert [r.label for r in rows] == ["laptop", "phone"]
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in (r.token_hash, r.label) for r in rows)
    later = NOW + timedelta(hours=1)
    assert account_for_token(session, token, now=later) is account
    assert rows[0].last_used_at == later
    assert rows[1].last_used_at is None


@pytest.mark.parametrize(
    "token",
    ["", "prx_", "prx_unknown", "not-a-token", "prx_" + "a" * 300],
)
def test_unknown_token_is_401(session: Session, token: str) -> None:
    issue_token(session, _thomas(session), "laptop", now=NOW)
    with pytest.raises(Forbidden, match="unknown or revoked API token") as info:
        account_for_token(session, token, now=NOW)
    assert info.value.status == 401


def test_revoked_token_is_401(session: Session) -> None:
    account = _thomas(session)
    token = issue_token(session, account, "laptop", now=NOW)
    row = revoke_token(session, token, now=NOW + timedelta(minutes=1))
    assert row.revoked_at == NOW + timedelta(minutes=1)
    with pytest.raises(Forbidden, match="unknown or revoked") as info:
        account_for_token(session, token, now=NOW)
    assert info.value.status == 401
    again = revoke_token(session, row.id, now=NOW + timedelta(minutes=5))
    assert again.revoked_at == NOW + timedelta(minutes=1)


def test_revoke_token_refusals(session: Session) -> None:
    thomas = _thomas(session)
    other = create_account(session, "sophie", "Sophie", "crew", ["crew"], now=NOW, hasher=FAST)
    admin = create_account(session, "root", "Admin", "agency", ["admin"], now=NOW, hasher=FAST)
    token = issue_token(session, thomas, "laptop", now=NOW)
    with pytest.raises(NotFound, match="no such API token"):
        revoke_token(session, 999, now=NOW)
    with pytest.raises(NotFound):
        revoke_token(session, "prx_nothing", now=NOW)
    with pytest.raises(Forbidden, match="own account or an admin") as info:
        revoke_token(session, token, now=NOW, by=other)
    assert info.value.status == 403
    assert account_for_token(session, token, now=NOW) is thomas
    revoke_token(session, token, now=NOW, by=admin)
    with pytest.raises(Forbidden):
        account_for_token(session, token, now=NOW)
    own = issue_token(session, thomas, "phone", now=NOW)
    revoke_token(session, own, now=NOW, by=thomas)
    with pytest.raises(Forbidden):
        account_for_token(session, own, now=NOW)


def test_disabled_account_token_refused(session: Session) -> None:
    account = _thomas(session)
    token = issue_token(session, account, "laptop", now=NOW)
    account.disabled = True
    session.commit()
    with pytest.raises(Forbidden, match="'thomas' is disabled") as info:
        account_for_token(session, token, now=NOW)
    assert info.value.status == 403
    with pytest.raises(Forbidden, match="disabled"):
        issue_token(session, account, "another", now=NOW)


def test_token_label_checked(session: Session) -> None:
    account = _thomas(session)
    with pytest.raises(InvalidInput) as info:
        issue_token(session, account, " ", now=NOW)
    assert info.value.field == "label"
    assert session.scalars(select(ApiToken)).first() is None


# -- roles ------------------------------------------------------------------------------------


def test_roles(session: Session) -> None:
    crew = _thomas(session)
    editor = create_account(session, "ed", "Editor", "agency", ["editor"], now=NOW, hasher=FAST)
    admin = create_account(session, "root", "Admin", "agency", ["admin"], now=NOW, hasher=FAST)
    assert has_role(crew, Role.CREW)
    assert not has_role(crew, Role.EDITOR)
    assert has_role(editor, Role.EDITOR)
    assert not has_role(editor, Role.APPROVER)
    assert all(has_role(admin, r) for r in Role)
    require(editor, Role.EDITOR)
    require(editor, Role.APPROVER, Role.EDITOR)
    for role in Role:
        require(admin, role)
    with pytest.raises(Forbidden, match="'ed' needs the approver role") as info:
        require(editor, Role.APPROVER)
    assert info.value.status == 403
    with pytest.raises(Forbidden, match="needs the approver or admin role"):
        require(crew, Role.APPROVER, Role.ADMIN)


def test_disabled_account_has_no_role(session: Session) -> None:
    admin = create_account(session, "root", "Admin", "agency", ["admin"], now=NOW, hasher=FAST)
    admin.disabled = True
    assert not has_role(admin, Role.CREW)
    with pytest.raises(Forbidden, match="disabled"):
        require(admin, Role.CREW)


def test_accounts_module_exports() -> None:
    assert set(accounts.__all__) >= {"create_account", "authenticate", "require", "Role"}
