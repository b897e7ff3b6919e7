"""A self-contained HTML decision memo for one experiment run.

:func:`render_memo` turns a run's summary document, its spec and its figures into one
HTML page that a reviewer who has never seen the spec can read: the verdict first, then
whether the campaign raised value, for which segments, whether it paid for itself, whom
to treat next, and the caveats. The page carries its own style and images (PNG data
URIs); it has no script and names no external resource.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = ["MEMO_FIGURES", "render_memo"]

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
_NA = "not estimated"
_ALL = "All customers"

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;
 max-width:1040px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h3{font-size:16px;margin:22px 0 6px}
h2{font-size:21px;margin:36px 0 8px;border-bottom:2px solid #d8dee4;padding-bottom:4px}
.kicker{color:#57606a;text-transform:uppercase;letter-spacing:.06em;font-size:12px}
blockquote{margin:8px 0 12px;padding:6px 14px;border-left:4px solid #8c959f;background:#f6f8fa}
dl{display:grid;grid-template-columns:170px 1fr;gap:3px 14px;margin:10px 0}
dt{color:#57606a}dd{margin:0}
#verdict{margin:18px 0;padding:14px 18px;border-radius:8px;border:2px solid}
#verdict .word{font-size:22px;font-weight:700;margin-bottom:6px}
#verdict.go,#verdict.go_targeted{background:#e8f6ec;border-color:#2da44e}
#verdict.no_go{background:#fdecea;border-color:#cf222e}
#verdict.inconclusive,#verdict.unknown{background:#fff8e1;border-color:#bf8700}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13.5px;width:100%;
 font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td code{white-space:nowrap}
.ci{color:#57606a;font-size:12px;white-space:nowrap}
span.go{color:#1a7f37;font-weight:600}span.no_go{color:#cf222e;font-weight:600}
span.inconclusive{color:#9a6700;font-weight:600}.small,figcaption{color:#57606a;font-size:13px}
figure{margin:14px 0;padding:10px;border:1px solid #d8dee4;border-radius:6px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
code{background:#f6f8fa;padding:1px 4px;border-radius:3px;font-size:13px}
.digest{overflow-wrap:anywhere}li{margin-bottom:6px}
"""


_KEYS = {  # a quantity -> the keys of its estimate and interval in a summary row
    "estimate": ("estimate", "ci_low", "ci_high"),
    "per_customer": ("per_customer", "ci_low", "ci_high"),
    "qini": ("qini", "ci_low", "ci_high"),
    "rule_total": ("expected_incremental_profit", "ci_low", "ci_high"),
    "total": ("expected_incremental_profit", "total_ci_low", "total_ci_high"),
    "profit": ("incremental_profit", "profit_ci_low", "profit_ci_high"),
    "cost": ("cost_per_customer", "cost_ci_low", "cost_ci_high"),
    "roi": ("roi", "roi_ci_low", "roi_ci_high"),
    "break_even": ("break_even_uplift", "break_even_ci_low", "break_even_ci_high"),
    "lift": ("lift", "lift_ci_low", "lift_ci_high"),
    "difference": ("difference", "difference_ci_low", "difference_ci_high"),
    "gain": ("gain_over_treat_all", "gain_ci_low", "gain_ci_high"),
    "rule_sum": ("total", "total_ci_low", "total_ci_high"),
    "raw": ("unwinsorized_estimate", "unwinsorized_ci_low", "unwinsorized_ci_high"),
}

_Row = Mapping[str, Any]
_Column = tuple[str, Callable[[_Row], str]]


# --- formatting: every helper returns HTML-safe text --------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _c(value: Any) -> str:
    """A name from the spec or the data (arm, metric, column), escaped, in code style."""
    return f"<code>{_e(value)}</code>"


def _ok(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, digits: int = 2) -> str:
    """A number with thousands separators, or 'not estimated'."""
    return f"{value:,.{digits}f}" if _ok(value) else _NA


def _int(value: Any) -> str:
    return _num(value, 0)


def _pct(value: Any, digits: int = 1) -> str:
    return f"{value * 100:,.{digits}f}%" if _ok(value) else _NA


def _pp(value: Any) -> str:
    """A difference of two shares, in percentage points."""
    return f"{value * 100:,.{2 if abs(value) < 0.01 else 1}f} pp" if _ok(value) else _NA


def _p(value: Any) -> str:
    if not _ok(value):
        return "not computed"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"


def _about(value: Any) -> str:
    """A count to two significant figures: '~13,000'."""
    if not _ok(value) or value <= 0:
        return _NA
    return f"~{round(value, -max(math.floor(math.log10(value)) - 1, 0)):,.0f}"


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _rows(data: Any) -> list[_Row]:
    return [r for r in data if isinstance(r, Mapping)] if isinstance(data, list) else []


def _neg(value: Any) -> float | None:
    return -value if _ok(value) else None


# --- HTML builders ------------------------------------------------------------------------------


def _f(key: str, fmt: Callable[[Any], str] = _e) -> Callable[[_Row], str]:
    """The cell of a column showing one key of the row."""
    return lambda r: fmt(r.get(key))


