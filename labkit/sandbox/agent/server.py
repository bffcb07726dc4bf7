"""The agent's asyncio loop: serves every workload of one lab and answers control commands
(``ping``, ``reload``, ``status``, ``stop``) on the unix socket in the lab's state directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from typing import Any

from labkit.errors import LabError
from labkit.sandbox.agent.files import SOCKET_FILE
from labkit.sandbox.agent.healthcheck import serve_health_check
from labkit.sandbox.agent.ingress_proxy import serve_ingress
from labkit.sandbox.agent.listeners import (
    DnsBackend,
    Listener,
    ListenerKey,
    WantedListener,
    bound_socket,
    default_dns_backend,
    listener_keys,
    netns_identity,
)
from labkit.sandbox.agent.netexec import UdpNetexec, serve_netexec_http
from labkit.sandbox.agent.podlog import PodLogs
from labkit.sandbox.agent.servehostname import serve_hostname_http, serve_hostname_started
from labkit.sandbox.agent.spec import AgentSpec, FlowSource, PortSpec, Workload, load_spec
from labkit.sandbox.agent.tls import IngressTls
from labkit.sandbox.flowring import FlowRing
from labkit.sandbox.netns import describe_socket_error
from labkit.sandbox.nflog import NflogSocket

log = logging.getLogger("labkit.agent")

DNS_PORT = 53
HTTPS_PORT = 443
CONTROL_READ_TIMEOUT_S = 5.0


class Agent:
    """Serves every workload of one lab from one asyncio loop and answers control commands."""

    def __init__(self, state_dir: str, dns_backend: DnsBackend | None = None) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.spec = AgentSpec()
        self.listeners: dict[ListenerKey, Listener] = {}
        self.errors: list[str] = []
        self.logs = PodLogs()
        self._dns_backend = dns_backend
        self._dns_index: Any = None
        self._tls = IngressTls(self.state_dir)
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._control: asyncio.AbstractServer | None = None
        self.flow_readers: dict[FlowSource, NflogSocket] = {}
        self._ring: FlowRing | None = None

    # ---- lifecycle

    async def run(self) -> None:
        """Bind what workloads.json asks for, serve the control socket, and wait for stop."""
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError, ValueError):  # not in the main thread (tests)
                loop.add_signal_handler(sig, self._stop.set)
        log.info("agent %d starting in %s: %s", os.getpid(), self.state_dir, await self.reload())
        sock_path = os.path.join(self.state_dir, SOCKET_FILE)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        self._control = await asyncio.start_unix_server(self._control_client, path=sock_path)
        os.chmod(sock_path, 0o600)
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Close the control socket and every listener, and remove the socket file."""
        if self._control is not None:
            self._control.close()
            self._control = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.state_dir, SOCKET_FILE))
        for key in list(self.listeners):
            await self.listeners.pop(key).close()
        self._read_flows(())
        log.info("agent %d stopped", os.getpid())

    # ---- control

    async def _control_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CONTROL_READ_TIMEOUT_S)
            command = line.decode("utf-8", "replace").strip()
            answer = await self.command(command)
            writer.write((answer + "\n").encode())
            await writer.drain()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def command(self, command: str) -> str:
        """Answer one control command: ping, reload, status or stop."""
        if command == "ping":
            return "pong"
        if command == "reload":
            return await self.reload()
        if command == "status":
            return json.dumps(
                {
                    "pid": os.getpid(),
                    "listeners": sorted(key.describe() for key in self.listeners),
                    "errors": self.errors,
                }
            )
        verb, _, pod = command.partition(" ")
        if verb == "logs" and pod:
            return json.dumps(self.logs.lines(pod))
        if command == "stop":
            assert self._stop is not None
            self._stop.set()
            return "ok stopping"
        return f"error unknown command {command!r} (use ping, reload, status, logs POD or stop)"

    async def reload(self) -> str:
        """Re-read workloads.json, close listeners that are gone, bind new ones, keep the rest."""
        assert self._lock is not None
        async with self._lock:
            try:
                spec = load_spec(self.state_dir, self.spec)
            except (OSError, ValueError) as exc:
                return f"error workloads.json: {exc}"
            changed = (spec.dns_records, spec.dns_namespaces) != (
                self.spec.dns_records,
                self.spec.dns_namespaces,
            )
            if changed or self._dns_index is None:
                self._dns_index = None
                if any(w.role == "dns" for w in spec.workloads):
                    try:  # build now, so bad records are reported here and not as SERVFAIL later
                        self._dns_index = self._dns().build_index(
                            list(spec.dns_records), list(spec.dns_namespaces)
                        )
                    except (ValueError, TypeError, LabError) as exc:
                        what = exc.what if isinstance(exc, LabError) else exc
                        return f"error dns_records: {what}"
            if spec.tls_hosts != self.spec.tls_hosts:  # new certificate: rebind ingress :443
                for key in [
                    k for k in self.listeners if k.role == "ingress" and k.port == HTTPS_PORT
                ]:
                    await self.listeners.pop(key).close()
            self.spec = spec
            flow_errors = self._read_flows(spec.flow_sources)
            answer = await self._bind(listener_keys(spec))
            if flow_errors:
                self.errors += flow_errors
                return "error " + "; ".join(self.errors)
            return answer

    def _read_flows(self, sources: tuple[FlowSource, ...]) -> list[str]:
        """Keep one NFLOG socket per flow source, each read
        into the lab's flow ring as packets arrive; the errors of those that cannot bind."""
        loop = asyncio.get_running_loop()
        for source in [s for s in self.flow_readers if s not in sources]:
            reader = self.flow_readers.pop(source)
            loop.remove_reader(reader.fileno())
            reader.close()
        errors: list[str] = []
        for source in sources:
            if source in self.flow_readers:
                continue
            try:
                reader = NflogSocket(source.netns, source.node)
            except (OSError, LabError) as exc:
                errors.append(f"flows of {source.node} ({source.netns}): {exc}")
                continue
            self.flow_readers[source] = reader
            loop.add_reader(reader.fileno(), self._take_flows, reader)
        return errors

    def _take_flows(self, reader: NflogSocket) -> None:
        if self._ring is None:
            self._ring = FlowRing(self.state_dir)
        self._ring.append(reader.drain())

    async def _bind(self, wanted: dict[ListenerKey, WantedListener]) -> str:
        """Close listeners not wanted (or whose namespace was made anew), open the missing ones."""
        identity = {ns: netns_identity(ns) for ns in {key.netns for key in wanted}}
        for key in [
            k
            for k, listener in self.listeners.items()
            if k not in wanted or listener.netns_id != identity[k.netns]
        ]:
            await self.listeners.pop(key).close()
            log.info("closed %s %s/%d (%s)", key.pod, key.protocol, key.port, key.role)
        self.logs.keep_only(key.pod for key in wanted)
        errors: list[str] = []
        for key, want in wanted.items():
            if key in self.listeners:
                continue
            workload, port = want.workload, want.port
            try:
                self.listeners[key] = await self._open(workload, port)
                self.listeners[key].netns_id = identity[workload.netns]
                log.info(
                    "serving %s %s/%d in %s (%s)",
                    workload.ref,
                    port.protocol,
                    port.port,
                    workload.netns,
                    workload.role,
                )
            except (OSError, LabError) as exc:
                if isinstance(exc, LabError):
                    text = exc.what
                else:
                    text = describe_socket_error(exc.errno) if exc.errno else str(exc)
                errors.append(f"pod {workload.ref} {port.protocol} port {port.port}: {text}")
        self.errors = errors
        if errors:
            log.error("reload: %s", "; ".join(errors))
            return "error " + "; ".join(errors)
        return f"ok {len(self.listeners)}"

    # ---- binding

    def _dns(self) -> DnsBackend:
        if self._dns_backend is None:
            self._dns_backend = default_dns_backend()
        return self._dns_backend

    def dns_index(self) -> Any:
        """The record index for the current records (rebuilt lazily after a reload changed them)."""
        if self._dns_index is None:
            self._dns_index = self._dns().build_index(
                list(self.spec.dns_records), list(self.spec.dns_namespaces)
            )
        return self._dns_index

    async def _open(self, workload: Workload, port: PortSpec) -> Listener:
        if workload.role == "dns" and port.port == DNS_PORT:
            return self._open_dns(workload, port)
        if workload.role == "resolver":
            return self._open_resolver(workload, port)
        if port.protocol == "UDP":
            sock = bound_socket(workload, port)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: UdpNetexec(workload.hostname, self.logs.recorder(workload.ref)), sock=sock
            )
            self.logs.record(workload.ref, f"Started UDP server on port {port.port}")
            return Listener(workload, port, "udp-netexec", transport=transport, sock=sock)
        return await self._open_http(workload, port)

    def _open_dns(self, workload: Workload, port: PortSpec) -> Listener:
        backend = self._dns()
        sock = bound_socket(workload, port)
        serve = backend.serve_udp if port.protocol == "UDP" else backend.serve_tcp
        task = asyncio.create_task(
            serve(sock, self.dns_index, backend.upstream_from(workload.netns)),
            name=f"dns {workload.ref} {port.protocol}",
        )
        task.add_done_callback(_log_task_end)
        if not self.logs.lines(workload.ref):  # CoreDNS's first line: its server block
            self.logs.record(workload.ref, f".:{port.port}", stamped=False)
        return Listener(workload, port, "dns", task=task, sock=sock)

    def _open_resolver(self, workload: Workload, port: PortSpec) -> Listener:
        """The outside world's resolver (answers from its fixed zone, forwards nothing)."""
        backend = self._dns()
        sock = bound_socket(workload, port)
        serve = backend.resolver_udp if port.protocol == "UDP" else backend.resolver_tcp
        task = asyncio.create_task(serve(sock), name=f"resolver {port.protocol}")
        task.add_done_callback(_log_task_end)
        return Listener(workload, port, "resolver", task=task, sock=sock)

    async def _open_http(self, workload: Workload, port: PortSpec) -> Listener:
        """A TCP port of a netexec or serve-hostname pod, of an ingress pod (TLS on 443), or a
        node's service health check."""
        ingress = workload.role == "ingress"
        ssl_ctx = None
        if ingress and port.port == HTTPS_PORT:
            ssl_ctx = await self._tls.context(self.spec.tls_hosts)
        scheme = "https" if ssl_ctx else "http"
        sock = bound_socket(workload, port)
        kind = {
            "ingress": "ingress",
            "healthcheck": "healthcheck",
            "serve-hostname": "http-serve-hostname",
        }.get(workload.role)
        listener = Listener(workload, port, kind or "http-netexec", sock=sock)
        started_ns = time.monotonic_ns()  # the server's start, for netexec's NOW: m=+...

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener.connections.add(writer)
            try:
                if workload.role == "healthcheck":
                    await serve_health_check(
                        workload.namespace,
                        workload.name,
                        lambda: self.spec.health_count(workload.netns, port.port),
                        reader,
                        writer,
                    )
                elif ingress:
                    await serve_ingress(
                        workload.netns, lambda: self.spec.ingress, reader, writer, scheme
                    )
                elif workload.role == "serve-hostname":
                    await serve_hostname_http(
                        workload.hostname,
                        reader,
                        writer,
                        self.logs.recorder(workload.ref),
                        lambda: self.spec.l7_for(workload.netns, port.port),
                    )
                else:
                    await serve_netexec_http(
                        workload.hostname,
                        reader,
                        writer,
                        self.logs.recorder(workload.ref),
                        lambda: self.spec.l7_for(workload.netns, port.port),
                        started_ns,
                    )
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                pass
            except Exception:
                log.exception("connection to %s port %d failed", workload.ref, port.port)
            finally:
                listener.connections.discard(writer)
                writer.close()

        listener.server = await asyncio.start_server(on_client, sock=sock, ssl=ssl_ctx)
        if workload.role == "netexec":
            self.logs.record(workload.ref, f"Started HTTP server on port {port.port}")
        elif workload.role == "serve-hostname":
            self.logs.record(workload.ref, serve_hostname_started(port.port))
        return listener


def _log_task_end(task: asyncio.Task[None]) -> None:
    """Log why a DNS serving task stopped, unless it was cancelled on purpose."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())
