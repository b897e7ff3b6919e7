"""Tests of uplift.design.srm.

Reference values: Pearson's chi-square computed by hand (and its p-value in closed form
for two degrees of freedom, where the chi-square survival function is exp(-x / 2)), and
``scipy.stats.chisquare`` on the same counts.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from uplift.design.srm import SRM_ALERT_P, SRMResult, srm_test

WEIGHTS = {"control": 0.2, "a": 0.4, "b": 0.4}


def test_srm_matches_a_hand_computed_chi_square() -> None:
    counts = {"control": 1000, "a": 2100, "b": 1900}
    result = srm_test(counts, WEIGHTS)
    # by hand: n = 5000, expected 1000 / 2000 / 2000,
    # chi2 = 0 + 100^2 / 2000 + 100^2 / 2000 = 10 on 2 df, p = exp(-10 / 2) = 0.0067379...
    assert isinstance(result, SRMResult)
    assert result.statistic == pytest.approx(10.0, abs=1e-12)
    assert result.p_value == pytest.approx(math.exp(-5.0), abs=1e-12)
    # reference: scipy.stats.chisquare on the same observed and expected counts
    ref = stats.chisquare([1000, 2100, 1900], [1000, 2000, 2000])
    assert result.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert result.counts == counts
    assert result.expected_shares == pytest.approx(WEIGHTS)
    assert not result.alert  # 0.0067 is not below 0.001


def test_srm_two_arms_matches_scipy() -> None:
    counts = {"control": 50_312, "treated": 49_688}
    result = srm_test(counts, {"control": 0.5, "treated": 0.5})
    # by hand: expected 50,000 each, chi2 = 2 * 312^2 / 50000 = 3.89376
    assert result.statistic == pytest.approx(2 * 312**2 / 50_000, abs=1e-9)
    # reference: scipy.stats.chisquare with its default (uniform) expectation
    ref = stats.chisquare([50_312, 49_688])
    assert result.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert not result.alert


def test_weights_are_renormalized() -> None:
    counts = {"control": 1000, "a": 2100, "b": 1900}
    assert srm_test(counts, {"control": 2, "a": 4, "b": 4}).p_value == pytest.approx(
        srm_test(counts, WEIGHTS).p_value, abs=1e-12
    )


def test_alert_below_one_in_a_thousand() -> None:
    assert SRM_ALERT_P == 0.001
    # chi2 = 2 * 200^2 / 2000 = 40 on 2 df: p = exp(-20), about 2e-9
    broken = srm_test({"control": 1000, "a": 2200, "b": 1800}, WEIGHTS)
    assert broken.p_value == pytest.approx(math.exp(-20.0), rel=1e-9)
    assert broken.alert
    # just around the threshold: chi2 = 2 * d^2 / 2000 with p = exp(-chi2 / 2) = 0.001
    # needs chi2 = 13.8155, d = 117.5; 117 stays quiet, 118 alerts
    assert not srm_test({"control": 1000, "a": 2117, "b": 1883}, WEIGHTS).alert
    assert srm_test({"control": 1000, "a": 2118, "b": 1882}, WEIGHTS).alert


def test_an_arm_with_no_customers_counts_as_zero_and_alerts() -> None:
    result = srm_test({"control": 1000, "a": 4000}, WEIGHTS)
    assert result.counts == {"control": 1000, "a": 4000, "b": 0}
    # reference: scipy.stats.chisquare with b observed 0 of an expected 2000
    ref = stats.chisquare([1000, 4000, 0], [1000, 2000, 2000])
    assert result.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert result.alert


def test_labels_outside_the_weights_are_not_counted() -> None:
    with_holdout = srm_test({"control": 1000, "a": 2100, "b": 1900, "global_holdout": 9}, WEIGHTS)
    assert with_holdout.statistic == pytest.approx(10.0, abs=1e-12)
    assert "global_holdout" not in with_holdout.counts
