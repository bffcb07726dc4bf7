"""The whole Kind install plan for one lab, built without touching Docker, and its dry-run text."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.kind import cluster, hostcontainers, pins
from labkit.kind import cni as cni_installers
from labkit.kind import config as kind_config
from labkit.kind import pack as pack_contents
from labkit.kind.actions import (
    Action,
    CreateCluster,
    Fetch,
    PlanStep,
    Run,
    StartContainer,
    Unpack,
    Wait,
    WriteFile,
)
from labkit.kind.dockerhost import platform_arch
from labkit.kind.options import mode_notes, resolve_kube_proxy_mode, validate_name
from labkit.values import validate_cni

NODE_COUNT = 3
NODE_TIMEOUT_S = 300.0
CLOUD_PROVIDER_TIMEOUT_S = 180.0
"""cloud-provider-kind finds a new cluster within 30 s; its first start pulls its image."""


@dataclass(frozen=True)
class Paths:
    """Where one lab keeps its files on the host."""

    state_dir: Path
    """Per-lab folder: rendered config, the lab's kubeconfig, Flannel's plugin folder."""
    user_kubeconfig: Path
    """The kubeconfig kind merges its context into, so plain `kubectl` works for the learner."""
    cache_dir: Path
    """Downloads kept between labs (the CNI plugin tarball)."""

    @property
    def config_file(self) -> Path:
        """The rendered Kind config."""
        return self.state_dir / "kind-config.yaml"

    @property
    def lab_kubeconfig(self) -> Path:
        """The lab's own kubeconfig (labkit never uses the user's current context)."""
        return self.state_dir / "kubeconfig"

    @property
    def cni_bin(self) -> Path:
        """Flannel's plugin folder, mounted over /opt/cni/bin on every node."""
        return self.state_dir / "cni-bin"


