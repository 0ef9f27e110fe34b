"""What a simulated pile is: its profile, unit ids and options, and the `--pile` text that says so.

Syntax: UNIT:PROFILE:KW[:OPTION]...

    1:reference:30                       unit 1, reference pile, 30 kW
    3:reference:7:noplug:watchdog=30     no auto-plug, watchdog 30 s at start
    1:evse-wb:11:meter=2:sdm630          EVSE-WB-DIN on unit 1 (3 x 16 A), its SDM630 on unit 2
    4:evse-wb:7.4:phases=1:meter=5:sdm120

Options: meter=UNIT (evse-wb: its meter's unit id), sdm630 | sdm120 (the meter's model, default
sdm630), phases=1|3 (evse-wb, default 3), noplug (no vehicle plugs in when a session starts),
meter_wh=WH (the meter's count at start, default 0), watchdog=S (reference: watchdog_s at
start, default 10; 0 = off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from drivers.registers import REF_DEFAULT_WATCHDOG_S, MeterModel

MAX_UNIT = 247  # Modbus unit ids of devices on a bus: 1..247 (0 is broadcast)


class Profile(StrEnum):
    REFERENCE = "reference"
    EVSE_WB = "evse-wb"


_PROFILE_NAMES = {"reference": Profile.REFERENCE, "ref": Profile.REFERENCE}
_PROFILE_NAMES |= {"evse-wb": Profile.EVSE_WB, "evse-wb-din": Profile.EVSE_WB}


@dataclass(frozen=True)
class PileSpec:
    unit: int
    profile: Profile
    power_w: int
    phases: int = 3  # evse-wb only
    meter_unit: int | None = None  # evse-wb only: the unit id of its SDM meter
    meter_model: MeterModel = MeterModel.SDM630
    auto_plug: bool | None = None  # None: the simulator's default
    meter_wh: int = 0
    watchdog_s: int = REF_DEFAULT_WATCHDOG_S  # reference only

    def __post_init__(self) -> None:
        where = f"pile on unit {self.unit}"
        if not 1 <= self.unit <= MAX_UNIT:
            raise ValueError(f"unit {self.unit}: a unit id is 1..{MAX_UNIT}")
        if self.power_w <= 0:
            raise ValueError(f"{where}: the power must be positive, got {self.power_w} W")
        if self.phases not in (1, 3):
            raise ValueError(f"{where}: phases must be 1 or 3, got {self.phases}")
        if self.meter_unit is not None:
            if self.profile is not Profile.EVSE_WB:
                raise ValueError(f"{where}: only an evse-wb pile has a separate meter")
            if not 1 <= self.meter_unit <= MAX_UNIT or self.meter_unit == self.unit:
                raise ValueError(
                    f"{where}: meter={self.meter_unit} must be a unit id 1..{MAX_UNIT} "
                    "other than the pile's own"
                )
            if self.meter_model is MeterModel.SDM120 and self.phases != 1:
                raise ValueError(f"{where}: the SDM120 is single-phase: add phases=1 or use sdm630")
        if self.meter_wh < 0:
            raise ValueError(f"{where}: meter_wh must not be negative")
        if not 0 <= self.watchdog_s <= 0xFFFF:
            raise ValueError(f"{where}: watchdog must be 0..65535 s")

    @property
    def units(self) -> list[int]:
        """Every unit id the pile takes: its own, and its meter's."""
        return [self.unit] if self.meter_unit is None else [self.unit, self.meter_unit]


def parse_pile(text: str) -> PileSpec:
    """The PileSpec of a `--pile` value; ValueError that says which part is wrong and how."""
    parts = text.split(":")
    if len(parts) < 3:
        raise ValueError(f"{text!r}: a pile is UNIT:PROFILE:KW[:OPTION]..., as in 1:reference:30")
    unit_text, profile_text, kw_text, *options = parts
    unit = _int(text, "UNIT", unit_text)
    profile = _PROFILE_NAMES.get(profile_text.lower())
    if profile is None:
        raise ValueError(f"{text!r}: unknown profile {profile_text!r} (reference or evse-wb)")
    try:
        kw = float(kw_text)
    except ValueError:
        kw = math.nan
    if not math.isfinite(kw) or kw <= 0:
        raise ValueError(f"{text!r}: KW must be a positive number of kW, got {kw_text!r}")
    fields: dict[str, object] = {"unit": unit, "profile": profile, "power_w": round(kw * 1000)}
    for option in options:
        name, _, value = option.partition("=")
        name = name.lower()
        if name in ("sdm630", "sdm120") and not value:
            fields["meter_model"] = MeterModel(int(name[3:]))
        elif name == "noplug" and not value:
            fields["auto_plug"] = False
        elif name == "meter" and value:
            fields["meter_unit"] = _int(text, "meter", value)
        elif name == "phases" and value:
            fields["phases"] = _int(text, "phases", value)
        elif name == "meter_wh" and value:
            fields["meter_wh"] = _int(text, "meter_wh", value)
        elif name == "watchdog" and value:
            fields["watchdog_s"] = _int(text, "watchdog", value)
        else:
            raise ValueError(
                f"{text!r}: unknown option {option!r} (known: meter=UNIT, sdm630, sdm120, "
                "phases=1|3, noplug, meter_wh=WH, watchdog=S)"
            )
    if profile is Profile.REFERENCE and ({"phases", "meter_model"} & fields.keys()):
        raise ValueError(f"{text!r}: phases and sdm630/sdm120 are evse-wb options")
    if profile is Profile.EVSE_WB and "watchdog_s" in fields:
        raise ValueError(f"{text!r}: the evse-wb has no watchdog")
    if "meter_model" in fields and "meter_unit" not in fields:
        raise ValueError(f"{text!r}: sdm630/sdm120 needs meter=UNIT")
    try:
        return PileSpec(**fields)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def _int(text: str, what: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{text!r}: {what} must be a whole number, got {value!r}") from None
