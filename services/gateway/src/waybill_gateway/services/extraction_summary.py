"""Galaxy's `WorkflowExtractionSummary` of a history: what the history holds, grouped
the way Galaxy's extraction form lists it.

Galaxy walks the history's contents in hid order and files each item under the job
that made it (a mapped run once, under its first job), or under an input entry of its
own (`id` null) when no job made it. A copy counts as its original: it is listed under
the job that made the original, in whatever history that job ran. Hidden datasets that
are elements of a collection are represented by their collection; datasets still
queued or running are left out, with a warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.repository import extraction_summary as repository
from waybill_gateway.schemas import ExtractionJob, ExtractionOutput, ExtractionSummary
from waybill_shared.db.models import (
    Collection,
    Dataset,
    History,
    Job,
    User,
)
from waybill_shared.provenance import access

NOT_READY_WARNING = "Some datasets still queued or running were ignored"
NOT_READY = ("new", "queued", "running")


@dataclass
class _Entry:
    job: ExtractionJob
    outputs: list[ExtractionOutput] = field(default_factory=list)


def _output(item: Dataset | Collection, output_name: str | None) -> ExtractionOutput:
    return ExtractionOutput(
        id=item.id,
        hid=item.hid,
        name=item.name,
        state=item.state,
        deleted=item.deleted,
        history_content_type="dataset" if isinstance(item, Dataset) else "dataset_collection",
        output_name=output_name,
    )


Item = TypeVar("Item", Dataset, Collection)


async def _originals(
    session: AsyncSession, model: type[Item], items: list[Item]
) -> dict[int, Item]:
    """item id -> the item its copied_from chain starts at (itself when it is no copy):
    a copy has no creating job of its own, its original has."""
    known: dict[int, Item] = {item.id: item for item in items}
    missing = {i.copied_from_id for i in items if i.copied_from_id is not None} - set(known)
    while missing:  # one query per level of copying
        found = await repository.by_ids(session, model, missing)
        known.update((row.id, row) for row in found)
        missing = {r.copied_from_id for r in found if r.copied_from_id is not None} - set(known)

    def root(item: Item) -> Item:
        seen: set[int] = set()
        while (
            item.copied_from_id is not None
            and item.copied_from_id in known
            and item.creating_job_id is None
            and getattr(item, "implicit_collection_jobs_id", None) is None
            and item.id not in seen
        ):
            seen.add(item.id)
            item = known[item.copied_from_id]
        return item

    return {item.id: root(item) for item in items}


async def extraction_summary(
    session: AsyncSession, *, user: User, history_id: int
) -> ExtractionSummary:
    history: History = await access.history(session, user, history_id)
    datasets = await repository.history_items(session, Dataset, history.id)
    collections = await repository.history_items(session, Collection, history.id)
    element_datasets = await repository.element_dataset_ids(session, history.id)
    dataset_roots = await _originals(session, Dataset, datasets)
    collection_roots = await _originals(session, Collection, collections)

    job_ids = {r.creating_job_id for r in dataset_roots.values() if r.creating_job_id is not None}
    job_ids |= {
        r.creating_job_id for r in collection_roots.values() if r.creating_job_id is not None
    }
    jobs = await repository.jobs_by_id(session, job_ids)
    groups = {
        group
        for item in (*jobs.values(), *collection_roots.values())
        if (group := getattr(item, "implicit_collection_jobs_id", None)) is not None
    }
    group_jobs = await repository.mapped_run_sizes(session, groups)  # (first job, count)
    firsts = {first for first, _ in group_jobs.values()} - set(jobs)
    if firsts:
        jobs.update(await repository.jobs_by_id(session, firsts))
    output_names = await repository.output_names(session, job_ids)

    entries: dict[tuple[str, int], _Entry] = {}
    warnings: list[str] = []

    def tool_entry(job: Job) -> _Entry:
        group = job.implicit_collection_jobs_id
        if group is not None and group in group_jobs:
            first, count = group_jobs[group]
            job = jobs.get(first, job)
            key = ("group", group)
        else:
            count, key = 0, ("job", job.id)
        if key not in entries:
            entries[key] = _Entry(
                ExtractionJob(
                    id=job.id,
                    step_type="tool",
                    tool_id=job.tool_id,
                    tool_name=job.tool_id,  # no tool panel here: the id is the name we know
                    tool_version=job.tool_version,
                    checked=False,
                    implicit_collection_jobs_id=group if count else None,
                    implicit_collection_jobs_size=count or None,
                )
            )
        return entries[key]

    def input_entry(item: Dataset | Collection, tool_name: str | None) -> None:
        kind = "dataset" if isinstance(item, Dataset) else "collection"
        entries[(kind, item.id)] = _Entry(
            ExtractionJob(
                id=None,
                step_type="input_dataset" if kind == "dataset" else "input_collection",
                tool_name=tool_name,
                checked=False,
            ),
            [_output(item, None)],
        )

    contents: list[Dataset | Collection] = [*datasets, *collections]
    for item in sorted(contents, key=lambda c: c.hid):
        if isinstance(item, Dataset):
            if not item.visible and item.id in element_datasets:
                continue  # represented by its collection
            if item.state in NOT_READY:
                if NOT_READY_WARNING not in warnings:
                    warnings.append(NOT_READY_WARNING)
                continue
            source = dataset_roots[item.id]
            job = jobs.get(source.creating_job_id) if source.creating_job_id else None
            if job is None:
                copied = "Import from History" if item.copied_from_id is not None else None
                input_entry(item, copied)
            else:
                name = output_names.get((job.id, "hda", source.id))
                tool_entry(job).outputs.append(_output(item, name))
            continue
        origin = collection_roots[item.id]
        job = jobs.get(origin.creating_job_id) if origin.creating_job_id else None
        group = origin.implicit_collection_jobs_id
        if group is not None and group in group_jobs:
            first, _ = group_jobs[group]
            tool_entry(jobs[first]).outputs.append(_output(item, origin.implicit_output_name))
        elif job is not None:
            name = output_names.get((job.id, "hdca", origin.id))
            tool_entry(job).outputs.append(_output(item, name))
        else:
            input_entry(item, "Dataset Collection Creation")

    listed = []
    for entry in entries.values():
        checked = any(not o.deleted for o in entry.outputs)
        listed.append(entry.job.model_copy(update={"outputs": entry.outputs, "checked": checked}))
    return ExtractionSummary(history_id=history.id, warnings=warnings, jobs=listed)
