"""Account queries on the station database beyond making users and spending codes: who may hold
a token and with which generation, new passwords, revocations, removals, and whether a
registration code can still be spent.

Functions of a Storage (from the CLI, or through AsyncStorage.run on the event loop). A user's
token generation only ever grows: each change here raises it in the same UPDATE as the change
itself, removals included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller import storage_schema as schema
from controller.storage import Storage, _unavailable_as_retryable
from controller.storage_schema import Role, utc_us

# Stored in place of a removed user's password hash: in no known format, so it matches nothing
# (server.accounts.accounts also refuses removed users before looking at it).
REMOVED_HASH = "!removed"


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


def token_holders(storage: Storage) -> list[TokenHolder]:
    """Every user, removed ones included."""
    u = storage._m.user
    query = u.select(u.id, u.username, u.role, u.token_generation, u.removed_utc_us)
    with _unavailable_as_retryable():
        return [
            TokenHolder(i, name, Role(role), gen, removed is not None)
            for i, name, role, gen, removed in query.tuples()
        ]


def data_version(storage: Storage) -> int:
    """SQLite's data_version: it changes when another connection (a `charge-station user`
    command) commits to the database, never for this connection's own writes."""
    with _unavailable_as_retryable():
        (version,) = storage._db.execute_sql("PRAGMA data_version").fetchone()
    return int(version)


def code_usable(storage: Storage, code: str, now: datetime) -> bool:
    """Whether the registration code exists, is unused and has not expired: checked before a
    password is hashed, so that a wrong code costs no scrypt. Spending it (Storage.register)
    checks again, in the same transaction as the new user."""
    c = storage._m.code
    where = (
        (c.code_sha256 == schema.code_digest(code))
        & c.used_by.is_null()
        & (c.expires_utc_us > utc_us(now))
    )
    with _unavailable_as_retryable():
        return c.select(c.code_sha256).where(where).exists()


def _bump(storage: Storage, user_id: int, **changes: object) -> int | None:
    """Apply `changes` to a user who is not removed and raise their token generation, in one
    UPDATE; the new generation, or None if there is no such user."""
    u = storage._m.user
    with _unavailable_as_retryable(), storage._db.atomic("IMMEDIATE"):
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
