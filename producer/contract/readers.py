"""Consumer contracts: prove that every reader schema reads every writer version.

A consumer contract is the reader schema a downstream job was built against, kept
where the consumer lives (the reference consumers keep theirs in
``consumers/contracts/``). It may list, in a top-level ``"flashsale.requires"``
attribute, fields it needs to carry real values rather than their defaults.

For each (writer version, reader) pair the verdict has two parts:

1. Avro resolution, judged by Apache Avro's checker (``avro.compatibility``);
2. proof with data: sample records of the writer version, from the simulator with a
   fixed seed, encoded with the writer schema, framed in each wire format the
   consumers accept, located by the consumers' own wire reader
   (``consumers.wire.locate``) and decoded with the reader schema by fastavro's
   schema resolution; each required field must carry a non-default value.

The framings are confluent-kafka's own serializers of the schema reference:
``prefix`` (magic byte 0 and the 4-byte schema id before the body) and ``header``
(the bare body, magic byte 1 and the schema's GUID in the ``__value_schema_id``
header). A record must name its own writer: one the wire reader cannot read, or
that names another schema, fails. The ids and GUIDs are the registry's (``--against
registry``); local writers get the ones a fresh local registry gives them (ids 1, 2,
... in version order, GUIDs from the canonical text, as ``devstack.registry`` makes
them). A registered writer without a GUID (a registry older than Confluent 8) cannot
be header-framed: its header check is skipped, and the verdict says so in a note.

A pair passes only if both hold. A data problem every framing shows is reported once
(``data: ...``), one only some show names them (``data, header framing: ...``); each
framing's own result is in the JSON report. Failures name the pair, the field and
the reason, and a decoding failure is reported as such, never raised.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastavro
from confluent_kafka.schema_registry import (
    header_schema_id_serializer,
    prefix_schema_id_serializer,
)
from confluent_kafka.schema_registry.common.serde import SchemaId
from confluent_kafka.serialization import MessageField, SerializationContext

from consumers.wire import Headers, WireFormatError, WriterRef, locate
from producer.contract.catalog import EVENT_FAMILY, SchemaCatalog, parse_schema_text
from producer.contract.compat import LabelledSchema, check_reader_writer
from producer.errors import FlashsaleError, SchemaFileError
from producer.events import LATEST_VERSION, FlashSaleEvent
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

__all__ = [
    "FRAMINGS",
    "REQUIRES",
    "ContractReport",
    "FramingCheck",
    "PairVerdict",
    "Reader",
    "Writer",
    "load_reader",
    "verify_contracts",
]

REQUIRES = "flashsale.requires"
SAMPLE_SEED = 20261127
SAMPLE_EVENTS = 400

# The wire formats the consumers read, each written by confluent-kafka's serializer of
# the schema reference (the one ``schema.id.serializer`` names).
FRAMINGS: dict[str, Callable[[bytes, SerializationContext, SchemaId], bytes]] = {
    "prefix": prefix_schema_id_serializer,
    "header": header_schema_id_serializer,
}


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
    text: str = ""
    schema_id: int | None = None  # the registry's; None: numbered by verify_contracts
    guid: str | None = None  # the registry's (None: it gives none); local: computed

    @property
    def refs(self) -> tuple[WriterRef, ...]:
        """How a record can name this writer: by id, by GUID."""
        named = [WriterRef(schema_id=self.schema_id)] if self.schema_id is not None else []
        return (*named, *([WriterRef(guid=self.guid)] if self.guid is not None else []))


@dataclass(frozen=True)
class FramingCheck:
    """The data check of one pair in one wire format."""

    framing: str  # "prefix" or "header"
    named_by: str  # how each record names its writer: "schema id 1", "schema guid ..."
    records: int  # sample records decoded
    problems: tuple[str, ...]
    skipped: str | None = None  # why this framing was not checked

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PairVerdict:
    writer: str
    reader: str
    ok: bool
    problems: tuple[str, ...]
    records: int  # sample records decoded in every framing checked
    framings: tuple[FramingCheck, ...] = ()

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAIL"

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(
            f"writer {self.writer} x reader {self.reader}: {f.framing} framing not checked: "
            f"{f.skipped}"
            for f in self.framings
            if f.skipped is not None
        )


@dataclass(frozen=True)
class ContractReport:
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    verdicts: tuple[PairVerdict, ...]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    @property
    def notes(self) -> tuple[str, ...]:
        """What was not checked, and why (a framing a writer cannot be written in)."""
        return tuple(n for v in self.verdicts for n in v.notes)

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
                    "framings": [
                        {
                            "framing": f.framing,
                            "writer_named_by": f.named_by,
                            "checked": f.skipped is None,
                            "ok": f.ok,
                            "records": f.records,
                            "problems": list(f.problems),
                            **({"note": f.skipped} if f.skipped is not None else {}),
                        }
                        for f in v.framings
                    ],
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
            if v.notes:
                ElementTree.SubElement(case, "system-out").text = "\n".join(v.notes)
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


def writer_from_text(
    name: str,
    text: str,
    where: object,
    schema_id: int | None = None,
    guid: str | None = None,
) -> Writer:
    definition, parsed, parsed_avro = parse_schema_text(text, where)
    return Writer(
        name, definition, parsed, LabelledSchema(name, parsed_avro), text, schema_id, guid
    )


def local_writers(catalog: SchemaCatalog) -> list[Writer]:
    """Every event version in the schema folder, oldest first."""
    return [writer_from_text(s.label, s.text, s.path) for s in catalog.versions(EVENT_FAMILY)]


def local_guid(text: str) -> str:
    """The GUID the local registry gives ``text`` (registered without references,
    metadata or rules): the MD5 of its canonical text, as Confluent makes it."""
    from devstack.registry.schemas import CandidateSchema, guid_of

    return guid_of(CandidateSchema.from_request({"schema": text}).text, "[]", None, None)


def numbered(writers: Sequence[Writer]) -> list[Writer]:
    """``writers`` with the ids and GUIDs a fresh local registry would give the ones
    that have no id: ids 1, 2, ... in order, GUIDs from their text. A writer from a
    registry keeps the registry's id and GUID (or lack of one)."""
    used = {w.schema_id for w in writers if w.schema_id is not None}
    free = (i for i in range(1, len(writers) + len(used) + 1) if i not in used)
    return [
        w
        if w.schema_id is not None
        else replace(w, schema_id=next(free), guid=w.guid or local_guid(w.text))
        for w in writers
    ]


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


