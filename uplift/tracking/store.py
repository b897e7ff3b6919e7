"""Reading an MLflow tracking store: its URI, quiet logging, and the errors it raises.

Reading never creates a store: a SQLite URI whose file does not exist is an error that
names the path and the command that makes one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from uplift.errors import TrackingError

__all__ = ["SQLITE", "absolute_uri", "existing_store", "first_line", "quiet_mlflow"]

SQLITE = "sqlite:///"


def absolute_uri(uri: str) -> str:
    """A relative SQLite path made absolute against the working directory; nothing created."""
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str((Path.cwd() / uri[len(SQLITE) :]).resolve())
    return uri


def existing_store(uri: str, *, needed_for: str, rerun: str) -> str:
    """``uri`` made absolute, after checking that a SQLite store's file exists.

    Raises
    ------
    TrackingError
        For a SQLite URI whose database file does not exist.
    """
    resolved = absolute_uri(uri)
    if resolved.startswith(SQLITE) and not Path(resolved[len(SQLITE) :]).is_file():
        raise TrackingError(
            f"tracking.uri {uri!r}: there is no MLflow store at {resolved[len(SQLITE) :]}, "
            f"so {needed_for}. Run `{rerun}` first, or pass --tracking-uri."
        )
    return resolved


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """No artifact progress bars, and MLflow's INFO lines kept off the terminal."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    if before is None:
        os.environ[name] = "false"
    for logger in ("alembic", "mlflow"):
        if logging.getLogger(logger).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(logger).setLevel(logging.WARNING)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
