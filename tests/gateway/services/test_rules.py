"""The gateway's pure rules, table-driven: upload metadata, S3 targets, history
export parameters, whole-percent progress."""

from __future__ import annotations

import pytest

from waybill_gateway.schemas import HistoryExportOptions
from waybill_gateway.services.catalog import parse_metadata
from waybill_gateway.services.data_exports import api_progress
from waybill_gateway.services.history_exports import params_hash, parse_s3_uri
from waybill_shared.errors import Invalid


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (None, {}),
        ("", {}),
        ("{}", {}),
        ('{"organism": "human", "n": 3}', {"organism": "human", "n": 3}),
    ],
)
def test_metadata(raw: str | None, parsed: dict[str, object]) -> None:
    assert parse_metadata(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "refusal"),
    [
        ("{organism", "metadata is not valid JSON"),
        ('["a"]', "metadata must be a JSON object"),
        ("3", "metadata must be a JSON object"),
        ("null", "metadata must be a JSON object"),
    ],
)
def test_metadata_refused(raw: str, refusal: str) -> None:
    with pytest.raises(Invalid, match=refusal):
        parse_metadata(raw)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("s3://bucket/archive.tar.gz", ("bucket", "archive.tar.gz")),
        ("s3://b/deep/path/to/h.rocrate.zip", ("b", "deep/path/to/h.rocrate.zip")),
    ],
)
def test_s3_uri(uri: str, parsed: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "refusal"),
    [
        ("https://bucket/key", "is not an s3:// URI"),
        ("s3://", "must name an object"),
        ("s3://bucket", "must name an object"),
        ("s3://bucket/", "must name an object"),
        ("s3://bucket/folder/", "must name an object"),
        ("s3://bucket/a/../b", "must name an object"),
        ("s3:///key", "must name an object"),
    ],
)
def test_s3_uri_refused(uri: str, refusal: str) -> None:
    with pytest.raises(Invalid, match=refusal):
        parse_s3_uri(uri)


def test_the_parameter_hash_tells_options_and_destinations_apart() -> None:
    default = HistoryExportOptions()
    same = params_hash(default, "short_term", None)
    assert same == params_hash(HistoryExportOptions(), "short_term", None)
    others = {
        params_hash(HistoryExportOptions(model_store_format="tar.gz"), "short_term", None),
        params_hash(HistoryExportOptions(include_hidden=True), "short_term", None),
        params_hash(default, "remote", "s3://b/k.rocrate.zip"),
        params_hash(default, "remote", "s3://b/other.rocrate.zip"),
    }
    assert len(others) == 4 and same not in others


@pytest.mark.parametrize(
    ("progress", "done", "percent"),
    [
        (0.0, False, 0),
        (42.9, False, 42),
        (99.99, False, 99),
        (100.0, False, 99),  # 100 only once completed
        (100.0, True, 100),
        (37.0, True, 100),
    ],
)
def test_progress_is_a_whole_percent(progress: float, done: bool, percent: int) -> None:
    assert api_progress(progress, done=done) == percent
