"""``uplift runs`` and ``uplift report`` on a local SQLite store, their errors included.

The store is filled through MLflow's own API (a parent run with the artifacts ``uplift
run`` logs, a nested learner run, a failed run, a run of another tool), so these tests
need no pipeline run; ``tests/tracking/test_mlflow_server.py`` covers a real run on a
real server.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
from pathlib import Path
from typing import Any

import mlflow
import pytest
from rich.console import Console

from uplift import cli
from uplift.cli import main

ERROR = "uplift: error: "


def _call(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), err
    return lines[0][len(ERROR) :]


SUMMARY: dict[str, Any] = {
    "experiment": "toy",
    "hypothesis_kind": "channel",
    "alpha": 0.05,
    "decision": {"verdict": "no_go", "reason": "Every arm loses money.", "best_arm": "sms"},
}
SPEC: dict[str, Any] = {"name": "toy", "hypothesis": {"kind": "channel", "statement": "SMS pays."}}


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("crm", artifact_location=(tmp_path / "art").as_uri())
    ids = {"uri": uri}
    with mlflow.start_run(experiment_id=experiment, run_name="toy") as parent:
        mlflow.set_tags({"verdict": "no_go", "hypothesis_kind": "channel", "owner": "me"})
        mlflow.log_metric("policy.per_customer", -0.25)
        mlflow.log_dict(SUMMARY, "summary.json")
        mlflow.log_dict(SPEC, "spec.json")
        with mlflow.start_run(experiment_id=experiment, run_name="t_learner", nested=True) as c:
            ids["child"] = c.info.run_id
        ids["parent"] = parent.info.run_id
    with mlflow.start_run(experiment_id=experiment, run_name="broken") as failed:
        mlflow.set_tags({"verdict": "go", "hypothesis_kind": "channel"})
        mlflow.log_dict(SUMMARY, "summary.json")
        mlflow.log_dict(SPEC, "spec.json")
        ids["failed"] = failed.info.run_id
    mlflow.MlflowClient(uri).set_terminated(ids["failed"], status="FAILED")
    with mlflow.start_run(experiment_id=experiment, run_name="other tool") as other:
        ids["other"] = other.info.run_id
    return ids


def test_runs_lists_the_analyses_newest_first_without_nested_runs(
    store: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _call(["runs", "--tracking-uri", store["uri"]], capsys)
    assert code == 0, err
    rows = [line for line in out.splitlines() if "│" in line and "run id" not in line]
    listed = [next(i for i in store.values() if i in row) for row in rows]
    assert listed == [store["other"], store["failed"], store["parent"]]
    assert store["child"] not in out
    parent_row = rows[2]
    assert "no_go" in parent_row and "-0.25" in parent_row and "FINISHED" in parent_row
    assert "FAILED" in rows[1]


def test_runs_and_report_errors_are_one_paragraph_with_exit_2(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    code, _, err = _call(["runs", "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert f"there is no MLflow store at {missing}" in _error(code, err)
    assert not missing.parent.exists()  # reading never creates a store

    code, _, err = _call(["runs", "--tracking-uri", store["uri"], "--experiment", "x"], capsys)
    assert "--experiment 'x': no such MLflow experiment" in _error(code, err)

    uri = store["uri"]
    code, _, err = _call(["report", "0" * 32, "--tracking-uri", uri], capsys)
    assert f"run '{'0' * 32}': no such run at {uri}." == _error(code, err)

    code, _, err = _call(["report", store["child"], "--tracking-uri", uri], capsys)
    message = _error(code, err)
    assert "is a learner's nested run" in message and store["parent"] in message

    code, _, err = _call(["report", store["other"], "--tracking-uri", uri], capsys)
    assert "has no summary.json: it was not logged by `uplift run`" in _error(code, err)

    code, _, err = _call(["runs", "--tracking-uri", "ftp://nowhere"], capsys)
    assert "tracking URI 'ftp://nowhere': the MLflow tracking store cannot be read" in _error(
        code, err
    )


def test_report_writes_the_memo_atomically_and_says_when_the_run_failed(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "memo.html"
    args = ["report", store["failed"], "--tracking-uri", store["uri"], "--out", str(target)]
    code, out, err = _call(args, capsys)
    assert code == 0, err
    assert f"run {store['failed']} is FAILED, not FINISHED" in err
    assert f"Wrote the memo of run {store['failed']} to {target}." in out
    html = target.read_text(encoding="utf-8")
    assert 'id="verdict"' in html and "Every arm loses money." in html
    assert sorted(p.name for p in folder.iterdir()) == ["memo.html"]

    # --out naming a folder: a clear error, and no temporary file left behind
    args = ["report", store["parent"], "--tracking-uri", store["uri"], "--out", str(folder)]
    code, _, err = _call(args, capsys)
    assert f"--out {str(folder)!r}: cannot write the memo there" in _error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["art", "mlflow.db", "out"])


def test_a_sigterm_swallowed_on_its_way_stops_the_command_at_its_next_stage() -> None:
    reporter = cli._Reporter()
    reporter.console = Console(file=io.StringIO(), force_terminal=False, width=120)
    reporter("population: 10 customers")
    # the handler's exception lands in code that swallows it, as pydantic's serializer
    # does when the signal arrives inside one of the spec's discriminator functions
    with contextlib.suppress(BaseException):
        cli._terminated(signal.SIGTERM, None)
    try:
        with pytest.raises(cli._Terminated):
            reporter("value: profit per segment")
        assert "profit per segment" not in reporter.console.file.getvalue()  # type: ignore[attr-defined]
    finally:
        cli._STOP.clear()
    reporter("value: profit per segment")  # a new command starts with the flag clear


def test_the_reporter_writes_plain_lines_off_a_terminal_and_a_bar_on_one() -> None:
    plain = cli._Reporter()
    plain.console = Console(file=io.StringIO(), force_terminal=False, width=120)
    with plain:
        plain("population: 10 customers")
        plain("uplift model: s_learner [1/2]")
    text = plain.console.file.getvalue()  # type: ignore[attr-defined]
    assert text.splitlines() == ["· population: 10 customers", "· uplift model: s_learner [1/2]"]

    live = cli._Reporter()
    live.console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with live:
        live("population: 10 customers")
        live("uplift model: s_learner [1/3]")
        live("uplift model: t_learner [2/3]")
        live("uplift model: x_learner [3/3]")
        assert live.progress is not None
        tasks = live.progress.tasks
        # one task per stage; the learners share one bar, now at step 3 of 3 (2 done)
        assert [t.total for t in tasks] == [1, 3]
        assert tasks[1].completed == 2 and "x_learner" in tasks[1].description
        live("value: profit per segment")
        assert tasks[1].completed == 3 and len(live.progress.tasks) == 3
    assert live.progress.finished
    assert "\x1b[" in live.console.file.getvalue()  # type: ignore[attr-defined]


def test_the_logged_spec_masks_a_ledger_password(tmp_path: Path) -> None:
    from uplift.pipeline import _loggable_spec
    from uplift.spec import load_spec

    example = Path(__file__).resolve().parents[1] / "configs" / "edtech_trial_lessons.yaml"
    text = example.read_text(encoding="utf-8").replace(
        "url: sqlite:///experiments/edtech-ledger.db",
        "url: postgresql+psycopg://crm:s3cret@db.example.com/ledger",
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    document, logged = _loggable_spec(load_spec(path), path)
    assert "s3cret" not in json.dumps(document) and "s3cret" not in logged
    assert document["ledger"]["url"] == "postgresql+psycopg://crm:***@db.example.com/ledger"
    assert "crm:***@db.example.com" in logged
