"""Following a request live (`charge`): every message of the station shown as it comes, the
progress bar, the bills; Ctrl-C asks whether to cancel the request or to leave it queued
(`--on-interrupt` decides without asking; with no terminal to ask on, it is left queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from decimal import Decimal
from enum import StrEnum
from typing import Any, NoReturn, TextIO

from server.client import render
from server.client.api import ChargeConnection, Message, Station
from server.client.charge import attach, open_request
from server.client.errors import Exit, Failure, refusal

FOLLOW_AGAIN = "charge-client charge follows it again; charge-client cancel cancels it"


class OnInterrupt(StrEnum):
    CANCEL = "cancel"
    LEAVE = "leave"


class Screen:
    """Lines on stdout; on a terminal the progress bar is one line redrawn in place, elsewhere
    (a pipe, a log) a progress line is written each time another tenth is reached."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.bar_width = 0  # characters of the bar on the current line; 0: no bar open
        self.last_tenth: int | None = None

    def line(self, text: str = "") -> None:
        self.end_bar()
        print(text, file=self.out, flush=True)

    def end_bar(self) -> None:
        if self.bar_width:
            self.out.write("\n")
            self.bar_width = 0

    def bar(self, state: Message) -> None:
        text = render.progress(state)
        if self.tty:
            pad = " " * max(0, self.bar_width - len(text))
            self.out.write("\r" + text + pad)
            self.out.flush()
            self.bar_width = max(len(text), 1)
            return
        charged = Decimal(str(state.get("charged") or 0))
        asked = Decimal(str(state.get("quantity") or 0))
        tenth = int(10 * charged / asked) if asked > 0 else 0
        if tenth != self.last_tenth:
            self.last_tenth = tenth
            self.line("progress " + text)


