"""The Kind backend as `labkit.lab.Backend` describes it: up, attach, down, names, doctor_checks,
and plan for --dry-run."""

from __future__ import annotations

import logging
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.console import StepList
from labkit.errors import LabError
from labkit.inputs import check_timeout
from labkit.kind import (
    cluster,
    detect,
    dockerhost,
    execute,
    footprint,
    hostcontainers,
    packfile,
    packrun,
    tools,
)
from labkit.kind.actions import PlanStep
from labkit.kind.doctor import kind_checks
from labkit.kind.lab import KindLab
from labkit.kind.options import resolve_kube_proxy_mode, validate_name
from labkit.kind.plan import Paths, Plan, build_plan, default_paths
from labkit.machine import docker_engine_answers
from labkit.values import DEFAULT_CNI, DEFAULT_LAB_NAME, DoctorLine, LabSummary

log = logging.getLogger("labkit")


def docker_arch() -> str:
    """The architecture Kind's nodes run on: Docker's, not this Python's (an x86_64 Python under
    Rosetta still drives arm64 nodes); this machine's only when no engine answers (a dry run)."""
    host = dockerhost.read()
    return dockerhost.platform_arch(host.architecture if host else platform.machine())


def plan(
    lab_name: str = DEFAULT_LAB_NAME,
    cni: str = DEFAULT_CNI,
    kube_proxy_mode: str | None = None,
    *,
    hubble: bool = False,
    timeout_s: float | None = None,
    pack: Path | None = None,
) -> Plan:
    """Everything `up` would do, changing nothing (for Flannel or a pack it asks Docker its
    architecture; a pack is checked against its pack.json first); ``plan(...).render()`` is the
    dry-run text."""
    if timeout_s is not None:
        check_timeout(timeout_s, "timeout_s")
    validate_name(lab_name)
    resolve_kube_proxy_mode(cni, kube_proxy_mode)  # refuse bad input before asking Docker
    arch = docker_arch() if cni == "flannel" or pack is not None else "amd64"
    if pack is not None:
        packfile.check(pack, cni, f"linux/{arch}")
    return build_plan(
        lab_name,
        cni,
        kube_proxy_mode,
        paths=default_paths(lab_name),
        arch=arch,
        hubble=hubble,
        timeout_s=timeout_s,
        docker_socket=hostcontainers.docker_socket(),
        pack=str(pack) if pack is not None else None,
    )


def up(
    lab_name: str = DEFAULT_LAB_NAME,
    cni: str = DEFAULT_CNI,
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
    hubble: bool = False,
    timeout_s: float | None = None,
    pack: Path | None = None,
) -> KindLab:
    """Create the Kind cluster, install the CNI, wait until nodes and CNI pods are Ready; return
    the Lab. A running lab of that name and CNI is attached to instead, so `make lab` can run
    twice. ``quiet`` prints no steps; ``pack`` installs from an offline pack only."""
    the_plan = plan(lab_name, cni, kube_proxy_mode, hubble=hubble, timeout_s=timeout_s, pack=pack)
    running = running_lab(lab_name, cni)
    if running is not None:
        if kube_proxy_mode is not None and running.kube_proxy_mode != the_plan.kube_proxy_mode:
            log.warning(
                "lab %r runs kube-proxy mode %s, not %s; using it (run `labkit down --name %s` "
                "first to switch).",
                lab_name,
                running.kube_proxy_mode,
                the_plan.kube_proxy_mode,
                lab_name,
            )
        if not quiet:
            log.info(
                "Kind lab %r is already running with %s; attaching to it, as connect() does.",
                lab_name,
                cni,
            )
        if not missing_beside(running):
            return running
        return resumed(running, the_plan.on_attach, the_plan.paths, quiet=quiet)
    execute.execute(the_plan, StepList(total=len(the_plan.steps), quiet=quiet))
    lab = KindLab.attach(lab_name)
    if lab is None:
        raise LabError(
            f"Kind lab {lab_name!r} was created, but its {cni} DaemonSet cannot be found.",
            f"Look at `kubectl --context kind-{lab_name} get pods -A`; "
            f"`labkit down --name {lab_name}` removes the cluster.",
        )
    return lab


def make_pack(
    folder: Path, cnis: Sequence[str], platform_name: str | None = None
) -> dict[str, Any]:
    """`labkit pack`: everything a Kind lab with ``cnis`` needs, for one platform (default:
    Docker's architecture), saved into ``folder`` with its pack.json."""
    for tool in ("docker", "helm") if "cilium" in cnis else ("docker",):
        tools.find(tool)
    chosen = platform_name or f"linux/{docker_arch()}"
    return packrun.make_pack(folder, cnis, chosen, say=lambda line: log.info("%s", line))


