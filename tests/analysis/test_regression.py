"""Reference tests of uplift.analysis.regression (and its use in estimate_effects).

Every reference value is computed in the test, on the same data, by statsmodels 0.15:

- ``statsmodels.api.OLS(y, X).fit(cov_type="HC2")``: ``params``, ``cov_params()``,
  ``bse``, ``pvalues`` and ``conf_int(alpha)`` (normal reference distribution, since
  ``use_t`` is False for a robust covariance);
- ``statsmodels.stats.weightstats.CompareMeans(DescrStatsW(y_t), DescrStatsW(y_c))``:
  ``std_meandiff_separatevar`` (the Welch standard error) and
  ``tconfint_diff(alpha, usevar="unequal")`` (the Welch t interval);

and for the relative lift by a delta-method computation written out here from the
statsmodels ``params`` and ``cov_params()``.

Lin's (2013) design is built explicitly as ``[1, T, Zc, Zc * T]`` with
``Zc = Z - Z.mean(axis=0)`` over the rows of the two arms compared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from uplift.analysis.effects import estimate_effects
from uplift.analysis.regression import RegressionEffect, ols_hc2, regression_effect

ATOL = 1e-8
RTOL = 1e-10


def _hc2(X: np.ndarray, y: np.ndarray):  # returns a statsmodels results wrapper
    """Reference: ``statsmodels.api.OLS(y, X).fit(cov_type="HC2")``."""
    return sm.OLS(y, X).fit(cov_type="HC2")


def _lin_design(treated: np.ndarray, z: np.ndarray | None) -> np.ndarray:
    """``[1, T]`` or Lin's ``[1, T, Zc, Zc * T]`` with ``Zc = Z - Z.mean(axis=0)``."""
    t = treated.astype(float)
    n = t.size
    if z is None:
        return np.column_stack([np.ones(n), t])
    z = np.asarray(z, dtype=float).reshape(n, -1)
    zc = z - z.mean(axis=0)
    return np.column_stack([np.ones(n), t, zc, zc * t[:, None]])


