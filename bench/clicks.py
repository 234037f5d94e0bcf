"""Tracked-link clicks: clicks per second and latency percentiles of `GET /t/<token>/?c=…`
next to a static redirect served by the same server (the floor).

    .venv/bin/python bench/clicks.py [--clicks 2000] [--concurrency 2] [--workers 2]
                                     [--conn-max-age 60] [--quick] [--json PATH]

Makes a throwaway PostgreSQL database (DATABASE_URL's name plus `_bench_clicks`), a
campaign whose link has three actions (set a field, a request, a CRMScript) and 200
recipients matched to SuperOffice persons. A click writes one raw click and answers; the
first of a burst publishes the drain's wake-up (campaigns.clicks). The drain, run here as
a worker runs it, stores each click's event and three runs and publishes their wake-up
(one message for the three) to the broker (CELERY_BROKER_URL; the queue is purged
afterwards; no worker runs, so SuperOffice is never called). Three measurements:

1. In process, with Django's test client: the server time of one request through the
   middleware, the view, PostgreSQL and the broker, with no socket and no HTTP parsing,
   and its CPU time and queries.
2. Over HTTP on loopback: gunicorn with sync workers and database connections kept
   between requests (as in production: CONN_MAX_AGE 60 with health checks; `--conn-max-age
   0` opens one per request) and `concurrency` client threads. Clicks per second are what
   the clients saw; latency percentiles are the server time gunicorn logs for each request
   (`%(D)s`), and the clients' round trip. gunicorn reads gunicorn.conf.py from the
   project folder, as in both run modes (its access log redacts secrets).
3. The drain: every raw click of 1 and 2 turned into its event and runs, clicks per
   second and CPU per click; the counts are checked (one event and three runs a click).

The static redirect (`/static-redirect/`, bench/clicks_urls.py) touches neither the
database nor the broker: the same server's floor. The targets are a median server time
under 10 ms for `/t/` through gunicorn and at least 0.3 of the floor's clicks per second.
``--quick`` times fewer clicks; ``--json PATH`` also writes the figures as rows for
bench/run_all.py. Not a test: the suite never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
# Set outright: `make bench` exports the test settings for every bench, and under those
# the floor's /static-redirect/ is not routed (it would time a 404).
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.clicks_settings"
# Read by bench/clicks_settings.py, here and in gunicorn's workers.
if "--conn-max-age" in sys.argv:
    os.environ["BENCH_CONN_MAX_AGE"] = sys.argv[sys.argv.index("--conn-max-age") + 1]

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

RECIPIENTS = 200
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
STATIC = "/static-redirect/"
STATIC_TARGET = "https://example.com/signup"  # bench/clicks_urls.py


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def line(label: str, ms: list[float], extra: str = "") -> str:
    return (
        f"{label:<34} median {statistics.median(ms):6.2f}  p90 {pct(ms, 90):6.2f}  "
        f"p99 {pct(ms, 99):6.2f}  max {max(ms):7.2f} ms{extra}"
    )


def setup_data(paths_wanted: int) -> list[str]:
    from automations.models import Automation, AutomationType
    from campaigns.models import Contact, EventType
    from campaigns.services import tracked_link_create, tracking_url_for_link
    from emhub.services import account_create
    from tests.campaigns.factories import CampaignFactory

    account = account_create(slug="bench-clicks", name="Bench clicks")
    campaign = CampaignFactory(account=account, name="Bench campaign")
    link = tracked_link_create(campaign=campaign, name="Sign up", url="https://example.com/s")
    for type_, s in (
        (
            AutomationType.SET_FIELD,
            {"field_key": "SuperOffice:2", "field_type": "Integer", "field_value": "1"},
        ),
        (
            AutomationType.CREATE_REQUEST,
            {"request_title": "Lead", "request_assign": "category", "category_id": 1},
        ),
        (AutomationType.RUN_SCRIPT, {"script_id": 1}),
    ):
        Automation.objects.create(
            account=account,
            campaign=campaign,
            name=type_,
            type=type_,
            trigger_event_type=EventType.LINK_CLICKED,
            trigger_link=link,
            settings=s,
        )
    contacts = Contact.objects.bulk_create(
        [
            Contact(account=account, email=f"r{n}@example.com", superoffice_person_id=n + 1)
            for n in range(RECIPIENTS)
        ]
    )
    paths = [
        tracking_url_for_link(link=link, contact=c).removeprefix(settings.EMHUB_PUBLIC_URL)
        for c in contacts
    ]
    return [paths[n % len(paths)] for n in range(paths_wanted)]


def in_process(paths: list[str]) -> tuple[list[float], list[float], dict[str, float]]:
    """Server times (ms) of /t/ and of the floor, one after the other, and the CPU time
    (ms) and queries of each per request."""
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_USER_AGENT=BROWSER)
    for path in paths[:20]:  # warm up: imports, template and URL caches, connections
        client.get(path)
        client.get(STATIC)
    clicks, floor = [], []
    cpu = {"click": 0.0, "floor": 0.0}
    with CaptureQueriesContext(connection) as queries:
        for path in paths:
            cpu_start, start = time.process_time(), time.perf_counter()
            response = client.get(path)
            clicks.append((time.perf_counter() - start) * 1000)
            cpu["click"] += time.process_time() - cpu_start
            assert response.status_code == 302, response.status_code
            cpu_start, start = time.process_time(), time.perf_counter()
            static = client.get(STATIC)
            floor.append((time.perf_counter() - start) * 1000)
            cpu["floor"] += time.process_time() - cpu_start
            # The routed static redirect, not a 404 page or a redirect to sign-in.
            assert (static.status_code, static["Location"]) == (302, STATIC_TARGET), static
    figures = {f"{k}_cpu_ms": v / len(paths) * 1000 for k, v in cpu.items()}
    # The floor touches no database: every query is a click's.
    figures["click_queries"] = len(queries) / len(paths)
    return clicks, floor, figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(*, port: int, workers: int, log: Path, db_name: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.clicks_settings",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db_name}"
        ),
    }
    proc = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "emhub.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--pythonpath",
            str(REPO_ROOT),
            "--access-logfile",
            str(log),
            "--access-logformat",
            "%(U)s %(s)s %(D)s",
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(port, STATIC)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"User-Agent": BROWSER})
        response = conn.getresponse()
        response.read()
        if path == STATIC and response.getheader("Location") != STATIC_TARGET:
            raise AssertionError(f"{STATIC} is not the static redirect: {response.status}")
        return response.status
    finally:
        conn.close()


def over_http(port: int, paths: list[str], concurrency: int) -> tuple[float, list[float]]:
    """Clicks per second and the clients' round trips (ms) for these paths."""
    times: list[float] = []
    lock = threading.Lock()
    chunks = [paths[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[str]) -> None:
        mine = []
        for path in chunk:
            start = time.perf_counter()
            status = get(port, path)
            mine.append((time.perf_counter() - start) * 1000)
            assert status == 302, status
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(paths) / (time.perf_counter() - start), times


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) the gunicorn master's worker processes have used: a
    figure the machine's other load does not inflate as it does wall-clock times."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command may hold spaces: the fields after it start past its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def server_times(log: Path, prefix: str) -> list[float]:
    out = []
    for row in log.read_text().splitlines():
        parts = row.split()
        if len(parts) == 3 and parts[0].startswith(prefix):
            out.append(int(parts[2]) / 1000)
    return out


