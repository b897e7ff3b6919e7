"""``uplift assign --engine spark`` against the pandas engine on the same 1,000,000 customers.

Spark runs in local mode on 127.0.0.1 (the session fixture of conftest.py; ``.ci/run`` sets
``UPLIFT_TEST_SPARK`` so that there these tests cannot skip). The reference is the pandas
engine's launch of the same base into another ledger: every customer must be in the same
arm, the same customers must be taken, and the snapshot must freeze the same rows. The
arms of a sample of customers are also checked one at a time against the documented rule
(:func:`uplift.design.hashing.bucket_of`), so both engines are held to the rule, not only
to each other.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_support import uplift

from uplift import pipeline
from uplift.design.hashing import GLOBAL_HOLDOUT, GLOBAL_HOLDOUT_SALT, bucket_of, layer_salt
from uplift.design.ledger import ARM_COLUMN, Ledger
from uplift.errors import DataError, SpecError
from uplift.spec import BUCKETS, load_spec

ARMS = {"control": 0.2, "sms": 0.3, "push": 0.3}
SALT = "telecom-2026-11"


def write_base(path: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """A telecom-like base: 11-digit subscriber numbers, ARPU, tenure, plan; 90% eligible."""
    rng = np.random.default_rng(seed)
    base = pd.DataFrame(
        {
            "msisdn": 79_000_000_000 + rng.permutation(n).astype(np.int64) * 7,
            "arpu": rng.gamma(2.0, 4.0, n).round(2),
            "tenure_months": rng.integers(1, 240, n),
            "plan": rng.choice(["prepaid", "postpaid", "family"], n),
            "opted_in": (rng.random(n) < 0.9).astype(np.int64),
        }
    )
    base.to_parquet(path, index=False, row_group_size=250_000)
    return base


def write_spec(folder: Path, base: Path, ledger: str, name: str = "telecom-winback") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            hypothesis: {{kind: channel, statement: an SMS or a push brings lapsed users back}}
            population:
              source: {{kind: parquet, path: {base}}}
              id: msisdn
              eligible: opted_in == 1
              features: [arpu, tenure_months, plan]
            assignment:
              salt: {SALT}
              layer: winback
              layer_share: 0.8
              arms: {ARMS}
              global_holdout: 0.05
            outcomes:
              source: {{kind: parquet, path: outcomes.parquet}}
              window_days: 30
              metrics:
                revenue: {{column: revenue_30d, kind: continuous}}
              primary: revenue
            ledger: {{url: "{ledger}", snapshots: {folder / (name + "-snapshots")}}}
            """
        ),
        encoding="utf-8",
    )
    return path


def rule(customer: str, layer: tuple[int, int]) -> str | None:
    """The documented rule for one customer: global holdout, layer, then the arm ranges."""
    if bucket_of(customer, GLOBAL_HOLDOUT_SALT) < round(0.05 * BUCKETS):
        return GLOBAL_HOLDOUT
    if not layer[0] <= bucket_of(customer, layer_salt("winback")) < layer[1]:
        return None
    bucket, start = bucket_of(customer, SALT), 0
    for arm, weight in ARMS.items():
        end = start + round(weight * BUCKETS)
        if start <= bucket < end:
            return arm
        start = end
    return None


