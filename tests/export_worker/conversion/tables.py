"""Tables and helpers the conversion tests share: a tricky CSV, one whose values turn
late, a conversion of text, and a file read back as rows of values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionResult,
    hdf5,
    output_filename,
)

TRICKY = (
    "id,name,score,count,note\n"
    '007,"Müller, Jörg",2.27e-15,1,"line one\nline two"\n'
    '010,"say ""hi""",,2,=SUM(A1:A2)\n'
    '011,NA,-3.5,,"tab\there"\n'
)


AGREE = (
    "id,flag,name,score,count,big,note\n"
    '007,True,"Müller, Jörg",2.27e-15,1,5,"line one\nline two"\n'
    '010,false,"NA",,2,6,=SUM(A1:A2)\n'
    "011,TRUE,N/A,inf,,7,@cmd\n"
    + "".join(f"{100 + i},false,g{i},{i}.25,{i},{i},-{i}\n" for i in range(3000))
    + "012,true,late,1.5e300,3.5,99999999999999999999,+1\n"
    # NA markers the sample never saw, in text, float, int and boolean columns
    + "013,None,null,nan,NULL,#N/A,None\n"
)


def run(
    tmp_path: Path,
    text: str,
    fmt: str,
    options: dict | None = None,
    source_format: str = "csv",
    name: str = "in.csv",
) -> tuple[Path, ConversionResult]:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    target = tmp_path / output_filename("out", fmt)
    result = convert_file(source, source_format, target, fmt, options)
    return target, result


def read_back(path: Path, fmt: str) -> list[dict[str, object]]:
    if fmt == "hdf5":
        return pa.Table.from_batches(list(hdf5.hdf5_batches(path, None))).to_pylist()
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "json" and path.read_text().startswith("["):
        rows: list[dict[str, object]] = json.loads(path.read_text())
        return rows
    if fmt == "json":
        return [json.loads(line) for line in path.read_text().splitlines()]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [{k: csv_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def csv_value(text: str) -> object:
    """A CSV cell as a value: "1" and "1.0" are the same float, "" is NA."""
    if text == "":
        return None
    try:
        return text if re.match(r"^0[0-9]+$", text) else float(text)  # "007" is an id
    except ValueError:
        return text
