"""The driver app in a real browser: from registering to the bill in the history, with other
cars in line, changes, cancels, reloads, a station restart, a pile switched off, and text that
must stay text."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.kits.serve_process import SCRIPT
from tests.web.cars import ApiCar
from tests.web.kit import (
    FAST_AND_COMMON,
    ONE_FAST,
    PRICE_YUAN_PER_KWH,
    SERVICE_YUAN_PER_KWH,
    Station,
    absent,
    config_text,
    console_errors,
    el,
    screenshot,
    text_of,
    type_into,
    wait,
    wait_text,
)

Make = Callable[..., Station]
Browser = Callable[..., WebDriver]


def fee_text(kwh: float) -> str:
    """A bill's total as the page shows it: kWh * (price + service), RULES §6."""
    return f"¥{kwh * (PRICE_YUAN_PER_KWH + SERVICE_YUAN_PER_KWH):.2f}"


def sign_up(driver: WebDriver, station: Station, name: str, password: str = "secret-pass") -> None:
    driver.get(station.url + "/")
    el(driver, "login-toggle").click()
    type_into(driver, "username", name)
    type_into(driver, "password", password)
    type_into(driver, "code", "web-bench-code")
    el(driver, "login-submit").click()
    wait_text(driver, "who", name)


def ask(driver: WebDriver, kwh: str, mode: str = "fast") -> None:
    el(driver, f"mode-{mode}").click()
    type_into(driver, "quantity", kwh)
    el(driver, "ask").click()


def no_horizontal_scroll(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_register_log_in_charge_to_the_bill_and_read_it_in_the_history(
    station_factory: Make, browser: WebDriver
) -> None:
    # 30 kW at 120x: 1 kWh takes 2 station minutes, one real second.
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    sign_up(browser, station, "dora")
    screenshot(browser, "driver-ask-desktop")
    el(browser, "logout").click()
    wait_text(browser, "login-reason", "logged out")
    type_into(browser, "username", "dora")
    type_into(browser, "password", "secret-pass")
    el(browser, "login-submit").click()
    wait_text(browser, "who", "dora")

    ask(browser, "1")
    # The only pile was free: called at once, at place 1.
    assert text_of(browser, "queue-no") == "F1"
    wait_text(browser, "call", "Go to pile A")
    wait_text(browser, "call", "Your turn")
    wait_text(browser, "done-reason", "Charging complete")
    # 1 kWh at 1.00 + 0.80 yuan/kWh: 1.00 charge, 0.80 service, 1.80 in all.
    assert text_of(browser, "bill-kwh") == "1.00 kWh"
    assert text_of(browser, "bill-charge") == "¥1.00"
    assert text_of(browser, "bill-service") == "¥0.80"
    assert text_of(browser, "bill-total") == fee_text(1.0) == "¥1.80"
    screenshot(browser, "driver-bill-desktop")

    el(browser, "to-history").click()
    item = el(browser, "history-item")
    assert "1.00 kWh" in item.text and "¥1.80" in item.text
    assert "Pile A" in item.text
    assert console_errors(browser) == []


def test_two_drivers_the_second_waits_sees_ahead_fall_and_is_called(
    station_factory: Make, browser_factory: Browser
) -> None:
    # One fast pile with one place (M = 1): one car charges, the others wait in line.
    station = station_factory(config_text(scale=120, piles=ONE_FAST, places=1))
    first, second = browser_factory(), browser_factory(width=390, height=844)
    sign_up(first, station, "ann")
    # 4 kWh at 30 kW: 8 station minutes, 4 real seconds, time for Cai to join the line.
    ask(first, "4")
    wait_text(first, "area", "Charging")
    bob = ApiCar(station.url, station.register("bob"), "fast", 2)
    bob.wait_for("queued")
    sign_up(second, station, "cai")
    ask(second, "1")
    # Ann charges, Bob waits first in line: one car ahead of Cai.
    assert text_of(second, "queue-no") == "F3"
    wait_text(second, "ahead", "1 car ahead")
    screenshot(second, "driver-waiting-phone")
    wait_text(second, "ahead", "No car ahead")  # Ann is done, Bob is called
    bob.wait_for("call")
    wait_text(second, "call", "Go to pile A")  # Bob is done: Cai's turn
    wait_text(second, "area", "Charging")
    wait_text(first, "done-reason", "Charging complete")
    assert console_errors(second) == []


def test_revise_while_waiting_and_the_refusal_once_called(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST, places=1))
    # 6 kWh at 30 kW: 12 station minutes, 6 real seconds of waiting to change in.
    ahead = ApiCar(station.url, station.register("abe"), "fast", 6)
    ahead.wait_for("charging")
    sign_up(browser, station, "eva")
    ask(browser, "5")
    wait_text(browser, "area", "waiting area")
    type_into(browser, "revise-quantity", "1.5")
    el(browser, "revise").click()
    wait_text(browser, "revise-ok", "F2")
    wait_text(browser, "quantity", "1.50 kWh")
    # Abe is done after 12 station minutes: Eva is called, and a change is refused now.
    wait_text(browser, "area", "Charging")
    type_into(browser, "revise-quantity", "3")
    el(browser, "revise").click()
    wait_text(browser, "action-error", "can no longer be changed")
    assert text_of(browser, "quantity") == "1.50 kWh"  # unchanged
    assert console_errors(browser) == []


