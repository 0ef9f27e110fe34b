"""Every user who may hold a token, with their role and token generation, in memory.

A token is checked against the database on every request (server.accounts.accounts.verify): the user
must exist, not be removed, and the token's generation must be the user's. Asking SQLite each
time would cost a hop to the storage thread per request; this copy costs a dict lookup, so
`/user/lognew` keeps its p99 (docs/performance.md). A station has a few thousand users at most.

It stays current:
- a change made through this process (register, login, a new password, a revocation, a
  removal) updates it as soon as the database has it;
- a change made by another process (`charge-station user …` while the station runs) is found
  through SQLite's data_version, which the service polls every REFRESH_EVERY_S, and the whole
  table is read again.

Views of a user may arrive out of order (a login's row read before a revocation, put after the
table was read again). Every change raises the user's token generation, so of two views the one
with the higher generation is the newer: that one is kept, and removed users are kept as such.
"""

from __future__ import annotations

import logging

from controller.storage import AsyncStorage, Storage
from server.accounts.store import TokenHolder, data_version, token_holders

log = logging.getLogger(__name__)

REFRESH_EVERY_S = 1.0  # the longest a change made by another process takes to count


def _snapshot(storage: Storage) -> tuple[int, list[TokenHolder]]:
    # data_version first: a commit between the two reads is then seen again at the next poll.
    return data_version(storage), token_holders(storage)


def _newer(a: TokenHolder | None, b: TokenHolder) -> TokenHolder:
    return b if a is None or b.token_generation > a.token_generation else a


class UserDirectory:
    def __init__(self, storage: AsyncStorage) -> None:
        self._storage = storage
        self._holders: dict[int, TokenHolder] = {}
        self._version: int | None = None  # None until loaded

    @property
    def loaded(self) -> bool:
        return self._version is not None

    async def load(self) -> None:
        """Read every user; what this process learnt meanwhile, if newer, is kept."""
        version, holders = await self._storage.run(_snapshot)
        table = {h.id: h for h in holders}
        for user_id, known in self._holders.items():
            table[user_id] = _newer(table.get(user_id), known)
        self._holders = table
        self._version = version

    async def ensure_loaded(self) -> None:
        if not self.loaded:
            await self.load()

    async def refresh(self) -> bool:
        """Read the table again if another process has changed the database; whether it did."""
        if self.loaded and await self._storage.run(data_version) == self._version:
            return False
        await self.load()
        log.debug("users read again: the database was changed by another process")
        return True

    def get(self, user_id: int) -> TokenHolder | None:
        """The user a token may name: None if there is none, or they were removed."""
        holder = self._holders.get(user_id)
        return None if holder is None or holder.removed else holder

    def put(self, holder: TokenHolder) -> None:
        """A view of a user read from, or just written to, the database (kept if newer)."""
        self._holders[holder.id] = _newer(self._holders.get(holder.id), holder)
