"""User accounts: password hashes, the JWT secret and tokens, registration, login and its throttle.

PROTOCOL.md "POST /login, POST /register": the token is a signed JWT (expiry, user id, role); a
registration code is issued by the operator (single use, expiring) or, on a bench configuration
only, the fixed code from the config. Passwords, tokens and codes never reach a log line or an
exception message (PROTOCOL "General").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import jwt

from controller.storage import AsyncStorage, CodeRefused, DuplicateUsername, StorageError
from controller.storage_schema import Role
from server.errors import ApiError

log = logging.getLogger(__name__)

SECRET_FILENAME = "jwt.secret"
SECRET_BYTES = 32  # HS256 wants a key of at least its hash size (PyJWT warns below 32 bytes)
TOKEN_ALGORITHM = "HS256"
USERNAME_MAX = 64  # these three are also in the refusals' sentences (_REFUSALS)
PASSWORD_MIN, PASSWORD_MAX = 6, 256
USERNAME_SYMBOLS = frozenset("_.-@")

# scrypt (RFC 7914) is memory-hard, so guessing on GPUs costs memory as well as time. n=2**14,
# r=8 takes 16 MiB and about 50 ms here. The parameters travel in the stored string, so raising
# them later leaves the old hashes readable.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
_SCHEME = "scrypt"
# A stored string with absurd parameters (a damaged or hostile row) must not take the box down.
_SCRYPT_MAX_MEMORY = 1 << 30


class AccountError(ApiError):
    """A refusal the user sees: `error` is the stable key, `msg` the sentence, `status` HTTP's."""

    def __init__(self, error: str, msg: str, status: int) -> None:
        super().__init__(status, error, msg)


class Claims(NamedTuple):
    user_id: int
    username: str
    role: str  # "driver" or "operator"


# -- password hashes ------------------------------------------------------------------------------
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


