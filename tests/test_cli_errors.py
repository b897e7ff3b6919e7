"""End-to-end tests of the command line's error contract (DESIGN.md section 4).

Bad input (spec, data, arguments) exits with code 2 and a one-paragraph message on stderr,
never a traceback unless ``--verbose`` asks for one. Every command runs in a subprocess,
as a user would run it, with the MLflow store under ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from cli_support import ERROR, EXAMPLE, error_paragraph, uplift

from uplift.summary import shipped_schema


def tracking(tmp_path: Path) -> list[str]:
    return ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the example"
    return text.replace(old, new)


def set_eligible(expression: str) -> Callable[[str], str]:
    return lambda t: re.sub(r"(?m)^  eligible: .*$", f"  eligible: {expression}", t, count=1)


# Edits of the example spec, with what the error message must name (tests/test_spec.py has
# more, with line numbers; these check that the command line passes the message on whole).
SPEC_CASES: dict[str, tuple[Callable[[str], str], tuple[str, ...]]] = {
    "unknown-top-level-key": (lambda t: t + "colour: blue\n", ("colour", "unknown key")),
    "unknown-nested-key": (
        lambda t: replace_once(t, "  features: [", "  featurez: ["),
        ("population.featurez",),
    ),
    "wrong-type": (
        lambda t: replace_once(t, "n: 200000", "n: many"),
        ("population.source.n", "'many'"),
    ),
    "weights-sum-above-1": (
        lambda t: replace_once(t, "four_lessons: 0.4}", "four_lessons: 0.5}"),
        ("assignment.arms", "1.1"),
    ),
    "unknown-primary-metric": (
        lambda t: replace_once(t, "primary: bought", "primary: profit"),
        ("outcomes.primary", "profit"),
    ),
    "function-call": (set_eligible("len(plan) > 2"), ("population.eligible", "len(")),
    "dunder-import": (set_eligible("__import__('os')"), ("population.eligible", "__import__(")),
    "missing-required-key": (
        lambda t: replace_once(t, "  window_days: 60\n", ""),
        ("outcomes.window_days", "missing"),
    ),
    "duplicate-key": (
        lambda t: replace_once(t, "  window_days: 60\n", "  window_days: 60\n  window_days: 9\n"),
        ("outcomes.window_days", "twice"),
    ),
    "invalid-yaml": (lambda t: replace_once(t, "  owner: ", "\towner: "), ("YAML", "line")),
    "top-level-list": (lambda t: "- a\n- b\n", ("mapping", "list")),
}

RUN_CASES = ["unknown-top-level-key", "weights-sum-above-1", "function-call"]


def write_spec(tmp_path: Path, case: str) -> Path:
    edit, _ = SPEC_CASES[case]
    text = edit(EXAMPLE.read_text(encoding="utf-8"))
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- malformed specs ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_validate_refuses_a_malformed_spec(case: str, tmp_path: Path) -> None:
    path = write_spec(tmp_path, case)
    result = uplift("validate", str(path), cwd=tmp_path)
    message = error_paragraph(result)
    assert str(path) in message
    for snippet in SPEC_CASES[case][1]:
        assert snippet in message, f"{snippet!r} not in: {message}"
    assert "valid." not in result.stdout


@pytest.mark.parametrize("case", RUN_CASES)
def test_run_refuses_a_malformed_spec(case: str, tmp_path: Path) -> None:
    path = write_spec(tmp_path, case)
    result = uplift(
        "run", str(path), "--summary", "summary.json", *tracking(tmp_path), cwd=tmp_path
    )
    message = error_paragraph(result)
    for snippet in SPEC_CASES[case][1]:
        assert snippet in message
    assert not (tmp_path / "summary.json").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_validate_names_a_missing_spec_file(tmp_path: Path) -> None:
    result = uplift("validate", "nope.yaml", cwd=tmp_path)
    assert "nope.yaml" in error_paragraph(result)


def test_verbose_shows_the_traceback_and_still_exits_2(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "function-call")
    result = uplift("validate", str(path), "--verbose", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "SpecError" in result.stderr
    assert ERROR in result.stderr
    assert "len(" in result.stderr


def test_validate_accepts_the_example(tmp_path: Path) -> None:
    result = uplift("validate", str(EXAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "edtech-trial-lessons" in result.stdout
    assert result.stderr == ""


# --- data errors --------------------------------------------------------------------------


def population(n: int, seed: int = 0) -> pd.DataFrame:
    """An observed two-arm discount campaign with a real effect on revenue."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "discount"], size=n)
    bought = (rng.random(n) < 0.2 + 0.1 * (arm == "discount")).astype(int)
    return pd.DataFrame(
        {
            "customer_id": np.arange(100_001, 100_001 + n),
            "recency_days": rng.integers(1, 365, n),
            "frequency_180d": rng.poisson(3, n),
            "monetary_180d": rng.gamma(2.0, 50.0, n).round(2),
            "tenure_days": rng.integers(30, 2000, n),
            "plan": rng.choice(["basic", "pro"], n),
            "arm": arm,
            "revenue": (bought * rng.gamma(2.0, 30.0, n)).round(2),
            "bought": bought,
        }
    )


