"""Tests of uplift.analysis.importance.

The reference is the simulation itself: the data are generated so that the treatment
effect depends on one feature only (``effect``), the baseline outcome on another
(``baseline``), and a third (``noise``) plays no part at all. Permutation importance must
find that structure on held-out customers. A hand-built stub model, whose prediction reads
one column only, gives exact answers (zero for the column it never reads). Base models are
tiny (30 LightGBM trees, one thread) so the module runs in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from uplift.analysis.importance import UpliftImportance, permutation_importance
from uplift.analysis.learners import CrossFitResult, UpliftModel, cross_fit_uplift
from uplift.analysis.metrics import qini_score

FAST: dict[str, object] = {
    "n_estimators": 30,
    "learning_rate": 0.1,
    "min_child_samples": 50,
    "n_jobs": 1,
}
FEATURES = ["effect", "baseline", "noise"]


def _dataset(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """One offer against control; tau = 2 * effect; the baseline outcome is 2 * baseline.

    ``effect`` is uniform on [0, 1] (mean effect 1, so the normalized Qini is well
    defined); ``baseline`` and ``noise`` are standard normal; ``noise`` enters nothing.
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "effect": rng.uniform(0.0, 1.0, n),
            "baseline": rng.normal(size=n),
            "noise": rng.normal(size=n),
        },
        # a non-default index: alignment is checked against it
        index=pd.Index(rng.permutation(n) + 10_000, name="customer"),
    )
    arms = pd.Series(rng.choice(["control", "offer"], n), index=X.index)
    tau = 2.0 * X["effect"]
    y = 2.0 * X["baseline"] + tau * (arms == "offer") + rng.normal(size=n)
    return X, arms, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    return _dataset()


@pytest.fixture(scope="module")
def fitted(data: tuple) -> dict[str, CrossFitResult]:
    X, arms, y = data
    return {
        name: cross_fit_uplift(
            name,
            X,
            arms,
            y,
            "control",
            ["offer"],
            folds=4,
            seed=1,
            base_params=FAST,
            keep_fold_models=True,
        )
        for name in ["t_learner", "s_learner"]
    }


@pytest.fixture(scope="module")
def importance(data: tuple, fitted: dict[str, CrossFitResult]) -> UpliftImportance:
    X, arms, y = data
    return permutation_importance(fitted["t_learner"], X, arms, y, "control", n_repeats=3)


# --- ground truth on simulated data --------------------------------------------------


