"""End-to-end tests of ``uplift score``.

A small scoring model (``test_scoring.small_model``) is logged with ``log_scoring_model``
into a run of a SQLite store in the working directory, tagged with the digest of a copy
of ``configs/edtech_trial_lessons.yaml`` that points at that store, as ``uplift run``
does. ``uplift score`` then runs in a subprocess, as a user would run it. Bad input must
exit with code 2 and a one-paragraph message, never a traceback, and must never leave a
half-written output behind (DESIGN.md section 4).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from cli_support import EXAMPLE, error_paragraph, uplift
from test_scoring import ID, TREATMENTS, assert_same_scores, small_model

from uplift.scoring import NO_ARM, ScoringModel
from uplift.spec import load_spec
from uplift.tracking.mlflow_log import open_run
from uplift.tracking.model_log import log_scoring_model

EXPERIMENT = "crm-uplift"


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def write_spec(directory: Path, experiment: str = EXPERIMENT) -> Path:
    """The example spec, its MLflow store in ``directory``."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["population"]["source"]["n"] = 4000
    raw["tracking"] = {"uri": "sqlite:///mlflow.db", "experiment": experiment}
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Store:
    folder: Path
    model: ScoringModel
    base: pd.DataFrame
    run_id: str
    model_uri: str

    def copy_to(self, target: Path) -> Path:
        """A working directory with the spec, the store and the base (CSV and Parquet)."""
        work = target / "work"
        shutil.copytree(self.folder, work)
        return work


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("score")
    spec = write_spec(folder)
    model, base = small_model()
    base.to_parquet(folder / "base.parquet", index=False)
    base.to_csv(folder / "base.csv", index=False)
    with open_run(f"sqlite:///{folder}/mlflow.db", EXPERIMENT, "edtech") as log:
        mlflow.set_tags({"spec_digest": load_spec(spec).digest()})
        model_uri = log_scoring_model(model, base)
    yield Store(folder, model, base, log.run_id, model_uri)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp"))


def test_score_writes_every_customer_and_prints_the_arms_and_the_speed(
    store: Store, tmp_path: Path
) -> None:
    work = store.copy_to(tmp_path)

    result = ok(
        uplift(
            "score",
            "spec.yaml",
            "--population",
            "base.parquet",
            "--out",
            "out/scores.csv",
            cwd=work,
            # TL2cgen refused to compile on more threads than OpenMP allows, and the
            # models then stayed uncompiled
            env={"OMP_NUM_THREADS": "1"},
        )
    )

    found = pd.read_csv(work / "out" / "scores.csv")
    expected = store.model.predict(store.base)
    assert_same_scores(found, expected)
    stdout = " ".join(result.stdout.split())
    assert f"Scored {len(store.base):,} customers in " in stdout
    assert re.search(r"\([\d,]+ customers per second\)", stdout), stdout
    assert f"of MLflow run {store.run_id} in experiment 'crm-uplift'" in stdout
    counts = expected["recommended_arm"].value_counts()
    for arm in (*TREATMENTS, NO_ARM):
        n = int(counts.get(arm, 0))
        assert re.search(rf"{arm}\b.*? {n:,} ", stdout), (arm, n, stdout)
    assert "· loading model models:/" in result.stderr
    # the T-learner's shared control model, one model per treatment arm, and each arm's
    # uptake model for the offer's cost: compiled, and the scores above still exact
    assert "· compiled 5 of 5 LightGBM models in " in result.stderr
    assert leftovers(work) == []


def test_score_takes_a_run_id_a_chunk_size_and_writes_parquet_from_csv(
    store: Store, tmp_path: Path
) -> None:
    work = store.copy_to(tmp_path)
    (work / "spec.yaml").write_text(  # another version of the spec: only --run-id finds it
        (work / "spec.yaml").read_text(encoding="utf-8").replace("n: 4000", "n: 5000"),
        encoding="utf-8",
    )

    result = ok(
        uplift(
            "score",
            "spec.yaml",
            "--population",
            "base.csv",
            "--out",
            "scores.parquet",
            "--run-id",
            store.run_id,
            "--chunk-size",
            "1000",
            cwd=work,
        )
    )

    assert_same_scores(pd.read_parquet(work / "scores.parquet"), store.model.predict(store.base))
    assert result.stderr.count("· scored ") == 3
    assert "was logged for another version of spec.yaml" in result.stderr


def test_no_compile_trees_scores_with_lightgbm_itself_to_the_same_numbers(
    store: Store, tmp_path: Path
) -> None:
    work = store.copy_to(tmp_path)
    args = ["score", "spec.yaml", "--population", "base.parquet"]

    plain = ok(uplift(*args, "--out", "plain.parquet", "--no-compile-trees", cwd=work))
    compiled = ok(uplift(*args, "--out", "compiled.parquet", cwd=work))

    assert "compiled" not in plain.stderr
    assert "· compiled 5 of 5 LightGBM models" in compiled.stderr
    found = pd.read_parquet(work / "compiled.parquet")
    pd.testing.assert_frame_equal(found, pd.read_parquet(work / "plain.parquet"))
    assert_same_scores(found, store.model.predict(store.base))


