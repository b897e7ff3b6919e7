"""Launching a base read in chunks (uplift.design.launch.launch with an iterable of frames).

A base read chunk by chunk must give exactly what the whole base read at once gives: the
same customers in the ledger with the same arms, the same snapshot rows, the same counts.
The expected arms are the documented rule written out one customer at a time
(``reference_arms`` of test_ledger, from :func:`uplift.design.hashing.bucket_of`), not
the code under test. Runs on SQLite and, where ``UPLIFT_TEST_POSTGRES_URL`` is set, on
PostgreSQL (its ``COPY`` path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ledger import (
    ARMS,
    WHEN,
    Backend,
    _backend,
    arm_map,
    assigned,
    count,
    reference_arms,
    spec_data,
)

from uplift import pipeline
from uplift.design.hashing import GLOBAL_HOLDOUT, assign_arms
from uplift.design.launch import launch, plan_launch
from uplift.design.ledger import ARM_COLUMN
from uplift.errors import AssignmentError, DataError
from uplift.spec import ExperimentSpec, HashAssignment

LAYERED = {"layer": "lifecycle", "layer_share": 0.6, "global_holdout": 0.05}


def base(start: int, stop: int) -> pd.DataFrame:
    """Customers ``c{start}`` .. ``c{stop - 1}``, every third one not eligible."""
    i = np.arange(start, stop)
    return pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in i],
            "tenure_days": 30 + (i * 7919) % 1970,
            "plan": np.asarray(["free", "basic", "plus"], dtype=object)[i % 3],
            "spend": np.round((i * 31) % 97 / 7, 3),
            "applied_premium": (i % 3 != 0).astype(int),
            "bought_premium_before": np.zeros(len(i), dtype=int),
        }
    )


def chunks_of(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """``frame`` cut into chunks of ``size`` rows, each with its own index as a reader gives."""
    return [frame.iloc[k : k + size].reset_index(drop=True) for k in range(0, len(frame), size)]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, tmp_path)


def spec_on(backend: Backend, parquet: Path | None = None, **assignment: Any) -> ExperimentSpec:
    """The example spec on the backend's ledger, in a layer with a global holdout."""
    raw = spec_data(backend, **{**LAYERED, **assignment})
    raw["population"]["eligible"] = "applied_premium == 1 and bought_premium_before == 0"
    raw["population"]["features"] = ["tenure_days", "plan", "spend"]
    if parquet is not None:
        raw["population"]["source"] = {"kind": "parquet", "path": str(parquet)}
        raw["outcomes"]["source"] = {"kind": "csv", "path": "outcomes.csv"}  # never read
        raw.pop("value", None)
    return ExperimentSpec.model_validate(raw)


def eligible_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["applied_premium"] == 1].reset_index(drop=True)


def snapshot_of(backend: Backend, name: str) -> pd.DataFrame:
    """The latest version's snapshot, arms as text, by customer."""
    ledger = backend.ledger()
    with ledger.engine.connect() as conn:
        record = ledger.latest(conn, name)
        assert record is not None
        frame = ledger.snapshot(conn, record)
    frame[ARM_COLUMN] = frame[ARM_COLUMN].astype(str)
    return frame.sort_values("customer_id", ignore_index=True)


def rule_arms(spec: ExperimentSpec, frame: pd.DataFrame, layer: tuple[str, int, int]) -> dict:
    assignment = spec.assignment
    assert isinstance(assignment, HashAssignment)
    return reference_arms(frame["customer_id"], assignment.salt, ARMS, 0.05, layer)


def test_a_base_in_chunks_gives_every_customer_the_rule_s_arm_and_freezes_their_row(
    backend: Backend,
) -> None:
    population = base(0, 5000)
    spec = spec_on(backend)
    result = launch(
        spec,
        (eligible_rows(c) for c in chunks_of(population, 700)),
        backend.ledger(),
        now=WHEN,
        n_population=lambda: len(population),
    )
    eligible = eligible_rows(population)
    assert result.n_eligible == len(eligible) == 3333
    assert result.batches[-1].n_population == len(population)
    layer = ("lifecycle", result.experiment.layer_start, result.experiment.layer_end)
    expected = rule_arms(spec, eligible, layer)  # type: ignore[arg-type]
    rows = assigned(backend.ledger(), spec.name, 1)
    assert arm_map(rows) == expected
    assert result.n_new == len(expected)
    held = sum(arm == GLOBAL_HOLDOUT for arm in expected.values())
    assert result.new_counts[GLOBAL_HOLDOUT] == held > 0
    # every taken customer's row as it was, with the rule's arm, across the 5 chunks
    snapshot = snapshot_of(backend, spec.name)
    frozen = eligible[eligible["customer_id"].isin(expected)].sort_values(
        "customer_id", ignore_index=True
    )
    frozen[ARM_COLUMN] = frozen["customer_id"].map(expected)
    pd.testing.assert_frame_equal(snapshot, frozen, check_dtype=False)
    assert not list(backend.snapshots.rglob("*.tmp"))


def test_a_grown_base_in_chunks_appends_a_batch_and_moves_nobody(backend: Backend) -> None:
    spec = spec_on(backend)
    first = launch(spec, chunks_of(eligible_rows(base(0, 3000)), 400), backend.ledger())
    again = launch(spec, chunks_of(eligible_rows(base(0, 4500)), 400), backend.ledger())
    assert again.batch == 2 and not again.created
    rows = assigned(backend.ledger(), spec.name, 1)
    layer = ("lifecycle", first.experiment.layer_start, first.experiment.layer_end)
    assert arm_map(rows) == rule_arms(spec, eligible_rows(base(0, 4500)), layer)  # type: ignore[arg-type]
    new = rows[rows["batch"] == 2]
    assert new["customer_id"].str[1:].astype(int).min() >= 3000
    assert again.n_new == len(new) and first.n_new == int((rows["batch"] == 1).sum())
    # nobody new: nothing recorded, no batch, no snapshot
    third = launch(spec, chunks_of(eligible_rows(base(0, 4500)), 999), backend.ledger())
    assert third.batch is None and third.n_new == 0
    assert count(backend.ledger(), "uplift_batches") == 2


