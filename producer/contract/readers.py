"""Consumer contracts: prove that every reader schema reads every writer version.

A consumer contract is the reader schema a downstream job was built against, kept
where the consumer lives (the reference consumers keep theirs in
``consumers/contracts/``). It may list, in a top-level ``"flashsale.requires"``
attribute, fields it needs to carry real values rather than their defaults.

For each (writer version, reader) pair the verdict has two parts:

1. Avro resolution, judged by Apache Avro's checker (``avro.compatibility``);
2. proof with data: sample records of the writer version, from the simulator with a
   fixed seed, encoded with the writer schema and decoded with the reader schema by
   fastavro's schema resolution; each required field must carry a non-default value.

A pair passes only if both hold. Failures name the pair, the field and the reason,
and a decoding failure is reported as such, never raised.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastavro

from producer.contract.catalog import EVENT_FAMILY, SchemaCatalog, parse_schema_text
from producer.contract.compat import LabelledSchema, check_reader_writer
from producer.errors import FlashsaleError, SchemaFileError
from producer.events import LATEST_VERSION, FlashSaleEvent
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

__all__ = [
    "REQUIRES",
    "ContractReport",
    "PairVerdict",
    "Reader",
    "Writer",
    "load_reader",
    "verify_contracts",
]

REQUIRES = "flashsale.requires"
SAMPLE_SEED = 20261127
SAMPLE_EVENTS = 400


@dataclass(frozen=True)
class Reader:
    name: str
    path: Path | None
    definition: Any
    parsed: Any
    schema: LabelledSchema
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Writer:
    name: str  # "v1", or "registry v3"
    definition: Any
    parsed: Any
    schema: LabelledSchema


@dataclass(frozen=True)
class PairVerdict:
    writer: str
    reader: str
    ok: bool
    problems: tuple[str, ...]
    records: int  # sample records decoded

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAIL"


@dataclass(frozen=True)
class ContractReport:
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    verdicts: tuple[PairVerdict, ...]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def verdict(self, writer: str, reader: str) -> PairVerdict:
        return next(v for v in self.verdicts if v.writer == writer and v.reader == reader)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "writers": list(self.writers),
            "readers": list(self.readers),
            "pairs": [
                {
                    "writer": v.writer,
                    "reader": v.reader,
                    "ok": v.ok,
                    "records": v.records,
                    "problems": list(v.problems),
                }
                for v in self.verdicts
            ],
        }

    def to_junit(self) -> str:
        suite = ElementTree.Element(
            "testsuite",
            name="flashsale contract verify",
            tests=str(len(self.verdicts)),
            failures=str(sum(not v.ok for v in self.verdicts)),
        )
        for v in self.verdicts:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"reader {v.reader}", name=f"writer {v.writer}"
            )
            if not v.ok:
                failure = ElementTree.SubElement(case, "failure", message=v.problems[0])
                failure.text = "\n".join(v.problems)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def load_reader(path: Path) -> Reader:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    definition, parsed, parsed_avro = parse_schema_text(text, path)
    requires = definition.get(REQUIRES, []) if isinstance(definition, dict) else []
    if not isinstance(requires, list) or not all(isinstance(f, str) for f in requires):
        raise SchemaFileError(path, f"{REQUIRES} must be a list of field names")
    fields = {f["name"] for f in definition.get("fields", [])}
    for name in requires:
        if name not in fields:
            raise SchemaFileError(path, f"{REQUIRES} names '{name}', which the reader lacks")
    name = path.stem
    return Reader(
        name, path, definition, parsed, LabelledSchema(name, parsed_avro), tuple(requires)
    )


def writer_from_text(name: str, text: str, where: object) -> Writer:
    definition, parsed, parsed_avro = parse_schema_text(text, where)
    return Writer(name, definition, parsed, LabelledSchema(name, parsed_avro))


def local_writers(catalog: SchemaCatalog) -> list[Writer]:
    """Every event version in the schema folder, oldest first."""
    return [writer_from_text(s.label, s.text, s.path) for s in catalog.versions(EVENT_FAMILY)]


_NO_DEFAULT = object()


def _sample_datum(event: FlashSaleEvent, writer: Writer) -> dict[str, Any]:
    """The event as a datum of ``writer``: known fields from the event, others at default."""
    full = event.to_avro(LATEST_VERSION)
    datum = {}
    for field in writer.definition.get("fields", []):
        name = field["name"]
        if name in full:
            datum[name] = full[name]
        else:
            default = field.get("default", _NO_DEFAULT)
            if default is _NO_DEFAULT:
                raise FlashsaleError(
                    f"writer {writer.name}: field '{name}' is new to this tool and has no "
                    "default, so no sample data can be made for it"
                )
            datum[name] = default
    return datum


def _samples(count: int) -> list[FlashSaleEvent]:
    """Events spread over a flash sale: every event type, sale fields, sold-out stock."""
    scenario = load_scenario("flash-sale")
    simulation = Simulation(scenario, SAMPLE_SEED, run_id="contract-sample")
    events = list(simulation.events(max_seconds=900))
    return events[:: max(1, len(events) // count)][:count]


def verify_pair(writer: Writer, reader: Reader, events: Sequence[FlashSaleEvent]) -> PairVerdict:
    """One writer version against one reader: Avro's verdict, then proof with data."""
    problems = [
        f"Avro resolution: {p}"
        for p in check_reader_writer(reader=reader.schema, writer=writer.schema)
    ]
    defaults = {name: _field_default(reader.definition, name) for name in reader.requires}
    unreadable: dict[str, set[str]] = {}  # reason -> event types it hit
    counts: dict[str, int] = {}  # problem -> how many sample records show it
    decoded = 0
    for event in events:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, writer.parsed, _sample_datum(event, writer))
        buffer.seek(0)
        try:
            record: Any = fastavro.schemaless_reader(buffer, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises several types for resolution failures
            reason = str(exc)
            unreadable.setdefault(reason, set()).add(event.event_type.value)
            counts[reason] = counts.get(reason, 0) + 1
            continue
        decoded += 1
        for name, default in defaults.items():
            if record.get(name) == default:
                counts[name] = counts.get(name, 0) + 1
    total = len(events)
    for reason, kinds in unreadable.items():
        problems.append(
            f"data: {', '.join(sorted(kinds))} records cannot be read: {reason} "
            f"[{counts[reason]} of {total} records]"
        )
    for name, default in defaults.items():
        if name in counts:
            problems.append(
                f"data: field '{name}' is required but {writer.name} data carries only its "
                f"default ({json.dumps(default)}) [{counts[name]} of {total} records]"
            )
    return PairVerdict(writer.name, reader.name, not problems, tuple(problems), decoded)


def _field_default(definition: Any, name: str) -> Any:
    for field in definition.get("fields", []):
        if field["name"] == name:
            return field.get("default")
    return None


def verify_contracts(
    writers: Sequence[Writer],
    readers: Sequence[Reader],
    samples: int = SAMPLE_EVENTS,
    on_pair: Callable[[int, int, str], None] | None = None,
) -> ContractReport:
    """Every writer against every reader; see the module doc. ``on_pair(done, total,
    name)`` is told of each pair as it is checked."""
    events = _samples(samples)
    pairs = [(w, r) for w in writers for r in readers]
    verdicts = []
    for done, (writer, reader) in enumerate(pairs, 1):
        verdicts.append(verify_pair(writer, reader, events))
        if on_pair is not None:
            on_pair(done, len(pairs), f"{writer.name} x {reader.name}")
    return ContractReport(
        writers=tuple(w.name for w in writers),
        readers=tuple(r.name for r in readers),
        verdicts=tuple(verdicts),
    )
