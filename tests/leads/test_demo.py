"""The embedded run's demo account: its panels sign in through the local simulator."""

import pytest
from django.apps import apps

from crm.simulator import idp
from leads.models import PanelSettings

pytestmark = pytest.mark.django_db


def test_the_demo_panels_sign_in_through_the_local_simulator(account):
    apps.get_app_config("leads").demo_seed(
        account=account, netserver_url="http://127.0.0.1:8089/Remote/Services88/"
    )

    settings = PanelSettings.objects.get(account=account)
    assert settings.oidc_issuer == "http://127.0.0.1:8089"
    assert settings.oidc_client_id == idp.CLIENT_ID
    assert settings.oidc_configured


def test_without_a_simulator_the_demo_panels_are_left_unconfigured(account):
    apps.get_app_config("leads").demo_seed(account=account, netserver_url="")

    assert not PanelSettings.objects.get(account=account).oidc_configured
