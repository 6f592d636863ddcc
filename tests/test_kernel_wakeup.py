"""book/_ext/kernel_wakeup.py: sliced polling still delivers messages and honours timeouts."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import kernel_wakeup  # noqa: E402


def _pair(ctx):
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = a.bind_to_random_port("tcp://127.0.0.1")
    b.connect(f"tcp://127.0.0.1:{port}")
    return a, b


def test_sliced_get_msg_waits_past_a_slice_and_honours_timeouts(monkeypatch):
    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", AsyncZMQSocketChannel.get_msg)
    monkeypatch.setattr(kernel_wakeup, "SLICE_SECONDS", 0.1)
    kernel_wakeup.install()
    kernel_wakeup.install()  # idempotent
    assert AsyncZMQSocketChannel.get_msg._genedu_sliced

    async def scenario():
        ctx = zmq.asyncio.Context()
        sender, receiver = _pair(ctx)
        session = Session()
        channel = AsyncZMQSocketChannel(receiver, session)
        try:
            start = time.monotonic()
            with pytest.raises(Empty):
                await channel.get_msg(timeout=0.35)
            assert 0.3 <= time.monotonic() - start < 2.0  # the timeout, not the first slice

            async def send_later():
                await asyncio.sleep(0.45)  # several slices go by first
                session.send(sender, "kernel_info_reply", {"status": "ok"})

            task = asyncio.ensure_future(send_later())
            msg = await channel.get_msg(timeout=None)
            await task
            assert msg["msg_type"] == "kernel_info_reply" and msg["content"]["status"] == "ok"
        finally:
            sender.close(0)
            receiver.close(0)
            ctx.term()

    asyncio.run(scenario())
