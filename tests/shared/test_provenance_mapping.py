"""The rules of collections and mapped runs (waybill_shared.provenance.mapping), pure:
a structure in, a plan or the refusal out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from pydantic import TypeAdapter

from waybill_shared.errors import Invalid
from waybill_shared.provenance import mapping
from waybill_shared.provenance.mapping import (
    MappedStructure,
    PlannedDataset,
    PlannedJob,
    PlannedNode,
    PlannedOutput,
    Slots,
    StoredElement,
)
from waybill_shared.provenance.schemas import ElementIdentifier, OutputElement

OUTPUTS = TypeAdapter(list[OutputElement])
IDENTIFIERS = TypeAdapter(list[ElementIdentifier])


def leaves(*names: str, first_file: int = 1) -> list[dict[str, Any]]:
    return [{"identifier": n, "file_id": first_file + i} for i, n in enumerate(names)]


def node(identifier: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"identifier": identifier, "elements": elements}


PAIR = leaves("forward", "reverse")


def stored(*rows: tuple[int, int | None, str, int]) -> list[StoredElement]:
    return [StoredElement(*row) for row in rows]


# A list:paired collection: s1 (1) and s2 (4), each a pair.
LIST_PAIRED = stored(
    (1, None, "s1", 0),
    (2, 1, "forward", 0),
    (3, 1, "reverse", 1),
    (4, None, "s2", 1),
    (5, 4, "forward", 0),
    (6, 4, "reverse", 1),
)
LIST = stored((7, None, "a", 0), (8, None, "b", 1))


@pytest.mark.parametrize(
    ("collection_type", "identifiers", "refusal"),
    [
        ("list", ["a", "b"], None),
        ("paired", ["forward", "reverse"], None),
        ("paired:list", ["forward", "reverse"], None),
        ("list:paired", ["forward", "reverse"], None),
        ("paired", ["reverse", "forward"], "exactly the elements 'forward' and 'reverse'"),
        ("paired", ["forward"], "exactly the elements 'forward' and 'reverse'"),
        ("list", [], "at least one element"),
        ("list", ["a", "a"], "must be unique"),
    ],
)
def test_check_structure(collection_type: str, identifiers: list[str], refusal: str | None) -> None:
    if refusal is None:
        mapping.check_structure(collection_type, identifiers, "c")
    else:
        with pytest.raises(Invalid, match=refusal):
            mapping.check_structure(collection_type, identifiers, "c")


@pytest.mark.parametrize(
    ("collection_type", "elements", "subcollection_type", "slots", "output_type"),
    [
        ("list", LIST, None, {("a",): 7, ("b",): 8}, "list"),
        (
            "list:paired",
            LIST_PAIRED,
            None,
            {
                ("s1", "forward"): 2,
                ("s1", "reverse"): 3,
                ("s2", "forward"): 5,
                ("s2", "reverse"): 6,
            },
            "list:paired",
        ),
        ("list:paired", LIST_PAIRED, "paired", {("s1",): 1, ("s2",): 4}, "list"),
    ],
)
def test_slots(
    collection_type: str,
    elements: list[StoredElement],
    subcollection_type: str | None,
    slots: dict[tuple[str, ...], int],
    output_type: str,
) -> None:
    found = mapping.slots(collection_type, elements, subcollection_type)
    assert {path: e.id for path, e in found.elements.items()} == slots
    assert found.output_type == output_type


@pytest.mark.parametrize(
    ("collection_type", "subcollection_type"),
    [("list:paired", "list"), ("paired", "paired"), ("list", "paired")],
)
def test_slots_refuse_a_subcollection_type_the_collection_does_not_end_with(
    collection_type: str, subcollection_type: str
) -> None:
    with pytest.raises(Invalid, match=f"cannot map over {subcollection_type!r}"):
        mapping.slots(collection_type, LIST_PAIRED, subcollection_type)


def test_one_job_per_slot_in_element_order_with_every_input_mapped_over() -> None:
    structure = MappedStructure()
    # Stored in the other order: the jobs follow the element indexes.
    structure.add("f1", Slots({("b",): LIST[1], ("a",): LIST[0]}, "list"))
    structure.add("f2", mapping.slots("list", stored((9, None, "a", 0), (10, None, "b", 1)), None))
    assert structure.depth == 1 and structure.slots == {("a",), ("b",)}
    assert structure.jobs() == [
        PlannedJob(("a",), (("f1", 7), ("f2", 9))),
        PlannedJob(("b",), (("f1", 8), ("f2", 10))),
    ]


def test_inputs_mapped_over_must_have_the_same_structure() -> None:
    structure = MappedStructure()
    structure.add("f1", mapping.slots("list", LIST, None))
    with pytest.raises(Invalid, match="map_over 'f2': its structure differs"):
        structure.add("f2", mapping.slots("list:paired", LIST_PAIRED, "paired"))


@pytest.mark.parametrize(
    ("elements", "depth", "inner"),
    [
        (leaves("a", "b"), 1, ""),
        ([node("a", PAIR), node("b", PAIR)], 1, ":paired"),
        ([node("a", leaves("x", "y"))], 1, ":list"),
        ([node("a", [node("x", PAIR)])], 1, ":list:paired"),
        ([node("s1", PAIR)], 2, ""),
        (leaves("a"), 2, ""),
        (PAIR, 0, ":paired"),
    ],
)
def test_inner_type(elements: list[dict[str, Any]], depth: int, inner: str) -> None:
    assert mapping.inner_type(OUTPUTS.validate_python(elements), depth) == inner


def list_structure() -> MappedStructure:
    structure = MappedStructure()
    structure.add("f1", mapping.slots("list", LIST, None))
    return structure


def plan(elements: list[dict[str, Any]], collection_type: str | None = None) -> list[Any]:
    structure = list_structure()
    parsed = OUTPUTS.validate_python(elements)
    full_type = collection_type or mapping.mapped_output_type("out", parsed, structure)
    return list(mapping.mapped_output_elements("out", parsed, full_type, structure))


def test_a_mapped_output_follows_the_structure_mapped_over() -> None:
    assert plan(leaves("a", "b", first_file=20)) == [
        PlannedOutput(("a",), 0, 20, ("a",)),
        PlannedOutput(("b",), 1, 21, ("b",)),
    ]


def test_a_mapped_output_one_level_deeper_when_each_job_makes_a_pair() -> None:
    elements = [node("a", leaves("forward", "reverse", first_file=30)), node("b", PAIR)]
    assert mapping.mapped_output_type(
        "out", OUTPUTS.validate_python(elements), list_structure()
    ) == ("list:paired")
    assert plan(elements) == [
        PlannedNode(("a",), 0, "paired"),
        PlannedOutput(("a", "forward"), 0, 30, ("a",)),
        PlannedOutput(("a", "reverse"), 1, 31, ("a",)),
        PlannedNode(("b",), 1, "paired"),
        PlannedOutput(("b", "forward"), 0, 1, ("b",)),
        PlannedOutput(("b", "reverse"), 1, 2, ("b",)),
    ]


@pytest.mark.parametrize(
    ("elements", "collection_type", "refusal"),
    [
        (leaves("a", "zzz"), None, "element zzz is not in the structure mapped over"),
        (leaves("a"), None, "its elements do not match the structure mapped over"),
        (leaves("a", "a"), None, "element identifiers must be unique"),
        ([node("a", PAIR), *leaves("b")], "list:paired", "out/b: expected paired elements"),
        ([node("a", PAIR), node("b", PAIR)], "list", "out/a: expected a dataset, got nested"),
        ([node("a", leaves("x")), node("b", leaves("x"))], "list:paired", "out/a: a paired"),
    ],
)
def test_a_mapped_output_that_does_not_fit_is_refused(
    elements: list[dict[str, Any]], collection_type: str | None, refusal: str
) -> None:
    with pytest.raises(Invalid, match=refusal):
        plan(elements, collection_type)


def test_a_mapped_output_needs_its_elements() -> None:
    with pytest.raises(Invalid, match="output 'out' of a mapped run: give its elements"):
        mapping.mapped_output_type("out", None, list_structure())


def test_the_refusal_comes_where_the_walk_meets_it() -> None:
    """What comes before a fault is planned (and written, then rolled back), so a
    request with two faults is refused for the first one met, as it always was."""
    parsed = OUTPUTS.validate_python(leaves("a", "zzz", "b"))
    walk = mapping.mapped_output_elements("out", parsed, "list", list_structure())
    assert next(walk) == PlannedOutput(("a",), 0, 1, ("a",))
    with pytest.raises(Invalid, match="zzz"):
        next(walk)


def test_a_plain_jobs_output_collection_is_one_slot() -> None:
    elements = OUTPUTS.validate_python([node("x", PAIR)])
    assert list(mapping.output_elements(elements, "list:paired", label="split")) == [
        PlannedNode(("x",), 0, "paired"),
        PlannedOutput(("x", "forward"), 0, 1, ()),
        PlannedOutput(("x", "reverse"), 1, 2, ()),
    ]


def identifiers(*items: dict[str, Any]) -> list[ElementIdentifier]:
    return IDENTIFIERS.validate_python(list(items))


def hda(name: str, id_: int) -> dict[str, Any]:
    return {"name": name, "src": "hda", "id": id_}


def nested(name: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "src": "new_collection", "element_identifiers": list(items), **fields}


@pytest.mark.parametrize(
    ("collection_type", "items", "planned"),
    [
        (
            "list",
            [hda("a", 5), hda("b", 6)],
            [PlannedDataset(("a",), 0, 5), PlannedDataset(("b",), 1, 6)],
        ),
        (
            "paired",
            [hda("forward", 5), hda("reverse", 6)],
            [PlannedDataset(("forward",), 0, 5), PlannedDataset(("reverse",), 1, 6)],
        ),
        (
            "list:paired",
            [nested("s1", hda("forward", 5), hda("reverse", 6), collection_type="paired")],
            [
                PlannedNode(("s1",), 0, "paired"),
                PlannedDataset(("s1", "forward"), 0, 5),
                PlannedDataset(("s1", "reverse"), 1, 6),
            ],
        ),
    ],
)
def test_collection_elements(
    collection_type: str, items: list[dict[str, Any]], planned: list[Any]
) -> None:
    assert list(mapping.collection_elements(identifiers(*items), collection_type, "c")) == planned


@pytest.mark.parametrize(
    ("collection_type", "items", "refusal"),
    [
        ("list:paired", [hda("s1", 5)], "c/s1: a list:paired holds paired collections"),
        (
            "list:paired",
            [nested("s1", hda("a", 5), collection_type="list")],
            "c/s1: collection_type 'list', expected 'paired'",
        ),
        ("list", [nested("s1", hda("a", 5))], "c/s1: a list holds datasets"),
        ("list:paired", [nested("s1", hda("a", 5))], "c/s1: a paired collection has exactly"),
        ("paired", [hda("forward", 5)], "c: a paired collection has exactly"),
    ],
)
def test_collection_elements_that_do_not_fit_are_refused(
    collection_type: str, items: Iterable[dict[str, Any]], refusal: str
) -> None:
    with pytest.raises(Invalid, match=refusal):
        list(mapping.collection_elements(identifiers(*items), collection_type, "c"))
