"""The widen-and-restart decision of the CSV source, direct: what pyarrow's error text
names, the column widened, the restart, and the whole-file pass after two widenings."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from waybill_export_worker.conversion.errors import ConversionError, Restart
from waybill_export_worker.conversion.readers import csv_source
from waybill_export_worker.conversion.readers.csv_source import (
    CsvSource,
    RefusedValue,
    refused_value,
)


def arrow_error(text: str, types: dict[str, pa.DataType]) -> str:
    """The message pyarrow's CSV reader gives for `text` read with `types` pinned."""
    with pytest.raises(pa.ArrowInvalid) as caught:
        pacsv.read_csv(
            pa.py_buffer(text.encode()),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "overflow"),
    [
        ("1.5", False),
        ("text", False),
        ("99999999999999999999", True),
        ("-99999999999999999999", True),
        ("+99999999999999999999", True),
    ],
)
def test_the_refused_value_of_a_column_is_read_from_pyarrows_message(
    value: str, overflow: bool
) -> None:
    message = arrow_error(f"a,b\n1,2\n3,{value}\n", {"a": pa.int64(), "b": pa.int64()})
    assert refused_value(message) == RefusedValue(column=1, overflow=overflow)


def test_a_message_that_names_no_column_is_no_widening() -> None:
    message = arrow_error("a,b\n1,2\n3,4,5\n", {"a": pa.int64()})  # a row too long
    assert refused_value(message) is None
    assert refused_value("") is None


def test_the_message_as_pyarrow_words_it() -> None:
    """The form the patterns read (pinned here so that a pyarrow upgrade that rewords
    it fails this test, not a conversion)."""
    message = "In CSV column #12: Row #5: CSV conversion error to int64: invalid value '1.5'"
    assert refused_value(message) == RefusedValue(column=12, overflow=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


def test_a_late_value_widens_its_column_and_restarts(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n" + "".join(f"{i},{i}\n" for i in range(2000)) + "1.5,7\n")
    source = CsvSource(path, delimiter=",", on_read=None, block_size=4096)
    assert source.schema.types == [pa.int64(), pa.int64()]
    with pytest.raises(Restart, match=r"^a$"):
        for _ in source.batches():
            pass
    assert source.schema.types == [pa.float64(), pa.int64()] and source.widenings == 1
    assert sum(batch.num_rows for batch in source.batches()) == 2001  # the next attempt fits


def test_the_second_widening_settles_every_column_from_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_source, "SETTLE_AFTER_WIDENINGS", 2)
    rows = "".join(f"{i},{i},{i},{i}\n" for i in range(2000))
    path = write(tmp_path, "a,b,c,d\n" + rows + "1.5,2.5,x,NA\n")
    source = CsvSource(path, delimiter=",", on_read=None, block_size=4096)
    source.widen("a", overflow=False, reason="")
    assert source.schema.types == [pa.float64(), pa.int64(), pa.int64(), pa.int64()]
    source.widen("b", overflow=False, reason="")  # the second: the whole file decides
    assert source.schema.types == [pa.float64(), pa.float64(), pa.string(), pa.int64()]
    assert "NA" in source.null_markers


def test_text_cannot_widen(tmp_path: Path) -> None:
    source = CsvSource(write(tmp_path, "a\nx\n"), delimiter=",", on_read=None)
    with pytest.raises(ConversionError, match="column 'a': the reason"):
        source.widen("a", overflow=False, reason="the reason")
