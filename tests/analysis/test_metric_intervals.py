"""Tests of the bootstrap intervals of the uplift metrics (uplift.analysis.metrics).

References:

* Brute force, for the resampling arithmetic: every replicate re-drawn here with the draws
  ``metric_intervals`` documents (``rng.integers(0, n_t, n_t)`` into the treated rows, then
  ``rng.integers(0, n_c, n_c)`` into the control rows, per replicate), materialized as rows
  and re-scored from scratch by ``qini_score`` / ``auuc_score`` / ``uplift_at_k``, which
  re-sort the resample (those match causalml 0.18, see test_metrics.py). Without ties in the
  score the two are the same replicates, so the intervals agree to 1e-12.
* Simulation, for the statistics: the sampling distribution of each metric of a fixed scoring
  rule, measured over many independent experiments, against the bootstrap's spread and
  coverage from one experiment at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.metrics import (
    MetricInterval,
    UpliftMetrics,
    auuc_score,
    metric_intervals,
    qini_interval,
    qini_score,
    uplift_at_k,
)
from uplift.analysis.metrics import _interval as _interval  # the all-undefined edge case

METRICS = ("qini", "auuc", "uplift_at_k")


def _experiment(
    seed: int, outcome: str, n: int = 500, ties: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An experiment with a clearly positive average effect (normalizers far from 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.integers(0, 2, size=n)
    tau = 0.5 + 0.5 * x
    if outcome == "binary":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(-1.0 + 0.5 * x + w * tau)))).astype(float)
    else:
        y = rng.lognormal(mean=1.0 + 0.2 * x + 0.5 * w * tau, sigma=1.0)
    score = tau + rng.normal(scale=0.5, size=n)
    if ties:
        score = np.round(score, 1)
    return y, w, score


def _scorers(k: float, normalize: bool) -> list[Callable[..., float]]:
    return [
        lambda y, w, s: qini_score(y, w, s, normalize=normalize),
        lambda y, w, s: auuc_score(y, w, s, normalize=normalize),
        lambda y, w, s: uplift_at_k(y, w, s, k=k),
    ]


def _resample_and_recompute(
    y: np.ndarray,
    w: np.ndarray,
    score: np.ndarray,
    *,
    k: float,
    n_boot: int,
    seed: int,
    normalize: bool,
) -> np.ndarray:
    """Replicates by brute force: draw rows, then re-score each resample from scratch."""
    rng = np.random.default_rng(seed)
    treated, control = np.flatnonzero(w == 1), np.flatnonzero(w == 0)
    out = np.full((n_boot, 3), np.nan)
    for b in range(n_boot):
        rows = np.concatenate(
            [
                treated[rng.integers(0, treated.size, treated.size)],
                control[rng.integers(0, control.size, control.size)],
            ]
        )
        for j, scorer in enumerate(_scorers(k, normalize)):
            with contextlib.suppress(ValueError):  # undefined: left NaN, as documented
                out[b, j] = scorer(y[rows], w[rows], score[rows])
    return out


def _summaries(replicates: np.ndarray, alpha: float) -> list[tuple[float, float, float, int]]:
    out = []
    for j in range(3):
        defined = replicates[:, j][~np.isnan(replicates[:, j])]
        low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
        out.append((float(low), float(high), float(defined.std(ddof=1)), defined.shape[0]))
    return out


# --- the replicates are those of resampling and recomputing ---------------------------------


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("outcome", ["binary", "lognormal"])
def test_intervals_equal_resampling_and_recomputing_without_ties(
    outcome: str, normalize: bool
) -> None:
    """Brute-force reference: the documented draws, materialized and re-scored by
    qini_score / auuc_score / uplift_at_k (each re-sorting the resample)."""
    for seed in range(3):
        y, w, score = _experiment(seed, outcome)
        assert np.unique(score).shape[0] == score.shape[0]
        result = metric_intervals(y, w, score, k=0.3, n_boot=40, seed=11, normalize=normalize)
        expected = _resample_and_recompute(
            y, w, score, k=0.3, n_boot=40, seed=11, normalize=normalize
        )
        for name, (low, high, std, n_valid) in zip(
            METRICS, _summaries(expected, 0.05), strict=True
        ):
            got: MetricInterval = getattr(result, name)
            assert got.n_valid == n_valid == 40
            np.testing.assert_allclose(
                [got.ci_low, got.ci_high, got.std_error], [low, high, std], rtol=1e-12, atol=0
            )


def test_undefined_replicates_are_left_out_as_when_recomputing() -> None:
    """Brute-force reference, on a sample small enough for replicates to be undefined: the
    one converting customer is missing from about a third of the replicates (overall
    incremental outcome 0: Qini and AUUC undefined), and the top 3 of 12 often lack an arm."""
    score = np.linspace(1.0, 0.0, 12)  # distinct; rows listed in ranked order
    w = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    y = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    result = metric_intervals(y, w, score, k=0.25, n_boot=300, seed=2)
    expected = _resample_and_recompute(y, w, score, k=0.25, n_boot=300, seed=2, normalize=True)
    for name, (low, high, std, n_valid) in zip(METRICS, _summaries(expected, 0.05), strict=True):
        got: MetricInterval = getattr(result, name)
        assert 100 < got.n_valid == n_valid < 300
        np.testing.assert_allclose(
            [got.ci_low, got.ci_high, got.std_error], [low, high, std], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("outcome", ["binary", "lognormal"])
def test_with_ties_the_intervals_agree_loosely_with_recomputing(outcome: str) -> None:
    """Brute-force reference with 44 distinct scores among 2,000 customers. Inside a
    replicate, tied customers keep the sample's order while re-scoring re-sorts them, so the
    replicates differ, but not their distribution: bounds within half a standard error,
    standard errors within 5%."""
    y, w, score = _experiment(1, outcome, n=2000, ties=True)
    assert np.unique(score).shape[0] < 50
    result = metric_intervals(y, w, score, n_boot=200, seed=11)
    expected = _resample_and_recompute(y, w, score, k=0.3, n_boot=200, seed=11, normalize=True)
    for name, (low, high, std, _) in zip(METRICS, _summaries(expected, 0.05), strict=True):
        got: MetricInterval = getattr(result, name)
        assert got.std_error == pytest.approx(std, rel=0.05)
        assert abs(got.ci_low - low) < 0.5 * std
        assert abs(got.ci_high - high) < 0.5 * std


# --- point estimates, reproducibility, qini_interval ---------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_point_estimates_are_the_point_functions(ties: bool) -> None:
    y, w, score = _experiment(4, "lognormal", n=1500, ties=ties)
    for normalize in (True, False):
        result = metric_intervals(y, w, score, k=0.2, n_boot=5, normalize=normalize)
        assert result.qini.estimate == qini_score(y, w, score, normalize=normalize)
        assert result.auuc.estimate == auuc_score(y, w, score, normalize=normalize)
        assert result.uplift_at_k.estimate == uplift_at_k(y, w, score, k=0.2)
        for name in METRICS:
            m = getattr(result, name)
            assert m.ci_low < m.estimate < m.ci_high


def test_same_seed_same_intervals_other_seed_other_intervals() -> None:
    y, w, score = _experiment(5, "binary", n=800)
    first = metric_intervals(y, w, score, n_boot=30, seed=7)
    assert first == metric_intervals(y, w, score, n_boot=30, seed=7)
    other = metric_intervals(y, w, score, n_boot=30, seed=8)
    assert other.qini.estimate == first.qini.estimate
    assert other.qini.ci_low != first.qini.ci_low


def test_qini_interval_is_the_qini_part_of_metric_intervals() -> None:
    y, w, score = _experiment(6, "lognormal", n=800, ties=True)
    both = metric_intervals(y, w, score, n_boot=50, alpha=0.1, seed=3, normalize=False)
    alone = qini_interval(y, w, score, n_boot=50, alpha=0.1, seed=3, normalize=False)
    assert (alone.score, alone.ci_low, alone.ci_high, alone.std_error, alone.n_boot) == (
        both.qini.estimate,
        both.qini.ci_low,
        both.qini.ci_high,
        both.qini.std_error,
        50,
    )


# --- the statistics: spread and coverage, by simulation -------------------------------------


def _campaign(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A binary outcome whose effect grows with x: 0.02 + 0.15 * x for x ~ U(0, 1)."""
    x = rng.random(n)
    t = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.1 + t * (0.02 + 0.15 * x)).astype(float)
    return y, t, x


