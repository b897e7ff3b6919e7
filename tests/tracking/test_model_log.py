"""Tests of uplift.tracking.model_log: the scoring model logged to MLflow and loaded back.

The model is logged into a run of a temporary SQLite tracking store (artifacts beside it,
as ``open_run`` sets them up), then loaded back in a fresh Python process, which must
score a base exactly as the model in memory does and without any warning.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import fit_uplift, make_base
from uplift.data.simulate import simulate
from uplift.errors import TrackingError
from uplift.scoring import ScoringModel
from uplift.tracking.mlflow_log import open_run
from uplift.tracking.model_log import (
    LEARNER_TAG,
    MODEL_URI_TAG,
    ScoringPyfunc,
    find_scoring_model,
    load_scoring_model,
    log_scoring_model,
)
from uplift.value.costs import LowerCheckOfferCost

ID = "customer_id"
FEATURES = ["recency_days", "frequency_180d", "monetary_180d", "tenure_days", "avg_check"]
TREATMENTS = ("ten_off", "twenty_off")
FAST: dict[str, object] = {"n_estimators": 20, "min_child_samples": 50, "n_jobs": 1}
EXPERIMENT = "model-log-tests"
DIGEST = "d" * 64


def small_model(n: int = 3000, seed: int = 11) -> tuple[ScoringModel, pd.DataFrame]:
    """A T-learner on a simulated discount campaign, with the discount paid on revenue."""
    sim = simulate("lower_check_offer", n, seed, list(TREATMENTS))
    base = sim.population
    arms = np.random.default_rng(seed).choice(["control", *TREATMENTS], n)
    outcomes = sim.draw(pd.Series(arms, index=base.index))
    metric = "revenue_30d"
    encoder = FeatureEncoder(FEATURES).fit(base)
    x = encoder.transform(base).to_numpy()
    y = outcomes[metric].to_numpy(dtype=float)
    uplift = fit_uplift("t_learner", x, arms, y, "control", TREATMENTS, seed=seed, base_params=FAST)
    model = ScoringModel(
        id_column=ID,
        encoder=encoder,
        uplift=uplift,
        metric=metric,
        value_per_unit=0.3,
        contact_cost=0.02,
        cost_models={
            "ten_off": LowerCheckOfferCost(0.1, metric),
            "twenty_off": LowerCheckOfferCost(0.2, metric),
        },
        arm_outcomes={
            arm: {metric: make_base("lightgbm", seed, FAST).fit(x[arms == arm], y[arms == arm])}
            for arm in TREATMENTS
        },
        learner="t_learner",
    )
    return model, base[[ID, *FEATURES]].reset_index(drop=True)


@dataclass(frozen=True)
class Logged:
    model: ScoringModel
    base: pd.DataFrame
    uri: str
    model_uri: str
    run_id: str
    folder: Path


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    folder = tmp_path_factory.mktemp("store")
    model, base = small_model()
    with open_run(f"sqlite:///{folder}/mlflow.db", EXPERIMENT, "scoring") as log:
        mlflow.set_tags({"spec_digest": DIGEST})
        model_uri = log_scoring_model(model, base)
    yield Logged(model, base, log.tracking_uri, model_uri, log.run_id, folder)


def test_the_run_is_tagged_with_the_model_and_its_artifacts_stay_beside_the_store(
    logged: Logged,
) -> None:
    run = MlflowClient(logged.uri).get_run(logged.run_id)
    assert logged.model_uri.startswith("models:/")
    assert run.data.tags[MODEL_URI_TAG] == logged.model_uri
    assert run.data.tags[LEARNER_TAG] == "t_learner"
    stored = list((logged.folder / "mlartifacts").rglob("scoring_model.joblib"))
    assert len(stored) == 1, stored


def test_the_signature_takes_id_and_features_and_returns_uplift_per_arm(logged: Logged) -> None:
    mlflow.set_tracking_uri(logged.uri)
    info = mlflow.models.get_model_info(logged.model_uri)
    assert info.signature is not None
    assert info.signature.inputs.input_names() == [ID, *FEATURES]
    outputs = info.signature.outputs.input_names()
    assert outputs == logged.model.output_columns()
    assert {f"uplift_{arm}" for arm in TREATMENTS} <= set(outputs)
    types = {s.name: s.type.name for s in info.signature.outputs.inputs}
    assert types["uplift_ten_off"] == "double" and types["recommended_arm"] == "string"
    assert info.metadata is not None and info.metadata["treatments"] == list(TREATMENTS)


# run in a fresh interpreter: only what the store holds can make these scores
FRESH = """
import sys, warnings
import pandas as pd
from uplift.tracking.model_log import load_scoring_model

model_uri, tracking_uri, population, out = sys.argv[1:]
base = pd.read_parquet(population)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = load_scoring_model(model_uri, tracking_uri=tracking_uri)
    model.predict(base).to_parquet(out)
# the project's test filters: third-party deprecations are not ours to fix
third_party = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
for w in caught:
    if not (issubclass(w.category, third_party) and "site-packages" in w.filename):
        print(f"WARNING {w.category.__name__} {w.filename}: {w.message}", file=sys.stderr)
