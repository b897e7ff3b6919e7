"""``uplift effects``: average effects over a whole launched base from per-arm aggregates.

A Parquet base is launched with ``uplift assign``; outcomes with a known effect per arm
are drawn for every customer (and for customers outside the experiment, who must be
left out). The reference is computed here on the joined data held in memory: statsmodels'
``CompareMeans.tconfint_diff(usevar="unequal")`` for the interval and scipy's Welch
``ttest_ind`` for the p-value. The Spark engine must give the same table to 1e-9.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_support import error_paragraph, uplift
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from test_spark_assign import write_base, write_spec

from uplift import pipeline
from uplift.design.ledger import Ledger
from uplift.spec import load_spec

EFFECT = {"control": 0.0, "sms": 0.4, "push": 0.1}


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """A launched base of 60,000 and outcomes for all of them, written as a Parquet folder."""
    work = tmp_path_factory.mktemp("effects")
    base = write_base(work / "base.parquet", 60_000, seed=5)
    spec = write_spec(work, work / "base.parquet", f"sqlite:///{work / 'ledger.db'}")
    ok(uplift("assign", str(spec), "--out", "arms.csv", cwd=work))
    arms = pd.read_csv(work / "arms.csv", dtype={"msisdn": str})
    rng = np.random.default_rng(9)
    outcomes = pd.DataFrame({"msisdn": base["msisdn"], "arpu": base["arpu"]})
    arm = outcomes["msisdn"].astype(str).map(dict(zip(arms["msisdn"], arms["arm"], strict=True)))
    lift = arm.map(EFFECT).fillna(0.0).to_numpy()
    outcomes["revenue_30d"] = rng.gamma(2.0, 3.0, len(base)) + 2.0 * lift
    folder = work / "outcomes"
    folder.mkdir()
    shuffled = outcomes.sample(frac=1.0, random_state=1, ignore_index=True)
    for k, start in enumerate(range(0, len(shuffled), 20_000)):
        shuffled.iloc[start : start + 20_000].to_parquet(folder / f"part-{k}.parquet", index=False)
    joined = outcomes.assign(arm=arm).dropna(subset=["arm"])
    return work, spec, joined


def reference(joined: pd.DataFrame, arm: str) -> dict[str, float]:
    treated = joined.loc[joined["arm"] == arm, "revenue_30d"].to_numpy()
    control = joined.loc[joined["arm"] == "control", "revenue_30d"].to_numpy()
    low, high = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(
        alpha=0.05, usevar="unequal"
    )
    return {
        "n_treated": len(treated),
        "n_control": len(control),
        "estimate": treated.mean() - control.mean(),
        "ci_low": low,
        "ci_high": high,
        "p_value": stats.ttest_ind(treated, control, equal_var=False).pvalue,
    }


def test_uplift_effects_equals_statsmodels_on_the_joined_data(
    launched: tuple[Path, Path, pd.DataFrame],
) -> None:
    work, spec, joined = launched
    done = ok(
        uplift("effects", str(spec), "--outcomes", "outcomes", "--out", "effects.json", cwd=work)
    )
    rows = {row["arm"]: row for row in json.loads((work / "effects.json").read_text())}
    assert set(rows) == {"sms", "push"}
    for arm, row in rows.items():
        expected = reference(joined, arm)
        assert row["metric"] == "revenue"
        assert (row["n_treated"], row["n_control"]) == (
            expected["n_treated"],
            expected["n_control"],
        )
        for key in ("estimate", "ci_low", "ci_high", "p_value"):
            assert row[key] == pytest.approx(expected[key], rel=1e-9), key
    # the known effects: 2 x 0.4 and 2 x 0.1 on revenue, inside the intervals
    assert rows["sms"]["ci_low"] < 0.8 < rows["sms"]["ci_high"]
    assert rows["push"]["ci_low"] < 0.2 < rows["push"]["ci_high"]
    assert "average effects over" in done.stdout and "Welch intervals" in done.stdout


def test_uplift_effects_refuses_outcomes_missing_a_customer(
    launched: tuple[Path, Path, pd.DataFrame],
) -> None:
    work, spec, joined = launched
    partial = pd.concat(pd.read_parquet(p) for p in sorted((work / "outcomes").glob("*.parquet")))
    gone = joined["msisdn"].iloc[0]
    partial[partial["msisdn"] != gone].to_parquet(work / "partial.parquet", index=False)
    message = error_paragraph(
        uplift("effects", str(spec), "--outcomes", "partial.parquet", cwd=work), progress=True
    )
    assert f"1 of the {len(joined):,} customers in the experiment have no outcomes" in message
    assert f"(for example '{gone}')" in message and "partial.parquet" in message


def test_spark_gives_the_pandas_engine_s_effects(
    spark: Any, launched: tuple[Path, Path, pd.DataFrame]
) -> None:
    work, spec_path, _ = launched
    spec = load_spec(spec_path)
    ledger = Ledger(spec.ledger.url, spec.ledger.snapshots)
    tables = {
        engine: pipeline.aggregate_effects(
            spec, ledger, outcomes=work / "outcomes", engine=engine
        ).table
        for engine in ("pandas", "spark")
    }
    pd.testing.assert_frame_equal(tables["spark"], tables["pandas"], rtol=1e-9)
