"""The slice of NetServer Services88 the hub uses, as data.

Besides the operations the client calls, it names a few the simulator answers so the
contract tests can hold it to NetServer: Get<Entity>Entity to read back what was saved,
and Appointment.GetPersonAppointments, which NetServer refuses for a contact person.

Written from the hub's SuperOffice reference notes (operation names, fields and
their relative order as SuperOffice publishes them). Every complex type here is
a subset of the official one with the official element order, so a message that
is valid against this description is also valid against SuperOffice's full WSDL.

This module is the single source for two things:
- the hub's own WSDL files next to it (rendered by ``render.py``), which the
  client loads by default;
- the simulator's serializer and parser, so the simulator can only ever answer
  with elements, names and order that the WSDL declares.
"""

from __future__ import annotations

NS = "http://www.superoffice.net/ws/crm/NetServer/Services88"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
PARTNER_NS = "http://www.superoffice.com/superid/partnersystemuser/0.1"

PRIMITIVES = {"int", "short", "string", "boolean", "dateTime", "double", "anyType"}

# ArrayOfint / ArrayOfstring live in the Microsoft arrays namespace.
ARRAYS_NS_TYPES = {"ArrayOfint": "int", "ArrayOfstring": "string"}

ENUMS: dict[str, list[str]] = {
    "ActivityStatus": ["Unknown", "NotStarted", "Started", "Completed"],
    "AppointmentType": [
        "Unknown",
        "inDiary",
        "inChecklist",
        "Note",
        "Document",
        "SavedReport",
        "BookingForDiary",
        "BookingForChecklist",
        "MergeDraft",
        "MergeFinal",
    ],
    "SaleStatus": ["Unknown", "Open", "Sold", "Lost", "Stalled", "SaintAll"],
    "OrderBySortType": ["ASC", "DESC"],
    "WebhookState": ["Unknown", "Active", "Stopped", "TooManyErrors"],
    "InterRestrictionOperator": ["None", "And", "Or"],
    "CustomFieldType": [
        "Unknown",
        "Integer",
        "ShortText",
        "LongText",
        "Date",
        "Blob",
        "Checkbox",
        "MdoList",
        "Decimal",
        "DateTime",
        "Time",
        "TimeSpan",
        "RelationTo",
        "Attachment",
        "DynamicLink",
        "ListText",
    ],
}

# Dictionaries serialize as repeated <PairName><Key/><Value/></PairName>.
# name -> (pair element name, value type)
DICTS: dict[str, tuple[str, str]] = {
    "StringDictionary": ("StringKeyValuePair", "string"),
    "SoExtraInfo": ("ExtraInfoNameValuePair", "string"),
    "ColumnDataDictionary": ("ColumnDataKeyValuePair", "ArchiveColumnData"),
    "StringObjectDictionary": ("StringObjectKeyValuePair", "anyType"),
}

# Complex types the hub never looks into but must send back as it read them (parts of a
# PersonEntity it saves): declared with `xs:any` content, so zeep keeps their XML as is.
OPAQUE = {
    "TableRight",
    "FieldPropertyDictionary",
    "Position",
    "Address",
    "TicketPriority",
    "CustomerLanguage",
    "UserInfo",
}

# Complex types whose trailing elements this description does not name (a later NetServer
# adds them at the end) are kept and sent back after the named ones: the types the hub
# reads and saves whole. A newer NetServer's Webhook carries ErrorsEmail (10.2.7) and
# Description, ConsecutiveErrors, LastError... (12.0.342) after UpdatedAssociate
# (SuperOfficeDocs: release-notes/10.2/api/includes/changes-10.2.7.5452.md,
# release-notes/api/changes/changes-netserver-12.0.342.0.md): a re-save keeps them.
OPEN_ENDED = {"PersonEntity", "Webhook"}

