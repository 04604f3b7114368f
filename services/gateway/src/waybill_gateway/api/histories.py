from __future__ import annotations

from fastapi import APIRouter

from waybill_gateway.api.common import IdPath, PageDep, WholePageDep, paginated
from waybill_gateway.deps import CurrentUser, SessionDep
from waybill_gateway.schemas import (
    CollectionOut,
    ContentItem,
    DatasetOut,
    HistoryCreate,
    HistoryOut,
    JobOut,
    RecordedJobOut,
)
from waybill_gateway.services import provenance
from waybill_shared.db.models import Dataset
from waybill_shared.provenance import access, recording
from waybill_shared.provenance.schemas import JobRecordRequest, NewContent

router = APIRouter(tags=["histories and provenance"])


@router.post("/api/histories", status_code=201, response_model=HistoryOut)
async def create_history(body: HistoryCreate, session: SessionDep, user: CurrentUser) -> HistoryOut:
    return provenance.history_out(
        await provenance.create_history(session, owner=user, name=body.name)
    )


@router.get("/api/histories", **paginated(HistoryOut))
async def list_histories(session: SessionDep, user: CurrentUser, page: PageDep) -> list[HistoryOut]:
    histories, total = await provenance.list_histories(
        session, user=user, limit=page.limit, offset=page.offset
    )
    return page.answer([provenance.history_out(h) for h in histories], total)


@router.get("/api/histories/{history_id}", response_model=HistoryOut)
async def get_history(history_id: IdPath, session: SessionDep, user: CurrentUser) -> HistoryOut:
    return provenance.history_out(await access.history(session, user, history_id))


@router.get("/api/histories/{history_id}/contents", **paginated(ContentItem))
async def history_contents(
    history_id: IdPath, session: SessionDep, user: CurrentUser, page: WholePageDep
) -> list[ContentItem]:
    """Datasets and collections in hid order (without `limit`: up to the page size
    limit, as Galaxy clients read a history whole)."""
    items, total = await provenance.contents(
        session, user=user, history_id=history_id, limit=page.limit, offset=page.offset
    )
    return page.answer(items, total)


@router.post("/api/histories/{history_id}/contents", status_code=201, response_model=ContentItem)
async def add_content(
    history_id: IdPath, body: NewContent, session: SessionDep, user: CurrentUser
) -> ContentItem:
    made = await recording.add_content(session, user, history_id=history_id, body=body)
    await session.refresh(made)
    if isinstance(made, Dataset):
        return provenance.dataset_item(made)
    return provenance.collection_item(made)


@router.get("/api/datasets/{dataset_id}", response_model=DatasetOut)
async def get_dataset(dataset_id: IdPath, session: SessionDep, user: CurrentUser) -> DatasetOut:
    return provenance.dataset_out(await access.dataset(session, user, dataset_id))


@router.get("/api/dataset_collections/{collection_id}", response_model=CollectionOut)
async def get_collection(
    collection_id: IdPath, session: SessionDep, user: CurrentUser
) -> CollectionOut:
    return await provenance.collection_out(
        session, await access.collection(session, user, collection_id)
    )


@router.post("/api/jobs", status_code=201, response_model=RecordedJobOut)
async def record_job(
    body: JobRecordRequest, session: SessionDep, user: CurrentUser
) -> RecordedJobOut:
    """Record a tool run that happened (provenance ingestion)."""
    run = await recording.record_job(session, user, body)
    for obj in (*run.jobs, *run.outputs, *run.output_collections):
        await session.refresh(obj)
    return RecordedJobOut(
        jobs=[await provenance.job_out(session, job) for job in run.jobs],
        outputs=[provenance.dataset_item(d) for d in run.outputs],
        output_collections=[provenance.collection_item(c) for c in run.output_collections],
        implicit_collection_jobs_id=run.implicit_collection_jobs.id
        if run.implicit_collection_jobs
        else None,
    )


@router.get("/api/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: IdPath, session: SessionDep, user: CurrentUser) -> JobOut:
    return await provenance.job_out(session, await access.job(session, user, job_id))
