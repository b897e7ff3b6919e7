"""The chosen scoring model as an MLflow model: logged into a run, found and loaded back.

:func:`log_scoring_model` logs a :class:`~uplift.scoring.ScoringModel` into the active
MLflow run as a ``python_function`` model named ``model``, with a signature inferred from
an input example (the id and the feature columns) and the model's own output on it, so
the signature lists ``uplift_<arm>`` and ``net_value_<arm>`` for every treatment arm and
``recommended_arm``. It tags the run with :data:`MODEL_URI_TAG` (the model's URI) and
:data:`LEARNER_TAG`. :func:`find_scoring_model` finds the model of a spec's latest
finished run; :func:`load_scoring_model` loads it back as a ``ScoringModel``.

MLflow's loading rules (MLflow 3.x; read in 3.17) and what this module does about them
--------------------------------------------------------------------------------------

* **Pickled Python models.** A ``PythonModel`` *object* passed to
  ``mlflow.pyfunc.log_model`` is serialized with cloudpickle; MLflow logs a warning that
  deserializing it may execute arbitrary code, and ``mlflow.pyfunc.load_model`` refuses
  to load it when ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is false (true by default in
  3.17; MLflow recommends "models from code" instead). A cloudpickled model also warns
  when the cloudpickle version that loads it differs from the one that saved it.
* **Trusted types.** The ``sklearn`` and ``lightgbm`` flavors now save in the ``skops``
  format by default, and skops refuses to load any type that is not on a trusted list:
  a LightGBM regressor needs ``lightgbm.basic.Booster``,
  ``lightgbm.sklearn.LGBMRegressor`` and ``collections.OrderedDict`` trusted (MLflow
  3.17 trusts those for the ``lightgbm`` flavor only; logged with ``mlflow.sklearn`` it
  fails with "untrusted types"). The list is stored with the model and read back at load
  time, so it is no real protection, and MLflow gates skops loading behind the same
  ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` flag.

What we do: no MLflow flavor serializes our objects. The ``PythonModel`` is logged *from
code* (a three-line file that imports :class:`ScoringPyfunc` and calls
``mlflow.models.set_model``), so MLflow pickles nothing and warns about nothing. The
``ScoringModel`` itself (the feature encoder, the causalml learners on LightGBM, XGBoost
or scikit-learn, the cost models) is a model artifact written with ``joblib``, which no
skops trusted list covers. Unpickling it can execute code, so
:meth:`ScoringPyfunc.load_context` honours MLflow's own switch: with
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` false it refuses to load, and says so. Load
models only from tracking stores you trust. Loading needs the ``uplift`` package (the
version that logged the model is in the model's metadata) and the pinned requirements
written with the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import joblib  # type: ignore[import-untyped]
import mlflow
import numpy as np
import pandas as pd
from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION
from mlflow.exceptions import MlflowException

with warnings.catch_warnings():
    # MLflow 3.17 warns on importing its pyfunc module, about a type hint of its own agent
    # request types; nothing of ours, and it would reach every `uplift score` and test
    warnings.filterwarnings(
        "ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning
    )
    import mlflow.pyfunc
    from mlflow.pyfunc.model import PythonModel

from uplift.errors import TrackingError
from uplift.scoring import ScoringModel
from uplift.tracking.store import (
    READING,
    absolute_uri,
    existing_store,
    first_line,
    quiet_mlflow,
)

__all__ = [
    "ARTIFACT",
    "LEARNER_TAG",
    "MODEL_NAME",
    "MODEL_URI_TAG",
    "FoundModel",
    "ScoringPyfunc",
    "find_scoring_model",
    "load_scoring_model",
    "log_scoring_model",
]

#: Name of the logged model in its run (``runs:/<run_id>/model``).
MODEL_NAME = "model"
#: Key of the joblib file of the ``ScoringModel`` among the model's artifacts.
ARTIFACT = "scoring_model"
#: Run tag holding the logged model's URI (``models:/<model_id>``).
MODEL_URI_TAG = "model_uri"
#: Run tag holding the chosen learner's label.
LEARNER_TAG = "chosen_learner"
#: Packages the pickled model needs, pinned to the versions that logged it.
_REQUIREMENTS = (
    "mlflow",
    "causalml",
    "lightgbm",
    "xgboost",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "pyarrow",
    "joblib",
)
_ENTRY_POINT = '''"""MLflow entry point of an uplift scoring model (a model logged from code)."""

from mlflow.models import set_model

from uplift.tracking.model_log import ScoringPyfunc

set_model(ScoringPyfunc())
'''
_EXAMPLE_ROWS = 10


class ScoringPyfunc(PythonModel):
    """An MLflow ``python_function`` model that scores customers with a ``ScoringModel``.

    ``predict(context, model_input)`` returns ``ScoringModel.predict(model_input)``: one
    row per customer with the id, ``uplift_<arm>``, ``net_value_<arm>`` and
    ``recommended_arm``.

    Attributes
    ----------
    scoring_model : ScoringModel or None
        The wrapped model, read from the :data:`ARTIFACT` artifact by
        :meth:`load_context`.
    """

    def __init__(self) -> None:
        self.scoring_model: ScoringModel | None = None

    def load_context(self, context: Any) -> None:
        """Read the ``ScoringModel`` from its joblib artifact.

        Raises
        ------
        TrackingError
            When ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is false (the artifact is a
            pickle), or the artifact does not hold a ``ScoringModel``.
        """
        path = context.artifacts[ARTIFACT]
        if not MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get():
            raise TrackingError(
                f"the scoring model {path} is a joblib pickle and "
                f"MLFLOW_ALLOW_PICKLE_DESERIALIZATION is false, so it is not loaded. Set it "
                f"to true to load models from a tracking store you trust."
            )
        loaded = joblib.load(path)
        if not isinstance(loaded, ScoringModel):
            raise TrackingError(
                f"the artifact {path} holds a {type(loaded).__name__}, not a ScoringModel."
            )
        self.scoring_model = loaded

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score the customers of ``model_input`` (the id column and the features)."""
        if self.scoring_model is None:
            raise TrackingError("the scoring model was not loaded (load_context never ran).")
        return self.scoring_model.predict(model_input)


