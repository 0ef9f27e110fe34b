"""The state directory and its files, readable by the station's user only.

The database holds password hashes, bills and the audit log, and the directory the token
signing key: the directory is 0700 and each file 0600, whatever the umask. Files made before
this rule (the database was 0644) are tightened when the station next opens them. SQLite gives
the -wal and -shm files the mode of the database itself, so making the database private first
makes them private too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """chmod `path` to `mode` if group or others have any access; a file the station does not
    own is left as it is, and said so (the station can still run)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        log.warning(
            "%s is open to group or others (mode %04o) and cannot be changed here; "
            "run `chmod %o %s` as its owner",
            path,
            current,
            mode,
            path,
        )
        return
    log.warning("%s was open to group or others (mode %04o); now %04o", path, current, mode)


def prepare(state_dir: Path) -> Path:
    """The state directory, made (with its parents) or tightened to 0700."""
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # mode: the last part only
    _tighten(state_dir, DIR_MODE)
    return state_dir


def private_database(path: Path) -> None:
    """The database file created empty with mode 0600 (SQLite takes an empty file as a new
    database), or tightened to it, with its -wal and -shm files, before SQLite opens it."""
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _tighten(each, FILE_MODE)
