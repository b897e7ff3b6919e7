"""Figures for the reviewer: drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from uplift.analysis.calibration import UpliftCalibration
from uplift.analysis.metrics import UpliftCurve

__all__ = ["calibration_figure", "qini_figure"]


def qini_figure(curves: Mapping[str, UpliftCurve], metric: str) -> Figure:
    """Qini curves of each learner and arm, with the random-targeting line.

    Parameters
    ----------
    curves : mapping
        Label (``learner / arm``) -> out-of-fold Qini curve.
    metric : str
        The modelled metric, for the axis label.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, curve in curves.items():
        line = ax.plot(curve.fraction, curve.gain, label=label)[0]
        ax.plot([0, 1], [0, curve.gain[-1]], linestyle="--", color=line.get_color(), alpha=0.6)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of customers targeted, by predicted uplift (out-of-fold)")
    ax.set_ylabel(f"incremental {metric} (Qini)")
    ax.set_title("Qini curves; dashed: random targeting")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
