"""The README's run command brings up the hub, and the demo users sign in in a browser.

This starts `manage.py run_hub` (what `make run` runs after installing) in a fresh
var/ folder, as a new user would, and waits for the address it prints.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emhub.demo import DEMO_USERS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("var")
    port, sim_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="emhub.settings.local",
        EMHUB_VAR_DIR=str(var_dir),
        EMHUB_PORT=str(port),
        EMHUB_SIMULATOR_PORT=str(sim_port),
    )
    out = open(var_dir / "run_hub.out", "w+")  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_hub"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and address is None:
        if process.poll() is not None:
            break
        out.seek(0)
        found = re.search(r"emhub is running at (http://\S+)", out.read())
        address = found.group(1) if found else None
        time.sleep(0.5)
    out.seek(0)
    printed = out.read()
    if address is None:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"run_hub did not print its address:\n{printed}")
    yield address, printed, var_dir
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    out.close()


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
