"""The HTML decision memo: structure, numbers, figures, escaping and missing sections."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from uplift.memo import MEMO_FIGURES, render_memo

ODD = "<b>& Co"
VOID = {"br", "img", "meta", "link", "hr", "input"}


def _effect(arm: str, metric: str, est: float, lo: float, hi: float, **extra: Any) -> dict:
    row = {
        "arm": arm, "metric": metric, "kind": "mean", "estimate": est, "ci_low": lo,
        "ci_high": hi, "p_value": 0.0004, "std_error": 0.5, "method": "ols_hc2",
        "adjusted_for": "", "variance_reduction": 0.0, "lift": None, "lift_ci_low": None,
        "lift_ci_high": None, "detectable_effect": 2.5, "winsorized_at": None,
        "n_treated": 4000, "n_control": 2000, "mean_treated": 0.4, "mean_control": 0.0,
    }  # fmt: skip
    row.update(extra)
    return row


def _segment(name: str, n: int, profit: tuple, decision: str, **extra: Any) -> dict:
    row = {
        "segment": name, "arm": "trial", "n": n, "n_treated": n * 2 // 3,
        "n_control": n // 3, "eligible": n, "estimate": 7.3, "ci_low": 5.5, "ci_high": 9.08,
        "p_value": 0.001, "baseline_clv": None, "incremental_clv": 4.01, "clv_lift": None,
        "cost_per_customer": 3.72, "cost_ci_low": 3.67, "cost_ci_high": 3.76,
        "contact_cost": 0.04, "offer_cost": 3.66, "fixed_cost_share": 0.02,
        "incremental_profit": profit[0], "profit_se": 0.5, "profit_ci_low": profit[1],
        "profit_ci_high": profit[2], "roi": 0.08, "roi_ci_low": -0.18, "roi_ci_high": 0.34,
        "break_even_uplift": 6.76, "break_even_ci_low": 6.68, "break_even_ci_high": 6.83,
        "total_incremental_profit": 30262.47, "n_to_settle": None, "decision": decision,
        "reason": "incremental profit interval spans zero",
    }  # fmt: skip
    row.update(extra)
    return row


def _segment_effect(segment: str, status: str, est: float, lo: float, hi: float) -> dict:
    row = _effect("trial", "revenue", est, lo, hi, method="lin_hc2")
    del row["kind"]
    row.update(
        segment=segment, adjusted_for="revenue_pre_60d", unwinsorized_estimate=None,
        unwinsorized_ci_low=None, unwinsorized_ci_high=None, p_adjusted=0.004,
        level=0.0125, corrected_ci_low=lo - 1.0, corrected_ci_high=hi + 1.0, status=status,
    )  # fmt: skip
    return row


def make_summary() -> dict[str, Any]:
    """A small summary document: two arms (control, trial), three segment rows."""
    policy_arms = {"trial": 4200, "none": 1800}
    return {
        "experiment": "tiny-trial",
        "hypothesis_kind": "trial_lessons",
        "spec_digest": "ab" * 32,
        "uplift_version": "0.1.0",
        "mlflow_run_id": "run123",
        "tracking_uri": "sqlite:////tmp/x.db",
        "n_population": 12000,
        "n_eligible": 6300,
        "primary_metric": "revenue",
        "alpha": 0.05,
        "assignment": {
            "method": "hash",
            "control": "control",
            "counts": {"trial": 4000, "control": 2000},
            "expected_shares": {"control": 1 / 3, "trial": 2 / 3},
            "srm_p_value": 0.2077,
            "srm_alert": False,
            "global_holdout": 300,
            "version": 1,
            "launched_at": "2026-11-22T23:14:30+00:00",
            "balance_max_abs_smd": 0.0179,
            "balance_flagged": [],
        },
        "effects": [
            _effect("trial", "took_trial", 0.4068, 0.402, 0.4116),
            _effect(
                "trial",
                "revenue",
                7.32,
                5.546,
                9.094,
                method="lin_hc2",
                adjusted_for="revenue_pre_60d",
                variance_reduction=0.0107,
                lift=0.1469,
                lift_ci_low=0.1078,
                lift_ci_high=0.1859,
                mean_treated=57.15,
                mean_control=49.86,
            ),
        ],
        "programme": [_effect("crm_programme", "revenue", 6.63, 3.79, 9.47)],
        "segment_effects": {
            "correction": "holm",
            "family_size": 4,
            "min_segment_size": 200,
            "power": 0.8,
            "rows": [
                _segment_effect("Loyal", "positive", 9.1, 6.2, 12.0),
                _segment_effect(ODD, "inconclusive", 1.2, -3.1, 5.5),
            ],
        },
        "segments": [
            _segment(
                "All customers",
                6000,
                (0.2965, -0.6813, 1.2742),
                "inconclusive",
                n_to_settle=1357833.0,
            ),
            _segment("Loyal", 2500, (1.5791, 0.9083, 2.2486), "go"),
            _segment(ODD, 900, (-4.35, -7.29, -1.41), "no_go"),
        ],
        "models": [
            {
                "name": "t_learner",
                "arm": "trial",
                "metric": "revenue",
                "qini": 0.21,
                "auuc": 0.58,
                "uplift_at_k": 9.4,
                "k": 0.3,
                "chosen": True,
            }
        ],
        "model_selection": {
            "criterion": "the most profitable policy",
            "chosen": "t_learner",
            "qini_leader": "s_learner",
            "alpha": 0.05,
            "n_boot": 200,
            "importance": [],
            "policies": [
                {
                    "name": "s_learner",
                    "per_customer": 1.2,
                    "std_error": 0.36,
                    "ci_low": 0.5,
                    "ci_high": 1.9,
                    "treated_share": 0.6,
                    "difference": -0.3,
                    "difference_ci_low": -0.8,
                    "difference_ci_high": 0.2,
                    "risk": 812.5,
                    "risk_difference": 1.4,
                    "risk_difference_se": 2.1,
                    "screened_out": False,
                    "chosen": False,
                },
                {
                    "name": "t_learner",
                    "per_customer": 1.5,
                    "std_error": 0.36,
                    "ci_low": 0.8,
                    "ci_high": 2.2,
                    "treated_share": 0.7,
                    "difference": 0.0,
                    "difference_ci_low": 0.0,
                    "difference_ci_high": 0.0,
                    "risk": 811.1,
                    "risk_difference": 0.0,
                    "risk_difference_se": 0.0,
                    "screened_out": False,
                    "chosen": True,
                },
            ],
            "learners": [
                {
                    "name": "s_learner",
                    "qini": 0.22,
                    "ci_low": 0.16,
                    "ci_high": 0.29,
                    "difference": 0.0,
                    "difference_ci_low": 0.0,
                    "difference_ci_high": 0.0,
                    "distinguishable": False,
                    "chosen": True,
                },
                {
                    "name": "t_learner",
                    "qini": 0.19,
                    "ci_low": 0.12,
                    "ci_high": 0.26,
                    "difference": -0.03,
                    "difference_ci_low": -0.08,
                    "difference_ci_high": 0.02,
                    "distinguishable": False,
                    "chosen": False,
                },
            ],
        },
        "policy": {
            "rule": "treat each customer with the best arm when its net value is above zero",
            "arms": policy_arms,
            "treat_share": 0.7,
            "per_customer": 1.5785,
            "ci_low": 0.9083,
            "ci_high": 2.2486,
            "expected_incremental_profit": 9471.0,
            "total_ci_low": 5449.8,
            "total_ci_high": 13491.6,
            "by_segment": [
                {
                    "segment": "Loyal",
                    "customers": 2500,
                    "treated_share": 0.9,
                    "arms": {"trial": 2250, "none": 250},
                },
                {
                    "segment": ODD,
                    "customers": 900,
                    "treated_share": 0.1,
                    "arms": {"trial": 90, "none": 810},
                },
            ],
            "segment_rule": {
                "rule": "treat segments that pay",
                "treated": [{"segment": "Loyal", "arm": "trial", "customers": 2500}],
                "treat_share": 0.4167,
                "expected_incremental_profit": 3947.75,
                "ci_low": 2270.75,
                "ci_high": 5621.5,
            },
        },
        "targeting": {
            "rule": "best arm",
            "estimator": "doubly robust",
            "rows": [
                {
                    "rule": "policy",
                    "per_customer": 1.6,
                    "std_error": 0.3,
                    "ci_low": 0.9,
                    "ci_high": 2.3,
                    "treated_share": 0.7,
                    "total": 9600.0,
                    "arms": policy_arms,
                },
                {
                    "rule": "treat_all:trial",
                    "per_customer": 0.665,
                    "std_error": 0.46,
                    "ci_low": -0.235,
                    "ci_high": 1.565,
                    "treated_share": 1.0,
                    "total": 3990.0,
                    "arms": {"trial": 6000, "none": 0},
                },
            ],
            "best_treat_all": "trial",
            "gain_over_treat_all": 0.928,
            "gain_ci_low": 0.2206,
            "gain_ci_high": 1.6357,
        },
        "baseline_clv": None,
        "migration": {
            "moves": {
                "method": "newcombe",
                "rows": [
                    {
                        "dimension": "M",
                        "launch_level": "all",
                        "arm": "trial",
                        "share_treated": 0.0942,
                        "share_control": 0.0768,
                        "estimate": 0.0174,
                        "ci_low": 0.0128,
                        "ci_high": 0.022,
                        "p_value": 1e-12,
                    },
                ],
            }
        },
        "decision": {
            "verdict": "go_targeted",
            "reason": "Treating everyone does not pay back; the policy does (1.58 per customer).",
            "best_arm": "trial",
        },
    }


def make_spec() -> dict[str, Any]:
    """A small spec, as ``ExperimentSpec.model_dump(mode="json", exclude_none=True)``."""
    return {
        "name": "tiny-trial",
        "hypothesis": {
            "kind": "trial_lessons",
            "statement": "Paid trial lessons sell the course.",
            "owner": "crm@example.com",
        },
        "population": {
            "source": {"kind": "simulate", "n": 12000, "seed": 7},
            "id": "customer_id",
            "eligible": "applied_premium == 1",
            "features": ["recency_days"],
        },
        "assignment": {"salt": "s", "arms": {"control": 0.3333, "trial": 0.6667}},
        "outcomes": {
            "window_days": 60,
            "metrics": {
                "took_trial": {"kind": "binary", "column": "took_trial"},
                "revenue": {"kind": "continuous", "column": "revenue_60d"},
            },
            "primary": "revenue",
        },
        "value": {
            "segments": "rfm",
            "metric": "revenue",
            "unit_value": 1.0,
            "clv": {"horizon_months": 12.0, "margin": 0.55, "annual_discount_rate": 0.12},
        },
        "economics": {
            "contact_cost": 0.04,
            "fixed_cost": 1500.0,
            "offers": {
                "trial": {
                    "kind": "trial_lessons",
                    "price": 5.0,
                    "delivery_cost": 14.0,
                    "uptake_metric": "took_trial",
                }
            },
        },
        "decision": {"objective": "incremental_profit", "alpha": 0.05, "budget": {}},
    }


def tiny_png(colour: str = "C0") -> bytes:
    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1], [0, 1], color=colour)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


class Page(HTMLParser):
    """Elements with their attributes, the text under each id, and table rows by table id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, list[str]] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: list[tuple[str, list[str]]] = []  # (table id, header cells) per table
        self.captions: list[str] = []
        self._caption: list[str] | None = None
        self._head: list[str] | None = None
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of the open elements
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "br":
            self.handle_data(" ")
        if tag not in VOID:
            self._open.append((tag, attributes.get("id")))
        if "id" in attributes:
            self.text_by_id.setdefault(attributes["id"], [])
        if tag == "table":
            self._table = attributes.get("id", "")
            self.tables.setdefault(self._table, [])
            self.headers.append((self._table, []))
        elif tag == "figcaption":
            self._caption = []
        elif tag == "th":
            self._head = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()
        if tag == "figcaption" and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None
        elif tag == "th" and self._head is not None:
            self.headers[-1][1].append(" ".join("".join(self._head).split()))
            self._head = None
        elif tag == "td" and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident is not None:
                self.text_by_id[ident].append(data)
        for part in (self._cell, self._caption, self._head):
            if part is not None:
                part.append(data)

    def text(self, ident: str) -> str:
        return " ".join("".join(self.text_by_id.get(ident, [])).split())


