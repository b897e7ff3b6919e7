"""``models.sample_size``: the uplift models see a stratified sample, the effects every customer.

The example spec is run through ``pipeline.prepare`` and ``pipeline.analyze`` on 12,000
simulated customers, once whole and once with the models on a sample of 4,000. What must
hold follows from the definition, not from the code: each arm keeps its share of the
sample; the same seed draws the same sample; effects and segment economics are those of
the whole experiment; the policy's values are stated for the experiment's customers,
with the fixed cost shared over all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_support import EXAMPLE

from uplift import pipeline
from uplift.spec import ExperimentSpec


def spec(tmp_path: Any, sample_size: int | None) -> ExperimentSpec:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["population"]["source"]["n"] = 12_000
    raw["models"] = {
        "learners": ["t_learner"],
        "folds": 2,
        "base_params": {"n_estimators": 30, "num_leaves": 7, "verbose": -1},
        **({"sample_size": sample_size} if sample_size else {}),
    }
    raw["ledger"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    return ExperimentSpec.model_validate(raw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("sample")
    out = {}
    for name, size in (("whole", None), ("sampled", 4000)):
        loaded = spec(folder, size)
        data = pipeline.prepare(loaded)
        out[name] = (loaded, data, pipeline.analyze(loaded, data))
    return out


def test_the_sample_is_stratified_by_arm_and_drawn_by_the_seed(runs: dict[str, Any]) -> None:
    loaded, data, analysis = runs["sampled"]
    rows = analysis.model_rows
    assert rows is not None and abs(len(rows) - 4000) <= 2
    assert len(np.unique(rows)) == len(rows)
    whole = data.arms.value_counts(normalize=True)
    sample = data.arms.iloc[rows].value_counts(normalize=True)
    # each arm's share of the sample is its share of the experiment, up to rounding
    assert (sample - whole).abs().max() < 1.0 / 4000 + 1e-12
    again, _ = pipeline.model_sample(loaded, data)
    assert (again.arms.to_numpy() == data.arms.iloc[rows].to_numpy()).all()
    assert analysis.modelling.results[0].predictions[data.treatments[0]].shape[0] == len(rows)


def test_effects_and_segments_use_every_customer(runs: dict[str, Any]) -> None:
    _, _, whole = runs["whole"]
    _, _, sampled = runs["sampled"]
    pd.testing.assert_frame_equal(sampled.effects.to_frame(), whole.effects.to_frame())
    pd.testing.assert_frame_equal(sampled.segments.table, whole.segments.table)


def test_the_policy_is_stated_for_the_experiment_s_customers(runs: dict[str, Any]) -> None:
    loaded, data, analysis = runs["sampled"]
    n = len(data.arms)
    for value in analysis.targeting.values:
        assert value.n == n
        assert abs(sum(value.arms.values()) - n) <= len(value.arms)
    # the curve charges the fixed cost shared over every customer: each point above zero
    # share lies fixed_cost / n below the same curve drawn without the fixed cost
    from uplift.value.policy import NO_ARM, profit_curve

    modelling, targeting = analysis.modelling, analysis.targeting
    assert targeting.curve is not None and targeting.choice is not None
    free = profit_curve(
        modelling.net_uplift[modelling.chosen],
        modelling.scores,
        treated=int((targeting.choice != NO_ARM).sum()),
        fixed_cost=0.0,
    )
    np.testing.assert_array_equal(free.share, targeting.curve.share)
    gap = free.per_customer - targeting.curve.per_customer
    assert gap[0] == 0.0
    np.testing.assert_allclose(gap[1:], loaded.economics.fixed_cost / n, rtol=1e-12)
    summary = pipeline.build_summary(loaded, analysis, None, None)
    assert summary["model_selection"]["n_customers"] == len(analysis.model_rows)
