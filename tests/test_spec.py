"""Tests for uplift.spec: the example configs load, malformed specs fail with precise messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from uplift.analysis.learners import make_learner
from uplift.errors import SpecError
from uplift.spec import ExperimentSpec, HashAssignment, load_spec, spec_json_schema
from uplift.summary import summary_json_schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "edtech_trial_lessons.yaml"
#: The example's learner list, which several cases rewrite.
LEARNERS_LINE = "learners: [s_learner, t_learner, x_learner, {learner: x_learner, base: linear}]"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    """Replace a snippet that must occur exactly once, so a changed example fails loudly."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the example"
    return text.replace(old, new)


def replace_block(text: str, key: str, new: str) -> str:
    """Replace a top-level key and its indented block with the line(s) ``new``."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    return "".join([*lines[:start], new.rstrip("\n") + "\n", *lines[end:]])


def line_of(text: str, snippet: str) -> int:
    """The 1-based line of the only line of ``text`` that contains ``snippet``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if snippet in line]
    assert len(hits) == 1, f"{snippet!r} is on lines {hits}"
    return hits[0]


def names_line(message: str, line: int) -> bool:
    return re.search(rf"\bline {line}\b", message) is not None


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the example configs ------------------------------------------------------------------


def test_there_is_at_least_one_example_config() -> None:
    assert CONFIGS, "configs/ holds no *.yaml example"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_loads(path: Path) -> None:
    spec = load_spec(path)
    assert isinstance(spec, ExperimentSpec)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]+", spec.name)
    assert spec.outcomes.primary in spec.outcomes.metrics
    assert spec.value_metric in spec.outcomes.metrics
    assert spec.population.features
    # The YAML also satisfies the shipped JSON Schema that editors use.
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), spec_json_schema())


def test_edtech_example_reads_as_written() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.name == "edtech-trial-lessons"
    assert spec.hypothesis.kind == "trial_lessons"
    assert spec.outcomes.primary == "bought"
    assert spec.outcomes.metrics["bought"].kind == "binary"
    assert spec.outcomes.metrics["revenue"].kind == "continuous"
    assert (spec.value_metric, spec.value.unit_value) == ("bought", 290.0)
    assert isinstance(spec.assignment, HashAssignment)
    assert spec.assignment.control == "control"
    assert spec.assignment.treatments == ["two_lessons", "four_lessons"]


# --- malformed specs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[str], str]
    expected: tuple[str, ...]
    """Snippets the message must contain (key paths, tokens, values)."""
    lines: Callable[[str], tuple[int, ...]] = lambda text: ()
    """The line(s) the message must name, computed from the edited text."""


def add_metric(text: str, line: str) -> str:
    """The example with one more metric, after ``bought``."""
    bought = "    bought: {column: bought_course, kind: binary}\n"
    return replace_once(text, bought, f"{bought}    {line}\n")


def at(snippet: str) -> Callable[[str], tuple[int, ...]]:
    return lambda text: (line_of(text, snippet),)


