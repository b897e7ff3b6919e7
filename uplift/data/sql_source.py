"""Reading a population from a SQL database through SQLAlchemy, in chunks.

The rows of a table (or of a query) are fetched ``chunk_rows`` at a time with a
server-side cursor where the driver has one (PostgreSQL), so the database never sends
the whole result at once; the chunks are joined into one frame for the launch.
"""

from __future__ import annotations

import pandas as pd

from uplift.errors import DataError

__all__ = ["masked_url", "read_sql"]


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
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(statement)
            columns = list(result.keys())
            frames = [
                pd.DataFrame.from_records(rows, columns=columns)
                for rows in result.partitions(chunk_rows)
            ]
    except SQLAlchemyError as exc:
        raise DataError(f"{key}: cannot read {what} from {shown}: {_first(exc)}.") from None
    finally:
        engine.dispose()
    if not columns:
        raise DataError(f"{key}: {what} of {shown} returned no column.")
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)


def _first(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
