"""Secrets never show: the real CLI, run as a user runs it, with secrets in flags, in the
environment and in a properties file; every byte it writes is searched for each secret.

`--show-config` of every command that has it prints the configuration and exits 0
without contacting anything (the addresses below answer nothing); the commands that
reach the registry fail on a closed port in one line, with the URL's password masked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from producer.cli import main
from tests.unit.cli.test_schemas import all_commands

FILE_SECRETS = ("file-jaas-pw-1", "file-sr-pw-2", "file-key-pw-3")
ENV_SECRETS = ("env-sasl-pw-4", "env-sr-pw-5")
FLAG_SECRETS = ("flag-url-pw-6", "flag-x-pw-7")
SECRETS = FILE_SECRETS + ENV_SECRETS + FLAG_SECRETS


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = closed_port()
BROKER = f"127.0.0.1:{closed_port()}"
PROPERTIES = f"""\
bootstrap.servers={BROKER}
security.protocol=SASL_PLAINTEXT
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
username='KAFKAKEY' password='{FILE_SECRETS[0]}';
ssl.key.password={FILE_SECRETS[2]}
schema.registry.url=http://127.0.0.1:{PORT}
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:{FILE_SECRETS[1]}
"""
ENV = {
    "FLASHSALE_BOOTSTRAP_SERVERS": BROKER,
    "FLASHSALE_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{PORT}",
    "FLASHSALE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "FLASHSALE_SASL_USERNAME": "KAFKAKEY",
    "FLASHSALE_SASL_PASSWORD": ENV_SECRETS[0],
    "FLASHSALE_SCHEMA_REGISTRY_USER_INFO": f"SRKEY:{ENV_SECRETS[1]}",
}
URL_WITH_PASSWORD = f"http://SRKEY:{FLAG_SECRETS[0]}@127.0.0.1:{PORT}"

# Every command with --show-config, found in the CLI (a new one is covered as it comes).
SHOWING = [path for path, c in all_commands(main) if any(p.name == "show_config" for p in c.params)]
NEEDS = {("schemas", "pull"): ("--out", "pulled"), ("schemas", "compat", "set"): ("FULL",)}


def flashsale(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the CLI; return everything it wrote (stdout, then stderr) and its exit code."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=60,
        check=False,
    )
    return f"{result.returncode}\n{result.stdout}\n--stderr--\n{result.stderr}"


def sources(
    tmp_path: Path, command: tuple[str, ...]
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The same secrets three ways: (extra arguments, environment) by where they are."""
    path = tmp_path / "client.properties"
    path.write_text(PROPERTIES)
    flags = ["--schema-registry-url", URL_WITH_PASSWORD, "--bootstrap-servers", BROKER]
    if command == ("produce",):
        flags += ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.username=u"]
        flags += ["-X", f"sasl.password={FLAG_SECRETS[1]}"]
    return {"file": (["--config", str(path)], {}), "env": ([], ENV), "flags": (flags, {})}


def assert_no_secret(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output, output


@pytest.mark.parametrize("source", ["file", "env", "flags"])
@pytest.mark.parametrize("command", SHOWING, ids=" ".join)
def test_show_config_prints_masked_and_sends_nothing(
    tmp_path: Path, command: tuple[str, ...], source: str
) -> None:
    args, env = sources(tmp_path, command)[source]
    output = flashsale(tmp_path, *command, *NEEDS.get(command, ()), *args, "--show-config", env=env)
    assert output.startswith("0\n"), output
    assert_no_secret(output)
    assert "****" in output
    if source == "flags":
        assert f"schema.registry.url = http://SRKEY:****@127.0.0.1:{PORT}  (flag)" in output
    assert output.endswith("--stderr--\n"), output  # nothing on stderr
    assert not (tmp_path / "pulled").exists()  # pull wrote nothing


def test_the_commands_with_show_config_are_found() -> None:
    assert {("produce",), ("consume",), ("schemas", "status"), ("schemas", "register")} <= set(
        SHOWING
    )
    assert len(SHOWING) >= 9


REGISTRY_COMMANDS = [
    ("schemas", "status"),
    ("schemas", "register"),
    ("schemas", "check", "--against-registry"),
    ("schemas", "pull", "--out", "pulled"),
    ("schemas", "compat", "get"),
]


@pytest.mark.parametrize("source", ["file", "env", "flags"])
@pytest.mark.parametrize("command", REGISTRY_COMMANDS, ids=" ".join)
def test_an_unreachable_registry_is_one_line_without_the_secret(
    tmp_path: Path, command: tuple[str, ...], source: str
) -> None:
    args, env = sources(tmp_path, command[:1])[source]
    output = flashsale(tmp_path, *command, *args, env=env)
    code, rest = output.split("\n", 1)
    assert code == "3", output
    stderr = rest.split("--stderr--\n", 1)[1]
    assert stderr.count("\n") == 1 and stderr.startswith("Error: "), output
    assert f"cannot reach the Schema Registry at http://127.0.0.1:{PORT}: " in stderr
    assert_no_secret(output)


@pytest.mark.parametrize("source", ["file", "env", "flags"])
def test_debug_logs_carry_no_secret_either(tmp_path: Path, source: str) -> None:
    logs = tmp_path / "logs"
    for command in (("schemas", "status"), ("produce", "--events", "1", "--connect-timeout", "1")):
        args, env = sources(tmp_path, command[:1])[source]
        output = flashsale(
            tmp_path, "-vv", *command, *args, env={**env, "FLASHSALE_LOG_DIR": str(logs)}
        )
        assert output.startswith("3\n"), output  # nothing answers: unreachable
        assert_no_secret(output)
    # -v also writes the debug log, and the tracebacks, to a file: as clean as the terminal.
    files = sorted(logs.iterdir())
    assert len(files) == 2 and all("Traceback" in f.read_text() for f in files)
    for f in files:
        assert_no_secret(f.read_text())
