"""The operator dashboard at /admin in headless Chromium against a real `charge-station serve`:
the live piles, the actions with their confirmations and refusals, reports with the chart and
the CSV, registration codes, a driver's token refused, and a phone's width."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select
from tornado.websocket import websocket_connect

from tests.web import kit
from tests.web.kit import (
    FAST_AND_COMMON,
    ONE_FAST,
    OPERATOR,
    OPERATOR_PASSWORD,
    Station,
    absent,
    config_text,
    console_errors,
    el,
    screenshot,
    type_into,
    wait,
    wait_text,
)

# The tests' stations have one price all day (tests.web.kit), so that a bill's amounts
# do not depend on the hour the test runs at (RULES §6: charge = kWh x the period's price;
# service = kWh x the service fee).
PRICE_YUAN_PER_KWH = Decimal(str(kit.PRICE_YUAN_PER_KWH))
SERVICE_YUAN_PER_KWH = Decimal(str(kit.SERVICE_YUAN_PER_KWH))
CSV_HEADER = [
    "id",
    "time",
    "username",
    "stationId",
    "pileName",
    "queueNo",
    "quantity",
    "timeOfUse",
    "startTime",
    "endTime",
    "costOfCharge",
    "costOfService",
    "cost",
]


# -- a driver, as the driver app or charge-client would be ------------------------------------
def ask(
    station: Station, token: str, mode: str, quantity: float, *, until: str = ""
) -> dict[str, Any]:
    """Ask for a charge over the driver's WebSocket; the first answer, or the first message of
    type `until`. The request stays in the station after the socket closes."""

    async def go() -> dict[str, Any]:
        base = station.url.replace("http://", "ws://")
        ws = await websocket_connect(
            f"{base}/user/charge?token={token}&mode={mode}&quantity={quantity}"
        )
        try:
            while True:
                text = await asyncio.wait_for(ws.read_message(), 20)
                assert text is not None, "the station closed the driver's socket"
                message: dict[str, Any] = json.loads(text)
                assert message.get("code") == 200, message
                if not until or message["type"] == until:
                    return message
        finally:
            ws.close()

    return asyncio.run(go())


# -- the operator in the page ---------------------------------------------------------------------
def phone_browser(browser_factory: Callable[..., WebDriver], lang: str = "en-US") -> WebDriver:
    """A browser with a phone's 360 px wide viewport (headless Chromium's window cannot be
    narrower than 500 px, so the page's viewport is set through DevTools)."""
    driver = browser_factory(width=500, height=800, lang=lang)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True},
    )
    return driver


def log_in(driver: WebDriver, station: Station) -> None:
    driver.get(f"{station.url}/admin")
    type_into(driver, "login-username", OPERATOR)
    type_into(driver, "login-password", OPERATOR_PASSWORD)
    el(driver, "login-submit").click()
    el(driver, "live-view")


def confirm(driver: WebDriver, button: str, answer: str = "confirm-ok") -> None:
    el(driver, button).click()
    el(driver, answer).click()
    absent(driver, answer)


def reports_loaded(driver: WebDriver) -> None:
    wait(
        driver,
        lambda d: el(d, "reports-view").get_attribute("aria-busy") == "false",
        "the report loaded",
    )


def page_errors(driver: WebDriver, *refused: str) -> list[str]:
    """The console's errors but the station's refusals the test asked for: Chromium logs every
    answer above 399 to a fetch, as `<path> - Failed to load resource: … status of 409`."""
    return [
        e
        for e in console_errors(driver)
        if not any(f"{path} - Failed to load resource" in e for path in refused)
    ]


def fits_a_phone(driver: WebDriver) -> bool:
    """The page is 360 px wide and does not scroll sideways (a wide table scrolls in its box)."""
    width, scroll = driver.execute_script(
        "const d = document.documentElement; return [d.clientWidth, d.scrollWidth];"
    )
    assert width == 360, width
    return bool(scroll <= width)


