"""The README's run command brings up the hub, and the demo users sign in in a browser.

This starts `manage.py run_hub` (what `make run` runs after installing) in a fresh
var/ folder, as a new user would, and waits for the address it prints.
"""

import stat
import time

import pytest

from emhub.demo import DEMO_USERS

from .hub import start_hub

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory):
    for hub in start_hub(tmp_path_factory.mktemp("var")):
        yield hub.address, hub.printed, hub.var_dir


def _sign_in(page, address, username, password):
    page.goto(address)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_run_prints_the_address_and_the_demo_sign_ins(running_hub):
    address, printed, _ = running_hub
    for username, password, _role, _name in DEMO_USERS:
        assert username in printed and password in printed


@pytest.mark.parametrize("username, password, role, first_name", DEMO_USERS)
def test_each_demo_user_signs_in_in_a_browser(
    running_hub, page, username, password, role, first_name
):
    address, _, _ = running_hub
    _sign_in(page, address, username, password)
    page.wait_for_selector("text=Demo Company")
    assert first_name in page.inner_text(".userbox")
    assert role.capitalize() in page.inner_text(".userbox")
    page.click("text=Sign out")
    page.wait_for_selector("input[name=username]")


def test_the_worker_and_beat_of_the_run_command_do_real_work(running_hub, page):
    address, _, _ = running_hub
    marketer = DEMO_USERS[0]
    _sign_in(page, address, marketer[0], marketer[1])
    # Beat schedules a heartbeat every 30 s and the worker records it.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = page.inner_text("[data-testid=worker-status]")
        if "running" in status:
            break
        time.sleep(3)
        page.reload()
    assert "Worker and scheduler running" in status


def test_a_wrong_password_in_the_browser_shows_the_form_error(running_hub, page):
    address, _, _ = running_hub
    _sign_in(page, address, "marketer", "not-the-password")
    assert "do not match" in page.inner_text(".form-errors")


def test_the_demo_admin_tests_the_superoffice_connection_to_the_simulator(running_hub, page):
    address, printed, _ = running_hub
    assert "NetServer simulator:" in printed
    admin = DEMO_USERS[1]
    _sign_in(page, address, admin[0], admin[1])
    page.click("text=Settings")
    page.click("[data-testid=test-connection]")
    page.wait_for_selector("text=Signed in as")
    assert "associate" in page.inner_text("main")


def test_what_the_hub_keeps_in_var_is_readable_by_its_owner_only(running_hub):
    _, _, var_dir = running_hub
    assert stat.S_IMODE(var_dir.stat().st_mode) == 0o700
    kept = [
        var_dir / "emhub.sqlite3",
        var_dir / "secret-key",
        var_dir / "field-encryption.key",
        *(var_dir / "log").glob("*.log"),
    ]
    assert len(kept) >= 7
    for path in kept:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in var_dir.rglob("*"):
        if path.name != "run_hub.out":  # written by this test, not by the hub
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
