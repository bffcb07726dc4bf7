"""The commands hints and fixes tell a learner to run, spelt for the backend they are on.

On Kind a learner has kubectl and ``docker exec`` into the nodes; the sandbox has neither, only
the ``labkit`` CLI (including ``labkit kubectl``, which serves kubectl's read verbs from the lab)
and the notebook's Lab API (``lab.get``, ``lab.node_exec``...). A :class:`Command` holds both
spellings as templates and a :class:`Shell` (a lab's backend and name) renders one for a
message. Every command a message names comes from this catalogue; :func:`kubectl` decides which
kubectl command lines the sandbox can take as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SPELLED_BACKENDS = ("kind", "sandbox")
"""The backends a Command is spelt for (``labkit.values.BACKENDS``)."""


@dataclass(frozen=True)
class Command:
    """One thing a learner can run, as a template per backend: ``str.format`` fields name what
    varies (``{ns}``, ``{svc}``, ``{node!r}``...) and ``{lab}`` is the lab's name."""

    kind: str
    sandbox: str

    def spelt(self, backend: str, lab_name: str, **fields: str) -> str:
        """The command line (or Python call) to type on ``backend`` for lab ``lab_name``."""
        if backend not in SPELLED_BACKENDS:
            raise ValueError(f"backend must be one of {SPELLED_BACKENDS}, not {backend!r}")
        template = self.kind if backend == "kind" else self.sandbox
        return template.format(lab=lab_name, **fields)


SANDBOX_KUBECTL_VERBS = ("get", "describe", "exec", "run", "logs")
"""The kubectl verbs a hint spells as `labkit kubectl` on the sandbox: the read verbs and the pod
verbs (``labkit.kubectl.args``); a hint that changes the lab's objects stays a ``lab.`` call."""


def kubectl(args: str, *, sandbox: str | None = None) -> Command:
    """kubectl on Kind (aimed at the lab's context); on the sandbox the same command line through
    ``labkit kubectl`` for the verbs it serves, else ``sandbox`` (the labkit or Python way)."""
    if args.split()[0] in SANDBOX_KUBECTL_VERBS:
        sandbox = "labkit kubectl --name {lab} " + args
    if sandbox is None:
        raise ValueError(
            f"`kubectl {args}` needs a sandbox spelling: hints spell only "
            f"{', '.join(SANDBOX_KUBECTL_VERBS)} as labkit kubectl"
        )
    return Command(kind="kubectl --context kind-{lab} " + args, sandbox=sandbox)


def on_node(command: str) -> Command:
    """A shell command run on a node (``{node}`` in ``command``'s fields): ``docker exec`` into
    the node's container on Kind, ``lab.node_exec`` in the sandbox (a string runs through sh)."""
    return Command(
        kind="docker exec {node} " + command,
        sandbox="lab.node_exec({node!r}, " + repr(command) + ")",
    )


def labkit_cli(args: str) -> Command:
    """A ``labkit`` command line, the same on both backends."""
    return Command(kind="labkit " + args, sandbox="labkit " + args)


class _Named(Protocol):
    """What a Shell reads from a lab."""

    @property
    def name(self) -> str: ...
    @property
    def backend(self) -> str: ...


@dataclass(frozen=True)
class Shell:
    """Where a learner types: the backend and lab a message's commands are spelt for."""

    backend: str
    lab_name: str

    @classmethod
    def of(cls, lab: _Named) -> Shell:
        """The shell of a lab (anything with ``backend`` and ``name``)."""
        return cls(lab.backend, lab.name)

    def __call__(self, command: Command, **fields: str) -> str:
        """``command`` spelt for this lab, in backticks, ready to drop into a sentence."""
        return f"`{command.spelt(self.backend, self.lab_name, **fields)}`"


# --------------------------------------------------------------------------- the catalogue

POD_LIST = kubectl("get pods -A -o wide")
"""Every pod with its phase, IP and node."""

POD_LABELS = kubectl("get pods -n {ns} --show-labels")
"""The pods of one namespace with their labels."""

ALL_POD_LABELS = kubectl("get pods -A --show-labels")
"""Every pod with its labels."""

POD_DETAIL = kubectl("describe pod {pod} -n {ns}")
"""One pod's spec and status: its containers' ports, its conditions and why it waits."""

SERVICES = kubectl("get svc -A")
"""Every Service."""

SERVICES_IN = kubectl("get svc -n {ns}")
"""The Services of one namespace."""

PODS_IN = kubectl("get pods -n {ns}")
"""The pods of one namespace."""

ENDPOINTS = kubectl("get endpointslices -n {ns} -l kubernetes.io/service-name={svc}")
"""One Service's EndpointSlices: which pod IPs and ports it sends traffic to."""

ALL_ENDPOINTS = kubectl("get endpointslices -A")
"""Every EndpointSlice."""

OBJECTS = kubectl("get {kind} -A")
"""Every object of a kind."""

DELETE = kubectl("delete {kind} {name} -n {ns}", sandbox="lab.delete('{kind}/{ns}/{name}')")
"""Delete one namespaced object."""

POLICIES = kubectl("get netpol -A")
"""Every NetworkPolicy."""

NODE_LABELS = kubectl("get nodes --show-labels")
"""The nodes with their labels (and, in the objects, their taints)."""

INGRESSES = kubectl("get ingress -A")
"""Every Ingress with its hosts."""

NODE_LIST = kubectl("get nodes -o wide")
"""The nodes with their InternalIPs."""

NODE_CIDRS = kubectl("describe nodes")
"""Every node in detail, its PodCIDR (``spec.podCIDR``, the range its pods come from) among them."""

NODE_ROUTES = on_node("ip route")
"""A node's routing table."""

POD_LINKS = kubectl(
    "exec {pod} -n {ns} -- ip link", sandbox="lab.exec({pod!r}, 'ip link', namespace={ns!r})"
)
"""A pod's interfaces: ``eth0@ifN`` names the index of its veth peer on the node."""

NODE_LINKS = on_node("ip link")
"""A node's interfaces with their indexes (the host ends of the pods' veths among them)."""

SERVICE_RULES = on_node("iptables-save | grep {chain}")
"""kube-proxy's rules of one chain family (KUBE-SVC, KUBE-SEP) on a node."""

NAT_RULES = on_node("iptables-save -t nat")
"""A node's whole nat table."""

IPVS_RULES = on_node("ipvsadm -Ln")
"""kube-proxy's IPVS virtual servers on a node."""

NFT_RULES = on_node("nft list ruleset")
"""kube-proxy's nftables rules on a node."""

LAB_STATUS = labkit_cli("status --name {lab}")
"""Whether the lab answers, with its nodes and pods."""

LAB_DOWN = labkit_cli("down --name {lab}")
"""Remove the lab."""

LAB_UP = Command(
    kind="labkit up --name {lab} --backend kind --cni {cni}",
    sandbox="labkit up --name {lab} --backend sandbox --cni {cni}",
)
"""Bring the lab up again on the same backend, with a CNI."""
