"""Treatment effects of every arm against the control, overall and per segment.

The estimate of each arm and metric is an OLS coefficient with HC2 standard errors
(:mod:`uplift.analysis.regression`, computed for many groups at once by
:mod:`uplift.analysis.grouped`): the difference in means, or Lin's covariate-adjusted
(CUPED) estimate when the metric has pre-period covariates. A ratio metric (revenue per
order) is the difference of two ratios of means with a delta-method variance. Beside
each estimate the overall table keeps the plain difference in means with its Welch
interval (Student's t with the Welch-Satterthwaite degrees of freedom, as
``statsmodels.stats.weightstats.CompareMeans.tconfint_diff(usevar="unequal")`` computes),
the relative lift with a delta-method interval, and, for a winsorized metric, the
estimate on the raw values.

Winsorizing caps a metric at its ``q``-quantile over every customer of the compared
arms (numpy's default, linear interpolation), one cap for the whole experiment so that
every arm and segment estimates the effect on the same capped metric. That estimand is
not the raw mean's: the raw estimate is reported beside it for that reason.

Per-segment effects are corrected for multiple testing across arms x metrics x segments
(:mod:`uplift.analysis.multiple_testing`); segments too small to test are left out of
the family and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special, stats

from uplift.analysis.grouped import contrast, group_fits, group_ratios
from uplift.analysis.multiple_testing import Method, correct, detectable_effect

__all__ = [
    "MISSING_SEGMENT",
    "SEGMENT_STATUSES",
    "EffectResults",
    "MetricColumns",
    "SegmentEffects",
    "WelchEffect",
    "estimate_effects",
    "segment_effects",
    "welch_effect",
    "welch_from_moments",
]

#: Verdicts of a segment effect, in report order (see :class:`SegmentEffects`).
SEGMENT_STATUSES = ("positive", "negative", "inconclusive", "too_small", "not_tested")

#: The segment of customers without a segment label.
MISSING_SEGMENT = "(missing)"

#: An outcome column (a mean metric), or (numerator, denominator) columns of a ratio metric.
MetricColumns = str | tuple[str, str]


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
    return welch_from_moments(
        (t.size, float(t.mean()), float(t.var(ddof=1))),
        (c.size, float(c.mean()), float(c.var(ddof=1))),
        alpha,
    )


def welch_from_moments(
    treated: tuple[int, float, float], control: tuple[int, float, float], alpha: float = 0.05
) -> WelchEffect:
    """:func:`welch_effect` from each group's size, mean and sample variance (``ddof=1``).

    What an aggregation over chunks or a Spark ``groupBy`` gives, without the values.
    """
    (nt, mean_t, var_t), (nc, mean_c, var_c) = treated, control
    if nt < 2 or nc < 2:
        raise ValueError(
            f"a Welch interval needs at least two customers per group, found {nt} treated "
            f"and {nc} control"
        )
    vt, vc = var_t / nt, var_c / nc
    se = float(np.sqrt(vt + vc))
    estimate = float(mean_t - mean_c)
    if se == 0.0:
        return WelchEffect(
            estimate,
            0.0,
            float("nan"),
            estimate,
            estimate,
            float("nan") if estimate == 0 else 0.0,
            int(nt),
            int(nc),
            float(mean_t),
            float(mean_c),
        )
    df = (vt + vc) ** 2 / (vt**2 / (nt - 1) + vc**2 / (nc - 1))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    p = float(2 * stats.t.sf(abs(estimate / se), df))
    return WelchEffect(
        estimate,
        se,
        float(df),
        estimate - q * se,
        estimate + q * se,
        p,
        int(nt),
        int(nc),
        float(mean_t),
        float(mean_c),
    )


@dataclass(frozen=True)
class _TableResults:
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The results table (a copy): one row per estimate."""
        return self.table.copy()

    def to_records(self) -> list[dict[str, object]]:
        """Rows as plain dictionaries, for the summary JSON."""
        return [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in self.table.to_dict(orient="records")
        ]


