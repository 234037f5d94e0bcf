"""Write the hub's copy of SuperOffice's archive catalogue from the reference data.

python manage.py superoffice_catalogue [--source ../shared/reference/superoffice-archive]
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm.catalogue import build

DEFAULT_SOURCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "superoffice-archive"


class Command(BaseCommand):
    help = (
        "Regenerate crm/catalogue/superoffice_archive.json: the documented providers, "
        "columns, operators, encoded values and MDO list names the hub uses."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source", default=str(DEFAULT_SOURCE), help="the superoffice-archive folder"
        )
        parser.add_argument(
            "--check", action="store_true", help="only report whether the copy is current"
        )

    def handle(self, *args, source, check, **options):
        folder = Path(source)
        if not (folder / "providers.json").is_file():
            raise CommandError(f"No SuperOffice archive catalogue at {folder}")
        try:
            fresh = build.render(build.build(folder, build.client_needs()))
        except build.CatalogueError as exc:
            raise CommandError(str(exc)) from exc
        target = build.HERE / build.DATA_FILE
        if check:
            current = target.read_text(encoding="utf-8") if target.exists() else ""
            if current != fresh:
                raise CommandError(f"{target.name} differs from {folder}: regenerate it")
            self.stdout.write(f"{target.name} is current")
            return
        target.write_text(fresh, encoding="utf-8")
        self.stdout.write(f"Wrote {target}")
