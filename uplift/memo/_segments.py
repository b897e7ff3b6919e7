"""Section 2: for which segments."""

from __future__ import annotations

from collections import Counter

from uplift.memo._context import _CORRECTIONS, _Memo
from uplift.memo._markup import (
    _about,
    _c,
    _e,
    _f,
    _int,
    _num,
    _ok,
    _para,
    _pct,
    _Row,
    _rows,
    _section,
    _table,
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
        (f"Incremental CLV ({m.level} CI)", lambda r: m.ci(r, "clv", cell=True)),
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
