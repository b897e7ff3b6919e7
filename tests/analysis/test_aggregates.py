"""Average effects from per-arm aggregates (uplift.analysis.aggregates).

References, computed in the tests on the whole data held in memory:
- numpy's mean and ``var(ddof=1)`` for the merged moments;
- scipy's ``stats.ttest_ind(equal_var=False)`` (Welch's t test) for the p-value and the
  degrees of freedom, and statsmodels' ``CompareMeans.tconfint_diff(usevar="unequal")``
  for the interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from uplift.analysis.aggregates import ArmMoments, Moments, gather_moments
from uplift.errors import DataError


def test_merged_moments_equal_numpy_on_the_whole_sample() -> None:
    rng = np.random.default_rng(0)
    # a large common offset: the naive sum of squares loses every digit here
    values = 1e9 + rng.gamma(2.0, 3.0, 100_003)
    merged = Moments(0, 0.0, 0.0)
    for part in np.array_split(values, [1, 2, 50, 70_000, 70_001]):
        merged = merged.merge(
            Moments(len(part), float(part.mean()), float(((part - part.mean()) ** 2).sum()))
            if len(part)
            else Moments(0, 0.0, 0.0)
        )
    assert merged.n == len(values)
    assert merged.mean == pytest.approx(values.mean(), rel=1e-15)
    assert merged.variance == pytest.approx(values.var(ddof=1), rel=1e-9)


def frame(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    arms = pd.Series(rng.choice(["control", "sms", "push"], n, p=[0.2, 0.4, 0.4]))
    effect = arms.map({"control": 0.0, "sms": 0.3, "push": -0.1}).to_numpy()
    values = pd.DataFrame(
        {
            "revenue": rng.gamma(2.0, 5.0, n) + effect * 4,
            "bought": (rng.random(n) < 0.1 + effect * 0.1).astype(float),
        }
    )
    return arms, values


def test_effects_from_chunks_equal_scipy_and_statsmodels_on_the_whole_data() -> None:
    arms, values = frame(30_001, 1)
    moments = ArmMoments(["revenue", "bought"])
    for start in range(0, len(arms), 7_000):
        moments.add(
            arms.iloc[start : start + 7_000].reset_index(drop=True),
            values.iloc[start : start + 7_000].reset_index(drop=True),
        )
    table = moments.effects("control", ["sms", "push"], alpha=0.1)
    assert list(table["metric"]) == ["revenue", "revenue", "bought", "bought"]
    for row in table.itertuples():
        treated = values.loc[arms == row.arm, row.metric].to_numpy()
        control = values.loc[arms == "control", row.metric].to_numpy()
        welch = stats.ttest_ind(treated, control, equal_var=False)
        low, high = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(
            alpha=0.1, usevar="unequal"
        )
        assert (row.n_treated, row.n_control) == (len(treated), len(control))
        assert row.estimate == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
        assert row.p_value == pytest.approx(welch.pvalue, rel=1e-9)
        assert row.df == pytest.approx(welch.df, rel=1e-9)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_gather_moments_matches_outcomes_to_assignments_whatever_their_order() -> None:
    arms, values = frame(12_000, 2)
    ids = pa.array([f"s{k}" for k in range(12_000)], pa.large_string())
    # outcomes: shuffled, with 3,000 customers who are not in the experiment
    outcomes = values.assign(msisdn=[f"s{k}" for k in range(12_000)])
    strangers = values.iloc[:3000].assign(msisdn=[f"x{k}" for k in range(3000)])
    shuffled = pd.concat([outcomes, strangers]).sample(frac=1.0, random_state=3)
    chunks = [shuffled.iloc[k : k + 4000] for k in range(0, len(shuffled), 4000)]
    gathered = gather_moments(
        ids,
        pd.Categorical(arms, categories=["control", "sms", "push"]),
        chunks,
        "msisdn",
        {"revenue": "revenue", "bought": "bought"},
        "outcomes file o.parquet",
    )
    assert (gathered.n_assigned, gathered.n_rows, gathered.n_matched) == (12_000, 15_000, 12_000)
    whole = ArmMoments(["revenue", "bought"])
    whole.add(arms, values)
    pd.testing.assert_frame_equal(
        gathered.moments.effects("control", ["sms", "push"]),
        whole.effects("control", ["sms", "push"]),
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("twice_across", r"customer 's5' has more than one row of outcomes \(column 'msisdn'\)"),
        ("twice_within", r"customer 's7' has more than one row of outcomes"),
        (
            "missing_row",
            r"1 of the 100 customers in the experiment have no outcomes \(for example 's9'\)",
        ),
        ("missing_value", r"column 'revenue' \(metric 'revenue'\) has missing values"),
    ],
)
def test_gather_moments_refuses_outcomes_that_do_not_cover_the_experiment_once(
    change: str, message: str
) -> None:
    arms, values = frame(100, 4)
    outcomes = values.assign(msisdn=[f"s{k}" for k in range(100)])
    chunks = [outcomes.iloc[:50], outcomes.iloc[50:]]
    if change == "twice_across":
        chunks.append(outcomes.iloc[[5]])
    elif change == "twice_within":
        chunks[1] = pd.concat([chunks[1], outcomes.iloc[[7]]])
    elif change == "missing_row":
        chunks[0] = chunks[0].drop(index=9)
    else:
        chunks[1] = chunks[1].copy()
        chunks[1].loc[60, "revenue"] = np.nan
    with pytest.raises(DataError, match=message):
        gather_moments(
            pa.array([f"s{k}" for k in range(100)], pa.large_string()),
            pd.Categorical(arms, categories=["control", "sms", "push"]),
            chunks,
            "msisdn",
            {"revenue": "revenue"},
            "outcomes file o.parquet",
        )
