"""A driver's request on the WebSocket `/user/charge` (docs/websocket.md): made, found again,
changed and cancelled.

Finding a request again uses the station's resume: a socket opened *without* `mode` and
`quantity` resumes the user's request if there is one, and is refused (`bad_mode`, close 4400)
if there is none, so looking never makes a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

from server.client import render
from server.client.api import ChargeConnection, Message, Station, unreachable
from server.client.errors import Exit, Failure, refusal

NO_REQUEST_ERRORS = frozenset({"bad_mode", "bad_quantity"})  # the opening had neither


def _no_request() -> Failure:
    return Failure(Exit.NO_REQUEST, "you have no request in the station")


async def _first(connection: ChargeConnection, *, attaching: bool) -> Message:
    """The answer to the opening: the request's state, or the refusal as a Failure."""
    try:
        message = await connection.receive()
    except Failure:
        connection.close()
        raise
    if message is None:
        raise Failure(
            Exit.UNREACHABLE,
            f"{connection.target.url}: the station closed the socket without answering",
        )
    if message.get("code") == -1 or message.get("type") == "error":
        connection.close()
        error = str(message.get("error", ""))
        if attaching and error in NO_REQUEST_ERRORS:
            raise _no_request()
        raise refusal(error, str(message.get("msg", "")))
    return message


async def open_request(
    station: Station, mode: str, quantity_kwh: Decimal, capacity_kwh: Decimal | None
) -> tuple[ChargeConnection, Message]:
    """A new request (first message `queued`), or the one already there (`resumed`)."""
    query = {"mode": mode, "quantity": str(quantity_kwh)}
    if capacity_kwh is not None:
        query["capacity"] = str(capacity_kwh)
    connection = await station.charge_socket(query)
    return connection, await _first(connection, attaching=False)


async def attach(station: Station) -> tuple[ChargeConnection, Message]:
    """The user's request as it is now; Failure NO_REQUEST if there is none."""
    connection = await station.charge_socket({})
    return connection, await _first(connection, attaching=True)


async def _until(
    connection: ChargeConnection, wanted: Callable[[Message], bool], timeout_s: float
) -> tuple[Message, list[Message]]:
    """Messages up to the first that is `wanted` (returned), and the bills on the way.
    An `error` message is the station refusing what was just sent."""
    bills: list[Message] = []

    async def read() -> Message:
        while True:
            message = await connection.receive()
            if message is None:
                raise Failure(
                    Exit.UNREACHABLE,
                    f"{connection.target.url}: the station closed the socket before answering",
                )
            if wanted(message):
                return message
            kind = message.get("type")
            if kind in ("bill", "fault") and isinstance(message.get("bill"), dict):
                bills.append(message["bill"])
            elif kind == "error":
                raise refusal(str(message.get("error", "")), str(message.get("msg", "")))
            elif kind == "done":
                raise Failure(Exit.NO_REQUEST, "the request ended before the station answered")

    try:
        found = await asyncio.wait_for(read(), timeout_s)
    except TimeoutError as exc:
        raise unreachable(exc, connection.target) from None
    return found, bills


async def revise(
    station: Station, mode: str | None, quantity_kwh: Decimal | None, out: TextIO
) -> int:
    connection, state = await attach(station)
    try:
        operation: dict[str, Any] = {"operation": "revise"}
        if mode is not None:
            operation["mode"] = mode
        if quantity_kwh is not None:
            # A JSON number, as the protocol shows it; kWh, not money: a float is exact enough
            # for the whole Wh the station counts.
            operation["quantity"] = float(quantity_kwh)
        await connection.send(operation)
        answer, _ = await _until(
            connection, lambda m: m.get("type") == "revised", station.target.timeout_s
        )
    except Failure as failure:
        if failure.error == "not_in_waiting_area":
            # Said with where the request is, from the state the opening sent.
            failure.message = (
                f"request {state.get('queueNo')} is {render.where(state)}: {failure.message}"
            )
        raise
    finally:
        connection.close()
    print(f"revised: {render.request_line(answer)}", file=out)
    return Exit.OK


async def cancel(station: Station, out: TextIO) -> int:
    connection, state = await attach(station)
    try:
        await connection.send({"operation": "cancel"})
        _, bills = await _until(
            connection, lambda m: m.get("type") == "done", station.target.timeout_s
        )
    finally:
        connection.close()
    print(f"cancelled request {state.get('queueNo')}", file=out)
    for bill in bills:
        print("\n".join(render.bill_lines(bill)), file=out)
    return Exit.OK
