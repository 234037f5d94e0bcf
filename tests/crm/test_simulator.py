"""The simulator as a server: its WSDL, its state endpoints, and the tenant-WSDL client mode."""

import pytest
import requests
import zeep

from crm.client import ZEEP_SETTINGS
from crm.models import SuperOfficeConnection
from crm.services import client_for_account

pytestmark = pytest.mark.django_db


def test_wsdl_is_served_with_the_simulator_address(simulator):
    client = zeep.Client(f"{simulator.base_url}Person.svc?wsdl", settings=ZEEP_SETTINGS)
    [service] = client.wsdl.services.values()
    [port] = service.ports.values()
    assert port.binding_options["address"] == f"{simulator.base_url}Person.svc"


def test_client_can_load_the_tenant_wsdl_once(crm_account, simulator):
    SuperOfficeConnection.objects.filter(account=crm_account).update(use_tenant_wsdl=True)
    for person_id in (1, 2, 3):
        assert client_for_account(crm_account).get_person(person_id=person_id).id == person_id
    # Person and SoPrincipal, each loaded once however many clients were made.
    assert simulator.state("counters")["wsdl_loads"] <= 2


def test_unknown_operation_is_a_soap_fault(simulator):
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<DeletePersonEntity xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88"/>'
        "</s:Body></s:Envelope>"
    )
    response = requests.post(f"{simulator.base_url}Person.svc", data=envelope, timeout=5)
    assert response.status_code == 500
    assert "<faultcode>" in response.text and "ExceptionInfo" in response.text


def test_seeded_data_is_deterministic_and_has_duplicates(simulator):
    first = simulator.state("persons/17")
    simulator.reset()
    assert simulator.state("persons/17") == first
    assert simulator.state("persons")["count"] == 300
    config = simulator.state("config")
    assert config["duplicate_email"] == "duplicate@example.com"
