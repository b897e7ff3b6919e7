"""Segment migration: how customers moved between RFM levels from launch to the end of the
outcome window, per arm, and whether a campaign moved them up.

A "value-raising" campaign shows that it worked by moving customers from M(n) to M(n+1)
more often than the control did. This module measures that in three steps.

Levels
    :func:`rfm_levels` scores the launch snapshot as :func:`uplift.value.rfm.rfm_scores`
    does (ranked quantiles, or explicit cut points) and the same customers' values at the
    end of the window on the *launch's* cut points (:func:`uplift.value.rfm.rfm_bounds`),
    so that moving up means crossing a boundary fixed at launch, not being re-ranked
    among the end values (where, by construction, as many move down as up). Both are
    named with the same rules table (:func:`uplift.value.rfm.rfm_segments`).

Transitions
    :func:`transition_matrices` counts the customers of each arm by launch level (rows)
    and end level (columns), for every dimension (R, F, M and the named segment), with
    the row shares: the share of a launch level that ended in each level.

Moving up
    :func:`move_up_effects` compares, for every treatment arm against the control, the
    share of customers whose end level is above their launch level (or below it, with
    ``direction="down"``), over all customers and, with ``by_level``, per launch level.
    The difference of the two shares comes with

    - a confidence interval: Newcombe's hybrid score interval (Newcombe 1998, method
      10: Wilson score intervals of the two shares, combined), the default, or the
      Wald interval; the same numbers as
      ``statsmodels.stats.proportion.confint_proportions_2indep(count_treated,
      n_treated, count_control, n_control, method="newcomb" | "wald", compare="diff")``;
    - a two-sided p-value of the pooled two-proportion z-test (the score test of equal
      shares, the same as ``statsmodels.stats.proportion.proportions_ztest`` and as
      Pearson's chi-square without continuity correction). Near the 5% boundary it can
      disagree with whether the Newcombe interval holds zero.

    :func:`difference_in_proportions` is that computation on its own, for many pairs
    of counts at once.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from uplift.errors import DataError
from uplift.value.rfm import (
    DEFAULT_SEGMENT,
    ROLES,
    Role,
    Rule,
    rfm_bounds,
    rfm_scores,
    rfm_scores_on_bounds,
    rfm_segments,
    segment_order,
)

__all__ = [
    "ALL_LEVELS",
    "INTERVAL_METHODS",
    "MigrationLevels",
    "MoveUpEffects",
    "SegmentMigration",
    "TransitionMatrices",
    "difference_in_proportions",
    "migration",
    "move_up_effects",
    "rfm_levels",
    "transition_matrices",
]

#: The ``launch_level`` of a row of :class:`MoveUpEffects` over all launch levels.
ALL_LEVELS = "all"

#: Interval methods of :func:`difference_in_proportions`, with statsmodels' names.
INTERVAL_METHODS = {"newcombe": "newcomb", "wald": "wald"}

IntervalMethod = Literal["newcombe", "wald"]
Direction = Literal["up", "down"]


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python ones, NaN as None, infinities as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


# --- levels -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationLevels:
    """Every customer's RFM scores and named segment at launch and at the end of the window.

    The end scores are on the launch's cut points (``bounds``), so the two frames are on
    one scale and can be compared level by level.
    """

    launch: pd.DataFrame
    """Columns R, F, M (integer scores 1..bins) and ``segment``, one row per customer."""
    end: pd.DataFrame
    """The same columns at the end of the window, on the index of ``launch``."""
    bounds: Mapping[Role, tuple[float, ...]]
    """The launch's cut points of each dimension (see :func:`uplift.value.rfm.rfm_bounds`)."""
    bins: int
    segments: tuple[str, ...]
    """Segment names in report order."""

    def levels(self) -> dict[str, list[Hashable]]:
        """The levels of each dimension in order, for :func:`transition_matrices`."""
        scores: list[Hashable] = list(range(1, self.bins + 1))
        return {"R": scores, "F": list(scores), "M": list(scores), "segment": list(self.segments)}

    def to_frame(self) -> pd.DataFrame:
        """One row per customer: columns ``launch_R`` ... and ``end_R`` ... of both frames."""
        return pd.concat([self.launch.add_prefix("launch_"), self.end.add_prefix("end_")], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The scale as plain JSON-ready values: bins, cut points and segment names."""
        return {
            "bins": self.bins,
            "bounds": {role: [_plain(b) for b in cuts] for role, cuts in self.bounds.items()},
            "segments": list(self.segments),
        }


def rfm_levels(
    launch: pd.DataFrame,
    end: pd.DataFrame,
    recency: str,
    frequency: str,
    monetary: str,
    bins: int = 3,
    *,
    end_columns: Mapping[Role, str] | Mapping[str, str] | None = None,
    bounds: Mapping[Role, Sequence[float]] | Mapping[str, Sequence[float]] | None = None,
    rules: Sequence[Rule] | None = None,
    default: str = DEFAULT_SEGMENT,
) -> MigrationLevels:
    """RFM scores and segments at launch and at the end of the window, on the launch's scale.

    The launch snapshot is scored as :func:`uplift.value.rfm.rfm_scores` scores it; the
    end values are scored on the cut points that scoring implies
    (:func:`uplift.value.rfm.rfm_bounds`), and both are named by the same rules.

    Parameters
    ----------
    launch : pd.DataFrame
        The launch snapshot, one row per customer.
    end : pd.DataFrame
        The same customers' values at the end of the outcome window (rows matched by
        index label; other rows are ignored).
    recency, frequency, monetary : str
        The launch columns of days since the last purchase, number of purchases and
        money spent.
    bins : int
        Number of scores of each dimension.
    end_columns : mapping, optional
        The columns of ``end`` by dimension (``"recency"``, ``"frequency"``,
        ``"monetary"``); a dimension left out has the launch column's name.
    bounds : mapping, optional
        Explicit launch cut points by dimension, as for :func:`~uplift.value.rfm.rfm_scores`.
    rules : sequence of Rule, optional
        Rules table of the named segments (default: :func:`~uplift.value.rfm.default_rules`).
    default : str
        Name of the customers that match no rule.

    Returns
    -------
    MigrationLevels

    Raises
    ------
    DataError
        When a column is missing, not numeric or has missing values, or ``end`` lacks
        some customers of ``launch``.
    ValueError
        When ``end_columns`` names an unknown dimension, or ``bounds`` or ``rules`` are
        not valid.
    """
    names: dict[str, str] = {str(k): v for k, v in (end_columns or {}).items()}
    unknown = sorted(set(names) - set(ROLES))
    if unknown:
        raise ValueError(f"end columns are given by dimension {list(ROLES)}, found {unknown}")
    missing = launch.index.difference(end.index)
    if len(missing):
        raise DataError(
            f"The end-of-window values lack {len(missing)} of the {len(launch)} customers at "
            f"launch (for example {missing[0]!r}); migration needs both for every customer."
        )
    at_end = end if end.index.equals(launch.index) else end.loc[launch.index]
    columns = {"recency": recency, "frequency": frequency, "monetary": monetary}
    columns |= names
    start = rfm_scores(launch, recency, frequency, monetary, bins, bounds=bounds)
    cuts = rfm_bounds(launch, recency, frequency, monetary, bins, bounds=bounds)
    finish = rfm_scores_on_bounds(
        at_end,
        columns["recency"],
        columns["frequency"],
        columns["monetary"],
        cuts,
        key="value.migration",
        where="end-of-window data",
    )
    start["segment"] = rfm_segments(start, bins, rules=rules, default=default)
    finish["segment"] = rfm_segments(finish, bins, rules=rules, default=default)
    order = tuple(segment_order(bins, rules, default))
    return MigrationLevels(start, finish, cuts, bins, order)


# --- transition matrices ------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionMatrices:
    """Customers by launch level and end level, per dimension and arm.

    ``to_frame()`` has one row per dimension, arm, launch level and end level, with the
    ``count`` of customers and their ``share`` of the launch level's customers in that
    arm (NaN where the launch level has none). :meth:`matrix` gives one square table.
    """

    table: pd.DataFrame
    arms: tuple[str, ...]
    levels: Mapping[str, tuple[Hashable, ...]]
    """Each dimension's levels, in order."""

    def to_frame(self) -> pd.DataFrame:
        """The long table (a copy): dimension, arm, launch, end, count, share."""
        return self.table.copy()

    def matrix(self, dimension: str, arm: str, *, share: bool = False) -> pd.DataFrame:
        """Launch levels (rows, ``launch``) by end levels (columns, ``end``) of one arm.

        Counts of customers, or with ``share`` the row shares (each row sums to 1 where
        the launch level has customers).
        """
        if dimension not in self.levels:
            raise KeyError(f"no dimension {dimension!r}; there are {list(self.levels)}")
        if arm not in self.arms:
            raise KeyError(f"no arm {arm!r}; there are {list(self.arms)}")
        rows = self.table[(self.table["dimension"] == dimension) & (self.table["arm"] == arm)]
        levels = list(self.levels[dimension])
        values = rows["share" if share else "count"].to_numpy().reshape(len(levels), len(levels))
        return pd.DataFrame(
            values,
            index=pd.Index(levels, name="launch"),
            columns=pd.Index(levels, name="end"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The matrices as plain JSON-ready values.

        ``{"arms": [...], "dimensions": {dimension: {"levels": [...], "counts": {arm:
        rows}, "shares": {arm: rows}}}}``, each matrix a list of rows (launch levels) of
        values by end level; an undefined share is None.
        """
        dimensions = {}
        for dimension, levels in self.levels.items():
            dimensions[dimension] = {
                "levels": [_plain(level) for level in levels],
                "counts": {
                    arm: [[int(v) for v in row] for row in self.matrix(dimension, arm).to_numpy()]
                    for arm in self.arms
                },
                "shares": {
                    arm: [
                        [_plain(float(v)) for v in row]
                        for row in self.matrix(dimension, arm, share=True).to_numpy()
                    ]
                    for arm in self.arms
                },
            }
        return {"arms": list(self.arms), "dimensions": dimensions}

    def summary(self) -> str:
        """The matrices as plain text, counts with row shares in percent."""
        blocks = []
        for dimension in self.levels:
            for arm in self.arms:
                counts = self.matrix(dimension, arm)
                shares = self.matrix(dimension, arm, share=True)
                text = counts.astype(str) + shares.map(
                    lambda v: "" if np.isnan(v) else f" ({v:.0%})"
                )
                blocks.append(f"{dimension}, arm {arm!r} (launch x end):\n{text.to_string()}")
        return "\n\n".join(blocks)


def transition_matrices(
    launch: pd.DataFrame | pd.Series,
    end: pd.DataFrame | pd.Series,
    arms: pd.Series,
    *,
    levels: Mapping[str, Sequence[Hashable]] | None = None,
    arm_order: Sequence[str] | None = None,
) -> TransitionMatrices:
    """Transition matrices of levels from launch to the end of the window, per arm.

    Parameters
    ----------
    launch : pd.DataFrame or pd.Series
        Each customer's level at launch, one column per dimension (e.g. R, F, M and
        ``segment`` of :class:`MigrationLevels`); a Series is one dimension, named by
        the Series (``level`` without a name).
    end : pd.DataFrame or pd.Series
        The levels at the end of the window, with the same columns; rows are matched to
        ``arms`` by index label.
    arms : pd.Series
        Each customer's arm; customers without one, or of arms not in ``arm_order``,
        are left out.
    levels : mapping, optional
        Each dimension's levels in order; a dimension left out has the sorted levels
        found at launch or at the end.
    arm_order : sequence of str, optional
        Arms to tabulate, in report order; by default every arm found, sorted.

    Returns
    -------
    TransitionMatrices

    Raises
    ------
    DataError
        When ``launch`` or ``end`` lacks customers of ``arms``, has missing levels, or
        has a level that ``levels`` does not list.
    ValueError
        When ``launch`` and ``end`` have different columns.
    """
    start, finish = _frame(launch), _frame(end)
    if list(start.columns) != list(finish.columns):
        raise ValueError(
            f"launch and end levels must have the same columns, found {list(start.columns)} "
            f"and {list(finish.columns)}"
        )
    if arm_order is None:
        order = sorted(map(str, pd.unique(arms.dropna())))
    else:
        order = list(map(str, arm_order))
    arm_code = _arm_codes(arms, order)
    keep = arm_code >= 0
    index = arms.index[keep]
    arm_code = arm_code[keep]
    start, finish = _aligned(start, index, "launch"), _aligned(finish, index, "end")
    n_arms = len(order)
    frames = []
    dimension_levels: dict[str, tuple[Hashable, ...]] = {}
    for dimension in start.columns:
        given = (levels or {}).get(str(dimension))
        found = pd.unique(pd.concat([start[dimension], finish[dimension]], ignore_index=True))
        ordered = list(given) if given is not None else sorted(found.tolist())
        dimension_levels[str(dimension)] = tuple(ordered)
        size = len(ordered)
        a = _codes(start[dimension], ordered, f"launch level of {dimension!r}")
        b = _codes(finish[dimension], ordered, f"end level of {dimension!r}")
        counts = np.bincount(
            (arm_code * size + a) * size + b, minlength=n_arms * size * size
        ).reshape(n_arms, size, size)
        totals = counts.sum(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = np.where(totals > 0, counts / totals, np.nan)
        grid = np.indices((n_arms, size, size)).reshape(3, -1)
        frames.append(
            pd.DataFrame(
                {
                    "dimension": str(dimension),
                    "arm": np.asarray(order, dtype=object)[grid[0]],
                    "launch": np.asarray(ordered, dtype=object)[grid[1]],
                    "end": np.asarray(ordered, dtype=object)[grid[2]],
                    "count": counts.reshape(-1),
                    "share": shares.reshape(-1),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return TransitionMatrices(table, tuple(order), dimension_levels)


def _arm_codes(arms: pd.Series, names: Sequence[str]) -> np.ndarray:
    """Position of each customer's arm (as text) in ``names``; -1 for others and missing."""
    codes, uniques = pd.factorize(arms)
    lookup = np.append(pd.Index(list(names)).get_indexer(pd.Index(uniques).astype(str)), -1)
    return np.asarray(lookup[codes], dtype=np.intp)  # code -1 (missing) picks the -1


def _frame(levels: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(levels, pd.Series):
        return levels.to_frame("level" if levels.name is None else str(levels.name))
    return levels


def _aligned(frame: pd.DataFrame, index: pd.Index, what: str) -> pd.DataFrame:
    if frame.index.equals(index):
        return frame
    missing = index.difference(frame.index)
    if len(missing):
        raise DataError(
            f"The {what} levels lack {len(missing)} customers that have an arm (for example "
            f"{missing[0]!r}); migration needs a launch and an end level for every customer."
        )
    return frame.loc[index]


def _codes(values: pd.Series, levels: Sequence[Hashable], what: str) -> np.ndarray:
    if values.isna().any():
        raise DataError(f"The {what} is missing for {int(values.isna().sum())} customers.")
    codes = pd.Index(levels).get_indexer(values)
    if (codes < 0).any():
        unlisted = sorted(map(str, pd.unique(values[codes < 0])))[:5]
        raise DataError(f"The {what} takes values {unlisted} that are not among {list(levels)}.")
    return np.asarray(codes, dtype=np.intp)


# --- moving up ----------------------------------------------------------------------------


def difference_in_proportions(
    count_treated: np.ndarray | Sequence[int] | int,
    n_treated: np.ndarray | Sequence[int] | int,
    count_control: np.ndarray | Sequence[int] | int,
    n_control: np.ndarray | Sequence[int] | int,
    *,
    alpha: float = 0.05,
    method: IntervalMethod = "newcombe",
) -> pd.DataFrame:
    """Difference of two independent proportions, with its interval and p-value.

    ``estimate = count_treated / n_treated - count_control / n_control``.

    Parameters
    ----------
    count_treated, n_treated, count_control, n_control : int or array-like of int
        Successes and trials of each group; arrays are compared element by element.
    alpha : float
        One minus the confidence level.
    method : {"newcombe", "wald"}
        The interval: Newcombe's hybrid score interval (``ci_low = d - sqrt((p1 - l1)**2
        + (u2 - p2)**2)``, ``ci_high = d + sqrt((u1 - p1)**2 + (p2 - l2)**2)`` with the
        Wilson limits ``l, u`` of each share), or the Wald interval ``d -/+ z * se``.
        Either equals ``statsmodels.stats.proportion.confint_proportions_2indep`` with
        ``method="newcomb"`` or ``"wald"`` and ``compare="diff"``.

    Returns
    -------
    pd.DataFrame
        One row per pair: ``estimate``, ``ci_low``, ``ci_high``, ``std_error`` (the
        unpooled Wald standard error), ``p_value`` (two-sided, pooled two-proportion z
        test, as ``statsmodels.stats.proportion.proportions_ztest``). A group without
        trials gives NaN; so does the p-value when every trial or none succeeded.
    """
    return pd.DataFrame(
        _difference(count_treated, n_treated, count_control, n_control, alpha, method)
    )


def _difference(
    count_treated: np.ndarray | Sequence[int] | int,
    n_treated: np.ndarray | Sequence[int] | int,
    count_control: np.ndarray | Sequence[int] | int,
    n_control: np.ndarray | Sequence[int] | int,
    alpha: float,
    method: str,
) -> dict[str, np.ndarray]:
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {list(INTERVAL_METHODS)}, found {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), found {alpha}")
    x1, n1, x2, n2 = np.broadcast_arrays(
        *(
            np.atleast_1d(np.asarray(v, dtype=float))
            for v in (count_treated, n_treated, count_control, n_control)
        )
    )
    if ((x1 < 0) | (x2 < 0) | (x1 > n1) | (x2 > n2)).any():
        raise ValueError("counts must lie between 0 and their number of trials")
    z = float(special.ndtri(1 - alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        estimate = p1 - p2
        se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        if method == "wald":
            low, high = estimate - z * se, estimate + z * se
        else:
            l1, u1 = _wilson(p1, n1, z)
            l2, u2 = _wilson(p2, n2, z)
            low = estimate - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
            high = estimate + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
        pooled = (x1 + x2) / (n1 + n2)
        pooled_se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        p_value = np.where(pooled_se > 0, 2 * special.ndtr(-np.abs(estimate / pooled_se)), np.nan)
    return {
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "std_error": se,
        "p_value": p_value,
    }


def _wilson(p: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a share, clipped to [0, 1] as statsmodels clips it."""
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)


@dataclass(frozen=True)
class MoveUpEffects:
    """Effect of every treatment arm on the share of customers who moved up a level.

    ``to_frame()`` has one row per dimension, launch level (:data:`ALL_LEVELS` for all
    customers, then each launch level with ``by_level``) and arm: the customers
    (``n_treated``, ``n_control``), how many moved (``moved_treated``,
    ``moved_control``) and their shares, and the difference of the shares
    (``estimate``) with its interval, standard error and p-value (see
    :func:`difference_in_proportions`).
    """

    table: pd.DataFrame
    control: str
    alpha: float
    method: str
    direction: str

    def to_frame(self) -> pd.DataFrame:
        """The results table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """The results as plain JSON-ready values, the table as a list of rows."""
        return {
            "control": self.control,
            "alpha": self.alpha,
            "method": self.method,
            "direction": self.direction,
            "rows": [
                {k: _plain(v) for k, v in row.items()}
                for row in self.table.to_dict(orient="records")
            ],
        }

    def get(self, arm: str, dimension: str, launch_level: Hashable = ALL_LEVELS) -> dict[str, Any]:
        """The row of one arm, dimension and launch level (all customers by default)."""
        table = self.table
        match = (
            (table["arm"] == arm)
            & (table["dimension"] == dimension)
            & (table["launch_level"].astype(object) == launch_level)
        )
        if not match.any():
            raise KeyError(
                f"no row for arm {arm!r}, dimension {dimension!r}, level {launch_level!r}"
            )
        return {k: _plain(v) for k, v in table[match].iloc[0].to_dict().items()}

    def summary(self) -> str:
        """A plain-text table of the shares that moved and the effects."""
        cols = [
            "dimension",
            "launch_level",
            "arm",
            "n_treated",
            "n_control",
            "share_treated",
            "share_control",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
        ]
        interval = "Newcombe hybrid score" if self.method == "newcombe" else "Wald"
        return (
            f"Share of customers who moved {self.direction} from their launch level, against "
            f"{self.control!r} ({interval} {1 - self.alpha:.0%} CI; pooled z-test p-value)\n"
            + self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")
        )


def move_up_effects(
    launch: pd.DataFrame,
    end: pd.DataFrame,
    arms: pd.Series,
    control: str,
    treatments: Sequence[str],
    *,
    dimensions: Sequence[str] = ("M", "F"),
    alpha: float = 0.05,
    method: IntervalMethod = "newcombe",
    by_level: bool = False,
    direction: Direction = "up",
) -> MoveUpEffects:
    """Effect of every treatment arm on the probability of moving up a level.

    A customer moved up when their end level is above their launch level (both on the
    launch's scale, see :func:`rfm_levels`); with ``direction="down"``, below it. For
    each dimension and treatment arm, the share of the arm's customers who moved is
    compared with the control's by :func:`difference_in_proportions`.

    Parameters
    ----------
    launch, end : pd.DataFrame
        Ordered numeric levels (e.g. the scores of :class:`MigrationLevels`), one column
        per dimension; rows are matched to ``arms`` by index label.
    arms : pd.Series
        Each customer's arm; customers of other arms are ignored.
    control : str
        The control arm.
    treatments : sequence of str
        Treatment arms, in report order.
    dimensions : sequence of str
        The columns compared, in report order.
    alpha : float
        One minus the confidence level.
    method : {"newcombe", "wald"}
        The interval of the difference (see :func:`difference_in_proportions`).
    by_level : bool
        Also compare the arms within each launch level, the step M(n) -> M(n+1): a row
        per launch level found in the compared arms, except levels from which nobody
        could move (none above it, or below it with ``direction="down"``, at launch or
        at the end).
    direction : {"up", "down"}
        Count moves up or moves down.

    Returns
    -------
    MoveUpEffects
        Rows by dimension, then launch level (all customers first), then arm.

    Raises
    ------
    DataError
        When a dimension is missing, not numeric, or has missing values, or ``launch``
        or ``end`` lacks compared customers.
    ValueError
        When an arm has no customers, or ``method`` or ``direction`` is unknown.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', found {direction!r}")
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {list(INTERVAL_METHODS)}, found {method!r}")
    compared = [control, *treatments]
    arm_code = _arm_codes(arms, compared)
    keep = arm_code >= 0
    index = arms.index[keep]
    arm_code = arm_code[keep]
    counts = np.bincount(arm_code, minlength=len(compared))
    if counts.min() < 1:
        found = ", ".join(f"{a} {c}" for a, c in zip(compared, counts, strict=True))
        raise ValueError(f"every compared arm needs customers, found {found}")
    start, finish = _aligned(launch, index, "launch"), _aligned(end, index, "end")
    keys: list[tuple[str, Hashable]] = []
    n_rows, x_rows = [], []
    for dimension in dimensions:
        a = _ordinal(start, dimension, "launch")
        b = _ordinal(finish, dimension, "end")
        moved = b > a if direction == "up" else b < a
        groups: list[tuple[Hashable, np.ndarray | None]] = [(ALL_LEVELS, None)]
        if by_level:
            every = np.union1d(a, b)
            for level in np.unique(a):
                can_move = (every > level).any() if direction == "up" else (every < level).any()
                if can_move:
                    groups.append((_plain(level), a == level))
        for level, members in groups:
            codes = arm_code if members is None else arm_code[members]
            went = moved if members is None else moved[members]
            keys.append((dimension, level))
            n_rows.append(np.bincount(codes, minlength=len(compared)))
            x_rows.append(np.bincount(codes[went], minlength=len(compared)))
    # one row per (dimension, level) and treatment arm, arms innermost
    n, x = np.array(n_rows).reshape(-1, len(compared)), np.array(x_rows).reshape(-1, len(compared))
    k = len(treatments)
    n_t, x_t = n[:, 1:].reshape(-1), x[:, 1:].reshape(-1)
    n_c, x_c = np.repeat(n[:, 0], k), np.repeat(x[:, 0], k)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_t, share_c = x_t / n_t, x_c / n_c
    columns: dict[str, Any] = {
        "dimension": np.repeat(np.array([d for d, _ in keys], dtype=object), k),
        "launch_level": np.repeat(_objects([level for _, level in keys]), k),
        "arm": np.tile(np.array(list(treatments), dtype=object), len(keys)),
        "n_treated": n_t,
        "n_control": n_c,
        "moved_treated": x_t,
        "moved_control": x_c,
        "share_treated": share_t,
        "share_control": share_c,
    }
    columns |= _difference(x_t, n_t, x_c, n_c, alpha, method)
    columns["method"] = method
    table = pd.DataFrame(columns)
    return MoveUpEffects(table, control, alpha, method, direction)


def _objects(values: Sequence[Hashable]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _ordinal(frame: pd.DataFrame, dimension: str, what: str) -> np.ndarray:
    if dimension not in frame.columns:
        raise DataError(
            f"The {what} levels have no dimension {dimension!r}; they have "
            f"{list(map(str, frame.columns))}."
        )
    values = frame[dimension]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"Moving up needs ordered numeric levels, but the {what} levels of {dimension!r} "
            f"have dtype {values.dtype} (named segments have no order; compare their "
            f"transition matrices instead)."
        )
    if values.isna().any():
        raise DataError(
            f"The {what} level of {dimension!r} is missing for {int(values.isna().sum())} "
            f"customers."
        )
    return values.to_numpy()


# --- all three together -------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentMigration:
    """Levels, transition matrices and move-up effects of one experiment."""

    levels: MigrationLevels
    transitions: TransitionMatrices
    moves: MoveUpEffects

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: the scale, the matrices and the effects."""
        return {
            "scale": self.levels.to_dict(),
            "transitions": self.transitions.to_dict(),
            "moves": self.moves.to_dict(),
        }


def migration(
    launch: pd.DataFrame,
    end: pd.DataFrame,
    arms: pd.Series,
    control: str,
    treatments: Sequence[str],
    *,
    recency: str,
    frequency: str,
    monetary: str,
    bins: int = 3,
    bounds: Mapping[Role, Sequence[float]] | Mapping[str, Sequence[float]] | None = None,
    rules: Sequence[Rule] | None = None,
    default: str = DEFAULT_SEGMENT,
    dimensions: Sequence[str] = ("M", "F"),
    alpha: float = 0.05,
    method: IntervalMethod = "newcombe",
    by_level: bool = True,
) -> SegmentMigration:
    """Score launch and end on the launch's scale, count transitions and test moving up.

    ``launch`` holds the launch columns ``recency``, ``frequency`` and ``monetary``;
    ``end`` holds the end-of-window values under the same role names (``recency``,
    ``frequency``, ``monetary``). See :func:`rfm_levels`, :func:`transition_matrices`
    and :func:`move_up_effects` for the parameters.
    """
    levels = rfm_levels(
        launch,
        end,
        recency,
        frequency,
        monetary,
        bins,
        end_columns={"recency": "recency", "frequency": "frequency", "monetary": "monetary"},
        bounds=bounds,
        rules=rules,
        default=default,
    )
    transitions = transition_matrices(
        levels.launch, levels.end, arms, levels=levels.levels(), arm_order=[control, *treatments]
    )
    moves = move_up_effects(
        levels.launch,
        levels.end,
        arms,
        control,
        treatments,
        dimensions=dimensions,
        alpha=alpha,
        method=method,
        by_level=by_level,
    )
    return SegmentMigration(levels, transitions, moves)
