"""The panels at work: queue, Lead Report, Timeline, Event details, with SuperOffice played by
the simulator over HTTP, and a bounded number of queries per page."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import Run, RunStatus
from automations.services import automation_delete
from campaigns.models import EventType
from crm.models import SuperOfficeConnection
from leads.models import LeadDecision

from .factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    PanelSettingsFactory,
    TrackedLinkFactory,
    token_for,
    waiting_runs,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(crm_account, simulator):
    return PanelSettingsFactory(account=crm_account, context_identifier="Cust12345")


@pytest.fixture
def local_panel(account):
    return PanelSettingsFactory(account=account)


def _url(settings, name, **kwargs):
    return reverse(name, kwargs={"panel_key": settings.panel_key, **kwargs})


def _get(client, settings, name, params=None, *, token=None, **kwargs):
    return client.get(
        _url(settings, name, **kwargs),
        params or {},
        HTTP_X_PANEL_TOKEN=token or token_for(settings),
    )


def _post(client, settings, name, data, **kwargs):
    return client.post(_url(settings, name, **kwargs), data, HTTP_X_PANEL_TOKEN=token_for(settings))


def _hx_post(client, settings, name, data, **kwargs):
    """As htmx posts from the panel: the token in a header, and the HX-Request mark."""
    return client.post(
        _url(settings, name, **kwargs),
        data,
        HTTP_X_PANEL_TOKEN=token_for(settings),
        HTTP_HX_REQUEST="true",
    )


# -- Manage Automations Queue -------------------------------------------------------------


def test_the_queue_shows_what_waits_for_each_contact(client, local_panel):
    account = local_panel.account
    campaign = CampaignFactory(account=account, name="Autumn webinar")
    automation = AutomationFactory(
        account=account,
        campaign=campaign,
        name="Sale on demo request",
        trigger_event_type=EventType.LINK_CLICKED,
    )
    contact = ContactFactory(account=account, email="kari@example.com")
    waiting_runs(account, contact, 2, automation=automation)
    ContactFactory(account=account, email="matched@example.com", superoffice_person_id=5)

    response = _get(client, local_panel, "leads:queue")

    assert response.status_code == 200
    body = response.content.decode()
    assert "kari@example.com" in body
    assert "Sale on demo request" in body and "Autumn webinar" in body
    assert "Link clicked" in body
    assert "2 waiting since" in body
    assert "matched@example.com" not in body


def test_the_queue_page_needs_the_same_few_queries_for_many_contacts(
    client, local_panel, django_assert_max_num_queries
):
    account = local_panel.account
    automation = AutomationFactory(account=account, campaign=CampaignFactory(account=account))
    for _i in range(30):
        waiting_runs(account, ContactFactory(account=account), 2, automation=automation)

    # The panel session is opened before; reading it is one of the queries.
    token = token_for(local_panel)
    with django_assert_max_num_queries(7):
        response = _get(client, local_panel, "leads:queue", token=token)

    assert response.content.count(b'class="card entry"') == 20


def _contact_like(account, person):
    return ContactFactory(
        account=account,
        email=person["Emails"][0],
        first_name=person["Firstname"],
        last_name=person["Lastname"],
    )


def test_matching_a_contact_sets_the_person_and_resumes_all_its_runs(client, panel, simulator):
    account = panel.account
    contact = _contact_like(account, simulator.state("persons/5"))
    runs = waiting_runs(account, contact, 3)

    response = _post(client, panel, "leads:queue_match", {"person_id": 5}, contact_id=contact.id)

    assert response.status_code == 200
    assert b"3 waiting run(s) resumed" in response.content
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5
    statuses = set(Run.objects.filter(id__in=[r.id for r in runs]).values_list("status", flat=True))
    assert statuses == {RunStatus.PENDING}
    decision = LeadDecision.objects.get(contact=contact)
    assert (decision.outcome, decision.associate_id) == ("matched", 2)


def test_the_match_preview_shows_the_person_and_the_runs_that_resume(client, panel, simulator):
    account = panel.account
    person = simulator.state("persons/5")
    contact = _contact_like(account, person)
    automation = AutomationFactory(
        account=account, campaign=CampaignFactory(account=account), name="Sale on demo request"
    )
    waiting_runs(account, contact, automation=automation)

    response = _get(
        client, panel, "leads:queue_match_preview", {"person_id": 5}, contact_id=contact.id
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert f"{person['Firstname']} {person['Lastname']}" in body
    assert person["Emails"][0] in body
    assert "Sale on demo request" in body
    assert 'name="confirmed"' not in body  # same name and e-mail: nothing to confirm
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None  # a preview changes nothing


def test_a_person_superoffice_does_not_have_is_refused_in_plain_words(client, panel, simulator):
    contact = ContactFactory(account=panel.account)
    runs = waiting_runs(panel.account, contact)

    preview = _get(
        client, panel, "leads:queue_match_preview", {"person_id": 9999}, contact_id=contact.id
    )
    match = _post(client, panel, "leads:queue_match", {"person_id": 9999}, contact_id=contact.id)

    for response in (preview, match):
        assert response.status_code == 200
        assert b"SuperOffice has no person 9999." in response.content
        assert b"NotFound" not in response.content and b"GetPerson" not in response.content
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None
    assert Run.objects.get(id=runs[0].id).status == RunStatus.WAITING_FOR_MATCH


def test_a_person_whose_name_differs_is_matched_only_once_confirmed(client, panel, simulator):
    person = simulator.state("persons/5")
    contact = ContactFactory(
        account=panel.account, email=person["Emails"][0], first_name="Other", last_name="Name"
    )
    waiting_runs(panel.account, contact)

    preview = _get(
        client, panel, "leads:queue_match_preview", {"person_id": 5}, contact_id=contact.id
    )
    unconfirmed = _post(client, panel, "leads:queue_match", {"person_id": 5}, contact_id=contact.id)
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None
    confirmed = _post(
        client,
        panel,
        "leads:queue_match",
        {"person_id": 5, "confirmed": "1"},
        contact_id=contact.id,
    )

    assert b"The name differs" in preview.content and b'name="confirmed"' in preview.content
    assert b"confirm it is the same person" in unconfirmed.content
    assert b"1 waiting run(s) resumed" in confirmed.content
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5


def test_a_bad_person_id_is_a_message_not_an_error(client, local_panel):
    contact = ContactFactory(account=local_panel.account)
    waiting_runs(local_panel.account, contact)

    response = _post(
        client, local_panel, "leads:queue_match", {"person_id": "abc"}, contact_id=contact.id
    )

    assert response.status_code == 200
    assert b"Pick a person" in response.content
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None


def test_dismissing_cancels_the_waiting_runs_with_the_reason(client, local_panel):
    contact = ContactFactory(account=local_panel.account)
    runs = waiting_runs(local_panel.account, contact, 2)

    _post(
        client, local_panel, "leads:queue_dismiss", {"reason": "Competitor"}, contact_id=contact.id
    )

    run = Run.objects.get(id=runs[0].id)
    assert (run.status, run.cancel_reason) == (RunStatus.CANCELLED, "Competitor")
    assert b"Competitor" not in _get(client, local_panel, "leads:queue").content
    assert contact.email.encode() not in _get(client, local_panel, "leads:queue").content


def test_dismissing_without_a_reason_is_refused(client, local_panel):
    contact = ContactFactory(account=local_panel.account)
    runs = waiting_runs(local_panel.account, contact)

    response = _post(
        client, local_panel, "leads:queue_dismiss", {"reason": ""}, contact_id=contact.id
    )

    assert b"Say why" in response.content
    assert Run.objects.get(id=runs[0].id).status == RunStatus.WAITING_FOR_MATCH


def test_candidates_come_from_superoffice_ranked_with_the_reason(client, panel, simulator):
    person = simulator.state("persons/5")
    email = person["Emails"][0]
    contact = ContactFactory(
        account=panel.account,
        email=email,
        first_name=person["Firstname"],
        last_name=person["Lastname"],
    )
    waiting_runs(panel.account, contact)

    response = _get(client, panel, "leads:queue_candidates", contact_id=contact.id)

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-person="5"' in body
    assert "Same email" in body and "Same name" in body


def test_candidates_include_people_of_the_same_company_domain_and_name(client, panel, simulator):
    contact = ContactFactory(
        account=panel.account, email="ola@newco.example", first_name="Ola", last_name="Zyx"
    )
    waiting_runs(panel.account, contact)
    colleague = _post_person(client, simulator, "Kim", "Berg", "kim@newco.example")
    namesake = _post_person(client, simulator, "Ola", "Zyx", "ola.zyx@other.example")

    body = _get(client, panel, "leads:queue_candidates", contact_id=contact.id).content.decode()

    assert f'data-person="{colleague}"' in body and "Same company domain" in body
    assert f'data-person="{namesake}"' in body and "Same name" in body


def test_the_search_finds_persons_by_name_or_company(client, panel, simulator):
    contact = ContactFactory(account=panel.account, email="x@gmail.com", last_name="")
    waiting_runs(panel.account, contact)
    person = simulator.state("persons/9")
    company = simulator.state(f"companies/{person['ContactId']}")

    by_name = _get(
        client, panel, "leads:queue_candidates", {"q": person["Lastname"]}, contact_id=contact.id
    ).content.decode()
    by_company = _get(
        client, panel, "leads:queue_candidates", {"q": company["Name"]}, contact_id=contact.id
    ).content.decode()

    assert 'data-person="9"' in by_name
    assert 'data-person="9"' in by_company


def _post_person(client, simulator, first, last, email) -> int:
    from crm.models import SuperOfficeConnection
    from crm.services import client_for_account
    from tests.factories import AccountFactory

    helper = AccountFactory(slug=f"helper-{email.split('@')[0]}")
    SuperOfficeConnection.objects.create(
        account=helper,
        base_url=simulator.base_url,
        auth_mode="onsite",
        username=simulator.username,
        password=simulator.password,
        application_token=simulator.app_token,
    )
    return (
        client_for_account(helper)
        .create_person(first_name=first, last_name=last, email=email, company_id=1)
        .id
    )


def test_candidates_show_a_message_when_superoffice_is_down(client, panel, simulator):
    contact = ContactFactory(account=panel.account)
    waiting_runs(panel.account, contact)
    simulator.control(mode="down")

    response = _get(client, panel, "leads:queue_candidates", contact_id=contact.id)

    assert response.status_code == 200
    assert b"SuperOffice could not be reached" in response.content


def test_bulk_match_matches_only_exact_email_matches_in_the_background_with_progress(
    client, panel, simulator, django_capture_on_commit_callbacks
):
    from leads.models import BulkMatch
    from leads.services import bulk_match_run

    email = simulator.state("persons/7")["Emails"][0]
    exact = ContactFactory(account=panel.account, email=email)
    unknown = ContactFactory(account=panel.account, email="nobody-in-crm@example.org")
    waiting_runs(panel.account, exact)
    waiting_runs(panel.account, unknown)

    with django_capture_on_commit_callbacks() as queued:
        started = _hx_post(
            client, panel, "leads:queue_bulk_match", {"contact_ids": [exact.id, unknown.id]}
        )

    # Answered at once: the work is the worker's, the fragment follows it.
    bulk = BulkMatch.objects.get(account=panel.account)
    progress_url = _url(panel, "leads:queue_bulk_match_progress", bulk_match_id=bulk.id)
    assert len(queued) == 1
    assert 'data-state="queued"' in started.content.decode()
    assert f'hx-get="{progress_url}"' in started.content.decode()
    exact.refresh_from_db()
    assert exact.superoffice_person_id is None

    bulk_match_run(bulk_match_id=bulk.id)
    done = _get(client, panel, "leads:queue_bulk_match_progress", bulk_match_id=bulk.id)

    body = done.content.decode()
    assert "Done: 1 matched by exact e-mail; 1 left for you." in body
    assert "hx-trigger" not in body  # no more polling
    # The matched contact's card changes in place, with its Undo.
    assert f'hx-swap-oob="outerHTML:#queue-contact-{exact.id}"' in body
    assert "Matched by exact e-mail to SuperOffice person #7; 1 waiting run(s) resumed." in body
    assert f"queue-contact-{unknown.id}" not in body
    exact.refresh_from_db()
    unknown.refresh_from_db()
    assert exact.superoffice_person_id == 7
    assert unknown.superoffice_person_id is None


def test_a_bulk_match_delivered_twice_matches_once(client, panel, simulator):
    from leads.models import BulkMatch
    from leads.services import bulk_match_run

    exact = ContactFactory(account=panel.account, email=simulator.state("persons/7")["Emails"][0])
    waiting_runs(panel.account, exact)
    bulk = BulkMatch.objects.create(account=panel.account, contact_ids=[exact.id])

    first = bulk_match_run(bulk_match_id=bulk.id)
    second = bulk_match_run(bulk_match_id=bulk.id)

    assert (first.status, first.checked, len(first.matched)) == ("done", 1, 1)
    assert second is None
    assert LeadDecision.objects.filter(contact=exact).count() == 1


def test_a_bulk_match_stops_with_a_plain_message_when_superoffice_is_down(client, panel, simulator):
    from leads.models import BulkMatch
    from leads.services import bulk_match_run

    contact = ContactFactory(account=panel.account)
    waiting_runs(panel.account, contact)
    bulk = BulkMatch.objects.create(account=panel.account, contact_ids=[contact.id])
    simulator.control(mode="down")

    bulk_match_run(bulk_match_id=bulk.id)
    body = _get(client, panel, "leads:queue_bulk_match_progress", bulk_match_id=bulk.id)

    assert b"Stopped after 0 of 1" in body.content
    assert b"SuperOffice could not be reached" in body.content
    assert b"hx-trigger" not in body.content


def test_bulk_match_with_nothing_ticked_says_so(client, panel):
    response = _hx_post(client, panel, "leads:queue_bulk_match", {})

    assert b"Tick the contacts to match." in response.content


def test_the_progress_of_another_accounts_bulk_match_is_not_found(client, panel, other_account):
    from leads.models import BulkMatch

    foreign = BulkMatch.objects.create(account=other_account, contact_ids=[1])

    response = _get(client, panel, "leads:queue_bulk_match_progress", bulk_match_id=foreign.id)

    assert response.status_code == 404


# -- Lead Report ----------------------------------------------------------------------------


def test_the_lead_report_lists_engaged_contacts_newest_first_with_activity(client, local_panel):
    account = local_panel.account
    campaign = CampaignFactory(account=account, name="Spring")
    old = ContactFactory(account=account, email="old@example.com")
    new = ContactFactory(account=account, email="new@example.com")
    opened_only = ContactFactory(account=account, email="opened@example.com")
    known = ContactFactory(account=account, email="known@example.com", superoffice_person_id=9)
    form = FormFactory(account=account, campaign=campaign, name="Demo request")
    now = timezone.now()
    EventFactory(
        account=account,
        campaign=campaign,
        contact=old,
        type=EventType.LINK_CLICKED,
        occurred_at=now - timedelta(days=2),
    )
    EventFactory(
        account=account,
        campaign=campaign,
        contact=new,
        type=EventType.FORM_SUBMITTED,
        form=form,
        occurred_at=now - timedelta(hours=1),
    )
    EventFactory(account=account, campaign=campaign, contact=opened_only)
    EventFactory(account=account, campaign=campaign, contact=known, type=EventType.LINK_CLICKED)

    body = _get(client, local_panel, "leads:lead_report").content.decode()

    assert body.index("new@example.com") < body.index("old@example.com")
    assert "Demo request" in body
    assert "opened@example.com" not in body
    assert "known@example.com" not in body


def test_leads_not_handled_in_time_are_flagged_not_dropped(client, local_panel):
    account = local_panel.account
    local_panel.flag_after_days = 3
    local_panel.save()
    stale = ContactFactory(account=account, email="stale@example.com")
    fresh = ContactFactory(account=account, email="fresh@example.com")
    EventFactory(
        account=account,
        contact=stale,
        type=EventType.LINK_CLICKED,
        occurred_at=timezone.now() - timedelta(days=10),
    )
    EventFactory(account=account, contact=fresh, type=EventType.LINK_CLICKED)

    everything = _get(client, local_panel, "leads:lead_report").content.decode()
    flagged = _get(client, local_panel, "leads:lead_report", {"flagged": "1"}).content.decode()

    assert "stale@example.com" in everything and "fresh@example.com" in everything
    assert "Not handled since" in everything
    assert "stale@example.com" in flagged and "fresh@example.com" not in flagged


LEAD_EMAIL = re.compile(
    r'data-contact="\d+">\s*<strong>[^<]*</strong>\s*<span class="muted">([^ <]+)'
)


def _lead_emails(body):
    """The leads' addresses in the order the report lists them."""
    return LEAD_EMAIL.findall(body)