def test_cancel_asks_first_and_bills_what_was_received(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=60, piles=ONE_FAST))
    sign_up(browser, station, "finn")
    ask(browser, "50")  # 100 station minutes: still charging when cancelled
    wait_text(browser, "area", "Charging")
    el(browser, "cancel").click()
    el(browser, "confirm-cancel").click()  # "go back": nothing happens
    absent(browser, "confirm-ok")
    assert text_of(browser, "area") == "Charging"
    el(browser, "cancel").click()
    el(browser, "confirm-ok").click()
    wait_text(browser, "done-reason", "cancelled")
    kwh = float(text_of(browser, "bill-kwh").split()[0])
    charge = float(text_of(browser, "bill-charge").removeprefix("¥"))
    service = float(text_of(browser, "bill-service").removeprefix("¥"))
    total = float(text_of(browser, "bill-total").removeprefix("¥"))
    assert 0 < kwh < 50
    # The exact Wh are not shown: each fee is within a fen of the shown kWh at its price
    # (1.00 and 0.80 yuan/kWh), and the total is the sum of the shown parts (RULES §6).
    assert abs(charge - kwh * PRICE_YUAN_PER_KWH) <= 0.01
    assert abs(service - kwh * SERVICE_YUAN_PER_KWH) <= 0.01
    assert round(total, 2) == round(charge + service, 2)
    # And it is the bill the station stored.
    (stored,) = station.call("GET", "/user/lognew", token=station_token(browser))["log"]
    assert (stored["quantity"], stored["cost"]) == (kwh, total)


def test_a_reload_mid_charge_resumes_the_request(station_factory: Make, browser: WebDriver) -> None:
    station = station_factory(config_text(scale=120, piles=ONE_FAST))
    sign_up(browser, station, "gus")
    ask(browser, "6")  # 12 station minutes: 6 real seconds
    wait_text(browser, "area", "Charging")
    browser.refresh()
    # The page asks the station, reopens the socket without an amount: the same request.
    wait_text(browser, "area", "Charging")
    assert text_of(browser, "queue-no") == "F1"
    assert text_of(browser, "quantity") == "6.00 kWh"
    wait_text(browser, "done-reason", "Charging complete")
    assert text_of(browser, "bill-kwh") == "6.00 kWh"
    # One request, one bill: the reload made no second request.
    bills = station.call("GET", "/user/lognew", token=station_token(browser))["log"]
    assert [b["quantity"] for b in bills] == [6.0]


def station_token(driver: WebDriver) -> str:
    session = driver.execute_script("return localStorage.getItem('cs.session.driver')")
    return str(json.loads(session)["token"])


