"""A population read from a SQL table or query (``population.source: {kind: sql}``).

Checked on SQLite always, and on PostgreSQL when ``UPLIFT_TEST_POSTGRES_URL`` is set
(``.ci/run`` starts one): the rows come back as written, whatever the fetch size; errors
name the key, the URL with its password masked, and the cause; and ``uplift assign`` on
the same customers from a SQL table and from a Parquet file gives every customer the
same arm.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from cli_support import EXAMPLE, error_paragraph, uplift

from uplift.data.simulate import simulate
from uplift.data.sql_source import masked_url, read_sql
from uplift.errors import DataError


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    frame = simulate("trial_lessons", 3_000, 11, ["two_lessons", "four_lessons"]).population
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_end")], errors="ignore")


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'crm.db'}"]
    if os.environ.get("UPLIFT_TEST_POSTGRES_URL"):
        urls.append(os.environ["UPLIFT_TEST_POSTGRES_URL"])
    return urls


def test_a_table_and_a_query_come_back_as_written_whatever_the_fetch_size(
    base: pd.DataFrame, tmp_path: Path
) -> None:
    for url in _urls(tmp_path):
        engine = sa.create_engine(url)
        base.to_sql("crm_population", engine, index=False, if_exists="replace")
        engine.dispose()
        try:
            whole = read_sql(url, table="crm_population")
            pd.testing.assert_frame_equal(
                whole.sort_values("customer_id", ignore_index=True),
                base.sort_values("customer_id", ignore_index=True),
                check_dtype=False,
            )
            assert whole["tenure_days"].dtype.kind == "i"
            assert pd.api.types.is_string_dtype(whole["plan"])
            chunked = read_sql(url, table="crm_population", chunk_rows=7)
            pd.testing.assert_frame_equal(chunked, whole)
            picked = read_sql(
                url,
                query="SELECT customer_id, plan FROM crm_population WHERE applied_premium = 1",
            )
            assert list(picked.columns) == ["customer_id", "plan"]
            assert sorted(picked["customer_id"]) == sorted(
                base.loc[base["applied_premium"] == 1, "customer_id"]
            )
        finally:
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                connection.execute(sa.text("DROP TABLE crm_population"))
            engine.dispose()


def test_sql_errors_name_the_key_the_masked_url_and_the_cause(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(DataError, match=r"population.source: cannot read table 'nope' from "):
        read_sql(url, table="nope")
    with pytest.raises(DataError, match=r"population.source.url: .* is not a database URL"):
        read_sql("not a url", table="x")
    secret = "postgresql+psycopg://crm:s3cret@127.0.0.1:1/ledger"
    with pytest.raises(DataError) as caught:
        read_sql(secret, table="x")
    message = str(caught.value)
    assert "s3cret" not in message and "crm:***@127.0.0.1:1/ledger" in message
    assert masked_url(secret) == "postgresql+psycopg://crm:***@127.0.0.1:1/ledger"


def _spec(directory: Path, source: dict[str, Any]) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["population"]["source"] = source
    raw["outcomes"]["source"] = {"kind": "population"}
    raw["ledger"] = {"url": "sqlite:///ledger.db"}
    (directory / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_assign_gives_a_customer_the_same_arm_from_sql_and_from_parquet(
    base: pd.DataFrame, tmp_path: Path
) -> None:
    from_sql, from_file = tmp_path / "sql", tmp_path / "file"
    for folder in (from_sql, from_file):
        folder.mkdir()
    engine = sa.create_engine(f"sqlite:///{from_sql / 'crm.db'}")
    base.to_sql("applicants", engine, index=False)
    engine.dispose()
    base.to_parquet(from_file / "base.parquet", index=False)
    _spec(from_sql, {"kind": "sql", "url": "sqlite:///crm.db", "table": "applicants"})
    _spec(from_file, {"kind": "parquet", "path": "base.parquet"})
    for folder in (from_sql, from_file):
        result = uplift("assign", "spec.yaml", "--out", "arms.csv", cwd=folder)
        assert result.returncode == 0, result.stderr
    arms_sql = pd.read_csv(from_sql / "arms.csv", dtype=str)
    arms_file = pd.read_csv(from_file / "arms.csv", dtype=str)
    assert len(arms_sql) > 1_000
    pd.testing.assert_frame_equal(arms_sql, arms_file)

    _spec(from_sql, {"kind": "sql", "url": "sqlite:///crm.db", "table": "missing"})
    message = error_paragraph(uplift("assign", "spec.yaml", "--out", "x.csv", cwd=from_sql))
    assert message.startswith("population.source: cannot read table 'missing' from sqlite:///")
    assert not (from_sql / "x.csv").exists()
