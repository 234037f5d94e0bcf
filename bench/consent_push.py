"""Consent pushed both ways: how long until the other side agrees, next to the 30-minute cycle.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python \
        bench/consent_push.py [--changes 1000] [--rate 20] [--together]

Builds a throwaway PostgreSQL database (the DATABASE_URL name with a ``_push_bench``
suffix) and runs the hub as production does, each part its own process: the NetServer
simulator, the web app (gunicorn, 2 workers × 4 threads) that receives SuperOffice's
webhook, and a Celery worker (prefork, 2 processes) on CELERY_BROKER_URL. Then:

1. SuperOffice → hub: ``--changes`` consents changed in the simulator (Person.SetConsent
   over SOAP), ``--rate`` per second, each on its own person. Its webhook POSTs each
   change to the hub, a worker re-reads the person and updates the hub. Measured: from
   SetConsent's answer to the hub's current state holding the new legal basis.
2. hub → SuperOffice: as many changes recorded through the consent API (HTTP, the
   real recorder) at the same rate, each for its own contact; the outbox worker writes
   them. Measured: from the API's 201 to the simulator holding the new legal basis.
   (``--together`` runs both directions at once.)
3. The same changes left to the cycle: the pushes off (the worker stopped, the webhook's
   deliveries dropped), the changes made again and one incremental cycle run. A change
   waits for the next cycle (every 30 minutes, so 0 to 30 minutes, uniformly, for a
   change made at a random moment) and then for the cycle to reach it; the figures are
   that wait's quantiles plus the measured time into the cycle.

Prints p50/p95/max per direction and the load average the run was measured under, and
the CPU seconds each part spent on the pushes (web, worker, simulator, the bench itself),
in all and per change: on a busy machine the wall clock is noisy, CPU per change is not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from campaigns.models import Contact  # noqa: E402
from consent.models import (  # noqa: E402
    WITHDRAWN,
    ConsentDecision,
    ConsentSyncCycle,
    CurrentConsent,
    Purpose,
    SuperOfficeEvent,
    SuperOfficeWebhook,
)
from consent.services import consent_sync_cycle  # noqa: E402
from consent.webhooks import consent_webhook_ensure  # noqa: E402
from crm.models import SuperOfficeConnection  # noqa: E402
from emhub.models import Account  # noqa: E402
from emhub.services import api_key_issue  # noqa: E402

FIRST_PERSON = 11  # persons 2, 5 and 8 share an e-mail address; start after them
PURPOSE = Purpose.EMARKETING
HALF_HOUR = 1800.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[:4]} exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"Nothing answered on port {port}")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(leader: int) -> float:
    """CPU seconds (user + system) of every process in ``leader``'s process group, the
    children they have waited for included (a gunicorn or Celery worker that was replaced
    counts through its parent). Each part is started in its own session, so its group is
    the part with all its worker processes."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces and parentheses: split after it.
        fields = text[text.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime..cstime are fields 14-17.
        if int(fields[2]) != leader:
            continue
        ticks += sum(int(f) for f in fields[11:15])
    return ticks / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Held:
    """A started part: its process and the CPU its process group has used so far."""

    def __init__(self, process: subprocess.Popen):
        self.process = process

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.process.pid)


