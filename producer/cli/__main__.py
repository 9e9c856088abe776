"""``python -m producer.cli``: the ``flashsale`` command without its console script."""

from producer.cli import main

main()
