"""Tests of the assignment ledger (uplift.design.ledger) and of launching (uplift.design.launch).

Every test runs against SQLite in ``tmp_path`` and, when ``UPLIFT_TEST_POSTGRES_URL`` names
a PostgreSQL server, against PostgreSQL too, in a schema of its own that is dropped after
the test (the global holdout is a programme-wide setting, so experiments must not share
one). Expected arms are recomputed here, one customer at a time, from the documented rule
(global holdout, then layer, then the experiment's bucket ranges) with
:func:`uplift.design.hashing.bucket_of`.

The crash test kills ``uplift assign`` with SIGKILL while it writes a large assignment
and checks that the ledger holds all of it or none of it, never a part.
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from uplift.design.hashing import GLOBAL_HOLDOUT, GLOBAL_HOLDOUT_SALT, bucket_of, layer_salt
from uplift.design.launch import launch
from uplift.design.ledger import Ledger
from uplift.errors import AssignmentError
from uplift.spec import BUCKETS, ExperimentSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "edtech_trial_lessons.yaml"
PG_ENV = "UPLIFT_TEST_POSTGRES_URL"
PG_SKIP = (
    "set UPLIFT_TEST_POSTGRES_URL to a PostgreSQL SQLAlchemy URL to run the ledger tests "
    "against PostgreSQL (.ci/run starts one)"
)
TABLES = ["uplift_settings", "uplift_experiments", "uplift_batches", "uplift_assignments"]
# one offer for every arm, so that tests may rename, add and remove arms freely
OFFER = {
    "kind": "trial_lessons",
    "price": 5.0,
    "delivery_cost": 14.0,
    "uptake_metric": "took_trial",
}
ARMS = {"control": 0.2, "two_lessons": 0.4, "four_lessons": 0.4}
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
_KEEP = object()
# the snapshot may carry each customer's arm in this column (uplift.design.ledger.ARM_COLUMN)
SNAPSHOT_ARM = "uplift_arm"


# --- backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    """One ledger database for one test; ``ledger()`` opens it (closed after the test)."""

    kind: str
    url: str
    snapshots: Path
    opened: list[Ledger] = field(default_factory=list)
    password: str | None = None
    application_name: str | None = None

    def ledger(self) -> Ledger:
        ledger = Ledger(self.url, snapshots=self.snapshots)
        self.opened.append(ledger)
        return ledger

    def close(self) -> None:
        for ledger in self.opened:
            ledger.engine.dispose()


def _postgres_url(base: str, schema: str, application_name: str, timezone_name: str) -> str:
    url = sa.engine.make_url(base)
    options = " ".join(
        part
        for part in (
            url.query.get("options"),
            f"-csearch_path={schema}",
            f"-ctimezone={timezone_name}" if timezone_name else None,
        )
        if part
    )
    url = url.update_query_dict({"options": options, "application_name": application_name})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, tmp_path)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Backend]:
    yield from _backend("postgresql", tmp_path)


@pytest.fixture
def postgres_new_york(tmp_path: Path) -> Iterator[Backend]:
    """PostgreSQL whose sessions run in America/New_York, as a server set up there would."""
    yield from _backend("postgresql", tmp_path, timezone_name="America/New_York")


def _backend(kind: str, tmp_path: Path, timezone_name: str = "") -> Iterator[Backend]:
    snapshots = tmp_path / "snap"
    if kind == "sqlite":
        backend = Backend("sqlite", f"sqlite:///{tmp_path / 'ledger.db'}", snapshots)
        yield backend
        backend.close()
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    schema = f"uplift_test_{uuid.uuid4().hex[:12]}"
    application_name = f"uplift-test-{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    backend = Backend(
        "postgresql",
        _postgres_url(base, schema, application_name, timezone_name),
        snapshots,
        password=sa.engine.make_url(base).password,
        application_name=application_name,
    )
    try:
        yield backend
    finally:
        backend.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


# --- specs, frames and the reference rule -------------------------------------------------


def spec_data(backend: Backend, name: str | None = None, **assignment: Any) -> dict[str, Any]:
    """The example spec, small, on the backend's ledger; ``None`` removes an assignment key."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["name"] = name or f"edtech-{uuid.uuid4().hex[:8]}"
    raw["population"]["source"] = {"kind": "simulate", "n": 3000, "seed": 7}
    raw["economics"] = {"contact_cost": 0.04, "fixed_cost": 1500, "offer": dict(OFFER)}
    raw["ledger"] = {"url": backend.url, "snapshots": str(backend.snapshots)}
    for key, value in assignment.items():
        if value is None:
            raw["assignment"].pop(key, None)
        else:
            raw["assignment"][key] = copy.deepcopy(value)
    return raw