def _dummy_hash(n: int) -> str:
    """Checked against when the user is unknown, so that "no such user" costs the same scrypt as
    "wrong password" and the two cannot be told apart by the delay. Its hash matches nothing."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{_SCHEME}${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(bytes(SCRYPT_DKLEN))}"


# -- the signing secret ---------------------------------------------------------------------------
def load_secret(state_dir: Path) -> bytes:
    """The JWT signing key in state_dir/jwt.secret, made on first start (mode 0600)."""
    path = Path(state_dir) / SECRET_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
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


# -- the login throttle ---------------------------------------------------------------------------
class LoginThrottle:
    """At most `max_failures` failed logins per key within a sliding `window_s`; then the key is
    refused (429), even with the right password, until the oldest failure leaves the window."""

    MAX_KEYS = 10_000  # keys are chosen by clients: past this many, aged-out ones are dropped

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now_s: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is not None:
            while failures and failures[0] <= now_s - self.window_s:
                failures.popleft()
            if not failures:
                del self._failures[key]
                return None
        return failures

    def check(self, key: str) -> None:
        now_s = self._clock()
        failures = self._recent(key, now_s)
        if failures is not None and len(failures) >= self.max_failures:
            wait_s = max(1, round(failures[0] + self.window_s - now_s))
            raise AccountError(
                "too_many_attempts",
                f"登录失败次数过多，请 {wait_s} 秒后再试 "
                f"(too many failed logins; try again in {wait_s} s)",
                429,
            )

    def failed(self, key: str) -> None:
        now_s = self._clock()
        if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
            for old in list(self._failures):  # drop what has aged out before growing
                self._recent(old, now_s)
        self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now_s)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


# -- accounts -------------------------------------------------------------------------------------
# The refusals users see, by their stable key (PROTOCOL "General"): HTTP status and sentence.
_REFUSALS: dict[str, tuple[int, str]] = {
    "bad_username": (
        400,
        "用户名须为 1-64 个字母、数字或 _.-@ (username: 1-64 letters, digits, _.-@)",
    ),
    "bad_password": (400, "密码须为 6-256 个字符 (password: 6 to 256 characters)"),
    "bad_role": (400, "角色须为 driver 或 operator (role: driver or operator)"),
    "bad_credentials": (401, "用户名或密码错误 (wrong username or password)"),
    "bad_token": (401, "token 无效，请重新登录 (invalid token; log in again)"),
    "token_expired": (401, "登录已过期，请重新登录 (token expired; log in again)"),
    "bad_code": (403, "注册码无效、已使用或已过期 (registration code unknown, used or expired)"),
    "username_taken": (409, "用户名已被占用，请另选 (username taken; choose another)"),
}
_ROLES = frozenset(r.value for r in Role)
_DECODE_OPTIONS: Any = {
    "require": ["exp", "iat", "sub", "name", "role"],
    # Expiry is checked against the injected clock (Accounts.verify), not PyJWT's wall clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


def _refusal(error: str) -> AccountError:
    status, msg = _REFUSALS[error]
    return AccountError(error, msg, status)


def _validated(username: str, password: str) -> str:
    """The username as stored, if it and the password follow the rules."""
    # NFC: the same name typed on two keyboards is one name. Letters include CJK (isalpha).
    name = unicodedata.normalize("NFC", username)
    if not 1 <= len(name) <= USERNAME_MAX or not all(
        c.isalpha() or c in "0123456789" or c in USERNAME_SYMBOLS for c in name
    ):
        raise _refusal("bad_username")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise _refusal("bad_password")
    return name


class Accounts:
    """Registration, login and tokens over the station's storage."""

    def __init__(
        self,
        storage: AsyncStorage,
        secret: bytes,
        *,
        token_ttl_s: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.time,
        bench_code: str | None = None,
        throttle: LoginThrottle | None = None,
        scrypt_n: int = SCRYPT_N,
    ) -> None:
        """`scrypt_n` below the default is for the tests only (fast hashing)."""
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the token signing key must be at least {SECRET_BYTES} bytes")
        if bench_code == "":
            # An empty fixed code would let anybody register; refuse the configuration instead.
            raise ValueError("bench_code must not be empty (leave it unset to turn it off)")
        self._storage = storage
        self._secret = secret
        self._ttl_s = token_ttl_s
        self._clock = clock
        self._bench_code = bench_code
        self._throttle = throttle if throttle is not None else LoginThrottle()
        self._scrypt_n = scrypt_n
        self._dummy_hash = _dummy_hash(scrypt_n)
        if bench_code is not None:
            log.warning("bench configuration: the fixed registration code is accepted")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _audit(self, user_id: int | None, action: str, detail: dict[str, str]) -> None:
        # The record follows a change already made: failing to write it must not turn the
        # change into an error the caller would retry (a second user, a second code).
        try:
            await self._storage.audit(user_id, action, detail, self._now())
        except StorageError as exc:
            log.warning("audit entry %s for user %s not written: %s", action, user_id, exc)

    async def register(self, username: str, password: str, code: str) -> str:
        """A new driver, with a registration code; returns their token."""
        username = _validated(username, password)
        # scrypt in a worker thread: 50 ms of hashing must not stall every other client.
        password_hash = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        now = self._now()
        bench = self._bench_code is not None and hmac.compare_digest(
            code.encode("utf-8"), self._bench_code.encode("utf-8")
        )
        try:
            if bench:
                user_id = await self._storage.add_user(username, password_hash, Role.DRIVER, now)
            else:
                user_id = await self._storage.register(
                    username, password_hash, Role.DRIVER, code, now
                )
        except DuplicateUsername:
            raise _refusal("username_taken") from None
        except CodeRefused:
            raise _refusal("bad_code") from None
        via = "bench_code" if bench else "code"
        await self._audit(user_id, "register", {"username": username, "via": via})
        log.info("user %s (id %s) registered with a %s", username, user_id, via)
        return self.token_for(user_id, username, Role.DRIVER.value)

    async def login(self, username: str, password: str, client_ip: str = "") -> str:
        """A token for the right password; the same bad_credentials whoever is unknown."""
        key = f"{username}|{client_ip}"
        self._throttle.check(key)  # first, so a locked key costs no hashing
        # The attempt counts as failed until it succeeds: attempts sent all at once are then
        # counted before their slow checks finish, and cannot slip past the limit together.
        self._throttle.failed(key)
        user = await self._storage.user_by_name(unicodedata.normalize("NFC", username))
        stored = user.password_hash if user is not None else self._dummy_hash
        ok = await asyncio.to_thread(check_password, password, stored)
        if user is None or not ok:
            # The name only when it is an account's: a password typed into the name field by
            # mistake must not reach the log.
            who = f"user {user.username}" if user is not None else "an unknown user"
            log.info("failed login for %s from %s", who, client_ip or "?")
            raise _refusal("bad_credentials")
        self._throttle.succeeded(key)
        return self.token_for(user.id, user.username, user.role.value)

    def verify(self, token: str) -> Claims:
        """The claims of a token this station signed and that has not expired."""
        try:
            # algorithms pinned: a token naming "none" or another algorithm is refused.
            payload: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[TOKEN_ALGORITHM], options=_DECODE_OPTIONS
            )
            exp, sub = payload["exp"], payload["sub"]
            name, role = payload["name"], payload["role"]
            if isinstance(exp, bool) or not isinstance(exp, int | float):
                raise jwt.InvalidTokenError("exp is not a number")
            if not (isinstance(name, str) and role in _ROLES):
                raise jwt.InvalidTokenError("bad name or role")
            claims = Claims(int(sub), name, role)
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise _refusal("bad_token") from None
        if self._clock() >= exp:
            raise _refusal("token_expired")
        return claims

    async def create_user(self, username: str, password: str, role: str) -> int:
        """A user of any role, for the command line (operators are made this way)."""
        username = _validated(username, password)
        if role not in _ROLES:
            raise _refusal("bad_role")
        role_value = Role(role)
        password_hash = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        now = self._now()
        try:
            user_id = await self._storage.add_user(username, password_hash, role_value, now)
        except DuplicateUsername:
            raise _refusal("username_taken") from None
        await self._audit(user_id, "create_user", {"username": username, "role": role_value})
        log.info("user %s (id %s) created as %s", username, user_id, role_value.value)
        return user_id

    async def issue_code(self, ttl_s: int = 7 * 24 * 3600) -> str:
        """A new single-use registration code valid for ttl_s seconds."""
        if ttl_s <= 0:
            raise ValueError(f"a registration code's lifetime must be above 0 s, not {ttl_s}")
        code = secrets.token_urlsafe(12)  # 96 random bits: /register is not throttled
        now = self._now()
        expires = now + timedelta(seconds=ttl_s)
        await self._storage.issue_code(code, expires, now)
        # The code is a credential until spent: the audit keeps its expiry, not the code.
        await self._audit(None, "issue_code", {"expires": expires.isoformat()})
        log.info("issued a registration code valid until %s", expires.isoformat())
        return code

    def token_for(self, user_id: int, username: str, role: str) -> str:
        """An HS256 token for the user; `sub` is a string (PyJWT refuses others)."""
        now_s = int(self._clock())
        payload = {
            "sub": str(user_id),
            "name": username,
            "role": Role(role).value,
            "iat": now_s,
            "exp": now_s + self._ttl_s,
        }
        return jwt.encode(payload, self._secret, algorithm=TOKEN_ALGORITHM)
