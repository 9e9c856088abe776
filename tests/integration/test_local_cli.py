"""`flashsale local up | status | down` as a user runs them, on its own ports and data dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def flashsale(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_up_twice_status_and_down(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    broker, registry = free_port(), free_port()
    ports = ("--broker-port", str(broker), "--registry-port", str(registry))
    try:
        first = flashsale("local", "up", "--data-dir", str(data), *ports)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[:3] == [
            f"started broker on 127.0.0.1:{broker}",
            f"started registry on http://127.0.0.1:{registry}",
            "created topic flash_sale_events (6 partitions)",
        ]
        assert f"bootstrap.servers=127.0.0.1:{broker}" in first.stdout
        assert f"schema.registry.url=http://127.0.0.1:{registry}" in first.stdout
        assert requests.get(f"http://127.0.0.1:{registry}/subjects", timeout=5).json() == []

        second = flashsale("local", "up", "--data-dir", str(data), *ports)
        assert second.returncode == 0, second.stderr
        assert second.stdout.splitlines()[0] == "already running"

        status = flashsale("local", "status", "--data-dir", str(data))
        assert status.returncode == 0
        rows = [line.split()[:3] for line in status.stdout.splitlines()[1:]]
        assert rows == [
            ["broker", f"127.0.0.1:{broker}", "healthy"],
            ["registry", f"http://127.0.0.1:{registry}", "healthy"],
        ]
        assert "memory storage" in status.stdout
    finally:
        down = flashsale("local", "down", "--data-dir", str(data))
    assert down.stdout == "stopped registry, broker\n"
    after = flashsale("local", "status", "--data-dir", str(data))
    assert after.returncode == 1
    assert [line.split()[2] for line in after.stdout.splitlines()[1:]] == ["stopped", "stopped"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{registry}/", timeout=2)


def test_a_busy_port_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = flashsale(
            "local",
            "up",
            "--data-dir",
            str(tmp_path),
            "--broker-port",
            str(busy),
            "--registry-port",
            str(free_port()),
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: broker port {busy} on 127.0.0.1 is already in use; "
        "stop what holds it or choose another port\n"
    )


def test_a_missing_broker_binary_is_one_line(tmp_path: Path) -> None:
    result = flashsale(
        "local",
        "up",
        "--data-dir",
        str(tmp_path),
        "--broker-port",
        str(free_port()),
        "--registry-port",
        str(free_port()),
        env={"CALF_TANSU_BIN": str(tmp_path / "no-tansu")},
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: no Tansu broker binary: CALF_TANSU_BIN='{tmp_path / 'no-tansu'}' "
        "does not point at an executable file\n"
    )


def test_down_never_kills_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "broker.pid").write_text(f"{stranger.pid}\n")
        (tmp_path / "stack.json").write_text(
            json.dumps({"broker": {"address": "127.0.0.1:1", "marker": "tcp://127.0.0.1:1"}})
        )
        result = flashsale("local", "down", "--data-dir", str(tmp_path))
        assert result.stdout == "nothing was running\n"
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_up_where_another_stack_holds_the_data_dir_or_the_ports_is_one_line(
    tmp_path: Path,
) -> None:
    data, other = tmp_path / "stack", tmp_path / "other"
    broker, registry = free_port(), free_port()
    ports = ("--broker-port", str(broker), "--registry-port", str(registry))
    try:
        assert flashsale("local", "up", "--data-dir", str(data), *ports).returncode == 0
        # The same data dir asked for other ports: its stack runs elsewhere.
        moved = (str(free_port()), str(free_port()))
        again = flashsale("local", "up", "--data-dir", str(data),
                          "--broker-port", moved[0], "--registry-port", moved[1])  # fmt: skip
        assert (again.returncode, again.stdout) == (1, "")
        assert again.stderr == (
            f"Error: {data} already runs a broker on 127.0.0.1:{broker}, not on "
            f"127.0.0.1:{moved[0]}; stop that stack first (local down) or use another data dir\n"
        )
        # Another data dir on this stack's ports: they are taken.
        taken = flashsale("local", "up", "--data-dir", str(other), *ports)
        assert (taken.returncode, taken.stdout) == (1, "")
        assert taken.stderr == (
            f"Error: broker port {broker} on 127.0.0.1 is already in use; "
            "stop what holds it or choose another port\n"
        )
        assert flashsale("local", "status", "--data-dir", str(data)).returncode == 0
    finally:
        assert flashsale("local", "down", "--data-dir", str(data)).returncode == 0
        flashsale("local", "down", "--data-dir", str(other))
