"""For each URL keyword that names an object, how to make one in a given account.

The isolation sweep (tests/test_account_isolation.py) uses these to request another
account's objects; every app adds a maker when it adds a URL keyword.
"""

from campaigns.models import ContactImport, RecipientList, Sendout
from emhub.services import api_key_issue
from tests.automations.factories import AutomationFactory, run_in
from tests.campaigns.factories import (
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)
from tests.consent.factories import CycleFactory


def _import(account):
    return ContactImport.objects.create(account=account, source_type="selection", source_id=1).pk


def _recipient_list(account):
    return RecipientList.objects.create(account=account, name="Their list").pk


def _sendout(account):
    campaign = CampaignFactory(account=account)
    recipients = RecipientList.objects.create(account=account, name="Their recipients")
    return Sendout.objects.create(
        account=account, campaign=campaign, recipient_list=recipients, subject="Theirs", body="x"
    ).pk


def _panel_session(account):
    from leads.auth import PanelUser, panel_token_issue, panel_token_read

    user = PanelUser(
        account_id=account.pk,
        context_identifier="Cust99999",
        associate_id=9,
        name="Their rep",
        group_ids=None,
        method="oidc",
    )
    return panel_token_read(token=panel_token_issue(user=user)).session_id


def _api_key(account):
    return api_key_issue(account=account, name="account b key").api_key.pk


OBJECT_MAKERS = {
    "key_id": _api_key,
    "automation_id": lambda account: AutomationFactory(campaign__account=account).pk,
    "run_id": lambda account: run_in(account).pk,
    "cycle_id": lambda account: CycleFactory(account=account).pk,
    "campaign_id": lambda account: CampaignFactory(account=account).pk,
    "contact_id": lambda account: ContactFactory(account=account).pk,
    "link_id": lambda account: TrackedLinkFactory(campaign__account=account).pk,
    "form_id": lambda account: FormFactory(campaign__account=account).pk,
    "event_id": lambda account: EventFactory(campaign__account=account).pk,
    "import_id": _import,
    "list_id": _recipient_list,
    "sendout_id": _sendout,
    "panel_session_id": _panel_session,
}
