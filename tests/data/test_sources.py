"""Tests of uplift.data.sources: the id checks every population and outcome table passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.data.sources import check_ids
from uplift.errors import DataError


@pytest.mark.parametrize(
    "ids",
    [
        pd.Series(["b", "a", "b", "c", "a", "a"], dtype="str"),  # Arrow-backed text
        pd.Series(["b", "a", "b", "c", "a", "a"], dtype=object),
        pd.Series([2, 1, 2, 3, 1, 1], dtype=np.int64),
    ],
    ids=["arrow-text", "object", "integer"],
)
def test_repeated_ids_are_counted_once_each(ids: pd.Series) -> None:
    with pytest.raises(DataError, match=r"repeats 2 ids \(for example ") as raised:
        check_ids(pd.DataFrame({"id": ids}), "id", "population file base.csv")
    message = str(raised.value)
    assert "population file base.csv: id column 'id'" in message
    assert any(f"for example {e!r})" in message for e in ("a", "b", 1, 2))


@pytest.mark.parametrize("dtype", ["str", object])
def test_distinct_ids_pass_and_text_differs_from_its_case(dtype: object) -> None:
    ids = pd.Series([f"c{i}" for i in range(10_000)] + ["C1", "c1 "], dtype=dtype)
    check_ids(pd.DataFrame({"id": ids}), "id", "base")  # raises nothing


def test_one_repeat_among_many_distinct_arrow_ids_is_found() -> None:
    ids = [f"c{i}" for i in range(50_000)]
    ids[31_337] = "c7"
    with pytest.raises(DataError, match=r"repeats 1 ids \(for example 'c7'\)"):
        check_ids(pd.DataFrame({"id": pd.Series(ids, dtype="str")}), "id", "base")


def test_missing_ids_are_refused_before_repeats() -> None:
    with pytest.raises(DataError, match="has 1 missing ids"):
        check_ids(pd.DataFrame({"id": pd.Series(["a", None, "a"], dtype="str")}), "id", "base")
