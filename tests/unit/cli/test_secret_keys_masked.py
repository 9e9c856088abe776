"""Every secret key is masked in every output of the CLI (`--show-config`, error lines,
the logs of a run that fails): parametrized over ``SECRET_KEYS`` itself, so a key added
there is covered as it comes, and over the independent list in ``test_config``, so a key
dropped from it is still tried. Each key is given alone, with what it needs beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli import main
from producer.config import ALIASES, SECRET_KEYS
from tests.unit.test_config import SECRETS

KEYS = sorted(SECRET_KEYS | set(SECRETS))

SASL = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u\n"
OIDC = (
    "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nsasl.oauthbearer.method=oidc\n"
    "sasl.oauthbearer.client.id=c\nsasl.oauthbearer.token.endpoint.url=http://127.0.0.1:1/t\n"
)
BEARER = "bearer.auth.logical.cluster=lsrc-1\nbearer.auth.identity.pool.id=pool-1\n"
# What each key needs beside it to be a valid configuration.
COMPANIONS = {
    "basic.auth.user.info": "basic.auth.credentials.source=USER_INFO\n",
    "schema.registry.basic.auth.user.info": "basic.auth.credentials.source=USER_INFO\n",
    "bearer.auth.client.secret": "bearer.auth.credentials.source=OAUTHBEARER\n"
    "bearer.auth.client.id=c\nbearer.auth.issuer.endpoint.url=http://127.0.0.1:1/t\n"
    "bearer.auth.scope=s\n" + BEARER,
    "bearer.auth.token": "bearer.auth.credentials.source=STATIC_TOKEN\n" + BEARER,
    "sasl.password": SASL,
    "sasl.oauthbearer.client.secret": OIDC,
}


def secret_for(key: str) -> str:
    value = f"Zq{abs(hash(key)) % 10**9}Xw"
    return f"KEY:{value}" if key.endswith("basic.auth.user.info") else value


def properties(tmp_path: Path, key: str, companions: bool = True) -> Path:
    """A file setting ``key``; without companions, refused (user info without its ':')."""
    path = tmp_path / "client.properties"
    value = secret_for(key) if companions else hidden(key)
    path.write_text(
        "bootstrap.servers=127.0.0.1:1\nschema.registry.url=http://127.0.0.1:1\n"
        + (COMPANIONS.get(key, "") if companions else "")
        + f"{key}={value}\n"
    )
    return path


def hidden(key: str) -> str:
    return secret_for(key).removeprefix("KEY:")


@pytest.mark.parametrize("key", KEYS)
def test_show_config_masks_each_secret_key(tmp_path: Path, key: str) -> None:
    result = CliRunner().invoke(
        main, ["produce", "--config", str(properties(tmp_path, key)), "--show-config"]
    )
    assert result.exit_code == 0, result.output
    assert hidden(key) not in result.output
    named = ALIASES.get(key, key)  # shown under the name it is known by
    rows = [line for line in result.output.splitlines() if line.startswith(f"{named} = ")]
    assert rows == [f"{named} = ****  ({tmp_path / 'client.properties'})"], result.output


@pytest.mark.parametrize("key", sorted(COMPANIONS))
def test_an_error_line_about_a_secret_key_masks_its_value(tmp_path: Path, key: str) -> None:
    """Without what it needs the key is refused, in one line naming it and not its value."""
    path = properties(tmp_path, key, companions=False)
    result = CliRunner().invoke(main, ["produce", "--config", str(path), "--show-config"])
    assert result.exit_code == 2, result.output
    named = ALIASES.get(key, key)
    assert result.output.startswith(f"Error: {named} (from {path})"), result.output
    assert result.output.count("\n") == 1
    assert hidden(key) not in result.output


@pytest.mark.parametrize("key", KEYS)
def test_a_run_that_cannot_connect_logs_no_secret(
    tmp_path: Path, key: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level("DEBUG")
    monkeypatch.setenv("FLASHSALE_LOG_DIR", str(tmp_path / "logs"))
    path = properties(tmp_path, key)
    result = CliRunner().invoke(
        main, ["-vv", "produce", "--config", str(path), "--events", "1", "--connect-timeout", "0.5"]
    )
    assert result.exit_code != 0, result.output
    assert result.output.startswith("Error: "), result.output
    assert hidden(key) not in result.output
    assert hidden(key) not in caplog.text
    (log,) = (tmp_path / "logs").iterdir()  # -v's log file, traceback included
    assert "Traceback" in log.read_text() and hidden(key) not in log.read_text()
