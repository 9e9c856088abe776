"""Client properties files as Confluent Cloud, Confluent Platform and the Java clients
write them: each row is the file, and the librdkafka and Schema Registry client
configuration it maps to, or the one line that refuses it, naming the key.

Every mapped configuration is also handed to the real clients (librdkafka judges it
while loading; SchemaRegistryClient is built here), so a row cannot pass with a key
the clients would refuse.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import certifi
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.config import load_client_config
from producer.errors import ConfigError

# --------------------------------------------------------------------------- accepted

CCLOUD_PYTHON = """\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username=KAFKAKEY
sasl.password=kafka-secret
# Best practice for higher availability in librdkafka clients prior to 1.7
session.timeout.ms=45000
client.id=ccloud-python-client-5d4e

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:sr-secret
"""
CCLOUD_JAVA = """\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
username='KAFKAKEY' password='kafka-secret';
sasl.mechanism=PLAIN
# Required for correctness in Apache Kafka clients prior to 2.6
client.dns.lookup=use_all_dns_ips
# Best practice for higher availability in Apache Kafka clients prior to 3.0
session.timeout.ms=45000
# Best practice for Kafka producer to prevent data loss
acks=all

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:sr-secret
"""
CCLOUD_KAFKA = {
    "bootstrap.servers": "pkc-abc12.us-east-1.aws.confluent.cloud:9092",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "PLAIN",
    "sasl.username": "KAFKAKEY",
    "sasl.password": "kafka-secret",
    "session.timeout.ms": "45000",
}
CCLOUD_REGISTRY = {
    "url": "https://psrc-xyz.us-east-2.aws.confluent.cloud",
    "basic.auth.user.info": "SRKEY:sr-secret",
}
PLATFORM_SCRAM = """\
bootstrap.servers=kafka-1.corp:9093,kafka-2.corp:9093
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
username="app" password="scram-secret";
ssl.truststore.location={ca}
ssl.truststore.type=PEM
ssl.endpoint.identification.algorithm=
key.serializer=org.apache.kafka.common.serialization.StringSerializer
value.serializer=io.confluent.kafka.serializers.KafkaAvroSerializer
auto.register.schemas=false
schema.registry.url=https://sr.corp:8081
schema.registry.basic.auth.credentials.source=USER_INFO
schema.registry.basic.auth.user.info=sr-app:sr-secret
schema.registry.ssl.truststore.location={ca}
schema.registry.ssl.truststore.type=PEM
"""
CCLOUD_OAUTH = """\
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.mechanism=OAUTHBEARER
sasl.login.callback.handler.class=\
org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler
sasl.oauthbearer.token.endpoint.url=https://127.0.0.1:9/oauth2/token
sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
required clientId='app-id' clientSecret='oauth-secret' scope='kafka' \
extension_logicalCluster='lkc-123' extension_identityPoolId='pool-abc';
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
bearer.auth.credentials.source=SASL_OAUTHBEARER_INHERIT
bearer.auth.logical.cluster=lsrc-456
bearer.auth.identity.pool.id=pool-abc
"""
MTLS = """\
bootstrap.servers=kafka.corp:9094
security.protocol=SSL
ssl.truststore.location={ca}
ssl.keystore.location={p12}
ssl.keystore.password=store-secret
ssl.keystore.type=PKCS12
ssl.protocol=TLSv1.3
ssl.enabled.protocols=TLSv1.3,TLSv1.2
schema.registry.url=https://sr.corp:8081
schema.registry.ssl.keystore.location={pem}
schema.registry.ssl.keystore.type=PEM
schema.registry.ssl.truststore.location={ca}
"""

ACCEPTED: list[tuple[str, str, dict[str, str], dict[str, str], set[str]]] = [
    # (name, file, librdkafka config, registry client config, keys ignored)
    ("ccloud-python", CCLOUD_PYTHON,
     {**CCLOUD_KAFKA, "client.id": "ccloud-python-client-5d4e"}, CCLOUD_REGISTRY, set()),
    ("ccloud-java", CCLOUD_JAVA,
     {**CCLOUD_KAFKA, "acks": "all"}, CCLOUD_REGISTRY, {"client.dns.lookup"}),
    # Java's default mechanism is GSSAPI; a JAAS PlainLoginModule line means PLAIN.
    ("jaas-without-mechanism", CCLOUD_JAVA.replace("sasl.mechanism=PLAIN\n", ""),
     {**CCLOUD_KAFKA, "acks": "all"}, CCLOUD_REGISTRY, {"client.dns.lookup"}),
    # A username and password without a mechanism: Confluent Cloud's PLAIN.
    ("username-without-mechanism", CCLOUD_PYTHON.replace("sasl.mechanisms=PLAIN\n", ""),
     {**CCLOUD_KAFKA, "client.id": "ccloud-python-client-5d4e"}, CCLOUD_REGISTRY, set()),
    ("registry-keys-prefixed",
     CCLOUD_PYTHON.replace("\nbasic.auth", "\nschema.registry.basic.auth"),
     {**CCLOUD_KAFKA, "client.id": "ccloud-python-client-5d4e"}, CCLOUD_REGISTRY, set()),
    ("platform-scram-pem-truststore", PLATFORM_SCRAM,
     {"bootstrap.servers": "kafka-1.corp:9093,kafka-2.corp:9093",
      "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
      "sasl.username": "app", "sasl.password": "scram-secret",
      "ssl.ca.location": "{ca}", "ssl.endpoint.identification.algorithm": "none"},
     {"url": "https://sr.corp:8081", "basic.auth.user.info": "sr-app:sr-secret",
      "ssl.ca.location": "{ca}"},
     {"key.serializer", "value.serializer", "auto.register.schemas"}),
    ("ccloud-oauth", CCLOUD_OAUTH,
     {"bootstrap.servers": "pkc-abc12.us-east-1.aws.confluent.cloud:9092",
      "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
      "sasl.oauthbearer.method": "oidc",
      "sasl.oauthbearer.token.endpoint.url": "https://127.0.0.1:9/oauth2/token",
      "sasl.oauthbearer.client.id": "app-id", "sasl.oauthbearer.client.secret": "oauth-secret",
      "sasl.oauthbearer.scope": "kafka",
      "sasl.oauthbearer.extensions": "logicalCluster=lkc-123,identityPoolId=pool-abc"},
     {"url": "https://psrc-xyz.us-east-2.aws.confluent.cloud",
      "bearer.auth.credentials.source": "OAUTHBEARER", "bearer.auth.client.id": "app-id",
      "bearer.auth.client.secret": "oauth-secret", "bearer.auth.scope": "kafka",
      "bearer.auth.issuer.endpoint.url": "https://127.0.0.1:9/oauth2/token",
      "bearer.auth.logical.cluster": "lsrc-456", "bearer.auth.identity.pool.id": "pool-abc"},
     {"sasl.login.callback.handler.class"}),
    ("mtls-pkcs12-and-pem", MTLS,
     {"bootstrap.servers": "kafka.corp:9094", "security.protocol": "SSL",
      "ssl.ca.location": "{ca}", "ssl.keystore.location": "{p12}",
      "ssl.keystore.password": "store-secret"},
     {"url": "https://sr.corp:8081", "ssl.ca.location": "{ca}",
      "ssl.certificate.location": "{pem}", "ssl.key.location": "{pem}"},
     {"ssl.protocol", "ssl.enabled.protocols"}),
    ("registry-url-user-info",
     "schema.registry.url=https://SRKEY:sr%3Asecret@psrc-xyz.confluent.cloud\n"
     "basic.auth.credentials.source=URL\n",
     {"bootstrap.servers": "localhost:9092"},
     {"url": "https://psrc-xyz.confluent.cloud", "basic.auth.user.info": "SRKEY:sr:secret"},
     set()),
    ("registry-sasl-inherit",
     "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=K\nsasl.password=S\n"
     "basic.auth.credentials.source=SASL_INHERIT\n",
     {"bootstrap.servers": "localhost:9092", "security.protocol": "SASL_SSL",
      "sasl.mechanism": "PLAIN", "sasl.username": "K", "sasl.password": "S"},
     {"url": "http://localhost:8081", "basic.auth.user.info": "K:S"}, set()),
    ("registry-static-token",
     "bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.token=tok-secret\n"
     "bearer.auth.logical.cluster=lsrc-1\nproxy.host=proxy.corp\nproxy.port=3128\n",
     {"bootstrap.servers": "localhost:9092"},
     {"url": "http://localhost:8081", "bearer.auth.credentials.source": "STATIC_TOKEN",
      "bearer.auth.token": "tok-secret", "bearer.auth.logical.cluster": "lsrc-1",
      "proxy": "http://proxy.corp:3128"}, set()),
]  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Real key material: a CA bundle (PEM), a client key and certificate as one PEM file
    and as a PKCS#12 keystore, and a file with the JKS magic number."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("stores")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flashsale-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = folder / "client.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    p12 = folder / "client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client", key, cert, None, serialization.BestAvailableEncryption(b"store-secret")
        )
    )
    jks = folder / "truststore.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + b"\x00" * 32)
    return {"ca": certifi.where(), "pem": str(pem), "p12": str(p12), "jks": str(jks)}


def filled(value: Any, stores: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: filled(v, stores) for k, v in value.items()}
    return value.format(**stores) if isinstance(value, str) else value


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return load_client_config(properties_file=path, environ={})


@pytest.mark.parametrize(
    ("text", "kafka", "registry", "ignored"),
    [row[1:] for row in ACCEPTED],
    ids=[row[0] for row in ACCEPTED],
)
def test_a_file_maps_onto_the_clients_keys(
    tmp_path: Path,
    stores: dict[str, str],
    text: str,
    kafka: dict[str, str],
    registry: dict[str, str],
    ignored: set[str],
) -> None:
    config = load(tmp_path, filled(text, stores))
    assert config.kafka() == filled(kafka, stores)
    assert config.registry() == filled(registry, stores)
    assert set(config.ignored) == ignored
    SchemaRegistryClient(config.registry())  # the real client takes every key


# --------------------------------------------------------------------------- refused

REFUSED: list[tuple[str, str, str]] = [
    # (name, file, the one line; {path} is the file, {jks} a JKS file)
    ("sasl-without-mechanism-or-credentials",
     "security.protocol=SASL_SSL\n",
     "security.protocol (from {path})=SASL_SSL needs sasl.mechanism (PLAIN, SCRAM-SHA-256, "
     "SCRAM-SHA-512, OAUTHBEARER) with its credentials, or sasl.jaas.config"),
    ("scram-module-without-mechanism",
     "security.protocol=SASL_SSL\nsasl.jaas.config=org.apache.kafka.common.security.scram."
     "ScramLoginModule required username=\"app\" password=\"scram-secret\";\n",
     "sasl.jaas.config (from {path}) uses ScramLoginModule: set sasl.mechanism to "
     "SCRAM-SHA-256 or SCRAM-SHA-512"),
    ("kerberos",
     "security.protocol=SASL_PLAINTEXT\nsasl.kerberos.service.name=kafka\n"
     "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required "
     "useKeyTab=true keyTab=\"/etc/app.keytab\" principal=\"app@CORP\";\n",
     "sasl.mechanism (from {path}, the sasl.jaas.config login module): librdkafka: No "
     "provider for SASL mechanism GSSAPI: recompile librdkafka with libsasl2 or openssl "
     "support. Current build options: PLAIN SASL_SCRAM OAUTHBEARER"),
    ("unknown-login-module",
     "security.protocol=SASL_SSL\nsasl.jaas.config=com.corp.MyLoginModule required "
     "password=\"jaas-secret\";\n",
     "sasl.jaas.config (from {path}): unknown login module MyLoginModule (known: "
     "PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule, Krb5LoginModule)"),
    ("jaas-not-jaas",
     "security.protocol=SASL_SSL\nsasl.jaas.config=username=u password=jaas-secret\n",
     "sasl.jaas.config (from {path}): expected '<LoginModule> required key=\"value\" ...;' "
     "(the value is not shown: it may hold a secret)"),
    ("two-spellings-disagree",
     "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.mechanisms=SCRAM-SHA-256\n"
     "sasl.username=u\nsasl.password=p\n",
     "sasl.mechanism and sasl.mechanisms (from {path}) disagree: 'PLAIN' and 'SCRAM-SHA-256'"),
    ("unknown-mechanism",
     "security.protocol=SASL_SSL\nsasl.mechanism=KERBEROS\n",
     "sasl.mechanism (from {path}): unknown mechanism 'KERBEROS' (known: PLAIN, "
     "SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, GSSAPI)"),
    ("jks-truststore-by-type",
     "security.protocol=SSL\nssl.truststore.location=/etc/kafka/truststore.jks\n"
     "ssl.truststore.password=changeit\nssl.truststore.type=JKS\n",
     "ssl.truststore.location (from {path}): a JKS truststore; librdkafka reads trusted "
     "certificates as PEM: export them (keytool -exportcert -rfc) and set ssl.ca.location "
     "to that file"),
    ("jks-truststore-by-content",
     "security.protocol=SSL\nssl.truststore.location={jks}\n",
     "ssl.truststore.location (from {path}): a JKS truststore; librdkafka reads trusted "
     "certificates as PEM: export them (keytool -exportcert -rfc) and set ssl.ca.location "
     "to that file"),
    ("jks-keystore",
     "security.protocol=SSL\nssl.keystore.location={jks}\nssl.keystore.password=x\n",
     "ssl.keystore.location (from {path}): a JKS keystore; librdkafka reads PKCS#12 or PEM "
     "files: convert it (keytool -importkeystore -deststoretype PKCS12, then openssl pkcs12 "
     "for PEM)"),
    ("registry-pkcs12-keystore",
     "schema.registry.ssl.keystore.location=/etc/sr.p12\nschema.registry.ssl.keystore.type=PKCS12\n",
     "schema.registry.ssl.keystore.location (from {path}): a PKCS12 keystore; the registry "
     "client reads PEM files: convert it (keytool -importkeystore -deststoretype PKCS12, then "
     "openssl pkcs12 for PEM)"),
    ("registry-hostname-check-off",
     "schema.registry.ssl.endpoint.identification.algorithm=\n",
     "schema.registry.ssl.endpoint.identification.algorithm (from {path}): the registry client "
     "always verifies the host name (only https can be set)"),
    ("user-info-source-without-user-info",
     "basic.auth.credentials.source=USER_INFO\n",
     "basic.auth.credentials.source (from {path})=USER_INFO needs basic.auth.user.info "
     "(KEY:SECRET)"),
    ("url-source-without-user-info-in-url",
     "basic.auth.credentials.source=URL\n",
     "basic.auth.credentials.source (from {path})=URL needs user info in schema.registry.url "
     "(https://KEY:SECRET@host)"),
    ("sasl-inherit-without-sasl",
     "basic.auth.credentials.source=SASL_INHERIT\n",
     "basic.auth.credentials.source (from {path})=SASL_INHERIT takes the SASL username and "
     "password, and there are none (SASL_INHERIT works with PLAIN and SCRAM)"),
    ("unknown-credentials-source",
     "basic.auth.credentials.source=TOKEN\n",
     "basic.auth.credentials.source (from {path}): unknown source 'TOKEN' (known: USER_INFO, "
     "URL, SASL_INHERIT)"),
    ("user-info-twice",
     "schema.registry.url=https://k:url-secret@sr.corp\nbasic.auth.user.info=k:info-secret\n",
     "basic.auth.user.info (from {path}) contradicts the user info in schema.registry.url "
     "(from {path}): give one of them"),
    ("user-with-a-colon",
     "schema.registry.url=https://team%3Aa:url-secret@sr.corp\n",
     "schema.registry.url (from {path}): the user name in the URL holds ':' (%3A), which "
     "HTTP Basic auth cannot carry"),
    ("bad-url-masked",
     "schema.registry.url=sr.corp://k:url-secret@x\n",
     "schema.registry.url (from {path}): expected an http:// or https:// URL, got "
     "'sr.corp://k:****@x'"),
    ("static-token-without-token",
     "bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.logical.cluster=lsrc-1\n",
     "bearer.auth.credentials.source (from {path})=STATIC_TOKEN needs bearer.auth.token"),
    ("custom-bearer",
     "bearer.auth.credentials.source=CUSTOM\n",
     "bearer.auth.credentials.source (from {path}): 'CUSTOM' is not one the registry client "
     "takes from a file (known: STATIC_TOKEN, OAUTHBEARER, OAUTHBEARER_AZURE_IMDS, "
     "SASL_OAUTHBEARER_INHERIT)"),
    ("bearer-and-basic",
     "bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.token=t\n"
     "bearer.auth.logical.cluster=l\nbasic.auth.user.info=k:s\n",
     "bearer.auth.credentials.source (from {path}) contradicts basic.auth.user.info: give one "
     "of them"),
    ("bearer-key-without-source",
     "bearer.auth.token=tok-secret\n",
     "bearer.auth.token (from {path}) needs bearer.auth.credentials.source"),
    ("auto-register",
     "auto.register.schemas=true\n",
     "auto.register.schemas=true (from {path}): flashsale never registers while producing; "
     "run: flashsale schemas register"),
    ("java-only-unknown",
     "max.request.size=2097152\n",
     "{path}: unknown configuration key 'max.request.size'"),
    ("librdkafka-refuses-a-value",
     "compression.type=zip\n",
     "compression.type (from {path}): librdkafka: Invalid value \"zip\" for configuration "
     "property \"compression.codec\""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"), [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED]
)
def test_a_file_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, stores: dict[str, str], text: str, message: str
) -> None:
    path = tmp_path / "client.properties"
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text.format(**stores))
    assert str(err.value) == message.format(path=path, **stores)
    assert "-secret" not in str(err.value)  # no secret value is ever quoted
