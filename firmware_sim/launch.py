"""Starting `pile-sim` as a process of its own, for whoever needs simulated piles at the wire:
the demo, the end-to-end tests and the benchmarks. The station then reaches them over Modbus
exactly as it reaches hardware, and faults are injected through the control channel.

Standard library only: the control channel is plain HTTP/1.1 JSON (firmware_sim.control).
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
CONTROL_TIMEOUT_S = 10.0


class LaunchError(RuntimeError):
    """pile-sim did not start, or its control channel refused a request; the message says why."""


class PileSimProcess:
    """One running `pile-sim`; `line` is its start-up line (docs/simulator.md)."""

    def __init__(self, proc: subprocess.Popen[str], line: dict[str, Any]) -> None:
        self.proc = proc
        self.line = line
        control = line["control"]
        self.control_url = f"http://{control['host']}:{control['port']}"

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        *,
        stderr: Any = subprocess.DEVNULL,
        timeout_s: float = START_TIMEOUT_S,
    ) -> PileSimProcess:
        """Run `pile-sim ARGS` (from this interpreter's environment) and wait for its
        start-up line."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            # Its own session: a Ctrl-C at the terminal reaches the station, which stops the
            # piles safely, and not the piles themselves first.
            start_new_session=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        text = proc.stdout.readline() if ready else ""
        if not text:
            proc.kill()
            proc.wait()
            raise LaunchError(
                f"pile-sim {' '.join(args)} did not start within {timeout_s:g} s "
                f"(exit status {proc.returncode})"
            )
        return cls(proc, json.loads(text))

    # -- where the piles are -------------------------------------------------------------------
    def tcp_port(self, unit: int) -> int:
        tcp = self.line["tcp"]
        if tcp is None:
            raise LaunchError("this pile-sim serves no TCP")
        return int(tcp["ports"][str(unit)])

    def tcp_link(self, unit: int) -> str:
        """The station's `link` setting that reaches `unit` (drivers.link_spec)."""
        return f"tcp://{self.line['tcp']['host']}:{self.tcp_port(unit)}"

    @property
    def serial_path(self) -> str:
        if not self.line["serial"]:
            raise LaunchError("this pile-sim serves no serial bus")
        return str(self.line["serial"])

    # -- the control channel -------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.control_url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=CONTROL_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise LaunchError(f"pile-sim {method} {path}: {exc.read().decode()}") from None

    def state(self) -> dict[str, Any]:
        """Every unit as the simulator sees it (its own meters: the truth for billing checks)."""
        return self._call("GET", "/state")

    def unit(self, unit: int) -> dict[str, Any]:
        for entry in self.state()["units"]:
            if entry["unit"] == unit:
                return entry
        raise LaunchError(f"pile-sim has no unit {unit}")

    def fault(self, unit: int, kind: str, **params: int) -> dict[str, Any]:
        return self._call("POST", "/fault", {"unit": unit, "kind": kind, **params})

    def clear(self, unit: int, kind: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"unit": unit}
        if kind is not None:
            body["kind"] = kind
        return self._call("POST", "/clear", body)

    def vehicle(self, unit: int, plugged: bool) -> dict[str, Any]:
        return self._call("POST", "/vehicle", {"unit": unit, "plugged": plugged})

    # -- stopping --------------------------------------------------------------------------------
    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, and SIGKILL if it does not exit in time; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> PileSimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
