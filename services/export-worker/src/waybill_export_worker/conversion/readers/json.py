"""JSON inputs: JSON Lines, and a JSON array of records, typed alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError

HEAD_BYTES = 1024 * 1024  # the head whose line length estimates progress


def first_json_char(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    return head[:1].decode("ascii", "replace")


def json_lines_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """JSON Lines, typed from the whole file by polars before it streams (one extra
    pass, ~1 s per 200 MB here): ints and floats meet as floats, anything and text as
    text, a field first seen late is a column, integers past int64 keep their exact
    text. pyarrow's streaming reader, 20-30% faster, types from its first block: it
    failed on a later record that did not fit and read 2**70 as a float."""
    return _typed_json_lines(path, on_read, "JSON Lines")


def _typed_json_lines(
    path: Path, on_read: Callable[[int], None] | None, kind: str
) -> Iterator[pa.RecordBatch]:
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    bytes_per_row = len(head) / max(head.count(b"\n"), 1)  # for progress
    size = path.stat().st_size
    try:
        lazy = pl.scan_ndjson(path, infer_schema_length=None)
        past_int64 = [
            pl.col(n).cast(pl.String)
            for n, t in lazy.collect_schema().items()
            if t.is_integer() and t != pl.Int64
        ]
        rows = 0
        for frame in lazy.with_columns(past_int64).collect_batches():
            rows += frame.height
            if on_read is not None:
                on_read(min(int(rows * bytes_per_row), size))
            yield from frame.to_arrow().to_batches()
    except pl.exceptions.PolarsError as exc:
        raise ConversionError(f"not readable as {kind}: {str(exc).splitlines()[0]}") from exc
    if on_read is not None:
        on_read(size)


def json_array_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """A JSON array: DuckDB splits it into its records (their text as written) into
    JSON Lines beside it, which `json_lines_batches` types from the whole file and
    streams, so both JSON forms read alike. DuckDB's own typing made a column with an
    integer past int64 a double, rounding its integers past 2**53; and it was slower
    (122 MB array: 1.3 s this way, 2.1 s by DuckDB's `read_json`). Progress: the
    split is the first half (DuckDB's own progress for the query, which moves per
    ~32 MB buffer), the read the second."""
    import duckdb

    size = path.stat().st_size

    def report(fraction: float) -> None:
        if on_read is not None:
            on_read(int(size * min(max(fraction, 0.0), 1.0)))

    lines = path.with_name(path.name + ".lines")
    try:
        con = duckdb.connect()
        # Tracked only when asked for (its default follows whether a terminal is attached).
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
        with lines.open("wb") as out:
            try:
                records = con.sql(
                    "SELECT json FROM read_json_objects(?, format = 'array')", params=[str(path)]
                ).to_arrow_reader(64_000)
                for batch in records:
                    # JSON text holds no raw line break inside a string: outside one it
                    # is white space, and a record must fit on its line.
                    record = pl.Series(batch.column(0)).str.replace_all("[\r\n]", " ")
                    pl.DataFrame({"record": record}).write_csv(
                        out, include_header=False, quote_style="never"
                    )
                    report(con.query_progress() / 200)
            except (duckdb.Error, OSError) as exc:  # its reader's errors arrive as OSError
                raise ConversionError(f"not a readable JSON array: {exc}") from exc
        written = lines.stat().st_size
        if written:
            yield from _typed_json_lines(
                lines, lambda n: report(0.5 + n / written / 2), "a JSON array of records"
            )
        report(1.0)
    finally:
        lines.unlink(missing_ok=True)