def csv_spec(tmp_path: Path, data_path: str, **overrides: object) -> Path:
    spec: dict[str, object] = {
        "name": "csv-discount",
        "hypothesis": {"kind": "lower_check_offer", "statement": "A discount raises revenue."},
        "population": {
            "source": {"kind": "csv", "path": data_path},
            "id": "customer_id",
            "features": ["recency_days", "frequency_180d", "monetary_180d", "tenure_days", "plan"],
        },
        "assignment": {"column": "arm", "control": "control"},
        "outcomes": {
            "source": {"kind": "population"},
            "window_days": 30,
            "metrics": {
                "revenue": {"column": "revenue", "kind": "continuous"},
                "bought": {"column": "bought", "kind": "binary"},
            },
            "primary": "revenue",
        },
        "economics": {"offer": {"kind": "lower_check_offer", "discount": 0.1}},
        "models": {"folds": 2},
        **overrides,
    }
    path = tmp_path / "csv_spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_csv_spec_is_valid(tmp_path: Path) -> None:
    # The data-error tests below must fail on the data, not on the spec.
    result = uplift("validate", str(csv_spec(tmp_path, "pop.csv")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "observed in column 'arm'" in result.stdout


def test_missing_population_file(tmp_path: Path) -> None:
    spec = csv_spec(tmp_path, "data/missing.csv")
    message = error_paragraph(uplift("run", str(spec), *tracking(tmp_path), cwd=tmp_path))
    assert "data/missing.csv" in message
    assert "population.source.path" in message
    assert "does not exist" in message


def test_duplicate_ids(tmp_path: Path) -> None:
    frame = population(300)
    frame.loc[7, "customer_id"] = frame.loc[3, "customer_id"]
    frame.to_csv(tmp_path / "pop.csv", index=False)
    spec = csv_spec(tmp_path, "pop.csv")
    result = uplift("run", str(spec), *tracking(tmp_path), cwd=tmp_path)
    message = error_paragraph(result, progress=True)
    assert "'customer_id'" in message
    assert "repeats 1 id" in message
    assert "100004" in message  # the repeated id, as written in the file
    assert "np.int64" not in message  # a numpy repr means nothing to a CRM manager


def test_control_label_absent(tmp_path: Path) -> None:
    population(300).to_csv(tmp_path / "pop.csv", index=False)
    spec = csv_spec(tmp_path, "pop.csv", assignment={"column": "arm", "control": "no_email"})
    message = error_paragraph(
        uplift("run", str(spec), *tracking(tmp_path), cwd=tmp_path), progress=True
    )
    assert "'no_email'" in message
    assert "assignment.control" in message
    assert "'arm'" in message


def test_rfm_purchases_that_end_after_launch_refused(tmp_path: Path) -> None:
    # RFM from a purchases table must look back from before the launch: an as_of on the
    # launch day is an exit 2 naming the key, and no run is begun
    population(300).to_csv(tmp_path / "pop.csv", index=False)
    pd.DataFrame(
        {"customer_id": [100_001, 100_002], "date": ["2024-03-01", "2024-03-30"], "amount": 5.0}
    ).to_csv(tmp_path / "purchases.csv", index=False)
    spec = csv_spec(
        tmp_path,
        "pop.csv",
        assignment={"column": "arm", "control": "control", "launched": "2024-04-01"},
        value={
            "rfm": {
                "transactions": {"kind": "csv", "path": "purchases.csv"},
                "as_of": "2024-04-01",
            }
        },
    )
    result = uplift("run", str(spec), *tracking(tmp_path), cwd=tmp_path)
    message = error_paragraph(result, progress=True)
    assert message.startswith("value.rfm.as_of: ")
    assert "before the launch on 2024-04-01, found 2024-04-01" in message
    store = tmp_path / "mlflow.db"
    if store.exists():  # the store is checked before the work starts; no run is begun
        with closing(sqlite3.connect(store)) as db:
            assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


# --- a valid run --------------------------------------------------------------------------


class ValidRun:
    """The slow end-to-end run, started before the other tests so that it overlaps them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        population(3000).to_csv(directory / "pop.csv", index=False)
        self.spec = csv_spec(directory, "pop.csv")
        self.summary_path = directory / "out" / "summary.json"
        self.uri = f"sqlite:///{directory}/mlflow.db"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uplift",
                "run",
                str(self.spec),
                "--summary",
                str(self.summary_path),
                "--tracking-uri",
                self.uri,
            ],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> subprocess.CompletedProcess[str]:
        stdout, stderr = self.process.communicate(timeout=120)
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, stdout, stderr
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture(scope="module", autouse=True)
def valid_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValidRun]:
    run = ValidRun(tmp_path_factory.mktemp("valid_run"))
    yield run
    run.stop()


def test_valid_csv_run_writes_the_summary(valid_run: ValidRun) -> None:
    result = valid_run.result()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Verdict" in result.stdout
    summary = json.loads(valid_run.summary_path.read_text(encoding="utf-8"))
    # the shipped schema requires every key of DESIGN.md section 4
    jsonschema.validate(summary, shipped_schema())
    assert summary["experiment"] == "csv-discount"
    assert summary["tracking_uri"] == valid_run.uri
    assert re.fullmatch(r"[0-9a-f]{32}", summary["mlflow_run_id"])
    assert summary["mlflow_run_id"] in result.stdout
    assert sum(summary["assignment"]["counts"].values()) == 3000
    assert {row["arm"] for row in summary["effects"]} == {"discount"}
    assert {row["name"] for row in summary["models"]} == {"t_learner"}
    assert summary["decision"]["verdict"]
    assert (valid_run.directory / "mlflow.db").is_file()


# --- usage errors -------------------------------------------------------------------------


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = uplift("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "frobnicate" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = uplift("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
    assert "Traceback" not in result.stderr
