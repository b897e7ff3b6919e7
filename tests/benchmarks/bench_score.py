"""Benchmark: ``score_file`` on 1,000,000 customers, against the bare causalml predict.

Not collected by the test run. Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_score.py [--rows N] [--features F]
        [--train N] [--chunk-size N] [--out parquet|csv] [--repeat R] [--binary]

It writes a seeded customer base of ``--rows`` customers (text ids ``c1``, ``c2``, ...,
and ``--features`` numeric features) to a Parquet file in a temporary folder, in row
groups of 100,000 rows, generated chunk by chunk so the benchmark itself never holds the
whole base. A LightGBM T-learner with one treatment arm (the package defaults of
:func:`uplift.analysis.learners.fit_uplift`, printed with the results: two LightGBM
models, on two threads) is fitted on the first ``--train`` customers with a simulated arm
and a heterogeneous outcome (with ``--binary``, a 0/1 outcome and a 0/1 metric's smaller,
more numerous linear trees, which stay on LightGBM's predict), and wrapped in a
:class:`uplift.scoring.ScoringModel` (a contact cost, no offer cost).
:func:`uplift.scoring.score_file` then scores the whole file in chunks of ``--chunk-size``
into ``--out``: every row read, scored and written, wall clock. The process's peak
resident memory (``ru_maxrss``) is read before and after the first call.

The peer runs in the same process on the same rows: the fitted causalml learner's own
``predict`` on the whole feature matrix held in memory (no reading, no encoding, no
economics, no writing), and within it the two LightGBM models' ``predict`` alone. Where
the time of ``score_file`` goes is measured stage by stage over the same chunks: reading
(``iter_chunks``), ``ScoringModel.predict`` (and, timed apart, the feature encoding and
the uplift model) and writing (``ChunkWriter``). Everything runs ``--repeat`` times,
interleaved, and the best time of each is shown: the machine is shared, and the load
average printed at the start and the end says how quiet it was.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import fit_uplift
from uplift.compiled_trees import compile_scoring_model
from uplift.data.chunks import ChunkWriter, iter_chunks
from uplift.scoring import ScoringModel, score_file
from uplift.value.costs import NoOfferCost

ID = "customer_id"
ARM = "treated"
GROUP_ROWS = 100_000


def peak_gb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def write_base(path: Path, rows: int, features: list[str], seed: int) -> None:
    """The customer base, written one row group at a time."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([(ID, pa.string())] + [(f, pa.float64()) for f in features])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, GROUP_ROWS):
            n = min(GROUP_ROWS, rows - start)
            columns = {
                ID: pa.array(np.char.add("c", np.arange(start + 1, start + n + 1).astype(str)))
            }
            for j, name in enumerate(features):
                values = rng.normal(0.0, 1.0, n) if j % 2 else rng.gamma(2.0, 10.0, n)
                columns[name] = pa.array(np.round(values, 3))
            writer.write_table(pa.table(columns, schema=schema))


def fit_model(
    path: Path, features: list[str], train: int, seed: int, binary: bool = False
) -> ScoringModel:
    """A LightGBM T-learner with one treatment arm on the first ``train`` customers; with
    ``binary``, of a 0/1 outcome (whether the continuous one exceeds 1), fitted as the
    pipeline fits a 0/1 metric."""
    sample = next(iter_chunks(path, [ID, *features], train))
    rng = np.random.default_rng(seed + 1)
    arms = np.where(rng.random(len(sample)) < 0.5, ARM, "control")
    x = sample[features].to_numpy(dtype=float)
    effect = 0.5 * (x[:, 1] > 0) - 0.3 * (x[:, 3] > 0.5) + 0.02 * x[:, 0]
    y = 0.1 * x[:, 0] + x[:, 1] + (arms == ARM) * effect + rng.normal(0.0, 1.0, len(sample))
    if binary:
        y = (y > 1.0).astype(float)
    encoder = FeatureEncoder(features).fit(sample)
    uplift = fit_uplift(
        "t_learner", encoder.transform(sample), arms, y, "control", [ARM], seed=seed,
        binary=binary,
    )  # fmt: skip
    return ScoringModel(
        id_column=ID,
        encoder=encoder,
        uplift=uplift,
        metric="y",
        value_per_unit=1.0,
        contact_cost=0.05,
        cost_models={ARM: NoOfferCost()},
        learner="t_learner",
    )


STAGES = (
    "reading (iter_chunks)",
    "ScoringModel.predict",
    "  of which feature encoding",
    "  of which the uplift model (UpliftModel.predict, compiled)",
    "writing (ChunkWriter)",
)


def stages(
    model: ScoringModel, base: Path, features: list[str], args: argparse.Namespace, tmp: Path
) -> dict[str, float]:
    """Seconds of each stage of ``score_file``, each timed on its own over the same chunks."""
    began = time.perf_counter()
    chunks = list(iter_chunks(base, [ID, *features], args.chunk_size, text_columns=[ID]))
    read = time.perf_counter() - began
    encode = uplift = predict = 0.0
    scores = []
    for chunk in chunks:
        began = time.perf_counter()
        matrix = model.encoder.transform(chunk).to_numpy(dtype=float)
        encode += time.perf_counter() - began
        began = time.perf_counter()
        model.uplift.predict(matrix)
        uplift += time.perf_counter() - began
        began = time.perf_counter()
        scores.append(model.predict(chunk))
        predict += time.perf_counter() - began
    del chunks
    began = time.perf_counter()
    with ChunkWriter(tmp / f"again.{args.out}") as writer:
        for frame in scores:
            writer.write(frame)
    write = time.perf_counter() - began
    return dict(zip(STAGES, (read, predict, encode, uplift, write), strict=True))


