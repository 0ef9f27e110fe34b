"""Operator commands: create a user from the command line, issue registration codes, in a
state directory of the station's own."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

from controller.storage import DATABASE_FILENAME
from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage

SCRIPT = Path(sys.executable).parent / "charge-station"


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_an_operator_is_created_and_a_code_issued(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    done = cli("user", "add", "olga", "--operator", "--state", state, stdin="olga-pass-1\n")
    assert done.returncode == 0, done.stderr
    assert "olga" in done.stdout and "olga-pass-1" not in done.stdout + done.stderr
    again = cli("user", "add", "olga", "--state", state, stdin="other-pass\n")
    assert again.returncode == 2 and "olga" not in again.stdout
    issued = cli("codes", "issue", "2", "--hours", "2", "--state", state)
    assert issued.returncode == 0, issued.stderr
    code, other = issued.stdout.split()
    assert len(code) >= 12 and code != other

    async def check() -> None:
        storage = await open_async_storage(Path(state) / DATABASE_FILENAME)
        accounts = Accounts(storage, load_secret(Path(state)))
        try:
            token = await accounts.login("olga", "olga-pass-1")
            assert accounts.verify(token).role == "operator"
            assert (
                accounts.verify(await accounts.register("dan", "dan-pass-1", code)).username
                == "dan"
            )
        finally:
            await storage.close()

    asyncio.run(check())
    assert cli("codes", "issue", "--hours", "0", "--state", state).returncode == 2
    assert cli("codes", "issue", "0", "--state", state).returncode == 2


def test_the_command_line_makes_a_private_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    done = cli("user", "add", "op", "--operator", "--state", str(state), stdin="op-pass-12\n")
    assert done.returncode == 0, done.stderr
    modes = [stat.S_IMODE(p.stat().st_mode) for p in (state, state / DATABASE_FILENAME)]
    assert modes == [0o700, 0o600]
    assert stat.S_IMODE((state / "jwt.secret").stat().st_mode) == 0o600
