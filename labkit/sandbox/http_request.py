"""One HTTP request from inside a pod's network namespace, with the method and path asked for: the
probe's connect, then a request line of the learner's choosing and the answer read back whole (a
Cilium proxy's 403 "Access denied" is an answer; a drop is a timeout before it)."""

from __future__ import annotations

import asyncio
import socket
import time

from labkit.errors import LabError
from labkit.model.addresses import is_ip
from labkit.sandbox.agent.http import HttpError, read_message, render_request
from labkit.sandbox.netns import describe_socket_error, socket_in_netns
from labkit.sandbox.pod_resolver import DnsFailure, lookup
from labkit.sandbox.probe import run_sync
from labkit.sandbox.probe_outcome import classify_os_error
from labkit.values import HttpReply

BODY_SHOWN = 200
"""Characters of an answer's body kept (enough for a hostname, "Access denied", an error line)."""


def http_request(
    src_netns: str,
    dst: str,
    port: int,
    method: str,
    path: str,
    timeout: float,
    *,
    src_label: str,
    resolv_conf: str | None,
) -> HttpReply:
    """Send ``method path`` from inside ``src_netns`` to ``dst:port`` (``dst`` a name is resolved
    through the pod's resolver) and report the connection's end and the answer; ``timeout``
    bounds the lookup, the connect and the answer each."""
    return run_sync(_request(src_netns, dst, port, method, path, timeout, src_label, resolv_conf))


async def _request(
    src_netns: str,
    dst: str,
    port: int,
    method: str,
    path: str,
    timeout: float,
    src_label: str,
    resolv_conf: str | None,
) -> HttpReply:
    def answer(
        outcome: str, status: int | None = None, body: str = "", detail: str = ""
    ) -> HttpReply:
        return HttpReply(src_label, dst, port, method, path, outcome, status, body, detail)

    address = dst
    try:
        if not is_ip(dst):
            address = (await lookup(src_netns, dst, "A", timeout, resolv_conf=resolv_conf)).answers[
                0
            ]
    except DnsFailure as exc:
        return answer("dns", detail=str(exc))
    except (LabError, OSError) as exc:
        return answer("error", detail=f"DNS lookup failed: {exc}")
    target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket_in_netns(src_netns, family, socket.SOCK_STREAM)
    sock.setblocking(False)
    started = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        except asyncio.TimeoutError:
            return answer("timeout", detail=f"no answer from {target} within {timeout:g} s")
        except OSError as exc:
            return answer(
                classify_os_error(exc), detail=f"{target}: {describe_socket_error(exc.errno or 0)}"
            )
        connected = f"connected to {target} in {(time.perf_counter() - started) * 1000:.1f} ms"
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            headers = [("Host", target), ("User-Agent", "labkit-probe"), ("Connection", "close")]
            writer.write(render_request(method, path, headers))
            await writer.drain()
            msg = await asyncio.wait_for(read_message(reader, response=True), timeout)
        except asyncio.TimeoutError:
            return answer("connected", detail=f"{connected}; no HTTP answer within {timeout:g} s")
        except HttpError:
            return answer("connected", detail=f"{connected}; the server does not speak HTTP")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            words = f"the connection closed before an answer ({exc.__class__.__name__})"
            return answer("connected", detail=f"{connected}; {words}")
        finally:
            writer.close()
        if msg is None:
            return answer("connected", detail=f"{connected}; the server closed without answering")
        body = msg.body.decode("utf-8", "replace").strip()[:BODY_SHOWN]
        server = msg.header("server")
        said = f"; server: {server}" if server else ""
        return answer("connected", msg.status, body, f"{connected}{said}")
    finally:
        sock.close()
