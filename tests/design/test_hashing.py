"""Tests of uplift.design.hashing.

The reference bucket is recomputed here with hashlib from the documented algorithm
(SHA-256 of ``"salt:id"``, first eight bytes big-endian, modulo 10,000); uniformity and
arm shares are checked with scipy's chi-square goodness-of-fit test.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from uplift.design.hashing import (
    GLOBAL_HOLDOUT,
    GLOBAL_HOLDOUT_SALT,
    assign_arms,
    bucket_of,
    buckets,
)
from uplift.spec import BUCKETS

WEIGHTS = {"control": 0.2, "a": 0.4, "b": 0.4}
SALT = "edtech-trial-2026-11"

ids_strategy = st.lists(
    st.one_of(st.integers(min_value=0, max_value=10**12), st.text(min_size=1, max_size=12)),
    min_size=1,
    max_size=40,
    unique_by=str,
)


def _reference_bucket(customer_id: str, salt: str) -> int:
    # independent reference: the algorithm as documented, written out with hashlib
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], byteorder="big", signed=False) % 10_000


def _expected_arm(bucket: int, weights: dict[str, float]) -> str:
    # arms own consecutive bucket ranges in spec order: [0, w1 * 10000), [w1 * 10000, ...)
    upper = 0
    for arm, weight in weights.items():
        upper += round(weight * 10_000)
        if bucket < upper:
            return arm
    raise AssertionError("weights do not cover all buckets")


def test_buckets_count_is_ten_thousand() -> None:
    assert BUCKETS == 10_000


def test_bucket_of_matches_an_independent_hashlib_reference() -> None:
    for customer_id in ["c1", "c42", "42", "ü-kunde", "customer with spaces"]:
        assert bucket_of(customer_id, SALT) == _reference_bucket(customer_id, SALT)
    # one value written out: sha256(b"my-salt:c1") starts with bytes whose big-endian
    # integer modulo 10000 is computed below by hand with hashlib, not by the product code
    digest = hashlib.sha256(b"my-salt:c1").digest()
    assert bucket_of("c1", "my-salt") == int(digest[:8].hex(), 16) % 10_000


def test_bucket_depends_on_the_salt() -> None:
    ids = [f"c{i}" for i in range(200)]
    a = [bucket_of(i, "salt-a") for i in ids]
    b = [bucket_of(i, "salt-b") for i in ids]
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 5


def test_buckets_agree_with_bucket_of_for_text_and_integer_ids() -> None:
    text_ids = pd.Series([f"c{i}" for i in range(500)])
    int_ids = pd.Series(np.arange(1000, 1500, dtype=np.int64))
    for ids in (text_ids, int_ids):
        many = buckets(ids, SALT)
        assert many.shape == (len(ids),)
        assert list(many) == [bucket_of(i, SALT) for i in ids]
        assert ((many >= 0) & (many < BUCKETS)).all()
    # an integer id and its text form are the same customer
    assert list(buckets(int_ids, SALT)) == list(buckets(int_ids.astype(str), SALT))


def test_assignment_is_deterministic_and_keeps_the_index() -> None:
    ids = pd.Series([f"c{i}" for i in range(2000)], index=np.arange(7, 2007) * 3)
    first = assign_arms(ids, SALT, WEIGHTS, global_holdout=0.05)
    second = assign_arms(ids.copy(), SALT, dict(WEIGHTS), global_holdout=0.05)
    pd.testing.assert_series_equal(first, second)
    assert first.index.equals(ids.index)
    assert first.name == "arm"
    assert set(first) <= {*WEIGHTS, GLOBAL_HOLDOUT}


@settings(max_examples=40, deadline=None)
@given(ids=ids_strategy, data=st.data())
def test_arm_is_independent_of_row_order_and_of_other_customers(
    ids: list[object], data: st.DataObject
) -> None:
    series = pd.Series(ids, dtype=object)
    full = assign_arms(series, SALT, WEIGHTS, global_holdout=0.1)
    full_by_id = dict(zip(map(str, ids), full, strict=True))

    order = data.draw(st.permutations(range(len(ids))))
    shuffled = series.iloc[list(order)].reset_index(drop=True)
    reordered = assign_arms(shuffled, SALT, WEIGHTS, global_holdout=0.1)
    assert dict(zip(map(str, shuffled), reordered, strict=True)) == full_by_id

    keep = data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    subset = series[np.asarray(keep, dtype=bool)]
    alone = assign_arms(subset, SALT, WEIGHTS, global_holdout=0.1)
    assert all(full_by_id[str(i)] == arm for i, arm in zip(subset, alone, strict=True))

    # and buckets agree with bucket_of one by one
    assert list(buckets(series, SALT)) == [bucket_of(i, SALT) for i in ids]


@pytest.mark.parametrize(
    "weights",
    [
        WEIGHTS,
        {"a": 0.4, "control": 0.2, "b": 0.4},  # another order: other ranges
        {"control": 0.3333, "a": 0.3333, "b": 0.3334},
        {"control": 0.5, "treated": 0.5},
    ],
)
def test_bucket_ranges_follow_the_weights_in_spec_order(weights: dict[str, float]) -> None:
    ids = pd.Series([f"user-{i}" for i in range(5000)])
    arms = assign_arms(ids, SALT, weights)
    expected = [_expected_arm(bucket_of(i, SALT), weights) for i in ids]
    assert list(arms) == expected


def test_arm_boundaries_are_half_open() -> None:
    # find ids whose buckets sit exactly on the edges 1999/2000 and 5999/6000
    edges = {1999: "control", 2000: "a", 5999: "a", 6000: "b"}
    found: dict[int, str] = {}
    i = 0
    while len(found) < len(edges):
        customer = f"edge-{i}"
        b = _reference_bucket(customer, SALT)
        if b in edges and b not in found:
            found[b] = customer
        i += 1
    ids = pd.Series([found[b] for b in sorted(found)])
    arms = assign_arms(ids, SALT, WEIGHTS)
    assert list(arms) == [edges[b] for b in sorted(found)]


@pytest.fixture(scope="module")
def big_base() -> pd.Series:
    return pd.Series([f"c{i}" for i in range(200_000)])


def test_buckets_are_uniform_over_a_large_base(big_base: pd.Series) -> None:
    b = buckets(big_base, SALT)
    # 100 groups of 100 buckets: 2,000 customers expected in each
    observed = np.bincount(b // 100, minlength=100)
    # reference test: scipy.stats.chisquare, uniform expectation
    assert stats.chisquare(observed).pvalue > 0.001


def test_arm_shares_match_the_weights_over_a_large_base(big_base: pd.Series) -> None:
    arms = assign_arms(big_base, SALT, WEIGHTS)
    observed = [int((arms == arm).sum()) for arm in WEIGHTS]
    expected = [len(big_base) * w for w in WEIGHTS.values()]
    # reference test: scipy.stats.chisquare against the configured weights
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_global_holdout_share_and_membership_do_not_depend_on_the_salt(
    big_base: pd.Series,
) -> None:
    share, base = 0.05, big_base.iloc[:50_000]
    first = assign_arms(base, "campaign-one", WEIGHTS, global_holdout=share)
    second = assign_arms(base, "campaign-two", {"control": 0.5, "x": 0.5}, share)
    held_first = (first == GLOBAL_HOLDOUT).to_numpy()
    held_second = (second == GLOBAL_HOLDOUT).to_numpy()
    # the same customers are held out of every campaign
    np.testing.assert_array_equal(held_first, held_second)
    # exactly those whose holdout bucket (under the programme-wide salt) is below 500
    reference = np.array([_reference_bucket(i, GLOBAL_HOLDOUT_SALT) < 500 for i in base])
    np.testing.assert_array_equal(held_first, reference)
    # Binomial(50000, 0.05): sd = sqrt(0.05 * 0.95 / 50000) = 0.097 points; allow 4.5 sd
    assert abs(held_first.mean() - share) < 4.5 * np.sqrt(share * (1 - share) / len(base))


def test_global_holdout_does_not_move_anyone_else(big_base: pd.Series) -> None:
    ids = big_base.iloc[:20_000]
    without = assign_arms(ids, SALT, WEIGHTS)
    with_holdout = assign_arms(ids, SALT, WEIGHTS, global_holdout=0.1)
    kept = (with_holdout != GLOBAL_HOLDOUT).to_numpy()
    assert 0.08 < 1 - kept.mean() < 0.12
    pd.testing.assert_series_equal(with_holdout[kept], without[kept])
    # the holdout cuts across arms: every arm loses customers to it
    lost = without[~kept].value_counts()
    assert set(lost.index) == set(WEIGHTS)
