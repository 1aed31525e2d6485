from __future__ import annotations

import ibis
import pandas as pd
import pytest

from aipm_nb import config
from aipm_nb.errors import (
    DataError,
    ParameterError,
    SchemaError,
    SourceError,
    SourceNotFoundError,
)
from aipm_nb.sources import check_columns, describe_source, open_source, redact, resolve_env

REQUIRED = {"user_id": "key", "event_time": "timestamp"}


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "user_id": [1, 2, 2],
            "event_time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09"]),
            "event_name": ["a", "b", "a"],
        }
    )


def _count(src):
    return int(src.table.count().execute())


def test_dataframe(frame):
    src = open_source(frame, required=REQUIRED, name="events")
    assert _count(src) == 3
    assert src.label == "events (pandas DataFrame)"


def test_ibis_table_passes_through(frame):
    t = ibis.memtable(frame)
    assert open_source(t).table is t


def test_csv_and_parquet_and_glob(tmp_path, frame):
    frame.to_csv(tmp_path / "e.csv", index=False)
    frame.iloc[:2].to_parquet(tmp_path / "part-1.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "part-2.parquet")
    assert _count(open_source(str(tmp_path / "e.csv"), required=REQUIRED)) == 3
    assert _count(open_source(tmp_path / "part-1.parquet", required=REQUIRED)) == 2
    assert _count(open_source(str(tmp_path / "part-*.parquet"), required=REQUIRED)) == 3
    # a folder of Parquet files is read as one table
    (tmp_path / "lake").mkdir()
    frame.to_parquet(tmp_path / "lake" / "x.parquet")
    assert _count(open_source(tmp_path / "lake", required=REQUIRED)) == 3


def test_duckdb_file_and_url(tmp_path, frame):
    path = tmp_path / "w.duckdb"
    con = ibis.duckdb.connect(str(path))
    con.create_table("events", frame)
    con.create_table("users", pd.DataFrame({"user_id": [1]}))
    con.disconnect()
    assert _count(open_source(str(path), table="events", required=REQUIRED)) == 3
    assert _count(open_source(f"duckdb://{path}?table=events", required=REQUIRED)) == 3
    with pytest.raises(ParameterError, match="holds 2 tables; name one with table=.*events"):
        open_source(str(path))
    with pytest.raises(SourceNotFoundError, match="no table 'nope'; tables present: events"):
        open_source(str(path), table="nope")


def test_duckdb_file_every_ibis_fetch_path(tmp_path, frame):
    """The ibis 12 paths that call the methods DuckDB 2.0 renamed (``fetch_arrow_table``:
    list_tables, raw SQL schemas; ``fetch_record_batch``: batches) work on the installed DuckDB
    (`aipm_nb.sources._duckdb2_shim`).
    """
    import duckdb

    path = tmp_path / "f.duckdb"
    raw = duckdb.connect(str(path))
    raw.execute("CREATE TABLE preds AS SELECT range AS id, range / 10.0 AS score FROM range(2500)")
    raw.close()
    src = open_source(str(path))  # one table: found through list_tables
    assert _count(src) == 2500
    con = src.table._find_backend()
    assert con.list_tables() == ["preds"]
    assert con.sql("SELECT max(score) AS m FROM preds").m.execute().iloc[0] == 249.9
    batches = list(src.table.to_pyarrow_batches(chunk_size=1000))
    assert sum(b.num_rows for b in batches) == 2500


def test_env_source(tmp_path, frame, monkeypatch):
    frame.to_parquet(tmp_path / "e.parquet")
    monkeypatch.setenv("AIPM_TEST_SRC", str(tmp_path / "e.parquet"))
    src = open_source("env:AIPM_TEST_SRC", name="events")
    assert _count(src) == 3
    assert str(tmp_path) not in src.label
    assert src.label == "events ($AIPM_TEST_SRC)"
    monkeypatch.delenv("AIPM_TEST_SRC")
    with pytest.raises(ParameterError, match="environment variable 'AIPM_TEST_SRC' is not set"):
        resolve_env("env:AIPM_TEST_SRC")


def test_sample_sources():
    for name in config.SAMPLE_FILES:
        assert _count(open_source(f"sample:{name}")) > 1000
    with pytest.raises(ParameterError, match="unknown sample 'nope'; expected one of"):
        open_source("sample:nope")


def test_csv_missing_user_id_names_column_and_file(tmp_path, frame):
    path = tmp_path / "events.csv"
    frame.drop(columns="user_id").to_csv(path, index=False)
    with pytest.raises(SchemaError, match=r"events \(.*events\.csv\) has no column 'user_id'") as e:
        open_source(str(path), required=REQUIRED, name="events")
    assert e.value.column == "user_id"
    assert "columns present: event_time, event_name" in str(e.value)


def test_wrong_type(frame):
    """Text in a timestamp column is parsed; text that is no timestamp is a DataError with the
    column, the count and an example; a column of the wrong kind is a SchemaError naming the
    parameter to set."""
    bad = frame.assign(event_time=["x", "y", "z"])
    with pytest.raises(DataError, match=r"'event_time' holds text that is not a timestamp in 3"):
        open_source(bad, required=REQUIRED, name="events")
    with pytest.raises(SchemaError, match=r"'user_id' has type string; expected numeric; set "
                       r"user_col= to a numeric column"):  # fmt: skip
        open_source(frame.assign(user_id=["a", "b", "c"]), required={"user_id": "numeric"},
                    name="events", parameters={"user_id": "user_col"})  # fmt: skip


def test_missing_file_and_glob(tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"file '.*nope\.parquet' does not exist"):
        open_source(str(tmp_path / "nope.parquet"))
    with pytest.raises(SourceNotFoundError, match="no file matches"):
        open_source(str(tmp_path / "*.parquet"))


def test_unreadable_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(SourceError, match=r"could not read events \(.*broken\.parquet\)"):
        open_source(str(path), name="events")


def test_unknown_file_type(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="unknown file type '.xlsx'"):
        open_source(str(path))


def test_empty_table(frame, tmp_path):
    with pytest.raises(DataError, match=r"events \(pandas DataFrame\) has no rows"):
        open_source(frame.iloc[:0], name="events")
    assert _count(open_source(frame.iloc[:0], allow_empty=True)) == 0
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="has no rows"):
        open_source(str(tmp_path / "empty.parquet"))