@pytest.fixture
def figures() -> dict[str, bytes]:
    return {path: tiny_png(f"C{i}") for i, path in enumerate(MEMO_FIGURES)}


def test_sections_in_order() -> None:
    html = render_memo(make_summary(), make_spec(), {})
    page = Page(html)
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    order = ["verdict", "value", "segments", "economics", "targeting", "caveats"]
    assert [i for i in ids if i in order] == order
    headings = [a for t, a in page.tags if t == "section"]
    assert [a["id"] for a in headings] == order[1:]


def test_verdict_box_has_class_and_reason() -> None:
    summary = make_summary()
    page = Page(render_memo(summary, make_spec(), {}))
    (attrs,) = [a for _, a in page.tags if a.get("id") == "verdict"]
    assert attrs["class"] == "go_targeted"
    text = page.text("verdict")
    assert "GO — treat the targeted customers" in text
    assert summary["decision"]["reason"] in text
    summary["decision"]["verdict"] = "no_go"
    page = Page(render_memo(summary, make_spec(), {}))
    (attrs,) = [a for _, a in page.tags if a.get("id") == "verdict"]
    assert attrs["class"] == "no_go"
    assert page.text("verdict").startswith("NO GO")


def test_segment_table_rows_and_numbers() -> None:
    summary = make_summary()
    page = Page(render_memo(summary, make_spec(), {}))
    rows = page.tables["segment-table"]
    assert len(rows) == len(summary["segments"])
    assert [r[0] for r in rows] == ["All customers", "Loyal", ODD]
    everyone, loyal, odd = rows
    assert everyone[2] == "6,000"
    assert everyone[3] == "7.30 5.50 to 9.08"
    assert everyone[6] == "0.30 -0.68 to 1.27"
    assert everyone[7] == "8.0%"
    assert everyone[8] == "inconclusive would need ~1,400,000 customers to settle"
    assert loyal[6] == "1.58 0.91 to 2.25"
    assert loyal[8] == "go"
    assert odd[6] == "-4.35 -7.29 to -1.41"
    assert odd[8] == "no go"


