"""The ``flashsale`` command line: thin commands over the library.

Each command parses its options, calls one library function and prints. Library
errors (:class:`producer.errors.FlashsaleError`) become one line on stderr and the
error's exit code (:mod:`producer.cli.root`); nothing a user can cause ends in a
traceback. One module per command group; options are declared once
(:mod:`producer.cli.options`), output helpers live in :mod:`producer.cli.output`, and
every long-running command stops the same way (:mod:`producer.cli.signals`).
"""

from producer.cli.contract import contract
from producer.cli.local import local
from producer.cli.pipeline import demo, kpis, pipeline
from producer.cli.produce import consume, produce
from producer.cli.report import report
from producer.cli.root import main
from producer.cli.schemas import schemas
from producer.cli.simulate import scenarios, simulate

__all__ = ["main"]

for _command in (
    schemas,
    scenarios,
    simulate,
    contract,
    produce,
    consume,
    pipeline,
    kpis,
    demo,
    report,
    local,
):
    main.add_command(_command)