def test_an_id_repeated_across_chunks_is_refused_and_nothing_is_recorded(
    backend: Backend,
) -> None:
    spec = spec_on(backend, layer=None, layer_share=None, global_holdout=None)
    population = eligible_rows(base(0, 2000))
    repeated = population.iloc[[5]]
    chunks = [*chunks_of(population, 600), repeated.reset_index(drop=True)]
    # c8: c0, c3 and c6 are not eligible, so it is the sixth eligible row
    expected = r"base.parquet: id column 'customer_id' repeats 1 ids \(for example 'c8'\)"
    with pytest.raises(DataError, match=expected):
        launch(spec, chunks, backend.ledger(), source="population file base.parquet")
    assert count(backend.ledger(), "uplift_assignments") == 0
    assert count(backend.ledger(), "uplift_experiments") == 0
    assert not [p for p in backend.snapshots.rglob("*") if p.is_file()]


def test_a_failure_after_the_rows_are_written_leaves_no_launch_and_no_snapshot(
    backend: Backend,
) -> None:
    spec = spec_on(backend)

    def fail(_: object) -> None:
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        launch(spec, chunks_of(eligible_rows(base(0, 3000)), 500), backend.ledger(), alongside=fail)
    assert count(backend.ledger(), "uplift_assignments") == 0
    assert count(backend.ledger(), "uplift_batches") == 0
    assert not [p for p in backend.snapshots.rglob("*") if p.is_file()]


def test_no_eligible_customer_in_any_chunk_is_a_data_error(backend: Backend) -> None:
    spec = spec_on(backend)
    empty = [eligible_rows(base(0, 10)).iloc[:0]] * 3
    with pytest.raises(DataError, match=r"no customer of the SQL t at x is eligible"):
        launch(spec, empty, backend.ledger(), source="SQL t at x")


def test_arms_computed_elsewhere_are_recorded_as_given_and_checked(backend: Backend) -> None:
    spec = spec_on(backend)
    plan = plan_launch(spec, backend.ledger())
    population = eligible_rows(base(0, 3000))
    assignment = spec.assignment
    assert isinstance(assignment, HashAssignment)
    arms = assign_arms(
        population["customer_id"], assignment.salt, ARMS, plan.global_holdout, plan.layer
    )
    given = population.assign(hashed=arms.astype(object).where(arms.notna(), None))
    result = launch(spec, chunks_of(given, 800), backend.ledger(), assigned=("hashed", plan))
    rows = assigned(backend.ledger(), spec.name, 1)
    assert arm_map(rows) == rule_arms(spec, population, plan.layer)  # type: ignore[arg-type]
    assert "hashed" not in snapshot_of(backend, spec.name).columns
    assert result.n_new == len(rows)

    other = spec_on(backend, layer_share=0.2)
    stale = plan_launch(other, backend.ledger())
    bad = population.assign(hashed="three_lessons")
    with pytest.raises(AssignmentError, match=r"hold 'three_lessons', which is not an arm"):
        launch(other, [bad], backend.ledger(), assigned=("hashed", stale))
    # the layer has 40% left: a plan made before another launch took it no longer holds
    third = spec_on(backend, layer_share=0.2)
    before = plan_launch(third, backend.ledger())
    launch(spec_on(backend, layer_share=0.2), [population], backend.ledger())
    with pytest.raises(AssignmentError, match=r"the ledger .* changed while the arms were"):
        launch(third, [given], backend.ledger(), assigned=("hashed", before))


def test_the_pipeline_streams_a_parquet_dataset_in_chunks_as_it_reads_a_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    population = base(0, 6000)
    folder = tmp_path / "base"
    for k, part in enumerate(chunks_of(population, 1500)):
        (folder / f"part={k}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False),
            folder / f"part={k}" / "data.parquet",
            row_group_size=400,
        )
    single = tmp_path / "base.parquet"
    population.assign(part=np.repeat(np.arange(4), 1500)).to_parquet(single, index=False)
    results = {}
    for name, path in (("folder", folder), ("file", single)):
        sqlite = Backend("sqlite", f"sqlite:///{tmp_path / name}.db", tmp_path / f"snap-{name}")
        spec = spec_on(sqlite, path)
        raw = spec.model_dump()
        raw["name"] = "chunked"
        spec = ExperimentSpec.model_validate(raw)
        monkeypatch.setattr(pipeline, "LAUNCH_CHUNK_ROWS", 1000 if name == "folder" else 10**6)
        lines: list[str] = []
        results[name] = (pipeline.assign(spec, sqlite.ledger(), report=lines.append), sqlite)
        assert f"population: 6,000 customers, {results[name][0].n_eligible:,} eligible" in lines
        sqlite.close()
    (folder_run, folder_db), (file_run, file_db) = results["folder"], results["file"]
    assert folder_run.new_counts == file_run.new_counts
    assert folder_run.batches[-1].n_population == 6000
    pd.testing.assert_frame_equal(
        assigned(folder_db.ledger(), "chunked", 1), assigned(file_db.ledger(), "chunked", 1)
    )
    pd.testing.assert_frame_equal(
        snapshot_of(folder_db, "chunked"),
        snapshot_of(file_db, "chunked"),
        check_dtype=False,
        check_categorical=False,
    )
