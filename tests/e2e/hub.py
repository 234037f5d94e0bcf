"""Starting the hub as a new user does: `manage.py run_hub` (what `make run` runs after
installing) in a fresh var/ folder, with the embedded default's settings, and waiting
for the address it prints."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningHub:
    address: str
    printed: str
    var_dir: Path
    simulator_root: str
    env: dict[str, str]  # the environment its processes run with, for manage.py commands

    def logs(self) -> dict[str, str]:
        """Every process's log: the run command's own output and var/log/*.log."""
        found = {"run_hub": (self.var_dir / "run_hub.out").read_text(errors="replace")}
        for path in sorted((self.var_dir / "log").glob("*.log")):
            found[path.stem] = path.read_text(errors="replace")
        return found

    def tracebacks(self) -> dict[str, str]:
        return {
            name: text[text.index("Traceback") :][:3000]
            for name, text in self.logs().items()
            if "Traceback" in text
        }


def start_hub(var_dir: Path, **extra_env: str):
    """A generator for a fixture: yields a RunningHub, stops every process after."""
    port, sim_port = free_port(), free_port()
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
        **extra_env,
    )
    out = open(var_dir / "run_hub.out", "w+")  # noqa: SIM115 - closed below
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
    try:
        yield RunningHub(address, printed, var_dir, f"http://127.0.0.1:{sim_port}", env)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        out.close()
