"""User accounts: tokens, registration, login, and the changes that end a user's tokens (a new
password, a revocation, a removal).

PROTOCOL.md "POST /login, POST /register": the token is a signed JWT (expiry, user id, role); a
registration code is issued by the operator (single use, expiring) or, on a bench configuration
only, the fixed code from the config. A token is honoured only for a user who exists, is not
removed and still has the token's generation (`gen`); the role is the database's, not the
token's (server.accounts.user_directory). Passwords, tokens and codes never reach a log line or an
exception message (PROTOCOL "General").
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import jwt

from controller.storage import AsyncStorage, StorageError
from server.accounts import audit_log
from server.accounts import store as accounts_store
from server.accounts.passwords import SCRYPT_N, check_password, dummy_hash, hash_password
from server.accounts.signing_key import SECRET_BYTES, load_secret
from server.accounts.store import CodeRefused, DuplicateUsername, TokenHolder
from server.accounts.tables import Role, User
from server.accounts.throttle import LoginThrottle, address_key
from server.accounts.user_directory import UserDirectory
from server.http.errors import ApiError

__all__ = [  # what the rest of the server and the tests take from here
    "AccountError",
    "Accounts",
    "Claims",
    "LoginThrottle",
    "check_password",
    "hash_password",
    "load_secret",
]

log = logging.getLogger(__name__)

TOKEN_ALGORITHM = "HS256"
USERNAME_MAX = 64  # these three are also in the refusals' sentences (_REFUSALS)
PASSWORD_MIN, PASSWORD_MAX = 6, 256
USERNAME_SYMBOLS = frozenset("_.-@")


class AccountError(ApiError):
    """A refusal the user sees: `error` is the stable key, `msg` the sentence, `status` HTTP's."""

    def __init__(self, error: str, msg: str, status: int) -> None:
        super().__init__(status, error, msg)


