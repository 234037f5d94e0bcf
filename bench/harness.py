"""What the engine's benches share: a throwaway database, the NetServer simulator, Celery
worker processes and the broker's queue.

Import it after ``django.setup()``: the database and the workers follow the settings of
the bench's process (DATABASE_URL, CELERY_BROKER_URL).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    between: Callable[[], None] | None = None,
) -> None:
    """Poll `predicate` until it holds; `between` is called on every poll (a bench that
    plays beat sweeps there)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        if between is not None:
            between()
        time.sleep(0.05)


@contextmanager
def throwaway_database(suffix: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the bench (the test database name of DATABASE_URL
    with `suffix`), dropped afterwards."""
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    db["TEST"].update(NAME=f"test_{db['NAME']}{suffix}", MIGRATE=False)
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)


def start_simulator(persons: int, *, delay: float | None = None) -> tuple[subprocess.Popen, int]:
    """The NetServer simulator on a free port; with `delay`, every call is answered after
    that many seconds."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "netserver_simulator",
            "--port",
            str(port),
            "--persons",
            str(persons),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(up, 30, "the simulator")
    if delay is not None:
        request = urllib.request.Request(  # noqa: S310 - loopback simulator
            f"http://127.0.0.1:{port}/_sim/control",
            data=json.dumps({"mode": "slow", "delay": delay}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310
    return proc, port


def stop_processes(procs: list[subprocess.Popen], timeout: float = 30) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout)


def start_workers(n: int, *, concurrency: int = 1, name: str = "bench") -> list[subprocess.Popen]:
    """`n` Celery worker processes (prefork, `concurrency` each) on the bench's database
    and broker."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {
        # Workers keep their database connection between tasks, as production runs them
        # (emhub/settings/production.py, .env.example): a new one per task would also
        # lose the claims each connection prepares (automations.services._prepare).
        "CONN_MAX_AGE": "60",
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    }
    return [
        subprocess.Popen(  # noqa: S603
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
                str(concurrency),
                "--loglevel",
                "WARNING",
                "-n",
                f"{name}{i}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(n)
    ]


def queue_length() -> int:
    from emhub.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("celery")


def purge() -> None:
    from emhub.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


def process_cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU time of a child process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect_account(account, port: int) -> None:
    """The account's SuperOffice connection to the simulator on `port`."""
    from django.conf import settings

    from crm.services import connection_save

    connection_save(
        account=account,
        base_url=f"http://127.0.0.1:{port}/Remote/Services88/",
        auth_mode="onsite",
        username=settings.NETSERVER_SIMULATOR["USERNAME"],
        password=settings.NETSERVER_SIMULATOR["PASSWORD"],
        application_token=settings.NETSERVER_SIMULATOR["APP_TOKEN"],
    )


def make_contacts(account, n: int, persons: int, prefix: str) -> list:
    """`n` contacts matched to the simulator's persons in turn."""
    from campaigns.models import Contact

    return Contact.objects.bulk_create(
        [
            Contact(
                account=account,
                email=f"{prefix}{i}@bench.example",
                superoffice_person_id=1 + i % persons,
            )
            for i in range(n)
        ]
    )
