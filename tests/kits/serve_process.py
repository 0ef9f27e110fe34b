"""`charge-station serve` as a real process for the tests: started, and its URL read from the
line it prints once it listens."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).parent / "charge-station"
# One fast pile at a bench speed-up, on a free port, with the bench registration code.
CONFIG = """
[clock]
scale = 600            # ten station minutes a real second

[server]
port = 0
poll_s = 2

[accounts]
bench_registration_code = "bench-only-code"

[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30
"""


def start_serve(
    config: Path, state: Path, *, stderr: Any = subprocess.PIPE
) -> tuple[subprocess.Popen[str], str]:
    """The running station and its URL (http://HOST:PORT, or https:// with TLS)."""
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--config", str(config), "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.fullmatch(r"station listening on (https?://\S+)\n", line)
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"the station did not start: {line!r} {err or ''}")
    return proc, match.group(1)


def start(config: Path, state: Path) -> tuple[subprocess.Popen[str], str]:
    """The station, and its HOST:PORT."""
    proc, url = start_serve(config, state)
    assert url.startswith("http://"), url
    return proc, url.removeprefix("http://")
