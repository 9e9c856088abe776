"""The Kafka side: the Avro wire encoding, the broker checks, the producer and a consumer.

* :mod:`~producer.kafka.encoding`: Confluent-framed Avro, byte-identical to AvroSerializer
  (its unframed event bodies are also what ``simulate`` writes into Avro files);
* :mod:`~producer.kafka.admin`: is the broker there, does the topic exist (or create it);
* :mod:`~producer.kafka.produce`: a scenario streamed into a topic, every record accounted;
* :mod:`~producer.kafka.consume`: the topic read back, decoded with any reader schema.
"""
