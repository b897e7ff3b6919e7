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

__all__ = [
    "READING",
    "SQLITE",
    "absolute_uri",
    "existing_store",
    "first_line",
    "quiet_mlflow",
]

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
            f"tracking URI {uri!r}: there is no MLflow store at {resolved[len(SQLITE) :]}, "
            f"so {needed_for}. Run `{rerun}` first, or give the URI of the store it logged "
            f"to (--tracking-uri)."
        )
    return resolved


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: MLflow's HTTP settings while reading a store: a server that does not answer fails in
#: seconds rather than after MLflow's default retries (minutes). A value the user set wins.
READING = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@contextmanager
def quiet_mlflow(settings: dict[str, str] | None = None) -> Iterator[None]:
    """No artifact progress bars, and MLflow's INFO lines kept off the terminal.

    ``settings`` are further environment variables for MLflow (such as :data:`READING`),
    each set only where the user has not set it, and removed again on exit.
    """
    wanted = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **(settings or {})}
    added = [name for name in wanted if name not in os.environ]
    for name in added:
        os.environ[name] = wanted[name]
    for logger in ("alembic", "mlflow"):
        if logging.getLogger(logger).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(logger).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
