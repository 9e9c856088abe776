"""The event contract on disk: loading, linting and fingerprinting `.avsc` files.

A schema folder holds files named ``<family>-v<N>.avsc`` (``flash_sale_event-v2.avsc``).
Loading a file parses it twice, with fastavro (which rejects bad defaults, duplicate
enum symbols and redefined names) and with Apache Avro (whose checker judges
compatibility), so a file that either library refuses never gets further.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import avro.errors
import avro.schema
import fastavro
import fastavro.schema

from producer.errors import InvalidOption, SchemaFileError, SchemaNotFoundError

__all__ = [
    "EVENT_FAMILY",
    "KEY_FAMILY",
    "PRODUCT_FAMILY",
    "SchemaCatalog",
    "SchemaFile",
    "bundled_schemas_dir",
    "canonical_fingerprint",
    "lint_schema_dir",
    "load_catalog",
    "load_schema_file",
    "parse_schema_text",
]

EVENT_FAMILY = "flash_sale_event"
KEY_FAMILY = "flash_sale_key"
# The shop's catalog: one record per product, on its own compacted topic.
PRODUCT_FAMILY = "flash_sale_product"

_FILE_NAME = re.compile(r"^(?P<family>[A-Za-z0-9_.]+)-v(?P<version>[1-9][0-9]*)\.avsc$")


def bundled_schemas_dir() -> Path:
    """The contract that ships with flashsale: inside the wheel, or the checkout's ``schemas/``."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_schemas"
    if packaged.is_dir():
        return packaged
    return package.parent / "schemas"


@dataclass(frozen=True)
class SchemaFile:
    """One version of one schema family, parsed and linted."""

    family: str
    version: int
    path: Path
    text: str
    definition: Any = field(repr=False)
    parsed: Any = field(repr=False, compare=False)
    avro: avro.schema.Schema = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"v{self.version}"

    @cached_property
    def canonical(self) -> str:
        """Avro's Parsing Canonical Form: what makes two spellings the same schema."""
        return str(fastavro.schema.to_parsing_canonical_form(self.parsed))

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical form, hex."""
        return _sha256(self.canonical)

    @property
    def full_name(self) -> str | None:
        if isinstance(self.definition, dict):
            name = self.definition.get("name")
            namespace = self.definition.get("namespace")
            if name and namespace and "." not in name:
                return f"{namespace}.{name}"
            return str(name) if name else None
        return None

    @property
    def field_names(self) -> list[str]:
        if isinstance(self.definition, dict) and self.definition.get("type") == "record":
            return [f["name"] for f in self.definition.get("fields", [])]
        return []


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_fingerprint(text: str) -> str:
    """The fingerprint of schema JSON text, as :attr:`SchemaFile.fingerprint` computes it."""
    parsed = fastavro.parse_schema(json.loads(text))
    return _sha256(str(fastavro.schema.to_parsing_canonical_form(parsed)))


def parse_schema_text(text: str, where: object) -> tuple[Any, Any, avro.schema.Schema]:
    """Parse schema JSON with fastavro and Apache Avro; raise SchemaFileError naming ``where``."""
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaFileError(
            where, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    try:
        parsed = fastavro.parse_schema(definition)
    except (fastavro.schema.SchemaParseException, ValueError, TypeError, KeyError) as exc:
        raise SchemaFileError(where, f"invalid Avro schema: {_one_line(exc)}") from exc
    try:
        parsed_avro = avro.schema.parse(text)
    except (avro.errors.AvroException, ValueError, TypeError) as exc:
        raise SchemaFileError(where, f"invalid Avro schema: {_one_line(exc)}") from exc
    return definition, parsed, parsed_avro


def load_schema_file(path: Path) -> SchemaFile:
    """Read, parse and lint one ``<family>-v<N>.avsc`` file."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise SchemaFileError(path, "file name is not <family>-v<N>.avsc")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SchemaFileError(path, "not UTF-8 text") from exc
    definition, parsed, parsed_avro = parse_schema_text(text, path)
    for problem in _lint_docs(definition):
        raise SchemaFileError(path, problem)
    return SchemaFile(
        family=match["family"],
        version=int(match["version"]),
        path=path,
        text=text,
        definition=definition,
        parsed=parsed,
        avro=parsed_avro,
    )


