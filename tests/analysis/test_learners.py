"""Tests of uplift.analysis.learners.

The learners are checked on simulated data whose per-customer effect is known (an
oracle): cross-fitted predictions must rank customers like the true effect. The base
models are kept tiny (30 LightGBM trees, one thread) so the module runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.features import encode_features
from uplift.analysis.learners import (
    CrossFitResult,
    SLearner,
    cross_fit_outcome,
    cross_fit_uplift,
    default_threads,
    fit_uplift,
    make_base,
    make_learner,
)
from uplift.errors import DataError

# few, shallow-ish trees on one thread: fast, deterministic, still able to find the effect
FAST: dict[str, object] = {
    "n_estimators": 30,
    "learning_rate": 0.1,
    "min_child_samples": 50,
    "n_jobs": 1,
}


# --- encode_features -----------------------------------------------------------------


def test_encode_features_keeps_numbers_codes_text_and_keeps_missing() -> None:
    frame = pd.DataFrame(
        {
            "recency": [3, 10, 200, 7, 42],
            "spend": [1.5, np.nan, 0.0, 12.25, 3.0],
            "active": [True, False, True, True, False],
            "plan": ["plus", "free", "basic", None, "free"],
            "seats": pd.array([1, None, 3, 2, 1], dtype="Int64"),
            "tier": pd.Categorical(["gold", "silver", "gold", "silver", None]),
            "unused": ["x", "y", "z", "w", "v"],
        },
        index=pd.Index([101, 205, 307, 409, 511], name="customer"),
    )
    out = encode_features(frame, ["plan", "recency", "spend", "active", "seats", "tier"])

    assert list(out.columns) == ["plan", "recency", "spend", "active", "seats", "tier"]
    assert out.index.equals(frame.index)
    assert all(out[c].dtype == np.float64 for c in out.columns)
    np.testing.assert_array_equal(out["recency"], [3.0, 10.0, 200.0, 7.0, 42.0])
    np.testing.assert_array_equal(out["spend"], [1.5, np.nan, 0.0, 12.25, 3.0])
    np.testing.assert_array_equal(out["active"], [1.0, 0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(out["seats"], [1.0, np.nan, 3.0, 2.0, 1.0])
    # text: codes of the sorted distinct values (basic=0, free=1, plus=2); missing stays NaN
    np.testing.assert_array_equal(out["plan"], [2.0, 1.0, 0.0, np.nan, 1.0])
    np.testing.assert_array_equal(out["tier"], [0.0, 1.0, 0.0, 1.0, np.nan])


def test_encode_features_codes_do_not_depend_on_row_order() -> None:
    frame = pd.DataFrame({"plan": ["team", "starter", "enterprise", "team"]})
    shuffled = frame.iloc[[3, 1, 0, 2]]
    assert encode_features(shuffled, ["plan"])["plan"].to_dict() == (
        encode_features(frame, ["plan"])["plan"].to_dict()
    )


def test_encode_features_names_the_missing_feature() -> None:
    frame = pd.DataFrame({"recency_days": [1, 2], "plan": ["a", "b"]})
    with pytest.raises(DataError) as info:
        encode_features(frame, ["recency_days", "monetary_180d"])
    # only the absent feature is reported as missing
    assert "['monetary_180d']" in str(info.value)


# --- cross-fitted uplift -------------------------------------------------------------


def _dataset(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series, dict]:
    """Two treatment arms with known, heterogeneous effects.

    Arm ``a`` helps customers with high ``x0`` and hurts those with low ``x0``
    (tau_a = 2 x0); arm ``b`` helps everyone, more where ``x1 > 0`` (tau_b = 1 + 2 [x1 > 0]).
    """
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.0, 1.0, n)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(size=n)
    X = pd.DataFrame(
        {"x0": x0, "x1": x1, "x2": x2},
        # a non-default index: predictions must come back aligned to it
        index=pd.Index(rng.permutation(np.arange(50_000, 50_000 + n)), name="customer"),
    )
    arms = pd.Series(rng.choice(["control", "a", "b"], n, p=[0.4, 0.3, 0.3]), index=X.index)
    tau = {"a": 2.0 * x0, "b": 1.0 + 2.0 * (x1 > 0)}
    effect = np.select([arms == "a", arms == "b"], [tau["a"], tau["b"]], 0.0)
    y = pd.Series(1.0 + x1 + 0.5 * x2 + effect + rng.normal(size=n), index=X.index)
    return X, arms, y, tau


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series, pd.Series, dict]:
    return _dataset()


@pytest.fixture(scope="module")
def fitted(data: tuple) -> dict[str, CrossFitResult]:
    X, arms, y, _ = data
    return {
        name: cross_fit_uplift(
            name, X, arms, y, "control", ["a", "b"], folds=5, seed=3, base_params=FAST
        )
        for name in ["t_learner", "x_learner", "s_learner"]
    }


@pytest.mark.parametrize("name", ["t_learner", "x_learner", "s_learner"])
def test_every_customer_gets_a_prediction_per_arm(
    name: str, data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    X, *_ = data
    result = fitted[name]
    assert result.name == name
    assert result.folds == 5
    frame = result.to_frame()
    assert list(frame.columns) == ["a", "b"]
    assert frame.index.equals(X.index)
    assert not frame.isna().any().any()
    assert np.isfinite(frame.to_numpy()).all()


@pytest.mark.parametrize("name", ["t_learner", "x_learner"])
def test_predictions_rank_customers_like_the_true_effect(
    name: str, data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    _, _, _, tau = data
    predictions = fitted[name].predictions
    # oracle check: the simulated effect of every customer is known
    for arm in ["a", "b"]:
        corr = np.corrcoef(predictions[arm].to_numpy(), tau[arm])[0, 1]
        assert corr > 0.7, f"{name} / {arm}: correlation with the true effect {corr:.2f}"
    # and the average prediction is near the average true effect (0 for a, 2 for b)
    assert predictions["a"].mean() == pytest.approx(tau["a"].mean(), abs=0.25)
    assert predictions["b"].mean() == pytest.approx(tau["b"].mean(), abs=0.25)


def test_cross_fitting_is_reproducible_for_a_seed(
    data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    X, arms, y, _ = data
    again = cross_fit_uplift(
        "x_learner", X, arms, y, "control", ["a", "b"], folds=5, seed=3, base_params=FAST
    )
    pd.testing.assert_frame_equal(again.predictions, fitted["x_learner"].predictions)
    other = cross_fit_uplift(
        "x_learner", X, arms, y, "control", ["a", "b"], folds=5, seed=4, base_params=FAST
    )
    assert not np.allclose(other.predictions.to_numpy(), fitted["x_learner"].predictions)


def test_a_customers_prediction_ignores_its_own_outcome(
    data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    # Out-of-fold: the model that predicts a customer never saw that customer, so an
    # absurd change of its own outcome leaves its own prediction exactly as it was (the
    # folds depend on the arms only), while the customers whose models trained on it move.
    X, arms, y, _ = data
    position = int(np.flatnonzero((arms == "a").to_numpy())[17])
    customer = X.index[position]
    altered = y.copy()
    altered.iloc[position] = 1e5
    result = cross_fit_uplift(
        "t_learner", X, arms, altered, "control", ["a", "b"], folds=5, seed=3, base_params=FAST
    )
    before = fitted["t_learner"].predictions
    assert result.predictions.loc[customer, "a"] == before.loc[customer, "a"]
    assert result.predictions.loc[customer, "b"] == before.loc[customer, "b"]
    moved = (result.predictions["a"] - before["a"]).abs() > 1e-6
    assert moved.sum() > len(X) / 2


def test_cross_fitted_predictions_differ_from_an_in_sample_fit(
    data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    X, arms, y, _ = data
    learner = make_learner("t_learner", "control", 3, FAST)
    learner.fit(X=X.to_numpy(), treatment=arms.astype(str).to_numpy(), y=y.to_numpy())
    groups = [str(g) for g in learner.t_groups]
    in_sample = np.asarray(learner.predict(X=X.to_numpy())).reshape(len(X), -1)
    oof = fitted["t_learner"].predictions
    for arm in ["a", "b"]:
        diff = np.abs(in_sample[:, groups.index(arm)] - oof[arm].to_numpy())
        assert (diff > 1e-9).mean() > 0.9


def test_one_treatment_arm_and_a_known_propensity() -> None:
    X, arms, y, tau = _dataset(n=3000, seed=1)
    keep = (arms != "b").to_numpy()
    result = cross_fit_uplift(
        "x_learner",
        X[keep],
        arms[keep],
        y[keep],
        "control",
        ["a"],
        folds=3,
        seed=0,
        propensity={"a": 3 / 7},  # 0.3 / (0.3 + 0.4), from the assignment weights
        base_params=FAST,
    )
    assert list(result.predictions.columns) == ["a"]
    assert result.predictions.index.equals(X.index[keep])
    assert not result.predictions.isna().any().any()
    assert np.corrcoef(result.predictions["a"], tau["a"][keep])[0, 1] > 0.7


def test_unknown_learner_and_base_are_refused() -> None:
    with pytest.raises(ValueError, match="known learners are"):
        make_learner("magic_learner", "control", 0, FAST)
    with pytest.raises(ValueError, match="known base models are"):
        make_learner("t_learner", "control", 0, {}, base="catboost")


# --- the registry: more learners and base models, the refitted model -------------------


@pytest.mark.parametrize(
    ("name", "base", "params"),
    [
        ("r_learner", "lightgbm", FAST),
        ("dr_learner", "lightgbm", FAST),
        ("t_learner", "xgboost", {"n_estimators": 40, "learning_rate": 0.1, "n_jobs": 1}),
        ("t_learner", "random_forest", {"n_estimators": 30, "min_samples_leaf": 50, "n_jobs": 1}),
        ("x_learner", "linear", {}),
    ],
)
def test_more_learners_and_bases_find_the_true_effect(
    name: str, base: str, params: dict, data: tuple
) -> None:
    X, arms, y, tau = data
    result = cross_fit_uplift(
        name,
        X,
        arms,
        y,
        "control",
        ["a", "b"],
        folds=3,
        seed=0,
        propensity={"a": 3 / 7, "b": 3 / 7},  # 0.3 / (0.3 + 0.4), the known assignment
        base=base,
        base_params=params,
        label=f"{name}/{base}",
    )
    assert result.name == f"{name}/{base}"
    assert not result.predictions.isna().any().any()
    # oracle: arm a's effect is linear in x0, so even the ridge base finds it
    corr = np.corrcoef(result.predictions["a"], tau["a"])[0, 1]
    assert corr > 0.7, f"{name}/{base}: correlation with the true effect of a {corr:.2f}"


def test_the_uplift_forest_ranks_a_binary_outcome_and_refuses_a_continuous_one() -> None:
    rng = np.random.default_rng(8)
    n = 6000
    X = pd.DataFrame({"x0": rng.uniform(-1, 1, n), "x1": rng.normal(size=n)})
    arms = pd.Series(rng.choice(["control", "b", "a"], n))
    tau = {"a": 0.25 * (X["x0"] > 0), "b": -0.1 + 0 * X["x0"]}
    p = 0.2 + np.select([arms == "a", arms == "b"], [tau["a"], tau["b"]], 0.0)
    y = pd.Series((rng.random(n) < p).astype(int))
    result = cross_fit_uplift(
        "uplift_forest",
        X,
        arms,
        y,
        "control",
        ["a", "b"],  # not the forest's (sorted) order: columns must follow the arms
        folds=3,
        seed=0,
        base_params={"n_estimators": 10, "max_depth": 3, "n_jobs": 1},
    )
    predicted = result.predictions
    assert list(predicted.columns) == ["a", "b"]
    high = (X["x0"] > 0).to_numpy()
    assert predicted["a"][high].mean() - predicted["a"][~high].mean() > 0.1
    assert predicted["b"].mean() == pytest.approx(-0.1, abs=0.05)
    with pytest.raises(ValueError, match="binary"):
        cross_fit_uplift("uplift_forest", X, arms, y + 0.5, "control", ["a", "b"], folds=2, seed=0)


def test_the_refitted_model_scores_new_customers(data: tuple) -> None:
    X, arms, y, _ = data
    result = cross_fit_uplift(
        "x_learner",
        X,
        arms,
        y,
        "control",
        ["a", "b"],
        folds=3,
        seed=0,
        propensity={"a": 3 / 7, "b": 3 / 7},
        base_params=FAST,
        refit=True,
    )
    assert result.model is not None
    assert result.model.propensity == {"a": 3 / 7, "b": 3 / 7}
    fresh, _, _, fresh_tau = _dataset(n=2000, seed=9)
    scored = result.model.predict(fresh)
    assert list(scored.columns) == ["a", "b"] and scored.index.equals(fresh.index)
    assert np.corrcoef(scored["a"], fresh_tau["a"])[0, 1] > 0.7
    # and scoring is a pure function of the features
    pd.testing.assert_frame_equal(result.model.predict(fresh), scored)
    without = cross_fit_uplift(
        "x_learner", X, arms, y, "control", ["a", "b"], folds=3, seed=0, base_params=FAST
    )
    assert without.model is None


@pytest.mark.parametrize(
    ("setting", "threads"), [(None, 2), ("1", 1), ("6", 6), ("3,1", 3), ("", 2), ("many", 2)]
)
def test_models_run_on_two_threads_unless_omp_num_threads_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, threads: int
) -> None:
    if setting is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", setting)
    assert default_threads() == threads
    for base in ("lightgbm", "xgboost", "random_forest"):
        assert make_base(base, 0).get_params()["n_jobs"] == threads
        assert make_base(base, 0, {"n_jobs": 5}).get_params()["n_jobs"] == 5  # the spec wins
    forest = make_learner("uplift_forest", "control", 0)
    assert forest.n_jobs == threads


# --- the S-learner: one model of every arm ----------------------------------------------


def test_the_s_learner_with_one_arm_predicts_what_causalmls_does(data: tuple) -> None:
    # reference: causalml's BaseSRegressor on the same base model (its S-learner fits one
    # model per arm on that arm's and the control's customers: with one arm, ours)
    from causalml.inference.meta import BaseSRegressor

    X, arms, y, _ = data
    keep = (arms != "b").to_numpy()
    x, t, target = X.to_numpy()[keep], arms.to_numpy()[keep], y.to_numpy()[keep]
    ours = fit_uplift("s_learner", x, t, target, "control", ["a"], seed=5, base_params=FAST)
    reference = BaseSRegressor(learner=make_base("lightgbm", 5, FAST), control_name="control")
    reference.fit(X=x, treatment=t, y=target)
    expected = np.asarray(reference.predict(X=x)).reshape(-1)
    np.testing.assert_allclose(ours.predict(x)["a"].to_numpy(), expected, rtol=1e-12, atol=1e-12)


def test_the_s_learner_learns_the_outcome_of_every_arm_in_one_model(data: tuple) -> None:
    X, arms, y, tau = data
    model = fit_uplift(
        "s_learner",
        X,
        arms.to_numpy(),
        y.to_numpy(),
        "control",
        ["a", "b"],
        seed=0,
        base_params=FAST,
    )
    learner = model.learner
    assert isinstance(learner, SLearner)
    assert list(learner.t_groups) == ["a", "b"]
    # one model, fitted on every customer: an any-arm column and an indicator per arm
    # before the three features
    assert learner.pooled_
    assert learner.model.n_features_in_ == 1 + 2 + 3
    assert learner.model.booster_.num_trees() == FAST["n_estimators"]
    scored = model.predict(X)
    for arm in ["a", "b"]:
        assert np.corrcoef(scored[arm], tau[arm])[0, 1] > 0.7
    with pytest.raises(ValueError, match="at least one treatment arm"):
        SLearner(make_base("lightgbm", 0, FAST), "control").fit(
            X.to_numpy()[:50], np.array(["control"] * 50), y.to_numpy()[:50]
        )


def test_sharing_the_outcome_model_between_arms_estimates_small_arms_better() -> None:
    # Simulation with known effects: a control of 20% and four treatment arms. causalml's
    # S-learner learns the outcome's shape again for each arm from that arm and the
    # control; one model learns it from everyone, so its effects are closer to the truth
    # (given trees enough for four effects: with 30 it is the one that underfits).
    from causalml.inference.meta import BaseSRegressor

    errors = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 12_000
        x = rng.normal(size=(n, 4))
        treatments = ["a", "b", "c", "d"]
        arms = rng.choice(["control", *treatments], n)
        lift = {arm: (k + 1) * 0.25 * (x[:, 0] > 0) for k, arm in enumerate(treatments)}
        shape = np.sin(2 * x[:, 1]) + x[:, 2] ** 2 + 0.5 * x[:, 3]
        effect = np.select([arms == a for a in treatments], [lift[a] for a in treatments], 0.0)
        y = shape + effect + rng.normal(size=n)
        fresh = rng.normal(size=(5000, 4))
        truth = np.column_stack([(k + 1) * 0.25 * (fresh[:, 0] > 0) for k in range(4)])
        params = {**FAST, "n_estimators": 120}
        ours = fit_uplift("s_learner", x, arms, y, "control", treatments, base_params=params)
        per_arm = BaseSRegressor(learner=make_base("lightgbm", 0, params), control_name="control")
        per_arm.fit(X=x, treatment=arms, y=y)
        errors.append(
            [
                np.sqrt(np.mean((ours.predict(fresh).to_numpy() - truth) ** 2)),
                np.sqrt(np.mean((np.asarray(per_arm.predict(X=fresh)) - truth) ** 2)),
            ]
        )
    error_ours, error_per_arm = np.mean(errors, axis=0)
    assert error_ours < 0.85 * error_per_arm, (error_ours, error_per_arm)


def _effects_of_two_arm_indicators(model: object, x: np.ndarray) -> np.ndarray:
    """By hand, each arm's effect from a model of [arm a, arm b, features]: the prediction
    with the arm's indicator set less the prediction with none (one column per arm)."""
    predict = model.predict  # type: ignore[attr-defined]
    control = predict(np.hstack([np.zeros((len(x), 2)), x]))
    return np.column_stack(
        [
            predict(np.hstack([np.tile(on, (len(x), 1)), x])) - control
            for on in ([1.0, 0.0], [0.0, 1.0])
        ]
    )


