"""Partitioned Parquet datasets: a folder of Parquet files read as one table.

A population or a base to score may be a folder instead of a file: every ``*.parquet``
file below it, in path order, with Hive-style partition folders (``region=north/``)
read back as columns. This is how Spark, Hive and ``pyarrow.dataset.write_dataset``
write a large table.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads

from uplift.errors import DataError

__all__ = ["open_dataset"]


def open_dataset(path: Path, key: str) -> pads.Dataset:
    """The Parquet dataset in the folder ``path``, named by the spec key or argument ``key``.

    Raises
    ------
    DataError
        When the folder holds no Parquet file, or its files cannot be read together
        (unreadable, or with schemas that do not merge).
    """
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise DataError(
            f"{key}: the folder {path} holds no .parquet file; expected a Parquet dataset "
            f"(files *.parquet, optionally in partition folders such as region=north/)."
        )
    try:
        return pads.dataset(
            [str(f) for f in files],
            format="parquet",
            partitioning=pads.partitioning(flavor="hive"),
            partition_base_dir=str(path),
        )
    except (OSError, pa.ArrowException) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{key}: the Parquet dataset {path} ({len(files)} files) cannot be read: "
            f"{detail.rstrip('.')}."
        ) from None
