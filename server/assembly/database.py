"""The station database as the server opens it: the station's tables and every component's
(accounts, audit log, the uplink's outbox), each upgraded by its own migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.storage import AsyncStorage, Storage
from server.accounts import audit_log
from server.accounts import tables as accounts
from server.ocpp import outbox_store

# Every component that keeps tables in the station database.
COMPONENTS = (accounts.MIGRATIONS, audit_log.MIGRATIONS, outbox_store.MIGRATIONS)


def open_storage(path: str | Path, **options: Any) -> Storage:
    """Storage.open with every component's tables (the commands, the tests)."""
    return Storage.open(path, components=COMPONENTS, **options)


async def open_async_storage(path: str | Path, **options: Any) -> AsyncStorage:
    """AsyncStorage.open with every component's tables (the live station)."""
    return await AsyncStorage.open(path, components=COMPONENTS, **options)