class Claims(NamedTuple):
    user_id: int
    username: str
    role: str  # "driver" or "operator"


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
    "token_revoked": (
        401,
        "token 已失效（密码已改或已被注销），请重新登录 (token revoked; log in again)",
    ),
    "not_a_driver": (
        403,
        "运营账号不能充电，请用司机账号 (operator accounts cannot charge; use a driver account)",
    ),
    "unknown_user": (404, "没有这个用户 (no such user)"),
    "bad_code": (403, "注册码无效、已使用或已过期 (registration code unknown, used or expired)"),
    "username_taken": (409, "用户名已被占用，请另选 (username taken; choose another)"),
}
_ROLES = frozenset(r.value for r in Role)
_DECODE_OPTIONS: Any = {
    # `gen` is not required: tokens issued before generations existed count as generation 0.
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


def _too_many(wait_s: float, what: str) -> AccountError:
    wait = max(1, round(wait_s))
    return AccountError(
        "too_many_attempts",
        f"失败次数过多，请 {wait} 秒后再试 (too many failed {what} from this address; "
        f"try again in {wait} s)",
        429,
    )


def _holder(user: User) -> TokenHolder:
    removed = user.removed is not None
    return TokenHolder(user.id, user.username, user.role, user.token_generation, removed)


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
        self._dummy_hash = dummy_hash(scrypt_n)
        self.users = UserDirectory(storage)
        if bench_code is not None:
            log.warning("bench configuration: the fixed registration code is accepted")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _audit(self, user_id: int | None, action: str, detail: dict[str, str]) -> None:
        # The record follows a change already made: failing to write it must not turn the
        # change into an error the caller would retry (a second user, a second code).
        try:
            now = self._now()
            await self._storage.run(lambda s: audit_log.audit(s, user_id, action, detail, now))
        except StorageError as exc:
            log.warning("audit entry %s for user %s not written: %s", action, user_id, exc)

    async def register(self, username: str, password: str, code: str, client_ip: str = "") -> str:
        """A new driver, with a registration code; returns their token."""
        username = _validated(username, password)
        await self.users.ensure_loaded()
        address = address_key(client_ip)
        budget = self._throttle.registrations
        wait_s = budget.wait_s(address)
        if wait_s is not None:
            raise _too_many(wait_s, "registrations")
        budget.charge(address, username)  # until it succeeds, as for logins
        now = self._now()
        bench = self._bench_code is not None and hmac.compare_digest(
            code.encode("utf-8"), self._bench_code.encode("utf-8")
        )
        # A code that cannot be spent is refused before the password is hashed: a guess costs
        # a lookup, not 50 ms of scrypt. Spending it checks again, with the new user.
        if not bench and not await self._storage.run(
            lambda s: accounts_store.code_usable(s, code, now)
        ):
            raise _refusal("bad_code")
        # scrypt in a worker thread: 50 ms of hashing must not stall every other client.
        password_hash = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        try:
            if bench:
                user_id = await self._storage.run(
                    lambda s: accounts_store.add_user(s, username, password_hash, Role.DRIVER, now)
                )
            else:
                user_id = await self._storage.run(
                    lambda s: accounts_store.register(
                        s, username, password_hash, Role.DRIVER, code, now
                    )
                )
        except DuplicateUsername:
            raise _refusal("username_taken") from None
        except CodeRefused:
            raise _refusal("bad_code") from None
        budget.refund(address, username)
        self.users.put(TokenHolder(user_id, username, Role.DRIVER, 0))
        via = "bench_code" if bench else "code"
        await self._audit(user_id, "register", {"username": username, "via": via})
        log.info("user %s (id %s) registered with a %s", username, user_id, via)
        return self.token_for(user_id, username, Role.DRIVER.value, 0)

    async def login(self, username: str, password: str, client_ip: str = "") -> str:
        """A token for the right password; the same bad_credentials whoever is unknown."""
        name = unicodedata.normalize("NFC", username)
        # Longer than any account's: refused before it costs a hash or a throttle entry.
        if len(name) > USERNAME_MAX:
            raise _refusal("bad_username")
        if len(password) > PASSWORD_MAX:
            raise _refusal("bad_password")
        await self.users.ensure_loaded()
        address = address_key(client_ip)
        wait_s = self._throttle.login_wait_s(address)
        if wait_s is not None:  # first, so a refused address costs no hashing
            raise _too_many(wait_s, "logins")
        # The attempt counts as failed until it succeeds: attempts sent all at once are then
        # counted before their slow checks finish, and cannot slip past the limit together.
        await self._throttle.login_attempt(name, address)
        user = await self._storage.run(lambda s: accounts_store.user_by_name(s, name))
        if user is not None and user.removed is not None:
            self.users.put(_holder(user))
            user = None  # as unknown: same answer, same scrypt
        stored = user.password_hash if user is not None else self._dummy_hash
        ok = await asyncio.to_thread(check_password, password, stored)
        if user is None or not ok:
            # The name only when it is an account's: a password typed into the name field by
            # mistake must not reach the log.
            who = f"user {user.username}" if user is not None else "an unknown user"
            log.info("failed login for %s from %s", who, client_ip or "?")
            raise _refusal("bad_credentials")
        self._throttle.login_succeeded(name, address)
        # The row just read is the newest word on this user (it may have been made by the
        # command line a moment ago, before the directory's next poll).
        self.users.put(_holder(user))
        return self.token_for(user.id, user.username, user.role.value, user.token_generation)

    def verify(self, token: str) -> Claims:
        """The claims of a token this station signed, that has not expired, for a user who is
        not removed and whose token generation it carries; the role is the user's own."""
        try:
            # algorithms pinned: a token naming "none" or another algorithm is refused.
            payload: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[TOKEN_ALGORITHM], options=_DECODE_OPTIONS
            )
            exp, sub = payload["exp"], payload["sub"]
            name, role = payload["name"], payload["role"]
            generation = payload.get("gen", 0)
            if isinstance(exp, bool) or not isinstance(exp, int | float):
                raise jwt.InvalidTokenError("exp is not a number")
            if isinstance(generation, bool) or not isinstance(generation, int):
                raise jwt.InvalidTokenError("gen is not a whole number")
            if not (isinstance(name, str) and role in _ROLES):
                raise jwt.InvalidTokenError("bad name or role")
            user_id = int(sub)
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise _refusal("bad_token") from None
        if self._clock() >= exp:
            raise _refusal("token_expired")
        holder = self.users.get(user_id)
        if holder is None:  # never was, or removed: signed by us, but for nobody
            raise _refusal("bad_token")
        if generation != holder.token_generation:
            raise _refusal("token_revoked")
        return Claims(holder.id, holder.username, holder.role.value)

    def verify_driver(self, token: str) -> Claims:
        """verify, for a driver only: an operator's account runs the station, it does not
        queue cars (a charging request is billed to its account; server.driver_api.charge_ws)."""
        claims = self.verify(token)
        if claims.role != Role.DRIVER.value:
            raise _refusal("not_a_driver")
        return claims

    async def create_user(self, username: str, password: str, role: str) -> int:
        """A user of any role, for the command line (operators are made this way)."""
        username = _validated(username, password)
        if role not in _ROLES:
            raise _refusal("bad_role")
        await self.users.ensure_loaded()
        role_value = Role(role)
        password_hash = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        now = self._now()
        try:
            user_id = await self._storage.run(
                lambda s: accounts_store.add_user(s, username, password_hash, role_value, now)
            )
        except DuplicateUsername:
            raise _refusal("username_taken") from None
        self.users.put(TokenHolder(user_id, username, role_value, 0))
        await self._audit(user_id, "create_user", {"username": username, "role": role_value})
        log.info("user %s (id %s) created as %s", username, user_id, role_value.value)
        return user_id

    async def _active_user(self, username: str) -> User:
        await self.users.ensure_loaded()
        name = unicodedata.normalize("NFC", username)
        user = await self._storage.run(lambda s: accounts_store.user_by_name(s, name))
        if user is None or user.removed is not None:
            raise _refusal("unknown_user")
        return user

    async def set_password(self, username: str, password: str) -> None:
        """A new password for the user; every token issued to them before ends."""
        user = await self._active_user(username)
        _validated(user.username, password)
        password_hash = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        generation = await self._storage.run(
            lambda s: accounts_store.set_password(s, user.id, password_hash)
        )
        if generation is None:  # removed meanwhile
            raise _refusal("unknown_user")
        self.users.put(TokenHolder(user.id, user.username, user.role, generation))
        await self._audit(user.id, "set_password", {"username": user.username})
        log.info("user %s (id %s): new password; earlier tokens ended", user.username, user.id)

    async def end_tokens(self, username: str) -> None:
        """Every token issued to the user so far ends; they log in again (a leaked token)."""
        user = await self._active_user(username)
        generation = await self._storage.run(lambda s: accounts_store.end_tokens(s, user.id))
        if generation is None:
            raise _refusal("unknown_user")
        self.users.put(TokenHolder(user.id, user.username, user.role, generation))
        await self._audit(user.id, "end_tokens", {"username": user.username})
        log.info("user %s (id %s): every token ended", user.username, user.id)

    async def remove_user(self, username: str) -> None:
        """The user can no longer log in and their tokens end; their bills stay, and so does
        their name (no new account takes it over)."""
        user = await self._active_user(username)
        now = self._now()
        generation = await self._storage.run(lambda s: accounts_store.remove_user(s, user.id, now))
        if generation is None:
            raise _refusal("unknown_user")
        self.users.put(TokenHolder(user.id, user.username, user.role, generation, removed=True))
        await self._audit(user.id, "remove_user", {"username": user.username})
        log.info("user %s (id %s) removed", user.username, user.id)

    async def issue_code(self, ttl_s: int = 7 * 24 * 3600) -> str:
        """A new single-use registration code valid for ttl_s seconds."""
        if ttl_s <= 0:
            raise ValueError(f"a registration code's lifetime must be above 0 s, not {ttl_s}")
        code = secrets.token_urlsafe(12)  # 96 random bits: beyond even an unthrottled guesser
        while code.startswith("-"):  # typed after an option, it would read as another option
            code = secrets.token_urlsafe(12)
        now = self._now()
        expires = now + timedelta(seconds=ttl_s)
        await self._storage.run(lambda s: accounts_store.issue_code(s, code, expires, now))
        # The code is a credential until spent: the audit keeps its expiry, not the code.
        await self._audit(None, "issue_code", {"expires": expires.isoformat()})
        log.info("issued a registration code valid until %s", expires.isoformat())
        return code

    def token_for(
        self, user_id: int, username: str, role: str, generation: int | None = None
    ) -> str:
        """An HS256 token for the user; `sub` is a string (PyJWT refuses others). `gen` is the
        user's token generation (by default, as the directory has it now)."""
        if generation is None:
            holder = self.users.get(user_id)
            generation = holder.token_generation if holder is not None else 0
        now_s = int(self._clock())
        payload = {
            "sub": str(user_id),
            "name": username,
            "role": Role(role).value,
            "gen": generation,
            "iat": now_s,
            "exp": now_s + self._ttl_s,
        }
        return jwt.encode(payload, self._secret, algorithm=TOKEN_ALGORITHM)

    async def load_users(self) -> None:
        """Read the users who may hold tokens (at start-up)."""
        await self.users.load()

    async def refresh_users(self) -> bool:
        """Read them again if another process changed the database (the service polls this)."""
        return await self.users.refresh()