def frame(writer: Writer, body: bytes, framing: str) -> tuple[bytes, Headers]:
    """``body`` (the Avro encoding of a ``writer`` datum) as a Kafka value and headers,
    framed by confluent-kafka's serializer of the schema reference for ``framing``."""
    headers: list[tuple[str, str | bytes | None]] = []
    context = SerializationContext("contract", MessageField.VALUE, headers)
    value = FRAMINGS[framing](body, context, SchemaId("AVRO", writer.schema_id, writer.guid))
    return value, [(k, v.encode() if isinstance(v, str) else v) for k, v in headers]


Framed = dict[str, list[tuple[str, bytes, Headers]]]  # framing -> (event type, value, headers)


def framed_samples(writer: Writer, events: Sequence[FlashSaleEvent]) -> Framed:
    """The sample events as ``writer`` data, in each framing ``writer`` can be named in
    (a writer without a GUID has no header framing)."""
    bodies = []
    for event in events:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, writer.parsed, _sample_datum(event, writer))
        bodies.append((event.event_type.value, buffer.getvalue()))
    return {
        framing: [(kind, *frame(writer, body, framing)) for kind, body in bodies]
        for framing in FRAMINGS
        if framing != "header" or writer.guid is not None
    }


def verify_pair(
    writer: Writer,
    reader: Reader,
    events: Sequence[FlashSaleEvent],
    known: Mapping[WriterRef, Writer] | None = None,
    framed: Framed | None = None,
) -> PairVerdict:
    """One writer version against one reader: Avro's verdict, then proof with data in
    each framing. ``known``: every writer a record may name, by id and GUID (default:
    ``writer`` alone); ``framed``: :func:`framed_samples` of ``events``, if made."""
    problems = [
        f"Avro resolution: {p}"
        for p in check_reader_writer(reader=reader.schema, writer=writer.schema)
    ]
    if writer.schema_id is None:
        writer = numbered([writer])[0]
    known = known if known is not None else {ref: writer for ref in writer.refs}
    framed = framed if framed is not None else framed_samples(writer, events)
    checks = tuple(_check_framing(writer, reader, framed, known, f) for f in FRAMINGS)
    checked = [c for c in checks if c.skipped is None]
    for problem in dict.fromkeys(p for c in checked for p in c.problems):
        shown_by = [c.framing for c in checked if problem in c.problems]
        if len(shown_by) == len(checked):
            problems.append(f"data: {problem}")
        else:
            problems.append(f"data, {' and '.join(shown_by)} framing: {problem}")
    records = min((c.records for c in checked), default=0)
    return PairVerdict(writer.name, reader.name, not problems, tuple(problems), records, checks)


