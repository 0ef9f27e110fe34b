"""Password hashes: scrypt with a random salt, the parameters kept in the stored string.

Passwords never reach a log line or an exception message (PROTOCOL "General").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

log = logging.getLogger(__name__)

# scrypt (RFC 7914) is memory-hard, so guessing on GPUs costs memory as well as time. n=2**14,
# r=8 takes 16 MiB and about 50 ms here. The parameters travel in the stored string, so raising
# them later leaves the old hashes readable.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
_SCHEME = "scrypt"
# A stored string with absurd parameters (a damaged or hostile row) must not take the box down.
_SCRYPT_MAX_MEMORY = 1 << 30


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL needs about 128*r*(n+p+2) bytes; the default cap (32 MiB) would refuse stronger
    # parameters chosen later, so the cap follows the parameters, up to a sane limit.
    needed = 128 * r * (n + p + 2)
    if needed > _SCRYPT_MAX_MEMORY:
        raise ValueError("scrypt parameters need too much memory")
    secret = password.encode("utf-8")
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=needed + 2**20, dklen=dklen)


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """`scrypt$n$r$p$salt$hash` (base64): a new random salt each time. A lower `n` is for the
    tests only, to keep them fast."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"{_SCHEME}${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False for a stored string in no known format."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != _SCHEME:
            raise ValueError("unknown scheme")
        salt_bytes = base64.b64decode(salt, validate=True)
        expected_bytes = base64.b64decode(expected, validate=True)
        actual = _scrypt(password, salt_bytes, int(n), int(r), int(p), len(expected_bytes))
    except ValueError:  # binascii.Error is a ValueError too
        # The stored string alone is named, never the password; it holds no secret to leak.
        log.warning("a stored password hash is not in a known format; that login is refused")
        return False
    # Constant time: how much of the hash matched must not show in the answer's delay.
    return hmac.compare_digest(actual, expected_bytes)


def dummy_hash(n: int) -> str:
    """Checked against when the user is unknown, so that "no such user" costs the same scrypt as
    "wrong password" and the two cannot be told apart by the delay. Its hash matches nothing."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{_SCHEME}${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(bytes(SCRYPT_DKLEN))}"
