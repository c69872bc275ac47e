"""Group commit of the agents' finish requests in the server's event loop.

Sixteen agents that finish a trial and ask for the next one make sixteen transactions, each a
round trip to the database, a commit (a WAL flush) and a hop to a worker thread. Here the
requests that arrive while a group is being written wait for it and go together in the next
group: one thread hop and, on PostgreSQL, ONE statement for all of them
(:meth:`~hypergraph.sweeps._handout.HandOutStore.finish_group`). Nothing waits when the
server is idle (a request alone is written at once); under load the groups grow by themselves.
``window`` may hold a group open a little longer to gather more.

Each request keeps its own outcome: a result refused by the fence (its trial was failed as
stale) is refused alone, the others of its group are recorded, and a request the group did not
write (refused, a duplicate, a complete result without a finite value, the pool
empty) is finished or claimed
alone afterwards, exactly as :meth:`~hypergraph.server._service.SweepService.finish` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypergraph.logging import get_logger
from hypergraph.server._service import FinishRequest, SweepService

__all__ = ["FinishGroups"]

logger = get_logger(__name__)

_Waiting = tuple[FinishRequest, "asyncio.Future[dict[str, Any] | None]"]


class FinishGroups:
    """Finish requests of one event loop written in groups (see the module's docstring).

    Args:
        service: The server's service.
        window: Seconds a group waits for more requests before it is written (``0``: none;
            the requests that arrive while the previous group is written form the next).
        max_size: Most requests in one group.

    Not thread-safe: every call comes from the one event loop.
    """

    def __init__(self, service: SweepService, window: float = 0.0, max_size: int = 32
                 ) -> None:
        if window < 0 or max_size < 1:
            raise ValueError("window must be >= 0 and max_size >= 1.")
        self.service = service
        self.window = window
        self.max_size = max_size
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        #: groups written and requests in them (for the benchmark and the tests)
        self.groups = 0
        self.requests = 0

    async def finish(self, request: FinishRequest) -> dict[str, Any]:
        """:meth:`SweepService.finish` for ``request``, written with the requests around it.

        Raises:
            RefusedError: As :meth:`SweepService.finish` (for this request alone).
        """
        future: asyncio.Future[dict[str, Any] | None] = (
            asyncio.get_running_loop().create_future())
        self._waiting.append((request, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        answer = await future
        if SweepService.needs_rest(request, answer):
            return await asyncio.to_thread(self.service.finish_rest, request, answer)
        assert answer is not None
        return answer

    async def _write(self) -> None:
        """Write groups while requests wait (one task at a time)."""
        try:
            while self._waiting:
                if self.window > 0 and len(self._waiting) < self.max_size:
                    await asyncio.sleep(self.window)
                group: list[_Waiting] = []
                later: list[_Waiting] = []
                named: set[int] = set()
                for waiting in self._waiting:  # a trial twice (a retried request): next group
                    if len(group) < self.max_size and waiting[0].trial_id not in named:
                        group.append(waiting)
                        named.add(waiting[0].trial_id)
                    else:
                        later.append(waiting)
                self._waiting = later
                requests = [r for r, _ in group]
                try:
                    answers = await asyncio.to_thread(self.service.finish_group, requests)
                except asyncio.CancelledError:
                    for _, future in group:
                        future.cancel()
                    raise
                except Exception as err:  # each request is then finished alone
                    logger.warning("A group of %d finishes failed (%s); finishing them one by "
                                   "one.", len(group), err)
                    answers = [None] * len(group)
                self.groups += 1
                self.requests += len(group)
                for (_, future), answer in zip(group, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._writer = None
            for _, future in self._waiting:  # cancelled (shutdown): nobody writes these
                if not future.done():
                    future.cancel()
            self._waiting = []
