"""Figures for the reviewer: drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter
from matplotlib.transforms import offset_copy

from uplift.analysis.calibration import UpliftCalibration
from uplift.analysis.metrics import UpliftCurve

__all__ = [
    "calibration_figure",
    "migration_figure",
    "png_bytes",
    "profit_curve_figure",
    "qini_figure",
    "segment_forest_figure",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def _house_style(function: _F) -> _F:
    """Draw (and save) with matplotlib's default style, whatever the process set.

    causalml sets ``fivethirtyeight`` globally when it is imported, which would turn the
    figures grey with oversized text.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.style.context("default"):
            return function(*args, **kwargs)

    return cast(_F, wrapper)


#: The most points a curve is drawn with. A Qini curve has a point per customer; a few
#: thousand are more than the figure has pixels across, so the line looks the same, while
#: saving the figure and placing its legend (which tests every vertex) cost far less.
_CURVE_POINTS = 2_000


def _thinned(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`_CURVE_POINTS` evenly spaced points of a curve, plus its highest and
    lowest points (a Qini curve's peak is what a reader looks for), ends included."""
    n = len(x)
    if n <= _CURVE_POINTS:
        return x, y
    even = np.linspace(0, n - 1, _CURVE_POINTS).round().astype(np.int64)
    keep = np.unique(np.concatenate([even, [np.argmax(y), np.argmin(y)]]))
    return x[keep], y[keep]


@_house_style
def qini_figure(curves: Mapping[str, UpliftCurve], metric: str) -> Figure:
    """Qini curves of each learner and arm, with the random-targeting line.

    A curve of more than :data:`_CURVE_POINTS` points is drawn through that many, evenly
    spaced, and its highest and lowest.

    Parameters
    ----------
    curves : mapping
        Label (``learner / arm``) -> out-of-fold Qini curve.
    metric : str
        The modelled metric, for the axis label.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, curve in curves.items():
        line = ax.plot(*_thinned(curve.fraction, curve.gain), label=label)[0]
        ax.plot([0, 1], [0, curve.gain[-1]], linestyle="--", color=line.get_color(), alpha=0.6)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of customers targeted, by predicted uplift (out-of-fold)")
    ax.set_ylabel(f"incremental {metric} (Qini)")
    ax.set_title("Qini curves; dashed: random targeting")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_house_style
def calibration_figure(calibration: Mapping[str, UpliftCalibration], metric: str) -> Figure:
    """Observed against predicted uplift by score decile, one panel per treatment arm.

    Points are the deciles' observed uplift (treated minus control mean) with their
    bootstrap intervals, at the deciles' mean predicted uplift; the diagonal is perfect
    calibration.
    """
    arms = list(calibration)
    fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 4), dpi=110, squeeze=False)
    for ax, arm in zip(axes[0], arms, strict=True):
        c = calibration[arm]
        ax.errorbar(
            c.predicted,
            c.observed,
            yerr=[c.observed - c.ci_low, c.ci_high - c.observed],
            fmt="o",
            capsize=3,
        )
        finite = [v for v in (*c.predicted, *c.ci_low, *c.ci_high) if v == v]
        if finite:
            low, high = min(finite), max(finite)
            ax.plot([low, high], [low, high], linestyle="--", color="grey")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{arm}: slope {c.slope:.2f}", fontsize=9)
        ax.set_xlabel(f"predicted uplift on {metric} (decile mean)")
    axes[0][0].set_ylabel("observed uplift (treated - control)")
    fig.tight_layout()
    return fig


def _number(value: Any) -> float:
    """A summary value as a float: NaN where it is missing (None) or not a number."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _message_figure(message: str, figsize: tuple[float, float] = (7, 2.5)) -> Figure:
    """A figure that only says why there is nothing to draw."""
    fig = plt.figure(figsize=figsize, dpi=110)
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="dimgrey")
    return fig


#: Colour of each segment verdict (:data:`uplift.analysis.effects.SEGMENT_STATUSES`).
_STATUS_COLOURS = {
    "positive": "#1a9850",
    "negative": "#d73027",
    "inconclusive": "#4d4d4d",
    "too_small": "#f49d37",
    "not_tested": "#a6a6a6",
}
_STATUS_LABELS = {
    "positive": "positive",
    "negative": "negative",
    "inconclusive": "inconclusive",
    "too_small": "too small to test",
    "not_tested": "not tested",
}
_OTHER_COLOURS = ("#7b3294", "#2c7bb6", "#8c510a")


@_house_style
def segment_forest_figure(rows: Sequence[Mapping[str, Any]], metric: str) -> Figure:
    """Forest plot of the per-segment effects on one metric, one panel per arm.

    Each segment is a row: the point is the estimate, coloured by its verdict; the thick
    bar is the multiplicity-corrected interval, the thin line the nominal one. Missing
    or NaN values are left out (a segment too small to test has no corrected interval).

    Parameters
    ----------
    rows : sequence of mapping
        ``summary["segment_effects"]["rows"]``: ``segment``, ``arm``, ``metric``,
        ``estimate``, ``ci_low``, ``ci_high``, ``corrected_ci_low``,
        ``corrected_ci_high`` and ``status`` of each segment, arm and metric.
    metric : str
        The metric to draw; the other rows are ignored.

    Returns
    -------
    matplotlib.figure.Figure
        The forest plot, or a figure saying there is nothing to draw when no row is
        about ``metric``.
    """
    selected = [r for r in rows if r.get("metric") == metric]
    if not selected:
        return _message_figure(f"no segment effects for {metric}")
    segments = list(dict.fromkeys(str(r["segment"]) for r in selected))
    arms = list(dict.fromkeys(str(r["arm"]) for r in selected))
    statuses = list(dict.fromkeys(str(r.get("status")) for r in selected))
    known = [s for s in _STATUS_COLOURS if s in statuses]
    others = [s for s in statuses if s not in _STATUS_COLOURS]
    colours = {s: _STATUS_COLOURS[s] for s in known}
    colours.update({s: _OTHER_COLOURS[i % len(_OTHER_COLOURS)] for i, s in enumerate(others)})
    position = {s: i for i, s in enumerate(segments)}

    width = min(12.0, max(7.0, 3.8 * len(arms)))
    height = 1.9 + 0.42 * len(segments)
    fig, axes = plt.subplots(
        1, len(arms), figsize=(width, height), dpi=110, sharey=True, squeeze=False
    )
    for ax, arm in zip(axes[0], arms, strict=True):
        arm_rows = [r for r in selected if str(r["arm"]) == arm]
        for r in arm_rows:
            y = position[str(r["segment"])]
            colour = colours[str(r.get("status"))]
            low, high = _number(r.get("ci_low")), _number(r.get("ci_high"))
            if not (math.isnan(low) or math.isnan(high)):
                ax.hlines(y, low, high, color=colour, linewidth=1.2)
            low = _number(r.get("corrected_ci_low"))
            high = _number(r.get("corrected_ci_high"))
            if not (math.isnan(low) or math.isnan(high)):
                ax.hlines(y, low, high, color=colour, linewidth=6, alpha=0.35)
        for status in colours:
            points = [
                (_number(r.get("estimate")), position[str(r["segment"])])
                for r in arm_rows
                if str(r.get("status")) == status and not math.isnan(_number(r.get("estimate")))
            ]
            if points:
                ax.plot(
                    [x for x, _ in points],
                    [y for _, y in points],
                    linestyle="none",
                    marker="o",
                    markersize=6,
                    color=colours[status],
                    zorder=3,
                )
        ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel(f"effect on {metric} (treated \N{MINUS SIGN} control)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    first = axes[0][0]
    first.set_yticks(range(len(segments)), segments)
    first.set_ylim(len(segments) - 0.5, -0.5)  # first segment at the top
    handles = [
        Line2D(
            [], [], linestyle="none", marker="o", color=colours[s], label=_STATUS_LABELS.get(s, s)
        )
        for s in colours
    ]
    handles += [
        Line2D([], [], color="grey", linewidth=6, alpha=0.35, label="corrected interval"),
        Line2D([], [], color="grey", linewidth=1.2, label="nominal interval"),
    ]
    fig.suptitle(f"Effect on {metric} by segment", fontsize=11)
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 4),
        fontsize=8,
        frameon=False,
    )
    # Room at the bottom for the figure legend below the panels.
    legend_rows = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, (0.08 + 0.2 * legend_rows) / height, 1, 1))
    return fig


