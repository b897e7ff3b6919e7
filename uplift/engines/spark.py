"""Scoring a base on Apache Spark: ``uplift score --engine spark``.

The logged :class:`~uplift.scoring.ScoringModel` is broadcast to Spark's Python workers
and applied to each Arrow batch of the base through ``mapInPandas``, so a worker runs
exactly the ``ScoringModel.predict`` the pandas engine runs (the scores agree with the
pandas engine's to 1e-9; compiled trees are not used here). The base is a Parquet file
or a folder holding a Parquet dataset; the scores are written as a Parquet dataset (a
folder of part files), published by renaming a hidden folder into place once Spark has
written every part.

Needs ``pip install 'uplift[spark]'`` and a Java runtime. A local session
(``local[N]``, the default ``local[2]``) binds to 127.0.0.1 and runs no web UI.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from uplift.errors import DataError, UpliftError
from uplift.scoring import NO_ARM, ScoreReport, ScoringModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["score_with_spark", "spark_session"]


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
        with warnings.catch_warnings():
            # pyspark 4.x warns about pandas 3 on every pandas UDF; the scores are checked
            # against the pandas engine's to 1e-9 (tests/test_spark_score.py)
            warnings.filterwarnings(
                "ignore",
                message="PySpark does not yet fully support pandas",
                category=FutureWarning,
            )
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
