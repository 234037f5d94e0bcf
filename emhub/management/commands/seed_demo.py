from django.core.management.base import BaseCommand
from django.db import transaction

from emhub.demo import demo_seed


class Command(BaseCommand):
    help = "Create (or refresh) the demo account with a marketer and an admin. Safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument(
            "--netserver-url", default="", help="Point the demo account at this NetServer."
        )

    @transaction.atomic
    def handle(self, *args, netserver_url, **options):
        seeded = demo_seed(netserver_url=netserver_url)
        for line in seeded.sign_in_lines():
            self.stdout.write(line)