def test_an_s_learner_fitted_before_the_any_arm_column_still_predicts(data: tuple) -> None:
    # a model logged by an earlier version was pickled without ``pooled_``: its design is
    # the arm indicators alone, and `uplift score` must still apply it
    X, arms, y, _ = data
    groups = np.array(["a", "b"])
    indicators = (arms.to_numpy()[:, None] == groups[None, :]).astype(float)
    old = SLearner(make_base("lightgbm", 0, FAST), "control")
    old.t_groups = groups
    old.model = make_base("lightgbm", 0, FAST).fit(np.hstack([indicators, X]), y)
    x = X.to_numpy()
    expected = _effects_of_two_arm_indicators(old.model, x)
    np.testing.assert_allclose(old.predict(x), expected, rtol=0, atol=1e-12)


def test_the_any_arm_column_learns_an_effect_shared_by_the_arms_better() -> None:
    # Simulation with known effects, shaped like the trial-lessons example: a 0/1 outcome,
    # a control of 20% and two arms whose effects share one shape (the second 1.5 times
    # the first), small against the outcome's noise. The reference is the same LightGBM
    # fitted by hand on the arm indicators alone (this S-learner before the any-arm
    # column); with the column, one split sets the control apart from both arms.
    params = {
        "objective": "cross_entropy",
        "n_estimators": 150,
        "learning_rate": 0.05,
        "num_leaves": 7,
        "n_jobs": 1,
    }
    scales = {"control": 0.0, "a": 1.0, "b": 1.5}

    def lift(x: np.ndarray) -> np.ndarray:
        return 0.10 / (1.0 + np.exp(2.0 * x[:, 0]))

    errors = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n = 20_000
        x = rng.normal(size=(n, 4))
        arms = rng.choice(list(scales), n, p=[0.2, 0.4, 0.4])
        baseline = 1.0 / (1.0 + np.exp(1.0 - x[:, 1] - 0.5 * x[:, 2]))
        p = baseline + np.array([scales[a] for a in arms]) * lift(x)
        y = (rng.random(n) < p).astype(float)
        fresh = rng.normal(size=(5000, 4))
        truth = np.column_stack([scales[a] * lift(fresh) for a in ["a", "b"]])

        ours = fit_uplift("s_learner", x, arms, y, "control", ["a", "b"], base_params=params)
        indicators = np.column_stack([arms == "a", arms == "b"]).astype(float)
        by_hand = make_base("lightgbm", 0, params).fit(np.hstack([indicators, x]), y)
        reference = _effects_of_two_arm_indicators(by_hand, fresh)
        errors.append(
            [
                np.sqrt(np.mean((ours.predict(fresh).to_numpy() - truth) ** 2)),
                np.sqrt(np.mean((reference - truth) ** 2)),
            ]
        )
    error_ours, error_arms_only = np.mean(errors, axis=0)
    # measured 2026-12-07: 0.0276 against 0.0303 (0.91), lower on every seed
    assert error_ours < 0.95 * error_arms_only, errors


