"""The client's parts that need no station: addresses, refusals, the remembered logins, amounts
and tables (the whole client against a real station: test_client.py)."""

from __future__ import annotations

import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from server.client import render
from server.client.api import normalize_url, parse_json
from server.client.errors import Exit, Failure, refusal
from server.client.store import Login, Remembered, Store, config_dir


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTP://Station.Local:8080/", "http://station.local:8080"),
        ("https://10.0.0.5", "https://10.0.0.5"),
        ("https://gw.example/station/", "https://gw.example/station"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_station_addresses_are_normalized(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize(
    "given", ["station.local:8080", "ftp://station", "http://", "http://h:99999", "http://h/?a=1"]
)
def test_a_bad_station_address_is_a_usage_error(given: str) -> None:
    with pytest.raises(Failure) as caught:
        normalize_url(given)
    assert caught.value.code is Exit.USAGE


def test_refusals_have_their_exit_code_and_keep_the_station_particulars() -> None:
    expired = refusal("token_expired", "登录已过期，请重新登录 (token expired; log in again)")
    assert expired.code is Exit.AUTH and "log in again" in (expired.hint or "")
    assert refusal("bad_credentials", "…").code is Exit.AUTH
    full = refusal("waiting_area_full", "the waiting area is full (6 cars)")
    assert full.code is Exit.REFUSED and "(6 cars)" in full.message
    assert full.error == "waiting_area_full" and "[waiting_area_full]" in full.message
    # A key this client does not know: the station's own sentence.
    newer = refusal("solar_only_today", "only solar power today")
    assert newer.code is Exit.REFUSED and "only solar power today" in newer.message


def test_json_amounts_are_decimals_and_shown_half_up() -> None:
    bill = parse_json('{"cost": 2.675, "quantity": 30.0}')
    assert bill["cost"] == Decimal("2.675")  # a float would be 2.67499999…
    assert render.money(bill["cost"]) == "2.68"
    assert render.kwh(bill["quantity"]) == "30.00"
    assert render.money(0) == "0.00" and render.money(None) == "-"
    assert render.duration(Decimal("3725.5")) == "1:02:06"


def test_tables_align_wide_characters_and_right_align_numbers() -> None:
    text = render.table(("USER", "KWH"), [["张伟", "5.00"], ["bob", "12.50"]], right=[1])
    assert text.splitlines() == ["USER    KWH", "张伟   5.00", "bob   12.50"]


def test_the_log_table_adds_up_the_bills_exactly() -> None:
    bills = parse_json(
        '[{"id": 2, "endTime": "2026-11-23 08:00:00", "stationId": 1, "quantity": 10.1,'
        ' "timeOfUse": 0.3367, "costOfCharge": 0.1, "costOfService": 0.2, "cost": 0.3},'
        ' {"id": 1, "endTime": "2026-11-23 07:00:00", "stationId": 3, "quantity": 20.2,'
        ' "timeOfUse": 2.8857, "costOfCharge": 0.2, "costOfService": 0.1, "cost": 0.3}]'
    )
    total = render.log_table(bills).splitlines()[-1].split()
    assert total == ["total", "30.30", "3.2224", "0.30", "0.30", "0.60"]


def test_the_progress_bar_shows_kwh_share_and_fee() -> None:
    state = parse_json('{"charged": 7.5, "quantity": 30.0, "fee": 15.0}')
    assert render.progress(state, width=8) == "[##......]  25%  7.50 / 30.00 kWh  fee 15.00 yuan"


def test_logins_are_kept_per_station_in_a_private_file(tmp_path: Path) -> None:
    folder = tmp_path / "charge-client"
    folder.mkdir(mode=0o755)
    store = Store(folder)
    a, b = "http://a.local:8080", "https://b.local"
    old_umask = os.umask(0)  # the file's mode must not depend on the user's umask
    try:
        remembered = Remembered().with_login(a, Login(None, "ann", "tok-a"), make_current=True)
        remembered = remembered.with_login(b, Login("/ca.pem", "bob", "tok-b"), make_current=True)
        store.save(remembered)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    loaded = store.load()
    assert loaded.current == b
    assert loaded.login(a) == Login(None, "ann", "tok-a")
    assert loaded.login(b) == Login("/ca.pem", "bob", "tok-b")
    store.save(loaded.without_token(a))
    again = store.load()
    assert again.login(a).token is None and again.login(a).username == "ann"
    assert again.login(b).token == "tok-b"
    assert json.loads(store.path.read_text())["version"] == 1
    assert list(folder.iterdir()) == [store.path]  # no temporary file left behind


def test_a_damaged_file_is_a_usage_error_with_what_to_do(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.path.write_text('{"stations": {"http://a": {"token": 5}}}')
    with pytest.raises(Failure) as caught:
        store.load()
    assert caught.value.code is Exit.USAGE and "rm " in (caught.value.hint or "")


def test_the_config_folder_follows_xdg() -> None:
    assert config_dir({"XDG_CONFIG_HOME": "/srv/cfg"}) == Path("/srv/cfg/charge-client")
    # A relative XDG_CONFIG_HOME is invalid by the spec, and ignored.
    assert config_dir({"XDG_CONFIG_HOME": "cfg"}) == Path.home() / ".config" / "charge-client"
