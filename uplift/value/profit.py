"""Incremental value and profit per segment and arm, with intervals and verdicts.

Every customer gets a *net value*: the lifetime worth of the value metric
(``multiplier * margin * unit_value * metric``), minus, for treated customers, the
contact cost and the offer's cost on what they did. Incremental profit per treated
customer is the difference of mean net value between the arm and the control, minus the
fixed cost spread over the eligible base (the customers a rollout would treat). Its
interval is the Welch interval of that difference, so the uncertainty of the effect and
of the behaviour-dependent cost are carried together.

Beside the profit, each row carries

* the incremental CLV, ``value_per_unit`` times the effect on the value metric, with
  that multiple of the effect's Welch interval;
* the cost per treated customer (contact, the offer's cost on what the arm's customers
  did, and the fixed cost's share) with its interval;
* the ROI, incremental profit over that cost, with a delta-method interval that carries
  the covariance of the two (they share the arm's customers);
* the break-even uplift: the effect on the value metric per customer at which the
  campaign exactly pays for that cost, ``cost / value_per_unit``, with the cost's interval;
* for a row whose interval spans zero, the sample size that would settle it: the
  customers (arm and control together, in the same proportion) at which a true profit
  equal to the estimate would give an interval clear of zero with 80% power.

A segment and arm is ``go`` when the whole interval of incremental profit is above zero,
``no_go`` when it is below zero, ``inconclusive`` otherwise (including segments smaller
than the minimum size in either group).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from uplift.analysis.effects import welch_effect
from uplift.value.costs import CostModel

__all__ = [
    "ALL_CUSTOMERS",
    "SETTLING_POWER",
    "ProfitModel",
    "SegmentResults",
    "net_value",
    "segment_profit",
    "treatment_cost",
]

#: The power at which an inconclusive row's ``n_to_settle`` would settle it.
SETTLING_POWER = 0.8

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
    parts: Mapping[str, float] | None = None
    """Priced metric -> worth of one unit, when the value metric is their sum (a column
    that the outcomes need not hold); ``None`` when it is an outcome metric itself."""

    @property
    def value_per_unit(self) -> float:
        """Lifetime profit of one unit of the value metric in the window."""
        return self.clv_multiplier * self.margin * self.unit_value

    def value_of(self, outcomes: pd.DataFrame) -> np.ndarray:
        """Each customer's value metric: the column itself, or the sum of the ``parts``."""
        if self.parts is None:
            return outcomes[self.value_metric].to_numpy(dtype=float)
        total = np.zeros(len(outcomes))
        for metric, worth in self.parts.items():
            total += worth * outcomes[metric].to_numpy(dtype=float)
        return total


def treatment_cost(outcomes: pd.DataFrame, arms: pd.Series, model: ProfitModel) -> pd.Series:
    """Each customer's treatment cost: contact and offer cost in a treatment arm, else 0."""
    cost = np.zeros(len(outcomes))
    arm_values = arms.to_numpy()
    for arm, cost_model in model.cost_models.items():
        treated = arm_values == arm
        if treated.any():
            cost[treated] = model.contact_cost + cost_model.cost(outcomes.loc[treated])
    return pd.Series(cost, index=outcomes.index, name="treatment_cost")


