"""A throwaway RabbitMQ node of the test's own, on free ports, so that a test can stop
and restart "the broker" without touching the machine's shared one.

It is the Debian rabbitmq-server, started detached under its own node name with its
own data, log and config files (the machine's /etc/rabbitmq/rabbitmq.conf pins the
shared node's port, so the node gets a config file of its own). Its directory is kept
across stop/start, so durable queues and persistent messages survive a restart, as
they would on a real broker restart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from support.broker import Rabbitmqctl
from support.stack import free_port, port_open, wait_for


class RabbitNode:
    def __init__(self) -> None:
        self.name = f"wbtest{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        # Not under pytest's tmp_path: that is private to root, and the node runs as
        # the rabbitmq user.
        self.home = Path(tempfile.mkdtemp(prefix="waybill-rabbit-"))
        (self.home / "mnesia").mkdir()
        (self.home / "log").mkdir()
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.home, "rabbitmq", "rabbitmq")
            for path in self.home.rglob("*"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.home.chmod(0o755)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def ctl(self) -> Rabbitmqctl:
        return Rabbitmqctl(self.name, self._env())

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.home / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.home / "log"),
            RABBITMQ_PID_FILE=str(self.home / "node.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.home / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.home / "rabbitmq.conf"),
        )
        return env

    def start(self, timeout: float = 90) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self._env(), check=True, cwd=self.home)
        wait_for(lambda: port_open(self.port), timeout=timeout, interval=0.3, message=self.name)

    def stop(self) -> None:
        subprocess.run(
            self.ctl.argv("stop"),
            env=self._env(),
            check=False,
            capture_output=True,
            cwd=self.home,
            timeout=60,
        )
        wait_for(lambda: not port_open(self.port), timeout=30, message=f"{self.name} stopped")

    def remove(self) -> None:
        if port_open(self.port):
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
