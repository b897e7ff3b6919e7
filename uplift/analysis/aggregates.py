"""Average effects from per-arm aggregates, gathered chunk by chunk or by Spark.

A base of tens of millions of customers does not fit in one frame, but the difference in
means of an arm against the control and its Welch interval need only each arm's count,
mean and sum of squared deviations. :class:`ArmMoments` gathers them chunk by chunk and
merges the chunks with the pairwise update of Chan, Golub and LeVeque (1979), which
keeps the precision of a two-pass variance; :meth:`ArmMoments.effects` turns them into
the same Welch intervals :func:`uplift.analysis.effects.welch_effect` computes on the
values (tested equal to it, and to scipy, on the whole data). Spark's ``count``, ``avg``
and ``var_samp`` give the same three numbers (:func:`ArmMoments.from_rows`).

These are plain differences in means: no CUPED adjustment and no ratio metrics, which
``uplift run`` estimates on the frame it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from uplift.analysis.effects import welch_from_moments
from uplift.data.id_index import IdIndex
from uplift.data.ids import ids_as_arrow
from uplift.errors import DataError

__all__ = ["ArmMoments", "Gathered", "Moments", "gather_moments"]


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations from the mean of one sample."""

    n: int
    mean: float
    m2: float

    @property
    def variance(self) -> float:
        """The sample variance (``ddof=1``); NaN below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else float("nan")

    def merge(self, other: Moments) -> Moments:
        """The moments of both samples together (Chan, Golub and LeVeque's update)."""
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta**2 * self.n * other.n / n
        return Moments(n, mean, m2)


@dataclass
class ArmMoments:
    """Each arm's :class:`Moments` of each metric, added to chunk by chunk.

    Parameters
    ----------
    metrics : sequence of str
        The metrics (columns of the chunks given to :meth:`add`).
    """

    metrics: Sequence[str]
    moments: dict[tuple[str, str], Moments] = field(default_factory=dict)
    """(metric, arm) -> moments so far."""

    def add(self, arms: pd.Series, values: pd.DataFrame) -> None:
        """Add a chunk: each row's arm and its value of every metric (none missing).

        Each arm's moments within the chunk are computed around the chunk's own mean
        (two passes over the chunk), then merged into the running ones.
        """
        codes, labels = pd.factorize(arms, sort=False)
        if (codes < 0).any():
            raise ValueError("every row added needs an arm")
        counts = np.bincount(codes, minlength=len(labels))
        for metric in self.metrics:
            x = values[metric].to_numpy(dtype=float)
            sums = np.bincount(codes, weights=x, minlength=len(labels))
            means = sums / np.maximum(counts, 1)
            m2 = np.bincount(codes, weights=(x - means[codes]) ** 2, minlength=len(labels))
            for k, arm in enumerate(labels):
                key = (metric, str(arm))
                chunk = Moments(int(counts[k]), float(means[k]), float(m2[k]))
                self.moments[key] = self.moments.get(key, Moments(0, 0.0, 0.0)).merge(chunk)

    @classmethod
    def from_rows(
        cls, metrics: Sequence[str], rows: Iterable[tuple[str, str, int, float, float]]
    ) -> ArmMoments:
        """From ``(metric, arm, count, mean, sample variance)`` rows, as Spark aggregates."""
        out = cls(list(metrics))
        for metric, arm, n, mean, variance in rows:
            m2 = float(variance) * (int(n) - 1) if int(n) > 1 else 0.0
            out.moments[(metric, arm)] = Moments(int(n), float(mean), m2)
        return out

    def count(self, arm: str) -> int:
        """Customers of ``arm`` added so far."""
        return self.moments.get((self.metrics[0], arm), Moments(0, 0.0, 0.0)).n

    def effects(self, control: str, treatments: Sequence[str], alpha: float = 0.05) -> pd.DataFrame:
        """Every treatment arm against the control, per metric, with its Welch interval.

        Returns
        -------
        pd.DataFrame
            One row per metric and arm: ``metric, arm, n_treated, n_control,
            mean_treated, mean_control, estimate, std_error, df, ci_low, ci_high,
            p_value``.
        """
        rows = []
        for metric in self.metrics:
            base = self.moments.get((metric, control), Moments(0, 0.0, 0.0))
            for arm in treatments:
                moments = self.moments.get((metric, arm), Moments(0, 0.0, 0.0))
                welch = welch_from_moments(
                    (moments.n, moments.mean, moments.variance),
                    (base.n, base.mean, base.variance),
                    alpha,
                )
                rows.append(
                    {
                        "metric": metric,
                        "arm": arm,
                        "n_treated": welch.n_treated,
                        "n_control": welch.n_control,
                        "mean_treated": welch.mean_treated,
                        "mean_control": welch.mean_control,
                        "estimate": welch.estimate,
                        "std_error": welch.std_error,
                        "df": welch.df,
                        "ci_low": welch.ci_low,
                        "ci_high": welch.ci_high,
                        "p_value": welch.p_value,
                    }
                )
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Gathered:
    """What :func:`gather_moments` matched and summed."""

    moments: ArmMoments
    n_assigned: int
    """Customers of the compared arms in the assignments."""
    n_rows: int
    """Rows read from the outcomes."""
    n_matched: int
    """Rows whose customer is in the assignments (each customer at most once)."""


def gather_moments(
    ids: pa.Array,
    arms: pd.Categorical,
    chunks: Iterable[pd.DataFrame],
    id_column: str,
    metrics: Mapping[str, str],
    source: str,
) -> Gathered:
    """Per-arm moments of the outcomes of assigned customers, one chunk of outcomes at a time.

    Parameters
    ----------
    ids : pyarrow string array
        The assigned customers' ids as text.
    arms : pd.Categorical
        Their arms, in the same order.
    chunks : iterable of pd.DataFrame
        The outcomes, with ``id_column`` and every metric's column; customers who are
        not in ``ids`` (not in the experiment) are skipped.
    id_column : str
        The id column of the outcomes.
    metrics : mapping
        Metric name -> its column in the outcomes.
    source : str
        What the outcomes were read from, for messages.

    Raises
    ------
    DataError
        When an assigned customer's outcome is missing or given twice, or a metric's value
        of an assigned customer is missing.

    Notes
    -----
    Memory holds the ids (and 17 bytes a customer for the lookup and the check that each
    is seen once) and one chunk, not the outcomes.
    """
    index = IdIndex(ids)
    codes = np.asarray(arms.codes)
    seen = np.zeros(len(ids), dtype=bool)
    moments = ArmMoments(list(metrics))
    rows = matched = 0
    for chunk in chunks:
        rows += len(chunk)
        position = index.find(ids_as_arrow(chunk[id_column]))
        inside = position >= 0
        found = position[inside]
        # a customer seen in an earlier chunk, or twice in this one
        repeated = found[seen[found]]
        if not len(repeated):
            ordered = np.sort(found)
            repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(repeated):
            raise DataError(
                f"{source}: customer {ids[int(repeated[0])].as_py()!r} has more than one row "
                f"of outcomes (column {id_column!r}); each customer needs exactly one."
            )
        seen[found] = True
        matched += len(found)
        values = chunk.loc[inside, list(metrics.values())]
        values.columns = list(metrics)
        empty = values.isna().any()
        if empty.any():
            metric = str(empty.idxmax())
            raise DataError(
                f"{source}: column {metrics[metric]!r} (metric {metric!r}) has missing values "
                f"for customers in the experiment; every assigned customer needs a value."
            )
        # the arms as codes of the assignments' categories: no text per customer
        chunk_arms = pd.Series(pd.Categorical.from_codes(codes[found], arms.categories))
        moments.add(chunk_arms, values.reset_index(drop=True))
    if not seen.all():
        missing = int((~seen).sum())
        raise DataError(
            f"{source}: {missing:,} of the {len(ids):,} customers in the experiment have no "
            f"outcomes (for example {ids[int(np.argmin(seen))].as_py()!r}); every assigned "
            f"customer needs one row."
        )
    return Gathered(moments, len(ids), rows, matched)
