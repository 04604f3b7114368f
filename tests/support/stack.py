"""Real servers for the tests: a database of their own (migrated with Alembic), a
vhost of their own on the shared RabbitMQ (support/broker.py), an S3 server of their own (the
SeaweedFS of `make run`, scripts/local-s3.sh, on a temporary data directory), and the
services as real processes the tests can kill."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from minio import Minio

from support.broker import BrokerSpace, Principal, Rabbitmqctl, open_broker_space

ROOT = Path(__file__).resolve().parents[2]
DB_ADMIN_URL = os.environ.get(
    "WAYBILL_TEST_DB_ADMIN", "postgresql://waybill:waybill@127.0.0.1:5432/postgres"
)
# An administrator's login on the RabbitMQ node (each session works in a vhost of its own).
AMQP_URL = os.environ.get("WAYBILL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_KEY = "test-admin-key"
S3_ACCESS_KEY, S3_SECRET_KEY = "waybill", "waybill-secret"  # the settings' defaults
LOCAL_S3 = ROOT / "scripts" / "local-s3.sh"

SERVICE_MODULES = {
    "gateway": "waybill_gateway",
    "export-worker": "waybill_export_worker",
    "extraction": "waybill_extraction",
    "tracker": "waybill_tracker",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


def admin_exec(sql: str, admin_url: str = DB_ADMIN_URL) -> None:
    """Run SQL as the database owner role (CREATE/DROP DATABASE need autocommit)."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", SERVICE_MODULES[self.name]],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        def check() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}; log:\n"
                    + self.log_path.read_text()[-4000:]
                )
            return self.ready()

        wait_for(check, timeout=timeout, message=f"{self.name} ready")

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a crashed worker)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM and wait for the graceful exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@dataclass
class Infra:
    """The backing servers of one test session."""

    database: str
    database_url: str
    prefix: str
    s3_port: int
    bucket: str
    workdir: Path
    broker: BrokerSpace
    db_admin_url: str = DB_ADMIN_URL
    s3_inner_ports: tuple[int, ...] = ()  # the S3 server's master, volume, filer, admin
    s3_process: subprocess.Popen[bytes] | None = None

    @property
    def amqp_url(self) -> str:
        """An administrator's login on the session's vhost (to look into queues)."""
        return self.broker.admin_url

    def start_s3(self) -> None:
        """Start the S3 server on its data directory: again after `stop_s3`, on the
        same ports, it serves what it stored before."""
        bindir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAYBILL_")}
        env.update(
            PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
            WAYBILL_S3_ACCESS_KEY=S3_ACCESS_KEY,
            WAYBILL_S3_SECRET_KEY=S3_SECRET_KEY,
        )
        ports = (self.s3_port, *self.s3_inner_ports)
        process = subprocess.Popen(
            ["bash", str(LOCAL_S3), str(self.workdir / "s3-data"), *map(str, ports)],
            env=env,
            stdout=(self.workdir / "logs" / "s3.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.s3_process = process

        def answering() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"the S3 server exited with {process.returncode}; log:\n"
                    + (self.workdir / "logs" / "s3.log").read_text()[-4000:]
                )
            try:
                s3_client(self).list_buckets()
            except Exception:
                return False
            return True

        wait_for(answering, timeout=60, interval=0.2, message="S3 server")

    def stop_s3(self) -> None:
        """SIGTERM, as `make stop` does, and wait for the exit."""
        if self.s3_process is not None and self.s3_process.poll() is None:
            self.s3_process.terminate()
            self.s3_process.wait(30)

    def service_env(self, name: str, port: int, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAYBILL_", "OTEL_"))}
        env.update(
            WAYBILL_ENVIRONMENT="development",
            WAYBILL_DATABASE_URL=self.database_url,
            WAYBILL_DATABASE_POOL_SIZE="5",
            WAYBILL_S3_ENDPOINT=f"127.0.0.1:{self.s3_port}",
            WAYBILL_S3_BUCKET=self.bucket,
            WAYBILL_ADMIN_API_KEY=ADMIN_KEY,
            WAYBILL_LOG_FORMAT="json",
            WAYBILL_LEASE_SECONDS="6",
            WAYBILL_MAX_ATTEMPTS="5",
            WAYBILL_SWEEP_INTERVAL_SECONDS="1",
            WAYBILL_CLEANUP_INTERVAL_SECONDS="2",
            WAYBILL_RECONCILE_INTERVAL_SECONDS="2",
            WAYBILL_SERVICE_ACCOUNT_CACHE_SECONDS="1",
            WAYBILL_SHUTDOWN_GRACE_SECONDS="10",
            WAYBILL_WORK_DIR=str(self.workdir / "scratch"),
            # Webhooks retried within a second or so, disabled after 12 failures in a row.
            WAYBILL_WEBHOOK_POLL_SECONDS="0.1",
            WAYBILL_WEBHOOK_TIMEOUT_SECONDS="3",
            WAYBILL_WEBHOOK_RETRY_BASE_SECONDS="0.3",
            WAYBILL_WEBHOOK_RETRY_MAX_SECONDS="1",
            WAYBILL_WEBHOOK_DISABLE_AFTER_FAILURES="12",
            **self.broker.service_env(name),
        )
        if name == "gateway":
            env["WAYBILL_PORT"] = str(port)
        else:
            env["WAYBILL_OPS_PORT"] = str(port)
        env.update(overrides)
        return env

    def service(self, name: str, **overrides: str) -> ServiceProcess:
        port = free_port()
        (self.workdir / "scratch").mkdir(parents=True, exist_ok=True)
        return ServiceProcess(
            name,
            self.service_env(name, port, **overrides),
            port,
            self.workdir / "logs" / f"{name}-{port}.log",
        )

    def settings_env(self) -> dict[str, str]:
        return self.service_env("tracker", 0)


def start_infra(
    workdir: Path,
    *,
    amqp_url: str = AMQP_URL,
    rabbitmqctl: Rabbitmqctl | None = None,
    db_admin_url: str = DB_ADMIN_URL,
) -> Infra:
    """A database of its own on the server `db_admin_url` points at (the shared one
    by default), a vhost of its own on the RabbitMQ node (`amqp_url` an administrator's
    login on it, `rabbitmqctl` its control; the machine's node by default), and an S3
    server."""
    token = uuid.uuid4().hex[:8]
    database = f"waybill_test_{token}"
    broker = open_broker_space(rabbitmqctl or Rabbitmqctl(), amqp_url, f"wbtest-{token}")
    admin_exec(f'CREATE DATABASE "{database}"', db_admin_url)
    server = db_admin_url.split("://", 1)[1].rsplit("/", 1)[0]
    infra = Infra(
        database=database,
        database_url=f"postgresql+asyncpg://{server}/{database}",
        prefix=broker.topology.prefix,
        s3_port=free_port(),
        bucket=f"waybill-test-{token}",
        workdir=workdir,
        broker=broker,
        db_admin_url=db_admin_url,
        s3_inner_ports=tuple(free_port() for _ in range(4)),
    )
    subprocess.run(
        [sys.executable, "-m", "waybill_shared.db.migrate"],
        env=infra.settings_env(),
        check=True,
        cwd=ROOT,
    )
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    infra.start_s3()
    return infra


def stop_infra(infra: Infra) -> None:
    infra.stop_s3()
    infra.broker.remove()
    admin_exec(f'DROP DATABASE IF EXISTS "{infra.database}" WITH (FORCE)', infra.db_admin_url)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    infra: Infra
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.services['gateway'].port}"

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.gateway_url, headers=headers, timeout=30)

    def service_account(
        self, name: str, *, acts_for: str, user_ids: list[int] | None = None
    ) -> tuple[dict[str, Any], Principal]:
        """A service account (through the API) and its AMQP user (made on the broker)."""
        principal = self.infra.broker.principal(name)
        body: dict[str, Any] = {
            "name": f"{principal.user}-{uuid.uuid4().hex[:6]}",
            "amqp_user": principal.user,
            "acts_for": acts_for,
        }
        if user_ids:
            body["user_ids"] = user_ids
        with self.client() as admin:
            response = admin.post("/api/service-accounts", json=body)
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        return account, principal

    @functools.cached_property
    def publisher(self) -> Principal:
        """A system that may act for any user (the checks of its requests are then
        those of an HTTP caller's)."""
        return self.service_account("publisher", acts_for="any")[1]

    def new_user(self, name: str | None = None, *, is_admin: bool = False) -> httpx.Client:
        with self.client() as admin:
            response = admin.post(
                "/api/users",
                json={"name": name or f"user-{uuid.uuid4().hex[:8]}", "is_admin": is_admin},
            )
            response.raise_for_status()
        return self.client(response.json()["api_key"])

    def stop(self) -> None:
        for service in self.services.values():
            try:
                service.terminate(timeout=20)
            except Exception:
                service.kill()


