"""A TCP proxy between a service and a server (asyncio, in a thread of the test), to
break the network between them the two ways a network breaks:

- `drop()`: every open connection is reset at once (a restarted router, a killed
  NAT entry); the client sees it at its next read or write and may reconnect.
- `black_hole()`: from now on bytes vanish both ways, on the open connections and on
  new ones, which are still accepted (a partition: no reset, no FIN, only silence);
  only a timeout or heartbeat on either side can notice.
- `heal()`: new connections are forwarded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from support.stack import free_port

T = TypeVar("T")


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepted = 0  # connections accepted so far
        self._black_hole = False
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        return self

    def url_for(self, amqp_url: str) -> str:
        """`amqp_url` (on the target's port) through this proxy."""
        return amqp_url.replace(f":{self.target[1]}/", f":{self.port}/", 1)

    def drop(self) -> None:
        async def reset_all() -> None:
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()

        self._run(reset_all())

    def black_hole(self) -> None:
        self._black_hole = True

    def heal(self) -> None:
        """Forward new connections again (those black-holed stay silent until closed)."""
        self._black_hole = False

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._open):
                writer.transport.abort()

        self._run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._open.add(writer)
        if self._black_hole:
            await self._swallow(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._open.discard(writer)
            return
        self._open.add(up_writer)
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self._black_hole:
                    continue  # the bytes vanish; the connection stays open
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if self._black_hole:
            return  # nothing, not even a FIN, crosses a black hole
        with contextlib.suppress(OSError):
            writer.transport.abort()
        self._open.discard(writer)

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass
