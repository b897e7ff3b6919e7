"""Permutation importance of the features for the predicted uplift, on held-out customers.

A feature matters to an uplift model when scrambling it spoils the model's ranking of
customers by their effect. :func:`permutation_importance` measures that on the cross-fitted
predictions of :func:`~uplift.analysis.learners.cross_fit_uplift`: within each fold it
shuffles one feature among the fold's held-out customers, re-predicts them with the model
that never saw them, and compares the out-of-fold normalized Qini of every treatment arm
before and after. It only calls ``UpliftModel.predict``, so it works the same for every
learner of the registry, the meta-learners and the uplift forest alike (causalml's own
explainer fits a surrogate model of the predicted effect instead, and only for the
meta-learners).

Because a Qini drop is noisy when the effect is small, the result also reports how far the
permutation moves the predicted uplift itself (mean absolute change, and that change in
units of the predictions' standard deviation): a feature the model ignores moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from uplift.analysis.learners import CrossFitResult, UpliftModel
from uplift.analysis.metrics import qini_score

__all__ = ["UpliftImportance", "permutation_importance"]

RankBy = Literal["qini_drop", "prediction_change", "relative_prediction_change"]
_RANK_BY = ("qini_drop", "prediction_change", "relative_prediction_change")
_COLUMNS = [
    "feature",
    "arm",
    "rank",
    "qini_drop",
    "qini_drop_std",
    "prediction_change",
    "relative_prediction_change",
]


@dataclass(frozen=True)
class UpliftImportance:
    """Permutation importance of every feature for every treatment arm's predicted uplift.

    ``to_frame()`` has one row per arm and feature, features ranked by ``qini_drop``
    within each arm (arms in the order of the predictions' columns):

    ``qini_drop``
        Baseline out-of-fold normalized Qini minus the Qini with the feature permuted,
        averaged over the repeats. Positive: the model ranks customers worse without it.
    ``qini_drop_std``
        Standard deviation of the drop over the repeats (``ddof=1``; NaN for one repeat).
        It is the permutation noise only, not the sampling noise of the Qini itself.
    ``prediction_change``
        Mean absolute change of the arm's predicted uplift caused by the permutation, over
        every customer and repeat, in the outcome's units.
    ``relative_prediction_change``
        ``prediction_change`` divided by the standard deviation of the arm's out-of-fold
        predictions (NaN where they are constant): scale-free, comparable across arms.
    """

    learner: str
    control: str
    table: pd.DataFrame
    baseline_qini: dict[str, float]
    """Out-of-fold normalized Qini of each treatment arm against the control, unpermuted."""
    n_repeats: int
    folds: int
    seed: int

    @property
    def arms(self) -> tuple[str, ...]:
        """The treatment arms, in the order of the predictions' columns."""
        return tuple(self.baseline_qini)

    @property
    def features(self) -> tuple[str, ...]:
        """The features, in the order of the columns of ``X``."""
        return tuple(dict.fromkeys(self.table["feature"]))

    def to_frame(self) -> pd.DataFrame:
        """The importance table (a copy): one row per arm and feature."""
        return self.table.copy()

    def ranking(self, arm: str, by: RankBy = "qini_drop") -> tuple[str, ...]:
        """The features from most to least important for one arm.

        Parameters
        ----------
        arm : str
            A treatment arm.
        by : {"qini_drop", "prediction_change", "relative_prediction_change"}
            The column to rank by, highest first; ties keep the features' order in ``X``.

        Raises
        ------
        ValueError
            For an unknown arm or column.
        """
        if arm not in self.baseline_qini:
            raise ValueError(f"unknown arm {arm!r}; the arms are {list(self.arms)}")
        if by not in _RANK_BY:
            raise ValueError(f"cannot rank by {by!r}; choose one of {list(_RANK_BY)}")
        rows = self.table[self.table["arm"] == arm].set_index("feature").loc[list(self.features)]
        order = rows[by].sort_values(ascending=False, kind="mergesort", na_position="last")
        return tuple(str(f) for f in order.index)

    def summary(self) -> str:
        """A plain-text table of the importances, one block per arm."""
        lines = [
            f"Permutation importance for the uplift predicted by {self.learner!r} against "
            f"{self.control!r} (held-out customers of {self.folds} folds, {self.n_repeats} "
            f"repeats, seed {self.seed}). qini_drop: baseline minus permuted normalized Qini; "
            "prediction_change: mean |change| of the predicted uplift (relative: in units of "
            "its standard deviation). Small Qini drops are noisy; a feature the model ignores "
            "has no prediction change."
        ]
        columns = _COLUMNS[2:]
        for arm in self.arms:
            rows = self.table[self.table["arm"] == arm].set_index("feature")[columns]
            lines.append(f"\n{arm}: baseline Qini {self.baseline_qini[arm]:.4g}")
            lines.append(rows.to_string(float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)


def permutation_importance(
    result: CrossFitResult,
    X: pd.DataFrame,
    arms: pd.Series,
    y: pd.Series,
    control: str,
    *,
    n_repeats: int = 3,
    seed: int = 0,
) -> UpliftImportance:
    """Permutation importance of each feature for the out-of-fold predicted uplift.

    For each feature and repeat, the feature's column is shuffled among the held-out
    customers of each fold, those customers are re-predicted by that fold's model (fitted
    on the other folds), and each treatment arm's normalized Qini against the control is
    recomputed on the pooled out-of-fold predictions, as the baseline is.

    Parameters
    ----------
    result : CrossFitResult
        Cross-fitted predictions from ``cross_fit_uplift(..., keep_fold_models=True)``.
    X : pd.DataFrame
        The feature frame that was cross-fitted: same customers, same index, same columns
        in the same order.
    arms : pd.Series
        Each customer's arm, control included, aligned with ``X``.
    y : pd.Series
        The outcome the Qini is computed on, aligned with ``X``.
    control : str
        The control arm.
    n_repeats : int, default 3
        Permutations per feature.
    seed : int, default 0
        Seed of the permutations; the same seed gives the same result.

    Returns
    -------
    UpliftImportance
        Qini drops and prediction changes per feature and treatment arm.

    Raises
    ------
    ValueError
        If ``result`` kept no fold models, if the index of ``X``, ``arms`` or ``y`` does
        not match the predictions', if an arm has no customers, if ``n_repeats < 1``, or if
        the fold models do not reproduce the predictions on ``X`` (a different frame or
        column order than the one cross-fitted).

    Notes
    -----
    Cost: ``n_features * n_repeats`` predictions of every customer (the repeats of one
    fold are predicted in one call), plus one to check the baseline, and
    ``n_features * n_repeats * n_arms`` Qini scores (one sort each).

    The usual caveats of permutation importance hold: two correlated features share
    their importance (permuting one leaves the other in place), and a permuted row can
    be unlike any real customer. ``qini_drop_std`` reflects the permutations only; a drop
    smaller than the Qini's own sampling uncertainty (its bootstrap interval,
    :func:`~uplift.analysis.metrics.qini_interval`) is no evidence that the feature matters.
    """
    models, members = _fold_models(result)
    _check_alignment(result, X, arms, y)
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be at least 1, got {n_repeats}")
    treatments = [str(c) for c in result.predictions.columns]
    features = [str(c) for c in X.columns]
    if len(set(features)) != len(features):
        raise ValueError(f"X has duplicated column names: {features}")

    x = X.to_numpy(dtype=float)
    base = result.predictions.to_numpy(dtype=float)
    scorers = [_ArmScorer(arms, y, control, arm) for arm in treatments]
    blocks = [x[rows] for rows in members]
    _check_reproduced(models, blocks, members, base, treatments)

    baseline = np.array([s.qini(base[:, a]) for a, s in enumerate(scorers)])
    spread = base.std(axis=0)
    rng = np.random.default_rng(seed)
    n_features, n_arms = len(features), len(treatments)
    drops = np.empty((n_features, n_arms, n_repeats))
    changes = np.empty((n_features, n_arms, n_repeats))
    permuted = np.empty((n_repeats, len(x), n_arms))
    for j in range(n_features):
        for model, rows, block in zip(models, members, blocks, strict=True):
            m = len(rows)
            # the fold's rows once per repeat, stacked: one predict call for all repeats
            stacked = np.tile(block, (n_repeats, 1))
            for r in range(n_repeats):
                stacked[r * m : (r + 1) * m, j] = block[rng.permutation(m), j]
            predicted = model.predict(stacked)[treatments].to_numpy(dtype=float)
            permuted[:, rows, :] = predicted.reshape(n_repeats, m, n_arms)
        for r in range(n_repeats):
            changes[j, :, r] = np.abs(permuted[r] - base).mean(axis=0)
            for a, scorer in enumerate(scorers):
                drops[j, a, r] = baseline[a] - scorer.qini(permuted[r, :, a])

    table = _table(features, treatments, drops, changes, spread)
    return UpliftImportance(
        learner=result.name,
        control=control,
        table=table,
        baseline_qini={arm: float(q) for arm, q in zip(treatments, baseline, strict=True)},
        n_repeats=n_repeats,
        folds=len(models),
        seed=seed,
    )


class _ArmScorer:
    """The normalized Qini of one treatment arm against the control, on their rows only."""

    def __init__(self, arms: pd.Series, y: pd.Series, control: str, arm: str) -> None:
        labels = arms.astype(str).to_numpy()
        self.rows = np.flatnonzero((labels == arm) | (labels == control))
        self.treated = (labels[self.rows] == arm).astype(np.int64)
        self.y = y.to_numpy(dtype=float)[self.rows]
        for name, group in ((arm, 1), (control, 0)):
            if not (self.treated == group).any():
                raise ValueError(f"no customer is in arm {name!r}; the arms are {_levels(arms)}")

    def qini(self, score: np.ndarray) -> float:
        return qini_score(self.y, self.treated, score[self.rows], normalize=True)


def _levels(arms: pd.Series) -> list[str]:
    return sorted(arms.astype(str).unique().tolist())


def _fold_models(result: CrossFitResult) -> tuple[tuple[UpliftModel, ...], list[np.ndarray]]:
    """The fold models and the positions of each fold's held-out rows."""
    if not result.fold_models or result.fold is None:
        raise ValueError(
            f"the cross-fit result {result.name!r} kept no fold models; permutation "
            "importance re-predicts held-out customers with them: call "
            "cross_fit_uplift(..., keep_fold_models=True)"
        )
    models = result.fold_models
    fold = np.asarray(result.fold)
    if len(fold) != len(result.predictions) or not np.isin(fold, np.arange(len(models))).all():
        raise ValueError(
            f"the fold labels of {result.name!r} do not cover its predictions with folds "
            f"0 to {len(models) - 1}"
        )
    return models, [np.flatnonzero(fold == k) for k in range(len(models))]


def _check_alignment(
    result: CrossFitResult, X: pd.DataFrame, arms: pd.Series, y: pd.Series
) -> None:
    index = result.predictions.index
    if not X.index.equals(index):
        raise ValueError(
            f"X's index does not match the index of the predictions of {result.name!r} "
            f"({len(X)} rows against {len(index)}): pass the frame that was cross-fitted, "
            "same customers in the same order"
        )
    for name, series in (("arms", arms), ("y", y)):
        if not series.index.equals(index):
            raise ValueError(
                f"the index of {name} does not match X's ({len(series)} rows against "
                f"{len(index)}): align it to X"
            )


def _check_reproduced(
    models: tuple[UpliftModel, ...],
    blocks: list[np.ndarray],
    members: list[np.ndarray],
    base: np.ndarray,
    treatments: list[str],
) -> None:
    """Check that the fold models give back the stored predictions on ``X``, unpermuted."""
    scale = float(np.abs(base).max()) if base.size else 0.0
    for k, (model, rows, block) in enumerate(zip(models, members, blocks, strict=True)):
        again = model.predict(block)[treatments].to_numpy(dtype=float)
        if not np.allclose(again, base[rows], rtol=1e-6, atol=1e-9 * max(scale, 1.0)):
            raise ValueError(
                f"the model of fold {k} does not reproduce the stored predictions on X: "
                "pass the feature frame that was cross-fitted (same columns, same order)"
            )


def _table(
    features: list[str],
    treatments: list[str],
    drops: np.ndarray,
    changes: np.ndarray,
    spread: np.ndarray,
) -> pd.DataFrame:
    """One row per arm and feature, features ranked by their Qini drop within the arm."""
    n_repeats = drops.shape[2]
    drop_std = drops.std(axis=2, ddof=1) if n_repeats > 1 else np.full(drops.shape[:2], np.nan)
    change = changes.mean(axis=2)
    relative = change / np.where(spread > 0, spread, np.nan)  # NaN where predictions are constant
    frames = []
    for a, arm in enumerate(treatments):
        frame = pd.DataFrame(
            {
                "feature": features,
                "arm": arm,
                "qini_drop": drops[:, a, :].mean(axis=1),
                "qini_drop_std": drop_std[:, a],
                "prediction_change": change[:, a],
                "relative_prediction_change": relative[:, a],
            }
        )
        frame = frame.sort_values("qini_drop", ascending=False, kind="mergesort")
        frame.insert(2, "rank", np.arange(1, len(frame) + 1))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[_COLUMNS]
