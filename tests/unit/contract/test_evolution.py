"""The schema folder's evolution: the newest version checked, two versions diffed."""

from __future__ import annotations

from typing import Any

from producer.contract.catalog import SchemaCatalog, load_catalog
from producer.contract.compat import CompatibilityLevel
from producer.contract.evolution import check_latest, diff_versions
from tests.conftest import changed_definition, field_of


def test_the_newest_is_full_transitive_compatible_with_every_earlier(
    catalog: SchemaCatalog,
) -> None:
    report = check_latest(catalog, "flash_sale_event", CompatibilityLevel.FULL_TRANSITIVE)
    assert report.compatible
    assert report.checked_against == ("v1", "v2")


def test_diff_v1_v2_lists_added_fields_and_both_verdicts(catalog: SchemaCatalog) -> None:
    diff = diff_versions(catalog.get(1), catalog.get(2))
    assert [(c.name, c.change) for c in diff.changes] == [
        ("session_id", "added"),
        ("sale_id", "added"),
        ("list_price", "added"),
        ("discount_pct", "added"),
        ("currency", "added"),
        ("device", "added"),
    ]
    assert diff.full and not diff.backward and not diff.forward


def test_diff_reports_a_changed_field(schema_variant_dir: Any) -> None:
    def change(d: dict[str, Any]) -> None:
        field_of(d, "currency")["default"] = "EUR"

    folder = schema_variant_dir({"flash_sale_event-v3.avsc": changed_definition(2, change)})
    catalog = load_catalog(folder)
    diff = diff_versions(catalog.get(2), catalog.get(3))
    assert [(c.name, c.change, c.detail) for c in diff.changes] == [
        ("currency", "changed", '"string", default "USD" -> "string", default "EUR"')
    ]
