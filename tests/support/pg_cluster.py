"""A throwaway PostgreSQL cluster of its own, on a free port, so that a test can stop
"the database" (or a benchmark can count its CPU) without touching the machine's
shared server.

It is the Debian PostgreSQL's own binaries (initdb, pg_ctl), run as the postgres user
when started as root, with trust authentication on 127.0.0.1 and its data in a
temporary directory that survives stop/start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from support.stack import free_port, port_open, wait_for


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1].parent


class PgCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.bin = _bin_dir()
        self.home = Path(tempfile.mkdtemp(prefix="waybill-pg-"))
        self.data = self.home / "data"
        self.home.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.home}'\nmax_connections = 200\n"
            )

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.home)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int:
        """The postmaster: its children are the backends and the server's workers."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "log"), "-w", "start")
        wait_for(lambda: port_open(self.port), timeout=30, message="PostgreSQL cluster")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if port_open(self.port):
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