def kwh_so_far(driver: WebDriver, pile: int) -> float:
    """The charged figure of "charged / asked" on the pile's card."""
    text = el(driver, f"pile-kwh-{pile}").text
    return float(text.split("/")[0])


# -- tests ---------------------------------------------------------------------------------------
def test_the_operator_sees_a_charge_live(
    station_factory: Callable[..., Station], browser: WebDriver
) -> None:
    # 30 kW at 120 times: 1 kWh a real second; 40 kWh keeps the car charging through the test.
    station = station_factory(config_text(scale=120, piles=FAST_AND_COMMON))
    token = station.register("dora")
    log_in(browser, station)
    wait_text(browser, "pile-state-1", "idle")
    wait_text(browser, "pile-state-2", "idle")
    browser.execute_script("window.notReloaded = true;")

    queued = ask(station, token, "F", 40)
    assert queued["type"] == "queued"
    wait_text(browser, "pile-state-1", "charging")
    wait_text(browser, "pile-who-1", f"dora · {queued['queueNo']}")
    wait_text(browser, "pile-kwh-1", "/ 40.00")
    first = kwh_so_far(browser, 1)
    wait(browser, lambda d: kwh_so_far(d, 1) >= first + 0.5, "the kWh so far grows")
    wait(browser, lambda d: el(d, "pile-power-1").text != "—", "the power now shown")
    assert el(browser, "pile-power-1").text.endswith(" kW")
    assert el(browser, "pile-fee-1").text.endswith(" yuan")
    wait_text(browser, "pile-queue-1", "dora")
    wait_text(browser, "event-log", f"Called dora ({queued['queueNo']}) to pile A, place 1")
    assert el(browser, "pile-state-2").text == "idle"  # the common pile has no car
    assert browser.execute_script("return window.notReloaded === true;"), "the page reloaded"
    screenshot(browser, "admin-live-desktop")
    assert console_errors(browser) == []


