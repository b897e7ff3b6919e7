"""Model inputs: the spec's features as a float matrix, encoded the same way at fit and score time.

Numbers and booleans pass through as floats; an infinite value, or one beyond
:data:`MAX_FEATURE_MAGNITUDE`, as a missing one. Text and categorical columns become the
code of their value among the distinct values seen when the encoder was fitted, sorted,
so the codes do not depend on row order. A value not seen at fit time, like a missing
one, becomes ``NaN``, which the tree models route on their own and the linear base
imputes. Scoring a new base in chunks therefore gives every customer the codes the model
was trained with, whatever else is in the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from uplift.data.sources import check_features
from uplift.errors import DataError

__all__ = ["MAX_FEATURE_MAGNITUDE", "FeatureEncoder", "encode_features", "out_of_range"]

#: The largest magnitude a numeric feature may have: no count, amount or duration comes
#: near it, and the squares the models and the balance check sum stay finite below it.
MAX_FEATURE_MAGNITUDE = 1e100


class FeatureEncoder(BaseEstimator):
    """Encode the named feature columns of a frame as floats.

    Parameters
    ----------
    features : sequence of str
        Columns to encode, in the order of the output.

    Attributes
    ----------
    categories_ : dict of str to list of str
        For each text or categorical feature, its sorted distinct values at fit time.
    """

    def __init__(self, features: Sequence[str]) -> None:
        self.features = features

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        """Learn the distinct values of the text and categorical features."""
        check_features(frame, self.features)
        self.categories_: dict[str, list[str]] = {}
        for name in self.features:
            column = frame[name]
            if not _is_numeric(column):
                values = column.dropna().astype(str).unique()
                self.categories_[name] = sorted(str(v) for v in values)
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The features as float columns, indexed like ``frame``."""
        check_is_fitted(self, "categories_")
        check_features(frame, self.features)
        out = {}
        for name in self.features:
            column = frame[name]
            if name in self.categories_:
                # -1 for a value not seen at fit time, and for a missing one
                codes = pd.Index(self.categories_[name]).get_indexer(column.astype("string"))
                out[name] = np.where(codes >= 0, codes, np.nan).astype(float)
            elif _is_numeric(column) or column.isna().all():
                values = column.astype(float).to_numpy(dtype=float, na_value=np.nan)
                # handled as a missing value, as in the analysis
                out[name] = np.where(out_of_range(values), np.nan, values)
            else:
                # numeric at fit time, text now: a wrong file, not something to guess at
                raise DataError(
                    f"feature {name!r} was numeric when the model was fitted but holds "
                    f"{column.dtype} values here (for example {column.dropna().iloc[:3].tolist()})."
                )
        return pd.DataFrame(out, index=frame.index)

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """:meth:`fit`, then :meth:`transform` the same frame."""
        return self.fit(frame).transform(frame)


def encode_features(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """Encode ``features`` of ``frame`` with an encoder fitted on ``frame`` itself."""
    return FeatureEncoder(features).fit_transform(frame)


def out_of_range(values: np.ndarray) -> np.ndarray:
    """Where a numeric feature is infinite or beyond :data:`MAX_FEATURE_MAGNITUDE`."""
    with np.errstate(invalid="ignore"):
        return np.isinf(values) | (np.abs(values) > MAX_FEATURE_MAGNITUDE)


def _is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column))
