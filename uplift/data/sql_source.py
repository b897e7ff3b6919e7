"""Reading a population from a SQL database through SQLAlchemy, in chunks.

The rows of a table (or of a query) are fetched ``chunk_rows`` at a time with a
server-side cursor where the driver has one (PostgreSQL), so the database never sends
the whole result at once: :func:`iter_sql` hands them on one by one (the launch streams
them), :func:`read_sql` joins them into one frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from uplift.errors import DataError

__all__ = ["iter_sql", "masked_url", "read_sql"]


def masked_url(url: str) -> str:
    """``url`` with any password shown as ``***`` (for messages and logs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an URL SQLAlchemy cannot parse>"


def read_sql(
    url: str,
    *,
    table: str | None = None,
    query: str | None = None,
    key: str = "population.source",
    chunk_rows: int = 200_000,
) -> pd.DataFrame:
    """Every row of ``table`` (``schema.table`` allowed), or of ``query``, as a frame.

    Parameters
    ----------
    url : str
        A SQLAlchemy database URL (``postgresql+psycopg://...``, ``sqlite:///...``).
    table, query : str
        Exactly one of them: a table name, or a ``SELECT`` statement.
    key : str
        The spec key that named the source, for messages.
    chunk_rows : int
        Rows fetched at a time.

    Raises
    ------
    DataError
        When the database cannot be reached, the table or query fails, or it returns no
        column; the message names ``key``, the URL (password masked) and the cause.
    """
    chunks = iter_sql(url, table=table, query=query, key=key, chunk_rows=chunk_rows)
    frames = list(chunks)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames[1:], ignore_index=True)


def iter_sql(
    url: str,
    *,
    table: str | None = None,
    query: str | None = None,
    key: str = "population.source",
    chunk_rows: int = 200_000,
) -> Iterator[pd.DataFrame]:
    """The rows of ``table`` or ``query`` as frames of at most ``chunk_rows`` rows.

    Same parameters and errors as :func:`read_sql`. The first frame holds no row and
    carries the columns (so an empty result still has them); the connection is opened
    before the first frame and closed when the frames run out or the generator is closed.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    if (table is None) == (query is None):
        raise ValueError("read_sql needs exactly one of table and query")
    what = f"table {table!r}" if table is not None else "the query"
    shown = masked_url(url)
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DataError(
            f"{key}.url: {shown} is not a database URL SQLAlchemy can open ({_first(exc)}); "
            f"expected for example postgresql+psycopg://user@host/db or sqlite:///file.db."
        ) from None
    if table is not None:
        schema, _, name = table.rpartition(".")
        statement: sa.Executable = sa.select(sa.text("*")).select_from(
            sa.table(name, schema=schema or None)
        )
    else:
        assert query is not None
        statement = sa.text(query)
    return _fetch(engine, statement, key, what, shown, chunk_rows, SQLAlchemyError)


def _fetch(
    engine: Any,
    statement: Any,
    key: str,
    what: str,
    shown: str,
    chunk_rows: int,
    errors: type[Exception],
) -> Iterator[pd.DataFrame]:
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(statement)
            columns = list(result.keys())
            if not columns:
                raise DataError(f"{key}: {what} of {shown} returned no column.")
            yield pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
            for rows in result.partitions(chunk_rows):
                yield pd.DataFrame.from_records(rows, columns=columns)
    except errors as exc:
        raise DataError(f"{key}: cannot read {what} from {shown}: {_first(exc)}.") from None
    finally:
        engine.dispose()


def _first(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
