"""kube-proxy's service health-check answer (pkg/proxy/healthcheck/service_health.go,
hcHandler.ServeHTTP): 200 when the node has local endpoints, else 503, with the same JSON body
and headers, whatever the path. The sandbox's kube-proxy is always healthy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from labkit.sandbox.agent.http import HttpMessage, render_response, serve_requests


def health_check_answer(
    namespace: str, name: str, local_endpoints: int
) -> tuple[int, str, list[tuple[str, str]]]:
    """Status, body and headers of kube-proxy's answer for one Service on one node."""
    status = 200 if local_endpoints > 0 else 503
    body = (
        "{\n"
        '\t"service": {\n'
        f'\t\t"namespace": {json.dumps(namespace)},\n'
        f'\t\t"name": {json.dumps(name)}\n'
        "\t},\n"
        f'\t"localEndpoints": {local_endpoints},\n'
        '\t"serviceProxyHealthy": true\n'
        "}"
    )
    headers = [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Load-Balancing-Endpoint-Weight", str(local_endpoints)),
    ]
    return status, body, headers


async def serve_health_check(
    namespace: str,
    name: str,
    count: Callable[[], int],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer one connection to a health-check node port; ``count()`` is the node's current
    number of ready local endpoints (read per request, so a reload changes the answer)."""

    async def answer(request: HttpMessage, peer: Any) -> bytes:
        status, body, headers = health_check_answer(namespace, name, count())
        return render_response(
            status,
            b"" if request.method == "HEAD" else body.encode(),
            keep_alive=request.keep_alive,
            headers=headers,
            content_type=None,
        )

    await serve_requests(reader, writer, answer)
