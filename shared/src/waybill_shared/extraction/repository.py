"""Loading the part of the provenance graph an extraction needs, breadth-first with
batched queries (one round per generation, never a query per item): the selected
jobs, mapped runs, datasets and collections; what their inputs and outputs refer
to; every copied_from chain to its root; the elements of every collection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
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
from waybill_shared.db.queries import among

# A Core row of the named table: its columns as attributes.
Row = Any


@dataclass
class GraphRows:
    datasets: dict[int, Row] = field(default_factory=dict)
    collections: dict[int, Row] = field(default_factory=dict)
    elements: dict[int, Row] = field(default_factory=dict)
    jobs: dict[int, Row] = field(default_factory=dict)
    inputs: dict[int, list[Row]] = field(default_factory=lambda: defaultdict(list))
    outputs: dict[int, list[Row]] = field(default_factory=lambda: defaultdict(list))
    groups: dict[int, Row] = field(default_factory=dict)
    group_jobs: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    queries: int = 0


async def load_rows(session: AsyncSession, request: ExtractionRequested) -> GraphRows:
    rows = GraphRows()
    want_jobs = set(request.job_ids)
    want_groups = set(request.implicit_collection_jobs_ids)
    want_datasets = set(request.hda_ids)
    want_collections = set(request.hdca_ids)
    want_elements: set[int] = set()

    async def fetch(stmt: Select[Any]) -> list[Any]:
        """Core rows, not ORM objects: attribute access by column name at a fraction
        of the cost (ORM instances were most of the load time at 10,000 jobs)."""
        rows.queries += 1
        return list((await session.execute(stmt)).all())

    while want_jobs or want_groups or want_datasets or want_collections or want_elements:
        jobs, want_jobs = want_jobs - rows.jobs.keys(), set()
        groups, want_groups = want_groups - rows.groups.keys(), set()
        datasets, want_datasets = want_datasets - rows.datasets.keys(), set()
        collections, want_collections = want_collections - rows.collections.keys(), set()
        elements, want_elements = want_elements - rows.elements.keys(), set()
        if groups:
            for g in await fetch(
                select(ImplicitCollectionJobs.__table__).where(
                    among(ImplicitCollectionJobs.id, groups)
                )
            ):
                rows.groups[g.id] = g
                want_collections |= {
                    m["id"] for m in g.map_over or [] if isinstance(m.get("id"), int)
                }
            for job in await fetch(
                select(Job.id)
                .where(among(Job.implicit_collection_jobs_id, groups))
                .order_by(Job.id)
            ):
                jobs.add(job.id)
            for c in await fetch(
                select(Collection.id).where(among(Collection.implicit_collection_jobs_id, groups))
            ):
                collections.add(c.id)
        jobs -= rows.jobs.keys()
        if jobs:
            for job in await fetch(select(Job.__table__).where(among(Job.id, jobs))):
                rows.jobs[job.id] = job
                if job.implicit_collection_jobs_id is not None:
                    rows.group_jobs[job.implicit_collection_jobs_id].append(job.id)
                    want_groups.add(job.implicit_collection_jobs_id)
            for i in await fetch(
                select(JobInput.__table__).where(among(JobInput.job_id, jobs)).order_by(JobInput.id)
            ):
                rows.inputs[i.job_id].append(i)
                {"hda": want_datasets, "hdca": want_collections, "dce": want_elements}[i.src].add(
                    i.ref_id
                )
            for o in await fetch(
                select(JobOutput.__table__)
                .where(among(JobOutput.job_id, jobs))
                .order_by(JobOutput.id)
            ):
                rows.outputs[o.job_id].append(o)
                (want_datasets if o.src == "hda" else want_collections).add(o.ref_id)
        if datasets:
            for d in await fetch(select(Dataset.__table__).where(among(Dataset.id, datasets))):
                rows.datasets[d.id] = d
                if d.copied_from_id is not None:
                    want_datasets.add(d.copied_from_id)
        if elements:
            for e in await fetch(
                select(CollectionElement.__table__).where(among(CollectionElement.id, elements))
            ):
                rows.elements[e.id] = e
                want_collections.add(e.collection_id)
                if e.dataset_id is not None:
                    want_datasets.add(e.dataset_id)
        if collections:
            for c in await fetch(
                select(Collection.__table__).where(among(Collection.id, collections))
            ):
                rows.collections[c.id] = c
                if c.copied_from_id is not None:
                    want_collections.add(c.copied_from_id)
            for e in await fetch(
                select(CollectionElement.__table__)
                .where(among(CollectionElement.collection_id, collections))
                .order_by(CollectionElement.element_index, CollectionElement.id)
            ):
                rows.elements[e.id] = e
                if e.dataset_id is not None:
                    want_datasets.add(e.dataset_id)
    # Members of a mapped run that were loaded as single jobs still belong to their group.
    for job in rows.jobs.values():
        group = job.implicit_collection_jobs_id
        if group is not None and job.id not in rows.group_jobs[group]:
            rows.group_jobs[group].append(job.id)
    return rows
