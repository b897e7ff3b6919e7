"""Apache Spark as the engine of ``uplift score``, ``uplift assign`` and ``uplift effects``.

Scoring. The logged :class:`~uplift.scoring.ScoringModel` is broadcast to Spark's Python workers
and applied to each Arrow batch of the base through ``mapInPandas``, so a worker runs
exactly the ``ScoringModel.predict`` the pandas engine runs (the scores agree with the
pandas engine's to 1e-9; compiled trees are not used here). The base is a Parquet file
or a folder holding a Parquet dataset; the scores are written as a Parquet dataset (a
folder of part files), published by renaming a hidden folder into place once Spark has
written every part.

Assignment. Spark's workers select the eligible customers of a Parquet base and hash
each one into its arm with :func:`uplift.design.hashing.assign_arms`, the function the
pandas engine runs (Spark's own ``xxhash64`` has another seed, and Spark writes a
number as text differently from Python), under the plan the ledger gives
(:func:`uplift.design.launch.plan_launch`). They write the eligible rows with their arm
to a hidden folder beside the snapshots; this process then records them with
:func:`uplift.design.launch.launch`, chunk by chunk in one transaction, as the pandas
engine does: the same ledger rows, snapshot and export, and every customer in the same
arm.

Effects. Spark joins a Parquet outcomes base with the assignments on the ids as text and
returns each arm's ``count``, ``avg`` and ``var_samp`` of every metric
(:func:`gather_with_spark`), from which :mod:`uplift.analysis.aggregates` builds the
same Welch intervals as the pandas engine.

Needs ``pip install 'uplift[spark]'`` and a Java runtime. A local session
(``local[N]``, the default ``local[2]``) binds to 127.0.0.1 and runs no web UI.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from uplift.errors import DataError, SpecError, UpliftError
from uplift.scoring import NO_ARM, ScoreReport, ScoringModel
from uplift.spec import ExperimentSpec, FileSource

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from uplift.analysis.aggregates import Gathered
    from uplift.design.launch import FrozenColumns, LaunchResult
    from uplift.design.ledger import Ledger

__all__ = [
    "HASHED_COLUMN",
    "assign_with_spark",
    "gather_with_spark",
    "score_with_spark",
    "spark_session",
]

#: The column holding the arm Spark's workers hashed; not frozen in the snapshot.
HASHED_COLUMN = "__uplift_hashed_arm"


def spark_session(master: str = "local[2]") -> SparkSession:
    """A Spark session on ``master``; a local one binds to 127.0.0.1 with no web UI.

    Raises
    ------
    UpliftError
        When pyspark is not installed or Spark cannot start (no Java runtime, for one).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UpliftError(
            "--engine spark needs pyspark: pip install 'uplift[spark]' (and a Java runtime)."
        ) from None
    # the workers run this interpreter, which has uplift and its dependencies
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName("uplift")
    builder = builder.config("spark.ui.enabled", "false")
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j and the JVM launcher raise their own types
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise UpliftError(
            f"--engine spark: Spark could not start on {master!r} ({first}); it needs a Java "
            f"runtime (java on PATH or JAVA_HOME)."
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def score_with_spark(
    model: ScoringModel,
    population: Path,
    out: Path,
    *,
    master: str = "local[2]",
    report: Callable[[str], None] | None = None,
) -> ScoreReport:
    """Score every customer of a Parquet base on Spark and write a Parquet dataset.

    Parameters
    ----------
    model : ScoringModel
        The model to apply (broadcast to the workers).
    population : Path
        A Parquet file or a folder holding a Parquet dataset, with the model's id column
        and features.
    out : Path
        The folder the scores go to (Spark's part files); an earlier folder there is
        replaced only once every part is written.
    master : str
        The Spark master (``local[2]``, ``spark://host:7077``, ...).
    report : callable, optional
        Receives progress lines.

    Raises
    ------
    DataError
        When the base is not Parquet, does not exist, or lacks a column the model needs.
    """
    say = report or (lambda line: None)
    if not population.exists():
        raise DataError(
            f"--population: {population} does not exist (paths are relative to the "
            f"directory the command runs in, here {Path.cwd()})."
        )
    if not (population.is_dir() or population.suffix.lower() == ".parquet"):
        raise DataError(
            f"--population: --engine spark reads Parquet (a .parquet file or a folder of "
            f"Parquet files), found {population}."
        )
    start = time.perf_counter()
    session = spark_session(master)
    base = session.read.parquet(str(population))
    columns = [model.id_column, *model.features]
    missing = [c for c in columns if c not in base.columns]
    if missing:
        raise DataError(
            f"--population: the Parquet base {population} has no column "
            f"{', '.join(map(repr, missing))}; the model needs {columns}."
        )
    schema = _output_schema(model, base.schema[model.id_column].dataType)
    broadcast = session.sparkContext.broadcast(model)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scoring = broadcast.value
        for batch in batches:
            scored = scoring.predict(batch)
            text = [scoring.id_column, "recommended_arm"]
            yield scored.astype({c: object for c in text if scored[c].dtype != object})

    staging = out.with_name(f".{out.name}.spark-{os.getpid()}")
    say(f"scoring {population} on Spark ({master})")
    try:
        with _pandas_udfs():
            scored = base.select(*columns).mapInPandas(score, schema)
        scored.write.mode("overwrite").parquet(str(staging))
        counts = {
            str(row[0]): int(row[1])
            for row in session.read.parquet(str(staging))
            .groupBy("recommended_arm")
            .count()
            .collect()
        }
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    arms = {arm: counts.get(arm, 0) for arm in [*model.treatments, NO_ARM]}
    rows = sum(counts.values())
    say(f"scored {rows:,} customers")
    return ScoreReport(rows, time.perf_counter() - start, out, arms)


@contextmanager
def _pandas_udfs() -> Iterator[None]:
    """pyspark 4.x warns about pandas 3 on every pandas UDF: kept off the user's screen.

    The engines' results are checked against the pandas engine's (scores to 1e-9, arms
    and effects exactly: tests/test_spark_score.py, test_spark_assign.py,
    test_cli_effects.py).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


def _output_schema(model: ScoringModel, id_type: Any) -> Any:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    fields = [StructField(model.id_column, id_type)]
    for name in model.output_columns()[1:-1]:
        fields.append(StructField(name, DoubleType()))
    fields.append(StructField("recommended_arm", StringType()))
    return StructType(fields)


def _publish(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an earlier ``out`` is removed only after that."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()


def assign_with_spark(
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    new_version: bool = False,
    master: str = "local[2]",
    report: Callable[[str], None] | None = None,
    alongside: Callable[[LaunchResult], None] | None = None,
    freeze: Callable[[dt.date], FrozenColumns] | None = None,
) -> LaunchResult:
    """Launch (or extend) the experiment with Spark hashing the arms; see the module notes.

    Parameters
    ----------
    spec : ExperimentSpec
        A spec with hash assignment whose population is a Parquet file or folder.
    ledger : Ledger
        Where the launch is recorded.
    new_version, alongside, freeze
        As for :func:`uplift.design.launch.launch` (the frozen columns are computed here,
        on the chunks of Spark's output).
    master : str
        The Spark master.
    report : callable, optional
        Receives progress lines.

    Raises
    ------
    SpecError
        When the population is not a Parquet file or folder.
    DataError, AssignmentError
        As the pandas engine raises them (a missing column, no eligible customer, a
        repeated id, a spec that would move customers, ...).
    """
    from uplift.data.chunks import iter_chunks
    from uplift.data.ids import ids_as_text
    from uplift.data.sources import check_features, check_ids
    from uplift.design.hashing import assign_arms
    from uplift.design.launch import Definition, launch, plan_launch
    from uplift.expressions import parse

    say = report or (lambda line: None)
    source = spec.population.source
    if not (isinstance(source, FileSource) and source.kind == "parquet"):
        raise SpecError(
            f"population.source: --engine spark assigns a Parquet base (kind: parquet, a file "
            f"or a folder of Parquet files), found kind {source.kind!r}; use --engine pandas."
        )
    where = f"population file {source.path}"
    id_column = spec.population.id
    # the driver reads the first rows itself: a missing column or a rule that does not
    # evaluate is a clear error here, not a failed Spark task
    probe = next(iter_chunks(source.path, None, 1000, key="population.source.path"))
    check_ids(probe, id_column, where)
    check_features(probe, spec.population.features)
    rule = spec.population.eligible
    if rule is not None:
        parse(rule).evaluate(probe, source=where)
    if HASHED_COLUMN in probe.columns:
        raise DataError(f"{where}: the column name {HASHED_COLUMN!r} is reserved for the engine.")
    plan = plan_launch(spec, ledger, new_version=new_version)
    definition = Definition.from_spec(spec)
    salt, weights = definition.salt, definition.weights()

    def hashed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        eligible = parse(rule) if rule is not None else None
        for batch in batches:
            if eligible is not None:
                batch = batch[eligible.evaluate(batch, source=where).to_numpy()]
            arms = assign_arms(
                ids_as_text(batch[id_column]), salt, weights, plan.global_holdout, plan.layer
            )
            out = batch.assign(**{HASHED_COLUMN: arms.astype(object).where(arms.notna(), None)})
            text = [c for c in out.columns if isinstance(out[c].dtype, pd.StringDtype)]
            yield out.astype(dict.fromkeys(text, object))

    now = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    session = spark_session(master)
    base = session.read.parquet(str(source.path))
    from pyspark.sql.types import StringType, StructField, StructType

    # a new schema: StructType.add would change the one the DataFrame holds
    schema = StructType([*base.schema.fields, StructField(HASHED_COLUMN, StringType())])
    staging = ledger.snapshots / f".spark-{spec.name}-{os.getpid()}"
    say(f"assigning {where} on Spark ({master})")
    try:
        with _pandas_udfs():
            base.mapInPandas(hashed, schema).write.mode("overwrite").parquet(str(staging))
        n_population = base.count()
        say(f"Spark hashed {n_population:,} customers in {time.perf_counter() - start:.1f} s")
        chunks: Iterator[pd.DataFrame] = iter_chunks(
            staging, None, 1_000_000, key="the Spark engine's output"
        )
        if spec.population.features_as_of is not None:
            chunks = _measured_before(chunks, spec, where, now)
        return launch(
            spec,
            chunks,
            ledger,
            new_version=new_version,
            n_population=n_population,
            alongside=alongside,
            source=where,
            assigned=(HASHED_COLUMN, plan),
            freeze=freeze,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _measured_before(
    chunks: Iterator[pd.DataFrame], spec: ExperimentSpec, where: str, now: dt.datetime
) -> Iterator[pd.DataFrame]:
    """Each chunk of the eligible, checked for features measured after ``now``."""
    from uplift.data.timing import check_measured_before

    column = spec.population.features_as_of
    assert column is not None
    for chunk in chunks:
        check_measured_before(chunk, column, now, spec.population.id, where)
        yield chunk


def gather_with_spark(
    ids: pa.Array,
    arms: pd.Categorical,
    outcomes: Path,
    id_column: str,
    metrics: dict[str, str],
    source: str,
    *,
    master: str = "local[2]",
) -> Gathered:
    """:func:`uplift.analysis.aggregates.gather_moments` as Spark aggregations.

    The assignments go to Spark as a Parquet file; Spark joins them with the Parquet
    outcomes on the ids as text (made by the workers with the pandas engine's
    :func:`uplift.data.ids.ids_as_text`) and returns each arm's ``count``, ``avg`` and
    ``var_samp`` of every metric, plus the counts that check every assigned customer has
    exactly one row. Same errors as the pandas engine.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions
    from pyspark.sql.types import StringType, StructField, StructType

    from uplift.analysis.aggregates import ArmMoments, Gathered
    from uplift.data.ids import ids_as_text

    if not (outcomes.is_dir() or outcomes.suffix.lower() == ".parquet"):
        raise DataError(
            f"--outcomes: --engine spark reads Parquet outcomes (a .parquet file or a folder), "
            f"found {outcomes}."
        )
    if not outcomes.exists():
        raise DataError(f"--outcomes: {outcomes} does not exist.")
    session = spark_session(master)
    data = session.read.parquet(str(outcomes))
    columns = [id_column, *metrics.values()]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataError(
            f"{source} has no column {', '.join(map(repr, missing))}; expected {columns}."
        )
    key = "__uplift_id"
    schema = StructType(
        [StructField(key, StringType())] + [data.schema[c] for c in metrics.values()]
    )

    def as_text(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            text = ids_as_text(batch[id_column]).astype(object)
            yield pd.concat([text.rename(key), batch[list(metrics.values())]], axis=1)

    with tempfile.TemporaryDirectory(prefix="uplift-spark-") as folder:
        assigned_path = Path(folder) / "assigned.parquet"
        table = pa.table({key: ids.cast(pa.string()), "arm": pa.array(arms.astype(str))})
        pq.write_table(table, assigned_path)
        assigned = session.read.parquet(str(assigned_path))
        with _pandas_udfs():
            rows = data.select(*columns).mapInPandas(as_text, schema)
            joined = rows.join(assigned, on=key, how="inner").cache()
            aggregates = [
                functions.count(functions.lit(1)).alias("rows"),
                functions.countDistinct(key).alias("ids"),
            ]
            for metric, column in metrics.items():
                aggregates += [
                    functions.count(column).alias(f"{metric}:n"),
                    functions.avg(column).alias(f"{metric}:mean"),
                    functions.var_samp(column).alias(f"{metric}:var"),
                ]
            by_arm = joined.groupBy("arm").agg(*aggregates).collect()
            n_rows = data.count()
            joined.unpersist()
    matched = sum(int(r["rows"]) for r in by_arm)
    distinct = sum(int(r["ids"]) for r in by_arm)
    if matched != distinct:
        raise DataError(
            f"{source}: {matched - distinct:,} rows repeat a customer of the experiment "
            f"(column {id_column!r}); each customer needs exactly one."
        )
    if matched < len(ids):
        raise DataError(
            f"{source}: {len(ids) - matched:,} of the {len(ids):,} customers in the experiment "
            f"have no outcomes; every assigned customer needs one row."
        )
    for row in by_arm:
        for metric in metrics:
            if int(row[f"{metric}:n"]) != int(row["rows"]):
                raise DataError(
                    f"{source}: column {metrics[metric]!r} (metric {metric!r}) has missing "
                    f"values for customers in the experiment; every assigned customer needs "
                    f"a value."
                )
    moments = ArmMoments.from_rows(
        list(metrics),
        [
            (
                metric,
                str(row["arm"]),
                int(row["rows"]),
                row[f"{metric}:mean"],
                row[f"{metric}:var"] or 0.0,
            )
            for row in by_arm
            for metric in metrics
        ],
    )
    return Gathered(moments, len(ids), n_rows, matched)
