"""Tests of uplift.analysis.calibration (observed against predicted uplift by score bin).

References: a pandas hand computation (``DataFrame.sort_values`` as causalml ranks, bins cut
by ``numpy.array_split``, ``groupby`` means); scikit-uplift 0.5.1's ``uplift_by_percentile``
for binary outcomes, hard-coded because scikit-uplift is not a dependency;
``scipy.stats.ttest_ind(equal_var=False).confidence_interval`` for the Welch intervals; and
simulations with a known effect for the bootstrap intervals and the calibration slope.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from uplift.analysis.calibration import UpliftCalibration, calibration_by_decile


def _experiment(
    seed: int, n: int, ties: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A continuous outcome with a known effect ``tau = 0.5 + x``, negative for some."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.integers(0, 2, size=n)
    tau = 0.5 + x
    y = 10.0 + 2.0 * x + w * tau + rng.normal(scale=2.0, size=n)
    score = tau + rng.normal(scale=0.5, size=n)
    if ties:
        score = np.round(score, 1)
    return y, w, score, tau


def _pandas_bins(y: np.ndarray, w: np.ndarray, score: np.ndarray, n_bins: int) -> pd.DataFrame:
    """The hand computation: rank as causalml does, cut with array_split, group and average."""
    df = pd.DataFrame({"y": y, "w": w, "score": score})
    df = df.sort_values("score", ascending=False).reset_index(drop=True)
    df["bin"] = 0
    for b, rows in enumerate(np.array_split(np.arange(len(df)), n_bins)):
        df.loc[rows, "bin"] = b + 1
    means = df.groupby(["bin", "w"])["y"].mean().unstack("w")
    sizes = df.groupby(["bin", "w"]).size().unstack("w", fill_value=0)
    return pd.DataFrame(
        {
            "n_treated": sizes[1],
            "n_control": sizes[0],
            "score_high": df.groupby("bin")["score"].max(),
            "score_low": df.groupby("bin")["score"].min(),
            "predicted": df.groupby("bin")["score"].mean(),
            "observed": means[1] - means[0],
        }
    )


# --- the per-bin numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("n", "n_bins"), [(2000, 10), (1003, 7)])
def test_bins_match_a_pandas_groupby(n: int, n_bins: int, ties: bool) -> None:
    """pandas hand computation (_pandas_bins): sort_values(ascending=False), the call causalml
    ranks with (so ties split across bins the same way), array_split, groupby means."""
    y, w, score, _ = _experiment(3, n, ties=ties)
    result = calibration_by_decile(y, w, score, n_bins=n_bins, n_boot=20)
    expected = _pandas_bins(y, w, score, n_bins)
    frame = result.to_frame().set_index("bin")
    np.testing.assert_array_equal(frame["n_treated"], expected["n_treated"])
    np.testing.assert_array_equal(frame["n_control"], expected["n_control"])
    for column in ("score_high", "score_low", "predicted", "observed"):
        np.testing.assert_allclose(frame[column], expected[column], rtol=1e-12, atol=1e-12)
    sizes = (frame["n_treated"] + frame["n_control"]).tolist()
    assert sizes == [len(part) for part in np.array_split(np.arange(n), n_bins)]


def _sklift_fixture(n: int = 2003, seed: int = 20261122) -> tuple[np.ndarray, ...]:
    """The binary experiment behind the scikit-uplift numbers (as in test_metrics.py)."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    w = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.1 + w * 0.2 * x).astype(int)
    score = 0.2 * x + 0.05 * rng.random(n)
    return y, w, score


def test_binary_bins_match_scikit_uplift() -> None:
    """scikit-uplift 0.5.1, ``sklift.metrics.uplift_by_percentile(y, score, w,
    strategy="overall", bins=10)`` on ``_sklift_fixture()`` (n = 2003, so the first three
    bins hold 201), columns ``n_treatment``, ``n_control`` and ``uplift``, hard-coded here.
    Its mergesort ranking matches ours because the scores are distinct."""
    y, w, score = _sklift_fixture()
    assert np.unique(score).shape[0] == score.shape[0]
    result = calibration_by_decile(y, w, score, n_bins=10, n_boot=10)
    np.testing.assert_array_equal(result.n_treated, [95, 91, 109, 118, 95, 86, 105, 96, 99, 110])
    np.testing.assert_array_equal(result.n_control, [106, 110, 92, 82, 105, 114, 95, 104, 101, 90])
    expected_uplift = [
        0.12780536246276067,
        0.22397602397602398,
        0.22666533705624253,
        0.16515088879702358,
        0.05313283208020049,
        0.06323949408404733,
        0.05463659147869673,
        0.0016025641025641246,
        0.10221022102210223,
        0.04141414141414142,
    ]
    np.testing.assert_allclose(result.observed, expected_uplift, rtol=1e-12, atol=1e-15)


