"""Multiple-testing correction of many effects, with intervals that agree with it.

The adjusted p-values are statsmodels' (:func:`statsmodels.stats.multitest.multipletests`);
Holm's is computed here, to the same values, since statsmodels' collects garbage each call.
Each test also gets the *level the correction spent on it*, ``alpha * p / p_adjusted``:
the normal interval at that level excludes zero exactly when the adjusted p-value is
below ``alpha``, so an interval and its verdict never disagree. For Bonferroni the level
is ``alpha / m`` and the intervals are simultaneous; for Holm it is the step-down level
``alpha / (m - j + 1)`` of the test's step ``j`` (smaller where monotonicity binds); for
Benjamini-Hochberg it is the step-up level ``j * alpha / m``, which for the selected
effects is close to Benjamini and Yekutieli's (2005) false-coverage-rate intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from statsmodels.stats.multitest import multipletests

__all__ = ["CORRECTIONS", "Correction", "Method", "correct", "detectable_effect"]

Method = Literal["holm", "fdr_bh", "bonferroni", "none"]
CORRECTIONS: tuple[Method, ...] = ("holm", "fdr_bh", "bonferroni", "none")


@dataclass(frozen=True)
class Correction:
    """Adjusted p-values and per-test levels of one family of tests."""

    p_adjusted: np.ndarray
    level: np.ndarray
    """Significance level spent on each test (NaN outside the family)."""
    family_size: int


def correct(p_values: np.ndarray, method: Method, alpha: float) -> Correction:
    """Correct a family of p-values; NaN entries are not tested and stay NaN.

    Parameters
    ----------
    p_values : np.ndarray
        Unadjusted p-values.
    method : {"holm", "fdr_bh", "bonferroni", "none"}
        statsmodels' method name (``fdr_bh`` is Benjamini-Hochberg), or no correction.
    alpha : float
        Family-wise error rate (false discovery rate for ``fdr_bh``).

    Returns
    -------
    Correction
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, found {method!r}")
    p = np.asarray(p_values, dtype=float)
    tested = np.isfinite(p)
    m = int(tested.sum())
    adjusted = np.full(p.shape, np.nan)
    level = np.full(p.shape, np.nan)
    if m == 0:
        return Correction(adjusted, level, 0)
    if method == "none":
        adjusted[tested] = p[tested]
        level[tested] = alpha
        return Correction(adjusted, level, m)
    if method == "holm":
        adjusted[tested] = _holm(p[tested])
    else:
        adjusted[tested] = multipletests(p[tested], alpha=alpha, method=method)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        spent = alpha * p[tested] / adjusted[tested]
    # a p-value of exactly zero says nothing about the level: take Bonferroni's, the smallest
    level[tested] = np.where(adjusted[tested] > 0, spent, alpha / m)
    return Correction(adjusted, level, m)


def _holm(p: np.ndarray) -> np.ndarray:
    # statsmodels' Holm runs gc.collect() on every call (a tenth of a second in a large
    # process, and segment effects call it once per analysis and per simulated experiment);
    # the step-down adjustment itself is this, and the tests hold it to statsmodels'
    order = np.argsort(p, kind="stable")
    steps = np.arange(p.size, 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * steps), 1.0)
    return adjusted


def detectable_effect(std_error: np.ndarray, level: np.ndarray, power: float) -> np.ndarray:
    """Smallest effect a two-sided normal test at ``level`` detects with ``power``.

    ``(z_{1 - level / 2} + z_{power}) * std_error``: the far tail's contribution to the
    power is ignored, as is usual (it is below ``level / 2``).
    """
    level = np.asarray(level, dtype=float)
    return (special.ndtri(1 - level / 2) + special.ndtri(power)) * np.asarray(std_error)
