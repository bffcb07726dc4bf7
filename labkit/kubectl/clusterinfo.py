"""``kubectl cluster-info`` served on a Lab: the control plane's address (the control-plane
node's InternalIP on the API server's port 6443) and each cluster service (label
``kubernetes.io/cluster-service=true`` in kube-system, CoreDNS on every lab), as kubectl prints
them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labkit.kubectl import flags
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

TABLE = (flags.NAMESPACE,)
API_SERVER_PORT = 6443
CLUSTER_SERVICE = "kubernetes.io/cluster-service=true"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
FOOTER = "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"


def control_plane_url(nodes: Sequence[Mapping[str, Any]]) -> str:
    """``https://<control-plane InternalIP>:6443``."""
    for node in nodes:
        if CONTROL_PLANE_LABEL in (node["metadata"].get("labels") or {}):
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    return f"https://{address['address']}:{API_SERVER_PORT}"
    raise KubectlError("error: this lab has no control-plane node with an InternalIP")


def service_link(host: str, service: Mapping[str, Any]) -> str:
    """Where kubectl says a cluster service runs: its load balancer, else the API server's
    proxy path (``<scheme>:<name>:<port name>`` as kubectl joins them)."""
    spec, meta = service.get("spec") or {}, service["metadata"]
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        ip = ingress[0].get("ip") or ingress[0].get("hostname") or ""
        return "".join(f"http://{ip}:{port['port']} " for port in spec.get("ports") or [])
    name = meta["name"]
    ports = spec.get("ports") or []
    if ports:
        port_name = ports[0].get("name") or ""
        scheme = "https" if port_name == "https" or ports[0].get("port") == 443 else ""
        if scheme:
            name = f"{scheme}:{name}:{port_name}"
        elif port_name:
            name = f"{name}:{port_name}"
    return f"{host}/api/v1/namespaces/{meta['namespace']}/services/{name}/proxy"


def cluster_info(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl cluster-info`` prints on this lab."""
    help_text = flags.served_help("cluster-info", "[-n NAMESPACE]", TABLE)
    parsed = flags.parse("cluster-info", argv, TABLE, help_text)
    if parsed.words[:1] == ["dump"]:
        raise KubectlError(
            "error: labkit kubectl on the sandbox does not serve cluster-info dump; nearest: "
            "`kubectl get all -A` and `kubectl describe` (or use a Kind lab)"
        )
    if parsed.words:
        raise KubectlError(f'error: unknown command {parsed.words[0]!r} for "kubectl cluster-info"')
    host = control_plane_url(lab.get("nodes", namespace=None))
    lines = [f"Kubernetes control plane is running at {host}\n"]
    namespace = parsed.last("--namespace", "kube-system")
    for service in lab.get("services", None, namespace, CLUSTER_SERVICE):
        shown = (service["metadata"].get("labels") or {}).get("kubernetes.io/name")
        lines.append(f"{shown or service['metadata']['name']} is running at "
                     f"{service_link(host, service)}\n")  # fmt: skip
    return Outcome("".join(lines) + FOOTER, "", 0)
