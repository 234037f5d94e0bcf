"""Contact import throughput and memory: a SuperOffice selection read from the NetServer
simulator over HTTP, written to PostgreSQL.

    DJANGO_SETTINGS_MODULE=emhub.settings.test .venv/bin/python bench/import.py \
        [--sizes 10000 50000] [--page-size 1000]

For each size it starts the simulator with that many persons in one selection (id 100),
makes a throwaway database next to DATABASE_URL's (its name plus `_bench_import`), and
runs `contact_import_run` in this process as a worker would:
- a first import into an empty account (every person a new contact),
- the same import again (every person an existing contact, updated),
- a third import into another empty account under tracemalloc, for the peak of Python
  memory allocated while it ran (tracemalloc slows Python, so it is not timed).
It prints persons per second and the peaks; the target is at least 1,000 persons per
second, and a peak that does not grow with the size (pages are read and written one at
a time). Not a test: the suite never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402

SELECTION = 100  # crm.simulator.state.BIG_SELECTION_ID


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
            "--big-selection",
            str(persons),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip().startswith("port="):
            root = f"http://127.0.0.1:{int(line.strip().split('=', 1)[1])}"
            urllib.request.urlopen(f"{root}/_sim/health", timeout=10).read()  # noqa: S310
            return process, root
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("The simulator did not start")


def connected_account(slug: str, root: str):
    from django.conf import settings

    from crm.models import SuperOfficeConnection

    SIM = settings.NETSERVER_SIMULATOR
    from emhub.services import account_create

    account = account_create(slug=slug, name=slug)
    SuperOfficeConnection.objects.create(
        account=account,
        base_url=f"{root}/Remote/Services88/",
        auth_mode="onsite",
        username=SIM["USERNAME"],
        password=SIM["PASSWORD"],
        application_token=SIM["APP_TOKEN"],
    )
    return account


def run_import(account):
    from campaigns import imports

    started = imports.contact_import_create(
        account=account, source_type="selection", source_id=SELECTION, enqueue=False
    )
    begin = time.perf_counter()
    done = imports.contact_import_run(import_id=started.pk)
    seconds = time.perf_counter() - begin
    assert done.status == "done", done.error
    return done, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit(
            f"bench/import.py measures PostgreSQL; DATABASE_URL is {connection.vendor}."
        )

    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench_import"
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"PostgreSQL {connection.pg_version // 10000}, pages of {args.page_size} persons")
    rows = []
    try:
        with override_settings(CAMPAIGNS_IMPORT_PAGE_SIZE=args.page_size):
            for size in args.sizes:
                process, root = start_simulator(size)
                try:
                    first, t_first = run_import(connected_account(f"bench-{size}", root))
                    again, t_again = run_import(first.account)
                    assert again.created == 0 and again.updated == first.created
                    tracemalloc.start()
                    measured, _ = run_import(connected_account(f"bench-mem-{size}", root))
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                finally:
                    process.terminate()
                    process.wait(10)
                rows.append((size, first, t_first, t_again, peak))
                print(
                    f"{size:>7,} persons: first import {size / t_first:7.0f} persons/s "
                    f"({t_first:5.1f} s, {first.created:,} created); "
                    f"again {size / t_again:7.0f} persons/s ({t_again:5.1f} s, "
                    f"{again.updated:,} updated); peak Python memory {peak / 2**20:6.1f} MiB",
                    flush=True,
                )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    if len(rows) >= 2:
        (small, *_, p_small), (large, *_, p_large) = rows[0], rows[-1]
        print(
            f"memory: {large / small:.0f}x the persons, {p_large / p_small:.2f}x the peak "
            f"({p_small / 2**20:.1f} -> {p_large / 2**20:.1f} MiB)"
        )


if __name__ == "__main__":
    main()
