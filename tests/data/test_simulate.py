"""Tests of uplift.data.simulate.

The simulators are the ground truth of other tests, so they are checked on their own:
determinism, the feature and outcome columns, agreement of drawn outcomes with the
expectations the simulator reports (sample means within four standard errors), and the
heterogeneity the module promises (segments that gain and segments that lose money).

The end-of-window RFM columns are checked against the module's documented roll-forward,
re-derived here from the noise, and the window's outcomes against checksums recorded
before those columns were added (they must not have moved).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift.data.simulate import LOOKBACK_DAYS, NOISE_COLUMNS, SIMULATORS, Simulation, simulate
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

#: The window's outcomes, as they were before the end-of-window columns were added.
WINDOW_OUTCOMES = {
    "trial_lessons": ["took_trial", "bought_course", "revenue_60d"],
    "feature_unlock": ["upgraded", "churned", "revenue_90d"],
    "lower_check_offer": ["redeemed", "orders_30d", "revenue_30d"],
}
END_COLUMNS = ["recency_days_end", "frequency_180d_end", "monetary_180d_end"]

#: sha256 (first 16 hex digits) of ``frame.to_csv(float_format="%.10g")`` of the population,
#: the drawn window outcomes and the expected window outcomes of control, offer and more
#: (side by side), for simulate(kind, 2000, 8, ["offer", "more"]) and the arms of
#: _mixed_arms(seed=0); recorded from the simulators before the end-of-window columns.
CHECKSUMS = {
    "feature_unlock": ("0346da1002a83f7a", "b726fbb9b284a411", "c4dd15748b1f8ff2"),
    "lower_check_offer": ("db61975b23657730", "87276e29c87e51ca", "2aefc7c74dfac63c"),
    "trial_lessons": ("5fba44f5fc6dab73", "9971bebe625e9914", "57d62be0d4767a31"),
}


@dataclass(frozen=True)
class Economics:
    """What one treated customer is worth and costs, for the heterogeneity check."""

    arm_scale: float
    value_per_unit: float
    contact_cost: float
    offer_cost: Callable[[pd.DataFrame], np.ndarray]
    source: str
    value_column: str
    """The simulator's column of the value metric that ``value_per_unit`` prices."""


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
            outcomes["metrics"][metric]["column"],
        )
    defaults = {
        "trial_lessons": (0.55, lambda e: 9.0 * e["took_trial"].to_numpy()),
        "feature_unlock": (0.8, lambda e: np.full(len(e), 3.0)),
        "lower_check_offer": (0.35, lambda e: 0.15 * e["revenue_30d"].to_numpy()),
    }
    margin, cost = defaults[kind]
    return Economics(1.0, margin, 0.0, cost, "defaults", VALUE_METRIC[kind])


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
    metric = econ.value_column
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


# --- the end of the window ----------------------------------------------------------------


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(float_format="%.10g").encode()).hexdigest()[:16]


def test_window_outcomes_did_not_move_when_end_of_window_columns_came(kind: str) -> None:
    sim = simulate(kind, 2000, 8, ["offer", "more"])
    columns = WINDOW_OUTCOMES[kind]
    drawn = sim.draw(_mixed_arms(sim))[columns]
    expected = pd.concat(
        [sim.expected(arm)[columns] for arm in ("control", "offer", "more")], axis=1
    )
    assert (_digest(sim.population), _digest(drawn), _digest(expected)) == CHECKSUMS[kind]
    # the window's four uniforms are the stream they always were
    np.testing.assert_array_equal(
        sim.noise()[:, :4], np.random.default_rng([8, 1]).random((2000, 4))
    )
    assert sim.noise().shape == (2000, NOISE_COLUMNS)


def test_end_of_window_columns_are_declared_outcomes(kind: str) -> None:
    simulator = SIMULATORS[kind]
    assert list(simulator.end_of_window) == ["recency_days", "frequency_180d", "monetary_180d"]
    assert list(simulator.end_of_window.values()) == END_COLUMNS
    assert list(simulator.outcomes) == [*WINDOW_OUTCOMES[kind], *END_COLUMNS]
    assert all(simulator.outcomes[c] == "continuous" for c in END_COLUMNS)
    assert simulator.window_days == int(WINDOW_OUTCOMES[kind][2].removeprefix("revenue_")[:-1])


