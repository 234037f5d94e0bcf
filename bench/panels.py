"""Server time and query count of each web panel, at a small and at the full data size.

    DATABASE_URL=postgres://... .venv/bin/python bench/panels.py [--events 100000] \
        [--queued 10000] [--repeat 30] [--quick] [--json PATH]

Builds a throwaway PostgreSQL database (the test database name of DATABASE_URL with a
``_bench_panels`` suffix) holding one account with, at full size, ``--queued`` contacts
waiting in the Manage Automations Queue and ``--events`` events in all (engaged leads,
matched persons with long timelines, sales made by runs), plus a small size of a hundredth
of that. Each panel page is requested ``--repeat`` times through Django's test client
with a valid panel token (after two warm-up requests), and reports the median and p95
server time and the number of SQL queries per request, at both sizes, and at the full
size the CPU time per request of the view (this process) and of the database backend
(read from /proc when PostgreSQL runs on this machine), which a busy machine disturbs far
less than the server time. The panels read
only the database: no SuperOffice call is made on these pages. The targets: every panel's
p95 under 100 ms at the full size, and the same query count at both sizes. ``--quick``
requests each page fewer times (the sizes stay: the target is at the full size);
``--json PATH`` also writes the figures as rows for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from automations.models import Automation, AutomationType, Run, RunStatus  # noqa: E402
from campaigns.models import Campaign, Contact, Event, EventType, Form, TrackedLink  # noqa: E402
from campaigns.services import contacts_engagement_recount  # noqa: E402
from emhub.models import Account  # noqa: E402
from leads.auth import PanelUser, panel_token_issue  # noqa: E402
from leads.models import PanelSession, PanelSettings  # noqa: E402

TIMELINE_PERSON = 1_000_000
SALE_BASE = 5_000_000


class Builder:
    """Adds rows to one account up to a size; a second call tops it up."""

    def __init__(self) -> None:
        self.account = Account.objects.create(slug="bench-panels", name="Bench panels")
        self.panel = PanelSettings.objects.create(
            account=self.account,
            context_identifier="Cust1",
            frame_ancestors="https://online.superoffice.com",
        )
        self.campaign = Campaign.objects.create(account=self.account, name="Bench campaign")
        self.link = TrackedLink.objects.create(
            account=self.account, campaign=self.campaign, name="Pricing", url="https://x.example"
        )
        self.form = Form.objects.create(
            account=self.account, campaign=self.campaign, name="Demo request"
        )
        self.automation = Automation.objects.create(
            account=self.account,
            campaign=self.campaign,
            name="Sale on demo request",
            type=AutomationType.CREATE_SALE,
            trigger_event_type=EventType.FORM_SUBMITTED,
        )
        self.contacts = 0
        self.events = 0
        self.runs = 0

    def _contacts(self, n: int, *, person_base: int | None = None) -> list[Contact]:
        now = timezone.now()
        rows = [
            Contact(
                account=self.account,
                email=f"c{self.contacts + i}@bench.example",
                first_name="Bench",
                last_name=f"Contact {self.contacts + i}",
                superoffice_person_id=None if person_base is None else person_base + i,
                created_at=now - timedelta(days=(i % 60)),
            )
            for i in range(n)
        ]
        self.contacts += n
        return Contact.objects.bulk_create(rows, batch_size=5000)

    def _events(self, pairs: list[tuple[Contact, str]]) -> list[Event]:
        now = timezone.now()
        rows = []
        for i, (contact, kind) in enumerate(pairs):
            rows.append(
                Event(
                    account=self.account,
                    campaign=self.campaign,
                    contact=contact,
                    type=kind,
                    # Spread over 60 days whatever the size, so some leads are flagged.
                    occurred_at=now - timedelta(minutes=((self.events + i) * 37) % 86_400),
                    link=self.link if kind == EventType.LINK_CLICKED else None,
                    form=self.form if kind == EventType.FORM_SUBMITTED else None,
                    external_id=f"bench-{self.events + i}",
                )
            )
        self.events += len(rows)
        return Event.objects.bulk_create(rows, batch_size=5000)

    def _runs(self, events: list[Event], **fields) -> None:
        rows = [
            Run(
                account=self.account,
                automation=self.automation,
                event=e,
                contact_id=e.contact_id,
                key=f"bench-run-{self.runs + i}",
                **{k: (v(i) if callable(v) else v) for k, v in fields.items()},
            )
            for i, e in enumerate(events)
        ]
        self.runs += len(rows)
        Run.objects.bulk_create(rows, batch_size=5000)

    def grow(self, *, events: int, queued: int) -> None:
        """Top the account up to ``events`` events and ``queued`` waiting contacts."""
        want_queued = queued - Run.objects.filter(status=RunStatus.WAITING_FOR_MATCH).count()
        budget = events - self.events
        now = timezone.now()
        # Queued contacts: one form submission each, its run waiting for a match.
        waiting = self._contacts(want_queued)
        waiting_events = self._events([(c, EventType.FORM_SUBMITTED) for c in waiting])
        self._runs(
            waiting_events,
            status=RunStatus.WAITING_FOR_MATCH,
            waiting_since=lambda i: now - timedelta(minutes=i),
        )
        budget -= len(waiting_events)
        # Sales made by runs for matched contacts: a quarter of what is left.
        sold_n = budget // 4
        sold = self._contacts(max(sold_n // 4, 1), person_base=2_000_000 + self.contacts)
        sale_events = self._events(
            [(sold[i % len(sold)], EventType.LINK_CLICKED) for i in range(sold_n)]
        )
        base = SALE_BASE + self.runs
        self._runs(
            sale_events,
            status=RunStatus.DONE,
            crm_object_type="sale",
            crm_object_id=lambda i: base + i,
        )
        budget -= sold_n
        # One person with a long timeline: 2 % of the events.
        person = (
            Contact.objects.filter(
                account=self.account, superoffice_person_id=TIMELINE_PERSON
            ).first()
            or self._contacts(1, person_base=TIMELINE_PERSON)[0]
        )
        kinds = [EventType.EMAIL_SENT, EventType.EMAIL_OPENED, EventType.LINK_CLICKED]
        long_n = budget // 50
        self._events([(person, kinds[i % 3]) for i in range(long_n)])
        budget -= long_n
        # Engaged leads not in SuperOffice (clicks, opens), ten events each.
        leads = self._contacts(max(budget // 10, 1))
        kinds = [EventType.EMAIL_OPENED, EventType.LINK_CLICKED, EventType.LANDING_PAGE_VISITED]
        self._events([(leads[i % len(leads)], kinds[i % 3]) for i in range(budget)])
        # The rows went in past events_ingest, which keeps the contacts' engagement counts
        # as events arrive (bench/ingest.py measures that): count them once, as a back-fill.
        contacts_engagement_recount(account=self.account)
        # As autovacuum leaves the tables after a bulk load (PostgreSQL vacuums after
        # inserts too): statistics, and the visibility map index-only scans rely on.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def _backend_stat_path() -> Path | None:
    """/proc/<pid>/stat of the PostgreSQL backend serving this connection, when the
    database runs on this machine (its CPU time is then readable), else None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        path = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    try:
        path.read_text()
    except OSError:
        return None
    return path