def _check_framing(
    writer: Writer,
    reader: Reader,
    framed: Framed,
    known: Mapping[WriterRef, Writer],
    framing: str,
) -> FramingCheck:
    """Each sample framed in ``framing``, read back as the consumers read a record."""
    if framing not in framed:
        return FramingCheck(
            framing, "-", 0, (), f"the registry gives {writer.name} no GUID to name it by"
        )
    named_by = str(WriterRef(schema_id=writer.schema_id))
    if framing == "header":
        named_by = str(WriterRef(guid=writer.guid))
    defaults = {name: _field_default(reader.definition, name) for name in reader.requires}
    unreadable: dict[str, set[str]] = {}  # reason -> event types it hit
    counts: dict[str, int] = {}  # problem -> how many sample records show it
    decoded = 0
    for kind, value, headers in framed[framing]:
        try:
            record = _read_as_consumers_do(value, headers, writer, reader, known)
        except Exception as exc:  # fastavro raises several types for resolution failures
            reason = str(exc)
            unreadable.setdefault(reason, set()).add(kind)
            counts[reason] = counts.get(reason, 0) + 1
            continue
        decoded += 1
        for name, default in defaults.items():
            if record.get(name) == default:
                counts[name] = counts.get(name, 0) + 1
    total = len(framed[framing])
    problems = [
        f"{', '.join(sorted(kinds))} records cannot be read: {reason} "
        f"[{counts[reason]} of {total} records]"
        for reason, kinds in unreadable.items()
    ]
    for name, default in defaults.items():
        if name in counts:
            problems.append(
                f"field '{name}' is required but {writer.name} data carries only its "
                f"default ({json.dumps(default)}) [{counts[name]} of {total} records]"
            )
    return FramingCheck(framing, named_by, decoded, tuple(problems))


class FramingError(Exception):
    """A record the consumers cannot take for one of ``writer``'s."""


def _read_as_consumers_do(
    value: bytes,
    headers: Headers,
    writer: Writer,
    reader: Reader,
    known: Mapping[WriterRef, Writer],
) -> Any:
    """The record as the consumers decode it: the wire reader finds the writer it
    names and the body, which must be ``writer``'s and be read to its last byte."""
    try:
        ref, body = locate(value, headers)
    except WireFormatError as exc:
        raise FramingError(f"the consumers' wire reader refuses the record: {exc}") from exc
    named = known.get(ref)
    if named is None:
        raise FramingError(f"the record names {ref}, which is no writer's")
    if named.name != writer.name:
        raise FramingError(f"the record names {ref}, which is {named.name}'s")
    buffer = io.BytesIO(body)
    record = fastavro.schemaless_reader(buffer, writer.parsed, reader.parsed)
    if buffer.tell() != len(body):
        raise FramingError(f"{len(body) - buffer.tell()} bytes left after the record")
    return record


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
    writers = numbered(writers)
    known = {ref: w for w in writers for ref in w.refs}
    pairs = [(w, r) for w in writers for r in readers]
    framed = {w.name: framed_samples(w, events) for w in writers}
    verdicts = []
    for done, (writer, reader) in enumerate(pairs, 1):
        verdicts.append(verify_pair(writer, reader, events, known, framed[writer.name]))
        if on_pair is not None:
            on_pair(done, len(pairs), f"{writer.name} x {reader.name}")
    return ContractReport(
        writers=tuple(w.name for w in writers),
        readers=tuple(r.name for r in readers),
        verdicts=tuple(verdicts),
    )