def test_welch_intervals_match_scipy() -> None:
    """scipy.stats.ttest_ind(treated, control, equal_var=False).confidence_interval(0.9)
    per bin: Welch's t interval with the Welch-Satterthwaite degrees of freedom."""
    y, w, score, _ = _experiment(4, 1500)
    result = calibration_by_decile(y, w, score, n_bins=5, n_boot=10, alpha=0.1)
    ranked = np.argsort(-score, kind="stable")  # the scores are distinct
    for b, rows in enumerate(np.array_split(ranked, 5)):
        treated, control = y[rows][w[rows] == 1], y[rows][w[rows] == 0]
        test = stats.ttest_ind(treated, control, equal_var=False)
        ci = test.confidence_interval(confidence_level=0.9)
        assert result.welch_low[b] == pytest.approx(ci.low, rel=1e-10)
        assert result.welch_high[b] == pytest.approx(ci.high, rel=1e-10)
        se = np.sqrt(treated.var(ddof=1) / treated.size + control.var(ddof=1) / control.size)
        assert result.welch_std_error[b] == pytest.approx(se, rel=1e-12)


# --- the intervals and the slope, by simulation --------------------------------------------


def test_bin_intervals_cover_the_true_bin_effect() -> None:
    """Simulation with a known effect and predictions equal to it: each bin's mean
    prediction is then the bin's true mean effect, and its intervals must cover it at about
    the nominal rate. 50 experiments of 4,000 customers, 10 bins: 500 intervals of each
    kind (binomial standard deviation of the rate 0.01)."""
    rng = np.random.default_rng(20261122)
    covered_boot = covered_welch = 0
    slope_covers_one = 0
    for _ in range(50):
        n = 4000
        x = rng.normal(size=n)
        w = (rng.random(n) < 0.5).astype(int)
        tau = 0.5 + x
        y = 10.0 + 2.0 * x + w * tau + rng.normal(scale=2.0, size=n)
        result = calibration_by_decile(y, w, tau, n_boot=200, seed=int(rng.integers(1 << 31)))
        truth = result.predicted
        covered_boot += int(((result.ci_low <= truth) & (truth <= result.ci_high)).sum())
        covered_welch += int(((result.welch_low <= truth) & (truth <= result.welch_high)).sum())
        slope_covers_one += result.slope_ci_low <= 1.0 <= result.slope_ci_high
    # 95% of 500 is 475; the band is about -4 and +3.5 binomial standard deviations wide
    assert 455 <= covered_boot <= 492
    assert 455 <= covered_welch <= 492
    assert slope_covers_one >= 42  # of 50; fewer has probability below 0.01 at 95%


def test_slope_and_intercept_read_scale_and_shift() -> None:
    """Known truth: with predictions equal to the effect the slope is about 1; doubling the
    predictions halves it; shifting them by a constant moves the intercept, not the slope;
    a ranking by noise has a slope interval around 0."""
    y, w, _, tau = _experiment(6, 40_000)
    exact = calibration_by_decile(y, w, tau, n_boot=200)
    assert exact.slope == pytest.approx(1.0, abs=0.1)  # its interval's coverage: see above
    assert exact.slope_ci_low < exact.slope < exact.slope_ci_high
    assert exact.intercept == pytest.approx(0.0, abs=0.1)
    doubled = calibration_by_decile(y, w, 2.0 * tau, n_boot=200)
    assert doubled.slope == pytest.approx(exact.slope / 2.0, rel=1e-9)  # same bins, x2 apart
    assert doubled.slope_ci_high < 1.0
    shifted = calibration_by_decile(y, w, tau + 3.0, n_boot=200)
    assert shifted.slope == pytest.approx(exact.slope, rel=1e-9)
    assert shifted.intercept == pytest.approx(exact.intercept - 3.0 * exact.slope, rel=1e-9)
    noise = calibration_by_decile(y, w, np.random.default_rng(0).normal(size=y.size), n_boot=200)
    assert noise.slope_ci_low < 0.0 < noise.slope_ci_high


# --- edge cases -------------------------------------------------------------------------------


