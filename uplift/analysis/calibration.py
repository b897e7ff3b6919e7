"""Calibration of predicted uplift: observed against predicted uplift by quantile bin of the score.

For one treatment arm against control (rows of other arms dropped first), customers are ranked
by ``score``, highest first, with ties broken exactly as :mod:`uplift.analysis.metrics` breaks
them (causalml's order), and cut into ``n_bins`` bins of equal count over *all* customers,
treated and control together. Bin sizes differ by at most one, the larger bins first, as
``numpy.array_split`` (and scikit-uplift's ``uplift_by_percentile(strategy="overall")``) cut
them; bin 1 holds the highest scores. Per bin:

* ``predicted``: the mean score of all its customers;
* ``observed``: the mean outcome of its treated minus that of its control customers, NaN (with
  its intervals) when the bin lacks either;
* ``ci_low``, ``ci_high``, ``std_error``: a percentile bootstrap interval and standard error
  of ``observed``, resampling customers with replacement within each arm of the bin, scores
  held fixed (so bin membership is fixed too);
* ``welch_low``, ``welch_high``, ``welch_std_error``: the Welch t interval of the same
  difference (:func:`uplift.analysis.effects.welch_effect`), NaN with fewer than two customers
  in an arm.

A model is calibrated when ``observed`` tracks ``predicted``. One number sums that up, the
*calibration slope*: the least-squares slope of ``observed`` on ``predicted`` across the bins
where ``observed`` is defined, each bin weighted by its number of customers (the bins are equal
in count, so this is nearly the unweighted slope). It is 1 when the predicted differences
between bins are borne out at their predicted size, below 1 when they are overstated, 0 when
the ranking carries no information, negative when it is reversed; predictions off by a constant
leave it unchanged and move the intercept instead. It is well defined because the regressor
(``predicted``) is fixed and only the response is noisy, so the noise does not attenuate it.
Its interval is the percentile interval of the slope over the same bootstrap replicates. It is
NaN with fewer than two defined bins or when their predicted means are all equal.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import pandas as pd

from uplift.analysis.effects import welch_effect
from uplift.analysis.metrics import _check_bootstrap, _descending_order, _validate

__all__ = ["UpliftCalibration", "calibration_by_decile"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Most resampled values drawn at once for one bin and arm (about 32 MiB of indices).
_MAX_DRAW = 1 << 22


@dataclass(frozen=True, eq=False)
class UpliftCalibration:
    """Observed against predicted uplift per score bin, highest scores first.

    Every per-bin array has one entry per bin (see the module docstring for definitions);
    the arrays are read-only so that the frozen instance cannot be changed in place.

    Parameters
    ----------
    n_treated, n_control : ndarray of int
        Customers of each arm in the bin.
    score_high, score_low : ndarray
        Highest and lowest score in the bin.
    predicted : ndarray
        Mean score of the bin's customers.
    observed : ndarray
        Mean outcome of the bin's treated minus its control customers; NaN if an arm is
        missing.
    ci_low, ci_high, std_error : ndarray
        Percentile bootstrap interval and bootstrap standard error of ``observed``.
    welch_low, welch_high, welch_std_error : ndarray
        Welch t interval and standard error of ``observed``.
    slope, slope_ci_low, slope_ci_high : float
        Calibration slope (size-weighted least squares of ``observed`` on ``predicted``)
        and its percentile bootstrap interval.
    intercept : float
        Intercept of that fit.
    n_boot : int
        Number of bootstrap replicates.
    alpha : float
        One minus the intervals' level.
    """

    n_treated: IntArray
    n_control: IntArray
    score_high: FloatArray
    score_low: FloatArray
    predicted: FloatArray
    observed: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    std_error: FloatArray
    welch_low: FloatArray
    welch_high: FloatArray
    welch_std_error: FloatArray
    slope: float
    slope_ci_low: float
    slope_ci_high: float
    intercept: float
    n_boot: int
    alpha: float

    def __post_init__(self) -> None:
        lengths = set()
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray | list | tuple):
                dtype = np.int64 if f.name in ("n_treated", "n_control") else np.float64
                array = np.array(value, dtype=dtype)
                array.setflags(write=False)
                object.__setattr__(self, f.name, array)
                lengths.add(array.shape)
        if len(lengths) != 1:
            raise ValueError(f"the per-bin arrays must share one shape, got {sorted(lengths)}")

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.predicted.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per bin, ``bin`` 1 (highest scores) to ``n_bins``, and every per-bin array."""
        columns = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return pd.DataFrame({"bin": np.arange(1, self.n_bins + 1), **columns})

    def summary(self) -> str:
        """A plain-text table of the bins, headed by the calibration slope."""
        level = f"{1 - self.alpha:.0%}"
        cols = [
            "bin",
            "n_treated",
            "n_control",
            "predicted",
            "observed",
            "ci_low",
            "ci_high",
            "welch_low",
            "welch_high",
        ]
        return (
            f"Observed against predicted uplift in {self.n_bins} equal-count score bins "
            f"(bin 1 = highest scores; {level} percentile bootstrap, {self.n_boot} replicates, "
            f"and Welch intervals)\n"
            f"calibration slope {self.slope:.4g} ({level} CI {self.slope_ci_low:.4g} to "
            f"{self.slope_ci_high:.4g}), intercept {self.intercept:.4g}\n"
            + self.to_frame()[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")
        )


def _bin_sizes(n: int, n_bins: int) -> list[int]:
    """Sizes of ``numpy.array_split(range(n), n_bins)``: the first ``n % n_bins`` one larger."""
    base, extra = divmod(n, n_bins)
    return [base + 1] * extra + [base] * (n_bins - extra)


def _resampled_means(values: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """Means of ``n_boot`` resamples (with replacement, same size) of ``values``."""
    m = values.shape[0]
    rows_per_draw = max(1, _MAX_DRAW // m)
    means = np.empty(n_boot)
    for lo in range(0, n_boot, rows_per_draw):
        hi = min(lo + rows_per_draw, n_boot)
        means[lo:hi] = values[rng.integers(0, m, size=(hi - lo, m))].mean(axis=1)
    return means


def _weighted_slope(predicted: FloatArray, weights: FloatArray) -> tuple[FloatArray, float] | None:
    """Coefficients ``c`` with slope ``= c @ observed``, and the weighted mean of predicted.

    None when the weighted variance of ``predicted`` is zero.
    """
    mean = float(np.average(predicted, weights=weights))
    centred = predicted - mean
    sxx = float(np.sum(weights * centred**2))
    if sxx <= 0.0 or not math.isfinite(sxx):
        return None
    return weights * centred / sxx, mean


def calibration_by_decile(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    n_bins: int = 10,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> UpliftCalibration:
    """Observed against predicted uplift in deciles of the score, or ``n_bins`` quantile bins.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest (ties as in
        :mod:`uplift.analysis.metrics`).
    n_bins : int, default 10
        Number of equal-count bins, at most ``n``: deciles by default.
    n_boot : int, default 200
        Number of bootstrap replicates.
    alpha : float, default 0.05
        One minus the intervals' level.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``. Replicates are drawn bin by bin, from bin 1
        on, the treated and then the control customers of each bin.

    Returns
    -------
    UpliftCalibration
        Per-bin counts, predicted and observed uplift with bootstrap and Welch intervals,
        and the calibration slope with its bootstrap interval.

    Raises
    ------
    ValueError
        On invalid inputs (as :func:`uplift.analysis.metrics.qini_score`), ``n_bins``,
        ``n_boot`` or ``alpha``.
    """
    _check_bootstrap(n_boot, alpha)
    y_f, w_f, s_f = _validate(y, treatment, score)
    n = y_f.shape[0]
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if n_bins > n:
        raise ValueError(f"n_bins={n_bins} exceeds the {n} customers")
    order = _descending_order(s_f)
    y_r, w_r, s_r = y_f[order], w_f[order] == 1.0, s_f[order]
    rng = np.random.default_rng(seed)
    nan_bins = np.full(n_bins, math.nan)
    counts = np.zeros((2, n_bins), dtype=np.int64)
    stats = {
        name: nan_bins.copy()
        for name in (
            "score_high",
            "score_low",
            "predicted",
            "observed",
            "ci_low",
            "ci_high",
            "std_error",
            "welch_low",
            "welch_high",
            "welch_std_error",
        )
    }
    replicates = np.full((n_boot, n_bins), math.nan)
    start = 0
    for b, size in enumerate(_bin_sizes(n, n_bins)):
        part = slice(start, start + size)
        start += size
        scores, treated = s_r[part], w_r[part]
        y_t, y_c = y_r[part][treated], y_r[part][~treated]
        counts[:, b] = y_t.shape[0], y_c.shape[0]
        stats["score_high"][b], stats["score_low"][b] = scores[0], scores[-1]
        stats["predicted"][b] = scores.mean()
        if y_t.shape[0] == 0 or y_c.shape[0] == 0:
            continue
        stats["observed"][b] = y_t.mean() - y_c.mean()
        replicates[:, b] = _resampled_means(y_t, n_boot, rng) - _resampled_means(y_c, n_boot, rng)
        low, high = np.quantile(replicates[:, b], [alpha / 2, 1 - alpha / 2])
        stats["ci_low"][b], stats["ci_high"][b] = low, high
        stats["std_error"][b] = replicates[:, b].std(ddof=1) if n_boot > 1 else math.nan
        if y_t.shape[0] >= 2 and y_c.shape[0] >= 2:
            welch = welch_effect(y_t, y_c, alpha=alpha)
            stats["welch_low"][b], stats["welch_high"][b] = welch.ci_low, welch.ci_high
            stats["welch_std_error"][b] = welch.std_error

    slope = slope_low = slope_high = intercept = math.nan
    defined = ~np.isnan(stats["observed"])
    weights = counts[:, defined].sum(axis=0).astype(np.float64)
    fit = _weighted_slope(stats["predicted"][defined], weights) if defined.sum() >= 2 else None
    if fit is not None:
        coef, mean_predicted = fit
        observed = stats["observed"][defined]
        slope = float(coef @ observed)
        intercept = float(np.average(observed, weights=weights)) - slope * mean_predicted
        slopes = replicates[:, defined] @ coef
        slope_low, slope_high = (float(v) for v in np.quantile(slopes, [alpha / 2, 1 - alpha / 2]))
    return UpliftCalibration(
        n_treated=counts[0],
        n_control=counts[1],
        **stats,
        slope=slope,
        slope_ci_low=slope_low,
        slope_ci_high=slope_high,
        intercept=intercept,
        n_boot=int(n_boot),
        alpha=float(alpha),
    )
