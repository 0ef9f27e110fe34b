"""The web app in a real browser: the stations and browsers each test gets, stopped after it
(tests/web/kit.py has the rest)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.web.kit import CHROMEDRIVER, CHROMIUM, Station


@pytest.fixture
def station_factory() -> Iterator[Callable[..., Station]]:
    made: list[Station] = []
    roots: list[str] = []

    def make(config: str) -> Station:
        root = tempfile.mkdtemp(prefix="web-station-")
        roots.append(root)
        station = Station(Path(root), config)
        made.append(station)
        return station

    yield make
    for station in made:
        station.stop()
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def browser_factory() -> Iterator[Callable[..., WebDriver]]:
    """Browsers with profiles of their own (two drivers are two phones)."""
    made: list[tuple[WebDriver, str]] = []

    def make(width: int = 1280, height: int = 900, lang: str = "en-US") -> WebDriver:
        profile = tempfile.mkdtemp(prefix="web-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--lang={lang}",
        ):
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(30)
        if width < 600:
            # A phone: headless windows are never narrower than 500 px, so the viewport is
            # emulated as a phone's (its width in CSS pixels, touch, its pixel ratio).
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
            )
        made.append((driver, profile))
        return driver

    yield make
    for driver, profile in made:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(browser_factory: Callable[..., WebDriver]) -> WebDriver:
    return browser_factory()