def _delta_lift(params: np.ndarray, cov: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Lift ``b1 / b0`` and its delta-method interval, from statsmodels' HC2 fit.

    The gradient of ``g(b0, b1) = b1 / b0`` is ``(-b1 / b0**2, 1 / b0)``; the variance is
    ``grad' V grad`` with ``V`` the 2x2 block of ``cov_params()`` for (intercept, T).
    """
    b0, b1 = params[0], params[1]
    grad = np.array([-b1 / b0**2, 1.0 / b0])
    se = float(np.sqrt(grad @ cov[:2, :2] @ grad))
    q = stats.norm.ppf(1 - alpha / 2)
    lift = b1 / b0
    return lift, lift - q * se, lift + q * se


def _assert_matches_statsmodels(
    result: RegressionEffect, y: np.ndarray, treated: np.ndarray, z: np.ndarray | None, alpha: float
) -> None:
    """Compare every field of ``result`` with statsmodels on the explicit design."""
    ref = _hc2(_lin_design(treated, z), y)  # OLS(y, X).fit(cov_type="HC2")
    simple = _hc2(_lin_design(treated, None), y)  # OLS(y, [1, T]).fit(cov_type="HC2")
    low, high = ref.conf_int(alpha)[1]
    assert not ref.use_t  # statsmodels' intervals are normal ones here
    assert result.estimate == pytest.approx(ref.params[1], abs=ATOL)
    assert result.std_error == pytest.approx(ref.bse[1], abs=ATOL)
    assert result.ci_low == pytest.approx(low, abs=ATOL)
    assert result.ci_high == pytest.approx(high, abs=ATOL)
    assert result.p_value == pytest.approx(ref.pvalues[1], abs=ATOL)
    assert result.control_mean == pytest.approx(ref.params[0], abs=ATOL)
    assert result.unadjusted_std_error == pytest.approx(simple.bse[1], abs=ATOL)
    assert result.variance_reduction == pytest.approx(
        1 - (ref.bse[1] / simple.bse[1]) ** 2, abs=ATOL
    )
    lift, lift_low, lift_high = _delta_lift(ref.params, ref.cov_params(), alpha)
    assert result.lift == pytest.approx(lift, abs=ATOL)
    assert result.lift_ci_low == pytest.approx(lift_low, abs=ATOL)
    assert result.lift_ci_high == pytest.approx(lift_high, abs=ATOL)


def _continuous_data(seed: int, n: int = 700) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome with heteroskedastic noise, unequal arms, two pre-period covariates."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.4
    z = np.column_stack([rng.gamma(2.0, 5.0, n), rng.normal(3.0, 2.0, n)])
    noise = rng.normal(size=n) * (1.0 + 0.1 * z[:, 0] + 1.5 * treated)
    y = 20.0 + 3.0 * treated + 0.8 * z[:, 0] - 1.2 * z[:, 1] + 0.2 * treated * z[:, 0] + noise
    return y, treated, z


def _binary_data(seed: int, n: int = 900) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0/1 outcome whose probability depends on treatment and a pre-period count."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.55
    z = rng.poisson(1.5, n).astype(float)
    p = np.clip(0.08 + 0.05 * z + 0.04 * treated, 0.0, 1.0)
    y = (rng.random(n) < p).astype(float)
    return y, treated, z


def test_ols_hc2_matches_statsmodels_params_and_covariance() -> None:
    rng = np.random.default_rng(20261201)
    n = 400
    X = np.column_stack(
        [np.ones(n), rng.normal(size=n), rng.exponential(2.0, n), rng.random(n) < 0.3]
    ).astype(float)
    # heteroskedastic noise: its spread grows with the second and third columns
    y = X @ np.array([1.5, -2.0, 0.7, 4.0]) + rng.normal(size=n) * (0.5 + np.abs(X[:, 1]) + X[:, 2])
    fit = ols_hc2(X, y)
    ref = _hc2(X, y)  # statsmodels.api.OLS(y, X).fit(cov_type="HC2")
    np.testing.assert_allclose(fit.params, ref.params, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(fit.cov, ref.cov_params(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(fit.bse, ref.bse, rtol=RTOL, atol=ATOL)
    # HC2 is not the classical (homoskedastic) covariance, nor HC0/HC1: those differ here
    for other in ("nonrobust", "HC0", "HC1", "HC3"):
        assert not np.allclose(
            fit.cov, sm.OLS(y, X).fit(cov_type=other).cov_params(), rtol=1e-6, atol=0
        )


def test_ols_hc2_matches_statsmodels_on_five_columns_with_large_values() -> None:
    rng = np.random.default_rng(20261202)
    n = 250
    X = np.column_stack(
        [
            np.ones(n),
            rng.lognormal(6.0, 1.0, n),
            rng.normal(size=n),
            rng.integers(0, 5, n),
            rng.normal(size=n) ** 2,
        ]
    ).astype(float)
    y = X @ np.array([1000.0, 0.3, 50.0, -20.0, 10.0]) + rng.normal(size=n) * 30 * (1 + X[:, 4])
    fit = ols_hc2(X, y)
    ref = _hc2(X, y)  # statsmodels.api.OLS(y, X).fit(cov_type="HC2")
    # values span many orders of magnitude: compare relatively
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-9, atol=0)
    np.testing.assert_allclose(fit.cov, ref.cov_params(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_regression_effect_without_covariates_matches_statsmodels(alpha: float) -> None:
    y, treated, _z = _continuous_data(31)
    result = regression_effect(y, treated, alpha=alpha)
    # reference: statsmodels.api.OLS(y, [1, T]).fit(cov_type="HC2"), conf_int(alpha)
    _assert_matches_statsmodels(result, y, treated, None, alpha)
    assert result.estimate == pytest.approx(y[treated].mean() - y[~treated].mean(), abs=ATOL)
    assert result.control_mean == pytest.approx(y[~treated].mean(), abs=ATOL)
    # no covariates: nothing to reduce
    assert result.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert result.std_error == result.unadjusted_std_error


def test_regression_effect_standard_error_is_the_welch_one() -> None:
    y, treated, _z = _continuous_data(32)
    result = regression_effect(y, treated)
    # reference: statsmodels CompareMeans(...).std_meandiff_separatevar (unpooled SE)
    welch_se = CompareMeans(DescrStatsW(y[treated]), DescrStatsW(y[~treated]))
    assert result.std_error == pytest.approx(welch_se.std_meandiff_separatevar, abs=ATOL)
    # and not the pooled one, which differs with these unequal arms and spreads
    assert result.std_error != pytest.approx(welch_se.std_meandiff_pooledvar, abs=1e-4)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_regression_effect_with_one_covariate_matches_statsmodels_lin_design(
    alpha: float,
) -> None:
    y, treated, z = _continuous_data(33)
    covariate = z[:, 0]
    result = regression_effect(y, treated, covariate, alpha=alpha)
    # reference: statsmodels OLS(y, [1, T, Zc, Zc*T]).fit(cov_type="HC2"), conf_int(alpha)
    _assert_matches_statsmodels(result, y, treated, covariate, alpha)
    # the covariate explains much of y: the adjusted interval is narrower
    assert 0.2 < result.variance_reduction < 1.0


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_regression_effect_with_two_covariates_matches_statsmodels_lin_design(
    alpha: float,
) -> None:
    y, treated, z = _continuous_data(34)
    result = regression_effect(y, treated, z, alpha=alpha)
    # reference: statsmodels OLS(y, [1, T, Zc1, Zc2, Zc1*T, Zc2*T]).fit(cov_type="HC2")
    _assert_matches_statsmodels(result, y, treated, z, alpha)
    assert result.variance_reduction > 0.2


def test_regression_effect_centres_covariates_so_the_estimate_is_the_average_effect() -> None:
    # With uncentred covariates and an interaction, the T coefficient would be the effect
    # at Z = 0, far from the average effect here; centring makes it the average effect.
    y, treated, z = _continuous_data(35)
    result = regression_effect(y, treated, z[:, 0])
    uncentred = _hc2(
        np.column_stack([np.ones(y.size), treated, z[:, 0], z[:, 0] * treated]), y
    )  # statsmodels OLS on the uncentred design, for contrast
    assert abs(result.estimate - uncentred.params[1]) > 1.0
    # shifting the covariate by a constant changes nothing after centring
    shifted = regression_effect(y, treated, z[:, 0] + 1e3)
    assert shifted.estimate == pytest.approx(result.estimate, abs=1e-8)
    assert shifted.std_error == pytest.approx(result.std_error, abs=1e-8)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_regression_effect_lift_matches_delta_method_on_statsmodels_fit(alpha: float) -> None:
    y, treated, z = _continuous_data(36)
    for covariates in (None, z[:, 1], z):
        result = regression_effect(y, treated, covariates, alpha=alpha)
        # reference: delta method on OLS(...).fit(cov_type="HC2").params / cov_params()
        ref = _hc2(_lin_design(treated, covariates), y)
        lift, low, high = _delta_lift(ref.params, ref.cov_params(), alpha)
        assert result.lift == pytest.approx(lift, abs=ATOL)
        assert result.lift_ci_low == pytest.approx(low, abs=ATOL)
        assert result.lift_ci_high == pytest.approx(high, abs=ATOL)
        assert result.lift == pytest.approx(ref.params[1] / ref.params[0], abs=ATOL)
        # the intercept and effect are correlated (cov[0, 1] != 0): ignoring that
        # covariance would give a visibly different interval
        cov = ref.cov_params()
        naive_se = np.sqrt(
            cov[1, 1] / ref.params[0] ** 2 + lift**2 * cov[0, 0] / ref.params[0] ** 2
        )
        assert (high - low) / (2 * stats.norm.ppf(1 - alpha / 2)) != pytest.approx(
            naive_se, rel=1e-3
        )


@pytest.mark.parametrize("with_covariate", [False, True])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_regression_effect_on_binary_outcome_matches_statsmodels(
    with_covariate: bool, alpha: float
) -> None:
    y, treated, z = _binary_data(37)
    covariate = z if with_covariate else None
    result = regression_effect(y, treated, covariate, alpha=alpha)
    # reference: statsmodels OLS(y, [1, T] or Lin design).fit(cov_type="HC2")
    _assert_matches_statsmodels(result, y, treated, covariate, alpha)
    if not with_covariate:
        # difference of proportions and its unpooled standard error
        p_t, p_c = y[treated].mean(), y[~treated].mean()
        n_t, n_c = treated.sum(), (~treated).sum()
        se = np.sqrt(p_t * (1 - p_t) / (n_t - 1) + p_c * (1 - p_c) / (n_c - 1))
        assert result.estimate == pytest.approx(p_t - p_c, abs=ATOL)
        assert result.std_error == pytest.approx(se, abs=ATOL)


def _three_arm_experiment() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(20261203)
    n = 2400
    index = pd.Index(rng.permutation(np.arange(50_000, 50_000 + n)), name="customer")
    arm = rng.choice(["control", "a", "b"], n, p=[0.4, 0.35, 0.25])
    pre_revenue = rng.gamma(0.6, 40.0, n)
    revenue = (
        0.7 * pre_revenue
        + rng.gamma(0.5, 30.0, n)
        + np.where(arm == "a", 5.0, 0.0)
        + np.where(arm == "b", -3.0, 0.0)
    )
    bought = (rng.random(n) < np.where(arm == "b", 0.25, 0.2)).astype(int)
    arms = pd.Series(arm, index=index, name="arm")
    outcomes = pd.DataFrame({"rev_col": revenue, "bought_col": bought}, index=index)
    covariates = pd.DataFrame({"pre_revenue": pre_revenue}, index=index)
    return outcomes, arms, covariates


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_estimate_effects_three_arms_matches_statsmodels_per_pair(alpha: float) -> None:
    outcomes, arms, covariates = _three_arm_experiment()
    metrics = {"revenue": "rev_col", "bought": "bought_col"}
    results = estimate_effects(
        outcomes, arms, metrics, "control", ["a", "b"], alpha, covariates={"revenue": covariates}
    )
    table = results.to_frame()
    assert list(zip(table["arm"], table["metric"], strict=True)) == [
        ("a", "revenue"),
        ("a", "bought"),
        ("b", "revenue"),
        ("b", "bought"),
    ]
    for arm in ["a", "b"]:
        pair = (arms == arm) | (arms == "control")
        treated = (arms[pair] == arm).to_numpy()
        for metric, column in metrics.items():
            row = results.get(arm, metric)
            y = outcomes.loc[pair, column].to_numpy(dtype=float)
            z = covariates.loc[pair, "pre_revenue"].to_numpy() if metric == "revenue" else None
            # reference: statsmodels OLS on this pair's rows only, [1, T] or Lin's design
            # [1, T, Zc, Zc*T] with Zc centred over the pair, fit(cov_type="HC2")
            ref = _hc2(_lin_design(treated, z), y)
            simple = _hc2(_lin_design(treated, None), y)
            low, high = ref.conf_int(alpha)[1]
            assert row["estimate"] == pytest.approx(ref.params[1], abs=ATOL)
            assert row["std_error"] == pytest.approx(ref.bse[1], abs=ATOL)
            assert row["ci_low"] == pytest.approx(low, abs=ATOL)
            assert row["ci_high"] == pytest.approx(high, abs=ATOL)
            assert row["p_value"] == pytest.approx(ref.pvalues[1], abs=ATOL)
            lift, lift_low, lift_high = _delta_lift(ref.params, ref.cov_params(), alpha)
            assert row["lift"] == pytest.approx(lift, abs=ATOL)
            assert row["lift_ci_low"] == pytest.approx(lift_low, abs=ATOL)
            assert row["lift_ci_high"] == pytest.approx(lift_high, abs=ATOL)
            if z is None:
                assert row["method"] == "ols_hc2"
                assert row["adjusted_for"] == ""
                assert row["variance_reduction"] == pytest.approx(0.0, abs=1e-12)
            else:
                assert row["method"] == "lin_hc2"
                assert row["adjusted_for"] == "pre_revenue"
                assert row["variance_reduction"] == pytest.approx(
                    1 - (ref.bse[1] / simple.bse[1]) ** 2, abs=ATOL
                )
                assert row["variance_reduction"] > 0.2

            # reference: statsmodels CompareMeans(...).tconfint_diff(usevar="unequal")
            y_t, y_c = y[treated], y[~treated]
            cm = CompareMeans(DescrStatsW(y_t), DescrStatsW(y_c))
            w_low, w_high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
            _tstat, _p, w_df = cm.ttest_ind(usevar="unequal")
            assert row["welch_estimate"] == pytest.approx(y_t.mean() - y_c.mean(), abs=ATOL)
            assert row["welch_ci_low"] == pytest.approx(w_low, abs=ATOL)
            assert row["welch_ci_high"] == pytest.approx(w_high, abs=ATOL)
            assert row["welch_df"] == pytest.approx(w_df, abs=ATOL)
            assert (row["n_treated"], row["n_control"]) == (y_t.size, y_c.size)
            assert row["mean_treated"] == pytest.approx(y_t.mean(), abs=ATOL)
            assert row["mean_control"] == pytest.approx(y_c.mean(), abs=ATOL)


def test_estimate_effects_compares_each_arm_on_its_pair_only() -> None:
    # Lin's centring is over the pair's rows: centring over all three arms would change
    # the intercept (control mean at the covariate average) and hence the lift
    outcomes, arms, covariates = _three_arm_experiment()
    results = estimate_effects(
        outcomes, arms, {"revenue": "rev_col"}, "control", ["b"], covariates={"revenue": covariates}
    )
    row = results.get("b", "revenue")
    t_all = (arms == "b").to_numpy()
    zc_all = covariates["pre_revenue"].to_numpy() - covariates["pre_revenue"].mean()
    pair = ((arms == "b") | (arms == "control")).to_numpy()
    X_all = np.column_stack(
        [np.ones(pair.sum()), t_all[pair], zc_all[pair], zc_all[pair] * t_all[pair]]
    )
    # statsmodels OLS with the covariate centred over all arms, for contrast
    wrong = _hc2(X_all, outcomes["rev_col"].to_numpy()[pair])
    assert row["lift"] != pytest.approx(wrong.params[1] / wrong.params[0], abs=1e-4)


@pytest.mark.parametrize(("n_treated", "n_control"), [(1, 10), (10, 1), (0, 10), (10, 0)])
def test_regression_effect_needs_two_customers_per_arm(n_treated: int, n_control: int) -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=n_treated + n_control)
    treated = np.array([True] * n_treated + [False] * n_control)
    with pytest.raises(ValueError, match="at least two customers per arm"):
        regression_effect(y, treated)
    with pytest.raises(ValueError, match="at least two customers per arm"):
        regression_effect(y, treated, rng.normal(size=y.size))


def test_estimate_effects_rejects_an_arm_with_one_customer() -> None:
    outcomes, arms, _covariates = _three_arm_experiment()
    arms = arms.copy()
    arms[arms == "b"] = "a"
    arms.iloc[0] = "b"
    with pytest.raises(ValueError, match="at least two"):
        estimate_effects(outcomes, arms, {"revenue": "rev_col"}, "control", ["b"])


# --- when the adjustment is not identified, and rows in another order ----------------------


def test_a_covariate_constant_in_an_arm_leaves_the_effect_unadjusted() -> None:
    # all-zero pre-period values (new customers), or zero in one arm only: Lin's regression
    # is singular there, so the estimate falls back to the difference in means
    rng = np.random.default_rng(5)
    treated = rng.random(400) < 0.5
    y = rng.normal(size=400) + treated
    plain = regression_effect(y, treated)
    for z in (np.zeros(400), np.where(treated, 0.0, rng.poisson(1.0, 400).astype(float))):
        fit = regression_effect(y, treated, z)
        assert not fit.adjusted
        assert fit.std_error == pytest.approx(plain.std_error, abs=1e-12)
        assert fit.estimate == pytest.approx(plain.estimate, abs=1e-12)
        assert fit.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert regression_effect(y, treated, rng.normal(size=400)).adjusted


def test_an_arm_too_small_for_its_covariates_is_not_adjusted() -> None:
    # two treated customers and one covariate: the arm's line passes through both points,
    # its residuals vanish and HC2 would understate the error
    rng = np.random.default_rng(6)
    treated = np.zeros(60, dtype=bool)
    treated[:3] = True
    y, z = rng.normal(size=60), rng.normal(size=60)
    assert not regression_effect(y, treated, z).adjusted
    treated[:4] = True
    assert regression_effect(y, treated, z).adjusted


def test_estimate_effects_matches_rows_by_index_not_by_position() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    index = pd.Index(np.arange(n))
    arms = pd.Series(np.where(rng.random(n) < 0.5, "t", "c"), index=index)
    pre = rng.normal(size=n)
    outcomes = pd.DataFrame({"y": pre + rng.normal(size=n) * 0.5}, index=index)
    covariates = pd.DataFrame({"pre": pre}, index=index)
    reference = estimate_effects(
        outcomes, arms, {"m": "y"}, "c", ["t"], covariates={"m": covariates}
    )
    shuffled = estimate_effects(
        outcomes.iloc[::-1],
        arms,
        {"m": "y"},
        "c",
        ["t"],
        covariates={"m": covariates.sample(frac=1)},
    )
    for key in ("estimate", "std_error", "variance_reduction", "lift"):
        assert shuffled.get("t", "m")[key] == pytest.approx(reference.get("t", "m")[key], abs=1e-12)
    assert reference.get("t", "m")["variance_reduction"] > 0.7
