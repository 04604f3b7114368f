"""The provenance catalog through the HTTP API: histories, datasets, collections,
copies, jobs, mapped runs."""

from __future__ import annotations

from support.amqp import publish_command
from support.provenance import Recorder
from support.stack import Stack


def test_datasets_collections_and_copies(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history("first")
        before = user.get(f"/api/histories/{h}").json()
        d1 = rec.dataset(h, b"a\n", "a.txt")
        after = user.get(f"/api/histories/{h}").json()
        assert after["content_version"] > before["content_version"]
        assert after["update_time"] > before["update_time"]
        assert (
            d1["hid"] == 1 and d1["history_content_type"] == "dataset" and d1["extension"] == "txt"
        )

        pair = rec.paired(h)
        assert pair["collection_type"] == "paired" and pair["hid"] == 4
        nested = rec.collection(
            h,
            "list:paired",
            [
                {
                    "name": "s1",
                    "src": "new_collection",
                    "collection_type": "paired",
                    "element_identifiers": [
                        {"name": "forward", "src": "hda", "id": d1["id"]},
                        {"name": "reverse", "src": "hda", "id": d1["id"]},
                    ],
                },
            ],
            "nested",
        )
        detail = user.get(f"/api/dataset_collections/{nested['id']}").json()
        assert detail["elements"][0]["element_identifier"] == "s1"
        assert [e["element_identifier"] for e in detail["elements"][0]["elements"]] == [
            "forward",
            "reverse",
        ]

        other = rec.history("second")
        copy = rec.content(other, {"src": "hda", "id": d1["id"]})
        assert user.get(f"/api/datasets/{copy['id']}").json()["copied_from_id"] == d1["id"]
        ccopy = rec.content(other, {"src": "hdca", "id": nested["id"]})
        copied = user.get(f"/api/dataset_collections/{ccopy['id']}").json()
        assert copied["copied_from_id"] == nested["id"]
        assert copied["elements"][0]["elements"][0]["dataset_id"] == d1["id"]

        contents = user.get(f"/api/histories/{h}/contents").json()
        assert [c["hid"] for c in contents] == sorted(c["hid"] for c in contents)
        assert {c["history_content_type"] for c in contents} == {"dataset", "dataset_collection"}


def test_invalid_collections_are_422(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        d = rec.dataset(h)
        bad = [
            ("paired", [{"name": "left", "src": "hda", "id": d["id"]}], "forward"),
            (
                "list",
                [
                    {"name": "x", "src": "hda", "id": d["id"]},
                    {"name": "x", "src": "hda", "id": d["id"]},
                ],
                "unique",
            ),
            ("list:paired", [{"name": "x", "src": "hda", "id": d["id"]}], "new_collection"),
            ("list", [], "element_identifiers"),
        ]
        for ctype, elements, fragment in bad:
            response = user.post(
                f"/api/histories/{h}/contents",
                json={
                    "type": "dataset_collection",
                    "collection_type": ctype,
                    "name": "c",
                    "element_identifiers": elements,
                },
            )
            assert response.status_code == 422, (ctype, response.text)
            assert fragment in response.text


def test_jobs_and_mapped_runs(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        d1, d2 = rec.dataset(h), rec.dataset(h)
        run = rec.run(
            h,
            "cat1",
            {"input1": ("hda", d1["id"]), "queries_0|input2": ("hda", d2["id"])},
            ["out_file1"],
        )
        job = run["jobs"][0]
        assert [i["name"] for i in job["inputs"]] == ["input1", "queries_0|input2"]
        out = run["outputs"][0]
        assert user.get(f"/api/datasets/{out['id']}").json()["creating_job_id"] == job["id"]
        fetched = user.get(f"/api/jobs/{job['id']}").json()
        assert fetched["parameters"]["queries_0|input2"] == {"src": "hda", "id": d2["id"]}
        assert fetched["outputs"] == [{"name": "out_file1", "src": "hda", "id": out["id"]}]

        # A mapped run over a list:paired, by its pairs (subcollection mapping).
        p1, p2 = rec.paired(h, "p1"), rec.paired(h, "p2")
        p1e = user.get(f"/api/dataset_collections/{p1['id']}").json()["elements"]
        p2e = user.get(f"/api/dataset_collections/{p2['id']}").json()["elements"]
        lp = rec.collection(
            h,
            "list:paired",
            [
                {
                    "name": "s1",
                    "src": "new_collection",
                    "collection_type": "paired",
                    "element_identifiers": [
                        {"name": e["element_identifier"], "src": "hda", "id": e["dataset_id"]}
                        for e in p1e
                    ],
                },
                {
                    "name": "s2",
                    "src": "new_collection",
                    "collection_type": "paired",
                    "element_identifiers": [
                        {"name": e["element_identifier"], "src": "hda", "id": e["dataset_id"]}
                        for e in p2e
                    ],
                },
            ],
            "lp",
        )
        mapped = rec.job(
            {
                "history_id": h,
                "tool_id": "collection_paired_test",
                "parameters": {"f1": {"src": "hdca", "id": lp["id"]}},
                "inputs": [{"name": "f1", "src": "hdca", "id": lp["id"]}],
                "map_over": [
                    {"name": "f1", "src": "hdca", "id": lp["id"], "subcollection_type": "paired"}
                ],
                "outputs": [
                    {
                        "name": "out1",
                        "elements": [
                            {"identifier": "s1", "file_id": rec.file()},
                            {"identifier": "s2", "file_id": rec.file()},
                        ],
                    }
                ],
            }
        )
        assert len(mapped["jobs"]) == 2 and mapped["implicit_collection_jobs_id"]
        out_collection = user.get(
            f"/api/dataset_collections/{mapped['output_collections'][0]['id']}"
        ).json()
        assert out_collection["collection_type"] == "list"
        assert (
            out_collection["implicit_collection_jobs_id"] == mapped["implicit_collection_jobs_id"]
        )
        assert out_collection["implicit_input_collections"] == {"f1": lp["id"]}
        assert {j["inputs"][0]["src"] for j in mapped["jobs"]} == {"dce"}

        # Elements that do not match the structure are refused.
        wrong = user.post(
            "/api/jobs",
            json={
                "history_id": h,
                "tool_id": "t",
                "inputs": [],
                "map_over": [{"name": "f1", "id": lp["id"], "subcollection_type": "paired"}],
                "outputs": [
                    {"name": "o", "elements": [{"identifier": "zzz", "file_id": rec.file()}]}
                ],
            },
        )
        assert wrong.status_code == 422 and "zzz" in wrong.text

        # A job that makes a collection itself.
        split = rec.job(
            {
                "history_id": h,
                "tool_id": "collection_split_on_column",
                "inputs": [{"name": "input1", "src": "hda", "id": d1["id"]}],
                "output_collections": [
                    {
                        "name": "split_output",
                        "collection_type": "list",
                        "elements": [
                            {"identifier": "a", "file_id": rec.file()},
                            {"identifier": "b", "file_id": rec.file()},
                        ],
                    }
                ],
            }
        )
        made = user.get(f"/api/dataset_collections/{split['output_collections'][0]['id']}").json()
        assert made["creating_job_id"] == split["jobs"][0]["id"] and len(made["elements"]) == 2


def test_foreign_objects_are_404(stack: Stack) -> None:
    with stack.new_user() as owner, stack.new_user() as other:
        rec = Recorder(owner)
        h = rec.history()
        d = rec.dataset(h)
        run = rec.run(h, "cat1", {"input1": ("hda", d["id"])}, ["out"])
        for path in (
            f"/api/histories/{h}",
            f"/api/histories/{h}/contents",
            f"/api/datasets/{d['id']}",
            f"/api/jobs/{run['jobs'][0]['id']}",
        ):
            assert other.get(path).status_code == 404, path
        mine = Recorder(other).history()
        assert (
            other.post(
                f"/api/histories/{mine}/contents", json={"src": "hda", "id": d["id"]}
            ).status_code
            == 404
        )
        steal = other.post(
            "/api/jobs",
            json={
                "history_id": mine,
                "tool_id": "x",
                "inputs": [{"name": "i", "src": "hda", "id": d["id"]}],
            },
        )
        assert steal.status_code == 404 and f"dataset {d['id']} not found" in steal.text


def test_provenance_events_from_another_system(stack: Stack) -> None:
    """A provenance event on the broker is recorded like POST /api/jobs, once; one
    that fails the same checks is dead-lettered with the reason."""
    import json
    import uuid

    import pika

    from support.stack import wait_for

    with stack.new_user() as owner, stack.new_user() as other:
        rec = Recorder(owner)
        h = rec.history()
        d = rec.dataset(h)
        owner_id = owner.get("/api/users/me").json()["id"]
        other_id = other.get("/api/users/me").json()["id"]
        good = {
            "event_id": str(uuid.uuid4()),
            "owner_id": owner_id,
            "job": {
                "history_id": h,
                "tool_id": "external_tool",
                "inputs": [{"name": "i", "src": "hda", "id": d["id"]}],
                "outputs": [{"name": "o", "file_id": rec.file()}],
            },
        }
        foreign = {
            "event_id": str(uuid.uuid4()),
            "owner_id": other_id,
            "job": {"history_id": h, "tool_id": "sneaky", "inputs": []},
        }
        for body in (good, good, foreign):  # the good one twice: recorded once
            publish_command(
                stack.infra,
                "provenance.recorded",
                body,
                message_type="waybill.provenance.recorded.v1",
                principal=stack.publisher,
            )
        connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
        channel = connection.channel()

        def recorded() -> list[dict[str, object]]:
            items = owner.get(f"/api/histories/{h}/contents").json()
            return [i for i in items if i["name"] == "o"]

        wait_for(recorded, message="the external job's output")
        dead_queue = f"{stack.infra.prefix}.provenance.events.dead"

        def dead_letter() -> tuple[bytes, dict[str, object]] | None:
            method, props, payload = channel.basic_get(dead_queue, auto_ack=True)
            return (payload, dict(props.headers or {})) if method else None

        payload, headers = wait_for(dead_letter, message="the foreign record dead-lettered")
        connection.close()
        assert json.loads(payload)["job"]["tool_id"] == "sneaky"
        assert f"history {h} not found" in str(headers["x-waybill-dead-reason"])
        assert len(recorded()) == 1
