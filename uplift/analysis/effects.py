"""Average treatment effects of every arm against the control, with honest intervals.

The headline estimate of each arm and metric is an OLS coefficient with HC2 standard
errors (:mod:`uplift.analysis.regression`): the difference in means, or Lin's
covariate-adjusted (CUPED) estimate when the metric has pre-period covariates. Beside it
the table keeps the plain difference in means with its Welch interval (Student's t with
the Welch-Satterthwaite degrees of freedom, as
``statsmodels.stats.weightstats.CompareMeans.tconfint_diff(usevar="unequal")`` computes)
and the relative lift with a delta-method interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from uplift.analysis.regression import regression_effect

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
            f"Average effects against {self.control!r} (OLS with HC2, {level} CI; "
            f"Lin-adjusted where pre-period covariates are given)\n"
            + self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.5g}")
        )


def estimate_effects(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    metrics: Mapping[str, str],
    control: str,
    treatments: Sequence[str],
    alpha: float = 0.05,
    covariates: Mapping[str, pd.DataFrame] | None = None,
) -> EffectResults:
    """Effect of every treatment arm against the control on every metric.

    Each effect is the arm's coefficient in an OLS regression with HC2 standard errors
    (:func:`uplift.analysis.regression.regression_effect`): the difference in means, or
    Lin's covariate-adjusted estimate when the metric has pre-period covariates. The
    table also carries the Welch interval of the plain difference in means, the relative
    lift with its delta-method interval, and the variance reduction the adjustment gave.

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
    covariates : mapping, optional
        Metric name -> pre-period covariates (a frame indexed like ``arms``) to adjust
        that metric's effect for. Metrics not named are not adjusted.
    """
    rows = []
    covariates = covariates or {}
    # rows are matched by index label, whatever the order of the frames
    outcomes = outcomes if outcomes.index.equals(arms.index) else outcomes.loc[arms.index]
    covariates = {
        name: frame if frame.index.equals(arms.index) else frame.loc[arms.index]
        for name, frame in covariates.items()
    }
    is_control = (arms == control).to_numpy()
    for arm in treatments:
        is_arm = (arms == arm).to_numpy()
        pair = is_arm | is_control
        for metric, column in metrics.items():
            y = outcomes[column].to_numpy(dtype=float)
            welch = welch_effect(y[is_arm], y[is_control], alpha)
            adjust = covariates.get(metric)
            z = None if adjust is None else adjust.to_numpy(dtype=float)[pair]
            fit = regression_effect(y[pair], is_arm[pair], z, alpha)
            rows.append(
                {
                    "arm": arm,
                    "metric": metric,
                    "estimate": fit.estimate,
                    "ci_low": fit.ci_low,
                    "ci_high": fit.ci_high,
                    "p_value": fit.p_value,
                    "std_error": fit.std_error,
                    "method": "lin_hc2" if fit.adjusted else "ols_hc2",
                    "adjusted_for": (
                        ", ".join(map(str, adjust.columns))
                        if fit.adjusted and adjust is not None
                        else ""
                    ),
                    "variance_reduction": fit.variance_reduction,
                    "lift": fit.lift,
                    "lift_ci_low": fit.lift_ci_low,
                    "lift_ci_high": fit.lift_ci_high,
                    "welch_estimate": welch.estimate,
                    "welch_ci_low": welch.ci_low,
                    "welch_ci_high": welch.ci_high,
                    "welch_df": welch.df,
                    "n_treated": welch.n_treated,
                    "n_control": welch.n_control,
                    "mean_treated": welch.mean_treated,
                    "mean_control": welch.mean_control,
                }
            )
    return EffectResults(pd.DataFrame(rows), control, alpha)
