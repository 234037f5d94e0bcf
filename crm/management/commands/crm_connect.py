"""Point an account's SuperOffice connection at a NetServer (e.g. the simulator).

python manage.py crm_connect --account demo --url http://127.0.0.1:8765/
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm.services import connection_save, connection_test
from emhub.models import Account

SIM = settings.NETSERVER_SIMULATOR


class Command(BaseCommand):
    help = "Create or update an account's on-site SuperOffice connection and test it."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="account slug")
        parser.add_argument("--url", required=True, help="NetServer address or tenant root")
        parser.add_argument("--user", default=SIM["USERNAME"])
        parser.add_argument("--password", default=SIM["PASSWORD"])
        parser.add_argument("--app-token", default=SIM["APP_TOKEN"])
        parser.add_argument("--allow-company-creation", action="store_true")
        parser.add_argument("--no-test", action="store_true", help="do not sign in to check")

    def handle(self, *args, **options):
        account = Account.objects.filter(slug=options["account"]).first()
        if account is None:
            raise CommandError(f"No account with slug {options['account']!r}")
        try:
            connection = connection_save(
                account=account,
                base_url=options["url"],
                auth_mode="onsite",
                username=options["user"],
                password=options["password"],
                application_token=options["app_token"],
                allow_company_creation=options["allow_company_creation"] or None,
            )
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        self.stdout.write(f"{account.slug}: SuperOffice connection at {connection.base_url}")
        if not options["no_test"]:
            result = connection_test(account=account)
            self.stdout.write(result.message)
            if not result.ok:
                raise CommandError("The connection test failed")
