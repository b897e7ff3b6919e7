"""Property-based fuzzing of the data loaders: any small table gives an analysis or a clear error.

Hypothesis generates ``UPLIFT_FUZZ_FRAMES`` tables (1,000 in the default run) of an
experiment that already ran (observed assignment): ids that repeat or go missing, arm
labels that are not the control or are blank, features with missing, infinite and text
values, outcomes with text, missing and out-of-range values, columns left out, written
as Parquet or as CSV. Each is read with a spec whose feature policy and eligibility rule
vary too. ``pipeline.prepare`` and then ``pipeline.analyze`` must give their results or
raise an :class:`~uplift.errors.UpliftError`, whose one-paragraph message the command
line prints; any other exception is a traceback a user would see.
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_data_problems import raw_spec

from uplift import pipeline
from uplift.design.ledger import Ledger
from uplift.errors import UpliftError
from uplift.spec import ExperimentSpec

IDS = st.one_of(
    st.integers(min_value=-3, max_value=60),
    st.text(alphabet="ab07 ", max_size=3),
    st.none(),
)
ARMS = st.sampled_from(["control", "email", "sms", "", " control", None])
NUMBERS = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e300]),
    st.integers(min_value=-5, max_value=5),
)
TEXTS = st.one_of(st.sampled_from(["free", "pro", "", "1.5", "nan"]), st.text(max_size=4))
BINARY = st.one_of(st.sampled_from([0, 1]), st.sampled_from([2, -1, 0.5, np.nan, True]))
#: Column -> the values its cells are drawn from; a column is numeric, text, or both.
COLUMNS: dict[str, st.SearchStrategy[Any]] = {
    "customer_id": IDS,
    "arm": ARMS,
    "tenure": st.one_of(NUMBERS, TEXTS),
    "plan": TEXTS,
    "revenue": st.one_of(NUMBERS, TEXTS),
    "bought": BINARY,
}


#: How a column is drawn: as a clean column (most often, so that many tables reach the
#: models), a clean one with one to three cells replaced, all arbitrary cells, or left out.
MODES = st.sampled_from(["clean"] * 30 + ["spotted"] * 4 + ["arbitrary"] + ["absent"])


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """A table of 0 to 160 rows; each column is drawn as a whole."""
    n = draw(st.sampled_from([120, 0, 1, 3, 7, 60, 101, 110, 130, 160]))
    data = {}
    for name, cells in COLUMNS.items():
        mode = draw(MODES)
        if mode == "absent":
            continue
        if mode == "arbitrary":
            data[name] = draw(st.lists(cells, min_size=n, max_size=n))
            continue
        values = _clean(name, n, draw(st.integers(min_value=0, max_value=2**32 - 1)))
        if mode == "spotted" and n:
            for spot in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3)):
                values[spot] = draw(cells)
        data[name] = values
    return pd.DataFrame(data)


def _clean(name: str, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    if name == "customer_id":
        return list(range(1, n + 1))
    if name == "arm":
        return list(np.where(np.arange(n) % 2 == 0, "control", "email"))
    if name == "tenure":
        return list(rng.integers(1, 100, n).astype(float))
    if name == "plan":
        return list(rng.choice(["free", "pro"], n))
    if name == "revenue":
        return list(rng.gamma(2.0, 3.0, n))
    return list((rng.random(n) < 0.3).astype(int))


def _write(frame: pd.DataFrame, folder: Path, kind: str) -> tuple[Path, str]:
    """Write the table as ``kind``; as CSV where pyarrow cannot store a column of mixed text
    and numbers (the CSV case covers such a table). Returns the path and the kind written."""
    if kind == "parquet":
        path = folder / "experiment.parquet"
        try:
            frame.to_parquet(path, index=False)
            return path, kind
        except (ValueError, TypeError, ArithmeticError, OSError) as exc:
            if not any(s in str(exc) for s in ("Conversion failed", "Expected", "tried to")):
                raise
    path = folder / "experiment.csv"
    frame.to_csv(path, index=False)
    return path, "csv"


def _fuzzed(variable: str, default: int) -> Any:
    """Hypothesis settings for ``default`` examples (``variable`` overrides), the same
    examples on every run."""
    return settings(
        max_examples=int(os.environ.get(variable, str(default))),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def _spec(path: Path, kind: str, policy: str, eligible: str | None) -> ExperimentSpec:
    """test_data_problems' observed experiment on the fuzzed file, modelled cheaply."""
    raw = raw_spec(path, missing_features=policy)
    raw["population"]["source"]["kind"] = kind
    if eligible is not None:
        raw["population"]["eligible"] = eligible
    raw["value"] = {"segments": "plan"}
    raw["models"] = {"learners": ["t_learner"], "base": "linear", "folds": 2}
    return ExperimentSpec.model_validate(raw)


