"""Launching an experiment: assign the eligible base, freeze it, record it in the ledger.

:func:`launch` is what ``uplift assign`` does. It is idempotent: a second call with the
same spec and base adds nothing; customers who became eligible since are appended as a
new batch with their deterministic arm; nobody already in the ledger ever moves.

A spec change that would move customers (another salt, control, id column or
eligibility rule, another layer or layer share, an arm's bucket range changed or an
arm removed) is refused unless a new version is asked for. A new version is a fresh
experiment in the ledger, with its own launch, snapshot and assignments; the old
version's rows stay as they were. Adding an arm at the end of the list, into buckets
that were unallocated, moves nobody and is accepted as an ordinary batch.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals
from sqlalchemy import Connection

from uplift.data.id_index import IdIndex
from uplift.data.ids import id_order, ids_as_arrow, ids_as_text
from uplift.data.memory import release_arrow_memory
from uplift.design.hashing import GLOBAL_HOLDOUT, arm_ranges, assign_arms
from uplift.design.ledger import (
    ARM_COLUMN,
    BatchRecord,
    ExperimentRecord,
    Ledger,
    as_utc,
    file_sha256,
    to_storage,
)
from uplift.errors import AssignmentError, DataError
from uplift.spec import BUCKETS, ExperimentSpec, HashAssignment

__all__ = [
    "Definition",
    "FrozenColumns",
    "LaunchPlan",
    "LaunchResult",
    "launch",
    "layer_range",
    "plan_launch",
]

GLOBAL_HOLDOUT_KEY = "global_holdout"


@dataclass(frozen=True)
class FrozenColumns:
    """Columns a launch computes and freezes with its new customers' rows, beside the
    base's own (R, F and M from a purchases table, for example)."""

    columns: Callable[[pd.DataFrame], pd.DataFrame]
    """Given rows of the base, the columns to freeze, on the same index."""
    names: tuple[str, ...]
    """Their names, which the base may not use."""
    metadata: dict[bytes, bytes]
    """What the snapshot file records about them in its Parquet metadata."""


