"""`flashsale schemas copy`: a registry migration in IMPORT mode, between two real
registries, after which records produced against the source decode through the
destination by their original ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.conftest import Endpoints, cli, own_registry

pytestmark = pytest.mark.slow

MONEY = {
    "type": "record",
    "name": "Money",
    "namespace": "shop",
    "fields": [{"name": "cents", "type": "long"}],
}
ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "total", "type": "shop.Money"}],
}
METADATA = {"properties": {"owner": "checkout"}}


def post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(url + path, json=body, timeout=10)
    assert answer.ok, answer.text
    return dict(answer.json())


def get(url: str, path: str) -> requests.Response:
    return requests.get(url + path, timeout=10)


def test_copy_keeps_ids_and_old_records_decode_through_the_destination(
    stack: Endpoints, topic: str, subject: str
) -> None:
    with own_registry() as (source, _), own_registry() as (destination, _):
        # ids in the source that a fresh registry would not hand out: a shared record
        # (referenced from another subject, with metadata) takes the first ones.
        money = post(source, "/subjects/money/versions", {"schema": json.dumps(MONEY)})
        order = post(
            source,
            "/subjects/order/versions",
            {
                "schema": json.dumps(ORDER),
                "references": [{"name": "shop.Money", "subject": "money", "version": 1}],
                "metadata": METADATA,
            },
        )
        registered = cli(stack, "schemas", "register", "--topic", topic,
                         "--schema-registry-url", source)  # fmt: skip
        assert registered.returncode == 0, registered.stderr
        produced = cli(stack, "produce", "--topic", topic, "--create-topic", "--events",
                       "20", "--schema-version", "1", "--quiet",
                       "--schema-registry-url", source)  # fmt: skip
        assert produced.returncode == 0, produced.stderr
        source_ids = {v["version"]: v["id"] for v in _versions(source, subject)}
        assert min(source_ids.values()) > 2  # not the ids a fresh registry would give

        # `money` is not asked for: it comes first, as `order` references it. The record
        # keys are Avro too: their subject goes along.
        subjects = ("--subject", "order", "--subject", f"{topic}-key", "--subject", subject)
        args = ("schemas", "copy", "--from", source, "--to", destination, *subjects)
        copied = cli(stack, *args)
        assert copied.returncode == 0, copied.stderr
        lines = copied.stdout.splitlines()
        assert lines[0] == f"money: version 1, id {money['id']} copied"
        assert lines[1] == f"order: version 1, id {order['id']} copied"
        assert f"{subject}: version 1, id {source_ids[1]} copied" in lines
        assert lines[-1].startswith(f"{len(lines) - 1} of {len(lines) - 1} versions copied")

        for name in ("money", "order", f"{topic}-key", subject):
            assert _versions(destination, name) == _versions(source, name)
        copied_order = get(destination, "/subjects/order/versions/1").json()
        assert copied_order["references"] == [
            {"name": "shop.Money", "subject": "money", "version": 1}
        ]
        assert copied_order["metadata"] == METADATA
        level = get(destination, f"/config/{subject}").json()["compatibilityLevel"]
        assert level == "FULL_TRANSITIVE"
        for name in ("money", "order", subject):  # the subjects' modes are restored (none)
            assert get(destination, f"/mode/{name}").json()["error_code"] == 40409

        # the records produced against the source, decoded through the destination
        read = cli(stack, "consume", "--topic", topic, "--from-beginning", "--max", "20",
                   "--show-schema-id", "--schema-registry-url", destination)  # fmt: skip
        assert read.returncode == 0, read.stderr
        rows = [json.loads(line) for line in read.stdout.splitlines()]
        assert len(rows) == 20
        assert {r["_schema_id"] for r in rows} == {source_ids[1]}
        assert len({r["event_id"] for r in rows}) == 20

        again = cli(stack, *args)  # idempotent: everything is there
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1].startswith(f"0 of {len(lines) - 1} versions copied")


def test_copy_refuses_a_destination_whose_ids_collide_and_writes_nothing(
    stack: Endpoints,
) -> None:
    with own_registry() as (source, _), own_registry() as (destination, _):
        post(source, "/subjects/money/versions", {"schema": json.dumps(MONEY)})
        taken = post(destination, "/subjects/other/versions", {"schema": '"string"'})
        assert taken["id"] == 1  # the id `money` has at the source

        refused = cli(stack, "schemas", "copy", "--from", source, "--to",
                      destination.replace("http://", "http://ops:s3cret@"))  # fmt: skip
        assert refused.returncode == 2
        assert refused.stdout == ""
        assert "s3cret" not in refused.stderr
        assert refused.stderr.splitlines() == [
            f"Error: {destination} already holds other "
            "schemas under the ids or versions to copy: id 1 is another schema; "
            "nothing was copied"
        ]
        assert get(destination, "/subjects").json() == ["other"]
        assert get(destination, "/mode/money").json()["error_code"] in (40401, 40409)


def _versions(url: str, subject: str) -> list[dict[str, Any]]:
    answer = get(url, f"/subjects/{subject}/versions")
    assert answer.ok, answer.text
    out = []
    for version in answer.json():
        found = get(url, f"/subjects/{subject}/versions/{version}").json()
        out.append({k: found.get(k) for k in ("version", "id", "guid", "schema", "references")})
    return out