def test_switching_a_pile_off_and_on_with_confirmation_and_refusals(
    station_factory: Callable[..., Station], browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    log_in(browser, station)
    wait_text(browser, "pile-state-1", "idle")

    # A pile that works cannot be switched on: the station's refusal (409) in words.
    confirm(browser, "pile-on-1")
    wait_text(browser, "action-text", "Not done: The pile is already working.")

    # Asked, then cancelled: nothing is sent.
    confirm(browser, "pile-off-1", "confirm-cancel")
    operator = station.operator_token()
    assert station.call("GET", "/admin/piles", token=operator)["piles"][0]["state"] == "working"

    confirm(browser, "pile-off-1")
    wait_text(browser, "action-text", "Pile A is switched off.")
    wait_text(browser, "pile-state-1", "off")
    assert station.call("GET", "/admin/piles", token=operator)["piles"][0]["state"] == "off"
    wait_text(browser, "event-log", "Pile A is off")

    confirm(browser, "pile-off-1")  # off again: refused
    wait_text(browser, "action-text", "Not done: The pile is already off or faulted.")

    confirm(browser, "pile-on-1")
    wait_text(browser, "action-text", "Pile A is switched on.")
    wait_text(browser, "pile-state-1", "idle")
    assert page_errors(browser, "/admin/piles/on", "/admin/piles/off") == []


def test_stopping_a_session_and_removing_a_request(
    station_factory: Callable[..., Station], browser: WebDriver
) -> None:
    # One fast pile with two places: dora charges, eli waits at the pile, fay in the waiting area.
    station = station_factory(config_text(scale=60, piles=ONE_FAST, places=2))
    tokens = {name: station.register(name) for name in ("dora", "eli", "fay")}
    for name in ("dora", "eli", "fay"):
        ask(station, tokens[name], "F", 40)
    log_in(browser, station)
    wait_text(browser, "pile-who-1", "dora")
    wait_text(browser, "waiting-list", "fay")

    confirm(browser, "remove-fay")
    wait_text(browser, "action-text", "fay's request (F3) is removed.")
    wait(browser, lambda d: "fay" not in el(d, "waiting-list").text, "fay leaves the waiting area")
    operator = station.operator_token()
    assert station.call("GET", "/admin/queues", token=operator)["waiting"] == []
    wait_text(browser, "event-log", "fay's request left (cancelled)")

    confirm(browser, "pile-stop-1")
    text = wait_text(browser, "action-text", "The session at pile A is stopped. Bill: dora,")
    assert text.endswith(" yuan.")
    wait_text(browser, "pile-who-1", "eli")  # the next car at the pile charges
    wait(browser, lambda d: "dora" not in el(d, "pile-queue-1").text, "dora leaves the pile")
    wait_text(browser, "event-log", "bill for dora (F1)")
    reply = station.call("POST", "/admin/piles/stop", token=operator, stationId=1)
    assert reply["bill"]["username"] == "eli"
    confirm(browser, "pile-stop-1")  # nothing charges now: refused
    wait_text(browser, "action-text", "Not done: The pile has no session running.")
    assert page_errors(browser, "/admin/piles/stop") == []


def test_reports_table_chart_and_csv_from_the_bills(
    station_factory: Callable[..., Station], browser: WebDriver, tmp_path: Path
) -> None:
    station = station_factory(config_text(scale=600, piles=FAST_AND_COMMON))
    token = station.register("dora")
    bill = ask(station, token, "F", 2, until="bill")
    assert bill["bill"]["quantity"] == 2.0
    logged = station.call("GET", "/user/log", token=token)
    assert len(logged) == 1
    day = logged[0]["time"][:10]  # the bill's date in the station's time zone

    # The expected figures, from the bill's energy and the one-price tariff (RULES §6).
    kwh = Decimal("2.00")
    charge = kwh * PRICE_YUAN_PER_KWH  # 2.00 kWh x 1.0 = 2.00 yuan
    service = kwh * SERVICE_YUAN_PER_KWH  # 2.00 kWh x 0.8 = 1.60 yuan
    total = charge + service  # 3.60 yuan
    assert (f"{charge:.2f}", f"{service:.2f}", f"{total:.2f}") == ("2.00", "1.60", "3.60")

    log_in(browser, station)
    el(browser, "tab-reports").click()  # today's report, at first
    reports_loaded(browser)
    Select(el(browser, "report-period")).select_by_value("day")
    browser.execute_script(
        "document.querySelector('[data-test=report-date]').value = arguments[0];", day
    )
    el(browser, "report-show").click()
    reports_loaded(browser)
    wait_text(browser, "report-range", f"{day} to {day}")
    row = [c.text for c in el(browser, "report-row-1").find_elements(By.CSS_SELECTOR, "th, td")]
    # pile, sessions, hours, kWh, charge, service, total
    assert row[0] == "A" and row[1] == "1"
    assert row[3:] == [f"{kwh:.2f}", f"{charge:.2f}", f"{service:.2f}", f"{total:.2f}"]
    idle = [c.text for c in el(browser, "report-row-2").find_elements(By.CSS_SELECTOR, "th, td")]
    assert idle == ["C", "0", "0.00", "0.00", "0.00", "0.00", "0.00"]
    totals = [c.text for c in el(browser, "report-total").find_elements(By.CSS_SELECTOR, "td")]
    assert totals[2:] == [f"{kwh:.2f}", f"{charge:.2f}", f"{service:.2f}", f"{total:.2f}"]

    chart = el(browser, "report-chart")
    assert chart.get_attribute("role") == "img"
    label = chart.get_attribute("aria-label") or ""
    assert f"A: {kwh:.2f} kWh, {total:.2f} yuan" in label and "C: 0.00 kWh, 0.00 yuan" in label
    titles = chart.find_elements(By.TAG_NAME, "title")
    assert titles and f"{day} to {day}" in (titles[0].get_attribute("textContent") or "")
    texts = [t.get_attribute("textContent") for t in chart.find_elements(By.TAG_NAME, "text")]
    assert f"{kwh:.2f} kWh" in texts and f"¥{total:.2f}" in texts
    bars = {
        (b.get_attribute("class"), b.get_attribute("data-value")): float(b.get_attribute("width"))
        for b in chart.find_elements(By.CSS_SELECTOR, "rect[data-value]")
    }
    # A has all of the period's energy and revenue: the longest bars; C's are empty.
    assert bars[("bar-energy", "2")] > 0 and bars[("bar-revenue", "3.6")] > 0
    assert bars[("bar-energy", "0")] == 0 and bars[("bar-revenue", "0")] == 0
    screenshot(browser, "admin-reports-desktop")

    # The CSV: the browser saves what the page fetched with its bearer header.
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    el(browser, "report-csv").click()
    wanted = tmp_path / f"bills-{day}-to-{day}.csv"
    deadline = time.monotonic() + 10
    while not wanted.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wanted.exists(), list(tmp_path.iterdir())
    rows = list(csv.reader(io.StringIO(wanted.read_text(encoding="utf-8"))))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 2
    shown = dict(zip(CSV_HEADER, rows[1], strict=True))
    assert (shown["username"], shown["pileName"], shown["quantity"]) == ("dora", "A", "2.00")
    assert (shown["costOfCharge"], shown["costOfService"], shown["cost"]) == (
        f"{charge:.2f}",
        f"{service:.2f}",
        f"{total:.2f}",
    )
    wait_text(browser, "report-notice", f"Downloaded bills-{day}-to-{day}.csv")
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name);"
    )
    assert not any("token" in url for url in urls)  # the token went as a header only
    assert console_errors(browser) == []


