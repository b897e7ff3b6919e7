"""Tests of uplift.value.rfm: ranked scores computed by hand, properties of the scores on
arbitrary data with ties, and the named segments of a hand-built scores frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.errors import DataError
from uplift.value.rfm import SEGMENT_ORDER, ranked_score, rfm_scores, rfm_segments


def test_ranked_score_by_hand_with_ties() -> None:
    values = pd.Series([10, 20, 20, 30, 40, 40, 40, 50, 60], index=list("abcdefghi"), name="f")
    # average ranks 1, 2.5, 2.5, 4, 6, 6, 6, 8, 9 of 9; times 3 bins: 0.33, 0.83, 0.83,
    # 1.33, 2, 2, 2, 2.67, 3 -> rounded up: 1, 1, 1, 2, 2, 2, 2, 3, 3
    score = ranked_score(values, 3)
    assert list(score) == [1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert score.index.equals(values.index)
    assert score.name == "f"


def test_ranked_score_descending_gives_the_smallest_values_the_top_score() -> None:
    recency = pd.Series([5, 5, 100, 200, 30, 1])
    # descending average ranks: 200 -> 1, 100 -> 2, 30 -> 3, 5 -> 4.5, 1 -> 6; of 6, times 3:
    # 0.5, 1, 1.5, 2.25, 3 -> 1, 1, 2, 3, 3
    assert list(ranked_score(recency, 3, ascending=False)) == [3, 3, 1, 1, 2, 3]


def test_all_tied_values_share_one_score() -> None:
    score = ranked_score(pd.Series([7.0] * 10), 4)
    assert score.nunique() == 1
    assert 1 <= score.iloc[0] <= 4


@pytest.mark.parametrize("bins", [2, 3, 4, 5, 10])
def test_distinct_values_fill_equal_bins(bins: int) -> None:
    values = pd.Series(np.random.default_rng(bins).permutation(bins * 20).astype(float))
    counts = ranked_score(values, bins).value_counts().sort_index()
    assert list(counts.index) == list(range(1, bins + 1))
    assert (counts == 20).all()


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=60),
    bins=st.integers(min_value=2, max_value=10),
    ascending=st.booleans(),
)
def test_scores_are_in_range_monotone_and_shared_by_ties(
    values: list[int], bins: int, ascending: bool
) -> None:
    series = pd.Series(values)
    score = ranked_score(series, bins, ascending=ascending)
    assert score.between(1, bins).all()
    assert score.dtype.kind == "i"
    by_value = pd.DataFrame({"v": series, "s": score}).groupby("v")["s"]
    # tied values share a score
    assert (by_value.nunique() == 1).all()
    # larger values never score lower (higher, when descending)
    per_value = by_value.first().sort_index()
    steps = np.diff(per_value.to_numpy())
    assert (steps >= 0).all() if ascending else (steps <= 0).all()


def test_rfm_scores_reverse_recency_only() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [1, 50, 400, 10, 200, 90],
            "frequency_180d": [9, 3, 0, 5, 1, 2],
            "monetary_180d": [900.0, 120.0, 0.0, 400.0, 30.0, 80.0],
            "plan": ["a"] * 6,
        },
        index=pd.Index([11, 12, 13, 14, 15, 16], name="customer_id"),
    )
    scores = rfm_scores(frame, "recency_days", "frequency_180d", "monetary_180d", bins=3)
    assert list(scores.columns) == ["R", "F", "M"]
    assert scores.index.equals(frame.index)
    # by hand (6 distinct values, 2 per score): most recent 1 and 10 days -> R 3;
    # 50 and 90 -> 2; 200 and 400 -> 1
    assert list(scores["R"]) == [3, 2, 1, 3, 1, 2]
    # frequency 9, 5 -> 3; 3, 2 -> 2; 1, 0 -> 1
    assert list(scores["F"]) == [3, 2, 1, 3, 1, 2]
    # monetary 900, 400 -> 3; 120, 80 -> 2; 30, 0 -> 1
    assert list(scores["M"]) == [3, 2, 1, 3, 1, 2]


def test_rfm_segments_by_hand() -> None:
    pairs = {
        "r3f3": (3, 3, "Champions"),
        "r3f2": (3, 2, "Loyal"),
        "r2f3": (2, 3, "Loyal"),
        "r2f2": (2, 2, "Loyal"),
        "r3f1": (3, 1, "Promising"),
        "r2f1": (2, 1, "Promising"),
        "r1f3": (1, 3, "At Risk"),
        "r1f2": (1, 2, "At Risk"),
        "r1f1": (1, 1, "Hibernating"),
    }
    scores = pd.DataFrame(
        {"R": [r for r, _, _ in pairs.values()], "F": [f for _, f, _ in pairs.values()]},
        index=list(pairs),
    )
    scores["M"] = 2  # monetary does not enter the named segments
    segments = rfm_segments(scores, bins=3)
    assert segments.name == "segment"
    assert segments.index.equals(scores.index)
    assert segments.to_dict() == {key: name for key, (_, _, name) in pairs.items()}
    assert set(segments) == set(SEGMENT_ORDER)


def test_rfm_segments_with_five_bins() -> None:
    scores = pd.DataFrame({"R": [5, 4, 5, 1, 1, 3], "F": [5, 5, 1, 5, 1, 2], "M": 1})
    assert list(rfm_segments(scores, bins=5)) == [
        "Champions",
        "Loyal",  # F at the top but R only 4: not a champion
        "Promising",
        "At Risk",
        "Hibernating",
        "Loyal",
    ]


def test_a_missing_column_is_named() -> None:
    frame = pd.DataFrame({"recency_days": [1, 2], "frequency_180d": [1, 2]})
    with pytest.raises(DataError, match="monetary_180d"):
        rfm_scores(frame, "recency_days", "frequency_180d", "monetary_180d")


@pytest.mark.parametrize(
    "bad", [[1.0, np.nan, 3.0], ["a", "b", "c"]], ids=["missing value", "text"]
)
def test_a_non_numeric_or_incomplete_column_is_refused(bad: list[object]) -> None:
    frame = pd.DataFrame(
        {"recency_days": [1, 2, 3], "frequency_180d": bad, "monetary_180d": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(DataError, match="frequency_180d"):
        rfm_scores(frame, "recency_days", "frequency_180d", "monetary_180d")
