"""Tests of uplift.design.hashing.

The reference bucket is recomputed here by an independent, pure-Python XXH64 written from
the algorithm's specification (Yann Collet, xxHash, ``doc/xxhash_spec.md``) and checked
against the specification's published test values; uniformity and arm shares are checked
with scipy's chi-square goodness-of-fit test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from uplift.design.hashing import (
    GLOBAL_HOLDOUT,
    GLOBAL_HOLDOUT_SALT,
    arm_ranges,
    assign_arms,
    bucket_of,
    buckets,
    layer_salt,
)
from uplift.design.xxh64 import xxh64
from uplift.spec import BUCKETS

WEIGHTS = {"control": 0.2, "a": 0.4, "b": 0.4}
SALT = "edtech-trial-2026-11"

ids_strategy = st.lists(
    st.one_of(st.integers(min_value=0, max_value=10**12), st.text(min_size=1, max_size=12)),
    min_size=1,
    max_size=40,
    unique_by=str,
)

_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5, _MASK = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5, (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _MASK, 31) * _P1) & _MASK


def _xxh64(data: bytes, seed: int = 0) -> int:
    # a plain transcription of the XXH64 specification, independent of the xxhash package
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _MASK, (seed + _P2) & _MASK, seed, (seed - _P1) & _MASK]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i + 8 * k : i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _MASK
        for k in range(4):
            h = (((h ^ _round(0, v[k])) * _P1) + _P4) & _MASK
    else:
        h = (seed + _P5) & _MASK
    h = (h + n) & _MASK
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _MASK
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * _P1) & _MASK
        h = (_rotl(h, 23) * _P2 + _P3) & _MASK
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _MASK
        h = (_rotl(h, 11) * _P1) & _MASK
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _MASK
    h ^= h >> 29
    h = (h * _P3) & _MASK
    return h ^ (h >> 32)


def _reference_bucket(customer_id: str, salt: str) -> int:
    return _xxh64(f"{salt}:{customer_id}".encode()) % 10_000


def _expected_arm(bucket: int, weights: dict[str, float]) -> str | None:
    # arms own consecutive bucket ranges in spec order: [0, w1 * 10000), [w1 * 10000, ...)
    upper = 0
    for arm, weight in weights.items():
        upper += round(weight * 10_000)
        if bucket < upper:
            return arm
    return None  # unallocated


def test_reference_xxh64_reproduces_the_published_test_values() -> None:
    # XXH64 of the empty input and of "abc", seed 0, as published with xxHash
    assert _xxh64(b"") == 0xEF46DB3751D8E999
    assert _xxh64(b"abc") == 0x44BC2CF5AD770999


def test_buckets_count_is_ten_thousand() -> None:
    assert BUCKETS == 10_000


def test_bucket_of_matches_the_independent_reference() -> None:
    ids = ["c1", "c42", "42", "ü-kunde", "customer with spaces", "x" * 40, "y" * 70]
    for customer_id in ids:  # short ids and ids past the 32-byte stripe both
        assert bucket_of(customer_id, SALT) == _reference_bucket(customer_id, SALT)
    assert list(buckets(pd.Series(ids), SALT)) == [_reference_bucket(i, SALT) for i in ids]


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
    assert set(lost[lost > 0].index) == set(WEIGHTS)


def test_buckets_are_uniform_over_a_million_ids() -> None:
    # the check: 1,000,000 ids, per-bucket chi-square over all 10,000 buckets
    ids = pd.Series([f"customer-{i}" for i in range(1_000_000)])
    observed = np.bincount(buckets(ids, SALT), minlength=BUCKETS)
    assert observed.shape == (BUCKETS,)
    # reference test: scipy.stats.chisquare against 100 expected per bucket
    assert stats.chisquare(observed).pvalue > 0.01


weights_strategy = st.lists(st.integers(min_value=1, max_value=3000), min_size=2, max_size=5).map(
    lambda parts: {f"arm{i}": p / BUCKETS for i, p in enumerate(parts)}
)


@settings(max_examples=60, deadline=None)
@given(ids=ids_strategy, more=ids_strategy, weights=weights_strategy, extra=st.integers(1, 2000))
def test_arms_survive_growth_reruns_and_an_added_arm(
    ids: list[object], more: list[object], weights: dict[str, float], extra: int
) -> None:
    base = pd.Series(ids, dtype=object)
    first = assign_arms(base, SALT, weights, global_holdout=0.05)
    # a re-run gives the same arms
    pd.testing.assert_series_equal(first, assign_arms(base, SALT, weights, global_holdout=0.05))
    # the base grows: everyone already there keeps their arm
    grown = pd.Series(list(ids) + [m for m in more if str(m) not in set(map(str, ids))])
    after = assign_arms(grown, SALT, weights, global_holdout=0.05)
    assert list(after.iloc[: len(base)]) == list(first)
    # an arm appended into the unallocated buckets moves nobody already assigned
    free = BUCKETS - sum(round(w * BUCKETS) for w in weights.values())
    if free > 0:
        wider = {**weights, "added": min(extra, free) / BUCKETS}
        widened = assign_arms(base, SALT, wider, global_holdout=0.05)
        assigned = first.notna().to_numpy()
        assert list(widened[assigned]) == list(first[assigned])
        assert set(widened[~assigned].dropna()) <= {"added"}


@settings(max_examples=60, deadline=None)
@given(ids=ids_strategy, cut=st.integers(1, BUCKETS - 1), share=st.floats(0.0, 0.4))
def test_layer_ranges_never_share_a_customer_and_the_holdout_is_never_in_a_campaign(
    ids: list[object], cut: int, share: float
) -> None:
    base = pd.Series(ids, dtype=object)
    holdout = round(share * BUCKETS) / BUCKETS
    one = assign_arms(base, "salt-one", WEIGHTS, holdout, layer=("lifecycle", 0, cut))
    two = assign_arms(base, "salt-two", WEIGHTS, holdout, layer=("lifecycle", cut, BUCKETS))
    in_one = one.notna() & (one != GLOBAL_HOLDOUT)
    in_two = two.notna() & (two != GLOBAL_HOLDOUT)
    assert not (in_one & in_two).any()
    # together the two ranges cover the whole layer: everyone not held out is in one of them
    held = buckets(base, GLOBAL_HOLDOUT_SALT) < round(holdout * BUCKETS)
    assert ((in_one | in_two) == ~held).all()
    # held-out customers carry the holdout label in every campaign, and no campaign arm
    assert (one[held] == GLOBAL_HOLDOUT).all() and (two[held] == GLOBAL_HOLDOUT).all()
    layer_buckets = buckets(base, layer_salt("lifecycle"))
    assert (layer_buckets[in_one.to_numpy()] < cut).all()


def test_arm_ranges_are_consecutive_in_spec_order() -> None:
    assert arm_ranges({"control": 0.2, "a": 0.3, "b": 0.3}) == {
        "control": (0, 2000),
        "a": (2000, 5000),
        "b": (5000, 8000),
    }


# --- the vectorised XXH64 (uplift.design.xxh64) -----------------------------------------

# prefixes of 0, 2, 7, 8, 22, 31, 32 and 41 bytes: lanes and stripes wholly inside the
# shared prefix are folded into constants, so every boundary is exercised
PREFIXES = [b"", b"s:", b"abcdef:", b"abcdefg:", b"uplift:global-holdout:", b"p" * 31, b"q" * 32]
PREFIXES.append("präfix-ü-€-😀-long-salt:".encode())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=90), min_size=1, max_size=60), st.integers(0, 2**64 - 1))
def test_vectorised_xxh64_equals_the_reference_for_any_text(ids: list[str], seed: int) -> None:
    digests = xxh64(pa.array(ids), PREFIXES, seed)
    assert digests.shape == (len(PREFIXES), len(ids)) and digests.dtype == np.uint64
    for row, prefix in zip(digests, PREFIXES, strict=True):
        assert [int(d) for d in row] == [_xxh64(prefix + i.encode(), seed) for i in ids]


def test_vectorised_xxh64_handles_slices_chunks_and_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uplift.design.xxh64 as module

    monkeypatch.setattr(module, "_CHUNK", 7)  # many passes, ending mid-group
    ids = [f"id-{i}" * (i % 9) for i in range(200)]
    sliced = pa.array(ids).slice(13, 150)  # an offset into the Arrow buffers
    chunked = pa.chunked_array([ids[:50], ids[50:120], ids[120:]])
    expected = [xxhash.xxh64_intdigest(b"salt:" + i.encode()) for i in ids]
    assert list(xxh64(sliced, [b"salt:"])[0]) == expected[13:163]
    assert list(xxh64(chunked, [b"salt:"])[0]) == expected


def test_vectorised_xxh64_refuses_missing_and_non_text_ids() -> None:
    with pytest.raises(ValueError, match="missing"):
        xxh64(pa.array(["a", None]), [b""])
    with pytest.raises(TypeError, match="strings"):
        xxh64(pa.array([1, 2]), [b""])
