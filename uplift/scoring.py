"""Scoring a customer base: predicted uplift, expected net value and the recommended arm.

A :class:`ScoringModel` holds what the experiment learned, refitted on all its customers:
the feature encoding, the chosen uplift learner on the primary metric, the same learner on
the value metric when that is another metric, the arm outcome models that the offer
costs need, and the economics of the spec. For every customer and treatment arm it gives

* the predicted uplift on the primary metric;
* the expected net value of treating with that arm rather than not at all::

      value_per_unit * uplift on the value metric - contact cost - E[offer cost | arm, x]

  Every cost model is linear in the outcomes it reads, so the expected offer cost is the
  cost of the arm's predicted outcomes (the predicted trial uptake, the predicted gross
  revenue on which the discount is paid). The campaign's fixed cost is not spread over
  customers: it does not change with whom is treated;
* the recommended arm: the arm with the highest expected net value when that is above
  zero, else none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import UpliftModel
from uplift.value.costs import CostModel

__all__ = ["NO_ARM", "ScoringModel", "net_value_column", "uplift_column"]

#: The recommended arm of a customer for whom no arm has a positive expected net value.
NO_ARM = "none"


def uplift_column(arm: str) -> str:
    """Output column of an arm's predicted uplift on the primary metric."""
    return f"uplift_{arm}"


def net_value_column(arm: str) -> str:
    """Output column of an arm's expected net value per customer."""
    return f"net_value_{arm}"


@dataclass(frozen=True)
class ScoringModel:
    """The chosen uplift model with the economics that turn its predictions into decisions."""

    id_column: str
    encoder: FeatureEncoder
    uplift: UpliftModel
    """The chosen learner on the primary metric, refitted on every customer."""
    metric: str
    """The primary metric."""
    value_per_unit: float
    """Lifetime profit of one unit of the value metric (CLV multiplier x margin x unit value)."""
    contact_cost: float
    cost_models: Mapping[str, CostModel]
    """Offer cost model of each treatment arm."""
    value_uplift: UpliftModel | None = None
    """The same learner on the value metric; ``None`` when the value metric is the primary."""
    arm_outcomes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Arm -> metric -> a fitted regressor of that metric among the arm's customers, for
    the metrics the arm's cost model reads."""
    learner: str = ""
    """The chosen learner's label."""

    @property
    def treatments(self) -> tuple[str, ...]:
        """The treatment arms, in output order."""
        return self.uplift.treatments

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns a population must hold."""
        return tuple(self.encoder.features)

    def output_columns(self) -> list[str]:
        """Columns of :meth:`predict`'s frame, in order."""
        return (
            [self.id_column]
            + [uplift_column(a) for a in self.treatments]
            + [net_value_column(a) for a in self.treatments]
            + ["recommended_arm"]
        )

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score the customers of ``frame`` (it needs the id column and the features).

        Returns
        -------
        pd.DataFrame
            One row per customer, in the order of ``frame``: the id, ``uplift_<arm>`` and
            ``net_value_<arm>`` per treatment arm, and ``recommended_arm`` (an arm or
            ``"none"``).
        """
        x = self.encoder.transform(frame).to_numpy(dtype=float)
        uplift = self.uplift.predict(x)
        value = uplift if self.value_uplift is None else self.value_uplift.predict(x)
        out: dict[str, Any] = {self.id_column: frame[self.id_column].to_numpy()}
        net = np.empty((len(frame), len(self.treatments)))
        for i, arm in enumerate(self.treatments):
            out[uplift_column(arm)] = uplift[arm].to_numpy()
            net[:, i] = (
                self.value_per_unit * value[arm].to_numpy()
                - self.contact_cost
                - self._expected_cost(arm, x)
            )
        for i, arm in enumerate(self.treatments):
            out[net_value_column(arm)] = net[:, i]
        if len(self.treatments):
            best = np.argmax(net, axis=1)
            positive = net[np.arange(len(frame)), best] > 0
            arms = np.asarray(self.treatments, dtype=object)[best]
            out["recommended_arm"] = np.where(positive, arms, NO_ARM)
        else:
            out["recommended_arm"] = np.full(len(frame), NO_ARM, dtype=object)
        return pd.DataFrame(out, index=frame.index)

    def _expected_cost(self, arm: str, x: np.ndarray) -> np.ndarray:
        model = self.cost_models[arm]
        metrics = model.outcome_metrics()
        predicted = pd.DataFrame(
            {m: np.asarray(self.arm_outcomes[arm][m].predict(x), dtype=float) for m in metrics},
            index=pd.RangeIndex(len(x)),
        )
        return np.asarray(model.cost(predicted), dtype=float)
