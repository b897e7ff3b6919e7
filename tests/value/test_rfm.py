"""Tests of uplift.value.rfm: ranked and bounded scores computed by hand (with ties across
bin edges), properties of the scores on arbitrary data with ties, the named segments of
the default and of custom rules tables, RFM from transactions, and the spec's RFM keys."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.errors import DataError, SpecError
from uplift.spec import load_spec, spec_json_schema
from uplift.value.rfm import (
    DEFAULT_SEGMENT,
    SEGMENT_ORDER,
    SegmentRule,
    bounded_score,
    default_rules,
    ranked_score,
    rfm_from_transactions,
    rfm_scores,
    rfm_segments,
    segment_order,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "edtech_trial_lessons.yaml"


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


# --- a hand-scored base of 12 customers with ties across bin edges ------------------------

#: 12 customers; with 3 bins the edges of the share fall at ranks 4 and 8 of 12.
TWELVE = pd.DataFrame(
    {
        "recency_days": [2, 5, 5, 5, 12, 20, 20, 40, 40, 40, 40, 90],
        "frequency_180d": [8, 3, 1, 0, 2, 5, 0, 3, 1, 1, 0, 1],
        "monetary_180d": [300.0, 120, 30, 10, 50, 80, 0, 50, 50, 25, 10, 30],
    },
    index=pd.Index(list("abcdefghijkl"), name="customer_id"),
)

# Ranked quantile scores by hand: score = ceil(average rank / 12 * 3) = ceil(rank / 4).
# R, ranked descending (the largest recency has rank 1):
#   90 -> rank 1 -> 1
#   40 x4 -> ranks 2..5, average 3.5 -> 1: the tie spans the edge at rank 4 (rank 5 would
#       score 2 alone) and goes whole into the bin of its average rank
#   20 x2 -> ranks 6..7, average 6.5 -> 2;  12 -> rank 8, exactly on the edge -> 2 (lower)
#   5 x3 -> ranks 9..11, average 10 -> 3;   2 -> rank 12 -> 3
# F, ranked ascending:
#   0 x3 -> ranks 1..3, average 2 -> 1
#   1 x4 -> ranks 4..7, average 5.5 -> 2: spans the edge at rank 4, which goes up with it
#   2 -> rank 8, on the edge -> 2;  3 x2 -> ranks 9..10, average 9.5 -> 3;  5, 8 -> 3
# M, ranked ascending:
#   0 -> 1;  10 x2 -> ranks 2..3, average 2.5 -> 1;  25 -> rank 4, on the edge -> 1
#   30 x2 -> ranks 5..6, average 5.5 -> 2
#   50 x3 -> ranks 7..9, average 8, exactly on the edge -> 2: rank 9 lies past the edge,
#       but the tie goes whole to the lower score
#   80, 120, 300 -> ranks 10..12 -> 3
# Default segments from (R, F) in rule order: Champions (3, 3); Loyal R >= 2 and F >= 2;
# Promising R >= 2; At Risk F >= 2; Hibernating (1, 1).
RANKED = pd.DataFrame.from_records(
    [
        ("a", 3, 3, 3, "Champions"),
        ("b", 3, 3, 3, "Champions"),
        ("c", 3, 2, 2, "Loyal"),
        ("d", 3, 1, 1, "Promising"),
        ("e", 2, 2, 2, "Loyal"),
        ("f", 2, 3, 3, "Loyal"),
        ("g", 2, 1, 1, "Promising"),
        ("h", 1, 3, 2, "At Risk"),
        ("i", 1, 2, 2, "At Risk"),
        ("j", 1, 2, 1, "At Risk"),
        ("k", 1, 1, 1, "Hibernating"),
        ("l", 1, 2, 2, "At Risk"),
    ],
    columns=["customer_id", "R", "F", "M", "segment"],
    index="customer_id",
)

#: Explicit cut points: a value equal to a cut point goes with the values below it.
BOUNDS = {"recency": [5.0, 20.0], "frequency": [0.0, 2.0], "monetary": [25.0, 100.0]}
# R: <= 5 -> 3 (5 itself: 3, the better score); 6..20 -> 2 (20 itself: 2); > 20 -> 1
# F: <= 0 -> 1; 1..2 -> 2 (2 itself: 2, the lower score); >= 3 -> 3
# M: <= 25 -> 1 (j's 25 itself: 1); 25 < m <= 100 -> 2; > 100 -> 3
BOUNDED = pd.DataFrame.from_records(
    [
        ("a", 3, 3, 3, "Champions"),  # 2 days, 8 purchases, 300
        ("b", 3, 3, 3, "Champions"),  # 5 days = bound -> R 3
        ("c", 3, 2, 2, "Loyal"),  # 5 days, 1 purchase
        ("d", 3, 1, 1, "Promising"),  # 0 purchases = bound -> F 1
        ("e", 2, 2, 2, "Loyal"),  # 2 purchases = bound -> F 2
        ("f", 2, 3, 2, "Loyal"),  # 20 days = bound -> R 2
        ("g", 2, 1, 1, "Promising"),  # 20 days, 0 purchases, 0 spent
        ("h", 1, 3, 2, "At Risk"),
        ("i", 1, 2, 2, "At Risk"),
        ("j", 1, 2, 1, "At Risk"),  # 25 spent = bound -> M 1
        ("k", 1, 1, 1, "Hibernating"),
        ("l", 1, 2, 2, "At Risk"),
    ],
    columns=["customer_id", "R", "F", "M", "segment"],
    index="customer_id",
)

#: A custom table that uses M; a and f match both of the first two rules and h both of
#: the next two, so the order decides; c, e, g and k match none.
CUSTOM_RULES = [
    SegmentRule("Big spenders", m=(3, 3)),
    SegmentRule("Frequent", f=(3, 3)),
    SegmentRule("Lapsed", r=(1, 1), f=(2, 3)),
    SegmentRule("New", r=(3, 3), f=(1, 1)),
]
CUSTOM = {
    "a": "Big spenders",  # (3, 3, 3): also Frequent, the first rule wins
    "b": "Big spenders",
    "c": "Unsorted",  # (3, 2, 2)
    "d": "New",  # (3, 1, 1)
    "e": "Unsorted",  # (2, 2, 2)
    "f": "Big spenders",  # (2, 3, 3): also Frequent
    "g": "Unsorted",  # (2, 1, 1)
    "h": "Frequent",  # (1, 3, 2): also Lapsed
    "i": "Lapsed",
    "j": "Lapsed",
    "k": "Unsorted",  # (1, 1, 1)
    "l": "Lapsed",
}


def twelve_scores(bounds: Mapping[Any, Sequence[float]] | None = None) -> pd.DataFrame:
    return rfm_scores(TWELVE, "recency_days", "frequency_180d", "monetary_180d", 3, bounds=bounds)


def test_ranked_scores_and_segments_of_the_twelve_by_hand() -> None:
    scores = twelve_scores()
    pd.testing.assert_frame_equal(scores, RANKED[["R", "F", "M"]], check_dtype=False)
    assert (scores.dtypes.map(lambda d: d.kind) == "i").all()
    assert rfm_segments(scores, 3).to_dict() == RANKED["segment"].to_dict()


def test_bounded_scores_and_segments_of_the_twelve_by_hand() -> None:
    scores = twelve_scores(bounds=BOUNDS)
    pd.testing.assert_frame_equal(scores, BOUNDED[["R", "F", "M"]], check_dtype=False)
    assert rfm_segments(scores, 3).to_dict() == BOUNDED["segment"].to_dict()


def test_bounds_on_one_dimension_leave_the_others_ranked() -> None:
    scores = twelve_scores(bounds={"frequency": BOUNDS["frequency"]})
    assert list(scores["F"]) == list(BOUNDED["F"])
    assert list(scores["R"]) == list(RANKED["R"])
    assert list(scores["M"]) == list(RANKED["M"])


def test_a_custom_rules_table_with_a_default_name_by_hand() -> None:
    segments = rfm_segments(twelve_scores(), 3, rules=CUSTOM_RULES, default="Unsorted")
    assert segments.to_dict() == CUSTOM
    assert segments.name == "segment"
    # the default name comes last, as some scores match no rule
    assert segment_order(3, CUSTOM_RULES, "Unsorted") == [
        "Big spenders",
        "Frequent",
        "Lapsed",
        "New",
        "Unsorted",
    ]


def test_an_unmatched_customer_gets_other_by_default() -> None:
    scores = pd.DataFrame({"R": [3, 1], "F": [3, 1], "M": [1, 1]})
    segments = rfm_segments(scores, 3, rules=[SegmentRule("Top", r=(3, 3), f=(3, 3))])
    assert list(segments) == ["Top", DEFAULT_SEGMENT]
    assert DEFAULT_SEGMENT == "Other"


def test_a_rule_without_ranges_takes_everyone_left() -> None:
    rules = [SegmentRule("Top", r=(3, 3)), SegmentRule("Rest")]
    segments = rfm_segments(twelve_scores(), 3, rules=rules, default="never")
    assert segments.to_dict() == {
        key: "Top" if r == 3 else "Rest" for key, r in RANKED["R"].items()
    }
    assert segment_order(3, rules, "never") == ["Top", "Rest"]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([SegmentRule("A", r=(0, 2))], r"rule 0 \('A'\) r: .*1 <= lo <= hi <= 3.*\[0, 2\]"),
        ([SegmentRule("A", m=(3, 4))], r"rule 0 \('A'\) m: .*\[3, 4\]"),
        ([SegmentRule("A"), SegmentRule("B", f=(3, 2))], r"rule 1 \('B'\) f: .*\[3, 2\]"),
        ([SegmentRule("A"), SegmentRule("A", r=(1, 1))], "rule 1 repeats the name 'A' of rule 0"),
        ([SegmentRule(" ")], "rule 0 has an empty name"),
    ],
    ids=["below 1", "above bins", "lo above hi", "duplicate name", "empty name"],
)
def test_rfm_segments_refuses_a_bad_rules_table(rules: list[SegmentRule], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rfm_segments(twelve_scores(), 3, rules=rules)


# --- the default rules are today's five segments ------------------------------------------


def segment_as_before(r: int, f: int, bins: int) -> str:
    """The five segments as rfm_segments named them before rules tables, restated."""
    if r == bins and f == bins:
        return "Champions"
    if r > 1 and f > 1:
        return "Loyal"
    if r > 1:
        return "Promising"
    if f > 1:
        return "At Risk"
    return "Hibernating"


@pytest.mark.parametrize("bins", [3, 4, 5])
def test_default_rules_name_a_random_base_as_before(bins: int) -> None:
    rng = np.random.default_rng(bins)
    n = 400
    frame = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 60, n),
            "frequency_180d": rng.poisson(2.0, n),
            "monetary_180d": rng.gamma(1.0, 50.0, n).round(),
        },
        index=pd.Index(rng.permutation(n) + 1000, name="customer_id"),
    )
    scores = rfm_scores(frame, "recency_days", "frequency_180d", "monetary_180d", bins)
    segments = rfm_segments(scores, bins)
    expected = [
        segment_as_before(r, f, bins) for r, f in zip(scores["R"], scores["F"], strict=True)
    ]
    assert list(segments) == expected
    assert segments.index.equals(frame.index)
    assert set(segments) == set(SEGMENT_ORDER)  # every segment occurs: the test has teeth
    # the explicit default table and the spec's default name change nothing
    explicit = rfm_segments(scores, bins, rules=default_rules(bins), default=DEFAULT_SEGMENT)
    pd.testing.assert_series_equal(explicit, segments)


@pytest.mark.parametrize("bins", range(2, 11))
def test_default_rules_cover_every_score_as_before(bins: int) -> None:
    grid = pd.DataFrame(
        list(itertools.product(range(1, bins + 1), repeat=3)), columns=["R", "F", "M"]
    )
    segments = rfm_segments(grid, bins, default="unreachable")
    assert list(segments) == [
        segment_as_before(r, f, bins) for r, f in zip(grid.R, grid.F, strict=True)
    ]
    assert segment_order(bins) == SEGMENT_ORDER


# --- bounded scores -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-5, max_value=30), min_size=1, max_size=40),
    cuts=st.lists(st.integers(min_value=-5, max_value=30), min_size=1, max_size=6, unique=True),
)
def test_bounded_score_agrees_with_pandas_cut(values: list[int], cuts: list[int]) -> None:
    bounds = sorted(float(c) for c in cuts)
    series = pd.Series(values, dtype=float)
    # pandas.cut closes intervals on the right, as bounded_score documents
    reference = pd.cut(series, [-np.inf, *bounds, np.inf], labels=False) + 1
    assert list(bounded_score(series, bounds)) == list(reference)
    top = len(bounds) + 1
    assert list(bounded_score(series, bounds, ascending=False)) == list(top + 1 - reference)


@pytest.mark.parametrize(
    ("bounds", "bins", "message"),
    [
        ({"recency": [30.0, 30.0]}, 3, "strictly increasing, found 30.0 then 30.0"),
        ({"monetary": [5.0, np.inf]}, 3, "cut point 1 must be a finite number"),
        ({"frequency": [1.0]}, 3, "3 scores need 2 cut points, found 1"),
        ({"recncy": [1.0, 2.0]}, 3, "recncy"),
    ],
)
def test_rfm_scores_refuses_bad_bounds(
    bounds: dict[str, list[float]], bins: int, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        twelve_scores(bounds=bounds)


# --- RFM from transactions ----------------------------------------------------------------


def transactions() -> pd.DataFrame:
    rows = [
        ("c1", "2024-03-31 10:00", 20.0),  # on as_of, after midnight: recency 0
        ("c1", "2024-03-20 09:00", 10.0),
        ("c1", "2024-03-20 15:00", 5.0),  # a second purchase on the same day
        ("c2", "2024-03-02", 40.0),  # the first day of the 30-day window: recency 29
        ("c2", "2024-03-01", 100.0),  # 30 days before as_of: just outside the window
        ("c3", "2024-02-01", 50.0),  # only before the window
        ("c4", "2024-03-30", 7.0),
        ("c4", "2024-04-01", 70.0),  # after as_of: not yet known
        ("c5", "2024-04-05", 9.0),  # only after as_of: not a customer yet
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return frame.assign(date=pd.to_datetime(frame["date"], format="ISO8601"))


# By hand, as of 2024-03-31 with a 30-day window (2024-03-02 .. 2024-03-31):
#   c1: last 03-31 -> recency 0; 3 purchases on 2 days; total 35
#   c2: last 03-02 -> recency 29; 1 purchase; 40 (the 100 of 03-01 is outside)
#   c3: nothing in the window -> recency 30 (the cap, window_days), 0, 0
#   c4: last 03-30 -> recency 1; 1 purchase; 7 (the 70 of 04-01 is after as_of)
#   c6: no transaction at all -> like c3
FROM_TRANSACTIONS = pd.DataFrame(
    {
        "recency": [0, 29, 30, 1],
        "frequency": [3, 1, 0, 1],
        "monetary": [35.0, 40.0, 0.0, 7.0],
    },
    index=pd.Index(["c1", "c2", "c3", "c4"], name="customer_id"),
)


def test_rfm_from_transactions_by_hand() -> None:
    result = rfm_from_transactions(transactions(), "2024-03-31", window_days=30)
    # c5 buys only after as_of, so it is not among the default customers
    pd.testing.assert_frame_equal(result, FROM_TRANSACTIONS, check_index_type=False)
    assert result.dtypes.to_dict() == {
        "recency": np.dtype("int64"),
        "frequency": np.dtype("int64"),
        "monetary": np.dtype("float64"),
    }


def test_rfm_from_transactions_keeps_listed_customers_without_transactions() -> None:
    customers = ["c6", "c4", "c1", "c5", "c3", "c2"]
    result = rfm_from_transactions(
        transactions(), pd.Timestamp("2024-03-31"), window_days=30, customers=customers
    )
    assert list(result.index) == customers
    assert result.loc["c6"].tolist() == [30, 0, 0.0]
    assert result.loc["c5"].tolist() == [30, 0, 0.0]
    pd.testing.assert_frame_equal(
        result.loc[["c1", "c2", "c3", "c4"]], FROM_TRANSACTIONS, check_index_type=False
    )
    # ready for scoring: the non-buyers have the worst recency, frequency and spend
    scores = rfm_scores(result, "recency", "frequency", "monetary", 3)
    assert (scores.loc[["c3", "c5", "c6"]] == 1).all(axis=None)


def test_rfm_from_transactions_counts_days_and_means() -> None:
    by_days = rfm_from_transactions(
        transactions(), "2024-03-31", window_days=30, frequency="days", monetary="mean"
    )
    assert by_days["frequency"].to_dict() == {"c1": 2, "c2": 1, "c3": 0, "c4": 1}
    # mean = total / frequency: c1 spent 35 on 2 days
    assert by_days["monetary"].to_dict() == {"c1": 17.5, "c2": 40.0, "c3": 0.0, "c4": 7.0}
    per_purchase = rfm_from_transactions(
        transactions(), "2024-03-31", window_days=30, monetary="mean"
    )
    assert per_purchase.loc["c1", "monetary"] == pytest.approx(35 / 3)
    assert per_purchase.loc["c3", "monetary"] == 0.0


def test_the_default_window_is_180_days() -> None:
    result = rfm_from_transactions(transactions(), "2024-03-31")
    # c2's purchase of 03-01 and c3's of 02-01 are now in the window
    assert result.loc["c2"].tolist() == [29, 2, 140.0]
    assert result.loc["c3"].tolist() == [59, 1, 50.0]


def with_column(name: str, values: list[object]) -> pd.DataFrame:
    frame = transactions()
    frame[name] = values + [values[-1]] * (len(frame) - len(values))
    return frame


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (transactions().drop(columns="amount"), ["amount", "no such column", "customer_id"]),
        (
            transactions().assign(date=lambda t: t["date"].dt.strftime("%Y-%m-%d")),
            ["'date'", "dates (datetime64)", "found dtype"],
        ),
        (with_column("date", [pd.NaT, pd.Timestamp("2024-03-01")]), ["'date'", "1 missing"]),
        (with_column("amount", [-5.0, 1.0]), ["'amount'", "at least 0", "1 negative"]),
        (with_column("amount", [np.nan, 1.0]), ["'amount'", "finite", "1 missing or infinite"]),
        (with_column("amount", ["12", "1"]), ["'amount'", "numeric", "found dtype"]),
        (with_column("amount", [True, False]), ["'amount'", "numeric", "found dtype bool"]),
        (with_column("customer_id", [None, "c1"]), ["'customer_id'", "1 rows without one"]),
    ],
    ids=[
        "missing column",
        "text dates",
        "missing date",
        "negative amount",
        "missing amount",
        "text amount",
        "boolean amount",
        "missing id",
    ],
)
def test_bad_transactions_are_refused(frame: pd.DataFrame, expected: list[str]) -> None:
    with pytest.raises(DataError) as info:
        rfm_from_transactions(frame, "2024-03-31")
    message = str(info.value)
    for snippet in expected:
        assert snippet in message, f"{snippet!r} not in: {message}"
    assert "\n" not in message


def test_repeated_customers_are_refused() -> None:
    with pytest.raises(DataError, match=r"each id once.*'c1'"):
        rfm_from_transactions(transactions(), "2024-03-31", customers=["c1", "c2", "c1"])


def test_time_zones_must_agree() -> None:
    frame = transactions().assign(date=lambda t: t["date"].dt.tz_localize("UTC"))
    with pytest.raises(DataError, match="time zone"):
        rfm_from_transactions(frame, "2024-03-31")
    aware = rfm_from_transactions(frame, pd.Timestamp("2024-03-31", tz="UTC"), window_days=30)
    assert aware["recency"].tolist() == FROM_TRANSACTIONS["recency"].tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequency": "orders"}, "frequency must be 'purchases' or 'days'"),
        ({"monetary": "median"}, "monetary must be 'total' or 'mean'"),
        ({"window_days": 0}, "window_days must be a whole number of days >= 1"),
        ({"as_of": "not a date"}, "as_of must be a date"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"as_of": "2024-03-31", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        rfm_from_transactions(transactions(), **arguments)  # type: ignore[arg-type]


# --- the spec's RFM keys ------------------------------------------------------------------

RFM_BLOCK = """\
  segments: rfm
  rfm:
    bins: 3
    bounds:
      recency: [5, 20]
      frequency: [0, 2]
    rules:
      - {name: Big spenders, m: [3, 3]}
      - {name: Frequent, f: [3, 3]}
      - {name: Lapsed, r: [1, 1], f: [2, 3]}
      - {name: New, r: [3, 3], f: [1, 1]}
    default: Unsorted
