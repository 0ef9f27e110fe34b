"""Reading one value of the TOML configuration: whole numbers, decimals, choices, paths and
tables, each refused with a ConfigError that names its key."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used; says which key and what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def key_name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def no_unknown(table: dict[str, Any], where: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            expected = ", ".join(sorted(known))
            raise ConfigError(key_name(where, key), f"unknown key (expected one of: {expected})")


def table_of(data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return value


def whole_number(
    table: dict[str, Any], where: str, key: str, default: int | None, lo: int, hi: int
) -> int:
    if key not in table and default is not None:
        return default
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key_name(where, key), f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(key_name(where, key), f"{value} is out of range {lo}..{hi}")
    return value


def one_of(table: dict[str, Any], where: str, key: str, kind: Any, default: Any) -> Any:
    if key not in table and default is not None:
        return default
    value = table.get(key)
    choices = [m.value for m in kind]
    if value not in choices:
        raise ConfigError(key_name(where, key), f"{value!r} is not one of {', '.join(choices)}")
    return kind(value)


def decimal_of(table: dict[str, Any], where: str, key: str) -> Decimal:
    return to_decimal(table.get(key), key_name(where, key))


def to_decimal(value: Any, key: str) -> Decimal:
    # A TOML float is read back through its shortest repr, so 0.7 is exactly 0.7.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"must be a number, got {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ConfigError(key, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    return number


def file_path(table: dict[str, Any], where: str, key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(key_name(where, key), "must be the path of a file")
    return value
