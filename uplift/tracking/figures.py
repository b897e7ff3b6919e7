"""Figures for the reviewer: drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from uplift.analysis.metrics import UpliftCurve

__all__ = ["qini_figure"]


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
