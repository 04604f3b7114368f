"""Loading the part of the provenance graph an extraction needs, breadth-first with
batched queries (one round per generation, never a query per item): the selected
jobs, mapped runs, datasets and collections; what their inputs and outputs refer
to; every copied_from chain to its root; the elements of every collection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    ImplicitCollectionJobs,
    Job,
    JobInput,
    JobOutput,
)


@dataclass
class GraphRows:
    datasets: dict[int, Dataset] = field(default_factory=dict)
    collections: dict[int, Collection] = field(default_factory=dict)
    elements: dict[int, CollectionElement] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    inputs: dict[int, list[JobInput]] = field(default_factory=lambda: defaultdict(list))
    outputs: dict[int, list[JobOutput]] = field(default_factory=lambda: defaultdict(list))
    groups: dict[int, ImplicitCollectionJobs] = field(default_factory=dict)
    group_jobs: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    queries: int = 0


async def load_rows(session: AsyncSession, request: ExtractionRequested) -> GraphRows:
    rows = GraphRows()
    want_jobs = set(request.job_ids)
    want_groups = set(request.implicit_collection_jobs_ids)
    want_datasets = set(request.hda_ids)
    want_collections = set(request.hdca_ids)
    want_elements: set[int] = set()

    async def fetch(stmt: object) -> list[object]:
        rows.queries += 1
        return list((await session.execute(stmt)).scalars())  # type: ignore[call-overload]

    while want_jobs or want_groups or want_datasets or want_collections or want_elements:
        jobs, want_jobs = want_jobs - rows.jobs.keys(), set()
        groups, want_groups = want_groups - rows.groups.keys(), set()
        datasets, want_datasets = want_datasets - rows.datasets.keys(), set()
        collections, want_collections = want_collections - rows.collections.keys(), set()
        elements, want_elements = want_elements - rows.elements.keys(), set()
        if groups:
            for g in await fetch(
                select(ImplicitCollectionJobs).where(ImplicitCollectionJobs.id.in_(groups))
            ):
                assert isinstance(g, ImplicitCollectionJobs)
                rows.groups[g.id] = g
                want_collections |= {
                    m["id"] for m in g.map_over or [] if isinstance(m.get("id"), int)
                }
            for job in await fetch(
                select(Job).where(Job.implicit_collection_jobs_id.in_(groups)).order_by(Job.id)
            ):
                assert isinstance(job, Job)
                jobs.add(job.id)
            for c in await fetch(
                select(Collection).where(Collection.implicit_collection_jobs_id.in_(groups))
            ):
                assert isinstance(c, Collection)
                collections.add(c.id)
        jobs -= rows.jobs.keys()
        if jobs:
            for job in await fetch(select(Job).where(Job.id.in_(jobs))):
                assert isinstance(job, Job)
                rows.jobs[job.id] = job
                if job.implicit_collection_jobs_id is not None:
                    rows.group_jobs[job.implicit_collection_jobs_id].append(job.id)
                    want_groups.add(job.implicit_collection_jobs_id)
            for i in await fetch(
                select(JobInput).where(JobInput.job_id.in_(jobs)).order_by(JobInput.id)
            ):
                assert isinstance(i, JobInput)
                rows.inputs[i.job_id].append(i)
                {"hda": want_datasets, "hdca": want_collections, "dce": want_elements}[i.src].add(
                    i.ref_id
                )
            for o in await fetch(
                select(JobOutput).where(JobOutput.job_id.in_(jobs)).order_by(JobOutput.id)
            ):
                assert isinstance(o, JobOutput)
                rows.outputs[o.job_id].append(o)
                (want_datasets if o.src == "hda" else want_collections).add(o.ref_id)
        if datasets:
            for d in await fetch(select(Dataset).where(Dataset.id.in_(datasets))):
                assert isinstance(d, Dataset)
                rows.datasets[d.id] = d
                if d.copied_from_id is not None:
                    want_datasets.add(d.copied_from_id)
        if elements:
            for e in await fetch(
                select(CollectionElement).where(CollectionElement.id.in_(elements))
            ):
                assert isinstance(e, CollectionElement)
                rows.elements[e.id] = e
                want_collections.add(e.collection_id)
                if e.dataset_id is not None:
                    want_datasets.add(e.dataset_id)
        if collections:
            for c in await fetch(select(Collection).where(Collection.id.in_(collections))):
                assert isinstance(c, Collection)
                rows.collections[c.id] = c
                if c.copied_from_id is not None:
                    want_collections.add(c.copied_from_id)
            for e in await fetch(
                select(CollectionElement)
                .where(CollectionElement.collection_id.in_(collections))
                .order_by(CollectionElement.element_index, CollectionElement.id)
            ):
                assert isinstance(e, CollectionElement)
                rows.elements[e.id] = e
                if e.dataset_id is not None:
                    want_datasets.add(e.dataset_id)
    # Members of a mapped run that were loaded as single jobs still belong to their group.
    for job in rows.jobs.values():
        group = job.implicit_collection_jobs_id
        if group is not None and job.id not in rows.group_jobs[group]:
            rows.group_jobs[group].append(job.id)
    return rows
