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

Bootstrap
---------
``metric_intervals`` gives the Qini score, the AUUC and uplift@k with percentile bootstrap
intervals from the *same* replicates; ``qini_interval`` is its Qini part. Customers are drawn
with replacement within the treated and within the control group (each replicate keeps the
group sizes) while the scores stay fixed, so an interval measures how much the evaluation
sample moves the metric of these predictions, not how much refitting the model would.

A replicate is drawn as per-customer counts (how often each customer was picked), and its
ranking is the sample's ranking with every customer repeated that many times. Hence

* customers tied in score keep, inside every replicate, the order the sample's ranking gave
  them, and a customer's copies sit together. Re-sorting the replicate with causalml's
  unstable sort could order ties differently; without ties the two are the same replicate
  (the tests check this against re-sorting and recomputing, to 1e-12);
* nothing is re-sorted: a curve's mean over the replicate's ``n + 1`` positions is summed in
  closed form over each customer's block of copies (linear, or harmonic in the copy index
  where a mean's denominator grows inside the block), so a replicate costs a few vectorized
  passes over the customers, about 5 ms for 100,000 on one slow core.

A replicate in which a metric is undefined (normalizer exactly 0, or a top group without a
treated or a control customer) is left out of that metric's interval; ``n_valid`` counts the
others.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "MetricInterval",
    "QiniInterval",
    "UpliftCurve",
    "UpliftMetrics",
    "auuc_score",
    "metric_intervals",
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


def _check_share(k: float) -> None:
    if not isinstance(k, numbers.Real) or isinstance(k, bool) or not 0.0 < k <= 1.0:
        raise ValueError(f"k must be a share in (0, 1], got {k!r}")


def _top_count(k: float, n: int) -> int:
    """``floor(k * n)``, the product rounded to 9 decimals first; at least 1."""
    n_top = math.floor(round(k * n, 9))
    if n_top == 0:
        raise ValueError(f"k={k} of {n} customers selects nobody; use a larger k")
    return n_top


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
    _check_share(k)
    y_f, w_f, s_f = _validate(y, treatment, score)
    n_top = _top_count(k, y_f.shape[0])
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


# --- bootstrap intervals --------------------------------------------------------------------


@dataclass(frozen=True)
class QiniInterval:
    """A Qini score with its percentile bootstrap interval (see :func:`qini_interval`)."""

    score: float
    ci_low: float
    ci_high: float
    std_error: float
    """Standard deviation of the bootstrap replicates."""
    n_boot: int


@dataclass(frozen=True)
class MetricInterval:
    """One uplift metric: its point estimate and a percentile bootstrap interval.

    Parameters
    ----------
    estimate : float
        The metric on the evaluation sample itself.
    ci_low, ci_high : float
        The ``alpha / 2`` and ``1 - alpha / 2`` quantiles (numpy's default, linear
        interpolation) of the replicates in which the metric is defined; NaN if none is.
    std_error : float
        Standard deviation (``ddof=1``) of those replicates; NaN if fewer than two.
    n_valid : int
        Number of replicates in which the metric is defined (see :func:`metric_intervals`).
    """

    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    n_valid: int


