"""What the command-line tests share: running ``uplift`` as a user would, reading its error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "edtech_trial_lessons.yaml"
ERROR = "uplift: error: "


def uplift(
    *args: str, cwd: Path, timeout: int = 300, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m uplift ARGS`` in ``cwd`` and capture its output.

    ``env`` adds to (or replaces in) this process's environment.
    """
    return subprocess.run(
        [sys.executable, "-m", "uplift", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def error_paragraph(result: subprocess.CompletedProcess[str], progress: bool = False) -> str:
    """The one error paragraph on stderr; ``progress`` allows progress lines before it."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith(ERROR), result.stderr
    before = lines[:-1]
    if progress:
        assert all(line.startswith("· ") for line in before), result.stderr
    else:
        assert not before, result.stderr
    return lines[-1][len(ERROR) :]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_mlflow_server(root: Path, port: int, seconds: float = 120) -> subprocess.Popen[bytes]:
    """``mlflow server`` on 127.0.0.1:``port``, its SQLite store and artifacts in ``root``.

    It runs in a session of its own, so :func:`stop_server` reaches its workers too.
    Returns once ``/health`` answers; raises ``RuntimeError`` with its log otherwise.
    """
    root.mkdir(parents=True, exist_ok=True)
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
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=root, start_new_session=True
        )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    stop_server(process, signal.SIGKILL)
    raise RuntimeError(f"mlflow server did not answer in {seconds:.0f} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal a server started by :func:`start_mlflow_server` and its workers; wait for it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