def test_every_figure_embedded_once(figures: dict[str, bytes]) -> None:
    html = render_memo(make_summary(), make_spec(), figures)
    images = [a for t, a in Page(html).tags if t == "img"]
    decoded = [base64.b64decode(a["src"].removeprefix("data:image/png;base64,")) for a in images]
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert decoded == [figures[p] for p in MEMO_FIGURES]  # each once, in the memo's order
    assert all(a["alt"] for a in images)
    assert html.count("<figcaption>") == len(MEMO_FIGURES)


def test_missing_figure_noted(figures: dict[str, bytes]) -> None:
    absent = figures.pop("figures/qini.png")
    figures["figures/unknown.png"] = tiny_png("red")
    html = render_memo(make_summary(), make_spec(), figures)
    page = Page(html)
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) == len(MEMO_FIGURES) - 1
    assert base64.b64encode(absent).decode() not in html
    assert base64.b64encode(figures["figures/unknown.png"]).decode() not in html
    note = "Figure not logged with this run: Qini curves of each uplift learner."
    assert note in page.text("targeting")
    assert page.text("targeting").count("Figure not logged") == 1
    assert "Figure not logged" not in page.text("value") + page.text("segments")


def test_missing_migration_figure_not_noted_without_migration() -> None:
    summary = make_summary()
    page = Page(render_memo(summary, make_spec(), {}))
    assert "Figure not logged with this run: Heatmaps" in page.text("value")
    assert "Figure not logged with this run: Forest plot" in page.text("segments")
    summary["migration"] = None
    page = Page(render_memo(summary, make_spec(), {}))
    assert "Figure not logged" not in page.text("value")


