"""Tests of uplift.analysis.multiple_testing.

Reference values: ``statsmodels.stats.multitest.multipletests`` (adjusted p-values) and
``statsmodels.stats.power.normal_power`` (the power of a two-sided normal test), both
computed in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import normal_power

from uplift.analysis.multiple_testing import correct, detectable_effect


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_adjusted_p_values_are_statsmodels(method: str) -> None:
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 1e-3, size=10)])
    p[[3, 17]] = np.nan  # not tested: left out of the family
    p[[5, 6, 7]] = p[4]  # ties
    p[[8, 9]] = 1.0, 0.0  # the ends, and products above 1 that are clipped
    result = correct(p, method, 0.05)
    finite = np.isfinite(p)
    expected = multipletests(p[finite], alpha=0.05, method=method)[1]
    np.testing.assert_allclose(result.p_adjusted[finite], expected, rtol=0, atol=1e-15)
    assert np.isnan(result.p_adjusted[~finite]).all() and np.isnan(result.level[~finite]).all()
    assert result.family_size == 48


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni", "none"])
def test_the_interval_at_the_spent_level_agrees_with_the_adjusted_p_value(method: str) -> None:
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.normal(size=60), rng.normal(3.5, 1, size=20)])
    p = 2 * special.ndtr(-np.abs(z))
    result = correct(p, method, 0.05)
    half = special.ndtri(1 - result.level / 2)  # the interval z +- half, in units of se
    excludes_zero = np.abs(z) > half
    rejected = multipletests(p, alpha=0.05, method=method)[0] if method != "none" else p < 0.05
    np.testing.assert_array_equal(excludes_zero, rejected)
    assert rejected.sum() > 5  # the check has rejections and non-rejections to agree on


def test_bonferroni_spends_alpha_over_m_and_none_spends_alpha() -> None:
    p = np.array([0.001, 0.2, 0.04, 0.9])
    np.testing.assert_allclose(correct(p, "bonferroni", 0.1).level[:3], 0.1 / 4)
    np.testing.assert_allclose(correct(p, "none", 0.1).level, 0.1)


def test_holm_spends_the_step_down_levels() -> None:
    # sorted p-values far apart, so monotonicity never binds: step j spends alpha/(m - j + 1)
    p = np.array([1e-6, 1e-4, 1e-2, 0.5])
    level = correct(p, "holm", 0.05).level
    np.testing.assert_allclose(level, 0.05 / np.array([4, 3, 2, 1]), rtol=1e-12)


def test_a_zero_p_value_gets_the_bonferroni_level() -> None:
    level = correct(np.array([0.0, 0.3, 0.5]), "holm", 0.05).level
    assert level[0] == pytest.approx(0.05 / 3)


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="correction must be one of"):
        correct(np.array([0.1]), "sidak", 0.05)  # type: ignore[arg-type]


@pytest.mark.parametrize(("level", "power"), [(0.05, 0.8), (0.05 / 30, 0.8), (0.01, 0.9)])
def test_detectable_effect_has_the_stated_power(level: float, power: float) -> None:
    se = 0.37
    mde = detectable_effect(np.array([se]), np.array([level]), power)[0]
    # reference: statsmodels' power of the two-sided z test at effect mde / se, one unit
    achieved = normal_power(mde / se, nobs=1, alpha=level)
    assert achieved == pytest.approx(power, abs=1e-6)
