"""The station's metrics for Prometheus (prometheus_client), served at /metrics on a listener of
its own (`[metrics] port`), bound to loopback without a token, or elsewhere with a bearer token.

What is read at scrape time comes from the station's door (pile states, powers, totals, queue
lengths) and from the uplink (connected, queued); what is counted as it happens comes from the
door's event stream (bills, revenue, faults), the control loop's and the Modbus links' watchers
(tick and request durations, missed ticks, errors) and the HTTP server's request log. Nothing
here touches the rules or a tick.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

import tornado.web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from controller.config import Config
from controller.door import Door, StreamEvent
from controller.events import PileChanged, SessionEnded
from controller.live import ControlLoop
from controller.units import round_half_up
from controller.values import Mode, PileState
from drivers.link import LinkPool
from drivers.link_spec import parse_link
from server.metrics.config import MetricsSettings

log = logging.getLogger(__name__)

NS = "charge_station"
TICK_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MODBUS_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class StationMetrics:
    """Every metric of one running station, in a registry of its own."""

    def __init__(self, door: Door, loop: ControlLoop) -> None:
        self.door = door
        self.loop = loop
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.bills = Counter(
            f"{NS}_bills",
            "Bills made, by pile and why the session ended",
            ["pile", "reason"],
            registry=r,
        )
        self.revenue = Counter(
            f"{NS}_revenue_fen",
            "Fees billed in fen as the bills show them (each fee rounded to 0.01 yuan)",
            ["pile", "kind"],
            registry=r,
        )
        self.faults = Counter(
            f"{NS}_pile_faults", "Pile faults since start-up", ["pile"], registry=r
        )
        self.ticks = Histogram(
            f"{NS}_tick_seconds",
            "Control loop tick duration (real seconds)",
            buckets=TICK_BUCKETS_S,
            registry=r,
        )
        self.modbus = Histogram(
            f"{NS}_modbus_request_seconds",
            "Modbus transaction duration by pile (real seconds)",
            ["pile"],
            buckets=MODBUS_BUCKETS_S,
            registry=r,
        )
        self.modbus_errors = Counter(
            f"{NS}_modbus_errors",
            "Modbus transactions that failed, by pile and error",
            ["pile", "error"],
            registry=r,
        )
        self.http = Counter(
            f"{NS}_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.websockets: Callable[[], dict[str, int]] = dict
        self.uplink: Any = None  # server.ocpp.uplink.Uplink, when on
        self._names = door.pile_names()
        for name in self._names.values():  # every pile's series present from the start
            self.faults.labels(name)
        r.register(_Live(self))
        door.subscribe(self._on_event)
        loop.tick_watchers.append(self._on_tick)

    # -- what happens ----------------------------------------------------------------------------
    def _on_event(self, seq: int, event: StreamEvent) -> None:
        if isinstance(event, SessionEnded):
            bill = event.bill
            view = self.door.bill_view(bill)
            pile = self._names.get(bill.pile_id, str(bill.pile_id))
            self.bills.labels(pile, bill.reason.value).inc()
            self.revenue.labels(pile, "charge").inc(
                float(round_half_up(view.charge_fee_yuan, 2) * 100)
            )
            self.revenue.labels(pile, "service").inc(
                float(round_half_up(view.service_fee_yuan, 2) * 100)
            )
        elif isinstance(event, PileChanged) and event.state is PileState.FAULT:
            self.faults.labels(self._names.get(event.pile_id, str(event.pile_id))).inc()

    def _on_tick(self, duration_s: float, ok: bool) -> None:
        self.ticks.observe(duration_s)

    def watch_links(self, config: Config, pool: LinkPool) -> None:
        """Each Modbus link's transactions, by the pile its unit belongs to (meters included)."""
        piles: dict[tuple[str, int], str] = {}
        for p in config.piles:
            if p.link == "sim":
                continue
            url = parse_link(p.link).url
            piles[(url, p.unit)] = p.name
            if p.meter_unit is not None:
                piles[(url, p.meter_unit)] = p.name
        for link in pool.links():

            def watcher(unit: int, took_s: float, error: str | None, url: str = link.name) -> None:
                pile = piles.get((url, unit), f"unit {unit}")
                self.modbus.labels(pile).observe(took_s)
                if error is not None:
                    self.modbus_errors.labels(pile, error).inc()

            link.watchers.append(watcher)

    def watch_http(self, app: tornado.web.Application) -> None:
        """Count every request by its route (the pattern, not the path: a scan of random paths
        must not make a series per path) and status."""
        routes: dict[type, str] = {}
        for rule in app.wildcard_router.rules:
            pattern = getattr(rule.matcher, "regex", None)
            if isinstance(rule.target, type) and pattern is not None:
                routes.setdefault(rule.target, pattern.pattern.rstrip("$"))
        previous = app.settings.get("log_function")

        def log_function(handler: tornado.web.RequestHandler) -> None:
            if previous is not None:
                previous(handler)
            route = routes.get(type(handler), "unmatched")
            self.http.labels(route, str(handler.get_status())).inc()

        app.settings["log_function"] = log_function

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Live:
    """What is read when Prometheus scrapes: the door's views and the uplink's state."""

    def __init__(self, metrics: StationMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self.m
        door = m.door
        state = GaugeMetricFamily(
            f"{NS}_pile_state", "1 for the state each pile is in", labels=["pile", "state"]
        )
        power = GaugeMetricFamily(
            f"{NS}_pile_power_watts", "Power at the last good reading", labels=["pile"]
        )
        energy = CounterMetricFamily(
            f"{NS}_pile_energy_wh", "Energy billed since start-up (Wh)", labels=["pile"]
        )
        sessions = CounterMetricFamily(
            f"{NS}_pile_sessions", "Sessions billed since start-up", labels=["pile"]
        )
        queue = GaugeMetricFamily(
            f"{NS}_pile_queue_cars", "Cars in the pile's queue", labels=["pile"]
        )
        answering = GaugeMetricFamily(
            f"{NS}_pile_answering", "1 if the last read succeeded", labels=["pile"]
        )
        for pile in door.piles():
            for s in PileState:
                state.add_metric([pile.name, s.value], 1.0 if pile.state is s else 0.0)
            if pile.power_now_w is not None:
                power.add_metric([pile.name], pile.power_now_w)
            energy.add_metric([pile.name], float(pile.energy_kwh * 1000))
            sessions.add_metric([pile.name], pile.sessions)
            queue.add_metric([pile.name], len(pile.queue))
            answering.add_metric([pile.name], 1.0 if pile.answering else 0.0)
        yield from (state, power, energy, sessions, queue, answering)
        queues = door.queues()
        yield GaugeMetricFamily(
            f"{NS}_waiting_cars", "Cars in the waiting area", value=len(queues.waiting)
        )
        priority = GaugeMetricFamily(
            f"{NS}_priority_cars", "Cars in each mode's priority line", labels=["mode"]
        )
        for mode in Mode:
            priority.add_metric([mode.value], len(queues.priority.get(mode, ())))
        yield priority
        yield CounterMetricFamily(
            f"{NS}_ticks_missed",
            "Control loop periods without a full tick (fell behind, or failed)",
            value=m.loop.ticks_missed,
        )
        clients = GaugeMetricFamily(
            f"{NS}_websocket_clients", "Open WebSocket clients", labels=["kind"]
        )
        for kind, count in m.websockets().items():
            clients.add_metric([kind], count)
        yield clients
        uplink = m.uplink
        if uplink is not None:
            yield GaugeMetricFamily(
                f"{NS}_ocpp_connected",
                "1 while the OCPP uplink is connected and booted",
                value=1.0 if uplink.connected else 0.0,
            )
            yield GaugeMetricFamily(
                f"{NS}_ocpp_queued_messages",
                "Messages waiting for the central system",
                value=len(uplink.outbox),
            )
            yield GaugeMetricFamily(
                f"{NS}_ocpp_stored_messages",
                "Transaction messages kept in the database until the central system answers",
                value=uplink.outbox.durable,
            )
            yield CounterMetricFamily(
                f"{NS}_ocpp_delivered_messages",
                "Messages the central system answered",
                value=uplink.delivered,
            )


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, metrics: StationMetrics, token: str | None) -> None:
        self.metrics = metrics
        self.token = token

    def get(self) -> None:
        if self.token is not None:
            scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), self.token):
                self.set_status(401)
                self.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
                self.finish("a bearer token is needed (metrics.token)\n")
                return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(self.metrics.exposition())


def metrics_app(metrics: StationMetrics, settings: MetricsSettings) -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/metrics", MetricsHandler, {"metrics": metrics, "token": settings.token})],
        log_function=lambda handler: None,  # scrapes every 15 s are no news
    )
