"""Threads that overlap decoding and writing with inference: a reader that decodes the next
frames while the model runs, and a writer that draws and encodes finished frames. Queues are
bounded, so a slow model holds back the reader instead of filling memory, and errors in either
thread are raised in the caller's thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
_DONE = object()
POLL_S = 0.1  # how often a blocked thread looks whether it was told to stop


class ReadAhead(Generic[Item]):
    """Iterate `items` in a background thread, up to `depth` items ahead of the consumer.

    Iterating this object yields the same items in order; an exception raised by `items` is
    raised here. `close()` (also on leaving a `with` block) stops the thread and closes the
    underlying generator in it (a video capture is released there).
    """

    def __init__(self, items: Iterator[Item], depth: int = 4) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dfseg-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    break
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
            self._put(_DONE)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Item]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead[Item]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteBehind:
    """Run submitted jobs in order in one background thread (at most `depth` waiting).

    `submit` blocks while the queue is full and raises the first error a job raised; `close()`
    runs what is queued, stops the thread and raises a pending error.
    """

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dfseg-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _DONE:
                return
            if self._error is None:
                try:
                    job()  # type: ignore[operator]
                except BaseException as exc:  # raised in the submitting thread
                    self._error = exc

    def submit(self, job: Callable[[], None]) -> None:
        self._raise_pending()
        self._queue.put(job)

    def close(self) -> None:
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
