"""The `--pile` text that says what a simulated pile is: UNIT:PROFILE:KW[:OPTION]...

    1:reference:30                       unit 1, reference pile, 30 kW
    3:reference:7:noplug:watchdog=30     no auto-plug, watchdog 30 s at start
    1:evse-wb:11:meter=2:sdm630          EVSE-WB-DIN on unit 1 (3 x 16 A), its SDM630 on unit 2
    4:evse-wb:7.4:phases=1:meter=5:sdm120
    1:abb-terra-ac:11                    ABB Terra AC on unit 1 (3 x 15.942 A)
    255:keba-p30:11:phases=3             KEBA KeContact P30 on unit 255 (Modbus TCP)

Profiles are the device kinds of firmware_sim.twins. Options, where the profile takes them:
meter=UNIT (its separate meter's unit id), sdm630 | sdm120 (that meter's model, default sdm630),
phases=1|3 (default 3), noplug (no vehicle plugs in when a session starts), meter_wh=WH (the
meter's count at start, default 0), watchdog=S (reference: watchdog_s at start, default 10;
keba-p30: the fail-safe timeout at start, default 0; 0 = off).
"""

from __future__ import annotations

import math

from firmware_sim.pile_spec import MAX_UNIT, PileSpec
from firmware_sim.twins import meter_model, pile_names, pile_twin, twin_of

__all__ = ["MAX_UNIT", "PileSpec", "parse_pile"]

# Every option: whether it takes a value, and the PileSpec field it sets.
_FLAGS = {"noplug", "sdm630", "sdm120"}
_VALUES = {"meter": "meter_unit", "phases": "phases", "meter_wh": "meter_wh"}
_VALUES |= {"watchdog": "watchdog_s"}
_KNOWN = "meter=UNIT, sdm630, sdm120, phases=1|3, noplug, meter_wh=WH, watchdog=S"


def parse_pile(text: str) -> PileSpec:
    """The PileSpec of a `--pile` value; ValueError that says which part is wrong and how."""
    parts = text.split(":")
    if len(parts) < 3:
        raise ValueError(f"{text!r}: a pile is UNIT:PROFILE:KW[:OPTION]..., as in 1:reference:30")
    unit_text, profile_text, kw_text, *options = parts
    unit = _int(text, "UNIT", unit_text)
    twin = pile_twin(profile_text.lower())
    if twin is None:
        known = ", ".join(pile_names())
        raise ValueError(f"{text!r}: unknown profile {profile_text!r} (known: {known})")
    try:
        kw = float(kw_text)
    except ValueError:
        kw = math.nan
    if not math.isfinite(kw) or kw <= 0:
        raise ValueError(f"{text!r}: KW must be a positive number of kW, got {kw_text!r}")
    fields: dict[str, object] = {"unit": unit, "profile": twin.name, "power_w": round(kw * 1000)}
    for option in options:
        name, _, value = option.partition("=")
        name = name.lower()
        if not ((name in _FLAGS and not value) or (name in _VALUES and value)):
            raise ValueError(f"{text!r}: unknown option {option!r} (known: {_KNOWN})")
        if name not in twin.options:
            takes = ", ".join(sorted(twin.options))
            raise ValueError(f"{text!r}: a {twin.name} pile takes no {name} (its options: {takes})")
        if name == "noplug":
            fields["auto_plug"] = False
        elif name in _VALUES:
            fields[_VALUES[name]] = _int(text, name, value)
        else:
            fields["meter_model"] = meter_model(name)
    if "meter_model" in fields and "meter_unit" not in fields:
        raise ValueError(f"{text!r}: sdm630/sdm120 needs meter=UNIT")
    try:
        spec = PileSpec(**fields)  # type: ignore[arg-type]
        twin_of(spec)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return spec


def _int(text: str, what: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{text!r}: {what} must be a whole number, got {value!r}") from None
