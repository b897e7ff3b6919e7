"""Benchmark: ``uplift assign`` on a 10,000,000-row Parquet base, and the hashing throughput.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_assign.py [--rows N] [--workdir DIR] [--stages N]

It writes a synthetic base (id, eligibility flag, five features, a pre-period metric) once,
launches it with ``uplift assign`` in a child process into a fresh SQLite ledger, and reports
the wall time and the child's peak resident memory. Then, in this process, it hashes the
same ids with :func:`uplift.design.hashing.buckets` and with a plain ``hashlib.sha256``
loop, and reports both throughputs and their ratio (the two share the machine's noise).
With ``--stages N`` it then times each stage of a launch in process on the first N rows.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.design.hashing import buckets

SPEC = """\
name: bench-assign
hypothesis: {{kind: trial_lessons, statement: benchmark}}
population:
  source: {{kind: parquet, path: {base}}}
  id: customer_id
  eligible: applied == 1
  features: [recency_days, frequency_180d, monetary_180d, tenure_days, plan]
assignment:
  salt: bench-2026-11
  layer: lifecycle
  arms: {{control: 0.2, two_lessons: 0.4, four_lessons: 0.4}}
  global_holdout: 0.05
outcomes:
  source: {{kind: population}}
  window_days: 60
  metrics:
    revenue: {{column: revenue_pre_60d, kind: continuous}}
  primary: revenue
ledger: {{url: "sqlite:///{ledger}"}}
"""


def make_base(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(rows)], dtype="str"),
            "applied": np.ones(rows, dtype=np.int8),
            "recency_days": rng.integers(0, 365, rows),
            "frequency_180d": rng.poisson(3, rows),
            "monetary_180d": rng.gamma(2, 50, rows).round(2),
            "tenure_days": rng.integers(0, 2000, rows),
            "plan": rng.choice(["free", "basic", "pro"], rows),
            "revenue_pre_60d": rng.gamma(1, 30, rows).round(2),
        }
    ).to_parquet(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/uplift-bench"))
    parser.add_argument("--stages", type=int, default=0, help="time the stages on N rows")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    base = work / f"base-{args.rows}.parquet"
    if not base.exists():
        make_base(base, args.rows)
    ledger = work / "ledger"
    shutil.rmtree(ledger, ignore_errors=True)
    spec = work / "spec.yaml"
    spec.write_text(SPEC.format(base=base, ledger=ledger / "ledger.db"))

    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "uplift", "assign", str(spec), "--out", str(work / "arms.parquet")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"uplift assign, {args.rows:,} rows: {wall:.1f} s wall, peak RSS {peak_gb:.2f} GB")

    ids = pd.read_parquet(base, columns=["customer_id"])["customer_id"]
    start = time.perf_counter()
    buckets(ids, "bench-2026-11")
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for customer in ids.tolist():
        int.from_bytes(hashlib.sha256(f"bench-2026-11:{customer}".encode()).digest()[:8], "big")
    plain = time.perf_counter() - start
    print(
        f"hashing {len(ids):,} ids: uplift (XXH64) {len(ids) / ours / 1e6:.2f} M ids/s, "
        f"plain hashlib.sha256 loop {len(ids) / plain / 1e6:.2f} M ids/s, "
        f"ratio {plain / ours:.1f}x"
    )
    if args.stages:
        stages(spec, base, args.stages, work)


def stages(spec_path: Path, base: Path, rows: int, work: Path) -> None:
    """Time each stage of a launch on the first ``rows`` customers of the base."""
    from uplift import pipeline
    from uplift.data.export import write_assignments
    from uplift.design import launch as launch_module
    from uplift.design.ledger import Ledger
    from uplift.spec import load_spec

    spec = load_spec(spec_path)
    timings: dict[str, float] = {}

    def timed(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            result = function(*args, **kwargs)
            timings[name] = time.perf_counter() - start
            return result

        return wrapper

    start = time.perf_counter()
    population = pd.read_parquet(base).iloc[:rows]
    eligible = pipeline._eligible(spec, population, "benchmark base")
    timings["read and check the base"] = time.perf_counter() - start
    shutil.rmtree(work / "stages", ignore_errors=True)
    ledger = Ledger(f"sqlite:///{work / 'stages' / 'ledger.db'}")
    launch_module.assign_arms = timed("hashing (three salts)", launch_module.assign_arms)
    Ledger.add_assignments = timed("writing the ledger", Ledger.add_assignments)  # type: ignore[method-assign]
    result = timed("launch in all", launch_module.launch)(spec, eligible, ledger)
    timed("diagnostics", pipeline.diagnostics)(spec, ledger, result)
    timed("export", write_assignments)(result.assignments, "customer_id", work / "stages.parquet")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.2f} s ({rows:,} rows)")


if __name__ == "__main__":
    main()