# Complex types: ordered (element name, type). "ArrayOfX" (X a complex type) is
# a sequence of <X> elements in the Services88 namespace.
TYPES: dict[str, list[tuple[str, str]]] = {
    "SoCredentials": [("Ticket", "string")],
    "SoTimeZone": [("SoTimeZoneId", "int"), ("SoTimeZoneLocationCode", "string")],
    "SoExceptionInfo": [
        ("Message", "string"),
        ("StackTrace", "string"),
        ("FriendlyText", "string"),
        ("ExceptionType", "string"),
        ("Source", "string"),
    ],
    "Associate": [
        ("AssociateId", "int"),
        ("Name", "string"),
        ("GroupIdx", "int"),
        ("FullName", "string"),
    ],
    "Contact": [("ContactId", "int"), ("Name", "string"), ("AssociateId", "int")],
    # The light Person carrier; GetPersonList answers with it (ContactId: the company).
    "Person": [
        ("PersonId", "int"),
        ("Firstname", "string"),
        ("Lastname", "string"),
        ("Email", "string"),
        ("ContactId", "int"),
        ("ContactName", "string"),
    ],
    "Project": [("ProjectId", "int"), ("Name", "string")],
    "Country": [("CountryId", "int"), ("Name", "string")],
    "Business": [("Id", "int"), ("Value", "string")],
    "Category": [("Id", "int"), ("Value", "string")],
    "Source": [("Id", "int"), ("Value", "string")],
    "Rating": [("Id", "int"), ("Value", "string")],
    "EntityElement": [
        ("Value", "string"),
        ("StrippedValue", "string"),
        ("Description", "string"),
    ],
    "SelectableMDOListItem": [("Id", "int"), ("Name", "string"), ("Selected", "boolean")],
    "ConsentInfo": [
        ("ConsentPersonId", "int"),
        ("Comment", "string"),
        ("Registered", "dateTime"),
        ("RegisteredAssociateId", "int"),
        ("Updated", "dateTime"),
        ("UpdatedAssociateId", "int"),
        ("LegalBaseId", "int"),
        ("LegalBaseKey", "string"),
        ("LegalBaseName", "string"),
        ("ConsentPurposeId", "int"),
        ("ConsentPurposeKey", "string"),
        ("ConsentPurposeName", "string"),
        ("ConsentSourceId", "int"),
        ("ConsentSourceKey", "string"),
        ("ConsentSourceName", "string"),
    ],
    # Every element of the official PersonEntity (its Carrier base's first), in their order:
    # the hub saves a person by reading the whole entity and sending it back changed
    # (NetServer has no partial update), and an element left out would be blanked.
    "PersonEntity": [
        ("TableRight", "TableRight"),
        ("FieldProperties", "FieldPropertyDictionary"),
        ("PersonId", "int"),
        ("Firstname", "string"),
        ("MiddleName", "string"),
        ("Lastname", "string"),
        ("Mrmrs", "string"),
        ("Title", "string"),
        ("UpdatedDate", "dateTime"),
        ("CreatedDate", "dateTime"),
        ("BirthDate", "dateTime"),
        ("CreatedBy", "Associate"),
        ("Emails", "ArrayOfEntityElement"),
        ("Description", "string"),
        ("IsAssociate", "boolean"),
        ("PrivatePhones", "ArrayOfEntityElement"),
        ("Faxes", "ArrayOfEntityElement"),
        ("MobilePhones", "ArrayOfEntityElement"),
        ("OfficePhones", "ArrayOfEntityElement"),
        ("OtherPhones", "ArrayOfEntityElement"),
        ("Position", "Position"),
        ("UpdatedBy", "Associate"),
        ("Contact", "Contact"),
        ("Country", "Country"),
        ("Interests", "ArrayOfSelectableMDOListItem"),
        ("PersonNumber", "string"),
        ("FullName", "string"),
        ("NoMailing", "boolean"),
        ("UsePersonAddress", "boolean"),
        ("Retired", "boolean"),
        ("Urls", "ArrayOfEntityElement"),
        ("FormalName", "string"),
        ("Address", "Address"),
        ("Post3", "string"),
        ("Post2", "string"),
        ("Post1", "string"),
        ("Kanalname", "string"),
        ("Kanafname", "string"),
        ("CorrespondingAssociate", "Associate"),
        ("Category", "Category"),
        ("Business", "Business"),
        ("Associate", "Associate"),
        ("Salutation", "string"),
        ("ActiveInterests", "int"),
        ("SupportAssociate", "Associate"),
        ("TicketPriority", "TicketPriority"),
        ("CustomerLanguage", "CustomerLanguage"),
        ("DbiAgentId", "int"),
        ("DbiKey", "string"),
        ("DbiLastModified", "dateTime"),
        ("DbiLastSyncronized", "dateTime"),
        ("SentInfo", "short"),
        ("ShowContactTickets", "short"),
        ("UserInfo", "UserInfo"),
        ("ChatEmails", "ArrayOfEntityElement"),
        ("InternetPhones", "ArrayOfEntityElement"),
        ("Source", "short"),
        ("ActiveErpLinks", "int"),
        ("ShipmentTypes", "ArrayOfSelectableMDOListItem"),
        ("Consents", "ArrayOfConsentInfo"),
        ("BounceEmails", "ArrayOfstring"),
        ("ActiveStatusMonitorId", "int"),
        ("UserDefinedFields", "StringDictionary"),
        ("ExtraFields", "StringDictionary"),
        ("CustomFields", "StringDictionary"),
    ],
    "ContactEntity": [
        ("ContactId", "int"),
        ("Name", "string"),
        ("Associate", "Associate"),
        ("Business", "Business"),
        ("Category", "Category"),
        ("Country", "Country"),
    ],
    "SaleEntity": [
        ("Associate", "Associate"),
        ("Contact", "Contact"),
        ("SaleText", "string"),
        ("Person", "Person"),
        ("Rating", "Rating"),
        ("Source", "Source"),
        ("Status", "SaleStatus"),
        ("Saledate", "dateTime"),
        ("SaleId", "int"),
        ("Heading", "string"),
    ],
    "Sale": [
        ("SaleId", "int"),
        ("Title", "string"),
        ("Description", "string"),
        ("PersonId", "int"),
    ],
    "TaskListItem": [("TaskListItemId", "int"), ("Value", "string")],
    "AppointmentEntity": [
        ("Associate", "Associate"),
        ("Contact", "Contact"),
        ("AppointmentId", "int"),
        ("Description", "string"),
        ("StartDate", "dateTime"),
        ("EndDate", "dateTime"),
        ("Person", "Person"),
        ("Project", "Project"),
        ("Type", "AppointmentType"),
        ("Completed", "ActivityStatus"),
        ("Task", "TaskListItem"),
    ],
    "Appointment": [
        ("AppointmentId", "int"),
        ("StartDate", "dateTime"),
        ("EndDate", "dateTime"),
        ("Description", "string"),
        ("PersonId", "int"),
    ],
    "ContactPersonId": [("PersonId", "int"), ("ContactId", "int")],
    "ProjectMember": [
        ("ProjectmemberId", "int"),
        ("ContactId", "int"),
        ("ProjectId", "int"),
        ("EmailAddress", "string"),
        ("Firstname", "string"),
        ("Lastname", "string"),
        ("PersonId", "int"),
    ],
    "ArchiveOrderByInfo": [("Name", "string"), ("Direction", "OrderBySortType")],
    "ArchiveRestrictionInfo": [
        ("Name", "string"),
        ("Operator", "string"),
        ("Values", "ArrayOfstring"),
        ("IsActive", "boolean"),
        ("InterOperator", "InterRestrictionOperator"),
    ],
    "ArchiveColumnData": [
        ("DisplayValue", "string"),
        ("TooltipHint", "string"),
        ("LinkHint", "string"),
    ],
    "ArchiveListItem": [
        ("EntityName", "string"),
        ("PrimaryKey", "int"),
        ("ColumnData", "ColumnDataDictionary"),
    ],
    "MDOListItem": [
        ("Id", "int"),
        ("Name", "string"),
        ("ToolTip", "string"),
        ("Deleted", "boolean"),
    ],
    "LegalBase": [("LegalBaseId", "int"), ("Name", "string"), ("Key", "string")],
    "ConsentPurpose": [("ConsentPurposeId", "int"), ("Name", "string"), ("Key", "string")],
    "TicketCategoryEntity": [("TicketCategoryId", "int"), ("Name", "string")],
    "TicketPriorityEntity": [("TicketPriorityId", "int"), ("Name", "string")],
    "TicketEntity": [
        ("TicketId", "int"),
        ("Title", "string"),
        ("CreatedAt", "dateTime"),
        ("OwnedBy", "Associate"),
        ("Category", "TicketCategoryEntity"),
        ("Priority", "TicketPriorityEntity"),
        ("Person", "Person"),
    ],
    # UserDefinedFieldInfo: one user-defined or extra field of a table (the base type;
    # SuperOffice answers with subtypes per field type, which add what the hub ignores).
    "FieldInfoBase": [
        ("FieldType", "CustomFieldType"),
        ("FieldName", "string"),
        ("DisplayName", "string"),
    ],
    # Webhook agent (docs/en/api/reference/soap/Services88/Webhook/SaveWebhook.md): every
    # element of the 10.0.2 carrier, in its order.
    "Webhook": [
        ("WebhookId", "int"),
        ("Name", "string"),
        ("Events", "ArrayOfstring"),
        ("TargetUrl", "string"),
        ("Secret", "string"),
        ("State", "WebhookState"),
        ("Type", "string"),
        ("Headers", "StringDictionary"),
        ("Properties", "StringObjectDictionary"),
        ("Registered", "dateTime"),
        ("RegisteredAssociate", "Associate"),
        ("Updated", "dateTime"),
        ("UpdatedAssociate", "Associate"),
    ],
    "SoPrincipalCarrier": [
        ("Associate", "string"),
        ("AssociateId", "int"),
        ("GroupId", "int"),
        ("FullName", "string"),
        ("EMailAddress", "string"),
        ("SecondaryGroups", "ArrayOfint"),
        ("DatabaseContextIdentifier", "string"),
    ],
}

