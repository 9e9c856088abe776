"""Table maintenance: compact a warehouse's small files, then vacuum what is safe.

Every pipeline round commits a few small files to each table, so after thousands of
rounds a reader opens thousands of files. :func:`compact_warehouse` runs delta-rs's
``optimize.compact()`` (bin-packs the small files into few, one new table version;
the rows and their values do not change) and then ``vacuum()`` on every Delta table
under the warehouse: Bronze, Silver, the quarantine and Gold.

Vacuum deletes only files the table no longer references *and* that were removed
longer ago than the retention: by default the table's
``delta.deletedFileRetentionDuration``, or delta-rs's default of one week, so a
reader still on an older version (a long query, a time-travel read, a streaming job
behind) never loses a file under it. A shorter retention is refused unless forced,
as delta-rs itself refuses it without ``enforce_retention_duration=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from consumers.errors import PipelineError, UnsafeRetention

__all__ = ["DEFAULT_RETENTION_HOURS", "Compacted", "compact_warehouse", "delta_tables"]

# delta-rs's retention when the table sets no delta.deletedFileRetentionDuration.
DEFAULT_RETENTION_HOURS = 168


@dataclass(frozen=True)
class Compacted:
    """One table's maintenance: its live files before and after, what vacuum deleted."""

    table: str  # the table's path under the warehouse, e.g. silver/events
    files_before: int
    files_after: int
    vacuumed: int


def delta_tables(warehouse: Path) -> list[Path]:
    """Every Delta table under the warehouse (a folder with a ``_delta_log``), sorted."""
    return sorted(log.parent for log in warehouse.rglob("_delta_log") if log.is_dir())


def compact_warehouse(
    warehouse: Path, retention_hours: int | None = None, force: bool = False
) -> list[Compacted]:
    """Compact then vacuum every table; ``retention_hours`` below the table's own
    retention (one week unless the table says otherwise) needs ``force``."""
    if retention_hours is not None and retention_hours < 0:
        raise PipelineError(f"compact: retention must not be negative, got {retention_hours}h")
    tables = delta_tables(warehouse)
    if not tables:
        raise PipelineError(f"compact: warehouse {warehouse}: no Delta tables in it")
    if retention_hours is not None and not force:
        for path in tables:
            allowed = _retention_hours(_open(warehouse, path))
            if retention_hours < allowed:
                raise UnsafeRetention(
                    f"compact: {path.relative_to(warehouse).as_posix()}: a retention of "
                    f"{retention_hours}h is below the table's {allowed}h, so a reader still on "
                    "an older version could lose files; give --force to vacuum anyway"
                )
    done = []
    for path in tables:
        name = path.relative_to(warehouse).as_posix()
        table = _open(warehouse, path)
        try:
            before = len(table.file_uris())
            table.optimize.compact()
            deleted = table.vacuum(
                retention_hours=retention_hours,
                dry_run=False,
                enforce_retention_duration=not force,
            )
            after = len(DeltaTable(str(path)).file_uris())
        except (DeltaError, OSError) as exc:
            raise PipelineError(f"compact: {name}: {exc}") from exc
        done.append(Compacted(name, before, after, len(deleted)))
    return done


def _open(warehouse: Path, path: Path) -> DeltaTable:
    try:
        return DeltaTable(str(path))
    except (DeltaError, OSError) as exc:
        raise PipelineError(f"compact: {path.relative_to(warehouse).as_posix()}: {exc}") from exc


def _retention_hours(table: DeltaTable) -> int:
    """The table's ``delta.deletedFileRetentionDuration`` in hours, or delta-rs's default."""
    setting = table.metadata().configuration.get("delta.deletedFileRetentionDuration")
    if not setting:
        return DEFAULT_RETENTION_HOURS
    # An interval such as "interval 7 days" or "interval 12 hours".
    parts = setting.lower().replace("interval", "").split()
    units = {"hour": 1, "hours": 1, "day": 24, "days": 24, "week": 168, "weeks": 168}
    if len(parts) == 2 and parts[0].isdigit() and parts[1] in units:
        return int(parts[0]) * units[parts[1]]
    return DEFAULT_RETENTION_HOURS