class Follow:
    """Shows every message of the request until it is done, or the user stops following."""

    def __init__(
        self,
        connection: ChargeConnection,
        screen: Screen,
        on_interrupt: OnInterrupt | None,
        interactive: bool,
        err: TextIO = sys.stderr,
    ) -> None:
        self.connection = connection
        self.screen = screen
        self.on_interrupt = on_interrupt
        self.interactive = interactive  # a terminal to ask on
        self.err = err
        self.bills: list[Message] = []
        self.state: Message = {}
        self.cancel_sent = False
        self.asking = False

    # -- messages ----------------------------------------------------------------------------
    def opened(self, first: Message, *, asked_for_new: bool) -> None:
        self.state = first
        if first.get("type") == "resumed":
            self.screen.line(
                f"your request {first.get('queueNo')} is already in the station "
                f"({first.get('mode')}, {render.kwh(first.get('quantity'))} kWh)"
            )
            if asked_for_new:
                self.screen.line(
                    "  following it; --mode and --quantity are not used "
                    "(charge-client revise changes a waiting request)"
                )
            self.screen.line(f"  {render.where(first)}")
        else:
            place = render.where(first)
            if first.get("area") == "charging":  # called before the answer was sent
                place = f"0 cars ahead, called to pile {first.get('stationId')}"
            self.screen.line(
                f"queue number {first.get('queueNo')} ({first.get('mode')}, "
                f"{render.kwh(first.get('quantity'))} kWh): {place}"
            )

    def show(self, message: Message) -> int | None:
        """Print one message; the exit code once the request is over."""
        kind = message.get("type")
        if "queueNo" in message:
            self.state = message
        if kind == "position":
            self.screen.line(f"{message.get('queueNo')}: {render.where(message)}")
        elif kind == "call":
            place = int(message.get("place") or 1)
            if place == 1:
                self.screen.line(f"called: go to pile {message.get('stationId')}, it is yours")
            else:
                ahead = render.plural(int(message.get("ahead") or 0), "car")
                self.screen.line(
                    f"called: go to pile {message.get('stationId')}, place {place} in its "
                    f"queue ({ahead} ahead)"
                )
        elif kind == "charging":
            self.screen.line(f"charging at pile {message.get('stationId')}")
        elif kind == "progress":
            if not self.asking:
                self.screen.bar(message)
        elif kind == "fault":
            self.screen.line(f"pile {message.get('stationId')} failed; the session so far:")
            self._bill(message)
            self.screen.line(f"the request goes on: {render.where(message)}")
        elif kind == "revised":
            self.screen.line(f"revised: {render.request_line(message)}")
        elif kind == "bill":
            self._bill(message)
        elif kind == "status":
            self.screen.line(render.request_line(message))
        elif kind == "error":
            failure = refusal(str(message.get("error", "")), str(message.get("msg", "")))
            self.screen.end_bar()
            print(f"charge-client: {failure.message}", file=self.err, flush=True)
        elif kind == "done":
            return self._done(str(message.get("reason", "")))
        return None  # other types: a newer station's additions, nothing to show

    def _bill(self, message: Message) -> None:
        bill = message.get("bill")
        if isinstance(bill, dict):
            self.bills.append(bill)
            for text in render.bill_lines(bill):
                self.screen.line(text)

    def _done(self, reason: str) -> int:
        queue_no = self.state.get("queueNo")
        if len(self.bills) > 1:
            energy = sum((Decimal(str(b.get("quantity") or 0)) for b in self.bills), Decimal(0))
            cost = sum((Decimal(str(b.get("cost") or 0)) for b in self.bills), Decimal(0))
            self.screen.line(
                f"total for {queue_no}: {render.kwh(energy)} kWh, "
                f"{render.money(cost)} {render.CURRENCY} in {len(self.bills)} bills"
            )
        if reason == "completed":
            self.screen.line(f"done: request {queue_no} completed")
            return Exit.OK
        if reason == "cancelled":
            who = "" if self.cancel_sent else " (by an operator, or from another session)"
            self.screen.line(f"request {queue_no} cancelled{who}")
        elif reason == "no_show":
            self.screen.line(
                f"request {queue_no} cancelled: the car was not plugged in at the pile in time"
            )
        else:
            self.screen.line(f"request {queue_no} ended: {reason}")
        return Exit.ENDED

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, interrupted: asyncio.Event) -> int:
        """Until the request is over or the user stops following; `interrupted` is set by
        Ctrl-C (SIGINT)."""
        loop = asyncio.get_running_loop()
        receiving = asyncio.ensure_future(self.connection.receive())
        answer: asyncio.Future[OnInterrupt] | None = None
        try:
            while True:
                waiting_for_ctrl_c = asyncio.ensure_future(interrupted.wait())
                waits: set[asyncio.Future[Any]] = {receiving, waiting_for_ctrl_c}
                if answer is not None:
                    waits.add(answer)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                waiting_for_ctrl_c.cancel()
                if receiving in done:
                    message = receiving.result()
                    if message is None:
                        return self._lost()
                    result = self.show(message)
                    if result is not None:
                        if answer is not None:
                            self.err.write("\n")
                        return result
                    receiving = asyncio.ensure_future(self.connection.receive())
                choice: OnInterrupt | None = None
                if interrupted.is_set():
                    interrupted.clear()
                    if answer is not None or self.cancel_sent:
                        choice = OnInterrupt.LEAVE  # a second Ctrl-C: stop now
                    else:
                        choice = self.on_interrupt or (
                            None if self.interactive else OnInterrupt.LEAVE
                        )
                        if choice is None:
                            answer = self._ask(loop)
                if answer is not None and answer.done():
                    choice = answer.result()
                    answer = None
                if choice is OnInterrupt.LEAVE:
                    return self._leave()
                if choice is OnInterrupt.CANCEL:
                    self._stop_asking(loop)
                    self.screen.line(f"cancelling request {self.state.get('queueNo')} ...")
                    await self.connection.send({"operation": "cancel"})
                    self.cancel_sent = True
        finally:
            self._stop_asking(loop)
            self.connection.close()
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, Failure):
                    await receiving

    def _leave(self) -> int:
        self.screen.end_bar()
        queue_no = self.state.get("queueNo")
        if self.cancel_sent:
            self.screen.line(
                f"stopped following; the cancel of {queue_no} was sent: "
                "charge-client status shows whether it is still there"
            )
        else:
            self.screen.line(f"left in the station: request {queue_no} keeps its place")
            self.screen.line(f"  charge-client status shows it; {FOLLOW_AGAIN}")
        return Exit.INTERRUPTED

    def _lost(self) -> NoReturn:
        self.screen.end_bar()
        raise Failure(
            Exit.UNREACHABLE,
            f"{self.connection.target.url}: lost the connection to the station "
            f"(close code {self.connection.close_code})",
            f"the request stays in the station: {FOLLOW_AGAIN}",
        )

    # -- asking on the terminal --------------------------------------------------------------
    def _ask(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[OnInterrupt]:
        """The answer read from the terminal without stopping the messages (loop.add_reader)."""
        self.asking = True
        self.screen.end_bar()
        answer: asyncio.Future[OnInterrupt] = loop.create_future()
        prompt = "\ncancel the request, or leave it queued? [c/l] "
        self.err.write(prompt)
        self.err.flush()

        def on_line() -> None:
            text = sys.stdin.readline()
            word = text.strip().lower()
            if answer.done():
                return
            if not text or word in ("l", "leave"):  # end of input: the safe choice
                answer.set_result(OnInterrupt.LEAVE)
            elif word in ("c", "cancel"):
                answer.set_result(OnInterrupt.CANCEL)
            else:
                self.err.write("please answer c (cancel) or l (leave): ")
                self.err.flush()

        loop.add_reader(sys.stdin.fileno(), on_line)
        return answer

    def _stop_asking(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.asking:
            self.asking = False
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sys.stdin.fileno())


async def follow(
    station: Station,
    mode: str | None,
    quantity_kwh: Decimal | None,
    capacity_kwh: Decimal | None,
    *,
    on_interrupt: OnInterrupt | None,
    out: TextIO,
) -> int:
    """`charge`: a new request (or the one already there) followed to its end."""
    loop = asyncio.get_running_loop()
    # Ctrl-C is ours from before the opening: one that comes just after the request is made
    # is answered as any other (the request is not lost to a KeyboardInterrupt).
    interrupted = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        if mode is not None and quantity_kwh is not None:
            opening = open_request(station, mode, quantity_kwh, capacity_kwh)
        else:
            opening = attach(station)
        connection, first = await _unless_interrupted(opening, interrupted)
        following = Follow(connection, Screen(out, out.isatty()), on_interrupt, sys.stdin.isatty())
        following.opened(first, asked_for_new=mode is not None)
        return await following.run(interrupted)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _unless_interrupted(
    opening: Coroutine[Any, Any, tuple[ChargeConnection, Message]], interrupted: asyncio.Event
) -> tuple[ChargeConnection, Message]:
    """The opening's answer; Ctrl-C before it comes stops waiting (a station that does not
    answer would otherwise hold the user for the whole timeout)."""
    answered = asyncio.ensure_future(opening)
    stopped = asyncio.ensure_future(interrupted.wait())
    await asyncio.wait({answered, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not answered.done():
        answered.cancel()
        with contextlib.suppress(asyncio.CancelledError, Failure):
            await answered
        raise Failure(
            Exit.INTERRUPTED,
            "interrupted before the station answered",
            "charge-client status shows whether a request was made",
        )
    return answered.result()  # a Ctrl-C at the same moment is handled by Follow.run
