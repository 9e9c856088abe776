"""Avro schema text the way Confluent's registry stores and compares it.

Confluent's identity of an Avro schema is Java Avro's ``Schema.toString()``: standard
attributes in a fixed order (``type``, ``name``, ``namespace`` only where it differs
from the enclosing one, ``doc``, ``fields``/``symbols``/``items``..., then other
properties as sent), ``{"type": "int"}`` written as ``"int"``, a named type written
in full once and by name after. ``?normalize=true`` (``AvroSchemaUtils.toNormalizedString``)
further sorts the other properties and the aliases, so their order stops mattering.

The schema handed in is the JSON of a schema already parsed and validated.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_text"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# Attributes Java Avro reads itself; everything else on a schema or a field is a property.
_SCHEMA_RESERVED = frozenset(
    [
        "type",
        "name",
        "namespace",
        "doc",
        "fields",
        "symbols",
        "items",
        "values",
        "size",
        "aliases",
        "default",
    ]
)
_LOGICAL = ("logicalType", "precision", "scale")
_FIELD_RESERVED = frozenset({"name", "type", "doc", "default", "order", "aliases"})


def canonical_text(
    definition: Any, normalize: bool = False, inline: dict[str, Any] | None = None
) -> str:
    """The text Confluent stores for ``definition`` (normalized with ``normalize``).

    ``inline`` maps full names of types defined elsewhere (a schema's references) to
    their definitions, to be written in full where first used, as Java Avro writes a
    schema parsed with its references resolved."""
    return _Writer(normalize, inline or {}).write(definition, namespace=None)


def named_types(definition: Any, namespace: str | None = None) -> dict[str, Any]:
    """Every named type ``definition`` defines, by full name, each with its namespace
    made explicit so that it can be written anywhere."""
    found: dict[str, Any] = {}
    if isinstance(definition, list):
        for branch in definition:
            found.update(named_types(branch, namespace))
        return found
    if not isinstance(definition, dict):
        return found
    kind = definition.get("type")
    if not isinstance(kind, str):
        return named_types(kind, namespace)
    if kind in _NAMED:
        declared = definition.get("namespace")
        simple, space = _split(definition["name"], declared if declared is not None else namespace)
        full = f"{space}.{simple}" if space else simple
        found[full] = {**definition, "name": simple, "namespace": space or ""}
        for field in definition.get("fields") or ():
            found.update(named_types(field.get("type"), space))
    for key in ("items", "values"):
        if key in definition:
            found.update(named_types(definition[key], namespace))
    return found


def _dump(value: Any, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


def _split(name: str, namespace: str | None) -> tuple[str, str | None]:
    """(simple name, namespace) of ``name`` declared inside ``namespace``."""
    if "." in name:
        space, _, simple = name.rpartition(".")
        return simple, space or None
    return name, namespace


class _Writer:
    def __init__(self, normalize: bool, inline: dict[str, Any]) -> None:
        self.normalize = normalize
        self.inline = inline
        self.defined: set[str] = set()  # full names already written

    def props(self, node: dict[str, Any], reserved: frozenset[str]) -> list[str]:
        keys = [k for k in node if k not in reserved]
        if self.normalize:  # the logical type first, as Confluent writes it, then sorted
            keys.sort(key=lambda k: (_LOGICAL.index(k) if k in _LOGICAL else len(_LOGICAL), k))
        return [f"{_dump(k)}:{_dump(node[k], self.normalize)}" for k in keys]

    def aliases(self, node: dict[str, Any]) -> list[str]:
        aliases = node.get("aliases")
        if not aliases:
            return []
        return [f'"aliases":{_dump(sorted(aliases) if self.normalize else list(aliases))}']

    def reference(self, name: str, namespace: str | None) -> str:
        """A named type written by name: simple within its own namespace, else in full."""
        simple, space = _split(name, namespace)
        full = f"{space}.{simple}" if space else simple
        for candidate in (full, name):
            if candidate not in self.defined and candidate in self.inline:
                return self.write(self.inline[candidate], namespace)
        if full not in self.defined and name in self.defined:
            space = None  # a name of the null namespace, used from inside another one
        return _dump(simple if space is None or space == namespace else f"{space}.{simple}")

    def write(self, node: Any, namespace: str | None) -> str:
        if isinstance(node, str):
            return _dump(node) if node in PRIMITIVES else self.reference(node, namespace)
        if isinstance(node, list):
            return "[" + ",".join(self.write(branch, namespace) for branch in node) + "]"
        kind = node["type"]
        if not isinstance(kind, str):  # {"type": {...}}: the inner schema itself
            return self.write(kind, namespace)
        if kind in PRIMITIVES:
            extra = self.props(node, _SCHEMA_RESERVED)
            if not extra:
                return _dump(kind)
            return "{" + ",".join([f'"type":{_dump(kind)}', *extra]) + "}"
        if kind == "array":
            parts = [f'"type":"array","items":{self.write(node["items"], namespace)}']
            return "{" + ",".join(parts + self.props(node, _SCHEMA_RESERVED)) + "}"
        if kind == "map":
            parts = [f'"type":"map","values":{self.write(node["values"], namespace)}']
            return "{" + ",".join(parts + self.props(node, _SCHEMA_RESERVED)) + "}"
        if kind in _NAMED:
            return self.named(node, kind, namespace)
        return self.reference(kind, namespace)  # {"type": "SomeRecord"}

    def named(self, node: dict[str, Any], kind: str, namespace: str | None) -> str:
        declared_space = node.get("namespace")
        simple, space = _split(
            node["name"], declared_space if declared_space is not None else namespace
        )
        space = space or None
        full = f"{space}.{simple}" if space else simple
        self.defined.add(full)
        parts = [f'"type":{_dump(kind)}', f'"name":{_dump(simple)}']
        if space != namespace:
            parts.append(f'"namespace":{_dump(space or "")}')
        if node.get("doc") is not None:
            parts.append(f'"doc":{_dump(node["doc"])}')
        if kind in ("record", "error"):
            fields = ",".join(self.field(f, space) for f in node["fields"])
            parts.append(f'"fields":[{fields}]')
        elif kind == "enum":
            parts.append(f'"symbols":{_dump(node["symbols"])}')
            if node.get("default") is not None:
                parts.append(f'"default":{_dump(node["default"])}')
        else:
            parts.append(f'"size":{_dump(node["size"])}')
        parts += self.props(node, _SCHEMA_RESERVED)
        parts += self.aliases(node)
        return "{" + ",".join(parts) + "}"

    def field(self, node: dict[str, Any], namespace: str | None) -> str:
        parts = [f'"name":{_dump(node["name"])}', f'"type":{self.write(node["type"], namespace)}']
        if node.get("doc") is not None:
            parts.append(f'"doc":{_dump(node["doc"])}')
        if "default" in node:
            parts.append(f'"default":{_dump(node["default"], self.normalize)}')
        order = node.get("order", "ascending")
        if order != "ascending":
            parts.append(f'"order":{_dump(order)}')
        parts += self.aliases(node)
        parts += self.props(node, _FIELD_RESERVED)
        return "{" + ",".join(parts) + "}"
