"""``cilium-dbg`` (and its older name ``cilium``) run in a Cilium agent pod of a sandbox lab: no
agent runs there, so the sandbox answers the commands the lessons use from the lab's objects, in
cilium-dbg's shapes, and refuses the others in cobra's words naming the ones it serves."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labkit.errors import LabError
from labkit.model.ciliumdbg import endpoints, frontends
from labkit.model.objects import labels_of, namespace_of, node_internal_ip, node_pod_cidr, pod_node
from labkit.printers.ciliumdbg import bpf_lb_list, endpoint_list, service_list
from labkit.values import ExecResult

BINARIES = ("cilium-dbg", "cilium")
SERVED = ("status", "service list", "endpoint list", "bpf lb list")
AGENT_LABEL = ("k8s-app", "cilium")

Get = Callable[..., list[dict[str, Any]]]
"""``lab.get``: objects of a kind, ``namespace=None`` for all."""


def is_agent_command(pod: Mapping[str, Any], argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs cilium-dbg in a Cilium agent pod (kube-system, ``k8s-app: cilium``)."""
    key, value = AGENT_LABEL
    return (
        bool(argv)
        and argv[0].rsplit("/", 1)[-1] in BINARIES
        and namespace_of(pod) == "kube-system"
        and labels_of(pod).get(key) == value
    )


SHELL_SYNTAX = frozenset("();<>|&")
"""What ``shlex``'s punctuation tokens are made of: a pipe, list, subshell or redirection."""


def agent_argv(pod: Mapping[str, Any], command: str | Sequence[str]) -> list[str] | None:
    """The cilium-dbg words ``command`` (an argv, or a shell string as ``sh -c`` would split it)
    runs in ``pod`` when it is an agent pod, so both forms reach the answers; None otherwise.
    A string wrapping cilium-dbg in shell syntax raises LabError: no shell runs it here."""
    if not isinstance(command, str):
        argv = [str(word) for word in command]
        return argv if is_agent_command(pod, argv) else None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return None  # unbalanced quotes: sh says so in its own words
    if not is_agent_command(pod, words):
        return None
    if any(set(word) <= SHELL_SYNTAX for word in words) or any(c in command for c in "$`"):
        raise LabError(
            f"The sandbox answers {words[0]} itself, without a shell, so {command!r} cannot run "
            "here: pipes, lists, redirections and substitutions need one.",
            f"Run the {words[0]} command alone (e.g. '{words[0]} status') and filter its output "
            "in Python.",
        )
    return words


def _objects(get: Get, kind: str) -> list[dict[str, Any]]:
    try:
        return get(kind, namespace=None)
    except LabError:
        return []  # a kind this lab does not know holds no objects


def _status(get: Get, pod: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The lines of ``cilium-dbg status`` the sandbox can answer truthfully."""
    images = [str(c.get("image", "")) for c in (pod.get("spec") or {}).get("containers") or []]
    version = next((i.rsplit(":v", 1)[-1] for i in images if ":v" in i), "unknown")
    name = str((node.get("metadata") or {}).get("name"))
    pods = [p for p in get("pods", namespace=None) if pod_node(p) == name]
    routed = [p for p in pods if not (p.get("spec") or {}).get("hostNetwork")]
    nodes = get("nodes", namespace=None)
    rows = [
        ("KVStore", "Disabled"),
        ("Kubernetes", "Ok"),
        ("KubeProxyReplacement", f"True   [eth0   {node_internal_ip(node)} (Direct Routing)]"),
        ("Host firewall", "Disabled"),
        ("CNI Chaining", "none"),
        ("Cilium", f"Ok   {version}"),
        ("IPAM", f"IPv4: {len(routed)}/254 allocated from {node_pod_cidr(node)}, "),
        ("Routing", "Network: Tunnel [vxlan]   Host: Legacy"),
        ("Masquerading", "IPTables [IPv4: Enabled, IPv6: Disabled]"),
        ("Global Identity Range", "min 256, max 65535"),
        ("Encryption", "Disabled"),
        ("Cluster health", f"{len(nodes)}/{len(nodes)} reachable"),
    ]
    return "".join(f"{label + ':':<25}{value}\n" for label, value in rows)


def _refuse(argv: Sequence[str]) -> ExecResult:
    """cobra's refusal of an unknown command, then the ones served here."""
    binary = argv[0].rsplit("/", 1)[-1]
    asked = " ".join(argv[1:]) or "(nothing)"
    served = ", ".join(f"{binary} {s}" for s in SERVED)
    return ExecResult(
        tuple(argv),
        1,
        "",
        f'Error: unknown command "{asked}" for "{binary}"\n'
        f"Run '{binary} --help' for usage.\n"
        f"labkit's sandbox runs no Cilium agent; it answers {served}.\n",
    )


def answer(argv: Sequence[str], pod: Mapping[str, Any], get: Get) -> ExecResult:
    """What ``argv`` (cilium-dbg and its words) prints in the agent pod ``pod``."""
    words = " ".join(a for a in argv[1:] if not a.startswith("-"))
    words = words.replace("service ls", "service list").replace("endpoint ls", "endpoint list")
    if words not in SERVED or len(argv) - 1 != len(words.split()):
        return _refuse(argv)
    name = pod_node(pod)
    node = next(
        (n for n in get("nodes", namespace=None) if (n.get("metadata") or {}).get("name") == name),
        {},
    )
    if words == "status":
        return ExecResult(tuple(argv), 0, _status(get, pod, node), "")
    if words == "endpoint list":
        policies = _objects(get, "networkpolicies") + _objects(get, "CiliumNetworkPolicy")
        eps = endpoints(get("pods", namespace=None), policies, str(name))
        return ExecResult(tuple(argv), 0, endpoint_list(eps), "")
    fronts = frontends(
        get("services", namespace=None),
        get("endpointslices", namespace=None),
        node_internal_ip(node) or "",
    )
    text = service_list(fronts) if words == "service list" else bpf_lb_list(fronts)
    return ExecResult(tuple(argv), 0, text, "")