class Processes:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.running: dict[str, subprocess.Popen] = {}
        self.held: dict[str, Held] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.running[name] = process
        self.held[name] = Held(process)
        return process

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each running part and of the bench itself."""
        found = {name: self.held[name].cpu_seconds() for name in self.running}
        found["bench"] = own_cpu_seconds()
        return found

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop_all(self) -> None:
        for name in list(self.running)[::-1]:
            self.stop(name)


class Simulator:
    def __init__(self, port: int):
        self.root = f"http://127.0.0.1:{port}"

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.root}{path}", timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def post(self, path: str, data: dict):
        request = urllib.request.Request(  # noqa: S310 - loopback simulator
            f"{self.root}{path}",
            data=json.dumps(data).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def consents(self, person_ids) -> dict[int, str]:
        """{person: the purpose's legal base} for many persons in one request."""
        found = self.get(f"/_sim/state/consents?ids={','.join(map(str, person_ids))}")
        return {int(k): (v.get(PURPOSE) or {}).get("legal_base", "") for k, v in found.items()}


def quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        return (float("nan"),) * 3
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95, ordered[-1]


def paced(count: int, rate: float, act) -> None:
    """Call act(i) for i in range(count), ``rate`` per second, on a fixed schedule."""
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        act(i)


class Watch:
    """Changes waiting for the other side, checked every ``interval`` seconds."""

    def __init__(self, check, interval: float):
        self.check = check  # check({key: expected}) -> set of keys that agree now
        self.interval = interval
        self.waiting: dict[int, tuple[str, float]] = {}
        self.agreed: dict[int, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, key: int, expected: str, at: float) -> None:
        with self.lock:
            self.waiting[key] = (expected, at)

    def _run(self) -> None:
        try:
            self._watch()
        finally:
            from django.db import connections

            connections.close_all()

    def _watch(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                snapshot = dict(self.waiting)
            if snapshot:
                now = time.monotonic()
                for key in self.check({k: v[0] for k, v in snapshot.items()}):
                    with self.lock:
                        expected_at = self.waiting.pop(key, None)
                    if expected_at is not None:
                        self.agreed[key] = now - expected_at[1]
            self.stop.wait(self.interval)

    def wait_done(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.waiting:
                    break
            time.sleep(0.1)
        self.stop.set()
        self.thread.join(5)


def hub_agrees(contact_of: dict[int, int]):
    def check(expected: dict[int, str]) -> set[int]:
        rows = CurrentConsent.objects.filter(
            contact_id__in=[contact_of[p] for p in expected], purpose=PURPOSE
        ).values_list("contact_id", "legal_basis")
        person_of = {c: p for p, c in contact_of.items()}
        return {person_of[c] for c, basis in rows if basis == expected[person_of[c]]}

    return check


def superoffice_agrees(sim: Simulator):
    def check(expected: dict[int, str]) -> set[int]:
        found = sim.consents(list(expected))
        return {p for p, basis in found.items() if basis == expected[p]}

    return check


def flip(basis: str) -> str:
    return "61A" if basis != "61A" else WITHDRAWN


def superoffice_side(args, persons: list[int], contact_of: dict[int, int], sim) -> Watch:
    start_state = sim.consents(persons)
    watch = Watch(hub_agrees(contact_of), interval=0.05)

    def change(i: int) -> None:
        person = persons[i]
        target = flip(start_state.get(person, ""))
        # A user in SuperOffice (not the hub's own user) changes the consent.
        sim.post(
            "/_sim/consent",
            {"person_id": person, "purpose": PURPOSE, "legal_base": target, "source": "USER"},
        )
        watch.add(person, target, time.monotonic())

    paced(len(persons), args.rate, change)
    return watch


def hub_side(args, persons: list[int], contact_of, email_of, sim, base_url, api_key) -> Watch:
    start_state = sim.consents(persons)
    watch = Watch(superoffice_agrees(sim), interval=0.1)
    opener = urllib.request.build_opener()

    def change(i: int) -> None:
        person = persons[i]
        target = flip(start_state.get(person, ""))
        request = urllib.request.Request(  # noqa: S310 - the hub on loopback
            f"{base_url}/api/v1/consents/",
            data=json.dumps(
                {
                    "email": email_of[person],
                    "purpose": PURPOSE,
                    "legal_basis": target,
                    "source": "WEBFORM",
                }
            ).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        )
        with opener.open(request, timeout=30) as response:
            if response.status != 201:
                raise SystemExit(f"The consent API answered {response.status}")
        watch.add(person, target, time.monotonic())

    paced(len(persons), args.rate, change)
    return watch


def report(label: str, watch: Watch, count: int) -> list[float]:
    values = list(watch.agreed.values())
    p50, p95, top = quantiles(values)
    print(
        f"{label}: {len(values):,} of {count:,} agreed; "
        f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {top:.2f} s"
        + (f"; {len(watch.waiting)} never agreed" if watch.waiting else "")
    )
    return values


def report_cpu(before: dict[str, float], after: dict[str, float], changes: int) -> None:
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(spent.values())
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in spent.items())
    print(f"  CPU seconds on the pushes: {parts}; {total:.1f} s in all")
    per = ", ".join(f"{name} {1000 * s / changes:.1f}" for name, s in spent.items())
    print(f"  CPU ms per change ({changes:,} changes): {per}; {1000 * total / changes:.1f} in all")


def cycle_comparison(args, account, so_persons, hub_persons, contact_of, sim) -> None:
    """The same changes without pushes, left to one incremental cycle."""
    before_so, before_hub = sim.consents(so_persons), sim.consents(hub_persons)
    sim.post("/_sim/control", {"webhook_drop": 1.0})
    from consent.services import consent_record

    for person in so_persons:
        sim.post(
            "/_sim/consent",
            {
                "person_id": person,
                "purpose": PURPOSE,
                "legal_base": flip(before_so.get(person, "")),
            },
        )
    contacts = Contact.objects.in_bulk([contact_of[p] for p in hub_persons])
    for person in hub_persons:
        # push=False: the pushes are off here, so the cycle alone carries these changes.
        consent_record(
            account=account,
            contact=contacts[contact_of[person]],
            purpose=PURPOSE,
            legal_basis=flip(before_hub.get(person, "")),
            source="WEBFORM",
            push=False,
        )
    clock = time.monotonic()
    cycle = consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.INCREMENTAL)
    seconds = time.monotonic() - clock
    started = cycle.started_at
    offsets = [
        (decided - started).total_seconds()
        for decided in ConsentDecision.objects.filter(cycle=cycle)
        .exclude(action=ConsentDecision.Action.NONE)
        .values_list("decided_at", flat=True)
    ]
    o50, o95, omax = quantiles(offsets)
    print(
        f"The same {len(so_persons) + len(hub_persons):,} changes left to the cycle: one "
        f"incremental cycle took {seconds:.1f} s ({cycle.crm_calls:,} SOAP calls, "
        f"{cycle.written_to_hub:,} to the hub, {cycle.written_to_superoffice:,} to SuperOffice)"
    )
    print(
        "  time until the other side agrees, for a change made at a random moment of the "
        "half hour (wait for the next cycle, 0-30 min, plus the time into the cycle):"
    )
    print(
        f"  p50 {HALF_HOUR * 0.5 + o50:,.0f} s, p95 {HALF_HOUR * 0.95 + o95:,.0f} s, "
        f"max {HALF_HOUR + omax:,.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="changes on each side")
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second per side")
    parser.add_argument("--together", action="store_true", help="both sides at the same time")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="seconds the web app and the worker keep a database connection (production: 60)",
    )
    parser.add_argument("--sim-port", type=int, default=0, help="the simulator's port")
    parser.add_argument("--web-port", type=int, default=0, help="the web app's port")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server.")

    db = connection.settings_dict
    db["TEST"].update(NAME=f"test_{db['NAME']}_push_bench", MIGRATE=False)
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    print(f"Database {test_name} (PostgreSQL), broker {settings.CELERY_BROKER_URL}")
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()}\n")

    sim_port, web_port = args.sim_port or free_port(), args.web_port or free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    settings.EMHUB_PUBLIC_URL = base_url
    env = os.environ.copy() | {
        "DJANGO_SETTINGS_MODULE": "emhub.settings.test",
        # conn_max_age: as production keeps them (settings.production), a web request or a
        # task reuses its process's database connection instead of opening one of its own.
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{test_name}"
            f"?conn_max_age={args.conn_max_age}"
        ),
        "EMHUB_PUBLIC_URL": base_url,
    }
    processes = Processes(env)
    persons_needed = FIRST_PERSON + 2 * args.changes
    try:
        sim_process = processes.start(
            "simulator",
            [
                sys.executable,
                "manage.py",
                "netserver_simulator",
                "--port",
                str(sim_port),
                "--persons",
                str(persons_needed),
                "--allow-http-webhooks",
            ],
        )
        wait_for_port(sim_port, sim_process)
        web = processes.start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "emhub.wsgi:application",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
        )
        wait_for_port(web_port, web)
        from emhub.celery import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")
        processes.start(
            "worker",
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
                str(args.workers),
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        sim = Simulator(sim_port)
        # A busy NetServer sends several deliveries at once.
        sim.post("/_sim/control", {"webhook_senders": 4})

        account = Account.objects.create(slug="push-bench", name="Push bench")
        SuperOfficeConnection.objects.create(
            account=account,
            base_url=f"http://127.0.0.1:{sim_port}/Remote/Services88/",
            username=settings.NETSERVER_SIMULATOR["USERNAME"],
            password=settings.NETSERVER_SIMULATOR["PASSWORD"],
            application_token=settings.NETSERVER_SIMULATOR["APP_TOKEN"],
            legal_basis_sync_enabled=True,
        )
        persons = list(range(FIRST_PERSON, FIRST_PERSON + 2 * args.changes))
        email_of = {p: sim.get(f"/_sim/state/persons/{p}")["Emails"][0] for p in persons}
        Contact.objects.bulk_create(
            Contact(account=account, email=email_of[p], superoffice_person_id=p) for p in persons
        )
        contact_of = dict(
            Contact.objects.filter(account=account).values_list("superoffice_person_id", "pk")
        )
        api_key = api_key_issue(account=account, name="bench").raw_key
        clock = time.monotonic()
        first = consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.FULL)
        print(
            f"{len(persons):,} linked contacts; a first full cycle brought both sides in step "
            f"in {time.monotonic() - clock:.1f} s ({first.status}) (untimed)"
        )
        hook = consent_webhook_ensure(account=account)
        if hook.state != SuperOfficeWebhook.State.ACTIVE:
            raise SystemExit(f"The webhook was not registered: {hook.error}")
        print(f"Webhook {hook.webhook_id} registered at {hook.target_url}\n")
        time.sleep(2)  # the cycle the registration queued

        so_persons, hub_persons = persons[: args.changes], persons[args.changes :]
        print(
            f"{args.changes:,} changes on each side at {args.rate:g}/s"
            + (" (both sides at once)" if args.together else "")
        )
        cpu_before = processes.cpu_seconds()
        if args.together:
            results: dict[str, Watch] = {}
            threads = [
                threading.Thread(
                    target=lambda: results.__setitem__(
                        "so", superoffice_side(args, so_persons, contact_of, sim)
                    )
                ),
                threading.Thread(
                    target=lambda: results.__setitem__(
                        "hub",
                        hub_side(args, hub_persons, contact_of, email_of, sim, base_url, api_key),
                    )
                ),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            so_watch, hub_watch = results["so"], results["hub"]
            so_watch.wait_done(120)
            hub_watch.wait_done(120)
        else:
            so_watch = superoffice_side(args, so_persons, contact_of, sim)
            so_watch.wait_done(120)
            hub_watch = hub_side(args, hub_persons, contact_of, email_of, sim, base_url, api_key)
            hub_watch.wait_done(120)
        load = os.getloadavg()
        cpu_after = processes.cpu_seconds()
        report("SuperOffice → hub (webhook, worker re-reads the person)", so_watch, args.changes)
        report("hub → SuperOffice (consent API, outbox worker)", hub_watch, args.changes)
        events = list(
            SuperOfficeEvent.objects.filter(account=account, occurred_at__isnull=False).values_list(
                "occurred_at", "received_at", "processed_at", "note"
            )
        )
        echoes = sum(1 for *_, note in events if note.startswith("The hub's own write"))
        delivered = quantiles([(r - o).total_seconds() for o, r, _, _ in events])
        applied = quantiles([(p - r).total_seconds() for _, r, p, _ in events if p])
        print(
            f"  deliveries stored: {len(events):,} ({echoes:,} of them the hub's own writes "
            "coming back, not read again)"
        )
        print(
            f"  SuperOffice's change to the hub's receiver: p50 {delivered[0]:.2f} s, "
            f"p95 {delivered[1]:.2f} s; receiver to applied: p50 {applied[0]:.2f} s, "
            f"p95 {applied[1]:.2f} s"
        )
        report_cpu(cpu_before, cpu_after, 2 * args.changes)
        print(f"  load average after the pushes {load}\n")

        processes.stop("worker")
        cycle_comparison(args, account, so_persons, hub_persons, contact_of, sim)
        print(f"\nLoad average at the end {os.getloadavg()}")
    finally:
        processes.stop_all()
        connection.close()
        connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
