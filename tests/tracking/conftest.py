"""Fixtures of the tracking tests: a real ``mlflow server`` and a run logged to it.

Both are session-scoped: the server starts once, and the example run (about 30 s) is
logged once for the server tests and the memo's browser test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import EXAMPLE, uplift


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer {url}/health in {seconds:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = root / "server.log"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'store.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, log, 120)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
