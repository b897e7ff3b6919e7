"""Fixtures the value tests share."""

from __future__ import annotations

import importlib.metadata

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """The purchases of CDNOW_sample.txt, which ships with lifetimes (a dev dependency)."""
    try:
        distribution = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the CDNOW sample ships with lifetimes: pip install 'lifetimes>=0.11'")
    path = next(f for f in distribution.files or [] if f.name == "CDNOW_sample.txt")
    frame = pd.read_csv(
        str(distribution.locate_file(path)),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "quantity", "amount"],
        dtype={"customer": str, "date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame
