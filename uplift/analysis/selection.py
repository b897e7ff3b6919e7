"""Choosing among uplift learners on their out-of-fold Qini, with paired bootstrap intervals.

Each learner is scored by the mean, over the treatment arms, of the normalized Qini of its
out-of-fold predictions on the arm and the control's customers (the convention of
:mod:`uplift.analysis.metrics`). The chosen learner is the one with the highest score.

The intervals come from one bootstrap shared by every learner: customers are resampled
with replacement within each arm (control included), and on each replicate every
learner's score is recomputed with its predictions held fixed. Because all learners see
the same replicates, the interval of the *difference* between a learner and the chosen
one is paired: it says whether the data can tell the two apart, which the two separate
intervals cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.analysis.metrics import qini_score

__all__ = ["ModelComparison", "compare_learners"]


@dataclass(frozen=True)
class ModelComparison:
    """Every learner's out-of-fold Qini, the chosen learner and the paired differences."""

    table: pd.DataFrame
    """One row per learner: ``name``, ``qini`` (mean over arms), ``ci_low``, ``ci_high``,
    ``difference`` (learner minus chosen), ``difference_ci_low``, ``difference_ci_high``,
    ``distinguishable`` (the difference interval excludes zero) and ``chosen``."""
    chosen: str
    alpha: float
    n_boot: int

    def to_frame(self) -> pd.DataFrame:
        """The comparison table."""
        return self.table.copy()

    def summary(self) -> str:
        """A plain-text comparison."""
        level = round(100 * (1 - self.alpha))
        lines = [
            f"Learners by mean out-of-fold Qini ({level}% paired bootstrap intervals, "
            f"{self.n_boot} replicates); chosen: {self.chosen}"
        ]
        for row in self.table.itertuples():
            mark = "*" if row.chosen else " "
            diff = (
                ""
                if row.chosen
                else (
                    f"; vs chosen {row.difference:+.4f} "
                    f"({row.difference_ci_low:+.4f} to {row.difference_ci_high:+.4f})"
                )
            )
            lines.append(
                f"{mark} {row.name:<28} {row.qini:.4f} ({row.ci_low:.4f} to {row.ci_high:.4f})"
                f"{diff}"
            )
        return "\n".join(lines)


def compare_learners(
    predictions: Mapping[str, pd.DataFrame],
    y: pd.Series,
    arms: pd.Series,
    control: str,
    treatments: Sequence[str],
    *,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> ModelComparison:
    """Compare learners on the mean normalized out-of-fold Qini over the treatment arms.

    Parameters
    ----------
    predictions : mapping of str to pd.DataFrame
        Learner label -> its out-of-fold predicted uplift, one column per treatment arm,
        rows aligned with ``y`` and ``arms``.
    y : pd.Series
        The outcome the learners modelled.
    arms : pd.Series
        Each customer's arm.
    control : str
        The control arm.
    treatments : sequence of str
        The treatment arms to average over.
    n_boot : int
        Bootstrap replicates (customers resampled within each arm).
    alpha : float
        One minus the intervals' level.
    seed : int
        Seed of the resampling.

    Returns
    -------
    ModelComparison
    """
    if not predictions:
        raise ValueError("no learners to compare")
    outcome = y.to_numpy(dtype=float)
    arm_values = arms.astype(str).to_numpy()
    names = list(predictions)
    pairs = []
    for arm in treatments:
        rows = np.flatnonzero((arm_values == arm) | (arm_values == control))
        treated = (arm_values[rows] == arm).astype(float)
        scores = [predictions[n][arm].to_numpy(dtype=float)[rows] for n in names]
        pairs.append((rows, treated, scores))

    def mean_qini(take: Sequence[np.ndarray] | None) -> np.ndarray:
        out = np.zeros(len(names))
        for j, (rows, treated, scores) in enumerate(pairs):
            pick = np.arange(rows.size) if take is None else take[j]
            yy, tt = outcome[rows][pick], treated[pick]
            for i, s in enumerate(scores):
                out[i] += qini_score(yy, tt, s[pick])
        return out / len(pairs)

    estimate = mean_qini(None)
    rng = np.random.default_rng(seed)
    groups = {arm: np.flatnonzero(arm_values == arm) for arm in [control, *treatments]}
    replicates = np.full((n_boot, len(names)), np.nan)
    for b in range(n_boot):
        drawn = np.zeros(len(outcome), dtype=np.int64)
        for members in groups.values():
            np.add.at(drawn, members[rng.integers(0, members.size, members.size)], 1)
        take = [np.repeat(np.arange(rows.size), drawn[rows]) for rows, _, _ in pairs]
        try:
            replicates[b] = mean_qini(take)
        except ValueError:  # a replicate whose overall incremental outcome is exactly 0
            continue
    best = int(np.argmax(estimate))
    low, high = np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)
    diffs = replicates - replicates[:, [best]]
    d_low, d_high = np.nanquantile(diffs, [alpha / 2, 1 - alpha / 2], axis=0)
    table = pd.DataFrame(
        {
            "name": names,
            "qini": estimate,
            "ci_low": low,
            "ci_high": high,
            "difference": estimate - estimate[best],
            "difference_ci_low": d_low,
            "difference_ci_high": d_high,
            "distinguishable": (d_low > 0) | (d_high < 0),
            "chosen": np.arange(len(names)) == best,
        }
    )
    table = table.sort_values("qini", ascending=False, kind="stable").reset_index(drop=True)
    return ModelComparison(table, names[best], alpha, n_boot)
