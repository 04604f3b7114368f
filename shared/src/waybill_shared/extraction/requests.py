"""Checking an extraction request against the database: the caller may read every
item (404 otherwise, naming it), the request obeys the extraction rules (422, naming
the offending item). The gateway runs the checks before accepting; the extraction
service runs them again for requests published straight to the broker, and builds
from the graph they loaded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.db.models import Collection, Dataset, History, ImplicitCollectionJobs, Job, User
from waybill_shared.db.queries import among
from waybill_shared.errors import Invalid, NotFound
from waybill_shared.extraction import domain
from waybill_shared.extraction.repository import GraphRows, load_rows
from waybill_shared.provenance import access


async def check_access(session: AsyncSession, user: User, request: ExtractionRequested) -> None:
    if not (
        request.job_ids
        or request.hda_ids
        or request.hdca_ids
        or request.implicit_collection_jobs_ids
    ):
        raise Invalid(
            "nothing to extract: give at least one of job_ids, hda_ids, hdca_ids, "
            "implicit_collection_jobs_ids"
        )
    if request.from_history_id is not None:
        await access.history(session, user, request.from_history_id)
    for model, ids, label, owner in (
        (Job, request.job_ids, "job", Job.owner_id),
        (
            ImplicitCollectionJobs,
            request.implicit_collection_jobs_ids,
            "mapped run",
            ImplicitCollectionJobs.owner_id,
        ),
    ):
        if ids:
            found = await session.execute(select(model.id, owner).where(among(model.id, ids)))
            owners: dict[int, int] = {row_id: row_owner for row_id, row_owner in found.all()}
            for item in ids:
                if item not in owners or not access.may_read(user, owners[item]):
                    raise NotFound(f"{label} {item} not found")
    for hmodel, hids, hlabel in (
        (Dataset, request.hda_ids, "dataset"),
        (Collection, request.hdca_ids, "collection"),
    ):
        if hids:
            found = await session.execute(
                select(hmodel.id, History.owner_id)
                .join(History, History.id == hmodel.history_id)
                .where(among(hmodel.id, hids))
            )
            history_owners: dict[int, int] = {
                row_id: row_owner for row_id, row_owner in found.all()
            }
            for item in hids:
                if item not in history_owners or not access.may_read(user, history_owners[item]):
                    raise NotFound(f"{hlabel} {item} not found")


def to_graph(rows: GraphRows) -> domain.ProvenanceGraph:
    graph = domain.ProvenanceGraph()
    for d in rows.datasets.values():
        graph.datasets[d.id] = domain.Dataset(
            id=d.id,
            history_id=d.history_id,
            hid=d.hid,
            name=d.name,
            extension=d.extension,
            copied_from_id=d.copied_from_id,
            creating_job_id=d.creating_job_id,
        )
    for c in rows.collections.values():
        graph.collections[c.id] = domain.Collection(
            id=c.id,
            history_id=c.history_id,
            hid=c.hid,
            name=c.name,
            collection_type=c.collection_type,
            copied_from_id=c.copied_from_id,
            creating_job_id=c.creating_job_id,
            implicit_collection_jobs_id=c.implicit_collection_jobs_id,
            implicit_output_name=c.implicit_output_name,
        )
    for e in rows.elements.values():
        graph.elements[e.id] = domain.Element(
            id=e.id,
            collection_id=e.collection_id,
            identifier=e.identifier,
            dataset_id=e.dataset_id,
            parent_id=e.parent_element_id,
        )
    for j in rows.jobs.values():
        graph.jobs[j.id] = domain.Job(
            id=j.id,
            history_id=j.history_id,
            tool_id=j.tool_id,
            tool_version=j.tool_version,
            parameters=dict(j.parameters or {}),
            inputs=tuple(domain.JobIO(i.name, i.src, i.ref_id) for i in rows.inputs.get(j.id, [])),
            outputs=tuple(
                domain.JobIO(o.name, o.src, o.ref_id) for o in rows.outputs.get(j.id, [])
            ),
            implicit_collection_jobs_id=j.implicit_collection_jobs_id,
        )
    for g in rows.groups.values():
        graph.mapped_runs[g.id] = domain.MappedRun(
            id=g.id,
            tool_id=g.tool_id,
            map_over=tuple(
                domain.MapOver(m["name"], int(m["id"]), m.get("subcollection_type"))
                for m in g.map_over or []
                if isinstance(m.get("id"), int)
            ),
            job_ids=tuple(sorted(rows.group_jobs.get(g.id, []))),
        )
    return graph


def to_request(request: ExtractionRequested) -> domain.ExtractionRequest:
    return domain.ExtractionRequest(
        workflow_name=request.workflow_name,
        job_ids=tuple(request.job_ids),
        hda_ids=tuple(request.hda_ids),
        hdca_ids=tuple(request.hdca_ids),
        implicit_collection_jobs_ids=tuple(request.implicit_collection_jobs_ids),
        dataset_names=tuple(request.dataset_names),
        dataset_collection_names=tuple(request.dataset_collection_names),
        output_labels=tuple(
            domain.OutputLabel(o.id, o.kind, o.label) for o in request.output_labels
        ),
        from_history_id=request.from_history_id,
    )


async def check_extraction_request(
    session: AsyncSession, user: User, request: ExtractionRequested
) -> domain.ProvenanceGraph:
    """Access, then the extraction rules; the graph it loaded, for building."""
    await check_access(session, user, request)
    graph = to_graph(await load_rows(session, request))
    try:
        domain.validate_request(graph, to_request(request))
    except domain.NotFound as exc:
        raise NotFound(str(exc)) from exc
    except domain.InvalidRequest as exc:
        raise Invalid(str(exc)) from exc
    return graph


def build_document(graph: domain.ProvenanceGraph, request: ExtractionRequested) -> dict[str, Any]:
    """The .ga document (pure: the graph is already loaded)."""
    return domain.build_workflow(graph, to_request(request))