def make_spec(
    backend: Backend, name: str | None = None, eligible: Any = _KEEP, **assignment: Any
) -> ExperimentSpec:
    raw = spec_data(backend, name, **assignment)
    if eligible is not _KEEP:
        raw["population"]["eligible"] = eligible
    return ExperimentSpec.model_validate(raw)


def frame(start: int, stop: int) -> pd.DataFrame:
    """Eligible customers ``c{start}`` .. ``c{stop - 1}``; features depend on the id only."""
    i = np.arange(start, stop)
    return pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in i],
            "tenure_days": 30 + (i * 7919) % 1970,
            "plan": np.asarray(["free", "basic", "plus"], dtype=object)[i % 3],
        }
    )


def reference_arm(
    customer: str,
    salt: str,
    arms: dict[str, float],
    holdout: float,
    layer: tuple[str, int, int] | None = None,
) -> str | None:
    """The documented rule, written out for one customer."""
    if bucket_of(customer, GLOBAL_HOLDOUT_SALT) < round(holdout * BUCKETS):
        return GLOBAL_HOLDOUT
    if layer is not None and not layer[1] <= bucket_of(customer, layer_salt(layer[0])) < layer[2]:
        return None
    bucket, start = bucket_of(customer, salt), 0
    for arm, weight in arms.items():
        end = start + round(weight * BUCKETS)
        if start <= bucket < end:
            return arm
        start = end
    return None


def reference_arms(
    ids: pd.Series,
    salt: str,
    arms: dict[str, float],
    holdout: float,
    layer: tuple[str, int, int] | None = None,
) -> dict[str, str]:
    """Customer -> arm of every customer the rule puts in the experiment."""
    out = {}
    for customer in ids:
        arm = reference_arm(customer, salt, arms, holdout, layer)
        if arm is not None:
            out[customer] = arm
    return out