def test_the_page_reconnects_by_itself_after_a_station_restart(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=60, piles=ONE_FAST))
    sign_up(browser, station, "hal")
    ask(browser, "4")  # 8 station minutes: 8 real seconds
    wait_text(browser, "area", "Charging")
    station.restart_on_same_port()  # the safe stop bills the session so far and keeps the car
    # The page said it lost the station, then came back to the same request by itself.
    wait_text(browser, "area", "Charging")
    assert text_of(browser, "queue-no") == "F1"
    wait_text(browser, "done-reason", "Charging complete")
    bills = station.call("GET", "/user/lognew", token=station_token(browser))["log"]
    # The stop's bill and the rest after the restart: 4 kWh in all, billed once. Each bill
    # shows its kWh rounded half up to 0.01, so two of them add up to within 0.01 of it.
    assert len(bills) == 2
    assert abs(sum(b["quantity"] for b in bills) - 4.0) <= 0.01 + 1e-9


def test_a_lost_connection_is_shown_and_retried(station_factory: Make, browser: WebDriver) -> None:
    station = station_factory(config_text(scale=10, piles=ONE_FAST))
    sign_up(browser, station, "ida")
    ask(browser, "10")
    wait_text(browser, "area", "Charging")
    station.stop()
    wait_text(browser, "connection", "Reconnecting")
    station.restart_on_same_port()
    absent(browser, "connection")
    wait_text(browser, "area", "Charging")


def test_an_operator_switching_the_pile_off_shows_on_the_drivers_page(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=60, piles=FAST_AND_COMMON))
    sign_up(browser, station, "jo")
    ask(browser, "20")
    wait_text(browser, "area", "Charging")
    reply = station.call("POST", "/admin/piles/off", stationId=1, token=station.operator_token())
    assert reply["code"] == 200 and reply["bill"]["username"] == "jo"
    # Its bill at the fault, and the car back in line with priority (RULES §4).
    fault = wait_text(browser, "fault", "Pile A failed")
    assert f"{reply['bill']['quantity']:.2f} kWh" in fault
    wait_text(browser, "area", "priority")
    assert text_of(browser, "fault-bill")
    screenshot(browser, "driver-fault-desktop")


def test_the_stations_refusals_and_the_pages_own_checks_in_words(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=1, piles=ONE_FAST, waiting=1, places=1))
    ApiCar(station.url, station.register("kim"), "fast", 5).wait_for("charging")
    ApiCar(station.url, station.register("lee"), "fast", 5).wait_for("queued")
    sign_up(browser, station, "max")
    ask(browser, "400")  # above the station's 300 kWh: checked in the page, nothing sent
    wait_text(browser, "request-error", "at most 300 kWh")
    ask(browser, "2")
    wait_text(browser, "request-error", "The waiting area is full")
    assert station.call("GET", "/user/request", token=station_token(browser))["request"] is None


def test_a_username_that_looks_like_html_stays_text(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=1, piles=ONE_FAST))
    evil = '<img src=x onerror="window.__xss=1">'
    # Registration refuses such a name; the page shows the refusal in words.
    browser.get(station.url + "/")
    el(browser, "login-toggle").click()
    type_into(browser, "username", evil)
    type_into(browser, "password", "secret-pass")
    type_into(browser, "code", "web-bench-code")
    el(browser, "login-submit").click()
    wait_text(browser, "login-error", "A username is 1 to 64")
    # A database may hold one all the same (written by hand, or by another tool): it must show
    # as the characters it is.
    station.register("mallory")
    with sqlite3.connect(station.state / "station.sqlite3") as db:
        db.execute("UPDATE users SET username = ? WHERE username = 'mallory'", (evil,))
    browser.get(station.url + "/")  # the log-in form
    type_into(browser, "username", evil)
    type_into(browser, "password", "secret-pass")
    el(browser, "login-submit").click()
    assert wait_text(browser, "who", evil) == f"Signed in as {evil}"
    assert browser.find_elements(By.CSS_SELECTOR, "header img, main img") == []
    assert browser.execute_script("return window.__xss === undefined")
    assert console_errors(browser) == []