def test_a_driver_token_gets_the_login_view_and_no_data(
    station_factory: Callable[..., Station], browser_factory: Callable[..., WebDriver]
) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    token = station.register("dora", "dora-pass-1")
    phone = phone_browser(browser_factory)

    # The driver logs in on /admin: refused in words, nothing kept.
    phone.get(f"{station.url}/admin")
    type_into(phone, "login-username", "dora")
    type_into(phone, "login-password", "dora-pass-1")
    el(phone, "login-submit").click()
    wait_text(phone, "login-notice", "This account is not an operator")
    assert phone.execute_script("return localStorage.getItem('cs.session.admin');") is None
    screenshot(phone, "admin-login-phone")

    # A driver's token that claims to be an operator's in the browser's storage: the station
    # decides (the live feed closes 4403), and no pile ever reaches the page.
    claims = json.loads(
        phone.execute_script(
            "const p = arguments[0].split('.')[1].replace(/-/g, '+').replace(/_/g, '/');"
            "return atob(p);",
            token,
        )
    )
    forged = {"token": token, "name": "dora", "role": "operator", "exp": claims["exp"]}
    phone.execute_script(
        "localStorage.setItem('cs.session.admin', arguments[0]);", json.dumps(forged)
    )
    phone.refresh()
    wait_text(phone, "login-notice", "This account is not an operator")
    el(phone, "login-form")
    assert phone.find_elements(By.CSS_SELECTOR, '[data-test^="pile-"]') == []
    assert phone.find_elements(By.CSS_SELECTOR, '[data-test="live-view"]') == []
    assert phone.execute_script("return localStorage.getItem('cs.session.admin');") is None

    # A token the station does not know: back to the login view with the reason.
    bogus = {"token": "a.b.c", "name": "olga", "role": "operator", "exp": claims["exp"]}
    phone.execute_script(
        "localStorage.setItem('cs.session.admin', arguments[0]);", json.dumps(bogus)
    )
    phone.refresh()
    wait_text(phone, "login-notice", "The login is not valid; log in again.")
    assert phone.find_elements(By.CSS_SELECTOR, '[data-test^="pile-"]') == []
    assert fits_a_phone(phone)
    assert console_errors(phone) == []


