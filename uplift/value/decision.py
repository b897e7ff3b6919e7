"""The campaign verdict, weighing treat-all, the per-customer policy and the segment rule."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from uplift.value.policy import NO_ARM, PolicyEvaluation, PolicyValue
from uplift.value.profit import ALL_CUSTOMERS, SegmentResults

__all__ = ["CampaignDecision", "SegmentPolicy", "decide", "segment_rule"]


@dataclass(frozen=True)
class SegmentPolicy:
    """Treat the segments whose profit interval is above zero, each with its best arm.

    The expected incremental profit is the sum over treated segments of profit per
    customer times segment size; its interval treats segments as independent. Choosing
    segments on the same data that estimates them flatters the estimate (winner's
    curse): read it as an upper-leaning guide until a holdout confirms it.
    """

    treated: list[dict[str, object]] = field(default_factory=list)
    treat_share: float = 0.0
    expected_incremental_profit: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 0.0


@dataclass(frozen=True)
class CampaignDecision:
    """The verdict on the campaign, its reason, and the rules it weighed.

    ``policy`` is the per-customer targeting policy (what ``uplift score`` applies), valued
    out of fold; ``per_customer``, ``ci_low`` and ``ci_high`` are its incremental profit
    per customer of the experiment net of the fixed cost's share. ``segment_rule`` is the
    in-sample rule of treating the segments that pay back, kept for comparison.
    """

    verdict: str
    reason: str
    best_arm: str | None
    policy: PolicyValue | None
    segment_rule: SegmentPolicy
    per_customer: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    expected_incremental_profit: float = float("nan")
    """The policy's incremental profit over the experiment's customers, less the fixed
    cost."""


def _policy(table: pd.DataFrame, eligible: int, alpha: float) -> SegmentPolicy:
    segments = table[(table["segment"] != ALL_CUSTOMERS) & (table["decision"] == "go")]
    if segments.empty:
        return SegmentPolicy()
    best = segments.sort_values("incremental_profit", ascending=False).drop_duplicates("segment")
    sizes = best["eligible"].to_numpy(dtype=float)
    total = float((best["incremental_profit"].to_numpy() * sizes).sum())
    se = float(np.sqrt(((best["profit_se"].to_numpy() * sizes) ** 2).sum()))
    q = float(stats.norm.ppf(1 - alpha / 2))
    treated = [
        {"segment": str(r.segment), "arm": str(r.arm), "customers": int(r.eligible)}
        for r in best.itertuples()
    ]
    return SegmentPolicy(
        treated, float(sizes.sum() / eligible), total, total - q * se, total + q * se
    )


def segment_rule(results: SegmentResults) -> SegmentPolicy:
    """The segments whose profit interval is above zero, each with its best arm."""
    table = results.table
    eligible = int(table.loc[table["segment"] == ALL_CUSTOMERS, "eligible"].max())
    return _policy(table, eligible, results.alpha)


def decide(
    results: SegmentResults,
    targeting: PolicyEvaluation | None = None,
    fixed_cost: float = 0.0,
    within_budget: Collection[str] | None = None,
) -> CampaignDecision:
    """Verdict on the whole campaign from the segment results and the targeting policy.

    * ``go``: treating every eligible customer with the best arm pays back (its profit
      interval, net of the fixed cost, is above zero) and targeting does not do
      demonstrably better (the paired interval of its gain over that arm reaches zero);
    * ``go_targeted``: the per-customer policy's profit interval, net of the fixed cost,
      is above zero, and either treating everyone does not pay back or the policy gains
      on it demonstrably;
    * ``no_go``: every arm loses money overall (interval below zero) and the policy does
      not show a profit;
    * ``inconclusive`` otherwise, with the customers that would settle the best arm.

    Without ``targeting`` (no per-customer policy), the segment rule stands in for it.
    ``within_budget`` names the arms with which treating everyone fits the budget (default:
    every arm); treating everyone with another arm is never the verdict.

    The policy is chosen among the learners' policies on the same data
    (:func:`~uplift.value.policy.compare_policies`), which flatters its estimate a little
    (winner's curse); with a handful of learners the bias is small beside the interval, and
    the paired intervals of ``model_selection`` show it.
    """
    table = results.table
    rule = segment_rule(results)
    overall = table[table["segment"] == ALL_CUSTOMERS].dropna(subset=["incremental_profit"])
    policy = targeting.policy if targeting is not None else None
    if policy is not None:
        share = fixed_cost / policy.n if policy.treated_share > 0 and policy.n else 0.0
        low, high = policy.ci_low - share, policy.ci_high - share
        estimate = policy.per_customer - share
        total = estimate * policy.n
    else:
        estimate, low, high, total = (
            rule.expected_incremental_profit,
            rule.ci_low,
            rule.ci_high,
            rule.expected_incremental_profit,
        )

    def verdict(name: str, reason: str, arm: str | None) -> CampaignDecision:
        return CampaignDecision(
            name,
            reason,
            arm,
            policy,
            rule,
            estimate if policy is not None else float("nan"),
            low if policy is not None else float("nan"),
            high if policy is not None else float("nan"),
            total,
        )

    if overall.empty:
        return verdict("inconclusive", "no arm could be compared with the control", None)
    best = overall.loc[overall["incremental_profit"].idxmax()]
    arm = str(best["arm"])
    money = (
        f"{best['incremental_profit']:.2f} per customer "
        f"({1 - results.alpha:.0%} CI {best['profit_ci_low']:.2f} to "
        f"{best['profit_ci_high']:.2f})"
    )
    targeted = _targeted_text(policy, rule, estimate, low, high, total, results.alpha)
    gains = targeting is not None and targeting.gain_ci_low > 0
    affordable = within_budget is None or arm in within_budget
    if best["decision"] == "go" and affordable and not (gains and low > 0):
        if policy is None:
            beside = ""
        elif gains:
            beside = f" Targeting gains on it, but its own profit is not clear of zero: {targeted}."
        else:
            beside = f" Targeting does not demonstrably do better: {targeted}."
        return verdict(
            "go",
            f"Treating every eligible customer with '{arm}' pays back: {money} net of costs."
            + beside,
            arm,
        )
    if low > 0:
        if best["decision"] == "go" and not affordable:
            why = f"Treating everyone with '{arm}' pays back ({money}) but exceeds the budget"
        elif best["decision"] == "go":
            why = f"Treating everyone with '{arm}' pays back ({money}), but targeting pays more"
        else:
            why = f"Treating everyone does not pay back (best arm '{arm}': {money})"
        gain = (
            f" It gains {targeting.gain_over_treat_all:.2f} per customer over treating everyone "
            f"with '{targeting.best_treat_all}' ({targeting.gain_ci_low:.2f} to "
            f"{targeting.gain_ci_high:.2f})."
            if targeting is not None
            else ""
        )
        return verdict("go_targeted", f"{why}. {targeted[:1].upper()}{targeted[1:]}.{gain}", arm)
    if (overall["decision"] == "no_go").all():
        return verdict(
            "no_go",
            f"Every arm loses money overall (best arm '{arm}': {money}) and targeting does not "
            f"show a profit ({targeted}).",
            arm,
        )
    settle = best.get("n_to_settle")
    needed = (
        f" About {settle:,.0f} customers in the best arm and the control would settle it."
        if settle is not None and settle == settle
        else ""
    )
    return verdict(
        "inconclusive",
        f"The data cannot tell whether the campaign pays back (best arm '{arm}': {money}; "
        f"{targeted}).{needed}",
        arm,
    )


def _targeted_text(
    policy: PolicyValue | None,
    rule: SegmentPolicy,
    estimate: float,
    low: float,
    high: float,
    total: float,
    alpha: float,
) -> str:
    if policy is None:
        if not rule.treated:
            return "no segment pays back with confidence"
        names = ", ".join(f"{t['segment']} ({t['arm']})" for t in rule.treated)
        return f"treat only these segments: {names}; expected incremental profit {total:,.0f}"
    arms = ", ".join(f"{n:,} with '{a}'" for a, n in policy.arms.items() if a != NO_ARM and n > 0)
    return (
        f"the per-customer policy treats {policy.treated_share:.0%} of customers"
        + (f" ({arms})" if arms else "")
        + f" for {estimate:.2f} per customer net of costs ({1 - alpha:.0%} CI {low:.2f} to "
        f"{high:.2f}, doubly robust, out of fold), {total:,.0f} over the experiment's customers"
    )
