"""The reader side: reference Bronze -> Silver -> Gold jobs over the flash-sale stream.

Consumers never import ``producer``: they know their reader schema (in
``consumers/contracts``), the Schema Registry and Kafka, which is all a downstream
team has. Configuration arrives as plain librdkafka / registry dictionaries.
"""
