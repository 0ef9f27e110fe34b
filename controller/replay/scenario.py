"""Reading a scenario file: one event a line in the course's tuple format (REPLAY "Input").

`06:00 (A,V1,T,40)` request, `(A,V,O,0)` leave, `(C,V,F,-1)` change, `(B,P,O,0|1)` pile fails or
recovers, `(L,SITE,O,kW)` the site's other load (REPLAY "Site power limit"). Anything malformed
stops the replay before it runs (ScenarioError: line and problem).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

_LINE = re.compile(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?\s*\((.*)\)")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_AMOUNT = re.compile(r"[+-]?\d+(?:\.\d+)?")


class ScenarioError(ValueError):
    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no
        self.problem = problem


class Kind(StrEnum):
    REQUEST = "request"  # (A,V,F|T,q>0)
    LEAVE = "leave"  # (A,V,*,0)
    CHANGE = "change"  # (C,V,F|T|O,q|-1)
    FAULT = "fault"  # (B,P,O,0)
    RECOVER = "recover"  # (B,P,O,1)
    SITE = "site"  # (L,SITE,O,kW): from now on the site's other consumers draw kW

    @property
    def is_pile_event(self) -> bool:
        """Taken before the user events of its instant: pile events and site events."""
        return self in (Kind.FAULT, Kind.RECOVER, Kind.SITE)


class ScenarioEvent(NamedTuple):
    line_no: int
    time_s: int  # seconds after midnight of the scenario's first day
    kind: Kind
    subject: str  # the car, or the pile's name
    mode: str  # "F", "T" or "O" (unchanged / not given)
    amount: Decimal | None  # kWh (a site event: kW); None for "unchanged" (-1), pile events
    text: str  # the tuple with its spaces removed, as the output shows it


def parse_scenario(text: str, *, site_limit: bool = False) -> list[ScenarioEvent]:
    """The events of a scenario; site events only with site_limit (the configuration has
    [site] max_power_kw)."""
    events: list[ScenarioEvent] = []
    last_s = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        event = parse_line(line, line_no)
        if event.kind is Kind.SITE and not site_limit:
            raise ScenarioError(
                line_no,
                "a site event needs a site limit ([site] max_power_kw in the configuration)",
            )
        if event.time_s < last_s:
            raise ScenarioError(line_no, f"time {_clock(event.time_s)} goes back")
        last_s = event.time_s
        events.append(event)
    return events


def parse_line(line: str, line_no: int) -> ScenarioEvent:
    match = _LINE.fullmatch(line)
    if not match:
        raise ScenarioError(line_no, f"expected 'HH:MM[:SS] (X,ID,M,AMOUNT)', got {line!r}")
    hh, mm, ss, inner = match.groups()
    hours, minutes, seconds = int(hh), int(mm), int(ss or 0)
    if len(mm) != 2 or (ss is not None and len(ss) != 2):
        raise ScenarioError(line_no, "minutes and seconds take two digits")
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ScenarioError(line_no, f"time {hh}:{mm}{':' + ss if ss else ''} does not exist")
    time_s = hours * 3600 + minutes * 60 + seconds
    fields = [f.strip() for f in inner.split(",")]
    if len(fields) != 4:
        raise ScenarioError(line_no, f"an event has 4 fields, got {len(fields)}")
    letter, subject, mode, amount_text = fields
    text = "(" + ",".join(fields) + ")"
    if letter in ("L", "l"):
        return _site_event(line_no, time_s, subject, mode, amount_text, text)
    if letter not in ("A", "B", "C"):
        raise ScenarioError(line_no, f"unknown event letter {letter!r} (A, B, C or L)")
    if not _NAME.fullmatch(subject):
        raise ScenarioError(line_no, f"{subject!r} is not a car or pile name")
    if mode not in ("F", "T", "O"):
        raise ScenarioError(line_no, f"mode letter {mode!r} is not F, T or O")
    if not _AMOUNT.fullmatch(amount_text):
        raise ScenarioError(line_no, f"amount {amount_text!r} is not a number")
    amount = Decimal(amount_text)

    if letter == "B":
        if mode != "O" or amount not in (0, 1):
            raise ScenarioError(line_no, "a pile event is (B,PILE,O,0) or (B,PILE,O,1)")
        kind = Kind.FAULT if amount == 0 else Kind.RECOVER
        return ScenarioEvent(line_no, time_s, kind, subject, mode, None, text)

    if letter == "A":
        if amount < 0:
            raise ScenarioError(line_no, f"negative amount {amount_text}")
        if amount == 0:
            return ScenarioEvent(line_no, time_s, Kind.LEAVE, subject, mode, None, text)
        if mode == "O":
            raise ScenarioError(line_no, "a request needs mode F or T (O is only for changes)")
        return ScenarioEvent(
            line_no, time_s, Kind.REQUEST, subject, mode, _wh(amount, line_no), text
        )

    # letter == "C"
    if amount == -1:
        return ScenarioEvent(line_no, time_s, Kind.CHANGE, subject, mode, None, text)
    if amount < 0:
        raise ScenarioError(line_no, f"negative amount {amount_text} (-1 means unchanged)")
    return ScenarioEvent(line_no, time_s, Kind.CHANGE, subject, mode, _wh(amount, line_no), text)


def _site_event(
    line_no: int, time_s: int, subject: str, mode: str, amount_text: str, text: str
) -> ScenarioEvent:
    """(L,SITE,O,kW): letters in any case; kW at least 0, in whole watts."""
    if subject.upper() != "SITE" or mode.upper() != "O":
        raise ScenarioError(line_no, "a site event is (L,SITE,O,kW)")
    if not _AMOUNT.fullmatch(amount_text):
        raise ScenarioError(line_no, f"site load {amount_text!r} is not a number")
    amount = Decimal(amount_text)
    if amount < 0:
        raise ScenarioError(line_no, f"negative site load {amount_text} kW")
    if (Fraction(amount) * 1000).denominator != 1:
        raise ScenarioError(
            line_no, f"site load {amount} kW has more than 3 decimal places (whole watts)"
        )
    return ScenarioEvent(line_no, time_s, Kind.SITE, "SITE", "O", amount, text)


def _wh(amount: Decimal, line_no: int) -> Decimal:
    # The station counts energy in whole Wh: a kWh amount has at most three decimals.
    if (Fraction(amount) * 1000).denominator != 1:
        raise ScenarioError(line_no, f"amount {amount} has more than 3 decimal places (whole Wh)")
    return amount


def _clock(time_s: int) -> str:
    return f"{time_s // 3600:02d}:{time_s % 3600 // 60:02d}:{time_s % 60:02d}"
