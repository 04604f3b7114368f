"""The rules of collections and mapped runs, pure: structures in, plans out. Nothing
here reads or writes the database; waybill_shared.provenance.recording loads what a
plan needs, and writes what it plans.

- A collection's elements must fit its type (`check_structure`): a `paired` level
  holds exactly `forward` and `reverse`, every level holds at least one element, and
  identifiers are unique within a level.
- A run mapped over collections has one job per *slot*: an element at the depth of
  the structure mapped over (the whole type, or its outer part with
  `subcollection_type`, so `list:paired` by `paired` maps over the list's pairs).
  Every input mapped over must have the same slots.
- The run's output collections are shaped like that structure (deeper when each job
  makes a collection of its own); each leaf belongs to the job of its slot, and every
  slot gets elements.

A plan of elements is yielded in the order it is written (a parent before its
children), and a fault is raised where the walk meets it, so the recording refuses a
request at the same point as when the rules were woven through it."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from waybill_shared.errors import Invalid
from waybill_shared.provenance.schemas import ElementIdentifier, OutputElement, OutputLeaf

# An element's identifiers from the top of its collection: ("s1", "forward").
Path = tuple[str, ...]


def check_structure(collection_type: str, identifiers: Sequence[str], path: str) -> None:
    head = collection_type.split(":", 1)[0]
    if head == "paired" and list(identifiers) != ["forward", "reverse"]:
        raise Invalid(
            f"{path}: a paired collection has exactly the elements 'forward' and 'reverse', "
            f"got {list(identifiers)}"
        )
    if not identifiers:
        raise Invalid(f"{path}: a collection needs at least one element")
    if len(set(identifiers)) != len(identifiers):
        raise Invalid(f"{path}: element identifiers must be unique")


# --- what is written -------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedNode:
    """An element that holds a collection of `child_type`."""

    path: Path
    index: int
    child_type: str


@dataclass(frozen=True)
class PlannedDataset:
    """An element that is an existing dataset (a collection built from datasets)."""

    path: Path
    index: int
    dataset_id: int


@dataclass(frozen=True)
class PlannedOutput:
    """An element that is a new (hidden) dataset, made by the job of `slot`, from a
    stored file."""

    path: Path
    index: int
    file_id: int
    slot: Path


# --- building a collection from datasets ----------------------------------------------


def collection_elements(
    elements: Sequence[ElementIdentifier], collection_type: str, name: str
) -> Iterator[PlannedNode | PlannedDataset]:
    """The elements of a new collection of `collection_type`."""
    yield from _identifier_level(elements, collection_type, (), name)


def _identifier_level(
    level: Sequence[ElementIdentifier], ctype: str, path: Path, where_: str
) -> Iterator[PlannedNode | PlannedDataset]:
    check_structure(ctype, [e.name for e in level], where_)
    _, _, rest = ctype.partition(":")
    for index, spec in enumerate(level):
        here, where = (*path, spec.name), f"{where_}/{spec.name}"
        if rest:
            if spec.src != "new_collection" or not spec.element_identifiers:
                raise Invalid(f"{where}: a {ctype} holds {rest} collections (src new_collection)")
            if spec.collection_type not in (None, rest):
                raise Invalid(
                    f"{where}: collection_type {spec.collection_type!r}, expected {rest!r}"
                )
            yield PlannedNode(here, index, rest)
            yield from _identifier_level(spec.element_identifiers, rest, here, where)
        else:
            if spec.src != "hda" or spec.id is None:
                raise Invalid(f"{where}: a {ctype} holds datasets (src hda with an id)")
            yield PlannedDataset(here, index, spec.id)


# --- mapping over collections ---------------------------------------------------------


@dataclass(frozen=True)
class StoredElement:
    """An element of a collection mapped over, as stored."""

    id: int
    parent_id: int | None
    identifier: str
    index: int


@dataclass(frozen=True)
class Slots:
    """The elements a run maps over, by path, and the type of the implicit output
    collections (the outer structure)."""

    elements: dict[Path, StoredElement]
    output_type: str


def slots(
    collection_type: str, elements: Sequence[StoredElement], subcollection_type: str | None
) -> Slots:
    """`elements` are a collection's, parents before children (ordered by id)."""
    paths: dict[int, Path] = {}
    for element in elements:
        paths[element.id] = (*paths.get(element.parent_id or 0, ()), element.identifier)
    if subcollection_type is None:
        depth = len(collection_type.split(":"))
        output_type = collection_type
    else:
        if (
            not collection_type.endswith(subcollection_type)
            or collection_type == subcollection_type
        ):
            raise Invalid(
                f"cannot map over {subcollection_type!r} sub-collections of a "
                f"{collection_type!r} collection"
            )
        depth = len(collection_type.split(":")) - len(subcollection_type.split(":"))
        output_type = collection_type[: -len(subcollection_type) - 1]
    return Slots({paths[e.id]: e for e in elements if len(paths[e.id]) == depth}, output_type)