@dataclass(frozen=True)
class UpliftMetrics:
    """Qini score, AUUC and uplift@k of one score, each with a bootstrap interval.

    All three intervals come from the *same* bootstrap replicates
    (see :func:`metric_intervals`).

    Parameters
    ----------
    qini : MetricInterval
        :func:`qini_score`.
    auuc : MetricInterval
        :func:`auuc_score`.
    uplift_at_k : MetricInterval
        :func:`uplift_at_k` at share ``k``.
    k : float
        Share of customers targeted by ``uplift_at_k``.
    n_boot : int
        Number of bootstrap replicates drawn.
    alpha : float
        One minus the intervals' level.
    normalize : bool
        Whether the Qini score and the AUUC are normalized.
    n_treated, n_control : int
        Sizes of the two groups, which every replicate keeps.
    """

    qini: MetricInterval
    auuc: MetricInterval
    uplift_at_k: MetricInterval
    k: float
    n_boot: int
    alpha: float
    normalize: bool
    n_treated: int
    n_control: int
    qini_replicates: FloatArray = field(
        default_factory=lambda: np.empty(0), repr=False, compare=False
    )
    """The Qini score of every replicate (NaN where undefined). Replicate ``b`` resamples
    the same customers whatever the score, given the seed, so two scores' replicates are
    paired (see :func:`uplift.analysis.selection.compare_learners`)."""

    def _metrics(self) -> dict[str, MetricInterval]:
        return {"qini": self.qini, "auuc": self.auuc, "uplift_at_k": self.uplift_at_k}

    def to_frame(self) -> pd.DataFrame:
        """One row per metric (``qini``, ``auuc``, ``uplift_at_k``, the index ``metric``).

        Columns ``estimate``, ``ci_low``, ``ci_high``, ``std_error`` and ``n_valid``.
        """
        frame = pd.DataFrame(
            [asdict(m) for m in self._metrics().values()],
            index=pd.Index(list(self._metrics()), name="metric"),
        )
        return frame[["estimate", "ci_low", "ci_high", "std_error", "n_valid"]]

    def to_dict(self) -> dict[str, float]:
        """The estimates and interval bounds, flat, e.g. for a row of a model table.

        Keys ``qini``, ``qini_ci_low``, ``qini_ci_high``, the same for ``auuc`` and
        ``uplift_at_k``, and ``k``. Standard errors, ``n_valid`` and the bootstrap's
        settings are attributes, and :meth:`to_frame` has the standard errors.
        """
        out: dict[str, float] = {}
        for name, m in self._metrics().items():
            out[name] = m.estimate
            out[f"{name}_ci_low"] = m.ci_low
            out[f"{name}_ci_high"] = m.ci_high
        out["k"] = self.k
        return out


#: Members handled per vectorized pass when summing a replicate's curves: temporaries stay
#: in cache, and np.dot stays single-threaded (OpenBLAS threads a dot product above 10,000
#: elements, which on a busy machine costs far more than it saves).
_CHUNK = 8192


