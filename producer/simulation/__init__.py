"""The simulator, with no Kafka in it: scenarios, the engine, the ledger, pacing, sinks.

* :mod:`~producer.simulation.scenario`: the scenario model, its YAML and the built-ins;
* :mod:`~producer.simulation.engine`: sessions through the funnel, stock, event ids;
* :mod:`~producer.simulation.ledger`: the ground truth of what was emitted or acknowledged;
* :mod:`~producer.simulation.pacing`: holding a simulated clock to wall time;
* :mod:`~producer.simulation.sinks` and :mod:`~producer.simulation.run`: a run into a file.
"""