# The Lead Report reads these leads with SQL of its own: checked on SQLite too.
@pytest.mark.both_databases
def test_a_run_waiting_on_an_opened_email_makes_a_lead_and_counts(client, local_panel):
    account = local_panel.account
    local_panel.flag_after_days = 2
    local_panel.save()
    campaign = CampaignFactory(account=account)
    on_open = AutomationFactory(
        account=account, campaign=campaign, trigger_event_type=EventType.EMAIL_OPENED
    )
    opener = ContactFactory(account=account, email="opener@example.com")
    clicker = ContactFactory(account=account, email="clicker@example.com")
    now = timezone.now()
    for contact, days in ((opener, 3), (clicker, 1)):
        EventFactory(
            account=account,
            campaign=campaign,
            contact=contact,
            type=EventType.LINK_CLICKED,
            occurred_at=now - timedelta(days=days),
        )
    waiting_runs(account, opener, automation=on_open)

    body = _get(client, local_panel, "leads:lead_report").content.decode()
    flagged = _get(client, local_panel, "leads:lead_report", {"flagged": "1"}).content.decode()

    # The open with a waiting run is the opener's latest activity and second engagement;
    # the click three days ago makes it a lead not handled in time.
    assert _lead_emails(body) == ["opener@example.com", "clicker@example.com"]
    assert "2 engagements" in body and "1 engagement<" in body
    assert _lead_emails(flagged) == ["opener@example.com"]

    automation_delete(automation=on_open)
    body = _get(client, local_panel, "leads:lead_report").content.decode()

    # Its run cancelled, the open no longer counts: only the older click does.
    assert _lead_emails(body) == ["clicker@example.com", "opener@example.com"]
    assert "2 engagements" not in body


