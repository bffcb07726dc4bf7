"""The CNI installers as data: per CNI, the commands, manifests, Helm values and readiness waits.

Flannel: the upstream manifest at its tag. Calico: the Tigera operator with ``kubectl create``
(the CRDs are too large for client-side apply) and an Installation whose IP pool equals the
cluster's podSubnet. Cilium: the Helm chart with the values kind needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from labkit.kind import pins
from labkit.kind.actions import PlanStep, Run, Wait

DEFAULT_TIMEOUT_S = 300.0
CALICO_TIMEOUT_S = 600.0
"""Calico pulls the most images (operator, node, typha, kube-controllers, apiserver, goldmane,
whisker)."""

CALICO_OPERATOR_CRDS = (
    "installations.operator.tigera.io",
    "apiservers.operator.tigera.io",
    "goldmanes.operator.tigera.io",
    "whiskers.operator.tigera.io",
)
CALICO_COMPONENTS = ("calico", "apiserver", "goldmane", "whisker")
"""TigeraStatus objects that must all report Available."""


@dataclass(frozen=True)
class InstallContext:
    """What the installers need to know about the lab they install into."""

    name: str
    kubeconfig: str
    kube_proxy_mode: str
    pod_subnet: str
    hubble: bool = False
    timeout_s: float | None = None
    local: Mapping[str, str] = field(default_factory=dict)
    """Manifest URL -> its copy in an offline pack (`up --pack`); empty: read the URLs."""
    chart: str | None = None
    """The Cilium chart's file in an offline pack; None: the pinned chart from its repository."""

    def timeout(self, default: float) -> float:
        return self.timeout_s if self.timeout_s is not None else default

    def source(self, url: str) -> str:
        """Where a manifest is read from: the pack's copy when there is one, else its URL."""
        return self.local.get(url, url)


def kubectl(ctx: InstallContext, *args: str) -> tuple[str, ...]:
    """A kubectl command line aimed at the lab's own kubeconfig (never the user's current
    context)."""
    return ("kubectl", "--kubeconfig", ctx.kubeconfig, *args)


# --------------------------------------------------------------------------- Flannel


def flannel_steps(ctx: InstallContext) -> tuple[list[PlanStep], list[PlanStep]]:
    """Apply kube-flannel.yml at the pinned tag; then wait for its DaemonSet."""
    install = [
        PlanStep(
            f"Install Flannel {pins.FLANNEL_VERSION} (VXLAN overlay)",
            (Run(kubectl(ctx, "apply", "-f", ctx.source(pins.FLANNEL_MANIFEST_URL))),),
            note="The manifest's net-conf.json uses 10.244.0.0/16, the cluster's podSubnet.",
        )
    ]
    waits = [
        PlanStep(
            "Wait for the Flannel DaemonSet on every node",
            (
                Wait(
                    "daemonset",
                    "kube-flannel-ds ready on every node",
                    ctx.timeout(DEFAULT_TIMEOUT_S),
                    namespace="kube-flannel",
                    names=("kube-flannel-ds",),
                ),
            ),
        )
    ]
    return install, waits


# --------------------------------------------------------------------------- Calico


def calico_custom_resources(pod_subnet: str, kube_proxy_mode: str) -> list[dict[str, Any]]:
    """Calico's operator resources (as upstream's custom-resources.yaml) with the pool set to
    podSubnet.

    With kube-proxy in nftables mode Calico must run its nftables data plane too.
    """
    network: dict[str, Any] = {}
    if kube_proxy_mode == "nftables":
        network["linuxDataplane"] = "Nftables"
    network["ipPools"] = [
        {
            "name": "default-ipv4-ippool",
            "blockSize": 26,
            "cidr": pod_subnet,
            "encapsulation": "VXLANCrossSubnet",
            "natOutgoing": "Enabled",
            "nodeSelector": "all()",
        }
    ]
    return [
        {
            "apiVersion": "operator.tigera.io/v1",
            "kind": "Installation",
            "metadata": {"name": "default"},
            "spec": {"calicoNetwork": network},
        },
        {
            "apiVersion": "operator.tigera.io/v1",
            "kind": "APIServer",
            "metadata": {"name": "default"},
            "spec": {},
        },
        {
            "apiVersion": "operator.tigera.io/v1",
            "kind": "Goldmane",
            "metadata": {"name": "default"},
        },
        {"apiVersion": "operator.tigera.io/v1", "kind": "Whisker", "metadata": {"name": "default"}},
    ]


