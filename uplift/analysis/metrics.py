"""Qini and uplift curves, AUUC, Qini score and uplift@k for one treatment arm against control.

Every function takes three equal-length one-dimensional arrays: ``y`` (the observed outcome,
binary or continuous), ``treatment`` (1 for the arm being evaluated, 0 for control; rows of
other arms must be dropped first) and ``score`` (the model's predicted uplift for that arm).
All work is vectorized: one sort and a few cumulative sums, so a million rows take a fraction
of a second.

Convention
----------
The numbers are those of causalml 0.18 (``causalml.metrics.get_qini``, ``get_cumgain``,
``qini_score`` and ``auuc_score`` on a frame holding only ``y``, ``w`` and one model column),
reproduced exactly; the reference tests compare the two to 1e-9.

Ordering
    Customers are ranked by ``score``, highest first. Ties are broken exactly as causalml
    breaks them: it calls ``DataFrame.sort_values(col, ascending=False)``, whose default
    algorithm is numpy's *unstable* quicksort applied to the reversed column, and reverses
    the result. We make the same numpy call on the same float64 values, so tied customers
    come out in the same order as in causalml on the same numpy build. That order is not
    otherwise meaningful: with many ties in the score, the curve inside a tied block, and
    hence the areas below, depend on it.

x axis
    ``fraction = k / n`` for ``k = 0, 1, ..., n``: the share of customers targeted, starting
    with a point at 0 where every curve is 0. Curves therefore have ``n + 1`` points.

y axis
    With ``N_t(k)``, ``N_c(k)`` the numbers of treated and control customers among the top
    ``k``, and ``Y_t(k)``, ``Y_c(k)`` the sums of their outcomes:

    * Qini curve: ``Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``, the incremental outcome among the
      targeted treated customers, with the control sum rescaled to the treated count.
    * Uplift (cumulative gain) curve: ``(Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k``, the
      difference in means among the top ``k`` times the number targeted.

    Near the top of the ranking a ratio can be undefined (no control customer yet, or for the
    uplift curve no treated one either). As in causalml, such leading points are filled by
    linear interpolation from 0 at ``k = 0`` to the first defined point ``m``: the Qini value
    there is ``Q(m) * k / m``; for the uplift curve it is the *difference in means* that is
    interpolated, ``lift(m) * k / m``, before it is multiplied by ``k``.

Normalization
    ``normalize=True`` divides the whole curve by the absolute value of its last point,
    ``|Q(n)|`` or ``|G(n)|``, i.e. by the absolute incremental outcome of treating everyone.
    The normalized curve ends at +1 (or -1 when the overall effect is negative). It is
    undefined, and a ``ValueError`` is raised, when that last point is exactly 0.

Areas
    An "area" is the mean of the ``n + 1`` curve heights (the origin included), not a
    trapezoidal integral. ``auuc_score`` is the area under the uplift curve with nothing
    subtracted, so a random ranking scores about 0.5 when normalized. ``qini_score`` is the
    area under the Qini curve minus the area under the random line, the straight line from
    ``(0, 0)`` to ``(1, Q(n))``, i.e. ``mean(Q) - Q(n) / 2``; a random ranking scores about 0.

Because the normalizer is the *overall* incremental outcome, normalized scores are not
confined to [0, 1]: when the average effect is small next to the effect in the best segment,
the curve rises far above 1 and the areas exceed 1; when the overall effect is negative they
are negative.

``uplift_at_k`` uses the same ordering: among the top ``floor(k * n)`` customers it is the mean
outcome of the treated minus the mean outcome of the control customers (the strategy
scikit-uplift calls "overall"; it equals the uplift curve's difference in means at that point).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "QiniInterval",
    "UpliftCurve",
    "auuc_score",
    "qini_curve",
    "qini_interval",
    "qini_score",
    "uplift_at_k",
    "uplift_curve",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class UpliftCurve:
    """A Qini or uplift curve: gain against the share of customers targeted.

    Parameters
    ----------
    fraction : ndarray of shape (n + 1,)
        Share of customers targeted, ``k / n`` for ``k = 0, ..., n``; starts at 0, ends at 1.
    gain : ndarray of shape (n + 1,)
        Curve height at each fraction; ``gain[0] == 0``. See the module docstring for the
        definition of each kind.
    kind : {"qini", "uplift"}
        Which curve this is.
    normalized : bool
        Whether ``gain`` was divided by the absolute value of its last point.

    Notes
    -----
    The arrays are made read-only so that the frozen instance cannot be changed in place.
    """

    fraction: FloatArray
    gain: FloatArray
    kind: Literal["qini", "uplift"]
    normalized: bool = False

    def __post_init__(self) -> None:
        fraction = np.array(self.fraction, dtype=np.float64)
        gain = np.array(self.gain, dtype=np.float64)
        if fraction.ndim != 1 or fraction.shape != gain.shape:
            raise ValueError(
                "fraction and gain must be one-dimensional arrays of the same length, got "
                f"shapes {fraction.shape} and {gain.shape}"
            )
        fraction.setflags(write=False)
        gain.setflags(write=False)
        object.__setattr__(self, "fraction", fraction)
        object.__setattr__(self, "gain", gain)

    @property
    def random(self) -> FloatArray:
        """The random-targeting line: straight from the first to the last point of ``gain``.

        This is the baseline that :func:`qini_score` subtracts.
        """
        return np.linspace(self.gain[0], self.gain[-1], self.gain.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """Return the curve as a frame with columns ``fraction``, ``gain`` and ``random``."""
        return pd.DataFrame({"fraction": self.fraction, "gain": self.gain, "random": self.random})


def _as_1d(values: npt.ArrayLike, name: str) -> npt.NDArray[np.generic]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _to_float(array: npt.NDArray[np.generic], name: str) -> FloatArray:
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    out = array.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        raise ValueError(
            f"{name} must hold finite values only; {int(bad.sum())} of {out.shape[0]} are "
            f"NaN or infinite (first at position {int(np.argmax(bad))})"
        )
    return out


def _validate(
    y: npt.ArrayLike, treatment: npt.ArrayLike, score: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check the three inputs and return them as float64 arrays."""
    y_arr = _as_1d(y, "y")
    w_arr = _as_1d(treatment, "treatment")
    s_arr = _as_1d(score, "score")
    lengths = {"y": y_arr.shape[0], "treatment": w_arr.shape[0], "score": s_arr.shape[0]}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"y, treatment and score must have the same length, got {lengths}")
    y_f = _to_float(y_arr, "y")
    w_f = _to_float(w_arr, "treatment")
    s_f = _to_float(s_arr, "score")
    not_binary = (w_f != 0.0) & (w_f != 1.0)
    if not_binary.any():
        others = np.unique(w_f[not_binary])[:5].tolist()
        raise ValueError(f"treatment must hold only 0 (control) and 1 (treated), found {others}")
    n_treated = int(w_f.sum())
    n_control = w_f.shape[0] - n_treated
    if n_treated == 0 or n_control == 0:
        raise ValueError(
            "uplift metrics need at least one treated and one control customer, got "
            f"{n_treated} treated and {n_control} control"
        )
    return y_f, w_f, s_f