def _table(rows: Iterable[_Row], *columns: _Column, ident: str = "") -> str:
    """A table of one row per mapping; a column is its plain-text title and its HTML cell."""
    attr = f' id="{_e(ident)}"' if ident else ""
    head = "".join(f"<th>{_e(title)}</th>" for title, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r)}</td>" for _, cell in columns) + "</tr>\n" for r in rows
    )
    return f"<table{attr}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def _section(ident: str, title: str, parts: Iterable[str]) -> str:
    body = "\n".join(p for p in parts if p)
    return f'<section id="{ident}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _para(text: str) -> str:
    return f"<p>{text}</p>" if text else ""


def _ul(items: Iterable[str]) -> str:
    return "<ul>\n" + "".join(f"<li>{i}</li>\n" for i in items if i) + "</ul>"


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


def _header(m: _Memo) -> str:
    s, spec = m.summary, m.spec
    assign = s.get("assignment") or {}
    counts: Mapping[str, Any] = assign.get("counts") or {}
    control = assign.get("control") or _get(spec, "assignment", "control")
    shares = _get(spec, "assignment", "arms") or assign.get("expected_shares") or {}
    total = sum(v for v in counts.values() if _ok(v))
    arms = []
    for arm in dict.fromkeys([*shares, *counts]):
        share = shares[arm] if arm in shares else (counts[arm] / total if total else None)
        role = " — the control (holdout): not contacted, the yardstick" if arm == control else ""
        arms.append(f"{_c(arm)}: {_pct(share, 0)}, {_int(counts.get(arm))} customers{role}")
    how = (
        "read from the data (the experiment ran before; not randomised by this tool)"
        if assign.get("method") == "observed"
        else "random, by a salted hash of the customer id"
    )
    eligible, metric = _get(spec, "population", "eligible"), m.primary
    window = _get(spec, "outcomes", "window_days")
    kind = _get(spec, "outcomes", "metrics", metric, "kind")
    facts = {
        "Hypothesis kind": _e(str(s.get("hypothesis_kind", "")).replace("_", " ")),
        "Owner": _e(_get(spec, "hypothesis", "owner") or "not named"),
        "Arms": "<br>".join(arms) or _NA,
        "Assignment": _e(how),
        "Eligible": (_c(eligible) if eligible else "everyone in the population")
        + f": {_int(s.get('n_eligible'))} of {_int(s.get('n_population'))} customers",
        "Global holdout": f"{_int(assign.get('global_holdout'))} eligible customers kept out "
        "of every CRM campaign, to measure the programme as a whole"
        if assign.get("global_holdout")
        else "none (no customer is kept out of every campaign)",
        "Outcome window": f"{_int(window)} days after launch" if _ok(window) else _NA,
        "Primary metric": f"{_c(metric)} ({_e(kind or 'kind unknown')}), per customer",
        "Run": f"MLflow run {_c(s.get('mlflow_run_id') or 'none')}, launched "
        f"{_e(assign.get('launched_at') or 'at a time not recorded')}",
        "Spec digest": f'<code class="digest">{_e(s.get("spec_digest", ""))}</code>',
        "Package": f"uplift {_e(s.get('uplift_version', ''))}",
    }
    decision, verdict = s.get("decision") or {}, m.verdict
    word = _VERDICTS.get(verdict, f"Verdict: {verdict or 'none'}")
    links = ["Value", "Segments", "Economics", "Targeting", "Caveats"]
    cls = verdict if verdict in _VERDICTS else "unknown"
    return (
        f'<header>\n<div class="kicker">Decision memo</div>\n<h1>{_e(s.get("experiment", ""))}'
        f"</h1>\n<blockquote>{_e(_get(spec, 'hypothesis', 'statement') or 'No statement.')}"
        f'</blockquote>\n<div id="verdict" class="{cls}"><div class="word">{_e(word)}</div>'
        f"<div>{_e(decision.get('reason') or 'No reason recorded.')}</div></div>\n"
        f'<p class="small">Reading the numbers: a {m.level} confidence interval (CI) is the range '
        "of effects the data are compatible with; when it excludes zero the effect is unlikely "
        "to be chance. <em>Out of fold</em>: each customer is scored by a model that never saw "
        "them. <em>Doubly robust</em>: a profit estimate that combines a model's prediction with "
        "the customer's actual outcome; with randomised arms it stays unbiased even when the "
        "model is wrong. Money is in the currency of the revenue data.</p>\n<dl>"
        + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts.items())
        + "</dl>\n<nav>"
        + " ".join(f'<a href="#{t.lower()}">{i}. {t}</a>' for i, t in enumerate(links, 1))
        + "</nav>\n</header>"
    )


