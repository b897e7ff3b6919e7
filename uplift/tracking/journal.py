"""A local copy of everything a run logs, kept when the tracking server is lost mid-run.

While ``uplift run`` logs, every parameter, metric, tag, input, artifact, nested run and
the model also go to a folder under ``experiments/<experiment>/runs/``. When the run
reaches MLflow whole, the folder is removed. When the server stops answering part way,
logging goes on into the folder alone, and the folder is what is left: ``uplift upload
FOLDER`` replays it into a new MLflow run (:func:`replay`) that records where it came
from. The folder holds only what the run would have sent: digests and schemas of the
inputs, no customer row.

Layout::

    run.json        experiment, run name, tracking URI, the MLflow run id if one started
    params.json     metrics.json     tags.json     inputs.json
    artifacts/      the run's artifacts, by their artifact paths
    model/          scoring_model.joblib and example.parquet (the synthetic input example)
    children/NN-<name>/   a nested run, laid out the same way
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from uplift.scoring import ScoringModel
    from uplift.tracking.mlflow_log import RunLogger

__all__ = ["Journal", "replay"]

UPLOADED = "uploaded.json"


class Journal:
    """Writes one run's logging calls into ``folder`` (created)."""

    def __init__(self, folder: Path, meta: Mapping[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._write("run.json", dict(meta))
        self._children = 0

    def _write(self, name: str, document: Any) -> None:
        path = self.folder / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(document, indent=1, allow_nan=True), encoding="utf-8")
        tmp.replace(path)

    def _merged(self, name: str, values: Mapping[str, Any]) -> None:
        path = self.folder / name
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self._write(name, {**old, **values})

    def update_meta(self, **values: Any) -> None:
        """Add to ``run.json`` (the MLflow run id once the run started, for one)."""
        self._merged("run.json", values)

    def params(self, params: Mapping[str, str]) -> None:
        self._merged("params.json", params)

    def metrics(self, metrics: Mapping[str, float]) -> None:
        self._merged("metrics.json", metrics)

    def tags(self, tags: Mapping[str, str]) -> None:
        self._merged("tags.json", tags)

    def dataset(self, **fields: Any) -> None:
        path = self.folder / "inputs.json"
        inputs = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        self._write("inputs.json", [*inputs, fields])

    def artifact(self, data: bytes, path: str) -> None:
        target = self.folder / "artifacts" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def model(self, model: ScoringModel, example: pd.DataFrame) -> None:
        import joblib  # type: ignore[import-untyped]

        folder = self.folder / "model"
        folder.mkdir(exist_ok=True)
        joblib.dump(model, folder / "scoring_model.joblib")
        example.to_parquet(folder / "example.parquet", index=False)

    def child(self, run_name: str) -> Journal:
        self._children += 1
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_name)
        return Journal(
            self.folder / "children" / f"{self._children:02d}-{safe}", {"run_name": run_name}
        )

    def remove(self) -> None:
        """Delete the folder (the run reached MLflow whole), and its parents left empty up
        to the experiment's folder (``<experiment>/runs/``, ``<experiment>/``)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in list(self.folder.parents)[:2]:
            try:
                parent.rmdir()
            except OSError:  # not empty (a kept run, a ledger), or not there
                break


def read_meta(folder: Path) -> dict[str, Any]:
    """``run.json`` of a kept run folder."""
    return dict(json.loads((folder / "run.json").read_text(encoding="utf-8")))


def replay(folder: Path, log: RunLogger) -> None:
    """Log everything a kept run folder holds into the open run ``log``, children included."""
    from uplift.tracking.model_log import log_scoring_model

    def document(name: str, default: Any) -> Any:
        path = folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default

    log.params(document("params.json", {}))
    log.metrics(document("metrics.json", {}))
    log.tags(document("tags.json", {}))
    for fields in document("inputs.json", []):
        log.dataset(**fields)
    artifacts = folder / "artifacts"
    if artifacts.is_dir():
        for path in sorted(p for p in artifacts.rglob("*") if p.is_file()):
            log.binary(path.read_bytes(), path.relative_to(artifacts).as_posix())
    model = folder / "model"
    if (model / "scoring_model.joblib").is_file():
        import joblib

        log_scoring_model(
            joblib.load(model / "scoring_model.joblib"),
            pd.read_parquet(model / "example.parquet"),
        )
    children = folder / "children"
    if children.is_dir():
        for child in sorted(p for p in children.iterdir() if p.is_dir()):
            with log.child(read_meta(child)["run_name"]) as nested:
                replay(child, nested)
