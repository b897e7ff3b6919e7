"""When the tracking store fails: an unreachable server, and a run stopped by SIGTERM.

Each test runs ``uplift run`` as a user would, in a subprocess, on the example spec made
small. Before these changes the first one computed the whole analysis and then waited
through MLflow's retries (minutes) before it failed, and the second left its MLflow run
"RUNNING" for ever, since SIGTERM's default action ends the process on the spot.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from cli_support import EXAMPLE, error_paragraph, uplift


def small_spec(folder: Path, **models: Any) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["population"]["source"]["n"] = 4000
    raw["models"] = {"learners": ["t_learner"], "folds": 2, **models}
    raw["ledger"] = {"url": "sqlite:///ledger.db"}
    raw["tracking"]["uri"] = "sqlite:///mlflow.db"
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_tracking_server_is_an_error_before_any_work(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    done = uplift("run", str(spec), "--tracking-uri", uri, cwd=tmp_path, timeout=120)
    seconds = time.monotonic() - began
    message = error_paragraph(done)  # no progress line before it: no work was started
    assert f"tracking.uri {uri!r}: the MLflow tracking store cannot be reached" in message
    assert "nothing was computed" in message
    assert seconds < 60, seconds
    assert not (tmp_path / "ledger.db").exists()  # the campaign was not even launched


def test_a_run_stopped_by_sigterm_is_marked_failed_in_mlflow(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    store = tmp_path / "mlflow.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "uplift", "run", str(spec)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _running(store):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the MLflow run never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "uplift: terminated (SIGTERM)." in stderr and "Traceback" not in stderr
    with sqlite3.connect(store) as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs")]
    assert statuses == ["FAILED"]


def _running(store: Path) -> bool:
    if not store.exists():
        return False
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT status FROM runs").fetchall()
    except sqlite3.OperationalError:  # the tables are not there yet, or the file is busy
        return False
    return [row[0] for row in rows] == ["RUNNING"]
