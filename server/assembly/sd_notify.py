"""systemd's notification protocol (sd_notify(3)), the few lines of it the station needs.

Under `Type=notify` systemd passes a datagram socket in $NOTIFY_SOCKET: the station sends
`READY=1` when it serves, `WATCHDOG=1` from its control loop (so a stalled loop is restarted
after `WatchdogSec`), `STATUS=…` for `systemctl status`, and `STOPPING=1` on the way out.
Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        if address:
            # "@name" is an abstract socket: its name starts with a NUL byte.
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        watchdog_us = os.environ.get("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.get("WATCHDOG_PID", "")
        # systemd asks for a heartbeat every WATCHDOG_USEC; half of that leaves a margin.
        self.watchdog_every_s: float | None = None
        if watchdog_us.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_every_s = int(watchdog_us) / 2e6
        self._last_watchdog_s = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        """Send `KEY=VALUE` fields in one datagram; a lost datagram is logged, never raised."""
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("systemd notification %s not sent: %s", fields[0], exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: sessions billed, piles stopped")

    def watchdog(self) -> None:
        """Feed systemd's watchdog, at most every half WatchdogSec (the loop ticks faster)."""
        if self.address is None:
            return
        now_s = time.monotonic()
        if self.watchdog_every_s is not None and now_s - self._last_watchdog_s < (
            self.watchdog_every_s
        ):
            return
        self._last_watchdog_s = now_s
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
