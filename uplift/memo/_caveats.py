"""Section 5: the caveats."""

from __future__ import annotations

import math

from uplift.memo._context import _KEYS, _Memo
from uplift.memo._economics import _overall
from uplift.memo._markup import (
    _NA,
    _about,
    _c,
    _e,
    _f,
    _get,
    _int,
    _neg,
    _num,
    _ok,
    _p,
    _pct,
    _rows,
    _section,
    _table,
    _ul,
)


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
    pols = _rows(_get(s, "model_selection", "policies"))
    chosen = next((r for r in pols if r.get("chosen")), None)
    # the learners the chosen one was picked from: those the risk screen kept
    rivals = sorted(
        (r for r in pols if not r.get("chosen") and not r.get("screened_out")),
        key=lambda r: float(r["per_customer"]) if _ok(r.get("per_customer")) else -math.inf,
    )
    if chosen is not None and rivals:
        d, lo, hi = (rivals[-1].get(k) for k in _KEYS["difference"])
        if _ok(d) and d > 0:
            # a rival's policy scored more but did not clear the margin over the learner
            # that errs least: the chosen one is that learner, or one that did clear it
            why = (
                "its predicted net values err least"
                if chosen.get("risk_difference") == 0
                else "its policy clearly beat that of the learner whose net values err least"
            )
            items.append(
                f"Model choice: {_c(chosen.get('name'))} was kept because {why}, although "
                f"the policy of {_c(rivals[-1].get('name'))} scored {m.ci((d, lo, hi))} more "
                "per customer on the same data, a lead too small to tell from luck; the "
                "better-scoring policy's estimate is the more flattered of the two."
            )
        else:
            items.append(
                f"Winner's curse: {_c(chosen.get('name'))} was picked as the best of "
                f"{len(rivals) + 1} learners on the same data, which flatters its profit "
                f"estimate; its lead over {_c(rivals[-1].get('name'))} is "
                f"{m.ci((_neg(d), _neg(hi), _neg(lo)))} per customer."
            )
    items.extend(_purchases_caveats(s.get("rfm_from_purchases") or {}))
    items.extend(_unlock_caveats(m))
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


def _purchases_caveats(rfm: dict) -> list[str]:
    """What a reviewer must know when the segments' R, F and M at launch were not the ones
    frozen at launch, or the purchases file no longer gives them."""
    items = []
    if rfm.get("source") == "purchases file" and rfm.get("why_file"):
        items.append(
            f"Segments: R, F and M at launch (to {_e(rfm.get('as_of'))}) were scored from the "
            f"purchases file as it is now, not read from the launch snapshot: "
            f"{_e(rfm['why_file'])}. An edit of the history since launch would move customers "
            "between segments."
        )
    changed = rfm.get("changed_since_launch")
    if _ok(changed) and changed > 0:
        items.append(
            f"Segments: the purchases file now gives {_int(changed)} customers other R, F or M "
            "at launch than were frozen in the launch snapshot; the segments use the frozen "
            "values, and migration's end of the window reads the file as it is now."
        )
    return items


def _unlock_caveats(m: _Memo) -> list[str]:
    """A feature unlock valued on 0/1 outcomes only cannot see the upgrade revenue that
    customers who would have paid anyway hold back while the features are free."""
    economics = _get(m.spec, "economics") or {}
    offers = [economics.get("offer"), *(economics.get("offers") or {}).values()]
    if not any(isinstance(o, dict) and o.get("kind") == "feature_unlock" for o in offers):
        return []
    priced = _get(m.spec, "value", "metrics")
    names = list(priced) if isinstance(priced, dict) and priced else [m.value_metric]
    kinds = [_get(m.spec, "outcomes", "metrics", str(n), "kind") for n in names]
    if "continuous" in kinds:
        return []
    return [
        f"Delayed upgrades: the profit prices only 0/1 outcomes ({', '.join(map(_c, names))}). "
        "Customers who would have upgraded anyway and wait out the free days still upgrade, "
        "so the revenue they hold back meanwhile is in neither the effect nor the costs; "
        "value a revenue metric over the window to count it."
    ]
