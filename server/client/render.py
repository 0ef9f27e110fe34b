"""How things look on the terminal: amounts, tables, the request's state, bills, the progress bar.

Amounts arrive as Decimal (api.parse_json) and are shown with fixed places, rounded half up:
the station has already rounded them to 0.01, so what is shown is what it sent.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CURRENCY = "yuan"
BAR_WIDTH = 24


def number(value: Any, places: int = 2) -> str:
    """A number with `places` decimals; money and kWh never pass through a float."""
    if value is None:
        return "-"
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return str(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def money(value: Any) -> str:
    return number(value, 2)


def kwh(value: Any) -> str:
    return number(value, 2)


def duration(seconds: Any) -> str:
    """H:MM:SS"""
    total = int(Decimal(str(seconds)).to_integral_value(rounding=ROUND_HALF_UP))
    h, rest = divmod(total, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def display_width(text: str) -> int:
    """Columns on a terminal: East Asian wide characters (a Chinese username) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; the columns in `right` (numbers) right-aligned."""
    lines = [list(headers), *(list(r) for r in rows)]
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(headers))]
    at_right = set(right)
    out = []
    for line in lines:
        cells = []
        for i, cell in enumerate(line):
            pad = " " * (widths[i] - display_width(cell))
            cells.append(pad + cell if i in at_right else cell + pad)
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# -- the request ----------------------------------------------------------------------------------
def where(state: dict[str, Any]) -> str:
    """Where the request is, from the state every /user/charge message carries."""
    area = state.get("area")
    ahead = int(state.get("ahead") or 0)
    pile = state.get("stationId")
    if area == "waiting":
        return f"in the waiting area, {plural(ahead, 'car')} ahead"
    if area == "priority":
        return f"in the priority line (after a pile fault), {plural(ahead, 'car')} ahead"
    if area == "queue":
        return f"in the queue of pile {pile}, {plural(ahead, 'car')} ahead"
    if area == "charging":
        return f"charging at pile {pile}"
    return str(area)


def request_line(state: dict[str, Any]) -> str:
    return (
        f"request {state.get('queueNo')}: {state.get('mode')}, "
        f"{kwh(state.get('quantity'))} kWh, {where(state)}"
    )


def status_lines(state: dict[str, Any]) -> list[str]:
    lines = [
        f"queue number  {state.get('queueNo')}",
        f"mode          {state.get('mode')}",
        f"asked for     {kwh(state.get('quantity'))} kWh",
        f"where         {where(state)}",
    ]
    if state.get("area") == "charging" or Decimal(str(state.get("charged") or 0)) > 0:
        lines.append(
            f"charged       {kwh(state.get('charged'))} kWh, "
            f"{kwh(state.get('remaining'))} kWh to go"
        )
    if state.get("area") == "charging":
        lines.append(f"fee so far    {money(state.get('fee'))} {CURRENCY}")
    return lines


def progress(state: dict[str, Any], width: int = BAR_WIDTH) -> str:
    """`[#########...............]  37%  11.25 / 30.00 kWh  fee 22.50 yuan`"""
    charged = Decimal(str(state.get("charged") or 0))
    asked = Decimal(str(state.get("quantity") or 0))
    share = min(Decimal(1), charged / asked) if asked > 0 else Decimal(0)
    filled = int(share * width)
    percent = int(share * 100)
    bar = "#" * filled + "." * (width - filled)
    return (
        f"[{bar}] {percent:3d}%  {kwh(charged)} / {kwh(asked)} kWh  "
        f"fee {money(state.get('fee'))} {CURRENCY}"
    )


def bill_lines(bill: dict[str, Any]) -> list[str]:
    """A bill as /user/log has it (and the `bill` message carries)."""
    return [
        f"bill {bill.get('id')}, pile {bill.get('stationId')}",
        f"  energy       {kwh(bill.get('quantity'))} kWh",
        f"  from         {bill.get('startTime')}",
        f"  to           {bill.get('endTime')}  ({number(bill.get('timeOfUse'), 4)} h)",
        f"  charge fee   {money(bill.get('costOfCharge')):>10} {CURRENCY}",
        f"  service fee  {money(bill.get('costOfService')):>10} {CURRENCY}",
        f"  total        {money(bill.get('cost')):>10} {CURRENCY}",
    ]


# -- history --------------------------------------------------------------------------------------
LOG_HEADERS = ("ID", "ENDED", "PILE", "KWH", "HOURS", "CHARGE", "SERVICE", "TOTAL")


def log_table(bills: Sequence[dict[str, Any]]) -> str:
    """/user/log as a table, with the sum of the bills shown (exact: Decimal)."""
    rows = [
        [
            str(b.get("id")),
            str(b.get("endTime")),
            str(b.get("stationId")),
            kwh(b.get("quantity")),
            number(b.get("timeOfUse"), 4),
            money(b.get("costOfCharge")),
            money(b.get("costOfService")),
            money(b.get("cost")),
        ]
        for b in bills
    ]
    if len(bills) > 1:

        def total(key: str) -> Decimal:
            return sum((Decimal(str(b.get(key) or 0)) for b in bills), Decimal(0))

        rows.append(
            [
                "total",
                "",
                "",
                kwh(total("quantity")),
                number(total("timeOfUse"), 4),
                money(total("costOfCharge")),
                money(total("costOfService")),
                money(total("cost")),
            ]
        )
    return table(LOG_HEADERS, rows, right=range(3, 8))
