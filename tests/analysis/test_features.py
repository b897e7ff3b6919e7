"""Tests of uplift.analysis.features.FeatureEncoder: codes fixed at fit time.

The expected codes are written out by hand from the rule in the module docstring
(sorted distinct values seen at fit, unseen or missing values as NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.features import FeatureEncoder
from uplift.errors import DataError


def test_a_chunk_is_coded_as_the_training_data_was() -> None:
    """A chunk holding only some plans, and one never seen, keeps the training codes."""
    train = pd.DataFrame({"plan": ["team", "starter", "enterprise"], "seats": [3, 1, 9]})
    encoder = FeatureEncoder(["plan", "seats"]).fit(train)
    chunk = pd.DataFrame({"plan": ["team", "gold", None], "seats": [2, 5, 7]})
    out = encoder.transform(chunk)
    # enterprise=0, starter=1, team=2; "gold" was not seen and None is missing
    np.testing.assert_array_equal(out["plan"], [2.0, np.nan, np.nan])
    np.testing.assert_array_equal(out["seats"], [2.0, 5.0, 7.0])
    # encoding the chunk on its own would have coded "team" as 1
    assert FeatureEncoder(["plan"]).fit_transform(chunk)["plan"].iloc[0] == 1.0


def test_text_where_the_model_saw_numbers_is_refused() -> None:
    encoder = FeatureEncoder(["seats"]).fit(pd.DataFrame({"seats": [1, 2]}))
    with pytest.raises(DataError, match="'seats' was numeric"):
        encoder.transform(pd.DataFrame({"seats": ["one", "two"]}))


def test_an_all_missing_numeric_column_is_missing_not_an_error() -> None:
    encoder = FeatureEncoder(["seats"]).fit(pd.DataFrame({"seats": [1, 2]}))
    out = encoder.transform(pd.DataFrame({"seats": pd.Series([None, None], dtype=object)}))
    assert out["seats"].isna().all()


def test_infinite_and_absurdly_large_values_are_missing() -> None:
    # 1e300 squared overflows: the linear base's scaling turned it into NaN (found by
    # tests/test_fuzz_data.py); 1e100 itself is still a value
    frame = pd.DataFrame({"spend": [1.5, np.inf, -np.inf, 1e300, -1e101, 1e100, np.nan]})
    out = FeatureEncoder(["spend"]).fit_transform(frame)
    np.testing.assert_array_equal(
        out["spend"], [1.5, np.nan, np.nan, np.nan, np.nan, 1e100, np.nan]
    )
