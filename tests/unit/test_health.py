"""The HTTP port's endpoints, on a real socket: liveness, readiness from checks, metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from copyflow.plugins.transport.health import Check, HealthServer, Status


async def _get(port: int, path: str) -> tuple[int, bytes]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return await asyncio.to_thread(fetch)


def test_readiness_follows_the_gating_checks_and_names_each() -> None:
    state = {"pool": False}

    async def pool() -> Status:
        return Status(state["pool"], "1/1 ready" if state["pool"] else "loading")

    async def redis() -> Status:
        return Status(False, "unavailable")

    async def hung() -> Status:
        await asyncio.sleep(60)
        return Status(True, "never")

    async def scenario() -> None:
        registry = CollectorRegistry()
        Counter("copyflow_test_events", "events", registry=registry).inc(3)
        server = HealthServer(
            "127.0.0.1",
            0,
            [Check("pool", pool), Check("redis", redis, gating=False)],
            registry,
            check_timeout_s=0.2,
        )
        await server.start()
        port = server.bound_port
        try:
            assert await _get(port, "/healthz") == (200, b"ok\n")
            status, body = await _get(port, "/readyz")
            answer = json.loads(body)
            assert status == 503 and answer["ready"] is False
            assert answer["checks"]["pool"] == {"ok": False, "detail": "loading", "gating": True}
            state["pool"] = True
            status, body = await _get(port, "/readyz")
            answer = json.loads(body)
            # Redis is down, but it does not gate readiness.
            assert status == 200 and answer["checks"]["redis"]["ok"] is False
            status, body = await _get(port, "/metrics")
            assert status == 200 and b"copyflow_test_events_total 3.0" in body
            assert (await _get(port, "/nothing"))[0] == 404

            server.checks.append(Check("broker", hung))
            status, body = await _get(port, "/readyz")
            assert status == 503
            assert json.loads(body)["checks"]["broker"]["detail"] == "no answer within 0.2s"
        finally:
            await server.stop()

    asyncio.run(scenario())
