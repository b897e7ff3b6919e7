"""Tests of uplift.value.clv: hand-computed cases.

A month is 365.25 / 12 = 30.4375 days, so a window of ``w`` days is ``w / 30.4375``
months and ``w / 365.25`` years.
"""

from __future__ import annotations

import math

import pytest

from uplift.value.clv import clv_multiplier


@pytest.mark.parametrize("window_days", [7, 30, 60, 90, 365])
@pytest.mark.parametrize("rate", [0.0, 0.12, 1.0])
def test_no_persistence_counts_only_the_measured_window(window_days: int, rate: float) -> None:
    assert clv_multiplier(window_days, 12, rate, 0.0) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    ("window_days", "horizon_months", "windows"),
    [
        (30, 12, 12),  # 12 / (30 / 30.4375) = 12.175 -> 12 whole windows
        (60, 12, 6),  # 12 / 1.97125 = 6.0875 -> 6
        (90, 12, 4),  # 12 / 2.95688 = 4.0583 -> 4
        (61, 24, 11),  # 24 / 2.00411 = 11.9754 -> 11: whole windows, not rounded
        (365, 12, 1),  # 12 / 11.9918 = 1.0007 -> 1
        (400, 6, 1),  # a window longer than the horizon still counts once
    ],
)
def test_full_persistence_without_discounting_counts_the_windows(
    window_days: int, horizon_months: float, windows: int
) -> None:
    assert clv_multiplier(window_days, horizon_months, 0.0, 1.0) == pytest.approx(
        float(windows), abs=1e-12
    )


def test_exact_fit_of_windows_is_not_lost_to_rounding() -> None:
    # a window of exactly 3 months (91.3125 days) fits 4 times into 12 months
    assert clv_multiplier(91.3125, 12, 0.0, 1.0) == pytest.approx(4.0, abs=1e-12)  # type: ignore[arg-type]


def test_discounting_and_partial_persistence_by_hand() -> None:
    # window 60 days = 60 / 365.25 = 0.164271 years; horizon 12 months -> 6 windows.
    # discount per window d = 1.12 ** -0.164271 = exp(-0.164271 * ln 1.12)
    #                       = exp(-0.164271 * 0.113329) = 0.981556
    # with persistence 0.5 each window carries q = 0.5 d = 0.490778 of the one before:
    # m = 1 + q + q^2 + q^3 + q^4 + q^5 = (1 - q^6) / (1 - q) = 1.936338
    d = 1.12 ** -(60 / 365.25)
    q = 0.5 * d
    assert clv_multiplier(60, 12, 0.12, 0.5) == pytest.approx((1 - q**6) / (1 - q), abs=1e-12)
    assert clv_multiplier(60, 12, 0.12, 0.5) == pytest.approx(1.936338, abs=1e-6)


def test_yearly_windows_discounted_at_ten_percent_by_hand() -> None:
    # window 365 days, horizon 36 months -> 36 / 11.9918 = 3.002 -> 3 windows, fully
    # persistent; the k-th window is discounted by 1.1 ** -(k * 365 / 365.25):
    # m = 1 + 1.1 ** -0.999316 + 1.1 ** -1.998631 = 1 + 0.909150 + 0.826554 = 2.735704
    expected = 1 + 1.1 ** -(365 / 365.25) + 1.1 ** -(730 / 365.25)
    assert clv_multiplier(365, 36, 0.1, 1.0) == pytest.approx(expected, abs=1e-12)
    assert clv_multiplier(365, 36, 0.1, 1.0) == pytest.approx(2.735704, abs=1e-6)


def test_multiplier_grows_with_persistence_and_shrinks_with_the_rate() -> None:
    values = [clv_multiplier(30, 12, 0.1, p) for p in (0.0, 0.3, 0.6, 0.9, 1.0)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    rates = [clv_multiplier(30, 12, r, 0.8) for r in (0.0, 0.05, 0.2, 0.5)]
    assert rates == sorted(rates, reverse=True)
    assert all(math.isfinite(v) for v in values + rates)
