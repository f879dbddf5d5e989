"""The process's HTTP port: /healthz, /readyz and /metrics, served on its event loop.

Served by the event loop itself (not a thread), so an answer from /healthz proves the loop
runs. /readyz runs the process's readiness checks, each bounded by a timeout, and answers 200
only when every gating check passes; the body names each check's state either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Check:
    """One readiness check. gating=False: reported in the body, never makes the process
    not-ready (a worker runs on without Redis, for example)."""

    name: str
    probe: Callable[[], Awaitable[Status]]
    gating: bool = True


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        checks: list[Check],
        registry: CollectorRegistry | None = None,
        check_timeout_s: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.checks = checks
        self.registry = registry
        self.check_timeout_s = check_timeout_s
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        """The port listened on (the one asked for, or the one chosen for port 0)."""
        assert self._server is not None, "HealthServer has not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen; raises OSError when the port cannot be bound."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        log.info("health and metrics on http://%s:%d", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def readiness(self) -> tuple[bool, dict[str, dict[str, object]]]:
        statuses = await asyncio.gather(*(self._run(check) for check in self.checks))
        ready = all(s.ok for c, s in zip(self.checks, statuses, strict=True) if c.gating)
        body = {
            check.name: {"ok": status.ok, "detail": status.detail, "gating": check.gating}
            for check, status in zip(self.checks, statuses, strict=True)
        }
        return ready, body

    async def _run(self, check: Check) -> Status:
        try:
            return await asyncio.wait_for(check.probe(), self.check_timeout_s)
        except TimeoutError:
            return Status(False, f"no answer within {self.check_timeout_s:g}s")
        except Exception as exc:  # a failing probe is a not-ready answer, never a crash
            return Status(False, f"{type(exc).__name__}: {exc}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing here needs them
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = await self._answer(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass  # a client that went away or spoke nonsense gets nothing more
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET or HEAD\n"
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ready, checks = await self.readiness()
            body = json.dumps({"ready": ready, "checks": checks}, indent=1).encode() + b"\n"
            return (200 if ready else 503), "application/json", body
        if path == "/metrics" and self.registry is not None:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return 404, "text/plain", b"not found\n"