def as_utc(value: datetime) -> datetime:
    """A datetime read back from the ledger as an aware UTC datetime (SQLite gives naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- reading the ledger -------------------------------------------------------------------


def table_rows(ledger: Ledger, table: str) -> list[tuple[Any, ...]]:
    with ledger.engine.connect() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table}")]
    return sorted(rows, key=repr)


def count(ledger: Ledger, table: str) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def assigned(ledger: Ledger, name: str, version: int) -> pd.DataFrame:
    """``customer_id, arm, batch`` of one experiment version, sorted by customer."""
    with ledger.engine.connect() as conn:
        record = next(e for e in ledger.experiments(conn, name) if e.version == version)
        rows = ledger.assignments(conn, record.id)
    return rows.sort_values("customer_id", ignore_index=True)


def arm_map(rows: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rows["customer_id"], rows["arm"], strict=True))


# --- launch -------------------------------------------------------------------------------


def test_launch_records_the_experiment_its_batch_and_every_customer(backend: Backend) -> None:
    ledger = backend.ledger()
    spec = make_spec(backend)
    eligible = frame(0, 3000)
    result = launch(spec, eligible, ledger, now=WHEN, n_population=5000)

    expected = reference_arms(
        eligible["customer_id"], spec.assignment.salt, ARMS, 0.05, ("edtech-lifecycle", 0, BUCKETS)
    )
    # the layer takes the whole range and the arms every bucket: everyone is recorded
    assert len(expected) == 3000
    counts = pd.Series(expected).value_counts().to_dict()
    assert set(counts) == {*ARMS, GLOBAL_HOLDOUT}
    assert 0 < counts[GLOBAL_HOLDOUT] < 3000 * 0.1

    assert result.created and result.batch == 1
    assert result.n_new == result.n_eligible == 3000
    assert result.new_counts == counts == result.counts

    with ledger.engine.connect() as conn:
        experiments = ledger.experiments(conn)
        assert len(experiments) == 1
        record = experiments[0]
        batches = ledger.batches(conn, record.id)
        holdout = ledger.setting(conn, "global_holdout")
    assert (record.name, record.version) == (spec.name, 1)
    assert record.spec_digest == spec.digest()
    assert record.salt == "edtech-trial-2026-11"
    assert (record.layer, record.layer_start, record.layer_end) == ("edtech-lifecycle", 0, BUCKETS)
    assert record.global_holdout == pytest.approx(0.05)
    assert as_utc(record.launched_at) == WHEN
    assert record.counts == counts
    assert sum(record.counts.values()) == 3000
    assert holdout == pytest.approx(0.05)

    assert len(batches) == 1
    batch = batches[0]
    assert batch.batch == 1
    assert (batch.n_population, batch.n_eligible, batch.n_added) == (5000, 3000, 3000)
    assert batch.counts == counts
    assert batch.spec_digest == spec.digest()
    assert not Path(batch.snapshot_path).is_absolute()
    snapshot = backend.snapshots / batch.snapshot_path
    assert snapshot.is_file()
    assert snapshot == result.snapshot_path
    assert batch.snapshot_sha256 == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    frozen = pd.read_parquet(snapshot).sort_values("customer_id", ignore_index=True)
    # the eligible customers as they were, plus at most the arm the ledger recorded
    pd.testing.assert_frame_equal(
        frozen[list(eligible.columns)],
        eligible.sort_values("customer_id", ignore_index=True),
        check_dtype=False,
    )
    extra = [c for c in frozen.columns if c not in eligible.columns]
    assert extra in ([], [SNAPSHOT_ARM]), extra
    if extra:
        assert dict(zip(frozen["customer_id"], frozen[SNAPSHOT_ARM], strict=True)) == expected

    rows = assigned(ledger, spec.name, 1)
    assert len(rows) == count(ledger, "uplift_assignments") == 3000
    assert rows["customer_id"].is_unique
    assert arm_map(rows) == expected
    assert set(rows["batch"]) == {1}
    assert rows["arm"].value_counts().to_dict() == record.counts


def test_a_second_launch_with_the_same_base_adds_nothing(backend: Backend) -> None:
    ledger = backend.ledger()
    spec = make_spec(backend)
    first = launch(spec, frame(0, 3000), ledger, now=WHEN)
    before = {table: table_rows(ledger, table) for table in TABLES}

    again = launch(spec, frame(0, 3000).sample(frac=1.0, random_state=1), ledger)
    assert again.batch is None
    assert not again.created
    assert again.n_new == 0 and again.new_counts == {}
    assert again.snapshot_path is None
    assert again.experiment == first.experiment
    assert again.counts == first.counts
    assert {table: table_rows(ledger, table) for table in TABLES} == before


def test_a_recorded_arm_that_the_hash_no_longer_gives_is_refused(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uplift.design.launch as launch_module

    ledger = backend.ledger()
    spec = make_spec(backend)
    launch(spec, frame(0, 2000), ledger, now=WHEN)
    before = {table: table_rows(ledger, table) for table in TABLES}
    honest = launch_module.assign_arms

    def changed_rule(*args: Any, **kwargs: Any) -> pd.Series:
        # a hashing rule that changed under a launched experiment: two arms swap
        arms = honest(*args, **kwargs)
        return arms.cat.rename_categories(
            {"two_lessons": "four_lessons", "four_lessons": "two_lessons"}
        )

    monkeypatch.setattr(launch_module, "assign_arms", changed_rule)
    with pytest.raises(AssignmentError, match=r"disagree with the hash for \d+ customers"):
        launch(spec, frame(0, 2500), ledger)
    assert {table: table_rows(ledger, table) for table in TABLES} == before


def test_a_grown_base_is_appended_as_batch_2_and_nobody_moves(backend: Backend) -> None:
    ledger = backend.ledger()
    spec = make_spec(backend)
    launch(spec, frame(0, 3000), ledger, now=WHEN)
    old = assigned(ledger, spec.name, 1)

    # 500 newcomers; 200 of the launched customers are no longer eligible
    grown = pd.concat([frame(200, 3000), frame(3000, 3500)], ignore_index=True)
    result = launch(spec, grown, ledger, now=WHEN + timedelta(days=3))
    assert result.batch == 2 and not result.created
    assert result.n_new == 500

    rows = assigned(ledger, spec.name, 1)
    assert len(rows) == count(ledger, "uplift_assignments") == 3500
    batch1, batch2 = rows[rows["batch"] == 1], rows[rows["batch"] == 2]
    pd.testing.assert_frame_equal(batch1.reset_index(drop=True), old)
    assert set(batch2["customer_id"]) == {f"c{i}" for i in range(3000, 3500)}
    expected = reference_arms(
        batch2["customer_id"], spec.assignment.salt, ARMS, 0.05, ("edtech-lifecycle", 0, BUCKETS)
    )
    assert arm_map(batch2) == expected
    assert result.new_counts == batch2["arm"].value_counts().to_dict()

    with ledger.engine.connect() as conn:
        (record,) = ledger.experiments(conn)
        batches = ledger.batches(conn, record.id)
        snapshot = ledger.snapshot(conn, record)
    assert record.version == 1
    assert as_utc(record.launched_at) == WHEN  # the launch row is not touched by a batch
    assert [b.batch for b in batches] == [1, 2]
    assert (batches[1].n_eligible, batches[1].n_added) == (len(grown), 500)
    assert batches[1].counts == result.new_counts
    assert (backend.snapshots / batches[1].snapshot_path).is_file()
    assert batches[1].snapshot_path != batches[0].snapshot_path
    # the frozen snapshot is every batch: the 3000 launched and the 500 newcomers
    assert sorted(snapshot["customer_id"]) == sorted(f"c{i}" for i in range(3500))


SPEC_CHANGES: dict[str, dict[str, Any]] = {
    "weight": {"arms": {"control": 0.3, "two_lessons": 0.3, "four_lessons": 0.4}},
    "salt": {"salt": "edtech-trial-2026-12"},
    "removed-arm": {"arms": {"control": 0.2, "two_lessons": 0.4}},
    "eligible": {"eligible": "applied_premium == 1"},
}


@pytest.mark.parametrize("change", sorted(SPEC_CHANGES))
def test_a_spec_change_that_moves_customers_needs_a_new_version(
    backend: Backend, change: str
) -> None:
    ledger = backend.ledger()
    spec = make_spec(backend)
    launch(spec, frame(0, 3000), ledger, now=WHEN)
    v1 = assigned(ledger, spec.name, 1)
    before = {table: table_rows(ledger, table) for table in TABLES}

    changed = make_spec(backend, name=spec.name, **SPEC_CHANGES[change])
    with pytest.raises(AssignmentError) as caught:
        launch(changed, frame(0, 3500), ledger)
    message = str(caught.value)
    assert repr(spec.name) in message
    assert "version 1" in message
    assert "--new-version" in message
    assert {table: table_rows(ledger, table) for table in TABLES} == before

    result = launch(changed, frame(0, 3500), ledger, new_version=True, now=WHEN + timedelta(1))
    assert result.created and result.batch == 1
    assert result.experiment.version == 2
    assert result.experiment.spec_digest == changed.digest()
    with ledger.engine.connect() as conn:
        versions = ledger.experiments(conn, spec.name)
        assert [e.version for e in versions] == [1, 2]
        assert [b.batch for b in ledger.batches(conn, versions[1].id)] == [1]
        assert ledger.snapshot(conn, versions[0]) is not None  # v1's snapshot is intact
    pd.testing.assert_frame_equal(assigned(ledger, spec.name, 1), v1)
    v2 = assigned(ledger, spec.name, 2)
    assert len(v2) == result.n_new == len(result.assignments)
    assert count(ledger, "uplift_assignments") == len(v1) + len(v2)
    assert result.snapshot_path is not None
    assert "v2" in result.snapshot_path.parts
    expected = reference_arms(
        frame(0, 3500)["customer_id"],
        changed.assignment.salt,
        changed.assignment.arms,
        0.05,
        ("edtech-lifecycle", 0, BUCKETS),
    )
    assert arm_map(v2) == expected


def test_adding_an_arm_into_unallocated_buckets_moves_nobody(backend: Backend) -> None:
    ledger = backend.ledger()
    arms = {"control": 0.2, "a": 0.4}
    spec = make_spec(backend, arms=arms)
    launch(spec, frame(0, 3000), ledger, now=WHEN)
    old = assigned(ledger, spec.name, 1)
    layer = ("edtech-lifecycle", 0, BUCKETS)
    assert arm_map(old) == reference_arms(
        frame(0, 3000)["customer_id"], spec.assignment.salt, arms, 0.05, layer
    )
    assert len(old) < 3000  # buckets 6000-9999 are in no arm yet
    assert set(old["arm"]) == {"control", "a", GLOBAL_HOLDOUT}

    wider = {"control": 0.2, "a": 0.4, "b": 0.2}
    result = launch(make_spec(backend, name=spec.name, arms=wider), frame(0, 3000), ledger)
    assert not result.created
    assert result.experiment.version == 1
    assert result.batch == 2

    rows = assigned(ledger, spec.name, 1)
    pd.testing.assert_frame_equal(rows[rows["batch"] == 1].reset_index(drop=True), old)
    added = rows[rows["batch"] == 2]
    # the launched customers that bucket 6000-7999 now puts in b, and nobody else
    expected_b = {
        c: arm
        for c, arm in reference_arms(
            frame(0, 3000)["customer_id"], spec.assignment.salt, wider, 0.05, layer
        ).items()
        if arm == "b"
    }
    assert len(expected_b) > 0
    assert arm_map(added) == expected_b
    assert result.new_counts == {"b": len(expected_b)}

    # a newcomer whose bucket falls in b's range goes to b
    grown = launch(make_spec(backend, name=spec.name, arms=wider), frame(0, 3600), ledger)
    assert grown.batch == 3
    newcomers = assigned(ledger, spec.name, 1).query("batch == 3")
    assert arm_map(newcomers) == reference_arms(
        frame(3000, 3600)["customer_id"], spec.assignment.salt, wider, 0.05, layer
    )
    assert "b" in set(newcomers["arm"])


def test_the_global_holdout_is_fixed_by_the_first_launch(backend: Backend) -> None:
    ledger = backend.ledger()
    first = make_spec(backend, global_holdout=0.05, layer=None)
    launch(first, frame(0, 3000), ledger, now=WHEN)

    refused = make_spec(backend, global_holdout=0.1, salt="other-campaign", layer=None)
    with pytest.raises(AssignmentError) as caught:
        launch(refused, frame(0, 3000), ledger)
    message = str(caught.value)
    assert "global_holdout" in message
    assert "0.05" in message and "0.1" in message
    with ledger.engine.connect() as conn:
        assert ledger.latest(conn, refused.name) is None
        assert ledger.setting(conn, "global_holdout") == pytest.approx(0.05)

    # no global_holdout in the spec: the programme's share is inherited
    inherit = make_spec(backend, global_holdout=None, salt="third-campaign", layer=None)
    assert inherit.assignment.global_holdout is None
    result = launch(inherit, frame(0, 3000), ledger)
    assert result.experiment.global_holdout == pytest.approx(0.05)
    rows = assigned(ledger, inherit.name, 1)
    held = {c for c, arm in arm_map(rows).items() if arm == GLOBAL_HOLDOUT}
    expected = {
        c
        for c in frame(0, 3000)["customer_id"]
        if bucket_of(c, GLOBAL_HOLDOUT_SALT) < round(0.05 * BUCKETS)
    }
    assert held == expected and held
    # the holdout is drawn under its own salt: the same customers in every campaign
    first_held = {
        c for c, arm in arm_map(assigned(ledger, first.name, 1)).items() if arm == GLOBAL_HOLDOUT
    }
    assert first_held == held

    # giving the programme's value explicitly is accepted
    same = make_spec(backend, global_holdout=0.05, salt="fourth-campaign", layer=None)
    assert launch(same, frame(0, 3000), ledger).created


def test_an_unset_global_holdout_fixes_zero_for_the_programme(backend: Backend) -> None:
    ledger = backend.ledger()
    launch(make_spec(backend, global_holdout=None, layer=None), frame(0, 2000), ledger)
    with ledger.engine.connect() as conn:
        assert ledger.setting(conn, "global_holdout") == 0
    with pytest.raises(AssignmentError, match="global_holdout"):
        launch(make_spec(backend, global_holdout=0.05, layer=None), frame(0, 2000), ledger)


def test_experiments_of_one_layer_never_share_a_customer(backend: Backend) -> None:
    ledger = backend.ledger()
    eligible = frame(0, 4000)
    a = make_spec(backend, layer="lifecycle", layer_share=0.5, salt="campaign-a")
    b = make_spec(backend, layer="lifecycle", layer_share=0.5, salt="campaign-b")
    result_a = launch(a, eligible, ledger)
    result_b = launch(b, eligible, ledger)
    ranges = {(r.experiment.layer_start, r.experiment.layer_end) for r in (result_a, result_b)}
    assert ranges == {(0, 5000), (5000, 10000)}

    rows_a, rows_b = assigned(ledger, a.name, 1), assigned(ledger, b.name, 1)
    in_a = set(rows_a.loc[rows_a["arm"] != GLOBAL_HOLDOUT, "customer_id"])
    in_b = set(rows_b.loc[rows_b["arm"] != GLOBAL_HOLDOUT, "customer_id"])
    assert in_a and in_b
    assert not in_a & in_b
    # between them the two halves cover everyone not held out
    not_held = {
        c for c in eligible["customer_id"] if bucket_of(c, GLOBAL_HOLDOUT_SALT) < 500
    } ^ set(eligible["customer_id"])
    assert in_a | in_b == not_held
    for spec, rows, result in ((a, rows_a, result_a), (b, rows_b, result_b)):
        layer = ("lifecycle", result.experiment.layer_start, result.experiment.layer_end)
        expected = reference_arms(eligible["customer_id"], spec.assignment.salt, ARMS, 0.05, layer)
        assert arm_map(rows) == expected

    before = count(ledger, "uplift_assignments")
    c = make_spec(backend, layer="lifecycle", layer_share=0.5, salt="campaign-c")
    with pytest.raises(AssignmentError) as caught:
        launch(c, eligible, ledger)
    message = str(caught.value)
    assert "layer_share" in message
    assert "'lifecycle'" in message
    assert a.name in message and b.name in message
    assert "50.00%" in message
    assert count(ledger, "uplift_assignments") == before
    with ledger.engine.connect() as conn:
        assert ledger.latest(conn, c.name) is None

    # another layer is free
    d = make_spec(backend, layer="winback", layer_share=0.5, salt="campaign-d")
    assert launch(d, eligible, ledger).experiment.layer_start == 0


# --- append-only --------------------------------------------------------------------------

TAMPERING = {
    "uplift_settings": [
        "UPDATE uplift_settings SET set_by = 'mallory'",
        "DELETE FROM uplift_settings",
    ],
    "uplift_experiments": [
        "UPDATE uplift_experiments SET salt = 'other'",
        "DELETE FROM uplift_experiments",
    ],
    "uplift_batches": ["UPDATE uplift_batches SET n_added = 0", "DELETE FROM uplift_batches"],
    "uplift_assignments": [
        "UPDATE uplift_assignments SET arm = 'control'",
        "DELETE FROM uplift_assignments WHERE arm = 'control'",
        "DELETE FROM uplift_assignments",
    ],
}


@pytest.mark.parametrize("table", sorted(TAMPERING))
def test_the_ledger_refuses_updates_and_deletes(backend: Backend, table: str) -> None:
    ledger = backend.ledger()
    launch(make_spec(backend), frame(0, 1500), ledger)
    before = {name: table_rows(ledger, name) for name in TABLES}
    assert before[table], f"{table} must hold rows for the test to mean anything"
    statements = list(TAMPERING[table])
    if backend.kind == "postgresql":
        statements.append(f"TRUNCATE {table} CASCADE")
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError) as caught, ledger.engine.begin() as conn:
            conn.exec_driver_sql(statement)
        assert "append-only" in str(caught.value), statement
    assert {name: table_rows(ledger, name) for name in TABLES} == before


def test_an_insert_cannot_replace_a_recorded_row(backend: Backend) -> None:
    ledger = backend.ledger()
    result = launch(make_spec(backend), frame(0, 1500), ledger)
    rows = assigned(ledger, result.experiment.name, 1)
    customer, arm = rows.loc[rows["arm"] == "two_lessons"].iloc[0][["customer_id", "arm"]]
    before = {name: table_rows(ledger, name) for name in TABLES}
    experiment_id = result.experiment.id
    upsert = (
        "INSERT INTO uplift_assignments (experiment_id, customer_id, arm, batch) "
        f"VALUES ({experiment_id}, '{customer}', 'control', 1) "
        "ON CONFLICT (experiment_id, customer_id) DO UPDATE SET arm = excluded.arm"
    )
    statements = [upsert]
    if backend.kind == "sqlite":
        statements.append(
            "INSERT OR REPLACE INTO uplift_assignments (experiment_id, customer_id, arm, batch) "
            f"VALUES ({experiment_id}, '{customer}', 'control', 1)"
        )
    failures = []
    for statement in statements:
        try:
            with ledger.engine.begin() as conn:
                conn.exec_driver_sql(statement)
        except sa.exc.DBAPIError as exc:
            assert "append-only" in str(exc), statement
        else:
            failures.append(statement)
    after = assigned(ledger, result.experiment.name, 1)
    assert arm_map(after)[customer] == arm, f"{customer}'s arm was rewritten by {failures}"
    assert not failures
    assert {name: table_rows(ledger, name) for name in TABLES} == before


# ids that cannot travel as they are inside a JSON string (SQLite's bulk path) or a COPY
# text field (PostgreSQL's), beside plain ones; PostgreSQL text cannot hold NUL at all
AWKWARD_IDS = [
    'quote"d',
    "back\\slash",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "bell\x07",
    "",
    "007",
    "ü-kunde",
    "客户-42",
    "😀",
    "x" * 300,
    "it's",
    "comma,semi;colon",
    '["json"]',
]


@pytest.mark.parametrize("page", [5, 7])
def test_bulk_insert_keeps_every_id_and_arm_exactly(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    import uplift.design.ledger as ledger_module

    # chunks of four: some hold only plain ids (the bulk path), some an awkward one; read
    # back in pages of 5 (the 55 rows fill the last page exactly) or 7
    monkeypatch.setattr(ledger_module, "_CHUNK", 4)
    monkeypatch.setattr(ledger_module, "_READ_PAGE", page)
    ids = [f"plain-{i:03d}" for i in range(40)] + AWKWARD_IDS
    # twelve arms, so an arm's code takes two digits; names with quotes and tabs
    names = [f"arm {k}" for k in range(10)] + ["it's", "tab\tarm"]
    arms = [names[(7 * i) % len(names)] for i in range(len(ids))]
    rows = pd.DataFrame({"customer_id": ids, "arm": arms}).sample(frac=1, random_state=3)
    ledger = backend.ledger()
    with ledger.transaction("bulk") as conn:
        experiment_id = ledger.add_experiment(
            conn,
            name="bulk",
            version=1,
            spec_digest="0" * 64,
            salt="s",
            layer=None,
            layer_start=None,
            layer_end=None,
            global_holdout=0.0,
            launched_at=WHEN,
            counts={},
        )
        ledger.add_assignments(conn, experiment_id, 1, rows)
    with ledger.engine.connect() as conn:
        stored = ledger.assignments(conn, experiment_id)
    assert len(stored) == len(ids)
    assert arm_map(stored) == dict(zip(ids, arms, strict=True))
    assert list(stored["customer_id"]) == sorted(ids)  # by id, the empty id first
    assert set(stored["batch"]) == {1}


# --- the frozen snapshot ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["changed", "deleted"])
def test_a_tampered_snapshot_is_refused(backend: Backend, how: str) -> None:
    ledger = backend.ledger()
    result = launch(make_spec(backend), frame(0, 1500), ledger)
    path = result.snapshot_path
    assert path is not None
    with ledger.engine.connect() as conn:
        assert len(ledger.snapshot(conn, result.experiment)) == 1500

    if how == "changed":
        # a valid Parquet file with one feature value edited, not random garbage
        edited = pd.read_parquet(path)
        edited.loc[0, "tenure_days"] += 1
        edited.to_parquet(path, index=False)
    else:
        path.unlink()
    with ledger.engine.connect() as conn, pytest.raises(AssignmentError) as caught:
        ledger.snapshot(conn, result.experiment)
    message = str(caught.value)
    assert str(path) in message
    assert repr(result.experiment.name) in message
    assert ("missing" if how == "deleted" else "changed after launch") in message


# --- PostgreSQL only ----------------------------------------------------------------------


def test_messages_do_not_show_the_ledger_password(postgres: Backend) -> None:
    if not postgres.password:
        pytest.skip("the PostgreSQL URL has no password")
    ledger = postgres.ledger()
    spec = make_spec(postgres)
    launch(spec, frame(0, 1000), ledger)
    messages = []
    for changed in (
        make_spec(postgres, name=spec.name, salt="changed"),
        make_spec(postgres, global_holdout=0.2, layer=None),
    ):
        with pytest.raises(AssignmentError) as caught:
            launch(changed, frame(0, 1000), ledger)
        messages.append(str(caught.value))
    secret = f":{postgres.password}@"
    assert all(secret not in message for message in messages), messages


def test_the_launch_time_in_messages_is_utc_whatever_the_server_timezone(
    postgres_new_york: Backend,
) -> None:
    ledger = postgres_new_york.ledger()
    spec = make_spec(postgres_new_york)
    launch(spec, frame(0, 1000), ledger, now=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    with pytest.raises(AssignmentError) as caught:
        launch(make_spec(postgres_new_york, name=spec.name, salt="changed"), frame(0, 1000), ledger)
    assert "2026-01-02 03:04 UTC" in str(caught.value)


def test_launch_keeps_the_instant_of_a_non_utc_launch_time(backend: Backend) -> None:
    ledger = backend.ledger()
    when = datetime(2026, 1, 2, 5, 4, tzinfo=timezone(timedelta(hours=2)))
    result = launch(make_spec(backend), frame(0, 1000), ledger, now=when)
    assert as_utc(result.experiment.launched_at) == when


# --- a launch killed in the middle of writing ---------------------------------------------

# SQLite inserts 600,000 rows in about two seconds here; PostgreSQL's COPY takes about ten
# times longer per row, so a smaller base gives it as wide a window
CRASH_ROWS = {"sqlite": 600_000, "postgresql": 150_000}


def write_population(path: Path, n: int) -> None:
    """A Parquet base of ``n`` customers, every one eligible under the example's rule."""
    rng = np.random.default_rng(11)
    population = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "recency_days": rng.integers(1, 365, n),
            "frequency_180d": rng.poisson(3, n),
            "monetary_180d": rng.gamma(2.0, 50.0, n).round(2),
            "tenure_days": rng.integers(30, 2000, n),
            "plan": rng.choice(["free", "basic", "plus"], n),
            "applied_premium": np.ones(n, dtype=int),
            "bought_premium_before": np.zeros(n, dtype=int),
        }
    )
    population.to_parquet(path, index=False)