def test_an_expired_or_refused_token_goes_back_to_log_in_with_the_reason(
    station_factory: Make, browser: WebDriver
) -> None:
    station = station_factory(config_text(scale=1, piles=ONE_FAST))
    browser.get(station.url + "/")
    # A kept session whose token expired an hour ago.
    expired = {"token": "x.eyJleHAiOjF9.y", "name": "old", "role": "driver", "exp": 1}
    browser.execute_script(
        "localStorage.setItem('cs.session.driver', arguments[0])", json.dumps(expired)
    )
    browser.refresh()
    wait_text(browser, "login-reason", "expired")
    # One the station does not accept (a forged signature): refused on the first call.
    forged = {
        "token": "x.eyJleHAiOjk5OTk5OTk5OTl9.y",
        "name": "old",
        "role": "driver",
        "exp": 9_999_999_999,
    }
    browser.execute_script(
        "localStorage.setItem('cs.session.driver', arguments[0])", json.dumps(forged)
    )
    browser.refresh()
    wait_text(browser, "login-reason", "no longer valid")
    el(browser, "login-form")


def test_chinese_by_the_browsers_language_and_the_switch(
    station_factory: Make, browser_factory: Browser
) -> None:
    station = station_factory(config_text(scale=1, piles=ONE_FAST))
    driver = browser_factory(lang="zh-CN")
    driver.get(station.url + "/")
    wait_text(driver, "login-submit", "登录")
    language = el(driver, "lang")
    language.find_element(By.CSS_SELECTOR, "option[value=en]").click()
    wait_text(driver, "login-submit", "Log in")
    driver.refresh()  # the choice is kept
    wait_text(driver, "login-submit", "Log in")


def test_a_phone_of_360_px_scrolls_only_up_and_down(
    station_factory: Make, browser_factory: Browser
) -> None:
    station = station_factory(config_text(scale=30, piles=FAST_AND_COMMON, places=1))
    phone = browser_factory(width=360, height=740)
    phone.get(station.url + "/")
    el(phone, "login-form")
    assert phone.execute_script("return window.innerWidth") == 360
    assert no_horizontal_scroll(phone)
    screenshot(phone, "driver-login-phone")
    sign_up(phone, station, "nia")
    assert no_horizontal_scroll(phone)
    screenshot(phone, "driver-ask-phone")
    ask(phone, "30")
    wait_text(phone, "area", "Charging")
    wait(phone, lambda d: float(text_of(d, "charged").split()[0]) > 0, "some energy charged")
    assert no_horizontal_scroll(phone)
    screenshot(phone, "driver-charging-phone")
    el(phone, "tab-history").click()
    el(phone, "history-status")
    assert no_horizontal_scroll(phone)


def test_the_demos_printed_url_and_code_charge_a_car_in_the_browser(
    browser: WebDriver, tmp_path: Path
) -> None:
    """What `make run` gives a newcomer: the first line's URL, the printed code, a charge."""
    proc = subprocess.Popen(
        [str(SCRIPT), "demo", "--port", "0", "--scale", "600", "--state", str(tmp_path / "s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        url = re.search(r"open (http://\S+) in a browser", lines[0]).group(1)  # type: ignore[union-attr]
        operator = re.fullmatch(
            rf"Operator dashboard: {re.escape(url)}/admin  \(user (\S+), password (\S+)\)\n",
            lines[1],
        )
        assert operator is not None, lines[1]
        code = lines[2].rsplit(" ", 1)[1].strip()
        browser.get(url)
        el(browser, "login-toggle").click()
        type_into(browser, "username", "newcomer")
        type_into(browser, "password", "new-pass-1")
        type_into(browser, "code", code)
        el(browser, "login-submit").click()
        ask(browser, "2")
        wait_text(browser, "done-reason", "Charging complete")
        assert text_of(browser, "bill-kwh") == "2.00 kWh"
        el(browser, "to-history").click()
        assert "2.00 kWh" in text_of(browser, "history-item")
        # The printed operator logs in to the dashboard: pile A served that one session.
        browser.get(f"{url}/admin")
        type_into(browser, "login-username", operator.group(1))
        type_into(browser, "login-password", operator.group(2))
        el(browser, "login-submit").click()
        el(browser, "pile-1")
        wait_text(browser, "pile-1", "Since start-up: 1 sessions · 2.00 kWh")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
