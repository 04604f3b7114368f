"""The task lifecycle, one module a job:

- `state`: the pure state machine and how an event folds into a task;
- `repository`: the statements on `tasks` and `task_events` (asyncpg);
- `runner`: a task's life in a worker (register, authorize, lease, work, report);
- `lease`: the per-worker keeper of leases (heartbeats, cancels, lost leases);
- `events`: a task attempt's numbered, pipelined status events;
- `retention`: what the clock decides (expiry, re-dispatch of lost tasks);
- `notify`: telling other processes which tasks changed (LISTEN/NOTIFY).
"""
