"""Metered billing of one charging session (RULES §6) and the bill it produces."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from controller.tariff import TariffClock
from controller.values import CarId


class EndReason(StrEnum):
    """Why a charging session ended."""

    COMPLETED = "completed"  # the car received what it asked for
    CANCELLED = "cancelled"  # the user left while charging
    FAULT = "fault"  # the pile failed or was switched off (RULES §4)
    STOPPED = "stopped"  # stopped by the operator or at shutdown


class Bill(NamedTuple):
    """One charging session's bill. Energy and fees are exact integers in the station's units:
    energy in watt-ticks, fees in energy units times price units (see controller.units)."""

    bill_id: int
    car: CarId
    queue_no: str
    pile_id: int
    pile_name: str
    start_tick: int
    end_tick: int  # also the bill's time: it is made when the session ends
    energy: int
    charge_fee: int
    service_fee: int
    reason: EndReason

    @property
    def total_fee(self) -> int:
        return self.charge_fee + self.service_fee


class SessionMeter:
    """Energy and charging fee of a running session, built from cumulative meter readings.

    Each reading prices the energy since the previous one over the time between them, split at
    tariff boundaries, so energy is priced by the period in force when it was delivered.
    """

    __slots__ = ("_clock", "charge_fee", "energy", "last_tick", "start_tick")

    def __init__(self, clock: TariffClock, start_tick: int) -> None:
        self._clock = clock
        self.start_tick = start_tick
        self.last_tick = start_tick
        self.energy = 0
        self.charge_fee = 0

    def _delta_fee(self, now_tick: int, energy: int) -> int:
        delta = energy - self.energy
        if delta < 0:
            raise ValueError(f"session energy went back from {self.energy} to {energy}")
        return self._clock.charge_fee(self.last_tick, now_tick, delta)

    def reading(self, now_tick: int, energy: int) -> None:
        """Take a reading of the session's cumulative energy at now_tick."""
        self.charge_fee += self._delta_fee(now_tick, energy)
        self.energy = energy
        self.last_tick = now_tick

    def preview(self, now_tick: int, energy: int) -> tuple[int, int, int]:
        """(energy, charging fee, service fee) if the session read `energy` at now_tick."""
        fee = self.charge_fee + self._delta_fee(now_tick, energy)
        return energy, fee, self._clock.service_fee(energy)
