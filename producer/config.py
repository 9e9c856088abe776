"""Client configuration, the Confluent way: one dotted-key dictionary, validated once.

Sources, highest first: command-line flags, the environment (``FLASHSALE_*``), a
properties file (``--config client.properties``, as Confluent Cloud, Confluent
Platform or a Java client writes it), then defaults (``localhost:9092``,
``http://localhost:8081``).

Every key is accounted for. A key is either

- a librdkafka setting, handed to the Kafka clients as it is (librdkafka itself is
  asked, once, whether it knows the key and takes the value);
- a Schema Registry client setting (``schema.registry.url``, ``basic.auth.*``,
  ``bearer.auth.*``, ``schema.registry.ssl.*``), mapped onto the keys of
  confluent-kafka's ``SchemaRegistryClient``;
- a Java client setting that is translated (``sasl.jaas.config``, ``sasl.mechanism``,
  ``ssl.truststore.*``, ``ssl.keystore.*``, ``basic.auth.credentials.source``...);
- a Java-only setting that has no meaning here (``client.dns.lookup``...): accepted,
  listed by ``--show-config`` as ignored, with the reason;
- or refused in one line that names it, where it came from and why.

Secrets are held in :class:`Secret`, whose ``str`` and ``repr`` are masked (a URL
keeps its host: ``http://user:****@host``), so no log line, error or
``--show-config`` output carries them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from producer.errors import ConfigError, InvalidOption

__all__ = [
    "ENV_KEYS",
    "IGNORED_KEYS",
    "ClientConfig",
    "ConfigError",
    "Secret",
    "describe",
    "load_client_config",
    "mask_url",
    "parse_properties",
    "scrub",
]

log = logging.getLogger(__name__)


class Secret:
    """A secret string that never shows itself (``shown`` is what it shows instead).

    Every secret made is also remembered for :func:`scrub`, so that a message that
    quotes one by accident (an exception of a library, a log line) is cleaned too."""

    __slots__ = ("_shown", "_value")

    _made: ClassVar[set[str]] = set()

    def __init__(self, value: str, shown: str = "****") -> None:
        self._value = value
        self._shown = shown
        if len(value) >= _SCRUB_MIN:
            Secret._made.add(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return self._shown

    def __repr__(self) -> str:
        return f"Secret({self._shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Common librdkafka keys, for reference and the README. Any other key librdkafka knows
# is accepted too: librdkafka itself is asked (see _ask_librdkafka).
KAFKA_KEYS = {
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "sasl.kerberos.service.name",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
    "client.id",
    "session.timeout.ms",
    "socket.timeout.ms",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "linger.ms",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "acks",
    "enable.idempotence",
    "retries",
    "retry.backoff.ms",
}

# The Schema Registry client's settings: flashsale's key -> SchemaRegistryClient's key.
# Java serializer configs write each with a ``schema.registry.`` prefix too; both are read.
REGISTRY_KEYS = {
    "schema.registry.url": "url",
    "basic.auth.user.info": "basic.auth.user.info",
    "bearer.auth.credentials.source": "bearer.auth.credentials.source",
    "bearer.auth.token": "bearer.auth.token",
    "bearer.auth.logical.cluster": "bearer.auth.logical.cluster",
    "bearer.auth.identity.pool.id": "bearer.auth.identity.pool.id",
    "bearer.auth.client.id": "bearer.auth.client.id",
    "bearer.auth.client.secret": "bearer.auth.client.secret",
    "bearer.auth.scope": "bearer.auth.scope",
    "bearer.auth.issuer.endpoint.url": "bearer.auth.issuer.endpoint.url",
    "bearer.auth.issuer.endpoint.query": "bearer.auth.issuer.endpoint.query",
    "schema.registry.ssl.ca.location": "ssl.ca.location",
    "schema.registry.ssl.certificate.location": "ssl.certificate.location",
    "schema.registry.ssl.key.location": "ssl.key.location",
    "schema.registry.ssl.key.password": "ssl.key.password",
    "schema.registry.proxy": "proxy",
}
# Read while mapping, never handed to a client as they are.
TRANSLATED_KEYS = {
    "sasl.jaas.config",
    "basic.auth.credentials.source",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "schema.registry.ssl.truststore.location",
    "schema.registry.ssl.truststore.type",
    "schema.registry.ssl.truststore.password",
    "schema.registry.ssl.keystore.location",
    "schema.registry.ssl.keystore.type",
    "schema.registry.ssl.keystore.password",
    "schema.registry.ssl.endpoint.identification.algorithm",
    "schema.registry.proxy.host",
    "schema.registry.proxy.port",
}

_JSSE = "a Java TLS (JSSE) setting; librdkafka uses OpenSSL's own"
_SASL_LOGIN = "a Java SASL login setting; librdkafka handles the login itself"
_FLASHSALE_SERDE = "flashsale serializes with Avro and the Schema Registry itself"
# Java-only keys that Confluent's files carry: accepted, unused, shown with the reason.
IGNORED_KEYS = {
    "client.dns.lookup": "librdkafka resolves every address of a host and tries each",
    "key.serializer": _FLASHSALE_SERDE,
    "value.serializer": _FLASHSALE_SERDE,
    "key.deserializer": _FLASHSALE_SERDE,
    "value.deserializer": _FLASHSALE_SERDE,
    "key.subject.name.strategy": "flashsale's subjects are <topic>-key and <topic>-value",
    "value.subject.name.strategy": "flashsale's subjects are <topic>-key and <topic>-value",
    "buffer.memory": "a Java producer setting (librdkafka's is queue.buffering.max.kbytes)",
    "max.block.ms": "a Java producer setting with no librdkafka equivalent",
    "default.api.timeout.ms": "a Java client setting with no librdkafka equivalent",
    "max.poll.records": "a Java consumer setting with no librdkafka equivalent",
    "auto.include.jmx.reporter": "Java metrics",
    "metric.reporters": "Java metrics",
    "metrics.recording.level": "Java metrics",
    "ssl.protocol": _JSSE,
    "ssl.enabled.protocols": _JSSE,
    "ssl.keymanager.algorithm": _JSSE,
    "ssl.trustmanager.algorithm": _JSSE,
    "ssl.secure.random.implementation": _JSSE,
    "ssl.provider": _JSSE,
    "sasl.login.callback.handler.class": _SASL_LOGIN,
    "sasl.client.callback.handler.class": _SASL_LOGIN,
    "sasl.login.class": _SASL_LOGIN,
    "sasl.login.connect.timeout.ms": _SASL_LOGIN,
    "sasl.login.read.timeout.ms": _SASL_LOGIN,
    "sasl.login.retry.backoff.ms": _SASL_LOGIN,
    "sasl.login.retry.backoff.max.ms": _SASL_LOGIN,
    "sasl.login.refresh.buffer.seconds": _SASL_LOGIN,
    "sasl.login.refresh.min.period.seconds": _SASL_LOGIN,
    "sasl.login.refresh.window.factor": _SASL_LOGIN,
    "sasl.login.refresh.window.jitter": _SASL_LOGIN,
    "bearer.auth.scope.claim.name": "a Java registry client setting (the token is used as is)",
    "bearer.auth.sub.claim.name": "a Java registry client setting (the token is used as is)",
    "bearer.auth.cache.expiry.buffer.seconds": "a Java registry client setting",
}
# Serializer settings that flashsale fixes; the value it fixes is accepted, others refused.
FIXED_KEYS = {
    "auto.register.schemas": (
        "false",
        "flashsale never registers while producing; run: flashsale schemas register",
    ),
    "use.latest.version": (
        "false",
        "flashsale writes the schema version the scenario names (--schema-version)",
    ),
}

SECRET_KEYS = {
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "sasl.oauthbearer.client.secret",
    "basic.auth.user.info",
    "bearer.auth.token",
    "bearer.auth.client.secret",
    "schema.registry.ssl.key.password",
}
_SECRET_WORDS = ("password", "secret", "user.info", "token", "key.pem", "passphrase", "jaas")


def is_secret(key: str) -> bool:
    """Whether ``key`` carries a secret: the known ones, and any that looks like one."""
    if key in SECRET_KEYS:
        return True
    return not key.endswith(".url") and any(word in key for word in _SECRET_WORDS)


# One spelling for each key (the second is what flashsale keeps).
ALIASES = {
    "sasl.mechanisms": "sasl.mechanism",  # librdkafka's plural, Java's singular
    "schema.registry.basic.auth.user.info": "basic.auth.user.info",
    "schema.registry.basic.auth.credentials.source": "basic.auth.credentials.source",
    "proxy.host": "schema.registry.proxy.host",
    "proxy.port": "schema.registry.proxy.port",
}

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

_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")
_USER_PASSWORD = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_CREDENTIAL_SOURCES = ("USER_INFO", "URL", "SASL_INHERIT")
_BEARER_SOURCES = (
    "STATIC_TOKEN",
    "OAUTHBEARER",
    "OAUTHBEARER_AZURE_IMDS",
    "SASL_OAUTHBEARER_INHERIT",
)
_BEARER_NEEDS = {
    "STATIC_TOKEN": ("bearer.auth.token", "bearer.auth.logical.cluster"),
    "OAUTHBEARER": (
        "bearer.auth.client.id",
        "bearer.auth.client.secret",
        "bearer.auth.scope",
        "bearer.auth.issuer.endpoint.url",
        "bearer.auth.logical.cluster",
    ),
    "OAUTHBEARER_AZURE_IMDS": ("bearer.auth.logical.cluster",),
}


@dataclass(frozen=True)
class ClientConfig:
    """The merged configuration, each key with the source it came from.

    ``values`` holds the librdkafka keys and flashsale's names of the registry keys
    (:data:`REGISTRY_KEYS`); ``ignored`` the Java-only keys that were given, with why.
    """

    values: Mapping[str, str | Secret]
    sources: Mapping[str, str] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return str(self.values["bootstrap.servers"])

    @property
    def registry_url(self) -> str:
        """The registry's URL (a comma-separated list if several), without user info:
        safe to print."""
        return _reveal(self.values["schema.registry.url"]).rstrip("/")

    def kafka(self) -> dict[str, str]:
        """The librdkafka configuration (secrets revealed: hand it only to the client)."""
        return {k: _reveal(v) for k, v in self.values.items() if k not in REGISTRY_KEYS}

    def registry(self) -> dict[str, str]:
        """The SchemaRegistryClient configuration (secrets revealed)."""
        out = {REGISTRY_KEYS[k]: _reveal(v) for k, v in self.values.items() if k in REGISTRY_KEYS}
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


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@]*):[^\s/,]*@")


# A secret shorter than this is not scrubbed from free text: it would mask ordinary
# words and numbers (and a password that short is not worth the pretence).
_SCRUB_MIN = 4


def scrub(text: str) -> str:
    """``text`` with every secret this process has read (:class:`Secret`) and the
    password of every URL's user info masked: for text flashsale did not write itself."""
    for value in sorted(Secret._made, key=len, reverse=True):
        text = text.replace(value, "****")
    return mask_url(text)


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message quoting some) with the password of every URL's user
    info masked: ``http://user:****@host``."""
    return _URL_PASSWORD.sub(r"\1:****@", text)