def recorded(ledger: Ledger, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger's ``customer_id, arm`` rows and the snapshot, both by customer."""
    with ledger.engine.connect() as conn:
        record = ledger.latest(conn, name)
        assert record is not None
        rows = ledger.assignments(conn, record.id)[["customer_id", "arm"]]
        snapshot = ledger.snapshot(conn, record)
    snapshot[ARM_COLUMN] = snapshot[ARM_COLUMN].astype(str)
    snapshot["msisdn"] = snapshot["msisdn"].astype(str)
    return rows, snapshot.sort_values("msisdn", ignore_index=True)


def test_spark_assigns_a_million_customers_to_the_arms_the_pandas_engine_gives(
    spark: Any, tmp_path: Path
) -> None:
    base_path = tmp_path / "base.parquet"
    base = write_base(base_path, 1_000_000)
    ledgers = {}
    for engine in ("pandas", "spark"):
        spec_path = write_spec(tmp_path, base_path, f"sqlite:///{tmp_path / engine}.db", engine)
        spec = load_spec(spec_path)
        ledger = Ledger(spec.ledger.url, spec.ledger.snapshots)
        lines: list[str] = []
        result = pipeline.assign(spec, ledger, report=lines.append, engine=engine)
        assert result.batches[-1].n_population == 1_000_000
        assert result.n_eligible == int(base["opted_in"].sum())
        assert lines[-1] == f"launched {engine!r} version 1: {result.n_new:,} customers"
        ledgers[engine] = (ledger, result)
    (pandas_ledger, by_pandas), (spark_ledger, by_spark) = ledgers["pandas"], ledgers["spark"]
    pandas_rows, pandas_snapshot = recorded(pandas_ledger, "pandas")
    spark_rows, spark_snapshot = recorded(spark_ledger, "spark")
    # 90% eligible x (5% global holdout + 95% x 80% of the layer x 80% in the arms) = 59.2%
    assert len(pandas_rows) == len(spark_rows) == by_pandas.n_new
    assert abs(by_pandas.n_new / 1_000_000 - 0.592) < 0.003
    # every customer taken by one engine is taken by the other, in the same arm
    pd.testing.assert_frame_equal(spark_rows, pandas_rows)
    assert by_spark.new_counts == by_pandas.new_counts
    pd.testing.assert_frame_equal(spark_snapshot, pandas_snapshot, check_dtype=False)
    layer = (by_pandas.experiment.layer_start, by_pandas.experiment.layer_end)
    assert layer == (0, 8000)
    sample = spark_rows.sample(2000, random_state=0)
    assert all(
        rule(c, layer) == a for c, a in zip(sample["customer_id"], sample["arm"], strict=True)
    )
    outside = base.loc[base["opted_in"] == 1, "msisdn"].astype(str)
    outside = outside[~outside.isin(spark_rows["customer_id"])].head(500)
    assert len(outside) == 500 and all(rule(c, layer) is None for c in outside)
    assert not [p for p in (tmp_path / "spark-snapshots").iterdir() if p.name.startswith(".")]


def test_spark_refuses_a_base_that_is_not_parquet_and_a_missing_column(
    spark: Any, tmp_path: Path
) -> None:
    base_path = tmp_path / "base.parquet"
    write_base(base_path, 2000)
    spec_path = write_spec(tmp_path, base_path, f"sqlite:///{tmp_path / 'l.db'}")
    raw = spec_path.read_text(encoding="utf-8")
    csv_spec = tmp_path / "csv.yaml"
    csv_spec.write_text(
        raw.replace("kind: parquet, path: " + str(base_path), "kind: csv, path: b.csv")
    )
    with pytest.raises(
        SpecError, match=r"--engine spark assigns a Parquet base .* found kind 'csv'"
    ):
        pipeline.assign(
            load_spec(csv_spec), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), engine="spark"
        )
    typo = tmp_path / "typo.yaml"
    typo.write_text(raw.replace("features: [arpu,", "features: [arpuu,"))
    with pytest.raises(DataError, match=r"population.features names columns .* \['arpuu'\]"):
        pipeline.assign(load_spec(typo), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), engine="spark")


