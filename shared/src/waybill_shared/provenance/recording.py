"""Recording provenance: datasets from files, copies, collections, and tool runs
(plain, making collections, or mapped over collections). The rules of collections and
mapped runs are waybill_shared.provenance.mapping (pure); this module checks access,
loads what a plan needs and writes the plan. Functions add rows to the caller's
session; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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
from waybill_shared.provenance import access, mapping
from waybill_shared.provenance.mapping import (
    MappedStructure,
    Path,
    PlannedDataset,
    PlannedNode,
    PlannedOutput,
    StoredElement,
)
from waybill_shared.provenance.schemas import ElementIdentifier, JobRecordRequest, NewContent

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
    ids: dict[Path, int] = {}
    for planned in mapping.collection_elements(element_identifiers, collection_type, name):
        if isinstance(planned, PlannedNode):
            ids[planned.path] = await _add_node(session, collection, planned, ids)
        else:
            dataset = await access.dataset(session, user, planned.dataset_id)
            session.add(_element(collection, planned, ids, dataset_id=dataset.id))
    await session.flush()
    touch(history)
    return collection


def _element(
    collection: Collection,
    planned: PlannedNode | PlannedDataset | PlannedOutput,
    ids: dict[Path, int],
    *,
    dataset_id: int | None = None,
    child_collection_type: str | None = None,
) -> CollectionElement:
    """The row of a planned element; its parent's id from `ids` (written before it)."""
    return CollectionElement(
        collection_id=collection.id,
        parent_element_id=ids.get(planned.path[:-1]),
        element_index=planned.index,
        identifier=planned.path[-1],
        dataset_id=dataset_id,
        child_collection_type=child_collection_type,
    )


async def _add_node(
    session: AsyncSession, collection: Collection, planned: PlannedNode, ids: dict[Path, int]
) -> int:
    node = _element(collection, planned, ids, child_collection_type=planned.child_type)
    session.add(node)
    await session.flush()  # its id, for its children
    return node.id


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
        await _write_outputs(
            session,
            user,
            history,
            collection,
            mapping.output_elements(spec.elements, spec.collection_type, label=spec.name),
            {(): job},
        )
        session.add(JobOutput(job_id=job.id, name=spec.name, src="hdca", ref_id=collection.id))
        run.output_collections.append(collection)
    touch(history)
    await session.flush()
    return run


async def _write_outputs(
    session: AsyncSession,
    user: User,
    history: History,
    collection: Collection,
    planned_elements: Iterable[PlannedNode | PlannedOutput],
    jobs: dict[Path, Job],
) -> list[tuple[PlannedOutput, Dataset]]:
    """Write an output collection's planned elements; a leaf becomes a hidden dataset
    made by the job of its slot. Returns each leaf with its dataset."""
    ids: dict[Path, int] = {}
    made: list[tuple[PlannedOutput, Dataset]] = []
    for planned in planned_elements:
        if isinstance(planned, PlannedNode):
            ids[planned.path] = await _add_node(session, collection, planned, ids)
            continue
        dataset = await dataset_from_file(
            session,
            user,
            history,
            file_id=planned.file_id,
            name=planned.path[-1],
            visible=False,
            creating_job=jobs[planned.slot],
        )
        session.add(_element(collection, planned, ids, dataset_id=dataset.id))
        made.append((planned, dataset))
    await session.flush()
    return made


async def _mapped_structure(
    session: AsyncSession, user: User, req: JobRecordRequest
) -> tuple[MappedStructure, dict[str, int]]:
    """The structure the run maps over, and each mapped input's collection id."""
    assert req.map_over
    structure = MappedStructure()
    mapped: dict[str, int] = {}
    for m in req.map_over:
        collection = await access.collection(session, user, m.id)
        elements = (
            await session.execute(
                select(
                    CollectionElement.id,
                    CollectionElement.parent_element_id,
                    CollectionElement.identifier,
                    CollectionElement.element_index,
                )
                .where(CollectionElement.collection_id == collection.id)
                .order_by(CollectionElement.id)
            )
        ).all()
        structure.add(
            m.name,
            mapping.slots(
                collection.collection_type,
                [StoredElement(*row) for row in elements],
                m.subcollection_type,
            ),
        )
        mapped[m.name] = collection.id
    return structure, mapped


async def _record_mapped_run(
    session: AsyncSession, user: User, history: History, req: JobRecordRequest
) -> RecordedRun:
    assert req.map_over
    if req.output_collections:
        raise Invalid("output_collections cannot be combined with map_over")
    structure, mapped = await _mapped_structure(session, user, req)
    icj = ImplicitCollectionJobs(
        history_id=history.id,
        owner_id=history.owner_id,
        tool_id=req.tool_id,
        map_over=[m.model_dump() for m in req.map_over],
    )
    session.add(icj)
    await session.flush()
    run = RecordedRun(implicit_collection_jobs=icj)
    jobs: dict[Path, Job] = {}
    for planned_job in structure.jobs():
        job = _new_job(req, history, user, icj.id)
        session.add(job)
        await session.flush()
        jobs[planned_job.slot] = job
        run.jobs.append(job)
        for ref in req.inputs:
            if ref.name not in mapped:
                session.add(JobInput(job_id=job.id, name=ref.name, src=ref.src, ref_id=ref.id))
        for name, element_id in planned_job.inputs:
            session.add(JobInput(job_id=job.id, name=name, src="dce", ref_id=element_id))
    for out in req.outputs:
        full_type = mapping.mapped_output_type(out.name, out.elements, structure)
        assert out.elements is not None
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
        made = await _write_outputs(
            session,
            user,
            history,
            collection,
            mapping.mapped_output_elements(out.name, out.elements, full_type, structure),
            jobs,
        )
        for leaf, dataset in made:
            session.add(
                JobOutput(job_id=jobs[leaf.slot].id, name=out.name, src="hda", ref_id=dataset.id)
            )
        run.output_collections.append(collection)
    touch(history)
    await session.flush()
    return run
