"""MDO, List and UserDefinedFieldInfo agents: the pick lists."""

from __future__ import annotations

from ..errors import PermanentCrmError
from ..types import ListItem
from .transport import elements

LIST_SOURCES: dict[str, tuple[str, str]] = {
    "sources": ("MDO", "source"),
    "ratings": ("MDO", "prob"),
    "activity_types": ("MDO", "task"),
    "interests": ("MDO", "persint"),
    "selections": ("MDO", "selection"),
    "projects": ("MDO", "project"),
    # The MDO provider listing spells these two as table lists, capitalised.
    "associates": ("MDO", "Associate"),
    "user_groups": ("MDO", "usergroup"),
    "countries": ("MDO", "Country"),
    "categories": ("MDO", "category"),
    "businesses": ("MDO", "business"),
    "ticket_priorities": ("MDO", "ticketpriority"),
    "ticket_categories": ("MDO", "ejcategory"),
    # CRMScripts a link action may run: "Archive of CRMScripts. Returns script id + name
    # of script" (docs/en/api/mdo-providers/reference/index.md; there is no ejscript list).
    "scripts": ("MDO", "crmscript"),
    # The person's user-defined and extra fields, with their types.
    "person_fields": ("UserDefinedFieldInfo", "person"),
    "legal_bases": ("List", "GetLegalBases"),
    "consent_purposes": ("List", "GetConsentPurposes"),
}


class ListOperations:
    """MDO.GetList, List.GetLegalBases / GetConsentPurposes, custom field infos."""

    def custom_field_infos(self, *, table: str = "person") -> list[ListItem]:
        """UserDefinedFieldInfo.GetCustomFieldInfoList(table, IncludeStandard false): the
        table's user-defined and extra fields as ListItem(key=field name, type=field type);
        ``id`` is the field's position, for pickers that want a number."""
        infos = self._call(
            "UserDefinedFieldInfo",
            "GetCustomFieldInfoList",
            TableName=table,
            IncludeStandard=False,
        ).Response
        return [
            ListItem(
                id=index,
                name=i.DisplayName or i.FieldName or "",
                key=i.FieldName or "",
                type=str(i.FieldType or ""),
            )
            for index, i in enumerate(elements(infos, "FieldInfoBase"), start=1)
            if i.FieldName
        ]

    def list_items(self, *, list_name: str) -> list[ListItem]:
        """MDO.GetList(<mdo list>) or List.GetLegalBases / List.GetConsentPurposes;
        see ``LIST_SOURCES`` for the names."""
        if list_name not in LIST_SOURCES:
            raise PermanentCrmError(f"Unknown list {list_name!r}")
        agent, name = LIST_SOURCES[list_name]
        if agent == "MDO":
            items = self._call(
                "MDO",
                "GetList",
                Name=name,
                ForceFlatList=True,
                AdditionalInfo="",
                OnlyHistory=False,
            ).Response
            return [
                ListItem(id=i.Id, name=i.Name or "")
                for i in elements(items, "MDOListItem")
                if not i.Deleted
            ]
        if agent == "UserDefinedFieldInfo":
            return self.custom_field_infos(table=name)
        items = self._call("List", name).Response
        if name == "GetLegalBases":
            return [
                ListItem(id=i.LegalBaseId, name=i.Name or "", key=i.Key or "")
                for i in elements(items, "LegalBase")
            ]
        return [
            ListItem(id=i.ConsentPurposeId, name=i.Name or "", key=i.Key or "")
            for i in elements(items, "ConsentPurpose")
        ]
