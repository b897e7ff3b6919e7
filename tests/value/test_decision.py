"""Tests of uplift.value.decision: the verdict weighs treat-all, the policy and the segments.

The segment tables and policy values are written by hand, so every verdict here follows
from the rule in ``decide``'s docstring applied to numbers readable in the test.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from uplift.value.decision import decide, segment_rule
from uplift.value.policy import NO_ARM, PolicyEvaluation, PolicyValue
from uplift.value.profit import ALL_CUSTOMERS, SegmentResults


def _row(segment: str, arm: str, profit: float, low: float, high: float, eligible: int) -> dict:
    decision = "go" if low > 0 else "no_go" if high < 0 else "inconclusive"
    return {
        "segment": segment,
        "arm": arm,
        "eligible": eligible,
        "incremental_profit": profit,
        "profit_se": (high - low) / (2 * 1.959963984540054),
        "profit_ci_low": low,
        "profit_ci_high": high,
        "n_to_settle": 52_000.0 if decision == "inconclusive" else None,
        "decision": decision,
    }


def _results(overall: tuple[float, float, float], segments: list[tuple] = ()) -> SegmentResults:
    rows = [_row(ALL_CUSTOMERS, "email", *overall, 1000)]
    rows += [_row(name, "email", *money, size) for name, money, size in segments]
    return SegmentResults(pd.DataFrame(rows), alpha=0.05)


def _targeting(
    per_customer: float, low: float, high: float, gain: tuple[float, float, float]
) -> PolicyEvaluation:
    policy = PolicyValue(
        "policy",
        per_customer,
        (high - low) / 3.92,
        low,
        high,
        0.4,
        {"email": 400, NO_ARM: 600},
        1000,
    )
    treat_all = PolicyValue("treat_all:email", 1.0, 0.1, 0.8, 1.2, 1.0, {"email": 1000}, 1000)
    return PolicyEvaluation((policy, treat_all), *gain, "email", 0.05)


def test_treat_all_pays_and_targeting_gains_nothing_proven_is_go() -> None:
    decision = decide(_results((1.0, 0.2, 1.8)), _targeting(1.1, 0.5, 1.7, (0.1, -0.2, 0.4)))
    assert decision.verdict == "go"
    assert decision.best_arm == "email"
    assert "Targeting does not demonstrably do better" in decision.reason


def test_treat_all_pays_but_targeting_pays_demonstrably_more_is_go_targeted() -> None:
    decision = decide(_results((1.0, 0.2, 1.8)), _targeting(1.6, 1.1, 2.1, (0.6, 0.3, 0.9)))
    assert decision.verdict == "go_targeted"
    assert "targeting pays more" in decision.reason
    assert "gains 0.60 per customer" in decision.reason


def test_treat_all_does_not_pay_but_the_policy_does_is_go_targeted() -> None:
    decision = decide(_results((-0.2, -0.9, 0.5)), _targeting(0.9, 0.3, 1.5, (1.1, 0.5, 1.7)))
    assert decision.verdict == "go_targeted"
    assert "Treating everyone does not pay back" in decision.reason
    assert "treats 40% of customers (400 with 'email')" in decision.reason


def test_the_fixed_cost_is_charged_to_the_policy() -> None:
    # 0.9 per customer (0.3 to 1.5) before a fixed cost of 500 over 1,000 customers:
    # 0.4 (-0.2 to 1.0) after it, which no longer clears zero
    decision = decide(
        _results((-0.2, -0.9, 0.5)), _targeting(0.9, 0.3, 1.5, (1.1, 0.5, 1.7)), fixed_cost=500
    )
    assert decision.per_customer == pytest.approx(0.4, abs=1e-12)
    assert (decision.ci_low, decision.ci_high) == pytest.approx((-0.2, 1.0), abs=1e-12)
    assert decision.expected_incremental_profit == pytest.approx(400.0, abs=1e-9)
    assert decision.verdict == "inconclusive"
    assert "About 52,000 customers" in decision.reason


def test_every_arm_loses_and_the_policy_shows_no_profit_is_no_go() -> None:
    decision = decide(_results((-1.0, -1.6, -0.4)), _targeting(0.1, -0.2, 0.4, (1.1, 0.7, 1.5)))
    assert decision.verdict == "no_go"
    assert "Every arm loses money overall" in decision.reason


def test_without_a_policy_the_segment_rule_stands_in() -> None:
    results = _results(
        (-0.2, -0.9, 0.5), [("Champions", (2.0, 0.5, 3.5), 300), ("Lapsed", (-1.0, -2.0, 0.0), 700)]
    )
    rule = segment_rule(results)
    assert rule.treated == [{"segment": "Champions", "arm": "email", "customers": 300}]
    assert rule.treat_share == pytest.approx(0.3)
    # 2.0 per customer over the segment's 300 customers
    assert rule.expected_incremental_profit == pytest.approx(600.0)
    decision = decide(results)
    assert decision.verdict == "go_targeted"
    assert decision.policy is None
    assert math.isnan(decision.per_customer)
    assert "Champions (email)" in decision.reason


def test_no_comparable_arm_is_inconclusive() -> None:
    table = pd.DataFrame(
        [{"segment": ALL_CUSTOMERS, "arm": "email", "eligible": 10, "decision": "inconclusive"}]
    )
    table["incremental_profit"] = float("nan")
    decision = decide(SegmentResults(table, 0.05), _targeting(0.1, -0.2, 0.4, (0.0, -1.0, 1.0)))
    assert decision.verdict == "inconclusive"
    assert decision.best_arm is None


def test_treating_everyone_beyond_the_budget_is_never_the_verdict() -> None:
    results = _results((1.0, 0.2, 1.8))
    # the policy pays on its own: targeted within the budget
    decision = decide(results, _targeting(0.9, 0.3, 1.5, (-0.1, -0.4, 0.2)), within_budget=[])
    assert decision.verdict == "go_targeted"
    assert "exceeds the budget" in decision.reason
    # the policy does not clear zero: no verdict may send everyone the e-mail
    decision = decide(results, _targeting(0.3, -0.3, 0.9, (-0.7, -1.0, -0.4)), within_budget=[])
    assert decision.verdict == "inconclusive"
    # with the arm affordable, the same numbers are a go
    decision = decide(
        results, _targeting(0.3, -0.3, 0.9, (-0.7, -1.0, -0.4)), within_budget=["email"]
    )
    assert decision.verdict == "go"


def test_a_go_whose_targeting_gains_but_does_not_clear_zero_says_so() -> None:
    decision = decide(_results((1.0, 0.2, 1.8)), _targeting(1.1, -0.1, 2.3, (0.5, 0.1, 0.9)))
    assert decision.verdict == "go"
    assert "Targeting gains on it, but its own profit is not clear of zero" in decision.reason