def test_self_contained(figures: dict[str, bytes]) -> None:
    html = render_memo(make_summary(), make_spec(), figures)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    page = Page(html)
    links = [a[k] for _, a in page.tags for k in ("src", "href") if k in a]
    assert links, "expected images and in-page links"
    assert all(link.startswith(("data:", "#")) for link in links)
    assert ("meta", {"charset": "utf-8"}) in page.tags
    assert ("link", {"rel": "icon", "href": "data:,"}) in page.tags
    assert "@import" not in html and "url(" not in html


def test_text_from_the_summary_is_escaped() -> None:
    summary, spec = make_summary(), make_spec()
    summary["experiment"] = "x<script>alert(1)</script>"
    spec["hypothesis"]["statement"] = "Buy <em>now</em> & later"
    html = render_memo(summary, spec, {})
    assert ODD not in html
    assert "&lt;b&gt;&amp; Co" in html
    assert "<script" not in html
    assert "Buy &lt;em&gt;now&lt;/em&gt; &amp; later" in html
    page = Page(html)
    assert ODD in [r[0] for r in page.tables["segment-table"]]  # the browser shows the name


def test_costs_itemized() -> None:
    page = Page(render_memo(make_summary(), make_spec(), {}))
    text = page.text("economics")
    assert "Contact cost: 0.04 per treated customer" in text
    assert "delivery cost 14.00 per lesson pack taken" in text
    assert "price 5.00 paid by the customer" in text
    assert "uptake measured by took_trial" in text
    assert "Fixed cost: 1,500.00 once" in text
    assert "Margin: 55%" in text
    assert "CLV horizon 12 months, discounted at 12% a year" in text
    # what the costs came to per treated customer: contact + offer + fixed share
    assert "Cost per treated customer trial0.043.660.023.72" in " ".join(text.split())


