"""Run the registry: ``python -m devstack.registry --port 8081 --db registry.sqlite``.

Basic auth, when wanted, comes from ``FLASHSALE_REGISTRY_BASIC_AUTH=user:password``
in the environment, never from the command line (where ``ps`` would show it).
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from devstack.registry.app import create_app
from devstack.registry.store import RegistryStore

AUTH_ENV = "FLASHSALE_REGISTRY_BASIC_AUTH"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--db", default=":memory:", help="SQLite file, or :memory:")
    args = parser.parse_args()
    app = create_app(RegistryStore(args.db), basic_auth=os.environ.get(AUTH_ENV) or None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
