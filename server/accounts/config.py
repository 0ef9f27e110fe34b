"""The [accounts] section: a bench registration code, and how long a token lasts."""

from __future__ import annotations

from typing import Any, NamedTuple

from controller.config_values import ConfigError, no_unknown, whole_number

ACCOUNT_KEYS = {"bench_registration_code", "token_ttl_s"}


class AccountSettings(NamedTuple):
    # A fixed registration code makes a *bench* configuration (PROTOCOL.md); never the default.
    bench_registration_code: str | None = None
    token_ttl_s: int = 7 * 24 * 3600


def parse_accounts(table: dict[str, Any]) -> AccountSettings:
    no_unknown(table, "accounts", ACCOUNT_KEYS)
    code = table.get("bench_registration_code")
    if code is not None and (not isinstance(code, str) or len(code) < 8):
        raise ConfigError(
            "accounts.bench_registration_code", "must be text of 8 characters or more"
        )
    ttl = whole_number(
        table, "accounts", "token_ttl_s", AccountSettings().token_ttl_s, 60, 365 * 24 * 3600
    )
    return AccountSettings(code, ttl)
