"""The assignment ledger: who was put in which arm of which experiment, and when.

The ledger is four tables reached through SQLAlchemy, so it lives in SQLite under
``experiments/`` by default and in any database SQLAlchemy speaks to (PostgreSQL for
teams):

``uplift_settings``
    Programme-wide settings fixed once, such as the global holdout share.
``uplift_experiments``
    One row per experiment version: the spec digest, salt, layer range, launch time and
    the counts at launch.
``uplift_batches``
    One row per ``uplift assign`` that added customers (the launch is batch 1): when, the
    assignment definition it used, its counts, and its frozen snapshot with its SHA-256.
``uplift_assignments``
    One row per (experiment, customer): the arm and the batch that added it. Its
    ``experiment_id`` is not declared a foreign key: SQLite's per-row check of it took
    about a quarter of the insert time, and it can never fail, since rows are
    written only in the transaction that holds their experiment's row, which nothing may
    delete.

Every write of a launch or of an appended batch is one transaction, so a crash leaves
all of it or none of it. Nothing is ever updated or deleted: the tables refuse it with
triggers, in SQLite and in PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uplift.data.ids import id_order, ids_as_arrow
from uplift.errors import AssignmentError

__all__ = [
    "ARM_COLUMN",
    "BatchRecord",
    "ExperimentRecord",
    "Ledger",
    "as_utc",
    "file_sha256",
    "to_storage",
]

#: Column of the launch snapshot that holds each customer's arm, as recorded in the ledger.
ARM_COLUMN = "uplift_arm"

_metadata = sa.MetaData()

settings_table = sa.Table(
    "uplift_settings",
    _metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
)

experiments_table = sa.Table(
    "uplift_experiments",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("spec_digest", sa.String(64), nullable=False),
    sa.Column("salt", sa.Text, nullable=False),
    sa.Column("layer", sa.Text, nullable=True),
    sa.Column("layer_start", sa.Integer, nullable=True),
    sa.Column("layer_end", sa.Integer, nullable=True),
    sa.Column("global_holdout", sa.Float, nullable=False),
    sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.UniqueConstraint("name", "version"),
)

batches_table = sa.Table(
    "uplift_batches",
    _metadata,
    sa.Column("experiment_id", sa.ForeignKey("uplift_experiments.id"), primary_key=True),
    sa.Column("batch", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("spec_digest", sa.String(64), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("n_population", sa.Integer, nullable=True),
    sa.Column("n_eligible", sa.Integer, nullable=False),
    sa.Column("n_added", sa.Integer, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("snapshot_path", sa.Text, nullable=False),
    sa.Column("snapshot_sha256", sa.String(64), nullable=False),
)

assignments_table = sa.Table(
    "uplift_assignments",
    _metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("arm", sa.Text, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

_TABLES = [settings_table, experiments_table, batches_table, assignments_table]
_APPEND_ONLY = "the uplift ledger is append-only: rows are never updated or deleted"
_CHUNK = 200_000
#: Rows a page when SQLite hands assignments back.
_READ_PAGE = 500_000
#: Characters an id may not hold to travel inside a JSON string or a COPY text field as is.
_JSON_ESCAPED = r'[\x00-\x1f"\\]'
_COPY_ESCAPED = r"[\x00\t\n\r\\]"
_EMPTY = pa.scalar("", pa.large_string())


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def as_utc(moment: datetime) -> datetime:
    """A timestamp read from the ledger as an aware UTC datetime.

    The ledger writes UTC; SQLite hands it back without a zone, PostgreSQL in the
    session's time zone.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_storage(moment: datetime, dialect: str) -> datetime:
    """A timestamp as the ledger stores it: UTC, and without a zone for SQLite."""
    utc = as_utc(moment) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None) if dialect == "sqlite" else utc