def test_a_missing_feature_column_is_named_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    work = store.copy_to(tmp_path)
    store.base.drop(columns="tenure_days").to_csv(work / "old.csv", index=False)

    result = uplift("score", "spec.yaml", "--population", "old.csv", "--out", "s.csv", cwd=work)

    message = error_paragraph(result, progress=True)
    assert message.startswith("--population: the csv file old.csv has no column 'tenure_days';")
    assert "'recency_days'" in message  # what the file has
    assert not (work / "s.csv").exists()


def test_an_unknown_output_extension_is_refused_before_anything_runs(tmp_path: Path) -> None:
    write_spec(tmp_path)
    result = uplift(
        "score", "spec.yaml", "--population", "base.csv", "--out", "scores.xlsx", cwd=tmp_path
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert "--out" in text
    assert "'.xlsx'" in text
    assert ".csv or .parquet" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_without_a_run_it_says_to_run_the_spec_first(store: Store, tmp_path: Path) -> None:
    # a store without a run of this spec: another experiment name
    work = store.copy_to(tmp_path)
    write_spec(work, experiment="crm-other")
    result = uplift("score", "spec.yaml", "--population", "base.csv", "--out", "s.csv", cwd=work)
    message = error_paragraph(result)
    assert "no finished run of this spec with a logged scoring model" in message
    assert "it has no experiment 'crm-other'" in message
    assert f"sqlite:///{work / 'mlflow.db'}" in message
    assert "Run `uplift run spec.yaml` first, or pass --run-id." in message

    # no store at all: nothing is created
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_spec(fresh)
    shutil.copy(work / "base.csv", fresh / "base.csv")
    result = uplift("score", "spec.yaml", "--population", "base.csv", "--out", "s.csv", cwd=fresh)
    message = error_paragraph(result)
    assert f"there is no MLflow store at {fresh / 'mlflow.db'}" in message
    assert "Run `uplift run spec.yaml` first" in message
    assert sorted(p.name for p in fresh.iterdir()) == ["base.csv", "spec.yaml"]


def test_a_failure_half_way_leaves_the_earlier_output_whole(store: Store, tmp_path: Path) -> None:
    work = store.copy_to(tmp_path)
    holed = store.base.copy()
    holed.loc[2345, ID] = None  # in the third chunk of 1,000
    holed.to_parquet(work / "holed.parquet", index=False)
    (work / "scores.csv").write_text("yesterday's scores\n", encoding="utf-8")

    result = uplift(
        "score",
        "spec.yaml",
        "--population",
        "holed.parquet",
        "--out",
        "scores.csv",
        "--chunk-size",
        "1000",
        cwd=work,
    )

    message = error_paragraph(result, progress=True)
    assert "missing id in column 'customer_id' (data row 2,346)" in message
    assert result.stderr.count("· scored ") == 2  # two chunks were written, then it stopped
    assert (work / "scores.csv").read_text(encoding="utf-8") == "yesterday's scores\n"
    assert leftovers(work) == []


def test_a_missing_population_file_is_named_before_the_model_loads(
    store: Store, tmp_path: Path
) -> None:
    work = store.copy_to(tmp_path)
    result = uplift("score", "spec.yaml", "--population", "nope.csv", "--out", "s.csv", cwd=work)
    message = error_paragraph(result)  # no progress line: the model was not loaded
    assert message.startswith("--population: the csv file nope.csv does not exist")


def test_score_with_the_spark_engine_writes_a_parquet_folder_and_refuses_a_budget(
    store: Store, tmp_path: Path
) -> None:
    # the whole-base comparison with the pandas engine is tests/test_spark_score.py; here
    # the command line: the same scores through `uplift score --engine spark`
    pytest.importorskip("pyspark", reason="pyspark is not installed (the 'spark' extra)")
    work = store.copy_to(tmp_path)
    args = ["score", "spec.yaml", "--population", "base.parquet", "--engine", "spark"]
    result = ok(uplift(*args, "--out", "scores_spark", cwd=work))
    found = pd.read_parquet(work / "scores_spark").sort_values("customer_id", ignore_index=True)
    expected = store.model.predict(store.base).sort_values("customer_id", ignore_index=True)
    assert found["recommended_arm"].tolist() == expected["recommended_arm"].tolist()
    numeric = [c for c in expected.columns if c.startswith(("uplift_", "net_value_"))]
    np.testing.assert_allclose(found[numeric], expected[numeric], rtol=0, atol=1e-9)
    assert f"Scored {len(store.base):,} customers" in result.stdout

    budget = uplift(*args, "--out", "again", "--max-treated", "10", cwd=work)
    assert budget.returncode == 2 and "needs a ranking of the whole base" in budget.stderr
    assert not (work / "again").exists()
