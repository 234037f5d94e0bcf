from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "SuperOffice CRM"

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        """Point the demo account at the local simulator with its default credentials."""
        if not netserver_url:
            return
        from crm import simulator
        from crm.services import connection_save

        connection_save(
            account=account,
            base_url=netserver_url,
            auth_mode="onsite",
            username=simulator.DEFAULT_USERNAME,
            password=simulator.DEFAULT_PASSWORD,
            application_token=simulator.DEFAULT_APP_TOKEN,
            allow_company_creation=True,
            legal_basis_sync_enabled=True,
        )
