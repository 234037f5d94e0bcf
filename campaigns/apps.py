from datetime import timedelta

from django.apps import AppConfig

# The demo account's campaigns: name, description, links (name, url), forms (name).
DEMO_CAMPAIGNS = (
    (
        "Spring webinar: pipelines that close",
        "Invitation and reminders for the 45-minute webinar on pipeline hygiene.",
        (
            ("Register for the webinar", "https://www.example.com/webinars/pipelines/register"),
            ("Agenda", "https://www.example.com/webinars/pipelines#agenda"),
        ),
        ("Webinar registration",),
    ),
    (
        "Product launch newsletter, May",
        "Monthly newsletter announcing the new reporting module.",
        (
            ("Read the launch post", "https://www.example.com/blog/reporting-module"),
            ("Pricing", "https://www.example.com/pricing"),
        ),
        ("Request a demo",),
    ),
    (
        "Nordic Tech Expo follow-up",
        "Thank-you mail to visitors of our stand, with a meeting booking link.",
        (("Book a meeting", "https://www.example.com/meet"),),
        ("Contact me",),
    ),
)

DEMO_PEOPLE = (
    ("Anna", "Berg", "Nordlicht AS", "Head of Sales"),
    ("Lars", "Holm", "Fjord Logistics", "CEO"),
    ("Sofia", "Lind", "Kobber Design", "Marketing Manager"),
    ("Mikkel", "Dahl", "Havn Energi", "Sales Director"),
    ("Ingrid", "Nilsen", "Nordlicht AS", "Account Manager"),
    ("Jonas", "Eriksson", "Birch & Co", "CFO"),
    ("Emma", "Jensen", "Tundra Software", "CTO"),
    ("Oskar", "Lund", "Fjord Logistics", "Operations Manager"),
    ("Freja", "Sørensen", "Kobber Design", "Designer"),
    ("Henrik", "Aalto", "Saimaa Systems", "Product Owner"),
    ("Maja", "Virtanen", "Saimaa Systems", "Marketing Lead"),
    ("Nils", "Strand", "Havn Energi", "Buyer"),
    ("Elin", "Karlsson", "Birch & Co", "Office Manager"),
    ("Tobias", "Berg", "Tundra Software", "Developer"),
    ("Ida", "Hansen", "Polar Retail", "Head of E-commerce"),
    ("Erik", "Johansson", "Polar Retail", "Store Manager"),
    ("Liv", "Andersen", "Vik Consulting", "Partner"),
    ("Magnus", "Olsen", "Vik Consulting", "Consultant"),
    ("Sara", "Nyberg", "Granit Bygg", "Project Manager"),
    ("Peter", "Laine", "Granit Bygg", "Managing Director"),
    ("Hanna", "Koskinen", "Aurora Health", "Procurement"),
    ("Aksel", "Berge", "Aurora Health", "IT Manager"),
    ("Julie", "Moen", "Skog Media", "Editor"),
    ("Karl", "Ahlberg", "Skog Media", "Sales Rep"),
    ("Noora", "Mäkelä", "Tundra Software", "HR Manager"),
    ("Viktor", "Engström", "Fjord Logistics", "Fleet Manager"),
    ("Astrid", "Haugen", "Nordlicht AS", "CMO"),
    ("Rasmus", "Kjær", "Kobber Design", "Founder"),
)


def _email(first: str, last: str, company: str) -> str:
    ascii_map = str.maketrans({"ø": "o", "ä": "a", "å": "a", "ö": "o", "æ": "ae", "&": "", " ": ""})
    domain = company.lower().translate(ascii_map).replace(".", "")
    local = f"{first}.{last}".lower().translate(ascii_map)
    return f"{local}@{domain}.example"


def _demo_events(rng, *, campaign_id, people, links, form, sent_at) -> list[dict]:
    """A sendout's funnel: sent to most people, opened by some, clicked and submitted by fewer."""
    from .models import EventType

    events = []
    for i, person in enumerate(rng.sample(people, k=rng.randint(18, len(people)))):
        base = {"campaign": campaign_id, **person}
        key = f"demo-{campaign_id}-{i}"
        events.append(
            {
                **base,
                "event_id": f"{key}-sent",
                "type": EventType.EMAIL_SENT,
                "occurred_at": sent_at,
            }
        )
        if rng.random() > 0.65:
            continue
        opened = sent_at + timedelta(hours=rng.uniform(0.2, 96))
        events.append(
            {
                **base,
                "event_id": f"{key}-open",
                "type": EventType.EMAIL_OPENED,
                "occurred_at": opened,
            }
        )
        if rng.random() > 0.5:
            continue
        clicked = opened + timedelta(minutes=rng.randint(1, 30))
        link = rng.choice(links).pk
        events.append(
            {
                **base,
                "event_id": f"{key}-click",
                "type": EventType.LINK_CLICKED,
                "occurred_at": clicked,
                "link": link,
            }
        )
        if rng.random() > 0.4:
            continue
        fields = {
            "email": person["email"],
            "first_name": person["first_name"],
            "company_name": person["company_name"],
            "message": "Please get in touch about pricing.",
        }
        events.append(
            {
                **base,
                "event_id": f"{key}-form",
                "type": EventType.FORM_SUBMITTED,
                "occurred_at": clicked + timedelta(minutes=rng.randint(2, 60)),
                "form": form.pk,
                "data": {"fields": fields},
            }
        )
    return events


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def demo_seed(self, *, account, netserver_url: str = "") -> None:
        """Three campaigns with links, forms, a few dozen contacts and their events.

        Only for an account with no campaigns, so a re-run (or a marketer's own work)
        is left alone. Events go through events_ingest, as real ones do.
        """
        import random

        from django.db import transaction
        from django.utils import timezone

        from .models import Campaign, EmailSender
        from .services import campaign_create, events_ingest, form_create, tracked_link_create

        # The demo's e-mail goes to the file folder of the embedded default, from this sender.
        EmailSender.objects.get_or_create(
            account=account,
            defaults={"from_name": account.name, "from_email": "news@demo.example"},
        )
        if Campaign.objects.filter(account=account).exists():
            return
        rng = random.Random(4)  # the same demo every time
        now = timezone.now()
        people = [
            {
                "email": _email(first, last, company),
                "first_name": first,
                "last_name": last,
                "company_name": company,
                "title": title,
            }
            for first, last, company, title in DEMO_PEOPLE
        ]
        with transaction.atomic():
            for number, (name, description, links, forms) in enumerate(DEMO_CAMPAIGNS):
                campaign = campaign_create(account=account, name=name, description=description)
                link_rows = [
                    tracked_link_create(campaign=campaign, name=n, url=u) for n, u in links
                ]
                form_rows = [form_create(campaign=campaign, name=n, published=True) for n in forms]

                sent_at = now - timedelta(days=20 - number * 6, hours=rng.randint(0, 6))
                events = _demo_events(
                    rng,
                    campaign_id=campaign.pk,
                    people=people,
                    links=link_rows,
                    form=form_rows[0],
                    sent_at=sent_at,
                )
                events = [e for e in events if e["occurred_at"] <= now]
                events_ingest(account=account, events=events, source="sendout")
