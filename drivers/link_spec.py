"""Link settings: the URL-like string that names a Modbus link, parsed and checked.

`tcp://host:port` or `rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&timeout=0.5&pause=0.05`.
Kept apart from the link itself so that configuration can be checked without loading pymodbus.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit


class LinkSpec(NamedTuple):
    kind: str  # "tcp" or "rtu"
    host: str = ""  # tcp
    port: int = 502  # tcp
    device: str = ""  # rtu: the serial port
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    timeout_s: float = 1.0
    pause_s: float = 0.0  # quiet time after every transaction (devices that need it, RTU)

    @property
    def url(self) -> str:
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"rtu://{self.device}?baudrate={self.baudrate}&parity={self.parity}"


_RTU_OPTIONS = {"baudrate", "parity", "stopbits", "bytesize", "timeout", "pause"}
_TCP_OPTIONS = {"timeout", "pause"}


def parse_link(url: str) -> LinkSpec:
    """LinkSpec for a link URL; ValueError that says what is wrong with it."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if parts.scheme == "tcp":
        _only(query, _TCP_OPTIONS, url)
        if not parts.hostname:
            raise ValueError(f"{url!r}: a TCP link needs a host, as in tcp://192.168.1.20:502")
        try:
            port = parts.port or 502
        except ValueError:
            raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
        return LinkSpec(
            "tcp",
            host=parts.hostname,
            port=port,
            timeout_s=_number(query, "timeout", 1.0, url, 0.01, 60),
            pause_s=_number(query, "pause", 0.0, url, 0, 10),
        )
    if parts.scheme == "rtu":
        _only(query, _RTU_OPTIONS, url)
        device = parts.path if not parts.netloc else f"{parts.netloc}{parts.path}"
        if not device:
            raise ValueError(f"{url!r}: an RTU link needs a serial port, as in rtu:///dev/ttyUSB0")
        parity = query.get("parity", "N").upper()
        if parity not in ("N", "E", "O"):
            raise ValueError(f"{url!r}: parity must be N, E or O")
        return LinkSpec(
            "rtu",
            device=device,
            baudrate=int(_number(query, "baudrate", 9600, url, 300, 1_000_000)),
            parity=parity,
            stopbits=int(_number(query, "stopbits", 1, url, 1, 2)),
            bytesize=int(_number(query, "bytesize", 8, url, 7, 8)),
            timeout_s=_number(query, "timeout", 1.0, url, 0.01, 60),
            pause_s=_number(query, "pause", 0.0, url, 0, 10),
        )
    raise ValueError(f"{url!r}: a link is tcp://HOST:PORT or rtu:///dev/PORT?baudrate=9600")


def _only(query: dict[str, str], known: set[str], url: str) -> None:
    for key in query:
        if key not in known:
            raise ValueError(f"{url!r}: unknown option {key!r} (known: {', '.join(sorted(known))})")


def _number(
    query: dict[str, str], key: str, default: float, url: str, lo: float, hi: float
) -> float:
    if key not in query:
        return default
    try:
        value = float(query[key])
    except ValueError:
        raise ValueError(f"{url!r}: {key} must be a number, got {query[key]!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{url!r}: {key} must be from {lo} to {hi}, got {query[key]}")
    return value