def test_spark_refuses_features_measured_after_the_launch(spark: Any, tmp_path: Path) -> None:
    base_path = tmp_path / "base.parquet"
    base = write_base(base_path, 2000)
    # measured yesterday, but for one opted-in subscriber next year
    today = pd.Timestamp.now(tz="UTC").normalize()
    base["measured_at"] = today - pd.Timedelta(days=1)
    late = int(base.index[base["opted_in"] == 1][17])
    base.loc[late, "measured_at"] = today + pd.Timedelta(days=365)
    base.to_parquet(base_path, index=False)
    spec_path = write_spec(tmp_path, base_path, f"sqlite:///{tmp_path / 'l.db'}")
    spec_path.write_text(
        spec_path.read_text(encoding="utf-8").replace(
            "  features: [", "  features_as_of: measured_at\n  features: ["
        ),
        encoding="utf-8",
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with pytest.raises(
        DataError,
        match=rf"features_as_of: 1 of .* measured after the launch .* customer "
        rf"{base.loc[late, 'msisdn']}",
    ):
        pipeline.assign(load_spec(spec_path), ledger, engine="spark")
    with ledger.engine.connect() as conn:
        assert ledger.experiments(conn, "telecom-winback") == []


def test_uplift_assign_engine_spark_writes_the_export_the_pandas_engine_writes(
    spark: Any, tmp_path: Path
) -> None:
    # `spark` only skips this where Spark cannot run; the command starts its own JVM
    base_path = tmp_path / "base.parquet"
    write_base(base_path, 20_000, seed=3)
    exports = {}
    for engine in ("pandas", "spark"):
        spec_path = write_spec(tmp_path, base_path, f"sqlite:///{tmp_path / engine}.db", engine)
        out = tmp_path / f"{engine}.csv"
        done = uplift("assign", str(spec_path), "--out", str(out), "--engine", engine, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "launched" in done.stdout + done.stderr
        exports[engine] = pd.read_csv(out, dtype=str)
    pd.testing.assert_frame_equal(exports["spark"], exports["pandas"])
    assert len(exports["spark"]) > 10_000
    wrong = uplift("assign", str(spec_path), "--out", "x.csv", "--engine", "dask", cwd=tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "expected pandas or spark, found 'dask'" in wrong.stderr


def test_spark_freezes_the_r_f_and_m_from_purchases_the_pandas_engine_freezes(
    spark: Any, tmp_path: Path
) -> None:
    from uplift.purchase_rfm import FROZEN_COLUMNS
    from uplift.value.rfm import rfm_from_transactions

    base_path = tmp_path / "base.parquet"
    base = write_base(base_path, 2000, seed=5)
    rng = np.random.default_rng(5)
    before_launch = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None) - pd.Timedelta(days=1)
    n = 3000
    purchases = pd.DataFrame(
        {
            "msisdn": rng.choice(base["msisdn"].to_numpy()[::2], n),
            "date": (before_launch - pd.to_timedelta(rng.integers(0, 300, n), unit="D")),
            "amount": rng.gamma(2.0, 5.0, n).round(2),
        }
    )
    purchases.assign(date=purchases["date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "purchases.csv", index=False
    )
    frozen = {}
    for engine in ("pandas", "spark"):
        spec_path = write_spec(tmp_path, base_path, f"sqlite:///{tmp_path / engine}.db", engine)
        rfm = f"{{transactions: {{kind: csv, path: {tmp_path / 'purchases.csv'}}}}}"
        spec_path.write_text(
            spec_path.read_text(encoding="utf-8") + f"value: {{rfm: {rfm}}}\n", encoding="utf-8"
        )
        pipeline.assign(
            load_spec(spec_path), Ledger(f"sqlite:///{tmp_path / engine}.db"), engine=engine
        )
        _, snapshot = recorded(Ledger(f"sqlite:///{tmp_path / engine}.db"), engine)
        frozen[engine] = snapshot[["msisdn", *FROZEN_COLUMNS.values()]]
    pd.testing.assert_frame_equal(frozen["spark"], frozen["pandas"])
    # and both are rfm_from_transactions' values as of the day before launch
    reference = rfm_from_transactions(
        purchases.assign(msisdn=purchases["msisdn"].astype(str)),
        before_launch,
        id_column="msisdn",
        customers=pd.Index(frozen["spark"]["msisdn"]),
    )
    np.testing.assert_array_equal(
        frozen["spark"][list(FROZEN_COLUMNS.values())].to_numpy(), reference.to_numpy()
    )
    assert (reference["frequency"] > 0).mean() > 0.3
