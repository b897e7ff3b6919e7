"""RFM scores and named segments, from pre-period features or from transactions.

Scores
    Each of recency (R), frequency (F) and monetary value (M) gets a score 1..bins, where
    ``bins`` is the best: for F and M the largest values, for R the *smallest* recency (the
    most recent buyers). A dimension is scored either by ranked quantile
    (:func:`ranked_score`, the default) or by explicit cut points (:func:`bounded_score`).

Launch levels
    A campaign's segment migration scores the customers' values at the end of the
    outcome window on the cut points of the launch (:func:`ranked_bounds`,
    :func:`rfm_bounds`, then :func:`rfm_scores_on_bounds`), so that moving up means
    crossing a boundary fixed at launch, not being re-ranked among the end values.

Segments
    :func:`rfm_segments` names each customer by the first rule of an ordered rules table
    whose inclusive score ranges hold the customer's scores; a customer no rule holds gets
    the default name. :func:`default_rules` is the built-in table of five segments
    (:data:`SEGMENT_ORDER`), from the R and F scores only.

Transactions
    :func:`rfm_from_transactions` turns a transactions frame (id, date, amount) into the
    recency, frequency and monetary columns that :func:`rfm_scores` scores, for data that
    has no pre-computed RFM features.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, cast

import numpy as np
import pandas as pd

from uplift.errors import DataError

__all__ = [
    "DEFAULT_SEGMENT",
    "ROLES",
    "SEGMENT_ORDER",
    "Role",
    "Rule",
    "SegmentRule",
    "bounded_score",
    "check_bounds",
    "check_rules",
    "default_rules",
    "ranked_bounds",
    "ranked_score",
    "rfm_bounds",
    "rfm_from_transactions",
    "rfm_scores",
    "rfm_scores_on_bounds",
    "rfm_segments",
    "segment_order",
]

#: Named segments of :func:`default_rules`, in the order reports list them.
SEGMENT_ORDER = ["Champions", "Loyal", "Promising", "At Risk", "Hibernating"]

#: Name of the customers that match no rule.
DEFAULT_SEGMENT = "Other"

#: The three dimensions, in the order of the score columns R, F and M.
ROLES = ("recency", "frequency", "monetary")
Role = Literal["recency", "frequency", "monetary"]

_SCORE_COLUMN = {"r": "R", "f": "F", "m": "M"}


# --- scores -------------------------------------------------------------------------------


def ranked_score(values: pd.Series, bins: int, *, ascending: bool = True) -> pd.Series:
    """Score values 1..bins by ranked quantile; ties share a score.

    Each value's average rank (tied values share the mean of the ranks they span) is
    divided by the number of values, giving a share ``p`` in ``(0, 1]``, and the score is
    ``ceil(p * bins)``. Bins are the equal ranges ``((k - 1) / bins, k / bins]`` of the
    share, closed on the right: a share exactly on an edge ``k / bins`` scores ``k``, the
    lower of the two (for ``bins`` up to 10 the float product lands exactly on ``k``).

    Ties never break a bin: the score is a function of the average rank alone, and every
    member of a tie group has the same average rank, so a tie group is never split across
    two scores, however many values it holds and wherever the bin edges fall. The group
    goes whole into the bin of its average rank (its middle), so bins can differ in size
    and a score can be empty, but no edge is ever duplicated (unlike ``pandas.qcut``,
    which fails or splits on repeated quantiles). Larger values never score lower.

    Parameters
    ----------
    values : pd.Series
        Numeric values; missing values are not allowed.
    bins : int
        Number of scores.
    ascending : bool
        When False, the smallest values get the highest score (recency).

    Returns
    -------
    pd.Series
        Integer scores, on the index and with the name of ``values``.
    """
    pct = values.rank(method="average", pct=True, ascending=ascending)
    score = np.clip(np.ceil(pct.to_numpy() * bins), 1, bins).astype(int)
    return pd.Series(score, index=values.index, name=values.name)


def bounded_score(
    values: pd.Series, bounds: Sequence[float], *, ascending: bool = True, strict: bool = True
) -> pd.Series:
    """Score values 1..len(bounds) + 1 by explicit cut points.

    The cut points split the line into ``len(bounds) + 1`` intervals closed on the right,
    as ``pandas.cut`` does: ``(-inf, b1]``, ``(b1, b2]``, ..., ``(bn, inf)``. A value equal
    to a bound belongs to the interval *below* the bound. With ``ascending`` (frequency,
    monetary) the intervals score 1, 2, ... from the left, so a value equal to a bound gets
    the lower score: bounds ``[2, 5]`` score 0-2 purchases 1, 3-5 purchases 2, 6 or more 3.
    With ``ascending=False`` (recency, where small is best) they score from the right, so a
    value equal to a bound gets the higher score: bounds ``[30, 90]`` score a recency of
    at most 30 days 3, 31-90 days 2, more than 90 days 1.

    Parameters
    ----------
    values : pd.Series
        Numeric values; missing values are not allowed.
    bounds : sequence of float
        Finite, strictly increasing cut points (see :func:`check_bounds`).
    ascending : bool
        When False, the smallest values get the highest score (recency).
    strict : bool
        When False, the cut points need only be non-decreasing and not NaN, as
        :func:`ranked_bounds` gives them: a repeated cut point leaves the score between
        its copies empty, and an infinite one the scores beyond it.

    Returns
    -------
    pd.Series
        Integer scores, on the index and with the name of ``values``.
    """
    check_bounds(bounds, strict=strict)
    # number of bounds strictly below each value: 0 for a value <= b1
    above = np.searchsorted(np.asarray(bounds, dtype=float), values.to_numpy(), side="left")
    score = above + 1 if ascending else len(bounds) + 1 - above
    return pd.Series(score.astype(int), index=values.index, name=values.name)


def check_bounds(bounds: Sequence[float], bins: int | None = None, *, strict: bool = True) -> None:
    """Raise ``ValueError`` unless the cut points are finite and strictly increasing.

    With ``bins``, there must also be exactly ``bins - 1`` of them. With ``strict=False``
    they need only be non-decreasing numbers, infinite ones included, none NaN.
    """
    if bins is not None and len(bounds) != bins - 1:
        raise ValueError(
            f"{bins} scores need {bins - 1} cut points, found {len(bounds)}: {list(bounds)}"
        )
    if not strict:
        for i, bound in enumerate(bounds):
            if math.isnan(bound):
                raise ValueError(f"cut point {i} must be a number, found {bound}")
            if i and bound < bounds[i - 1]:
                raise ValueError(
                    f"cut points must not decrease, found {bounds[i - 1]} then {bound} "
                    f"(positions {i - 1} and {i})"
                )
        return
    for i, bound in enumerate(bounds):
        if not math.isfinite(bound):
            raise ValueError(f"cut point {i} must be a finite number, found {bound}")
        if i and not bound > bounds[i - 1]:
            raise ValueError(
                f"cut points must be strictly increasing, found {bounds[i - 1]} then {bound} "
                f"(positions {i - 1} and {i})"
            )


def rfm_scores(
    frame: pd.DataFrame,
    recency: str,
    frequency: str,
    monetary: str,
    bins: int = 3,
    *,
    bounds: Mapping[Role, Sequence[float]] | Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """R, F and M scores (1..bins) of every customer.

    Parameters
    ----------
    frame : pd.DataFrame
        One row per customer.
    recency, frequency, monetary : str
        The columns of days since the last purchase, number of purchases and money spent.
    bins : int
        Number of scores of each dimension.
    bounds : mapping of str to sequence of float, optional
        Explicit cut points by dimension (keys among ``"recency"``, ``"frequency"`` and
        ``"monetary"``), each ``bins - 1`` finite strictly increasing values scored by
        :func:`bounded_score`. A dimension left out is scored by ranked quantile
        (:func:`ranked_score`); by default all three are.

    Returns
    -------
    pd.DataFrame
        Integer columns R, F and M on the index of ``frame``.

    Raises
    ------
    DataError
        When a column is missing, not numeric or has missing values.
    ValueError
        When ``bounds`` names an unknown dimension or has bad cut points.
    """
    cuts_of: dict[str, Sequence[float]] = {str(k): v for k, v in (bounds or {}).items()}
    unknown = sorted(set(cuts_of) - set(ROLES))
    if unknown:
        raise ValueError(f"RFM bounds are given by dimension {list(ROLES)}, found {unknown}")
    for role, cuts in cuts_of.items():
        try:
            check_bounds(cuts, bins)
        except ValueError as exc:
            raise ValueError(f"RFM {role} bounds: {exc}") from None
    columns = {"recency": recency, "frequency": frequency, "monetary": monetary}
    _check_columns(frame, columns)
    scores = {}
    for role, letter in zip(ROLES, "RFM", strict=True):
        values = frame[columns[role]]
        ascending = role != "recency"
        if role in cuts_of:
            scores[letter] = bounded_score(values, cuts_of[role], ascending=ascending)
        else:
            scores[letter] = ranked_score(values, bins, ascending=ascending)
    return pd.DataFrame(scores)


def _check_columns(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    key: str = "value.rfm",
    where: str = "population",
) -> None:
    for role, column in columns.items():
        if column not in frame.columns:
            raise DataError(
                f"RFM segments need a {role} column {column!r} ({key}.{role}), "
                f"but the {where} has no such column."
            )
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().any():
            raise DataError(
                f"RFM {role} column {column!r} must be numeric without missing values, "
                f"found dtype {frame[column].dtype} with {int(frame[column].isna().sum())} missing."
            )


# --- launch levels ------------------------------------------------------------------------


def ranked_bounds(values: pd.Series, bins: int, *, ascending: bool = True) -> tuple[float, ...]:
    """The cut points that score ``values`` as :func:`ranked_score` does.

    Scoring other values (the same customers' values at the end of a campaign) on these
    cut points with ``bounded_score(..., strict=False)`` places them on the launch's
    levels: a value scores what a launch value equal to it scored, and a value between
    launch values takes the score of the launch values just above it (the intervals are
    closed on the right, as in :func:`bounded_score`).

    Cut point ``j`` (of ``bins - 1``) is the largest value on the low side of it: with
    ``ascending``, the largest value that scored at most ``j``; otherwise (recency) the
    largest value that scored more than ``bins - j``. Ties need no rule of their own:
    :func:`ranked_score` never splits a tie group, so every cut point lies between two
    distinct values. Where a score is empty at launch (ties can leave one empty) its cut
    point repeats the one before, and the score stays empty; a cut point with no value
    on its low side is ``-inf``, one with every value on its low side ``+inf``, so that
    values beyond the launch's range take the launch's lowest or highest score that
    occurred, never an empty one.

    Parameters
    ----------
    values : pd.Series
        The launch values, numeric, at least one, none missing.
    bins : int
        Number of scores.
    ascending : bool
        When False, the smallest values get the highest score (recency).

    Returns
    -------
    tuple of float
        ``bins - 1`` non-decreasing cut points, possibly repeated or infinite.

    Raises
    ------
    ValueError
        When ``values`` is empty or has missing values.
    """
    if len(values) == 0 or values.isna().any():
        raise ValueError(
            f"launch cut points need at least one value and no missing ones, found "
            f"{len(values)} values with {int(values.isna().sum())} missing"
        )
    return _bounds_of(values, ranked_score(values, bins, ascending=ascending), bins, ascending)


def _bounds_of(
    values: pd.Series, score: pd.Series, bins: int, ascending: bool
) -> tuple[float, ...]:
    """Cut points reproducing ``score`` (monotone in ``values``) with :func:`bounded_score`."""
    v = values.to_numpy(dtype=float)
    s = score.to_numpy()
    bounds = []
    for j in range(1, bins):
        low = s <= j if ascending else s > bins - j
        if not low.any():
            bounds.append(-math.inf)
        elif low.all():
            bounds.append(math.inf)
        else:
            bounds.append(float(v[low].max()))
    return tuple(bounds)


def rfm_bounds(
    frame: pd.DataFrame,
    recency: str,
    frequency: str,
    monetary: str,
    bins: int = 3,
    *,
    bounds: Mapping[Role, Sequence[float]] | Mapping[str, Sequence[float]] | None = None,
) -> dict[Role, tuple[float, ...]]:
    """The cut points of the R, F and M scores that :func:`rfm_scores` gives ``frame``.

    A dimension with explicit ``bounds`` keeps them; the others get the
    :func:`ranked_bounds` of their values in ``frame``. Scored on these cut points with
    :func:`rfm_scores_on_bounds`, ``frame`` gets exactly its :func:`rfm_scores`.

    Parameters
    ----------
    frame, recency, frequency, monetary, bins, bounds
        As for :func:`rfm_scores`: the launch snapshot and its columns.

    Returns
    -------
    dict
        ``"recency"``, ``"frequency"`` and ``"monetary"`` -> ``bins - 1`` cut points.

    Raises
    ------
    DataError, ValueError
        As :func:`rfm_scores` raises them.
    """
    scores = rfm_scores(frame, recency, frequency, monetary, bins, bounds=bounds)
    given: dict[str, Sequence[float]] = {str(k): v for k, v in (bounds or {}).items()}
    columns = {"recency": recency, "frequency": frequency, "monetary": monetary}
    out: dict[Role, tuple[float, ...]] = {}
    for name, letter in zip(ROLES, "RFM", strict=True):
        role = cast(Role, name)
        if role in given:
            out[role] = tuple(float(b) for b in given[role])
        else:
            out[role] = _bounds_of(
                frame[columns[role]], scores[letter], bins, ascending=role != "recency"
            )
    return out


def rfm_scores_on_bounds(
    frame: pd.DataFrame,
    recency: str,
    frequency: str,
    monetary: str,
    bounds: Mapping[Role, Sequence[float]] | Mapping[str, Sequence[float]],
    *,
    key: str = "value.rfm",
    where: str = "population",
) -> pd.DataFrame:
    """R, F and M scores of every customer on fixed cut points, such as the launch's.

    Each dimension is scored by ``bounded_score(..., strict=False)`` on its cut points
    (recency descending), so the cut points of :func:`rfm_bounds` are accepted as they
    come, repeated or infinite.

    Parameters
    ----------
    frame : pd.DataFrame
        One row per customer, e.g. the values at the end of the outcome window.
    recency, frequency, monetary : str
        The columns of days since the last purchase, number of purchases and money spent.
    bounds : mapping of str to sequence of float
        Cut points of each of ``"recency"``, ``"frequency"`` and ``"monetary"``.
    key, where : str
        The spec key of the columns and the name of ``frame``, for error messages.

    Returns
    -------
    pd.DataFrame
        Integer columns R, F and M on the index of ``frame``.

    Raises
    ------
    DataError
        When a column is missing, not numeric or has missing values.
    ValueError
        When ``bounds`` misses or adds a dimension, or has decreasing or NaN cut points.
    """
    cuts_of: dict[str, Sequence[float]] = {str(k): v for k, v in bounds.items()}
    if set(cuts_of) != set(ROLES):
        raise ValueError(
            f"RFM bounds must be given for exactly the dimensions {list(ROLES)}, "
            f"found {sorted(cuts_of)}"
        )
    columns = {"recency": recency, "frequency": frequency, "monetary": monetary}
    _check_columns(frame, columns, key, where)
    scores = {}
    for role, letter in zip(ROLES, "RFM", strict=True):
        try:
            scores[letter] = bounded_score(
                frame[columns[role]], cuts_of[role], ascending=role != "recency", strict=False
            )
        except ValueError as exc:
            raise ValueError(f"RFM {role} bounds: {exc}") from None
    return pd.DataFrame(scores)


# --- segments -----------------------------------------------------------------------------


class Rule(Protocol):
    """A named segment: inclusive score ranges ``(lo, hi)``; ``None`` means any score.

    :class:`SegmentRule` is one; so is a rule of the spec (``value.rfm.rules``).
    """

    @property
    def name(self) -> str: ...
    @property
    def r(self) -> tuple[int, int] | None: ...
    @property
    def f(self) -> tuple[int, int] | None: ...
    @property
    def m(self) -> tuple[int, int] | None: ...


@dataclass(frozen=True)
class SegmentRule:
    """A named segment of the customers whose scores lie in inclusive ranges.

    Parameters
    ----------
    name : str
        The segment's name.
    r, f, m : tuple of (int, int), optional
        Lowest and highest R, F and M score of the segment, both included; ``None`` (the
        default) means any score.
    """

    name: str
    r: tuple[int, int] | None = None
    f: tuple[int, int] | None = None
    m: tuple[int, int] | None = None


def default_rules(bins: int = 3) -> list[SegmentRule]:
    """The built-in rules table of five segments, for any number of scores.

    In order, first match wins: Champions have the top R and F scores; Loyal are recent
    enough (R above 1) and buy more than rarely (F above 1); Promising are recent but rare
    buyers; At Risk bought often but not lately; Hibernating have R and F of 1. The M score
    plays no part. Every pair of scores matches one of them, so the default name is never
    used. With 2 bins, Loyal is empty (its only cell, R = F = 2, is the Champions').
    """
    top, upper = (bins, bins), (2, bins)
    return [
        SegmentRule("Champions", r=top, f=top),
        SegmentRule("Loyal", r=upper, f=upper),
        SegmentRule("Promising", r=upper),
        SegmentRule("At Risk", f=upper),
        SegmentRule("Hibernating", r=(1, 1), f=(1, 1)),
    ]


def check_rules(rules: Sequence[Rule], bins: int) -> None:
    """Raise ``ValueError`` unless every rule has a name of its own and sound ranges.

    A range must be two integer scores ``lo <= hi`` within ``1..bins``.
    """
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if not rule.name.strip():
            raise ValueError(f"rule {i} has an empty name")
        if rule.name in seen:
            raise ValueError(f"rule {i} repeats the name {rule.name!r} of rule {seen[rule.name]}")
        seen[rule.name] = i
        for key in _SCORE_COLUMN:
            span = getattr(rule, key)
            if span is None:
                continue
            lo, hi = span
            if not 1 <= lo <= hi <= bins:
                raise ValueError(
                    f"rule {i} ({rule.name!r}) {key}: a range of scores [lo, hi] needs "
                    f"1 <= lo <= hi <= {bins}, found [{lo}, {hi}]"
                )


def rfm_segments(
    scores: pd.DataFrame,
    bins: int = 3,
    *,
    rules: Sequence[Rule] | None = None,
    default: str = DEFAULT_SEGMENT,
) -> pd.Series:
    """Named segments from the R, F and M scores, by the first rule that matches.

    Parameters
    ----------
    scores : pd.DataFrame
        Score columns R, F and M (1..bins), as :func:`rfm_scores` gives; only the columns
        the rules use are read.
    bins : int
        Number of scores of each dimension.
    rules : sequence of Rule, optional
        Ordered rules table (see :class:`SegmentRule`); a customer takes the name of the
        first rule whose ranges hold all its scores. Default: :func:`default_rules`.
    default : str
        Name of the customers that match no rule.

    Returns
    -------
    pd.Series
        The segment names, named ``segment``, on the index of ``scores``.

    Raises
    ------
    ValueError
        When a rule has no name, repeats a name, or has a range outside ``1..bins``.
    """
    rules = default_rules(bins) if rules is None else rules
    check_rules(rules, bins)
    matches = [_matches(rule, scores) for rule in rules]
    if matches:
        names = np.select(matches, [rule.name for rule in rules], default=default)
    else:
        names = np.full(len(scores), default)
    return pd.Series(names, index=scores.index, name="segment")


def segment_order(
    bins: int = 3, rules: Sequence[Rule] | None = None, default: str = DEFAULT_SEGMENT
) -> list[str]:
    """Segment names in the order of the rules table, as reports list them.

    The default name comes last, and only when some combination of scores matches no
    rule. For :func:`default_rules` this is :data:`SEGMENT_ORDER`.
    """
    rules = default_rules(bins) if rules is None else rules
    order = list(dict.fromkeys(rule.name for rule in rules))
    grid = np.indices((bins, bins, bins)).reshape(3, -1) + 1
    every = pd.DataFrame({"R": grid[0], "F": grid[1], "M": grid[2]})
    covered = np.zeros(len(every), dtype=bool)
    for rule in rules:
        covered |= _matches(rule, every)
    if not covered.all() and default not in order:
        order.append(default)
    return order


def _matches(rule: Rule, scores: pd.DataFrame) -> np.ndarray:
    match = np.ones(len(scores), dtype=bool)
    for key, column in _SCORE_COLUMN.items():
        span = getattr(rule, key)
        if span is not None:
            values = scores[column].to_numpy()
            match &= (values >= span[0]) & (values <= span[1])
    return match


# --- from transactions --------------------------------------------------------------------


def rfm_from_transactions(
    transactions: pd.DataFrame,
    as_of: str | date | pd.Timestamp,
    *,
    id_column: str = "customer_id",
    date_column: str = "date",
    amount_column: str = "amount",
    customers: Sequence[Hashable] | pd.Index | None = None,
    window_days: int = 180,
    frequency: Literal["purchases", "days"] = "purchases",
    monetary: Literal["total", "mean"] = "total",
) -> pd.DataFrame:
    """Recency, frequency and monetary value of each customer as of a reference date.

    Only transactions in the look-back window count: the ``window_days`` calendar days
    ending on ``as_of``, that day included, so ``as_of - window_days < day <= as_of``.
    Dates are compared by calendar day (time of day is dropped). Transactions after
    ``as_of`` are ignored, as not yet known on that day; to keep the launch day out of a
    pre-period, pass the day before launch.

    - ``recency``: whole days from the customer's last purchase in the window to
      ``as_of``, from 0 (bought on ``as_of``) to ``window_days - 1``.
    - ``frequency``: with ``"purchases"`` (the default) the number of transactions (rows);
      with ``"days"`` the number of distinct days with a purchase.
    - ``monetary``: with ``"total"`` (the default) the sum of the amounts; with
      ``"mean"`` that sum divided by ``frequency`` (the mean per purchase, or per
      purchase day with ``frequency="days"``).

    A customer with no transaction in the window has frequency 0, monetary 0 and recency
    ``window_days``: the cap, one day more than any buyer in the window can have, so
    non-buyers score below every buyer.

    Parameters
    ----------
    transactions : pd.DataFrame
        One row per purchase, with an id, a date (datetime64) and an amount (a finite
        number of at least 0) column.
    as_of : str, date or pd.Timestamp
        The reference date (the last day of the look-back window).
    id_column, date_column, amount_column : str
        The columns of ``transactions``.
    customers : sequence or pd.Index, optional
        The customers to return, in this order, each once; those without transactions get
        the values above, and transactions of other ids are ignored. Default: every id
        with a transaction on or before ``as_of``, in sorted order.
    window_days : int
        Length of the look-back window in days.
    frequency : {"purchases", "days"}
        What a purchase is counted as.
    monetary : {"total", "mean"}
        Total spend, or spend per purchase.

    Returns
    -------
    pd.DataFrame
        Columns ``recency`` (int), ``frequency`` (int) and ``monetary`` (float), indexed
        by customer id (index named ``id_column``); ready for :func:`rfm_scores`.

    Raises
    ------
    DataError
        When a column is missing or holds a value of the wrong kind, or ``customers``
        repeats an id.
    ValueError
        When ``as_of``, ``window_days``, ``frequency`` or ``monetary`` is not valid.
    """
    if frequency not in ("purchases", "days"):
        raise ValueError(f"frequency must be 'purchases' or 'days', found {frequency!r}")
    if monetary not in ("total", "mean"):
        raise ValueError(f"monetary must be 'total' or 'mean', found {monetary!r}")
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ValueError(f"window_days must be a whole number of days >= 1, found {window_days!r}")
    try:
        reference = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise ValueError(f"as_of must be a date, found {as_of!r}") from None
    if pd.isna(reference):
        raise ValueError(f"as_of must be a date, found {as_of!r}")
    days = _transaction_days(transactions, id_column, date_column, amount_column)
    if (days.dt.tz is None) != (reference.tz is None):
        raise DataError(
            f"Transactions column {date_column!r} has dates "
            f"{'without' if days.dt.tz is None else 'with'} a time zone, but as_of "
            f"{reference} has {'none' if reference.tz is None else 'one'}; give both or neither."
        )
    reference = reference.normalize()
    ids = transactions[id_column]
    if customers is None:
        index = pd.Index(ids[(days <= reference).to_numpy()].unique()).sort_values()
    else:
        index = pd.Index(customers)
        if index.has_duplicates:
            repeated = index[index.duplicated()].unique()
            raise DataError(
                f"The customers to compute RFM for must list each id once, found "
                f"{len(repeated)} listed more than once (for example {repeated[0]!r})."
            )
    start = reference - pd.Timedelta(days=window_days)
    in_window = ((days > start) & (days <= reference)).to_numpy()
    window = pd.DataFrame(
        {
            "id": ids.to_numpy(),
            "day": days.reset_index(drop=True),
            "amount": transactions[amount_column].to_numpy(dtype=float),
        }
    ).loc[in_window]
    grouped = window.groupby("id", sort=False)
    last = grouped["day"].max()
    count = grouped.size() if frequency == "purchases" else grouped["day"].nunique()
    total = grouped["amount"].sum()
    result = pd.DataFrame(
        {
            "recency": (reference - last).dt.days,
            "frequency": count,
            "monetary": total / count if monetary == "mean" else total,
        }
    ).reindex(index)
    result = result.fillna({"recency": window_days, "frequency": 0, "monetary": 0.0})
    result = result.astype({"recency": "int64", "frequency": "int64", "monetary": "float64"})
    result.index.name = id_column
    return result


def _transaction_days(frame: pd.DataFrame, id_column: str, date: str, amount: str) -> pd.Series:
    """The calendar day of each transaction, after checking the three columns."""
    for role, column in (("id", id_column), ("date", date), ("amount", amount)):
        if column not in frame.columns:
            raise DataError(
                f"RFM from transactions needs the {role} column {column!r}, but the "
                f"transactions have no such column (found columns {list(frame.columns)})."
            )
    missing_ids = int(frame[id_column].isna().sum())
    if missing_ids:
        raise DataError(
            f"Transactions column {id_column!r} must name a customer on every row, "
            f"found {missing_ids} rows without one."
        )
    dates = frame[date]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        raise DataError(
            f"Transactions column {date!r} must hold dates (datetime64), found dtype "
            f"{dates.dtype}; convert it with pandas.to_datetime first."
        )
    if dates.isna().any():
        raise DataError(
            f"Transactions column {date!r} must have a date on every row, found "
            f"{int(dates.isna().sum())} missing (first at row {dates.index[dates.isna()][0]!r})."
        )
    amounts = frame[amount]
    if not pd.api.types.is_numeric_dtype(amounts) or pd.api.types.is_bool_dtype(amounts):
        raise DataError(
            f"Transactions column {amount!r} must hold numeric amounts, found dtype "
            f"{amounts.dtype}."
        )
    values = amounts.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"Transactions column {amount!r} must hold a finite amount on every row, found "
            f"{int(bad.sum())} missing or infinite (first at row {amounts.index[bad][0]!r})."
        )
    negative = values < 0
    if negative.any():
        raise DataError(
            f"Transactions column {amount!r} must hold amounts of at least 0 (net refunds "
            f"into their purchases first), found {int(negative.sum())} negative "
            f"(smallest {values.min():g})."
        )
    return dates.dt.normalize()
