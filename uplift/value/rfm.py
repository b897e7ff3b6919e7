"""RFM scores and named segments from pre-period features.

Scores are ranked quantiles: each customer's average rank (ties share it) as a share of
the base is cut into ``bins`` equal ranges, so tied values always land in the same bin
and no bin edge is ever duplicated. Recency is scored in reverse: the most recent
customers get the highest R score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.errors import DataError

__all__ = ["SEGMENT_ORDER", "ranked_score", "rfm_scores", "rfm_segments"]

#: Named segments in the order reports list them.
SEGMENT_ORDER = ["Champions", "Loyal", "Promising", "At Risk", "Hibernating"]


def ranked_score(values: pd.Series, bins: int, *, ascending: bool = True) -> pd.Series:
    """Score values 1..bins by ranked quantile; ties share a score.

    Parameters
    ----------
    values : pd.Series
        Numeric values; missing values are not allowed.
    bins : int
        Number of scores.
    ascending : bool
        When False, the smallest values get the highest score (recency).
    """
    pct = values.rank(method="average", pct=True, ascending=ascending)
    score = np.clip(np.ceil(pct.to_numpy() * bins), 1, bins).astype(int)
    return pd.Series(score, index=values.index, name=values.name)


def rfm_scores(
    frame: pd.DataFrame, recency: str, frequency: str, monetary: str, bins: int = 3
) -> pd.DataFrame:
    """R, F and M scores (1..bins) of every customer.

    Raises
    ------
    DataError
        When a column is missing, not numeric or has missing values.
    """
    for role, column in (("recency", recency), ("frequency", frequency), ("monetary", monetary)):
        if column not in frame.columns:
            raise DataError(
                f"RFM segments need a {role} column {column!r} (value.rfm.{role}), "
                f"but the population has no such column."
            )
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().any():
            raise DataError(
                f"RFM {role} column {column!r} must be numeric without missing values, "
                f"found dtype {frame[column].dtype} with {int(frame[column].isna().sum())} missing."
            )
    return pd.DataFrame(
        {
            "R": ranked_score(frame[recency], bins, ascending=False),
            "F": ranked_score(frame[frequency], bins),
            "M": ranked_score(frame[monetary], bins),
        }
    )


def rfm_segments(scores: pd.DataFrame, bins: int = 3) -> pd.Series:
    """Named segments from R and F scores.

    Champions have the top R and F scores; Loyal are recent enough and buy more than
    rarely; Promising are recent but rare buyers; At Risk bought often but not lately;
    Hibernating neither.
    """
    r, f = scores["R"], scores["F"]
    names = np.select(
        [(r == bins) & (f == bins), (r > 1) & (f > 1), r > 1, f > 1],
        ["Champions", "Loyal", "Promising", "At Risk"],
        default="Hibernating",
    )
    return pd.Series(names, index=scores.index, name="segment")
