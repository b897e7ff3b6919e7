"""Tests of uplift.analysis.effects.

Reference values come from two independent implementations of Welch's unequal-variance
t test, run in the test on the same samples:

- statsmodels 0.15: ``CompareMeans(DescrStatsW(t), DescrStatsW(c))`` with
  ``tconfint_diff(alpha=..., usevar="unequal")`` (interval), ``ttest_ind(usevar="unequal")``
  (t statistic, p-value, Welch-Satterthwaite degrees of freedom) and
  ``std_meandiff_separatevar`` (standard error);
- scipy 1.17: ``scipy.stats.ttest_ind(t, c, equal_var=False)`` (p-value, df and
  ``confidence_interval``).

Coverage is checked by simulation against a known true difference of means.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from uplift.analysis.effects import EffectResults, estimate_effects, welch_effect

TOL = 1e-10


def _binary_samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261101)
    return (rng.random(537) < 0.12).astype(float), (rng.random(412) < 0.09).astype(float)


def _lognormal_samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261102)
    return rng.lognormal(3.0, 1.1, 300), rng.lognormal(2.8, 0.7, 451)


SAMPLES = {"binary": _binary_samples, "lognormal": _lognormal_samples}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_welch_effect_matches_statsmodels(kind: str, alpha: float) -> None:
    treated, control = SAMPLES[kind]()
    result = welch_effect(treated, control, alpha)

    # reference: statsmodels CompareMeans, unequal variances (Welch)
    cm = CompareMeans(DescrStatsW(treated), DescrStatsW(control))
    low, high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    _tstat, p_value, df = cm.ttest_ind(usevar="unequal")

    assert result.estimate == pytest.approx(treated.mean() - control.mean(), abs=TOL)
    assert result.ci_low == pytest.approx(low, abs=TOL)
    assert result.ci_high == pytest.approx(high, abs=TOL)
    assert result.p_value == pytest.approx(p_value, abs=TOL)
    assert result.df == pytest.approx(df, abs=TOL)
    assert result.std_error == pytest.approx(cm.std_meandiff_separatevar, abs=TOL)
    assert (result.n_treated, result.n_control) == (treated.size, control.size)
    assert result.mean_treated == pytest.approx(treated.mean(), abs=TOL)
    assert result.mean_control == pytest.approx(control.mean(), abs=TOL)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_welch_effect_matches_scipy(kind: str) -> None:
    treated, control = SAMPLES[kind]()
    result = welch_effect(treated, control, alpha=0.1)

    # reference: scipy.stats.ttest_ind with equal_var=False (Welch's t test)
    ref = stats.ttest_ind(treated, control, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)

    assert result.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert result.df == pytest.approx(ref.df, abs=TOL)
    assert result.estimate / result.std_error == pytest.approx(ref.statistic, abs=1e-9)
    assert result.ci_low == pytest.approx(ci.low, abs=TOL)
    assert result.ci_high == pytest.approx(ci.high, abs=TOL)


def test_welch_effect_is_antisymmetric_in_its_groups() -> None:
    treated, control = _lognormal_samples()
    ab = welch_effect(treated, control)
    ba = welch_effect(control, treated)
    assert ba.estimate == pytest.approx(-ab.estimate, abs=TOL)
    assert ba.ci_low == pytest.approx(-ab.ci_high, abs=TOL)
    assert ba.ci_high == pytest.approx(-ab.ci_low, abs=TOL)
    assert ba.p_value == pytest.approx(ab.p_value, abs=TOL)


def test_welch_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    # 400 simulated two-arm experiments on a right-skewed (lognormal) revenue-like metric
    # with unequal sizes and spreads; the true difference of means is known in closed form:
    # E[lognormal(mu, s)] = exp(mu + s^2 / 2).
    rng = np.random.default_rng(7)
    experiments, n_t, n_c = 400, 250, 350
    mu_t, s_t, mu_c, s_c = 3.1, 0.9, 3.0, 0.7
    true_diff = math.exp(mu_t + s_t**2 / 2) - math.exp(mu_c + s_c**2 / 2)
    treated = rng.lognormal(mu_t, s_t, (experiments, n_t))
    control = rng.lognormal(mu_c, s_c, (experiments, n_c))

    covered = 0
    for t, c in zip(treated, control, strict=True):
        eff = welch_effect(t, c, alpha=0.05)
        covered += eff.ci_low <= true_diff <= eff.ci_high
    share = covered / experiments

    # The number of covering intervals is Binomial(400, 0.95) for an exact 95% interval:
    # its standard deviation is sqrt(0.95 * 0.05 / 400) = 1.09 percentage points, so
    # 91%-98.5% is about -3.7 to +3.2 standard deviations around 95% (a false alarm has
    # probability below 0.1%), with a little room below for the known slight
    # under-coverage of Welch intervals on skewed data at these sizes. A z interval
    # with a wrong (e.g. pooled or halved) standard error leaves this range.
    assert 0.91 <= share <= 0.985, f"coverage {share:.3f}"


def test_welch_effect_on_identical_constant_groups() -> None:
    result = welch_effect(np.full(5, 3.0), np.full(7, 3.0))
    assert result.estimate == 0.0
    assert result.std_error == 0.0
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)
    # no variation and no difference: there is no evidence either way
    assert math.isnan(result.p_value)
    assert (result.n_treated, result.n_control) == (5, 7)


def test_welch_effect_on_different_constant_groups() -> None:
    result = welch_effect(np.ones(4), np.zeros(3))
    assert result.estimate == 1.0
    assert result.std_error == 0.0
    assert (result.ci_low, result.ci_high) == (1.0, 1.0)
    # a difference with no noise at all is certain
    assert result.p_value == 0.0
    assert (result.mean_treated, result.mean_control) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("treated", "control"),
    [([1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0], [5.0]), ([], [1.0, 2.0]), ([1.0, 2.0], [])],
)
def test_welch_effect_needs_two_values_per_group(
    treated: list[float], control: list[float]
) -> None:
    with pytest.raises(ValueError, match="at least two"):
        welch_effect(np.asarray(treated), np.asarray(control))


def _experiment() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    n = 3000
    arms = pd.Series(
        rng.choice(["control", "a", "b", "global_holdout"], n, p=[0.3, 0.3, 0.3, 0.1]),
        index=pd.Index(rng.permutation(np.arange(10_000, 10_000 + n)), name="customer"),
        name="arm",
    )
    revenue = rng.lognormal(3.0, 1.0, n) * (rng.random(n) < 0.3)
    revenue += np.where(arms == "a", 4.0, 0.0) + np.where(arms == "b", -2.0, 0.0)
    # the global holdout must not leak into any comparison: give it absurd values
    revenue = np.where(arms == "global_holdout", 1e6, revenue)
    bought = (rng.random(n) < np.where(arms == "a", 0.2, 0.15)).astype(int)
    outcomes = pd.DataFrame({"rev_col": revenue, "bought_col": bought}, index=arms.index)
    return outcomes, arms


def test_estimate_effects_matches_statsmodels_per_arm_and_metric() -> None:
    outcomes, arms = _experiment()
    metrics = {"revenue": "rev_col", "bought": "bought_col"}
    results = estimate_effects(outcomes, arms, metrics, "control", ["b", "a"], alpha=0.05)

    assert isinstance(results, EffectResults)
    table = results.to_frame()
    assert list(zip(table["arm"], table["metric"], strict=True)) == [
        ("b", "revenue"),
        ("b", "bought"),
        ("a", "revenue"),
        ("a", "bought"),
    ]
    assert set(table["method"]) == {"ols_hc2"}
    for arm in ["a", "b"]:
        for metric, column in metrics.items():
            t = outcomes.loc[arms == arm, column].to_numpy(dtype=float)
            c = outcomes.loc[arms == "control", column].to_numpy(dtype=float)
            row = results.get(arm, metric)
            assert row["n_treated"] == t.size
            assert row["n_control"] == c.size
            # reference: statsmodels OLS of y on [1, T] over the two arms, HC2 covariance
            y = np.concatenate([t, c])
            design = np.column_stack([np.ones(y.size), np.r_[np.ones(t.size), np.zeros(c.size)]])
            fit = sm.OLS(y, design).fit(cov_type="HC2")
            low, high = fit.conf_int(alpha=0.05)[1]
            assert row["estimate"] == pytest.approx(fit.params[1], abs=TOL)
            assert row["ci_low"] == pytest.approx(low, abs=TOL)
            assert row["ci_high"] == pytest.approx(high, abs=TOL)
            assert row["p_value"] == pytest.approx(fit.pvalues[1], abs=TOL)
            # reference: statsmodels CompareMeans, unequal variances (Welch)
            cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
            welch_low, welch_high = cm.tconfint_diff(alpha=0.05, usevar="unequal")
            assert row["welch_estimate"] == pytest.approx(t.mean() - c.mean(), abs=TOL)
            assert row["welch_ci_low"] == pytest.approx(welch_low, abs=TOL)
            assert row["welch_ci_high"] == pytest.approx(welch_high, abs=TOL)
            assert row["std_error"] == pytest.approx(cm.std_meandiff_separatevar, abs=TOL)


def test_effect_results_records_are_plain_python_and_summary_names_the_control() -> None:
    outcomes, arms = _experiment()
    results = estimate_effects(outcomes, arms, {"revenue": "rev_col"}, "control", ["a"], 0.1)
    records = results.to_records()
    assert len(records) == 1
    for value in records[0].values():
        assert not isinstance(value, np.generic)
    text = results.summary()
    assert "'control'" in text
    assert "90%" in text
    # to_frame hands out a copy: editing it does not change the results
    frame = results.to_frame()
    frame.loc[:, "estimate"] = 0.0
    assert results.get("a", "revenue")["estimate"] != 0.0
