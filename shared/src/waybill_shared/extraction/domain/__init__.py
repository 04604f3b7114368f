"""Workflow extraction, pure: a provenance graph and a selection in, a Galaxy `.ga`
workflow document out. No broker, database or storage code."""

from waybill_shared.extraction.domain.extract import (
    ExtractionError,
    InvalidRequest,
    NotFound,
    build_workflow,
    validate_request,
)
from waybill_shared.extraction.domain.graph import (
    Collection,
    Dataset,
    Element,
    ExtractionRequest,
    Job,
    JobIO,
    MapOver,
    MappedRun,
    OutputLabel,
    ProvenanceGraph,
)

__all__ = [
    "Collection",
    "Dataset",
    "Element",
    "ExtractionError",
    "ExtractionRequest",
    "InvalidRequest",
    "Job",
    "JobIO",
    "MapOver",
    "MappedRun",
    "NotFound",
    "OutputLabel",
    "ProvenanceGraph",
    "build_workflow",
    "validate_request",
]
