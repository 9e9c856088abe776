"""The contract on disk, offline: the ``.avsc`` files and what they promise.

* :mod:`~producer.contract.catalog`: load, lint and fingerprint the schema folder;
* :mod:`~producer.contract.compat`: reader/writer compatibility by Apache Avro's checker;
* :mod:`~producer.contract.evolution`: check the newest version, diff two versions;
* :mod:`~producer.contract.readers`: consumer contracts, every reader against every writer.
"""
