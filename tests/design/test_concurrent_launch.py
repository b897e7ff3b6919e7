"""Launches at the same moment: two ``uplift assign`` processes against one ledger.

Two people launching the same experiment at once must end with one launch: exactly one
experiment row and one batch, every customer once, the second command seeing the first
(nobody new) or refused, never a duplicate or a lost row. Two experiments of one layer
launched at once must take disjoint ranges of the layer, and two first launches of a
programme must agree on its global holdout. On SQLite and, where
``UPLIFT_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it), on PostgreSQL, each time on a
fresh ledger, so the schema is also created by two processes at once.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_ledger import Backend, _backend, count, spec_data, table_rows, write_population

ROWS = 150_000


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, tmp_path)


def write_spec(backend: Backend, folder: Path, base: Path, name: str, **assignment: object) -> Path:
    raw = spec_data(backend, name=name, **assignment)
    raw["population"]["source"] = {"kind": "parquet", "path": str(base)}
    raw["outcomes"]["source"] = {"kind": "population"}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def at_once(folder: Path, *specs: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start ``uplift assign`` of every spec at the same moment; wait for all of them."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "uplift", "assign", str(spec), "--out", f"arms-{k}.csv"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k, spec in enumerate(specs)
    ]
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def test_one_experiment_launched_twice_at_once_is_recorded_once(
    backend: Backend, tmp_path: Path
) -> None:
    base = tmp_path / "base.parquet"
    write_population(base, ROWS)
    spec = write_spec(backend, tmp_path, base, "twice")
    first, second = at_once(tmp_path, spec, spec)
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    said = [done.stderr for done in (first, second)]
    assert sum("launched 'twice' version 1" in text for text in said) == 1, said
    assert sum("already launched, nobody new" in text for text in said) == 1, said
    ledger = backend.ledger()
    assert count(ledger, "uplift_experiments") == 1
    assert count(ledger, "uplift_batches") == 1
    rows = table_rows(ledger, "uplift_assignments")
    customers = [row[1] for row in rows]
    assert len(customers) == len(set(customers)) == ROWS  # every customer, once
    exports = [(tmp_path / f"arms-{k}.csv").read_text() for k in range(2)]
    assert exports[0] == exports[1]


def test_two_experiments_of_one_layer_launched_at_once_share_no_customer(
    backend: Backend, tmp_path: Path
) -> None:
    base = tmp_path / "base.parquet"
    write_population(base, ROWS)
    specs = [
        write_spec(
            backend, tmp_path, base, name, layer="lifecycle", layer_share=0.5, global_holdout=0.05
        )
        for name in ("first", "second")
    ]
    for done in at_once(tmp_path, *specs):
        assert done.returncode == 0, done.stderr
    ledger = backend.ledger()
    with ledger.engine.connect() as conn:
        records = ledger.experiments(conn)
        assignments = {r.name: ledger.assignments(conn, r.id) for r in records}
        holdout = ledger.setting(conn, "global_holdout")
    ranges = sorted((r.layer_start, r.layer_end) for r in records)
    assert ranges == [(0, 5000), (5000, 10000)]
    assert holdout == 0.05 and count(ledger, "uplift_settings") == 1
    # the programme's global holdout is shared; the experiments' customers are not
    taken = {
        name: set(rows.loc[rows["arm"] != "global_holdout", "customer_id"])
        for name, rows in assignments.items()
    }
    assert taken["first"] and taken["second"] and not taken["first"] & taken["second"]


def test_a_launch_that_waits_past_sqlite_s_busy_timeout_is_refused_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uplift.design import ledger as ledger_module
    from uplift.design.launch import launch
    from uplift.errors import AssignmentError
    from uplift.spec import ExperimentSpec

    monkeypatch.setattr(ledger_module, "_SQLITE_BUSY_SECONDS", 1)
    sqlite = Backend("sqlite", f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "snap")

    spec = ExperimentSpec.model_validate(spec_data(sqlite, name="waiting"))
    base = tmp_path / "base.parquet"
    write_population(base, 100)
    opened = sqlite.ledger()  # the tables exist; the lock is taken below
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another launch holds the file's write lock
    try:
        with pytest.raises(AssignmentError, match=r"stayed locked by another launch for 1 s, so"):
            sqlite.ledger()  # opening it takes the lock too, to create missing tables
        with pytest.raises(
            AssignmentError,
            match=r"locked by another launch for 1 s, so the launch of 'waiting' did not start",
        ):
            launch(spec, pd.read_parquet(base), opened)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert count(sqlite.ledger(), "uplift_experiments") == 0
    sqlite.close()
