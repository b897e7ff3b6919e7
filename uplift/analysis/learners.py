"""Uplift learners: causalml meta-learners and uplift forests, with cross-fitted predictions.

Every customer's predicted uplift comes from a model that never saw that customer
(K-fold cross-fitting, folds stratified by arm), so metrics computed on those
predictions are honest out-of-sample measures of how well the model ranks customers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from uplift.analysis.fit_cache import CachedRegressor, FitCache

__all__ = [
    "BASES",
    "LEARNERS",
    "PROPENSITY_LEARNERS",
    "CrossFitResult",
    "SLearner",
    "UpliftModel",
    "cross_fit_outcome",
    "cross_fit_uplift",
    "default_threads",
    "fit_uplift",
    "make_base",
    "make_learner",
    "omp_threads",
]

#: Learners the spec may name. ``uplift_forest`` is causalml's uplift random forest, for a
#: binary outcome only; the others are causalml meta-learners on a base regressor.
LEARNERS = ("s_learner", "t_learner", "x_learner", "r_learner", "dr_learner", "uplift_forest")
#: Base regressors of the meta-learners.
BASES = ("lightgbm", "xgboost", "random_forest", "linear")
#: Learners that weigh by the propensity: given the known one when we assigned the arms.
PROPENSITY_LEARNERS = frozenset({"x_learner", "r_learner", "dr_learner"})

# Sixty trees at a 0.1 learning rate rank customers by their true effect as well as 150
# at 0.05 on every simulated example (tests/benchmarks/bench_learners.py), and predict
# 2.5 times faster, which is what scoring a large base pays for.
_LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 60,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "verbose": -1,
}
# A 0/1 outcome says less about each customer than a continuous one: smaller trees
# learning more slowly (7 leaves, 150 trees at 0.05) bring the trial-lessons example's
# policy closer to the oracle's profit (tests/benchmarks/bench_policy_oracle.py: 0.846 to
# 0.869 of it on seeds 7-14, 0.860 to 0.869 on seeds 21-28; README "Benchmarks"). A ridge
# fit of the features in each leaf (linear trees) lets the S-learner's effect vary within a
# leaf: the S-learner alone earns 0.905 of the oracle over 24 seeds where constant leaves
# earn 0.894, and with the learner choice's margin (uplift.value.policy.compare_policies)
# the pipeline reaches 0.906 over 48. LightGBM's own predict scores them: TL2cgen cannot
# compile a linear leaf (uplift.compiled_trees).
_LGBM_BINARY: dict[str, Any] = {
    "objective": "cross_entropy",
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "linear_tree": True,
    "linear_lambda": 1.0,
}
_XGB_DEFAULTS: dict[str, Any] = {
    "n_estimators": 60,
    "learning_rate": 0.1,
    "max_depth": 4,
    "min_child_weight": 50,
    "subsample": 0.8,
    "verbosity": 0,
}
_FOREST_DEFAULTS: dict[str, Any] = {"n_estimators": 100, "min_samples_leaf": 100}
_UPLIFT_FOREST_DEFAULTS: dict[str, Any] = {
    "n_estimators": 50,
    "max_depth": 6,
    "min_samples_leaf": 200,
    "max_features": 10,
}


def default_threads() -> int:
    """Threads a model uses unless its parameters set ``n_jobs``.

    ``OMP_NUM_THREADS`` where it is set, else 2 (enough for the small default models). The
    variable is honoured because a fixed count defied it: LightGBM's and XGBoost's OpenMP
    threads spin while they wait, and two runs of two threads each on two cores slowed
    each other about fifteenfold.
    """
    return omp_threads() or 2


def omp_threads() -> int | None:
    """The thread count ``OMP_NUM_THREADS`` sets (its first level), or ``None`` if unset."""
    raw = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return max(1, int(raw)) if raw.isdigit() else None


def make_base(
    base: str, seed: int, params: Mapping[str, Any] | None = None, *, binary: bool = False
) -> Any:
    """A base regressor: LightGBM, XGBoost, a scikit-learn random forest or ridge regression.

    ``params`` override the defaults (small, regularised models on
    :func:`default_threads` threads). With ``binary``, the target is 0/1 and the boosted
    trees minimise its log loss and predict a probability (LightGBM's ``cross_entropy``,
    XGBoost's ``reg:logistic`` objective), and LightGBM grows smaller trees more slowly
    (7 leaves, 150 trees at a 0.05 learning rate) with a ridge fit of the features in each
    leaf (``linear_tree``, ``linear_lambda`` 1); the forest's leaf shares already are
    probabilities, and ridge stays a linear probability model. ``params`` win over
    every default.
    """
    params = dict(params or {})
    threads = {"n_jobs": default_threads()}
    if base == "lightgbm":
        from lightgbm import LGBMRegressor

        loss = _LGBM_BINARY if binary else {}
        return LGBMRegressor(
            **{**_LGBM_DEFAULTS, **threads, "random_state": seed, **loss, **params}
        )
    if base == "xgboost":
        from xgboost import XGBRegressor

        loss = {"objective": "reg:logistic"} if binary else {}
        return XGBRegressor(**{**_XGB_DEFAULTS, **threads, "random_state": seed, **loss, **params})
    if base == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            **{**_FOREST_DEFAULTS, **threads, "random_state": seed, **params}
        )
    if base == "linear":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # missing feature values are allowed (the tree models route them): impute them here
        return make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), Ridge(**{"alpha": 1.0, **params})
        )
    raise ValueError(f"unknown base model {base!r}; known base models are {list(BASES)}")


def make_learner(
    name: str,
    control: str,
    seed: int,
    base_params: Mapping[str, Any] | None = None,
    base: str = "lightgbm",
    *,
    binary: bool = False,
    fit_cache: FitCache | None = None,
) -> Any:
    """An unfitted causalml learner: a meta-learner on ``base``, or the uplift forest.

    Parameters
    ----------
    name : str
        One of :data:`LEARNERS`.
    control : str
        The control arm's label.
    seed : int
        Seed of the base models (and of the R-learner's internal folds).
    base_params : mapping, optional
        Parameters of the base model, or of the uplift forest.
    base : str
        One of :data:`BASES`; ignored by the uplift forest.
    binary : bool
        The outcome is 0/1: the models of the outcome (all of the S- and T-learners',
        the first stage of the X-, R- and DR-learners) fit its log loss (see
        :func:`make_base`); the models of the effect, which can be negative, stay
        regressions.
    fit_cache : FitCache, optional
        Where the outcome models of the T-, X- and DR-learners are fitted
        (:class:`~uplift.analysis.fit_cache.CachedRegressor`): learners given the same
        cache fit each outcome model they share once, and predict the same.
    """
    from causalml.inference.meta import (
        BaseDRRegressor,
        BaseRRegressor,
        BaseTRegressor,
        BaseXRegressor,
    )

    if name == "uplift_forest":
        from causalml.inference.tree import UpliftRandomForestClassifier

        params = {
            **_UPLIFT_FOREST_DEFAULTS,
            "n_jobs": default_threads(),
            "random_state": seed,
            **(base_params or {}),
        }
        return UpliftRandomForestClassifier(control_name=control, **params)
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; known learners are {list(LEARNERS)}")
    outcome = make_base(base, seed, base_params, binary=binary)
    if name == "s_learner":
        return SLearner(learner=outcome, control_name=control)
    if fit_cache is not None and name != "r_learner":
        outcome = CachedRegressor(outcome, fit_cache)
    if name == "t_learner":
        return BaseTRegressor(learner=outcome, control_name=control)
    effect = make_base(base, seed, base_params)
    if name == "r_learner":
        r = BaseRRegressor(
            outcome_learner=outcome, effect_learner=effect, control_name=control, random_state=seed
        )
        # its internal cross_val_predict spawns worker processes by default; on a small
        # machine that costs far more than it saves (same predictions either way)
        r.cv_n_jobs = 1
        return r
    if name == "x_learner":
        return BaseXRegressor(
            control_outcome_learner=outcome,
            treatment_outcome_learner=clone(outcome),
            control_effect_learner=effect,
            treatment_effect_learner=clone(effect),
            control_name=control,
        )
    return BaseDRRegressor(
        control_outcome_learner=outcome,
        treatment_outcome_learner=clone(outcome),
        treatment_effect_learner=effect,
        control_name=control,
    )


class SLearner:
    """S-learner: one outcome model of every arm, the arm among its features.

    The model sees each arm as an indicator column (all zero for the control) before the
    features, and an arm's effect on a customer is the prediction with that arm's
    indicator set less the prediction with none. With one treatment arm this is
    causalml's ``BaseSRegressor``; with several, causalml fits one model per arm on that
    arm's and the control's customers, while this one model learns the outcome's shape,
    shared by all arms, from every customer (as EconML's ``SLearner`` does). With several
    arms a first column marks every treated customer, whatever the arm: arms of one
    campaign usually share the shape of their effect (two lessons or four, a smaller or a
    larger discount), and with that column one split sets the control apart from all of
    them, so a tree learns the shared part from every treated customer instead of
    splitting on each arm's indicator in turn. The one model spends its trees on every
    arm's effect, so it needs trees enough for them all. It has causalml's
    ``fit(X, treatment, y)``, ``predict(X)`` and ``t_groups``.

    Parameters
    ----------
    learner : regressor
        An unfitted scikit-learn regressor; a clone of it is fitted.
    control_name : str
        The control arm's label.
    """

    def __init__(self, learner: Any, control_name: str) -> None:
        self.learner = learner
        self.control_name = control_name

    def fit(self, X: np.ndarray, treatment: np.ndarray, y: np.ndarray) -> SLearner:
        """Fit the outcome model on every customer; ``treatment`` holds each one's arm."""
        treatment = np.asarray(treatment).astype(str)
        groups = np.unique(treatment[treatment != str(self.control_name)])
        if len(groups) == 0:
            raise ValueError("the S-learner needs customers of at least one treatment arm")
        self.t_groups = groups
        indicators = (treatment[:, None] == groups[None, :]).astype(float)
        self.pooled_ = len(groups) > 1
        if self.pooled_:
            indicators = np.hstack([indicators.sum(axis=1, keepdims=True), indicators])
        self.model = clone(self.learner).fit(np.hstack([indicators, X]), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Each arm's predicted effect against the control, one column per ``t_groups``."""
        k = len(self.t_groups)
        # models fitted before the any-arm column (logged runs) have no ``pooled_``
        lead = int(getattr(self, "pooled_", False))
        design = np.hstack([np.zeros((len(X), lead + k)), np.asarray(X, dtype=float)])
        control = self.model.predict(design)
        out = np.empty((len(design), k))
        design[:, :lead] = 1.0  # treated, whatever the arm
        for j in range(k):
            design[:, lead + j] = 1.0  # arm j's indicator, the others zero
            out[:, j] = self.model.predict(design) - control
            design[:, lead + j] = 0.0
        return out


@dataclass(frozen=True)
class UpliftModel:
    """A fitted learner that predicts every treatment arm's effect against the control."""

    name: str
    learner: Any
    control: str
    treatments: tuple[str, ...]
    propensity: Mapping[str, float] | None
    """The constant propensity the learner was fitted with, reused to predict."""

    def predict(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Predicted uplift, one column per treatment arm (rows as in ``X``)."""
        x = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(x))
        kwargs: dict[str, Any] = {}
        if self.propensity is not None and self.name == "x_learner":
            kwargs["p"] = {arm: np.full(len(x), self.propensity[arm]) for arm in self.treatments}
        predicted = np.asarray(self.learner.predict(X=x, **kwargs)).reshape(len(x), -1)
        if self.name == "uplift_forest":
            groups = [str(g) for g in self.learner.classes_[1:]]
        else:
            groups = [str(g) for g in self.learner.t_groups]
        columns = {arm: predicted[:, groups.index(arm)] for arm in self.treatments}
        return pd.DataFrame(columns, index=index)


def fit_uplift(
    name: str,
    X: pd.DataFrame | np.ndarray,
    arms: np.ndarray,
    y: np.ndarray,
    control: str,
    treatments: Sequence[str],
    *,
    seed: int = 0,
    propensity: Mapping[str, float] | None = None,
    base: str = "lightgbm",
    base_params: Mapping[str, Any] | None = None,
    binary: bool = False,
    fit_cache: FitCache | None = None,
) -> UpliftModel:
    """Fit one learner on every row given.

    The propensity learners (X, R, DR) get ``propensity`` when it is known (we assigned
    the arms); otherwise the arms' shares among these rows, which is the propensity of a
    randomized experiment. The uplift forest needs a 0/1 outcome, and so does ``binary``
    (the outcome models fit its log loss, see :func:`make_learner`). ``fit_cache`` shares
    outcome models between learners (:func:`make_learner`).
    """
    x = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    arm_values = np.asarray(arms).astype(str)
    target = np.asarray(y, dtype=float)
    if name == "uplift_forest":
        _check_binary(target, "the uplift forest")
    elif binary:
        _check_binary(target, "a binary outcome model")
    learner = make_learner(
        name, control, seed, base_params, base, binary=binary, fit_cache=fit_cache
    )
    if name == "uplift_forest":
        learner.fit(X=x, treatment=arm_values, y=target.astype(int))
        return UpliftModel(name, learner, control, tuple(treatments), None)
    kwargs: dict[str, Any] = {}
    p = None
    if name in PROPENSITY_LEARNERS:
        p = dict(propensity or _observed_propensity(arm_values, control, treatments))
        kwargs["p"] = {arm: np.full(len(x), p[arm]) for arm in treatments}
    if name == "r_learner":
        kwargs["verbose"] = False
    if name == "dr_learner":
        # its internal 3-fold split is shuffled; without a seed every fit differs
        kwargs["seed"] = seed
    learner.fit(X=x, treatment=arm_values, y=target, **kwargs)
    return UpliftModel(name, learner, control, tuple(treatments), p)


@dataclass(frozen=True)
class CrossFitResult:
    """Out-of-fold uplift predictions of one learner."""

    name: str
    predictions: pd.DataFrame
    """One column per treatment arm: predicted effect of that arm against control."""
    folds: int
    model: UpliftModel | None = None
    """The learner refitted on every customer (``refit=True``): the model to score with."""
    fold: np.ndarray | None = None
    """Each customer's fold (0 to ``folds - 1``), in the order of ``predictions``."""
    fold_models: tuple[UpliftModel, ...] = ()
    """The model of each fold, fitted on the other folds (``keep_fold_models=True``)."""

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
    base: str = "lightgbm",
    label: str | None = None,
    refit: bool = False,
    keep_fold_models: bool = False,
    binary: bool = False,
    fit_cache: FitCache | None = None,
) -> CrossFitResult:
    """Out-of-fold predicted uplift of every treatment arm for every customer.

    Parameters
    ----------
    name : str
        One of :data:`LEARNERS`.
    X : pd.DataFrame
        Numeric features (see :class:`uplift.analysis.features.FeatureEncoder`).
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
        assignment weights); the X, R and DR learners use it instead of an estimate.
    base_params : mapping, optional
        Base model (or uplift forest) parameters overriding the defaults.
    base : str
        The meta-learners' base model, one of :data:`BASES`.
    label : str, optional
        The result's name (default: ``name``), to tell apart two configurations.
    refit : bool
        Also fit the learner on every customer (``CrossFitResult.model``).
    keep_fold_models : bool
        Keep each fold's model (``CrossFitResult.fold_models``), for measures that
        re-predict held-out customers, such as permutation importance.
    binary : bool
        ``y`` is 0/1: its models fit the log loss (see :func:`make_learner`).
    fit_cache : FitCache, optional
        Shares the folds' outcome models with other learners cross-fitted on the same
        folds with the same cache (:func:`make_learner`); the predictions are the same
        as without. The refit on every customer does not use it.
    """
    arm_values = arms.astype(str).to_numpy()
    x = X.to_numpy(dtype=float)
    target = y.to_numpy(dtype=float)
    out = np.full((len(X), len(treatments)), np.nan)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    options: dict[str, Any] = {
        "seed": seed,
        "propensity": propensity,
        "base": base,
        "base_params": base_params,
        "binary": binary,
    }
    fold = np.full(len(X), -1, dtype=np.int64)
    kept = []
    for k, (train, test) in enumerate(splitter.split(x, arm_values)):
        model = fit_uplift(
            name,
            x[train],
            arm_values[train],
            target[train],
            control,
            treatments,
            **options,
            fit_cache=fit_cache,
        )
        out[test] = model.predict(x[test]).to_numpy()
        fold[test] = k
        if keep_fold_models:
            kept.append(model)
    final = (
        fit_uplift(name, x, arm_values, target, control, treatments, **options) if refit else None
    )
    predictions = pd.DataFrame(out, index=X.index, columns=list(treatments))
    return CrossFitResult(label or name, predictions, folds, final, fold, tuple(kept))


def cross_fit_outcome(
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    fold: np.ndarray,
    *,
    base: str = "lightgbm",
    seed: int = 0,
    base_params: Mapping[str, Any] | None = None,
    binary: bool = False,
) -> np.ndarray:
    """Out-of-fold prediction of an outcome, learned on some rows, for every customer.

    For each fold ``k`` a base regressor is fitted on the ``rows`` outside fold ``k`` and
    predicts every customer of fold ``k``: the outcome an arm's customers would show,
    predicted for every customer by a model that never saw that customer.

    Parameters
    ----------
    X : pd.DataFrame or np.ndarray
        Features of every customer.
    y : np.ndarray
        The outcome of every customer (only ``rows`` are read).
    rows : np.ndarray
        Boolean mask of the customers to learn from (an arm's customers).
    fold : np.ndarray
        Each customer's fold, as :attr:`CrossFitResult.fold` gives it.
    base, seed, base_params, binary
        The base regressor, as :func:`make_base` takes them.
    """
    x = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    target = np.asarray(y, dtype=float)
    if binary:
        _check_binary(target[rows], "a binary outcome model")
    out = np.full(len(x), np.nan)
    for k in np.unique(fold):
        test = fold == k
        train = rows & ~test
        if not train.any():
            raise ValueError(f"fold {k}: no customer to learn from outside the fold")
        model = make_base(base, seed, base_params, binary=binary).fit(x[train], target[train])
        out[test] = model.predict(x[test])
    return out


def _check_binary(target: np.ndarray, what: str) -> None:
    if not np.isin(target, (0.0, 1.0)).all():
        raise ValueError(f"{what} needs a binary (0/1) outcome")


def _observed_propensity(
    arms: np.ndarray, control: str, treatments: Sequence[str]
) -> dict[str, float]:
    n_control = int((arms == control).sum())
    return {
        arm: float((arms == arm).sum() / ((arms == arm).sum() + n_control)) for arm in treatments
    }