Op = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def _response(type_name: str) -> list[tuple[str, str]]:
    return [("Response", type_name)]


# agent -> operation -> (request fields, response fields). The request element is
# named after the operation, the response element "<Operation>Response" (except
# SoPrincipal, whose operations all answer "AuthenticateResponse").
AGENTS: dict[str, dict[str, Op]] = {
    "SoPrincipal": {
        "AuthenticateUsernamePassword": (
            [("UserName", "string"), ("Password", "string")],
            [
                ("Response", "SoPrincipalCarrier"),
                ("Credentials", "SoCredentials"),
                ("AuthenticationSucceeded", "boolean"),
            ],
        ),
        # A web-panel user's access token from SuperOffice sign-in (OpenID Connect).
        "AuthenticateWithAccessToken": (
            [("AccessToken", "string")],
            [
                ("Response", "SoPrincipalCarrier"),
                ("Credentials", "SoCredentials"),
                ("AuthenticationSucceeded", "boolean"),
            ],
        ),
    },
    "Person": {
        "GetPersonEntity": ([("PersonEntityId", "int")], _response("PersonEntity")),
        # Many persons in one call, the light carrier each (no company owner).
        "GetPersonList": ([("PersonIds", "ArrayOfint")], _response("ArrayOfPerson")),
        "SavePersonEntity": ([("PersonEntity", "PersonEntity")], _response("PersonEntity")),
        "GetConsentInfos": ([("PersonId", "int")], _response("ArrayOfConsentInfo")),
        "SetConsent": (
            [
                ("PersonId", "int"),
                ("Purpose", "string"),
                ("Source", "string"),
                ("LegalBase", "string"),
                ("Comment", "string"),
            ],
            [],
        ),
        "RemoveConsent": ([("PersonId", "int"), ("Purpose", "string")], []),
        # NetServer 11.13 and later only (see NEWER_OPERATIONS).
        "UpdateInterests": (
            [
                ("PersonId", "int"),
                ("EnableInterestIds", "ArrayOfint"),
                ("DisableInterestIds", "ArrayOfint"),
            ],
            [],
        ),
    },
    "Contact": {
        "GetContactEntity": ([("ContactEntityId", "int")], _response("ContactEntity")),
        "SaveContactEntity": ([("ContactEntity", "ContactEntity")], _response("ContactEntity")),
    },
    "Sale": {
        "GetSaleEntity": ([("SaleEntityId", "int")], _response("SaleEntity")),
        "SaveSaleEntity": ([("SaleEntity", "SaleEntity")], _response("SaleEntity")),
        "GetSalesFromPerson": (
            [("PersonId", "int"), ("OnlyOpenSales", "boolean")],
            _response("ArrayOfSale"),
        ),
    },
    "Appointment": {
        "GetAppointmentEntity": (
            [("AppointmentEntityId", "int")],
            _response("AppointmentEntity"),
        ),
        "SaveAppointmentEntity": (
            [("AppointmentEntity", "AppointmentEntity")],
            _response("AppointmentEntity"),
        ),
        "GetPersonAppointments": (
            [
                ("PersonId", "int"),
                ("IncludeProjectAppointments", "boolean"),
                ("StartTime", "dateTime"),
                ("EndTime", "dateTime"),
                ("Count", "int"),
            ],
            _response("ArrayOfAppointment"),
        ),
    },
    "Selection": {
        "AddContactSelectionMembers": (
            [("SelectionId", "int"), ("ContactPersonIds", "ArrayOfContactPersonId")],
            [],
        ),
        "RemoveContactSelectionMembers": (
            [("SelectionId", "int"), ("ContactPersonIds", "ArrayOfContactPersonId")],
            [],
        ),
    },
    "Project": {
        "AddProjectMembers": (
            [("ProjectEntityId", "int"), ("ProjectMembers", "ArrayOfProjectMember")],
            [],
        ),
        "DeleteProjectMemberByIds": ([("ProjectMemberIds", "ArrayOfint")], []),
    },
    "Archive": {
        "GetArchiveListByColumns": (
            [
                ("ProviderName", "string"),
                ("Columns", "ArrayOfstring"),
                ("SortOrder", "ArrayOfArchiveOrderByInfo"),
                ("Restriction", "ArrayOfArchiveRestrictionInfo"),
                ("Entities", "ArrayOfstring"),
                ("Page", "int"),
                ("PageSize", "int"),
            ],
            _response("ArrayOfArchiveListItem"),
        ),
    },
    "MDO": {
        "GetList": (
            [
                ("Name", "string"),
                ("ForceFlatList", "boolean"),
                ("AdditionalInfo", "string"),
                ("OnlyHistory", "boolean"),
            ],
            _response("ArrayOfMDOListItem"),
        ),
    },
    "List": {
        "GetLegalBases": ([], _response("ArrayOfLegalBase")),
        "GetConsentPurposes": ([], _response("ArrayOfConsentPurpose")),
    },
    "Ticket": {
        "GetTicketEntity": ([("TicketEntityId", "int")], _response("TicketEntity")),
        "SaveTicketEntity": ([("TicketEntity", "TicketEntity")], _response("TicketEntity")),
    },
    "UserDefinedFieldInfo": {
        "GetCustomFieldInfoList": (
            [("TableName", "string"), ("IncludeStandard", "boolean")],
            _response("ArrayOfFieldInfoBase"),
        ),
    },
    # The hub's own webhook for consent changes (docs/en/automation/webhook/dev/register.md):
    # saved (created when WebhookId is 0; NetServer first POSTs a test event to TargetUrl),
    # read back for its state, found by name after an interrupted save, and deleted.
    "Webhook": {
        "SaveWebhook": ([("Webhook", "Webhook")], _response("Webhook")),
        "DeleteWebhook": ([("WebhookId", "int")], []),
        "GetWebhook": ([("WebhookId", "int")], _response("Webhook")),
        "GetAllWebhooks": (
            [("NameFilter", "string"), ("EventFilter", "string"), ("StatusFilter", "WebhookState")],
            _response("ArrayOfWebhook"),
        ),
        "GetLastError": ([("WebhookId", "int")], _response("string")),
    },
    "CRMScript": {
        "ExecuteScript": (
            [("CRMScriptId", "int"), ("Parameters", "StringDictionary")],
            _response("string"),
        ),
    },
}

