"""The released contract: pinned, documented, typed the way DESIGN.md says."""

from __future__ import annotations

import pytest

from producer.contract.catalog import SchemaCatalog, lint_schema_dir
from tests.conftest import field_of, schema_definition

# SHA-256 of each released file's Parsing Canonical Form. A released version is never
# edited: if one of these changes, restore the file and add a new version instead.
RELEASED = {
    ("flash_sale_event", 1): "37aaafe3a19a41bff54d422045fe5c072a9045f94a0e64d27f994d3a5774f5d7",
    ("flash_sale_event", 2): "4e3545385c183ab10e93b8869a4f977b6207d1ef420f52ad92999b5c1154b311",
    ("flash_sale_event", 3): "878ac3906360419943c24217e814235a07b53d888cea1e27840bdf3f7189d26f",
    ("flash_sale_key", 1): "e9e5c1c9e4f6277339d1bcde0733a59bd42f8731f449da6dc13010a916930d48",
    ("flash_sale_product", 1): "df1afd73eac607d226e9a0017b268c141aeedbdc5475a74273ad22cfd91e79d8",
}

SEED_FIELDS = [
    "event_id",
    "event_source",
    "user_id",
    "product_id",
    "category",
    "brand",
    "event_type",
    "quantity",
    "price",
    "revenue",
    "timestamp",
]


@pytest.mark.parametrize(("family", "version"), sorted(RELEASED))
def test_released_versions_are_immutable(catalog: SchemaCatalog, family: str, version: int) -> None:
    assert catalog.get(version, family).fingerprint == RELEASED[(family, version)]


def test_every_file_is_released(catalog: SchemaCatalog) -> None:
    assert {(s.family, s.version) for s in catalog} == set(RELEASED)


def test_the_bundled_schemas_lint_clean(catalog: SchemaCatalog) -> None:
    assert lint_schema_dir(catalog.directory) == []


def test_v1_carries_the_original_scripts_fields_in_order(catalog: SchemaCatalog) -> None:
    assert catalog.get(1).field_names == SEED_FIELDS


def test_v2_adds_only_defaulted_fields(catalog: SchemaCatalog) -> None:
    v2 = schema_definition(2)
    added = catalog.get(2).field_names[len(SEED_FIELDS) :]
    assert catalog.get(2).field_names[: len(SEED_FIELDS)] == SEED_FIELDS
    assert added == ["session_id", "sale_id", "list_price", "discount_pct", "currency", "device"]
    for name in added:
        assert "default" in field_of(v2, name), name


@pytest.mark.parametrize("version", [1, 2, 3])
def test_types_follow_the_contract_rules(catalog: SchemaCatalog, version: int) -> None:
    d = schema_definition(version)
    assert catalog.get(version).full_name == "io.flashsale.events.FlashSaleEvent"
    for money in ("price", "revenue"):
        t = field_of(d, money)["type"]
        assert (t["type"], t["logicalType"], t["scale"]) == ("bytes", "decimal", 2)
    assert field_of(d, "timestamp")["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    for ident in ("event_id", "user_id", "product_id"):
        assert field_of(d, ident)["type"] == "string"
    assert field_of(d, "brand")["type"] == ["null", "string"]
    assert field_of(d, "brand")["default"] is None
    event_type = field_of(d, "event_type")["type"]
    assert event_type["symbols"] == ["unknown", "view", "cart", "purchase"]
    assert event_type["default"] == "unknown"
    assert all(f.get("doc") for f in d["fields"])


def test_v3_adds_the_stock_level_with_a_default(catalog: SchemaCatalog) -> None:
    assert catalog.get(3).field_names == [*catalog.get(2).field_names, "stock_remaining"]
    stock = field_of(schema_definition(3), "stock_remaining")
    assert (stock["type"], stock["default"]) == (["null", "int"], None)


def test_v2_enums_carry_a_default_symbol() -> None:
    device = field_of(schema_definition(2), "device")["type"]
    assert device["default"] in device["symbols"]
