"""Uplift learners: causalml meta-learners on LightGBM, with cross-fitted predictions.

Every customer's predicted uplift comes from a model that never saw that customer
(K-fold cross-fitting, folds stratified by arm), so metrics computed on those
predictions are honest out-of-sample measures of how well the model ranks customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from uplift.data.sources import check_features

__all__ = ["LEARNERS", "CrossFitResult", "cross_fit_uplift", "encode_features", "make_learner"]

LEARNERS = ("s_learner", "t_learner", "x_learner")

_LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "verbose": -1,
    "n_jobs": 2,
}


def encode_features(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """Numeric model inputs: numbers as they are, text and categories as sorted codes.

    Missing values stay missing (LightGBM routes them itself).
    """
    check_features(frame, features)
    out = {}
    for name in features:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            out[name] = column.astype(float)
        else:
            codes = pd.Categorical(column.astype("string"))
            out[name] = (
                pd.Series(codes.codes, index=frame.index).where(codes.codes >= 0).astype(float)
            )
    return pd.DataFrame(out, index=frame.index)


def make_learner(name: str, control: str, seed: int, base_params: Mapping[str, Any]) -> Any:
    """A causalml meta-learner regressor with LightGBM base models."""
    from causalml.inference.meta import BaseSRegressor, BaseTRegressor, BaseXRegressor
    from lightgbm import LGBMRegressor

    params = {**_LGBM_DEFAULTS, "random_state": seed, **base_params}
    base = LGBMRegressor(**params)
    if name == "s_learner":
        return BaseSRegressor(learner=base, control_name=control)
    if name == "t_learner":
        return BaseTRegressor(learner=base, control_name=control)
    if name == "x_learner":
        return BaseXRegressor(learner=base, control_name=control)
    raise ValueError(f"unknown learner {name!r}; known learners are {list(LEARNERS)}")


@dataclass(frozen=True)
class CrossFitResult:
    """Out-of-fold uplift predictions of one learner."""

    name: str
    predictions: pd.DataFrame
    """One column per treatment arm: predicted effect of that arm against control."""
    folds: int

    def to_frame(self) -> pd.DataFrame:
        """The out-of-fold predictions."""
        return self.predictions.copy()


def cross_fit_uplift(
    name: str,
    X: pd.DataFrame,
    arms: pd.Series,
    y: pd.Series,
    control: str,
    treatments: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    propensity: Mapping[str, float] | None = None,
    base_params: Mapping[str, Any] | None = None,
) -> CrossFitResult:
    """Out-of-fold predicted uplift of every treatment arm for every customer.

    Parameters
    ----------
    name : str
        ``s_learner``, ``t_learner`` or ``x_learner``.
    X : pd.DataFrame
        Numeric features (see :func:`encode_features`).
    arms : pd.Series
        Each customer's arm, control included.
    y : pd.Series
        The outcome to model.
    control : str
        The control arm.
    treatments : sequence of str
        Treatment arms; the result has one column each.
    folds : int
        Number of cross-fitting folds, stratified by arm.
    seed : int
        Seed of the fold split and of the base models.
    propensity : mapping, optional
        Known probability of each treatment arm *given arm or control* (from the
        assignment weights); the X-learner uses it instead of fitting a propensity model.
    base_params : mapping, optional
        LightGBM parameters overriding the defaults.
    """
    arm_values = arms.astype(str).to_numpy()
    x = X.to_numpy(dtype=float)
    target = y.to_numpy(dtype=float)
    out = np.full((len(X), len(treatments)), np.nan)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, arm_values):
        learner = make_learner(name, control, seed, base_params or {})
        fit_kwargs: dict[str, Any] = {}
        predict_kwargs: dict[str, Any] = {}
        if name == "x_learner":
            p = propensity or _observed_propensity(arm_values[train], control, treatments)
            fit_kwargs["p"] = {arm: np.full(len(train), p[arm]) for arm in treatments}
            predict_kwargs["p"] = {arm: np.full(len(test), p[arm]) for arm in treatments}
        learner.fit(X=x[train], treatment=arm_values[train], y=target[train], **fit_kwargs)
        predicted = np.asarray(learner.predict(X=x[test], **predict_kwargs)).reshape(len(test), -1)
        groups = [str(g) for g in learner.t_groups]
        for j, arm in enumerate(treatments):
            out[test, j] = predicted[:, groups.index(arm)]
    return CrossFitResult(name, pd.DataFrame(out, index=X.index, columns=list(treatments)), folds)


def _observed_propensity(
    arms: np.ndarray, control: str, treatments: Sequence[str]
) -> dict[str, float]:
    n_control = int((arms == control).sum())
    return {
        arm: float((arms == arm).sum() / ((arms == arm).sum() + n_control)) for arm in treatments
    }
