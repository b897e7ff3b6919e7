"""Tests of per-segment effects, ratio metrics and winsorization (uplift.analysis.effects).

Reference values are computed in the test on the same rows:

- ``statsmodels.api.OLS(y, X).fit(cov_type="HC2")`` on one segment's pair of arms, with
  ``X = [1, T]`` or Lin's ``[1, T, Zc, Zc*T]`` (Zc centred over the segment's pair);
- ``statsmodels.stats._delta_method.NonlinearDeltaCov`` for ratio metrics;
- ``statsmodels.stats.multitest.multipletests`` for the adjusted p-values;
- ``scipy.stats.mstats.mquantiles(alphap=1, betap=1)`` (Hyndman and Fan's type 7, the
  linear interpolation) for the winsorizing cap;

and by simulation with known ground truth for the family-wise error of the segment
verdicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special
from scipy.stats import mstats
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.multitest import multipletests

from uplift.analysis.effects import (
    MISSING_SEGMENT,
    SEGMENT_STATUSES,
    estimate_effects,
    segment_effects,
)

ATOL = 1e-8
ARMS = ["control", "a", "b"]


def _experiment(n: int = 9000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.Index(rng.permutation(np.arange(100_000, 100_000 + n)), name="customer")
    arm = rng.choice(ARMS, n, p=[0.4, 0.3, 0.3])
    segment = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    pre = rng.gamma(0.8, 30.0, n)
    orders = rng.poisson(1.0 + 0.2 * (arm == "a"))
    revenue = (
        0.6 * pre
        + orders * rng.gamma(2.0, 10.0, n)
        + np.where((arm == "b") & (segment == "north"), -8.0, 0.0)
    )
    frame = pd.DataFrame(
        {"revenue": revenue, "orders": orders, "pre": pre, "bought": (orders > 0).astype(int)},
        index=index,
    )
    return (
        frame,
        pd.Series(arm, index=index, name="arm"),
        pd.Series(segment, index=index, name="segment"),
    )


METRICS = {
    "revenue": "revenue",
    "bought": "bought",
    "revenue_per_order": ("revenue", "orders"),
}


def _ratio_reference(revenue_t, orders_t, revenue_c, orders_c) -> tuple[float, float]:
    """Difference of ratios of means and its standard error by statsmodels' delta method."""
    params, blocks = [], []
    for num, den in ((revenue_c, orders_c), (revenue_t, orders_t)):
        params += [num.mean(), den.mean()]
        blocks.append(np.cov(np.vstack([num, den]), ddof=1) / num.size)
    cov = np.zeros((4, 4))
    cov[:2, :2], cov[2:, 2:] = blocks
    ref = NonlinearDeltaCov(lambda p: np.atleast_1d(p[2] / p[3] - p[0] / p[1]), params, cov)
    return float(ref.predicted()[0]), float(np.sqrt(ref.var()[0]))


def test_every_segment_row_equals_statsmodels_on_the_segments_rows() -> None:
    outcomes, arms, segments = _experiment()
    covariates = {"revenue": outcomes[["pre"]]}
    results = segment_effects(
        outcomes, arms, segments, METRICS, "control", ["a", "b"], covariates=covariates
    )
    table = results.to_frame()
    assert len(table) == 4 * 2 * 3
    assert list(table["segment"].unique()) == ["east", "north", "south", "west"]
    for segment in ["east", "north", "south", "west"]:
        for arm in ["a", "b"]:
            rows = (segments == segment) & arms.isin([arm, "control"])
            t = (arms[rows] == arm).to_numpy(dtype=float)
            for metric in ["revenue", "bought"]:
                y = outcomes.loc[rows, metric].to_numpy(dtype=float)
                X = [np.ones(t.size), t]
                if metric == "revenue":
                    zc = outcomes.loc[rows, "pre"].to_numpy() - outcomes.loc[rows, "pre"].mean()
                    X += [zc, zc * t]
                ref = sm.OLS(y, np.column_stack(X)).fit(cov_type="HC2")
                row = results.get(segment, arm, metric)
                assert row["method"] == ("lin_hc2" if metric == "revenue" else "ols_hc2")
                assert row["estimate"] == pytest.approx(ref.params[1], abs=ATOL)
                assert row["std_error"] == pytest.approx(ref.bse[1], abs=ATOL)
                low, high = ref.conf_int(0.05)[1]
                assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=ATOL)
                assert row["p_value"] == pytest.approx(ref.pvalues[1], abs=ATOL)
                assert row["n_treated"] == t.sum() and row["n_control"] == (1 - t).sum()
            sub = outcomes[rows]
            treated = (arms[rows] == arm).to_numpy()
            estimate, se = _ratio_reference(
                sub["revenue"].to_numpy()[treated],
                sub["orders"].to_numpy()[treated].astype(float),
                sub["revenue"].to_numpy()[~treated],
                sub["orders"].to_numpy()[~treated].astype(float),
            )
            row = results.get(segment, arm, "revenue_per_order")
            assert row["method"] == "delta_ratio"
            assert row["estimate"] == pytest.approx(estimate, abs=1e-10)
            assert row["std_error"] == pytest.approx(se, rel=1e-6)


