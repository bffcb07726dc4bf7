"""The sandbox's workload agent: one process per lab that makes every pod serve its ports.

It reads ``<state-dir>/workloads.json`` and, for each declared pod port, binds a listening socket
inside that pod's network namespace, all served by one asyncio loop (no thread or process per pod):
``netexec`` pods answer like agnhost netexec (HTTP /, /hostname, /clientip, /echo, /header,
/healthz; UDP ``hostname``/``clientip``/``echo x``), ``dns`` pods answer cluster DNS on port 53, and
``ingress`` pods proxy HTTP by Ingress rules to Service ClusterIPs from inside their own namespace,
so requests cross kube-proxy's rules as they would behind a real controller.
A unix socket ``<state-dir>/agent.sock`` takes ``ping``, ``reload``, ``status`` and ``stop``.

Rooms: ``spec`` (what workloads.json says), ``ingress`` (Ingress rule matching), ``http``
(HTTP/1.1 framing, shared with the prober), ``netexec`` and ``ingress_proxy`` (what pods answer),
``listeners`` (one bound socket each), ``tls``, ``server`` (the asyncio loop), ``files`` (the
agent's files in the state directory), ``process`` (the entry point) and ``client`` (start, stop
and command the agent from the lab's process).

Run: ``python -m labkit.sandbox.agent --state-dir /run/labkit/<lab_name>`` (``start_agent`` does
it). This package imports nothing on its own, so the lab's process pays only for ``client``.
"""