# Operations only a NetServer newer than the official 10.0.2 WSDL has: left out of the
# hub's own WSDL; the client uses one where the tenant's WSDL offers it.
# Person.UpdateInterests: NetServer 11.13 (SuperOfficeDocs:
# docs/en/api/reference/soap/Services88/Person/UpdateInterests.md,
# release-notes/api/changes/changes-netserver-11.13.921.md).
NEWER_OPERATIONS = {("Person", "UpdateInterests")}


def operations_of(agent: str, *, newer: bool = False) -> dict[str, Op]:
    """The agent's operations, without the newer-only ones unless ``newer``."""
    return {
        name: op
        for name, op in AGENTS[agent].items()
        if newer or (agent, name) not in NEWER_OPERATIONS
    }


# Agents whose operations take only the ApplicationToken header (no ticket yet).
NO_TICKET_AGENTS = {"SoPrincipal"}

REQUEST_HEADERS = [
    ("ApplicationToken", "string"),
    ("Credentials", "SoCredentials"),
    ("TimeZone", "SoTimeZone"),
]
RESPONSE_HEADERS = [
    ("ExceptionInfo", "SoExceptionInfo"),
    ("ExtraInfo", "SoExtraInfo"),
    ("Succeeded", "boolean"),
    ("TimeZone", "SoTimeZone"),
]


def response_element(agent: str, operation: str) -> str:
    if agent == "SoPrincipal":
        return "AuthenticateResponse"
    return f"{operation}Response"


def soap_action(agent: str, operation: str) -> str:
    return f"{NS}/{agent}/{operation}"


def array_item(type_name: str) -> str | None:
    """The item type of an array type, or None when type_name is not an array."""
    if type_name in ARRAYS_NS_TYPES:
        return ARRAYS_NS_TYPES[type_name]
    if type_name.startswith("ArrayOf"):
        return type_name[len("ArrayOf") :]
    return None
