"""Tests of the bootstrap interval of the Qini score (uplift.analysis.metrics.qini_interval).

Ground truth by simulation: the sampling distribution of the Qini score of a fixed scoring
rule is measured directly, by drawing many independent experiments from the same model;
the bootstrap, which sees one experiment only, must reproduce its spread.
"""

from __future__ import annotations

import numpy as np
import pytest

from uplift.analysis.metrics import qini_interval, qini_score


def _experiment(rng: np.random.Generator, n: int = 6000):
    """A binary outcome whose effect grows with x: 0.02 + 0.15 * x for x ~ U(0, 1)."""
    x = rng.random(n)
    t = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.1 + t * (0.02 + 0.15 * x)).astype(int)
    return y, t, x


def test_the_bootstrap_spread_matches_the_sampling_distribution() -> None:
    rng = np.random.default_rng(20261220)
    # the truth: the Qini of ranking by x over 300 independent experiments
    draws = np.array([qini_score(*_experiment(rng)) for _ in range(300)])
    sampling_sd = draws.std(ddof=1)
    # the bootstrap of each of five experiments estimates that spread; the relative error
    # of a standard deviation from 300 draws (either side) is about 4%, plus the bootstrap's
    # own small-sample error, so 25% is a loose but failing-when-wrong band
    for _ in range(5):
        y, t, x = _experiment(rng)
        result = qini_interval(y, t, x, n_boot=300, seed=1)
        assert result.std_error == pytest.approx(sampling_sd, rel=0.25)
        assert result.ci_low < result.score < result.ci_high
    # and the intervals cover the mean of the sampling distribution most of the time
    covered = 0
    for seed in range(40):
        y, t, x = _experiment(rng)
        result = qini_interval(y, t, x, n_boot=200, seed=seed)
        covered += result.ci_low <= draws.mean() <= result.ci_high
    assert covered >= 34  # 95% of 40 is 38; 34 or more has probability above 0.99


def test_the_interval_is_reproducible_and_its_score_is_qini_score() -> None:
    y, t, x = _experiment(np.random.default_rng(3))
    first = qini_interval(y, t, x, n_boot=50, seed=7)
    assert first == qini_interval(y, t, x, n_boot=50, seed=7)
    assert first.score == qini_score(y, t, x)
    assert first != qini_interval(y, t, x, n_boot=50, seed=8)
    assert first.n_boot == 50


def test_a_ranking_by_noise_has_an_interval_around_zero_and_a_good_one_above() -> None:
    rng = np.random.default_rng(4)
    y, t, x = _experiment(rng, n=20_000)
    noise = qini_interval(y, t, rng.random(y.size), n_boot=100)
    assert noise.ci_low < 0 < noise.ci_high
    informed = qini_interval(y, t, x, n_boot=100)
    assert informed.ci_low > 0


def test_without_ties_the_interval_is_that_of_resorting_every_replicate() -> None:
    """Reference: the earlier implementation of qini_interval (before the per-customer
    counts), reproduced here: per replicate, draw treated rows then control rows with
    ``rng.integers``, and re-score the materialized resample with qini_score (which re-sorts
    it). Scores without ties make both the same replicates: same numbers to 1e-12."""
    y, t, x = _experiment(np.random.default_rng(9), n=3000)
    assert np.unique(x).shape[0] == x.shape[0]
    rng = np.random.default_rng(5)
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    replicates = []
    for _ in range(60):
        rows = np.concatenate(
            [
                treated[rng.integers(0, treated.size, treated.size)],
                control[rng.integers(0, control.size, control.size)],
            ]
        )
        replicates.append(qini_score(y[rows], t[rows], x[rows]))
    low, high = np.quantile(replicates, [0.05, 0.95])
    result = qini_interval(y, t, x, n_boot=60, alpha=0.1, seed=5)
    np.testing.assert_allclose(
        [result.ci_low, result.ci_high, result.std_error],
        [low, high, np.std(replicates, ddof=1)],
        rtol=1e-12,
    )
