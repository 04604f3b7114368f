"""The task lifecycle's statements: registration, leases, status events, sweeps.

Plain SQL on asyncpg (see db/pg.py for why), each function one or two round trips;
none commits: the caller owns the transaction (or runs a single statement outside
one). The schema is db/models.py's `tasks`, `task_events` and `export_associations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from waybill_shared import metrics
from waybill_shared.clock import utcnow
from waybill_shared.contracts.messages import TaskEvent
from waybill_shared.db.pg import Connection, Record, from_json, to_json
from waybill_shared.outbox import OUTBOX_COLUMNS, OutboxEntry, Prepared
from waybill_shared.tasks import notify
from waybill_shared.tasks.state import TERMINAL, TaskState, fold, next_status, with_status
from waybill_shared.webhooks.events import kind_of as webhook_kind
from waybill_shared.webhooks.repository import deliveries_cte

COLUMNS = (
    "id, uuid, kind, owner_id, job_key, status, progress, total_items, processed_items, "
    "failed_items, items, request, result, error_message, artifact_key, artifact_size, "
    "artifact_sha256, attempt, lease_owner, lease_expires_at, ttl_hours, principal, "
    "created_at, started_at, completed_at, expires_at, updated_at"
)

# Webhook deliveries for the events a statement records (see waybill_shared.webhooks).
EVENT_DELIVERIES = deliveries_cte(
    "new JOIN batch USING (task_id, attempt, seq)", kind="batch.hook", owner="batch.owner_id"
)
SYSTEM_EVENT_DELIVERIES = deliveries_cte("new", kind="$9::text", owner="$8::int")
# A batch of status events, as columns (task id, attempt, seq, event type, status after
# it, progress, payload, occurred at, owner, webhook kind), then the NOTIFY channel and
# its payloads; the new ones only (a redelivery inserts nothing) make webhook
# deliveries. Answers how many were new.
INSERT_EVENTS = f"""WITH batch AS (
        SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[],
                             $6::float8[], $7::jsonb[], $8::timestamptz[], $9::int[],
                             $10::text[])
            AS b(task_id, attempt, seq, event_type, status, progress, payload, occurred_at,
                 owner_id, hook)),
    new AS (
        INSERT INTO task_events (task_id, attempt, seq, event_type, status, progress,
                                 payload, occurred_at)
        SELECT task_id, attempt, seq, event_type, status, progress, payload, occurred_at
        FROM batch
        ON CONFLICT DO NOTHING
        RETURNING id, task_id, attempt, seq),
    {EVENT_DELIVERIES},
    told AS (SELECT pg_notify($11, p) FROM unnest($12::text[]) AS p)
    SELECT count(*) FROM new WHERE (SELECT count(*) FROM told) >= 0"""


@dataclass(frozen=True)
class TaskRow:
    """A task as read from its row, JSON columns decoded."""

    id: int
    uuid: str
    kind: str
    owner_id: int
    job_key: str | None
    status: str
    progress: float
    total_items: int
    processed_items: int
    failed_items: int
    items: list[Any]
    request: dict[str, Any]
    result: dict[str, Any]
    error_message: str | None
    artifact_key: str | None
    artifact_size: int | None
    artifact_sha256: str | None
    attempt: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    ttl_hours: int
    principal: str | None  # the AMQP user that asked, when not over HTTP
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, record: Record | dict[str, Any]) -> TaskRow:
        values = dict(record)
        for name, empty in (("items", []), ("request", {}), ("result", {})):
            values[name] = from_json(values[name]) or empty
        return cls(**values)

    def state(self) -> TaskState:
        return TaskState(
            status=self.status,
            kind=self.kind,
            progress=self.progress,
            total_items=self.total_items,
            processed_items=self.processed_items,
            failed_items=self.failed_items,
            items=tuple(self.items),
            result=self.result,
            error_message=self.error_message,
            artifact_key=self.artifact_key,
            artifact_size=self.artifact_size,
            artifact_sha256=self.artifact_sha256,
            ttl_hours=self.ttl_hours,
            started_at=self.started_at,
            completed_at=self.completed_at,
            expires_at=self.expires_at,
            lease_expires_at=self.lease_expires_at,
        )


def _row(record: Record | None) -> TaskRow | None:
    return TaskRow.of(record) if record is not None else None


# --- registration -------------------------------------------------------------------


async def get_task(conn: Connection, task_id: int, *, lock: bool = False) -> TaskRow | None:
    lock_clause = " FOR UPDATE" if lock else ""
    return _row(
        await conn.fetchrow(f"SELECT {COLUMNS} FROM tasks WHERE id = $1{lock_clause}", task_id)
    )


async def get_task_by_uuid(
    conn: Connection, task_uuid: UUID | str, *, lock: bool = False
) -> TaskRow | None:
    lock_clause = " FOR UPDATE" if lock else ""
    return _row(
        await conn.fetchrow(
            f"SELECT {COLUMNS} FROM tasks WHERE uuid = $1{lock_clause}", str(task_uuid)
        )
    )


async def get_tasks(conn: Connection, task_ids: Iterable[int]) -> dict[int, TaskRow]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM tasks WHERE id = ANY($1::int[])", sorted(set(task_ids))
    )
    return {r["id"]: TaskRow.of(r) for r in rows}


async def find_by_job_key(
    conn: Connection, *, owner_id: int, kind: str, job_key: str
) -> TaskRow | None:
    return _row(
        await conn.fetchrow(
            f"SELECT {COLUMNS} FROM tasks WHERE owner_id = $1 AND kind = $2 AND job_key = $3",
            owner_id,
            kind,
            job_key,
        )
    )


async def get_task_and_last_event(
    conn: Connection, *, task_id: int | None = None, task_uuid: str | None = None
) -> tuple[TaskRow, int] | None:
    """A task (by id or uuid) and the id of its latest event (0 before any), in one
    statement, so from one snapshot: a task's row and its events are written in one
    transaction. Its events are inserted under the task's row lock, so their ids grow
    in commit order: an event stream can resume after one of them."""
    where, value = ("id = $1", task_id) if task_id is not None else ("uuid = $1", task_uuid)
    record = await conn.fetchrow(
        f"""SELECT {COLUMNS}, coalesce((SELECT max(e.id) FROM task_events e
                                        WHERE e.task_id = tasks.id), 0) AS last_event_id
            FROM tasks WHERE {where}""",
        value,
    )
    if record is None:
        return None
    fields = dict(record)
    last_event_id = int(fields.pop("last_event_id"))
    return TaskRow.of(fields), last_event_id


@dataclass(frozen=True)
class Registered:
    task: TaskRow
    created: bool
    command: OutboxEntry | None = None  # to publish once the statement's transaction commits


async def register_task(
    conn: Connection,
    *,
    task_uuid: UUID | str,
    kind: str,
    owner_id: int,
    request: dict[str, Any] | str,
    job_key: str | None = None,
    total_items: int = 0,
    items: list[Any] | None = None,
    ttl_hours: int = 48,
    command: Prepared | None = None,
    principal: str | None = None,
) -> Registered:
    """Insert the task unless it exists (same uuid, or same owner+kind+job_key), with
    `command` in the outbox when given: one statement, so atomic even outside a
    transaction. `request` may be given as JSON text already. `principal` is the AMQP
    user of a command that came straight from the broker."""
    returning = f"SELECT {COLUMNS}, NULL::int AS outbox_id FROM task"
    announce = ""
    values: list[Any] = [
        str(task_uuid),
        kind,
        owner_id,
        job_key,
        request if isinstance(request, str) else to_json(request),
        total_items,
        to_json(items or []),
        ttl_hours,
        principal,
    ]
    if command is not None:
        announce = f""", announced AS (
                INSERT INTO outbox ({OUTBOX_COLUMNS})
                SELECT $10, $11, $12, $13, $14, $15 FROM task RETURNING id)"""
        returning = f"SELECT {COLUMNS}, (SELECT id FROM announced) AS outbox_id FROM task"
        values.extend(command.row())
    record = await conn.fetchrow(
        f"""WITH task AS (
                INSERT INTO tasks (uuid, kind, owner_id, job_key, request, total_items, items,
                                   ttl_hours, principal, status, progress, processed_items,
                                   failed_items, result, attempt)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, 0, 0, '{{}}', 0)
                ON CONFLICT DO NOTHING
                RETURNING {COLUMNS}){announce}
            {returning}""",
        *values,
    )
    if record is not None:
        fields = dict(record)
        outbox_id = fields.pop("outbox_id")
        entry = command.entry(outbox_id) if command is not None else None
        return Registered(TaskRow.of(fields), True, entry)
    existing = await get_task_by_uuid(conn, task_uuid)
    if existing is None and job_key is not None:
        existing = await find_by_job_key(conn, owner_id=owner_id, kind=kind, job_key=job_key)
    if existing is None:
        raise LookupError(f"task {task_uuid} conflicts with a task that is gone")
    return Registered(existing, False)


# --- leases -------------------------------------------------------------------------


async def claim_lease(
    conn: Connection,
    *,
    task_uuid: UUID | str,
    worker_id: str,
    lease_seconds: float,
    asked_by: tuple[str, int] | None = None,
) -> TaskRow | None:
    """Compare-and-set: take the task if it is active and nobody holds a live lease,
    and, with `asked_by` (principal, owner id), only if that principal registered it
    for that owner. Returns the task (its attempt incremented) or None."""
    values: list[Any] = [str(task_uuid), worker_id, float(lease_seconds)]
    theirs = ""
    if asked_by is not None:
        theirs = " AND principal = $4 AND owner_id = $5"
        values.extend(asked_by)
    return _row(
        await conn.fetchrow(
            f"""UPDATE tasks
                SET attempt = attempt + 1, lease_owner = $2,
                    lease_expires_at = now() + make_interval(secs => $3),
                    status = 'processing', started_at = coalesce(started_at, now()),
                    updated_at = now()
                WHERE uuid = $1 AND status IN ('pending', 'processing')
                  AND (lease_owner IS NULL OR lease_expires_at < now()){theirs}
                RETURNING {COLUMNS}""",
            *values,
        )
    )


@dataclass(frozen=True)
class LeaseKey:
    task_id: int
    attempt: int


async def extend_leases(
    conn: Connection, leases: Sequence[LeaseKey], *, worker_id: str, lease_seconds: float
) -> dict[LeaseKey, str]:
    """Extend every lease this worker holds in one statement. Returns the status of each
    lease still held; a lease missing from the answer was lost (another attempt owns
    the task now) and its work must stop."""
    rows = await conn.fetch(
        """UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $4)
           FROM unnest($1::int[], $2::int[]) AS held(id, attempt)
           WHERE tasks.id = held.id AND tasks.attempt = held.attempt
             AND tasks.lease_owner = $3
           RETURNING tasks.id, tasks.attempt, tasks.status""",
        [lease.task_id for lease in leases],
        [lease.attempt for lease in leases],
        worker_id,
        float(lease_seconds),
    )
    return {LeaseKey(r["id"], r["attempt"]): r["status"] for r in rows}


async def finish_leases(conn: Connection, leases: Sequence[LeaseKey], *, worker_id: str) -> None:
    """The work is done and its terminal event confirmed by the broker: the leases no
    longer expire, so the sweeper will not re-dispatch while the tracker applies the
    event."""
    await conn.execute(
        """UPDATE tasks SET lease_expires_at = NULL
           FROM unnest($1::int[], $2::int[]) AS done(id, attempt)
           WHERE tasks.id = done.id AND tasks.attempt = done.attempt
             AND tasks.lease_owner = $3""",
        [lease.task_id for lease in leases],
        [lease.attempt for lease in leases],
        worker_id,
    )


async def hand_back(conn: Connection, lease: LeaseKey, *, worker_id: str, error: str) -> None:
    """Let the lease run out now, so the tracker re-dispatches the task at its next
    sweep (up to the attempt limit) instead of when the lease would have expired."""
    await conn.execute(
        """UPDATE tasks SET lease_expires_at = now(), error_message = $4
           WHERE id = $1 AND attempt = $2 AND lease_owner = $3""",
        lease.task_id,
        lease.attempt,
        worker_id,
        f"attempt {lease.attempt} failed: {error}"[:4000],
    )


async def task_status(conn: Connection, task_id: int) -> str | None:
    status: str | None = await conn.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
    return status


# --- status events --------------------------------------------------------------------


async def apply_events(conn: Connection, events: Iterable[TaskEvent]) -> int:
    """Record a batch of status events from workers and fold them into their tasks, in
    one transaction that the caller owns (four round trips, whatever the batch size).

    Idempotent: the (task, attempt, seq) key makes a redelivered event a no-op, and
    folding a repeated event changes nothing (see state.fold). Returns how many events
    were new."""
    by_task: dict[str, list[TaskEvent]] = {}
    for event in events:
        by_task.setdefault(str(event.task_id), []).append(event)
    # Locked in id order, so two trackers applying overlapping batches cannot deadlock.
    records = await conn.fetch(
        f"SELECT {COLUMNS} FROM tasks WHERE uuid = ANY($1::text[]) ORDER BY id FOR UPDATE",
        list(by_task),
    )
    event_rows: list[tuple[Any, ...]] = []
    changed: list[tuple[TaskRow, TaskState]] = []
    for record in records:
        task = TaskRow.of(record)
        before = state = task.state()
        for event in sorted(by_task[task.uuid], key=lambda e: (e.attempt, e.seq)):
            status_before = state.status
            state = fold(state, event)
            event_rows.append(
                (
                    task.id,
                    event.attempt,
                    event.seq,
                    event.event,
                    state.status,
                    event.progress,
                    event.model_dump_json(
                        include={"item", "artifact", "result", "error", "item_index"}
                    ),
                    event.occurred_at,
                    task.owner_id,
                    webhook_kind(event.event, status_before, state.status),
                )
            )
        changed.append((task, state))
        _count_transition(task, before, state)
    if not event_rows:
        return 0
    # The NOTIFY rides on the insert (no round trip of its own) and is delivered at
    # commit: one notice for the batch, naming its tasks (see tasks/notify.py).
    inserted = await conn.fetchval(
        INSERT_EVENTS,
        *(list(column) for column in zip(*event_rows, strict=True)),
        notify.CHANNEL,
        notify.payloads(task.id for task, _ in changed),
    )
    await _write_states(conn, changed)
    return int(inserted)


async def record_system_event(
    conn: Connection,
    task: TaskRow,
    event: str,
    *,
    error: str | None = None,
    payload: dict[str, Any] | None = None,
) -> TaskRow | None:
    """A transition decided outside a worker (cancel, expiry, lease loss, refusal),
    logged as an event of attempt 0. The task row must be locked by the caller.
    Returns the task after it, or None when the event may not move it."""
    new = next_status(task.status, event)
    if new == task.status:
        return None
    now = utcnow()
    before = task.state()
    state = with_status(before, new, now)
    if error:
        state = replace(state, error_message=error)
    await conn.execute(
        f"""WITH told AS (SELECT pg_notify($7, $1::int::text)),
           new AS (
               INSERT INTO task_events (task_id, attempt, seq, event_type, status, progress,
                                        payload, occurred_at)
               SELECT $1, 0, (SELECT coalesce(max(seq), 0) + 1 FROM task_events
                              WHERE task_id = $1 AND attempt = 0), $2, $3, $4, $5, $6
               FROM told
               RETURNING id, task_id),
           {SYSTEM_EVENT_DELIVERIES}
           SELECT 1""",
        task.id,
        event,
        new,
        task.progress,
        to_json({"error": error, **(payload or {})}),
        now,
        notify.CHANNEL,
        task.owner_id,
        webhook_kind(event, task.status, new),
    )
    await _write_states(conn, [(task, state)])
    _count_transition(task, before, state)
    return replace(
        task,
        status=state.status,
        error_message=state.error_message,
        completed_at=state.completed_at,
        lease_expires_at=state.lease_expires_at,
    )


async def _write_states(conn: Connection, changed: list[tuple[TaskRow, TaskState]]) -> None:
    if not changed:
        return
    await conn.executemany(
        """UPDATE tasks SET status = $2, progress = $3, processed_items = $4,
                  failed_items = $5, items = $6, result = $7, error_message = $8,
                  artifact_key = $9, artifact_size = $10, artifact_sha256 = $11,
                  started_at = $12, completed_at = $13, expires_at = $14,
                  lease_expires_at = $15, updated_at = now()
           WHERE id = $1""",
        [
            (
                task.id,
                s.status,
                s.progress,
                s.processed_items,
                s.failed_items,
                to_json(list(s.items)),
                to_json(s.result),
                s.error_message,
                s.artifact_key,
                s.artifact_size,
                s.artifact_sha256,
                s.started_at,
                s.completed_at,
                s.expires_at,
                s.lease_expires_at,
            )
            for task, s in changed
        ],
    )
    await sync_export_associations(
        conn, [(task, s) for task, s in changed if task.kind == "history_export"]
    )


async def sync_export_associations(
    conn: Connection, changed: Sequence[tuple[TaskRow, TaskState]]
) -> None:
    """Keep history exports' associations (status, result, expiry) in step with their
    tasks, in the same transaction."""
    if not changed:
        return
    await conn.executemany(
        """UPDATE export_associations SET status = $2, expires_at = $3, result_data = $4
           WHERE task_id = $1""",
        [
            (
                task.id,
                s.status,
                s.expires_at,
                to_json(
                    {
                        "success": s.status == "completed",
                        "uri": s.result.get("uri"),
                        "error": s.error_message if s.status in ("failed", "cancelled") else None,
                    }
                ),
            )
            for task, s in changed
        ],
    )


def _count_transition(task: TaskRow, before: TaskState, after: TaskState) -> None:
    if after.status == before.status:
        return
    metrics.TASKS.labels(kind=task.kind, status=after.status).inc()
    if after.status in TERMINAL and after.status != "expired" and after.started_at is not None:
        assert after.completed_at is not None
        metrics.TASK_DURATION.labels(kind=task.kind, status=after.status).observe(
            max((after.completed_at - after.started_at).total_seconds(), 0.0)
        )


# --- sweeps ---------------------------------------------------------------------------


async def lock_expired_leases(conn: Connection, *, limit: int = 100) -> list[TaskRow]:
    """Active tasks whose worker stopped heartbeating (locked for the caller)."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM tasks
            WHERE status IN ('pending', 'processing') AND lease_expires_at < now()
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [TaskRow.of(r) for r in rows]


