"""The hub's copy of SuperOffice's archive catalogue: current, attributed, never hand-typed."""

import json
from pathlib import Path

import pytest

from crm.catalogue import build, catalogue

REFERENCE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "superoffice-archive"
)
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "providers.json").is_file(),
    reason=f"SuperOffice's archive catalogue reference is not available at {REFERENCE}",
)


@needs_reference
def test_the_committed_copy_is_what_the_reference_gives_for_the_clients_queries():
    fresh = build.render(build.build(REFERENCE, build.client_needs()))
    committed = (build.HERE / build.DATA_FILE).read_text(encoding="utf-8")
    assert committed == fresh, "run: python manage.py superoffice_catalogue"


@needs_reference
def test_a_column_the_reference_does_not_document_stops_the_build():
    with pytest.raises(build.CatalogueError, match=r"Person\.registered\b"):
        build.build(REFERENCE, {"Person": {"personId", "registered"}})
    with pytest.raises(build.CatalogueError, match="provider Nowhere"):
        build.build(REFERENCE, {"Nowhere": {"id"}})


@needs_reference
def test_types_are_copied_from_the_reference_not_typed():
    reference = json.loads((REFERENCE / "providers.json").read_text())["providers"]
    for provider in catalogue().providers.values():
        for column in provider.columns.values():
            documented = reference[provider.name]["columns"][column.name]
            assert (column.restriction, column.order_by) == (
                documented["restriction"],
                documented["orderBy"],
            )


def test_the_copy_carries_superoffices_attribution():
    data = json.loads((build.HERE / build.DATA_FILE).read_text(encoding="utf-8"))
    assert "SuperOfficeDocs/superoffice-docs" in data["about"] and "MIT" in data["about"]
    licence = (build.HERE / build.LICENCE_FILE).read_text()
    assert "Copyright (c) 2020 SuperOffice Docs" in licence and "MIT License" in licence


def test_the_copy_knows_what_the_client_relies_on():
    cat = catalogue()
    assert cat.column_type("ConsentPurpose", "consentPerson/updatedDate") == "date"
    assert "after" in cat.operators_for("date") and "afterTime" not in cat.operators_for("date")
    assert cat.operators_for("bool") == ("set",)
    assert "staticPerson" in cat.providers["ContactPersonStaticSelectionV2"].entities
    assert "crmscript" in cat.mdo_lists and "ejscript" not in cat.mdo_lists
    assert set(cat.markers) >= {"I", "F", "M", "D", "DT", "T", "B", "TS"}