def test_the_family_is_every_large_enough_row_and_statsmodels_corrects_it() -> None:
    outcomes, arms, segments = _experiment()
    # west has about 270 control and 200 customers per treatment arm
    results = segment_effects(
        outcomes, arms, segments, METRICS, "control", ["a", "b"], min_segment_size=300
    )
    table = results.to_frame()
    small = table["segment"] == "west"
    assert (table.loc[small, "status"] == "too_small").all()
    assert table.loc[small, "p_adjusted"].isna().all()
    assert results.family_size == (~small).sum() == 18
    expected = multipletests(table.loc[~small, "p_value"], alpha=0.05, method="holm")[1]
    np.testing.assert_allclose(table.loc[~small, "p_adjusted"], expected, atol=1e-15)
    # every verdict is read off the corrected interval, which agrees with the adjusted p
    tested = table[~small]
    width = special.ndtri(1 - tested["level"] / 2) * tested["std_error"]
    np.testing.assert_allclose(tested["corrected_ci_high"] - tested["estimate"], width)
    assert ((tested["status"] == "negative") == (tested["corrected_ci_high"] < 0)).all()
    assert ((tested["status"] == "positive") == (tested["corrected_ci_low"] > 0)).all()
    significant = tested["status"].isin(["positive", "negative"])
    assert (significant == (tested["p_adjusted"] < 0.05)).all()
    assert set(table["status"]) <= set(SEGMENT_STATUSES)


def test_a_segment_is_negative_only_when_its_corrected_interval_is_below_zero() -> None:
    # arm b costs north 8 of revenue; the rest of the effects are zero or positive
    outcomes, arms, segments = _experiment(n=40_000, seed=1)
    results = segment_effects(
        outcomes,
        arms,
        segments,
        {"revenue": "revenue"},
        "control",
        ["a", "b"],
        covariates={"revenue": outcomes[["pre"]]},
    )
    north = results.get("north", "b", "revenue")
    assert north["status"] == "negative"
    assert north["corrected_ci_high"] < 0
    # a nominally significant row that the correction does not keep is inconclusive, and
    # says what it could have detected
    table = results.to_frame()
    for row in table[table["status"] == "inconclusive"].itertuples():
        assert row.corrected_ci_low <= 0 <= row.corrected_ci_high
        assert row.detectable_effect > 0
        assert row.level < 0.05


def test_segment_effects_correct_one_family_per_call_by_simulation() -> None:
    """Ground truth: no effect anywhere, in 200 experiments of 8 segments x 2 arms x 2 metrics.

    One call per experiment, so each call's 32 rows are one family. With Holm at most 5%
    of the experiments may show any positive or negative row (here within 2.5 Monte
    Carlo standard errors, 0.05 + 2.5 * 0.015); without correction most experiments do
    (1 - 0.95**32 = 0.81 for independent tests).
    """
    rng = np.random.default_rng(20261215)
    experiments, n = 200, 4000
    alarms = uncorrected = 0
    for _ in range(experiments):
        index = pd.RangeIndex(n)
        outcomes = pd.DataFrame(
            {"revenue": rng.lognormal(2.0, 1.0, n), "bought": rng.random(n) < 0.2}, index=index
        )
        result = segment_effects(
            outcomes,
            pd.Series(rng.choice(ARMS, n), index=index),
            pd.Series(rng.integers(0, 8, n), index=index),
            {"revenue": "revenue", "bought": "bought"},
            "control",
            ["a", "b"],
            min_segment_size=50,
        )
        assert result.family_size == 32
        alarms += result.table["status"].isin(["positive", "negative"]).any()
        uncorrected += (result.table["p_value"] < 0.05).any()
    assert alarms / experiments <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / experiments)
    assert uncorrected / experiments > 0.6