@_house_style
def profit_curve_figure(
    curve: Sequence[Mapping[str, float]],
    policy: Mapping[str, Any],
    treat_all: Sequence[Mapping[str, Any]],
    *,
    fixed_cost: float = 0.0,
    level: float = 0.95,
) -> Figure:
    """Incremental profit per customer against the share of customers treated.

    The curve ranks customers by predicted net value and treats the top share with
    their best arm; the policy (the top customers of positive predicted net value,
    within any budget) is one point on it, and treating everyone with one arm sits at
    share 1. Zero is treating no one. The curve and the policy are net of the fixed
    cost's share; the treat-all rows are before it, and are drawn net of it.

    Parameters
    ----------
    curve : sequence of mapping
        Points ``share``, ``per_customer``, ``ci_low``, ``ci_high``, by ascending share
        from 0 to 1 (``summary["policy"]["curve"]``).
    policy : mapping
        ``summary["policy"]``: ``treat_share``, ``per_customer``, ``ci_low`` and
        ``ci_high``, each possibly None.
    treat_all : sequence of mapping
        The rows of ``summary["targeting"]["rows"]`` whose ``rule`` is
        ``treat_all:<arm>``, with ``per_customer``, ``ci_low``, ``ci_high`` and
        ``arms`` (customers per arm, whose sum is the experiment's customers).
    fixed_cost : float
        The campaign's fixed cost, shared over the experiment's customers.
    level : float
        The confidence level of the intervals, for the legend.

    Returns
    -------
    matplotlib.figure.Figure
        The profit curve, or a figure saying there is no curve when ``curve`` is empty.
    """
    if not curve:
        return _message_figure("no policy curve")
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    share = [_number(p.get("share")) for p in curve]
    value = [_number(p.get("per_customer")) for p in curve]
    low = [_number(p.get("ci_low")) for p in curve]
    high = [_number(p.get("ci_high")) for p in curve]
    ax.fill_between(
        share, low, high, color="C0", alpha=0.18, linewidth=0, label=f"{level:.0%} interval"
    )
    ax.plot(share, value, color="C0", linewidth=2, label="treat the top share, best arm each")
    ax.axhline(0, color="grey", linewidth=0.9, label="treat no one")

    p_share, p_value = _number(policy.get("treat_share")), _number(policy.get("per_customer"))
    if not (math.isnan(p_share) or math.isnan(p_value)):
        ax.errorbar(
            [p_share],
            [p_value],
            yerr=_yerr(p_value, policy),
            fmt="D",
            markersize=8,
            color="C3",
            capsize=4,
            zorder=4,
            label=f"policy (treat {p_share:.0%})",
        )
    markers = ("s", "^", "v", "P", "X")
    # Every treat-all rule sits at share 1: shift them apart on screen (not in data) so
    # their intervals do not hide one another.
    offsets = [12.0 * (i - (len(treat_all) - 1) / 2) for i in range(len(treat_all))]
    for i, (row, offset) in enumerate(zip(treat_all, offsets, strict=True)):
        customers = sum((row.get("arms") or {}).values())
        share_of_fixed = fixed_cost / customers if customers else 0.0
        row = {
            key: _number(row.get(key)) - share_of_fixed
            for key in ("per_customer", "ci_low", "ci_high")
        } | {"rule": row.get("rule", "")}
        v = _number(row.get("per_customer"))
        if math.isnan(v):
            continue
        arm = str(row.get("rule", "")).partition(":")[2] or str(row.get("rule", ""))
        ax.errorbar(
            [1.0],
            [v],
            yerr=_yerr(v, row),
            fmt=markers[i % len(markers)],
            markersize=7,
            color=f"C{(i + 4) % 10}",
            capsize=4,
            zorder=4,
            transform=offset_copy(ax.transData, fig=fig, x=offset, units="points"),
            label=f"treat all: {arm}",
        )
        # Artists drawn with a shifted transform do not count towards autoscaling.
        ends = (v, _number(row.get("ci_low")), _number(row.get("ci_high")))
        ax.update_datalim([(1.0, y) for y in ends if not math.isnan(y)])
    ax.autoscale_view()
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlim(-0.02, 1.06)
    ax.set_xlabel("share of customers treated (ranked by predicted net value)")
    ax.set_ylabel("incremental profit per customer, net of costs")
    ax.set_title("Incremental profit of treating the top share of customers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _yerr(value: float, row: Mapping[str, Any]) -> list[list[float]] | None:
    """Error-bar lengths below and above ``value`` from the row's interval, if it has one."""
    low, high = _number(row.get("ci_low")), _number(row.get("ci_high"))
    if math.isnan(low) or math.isnan(high):
        return None
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]


