"""Average treatment effects: difference in means with Welch confidence intervals.

For each treatment arm against the control and each metric, the estimate is the
difference of the arm means, its standard error is the unpooled (Welch) one and the
interval uses Student's t with the Welch-Satterthwaite degrees of freedom, as
``statsmodels.stats.weightstats.CompareMeans.tconfint_diff(usevar="unequal")`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["EffectResults", "WelchEffect", "estimate_effects", "welch_effect"]


@dataclass(frozen=True)
class WelchEffect:
    """Difference in means of one sample against another, with its Welch interval."""

    estimate: float
    std_error: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float


def welch_effect(treated: np.ndarray, control: np.ndarray, alpha: float = 0.05) -> WelchEffect:
    """Difference in means ``mean(treated) - mean(control)`` with a Welch t interval.

    Parameters
    ----------
    treated, control : array-like
        Outcomes of the two groups; each needs at least two values.
    alpha : float
        One minus the confidence level.

    Returns
    -------
    WelchEffect
    """
    t = np.asarray(treated, dtype=float)
    c = np.asarray(control, dtype=float)
    if t.size < 2 or c.size < 2:
        raise ValueError(
            f"a Welch interval needs at least two customers per group, found {t.size} treated "
            f"and {c.size} control"
        )
    vt, vc = t.var(ddof=1) / t.size, c.var(ddof=1) / c.size
    se = float(np.sqrt(vt + vc))
    estimate = float(t.mean() - c.mean())
    if se == 0.0:
        return WelchEffect(
            estimate,
            0.0,
            float("nan"),
            estimate,
            estimate,
            float("nan") if estimate == 0 else 0.0,
            t.size,
            c.size,
            float(t.mean()),
            float(c.mean()),
        )
    df = (vt + vc) ** 2 / (vt**2 / (t.size - 1) + vc**2 / (c.size - 1))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    p = float(2 * stats.t.sf(abs(estimate / se), df))
    return WelchEffect(
        estimate,
        se,
        float(df),
        estimate - q * se,
        estimate + q * se,
        p,
        int(t.size),
        int(c.size),
        float(t.mean()),
        float(c.mean()),
    )


@dataclass(frozen=True)
class EffectResults:
    """Effects of every treatment arm on every metric, against one control."""

    table: pd.DataFrame
    control: str
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        """One row per arm and metric."""
        return self.table.copy()

    def to_records(self) -> list[dict[str, object]]:
        """Rows as plain dictionaries, for the summary JSON."""
        return [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in self.table.to_dict(orient="records")
        ]

    @cached_property
    def _by_key(self) -> dict[tuple[str, str], dict[str, object]]:
        return {(str(r["arm"]), str(r["metric"])): r for r in self.to_records()}

    def get(self, arm: str, metric: str) -> dict[str, object]:
        """The row of one arm and metric."""
        return self._by_key[(arm, metric)]

    def summary(self) -> str:
        """A plain-text table of the effects."""
        cols = [
            "arm",
            "metric",
            "mean_control",
            "mean_treated",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
        ]
        level = f"{1 - self.alpha:.0%}"
        return (
            f"Average effects against {self.control!r} (difference in means, Welch {level} CI)\n"
            + self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.5g}")
        )


def estimate_effects(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    metrics: Mapping[str, str],
    control: str,
    treatments: Sequence[str],
    alpha: float = 0.05,
) -> EffectResults:
    """Difference in means of every treatment arm against the control, per metric.

    Parameters
    ----------
    outcomes : pd.DataFrame
        Outcome columns, indexed like ``arms``.
    arms : pd.Series
        Each customer's arm.
    metrics : mapping
        Metric name -> outcome column.
    control : str
        The control arm.
    treatments : sequence of str
        Treatment arms, in report order.
    alpha : float
        One minus the confidence level.
    """
    rows = []
    is_control = (arms == control).to_numpy()
    for arm in treatments:
        is_arm = (arms == arm).to_numpy()
        for metric, column in metrics.items():
            y = outcomes[column].to_numpy(dtype=float)
            eff = welch_effect(y[is_arm], y[is_control], alpha)
            rows.append({"arm": arm, "metric": metric, **eff.__dict__, "method": "welch"})
    return EffectResults(pd.DataFrame(rows), control, alpha)
