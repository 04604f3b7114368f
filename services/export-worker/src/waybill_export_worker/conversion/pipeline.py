"""Reading and writing overlapped: the reader runs one step ahead in a thread while
the writer works. Both sides spend their time in pyarrow, polars or h5py code that
releases the GIL, so on two cores this is close to max(read, write) instead of the sum."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(source: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what `source` yields, produced in a background thread at most `depth`
    items ahead (memory stays bounded). An exception in the source is raised here, in
    the consumer; a consumer that stops early stops the thread."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)
