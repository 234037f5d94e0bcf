"""The legal-basis sync at scale: an incremental cycle next to a full per-person scan,
and a 1,000,000-row hub-side merge.

    DATABASE_URL=postgres://... .venv/bin/python bench/consent_sync.py \
        [--contacts 100000] [--changed 0.01] [--scan-sample 1000] [--merge-rows 1000000]

Builds a throwaway PostgreSQL database (the test database name of DATABASE_URL with a
``_bench`` suffix), starts the NetServer simulator in a subprocess with as many persons
as contacts, links every contact to a person, then measures in one run:

1. an incremental cycle after ``--changed`` of the contacts changed since the last
   watermark (half in the hub, half in SuperOffice, found through the ConsentPurpose
   archive): wall time, SOAP calls (per changed contact too), time spent inside SOAP
   calls, rows written to PostgreSQL per second; then the next incremental cycle, which
   gets the same day's changes listed again and reads no person;
2. a full per-person scan: the same engine over ``--scan-sample`` unchanged contacts
   (on demand), its per-contact cost, and that cost for every contact (extrapolated,
   and labelled so; ``--full-scan`` runs the real thing instead);
3. ``consent_bulk_record`` merging ``--merge-rows`` changes (two purposes for half as
   many contacts) into the history and the current state, then merging them again
   over the existing state (older and newer rows mixed).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
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
from django.db.models import Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns.models import Contact  # noqa: E402
from consent.models import (  # noqa: E402
    WITHDRAWN,
    ConsentChange,
    ConsentDecision,
    ConsentSyncCycle,
    CurrentConsent,
    Origin,
    Purpose,
)
from consent.services import (  # noqa: E402
    BulkChange,
    consent_bulk_record,
    consent_sync_cycle,
    consent_sync_for_contacts,
)
from crm.models import CrmCall, SuperOfficeConnection  # noqa: E402
from crm.services import client_for_account  # noqa: E402
from emhub.models import Account  # noqa: E402


def start_simulator(persons: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "netserver_simulator",
            "--port",
            "0",
            "--persons",
            str(persons),
        ],
        cwd=REPO_ROOT,
        env=os.environ.copy() | {"DJANGO_SETTINGS_MODULE": "emhub.settings.local"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().startswith("port="):
            return process, f"http://127.0.0.1:{int(line.strip().split('=', 1)[1])}"
    raise SystemExit("The simulator did not start")


def make_contacts(account: Account, count: int, *, prefix: str, linked: bool) -> list[int]:
    batch = 20_000
    for start in range(0, count, batch):
        Contact.objects.bulk_create(
            Contact(
                account=account,
                email=f"{prefix}-{i}@example.com",
                superoffice_person_id=(i + 1) if linked else None,
            )
            for i in range(start, min(count, start + batch))
        )
    return list(Contact.objects.filter(account=account).order_by("pk").values_list("pk", flat=True))


def rows_written(cycle: ConsentSyncCycle) -> int:
    return (
        ConsentDecision.objects.filter(cycle=cycle).count()
        + ConsentChange.objects.filter(cycle=cycle).count()
        + CrmCall.objects.filter(correlation=f"consent-cycle-{cycle.pk}").count()
        + 1  # the cycle row
    )


def soap_seconds(cycle: ConsentSyncCycle) -> float:
    total = CrmCall.objects.filter(correlation=f"consent-cycle-{cycle.pk}").aggregate(
        ms=Sum("duration_ms")
    )["ms"]
    return (total or 0) / 1000


def report_cycle(label: str, cycle: ConsentSyncCycle, seconds: float) -> dict:
    cycle.refresh_from_db()
    rows = rows_written(cycle)
    soap = soap_seconds(cycle)
    print(f"{label}:")
    print(
        f"  status {cycle.status}; checked {cycle.contacts_checked}; "
        f"written to SuperOffice {cycle.written_to_superoffice}; to hub {cycle.written_to_hub}"
    )
    print(
        f"  wall {seconds:.2f} s; SOAP calls {cycle.crm_calls} "
        f"({cycle.crm_calls / max(1, cycle.contacts_checked):.2f} per contact); "
        f"time inside SOAP calls {soap:.2f} s; hub time {seconds - soap:.2f} s"
    )
    print(f"  PostgreSQL rows written {rows} ({rows / seconds:,.0f} rows/s)")
    return {
        "seconds": seconds,
        "calls": cycle.crm_calls,
        "checked": cycle.contacts_checked,
        "soap": soap,
    }


def bench_sync(args) -> None:
    contacts_total = args.contacts
    print(f"Starting the simulator with {contacts_total:,} persons…")
    process, base = start_simulator(contacts_total)
    try:
        account = Account.objects.create(slug="bench", name="Bench")
        SuperOfficeConnection.objects.create(
            account=account,
            base_url=f"{base}/Remote/Services88/",
            username=settings.NETSERVER_SIMULATOR["USERNAME"],
            password=settings.NETSERVER_SIMULATOR["PASSWORD"],
            application_token=settings.NETSERVER_SIMULATOR["APP_TOKEN"],
            legal_basis_sync_enabled=True,
        )
        clock = time.perf_counter()
        ids = make_contacts(account, contacts_total, prefix="bench", linked=True)
        print(
            f"{len(ids):,} linked contacts created in {time.perf_counter() - clock:.1f} s (untimed)"
        )

        # The last completed cycle: its watermark is where the incremental cycle starts.
        ConsentSyncCycle.objects.create(
            account=account,
            kind=ConsentSyncCycle.Kind.FULL,
            status=ConsentSyncCycle.Status.SUCCEEDED,
            started_at=timezone.now() - timedelta(minutes=30),
            finished_at=timezone.now() - timedelta(minutes=29),
            watermark=timezone.now() - timedelta(minutes=30),
        )
        rng = random.Random(7)
        changed = rng.sample(ids, max(2, int(len(ids) * args.changed)))
        hub_side, so_side = changed[: len(changed) // 2], changed[len(changed) // 2 :]
        now = timezone.now()
        consent_bulk_record(
            account=account,
            changes=[
                BulkChange(pk, rng.choice(Purpose.values), rng.choice(["61A", WITHDRAWN]), now)
                for pk in hub_side
            ],
            origin=Origin.HUB,
        )
        client = client_for_account(account, correlation="bench-setup")
        person_of = dict(
            Contact.objects.filter(pk__in=so_side).values_list("pk", "superoffice_person_id")
        )
        for pk in so_side:
            client.set_consent(
                person_id=person_of[pk],
                purpose_key=rng.choice(Purpose.values),
                legal_base_key=rng.choice(["61B", WITHDRAWN]),
                source_key="USER",
            )
        print(
            f"{len(hub_side):,} contacts changed in the hub and {len(so_side):,} in SuperOffice "
            "since the last cycle (untimed)\n"
        )

        clock = time.perf_counter()
        cycle = consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.INCREMENTAL)
        incremental = report_cycle("Incremental cycle", cycle, time.perf_counter() - clock)
        print(
            f"  SOAP calls per changed contact: {incremental['calls'] / len(changed):.2f} "
            f"({len(changed):,} changed: {len(so_side):,} in SuperOffice, listed by "
            f"ConsentPurpose to the day, and {len(hub_side):,} in the hub)"
        )
        print()

        # consentPerson/updatedDate is a date: the next cycle lists the same day's changes
        # again. The hub has decided on them, so it reads no person again.
        clock = time.perf_counter()
        again = consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.INCREMENTAL)
        report_cycle("Next incremental cycle, nothing new", again, time.perf_counter() - clock)
        print()

        unchanged = sorted(set(ids) - set(changed))
        if args.full_scan:
            clock = time.perf_counter()
            cycle = consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.FULL)
            scan = report_cycle("Full per-person scan", cycle, time.perf_counter() - clock)
            scan_total_s, scan_calls = scan["seconds"], scan["calls"]
            label = "measured"
        else:
            sample = rng.sample(unchanged, min(args.scan_sample, len(unchanged)))
            clock = time.perf_counter()
            cycle = consent_sync_for_contacts(account=account, contact_ids=sample)
            scan = report_cycle(
                f"Full per-person scan, sample of {len(sample):,} contacts",
                cycle,
                time.perf_counter() - clock,
            )
            factor = len(ids) / max(1, scan["checked"])
            scan_total_s, scan_calls = scan["seconds"] * factor, scan["calls"] * factor
            label = f"extrapolated ×{factor:,.0f} from the sample"
        print(
            f"  for all {len(ids):,} contacts ({label}): {scan_total_s:,.0f} s, "
            f"{scan_calls:,.0f} SOAP calls"
        )
        print()
        print(
            f"Incremental vs full scan: {incremental['calls']:,} vs {scan_calls:,.0f} SOAP calls "
            f"({scan_calls / max(1, incremental['calls']):,.0f}× fewer); "
            f"{incremental['seconds']:.1f} s vs {scan_total_s:,.0f} s"
        )
        per_call_ms = 1000 * incremental["soap"] / max(1, incremental["calls"])
        print(
            f"Mean SOAP call against the simulator with {contacts_total:,} persons: "
            f"{per_call_ms:.1f} ms"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def bench_merge(args) -> None:
    rows = args.merge_rows
    contacts_needed = rows // 2
    account = Account.objects.create(slug="bench-merge", name="Bench merge")
    clock = time.perf_counter()
    ids = make_contacts(account, contacts_needed, prefix="merge", linked=False)
    print(
        f"\n{len(ids):,} contacts created for the merge in {time.perf_counter() - clock:.1f} s "
        "(untimed)"
    )
    rng = random.Random(11)
    base = timezone.now() - timedelta(days=400)

    def changes(offset_days: int):
        for pk in ids:
            for purpose in Purpose.values:
                yield BulkChange(
                    pk,
                    purpose,
                    rng.choice(["61A", "61F", WITHDRAWN]),
                    base
                    + timedelta(
                        days=rng.randint(0, 200) + offset_days, seconds=rng.randint(0, 86_400)
                    ),
                    "IMPORT",
                )

    for label, offset in (("into an empty state", 0), ("over the existing state", 100)):
        batch = list(changes(offset))
        clock = time.perf_counter()
        result = consent_bulk_record(account=account, changes=batch, origin=Origin.IMPORT)
        seconds = time.perf_counter() - clock
        print(
            f"Hub-side merge of {len(batch):,} rows {label}: {seconds:.1f} s "
            f"({result.recorded / seconds:,.0f} rows/s); recorded {result.recorded:,}, "
            f"current state moved for {result.current_moved:,}, refused {result.refused}"
        )
    print(
        f"History rows {ConsentChange.objects.filter(account=account).count():,}; "
        f"current rows {CurrentConsent.objects.filter(account=account).count():,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--scan-sample", type=int, default=1000)
    parser.add_argument("--full-scan", action="store_true", help="scan every contact for real")
    parser.add_argument("--merge-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-merge", action="store_true")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server: the figures are PostgreSQL's.")
    db = connection.settings_dict
    db["TEST"].update(NAME=f"test_{db['NAME']}_bench", MIGRATE=False)
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    print(f"Database {test_name} (PostgreSQL), {os.cpu_count()} CPUs\n")
    try:
        if not args.skip_sync:
            bench_sync(args)
        if not args.skip_merge:
            bench_merge(args)
    finally:
        connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