def log_scoring_model(model: ScoringModel, example: pd.DataFrame) -> str:
    """Log ``model`` into the active MLflow run as the ``python_function`` model ``model``.

    Parameters
    ----------
    model : ScoringModel
        The model to log.
    example : pd.DataFrame
        Customers with the model's id column and features (other columns are dropped).
        None of their rows is logged: the input example, which with the model's output
        on it gives the signature, is synthetic (each feature's quantiles or most
        frequent values, made-up ids), so no customer leaves for the tracking server.

    Returns
    -------
    str
        The logged model's URI (``models:/<model_id>``), also set as the run's
        :data:`MODEL_URI_TAG` tag; the learner's label goes to :data:`LEARNER_TAG`.

    Raises
    ------
    TrackingError
        When no MLflow run is active.

    Notes
    -----
    The signature keeps the example's types. Integer features stay integers: MLflow's
    schema enforcement refuses an int64 column against a double schema, so declaring
    them as doubles would reject a base with the same types as the training data. A
    base whose integer column has missing values (read as floats) is then refused by
    ``PyFuncModel.predict``; :func:`load_scoring_model` and ``uplift score`` do not go
    through that enforcement.
    """
    from mlflow.models import infer_signature

    if mlflow.active_run() is None:
        raise TrackingError("log_scoring_model needs an active MLflow run to log into.")
    columns = [model.id_column, *model.features]
    missing = [c for c in columns if c not in example.columns]
    if missing:
        raise ValueError(f"the example lacks the model's columns {missing}")
    rows = _example(example[columns], model.id_column)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; see Notes
        warnings.filterwarnings(
            "ignore", message="Hint: Inferred schema contains integer", category=UserWarning
        )
        signature = infer_signature(rows, model.predict(rows))
    with TemporaryDirectory(prefix="uplift-model-") as tmp, quiet_mlflow():
        entry = Path(tmp) / "scoring_pyfunc.py"
        entry.write_text(_ENTRY_POINT, encoding="utf-8")
        artifact = Path(tmp) / "scoring_model.joblib"
        joblib.dump(model, artifact)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(entry),
            artifacts={ARTIFACT: str(artifact)},
            signature=signature,
            input_example=rows,
            pip_requirements=_requirements(),
            metadata=_metadata(model),
        )
    mlflow.set_tags({MODEL_URI_TAG: info.model_uri, LEARNER_TAG: model.learner})
    return str(info.model_uri)


