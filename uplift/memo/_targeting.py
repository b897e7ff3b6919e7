"""Section 4: whom to treat next, and the expected profit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uplift.memo._context import _is, _Memo
from uplift.memo._economics import _arm_counts, _overall, _treat_all
from uplift.memo._markup import (
    _NA,
    _c,
    _Column,
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
)


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
    # runs logged before the summary recorded the screen's width screened at one, and
    # those before it recorded a margin chose the most valuable policy the screen kept
    recorded = sel.get("screen")
    width = recorded if _ok(recorded) else 1.0
    margin = sel.get("margin")
    rule = (
        f"of the others, the one that errs least is chosen unless another's policy earns "
        f"more than its policy by over {_standard_errors(margin)} of the difference"
        if _ok(margin) and margin > 0
        else "the most profitable of the others is chosen"
    )
    boot = f"Intervals by bootstrap ({_int(sel.get('n_boot'))} replicates)."
    chosen = (
        f"Chosen learner: {_c(sel.get('chosen'))}; the rule: "
        f"{_e(sel.get('criterion', 'not recorded'))}."
    )
    return [
        "<h3>Model evidence</h3>",
        _para(
            f"{chosen} Each learner's own policy, valued out of fold before the fixed cost, "
            "and its difference to the chosen one on the same customers. A learner whose "
            "predicted net values err (squared, against the same doubly robust scores) more "
            f"than {_standard_errors(width)} above the learner that errs least is screened "
            f"out; {rule}:"
        )
        + _table(
            policies,
            name("chosen"),
            (f"Profit per customer ({m.level} CI)", lambda r: m.ci(r, "per_customer", cell=True)),
            ("Share treated", lambda r: _pct(r.get("treated_share"), 0)),
            ("Difference to the chosen", versus()),
            ("Error above the least (± SE)", _excess_error),
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


def _standard_errors(width: float) -> str:
    """A width in words: "one standard error", "2 standard errors"."""
    return "one standard error" if width == 1 else f"{width:g} standard errors"


def _excess_error(row: _Row) -> str:
    """A learner's risk above the lowest, with its standard error, and whether the screen
    set the learner aside (rows of runs before the screen have no risk)."""
    difference, se = row.get("risk_difference"), row.get("risk_difference_se")
    if not _ok(difference):
        return "—"
    if difference == 0 and se == 0:
        return "least"
    text = f"{_num(difference)} ± {_num(se)}" if _ok(se) else _num(difference)
    return text + ("<br>screened out" if row.get("screened_out") else "")
