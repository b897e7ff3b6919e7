"""What reaches the tracking server about customers: nothing, unless the spec opts in.

An experiment that already ran, with ids no other text could hold (``zq-00017-cust``), is
run with ``uplift run`` against a real ``mlflow server`` (the session fixture). Then every
parameter, tag, metric name, input dataset and artifact of the run, and of its nested
runs, is read back from the server and searched for every id. With
``tracking.per_customer`` the run logs ``customers/scores.parquet``; its keys must equal
HMAC-SHA256 of the id under the salt, computed here with Python's ``hmac`` module (RFC
2104), and neither the ids nor the salt may appear anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from cli_support import error_paragraph

N = 600
SALT = "a-secret-of-the-crm-team-2026"


def ids() -> list[str]:
    return [f"zq-{k:05d}-cust" for k in range(N)]


def write_experiment(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "customer_id": ids(),
            "arm": np.where(np.arange(N) % 2 == 0, "control", "email"),
            "tenure": rng.integers(1, 100, N).astype(float),
            "plan": rng.choice(["free", "pro"], N),
            "revenue": rng.gamma(2.0, 3.0, N),
        }
    )
    path = folder / "experiment.parquet"
    frame.to_parquet(path, index=False)
    return path


def write_spec(folder: Path, name: str, per_customer: dict[str, Any] | None) -> Path:
    raw: dict[str, Any] = {
        "name": name,
        "hypothesis": {"kind": "channel", "statement": "an e-mail lifts revenue"},
        "population": {
            "source": {"kind": "parquet", "path": str(write_experiment(folder))},
            "features": ["tenure", "plan"],
        },
        "assignment": {"column": "arm", "control": "control"},
        "outcomes": {
            "window_days": 30,
            "metrics": {"revenue": {"column": "revenue", "kind": "continuous"}},
            "primary": "revenue",
        },
        "value": {"segments": "plan"},
        "models": {"learners": ["t_learner"], "base": "linear", "folds": 2},
        "tracking": {"experiment": "privacy"},
    }
    if per_customer is not None:
        raw["tracking"]["per_customer"] = per_customer
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def run(folder: Path, server: str, salt: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "UPLIFT_CUSTOMER_SALT"}
    if salt is not None:
        env["UPLIFT_CUSTOMER_SALT"] = salt
    return subprocess.run(
        [sys.executable, "-m", "uplift", "run", "spec.yaml", "--tracking-uri", server],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def everything_logged(client: Any, name: str, folder: Path) -> tuple[str, dict[str, bytes]]:
    """The text of every parameter, tag, metric name and input of the runs named ``name``
    (the parent and its nested runs), and every artifact's bytes by path."""
    experiment = client.get_experiment_by_name("privacy")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.runName = '{name}'"
    )
    assert len(runs) == 1
    parent = runs[0]
    nested = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    texts, artifacts = [], {}
    places = []
    for found in [parent, *nested]:
        data = found.data
        texts += [*map(str, data.params.items()), *map(str, data.tags.items()), *data.metrics]
        texts += [str(d.dataset) for d in (found.inputs.dataset_inputs if found.inputs else [])]
        places.append((found.info.run_id, found.info.artifact_uri))
    # MLflow 3 keeps a logged model's files apart from its run's artifacts
    for model in client.search_logged_models([experiment.experiment_id]):
        if model.source_run_id == parent.info.run_id:
            texts += [str(model.params), str(model.tags), model.name]
            places.append((model.model_id, model.artifact_location))
    assert len(places) > 2, "no nested run or no logged model was found"
    for key, uri in places:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(folder / key), tracking_uri=client.tracking_uri
            )
        )
        for path in local.rglob("*"):
            if path.is_file():
                artifacts[f"{key}/{path.relative_to(local)}"] = path.read_bytes()
    return "\n".join(texts), artifacts