"""


def test_a_fresh_process_loads_the_model_and_scores_exactly_as_in_memory(
    logged: Logged, tmp_path: Path
) -> None:
    population = tmp_path / "base.parquet"
    logged.base.iloc[:800].to_parquet(population)
    out = tmp_path / "scores.parquet"

    done = subprocess.run(
        [sys.executable, "-c", FRESH, logged.model_uri, logged.uri, str(population), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert not (tmp_path / "mlruns").exists()
    found = pd.read_parquet(out)
    expected = logged.model.predict(logged.base.iloc[:800])
    assert list(found.columns) == list(expected.columns)
    assert found[ID].tolist() == expected[ID].tolist()
    assert found["recommended_arm"].tolist() == expected["recommended_arm"].tolist()
    numbers = [c for c in expected.columns if c.startswith(("uplift_", "net_value_"))]
    np.testing.assert_allclose(found[numbers], expected[numbers], rtol=0, atol=1e-12)
    # a model that recommends nothing, or one arm only, would hide a mix-up of columns
    assert found["recommended_arm"].nunique() >= 2


def test_pyfunc_predict_on_a_pandas_frame_and_the_unwrapped_model(logged: Logged) -> None:
    mlflow.set_tracking_uri(logged.uri)
    pyfunc = mlflow.pyfunc.load_model(logged.model_uri)
    frame = logged.base.iloc[100:160]

    scores = pyfunc.predict(frame)

    expected = logged.model.predict(frame)
    assert isinstance(scores, pd.DataFrame)
    assert scores[ID].tolist() == expected[ID].tolist()
    np.testing.assert_allclose(
        scores["net_value_twenty_off"], expected["net_value_twenty_off"], rtol=0, atol=1e-12
    )
    unwrapped = pyfunc.unwrap_python_model()
    assert isinstance(unwrapped, ScoringPyfunc)
    assert isinstance(unwrapped.scoring_model, ScoringModel)
    assert unwrapped.scoring_model.treatments == TREATMENTS


def test_loading_honours_mlflows_switch_against_unpickling(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(TrackingError, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION is false"):
        load_scoring_model(logged.model_uri, tracking_uri=logged.uri)


def test_an_unknown_model_is_a_tracking_error(logged: Logged) -> None:
    with pytest.raises(TrackingError, match=r"the scoring model models:/m-0+ cannot be loaded"):
        load_scoring_model("models:/m-" + "0" * 32, tracking_uri=logged.uri)


def test_logging_needs_an_active_run(logged: Logged) -> None:
    assert mlflow.active_run() is None
    with pytest.raises(TrackingError, match="needs an active MLflow run"):
        log_scoring_model(logged.model, logged.base)


# --- find_scoring_model ------------------------------------------------------------------


def test_the_spec_finds_its_run_and_another_spec_does_not(logged: Logged) -> None:
    found = find_scoring_model(logged.uri, EXPERIMENT, DIGEST)
    assert (found.run_id, found.model_uri) == (logged.run_id, logged.model_uri)
    assert found.experiment == EXPERIMENT and found.spec_digest == DIGEST

    with pytest.raises(TrackingError) as raised:
        find_scoring_model(logged.uri, EXPERIMENT, "e" * 64, rerun="uplift run spec.yaml")
    message = str(raised.value)
    assert f"MLflow experiment {EXPERIMENT!r} at {logged.uri}" in message
    assert "eeeeeeeeeeee…" in message
    assert "Run `uplift run spec.yaml` first, or pass --run-id." in message


def test_the_latest_finished_run_wins_and_failed_runs_are_skipped(
    tmp_path: Path, logged: Logged
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    uris = []
    for _ in range(2):
        with open_run(uri, EXPERIMENT, "scoring"):
            mlflow.set_tags({"spec_digest": DIGEST})
            uris.append(log_scoring_model(logged.model, logged.base))
    with pytest.raises(RuntimeError), open_run(uri, EXPERIMENT, "scoring") as failed:
        mlflow.set_tags({"spec_digest": DIGEST, MODEL_URI_TAG: "models:/m-broken"})
        raise RuntimeError("the run fails after the model was logged")
    with open_run(uri, EXPERIMENT, "scoring"):  # a finished run without a model
        mlflow.set_tags({"spec_digest": DIGEST})

    found = find_scoring_model(uri, EXPERIMENT, DIGEST)

    assert found.model_uri == uris[1]
    assert MlflowClient(uri).get_run(failed.run_id).info.status == "FAILED"


def test_a_run_id_is_taken_as_given_or_refused_with_a_reason(logged: Logged) -> None:
    found = find_scoring_model(logged.uri, "another-experiment", "x", run_id=logged.run_id)
    assert found.model_uri == logged.model_uri and found.experiment == EXPERIMENT

    with pytest.raises(TrackingError, match=r"--run-id '0+': no such run at "):
        find_scoring_model(logged.uri, EXPERIMENT, DIGEST, run_id="0" * 32)
    with open_run(logged.uri, EXPERIMENT, "no model") as bare:
        pass
    with pytest.raises(TrackingError, match="the run has no logged scoring model"):
        find_scoring_model(logged.uri, EXPERIMENT, DIGEST, run_id=bare.run_id)


def test_a_missing_store_or_experiment_is_named_and_nothing_is_created(
    tmp_path: Path, logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrackingError) as raised:
        find_scoring_model("sqlite:///experiments/mlflow.db", EXPERIMENT, DIGEST)
    assert f"there is no MLflow store at {tmp_path / 'experiments' / 'mlflow.db'}" in str(
        raised.value
    )
    assert not (tmp_path / "experiments").exists()

    with pytest.raises(TrackingError, match=r"it has no experiment 'crm-uplift'"):
        find_scoring_model(logged.uri, "crm-uplift", DIGEST)


def test_the_metadata_names_the_package_version(logged: Logged) -> None:
    from uplift import __version__

    mlflow.set_tracking_uri(logged.uri)
    info = mlflow.models.get_model_info(logged.model_uri)
    assert info.metadata is not None
    assert info.metadata["uplift_version"] == __version__
    assert json.loads(json.dumps(info.metadata["features"])) == FEATURES