def test_issuing_a_code_a_driver_registers_with(
    station_factory: Callable[..., Station], browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    log_in(browser, station)
    el(browser, "tab-codes").click()
    assert el(browser, "code-hours").get_attribute("value") == "168"  # a week by default
    type_into(browser, "code-hours", "2")
    asked_at = datetime.now()
    el(browser, "code-issue").click()
    code = el(browser, "code-value").text
    expires_text = wait_text(browser, "code-expires", "Valid until ")
    expires = datetime.strptime(expires_text.removeprefix("Valid until "), "%Y-%m-%d %H:%M:%S")
    # 2 hours from when it was asked, within the test's own minute.
    assert abs(expires - (asked_at + timedelta(hours=2))) < timedelta(minutes=1)
    wait_text(browser, "codes-list", code)

    reply = station.call("POST", "/register", username="gus", password="gus-pass-1", code=code)
    assert reply["code"] == 200 and reply["token"]
    again = station.call("POST", "/register", username="hal", password="hal-pass-1", code=code)
    assert again["error"] == "bad_code"  # single use

    el(browser, "code-issue").click()  # a second code: both listed, the newest shown big
    wait(browser, lambda d: el(d, "code-value").text != code, "a new code shown")
    items = el(browser, "codes-list").find_elements(By.TAG_NAME, "li")
    assert len(items) == 2 and code in items[1].text
    assert console_errors(browser) == []


def test_a_phone_in_chinese_without_horizontal_scroll(
    station_factory: Callable[..., Station], browser_factory: Callable[..., WebDriver]
) -> None:
    station = station_factory(config_text(scale=120, piles=FAST_AND_COMMON))
    phone = phone_browser(browser_factory, "zh-CN")
    phone.get(f"{station.url}/admin")
    wait_text(phone, "login-form", "运营人员登录")  # the browser's language picks
    token = station.register("dora")
    ask(station, token, "F", 40)
    type_into(phone, "login-username", OPERATOR)
    type_into(phone, "login-password", OPERATOR_PASSWORD)
    el(phone, "login-submit").click()
    wait_text(phone, "pile-state-1", "充电中")
    wait_text(phone, "pile-who-1", "dora")
    assert fits_a_phone(phone)

    Select(el(phone, "lang")).select_by_value("en")  # the switch changes it, data kept
    wait_text(phone, "pile-state-1", "charging")
    wait_text(phone, "pile-who-1", "dora")
    assert fits_a_phone(phone)
    screenshot(phone, "admin-live-phone")  # in English: test machines may lack CJK fonts
    el(phone, "tab-reports").click()
    reports_loaded(phone)
    table_box = el(phone, "report-table").find_element(By.XPATH, "..")
    # The table is wider than the phone: it scrolls in its own box, not the page.
    assert int(table_box.get_attribute("scrollWidth")) > int(table_box.get_attribute("clientWidth"))
    assert fits_a_phone(phone)
    el(phone, "tab-codes").click()
    el(phone, "code-issue").click()
    el(phone, "code-value")
    assert fits_a_phone(phone)
    assert console_errors(phone) == []


def test_the_live_view_says_it_is_disconnected_and_reconnects(
    station_factory: Callable[..., Station], browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    log_in(browser, station)
    wait_text(browser, "pile-state-1", "idle")
    station.stop()
    # (Chromium logs each refused reconnection as a console error: not checked here.)
    wait_text(browser, "live-banner", "Disconnected, reconnecting")
    station.restart_on_same_port()
    absent(browser, "live-banner")  # back by itself, without a reload
    token = station.register("dora")
    ask(station, token, "F", 40)
    wait_text(browser, "pile-who-1", "dora")
