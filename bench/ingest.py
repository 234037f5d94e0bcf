"""Event ingest throughput on PostgreSQL, and the server time of a tracked-link click.

    DJANGO_SETTINGS_MODULE=emhub.settings.test .venv/bin/python bench/ingest.py [--batches 10] \
        [--quick] [--json PATH]

Makes a throwaway database next to DATABASE_URL's (its name plus `_bench_ingest`),
migrates it, and measures in this one process:
- `events_ingest` with batches of 1,000 new events from 1,000 new contacts (the worst case),
  from contacts it already has, and the same batch sent again (all duplicates);
- the floors, plain bulk inserts with nothing validated, counted or handed to the
  automations: the worst case's every row (1,000 new contacts, their ids read back, their
  1,000 events) by PostgreSQL's COPY, the fastest way rows get into the tables, which the
  target (at least 0.3) is the ratio to; and beside it, the 1,000 event rows alone (contacts
  already stored) by COPY and by Django's `bulk_create` of ready-made instances;
- `POST /api/v1/events/` with a batch of 1,000, through DRF's parsing, the serializers
  and the view (in process: no HTTP server, so no socket or worker overhead);
- `GET /t/<token>/?c=...` for one contact: the click's server time (median and p95).
It prints events per second per case (wall clock) and the CPU time this process spent on
a batch (steadier than the wall clock on a busy machine); the target is at least 5,000 for
a batch of 1,000, and at least 0.3 of the COPY floor. ``--quick`` times fewer batches and
clicks; ``--json PATH`` also writes the figures as rows for bench/run_all.py. Not a test:
the suite never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

BATCH = 1000


def events(campaign, link, *, prefix: str, people: str) -> list[dict]:
    return [
        {
            "event_id": f"{prefix}-{n}",
            "type": "link_clicked",
            "campaign": campaign.pk,
            "link": link.pk,
            "email": f"{people}-{n}@example.com",
            "first_name": "Reader",
            "last_name": f"Number {n}",
            "company_name": "Bench AB",
            "occurred_at": "2025-05-01T09:30:00Z",
            "data": {"utm_source": "newsletter", "n": n},
        }
        for n in range(BATCH)
    ]


def rate(seconds: float, cpu: float | None = None) -> str:
    text = f"{BATCH / seconds:8.0f} events/s  ({seconds * 1000:6.1f} ms per batch of {BATCH}"
    return text + (f", {cpu * 1000:5.1f} ms CPU)" if cpu is not None else ")")


def timed(work, *args, **kwargs) -> tuple:
    """work(*args, **kwargs), its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


COPY_COLUMNS = (
    "account_id, campaign_id, contact_id, type, occurred_at, received_at, external_id,"
    " source, link_id, form_id, data"
)


def copy_rows(rows) -> list[tuple]:
    """The floor's Event rows as COPY takes them (the JSON already encoded)."""
    return [
        (
            e.account_id,
            e.campaign_id,
            e.contact_id,
            e.type,
            e.occurred_at,
            e.received_at,
            e.external_id,
            e.source,
            e.link_id,
            e.form_id,
            json.dumps(e.data),
        )
        for e in rows
    ]


CONTACT_COPY_COLUMNS = (
    "account_id, email, first_name, last_name, phone, mobile, title, company_name, created_at,"
    " updated_at, engaged_count, engaged_first_at, engaged_last_at"
)


def copy_contacts_and_events(account, campaign, link, *, prefix: str) -> None:
    """The worst case's floor with every row it writes: COPY of 1,000 new contacts (their
    engagement already counted), their ids read back by e-mail, then COPY of their 1,000
    events; one transaction, nothing validated."""
    from django.db import transaction
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    from campaigns.models import Contact, Event

    now = timezone.now()
    occurred = parse_datetime("2025-05-01T09:30:00Z")
    emails = [f"{prefix}-{n}@example.com" for n in range(BATCH)]
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(
            f"COPY {Contact._meta.db_table} ({CONTACT_COPY_COLUMNS}) FROM STDIN"
        ) as copy:
            for n, email in enumerate(emails):
                copy.write_row(
                    (
                        account.pk,
                        email,
                        "Reader",
                        f"Number {n}",
                        "",
                        "",
                        "",
                        "Bench AB",
                        now,
                        now,
                        1,
                        occurred,
                        occurred,
                    )
                )
        cursor.execute(
            f"SELECT email, id FROM {Contact._meta.db_table}"  # noqa: S608
            " WHERE account_id = %s AND email = ANY(%s)",
            [account.pk, emails],
        )
        ids = dict(cursor.fetchall())
        with cursor.copy(f"COPY {Event._meta.db_table} ({COPY_COLUMNS}) FROM STDIN") as copy:
            for n, email in enumerate(emails):
                copy.write_row(
                    (
                        account.pk,
                        campaign.pk,
                        ids[email],
                        "link_clicked",
                        occurred,
                        now,
                        f"{prefix}-{n}",
                        Event.Source.API,
                        link.pk,
                        None,
                        json.dumps({"utm_source": "newsletter", "n": n}),
                    )
                )