@pytest.mark.parametrize("name", ["t_learner", "s_learner"])
def test_the_effect_feature_ranks_first_with_a_clear_qini_drop(
    name: str, data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    """Only ``effect`` drives the uplift: scrambling it must wreck the ranking.

    Without it the model cannot tell high-effect customers from low-effect ones, so the
    permuted Qini falls to about zero and the drop is most of the baseline Qini; scrambling
    the other two features costs little.
    """
    X, arms, y = data
    result = permutation_importance(fitted[name], X, arms, y, "control", n_repeats=3, seed=0)
    baseline = result.baseline_qini["offer"]
    rows = result.to_frame().set_index("feature")

    assert result.ranking("offer")[0] == "effect"
    assert baseline > 0.05  # the model finds the effect at all
    assert rows.loc["effect", "qini_drop"] > 0.5 * baseline
    assert rows.loc["effect", "qini_drop"] > 4 * rows.loc["effect", "qini_drop_std"]
    for other in ["baseline", "noise"]:
        assert abs(rows.loc[other, "qini_drop"]) < rows.loc["effect", "qini_drop"] / 3


@pytest.mark.parametrize("name", ["t_learner", "s_learner"])
def test_the_noise_feature_barely_moves_the_predicted_uplift(
    name: str, data: tuple, fitted: dict[str, CrossFitResult]
) -> None:
    """``noise`` enters neither the effect nor the outcome: the predicted uplift should
    hardly depend on it, so permuting it moves the predictions far less than permuting
    ``effect`` (which moves them by about one standard deviation of the predictions)."""
    X, arms, y = data
    result = permutation_importance(fitted[name], X, arms, y, "control", n_repeats=3, seed=0)
    rows = result.to_frame().set_index("feature")

    assert rows.loc["effect", "relative_prediction_change"] > 0.7
    assert rows.loc["noise", "prediction_change"] < rows.loc["effect", "prediction_change"] / 3
    assert result.ranking("offer", by="prediction_change")[0] == "effect"


def test_uplift_forest_is_explained_through_the_same_interface() -> None:
    """The measure only calls ``predict``, so causalml's uplift forest works too.

    Binary outcome: P(y = 1) = 0.2 + 0.1 [baseline > 0] + 0.4 effect * treated, so again
    only ``effect`` changes the uplift and must rank first by both measures.
    """
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({f: rng.normal(size=n) for f in FEATURES})
    X["effect"] = rng.uniform(0.0, 1.0, n)
    arms = pd.Series(rng.choice(["control", "offer"], n))
    p = 0.2 + 0.1 * (X["baseline"] > 0) + 0.4 * X["effect"] * (arms == "offer")
    y = pd.Series((rng.uniform(size=n) < p).astype(float))
    forest = {"n_estimators": 10, "max_depth": 3, "min_samples_leaf": 100, "n_jobs": 1}
    fitted = cross_fit_uplift(
        "uplift_forest",
        X,
        arms,
        y,
        "control",
        ["offer"],
        folds=3,
        seed=1,
        base_params=forest,
        keep_fold_models=True,
    )

    result = permutation_importance(fitted, X, arms, y, "control", n_repeats=2)

    assert result.ranking("offer")[0] == "effect"
    assert result.ranking("offer", by="prediction_change")[0] == "effect"
    assert result.to_frame().set_index("feature").loc["effect", "qini_drop"] > 0.05


def test_three_arms_each_find_their_own_effect_feature() -> None:
    """Arm ``a`` works through ``xa`` only (tau_a = 2 xa), arm ``b`` through ``xb`` only
    (tau_b = 2 xb): every (arm, feature) pair gets a row, and each arm's ranking puts its
    own effect feature first."""
    rng = np.random.default_rng(11)
    n = 6000
    X = pd.DataFrame(
        {"xa": rng.uniform(size=n), "xb": rng.uniform(size=n), "z": rng.normal(size=n)}
    )
    arms = pd.Series(rng.choice(["control", "a", "b"], n, p=[0.4, 0.3, 0.3]))
    effect = np.select([arms == "a", arms == "b"], [2.0 * X["xa"], 2.0 * X["xb"]], 0.0)
    y = pd.Series(X["z"] + effect + rng.normal(size=n))
    fitted = cross_fit_uplift(
        "t_learner",
        X,
        arms,
        y,
        "control",
        ["a", "b"],
        folds=4,
        seed=2,
        base_params=FAST,
        keep_fold_models=True,
    )

    result = permutation_importance(fitted, X, arms, y, "control", n_repeats=2, seed=3)
    frame = result.to_frame()

    assert len(frame) == 6
    assert set(zip(frame["arm"], frame["feature"], strict=True)) == {
        (arm, f) for arm in ["a", "b"] for f in ["xa", "xb", "z"]
    }
    assert result.arms == ("a", "b")
    assert set(result.baseline_qini) == {"a", "b"}
    assert result.ranking("a")[0] == "xa"
    assert result.ranking("b")[0] == "xb"
    # rows come arm by arm, ranked by the Qini drop within each arm
    for arm in ["a", "b"]:
        block = frame[frame["arm"] == arm]
        assert block["rank"].tolist() == [1, 2, 3]
        assert block["qini_drop"].is_monotonic_decreasing


# --- exact answers with a stub model ---------------------------------------------------


class _ReadsFirstColumn:
    """A fitted-learner stand-in: predicted uplift = first column + ``offset``."""

    t_groups = np.array(["offer"])

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def predict(self, X: np.ndarray, **_: Any) -> np.ndarray:
        return X[:, :1] + self.offset


def _stub_result(n: int = 600, folds: int = 3, seed: int = 4) -> tuple[Any, ...]:
    """Features ``used`` (read by the model) and ``ignored`` (never read); fold ``k``'s
    model adds ``k``, so a row re-predicted by the wrong fold's model would show."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"used": rng.normal(size=n), "ignored": rng.normal(size=n)},
        index=pd.Index(np.arange(n) * 7, name="customer"),
    )
    arms = pd.Series(np.where(np.arange(n) % 2 == 0, "offer", "control"), index=X.index)
    y = pd.Series(X["used"] * (arms == "offer") + rng.normal(size=n) + 1.0, index=X.index)
    fold = rng.permutation(np.arange(n) % folds)
    models = tuple(
        UpliftModel("stub", _ReadsFirstColumn(float(k)), "control", ("offer",), None)
        for k in range(folds)
    )
    predictions = pd.DataFrame({"offer": X["used"].to_numpy() + fold}, index=X.index)
    result = CrossFitResult("stub", predictions, folds, None, fold, models)
    return result, X, arms, y


def test_a_feature_the_model_never_reads_has_exactly_zero_importance() -> None:
    """Permuting a column the model does not read changes no prediction, so its Qini drop
    and prediction change are exactly 0; the column it reads does move the predictions.
    Exact zeros also show each held-out row went back to its own fold's model."""
    result, X, arms, y = _stub_result()

    imp = permutation_importance(result, X, arms, y, "control", n_repeats=4, seed=1)
    rows = imp.to_frame().set_index("feature")

    assert rows.loc["ignored", "qini_drop"] == 0.0
    assert rows.loc["ignored", "qini_drop_std"] == 0.0
    assert rows.loc["ignored", "prediction_change"] == 0.0
    assert rows.loc["used", "prediction_change"] > 0.5
    assert imp.ranking("offer", by="prediction_change") == ("used", "ignored")
    assert imp.features == ("used", "ignored")
    assert (imp.n_repeats, imp.folds, imp.learner) == (4, 3, "stub")


def test_baseline_qini_is_the_out_of_fold_qini_of_the_stored_predictions() -> None:
    """The baseline is metrics.qini_score on the cross-fitted predictions, treated arm
    against control rows: recomputed here independently, it must agree exactly."""
    result, X, arms, y = _stub_result()
    expected = qini_score(
        y.to_numpy(), (arms == "offer").astype(int).to_numpy(), result.predictions["offer"]
    )

    imp = permutation_importance(result, X, arms, y, "control", n_repeats=2)

    assert imp.baseline_qini == {"offer": expected}


def test_same_seed_same_result_other_seed_other_permutations(
    data: tuple, fitted: dict[str, CrossFitResult], importance: UpliftImportance
) -> None:
    """The permutations come from ``seed`` alone: the same seed reproduces the table to
    the last digit; another seed draws other permutations and so other drops."""
    X, arms, y = data

    again = permutation_importance(fitted["t_learner"], X, arms, y, "control", n_repeats=3)
    other = permutation_importance(fitted["t_learner"], X, arms, y, "control", n_repeats=3, seed=99)

    pd.testing.assert_frame_equal(again.to_frame(), importance.to_frame())
    assert again.baseline_qini == importance.baseline_qini
    assert not np.array_equal(other.to_frame()["qini_drop"], importance.to_frame()["qini_drop"])
    assert other.baseline_qini == importance.baseline_qini  # no randomness in the baseline


def test_summary_names_every_arm_and_feature(importance: UpliftImportance) -> None:
    """The plain-text summary shows the learner, the baseline Qini and every feature."""
    text = importance.summary()

    assert "'t_learner'" in text
    assert f"baseline Qini {importance.baseline_qini['offer']:.4g}" in text
    for feature in FEATURES:
        assert feature in text


# --- errors ----------------------------------------------------------------------------


def test_a_result_without_fold_models_is_refused_with_the_fix() -> None:
    """Held-out customers can only be re-predicted by the fold models: without them the
    error tells the caller to pass keep_fold_models=True."""
    result, X, arms, y = _stub_result()
    bare = CrossFitResult("stub", result.predictions, result.folds, None, result.fold)

    with pytest.raises(ValueError, match=r"keep_fold_models=True"):
        permutation_importance(bare, X, arms, y, "control")


def test_misaligned_inputs_are_refused() -> None:
    """X must be the cross-fitted frame: other customers, another order, or reordered
    columns (which the fold models would misread) raise instead of scoring nonsense."""
    result, X, arms, y = _stub_result()

    with pytest.raises(ValueError, match=r"X's index does not match"):
        permutation_importance(result, X.iloc[::-1], arms, y, "control")
    with pytest.raises(ValueError, match=r"X's index does not match"):
        permutation_importance(result, X.iloc[:-1], arms.iloc[:-1], y.iloc[:-1], "control")
    with pytest.raises(ValueError, match=r"index of y does not match"):
        permutation_importance(result, X, arms, y.reset_index(drop=True), "control")
    with pytest.raises(ValueError, match=r"does not reproduce the stored predictions"):
        permutation_importance(result, X[["ignored", "used"]], arms, y, "control")


def test_bad_arguments_are_refused() -> None:
    """A missing control arm, no repeats, and unknown arms or columns in ranking()."""
    result, X, arms, y = _stub_result()

    with pytest.raises(ValueError, match=r"no customer is in arm 'holdout'"):
        permutation_importance(result, X, arms, y, "holdout")
    with pytest.raises(ValueError, match=r"n_repeats must be at least 1"):
        permutation_importance(result, X, arms, y, "control", n_repeats=0)
    imp = permutation_importance(result, X, arms, y, "control", n_repeats=1)
    assert np.isnan(imp.to_frame()["qini_drop_std"]).all()  # no spread from one repeat
    with pytest.raises(ValueError, match=r"unknown arm 'other'"):
        imp.ranking("other")
    with pytest.raises(ValueError, match=r"cannot rank by 'lift'"):
        imp.ranking("offer", by="lift")  # type: ignore[arg-type]
