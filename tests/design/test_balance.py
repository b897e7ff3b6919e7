"""Tests of uplift.design.balance.

Reference values: standardized mean differences worked out by hand on tiny frames (the
arithmetic is in the comments), an independent computation with ``statistics.mean`` and
``statistics.variance`` from the standard library, and simulations whose true SMD is known
in closed form.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from uplift.design.balance import (
    DEFAULT_SMD_THRESHOLD,
    MISSING_LEVEL,
    BalanceResult,
    covariate_balance,
)
from uplift.errors import DataError

COLUMNS = ["arm", "feature", "mean_treatment", "mean_control", "smd", "flagged"]


def _row(result: BalanceResult, arm: str, feature: str) -> pd.Series:
    rows = result.table[(result.table["arm"] == arm) & (result.table["feature"] == feature)]
    assert len(rows) == 1, f"expected one row for {arm!r} / {feature!r}, found {len(rows)}"
    return rows.iloc[0]


def _reference_smd(treated: list[float], control: list[float]) -> float:
    """SMD from the standard library: statistics.mean and statistics.variance (ddof=1)."""
    pooled = (statistics.variance(treated) + statistics.variance(control)) / 2
    return (statistics.mean(treated) - statistics.mean(control)) / math.sqrt(pooled)


# --- hand-computed reference values -------------------------------------------------------


def test_hand_computed_numeric_and_categorical_smd() -> None:
    features = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 100.0],
            "color": ["red", "red", "blue", "red", "blue", "blue", "green"],
        }
    )
    arms = pd.Series(["control"] * 3 + ["offer"] * 3 + ["holdout"])
    result = covariate_balance(features, arms, "control", ["offer"])

    # x, control 1, 2, 3: mean 2, variance ((1-2)^2 + 0 + (3-2)^2) / 2 = 1
    #    offer   2, 4, 6: mean 4, variance ((2-4)^2 + 0 + (6-4)^2) / 2 = 4
    #    SMD = (4 - 2) / sqrt((4 + 1) / 2) = 2 / sqrt(2.5) = 1.2649110640673518
    # color=blue, control 0, 0, 1: share 1/3, variance ((1/3)^2 * 2 + (2/3)^2) / 2 = 1/3
    #             offer   0, 1, 1: share 2/3, variance ((2/3)^2 + (1/3)^2 * 2) / 2 = 1/3
    #             SMD = (2/3 - 1/3) / sqrt((1/3 + 1/3) / 2) = (1/3) / sqrt(1/3) = 1 / sqrt(3)
    # color=red is the mirror image: SMD = -1 / sqrt(3) = -0.5773502691896258
    # the holdout row (x = 100, green) is in neither arm and must not count
    assert list(result.table.columns) == COLUMNS
    assert result.table["feature"].tolist() == ["x", "color=blue", "color=red"]
    assert result.table["arm"].tolist() == ["offer"] * 3

    x = _row(result, "offer", "x")
    assert x["mean_treatment"] == pytest.approx(4.0, abs=1e-12)
    assert x["mean_control"] == pytest.approx(2.0, abs=1e-12)
    assert x["smd"] == pytest.approx(2 / math.sqrt(2.5), abs=1e-12)
    assert x["smd"] == pytest.approx(1.2649110640673518, abs=1e-12)
    assert x["flagged"]

    blue = _row(result, "offer", "color=blue")
    assert blue["mean_treatment"] == pytest.approx(2 / 3, abs=1e-12)
    assert blue["mean_control"] == pytest.approx(1 / 3, abs=1e-12)
    assert blue["smd"] == pytest.approx(1 / math.sqrt(3), abs=1e-12)
    red = _row(result, "offer", "color=red")
    assert red["smd"] == pytest.approx(-0.5773502691896258, abs=1e-12)
    assert result.table["flagged"].all()

    assert result.counts == {"control": 3, "offer": 3}
    assert result.columns == ("x", "color")
    assert result.max_abs_smd == pytest.approx(2 / math.sqrt(2.5), abs=1e-12)


def test_the_threshold_is_strict_and_configurable() -> None:
    # control 30, 40, 50 and offer 35, 45, 55: both variances 100, SMD = 5 / 10 = 0.5
    features = pd.DataFrame({"age": [30, 40, 50, 35, 45, 55]})
    arms = pd.Series(["control"] * 3 + ["offer"] * 3)
    assert DEFAULT_SMD_THRESHOLD == 0.1
    assert covariate_balance(features, arms, "control", ["offer"]).table["flagged"].all()
    at_threshold = covariate_balance(features, arms, "control", ["offer"], threshold=0.5)
    assert at_threshold.table["smd"].iloc[0] == pytest.approx(0.5, abs=1e-12)
    assert not at_threshold.table["flagged"].any()  # flagged only above the threshold
    below = covariate_balance(features, arms, "control", ["offer"], threshold=0.49)
    assert below.table["flagged"].all()


def test_each_treatment_arm_is_compared_with_the_control_in_the_order_given() -> None:
    # control 0, 2 (mean 1, var 2); a 1, 3 (mean 2, var 2); b 3, 5 (mean 4, var 2)
    # SMD a = (2 - 1) / sqrt(2) = 0.7071..., SMD b = (4 - 1) / sqrt(2) = 2.1213...
    features = pd.DataFrame({"x": [3, 0, 1, 5, 2, 3]})
    arms = pd.Series(["b", "control", "a", "b", "control", "a"])
    result = covariate_balance(features, arms, "control", ["b", "a"])
    assert result.table["arm"].tolist() == ["b", "a"]
    assert result.treatments == ("b", "a")
    assert _row(result, "a", "x")["smd"] == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert _row(result, "b", "x")["smd"] == pytest.approx(3 / math.sqrt(2), abs=1e-12)
    assert (result.table["mean_control"] == 1.0).all()
    assert result.counts == {"control": 2, "b": 2, "a": 2}


# --- independent cross-check ----------------------------------------------------------------


def test_numeric_smd_matches_the_standard_library_on_random_data() -> None:
    rng = np.random.default_rng(20_261_122)
    n = 3_000
    arms = pd.Series(rng.choice(["control", "a", "b", "holdout"], size=n, p=[0.3, 0.3, 0.3, 0.1]))
    features = pd.DataFrame(
        {
            # a large offset with a small spread, where a careless variance loses digits
            "balance": 1_000.0 + rng.normal(0.0, 3.0, n) + 0.5 * (arms == "b").to_numpy(),
            "visits": rng.poisson(4.0, n),
            "member": rng.random(n) < 0.4,
            "spend": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3.0, 1.0, n)),
        }
    )
    result = covariate_balance(features, arms, "control", ["a", "b"])
    control = arms == "control"
    for arm in ["a", "b"]:
        treated = arms == arm
        for feature in features.columns:
            t = [float(v) for v in features.loc[treated, feature].dropna()]
            c = [float(v) for v in features.loc[control, feature].dropna()]
            row = _row(result, arm, feature)
            assert row["mean_treatment"] == pytest.approx(statistics.mean(t), rel=1e-12)
            assert row["mean_control"] == pytest.approx(statistics.mean(c), rel=1e-12)
            assert row["smd"] == pytest.approx(_reference_smd(t, c), abs=1e-12)
        # the missing indicator of spend, cross-checked the same way
        t_missing = [float(v) for v in features.loc[treated, "spend"].isna()]
        c_missing = [float(v) for v in features.loc[control, "spend"].isna()]
        row = _row(result, arm, "spend missing")
        assert row["mean_treatment"] == pytest.approx(statistics.mean(t_missing), abs=1e-12)
        assert row["smd"] == pytest.approx(_reference_smd(t_missing, c_missing), abs=1e-12)
    assert result.table["feature"].tolist()[:5] == [
        "balance",
        "visits",
        "member",
        "spend",
        "spend missing",
    ]
    assert _row(result, "b", "balance")["flagged"]  # shifted by 0.5 / 3 = 0.17 sd


# --- simulations with known ground truth -----------------------------------------------------


def test_a_randomized_split_is_balanced() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    features = pd.DataFrame(
        {
            "age": rng.normal(40.0, 12.0, n),
            "revenue": rng.lognormal(4.0, 1.2, n),
            "orders": rng.poisson(3.0, n),
            "subscribed": rng.random(n) < 0.3,
            "region": rng.choice(["north", "south", "east", "west"], size=n),
        }
    )
    # a fair coin per customer: every feature is independent of the arm
    arms = pd.Series(np.where(rng.random(n) < 0.5, "treatment", "control"))
    result = covariate_balance(features, arms, "control", ["treatment"])
    # with 100,000 customers per arm the SMD's sampling sd is sqrt(2 / 100,000) = 0.0045
    assert len(result.table) == 8  # four one-row features and four region levels
    assert result.flagged.empty
    assert result.max_abs_smd < 0.02


def test_a_split_that_depends_on_a_feature_is_flagged_with_its_true_smd() -> None:
    rng = np.random.default_rng(11)
    n = 200_000
    shift = 0.3
    # x is drawn from the half-and-half mixture of N(0, 1) and N(0.3, 1), and a customer is
    # treated with probability logistic(0.3 x - 0.3^2 / 2), which rises with x. By Bayes,
    # P(treated | x) = phi(x - 0.3) / (phi(x) + phi(x - 0.3)) is exactly that logistic, so
    # x | treated ~ N(0.3, 1) and x | control ~ N(0, 1): the true SMD is
    # (0.3 - 0) / sqrt((1 + 1) / 2) = 0.3. z is independent of everything: true SMD 0.
    x = rng.normal(size=n) + shift * (rng.random(n) < 0.5)
    z = rng.normal(size=n)
    p_treated = 1.0 / (1.0 + np.exp(-(shift * x - shift**2 / 2)))
    treated = rng.random(n) < p_treated
    arms = pd.Series(np.where(treated, "treatment", "control"))
    result = covariate_balance(pd.DataFrame({"x": x, "z": z}), arms, "control", ["treatment"])

    row = _row(result, "treatment", "x")
    assert row["flagged"]
    assert row["smd"] == pytest.approx(0.3, abs=0.02)
    assert row["mean_treatment"] == pytest.approx(0.3, abs=0.02)
    assert row["mean_control"] == pytest.approx(0.0, abs=0.02)
    assert not _row(result, "treatment", "z")["flagged"]
    assert abs(_row(result, "treatment", "z")["smd"]) < 0.02
    assert result.flagged["feature"].tolist() == ["x"]
    assert result.max_abs_smd == pytest.approx(0.3, abs=0.02)


def test_a_categorical_imbalance_is_flagged_with_its_true_smd() -> None:
    rng = np.random.default_rng(13)
    n = 200_000
    treated = rng.random(n) < 0.5
    # plan is premium with probability 0.5 among treated, 0.3 among control customers:
    # SMD = (0.5 - 0.3) / sqrt((0.5 * 0.5 + 0.3 * 0.7) / 2) = 0.2 / sqrt(0.23) = 0.41703...
    premium = rng.random(n) < np.where(treated, 0.5, 0.3)
    features = pd.DataFrame({"plan": np.where(premium, "premium", "basic")})
    arms = pd.Series(np.where(treated, "t", "c"))
    result = covariate_balance(features, arms, "c", ["t"])
    assert _row(result, "t", "plan=premium")["smd"] == pytest.approx(0.2 / 0.23**0.5, abs=0.02)
    assert _row(result, "t", "plan=basic")["smd"] == pytest.approx(-0.2 / 0.23**0.5, abs=0.02)
    assert result.table["flagged"].all()


# --- missing values ------------------------------------------------------------------------


def test_numeric_missing_values_are_left_out_and_their_share_compared() -> None:
    features = pd.DataFrame({"x": [1.0, np.nan, 3.0, 5.0, 3.0, 5.0, 7.0, 9.0]})
    arms = pd.Series(["control"] * 4 + ["offer"] * 4)
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["feature"].tolist() == ["x", "x missing"]

    # x on non-missing values, control 1, 3, 5: mean 3, variance (4 + 0 + 4) / 2 = 4
    #                          offer 3, 5, 7, 9: mean 6, variance (9 + 1 + 1 + 9) / 3 = 20/3
    # SMD = (6 - 3) / sqrt((20/3 + 4) / 2) = 3 / sqrt(16/3) = 3 sqrt(3) / 4 = 1.299038...
    x = _row(result, "offer", "x")
    assert x["mean_control"] == pytest.approx(3.0, abs=1e-12)
    assert x["mean_treatment"] == pytest.approx(6.0, abs=1e-12)
    assert x["smd"] == pytest.approx(3 * math.sqrt(3) / 4, abs=1e-12)

    # missing share, control 1/4 (variance 1/4 * 3/4 * 4/3 = 1/4), offer 0 (variance 0)
    # SMD = (0 - 1/4) / sqrt((0 + 1/4) / 2) = -(1/4) * sqrt(8) = -sqrt(2) / 2
    missing = _row(result, "offer", "x missing")
    assert missing["mean_control"] == pytest.approx(0.25, abs=1e-12)
    assert missing["mean_treatment"] == 0.0
    assert missing["smd"] == pytest.approx(-math.sqrt(2) / 2, abs=1e-12)
    assert missing["flagged"]


def test_no_missing_row_when_the_compared_arms_have_no_missing_values() -> None:
    # the only missing value belongs to a holdout row, which is not compared
    features = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan]})
    arms = pd.Series(["control", "control", "offer", "offer", "holdout"])
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["feature"].tolist() == ["x"]


def test_missingness_that_differs_is_flagged_even_when_the_values_agree() -> None:
    # both arms have values 1, 2, 3 (SMD 0), but the offer also has three missing values:
    # missing share 0 vs 1/2, variances 0 and (1/2 * 1/2 * 6/5) = 3/10,
    # SMD = 0.5 / sqrt(0.15) = 1.2910...
    features = pd.DataFrame({"x": [1, 2, 3, 1, 2, 3, None, None, None]}, dtype="Float64")
    arms = pd.Series(["control"] * 3 + ["offer"] * 6)
    result = covariate_balance(features, arms, "control", ["offer"])
    assert _row(result, "offer", "x")["smd"] == pytest.approx(0.0, abs=1e-12)
    assert not _row(result, "offer", "x")["flagged"]
    missing = _row(result, "offer", "x missing")
    assert missing["smd"] == pytest.approx(0.5 / math.sqrt(0.15), abs=1e-12)
    assert missing["flagged"]
    assert result.flagged["feature"].tolist() == ["x missing"]


@pytest.mark.parametrize("dtype", [object, "str", "string", "category"])
def test_categorical_missing_values_are_a_level_of_their_own(dtype: object) -> None:
    values = ["a", None, "a", "b", "a", "a", "b", "b"]
    features = pd.DataFrame({"tier": pd.Series(values, dtype=dtype)})
    arms = pd.Series(["control"] * 4 + ["offer"] * 4)
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["feature"].tolist() == ["tier=a", "tier=b", f"tier={MISSING_LEVEL}"]
    assert MISSING_LEVEL == "(missing)"
    # tier=a: 1/2 in both arms, SMD 0
    # tier=b: control 1/4 (variance 1/4 * 3/4 * 4/3 = 1/4), offer 1/2 (variance 1/3)
    #         SMD = (1/2 - 1/4) / sqrt((1/3 + 1/4) / 2) = 0.25 / sqrt(7/24) = 0.46291...
    # (missing): control 1/4 (variance 1/4), offer 0 (variance 0): SMD = -sqrt(2) / 2
    assert _row(result, "offer", "tier=a")["smd"] == pytest.approx(0.0, abs=1e-12)
    b = _row(result, "offer", "tier=b")
    assert b["mean_control"] == pytest.approx(0.25, abs=1e-12)
    assert b["mean_treatment"] == pytest.approx(0.5, abs=1e-12)
    assert b["smd"] == pytest.approx(0.25 / math.sqrt(7 / 24), abs=1e-12)
    missing = _row(result, "offer", "tier=(missing)")
    assert missing["smd"] == pytest.approx(-math.sqrt(2) / 2, abs=1e-12)


def test_nullable_integers_and_booleans_are_numeric() -> None:
    features = pd.DataFrame(
        {
            # control 0, 1 (mean 1/2, variance 1/2); offer 1, 1 and one missing (variance 0)
            # SMD = (1 - 1/2) / sqrt((0 + 1/2) / 2) = 0.5 / 0.5 = 1
            "n": pd.array([0, 1, 1, 1, None], dtype="Int64"),
            "ok": pd.array([False, True, True, True, None], dtype="boolean"),
        }
    )
    arms = pd.Series(["control", "control", "offer", "offer", "offer"])
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["feature"].tolist() == ["n", "n missing", "ok", "ok missing"]
    assert _row(result, "offer", "n")["smd"] == pytest.approx(1.0, abs=1e-12)
    assert _row(result, "offer", "ok")["smd"] == pytest.approx(1.0, abs=1e-12)
    assert _row(result, "offer", "ok missing")["mean_treatment"] == pytest.approx(1 / 3)


# --- zero and undefined variances ------------------------------------------------------------


def test_zero_variance_in_both_arms_gives_zero_or_infinity() -> None:
    features = pd.DataFrame(
        {
            # 0.1 three times and seven times: summed means can differ in the last bit,
            # but equal constants must give exactly 0
            "same": [0.1] * 10,
            "higher": [3.0] * 3 + [4.0] * 7,
            "lower": [3.0] * 3 + [2.0] * 7,
            "plan": ["basic"] * 10,
        }
    )
    arms = pd.Series(["control"] * 3 + ["offer"] * 7)
    result = covariate_balance(features, arms, "control", ["offer"])
    same = _row(result, "offer", "same")
    assert same["smd"] == 0.0
    assert same["mean_treatment"] == 0.1
    assert same["mean_control"] == 0.1
    assert not same["flagged"]
    assert _row(result, "offer", "higher")["smd"] == math.inf
    assert _row(result, "offer", "lower")["smd"] == -math.inf
    assert _row(result, "offer", "plan=basic")["smd"] == 0.0
    assert result.flagged["feature"].tolist() == ["higher", "lower"]
    assert result.max_abs_smd == math.inf


def test_zero_variance_in_one_arm_uses_the_other() -> None:
    # control 5, 5, 5 (variance 0); offer 4, 6 (mean 5, variance 2) and 6, 8 (mean 7, var 2)
    features = pd.DataFrame({"x": [5.0, 5.0, 5.0, 4.0, 6.0, 6.0, 8.0]})
    arms = pd.Series(["control"] * 3 + ["a"] * 2 + ["b"] * 2)
    result = covariate_balance(features, arms, "control", ["a", "b"])
    assert _row(result, "a", "x")["smd"] == 0.0
    # SMD b = (7 - 5) / sqrt((2 + 0) / 2) = 2
    assert _row(result, "b", "x")["smd"] == pytest.approx(2.0, abs=1e-12)


def test_a_level_seen_in_one_arm_only() -> None:
    # control all "a", offer all "b": each indicator has variance 0 in both arms and means
    # 1 vs 0, so the SMDs are -inf (tier=a) and +inf (tier=b)
    features = pd.DataFrame({"tier": ["a", "a", "b", "b"]})
    arms = pd.Series(["control", "control", "offer", "offer"])
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["smd"].tolist() == [-math.inf, math.inf]
    assert result.table["flagged"].all()


def test_an_undefined_variance_gives_nan_and_no_flag() -> None:
    # one customer per arm: a sample variance needs two
    features = pd.DataFrame({"x": [1.0, 2.0], "tier": ["a", "b"]})
    arms = pd.Series(["control", "offer"])
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["smd"].isna().all()
    assert not result.table["flagged"].any()
    assert math.isnan(result.max_abs_smd)
    assert "Max |SMD|:        n/a" in result.summary()


def test_an_infinite_value_gives_nan_and_no_flag() -> None:
    features = pd.DataFrame({"x": [1.0, math.inf, 3.0, 1.0, 2.0, 3.0]})
    arms = pd.Series(["control"] * 3 + ["offer"] * 3)
    result = covariate_balance(features, arms, "control", ["offer"])
    assert result.table["feature"].tolist() == ["x"]  # inf is a value, not a missing one
    assert math.isnan(result.table["smd"].iloc[0])
    assert not result.table["flagged"].iloc[0]


# --- the result object ----------------------------------------------------------------------


def test_result_helpers() -> None:
    features = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.0, 4.0, 6.0], "y": [1, 2, 3, 1, 2, 3]})
    arms = pd.Series(["control"] * 3 + ["offer"] * 3)
    result = covariate_balance(features, arms, "control", ["offer"])

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.threshold = 0.5  # type: ignore[misc]

    frame = result.to_frame()
    assert frame.equals(result.table)
    frame.loc[0, "smd"] = 99.0
    assert result.table.loc[0, "smd"] != 99.0  # a copy, not a view

    flagged = result.flagged
    assert flagged["feature"].tolist() == ["x"]
    assert list(flagged.columns) == COLUMNS
    assert isinstance(result.max_abs_smd, float)

    text = result.summary()
    assert text == str(result)
    assert "control 'control'" in text
    assert "Features:         2 columns, 2 balance rows per arm" in text
    assert "Max |SMD|:        1.2649 (offer: x)" in text
    assert "Flagged:          1 of 2" in text
    flagged_lines = [line for line in text.splitlines() if line.startswith("offer")]
    assert len(flagged_lines) == 1
    assert flagged_lines[0].split()[:2] == ["offer", "x"]


def test_arm_labels_may_be_categorical_and_missing() -> None:
    # rows without an arm are ignored like any other arm outside the comparison
    features = pd.DataFrame({"x": [1.0, 3.0, 2.0, 4.0, 50.0, 60.0]})
    arms = pd.Series(["control", "control", "offer", "offer", None, "holdout"], dtype="category")
    result = covariate_balance(features, arms, "control", ["offer"])
    # control 1, 3 and offer 2, 4: variances 2 and 2, SMD = 1 / sqrt(2)
    assert result.table["smd"].iloc[0] == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert result.counts == {"control": 2, "offer": 2}


def test_features_with_their_own_index_and_an_empty_frame() -> None:
    index = pd.Index([101, 205, 333, 412], name="customer_id")
    arms = pd.Series(["control", "offer", "control", "offer"], index=index)
    result = covariate_balance(
        pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}, index=index), arms, "control", ["offer"]
    )
    # control 1, 3 and offer 2, 4: variances 2 and 2, SMD = 1 / sqrt(2)
    assert result.table["smd"].iloc[0] == pytest.approx(1 / math.sqrt(2), abs=1e-12)

    empty = covariate_balance(pd.DataFrame(index=index), arms, "control", ["offer"])
    assert list(empty.table.columns) == COLUMNS
    assert empty.table.empty
    assert math.isnan(empty.max_abs_smd)
    assert "Flagged:          0 of 0" in empty.summary()


# --- errors -------------------------------------------------------------------------------


def test_invalid_arguments_are_rejected() -> None:
    features = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    arms = pd.Series(["control", "control", "offer", "offer"])
    with pytest.raises(TypeError, match="list of arm names"):
        covariate_balance(features, arms, "control", "offer")
    with pytest.raises(ValueError, match="at least one treatment"):
        covariate_balance(features, arms, "control", [])
    with pytest.raises(ValueError, match="distinct"):
        covariate_balance(features, arms, "control", ["offer", "control"])
    with pytest.raises(ValueError, match="distinct"):
        covariate_balance(features, arms, "control", ["offer", "offer"])
    with pytest.raises(ValueError, match="threshold"):
        covariate_balance(features, arms, "control", ["offer"], threshold=-0.1)
    with pytest.raises(ValueError, match="threshold"):
        covariate_balance(features, arms, "control", ["offer"], threshold=math.nan)


def test_data_that_cannot_be_compared_is_rejected() -> None:
    features = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    arms = pd.Series(["control", "control", "offer", "offer"])
    with pytest.raises(DataError, match=r"arm\(s\) \['missing'\] have no rows"):
        covariate_balance(features, arms, "control", ["offer", "missing"])
    with pytest.raises(DataError, match="same index"):
        covariate_balance(features, arms.iloc[:3], "control", ["offer"])
    with pytest.raises(DataError, match="same index"):
        covariate_balance(features, arms.set_axis([9, 8, 7, 6]), "control", ["offer"])
    dates = features.assign(signup=pd.date_range("2026-01-01", periods=4))
    with pytest.raises(DataError, match="'signup' has type datetime64"):
        covariate_balance(dates, arms, "control", ["offer"])
    repeated = pd.DataFrame([[1.0, 2.0]] * 4, columns=["x", "x"])
    with pytest.raises(DataError, match="unique"):
        covariate_balance(repeated, arms, "control", ["offer"])
