"""A tracked link's page lists, besides the link's own actions, the campaign's automations
that fire on a click of any of its links: a click on this link runs those too."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationType
from automations.services import runs_create_for_events
from campaigns.models import EventType

from .factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


def _any_link_rows(html: str) -> list[str]:
    table = re.search(r'data-testid="any-link-automations".*?</table>', html, re.S)
    return re.findall(r'data-automation="([^"]+)"', table.group(0)) if table else []


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account, name="Autumn webinar")


@pytest.fixture
def link(campaign):
    return TrackedLinkFactory(campaign=campaign, name="Sign up")


def test_the_link_page_lists_the_campaigns_automations_that_fire_on_any_link(
    marketer_client, account, other_account, campaign, link
):
    other_link = TrackedLinkFactory(campaign=campaign, name="Pricing")
    any_click = AutomationFactory(
        campaign=campaign, name="Score every click", trigger_event_type=EventType.LINK_CLICKED
    )
    AutomationFactory(
        campaign=campaign,
        name="Any SMS link",
        trigger_event_type=EventType.SMS_LINK_CLICKED,
        type=AutomationType.CREATE_TASK,
        is_enabled=False,
    )
    # Not on the list: the link's own action, another link's, another event's, a deleted
    # one, another campaign's and another account's.
    AutomationFactory(
        campaign=campaign,
        name="Own action",
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
    )
    AutomationFactory(
        campaign=campaign,
        name="Pricing only",
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=other_link,
    )
    AutomationFactory(
        campaign=campaign,
        name="Form sent",
        trigger_event_type=EventType.FORM_SUBMITTED,
        trigger_form=FormFactory(campaign=campaign),
    )
    AutomationFactory(
        campaign=campaign,
        name="Deleted any click",
        trigger_event_type=EventType.LINK_CLICKED,
        deleted_at=timezone.now(),
    )
    AutomationFactory(
        campaign=CampaignFactory(account=account),
        name="Another campaign's",
        trigger_event_type=EventType.LINK_CLICKED,
    )
    AutomationFactory(
        campaign=CampaignFactory(account=other_account),
        name="Another account's",
        trigger_event_type=EventType.LINK_CLICKED,
    )

    html = marketer_client.get(reverse("automations:link_detail", args=[link.pk])).content.decode()

    assert _any_link_rows(html) == ["Any SMS link", "Score every click"]
    assert reverse("automations:automation_edit", args=[any_click.pk]) in html
    assert reverse("automations:automation_runs", args=[any_click.pk]) in html
    # The link's own action is still listed as its action, not as an any-link one.
    assert 'data-action="Own action"' in html


def test_an_automation_the_page_lists_runs_on_a_click_of_this_link(account, campaign, link):
    """The list tells the truth: the engine runs an any-link automation for this link."""
    any_click = AutomationFactory(
        campaign=campaign, name="Score every click", trigger_event_type=EventType.LINK_CLICKED
    )
    contact = ContactFactory(account=account, superoffice_person_id=10)
    click = EventFactory(campaign=campaign, contact=contact, type=EventType.LINK_CLICKED, link=link)

    runs = runs_create_for_events(account=account, events=[click])

    assert [run.automation_id for run in runs] == [any_click.pk]


def test_a_link_with_no_any_link_automation_shows_no_such_list(marketer_client, link):
    html = marketer_client.get(reverse("automations:link_detail", args=[link.pk])).content.decode()

    assert 'data-testid="any-link-automations"' not in html
    assert "No actions: a click only shows the response." in html
