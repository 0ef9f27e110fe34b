"""The accounts' queries on the station database: making users and spending codes, who may hold
a token and with which generation, new passwords, revocations, removals, and whether a
registration code can still be spent.

Functions of a Storage (`def f(s: Storage, ...)`): called directly from the commands and the
tests, and through AsyncStorage.run on the event loop. A user's token generation only ever
grows: each change here raises it in the same UPDATE as the change itself, removals included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee

from controller.storage import Storage, StorageError, unavailable_as_retryable
from controller.storage_schema import from_utc_us, utc_us
from server.accounts.tables import Role, Tables, User, code_digest, tables_for, user_from_row

# Stored in place of a removed user's password hash: in no known format, so it matches nothing
# (server.accounts.accounts also refuses removed users before looking at it).
REMOVED_HASH = "!removed"


class AlreadyExists(StorageError):
    """A unique value (username, registration code) is already taken."""


class DuplicateUsername(AlreadyExists):
    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is already taken; choose another")
        self.username = username


class DuplicateCode(AlreadyExists):
    def __init__(self) -> None:
        super().__init__("this registration code already exists; issue another")


class CodeRefused(StorageError):
    def __init__(self) -> None:
        super().__init__("the registration code is unknown, used or expired; ask for a new one")


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """What a token is checked against. A removed user is kept too, with the generation their
    removal gave them: of two views of a user, the one with the higher generation is the newer
    (server.accounts.user_directory), and a removal must win over any view from before it."""

    id: int
    username: str
    role: Role
    token_generation: int
    removed: bool = False


def _tables(storage: Storage) -> Tables:
    return storage.bound(tables_for)


def _now(now: datetime | None) -> int:
    # Callers that own a clock pass it in; the wall clock is only a default for the CLI.
    return utc_us(now if now is not None else datetime.now(UTC))


# -- users and registration codes --------------------------------------------------------------
def add_user(
    storage: Storage,
    username: str,
    password_hash: str,
    role: Role | str,
    now: datetime | None = None,
) -> int:
    """Create a user; DuplicateUsername if the name is taken."""
    role = Role(role)
    with unavailable_as_retryable():
        try:
            return int(
                _tables(storage)
                .user.insert(
                    username=username,
                    password_hash=password_hash,
                    role=role.value,
                    created_utc_us=_now(now),
                )
                .execute()
            )
        except peewee.IntegrityError as exc:
            if "users.username" in str(exc):
                raise DuplicateUsername(username) from exc
            raise


def _user(storage: Storage, where: Any) -> User | None:
    with unavailable_as_retryable():
        row = _tables(storage).user.select().where(where).dicts().first()
    return None if row is None else user_from_row(row)


def user_by_name(storage: Storage, username: str) -> User | None:
    return _user(storage, _tables(storage).user.username == username)


def user_by_id(storage: Storage, user_id: int) -> User | None:
    return _user(storage, _tables(storage).user.id == user_id)


def usernames(storage: Storage, user_ids: Iterable[int]) -> dict[int, str]:
    """The usernames of these user ids, in one query; unknown ids are left out."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    u = _tables(storage).user
    with unavailable_as_retryable():
        rows = u.select(u.id, u.username).where(u.id.in_(ids)).tuples()
        return {int(user_id): name for user_id, name in rows}


def issue_code(storage: Storage, code: str, expires: datetime, now: datetime | None = None) -> None:
    """Store a single-use registration code valid until `expires` (exclusive): its digest only
    (tables.code_digest); the code itself is never written."""
    with unavailable_as_retryable():
        try:
            _tables(storage).code.insert(
                code_sha256=code_digest(code),
                created_utc_us=_now(now),
                expires_utc_us=utc_us(expires),
            ).execute()
        except peewee.IntegrityError as exc:
            raise DuplicateCode() from exc


