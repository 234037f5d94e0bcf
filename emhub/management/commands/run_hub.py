"""The embedded default in one command: migrate, seed the demo, then run the NetServer
simulator, a Celery worker, Celery beat and the web app until Ctrl-C.

Each part is its own process, as in production; if one of them dies the others are
stopped too, so a half-running hub never looks healthy.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def wait_for_port(host: str, port: int, *, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(
                f"{process.args[0]} exited with status {process.returncode} while starting."
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"Nothing answered on {host}:{port} after {timeout:.0f} s.")


class Command(BaseCommand):
    help = "Run the whole hub locally: simulator, worker, beat and web app (the embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("EMHUB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("EMHUB_PORT", "8000")))
        parser.add_argument(
            "--simulator-port",
            type=int,
            default=int(os.environ.get("EMHUB_SIMULATOR_PORT", "8765")),
        )
        parser.add_argument(
            "--no-simulator", action="store_true", help="Use a real NetServer instead."
        )

    def handle(self, *args, host, port, simulator_port, no_simulator, **options):
        # Everything the hub and its processes write under var/ (the SQLite database, keys,
        # mail, broker messages, logs) is readable by its owner only.
        os.umask(0o077)
        var_dir = Path(settings.VAR_DIR)
        (var_dir / "log").mkdir(parents=True, exist_ok=True)
        for folder in ("queue", "processed", "control"):
            (Path(settings.BROKER_DIR) / folder).mkdir(parents=True, exist_ok=True)

        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)

        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        env = dict(os.environ)
        # Tracked links and the open pixel in sent messages point at this hub.
        env.setdefault("EMHUB_PUBLIC_URL", f"http://{host}:{port}")
        self.processes: list[tuple[str, subprocess.Popen]] = []
        netserver_url = ""
        try:
            if not no_simulator and self._simulator_available():
                sim = self._start(
                    "simulator",
                    [
                        python,
                        manage,
                        "netserver_simulator",
                        "--port",
                        str(simulator_port),
                        # Its webhook delivers consent changes to this hub on loopback.
                        "--allow-http-webhooks",
                    ],
                    env,
                    var_dir,
                )
                wait_for_port("127.0.0.1", simulator_port, timeout=60, process=sim)
                netserver_url = f"http://127.0.0.1:{simulator_port}/Remote/Services88/"

            self.stdout.write("Seeding the demo account…")
            from emhub.demo import demo_seed

            seeded = demo_seed(netserver_url=netserver_url)

            celery = [python, "-m", "celery", "-A", "emhub"]
            self._start(
                "worker",
                [
                    *celery,
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--hostname",
                    "worker@%h",
                ],
                env,
                var_dir,
            )
            self._start(
                "beat",
                [
                    *celery,
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(var_dir / "celerybeat-schedule"),
                ],
                env,
                var_dir,
            )
            web = self._start(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "emhub.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                ],
                env,
                var_dir,
            )
            wait_for_port(host, port, timeout=60, process=web)

            address = f"http://{host}:{port}/"
            self.stdout.write(self.style.SUCCESS(f"\nemhub is running at {address}"))
            self.stdout.write(f"Sign in to account '{seeded.account.slug}' as:")
            for line in seeded.sign_in_lines():
                self.stdout.write(line)
            if netserver_url:
                self.stdout.write(f"NetServer simulator: {netserver_url}")
            self.stdout.write(f"Logs: {var_dir / 'log'}   Stop with Ctrl-C.\n")
            self.stdout.flush()
            self._supervise()
        finally:
            self._stop_all()

    def _simulator_available(self) -> bool:
        from django.core.management import get_commands

        return "netserver_simulator" in get_commands()

    def _start(self, name, argv, env, var_dir) -> subprocess.Popen:
        log = open(var_dir / "log" / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR
        )
        self.processes.append((name, process))
        return process

    def _supervise(self) -> None:
        stop = {"now": False}

        def on_signal(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop["now"]:
            for name, process in self.processes:
                if process.poll() is not None:
                    self.stderr.write(
                        f"The {name} process exited with status {process.returncode}; "
                        f"see var/log/{name}.log. Stopping the hub."
                    )
                    return
            time.sleep(0.5)
        self.stdout.write("Stopping…")

    def _stop_all(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