CASES = [
    Case(
        "unknown-top-level-key",
        lambda t: t + "colour: blue\n",
        ("'colour'", "unknown key"),
        at("colour: blue"),
    ),
    Case(
        "unknown-nested-key",
        lambda t: replace_once(t, "  features: [", "  featurez: ["),
        ("'population.featurez'", "unknown key"),
        at("featurez:"),
    ),
    Case(
        "wrong-type",
        lambda t: replace_once(t, "n: 200000", "n: many"),
        ("'population.source.n'", "'many'", "integer"),
        at("n: many"),
    ),
    Case(
        "weights-sum-above-1",
        lambda t: replace_once(
            t,
            "{control: 0.2, two_lessons: 0.4, four_lessons: 0.4}",
            "{control: 0.2, two_lessons: 0.4, four_lessons: 0.5}",
        ),
        ("'assignment.arms'", "sum to at most 1", "1.1"),
        at("four_lessons: 0.5}"),
    ),
    Case(
        "weight-not-a-multiple-of-1/10000",
        lambda t: replace_once(
            t,
            "{control: 0.2, two_lessons: 0.4, four_lessons: 0.4}",
            "{control: 0.20005, two_lessons: 0.39995, four_lessons: 0.4}",
        ),
        ("'assignment.arms.control'", "1/10000", "0.20005"),
        at("control: 0.20005"),
    ),
    Case(
        "only-one-arm",
        lambda t: re.sub(r"(?m)^  arms: .*$", "  arms: {control: 1.0}", t, count=1),
        ("'assignment.arms'", "two arms", "found 1"),
        at("arms: {control: 1.0}"),
    ),
    Case(
        "control-not-an-arm",
        lambda t: replace_once(t, "  control: control\n", "  control: holdout\n"),
        ("'assignment.control'", "'holdout'"),
        at("control: holdout"),
    ),
    Case(
        "unknown-primary-metric",
        lambda t: replace_once(t, "primary: bought", "primary: profit"),
        ("'outcomes.primary'", "'profit'"),
        at("primary: profit"),
    ),
    Case(
        "unknown-value-metric",
        lambda t: replace_once(t, "  metric: bought\n", "  metric: margin\n"),
        ("'value.metric'", "'margin'"),
        at("metric: margin"),
    ),
    Case(
        "eligibility-function-call",
        lambda t: re.sub(r"(?m)^  eligible: .*$", "  eligible: len(plan) > 2", t, count=1),
        ("'population.eligible'", "len("),
        at("eligible: len(plan)"),
    ),
    Case(
        "eligibility-attribute-access",
        lambda t: re.sub(r"(?m)^  eligible: .*$", "  eligible: plan.upper == 1", t, count=1),
        ("'population.eligible'", "'.upper'", "attribute"),
        at("eligible: plan.upper"),
    ),
    Case(
        "eligibility-dunder-import",
        lambda t: re.sub(r"(?m)^  eligible: .*$", "  eligible: __import__('os')", t, count=1),
        ("'population.eligible'", "__import__("),
        at("eligible: __import__"),
    ),
    Case(
        "missing-required-key",
        lambda t: replace_once(t, "  window_days: 60\n", ""),
        ("'outcomes.window_days'", "missing"),
    ),
    Case(
        "negative-contact-cost",
        lambda t: replace_once(t, "contact_cost: 0.04", "contact_cost: -0.04"),
        ("'economics.contact_cost'", "-0.04"),
        at("contact_cost: -0.04"),
    ),
    Case(
        "offer-kind-does-not-match-hypothesis",
        lambda t: re.sub(
            r"(?m)^    two_lessons: \{.*\}$", "    two_lessons: {kind: channel, cost: 1.0}", t
        ),
        ("'economics.offers.two_lessons.kind'", "'channel'", "'trial_lessons'"),
        at("two_lessons: {kind: channel"),
    ),
    Case(
        "offers-name-an-unknown-arm",
        lambda t: replace_once(t, "    four_lessons: {kind:", "    six_lessons: {kind:"),
        ("'economics.offers.six_lessons'", "not a treatment arm"),
        at("six_lessons: {kind:"),
    ),
    Case(
        # The offer is a union tagged by kind: the tag must not show up as if it were a key.
        "offer-field-out-of-range",
        lambda t: replace_once(t, "price: 5.0,", "price: -5.0,"),
        ("'economics.offers.two_lessons.price'", "-5.0"),
        at("price: -5.0"),
    ),
    Case(
        "duplicate-key",
        lambda t: replace_once(t, "  window_days: 60\n", "  window_days: 60\n  window_days: 90\n"),
        ("'outcomes.window_days'", "twice"),
        lambda t: (line_of(t, "window_days: 60"), line_of(t, "window_days: 90")),
    ),
    Case(
        "tab-indentation",
        lambda t: replace_once(t, "  owner: ", "\towner: "),
        ("not valid YAML",),
        at("\towner: "),
    ),
    Case(
        # The unclosed bracket is on the features line; the parser notices it a line later.
        "unclosed-bracket",
        lambda t: re.sub(
            r"(?m)^  features: \[.*\]$", "  features: [recency_days, frequency_180d", t, count=1
        ),
        ("not valid YAML",),
        at("features: [recency_days, frequency_180d"),
    ),
    Case("empty-file", lambda t: "", ("empty file", "mapping")),
    Case("comments-only", lambda t: "# nothing here yet\n", ("empty file", "mapping")),
    Case("top-level-list", lambda t: "- name: x\n- name: y\n", ("a list", "mapping")),
    Case(
        "unknown-learner",
        lambda t: replace_once(t, LEARNERS_LINE, "learners: [magic_learner]"),
        ("'models.learners", "'magic_learner'", "t_learner"),
        at("learners: [magic_learner]"),
    ),
    Case(
        "ratio-without-denominator",
        lambda t: add_metric(t, "per_buyer: {kind: ratio, numerator: revenue}"),
        ("'outcomes.metrics.per_buyer.denominator'", "needs a denominator"),
        at("per_buyer: {kind: ratio"),
    ),
    Case(
        "ratio-with-a-column",
        lambda t: add_metric(
            t, "per_buyer: {kind: ratio, numerator: revenue, denominator: bought, column: x}"
        ),
        ("'outcomes.metrics.per_buyer.column'", "takes no column"),
        at("per_buyer: {kind: ratio"),
    ),
    Case(
        "ratio-of-an-unknown-metric",
        lambda t: add_metric(t, "per_buyer: {kind: ratio, numerator: profit, denominator: bought}"),
        ("'outcomes.metrics.per_buyer.numerator'", "'profit'", "'revenue'"),
        at("per_buyer: {kind: ratio"),
    ),
    Case(
        "ratio-as-the-primary-metric",
        lambda t: replace_once(
            add_metric(t, "per_buyer: {kind: ratio, numerator: revenue, denominator: bought}"),
            "primary: bought",
            "primary: per_buyer",
        ),
        ("'outcomes.primary'", "ratio metric 'per_buyer'"),
        at("primary: per_buyer"),
    ),
    Case(
        "ratio-as-the-value-metric",
        lambda t: replace_once(
            add_metric(t, "per_buyer: {kind: ratio, numerator: revenue, denominator: bought}"),
            "  metric: bought\n",
            "  metric: per_buyer\n",
        ),
        ("'value.metric'", "'per_buyer'", "binary or continuous"),
        at("metric: per_buyer"),
    ),
    Case(
        "winsorized-binary-metric",
        lambda t: replace_once(
            t,
            "{column: took_trial, kind: binary}",
            "{column: took_trial, kind: binary, winsorize: 0.99}",
        ),
        ("'outcomes.metrics.took_trial.winsorize'", "continuous"),
        at("winsorize: 0.99"),
    ),
    Case(
        "winsorizing-quantile-out-of-range",
        lambda t: replace_once(
            t, "pre_period: revenue_pre_60d}", "pre_period: revenue_pre_60d, winsorize: 0.3}"
        ),
        ("'outcomes.metrics.revenue.winsorize'", "0.3"),
        at("winsorize: 0.3"),
    ),
    Case(
        "unknown-correction",
        lambda t: t + "effects: {correction: sidak}\n",
        ("'effects.correction'", "'sidak'", "holm"),
        at("effects: {correction: sidak}"),
    ),
    Case(
        "unknown-base-model",
        lambda t: replace_once(
            t,
            LEARNERS_LINE,
            "learners: [t_learner, {learner: x_learner, base: catboost}]",
        ),
        ("'models.learners.1.base'", "'catboost'", "xgboost"),
        at("learners: [t_learner, {learner"),
    ),
    Case(
        "two-learners-with-one-name",
        lambda t: replace_once(t, LEARNERS_LINE, "learners: [t_learner, {learner: t_learner}]"),
        ("'models.learners.1'", "two learners are called 't_learner'"),
        at("learners: [t_learner, {learner"),
    ),
    Case(
        "uplift-forest-on-a-continuous-primary-metric",
        lambda t: replace_once(
            replace_once(t, LEARNERS_LINE, "learners: [uplift_forest]"),
            "primary: bought",
            "primary: revenue",
        ),
        ("'models.learners.0'", "binary outcome", "'revenue' is continuous"),
        at("learners: [uplift_forest]"),
    ),
    Case(
        "simulated-population-with-observed-assignment",
        lambda t: replace_block(t, "assignment", "assignment: {column: segment, control: x}"),
        ("'assignment'", "simulated population", "salt"),
        at("assignment: {column: segment"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_is_refused_with_a_precise_message(case: Case, tmp_path: Path) -> None:
    text = case.edit(example_text())
    assert text != example_text()
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    for snippet in case.expected:
        assert snippet in message, f"{snippet!r} not in: {message}"
    for line in case.lines(text):
        assert names_line(message, line), f"line {line} not named in: {message}"
    assert "\n" not in message.strip()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = replace_once(example_text(), "contact_cost: 0.04", "contact_cost: -1")
    text = replace_once(text, "folds: 5", "folds: 1")
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "'economics.contact_cost'" in message
    assert "'models.folds'" in message
    assert names_line(message, line_of(text, "contact_cost: -1"))
    assert names_line(message, line_of(text, "folds: 1"))


def test_missing_spec_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="does not exist") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_a_directory_is_not_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_load_spec_accepts_a_string_path() -> None:
    assert load_spec(str(EXAMPLE)) == load_spec(EXAMPLE)


# --- digest -------------------------------------------------------------------------------


def test_digest_is_stable_and_changes_with_a_value(tmp_path: Path) -> None:
    first = load_spec(EXAMPLE).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert load_spec(EXAMPLE).digest() == first

    # Comments and layout are not part of the experiment.
    reformatted = write(tmp_path, "# a new comment\n" + example_text() + "\n\n", "same.yaml")
    assert load_spec(reformatted).digest() == first

    changed = write(
        tmp_path, replace_once(example_text(), "fixed_cost: 1500", "fixed_cost: 1600"), "x.yaml"
    )
    assert load_spec(changed).digest() != first


# --- shipped JSON Schemas -----------------------------------------------------------------


def shipped(name: str) -> object:
    text = resources.files("uplift").joinpath(f"schemas/{name}").read_text(encoding="utf-8")
    return json.loads(text)


def test_shipped_spec_schema_is_current() -> None:
    assert shipped("spec.schema.json") == spec_json_schema()


def test_shipped_summary_schema_is_current() -> None:
    assert shipped("summary.schema.json") == summary_json_schema()


def test_spec_schema_refuses_unknown_keys() -> None:
    data = yaml.safe_load(example_text())
    data["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        jsonschema.validate(data, spec_json_schema())


# --- number_rows: a population file without an id column -----------------------------------

HILLSTROM = ROOT / "configs" / "hillstrom_email.yaml"


def test_numbered_rows_are_refused_where_ids_must_last(tmp_path: Path) -> None:
    text = HILLSTROM.read_text(encoding="utf-8")
    hashed = replace_once(
        text,
        "assignment:\n  column: segment\n  control: No E-Mail",
        "assignment:\n  salt: s\n  control: No E-Mail\n  arms: {No E-Mail: 0.5, Mens E-Mail: 0.5}",
    )
    elsewhere = replace_once(
        text, "source: {kind: population}", "source: {kind: csv, path: outcomes.csv}"
    )
    for edited, expected in [
        (hashed, "row numbers are not stable customer ids"),
        (elsewhere, "outcomes in another file cannot be joined to row numbers"),
    ]:
        with pytest.raises(SpecError) as info:
            load_spec(write(tmp_path, edited))
        message = str(info.value)
        assert "'population.source.number_rows'" in message and expected in message


def test_numbered_rows_cannot_overwrite_an_id_column(tmp_path: Path) -> None:
    from uplift import pipeline
    from uplift.errors import DataError

    data = tmp_path / "base.csv"
    data.write_text("customer_id,segment,visit,recency\n7,a,1,2\n8,b,0,3\n", encoding="utf-8")
    text = HILLSTROM.read_text(encoding="utf-8")
    path = re.search(r"path: (\S+\.csv)", text)
    assert path is not None
    spec = load_spec(write(tmp_path, replace_once(text, path.group(1), str(data))))
    with pytest.raises(DataError, match="already has a column 'customer_id'"):
        pipeline.prepare(spec)


def test_learner_entries_take_defaults_from_the_models_block(tmp_path: Path) -> None:
    text = replace_once(
        example_text(),
        LEARNERS_LINE,
        "learners: [t_learner, {learner: dr_learner, base: xgboost, params: {max_depth: 3}}, "
        "{learner: s_learner, name: plain_s}]",
    )
    models = load_spec(write(tmp_path, text)).models
    configured = models.configured()
    assert [c.label for c in configured] == ["t_learner", "dr_learner.xgboost", "plain_s"]
    assert [c.base for c in configured] == [models.base, "xgboost", models.base]
    assert configured[1].params == {"max_depth": 3}
    assert configured[0].params == configured[2].params == models.base_params


def test_base_params_reach_only_the_learners_on_the_models_base() -> None:
    """LightGBM's parameters given to the linear base's ridge were a TypeError traceback."""
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    config["models"]["base_params"] = {"num_leaves": 7, "min_child_samples": 1000}
    models = ExperimentSpec.model_validate(config).models
    by_label = {c.label: c for c in models.configured()}
    assert by_label["x_learner.linear"].params == {}
    assert by_label["s_learner"].params == {"num_leaves": 7, "min_child_samples": 1000}
    for entry in models.configured():  # each builds: no parameter of another kind of model
        make_learner(entry.learner, "control", 0, entry.params, entry.base)


def test_decision_budget_is_optional_and_validated(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    spec = ExperimentSpec.model_validate(config)
    assert spec.decision.budget.max_treated is None and spec.decision.budget.max_spend is None
    config["decision"]["budget"] = {"max_treated": 50_000, "max_spend": 120_000}
    budget = ExperimentSpec.model_validate(config).decision.budget
    assert (budget.max_treated, budget.max_spend) == (50_000, 120_000.0)
    config["decision"]["budget"] = {"max_treated": -1}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=r"decision\.budget\.max_treated"):
        load_spec(path)


def test_the_digest_ignores_keys_left_at_their_defaults() -> None:
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    plain = ExperimentSpec.model_validate(config).digest()
    # writing a default out (here the budget, added after the spec was written) changes nothing
    config["decision"]["budget"] = {"max_treated": None}
    assert ExperimentSpec.model_validate(config).digest() == plain
    config["decision"]["budget"] = {"max_treated": 10}
    assert ExperimentSpec.model_validate(config).digest() != plain


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({"column": "history"}, r"value\.baseline_clv\.period_days"),
        (
            {"column": "history", "period_days": 365, "transactions": {"kind": "csv", "path": "t"}},
            r"value\.baseline_clv.*either transactions or column",
        ),
        ({}, r"value\.baseline_clv.*either transactions .*or column"),
        ({"transactions": {"kind": "csv", "path": "t"}, "period_days": 30}, r"period_days"),
    ],
)
def test_baseline_clv_takes_one_source(tmp_path: Path, baseline: dict, message: str) -> None:
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    config["value"]["baseline_clv"] = baseline
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=message):
        load_spec(path)
    config["value"]["baseline_clv"] = {"column": "revenue_pre_60d", "period_days": 60}
    assert ExperimentSpec.model_validate(config).value.baseline_clv.period_days == 60


