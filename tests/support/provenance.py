"""Recording provenance through the HTTP API, for tests (and the Galaxy scenarios)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from support.stack import upload


class Recorder:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def history(self, name: str = "h") -> int:
        response = self.client.post("/api/histories", json={"name": name})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def file(self, content: bytes | None = None, name: str = "data.txt") -> int:
        return int(upload(self.client, name, content or uuid.uuid4().hex.encode() + b"\n")["id"])

    def dataset(
        self, history_id: int, content: bytes | None = None, name: str = "data.txt"
    ) -> dict[str, Any]:
        return self.content(
            history_id, {"src": "file", "id": self.file(content, name), "name": name}
        )

    def content(self, history_id: int, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"/api/histories/{history_id}/contents", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def collection(
        self,
        history_id: int,
        collection_type: str,
        elements: list[dict[str, Any]],
        name: str = "collection",
    ) -> dict[str, Any]:
        return self.content(
            history_id,
            {
                "type": "dataset_collection",
                "collection_type": collection_type,
                "name": name,
                "element_identifiers": elements,
            },
        )

    def paired(self, history_id: int, name: str = "pair") -> dict[str, Any]:
        f = self.dataset(history_id, name="forward.fq")
        r = self.dataset(history_id, name="reverse.fq")
        return self.collection(
            history_id,
            "paired",
            [
                {"name": "forward", "src": "hda", "id": f["id"]},
                {"name": "reverse", "src": "hda", "id": r["id"]},
            ],
            name,
        )

    def job(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def run(
        self,
        history_id: int,
        tool_id: str,
        inputs: dict[str, tuple[str, int]],
        outputs: list[str],
        parameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A plain tool run: inputs by name -> (src, id); one new dataset per output."""
        params = dict(parameters or {})
        params.update({name: {"src": src, "id": id_} for name, (src, id_) in inputs.items()})
        return self.job(
            {
                "history_id": history_id,
                "tool_id": tool_id,
                "tool_version": "1.0.0",
                "parameters": params,
                "inputs": [{"name": n, "src": s, "id": i} for n, (s, i) in inputs.items()],
                "outputs": [
                    {"name": o, "file_id": self.file(), "dataset_name": f"{tool_id} {o}"}
                    for o in outputs
                ],
            }
        )

    def mapped_over_pair(
        self, history_id: int, pair_id: int, tool_id: str, **fields: Any
    ) -> dict[str, Any]:
        """A run of `tool_id` mapped over a paired collection (input `input`): one job
        per element, and one output collection `out_file1` of a forward and a reverse
        dataset. `fields` add to the job's body (parameters, tool_version)."""
        return self.job(
            {
                "history_id": history_id,
                "tool_id": tool_id,
                "inputs": [{"name": "input", "src": "hdca", "id": pair_id}],
                "map_over": [{"name": "input", "id": pair_id}],
                "outputs": [
                    {
                        "name": "out_file1",
                        "elements": [
                            {"identifier": "forward", "file_id": self.file(b"f\n")},
                            {"identifier": "reverse", "file_id": self.file(b"r\n")},
                        ],
                    }
                ],
                **fields,
            }
        )
