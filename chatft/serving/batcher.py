"""DynamicBatcher: concurrent requests grouped into one ``predictor.batch`` call (no torch here).

Each HTTP request submits its texts and awaits one future per text. One background task takes the queue:
it waits for the first text, then up to ``max_wait_ms`` for more, until ``max_batch_size`` texts are queued,
and runs the predictor on them in a single model thread, so the event loop keeps accepting requests while
the model computes. The wait applies only under concurrent load (the previous forward pass was shared by
several texts, or texts are still queued): a lone request is never held back, so a client alone pays no
batching delay, and under load the texts that arrive while the model computes form the next batch anyway. When more than one forward pass is already queued (a backlog under load), it takes up to
``GROUP_PASSES * max_batch_size`` texts at once and lets ``predictor.batch`` sort them by length into passes
of ``max_batch_size``: similar lengths share a pass (less padding), as in ``Predictor.batch``.
``max_batch_size=1`` turns batching off: one text per forward pass, in arrival order.

A client that goes away cancels only its own futures: cancelled texts are dropped before the forward pass
and results are never set on a future that is already done, so the other requests of a batch are served.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["DynamicBatcher", "GROUP_PASSES"]

#: With a backlog, how many forward passes' worth of texts one round takes (length grouping across them).
GROUP_PASSES = 4


class DynamicBatcher:
    """Group texts submitted concurrently into batched predictor calls.

    Args:
        predict_many: ``texts, batch_size -> results`` (``predictor.batch``), run in one model thread.
        max_batch_size: Most texts per forward pass; 1 turns batching off.
        max_wait_ms: How long the first queued text waits for others to join its batch.
        on_batch: Called with the number of texts of each forward round (metrics).
        on_queue: Called with the queue depth whenever it changes (metrics).
    """

    def __init__(
        self,
        predict_many: Callable[[Sequence[str], int], list[Any]],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.predict_many = predict_many
        self.max_batch_size = max_batch_size
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.on_batch = on_batch or (lambda n: None)
        self.on_queue = on_queue or (lambda n: None)
        self._queue: collections.deque[tuple[str, asyncio.Future]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatft-model")
        self._task: asyncio.Task | None = None
        self._last_round = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="chatft-batcher")

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def submit(self, texts: Sequence[str]) -> list[Any]:
        """Queue ``texts`` and wait for their results (in order)."""
        if self._closing:
            raise RuntimeError("the batcher is shutting down")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in texts]
        self._queue.extend(zip(texts, futures, strict=True))
        self.on_queue(len(self._queue))
        self._wakeup.set()
        return list(await asyncio.gather(*futures))

    async def run_in_model_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the model thread (warm-up), serialized with the forward passes."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Finish every queued text, then stop the task and the model thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _gather_more(self) -> None:
        """Wait (at most ``max_wait``) for the queue to fill one forward pass."""
        deadline = time.monotonic() + self.max_wait_s
        while len(self._queue) < self.max_batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[str, asyncio.Future]]:
        limit = self.max_batch_size
        if self.max_batch_size > 1 and len(self._queue) > self.max_batch_size:
            limit = GROUP_PASSES * self.max_batch_size
        taken = []
        while self._queue and len(taken) < limit:
            text, future = self._queue.popleft()
            if not future.done():  # a cancelled future: its client went away
                taken.append((text, future))
        self.on_queue(len(self._queue))
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            under_load = self._last_round > 1 or len(self._queue) > 1
            if self.max_batch_size > 1 and self.max_wait_s > 0 and under_load:
                await self._gather_more()
            items = self._take()
            if not items:
                continue
            texts = [t for t, _ in items]
            self._last_round = len(texts)
            self.on_batch(len(texts))
            try:
                results = await loop.run_in_executor(
                    self._executor, self.predict_many, texts, self.max_batch_size
                )
            except Exception as err:  # a model failure fails this round's requests, not the server
                for _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():
                    future.set_result(result)
