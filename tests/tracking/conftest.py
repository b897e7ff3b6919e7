"""Fixtures of the tracking tests: a real ``mlflow server`` and a run logged to it.

Both are session-scoped: the server starts once, and the example run (about 30 s) is
logged once for the server tests and the memo's browser test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cli_support import EXAMPLE, free_port, start_mlflow_server, stop_server, uplift


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    try:
        process = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def logged(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example run logged to the server; its summary as written locally."""
    work = tmp_path_factory.mktemp("run")
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["population"]["source"]["n"] = 20_000
    spec["outcomes"]["metrics"]["revenue"]["winsorize"] = 0.999
    spec["ledger"]["url"] = f"sqlite:///{work / 'ledger.db'}"
    path = work / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = uplift(
        "run", str(path), "--tracking-uri", server, "--summary", str(work / "s.json"), cwd=work
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((work / "s.json").read_text())
    return {"summary": summary, "work": work, "spec": spec, "stdout": result.stdout}


@pytest.fixture(scope="session")
def client(server: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server)