# --- binary outcomes: the outcome models fit the log loss -------------------------------


def test_binary_bases_fit_the_log_loss_unless_the_parameters_say_otherwise() -> None:
    assert make_base("lightgbm", 0, binary=True).objective == "cross_entropy"
    assert make_base("lightgbm", 0).objective is None  # LightGBM's regression (L2)
    assert make_base("xgboost", 0, binary=True).objective == "reg:logistic"
    assert make_base("xgboost", 0).objective == "reg:squarederror"
    assert make_base("lightgbm", 0, {"objective": "huber"}, binary=True).objective == "huber"
    # the forest's leaf shares are probabilities already; ridge stays a linear probability model
    for base in ["random_forest", "linear"]:
        assert repr(make_base(base, 0, binary=True)) == repr(make_base(base, 0))


def test_a_binary_lightgbm_grows_smaller_trees_unless_the_parameters_say_otherwise() -> None:
    # the defaults of a 0/1 outcome's LightGBM (uplift/analysis/learners.py, measured by
    # tests/benchmarks/bench_policy_oracle.py on the trial-lessons example)
    binary = make_base("lightgbm", 0, binary=True)
    plain = make_base("lightgbm", 0)
    got = (binary.num_leaves, binary.n_estimators, binary.learning_rate)
    assert got == (7, 150, 0.05)
    assert (plain.num_leaves, plain.n_estimators, plain.learning_rate) == (15, 60, 0.1)
    assert binary.min_child_samples == plain.min_child_samples == 200
    given = make_base("lightgbm", 0, {"num_leaves": 31, "n_estimators": 20}, binary=True)
    assert (given.num_leaves, given.n_estimators, given.learning_rate) == (31, 20, 0.05)
    # the effect stage of a binary outcome's X-learner is a regression with the plain defaults
    x = make_learner("x_learner", "control", 0, binary=True)
    assert x.control_outcome_learner.num_leaves == 7
    assert x.control_effect_learner.num_leaves == 15


