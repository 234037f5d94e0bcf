"""Demo automations for the embedded default, so a new user sees runs happen.

Two automations on the demo campaigns, a few fresh events from persons who are in the
simulator (their runs execute as soon as the worker is up) and a few from people who
are not (they wait in the Manage Automations Queue and the Lead Report).
"""

import logging

from django.utils import timezone

from campaigns.models import Campaign, Contact, EventType
from campaigns.services import events_ingest
from crm.errors import CrmError
from crm.services import client_for_account

from .models import Automation, AutomationType
from .services import automation_create

logger = logging.getLogger(__name__)

NEW_LEADS = (
    ("ines.berg@fjordtech.example", "Ines", "Berg", "Fjordtech AS"),
    ("tomas.lind@nordvik.example", "Tomas", "Lind", "Nordvik Logistics"),
    ("sara.holm@lysaker.example", "Sara", "Holm", "Lysaker Bygg"),
)


def demo_automations_seed(*, account, netserver_url: str = "") -> None:
    if not netserver_url or Automation.objects.filter(account=account).exists():
        return
    campaign = Campaign.objects.filter(account=account).order_by("created_at").first()
    link = campaign.links.order_by("id").first() if campaign else None
    form = campaign.forms.order_by("id").first() if campaign else None
    if campaign is None or link is None or form is None:
        return
    automation_create(
        account=account,
        campaign=campaign,
        name="Sale for every sign-up",
        type=AutomationType.CREATE_SALE,
        trigger_event_type=EventType.FORM_SUBMITTED,
        trigger_form=form,
        settings={
            "source_id": 1,
            "rating_id": 2,
            "description": "Signed up through {form} in {campaign} at {time}",
        },
        once_per_contact=True,
    )
    automation_create(
        account=account,
        campaign=campaign,
        name="Clicked: into the follow-up selection",
        type=AutomationType.ADD_TO_SELECTION,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        settings={"selection_id": 2},
    )
    try:
        members = client_for_account(account).selection_members(selection_id=1, page_size=8)
    except CrmError:
        logger.warning("Demo: the simulator did not answer; no matched demo events")
        members = None
    now = timezone.now()
    events = []
    for n, member in enumerate(members.members if members else []):
        if not member.email:
            continue
        contact, _ = Contact.objects.update_or_create(
            account=account,
            email=member.email.lower(),
            defaults={
                "first_name": member.first_name,
                "last_name": member.last_name,
                "company_name": member.company_name,
                "superoffice_person_id": member.person_id,
            },
        )
        kind = (
            {"type": EventType.FORM_SUBMITTED, "form": form.pk}
            if n % 2
            else {"type": EventType.LINK_CLICKED, "link": link.pk}
        )
        events.append(
            {
                "event_id": f"demo-auto-{n}",
                "campaign": campaign.pk,
                "email": contact.email,
                "occurred_at": now,
                **kind,
            }
        )
    for n, (email, first, last, company) in enumerate(NEW_LEADS):
        events.append(
            {
                "event_id": f"demo-lead-{n}",
                "campaign": campaign.pk,
                "email": email,
                "first_name": first,
                "last_name": last,
                "company_name": company,
                "type": EventType.FORM_SUBMITTED,
                "form": form.pk,
                "occurred_at": now,
                "data": {"fields": {"message": "Please call me about a demo."}},
            }
        )
    events_ingest(account=account, events=events)
