"""Dynamic micro-batching: requests that arrive close together run as one model call.

One thread owns the model. It waits for a request, then keeps collecting until it holds
`max_batch` images or `max_wait_ms` have passed since the first one, runs them as one batch
(each with its own threshold and classes) and resolves each request's future. With
`max_batch=1` every request runs alone, in arrival order.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from dfseg.runtime.postprocess import PostprocessSettings
from dfseg.runtime.predictor import Predictor
from dfseg.structures import Detections


@dataclass
class BatchResult:
    """One request's detections and how it was run: the size of the batch it shared, its wait
    in the queue and the batch's model time, in milliseconds."""

    detections: Detections
    batch_size: int
    queue_ms: float
    model_ms: float


@dataclass
class _Request:
    image: np.ndarray
    settings: PostprocessSettings
    future: Future[BatchResult]
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatcherStats:
    """Requests and batches run so far."""

    requests: int = 0
    batches: int = 0
    largest_batch: int = 0

    @property
    def mean_batch(self) -> float:
        return self.requests / self.batches if self.batches else 0.0


class MicroBatcher:
    """Runs a `Predictor` on a thread of its own, batching concurrent requests.

    Args:
        predictor: the model (only this thread calls it once started).
        max_batch: most images per model call (clamped to what the artifact accepts).
        max_wait_ms: longest a request waits for others to join its batch.
    """

    def __init__(self, predictor: Predictor, max_batch: int = 8, max_wait_ms: float = 5.0) -> None:
        self.predictor = predictor
        self.max_batch = max(1, min(max_batch, accepted_batch(predictor)))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.stats = BatcherStats()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="dfseg-batcher", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray, settings: PostprocessSettings) -> Future[BatchResult]:
        """Queue one [H, W, 3] uint8 BGR image; the future holds its `BatchResult` (or the
        exception the model raised)."""
        future: Future[BatchResult] = Future()
        self._queue.put(_Request(image, settings, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued requests, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, closing = self._collect(first)
            self._run(batch)
            if closing:
                return

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        batch = [first]
        deadline = first.arrived + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        try:
            detections = self.predictor.predict_arrays(
                [r.image for r in batch], [r.settings for r in batch]
            )
        except Exception as exc:  # the model failed: every waiting request gets the error
            for request in batch:
                request.future.set_exception(exc)
            return
        model_ms = 1000.0 * (time.perf_counter() - started)
        self.stats.requests += len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for request, found in zip(batch, detections, strict=True):
            queue_ms = 1000.0 * (started - request.arrived)
            request.future.set_result(BatchResult(found, len(batch), queue_ms, model_ms))


def accepted_batch(predictor: Predictor) -> int:
    """The most images the artifact takes in one call without being split: its static batch,
    its dynamic batch's maximum, or unlimited (torch)."""
    backend = predictor.backend
    return backend.fixed_batch or backend.max_batch or 1 << 16
