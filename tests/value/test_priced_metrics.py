"""Several metrics priced at once (``value.metrics``) through the modelling stage.

The trial-lessons example with a bought course worth 290 and a taken trial lesson worth 5:
the value metric is each customer's worth, ``290 * bought + 5 * took_trial``. The policy's
value model and the scoring model must learn the uplift on that sum (the reference: the
same learner fitted by hand on the hand-built column, with the same seed and parameters),
and the scoring model's net value must be the value per unit times it, less the costs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift import pipeline
from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import cross_fit_uplift, fit_uplift
from uplift.spec import ExperimentSpec

ROOT = Path(__file__).resolve().parents[2]
FAST = {"n_estimators": 20, "learning_rate": 0.1, "min_child_samples": 50, "n_jobs": 1}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("priced")
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    del config["value"]["metric"], config["value"]["unit_value"]
    config["value"]["metrics"] = {"bought": 290.0, "took_trial": 5.0}
    config["population"]["source"]["n"] = 6000
    config["models"].update(learners=["t_learner"], folds=2, base_params=FAST)
    config["ledger"] = {"url": f"sqlite:///{tmp / 'ledger.db'}"}
    spec = ExperimentSpec.model_validate(config)
    data = pipeline.prepare(spec)
    return spec, data, pipeline.fit_models(spec, data)


def test_the_scoring_model_learns_the_uplift_on_the_priced_sum(fitted) -> None:
    spec, data, modelling = fitted
    model = modelling.scoring_model
    assert spec.value_metric == "worth"
    worth = 290.0 * data.outcomes["bought"] + 5.0 * data.outcomes["took_trial"]
    x = FeatureEncoder(spec.population.features).fit(data.frame).transform(data.frame)
    by_hand = fit_uplift(
        "t_learner",
        x,
        data.arms.astype(str).to_numpy(),
        worth.to_numpy(),
        data.control,
        data.treatments,
        seed=spec.models.seed,
        base_params=FAST,
    )
    assert model.value_uplift is not None
    found = model.value_uplift.predict(x)
    pd.testing.assert_frame_equal(found, by_hand.predict(x), rtol=0, atol=1e-12)
    # the primary metric's model is still the purchase's, a 0/1 outcome
    assert model.uplift.predict(x).abs().to_numpy().max() <= 1.0

    # net value: margin 0.55 x the 12-month CLV multiplier of a 60-day window x the
    # predicted rise in worth, less contact and the lessons' cost at the predicted uptake
    economics = pipeline.profit_model(spec, data.treatments)
    assert economics.unit_value == 1.0 and economics.parts == {"bought": 290.0, "took_trial": 5.0}
    scores = model.predict(data.frame)
    _, _, spend = model._economics(x.to_numpy(dtype=float))
    for i, arm in enumerate(data.treatments):
        expected = economics.value_per_unit * found[arm].to_numpy() - spend[:, i]
        np.testing.assert_allclose(scores[f"net_value_{arm}"], expected, rtol=0, atol=1e-9)


def test_the_policy_is_valued_on_the_priced_sum(fitted) -> None:
    spec, data, modelling = fitted
    economics = pipeline.profit_model(spec, data.treatments)
    worth = 290.0 * data.outcomes["bought"] + 5.0 * data.outcomes["took_trial"]
    # every customer's realised net value: 0.55 x multiplier x worth, less the arm's costs
    cost = np.zeros(len(worth))
    for arm in data.treatments:
        rows = (data.arms == arm).to_numpy()
        took = data.outcomes["took_trial"].to_numpy()[rows]
        offer = spec.offer_for(arm)
        cost[rows] = spec.economics.contact_cost + took * (offer.delivery_cost - offer.price)
    expected = economics.value_per_unit * worth.to_numpy() - cost
    assert modelling.targeting is not None
    np.testing.assert_allclose(modelling.targeting.realised, expected, rtol=0, atol=1e-9)

    # each arm's out-of-fold net value: the value per unit times the learner cross-fitted on
    # the worth by hand (same folds and seed), less the out-of-fold expected spend
    x = FeatureEncoder(spec.population.features).fit(data.frame).transform(data.frame)
    oof = cross_fit_uplift(
        "t_learner",
        x,
        data.arms,
        worth,
        data.control,
        data.treatments,
        folds=2,
        seed=spec.models.seed,
        propensity=pipeline._propensity(data),
        base_params=FAST,
    ).predictions
    spend = modelling.targeting.spend["t_learner"]
    for arm in data.treatments:
        np.testing.assert_allclose(
            modelling.net_uplift["t_learner"][arm],
            economics.value_per_unit * oof[arm] - spend[arm],
            rtol=0,
            atol=1e-9,
        )
