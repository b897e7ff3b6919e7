"""``uplift score --engine spark`` against the pandas engine on the same 1,000,000 customers.

Spark runs in local mode on 127.0.0.1 (Java is on the machine; ``.ci/run`` sets
``UPLIFT_TEST_SPARK`` so that there these tests cannot skip). The reference is the
pandas engine's ``score_file`` on the same base: every customer's uplift and net value
agree to 1e-9 and every recommended arm is the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_scoring import ID, TREATMENTS, small_model

from uplift.data.simulate import simulate
from uplift.errors import DataError
from uplift.scoring import NO_ARM, score_file


def test_spark_scores_a_million_customers_as_the_pandas_engine_does(
    spark: Any, tmp_path: Path
) -> None:
    from uplift.engines.spark import score_with_spark

    model, _ = small_model()
    base = simulate("trial_lessons", 1_000_000, 3, list(TREATMENTS)).population
    population = tmp_path / "base.parquet"
    base[[ID, *model.features, "applied_premium"]].to_parquet(population, index=False)

    reference = score_file(model, population, tmp_path / "pandas.parquet", chunk_size=250_000)
    lines: list[str] = []
    out = tmp_path / "spark_scores"
    result = score_with_spark(model, population, out, report=lines.append)

    expected = pd.read_parquet(tmp_path / "pandas.parquet").set_index(ID)
    found = pd.read_parquet(out).set_index(ID)
    assert len(found) == len(expected) == 1_000_000
    found = found.loc[expected.index]
    numeric = [c for c in expected.columns if c != "recommended_arm"]
    assert len(numeric) == 2 * len(TREATMENTS)
    np.testing.assert_allclose(found[numeric], expected[numeric], rtol=0, atol=1e-9)
    assert (found["recommended_arm"].to_numpy() == expected["recommended_arm"].to_numpy()).all()
    assert result.rows == 1_000_000 and dict(result.arms) == dict(reference.arms)
    assert list(result.arms) == [*TREATMENTS, NO_ARM]
    assert lines[-1] == "scored 1,000,000 customers"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "base.parquet",
        "pandas.parquet",
        "spark_scores",
    ]  # no staging folder left behind


def test_spark_refuses_a_base_it_cannot_score_and_keeps_the_earlier_scores(
    spark: Any, tmp_path: Path
) -> None:
    from uplift.engines.spark import score_with_spark

    model, base = small_model()
    population = tmp_path / "base.parquet"
    base.drop(columns="tenure_days").to_parquet(population, index=False)
    out = tmp_path / "scores"
    out.mkdir()
    (out / "earlier.parquet").write_bytes(b"kept")
    with pytest.raises(DataError, match=r"has no column 'tenure_days'; the model needs"):
        score_with_spark(model, population, out)
    with pytest.raises(DataError, match=r"--engine spark reads Parquet"):
        base.to_csv(tmp_path / "base.csv", index=False)
        score_with_spark(model, tmp_path / "base.csv", out)
    assert [p.name for p in out.iterdir()] == ["earlier.parquet"]
