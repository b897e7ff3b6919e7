"""Logging a run to MLflow: connection, parameters, metrics, tags and artifacts.

Relative SQLite paths in a tracking URI (``sqlite:///experiments/mlflow.db``) are
resolved against the working directory, and for a local store the artifacts go to
``mlartifacts`` beside the database, never to ``./mlruns`` wherever the command ran.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from uplift.errors import TrackingError
from uplift.tracking.store import SQLITE, absolute_uri, first_line

if TYPE_CHECKING:
    from uplift.scoring import ScoringModel
    from uplift.tracking.journal import Journal

__all__ = [
    "WRITING",
    "RunLogger",
    "check_store",
    "flatten",
    "metric_name",
    "open_run",
    "resolve_tracking_uri",
]


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


@dataclass
class _Link:
    """What a run and its nested runs share: whether the server was lost, and when."""

    lost: BaseException | None = None


class RunLogger:
    """Writes into one open MLflow run, and into its :class:`~uplift.tracking.journal.Journal`.

    Every call goes to the journal first, then to MLflow. Once an MLflow call fails (the
    server is gone), the run and its nested runs stop calling MLflow and write only the
    journal, which :func:`open_run` then keeps for ``uplift upload``.
    """

    def __init__(
        self,
        run_id: str,
        tracking_uri: str,
        experiment_id: str,
        journal: Journal | None = None,
        link: _Link | None = None,
    ) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.journal = journal
        self.link = link or _Link()

    def _send(self, call: Callable[[], Any]) -> None:
        if self.link.lost is not None:
            return
        if self.journal is None:
            call()
            return
        from mlflow.exceptions import MlflowException

        try:
            call()
        except (MlflowException, OSError) as exc:
            # what MLflow raises once a request has no answer (requests' errors are OSError);
            # another error is a fault of the run, not of the server, and propagates
            self.link.lost = exc

    def params(self, params: Mapping[str, str]) -> None:
        import mlflow

        if self.journal is not None:
            self.journal.params(params)
        self._send(lambda: mlflow.log_params(dict(params)))

    def metrics(self, metrics: Mapping[str, float]) -> None:
        import mlflow

        finite = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
        if self.journal is not None:
            self.journal.metrics(finite)
        self._send(lambda: mlflow.log_metrics(finite))

    def tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        if self.journal is not None:
            self.journal.tags(tags)
        self._send(lambda: mlflow.set_tags(dict(tags)))

    def text(self, text: str, path: str) -> None:
        self.binary(text.encode("utf-8"), path)

    def json(self, document: Mapping[str, Any], path: str) -> None:
        self.text(json.dumps(document, indent=2, allow_nan=False), path)

    def table(self, frame: pd.DataFrame, path: str) -> None:
        self.text(frame.to_csv(index=False), path)

    def parquet(self, frame: pd.DataFrame, path: str) -> None:
        """Log ``frame`` as a Parquet artifact (for tables too long for CSV)."""
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        self.binary(sink.getvalue().to_pybytes(), path)

    def figure(self, figure: Any, path: str) -> None:
        """Log a matplotlib figure as a PNG artifact; the figure is closed."""
        from uplift.tracking.figures import png_bytes

        self.binary(png_bytes(figure), path)

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
        if self.journal is not None:
            self.journal.dataset(
                name=name, columns=dict(columns), digest=digest, source=source, rows=rows
            )
        self._send(lambda: _log_input(name, columns, digest, source, rows))

    def binary(self, data: bytes, path: str) -> None:
        """Log ``data`` as the artifact ``path`` (``folder/name``)."""
        if self.journal is not None:
            self.journal.artifact(data, path)
        self._send(lambda: _log_bytes(data, path))

    def file(self, source: Path, folder: str) -> None:
        self.binary(source.read_bytes(), f"{folder}/{source.name}" if folder else source.name)

    def model(self, model: ScoringModel, frame: pd.DataFrame) -> None:
        """Log the scoring model (:func:`uplift.tracking.model_log.log_scoring_model`)."""
        from uplift.tracking.model_log import log_scoring_model, synthetic_example

        if self.journal is not None:
            self.journal.model(model, synthetic_example(model, frame))
        self._send(lambda: log_scoring_model(model, frame))

    @contextmanager
    def child(self, run_name: str) -> Iterator[RunLogger]:
        """A nested run under this one; it ends FAILED if the block raises.

        While the block runs, the logging methods write into the nested run.
        """
        import mlflow

        journal = self.journal.child(run_name) if self.journal is not None else None
        started: list[Any] = []

        def start() -> None:
            started.append(
                mlflow.start_run(experiment_id=self.experiment_id, run_name=run_name, nested=True)
            )

        self._send(start)
        run_id = started[0].info.run_id if started else ""
        nested = RunLogger(run_id, self.tracking_uri, self.experiment_id, journal, self.link)
        try:
            yield nested
        except BaseException:
            if started:
                _end_run("FAILED", self.link)
            raise
        if started:
            _end_run("FINISHED", self.link)


def _end_run(status: str, link: _Link) -> None:
    """End the innermost active run; with the server gone, only forget it here."""
    import mlflow
    from mlflow.tracking import fluent

    if link.lost is not None:
        stack = fluent._active_run_stack.get()  # what end_run pops before it calls the server
        if stack:
            stack.pop()
        return
    from mlflow.exceptions import MlflowException

    try:
        mlflow.end_run(status=status)  # pops the run, then tells the server
    except (MlflowException, OSError) as exc:  # the server is gone
        link.lost = exc


def _log_input(name: str, columns: Mapping[str, str], digest: str, source: str, rows: int) -> None:
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


def _log_bytes(data: bytes, path: str) -> None:
    import mlflow

    folder, _, name = path.rpartition("/")
    with TemporaryDirectory(prefix="uplift-artifact-") as tmp:
        local = Path(tmp) / name
        local.write_bytes(data)
        mlflow.log_artifact(str(local), folder or None)


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


def _unusable(uri: str, exc: BaseException) -> TrackingError:
    return TrackingError(
        f"tracking.uri {uri!r}: the MLflow tracking store cannot be used ({first_line(exc)}). "
        f"Check the URI, that the server is running, or pass --tracking-uri."
    )


#: MLflow's HTTP settings while a run logs: a server that stops answering is given up in
#: about a minute rather than MLflow's default retries (minutes a call); the run's
#: journal keeps what could not be sent. A value the user set wins.
WRITING = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@contextmanager
def open_run(
    uri: str,
    experiment: str,
    run_name: str,
    *,
    keep: Path | None = None,
    experiment_id: str | None = None,
) -> Iterator[RunLogger]:
    """Start an MLflow run in ``experiment`` at ``uri``; it ends FAILED if the block raises.

    Parameters
    ----------
    uri, experiment, run_name : str
        Where the run goes, and its name.
    keep : Path, optional
        A folder for the run's :class:`~uplift.tracking.journal.Journal`: everything
        logged is also written there. It is removed when the run reaches MLflow whole,
        and kept when the server was lost part way.
    experiment_id : str, optional
        The experiment's id as :func:`check_store` returned it, which spares looking it
        up again.

    Raises
    ------
    TrackingError
        When the tracking store cannot be reached or the experiment cannot be created;
        or, with ``keep``, when the server was lost while the run logged (the message
        names the kept folder and the command that uploads it).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from uplift.tracking.journal import Journal
    from uplift.tracking.store import quiet_mlflow

    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    with quiet_mlflow(WRITING if keep is not None else None):
        try:
            experiment_id = experiment_id or _experiment_id(experiment, resolved)
        except Exception as exc:  # MLflow raises many types for an unusable store
            raise _unusable(uri, exc) from exc
        link = _Link()
        try:
            run_id = mlflow.start_run(experiment_id=experiment_id, run_name=run_name).info.run_id
        except (MlflowException, OSError) as exc:
            if keep is None:
                raise _unusable(uri, exc) from exc
            # the server may have created the run before it went: its id never came back
            link.lost = exc
            run_id = ""
        journal = None
        if keep is not None:
            journal = Journal(
                keep,
                {
                    "experiment": experiment,
                    "run_name": run_name,
                    "tracking_uri": resolved,
                    "run_id": run_id or None,
                },
            )
        log = RunLogger(run_id, resolved, experiment_id, journal, link)
        try:
            yield log
        except BaseException:
            _end_run("FAILED", log.link)
            if journal is not None and log.link.lost is None:
                journal.remove()
            raise
        _end_run("FINISHED", log.link)
    if log.link.lost is None:
        if journal is not None:
            journal.remove()
        return
    if journal is None:
        raise TrackingError(
            f"tracking.uri {uri!r}: the MLflow tracking server was lost as run "
            f"{run_id} ended ({first_line(log.link.lost)}); it may show as running."
        )
    which = f"run {run_id} was logged" if run_id else f"run {run_name!r} was opened"
    raise TrackingError(
        f"tracking.uri {uri!r}: the MLflow tracking server was lost while {which} "
        f"({first_line(log.link.lost)}). Nothing is lost: the "
        f"run's results are kept in {journal.folder}; once the server is back, upload "
        f"them as a new run with `uplift upload {journal.folder}`."
    )
