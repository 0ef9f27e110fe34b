"""What the client remembers between runs: the station it uses, and per station the login (token
and username) and the CA file that verifies it, in `$XDG_CONFIG_HOME/charge-client/` (or
`~/.config/charge-client/`): the directory mode 0700, the file mode 0600.

Tokens are kept per station address, so a token is only ever sent to the station that issued it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from server.client.errors import Exit, Failure

APP_DIR = "charge-client"
FILE_NAME = "client.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Login:
    """One station as remembered: its CA file (None: the system's CAs) and the login on it."""

    cafile: str | None = None
    username: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Remembered:
    current: str | None = None  # the station used when neither --server nor the env names one
    stations: dict[str, Login] = field(default_factory=dict)

    def login(self, url: str) -> Login:
        return self.stations.get(url, Login())

    def with_login(self, url: str, login: Login, *, make_current: bool) -> Remembered:
        stations = {**self.stations, url: login}
        return Remembered(url if make_current else self.current, stations)

    def without_token(self, url: str) -> Remembered:
        login = replace(self.login(url), token=None)
        return Remembered(self.current, {**self.stations, url: login})


def config_dir(env: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """XDG base directories: $XDG_CONFIG_HOME if it is an absolute path, else ~/.config."""
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / APP_DIR


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def load(self) -> Remembered:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Remembered()
        except OSError as exc:
            raise Failure(Exit.USAGE, f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            return _parse(data)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Failure(
                Exit.USAGE,
                f"{self.path} is damaged",
                f"remove it and log in again: rm {self.path}",
            ) from None

    def save(self, remembered: Remembered) -> None:
        """Written whole to a new 0600 file that then replaces the old one: a crash leaves
        either the old file or the new one, never half of one."""
        data = {
            "version": FORMAT_VERSION,
            "current": remembered.current,
            "stations": {
                url: {k: v for k, v in vars(login).items() if v is not None}
                for url, login in remembered.stations.items()
            },
        }
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)  # ours: tightened if it was made looser
            fd, tmp = tempfile.mkstemp(prefix=".client-", dir=self.directory)  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=2, ensure_ascii=False)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise Failure(Exit.USAGE, f"cannot write {self.path}: {exc.strerror or exc}") from None


def _parse(data: Any) -> Remembered:
    stations = {}
    for url, entry in data.get("stations", {}).items():
        values = {k: entry.get(k) for k in ("cafile", "username", "token")}
        if not all(v is None or isinstance(v, str) for v in values.values()):
            raise ValueError(url)
        stations[str(url)] = Login(**values)
    current = data.get("current")
    if current is not None and not isinstance(current, str):
        raise ValueError("current")
    return Remembered(current, stations)
