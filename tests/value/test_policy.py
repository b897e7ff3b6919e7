"""Tests of uplift.value.policy: the targeting rule and its doubly robust value.

Ground truth comes from simulation: a randomized three-arm experiment with known arm
shares, a known baseline and known per-customer net uplifts, so the true value of any
rule (the mean over customers of the true uplift of the arm it picks) is known exactly.
Hand computations (written out below) check the rule and the estimator's arithmetic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.value.policy import (
    NO_ARM,
    RISK_SCREEN,
    VALUE_MARGIN,
    choose_arms,
    compare_policies,
    doubly_robust_scores,
    evaluate_policies,
    net_value_risk,
    policy_value,
    profit_curve,
    within_budget,
)

SHARES = {"control": 0.2, "a": 0.4, "b": 0.4}


def experiment(n: int, rng: np.random.Generator) -> dict[str, object]:
    """Customers with a baseline, two arms whose true net uplift depends on x, and noise."""
    x = rng.normal(size=(n, 2))
    arms = rng.choice(list(SHARES), n, p=list(SHARES.values()))
    baseline = 5.0 + 2.0 * x[:, 0]
    uplift = pd.DataFrame({"a": 1.0 * x[:, 1] - 0.2, "b": 0.5 - 1.0 * (x[:, 0] > 0.5)})
    effect = np.select([arms == "a", arms == "b"], [uplift["a"], uplift["b"]], 0.0)
    y = baseline + effect + rng.normal(0.0, 3.0, n)
    return {"x": x, "arms": arms, "baseline": baseline, "uplift": uplift, "y": y}


def true_value(choice: pd.Series, uplift: pd.DataFrame) -> float:
    values = np.column_stack([uplift.to_numpy(), np.zeros(len(uplift))])
    position = choice.map(
        {**{a: i for i, a in enumerate(uplift.columns)}, NO_ARM: len(uplift.columns)}
    )
    return float(values[np.arange(len(values)), position.to_numpy(dtype=int)].mean())


def test_the_rule_takes_the_best_positive_arm_and_fills_budgets_in_order_of_value() -> None:
    # hand table: the best arm of each customer and its net value
    #   c0: b 3.0   c1: a 2.0   c2: none (best -0.5)   c3: a 1.0   c4: b 0.5
    net = pd.DataFrame(
        {"a": [1.0, 2.0, -0.5, 1.0, -1.0], "b": [3.0, 1.5, -0.7, 0.2, 0.5]},
        index=[f"c{i}" for i in range(5)],
    )
    spend = pd.DataFrame(
        {"a": [1.0, 1.0, 1.0, 4.0, 1.0], "b": [2.0, 2.0, 2.0, 2.0, 2.0]}, index=net.index
    )

    assert choose_arms(net).tolist() == ["b", "a", NO_ARM, "a", "b"]
    assert choose_arms(net, max_treated=2).tolist() == ["b", "a", NO_ARM, NO_ARM, NO_ARM]
    # in order of value c0 (spend 2), c1 (1), c3 (4), c4 (2): within 3 only c0 and c1;
    # within 7, c3 as well (total 7)
    assert choose_arms(net, max_spend=3.0, spend=spend).tolist() == [
        "b",
        "a",
        NO_ARM,
        NO_ARM,
        NO_ARM,
    ]
    assert choose_arms(net, max_spend=7.0, spend=spend).tolist() == ["b", "a", NO_ARM, "a", NO_ARM]
    assert choose_arms(net, max_treated=1, max_spend=7.0, spend=spend).tolist() == [
        "b",
        NO_ARM,
        NO_ARM,
        NO_ARM,
        NO_ARM,
    ]
    with pytest.raises(ValueError, match="max_spend needs the expected spend"):
        choose_arms(net, max_spend=1.0)


def test_with_no_outcome_model_the_scores_are_the_horvitz_thompson_terms() -> None:
    # hand computation, shares control 0.2, a 0.4, b 0.4, baseline and uplift models zero:
    # Gamma(a) - Gamma(0) = 1{A=a} y / 0.4 - 1{A=control} y / 0.2
    y = np.array([2.0, 4.0, 1.0, 3.0])
    arms = np.array(["control", "a", "b", "a"])
    zero = pd.DataFrame({"a": np.zeros(4), "b": np.zeros(4)})

    scores = doubly_robust_scores(y, arms, "control", ["a", "b"], SHARES, np.zeros(4), zero)

    assert scores["a"].tolist() == [-10.0, 10.0, 0.0, 7.5]
    assert scores["b"].tolist() == [-10.0, 0.0, 2.5, 0.0]
    value = policy_value(pd.Series(["a", "a", NO_ARM, "b"]), scores, alpha=0.05)
    # picked: -10, 10, 0, 0 -> mean 0, sd sqrt(200/3), se sd / 2
    assert value.per_customer == pytest.approx(0.0)
    assert value.std_error == pytest.approx(np.sqrt(200 / 3) / 2)
    assert value.ci_high == pytest.approx(1.959964 * np.sqrt(200 / 3) / 2, rel=1e-6)
    assert value.arms == {"a": 2, "b": 1, NO_ARM: 1}
    assert value.treated_share == 0.75
    assert value.total(fixed_cost=5.0) == pytest.approx(-5.0)


def test_the_estimate_is_unbiased_and_its_interval_covers_the_truth() -> None:
    # 400 simulated experiments of 3,000 customers; the rule comes from a deliberately
    # poor model (half the true uplift plus noise) so the estimate cannot lean on it
    rng = np.random.default_rng(11)
    errors, covered, widths = [], 0, {"dr": [], "ipw": []}
    reps = 400
    for _ in range(reps):
        e = experiment(3000, rng)
        uplift = e["uplift"]
        assert isinstance(uplift, pd.DataFrame)
        guess = 0.5 * uplift + rng.normal(0.0, 0.5, uplift.shape)
        choice = choose_arms(guess)
        truth = true_value(choice, uplift)
        args = (e["y"], e["arms"], "control", ["a", "b"], SHARES)
        scores = doubly_robust_scores(*args, e["baseline"], guess)  # type: ignore[arg-type]
        value = policy_value(choice, scores)
        errors.append(value.per_customer - truth)
        covered += value.ci_low <= truth <= value.ci_high
        widths["dr"].append(value.ci_high - value.ci_low)
        bare = doubly_robust_scores(*args, np.zeros(3000), 0 * guess)  # type: ignore[arg-type]
        ipw = policy_value(choice, bare)
        widths["ipw"].append(ipw.ci_high - ipw.ci_low)
    # the mean error is within 3 standard errors of its own spread around zero
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(reps)
    # 95% intervals: 400 draws cover between 0.92 and 0.98 of the time (binomial, 99.9%)
    assert 0.92 <= covered / reps <= 0.98, covered / reps
    # the outcome model narrows the interval against inverse-propensity weighting alone
    assert np.mean(widths["dr"]) < 0.8 * np.mean(widths["ipw"])


def test_targeting_beats_treating_everyone_when_the_effect_changes_sign() -> None:
    rng = np.random.default_rng(3)
    e = experiment(40_000, rng)
    uplift = e["uplift"]
    assert isinstance(uplift, pd.DataFrame)
    scores = doubly_robust_scores(
        e["y"],
        e["arms"],
        "control",
        ["a", "b"],
        SHARES,
        e["baseline"],
        uplift,  # type: ignore[arg-type]
    )
    choice = choose_arms(uplift)

    evaluation = evaluate_policies(choice, scores, others={"only_a": choose_arms(uplift[["a"]])})

    frame = evaluation.to_frame().set_index("rule")
    assert list(frame.index) == ["policy", "treat_all:a", "treat_all:b", "treat_none", "only_a"]
    assert frame.at["treat_none", "per_customer"] == 0.0
    for rule, picked in [("policy", choice), ("treat_all:b", pd.Series("b", index=choice.index))]:
        row = frame.loc[rule]
        assert row["ci_low"] <= true_value(picked, uplift) <= row["ci_high"]
    assert evaluation.best_treat_all == "b"  # true means: a -0.2, b 0.5 - P(x > 0.5) = 0.19
    assert evaluation.gain_ci_low > 0  # the oracle rule gains about 0.5 per customer
    assert evaluation.policy.treated_share == pytest.approx(float((uplift.max(axis=1) > 0).mean()))


def test_within_budget_rounds_a_pro_rata_count_down_and_stops_at_the_spend() -> None:
    gain = np.array([3.0, -1.0, 5.0, 2.0, 4.0])
    spend = np.array([1.0, 1.0, 2.0, 1.0, 2.5])
    # by hand: by gain the order is 5.0 (row 2), 4.0 (row 4), 3.0 (row 0), 2.0 (row 3)
    assert within_budget(gain, max_treated=2.7).tolist() == [False, False, True, False, True]
    # cumulated spend 2.0, 4.5, 5.5: a budget of 5 stops before row 0
    assert within_budget(gain, spend, max_spend=5.0).tolist() == [False, False, True, False, True]
    assert within_budget(gain).tolist() == [True, False, True, True, True]
    with pytest.raises(ValueError, match="spend"):
        within_budget(gain, max_spend=1.0)


def test_compare_policies_picks_the_most_valuable_with_paired_intervals() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(12)
    data = experiment(20_000, rng)
    uplift = data["uplift"]
    scores = doubly_robust_scores(
        data["y"], data["arms"], "control", ["a", "b"], SHARES, data["baseline"], uplift
    )
    good = choose_arms(uplift)  # the true uplift: the oracle rule
    noisy = choose_arms(uplift + rng.normal(0.0, 1.5, uplift.shape))
    everyone = pd.Series("a", index=uplift.index)
    result = compare_policies({"good": good, "noisy": noisy, "all_a": everyone}, scores)
    assert result.chosen == "good"
    table = result.to_frame().set_index("name")
    assert table.loc["good", "chosen"] and not table.loc["noisy", "chosen"]
    for name, rule in {"good": good, "noisy": noisy, "all_a": everyone}.items():
        assert table.loc[name, "per_customer"] == pytest.approx(
            policy_value(rule, scores).per_customer, rel=1e-12
        )
    # reference: statsmodels' normal interval of the mean per-customer difference of scores
    picked = {
        name: np.select(
            [rule.to_numpy() == "a", rule.to_numpy() == "b"],
            [scores["a"].to_numpy(), scores["b"].to_numpy()],
            0.0,
        )
        for name, rule in {"good": good, "noisy": noisy}.items()
    }
    diff = DescrStatsW(picked["noisy"] - picked["good"])
    low, high = diff.zconfint_mean(alpha=0.05)
    assert table.loc["noisy", "difference"] == pytest.approx(diff.mean, rel=1e-12)
    assert table.loc["noisy", "difference_ci_low"] == pytest.approx(low, rel=1e-9)
    assert table.loc["noisy", "difference_ci_high"] == pytest.approx(high, rel=1e-9)
    assert high < 0  # the oracle rule is demonstrably better than the noisy one
    # and the truth agrees with the ranking
    assert true_value(good, uplift) > true_value(noisy, uplift)


def test_risk_differences_estimate_true_error_differences_with_honest_intervals() -> None:
    # ground truth by simulation: two learners' predictions are the true net uplift plus
    # noise of known size, drawn apart from the outcomes (as out-of-fold predictions are);
    # the true difference of their errors is known per experiment, and the paired
    # difference of risks on common doubly robust scores must be unbiased for it with a
    # normal interval of nominal coverage
    rng = np.random.default_rng(2024)
    errors, covered = [], []
    for _ in range(200):
        e = experiment(4_000, rng)
        uplift = e["uplift"]
        assert isinstance(uplift, pd.DataFrame)
        good = uplift + rng.normal(0.0, 0.3, uplift.shape)
        noisy = uplift + rng.normal(0.0, 0.6, uplift.shape)
        mean_net = (good + noisy) / 2  # the scores' outcome model, as the pipeline builds it
        args = (e["y"], e["arms"], "control", ["a", "b"], SHARES, np.full(len(uplift), 5.0))
        scores = doubly_robust_scores(*args, mean_net)  # type: ignore[arg-type]
        gap = net_value_risk(noisy, scores) - net_value_risk(good, scores)
        truth = float(
            (((noisy - uplift) ** 2).sum(axis=1) - ((good - uplift) ** 2).sum(axis=1)).mean()
        )
        se = gap.std(ddof=1) / np.sqrt(len(gap))
        errors.append(gap.mean() - truth)
        covered.append(abs(gap.mean() - truth) <= 1.96 * se)
    errors_ = np.asarray(errors)
    assert abs(errors_.mean()) < 3 * errors_.std(ddof=1) / np.sqrt(len(errors_))
    # 95% nominal; 200 draws put a binomial 99.9% band at about 0.91 to 0.99
    assert 0.91 <= np.mean(covered) <= 0.99


def test_risk_is_the_mean_squared_error_against_the_scores_and_checks_its_arms() -> None:
    # hand computation: customer 0 errs (2 - 1.5, 0 - 1) -> 0.25 + 1; customer 1 errs
    # (-1 - 0, 3 - 3) -> 1 + 0
    scores = pd.DataFrame({"a": [2.0, -1.0], "b": [0.0, 3.0]})
    net = pd.DataFrame({"a": [1.5, 0.0], "b": [1.0, 3.0]})
    assert net_value_risk(net, scores).tolist() == [1.25, 1.0]
    with pytest.raises(ValueError, match=r"scores' arms \['a', 'b'\].*found \['b', 'a'\]"):
        net_value_risk(net[["b", "a"]], scores)


def learners_on_common_scores(
    seed: int, noise: dict[str, float]
) -> tuple[np.random.Generator, pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """An experiment of 20,000 customers, learners whose predicted net values are the true
    uplift plus normal noise of the given size, and the doubly robust scores whose outcome
    model averages them (as the pipeline builds them)."""
    rng = np.random.default_rng(seed)
    e = experiment(20_000, rng)
    uplift = e["uplift"]
    assert isinstance(uplift, pd.DataFrame)
    nets = {name: uplift + rng.normal(0.0, sd, uplift.shape) for name, sd in noise.items()}
    args = (e["y"], e["arms"], "control", ["a", "b"], SHARES, e["baseline"])
    scores = doubly_robust_scores(*args, sum(nets.values()) / len(nets))  # type: ignore[arg-type]
    return rng, uplift, nets, scores


def test_compare_policies_screens_out_learners_whose_net_values_err_more() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    noise = {"close": 0.6, "closer": 0.58, "wild": 3.0}
    _, uplift, nets, scores = learners_on_common_scores(31, noise)
    # the wild learner is handed the oracle's choice, the most valuable policy: without
    # the screen it wins the value comparison
    choices = {
        "close": choose_arms(nets["close"]),
        "closer": choose_arms(nets["closer"]),
        "wild": choose_arms(uplift),
    }
    assert compare_policies(choices, scores).chosen == "wild"
    # the screen alone (no margin): the most valuable policy it keeps
    result = compare_policies(choices, scores, net_values=nets, margin=0.0)
    table = result.to_frame().set_index("name")
    assert result.screen == RISK_SCREEN == 1.0
    assert table["screened_out"].to_dict() == {"close": False, "closer": False, "wild": True}
    assert result.chosen in {"close", "closer"}
    assert result.chosen == max(["close", "closer"], key=lambda n: table.loc[n, "per_customer"])
    # reference: statsmodels' standard error of the mean of the paired loss differences
    lowest = table["risk"].idxmin()
    for name, net in nets.items():
        loss = ((scores - net) ** 2).sum(axis=1).to_numpy()
        assert table.loc[name, "risk"] == pytest.approx(loss.mean(), rel=1e-12)
        if name != lowest:
            gap = DescrStatsW(loss - ((scores - nets[lowest]) ** 2).sum(axis=1).to_numpy())
            assert table.loc[name, "risk_difference"] == pytest.approx(gap.mean, rel=1e-12)
            assert table.loc[name, "risk_difference_se"] == pytest.approx(gap.std_mean, rel=1e-9)
    # the two close learners cannot be told apart: neither is screened out, at any width
    close = table.loc[["close", "closer"]]
    assert (close["risk_difference"] <= close["risk_difference_se"]).all()
    # a wide enough screen keeps every learner, and the oracle's choice wins again
    assert compare_policies(choices, scores, net_values=nets, screen=1e6, margin=0).chosen == "wild"
    with pytest.raises(ValueError, match=r"same learners as choices.*found \['close'\]"):
        compare_policies(choices, scores, net_values={"close": nets["close"]})


def test_the_profit_curve_values_the_top_share_rule_and_passes_through_the_policy() -> None:
    # reference: statsmodels' normal interval of the mean (DescrStatsW.zconfint_mean) of
    # the per-customer values of "treat the top k by best predicted net value, each with
    # that arm", written out here with an explicit sort
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(5)
    e = experiment(2_000, rng)
    uplift = e["uplift"]
    assert isinstance(uplift, pd.DataFrame)
    guess = uplift + rng.normal(0.0, 0.3, uplift.shape)
    args = (e["y"], e["arms"], "control", ["a", "b"], SHARES)
    scores = doubly_robust_scores(*args, e["baseline"], guess)  # type: ignore[arg-type]
    curve = profit_curve(guess, scores, points=11, fixed_cost=100.0)
    n = len(guess)
    best = guess.to_numpy().argmax(axis=1)
    order = np.argsort(-guess.to_numpy().max(axis=1))
    picked = scores.to_numpy()[np.arange(n), best]
    policy = policy_value(choose_arms(guess), scores)
    assert policy.treated_share in set(curve.share)  # the policy is a point of the curve
    assert list(curve.share) == sorted(set(curve.share)) and curve.share[0] == 0.0
    for share, mean, low, high in zip(
        curve.share, curve.per_customer, curve.ci_low, curve.ci_high, strict=True
    ):
        k = round(share * n)
        values = np.zeros(n)
        values[order[:k]] = picked[order[:k]]
        charge = 100.0 / n if k else 0.0
        ref_low, ref_high = DescrStatsW(values).zconfint_mean(alpha=0.05)
        assert mean == pytest.approx(values.mean() - charge, abs=1e-12)
        assert low == pytest.approx(ref_low - charge, abs=1e-9)
        assert high == pytest.approx(ref_high - charge, abs=1e-9)
        if share == policy.treated_share:
            assert mean == pytest.approx(policy.per_customer - charge, abs=1e-12)
    records = curve.to_records()
    assert records[-1]["share"] == 1.0 and records[0]["per_customer"] == 0.0


def test_a_budgeted_policy_is_a_point_of_the_profit_curve() -> None:
    # a budget keeps a prefix of the ranking by best net value, so the curve's point at
    # the budgeted count equals the policy's own doubly robust value
    rng = np.random.default_rng(8)
    e = experiment(3_000, rng)
    uplift = e["uplift"]
    assert isinstance(uplift, pd.DataFrame)
    guess = uplift + rng.normal(0.0, 0.3, uplift.shape)
    args = (e["y"], e["arms"], "control", ["a", "b"], SHARES)
    scores = doubly_robust_scores(*args, e["baseline"], guess)  # type: ignore[arg-type]
    spend = pd.DataFrame({"a": np.full(3_000, 2.0), "b": np.full(3_000, 3.0)})
    for budget in ({"max_treated": 250}, {"max_spend": 700.0, "spend": spend}):
        choice = choose_arms(guess, **budget)  # type: ignore[arg-type]
        treated = int((choice != NO_ARM).sum())
        assert 0 < treated < int((guess.max(axis=1) > 0).sum())  # the budget binds
        value = policy_value(choice, scores)
        curve = profit_curve(guess, scores, treated=treated, fixed_cost=30.0)
        at = list(curve.share).index(treated / 3_000)
        assert curve.per_customer[at] == pytest.approx(value.per_customer - 30.0 / 3_000)


def test_compare_policies_keeps_the_lowest_risk_unless_a_policy_is_clearly_worth_more() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    noise = {"steady": 0.8, "sharp": 1.2, "blunt": 1.2}
    rng, uplift, nets, scores = learners_on_common_scores(47, noise)
    # the learners of higher risk are handed better choices than their own: the oracle's,
    # and the oracle's on a random half of the customers (the steady one's on the rest)
    steady = choose_arms(nets["steady"])
    half = rng.random(len(steady)) < 0.5
    choices = {
        "steady": steady,
        "sharp": choose_arms(uplift),
        "blunt": choose_arms(uplift).where(half, steady),
    }
    wide = {"net_values": nets, "screen": 1e6}  # no learner screened out: the margin alone
    result = compare_policies(choices, scores, **wide)
    assert result.margin == VALUE_MARGIN == 1.645
    table = result.to_frame().set_index("name")
    assert table["risk"].idxmin() == "steady"
    assert table["per_customer"].idxmax() == "sharp"
    # reference: statsmodels' z statistic of each paired difference from the steady policy
    z = {}
    for name in ("sharp", "blunt"):
        picked = {
            n: np.select(
                [choices[n].to_numpy() == "a", choices[n].to_numpy() == "b"],
                [scores["a"].to_numpy(), scores["b"].to_numpy()],
                0.0,
            )
            for n in (name, "steady")
        }
        diff = DescrStatsW(picked[name] - picked["steady"])
        z[name] = diff.mean / diff.std_mean
    assert 0 < z["blunt"] < z["sharp"]
    # no margin: the most valuable policy, as before the margin
    assert compare_policies(choices, scores, **wide, margin=0.0).chosen == "sharp"
    # within both margins: the steady learner stays
    assert compare_policies(choices, scores, **wide, margin=1.01 * z["sharp"]).chosen == "steady"
    # the sharp policy alone clears the margin
    between = (z["blunt"] + z["sharp"]) / 2
    assert compare_policies(choices, scores, **wide, margin=between).chosen == "sharp"
    # both clear it: the more valuable of the two
    assert compare_policies(choices, scores, **wide, margin=0.99 * z["blunt"]).chosen == "sharp"
    # without the learners' net values there is no risk, so no margin to clear
    alone = compare_policies(choices, scores, margin=1e6)
    assert alone.chosen == "sharp" and alone.margin is None
    # an infinite margin never leaves the learner of lowest risk; a negative or NaN width
    # is no number of standard errors
    assert compare_policies(choices, scores, **wide, margin=float("inf")).chosen == "steady"
    with pytest.raises(ValueError, match=r"margin is a number of standard errors .* got -1\.0"):
        compare_policies(choices, scores, **wide, margin=-1.0)
    with pytest.raises(ValueError, match=r"screen is a number of standard errors .* got nan"):
        compare_policies(choices, scores, net_values=nets, screen=float("nan"))
