"""Run the NetServer simulator: ``python manage.py netserver_simulator --port 8765``."""

from django.conf import settings
from django.core.management.base import BaseCommand

from crm.simulator.server import make_server
from crm.simulator.state import Tenant

SIM = settings.NETSERVER_SIMULATOR


class Command(BaseCommand):
    help = "Serve a simulated SuperOffice NetServer (SOAP Services88) with seeded demo data."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
        parser.add_argument("--user", default=SIM["USERNAME"])
        parser.add_argument("--password", default=SIM["PASSWORD"])
        parser.add_argument("--app-token", default=SIM["APP_TOKEN"])
        parser.add_argument("--system-user-token", default=SIM["SYSTEM_USER_TOKEN"])
        parser.add_argument("--context", default=SIM["CONTEXT_IDENTIFIER"])
        parser.add_argument("--oidc-client-id", default=SIM["OIDC_CLIENT_ID"])
        parser.add_argument("--persons", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--big-selection",
            type=int,
            default=0,
            help="add selection 100 holding the first N persons (import benchmarks)",
        )
        parser.add_argument(
            "--ticket-ttl", type=float, default=6 * 3600, help="ticket lifetime in seconds"
        )
        parser.add_argument(
            "--allow-http-webhooks",
            action="store_true",
            help="accept plain-http loopback webhook targets (a real NetServer takes https only)",
        )

    def handle(self, *args, **options):
        tenant = Tenant(
            username=options["user"],
            password=options["password"],
            app_token=options["app_token"],
            persons=options["persons"],
            seed=options["seed"],
            system_user_token=options["system_user_token"],
            context_identifier=options["context"],
            ticket_ttl=options["ticket_ttl"],
            big_selection=options["big_selection"],
            oidc_client_id=options["oidc_client_id"],
            allow_http_webhooks=options["allow_http_webhooks"],
        )
        server = make_server(host=options["host"], port=options["port"], tenant=tenant)
        host, port = server.server_address[:2]
        self.stdout.write(
            f"NetServer simulator listening on http://{host}:{port}/Remote/Services88/\n"
            f"  port={port}\n"
            f"  user={options['user']} password={options['password']} "
            f"app-token={options['app_token']}\n"
            f"  system-user-token={options['system_user_token']} context={options['context']}\n"
            f"  persons={options['persons']} seed={options['seed']}\n"
            f"  control: POST http://{host}:{port}/_sim/control, state: GET /_sim/state/<what>"
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
