"""The bill of a session cannot be written when the session ends: another process holds the
station's database locked, or the disk takes no more bytes. The station (a real process over
real Modbus) keeps the bill and writes it when it can; the driver sees it in /user/log then, and
it equals the pile's meter.
"""

from __future__ import annotations

import resource
import sqlite3
from collections.abc import Callable

import pytest

from tests.e2e.harness import (
    Bench,
    PileConf,
    StationProcess,
    check_bills_match_meters,
    check_fees,
    check_user_log,
    idle_meters,
    meters,
    ref_pile,
    station_toml,
    stored_bills,
    tcp_link,
    until,
    until_async_nonempty,
    user_log,
)

STEP_TIMEOUT_S = 15.0
# The station waits this long for a lock before a write fails (controller.storage's busy
# timeout, 5 s), then tries again: allow for a failure and a retry.
LOCK_TIMEOUT_S = 30.0
NOT_STORED = "not stored"  # what the station logs when a bill could not be written yet


Unblock = Callable[[], None]


async def bill_kept_until_writable(
    bench: Bench, block: Callable[[StationProcess], Unblock]
) -> None:
    """F1 asks for 0.5 kWh at A. While it charges, `block` makes the station's database
    unwritable, until the station has logged that the bill could not be stored. The driver still
    gets the bill and `done` on the socket meanwhile. Once the database takes writes again the
    bill is in /user/log, once, and equal to A's meter."""
    sim = bench.pile_sim([ref_pile(1, 30)])
    st = bench.station(station_toml([PileConf(1, "A", tcp_link(sim, 1))]))
    before = meters(sim)
    f1 = await bench.car(st.base, "f1")
    await f1.open(st.base, "fast", 0.5)
    await f1.wait_type("charging", STEP_TIMEOUT_S)

    unblock = block(st)
    try:
        await until(lambda: st.logged(NOT_STORED), LOCK_TIMEOUT_S, "a bill write refused")
        bill = await f1.wait_type("bill", STEP_TIMEOUT_S)
        done = await f1.wait_type("done", STEP_TIMEOUT_S)
        assert done["reason"] == "completed"
        assert stored_bills(st.db) == []
    finally:
        unblock()

    async def logged() -> list[dict[str, object]]:
        return await user_log(st.base, f1)

    entries = await until_async_nonempty(logged, LOCK_TIMEOUT_S, "the bill in /user/log")
    assert entries[0]["quantity"] == bill["bill"]["quantity"] == 0.5
    after = await idle_meters(sim)
    bills = stored_bills(st.db)
    assert [(b.queue_no, b.reason, b.energy_wh) for b in bills] == [("F1", "completed", 500)]
    check_bills_match_meters(bills, before, after, {1: 1})
    check_fees(bills)
    await check_user_log(st.base, f1, bills)


@pytest.mark.asyncio
async def test_a_bill_written_while_the_database_is_locked_is_retried(bench: Bench) -> None:
    """Row 15, locked: the test takes the station's SQLite file with BEGIN EXCLUSIVE, as a
    stray sqlite3 shell or a backup job would, and rolls back once the station gave up a write."""

    def lock(st: StationProcess) -> Unblock:
        connection = sqlite3.connect(st.db, timeout=STEP_TIMEOUT_S, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")

        def release() -> None:
            connection.execute("ROLLBACK")
            connection.close()

        return release

    await bill_kept_until_writable(bench, lock)


@pytest.mark.asyncio
async def test_a_bill_written_while_the_disk_is_full_is_retried(bench: Bench) -> None:
    """Row 15, disk full: the station process may not write another byte to any file
    (RLIMIT_FSIZE lowered to 1 byte with prlimit, from outside), so every write to its database
    and WAL fails in the kernel, as on a full disk. SQLite reports such a write as
    SQLITE_IOERR_WRITE (EFBIG) where a full disk gives SQLITE_FULL (ENOSPC); the station
    treats both as "not now" (controller.storage). Its standard error is a pipe, not a file, so
    it can still say what happens. A real full filesystem would need a mount (root) or a loop
    device; the limit needs neither and still has the kernel refuse the real process's writes."""

    def fill(st: StationProcess) -> Unblock:
        soft, hard = resource.prlimit(st.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(st.pid, resource.RLIMIT_FSIZE, (1, hard))
        return lambda: resource.prlimit(st.pid, resource.RLIMIT_FSIZE, (soft, hard))

    await bill_kept_until_writable(bench, fill)
