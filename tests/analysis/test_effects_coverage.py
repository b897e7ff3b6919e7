"""Simulation tests of the effect intervals: coverage and the CUPED width reduction.

The ground truth in every test is the simulated effect: the data are drawn from a model
whose average treatment effect is known exactly in closed form, and the tests check how
often the 95% intervals of :func:`uplift.analysis.regression.regression_effect` (the
estimator :func:`uplift.analysis.effects.estimate_effects` reports) contain it.

Estimand. Each simulated experiment draws its customers independently from a fixed
superpopulation and assigns each to treatment with probability 1/2, so the target is the
population average treatment effect (PATE) ``E[Y(1) - Y(0)]``, known in closed form below.
Both models make the conditional effect ``E[Y(1) - Y(0) | X]`` the same constant for
every pre-period covariate value ``X`` (the treatment shifts the purchase probability by
a constant, or adds an independent extra purchase). Then the treated and control
regression slopes on ``X`` are equal, so Lin's HC2 variance is consistent for the
variance of the adjusted estimator around the PATE (no ``(b1 - b0)' Var(mean X) (b1 - b0)``
term is left out), and the difference in means' HC2 (= Welch) variance is consistent for
it too: a correct 95% interval covers the PATE in 95% of the runs up to Monte Carlo error.
The sample average effect (SATE) is not used: the unpooled variance is conservative for
it when individual effects vary, as they do here, so its coverage would exceed 95%.

All random numbers come from ``numpy.random.default_rng`` with fixed seeds, so the
measured coverage rates are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.effects import estimate_effects
from uplift.analysis.regression import regression_effect

EXPERIMENTS = 2000  # simulated experiments per case (the requirement is at least 1,000)
CUSTOMERS = 2000  # customers per experiment, half treated on average
# The number of covering intervals out of 2,000 is Binomial(2000, 0.95) for an exact
# interval: its standard deviation is sqrt(0.95 * 0.05 / 2000) = 0.49 percentage points,
# so 93.5%-96.5% is about +-3.1 standard deviations (a false alarm has probability about
# 0.2%). An interval whose standard error is 10% too small (coverage 92.2%) or 10% too
# large (96.9%) falls outside.
COVERAGE_LOW, COVERAGE_HIGH = 0.935, 0.965

# outcomes, treated, pre-period covariate (each experiments x customers), true effect
Data = tuple[np.ndarray, np.ndarray, np.ndarray, float]


def _binary_experiments(seed: int) -> Data:
    """Converted (0/1) in the campaign, with the pre-period number of converting weeks.

    Each customer has a weekly conversion propensity ``p ~ 0.9 * Beta(0.3, 2.4)`` (mean 0.1,
    below 0.9). The pre-period covariate is the number of weeks with a conversion among the
    12 before the campaign, ``Binomial(12, p)``; the outcome is ``Bernoulli(p)`` without
    treatment and ``Bernoulli(p + 0.03)`` with it. So ``E[Y(1) - Y(0) | p] = 0.03`` for every
    customer and the PATE is exactly 0.03. The covariate explains about 19% of the
    outcome's variance.
    """
    rng = np.random.default_rng(seed)
    shape = (EXPERIMENTS, CUSTOMERS)
    effect = 0.03
    p = 0.9 * rng.beta(0.3, 2.4, shape)
    pre = rng.binomial(12, p).astype(float)
    treated = rng.random(shape) < 0.5
    y = (rng.random(shape) < p + effect * treated).astype(float)
    return y, treated, pre, effect


def _revenue_experiments(seed: int) -> Data:
    """Right-skewed revenue with about 75% zeros, with the pre-period revenue.

    Each customer has a monthly purchase probability ``q ~ Beta(0.5, 1.5)`` (mean 0.25) and
    a spending level ``a ~ N(2.5, 0.8^2)``; in a month they buy with probability ``q`` and
    spend ``exp(a + 0.5 * e)``, ``e ~ N(0, 1)`` fresh each month (a lognormal amount). The
    pre-period covariate is the revenue of the 4 months before the campaign; the untreated
    outcome ``Y(0)`` is one more month (skewness about 8, mean about 4.75). The campaign
    adds, with probability 0.05 and independently of everything else, an extra purchase
    worth ``Gamma(shape=2, scale=10)`` (mean 20): ``Y(1) = Y(0) + B * G``. So
    ``E[Y(1) - Y(0) | pre] = 0.05 * 20 = 1`` for every customer and the PATE is exactly
    1.0. The covariate explains about 20% of the outcome's variance.
    """
    rng = np.random.default_rng(seed)
    shape = (EXPERIMENTS, CUSTOMERS)
    q = rng.beta(0.5, 1.5, shape)
    level = rng.normal(2.5, 0.8, shape)

    def month() -> np.ndarray:
        return (rng.random(shape) < q) * np.exp(level + 0.5 * rng.standard_normal(shape))

    pre = month() + month() + month() + month()
    y = month()
    treated = rng.random(shape) < 0.5
    y += treated * (rng.random(shape) < 0.05) * rng.gamma(2.0, 10.0, shape)
    effect = 0.05 * 2.0 * 10.0
    return y, treated, pre, effect


def _coverage(
    y: np.ndarray, treated: np.ndarray, pre: np.ndarray, effect: float, cuped: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """Share of 95% intervals covering ``effect``, the estimates and the widths."""
    covered = 0
    estimates = np.empty(len(y))
    widths = np.empty(len(y))
    for i in range(len(y)):
        fit = regression_effect(y[i], treated[i], pre[i] if cuped else None, alpha=0.05)
        covered += fit.ci_low <= effect <= fit.ci_high
        estimates[i] = fit.estimate
        widths[i] = fit.ci_high - fit.ci_low
    return covered / len(y), estimates, widths


@pytest.fixture(scope="module")
def binary() -> Data:
    return _binary_experiments(seed=20261210)


@pytest.fixture(scope="module")
def revenue() -> Data:
    return _revenue_experiments(seed=20261211)


def _check_case(data: Data, cuped: bool) -> None:
    y, treated, pre, effect = data
    share, estimates, widths = _coverage(y, treated, pre, effect, cuped)
    assert COVERAGE_LOW <= share <= COVERAGE_HIGH, f"coverage {share:.4f}"
    # the estimator is unbiased for the PATE: the mean estimate is within 4 Monte Carlo
    # standard errors of the truth
    mc_se = estimates.std(ddof=1) / math.sqrt(len(estimates))
    assert abs(estimates.mean() - effect) < 4 * mc_se, (estimates.mean(), effect, mc_se)
    # the intervals' mean half-width matches the estimates' spread across experiments:
    # 1.96 times their standard deviation, within 6% (the relative standard error of a
    # standard deviation from 2,000 draws is about 1 / sqrt(2 * 2000) = 1.6%)
    assert np.mean(widths) / 2 == pytest.approx(1.959964 * estimates.std(ddof=1), rel=0.06)


def test_binary_metric_intervals_cover_the_true_effect(binary: Data) -> None:
    _check_case(binary, cuped=False)


def test_binary_metric_cuped_intervals_cover_the_true_effect(binary: Data) -> None:
    _check_case(binary, cuped=True)


def test_skewed_revenue_intervals_cover_the_true_effect(revenue: Data) -> None:
    _check_case(revenue, cuped=False)


def test_skewed_revenue_cuped_intervals_cover_the_true_effect(revenue: Data) -> None:
    _check_case(revenue, cuped=True)


def test_cuped_narrows_the_interval_by_the_pre_post_correlation() -> None:
    """With pre/post correlation 0.7 the adjusted interval is sqrt(1 - 0.7^2) as wide.

    One large simulation: pre- and post-period values bivariate normal with equal unit
    variances and correlation 0.7, a constant effect of 0.05, a 50/50 split of 200,000
    customers. Lin's adjustment removes the share 0.7^2 = 0.49 of the outcome variance
    that the covariate explains, so the interval width ratio is sqrt(0.51) = 0.714.
    The sampling error of the correlation is (1 - 0.49) / sqrt(200000) = 0.0011, far
    inside the 3% tolerance.
    """
    rng = np.random.default_rng(20261212)
    n, rho, effect = 200_000, 0.7, 0.05
    pre = rng.standard_normal(n)
    post = rho * pre + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    arm = np.where(rng.permutation(n) < n // 2, "treatment", "control")
    post += effect * (arm == "treatment")
    index = pd.RangeIndex(n, name="customer")
    results = estimate_effects(
        pd.DataFrame({"post": post}, index=index),
        pd.Series(arm, index=index, name="arm"),
        # the same outcome column twice: once adjusted for the pre-period, once not
        {"adjusted": "post", "unadjusted": "post"},
        "control",
        ["treatment"],
        alpha=0.05,
        covariates={"adjusted": pd.DataFrame({"pre_post": pre}, index=index)},
    )
    adjusted = results.get("treatment", "adjusted")
    unadjusted = results.get("treatment", "unadjusted")
    assert adjusted["method"] == "lin_hc2"
    assert unadjusted["method"] == "ols_hc2"

    ratio = (adjusted["ci_high"] - adjusted["ci_low"]) / (
        unadjusted["ci_high"] - unadjusted["ci_low"]
    )
    assert ratio == pytest.approx(math.sqrt(1 - rho**2), rel=0.03)
    assert adjusted["variance_reduction"] == pytest.approx(rho**2, abs=0.02)
    assert unadjusted["variance_reduction"] == pytest.approx(0.0, abs=1e-12)
    # the reported variance reduction is the one the widths show
    assert adjusted["variance_reduction"] == pytest.approx(1 - ratio**2, abs=1e-9)
    # both estimates are within 4 of their standard errors of the simulated effect
    for row in (adjusted, unadjusted):
        assert abs(row["estimate"] - effect) < 4 * row["std_error"]


def test_ratio_metric_intervals_cover_the_true_difference_of_ratios() -> None:
    """Revenue per order: the delta-method interval covers the true difference.

    Each customer places ``Poisson(l)`` orders, ``l ~ Gamma(shape=2, scale=0.6)`` (treatment
    multiplies ``l`` by 1.1), and every order is worth ``Gamma(shape=2, scale=m / 2)``
    independently of how many there are, with ``m = 30`` in the control and 33 under
    treatment. Revenue per order in an arm, ``E[revenue] / E[orders]``, is then exactly
    ``m``, so the true difference is 3.0. The 2,000 experiments of 2,000 customers are
    analysed in one call, each experiment one segment of :func:`segment_effects`, and the
    uncorrected 95% intervals are checked.
    """
    from uplift.analysis.effects import segment_effects

    rng = np.random.default_rng(20261213)
    n = EXPERIMENTS * CUSTOMERS
    treated = rng.random(n) < 0.5
    orders = rng.poisson(rng.gamma(2.0, 0.6, n) * np.where(treated, 1.1, 1.0))
    revenue = rng.gamma(2.0 * orders, np.where(treated, 33.0, 30.0) / 2)
    index = pd.RangeIndex(n)
    results = segment_effects(
        pd.DataFrame({"revenue": revenue, "orders": orders}, index=index),
        pd.Series(np.where(treated, "treatment", "control"), index=index),
        pd.Series(np.repeat(np.arange(EXPERIMENTS), CUSTOMERS), index=index),
        {"revenue_per_order": ("revenue", "orders")},
        "control",
        ["treatment"],
        correction="none",
        min_segment_size=2,
    ).to_frame()
    assert len(results) == EXPERIMENTS
    assert (results["method"] == "delta_ratio").all()
    covered = ((results["ci_low"] <= 3.0) & (results["ci_high"] >= 3.0)).mean()
    assert COVERAGE_LOW <= covered <= COVERAGE_HIGH, f"coverage {covered:.4f}"
    mc_se = results["estimate"].std(ddof=1) / math.sqrt(EXPERIMENTS)
    assert abs(results["estimate"].mean() - 3.0) < 4 * mc_se
