"""Client configuration: precedence, Confluent Cloud properties, validation, masking."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli import main
from producer.config import (
    KAFKA_KEYS,
    REGISTRY_KEYS,
    Secret,
    describe,
    load_client_config,
    parse_properties,
)
from producer.errors import ConfigError
from producer.kafka.produce import producer_config

CCLOUD = """\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username=KAFKAKEY
sasl.password=kafka-secret-value
# Best practice for higher availability in librdkafka clients prior to 1.7
session.timeout.ms=45000
client.id=ccloud-python-client-1234

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:sr-secret-value
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_client_config(environ={})
    assert config.bootstrap_servers == "localhost:9092"
    assert config.registry_url == "http://localhost:8081"


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bootstrap.servers=file:9092\nschema.registry.url=http://file:8081\nlinger.ms=5\n"
    )
    env = {"FLASHSALE_BOOTSTRAP_SERVERS": "env:9092"}
    config = load_client_config({"bootstrap.servers": None}, path, env)
    assert config.bootstrap_servers == "env:9092"
    assert config.registry_url == "http://file:8081"
    assert config.kafka()["linger.ms"] == "5"
    config = load_client_config({"bootstrap.servers": "flag:9092"}, path, env)
    assert config.bootstrap_servers == "flag:9092"
    assert config.sources["bootstrap.servers"] == "flag"
    assert config.sources["schema.registry.url"] == str(path)
    assert load_client_config(environ=env).sources["bootstrap.servers"] == (
        "env FLASHSALE_BOOTSTRAP_SERVERS"
    )


def test_a_confluent_cloud_file_gives_the_right_librdkafka_config(tmp_path: Path) -> None:
    config = load_client_config(properties_file=write(tmp_path, CCLOUD), environ={})
    kafka = producer_config(config)
    kafka.pop("logger")
    assert kafka == {
        "bootstrap.servers": "pkc-abc12.us-east-1.aws.confluent.cloud:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "KAFKAKEY",
        "sasl.password": "kafka-secret-value",
        "session.timeout.ms": "45000",
        "client.id": "ccloud-python-client-1234",
        "enable.idempotence": "true",
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": "20",
        "batch.size": "1000000",
        "queue.buffering.max.messages": "200000",
        "message.timeout.ms": "60000",
    }
    # basic.auth.credentials.source is Java's: the Python client refuses the key (it
    # takes the user info whenever it is given), so it is read here, never handed on.
    assert config.registry() == {
        "url": "https://psrc-xyz.us-east-2.aws.confluent.cloud",
        "basic.auth.user.info": "SRKEY:sr-secret-value",
    }
    assert config.registry_auth() == ("SRKEY", "sr-secret-value")


def test_java_flavoured_files_are_translated(tmp_path: Path) -> None:
    text = (
        "bootstrap.servers=b:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        "username='K' password='S';\nclient.dns.lookup=use_all_dns_ips\nacks=all\n"
    )
    kafka = load_client_config(properties_file=write(tmp_path, text), environ={}).kafka()
    assert (kafka["sasl.username"], kafka["sasl.password"]) == ("K", "S")
    assert "client.dns.lookup" not in kafka


def test_secrets_are_masked_everywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_client_config(properties_file=write(tmp_path, CCLOUD), environ={})
    shown = "\n".join(describe(config))
    assert "kafka-secret-value" not in shown and "sr-secret-value" not in shown
    assert "sasl.password = ****" in shown
    assert "basic.auth.user.info = ****" in shown
    assert "kafka-secret-value" not in repr(config) and "sr-secret-value" not in repr(config)
    assert str(Secret("x")) == "****" and repr(Secret("x")) == "Secret('****')"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("config %s", config)
    assert "secret-value" not in caplog.text


def test_show_config_masks_secrets_on_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, CCLOUD)
    result = CliRunner().invoke(
        main, ["schemas", "register", "--config", str(path), "--show-config", "--dry-run"]
    )
    assert "sasl.password = ****  (" in result.output
    assert "kafka-secret-value" not in result.output
    assert "sr-secret-value" not in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bootstrap.servers=b:9092\nlinger=5\n", "{path}: unknown configuration key 'linger'"),
        (
            "sasl.username=u\nsasl.password=p\n",
            "sasl.username (from {path}) contradicts security.protocol=PLAINTEXT: SASL settings "
            "need SASL_SSL or SASL_PLAINTEXT",
        ),
        (
            "security.protocol=SASL_SSL\nsasl.username=u\n",
            "security.protocol=SASL_SSL needs sasl.password",
        ),
        (
            "security.protocol=TLS\n",
            "security.protocol (from {path}): unknown protocol 'TLS' "
            "(known: PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL)",
        ),
        (
            "basic.auth.credentials.source=URL\nbasic.auth.user.info=a:b\n",
            "basic.auth.user.info contradicts basic.auth.credentials.source (from {path})=URL: "
            "user info needs USER_INFO",
        ),
        (
            "basic.auth.user.info=nocolon\n",
            "basic.auth.user.info (from {path}): expected KEY:SECRET",
        ),
        ("linger.ms=soon\n", "linger.ms (from {path}): expected a whole number, got 'soon'"),
        (
            "schema.registry.url=localhost:8081\n",
            "schema.registry.url (from {path}): expected an http:// or https:// URL, got "
            "'localhost:8081'",
        ),
        (
            "=orphan secret\n",
            "{path}: line 1: expected key=value, got a line with no key (it starts with '=')",
        ),
    ],
)
def test_bad_keys_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_client_config(properties_file=path, environ={})
    assert str(err.value) == message.format(path=path)


