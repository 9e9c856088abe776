"""What configuration shows and hides: secrets masked wherever they are printed, the
registry's user info taken out of its URL (every URL of a list), and the keys set
aside shown with their value, source and reason."""

from __future__ import annotations

import logging

import pytest

from producer.config import (
    IGNORED_KEYS,
    ClientConfig,
    Secret,
    describe,
    is_secret,
    load_client_config,
)
from producer.errors import ConfigError


def test_a_secret_shows_its_mask_and_reveals_its_value() -> None:
    secret = Secret("hunter2")
    assert (str(secret), repr(secret), secret.reveal()) == ("****", "Secret('****')", "hunter2")
    shown = Secret("http://u:pw@h", "http://u:****@h")
    assert (str(shown), repr(shown)) == ("http://u:****@h", "Secret('http://u:****@h')")


def test_secrets_are_equal_by_value_only() -> None:
    assert Secret("a") == Secret("a", "shown otherwise")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a", "x"))
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2


@pytest.mark.parametrize(
    "key",
    [
        "sasl.password",
        "schema.registry.ssl.truststore.password",
        "sasl.oauthbearer.client.secret",
        "ssl.key.pem",
        "some.future.token",
        "ssl.keystore.passphrase",
    ],
)
def test_keys_that_carry_secrets(key: str) -> None:
    assert is_secret(key)


@pytest.mark.parametrize(
    "key",
    ["sasl.oauthbearer.token.endpoint.url", "bearer.auth.issuer.endpoint.url", "sasl.username"],
)
def test_keys_that_do_not_carry_secrets_even_when_they_name_one(key: str) -> None:
    assert not is_secret(key)


def test_a_token_endpoint_url_is_shown_a_token_is_not() -> None:
    config = load_client_config(
        flags={
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.client.id": "client",
            "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token",
            "sasl.oauthbearer.client.secret": "oauth-secret-value",
        }
    )
    lines = describe(config)
    assert "sasl.oauthbearer.token.endpoint.url = https://idp.example/token  (flag)" in lines
    assert "sasl.oauthbearer.client.secret = ****  (flag)" in lines
    assert not any("oauth-secret-value" in line for line in lines)


def test_a_key_without_a_source_is_shown_as_a_default() -> None:
    config = ClientConfig(values={"b": "2", "a": Secret("s")}, sources={"b": "flag"})
    assert config.shown() == [("a", "****", "default"), ("b", "2", "flag")]


def test_user_info_is_taken_from_any_url_of_a_list() -> None:
    config = load_client_config(
        flags={"schema.registry.url": "http://h1:8081, http://sr-user:p%40ss@h2:8081"}
    )
    assert config.registry() == {
        "url": "http://h1:8081,http://h2:8081",
        "basic.auth.user.info": "sr-user:p@ss",
    }
    assert describe(config)[:3] == [
        "basic.auth.user.info = ****  (flag, the URL's user info)",
        "bootstrap.servers = localhost:9092  (default)",
        "schema.registry.url = http://h1:8081, http://sr-user:****@h2:8081  (flag)",
    ]


def test_a_password_with_an_at_sign_stays_whole() -> None:
    config = load_client_config(flags={"schema.registry.url": "https://u:p@ss@sr.example"})
    assert config.registry() == {"url": "https://sr.example", "basic.auth.user.info": "u:p@ss"}
    assert config.registry_auth() == ("u", "p@ss")


def test_the_registry_password_may_hold_colons() -> None:
    config = load_client_config(flags={"basic.auth.user.info": "key:pa:ss"})
    assert config.registry_auth() == ("key", "pa:ss")
    assert load_client_config(flags={}).registry_auth() is None


def test_no_key_set_aside_is_a_secret() -> None:
    # So the masked branch of a key set aside never shows: its value is shown as given.
    assert [k for k in IGNORED_KEYS if is_secret(k)] == []


def test_keys_set_aside_are_shown_with_value_source_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="producer.config"):
        config = load_client_config(
            flags={
                "client.dns.lookup": "use_all_dns_ips",
                "auto.register.schemas": " FALSE ",
                "use.latest.version": "false",
            }
        )
    assert config.ignored == {
        "client.dns.lookup": "use_all_dns_ips  (flag)  ignored: "
        + IGNORED_KEYS["client.dns.lookup"],
        "auto.register.schemas": " FALSE   (flag)  ignored: flashsale fixes it",
        "use.latest.version": "false  (flag)  ignored: flashsale fixes it",
    }
    assert "client.dns.lookup" not in config.kafka()
    assert "auto.register.schemas" not in config.kafka()
    assert [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()] == [
        f"flag: ignoring client.dns.lookup ({IGNORED_KEYS['client.dns.lookup']})"
    ]
    assert describe(config)[-3:] == [
        "auto.register.schemas =  FALSE   (flag)  ignored: flashsale fixes it",
        "client.dns.lookup = use_all_dns_ips  (flag)  ignored: "
        + IGNORED_KEYS["client.dns.lookup"],
        "use.latest.version = false  (flag)  ignored: flashsale fixes it",
    ]


def test_a_fixed_key_set_otherwise_is_refused_with_why() -> None:
    with pytest.raises(ConfigError) as refused:
        load_client_config(flags={"auto.register.schemas": "true"})
    assert str(refused.value) == (
        "auto.register.schemas=true (from flag): flashsale never registers while producing;"
        " run: flashsale schemas register"
    )
