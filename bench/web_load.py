"""Web bench: the app's first load in headless Chromium, and `GET /user/lognew` while 200
browser-like drivers hold the station's WebSockets.

One `charge-station serve` process on 127.0.0.1 (a bench configuration: 20 simulated piles, 10
fast at 30 kW and 10 common at 7 kW, 2 places each, a waiting area of 200, its clock at
`--scale` 60x: sessions end, cars are called and the lines move within the measurement).

1. **First load** of `/` (the driver app) and `/admin` (the operator dashboard): each page
   `--loads` times, each in a fresh Chromium profile (Debian's /usr/bin/chromium through
   /usr/bin/chromedriver, headless, on loopback). Bytes: the Performance API's `transferSize`
   of the navigation and of every resource the page fetched until it was interactive and its
   fetches settled (headers included; WebSocket frames are not resources and not counted).
   Time to interactive: when the page sets `document.documentElement.dataset.ready = "1"`
   (the app's sign that its first view is drawn), from navigation start; a page that does not
   within 10 s is measured at `domInteractive` and `loadEventEnd` instead, and the output says so.
   A page the station does not serve (404) is reported as such.
2. **Load**: `--clients` drivers in a child process, each as the driver app does it: register
   (`POST /register` with the bench code), `GET /station` and `GET /user/request`, then open
   `/user/charge` with a mode and an amount, read every message, and send a `status` operation
   every 2-8 s; a driver whose charge is done asks for the next one.
3. **Latency**: while they run, `--requests` `GET /user/lognew?num=10` from `--http-clients`
   concurrent keep-alive HTTP clients (threads in the bench's process), each timed end to end;
   the same before the load, as the quiet baseline.

    .venv/bin/python bench/web_load.py [--clients 200] [--requests 2000] [--loads 3]

Only 127.0.0.1 is touched; every phase has a time limit, and the load stops when measured.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kits.serve_process import start_serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BENCH_CODE = "web-load-bench"
READY_TIMEOUT_S = 10.0  # the page's data-ready, at most
TARGETS = {"first_load_kb": 150, "tti_ms": 1000, "lognew_p99_ms": 20}


def config_text(clients: int, scale: float) -> str:
    piles = []
    for i in range(20):
        fast = i < 10
        piles.append(
            f'[[piles]]\nid = {i + 1}\nname = "{"F" if fast else "T"}{i % 10 + 1}"\n'
            f'mode = "{"fast" if fast else "common"}"\npower_kw = {30 if fast else 7}\n'
        )
    return (
        f"[station]\nwaiting_area_size = {max(clients, 1)}\npile_queue_len = 2\n\n"
        f'[clock]\nscale = {scale}\n\n[server]\nhost = "127.0.0.1"\nport = 0\n\n'
        f'[accounts]\nbench_registration_code = "{BENCH_CODE}"\n\n' + "\n".join(piles)
    )


# -- 1. first load in Chromium --------------------------------------------------------------------
# Injected before the page's own scripts (DevTools, so the page's CSP does not apply to it):
# the moment the app marks itself ready, from navigation start.
READY_OBSERVER = """
(() => {
  const mark = () => {
    const root = document.documentElement;
    if (root && root.dataset.ready === "1" && window.__readyAt === undefined) {
      window.__readyAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, {
    attributes: true, attributeFilter: ["data-ready"], childList: true, subtree: true,
  });
})();
"""

ENTRIES = """
return {
  nav: performance.getEntriesByType('navigation').map(e => e.toJSON()),
  resources: performance.getEntriesByType('resource').map(e => e.toJSON()),
  readyAt: window.__readyAt === undefined ? null : window.__readyAt,
};
"""


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def load_once(url: str) -> dict[str, Any]:
    """One first load in a fresh profile: bytes, requests, and time to interactive."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="web-load-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=390,844",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READY_OBSERVER})
        driver.get(url)
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = driver.execute_script(ENTRIES)
        while seen["readyAt"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = driver.execute_script(ENTRIES)
        # Then until the page's fetches settle (a module imported late, the first API call).
        count, settled_at = len(seen["resources"]), time.monotonic()
        while time.monotonic() - settled_at < 0.5 and time.monotonic() < deadline + 3:
            time.sleep(0.1)
            seen = driver.execute_script(ENTRIES)
            if len(seen["resources"]) != count:
                count, settled_at = len(seen["resources"]), time.monotonic()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    (nav,) = seen["nav"]
    resources = seen["resources"]
    by_type: dict[str, int] = {}
    for r in resources:
        by_type[r["initiatorType"]] = by_type.get(r["initiatorType"], 0) + r["transferSize"]
    result = {
        "bytes": nav["transferSize"] + sum(r["transferSize"] for r in resources),
        "decoded_bytes": nav["decodedBodySize"] + sum(r["decodedBodySize"] for r in resources),
        "requests": 1 + len(resources),
        "html_bytes": nav["transferSize"],
        "bytes_by_type": by_type,
        "dom_interactive_ms": round(nav["domInteractive"], 1),
        "load_event_end_ms": round(nav["loadEventEnd"], 1),
    }
    if seen["readyAt"] is not None:
        result |= {"tti_ms": round(seen["readyAt"], 1), "tti_source": "data-ready"}
    else:
        result |= {
            "tti_ms": round(nav["loadEventEnd"], 1),
            "tti_source": "loadEventEnd (data-ready never set within 10 s)",
        }
    return result


def first_load(url: str, loads: int) -> dict[str, Any]:
    status = status_of(url)
    if status != 200:
        return {"url": url, "status": status, "served": False}
    runs = [load_once(url) for _ in range(loads)]
    return {
        "url": url,
        "status": status,
        "served": True,
        "bytes": int(statistics.median(r["bytes"] for r in runs)),
        "requests": runs[0]["requests"],
        "tti_ms": round(statistics.median(r["tti_ms"] for r in runs), 1),
        "tti_source": ", ".join(sorted({r["tti_source"] for r in runs})),
        "runs": runs,
    }


# -- 2. the drivers (the child process) -----------------------------------------------------------
class Drivers:
    """`clients` browser-like drivers on one event loop, counting what they are sent."""

    def __init__(self, base: str, clients: int, seed: int) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.base = base
        self.ws_base = base.replace("http://", "ws://")
        self.clients = clients
        self.rng = random.Random(seed)
        self.http = AsyncHTTPClient(max_clients=8)
        self.counts: dict[str, int] = {"status_sent": 0, "opened": 0, "errors": 0, "failed": 0}
        self.first: dict[int, asyncio.Future[None]] = {}

    async def register(self, i: int, limit: asyncio.Semaphore) -> str:
        query = {"username": f"driver{i:03d}", "password": "bench-pass-1", "code": BENCH_CODE}
        async with limit:
            reply = await self.http.fetch(
                f"{self.base}/register?{urlencode(query)}", method="POST", body=""
            )
        return str(json.loads(reply.body)["token"])

    async def statuses(self, ws: Any) -> None:
        """A `status` operation now and then, as the app asks when it comes to the front."""
        from tornado.websocket import WebSocketClosedError

        try:
            while True:
                await asyncio.sleep(self.rng.uniform(2, 8))
                await ws.write_message(json.dumps({"operation": "status"}))
                self.counts["status_sent"] += 1
        except WebSocketClosedError:
            pass

    async def charge(self, i: int, token: str) -> None:
        """One charge as the app makes it: the page's two reads, then the socket to its end."""
        from tornado.websocket import websocket_connect

        mode = "fast" if i % 2 else "common"
        await self.http.fetch(f"{self.base}/station")
        await self.http.fetch(f"{self.base}/user/request?token={token}")
        quantity = self.rng.randint(5, 40)
        ws = await websocket_connect(
            f"{self.ws_base}/user/charge?token={token}&mode={mode}&quantity={quantity}"
        )
        self.counts["opened"] += 1
        asking = asyncio.ensure_future(self.statuses(ws))
        try:
            while (text := await ws.read_message()) is not None:  # None: done, closed
                kind = json.loads(text).get("type", "?")
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind == "error":
                    self.counts["errors"] += 1
                if not self.first[i].done():
                    self.first[i].set_result(None)
        finally:
            asking.cancel()
            ws.close()

    async def driver(self, i: int, token: str) -> None:
        try:
            while True:
                await self.charge(i, token)
                await asyncio.sleep(1)  # the driver comes back for another charge
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # counted and shown: a bench whose drivers fail says so
            self.counts["failed"] += 1
            print(f"driver {i} failed: {exc!r}", file=sys.stderr)
            if not self.first[i].done():
                self.first[i].set_exception(exc)

    def messages(self) -> int:
        not_messages = ("status_sent", "opened", "errors", "failed")
        return sum(v for k, v in self.counts.items() if k not in not_messages)


async def drive(base: str, clients: int, seed: int) -> int:
    """The child: the drivers until SIGTERM; one JSON line once every one of them has its first
    message (with their tokens), one with the counts at the end."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    drivers = Drivers(base, clients, seed)
    # All drivers come from one address here: registrations in flight count against its budget
    # until they succeed (server.accounts.throttle, 5 an address), so at most 4 go at once.
    limit = asyncio.Semaphore(4)
    tokens = await asyncio.wait_for(
        asyncio.gather(*(drivers.register(i, limit) for i in range(clients))), 300
    )
    drivers.first = {i: loop.create_future() for i in range(clients)}
    tasks = [asyncio.ensure_future(drivers.driver(i, t)) for i, t in enumerate(tokens)]
    await asyncio.wait_for(asyncio.gather(*drivers.first.values()), 120)
    print(json.dumps({"ready": True, "tokens": tokens}), flush=True)
    started = time.monotonic()
    await stop.wait()
    elapsed_s = time.monotonic() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = {"counts": drivers.counts, "messages": drivers.messages(), "seconds": elapsed_s}
    print(json.dumps(result), flush=True)
    return 0


# -- 3. lognew latency ----------------------------------------------------------------------------
def lognew_latency(port: int, tokens: list[str], requests: int, workers: int) -> list[float]:
    """`requests` timed GET /user/lognew from `workers` keep-alive clients, in ms."""
    times: list[float] = []
    lock = threading.Lock()
    per_worker = requests // workers

    def work(w: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for k in range(per_worker):
            token = tokens[(w * per_worker + k) % len(tokens)]
            start = time.perf_counter()
            conn.request("GET", f"/user/lognew?num=10&token={token}")
            response = conn.getresponse()
            body = response.read()
            mine.append(1000 * (time.perf_counter() - start))
            if response.status != 200 or b'"code": 200' not in body:
                raise RuntimeError(f"lognew answered {response.status}: {body[:200]!r}")
        conn.close()
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if len(times) != per_worker * workers:
        raise RuntimeError("a lognew client failed or timed out")
    return times


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def register_one(base: str, username: str) -> str:
    query = urlencode({"username": username, "password": "bench-pass-1", "code": BENCH_CODE})
    request = urllib.request.Request(f"{base}/register?{query}", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["token"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="web-load-") as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(config_text(args.clients, args.scale))
        station, base = start_serve(config, Path(tmp) / "state", stderr=subprocess.DEVNULL)
        port = int(base.rsplit(":", 1)[1])
        child: subprocess.Popen[str] | None = None
        try:
            pages = {path: first_load(base + path, args.loads) for path in ("/", "/admin")}
            for path, page in pages.items():
                if page["served"]:
                    print(
                        f"{path}: {page['bytes'] / 1024:.1f} KB in {page['requests']} requests, "
                        f"time to interactive {page['tti_ms']} ms ({page['tti_source']}; "
                        f"median of {args.loads} first loads)"
                    )
                else:
                    print(
                        f"{path}: not served by this station (HTTP {page['status']}): not measured"
                    )
            reader = register_one(base, "history-reader")
            quiet = percentiles(
                lognew_latency(port, [reader], args.requests // 4, args.http_clients)
            )
            print(
                f"lognew, quiet: p50 {quiet['p50_ms']} ms, p99 {quiet['p99_ms']} ms, "
                f"max {quiet['max_ms']} ms ({quiet['n']} requests)"
            )
            child = subprocess.Popen(
                [sys.executable, __file__, "--drive", base, "--clients", str(args.clients)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            ready_at = time.monotonic()
            line = child.stdout.readline()  # the child's own timeouts bound this wait
            if not line:
                raise RuntimeError("the drivers did not all connect")
            tokens = json.loads(line)["tokens"]
            ramp_s = time.monotonic() - ready_at
            time.sleep(args.warm_s)
            cpu_before, wall_before = cpu_s(station.pid), time.monotonic()
            loaded = percentiles(lognew_latency(port, tokens, args.requests, args.http_clients))
            station_cpu = (cpu_s(station.pid) - cpu_before) / (time.monotonic() - wall_before)
            child.send_signal(signal.SIGTERM)
            out, _ = child.communicate(timeout=60)
            drivers = json.loads(out.strip().splitlines()[-1])
            rss = rss_mb(station.pid)
        finally:
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
            station.send_signal(signal.SIGTERM)
            try:
                station.wait(timeout=30)
            except subprocess.TimeoutExpired:
                station.kill()
                station.wait()
    per_s = drivers["messages"] / drivers["seconds"]
    print(
        f"{args.clients} drivers connected in {ramp_s:.1f} s (registration included); "
        f"{drivers['messages']} messages to them in {drivers['seconds']:.1f} s ({per_s:.0f}/s), "
        f"{drivers['counts']['status_sent']} status operations, "
        f"{drivers['counts']['failed']} drivers failed; station CPU {100 * station_cpu:.0f}%"
    )
    print(
        f"lognew with {args.clients} drivers: p50 {loaded['p50_ms']} ms, "
        f"p99 {loaded['p99_ms']} ms, max {loaded['max_ms']} ms "
        f"({loaded['n']} requests from {args.http_clients} clients)"
    )
    return {
        "pages": {
            path: {k: v for k, v in page.items() if k != "runs"} for path, page in pages.items()
        },
        "page_runs": {path: page.get("runs", []) for path, page in pages.items()},
        "clients": args.clients,
        "scale": args.scale,
        "lognew_quiet": quiet,
        "lognew_loaded": loaded,
        "drivers": drivers["counts"],
        "driver_messages_per_s": round(per_s, 1),
        "station_cpu_pct": round(100 * station_cpu, 1),
        "station_rss_mb": round(rss, 1),
        "targets": TARGETS,
        "machine": {
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument("--loads", type=int, default=3, help="first loads per page")
    parser.add_argument("--warm-s", type=float, default=10.0)
    parser.add_argument("--scale", type=float, default=60.0, help="the station's clock speed-up")
    parser.add_argument("--drive", metavar="URL", help=argparse.SUPPRESS)  # the child's role
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 1000 or not 1 <= args.requests <= 20_000:
        parser.error("--clients from 1 to 1000, --requests from 1 to 20000")
    if args.drive is not None:
        if not args.drive.startswith("http://127.0.0.1:"):
            parser.error("the drivers only ever talk to 127.0.0.1")
        return asyncio.run(drive(args.drive, args.clients, seed=1))
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