def copy_insert(table: str, rows: list[tuple]) -> None:
    from django.db import transaction

    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({COPY_COLUMNS}) FROM STDIN") as copy,
    ):
        for values in rows:
            copy.write_row(values)


def raw_rows(account, campaign, link, contacts, *, prefix: str) -> list:
    """The rows events_ingest would store for these contacts, ready for a plain insert."""
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    from campaigns.models import Event

    now = timezone.now()
    occurred = parse_datetime("2025-05-01T09:30:00Z")
    return [
        Event(
            account=account,
            campaign=campaign,
            contact=contact,
            type="link_clicked",
            occurred_at=occurred,
            received_at=now,
            external_id=f"{prefix}-{n}",
            source=Event.Source.API,
            link=link,
            data={"utm_source": "newsletter", "n": n},
        )
        for n, contact in enumerate(contacts)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="batches of 1,000 new events")
    parser.add_argument("--clicks", type=int, default=500, help="tracked-link clicks to time")
    parser.add_argument("--quick", action="store_true", help="fewer batches and clicks")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as rows")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.clicks = 5, 200

    if connection.vendor != "postgresql":
        raise SystemExit(
            f"bench/ingest.py measures PostgreSQL; DATABASE_URL is {connection.vendor}."
        )

    from django.db import transaction

    from bench.rows import row, rows_write

    def bulk_insert(rows):
        with transaction.atomic():
            Event.objects.bulk_create(rows)

    from campaigns.models import Contact, Event
    from campaigns.services import events_ingest, tracked_link_create, tracking_url_for_link
    from emhub.services import account_create, api_key_issue
    from tests.campaigns.factories import CampaignFactory, ContactFactory

    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench_ingest"
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        account = account_create(slug="bench", name="Bench")
        campaign = CampaignFactory(account=account, name="Bench campaign")
        link = tracked_link_create(campaign=campaign, name="Pricing", url="https://example.com/p")
        print(
            f"PostgreSQL {connection.pg_version // 10000}, batches of {BATCH} link clicks, "
            f"load average {os.getloadavg()[0]:.2f}"
        )

        new_times, raw_times, copy_times = [], [], []
        new_cpu, raw_cpu, copy_cpu = [], [], []
        same_times, same_cpu = [], []
        for b in range(args.batches):
            batch = events(campaign, link, prefix=f"new{b}", people=f"new{b}")
            result, wall, cpu = timed(events_ingest, account=account, events=batch)
            new_times.append(wall)
            new_cpu.append(cpu)
            assert len(result.stored) == BATCH
            # The floors, on the same table at the same size: these contacts' rows again.
            contacts = list(Contact.objects.filter(account=account, email__startswith=f"new{b}-"))
            rows = raw_rows(account, campaign, link, contacts, prefix=f"raw{b}")
            _, wall, cpu = timed(bulk_insert, rows)
            raw_times.append(wall)
            raw_cpu.append(cpu)
            copied = copy_rows(raw_rows(account, campaign, link, contacts, prefix=f"copy{b}"))
            _, wall, cpu = timed(copy_insert, Event._meta.db_table, copied)
            copy_times.append(wall)
            copy_cpu.append(cpu)
            _, wall, cpu = timed(
                copy_contacts_and_events, account, campaign, link, prefix=f"same{b}"
            )
            same_times.append(wall)
            same_cpu.append(cpu)
        new_median, raw_median = statistics.median(new_times), statistics.median(raw_times)
        copy_median = statistics.median(copy_times)
        same_median = statistics.median(same_times)
        median_cpu = statistics.median
        print(f"new events, new contacts       median {rate(new_median, median_cpu(new_cpu))}")
        print(f"                               worst  {rate(max(new_times))}")
        print(f"floor: bulk_create             median {rate(raw_median, median_cpu(raw_cpu))}")
        print(f"floor: COPY (raw bulk insert)  median {rate(copy_median, median_cpu(copy_cpu))}")
        print(f"floor: COPY, contacts + events median {rate(same_median, median_cpu(same_cpu))}")
        print(
            f"                               ingest / COPY of the same rows"
            f" {same_median / new_median:.2f} (the target);"
            f" ingest / COPY of the events alone {copy_median / new_median:.2f},"
            f" ingest / bulk_create {raw_median / new_median:.2f}"
        )

        known_times, known_cpu = [], []
        for b in range(args.batches):
            batch = events(campaign, link, prefix=f"known{b}", people=f"new{b}")
            _, wall, cpu = timed(events_ingest, account=account, events=batch)
            known_times.append(wall)
            known_cpu.append(cpu)
        known_median = statistics.median(known_times)
        print(f"new events, known contacts     median {rate(known_median, median_cpu(known_cpu))}")

        resent = events(campaign, link, prefix="new0", people="new0")
        start = time.perf_counter()
        result = events_ingest(account=account, events=resent)
        dup_time = time.perf_counter() - start
        assert result.duplicates == BATCH
        print(f"same batch again (duplicates)         {rate(dup_time)}")

        api = APIClient()
        api.credentials(
            HTTP_AUTHORIZATION=f"Bearer {api_key_issue(account=account, name='b').raw_key}"
        )
        api_times = []
        for b in range(max(3, args.batches // 2)):
            body = {"events": events(campaign, link, prefix=f"api{b}", people=f"api{b}")}
            start = time.perf_counter()
            response = api.post("/api/v1/events/", body, format="json")
            api_times.append(time.perf_counter() - start)
            assert response.status_code == 201, response.content[:300]
        api_median = statistics.median(api_times)
        print(f"POST /api/v1/events/ (in process) median {rate(api_median)}")

        contact = ContactFactory(account=account, email="clicker@example.com")
        path = tracking_url_for_link(link=link, contact=contact).removeprefix(
            settings.EMHUB_PUBLIC_URL
        )
        browser = Client()
        click_times = []
        for _ in range(args.clicks):
            start = time.perf_counter()
            response = browser.get(path)
            click_times.append(time.perf_counter() - start)
            assert response.status_code == 302
        click_times.sort()
        median_ms = statistics.median(click_times) * 1000
        p95_ms = click_times[int(len(click_times) * 0.95) - 1] * 1000
        print(
            f"GET /t/<token>/ click (in process)     median {median_ms:.2f} ms"
            f", p95 {p95_ms:.2f} ms over {args.clicks} clicks"
        )
        worst_rate = BATCH / new_median
        ratio = same_median / new_median
        rows_write(
            args.json,
            [
                row(
                    "ingest: batch of 1,000, new contacts",
                    worst_rate,
                    "events/s",
                    ">= 5,000",
                    worst_rate >= 5000,
                ),
                row("ingest: batch of 1,000, new contacts, CPU", median_cpu(new_cpu) * 1000, "ms"),
                row(
                    "ingest: floor, COPY of the same contacts and events",
                    BATCH / same_median,
                    "events/s",
                ),
                row("ingest: ingest / COPY floor", ratio, "ratio", ">= 0.3", ratio >= 0.3),
                row("ingest: floor, COPY of the events alone", BATCH / copy_median, "events/s"),
                row("ingest: ingest / COPY of the events alone", copy_median / new_median, "ratio"),
                row("ingest: floor, bulk_create of the same rows", BATCH / raw_median, "events/s"),
                row("ingest: ingest / bulk_create floor", raw_median / new_median, "ratio"),
                row("ingest: batch of 1,000, known contacts", BATCH / known_median, "events/s"),
                row("ingest: POST /api/v1/events/ (in process)", BATCH / api_median, "events/s"),
            ],
        )
        print(f"events stored in all: {Event.objects.count()}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
