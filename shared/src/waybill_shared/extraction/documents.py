"""Where an extracted workflow's documents are stored: the extraction service writes
both, the gateway serves them."""

from __future__ import annotations

from uuid import UUID


def ga_key(task_uuid: UUID | str) -> str:
    """The Galaxy `.ga` document (JSON), the workflow row's `storage_key`."""
    return f"workflows/{task_uuid}/workflow.ga"


def format2_key(storage_key: str) -> str:
    """The gxformat2 form (YAML), beside the `.ga` document at `storage_key`."""
    return storage_key.rsplit("/", 1)[0] + "/workflow.gxwf.yml"