def _method(m: _Memo, r: _Row) -> str:
    text = _e(_METHODS.get(str(r.get("method")), r.get("method") or _NA))
    if r.get("adjusted_for"):
        text += f" on {_c(r['adjusted_for'])}"
        if _ok(r.get("variance_reduction")):
            text += f", variance {_pct(r['variance_reduction'])} lower"
    if _ok(r.get("winsorized_at")):
        raw = m.ci(r, "raw", m.fmt(r.get("metric")))
        text += f"; capped at {_num(r['winsorized_at'])}, uncapped {raw}"
    return text


def _effects_table(m: _Memo, rows: list[_Row], ident: str) -> str:
    def mean(r: _Row, key: str) -> str:
        return (_pct if m.fmt(r.get("metric")) is _pp else _num)(r.get(key))

    return _table(
        rows,
        ("Arm", _f("arm", _c)),
        ("Metric", _f("metric", _c)),
        ("Control → arm mean", lambda r: f"{mean(r, 'mean_control')} → {mean(r, 'mean_treated')}"),
        (f"Effect ({m.level} CI)", lambda r: m.ci(r, "estimate", m.fmt(r.get("metric")), True)),
        ("Relative lift", lambda r: m.ci(r, "lift", _pct, True)),
        ("p-value", _f("p_value", _p)),
        (
            "Customers (arm / control)",
            lambda r: f"{_int(r.get('n_treated'))} / {_int(r.get('n_control'))}",
        ),
        ("Method", lambda r: _method(m, r)),
        ident=ident,
    )


def _value(m: _Memo) -> str:
    s, metric, window = m.summary, m.primary, _get(m.spec, "outcomes", "window_days")
    effects, programme = _rows(s.get("effects")), _rows(s.get("programme"))
    readings = []
    for r in (r for r in effects if r.get("metric") == metric):
        est, lo, hi = (r.get(k) for k in _KEYS["estimate"])
        sure = (
            "the interval excludes zero, so this is unlikely to be chance"
            if _ok(lo) and _ok(hi) and (lo > 0 or hi < 0)
            else "the interval includes zero, so the data cannot tell it from no effect"
        )
        lift = f" (a relative lift of {_pct(r.get('lift'))})" if _ok(r.get("lift")) else ""
        verb = "raised" if _ok(est) and est >= 0 else "changed"
        readings.append(
            f"Offering {_c(r.get('arm'))} {verb} {_c(metric)} by "
            f"{m.ci(r, 'estimate', m.fmt(metric))} per customer over the {_e(window)}-day "
            f"window{lift}; {sure}."
        )
    parts = [
        _para(" ".join(readings) or f"The effect on {_c(metric)} is {_NA}."),
        "<h3>Every arm on every metric</h3>",
        _para(
            "Each treatment arm against the control. Effects on binary (0/1) metrics are in "
            "percentage points (pp), the others in the metric's unit per customer. Intervals "
            "use robust (HC2) standard errors (the delta method for a ratio of two metrics); "
            "a regression-adjusted effect uses each customer's value before launch to remove "
            "noise without biasing the effect (Lin's estimator, akin to CUPED)."
        ),
        _effects_table(m, effects, "effects-table") if effects else _para(f"Effects {_NA}."),
        "<h3>The CRM programme as a whole</h3>",
        _para(
            "Everyone in the experiment, whatever their arm, against the global holdout "
            "(eligible customers kept out of every campaign)."
        )
        + _effects_table(m, programme, "programme-table")
        if programme
        else _para(f"Programme effect {_NA}: the run has no global holdout."),
        "<h3>Did customers move up RFM levels?</h3>",
        _migration(m),
    ]
    return _section("value", "1. Did the campaign raise value?", parts)


def _migration(m: _Memo) -> str:
    moves = _get(m.summary, "migration", "moves")
    if not isinstance(moves, Mapping):
        return _para(
            f"RFM migration {_NA}: the spec names no end-of-window recency, frequency and "
            "monetary columns (value.migration)."
        )
    names = {"R": "recency", "F": "frequency", "M": "monetary value"}
    return (
        _para(
            "Levels run from 1 (lowest) up. Each row is the share of customers who ended the "
            "window at least one level above their level at launch, in the arm and in the "
            f"control, and the difference ({_e(moves.get('method', ''))} interval); launch "
            "level 'all' pools every level."
        )
        + _table(
            _rows(moves.get("rows")),
            (
                "Dimension",
                lambda r: (
                    f"{_e(r.get('dimension'))} ({_e(names.get(str(r.get('dimension')), ''))})"
                ),
            ),
            ("Launch level", _f("launch_level")),
            ("Arm", _f("arm", _c)),
            (
                "Moved up: arm vs control",
                lambda r: f"{_pct(r.get('share_treated'))} vs {_pct(r.get('share_control'))}",
            ),
            (f"Difference ({m.level} CI)", lambda r: m.ci(r, "estimate", _pp, True)),
            ("p-value", _f("p_value", _p)),
        )
        + m.figure("figures/migration.png")
    )


def _decision(r: _Row) -> str:
    decision = str(r.get("decision", ""))
    text = f'<span class="{_e(decision)}">{_e(decision.replace("_", " "))}</span>'
    if decision == "inconclusive" and _ok(r.get("n_to_settle")):
        need = _about(r["n_to_settle"])
        text += f'<br><span class="small">would need {need} customers to settle</span>'
    return text