def _descending_order(score: FloatArray) -> npt.NDArray[np.intp]:
    """Indices sorting ``score`` from highest to lowest, ties broken as causalml does.

    This is ``pandas.core.sorting.nargsort(score, kind="quicksort", ascending=False)`` for an
    array without NaN, which is what ``DataFrame.sort_values(col, ascending=False)`` uses.
    """
    n = score.shape[0]
    return (n - 1 - np.argsort(score[::-1], kind="quicksort"))[::-1]


def _cumulative(
    y: FloatArray, w: FloatArray, score: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return ``k, N_t(k), N_c(k), Y_t(k), Y_c(k)`` for ``k = 1..n`` in ranked order."""
    order = _descending_order(score)
    y_sorted = y[order]
    w_sorted = w[order]
    k = np.arange(1, y.shape[0] + 1, dtype=np.float64)
    n_t = np.cumsum(w_sorted)
    n_c = k - n_t
    y_t = np.cumsum(y_sorted * w_sorted)
    y_c = np.cumsum(y_sorted * (1.0 - w_sorted))
    return k, n_t, n_c, y_t, y_c


def _fill_leading(values: FloatArray, first: int, k: FloatArray) -> None:
    """Interpolate ``values[:first]`` linearly between 0 at ``k = 0`` and ``values[first]``."""
    if first > 0:
        values[:first] = values[first] / k[first] * k[:first]


def _finish(gain: FloatArray, kind: Literal["qini", "uplift"], normalize: bool) -> UpliftCurve:
    gain = np.concatenate(([0.0], gain))
    n = gain.shape[0] - 1
    if normalize:
        total = abs(gain[-1])
        if total == 0.0:
            raise ValueError(
                f"cannot normalize the {kind} curve: the incremental outcome of treating "
                "everyone is exactly 0 (use normalize=False)"
            )
        gain = gain / total
    fraction = np.arange(n + 1, dtype=np.float64) / n
    return UpliftCurve(fraction=fraction, gain=gain, kind=kind, normalized=normalize)


def qini_curve(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    normalize: bool = False,
) -> UpliftCurve:
    """Compute the Qini curve of a score, as ``causalml.metrics.get_qini`` does.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest.
    normalize : bool, default False
        Divide the curve by the absolute value of its last point.

    Returns
    -------
    UpliftCurve
        ``fraction = k / n`` and ``gain = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)`` for
        ``k = 0..n``, leading points without a control customer interpolated linearly
        from 0 (see the module docstring).

    Raises
    ------
    ValueError
        If the inputs differ in length, are not finite, the treatment is not 0/1, either
        group is empty, or ``normalize`` is asked for a curve ending at exactly 0.
    """
    y_f, w_f, s_f = _validate(y, treatment, score)
    k, n_t, n_c, y_t, y_c = _cumulative(y_f, w_f, s_f)
    first = int(np.argmax(n_c > 0))  # index of the first prefix holding a control customer
    gain = np.empty_like(k)
    gain[first:] = y_t[first:] - y_c[first:] * n_t[first:] / n_c[first:]
    _fill_leading(gain, first, k)
    return _finish(gain, "qini", normalize)


def uplift_curve(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    normalize: bool = False,
) -> UpliftCurve:
    """Compute the uplift (cumulative gain) curve, as ``causalml.metrics.get_cumgain`` does.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest.
    normalize : bool, default False
        Divide the curve by the absolute value of its last point.

    Returns
    -------
    UpliftCurve
        ``fraction = k / n`` and ``gain = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k`` for
        ``k = 0..n``; where a prefix lacks a treated or a control customer, the difference
        in means is interpolated linearly from 0 and then multiplied by ``k``.

    Raises
    ------
    ValueError
        If the inputs differ in length, are not finite, the treatment is not 0/1, either
        group is empty, or ``normalize`` is asked for a curve ending at exactly 0.
    """
    y_f, w_f, s_f = _validate(y, treatment, score)
    k, n_t, n_c, y_t, y_c = _cumulative(y_f, w_f, s_f)
    first = int(np.argmax((n_t > 0) & (n_c > 0)))
    lift = np.empty_like(k)
    lift[first:] = y_t[first:] / n_t[first:] - y_c[first:] / n_c[first:]
    _fill_leading(lift, first, k)
    return _finish(lift * k, "uplift", normalize)


def qini_score(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    normalize: bool = True,
) -> float:
    """Area between the Qini curve and the random line, as ``causalml.metrics.qini_score``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest (ties as in causalml).
    normalize : bool, default True
        Score the Qini curve divided by ``|Q(n)|``, the absolute incremental outcome of
        treating everyone, instead of the raw curve.

    Returns
    -------
    float
        ``mean(Q) - Q(n) / 2`` over the ``n + 1`` points ``k = 0..n`` of the Qini curve
        ``Q`` (normalized or not). The x axis is the share targeted ``k / n``; the y axis is
        the incremental outcome ``Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``. ``Q(n) / 2`` is the
        mean of the random line, straight from ``(0, 0)`` to ``(1, Q(n))``, so a random
        ranking scores about 0 and a good one is positive.

    Raises
    ------
    ValueError
        On invalid inputs (see :func:`qini_curve`), or when ``normalize`` is True and
        ``Q(n)`` is exactly 0.

    Notes
    -----
    Normalized values are not bounded by [0, 1]: the normalizer is the overall effect, so
    when it is small next to the effect among the top-ranked customers the score exceeds 1,
    and when the overall effect is negative the sign of the score flips with it. Compare
    scores of several models on the same data only.
    """
    gain = qini_curve(y, treatment, score, normalize=normalize).gain
    random_mean = 0.5 * (gain[0] + gain[-1])
    return float(gain.mean() - random_mean)


def auuc_score(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    normalize: bool = True,
) -> float:
    """Area under the uplift curve (AUUC), as ``causalml.metrics.auuc_score``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest (ties as in causalml).
    normalize : bool, default True
        Score the uplift curve divided by ``|G(n)|``, the absolute incremental outcome of
        treating everyone (``n`` times the overall difference in means).

    Returns
    -------
    float
        ``mean(G)`` over the ``n + 1`` points ``k = 0..n`` of the uplift curve ``G``
        (normalized or not). The x axis is the share targeted ``k / n``; the y axis is
        ``(Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k``. Nothing is subtracted: the random
        line is *not* removed, so a random ranking scores about 0.5 when normalized (about
        ``G(n) / 2`` otherwise); use :func:`qini_score` for a score relative to random.

    Raises
    ------
    ValueError
        On invalid inputs (see :func:`uplift_curve`), or when ``normalize`` is True and
        ``G(n)`` is exactly 0.

    Notes
    -----
    Normalized values are not bounded by [0, 1]: when the overall effect is small next to
    the effect among the top-ranked customers the curve rises far above 1, and when the
    overall effect is negative the curve ends at -1.
    """
    return float(uplift_curve(y, treatment, score, normalize=normalize).gain.mean())


def uplift_at_k(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    k: float = 0.3,
) -> float:
    """Difference in mean outcome between treated and control among the top-``k`` share.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest (ties as in causalml,
        so a tied block at the cut is split in that order).
    k : float, default 0.3
        Share of customers targeted, in (0, 1]. The top ``floor(k * n)`` customers are
        kept, with the product rounded to 9 decimals first so that, e.g., ``0.29 * 100``
        keeps 29 rather than 28.

    Returns
    -------
    float
        Mean of ``y`` over treated minus mean over control customers in the top group.

    Raises
    ------
    ValueError
        On invalid inputs, ``k`` outside (0, 1], or a top group that is empty or lacks a
        treated or a control customer.
    """
    if not isinstance(k, numbers.Real) or isinstance(k, bool) or not 0.0 < k <= 1.0:
        raise ValueError(f"k must be a share in (0, 1], got {k!r}")
    y_f, w_f, s_f = _validate(y, treatment, score)
    n = y_f.shape[0]
    n_top = math.floor(round(k * n, 9))
    if n_top == 0:
        raise ValueError(f"k={k} of {n} customers selects nobody; use a larger k")
    top = _descending_order(s_f)[:n_top]
    y_top = y_f[top]
    w_top = w_f[top]
    n_t = float(w_top.sum())
    n_c = n_top - n_t
    if n_t == 0 or n_c == 0:
        raise ValueError(
            f"the top {n_top} customers (k={k}) hold {int(n_t)} treated and {int(n_c)} "
            "control; uplift at k needs both"
        )
    return float((y_top * w_top).sum() / n_t - (y_top * (1.0 - w_top)).sum() / n_c)


@dataclass(frozen=True)
class QiniInterval:
    """A Qini score with its percentile bootstrap interval."""

    score: float
    ci_low: float
    ci_high: float
    std_error: float
    """Standard deviation of the bootstrap replicates."""
    n_boot: int


def qini_interval(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    normalize: bool = True,
) -> QiniInterval:
    """:func:`qini_score` with a percentile bootstrap interval.

    Customers are resampled with replacement within the treated and within the control
    group (so every replicate keeps the experiment's group sizes), and the Qini score is
    recomputed on each replicate by :func:`qini_score`, ties and all. The scores are held
    fixed: the interval measures how much the evaluation sample moves the Qini of *these*
    predictions (out-of-fold ones in the pipeline), not how much refitting the model
    would. Replicates whose normalizer is zero are dropped.

    Parameters
    ----------
    y, treatment, score : array-like of shape (n,)
        As for :func:`qini_score`.
    n_boot : int
        Number of bootstrap replicates.
    alpha : float
        One minus the interval's level.
    seed : int
        Seed of the resampling.
    normalize : bool
        As for :func:`qini_score`.
    """
    y_f, w_f, s_f = _validate(y, treatment, score)
    estimate = qini_score(y_f, w_f, s_f, normalize=normalize)
    rng = np.random.default_rng(seed)
    treated = np.flatnonzero(w_f == 1.0)
    control = np.flatnonzero(w_f == 0.0)
    replicates = np.full(n_boot, np.nan)
    for b in range(n_boot):
        rows = np.concatenate(
            [
                treated[rng.integers(0, treated.size, treated.size)],
                control[rng.integers(0, control.size, control.size)],
            ]
        )
        try:
            replicates[b] = qini_score(y_f[rows], w_f[rows], s_f[rows], normalize=normalize)
        except ValueError:  # the replicate's overall incremental outcome is exactly 0
            continue
    low, high = np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2])
    return QiniInterval(
        estimate, float(low), float(high), float(np.nanstd(replicates, ddof=1)), n_boot
    )
