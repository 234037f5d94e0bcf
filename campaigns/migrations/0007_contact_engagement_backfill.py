"""Count the engaged events of the contacts that existed before events_ingest kept count.

In batches of contact ids, each in its own transaction, so a large contacts table is not
locked for the whole back-fill. The event types are written out: a migration must not
change meaning when the model's constant does.
"""

from django.db import migrations, transaction
from django.db.models import Count, Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

ENGAGED = ["form_submitted", "link_clicked", "sms_link_clicked", "landing_page_visited"]
BATCH = 2000


def backfill(apps, schema_editor):
    Contact = apps.get_model("campaigns", "Contact")
    Event = apps.get_model("campaigns", "Event")
    engaged = (
        Event.objects.filter(account=OuterRef("account"), contact=OuterRef("pk"), type__in=ENGAGED)
        .order_by()
        .values("contact")
    )
    last_id = 0
    while True:
        ids = list(
            Contact.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        with transaction.atomic():
            Contact.objects.filter(pk__gte=ids[0], pk__lte=ids[-1]).update(
                engaged_count=Coalesce(Subquery(engaged.annotate(n=Count("id")).values("n")), 0),
                engaged_first_at=Subquery(engaged.annotate(at=Min("occurred_at")).values("at")),
                engaged_last_at=Subquery(engaged.annotate(at=Max("occurred_at")).values("at")),
            )
        last_id = ids[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0006_contact_engagement"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
