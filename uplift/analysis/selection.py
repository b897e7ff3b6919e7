"""Choosing among uplift learners on their out-of-fold Qini, with paired bootstrap intervals.

Each learner is scored by the mean, over the treatment arms, of the normalized Qini of its
out-of-fold predictions on the arm and the control's customers (the convention of
:mod:`uplift.analysis.metrics`). The chosen learner is the one with the highest score.

The intervals come from one bootstrap shared by every learner: for each arm, customers
are resampled with replacement within the arm and within the control
(:func:`~uplift.analysis.metrics.metric_intervals`, one seed), and on each replicate every
learner's Qini is recomputed with its predictions held fixed. Because all learners see
the same resampled customers, the interval of the *difference* between a learner and the
chosen one is paired: it says whether the data can tell the two apart, which the two
separate intervals cannot. Each arm's pair is resampled on its own, so the control
customers shared by two arms are drawn independently for each; the mean over arms is a
little less correlated across arms in the replicates than in the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.analysis.metrics import UpliftMetrics, metric_intervals

__all__ = ["ModelComparison", "compare_learners", "compare_metrics"]


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
        Bootstrap replicates.
    alpha : float
        One minus the intervals' level.
    seed : int
        Seed of the resampling.

    Returns
    -------
    ModelComparison
    """
    outcome = y.to_numpy(dtype=float)
    arm_values = arms.astype(str).to_numpy()
    metrics: dict[str, dict[str, UpliftMetrics]] = {name: {} for name in predictions}
    for arm in treatments:
        keep = (arm_values == arm) | (arm_values == control)
        treated = (arm_values[keep] == arm).astype(float)
        for name, frame in predictions.items():
            score = frame[arm].to_numpy(dtype=float)[keep]
            metrics[name][arm] = metric_intervals(
                outcome[keep], treated, score, n_boot=n_boot, alpha=alpha, seed=seed
            )
    return compare_metrics(metrics, alpha=alpha)


def compare_metrics(
    metrics: Mapping[str, Mapping[str, UpliftMetrics]], *, alpha: float = 0.05
) -> ModelComparison:
    """Compare learners whose per-arm metrics are already computed.

    Parameters
    ----------
    metrics : mapping
        Learner label -> treatment arm -> :func:`~uplift.analysis.metrics.metric_intervals`
        of its out-of-fold predictions on that arm and the control. For the differences
        to be paired, every learner's metrics of an arm must come from the same rows and
        the same seed (and so the same resampled customers), as in :func:`compare_learners`.
    alpha : float
        One minus the intervals' level.
    """
    if not metrics:
        raise ValueError("no learners to compare")
    names = list(metrics)
    arms = list(metrics[names[0]])
    if not arms or any(list(metrics[n]) != arms for n in names):
        raise ValueError(f"every learner needs metrics for the same arms, got {arms} first")
    n_boot = metrics[names[0]][arms[0]].n_boot
    estimate = np.array([np.mean([metrics[n][a].qini.estimate for a in arms]) for n in names])
    replicates = np.column_stack(
        [np.mean([metrics[n][a].qini_replicates for a in arms], axis=0) for n in names]
    )
    if replicates.shape[0] != n_boot:
        raise ValueError("the metrics hold no bootstrap replicates (use metric_intervals)")
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
