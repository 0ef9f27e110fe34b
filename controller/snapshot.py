"""The station's queue state as plain JSON values, and back: what a restart must carry over.

Every request with its number, amount and place (waiting area in arrival order, priority lines,
pile queues), the number counters, each pile's state, totals and running session (start, the
energy and fee metered so far), and the last bill id. Ticks are saved as they are: the live
station's clock counts from a fixed epoch, so they mean the same after a restart.
"""

from __future__ import annotations

from typing import Any

from controller.billing import SessionMeter
from controller.station import Area, Request, Station
from controller.values import Mode, PileState, stored_car

FORMAT = 1


def snapshot(st: Station) -> dict[str, Any]:
    def request(req: Request) -> dict[str, Any]:
        return {
            "car": req.car,
            "mode": req.mode.value,
            "number": req.number,
            "wanted": req.wanted,
            "asked": req.asked,
            "queued_tick": req.queued_tick,
            "capacity": req.capacity,
        }

    piles = {}
    for pile in st.piles:
        meter = pile.meter
        totals = pile.totals
        piles[str(pile.id)] = {
            "state": pile.state.value,
            "queue": [request(r) for r in pile.queue],
            "session": None
            if meter is None
            else {
                "start_tick": meter.start_tick,
                "last_tick": meter.last_tick,
                "energy": meter.energy,
                "charge_fee": meter.charge_fee,
                "end_estimate": pile.end_estimate,
            },
            "totals": [
                totals.sessions,
                totals.charging_ticks,
                totals.energy,
                totals.charge_fee,
                totals.service_fee,
            ],
        }
    return {
        "format": FORMAT,
        "ticks_per_s": st.units.ticks_per_s,
        "numbers": {mode.value: n for mode, n in st._numbers.items()},
        "bill_ids": st._bill_ids,
        "waiting": [request(r) for r in st.waiting],
        "priority": {m.value: [request(r) for r in st.priority[m]] for m in Mode},
        "piles": piles,
    }


def restore(st: Station, data: dict[str, Any]) -> None:
    """Put a saved state into a fresh station of the same configuration."""
    if data.get("format") != FORMAT:
        raise ValueError(f"saved state format {data.get('format')!r} is not {FORMAT}")
    if data["ticks_per_s"] != st.units.ticks_per_s:
        # The pile powers changed, and with them the station's units: the saved ticks and
        # energies would be misread. The operator must drain the station before such a change.
        raise ValueError("the saved state was made with other pile powers: it cannot be restored")
    if st.requests:
        raise ValueError("restore only into a fresh station")

    def request(item: dict[str, Any], area: Area) -> Request:
        req = Request(
            stored_car(item["car"]),
            Mode(item["mode"]),
            item["number"],
            item["wanted"],
            item["queued_tick"],
            item["capacity"],
        )
        req.asked = item["asked"]
        req.area = area
        st.requests[req.car] = req
        return req

    st._numbers = {Mode(m): n for m, n in data["numbers"].items()}
    st._bill_ids = data["bill_ids"]
    for item in data["waiting"]:
        req = request(item, Area.WAITING)
        st.waiting.append(req)
        st.waiting_line[req.mode].append(req)
    for mode in Mode:
        st.waiting_line[mode].sort(key=lambda r: r.number)
        for item in data["priority"][mode.value]:
            st.priority[mode].append(request(item, Area.PRIORITY))
    for pile in st.piles:
        saved = data["piles"].get(str(pile.id))
        if saved is None:
            continue  # a pile added since: it starts empty
        pile.state = PileState(saved["state"])
        for item in saved["queue"]:
            req = request(item, Area.QUEUE)
            req.pile = pile
            pile.queue.append(req)
        session = saved["session"]
        if session is not None:
            meter = SessionMeter(st.tariff, session["start_tick"])
            meter.last_tick = session["last_tick"]
            meter.energy = session["energy"]
            meter.charge_fee = session["charge_fee"]
            pile.meter = meter
            pile.end_estimate = session["end_estimate"]
        totals = pile.totals
        (
            totals.sessions,
            totals.charging_ticks,
            totals.energy,
            totals.charge_fee,
            totals.service_fee,
        ) = saved["totals"]
    st._working.clear()