@pytest.mark.parametrize(
    ("name", "outcome_models", "effect_models"),
    [
        ("s_learner", ["learner"], []),
        ("t_learner", ["learner"], []),
        (
            "x_learner",
            ["control_outcome_learner", "treatment_outcome_learner"],
            ["control_effect_learner", "treatment_effect_learner"],
        ),
        ("r_learner", ["outcome_learner"], ["effect_learner"]),
        (
            "dr_learner",
            ["control_outcome_learner", "treatment_outcome_learner"],
            ["treatment_effect_learner"],
        ),
    ],
)
def test_only_the_models_of_a_binary_outcome_fit_the_log_loss(
    name: str, outcome_models: list[str], effect_models: list[str]
) -> None:
    # an effect is a difference of probabilities, negative for some customers: the models
    # of the effect (X, R and DR learners' second stage) stay regressions
    learner = make_learner(name, "control", 0, FAST, binary=True)
    for attribute in outcome_models:
        assert getattr(learner, attribute).objective == "cross_entropy", attribute
    for attribute in effect_models:
        assert getattr(learner, attribute).objective is None, attribute
    plain = make_learner(name, "control", 0, FAST)
    for attribute in outcome_models + effect_models:
        assert getattr(plain, attribute).objective is None, attribute


def _binary_dataset(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series, dict]:
    """A rare 0/1 outcome (about 10%) whose arms shift its log-odds: arm ``a`` by 1.2 where
    ``x0 > 0``, arm ``b`` by 0.4 everywhere. The true effects are differences of
    probabilities."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x0": rng.uniform(-1, 1, n), "x1": rng.normal(size=n)})
    arms = pd.Series(rng.choice(["control", "a", "b"], n, p=[0.2, 0.4, 0.4]))
    base = -3.0 + 1.2 * X["x1"].to_numpy()
    shift = {"a": 1.2 * (X["x0"].to_numpy() > 0), "b": np.full(n, 0.4)}
    tau = {arm: _sigmoid(base + s) - _sigmoid(base) for arm, s in shift.items()}
    logit = base + np.select([arms == "a", arms == "b"], [shift["a"], shift["b"]], 0.0)
    y = pd.Series((rng.random(n) < _sigmoid(logit)).astype(float))
    return X, arms, y, tau


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


@pytest.mark.parametrize("name", ["s_learner", "t_learner", "x_learner", "dr_learner"])
def test_binary_learners_find_the_true_difference_of_probabilities(name: str) -> None:
    X, arms, y, tau = _binary_dataset(20_000, seed=2)
    result = cross_fit_uplift(
        name,
        X,
        arms,
        y,
        "control",
        ["a", "b"],
        folds=3,
        seed=0,
        propensity={"a": 2 / 3, "b": 2 / 3},  # 0.4 / (0.4 + 0.2)
        base_params={"n_jobs": 1},  # the binary defaults themselves
        binary=True,
        refit=True,
    )
    predicted = result.predictions
    # oracle: the simulated difference of probabilities of every customer is known
    assert np.corrcoef(predicted["a"], tau["a"])[0, 1] > 0.7
    # and the average prediction is within three standard errors of a difference of two
    # means of the average true effect
    for arm in ["a", "b"]:
        se = np.sqrt(sum(y[arms == g].var() / (arms == g).sum() for g in [arm, "control"]))
        assert predicted[arm].mean() == pytest.approx(tau[arm].mean(), abs=3 * se)
    # the refitted models of the outcome predict probabilities
    assert result.model is not None
    learner = result.model.learner
    if name in ("s_learner", "t_learner"):
        probabilities = (
            learner.model.predict(np.column_stack([np.zeros((len(X), 3)), X]))
            if name == "s_learner"
            else learner.models_c["a"].predict(X.to_numpy())
        )
        assert probabilities.min() > 0.0 and probabilities.max() < 1.0


def test_a_binary_outcome_model_refuses_a_non_binary_outcome() -> None:
    X, arms, y, _ = _binary_dataset(600, seed=3)
    with pytest.raises(ValueError, match=r"binary \(0/1\) outcome"):
        cross_fit_uplift(
            "s_learner",
            X,
            arms,
            y * 2.0,
            "control",
            ["a", "b"],
            folds=2,
            binary=True,
            base_params=FAST,
        )
    with pytest.raises(ValueError, match=r"binary \(0/1\) outcome"):
        cross_fit_outcome(
            X,
            y.to_numpy() * 2.0,
            np.ones(len(X), bool),
            np.arange(len(X)) % 2,
            binary=True,
            base_params=FAST,
        )
