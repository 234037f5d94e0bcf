from django.core.management.base import BaseCommand, CommandError

from emhub.models import Account
from emhub.services import api_key_issue


class Command(BaseCommand):
    help = "Issue a new API key for an account and print it (the key is stored hashed only)."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="The account's slug, e.g. demo.")
        parser.add_argument("--name", default="created from the command line")

    def handle(self, *args, account, name, **options):
        found = Account.objects.filter(slug=account).first()
        if found is None:
            raise CommandError(f"No account with slug '{account}'.")
        issued = api_key_issue(account=found, name=name)
        self.stdout.write(issued.raw_key)
