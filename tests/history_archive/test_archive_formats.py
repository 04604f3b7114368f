"""Galaxy's model store formats: BagIt bags that bagit-python validates, a BioCompute
Object valid against the IEEE 2791 schema, and every archive format re-importable
(bco.json is a description: refused on import, saying so)."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import bagit
import jsonschema
import pytest
from galaxy.schema.bco import (
    DescriptionDomain,
    ErrorDomain,
    ExecutionDomain,
    InputAndOutputDomain,
    ParametricDomain,
    ProvenanceDomain,
    UsabilityDomain,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from waybill_export_worker.history_archive import (
    FORMATS,
    UnsafeArchive,
    read_archive,
    write_archive,
)
from waybill_export_worker.history_archive.bco import SPEC_VERSION, ni_uri
from waybill_export_worker.history_archive.writer import bag_name

ARCHIVES = [f for f in FORMATS if f != "bco.json"]
BAGS = ["bag.zip", "bag.tar", "bag.tgz"]


def write(tmp_path: Path, built: Any, fmt: str) -> Path:
    target = tmp_path / f"history.{fmt}"
    write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
    return target


def test_the_formats_are_galaxys_model_store_formats() -> None:
    assert set(FORMATS) == {
        "tgz", "tar", "tar.gz", "bag.zip", "bag.tar", "bag.tgz", "rocrate.zip", "bco.json"
    }  # fmt: skip


@pytest.mark.parametrize("fmt", ARCHIVES)
def test_every_archive_format_re_imports(tmp_path: Path, built: Any, fmt: str) -> None:
    with read_archive(write(tmp_path, built, fmt)) as opened:
        assert opened.format == {"tgz": "tar.gz"}.get(fmt, fmt)
        assert opened.snapshot == built.snapshot
        for d in built.snapshot.datasets:
            assert opened.extract_dataset(d.id, tmp_path / "out")
            assert (tmp_path / "out").read_bytes() == built.files[d.id].read_bytes()


def test_tgz_is_tar_gz(tmp_path: Path, built: Any) -> None:
    assert (
        write(tmp_path, built, "tgz").read_bytes() == write(tmp_path, built, "tar.gz").read_bytes()
    )


def unpack(archive: Path, into: Path) -> Path:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    (bag,) = into.iterdir()  # RFC 8493: one top-level directory, the bag
    return bag


@pytest.mark.parametrize("fmt", BAGS)
def test_bags_validate_with_bagit(tmp_path: Path, built: Any, fmt: str) -> None:
    bag_dir = unpack(write(tmp_path, built, fmt), tmp_path / "unpacked")
    assert bag_dir.name == bag_name(built.snapshot)
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # every checksum recomputed, Payload-Oxum, completeness
    payload = [p for p in (bag_dir / "data").rglob("*") if p.is_file()]
    octets = sum(p.stat().st_size for p in payload)
    assert bag.info["Payload-Oxum"] == f"{octets}.{len(payload)}"
    # The payload is the tar layout: the same members as a tar.gz.
    with tarfile.open(write(tmp_path, built, "tar.gz")) as t:
        assert sorted(p.relative_to(bag_dir / "data").as_posix() for p in payload) == sorted(
            t.getnames()
        )


@pytest.mark.parametrize("fmt", ["bag.zip", "bag.tgz"])
def test_a_tampered_bag_fails_bagit_and_the_import(tmp_path: Path, built: Any, fmt: str) -> None:
    """The checks are not vacuous: a payload file changed after bagging (here the jobs
    document, which no dataset record vouches for) fails both validators."""
    archive = write(tmp_path, built, fmt)
    bag_dir = unpack(archive, tmp_path / "unpacked")
    jobs = bag_dir / "data" / "jobs.json"
    jobs.write_text(jobs.read_text().replace('"state": "ok"', '"state": "OK"'))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_dir)).validate()
    tampered = tmp_path / f"tampered.{fmt}"
    files = [p for p in sorted(bag_dir.rglob("*")) if p.is_file()]  # no directory entries
    if fmt.endswith(".zip"):
        with zipfile.ZipFile(tampered, "w") as z:
            for path in files:
                z.write(path, path.relative_to(bag_dir.parent).as_posix())
    else:
        with tarfile.open(tampered, "w:gz") as t:
            for path in files:
                t.add(path, path.relative_to(bag_dir.parent).as_posix())
    with pytest.raises(UnsafeArchive, match=r"jobs\.json does not match its manifest"):
        read_archive(tampered)


class IEEE2791Object(BaseModel):
    """The IEEE 2791 top-level object. Its domains are Galaxy's models of the IEEE
    2791 domain schemas (galaxy-schema, generated from the standard's JSON schema
    files by datamodel-codegen): no package ships the schema files themselves."""

    model_config = ConfigDict(extra="forbid")
    object_id: str
    spec_version: str
    etag: str = Field(pattern="^([A-Za-z0-9]+)$")
    provenance_domain: ProvenanceDomain
    usability_domain: UsabilityDomain
    extension_domain: list[dict[str, Any]] | None = None
    description_domain: DescriptionDomain
    execution_domain: ExecutionDomain
    parametric_domain: ParametricDomain | None = None
    io_domain: InputAndOutputDomain
    error_domain: ErrorDomain | None = None


SCHEMA = IEEE2791Object.model_json_schema()


def validate_bco(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    IEEE2791Object.model_validate(document)  # and the formats: URIs, date-times


def test_bco_is_valid_against_the_ieee_2791_schema(tmp_path: Path, built: Any) -> None:
    calls: list[int] = []

    def dataset_file(record: Any) -> Path | None:
        calls.append(record.id)
        return built.dataset_file(record)

    target = tmp_path / "history.bco.json"
    write_archive(built.snapshot, fmt="bco.json", target=target, dataset_file=dataset_file)
    assert calls == [], "a description downloads no file"
    document = json.loads(target.read_text())
    validate_bco(document)
    assert document["spec_version"] == SPEC_VERSION
    assert document["provenance_domain"]["name"] == "RNA-seq \u00e9 run"
    steps = document["description_domain"]["pipeline_steps"]
    assert [s["name"] for s in steps] == [j.tool_id for j in built.snapshot.jobs]
    records = {d.id: d for d in built.snapshot.datasets}
    # cat1 read dataset 101 and element 401 (dataset 102), and made dataset 103.
    assert [u["uri"] for u in steps[0]["input_list"]] == [
        ni_uri(records[i].file.sha256) for i in (101, 102)
    ]
    assert [u["uri"] for u in steps[0]["output_list"]] == [ni_uri(records[103].file.sha256)]
    assert {p["param"] for p in document["parametric_domain"]} == {"queries", "f"}
    assert document["execution_domain"]["software_prerequisites"] == [
        {
            "name": built.snapshot.jobs[0].tool_id,
            "version": "1.0.0",
            "uri": {"uri": "https://toolshed.g2.bx.psu.edu/view/devteam/cat"},
        }
    ]
    assert {o["uri"]["uri"] for o in document["io_domain"]["output_subdomain"]} == {
        ni_uri(records[i].file.sha256) for i in (103, 105)
    }


def test_the_bco_check_is_not_vacuous(tmp_path: Path, built: Any) -> None:
    target = tmp_path / "history.bco.json"
    write_archive(built.snapshot, fmt="bco.json", target=target, dataset_file=built.dataset_file)
    good = json.loads(target.read_text())
    broken = [
        {k: v for k, v in good.items() if k != "io_domain"},
        {**good, "invented_domain": {}},
        {**good, "provenance_domain": {**good["provenance_domain"], "contributors": "alice"}},
        {**good, "io_domain": {"input_subdomain": [{"uri": {"uri": "not a uri"}}], "output_subdomain": []}},
    ]  # fmt: skip
    for document in broken:
        with pytest.raises((jsonschema.ValidationError, ValidationError)):
            validate_bco(document)


def test_a_bco_is_refused_on_import_saying_it_is_a_description(tmp_path: Path, built: Any) -> None:
    target = tmp_path / "history.bco.json"
    write_archive(built.snapshot, fmt="bco.json", target=target, dataset_file=built.dataset_file)
    with pytest.raises(UnsafeArchive, match=r"bco\.json .* cannot be re-imported"):
        read_archive(target)
