import pytest
from django.apps import apps

from automations.models import Automation, Run, RunStatus

pytestmark = pytest.mark.django_db


def test_the_demo_has_automations_with_runs_to_execute_and_leads_waiting(crm_account, simulator):
    apps.get_app_config("campaigns").demo_seed(account=crm_account, netserver_url="")
    apps.get_app_config("automations").demo_seed(
        account=crm_account, netserver_url=simulator.base_url
    )

    assert Automation.objects.filter(account=crm_account).count() == 2
    runs = Run.objects.filter(account=crm_account)
    assert runs.filter(status=RunStatus.PENDING).count() >= 4  # persons the simulator knows
    assert runs.filter(status=RunStatus.WAITING_FOR_MATCH).count() == 3  # new leads

    # Seeding again changes nothing.
    apps.get_app_config("automations").demo_seed(
        account=crm_account, netserver_url=simulator.base_url
    )
    assert Run.objects.filter(account=crm_account).count() == runs.count()