def _copy_under_way(monitor: sa.Engine, application_name: str) -> bool:
    with monitor.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
                    "AND state = 'active' AND query ILIKE 'COPY uplift_assignments%'"
                ),
                {"app": application_name},
            ).scalar_one()
        )


def _backend_gone(monitor: sa.Engine, application_name: str) -> bool:
    with monitor.connect() as conn:
        return not conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"),
            {"app": application_name},
        ).scalar_one()


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.05)


def test_a_launch_killed_while_writing_leaves_all_or_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    n = CRASH_ROWS[backend.kind]
    population = tmp_path / "population.parquet"
    write_population(population, n)
    raw = spec_data(backend, name="crash-launch")
    raw["population"]["source"] = {"kind": "parquet", "path": str(population)}
    raw["outcomes"]["source"] = {"kind": "population"}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "uplift", "assign", str(spec_path), "--out", "arms.csv"]

    # the tables exist before the launch, so the launch's transaction is the only writer
    ledger = backend.ledger()
    assert count(ledger, "uplift_assignments") == 0
    ledger.engine.dispose()
    monitor = None
    if backend.kind == "sqlite":
        journal = tmp_path / "ledger.db-journal"
        assert not journal.exists()

        def writing() -> bool:
            # the rollback journal is created by the first write of the launch's transaction
            return journal.exists()
    else:
        monitor = sa.create_engine(os.environ[PG_ENV])
        app = backend.application_name
        assert app is not None

        def writing() -> bool:
            return _copy_under_way(monitor, app)

    log = tmp_path / "killed.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not writing():
                if process.poll() is not None:
                    pytest.fail(
                        f"uplift assign ended (exit {process.returncode}) before it was seen "
                        f"writing the assignment:\n{log.read_text()}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail("uplift assign was never seen writing the assignment")
                time.sleep(0.002 if backend.kind == "sqlite" else 0.02)
            alive = process.poll() is None
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)
    # the kill landed while the transaction was writing, not after the process finished
    assert alive, "uplift assign finished before the kill: make the population bigger"
    assert process.returncode == -signal.SIGKILL

    if backend.kind == "sqlite":
        # a hot journal is left behind: the write transaction never committed
        assert journal.exists()
    else:
        assert monitor is not None and backend.application_name is not None
        name = backend.application_name
        _wait(lambda: _backend_gone(monitor, name), 60, "the killed client's backend to end")
        monitor.dispose()

    ledger = backend.ledger()  # opening it rolls back SQLite's hot journal
    state = tuple(count(ledger, table) for table in TABLES)
    assert state in {(0, 0, 0, 0), (1, 1, 1, n)}, f"partial launch left: {state}"
    # the process died before its commit, so nothing of it is in the ledger
    assert state == (0, 0, 0, 0)
    ledger.engine.dispose()

    rerun = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "launched 'crash-launch' version 1" in rerun.stderr
    ledger = backend.ledger()
    assert tuple(count(ledger, table) for table in TABLES) == (1, 1, 1, n)
    with ledger.engine.connect() as conn:
        (record,) = ledger.experiments(conn)
        assert sum(record.counts.values()) == n
        assert len(ledger.snapshot(conn, record)) == n
    exported = pd.read_csv(tmp_path / "arms.csv")
    assert len(exported) == n - record.counts[GLOBAL_HOLDOUT]
