"""Tests of uplift.analysis.selection: choosing a learner on out-of-fold Qini.

Ground truth by simulation: a three-arm experiment whose per-customer effect is known,
scored by "learners" whose predictions are the truth, the truth plus noise, and pure
noise. The point scores are checked against :func:`uplift.analysis.metrics.qini_score`
(itself equal to causalml 0.18's ``qini_score``, see test_metrics.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.metrics import qini_score
from uplift.analysis.selection import compare_learners


def _experiment(n: int = 6000, seed: int = 1) -> tuple[pd.Series, pd.Series, dict]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    arms = pd.Series(rng.choice(["control", "a", "b"], n), name="arm")
    effect = {"a": 0.3 * (x > 0), "b": 0.2 * (1 - x)}
    y = rng.normal(0, 1, n)
    for arm, tau in effect.items():
        y = y + tau * (arms.to_numpy() == arm)
    predictions = {
        "truth": pd.DataFrame(effect),
        "noisy": pd.DataFrame({a: t + rng.normal(0, 0.2, n) for a, t in effect.items()}),
        "noise": pd.DataFrame({a: rng.normal(0, 1, n) for a in effect}),
    }
    return pd.Series(y), arms, predictions


def test_the_truth_is_chosen_and_noise_is_told_apart() -> None:
    """Predictions equal to the true effect score highest; a pure-noise learner's paired
    difference interval lies below zero."""
    y, arms, predictions = _experiment()
    result = compare_learners(predictions, y, arms, "control", ["a", "b"], n_boot=100, seed=0)
    assert result.chosen == "truth"
    table = result.to_frame().set_index("name")
    assert table.loc["truth", "chosen"] and not table.loc["noise", "chosen"]
    assert table.loc["noise", "difference_ci_high"] < 0
    assert table.loc["noise", "distinguishable"]
    assert table.loc["truth", "difference"] == 0.0
    # the table is sorted best first, and the chosen learner's interval holds its score
    assert table.index[0] == "truth"
    assert (
        table.loc["truth", "ci_low"] <= table.loc["truth", "qini"] <= table.loc["truth", "ci_high"]
    )


def test_scores_are_the_mean_qini_over_arms() -> None:
    """Reference: the mean of qini_score (causalml's convention) over the arm pairs."""
    y, arms, predictions = _experiment()
    result = compare_learners(predictions, y, arms, "control", ["a", "b"], n_boot=5, seed=0)
    for name, frame in predictions.items():
        expected = np.mean(
            [
                qini_score(
                    y[arms.isin([arm, "control"])].to_numpy(),
                    (arms[arms.isin([arm, "control"])] == arm).astype(int).to_numpy(),
                    frame[arm][arms.isin([arm, "control"])].to_numpy(),
                )
                for arm in ("a", "b")
            ]
        )
        got = result.table.set_index("name").loc[name, "qini"]
        assert got == pytest.approx(expected, abs=1e-12)


def test_identical_learners_cannot_be_told_apart() -> None:
    """Two learners with the same predictions: the paired difference is exactly zero on
    every replicate, so its interval is the single point 0."""
    y, arms, predictions = _experiment()
    same = {"one": predictions["noisy"], "two": predictions["noisy"].copy()}
    result = compare_learners(same, y, arms, "control", ["a", "b"], n_boot=30, seed=3)
    table = result.to_frame()
    assert (table["difference_ci_low"] == 0).all() and (table["difference_ci_high"] == 0).all()
    assert not table["distinguishable"].any()
    assert result.chosen == "one"  # a tie goes to the first listed


def test_reproducible_and_summary_names_the_choice() -> None:
    y, arms, predictions = _experiment()
    first = compare_learners(predictions, y, arms, "control", ["a", "b"], n_boot=20, seed=7)
    again = compare_learners(predictions, y, arms, "control", ["a", "b"], n_boot=20, seed=7)
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    assert "chosen: truth" in first.summary()


def test_no_learners_is_an_error() -> None:
    y, arms, _ = _experiment(n=100)
    with pytest.raises(ValueError, match="no learners"):
        compare_learners({}, y, arms, "control", ["a", "b"])
