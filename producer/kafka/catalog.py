"""The shop's catalog on Kafka: one Avro product record per product, on a compacted topic.

A shop publishes its catalog where its consumers can read it, and the events name
products by id. So, before the events of a run, ``produce`` writes every product of
the scenario's catalog (id, category, brand, prices, opening stock) to the products
topic: ``flash_sale_events`` gives ``flash_sale_products``, any other topic ``T``
gives ``T-products`` (:func:`products_topic`). The topic is compacted and keyed by
product id (UTF-8), so its newest record of a product is the product's truth, and
publishing the same catalog again changes nothing a consumer keeps. The value is
framed Avro of ``flash_sale_product``, registered under ``<products topic>-value``
like the events' schema, written by ``AvroSerializer`` with registration off.

Every product must be acknowledged before the first event is sent; otherwise the
run stops with :class:`~producer.errors.BrokerUnavailable` naming the topic.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.contract.catalog import SchemaFile
from producer.errors import BrokerUnavailable
from producer.events import products_topic
from producer.registry.client import SERIALIZER_CONF, Registry
from producer.simulation.engine import Simulation

__all__ = ["COMPACTED", "product_records", "products_topic", "publish_catalog"]

# Topic configuration of the products topic: keep the newest record of each key.
COMPACTED = {"cleanup.policy": "compact"}


def product_records(simulation: Simulation, currency: str = "USD") -> list[dict[str, Any]]:
    """The catalog of ``simulation``'s scenario as product records, in id order, with
    the stock each product opens the sale with (call before the run takes any)."""
    stock = simulation.catalog_stock
    catalog = str(simulation.scenario.catalog.seed)
    return [
        {
            "product_id": p.product_id,
            "category": p.category,
            "brand": p.brand,
            "list_price": p.list_price,
            "sale_price": p.sale_price,
            "currency": currency,
            "stock": None if stock is None else stock[p.index],
            "catalog": catalog,
        }
        for p in simulation.products
    ]


def publish_catalog(
    producer_conf: dict[str, Any],
    registry: Registry,
    schema: SchemaFile,
    records: list[dict[str, Any]],
    topic: str,
    timeout: float,
) -> int:
    """Send ``records`` to ``topic``, keyed by product id; the number acknowledged
    (all of them) or a one-line :class:`BrokerUnavailable`."""
    serializer = AvroSerializer(registry.client, schema.text, conf=SERIALIZER_CONF)
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer(producer_conf)
    failures: list[str] = []
    acked = 0

    def delivered(err: KafkaError | None, _msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1
        else:
            failures.append(err.str())

    for record in records:
        value = serializer(record, ctx)
        while True:
            try:
                producer.produce(topic, value, record["product_id"].encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    unconfirmed = producer.flush(timeout)
    if failures or unconfirmed:
        why = failures[0] if failures else f"not confirmed within {timeout:g}s"
        raise BrokerUnavailable(
            f"the catalog was not published to {topic}: "
            f"{len(records) - acked} of {len(records)} products not acknowledged ({why})"
        )
    return acked