@dataclass(frozen=True)
class Definition:
    """Everything that decides which customer is in which arm."""

    salt: str
    control: str
    arms: dict[str, tuple[int, int]]
    layer: str | None
    layer_share: float
    eligible: str | None
    id_column: str

    @classmethod
    def from_spec(cls, spec: ExperimentSpec) -> Definition:
        """The definition a spec with hash assignment gives."""
        assignment = spec.assignment
        assert isinstance(assignment, HashAssignment)
        return cls(
            assignment.salt,
            assignment.control,
            arm_ranges(assignment.arms),
            assignment.layer,
            assignment.layer_share,
            spec.population.eligible,
            spec.population.id,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Definition:
        """Read back a definition stored in the ledger."""
        arms = {arm: (int(r[0]), int(r[1])) for arm, r in data["arms"].items()}
        return cls(**{**data, "arms": arms})

    def to_json(self) -> dict[str, Any]:
        """The definition as JSON-ready data."""
        data = asdict(self)
        data["arms"] = {arm: list(r) for arm, r in self.arms.items()}
        return data

    def weights(self) -> dict[str, float]:
        """Arm -> share of the buckets."""
        return {arm: (end - start) / BUCKETS for arm, (start, end) in self.arms.items()}

    def moves_customers(self, launched: Definition) -> list[str]:
        """What in this definition would move customers assigned under ``launched``."""
        reasons = []
        for name in ("salt", "control", "id_column", "eligible", "layer", "layer_share"):
            old, new = getattr(launched, name), getattr(self, name)
            if old != new:
                reasons.append(f"{name} changed from {old!r} to {new!r}")
        for arm, (start, end) in launched.arms.items():
            if arm not in self.arms:
                reasons.append(f"arm {arm!r} (buckets {start}-{end - 1}) was removed")
            elif self.arms[arm] != (start, end):
                new_start, new_end = self.arms[arm]
                reasons.append(
                    f"arm {arm!r} would move from buckets {start}-{end - 1} to "
                    f"{new_start}-{new_end - 1} (a weight before or at it changed)"
                )
        return reasons


@dataclass(frozen=True)
class LaunchResult:
    """What :func:`launch` found and recorded."""

    experiment: ExperimentRecord
    definition: Definition
    batch: int | None
    """The batch this call added, or ``None`` when nobody was new."""
    created: bool
    """True when this call launched a new experiment version."""
    n_eligible: int
    n_new: int
    new_counts: dict[str, int]
    assignments: pd.DataFrame = field(repr=False)
    """``customer_id, arm, batch`` of every customer of this version, old and new; the arm
    is categorical."""
    batches: list[BatchRecord] = field(repr=False)
    """Every batch of this version, this call's included: its snapshot can be read with
    :meth:`~uplift.design.ledger.Ledger.read_snapshot`."""
    snapshot_path: Path | None
    ledger_url: str

    @property
    def counts(self) -> dict[str, int]:
        """Customers per arm (global holdout included) over every batch."""
        counts = self.assignments["arm"].value_counts()
        return {str(k): int(v) for k, v in counts.items() if v}


def layer_range(
    taken: list[tuple[int, int]], share: float, layer: str, holders: list[str]
) -> tuple[int, int]:
    """The lowest free run of ``share * BUCKETS`` layer buckets between the taken ranges."""
    size = round(share * BUCKETS)
    start = 0
    for low, high in sorted(taken):
        if low - start >= size:
            break
        start = max(start, high)
    if start + size > BUCKETS:
        free = BUCKETS - sum(high - low for low, high in taken)
        raise AssignmentError(
            f"assignment.layer_share: layer {layer!r} has no free run of {share:.2%} of its "
            f"customers; {free / BUCKETS:.2%} is free in all and it is held by {holders}. "
            f"Ask for a smaller layer_share, or use another layer."
        )
    return start, start + size


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


@dataclass(frozen=True)
class LaunchPlan:
    """What the ledger fixes before a launch assigns anyone: read inside its transaction."""

    global_holdout: float
    fix_holdout: bool
    """True when this launch is the programme's first and fixes the global holdout."""
    latest: ExperimentRecord | None
    batches: list[BatchRecord]
    create: bool
    version: int
    layer: tuple[str, int, int] | None
    """The layer and the half-open range of its buckets this experiment owns."""


def plan_launch(spec: ExperimentSpec, ledger: Ledger, *, new_version: bool = False) -> LaunchPlan:
    """The global holdout, version and layer range a launch of ``spec`` would use now.

    For an engine that assigns outside this process (Spark): it hashes under the plan, and
    :func:`launch` checks that the ledger still gives the same plan when it records.

    Raises
    ------
    AssignmentError
        As :func:`launch` does, for a spec that would move customers or a full layer.
    """
    assignment = _hash_assignment(spec)
    with ledger.transaction(spec.name) as conn:
        return _plan(conn, spec, assignment, ledger, new_version)


def _hash_assignment(spec: ExperimentSpec) -> HashAssignment:
    assignment = spec.assignment
    if not isinstance(assignment, HashAssignment):
        raise AssignmentError(
            "assignment: only experiments we assign (salt and arms) are launched; an observed "
            "assignment is read from the data."
        )
    return assignment


def _plan(
    conn: Connection,
    spec: ExperimentSpec,
    assignment: HashAssignment,
    ledger: Ledger,
    new_version: bool,
) -> LaunchPlan:
    definition = Definition.from_spec(spec)
    holdout = ledger.setting(conn, GLOBAL_HOLDOUT_KEY)
    fix_holdout = holdout is None
    if holdout is None:
        holdout = assignment.global_holdout or 0.0
    elif assignment.global_holdout is not None and assignment.global_holdout != holdout:
        raise AssignmentError(
            f"assignment.global_holdout: the programme's global holdout in ledger "
            f"{ledger.display_url} is {holdout:g}, fixed by the first launch; this spec "
            f"asks for {assignment.global_holdout:g}. It cannot change without moving "
            f"customers in or out of every campaign; remove the key or set it to {holdout:g}."
        )

    latest = ledger.latest(conn, spec.name)
    batches = ledger.batches(conn, latest.id) if latest else []
    create = latest is None or new_version
    version = 1 if latest is None else latest.version + int(create)
    if latest is not None and not new_version:
        launched = Definition.from_json(batches[-1].definition)
        moved = definition.moves_customers(launched)
        if moved:
            raise AssignmentError(
                f"Experiment {spec.name!r} version {latest.version} was launched on "
                f"{latest.launched_at:%Y-%m-%d %H:%M} UTC (ledger {ledger.display_url}), and "
                f"this spec would move customers already assigned: {'; '.join(moved)}. "
                f"Restore the launched setting, or start version {latest.version + 1} with "
                f"`uplift assign --new-version` (its customers are drawn afresh and the old "
                f"version's rows stay in the ledger)."
            )

    layer = None
    if definition.layer is not None:
        if create:
            others = [
                e
                for e in _latest_versions(ledger.experiments(conn))
                if e.layer == definition.layer and e.name != spec.name
            ]
            taken = [(e.layer_start or 0, e.layer_end or 0) for e in others]
            start, end = layer_range(
                taken, definition.layer_share, definition.layer, [e.name for e in others]
            )
        else:
            assert latest is not None and latest.layer_start is not None
            start, end = latest.layer_start, latest.layer_end or 0
        layer = (definition.layer, start, end)
    return LaunchPlan(float(holdout), fix_holdout, latest, batches, create, version, layer)


def launch(
    spec: ExperimentSpec,
    eligible: pd.DataFrame | Iterable[pd.DataFrame],
    ledger: Ledger,
    *,
    new_version: bool = False,
    now: datetime | None = None,
    n_population: int | Callable[[], int] | None = None,
    alongside: Callable[[LaunchResult], None] | None = None,
    source: str = "population",
    assigned: tuple[str, LaunchPlan] | None = None,
    freeze: Callable[[date], FrozenColumns] | None = None,
) -> LaunchResult:
    """Assign the eligible customers, freeze their snapshot and record both in one transaction.

    Parameters
    ----------
    spec : ExperimentSpec
        A spec with hash assignment.
    eligible : pd.DataFrame or iterable of pd.DataFrame
        The customers eligible now, with the id column and the columns to freeze
        (features and pre-period values as of launch); or the same in chunks, read one
        at a time: memory then holds one chunk and the new customers' ids and arms, not
        the base.
    ledger : Ledger
        Where assignments are recorded.
    new_version : bool
        Launch a new version even though the spec moves customers of the launched one.
    now : datetime, optional
        The launch time (UTC now by default).
    n_population : int or callable, optional
        Size of the whole base the eligible were drawn from, for the record; a callable
        is asked once every chunk was read.
    alongside : callable, optional
        Called with the result while the ledger still writes the new rows, before the
        transaction commits: work that needs the assignment and the snapshot files (an
        export, diagnostics) but not the database, which it must not use. If it raises,
        nothing is recorded.
    source : str
        What the customers were read from, for messages.
    assigned : (column, plan), optional
        The chunks already carry each customer's arm in ``column`` (missing for customers
        outside the experiment), hashed elsewhere under ``plan`` (from
        :func:`plan_launch`); the column is not frozen in the snapshot.
    freeze : callable, optional
        Given the experiment's launch day (the first batch's, in UTC), the columns to
        compute and freeze with the new customers' rows; called once, when the first new
        customers are found. If it raises, nothing is recorded.

    Returns
    -------
    LaunchResult

    Raises
    ------
    AssignmentError
        When the spec would move customers of the launched version (and no new version
        was asked for), the global holdout differs from the programme's, the layer is
        full, no eligible customer falls in the experiment, or the ledger no longer
        gives the plan the ``assigned`` arms were hashed under.
    DataError
        When no customer is eligible, or an id repeats among the customers taken.
    """
    assignment = _hash_assignment(spec)
    chunks = [eligible] if isinstance(eligible, pd.DataFrame) else eligible
    moment = now or datetime.now(UTC)
    when = to_storage(moment, ledger.dialect)
    definition = Definition.from_spec(spec)
    with ledger.transaction(spec.name) as conn:
        plan = _plan(conn, spec, assignment, ledger, new_version)
        if assigned is not None:
            hashed_under = assigned[1]
            if (hashed_under.global_holdout, hashed_under.layer, hashed_under.version) != (
                plan.global_holdout,
                plan.layer,
                plan.version,
            ):
                raise AssignmentError(
                    f"Experiment {spec.name!r}: the ledger {ledger.display_url} changed while "
                    f"the arms were computed (another launch recorded meanwhile); nothing was "
                    f"recorded. Run the launch again."
                )
        if plan.latest is not None and not plan.create:
            existing = ledger.assignments(conn, plan.latest.id)
        else:
            existing = pd.DataFrame({"customer_id": [], "arm": [], "batch": []})

        batch = 1 if plan.create else len(plan.batches) + 1
        relative = Path(spec.name) / f"v{plan.version}" / f"batch-{batch:04d}.parquet"
        staged = (ledger.snapshots / relative).with_suffix(".parquet.tmp")
        if freeze is not None:
            launch_day = (
                plan.latest.launched_at.date()
                if plan.latest is not None and not plan.create
                else as_utc(moment).date()
            )
            # made once, when the first new customers are found
            extra: Callable[[], FrozenColumns] | None = functools.cache(lambda: freeze(launch_day))
        else:
            extra = None
        try:
            streamed = _stream(
                chunks,
                spec,
                definition,
                plan,
                existing,
                staged,
                assigned[0] if assigned else None,
                source,
                extra,
            )
            return _record(
                conn,
                spec,
                ledger,
                _Batch(definition, plan, batch, relative, when),
                existing,
                streamed,
                n_population() if callable(n_population) else n_population,
                alongside,
            )
        finally:
            staged.unlink(missing_ok=True)


@dataclass
class _Streamed:
    """What one pass over the eligible chunks found and froze."""

    n_eligible: int
    ids: pa.Array
    """The new customers' ids as text, sorted (the ledger's primary key order)."""
    arms: pd.Categorical
    """Their arms, in the same order."""
    snapshot: Path | None
    """The staged snapshot file, or ``None`` when nobody was new."""


@dataclass(frozen=True)
class _Batch:
    """Where and under what a launch records its batch."""

    definition: Definition
    plan: LaunchPlan
    number: int
    snapshot: Path
    """Relative to the ledger's snapshot folder."""
    when: datetime


def _stream(
    chunks: Iterable[pd.DataFrame],
    spec: ExperimentSpec,
    definition: Definition,
    plan: LaunchPlan,
    existing: pd.DataFrame,
    staged: Path,
    assigned: str | None,
    source: str,
    extra: Callable[[], FrozenColumns] | None = None,
) -> _Streamed:
    """Assign chunk by chunk, freeze the new customers' rows, keep only their ids and arms."""
    id_column = spec.population.id
    categories = [*definition.arms, GLOBAL_HOLDOUT]
    recorded = IdIndex(ids_as_arrow(existing["customer_id"])) if len(existing) else None
    new_ids: list[pa.Array] = []
    new_codes: list[np.ndarray] = []
    n_eligible = 0
    writer: pq.ParquetWriter | None = None
    try:
        for frame in chunks:
            if ARM_COLUMN in frame.columns:
                raise AssignmentError(
                    f"population: the column name {ARM_COLUMN!r} is reserved for the arm in the "
                    f"launch snapshot; rename that column of the population."
                )
            if frame.empty:
                continue
            n_eligible += len(frame)
            text_ids = ids_as_text(frame[id_column]).reset_index(drop=True)
            if assigned is not None:
                every_arm = _given_arms(frame[assigned], categories, assigned)
                frame = frame.drop(columns=[assigned])
            else:
                every_arm = assign_arms(
                    text_ids,
                    definition.salt,
                    definition.weights(),
                    plan.global_holdout,
                    plan.layer,
                )
            inside = every_arm.notna().to_numpy()
            ids = text_ids[inside]
            arms = every_arm[inside]
            if recorded is not None:
                position = recorded.find(ids_as_arrow(ids))
                known = position >= 0
                _check_agreement(ids[known], arms[known], position[known], existing, spec.name)
            else:
                known = np.zeros(len(ids), dtype=bool)
            fresh = inside.copy()
            fresh[inside] = ~known
            if not fresh.any():
                continue
            fresh_arms = arms[~known].reset_index(drop=True)
            new_ids.append(ids_as_arrow(text_ids[fresh]))
            new_codes.append(np.asarray(fresh_arms.cat.codes, dtype=np.int16))
            metadata: dict[bytes, bytes] = {}
            if extra is not None:
                frozen = extra()
                taken = [name for name in frozen.names if name in frame.columns]
                if taken:
                    raise AssignmentError(
                        f"population: the column name {taken[0]!r} is reserved for a value "
                        f"the launch snapshot freezes; rename that column of the population."
                    )
                frame = pd.concat([frame, frozen.columns(frame)], axis=1)
                metadata = frozen.metadata
            writer = _freeze(frame, fresh, fresh_arms, staged, writer, metadata)
    finally:
        if writer is not None:
            writer.close()
    if not n_eligible:
        raise DataError(f"population.eligible: no customer of the {source} is eligible.")
    ids = pa.concat_arrays(new_ids) if new_ids else pa.array([], pa.large_string())
    codes = np.concatenate(new_codes) if new_codes else np.array([], dtype=np.int16)
    del new_ids, new_codes
    order = id_order(ids)
    if order is not None:
        ids, codes = ids.take(order), codes[order]
        del order
    _refuse_repeats(ids, id_column, source)
    release_arrow_memory()
    arms = pd.Categorical.from_codes(codes, categories=categories)
    return _Streamed(n_eligible, ids, arms, staged if writer is not None else None)


def _given_arms(column: pd.Series, categories: list[str], name: str) -> pd.Series:
    """Arms computed elsewhere, as the categorical :func:`assign_arms` returns."""
    column = column.reset_index(drop=True)
    codes = pd.Index(categories).get_indexer(column)
    unknown = column.notna().to_numpy() & (codes < 0)
    if unknown.any():
        raise AssignmentError(
            f"The arms computed for this launch (column {name!r}) hold "
            f"{column[unknown].iloc[0]!r}, which is not an arm of the spec ({categories})."
        )
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories), name="arm")


