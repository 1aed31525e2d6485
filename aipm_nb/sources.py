"""Turn whatever the user has into an ibis table, and check its columns.

A *source* is one of:

* a pandas DataFrame (registered with the embedded DuckDB engine, not copied to a server);
* a path or glob to CSV / Parquet files (``data/events.parquet``, ``lake/events/*.parquet``);
* a DuckDB database file (``warehouse.duckdb``; name the table with ``table=``);
* a connection URL understood by ibis (``postgresql://user:pass@host/db``,
  ``duckdb:///path/file.duckdb``); the table comes from ``table=`` or a ``?table=`` query item;
* ``sample:NAME``: the bundled sample data (``events``, ``experiment``, ``predictions``);
* ``env:NAME``: any of the above, read from environment variable NAME at run time (keeps
  credentials out of notebooks and reports);
* ``spark:TABLE``: a table (or view) of the active PySpark session, created in local mode
  when there is none (``SPARK_MASTER`` picks another master);
* an ibis table (used as is) or a PySpark ``SparkSession`` (with ``table=``).

Only metadata and aggregates are read here; rows stay in the engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import glob as globmod
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from aipm_nb import resources
from aipm_nb.errors import (
    AipmNbError,
    DataError,
    EmptyTableError,
    ParameterError,
    SchemaError,
    SourceError,
    SourceNotFoundError,
)
from aipm_nb.reports.redaction import Scrubber, encode_password, redact

__all__ = [
    "Source",
    "schema_only",
    "check_columns",
    "describe_source",
    "is_infinite",
    "load_table",
    "open_source",
    "open_source_beside",
    "redact",
    "resolve_env",
]


def is_infinite(x: ir.NumericValue) -> ir.BooleanValue:
    """Whether ``x`` is inf or -inf, on every engine: ibis 12 compiles ``isinf()`` to ``FALSE``
    on Spark, so an infinite value would pass a check there unseen.
    """
    return x.cast("float64").abs() == float("inf")


_DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class Source(NamedTuple):
    """An opened source: the ibis table and a readable, redacted label for messages."""

    table: ir.Table
    label: str


def resolve_env(value: Any) -> Any:
    """Replace an ``env:NAME`` string by the value of environment variable NAME.

    Examples:
        >>> os.environ["AIPM_DOCTEST_URL"] = "data/events.parquet"
        >>> resolve_env("env:AIPM_DOCTEST_URL")
        'data/events.parquet'
        >>> resolve_env(3)
        3
    """
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if not name:
            raise ParameterError("'env:' must be followed by an environment variable name")
        if name not in os.environ:
            raise ParameterError(
                f"environment variable {name!r} is not set (the source was given as "
                f"'env:{name}'); export it before running the notebook or report"
            )
        return os.environ[name]
    return value


def describe_source(source: Any, table: str | None = None) -> str:
    """A short, redacted, human-readable name for a source (used in messages and reports)."""
    if isinstance(source, pd.DataFrame):
        return "pandas DataFrame"
    if isinstance(source, ir.Table):
        return f"ibis table {source.get_name()!r}" if _has_name(source) else "ibis table"
    if isinstance(source, str) and source.startswith("env:"):
        return f"${source[4:]}" + (f" table {table!r}" if table else "")
    # a session or an unexpected object is named by its type, not a many-line repr
    path_like = isinstance(source, str | os.PathLike)
    label = redact(str(source)) if path_like else type(source).__name__
    return f"{label} table {table!r}" if table else label


def _has_name(t: ir.Table) -> bool:
    try:
        t.get_name()
    except Exception:
        return False
    return True


def load_table(source: Any, **options: Any) -> ir.Table:
    """Open ``source`` as an ibis table; ``options`` as in `open_source`."""
    return open_source(source, **options).table


def open_source(
    source: Any,
    *,
    table: str | None = None,
    required: Mapping[str, str] | None = None,
    name: str = "table",
    allow_empty: bool = False,
    parameters: Mapping[str, str] | None = None,
) -> Source:
    """Open ``source`` as an ibis table and check it.

    Args:
        source: See the module docstring for what is accepted.
        table: Table name inside a database source (DuckDB file, URL, Spark session).
        required: Column name -> expected kind (``"any"``, ``"numeric"``, ``"integer"``,
            ``"string"``, ``"timestamp"``, ``"boolean"``), checked with `check_columns`.
        name: What the table is for (``"events"``, ``"experiment"``), used in messages.
        allow_empty: Whether a table with no rows is acceptable.
        parameters: Column name -> the parameter that names it (``"time_col"``), so that a
            message can say which parameter to set.

    Returns:
        The table and its label for messages.

    Raises:
        SourceNotFoundError: the file, glob, sample or table does not exist.
        SourceError: the source exists but cannot be opened or read.
        SchemaError: a required column is missing or has the wrong type.
        DataError: the table has no rows (unless ``allow_empty``).

    Examples:
        >>> src = open_source(pd.DataFrame({"user_id": [1, 2]}), required={"user_id": "any"})
        >>> src.table.count().execute()
        2
    """
    raw = source
    source = resolve_env(source)
    label = f"{name} ({describe_source(raw, table)})"
    t = _open(source, table, label)
    if required:
        check_columns(t, required, table=label, parameters=parameters)
        t = _parse_string_timestamps(t, required, label, parameters or {})
    if not allow_empty:
        try:
            n = int(t.count().execute())
        except Exception as exc:  # the engine only fails here for unreadable data
            raise SourceError(f"could not read {label}: {_first_line(exc)}") from exc
        if n == 0:
            raise EmptyTableError(f"{label} has no rows; expected at least one", table=label)
    if _SCHEMA_ONLY.get():
        t = t.limit(0)
    return Source(t, label)


_SCHEMA_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("schema_only", default=False)
#: The engine `open_source_beside` opens on: CSV/Parquet files are read through it when it is
#: DuckDB; the same URL or Spark session reuses it.
_READ_WITH: contextvars.ContextVar[Any] = contextvars.ContextVar("read_with", default=None)


def open_source_beside(other: ir.Table, source: Any, **kwargs: Any) -> Source:
    """`open_source`, on the engine of ``other`` so that the two tables can be joined there: a
    DataFrame, a CSV/Parquet file or sample (read through ``other``'s DuckDB connection), or a
    table of the same database. Anything else is a `ParameterError` saying where it must live.
    """
    backend = other._find_backend(use_default=True)
    token = _READ_WITH.set(backend)
    try:
        src = open_source(source, **kwargs)
    finally:
        _READ_WITH.reset(token)
    if isinstance(resolve_env(source), pd.DataFrame):
        return src
    mine = src.table._find_backend(use_default=True)
    if mine is not backend:
        raise ParameterError(
            f"{src.label} is on {mine.name} and the table it is joined with on {backend.name}; "
            "put both in the same database (or pass a DataFrame or a CSV/Parquet file when the "
            "other table is read with DuckDB)"
        )
    return src


@contextlib.contextmanager
def schema_only() -> Iterator[None]:
    """Within this block every source opens with its real columns, types and text-timestamp
    checks but no rows, so an analysis runs all its parameter and column checks and then stops
    at its first "has no rows" (`EmptyTableError`). ``aipm-nb validate`` runs the analyses so.
    """
    token = _SCHEMA_ONLY.set(True)
    try:
        yield
    finally:
        _SCHEMA_ONLY.reset(token)


def _engine_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps with nanoseconds, which Arrow refuses to narrow, floored to microseconds."""
    fix = {}
    for col in df.columns:
        dtype = df[col].dtype
        if not pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        unit = getattr(dtype, "unit", None) or np.datetime_data(dtype)[0]
        if unit == "ns":
            fix[col] = df[col].dt.floor("us").astype(str(dtype).replace("[ns", "[us"))
    return df.assign(**fix) if fix else df


def _parse_string_timestamps(
    t: ir.Table, required: Mapping[str, str], label: str, parameters: Mapping[str, str]
) -> ir.Table:
    """Timestamp columns stored as text (a DataFrame from a CSV export) parsed in the engine,
    as DuckDB does when it reads the CSV; text that is not a timestamp is a `DataError`.
    """
    cols = [c for c, kind in required.items() if kind == "timestamp" and t[c].type().is_string()]
    if not cols:
        return t
    parsed = {c: t[c].try_cast("timestamp") for c in cols}
    bad = {c: (t[c].notnull() & parsed[c].isnull()).sum() for c in cols}
    first = {f"{c}__ex": t[c].min(where=t[c].notnull() & parsed[c].isnull()) for c in cols}
    row = t.aggregate(**{f"{c}__bad": b for c, b in bad.items()}, **first).to_pandas().iloc[0]
    for c in cols:
        n_bad = int(row[f"{c}__bad"] or 0)
        if n_bad:
            where = f"; set {parameters[c]}= to a timestamp column" if c in parameters else ""
            raise DataError(
                f"{label} column {c!r} holds text that is not a timestamp in {n_bad:,} rows "
                f"(e.g. {row[f'{c}__ex']!r}); expected ISO timestamps such as "
                f"'2024-03-01 12:00:00'{where}",
                table=label,
                column=c,
                count=n_bad,
                examples=[row[f"{c}__ex"]],
            )
    return t.mutate(**parsed)


def _first_line(exc: BaseException) -> str:
    text = redact(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(source: Any, table: str | None, label: str) -> ir.Table:
    if isinstance(source, ir.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return ibis.memtable(_engine_frame(source))
    if hasattr(source, "sparkContext") and hasattr(source, "sql"):
        if not table:
            raise ParameterError(f"{label}: a Spark session needs table='name'")
        beside = _READ_WITH.get()
        if beside is not None and getattr(beside, "_session", None) is source:
            return beside.table(table)
        return ibis.pyspark.connect(source).table(table)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ParameterError(
            f"{label}: cannot read a source of type {type(source).__name__}; expected a "
            "DataFrame, a CSV/Parquet path or glob, a DuckDB file, a connection URL or an "
            "ibis table"
        )
    if source.startswith("sample:"):
        return _open_sample(source[7:], label)
    if source.startswith("spark:"):
        return _open_spark(source[6:] or table, label)
    if _URL_RE.match(source):
        return _open_url(source, table, label)
    return _open_path(source, table, label)


def _open_sample(sample: str, label: str) -> ir.Table:
    try:
        path = resources.sample_path(sample)
    except ParameterError as exc:
        raise ParameterError(f"{label}: {exc}") from None
    if not path.exists():
        raise SourceNotFoundError(
            f"{label}: sample data {path.name} is missing; run `make data` (or `aipm-nb data`)"
        )
    return _open_path(str(path), None, label)


def _open_spark(table: str | None, label: str) -> ir.Table:
    if not table:
        raise ParameterError(f"{label}: name the table, as in 'spark:events'")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SourceError(
            f"{label}: PySpark is not installed; pip install 'aipm-nb[spark]' (and Java 17+)"
        ) from None
    session = SparkSession.getActiveSession()
    if session is None:
        session = (
            SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[*]"))
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    return _pick_table(ibis.pyspark.connect(session), table, label)


def _duckdb2_shim() -> None:
    """Ibis 12 calls ``DuckDBPyConnection.fetch_arrow_table`` / ``fetch_record_batch``, which
    DuckDB 2.0 renamed ``to_arrow_table`` / ``to_arrow_reader``: restore the old names as
    aliases (only where they are missing), so that users get DuckDB 2's speed with ibis 12.
    `tests/test_sources.py` opens a DuckDB file's tables, which takes that path.
    """
    import duckdb

    cls: Any = duckdb.DuckDBPyConnection
    if not hasattr(cls, "fetch_arrow_table") and hasattr(cls, "to_arrow_table"):

        def fetch_arrow_table(self: Any, *args: Any, **kwargs: Any) -> Any:
            with warnings.catch_warnings():  # DuckDB's note that a DB-API result is copied
                warnings.simplefilter("ignore", UserWarning)
                return self.to_arrow_table(*args, **kwargs)

        cls.fetch_arrow_table = fetch_arrow_table
    if not hasattr(cls, "fetch_record_batch") and hasattr(cls, "to_arrow_reader"):

        def fetch_record_batch(self: Any, rows_per_batch: int = 1_000_000) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return self.to_arrow_reader(rows_per_batch)

        cls.fetch_record_batch = fetch_record_batch


_duckdb2_shim()


def _duckdb(path: str = ":memory:", **kwargs: Any) -> Any:
    """A DuckDB connection; ``AIPM_NB_DUCKDB_MEMORY_LIMIT`` (e.g. ``4GB``) caps its memory
    (DuckDB spills to disk beyond it; its own default is 80% of RAM).
    """
    limit = os.environ.get("AIPM_NB_DUCKDB_MEMORY_LIMIT")
    if limit:
        kwargs["memory_limit"] = limit
    return ibis.duckdb.connect(path, **kwargs)


def _open_path(path: str, table: str | None, label: str) -> ir.Table:
    is_glob = any(ch in path for ch in "*?[")
    if is_glob:
        if not globmod.glob(path, recursive=True):
            raise SourceNotFoundError(f"{label}: no file matches {path!r}")
    elif not Path(path).exists():
        raise SourceNotFoundError(f"{label}: file {path!r} does not exist")
    lower = path.lower()
    if Path(path).is_dir():
        path, lower = str(Path(path) / "**" / "*.parquet"), ".parquet"
        if not globmod.glob(path, recursive=True):
            raise SourceNotFoundError(f"{label}: folder has no .parquet files")
    try:
        if lower.endswith(_DUCKDB_SUFFIXES):
            con = _duckdb(path, read_only=True)
            return _pick_table(con, table, label)
        beside = _READ_WITH.get()
        con = beside if beside is not None and beside.name == "duckdb" else _duckdb()
        if lower.endswith((".parquet", ".pq", ".parquet.gz")) or lower.endswith("*"):
            return con.read_parquet(path)
        if lower.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            return con.read_csv(path)
    except AipmNbError:
        raise
    except Exception as exc:
        raise SourceError(f"could not read {label}: {_first_line(exc)}") from exc
    raise SourceError(
        f"{label}: unknown file type {Path(path).suffix!r}; expected .parquet, .csv or .duckdb"
    )


def _open_url(url: str, table: str | None, label: str) -> ir.Table:
    parts = urlsplit(encode_password(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = table or next((v for k, v in query if k == "table"), None)
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    clean = urlunsplit(parts._replace(query=rest))
    beside = _READ_WITH.get()
    if beside is not None and getattr(beside, "_aipm_url", None) == clean:
        return _pick_table(beside, table, label)
    try:
        con = ibis.connect(clean)
        con._aipm_url = clean  # lets `open_source_beside` reuse this connection
    except Exception as exc:
        raise SourceError(
            f"could not connect to {label}: {Scrubber([url]).text(_first_line(exc))}"
        ) from None
    return _pick_table(con, table, label)


def _pick_table(con: Any, table: str | None, label: str) -> ir.Table:
    names = list(con.list_tables())
    if table is None:
        if len(names) == 1:
            table = names[0]
        else:
            raise ParameterError(
                f"{label}: the database holds {len(names)} tables; name one with table=..."
                f" (tables: {', '.join(names[:20]) or 'none'})"
            )
    if table not in names:
        raise SourceNotFoundError(
            f"{label}: no table {table!r}; tables present: {', '.join(names[:20]) or 'none'}"
        )
    return con.table(table)


_KIND_CHECKS = {
    "any": lambda dt: True,
    "numeric": lambda dt: dt.is_numeric() or dt.is_boolean() or dt.is_null(),
    "integer": lambda dt: dt.is_integer(),
    "string": lambda dt: dt.is_string(),
    "timestamp": lambda dt: dt.is_timestamp() or dt.is_date() or dt.is_string(),
    "boolean": lambda dt: dt.is_boolean(),
    "key": lambda dt: dt.is_string() or dt.is_integer(),
}


def check_columns(
    t: ir.Table,
    required: Mapping[str, str],
    *,
    table: str,
    parameters: Mapping[str, str] | None = None,
) -> None:
    """Raise `SchemaError` unless ``t`` has every column of ``required`` with the right kind.

    Examples:
        >>> t = ibis.memtable({"user_id": [1], "variant": ["a"]})
        >>> check_columns(t, {"user_id": "key", "revenue": "numeric"}, table="experiment")
        Traceback (most recent call last):
        ...
        aipm_nb.errors.SchemaError: experiment has no column 'revenue' (expected numeric); ...
    """
    schema = t.schema()
    parameters = parameters or {}
    for col, kind in required.items():
        if kind not in _KIND_CHECKS:
            raise ParameterError(
                f"unknown column kind {kind!r}; expected one of {list(_KIND_CHECKS)}"
            )
        what = "" if kind == "any" else f" (expected {kind})"
        fix = f"; set {parameters[col]}=" if col in parameters else ""
        if col not in schema:
            present = ", ".join(schema.names[:30])
            raise SchemaError(
                f"{table} has no column {col!r}{what}{fix}"
                + (" to one of" if fix else "; columns present:")
                + f" {present}",
                table=table,
                column=col,
            )
        dtype = schema[col]
        if not _KIND_CHECKS[kind](dtype):
            raise SchemaError(
                f"{table} column {col!r} has type {dtype}; expected {kind}"
                + (f"{fix} to a {kind} column" if fix else ""),
                table=table,
                column=col,
            )