def drain() -> dict[str, float]:
    """Every raw click to its event and runs, as the worker's drain does; the counts are
    checked: one event and three runs a click, no raw click left."""
    from automations.models import Run
    from campaigns.clicks import raw_clicks_drain
    from campaigns.models import Event, RawClick

    waiting = RawClick.objects.count()
    cpu_start, start = time.process_time(), time.perf_counter()
    taken = raw_clicks_drain()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    events, runs = Event.objects.count(), Run.objects.count()
    print(
        f"\n3. The drain: {taken} raw clicks in {wall:.2f} s ({taken / wall:.0f}/s, "
        f"{cpu / taken * 1000:.2f} ms CPU a click); stored {events} click events, {runs} runs"
    )
    assert taken == waiting == events and runs == 3 * events, (taken, waiting, events, runs)
    assert not RawClick.objects.exists()
    return {"rate": taken / wall, "cpu_ms": cpu / taken * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2, help="client threads over HTTP")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="seconds a database connection is kept, 60 as in production (0: one per request)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer clicks")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as rows")
    args = parser.parse_args()
    if args.quick:
        args.clicks = 600
    if connection.vendor != "postgresql":
        raise SystemExit(
            f"bench/clicks.py measures PostgreSQL; DATABASE_URL is {connection.vendor}."
        )

    from bench.rows import row, rows_write
    from emhub.celery import app

    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench_clicks"
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    db_name = connection.settings_dict["NAME"]
    proc = None
    try:
        paths = setup_data(args.clicks)
        print(
            f"PostgreSQL {connection.pg_version // 10000}, CONN_MAX_AGE "
            f"{connection.settings_dict.get('CONN_MAX_AGE')}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}; each click writes 1 raw click, the "
            "drain stores its event + 3 runs and publishes 1 wake-up for the 3"
        )

        clicks, floor, cost = in_process(paths)
        print("\n1. In process (Django test client, server time, one at a time)")
        print(line("GET /t/<token>/?c=…", clicks))
        print(line("GET /static-redirect/ (floor)", floor))
        print(
            f"{'':<34} /t/ is {statistics.median(clicks) / statistics.median(floor):.1f}x "
            "the floor's median"
        )
        print(
            f"{'CPU per request':<34} /t/ {cost['click_cpu_ms']:.3f} ms, floor "
            f"{cost['floor_cpu_ms']:.3f} ms; /t/ {cost['click_queries']:.2f} queries"
        )

        log = Path(tempfile.mkdtemp(prefix="emhub-bench-")) / "access.log"
        port = free_port()
        proc = start_gunicorn(port=port, workers=args.workers, log=log, db_name=db_name)
        over_http(port, paths[:50], args.concurrency)  # warm up every worker
        over_http(port, [STATIC] * 50, args.concurrency)
        log.write_text("")
        cpu_start = workers_cpu(proc.pid)
        floor_rate, floor_rtt = over_http(port, [STATIC] * len(paths), args.concurrency)
        cpu_floor = workers_cpu(proc.pid)
        click_rate, click_rtt = over_http(port, paths, args.concurrency)
        cpu_clicks = workers_cpu(proc.pid)
        floor_cpu_ms = (cpu_floor - cpu_start) / len(paths) * 1000
        click_cpu_ms = (cpu_clicks - cpu_floor) / len(paths) * 1000
        time.sleep(0.5)  # let gunicorn flush its access log
        print(
            f"\n2. Over HTTP: gunicorn, {args.workers} sync workers, "
            f"{args.concurrency} client threads, loopback"
        )
        print(
            f"{'clicks per second':<34} /t/ {click_rate:7.0f}/s   "
            f"static redirect {floor_rate:7.0f}/s   ({click_rate / floor_rate:.0%} of the floor)"
        )
        click_server, floor_server = server_times(log, "/t/"), server_times(log, STATIC)
        print(line("/t/ server time (gunicorn)", click_server))
        print(line("static redirect server time", floor_server))
        print(
            f"{'gunicorn workers CPU per request':<34} /t/ {click_cpu_ms:.2f} ms, "
            f"static redirect {floor_cpu_ms:.2f} ms"
        )
        print(line("/t/ client round trip", click_rtt))
        print(line("static redirect round trip", floor_rtt))
        drained = drain()
        server_median, ratio = statistics.median(click_server), click_rate / floor_rate
        rows_write(
            args.json,
            [
                row(
                    "clicks: /t/ server time median (gunicorn)",
                    server_median,
                    "ms",
                    "< 10",
                    server_median < 10,
                ),
                row("clicks: /t/ server time p99 (gunicorn)", pct(click_server, 99), "ms"),
                row("clicks: /t/ through gunicorn", click_rate, "clicks/s"),
                row("clicks: static redirect (floor)", floor_rate, "clicks/s"),
                row("clicks: /t/ gunicorn CPU per request", click_cpu_ms, "ms"),
                row("clicks: static redirect gunicorn CPU per request", floor_cpu_ms, "ms"),
                row("clicks: /t/ / floor", ratio, "ratio", ">= 0.3", ratio >= 0.3),
                row("clicks: /t/ in process median", statistics.median(clicks), "ms"),
                row("clicks: static redirect in process median", statistics.median(floor), "ms"),
                row("clicks: /t/ CPU per request in process", cost["click_cpu_ms"], "ms"),
                row("clicks: /t/ queries per request", cost["click_queries"], "queries"),
                row("clicks: drain, raw clicks to events and runs", drained["rate"], "clicks/s"),
                row("clicks: drain CPU per click", drained["cpu_ms"], "ms"),
            ],
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        connection.close()
        connection.settings_dict["NAME"] = db_name
        connection.creation.destroy_test_db(old_name, verbosity=0)
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge("celery")
        except Exception as exc:  # the figures are printed; a dirty queue is only noted
            print(f"could not purge the broker queue: {exc}")


if __name__ == "__main__":
    main()
