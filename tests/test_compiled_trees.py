"""Tests of uplift.compiled_trees: LightGBM models compiled with TL2cgen for scoring.

The reference for every number is LightGBM's own ``predict`` on the same model and rows
(the compiled library must reproduce it, not approximate it): causalml's meta-learners on
LightGBM are fitted on a simulated three-arm campaign whose features hold missing values,
compiled, and compared on fresh rows, on every split threshold of the model and the
doubles either side of it, and on the doubles that LightGBM or TL2cgen read specially.
Libraries are compiled into each test's own cache folder.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from test_scoring import assert_same_scores, small_model

from uplift import compiled_trees
from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import UpliftModel, fit_uplift, make_base
from uplift.compiled_trees import (
    CompiledTrees,
    compile_lightgbm,
    compile_scoring_model,
)
from uplift.scoring import ScoringModel
from uplift.value.costs import NoOfferCost

SMALL = {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 20, "n_jobs": 1}
FEATURES = [f"x{j}" for j in range(5)]


def campaign(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three arms, a heterogeneous effect, 5% of every feature missing, some of it integer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 4] = rng.integers(0, 6, n)  # a count: LightGBM puts thresholds next to integers
    x[rng.random(x.shape) < 0.05] = np.nan
    arms = rng.choice(["control", "a", "b"], n)
    signal = np.nan_to_num(x[:, 0]) + 0.3 * np.nan_to_num(x[:, 4])
    effect = (arms == "a") * (np.nan_to_num(x[:, 1]) > 0) - 0.5 * (arms == "b") * signal
    return x, arms, signal + effect + rng.normal(size=n)


def regressor(seed: int = 0) -> LGBMRegressor:
    x, _, y = campaign(3000, seed)
    model: LGBMRegressor = make_base("lightgbm", seed, SMALL).fit(x, y)
    return model


def scoring_model(x: np.ndarray, uplift: UpliftModel, name: str) -> ScoringModel:
    """A scoring model of ``uplift`` on arms a and b, no offer cost, a contact cost of 0.1."""
    frame = pd.DataFrame(x, columns=FEATURES).assign(id=np.arange(len(x)))
    return ScoringModel(
        id_column="id",
        encoder=FeatureEncoder(FEATURES).fit(frame),
        uplift=uplift,
        metric="y",
        value_per_unit=1.0,
        contact_cost=0.1,
        cost_models={"a": NoOfferCost(), "b": NoOfferCost()},
        learner=name,
    )


def lgbm_models(learner: object) -> list[LGBMRegressor]:
    """Every fitted LightGBM model a causalml learner holds (dicts and lists walked)."""
    found: list[LGBMRegressor] = []

    def walk(value: object) -> None:
        if isinstance(value, LGBMRegressor) and getattr(value, "fitted_", False):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for value in vars(learner).values():
        walk(value)
    return found


@pytest.mark.parametrize("name", ["s_learner", "t_learner", "x_learner", "r_learner", "dr_learner"])
def test_every_meta_learner_predicts_exactly_what_lightgbm_does(name: str, tmp_path: Path) -> None:
    x, arms, y = campaign(4000, seed=1)
    uplift = fit_uplift(name, x, arms, y, "control", ["a", "b"], seed=1, base_params=SMALL)
    model = scoring_model(x, uplift, name)
    held = {id(m) for m in lgbm_models(uplift.learner)}

    compiled, report = compile_scoring_model(model, cache_dir=tmp_path)

    assert (report.compiled, report.kept) == (len(held), 0), report
    # the S-learner is one model of both arms; the others hold one or more per arm
    assert report.compiled >= (1 if name == "s_learner" else 2)
    # the compiled copy holds no LightGBM model; the original still holds all of them
    assert lgbm_models(compiled.uplift.learner) == []
    assert {id(m) for m in lgbm_models(uplift.learner)} == held
    fresh, _, _ = campaign(5000, seed=2)
    new = pd.DataFrame(fresh, columns=FEATURES).assign(id=np.arange(len(fresh)))
    expected = model.predict(new)
    found = compiled.predict(new)
    assert_same_scores_exactly(found, expected)


def assert_same_scores_exactly(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(found.columns) == list(expected.columns)
    assert found["recommended_arm"].tolist() == expected["recommended_arm"].tolist()
    numbers = [c for c in expected.columns if c.startswith(("uplift_", "net_value_"))]
    np.testing.assert_array_equal(found[numbers].to_numpy(), expected[numbers].to_numpy())


def test_every_threshold_and_the_doubles_either_side_go_the_way_lightgbm_sends_them(
    tmp_path: Path,
) -> None:
    model = regressor()
    compiled = compile_lightgbm(model, cache_dir=tmp_path)
    thresholds: dict[int, list[float]] = {}

    def walk(node: dict[str, object]) -> None:
        if "split_feature" in node:
            feature = node["split_feature"]
            assert isinstance(feature, int)
            thresholds.setdefault(feature, []).append(float(node["threshold"]))  # type: ignore[arg-type]
            walk(node["left_child"])  # type: ignore[arg-type]
            walk(node["right_child"])  # type: ignore[arg-type]

    for tree in model.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rows = []
    for feature, values in thresholds.items():
        for t in values:
            for value in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
                row = np.zeros(len(FEATURES))
                row[feature] = value
                rows.append(row)
    probe = np.array(rows)
    assert len(probe) >= 3 * 15  # fifteen trees of at least one split

    np.testing.assert_array_equal(compiled.predict(probe), model.predict(probe))


def test_values_read_specially_by_lightgbm_or_tl2cgen_are_predicted_as_lightgbm_does(
    tmp_path: Path,
) -> None:
    # Hand-made doubles: 1e-36 (LightGBM reads |x| <= 1e-35 as zero); the double just above
    # -0.5625 and just below 2.0, whose low 32 bits are all ones (TL2cgen's generated code
    # reads those bits as its missing flag); and values neither reads specially.
    special = [1e-36, -1e-36, np.nextafter(-0.5625, 0.0), np.nextafter(2.0, 0.0)]
    ordinary = [0.0, -0.0, np.nan, 1.0, -0.5625, 2.0, 1e-30, np.inf]
    bits = np.array(special[2:]).view(np.uint64) & np.uint64(0xFFFFFFFF)
    assert (bits == np.uint64(0xFFFFFFFF)).all()  # the premise of the two hand values
    x = np.zeros((len(special) + len(ordinary), len(FEATURES)))
    x[:, 0] = special + ordinary
    flagged = compiled_trees._special_rows(x)
    assert flagged.tolist() == [True] * len(special) + [False] * len(ordinary)

    model = regressor()
    compiled = compile_lightgbm(model, cache_dir=tmp_path)
    # every feature takes every value, so each one meets the splits of every feature
    grid = np.array([[v] * len(FEATURES) for v in special + ordinary])
    np.testing.assert_array_equal(compiled.predict(grid), model.predict(grid))
    np.testing.assert_array_equal(compiled.predict(x), model.predict(x))


def test_the_library_is_cached_by_the_model_and_reused(tmp_path: Path) -> None:
    model = regressor()
    first = compile_lightgbm(model, cache_dir=tmp_path)
    built = first.library.stat().st_mtime_ns

    again = compile_lightgbm(model, cache_dir=tmp_path)
    other = compile_lightgbm(regressor(seed=3), cache_dir=tmp_path)

    assert again.library == first.library
    assert again.library.stat().st_mtime_ns == built
    assert other.library != first.library
    assert sorted(p.name for p in (tmp_path / "compiled-trees").iterdir()) == sorted(
        [first.library.name, other.library.name]
    )


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    model = regressor()

    compiled = compile_lightgbm(model, cache_dir=blocked)

    assert not compiled.library.is_relative_to(tmp_path)
    assert compiled.library.exists()
    x, _, _ = campaign(500, seed=4)
    np.testing.assert_array_equal(compiled.predict(x), model.predict(x))


def test_without_a_c_compiler_the_models_are_kept_and_the_report_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model, base = small_model()
    monkeypatch.setattr(shutil, "which", lambda name: None)

    compiled, report = compile_scoring_model(model, cache_dir=tmp_path)

    assert report.compiled == 0 and report.kept >= 4, report
    assert report.reasons == ("no C compiler (gcc or cc) on the PATH",)
    assert "LightGBM's own predict (no C compiler (gcc or cc) on the PATH)" in report.describe()
    assert_same_scores(compiled.predict(base), model.predict(base))
    assert not (tmp_path / "compiled-trees").exists() or not any(
        (tmp_path / "compiled-trees").glob("*.so")
    )


def test_a_compiled_model_that_disagrees_is_refused_and_kept_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a library that is off by 1e-6 stands for any wrong translation of the trees
    honest = CompiledTrees.predict
    monkeypatch.setattr(CompiledTrees, "predict", lambda self, X: honest(self, X) + 1e-6)
    model, base = small_model()

    with pytest.raises(RuntimeError, match=r"differs from LightGBM.s predict by up to"):
        compile_lightgbm(regressor(), cache_dir=tmp_path)
    compiled, report = compile_scoring_model(model, cache_dir=tmp_path)

    assert report.compiled == 0 and report.kept >= 4
    assert all("differs from LightGBM's predict" in r for r in report.reasons)
    monkeypatch.setattr(CompiledTrees, "predict", honest)
    assert_same_scores(compiled.predict(base), model.predict(base))


def test_a_pickled_compiled_model_is_the_lightgbm_model(tmp_path: Path) -> None:
    model = regressor()
    compiled = compile_lightgbm(model, cache_dir=tmp_path)

    back = pickle.loads(pickle.dumps(compiled))

    assert isinstance(back, LGBMRegressor)
    x, _, _ = campaign(300, seed=5)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_a_matrix_of_the_wrong_width_is_refused_and_an_empty_one_gives_nothing(
    tmp_path: Path,
) -> None:
    compiled = compile_lightgbm(regressor(), cache_dir=tmp_path)

    with pytest.raises(ValueError, match=r"expected a matrix of 5 features, found shape \(3, 4\)"):
        compiled.predict(np.zeros((3, 4)))
    assert compiled.predict(np.zeros((0, 5))).shape == (0,)


def test_models_other_than_lightgbm_are_left_alone(tmp_path: Path) -> None:
    x, arms, y = campaign(2000, seed=6)
    uplift = fit_uplift("t_learner", x, arms, y, "control", ["a", "b"], seed=6, base="linear")
    model = scoring_model(x, uplift, "t_learner")

    compiled, report = compile_scoring_model(model, cache_dir=tmp_path)

    assert (report.compiled, report.kept) == (0, 0)
    assert report.describe() == "no LightGBM model to compile: scoring with the models as fitted"
    assert compiled.uplift.learner.models_t["a"] is uplift.learner.models_t["a"]


def test_linear_trees_are_refused_before_compiling(tmp_path: Path) -> None:
    # TL2cgen compiles constant leaves only: a linear tree is kept on LightGBM's predict,
    # with the reason, and nothing is built
    x, _, y = campaign(3000, 0)
    linear = make_base("lightgbm", 0, {**SMALL, "linear_tree": True}).fit(x, y)
    with pytest.raises(RuntimeError, match=r"linear trees \(linear_tree\)"):
        compile_lightgbm(linear, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.so"))
    # the package's default for a 0/1 metric has them
    binary = make_base("lightgbm", 0, SMALL, binary=True).fit(x, (y > np.median(y)).astype(float))
    with pytest.raises(RuntimeError, match="constant leaves only"):
        compile_lightgbm(binary, cache_dir=tmp_path)
