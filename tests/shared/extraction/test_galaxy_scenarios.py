"""Galaxy's own extraction scenarios (lib/galaxy_test/api/test_workflow_extraction.py),
recorded as our provenance graph and extracted by the pure domain."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from gxformat2.export import from_galaxy_native

from waybill_shared.extraction.domain import (
    Collection,
    Dataset,
    Element,
    ExtractionRequest,
    InvalidRequest,
    Job,
    JobIO,
    MapOver,
    MappedRun,
    NotFound,
    OutputLabel,
    ProvenanceGraph,
    build_workflow,
)


class Builder:
    """Records provenance the way the API does: hids per history, ids global."""

    def __init__(self) -> None:
        self.g = ProvenanceGraph()
        self.ids = itertools.count(1)
        self.hids: dict[int, itertools.count[int]] = {}

    def _hid(self, history: int) -> int:
        return next(self.hids.setdefault(history, itertools.count(1)))

    def dataset(
        self,
        history: int = 1,
        name: str = "d",
        *,
        job: int | None = None,
        copied_from: int | None = None,
    ) -> int:
        i = next(self.ids)
        self.g.datasets[i] = Dataset(i, history, self._hid(history), name, "txt", copied_from, job)
        return i

    def copy_dataset(self, source: int, history: int) -> int:
        return self.dataset(history, self.g.datasets[source].name, copied_from=source)

    def collection(
        self,
        ctype: str,
        leaves: dict[str, Any],
        history: int = 1,
        *,
        job: int | None = None,
        icj: int | None = None,
        output: str | None = None,
        copied_from: int | None = None,
    ) -> int:
        cid = next(self.ids)
        self.g.collections[cid] = Collection(
            cid, history, self._hid(history), f"c{cid}", ctype, copied_from, job, icj, output
        )

        def add(items: dict[str, Any], parent: int | None) -> None:
            for ident, value in items.items():
                eid = next(self.ids)
                if isinstance(value, dict):
                    self.g.elements[eid] = Element(eid, cid, ident, None, parent)
                    add(value, eid)
                else:
                    self.g.elements[eid] = Element(eid, cid, ident, value, parent)

        add(leaves, None)
        return cid

    def element(self, collection: int, *path: str) -> int:
        parent = None
        for ident in path:
            parent = next(
                e.id
                for e in self.g.elements.values()
                if e.collection_id == collection and e.parent_id == parent and e.identifier == ident
            )
        assert parent is not None
        return parent

    def job(
        self,
        tool: str,
        inputs: dict[str, tuple[str, int]],
        outputs: dict[str, tuple[str, int]] | None = None,
        history: int = 1,
        icj: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> int:
        jid = next(self.ids)
        parameters = dict(params or {})
        parameters.update({n: {"src": s, "id": i} for n, (s, i) in inputs.items()})
        self.g.jobs[jid] = Job(
            jid,
            history,
            tool,
            "1.0.0",
            parameters,
            tuple(JobIO(n, s, i) for n, (s, i) in inputs.items()),
            tuple(JobIO(n, s, i) for n, (s, i) in (outputs or {}).items()),
            icj,
        )
        return jid

    def run(
        self,
        tool: str,
        inputs: dict[str, tuple[str, int]],
        outputs: list[str],
        history: int = 1,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, int]]:
        jid = next(self.ids)
        made = {o: self.dataset(history, f"{tool} {o}", job=jid) for o in outputs}
        parameters = dict(params or {})
        parameters.update({n: {"src": s, "id": i} for n, (s, i) in inputs.items()})
        self.g.jobs[jid] = Job(
            jid,
            history,
            tool,
            "1.0.0",
            parameters,
            tuple(JobIO(n, s, i) for n, (s, i) in inputs.items()),
            tuple(JobIO(o, "hda", d) for o, d in made.items()),
        )
        return jid, made

    def mapped(
        self,
        tool: str,
        over: dict[str, int],
        outputs: list[str],
        *,
        sub: str | None = None,
        extra: dict[str, tuple[str, int]] | None = None,
        history: int = 1,
        makes: str | None = None,
    ) -> tuple[int, dict[str, int]]:
        """A mapped run over collection(s): one job per slot; an output collection per output."""
        group = next(self.ids)
        first = next(iter(over.values()))
        slots = self._slots(first, sub)
        job_ids: list[int] = []
        leaves: dict[str, dict[tuple[str, ...], Any]] = {o: {} for o in outputs}
        for path, _element in slots:
            jid = next(self.ids)
            job_ids.append(jid)
            out_ios = []
            for o in outputs:
                if makes:  # each job makes a collection of this type (a pair)
                    pair = {k: self.dataset(history, k, job=jid) for k in ("forward", "reverse")}
                    leaves[o][path] = pair
                    out_ios += [JobIO(o, "hda", d) for d in pair.values()]
                else:
                    d = self.dataset(history, f"{tool} {o}", job=jid)
                    leaves[o][path] = d
                    out_ios.append(JobIO(o, "hda", d))
            ins = [JobIO(n, "dce", self._slot_element(c, path)) for n, c in over.items()]
            ins += [JobIO(n, s, i) for n, (s, i) in (extra or {}).items()]
            params = {i.name: {"src": i.src, "id": i.id} for i in ins}
            self.g.jobs[jid] = Job(
                jid, history, tool, "1.0.0", params, tuple(ins), tuple(out_ios), group
            )
        self.g.mapped_runs[group] = MappedRun(
            group, tool, tuple(MapOver(n, c, sub) for n, c in over.items()), tuple(job_ids)
        )
        outer = self.g.collections[first].collection_type
        if sub:
            outer = outer[: -len(sub) - 1]
        ctype = f"{outer}:{makes}" if makes else outer
        made = {}
        for o in outputs:
            tree: dict[str, Any] = {}
            for path, value in leaves[o].items():
                node = tree
                for ident in path[:-1]:
                    node = node.setdefault(ident, {})
                node[path[-1]] = value
            made[o] = self.collection(ctype, tree, history, icj=group, output=o)
        return group, made

    def _slots(self, collection: int, sub: str | None) -> list[tuple[tuple[str, ...], int]]:
        ctype = self.g.collections[collection].collection_type
        depth = len(ctype.split(":")) - (len(sub.split(":")) if sub else 0)
        out = []

        def walk(parent: int | None, path: tuple[str, ...]) -> None:
            for e in (
                x
                for x in self.g.elements.values()
                if x.collection_id == collection and x.parent_id == parent
            ):
                here = (*path, e.identifier)
                if len(here) == depth:
                    out.append((here, e.id))
                else:
                    walk(e.id, here)

        walk(None, ())
        return out

    def _slot_element(self, collection: int, path: tuple[str, ...]) -> int:
        return self.element(collection, *path)


def extract(b: Builder, **kwargs: Any) -> dict[str, Any]:
    request = ExtractionRequest(
        workflow_name="extracted", **{k: tuple(v) for k, v in kwargs.items()}
    )
    document = build_workflow(b.g, request)
    from_galaxy_native(json.loads(json.dumps(document)), json_wrapper=False)  # must convert cleanly
    return document


def steps_of(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in doc["steps"].values() if s["type"] == kind]


def connection(step: dict[str, Any], name: str) -> dict[str, Any]:
    value = step["input_connections"][name]
    return value if isinstance(value, dict) else value[0]


def cat1_history(b: Builder, history: int = 1) -> tuple[int, int, int]:
    d1, d2 = b.dataset(history, "in1"), b.dataset(history, "in2")
    job, _ = b.run(
        "cat1", {"input1": ("hda", d1), "queries_0|input2": ("hda", d2)}, ["out_file1"], history
    )
    return d1, d2, job


def assert_cat1(doc: dict[str, Any]) -> None:
    assert doc["format-version"] == "0.1" and doc["a_galaxy_workflow"] == "true"
    assert len(doc["steps"]) == 3
    inputs = steps_of(doc, "data_input")
    (tool,) = steps_of(doc, "tool")
    assert tool["tool_id"] == "cat1"
    assert connection(tool, "input1")["id"] == inputs[0]["id"]
    assert connection(tool, "queries_0|input2")["id"] == inputs[1]["id"]
    state = json.loads(tool["tool_state"])
    assert state["input1"] is None and state["queries_0|input2"] is None  # data parameters nulled


def test_cat1_with_two_inputs() -> None:
    b = Builder()
    d1, d2, job = cat1_history(b)
    doc = extract(b, job_ids=[job], hda_ids=[d1, d2], dataset_names=["first", "second"])
    assert_cat1(doc)
    assert [s["label"] for s in steps_of(doc, "data_input")] == ["first", "second"]


def test_cat1_two_uploads_named_alike_without_names() -> None:
    """Galaxy's basic case: two pasted uploads (both "Pasted Entry") into cat1, no
    dataset_names. Both inputs keep the default name; only the first gets it as its
    label (labels are unique), as Galaxy does."""
    b = Builder()
    d1, d2 = b.dataset(1, "Pasted Entry"), b.dataset(1, "Pasted Entry")
    job, _ = b.run("cat1", {"input1": ("hda", d1), "queries_0|input2": ("hda", d2)}, ["out_file1"])
    doc = extract(b, job_ids=[job], hda_ids=[d1, d2])
    assert_cat1(doc)
    inputs = steps_of(doc, "data_input")
    assert [s["label"] for s in inputs] == ["Pasted Entry", None]
    assert [json.loads(s["tool_state"])["name"] for s in inputs] == ["Pasted Entry"] * 2


def test_a_default_name_never_takes_a_label_the_caller_gave() -> None:
    b = Builder()
    d1, d2 = b.dataset(1, "reads"), b.dataset(1, "genome")
    job, _ = b.run("cat1", {"input1": ("hda", d1), "queries_0|input2": ("hda", d2)}, ["out_file1"])
    # d1 (first in history order) is unnamed, d2 is named "reads" by the caller.
    doc = extract(b, job_ids=[job], hda_ids=[d2, d1], dataset_names=["reads"])
    assert [s["label"] for s in steps_of(doc, "data_input")] == [None, "reads"]


def test_copied_inputs_post_copy_ids() -> None:
    b = Builder()
    d1, d2, job = cat1_history(b, history=1)
    c1, c2 = b.copy_dataset(d1, 2), b.copy_dataset(d2, 2)
    assert_cat1(extract(b, job_ids=[job], hda_ids=[c1, c2]))


def test_copied_inputs_pre_copy_ids_without_history() -> None:
    b = Builder()
    d1, d2 = b.dataset(1, "in1"), b.dataset(1, "in2")
    c1, c2 = b.copy_dataset(d1, 2), b.copy_dataset(d2, 2)
    job, _ = b.run(
        "cat1", {"input1": ("hda", c1), "queries_0|input2": ("hda", c2)}, ["out_file1"], history=2
    )
    assert_cat1(extract(b, job_ids=[job], hda_ids=[d1, d2]))


def test_regression_9161_a_copy_pulls_in_no_foreign_jobs() -> None:
    b = Builder()
    _d1, _d2, old_job = cat1_history(b, history=1)
    produced = next(io.id for io in b.g.jobs[old_job].outputs)
    copy = b.copy_dataset(produced, 2)
    job, _ = b.run("sort1", {"input": ("hda", copy)}, ["out"], history=2)
    doc = extract(b, job_ids=[job], hda_ids=[copy])
    assert [s["tool_id"] for s in steps_of(doc, "tool")] == ["sort1"]
    assert len(doc["steps"]) == 2
    assert (
        connection(steps_of(doc, "tool")[0], "input")["id"] == steps_of(doc, "data_input")[0]["id"]
    )


def pair(b: Builder, history: int = 1) -> int:
    return b.collection(
        "paired", {"forward": b.dataset(history, "f"), "reverse": b.dataset(history, "r")}, history
    )


def test_paired_collection_mapped_through_random_lines_twice() -> None:
    b = Builder()
    hdca = pair(b)
    run1, out1 = b.mapped("random_lines1", {"input": hdca}, ["out_file1"])
    run2, _ = b.mapped("random_lines1", {"input": out1["out_file1"]}, ["out_file1"])
    doc = extract(b, hdca_ids=[hdca], implicit_collection_jobs_ids=[run1, run2])
    (collection_input,) = steps_of(doc, "data_collection_input")
    assert json.loads(collection_input["tool_state"])["collection_type"] == "paired"
    first, second = steps_of(doc, "tool")
    assert connection(first, "input")["id"] == collection_input["id"]
    assert connection(second, "input") == {"id": first["id"], "output_name": "out_file1"}


def test_reduction_after_a_mapping() -> None:
    b = Builder()
    hdca = pair(b)
    run1, out1 = b.mapped("random_lines1", {"input": hdca}, ["out_file1"])
    implicit = out1["out_file1"]
    reduce_job, _ = b.run(
        "multi_data_param", {"f1": ("hdca", implicit), "f2": ("hdca", implicit)}, ["out1"]
    )
    doc = extract(b, hdca_ids=[hdca], implicit_collection_jobs_ids=[run1], job_ids=[reduce_job])
    assert len(doc["steps"]) == 3
    mapping, reduction = steps_of(doc, "tool")
    assert mapping["tool_id"] == "random_lines1"
    assert connection(reduction, "f1")["id"] == mapping["id"]
    assert connection(reduction, "f2")["id"] == mapping["id"]


def test_paired_input_to_a_collection_tool() -> None:
    b = Builder()
    hdca = pair(b)
    job, _ = b.run("collection_paired_test", {"f1": ("hdca", hdca)}, ["out1"])
    doc = extract(b, hdca_ids=[hdca], job_ids=[job])
    assert len(doc["steps"]) == 2
    (tool,) = steps_of(doc, "tool")
    assert connection(tool, "f1")["id"] == steps_of(doc, "data_collection_input")[0]["id"]


def list_paired(b: Builder) -> int:
    return b.collection(
        "list:paired",
        {
            s: {"forward": b.dataset(1, f"{s}f"), "reverse": b.dataset(1, f"{s}r")}
            for s in ("s1", "s2")
        },
    )


def test_list_paired_subcollection_mapping() -> None:
    b = Builder()
    lp = list_paired(b)
    noop, noop_out = b.mapped("cat1", {"input1": lp}, ["out_file1"])
    assert b.g.collections[noop_out["out_file1"]].collection_type == "list:paired"
    cat, _ = b.mapped(
        "cat_collection", {"input1": noop_out["out_file1"]}, ["out_file1"], sub="paired"
    )
    doc = extract(b, hdca_ids=[lp], implicit_collection_jobs_ids=[noop, cat])
    assert len(doc["steps"]) == 3
    (collection_input,) = steps_of(doc, "data_collection_input")
    assert json.loads(collection_input["tool_state"])["collection_type"] == "list:paired"
    first, second = steps_of(doc, "tool")
    assert {first["tool_id"], second["tool_id"]} == {"cat1", "cat_collection"}
    assert connection(second, "input1") == {"id": first["id"], "output_name": "out_file1"}


def test_output_collection_split_then_cat_list() -> None:
    b = Builder()
    d1, d2, cat = cat1_history(b)
    cat_out = next(io.id for io in b.g.jobs[cat].outputs)
    split_job = next(b.ids)
    split = b.collection(
        "list",
        {"samp1": b.dataset(1, "a", job=split_job), "samp2": b.dataset(1, "b", job=split_job)},
        job=split_job,
    )
    b.g.jobs[split_job] = Job(
        split_job,
        1,
        "collection_split_on_column",
        "1.0.0",
        {"input1": {"src": "hda", "id": cat_out}},
        (JobIO("input1", "hda", cat_out),),
        (JobIO("split_output", "hdca", split),),
    )
    cat_list, _ = b.run("cat_list", {"input1": ("hdca", split)}, ["out_file1"])
    doc = extract(b, hda_ids=[d1, d2], job_ids=[cat, split_job, cat_list])
    assert len(doc["steps"]) == 5
    tools = steps_of(doc, "tool")
    assert [t["tool_id"] for t in tools] == ["cat1", "collection_split_on_column", "cat_list"]
    assert connection(tools[1], "input1")["id"] == tools[0]["id"]
    assert connection(tools[2], "input1") == {"id": tools[1]["id"], "output_name": "split_output"}


def test_mapped_output_collections_five_steps() -> None:
    b = Builder()
    hdca = b.collection("list", {"samp1": b.dataset(1, "1"), "samp2": b.dataset(1, "2")})
    cat, cat_out = b.mapped("cat1", {"input1": hdca}, ["out_file1"])
    pairs, pair_out = b.mapped(
        "collection_creates_pair",
        {"input1": cat_out["out_file1"]},
        ["paired_output"],
        makes="paired",
    )
    assert b.g.collections[pair_out["paired_output"]].collection_type == "list:paired"
    cat_pairs, cat_pairs_out = b.mapped(
        "cat_collection", {"input1": pair_out["paired_output"]}, ["out_file1"], sub="paired"
    )
    cat_list, _ = b.run("cat_list", {"input1": ("hdca", cat_pairs_out["out_file1"])}, ["out_file1"])
    doc = extract(
        b, hdca_ids=[hdca], implicit_collection_jobs_ids=[cat, pairs, cat_pairs], job_ids=[cat_list]
    )
    assert len(doc["steps"]) == 5
    tools = steps_of(doc, "tool")
    assert [t["tool_id"] for t in tools] == [
        "cat1",
        "collection_creates_pair",
        "cat_collection",
        "cat_list",
    ]
    for upstream, downstream in itertools.pairwise(tools):
        assert connection(downstream, "input1")["id"] == upstream["id"]


def test_collection_element_as_data_parameter() -> None:
    b = Builder()
    hdca = pair(b)
    forward = b.element(hdca, "forward")
    job = b.job("cat1", {"input1": ("dce", forward)})
    forward_dataset = b.g.elements[forward].dataset_id
    assert forward_dataset is not None
    doc = extract(b, hda_ids=[forward_dataset], job_ids=[job])
    (tool,) = steps_of(doc, "tool")
    assert connection(tool, "input1")["id"] == steps_of(doc, "data_input")[0]["id"]


def test_input_order_does_not_change_the_workflow() -> None:
    b = Builder()
    d1, d2, job = cat1_history(b)
    one = extract(b, job_ids=[job], hda_ids=[d1, d2])
    other = extract(b, job_ids=[job], hda_ids=[d2, d1])
    assert json.dumps(one["steps"], sort_keys=True) == json.dumps(other["steps"], sort_keys=True)


def test_workflow_outputs_from_labels() -> None:
    b = Builder()
    d1, d2, job = cat1_history(b)
    out = next(io.id for io in b.g.jobs[job].outputs)
    doc = extract(
        b, job_ids=[job], hda_ids=[d1, d2], output_labels=[OutputLabel(out, "hda", "joined")]
    )
    (tool,) = steps_of(doc, "tool")
    assert [(w["output_name"], w["label"]) for w in tool["workflow_outputs"]] == [
        ("out_file1", "joined")
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({}, InvalidRequest, "at least one"),
        ({"job_ids": [999]}, NotFound, "job 999"),
        ({"hda_ids": [999]}, NotFound, "dataset 999"),
        ({"job_ids": ["JOB", "JOB"]}, InvalidRequest, "more than once"),
        ({"hda_ids": ["D1"], "dataset_names": [" "]}, InvalidRequest, "blank"),
        ({"hda_ids": ["D1", "D2"], "dataset_names": ["x", "x"]}, InvalidRequest, "'x'"),
        (
            {
                "job_ids": ["JOB"],
                "output_labels": [OutputLabel(1, "hda", "a"), OutputLabel(2, "hda", "a")],
            },
            InvalidRequest,
            "'a'",
        ),
        (
            {"job_ids": ["JOB"], "output_labels": [OutputLabel(999, "hda", "orphan")]},
            InvalidRequest,
            "orphan",
        ),
        ({"job_ids": ["MEMBER"]}, InvalidRequest, "mapped run"),
    ],
)
def test_rejections(kwargs: dict[str, Any], error: type[Exception], fragment: str) -> None:
    b = Builder()
    d1, d2, job = cat1_history(b)
    hdca = pair(b)
    group, _ = b.mapped("random_lines1", {"input": hdca}, ["out"])
    member = b.g.mapped_runs[group].job_ids[0]
    names = {"JOB": job, "D1": d1, "D2": d2, "MEMBER": member}
    resolved = {
        k: [names.get(v, v) if isinstance(v, str) and k != "dataset_names" else v for v in vs]
        for k, vs in kwargs.items()
    }
    with pytest.raises(error, match=fragment):
        extract(b, **resolved)