def test_winsorizing_caps_at_the_experiments_quantile_and_keeps_the_raw_estimate() -> None:
    outcomes, arms, segments = _experiment()
    outcomes.loc[outcomes.index[:5], "revenue"] = 1e5  # a few whales
    pair = arms.isin(["control", "a"])
    results = estimate_effects(
        outcomes, arms, {"revenue": "revenue"}, "control", ["a", "b"], winsorize={"revenue": 0.99}
    )
    cap = float(
        mstats.mquantiles(outcomes["revenue"].to_numpy(), prob=[0.99], alphap=1, betap=1)[0]
    )
    row = results.get("a", "revenue")
    assert row["winsorized_at"] == pytest.approx(cap, rel=1e-12)
    t = (arms[pair] == "a").to_numpy(dtype=float)
    X = np.column_stack([np.ones(t.size), t])
    capped = sm.OLS(np.minimum(outcomes.loc[pair, "revenue"].to_numpy(), cap), X).fit(
        cov_type="HC2"
    )
    raw = sm.OLS(outcomes.loc[pair, "revenue"].to_numpy(), X).fit(cov_type="HC2")
    assert row["estimate"] == pytest.approx(capped.params[1], abs=ATOL)
    assert row["std_error"] == pytest.approx(capped.bse[1], abs=ATOL)
    assert row["unwinsorized_estimate"] == pytest.approx(raw.params[1], abs=ATOL)
    low, high = raw.conf_int(0.05)[1]
    assert row["unwinsorized_ci_low"] == pytest.approx(low, abs=ATOL)
    assert row["unwinsorized_ci_high"] == pytest.approx(high, abs=ATOL)
    assert row["std_error"] < raw.bse[1] / 3  # what capping the whales buys
    assert "winsorized at" in results.summary()
    # segments use the cap over the compared arms' customers, not their own
    by_segment = segment_effects(
        outcomes,
        arms,
        segments,
        {"revenue": "revenue"},
        "control",
        ["a", "b"],
        winsorize={"revenue": 0.99},
    )
    assert (by_segment.table["winsorized_at"] == row["winsorized_at"]).all()
    # an unwinsorized metric has no cap and no raw twin
    plain = estimate_effects(outcomes, arms, {"revenue": "revenue"}, "control", ["a"])
    assert np.isnan(plain.get("a", "revenue")["winsorized_at"])
    assert np.isnan(plain.get("a", "revenue")["unwinsorized_estimate"])


def test_bad_winsorizing_requests_are_refused() -> None:
    outcomes, arms, _ = _experiment(n=500)
    with pytest.raises(ValueError, match="ratio"):
        estimate_effects(
            outcomes, arms, METRICS, "control", ["a"], winsorize={"revenue_per_order": 0.9}
        )
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        estimate_effects(outcomes, arms, METRICS, "control", ["a"], winsorize={"revenue": 1.5})


def test_overall_ratio_rows_carry_the_delta_method_and_no_welch_interval() -> None:
    outcomes, arms, _ = _experiment()
    row = estimate_effects(outcomes, arms, METRICS, "control", ["a"]).get("a", "revenue_per_order")
    treated, control = arms == "a", arms == "control"
    estimate, se = _ratio_reference(
        outcomes.loc[treated, "revenue"].to_numpy(),
        outcomes.loc[treated, "orders"].to_numpy(dtype=float),
        outcomes.loc[control, "revenue"].to_numpy(),
        outcomes.loc[control, "orders"].to_numpy(dtype=float),
    )
    assert row["kind"] == "ratio" and row["method"] == "delta_ratio"
    assert row["estimate"] == pytest.approx(estimate, abs=1e-10)
    assert row["std_error"] == pytest.approx(se, rel=1e-6)
    assert row["mean_control"] == pytest.approx(
        outcomes.loc[control, "revenue"].sum() / outcomes.loc[control, "orders"].sum()
    )
    assert np.isnan(row["welch_ci_low"]) and np.isnan(row["welch_df"])


def test_missing_segment_labels_form_their_own_segment_and_records_are_plain() -> None:
    outcomes, arms, segments = _experiment(n=3000)
    segments = segments.astype(object)
    segments.iloc[:600] = None
    results = segment_effects(
        outcomes, arms, segments, {"bought": "bought"}, "control", ["a"], min_segment_size=20
    )
    assert MISSING_SEGMENT in set(results.table["segment"])
    assert (
        results.get(MISSING_SEGMENT, "a", "bought")["n_treated"] == (arms.iloc[:600] == "a").sum()
    )
    for record in results.to_records():
        assert not any(isinstance(v, np.generic) for v in record.values())
    text = results.summary()
    assert "holm across" in text and f"{results.family_size} tests" in text
    assert sum(results.counts().values()) == len(results.table)


def test_rows_are_matched_by_index_for_segments_too() -> None:
    outcomes, arms, segments = _experiment(n=4000)
    reference = segment_effects(outcomes, arms, segments, METRICS, "control", ["a", "b"])
    shuffled = segment_effects(
        outcomes.sample(frac=1, random_state=1),
        arms,
        segments.sample(frac=1, random_state=2),
        METRICS,
        "control",
        ["a", "b"],
    )
    pd.testing.assert_frame_equal(reference.table, shuffled.table, rtol=1e-10)
