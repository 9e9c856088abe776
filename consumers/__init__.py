"""The reader side: reference Bronze -> Silver -> Gold jobs over the flash-sale stream.

Consumers never import ``producer``: they know their reader schema (in
``consumers/contracts``), the Schema Registry and Kafka, which is all a downstream
team has. Configuration arrives as plain librdkafka / registry dictionaries.
"""

import importlib.util
import sys

# pyarrow tries optional modules anew for every value it converts: ``import pytz``
# to give a timestamp its time zone (then zoneinfo), ``import dateutil.relativedelta``
# when it infers a value's type. Where they are not installed, each failed import
# searches sys.path again: that was most of the time spent listing a Delta table's
# files (their statistics hold timestamps) and turning rows into Python. Recording
# them as absent makes each attempt fail at once, as Python's import system documents
# for a None entry in sys.modules; pyarrow goes on as before without them.
for _optional in ("pytz", "dateutil"):
    if _optional not in sys.modules and importlib.util.find_spec(_optional) is None:
        sys.modules[_optional] = None  # type: ignore[assignment]
