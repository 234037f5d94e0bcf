from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "SuperOffice web panels"

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        """Let the demo's panels sign in through the local simulator's identity provider."""
        from urllib.parse import urlsplit

        from crm import simulator
        from crm.simulator import idp

        from .models import PanelSettings

        settings, _ = PanelSettings.objects.get_or_create(account=account)
        if not netserver_url or settings.oidc_issuer:
            return
        parts = urlsplit(netserver_url)
        root = f"{parts.scheme}://{parts.netloc}"
        settings.context_identifier = simulator.DEFAULT_CONTEXT_IDENTIFIER
        settings.oidc_issuer = root
        settings.oidc_client_id = idp.CLIENT_ID
        settings.oidc_client_secret = simulator.DEFAULT_APP_TOKEN
        settings.frame_ancestors = root
        settings.save()
