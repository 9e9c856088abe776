"""Schema Registry: the HTTP client and the workflows built on it.

* :mod:`~producer.registry.client`: the calls, subject names, errors mapped to ours;
* :mod:`~producer.registry.workflows`: register the contract, status, pull, checks.
"""
