"""Importing contacts from SuperOffice selections and projects: the real client over
HTTP to the NetServer simulator, the import service run as its worker runs it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaigns import imports
from campaigns.models import Contact, ContactImport, RecipientListMember
from crm.services import client_for_account
from tests.campaigns.factories import ContactFactory

DUPLICATE = "duplicate@example.com"
# The simulator's persons sharing DUPLICATE, oldest registration first.
DUPLICATES = (2, 5, 8)


def _person(simulator, pid: int) -> dict:
    return simulator.state(f"persons/{pid}")


def _switch_on(simulator, pid: int) -> bool:
    """SuperOffice's e-marketing switch: the EMARKETING consent, not withdrawn."""
    consent = simulator.state(f"consents/{pid}").get("EMARKETING")
    return consent is not None and consent["legal_base"] != "WITHDRAWN"


def _emails(simulator, pids) -> set[str]:
    return {
        _person(simulator, pid)["Emails"][0].lower()
        for pid in pids
        if _person(simulator, pid)["Emails"]
    }


def _run(account, **kwargs) -> ContactImport:
    started = imports.contact_import_create(account=account, enqueue=False, **kwargs)
    return imports.contact_import_run(import_id=started.pk)


@pytest.fixture
def small_pages(settings):
    # Small pages, so duplicates and filters meet across page boundaries.
    settings.CAMPAIGNS_IMPORT_PAGE_SIZE = 7


@pytest.fixture
def selection(crm_account, simulator):
    """Selection 1 with the three persons sharing one email and two persons without email."""
    client = client_for_account(crm_account)
    for pid in DUPLICATES:
        client.selection_add_person(selection_id=1, person_id=pid)
    no_email = [
        client.create_person(first_name="No", last_name=f"Mail {n}", email="", company_id=1).id
        for n in (1, 2)
    ]
    for pid in no_email:
        client.selection_add_person(selection_id=1, person_id=pid)
    return simulator.state("selections/1")["members"]


def test_a_selection_import_creates_one_contact_per_email_linked_to_the_oldest_person(
    crm_account, simulator, selection, small_pages
):
    done = _run(crm_account, source_type="selection", source_id=1)

    assert done.status == ContactImport.Status.DONE, done.error
    assert done.source_name == "Newsletter Q1"
    emails = _emails(simulator, selection)
    contacts = Contact.objects.filter(account=crm_account)
    assert {c.email for c in contacts} == emails
    assert done.total == done.processed == len(selection)
    assert (done.created, done.updated) == (len(emails), 0)
    assert done.skipped_no_email == 2
    assert done.skipped_duplicate == 2
    assert done.percent == 100
    shared = contacts.get(email=DUPLICATE)
    assert shared.superoffice_person_id == DUPLICATES[0]
    kari = next(
        pid for pid in selection if pid not in DUPLICATES and _person(simulator, pid)["Emails"]
    )
    person = _person(simulator, kari)
    contact = contacts.get(superoffice_person_id=kari)
    assert (contact.first_name, contact.last_name) == (person["Firstname"], person["Lastname"])
    assert contact.company_name == simulator.state(f"companies/{person['ContactId']}")["Name"]


def test_running_an_import_again_updates_the_same_contacts_without_duplicates(
    crm_account, simulator, selection, small_pages
):
    first = _run(crm_account, source_type="selection", source_id=1)
    ids_before = set(Contact.objects.filter(account=crm_account).values_list("pk", flat=True))

    again = _run(crm_account, source_type="selection", source_id=1)

    assert set(Contact.objects.filter(account=crm_account).values_list("pk", flat=True)) == (
        ids_before
    )
    assert (again.created, again.updated) == (0, first.created)
    assert Contact.objects.get(account=crm_account, email=DUPLICATE).superoffice_person_id == 2


def test_an_existing_contact_with_the_email_is_updated_and_linked(
    crm_account, simulator, selection
):
    pid = next(p for p in selection if p not in DUPLICATES and _person(simulator, p)["Emails"])
    email = _person(simulator, pid)["Emails"][0]
    ContactFactory(account=crm_account, email=email.upper(), first_name="Old", title="CTO")

    done = _run(crm_account, source_type="selection", source_id=1)

    contact = Contact.objects.get(account=crm_account, email__iexact=email)
    assert done.updated == 1
    assert contact.superoffice_person_id == pid
    assert contact.first_name == _person(simulator, pid)["Firstname"]
    # SuperOffice has no title for this person: the hub's own value is kept.
    assert contact.title == "CTO"


