"""How fast passwords and registration codes can be guessed: a budget of failures per client
address, and a delay per username that never becomes a refusal.

Why this shape (docs/reliability.md, "Security"):
- Per address, because that is what a guesser pays for: every failed login from an address
  counts, whichever name it was for, so spraying one password over many names is slowed as
  much as guessing one name. Over budget, the address is refused (429), the right password
  too: only the guesser's own address is shut, nobody else's. A success refunds the failures
  that address had for that same name (the driver who mistyped), not those for other names,
  so an attacker's own account cannot launder their guesses.
- Per name, a delay: failures for a name from any address make each next attempt on that name
  wait, doubling up to a cap. The right password waits as long as a wrong one (a delay only on
  failures would tell a guesser to give up waiting early), and is never refused: anyone can
  slow a driver's login down by a few seconds, nobody can lock them out.
- IPv6 addresses count by their /64: one host is routinely given a whole /64 to pick from.

Failures are charged before the password is checked and refunded on success: attempts sent at
once are counted before their slow checks finish, and cannot pass the limit together.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

MAX_KEYS = 10_000  # addresses and names are chosen by clients: the memory they take is bounded


def address_key(ip: str) -> str:
    """What an address is counted as: IPv4 as it is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # "" in tests, or a Unix socket's peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Failure(NamedTuple):
    at_s: float
    other: str  # the name for a failure by address, the address for a failure by name


class _Window:
    """Failures per key within a sliding window, at most MAX_KEYS keys."""

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[_Failure]] = {}

    def recent(self, key: str) -> deque[_Failure]:
        now_s = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0].at_s <= now_s - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def add(self, key: str, other: str) -> None:
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            for old in list(self._failures):  # what has aged out goes first
                self.recent(old)
            while len(self._failures) >= MAX_KEYS:  # then the oldest keys: forgotten, not kept
                del self._failures[next(iter(self._failures))]
        self._failures.setdefault(key, deque()).append(_Failure(self._clock(), other))

    def remove(self, key: str, other: str) -> None:
        failures = self._failures.get(key)
        if failures is not None:
            kept = deque(f for f in failures if f.other != other)
            if kept:
                self._failures[key] = kept
            else:
                del self._failures[key]


class FailureBudget:
    """At most `max_failures` failures per address within a sliding `window_s`."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float]) -> None:
        self.max_failures = max_failures
        self._clock = clock
        self._window = _Window(window_s, clock)

    def wait_s(self, address: str) -> float | None:
        """None if the address may try now; else the seconds until its oldest failure ages out."""
        failures = self._window.recent(address)
        if len(failures) < self.max_failures:
            return None
        return max(1.0, failures[0].at_s + self._window.window_s - self._clock())

    def charge(self, address: str, name: str) -> None:
        self._window.add(address, name)

    def refund(self, address: str, name: str) -> None:
        """The address's failures for `name` are forgiven (its right password was given)."""
        self._window.remove(address, name)


class NameDelay:
    """Failures for a username from any address, within `window_s`: the first `free` cost
    nothing, then each attempt on the name waits first_s, doubling, at most max_s."""

    def __init__(
        self,
        free: int,
        window_s: float,
        first_s: float,
        max_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.free = free
        self.first_s = first_s
        self.max_s = max_s
        self._window = _Window(window_s, clock)

    def delay_s(self, name: str) -> float:
        over = len(self._window.recent(name)) - self.free
        if over < 0:
            return 0.0
        return min(self.max_s, self.first_s * 2 ** min(over, 32))

    def charge(self, name: str, address: str) -> None:
        self._window.add(name, address)

    def refund(self, name: str, address: str) -> None:
        self._window.remove(name, address)


class LoginThrottle:
    """The throttle of /login (per address and per name) and of /register (per address)."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        name_free_failures: int = 5,
        name_window_s: float = 900.0,
        name_first_delay_s: float = 1.0,
        name_max_delay_s: float = 8.0,
        max_registration_failures: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`max_failures` failed logins per address in `window_s`; `sleep` is for the tests."""
        self.logins = FailureBudget(max_failures, window_s, clock)
        self.names = NameDelay(
            name_free_failures, name_window_s, name_first_delay_s, name_max_delay_s, clock
        )
        self.registrations = FailureBudget(max_registration_failures, window_s, clock)
        self._sleep = sleep

    def login_wait_s(self, address: str) -> float | None:
        return self.logins.wait_s(address)

    async def login_attempt(self, name: str, address: str) -> None:
        """Charge a login attempt as failed, then wait out the name's delay (worked out from
        the failures before this one)."""
        delay_s = self.names.delay_s(name)
        self.logins.charge(address, name)
        self.names.charge(name, address)
        if delay_s > 0:
            await self._sleep(delay_s)

    def login_succeeded(self, name: str, address: str) -> None:
        self.logins.refund(address, name)
        self.names.refund(name, address)