def start_stack(
    infra: Infra, names: tuple[str, ...] = tuple(SERVICE_MODULES), **overrides: str
) -> Stack:
    stack = Stack(infra)
    try:
        for name in names:
            stack.services[name] = infra.service(name, **overrides).start()
        for service in stack.services.values():
            service.wait_ready()
    except BaseException:
        stack.stop()  # none left running behind a failed start
        raise
    return stack


def upload(client: httpx.Client, name: str, data: bytes, **form: str) -> dict[str, Any]:
    response = client.post("/api/files", files={"file": (name, data)}, data=form)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def finished(client: httpx.Client, job_id: int, timeout: float = 60) -> dict[str, Any]:
    """Poll a batch export until it reaches a terminal state."""

    def poll() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/data-export/jobs/{job_id}").json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(poll, timeout=timeout, message=f"job {job_id} to finish")
    return result


def wait_task(client: httpx.Client, task_id: str, timeout: float = 60) -> str:
    """Poll a task (`/api/tasks/{id}/state`) until it ends: SUCCESS or FAILURE."""
    state: str = wait_for(
        lambda: (
            (s := client.get(f"/api/tasks/{task_id}/state").json()) in ("SUCCESS", "FAILURE") and s
        ),
        timeout=timeout,
        message=f"task {task_id}",
    )
    return state