def _clear(exc: UpliftError) -> None:
    """The error is the one paragraph the command line prints, not a traceback."""
    event(f"{type(exc).__name__}: {str(exc)[:40]}")
    message = str(exc)
    assert message and "\n\n" not in message and "Traceback" not in message


@_fuzzed("UPLIFT_FUZZ_FRAMES", 1000)
@given(
    tables(),
    st.sampled_from(["csv", "parquet"]),
    st.sampled_from(["impute", "drop", "fail"]),
    st.sampled_from([None, "tenure > 5", "plan != 'pro'"]),
)
def test_any_table_gives_an_analysis_or_an_uplift_error(
    tmp_path: Path, frame: pd.DataFrame, kind: str, policy: str, eligible: str | None
) -> None:
    path, kind = _write(frame, tmp_path, kind)
    spec = _spec(path, kind, policy, eligible)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny experiment warns; only exceptions count
        try:
            data = pipeline.prepare(spec)
            analysis = pipeline.analyze(spec, data)
        except UpliftError as exc:
            _clear(exc)
            return
    event("analysed")
    assert len(analysis.data.arms) == len(analysis.data.frame) > 0


LAUNCHES = itertools.count()


def _launch_spec(path: Path, kind: str, folder: Path, eligible: str | None) -> ExperimentSpec:
    population: dict[str, Any] = {
        "source": {"kind": kind, "path": str(path)},
        "features": ["tenure", "plan"],
        "id": "customer_id",
    }
    if eligible is not None:
        population["eligible"] = eligible
    return ExperimentSpec.model_validate(
        {
            # a new experiment each time: the ledger is shared by the examples
            "name": f"fuzzed-launch-{next(LAUNCHES)}",
            "hypothesis": {"kind": "channel", "statement": "an e-mail lifts revenue"},
            "population": population,
            "assignment": {
                "salt": "fuzz",
                "arms": {"control": 0.5, "email": 0.5},
                "control": "control",
            },
            "outcomes": {
                "source": {"kind": "csv", "path": "outcomes.csv"},
                "window_days": 30,
                "metrics": {"revenue": {"column": "revenue", "kind": "continuous"}},
                "primary": "revenue",
            },
            "ledger": {"url": f"sqlite:///{folder / 'ledger.db'}"},
        }
    )


@_fuzzed("UPLIFT_FUZZ_LAUNCHES", 300)
@given(
    tables(),
    st.sampled_from(["csv", "parquet"]),
    st.sampled_from([None, "tenure > 5", "plan != 'pro'"]),
)
def test_any_table_launches_or_gives_an_uplift_error(
    tmp_path: Path, frame: pd.DataFrame, kind: str, eligible: str | None
) -> None:
    frame = frame.rename(columns={"arm": "channel"})  # a launch ignores columns it does not name
    path, kind = _write(frame, tmp_path, kind)
    spec = _launch_spec(path, kind, tmp_path, eligible)
    ledger = Ledger(spec.ledger.url, spec.ledger.snapshots)
    try:
        result = pipeline.assign(spec, ledger)
    except UpliftError as exc:
        _clear(exc)
        return
    finally:
        ledger.engine.dispose()
    event("launched")
    assert result.n_new == result.n_eligible > 0
