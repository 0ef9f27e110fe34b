"""The driver's account and history: register, login, logout, status and log.

Passwords are read from the terminal without echo, or as one line of standard input when it is
not a terminal (scripts); never from the command line, where `ps` would show them.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from server.client import charge, render
from server.client.api import Station
from server.client.errors import Exit, Failure
from server.client.store import Login, Remembered, Store


def read_password(prompt: str, *, confirm: bool = False) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != password:
            raise Failure(Exit.USAGE, "the two passwords differ")
        return password
    line = sys.stdin.readline()
    if not line:
        raise Failure(Exit.USAGE, "no password: give it as one line on standard input")
    return line.rstrip("\r\n")


async def _signed_in(
    station: Station,
    path: str,
    form: dict[str, str],
    store: Store,
    remembered: Remembered,
) -> str:
    """POST /login or /register; the token kept for this station, which becomes the current."""
    data, _ = await station.call("POST", path, form=form, auth=False)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise Failure(Exit.UNREACHABLE, f"{station.target.url}{path}: the answer has no token")
    target = station.target
    login = Login(cafile=target.cafile, username=form["username"], token=token)
    store.save(remembered.with_login(target.url, login, make_current=True))
    return token


async def register(
    station: Station, username: str, code: str, store: Store, remembered: Remembered, out: TextIO
) -> int:
    password = read_password(f"password for {username}: ", confirm=True)
    form = {"username": username, "password": password, "code": code}
    await _signed_in(station, "/register", form, store, remembered)
    print(f"registered {username} at {station.target.url}; logged in", file=out)
    return Exit.OK


async def login(
    station: Station, username: str, store: Store, remembered: Remembered, out: TextIO
) -> int:
    password = read_password(f"password for {username}: ")
    form = {"username": username, "password": password}
    await _signed_in(station, "/login", form, store, remembered)
    print(f"logged in as {username} at {station.target.url}", file=out)
    return Exit.OK


def logout(url: str, store: Store, remembered: Remembered, out: TextIO) -> int:
    """The token is forgotten here (the station's tokens expire on their own)."""
    if remembered.login(url).token is None:
        print(f"not logged in to {url}", file=out)
        return Exit.OK
    store.save(remembered.without_token(url))
    print(f"logged out of {url}", file=out)
    return Exit.OK


async def status(station: Station, as_json: bool, out: TextIO) -> int:
    connection, state = await charge.attach(station)
    connection.close()
    if as_json:
        print(connection.last_text, file=out)  # the station's message as it came
        return Exit.OK
    print("\n".join(render.status_lines(state)), file=out)
    return Exit.OK


async def history(station: Station, num: int, as_json: bool, out: TextIO) -> int:
    bills, text = await station.call("GET", "/user/log", {"num": num})
    if as_json:
        print(text, file=out)  # the server's fields unchanged
        return Exit.OK
    if not isinstance(bills, list) or not bills:
        print("no bills yet", file=out)
        return Exit.OK
    print(render.log_table(bills), file=out)
    return Exit.OK
