"""Coverage of the incremental-profit intervals over repeated simulated experiments.

For each of the three simulated hypothesis kinds (the example configs), 200 experiments
are run. Each draws a fresh customer base (a new seed), keeps the customers the spec's
``population.eligible`` admits, randomizes them to the spec's arms with the spec's shares
(a plain seeded draw: the ledger and the hash assignment are not under test; nobody is
held out, so the experiment is the eligible base), draws their outcomes, labels their
segments with :func:`uplift.pipeline.segment_labels` and asks
:func:`uplift.value.profit.segment_profit` for every segment and arm's incremental profit
interval, with :func:`uplift.pipeline.profit_model` and the spec's ``decision.alpha``.

The estimand
------------
The truth comes from the simulator itself: :meth:`uplift.data.simulate.Simulation.expected`
gives every customer's expected outcomes in any arm. For customer ``i`` and arm ``a`` the
true incremental profit is

    tau_a(i) = net(E[Y_i | a], a) - net(E[Y_i | control], control)

computed with :func:`uplift.value.profit.net_value` on the frames of expected outcomes
(every customer put in ``a``, then every customer put in the control). The cost models are
linear in the outcomes they read (the lessons' cost in uptake, the discount in revenue,
the unlock's serving cost constant), so the cost of the expected outcomes is the expected
cost. A segment's true incremental profit in an experiment is the mean of ``tau_a(i)`` over
the segment's customers in that experiment (in every arm), minus the same fixed-cost share
``segment_profit`` subtracts (the fixed cost over the customers in the experiment). It is
conditional on the customers drawn, which is why the base is redrawn every time.

Why a Welch interval covers it
------------------------------
Given the drawn customers, their outcomes are independent with means ``E[Y_i | arm]``, and
within a segment the arms are a completely random split (a seeded draw, conditional on
the counts). The difference of mean net values between the arm's and the control's
customers of the segment is then unbiased for the segment mean of ``tau_a(i)``, and the
Welch variance ``s_a^2 / n_a + s_c^2 / n_c`` estimates Neyman's variance of that difference,
which overstates it by the spread of ``tau_a(i)`` over the segment divided by its size. The
interval is therefore conservative for this sample-average estimand (up to the t
approximation), and each segment and arm should cover in about ``1 - alpha`` or more of the
experiments. The test asks for 90% where the nominal level is 95%: with 200 experiments a
cell that truly covers 95% falls below 90% with probability about 0.1% (binomial). The
seeds are fixed, so the outcome is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift.data.simulate import simulate
from uplift.expressions import parse
from uplift.pipeline import profit_model, segment_labels
from uplift.spec import ExperimentSpec, SimulateSource
from uplift.value.profit import ALL_CUSTOMERS, net_value, segment_profit

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = 200
#: a (segment, arm) is checked when it has an interval in at least this many experiments
MIN_EXPERIMENTS = 150
MIN_COVERAGE = 0.90
# customers drawn per experiment, chosen so that about 6,000 are eligible in each kind
# (the smallest segment then has some 350 customers, 70 of them in the control)
CONFIGS = {
    "edtech_trial_lessons": 11_000,  # 54% eligible
    "saas_feature_unlock": 13_500,  # about 43% eligible
    "ecommerce_lower_check": 7_700,  # about 78% eligible
}


def _spec(config: str, n: int) -> ExperimentSpec:
    data = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())
    data["population"]["source"]["n"] = n
    return ExperimentSpec.model_validate(data)


def _experiment(spec: ExperimentSpec, seed: int) -> pd.DataFrame:
    """One simulated experiment: reported interval and truth per segment and arm."""
    source = spec.population.source
    assert isinstance(source, SimulateSource)
    assignment = spec.assignment
    control, treatments = assignment.control, assignment.treatments
    sim = simulate(spec.hypothesis.kind, source.n, seed, treatments, source.arm_effects)
    population = sim.population
    frame = population[parse(spec.population.eligible).evaluate(population).to_numpy()]

    names = np.array(list(assignment.arms), dtype=object)
    shares = np.array(list(assignment.arms.values()), dtype=float)
    draw = np.random.default_rng([seed, 2]).choice(len(names), len(frame), p=shares / shares.sum())
    arms = pd.Series(names[draw], index=frame.index, name="arm")

    metrics = {str(m.column): name for name, m in spec.outcomes.per_customer.items()}
    outcomes = sim.draw(arms).rename(columns=metrics)
    segments = segment_labels(spec, frame)
    model = profit_model(spec, treatments)
    table = segment_profit(
        outcomes,
        arms,
        segments,
        spec.outcomes.primary,
        model,
        control,
        treatments,
        alpha=spec.decision.alpha,
    ).to_frame()

    # the truth: expected net value in the arm minus expected net value in the control
    def expected_net(arm: str) -> np.ndarray:
        expected = sim.expected(arm, frame.index).rename(columns=metrics)
        return net_value(expected, pd.Series(arm, index=frame.index), model).to_numpy()

    fixed_share = model.fixed_cost / len(arms)
    untreated = expected_net(control)
    codes, labels = pd.factorize(segments.astype(str))
    sizes = np.bincount(codes, minlength=len(labels))
    truth = {}
    for arm in treatments:
        tau = expected_net(arm) - untreated
        truth[(ALL_CUSTOMERS, arm)] = tau.mean() - fixed_share
        by_segment = np.bincount(codes, weights=tau, minlength=len(labels)) / sizes
        for label, value in zip(labels, by_segment, strict=True):
            truth[(str(label), arm)] = value - fixed_share

    table = table.dropna(subset=["profit_ci_low", "profit_ci_high"])
    out = table[["segment", "arm", "profit_ci_low", "profit_ci_high"]].copy()
    out["truth"] = [truth[(s, a)] for s, a in zip(out["segment"], out["arm"], strict=True)]
    return out


@pytest.mark.parametrize("config", list(CONFIGS))
def test_true_segment_profit_lies_inside_its_interval_in_90_percent_of_experiments(
    config: str,
) -> None:
    spec = _spec(config, CONFIGS[config])
    base = 10_000 * (list(CONFIGS).index(config) + 1)
    runs = pd.concat(
        [_experiment(spec, base + i) for i in range(EXPERIMENTS)],
        ignore_index=True,
    )
    runs["covered"] = (runs["profit_ci_low"] <= runs["truth"]) & (
        runs["truth"] <= runs["profit_ci_high"]
    )
    cells = runs.groupby(["segment", "arm"], sort=True).agg(
        experiments=("covered", "size"),
        coverage=("covered", "mean"),
        mean_truth=("truth", "mean"),
        mean_width=("profit_ci_high", "mean"),
    )
    cells["mean_width"] -= runs.groupby(["segment", "arm"], sort=True)["profit_ci_low"].mean()
    checked = cells[cells["experiments"] >= MIN_EXPERIMENTS]
    report = (
        f"{spec.hypothesis.kind}: nominal {1 - spec.decision.alpha:.0%}, "
        f"coverage min {checked['coverage'].min():.3f}, mean {checked['coverage'].mean():.3f} "
        f"over {len(checked)} segment x arm cells\n{cells.to_string(float_format='{:.3f}'.format)}"
    )
    print(report)

    # not vacuous: the whole base and at least three named segments are checked per arm
    for arm in spec.assignment.treatments:
        segments = checked.xs(arm, level="arm").index
        assert ALL_CUSTOMERS in segments and len(segments) >= 4, report
    # the truth moves across segments: some lose money and some gain, or the check is weak
    assert (checked["mean_truth"] < 0).any() and (checked["mean_truth"] > 0).any(), report
    assert (checked["coverage"] >= MIN_COVERAGE).all(), report
