"""The broker, before any record: is it there, does the topic exist, create it if asked.

Each check fails in one line that names the bootstrap servers and why, telling
refused credentials apart from a broker that cannot be reached.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from producer.errors import BrokerUnavailable, Interrupted, TopicMissing

__all__ = ["cluster_metadata", "create_topic", "librdkafka_log", "require_topic"]

log = logging.getLogger(__name__)
# librdkafka's own log lines; the CLI shows them with -v only.
librdkafka_log = logging.getLogger("flashsale.librdkafka")

_SLICE = 0.5  # seconds of one metadata wait that a stop can end

_REFUSED = (
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
)


def cluster_metadata(
    client: Any, servers: str, timeout: float, stop: threading.Event | None = None
) -> Any:
    """The cluster's metadata through ``client`` (an AdminClient, Producer or Consumer),
    or a one-line :class:`BrokerUnavailable` saying why there is none.

    The wait is asked for in short slices: librdkafka's wait does not return to
    Python, where signal handlers run, so a whole ``timeout`` would ignore Ctrl-C. With
    ``stop`` (set by a SIGINT or SIGTERM handler) it ends at once as
    :class:`Interrupted`; without, Python's own SIGINT ends it between two slices.
    """
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        try:
            return client.list_topics(timeout=max(0.01, min(deadline - asked, _SLICE)))
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() in _REFUSED:
                raise BrokerUnavailable(
                    f"Kafka at {servers} refused the credentials: {error.str()}"
                ) from exc
            if stop is not None and stop.is_set():
                raise Interrupted(f"stopped while waiting for Kafka at {servers}") from exc
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"cannot reach Kafka at {servers} within {timeout:g}s ({error.name()})"
                ) from exc
            # An answer that came back at once (no broker known yet) is asked again
            # after the rest of the slice, not in a busy loop.
            rest = min(_SLICE - (time.monotonic() - asked), deadline - time.monotonic())
            if rest > 0:
                if stop is not None:
                    stop.wait(rest)
                else:
                    time.sleep(rest)


def require_topic(metadata: Any, topic: str, servers: str) -> None:
    """:class:`TopicMissing` unless ``topic`` is in the cluster's metadata."""
    if topic not in metadata.topics:
        raise TopicMissing(f"topic {topic} does not exist on {servers}", topic)


def create_topic(
    conf: dict[str, Any],
    topic: str,
    partitions: int,
    timeout: float,
    config: dict[str, str] | None = None,
) -> None:
    """Create ``topic`` (replication factor 1, topic ``config`` such as
    ``cleanup.policy``); one that exists already is fine."""
    admin = AdminClient(conf)  # kept alive until the future resolves
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            servers = conf.get("bootstrap.servers", "?")
            raise BrokerUnavailable(
                f"cannot create topic {topic} on {servers}: {exc.args[0].str()}"
            ) from exc
    log.info("created topic %s with %d partitions", topic, partitions)
