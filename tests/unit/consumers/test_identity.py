"""Silver's dedupe decisions on a real ``silver/copies`` Delta table (tmp_path): which
copy of an event is kept, which ids conflict, and that a copy seen again is not
counted twice."""

from __future__ import annotations

import hashlib
import random
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka.schema_registry.common.serde import SchemaId
from deltalake import DeltaTable, write_deltalake

from consumers.identity import (
    COPIES_SCHEMA,
    Copy,
    Decision,
    Identity,
    fingerprint,
    insert_new,
    where_of,
)

A, B = fingerprint(b"\x00\x00\x00\x00\x05first"), fingerprint(b"\x00\x00\x00\x00\x05other")


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    return Identity(tmp_path / "silver" / "copies")


def rows(identity: Identity) -> list[tuple[str, str, tuple[str, int, int, int]]]:
    table = DeltaTable(str(identity.path)).to_pyarrow_table()
    return sorted((r["event_id"], r["fingerprint"], where_of(r)) for r in table.to_pylist())


def test_copies_with_one_content_keep_the_lowest_coordinates(identity: Identity) -> None:
    identity.add(
        [
            Copy("e-1", A, ("t", 0, 4, 90)),
            Copy("e-1", A, ("t", 0, 2, 700)),
            Copy("e-1", A, ("t", 1, 0, 0)),
            Copy("e-2", B, ("t", 0, 5, 3)),
        ]
    )
    decision = identity.decide({"e-1", "e-2"})
    assert decision.conflicting == frozenset()
    assert decision.keep == {"e-1": ("t", 0, 2, 700), "e-2": ("t", 0, 5, 3)}
    assert sorted(c.where for c in decision.copies["e-1"]) == [
        ("t", 0, 2, 700),
        ("t", 0, 4, 90),
        ("t", 1, 0, 0),
    ]


def test_the_oldest_epoch_wins_over_lower_partition_and_offset(identity: Identity) -> None:
    identity.add([Copy("e-1", A, ("t", 1, 0, 0)), Copy("e-1", A, ("t", 0, 5, 900))])
    assert identity.decide({"e-1"}).keep == {"e-1": ("t", 0, 5, 900)}


def test_copies_with_other_content_conflict_and_none_is_kept(identity: Identity) -> None:
    identity.add([Copy("e-1", A, ("t", 0, 0, 1)), Copy("e-2", A, ("t", 0, 0, 2))])
    identity.add([Copy("e-1", B, ("t", 0, 3, 7))])
    decision = identity.decide({"e-1", "e-2"})
    assert decision.conflicting == frozenset({"e-1"})
    assert decision.keep == {"e-2": ("t", 0, 0, 2)}
    assert sorted((c.fingerprint, c.where) for c in decision.copies["e-1"]) == sorted(
        [(A, ("t", 0, 0, 1)), (B, ("t", 0, 3, 7))]
    )


def test_a_decision_covers_only_the_ids_asked(identity: Identity) -> None:
    identity.add([Copy("e-1", A, ("t", 0, 0, 1)), Copy("e-2", A, ("t", 0, 0, 2))])
    identity.add([Copy("e-2", B, ("t", 0, 0, 3))])
    decision = identity.decide({"e-1"})
    assert decision == Decision(
        frozenset(), {"e-1": ("t", 0, 0, 1)}, {"e-1": [Copy("e-1", A, ("t", 0, 0, 1))]}
    )


def test_no_ids_or_no_table_decide_nothing(identity: Identity) -> None:
    assert identity.decide({"e-1"}) == Decision(frozenset(), {}, {})
    identity.add([])
    assert not identity.exists()
    identity.add([Copy("e-1", A, ("t", 0, 0, 1))])
    assert identity.exists()
    assert identity.decide(set()) == Decision(frozenset(), {}, {})


def test_a_copy_seen_again_is_recorded_once(identity: Identity) -> None:
    first = [Copy("e-1", A, ("t", 0, 0, 1)), Copy("e-2", B, ("t", 2, 1, 1))]
    identity.add(first)
    identity.add([*first, Copy("e-1", A, ("t", 1, 0, 1))])
    assert rows(identity) == [
        ("e-1", A, ("t", 0, 0, 1)),
        ("e-1", A, ("t", 1, 0, 1)),
        ("e-2", B, ("t", 2, 1, 1)),
    ]


