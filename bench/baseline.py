"""The original script's generator (../shared/seed/flash_sale_producer.py), as the baseline.

Kept verbatim in behaviour, defects included, so that benchmarks compare against what
the project replaces; it is never used to produce data.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

product_ids = list(range(1000, 1100))
EVENT_TYPES = ["view", "cart", "purchase"]


def generate_event() -> dict[str, Any]:
    price = round(random.uniform(20, 500), 2)
    qty = random.randint(1, 3)
    return {
        "event_id": str(random.randint(100000, 999999)),
        "event_source": "flash_sale",
        "user_id": random.randint(10000, 99999),
        "product_id": str(random.choice(product_ids)),
        "category": random.choice(
            ["electronics", "fashion", "home", "sports", "beauty", "books", "toys", "grocery"]
        ),
        "brand": None,
        "event_type": random.choice(EVENT_TYPES),
        "quantity": qty,
        "price": round(random.uniform(10, 2000), 2),
        "revenue": round(qty * price, 2),
        "timestamp": datetime.utcnow().isoformat(),
    }