class _Group:
    """The treated or the control customers of a ranked sample, and one replicate's counts.

    Members are kept in ranked order. For the current replicate, ``counts[i]`` is how many
    times member ``i`` was drawn; ``own[i]`` and ``own_sum[i]`` count and sum the group's
    copies ranked above member ``i`` (one entry more than there are members: ``own[i + 1]``
    includes member ``i``'s copies, the last entry is the total); ``others[i]`` and
    ``other_sum[i]`` count and sum the other group's copies above it. The arrays are
    allocated once and refilled for every replicate.
    """

    def __init__(
        self,
        member_ranked: npt.NDArray[np.bool_],
        order: npt.NDArray[np.intp],
        y: FloatArray,
        harmonic: FloatArray,
    ) -> None:
        ranks = np.flatnonzero(member_ranked)  # the members' positions in the ranking
        m = int(ranks.shape[0])
        self.size = m
        self.y = y[order[ranks]]
        self.harmonic = harmonic
        # customers of the other group ranked above each member
        self.others_before = ranks - np.arange(m)
        # draw ``j`` picks the ``j``-th member in row order; ``by_rank[i]`` is the row-order
        # index of the ``i``-th member in ranked order
        member_rows = np.zeros(order.shape[0], dtype=bool)
        member_rows[order[ranks]] = True
        self.by_rank = (np.cumsum(member_rows) - 1)[order[ranks]]
        self.counts = np.empty(m)
        self.own = np.empty(m + 1)
        self.own_sum = np.zeros(m + 1)
        self.own_harmonic = np.empty(m + 1)  # H(own)
        self.others = np.empty(m)
        self.other_sum = np.empty(m)
        self._counts = np.empty(m, dtype=np.int64)
        self._own = np.zeros(m + 1, dtype=np.int64)
        self._weighted = np.empty(m)

    def draw(self, rng: np.random.Generator) -> None:
        """Draw ``size`` members with replacement and update the prefix counts and sums."""
        picks = rng.integers(0, self.size, self.size)
        np.take(np.bincount(picks, minlength=self.size), self.by_rank, out=self._counts)
        np.cumsum(self._counts, out=self._own[1:])
        np.take(self.harmonic, self._own, out=self.own_harmonic)
        np.copyto(self.counts, self._counts)
        np.copyto(self.own, self._own)
        np.multiply(self.counts, self.y, out=self._weighted)
        np.cumsum(self._weighted, out=self.own_sum[1:])

    def look_up(self, other: _Group) -> None:
        """Fill ``others`` and ``other_sum`` from the other group's drawn replicate."""
        np.take(other.own, self.others_before, out=self.others)
        np.take(other.own_sum, self.others_before, out=self.other_sum)

    def first_copy(self) -> int:
        """The first member drawn at least once."""
        return int(np.searchsorted(self.own[1:], 1.0))

    def first_after(self, other: _Group) -> int:
        """The first member ranked below a copy of the other group."""
        return int(np.searchsorted(self.others_before, other.first_copy() + 1))

    def mean_difference_at(self, position: int) -> float | None:
        """Own minus other mean over the first ``position`` copies, if one of ours is last.

        None when the copy at ``position`` (1-based) belongs to the other group, NaN when
        the other group has no copy among the first ``position``.
        """
        others = self.others
        i = int(np.searchsorted(self.own[1:] + others, position))
        if i == self.size or self.own[i] + others[i] >= position:
            return None
        if others[i] == 0.0:
            return math.nan
        j = position - self.own[i] - others[i]
        own_mean = (self.own_sum[i] + j * self.y[i]) / (self.own[i] + j)
        return float(own_mean - self.other_sum[i] / others[i])

    def sums(self, start: int, *, qini_as_treated: bool) -> tuple[float, float]:
        """Sums of the Qini and uplift curves over the positions of this group's copies.

        For a member with ``c`` copies and outcome ``y``, ``a`` copies summing to ``A`` of
        its own group and ``o`` copies summing to ``O`` of the other group ranked above it,
        copy ``j = 1..c`` sits at position ``K0 + j``, ``K0 = a + o``; there the own group
        holds ``a + j`` copies summing to ``A + j y`` and the other stays at ``o`` and
        ``O``. With ``S = c (c + 1) / 2`` and ``dH = H(a + c) - H(a)`` (harmonic numbers):

        * own mean times position: ``sum_j (K0 + j)(A + j y) / (a + j)
          = c A + y S + o (c y + (A - a y) dH)``;
        * other mean times position: ``sum_j (K0 + j) O / o = (O / o)(c K0 + S)``;
        * Qini at a treated copy: ``sum_j (A + j y) - O (a + j) / o
          = c A - (O / o) c a + (y - O / o) S``;
        * Qini at a control copy: ``sum_j O - o (A + j y) / (a + j)
          = c (O - o y) - o (A - a y) dH``.

        Members from ``start`` on enter, those with a copy of the other group above them;
        the positions before are the curves' interpolated leading part. Returns the Qini
        sum and own minus other (the uplift curve's sum for the treated, minus it for
        control).
        """
        qini = gain = 0.0
        for lo in range(start, self.size, _CHUNK):
            hi = min(lo + _CHUNK, self.size)
            c, y = self.counts[lo:hi], self.y[lo:hi]
            a, big_a = self.own[lo:hi], self.own_sum[lo:hi]
            o, big_o = self.others[lo:hi], self.other_sum[lo:hi]
            d_h = self.own_harmonic[lo + 1 : hi + 1] - self.own_harmonic[lo:hi]
            twice_s = c * (c + 1.0)
            # o (c y + (A - a y) dH), c y from draw()
            o_own = float(np.dot(o, self._weighted[lo:hi] + (big_a - a * y) * d_h))
            ratio = big_o / o
            ca = c * a
            c_big_a = np.dot(c, big_a)
            y_s = 0.5 * np.dot(y, twice_s)
            ratio_s = 0.5 * np.dot(ratio, twice_s)
            gain += c_big_a + y_s + o_own - np.dot(ratio, ca + c * o) - ratio_s
            if qini_as_treated:
                qini += c_big_a + y_s - np.dot(ratio, ca) - ratio_s
            else:
                qini += np.dot(c, big_o) - o_own
        return float(qini), float(gain)


