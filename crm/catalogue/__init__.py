"""SuperOffice's documented archive catalogue, as far as the hub uses it.

Read by the client (the restriction type of a column tells how its values are
encoded) and by the NetServer simulator (which refuses what is not documented).
The data file is generated (``python manage.py superoffice_catalogue``), see
``build.py``; it carries SuperOffice's MIT attribution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .build import DATA_FILE

STRING_TYPES = frozenset({"string", "stringorPK", "positiveString"})
DATE_TYPES = frozenset({"date", "unlimitedDate"})


@dataclass(frozen=True)
class Column:
    name: str
    restriction: str | None  # None: the column takes no restriction
    order_by: bool


@dataclass(frozen=True)
class Provider:
    name: str
    entities: tuple[str, ...]
    columns: dict[str, Column]
    path: str


@dataclass(frozen=True)
class Catalogue:
    providers: dict[str, Provider]
    operators: dict[str, tuple[str, ...]]
    # Types with no documented operator table, and what is assumed for them.
    inferred_operators: dict[str, tuple[str, ...]]
    markers: dict[str, str]
    mdo_lists: frozenset[str]

    def column(self, provider: str, name: str) -> Column | None:
        found = self.providers.get(provider)
        return found.columns.get(name) if found else None

    def column_type(self, provider: str, name: str) -> str | None:
        column = self.column(provider, name)
        return column.restriction if column else None

    def operators_for(self, restriction: str | None) -> tuple[str, ...]:
        if restriction is None:
            return ()
        return self.operators.get(restriction) or self.inferred_operators.get(restriction, ())


def load(path: Path | None = None) -> Catalogue:
    data = json.loads((path or Path(__file__).resolve().parent / DATA_FILE).read_text("utf-8"))
    providers = {
        name: Provider(
            name=name,
            entities=tuple(p["entities"]),
            columns={
                column: Column(column, info["restriction"], info["orderBy"])
                for column, info in p["columns"].items()
            },
            path=p["path"],
        )
        for name, p in data["providers"].items()
    }
    return Catalogue(
        providers=providers,
        operators={kind: tuple(ops) for kind, ops in data["operators"].items()},
        inferred_operators={
            kind: tuple(rule["operators"]) for kind, rule in data["inferredOperators"].items()
        },
        markers={marker: info["type"] for marker, info in data["encodedValues"].items()},
        mdo_lists=frozenset(data["mdoLists"]),
    )


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped with the hub (read once per process)."""
    return load()
