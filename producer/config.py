"""Client configuration, the Confluent way: one dotted-key dictionary, validated once.

Sources, highest first: command-line flags, the environment (``FLASHSALE_*``), a
properties file (``--config client.properties``, the format Confluent Cloud hands
out), then defaults (``localhost:9092``, ``http://localhost:8081``). Every key is
known: an unknown or contradictory one is refused with its name and where it came
from. Secrets (SASL password, registry basic-auth user info) are held in
:class:`Secret`, whose ``str`` and ``repr`` are masked, so no log line, error or
``--show-config`` output can carry them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from producer.errors import ConfigError, InvalidOption

__all__ = [
    "ENV_KEYS",
    "ClientConfig",
    "ConfigError",
    "Secret",
    "load_client_config",
    "parse_properties",
]

log = logging.getLogger(__name__)


class Secret:
    """A secret string that never shows itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "****"

    def __repr__(self) -> str:
        return "Secret('****')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Keys handed to librdkafka as they are.
KAFKA_KEYS = {
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "client.id",
    "session.timeout.ms",
    "socket.timeout.ms",
    "request.timeout.ms",
    "message.timeout.ms",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "acks",
    "enable.idempotence",
}
# Keys for the Schema Registry client (some under their Java names too).
REGISTRY_KEYS = {
    "schema.registry.url": "url",
    "basic.auth.credentials.source": "basic.auth.credentials.source",
    "basic.auth.user.info": "basic.auth.user.info",
    "schema.registry.basic.auth.user.info": "basic.auth.user.info",
    "schema.registry.basic.auth.credentials.source": "basic.auth.credentials.source",
    "schema.registry.ssl.ca.location": "ssl.ca.location",
    "schema.registry.ssl.certificate.location": "ssl.certificate.location",
    "schema.registry.ssl.key.location": "ssl.key.location",
}
# Java-client keys that Confluent Cloud's files carry and librdkafka does not take.
JAVA_ONLY_KEYS = {"client.dns.lookup", "sasl.jaas.config"}
SECRET_KEYS = {
    "sasl.password",
    "ssl.key.password",
    "sasl.oauthbearer.client.secret",
    "basic.auth.user.info",
}
# librdkafka accepts this plural alias; we keep one spelling.
ALIASES = {"sasl.mechanisms": "sasl.mechanism"}

ENV_KEYS = {
    "FLASHSALE_BOOTSTRAP_SERVERS": "bootstrap.servers",
    "FLASHSALE_SCHEMA_REGISTRY_URL": "schema.registry.url",
    "FLASHSALE_SECURITY_PROTOCOL": "security.protocol",
    "FLASHSALE_SASL_MECHANISM": "sasl.mechanism",
    "FLASHSALE_SASL_USERNAME": "sasl.username",
    "FLASHSALE_SASL_PASSWORD": "sasl.password",
    "FLASHSALE_SCHEMA_REGISTRY_USER_INFO": "basic.auth.user.info",
}

DEFAULTS = {
    "bootstrap.servers": "localhost:9092",
    "schema.registry.url": "http://localhost:8081",
}