class _Replicates:
    """Qini, AUUC and uplift@k of bootstrap replicates drawn as per-customer counts.

    A replicate is described by how many times each customer was drawn. Its ranking is the
    sample's ranking with every customer repeated that many times, so it needs no sort:
    each metric is a sum over the ``n + 1`` positions of that ranking, and the positions a
    customer's copies fill contribute a closed-form sum (linear or harmonic in the copy
    index, see :meth:`_Group.sums`). A replicate costs a few passes over the customers.
    """

    def __init__(self, y: FloatArray, w: FloatArray, score: FloatArray) -> None:
        order = _descending_order(score)
        treated_ranked = w[order] == 1.0
        self.n = int(y.shape[0])
        # harmonic numbers H[m] = 1 + 1/2 + ... + 1/m, H[0] = 0
        harmonic = np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1.0, self.n + 1.0))))
        self.treated = _Group(treated_ranked, order, y, harmonic)
        self.control = _Group(~treated_ranked, order, y, harmonic)

    def draw(self, rng: np.random.Generator, n_top: int | None, normalize: bool) -> FloatArray:
        """Draw one replicate (the treated, then control) and return its three metrics.

        Returns the Qini score, the AUUC and the difference in means among the first
        ``n_top`` positions (NaN when ``n_top`` is None); a metric is NaN where undefined.
        """
        treated, control = self.treated, self.control
        treated.draw(rng)
        control.draw(rng)
        treated.look_up(control)
        control.look_up(treated)
        return self._metrics(n_top, normalize)

    def _metrics(self, n_top: int | None, normalize: bool) -> FloatArray:
        n, treated, control = self.n, self.treated, self.control
        q_treated, g_treated = treated.sums(treated.first_after(control), qini_as_treated=True)
        q_control, g_control = control.sums(control.first_after(treated), qini_as_treated=False)
        qini_total = q_treated + q_control
        gain_total = g_treated - g_control
        # the leading positions, before a curve is defined, interpolated linearly from 0:
        # Q(k) = Q(m) k / m up to the first control copy m ...
        first = control.first_copy()
        o, big_o = control.others[first], control.other_sum[first]
        m = o + 1.0
        qini_total += (big_o - o * control.y[first]) * (m - 1.0) / 2.0
        # ... and G(k) = lift(m) k^2 / m up to the first copy m of the later-drawn group
        if o > 0.0:
            later, sign = control, -1.0
        else:
            later, sign, first = treated, 1.0, treated.first_copy()
        o, big_o = later.others[first], later.other_sum[first]
        m = o + 1.0
        gain_total += sign * (later.y[first] - big_o / o) * (m - 1.0) * (2.0 * m - 1.0) / 6.0

        n_t, n_c = treated.size, control.size
        y_t, y_c = float(treated.own_sum[-1]), float(control.own_sum[-1])
        q_end = y_t - y_c * n_t / n_c
        g_end = (y_t / n_t - y_c / n_c) * n
        qini = qini_total / (n + 1)
        auuc = gain_total / (n + 1)
        if normalize:
            qini = qini / abs(q_end) if q_end != 0.0 else math.nan
            auuc = auuc / abs(g_end) if g_end != 0.0 else math.nan
            q_end = math.copysign(1.0, q_end)
        at_k = math.nan
        if n_top is not None:
            # the copy at position n_top is either a treated or a control one
            at_treated = treated.mean_difference_at(n_top)
            at_control = control.mean_difference_at(n_top)
            if at_treated is not None:
                at_k = at_treated
            elif at_control is not None:
                at_k = -at_control
        return np.array([qini - 0.5 * q_end, auuc, at_k])


def _interval(estimate: float, replicates: FloatArray, alpha: float) -> MetricInterval:
    defined = replicates[~np.isnan(replicates)]
    if defined.shape[0] == 0:
        low = high = math.nan
    else:
        low, high = (float(v) for v in np.quantile(defined, [alpha / 2, 1 - alpha / 2]))
    std = float(defined.std(ddof=1)) if defined.shape[0] > 1 else math.nan
    return MetricInterval(estimate, low, high, std, int(defined.shape[0]))