def expire_now(infra: Infra, job_id: int) -> None:
    """Move a job's expiry into the past (a TTL is at least an hour)."""
    admin_exec(
        f"UPDATE tasks SET expires_at = now() - interval '1 second' WHERE id = {int(job_id)}",
        infra.database_url.replace("postgresql+asyncpg", "postgresql"),
    )


def create_export(
    client: httpx.Client, name: str, file_ids: list[int], fmt: str, **fields: Any
) -> httpx.Response:
    """POST a batch export; the caller checks the answer."""
    return client.post(
        "/api/data-export/jobs",
        json={"name": name, "file_ids": file_ids, "export_format": fmt, **fields},
    )


def s3_client(infra: Infra) -> Minio:
    """A minio client on the test's own S3 server."""
    return Minio(
        f"127.0.0.1:{infra.s3_port}",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
    )


class OwnServer(Protocol):
    """A PostgreSQL cluster or RabbitMQ node that a test starts, stops and removes."""

    port: int

    def start(self) -> None: ...

    def remove(self) -> None: ...


@contextmanager
def stack_on_own_server(server: OwnServer, tmp_path: Path, **infra_args: Any) -> Iterator[Stack]:
    """A whole stack on a server of the test's own, which the test may stop: it is
    started again at the end if left stopped, so the run's database or vhost is deleted
    like any other run's, then removed."""
    try:
        server.start()
        infra = start_infra(tmp_path, **infra_args)
        try:
            stack = start_stack(infra)
            try:
                yield stack
            finally:
                stack.stop()
        finally:
            if not port_open(server.port):
                server.start()
            stop_infra(infra)
    finally:
        server.remove()
