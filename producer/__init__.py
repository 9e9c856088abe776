"""flashsale: a flash-sale event simulator and Avro producer for Confluent-stack pipelines."""

from producer.errors import FlashsaleError
from producer.events import Device, EventType, FlashSaleEvent

__all__ = ["Device", "EventType", "FlashSaleEvent", "FlashsaleError", "__version__"]

__version__ = "0.1.0"
