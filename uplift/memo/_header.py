"""The memo's header: what was tested, on whom, and the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uplift.memo._context import _VERDICTS, _Memo
from uplift.memo._markup import _NA, _c, _e, _get, _int, _ok, _pct


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