def _segments(m: _Memo) -> str:
    se, value = m.summary.get("segment_effects") or {}, _c(m.value_metric)
    tests = _rows(se.get("rows"))
    status = Counter(str(r.get("status")) for r in tests)
    unclear = [
        f"{_e(r.get('segment'))} / {_c(r.get('arm'))} / {_c(r.get('metric'))} "
        f"({_e(str(r.get('status')).replace('_', ' '))})"
        for r in tests
        if r.get("status") not in ("positive", "negative")
    ]
    corr = str(se.get("correction", ""))
    counts = ", ".join(f"{n} {_e(k.replace('_', ' '))}" for k, n in sorted(status.items()))
    table = _table(
        _rows(m.summary.get("segments")),
        ("Segment", _f("segment")),
        ("Arm", _f("arm", _c)),
        ("Customers", _f("n", _int)),
        (
            f"Effect on {m.primary} ({m.level} CI)",
            lambda r: m.ci(r, "estimate", m.fmt(m.primary), True),
        ),
        ("Incremental CLV", _f("incremental_clv", _num)),
        ("Cost per customer", _f("cost_per_customer", _num)),
        (f"Incremental profit per customer ({m.level} CI)", lambda r: m.ci(r, "profit", cell=True)),
        ("ROI", _f("roi", _pct)),
        ("Decision", _decision),
        ident="segment-table",
    )
    parts = [
        _para(
            "Each segment, arm and metric is tested against the control. Correction for "
            f"multiple testing: {_e(_CORRECTIONS.get(corr, corr or 'unknown'))}, over a family "
            f"of {_int(se.get('family_size'))} tests; a segment with fewer than "
            f"{_int(se.get('min_segment_size'))} customers in the arm or the control is not "
            f"tested. Results: {counts or 'no tests'}."
        ),
        _para("Not clearly positive or negative after correction: " + "; ".join(unclear) + ".")
        if unclear
        else "",
        m.figure("figures/segment_forest.png"),
        "<h3>Value and profit per segment</h3>",
        _para(
            f"Effect on {_c(m.primary)} per customer (arm minus control); incremental CLV is "
            + ("that effect" if m.value_metric == m.primary else f"the effect on {value}")
            + " as lifetime profit; incremental profit is CLV minus the cost per customer "
            "(contact, offer and the fixed cost divided over every customer of the "
            "experiment); ROI is profit over cost. Customers: arm and control together. The "
            "decision reads the plain interval of the profit, not corrected for multiple testing."
        ),
        table,
    ]
    return _section("segments", "2. For which segments?", parts)


def _offer_text(m: _Memo, offer: Any) -> str:
    kind, get = _get(offer, "kind"), (lambda key: _get(offer, key))
    if kind == "trial_lessons":
        price, cost, uptake = get("price"), get("delivery_cost"), get("uptake_metric")
        who = (
            f"uptake measured by {_c(uptake)}: only customers who take the lessons cost it"
            if uptake
            else "no uptake metric: every treated customer is charged"
        )
        net = cost - price if _ok(price) and _ok(cost) else None
        return (
            f"trial lessons: delivery cost {_num(cost)} per lesson pack taken, price "
            f"{_num(price)} paid by the customer (net {_num(net)} per pack); {who}"
        )
    if kind == "feature_unlock":
        per_day, days = get("serving_cost_per_day"), get("days")
        each = per_day * days if _ok(per_day) and _ok(days) else None
        return (
            f"feature unlock: serving cost {_num(per_day)} per day for {_int(days)} days, "
            f"{_num(each)} per treated customer"
        )
    if kind == "lower_check_offer":
        return (
            f"lower check: {_pct(get('discount'))} off every order in the window (on "
            f"{_c(get('revenue_metric') or m.value_metric)}), including orders the customer "
            "would have placed anyway"
        )
    if kind == "channel":
        return f"channel cost {_num(get('cost'))} per treated customer"
    return "no cost beyond the contact" if offer is None else _e(kind)


