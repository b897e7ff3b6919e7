"""Reference tests of uplift.analysis.grouped: many HC2 regressions and ratios at once.

Reference values are computed in the test on the same rows by statsmodels 0.15:

- ``statsmodels.api.OLS(y_g, [1, Z_g - Z_g.mean(0)]).fit(cov_type="HC2")`` per group, for
  :func:`group_fits`;
- ``statsmodels.stats._delta_method.NonlinearDeltaCov`` (statsmodels' delta method, with
  its numerical derivative) on the group means of numerator and denominator and their
  covariance ``np.cov(..., ddof=1) / n``, for :func:`group_ratios`;
- Lin's interacted OLS ``[1, T, Zc, Zc*T]`` with HC2 on a pair's rows, for
  :func:`contrast`.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats._delta_method import NonlinearDeltaCov

from uplift.analysis.grouped import contrast, group_fits, group_ratios

ATOL = 1e-8


def _data(k: int, n: int = 3000, groups: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    z = rng.gamma(1.5, 20.0, (n, k)) + g[:, None]
    y = 0.5 * z.sum(axis=1) + rng.lognormal(1.0, 1.0, n) * (1 + g)
    return y, g, z


@pytest.mark.parametrize("k", [1, 2])
def test_group_fits_equal_statsmodels_hc2_in_every_group(k: int) -> None:
    y, g, z = _data(k)
    fits = group_fits(y, g, 6, z)
    assert fits.identified.all()
    for group in range(6):
        rows = g == group
        zc = z[rows] - z[rows].mean(axis=0)
        ref = sm.OLS(y[rows], np.column_stack([np.ones(rows.sum()), zc])).fit(cov_type="HC2")
        assert fits.n[group] == rows.sum()
        assert fits.mean[group] == pytest.approx(ref.params[0], abs=ATOL)
        np.testing.assert_allclose(fits.slopes[group], ref.params[1:], atol=ATOL, rtol=1e-10)
        np.testing.assert_allclose(fits.cov[group], ref.cov_params(), atol=ATOL, rtol=1e-9)
        # without covariates: s**2 / n, statsmodels' HC2 variance of an intercept-only fit
        plain = sm.OLS(y[rows], np.ones(rows.sum())).fit(cov_type="HC2")
        assert fits.var_mean[group] == pytest.approx(plain.cov_params()[0, 0], rel=1e-10)


def test_contrast_of_two_groups_is_lins_interacted_regression() -> None:
    y, g, z = _data(1, groups=3)
    fits = group_fits(y, g, 3, z)
    pair = contrast(fits, np.array([1, 2]), np.array([0, 0]))
    for i, arm in enumerate((1, 2)):
        rows = np.isin(g, (0, arm))
        t = (g[rows] == arm).astype(float)
        zc = z[rows, 0] - z[rows, 0].mean()
        X = np.column_stack([np.ones(rows.sum()), t, zc, zc * t])
        ref = sm.OLS(y[rows], X).fit(cov_type="HC2")  # Lin (2013), HC2
        assert pair.adjusted[i]
        assert pair.estimate[i] == pytest.approx(ref.params[1], abs=ATOL)
        assert pair.std_error[i] == pytest.approx(ref.bse[1], abs=ATOL)
        assert pair.control_mean[i] == pytest.approx(ref.params[0], abs=ATOL)
        assert pair.control_variance[i] == pytest.approx(ref.cov_params()[0, 0], abs=ATOL)


def test_groups_without_enough_rows_or_spread_are_not_adjusted() -> None:
    rng = np.random.default_rng(3)
    g = np.repeat([0, 1, 2, 3], [50, 3, 50, 1])
    y = rng.normal(size=g.size)
    z = rng.normal(size=g.size)
    z[g == 2] = 7.0  # constant within group 2
    fits = group_fits(y, g, 5, z)  # group 4 has no rows
    assert fits.identified.tolist() == [True, False, False, False, False]
    assert np.isnan(fits.var_mean[3]) and np.isnan(fits.var_mean[4])
    pair = contrast(fits, np.array([1, 2]), np.array([0, 0]))
    assert not pair.adjusted.any()
    # unadjusted: the difference in means and s_t**2/n_t + s_c**2/n_c
    for i, arm in enumerate((1, 2)):
        t, c = y[g == arm], y[g == 0]
        assert pair.estimate[i] == pytest.approx(t.mean() - c.mean(), abs=1e-12)
        expected = t.var(ddof=1) / t.size + c.var(ddof=1) / c.size
        assert pair.variance[i] == pytest.approx(expected, rel=1e-12)


def test_collinear_covariates_are_not_adjusted() -> None:
    rng = np.random.default_rng(4)
    g = np.repeat([0, 1], 200)
    z1 = rng.normal(size=400)
    z = np.column_stack([z1, 3 * z1 + 1])
    fits = group_fits(rng.normal(size=400), g, 2, z)
    assert not fits.identified.any()
    z[:, 1] += rng.normal(size=400) * 0.1
    assert group_fits(rng.normal(size=400), g, 2, z).identified.all()


def test_group_ratios_equal_statsmodels_delta_method() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    g = rng.integers(0, 2, n)
    orders = rng.poisson(1.2 + 0.3 * g)
    revenue = orders * rng.gamma(2.0, 15.0, n) + rng.normal(0, 1, n)
    ratios = group_ratios(revenue, orders, g, 2)
    params, blocks = [], []
    for group in range(2):
        rows = g == group
        stacked = np.vstack([revenue[rows], orders[rows]])
        params += [revenue[rows].mean(), orders[rows].mean()]
        blocks.append(np.cov(stacked, ddof=1) / rows.sum())
        assert ratios.mean[group] == pytest.approx(revenue[rows].sum() / orders[rows].sum())
    cov = np.zeros((4, 4))
    cov[:2, :2], cov[2:, 2:] = blocks
    # reference: statsmodels' delta method, numerical derivative of each ratio and of their
    # difference (group 1 minus group 0)
    for group in range(2):
        ref = NonlinearDeltaCov(
            lambda p, j=group: np.atleast_1d(p[2 * j] / p[2 * j + 1]), np.array(params), cov
        )
        assert ratios.var_mean[group] == pytest.approx(ref.var()[0], rel=1e-6)
    diff = NonlinearDeltaCov(lambda p: np.atleast_1d(p[2] / p[3] - p[0] / p[1]), params, cov)
    pair = contrast(ratios, np.array([1]), np.array([0]))
    assert pair.estimate[0] == pytest.approx(diff.predicted()[0], abs=1e-12)
    assert pair.std_error[0] == pytest.approx(np.sqrt(diff.var()[0]), rel=1e-6)
    lift = NonlinearDeltaCov(
        lambda p: np.atleast_1d((p[2] / p[3]) / (p[0] / p[1]) - 1), params, cov
    )
    value, se = pair.lift()
    assert value[0] == pytest.approx(lift.predicted()[0], abs=1e-12)
    assert se[0] == pytest.approx(np.sqrt(lift.var()[0]), rel=1e-6)


def test_a_ratio_with_no_denominator_is_nan() -> None:
    g = np.repeat([0, 1], 5)
    ratios = group_ratios(np.ones(10), np.where(g == 1, 0.0, 1.0), g, 2)
    assert ratios.mean[0] == 1.0
    assert np.isnan(ratios.mean[1]) and np.isnan(ratios.var_mean[1])
