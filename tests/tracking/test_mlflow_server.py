"""``uplift run`` against a real ``mlflow server``, read back through ``MlflowClient``.

The fixtures (``conftest.py``) start ``mlflow server`` on 127.0.0.1 (SQLite backend, one
worker, its own artifact store) and run the EdTech example at 20,000 simulated customers
against it, with ``revenue`` winsorized so that every metric the README names is logged. The tests
then read the run back through the server only: the parent and nested runs, their tags,
params and inputs, every metric named in the README's tables, the artifacts, and the
logged model, loaded and scored. ``uplift runs`` and ``uplift report`` read the same
server.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_support import uplift

from uplift.data.simulate import simulate
from uplift.tracking.model_log import MODEL_URI_TAG, load_scoring_model

README = Path(__file__).resolve().parents[2] / "README.md"
LEARNERS = ["s_learner", "t_learner", "x_learner", "x_learner.linear"]


def _parent(client: Any, logged: dict[str, Any]) -> Any:
    return client.get_run(logged["summary"]["mlflow_run_id"])


def _children(client: Any, parent: Any) -> list[Any]:
    return list(
        client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        )
    )


def _readme_patterns(heading: str) -> list[str]:
    """Metric name patterns of the first table after ``heading`` in the README's MLflow
    section: backticked names of the first column, with ``{a,b}`` alternatives expanded."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The MLflow run") :]
    section = section[section.index(heading) :]
    rows = itertools.takewhile(
        lambda line: line.startswith("|"),
        itertools.dropwhile(lambda line: not line.startswith("|"), section.splitlines()),
    )
    patterns = []
    for row in list(rows)[2:]:
        first = row.split("|")[1]
        for name in re.findall(r"`([^`]+)`", first):
            patterns.extend(_expand(name))
    return patterns


def _expand(name: str) -> list[str]:
    match = re.search(r"\{([^}]+)\}", name)
    if match is None:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    return [n for option in match[1].split(",") for n in _expand(head + option + tail)]


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(<[a-z]+>)", pattern)
    return re.compile("".join(".+?" if p.startswith("<") else re.escape(p) for p in parts) + "$")


def test_the_parent_run_is_tagged_and_carries_the_spec_as_params(
    client: Any, logged: dict[str, Any]
) -> None:
    parent = _parent(client, logged)
    summary = logged["summary"]
    tags = parent.data.tags
    assert parent.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in tags
    assert tags["hypothesis_kind"] == "trial_lessons"
    assert tags["owner"] == "crm@example.com"
    assert tags["spec_digest"] == summary["spec_digest"]
    assert re.fullmatch(r"[0-9a-f]{64}", tags["data_digest"])
    assert tags["uplift_version"] == summary["uplift_version"]
    assert tags["verdict"] == summary["decision"]["verdict"]
    assert tags["chosen_learner"] == summary["model_selection"]["chosen"]
    assert tags["mlflow.note.content"].startswith("# edtech-trial-lessons")
    assert f"**Verdict: {summary['decision']['verdict']}.**" in tags["mlflow.note.content"]
    params = parent.data.params
    assert params["population.source.n"] == "20000"
    assert params["assignment.salt"] == "edtech-trial-2026-11"
    assert params["outcomes.metrics.revenue.winsorize"] == "0.999"


def test_the_inputs_are_logged_by_schema_and_digest_without_rows(
    client: Any, logged: dict[str, Any]
) -> None:
    parent = _parent(client, logged)
    inputs = {d.dataset.name: d for d in parent.inputs.dataset_inputs}
    assert set(inputs) == {"population", "outcomes"}
    counts = logged["summary"]["assignment"]["counts"]
    for name, item in inputs.items():
        tags = {t.key: t.value for t in item.tags}
        assert tags["mlflow.data.context"] == name
        assert re.fullmatch(r"[0-9a-f]{64}", tags["sha256"])
        assert item.dataset.digest == tags["sha256"][:32]
        assert int(tags["rows"]) == sum(counts.values())
        assert item.dataset.profile in (None, "", "null", "{}")  # no data profile, no rows
        assert "simulate:trial_lessons" in item.dataset.source
    columns = {c["name"] for c in json.loads(inputs["population"].dataset.schema)["mlflow_colspec"]}
    assert {"customer_id", "recency_days", "plan", "arm"} <= columns
    outcome_columns = json.loads(inputs["outcomes"].dataset.schema)["mlflow_colspec"]
    assert {c["name"] for c in outcome_columns} >= {"took_trial", "bought", "revenue"}


def test_every_metric_the_readme_names_is_logged(client: Any, logged: dict[str, Any]) -> None:
    parent = _parent(client, logged)
    names = set(parent.data.metrics)
    patterns = _readme_patterns("- **Metrics** of the parent run")
    assert len(patterns) > 50  # the table was found and expanded
    missing = [p for p in patterns if not any(_regex(p).match(n) for n in names)]
    assert not missing, missing
    summary = logged["summary"]
    assert parent.data.metrics["policy.per_customer"] == pytest.approx(
        summary["policy"]["per_customer"]
    )
    assert parent.data.metrics["n_eligible"] == summary["n_eligible"]
    # every learner's nested run has the per-arm metrics of the second table
    learner_patterns = _readme_patterns("Metrics of each learner's nested run")
    assert len(learner_patterns) == 9
    for child in _children(client, parent):
        missing = [
            p for p in learner_patterns if not any(_regex(p).match(n) for n in child.data.metrics)
        ]
        assert not missing, (child.info.run_name, missing)