def net_value(outcomes: pd.DataFrame, arms: pd.Series, model: ProfitModel) -> pd.Series:
    """Each customer's net value: lifetime worth of the value metric minus treatment costs."""
    value = model.value_per_unit * model.value_of(outcomes)
    value -= treatment_cost(outcomes, arms, model).to_numpy()
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
            "break_even_uplift",
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
    baseline_clv: pd.Series | None = None,
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
    baseline_clv : pd.Series, optional
        Each customer's CLV without the campaign (indexed like ``arms``): each row then
        carries the segment's mean ``baseline_clv`` over all its customers and
        ``clv_lift``, the incremental CLV as a share of it.
    """
    spent = treatment_cost(outcomes, arms, model).to_numpy()
    value = model.value_of(outcomes)
    net = model.value_per_unit * value - spent
    baseline = None if baseline_clv is None else baseline_clv.to_numpy(dtype=float)
    # units of the value metric per unit of money: cost x per_unit is the break-even uplift
    per_unit = 1.0 / model.value_per_unit if model.value_per_unit > 0 else float("nan")
    y = outcomes[primary].to_numpy(dtype=float)
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
            segment_baseline = None if baseline is None else float(baseline[in_segment].mean())
            if segment_baseline is not None:
                row["baseline_clv"] = segment_baseline
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
            # a multiple of the value metric's Welch interval (sorted: a unit can cost money)
            clv_low, clv_high = sorted(
                model.value_per_unit * np.array([value_effect.ci_low, value_effect.ci_high])
            )
            estimate = profit.estimate - fixed_share
            low, high = profit.ci_low - fixed_share, profit.ci_high - fixed_share
            economics = _cost_and_roi(
                net[is_arm], spent[is_arm], estimate, profit.std_error, fixed_share, alpha
            )
            cost = economics["cost_per_customer"]
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
                    "clv_ci_low": float(clv_low),
                    "clv_ci_high": float(clv_high),
                    **_lift(clv, segment_baseline),
                    "incremental_profit": estimate,
                    "profit_se": profit.std_error,
                    "profit_ci_low": low,
                    "profit_ci_high": high,
                    **economics,
                    # the cost per treated customer, itemized
                    "contact_cost": model.contact_cost,
                    "offer_cost": float(spent[is_arm].mean()) - model.contact_cost,
                    "fixed_cost_share": fixed_share,
                    "break_even_uplift": cost * per_unit,
                    "break_even_ci_low": economics["cost_ci_low"] * per_unit,
                    "break_even_ci_high": economics["cost_ci_high"] * per_unit,
                    "total_incremental_profit": estimate * int(in_segment.sum()),
                    "n_to_settle": _n_to_settle(n_t + n_c, estimate, profit.std_error, alpha)
                    if low <= 0 <= high
                    else None,
                    "decision": decision,
                    "reason": reason,
                }
            )
    return SegmentResults(pd.DataFrame(rows), alpha)


def _lift(clv: float, baseline: float | None) -> dict[str, float | None]:
    """``clv_lift``: incremental over baseline CLV (no key without a baseline)."""
    if baseline is None:
        return {}
    return {"clv_lift": clv / baseline if baseline else None}


def _cost_and_roi(
    net: np.ndarray,
    cost: np.ndarray,
    profit: float,
    profit_se: float,
    fixed_share: float,
    alpha: float,
) -> dict[str, float]:
    """Cost per treated customer and ROI, with intervals, from the arm's customers.

    The cost per treated customer is the arm's mean treatment cost plus the fixed cost's
    share; its standard error is that of the mean. The ROI ``profit / cost`` gets a
    delta-method standard error: the profit's mean net value and the mean cost are both
    means over the arm's customers, so their covariance is ``cov(net_i, cost_i) / n``.
    """
    n = len(cost)
    q = float(stats.norm.ppf(1 - alpha / 2))
    mean_cost = float(cost.mean()) + fixed_share
    cost_var = float(cost.var(ddof=1)) / n if n > 1 else float("nan")
    cost_se = float(np.sqrt(cost_var))
    out = {
        "cost_per_customer": mean_cost,
        "cost_ci_low": mean_cost - q * cost_se,
        "cost_ci_high": mean_cost + q * cost_se,
        "roi": float("nan"),
        "roi_ci_low": float("nan"),
        "roi_ci_high": float("nan"),
    }
    if mean_cost <= 0:
        return out
    roi = profit / mean_cost
    cov = float(np.cov(net, cost, ddof=1)[0, 1]) / n if n > 1 else float("nan")
    # d(P/C) = dP / C - P dC / C^2
    var = (profit_se**2 + roi**2 * cost_var - 2 * roi * cov) / mean_cost**2
    se = float(np.sqrt(max(var, 0.0)))
    out.update({"roi": roi, "roi_ci_low": roi - q * se, "roi_ci_high": roi + q * se})
    return out


def _n_to_settle(n: int, estimate: float, se: float, alpha: float) -> float | None:
    """Customers (arm and control together) that would settle a row whose interval spans 0.

    With the same split, the standard error scales as ``1 / sqrt(n)``; a true profit equal
    to the estimate gives an interval clear of zero with probability
    :data:`SETTLING_POWER` once ``|estimate| / se`` reaches ``z(1 - alpha/2) + z(power)``.
    """
    if not np.isfinite(se) or se <= 0 or estimate == 0:
        return None
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(SETTLING_POWER))
    return float(np.ceil(n * (z * se / abs(estimate)) ** 2))
