"""Plausibility checks on a cumulative energy counter before it may count as energy (DESIGN,
"The control loop"): a counter never goes back, never grows faster than the pile can deliver,
and never shows garbage. Each check was a real incident somewhere."""

from __future__ import annotations

import math

from drivers.errors import BadReading

# Readings are whole Wh; a float32 kWh meter loses resolution as its counter grows
# (float32 has 24 bits of mantissa), so allow the counter's own rounding on top of physics.
ROUNDING_WH = 2
# A reading within this many Wh of a fresh start after a big drop is a meter that restarted.
RESET_NEAR_ZERO_WH = 1000


def float32_step_wh(value_wh: float) -> float:
    """The resolution of a float32 kWh counter around value_wh, in Wh."""
    if value_wh <= 0:
        return 0.0
    return math.ulp(value_wh / 1000) * 1000 * (1 << 29)  # double ulp scaled to float32's 24 bits


class EnergyGuard:
    """Checks readings of one meter against the last good one."""

    def __init__(self, name: str, max_power_w: int, *, garbage_wh: int | None = None) -> None:
        self.name = name
        self.max_power_w = max_power_w
        self.garbage_wh = garbage_wh  # an all-ones value of an integer counter, if any
        self.last_wh: int | None = None
        self.last_s: float | None = None

    def check(self, value_wh: float, now_s: float, sent_s: float | None = None) -> int:
        """The reading as whole Wh if plausible (and the new baseline); BadReading if not.

        now_s is when the answer came, sent_s when the question went out: the device read its
        counter in between, so the time a pile had for a jump is at most now_s minus the
        previous reading's sent_s. Without that margin the latency of a busy host or a slow bus
        (many station seconds at a bench speed-up) would make good readings look too fast."""
        if not math.isfinite(value_wh) or value_wh < 0:
            raise BadReading(f"{self.name}: meter shows {value_wh!r}", "garbage", value_wh)
        if self.garbage_wh is not None and value_wh >= self.garbage_wh:
            raise BadReading(
                f"{self.name}: meter shows all ones ({value_wh:.0f})", "garbage", value_wh
            )
        wh = round(value_wh)
        if self.last_wh is not None and self.last_s is not None:
            if wh < self.last_wh:
                if wh <= RESET_NEAR_ZERO_WH < self.last_wh:
                    # A counter that starts again near zero restarted (a reboot): it counts on
                    # from here, and the caller bridges the session across the restart.
                    message = f"{self.name}: meter restarted: {self.last_wh} Wh, now {wh} Wh"
                    self.last_wh, self.last_s = wh, now_s
                    raise BadReading(message, "reset", value_wh)
                raise BadReading(
                    f"{self.name}: meter went back from {self.last_wh} Wh to {wh} Wh",
                    "backwards",
                    value_wh,
                )
            elapsed_s = max(0.0, now_s - self.last_s)
            # The float32 step is added only where physics and rounding are not enough: it is
            # the same test, without its cost on every good reading.
            allowed_wh = self.max_power_w * elapsed_s / 3600 + ROUNDING_WH
            if wh - self.last_wh > allowed_wh and (
                wh - self.last_wh > (allowed_wh := allowed_wh + float32_step_wh(value_wh))
            ):
                raise BadReading(
                    f"{self.name}: meter jumped {wh - self.last_wh} Wh in {elapsed_s:.1f} s "
                    f"(at most {allowed_wh:.0f} Wh at {self.max_power_w} W)",
                    "jump",
                    value_wh,
                )
        if wh != self.last_wh or self.last_s is None:
            # Time counts from the last change: a counter that stood still (a frozen meter, an
            # idle pile) may catch up by what the pile could have delivered since it moved.
            self.last_wh = wh
            self.last_s = now_s if sent_s is None else min(sent_s, now_s)
        return wh

    def rebase(self, value_wh: int, now_s: float) -> None:
        """Accept value_wh as the new baseline (after a reset has been dealt with)."""
        self.last_wh = value_wh
        self.last_s = now_s