def _economics(m: _Memo) -> str:
    s, eco = m.summary, m.spec.get("economics") or {}
    value, clv = m.spec.get("value") or {}, _get(m.spec, "value", "clv") or {}
    offers, baseline = eco.get("offers"), s.get("baseline_clv")
    segments = value.get("segments", "rfm")
    costs = [
        f"Contact cost: {_num(eco.get('contact_cost', 0.0))} per treated customer",
        *(
            [f"Offer of {_c(a)}: {_offer_text(m, o)}" for a, o in offers.items()]
            if isinstance(offers, Mapping)
            else [f"Offer (every treatment arm): {_offer_text(m, eco.get('offer'))}"]
        ),
        f"Fixed cost: {_num(eco.get('fixed_cost', 0.0))} once for the campaign; per customer, "
        "it is divided over every customer of the experiment (all its eligible customers, "
        "treated or in the control)",
    ]
    persistence = (
        "that share of the window effect is assumed to repeat in each following window"
        if clv.get("persistence")
        else "the effect counts for the outcome window only, it is not assumed to repeat"
    )
    assumptions = [
        f"Value metric {_c(m.value_metric)}: a unit is worth {_num(value.get('unit_value', 1.0))}",
        f"Margin: {_pct(clv.get('margin', 1.0), 0)} of that value is profit",
        f"CLV horizon {_num(clv.get('horizon_months', 12.0), 0)} months, discounted at "
        f"{_pct(clv.get('annual_discount_rate', 0.1), 0)} a year",
        f"Persistence {_pct(clv.get('persistence', 0.0), 0)}: {persistence}",
        "Segments: "
        + (
            "RFM segments named from recency, frequency and monetary scores"
            if segments == "rfm"
            else f"the values of column {_c(segments)}"
        ),
        "Baseline CLV (value without the campaign): "
        + (
            f"{_num(baseline.get('mean'))} per customer ({_e(baseline.get('method'))} method)"
            if isinstance(baseline, Mapping)
            else f"{_NA} (the spec sets no value.baseline_clv)"
        ),
    ]
    overall = list(_overall(m).values())
    fmt = m.fmt(m.primary)
    treat_all = list(_treat_all(m).values())
    readings = [
        f"Treating everyone with {_c(r.get('arm'))}: {m.ci(r, 'profit')} per customer net of "
        f"every cost: {_is(r, 'profit')}."
        for r in overall
    ]
    policy = s.get("policy") or {}
    if _ok(policy.get("per_customer")):
        readings.append(
            f"Treating only the customers the model picks (section 4): "
            f"{m.ci(policy, 'per_customer')} per customer net of every cost: "
            f"{_is(policy, 'per_customer')}."
        )
    plain = _table(
        overall,
        ("Arm", _f("arm", _c)),
        (f"Effect on {m.primary}", lambda r: m.ci(r, "estimate", fmt, True)),
        (
            f"Break-even effect on {m.value_metric}",
            lambda r: m.ci(r, "break_even", m.fmt(m.value_metric), True),
        ),
        ("Cost per customer", lambda r: m.ci(r, "cost", cell=True)),
        ("ROI", lambda r: m.ci(r, "roi", _pct, True)),
        ("Incremental profit per customer", lambda r: m.ci(r, "profit", cell=True)),
        ("Total", _f("total_incremental_profit", _int)),
    )
    itemized = _table(
        [r for r in overall if _ok(r.get("offer_cost"))],
        ("Arm", _f("arm", _c)),
        ("Contact", _f("contact_cost", _num)),
        ("Offer, on what customers did", _f("offer_cost", _num)),
        ("Fixed cost's share", _f("fixed_cost_share", _num)),
        ("Cost per treated customer", _f("cost_per_customer", _num)),
    )
    doubly = _table(
        treat_all,
        ("Treat everyone with", lambda r: _c(r["arm"])),
        (f"Profit per customer ({m.level} CI)", lambda r: m.ci(r, "per_customer", cell=True)),
        ("Total", lambda r: m.ci(r, "rule_sum", _int, True)),
    )
    parts = [
        _para(" ".join(readings)),
        "<h3>What it costs</h3>",
        _ul(costs),
        _para(
            "What that came to per treated customer in the experiment, all customers "
            "together (the offer's cost on the uptake and purchases the arm's customers had):"
        )
        + itemized
        if any(_ok(r.get("offer_cost")) for r in overall)
        else "",
        "<h3>How a change in behaviour becomes money</h3>",
        _ul(assumptions),
        "<h3>Treating every eligible customer</h3>",
        _para(
            f"The plain comparison of each arm with the control over all customers, with "
            f"{m.level} CIs. The break-even effect is the effect on {_c(m.value_metric)} per "
            "customer at which the arm exactly pays its cost; the total is over the eligible "
            "customers, net of the fixed cost."
        )
        + plain
        if overall
        else _para(f"Treat-all profit {_NA}: no arm could be compared with the control."),
        _para(
            "The same question by the doubly robust estimator the targeting uses (section 4), "
            "per customer of the experiment and before the fixed cost. It uses the models' "
            "predictions to remove noise, so it can differ from the plain comparison."
        )
        + doubly
        if treat_all
        else "",
    ]
    return _section("economics", "3. Did it pay for itself?", parts)


def _overall(m: _Memo) -> dict[str, _Row]:
    """The 'All customers' segment row of each arm: treating everyone, net of every cost."""
    return {
        str(r.get("arm")): r for r in _rows(m.summary.get("segments")) if r.get("segment") == _ALL
    }


