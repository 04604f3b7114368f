"""Lineage: for exported files and datasets, the jobs, tools, parameters and inputs
that produced them, transitively. Loaded breadth-first, one round of batched
queries per generation (never a query per dataset).

The shape is the seed's: `source_datasets` (every dataset the lineage reached),
`pipeline_runs` (every tool run, with its parameters, inputs and outputs) and
`processing_steps` (per exported item: the run that made it and every run before it,
in the order they ran, as ids into `pipeline_runs`); `collections` beside them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    Job,
    JobInput,
    JobOutput,
)
from waybill_shared.db.queries import among


class _Graph:
    def __init__(self) -> None:
        self.datasets: dict[int, Dataset] = {}
        self.collections: dict[int, Collection] = {}
        self.jobs: dict[int, Job] = {}
        self.inputs: dict[int, list[JobInput]] = {}
        self.outputs: dict[int, list[JobOutput]] = {}
        self.element_datasets: dict[int, list[int]] = {}  # element or collection -> leaf datasets
        self.collection_datasets: dict[int, list[int]] = {}
        self.icj_jobs: dict[int, list[int]] = {}


async def lineage_for(
    session: AsyncSession, *, file_ids: list[int], dataset_ids: list[int]
) -> dict[str, Any]:
    g = _Graph()
    roots: list[tuple[str, int, list[int]]] = []
    start: set[int] = set(dataset_ids)
    by_file: dict[int, list[int]] = {f: [] for f in file_ids}
    if file_ids:
        for d in (
            await session.execute(select(Dataset).where(among(Dataset.file_id, file_ids)))
        ).scalars():
            by_file[d.file_id].append(d.id)
            start.add(d.id)
    frontier_datasets: set[int] = start
    frontier_collections: set[int] = set()
    while frontier_datasets or frontier_collections:
        frontier_datasets, frontier_collections = await _expand(
            session,
            g,
            frontier_datasets - g.datasets.keys(),
            frontier_collections - g.collections.keys(),
        )
    for file_id, ds in by_file.items():
        roots.append(("file", file_id, ds))
    for dataset_id in dataset_ids:
        roots.append(("dataset", dataset_id, [dataset_id]))
    return {
        "source_datasets": [
            {
                "id": d.id,
                "name": d.name,
                "hid": d.hid,
                "history_id": d.history_id,
                "extension": d.extension,
                "file_id": d.file_id,
                "creating_job_id": d.creating_job_id,
                "copied_from_id": d.copied_from_id,
            }
            for d in sorted(g.datasets.values(), key=lambda d: d.id)
        ],
        "pipeline_runs": [
            {
                "id": job.id,
                "tool_id": job.tool_id,
                "tool_version": job.tool_version,
                "parameters": job.parameters,
                "state": job.state,
                "implicit_collection_jobs_id": job.implicit_collection_jobs_id,
                "inputs": [
                    {"name": i.name, "src": i.src, "id": i.ref_id} for i in g.inputs.get(job.id, [])
                ],
                "outputs": [
                    {"name": o.name, "src": o.src, "id": o.ref_id}
                    for o in g.outputs.get(job.id, [])
                ],
                "created_at": job.created_at.isoformat(),
            }
            for job in sorted(g.jobs.values(), key=lambda j: j.id)
        ],
        "processing_steps": [
            {
                f"{kind}_id": ref,
                "datasets": starts,
                "produced_by": sorted({j for d in starts if (j := _origin_job(g, d)) is not None}),
                "pipeline_runs": _in_run_order(g, _ancestor_jobs(g, starts)),
            }
            for kind, ref, starts in roots
        ],
        "collections": [
            {
                "id": c.id,
                "name": c.name,
                "hid": c.hid,
                "history_id": c.history_id,
                "collection_type": c.collection_type,
                "copied_from_id": c.copied_from_id,
                "creating_job_id": c.creating_job_id,
                "implicit_collection_jobs_id": c.implicit_collection_jobs_id,
                "datasets": g.collection_datasets.get(c.id, []),
            }
            for c in sorted(g.collections.values(), key=lambda c: c.id)
        ],
    }


def _in_run_order(g: _Graph, jobs: set[int]) -> list[int]:
    return sorted(jobs, key=lambda j: (g.jobs[j].created_at, j))


def _origin_job(g: _Graph, dataset_id: int) -> int | None:
    """The job that made a dataset, looking through copies."""
    seen: set[int] = set()
    current: int | None = dataset_id
    while current is not None and current not in seen:
        seen.add(current)
        d = g.datasets.get(current)
        if d is None:
            return None
        if d.creating_job_id is not None:
            return d.creating_job_id
        current = d.copied_from_id
    return None


def _ancestor_jobs(g: _Graph, datasets: list[int]) -> set[int]:
    jobs: set[int] = set()
    stack = [("hda", d) for d in datasets]
    seen: set[tuple[str, int]] = set()
    while stack:
        src, ref = stack.pop()
        if (src, ref) in seen:
            continue
        seen.add((src, ref))
        if src == "hda":
            d = g.datasets.get(ref)
            if d is None:
                continue
            if d.copied_from_id is not None:
                stack.append(("hda", d.copied_from_id))
            if d.creating_job_id is not None:
                stack.append(("job", d.creating_job_id))
        elif src == "hdca":
            c = g.collections.get(ref)
            if c is None:
                continue
            if c.copied_from_id is not None:
                stack.append(("hdca", c.copied_from_id))
            if c.creating_job_id is not None:
                stack.append(("job", c.creating_job_id))
            stack += [("hda", d) for d in g.collection_datasets.get(ref, [])]
        elif src == "dce":
            stack += [("hda", d) for d in g.element_datasets.get(ref, [])]
        elif src == "job" and ref in g.jobs:
            jobs.add(ref)
            stack += [(i.src, i.ref_id) for i in g.inputs.get(ref, [])]
    return jobs


async def _expand(
    session: AsyncSession, g: _Graph, dataset_ids: set[int], collection_ids: set[int]
) -> tuple[set[int], set[int]]:
    """Load one generation; return the next generation's dataset and collection ids."""
    next_datasets: set[int] = set()
    next_collections: set[int] = set()
    job_ids: set[int] = set()
    if dataset_ids:
        for d in (
            await session.execute(select(Dataset).where(among(Dataset.id, dataset_ids)))
        ).scalars():
            g.datasets[d.id] = d
            if d.copied_from_id:
                next_datasets.add(d.copied_from_id)
            if d.creating_job_id:
                job_ids.add(d.creating_job_id)
    if collection_ids:
        for c in (
            await session.execute(select(Collection).where(among(Collection.id, collection_ids)))
        ).scalars():
            g.collections[c.id] = c
            if c.copied_from_id:
                next_collections.add(c.copied_from_id)
            if c.creating_job_id:
                job_ids.add(c.creating_job_id)
        for e in (
            await session.execute(
                select(CollectionElement).where(
                    among(CollectionElement.collection_id, collection_ids)
                )
            )
        ).scalars():
            if e.dataset_id is not None:
                g.collection_datasets.setdefault(e.collection_id, []).append(e.dataset_id)
                next_datasets.add(e.dataset_id)
    job_ids -= g.jobs.keys()
    if job_ids:
        for job in (await session.execute(select(Job).where(among(Job.id, job_ids)))).scalars():
            g.jobs[job.id] = job
        element_ids: set[int] = set()
        for i in (
            await session.execute(select(JobInput).where(among(JobInput.job_id, job_ids)))
        ).scalars():
            g.inputs.setdefault(i.job_id, []).append(i)
            if i.src == "hda":
                next_datasets.add(i.ref_id)
            elif i.src == "hdca":
                next_collections.add(i.ref_id)
            else:
                element_ids.add(i.ref_id)
        for o in (
            await session.execute(select(JobOutput).where(among(JobOutput.job_id, job_ids)))
        ).scalars():
            g.outputs.setdefault(o.job_id, []).append(o)
        if element_ids:
            # An element is a dataset, or a sub-collection whose leaves are its inputs.
            rows = (
                await session.execute(
                    select(CollectionElement).where(
                        or_(
                            among(CollectionElement.id, element_ids),
                            among(CollectionElement.parent_element_id, element_ids),
                        )
                    )
                )
            ).scalars()
            for e in rows:
                owner = e.id if e.id in element_ids else e.parent_element_id
                if e.dataset_id is not None and owner is not None:
                    g.element_datasets.setdefault(owner, []).append(e.dataset_id)
                    next_datasets.add(e.dataset_id)
    return next_datasets, next_collections
