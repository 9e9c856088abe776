"""The Schema Registry client: the calls flashsale makes, each error mapped to one line.

The official ``SchemaRegistryClient`` does the registry calls; compatibility tests go
through plain HTTP with ``?verbose=true`` because the official client drops the
registry's reasons. Subjects follow TopicNameStrategy: ``<topic>-value``, ``<topic>-key``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.error import SchemaRegistryError

from producer.config import ClientConfig, mask_url
from producer.contract.compat import CompatibilityLevel
from producer.errors import (
    ConfigError,
    IncompatibleSchemaError,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnavailable,
)
from producer.events import DEFAULT_TOPIC

__all__ = [
    "DEFAULT_TOPIC",
    "SERIALIZER_CONF",
    "Registry",
    "key_subject",
    "number",
    "value_subject",
]

log = logging.getLogger(__name__)

# AvroSerializer's settings: serialize with the version named, never register, and
# name the subject explicitly.
SERIALIZER_CONF = {
    "auto.register.schemas": False,
    "use.latest.version": False,
    "subject.name.strategy": topic_subject_name_strategy,
}


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    return f"{topic}-key"


def number(value: int | None) -> int:
    if value is None:
        raise RegistryError("the Schema Registry answered without an id or version")
    return int(value)


def _is_transport_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")


def _scrub(exc: BaseException, conf: dict[str, Any]) -> str:
    """The client's message with any secret it may quote masked."""
    message = str(exc)
    for key in ("basic.auth.user.info", "bearer.auth.token", "bearer.auth.client.secret"):
        if conf.get(key):
            message = message.replace(str(conf[key]), "****")
    return mask_url(message)


class Registry:
    """A Schema Registry reached with the client configuration; errors are typed, one line."""

    def __init__(self, config: ClientConfig, timeout: float = 10.0) -> None:
        self.url = mask_url(config.registry_url)  # for messages: never a password
        self.timeout = timeout
        conf: dict[str, Any] = {**config.registry(), "timeout": timeout, "max.retries": 1}
        try:
            self.client = SchemaRegistryClient(conf)
        except (ValueError, TypeError) as exc:  # the client's own check of its settings
            raise ConfigError(f"Schema Registry client settings: {_scrub(exc, conf)}") from None

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Registry failures inside the block, as typed one-line errors naming ``what``."""
        try:
            yield
        except SchemaRegistryError as exc:
            if exc.http_status_code in (401, 403):
                refused = "credentials" if exc.http_status_code == 401 else "access"
                raise RegistryUnauthorized(
                    f"the Schema Registry at {self.url} refused the {refused}: {what}: "
                    f"{exc.error_message} (HTTP {exc.http_status_code}, error {exc.error_code})",
                    exc.http_status_code,
                    exc.error_code,
                ) from exc
            raise RegistryError(
                f"Schema Registry at {self.url}: {what}: {exc.error_message} "
                f"(HTTP {exc.http_status_code}, error {exc.error_code})",
                exc.http_status_code,
                exc.error_code,
            ) from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise RegistryUnavailable(
                    f"cannot reach the Schema Registry at {self.url}: {type(exc).__name__}"
                ) from exc
            raise

    def _post(self, path: str, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        """A POST the official client has no method for, sent by its own REST client so
        that every setting it was given (basic or bearer auth, TLS, proxy) applies."""
        payload = self.client._rest_client.send_request(path, "POST", body=body, query=query)
        return payload if isinstance(payload, dict) else {}

    def rest(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """Any REST call, by the official client's own REST client (auth, TLS, proxy
        apply), for what the client has no method for or would change in passing
        (an import's explicit id and version, metadata kept verbatim)."""
        return self.client._rest_client.send_request(path, method, body=body, query=query)

    # ------------------------------------------------------------------ questions

    def versions(self, subject: str) -> list[int]:
        """The subject's versions; empty when the subject does not exist."""
        with self.errors(f"listing versions of {subject}"):
            try:
                return list(self.client.get_versions(subject))
            except SchemaRegistryError as exc:
                if exc.error_code == 40401:
                    return []
                raise

    def _registered(self, subject: str, text: str) -> Any:
        """The registered schema ``text`` is under ``subject`` (the client's
        RegisteredSchema), or None if it is not registered there."""
        with self.errors(f"looking up a schema under {subject}"):
            try:
                return self.client.lookup_schema(subject, Schema(text, "AVRO"))
            except SchemaRegistryError as exc:
                if exc.error_code in (40401, 40403):
                    return None
                raise

    def lookup(self, subject: str, text: str) -> tuple[int, int] | None:
        """(schema id, version) of ``text`` under ``subject``, or None if not registered."""
        found = self._registered(subject, text)
        return None if found is None else (number(found.schema_id), number(found.version))

    def guid(self, subject: str, text: str) -> str | None:
        """The GUID of ``text`` registered under ``subject`` (Confluent 8), or None when
        it is not registered or the registry gives schemas no GUID."""
        found = self._registered(subject, text)
        return None if found is None else (found.guid or None)

    def global_level(self) -> CompatibilityLevel:
        with self.errors("reading the global compatibility"):
            return CompatibilityLevel(self.client.get_compatibility())

    def ping(self) -> None:
        """Fail in one line unless the registry answers."""
        with self.errors("listing subjects"):
            self.client.get_subjects()

    def level(self, subject: str) -> CompatibilityLevel:
        """The subject's compatibility level, or the global one when it has none."""
        with self.errors(f"reading the compatibility of {subject}"):
            try:
                return CompatibilityLevel(self.client.get_compatibility(subject))
            except SchemaRegistryError as exc:
                if exc.error_code not in (40401, 40408):
                    raise
            return CompatibilityLevel(self.client.get_compatibility())

    def set_level(self, subject: str | None, level: CompatibilityLevel) -> None:
        with self.errors(f"setting compatibility {level.value}"):
            self.client.set_compatibility(subject, level.value)

    def incompatibilities(self, subject: str, text: str) -> list[str]:
        """The registry's reasons to refuse ``text`` under ``subject`` (empty: compatible)."""
        with self.errors(f"testing compatibility under {subject}"):
            try:
                answer = self._post(
                    f"compatibility/subjects/{subject}/versions",
                    {"schema": text, "schemaType": "AVRO"},
                    {"verbose": "true"},
                )
            except SchemaRegistryError as exc:
                if exc.error_code == 40401:
                    return []
                raise
        if answer.get("is_compatible", False):
            return []
        return [str(m) for m in answer.get("messages") or ["incompatible (no reason given)"]]

    def register(self, subject: str, text: str) -> tuple[int, int]:
        """Register ``text`` under ``subject``: (schema id, version)."""
        with self.errors(f"registering under {subject}"):
            try:
                registered = self.client.register_schema_full_response(
                    subject, Schema(text, "AVRO")
                )
            except SchemaRegistryError as exc:
                if exc.http_status_code == 409:
                    raise IncompatibleSchemaError(
                        f"{subject}: the registry refused the schema as incompatible",
                        [exc.error_message],
                    ) from exc
                raise
        version = registered.version
        if version is None:  # older registries answer only the id
            found = self.lookup(subject, text)
            version = found[1] if found else -1
        return number(registered.schema_id), int(version)