@dataclass(frozen=True)
class PlannedJob:
    """One job of a mapped run: its slot, and the element of each input mapped over."""

    slot: Path
    inputs: tuple[tuple[str, int], ...]  # (input name, element id)


@dataclass
class MappedStructure:
    """The structure a run maps over, input by input (`add` refuses an input whose
    slots differ from the others')."""

    output_type: str = ""
    _by_slot: dict[Path, list[tuple[str, StoredElement]]] = field(default_factory=dict)

    def add(self, name: str, input_slots: Slots) -> None:
        if self._by_slot and set(input_slots.elements) != set(self._by_slot):
            raise Invalid(f"map_over {name!r}: its structure differs from the other mapped inputs")
        self.output_type = input_slots.output_type
        for path, element in input_slots.elements.items():
            self._by_slot.setdefault(path, []).append((name, element))

    @property
    def slots(self) -> set[Path]:
        return set(self._by_slot)

    @property
    def depth(self) -> int:
        return len(self.output_type.split(":"))

    def jobs(self) -> list[PlannedJob]:
        """One job per slot, in the order of the elements mapped over."""
        order = sorted(self._by_slot, key=lambda p: [e.index for _, e in self._by_slot[p]])
        return [
            PlannedJob(slot, tuple((name, e.id) for name, e in self._by_slot[slot]))
            for slot in order
        ]


def inner_type(elements: Sequence[OutputElement], depth: int) -> str:
    """The collection type below `depth` levels of an element tree ("" when the tree
    is exactly that deep): paired when the identifiers are forward and reverse."""
    level = list(elements)
    for _ in range(depth):
        nodes = [e for e in level if not isinstance(e, OutputLeaf)]
        if not nodes:
            return ""
        level = list(nodes[0].elements)
    parts: list[str] = []
    while level:
        ids = [e.identifier for e in level]
        parts.append("paired" if ids == ["forward", "reverse"] else "list")
        nodes = [e for e in level if not isinstance(e, OutputLeaf)]
        level = list(nodes[0].elements) if nodes else []
    return ":" + ":".join(parts)


def mapped_output_type(
    name: str, elements: Sequence[OutputElement] | None, structure: MappedStructure
) -> str:
    """The type of a mapped run's implicit output collection: the structure mapped
    over, deeper when each job makes a collection itself (a pair per element of a
    list)."""
    if elements is None:
        raise Invalid(f"output {name!r} of a mapped run: give its elements")
    return structure.output_type + inner_type(elements, structure.depth)


def mapped_output_elements(
    name: str, elements: Sequence[OutputElement], collection_type: str, structure: MappedStructure
) -> Iterator[PlannedNode | PlannedOutput]:
    """The elements of a mapped run's output `name`: every leaf in a slot mapped over,
    every slot with elements."""
    slots_made: set[Path] = set()
    mapped = structure.slots
    for planned in output_elements(
        elements, collection_type, label=name, depth=structure.depth, slots=mapped
    ):
        if isinstance(planned, PlannedOutput):
            slots_made.add(planned.slot)
        yield planned
    if slots_made != mapped:
        raise Invalid(f"output {name!r}: its elements do not match the structure mapped over")


def output_elements(
    elements: Sequence[OutputElement],
    collection_type: str,
    *,
    label: str,
    depth: int = 0,
    slots: Collection[Path] = ((),),
) -> Iterator[PlannedNode | PlannedOutput]:
    """The element tree of an output collection; each leaf is a new dataset made by
    the job of its slot (its first `depth` identifiers, which must be one of `slots`;
    a plain job's collection has depth 0, one slot)."""
    yield from _output_level(elements, collection_type, (), label, depth, slots)


def _output_level(
    elements: Sequence[OutputElement],
    collection_type: str,
    path: Path,
    label: str,
    depth: int,
    slots: Collection[Path],
) -> Iterator[PlannedNode | PlannedOutput]:
    check_structure(collection_type, [e.identifier for e in elements], "/".join((label, *path)))
    _, _, rest = collection_type.partition(":")
    for index, spec in enumerate(elements):
        here = (*path, spec.identifier)
        if isinstance(spec, OutputLeaf):
            if rest:
                raise Invalid(f"{label}/{'/'.join(here)}: expected {rest} elements, got a dataset")
            slot = here[:depth]
            if slot not in slots:
                raise Invalid(
                    f"output {label!r}: element {'/'.join(slot)} is not in the structure mapped over"
                )
            yield PlannedOutput(here, index, spec.file_id, slot)
        else:
            if not rest:
                raise Invalid(f"{label}/{'/'.join(here)}: expected a dataset, got nested elements")
            yield PlannedNode(here, index, rest)
            yield from _output_level(spec.elements, rest, here, label, depth, slots)