def timed(label: str, seconds: float, rows: int, reference: float | None = None) -> str:
    ratio = f" ({seconds / reference:.0%} of score_file)" if reference else ""
    return f"  {label}: {seconds:.2f} s, {rows / seconds:,.0f} customers/s{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=500_000)
    parser.add_argument("--out", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is shown")
    parser.add_argument(
        "--binary", action="store_true", help="a 0/1 outcome, with a 0/1 metric's models"
    )
    args = parser.parse_args()
    features = [f"f{j:02d}" for j in range(1, args.features + 1)]
    # other work on the machine shows here: the numbers below are only as quiet as this
    print(f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.parquet"
        out = Path(tmp) / f"scores.{args.out}"
        began = time.perf_counter()
        write_base(base, args.rows, features, args.seed)
        print(
            f"base: {args.rows:,} customers x {args.features} features, "
            f"{base.stat().st_size / 1024**2:.0f} MB Parquet, written in "
            f"{time.perf_counter() - began:.1f} s"
        )
        began = time.perf_counter()
        model = fit_model(base, features, args.train, args.seed, args.binary)
        params = model.uplift.learner.model_c.get_params()
        print(
            f"T-learner of a {'0/1' if args.binary else 'continuous'} outcome "
            f"(LightGBM, package defaults: {params['n_estimators']} trees of at most "
            f"{params['num_leaves']} leaves per model, {params['n_jobs']} threads) fitted on "
            f"{args.train:,} in {time.perf_counter() - began:.1f} s"
        )

        # what `uplift score` does first: compile the LightGBM models (a fresh cache, so
        # this is the cold cost; a second call finds the libraries cached)
        began = time.perf_counter()
        compiled, outcome = compile_scoring_model(model, cache_dir=Path(tmp) / "cache")
        cold = time.perf_counter() - began
        began = time.perf_counter()
        compile_scoring_model(model, cache_dir=Path(tmp) / "cache")
        warm = time.perf_counter() - began
        print(f"{outcome.describe()}; cold {cold:.2f} s, cached {warm:.2f} s")
        # a 0/1 metric's default trees are linear, which TL2cgen does not compile
        assert outcome.compiled == (0 if args.binary else 2), outcome

        before = peak_gb()
        first = score_file(compiled, base, out, chunk_size=args.chunk_size)
        after = peak_gb()  # before the peer holds the whole matrix
        assert first.rows == args.rows, first
        reference = score_file(
            model, base, Path(tmp) / f"lightgbm.{args.out}", chunk_size=args.chunk_size
        )
        a = pq.read_table(out).to_pandas() if args.out == "parquet" else None
        if a is not None:
            b = pq.read_table(Path(tmp) / f"lightgbm.{args.out}").to_pandas()
            gap = np.abs(a[f"uplift_{ARM}"].to_numpy() - b[f"uplift_{ARM}"].to_numpy()).max()
            print(f"compiled vs LightGBM's own predict, largest uplift difference: {gap:.3g}")
            assert gap <= 1e-9 and a["recommended_arm"].equals(b["recommended_arm"])
        x = pq.read_table(base, columns=features).to_pandas()[features].to_numpy(dtype=float)
        x = np.ascontiguousarray(x)
        learner = model.uplift.learner
        runs: dict[str, list[float]] = {}
        for repeat in range(args.repeat):
            if repeat:
                result = score_file(compiled, base, out, chunk_size=args.chunk_size)
                assert result.rows == args.rows, result
                runs.setdefault("score_file", []).append(result.seconds)
                result = score_file(model, base, out, chunk_size=args.chunk_size)
                runs.setdefault("uncompiled", []).append(result.seconds)
            else:
                runs.setdefault("score_file", []).append(first.seconds)
                runs.setdefault("uncompiled", []).append(reference.seconds)
            # the peer: causalml's own predict on the whole matrix, in memory
            began = time.perf_counter()
            learner.predict(X=x)
            runs.setdefault("causalml", []).append(time.perf_counter() - began)
            began = time.perf_counter()
            learner.model_c.predict(x)
            learner.models_t[ARM].predict(x)
            runs.setdefault("lightgbm", []).append(time.perf_counter() - began)
            for stage, seconds in stages(compiled, base, features, args, Path(tmp)).items():
                runs.setdefault(stage, []).append(seconds)
        del x
        best = {name: min(times) for name, times in runs.items()}
        total = best["score_file"]
        print(
            f"\nscore_file, {args.rows:,} customers in chunks of {args.chunk_size:,} -> "
            f"{args.out}, best of {args.repeat}: {total:.2f} s, {args.rows / total:,.0f} "
            f"customers/s (target 500,000; median {statistics.median(runs['score_file']):.2f} "
            f"s); peak RSS {after:.2f} GB (before scoring {before:.2f} GB)"
        )
        print(f"  recommended: {dict(first.arms)}")
        print(
            timed(
                "the same with LightGBM's own predict (--no-compile-trees)",
                best["uncompiled"],
                args.rows,
            )
        )
        print("\npeer, same process, same rows, features already in memory (best of each):")
        print(timed("causalml BaseTRegressor.predict", best["causalml"], args.rows, total))
        print(timed("its two LightGBM predicts alone", best["lightgbm"], args.rows, total))
        print(f"  score_file / causalml predict: {total / best['causalml']:.2f}x")
        print("\nstages of score_file, timed apart over the same chunks (best of each):")
        for stage in STAGES:
            print(timed(stage, best[stage], args.rows, total))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
