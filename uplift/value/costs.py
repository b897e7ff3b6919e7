"""Cost models: what treating one customer costs, per hypothesis kind.

Each model follows scikit-learn's parameter contract (``__init__`` stores its
parameters, ``get_params`` returns them) and maps a treated customer's observed outcomes
to the offer's cost for that customer. Costs that depend on behaviour are charged on
what treated customers actually did, including what they would have done anyway: the
discount is paid on every order, the trial lessons are delivered to whoever takes them.
The contact cost and the fixed cost are added by the profit calculation, not here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from uplift.errors import DataError

__all__ = [
    "ChannelCost",
    "CostModel",
    "FeatureUnlockCost",
    "LowerCheckOfferCost",
    "NoOfferCost",
    "TrialLessonsCost",
    "cost_model_for",
]


class CostModel(BaseEstimator):
    """Base class: ``cost(outcomes)`` gives each treated customer's offer cost.

    Every cost is linear in the outcomes it reads (:meth:`outcome_metrics`), so the
    expected cost of a customer is the cost of their expected outcomes: scoring a new
    customer only needs a prediction of those metrics in the arm.
    """

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        """Offer cost per treated customer, given their outcomes (columns by metric name)."""
        raise NotImplementedError

    def outcome_metrics(self) -> tuple[str, ...]:
        """The metrics the cost depends on (none: the same cost for every treated customer)."""
        return ()

    def _column(self, outcomes: pd.DataFrame, metric: str) -> np.ndarray:
        if metric not in outcomes.columns:
            raise DataError(f"{type(self).__name__} needs metric {metric!r} in the outcomes.")
        return outcomes[metric].to_numpy(dtype=float)


class NoOfferCost(CostModel):
    """The arm costs nothing beyond the contact."""

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(outcomes))


class TrialLessonsCost(CostModel):
    """Paid trial lessons: delivery cost minus the price, for every customer who takes them.

    Parameters
    ----------
    price : float
        What the customer pays for the lessons.
    delivery_cost : float
        What delivering the lessons costs.
    uptake_metric : str or None
        Binary metric of who took the lessons; ``None`` charges every treated customer.
    """

    def __init__(self, price: float, delivery_cost: float, uptake_metric: str | None = None):
        self.price = price
        self.delivery_cost = delivery_cost
        self.uptake_metric = uptake_metric

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        took = (
            np.ones(len(outcomes))
            if self.uptake_metric is None
            else self._column(outcomes, self.uptake_metric)
        )
        return (self.delivery_cost - self.price) * took

    def outcome_metrics(self) -> tuple[str, ...]:
        return () if self.uptake_metric is None else (self.uptake_metric,)


class FeatureUnlockCost(CostModel):
    """Unlocked paid features: the serving cost for the days they are open.

    Upgrade revenue delayed by customers who would have paid anyway is not charged here:
    it is measured. Those customers pay less in the outcome window than they would have in
    the control, so the effect on a revenue metric already nets it out (the spec refuses a
    window shorter than the unlock, which would miss part of it). Charging it again here
    would count it twice, and per customer it cannot be charged on what the treated did:
    it depends on whether they would have upgraded without the offer.
    """

    def __init__(self, serving_cost_per_day: float, days: int):
        self.serving_cost_per_day = serving_cost_per_day
        self.days = days

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        return np.full(len(outcomes), self.serving_cost_per_day * self.days)


class LowerCheckOfferCost(CostModel):
    """A discount paid on every order of a treated customer in the window.

    Parameters
    ----------
    discount : float
        Share of the check given back.
    revenue_metric : str
        Metric holding each customer's gross (pre-discount) revenue in the window.
    """

    def __init__(self, discount: float, revenue_metric: str):
        self.discount = discount
        self.revenue_metric = revenue_metric

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        return self.discount * self._column(outcomes, self.revenue_metric)

    def outcome_metrics(self) -> tuple[str, ...]:
        return (self.revenue_metric,)


class ChannelCost(CostModel):
    """A channel's own cost per contacted customer."""

    def __init__(self, cost_per_contact: float):
        self.cost_per_contact = cost_per_contact

    def cost(self, outcomes: pd.DataFrame) -> np.ndarray:
        return np.full(len(outcomes), self.cost_per_contact)


def cost_model_for(offer: Any, value_metric: str) -> CostModel:
    """The cost model of an offer block of the spec (``None``: no offer cost)."""
    if offer is None:
        return NoOfferCost()
    if offer.kind == "trial_lessons":
        return TrialLessonsCost(offer.price, offer.delivery_cost, offer.uptake_metric)
    if offer.kind == "feature_unlock":
        return FeatureUnlockCost(offer.serving_cost_per_day, offer.days)
    if offer.kind == "lower_check_offer":
        return LowerCheckOfferCost(offer.discount, offer.revenue_metric or value_metric)
    if offer.kind == "channel":
        return ChannelCost(offer.cost)
    raise ValueError(f"no cost model for offer kind {offer.kind!r}")