_JAAS = re.compile(r"""(username|password)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}


@dataclass(frozen=True)
class ClientConfig:
    """The merged configuration, each key with the source it came from."""

    values: Mapping[str, str | Secret]
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return str(self.values["bootstrap.servers"])

    @property
    def registry_url(self) -> str:
        return str(self.values["schema.registry.url"]).rstrip("/")

    def kafka(self) -> dict[str, str]:
        """The librdkafka configuration (secrets revealed: hand it only to the client)."""
        return {k: _reveal(v) for k, v in self.values.items() if k in KAFKA_KEYS}

    def registry(self) -> dict[str, str]:
        """The SchemaRegistryClient configuration (secrets revealed)."""
        out = {}
        for key, value in self.values.items():
            if key in REGISTRY_KEYS:
                out[REGISTRY_KEYS[key]] = _reveal(value)
        out["url"] = self.registry_url
        return out

    def registry_auth(self) -> tuple[str, str] | None:
        info = self.values.get("basic.auth.user.info")
        if info is None:
            return None
        user, _, password = _reveal(info).partition(":")
        return user, password

    def shown(self) -> list[tuple[str, str, str]]:
        """(key, value with secrets masked, source) rows, for ``--show-config``."""
        return [(k, str(v), self.sources.get(k, "default")) for k, v in sorted(self.values.items())]


def _reveal(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def parse_properties(text: str, source: str) -> dict[str, str]:
    """Java ``.properties``: ``key=value`` or ``key: value``, ``#``/``!`` comments."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):  # continuation line
            line = line[:-1] + lines[i].strip()
            i += 1
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match is None:
            raise ConfigError(f"{source}: line {number}: expected key=value, got {line!r}")
        out[match[1]] = match[2]
    return out


def load_client_config(
    flags: Mapping[str, str | None] | None = None,
    properties_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Merge flags > environment > properties file > defaults, then validate."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    def put(key: str, value: str, source: str) -> None:
        key = ALIASES.get(key, key)
        if key in JAVA_ONLY_KEYS:
            if key == "sasl.jaas.config":
                for name, double, single in _JAAS.findall(value):
                    put(f"sasl.{name}", double or single, source)
            else:
                log.info("%s: ignoring %s (a Java-client setting)", source, key)
            return
        if key not in KAFKA_KEYS and key not in REGISTRY_KEYS:
            raise ConfigError(f"{source}: unknown configuration key '{key}'")
        values[key] = value
        sources[key] = source

    for key, value in DEFAULTS.items():
        put(key, value, "default")
    if properties_file is not None:
        try:
            text = properties_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidOption(
                "config_file", f"cannot read: {exc.strerror}", properties_file
            ) from exc
        for key, value in parse_properties(text, str(properties_file)).items():
            put(key, value, str(properties_file))
    for name, key in ENV_KEYS.items():
        if env.get(name):
            put(key, env[name], f"env {name}")
    for key, flag_value in (flags or {}).items():
        if flag_value is not None:
            put(key, flag_value, "flag")

    _check(values, sources)
    typed: dict[str, str | Secret] = {
        k: Secret(v) if k in SECRET_KEYS or k == "schema.registry.basic.auth.user.info" else v
        for k, v in values.items()
    }
    # The registry key may arrive under its Java name; keep one.
    if "schema.registry.basic.auth.user.info" in typed:
        typed["basic.auth.user.info"] = typed.pop("schema.registry.basic.auth.user.info")
        sources["basic.auth.user.info"] = sources.pop("schema.registry.basic.auth.user.info")
    return ClientConfig(values=typed, sources=sources)


def _check(values: dict[str, str], sources: dict[str, str]) -> None:
    def where(key: str) -> str:
        return f"{key} (from {sources[key]})"

    protocol = values.get("security.protocol", "PLAINTEXT").upper()
    if "security.protocol" in values and protocol not in _PROTOCOLS:
        raise ConfigError(
            f"{where('security.protocol')}: unknown protocol '{values['security.protocol']}' "
            f"(known: {', '.join(sorted(_PROTOCOLS))})"
        )
    sasl = [k for k in values if k.startswith("sasl.")]
    if sasl and not protocol.startswith("SASL_"):
        raise ConfigError(
            f"{where(sasl[0])} contradicts security.protocol={protocol}: "
            "SASL settings need SASL_SSL or SASL_PLAINTEXT"
        )
    if protocol.startswith("SASL_") and values.get("sasl.mechanism", "PLAIN").upper() in (
        "PLAIN",
        "SCRAM-SHA-256",
        "SCRAM-SHA-512",
    ):
        for needed in ("sasl.username", "sasl.password"):
            if needed not in values:
                raise ConfigError(f"security.protocol={protocol} needs {needed}")
    source = values.get("basic.auth.credentials.source")
    info = values.get("basic.auth.user.info") or values.get("schema.registry.basic.auth.user.info")
    if source is not None and source.upper() not in ("USER_INFO", "URL", "SASL_INHERIT"):
        raise ConfigError(f"{where('basic.auth.credentials.source')}: unknown source '{source}'")
    if info is not None:
        if source is not None and source.upper() != "USER_INFO":
            raise ConfigError(
                f"basic.auth.user.info contradicts {where('basic.auth.credentials.source')}="
                f"{source}: user info needs USER_INFO"
            )
        if ":" not in info:
            key = (
                "basic.auth.user.info"
                if "basic.auth.user.info" in values
                else "schema.registry.basic.auth.user.info"
            )
            raise ConfigError(f"{where(key)}: expected KEY:SECRET")
    for key in ("linger.ms", "batch.size", "message.timeout.ms", "session.timeout.ms"):
        if key in values and not values[key].isdigit():
            raise ConfigError(f"{where(key)}: expected a whole number, got '{values[key]}'")
    if not values["schema.registry.url"].startswith(("http://", "https://")):
        raise ConfigError(
            f"{where('schema.registry.url')}: expected an http:// or https:// URL, "
            f"got '{values['schema.registry.url']}'"
        )


def describe(config: ClientConfig) -> list[str]:
    """One line per key, secrets masked: what ``--show-config`` prints."""
    return [f"{k} = {v}  ({s})" for k, v, s in config.shown()]