@pytest.mark.parametrize(
    "other",
    [("u", 0, 0, 1), ("t", 1, 0, 1), ("t", 0, 1, 1), ("t", 0, 0, 2)],
    ids=["topic", "epoch", "partition", "offset"],
)
def test_copies_differing_in_one_coordinate_are_two_copies(
    identity: Identity, other: tuple[str, int, int, int]
) -> None:
    identity.add([Copy("e-1", A, ("t", 0, 0, 1))])
    identity.add([Copy("e-1", A, other)])
    assert [r[2] for r in rows(identity)] == sorted([("t", 0, 0, 1), other])


def test_an_older_table_without_epochs_gets_them_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "copies"
    old = pa.schema([f for f in COPIES_SCHEMA if f.name != "kafka_topic_epoch"])
    write_deltalake(
        str(path),
        pa.Table.from_pylist(
            [
                {
                    "event_id": "e-1",
                    "fingerprint": A,
                    "kafka_topic": "t",
                    "kafka_partition": 0,
                    "kafka_offset": 1,
                }
            ],
            schema=old,
        ),
    )
    identity = Identity(path)
    identity.add([Copy("e-1", A, ("t", 0, 0, 1)), Copy("e-1", A, ("t", 1, 0, 1))])
    assert rows(identity) == [("e-1", A, ("t", 0, 0, 1)), ("e-1", A, ("t", 1, 0, 1))]


def test_insert_new_creates_the_table_then_adds_only_unseen_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "quarantine"
    schema = pa.schema(
        [
            pa.field("kafka_topic", pa.string()),
            pa.field("kafka_topic_epoch", pa.int32()),
            pa.field("kafka_partition", pa.int32()),
            pa.field("kafka_offset", pa.int64()),
            pa.field("reason", pa.string()),
        ]
    )

    def batch(*offsets: int, reason: str) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {
                    "kafka_topic": "t",
                    "kafka_topic_epoch": 0,
                    "kafka_partition": 0,
                    "kafka_offset": o,
                    "reason": reason,
                }
                for o in offsets
            ],
            schema=schema,
        )

    insert_new(path, batch(1, 2, reason="first"))
    insert_new(path, batch(2, 3, reason="second"))
    got = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    assert sorted((r["kafka_offset"], r["reason"]) for r in got) == [
        (1, "first"),
        (2, "first"),
        (3, "second"),
    ]


def test_coordinates_of_a_row_read_a_missing_epoch_as_zero() -> None:
    row = {"kafka_topic": "t", "kafka_topic_epoch": 3, "kafka_partition": 1, "kafka_offset": 9}
    assert where_of(row) == ("t", 3, 1, 9)
    assert where_of({**row, "kafka_topic_epoch": None}) == ("t", 0, 1, 9)
    del row["kafka_topic_epoch"]
    assert where_of(row) == ("t", 0, 1, 9)


def test_a_fingerprint_tells_contents_apart_and_fits_its_column() -> None:
    assert fingerprint(b"abc") == fingerprint(b"abc")
    assert fingerprint(b"abc") != fingerprint(b"abd")
    assert len(fingerprint(b"abc")) == 32
    assert int(fingerprint(b"abc"), 16) >= 0  # hexadecimal


# The fingerprint is over the content as written, whatever the framing: a record framed
# by the header (bare body, writer in __value_schema_id) is hashed as the prefix-framed
# record of the same writer and body; the headers are made by confluent-kafka's SchemaId.
GUID = "0f8b2c3a-6e3d-4c1e-9a57-3f0c6b0d9e21"
BODY = b"\x0ahello"
PREFIXED = b"\x00\x00\x00\x01\x2c" + BODY  # schema id 300


def in_header(schema_id: int | None = None, guid: str | None = None) -> list[tuple[str, bytes]]:
    reference = SchemaId("AVRO", schema_id=schema_id, guid=guid)
    return [("__value_schema_id", reference.guid_to_bytes() if guid else reference.id_to_bytes())]