def test_unknown_flag_key_and_contradiction_with_idempotence() -> None:
    with pytest.raises(ConfigError, match="flag: unknown configuration key 'lingerms'"):
        load_client_config({"lingerms": "5"}, environ={})
    config = load_client_config({"acks": "1"}, environ={})
    with pytest.raises(ConfigError) as err:
        producer_config(config)
    assert str(err.value) == "acks=1 contradicts enable.idempotence=true (which needs acks=all)"


def test_a_contradictory_producer_configuration_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused before any host is contacted: the addresses below answer nothing.
    monkeypatch.chdir(tmp_path)
    args = ["--bootstrap-servers", "127.0.0.1:9", "--schema-registry-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(main, ["produce", "--events", "5", "-X", "acks=1", *args])
    assert result.exit_code == 2
    assert result.output == (
        "Error: acks=1 contradicts enable.idempotence=true (which needs acks=all)\n"
    )


def test_properties_format_details() -> None:
    parsed = parse_properties("! comment\na = 1\nb:2\nc=x\\\n  y\n\n", "f")
    assert parsed == {"a": "1", "b": "2", "c": "xy"}


# Every key that carries a secret, named here and not read from the code under test,
# so that a key dropped from the masking is caught.
SECRETS = {  # key: the settings it needs beside it
    "sasl.password": "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n",
    "ssl.key.password": "",
    "sasl.oauthbearer.client.secret": (
        "security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\nsasl.oauthbearer.method=oidc\n"
        "sasl.oauthbearer.client.id=c\nsasl.oauthbearer.token.endpoint.url=https://idp/token\n"
    ),
    "basic.auth.user.info": "basic.auth.credentials.source=USER_INFO\n",
    "schema.registry.basic.auth.user.info": "basic.auth.credentials.source=USER_INFO\n",
    "ssl.keystore.password": "",
    "schema.registry.ssl.key.password": "",
    "bearer.auth.token": (
        "bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.logical.cluster=lsrc-1\n"
    ),
    "bearer.auth.client.secret": (
        "bearer.auth.credentials.source=OAUTHBEARER\nbearer.auth.client.id=c\n"
        "bearer.auth.scope=s\nbearer.auth.issuer.endpoint.url=https://idp/token\n"
        "bearer.auth.logical.cluster=lsrc-1\n"
    ),
}


@pytest.mark.parametrize("key", SECRETS)
def test_every_secret_key_is_masked_wherever_it_is_shown(
    key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    value = "user:s3cr3t-of-" + key.replace(".", "-")
    text = SECRETS[key] + f"{key}={value}\n"
    config = load_client_config(properties_file=write(tmp_path, text), environ={})
    shown = "\n".join(describe(config))
    assert value not in shown and "****" in shown
    assert value not in repr(config)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("config %s", config)
    assert value not in caplog.text


def test_the_secret_list_covers_every_key_that_looks_secret() -> None:
    looks_secret = {
        k
        for k in (*KAFKA_KEYS, *REGISTRY_KEYS)
        if any(word in k for word in ("password", "secret", "user.info"))
    }
    assert looks_secret <= set(SECRETS)


def test_a_registry_url_with_user_info_shows_masked_and_reaches_the_client_bare() -> None:
    config = load_client_config(
        {"schema.registry.url": "https://SRKEY:url%40secret@psrc-1.confluent.cloud/"}, environ={}
    )
    shown = "\n".join(describe(config))
    assert "schema.registry.url = https://SRKEY:****@psrc-1.confluent.cloud/  (flag)" in shown
    assert "basic.auth.user.info = ****  (flag, the URL's user info)" in shown
    assert "secret" not in shown and "secret" not in repr(config)
    assert config.registry_url == "https://psrc-1.confluent.cloud"
    assert config.registry() == {
        "url": "https://psrc-1.confluent.cloud",
        "basic.auth.user.info": "SRKEY:url@secret",
    }
