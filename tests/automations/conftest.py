"""Fixtures for the engine's end-to-end tests: the NetServer simulator over HTTP, a
connected account, and real Celery workers (in-process threads, or subprocesses that
can be killed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from kombu import pools as kombu_pools

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s: {message}")
        time.sleep(interval)


class Sim:
    """The simulator's control and state endpoints."""

    def __init__(self, port: int):
        self.port = port
        self.root = f"http://127.0.0.1:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/Remote/Services88/"

    def state(self, *parts):
        url = f"{self.root}/_sim/state/{'/'.join(map(str, parts))}"
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback test server
            return json.loads(r.read())

    def _post(self, path: str, data: dict) -> dict:
        req = urllib.request.Request(  # noqa: S310
            f"{self.root}{path}",
            data=json.dumps(data).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def control(self, **data) -> dict:
        return self._post("/_sim/control", data)

    def reset(self) -> None:
        self._post("/_sim/reset", {})

    def sales_for(self, marker_prefix: str = "[emhub:") -> list[dict]:
        return [s for s in self.state("sales") if marker_prefix in json.dumps(s)]


@pytest.fixture(scope="session")
def sim_server():
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "netserver_simulator",
            "--port",
            str(port),
            "--persons",
            "300",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "emhub.settings.test"},
    )
    sim = Sim(port)

    def up():
        try:
            sim.state("counters")
            return True
        except OSError:
            return False

    try:
        wait_until(up, timeout=30, message="simulator did not start")
        yield sim
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def sim(sim_server):
    sim_server.reset()
    yield sim_server
    sim_server.control(mode="normal", refuse_tickets=False)


@pytest.fixture
def connected_account(account, sim):
    """The `account` fixture with a SuperOffice connection to the simulator."""
    from crm.services import connection_save

    connection_save(
        account=account,
        base_url=sim.base_url,
        auth_mode="onsite",
        username=settings.NETSERVER_SIMULATOR["USERNAME"],
        password=settings.NETSERVER_SIMULATOR["PASSWORD"],
        application_token=settings.NETSERVER_SIMULATOR["APP_TOKEN"],
    )
    return account


@pytest.fixture
def fast_retries(settings):
    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 0.2
    settings.AUTOMATIONS_RETRY_CAP_SECONDS = 1.0
    settings.AUTOMATIONS_REDISPATCH_AFTER_SECONDS = 1.0
    settings.AUTOMATIONS_CONFIG_PAUSE_SECONDS = 2.0
    settings.AUTOMATIONS_LEASE_SECONDS = 30.0
    return settings


def purge_broker(app) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


def claim_next(account_id: int):
    """The account's oldest held-back run, claimed by this process; None when none is left."""
    from automations.services import runs_claim_next

    claimed = runs_claim_next(account_id=account_id, count=1)
    return claimed[0] if claimed else None


def queued_messages(app) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the broker's default queue, taken off."""
    taken = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("celery")
        try:
            while True:
                message = queue.get(block=True, timeout=0.2)
                args, _kwargs, _embed = message.decode()
                taken.append((message.headers["task"], args))
                message.ack()
        except queue.Empty:
            pass
        finally:
            queue.close()
    return taken


@pytest.fixture
def celery_worker_threads(transactional_db, fast_retries):
    """A real Celery worker consuming the test broker in this process (threads pool)."""
    from celery.contrib.testing.worker import start_worker

    from emhub.celery import app

    purge_broker(app)
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


# --- subprocess workers (killable) --------------------------------------------------------


def test_database_env() -> dict:
    """Environment that points a subprocess at the test database this process created."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"EMHUB_SQLITE_PATH": str(db["NAME"])}
    return {
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }


class WorkerProcess:
    def __init__(self, *, broker_url: str, concurrency: int = 4, env: dict | None = None):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.automations.worker_settings",
            # The test process's settings module (pytest-django puts --ds in the environment).
            "EMHUB_WORKER_BASE_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
            **test_database_env(),
            "CELERY_BROKER_URL": broker_url,
            **(env or {}),
        }
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    def start(self):
        # The worker's log goes to a temporary file, shown by `log()` when a test fails.
        self.log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="emhub-worker-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "emhub",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")[-5000:]

    def kill(self):
        """SIGKILL the whole worker: the main process and its pool children."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_process():
    started: list[WorkerProcess] = []

    def make(**kw) -> WorkerProcess:
        w = WorkerProcess(broker_url=kw.pop("broker_url", settings.CELERY_BROKER_URL), **kw)
        started.append(w)
        return w.start()

    yield make
    for w in started:
        w.stop()
        # Captured output: pytest shows it when the test failed.
        print(f"--- worker log (tail) ---\n{w.log()}")
        w.log_file.close()
        Path(w.log_file.name).unlink(missing_ok=True)


class RedisServer:
    """A private redis-server, so a test can stop the broker without touching anyone else's."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        # The machine's redis-server, without persistence, on a port of its own.
        self.proc = subprocess.Popen(  # noqa: S603
            [  # noqa: S607
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(up, timeout=10, message="redis-server did not start")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_redis():
    server = RedisServer().start()
    yield server
    server.stop()


@contextmanager
def app_broker(url: str):
    """Point this process's Celery app (the publisher) at another broker for a while."""
    from emhub.celery import app

    def reset_pools():
        # kombu keeps connection and producer pools per broker URL, process-wide:
        # close and forget them all, so the next publish connects to the current URL.
        kombu_pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    # Celery resolves broker_write_url/broker_read_url from broker_url at configuration
    # time, so all three move together.
    names = ("broker_url", "broker_write_url", "broker_read_url")
    old = {name: app.conf[name] for name in names}
    reset_pools()
    for name in names:
        app.conf[name] = url
    try:
        yield app
    finally:
        reset_pools()
        for name, value in old.items():
            app.conf[name] = value
