"""Request shapes for recording provenance (HTTP bodies and message payloads)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from waybill_shared.contracts.types import DbId

Name = Annotated[str, Field(min_length=1, max_length=500)]
CollectionType = Annotated[str, Field(pattern=r"^(list|paired)(:(list|paired))*$", max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputRef(_Strict):
    name: Name
    src: Literal["hda", "hdca", "dce"]
    id: DbId


class OutputLeaf(_Strict):
    identifier: Name
    file_id: DbId


class OutputNode(_Strict):
    identifier: Name
    elements: list[OutputLeaf | OutputNode] = Field(min_length=1)


OutputElement = OutputLeaf | OutputNode


class JobOutputSpec(_Strict):
    """A dataset output (`file_id`), or, in a mapped run, the elements of the
    implicit output collection shaped like the structure mapped over."""

    name: Name
    file_id: DbId | None = None
    dataset_name: Name | None = None
    extension: str | None = Field(default=None, max_length=64)
    elements: list[OutputElement] | None = None


class OutputCollectionSpec(_Strict):
    name: Name
    collection_type: CollectionType
    collection_name: Name | None = None
    elements: list[OutputElement] = Field(min_length=1)


class MapOver(_Strict):
    name: Name
    src: Literal["hdca"] = "hdca"
    id: DbId
    subcollection_type: CollectionType | None = None


class JobRecordRequest(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "history_id": 1,
                    "tool_id": "cat1",
                    "tool_version": "1.0.0",
                    "parameters": {"input1": {"src": "hda", "id": 12}},
                    "inputs": [{"name": "input1", "src": "hda", "id": 12}],
                    "outputs": [{"name": "out_file1", "file_id": 55, "dataset_name": "cat1 on 1"}],
                }
            ]
        }
    )

    history_id: DbId
    tool_id: Name
    tool_version: str | None = Field(default=None, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputRef] = Field(default_factory=list)
    outputs: list[JobOutputSpec] = Field(default_factory=list)
    output_collections: list[OutputCollectionSpec] = Field(default_factory=list)
    map_over: list[MapOver] | None = None
    state: Literal["ok", "error", "running", "queued", "new", "paused", "deleted"] = "ok"


class ElementIdentifier(_Strict):
    """A dataset (`src: hda` with its `id`) or a nested collection (`src:
    new_collection` with its `element_identifiers`)."""

    # The document says what the recording checks (an anyOf pydantic does not enforce).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"src": {"const": "hda"}, "id": {"type": "integer"}},
                    "required": ["id"],
                },
                {
                    "properties": {
                        "src": {"const": "new_collection"},
                        "element_identifiers": {"type": "array", "minItems": 1},
                    },
                    "required": ["element_identifiers"],
                },
            ]
        }
    )

    name: Name
    src: Literal["hda", "new_collection"]
    id: DbId | None = None
    collection_type: CollectionType | None = None
    element_identifiers: list[ElementIdentifier] | None = None


class NewContent(_Strict):
    """POST /api/histories/{id}/contents: a dataset from a file, a copy, or a new
    collection."""

    # The document says what the recording checks (an anyOf pydantic does not enforce).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "src": {"enum": ["file", "hda", "hdca"]},
                        "id": {"type": "integer"},
                        "type": {"type": "null"},
                    },
                    "required": ["src", "id"],
                },
                {
                    "properties": {
                        "type": {"const": "dataset_collection"},
                        "collection_type": {"type": "string"},
                        "element_identifiers": {"type": "array", "minItems": 1},
                    },
                    "required": ["type", "collection_type", "element_identifiers"],
                },
            ],
            "examples": [
                {"src": "file", "id": 1, "name": "counts.csv"},
                {
                    "type": "dataset_collection",
                    "collection_type": "paired",
                    "name": "reads",
                    "element_identifiers": [
                        {"name": "forward", "src": "hda", "id": 3},
                        {"name": "reverse", "src": "hda", "id": 4},
                    ],
                },
            ],
        }
    )

    src: Literal["file", "hda", "hdca"] | None = None
    id: DbId | None = None
    name: Name | None = None
    extension: str | None = Field(default=None, max_length=64)
    visible: bool = True
    type: Literal["dataset_collection"] | None = None
    collection_type: CollectionType | None = None
    element_identifiers: list[ElementIdentifier] | None = None
