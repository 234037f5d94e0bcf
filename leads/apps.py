from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "SuperOffice web panels"

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        """Let the demo's panels sign in through the local simulator's identity provider."""
        from urllib.parse import urlsplit

        from django.conf import settings as django_settings

        from .models import PanelSettings

        settings, _ = PanelSettings.objects.get_or_create(account=account)
        if not netserver_url or settings.oidc_issuer:
            return
        parts = urlsplit(netserver_url)
        root = f"{parts.scheme}://{parts.netloc}"
        settings.context_identifier = django_settings.NETSERVER_SIMULATOR["CONTEXT_IDENTIFIER"]
        settings.oidc_issuer = root
        settings.oidc_client_id = django_settings.NETSERVER_SIMULATOR["OIDC_CLIENT_ID"]
        settings.oidc_client_secret = django_settings.NETSERVER_SIMULATOR["APP_TOKEN"]
        settings.frame_ancestors = root
        settings.save()