async def release_for_redispatch(conn: Connection, task_id: int) -> None:
    await conn.execute(
        "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", task_id
    )


async def lock_expired_artifacts(conn: Connection, *, limit: int = 500) -> list[TaskRow]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM tasks
            WHERE status = 'completed' AND expires_at < now()
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [TaskRow.of(r) for r in rows]


async def lock_completed(conn: Connection, task_ids: list[int]) -> list[TaskRow]:
    """These tasks, those still completed, locked (skipping any another transaction holds)."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM tasks
            WHERE id = ANY($1::int[]) AND status = 'completed'
            ORDER BY id FOR UPDATE SKIP LOCKED""",
        task_ids,
    )
    return [TaskRow.of(r) for r in rows]


async def clear_artifact(conn: Connection, task_id: int) -> None:
    await conn.execute("UPDATE tasks SET artifact_key = NULL WHERE id = $1", task_id)


async def target_taken_by_another(conn: Connection, *, target_uri: str, owner_id: int) -> bool:
    """Whether a long-term export target already holds another owner's history export.
    A target belongs to the owner of the exports written there: writing someone else's
    history over it would replace their archive, and either export's record would then
    re-import the other's history. Checked by the gateway and again by the worker (for
    commands published straight to the broker). The advisory lock serialises claims
    on one target until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", target_uri)
    found = await conn.fetchval(
        """SELECT 1 FROM tasks WHERE kind = 'history_export'
           AND request ->> 'target_uri' = $1 AND owner_id <> $2 LIMIT 1""",
        target_uri,
        owner_id,
    )
    return found is not None
