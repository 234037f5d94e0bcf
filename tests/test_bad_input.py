"""Bad input gets a 400 with a message, never a 500: tests/probe_bad_input.py against the
live test server, on PostgreSQL and on SQLite."""

import logging

import pytest

from campaigns.services import form_action_url
from emhub.services import api_key_issue

from .campaigns.factories import CampaignFactory, ContactFactory, FormFactory, TrackedLinkFactory
from .probe_bad_input import Probe, Target

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]


def test_every_bad_input_of_the_probe_gets_a_400(live_server, account, settings, caplog):
    settings.EMHUB_PUBLIC_URL = live_server.url
    campaign = CampaignFactory(account=account)
    link = TrackedLinkFactory(campaign=campaign, url="https://www.example.com/offer")
    form = FormFactory(campaign=campaign)
    contact = ContactFactory(account=account, email="probe@example.com")
    target = Target(
        url=live_server.url,
        api_key=api_key_issue(account=account, name="probe").raw_key,
        campaign=campaign.pk,
        link_token=link.token,
        link_destination=link.url,
        form_action=form_action_url(form=form),
        email=contact.email,
    )
    with caplog.at_level(logging.ERROR, logger="django.request"):
        probe = Probe(target).run()
    assert probe.failures == []
    assert probe.checks >= 30
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