def running_lab(lab_name: str, cni: str) -> KindLab | None:
    """The running Kind lab ``lab_name`` when labkit made it with ``cni``; None when no cluster
    has that name; a LabError naming the fix when the cluster is not ours or runs another CNI."""
    if lab_name not in cluster.cluster_names():
        return None
    lab = KindLab.attach(lab_name)
    if lab is None or not detect.made_by_labkit(lab.get("nodes", namespace=None)):
        raise LabError(
            f"A Kind cluster named {lab_name!r} exists, but labkit did not make it (no Flannel, "
            "Calico or Cilium DaemonSet, or no labkit.dev/pool labels on its workers).",
            f"Choose another name (--name, or LAB= for make lab), or delete that cluster with "
            f"`kind delete cluster --name {lab_name}` if you no longer need it.",
        )
    if lab.cni != cni:
        raise LabError(
            f"Kind lab {lab_name!r} is already running with {lab.cni}, not {cni}.",
            f"Use it as it is (--cni {lab.cni}), or remove it first with "
            f"`labkit down --name {lab_name}` and run `labkit up` again.",
        )
    return lab


def attach(lab_name: str = DEFAULT_LAB_NAME) -> KindLab | None:
    """The running Kind lab ``lab_name`` as it is (a read: `labkit status`, `labkit kubectl`,
    the widget panel and hubble start nothing and never wait); one warning line names what is
    missing beside it and that `labkit up` starts it. None when no Kind cluster of that name runs
    one of our CNIs."""
    lab = KindLab.attach(validate_name(lab_name))
    missing = missing_beside(lab) if lab is not None else []
    if missing:
        log.warning(
            "Kind lab %r: %s; `labkit up --name %s` starts %s.",
            lab_name,
            " and ".join(missing),
            lab_name,
            "them" if len(missing) > 1 else "it",
        )
    return lab


def missing_beside(lab: KindLab) -> list[str]:
    """What `up` starts beside the cluster that does not run now: the lab's outside client
    (missing or stopped) and cloud-provider-kind (not yet serving the lab)."""
    outside = hostcontainers.outside_name(lab.name)
    missing = []
    if hostcontainers.container_state(outside) != "running":
        missing.append(f"its outside client {outside} is not running")
    if not lab.capabilities.load_balancer:
        missing.append(
            f"cloud-provider-kind (container {hostcontainers.CLOUD_PROVIDER}) does not serve it"
        )
    return missing


def resumed(
    lab: KindLab, on_attach: Sequence[PlanStep], paths: Paths, *, quiet: bool = False
) -> KindLab:
    """The running ``lab`` once what `up` starts beside it runs again (``on_attach``, with a fresh
    up's waits), attached afresh to see cloud-provider-kind serving it."""
    execute.resume(on_attach, str(paths.lab_kubeconfig), StepList(len(on_attach), quiet=quiet))
    return KindLab.attach(lab.name) or lab


def down(lab_name: str = DEFAULT_LAB_NAME) -> bool:
    """Delete the Kind cluster ``lab_name``, its files and the containers beside it (its outside
    client, its Envoy load balancers, and cloud-provider-kind with the last Kind cluster); False
    when there was no such cluster."""
    validate_name(lab_name)
    tools.find("kind")
    ok, why = docker_engine_answers()
    if not ok:
        # Without an engine we cannot tell whether the cluster exists, and its nodes may still need
        # the lab's files (Flannel's plugin folder) when Docker comes back: keep everything.
        raise LabError(
            f"No Docker engine answers ({why}), so labkit cannot remove Kind lab {lab_name!r}.",
            f"Start Docker (`docker info` must work), then run `labkit down --name {lab_name}` "
            "again.",
        )
    paths = default_paths(lab_name)
    existed = lab_name in cluster.cluster_names()
    if existed:
        cluster.delete(lab_name, kubeconfig=paths.user_kubeconfig)
    hostcontainers.remove_for_lab(lab_name, cluster.cluster_names())
    shutil.rmtree(paths.state_dir, ignore_errors=True)
    return existed


def names() -> list[str]:
    """Names of the Kind clusters that exist (empty without kind or a Docker engine)."""
    return cluster.cluster_names()


def summaries() -> list[LabSummary]:
    """The Kind clusters that exist, with their CNI, state, age and memory as Docker shows
    them."""
    return footprint.summaries(names())


def doctor_checks(cni: str | None = None) -> list[DoctorLine]:
    """What the Kind backend needs of this machine (Docker, kind, kubectl, limits, ports)."""
    return kind_checks(cni)
