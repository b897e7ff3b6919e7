"""Logging a run to MLflow: connection, parameters, metrics, tags and artifacts.

Relative SQLite paths in a tracking URI (``sqlite:///experiments/mlflow.db``) are
resolved against the working directory, and for a local store the artifacts go to
``mlartifacts`` beside the database, never to ``./mlruns`` wherever the command ran.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd

from uplift.errors import TrackingError
from uplift.tracking.store import SQLITE, absolute_uri, first_line

__all__ = ["RunLogger", "flatten", "metric_name", "open_run", "resolve_tracking_uri"]


def resolve_tracking_uri(uri: str) -> str:
    """Make a relative SQLite path absolute and create its folder; leave other URIs alone."""
    resolved = absolute_uri(uri)
    if resolved.startswith(SQLITE):
        Path(resolved[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    return resolved


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}``, lists written as JSON."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            out[name] = text[:500]
    return out


def metric_name(*parts: str) -> str:
    """A metric name from parts: lower case, joined by dots, other characters as ``_``.

    MLflow accepts letters, digits, ``_ - . / :`` and spaces; a segment or feature label
    such as ``plan=pro`` becomes ``plan_pro``.
    """
    return ".".join(re.sub(r"[^a-z0-9_\-/:]", "_", str(p).strip().lower()) for p in parts)


class RunLogger:
    """Writes into one open MLflow run."""

    def __init__(self, run_id: str, tracking_uri: str, experiment_id: str) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id

    def params(self, params: Mapping[str, str]) -> None:
        import mlflow

        mlflow.log_params(dict(params))

    def metrics(self, metrics: Mapping[str, float]) -> None:
        import mlflow

        finite = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
        mlflow.log_metrics(finite)

    def tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        mlflow.set_tags(dict(tags))

    def text(self, text: str, path: str) -> None:
        import mlflow

        mlflow.log_text(text, path)

    def json(self, document: Mapping[str, Any], path: str) -> None:
        self.text(json.dumps(document, indent=2, allow_nan=False), path)

    def table(self, frame: pd.DataFrame, path: str) -> None:
        self.text(frame.to_csv(index=False), path)

    def figure(self, figure: Any, path: str) -> None:
        import matplotlib.pyplot as plt
        import mlflow

        mlflow.log_figure(figure, path)
        plt.close(figure)

    def dataset(
        self,
        name: str,
        columns: Mapping[str, str],
        digest: str,
        source: str,
        *,
        rows: int,
    ) -> None:
        """Log an input dataset by its schema and digest, never its rows.

        Parameters
        ----------
        name : str
            The dataset's name, also its input context (``population``, ``outcomes``).
        columns : mapping
            Column -> pandas dtype name.
        digest : str
            The data's SHA-256 (hex); MLflow keeps its first 32 characters as the dataset
            digest, the input's ``sha256`` tag keeps all of it.
        source : str
            Where the data came from: a file path, or a description such as
            ``simulate:trial_lessons``.
        rows : int
            Rows in the dataset, kept as the input's ``rows`` tag.
        """
        import mlflow
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source import DatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import ColSpec, Schema

        origin: DatasetSource
        if Path(source).exists():
            origin = resolve_dataset_source(str(Path(source).resolve()))
        else:
            origin = CodeDatasetSource({"source": source})
        schema = Schema([ColSpec(_mlflow_type(dtype), column) for column, dtype in columns.items()])
        mlflow.log_input(
            MetaDataset(origin, name=name, digest=digest[:32], schema=schema),  # type: ignore[abstract]
            context=name,
            tags={"sha256": digest, "rows": str(rows)},
        )

    def binary(self, data: bytes, path: str) -> None:
        """Log ``data`` as the artifact ``path`` (``folder/name``)."""
        import mlflow

        folder, _, name = path.rpartition("/")
        with TemporaryDirectory(prefix="uplift-artifact-") as tmp:
            local = Path(tmp) / name
            local.write_bytes(data)
            mlflow.log_artifact(str(local), folder or None)

    def file(self, source: Path, folder: str) -> None:
        import mlflow

        mlflow.log_artifact(str(source), folder)

    @contextmanager
    def child(self, run_name: str) -> Iterator[RunLogger]:
        """A nested run under this one; it ends FAILED if the block raises.

        While the block runs, the logging methods write into the nested run.
        """
        import mlflow

        run = mlflow.start_run(experiment_id=self.experiment_id, run_name=run_name, nested=True)
        try:
            yield RunLogger(run.info.run_id, self.tracking_uri, self.experiment_id)
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")


def _mlflow_type(dtype: str) -> str:
    """MLflow's column type for a pandas dtype name."""
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        return "long"
    if dtype.startswith(("float", "Float")):
        return "double"
    if dtype in ("bool", "boolean"):
        return "boolean"
    if dtype.startswith("datetime"):
        return "datetime"
    return "string"


def check_store(uri: str, experiment: str) -> str:
    """Reach the tracking store before any work, and make sure ``experiment`` exists in it.

    Uses the quick reading settings (:data:`uplift.tracking.store.READING`): a server that
    is down fails in seconds, not after MLflow's default retries.

    Returns
    -------
    str
        The experiment's id.

    Raises
    ------
    TrackingError
        When the store cannot be reached or used, naming the URI and the cause.
    """
    import mlflow

    from uplift.tracking.store import READING, quiet_mlflow

    resolved = resolve_tracking_uri(uri)
    with quiet_mlflow(READING):
        mlflow.set_tracking_uri(resolved)
        try:
            return _experiment_id(experiment, resolved)
        except Exception as exc:  # MLflow raises many types for an unusable store
            raise TrackingError(
                f"tracking.uri {uri!r}: the MLflow tracking store cannot be reached "
                f"({first_line(exc)}), so nothing was computed. Start the server or fix the "
                f"URI (tracking.uri of the spec, or --tracking-uri), then run again."
            ) from None


def _experiment_id(experiment: str, resolved: str) -> str:
    import mlflow

    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if resolved.startswith(SQLITE):
        location = (Path(resolved[len(SQLITE) :]).parent / "mlartifacts").as_uri()
    return str(mlflow.create_experiment(experiment, artifact_location=location))


@contextmanager
def open_run(uri: str, experiment: str, run_name: str) -> Iterator[RunLogger]:
    """Start an MLflow run in ``experiment`` at ``uri``; it ends FAILED if the block raises.

    Raises
    ------
    TrackingError
        When the tracking store cannot be reached or the experiment cannot be created.
    """
    import mlflow

    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    try:
        experiment_id = _experiment_id(experiment, resolved)
    except Exception as exc:  # MLflow raises many types for an unusable store
        raise TrackingError(
            f"tracking.uri {uri!r}: the MLflow tracking store cannot be used "
            f"({first_line(exc)}). Check the "
            f"URI, that the server is running, or pass --tracking-uri."
        ) from exc
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
    try:
        yield RunLogger(run.info.run_id, resolved, experiment_id)
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