def test_migration_dimensions_are_named_once() -> None:
    config = yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))
    config["value"]["migration"]["dimensions"] = ["M", "M"]
    with pytest.raises(ValueError, match="each dimension once"):
        ExperimentSpec.model_validate(config)


# --- value.metrics: several metrics priced ------------------------------------------------


def _trial_lessons_config() -> dict:
    return yaml.safe_load((ROOT / "configs" / "edtech_trial_lessons.yaml").read_text("utf-8"))


def test_several_priced_metrics_make_the_value_metric_their_worth() -> None:
    config = _trial_lessons_config()
    del config["value"]["metric"], config["value"]["unit_value"]
    config["value"]["metrics"] = {"bought": 290.0, "took_trial": 5}
    spec = ExperimentSpec.model_validate(config)
    assert spec.value_metric == "worth"
    assert spec.value_units == {"bought": 290.0, "took_trial": 5.0}
    # written back in full (every default included), the spec reads again, equal
    assert ExperimentSpec.model_validate(spec.model_dump(mode="json")) == spec
    # one priced metric is the same as metric and unit_value
    config["value"]["metrics"] = {"bought": 290.0}
    one = ExperimentSpec.model_validate(config)
    assert (one.value_metric, one.value_units) == ("bought", {"bought": 290.0})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "bought"}, r"value\.metric\b.*leave out metric \(found 'bought'\)"),
        ({"unit_value": 290}, r"value\.unit_value\b.*leave out unit_value \(found 290"),
        ({"metrics": {"visits": 1.0}}, r"value\.metrics\.visits\b.*found 'visits'"),
        ({"metrics": {"bought": 0}}, r"value\.metrics\.bought\b.*greater than 0"),
        ({"metrics": {}}, r"value\.metrics\b.*at least 1"),
    ],
)
def test_priced_metrics_refuse_a_second_price_unknown_metrics_and_nonpositive_worth(
    tmp_path: Path, change: dict, message: str
) -> None:
    config = _trial_lessons_config()
    del config["value"]["metric"], config["value"]["unit_value"]
    config["value"]["metrics"] = {"bought": 290.0, "revenue": 1.0}
    config["value"].update(change)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_a_metric_called_worth_cannot_sit_beside_several_priced_metrics(tmp_path: Path) -> None:
    config = _trial_lessons_config()
    del config["value"]["metric"], config["value"]["unit_value"]
    config["outcomes"]["metrics"]["worth"] = {"column": "revenue_60d", "kind": "continuous"}
    config["value"]["metrics"] = {"bought": 290.0, "took_trial": 5.0}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=r"value\.metrics\b.*'worth'.*already the name"):
        load_spec(path)
    # a metric called worth is any other metric where one metric is priced
    del config["value"]["metrics"]
    config["value"]["metric"] = "worth"
    assert ExperimentSpec.model_validate(config).value_metric == "worth"


