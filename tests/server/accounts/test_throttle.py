"""The throttle of /login and /register: failures are budgeted per address whatever the name,
failures on a name from anywhere delay (never refuse) the next attempts on it, and a success
forgives only that address's failures for that name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import server.accounts.accounts
from server.accounts.accounts import AccountError, Accounts, LoginThrottle
from server.accounts.throttle import address_key
from server.assembly.database import open_async_storage
from tests.firmware_sim.fakes import FakeClock
from tests.kits.station_kit import KEY, PASSWORD, Station, running_station


class World:
    def __init__(self, accounts: Accounts, clock: FakeClock, delays_s: list[float]) -> None:
        self.accounts = accounts
        self.clock = clock
        self.delays_s = delays_s  # what attempts were made to wait, in order

    async def login(self, name: str, password: str, ip: str) -> str:
        """The token, or the refusal's error key."""
        try:
            return await self.accounts.login(name, password, ip)
        except AccountError as exc:
            return exc.error


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    storage = await open_async_storage(tmp_path / "station.sqlite3")
    clock = FakeClock()
    delays_s: list[float] = []

    async def sleep(seconds: float) -> None:
        delays_s.append(seconds)

    throttle = LoginThrottle(clock=clock, sleep=sleep)
    accounts = Accounts(storage, KEY, clock=lambda: 1.8e9, throttle=throttle, scrypt_n=16)
    await accounts.create_user("alice", PASSWORD, "driver")
    await accounts.create_user("mallory", PASSWORD, "driver")
    yield World(accounts, clock, delays_s)
    await storage.close()


@pytest.mark.asyncio
async def test_one_password_sprayed_over_many_names_is_stopped_per_address(world: World) -> None:
    answers = [await world.login(f"user{i}", "Summer2026!", "10.0.0.9") for i in range(8)]
    assert answers == ["bad_credentials"] * 5 + ["too_many_attempts"] * 3
    # The guessing address only: alice elsewhere logs in at once, with no delay.
    assert (await world.login("alice", PASSWORD, "10.0.0.7")).count(".") == 2
    assert world.delays_s == []
    world.clock.advance(301)  # the budget's window
    assert await world.login("user9", "Summer2026!", "10.0.0.9") == "bad_credentials"


@pytest.mark.asyncio
async def test_failures_on_a_name_from_many_addresses_delay_it_but_never_lock_it(
    world: World,
) -> None:
    for n in range(4):  # 20 wrong passwords for alice from four addresses, five each
        for _ in range(5):
            assert await world.login("alice", "guess-123", f"10.0.1.{n}") == "bad_credentials"
    # Past the 5 free failures each attempt on alice waited, doubling up to the cap of 8 s.
    assert world.delays_s == [1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]
    world.delays_s.clear()
    token = await world.login("alice", PASSWORD, "10.0.0.7")  # her own address
    assert token.count(".") == 2  # the right password: delayed as long, never refused
    assert world.delays_s == [8]
    assert await world.login("mallory", PASSWORD, "10.0.1.9") != "too_many_attempts"
    world.clock.advance(901)  # the name's window: the delay is gone
    world.delays_s.clear()
    await world.login("alice", PASSWORD, "10.0.0.7")
    assert world.delays_s == []


@pytest.mark.asyncio
async def test_a_success_forgives_only_that_names_failures(world: World) -> None:
    for _ in range(4):  # alice mistypes, then gets it right: her failures are forgiven
        assert await world.login("alice", "typo-typo", "10.0.0.5") == "bad_credentials"
    assert (await world.login("alice", PASSWORD, "10.0.0.5")).count(".") == 2
    for _ in range(4):
        assert await world.login("alice", "typo-typo", "10.0.0.5") == "bad_credentials"
    # Mallory guesses alice's password, then logs into her own account to launder the count:
    # only failures for mallory would be forgiven, so the budget stays spent.
    for _ in range(4):
        await world.login("alice", "guess-1", "10.0.0.66")
    assert (await world.login("mallory", PASSWORD, "10.0.0.66")).count(".") == 2
    assert await world.login("alice", "guess-2", "10.0.0.66") == "bad_credentials"
    assert await world.login("alice", "guess-3", "10.0.0.66") == "too_many_attempts"


def test_an_ipv6_host_counts_by_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:10.0.0.9") == "10.0.0.9" == address_key("10.0.0.9")
    assert address_key("") == ""


@pytest_asyncio.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with running_station(tmp_path) as s:
        yield s


@pytest.mark.asyncio
async def test_register_is_budgeted_per_address_and_a_bad_code_costs_no_hashing(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real = server.accounts.accounts.hash_password
    monkeypatch.setattr(
        server.accounts.accounts, "hash_password", lambda p, n: hashed.append(p) or real(p, n=n)
    )
    codes = [await station.accounts.issue_code() for _ in range(7)]
    for i, code in enumerate(codes[:6]):  # successes are not counted against the address
        query = {"username": f"new{i}", "password": PASSWORD, "code": code}
        assert (await station.call("POST", "/register", query))[0] == 200
    assert len(hashed) == 6
    errors = []
    for i in range(7):
        query = {"username": f"guess{i}", "password": PASSWORD, "code": f"guess-{i}"}
        status, body = await station.call("POST", "/register", query)
        errors.append((status, body["error"]))
    assert errors == [(403, "bad_code")] * 5 + [(429, "too_many_attempts")] * 2
    assert len(hashed) == 6  # a wrong code was refused before any scrypt
    # Over budget, a good code waits too (the window, not for ever).
    query = {"username": "late", "password": PASSWORD, "code": codes[6]}
    status, body = await station.call("POST", "/register", query)
    assert (status, body["error"]) == (429, "too_many_attempts")
    station.clock.advance(301)
    assert (await station.call("POST", "/register", query))[0] == 200
