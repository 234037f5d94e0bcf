"""`python manage.py import_contacts --account SLUG (--selection ID | --project ID)
[--only-emarketing]`: the same import as the Imports page, run here with a progress bar."""

from django.core.management.base import BaseCommand, CommandError

from campaigns import imports
from campaigns.models import ContactImport
from emhub.models import Account

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Import contacts from a SuperOffice selection or project into an account."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="the account's slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--selection", type=int, help="SuperOffice selection id")
        source.add_argument("--project", type=int, help="SuperOffice project id")
        parser.add_argument(
            "--only-emarketing",
            action="store_true",
            help="only persons with the e-marketing switch on (an active EMARKETING consent)",
        )

    def handle(self, *args, **options):
        account = Account.objects.filter(slug=options["account"]).first()
        if account is None:
            raise CommandError(f"No account with the slug {options['account']!r}.")
        if options["selection"] is not None:
            source_type, source_id = ContactImport.SourceType.SELECTION, options["selection"]
        else:
            source_type, source_id = ContactImport.SourceType.PROJECT, options["project"]
        started = imports.contact_import_create(
            account=account,
            source_type=source_type,
            source_id=source_id,
            only_emarketing=options["only_emarketing"],
            enqueue=False,
        )
        done = imports.contact_import_run(import_id=started.pk, progress=self._bar)
        self.stdout.write("")
        if done is None or done.status != ContactImport.Status.DONE:
            error = done.error if done else "another worker holds it"
            raise CommandError(f"Import {started.pk} failed: {error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Import {done.pk}: {done.processed} persons read. Created {done.created}, "
                f"updated {done.updated}, skipped {done.skipped} (no email "
                f"{done.skipped_no_email}, invalid email {done.skipped_invalid_email}, "
                f"duplicate email {done.skipped_duplicate}, switch off {done.skipped_switch_off})."
            )
        )

    def _bar(self, contact_import: ContactImport) -> None:
        total = contact_import.total or 0
        filled = BAR_WIDTH * contact_import.percent // 100
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        # One line redrawn in place on a terminal; a log file gets one line per page.
        self.stdout.write(
            f"\r[{bar}] {contact_import.percent:3d}% {contact_import.processed}/{total}",
            ending="\n" if not self.stdout.isatty() else "",
        )
        self.stdout.flush()