def test_bootstrap_spread_and_coverage_match_the_sampling_distribution() -> None:
    """Simulation: each metric of ranking by x over 300 independent experiments of 4,000
    customers is its sampling distribution; the bootstrap of one experiment must reproduce
    its spread, and its intervals must cover the distribution's mean about 95% of the time
    (measured at 93-95% for the three metrics over 300 experiments)."""
    rng = np.random.default_rng(20261122)
    n = 4000
    scorers = _scorers(0.3, True)
    draws = np.array(
        [[f(y, t, x) for f in scorers] for y, t, x in (_campaign(rng, n) for _ in range(300))]
    )
    sampling_sd = draws.std(axis=0, ddof=1)
    truth = draws.mean(axis=0)
    # One experiment's bootstrap spread of a normalized metric moves with that experiment's
    # normalizer (about +-30% here), so average it over 8 experiments: that mean is off by
    # about 5%, the sampling standard deviation of 300 draws by about 4%, and 15% is a tight
    # band that a wrong spread (say, resampling the wrong unit) fails.
    bootstrap_sd = np.mean(
        [
            [getattr(r, name).std_error for name in METRICS]
            for r in (metric_intervals(*_campaign(rng, n), n_boot=300, seed=1) for _ in range(8))
        ],
        axis=0,
    )
    np.testing.assert_allclose(bootstrap_sd, sampling_sd, rtol=0.15)
    covered = np.zeros(3, dtype=int)
    for seed in range(80):
        result = metric_intervals(*_campaign(rng, n), n_boot=100, seed=seed)
        for j, name in enumerate(METRICS):
            m = getattr(result, name)
            covered[j] += m.ci_low <= truth[j] <= m.ci_high
    # 95% of 80 is 76. A sanity bound, the spread above being the sharper check: fewer than
    # 68 has probability 0.0002 for a 95% interval, 0.004 for a 93% one (as a percentile
    # interval of these ratio metrics can be), 0.84 for an 80% one
    assert (covered >= 68).all(), covered


