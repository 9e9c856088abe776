"""The data-quality tally of a warehouse: what Bronze took in and where it went.

Every Bronze record ends in Silver, in quarantine (with its reason), or dropped as a
duplicate of a record already in Silver; so duplicates are what the other two leave.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

__all__ = ["DataQuality", "data_quality"]


@dataclass(frozen=True)
class DataQuality:
    records: int  # in Bronze
    events: int  # in Silver
    duplicates: int
    quarantined: dict[str, int] = field(default_factory=dict)  # by reason

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.quarantined.items())) or "none"
        return [
            f"data quality: {self.records} records in Bronze, {self.events} events in Silver, "
            f"{self.duplicates} duplicates dropped, "
            f"{sum(self.quarantined.values())} quarantined ({reasons})"
        ]


def _rows(path: Path, column: str) -> list[object]:
    if not DeltaTable.is_deltatable(str(path)):
        return []
    values: list[object] = (
        DeltaTable(str(path)).to_pyarrow_table(columns=[column])[column].to_pylist()
    )
    return values


def data_quality(warehouse: Path) -> DataQuality:
    records = len(_rows(warehouse / "bronze" / "events", "offset"))
    events = len(_rows(warehouse / "silver" / "events", "event_id"))
    reasons = Counter(
        str(r).split(":", 1)[0] for r in _rows(warehouse / "silver" / "quarantine", "reason")
    )
    quarantined = sum(reasons.values())
    return DataQuality(records, events, records - events - quarantined, dict(reasons))
