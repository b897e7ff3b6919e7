"""Tests of uplift.value.costs: hand-computed costs on a tiny outcomes frame, the
scikit-learn parameter contract, and the mapping from the spec's offer blocks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter
from sklearn.base import clone

from uplift.errors import DataError
from uplift.spec import (
    ChannelOffer,
    FeatureUnlockOffer,
    LowerCheckOffer,
    Offer,
    TrialLessonsOffer,
)
from uplift.value.costs import (
    ChannelCost,
    CostModel,
    FeatureUnlockCost,
    LowerCheckOfferCost,
    NoOfferCost,
    TrialLessonsCost,
    cost_model_for,
)


@pytest.fixture
def outcomes() -> pd.DataFrame:
    return pd.DataFrame(
        {"took_trial": [1, 0, 1, 0], "revenue": [100.0, 0.0, 50.5, 20.0]},
        index=pd.Index(["c9", "c3", "c7", "c1"], name="customer_id"),
    )


def test_trial_lessons_charge_delivery_minus_price_to_who_took_them(
    outcomes: pd.DataFrame,
) -> None:
    # by hand: 14 - 5 = 9 for each customer who took the lessons, 0 otherwise
    cost = TrialLessonsCost(price=5.0, delivery_cost=14.0, uptake_metric="took_trial")
    np.testing.assert_allclose(cost.cost(outcomes), [9.0, 0.0, 9.0, 0.0], atol=1e-12)


def test_trial_lessons_without_uptake_metric_charge_everyone(outcomes: pd.DataFrame) -> None:
    cost = TrialLessonsCost(price=10.0, delivery_cost=28.0)
    np.testing.assert_allclose(cost.cost(outcomes), [18.0] * 4, atol=1e-12)


def test_feature_unlock_charges_serving_for_the_days(outcomes: pd.DataFrame) -> None:
    # by hand: 0.1 per day for 30 days = 3.0 per treated account, whatever it did
    cost = FeatureUnlockCost(serving_cost_per_day=0.1, days=30)
    np.testing.assert_allclose(cost.cost(outcomes), [3.0] * 4, atol=1e-12)


def test_lower_check_offer_pays_the_discount_on_every_order(outcomes: pd.DataFrame) -> None:
    # by hand: 15% of each customer's gross revenue, orders they would have placed anyway
    # included: 15.0, 0.0, 7.575, 3.0
    cost = LowerCheckOfferCost(discount=0.15, revenue_metric="revenue")
    np.testing.assert_allclose(cost.cost(outcomes), [15.0, 0.0, 7.575, 3.0], atol=1e-12)


def test_channel_and_no_offer(outcomes: pd.DataFrame) -> None:
    np.testing.assert_allclose(ChannelCost(0.35).cost(outcomes), [0.35] * 4, atol=1e-12)
    np.testing.assert_array_equal(NoOfferCost().cost(outcomes), np.zeros(4))


def test_costs_on_an_empty_frame(outcomes: pd.DataFrame) -> None:
    empty = outcomes.iloc[:0]
    for model in (
        TrialLessonsCost(5.0, 14.0, "took_trial"),
        FeatureUnlockCost(0.1, 30),
        LowerCheckOfferCost(0.15, "revenue"),
        ChannelCost(0.35),
        NoOfferCost(),
    ):
        assert model.cost(empty).shape == (0,)


@pytest.mark.parametrize(
    ("model", "metric"),
    [
        (TrialLessonsCost(5.0, 14.0, "took_lessons"), "took_lessons"),
        (LowerCheckOfferCost(0.15, "revenue_30d"), "revenue_30d"),
    ],
)
def test_a_missing_metric_is_named(model: CostModel, metric: str, outcomes: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=metric):
        model.cost(outcomes)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (
            TrialLessonsCost(5.0, 14.0, "took_trial"),
            {"price": 5.0, "delivery_cost": 14.0, "uptake_metric": "took_trial"},
        ),
        (FeatureUnlockCost(0.1, 30), {"serving_cost_per_day": 0.1, "days": 30}),
        (LowerCheckOfferCost(0.15, "revenue"), {"discount": 0.15, "revenue_metric": "revenue"}),
        (ChannelCost(0.35), {"cost_per_contact": 0.35}),
        (NoOfferCost(), {}),
    ],
)
def test_scikit_learn_parameter_contract(model: CostModel, params: dict[str, object]) -> None:
    assert model.get_params() == params
    copy = clone(model)
    assert copy is not model
    assert type(copy) is type(model)
    assert copy.get_params() == params
    if params:
        name = next(iter(params))
        changed = clone(model).set_params(**{name: 0.5})
        assert changed.get_params()[name] == 0.5
        assert model.get_params()[name] == params[name]


def test_cost_model_for_trial_lessons() -> None:
    offer = TrialLessonsOffer(
        kind="trial_lessons", price=5.0, delivery_cost=14.0, uptake_metric="took_trial"
    )
    model = cost_model_for(offer, "revenue")
    assert isinstance(model, TrialLessonsCost)
    assert model.get_params() == {
        "price": 5.0,
        "delivery_cost": 14.0,
        "uptake_metric": "took_trial",
    }


def test_cost_model_for_feature_unlock() -> None:
    offer = FeatureUnlockOffer(kind="feature_unlock", serving_cost_per_day=0.1, days=30)
    model = cost_model_for(offer, "revenue_90d")
    assert isinstance(model, FeatureUnlockCost)
    assert model.get_params() == {"serving_cost_per_day": 0.1, "days": 30}


def test_cost_model_for_lower_check_offer_charges_the_value_metric() -> None:
    offer = LowerCheckOffer(kind="lower_check_offer", discount=0.15)
    model = cost_model_for(offer, "revenue")
    assert isinstance(model, LowerCheckOfferCost)
    assert model.get_params() == {"discount": 0.15, "revenue_metric": "revenue"}


def test_cost_model_for_channel_and_no_offer() -> None:
    model = cost_model_for(ChannelOffer(kind="channel", cost=0.35), "revenue")
    assert isinstance(model, ChannelCost)
    assert model.get_params() == {"cost_per_contact": 0.35}
    assert isinstance(cost_model_for(None, "revenue"), NoOfferCost)


def test_cost_model_for_offers_parsed_from_yaml_like_dicts(outcomes: pd.DataFrame) -> None:
    adapter: TypeAdapter[object] = TypeAdapter(Offer)
    two_lessons = adapter.validate_python(
        {
            "kind": "trial_lessons",
            "price": 5.0,
            "delivery_cost": 14.0,
            "uptake_metric": "took_trial",
        }
    )
    discount = adapter.validate_python({"kind": "lower_check_offer", "discount": 0.2})
    np.testing.assert_allclose(
        cost_model_for(two_lessons, "revenue").cost(outcomes), [9.0, 0.0, 9.0, 0.0], atol=1e-12
    )
    # by hand: 20% of 100, 0, 50.5, 20
    np.testing.assert_allclose(
        cost_model_for(discount, "revenue").cost(outcomes), [20.0, 0.0, 10.1, 4.0], atol=1e-12
    )


def test_cost_model_for_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="custom"):
        cost_model_for(SimpleNamespace(kind="custom"), "revenue")