def test_a_discount_needs_its_revenue_metric_named_when_several_metrics_are_priced(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load((ROOT / "configs" / "ecommerce_lower_check.yaml").read_text("utf-8"))
    offers = config["economics"].get("offers") or {"": config["economics"]["offer"]}
    assert all("revenue_metric" not in offer for offer in offers.values())
    continuous = [m for m, s in config["outcomes"]["metrics"].items() if s["kind"] == "continuous"]
    binary = [m for m, s in config["outcomes"]["metrics"].items() if s["kind"] == "binary"]
    config["value"].pop("metric", None)
    config["value"].pop("unit_value", None)
    config["value"]["metrics"] = {continuous[0]: 1.0, binary[0]: 2.0}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=r"revenue_metric\b.*cannot default to the value metric"):
        load_spec(path)


def test_a_feature_unlock_longer_than_the_outcome_window_is_refused(tmp_path: Path) -> None:
    # the upgrade revenue held back by customers who would have paid anyway is measured, not
    # charged: a window that ends before the unlock would miss part of it
    text = (ROOT / "configs" / "saas_feature_unlock.yaml").read_text("utf-8")
    longer = replace_once(
        text, "serving_cost_per_day: 0.10, days: 30", "serving_cost_per_day: 0.10, days: 120"
    )
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, longer))
    message = str(info.value)
    assert "key 'economics.offer.days'" in message
    assert "stay unlocked 120 days but outcomes.window_days is 90" in message
    assert "measure at least 120 days" in message
    assert load_spec(write(tmp_path, longer.replace("window_days: 90", "window_days: 120")))
