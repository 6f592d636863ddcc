"""Keep notebook runs from waiting forever on a reply the kernel has already sent.

nbclient (which myst-nb, nbconvert and our own scripts use to run a chapter) waits for
each cell's reply with one unbounded `await socket.poll()` on jupyter_client's asyncio
channel. Now and then that wait misses its wake-up: the reply is in the socket, the
kernel is idle, and the run hangs for good. Measured on 2 cores, running chapter 1 in
quick mode through nbclient, two runs at a time: 2 hangs in 19 runs as shipped, none in
30 with `install()`. The blocking client that nbval uses never hung.

`install()` makes the wait poll in slices of at most a second, so a missed wake-up
costs at most that second; timeouts mean what they meant before.
"""

from __future__ import annotations

import time
from queue import Empty

SLICE_SECONDS = 1.0


def install() -> None:
    """Patch jupyter_client's asyncio channel once; harmless to call again."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "_genedu_sliced", False):
        return

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait = SLICE_SECONDS if left is None else min(SLICE_SECONDS, left)
            if await self.socket.poll(int(wait * 1000)):
                return await self._recv()
            if left is not None and left <= wait:
                raise Empty

    get_msg._genedu_sliced = True
    AsyncZMQSocketChannel.get_msg = get_msg