def test_numbers_read_with_units_and_intervals() -> None:
    page = Page(render_memo(make_summary(), make_spec(), {}))
    value = page.text("value")
    assert "raised revenue by 7.32 (95% CI 5.55 to 9.09) per customer" in value
    assert "40.7 pp" in value  # a binary metric in percentage points
    assert "&lt;" not in value and "< 0.001" in value
    targeting = page.text("targeting")
    assert "1.58 (95% CI 0.91 to 2.25) per customer" in targeting
    assert "9,471 (95% CI 5,450 to 13,492)" in targeting
    assert "0.93 (95% CI 0.22 to 1.64)" in targeting
    caveats = page.text("caveats")
    assert "p = 0.208, no alert" in caveats
    assert "lead over s_learner is 0.30 (95% CI -0.20 to 0.80)" in caveats


def test_missing_sections_render() -> None:
    summary, spec = make_summary(), make_spec()
    summary["migration"] = None
    summary["programme"] = []
    summary["models"] = []
    summary["model_selection"] = {
        "criterion": "none", "chosen": None, "qini_leader": None, "policies": [],
        "alpha": 0.05, "n_boot": 0, "learners": [], "importance": [],
    }  # fmt: skip
    for key in ("per_customer", "ci_low", "ci_high", "expected_incremental_profit"):
        summary["policy"][key] = None
    summary["policy"].update(arms={}, treat_share=0.0, by_segment=[])
    summary["targeting"].update(rows=[], gain_over_treat_all=None)
    summary["assignment"].update(
        method="observed", srm_p_value=None, srm_alert=None, expected_shares=None
    )
    summary["segments"][1].update(incremental_profit=None, profit_ci_low=None, roi=None)
    summary["decision"] = {"verdict": "inconclusive", "reason": "Cannot tell.", "best_arm": None}
    del spec["assignment"]["arms"]
    page = Page(render_memo(summary, spec, {}))
    assert "RFM migration not estimated" in page.text("value")
    assert "Programme effect not estimated" in page.text("value")
    assert "Per-customer policy not estimated" in page.text("targeting")
    assert "no uplift model was fitted" in page.text("targeting")
    assert "Sample-ratio mismatch: not estimated" in page.text("caveats")
    assert page.tables["segment-table"][1][6] == "not estimated"
    (attrs,) = [a for _, a in page.tags if a.get("id") == "verdict"]
    assert attrs["class"] == "inconclusive"


def test_bare_summary_does_not_crash() -> None:
    html = render_memo({"experiment": "bare", "decision": {"verdict": "odd"}}, {}, {})
    page = Page(html)
    (attrs,) = [a for _, a in page.tags if a.get("id") == "verdict"]
    assert attrs["class"] == "unknown"
    assert all(page.text(i) for i in ("value", "segments", "economics", "targeting", "caveats"))
    assert re.search(r"<h1>bare</h1>", html)


def test_does_not_modify_inputs(figures: dict[str, bytes]) -> None:
    summary, spec = make_summary(), make_spec()
    before = copy.deepcopy((summary, spec))
    render_memo(summary, spec, figures)
    assert (summary, spec) == before


