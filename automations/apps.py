from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"

    def ready(self) -> None:
        # The link actions (set field, follow-up, request, script) live in their own
        # module, which builds on automations.actions: registered here, once both exist.
        from . import actions, link_actions

        actions.ACTIONS.update(link_actions.LINK_ACTIONS)

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        from .demo import demo_automations_seed

        demo_automations_seed(account=account, netserver_url=netserver_url)
