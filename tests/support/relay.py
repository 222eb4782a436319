"""A userspace TCP relay between two loopback ports that adds a round-trip time, an extra wait
before each response (an S3 PUT's service time), or refuses every connection (an outage).

This machine has no netem, and slowing the loopback interface would slow every test on it: the
relay delays only what passes through it. Each direction keeps its order and its bandwidth;
every chunk is written `one_way` seconds after it was read (plus `response_wait` for the first
chunk of each answer, upstream to client, after the client sent something; an HTTP "100
Continue" is not an answer, so a PUT waits once, as its latency says).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

from tests.support.net import free_port

CHUNK = 1 << 16
INTERIM = b"HTTP/1.1 100"  # "100 Continue" before a PUT's body is not its answer: no wait


class Relay:
    """127.0.0.1:port -> 127.0.0.1:target_port, delayed. Use as a context manager."""

    def __init__(self, target_port: int, rtt: float = 0.0, response_wait: float = 0.0) -> None:
        self.target_port, self.port = target_port, free_port()
        self.one_way, self.response_wait = rtt / 2, response_wait
        self.refusing = False
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="Relay", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Relay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", self.port), self._loop
        ).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            self._drop_all()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, connections are cut at once, those open now included (an outage)."""
        self.refusing = refusing
        if refusing:
            self._loop.call_soon_threadsafe(self._drop_all)

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        turn = _Turn()
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, turn, answer=False),
                self._pump(up_reader, writer, turn, answer=True),
            )
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turn: _Turn, answer: bool
    ) -> None:
        """Copy reader to writer, each chunk written when due; order is kept."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        writing = asyncio.ensure_future(write())
        last_due = 0.0
        try:
            while data := await reader.read(CHUNK):
                due = time.monotonic() + self.one_way
                if answer and turn.asked and not data.startswith(INTERIM):
                    due += self.response_wait
                    turn.asked = False
                elif not answer:
                    turn.asked = True
                last_due = max(due, last_due)
                queue.put_nowait((last_due, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((last_due, b""))
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writing


class _Turn:
    """Whether the client spoke since the last answer (the next answer waits response_wait)."""

    asked = False


@contextlib.contextmanager
def relays(
    target_port: int, rtts: list[float], response_wait: float = 0.0
) -> Iterator[list[Relay]]:
    """One relay per round-trip time, all to target_port."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Relay(target_port, rtt, response_wait)) for rtt in rtts]
