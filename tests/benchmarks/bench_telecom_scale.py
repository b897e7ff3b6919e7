"""Benchmark: a telecom-sized base (50,000,000 customers) assigned and scored on one machine.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_telecom_scale.py [--rows N] [--workdir DIR]
        [--engines pandas,spark] [--steps assign,score]

It writes a Parquet dataset of ``--rows`` customers (a folder of files of 1,000,000 rows,
generated file by file: 11-digit subscriber numbers as ids, an opt-in flag that 90% have,
eight numeric features), then runs each step in a child process of its own and reports
its wall time, its throughput in customers a second and its peak memory:

- ``assign``: ``uplift assign`` of a spec with a layer, a 5% global holdout and three
  arms over the whole base into a fresh SQLite ledger, with the Parquet export, as a user
  runs it; with ``--engine spark`` the same command on Spark.
- ``score``: what ``uplift score`` runs once it has the model: a LightGBM T-learner
  (fitted here on 100,000 customers with a simulated arm and outcome, as
  ``bench_score.py`` does) with its trees compiled, applied by ``score_file`` chunk by
  chunk to a Parquet file; on Spark, ``score_with_spark`` to a Parquet folder.

When both engines assigned, their exports are compared row by row. Peak memory is the
largest sum of the resident memory of the child and every process
below it (Spark's JVM and its Python workers included), sampled every 0.2 s from
``/proc``, next to the child's own ``ru_maxrss``. Spark runs in local mode with
``local[2]`` on the same two cores: the comparison is between engines on one machine, not
a claim about a cluster.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ID = "customer_id"
FEATURES = [f"x{j}" for j in range(8)]
FILE_ROWS = 1_000_000

SPEC = """\
name: telecom-bench
hypothesis: {{kind: channel, statement: benchmark}}
population:
  source: {{kind: parquet, path: {base}}}
  id: customer_id
  eligible: opted_in == 1
  features: [x0, x1, x2, x3]
assignment:
  salt: telecom-bench-2026-11
  layer: retention
  arms: {{control: 0.1, sms: 0.45, push: 0.45}}
  global_holdout: 0.05
outcomes:
  source: {{kind: parquet, path: outcomes.parquet}}
  window_days: 30
  metrics:
    revenue: {{column: revenue_30d, kind: continuous}}
  primary: revenue
ledger: {{url: "sqlite:///{ledger}"}}
"""


def write_base(folder: Path, rows: int) -> None:
    """The base as a folder of Parquet files, one generated at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [(ID, pa.int64()), ("opted_in", pa.int8())] + [(f, pa.float64()) for f in FEATURES]
    )
    for number, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        rng = np.random.default_rng(number)
        columns = {
            # distinct 11-digit numbers, not in order within a file
            ID: pa.array(79_000_000_000 + start + rng.permutation(n)),
            "opted_in": pa.array((rng.random(n) < 0.9).astype(np.int8)),
        }
        for j, name in enumerate(FEATURES):
            values = rng.normal(0.0, 1.0, n) if j % 2 else rng.gamma(2.0, 10.0, n)
            columns[name] = pa.array(np.round(values, 3))
        pq.write_table(
            pa.table(columns, schema=schema),
            folder / f"part-{number:05d}.parquet",
            row_group_size=250_000,
        )


def process_tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


# runs in the child: the command, then its own peak resident memory on the last line
_CHILD = """
import resource, sys, pickle
step = sys.argv[1]
if step == "cli":
    from uplift.cli import main
    sys.argv = ["uplift", *sys.argv[2:]]
    try:
        main()
    except SystemExit as exit:
        if exit.code:
            raise
elif step in ("score-pandas", "score-spark"):
    model_path, base, out = sys.argv[2:5]
    with open(model_path, "rb") as handle:
        model = pickle.load(handle)
    from pathlib import Path
    if step == "score-pandas":
        from uplift.compiled_trees import compile_scoring_model
        from uplift.scoring import score_file
        model, _ = compile_scoring_model(model)
        score_file(model, Path(base), Path(out), chunk_size=500_000)
    else:
        from uplift.engines.spark import score_with_spark
        score_with_spark(model, Path(base), Path(out), master="local[2]")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def run_child(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak GB of the process tree, and the child's own peak GB."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], process_tree_rss(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = child.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if child.returncode:
        raise SystemExit(f"{args[:2]} failed:\n{stderr[-3000:]}")
    own = int(stderr.strip().splitlines()[-1]) * 1024
    return wall, peak[0] / 1024**3, own / 1024**3


def fitted_model(base: Path, path: Path) -> None:
    """A LightGBM T-learner as bench_score.py fits it, pickled for the children."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_score import fit_model

    first = sorted(base.glob("*.parquet"))[0]
    model = fit_model(first, FEATURES, 100_000, seed=0)
    with open(path, "wb") as handle:
        pickle.dump(model, handle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/uplift-telecom"))
    parser.add_argument("--engines", default="pandas,spark")
    parser.add_argument("--steps", default="assign,score")
    args = parser.parse_args()
    work = args.workdir
    base = work / f"base-{args.rows}"
    if not base.exists():
        began = time.perf_counter()
        write_base(base, args.rows)
        print(f"wrote {args.rows:,} customers to {base} in {time.perf_counter() - began:.0f} s")
    size = sum(p.stat().st_size for p in base.glob("*.parquet")) / 1024**3
    print(f"base: {args.rows:,} customers, {size:.2f} GB of Parquet, {os.cpu_count()} cores")
    model = work / "model.pkl"
    if "score" in args.steps and not model.exists():
        fitted_model(base, model)
    rows = []
    steps = args.steps.split(",")
    if not set(steps) <= {"assign", "score"}:
        raise SystemExit(f"--steps: expected assign and/or score, found {args.steps!r}")
    for engine in args.engines.split(","):
        for step in steps:
            out = work / f"{step}-{engine}"
            shutil.rmtree(out, ignore_errors=True)
            if step == "assign":
                shutil.rmtree(work / f"ledger-{engine}", ignore_errors=True)
                spec = work / f"spec-{engine}.yaml"
                spec.write_text(SPEC.format(base=base, ledger=work / f"ledger-{engine}" / "l.db"))
                command = ["cli", "assign", str(spec), "--out", f"{out}.parquet"]
                command += ["--engine", engine]
            else:
                target = f"{out}.parquet" if engine == "pandas" else str(out)
                command = [f"score-{engine}", str(model), str(base), target]
            wall, tree, own = run_child(command)
            line = (
                f"{step:6} {engine:6} {args.rows:>12,} customers  {wall:7.1f} s  "
                f"{args.rows / wall:>10,.0f} customers/s  peak {tree:5.2f} GB "
                f"(process tree; the Python process alone {own:.2f} GB)"
            )
            print(line, flush=True)
            rows.append(line)
    print("\n".join(rows))
    exports = [work / f"assign-{engine}.parquet" for engine in ("pandas", "spark")]
    if all(path.exists() for path in exports):
        pandas_arms, spark_arms = (pq.read_table(path) for path in exports)
        same = pandas_arms.num_rows == spark_arms.num_rows and all(
            pandas_arms.column(k)
            .cast(pa.large_string())
            .equals(spark_arms.column(k).cast(pa.large_string()))
            for k in range(2)
        )
        print(
            f"exports: {pandas_arms.num_rows:,} customers from pandas, {spark_arms.num_rows:,} "
            f"from Spark; every id and arm the same: {same}"
        )


if __name__ == "__main__":
    main()