def test_fixture_matches_summary_schema() -> None:
    """The fixture has the shape of the real summary: the shipped schema accepts it."""
    path = Path(__file__).parents[1] / "uplift" / "schemas" / "summary.schema.json"
    schema = json.loads(path.read_text("utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(make_summary())
    ]
    assert errors == []


def _with_verdict(verdict: str) -> dict[str, Any]:
    summary = make_summary()
    summary["decision"].update(verdict=verdict, reason="Because.", best_arm="trial")
    return summary


def test_targeting_go_recommends_treating_everyone(figures: dict[str, bytes]) -> None:
    summary = _with_verdict("go")
    summary["targeting"].update(gain_over_treat_all=0.2, gain_ci_low=-0.3, gain_ci_high=0.7)
    page = Page(render_memo(summary, make_spec(), figures))
    text = page.text("targeting")
    assert "Recommendation: treat every eligible customer with trial" in text
    assert "0.67 (95% CI -0.23 to 1.56) per customer" in text  # treat_all:trial, DR
    assert "0.30 (95% CI -0.68 to 1.27) per customer" in text  # All customers, net of costs
    assert "alternative" in text and "1.58 (95% CI 0.91 to 2.25)" in text
    assert "0.20 (95% CI -0.30 to 0.70)" in text
    assert "does not demonstrably gain" in text
    assert "Recommendation: treat 70%" not in text and "Treat 70%" not in text
    (caption,) = [c for c in page.captions if "marked point" in c]
    assert "recommended" not in caption and "the per-customer policy" in caption


def test_targeting_go_targeted_recommends_the_policy(figures: dict[str, bytes]) -> None:
    page = Page(render_memo(make_summary(), make_spec(), figures))
    text = page.text("targeting")
    assert "Recommendation: treat 70% of customers, each with the arm" in text
    assert "1.58 (95% CI 0.91 to 2.25) per customer" in text
    (caption,) = [c for c in page.captions if "marked point" in c]
    assert "The marked point is the recommended policy" in caption


def test_targeting_no_go_recommends_no_one(figures: dict[str, bytes]) -> None:
    page = Page(render_memo(_with_verdict("no_go"), make_spec(), figures))
    text = page.text("targeting")
    assert "Recommendation: treat no one" in text
    assert "examined" in text and "1.58 (95% CI 0.91 to 2.25)" in text
    assert "Recommendation: treat 70%" not in text and "Treat 70%" not in text
    (caption,) = [c for c in page.captions if "marked point" in c]
    assert "recommended" not in caption


def test_targeting_inconclusive_asks_for_more_data(figures: dict[str, bytes]) -> None:
    page = Page(render_memo(_with_verdict("inconclusive"), make_spec(), figures))
    text = page.text("targeting")
    assert "No decision yet: gather more data" in text
    assert "section 5" in text and "settle" in text
    assert "Best current guess" in text and "1.58 (95% CI 0.91 to 2.25)" in text
    assert "Recommendation" not in text and "Treat 70%" not in text
    assert "Customers needed" in [h for _, hs in page.headers for h in hs]  # the rows it means
    (caption,) = [c for c in page.captions if "marked point" in c]
    assert "recommended" not in caption


def test_interval_level_follows_alpha(figures: dict[str, bytes]) -> None:
    summary = make_summary()
    summary["alpha"] = 0.10
    html = render_memo(summary, make_spec(), figures)
    page = Page(html)
    assert "95%" not in html
    assert "90% CI" in page.text("value")
    for words in ("segment's estimated effect", "profit per customer, net of costs"):
        (caption,) = [c for c in page.captions if words in c]
        assert "90%" in caption


def test_one_learner_has_no_comparison_tables() -> None:
    summary = make_summary()
    selection = summary["model_selection"]
    selection["policies"] = [selection["policies"][1]]
    selection["learners"] = [selection["learners"][1] | {"chosen": True, "difference": 0.0}]
    selection["qini_leader"] = "t_learner"
    page = Page(render_memo(summary, make_spec(), {}))
    text = page.text("targeting")
    assert "One learner was fitted" in text
    assert "Each learner's own policy" not in text
    assert not [h for _, h in page.headers if h and h[0] == "Learner"]
    assert "0.190 (95% CI 0.120 to 0.260)" in text  # its Qini, in a sentence


def test_a_learner_screened_out_is_marked_and_left_out_of_the_winners_curse() -> None:
    summary = make_summary()
    policies = summary["model_selection"]["policies"]
    # a third learner with the most valuable policy, screened out: its net values err
    # 9.0 +- 2.0 above the least
    policies.append(
        policies[0]
        | {
            "name": "x_learner",
            "per_customer": 1.9,
            "difference": 0.4,
            "difference_ci_low": -0.1,
            "difference_ci_high": 0.9,
            "risk_difference": 9.0,
            "risk_difference_se": 2.0,
            "screened_out": True,
        }
    )
    page = Page(render_memo(summary, make_spec(), {}))
    (head,) = [h for _, h in page.headers if h and h[0] == "Learner" and len(h) == 5]
    assert head[-1] == "Error above the least (± SE)"
    rows = {r[0]: r[-1] for r in page.tables[""] if "learner" in r[0] and len(r) == 5}
    assert rows == {
        "s_learner": "1.40 ± 2.10",
        "t_learner (chosen)": "least",
        "x_learner": "9.00 ± 2.00 screened out",
    }
    caveats = page.text("caveats")
    # picked from the two the screen kept, so its lead is over s_learner, not x_learner
    assert "best of 2 learners" in caveats
    assert "lead over s_learner is 0.30 (95% CI -0.20 to 0.80)" in caveats


def test_the_memo_states_the_screen_width_the_run_used() -> None:
    summary = make_summary()
    summary["model_selection"]["screen"] = 2.0
    text = Page(render_memo(summary, make_spec(), {})).text("targeting")
    assert "more than 2 standard errors above the learner that errs least" in text
    # a run logged before the summary recorded the width screened at one standard error
    del summary["model_selection"]["screen"]
    text = Page(render_memo(summary, make_spec(), {})).text("targeting")
    assert "more than one standard error above the learner that errs least" in text
    # and one logged before it recorded a margin chose the most valuable policy kept
    assert "screened out; the most profitable of the others is chosen:" in text


def test_the_memo_states_the_margin_and_why_a_better_scoring_policy_was_passed_over() -> None:
    summary = make_summary()
    selection = summary["model_selection"]
    selection["margin"] = 1.645
    text = Page(render_memo(summary, make_spec(), {})).text("targeting")
    assert (
        "screened out; of the others, the one that errs least is chosen unless another's "
        "policy earns more than its policy by over 1.645 standard errors of the difference:"
    ) in text
    # the chosen learner errs least, and s_learner's policy scored more, within the margin
    s_row = next(r for r in selection["policies"] if r["name"] == "s_learner")
    s_row |= {"difference": 0.3, "difference_ci_low": -0.2, "difference_ci_high": 0.8}
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert "Winner's curse" not in caveats
    assert (
        "t_learner was kept because its predicted net values err least, although the policy "
        "of s_learner scored 0.30 (95% CI -0.20 to 0.80) more per customer"
    ) in caveats
    # a chosen learner that does not err least cleared the margin over the one that does
    t_row = next(r for r in selection["policies"] if r["name"] == "t_learner")
    t_row |= {"risk_difference": 0.5, "risk_difference_se": 1.0}
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert "its predicted net values err least" not in caveats
    assert (
        "t_learner was kept because its policy clearly beat that of the learner whose net "
        "values err least, although the policy of s_learner scored 0.30"
    ) in caveats


def test_two_learners_have_comparison_tables() -> None:
    page = Page(render_memo(make_summary(), make_spec(), {}))
    assert len([h for _, h in page.headers if h and h[0] == "Learner"]) == 2
    assert "One learner" not in page.text("targeting")


def test_fixed_cost_divided_over_every_customer() -> None:
    html = render_memo(make_summary(), make_spec(), {})
    page = Page(html)
    assert "shared over the treated" not in html
    assert "divided over every customer of the experiment" in page.text("economics")
    assert "divided over every customer of the experiment" in page.text("segments")


def test_power_sentence_for_a_negative_estimate() -> None:
    summary = make_summary()
    summary["effects"][1].update(estimate=-3.44, ci_low=-5.1, ci_high=-1.78)
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert "smallest effect on revenue this test detects with 80% power is 2.50" in caveats
    assert "-3.44 (95% CI -5.10 to -1.78)" in caveats
    assert "its size, 3.44, is above it" in caveats
    assert "smaller than 2.50 could be missed" in caveats
    assert "the estimate, -3.44" not in caveats and "large enough" not in caveats


def test_methods_in_plain_words() -> None:
    summary = make_summary()
    summary["effects"][0]["method"] = "delta_ratio"
    summary["effects"].append(_effect("trial", "bought", 0.1, 0.0, 0.2, method="mystery_x"))
    rows = Page(render_memo(summary, make_spec(), {})).tables["effects-table"]
    methods = {r[1]: r[-1] for r in rows}
    assert "delta method" in methods["took_trial"] and "delta_ratio" not in methods["took_trial"]
    assert methods["revenue"].startswith("regression-adjusted")
    assert methods["bought"] == "mystery_x"


def test_captions_name_the_primary_metric(figures: dict[str, bytes]) -> None:
    spec = make_spec()
    spec["value"]["metric"] = "took_trial"
    page = Page(render_memo(make_summary(), spec, figures))
    alts = {a["alt"] for t, a in page.tags if t == "img"}
    assert "Forest plot of the effect on revenue per segment and arm" in alts
    for words in ("segment's estimated effect", "each learner's predicted uplift", "tenths"):
        (caption,) = [c for c in page.captions if words in c]
        assert "revenue" in caption and "took_trial" not in caption
    (segment_head,) = [h for i, h in page.headers if i == "segment-table"]
    assert "Effect on revenue (95% CI)" in segment_head


def test_the_caveats_say_when_segments_were_not_scored_from_the_frozen_purchases() -> None:
    summary = make_summary()
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert "R, F and M at launch" not in caveats and "launch snapshot" not in caveats
    # frozen at launch, and the file still gives them: nothing to say
    summary["rfm_from_purchases"] = {
        "source": "launch snapshot",
        "as_of": "2026-11-30",
        "why_file": None,
        "changed_since_launch": 0,
    }
    assert "launch snapshot" not in Page(render_memo(summary, make_spec(), {})).text("caveats")
    summary["rfm_from_purchases"]["changed_since_launch"] = 12
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert (
        "Segments: the purchases file now gives 12 customers other R, F or M at launch than "
        "were frozen in the launch snapshot; the segments use the frozen values"
    ) in caveats
    summary["rfm_from_purchases"] = {
        "source": "purchases file",
        "as_of": "2026-11-30",
        "why_file": "the spec's look-back differs from the launch's (window_days 120 at "
        "launch, 90 now)",
        "changed_since_launch": None,
    }
    caveats = Page(render_memo(summary, make_spec(), {})).text("caveats")
    assert (
        "Segments: R, F and M at launch (to 2026-11-30) were scored from the purchases file as "
        "it is now, not read from the launch snapshot: the spec's look-back differs from the "
        "launch's (window_days 120 at launch, 90 now)."
    ) in caveats


def test_a_feature_unlock_valued_on_upgrades_alone_is_told_it_misses_the_delayed_revenue() -> None:
    spec = make_spec()
    spec["hypothesis"]["kind"] = "feature_unlock"
    spec["economics"] = {
        "offer": {"kind": "feature_unlock", "serving_cost_per_day": 0.1, "days": 30}
    }
    spec["outcomes"]["metrics"]["upgraded"] = {"kind": "binary", "column": "upgraded"}
    # valued on revenue (the example's primary), the delay is in the measured effect
    caveats = Page(render_memo(make_summary(), spec, {})).text("caveats")
    assert "Delayed upgrades" not in caveats
    spec["value"]["metric"] = "upgraded"
    caveats = Page(render_memo(make_summary(), spec, {})).text("caveats")
    assert (
        "Delayed upgrades: the profit prices only 0/1 outcomes (upgraded). Customers who would "
        "have upgraded anyway and wait out the free days still upgrade"
    ) in caveats
    # another kind of offer on a 0/1 value metric has no such delay
    spec["hypothesis"]["kind"] = "trial_lessons"
    spec["economics"] = {"offer": {"kind": "trial_lessons", "price": 5.0, "delivery_cost": 14.0}}
    assert "Delayed upgrades" not in Page(render_memo(make_summary(), spec, {})).text("caveats")
