"""What the command-line tests share: running ``uplift`` as a user would, reading its error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "edtech_trial_lessons.yaml"
ERROR = "uplift: error: "


def uplift(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m uplift ARGS`` in ``cwd`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "uplift", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
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