def load_scoring_model(model_uri: str, *, tracking_uri: str | None = None) -> ScoringModel:
    """Load a model logged by :func:`log_scoring_model` back as a ``ScoringModel``.

    Goes through ``mlflow.pyfunc.load_model(model_uri).unwrap_python_model()``.

    Parameters
    ----------
    model_uri : str
        ``models:/<model_id>``, ``runs:/<run_id>/model`` or a local model folder.
    tracking_uri : str, optional
        The tracking store that resolves ``models:/`` and ``runs:/`` URIs; it becomes
        MLflow's current tracking URI. Default: MLflow's current one.

    Raises
    ------
    TrackingError
        When the model cannot be found or loaded, or is not an uplift scoring model.
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(absolute_uri(tracking_uri))
    with TemporaryDirectory(prefix="uplift-model-") as tmp, quiet_mlflow(READING):
        try:
            loaded = mlflow.pyfunc.load_model(model_uri, dst_path=tmp)
        except MlflowException as exc:
            raise TrackingError(
                f"the scoring model {model_uri} cannot be loaded: {first_line(exc)}"
            ) from None
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, ScoringPyfunc) or python_model.scoring_model is None:
        raise TrackingError(
            f"{model_uri} is not an uplift scoring model (it holds a "
            f"{type(python_model).__name__})."
        )
    return python_model.scoring_model


@dataclass(frozen=True)
class FoundModel:
    """Where a scoring model was found."""

    run_id: str
    model_uri: str
    experiment: str
    tracking_uri: str
    spec_digest: str | None
    """The ``spec_digest`` tag of the run (``None`` when it has none)."""


def find_scoring_model(
    tracking_uri: str,
    experiment: str,
    spec_digest: str,
    *,
    run_id: str | None = None,
    rerun: str = "uplift run SPEC",
) -> FoundModel:
    """The scoring model of a run: ``run_id``'s, or the spec's latest finished run's.

    Without ``run_id``, the runs of ``experiment`` tagged ``spec_digest`` with status
    FINISHED are searched, newest first, for one tagged :data:`MODEL_URI_TAG`.

    Parameters
    ----------
    tracking_uri : str
        The tracking store (a relative SQLite path is relative to the working directory;
        a missing SQLite file is an error, never created).
    experiment : str
        The MLflow experiment of the spec.
    spec_digest : str
        ``ExperimentSpec.digest()`` of the spec as it is now.
    run_id : str, optional
        Take this run's model instead of searching.
    rerun : str
        The command that logs a model, named in the error message.

    Raises
    ------
    TrackingError
        When the store cannot be used, the run or experiment does not exist, or no run
        matches: the message names the experiment and the tracking URI.
    """
    from mlflow.tracking import MlflowClient

    uri = existing_store(tracking_uri, needed_for="no model to score with", rerun=rerun)
    found = None
    with quiet_mlflow(READING):
        client = MlflowClient(tracking_uri=uri)
        try:
            if run_id is not None:
                return _run_model(client, run_id, uri, rerun)
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                for run in _finished_runs(client, found.experiment_id, spec_digest):
                    if run.data.tags.get(MODEL_URI_TAG):
                        return _found(run, experiment, uri)
        except MlflowException as exc:
            raise TrackingError(
                f"tracking.uri {tracking_uri!r}: the MLflow tracking store cannot be used "
                f"({first_line(exc)})."
            ) from None
    where = (
        f"MLflow experiment {experiment!r} at {uri}"
        if found is not None
        else f"{uri}: it has no experiment {experiment!r}"
    )
    raise TrackingError(
        f"no finished run of this spec with a logged scoring model in {where} (runs are "
        f"matched by their spec_digest tag, {spec_digest[:12]}… for the spec as it is now). "
        f"Run `{rerun}` first, or pass --run-id."
    )


def _run_model(client: Any, run_id: str, uri: str, rerun: str) -> FoundModel:
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(
            f"--run-id {run_id!r}: no such run at {uri} ({first_line(exc)})."
        ) from None
    if not run.data.tags.get(MODEL_URI_TAG):
        raise TrackingError(
            f"--run-id {run_id!r}: the run has no logged scoring model (no "
            f"{MODEL_URI_TAG} tag); runs logged by `{rerun}` have one."
        )
    name = client.get_experiment(run.info.experiment_id).name
    return _found(run, name, uri)


def _finished_runs(client: Any, experiment_id: str, spec_digest: str) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.spec_digest = '{spec_digest}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=100,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _found(run: Any, experiment: str, uri: str) -> FoundModel:
    tags = run.data.tags
    return FoundModel(
        run_id=run.info.run_id,
        model_uri=tags[MODEL_URI_TAG],
        experiment=experiment,
        tracking_uri=uri,
        spec_digest=tags.get("spec_digest"),
    )


def synthetic_example(model: ScoringModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The input example :func:`log_scoring_model` logs for ``frame``: none of its rows."""
    return _example(frame[[model.id_column, *model.features]], model.id_column)


def _example(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """A synthetic input example with the frame's columns and types, none of its rows.

    Numeric columns take evenly spaced quantiles, other columns their most frequent
    values in turn, and the ids are made up (``example-1``, ... or negative integers).
    Categorical columns are text, which MLflow's schemas know.
    """
    n = _EXAMPLE_ROWS
    levels = np.linspace(0.1, 0.9, n)
    out = {}
    for name in frame.columns:
        column = frame[name]
        if name == id_column:
            numeric = pd.api.types.is_integer_dtype(column.dtype)
            out[name] = pd.Series(
                -np.arange(1, n + 1) if numeric else [f"example-{i}" for i in range(1, n + 1)],
                dtype=column.dtype if numeric else object,
            )
        elif pd.api.types.is_bool_dtype(column.dtype):
            out[name] = pd.Series([bool(i % 2) for i in range(n)], dtype=column.dtype)
        elif pd.api.types.is_numeric_dtype(column.dtype):
            values = column.quantile(levels).to_numpy()
            if pd.api.types.is_integer_dtype(column.dtype):
                values = np.round(values)
            out[name] = pd.Series(values).astype(column.dtype)
        else:
            common = column.dropna().astype(str).value_counts().index.tolist() or [None]
            out[name] = pd.Series([common[i % len(common)] for i in range(n)], dtype=object)
    return pd.DataFrame(out)


def _requirements() -> list[str]:
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def _metadata(model: ScoringModel) -> dict[str, Any]:
    from uplift import __version__

    return {
        "uplift_version": __version__,
        "learner": model.learner,
        "metric": model.metric,
        "id_column": model.id_column,
        "features": list(model.features),
        "treatments": list(model.treatments),
    }
