"""Recording provenance: datasets from files, copies, collections, and tool runs
(plain, making collections, or mapped over collections). Functions add rows to the
caller's session; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.clock import utcnow
from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    History,
    ImplicitCollectionJobs,
    Job,
    JobInput,
    JobOutput,
    User,
)
from waybill_shared.errors import Invalid
from waybill_shared.provenance import access
from waybill_shared.provenance.schemas import (
    ElementIdentifier,
    JobRecordRequest,
    NewContent,
    OutputElement,
    OutputLeaf,
)

EXTENSION_BY_FORMAT = {
    "csv": "csv",
    "tsv": "tabular",
    "json": "json",
    "jsonl": "json",
    "parquet": "parquet",
    "excel": "xlsx",
    "hdf5": "h5",
    "netcdf": "netcdf",
    "arrow": "arrow",
    "orc": "orc",
    "avro": "avro",
    "text": "txt",
    "gzip": "gz",
    "zip": "zip",
    "binary": "data",
}


def touch(history: History) -> None:
    """Every change of contents moves the content version (export reuse keys on it)."""
    history.content_version += 1
    history.update_time = utcnow()


def next_hid(history: History) -> int:
    history.hid_counter += 1
    return history.hid_counter


async def dataset_from_file(
    session: AsyncSession,
    user: User,
    history: History,
    *,
    file_id: int,
    name: str | None = None,
    extension: str | None = None,
    visible: bool = True,
    creating_job: Job | None = None,
) -> Dataset:
    source = await access.file(session, user, file_id)
    dataset = Dataset(
        history_id=history.id,
        hid=next_hid(history),
        name=name or source.filename,
        extension=extension or EXTENSION_BY_FORMAT.get(source.format, "data"),
        file_id=source.id,
        visible=visible,
        creating_job_id=creating_job.id if creating_job else None,
        state=creating_job.state if creating_job else "ok",
    )
    session.add(dataset)
    touch(history)
    await session.flush()
    return dataset


async def copy_dataset(
    session: AsyncSession, user: User, history: History, *, dataset_id: int
) -> Dataset:
    source = await access.dataset(session, user, dataset_id)
    copy = Dataset(
        history_id=history.id,
        hid=next_hid(history),
        name=source.name,
        extension=source.extension,
        state=source.state,
        file_id=source.file_id,
        copied_from_id=source.id,
        creating_job_id=None,
    )
    session.add(copy)
    touch(history)
    await session.flush()
    return copy


async def copy_collection(
    session: AsyncSession, user: User, history: History, *, collection_id: int
) -> Collection:
    """A new HDCA (copied_from the source) whose elements point at the same datasets."""
    source = await access.collection(session, user, collection_id)
    copy = Collection(
        history_id=history.id,
        hid=next_hid(history),
        name=source.name,
        collection_type=source.collection_type,
        state=source.state,
        copied_from_id=source.id,
    )
    session.add(copy)
    await session.flush()
    elements = (
        await session.execute(
            select(CollectionElement)
            .where(CollectionElement.collection_id == source.id)
            .order_by(CollectionElement.id)
        )
    ).scalars()
    new_ids: dict[int, int] = {}
    for element in elements:  # ordered by id: parents before children
        clone = CollectionElement(
            collection_id=copy.id,
            parent_element_id=new_ids.get(element.parent_element_id or 0),
            element_index=element.element_index,
            identifier=element.identifier,
            dataset_id=element.dataset_id,
            child_collection_type=element.child_collection_type,
        )
        session.add(clone)
        await session.flush()
        new_ids[element.id] = clone.id
    touch(history)
    return copy


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


async def new_collection(
    session: AsyncSession,
    user: User,
    history: History,
    *,
    collection_type: str,
    name: str,
    element_identifiers: list[ElementIdentifier],
) -> Collection:
    collection = Collection(
        history_id=history.id, hid=next_hid(history), name=name, collection_type=collection_type
    )
    session.add(collection)
    await session.flush()

    async def add(
        level: list[ElementIdentifier], ctype: str, parent: int | None, path: str
    ) -> None:
        check_structure(ctype, [e.name for e in level], path)
        _, _, rest = ctype.partition(":")
        for index, spec in enumerate(level):
            where = f"{path}/{spec.name}"
            if rest:
                if spec.src != "new_collection" or not spec.element_identifiers:
                    raise Invalid(
                        f"{where}: a {ctype} holds {rest} collections (src new_collection)"
                    )
                if spec.collection_type not in (None, rest):
                    raise Invalid(
                        f"{where}: collection_type {spec.collection_type!r}, expected {rest!r}"
                    )
                node = CollectionElement(
                    collection_id=collection.id,
                    parent_element_id=parent,
                    element_index=index,
                    identifier=spec.name,
                    child_collection_type=rest,
                )
                session.add(node)
                await session.flush()
                await add(spec.element_identifiers, rest, node.id, where)
            else:
                if spec.src != "hda" or spec.id is None:
                    raise Invalid(f"{where}: a {ctype} holds datasets (src hda with an id)")
                dataset = await access.dataset(session, user, spec.id)
                session.add(
                    CollectionElement(
                        collection_id=collection.id,
                        parent_element_id=parent,
                        element_index=index,
                        identifier=spec.name,
                        dataset_id=dataset.id,
                    )
                )
        await session.flush()

    await add(element_identifiers, collection_type, None, name)
    touch(history)
    return collection


async def add_content(
    session: AsyncSession, user: User, *, history_id: int, body: NewContent
) -> Dataset | Collection:
    history = await access.history(session, user, history_id, lock=True)
    if body.type == "dataset_collection":
        if body.collection_type is None or not body.element_identifiers:
            raise Invalid("a dataset_collection needs collection_type and element_identifiers")
        return await new_collection(
            session,
            user,
            history,
            collection_type=body.collection_type,
            name=body.name or body.collection_type,
            element_identifiers=body.element_identifiers,
        )
    if body.src is None or body.id is None:
        raise Invalid("give either src (file, hda, hdca) and id, or type dataset_collection")
    if body.src == "file":
        return await dataset_from_file(
            session,
            user,
            history,
            file_id=body.id,
            name=body.name,
            extension=body.extension,
            visible=body.visible,
        )
    if body.src == "hda":
        return await copy_dataset(session, user, history, dataset_id=body.id)
    return await copy_collection(session, user, history, collection_id=body.id)


# --- jobs ------------------------------------------------------------------------------


@dataclass
class RecordedRun:
    jobs: list[Job] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    output_collections: list[Collection] = field(default_factory=list)
    implicit_collection_jobs: ImplicitCollectionJobs | None = None


async def _check_inputs(session: AsyncSession, user: User, req: JobRecordRequest) -> None:
    for ref in req.inputs:
        if ref.src == "hda":
            await access.dataset(session, user, ref.id)
        elif ref.src == "hdca":
            await access.collection(session, user, ref.id)
        else:
            await access.element(session, user, ref.id)


def _new_job(req: JobRecordRequest, history: History, user: User, icj: int | None = None) -> Job:
    return Job(
        history_id=history.id,
        owner_id=history.owner_id if user.is_admin else user.id,
        tool_id=req.tool_id,
        tool_version=req.tool_version,
        parameters=req.parameters,
        state=req.state,
        implicit_collection_jobs_id=icj,
    )


async def record_job(session: AsyncSession, user: User, req: JobRecordRequest) -> RecordedRun:
    history = await access.history(session, user, req.history_id, lock=True)
    await _check_inputs(session, user, req)
    if req.map_over:
        return await _record_mapped_run(session, user, history, req)
    run = RecordedRun()
    job = _new_job(req, history, user)
    session.add(job)
    await session.flush()
    run.jobs.append(job)
    for ref in req.inputs:
        session.add(JobInput(job_id=job.id, name=ref.name, src=ref.src, ref_id=ref.id))
    for out in req.outputs:
        if out.elements is not None or out.file_id is None:
            raise Invalid(f"output {out.name!r}: give file_id (elements only describe mapped runs)")
        dataset = await dataset_from_file(
            session,
            user,
            history,
            file_id=out.file_id,
            name=out.dataset_name or out.name,
            extension=out.extension,
            creating_job=job,
        )
        session.add(JobOutput(job_id=job.id, name=out.name, src="hda", ref_id=dataset.id))
        run.outputs.append(dataset)
    for spec in req.output_collections:
        collection = Collection(
            history_id=history.id,
            hid=next_hid(history),
            name=spec.collection_name or spec.name,
            collection_type=spec.collection_type,
            creating_job_id=job.id,
            state=req.state,
        )
        session.add(collection)
        await session.flush()
        await _output_elements(
            session,
            user,
            history,
            collection,
            spec.elements,
            spec.collection_type,
            job_for=lambda _path: job,
            path=(),
            parent=None,
            label=spec.name,
        )
        session.add(JobOutput(job_id=job.id, name=spec.name, src="hdca", ref_id=collection.id))
        run.output_collections.append(collection)
    touch(history)
    await session.flush()
    return run


async def _output_elements(
    session: AsyncSession,
    user: User,
    history: History,
    collection: Collection,
    elements: Sequence[OutputElement],
    collection_type: str,
    *,
    job_for: Any,
    path: tuple[str, ...],
    parent: int | None,
    label: str,
) -> list[tuple[tuple[str, ...], Dataset]]:
    """Create the element tree of an output collection; leaves become hidden datasets
    made by the job at their path. Returns (path, dataset) per leaf."""
    check_structure(collection_type, [e.identifier for e in elements], "/".join((label, *path)))
    _, _, rest = collection_type.partition(":")
    made: list[tuple[tuple[str, ...], Dataset]] = []
    for index, spec in enumerate(elements):
        here = (*path, spec.identifier)
        if isinstance(spec, OutputLeaf):
            if rest:
                raise Invalid(f"{label}/{'/'.join(here)}: expected {rest} elements, got a dataset")
            job = job_for(here)
            dataset = await dataset_from_file(
                session,
                user,
                history,
                file_id=spec.file_id,
                name=spec.identifier,
                visible=False,
                creating_job=job,
            )
            session.add(
                CollectionElement(
                    collection_id=collection.id,
                    parent_element_id=parent,
                    element_index=index,
                    identifier=spec.identifier,
                    dataset_id=dataset.id,
                )
            )
            made.append((here, dataset))
        else:
            if not rest:
                raise Invalid(f"{label}/{'/'.join(here)}: expected a dataset, got nested elements")
            node = CollectionElement(
                collection_id=collection.id,
                parent_element_id=parent,
                element_index=index,
                identifier=spec.identifier,
                child_collection_type=rest,
            )
            session.add(node)
            await session.flush()
            made += await _output_elements(
                session,
                user,
                history,
                collection,
                spec.elements,
                rest,
                job_for=job_for,
                path=here,
                parent=node.id,
                label=label,
            )
    await session.flush()
    return made


async def mapping_slots(
    session: AsyncSession, collection: Collection, subcollection_type: str | None
) -> tuple[dict[tuple[str, ...], CollectionElement], str]:
    """The elements a run maps over, by identifier path, and the type of the
    implicit output collections (the outer structure)."""
    elements = list(
        (
            await session.execute(
                select(CollectionElement)
                .where(CollectionElement.collection_id == collection.id)
                .order_by(CollectionElement.id)
            )
        ).scalars()
    )
    paths: dict[int, tuple[str, ...]] = {}
    for element in elements:
        parent = paths.get(element.parent_element_id or 0, ())
        paths[element.id] = (*parent, element.identifier)
    ctype = collection.collection_type
    if subcollection_type is None:
        depth = len(ctype.split(":"))
        output_type = ctype
    else:
        if not ctype.endswith(subcollection_type) or ctype == subcollection_type:
            raise Invalid(
                f"cannot map over {subcollection_type!r} sub-collections of a {ctype!r} collection"
            )
        depth = len(ctype.split(":")) - len(subcollection_type.split(":"))
        output_type = ctype[: -len(subcollection_type) - 1]
    slots = {paths[e.id]: e for e in elements if len(paths[e.id]) == depth}
    return slots, output_type


def _inner_type(elements: Sequence[OutputElement], depth: int) -> str:
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


async def _record_mapped_run(
    session: AsyncSession, user: User, history: History, req: JobRecordRequest
) -> RecordedRun:
    assert req.map_over
    if req.output_collections:
        raise Invalid("output_collections cannot be combined with map_over")
    structure: dict[tuple[str, ...], list[tuple[str, CollectionElement]]] = {}
    output_type = ""
    mapped: dict[str, int] = {}
    for m in req.map_over:
        collection = await access.collection(session, user, m.id)
        slots, output_type_m = await mapping_slots(session, collection, m.subcollection_type)
        if structure and set(slots) != set(structure):
            raise Invalid(
                f"map_over {m.name!r}: its structure differs from the other mapped inputs"
            )
        output_type = output_type_m
        for path, element in slots.items():
            structure.setdefault(path, []).append((m.name, element))
        mapped[m.name] = collection.id
    icj = ImplicitCollectionJobs(
        history_id=history.id,
        owner_id=history.owner_id,
        tool_id=req.tool_id,
        map_over=[m.model_dump() for m in req.map_over],
    )
    session.add(icj)
    await session.flush()
    run = RecordedRun(implicit_collection_jobs=icj)
    jobs: dict[tuple[str, ...], Job] = {}
    for path in sorted(structure, key=lambda p: [e.element_index for _, e in structure[p]]):
        job = _new_job(req, history, user, icj.id)
        session.add(job)
        await session.flush()
        jobs[path] = job
        run.jobs.append(job)
        for ref in req.inputs:
            if ref.name not in mapped:
                session.add(JobInput(job_id=job.id, name=ref.name, src=ref.src, ref_id=ref.id))
        for name, element in structure[path]:
            session.add(JobInput(job_id=job.id, name=name, src="dce", ref_id=element.id))
    depth = len(output_type.split(":"))
    for out in req.outputs:
        if out.elements is None:
            raise Invalid(f"output {out.name!r} of a mapped run: give its elements")
        # Each job may itself make a collection (say a pair per element of a list):
        # then the implicit output is deeper than the structure mapped over.
        full_type = output_type + _inner_type(out.elements, depth)
        collection = Collection(
            history_id=history.id,
            hid=next_hid(history),
            name=out.dataset_name or out.name,
            collection_type=full_type,
            implicit_collection_jobs_id=icj.id,
            implicit_output_name=out.name,
            implicit_input_collections=mapped,
            state=req.state,
        )
        session.add(collection)
        await session.flush()

        def job_for(path: tuple[str, ...], out_name: str = out.name) -> Job:
            slot = path[:depth]
            if slot not in jobs:
                raise Invalid(
                    f"output {out_name!r}: element {'/'.join(slot)} is not in the structure mapped over"
                )
            return jobs[slot]

        made = await _output_elements(
            session,
            user,
            history,
            collection,
            out.elements,
            full_type,
            job_for=job_for,
            path=(),
            parent=None,
            label=out.name,
        )
        if {p[:depth] for p, _ in made} != set(jobs):
            raise Invalid(
                f"output {out.name!r}: its elements do not match the structure mapped over"
            )
        for path, dataset in made:
            session.add(
                JobOutput(job_id=jobs[path[:depth]].id, name=out.name, src="hda", ref_id=dataset.id)
            )
        run.output_collections.append(collection)
    touch(history)
    await session.flush()
    return run
