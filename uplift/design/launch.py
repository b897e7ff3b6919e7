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

import getpass
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

from uplift.data.ids import ids_as_arrow, ids_as_text
from uplift.data.memory import release_arrow_memory
from uplift.design.hashing import arm_ranges, assign_arms
from uplift.design.ledger import (
    ARM_COLUMN,
    BatchRecord,
    ExperimentRecord,
    Ledger,
    as_utc,
    file_sha256,
    to_storage,
)
from uplift.errors import AssignmentError
from uplift.spec import BUCKETS, ExperimentSpec, HashAssignment

__all__ = ["Definition", "LaunchResult", "launch", "layer_range"]

GLOBAL_HOLDOUT_KEY = "global_holdout"


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


def launch(
    spec: ExperimentSpec,
    eligible: pd.DataFrame,
    ledger: Ledger,
    *,
    new_version: bool = False,
    now: datetime | None = None,
    n_population: int | None = None,
    alongside: Callable[[LaunchResult], None] | None = None,
) -> LaunchResult:
    """Assign the eligible customers, freeze their snapshot and record both in one transaction.

    Parameters
    ----------
    spec : ExperimentSpec
        A spec with hash assignment.
    eligible : pd.DataFrame
        The customers eligible now, with the id column and the columns to freeze
        (features and pre-period values as of launch).
    ledger : Ledger
        Where assignments are recorded.
    new_version : bool
        Launch a new version even though the spec moves customers of the launched one.
    now : datetime, optional
        The launch time (UTC now by default).
    n_population : int, optional
        Size of the whole base the eligible were drawn from, for the record.
    alongside : callable, optional
        Called with the result while the ledger still writes the new rows, before the
        transaction commits: work that needs the assignment and the snapshot files (an
        export, diagnostics) but not the database, which it must not use. If it raises,
        nothing is recorded.

    Returns
    -------
    LaunchResult

    Raises
    ------
    AssignmentError
        When the spec would move customers of the launched version (and no new version
        was asked for), the global holdout differs from the programme's, the layer is
        full, or no eligible customer falls in the experiment.
    """
    assignment = spec.assignment
    if not isinstance(assignment, HashAssignment):
        raise AssignmentError(
            "assignment: only experiments we assign (salt and arms) are launched; an observed "
            "assignment is read from the data."
        )
    if ARM_COLUMN in eligible.columns:
        raise AssignmentError(
            f"population: the column name {ARM_COLUMN!r} is reserved for the arm in the launch "
            f"snapshot; rename that column of the population."
        )
    when = to_storage(now or datetime.now(UTC), ledger.dialect)
    definition = Definition.from_spec(spec)
    id_column = spec.population.id
    with ledger.transaction(spec.name) as conn:
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

        text_ids = ids_as_text(eligible[id_column])
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the ids' order (the ledger's primary key order) is found beside the hashing:
            # Arrow's sort releases the GIL, so on two cores it costs no time
            sorting = pool.submit(lambda: np.asarray(pc.sort_indices(ids_as_arrow(text_ids))))
            every_arm = assign_arms(text_ids, definition.salt, definition.weights(), holdout, layer)
            id_order = sorting.result()
        inside = every_arm.notna().to_numpy()
        ids = text_ids[inside]
        arms = every_arm[inside]
        if latest is not None and not create:
            existing = ledger.assignments(conn, latest.id)
            # Arrow's hash join: pandas' isin on ten million Arrow strings took minutes
            known = pc.is_in(
                ids_as_arrow(ids), value_set=ids_as_arrow(existing["customer_id"])
            ).to_numpy(zero_copy_only=False)
        else:
            existing = pd.DataFrame({"customer_id": [], "arm": [], "batch": []})
            known = np.zeros(len(ids), dtype=bool)
        _check_agreement(ids[known], arms[known], existing, spec.name)
        fresh = inside.copy()
        fresh[inside] = ~known
        n_new = int(fresh.sum())
        new_arms = arms[~known]
        if create and n_new == 0:
            raise AssignmentError(
                f"population.eligible: none of the {len(eligible):,} eligible customers falls "
                f"in experiment {spec.name!r} (global holdout {holdout:g}"
                + (f", layer range {layer[1]}-{layer[2] - 1}" if layer else "")
                + "); nothing was launched."
            )
        new_counts = {str(k): int(v) for k, v in new_arms.value_counts().items() if v}
        if not n_new:
            existing["arm"] = existing["arm"].astype("category")
            assert latest is not None
            result = LaunchResult(
                latest,
                definition,
                None,
                False,
                len(eligible),
                0,
                {},
                existing,
                batches,
                None,
                ledger.display_url,
            )
            if alongside is not None:
                alongside(result)
            return result

        batch = 1 if create else len(batches) + 1
        relative = Path(spec.name) / f"v{version}" / f"batch-{batch:04d}.parquet"
        snapshot_path = ledger.snapshots / relative
        if fix_holdout:
            ledger.set_setting(conn, GLOBAL_HOLDOUT_KEY, holdout, when, _who())
        if create:
            experiment_id = ledger.add_experiment(
                conn,
                name=spec.name,
                version=version,
                spec_digest=spec.digest(),
                salt=definition.salt,
                layer=definition.layer,
                layer_start=layer[1] if layer else None,
                layer_end=layer[2] if layer else None,
                global_holdout=holdout,
                launched_at=when,
                counts=new_counts,
            )
        else:
            assert latest is not None
            experiment_id = latest.id
        record = ledger.latest(conn, spec.name)
        assert record is not None
        # the new customers in id order, the primary key's: the ledger then appends to its
        # index, and the export finds its rows already sorted
        in_order = id_order[fresh[id_order]]
        added = pd.DataFrame(
            {
                "customer_id": text_ids.iloc[in_order].reset_index(drop=True),
                "arm": every_arm.iloc[in_order].reset_index(drop=True),
            }
        )
        # the database writes the rows in a worker thread while this one writes the
        # snapshot and runs `alongside`: SQLite, Arrow and numpy release the GIL for most
        # of their work. This thread touches the connection again only after the worker
        # is done; then the batch row, with the snapshot's checksum, joins the transaction.
        with ThreadPoolExecutor(max_workers=1) as pool:
            inserting = pool.submit(ledger.add_assignments, conn, experiment_id, batch, added)
            try:
                _write_snapshot(eligible, fresh, new_arms, snapshot_path)
                new_batch = BatchRecord(
                    experiment_id=experiment_id,
                    batch=batch,
                    created_at=as_utc(when),
                    spec_digest=spec.digest(),
                    definition=definition.to_json(),
                    n_population=n_population,
                    n_eligible=len(eligible),
                    n_added=n_new,
                    counts=new_counts,
                    snapshot_path=relative.as_posix(),
                    snapshot_sha256=file_sha256(snapshot_path),
                )
                every = added.assign(batch=batch)
                if not existing.empty:
                    every = pd.DataFrame(
                        {
                            "customer_id": pd.concat(
                                [existing["customer_id"], added["customer_id"]],
                                ignore_index=True,
                            ),
                            "arm": union_categoricals(
                                [existing["arm"].astype("category"), added["arm"]],
                                ignore_order=True,
                            ),
                            "batch": np.concatenate(
                                [existing["batch"].to_numpy(), np.full(len(added), batch)]
                            ),
                        }
                    )
                result = LaunchResult(
                    record,
                    definition,
                    batch,
                    create,
                    len(eligible),
                    n_new,
                    new_counts,
                    every,
                    [*batches, new_batch],
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
    return result


def _write_snapshot(eligible: pd.DataFrame, fresh: np.ndarray, arms: pd.Series, path: Path) -> None:
    """Write the new customers' rows as they are now, with their arm, beside the ledger."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    table = pa.Table.from_pandas(eligible, preserve_index=False).filter(pa.array(fresh))
    # dictionary-encoded: read back as a categorical, a byte a customer instead of a string
    arm = pa.array(arms.reset_index(drop=True).cat.remove_unused_categories())
    pq.write_table(table.append_column(ARM_COLUMN, arm), tmp)
    del table, arm
    release_arrow_memory()
    tmp.replace(path)


def _latest_versions(experiments: list[ExperimentRecord]) -> list[ExperimentRecord]:
    latest: dict[str, ExperimentRecord] = {}
    for record in experiments:
        if record.name not in latest or record.version > latest[record.name].version:
            latest[record.name] = record
    return list(latest.values())


def _check_agreement(ids: pd.Series, arms: pd.Series, existing: pd.DataFrame, name: str) -> None:
    """Refuse when a recorded customer's arm differs from the one the hash gives now."""
    if ids.empty:
        return
    # by position in the ledger's ids and by arm code: no Python object a customer
    position = pc.index_in(
        ids_as_arrow(ids), value_set=ids_as_arrow(existing["customer_id"])
    ).to_numpy(zero_copy_only=False)
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
