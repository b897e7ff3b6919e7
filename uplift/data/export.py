"""Writing the assignment export that the CRM tool reads."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from uplift.errors import DataError

__all__ = ["write_assignments"]


def write_assignments(assignments: pd.DataFrame, id_column: str, path: Path) -> None:
    """Write ``id_column, arm`` rows to a CSV or Parquet file, by the path's extension.

    The file is written beside its final name and renamed into place, so a reader never
    sees half of it and an earlier export stays intact if writing fails.

    Parameters
    ----------
    assignments : pd.DataFrame
        Holds ``customer_id`` and ``arm`` columns.
    id_column : str
        Header of the id column in the export (the population's id column).
    path : Path
        Ends in ``.csv`` or ``.parquet``.
    """
    ordered = assignments.sort_values("customer_id", kind="stable")
    table = pa.table(
        {
            id_column: pa.array(ordered["customer_id"].astype(str).to_numpy(), pa.string()),
            "arm": pa.array(ordered["arm"].astype(str).to_numpy(), pa.string()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            pq.write_table(table, tmp)
        else:
            pa_csv.write_csv(table, tmp)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"--out: cannot write the assignment export {path}: {exc}.") from None
