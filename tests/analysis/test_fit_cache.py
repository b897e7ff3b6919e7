"""Tests of uplift.analysis.fit_cache: outcome models shared between learners.

The reference for every shared fit is the learner fitted alone, without a cache: a cache
may only save time, so the predictions must be the same to the last bit.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from uplift.analysis.fit_cache import CachedRegressor, FitCache
from uplift.analysis.learners import cross_fit_uplift, make_base

FOLDS = 3
# few trees on two threads, as the pipeline's models run: a shared fit must not depend on
# the model being single-threaded to be the same
SMALL: dict[str, object] = {"n_estimators": 30, "n_jobs": 2}


def _binary_experiment(n: int = 6000, seed: int = 5) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """A 0/1 outcome, a control and two arms; arm ``a`` helps where ``x0 > 0``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x0": rng.uniform(-1, 1, n), "x1": rng.normal(size=n)})
    arms = pd.Series(rng.choice(["control", "a", "b"], n, p=[0.2, 0.4, 0.4]))
    logit = -1.5 + X["x1"] + np.select([arms == "a", arms == "b"], [X["x0"] > 0, 0.3], 0.0)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float))
    return X, arms, y


def _cross_fit(name: str, data: tuple, cache: FitCache | None = None) -> pd.DataFrame:
    X, arms, y = data
    return cross_fit_uplift(
        name,
        X,
        arms,
        y,
        "control",
        ["a", "b"],
        folds=FOLDS,
        seed=2,
        base_params=SMALL,
        binary=True,
        fit_cache=cache,
    ).predictions


def test_learners_sharing_a_cache_predict_what_each_predicts_alone() -> None:
    data = _binary_experiment()
    cache = FitCache()
    t_shared = _cross_fit("t_learner", data, cache)
    # each fold: one model of the control's outcome and one of each arm's
    assert (cache.hits, cache.misses) == (0, 3 * FOLDS)
    x_shared = _cross_fit("x_learner", data, cache)
    # the X-learner's first stage is the T-learner's models: none fitted again
    assert (cache.hits, cache.misses) == (3 * FOLDS, 3 * FOLDS)
    dr_shared = _cross_fit("dr_learner", data, cache)
    pd.testing.assert_frame_equal(t_shared, _cross_fit("t_learner", data), check_exact=True)
    pd.testing.assert_frame_equal(x_shared, _cross_fit("x_learner", data), check_exact=True)
    pd.testing.assert_frame_equal(dr_shared, _cross_fit("dr_learner", data), check_exact=True)


def test_the_dr_learner_is_reproducible_for_a_seed() -> None:
    # its internal split was shuffled without a seed: two fits of the same data differed
    data = _binary_experiment(n=3000)
    pd.testing.assert_frame_equal(
        _cross_fit("dr_learner", data), _cross_fit("dr_learner", data), check_exact=True
    )


def _regression(n: int, columns: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, columns))
    return x, x[:, 0] + rng.normal(size=n)


def test_a_fit_is_shared_only_for_the_same_parameters_and_data() -> None:
    x, y = _regression(500, 3, seed=0)
    cache = FitCache()
    model = CachedRegressor(make_base("lightgbm", 1, SMALL), cache)
    first = clone(model).fit(x, y).estimator_
    assert clone(model).fit(x.copy(), y.copy()).estimator_ is first  # equal data, another copy
    assert (cache.hits, cache.misses) == (1, 1)
    other_seed = CachedRegressor(make_base("lightgbm", 2, SMALL), cache)
    changed = y.copy()
    changed[0] += 1e-9
    fitted = [
        other_seed.fit(x, y).estimator_,
        clone(model).fit(x, changed).estimator_,
        clone(model).fit(x[:, :2], y).estimator_,
        clone(model).fit(x.astype(np.float32), y).estimator_,
    ]
    assert all(f is not first for f in fitted)
    assert (cache.hits, cache.misses, len(cache)) == (1, 5, 5)
    # a generator's state is not in the parameters: never shared, never remembered
    drawn = CachedRegressor(
        make_base("lightgbm", 0, {**SMALL, "random_state": np.random.RandomState(0)}), cache
    )
    assert drawn.fit(x, y).estimator_ is not clone(drawn).fit(x, y).estimator_
    assert (cache.hits, cache.misses, len(cache)) == (1, 5, 5)


def test_copies_share_the_cache_and_a_pickled_model_leaves_it_behind() -> None:
    x, y = _regression(400, 2, seed=1)
    cache = FitCache()
    model = CachedRegressor(make_base("lightgbm", 0, SMALL), cache)
    # causalml deep-copies its base learners; scikit-learn's clone deep-copies parameters
    for copied in (copy.deepcopy(model), clone(model), copy.copy(model)):
        assert copied.cache is cache
    model.fit(x, y)
    again = pickle.loads(pickle.dumps(model))
    assert len(again.cache) == 0 and len(cache) == 1
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    with pytest.raises(NotFittedError):
        CachedRegressor(make_base("lightgbm", 0, SMALL), cache).predict(x)