def _cpu_seconds(stat: Path | None) -> float:
    if stat is None:
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: Client, token: str, url: str, params: dict, repeat: int) -> dict:
    """Server time (wall), and the CPU time per request of this process (the view and its
    template) and of the database backend (the queries): on a busy machine the wall time
    waits for other processes, the CPU times much less so."""
    headers = {"HTTP_X_PANEL_TOKEN": token}
    for _ in range(2):
        response = client.get(url, params, **headers)
        assert response.status_code == 200, (url, response.status_code)
    # A panel session's "last seen" is written at most once a minute, on whichever request
    # comes then: seen just now, so that write does not land among the measured requests
    # and count as a query the page needs (it needs it once a minute, whatever the size).
    PanelSession.objects.update(last_seen_at=timezone.now())
    stat = _backend_stat_path()
    times, queries = [], []
    python_cpu = database_cpu = 0.0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            cpu, db = time.process_time(), _cpu_seconds(stat)
            started = time.perf_counter()
            response = client.get(url, params, **headers)
            times.append((time.perf_counter() - started) * 1000)
            python_cpu += time.process_time() - cpu
            database_cpu += _cpu_seconds(stat) - db
        assert response.status_code == 200
        queries.append(len(captured.captured_queries))
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[max(int(len(times) * 0.95) - 1, 0)],
        "queries": max(queries),
        "python_cpu": python_cpu / repeat * 1000,
        "database_cpu": database_cpu / repeat * 1000 if stat else None,
    }


