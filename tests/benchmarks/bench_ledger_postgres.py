"""Benchmark: the ledger's bulk write (``COPY``) and read-back on PostgreSQL.

Not collected by the test run. With a server (``bash .ci/start-postgres`` prints a URL)::

    UPLIFT_TEST_POSTGRES_URL=postgresql+psycopg://... \\
        .venv/bin/python tests/benchmarks/bench_ledger_postgres.py [--rows N]

It inserts N assignments (default 1,000,000) in one transaction through
:meth:`uplift.design.ledger.Ledger.add_assignments`, reads them back with
:meth:`~uplift.design.ledger.Ledger.assignments`, and prints both times. It works in a schema
of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from uplift.design.ledger import Ledger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    base = os.environ.get("UPLIFT_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set UPLIFT_TEST_POSTGRES_URL to a PostgreSQL SQLAlchemy URL")
    schema = f"uplift_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    rows = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i}" for i in range(args.rows)], dtype="str"),
            "arm": pd.Categorical.from_codes(
                np.random.default_rng(0).integers(0, 3, args.rows), ["control", "a", "b"]
            ),
        }
    )
    ledger = Ledger(url.render_as_string(hide_password=False))
    try:
        start = time.perf_counter()
        with ledger.transaction("bench") as conn:
            experiment_id = ledger.add_experiment(
                conn,
                name="bench",
                version=1,
                spec_digest="0" * 64,
                salt="bench",
                layer=None,
                layer_start=None,
                layer_end=None,
                global_holdout=0.0,
                launched_at=datetime.now(UTC),
                counts={},
            )
            ledger.add_assignments(conn, experiment_id, 1, rows)
        written = time.perf_counter() - start
        start = time.perf_counter()
        with ledger.engine.connect() as conn:
            back = ledger.assignments(conn, experiment_id)
        read = time.perf_counter() - start
        assert len(back) == args.rows
        print(
            f"PostgreSQL ledger, {args.rows:,} assignments: written (COPY, one transaction) in "
            f"{written:.1f} s, read back in {read:.1f} s"
        )
    finally:
        ledger.engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
