from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "SuperOffice CRM"

    def ready(self) -> None:
        from . import call_cap  # noqa: F401 - registers the check of the call slots' lease

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        """Point the demo account at the local simulator with its sign-in from settings."""
        if not netserver_url:
            return
        from django.conf import settings

        from crm.services import connection_save

        SIM = settings.NETSERVER_SIMULATOR

        connection_save(
            account=account,
            base_url=netserver_url,
            auth_mode="onsite",
            username=SIM["USERNAME"],
            password=SIM["PASSWORD"],
            application_token=SIM["APP_TOKEN"],
            allow_company_creation=True,
            legal_basis_sync_enabled=True,
        )
