"""Tests of uplift.value.profit.

Hand-computed net values and profits on a tiny frame; intervals against statsmodels'
Welch interval (``CompareMeans.tconfint_diff(usevar="unequal")``) of the net values;
and a simulated campaign whose true incremental profit is known from the simulator's
expected outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from uplift.data.simulate import simulate
from uplift.value.costs import LowerCheckOfferCost, TrialLessonsCost
from uplift.value.profit import ALL_CUSTOMERS, ProfitModel, net_value, segment_profit
from uplift.value.rfm import rfm_scores, rfm_segments

TOL = 1e-10


def _model(fixed_cost: float = 16.0) -> ProfitModel:
    # value per unit = clv multiplier 2 * margin 0.25 * unit value 2 = 1.0
    return ProfitModel(
        value_metric="revenue",
        unit_value=2.0,
        margin=0.25,
        clv_multiplier=2.0,
        contact_cost=1.0,
        fixed_cost=fixed_cost,
        cost_models={
            "lessons": TrialLessonsCost(price=5.0, delivery_cost=14.0, uptake_metric="took"),
            "discount": LowerCheckOfferCost(discount=0.1, revenue_metric="revenue"),
        },
    )


def _tiny() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    arms = pd.Series(
        ["control"] * 4 + ["lessons"] * 4,
        index=pd.Index([f"c{i}" for i in (8, 1, 6, 3, 5, 2, 7, 4)], name="customer_id"),
    )
    outcomes = pd.DataFrame(
        {
            "revenue": [0.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 60.0],
            "took": [0, 0, 0, 0, 1, 0, 1, 1],
        },
        index=arms.index,
    )
    segments = pd.Series(["A", "A", "B", "B", "A", "B", "A", "B"], index=arms.index)
    return outcomes, arms, segments


# by hand, value per unit 1.0: control net = revenue = 0, 10, 20, 30 (mean 15);
# lessons net = revenue - contact 1 - (14 - 5) * took = 0, 19, 20, 50 (mean 22.25)
NET_CONTROL = np.array([0.0, 10.0, 20.0, 30.0])
NET_LESSONS = np.array([0.0, 19.0, 20.0, 50.0])


def test_value_per_unit() -> None:
    assert _model().value_per_unit == pytest.approx(1.0, abs=1e-15)


def test_net_value_by_hand_for_two_arms() -> None:
    arms = pd.Series(["control", "lessons", "discount", "discount", "lessons"], index=list("vwxyz"))
    outcomes = pd.DataFrame(
        {"revenue": [30.0, 60.0, 40.0, 0.0, 20.0], "took": [0, 1, 1, 0, 0]}, index=arms.index
    )
    net = net_value(outcomes, arms, _model())
    # control: 30; lessons: 60 - 1 - 9 = 50 and 20 - 1 - 0 = 19;
    # discount: revenue - 1 - 0.1 * revenue (took is irrelevant) = 35 and -1
    np.testing.assert_allclose(net.to_numpy(), [30.0, 50.0, 35.0, -1.0, 19.0], atol=TOL)
    assert net.index.equals(arms.index)
    assert net.name == "net_value"


def test_net_value_scales_with_value_per_unit() -> None:
    outcomes, arms, _ = _tiny()
    model = ProfitModel("revenue", 1.0, 0.5, 3.0, 0.0, 0.0, {})  # 1.5 per unit, no costs
    np.testing.assert_allclose(
        net_value(outcomes, arms, model).to_numpy(), 1.5 * outcomes["revenue"].to_numpy()
    )


def test_segment_profit_by_hand() -> None:
    outcomes, arms, segments = _tiny()
    table = segment_profit(
        outcomes, arms, segments, "revenue", _model(), "control", ["lessons"], min_segment_size=2
    ).to_frame()
    assert list(table["segment"]) == [ALL_CUSTOMERS, "A", "B"]
    row = table.iloc[0]
    assert (row["n"], row["n_treated"], row["n_control"], row["eligible"]) == (8, 4, 4, 8)
    # effect on the primary metric: mean revenue 30 - 15
    assert row["estimate"] == pytest.approx(15.0, abs=TOL)
    # incremental CLV: value per unit 1.0 * 15
    assert row["incremental_clv"] == pytest.approx(15.0, abs=TOL)
    # profit: 22.25 - 15 - fixed share 16 / 8 = 5.25
    assert row["incremental_profit"] == pytest.approx(5.25, abs=TOL)
    # cost per customer: contact 1 + lessons 9 * 3/4 + fixed share 2 = 9.75 = 15 - 5.25
    assert row["cost_per_customer"] == pytest.approx(9.75, abs=TOL)
    assert row["roi"] == pytest.approx(5.25 / 9.75, abs=TOL)
    assert row["total_incremental_profit"] == pytest.approx(5.25 * 8, abs=TOL)
    # interval: statsmodels' Welch interval of the net values, shifted by the fixed share
    low, high = CompareMeans(DescrStatsW(NET_LESSONS), DescrStatsW(NET_CONTROL)).tconfint_diff(
        alpha=0.05, usevar="unequal"
    )
    assert row["profit_ci_low"] == pytest.approx(low - 2.0, abs=TOL)
    assert row["profit_ci_high"] == pytest.approx(high - 2.0, abs=TOL)
    assert row["decision"] == "inconclusive"

    # segment A: control net 0, 10 (mean 5); lessons net 0, 20 (mean 10): 10 - 5 - 2 = 3
    # segment B: control net 20, 30 (mean 25); lessons net 19, 50 (mean 34.5): 9.5 - 2 = 7.5
    by_segment = table.set_index("segment")
    assert by_segment.loc["A", "incremental_profit"] == pytest.approx(3.0, abs=TOL)
    assert by_segment.loc["B", "incremental_profit"] == pytest.approx(7.5, abs=TOL)
    assert by_segment.loc["A", "eligible"] == 4
    # A: mean revenue 20 - 5 = 15; B: 40 - 25 = 15
    assert by_segment.loc["A", "estimate"] == pytest.approx(15.0, abs=TOL)
    assert by_segment.loc["B", "incremental_clv"] == pytest.approx(15.0, abs=TOL)


@pytest.mark.parametrize("unit_value", [2.0, -2.0])
def test_incremental_clv_interval_is_the_value_per_unit_times_the_welch_interval(
    unit_value: float,
) -> None:
    outcomes, arms, segments = _tiny()
    # value per unit = clv multiplier 3 * margin 0.5 * unit value (+-2) = +-3
    model = ProfitModel("revenue", unit_value, 0.5, 3.0, 0.0, 0.0, {})
    table = segment_profit(
        outcomes, arms, segments, "revenue", model, "control", ["lessons"], min_segment_size=2
    ).to_frame()
    row = table.iloc[0]
    # control revenue 0, 10, 20, 30; lessons revenue 10, 20, 30, 60: effect 15, CLV +-45
    assert row["incremental_clv"] == pytest.approx(3.0 * np.sign(unit_value) * 15.0, abs=TOL)
    # statsmodels' Welch interval of the revenue, times the value per unit (sorted)
    low, high = CompareMeans(
        DescrStatsW([10.0, 20.0, 30.0, 60.0]), DescrStatsW([0.0, 10.0, 20.0, 30.0])
    ).tconfint_diff(alpha=0.05, usevar="unequal")
    expected = sorted([3.0 * np.sign(unit_value) * low, 3.0 * np.sign(unit_value) * high])
    assert row["clv_ci_low"] == pytest.approx(expected[0], abs=TOL)
    assert row["clv_ci_high"] == pytest.approx(expected[1], abs=TOL)
    assert row["clv_ci_low"] < row["incremental_clv"] < row["clv_ci_high"]


def test_cost_break_even_and_roi_intervals_by_hand() -> None:
    outcomes, arms, segments = _tiny()
    row = (
        segment_profit(
            outcomes,
            arms,
            segments,
            "revenue",
            _model(),
            "control",
            ["lessons"],
            min_segment_size=2,
        )
        .to_frame()
        .iloc[0]
    )
    # lessons customers' cost: contact 1 + 9 * took = 10, 1, 10, 10 (mean 7.75, sd 4.5);
    # plus the fixed share 2; normal interval 9.75 +- 1.959964 * 4.5 / 2
    q = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
    assert row["cost_ci_low"] == pytest.approx(9.75 - q * 2.25, abs=TOL)
    assert row["cost_ci_high"] == pytest.approx(9.75 + q * 2.25, abs=TOL)
    # itemized: contact 1, the lessons 9 * 3/4 taken = 6.75, the fixed share 2
    assert row["contact_cost"] == pytest.approx(1.0, abs=TOL)
    assert row["offer_cost"] == pytest.approx(6.75, abs=TOL)
    assert row["fixed_cost_share"] == pytest.approx(2.0, abs=TOL)
    parts = row["contact_cost"] + row["offer_cost"] + row["fixed_cost_share"]
    assert parts == pytest.approx(row["cost_per_customer"], abs=TOL)
    # break-even uplift: cost 9.75 over value per unit 1.0, in revenue per customer
    assert row["break_even_uplift"] == pytest.approx(9.75, abs=TOL)
    assert row["break_even_ci_low"] == pytest.approx(9.75 - q * 2.25, abs=TOL)


def test_roi_interval_equals_statsmodels_delta_method() -> None:
    # reference: statsmodels' NonlinearDeltaCov on (mean net lessons, mean net control,
    # mean cost lessons), with the arm's covariance of net and cost over its customers
    from statsmodels.stats._delta_method import NonlinearDeltaCov

    rng = np.random.default_rng(3)
    n = 500
    arms = pd.Series(np.repeat(["control", "lessons"], n))
    outcomes = pd.DataFrame(
        {"revenue": rng.gamma(2.0, 10.0, 2 * n), "took": rng.integers(0, 2, 2 * n)}
    )
    outcomes.loc[arms == "lessons", "revenue"] += 12.0
    segments = pd.Series(["x"] * (2 * n))
    model = _model(fixed_cost=300.0)
    row = (
        segment_profit(outcomes, arms, segments, "revenue", model, "control", ["lessons"])
        .to_frame()
        .iloc[0]
    )
    fixed = 300.0 / (2 * n)
    net = net_value(outcomes, arms, model).to_numpy()
    treated = (arms == "lessons").to_numpy()
    cost = 1.0 + 9.0 * outcomes["took"].to_numpy(dtype=float)[treated]
    params = [net[treated].mean(), net[~treated].mean(), cost.mean()]
    cov = np.zeros((3, 3))
    cov[np.ix_([0, 2], [0, 2])] = np.cov(np.vstack([net[treated], cost]), ddof=1) / n
    cov[1, 1] = net[~treated].var(ddof=1) / n

    def roi(p: np.ndarray) -> np.ndarray:
        return np.atleast_1d((p[0] - p[1] - fixed) / (p[2] + fixed))

    ref = NonlinearDeltaCov(roi, np.array(params), cov)
    assert row["roi"] == pytest.approx(ref.predicted()[0], rel=1e-12)
    # the profit's standard error is Welch's (ddof 1 per group): the same variances
    se = np.sqrt(ref.var()[0])
    q = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
    assert row["roi_ci_low"] == pytest.approx(ref.predicted()[0] - q * se, rel=1e-9)
    assert row["roi_ci_high"] == pytest.approx(
        ref.predicted()[0] + 1.959963984540054 * se, rel=1e-9
    )


def test_n_to_settle_gives_the_planned_power_by_simulation() -> None:
    # an inconclusive row's n_to_settle, taken as the experiment's size with a true profit
    # equal to the estimate, settles the row (interval clear of zero) in about 80% of
    # simulated experiments (the ground truth is the simulation's own profit)
    rng = np.random.default_rng(11)
    model = _model(fixed_cost=0.0)

    def experiment(n: int, effect: float) -> pd.Series:
        arms = pd.Series(np.repeat(["control", "lessons"], n // 2))
        revenue = rng.normal(50.0, 40.0, len(arms)) + effect * (arms == "lessons").to_numpy()
        outcomes = pd.DataFrame({"revenue": revenue, "took": np.zeros(len(arms))})
        segments = pd.Series(["x"] * len(arms))
        return (
            segment_profit(outcomes, arms, segments, "revenue", model, "control", ["lessons"])
            .to_frame()
            .iloc[0]
        )

    # true profit per customer: effect 3 - contact 1 = 2
    pilot = experiment(400, 3.0)
    assert pilot["decision"] == "inconclusive"
    # by hand: n * ((z_.975 + z_.8) * se / |estimate|)^2 with the pilot's own numbers
    z = 1.959963984540054 + 0.8416212335729143
    expected = np.ceil(400 * (z * pilot["profit_se"] / abs(pilot["incremental_profit"])) ** 2)
    assert pilot["n_to_settle"] == expected
    # the same rule planned on the true profit 2 and the true standard error
    # 40 * sqrt(2 / (n / 2)) = 80 / sqrt(n): 2 * sqrt(n) / 80 = z, so n = (40 z)^2
    planned = 2 * int(np.ceil((40.0 * z) ** 2 / 2))
    settled = np.mean([experiment(planned, 3.0)["profit_ci_low"] > 0 for _ in range(300)])
    # 300 draws of a 0.8 chance: standard deviation 0.023
    assert 0.73 <= settled <= 0.87


def _replicated(copies: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    outcomes, arms, segments = _tiny()
    index = pd.RangeIndex(8 * copies)
    return (
        pd.concat([outcomes] * copies).set_axis(index),
        pd.concat([arms] * copies).set_axis(index),
        pd.concat([segments] * copies).set_axis(index),
    )


def _welch_net(copies: int, alpha: float = 0.05) -> tuple[float, float]:
    # reference: statsmodels Welch interval of the replicated net values (no fixed cost)
    cm = CompareMeans(
        DescrStatsW(np.tile(NET_LESSONS, copies)), DescrStatsW(np.tile(NET_CONTROL, copies))
    )
    return cm.tconfint_diff(alpha=alpha, usevar="unequal")


@pytest.mark.parametrize(
    ("fixed_share", "decision"),
    [(0.0, "go"), (12.0, "no_go"), (7.25, "inconclusive")],
)
def test_decision_follows_the_profit_interval(fixed_share: float, decision: str) -> None:
    copies = 100  # 400 per arm; the net difference is 7.25, its interval about +-2.4
    outcomes, arms, segments = _replicated(copies)
    model = _model(fixed_cost=fixed_share * len(arms))
    row = (
        segment_profit(outcomes, arms, segments, "revenue", model, "control", ["lessons"])
        .to_frame()
        .iloc[0]
    )
    low, high = _welch_net(copies)
    assert row["profit_ci_low"] == pytest.approx(low - fixed_share, abs=1e-9)
    assert row["profit_ci_high"] == pytest.approx(high - fixed_share, abs=1e-9)
    assert row["incremental_profit"] == pytest.approx(7.25 - fixed_share, abs=1e-9)
    # the reference interval puts the case on the intended side of zero
    expected = (
        "go" if low - fixed_share > 0 else "no_go" if high - fixed_share < 0 else "inconclusive"
    )
    assert expected == decision
    assert row["decision"] == decision


def test_small_segments_are_inconclusive_whatever_their_interval() -> None:
    outcomes, arms, segments = _replicated(100)
    model = _model(fixed_cost=0.0)
    table = segment_profit(
        outcomes, arms, segments, "revenue", model, "control", ["lessons"], min_segment_size=401
    ).to_frame()
    row = table.iloc[0]
    assert row["profit_ci_low"] > 0  # the interval alone would say go
    assert row["decision"] == "inconclusive"
    assert row["n_to_settle"] is None  # more customers would not change the interval's side
    assert "401" in row["reason"]
    assert set(table["decision"]) == {"inconclusive"}
    # with a smaller minimum the whole base is a go again
    ok = segment_profit(
        outcomes, arms, segments, "revenue", model, "control", ["lessons"], min_segment_size=400
    ).to_frame()
    assert ok.iloc[0]["decision"] == "go"


def test_a_segment_without_treated_customers_is_inconclusive() -> None:
    outcomes, arms, segments = _replicated(60)
    segments = segments.copy()
    # three control customers form their own segment, with no treated customer in it
    segments.iloc[[0, 1, 2]] = "only control"
    table = segment_profit(
        outcomes, arms, segments, "revenue", _model(), "control", ["lessons"]
    ).to_frame()
    row = table.set_index("segment").loc["only control"]
    assert (row["n_treated"], row["n_control"]) == (0, 3)
    assert row["decision"] == "inconclusive"
    assert np.isnan(row["incremental_profit"])
    assert "0 treated" in row["reason"]


def test_simulated_campaign_profit_interval_covers_the_true_profit() -> None:
    # ground truth from the simulator: the expected revenue of every customer with and
    # without the offer, pushed through the same arithmetic as the profit model
    sim = simulate("lower_check_offer", 60_000, 2026, ["offer"])
    index = sim.population.index
    rng = np.random.default_rng(99)
    arms = pd.Series(np.where(rng.random(len(index)) < 0.5, "offer", "control"), index=index)
    outcomes = sim.draw(arms)
    discount, contact, fixed = 0.15, 0.05, 3000.0
    model = ProfitModel(
        value_metric="revenue_30d",
        unit_value=1.0,
        margin=0.35,
        clv_multiplier=1.0,
        contact_cost=contact,
        fixed_cost=fixed,
        cost_models={"offer": LowerCheckOfferCost(discount, "revenue_30d")},
    )
    segments = rfm_segments(
        rfm_scores(sim.population, "recency_days", "frequency_180d", "monetary_180d")
    )
    result = segment_profit(
        outcomes, arms, segments, "revenue_30d", model, "control", ["offer"], alpha=0.05
    )
    table = result.to_frame().set_index("segment")

    with_offer = sim.expected("offer")["revenue_30d"].to_numpy()
    without = sim.expected("control")["revenue_30d"].to_numpy()
    # per customer: 0.35 * (E[rev | offer] - E[rev | control]) - 0.15 * E[rev | offer]
    # (the discount is paid on every order) - contact; then minus the fixed share
    true_gain = model.value_per_unit * (with_offer - without) - discount * with_offer - contact
    truth = true_gain.mean() - fixed / len(index)

    row = table.loc[ALL_CUSTOMERS]
    assert row["profit_ci_low"] <= truth <= row["profit_ci_high"], (
        f"true profit {truth:.3f} outside [{row['profit_ci_low']:.3f}, {row['profit_ci_high']:.3f}]"
    )
    # the interval is informative: narrower than the size of the discount on baseline orders,
    # so charging the discount only on incremental orders would be caught
    assert row["profit_ci_high"] - row["profit_ci_low"] < discount * without.mean()

    # per segment, at a Bonferroni-style 99.9% level over the five segments
    strict = segment_profit(
        outcomes, arms, segments, "revenue_30d", model, "control", ["offer"], alpha=0.001
    ).to_frame()
    strict = strict.set_index("segment").drop(ALL_CUSTOMERS)
    for name, row in strict.iterrows():
        mask = (segments == name).to_numpy()
        seg_truth = true_gain[mask].mean() - fixed / len(index)
        assert row["profit_ci_low"] <= seg_truth <= row["profit_ci_high"], name
    # the simulator makes some segments lose money and others gain: the verdicts differ
    assert {"go", "no_go"} <= set(strict["decision"])


def test_several_priced_metrics_are_valued_as_their_sum_by_hand() -> None:
    outcomes, arms, segments = _tiny()
    # revenue at 2 a unit and a taken trial at 4 (value.metrics); clv multiplier 3, margin 0.5,
    # so each unit of worth is 1.5 and a customer's worth is 2 * revenue + 4 * took
    model = ProfitModel("worth", 1.0, 0.5, 3.0, 0.0, 0.0, {}, parts={"revenue": 2.0, "took": 4.0})
    worth = 2.0 * outcomes["revenue"] + 4.0 * outcomes["took"]
    # control worth 0, 20, 40, 60; lessons worth 24, 40, 64, 124 (took 1, 0, 1, 1)
    assert worth.tolist() == [0.0, 20.0, 40.0, 60.0, 24.0, 40.0, 64.0, 124.0]
    assert net_value(outcomes, arms, model).tolist() == pytest.approx(1.5 * worth.to_numpy())
    row = (
        segment_profit(
            outcomes, arms, segments, "revenue", model, "control", ["lessons"], min_segment_size=2
        )
        .to_frame()
        .iloc[0]
    )
    # mean worth 63 against 30: 33 units of worth, 1.5 each
    assert row["incremental_clv"] == pytest.approx(49.5, abs=TOL)
    assert row["estimate"] == pytest.approx(15.0, abs=TOL)  # the primary metric, revenue
    low, high = CompareMeans(
        DescrStatsW([24.0, 40.0, 64.0, 124.0]), DescrStatsW([0.0, 20.0, 40.0, 60.0])
    ).tconfint_diff(alpha=0.05, usevar="unequal")
    assert row["clv_ci_low"] == pytest.approx(1.5 * low, abs=TOL)
    assert row["clv_ci_high"] == pytest.approx(1.5 * high, abs=TOL)