def _freeze(
    frame: pd.DataFrame,
    fresh: np.ndarray,
    arms: pd.Series,
    path: Path,
    writer: pq.ParquetWriter | None,
    metadata: dict[bytes, bytes] | None = None,
) -> pq.ParquetWriter:
    """Append the new customers' rows as they are now, with their arm, to the snapshot;
    the file's first write records ``metadata``."""
    table = pa.Table.from_pandas(frame, preserve_index=False).filter(pa.array(fresh))
    # dictionary-encoded: read back as a categorical, a byte a customer instead of a string
    arm = pa.array(arms.cat.remove_unused_categories())
    table = table.append_column(ARM_COLUMN, arm)
    if writer is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = table.schema
        if metadata:
            schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
        writer = pq.ParquetWriter(path, schema)
    elif not table.schema.equals(writer.schema, check_metadata=False):
        try:
            table = table.cast(writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise DataError(
                f"population: a later chunk of the base has other column types than the "
                f"first ({table.schema.to_string(show_schema_metadata=False)}; the first "
                f"had {writer.schema.to_string(show_schema_metadata=False)}): {exc}."
            ) from None
    writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    return writer


def _refuse_repeats(ids: pa.Array, id_column: str, source: str) -> None:
    """Refuse sorted ids where one repeats."""
    if len(ids) < 2:
        return
    same = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    if pc.any(same).as_py():
        repeated = pc.unique(ids.slice(1).filter(same))
        raise DataError(
            f"{source}: id column {id_column!r} repeats {len(repeated)} ids (for example "
            f"{repeated[0].as_py()!r}); each customer must appear once."
        )


def _record(
    conn: Connection,
    spec: ExperimentSpec,
    ledger: Ledger,
    batch: _Batch,
    existing: pd.DataFrame,
    streamed: _Streamed,
    n_population: int | None,
    alongside: Callable[[LaunchResult], None] | None,
) -> LaunchResult:
    """Write the new customers to the ledger and publish their snapshot."""
    plan, definition, when = batch.plan, batch.definition, batch.when
    latest = plan.latest
    n_new = len(streamed.ids)
    if plan.create and n_new == 0:
        layer = plan.layer
        raise AssignmentError(
            f"population.eligible: none of the {streamed.n_eligible:,} eligible customers falls "
            f"in experiment {spec.name!r} (global holdout {plan.global_holdout:g}"
            + (f", layer range {layer[1]}-{layer[2] - 1}" if layer else "")
            + "); nothing was launched."
        )
    if not n_new:
        existing["arm"] = existing["arm"].astype("category")
        assert latest is not None
        result = LaunchResult(
            latest,
            definition,
            None,
            False,
            streamed.n_eligible,
            0,
            {},
            existing,
            plan.batches,
            None,
            ledger.display_url,
        )
        if alongside is not None:
            alongside(result)
        return result

    counts = np.bincount(np.asarray(streamed.arms.codes), minlength=len(streamed.arms.categories))
    new_counts = {
        str(arm): int(n) for arm, n in zip(streamed.arms.categories, counts, strict=True) if n
    }
    assert streamed.snapshot is not None
    snapshot_path = ledger.snapshots / batch.snapshot
    streamed.snapshot.replace(snapshot_path)
    try:
        if plan.fix_holdout:
            ledger.set_setting(conn, GLOBAL_HOLDOUT_KEY, plan.global_holdout, when, _who())
        if plan.create:
            layer = plan.layer
            experiment_id = ledger.add_experiment(
                conn,
                name=spec.name,
                version=plan.version,
                spec_digest=spec.digest(),
                salt=definition.salt,
                layer=definition.layer,
                layer_start=layer[1] if layer else None,
                layer_end=layer[2] if layer else None,
                global_holdout=plan.global_holdout,
                launched_at=when,
                counts=new_counts,
            )
        else:
            assert latest is not None
            experiment_id = latest.id
        record = ledger.latest(conn, spec.name)
        assert record is not None
        added = pd.DataFrame(
            {
                "customer_id": pd.Series(pd.arrays.ArrowStringArray(streamed.ids)),
                "arm": streamed.arms,
            }
        )
        new_batch = BatchRecord(
            experiment_id=experiment_id,
            batch=batch.number,
            created_at=as_utc(when),
            spec_digest=spec.digest(),
            definition=definition.to_json(),
            n_population=n_population,
            n_eligible=streamed.n_eligible,
            n_added=n_new,
            counts=new_counts,
            snapshot_path=batch.snapshot.as_posix(),
            snapshot_sha256="",
        )
        # the database writes the rows in a worker thread while this one checksums the
        # snapshot and runs `alongside`: SQLite, Arrow and numpy release the GIL for most
        # of their work. This thread touches the connection again only after the worker
        # is done; then the batch row, with the snapshot's checksum, joins the transaction.
        with ThreadPoolExecutor(max_workers=1) as pool:
            inserting = pool.submit(
                ledger.add_assignments, conn, experiment_id, batch.number, added
            )
            try:
                new_batch = replace(new_batch, snapshot_sha256=file_sha256(snapshot_path))
                result = LaunchResult(
                    record,
                    definition,
                    batch.number,
                    plan.create,
                    streamed.n_eligible,
                    n_new,
                    new_counts,
                    _every(existing, added, batch.number),
                    [*plan.batches, new_batch],
                    snapshot_path,
                    ledger.display_url,
                )
                if alongside is not None:
                    alongside(result)
            finally:
                # wait for the worker before the transaction ends either way
                wait([inserting])
            inserting.result()
        ledger.add_batch(conn, **{**asdict(new_batch), "created_at": when})
    except BaseException:
        # the transaction rolls back: no snapshot stays behind that no batch points at
        snapshot_path.unlink(missing_ok=True)
        raise
    return result


def _every(existing: pd.DataFrame, added: pd.DataFrame, batch: int) -> pd.DataFrame:
    """Every customer of the version: those recorded before, then this batch's."""
    if existing.empty:
        # int32: at 50,000,000 customers an int64 column of one value is 400 MB
        return added.assign(batch=np.full(len(added), batch, dtype=np.int32))
    return pd.DataFrame(
        {
            "customer_id": pd.concat(
                [existing["customer_id"], added["customer_id"]], ignore_index=True
            ),
            "arm": union_categoricals(
                [existing["arm"].astype("category"), added["arm"]], ignore_order=True
            ),
            "batch": np.concatenate([existing["batch"].to_numpy(), np.full(len(added), batch)]),
        }
    )


def _latest_versions(experiments: list[ExperimentRecord]) -> list[ExperimentRecord]:
    latest: dict[str, ExperimentRecord] = {}
    for record in experiments:
        if record.name not in latest or record.version > latest[record.name].version:
            latest[record.name] = record
    return list(latest.values())


def _check_agreement(
    ids: pd.Series, arms: pd.Series, position: np.ndarray, existing: pd.DataFrame, name: str
) -> None:
    """Refuse when a recorded customer's arm differs from the one the hash gives now.

    ``position`` is each customer's row in ``existing``.
    """
    if ids.empty:
        return
    hashed = pd.Categorical(arms)
    stored = pd.Categorical(existing["arm"])
    lookup = np.array([hashed.categories.get_indexer([c])[0] for c in stored.categories] + [-2])
    recorded = lookup[np.asarray(stored.codes)[position]]
    differ = recorded != np.asarray(hashed.codes)
    if differ.any():
        first = int(differ.argmax())
        raise AssignmentError(
            f"The ledger's arms for experiment {name!r} disagree with the hash for "
            f"{int(differ.sum())} customers (for example {ids.iloc[first]!r}: ledger "
            f"{stored[position[first]]!r}, hash {arms.iloc[first]!r}). The ledger is kept as "
            f"it is; this points at a changed hashing rule and must be investigated."
        )
