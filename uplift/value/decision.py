"""The campaign verdict and the segment targeting policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from uplift.value.profit import ALL_CUSTOMERS, SegmentResults

__all__ = ["CampaignDecision", "SegmentPolicy", "decide"]


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
    """The verdict on the campaign, its reason and the policy that follows."""

    verdict: str
    reason: str
    best_arm: str | None
    policy: SegmentPolicy


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


def decide(results: SegmentResults, treatments: Sequence[str]) -> CampaignDecision:
    """Verdict on the whole campaign from the per-segment results.

    ``go`` when treating every eligible customer with the best arm pays back (its profit
    interval is above zero); ``go_targeted`` when it does not but some segments do;
    ``no_go`` when every arm loses money overall and no segment pays back;
    ``inconclusive`` otherwise.
    """
    table = results.table
    overall = table[table["segment"] == ALL_CUSTOMERS].dropna(subset=["incremental_profit"])
    eligible = int(table.loc[table["segment"] == ALL_CUSTOMERS, "eligible"].max())
    policy = _policy(table, eligible, results.alpha)
    if overall.empty:
        return CampaignDecision(
            "inconclusive", "no arm could be compared with the control", None, policy
        )
    best = overall.loc[overall["incremental_profit"].idxmax()]
    arm = str(best["arm"])
    money = (
        f"{best['incremental_profit']:.2f} per customer "
        f"({1 - results.alpha:.0%} CI {best['profit_ci_low']:.2f} to "
        f"{best['profit_ci_high']:.2f})"
    )
    if best["decision"] == "go":
        return CampaignDecision(
            "go",
            f"Treating every eligible customer with '{arm}' pays back: {money} net of costs.",
            arm,
            policy,
        )
    if policy.treated:
        names = ", ".join(f"{t['segment']} ({t['arm']})" for t in policy.treated)
        return CampaignDecision(
            "go_targeted",
            f"Treating everyone does not pay back (best arm '{arm}': {money}), but these segments "
            f"do: {names}. Treat only them; expected incremental profit "
            f"{policy.expected_incremental_profit:,.0f}.",
            arm,
            policy,
        )
    if (overall["decision"] == "no_go").all():
        return CampaignDecision(
            "no_go",
            f"Every arm loses money overall (best arm '{arm}': {money}) and no segment pays back.",
            arm,
            policy,
        )
    return CampaignDecision(
        "inconclusive",
        f"The data cannot tell whether the campaign pays back (best arm "
        f"'{arm}': {money}); no segment pays back with confidence.",
        arm,
        policy,
    )