def test_one_nested_run_per_learner_with_its_figure(client: Any, logged: dict[str, Any]) -> None:
    parent = _parent(client, logged)
    children = _children(client, parent)
    assert sorted(c.info.run_name for c in children) == sorted(LEARNERS)
    chosen = [c.info.run_name for c in children if c.data.tags["chosen"] == "true"]
    assert chosen == [logged["summary"]["model_selection"]["chosen"]]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.params["folds"] == "5"
        listed = {a.path for a in client.list_artifacts(child.info.run_id, "figures")}
        assert listed == {"figures/qini.png"}


def _all_artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _all_artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_the_artifacts_are_on_the_server(
    client: Any, logged: dict[str, Any], tmp_path: Path
) -> None:
    parent = _parent(client, logged)
    run_id = parent.info.run_id
    listed = _all_artifacts(client, run_id)
    expected = {
        "memo.html",
        "spec/spec.yaml",
        "spec.json",
        "summary.json",
        "assignment/srm.json",
        "assignment/balance.csv",
        "effects.csv",
        "segment_effects.csv",
        "segments.csv",
        "models.csv",
        "models/comparison.csv",
        "models/importance.csv",
        "models/calibration/two_lessons.csv",
        "models/calibration/four_lessons.csv",
        "migration/transitions.csv",
        "migration/move_up.csv",
        "figures/segment_forest.png",
        "figures/profit_curve.png",
        "figures/qini.png",
        "figures/calibration.png",
        "figures/migration.png",
    }
    assert expected <= listed, expected - listed
    summary = json.loads(
        Path(client.download_artifacts(run_id, "summary.json", str(tmp_path))).read_text()
    )
    assert summary == logged["summary"]
    srm = json.loads(
        Path(client.download_artifacts(run_id, "assignment/srm.json", str(tmp_path))).read_text()
    )
    assert srm["srm_p_value"] == pytest.approx(logged["summary"]["assignment"]["srm_p_value"])
    spec = json.loads(
        Path(client.download_artifacts(run_id, "spec.json", str(tmp_path))).read_text()
    )
    assert spec["population"]["source"]["n"] == 20_000
    assert spec["models"]["folds"] == 5  # a default, filled in
    for figure in (p for p in expected if p.endswith(".png")):
        data = Path(client.download_artifacts(run_id, figure, str(tmp_path))).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), figure
    memo = Path(client.download_artifacts(run_id, "memo.html", str(tmp_path))).read_text()
    assert 'id="verdict"' in memo and logged["summary"]["decision"]["verdict"] in memo


def test_the_logged_model_loads_from_the_server_and_scores(
    server: str, client: Any, logged: dict[str, Any]
) -> None:
    parent = _parent(client, logged)
    model = load_scoring_model(parent.data.tags[MODEL_URI_TAG], tracking_uri=server)
    sim = simulate("trial_lessons", 500, 99, ["two_lessons", "four_lessons"])
    base = sim.population
    base = base[(base["applied_premium"] == 1) & (base["bought_premium_before"] == 0)]
    scores = model.predict(base)
    assert len(scores) == len(base)
    net = scores[["net_value_two_lessons", "net_value_four_lessons"]].to_numpy()
    assert np.isfinite(net).all()
    best = np.where(
        net.max(axis=1) > 0, np.array(["two_lessons", "four_lessons"])[net.argmax(axis=1)], "none"
    )
    assert (scores["recommended_arm"].to_numpy() == best).all()
    assert model.learner == logged["summary"]["model_selection"]["chosen"]


def test_no_customer_row_reaches_the_server(
    server: str, client: Any, logged: dict[str, Any], tmp_path: Path
) -> None:
    # the model's input example is synthetic; the simulator's ids are c1, c2, ...
    import mlflow

    parent = _parent(client, logged)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=parent.data.tags[MODEL_URI_TAG],
            dst_path=str(tmp_path / "model"),
            tracking_uri=server,
        )
    )
    examples = [local / "input_example.json", local / "serving_input_example.json"]
    assert all(p.is_file() for p in examples)
    for path in examples:
        text = path.read_text()
        assert "example-1" in text
        assert not re.search(r'"c[0-9]+"', text), path.name
    run_files = tmp_path / "run"
    client.download_artifacts(parent.info.run_id, "", str(run_files))
    for path in run_files.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".yaml", ".html"):
            text = re.sub(r"data:image/png;base64,[^\"]+", "", path.read_text())
            assert not re.search(r"\bc[0-9]{2,}\b", text), path


def test_uplift_runs_and_uplift_report_read_the_server(
    server: str, logged: dict[str, Any], tmp_path: Path
) -> None:
    summary = logged["summary"]
    run_id = summary["mlflow_run_id"]
    listed = uplift("runs", "--tracking-uri", server, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    assert summary["decision"]["verdict"] in row and "trial_lessons" in row
    memo = tmp_path / "memo.html"
    built = uplift("report", run_id, "--tracking-uri", server, "--out", str(memo), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    html = memo.read_text(encoding="utf-8")
    assert 'id="verdict"' in html and summary["decision"]["reason"][:40] in html
    assert html.count("data:image/png;base64,") == 5
    missing = uplift("report", "0" * 32, "--tracking-uri", server, cwd=tmp_path)
    assert missing.returncode == 2
    assert f"run '{'0' * 32}'" in missing.stderr and "Traceback" not in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.html"]  # nothing else
