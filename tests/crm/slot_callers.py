"""A process that calls the simulator from several threads through the real client, for
the tests of the cap on concurrent calls across processes. Started with multiprocessing's
spawn: it sets up no Django apps and no database (the client reads only plain settings)."""

from __future__ import annotations

import threading


def call_from_threads(
    *,
    base_url: str,
    username: str,
    password: str,
    app_token: str,
    slots_url: str,
    limit: int,
    lease_seconds: float,
    threads: int,
    calls: int,
) -> None:
    from crm.client import ConnectionSettings, MemoryTicketStore, NetServerClient, slots

    connection = ConnectionSettings(
        base_url=base_url,
        auth_mode="onsite",
        application_token=app_token,
        username=username,
        password=password,
    )
    if slots_url:
        call_slots = slots.shared_slots(base_url, limit, url=slots_url, lease_seconds=lease_seconds)
    else:
        call_slots = slots.process_slots(base_url, limit)
    tickets = MemoryTicketStore()
    failures: list[BaseException] = []

    def work() -> None:
        client = NetServerClient(
            connection=connection,
            ticket_store=tickets,
            timeout=10.0,
            call_slots=call_slots,
        )
        try:
            for _ in range(calls):
                client.get_person(person_id=1)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
