"""Reading logged experiment runs back: the list of analyses, and one run's record.

A run logged by ``uplift run`` is a parent run (one per analysis) tagged with the
hypothesis kind, owner, spec digest and verdict, holding ``summary.json``, ``spec.json``
and the figures under ``figures/``; its learners are nested runs. Both readers go through
``MlflowClient`` only, so they work against any tracking URI: a local SQLite store or a
remote ``mlflow server``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from uplift.errors import TrackingError
from uplift.tracking.store import READING, existing_store, first_line, quiet_mlflow

__all__ = ["RunRecord", "RunRow", "fetch_run", "list_runs"]

#: Tag MLflow sets on a nested run: the parent's run id.
_PARENT_TAG = "mlflow.parentRunId"


@dataclass(frozen=True)
class RunRow:
    """One analysis in :func:`list_runs`."""

    run_id: str
    experiment: str
    """The MLflow experiment."""
    name: str
    """The run's name: the spec's ``name``."""
    started: str
    """Start time, UTC, ISO 8601 to the second."""
    status: str
    hypothesis_kind: str
    owner: str
    verdict: str
    """The campaign verdict (tagged when the run's results are logged; empty before)."""
    per_customer: float | None
    """The per-customer policy's incremental profit per customer (``policy.per_customer``),
    whatever the verdict."""


@dataclass(frozen=True)
class RunRecord:
    """What a memo is rebuilt from: one run's summary, spec and figures."""

    run_id: str
    status: str
    """MLflow's status of the run: ``FINISHED``, or ``FAILED``/``RUNNING`` for a run
    that did not complete (its artifacts may be partial)."""
    summary: dict[str, Any]
    spec: dict[str, Any]
    figures: dict[str, bytes]
    """PNG bytes by artifact path (``figures/<name>.png``)."""


def list_runs(tracking_uri: str, *, experiment: str | None = None, limit: int = 50) -> list[RunRow]:
    """The latest analyses (parent runs), newest first.

    Parameters
    ----------
    tracking_uri : str
        The tracking store; a SQLite file that does not exist is an error.
    experiment : str, optional
        Only this MLflow experiment (default: every experiment).
    limit : int
        At most this many rows.

    Raises
    ------
    TrackingError
        When the store cannot be read or the experiment does not exist.
    """
    from mlflow.tracking import MlflowClient

    uri = existing_store(
        tracking_uri, needed_for="there are no runs to list", rerun="uplift run SPEC"
    )
    rows: list[RunRow] = []
    with quiet_mlflow(READING):
        try:
            client = MlflowClient(tracking_uri=uri)
            if experiment is not None:
                found = client.get_experiment_by_name(experiment)
                if found is None:
                    raise TrackingError(
                        f"--experiment {experiment!r}: no such MLflow experiment at {uri}."
                    )
                experiments = {found.experiment_id: found.name}
            else:
                experiments = {e.experiment_id: e.name for e in client.search_experiments()}
            token = None
            while len(rows) < limit and experiments:
                page = client.search_runs(
                    list(experiments),
                    order_by=["attributes.start_time DESC"],
                    max_results=200,
                    page_token=token,
                )
                for run in page:
                    if _PARENT_TAG not in run.data.tags and len(rows) < limit:
                        rows.append(_row(run, experiments[run.info.experiment_id]))
                token = page.token
                if not token:
                    break
        except TrackingError:
            raise
        except Exception as exc:  # MLflow raises many types for an unusable store
            raise _unusable(tracking_uri, exc) from None
    return rows


def fetch_run(tracking_uri: str, run_id: str) -> RunRecord:
    """A run's summary, spec and figures, downloaded from its artifacts.

    Raises
    ------
    TrackingError
        When the store cannot be read, the run does not exist, or it is not an analysis
        logged by ``uplift run`` (no ``summary.json`` or ``spec.json``).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = existing_store(
        tracking_uri, needed_for="there is no run to read", rerun="uplift run SPEC"
    )
    with quiet_mlflow(READING), TemporaryDirectory(prefix="uplift-run-") as tmp:
        try:
            client = MlflowClient(tracking_uri=uri)
            run = client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise TrackingError(f"run {run_id!r}: no such run at {uri}.") from None
            raise _unusable(tracking_uri, exc) from None
        except Exception as exc:
            raise _unusable(tracking_uri, exc) from None
        try:
            listed = {a.path for a in client.list_artifacts(run_id)}
            folder = Path(tmp)
            summary = _json(client, run_id, "summary.json", folder, listed)
            spec = _spec(client, run_id, folder, listed)
            figures: dict[str, bytes] = {}
            if "figures" in listed:
                for item in client.list_artifacts(run_id, "figures"):
                    if item.path.endswith(".png"):
                        local = client.download_artifacts(run_id, item.path, str(folder))
                        figures[item.path] = Path(local).read_bytes()
        except TrackingError as exc:
            parent = run.data.tags.get(_PARENT_TAG)
            if parent:
                raise TrackingError(
                    f"run {run_id!r} is a learner's nested run; its analysis is run {parent}."
                ) from None
            raise exc from None
        except Exception as exc:
            raise TrackingError(
                f"run {run_id!r} at {uri}: its artifacts cannot be read ({first_line(exc)})."
            ) from None
    return RunRecord(run_id, run.info.status, summary, spec, figures)


def _unusable(tracking_uri: str, exc: BaseException) -> TrackingError:
    return TrackingError(
        f"tracking URI {tracking_uri!r}: the MLflow tracking store cannot be read "
        f"({first_line(exc)}). Check the URI and that the server is running."
    )


def _json(client: Any, run_id: str, name: str, folder: Path, listed: set[str]) -> dict[str, Any]:
    if name not in listed:
        raise TrackingError(
            f"run {run_id!r} has no {name}: it was not logged by `uplift run`, or it "
            f"stopped before logging it."
        )
    path = Path(client.download_artifacts(run_id, name, str(folder)))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrackingError(f"{name} of run {run_id!r} is not valid JSON ({exc}).") from None
    if not isinstance(document, dict):
        raise TrackingError(f"{name} of run {run_id!r} is not a JSON object.")
    return document


def _spec(client: Any, run_id: str, folder: Path, listed: set[str]) -> dict[str, Any]:
    """``spec.json``; for runs logged before it existed, the logged YAML, validated."""
    if "spec.json" in listed or "spec" not in listed:
        return _json(client, run_id, "spec.json", folder, listed)
    from uplift.spec import load_spec

    files = [a.path for a in client.list_artifacts(run_id, "spec") if not a.is_dir]
    if len(files) != 1:
        return _json(client, run_id, "spec.json", folder, listed)
    path = Path(client.download_artifacts(run_id, files[0], str(folder)))
    return load_spec(path).model_dump(mode="json")


def _row(run: Any, experiment: str) -> RunRow:
    from datetime import UTC, datetime

    tags: Mapping[str, str] = run.data.tags
    started = datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC)
    return RunRow(
        run_id=run.info.run_id,
        experiment=experiment,
        name=run.info.run_name or "",
        started=started.strftime("%Y-%m-%d %H:%M:%S"),
        status=run.info.status,
        hypothesis_kind=tags.get("hypothesis_kind", ""),
        owner=tags.get("owner", ""),
        verdict=tags.get("verdict", ""),
        per_customer=run.data.metrics.get("policy.per_customer"),
    )