def test_a_prefixed_record_is_fingerprinted_by_its_bytes_as_before() -> None:
    # the fingerprints silver/copies already holds stay valid
    assert fingerprint(PREFIXED) == hashlib.sha256(PREFIXED).hexdigest()[:32]
    assert fingerprint(PREFIXED, []) == fingerprint(PREFIXED)


def test_a_header_framed_record_has_the_fingerprint_of_the_same_content_prefixed() -> None:
    ids = {GUID: 300}.get
    assert fingerprint(BODY, in_header(guid=GUID), ids) == fingerprint(PREFIXED)
    assert fingerprint(BODY, in_header(schema_id=300)) == fingerprint(PREFIXED)


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"\x0ahellO", in_header(guid=GUID)),  # another body
        (BODY, in_header(schema_id=301)),  # another writer
        (BODY, in_header(guid="1f8b2c3a-6e3d-4c1e-9a57-3f0c6b0d9e21")),  # its id is 301
    ],
    ids=["body", "writer-id", "writer-guid"],
)
def test_other_content_in_the_header_format_is_another_fingerprint(
    value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    ids = {GUID: 300, "1f8b2c3a-6e3d-4c1e-9a57-3f0c6b0d9e21": 301}.get
    assert fingerprint(value, headers, ids) != fingerprint(PREFIXED)


def test_a_guid_the_registry_gives_no_id_is_identified_by_itself() -> None:
    unresolved = fingerprint(BODY, in_header(guid=GUID), lambda guid: None)
    assert unresolved == fingerprint(BODY, in_header(guid=GUID))  # no resolver: the same
    assert unresolved != fingerprint(PREFIXED)
    assert unresolved == hashlib.sha256(b"\x01" + uuid.UUID(GUID).bytes + BODY).hexdigest()[:32]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recording_a_batch_is_adding_it_then_deciding_its_ids(tmp_path: Path, seed: int) -> None:
    # Silver's one-read path (record) against the two steps it replaces (add, decide):
    # batches that repeat coordinates, within and across batches, and ids whose copies
    # agree or not.
    rng = random.Random(seed)
    fast, reference = Identity(tmp_path / "fast"), Identity(tmp_path / "reference")
    for _ in range(6):
        batch = [
            Copy(
                f"e-{rng.randrange(8)}",
                rng.choice((A, A, A, B)),
                ("t", rng.randrange(2), rng.randrange(3), rng.randrange(6)),
            )
            for _ in range(rng.randrange(1, 12))
        ]
        # One record, one content: a copy seen again has the content it had.
        batch = list({c.where: c for c in batch}.values())
        seen = {w: Copy(e, f, w) for e, f, w in rows(reference)} if reference.exists() else {}
        batch = [seen.get(c.where, c) for c in batch]
        decided = fast.record(batch)
        reference.add(batch)
        assert in_order(decided) == in_order(reference.decide({c.event_id for c in batch}))
        assert rows(fast) == rows(reference)


def in_order(decision: Decision) -> Decision:
    """``decision`` with each id's copies by coordinates (their order is the table's)."""
    copies = {i: sorted(cs, key=lambda c: c.where) for i, cs in decision.copies.items()}
    return Decision(decision.conflicting, decision.keep, copies)


def test_recording_nothing_creates_nothing(identity: Identity) -> None:
    assert identity.record([]) == Decision(frozenset(), {}, {})
    assert not identity.exists()


def test_recording_into_an_older_table_gives_it_epochs(tmp_path: Path) -> None:
    path = tmp_path / "copies"
    old = pa.schema([f for f in COPIES_SCHEMA if f.name != "kafka_topic_epoch"])
    row = {"event_id": "e-1", "fingerprint": A, "kafka_topic": "t", "kafka_partition": 0}
    write_deltalake(str(path), pa.Table.from_pylist([{**row, "kafka_offset": 1}], schema=old))
    identity = Identity(path)
    decision = identity.record([Copy("e-1", A, ("t", 0, 0, 1)), Copy("e-1", A, ("t", 1, 0, 1))])
    assert decision.keep == {"e-1": ("t", 0, 0, 1)}
    assert rows(identity) == [("e-1", A, ("t", 0, 0, 1)), ("e-1", A, ("t", 1, 0, 1))]
    assert DeltaTable(str(path)).schema().to_arrow().names == COPIES_SCHEMA.names