def _check_bootstrap(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not isinstance(alpha, numbers.Real) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")


def _bootstrap(
    y: FloatArray,
    w: FloatArray,
    score: FloatArray,
    *,
    n_boot: int,
    seed: int,
    normalize: bool,
    n_top: int | None,
) -> FloatArray:
    """Replicates of (Qini score, AUUC, uplift@k), shape ``(n_boot, 3)``; NaN if undefined."""
    sample = _Replicates(y, w, score)
    rng = np.random.default_rng(seed)
    return np.array([sample.draw(rng, n_top, normalize) for _ in range(int(n_boot))])


def metric_intervals(
    y: npt.ArrayLike,
    treatment: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    k: float = 0.3,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    normalize: bool = True,
) -> UpliftMetrics:
    """Qini score, AUUC and uplift@k with percentile bootstrap intervals from one bootstrap.

    Customers are resampled with replacement within the treated and within the control
    group, so every replicate keeps the experiment's group sizes; the scores are held fixed,
    so the intervals measure how much the evaluation sample moves the metrics of *these*
    predictions (out-of-fold ones in the pipeline), not how much refitting the model would.
    The three metrics are computed on the same replicates. See the module docstring
    ("Bootstrap") for how a replicate is ranked and computed without re-sorting.

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome, binary or continuous.
    treatment : array-like of shape (n,)
        1 for treated, 0 for control.
    score : array-like of shape (n,)
        Predicted uplift; customers are ranked from highest to lowest.
    k : float, default 0.3
        Share of customers targeted by uplift@k, as for :func:`uplift_at_k`.
    n_boot : int, default 200
        Number of bootstrap replicates.
    alpha : float, default 0.05
        One minus the intervals' level.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``. Replicate ``b`` draws
        ``rng.integers(0, n_t, n_t)`` indices into the treated customers in row order,
        then ``rng.integers(0, n_c, n_c)`` into the control customers.
    normalize : bool, default True
        As for :func:`qini_score` and :func:`auuc_score`.

    Returns
    -------
    UpliftMetrics
        Point estimates equal to :func:`qini_score`, :func:`auuc_score` and
        :func:`uplift_at_k` on the inputs; each interval from the replicates in which that
        metric is defined (a replicate's Qini or AUUC is undefined when normalized by an
        overall incremental outcome of exactly 0, its uplift@k when its top group lacks a
        treated or a control customer); ``n_valid`` says how many.

    Raises
    ------
    ValueError
        On invalid inputs, ``k``, ``n_boot`` or ``alpha``, or when a point estimate is
        undefined (see the three point functions).
    """
    _check_share(k)
    _check_bootstrap(n_boot, alpha)
    y_f, w_f, s_f = _validate(y, treatment, score)
    estimates = (
        qini_score(y_f, w_f, s_f, normalize=normalize),
        auuc_score(y_f, w_f, s_f, normalize=normalize),
        uplift_at_k(y_f, w_f, s_f, k=k),
    )
    replicates = _bootstrap(
        y_f,
        w_f,
        s_f,
        n_boot=n_boot,
        seed=seed,
        normalize=normalize,
        n_top=_top_count(k, y_f.shape[0]),
    )
    qini, auuc, lift = (_interval(e, replicates[:, i], alpha) for i, e in enumerate(estimates))
    n_treated = int(w_f.sum())
    return UpliftMetrics(
        qini=qini,
        auuc=auuc,
        uplift_at_k=lift,
        k=float(k),
        n_boot=int(n_boot),
        alpha=float(alpha),
        normalize=normalize,
        n_treated=n_treated,
        n_control=y_f.shape[0] - n_treated,
        qini_replicates=replicates[:, 0].copy(),
    )


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

    The Qini part of :func:`metric_intervals`, with the same resampling and the same
    replicates for the same seed: customers resampled within the treated and within the
    control group, scores held fixed. Replicates whose normalizer is zero are dropped.

    Parameters
    ----------
    y, treatment, score : array-like of shape (n,)
        As for :func:`qini_score`.
    n_boot : int
        Number of bootstrap replicates.
    alpha : float
        One minus the interval's level.
    seed : int
        Seed of the resampling, as for :func:`metric_intervals`.
    normalize : bool
        As for :func:`qini_score`.

    Returns
    -------
    QiniInterval
        ``score`` equal to :func:`qini_score`, the percentile interval and the standard
        deviation of the replicates.
    """
    _check_bootstrap(n_boot, alpha)
    y_f, w_f, s_f = _validate(y, treatment, score)
    estimate = qini_score(y_f, w_f, s_f, normalize=normalize)
    replicates = _bootstrap(
        y_f, w_f, s_f, n_boot=n_boot, seed=seed, normalize=normalize, n_top=None
    )
    qini = _interval(estimate, replicates[:, 0], alpha)
    return QiniInterval(qini.estimate, qini.ci_low, qini.ci_high, qini.std_error, int(n_boot))