def test_the_switch_filter_imports_only_persons_with_the_emarketing_consent(
    crm_account, simulator, selection, small_pages
):
    client = client_for_account(crm_account)
    consenting = [p for p in selection if p not in DUPLICATES and _switch_on(simulator, p)]
    assert len(consenting) >= 2, "the seeded selection needs persons with the switch on"
    # One of them ticks "No Mailings" in SuperOffice (direct mail, not e-marketing: still
    # imported); another withdraws the consent (not imported).
    client.set_no_mailing(person_id=consenting[0], no_mailing=True)
    client.withdraw_consent(person_id=consenting[1], purpose_key="EMARKETING")
    newcomer = next(
        p for p in selection if not _switch_on(simulator, p) and _person(simulator, p)["Emails"]
    )
    client.set_consent(person_id=newcomer, purpose_key="EMARKETING", legal_base_key="61A")
    wanted = [pid for pid in selection if _switch_on(simulator, pid)]

    done = _run(crm_account, source_type="selection", source_id=1, only_emarketing=True)

    imported = set(Contact.objects.filter(account=crm_account).values_list("email", flat=True))
    assert imported == _emails(simulator, wanted)
    # The two persons without email are counted as such, switch or not.
    assert done.skipped_no_email == 2
    assert done.skipped_switch_off == len(selection) - len(wanted) - 2
    assert _person(simulator, newcomer)["Emails"][0].lower() in imported
    assert _person(simulator, consenting[0])["NoMailing"] is True
    assert _person(simulator, consenting[0])["Emails"][0].lower() in imported
    assert _person(simulator, consenting[1])["Emails"][0].lower() not in imported


def test_a_selection_import_keys_contacts_by_each_members_own_email_not_their_companys(
    crm_account, simulator, small_pages
):
    members = simulator.state("selections/2")["members"]
    persons = {pid: _person(simulator, pid) for pid in members}
    companies = {pid: simulator.state(f"companies/{p['ContactId']}") for pid, p in persons.items()}
    # On ContactPersonStaticSelectionV2 email/emailAddress is the company's address.
    assert all(companies[pid]["Email"] != persons[pid]["Emails"][0] for pid in members)

    done = _run(crm_account, source_type="selection", source_id=2)

    contacts = {c.superoffice_person_id: c for c in Contact.objects.filter(account=crm_account)}
    expected = {pid for pid in members if pid not in DUPLICATES}
    assert expected <= set(contacts)
    for pid in expected:
        assert contacts[pid].email == persons[pid]["Emails"][0].lower()
        assert contacts[pid].company_name == companies[pid]["Name"]
    company_addresses = {c["Email"] for c in companies.values()}
    assert not company_addresses & {c.email for c in contacts.values()}
    assert done.created == len(contacts)


def test_a_project_import_resolves_duplicates_across_pages_to_the_oldest_person(
    crm_account, simulator, settings
):
    settings.CAMPAIGNS_IMPORT_PAGE_SIZE = 2
    client = client_for_account(crm_account)
    # Added youngest first: the oldest person sharing the email comes on a later page.
    for pid in reversed(DUPLICATES):
        client.project_add_person(project_id=2, person_id=pid)
    members = simulator.state("projects/2")["members"]

    done = _run(crm_account, source_type="project", source_id=2)

    assert done.status == ContactImport.Status.DONE, done.error
    assert done.total == done.processed == len(members)
    assert Contact.objects.get(account=crm_account, email=DUPLICATE).superoffice_person_id == 2
    assert set(Contact.objects.filter(account=crm_account).values_list("email", flat=True)) == (
        _emails(simulator, members)
    )
    assert done.skipped_duplicate == 2


def test_a_project_import_with_the_switch_filter(crm_account, simulator):
    members = simulator.state("projects/1")["members"]
    wanted = [pid for pid in members if _switch_on(simulator, pid)]

    done = _run(crm_account, source_type="project", source_id=1, only_emarketing=True)

    assert done.created == len(_emails(simulator, wanted))
    assert done.skipped_switch_off == len(members) - len(wanted)


