"""Tables that gain columns: older warehouses stay readable.

A column added to a table (a reader field, a coordinate) is added to an existing table
with an empty append (``schema_mode="merge"``) and, where it has one, filled with its
default in the rows written before. The topic epoch (see :mod:`consumers.bronze`) is
such a column: 0 in every row written before epochs existed. :func:`read` also
gives 0 where a table still lacks it, so code that reads never needs to know.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pa_fs
from deltalake import DeltaTable, write_deltalake

__all__ = [
    "EPOCH_COLUMNS",
    "WIRE_COLUMNS",
    "add_missing_columns",
    "arrow",
    "complete",
    "local_files",
    "read",
    "read_matching",
    "rows",
]

# The topic epoch, in Bronze and in Silver's tables; 0 where older rows lack it.
EPOCH_COLUMNS = {"topic_epoch": 0, "kafka_topic_epoch": 0}
# Bronze's wire-format columns: a table written before them held prefix-framed rows.
WIRE_COLUMNS: dict[str, Any] = {"schema_id_in": "prefix", "schema_guid": None}


def add_missing_columns(
    path: Path,
    schema: pa.Schema,
    fill: dict[str, Any] | None = None,
    partition_by: list[str] | None = None,
) -> list[pa.Field]:
    """Add to the table at ``path`` the columns of ``schema`` it lacks, filling those
    named in ``fill`` (and the epoch columns) with their value in the existing rows;
    the columns added."""
    if not DeltaTable.is_deltatable(str(path)):
        return []
    present = set(DeltaTable(str(path)).schema().to_arrow().names)
    missing = [f for f in schema if f.name not in present]
    if not missing:
        return []
    write_deltalake(
        str(path),
        schema.empty_table(),
        mode="append",
        schema_mode="merge",
        partition_by=partition_by,
    )
    values = {**EPOCH_COLUMNS, **(fill or {})}
    filled = {f.name: values[f.name] for f in missing if values.get(f.name) is not None}
    if filled:
        DeltaTable(str(path)).update(new_values=filled)
    return missing


def local_files(table: DeltaTable) -> pa_fs.FileSystem | None:
    """pyarrow's own filesystem, rooted at ``table`` when it is a local table (None
    for any other: delta-rs then gives its own).

    By default delta-rs reads a table's files through a filesystem written in Python,
    whose calls pyarrow's I/O threads make; a process that read a table that way and
    then exited was sometimes aborted ("terminate called without an active
    exception", SIGABRT), its I/O threads still bound to the interpreter. pyarrow's
    native filesystem has no such threads, and reads faster."""
    uri = table.table_uri
    if not uri.startswith("file://"):
        return None
    return pa_fs.SubTreeFileSystem(uri.removeprefix("file://").rstrip("/"), pa_fs.LocalFileSystem())


def arrow(table: DeltaTable, columns: list[str] | None = None) -> pa.Table:
    """``table.to_pyarrow_table(columns)``, its files read by :func:`local_files`."""
    return table.to_pyarrow_table(columns=columns, filesystem=local_files(table))


def read(path: Path, columns: list[str], version: int | None = None) -> pa.Table:
    """``columns`` of the table at ``path``; an epoch column it lacks reads as 0, a
    wire-format column as a prefix-framed row's."""
    table = DeltaTable(str(path), version=version)
    present = set(table.schema().to_arrow().names)
    return complete(arrow(table, [c for c in columns if c in present]), columns)


def read_matching(path: Path, columns: list[str], key: str, values: pa.Array) -> pa.Table:
    """The rows of the table at ``path`` whose ``key`` is one of ``values``: ``columns``
    of them, as :func:`read` gives them. The table is scanned a batch at a time and
    each batch filtered as it comes, so memory holds the matches, not the table."""
    table = DeltaTable(str(path))
    present = set(table.schema().to_arrow().names)
    wanted = [c for c in columns if c in present]
    scanner = table.to_pyarrow_dataset(filesystem=local_files(table)).scanner(columns=wanted)
    kept = [
        batch.filter(pc.is_in(batch.column(key), value_set=values))
        for batch in scanner.to_batches()
    ]
    out = pa.Table.from_batches(kept, schema=scanner.projected_schema)
    return complete(out, columns)


def complete(out: pa.Table, columns: list[str]) -> pa.Table:
    """``out`` with ``columns`` in order: an epoch column it lacks (or holds null in) is
    0, a wire-format column it lacks is a prefix-framed row's."""
    present = set(out.column_names)
    for i, name in enumerate(columns):
        if name in EPOCH_COLUMNS:
            if name not in present:
                out = out.add_column(i, name, pa.array([0] * out.num_rows, pa.int32()))
            else:
                out = out.set_column(i, name, pc.fill_null(out[name], 0))
        elif name in WIRE_COLUMNS and name not in present:
            value = WIRE_COLUMNS[name]
            out = out.add_column(i, name, pa.array([value] * out.num_rows, pa.string()))
    return out.select(columns)


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, fast where it holds timestamps with a time zone.

    pyarrow looks a value's zone up anew for each value it converts (an import of
    pytz is tried each time), which made this conversion most of Silver's time; here
    the values are converted as UTC wall times and given their zone afterwards."""
    zoned = [
        (i, f)
        for i, f in enumerate(table.schema)
        if pa.types.is_timestamp(f.type) and f.type.tz is not None
    ]
    if not zoned:
        out: list[dict[str, Any]] = table.to_pylist()
        return out
    for i, f in zoned:
        table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit)))
    out = table.to_pylist()
    for _, f in zoned:
        zone = _zone(str(f.type.tz))
        name = f.name
        for row in out:
            value = row[name]
            if value is not None:
                value = value.replace(tzinfo=UTC)
                row[name] = value if zone is UTC else value.astimezone(zone)
    return out


def _zone(name: str) -> tzinfo:
    if name in ("UTC", "+00:00", "Z", "Etc/UTC"):
        return UTC
    if name[:1] in "+-":
        return datetime.strptime(name, "%z").tzinfo or UTC
    return ZoneInfo(name)
