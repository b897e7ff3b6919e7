"""What every section of the memo reads: the run, its levels, and fixed wording."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from uplift.memo._markup import _NA, _e, _get, _num, _ok, _pp, _Row
from uplift.spec import WORTH

#: Figure artifact paths, in the order the memo shows them.
MEMO_FIGURES: tuple[str, ...] = (
    "figures/migration.png",
    "figures/segment_forest.png",
    "figures/profit_curve.png",
    "figures/qini.png",
    "figures/calibration.png",
)

_FIGURE_TEXT = {  # path -> (alt, caption); {metric}: the primary metric, {level}: of the CIs
    "figures/migration.png": (
        "Heatmaps of customers' level at launch against their level at the end of the window",
        "Each grid is one arm: a row is a level at launch (1 lowest), a column the level at "
        "the end of the window, a cell the share of that row. Shares right of the diagonal "
        "moved up; compare them between each treatment arm and the control.",
    ),
    "figures/segment_forest.png": (
        "Forest plot of the effect on {metric} per segment and arm",
        "Each dot is a segment's estimated effect on {metric} (arm minus control) with its "
        "plain {level} interval (thin line) and the wider interval corrected for multiple "
        "testing (pale bar). A bar clear of the dashed zero line is a real effect.",
    ),
    "figures/profit_curve.png": (
        "Incremental profit per customer against the share of customers treated",
        "The line is the profit per customer, net of costs, of treating the given share of "
        "customers with the highest predicted net value, with its {level} band. The marked "
        "point is {policy}; the others treat everyone with one arm.",
    ),
    "figures/qini.png": (
        "Qini curves of each uplift learner",
        "Customers are ranked by each learner's predicted uplift (out of fold); a curve is "
        "the extra {metric} gained as more of them are treated. The higher a curve stays "
        "above its dashed random-targeting line, the better the learner ranks customers.",
    ),
    "figures/calibration.png": (
        "Observed against predicted uplift by decile of predicted uplift",
        "Customers are grouped in tenths by predicted uplift in {metric}; each point is the "
        "uplift observed in a group (treated minus control, with its interval) at the uplift "
        "predicted. Points along the dashed diagonal mean the predictions can be trusted.",
    ),
}
_VERDICTS = {
    "go": "GO — treat every eligible customer",
    "go_targeted": "GO — treat the targeted customers",
    "no_go": "NO GO — the campaign does not pay for itself",
    "inconclusive": "INCONCLUSIVE — the data cannot tell yet",
}
_METHODS = {  # every effect method of uplift/analysis/effects.py, in plain words
    "ols_hc2": "difference in means",
    "lin_hc2": "regression-adjusted",
    "delta_ratio": "difference of ratios of means (delta method)",
}
_CORRECTIONS = {
    "holm": "Holm (keeps the chance of even one false positive in the family below alpha)",
    "fdr_bh": "Benjamini-Hochberg (keeps the expected share of false positives below alpha)",
    "bonferroni": "Bonferroni (alpha split equally between the tests)",
    "none": "none (each test at the plain level)",
}
_ALL = "All customers"


_KEYS = {  # a quantity -> the keys of its estimate and interval in a summary row
    "estimate": ("estimate", "ci_low", "ci_high"),
    "per_customer": ("per_customer", "ci_low", "ci_high"),
    "qini": ("qini", "ci_low", "ci_high"),
    "rule_total": ("expected_incremental_profit", "ci_low", "ci_high"),
    "total": ("expected_incremental_profit", "total_ci_low", "total_ci_high"),
    "profit": ("incremental_profit", "profit_ci_low", "profit_ci_high"),
    "clv": ("incremental_clv", "clv_ci_low", "clv_ci_high"),
    "cost": ("cost_per_customer", "cost_ci_low", "cost_ci_high"),
    "roi": ("roi", "roi_ci_low", "roi_ci_high"),
    "break_even": ("break_even_uplift", "break_even_ci_low", "break_even_ci_high"),
    "lift": ("lift", "lift_ci_low", "lift_ci_high"),
    "difference": ("difference", "difference_ci_low", "difference_ci_high"),
    "gain": ("gain_over_treat_all", "gain_ci_low", "gain_ci_high"),
    "rule_sum": ("total", "total_ci_low", "total_ci_high"),
    "raw": ("unwinsorized_estimate", "unwinsorized_ci_low", "unwinsorized_ci_high"),
}


@dataclass(frozen=True)
class _Memo:
    """The inputs and what every section derives from them."""

    summary: Mapping[str, Any]
    spec: Mapping[str, Any]
    figures: Mapping[str, bytes]

    @property
    def alpha(self) -> float:
        for alpha in (self.summary.get("alpha"), _get(self.spec, "decision", "alpha")):
            if _ok(alpha) and 0 < alpha < 1:
                return alpha
        return 0.05

    @property
    def level(self) -> str:
        """The confidence level of every interval, '95%'."""
        return f"{(1 - self.alpha) * 100:.3g}%"

    @property
    def primary(self) -> str:
        return str(self.summary.get("primary_metric") or "")

    @property
    def value_metric(self) -> str:
        priced = _get(self.spec, "value", "metrics")
        if isinstance(priced, Mapping) and priced:
            return str(next(iter(priced))) if len(priced) == 1 else WORTH
        return str(_get(self.spec, "value", "metric") or self.primary)

    @property
    def verdict(self) -> str:
        return str(_get(self.summary, "decision", "verdict") or "")

    def fmt(self, metric: Any) -> Callable[[Any], str]:
        """Formatter of an effect on the metric: percentage points for a binary one."""
        binary = _get(self.spec, "outcomes", "metrics", str(metric), "kind") == "binary"
        return _pp if binary else _num

    def ci(
        self, row: Any, what: str = "estimate", fmt: Callable[[Any], str] = _num, cell: bool = False
    ) -> str:
        """'1.58 (95% CI 0.91 to 2.25)' of a row's quantity (:data:`_KEYS`) or of a triple;
        in a table cell, the interval goes on a second line."""
        trio = row if isinstance(row, tuple) else tuple(_get(row, k) for k in _KEYS[what])
        est, lo, hi = trio
        if not _ok(est):
            return _NA
        if not (_ok(lo) and _ok(hi)):
            return f"{fmt(est)} (no interval)"
        if cell:
            return f'{fmt(est)}<br><span class="ci">{fmt(lo)} to {fmt(hi)}</span>'
        return f"{fmt(est)} ({self.level} CI {fmt(lo)} to {fmt(hi)})"

    def figure(self, path: str) -> str:
        """The figure with its caption, or a note that the run did not log it."""
        policy = (
            "the recommended policy" if self.verdict == "go_targeted" else "the per-customer policy"
        )
        alt, caption = (
            t.format(metric=self.primary, level=self.level, policy=policy)
            for t in _FIGURE_TEXT[path]
        )
        data = self.figures.get(path)
        if not data:
            return f'<p class="small">Figure not logged with this run: {_e(alt)}.</p>'
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (
            f'<figure><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )


def _is(row: _Row, what: str) -> str:
    """Plain reading of a profit interval."""
    _, lo, hi = (_get(row, k) for k in _KEYS[what])
    if _ok(lo) and lo > 0:
        return "it pays for itself"
    if _ok(hi) and hi < 0:
        return "it loses money"
    return "it is not shown to pay or to lose money (the interval spans zero)"


# --- sections -----------------------------------------------------------------------------------