@_house_style
def migration_figure(
    transitions: Mapping[str, Any], dimensions: Sequence[str] = ("M", "F")
) -> Figure:
    """Heatmaps of where customers end the window, by their level at launch.

    One row of panels per dimension, one column per arm; each cell is the share of the
    customers at a launch level (row) who end the window at a level (column). A launch
    level without customers is left blank rather than shown as 0%.

    Parameters
    ----------
    transitions : mapping
        ``summary["migration"]["transitions"]``: ``arms`` and ``dimensions``, each
        dimension with its ``levels``, and ``counts`` and ``shares`` matrices per arm.
    dimensions : sequence of str
        The dimensions to draw, in order; those not in ``transitions`` are skipped.

    Returns
    -------
    matplotlib.figure.Figure
        The heatmaps, or a figure saying there is nothing to draw when none of the
        dimensions is in ``transitions``.
    """
    available = transitions.get("dimensions") or {}
    dims = [d for d in dimensions if d in available]
    if not dims:
        return _message_figure(f"no migration data for {', '.join(dimensions) or 'any dimension'}")
    arms = [str(a) for a in transitions.get("arms", [])]
    if not arms:
        arms = list(dict.fromkeys(a for d in dims for a in available[d].get("shares", {})))
    n_levels = max(len(available[d].get("levels", [])) for d in dims)
    rotate = any(len(str(v)) > 3 for d in dims for v in available[d].get("levels", []))
    # Panels about square, scaled down together when the arms would not fit 12 inches.
    panel = 2.5 + 0.3 * max(n_levels - 3, 0)
    width = min(12.0, max(7.0, panel * len(arms) + 1.2))
    scale = min(1.0, (width - 1.2) / (panel * len(arms)))
    height = len(dims) * (panel * scale + (0.9 if rotate else 0.5)) + 0.4
    fig, axes = plt.subplots(
        len(dims),
        len(arms),
        figsize=(width, height),
        dpi=110,
        squeeze=False,
        layout="constrained",
    )
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="white")
    image = None
    for row_axes, dim in zip(axes, dims, strict=True):
        data = available[dim]
        levels = [str(v) for v in data.get("levels", [])]
        for ax, arm in zip(row_axes, arms, strict=True):
            shares = _shares_matrix(data, arm, len(levels))
            image = ax.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
            fontsize = 9 if len(levels) <= 3 else 7
            for (i, j), v in np.ndenumerate(shares):
                if np.isnan(v):
                    continue
                ax.text(
                    j,
                    i,
                    f"{v:.0%}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    # White on the dark end of the colour map, black on the light end.
                    color="white" if v > 0.55 else "black",
                )
            ax.set_xticks(
                range(len(levels)),
                levels,
                rotation=35 if rotate else 0,
                ha="right" if rotate else "center",
                fontsize=8,
            )
            ax.set_yticks(range(len(levels)), levels, fontsize=8)
            ax.set_title(arm, fontsize=10)
            ax.set_xlabel(f"{dim} at end of window", fontsize=9)
            ax.set_ylabel(f"{dim} at launch", fontsize=9)
    if image is not None:
        fig.colorbar(
            image,
            ax=axes.ravel().tolist(),
            shrink=0.85,
            format=PercentFormatter(xmax=1),
            label="share of the launch level",
        )
    fig.suptitle("Migration between levels over the window, by arm", fontsize=11)
    return fig


def _shares_matrix(data: Mapping[str, Any], arm: str, n_levels: int) -> np.ndarray:
    """The arm's share matrix, with NaN rows for launch levels that had no customers."""
    raw = data.get("shares", {}).get(arm)
    if raw is None:
        return np.full((n_levels, n_levels), np.nan)
    shares = np.array([[_number(v) for v in row] for row in raw], dtype=float).reshape(
        n_levels, n_levels
    )
    counts = data.get("counts", {}).get(arm)
    if counts is not None:
        empty = np.array([sum(_number(v) for v in row) for row in counts]) == 0
    else:
        empty = np.nansum(shares, axis=1) == 0
    shares[empty, :] = np.nan
    return shares


@_house_style
def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    from io import BytesIO

    buffer = BytesIO()
    try:
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()
