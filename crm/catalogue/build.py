"""Build the hub's copy of SuperOffice's archive catalogue from the reference data.

The reference folder (``superoffice-archive/``: providers.json, restriction-types.json,
encoded-values.md, mdo-lists.json) holds facts taken from SuperOffice's documentation
(SuperOfficeDocs/superoffice-docs, MIT). The copy keeps what the hub and its simulator
need: the providers the client queries with every column the client names on them
(restriction type and whether it sorts, as documented), the providers' entities, the
operators per restriction type, the encoded-value markers and every MDO list name.
Nothing here types a column: a name the client uses that the reference does not
document stops the build.

``python manage.py superoffice_catalogue`` writes it; a test rebuilds it from the
reference folder and fails when the committed copy differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

LICENCE_FILE = "LICENSE-SuperOfficeDocs"
DATA_FILE = "superoffice_archive.json"
HERE = Path(__file__).resolve().parent

# Restriction types the providers use with no operator table on the pages the reference
# read (restriction-types.json, usedInProvidersNote). Only those the client restricts on
# are listed, with what is taken instead and why; a tenant that disagrees shows it with a
# fault, and the name is reported as undocumented.
INFERRED_OPERATORS: dict[str, dict[str, Any]] = {
    "stringorPK": {
        "as": "string",
        "why": "a name column that also takes a primary key; SuperOffice's selection sample "
        "restricts one (name) with the string operator begins "
        "(docs/en/api/search/find-selection/index.md)",
    },
    "positiveString": {
        "as": "string",
        "why": "a text column; no operator table documented, the string operators assumed",
    },
}


class CatalogueError(Exception):
    """The client names something the reference does not document."""


def _load(source: Path, name: str) -> Any:
    return json.loads((source / name).read_text(encoding="utf-8"))


def _operators(restriction_types: dict[str, Any]) -> dict[str, list[str]]:
    operators = {kind: list(ops) for kind, ops in restriction_types["types"].items()}
    other = restriction_types["alsoDocumented"]["otherVersionOfRestrictionTypesPage"]
    # The same page in its 9.2 version adds the period operators to the date types and
    # documents the intArray (tags) operators.
    for kind in ("date", "unlimitedDate"):
        for op in other[f"{kind}_v9_2_and_newer"]:
            if op not in operators[kind]:
                operators[kind].append(op)
    operators["intArray"] = list(other["intArray"])
    return operators


_MARKER_ROW = re.compile(r"^\| `(?P<marker>[A-Z]+)` \| (?P<type>[^|]+?) \| (?P<example>[^|]+?) \|$")


def _markers(text: str) -> dict[str, dict[str, str]]:
    markers = {}
    for line in text.splitlines():
        match = _MARKER_ROW.match(line.strip())
        if match:
            example = match["example"].split("`")[1] if "`" in match["example"] else ""
            markers[match["marker"]] = {"type": match["type"], "example": example}
    return markers


def build(source: Path, needs: dict[str, set[str]]) -> dict[str, Any]:
    """The catalogue for ``needs`` (provider -> column names) from the reference folder."""
    providers_ref = _load(source, "providers.json")
    restriction_types = _load(source, "restriction-types.json")
    mdo = _load(source, "mdo-lists.json")
    operators = _operators(restriction_types)

    providers: dict[str, Any] = {}
    missing: list[str] = []
    used_types: set[str] = set()
    for name in sorted(needs):
        documented = providers_ref["providers"].get(name)
        if documented is None:
            missing.append(f"provider {name}")
            continue
        columns = {}
        for column in sorted(needs[name]):
            info = documented["columns"].get(column)
            if info is None:
                missing.append(f"{name}.{column}")
                continue
            columns[column] = {"restriction": info["restriction"], "orderBy": info["orderBy"]}
            if info["restriction"]:
                used_types.add(info["restriction"])
        providers[name] = {
            "class": documented["class"],
            "path": documented["path"],
            "commit": documented["commit"],
            "entities": [e["name"] for e in documented["entities"]],
            "columns": columns,
        }
    if missing:
        raise CatalogueError("Not in SuperOffice's documented catalogue: " + ", ".join(missing))

    inferred = {}
    for kind in sorted(used_types - set(operators)):
        if kind not in INFERRED_OPERATORS:
            raise CatalogueError(f"No operators documented or assumed for type {kind!r}")
        rule = INFERRED_OPERATORS[kind]
        inferred[kind] = {
            "operators": operators[rule["as"]],
            "as": rule["as"],
            "why": rule["why"],
        }

    return {
        "about": (
            "Generated by `python manage.py superoffice_catalogue`; do not edit. Facts from "
            "SuperOffice's documentation, repository SuperOfficeDocs/superoffice-docs "
            f"(MIT, {_copyright(source)}; licence text in {LICENCE_FILE}): "
            "the archive providers the hub queries with the columns it names on them, "
            "the operators per restriction type, the encoded-value markers and the MDO "
            "list names."
        ),
        "sources": {
            "providers": [
                {"path": f["path"], "commit": f["commit"]}
                for f in providers_ref["source"]["files"]
                if any(p["path"] == f["path"] for p in providers.values())
            ],
            "restrictionTypes": restriction_types["source"],
            "restrictionTypesOtherVersion": "the same page's 9.2 version: period operators "
            "for dates and the intArray operators",
            "encodedValues": _encoded_values_source(source),
            "mdoLists": mdo["source"],
        },
        "providers": providers,
        "operators": operators,
        "inferredOperators": inferred,
        "encodedValues": _markers((source / "encoded-values.md").read_text(encoding="utf-8")),
        "mdoLists": sorted(
            {item["name"] for item in mdo["tableLists"]}
            | {item["name"] for item in mdo["otherLists"]}
        ),
    }


def _encoded_values_source(source: Path) -> dict[str, str]:
    text = (source / "encoded-values.md").read_text(encoding="utf-8")
    match = re.search(r"`(docs/[^`]+encoded-values\.md)`\s*\(commit `([0-9a-f]+)`", text)
    return {"path": match.group(1), "commit": match.group(2)} if match else {}


def _copyright(source: Path) -> str:
    text = (source / "README.md").read_text(encoding="utf-8")
    match = re.search(r"Copyright \(c\) \d{4} SuperOffice Docs", text)
    return match.group(0) if match else "Copyright (c) 2020 SuperOffice Docs"


def render(catalogue: dict[str, Any]) -> str:
    return json.dumps(catalogue, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def client_needs() -> dict[str, set[str]]:
    from crm.client.queries import needed_names

    return needed_names()


def write(source: Path, target_dir: Path = HERE) -> Path:
    target = target_dir / DATA_FILE
    target.write_text(render(build(source, client_needs())), encoding="utf-8")
    return target