def _treat_all(m: _Memo) -> dict[str, _Row]:
    """The doubly robust value of treating everyone with each arm (before the fixed cost),
    with the interval of its total over the experiment's customers."""
    out: dict[str, _Row] = {}
    for r in _rows(_get(m.summary, "targeting", "rows")):
        kind, _, arm = str(r.get("rule", "")).partition(":")
        if kind == "treat_all":
            n = sum(v for v in (r.get("arms") or {}).values() if _ok(v))
            lo, hi = (r.get(k) for k in _KEYS["per_customer"][1:])
            bounds = {"total_ci_low": lo * n if _ok(lo) else None}
            bounds["total_ci_high"] = hi * n if _ok(hi) else None
            out[arm] = {**r, "arm": arm, **bounds}
    return out


def _arm_counts(arms: Any) -> str:
    if not isinstance(arms, Mapping):
        return _NA
    parts = [f"{_int(n)} with {_c(a)}" for a, n in arms.items() if a != "none" and n]
    return ", ".join(parts) + (f"; {_int(arms['none'])} untreated" if arms.get("none") else "")


def _targeting(m: _Memo) -> str:
    policy, tg = m.summary.get("policy") or {}, m.summary.get("targeting") or {}
    n = sum(v for v in (policy.get("arms") or {}).values() if _ok(v))
    budget = {k: v for k, v in (_get(m.spec, "decision", "budget") or {}).items() if _ok(v)}
    limits = " and ".join(
        f"at most {fmt(budget[key])} {what}"
        for key, fmt, what in (("max_treated", _int, "treated"), ("max_spend", _num, "spent"))
        if key in budget
    )
    rule = policy.get("segment_rule") or {}
    treated = [
        f"{_e(t.get('segment'))} with {_c(t.get('arm'))} ({_int(t.get('customers'))} customers)"
        for t in _rows(rule.get("treated"))
    ]
    by_seg = _rows(policy.get("by_segment"))
    arms = [a for a in dict.fromkeys(a for r in by_seg for a in r.get("arms") or {}) if a != "none"]
    counts = [(a, lambda r, a=a: _int((r.get("arms") or {}).get(a, 0))) for a in [*arms, "none"]]
    segments = _table(
        by_seg,
        ("Segment", _f("segment")),
        ("Customers", _f("customers", _int)),
        ("Share treated", lambda r: _pct(r.get("treated_share"), 0)),
        *counts[:-1],
        ("Untreated", counts[-1][1]),
    )
    share = _pct(policy.get("treat_share"), 0)
    opening = {  # how the policy is presented, by verdict
        "go_targeted": f"<strong>Recommendation: treat {share} of customers</strong>",
        "go": f"The alternative examined, the per-customer policy, would treat {share} of "
        "customers",
        "no_go": f"Examined, not recommended: the per-customer policy would treat {share} of "
        "customers",
        "inconclusive": f"Best current guess, not yet a recommendation: the per-customer "
        f"policy would treat {share} of customers",
    }.get(m.verdict, f"The per-customer policy would treat {share} of customers")
    parts = [
        _recommendation(m),
        _para(
            f"{opening}, each with the arm of highest predicted net value: "
            f"{_arm_counts(policy.get('arms'))}. Expected profit net of every cost, the fixed "
            f"cost included: {m.ci(policy, 'per_customer')} per customer, "
            f"{m.ci(policy, 'total', _int)} over the experiment's {_int(n)} customers (doubly "
            f'robust, out of fold).<br><span class="small">Rule: {_e(policy.get("rule", ""))}.'
            "</span>"
        )
        if _ok(policy.get("per_customer"))
        else _para(
            f"Per-customer policy {_NA}: no uplift model was fitted, so the verdict rests on "
            "the segment rule below."
        ),
        _para(
            f"Budget: {limits} (scaled to the experiment's share of the eligible base)."
            if limits
            else "Budget: no limit was set in the spec."
        ),
        _gain(m, policy, tg),
        "<h3>Whom the policy treats, by segment</h3>" + segments if by_seg else "",
        _para(
            "The simpler alternative, treating whole segments whose profit interval is above "
            f"zero, treats {'; '.join(treated) or 'no segment'}: "
            f"{_pct(rule.get('treat_share'), 0)} of customers, "
            f"{m.ci(rule, 'rule_total', _int)} in total. It is chosen and valued on the same "
            "data, so it flatters itself."
        ),
        m.figure("figures/profit_curve.png"),
        *_models(m),
    ]
    return _section("targeting", "4. Whom to treat next, and the expected profit", parts)


def _gain(m: _Memo, policy: _Row, tg: _Row) -> str:
    """The policy against the best treat-all rule, compared on the same customers."""
    if not _ok(tg.get("gain_over_treat_all")):
        return ""
    lo, hi, own = tg.get("gain_ci_low"), tg.get("gain_ci_high"), policy.get("ci_low")
    if _ok(lo) and lo > 0:
        reading = "the gain is clear of zero"
        reading += ", but the policy's own profit interval is not" if _ok(own) and own <= 0 else ""
    elif _ok(hi) and hi < 0:
        reading = "it does worse"
    else:
        reading = "targeting does not demonstrably gain (the interval includes zero)"
    return _para(
        f"Against treating everyone with {_c(tg.get('best_treat_all'))} (the best treat-all "
        f"arm), the per-customer policy gains {m.ci(tg, 'gain')} per customer, compared on the "
        f"same customers: {reading}."
    )