def _lint_docs(definition: Any, where: str = "") -> Iterator[str]:
    """Every record field carries a doc (the house rule of the contract)."""
    if isinstance(definition, dict):
        if definition.get("type") == "record":
            for f in definition.get("fields", []):
                path = f"{where}{f.get('name')}"
                if not str(f.get("doc", "")).strip():
                    yield f"field '{path}' has no doc"
                yield from _lint_docs(f.get("type"), f"{path}.")
        elif definition.get("type") in ("array", "map"):
            yield from _lint_docs(definition.get("items") or definition.get("values"), where)
    elif isinstance(definition, list):
        for branch in definition:
            yield from _lint_docs(branch, where)


@dataclass(frozen=True)
class SchemaCatalog:
    """Every schema file of a folder, by family and version."""

    directory: Path
    families: Mapping[str, Mapping[int, SchemaFile]]

    def versions(self, family: str = EVENT_FAMILY) -> list[SchemaFile]:
        """The family's versions, oldest first."""
        if family not in self.families:
            raise SchemaNotFoundError(f"{self.directory}: no schema family '{family}'")
        return [self.families[family][v] for v in sorted(self.families[family])]

    def get(self, version: int, family: str = EVENT_FAMILY) -> SchemaFile:
        found = {s.version: s for s in self.versions(family)}
        if version not in found:
            known = ", ".join(f"v{v}" for v in sorted(found))
            raise SchemaNotFoundError(
                f"{self.directory}: {family} has no version {version} (it has {known})"
            )
        return found[version]

    def require(self, version: int, option: str, family: str = EVENT_FAMILY) -> SchemaFile:
        """The schema of ``version`` that the input ``option`` asks for, or an
        :class:`~producer.errors.InvalidOption` listing the versions there are."""
        versions = [s.version for s in self.versions(family)]
        if version not in versions:
            raise InvalidOption(option, f"must be one of {versions}, got {version}")
        return self.get(version, family)

    def latest(self, family: str = EVENT_FAMILY) -> SchemaFile:
        return self.versions(family)[-1]

    def __iter__(self) -> Iterator[SchemaFile]:
        for family in sorted(self.families):
            yield from self.versions(family)


def _scan(directory: Path) -> tuple[dict[str, dict[int, SchemaFile]], list[SchemaFileError]]:
    if not directory.is_dir():
        raise SchemaFileError(directory, "no such schemas directory")
    families: dict[str, dict[int, SchemaFile]] = {}
    problems: list[SchemaFileError] = []
    for path in sorted(directory.glob("*.avsc")):
        try:
            schema = load_schema_file(path)
        except SchemaFileError as exc:
            problems.append(exc)
            continue
        families.setdefault(schema.family, {})[schema.version] = schema
    for versions in families.values():
        names = {s.full_name for s in versions.values()}
        if len(names) > 1:
            first = versions[min(versions)]
            for s in sorted(versions.values(), key=lambda s: s.version):
                if s.full_name != first.full_name:
                    problems.append(
                        SchemaFileError(
                            s.path,
                            f"record name '{s.full_name}' differs from "
                            f"'{first.full_name}' of {first.path.name}; "
                            "a family keeps one full name across versions",
                        )
                    )
    if not families and not problems:
        problems.append(SchemaFileError(directory, "no <family>-v<N>.avsc files"))
    return families, problems


def lint_schema_dir(directory: Path) -> list[SchemaFileError]:
    """Every problem of every schema file in ``directory`` (empty when all are sound)."""
    return _scan(directory)[1]


def load_catalog(directory: Path) -> SchemaCatalog:
    """Load a schema folder; raise the first problem found."""
    families, problems = _scan(directory)
    if problems:
        raise problems[0]
    return SchemaCatalog(directory=directory, families=families)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
