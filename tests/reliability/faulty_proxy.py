"""A loopback TCP proxy that misbehaves on purpose: it delays every chunk it forwards, resets
some connections (RST) and can hold all traffic (a black hole) until told to let it through."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct


class FaultyProxy:
    """Forwards 127.0.0.1:`port` to `target`; use as an async context manager."""

    def __init__(
        self,
        target: tuple[str, int],
        rng: random.Random,
        *,
        latency: tuple[float, float] = (0.1, 0.3),
        reset_chance: float = 0.01,
    ) -> None:
        self.target = target
        self.latency = latency
        self.reset_chance = reset_chance
        self.port = 0
        self.connections = 0
        self.resets = 0
        self._rng = rng
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    async def __aenter__(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._flowing.set()
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def black_hole(self) -> None:
        """Hold every byte, in both directions and on new connections, until `heal`."""
        self._flowing.clear()

    def heal(self) -> None:
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, writer)),
            asyncio.create_task(self._pump(up_reader, writer, up_writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for each in (writer, up_writer):
                each.transport.abort()
                self._writers.discard(each)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await asyncio.sleep(self._rng.uniform(*self.latency))
                await self._flowing.wait()
                if self._rng.random() < self.reset_chance:
                    self.resets += 1
                    _reset(writer)
                    _reset(other)
                    return
                writer.write(data)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
