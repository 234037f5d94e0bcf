"""Connection settings, address checks, cached pick lists, the company creation switch."""

import pytest
from django.core.exceptions import ValidationError

from crm.errors import ConfigurationCrmError, PermanentCrmError
from crm.models import CrmListCache, SuperOfficeConnection
from crm.services import (
    client_for_account,
    connection_save,
    connection_test,
    crm_list_items,
    crm_person_create,
    netserver_url_normalize,
    netserver_url_validate,
)
from crm.types import NewCompany
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/Remote/Services88/",
        "https://localhost/Cust1/",
        "https://10.1.2.3/Cust1/",
        "https://192.168.0.10/Cust1/",
        "https://169.254.169.254/latest/",
        "https://[::1]/Cust1/",
        "https://100.64.0.1/Cust1/",
        "https://192.0.0.8/Cust1/",
        "https://[::ffff:127.0.0.1]/Cust1/",
        "https://[64:ff9b::a00:1]/Cust1/",
        "http://sod.superoffice.com/Cust1/",
        "ftp://sod.superoffice.com/Cust1/",
        "https://user:pw@sod.superoffice.com/Cust1/",
    ],
)
def test_internal_or_odd_addresses_are_refused(settings, url):
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(ValidationError):
        netserver_url_validate(url=url, resolve=False)


def test_public_https_address_is_accepted(settings):
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    netserver_url_validate(url="https://93.184.215.14/Cust1/Remote/Services88/", resolve=False)


def test_loopback_is_accepted_when_the_operator_allows_it(settings):
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = True
    netserver_url_validate(url="http://127.0.0.1:8765/Remote/Services88/")


def test_client_refuses_a_stored_internal_address(crm_account, settings):
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(ConfigurationCrmError, match="Refused"):
        client_for_account(crm_account)


def test_client_needs_a_connection():
    with pytest.raises(ConfigurationCrmError):
        client_for_account(AccountFactory())


def test_address_is_normalised_to_services88():
    assert netserver_url_normalize(url="https://sod.superoffice.com/Cust1") == (
        "https://sod.superoffice.com/Cust1/Remote/Services88/"
    )
    assert netserver_url_normalize(url="https://h/Cust1/Remote/Services88") == (
        "https://h/Cust1/Remote/Services88/"
    )


def test_saving_with_blank_secrets_keeps_the_stored_ones(crm_account, simulator):
    connection_save(
        account=crm_account,
        base_url=simulator.root_url,
        auth_mode="onsite",
        username="sim-admin",
        password="",
        application_token="",
    )
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    assert connection.password == simulator.password
    assert connection.application_token == simulator.app_token
    assert connection.base_url == simulator.base_url
    assert connection_test(account=crm_account).ok


def test_secrets_are_encrypted_at_rest(crm_account, simulator):
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SELECT password, application_token FROM crm_superofficeconnection")
        stored = cursor.fetchone()
    assert simulator.password not in stored[0]
    assert simulator.app_token not in stored[1]


def test_connection_test_says_who_or_why(crm_account, simulator):
    result = connection_test(account=crm_account)
    assert result.ok and "Ada Admin" in result.message
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    assert "Ada Admin" in connection.verified_as
    SuperOfficeConnection.objects.filter(account=crm_account).update(password="nope")
    result = connection_test(account=crm_account)
    assert not result.ok and "user name or password" in result.message
    assert SuperOfficeConnection.objects.get(account=crm_account).config_error


def test_pick_lists_are_cached_until_refreshed(crm_account, simulator):
    first = crm_list_items(account=crm_account, list_name="sources")
    calls = simulator.state("counters")["operations"].get("MDO.GetList")
    assert crm_list_items(account=crm_account, list_name="sources") == first
    assert simulator.state("counters")["operations"].get("MDO.GetList") == calls
    crm_list_items(account=crm_account, list_name="sources", refresh=True)
    assert simulator.state("counters")["operations"].get("MDO.GetList") == calls + 1
    assert CrmListCache.objects.filter(account=crm_account, list_name="sources").count() == 1


def test_company_creation_needs_the_admin_switch(crm_account):
    company = NewCompany(name="Polar AS")
    with pytest.raises(PermanentCrmError, match="switched off"):
        crm_person_create(
            account=crm_account, first_name="A", last_name="B", email="a@b.no", new_company=company
        )
    SuperOfficeConnection.objects.filter(account=crm_account).update(allow_company_creation=True)
    person = crm_person_create(
        account=crm_account, first_name="A", last_name="B", email="a@b.no", new_company=company
    )
    assert person.company_name == "Polar AS"


def test_crm_connect_command_points_an_account_at_the_simulator(simulator):
    from io import StringIO

    from django.core.management import call_command

    account = AccountFactory(slug="demo")
    out = StringIO()
    call_command(
        "crm_connect",
        "--account",
        "demo",
        "--url",
        simulator.root_url,
        "--allow-company-creation",
        stdout=out,
    )
    assert "Signed in as Ada Admin" in out.getvalue()
    connection = SuperOfficeConnection.objects.get(account=account)
    assert connection.allow_company_creation


def test_a_successful_connection_test_resumes_paused_work(crm_account, simulator):
    from automations.models import AutomationSettings
    from automations.services import account_crm_pause

    account_crm_pause(account=crm_account, reason="SuperOffice refused the user name or password")
    assert AutomationSettings.objects.get(account=crm_account).is_crm_paused
    SuperOfficeConnection.objects.filter(account=crm_account).update(password="nope")
    assert not connection_test(account=crm_account).ok
    assert AutomationSettings.objects.get(account=crm_account).is_crm_paused

    SuperOfficeConnection.objects.filter(account=crm_account).update(password=simulator.password)
    assert connection_test(account=crm_account).ok
    assert not AutomationSettings.objects.get(account=crm_account).is_crm_paused