def pages(builder: Builder) -> list[tuple[str, str, dict]]:
    key = builder.panel.panel_key
    sale = Run.objects.filter(account=builder.account, crm_object_type="sale").first()

    def url(name: str) -> str:
        return reverse(name, kwargs={"panel_key": key})

    return [
        ("Queue, first page", url("leads:queue"), {}),
        ("Queue, page 40", url("leads:queue"), {"page": "40"}),
        ("Queue, filtered", url("leads:queue"), {"q": "c1"}),
        ("Lead Report", url("leads:lead_report"), {}),
        ("Lead Report, flagged only", url("leads:lead_report"), {"flagged": "1"}),
        ("Timeline", url("leads:timeline"), {"atid": str(TIMELINE_PERSON)}),
        (
            "Timeline, clicks, page 2",
            url("leads:timeline"),
            {"atid": str(TIMELINE_PERSON), "type": "link_clicked", "page": "2"},
        ),
        ("Event details (sale)", url("leads:event_details"), {"said": str(sale.crm_object_id)}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer requests per page")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as rows")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 20

    from bench.rows import row, rows_write

    setup_test_environment()
    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    # Migrated, not made from the models: the indexes the panels read are partly the
    # migrations' own (a covering index on PostgreSQL), as in a deployment.
    db["TEST"].update(NAME=f"test_{db['NAME']}_bench_panels", MIGRATE=True)
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        builder = Builder()
        token = panel_token_issue(
            user=PanelUser(
                account_id=builder.account.id,
                context_identifier="Cust1",
                associate_id=2,
                name="Bench",
                group_ids=(1,),
                method="oidc",
            )
        )
        client = Client()
        results = {}
        sizes = [(args.events // 100, args.queued // 100), (args.events, args.queued)]
        for events, queued in sizes:
            started = time.perf_counter()
            builder.grow(events=events, queued=queued)
            print(
                f"data: {Event.objects.count():,} events, "
                f"{Run.objects.filter(status=RunStatus.WAITING_FOR_MATCH).count():,} queued "
                f"contacts, {Contact.objects.count():,} contacts "
                f"(built in {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            for label, url, params in pages(builder):
                results.setdefault(label, []).append(
                    measure(client, token, url, params, args.repeat)
                )
        print()
        small, full = (f"{e:,} ev / {q:,} q" for e, q in sizes)
        print(f"{'panel':28} | {small:>30} | {full:>30}")
        print(f"{'':28} | {'median   p95  queries':>30} | {'median   p95  queries':>30}")
        for label, (a, b) in results.items():
            print(
                f"{label:28} | {a['median']:8.1f} {a['p95']:7.1f} {a['queries']:7d} ms/ms/q"
                f" | {b['median']:8.1f} {b['p95']:7.1f} {b['queries']:7d} ms/ms/q"
            )
        print()
        print(f"{'CPU per request at full size':28} | {'python':>8} {'database':>9} {'sum':>7}")
        for label, (_, b) in results.items():
            db = b["database_cpu"]
            print(
                f"{label:28} | {b['python_cpu']:8.1f} "
                + (
                    f"{db:9.1f} {b['python_cpu'] + db:7.1f} ms"
                    if db is not None
                    else "   (remote database)"
                )
            )
        same = all(a["queries"] == b["queries"] for a, b in results.values())
        worst = max(b["p95"] for _, b in results.values())
        print()
        print(f"query count independent of data size: {'yes' if same else 'NO'}")
        print(f"worst p95 at full size: {worst:.1f} ms (target < 100 ms)")
        grown = [label for label, (a, b) in results.items() if a["queries"] != b["queries"]]
        rows = [
            row(f"panels: {label} p95", b["p95"], "ms", "< 100", b["p95"] < 100)
            for label, (_, b) in results.items()
        ]
        rows.append(
            row("panels: pages whose queries grow with size", len(grown), "pages", "0", not grown)
        )
        rows_write(args.json, rows)
    finally:
        connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