def _recommendation(m: _Memo) -> str:
    """What to do next, as the verdict says; the go-targeted policy speaks for itself."""
    if m.verdict == "go":
        arm = str(_get(m.summary, "decision", "best_arm") or "")
        overall, dr = _overall(m).get(arm), _treat_all(m).get(arm)
        return _para(
            f"<strong>Recommendation: treat every eligible customer with {_c(arm)}</strong>."
            + (
                f" Net of every cost, the fixed cost included, that earns {m.ci(overall, 'profit')}"
                f" per customer in the plain comparison with the control (section 3): "
                f"{_is(overall, 'profit')}."
                if overall
                else ""
            )
            + (
                " By the doubly robust estimator the targeting uses, treating everyone with it "
                f"is worth {m.ci(dr, 'per_customer')} per customer before the fixed cost, "
                f"{m.ci(dr, 'rule_sum', _int)} over the experiment's customers."
                if dr
                else ""
            )
        )
    if m.verdict == "no_go":
        return _para(
            "<strong>Recommendation: treat no one</strong>: the campaign does not pay for "
            "itself. The per-customer policy below is shown only as what was examined."
        )
    if m.verdict == "inconclusive":
        settle = any(
            r.get("decision") == "inconclusive" and _ok(r.get("n_to_settle"))
            for r in _rows(m.summary.get("segments"))
        )
        return _para(
            "<strong>No decision yet: gather more data.</strong> The data cannot tell whether "
            "the campaign pays for itself"
            + (
                '; the caveats (<a href="#caveats">section 5</a>) give the customers that '
                "would settle each unsettled profit."
                if settle
                else "; more customers would narrow the intervals."
            )
        )
    if m.verdict == "go_targeted" and not _ok(_get(m.summary, "policy", "per_customer")):
        return _para(
            "<strong>Recommendation: treat the segments whose profit interval is above "
            "zero</strong> (the segment rule below)."
        )
    return ""


def _models(m: _Memo) -> list[str]:
    sel = m.summary.get("model_selection") or {}
    if not m.summary.get("models") or not sel.get("chosen"):
        return ["<h3>Model evidence</h3>", _para(f"{_NA}: no uplift model was fitted.")]

    def three(x: Any) -> str:
        return _num(x, 3)

    def name(mark: str) -> _Column:
        return "Learner", lambda r: _e(r.get("name")) + (f" ({mark})" if r.get("chosen") else "")

    def versus(fmt: Callable[[Any], str] = _num) -> Callable[[_Row], str]:
        return lambda r: "—" if r.get("chosen") else m.ci(r, "difference", fmt, True)

    policies, learners = _rows(sel.get("policies")), _rows(sel.get("learners"))
    boot = f"Intervals by bootstrap ({_int(sel.get('n_boot'))} replicates)."
    chosen = (
        f"Chosen learner: {_c(sel.get('chosen'))}; the rule: "
        f"{_e(sel.get('criterion', 'not recorded'))}."
    )
    return [
        "<h3>Model evidence</h3>",
        _para(
            f"{chosen} Each learner's own policy, valued out of fold before the fixed cost, "
            "and its difference to the chosen one on the same customers:"
        )
        + _table(
            policies,
            name("chosen"),
            (f"Profit per customer ({m.level} CI)", lambda r: m.ci(r, "per_customer", cell=True)),
            ("Share treated", lambda r: _pct(r.get("treated_share"), 0)),
            ("Difference to the chosen", versus()),
        )
        if len(policies) > 1
        else _para(f"{chosen} One learner was fitted, so there is no comparison of learners."),
        _para(
            "How well each learner ranks customers: the Qini score (higher is better, 0 is "
            f"random targeting); the leader is {_c(sel.get('qini_leader'))}. {boot}"
        )
        + _table(
            learners,
            name("leader"),
            (f"Qini ({m.level} CI)", lambda r: m.ci(r, "qini", three, True)),
            ("Difference to the leader", versus(three)),
        )
        if len(learners) > 1
        else _para(
            f"How well {_c(learners[0].get('name'))} ranks customers: its Qini score is "
            f"{m.ci(learners[0], 'qini', three)} (higher is better, 0 is random targeting). " + boot
        )
        if learners
        else "",
        m.figure("figures/qini.png"),
        m.figure("figures/calibration.png"),
    ]


