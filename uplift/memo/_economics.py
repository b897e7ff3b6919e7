"""Section 3: did it pay for itself, costs itemized."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uplift.memo._context import _ALL, _KEYS, _is, _Memo
from uplift.memo._markup import (
    _NA,
    _c,
    _e,
    _f,
    _get,
    _int,
    _num,
    _ok,
    _para,
    _pct,
    _Row,
    _rows,
    _section,
    _table,
    _ul,
)


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


def _worth(m: _Memo, value: Mapping[str, Any]) -> str:
    """What one unit of the value metric, or of each priced metric, is worth."""
    priced = value.get("metrics")
    if isinstance(priced, Mapping) and len(priced) > 1:
        terms = " + ".join(f"{_num(worth)} &times; {_c(name)}" for name, worth in priced.items())
        return f"Value metric {_c(m.value_metric)}: each customer's {terms}"
    unit = next(iter(priced.values())) if isinstance(priced, Mapping) and priced else None
    return (
        f"Value metric {_c(m.value_metric)}: a unit is worth "
        f"{_num(unit if unit is not None else value.get('unit_value', 1.0))}"
    )


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
        _worth(m, value),
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
