"""The web tests' kit: a real `charge-station serve` on loopback with simulated piles at a
speed-up and an operator account, its configuration, and reading pages in Debian's headless
Chromium (driven by Selenium through Debian's chromedriver, nothing downloaded)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.kits.serve_process import SCRIPT, start_serve

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BENCH_CODE = "web-bench-code"
OPERATOR, OPERATOR_PASSWORD = "olga", "olga-pass-1"
WAIT_S = 20.0  # the longest any view may take to show what the station did
# docs/web.md's pictures are the tests' own: `make screenshots` sets CS_SCREENSHOTS to write
# them there; otherwise each run's go to a temporary folder (taken all the same).
SCREENSHOTS = Path(os.environ.get("CS_SCREENSHOTS") or tempfile.mkdtemp(prefix="web-screenshots-"))


# One price all day: the fees a test expects are then the same whenever it runs (RULES §6).
PRICE_YUAN_PER_KWH = 1.0
SERVICE_YUAN_PER_KWH = 0.8


def config_text(*, scale: float, piles: str, waiting: int = 6, places: int = 2) -> str:
    return f"""
[station]
waiting_area_size = {waiting}
pile_queue_len = {places}

[tariff]
service_fee = {SERVICE_YUAN_PER_KWH}

[tariff.prices]
peak = {PRICE_YUAN_PER_KWH}
flat = {PRICE_YUAN_PER_KWH}
valley = {PRICE_YUAN_PER_KWH}

[clock]
scale = {scale}

[server]
port = 0
poll_s = 1

[accounts]
bench_registration_code = "{BENCH_CODE}"
{piles}
"""


ONE_FAST = """
[[piles]]
id = 1
name = "A"
mode = "fast"
power_kw = 30
"""

FAST_AND_COMMON = (
    ONE_FAST
    + """
[[piles]]
id = 2
name = "C"
mode = "common"
power_kw = 7
"""
)


class Station:
    """A `charge-station serve` process with an operator account."""

    def __init__(self, root: Path, config: str) -> None:
        self.root = root
        self.config = root / "station.toml"
        self.config.write_text(config)
        self.state = root / "state"
        subprocess.run(
            [str(SCRIPT), "user", "add", OPERATOR, "--operator", "--state", str(self.state)],
            input=OPERATOR_PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.start()

    def start(self) -> None:
        self.proc, self.url = start_serve(self.config, self.state, stderr=subprocess.DEVNULL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart_on_same_port(self) -> None:
        """Stop (SIGTERM: the safe stop) and start again where the pages are pointed."""
        port = self.url.rsplit(":", 1)[1]
        text = self.config.read_text().replace("port = 0", f"port = {port}")
        self.config.write_text(text)
        self.stop()
        self.start()

    # -- the API, as another client would use it ---------------------------------------------
    def call(self, method: str, path: str, **params: Any) -> Any:
        query = urlencode(params)
        request = urllib.request.Request(
            f"{self.url}{path}?{query}", method=method, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def register(self, username: str, password: str = "secret-pass") -> str:
        reply = self.call(
            "POST", "/register", username=username, password=password, code=BENCH_CODE
        )
        assert reply["code"] == 200, reply
        return str(reply["token"])

    def operator_token(self) -> str:
        reply = self.call("POST", "/login", username=OPERATOR, password=OPERATOR_PASSWORD)
        return str(reply["token"])


# -- reading the page ---------------------------------------------------------------------------
def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    # The views redraw their live parts at every message: an element found a moment ago may
    # be gone; the condition is then asked again.
    return WebDriverWait(
        driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, what)


def el(driver: WebDriver, test_id: str) -> WebElement:
    """The element marked data-test=test_id, once it is shown."""

    def shown(d: WebDriver) -> WebElement | bool:
        for found in d.find_elements(By.CSS_SELECTOR, f'[data-test="{test_id}"]'):
            if found.is_displayed():
                return found
        return False

    return wait(driver, shown, f"[data-test={test_id}] shown")  # type: ignore[no-any-return]


def text_of(driver: WebDriver, test_id: str) -> str:
    """The shown element's text as it is now."""

    def read(d: WebDriver) -> str | bool:
        for found in d.find_elements(By.CSS_SELECTOR, f'[data-test="{test_id}"]'):
            if found.is_displayed():
                return found.text
        return False

    return wait(driver, read, f"[data-test={test_id}] shown")  # type: ignore[no-any-return]


def wait_text(driver: WebDriver, test_id: str, expected: str) -> str:
    """Wait until the element's text contains `expected`; its text."""

    def has(d: WebDriver) -> str | bool:
        for found in d.find_elements(By.CSS_SELECTOR, f'[data-test="{test_id}"]'):
            if found.is_displayed() and expected in found.text:
                return found.text
        return False

    return wait(driver, has, f"[data-test={test_id}] containing {expected!r}")  # type: ignore[no-any-return]


def absent(driver: WebDriver, test_id: str) -> None:
    wait(
        driver,
        lambda d: (
            not any(
                e.is_displayed()
                for e in d.find_elements(By.CSS_SELECTOR, f'[data-test="{test_id}"]')
            )
        ),
        f"[data-test={test_id}] hidden",
    )


def type_into(driver: WebDriver, test_id: str, text: str) -> None:
    field = el(driver, test_id)
    field.clear()
    field.send_keys(text)


def screenshot(driver: WebDriver, name: str) -> Path:
    """A picture for docs/web.md, taken by the tests' browser."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def console_errors(driver: WebDriver) -> list[str]:
    """The page's console errors (a script that failed, a policy violation). A refusal the
    station answered (a 4xx the page shows in words) is logged by the browser too: not one."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
    ]