# --- result object and arguments ------------------------------------------------------------


def test_result_object() -> None:
    y, w, score = _experiment(8, "binary", n=600)
    result = metric_intervals(y, w, score, k=0.4, n_boot=20, alpha=0.1)
    assert isinstance(result, UpliftMetrics)
    assert (result.k, result.n_boot, result.alpha, result.normalize) == (0.4, 20, 0.1, True)
    assert result.n_treated + result.n_control == 600
    assert result.n_treated == int(w.sum())
    frame = result.to_frame()
    assert list(frame.index) == list(METRICS)
    assert frame.index.name == "metric"
    assert list(frame.columns) == ["estimate", "ci_low", "ci_high", "std_error", "n_valid"]
    assert frame.loc["auuc", "ci_high"] == result.auuc.ci_high
    flat = result.to_dict()
    assert list(flat) == [
        "qini",
        "qini_ci_low",
        "qini_ci_high",
        "auuc",
        "auuc_ci_low",
        "auuc_ci_high",
        "uplift_at_k",
        "uplift_at_k_ci_low",
        "uplift_at_k_ci_high",
        "k",
    ]
    assert flat["uplift_at_k_ci_low"] == result.uplift_at_k.ci_low
    assert flat["k"] == 0.4
    pd.testing.assert_series_equal(
        frame["estimate"],
        pd.Series([flat["qini"], flat["auuc"], flat["uplift_at_k"]], index=frame.index),
        check_names=False,
    )
    with pytest.raises(AttributeError):
        result.k = 0.5  # type: ignore[misc]


def test_a_sample_that_every_replicate_repeats_has_zero_spread() -> None:
    # one treated and one control customer: every replicate draws each once, so it is the
    # sample itself, and uplift@k at k=0.5 (the treated customer alone) stays undefined
    y, w, score = np.array([1.0, 0.0]), np.array([1, 0]), np.array([0.9, 0.1])
    with pytest.raises(ValueError, match="needs both"):
        metric_intervals(y, w, score, k=0.5, n_boot=3)
    result = metric_intervals(y, w, score, k=1.0, n_boot=3)
    for name in METRICS:
        m = getattr(result, name)
        assert m.n_valid == 3
        assert m.ci_low == m.ci_high == pytest.approx(m.estimate, rel=1e-12)
        assert m.std_error == pytest.approx(0.0, abs=1e-12)
    assert result.uplift_at_k.estimate == 1.0


def test_no_defined_replicate_gives_nan_without_warnings() -> None:
    # warnings are errors in this suite: nanquantile or std over nothing would raise here
    none = _interval(0.3, np.full(4, np.nan), 0.05)
    assert none.estimate == 0.3
    assert np.isnan([none.ci_low, none.ci_high, none.std_error]).all()
    assert none.n_valid == 0
    one = _interval(0.3, np.array([np.nan, 0.2, np.nan]), 0.05)
    assert (one.ci_low, one.ci_high, one.n_valid) == (0.2, 0.2, 1)
    assert np.isnan(one.std_error)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 0}, "n_boot must be a positive integer"),
        ({"n_boot": 2.5}, "n_boot must be a positive integer"),
        ({"n_boot": True}, "n_boot must be a positive integer"),
        ({"alpha": 0.0}, "alpha must lie in"),
        ({"alpha": 1.0}, "alpha must lie in"),
        ({"k": 0.0}, "k must be a share"),
        ({"k": 0.01}, "selects nobody"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    y, w, score = _experiment(9, "binary", n=50)
    with pytest.raises(ValueError, match=match):
        metric_intervals(y, w, score, **kwargs)  # type: ignore[arg-type]
    if "k" not in kwargs:
        with pytest.raises(ValueError, match=match):
            qini_interval(y, w, score, **kwargs)  # type: ignore[arg-type]


def test_bad_inputs_are_rejected_as_by_the_point_functions() -> None:
    with pytest.raises(ValueError, match="only 0"):
        metric_intervals([1.0, 0.0, 1.0], [1, 0, 2], [0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="cannot normalize"):
        metric_intervals(np.zeros(4), [1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1])
