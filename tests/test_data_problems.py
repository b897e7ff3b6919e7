"""Data problems caught before any model is fit: a constant metric, missing feature values.

An experiment that already ran (observed assignment) is read from a small Parquet file
whose problems are made by hand, so the expected counts are known: ``pipeline.prepare``
must refuse or handle them as ``population.missing_features`` says, and ``uplift run``
must exit 2 with one paragraph before it fits anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_support import error_paragraph, uplift

from uplift import pipeline
from uplift.errors import DataError
from uplift.spec import ExperimentSpec

N = 600


def write_experiment(folder: Path, **edits: Any) -> Path:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in range(N)],
            "arm": np.where(np.arange(N) % 2 == 0, "control", "email"),
            "tenure": rng.integers(1, 100, N).astype(float),
            "plan": rng.choice(["free", "pro"], N),
            "revenue": rng.gamma(2.0, 3.0, N),
            "bought": (rng.random(N) < 0.3).astype(int),
        }
    )
    for column, values in edits.items():
        frame[column] = values
    path = folder / "experiment.parquet"
    frame.to_parquet(path, index=False)
    return path


def raw_spec(path: Path, **population: Any) -> dict[str, Any]:
    return {
        "name": "observed-problems",
        "hypothesis": {"kind": "channel", "statement": "an e-mail lifts revenue"},
        "population": {
            "source": {"kind": "parquet", "path": str(path)},
            "features": ["tenure", "plan"],
            **population,
        },
        "assignment": {"column": "arm", "control": "control"},
        "outcomes": {
            "source": {"kind": "population"},
            "window_days": 30,
            "metrics": {
                "revenue": {"column": "revenue", "kind": "continuous"},
                "bought": {"column": "bought", "kind": "binary"},
            },
            "primary": "revenue",
        },
        "tracking": {"uri": "sqlite:///mlflow.db"},
    }


def test_a_constant_metric_is_refused_before_any_model(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, bought=np.zeros(N, dtype=int))
    spec = ExperimentSpec.model_validate(raw_spec(path))
    with pytest.raises(
        DataError,
        match=r"outcomes.metrics.bought: column 'bought' is 0 for every one of the "
        r"experiment's 600 customers",
    ):
        pipeline.prepare(spec)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw_spec(path)), encoding="utf-8")
    message = error_paragraph(uplift("run", "spec.yaml", cwd=tmp_path), progress=True)
    assert "column 'bought' is 0 for every one" in message


def tenure_with_gaps() -> np.ndarray:
    tenure = np.arange(N, dtype=float) + 1
    tenure[[3, 10, 11, 500]] = np.nan  # c3 and c11 are e-mailed, c10 and c500 control
    return tenure


def test_missing_features_fail_when_the_spec_says_fail(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, tenure=tenure_with_gaps())
    spec = ExperimentSpec.model_validate(raw_spec(path, missing_features="fail"))
    with pytest.raises(
        DataError, match=r"4 of the experiment's 600 customers miss a feature value \('tenure' 4\)"
    ):
        pipeline.prepare(spec)


def test_missing_features_are_dropped_with_a_count_or_kept_for_the_learners(
    tmp_path: Path,
) -> None:
    path = write_experiment(tmp_path, tenure=tenure_with_gaps())
    lines: list[str] = []
    dropped = pipeline.prepare(
        ExperimentSpec.model_validate(raw_spec(path, missing_features="drop")), lines.append
    )
    assert len(dropped.frame) == len(dropped.outcomes) == N - 4
    assert not dropped.frame["tenure"].isna().any()
    assert dropped.arms.value_counts().to_dict() == {"control": 298, "email": 298}
    assert "features: dropped 4 customers missing a value ('tenure' 4)" in " ".join(lines)
    lines.clear()
    kept = pipeline.prepare(ExperimentSpec.model_validate(raw_spec(path)), lines.append)
    assert len(kept.frame) == N and int(kept.frame["tenure"].isna().sum()) == 4
    assert "features: missing values kept for the learners to impute ('tenure' 4)" in " ".join(
        lines
    )


# Features measured after launch (population.features_as_of). The launch of an experiment
# that already ran is 2026-05-01; the dates are written by hand around it.
LAUNCHED = "2026-05-01"


def measured(late: dict[int, str] | None = None) -> list[str]:
    """Every customer measured on 2026-04-30, except the rows of ``late``."""
    dates = ["2026-04-30"] * N
    for row, when in (late or {}).items():
        dates[row] = when
    return dates


def timed_spec(path: Path, launched: Any = LAUNCHED) -> ExperimentSpec:
    raw = raw_spec(path, features_as_of="measured_on")
    raw["assignment"]["launched"] = launched
    return ExperimentSpec.model_validate(raw)


def test_features_measured_before_the_launch_day_or_on_it_pass(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, measured_on=measured({7: "2026-05-01"}))
    data = pipeline.prepare(timed_spec(path))
    assert len(data.frame) == N


def test_features_measured_after_the_launch_are_refused(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, measured_on=measured({7: "2026-05-02", 9: "2026-06-30"}))
    with pytest.raises(
        DataError,
        match=r"population.features_as_of: 2 of the 600 customers read from the population "
        r"file .* had their features measured after the launch at 2026-05-01 "
        r"\(measurements on that day pass\) \(for example customer 'c7', measured "
        r"2026-05-02T00:00:00\+00:00\)",
    ):
        pipeline.prepare(timed_spec(path))
    raw = raw_spec(path, features_as_of="measured_on")
    raw["assignment"]["launched"] = LAUNCHED
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    message = error_paragraph(uplift("run", "spec.yaml", cwd=tmp_path), progress=True)
    assert "2 of the 600 customers read from the population file" in message
    assert "measured after the launch" in message


def test_a_launch_time_is_compared_to_the_second_in_utc(tmp_path: Path) -> None:
    # 09:00 in UTC+02:00 is 07:00 UTC: 06:59:59 UTC passes, 07:00:00 UTC does not
    launched = "2026-05-01T09:00:00+02:00"
    before = write_experiment(tmp_path, measured_on=measured({3: "2026-05-01T06:59:59Z"}))
    assert len(pipeline.prepare(timed_spec(before, launched)).frame) == N
    after = write_experiment(tmp_path, measured_on=measured({3: "2026-05-01T07:00:00Z"}))
    with pytest.raises(DataError, match=r"1 of the .* after the launch at 2026-05-01T07:00:00"):
        pipeline.prepare(timed_spec(after, launched))


def test_a_measurement_that_is_missing_or_not_a_date_is_refused(tmp_path: Path) -> None:
    dates: list[str | None] = list(measured())
    dates[5] = "last spring"
    dates[6] = None
    dates[8] = None
    path = write_experiment(tmp_path, measured_on=dates)
    with pytest.raises(
        DataError,
        match=r"column 'measured_on' of the population file .* has 2 missing values and 1 "
        r"value that is not a date \(for example 'last spring'\)",
    ):
        pipeline.prepare(timed_spec(path))


def test_an_experiment_that_ran_needs_its_launch_date_to_check_timing(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, measured_on=measured())
    raw = raw_spec(path, features_as_of="measured_on")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    message = error_paragraph(uplift("run", "spec.yaml", cwd=tmp_path))
    assert "assignment.launched" in message and "population.features_as_of" in message


def test_infinite_and_absurd_feature_values_count_as_missing(tmp_path: Path) -> None:
    # found by tests/test_fuzz_data.py: 1e300 overflowed the linear base's scaling into a
    # traceback; both it and an infinite value are now missing values under the policy
    tenure = np.arange(N, dtype=float) + 1
    tenure[[4, 9]] = [np.inf, 1e300]
    path = write_experiment(tmp_path, tenure=tenure)
    with pytest.raises(
        DataError,
        match=r"2 of the experiment's 600 customers miss a feature value \('tenure' 2; "
        r"infinite or beyond ±1e100, so counted as missing: 'tenure' 2\)",
    ):
        pipeline.prepare(ExperimentSpec.model_validate(raw_spec(path, missing_features="fail")))
    raw = raw_spec(path)
    raw["value"] = {"segments": "plan"}
    raw["models"] = {"learners": ["t_learner"], "base": "linear", "folds": 2}
    spec = ExperimentSpec.model_validate(raw)
    data = pipeline.prepare(spec)
    assert data.frame["tenure"].isna().sum() == 2
    analysis = pipeline.analyze(spec, data)
    assert np.isfinite(analysis.modelling.results[0].predictions["email"]).all()


def test_customers_missing_from_the_outcome_file_are_refused(tmp_path: Path) -> None:
    path = write_experiment(tmp_path)
    outcomes = pd.read_parquet(path)[["customer_id", "revenue", "bought"]]
    outcomes.drop(index=[5, 6, 7]).to_csv(tmp_path / "outcomes.csv", index=False)
    raw = raw_spec(path)
    raw["outcomes"]["source"] = {"kind": "csv", "path": str(tmp_path / "outcomes.csv")}
    with pytest.raises(
        DataError,
        match=r"outcomes.source.path: 3 customers of the experiment have no row in .*outcomes"
        r".csv \(for example 'c5'\)",
    ):
        pipeline.prepare(ExperimentSpec.model_validate(raw))


def test_a_metric_with_every_value_missing_is_refused(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, revenue=np.full(N, np.nan))
    with pytest.raises(
        DataError, match=r"outcomes.metrics.revenue: column 'revenue' of .* has 600 missing values"
    ):
        pipeline.prepare(ExperimentSpec.model_validate(raw_spec(path)))


@pytest.mark.parametrize(("emailed", "found"), [(0, "'email' 0"), (49, "'email' 49")])
def test_an_arm_with_no_or_too_few_customers_is_refused(
    tmp_path: Path, emailed: int, found: str
) -> None:
    # an arm label of the data with no customer left after eligibility, or only 49
    arm = np.full(N, "control", dtype=object)
    arm[:emailed] = "email"
    arm[N - 10 :] = "sms"  # a third arm, all of whose customers are not eligible
    tenure = np.arange(N, dtype=float) + 1
    tenure[N - 10 :] = 0
    path = write_experiment(tmp_path, arm=arm, tenure=tenure)
    raw = raw_spec(path, eligible="tenure > 0")
    with pytest.raises(DataError) as caught:
        pipeline.prepare(ExperimentSpec.model_validate(raw))
    message = str(caught.value)
    if emailed == 0:
        assert "assignment.column: column 'arm' holds only the control arm" in message
    else:
        assert "arm 'email' has fewer than 50 customers in the experiment ('control' " in message
        assert found in message