# The Lead Report reads these leads with SQL of its own: checked on SQLite too.
@pytest.mark.both_databases
def test_a_run_waiting_on_an_open_alone_makes_a_lead(client, local_panel):
    account = local_panel.account
    on_open = AutomationFactory(
        account=account,
        campaign=CampaignFactory(account=account),
        trigger_event_type=EventType.EMAIL_OPENED,
    )
    lead = ContactFactory(account=account, email="only-opened@example.com")
    waiting_runs(account, lead, 2, automation=on_open)

    body = _get(client, local_panel, "leads:lead_report").content.decode()

    assert _lead_emails(body) == ["only-opened@example.com"]
    assert "2 engagements" in body and "2 runs waiting" in body


def test_leads_active_at_the_same_moment_come_most_engaged_first(client, local_panel):
    account = local_panel.account
    campaign = CampaignFactory(account=account)
    at = timezone.now() - timedelta(hours=1)
    once = ContactFactory(account=account, email="once@example.com")
    thrice = ContactFactory(account=account, email="thrice@example.com")
    for contact, n in ((once, 1), (thrice, 3)):
        for _ in range(n):
            EventFactory(
                account=account,
                campaign=campaign,
                contact=contact,
                type=EventType.LINK_CLICKED,
                occurred_at=at,
            )

    body = _get(client, local_panel, "leads:lead_report").content.decode()

    assert _lead_emails(body) == ["thrice@example.com", "once@example.com"]


