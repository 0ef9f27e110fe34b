"""An asyncio TCP listener that keeps its connections, so that stop() can end them all.

Server.close() leaves open connections alone (before Python 3.13); the Modbus TCP transport and
the control channel both need them ended on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class StreamServer:
    """Subclasses serve one connection in `_handle`; this class owns listening and stopping."""

    # A peer that goes away, or sends a request too large, ends only its connection, quietly.
    quiet_errors: tuple[type[BaseException], ...] = (asyncio.IncompleteReadError, ConnectionError)

    def __init__(self) -> None:
        self.host = ""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self.host, self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._handle(reader, writer)
        except self.quiet_errors:
            pass
        except asyncio.CancelledError:
            # stop() ends the connection. Ending normally, not cancelled: asyncio's stream
            # callback (Python 3.11) would log a cancelled handler as an error.
            pass
        except Exception:  # task boundary: log, and drop only this connection
            log.exception(
                "%s:%s: connection from %s failed",
                self.host,
                self.port,
                writer.get_extra_info("peername"),
            )
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
