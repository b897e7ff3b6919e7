"""Writing the assignment export that the CRM tool reads."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from uplift.data.ids import id_order, ids_as_arrow
from uplift.data.memory import release_arrow_memory
from uplift.errors import DataError

__all__ = ["stage_assignments", "write_assignments"]


def stage_assignments(assignments: pd.DataFrame, id_column: str, path: Path) -> Path:
    """Write the export beside ``path`` under a hidden name, to be renamed into place.

    Parameters
    ----------
    assignments : pd.DataFrame
        Holds ``customer_id`` and ``arm`` columns.
    id_column : str
        Header of the id column in the export (the population's id column).
    path : Path
        The export's final name; ends in ``.csv`` or ``.parquet``, which sets the format.

    Returns
    -------
    Path
        The staged file. Renaming it to ``path`` publishes it whole; an earlier export
        stays intact until then.
    """
    ids = ids_as_arrow(assignments["customer_id"])
    arms = pa.array(assignments["arm"], from_pandas=True)
    if path.suffix.lower() != ".parquet" or not pa.types.is_dictionary(arms.type):
        arms = arms.cast(pa.string())  # Parquet keeps a categorical's dictionary
    table = pa.table({id_column: ids, "arm": arms})
    order = id_order(ids)
    if order is not None:
        table = table.take(order)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            pq.write_table(table, tmp)
        else:
            pa_csv.write_csv(table, tmp)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"--out: cannot write the assignment export {path}: {exc}.") from None
    finally:
        del table
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