@dataclass(frozen=True)
class ExperimentRecord:
    """One launched experiment version, as the ledger holds it."""

    id: int
    name: str
    version: int
    spec_digest: str
    salt: str
    layer: str | None
    layer_start: int | None
    layer_end: int | None
    global_holdout: float
    launched_at: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class BatchRecord:
    """One ``uplift assign`` that added customers to an experiment version."""

    experiment_id: int
    batch: int
    created_at: datetime
    spec_digest: str
    definition: dict[str, Any]
    n_population: int | None
    n_eligible: int
    n_added: int
    counts: dict[str, int]
    snapshot_path: str
    snapshot_sha256: str


#: Seconds a SQLite launch waits for another launch's lock before it gives up.
_SQLITE_BUSY_SECONDS = 120


class Ledger:
    """The assignment ledger behind a SQLAlchemy URL.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, for example ``sqlite:///experiments/ledger.db`` or
        ``postgresql+psycopg://user:password@host/db``. SQLite folders are created.
    snapshots : Path, optional
        Folder of the launch snapshots. By default ``snapshots/`` beside a SQLite file,
        else ``experiments/snapshots``.
    """

    def __init__(self, url: str, snapshots: Path | None = None) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise AssignmentError(f"ledger.url: {url!r} is not a SQLAlchemy URL ({exc}).") from None
        self.display_url = parsed.render_as_string(hide_password=True)
        """The URL with its password masked, for messages."""
        self.dialect = parsed.get_backend_name()
        database = parsed.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            db_path = Path(database)
            db_path.parent.mkdir(parents=True, exist_ok=True)
            default_snapshots = db_path.parent / "snapshots"
        else:
            # one folder per database, so two ledgers never share snapshot files
            server = f"{parsed.host or 'local'}-{parsed.port or ''}-{database or ''}"
            default_snapshots = Path("experiments") / "snapshots" / server
        self.snapshots = Path(snapshots) if snapshots is not None else default_snapshots
        try:
            self.engine = self._engine(url)
            self._create_schema()
        except sa.exc.SQLAlchemyError as exc:
            if self._busy(exc):
                raise self._busy_error("opening it") from None
            raise AssignmentError(
                f"ledger.url: cannot open the assignment ledger at {self.display_url}: "
                f"{str(exc.orig if hasattr(exc, 'orig') else exc).strip().splitlines()[0]}."
            ) from None

    def _engine(self, url: str) -> Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(url)
        # a launch writes the rows from a worker thread of the one process (see
        # uplift.design.launch), never two threads at once
        engine = sa.create_engine(
            url, connect_args={"timeout": _SQLITE_BUSY_SECONDS, "check_same_thread": False}
        )

        # pysqlite starts transactions lazily, after the first read; take the write lock
        # at BEGIN instead, so that what a launch reads is still true when it commits
        @sa.event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None
            # takes effect when the file is created; a bare executemany of 2,000,000 rows took
            # 6.8 s on 64 KiB pages against 8.5 s on the default 4 KiB (2-core machine)
            dbapi_connection.execute("PRAGMA page_size = 65536")
            dbapi_connection.execute("PRAGMA foreign_keys = ON")
            # INSERT OR REPLACE deletes the old row; only with recursive triggers on does that
            # deletion meet the append-only DELETE trigger
            dbapi_connection.execute("PRAGMA recursive_triggers = ON")

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _create_schema(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # two processes opening a fresh ledger at once would both find no table
                _lock(conn, "schema")
            _metadata.create_all(conn, checkfirst=True)
            names = [t.name for t in _TABLES]
            if self.dialect == "sqlite":
                for name in names:
                    for event in ("UPDATE", "DELETE"):
                        conn.exec_driver_sql(
                            f"CREATE TRIGGER IF NOT EXISTS {name}_no_{event.lower()} "
                            f"BEFORE {event} ON {name} "
                            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
                        )
            elif self.dialect == "postgresql":
                conn.exec_driver_sql(
                    "CREATE OR REPLACE FUNCTION uplift_append_only() RETURNS trigger "
                    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
                )
                for name in names:
                    conn.exec_driver_sql(
                        f"CREATE OR REPLACE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE "
                        f"ON {name} FOR EACH ROW EXECUTE FUNCTION uplift_append_only()"
                    )
                    conn.exec_driver_sql(
                        f"CREATE OR REPLACE TRIGGER {name}_no_truncate BEFORE TRUNCATE "
                        f"ON {name} FOR EACH STATEMENT EXECUTE FUNCTION uplift_append_only()"
                    )

    def __repr__(self) -> str:
        return f"Ledger({self.display_url!r})"

    # --- one transaction ------------------------------------------------------------------

    @contextmanager
    def transaction(self, experiment: str) -> Iterator[Connection]:
        """A write transaction that holds the whole ledger's lock, for a launch of ``experiment``.

        One launch at a time in a ledger, whatever the experiment: launches of different
        experiments share the programme's global holdout and the layers' ranges, which
        each reads and then fixes. SQLite locks the whole file from ``BEGIN IMMEDIATE``
        (and a launch waits for it up to the busy timeout); PostgreSQL takes a
        transaction-level advisory lock on the ledger's schema.

        Raises
        ------
        AssignmentError
            When SQLite's lock is still held by another launch after the busy timeout.
        """
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    _lock(conn, "ledger")
                yield conn
        except sa.exc.OperationalError as exc:
            if self._busy(exc):
                raise self._busy_error(f"the launch of {experiment!r}") from None
            raise

    def _busy(self, exc: sa.exc.SQLAlchemyError) -> bool:
        return self.dialect == "sqlite" and "database is locked" in str(getattr(exc, "orig", exc))

    def _busy_error(self, what: str) -> AssignmentError:
        return AssignmentError(
            f"The ledger {self.display_url} stayed locked by another launch for "
            f"{_SQLITE_BUSY_SECONDS} s, so {what} did not start; nothing was recorded. Run "
            f"it again once the other launch has finished."
        )

    # --- reading --------------------------------------------------------------------------

    def setting(self, conn: Connection, key: str) -> Any:
        """A programme setting, or ``None`` when it was never set."""
        row = conn.execute(
            sa.select(settings_table.c.value).where(settings_table.c.key == key)
        ).first()
        return None if row is None else row[0]

    def experiments(self, conn: Connection, name: str | None = None) -> list[ExperimentRecord]:
        """Launched experiment versions (of one name, when given), oldest first."""
        query = sa.select(experiments_table).order_by(experiments_table.c.id)
        if name is not None:
            query = query.where(experiments_table.c.name == name)
        return [
            ExperimentRecord(**{**row._mapping, "launched_at": as_utc(row.launched_at)})
            for row in conn.execute(query)
        ]

    def latest(self, conn: Connection, name: str) -> ExperimentRecord | None:
        """The newest version of an experiment, or ``None`` before its launch."""
        versions = self.experiments(conn, name)
        return versions[-1] if versions else None

    def batches(self, conn: Connection, experiment_id: int) -> list[BatchRecord]:
        """An experiment version's batches, in order."""
        query = (
            sa.select(batches_table)
            .where(batches_table.c.experiment_id == experiment_id)
            .order_by(batches_table.c.batch)
        )
        return [
            BatchRecord(**{**row._mapping, "created_at": as_utc(row.created_at)})
            for row in conn.execute(query)
        ]

    def assignments(self, conn: Connection, experiment_id: int) -> pd.DataFrame:
        """``customer_id, arm, batch`` of every customer of an experiment version, by id.

        The ids and arms come back as (Arrow-backed) text. SQLite hands
        them over as JSON arrays of 500,000 rows, PostgreSQL as one ``COPY`` in CSV:
        ten million rows as Python tuples took minutes and gigabytes.
        """
        eid = int(experiment_id)
        if self.dialect == "sqlite":
            ids, arms, batches = self._read_sqlite(conn, eid)
        elif self.dialect == "postgresql" and self.engine.driver == "psycopg":
            ids, arms, batches = self._read_postgresql(conn, eid)
        else:
            query = sa.select(
                assignments_table.c.customer_id,
                assignments_table.c.arm,
                assignments_table.c.batch,
            ).where(assignments_table.c.experiment_id == eid)
            rows = conn.execute(query).all()
            ids = pa.array([r[0] for r in rows], pa.large_string())
            arms = pa.array([r[1] for r in rows], pa.large_string())
            batches = pa.array([r[2] for r in rows], pa.int64())
        order = id_order(ids)  # SQLite's pages are in byte order already; a server's
        if order is not None:  # collation may not be
            ids, arms, batches = ids.take(order), arms.take(order), batches.take(order)
        return pd.DataFrame(
            {
                "customer_id": pd.Series(ids.to_pandas(), dtype="str"),
                "arm": pd.Series(arms.to_pandas(), dtype="str"),
                "batch": np.asarray(batches.to_numpy(zero_copy_only=False), dtype=np.int64),
            }
        )

    @staticmethod
    def _read_sqlite(conn: Connection, experiment_id: int) -> tuple[pa.Array, ...]:
        # pages by primary key: each is one row of three JSON arrays built inside SQLite
        select = (
            "SELECT json_group_array(customer_id), json_group_array(arm), "
            "json_group_array(batch), max(customer_id), count(*) FROM ("
            "SELECT customer_id, arm, batch FROM uplift_assignments WHERE experiment_id = ? "
            "{after} ORDER BY customer_id LIMIT ?)"
        )
        first, rest = select.format(after=""), select.format(after="AND customer_id > ?")
        parts: list[list[pa.Array]] = [[], [], []]
        kinds = (pa.large_string(), pa.large_string(), pa.int64())
        row = conn.exec_driver_sql(first, (experiment_id, _READ_PAGE)).one()
        while row[4]:
            for k in range(3):
                parts[k].append(pa.array(json.loads(row[k]), kinds[k]))
            if row[4] < _READ_PAGE:
                break
            row = conn.exec_driver_sql(rest, (experiment_id, row[3], _READ_PAGE)).one()
        return tuple(
            pa.concat_arrays(chunks) if chunks else pa.array([], kind)
            for chunks, kind in zip(parts, kinds, strict=True)
        )

    @staticmethod
    def _read_postgresql(conn: Connection, experiment_id: int) -> tuple[pa.Array, ...]:
        raw = conn.connection.driver_connection
        assert raw is not None
        buffer = io.BytesIO()
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY (SELECT customer_id, arm, batch FROM uplift_assignments "
                f"WHERE experiment_id = {experiment_id}) "
                "TO STDOUT WITH (FORMAT csv)"
            ) as copy,
        ):
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        table = pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=["customer_id", "arm", "batch"]),
            convert_options=pa_csv.ConvertOptions(
                column_types={
                    "customer_id": pa.large_string(),
                    "arm": pa.large_string(),
                    "batch": pa.int64(),
                },
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        )
        return tuple(table.column(i).combine_chunks() for i in range(3))

    def snapshot(
        self, conn: Connection, experiment: ExperimentRecord, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """The frozen launch snapshot of an experiment version, every batch, checksums checked.

        Each row is a customer as they were when their batch was launched, with their arm
        in :data:`ARM_COLUMN`.

        Raises
        ------
        AssignmentError
            When a snapshot file is missing or its bytes changed since it was recorded.
        """
        return self.read_snapshot(experiment, self.batches(conn, experiment.id), columns)

    def read_snapshot(
        self,
        experiment: ExperimentRecord,
        batches: list[BatchRecord],
        columns: list[str] | None = None,
        *,
        sample_rows: int | None = None,
    ) -> pd.DataFrame:
        """The snapshot files of the given batches, checksums checked (see :meth:`snapshot`).

        Reads only the files, never the database, so it may run while a launch still holds
        the ledger's write lock. With ``sample_rows``, a base of more rows comes back as a
        uniform random sample of about that many (each row kept with the same probability,
        seeded, row group by row group, so memory follows the sample).
        """
        total = sum(b.n_added for b in batches)
        keep = None if sample_rows is None or total <= sample_rows else sample_rows / total
        rng = np.random.default_rng(0)
        frames = []
        for batch in batches:
            path = self.snapshots / batch.snapshot_path
            if not path.is_file():
                raise AssignmentError(
                    f"The launch snapshot of experiment {experiment.name!r} version "
                    f"{experiment.version}, batch {batch.batch}, is missing: expected {path} "
                    f"(ledger {self.display_url}). Restore it from backup; the analysis will not "
                    f"re-read eligibility from post-launch data."
                )
            found = file_sha256(path)
            if found != batch.snapshot_sha256:
                raise AssignmentError(
                    f"The launch snapshot {path} of experiment {experiment.name!r} changed "
                    f"after launch: the ledger recorded SHA-256 {batch.snapshot_sha256[:16]}..., "
                    f"the file now has {found[:16]}.... Restore the original file."
                )
            if keep is not None:
                with pq.ParquetFile(path) as file:
                    parts = [
                        batch.filter(pa.array(rng.random(batch.num_rows) < keep))
                        for batch in file.iter_batches(columns=columns)
                    ]
                if parts:
                    table = pa.Table.from_batches(parts)
                else:
                    table = pq.read_table(path, columns=columns)
            else:
                # pyarrow's own conversion, freeing each column as it goes: half the time
                # of pandas.read_parquet on ten million rows, and a lower peak
                table = pq.read_table(path, columns=columns)
            frames.append(table.to_pandas(split_blocks=True, self_destruct=True))
            del table
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def snapshot_metadata(self, batch: BatchRecord, key: bytes) -> bytes | None:
        """What the batch's snapshot file records under ``key`` in its Parquet metadata
        (``None`` when nothing); the file's checksum is not checked here."""
        metadata = pq.read_schema(self.snapshots / batch.snapshot_path).metadata or {}
        return metadata.get(key)

    # --- writing (inside a transaction) ---------------------------------------------------

    def set_setting(self, conn: Connection, key: str, value: Any, when: datetime, by: str) -> None:
        """Fix a programme setting (refused by the primary key if it was already set)."""
        conn.execute(settings_table.insert().values(key=key, value=value, set_at=when, set_by=by))

    def add_experiment(self, conn: Connection, **values: Any) -> int:
        """Insert an experiment version row; returns its id."""
        result = conn.execute(experiments_table.insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def add_batch(self, conn: Connection, **values: Any) -> None:
        """Insert a batch row."""
        conn.execute(batches_table.insert().values(**values))

    def add_assignments(
        self, conn: Connection, experiment_id: int, batch: int, rows: pd.DataFrame
    ) -> None:
        """Insert a batch's customers (``customer_id`` and ``arm`` columns) in bulk, by id.

        The rows go in sorted by id, which is the primary key's order, so the database
        appends to its index instead of splitting pages all over it. SQLite receives a
        chunk as one JSON array that ``json_each`` unpacks inside the database, and
        PostgreSQL as ``COPY`` text; a chunk holding an id that would need escaping goes
        row by row instead.
        """
        ids = ids_as_arrow(rows["customer_id"])
        arms = pd.Categorical(rows["arm"])
        if (arms.codes < 0).any():
            raise ValueError("every assigned customer needs an arm")
        names = [str(name) for name in arms.categories]
        codes = np.asarray(arms.codes)
        order = id_order(ids)
        if order is not None:
            ids, codes = ids.take(order), codes[order]
        eid, number = int(experiment_id), int(batch)
        if self.dialect == "postgresql" and self.engine.driver == "psycopg":
            self._copy_postgresql(conn, eid, number, ids, codes, names)
            return
        for start in range(0, len(ids), _CHUNK):
            chunk, chunk_codes = ids.slice(start, _CHUNK), codes[start : start + _CHUNK]
            if self.dialect == "sqlite":
                self._insert_sqlite(conn, eid, number, chunk, chunk_codes, names)
            else:
                labels = np.asarray(names, dtype=object)[chunk_codes]
                conn.execute(
                    assignments_table.insert(),
                    [
                        {"experiment_id": eid, "customer_id": c, "arm": a, "batch": number}
                        for c, a in zip(chunk.to_pylist(), labels, strict=True)
                    ],
                )

    @staticmethod
    def _insert_sqlite(
        conn: Connection,
        experiment_id: int,
        batch: int,
        ids: pa.Array,
        codes: np.ndarray,
        names: list[str],
    ) -> None:
        # the two integers are the same for every row and of our own making: written
        # into the statement, they are not bound once a row
        columns = "INSERT INTO uplift_assignments (experiment_id, customer_id, arm, batch)"
        if len(names) > 256 or pc.any(pc.match_substring_regex(ids, _JSON_ESCAPED)).as_py():
            labels = np.asarray(names, dtype=object)[codes].tolist()
            conn.exec_driver_sql(
                f"{columns} VALUES ({experiment_id}, ?, ?, {batch})",
                list(zip(ids.to_pylist(), labels, strict=True)),
            )
            return
        # the ids travel as one JSON array, the arms as one byte a row: json_each's `key`
        # (the element's index) finds a row's byte, which a CASE turns into the arm's name
        payload = '["' + _joined(ids, '","') + '"]'
        case = " ".join(f"WHEN x'{k:02x}' THEN ?" for k in range(len(names)))
        conn.exec_driver_sql(
            f"{columns} SELECT {experiment_id}, value, CASE substr(?, key + 1, 1) {case} END, "
            f"{batch} FROM json_each(?)",
            (codes.astype(np.uint8).tobytes(), *names, payload),
        )

    def _copy_postgresql(
        self,
        conn: Connection,
        experiment_id: int,
        batch: int,
        ids: pa.Array,
        codes: np.ndarray,
        names: list[str],
    ) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        # COPY's text format: tab-separated, backslash escapes; the arm names are ours
        # to escape, the ids are sent row by row in a chunk where one needs it
        tails = pa.array([f"\t{_copy_escape(name)}\t{batch}" for name in names], pa.large_string())
        head = pa.scalar(f"{experiment_id}\t", pa.large_string())
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY uplift_assignments (experiment_id, customer_id, arm, batch) FROM STDIN"
            ) as copy,
        ):
            for start in range(0, len(ids), _CHUNK):
                chunk, chunk_codes = ids.slice(start, _CHUNK), codes[start : start + _CHUNK]
                if pc.any(pc.match_substring_regex(chunk, _COPY_ESCAPED)).as_py():
                    for customer, code in zip(chunk.to_pylist(), chunk_codes, strict=True):
                        copy.write_row((experiment_id, customer, names[code], batch))
                    continue
                lines = pc.binary_join_element_wise(head, chunk, tails.take(chunk_codes), _EMPTY)
                copy.write(_joined(lines, "\n") + "\n")


def _lock(conn: Connection, what: str) -> None:
    """Take PostgreSQL's transaction-level advisory lock on ``what`` of this ledger's schema."""
    conn.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(hashtext('uplift:' || :what || ':' || current_schema()))"
        ),
        {"what": what},
    )


def _joined(strings: pa.Array, separator: str) -> str:
    """The strings of an Arrow array joined by ``separator``, built by Arrow in one pass."""
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(strings)], pa.int64()), strings)
    return str(pc.binary_join(whole, pa.scalar(separator, pa.large_string()))[0].as_py())


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
