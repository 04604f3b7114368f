"""Detecting a file's format at upload, from its name and first bytes. Pure and
cheap: the gateway sniffs while the upload streams to storage."""

from __future__ import annotations

import codecs
import json

_BY_EXTENSION = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "txt": "text",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "parquet": "parquet",
    "pq": "parquet",
    "xlsx": "excel",
    "xlsm": "excel",
    "h5": "hdf5",
    "hdf5": "hdf5",
    "hdf": "hdf5",
    "arrow": "arrow",
    "feather": "arrow",
    "arrows": "arrow",
    "orc": "orc",
    "avro": "avro",
    "nc": "netcdf",
    "nc4": "netcdf",
    "gz": "gzip",
    "zip": "zip",
    "fa": "text",
    "fasta": "text",
    "fastq": "text",
    "bed": "tsv",
    "vcf": "text",
    "gff": "tsv",
    "gtf": "tsv",
}


def text_encoding(head: bytes) -> str | None:
    """How a file's text is encoded, judged from its first bytes: "utf-8" (also plain
    ASCII) when they decode as such (the last character may be cut short), else
    "cp1252" (what Excel on Windows saves as "CSV"), else "latin-1" (which decodes
    any byte); "utf-16" after its byte order mark; None when the bytes are not text:
    neither UTF-8 nor free of NUL (a gzip, an image...)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in head:
        return None
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def detect_format(filename: str, head: bytes) -> str:
    """One of csv, tsv, json, jsonl, parquet, excel, hdf5, netcdf, arrow, orc, avro,
    gzip, zip, text, binary."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):  # netCDF-4 is HDF5 inside
        return "netcdf" if _BY_EXTENSION.get(ext) == "netcdf" else "hdf5"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"ARROW1") or (ext == "arrows" and head.startswith(b"\xff\xff\xff\xff")):
        return "arrow"  # the IPC file format (Feather v2), or the stream format by its name
    if head.startswith(b"Obj\x01"):
        return "avro"
    if head.startswith(b"ORC") and (ext == "orc" or text_encoding(head) is None):
        return "orc"
    if head.startswith(b"PK\x03\x04"):
        return "excel" if ext in ("xlsx", "xlsm") else "zip"
    encoding = text_encoding(head)
    if encoding is None:
        return "binary"
    # The head may end inside a multi-byte character.
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    if "\x00" in text:
        return "binary"
    if ext in _BY_EXTENSION and _BY_EXTENSION[ext] not in (
        "gzip",
        "zip",
        "parquet",
        "hdf5",
        "excel",
        "arrow",
        "orc",
        "avro",
        "netcdf",
    ):
        return _BY_EXTENSION[ext]
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.splitlines()[0]
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json"
    first_line = text.splitlines()[0] if text else ""
    if "\t" in first_line:
        return "tsv"
    if "," in first_line:
        return "csv"
    return "text"
