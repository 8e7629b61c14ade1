"""Micro-batching for the model (issue 22): concurrent requests' images go through the model as one batch.

One worker thread owns the model. A request hands its prepared image to :meth:`MicroBatcher.submit` and awaits
its own answer; the worker takes what is queued, up to ``max_batch``, and runs ``run_batch`` once on it. It
waits for more only while requests are *announced* (:meth:`MicroBatcher.announced`: a request that is still
decoding its upload) and never longer than ``max_wait_ms`` after the oldest queued item arrived, so a lone
request is not delayed at all and none by more than the wait. Answers are matched to requests by position in
the batch (``run_batch`` returns one result per item, in order); an item whose result is an exception fails
alone, and a batch that raises as a whole is run again item by item so one bad item cannot fail the others.

Search work (ANN search, scoring) is not done here: the worker only runs the model, the requests' own threads
do the rest.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from fashionsearchnet.app.batch_policy import BatchPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

class ShuttingDown(RuntimeError):
    """The batcher was closed before the item ran."""


@dataclass
class _Entry:
    item: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    t: float


class Announcement:
    """``with batcher.announced(): ...; await batcher.submit(x, ann)``: while open, the worker knows one more item
    is on its way and may wait for it (within ``max_wait_ms``). Submitting closes it."""

    def __init__(self, batcher: "MicroBatcher") -> None:
        self._b = batcher
        self.open = False

    def __enter__(self) -> "Announcement":
        self._b._announce(self, +1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._b._announce(self, -1)


class MicroBatcher(Generic[T, R]):
    """Runs ``run_batch(items) -> results`` (one result or Exception per item, in order) on a worker thread."""

    def __init__(self, run_batch: Callable[[list[T]], Sequence[R | BaseException]],
                 policy: BatchPolicy | None = None, name: str = "fsn-model") -> None:
        self.run_batch = run_batch
        self.policy = policy or BatchPolicy()
        self.name = name
        self._cond = threading.Condition()
        self._queue: deque[_Entry] = deque()
        self._coming = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.batches = 0  # model runs so far
        self.items = 0  # items run so far
        self.largest = 0  # largest batch so far

    # ---- request side ---------------------------------------------------------------------------------
    def announced(self) -> Announcement:
        return Announcement(self)

    def _announce(self, a: Announcement, step: int) -> None:
        with self._cond:
            if step > 0 and not a.open:
                a.open, self._coming = True, self._coming + 1
            elif step < 0 and a.open:
                a.open, self._coming = False, self._coming - 1
                self._cond.notify()

    async def submit(self, item: T, announcement: Announcement | None = None) -> R:
        """Queue ``item`` and wait for its own result (or its exception)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        with self._cond:
            if self._closed:
                raise ShuttingDown("the service is shutting down; retry on another kiosk or in a moment")
            self._start()
            self._queue.append(_Entry(item, loop, fut, time.perf_counter()))
            if announcement is not None and announcement.open:
                announcement.open, self._coming = False, self._coming - 1
            self._cond.notify()
        return await fut

    def stats(self) -> dict[str, Any]:
        return {"max_batch": self.policy.max_batch, "max_wait_ms": self.policy.max_wait_ms, "batches": self.batches,
                "items": self.items, "largest_batch": self.largest}

    def close(self) -> None:
        """Stop the worker; items still queued fail with :class:`ShuttingDown`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(10)

    # ---- worker side ----------------------------------------------------------------------------------
    def _start(self) -> None:  # under self._cond
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    def _take(self) -> list[_Entry] | None:
        """The next batch (None once closed): what is queued, plus announced items that arrive in time."""
        p = self.policy
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            deadline = self._queue[0].t + p.max_wait_ms / 1e3
            while len(self._queue) < p.max_batch and self._coming > 0:
                left = deadline - time.perf_counter()
                if left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            n = min(len(self._queue), p.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                break
            self.batches += 1
            self.items += len(batch)
            self.largest = max(self.largest, len(batch))
            for entry, result in zip(batch, self._run([e.item for e in batch])):
                _deliver(entry, result)
        with self._cond:
            left, self._queue = list(self._queue), deque()
        for entry in left:
            _deliver(entry, ShuttingDown("the service is shutting down; retry on another kiosk or in a moment"))

    def _run(self, items: list[T]) -> list[Any]:
        try:
            out = list(self.run_batch(items))
            if len(out) != len(items):
                raise RuntimeError(f"run_batch returned {len(out)} results for {len(items)} items")
            return out
        except Exception as e:  # noqa: BLE001 - handed to the request(s), never lost
            if len(items) == 1:
                return [e]
            log.warning("a batch of %d failed (%s); running its items one by one", len(items), e)
            return [r for it in items for r in self._run([it])]


def _deliver(entry: _Entry, result: Any) -> None:
    """Hand ``result`` to the request's event loop (nothing to do once that loop has closed: nobody waits)."""
    try:
        entry.loop.call_soon_threadsafe(_settle, entry.future, result)
    except RuntimeError:  # the loop is closed
        pass


def _settle(fut: asyncio.Future, result: Any) -> None:
    if fut.done():  # the request was cancelled (client gone)
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
