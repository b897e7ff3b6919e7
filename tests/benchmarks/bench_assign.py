"""Benchmark: ``uplift assign`` on a 10,000,000-row Parquet base, and the hashing throughput.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_assign.py [--rows N] [--workdir DIR] [--timeline]

It writes a synthetic base (id, eligibility flag, five features, a pre-period metric) once,
launches it with ``uplift assign`` in a child process into a fresh SQLite ledger, then runs
the same command again (the idempotent re-run, which reads the ledger back and adds
nobody), and reports each run's wall time and peak resident memory. Then, in this
process, it hashes the same ids with :func:`uplift.design.hashing.buckets` and with a plain
``hashlib.sha256`` loop, and reports both throughputs and their ratio (the two share the
machine's noise). With ``--timeline`` it launches once more in process into a fresh
ledger and prints when each stage started and ended, with the resident memory then and
the peak.
"""

from __future__ import annotations

import argparse
import contextlib
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
    parser.add_argument("--timeline", action="store_true", help="time each stage in process")
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

    command = [str(spec), "--out", str(work / "arms.parquet")]
    for label in ("uplift assign", "uplift assign again (nobody new)"):
        wall, peak_gb = _run_child(command)
        print(f"{label}, {args.rows:,} rows: {wall:.1f} s wall, peak RSS {peak_gb:.2f} GB")

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
    if args.timeline:
        del ids
        shutil.rmtree(ledger, ignore_errors=True)
        timeline(command)


# runs the CLI in the child and prints the child's own peak resident memory last
_CHILD = """
import resource, sys
from uplift.cli import main
sys.argv = ["uplift", "assign", *sys.argv[1:]]
try:
    main()
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _run_child(command: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *command],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024**2


def timeline(command: list[str]) -> None:
    """Launch in process and print each stage's start and end with the memory then."""
    import functools
    import threading

    from uplift import cli, pipeline
    from uplift.data import export
    from uplift.design import launch, ledger

    origin = time.perf_counter()
    events: list[tuple[float, float, str]] = []
    peak = [0.0]

    def rss_gb() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize() / 1024**3

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_gb())
            time.sleep(0.05)

    def mark(owner: object, name: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            events.append((time.perf_counter() - origin, rss_gb(), f"{name} starts"))
            try:
                return function(*args, **kwargs)
            finally:
                events.append((time.perf_counter() - origin, rss_gb(), f"{name} ends"))

        setattr(owner, name, wrapper)

    for owner, name in [
        (launch, "_stream"),
        (launch, "_record"),
        (ledger.Ledger, "add_assignments"),
        (pipeline, "diagnostics"),
        (export, "stage_assignments"),
    ]:
        mark(owner, name)
    threading.Thread(target=sample, daemon=True).start()
    sys.argv = ["uplift", "assign", *command]
    with contextlib.suppress(SystemExit):
        cli.main()
    events.append((time.perf_counter() - origin, rss_gb(), "done"))
    for at, gb, what in sorted(events):
        print(f"  {at:6.1f} s  {gb:4.2f} GB  {what}")
    print(f"  peak RSS {peak[0]:.2f} GB (the ledger is written in a worker thread)")


if __name__ == "__main__":
    main()