def _caveats(m: _Memo) -> str:
    s, a = m.summary, m.summary.get("assignment") or {}
    se, segs = s.get("segment_effects") or {}, _rows(s.get("segments"))
    metric, fmt, items = m.primary, m.fmt(m.primary), []
    if _ok(a.get("srm_p_value")):
        alert = (
            "ALERT: the arm sizes differ from the design more than chance allows, so the "
            "assignment may be broken and every estimate is suspect"
            if a.get("srm_alert")
            else "no alert: the arm sizes match the design"
        )
        items.append(f"Sample-ratio mismatch: p = {_p(a['srm_p_value'])}, {alert}.")
    else:
        items.append(
            f"Sample-ratio mismatch: {_NA}. The assignment was observed in the data, not "
            "randomised by this tool, so there is no design to check the arm sizes against; "
            "every estimate assumes the arms were as good as random."
        )
    flagged = ", ".join(
        f"{_c(f.get('feature'))} in {_c(f.get('arm'))} ({_num(f.get('smd'))})"
        for f in _rows(a.get("balance_flagged"))
    )
    items.append(
        "Covariate balance: the largest standardized mean difference (SMD) of a feature "
        f"between an arm and the control is {_num(a.get('balance_max_abs_smd'), 3)} (above "
        f"0.1 is a warning); {f'flagged: {flagged}' if flagged else 'no feature is flagged'}."
    )
    power = f" with {_pct(se['power'], 0)} power" if _ok(se.get("power")) else ""
    for r in (r for r in _rows(s.get("effects")) if r.get("metric") == metric):
        est, mde = r.get("estimate"), r.get("detectable_effect")
        if _ok(est) and _ok(mde):
            items.append(
                f"Power, {_c(r.get('arm'))}: the smallest effect on {_c(metric)} this test "
                f"detects{power} is {fmt(mde)} per customer. The estimate is "
                f"{m.ci(r, 'estimate', fmt)}; its size, {fmt(abs(est))}, is "
                f"{'above' if abs(est) >= mde else 'below'} it. A true effect smaller than "
                f"{fmt(mde)} could be missed."
            )
    unsettled = [
        r for r in segs if r.get("decision") == "inconclusive" and _ok(r.get("n_to_settle"))
    ]
    if unsettled:
        items.append(
            "Profit not settled (its interval spans zero) in these rows; the customers (arm and "
            "control) that would settle a true profit equal to the estimate at 80% power:"
            + _table(
                unsettled,
                ("Segment", _f("segment")),
                ("Arm", _f("arm", _c)),
                ("Customers now", _f("n", _int)),
                ("Customers needed", _f("n_to_settle", _about)),
            )
        )
    decided = len([r for r in segs if _ok(r.get("incremental_profit"))])
    items.append(
        f"Multiple testing: the segment effects are corrected ({_e(se.get('correction', '?'))}"
        f", family of {_int(se.get('family_size'))} tests), but the go / no-go decisions on "
        f"segment profit are not: of {decided} rows, about {_num(decided * m.alpha, 1)} would "
        "show a go or a no-go by chance alone if none truly differed from break-even."
    )
    pols = sorted(
        _rows(_get(s, "model_selection", "policies")),
        key=lambda r: float(r["per_customer"]) if _ok(r.get("per_customer")) else -math.inf,
    )
    if len(pols) > 1:
        d, lo, hi = (pols[-2].get(k) for k in _KEYS["difference"])
        items.append(
            f"Winner's curse: {_c(pols[-1].get('name'))} was picked as the best of {len(pols)} "
            "learners on the same data, which flatters its profit estimate; its lead over "
            f"{_c(pols[-2].get('name'))} is {m.ci((_neg(d), _neg(hi), _neg(lo)))} per customer."
        )
    clv = _get(m.spec, "value", "clv") or {}
    margin = clv.get("margin", 1.0)
    money = (
        "The money rests on assumptions the experiment does not test: a margin of "
        f"{_pct(margin, 0)}, a CLV horizon of {_num(clv.get('horizon_months', 12.0), 0)} months, "
        f"persistence of {_pct(clv.get('persistence', 0.0), 0)} and the costs of section 3; "
        "the spec names no currency."
    )
    for r in _overall(m).values():
        cost, gain = r.get("cost_per_customer"), r.get("incremental_clv")
        if _ok(cost) and _ok(gain) and gain > 0 and _ok(margin):
            money += (
                f" Treating everyone with {_c(r.get('arm'))} breaks even at a margin of "
                f"{_pct(margin * cost / gain, 0)}."
            )
    items.append(money)
    return _section("caveats", "5. Caveats", [_ul(items)])


def render_memo(
    summary: Mapping[str, Any], spec: Mapping[str, Any], figures: Mapping[str, bytes]
) -> str:
    """A self-contained HTML decision memo for one experiment run.

    Parameters
    ----------
    summary : mapping
        The run's summary document (``summary.json``, schema
        ``uplift/schemas/summary.schema.json``). Sections may be missing or ``None``: the
        memo says what was not estimated instead.
    spec : mapping
        The experiment spec, ``ExperimentSpec.model_dump(mode="json", exclude_none=True)``.
    figures : mapping
        PNG bytes by artifact path (:data:`MEMO_FIGURES`); any may be absent, and other
        paths are ignored.

    Returns
    -------
    str
        One HTML document with inline style and images: no script, no external resource.
    """
    m = _Memo(summary, spec, figures)
    sections = [_value(m), _segments(m), _economics(m), _targeting(m), _caveats(m)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>Decision memo: {_e(summary.get('experiment', ''))}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n{_header(m)}\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )
