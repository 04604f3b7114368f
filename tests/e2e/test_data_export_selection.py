"""Column selection, row filters and the formats beyond the seed's, end to end through
the HTTP API: gateway -> RabbitMQ -> export-worker -> S3, on the real servers. Each
package is read back by the format's standard reader."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import fastavro
import httpx
import netCDF4
import numpy as np
import pyarrow.ipc as ipc
import pyarrow.orc as orc
import pytest

from support.stack import Stack, finished, upload

GENES = (
    b"gene_id,gene_name,padj,count\n"
    b"ENSG01,BRCA1,0.01,12\n"
    b"ENSG02,TP53,0.2,7\n"
    b"ENSG03,NA,0.001,\n"
    b"ENSG04,MYC,NA,3\n"
)
# The same table without padj: the filter names a column this file lacks.
NO_PADJ = b"gene_id,gene_name,count\nENSG09,KRAS,1\n"
OPTIONS = {
    "columns": ["gene_name", "gene_id"],
    "filter": [{"column": "padj", "op": "<", "value": 0.05}],
}
KEPT = [{"gene_name": "BRCA1", "gene_id": "ENSG01"}, {"gene_name": None, "gene_id": "ENSG03"}]


def read_rows(fmt: str, data: bytes, tmp_path: Path) -> list[dict[str, Any]]:
    if fmt == "arrow":
        return ipc.open_file(io.BytesIO(data)).read_all().to_pylist()
    if fmt == "orc":
        return orc.read_table(io.BytesIO(data)).to_pylist()
    if fmt == "avro":
        return list(fastavro.reader(io.BytesIO(data)))  # type: ignore[arg-type]
    path = tmp_path / "genes.nc"
    path.write_bytes(data)
    with netCDF4.Dataset(path) as ds:
        columns = {
            name: [None if v == var.getncattr("_FillValue") else v for v in np.asarray(var[:])]
            for name, var in ds.variables.items()
        }
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@pytest.mark.parametrize("fmt", ["arrow", "orc", "avro", "netcdf"])
def test_filter_and_columns_to_each_new_format_with_a_file_failing_alone(
    stack: Stack, fmt: str, tmp_path: Path
) -> None:
    with stack.new_user() as user:
        genes = upload(user, "genes.csv", GENES)
        other = upload(user, "other.csv", NO_PADJ)
        created = user.post(
            "/api/data-export/jobs",
            json={
                "name": f"significant genes as {fmt}",
                "file_ids": [genes["id"], other["id"]],
                "export_format": fmt,
                "export_options": OPTIONS,
            },
        )
        assert created.status_code == 202, created.text
        done = finished(user, created.json()["id"])
        assert done["status"] == "completed", done
        assert done["export_options"]["columns"] == ["gene_name", "gene_id"]
        by_name = {f["filename"]: f for f in done["files"]}
        good, bad = by_name["genes.csv"], by_name["other.csv"]
        assert good["status"] == "completed" and (good["rows_read"], good["rows_written"]) == (4, 2)
        assert bad["status"] == "failed" and "no column 'padj' in this file" in bad["error"]
        assert done["failed_files"] == 1

        with zipfile.ZipFile(io.BytesIO(httpx.get(done["download_url"]).content)) as package:
            assert read_rows(fmt, package.read(good["output_name"]), tmp_path) == KEPT
            manifest = json.loads(package.read("export_metadata.json"))
        info = manifest["export_info"]
        assert info["columns"] == ["gene_name", "gene_id"]
        assert info["filter"] == {"all": [{"column": "padj", "op": "<", "value": 0.05}]}
        files = {f["filename"]: f for f in manifest["files"]}
        assert (files["genes.csv"]["rows_read"], files["genes.csv"]["rows_written"]) == (4, 2)
        assert files["other.csv"]["rows_written"] is None


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"filter": [{"column": "padj", "op": "<<", "value": 0.05}]}, "filter.all.0.op"),
        ({"filter": {"column": "padj", "op": "<"}}, "'<' takes one value"),
        ({"filter": "padj < 0.05"}, "filter"),
        ({"columns": ["a", "a"]}, "columns repeats 'a'"),
        ({"codec": "lzma"}, "codec"),
    ],
)
def test_a_malformed_filter_or_option_is_422_and_publishes_nothing(
    stack: Stack, options: dict[str, Any], fragment: str
) -> None:
    with stack.new_user() as user:
        genes = upload(user, "genes.csv", GENES)
        response = user.post(
            "/api/data-export/jobs",
            json={
                "name": "bad",
                "file_ids": [genes["id"]],
                "export_format": "avro",
                "export_options": options,
            },
        )
        assert response.status_code == 422, response.text
        assert fragment in json.dumps(response.json()["detail"])
        assert user.get("/api/data-export/jobs").headers["X-Total-Count"] == "0"


def test_jobs_list_by_a_new_format(stack: Stack) -> None:
    with stack.new_user() as user:
        genes = upload(user, "genes.csv", GENES)
        job = user.post(
            "/api/data-export/jobs",
            json={"name": "orc", "file_ids": [genes["id"]], "export_format": "orc"},
        ).json()
        listed = user.get("/api/data-export/jobs", params={"export_format": "orc"})
        assert listed.status_code == 200 and [j["id"] for j in listed.json()] == [job["id"]]
        assert (
            user.get("/api/data-export/jobs", params={"export_format": "feather"}).status_code
            == 422
        )