def default_paths(name: str, env: dict[str, str] | None = None) -> Paths:
    """Paths under XDG state and cache folders, and the user's kubeconfig (first $KUBECONFIG
    entry)."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "labkit" / "kind" / name
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "labkit"
    first = (env.get("KUBECONFIG") or "").split(os.pathsep)[0]
    kubeconfig = Path(first) if first else home / ".kube" / "config"
    return Paths(state_dir=state, user_kubeconfig=kubeconfig, cache_dir=cache)


@dataclass(frozen=True)
class Plan:
    """Everything `labkit up --backend kind` will do, in order, as data."""

    name: str
    cni: str
    kube_proxy_mode: str
    hubble: bool
    paths: Paths
    config: dict[str, Any]
    config_yaml: str
    steps: tuple[PlanStep, ...]
    helm_values: tuple[tuple[str, str], ...] = ()
    manifest_urls: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    on_attach: tuple[PlanStep, ...] = ()
    """The steps `up` runs when the lab already runs (`resume_steps`), each one of ``steps``."""
    pack: str | None = None
    """The offline pack the plan installs from (`up --pack`); None: downloads."""

    @property
    def required_tools(self) -> tuple[str, ...]:
        """The tools `up` looks up on PATH before it starts (helm only for Cilium)."""
        return ("kind", "kubectl", "helm") if self.cni == "cilium" else ("kind", "kubectl")

    def actions(self) -> list[Action]:
        """Every action of every step, in order."""
        return [a for s in self.steps for a in s.actions]

    def commands(self) -> list[str]:
        """Every external command line the plan runs (not the waits, which labkit polls itself)."""
        return [
            a.shell() for a in self.actions() if isinstance(a, (Run, CreateCluster, StartContainer))
        ]

    def waits(self) -> list[Wait]:
        """Every wait of the plan, in order."""
        return [a for a in self.actions() if isinstance(a, Wait)]

    def _attach_text(self) -> str:
        """Which numbered steps run for a lab that already runs."""
        if not self.on_attach:
            return ""
        numbers = [str(self.steps.index(step) + 1) for step in self.on_attach]
        return (
            f", and then only step{'s' if len(numbers) > 1 else ''} {', '.join(numbers)} run, "
            "starting what is missing beside it"
        )

    def render(self) -> str:
        """The full dry-run text: pins, checks, the rendered config, each step, URLs and Helm
        values."""
        kubeconfig = str(self.paths.lab_kubeconfig)
        out = [
            f"Kind lab {self.name!r}: {self.cni} {cni_installers.cni_version(self.cni)}, "
            f"kube-proxy {self.kube_proxy_mode}" + (", Hubble" if self.hubble else ""),
            f"Pinned: kind {pins.KIND_VERSION}, node image {pins.NODE_IMAGE}",
        ]
        if self.pack:
            out.append(f"Offline: every image, manifest and chart from the pack in {self.pack}")
        if self.notes:
            out.append("Notes:")
            out += [f"  - {n}" for n in self.notes]
        out.append(
            "Checks before anything changes: "
            + ", ".join(f"`{t}` on PATH" for t in self.required_tools)
            + f"; a Docker engine answers, on cgroup v2; kind is {pins.KIND_VERSION} or newer; "
            f"a running lab named {self.name!r} with {self.cni} is attached to instead (one "
            "not made by labkit, or with another CNI, is refused)"
            + self._attach_text()
            + ". The config maps no host port, so labs run side by side."
        )
        out += ["", f"Kind config -> {self.paths.config_file}"]
        out += [f"  | {line}" for line in self.config_yaml.rstrip("\n").splitlines()]
        out += ["", "Steps:"]
        for number, step in enumerate(self.steps, 1):
            out.append(f"{number:>3}. {step.title}")
            if step.note:
                out.append(f"       ({step.note})")
            for action in step.actions:
                if isinstance(action, Wait):
                    out.append(
                        f"       wait: {action.title} (timeout {int(action.timeout_s)} s); "
                        "labkit polls, the kubectl equivalent is:"
                    )
                    text = action.shell(kubeconfig)
                else:
                    text = action.shell()
                prefix = "" if isinstance(action, (WriteFile, Fetch, Unpack)) else "$ "
                for i, line in enumerate(text.splitlines()):
                    out.append(("       " + prefix if i == 0 else "         ") + line)
        if self.manifest_urls:
            out += ["", "Manifest URLs:"] + [f"  - {u}" for u in self.manifest_urls]
        if self.helm_values:
            out += [
                "",
                f"Helm values (chart cilium {pins.CILIUM_VERSION} from "
                f"{self.pack or pins.CILIUM_CHART_REPO}):",
            ]
            out += [f"  {k}={v}" for k, v in self.helm_values]
        return "\n".join(out) + "\n"


def build_plan(
    name: str,
    cni: str,
    kube_proxy_mode: str | None = None,
    *,
    paths: Paths,
    arch: str = "amd64",
    hubble: bool = False,
    timeout_s: float | None = None,
    clusters_dir: Path = kind_config.CLUSTERS_DIR,
    docker_socket: str = hostcontainers.DOCKER_SOCKET,
    pack: str | None = None,
) -> Plan:
    """Plan a lab from its name, CNI and kube-proxy mode; pure apart from reading
    clusters/<cni>.yaml. ``docker_socket`` is the host's, mounted into cloud-provider-kind;
    ``pack`` a checked offline pack to take every image, manifest and chart from."""
    validate_name(name)
    validate_cni(cni)
    mode = resolve_kube_proxy_mode(cni, kube_proxy_mode)
    if hubble and cni != "cilium":
        raise LabError(
            f"Hubble is part of Cilium, and this lab uses {cni}.",
            "Drop the Hubble option, or choose --cni cilium.",
        )
    if hubble and pack:
        raise LabError(
            "An offline pack holds no Hubble relay or UI images.",
            "Drop --hubble for the offline lab, or run it where images can be pulled.",
        )
    template = kind_config.load(cni, clusters_dir)
    needs_plugins = kind_config.mounts_cni_plugins(template)
    config = kind_config.render(template, mode, paths.cni_bin if needs_plugins else None)
    config_yaml = kind_config.to_yaml(
        config, header=f"Rendered by labkit for lab {name!r} from clusters/{cni}.yaml"
    )

    steps: list[PlanStep] = []
    if needs_plugins:
        if arch not in pins.CNI_PLUGINS_SHA256:
            platform_arch(arch)  # raises the explanation
        tarball = f"cni-plugins-linux-{arch}-{pins.CNI_PLUGINS_VERSION}.tgz"
        plugins: Action = (
            Unpack(f"{pack}/cni-plugins/{tarball}", str(paths.cni_bin))
            if pack
            else Fetch(
                pins.cni_plugins_url(arch),
                pins.CNI_PLUGINS_SHA256[arch],
                str(paths.cache_dir / tarball),
                str(paths.cni_bin),
            )
        )
        steps.append(
            PlanStep(
                f"Prepare the containernetworking plugins {pins.CNI_PLUGINS_VERSION} for "
                "Flannel's `bridge`",
                (plugins,),
                note=(
                    "kind nodes lack the bridge plugin; this folder is mounted over /opt/cni/bin "
                    "on every node"
                ),
            )
        )
    steps.append(
        PlanStep("Write the Kind config", (WriteFile(str(paths.config_file), config_yaml),))
    )
    pack_images = pack_contents.images((cni,))
    if pack:
        steps.append(
            PlanStep(
                "Load the pack's node image and host containers' images into Docker",
                tuple(
                    Run(("docker", "load", "--input", f"{pack}/{i.file}"))
                    for i in pack_images
                    if i.host
                ),
            )
        )
    node_image = pack_contents.PackImage(pins.NODE_IMAGE, True, False).tag if pack else None
    steps.append(
        PlanStep(
            f"Create Kind cluster {name!r} ({NODE_COUNT} nodes)",
            (
                CreateCluster(
                    name,
                    node_image or pins.NODE_IMAGE,
                    str(paths.config_file),
                    str(paths.user_kubeconfig),
                ),
            ),
            note=f"kind also adds context kind-{name} to {paths.user_kubeconfig}",
        )
    )
    on_attach = resume_steps(name, paths, docker_socket, timeout_s)
    steps.append(on_attach[0])
    if pack:
        steps.append(
            PlanStep(
                "Load the pack's images into every node",
                tuple(
                    Run(cluster.load_archive_argv(name, f"{pack}/{i.file}"))
                    for i in pack_images
                    if i.nodes
                ),
                note="one platform per archive, so containerd's import finds every blob",
            )
        )
    ctx = cni_installers.InstallContext(
        name=name,
        kubeconfig=str(paths.lab_kubeconfig),
        kube_proxy_mode=mode,
        pod_subnet=kind_config.pod_subnet(config),
        hubble=hubble,
        timeout_s=timeout_s,
        local=pack_contents.local_sources(pack, cni, arch) if pack else {},
        chart=f"{pack}/{pack_contents.chart_file()}" if pack else None,
    )
    install, cni_waits = cni_installers.install_steps(cni, ctx)
    steps += install
    # Nodes turn Ready once the CNI has written its config; the CNI's own pods are checked after.
    steps.append(
        PlanStep(
            "Wait until every node is Ready",
            (
                Wait(
                    "nodes",
                    f"{NODE_COUNT} nodes Ready",
                    timeout_s if timeout_s is not None else NODE_TIMEOUT_S,
                    count=NODE_COUNT,
                ),
            ),
        )
    )
    steps += cni_waits
    steps.append(
        PlanStep(
            "Wait for cluster DNS",
            (
                Wait(
                    "deployment",
                    "CoreDNS available",
                    timeout_s if timeout_s is not None else cni_installers.DEFAULT_TIMEOUT_S,
                    namespace="kube-system",
                    names=("coredns",),
                ),
            ),
        )
    )
    steps += on_attach[1:]
    helm_values = (
        tuple(cni_installers.cilium_helm_values(name, mode, hubble, offline=pack is not None))
        if cni == "cilium"
        else ()
    )
    return Plan(
        name=name,
        cni=cni,
        kube_proxy_mode=mode,
        hubble=hubble,
        paths=paths,
        config=config,
        config_yaml=config_yaml,
        steps=tuple(steps),
        helm_values=helm_values,
        manifest_urls=() if pack else tuple(cni_installers.manifest_urls(cni)),
        notes=tuple(mode_notes(cni, mode)),
        on_attach=tuple(on_attach),
        pack=pack,
    )


def resume_steps(
    name: str, paths: Paths, docker_socket: str, timeout_s: float | None = None
) -> list[PlanStep]:
    """What `up` does for a lab that already runs, with a fresh up's waits: the lab's kubeconfig
    saved afresh, then the containers beside the cluster (Docker restarts kind's nodes after a
    reboot, and ours only under their restart policy: a `docker stop` or `docker rm` loses them)."""
    save = PlanStep(
        "Save the lab's own kubeconfig",
        (Run(cluster.kubeconfig_argv(name), stdout_to=str(paths.lab_kubeconfig)),),
    )
    return [save, *beside_the_cluster(name, docker_socket, timeout_s)]


def beside_the_cluster(
    name: str, docker_socket: str, timeout_s: float | None = None
) -> list[PlanStep]:
    """The containers on the kind network: the lab's outside client, and cloud-provider-kind (one
    per host, so started only when none runs) with a wait until it serves this cluster."""
    outside = hostcontainers.outside_name(name)
    provider = hostcontainers.CLOUD_PROVIDER
    return [
        PlanStep(
            f"Start the outside client {outside} on the kind network",
            (StartContainer(outside, hostcontainers.outside_run_argv(name)),),
            note="probes from OUTSIDE run here, as from a machine beside the nodes, on every "
            "platform (Docker Desktop's host cannot reach node IPs)",
        ),
        PlanStep(
            f"Run cloud-provider-kind {pins.CLOUD_PROVIDER_KIND_VERSION} for LoadBalancer and "
            "Ingress",
            (
                StartContainer(provider, hostcontainers.cloud_provider_run_argv(docker_socket)),
                Wait(
                    "ingressclass",
                    f"cloud-provider-kind serving lab {name!r}",
                    CLOUD_PROVIDER_TIMEOUT_S if timeout_s is None else timeout_s,
                    names=(pins.CLOUD_PROVIDER_KIND_INGRESS_CLASS,),
                ),
            ),
            note="one container serves every Kind cluster on this host; `labkit down` removes "
            "it with the last one",
        ),
    ]
