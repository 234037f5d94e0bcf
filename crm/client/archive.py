"""Archive queries (Archive.GetArchiveListByColumns) and the decoding of their rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..wsdl import spec
from .transport import elements


def decode_archive(value: str | None) -> Any:
    """NetServer encodes archive values as [I:1], [DT:mm/dd/yyyy hh:mm:ss.fffff], [B:1]..."""
    if not value:
        return value
    if value.startswith("[") and value.endswith("]") and ":" in value:
        kind, raw = value[1:-1].split(":", 1)
        if kind == "I":
            return int(raw)
        if kind == "B":
            return raw in ("1", "true", "True")
        if kind in ("DT", "D"):
            fmt = "%m/%d/%Y %H:%M:%S.%f" if kind == "DT" else "%m/%d/%Y"
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
    return value


def restriction(name: str, value: Any, operator: str = "equals") -> dict[str, Any]:
    # Operators by restriction type (SuperOffice "Archive Provider Restriction Types"):
    # int "equals", string "is" (equals), datetime "afterTime" (after or equal).
    return {
        "Name": name,
        "Operator": operator,
        "Values": {"string": [str(value)]},
        "IsActive": True,
        "InterOperator": "And",
    }


class ArchiveMixin:
    """Archive.GetArchiveListByColumns, read as (primary key, {column: value}) rows."""

    # The archive answers no row count: counts page through the key column alone, the
    # largest page the documentation calls reasonable.
    _COUNT_PAGE_SIZE = 1000

    def _archive(
        self,
        *,
        provider: str,
        columns: list[str],
        restrictions: list[dict[str, Any]],
        order_by: str,
        page: int,
        page_size: int,
    ) -> list[tuple[int, dict[str, Any]]]:
        reply = self._call(
            "Archive",
            "GetArchiveListByColumns",
            raw_reply=self.parse_archive_directly,
            ProviderName=provider,
            Columns={"string": columns},
            SortOrder={"ArchiveOrderByInfo": [{"Name": order_by, "Direction": "ASC"}]},
            Restriction={"ArchiveRestrictionInfo": restrictions},
            Entities=None,
            Page=page,
            PageSize=page_size,
        )
        if self.parse_archive_directly:
            return archive_rows(reply, columns)
        result = []
        for item in elements(reply.Response, "ArchiveListItem"):
            data = {column: None for column in columns}
            for pair in elements(item.ColumnData, "ColumnDataKeyValuePair"):
                display = pair.Value.DisplayValue if pair.Value is not None else None
                data[pair.Key] = decode_archive(display)
            result.append((item.PrimaryKey, data))
        return result

    def _archive_count(self, *, provider: str, restriction: dict[str, Any], key: str) -> int:
        total, page = 0, 0
        while True:
            rows = self._archive(
                provider=provider,
                columns=[key],
                restrictions=[restriction],
                order_by=key,
                page=page,
                page_size=self._COUNT_PAGE_SIZE,
            )
            total += len(rows)
            if len(rows) < self._COUNT_PAGE_SIZE:
                return total
            page += 1


def archive_rows(body: Any, columns: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(PrimaryKey, {column: decoded value}) per ArchiveListItem of a
    GetArchiveListByColumnsResponse element, the same as the zeep path returns."""
    ns = f"{{{spec.NS}}}"
    item_tag, key_tag = f"{ns}ArchiveListItem", f"{ns}PrimaryKey"
    name_tag, display_tag = f"{ns}Key", f"{ns}DisplayValue"
    response = body.find(f"{ns}Response")
    if response is None:
        return []
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    name = None
    # One pass in document order over the four elements that matter, filtered by lxml in
    # C: an item, its PrimaryKey, then each column's Key and Value/DisplayValue (the
    # schema's sequence order). About a hundred times faster than zeep's objects.
    for element in response.iter(item_tag, key_tag, name_tag, display_tag):
        tag = element.tag
        if tag == item_tag:
            data = dict.fromkeys(columns)
            rows.append([0, data])
            name = None
        elif tag == key_tag:
            rows[-1][0] = int(element.text) if element.text else 0
        elif tag == name_tag:
            name = element.text
        elif name:
            data[name] = decode_archive(element.text or None)
            name = None
    return [(key, values) for key, values in rows]