def readable(path: str, data: bytes) -> str:
    """An artifact as text to search: Parquet tables as CSV, anything else as bytes."""
    if path.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pandas().to_csv(index=False)
    return data.decode("latin-1")


def assert_nowhere(needles: list[str], text: str, artifacts: dict[str, bytes]) -> None:
    found = [n for n in needles if n in text]
    assert not found, f"{found[:3]} in the run's parameters, tags, metrics or inputs"
    for path, data in artifacts.items():
        content = readable(path, data)
        found = [n for n in needles if n in content]
        assert not found, f"{found[:3]} in the artifact {path}"


def logged_run(
    client: Any, server: str, folder: Path, name: str, per_customer: dict[str, Any] | None,
    salt: str | None = None,
) -> tuple[str, dict[str, bytes]]:  # fmt: skip
    """``uplift run`` of the experiment called ``name``, and everything it logged."""
    write_spec(folder, name, per_customer)
    result = run(folder, server, salt=salt)
    assert result.returncode == 0, result.stderr
    return everything_logged(client, name, folder)


def scores_of(artifacts: dict[str, bytes]) -> pd.DataFrame:
    """The one ``customers/scores.parquet`` the run logged."""
    (path,) = [p for p in artifacts if p.endswith("customers/scores.parquet")]
    return pq.read_table(io.BytesIO(artifacts[path])).to_pandas()


def test_a_run_sends_no_customer_id_unless_the_spec_opts_in(
    server: str, client: Any, tmp_path: Path
) -> None:
    text, artifacts = logged_run(client, server, tmp_path, "private-by-default", None)
    assert any(p.endswith("summary.json") for p in artifacts)
    assert not any("customers/" in p for p in artifacts)
    # the model's pickle is searched as bytes, which works as it is not compressed: the
    # names of the features it was fitted on can be read in it
    pickled = [data for p, data in artifacts.items() if p.endswith((".joblib", ".pkl"))]
    assert pickled and all(b"tenure" in data for data in pickled), sorted(artifacts)
    assert_nowhere(ids(), text, artifacts)


def test_per_customer_output_is_keyed_by_a_salted_hash_and_the_salt_stays_home(
    server: str, client: Any, tmp_path: Path
) -> None:
    text, artifacts = logged_run(
        client, server, tmp_path, "keyed-customers", {"key": "hashed"}, salt=SALT
    )
    scores = scores_of(artifacts)
    expected = {
        hmac.new(SALT.encode(), cid.encode(), hashlib.sha256).hexdigest()[:32]: arm
        for cid, arm in zip(ids(), np.where(np.arange(N) % 2 == 0, "control", "email"), strict=True)
    }
    assert len(scores) == N
    assert dict(zip(scores["customer_key"], scores["arm"], strict=True)) == expected
    assert list(scores.columns) == [
        "customer_key",
        "arm",
        "segment",
        "uplift_email",
        "net_value_email",
        "policy_arm",
    ]
    assert scores["uplift_email"].notna().all()
    assert set(scores["policy_arm"]) <= {"email", "none"}
    assert_nowhere([*ids(), SALT], text, artifacts)


def test_raw_ids_are_logged_only_when_the_spec_says_key_id(
    server: str, client: Any, tmp_path: Path
) -> None:
    _, artifacts = logged_run(client, server, tmp_path, "ids-opted-in", {"key": "id"})
    assert sorted(scores_of(artifacts)["customer_id"]) == ids()


@pytest.mark.parametrize(("salt", "found"), [(None, "it is not set"), ("short", "5 characters")])
def test_a_missing_or_short_salt_stops_the_run_before_any_work(
    server: str, tmp_path: Path, salt: str | None, found: str
) -> None:
    write_spec(tmp_path, "no-salt", {"key": "hashed"})
    message = error_paragraph(run(tmp_path, server, salt=salt))
    assert "UPLIFT_CUSTOMER_SALT" in message and found in message
    assert "at least 16 characters" in message