def _window_purchases(
    kind: str, drawn: pd.DataFrame, noise: np.ndarray, kept_spend: np.ndarray
) -> np.ndarray:
    """Purchases in the window, as the module docstring defines them."""
    if kind == "trial_lessons":  # the course and the extra purchase
        return drawn["bought_course"].to_numpy() + (noise[:, 2] < 0.25)
    if kind == "lower_check_offer":  # the orders
        return drawn["orders_30d"].to_numpy()
    # feature unlock: the paid months of an upgrade, at 49 each (re-derived from M below)
    return np.round((drawn["monetary_180d_end"].to_numpy() - kept_spend) / 49.0).astype(int)


def test_end_of_window_columns_follow_the_documented_roll_forward(kind: str) -> None:
    sim = simulate(kind, 5000, 12, ["offer"])
    arms = _mixed_arms(sim, seed=3).replace("more", "offer")
    drawn = sim.draw(arms)
    noise = sim.noise()
    pop = sim.population
    w = sim.simulator.window_days
    f0 = pop["frequency_180d"].to_numpy()
    m0 = pop["monetary_180d"].to_numpy()
    r0 = pop["recency_days"].to_numpy()
    # kept: none once the last purchase leaves the look-back, else f0 * (180 - w) / 180
    # rounded up with the probability of its fraction, and at least the last purchase
    inside = (f0 > 0) & (r0 < LOOKBACK_DAYS - w)
    share = (LOOKBACK_DAYS - w) / LOOKBACK_DAYS
    kept = np.where(inside, np.maximum(1, np.floor(f0 * share + noise[:, 4])), 0)
    per_purchase = np.divide(m0, f0, out=np.zeros(len(pop)), where=f0 > 0)
    kept_spend = per_purchase * kept
    k = _window_purchases(kind, drawn, noise, kept_spend)
    spend = {
        "trial_lessons": drawn.get("revenue_60d"),
        "lower_check_offer": drawn.get("revenue_30d"),
    }.get(kind)
    window_spend = 49.0 * k if spend is None else spend.to_numpy()
    np.testing.assert_array_equal(drawn["frequency_180d_end"].to_numpy(), kept + k)
    np.testing.assert_allclose(
        drawn["monetary_180d_end"].to_numpy(), np.round(kept_spend + window_spend, 2), atol=5e-3
    )
    with np.errstate(divide="ignore"):
        last = np.floor(w * (1 - noise[:, 5] ** (1 / np.maximum(k, 1))))
    recency = np.where(k > 0, np.minimum(last, w - 1), r0 + w)
    np.testing.assert_array_equal(drawn["recency_days_end"].to_numpy(), recency)
    # sanity of the result itself
    assert (kept <= f0).all()
    assert ((drawn["recency_days_end"] < w) == (k > 0)).all()
    assert (drawn[END_COLUMNS] >= 0).all(axis=None)
    if kind == "feature_unlock":
        assert set(np.unique(k)) <= {0, 1, 2, 3}
        assert (k[drawn["upgraded"].to_numpy() == 0] == 0).all()


def test_the_offer_moves_f_and_m_up_for_those_it_makes_buy_more(kind: str) -> None:
    sim = simulate(kind, 20_000, 17, ["offer"])
    gain = sim.expected("offer")[END_COLUMNS] - sim.expected("control")[END_COLUMNS]
    df, dm = gain["frequency_180d_end"].to_numpy(), gain["monetary_180d_end"].to_numpy()
    # F and M at the end move together: both follow the extra window purchases
    np.testing.assert_array_equal(np.sign(np.round(df, 12)), np.sign(np.round(dm, 12)))
    assert (df > 0.01).mean() > 0.5
    if kind == "feature_unlock":
        # the free month delays the upgrades of heavy users: their F and M fall
        assert (df < -0.01).mean() > 0.05
    else:
        assert (df >= 0).all() and (dm >= 0).all()
        # buying in the window makes the last purchase more recent
        assert (gain["recency_days_end"] <= 1e-9).all()


def test_draw_refuses_noise_of_the_wrong_shape() -> None:
    sim = simulate("lower_check_offer", 10, 1, ["offer"])
    with pytest.raises(ValueError, match="6 uniform numbers"):
        sim.simulator.draw(sim.population, np.zeros(10), sim.noise()[:, :4])
