"""Under systemd (Type=notify): READY=1 once every pile has answered (or after the readiness
timeout, naming the silent piles), WATCHDOG=1 only from a control loop that runs, STOPPING=1 on
the way out. A datagram socket of the test stands in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from controller.config import ClockSettings
from server.assembly.config import default_config, parse_config
from server.assembly.sd_notify import Notifier
from server.assembly.service import Service
from server.http.config import ServerSettings


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.received: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.received
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.received.append(fields)

    async def wait_for(self, key: str, timeout_s: float = 10.0) -> dict[str, str]:
        async with asyncio.timeout(timeout_s):
            while True:
                for fields in self.drain():
                    if key in fields:
                        return fields
                await asyncio.sleep(0.01)

    def count(self, key: str) -> int:
        return sum(key in fields for fields in self.drain())


@pytest_asyncio.fixture
async def systemd(tmp_path: Path) -> AsyncIterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.sock.close()


def station_config(poll_s: float = 0.05, **server: object):  # type: ignore[no-untyped-def]
    return default_config()._replace(
        clock=ClockSettings(scale=1.0), server=ServerSettings(port=0, poll_s=poll_s, **server)
    )


@pytest.mark.asyncio
async def test_ready_after_every_pile_answered_then_watchdog_then_stopping(
    tmp_path: Path, systemd: FakeSystemd
) -> None:
    service = await Service.start(
        station_config(), tmp_path / "state", notifier=Notifier(systemd.path)
    )
    try:
        ready = await systemd.wait_for("READY")
        assert ready["READY"] == "1" and "every pile answered" in ready["STATUS"]
        assert service.loop.all_answered  # the five piles of the brief's station
        before = systemd.count("WATCHDOG")
        await asyncio.sleep(0.3)  # six ticks of 50 ms
        assert systemd.count("WATCHDOG") > before
    finally:
        await service.stop()
    assert "STOPPING" in systemd.drain()[-1]


@pytest.mark.asyncio
async def test_a_stalled_control_loop_stops_feeding_the_watchdog(
    tmp_path: Path, systemd: FakeSystemd
) -> None:
    service = await Service.start(
        station_config(), tmp_path / "state", notifier=Notifier(systemd.path)
    )
    try:
        await systemd.wait_for("WATCHDOG")
        # A pile read that never returns: the loop hangs in its tick, as it would on a driver
        # without a timeout. systemd must hear nothing more from it, and restart it.
        hang = asyncio.Event()

        async def never() -> None:
            await hang.wait()

        service.loop.runtimes[1].device.read_status = never  # type: ignore[method-assign,assignment]
        await asyncio.sleep(0.2)  # any tick under way ends
        before = systemd.count("WATCHDOG")
        await asyncio.sleep(0.4)  # eight ticks' worth
        assert systemd.count("WATCHDOG") == before
        hang.set()
    finally:
        await service.stop()


@pytest.mark.asyncio
async def test_ready_after_the_timeout_names_the_pile_that_did_not_answer(
    tmp_path: Path, systemd: FakeSystemd, caplog: pytest.LogCaptureFixture
) -> None:
    # A pile on a port where nothing listens: it never answers.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead_port = free.getsockname()[1]
    config = parse_config(
        {
            "server": {"port": 0, "poll_s": 0.05, "ready_timeout_s": 0.5},
            "piles": [
                {"id": 1, "name": "A", "mode": "fast", "power_kw": 30},
                {
                    "id": 2,
                    "name": "Gone",
                    "mode": "fast",
                    "power_kw": 30,
                    "link": f"tcp://127.0.0.1:{dead_port}?timeout=0.05",
                },
            ],
        }
    )
    caplog.set_level(logging.INFO)
    service = await Service.start(config, tmp_path / "state", notifier=Notifier(systemd.path))
    try:
        ready = await systemd.wait_for("READY", timeout_s=5)
        assert ready["STATUS"] == "serving; no answer from Gone"
        # The banner named both piles and their links once.
        banner = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pile ")]
        assert any(
            m.startswith("pile A (stationId 1): fast 30 kW, reference on sim") for m in banner
        )
        assert any(f"on tcp://127.0.0.1:{dead_port}" in m for m in banner)
    finally:
        await service.stop()


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready("x")  # does nothing, raises nothing
    notifier.watchdog()


def test_watchdog_is_fed_at_most_every_half_watchdog_sec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSystemd(tmp_path / "n.sock")
    monkeypatch.setenv("WATCHDOG_USEC", str(30_000_000))  # WatchdogSec=30
    notifier = Notifier(fake.path)
    assert notifier.watchdog_every_s == 15.0
    for _ in range(100):  # a hundred ticks in a moment: one datagram
        notifier.watchdog()
    assert fake.count("WATCHDOG") == 1
    fake.sock.close()
