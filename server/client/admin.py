"""The operator's commands on the station's /admin API (server/operator_api/admin.py,
docs/openapi.yaml): piles and their queues, switching a pile on and off, the waiting area,
reports, codes."""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from typing import Any, TextIO

from server.client import render
from server.client.api import Station
from server.client.errors import Exit

AMOUNT_HEADERS = ("SESSIONS", "HOURS", "KWH", "CHARGE", "SERVICE", "TOTAL")
AMOUNT_KEYS = ("sessions", "timeOfUse", "quantity", "costOfCharge", "costOfService", "cost")


def plain(value: Any) -> str:
    """A number without trailing zeros: 30, 7.4."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(value)


def amounts(row: dict[str, Any]) -> list[str]:
    """The totals fields the station's piles and reports share (its `amounts`)."""
    return [
        str(row.get("sessions", 0)),
        render.number(row.get("timeOfUse"), 4),
        render.kwh(row.get("quantity")),
        render.money(row.get("costOfCharge")),
        render.money(row.get("costOfService")),
        render.money(row.get("cost")),
    ]


def _car_rows(where: str, cars: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for place, car in enumerate(cars, 1):
        doing = car.get("area", "")
        if doing == "charging":
            doing = f"charging {render.kwh(car.get('charged'))}"
        rows.append(
            [
                where,
                str(place),
                str(car.get("queueNo")),
                str(car.get("username")),
                str(car.get("mode")),
                render.kwh(car.get("quantity")),
                doing,
                render.duration(car.get("waitedSeconds") or 0),
            ]
        )
    return rows


CAR_HEADERS = ("WHERE", "#", "QUEUE NO", "USER", "MODE", "KWH", "STATE", "WAITED")


async def piles(station: Station, as_json: bool, out: TextIO) -> int:
    data, text = await station.call("GET", "/admin/piles")
    if as_json:
        print(text, file=out)
        return Exit.OK
    rows = [
        [
            str(p.get("stationId")),
            str(p.get("name")),
            str(p.get("mode")),
            plain(p.get("powerKw")),
            str(p.get("state")),
            *amounts(p),
        ]
        for p in data.get("piles", [])
    ]
    headers = ("ID", "NAME", "MODE", "KW", "STATE", *AMOUNT_HEADERS)
    print(render.table(headers, rows, right=(0, 3, *range(5, 11))), file=out)
    cars = []
    for p in data.get("piles", []):
        cars += _car_rows(f"pile {p.get('stationId')} ({p.get('name')})", p.get("queue", []))
    print(file=out)
    if cars:
        print(render.table(CAR_HEADERS, cars, right=(1, 5, 7)), file=out)
    else:
        print("no car at any pile", file=out)
    return Exit.OK


async def pile(station: Station, action: str, station_id: int, out: TextIO) -> int:
    data, _ = await station.call(
        "POST", f"/admin/piles/{action}", form={"stationId": str(station_id)}
    )
    if action == "stop":
        print(f"pile {station_id}: session stopped", file=out)
    else:
        print(f"pile {station_id} is {data.get('state')}", file=out)
    bill = data.get("bill")
    if isinstance(bill, dict):
        print(
            f"the car at the pile, {bill.get('queueNo')} ({bill.get('username')}), was billed: "
            f"{render.kwh(bill.get('quantity'))} kWh, {render.money(bill.get('cost'))} "
            f"{render.CURRENCY}",
            file=out,
        )
    return Exit.OK


async def queue(station: Station, as_json: bool, out: TextIO) -> int:
    data, text = await station.call("GET", "/admin/queues")
    if as_json:
        print(text, file=out)
        return Exit.OK
    rows = _car_rows("waiting", data.get("waiting", []))
    for mode, cars in data.get("priority", {}).items():
        rows += _car_rows(f"priority {mode}", cars)
    if rows:
        print(render.table(CAR_HEADERS, rows, right=(1, 5, 7)), file=out)
    else:
        print("the waiting area and the priority lines are empty", file=out)
    return Exit.OK


REPORT_COLUMNS = ("stationId", "name", *AMOUNT_KEYS)


async def report(station: Station, period: str, day: str | None, fmt: str, out: TextIO) -> int:
    query = {"period": period} | ({"date": day} if day else {})
    data, text = await station.call("GET", "/admin/reports", query)
    if fmt == "json":
        print(text, file=out)
        return Exit.OK
    rows = data.get("piles", [])
    total = data.get("total", {})
    if fmt == "csv":
        # The report's rows, then the total (its shown parts add up, as the station's do).
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for row in rows:
            writer.writerow([row.get("stationId"), row.get("name"), *amounts(row)])
        writer.writerow(["", "total", *amounts(total)])
        return Exit.OK
    first, last = data.get("from"), data.get("to")
    span = first if first == last else f"{first} to {last}"
    print(f"{data.get('period')} report, {span}", file=out)
    table_rows = [[str(r.get("stationId")), str(r.get("name")), *amounts(r)] for r in rows]
    table_rows.append(["total", "", *amounts(total)])
    headers = ("PILE", "NAME", *AMOUNT_HEADERS)
    print(render.table(headers, table_rows, right=range(2, 8)), file=out)
    return Exit.OK


async def codes_issue(station: Station, count: int, hours: Decimal | None, out: TextIO) -> int:
    """One code a line on stdout (for scripts); when they expire on stderr."""
    form = {} if hours is None else {"hours": str(hours)}
    expires = []
    for _ in range(count):
        data, _ = await station.call("POST", "/admin/codes", form=form)
        print(data.get("registrationCode"), file=out, flush=True)
        expires.append(str(data.get("expires")))
    print(
        f"{render.plural(count, 'registration code')}, single use, valid until {expires[-1]}",
        file=sys.stderr,
    )
    return Exit.OK