def use_code(storage: Storage, code: str, user_id: int, now: datetime) -> bool:
    """Spend the code for user_id; False if it is unknown, used or expired. One UPDATE with
    every condition in its WHERE, so two registrations racing for a code cannot both win."""
    c = _tables(storage).code
    with unavailable_as_retryable():
        spent = (
            c.update(used_by=user_id, used_utc_us=utc_us(now))
            .where(
                (c.code_sha256 == code_digest(code))
                & c.used_by.is_null()
                & (c.expires_utc_us > utc_us(now))
            )
            .execute()
        )
    return spent == 1


def register(
    storage: Storage,
    username: str,
    password_hash: str,
    role: Role | str,
    code: str,
    now: datetime,
) -> int:
    """Create a user and spend their registration code together: both or neither.
    DuplicateUsername, or CodeRefused (and no user is left behind)."""
    with unavailable_as_retryable(), storage.db.atomic("IMMEDIATE"):
        user_id = add_user(storage, username, password_hash, role, now)
        if not use_code(storage, code, user_id, now):
            raise CodeRefused()  # leaving the block rolls the new user back
        return user_id


def code_expires(storage: Storage, code: str) -> datetime | None:
    """When a registration code expires; None if there is no such code."""
    c = _tables(storage).code
    with unavailable_as_retryable():
        row = c.select(c.expires_utc_us).where(c.code_sha256 == code_digest(code)).tuples().first()
    return None if row is None else from_utc_us(row[0])


def code_usable(storage: Storage, code: str, now: datetime) -> bool:
    """Whether the registration code exists, is unused and has not expired: checked before a
    password is hashed, so that a wrong code costs no scrypt. Spending it (register) checks
    again, in the same transaction as the new user."""
    c = _tables(storage).code
    where = (
        (c.code_sha256 == code_digest(code))
        & c.used_by.is_null()
        & (c.expires_utc_us > utc_us(now))
    )
    with unavailable_as_retryable():
        return c.select(c.code_sha256).where(where).exists()


# -- tokens --------------------------------------------------------------------------------------
def token_holders(storage: Storage) -> list[TokenHolder]:
    """Every user, removed ones included."""
    u = _tables(storage).user
    query = u.select(u.id, u.username, u.role, u.token_generation, u.removed_utc_us)
    with unavailable_as_retryable():
        return [
            TokenHolder(i, name, Role(role), gen, removed is not None)
            for i, name, role, gen, removed in query.tuples()
        ]


def data_version(storage: Storage) -> int:
    """SQLite's data_version: it changes when another connection (a `charge-station user`
    command) commits to the database, never for this connection's own writes."""
    with unavailable_as_retryable():
        (version,) = storage.db.execute_sql("PRAGMA data_version").fetchone()
    return int(version)


def _bump(storage: Storage, user_id: int, **changes: object) -> int | None:
    """Apply `changes` to a user who is not removed and raise their token generation, in one
    UPDATE; the new generation, or None if there is no such user."""
    u = _tables(storage).user
    with unavailable_as_retryable(), storage.db.atomic("IMMEDIATE"):
        changed = (
            u.update(token_generation=u.token_generation + 1, **changes)
            .where((u.id == user_id) & u.removed_utc_us.is_null())
            .execute()
        )
        if changed != 1:
            return None
        return int(u.select(u.token_generation).where(u.id == user_id).scalar())


def set_password(storage: Storage, user_id: int, password_hash: str) -> int | None:
    """A new password hash; every token issued before ends with it."""
    return _bump(storage, user_id, password_hash=password_hash)


def end_tokens(storage: Storage, user_id: int) -> int | None:
    """Every token issued so far to the user ends (a revocation); the password stays."""
    return _bump(storage, user_id)


def remove_user(storage: Storage, user_id: int, now: datetime) -> int | None:
    """The user can no longer log in and their tokens end. The row stays, with its name, for
    the bills and audit entries that refer to it. The new generation; None if there is no such
    user (left)."""
    return _bump(storage, user_id, removed_utc_us=utc_us(now), password_hash=REMOVED_HASH)
