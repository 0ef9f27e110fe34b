"""The operator's commands on accounts: user add, passwd, revoke and remove, and codes issue.
They work while the station runs, too: it counts a new password, a revocation or a removal
within a second (server.accounts.user_directory)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from server.exit_codes import EXIT_BAD_INPUT, EXIT_OK


async def _accounts(state_dir: Path) -> tuple[Any, Any]:
    from controller import state_dir as state_files
    from controller.storage import DATABASE_FILENAME
    from server.accounts.accounts import Accounts, load_secret
    from server.assembly.database import open_async_storage

    state_files.prepare(state_dir)  # 0700: the database and the signing key are in it
    storage = await open_async_storage(state_dir / DATABASE_FILENAME)
    return storage, Accounts(storage, load_secret(state_dir))


def _read_password(username: str) -> str:
    # The password comes from standard input, never from the command line (ps would show it).
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"password for {username}: ")
    return sys.stdin.readline().rstrip("\n")


def _account_change(state: str, change: Callable[[Any], Awaitable[str]]) -> int:
    """change(accounts) on the state directory: its sentence on success, the refusal's on
    standard error (exit status 2) otherwise."""
    from server.accounts.accounts import AccountError

    async def run() -> int:
        storage, accounts = await _accounts(Path(state))
        try:
            done = await change(accounts)
        except AccountError as exc:
            print(f"charge-station: {exc.msg}", file=sys.stderr)
            return EXIT_BAD_INPUT
        finally:
            await storage.close()
        print(done)
        return EXIT_OK

    return asyncio.run(run())


def user_add(args: argparse.Namespace) -> int:
    password = _read_password(args.username)

    async def change(accounts: Any) -> str:
        user_id = await accounts.create_user(args.username, password, args.role)
        return f"user {args.username} ({args.role}) created with id {user_id}"

    return _account_change(args.state, change)


def user_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args.username)

    async def change(accounts: Any) -> str:
        await accounts.set_password(args.username, password)
        return f"user {args.username}: new password set; every earlier token has ended"

    return _account_change(args.state, change)


def user_revoke(args: argparse.Namespace) -> int:
    async def change(accounts: Any) -> str:
        await accounts.end_tokens(args.username)
        return f"user {args.username}: every token has ended; the password still works"

    return _account_change(args.state, change)


def user_remove(args: argparse.Namespace) -> int:
    async def change(accounts: Any) -> str:
        await accounts.remove_user(args.username)
        return (
            f"user {args.username} removed: no more logins and every token has ended; "
            "their bills are kept and the name stays taken"
        )

    return _account_change(args.state, change)


def code_issue(args: argparse.Namespace) -> int:
    async def run() -> int:
        storage, accounts = await _accounts(Path(args.state))
        try:
            for _ in range(args.count):
                print(await accounts.issue_code(ttl_s=int(args.hours * 3600)))
        finally:
            await storage.close()
        return EXIT_OK

    if not 0 < args.hours <= 24 * 365:
        print("charge-station: --hours must be above 0 and at most a year", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 1 <= args.count <= 1000:
        print("charge-station: N must be from 1 to 1000", file=sys.stderr)
        return EXIT_BAD_INPUT
    return asyncio.run(run())
