"""WebSocket fan-out bench: the station's pushes to 2,000 waiting drivers against a bare Tornado
server pushing as many equally sized messages to as many clients.

The station (`charge-station serve`, its own process) runs a bench configuration: one fast pile
(2 places) and a waiting area of 5,000. Users and tokens are made directly through the accounts
module (login cost is not what is measured). Every client opens `/user/charge` and waits. A
round: the car at the head of the waiting area cancels; every car behind it moves up one place,
so the station sends each of them a `position` message. Latency is from sending the cancel to a
client receiving its `position`. The baseline is a bare Tornado WebSocket server in its own
process that, on a trigger message, writes one message of the same size to every client.

    .venv/bin/python bench/ws_fanout.py [--clients 2000] [--rounds 5]

The last line is one JSON object with clients, push_p50_ms, push_p99_ms, baseline_p99_ms,
ratio (station/bare p99) and rss_mb (the station process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tornado.websocket import WebSocketClientConnection, websocket_connect  # noqa: E402

from controller.storage import DATABASE_FILENAME  # noqa: E402
from server.accounts import store as accounts_store  # noqa: E402
from server.accounts.accounts import Accounts, load_secret  # noqa: E402
from server.assembly.database import open_async_storage  # noqa: E402

CONFIG = """
[station]
waiting_area_size = 5000
pile_queue_len = 2

[server]
port = 0

[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30
"""

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    import tornado.web, tornado.websocket
    from tornado.netutil import bind_sockets
    from tornado.httpserver import HTTPServer
    CLIENTS = set()
    class Socket(tornado.websocket.WebSocketHandler):
        def open(self): CLIENTS.add(self)
        def on_close(self): CLIENTS.discard(self)
        def on_message(self, message):
            for c in list(CLIENTS):
                c.write_message(message)
    async def main():
        sockets = bind_sockets(0, "127.0.0.1", backlog=4096)
        HTTPServer(tornado.web.Application([(r"/ws", Socket)])).add_sockets(sockets)
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
    """
)


async def make_users(state: Path, count: int) -> list[str]:
    storage = await open_async_storage(state / DATABASE_FILENAME)
    accounts = Accounts(storage, load_secret(state))
    tokens = []
    for i in range(count):
        name = f"driver{i}"
        user_id = await storage.run(
            lambda s, name=name: accounts_store.add_user(s, name, "not-a-real-hash", "driver")
        )
        tokens.append(accounts.token_for(user_id, f"driver{i}", "driver"))
    await storage.close()
    return tokens


async def connect_all(urls: list[str]) -> list[WebSocketClientConnection]:
    sockets: list[WebSocketClientConnection] = []
    for start in range(0, len(urls), 200):  # in batches: the listen backlog is finite
        sockets += await asyncio.gather(*(websocket_connect(u) for u in urls[start : start + 200]))
    return sockets


async def station_rounds(base: str, tokens: list[str], rounds: int) -> tuple[list[float], int]:
    urls = [f"ws://{base}/user/charge?token={t}&mode=fast&quantity=50" for t in tokens]
    sockets = await connect_all(urls)
    size = 0
    for ws in sockets:
        first = await ws.read_message()
        assert first is not None and json.loads(first)["type"] == "queued"
    latencies: list[float] = []
    head = 2  # sockets 0 and 1 are at the pile; the waiting area starts at 2
    for _ in range(rounds):
        waiting = sockets[head + 1 :]
        sent = time.perf_counter()
        await sockets[head].write_message(json.dumps({"operation": "cancel"}))

        async def until_position(
            ws: WebSocketClientConnection, sent: float = sent
        ) -> tuple[float, int]:
            while True:
                text = await ws.read_message()
                assert text is not None
                if json.loads(text)["type"] == "position":
                    return (time.perf_counter() - sent) * 1000, len(text)

        for latency, length in await asyncio.gather(*(until_position(ws) for ws in waiting)):
            latencies.append(latency)
            size = max(size, length)
        head += 1
    for ws in sockets:
        ws.close()
    return latencies, size


async def baseline_rounds(port: int, clients: int, rounds: int, size: int) -> list[float]:
    sockets = await connect_all([f"ws://127.0.0.1:{port}/ws"] * clients)
    message = "x" * size
    latencies: list[float] = []
    for _ in range(rounds):
        sent = time.perf_counter()
        await sockets[0].write_message(message)

        async def until_message(ws: WebSocketClientConnection, sent: float = sent) -> float:
            await ws.read_message()
            return (time.perf_counter() - sent) * 1000

        latencies += await asyncio.gather(*(until_message(ws) for ws in sockets[1:]))
    for ws in sockets:
        ws.close()
    return latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    exe = Path(sys.executable).parent / "charge-station"
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG)
        tokens = asyncio.run(make_users(state, args.clients))
        station = subprocess.Popen(
            [str(exe), "serve", "--config", str(config), "--state", str(state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert station.stdout is not None
            base = station.stdout.readline().split("http://")[1].strip()
            push, size = asyncio.run(station_rounds(base, tokens, args.rounds))
            rss = rss_mb(station.pid)
        finally:
            station.send_signal(signal.SIGTERM)
            station.wait(timeout=30)
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert bare.stdout is not None
        port = int(bare.stdout.readline())
        base_lat = asyncio.run(baseline_rounds(port, args.clients, args.rounds, size))
    finally:
        bare.kill()
        bare.wait()
    result = {
        "clients": args.clients,
        "rounds": args.rounds,
        "message_bytes": size,
        "push_p50_ms": round(statistics.median(push), 1),
        "push_p99_ms": round(p99(push), 1),
        "baseline_p50_ms": round(statistics.median(base_lat), 1),
        "baseline_p99_ms": round(p99(base_lat), 1),
        "ratio": round(p99(push) / p99(base_lat), 2),
        "rss_mb": round(rss, 1),
        "targets": {"ratio": 1.5, "rss_mb": 200},
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
    }
    print(
        f"{args.clients} clients: station position push p50 {result['push_p50_ms']} ms, "
        f"p99 {result['push_p99_ms']} ms; bare Tornado p99 {result['baseline_p99_ms']} ms; "
        f"ratio {result['ratio']}; station RSS {result['rss_mb']} MB"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