@dataclass(frozen=True)
class EffectResults(_TableResults):
    """Effects of every treatment arm on every metric, against one control.

    ``to_frame()`` has one row per arm and metric.
    """

    control: str
    alpha: float

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
            "method",
            "mean_control",
            "mean_treated",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "lift",
            "variance_reduction",
            "detectable_effect",
        ]
        level = f"{1 - self.alpha:.0%}"
        text = (
            f"Average effects against {self.control!r} (OLS with HC2, {level} CI; Lin-adjusted "
            f"where pre-period covariates are given; ratios by the delta method)\n"
            + self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.5g}")
        )
        capped = self.table[self.table["winsorized_at"].notna()]
        for row in capped.itertuples():
            text += (
                f"\n{row.metric} ({row.arm}) is winsorized at {row.winsorized_at:.5g}; "
                f"unwinsorized: {row.unwinsorized_estimate:.5g} "
                f"({row.unwinsorized_ci_low:.5g} to {row.unwinsorized_ci_high:.5g})"
            )
        return text


@dataclass(frozen=True)
class SegmentEffects(_TableResults):
    """Effects per segment, arm and metric, corrected for multiple testing.

    ``to_frame()`` has one row per segment, arm and metric.

    ``status`` is ``positive`` or ``negative`` when the corrected interval lies wholly
    above or below zero, ``inconclusive`` when it spans zero (``detectable_effect`` then
    says what effect the segment could have detected), ``too_small`` when the arm or
    the control has fewer than ``min_segment_size`` customers in the segment (not
    tested, not in the family), ``not_tested`` when the effect has no variance.
    """

    control: str
    alpha: float
    correction: str
    family_size: int
    min_segment_size: int
    power: float

    @cached_property
    def _by_key(self) -> dict[tuple[str, str, str], dict[str, object]]:
        return {(str(r["segment"]), str(r["arm"]), str(r["metric"])): r for r in self.to_records()}

    def get(self, segment: str, arm: str, metric: str) -> dict[str, object]:
        """The row of one segment, arm and metric."""
        return self._by_key[(segment, arm, metric)]

    def counts(self) -> dict[str, int]:
        """Number of rows of each status."""
        return {str(k): int(v) for k, v in self.table["status"].value_counts().items()}

    def summary(self) -> str:
        """A plain-text table of the segment effects and their verdicts."""
        cols = [
            "segment",
            "arm",
            "metric",
            "n_treated",
            "n_control",
            "estimate",
            "corrected_ci_low",
            "corrected_ci_high",
            "p_adjusted",
            "detectable_effect",
            "status",
        ]
        correction = "no correction" if self.correction == "none" else self.correction
        return (
            f"Segment effects against {self.control!r} ({correction} across "
            f"{self.family_size} tests at alpha {self.alpha:g}; fewer than "
            f"{self.min_segment_size} customers in an arm: not tested; detectable effect "
            f"at {self.power:.0%} power)\n"
            + self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")
        )


@dataclass(frozen=True)
class _Rows:
    """The experiment's rows in the compared arms, aligned to one index."""

    outcomes: pd.DataFrame
    covariates: dict[str, np.ndarray]
    arm: np.ndarray
    """0 for the control, ``i`` for ``treatments[i - 1]``."""
    keep: np.ndarray
    n_arms: int


def _rows(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    control: str,
    treatments: Sequence[str],
    covariates: Mapping[str, pd.DataFrame] | None,
) -> _Rows:
    # rows are matched by index label, whatever the order of the frames
    outcomes = outcomes if outcomes.index.equals(arms.index) else outcomes.loc[arms.index]
    codes, names = _factorized(arms)
    lookup = np.append(pd.Index([control, *treatments]).get_indexer(names), -1)
    codes = lookup[codes]  # code -1 (a missing arm) picks the appended -1
    keep = codes >= 0
    aligned = {
        name: (frame if frame.index.equals(arms.index) else frame.loc[arms.index]).to_numpy(
            dtype=float
        )[keep]
        for name, frame in (covariates or {}).items()
    }
    return _Rows(outcomes[keep], aligned, codes[keep].astype(np.intp), keep, 1 + len(treatments))