"""


def spec_with(block: str, tmp_path: Path) -> tuple[Path, str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count("  segments: rfm\n") == 1
    text = text.replace("  segments: rfm\n", block)
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def test_the_spec_reads_bounds_rules_and_default(tmp_path: Path) -> None:
    path, text = spec_with(RFM_BLOCK, tmp_path)
    rfm = load_spec(path).value.rfm
    assert rfm.bounds == {"recency": [5.0, 20.0], "frequency": [0.0, 2.0]}
    assert rfm.default == "Unsorted"
    assert rfm.rules is not None
    assert [rule.name for rule in rfm.rules] == [rule.name for rule in CUSTOM_RULES]
    assert rfm.rules[2].r == (1, 1) and rfm.rules[2].f == (2, 3) and rfm.rules[2].m is None
    # the spec's rules and bounds drive rfm_scores and rfm_segments as they are
    scores = twelve_scores(bounds=rfm.bounds)
    assert list(scores["R"]) == list(BOUNDED["R"])
    assert list(scores["M"]) == list(RANKED["M"])
    expected = rfm_segments(scores, 3, rules=CUSTOM_RULES, default="Unsorted")
    pd.testing.assert_series_equal(
        rfm_segments(scores, rfm.bins, rules=rfm.rules, default=rfm.default), expected
    )
    # the live JSON Schema takes the new keys too
    jsonschema.validate(yaml.safe_load(text), spec_json_schema())


def test_the_spec_defaults_are_todays_behaviour() -> None:
    rfm = load_spec(EXAMPLE).value.rfm
    assert (rfm.bins, rfm.bounds, rfm.rules, rfm.default) == (3, {}, None, "Other")


def rfm_block(inner: str) -> str:
    return "  segments: rfm\n  rfm:\n" + "".join(f"    {line}\n" for line in inner.splitlines())


@pytest.mark.parametrize(
    ("inner", "key", "snippets", "line"),
    [
        (
            "bounds: {recency: [30, 90, 60]}\nbins: 4",
            "value.rfm.bounds.recency.2",
            ["strictly increasing", "90.0 then 60.0"],
            "bounds:",
        ),
        (
            "bounds:\n  frequency: [1]",
            "value.rfm.bounds.frequency",
            ["3 scores (bins) need 2 cut points, found 1"],
            "frequency: [1]",
        ),
        (
            "bounds: {monetary: [10, .inf]}",
            "value.rfm.bounds.monetary.1",
            ["finite", "inf"],
            "bounds:",
        ),
        ("bounds: {recncy: [1, 2]}", "value.rfm.bounds.recncy", ["'recency'"], "bounds:"),
        (
            "rules:\n  - {name: A, r: [1, 3]}\n  - {name: B, f: [2, 4]}",
            "value.rfm.rules.1.f",
            ["1 <= lo <= hi <= 3 (bins)", "found [2, 4]"],
            "{name: B",
        ),
        (
            "rules:\n  - {name: A, m: [0, 1]}",
            "value.rfm.rules.0.m",
            ["found [0, 1]"],
            "{name: A",
        ),
        (
            "rules:\n  - {name: A, r: [3, 1]}",
            "value.rfm.rules.0.r",
            ["found [3, 1]"],
            "{name: A",
        ),
        (
            "rules:\n  - {name: A, r: [1, 2, 3]}",
            "value.rfm.rules.0.r",
            ["at most 2 items"],
            "{name: A",
        ),
        (
            "rules:\n  - {name: '', r: [1, 1]}",
            "value.rfm.rules.0.name",
            ["needs a name", "''"],
            "{name: ''",
        ),
        (
            "rules:\n  - {name: A, r: [1, 1]}\n  - {name: B}\n  - {name: A, f: [3, 3]}",
            "value.rfm.rules.2.name",
            ["'A' is already the name of rule 0"],
            "f: [3, 3]}",
        ),
        (
            "rules:\n  - {name: A, x: [1, 1]}",
            "value.rfm.rules.0.x",
            ["unknown key"],
            "{name: A",
        ),
        ("rules: []", "value.rfm.rules", ["at least 1 item"], "rules: []"),
        (
            "as_of: 2024-01-01",
            "value.rfm.as_of",
            ["as_of goes with transactions", "found none"],
            "as_of:",
        ),
        (
            "transactions: {kind: csv, path: t.csv}\nrecency: days_since",
            "value.rfm.recency",
            ["come from the purchases", "'days_since'"],
            "recency: days_since",
        ),
        (
            "transactions: {kind: csv, path: t.csv}\ncount: orders",
            "value.rfm.count",
            ["'purchases' or 'days'"],
            "count: orders",
        ),
        ("default: ''", "value.rfm.default", ["at least 1 character"], "default: ''"),
    ],
    ids=[
        "bounds not increasing",
        "bounds count",
        "bounds infinite",
        "bounds unknown dimension",
        "rule above bins",
        "rule below 1",
        "rule lo above hi",
        "rule three scores",
        "rule empty name",
        "rule duplicate name",
        "rule unknown key",
        "no rules",
        "empty default",
        "as_of without transactions",
        "transactions and a column",
        "transactions count unknown",
    ],
)
def test_the_spec_refuses_bad_rfm_keys_naming_the_key_path(
    inner: str, key: str, snippets: list[str], line: str, tmp_path: Path
) -> None:
    path, text = spec_with(rfm_block(inner), tmp_path)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert f"key {key!r}" in message, message
    for snippet in snippets:
        assert snippet in message, f"{snippet!r} not in: {message}"
    lines = [i for i, text_line in enumerate(text.splitlines(), 1) if line in text_line]
    assert len(lines) == 1
    assert re.search(rf"\bline {lines[0]}\b", message), message
    assert "\n" not in message


# --- RFM from the transactions the spec names ------------------------------------------


def _transactions_spec(tmp_path: Path, rfm: dict[str, Any], **value: Any) -> Any:
    """The trial-lessons example on 3,000 simulated customers, its segments scored from a
    transactions file; ``value`` sets other keys of ``value`` (its migration left out)."""
    from uplift.spec import ExperimentSpec

    config = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    config["population"]["source"]["n"] = 3000
    config["ledger"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    del config["value"]["migration"]
    config["value"]["rfm"] = {
        "transactions": {"kind": "csv", "path": str(tmp_path / "t.csv"), "amount": "paid"},
        **rfm,
    }
    config["value"].update(value)
    return ExperimentSpec.model_validate(config)


def _history(ids: Sequence[str], end: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """Purchases of every other customer over the 400 days to ``end`` (text dates)."""
    rng = np.random.default_rng(seed)
    buyers = np.asarray(ids)[::2]
    n = 6 * len(buyers)
    days = end - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    return pd.DataFrame(
        {
            "customer_id": rng.choice(buyers, n),
            "date": days.strftime("%Y-%m-%d"),
            "paid": np.round(rng.gamma(2.0, 20.0, n), 2),
        }
    )


def _launch_day(spec: Any) -> pd.Timestamp:
    """The day the ledger says the (simulated) experiment launched."""
    from uplift import pipeline

    ledger = pipeline.open_ledger(spec)
    with ledger.engine.begin() as conn:
        record = ledger.latest(conn, spec.name)
    assert record is not None
    return pd.Timestamp(record.launched_at.date())


def test_segments_come_from_the_transactions_as_of_the_day_before_launch(
    tmp_path: Path,
) -> None:
    from uplift import pipeline

    spec = _transactions_spec(tmp_path, {"window_days": 120})
    # purchases of nobody in the look-back would freeze every customer at the lowest level:
    # the (simulated) launch is refused and records nothing
    (tmp_path / "t.csv").write_text(
        "customer_id,date,paid\nnobody,2020-01-01,5\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as refused:
        pipeline.prepare(spec)
    assert str(refused.value).startswith("value.rfm.transactions: transactions file ")
    assert "no purchase falls in the 120 days to " in str(refused.value)
    assert "(the purchases run from 2020-01-01 to 2020-01-01); nothing was launched" in str(
        refused.value
    )
    ledger = pipeline.open_ledger(spec)
    with ledger.engine.begin() as conn:
        assert ledger.latest(conn, spec.name) is None
    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    ids = [f"c{i}" for i in range(1, 3001)]
    history = _history(ids, today + pd.Timedelta(days=10))
    history.to_csv(tmp_path / "t.csv", index=False)

    data = pipeline.prepare(spec)
    launch = _launch_day(spec)

    # the reference: rfm_from_transactions on the parsed file, as of the day before launch
    parsed = history.assign(date=pd.to_datetime(history["date"]))
    keys = data.frame[spec.population.id].astype(str)
    reference = rfm_from_transactions(
        parsed,
        launch - pd.Timedelta(days=1),
        amount_column="paid",
        customers=pd.Index(keys),
        window_days=120,
    )
    assert data.rfm is not None
    assert data.rfm.index.equals(data.frame.index)
    np.testing.assert_array_equal(data.rfm.to_numpy(), reference.to_numpy())
    # purchases on and after the launch day count for nobody
    late = parsed[parsed["date"] >= launch]
    assert len(late) > 0
    assert int(data.rfm["frequency"].sum()) == int(
        ((parsed["date"] < launch) & (parsed["date"] >= launch - pd.Timedelta(days=120)))
        .groupby(parsed["customer_id"])
        .sum()
        .reindex(keys.to_numpy(), fill_value=0)
        .sum()
    )
    # the segments are the named segments of those scores, not of the feature columns
    segments = pipeline.segment_labels(spec, data.frame, data.rfm)
    expected = rfm_segments(rfm_scores(reference, "recency", "frequency", "monetary", 3), 3)
    np.testing.assert_array_equal(segments.to_numpy(), expected.to_numpy())
    plain = spec.value.model_copy(update={"rfm": type(spec.value.rfm)()})
    from_features = pipeline.segment_labels(spec.model_copy(update={"value": plain}), data.frame)
    assert not np.array_equal(segments.to_numpy(), from_features.to_numpy())
    with pytest.raises(ValueError, match="rfm_from_purchases"):
        pipeline.segment_labels(spec, data.frame)


def test_an_explicit_as_of_counts_days_and_means_and_must_fall_before_launch(
    tmp_path: Path,
) -> None:
    from uplift import pipeline

    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    ids = [f"c{i}" for i in range(1, 3001)]
    history = _history(ids, today, seed=1)
    history.to_csv(tmp_path / "t.csv", index=False)
    as_of = today - pd.Timedelta(days=30)
    settings = {"as_of": str(as_of.date()), "count": "days", "spend": "mean"}
    spec = _transactions_spec(tmp_path, settings)
    data = pipeline.prepare(spec)
    launch = _launch_day(spec)
    assert data.rfm is not None
    reference = rfm_from_transactions(
        history.assign(date=pd.to_datetime(history["date"])),
        as_of,
        amount_column="paid",
        customers=pd.Index(data.frame[spec.population.id].astype(str)),
        frequency="days",
        monetary="mean",
    )
    np.testing.assert_array_equal(data.rfm.to_numpy(), reference.to_numpy())

    # an as_of on the launch day would count the campaign's own purchases
    on_launch = _transactions_spec(tmp_path, {"as_of": str(launch.date())})
    with pytest.raises(DataError, match=r"value\.rfm\.as_of: .*before the launch on"):
        pipeline.prepare(on_launch)


def test_transaction_dates_that_are_not_dates_are_named(tmp_path: Path) -> None:
    from uplift import pipeline

    spec = _transactions_spec(tmp_path, {})
    pd.DataFrame(
        {"customer_id": ["c1", "c2", "c3"], "date": ["2024-01-02", "soon", "later"], "paid": 1.0}
    ).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError) as info:
        pipeline.prepare(spec)
    message = str(info.value)
    assert message.startswith("value.rfm.transactions: transactions file ")
    # the same parser as the baseline's purchases: ISO 8601 text or dates
    assert "date column 'date' must hold a date or an ISO 8601 string" in message
    assert "found 2 rows without one (for example 'soon', 'later')" in message


def test_an_observed_experiment_needs_a_day_to_end_the_look_back(tmp_path: Path) -> None:
    from uplift import pipeline
    from uplift.spec import ExperimentSpec

    rng = np.random.default_rng(3)
    n = 600
    population = pd.DataFrame(
        {
            "customer_id": [f"k{i}" for i in range(n)],
            "arm": rng.choice(["none", "mail"], n),
            "spend": rng.gamma(1.0, 10.0, n),
            "x": rng.normal(size=n),
        }
    )
    population.to_csv(tmp_path / "population.csv", index=False)
    _history(list(population["customer_id"]), pd.Timestamp("2024-05-01")).to_csv(
        tmp_path / "t.csv", index=False
    )
    config = {
        "name": "observed-rfm",
        "hypothesis": {"kind": "custom", "statement": "Mail sells.", "owner": "crm@example.com"},
        "population": {
            "source": {"kind": "csv", "path": str(tmp_path / "population.csv")},
            "id": "customer_id",
            "features": ["x"],
        },
        "assignment": {"column": "arm", "control": "none"},
        "outcomes": {
            "window_days": 14,
            "metrics": {"spend": {"column": "spend", "kind": "continuous"}},
            "primary": "spend",
        },
        "value": {
            "rfm": {
                "transactions": {"kind": "csv", "path": str(tmp_path / "t.csv"), "amount": "paid"}
            },
        },
    }
    spec = ExperimentSpec.model_validate(config)
    with pytest.raises(DataError, match=r"value\.rfm\.as_of: .*no launch date"):
        pipeline.prepare(spec)
    # the campaign's start is enough: the look-back ends the day before
    config["assignment"]["launched"] = "2024-04-01"
    data = pipeline.prepare(ExperimentSpec.model_validate(config))
    assert data.rfm is not None
    parsed = pd.read_csv(tmp_path / "t.csv", parse_dates=["date"])
    reference = rfm_from_transactions(
        parsed, "2024-03-31", amount_column="paid", customers=pd.Index(data.frame["customer_id"])
    )
    np.testing.assert_array_equal(data.rfm.to_numpy(), reference.to_numpy())


@pytest.mark.parametrize(
    ("value", "key", "snippet"),
    [
        ({"segments": "plan"}, "value.rfm.transactions", "segments is 'plan'"),
        (
            {"migration": {"recency": "r", "frequency": "f", "monetary": "m"}},
            "value.migration.recency",
            "scored from the purchases too; leave out the column recency: 'r'",
        ),
    ],
    ids=["segments from a column", "migration columns too"],
)
def test_rfm_from_transactions_refuses_what_it_cannot_serve(
    value: dict[str, Any], key: str, snippet: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    config["value"].pop("migration")
    config["value"]["rfm"] = {"transactions": {"kind": "csv", "path": "t.csv"}}
    config["value"].update(value)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert f"key {key!r}" in str(info.value)
    assert snippet in str(info.value)


def test_migration_without_transactions_needs_its_end_of_window_columns(tmp_path: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    config["value"]["migration"].pop("monetary")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "key 'value.migration.monetary'" in str(info.value)
    assert "end-of-window monetary column" in str(info.value)


def test_migration_scores_the_purchases_again_on_the_windows_last_day(tmp_path: Path) -> None:
    from uplift import pipeline
    from uplift.value.migration import migration

    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    ids = [f"c{i}" for i in range(1, 3001)]
    # the outcome window is the example's 60 days: its last day is launch + 59
    history = _history(ids, today + pd.Timedelta(days=57), seed=2)
    history.to_csv(tmp_path / "t.csv", index=False)
    spec = _transactions_spec(tmp_path, {"window_days": 90}, migration={"dimensions": ["M"]})
    with pytest.raises(DataError, match=r"window's last day, .*but the purchases end on"):
        pipeline.prepare(spec)
    launch = _launch_day(spec)
    # the export after the window: the same purchases, and those of the days since
    later = _history(ids, launch + pd.Timedelta(days=70), seed=3)
    later = later[pd.to_datetime(later["date"]) > today + pd.Timedelta(days=57)]
    history = pd.concat([history, later], ignore_index=True)
    history.to_csv(tmp_path / "t.csv", index=False)

    data = pipeline.prepare(spec)

    parsed = history.assign(date=pd.to_datetime(history["date"]))
    customers = pd.Index(data.frame[spec.population.id].astype(str))
    at = {
        "launch": launch - pd.Timedelta(days=1),
        "end": launch + pd.Timedelta(days=59),
    }
    reference = {
        name: rfm_from_transactions(
            parsed, day, amount_column="paid", customers=customers, window_days=90
        ).set_axis(data.frame.index)
        for name, day in at.items()
    }
    assert data.rfm is not None and data.end_of_window is not None
    pd.testing.assert_frame_equal(data.rfm, reference["launch"])
    pd.testing.assert_frame_equal(data.end_of_window, reference["end"])
    moved = pipeline.segment_migration(spec, data)
    assert moved is not None
    expected = migration(
        reference["launch"],
        reference["end"],
        data.arms,
        data.control,
        data.treatments,
        recency="recency",
        frequency="frequency",
        monetary="monetary",
        dimensions=["M"],
    )
    pd.testing.assert_frame_equal(moved.moves.to_frame(), expected.moves.to_frame())
    pd.testing.assert_frame_equal(moved.transitions.to_frame(), expected.transitions.to_frame())
    assert set(moved.moves.to_frame()["dimension"]) == {"M"}


def test_the_launch_freezes_r_f_and_m_so_an_edited_history_moves_nobody(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    from uplift import pipeline
    from uplift.purchase_rfm import FROZEN_COLUMNS, METADATA_KEY

    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    ids = [f"c{i}" for i in range(1, 3001)]
    history = _history(ids, today + pd.Timedelta(days=70), seed=4)
    history.to_csv(tmp_path / "t.csv", index=False)
    spec = _transactions_spec(tmp_path, {"window_days": 90}, migration={"dimensions": ["M"]})

    first = pipeline.prepare(spec)

    launch = _launch_day(spec)
    ledger = pipeline.open_ledger(spec)
    with ledger.engine.begin() as conn:
        record = ledger.latest(conn, spec.name)
        assert record is not None
        (batch,) = ledger.batches(conn, record.id)
    schema = pq.read_schema(ledger.snapshots / batch.snapshot_path)
    assert set(FROZEN_COLUMNS.values()) <= set(schema.names)
    assert json.loads(schema.metadata[METADATA_KEY]) == {
        "as_of": str((launch - pd.Timedelta(days=1)).date()),
        "window_days": 90,
        "count": "purchases",
        "spend": "total",
        "path": str(tmp_path / "t.csv"),
    }
    # the frozen values are rfm_from_transactions' on the file as it was at launch
    keys = first.frame[spec.population.id].astype(str)
    reference = rfm_from_transactions(
        history.assign(date=pd.to_datetime(history["date"])),
        launch - pd.Timedelta(days=1),
        amount_column="paid",
        customers=pd.Index(keys),
        window_days=90,
    ).set_axis(first.frame.index)
    assert first.rfm is not None
    pd.testing.assert_frame_equal(first.rfm, reference)
    as_of = str((launch - pd.Timedelta(days=1)).date())
    assert first.rfm_source == {
        "source": "launch snapshot",
        "as_of": as_of,
        "why_file": None,
        "changed_since_launch": 0,
    }

    # the history before launch edited: a customer without purchases gets three of 50
    quiet = keys[first.rfm["frequency"] == 0].iloc[0]
    day = (launch - pd.Timedelta(days=5)).strftime("%Y-%m-%d")
    added = pd.DataFrame({"customer_id": [quiet] * 3, "date": day, "paid": 50.0})
    pd.concat([history, added], ignore_index=True).to_csv(tmp_path / "t.csv", index=False)
    lines: list[str] = []

    again = pipeline.prepare(spec, report=lines.append)

    assert again.rfm is not None
    pd.testing.assert_frame_equal(again.rfm, first.rfm)
    assert (
        "value.rfm.transactions: the purchases before launch now give other R, F or M than "
        f"were frozen at launch for 1 customers (customer {quiet!r}: frozen [90.0, 0.0, 0.0], "
        "now [4.0, 3.0, 150.0]); the analysis uses the frozen values"
    ) in lines
    assert not any("scored from the purchases file" in line for line in lines)
    assert again.rfm_source is not None and again.rfm_source["changed_since_launch"] == 1


@pytest.mark.parametrize(
    ("at_launch", "reason"),
    [
        (
            None,
            "the launch snapshot has none frozen (launched before value.rfm.transactions was "
            "set, or by an earlier version of uplift)",
        ),
        (
            {"window_days": 120},
            "the spec's look-back differs from the launch's (window_days 120 at launch, 90 now)",
        ),
    ],
    ids=["launched without transactions", "launched with another look-back"],
)
def test_r_f_and_m_not_frozen_under_the_specs_look_back_are_scored_from_the_file(
    at_launch: dict[str, Any] | None, reason: str, tmp_path: Path
) -> None:
    from uplift import pipeline

    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    history = _history([f"c{i}" for i in range(1, 3001)], today + pd.Timedelta(days=10), seed=5)
    history.to_csv(tmp_path / "t.csv", index=False)
    spec = _transactions_spec(tmp_path, {"window_days": 90})
    if at_launch is None:
        launched = spec.model_copy(
            update={"value": spec.value.model_copy(update={"rfm": type(spec.value.rfm)()})}
        )
    else:
        launched = _transactions_spec(tmp_path, at_launch)
    pipeline.assign(launched, pipeline.open_ledger(launched))
    lines: list[str] = []

    data = pipeline.prepare(spec, report=lines.append)

    assert f"value.rfm: R, F and M at launch scored from the purchases file: {reason}" in lines
    reference = rfm_from_transactions(
        history.assign(date=pd.to_datetime(history["date"])),
        _launch_day(spec) - pd.Timedelta(days=1),
        amount_column="paid",
        customers=pd.Index(data.frame[spec.population.id].astype(str)),
        window_days=90,
    )
    assert data.rfm is not None
    np.testing.assert_array_equal(data.rfm.to_numpy(), reference.to_numpy())
    assert data.rfm_source == {
        "source": "purchases file",
        "as_of": str((_launch_day(spec) - pd.Timedelta(days=1)).date()),
        "why_file": reason,
        "changed_since_launch": None,
    }


def test_a_base_column_named_as_a_frozen_value_is_refused_and_nothing_launched(
    tmp_path: Path,
) -> None:
    from uplift import pipeline
    from uplift.errors import AssignmentError

    today = pd.Timestamp(pd.Timestamp.now(tz="UTC").date())
    ids = [f"c{i}" for i in range(1, 501)]
    _history(ids, today, seed=6).to_csv(tmp_path / "t.csv", index=False)
    spec = _transactions_spec(tmp_path, {})
    base = pd.DataFrame(
        {
            "customer_id": ids,
            "applied_premium": 1,
            "bought_premium_before": 0,
            "uplift_rfm_monetary": 1.0,
            **{f: 1.0 for f in ["recency_days", "frequency_180d", "monetary_180d", "tenure_days"]},
            "plan": "free",
        }
    )
    ledger = pipeline.open_ledger(spec)
    with pytest.raises(AssignmentError) as info:
        pipeline.assign(spec, ledger, population=(base, None, "population file"))
    assert str(info.value) == (
        "population: the column name 'uplift_rfm_monetary' is reserved for a value the launch "
        "snapshot freezes; rename that column of the population."
    )
    with ledger.engine.begin() as conn:
        assert ledger.latest(conn, spec.name) is None
    assert not list(ledger.snapshots.rglob("*.parquet*"))


def test_a_spec_with_every_default_written_out_reads_again(tmp_path: Path) -> None:
    # uplift score and the tests write a spec back with model_dump: defaults included
    from uplift.spec import ExperimentSpec

    plain = load_spec(EXAMPLE)
    assert ExperimentSpec.model_validate(plain.model_dump()) == plain
    spec = _transactions_spec(tmp_path, {"as_of": "2024-03-31"}, migration={"dimensions": ["M"]})
    again = ExperimentSpec.model_validate(spec.model_dump())
    assert again == spec
    assert again.value.rfm.as_of is not None and again.value.rfm.window_days == 180