def calico_steps(ctx: InstallContext) -> tuple[list[PlanStep], list[PlanStep]]:
    """CRDs, the operator, then the Installation; then wait until every TigeraStatus is
    Available."""
    resources = yaml.safe_dump_all(
        calico_custom_resources(ctx.pod_subnet, ctx.kube_proxy_mode), sort_keys=False
    )
    timeout = ctx.timeout(CALICO_TIMEOUT_S)
    install = [
        PlanStep(
            f"Install the Calico {pins.CALICO_VERSION} CRDs",
            (Run(kubectl(ctx, "create", "-f", ctx.source(pins.CALICO_CRDS_URL))),),
            note=(
                "`create`, not `apply`: the CRDs are too large for apply's last-applied annotation."
            ),
        ),
        PlanStep(
            "Install the Tigera operator",
            (
                Run(kubectl(ctx, "create", "-f", ctx.source(pins.CALICO_OPERATOR_URL))),
                Wait(
                    "deployment",
                    "tigera-operator available",
                    timeout,
                    namespace="tigera-operator",
                    names=("tigera-operator",),
                ),
                Wait("crd", "operator CRDs established", timeout, names=CALICO_OPERATOR_CRDS),
            ),
        ),
        PlanStep(
            f"Configure Calico (IP pool {ctx.pod_subnet} = the cluster's podSubnet)",
            (Run(kubectl(ctx, "create", "-f", "-"), stdin=resources),),
            note=f"Upstream's example: {pins.CALICO_CUSTOM_RESOURCES_URL}",
        ),
    ]
    waits = [
        PlanStep(
            "Wait for Calico (every TigeraStatus Available, calico-node on every node)",
            (
                Wait(
                    "tigerastatus", "Calico components available", timeout, names=CALICO_COMPONENTS
                ),
                Wait(
                    "daemonset",
                    "calico-node ready on every node",
                    timeout,
                    namespace="calico-system",
                    names=("calico-node",),
                ),
            ),
        ),
    ]
    return install, waits


# --------------------------------------------------------------------------- Cilium


OFFLINE_HELM_VALUES = [
    ("image.useDigest", "false"),
    ("operator.image.useDigest", "false"),
    ("envoy.image.useDigest", "false"),
]
"""From a pack the images are loaded by tag: a one-platform archive lacks the index digest the
chart would ask for (kind#2394: loading by digest does not work)."""


def cilium_helm_values(
    name: str, kube_proxy_mode: str, hubble: bool = False, offline: bool = False
) -> list[tuple[str, str]]:
    """Helm ``--set`` values for Cilium on Kind, in the order they are passed."""
    values = [("image.pullPolicy", "IfNotPresent"), ("ipam.mode", "kubernetes")]
    if offline:
        values += OFFLINE_HELM_VALUES
    if kube_proxy_mode == "none":
        values += [
            ("kubeProxyReplacement", "true"),
            ("k8sServiceHost", f"{name}-control-plane"),
            ("k8sServicePort", "6443"),
        ]
    if hubble:
        values += [("hubble.relay.enabled", "true"), ("hubble.ui.enabled", "true")]
    return values


def cilium_steps(ctx: InstallContext) -> tuple[list[PlanStep], list[PlanStep]]:
    """``helm install`` the pinned chart into kube-system; then wait for the agent and operator."""
    chart = (
        [ctx.chart]
        if ctx.chart
        else ["cilium", "--repo", pins.CILIUM_CHART_REPO, "--version", pins.CILIUM_VERSION]
    )
    argv = ["helm", "install", "cilium", *chart, "--namespace", "kube-system"]
    argv += ["--kubeconfig", ctx.kubeconfig]
    offline = ctx.chart is not None
    for key, value in cilium_helm_values(ctx.name, ctx.kube_proxy_mode, ctx.hubble, offline):
        argv += ["--set", f"{key}={value}"]
    timeout = ctx.timeout(DEFAULT_TIMEOUT_S)
    deployments = ("cilium-operator",) + (("hubble-relay", "hubble-ui") if ctx.hubble else ())
    install = [
        PlanStep(
            f"Install Cilium {pins.CILIUM_VERSION} with Helm",
            (Run(tuple(argv)),),
            note="pinned chart version; the cilium CLI would otherwise pick its own default",
        )
    ]
    waits = [
        PlanStep(
            "Wait for the Cilium agent on every node and the operator",
            (
                Wait(
                    "daemonset",
                    "cilium agent ready on every node",
                    timeout,
                    namespace="kube-system",
                    names=("cilium",),
                ),
                Wait(
                    "deployment",
                    "cilium operator" + (" and Hubble" if ctx.hubble else "") + " available",
                    timeout,
                    namespace="kube-system",
                    names=deployments,
                ),
            ),
        ),
    ]
    return install, waits


INSTALLERS = {"flannel": flannel_steps, "calico": calico_steps, "cilium": cilium_steps}


def install_steps(cni: str, ctx: InstallContext) -> tuple[list[PlanStep], list[PlanStep]]:
    """One CNI's install steps, and the steps that wait for its pods (run once nodes are Ready)."""
    return INSTALLERS[cni](ctx)


def manifest_urls(cni: str) -> list[str]:
    """Every manifest URL a CNI install reads."""
    return {
        "flannel": [pins.FLANNEL_MANIFEST_URL],
        "calico": [pins.CALICO_CRDS_URL, pins.CALICO_OPERATOR_URL],
        "cilium": [],
    }[cni]


def cni_version(cni: str) -> str:
    """The pinned release of a CNI, for messages."""
    return {
        "flannel": pins.FLANNEL_VERSION,
        "calico": pins.CALICO_VERSION,
        "cilium": pins.CILIUM_VERSION,
    }[cni]
