"""Batch exports: plain SQL on asyncpg, as every statement on a job's path (the task's
own statements are waybill_shared.tasks.repository)."""

from __future__ import annotations

from typing import Any

from waybill_shared.db.pg import Connection, Record
from waybill_shared.tasks import repository as tasks
from waybill_shared.tasks.repository import TaskRow

KIND = "data_export"


async def files_and_usage(
    conn: Connection, *, user_id: int, file_ids: list[int], running_limit: int
) -> list[Record]:
    """One row per file among `file_ids` not deleted (id, owner_id, filename; one row
    of nulls when none is), each with the user's stored bytes and unfinished exports,
    counted up to `running_limit` (at most that many index entries:
    ix_tasks_owner_unfinished)."""
    return list(
        await conn.fetch(
            """SELECT u.stored_bytes,
                      (SELECT count(*) FROM (
                          SELECT 1 FROM tasks t WHERE t.owner_id = u.id AND t.kind = $3
                            AND t.status IN ('pending', 'running') LIMIT $4) AS unfinished
                      ) AS running,
                      f.id, f.owner_id, f.filename
               FROM users u
               LEFT JOIN files f ON f.id = ANY($1::int[]) AND f.deleted_at IS NULL
               WHERE u.id = $2""",
            file_ids,
            user_id,
            KIND,
            running_limit,
        )
    )


async def dataset_owners(conn: Connection, dataset_ids: list[int]) -> dict[int, int]:
    """The owner (of its history) of each dataset that exists among `dataset_ids`."""
    rows = await conn.fetch(
        """SELECT d.id, h.owner_id FROM datasets d JOIN histories h ON h.id = d.history_id
           WHERE d.id = ANY($1::int[])""",
        dataset_ids,
    )
    return {row["id"]: row["owner_id"] for row in rows}


def _visible(owner_id: int | None) -> tuple[str, list[Any]]:
    """The WHERE clause of the exports of `owner_id` (None: everyone's), and its
    parameters."""
    if owner_id is None:
        return "kind = $1", [KIND]
    return "kind = $1 AND owner_id = $2", [KIND, owner_id]


async def exports_page(
    conn: Connection,
    *,
    owner_id: int | None,
    status: str | None,
    export_format: str | None,
    job_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TaskRow], int]:
    where, params = _visible(owner_id)
    if status is not None:
        params.append(status)
        where += f" AND status = ${len(params)}"
    if export_format is not None:
        params.append(export_format)
        where += f" AND request ->> 'export_format' = ${len(params)}"
    if job_key is not None:
        params.append(job_key)
        where += f" AND job_key = ${len(params)}"
    total = await conn.fetchval(f"SELECT count(*) FROM tasks WHERE {where}", *params)
    rows = await conn.fetch(
        f"SELECT {tasks.COLUMNS} FROM tasks WHERE {where} ORDER BY id DESC "
        f"LIMIT ${len(params) + 1} OFFSET ${len(params) + 2}",
        *params,
        limit,
        offset,
    )
    return [TaskRow.of(r) for r in rows], int(total)


async def delete_task(conn: Connection, task_id: int) -> None:
    await conn.execute("DELETE FROM tasks WHERE id = $1", task_id)


async def statistics(
    conn: Connection, *, owner_id: int | None
) -> tuple[dict[str, int], dict[str, int], Record]:
    """Exports by status, by format, and the size and file count of those finished."""
    where, params = _visible(owner_id)
    by_status = {
        r["status"]: r["count"]
        for r in await conn.fetch(
            f"SELECT status, count(*) FROM tasks WHERE {where} GROUP BY status", *params
        )
    }
    by_format = {
        str(r["format"]): r["count"]
        for r in await conn.fetch(
            f"SELECT request ->> 'export_format' AS format, count(*) FROM tasks "
            f"WHERE {where} GROUP BY 1",
            *params,
        )
    }
    # Several files exported with compress: false have no package: their total size is
    # the result's output_size.
    totals = await conn.fetchrow(
        f"""SELECT coalesce(sum(coalesce(artifact_size,
                                         (result ->> 'output_size')::bigint)), 0) AS size,
                   coalesce(sum(processed_items - failed_items), 0) AS files
            FROM tasks WHERE {where} AND status IN ('completed', 'expired')""",
        *params,
    )
    return by_status, by_format, totals


async def events_page(
    conn: Connection, task_id: int, *, limit: int, offset: int
) -> tuple[list[Record], int]:
    rows = await conn.fetch(
        """SELECT attempt, seq, event_type, status, progress, payload, occurred_at,
                  count(*) OVER () AS total
           FROM task_events WHERE task_id = $1 ORDER BY occurred_at, attempt, seq
           LIMIT $2 OFFSET $3""",
        task_id,
        limit,
        offset,
    )
    if rows:
        return list(rows), int(rows[0]["total"])
    total = await conn.fetchval("SELECT count(*) FROM task_events WHERE task_id = $1", task_id)
    return [], int(total)
