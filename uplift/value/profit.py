"""Incremental value and profit per segment and arm, with intervals and verdicts.

Every customer gets a *net value*: the lifetime worth of the value metric
(``multiplier * margin * unit_value * metric``), minus, for treated customers, the
contact cost and the offer's cost on what they did. Incremental profit per treated
customer is the difference of mean net value between the arm and the control, minus the
fixed cost spread over the eligible base (the customers a rollout would treat). Its
interval is the Welch interval of that difference, so the uncertainty of the effect and
of the behaviour-dependent cost are carried together.

A segment and arm is ``go`` when the whole interval of incremental profit is above zero,
``no_go`` when it is below zero, ``inconclusive`` otherwise (including segments smaller
than the minimum size in either group).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.analysis.effects import welch_effect
from uplift.value.costs import CostModel

__all__ = ["ALL_CUSTOMERS", "ProfitModel", "SegmentResults", "net_value", "segment_profit"]

#: The segment label of the whole eligible base.
ALL_CUSTOMERS = "All customers"


@dataclass(frozen=True)
class ProfitModel:
    """Everything that turns outcomes into money."""

    value_metric: str
    unit_value: float
    margin: float
    clv_multiplier: float
    contact_cost: float
    fixed_cost: float
    cost_models: Mapping[str, CostModel]

    @property
    def value_per_unit(self) -> float:
        """Lifetime profit of one unit of the value metric in the window."""
        return self.clv_multiplier * self.margin * self.unit_value


def net_value(outcomes: pd.DataFrame, arms: pd.Series, model: ProfitModel) -> pd.Series:
    """Each customer's net value: lifetime worth of the value metric minus treatment costs."""
    value = model.value_per_unit * outcomes[model.value_metric].to_numpy(dtype=float)
    arm_values = arms.to_numpy()
    for arm, cost_model in model.cost_models.items():
        treated = arm_values == arm
        if treated.any():
            value[treated] -= model.contact_cost + cost_model.cost(outcomes.loc[treated])
    return pd.Series(value, index=outcomes.index, name="net_value")


@dataclass(frozen=True)
class SegmentResults:
    """Per segment and arm: effect, incremental CLV, cost, profit, ROI and verdict."""

    table: pd.DataFrame
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        """One row per segment and arm."""
        return self.table.copy()

    def summary(self) -> str:
        """A plain-text table of verdicts."""
        cols = [
            "segment",
            "arm",
            "n",
            "estimate",
            "incremental_clv",
            "cost_per_customer",
            "incremental_profit",
            "profit_ci_low",
            "profit_ci_high",
            "roi",
            "decision",
        ]
        return self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")


def segment_profit(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    segments: pd.Series,
    primary: str,
    model: ProfitModel,
    control: str,
    treatments: Sequence[str],
    *,
    alpha: float = 0.05,
    min_segment_size: int = 200,
) -> SegmentResults:
    """Effect on the primary metric and incremental profit for every segment and arm.

    Parameters
    ----------
    outcomes : pd.DataFrame
        Outcomes by metric name, indexed like ``arms``.
    arms : pd.Series
        Each customer's arm.
    segments : pd.Series
        Each customer's segment label.
    primary : str
        The metric whose effect is reported beside the money.
    model : ProfitModel
        Value and costs.
    control : str
        The control arm.
    treatments : sequence of str
        Treatment arms.
    alpha : float
        One minus the confidence level of the intervals.
    min_segment_size : int
        Fewer customers than this in the arm or the control makes the segment
        ``inconclusive`` whatever its interval.
    """
    net = net_value(outcomes, arms, model).to_numpy()
    y = outcomes[primary].to_numpy(dtype=float)
    value = outcomes[model.value_metric].to_numpy(dtype=float)
    arm_values = arms.to_numpy()
    fixed_share = model.fixed_cost / max(len(arms), 1)
    labels = [(ALL_CUSTOMERS, np.ones(len(arms), dtype=bool))]
    seg_values = segments.to_numpy()
    labels += [(str(s), seg_values == s) for s in pd.unique(seg_values)]
    rows = []
    for label, in_segment in labels:
        is_control = in_segment & (arm_values == control)
        for arm in treatments:
            is_arm = in_segment & (arm_values == arm)
            n_t, n_c = int(is_arm.sum()), int(is_control.sum())
            row: dict[str, object] = {
                "segment": label,
                "arm": arm,
                "n": n_t + n_c,
                "n_treated": n_t,
                "n_control": n_c,
                "eligible": int(in_segment.sum()),
            }
            if min(n_t, n_c) < 2:
                rows.append(
                    {
                        **row,
                        "decision": "inconclusive",
                        "reason": f"only {n_t} treated and {n_c} control customers",
                    }
                )
                continue
            effect = welch_effect(y[is_arm], y[is_control], alpha)
            value_effect = welch_effect(value[is_arm], value[is_control], alpha)
            profit = welch_effect(net[is_arm], net[is_control], alpha)
            clv = model.value_per_unit * value_effect.estimate
            estimate = profit.estimate - fixed_share
            low, high = profit.ci_low - fixed_share, profit.ci_high - fixed_share
            cost = clv - estimate
            if min(n_t, n_c) < min_segment_size:
                decision, reason = (
                    "inconclusive",
                    (f"fewer than {min_segment_size} customers in the arm or the control"),
                )
            elif low > 0:
                decision, reason = "go", "incremental profit interval above zero"
            elif high < 0:
                decision, reason = "no_go", "incremental profit interval below zero"
            else:
                decision, reason = "inconclusive", "incremental profit interval spans zero"
            rows.append(
                {
                    **row,
                    "estimate": effect.estimate,
                    "ci_low": effect.ci_low,
                    "ci_high": effect.ci_high,
                    "p_value": effect.p_value,
                    "incremental_clv": clv,
                    "cost_per_customer": cost,
                    "incremental_profit": estimate,
                    "profit_se": profit.std_error,
                    "profit_ci_low": low,
                    "profit_ci_high": high,
                    "roi": estimate / cost if cost > 0 else float("nan"),
                    "total_incremental_profit": estimate * int(in_segment.sum()),
                    "decision": decision,
                    "reason": reason,
                }
            )
    return SegmentResults(pd.DataFrame(rows), alpha)
