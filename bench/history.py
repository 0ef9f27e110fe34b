"""History bench: `GET /user/lognew` with a million bills in the database (100 per user).

The database is the station's own (controller.storage, its schema and indexes); the rows are
written with one executemany, since writing is not what is measured. The station's HTTP API then
serves `/user/lognew?num=10` on Tornado, and a client in the same process asks for random users'
histories one after another, timing each request end to end.

    .venv/bin/python bench/history.py [--bills 1000000] [--requests 2000]

The last line is one JSON object with `bills`, `p50_ms` and `p99_ms` (target: p99 < 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tornado.httpclient import AsyncHTTPClient  # noqa: E402
from tornado.testing import bind_unused_port  # noqa: E402

from controller.storage import DATABASE_FILENAME  # noqa: E402
from server.accounts.accounts import Accounts, load_secret  # noqa: E402
from server.assembly.database import open_async_storage  # noqa: E402
from server.http.app import make_app, make_server  # noqa: E402
from server.http.handler import AppContext  # noqa: E402

BILLS_PER_USER = 100
TARGET_P99_MS = 10.0


def fill(path: Path, bills: int) -> int:
    """Users and their bills written straight into the station's schema; the user count."""
    users = max(1, bills // BILLS_PER_USER)
    db = sqlite3.connect(path)
    t0_us = 1_700_000_000 * 1_000_000
    with db:
        db.executemany(
            "INSERT INTO users (id, username, password_hash, role, created_utc_us) "
            "VALUES (?, ?, 'x', 'driver', ?)",
            ((u, f"user{u}", t0_us) for u in range(1, users + 1)),
        )
        rng = random.Random(1)

        def rows():
            for i in range(bills):
                user = i % users + 1
                start = t0_us + i * 60_000_000
                wh = rng.randint(1000, 60_000)
                charge = Fraction(wh * 7, 10_000)  # 0.7 yuan per kWh
                service = Fraction(wh * 8, 10_000)
                yield (
                    user,
                    str(user),
                    f"F{i}",
                    i % 20 + 1,
                    f"P{i % 20 + 1}",
                    start,
                    start + 3_600_000_000,
                    "completed",
                    str(wh),
                    str(charge),
                    str(service),
                )

        db.executemany(
            "INSERT INTO bills (user_id, car, queue_no, pile_id, pile_name, start_utc_us, "
            "end_utc_us, reason, energy_wh, charge_fee_yuan, service_fee_yuan) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    db.close()
    return users


async def measure(state: Path, users: int, requests: int) -> list[float]:
    storage = await open_async_storage(state / DATABASE_FILENAME)
    accounts = Accounts(storage, load_secret(state))
    await accounts.load_users()  # tokens are checked against them, as in the service
    app = make_app(AppContext(accounts, storage, UTC))
    sock, port = bind_unused_port()
    server = make_server(app)  # with the limits the service sets
    server.add_sockets([sock])
    http = AsyncHTTPClient()
    rng = random.Random(2)
    tokens = [accounts.token_for(u, f"user{u}", "driver") for u in range(1, users + 1)]
    url = f"http://127.0.0.1:{port}/user/lognew?num=10&token="
    times = []
    try:
        for i in range(requests + 50):
            token = rng.choice(tokens)
            start = time.perf_counter()
            response = await http.fetch(url + token)
            elapsed = time.perf_counter() - start
            assert len(json.loads(response.body)["log"]) == 10
            if i >= 50:  # the first requests warm the caches
                times.append(elapsed * 1000)
    finally:
        server.stop()
        await storage.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        asyncio.run(_create(state))
        started = time.perf_counter()
        users = fill(state / DATABASE_FILENAME, args.bills)
        written_s = time.perf_counter() - started
        print(f"{args.bills:,} bills for {users:,} users written in {written_s:.1f} s")
        times = asyncio.run(measure(state, users, args.requests))
    times.sort()
    p50 = statistics.median(times)
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"/user/lognew num=10, {len(times)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    result = {
        "bills": args.bills,
        "users": users,
        "requests": len(times),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "target_p99_ms": TARGET_P99_MS,
        "met": p99 < TARGET_P99_MS,
    }
    print(json.dumps(result))
    return 0


async def _create(state: Path) -> None:
    storage = await open_async_storage(state / DATABASE_FILENAME)  # creates the schema
    await storage.close()


if __name__ == "__main__":
    sys.exit(main())