def test_an_unknown_selection_fails_the_import_with_the_crm_error(crm_account, simulator):
    done = _run(crm_account, source_type="selection", source_id=999)

    assert done.status == ContactImport.Status.FAILED
    assert "999" in done.error
    assert not Contact.objects.filter(account=crm_account).exists()


def test_a_second_delivery_of_the_task_does_not_run_the_import_twice(crm_account, simulator):
    started = imports.contact_import_create(
        account=crm_account, source_type="selection", source_id=2, enqueue=False
    )
    assert imports.contact_import_run(import_id=started.pk).status == ContactImport.Status.DONE
    assert imports.contact_import_run(import_id=started.pk) is None


def test_an_imported_set_is_saved_as_a_recipient_list(crm_account, simulator, selection):
    done = _run(crm_account, source_type="selection", source_id=1)
    ContactFactory(account=crm_account, email="not-imported@example.com")

    recipients = imports.recipient_list_from_import(contact_import=done, name="Newsletter Q1")

    members = RecipientListMember.objects.filter(recipient_list=recipients)
    assert recipients.source_import == done
    assert set(members.values_list("contact__email", flat=True)) == _emails(simulator, selection)


def test_the_command_imports_a_selection_with_a_progress_bar(crm_account, simulator, settings):
    settings.CAMPAIGNS_IMPORT_PAGE_SIZE = 10
    members = simulator.state("selections/3")["members"]
    out = StringIO()

    call_command("import_contacts", "--account", crm_account.slug, "--selection", "3", stdout=out)

    text = out.getvalue()
    assert "100%" in text and "[" in text
    assert f"Created {len(_emails(simulator, members))}" in text
    assert Contact.objects.filter(account=crm_account).count() == len(_emails(simulator, members))


def test_the_command_with_the_switch_filter_and_a_project(crm_account, simulator):
    members = simulator.state("projects/3")["members"]
    wanted = [pid for pid in members if _switch_on(simulator, pid)]

    call_command(
        "import_contacts",
        "--account",
        crm_account.slug,
        "--project",
        "3",
        "--only-emarketing",
        stdout=StringIO(),
    )

    assert Contact.objects.filter(account=crm_account).count() == len(_emails(simulator, wanted))


def test_the_command_refuses_an_unknown_account(db):
    with pytest.raises(CommandError, match="No account"):
        call_command("import_contacts", "--account", "nobody", "--selection", "1")


def test_an_import_signs_in_again_when_superoffice_forgot_the_ticket(crm_account, simulator):
    client_for_account(crm_account).whoami()
    simulator.control(expire_tickets=True)

    done = _run(crm_account, source_type="selection", source_id=2)

    assert done.status == ContactImport.Status.DONE, done.error
    assert done.created > 0


def test_an_import_whose_worker_died_is_taken_again_and_finishes(crm_account, simulator):
    from datetime import timedelta

    from django.utils import timezone

    started = imports.contact_import_create(
        account=crm_account, source_type="selection", source_id=2, enqueue=False
    )
    # A worker claimed it and died half-way: its lease runs out.
    ContactImport.objects.filter(pk=started.pk).update(
        status=ContactImport.Status.RUNNING,
        processed=3,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert imports.imports_resume_stalled() == 1  # the beat wakes a worker for it

    done = imports.contact_import_run(import_id=started.pk)

    assert done.status == ContactImport.Status.DONE
    assert done.processed == done.total


def test_an_import_that_links_a_queued_contact_resumes_its_waiting_runs(
    crm_account, simulator, selection, small_pages
):
    from automations.models import Run, RunStatus
    from tests.automations.factories import run_in

    # A contact with the duplicate email waited in the queue before anyone matched it.
    run = run_in(crm_account)
    contact = run.contact
    contact.email, contact.superoffice_person_id = DUPLICATE, None
    contact.save(update_fields=["email", "superoffice_person_id"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.WAITING_FOR_MATCH)

    done = _run(crm_account, source_type="selection", source_id=1)

    assert done.status == ContactImport.Status.DONE, done.error
    contact.refresh_from_db()
    assert contact.superoffice_person_id == DUPLICATES[0]
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING
