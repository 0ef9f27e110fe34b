"""The drivers' test bench: simulators on a fake clock, and the links a test opened to them."""

from __future__ import annotations

from drivers.link import ModbusLink, parse_link
from firmware_sim.simulator import Simulator
from tests.firmware_sim.fakes import FakeClock


class Bench:
    """A simulator on a fake clock, and the links the test opened to it."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sims: list[Simulator] = []
        self.links: list[ModbusLink] = []

    def sim(self, *piles: str) -> Simulator:
        sim = Simulator(list(piles), clock=self.clock)
        self.sims.append(sim)
        return sim

    async def tcp(self, sim: Simulator, timeout_s: float = 0.5) -> ModbusLink:
        host, port = await sim.start_tcp("127.0.0.1", 0)
        link = ModbusLink(parse_link(f"tcp://{host}:{port}?timeout={timeout_s}"))
        self.links.append(link)
        return link

    async def rtu(self, sim: Simulator, timeout_s: float = 0.5) -> ModbusLink:
        path = await sim.start_pty()
        link = ModbusLink(parse_link(f"rtu://{path}?baudrate=9600&timeout={timeout_s}"))
        self.links.append(link)
        return link

    async def close(self) -> None:
        for link in self.links:
            await link.close()
        for sim in self.sims:
            await sim.stop()