def test_rejecting_a_lead_hides_it(client, local_panel):
    account = local_panel.account
    lead = ContactFactory(account=account, email="reject-me@example.com")
    EventFactory(account=account, contact=lead, type=EventType.LINK_CLICKED)

    _post(client, local_panel, "leads:lead_reject", {"reason": "Student"}, contact_id=lead.id)

    assert b"reject-me@example.com" not in _get(client, local_panel, "leads:lead_report").content
    assert LeadDecision.objects.get(contact=lead).reason == "Student"


def test_the_lead_report_needs_the_same_few_queries_for_many_leads(
    client, local_panel, django_assert_max_num_queries
):
    account = local_panel.account
    campaign = CampaignFactory(account=account)
    for _ in range(30):
        contact = ContactFactory(account=account)
        for _ in range(3):
            EventFactory(
                account=account, campaign=campaign, contact=contact, type=EventType.LINK_CLICKED
            )

    # The panel session is opened before; reading it is one of the queries.
    token = token_for(local_panel)
    with django_assert_max_num_queries(8):
        response = _get(client, local_panel, "leads:lead_report", token=token)

    assert response.content.count(b'class="card entry') == 20


def test_approving_creates_the_person_and_company_and_resumes_the_runs(client, panel, simulator):
    SuperOfficeConnection.objects.filter(account=panel.account).update(allow_company_creation=True)
    lead = ContactFactory(
        account=panel.account,
        email="ny.kunde@example.net",
        first_name="Nora",
        last_name="Kunde",
        title="CTO",
        company_name="Kunde AS",
    )
    runs = waiting_runs(panel.account, lead, 2)

    response = _hx_post(
        client,
        panel,
        "leads:lead_approve",
        {
            "first_name": "Nora",
            "last_name": "Kunde",
            "email": "ny.kunde@example.net",
            "mobile": "+47 900 00 000",
            "title": "CTO",
            "create_company": "on",
            "company_name": "Kunde AS",
            "country_id": "47",
            "category_id": "2",
            "business_id": "1",
        },
        contact_id=lead.id,
    )

    assert response.status_code == 200, response.content
    # The whole card, in its new state, takes the place of the old one.
    assert response.headers["HX-Retarget"] == "closest .entry"
    assert response.headers["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert 'data-state="approved"' in body
    assert re.search(
        r"Approved — SuperOffice person #\d+ created with company Kunde AS; "
        r"2 waiting run\(s\) resumed\.",
        body,
    )
    lead.refresh_from_db()
    person = simulator.state(f"persons/{lead.superoffice_person_id}")
    assert (person["Firstname"], person["Lastname"], person["Emails"]) == (
        "Nora",
        "Kunde",
        ["ny.kunde@example.net"],
    )
    assert person["MobilePhones"] == ["+47 900 00 000"] and person["Title"] == "CTO"
    company = simulator.state(f"companies/{person['ContactId']}")
    assert (company["Name"], company["CountryId"], company["CategoryId"]) == ("Kunde AS", 47, 2)
    assert set(
        Run.objects.filter(id__in=[r.id for r in runs]).values_list("status", flat=True)
    ) == {RunStatus.PENDING}


def test_approving_without_company_creation_needs_an_existing_company(client, panel, simulator):
    lead = ContactFactory(account=panel.account, email="solo@example.net", last_name="Solo")
    EventFactory(account=panel.account, contact=lead, type=EventType.LINK_CLICKED)
    data = {
        "first_name": "S",
        "last_name": "Solo",
        "email": "solo@example.net",
        "company_name": "Sneaky AS",
        "create_company": "on",
    }

    refused = _hx_post(client, panel, "leads:lead_approve", data, contact_id=lead.id)
    created = _hx_post(
        client, panel, "leads:lead_approve", data | {"company_id": "1"}, contact_id=lead.id
    )

    assert b"company creation is switched off" in refused.content
    assert "HX-Retarget" not in refused.headers
    assert "Approved — SuperOffice person #" in created.content.decode()
    lead.refresh_from_db()
    assert simulator.state(f"persons/{lead.superoffice_person_id}")["ContactId"] == 1


def test_merging_a_lead_matches_it_to_the_existing_person(client, panel, simulator):
    person = simulator.state("persons/5")
    lead = _contact_like(panel.account, person)
    runs = waiting_runs(panel.account, lead)

    response = _hx_post(client, panel, "leads:lead_merge", {"person_id": 5}, contact_id=lead.id)

    body = response.content.decode()
    assert 'data-state="merged"' in body
    assert f"Merged into SuperOffice person #5 ({person['Firstname']} {person['Lastname']})" in body
    lead.refresh_from_db()
    assert lead.superoffice_person_id == 5
    assert Run.objects.get(id=runs[0].id).status == RunStatus.PENDING


def test_merging_into_a_person_superoffice_does_not_have_is_refused_on_the_card(
    client, panel, simulator
):
    lead = ContactFactory(account=panel.account)
    waiting_runs(panel.account, lead)

    response = _hx_post(client, panel, "leads:lead_merge", {"person_id": 9999}, contact_id=lead.id)

    body = response.content.decode()
    assert 'data-state="waiting"' in body
    assert "SuperOffice has no person 9999." in body
    lead.refresh_from_db()
    assert lead.superoffice_person_id is None


def test_merging_into_a_person_whose_name_differs_needs_a_confirmation_on_the_card(
    client, panel, simulator
):
    lead = ContactFactory(
        account=panel.account, email="kari@example.com", first_name="Kari", last_name="Nordmann"
    )
    waiting_runs(panel.account, lead)

    asked = _hx_post(client, panel, "leads:lead_merge", {"person_id": 5}, contact_id=lead.id)
    lead.refresh_from_db()
    assert lead.superoffice_person_id is None
    confirmed = _hx_post(
        client, panel, "leads:lead_merge", {"person_id": 5, "confirmed": "1"}, contact_id=lead.id
    )

    body = asked.content.decode()
    assert 'data-state="waiting"' in body and 'data-testid="merge-preview"' in body
    assert "The name differs" in body and 'name="confirmed"' in body
    assert 'data-state="merged"' in confirmed.content.decode()
    lead.refresh_from_db()
    assert lead.superoffice_person_id == 5


def _rejectable_lead(account, email="reject-me@example.com"):
    lead = ContactFactory(account=account, email=email)
    EventFactory(account=account, contact=lead, type=EventType.LINK_CLICKED)
    return lead


def test_rejecting_a_lead_answers_with_its_card_rejected_and_an_undo(client, local_panel):
    lead = _rejectable_lead(local_panel.account)

    response = _hx_post(
        client, local_panel, "leads:lead_reject", {"reason": "Student"}, contact_id=lead.id
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="card entry') == 1
    assert f'id="lead-{lead.id}"' in body and 'data-state="rejected"' in body
    assert "Rejected: Student." in body
    assert _url(local_panel, "leads:lead_reject_undo", contact_id=lead.id) in body


def test_undoing_a_rejection_brings_the_lead_back_and_keeps_the_decision_marked_undone(
    client, local_panel
):
    lead = _rejectable_lead(local_panel.account)
    _hx_post(client, local_panel, "leads:lead_reject", {"reason": "Student"}, contact_id=lead.id)

    response = _hx_post(client, local_panel, "leads:lead_reject_undo", {}, contact_id=lead.id)

    body = response.content.decode()
    assert 'data-state="waiting"' in body
    assert "Rejection undone" in body
    assert "1 engagement" in body  # the card as the report shows it, with its activity
    assert "Link clicked" in body
    assert b"reject-me@example.com" in _get(client, local_panel, "leads:lead_report").content
    decision = LeadDecision.objects.get(contact=lead)
    assert decision.outcome == LeadDecision.Outcome.REJECTED and decision.reason == "Student"
    assert decision.undone_at is not None and decision.undone_by_associate_id == 2


def test_undoing_a_lead_that_was_not_rejected_says_so(client, local_panel):
    lead = _rejectable_lead(local_panel.account)

    response = _hx_post(client, local_panel, "leads:lead_reject_undo", {}, contact_id=lead.id)

    assert b"nothing to undo" in response.content
    assert not LeadDecision.objects.filter(contact=lead).exists()


def test_a_lead_rejected_again_after_an_undo_leaves_both_decisions_in_its_history(
    client, local_panel
):
    lead = _rejectable_lead(local_panel.account)
    _hx_post(client, local_panel, "leads:lead_reject", {"reason": "Student"}, contact_id=lead.id)
    _hx_post(client, local_panel, "leads:lead_reject_undo", {}, contact_id=lead.id)
    _hx_post(client, local_panel, "leads:lead_reject", {"reason": "Competitor"}, contact_id=lead.id)

    history = list(LeadDecision.objects.filter(contact=lead).order_by("id"))
    assert [(d.reason, d.undone_at is None) for d in history] == [
        ("Student", False),
        ("Competitor", True),
    ]
    assert b"reject-me@example.com" not in _get(client, local_panel, "leads:lead_report").content


def test_without_javascript_reject_and_undo_post_and_come_back_to_the_same_page(
    client, local_panel
):
    """A plain form post: the panel sign-in travels in the form, the answer is a redirect
    to the report at the page the form was on, showing the rejected card with its Undo."""
    lead = _rejectable_lead(local_panel.account)
    token = token_for(local_panel)
    reject_url = _url(local_panel, "leads:lead_reject", contact_id=lead.id)

    rejected = client.post(reject_url, {"pt": token, "reason": "Student", "page": "2"})

    report = _url(local_panel, "leads:lead_report")
    assert rejected.status_code == 302
    assert rejected["Location"] == f"{report}?page=2&rejected={lead.id}#lead-{lead.id}"
    back = client.get(f"{report}?rejected={lead.id}", HTTP_X_PANEL_TOKEN=token).content.decode()
    assert 'data-state="rejected"' in back and "Rejected: Student." in back
    assert f'name="pt" value="{token}"' in back

    undone = client.post(
        _url(local_panel, "leads:lead_reject_undo", contact_id=lead.id), {"pt": token}
    )

    assert undone.status_code == 302
    assert undone["Location"] == f"{report}#lead-{lead.id}"
    again = client.get(f"{report}?rejected={lead.id}", HTTP_X_PANEL_TOKEN=token).content.decode()
    assert 'data-state="rejected"' not in again
    assert f'id="lead-{lead.id}"' in again and 'data-state="waiting"' in again


# -- Timeline and Event details --------------------------------------------------------------


def test_the_timeline_shows_the_persons_interactions_newest_first_paginated(
    client, local_panel, django_assert_max_num_queries
):
    account = local_panel.account
    contact = ContactFactory(account=account, superoffice_person_id=77)
    other = ContactFactory(account=account, superoffice_person_id=78)
    campaign = CampaignFactory(account=account, name="Newsletter")
    now = timezone.now()
    for i in range(30):
        EventFactory(
            account=account,
            campaign=campaign,
            contact=contact,
            type=EventType.EMAIL_OPENED,
            occurred_at=now - timedelta(days=i),
        )
    EventFactory(account=account, campaign=campaign, contact=other, type=EventType.SMS_SENT)

    # The panel session is opened before; reading it is one of the queries.
    token = token_for(local_panel)
    with django_assert_max_num_queries(7):
        response = _get(client, local_panel, "leads:timeline", {"atid": "77"}, token=token)

    body = response.content.decode()
    assert body.count("data-event=") == 25
    assert "30 interactions" in body
    assert "timeline-chart-data" in body
    assert "SMS sent" not in body.split('id="timeline"')[1]


def test_the_timeline_filters_by_type(client, local_panel):
    account = local_panel.account
    contact = ContactFactory(account=account, superoffice_person_id=77)
    EventFactory(account=account, contact=contact, type=EventType.EMAIL_OPENED)
    EventFactory(account=account, contact=contact, type=EventType.FORM_SUBMITTED)

    body = _get(
        client, local_panel, "leads:timeline", {"atid": "77", "type": "form_submitted"}
    ).content.decode()

    assert "1 interaction" in body


def test_the_timeline_never_shows_another_accounts_person(client, local_panel, other_account):
    ContactFactory(account=other_account, superoffice_person_id=77)
    EventFactory(
        account=other_account,
        type=EventType.EMAIL_OPENED,
        contact=ContactFactory(account=other_account, superoffice_person_id=77),
    )

    body = _get(client, local_panel, "leads:timeline", {"atid": "77"}).content.decode()

    assert "0 interactions" in body


def test_event_details_name_the_run_and_event_that_made_a_sale(client, local_panel):
    account = local_panel.account
    campaign = CampaignFactory(account=account, name="Pricing push")
    link = TrackedLinkFactory(account=account, campaign=campaign, name="Pricing page")
    AutomationFactory(
        account=account,
        campaign=campaign,
        name="Sale on pricing",
        trigger_event_type=EventType.LINK_CLICKED,
    )
    contact = ContactFactory(account=account, email="buyer@example.com", superoffice_person_id=3)
    event = EventFactory(
        account=account, campaign=campaign, contact=contact, link=link, type=EventType.LINK_CLICKED
    )
    # Ingesting the click wrote the automation's run.
    run = Run.objects.get(account=account, event=event)
    Run.objects.filter(id=run.id).update(
        status=RunStatus.DONE, crm_object_type="sale", crm_object_id=501
    )

    body = _get(client, local_panel, "leads:event_details", {"said": "501"}).content.decode()
    other = _get(client, local_panel, "leads:event_details", {"said": "502"}).content.decode()
    appointment = _get(client, local_panel, "leads:event_details", {"apid": "501"}).content

    assert "Sale on pricing" in body and "Pricing push" in body
    assert "Pricing page" in body and "buyer@example.com" in body
    assert "No automation of the hub created this sale" in other
    assert b"buyer@example.com" not in appointment


@pytest.mark.parametrize("variable", ["baid", "apid"])
def test_event_details_on_a_follow_up_card_name_the_run_that_made_it(client, local_panel, variable):
    # SuperOffice fills <baid> on a follow-up's card; <apid> is accepted as well.
    account = local_panel.account
    campaign = CampaignFactory(account=account, name="Webinar week")
    AutomationFactory(
        account=account,
        campaign=campaign,
        name="Call after the webinar",
        trigger_event_type=EventType.EMAIL_OPENED,
    )
    contact = ContactFactory(account=account, email="viewer@example.com", superoffice_person_id=4)
    event = EventFactory(account=account, campaign=campaign, contact=contact)
    run = Run.objects.get(account=account, event=event)
    Run.objects.filter(id=run.id).update(
        status=RunStatus.DONE, crm_object_type="appointment", crm_object_id=812
    )

    body = _get(client, local_panel, "leads:event_details", {variable: "812"}).content.decode()
    other = _get(client, local_panel, "leads:event_details", {variable: "813"}).content.decode()

    assert "Call after the webinar" in body and "viewer@example.com" in body
    assert "viewer@example.com" not in other


def test_the_panel_urls_name_the_follow_up_card_variable(local_panel):
    from leads.views import panel_urls

    urls = dict(panel_urls(None, local_panel))
    assert "baid=<baid>" in urls["Event details (appointment card)"]


# -- on-site <usec> -------------------------------------------------------------------------


def test_an_onsite_usec_verified_by_netserver_opens_the_panel_with_the_users_groups(client, panel):
    panel.usec_enabled = True
    panel.panel_groups = {"queue": [4]}  # Management: Ada (usec-ada-0001) is in it
    panel.save()

    ada = client.get(_url(panel, "leads:queue"), {"usec": "usec-ada-0001", "usid": "1"})
    sam = client.get(_url(panel, "leads:queue"), {"usec": "usec-sam-0002"})

    assert ada.status_code == 200
    assert b'data-associate="1"' in ada.content
    assert sam.status_code == 403


def test_an_unknown_usec_gets_no_data(client, panel):
    panel.usec_enabled = True
    panel.save()

    response = client.get(_url(panel, "leads:queue"), {"usec": "made-up"})

    assert response.status_code == 401


def test_a_usec_is_ignored_where_the_admin_did_not_turn_it_on(client, panel):
    response = client.get(_url(panel, "leads:queue"), {"usec": "usec-ada-0001"})

    assert response.status_code == 401


def test_the_lead_report_pages_through_every_lead(client, local_panel):
    account = local_panel.account
    for _ in range(23):
        EventFactory(
            account=account, contact=ContactFactory(account=account), type=EventType.LINK_CLICKED
        )

    first = _get(client, local_panel, "leads:lead_report").content.decode()
    second = _get(client, local_panel, "leads:lead_report", {"page": "2"}).content.decode()
    nonsense = _get(client, local_panel, "leads:lead_report", {"page": "x"})

    assert first.count('class="card entry') == 20 and "Older →" in first
    assert second.count('class="card entry') == 3 and "← Newer" in second
    assert nonsense.status_code == 200


def test_a_match_can_be_undone_while_its_runs_are_held(client, panel, simulator, settings):
    settings.AUTOMATIONS_MATCH_UNDO_SECONDS = 60
    contact = _contact_like(panel.account, simulator.state("persons/5"))
    runs = waiting_runs(panel.account, contact, 2)

    matched = _post(client, panel, "leads:queue_match", {"person_id": 5}, contact_id=contact.id)
    held = Run.objects.filter(id__in=[r.id for r in runs])
    assert {r.next_attempt_at > timezone.now() for r in held} == {True}
    undone = _post(client, panel, "leads:queue_match_undo", {}, contact_id=contact.id)

    assert b"Undo match" in matched.content
    assert b"Match undone; 2 run(s) wait for a match again" in undone.content
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None
    assert set(held.values_list("status", flat=True)) == {RunStatus.WAITING_FOR_MATCH}
    assert not LeadDecision.objects.filter(contact=contact).exists()
    queue = _get(client, panel, "leads:queue")
    assert contact.email.encode() in queue.content


def test_a_match_released_early_cannot_be_undone(client, panel, simulator, settings):
    settings.AUTOMATIONS_MATCH_UNDO_SECONDS = 60
    contact = _contact_like(panel.account, simulator.state("persons/5"))
    [run] = waiting_runs(panel.account, contact)

    _post(client, panel, "leads:queue_match", {"person_id": 5}, contact_id=contact.id)
    released = _post(client, panel, "leads:queue_match_release", {}, contact_id=contact.id)
    undone = _post(client, panel, "leads:queue_match_undo", {}, contact_id=contact.id)

    assert b"1 run(s) going on now" in released.content
    assert b"Too late to undo" in undone.content
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.next_attempt_at <= timezone.now()
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5
