"""Public message contracts: one versioned pydantic model per message.

Other systems publish and consume these over AMQP (see docs/asyncapi.yaml). A model
is JSON in the body; its `message_type()` goes in the AMQP `type` property.
"""

from waybill_shared.contracts.messages import (
    COMMANDS,
    EVENTS,
    DataExportRequested,
    ExtractionRequested,
    HistoryExportRequested,
    HistoryImportRequested,
    Message,
    ProvenanceRecorded,
    TaskEvent,
    message_model_for,
)

__all__ = [
    "COMMANDS",
    "EVENTS",
    "DataExportRequested",
    "ExtractionRequested",
    "HistoryExportRequested",
    "HistoryImportRequested",
    "Message",
    "ProvenanceRecorded",
    "TaskEvent",
    "message_model_for",
]