def test_bad_source_type():
    with pytest.raises(ParameterError, match="cannot read a source of type int"):
        open_source(42)
    # an object's many-line repr never becomes the label: its type names it
    with pytest.raises(ParameterError) as info:
        open_source(pd.Series([1, 2, 3]))
    assert str(info.value).startswith("table (Series): cannot read a source of type Series")
    assert "\n" not in str(info.value)


def test_unknown_kind(frame):
    with pytest.raises(ParameterError, match="unknown column kind 'date'"):
        check_columns(ibis.memtable(frame), {"event_time": "date"}, table="events")


def test_connection_error_is_redacted():
    url = "postgresql://ana:s3cret@127.0.0.1:1/db"
    with pytest.raises(SourceError) as e:
        open_source(url, table="events")
    assert "s3cret" not in str(e.value)
    assert "ana:***@127.0.0.1" in str(e.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:p@h/db", "postgres://u:***@h/db"),
        ("see postgresql://u:p%40ss@h:5/db and more", "see postgresql://u:***@h:5/db and more"),
        ("duckdb:///tmp/x.duckdb", "duckdb:///tmp/x.duckdb"),
        ("bigquery://proj?token=abc&x=1", "bigquery://proj?token=***&x=1"),
        ("plain text", "plain text"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_describe_source():
    assert (
        describe_source("postgres://u:p@h/db", "events") == "postgres://u:***@h/db table 'events'"
    )


def test_duckdb_memory_limit_from_environment(monkeypatch, tmp_path, frame):
    frame.to_parquet(tmp_path / "e.parquet")
    monkeypatch.setenv("AIPM_NB_DUCKDB_MEMORY_LIMIT", "1GB")
    t = open_source(str(tmp_path / "e.parquet")).table
    (limit,) = t._find_backend().raw_sql("SELECT current_setting('memory_limit')").fetchone()
    assert limit == "953.6 MiB"