def _split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without user info, and the user info (user, password), decoded, if it
    had some."""
    bare: list[str] = []
    found: tuple[str, str] | None = None
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if "@" in parts.netloc:
            userinfo, _, host = parts.netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            found = found or (unquote(user), unquote(password))
            parts = parts._replace(netloc=host)
        bare.append(urlunsplit(parts))
    return ",".join(bare), found


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
            # The line is not echoed: a malformed line may hold a secret.
            raise ConfigError(
                f"{source}: line {number}: expected key=value, got a line with no key "
                f"(it starts with {line[0]!r})"
            )
        out[match[1]] = match[2]
    return out


# --------------------------------------------------------------------------- sasl.jaas.config

_JAAS = re.compile(
    r"""^\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)"""
    r"""(?P<options>.*?);?\s*$""",
    re.DOTALL,
)
_JAAS_OPTION = re.compile(r"""([\w.]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""")
# Each login module: the mechanism it serves (None: the mechanism must say which).
_LOGIN_MODULES = {
    "PlainLoginModule": "PLAIN",
    "ScramLoginModule": None,
    "OAuthBearerLoginModule": "OAUTHBEARER",
    "Krb5LoginModule": "GSSAPI",
}


def _jaas(value: str, where: str) -> tuple[str | None, dict[str, str]]:
    """The mechanism a Java JAAS line implies and the librdkafka keys it sets."""
    match = _JAAS.match(value)
    if match is None:
        raise ConfigError(
            f"{where}: expected '<LoginModule> required key=\"value\" ...;' "
            "(the value is not shown: it may hold a secret)"
        )
    module = match["module"].rsplit(".", 1)[-1]
    if module not in _LOGIN_MODULES:
        known = ", ".join(_LOGIN_MODULES)
        raise ConfigError(f"{where}: unknown login module {module} (known: {known})")
    options = {
        m[1]: m[2] if m[2] else m[3] if m[3] else m[4]
        for m in _JAAS_OPTION.finditer(match["options"])
    }
    out: dict[str, str] = {}
    if module in ("PlainLoginModule", "ScramLoginModule"):
        for name in ("username", "password"):
            if name not in options:
                raise ConfigError(f'{where}: {module} needs {name}="..."')
            out[f"sasl.{name}"] = options[name]
    elif module == "OAuthBearerLoginModule":
        if "clientId" not in options:
            raise ConfigError(
                f"{where}: OAuthBearerLoginModule without clientId (an unsecured test "
                "token) has no librdkafka equivalent here; give clientId and clientSecret"
            )
        out["sasl.oauthbearer.method"] = "oidc"
        out["sasl.oauthbearer.client.id"] = options["clientId"]
        if "clientSecret" in options:
            out["sasl.oauthbearer.client.secret"] = options["clientSecret"]
        if "scope" in options:
            out["sasl.oauthbearer.scope"] = options["scope"]
        extensions = [
            f"{k.removeprefix('extension_')}={v}"
            for k, v in options.items()
            if k.startswith("extension_")
        ]
        if extensions:
            out["sasl.oauthbearer.extensions"] = ",".join(extensions)
    else:  # Krb5LoginModule
        if "keyTab" in options:
            out["sasl.kerberos.keytab"] = options["keyTab"]
        if "principal" in options:
            out["sasl.kerberos.principal"] = options["principal"]
    return _LOGIN_MODULES[module], out


# --------------------------------------------------------------------------- loading


def load_client_config(
    flags: Mapping[str, str | None] | None = None,
    properties_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Merge flags > environment > properties file > defaults, map, then validate."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    jaas_mechanism: dict[str, str | None] = {}

    def put(key: str, value: str, source: str) -> None:
        key = ALIASES.get(key, key)
        if key == "sasl.jaas.config":
            mechanism, derived = _jaas(value, f"{key} (from {source})")
            jaas_mechanism["mechanism"] = mechanism
            jaas_mechanism["source"] = source
            for name, derived_value in derived.items():
                values[name] = derived_value
                sources[name] = f"{source}, sasl.jaas.config"
            return
        same_source = key in values and sources[key] == source
        if key == "sasl.mechanism" and same_source and values[key].upper() != value.upper():
            raise ConfigError(  # both spellings in one source, saying different things
                f"sasl.mechanism and sasl.mechanisms (from {source}) disagree: "
                f"'{values[key]}' and '{value}'"
            )
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

    ignored = _set_aside(values, sources)
    given_url = values["schema.registry.url"]
    _map_ssl_stores(values, sources)
    _map_registry(values, sources)
    _default_mechanism(values, sources, jaas_mechanism)
    _check(values, sources)
    secrets = [v for k, v in values.items() if is_secret(k)]
    _ask_librdkafka({k: v for k, v in values.items() if k not in REGISTRY_KEYS}, sources, secrets)
    typed: dict[str, str | Secret] = {
        k: Secret(v) if is_secret(k) else v for k, v in values.items()
    }
    if given_url != values["schema.registry.url"]:  # its user info went to basic.auth.user.info
        typed["schema.registry.url"] = Secret(values["schema.registry.url"], mask_url(given_url))
    return ClientConfig(values=typed, sources=sources, ignored=ignored)


def _set_aside(values: dict[str, str], sources: dict[str, str]) -> dict[str, str]:
    """Remove the Java-only keys (returned, with why) and refuse fixed ones set otherwise."""
    ignored: dict[str, str] = {}
    for key in list(values):
        if key in IGNORED_KEYS:
            shown = "****" if is_secret(key) else values[key]
            del values[key]
            ignored[key] = f"{shown}  ({sources[key]})  ignored: {IGNORED_KEYS[key]}"
            log.info("%s: ignoring %s (%s)", sources[key], key, IGNORED_KEYS[key])
        elif key in FIXED_KEYS:
            fixed, reason = FIXED_KEYS[key]
            if values[key].strip().lower() != fixed:
                raise ConfigError(f"{key}={values[key]} (from {sources[key]}): {reason}")
            ignored[key] = f"{values.pop(key)}  ({sources[key]})  ignored: flashsale fixes it"
    return ignored


def _where(key: str, sources: Mapping[str, str]) -> str:
    return f"{key} (from {sources[key]})"


def _store_kind(path: str, declared: str | None) -> str:
    """PEM, PKCS12 or JKS: the type a Java client was told, or what the file holds."""
    if declared:
        return declared.strip().upper()
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        head = b""
    if head.startswith(b"\xfe\xed\xfe\xed") or path.lower().endswith(".jks"):
        return "JKS"
    if head.lstrip().startswith(b"-----BEGIN") or path.lower().endswith((".pem", ".crt")):
        return "PEM"
    return "PKCS12"


def _map_ssl_stores(values: dict[str, str], sources: dict[str, str]) -> None:
    """Java truststores and keystores onto what librdkafka and the registry client read."""

    def move(old: str, new: str) -> None:
        values[new] = values.pop(old)
        sources[new] = sources.pop(old)

    def drop(key: str) -> None:
        values.pop(key, None)
        sources.pop(key, None)

    for prefix, client in (("", "librdkafka"), ("schema.registry.", "the registry client")):
        where = f"{prefix}ssl.truststore.location"
        if where in values:
            kind = _store_kind(values[where], values.get(f"{prefix}ssl.truststore.type"))
            if kind != "PEM":
                raise ConfigError(
                    f"{_where(where, sources)}: a {kind} truststore; {client} reads trusted "
                    f"certificates as PEM: export them (keytool -exportcert -rfc) and set "
                    f"{prefix}ssl.ca.location to that file"
                )
            move(where, f"{prefix}ssl.ca.location")
        where = f"{prefix}ssl.keystore.location"
        if where in values:
            kind = _store_kind(values[where], values.get(f"{prefix}ssl.keystore.type"))
            if kind == "PEM":  # one file with the certificate chain and the private key
                values[f"{prefix}ssl.certificate.location"] = values[where]
                sources[f"{prefix}ssl.certificate.location"] = sources[where]
                move(where, f"{prefix}ssl.key.location")
                drop(f"{prefix}ssl.keystore.password")
            elif kind == "PKCS12" and not prefix:
                pass  # librdkafka reads PKCS#12 keystores under the same keys
            else:
                reads = "PKCS#12 or PEM" if not prefix else "PEM"
                raise ConfigError(
                    f"{_where(where, sources)}: a {kind} keystore; {client} reads {reads} "
                    f"files: convert it (keytool -importkeystore -deststoretype PKCS12, then "
                    f"openssl pkcs12 for PEM)"
                )
        for key in ("truststore.type", "truststore.password", "keystore.type"):
            drop(f"{prefix}ssl.{key}")
    if "ssl.truststore.certificates" in values:
        move("ssl.truststore.certificates", "ssl.ca.pem")
    if "ssl.keystore.key" in values:
        move("ssl.keystore.key", "ssl.key.pem")
    if "ssl.keystore.certificate.chain" in values:
        move("ssl.keystore.certificate.chain", "ssl.certificate.pem")
    if values.get("ssl.endpoint.identification.algorithm") == "":
        values["ssl.endpoint.identification.algorithm"] = "none"  # Java's empty means off
    key = "schema.registry.ssl.endpoint.identification.algorithm"
    if key in values:
        if values[key].strip().lower() != "https":
            raise ConfigError(
                f"{_where(key, sources)}: the registry client always verifies the host name "
                "(only https can be set)"
            )
        drop(key)


def _map_registry(values: dict[str, str], sources: dict[str, str]) -> None:
    """The registry's credentials, URL and proxy, onto SchemaRegistryClient's keys.

    ``basic.auth.credentials.source`` is Java's: the Python client has no such key and
    takes ``basic.auth.user.info`` (or the URL's user info) whenever it is there.
    """
    url, userinfo = _split_userinfo(values["schema.registry.url"])
    for one in url.split(","):
        if not one.strip().startswith(("http://", "https://")):
            raise ConfigError(
                f"{_where('schema.registry.url', sources)}: expected an http:// or https:// "
                f"URL, got '{mask_url(values['schema.registry.url'])}'"
            )
    source = values.pop("basic.auth.credentials.source", None)
    source_from = sources.pop("basic.auth.credentials.source", "")
    said = f"basic.auth.credentials.source (from {source_from})={source}"
    if source is not None:
        source = source.strip().upper()
        if source not in _CREDENTIAL_SOURCES:
            known = ", ".join(_CREDENTIAL_SOURCES)
            raise ConfigError(
                f"basic.auth.credentials.source (from {source_from}): unknown source "
                f"'{source}' (known: {known})"
            )
    info = values.get("basic.auth.user.info")
    if info is not None and source not in (None, "USER_INFO"):
        raise ConfigError(f"basic.auth.user.info contradicts {said}: user info needs USER_INFO")
    if userinfo is not None:
        if ":" in userinfo[0]:
            # Basic auth joins user and password with ':' and the registry splits at
            # the first one: this user would reach it cut short, the rest as password.
            raise ConfigError(
                f"{_where('schema.registry.url', sources)}: the user name in the URL holds"
                " ':' (%3A), which HTTP Basic auth cannot carry"
            )
        if info is not None:
            raise ConfigError(
                f"{_where('basic.auth.user.info', sources)} contradicts the user info in "
                f"{_where('schema.registry.url', sources)}: give one of them"
            )
        if source not in (None, "URL"):
            raise ConfigError(f"the user info in schema.registry.url contradicts {said}")
        values["basic.auth.user.info"] = ":".join(userinfo)
        sources["basic.auth.user.info"] = sources["schema.registry.url"] + ", the URL's user info"
    elif source == "URL":
        raise ConfigError(
            f"{said} needs user info in schema.registry.url (https://KEY:SECRET@host)"
        )
    elif source == "USER_INFO" and info is None:
        raise ConfigError(f"{said} needs basic.auth.user.info (KEY:SECRET)")
    elif source == "SASL_INHERIT":
        if "sasl.username" not in values or "sasl.password" not in values:
            raise ConfigError(
                f"{said} takes the SASL username and password, and there are none "
                "(SASL_INHERIT works with PLAIN and SCRAM)"
            )
        values["basic.auth.user.info"] = f"{values['sasl.username']}:{values['sasl.password']}"
        sources["basic.auth.user.info"] = f"{source_from}, SASL_INHERIT"
    values["schema.registry.url"] = url
    if "basic.auth.user.info" in values and ":" not in values["basic.auth.user.info"]:
        raise ConfigError(f"{_where('basic.auth.user.info', sources)}: expected KEY:SECRET")

    if "schema.registry.proxy.host" in values:
        host = values.pop("schema.registry.proxy.host")
        port = values.pop("schema.registry.proxy.port", "")
        where = sources.pop("schema.registry.proxy.host")
        sources.pop("schema.registry.proxy.port", None)
        scheme = "" if "://" in host else "http://"
        values["schema.registry.proxy"] = f"{scheme}{host}{':' + port if port else ''}"
        sources["schema.registry.proxy"] = where
    elif "schema.registry.proxy.port" in values:
        raise ConfigError(f"{_where('schema.registry.proxy.port', sources)} needs proxy.host")

    bearer = values.get("bearer.auth.credentials.source")
    if bearer is None:
        stray = sorted(k for k in values if k.startswith("bearer.auth."))
        if stray:
            raise ConfigError(f"{_where(stray[0], sources)} needs bearer.auth.credentials.source")
        return
    where = _where("bearer.auth.credentials.source", sources)
    bearer = values["bearer.auth.credentials.source"] = bearer.strip().upper()
    if bearer not in _BEARER_SOURCES:
        raise ConfigError(
            f"{where}: '{bearer}' is not one the registry client takes from a file "
            f"(known: {', '.join(_BEARER_SOURCES)})"
        )
    if "basic.auth.user.info" in values:
        raise ConfigError(f"{where} contradicts basic.auth.user.info: give one of them")
    if bearer == "SASL_OAUTHBEARER_INHERIT":  # the Kafka client's OAuth settings, again
        for ours, theirs in (
            ("client.id", "client.id"),
            ("client.secret", "client.secret"),
            ("scope", "scope"),
            ("issuer.endpoint.url", "token.endpoint.url"),
        ):
            if f"sasl.oauthbearer.{theirs}" in values:
                values.setdefault(f"bearer.auth.{ours}", values[f"sasl.oauthbearer.{theirs}"])
                sources.setdefault(
                    f"bearer.auth.{ours}", f"{sources[f'sasl.oauthbearer.{theirs}']}"
                )
        bearer = values["bearer.auth.credentials.source"] = "OAUTHBEARER"
    missing = [k for k in _BEARER_NEEDS[bearer] if k not in values]
    if missing:
        raise ConfigError(f"{where}={bearer} needs {', '.join(missing)}")


def _default_mechanism(
    values: dict[str, str], sources: dict[str, str], jaas: Mapping[str, str | None]
) -> None:
    """Name the SASL mechanism when the configuration implies it.

    Java and librdkafka both default to GSSAPI (Kerberos), which is never what a file
    with a username and password means: Confluent Cloud's files are PLAIN. So the
    mechanism is the JAAS login module's, else OAUTHBEARER when OAuth settings are
    given, else PLAIN when a username or password is; otherwise it must be named.
    """
    protocol = values.get("security.protocol", "PLAINTEXT").strip().upper()
    if "sasl.mechanism" in values or not protocol.startswith("SASL_"):
        return
    if "mechanism" in jaas:
        mechanism = jaas["mechanism"]
        if mechanism is None:
            raise ConfigError(
                f"sasl.jaas.config (from {jaas['source']}) uses ScramLoginModule: set "
                "sasl.mechanism to SCRAM-SHA-256 or SCRAM-SHA-512"
            )
        values["sasl.mechanism"] = mechanism
        sources["sasl.mechanism"] = f"{jaas['source']}, the sasl.jaas.config login module"
    elif any(k.startswith("sasl.oauthbearer.") for k in values):
        values["sasl.mechanism"] = "OAUTHBEARER"
        sources["sasl.mechanism"] = "default, as sasl.oauthbearer.* settings are given"
    elif "sasl.username" in values or "sasl.password" in values:
        values["sasl.mechanism"] = "PLAIN"
        sources["sasl.mechanism"] = "default, as a username and password are given"
    else:
        raise ConfigError(
            f"{_where('security.protocol', sources)}={protocol} needs sasl.mechanism "
            f"({', '.join(_MECHANISMS[:4])}) with its credentials, or sasl.jaas.config"
        )


def _check(values: dict[str, str], sources: dict[str, str]) -> None:
    def where(key: str) -> str:
        return _where(key, sources)

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
    mechanism = values.get("sasl.mechanism", "PLAIN").strip().upper()
    if "sasl.mechanism" in values:
        if mechanism not in _MECHANISMS:
            raise ConfigError(
                f"{where('sasl.mechanism')}: unknown mechanism '{values['sasl.mechanism']}' "
                f"(known: {', '.join(_MECHANISMS)})"
            )
        values["sasl.mechanism"] = mechanism
    if protocol.startswith("SASL_") and mechanism in _USER_PASSWORD:
        for needed in ("sasl.username", "sasl.password"):
            if needed not in values:
                raise ConfigError(f"security.protocol={protocol} needs {needed}")
    for key in ("linger.ms", "batch.size", "message.timeout.ms", "session.timeout.ms"):
        if key in values and not values[key].isdigit():
            raise ConfigError(f"{where(key)}: expected a whole number, got '{values[key]}'")


def _ask_librdkafka(kafka: dict[str, str], sources: dict[str, str], secrets: list[str]) -> None:
    """Let librdkafka judge its keys and values: a client built with no broker to reach
    (so nothing connects) refuses what it does not take, in one line naming the key."""
    from confluent_kafka import KafkaException, Producer

    quiet = logging.getLogger("flashsale.config.probe")
    quiet.disabled = True  # "no bootstrap.servers" is the point here, not a warning
    conf: dict[str, object] = {k: v for k, v in kafka.items() if k != "bootstrap.servers"}
    try:
        Producer({**conf, "logger": quiet})
    except KafkaException as exc:
        message = str(exc.args[0].str())
        for secret in secrets:
            if secret:
                message = message.replace(secret, "****")
        unknown = re.match(r'No such configuration property: "(.+)"', message)
        if unknown and unknown[1] in sources:
            raise ConfigError(
                f"{sources[unknown[1]]}: unknown configuration key '{unknown[1]}'"
            ) from None
        named = re.search(r'configuration property "(.+?)"', message)
        value = re.match(r'Invalid value "(.*)" for', message)
        key = named[1] if named and named[1] in sources else None
        if key is None and value:  # librdkafka names its own alias (linger.ms: ...max.ms)
            key = next((k for k, v in kafka.items() if v == value[1] and not is_secret(k)), None)
        if key is None and "SASL mechanism" in message and "sasl.mechanism" in sources:
            key = "sasl.mechanism"
        message = message.removeprefix("Failed to create producer: ")
        if key is not None:
            raise ConfigError(f"{_where(key, sources)}: librdkafka: {message}") from None
        raise ConfigError(f"librdkafka refuses the Kafka configuration: {message}") from None


def describe(config: ClientConfig) -> list[str]:
    """One line per key, secrets masked, then the ignored keys: what ``--show-config``
    prints."""
    lines = [f"{k} = {v}  ({s})" for k, v, s in config.shown()]
    lines += [f"{k} = {why}" for k, why in sorted(config.ignored.items())]
    return lines
