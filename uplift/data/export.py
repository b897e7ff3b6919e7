"""Writing the assignment export that the CRM tool reads."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from uplift.data.ids import id_order, ids_as_arrow
from uplift.data.memory import release_arrow_memory
from uplift.errors import DataError

__all__ = ["stage_assignments", "write_assignments", "write_table"]

# rows of the export written at a time
_SLICE = 1_000_000


def stage_assignments(
    assignments: pd.DataFrame, id_column: str, path: Path, *, leave_out: str | None = None
) -> Path:
    """Write the export beside ``path`` under a hidden name, to be renamed into place.

    Parameters
    ----------
    assignments : pd.DataFrame
        Holds ``customer_id`` and ``arm`` columns.
    id_column : str
        Header of the id column in the export (the population's id column).
    path : Path
        The export's final name; ends in ``.csv`` or ``.parquet``, which sets the format.
    leave_out : str, optional
        An arm whose customers are not exported (the global holdout).

    Returns
    -------
    Path
        The staged file. Renaming it to ``path`` publishes it whole; an earlier export
        stays intact until then.

    Notes
    -----
    Rows already sorted by id (as a launch gives them) are written a slice at a time,
    so the export holds one slice of the ids, not a second copy of all of them.
    """
    ids = ids_as_arrow(assignments["customer_id"])
    arms = pa.array(assignments["arm"], from_pandas=True)
    parquet = path.suffix.lower() == ".parquet"
    if not parquet or not pa.types.is_dictionary(arms.type):
        arms = arms.cast(pa.string())  # Parquet keeps a categorical's dictionary
    order = id_order(ids)
    if order is not None:
        ids, arms = ids.take(order), arms.take(order)
        del order
    schema = pa.schema([(id_column, ids.type), ("arm", arms.type)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer: pq.ParquetWriter | pa_csv.CSVWriter
    try:
        writer = pq.ParquetWriter(tmp, schema) if parquet else pa_csv.CSVWriter(tmp, schema)
        with writer:
            for start in range(0, max(len(ids), 1), _SLICE):
                table = pa.table(
                    [ids.slice(start, _SLICE), arms.slice(start, _SLICE)], schema=schema
                )
                if leave_out is not None:
                    table = table.filter(
                        pc.not_equal(table.column("arm").cast(pa.string()), leave_out)
                    )
                writer.write_table(table)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"--out: cannot write the assignment export {path}: {exc}.") from None
    finally:
        del ids, arms
        release_arrow_memory()
    return tmp


def write_assignments(assignments: pd.DataFrame, id_column: str, path: Path) -> None:
    """Write ``id_column, arm`` rows, sorted by id, to a CSV or Parquet file by its extension.

    :func:`stage_assignments` (same parameters), then the rename into place: a reader never
    sees half of the file, and an earlier export stays intact if writing fails.
    """
    staged = stage_assignments(assignments, id_column, path)
    try:
        staged.replace(path)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise DataError(f"--out: cannot write the assignment export {path}: {exc}.") from None


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write a small result table as CSV or as JSON records (by the extension), whole or not
    at all: it goes to a hidden file beside ``path`` first and is renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            tmp.write_text(
                table.to_json(orient="records", indent=1, double_precision=15), encoding="utf-8"
            )
        else:
            table.to_csv(tmp, index=False)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"--out: cannot write {path}: {exc}.") from None