def _factorized(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 for missing) and the distinct values as text, in sorted order.

    One hash pass over the values; only the distinct values are turned into text.
    """
    codes, uniques = pd.factorize(values)
    names = pd.Index(uniques).astype(str)
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return np.where(codes >= 0, rank[codes], -1), names[order]


def _column_names(covariates: Mapping[str, pd.DataFrame] | None, metric: str) -> str:
    frame = (covariates or {}).get(metric)
    return "" if frame is None else ", ".join(map(str, frame.columns))


def _caps(
    rows: _Rows, metrics: Mapping[str, MetricColumns], winsorize: Mapping[str, float]
) -> dict[str, float]:
    caps = {}
    for name, q in winsorize.items():
        column = metrics[name]
        if not isinstance(column, str):
            raise ValueError(f"metric {name!r} is a ratio; winsorize its numerator instead")
        if not 0 < q < 1:
            raise ValueError(f"the winsorizing quantile of {name!r} must lie in (0, 1), found {q}")
        caps[name] = float(np.quantile(rows.outcomes[column].to_numpy(dtype=float), q))
    return caps


def _metric_columns(
    rows: _Rows,
    name: str,
    column: MetricColumns,
    cap: float | None,
    groups: np.ndarray,
    n_groups: int,
    treated: np.ndarray,
    control: np.ndarray,
    alpha: float,
) -> dict[str, np.ndarray]:
    """Every statistic of one metric for the pairs ``(treated[i], control[i])``."""
    z = rows.covariates.get(name)
    if isinstance(column, str):
        raw = rows.outcomes[column].to_numpy(dtype=float)
        y = raw if cap is None else np.minimum(raw, cap)
        fits = group_fits(y, groups, n_groups, z)
        pair = contrast(fits, treated, control)
        method = np.where(pair.adjusted, "lin_hc2", "ols_hc2")
    else:
        numerator, denominator = (rows.outcomes[c].to_numpy(dtype=float) for c in column)
        fits = group_ratios(numerator, denominator, groups, n_groups)
        pair = contrast(fits, treated, control)
        method = np.full(len(treated), "delta_ratio")
    se = pair.std_error
    q = float(special.ndtri(1 - alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2 * special.ndtr(-np.abs(pair.estimate / se)), np.nan)
        reduction = np.where(
            pair.unadjusted_variance > 0, 1 - pair.variance / pair.unadjusted_variance, np.nan
        )
    lift, lift_se = pair.lift()
    out = {
        "estimate": pair.estimate,
        "ci_low": pair.estimate - q * se,
        "ci_high": pair.estimate + q * se,
        "p_value": p_value,
        "std_error": se,
        "method": method,
        "variance_reduction": reduction,
        "lift": lift,
        "lift_ci_low": lift - q * lift_se,
        "lift_ci_high": lift + q * lift_se,
        "n_treated": fits.n[treated],
        "n_control": fits.n[control],
        "mean_treated": fits.mean[treated],
        "mean_control": fits.mean[control],
        "winsorized_at": np.full(len(treated), np.nan if cap is None else cap),
        "unwinsorized_estimate": np.full(len(treated), np.nan),
        "unwinsorized_ci_low": np.full(len(treated), np.nan),
        "unwinsorized_ci_high": np.full(len(treated), np.nan),
        "_var_treated": fits.var_mean[treated],
        "_var_control": fits.var_mean[control],
        "_raw_estimate": pair.unadjusted_estimate,
    }
    if cap is not None and isinstance(column, str):
        whole = contrast(group_fits(raw, groups, n_groups, z), treated, control)
        out["unwinsorized_estimate"] = whole.estimate
        out["unwinsorized_ci_low"] = whole.estimate - q * whole.std_error
        out["unwinsorized_ci_high"] = whole.estimate + q * whole.std_error
    return out


def _welch(columns: dict[str, np.ndarray], alpha: float) -> dict[str, np.ndarray]:
    """Welch t interval of the plain difference in means, from the per-arm variances."""
    vt, vc = columns["_var_treated"], columns["_var_control"]
    nt, nc = columns["n_treated"], columns["n_control"]
    estimate = columns["_raw_estimate"]
    total = vt + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        df = total**2 / (vt**2 / (nt - 1) + vc**2 / (nc - 1))
        half = stats.t.ppf(1 - alpha / 2, df) * np.sqrt(total)
    half = np.where(total == 0, 0.0, half)
    df = np.where(total == 0, np.nan, df)
    ratio = columns["method"] == "delta_ratio"
    return {
        "welch_estimate": np.where(ratio, np.nan, estimate),
        "welch_ci_low": np.where(ratio, np.nan, estimate - half),
        "welch_ci_high": np.where(ratio, np.nan, estimate + half),
        "welch_df": np.where(ratio, np.nan, df),
    }


def estimate_effects(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    metrics: Mapping[str, MetricColumns],
    control: str,
    treatments: Sequence[str],
    alpha: float = 0.05,
    covariates: Mapping[str, pd.DataFrame] | None = None,
    *,
    winsorize: Mapping[str, float] | None = None,
    power: float = 0.8,
) -> EffectResults:
    """Effect of every treatment arm against the control on every metric.

    Each effect is the arm's coefficient in an OLS regression with HC2 standard errors:
    the difference in means, or Lin's covariate-adjusted estimate when the metric has
    pre-period covariates (equal to
    :func:`uplift.analysis.regression.regression_effect` on the pair's rows). A ratio
    metric's effect is the difference of the arms' ratios of means, with a delta-method
    variance. The table also carries the Welch interval of the plain difference in
    means, the relative lift with its delta-method interval, the variance reduction the
    adjustment gave, the effect detectable at ``power``, and for a winsorized metric
    the cap and the raw estimate.

    Parameters
    ----------
    outcomes : pd.DataFrame
        Outcome columns, indexed like ``arms``.
    arms : pd.Series
        Each customer's arm; customers of other arms are ignored.
    metrics : mapping
        Metric name -> outcome column, or (numerator, denominator) columns of a ratio.
    control : str
        The control arm.
    treatments : sequence of str
        Treatment arms, in report order.
    alpha : float
        One minus the confidence level.
    covariates : mapping, optional
        Metric name -> pre-period covariates (a frame indexed like ``arms``) to adjust
        that metric's effect for. Metrics not named are not adjusted.
    winsorize : mapping, optional
        Metric name -> quantile in (0, 1) at which that metric is capped.
    power : float
        Power at which ``detectable_effect`` is computed.

    Returns
    -------
    EffectResults
        One row per arm and metric, arms in ``treatments`` order.
    """
    rows = _rows(outcomes, arms, control, treatments, covariates)
    counts = np.bincount(rows.arm, minlength=rows.n_arms)
    if counts.min() < 2:
        found = ", ".join(f"{a} {c}" for a, c in zip([control, *treatments], counts, strict=True))
        raise ValueError(f"an effect needs at least two customers per arm, found {found}")
    caps = _caps(rows, metrics, winsorize or {})
    treated = np.arange(1, rows.n_arms)
    base = np.zeros(len(treated), dtype=np.intp)
    frames = []
    for name, column in metrics.items():
        columns = _metric_columns(
            rows, name, column, caps.get(name), rows.arm, rows.n_arms, treated, base, alpha
        )
        columns |= _welch(columns, alpha)
        columns["detectable_effect"] = detectable_effect(
            columns["std_error"], np.full(len(treated), alpha), power
        )
        frame = pd.DataFrame({k: v for k, v in columns.items() if not k.startswith("_")})
        frame.insert(0, "metric", name)
        frame.insert(0, "arm", list(treatments))
        frame.insert(2, "kind", "mean" if isinstance(column, str) else "ratio")
        frame["adjusted_for"] = np.where(
            frame["method"] == "lin_hc2", _column_names(covariates, name), ""
        )
        frame["_order"] = np.arange(len(treated))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True).sort_values("_order", kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    return EffectResults(table[_EFFECT_COLUMNS], control, alpha)


_EFFECT_COLUMNS = [
    "arm",
    "metric",
    "kind",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "std_error",
    "method",
    "adjusted_for",
    "variance_reduction",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "detectable_effect",
    "winsorized_at",
    "unwinsorized_estimate",
    "unwinsorized_ci_low",
    "unwinsorized_ci_high",
    "welch_estimate",
    "welch_ci_low",
    "welch_ci_high",
    "welch_df",
    "n_treated",
    "n_control",
    "mean_treated",
    "mean_control",
]


def segment_effects(
    outcomes: pd.DataFrame,
    arms: pd.Series,
    segments: pd.Series,
    metrics: Mapping[str, MetricColumns],
    control: str,
    treatments: Sequence[str],
    alpha: float = 0.05,
    covariates: Mapping[str, pd.DataFrame] | None = None,
    *,
    winsorize: Mapping[str, float] | None = None,
    correction: Method = "holm",
    min_segment_size: int = 200,
    power: float = 0.8,
) -> SegmentEffects:
    """Effect of every treatment arm on every metric within every segment.

    Each segment's effect is computed as :func:`estimate_effects` would on the
    segment's rows alone (Lin's adjustment centred within the segment; the winsorizing
    cap the whole experiment's). The p-values of all segments, arms and metrics with at
    least ``min_segment_size`` customers in both the arm and the control form one
    family, corrected by ``correction``; each row's corrected interval is the normal
    interval at the level the correction spent on it
    (:func:`uplift.analysis.multiple_testing.correct`).

    Parameters
    ----------
    outcomes, arms, metrics, control, treatments, alpha, covariates, winsorize, power
        As for :func:`estimate_effects`.
    segments : pd.Series
        Each customer's segment label, indexed like ``arms``; missing labels form the
        segment ``"(missing)"``.
    correction : {"holm", "fdr_bh", "bonferroni", "none"}
        Multiple-testing correction (statsmodels' names).
    min_segment_size : int
        Fewest customers in the arm and in the control for a segment to be tested.

    Returns
    -------
    SegmentEffects
        One row per segment, arm and metric, segments in sorted order.
    """
    rows = _rows(outcomes, arms, control, treatments, covariates)
    labels = segments if segments.index.equals(arms.index) else segments.loc[arms.index]
    codes, names = _factorized(labels[rows.keep])
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names = names.append(pd.Index([MISSING_SEGMENT]))
    n_segments, n_arms = len(names), rows.n_arms
    groups = codes.astype(np.intp) * n_arms + rows.arm
    segment = np.repeat(np.arange(n_segments), n_arms - 1)
    arm = np.tile(np.arange(1, n_arms), n_segments)
    treated, base = segment * n_arms + arm, segment * n_arms
    caps = _caps(rows, metrics, winsorize or {})
    frames = []
    for order, (name, column) in enumerate(metrics.items()):
        columns = _metric_columns(
            rows, name, column, caps.get(name), groups, n_segments * n_arms, treated, base, alpha
        )
        frame = pd.DataFrame({k: v for k, v in columns.items() if not k.startswith("_")})
        frame.insert(0, "metric", name)
        frame.insert(0, "arm", np.asarray(treatments, dtype=object)[arm - 1])
        frame.insert(0, "segment", np.asarray(names, dtype=object)[segment])
        frame["adjusted_for"] = np.where(
            frame["method"] == "lin_hc2", _column_names(covariates, name), ""
        )
        frame["_key"] = (segment * (n_arms - 1) + arm - 1) * len(metrics) + order
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True).sort_values("_key").drop(columns="_key")
    table = table.reset_index(drop=True)
    large = np.minimum(table["n_treated"], table["n_control"]) >= min_segment_size
    p = table["p_value"].to_numpy(dtype=float)
    corrected = correct(np.where(large, p, np.nan), correction, alpha)
    half = special.ndtri(1 - corrected.level / 2) * table["std_error"].to_numpy()
    table["p_adjusted"] = corrected.p_adjusted
    table["level"] = corrected.level
    table["corrected_ci_low"] = table["estimate"] - half
    table["corrected_ci_high"] = table["estimate"] + half
    table["detectable_effect"] = detectable_effect(table["std_error"], corrected.level, power)
    tested = np.isfinite(corrected.p_adjusted)
    table["status"] = np.select(
        [
            ~large,
            ~tested,
            table["corrected_ci_low"].to_numpy() > 0,
            table["corrected_ci_high"].to_numpy() < 0,
        ],
        ["too_small", "not_tested", "positive", "negative"],
        "inconclusive",
    )
    return SegmentEffects(
        table, control, alpha, correction, corrected.family_size, min_segment_size, power
    )
