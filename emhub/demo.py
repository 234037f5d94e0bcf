"""The demo account the embedded default starts with: slug `demo`, a marketer and an admin."""

from dataclasses import dataclass, field

from django.apps import apps

from .models import Account, Membership
from .services import membership_grant, user_ensure

DEMO_SLUG = "demo"
DEMO_USERS = (
    # username, password, role, first name
    ("marketer", "demo-marketer-pass", Membership.Role.MARKETER, "Maria"),
    ("admin", "demo-admin-pass", Membership.Role.ADMIN, "Adam"),
)


@dataclass
class DemoSeed:
    account: Account
    users: list[tuple[str, str, str]] = field(default_factory=list)

    def sign_in_lines(self) -> list[str]:
        return [
            f"  {role:<9} user: {username:<10} password: {password}"
            for username, password, role in self.users
        ]


def demo_seed(*, netserver_url: str = "") -> DemoSeed:
    account, _ = Account.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Demo Company"})
    seeded = DemoSeed(account=account)
    for username, password, role, first_name in DEMO_USERS:
        user = user_ensure(
            username=username,
            email=f"{username}@demo.example",
            password=password,
            first_name=first_name,
        )
        membership_grant(user=user, account=account, role=role)
        seeded.users.append((username, password, role))
    # Each app that has demo data offers `demo.seed(account=..., netserver_url=...)`;
    # they run in INSTALLED_APPS order, so the CRM connection exists before campaigns.
    for app_config in apps.get_app_configs():
        seed = getattr(app_config, "demo_seed", None)
        if seed is not None:
            seed(account=account, netserver_url=netserver_url)
    return seeded
