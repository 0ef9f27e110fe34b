"""The token signing key: a random secret in the state directory, readable by the station only."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from controller import state_dir

log = logging.getLogger(__name__)

SECRET_FILENAME = "jwt.secret"
SECRET_BYTES = 32  # HS256 wants a key of at least its hash size (PyJWT warns below 32 bytes)


def load_secret(directory: Path) -> bytes:
    """The JWT signing key in directory/jwt.secret, made on first start (mode 0600, in a
    directory of mode 0700)."""
    path = state_dir.prepare(Path(directory)) / SECRET_FILENAME
    try:
        # O_EXCL: of two starts racing, one creates; the mode is set at creation, so the key is
        # never readable by others, not even between a create and a chmod.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        secret = secrets.token_bytes(SECRET_BYTES)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())  # on disk before any token signed with it goes out
        log.info("created a new token signing key in %s", path)
        return secret
    with path.open("rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RuntimeError(f"token signing key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise RuntimeError(
                f"token signing key {path} is readable or writable by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}` and start again"
            )
        secret = f.read(4096)
    if len(secret) < SECRET_BYTES:
        raise RuntimeError(
            f"token signing key {path} holds {len(secret)} bytes, fewer than {SECRET_BYTES}; "
            "delete it to have a new one made at the next start (every issued token then "
            "becomes invalid)"
        )
    return secret
