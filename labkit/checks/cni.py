"""Identify the CNI from what the cluster shows: the plugin's own pods, the nodes' pod ranges,
and the fingerprint it leaves on a pod's eth0 and routes."""
from __future__ import annotations

import ipaddress
import re

from labkit.checks.result import Result, Step, make_result
from labkit.checks.targets import Target, find_pods, list_pods, meta, pod_ip, pod_node, pod_phase
from labkit.lab import Lab

# Name prefixes of each plugin's node agent pods, as their installers create them.
_AGENTS = {"flannel": "kube-flannel-ds", "calico": "calico-node", "cilium": "cilium"}


def detect_cni(pods: list[dict]) -> tuple[str | None, list[str]]:
    """Which plugin's node agents run, and which of their pods (``ns/name``) were seen."""
    for cni, prefix in _AGENTS.items():
        agents = [f"{meta(p)['namespace']}/{meta(p)['name']}" for p in pods
                  if re.fullmatch(rf"{re.escape(prefix)}-[a-z0-9]{{5}}", meta(p).get("name", ""))]
        if agents:
            return cni, sorted(agents)
    return None, []


def fingerprint(addr_text: str, route_text: str) -> tuple[str | None, str]:
    """Guess the plugin from `ip -o -4 addr show dev eth0` and `ip -4 route` inside a pod.

    Calico: a /32 address and a default route via 169.254.1.1. Flannel: a /24 from 10.244/16 with
    the default route via the node bridge's .1 address. Anything else: unknown.
    """
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", addr_text)
    default = re.search(r"default via (\d+\.\d+\.\d+\.\d+)", route_text)
    if not match:
        return None, "eth0 has no IPv4 address"
    ip, prefix = match.group(1), int(match.group(2))
    gateway = default.group(1) if default else None
    seen = f"eth0 {ip}/{prefix}, default via {gateway or 'none'}"
    if prefix == 32 and gateway == "169.254.1.1":
        return "calico", seen
    if prefix < 32 and gateway and ipaddress.ip_address(gateway) in ipaddress.ip_network(f"{ip}/{prefix}", strict=False):
        return "flannel", seen
    return None, seen


def cni_identity(lab: Lab, pod: Target | None = None) -> Result:
    """The CNI's agent pods run on every node, each node has a pod range, and (given a pod) the
    pod's interface and routes match the plugin the lab says it runs."""
    pods = list_pods(lab, None)
    nodes = sorted(lab.get("nodes", namespace=None), key=lambda n: meta(n)["name"])
    cni, agents = detect_cni(pods)
    steps = [Step("find the CNI's node agents", f"{cni or 'none found'}: {len(agents)} pod(s)",
                  cni is not None and cni == lab.cni, tuple(agents))]
    running = [a for a in agents if any(f"{meta(p)['namespace']}/{meta(p)['name']}" == a and pod_phase(p) == "Running"
                                        for p in pods)]
    if cni:
        steps.append(Step("agents running on every node", f"{len(running)} running for {len(nodes)} node(s)",
                          len(running) >= len(nodes)))
    ranges = [f"{meta(n)['name']}: {(n.get('spec') or {}).get('podCIDR') or 'none'}" for n in nodes]
    steps.append(Step("read each node's pod range (spec.podCIDR)", f"{len(nodes)} node(s)", None, tuple(ranges)))
    if pod is not None:
        spec, found = find_pods(lab, pod)
        if not found or not pod_ip(found[0]):
            steps.append(Step(f"inspect {spec.describe()}", "pod not found or has no IP", False))
        else:
            target = found[0]
            ref = f"{meta(target)['namespace']}/{meta(target)['name']}"
            addr = lab.exec(ref, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"], namespace=meta(target)["namespace"])
            route = lab.exec(ref, ["ip", "-4", "route"], namespace=meta(target)["namespace"])
            guess, seen = fingerprint(addr.stdout, route.stdout)
            steps.append(Step(f"fingerprint eth0 and routes of {spec.describe()} on {pod_node(target)}",
                              f"{seen}: looks like {guess or 'an unknown plugin'}",
                              guess == lab.cni if lab.cni in ("flannel", "calico") else None,
                              tuple(line for line in (addr.stdout + route.stdout).splitlines() if line.strip())))
    failed = [s for s in steps if s.ok is False]
    if not failed:
        return make_result("cni_identity", lab.cni, steps)
    return make_result(
        "cni_identity", lab.cni, steps, failure="error", layer="CNI",
        hint=("The plugin the lab was built with does not show up as expected. List its pods with "
              "`kubectl get pods -A -o wide | grep -E 'flannel|calico|cilium'`: agents that are not Running "
              "on a node leave that node NotReady and its pods without an address."))
