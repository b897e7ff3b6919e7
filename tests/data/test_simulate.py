"""Tests of uplift.data.simulate.

The simulators are the ground truth of other tests, so they are checked on their own:
determinism, the feature and outcome columns, agreement of drawn outcomes with the
expectations the simulator reports (sample means within four standard errors), and the
heterogeneity the module promises (segments that gain and segments that lose money).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift.data.simulate import SIMULATORS, Simulation, simulate
from uplift.value.clv import clv_multiplier
from uplift.value.rfm import rfm_scores, rfm_segments

KINDS = sorted(SIMULATORS)
FEATURES = ["recency_days", "frequency_180d", "monetary_180d", "tenure_days", "plan"]
VALUE_METRIC = {
    "trial_lessons": "revenue_60d",
    "feature_unlock": "revenue_90d",
    "lower_check_offer": "revenue_30d",
}

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class Economics:
    """What one treated customer is worth and costs, for the heterogeneity check."""

    arm_scale: float
    value_per_unit: float
    contact_cost: float
    offer_cost: Callable[[pd.DataFrame], np.ndarray]
    source: str


def _offer_cost(offer: dict[str, Any], value_column: str) -> Callable[[pd.DataFrame], np.ndarray]:
    # the offer's cost for a treated customer, from its expected outcomes under the offer
    if offer["kind"] == "trial_lessons":
        net = float(offer["delivery_cost"]) - float(offer["price"])
        return lambda e: net * e[offer.get("uptake_metric") or "took_trial"].to_numpy()
    if offer["kind"] == "feature_unlock":
        serving = float(offer["serving_cost_per_day"]) * int(offer["days"])
        return lambda e: np.full(len(e), serving)
    if offer["kind"] == "lower_check_offer":
        # the discount is paid on every order, including those that would have come anyway
        return lambda e: float(offer["discount"]) * e[value_column].to_numpy()
    raise AssertionError(f"unexpected offer kind {offer['kind']!r}")


def _economics(kind: str) -> Economics:
    """The economics of the example config of this kind in configs/, read as plain YAML.

    Without such a config, the brief's reasonable economics: trial lessons at margin 0.55
    and a net lesson cost of 9 per uptake; a feature unlock at margin 0.8 costing 3 to serve;
    a 15% discount at margin 0.35 with a CLV multiplier of 1.
    """
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        if config.get("hypothesis", {}).get("kind") != kind:
            continue
        assignment, economics = config["assignment"], config["economics"]
        control = assignment.get("control", "control")
        arm = next(a for a in assignment["arms"] if a != control)
        offer = (economics.get("offers") or {}).get(arm) or economics["offer"]
        value, outcomes = config["value"], config["outcomes"]
        metric = value.get("metric") or outcomes["primary"]
        clv = value.get("clv", {})
        # the CLV multiplier is checked against hand-computed cases in tests/value/test_clv.py
        multiplier = clv_multiplier(
            outcomes["window_days"],
            clv.get("horizon_months", 12.0),
            clv.get("annual_discount_rate", 0.1),
            clv.get("persistence", 0.0),
        )
        scale = (config["population"]["source"].get("arm_effects") or {}).get(arm, 1.0)
        return Economics(
            float(scale),
            multiplier * float(clv.get("margin", 1.0)) * float(value.get("unit_value", 1.0)),
            float(economics.get("contact_cost", 0.0)),
            _offer_cost(offer, outcomes["metrics"][metric]["column"]),
            path.name,
        )
    defaults = {
        "trial_lessons": (0.55, lambda e: 9.0 * e["took_trial"].to_numpy()),
        "feature_unlock": (0.8, lambda e: np.full(len(e), 3.0)),
        "lower_check_offer": (0.35, lambda e: 0.15 * e["revenue_30d"].to_numpy()),
    }
    margin, cost = defaults[kind]
    return Economics(1.0, margin, 0.0, cost, "defaults")


def _arms(sim: Simulation, arm: str) -> pd.Series:
    return pd.Series(arm, index=sim.population.index)


def _mixed_arms(sim: Simulation, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["control", "offer", "more"], len(sim.population))
    return pd.Series(labels, index=sim.population.index)


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def large(kind: str) -> Simulation:
    return simulate(kind, 20_000, 17, ["offer", "more"])


def test_there_is_a_simulator_per_kind() -> None:
    assert set(SIMULATORS) == {"trial_lessons", "feature_unlock", "lower_check_offer"}
    for name, cls in SIMULATORS.items():
        assert cls.kind == name


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="channel"):
        simulate("channel", 100, 0, ["offer"])


def test_population_and_outcomes_are_deterministic_for_a_seed(kind: str) -> None:
    a = simulate(kind, 3000, 5, ["offer"])
    b = simulate(kind, 3000, 5, ["offer"])
    pd.testing.assert_frame_equal(a.population, b.population)
    arms = _mixed_arms(a)
    pd.testing.assert_frame_equal(a.draw(arms), b.draw(arms))
    pd.testing.assert_frame_equal(a.draw(arms), a.draw(arms))
    other = simulate(kind, 3000, 6, ["offer"])
    assert not other.population["monetary_180d"].equals(a.population["monetary_180d"])


def test_population_has_the_features_and_unique_ids(kind: str, large: Simulation) -> None:
    pop = large.population
    assert len(pop) == 20_000
    assert set(FEATURES) <= set(pop.columns)
    assert pop["customer_id"].is_unique
    assert not pop[FEATURES].isna().any().any()
    assert (pop["recency_days"] >= 0).all()
    assert (pop["frequency_180d"] >= 0).all()
    assert (pop["monetary_180d"] >= 0).all()
    assert (pop["recency_days"] <= pop["tenure_days"]).all()
    # the pre-period twin of the value metric comes with the population
    for column, pre in large.simulator.pre_period.items():
        assert column in large.simulator.outcomes
        assert pre in pop.columns
        assert (pop[pre] >= 0).all()


def test_drawn_outcomes_have_the_declared_kinds(kind: str, large: Simulation) -> None:
    outcomes = large.draw(_mixed_arms(large))
    declared = large.simulator.outcomes
    assert list(outcomes.columns) == list(declared)
    assert outcomes.index.equals(large.population.index)
    assert VALUE_METRIC[kind] in declared
    assert declared[VALUE_METRIC[kind]] == "continuous"
    for column, outcome_kind in declared.items():
        values = outcomes[column]
        assert not values.isna().any(), column
        if outcome_kind == "binary":
            assert set(values.unique()) <= {0, 1}, column
            assert 0 < values.mean() < 1, column  # both values occur
        else:
            assert outcome_kind == "continuous"
            assert (values >= 0).all(), column
            assert values.std() > 0, column


@pytest.mark.parametrize("arm", ["control", "offer", "more"])
def test_sample_means_agree_with_the_expectations(kind: str, large: Simulation, arm: str) -> None:
    drawn = large.draw(_arms(large, arm))
    expected = large.expected(arm)
    assert list(expected.columns) == list(drawn.columns)
    assert expected.index.equals(drawn.index)
    n = len(drawn)
    for column in drawn.columns:
        # each draw has mean expected_i, so mean(draws) - mean(expected) has standard error
        # sqrt(sum var_i) / n, which the sample standard deviation over sqrt(n) bounds above
        se = drawn[column].std(ddof=1) / np.sqrt(n)
        gap = drawn[column].mean() - expected[column].mean()
        if se == 0:  # e.g. nobody takes an offer in the control arm
            assert gap == 0, (arm, column)
        else:
            assert abs(gap) < 4 * se, f"{arm}/{column}: gap {gap:.4g}, se {se:.4g}"


def test_arms_with_a_larger_effect_scale_move_the_value_metric_more(
    kind: str, large: Simulation
) -> None:
    metric = VALUE_METRIC[kind]
    control = large.expected("control")[metric].to_numpy()
    offer = large.expected("offer")[metric].to_numpy()
    more = large.expected("more")[metric].to_numpy()  # effect scale 1.5 by default
    assert not np.allclose(offer, control)
    assert np.abs(more - control).mean() > np.abs(offer - control).mean()


def test_arm_effects_override_the_default_scale(kind: str) -> None:
    sim = simulate(kind, 2000, 3, ["offer"], arm_effects={"offer": 0.0})
    pd.testing.assert_frame_equal(
        sim.expected("offer").drop(columns=_offer_only(kind)),
        sim.expected("control").drop(columns=_offer_only(kind)),
    )


def _offer_only(kind: str) -> list[str]:
    # outcomes that exist only when an offer is made (its uptake)
    return {"trial_lessons": ["took_trial"], "lower_check_offer": ["redeemed"]}.get(kind, [])


def test_a_customers_outcome_does_not_depend_on_who_else_is_drawn(kind: str) -> None:
    # the module promises: "the noise belongs to the customer's row, so it does not depend
    # on who else is drawn" and "the same customer in the same arm always has the same
    # outcome". Drawing a subset of the customers, or the same customers in another order,
    # must therefore give each of them the outcome they get when everyone is drawn.
    sim = simulate(kind, 2000, 8, ["offer"])
    arms = _mixed_arms(sim, seed=1).replace("more", "offer")
    everyone = sim.draw(arms)
    later_half = sim.draw(arms.iloc[1000:])
    pd.testing.assert_frame_equal(later_half, everyone.loc[later_half.index])
    shuffled = arms.sample(frac=1.0, random_state=4)
    pd.testing.assert_frame_equal(sim.draw(shuffled), everyone.loc[shuffled.index])


def test_effects_are_heterogeneous_across_rfm_segments(kind: str) -> None:
    # true net effect of the offer per customer, from the simulator's expectations:
    # value per unit * (E[value | offer] - E[value | control]) - offer cost - contact cost
    econ = _economics(kind)
    sim = simulate(kind, 20_000, 17, ["offer"], arm_effects={"offer": econ.arm_scale})
    metric = VALUE_METRIC[kind]
    with_offer = sim.expected("offer")
    gain = econ.value_per_unit * (with_offer[metric] - sim.expected("control")[metric])
    net = gain.to_numpy() - econ.offer_cost(with_offer) - econ.contact_cost
    segments = rfm_segments(
        rfm_scores(sim.population, "recency_days", "frequency_180d", "monetary_180d")
    )
    by_segment = pd.Series(net, index=sim.population.index).groupby(segments).mean()
    context = f"economics from {econ.source}: {by_segment.round(2).to_dict()}"
    # some segments gain clearly and some lose clearly (not just rounding around zero)
    assert by_segment.max() > 0.5, context
    assert by_segment.min() < -0.5, context
