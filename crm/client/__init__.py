"""The SuperOffice NetServer SOAP client. The only package in the hub that imports zeep.

``NetServerClient`` is the one face the other apps use (through
``crm.services.client_for_account``). It returns the plain dataclasses of
``crm.types`` and raises only ``crm.errors``. Every SOAP call has a timeout, is
described by a ``CallRecord`` handed to the recorder (the call log), and parses XML
with no DTDs, entities or external references. zeep ``Client`` objects are built
once per (WSDL, timeout) per process; tickets are cached by the ``TicketStore`` and
renewed once when NetServer refuses one.

The package, by seam:
- ``transport``: the HTTP session and zeep transport, reply checks, error classes
  of a failed call, the call record;
- ``core``: settings, collaborators and one round trip (ticket header and renewal);
- ``authentication``: signing in and verifying web-panel users;
- ``archive``: archive queries and the decoding of their values;
- ``persons``, ``consents``, ``activities``, ``members``, ``tickets``, ``lists``,
  ``webhooks``:
  the operations, by agent.

Operation docs: https://docs.superoffice.com/en/api/reference/soap/Services88/
"""

from __future__ import annotations

from .activities import ActivityOperations
from .archive import ArchiveMixin
from .authentication import AuthenticationMixin
from .consents import ConsentOperations
from .core import (
    PARTNER_AGENT,
    ClientCore,
    ConnectionSettings,
    MemoryTicketStore,
    TicketStore,
    WsdlLocator,
    bundled_wsdl,
)
from .lists import LIST_SOURCES, ListOperations
from .members import MemberOperations
from .persons import PersonOperations
from .tickets import TicketOperations
from .transport import (
    STATS,
    ZEEP_SETTINGS,
    CallRecord,
    CallRecorder,
    clear_caches,
    redact,
)
from .webhooks import WebhookOperations

__all__ = [
    "LIST_SOURCES",
    "PARTNER_AGENT",
    "STATS",
    "ZEEP_SETTINGS",
    "CallRecord",
    "CallRecorder",
    "ConnectionSettings",
    "MemoryTicketStore",
    "NetServerClient",
    "TicketStore",
    "WsdlLocator",
    "bundled_wsdl",
    "clear_caches",
    "redact",
]


class NetServerClient(
    PersonOperations,
    ConsentOperations,
    ActivityOperations,
    MemberOperations,
    TicketOperations,
    WebhookOperations,
    ListOperations,
    AuthenticationMixin,
    ArchiveMixin,
    ClientCore,
):
    """One account's connection to its SuperOffice tenant.

    Cheap to create (zeep clients are shared per process); create one per unit of
    work with ``crm.services.client_for_account``.
    """