def test_bins_lacking_an_arm_are_nan_not_an_error() -> None:
    """Every treated customer outranks every control one: the top half of the bins has no
    control customer, the bottom half no treated one, and the bin across the cut has both."""
    rng = np.random.default_rng(8)
    n = 1000
    w = rng.integers(0, 2, size=n)
    y = rng.normal(size=n) + w
    score = w + rng.uniform(0.0, 0.5, size=n)
    result = calibration_by_decile(y, w, score, n_bins=9, n_boot=30)  # warnings are errors here
    both = (result.n_treated > 0) & (result.n_control > 0)
    assert both.sum() == 1  # the bin that straddles the cut
    for values in (result.observed, result.ci_low, result.ci_high, result.std_error):
        assert np.isnan(values[~both]).all()
        assert np.isfinite(values[both]).all()
    assert np.isfinite(result.predicted).all()
    assert np.isnan([result.slope, result.slope_ci_low, result.slope_ci_high]).all()


def test_welch_needs_two_per_arm_and_the_bootstrap_one() -> None:
    # bin 1 holds 3 treated and 1 control customer, bin 2 two of each
    y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 0.0, 1.0, 3.0])
    w = np.array([1, 1, 1, 0, 1, 0, 1, 0])
    score = np.linspace(1.0, 0.0, 8)
    result = calibration_by_decile(y, w, score, n_bins=2, n_boot=50)
    assert result.observed[0] == pytest.approx(4.0 - 1.0)
    assert np.isnan([result.welch_low[0], result.welch_high[0]]).all()
    assert np.isfinite([result.ci_low[0], result.ci_high[0]]).all()
    assert np.isfinite([result.welch_low[1], result.welch_high[1]]).all()
    assert result.observed[1] == pytest.approx((2.0 + 1.0) / 2 - (0.0 + 3.0) / 2)


def test_reproducible_and_seeded() -> None:
    y, w, score, _ = _experiment(9, 800)
    first = calibration_by_decile(y, w, score, n_boot=40, seed=1)
    again = calibration_by_decile(y, w, score, n_boot=40, seed=1)
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    other = calibration_by_decile(y, w, score, n_boot=40, seed=2)
    np.testing.assert_array_equal(other.observed, first.observed)
    assert not np.array_equal(other.ci_low, first.ci_low)


def test_result_object() -> None:
    y, w, score, _ = _experiment(10, 600)
    result = calibration_by_decile(y, w, score, n_bins=4, n_boot=30, alpha=0.1)
    assert isinstance(result, UpliftCalibration)
    assert result.n_bins == 4
    assert (result.n_boot, result.alpha) == (30, 0.1)
    frame = result.to_frame()
    assert frame["bin"].tolist() == [1, 2, 3, 4]
    assert frame.columns[:4].tolist() == ["bin", "n_treated", "n_control", "score_high"]
    assert {"observed", "ci_low", "welch_high", "welch_std_error"} <= set(frame.columns)
    assert frame["n_treated"].sum() + frame["n_control"].sum() == 600
    assert (np.diff(result.predicted) < 0).all()  # bin 1 holds the highest scores
    assert (result.score_low[:-1] >= result.score_high[1:]).all()
    text = result.summary()
    assert "calibration slope" in text
    assert "90%" in text
    assert len(text.splitlines()) == 2 + 1 + 4
    with pytest.raises(ValueError, match="read-only"):
        result.observed[0] = 0.0
    with pytest.raises(AttributeError):
        result.slope = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 0}, "n_bins must be a positive integer"),
        ({"n_bins": 2.0}, "n_bins must be a positive integer"),
        ({"n_bins": True}, "n_bins must be a positive integer"),
        ({"n_bins": 11}, "exceeds the 10 customers"),
        ({"n_boot": 0}, "n_boot must be a positive integer"),
        ({"alpha": 1.5}, "alpha must lie in"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    y, w, score = np.arange(10.0), np.tile([1, 0], 5), np.linspace(0.0, 1.0, 10)
    with pytest.raises(ValueError, match=match):
        calibration_by_decile(y, w, score, **kwargs)  # type: ignore[arg-type]


def test_bad_inputs_are_rejected_as_by_the_metrics() -> None:
    with pytest.raises(ValueError, match="at least one treated and one control"):
        calibration_by_decile(np.ones(4), np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="score must hold finite"):
        calibration_by_decile(np.ones(4), [1, 0, 1, 0], [0.1, np.nan, 0.3, 0.4])
