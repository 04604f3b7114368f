"""Prometheus metrics, defined once; every service exposes them on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "waybill_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "waybill_http_request_seconds", "HTTP request latency", ["method", "route"]
)
TASKS = Counter("waybill_tasks_total", "Task transitions recorded", ["kind", "status"])
TASK_DURATION = Histogram(
    "waybill_task_duration_seconds",
    "Time from start to a terminal state",
    ["kind", "status"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
QUEUE_LAG = Histogram(
    "waybill_queue_lag_seconds",
    "Time between publishing a message and a consumer taking it",
    ["queue"],
    buckets=(0.005, 0.02, 0.1, 0.5, 1, 5, 30, 120, 600),
)
TASK_SUBSCRIBERS = Gauge(
    "waybill_task_subscribers", "Event streams following a task in this process"
)
BYTES_CONVERTED = Counter("waybill_bytes_converted_total", "Input bytes converted", ["format"])
DEAD_LETTERS = Counter("waybill_dead_letters_total", "Messages dead-lettered", ["queue"])
WEBHOOK_ATTEMPTS = Counter(
    "waybill_webhook_attempts_total",
    "Webhook delivery attempts, by outcome: delivered, retry (failed, tried again), failed "
    "(given up)",
    ["outcome"],
)
OUTBOX_PENDING = Gauge("waybill_outbox_pending", "Outbox messages not yet published")
DEPENDENCY_UP = Gauge(
    "waybill_dependency_up",
    "1 when the backing service answered at the last /readyz or /metrics",
    ["dependency"],
)
DEGRADED = Gauge(
    "waybill_degraded",
    "1 when the service is ready but a backing service it can do without is away "
    "(the gateway without the broker: its outbox holds the commands)",
)
