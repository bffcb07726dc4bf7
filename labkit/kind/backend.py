"""The Kind backend as `labkit.lab.Backend` describes it: up, attach, down, names, doctor_checks,
and plan for --dry-run."""

from __future__ import annotations

import shutil

from labkit.console import StepList
from labkit.errors import LabError
from labkit.inputs import check_timeout
from labkit.kind import cluster, execute, hostcontainers, tools
from labkit.kind.doctor import kind_checks
from labkit.kind.lab import KindLab
from labkit.kind.options import validate_name
from labkit.kind.plan import Plan, build_plan, default_paths, host_arch
from labkit.machine import docker_engine_answers
from labkit.values import DEFAULT_CNI, DEFAULT_LAB_NAME, DoctorLine


def plan(
    lab_name: str = DEFAULT_LAB_NAME,
    cni: str = DEFAULT_CNI,
    kube_proxy_mode: str | None = None,
    *,
    hubble: bool = False,
    timeout_s: float | None = None,
) -> Plan:
    """Everything `up` would do, without touching Docker; ``plan(...).render()`` is the dry-run
    text."""
    if timeout_s is not None:
        check_timeout(timeout_s, "timeout_s")
    arch = host_arch() if cni == "flannel" else "amd64"
    return build_plan(
        lab_name,
        cni,
        kube_proxy_mode,
        paths=default_paths(lab_name),
        arch=arch,
        hubble=hubble,
        timeout_s=timeout_s,
        docker_socket=hostcontainers.docker_socket(),
    )


def up(
    lab_name: str = DEFAULT_LAB_NAME,
    cni: str = DEFAULT_CNI,
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
    hubble: bool = False,
    timeout_s: float | None = None,
) -> KindLab:
    """Create the Kind cluster, install the CNI, wait until nodes and CNI pods are Ready; return
    the Lab. ``quiet`` prints no steps."""
    the_plan = plan(lab_name, cni, kube_proxy_mode, hubble=hubble, timeout_s=timeout_s)
    execute.execute(the_plan, StepList(total=len(the_plan.steps), quiet=quiet))
    lab = KindLab.attach(lab_name)
    if lab is None:
        raise LabError(
            f"Kind lab {lab_name!r} was created, but its {cni} DaemonSet cannot be found.",
            f"Look at `kubectl --context kind-{lab_name} get pods -A`; "
            f"`labkit down --name {lab_name}` removes the cluster.",
        )
    return lab


def attach(lab_name: str = DEFAULT_LAB_NAME) -> KindLab | None:
    """The running Kind lab ``lab_name``, or None when no Kind cluster of that name runs one of our
    CNIs."""
    return KindLab.attach(validate_name(lab_name))


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
        cluster.delete(lab_name, kubeconfig=paths.user_kubeconfig, state_dir=paths.state_dir)
    hostcontainers.remove_for_lab(lab_name, cluster.cluster_names())
    shutil.rmtree(paths.state_dir, ignore_errors=True)
    return existed


def names() -> list[str]:
    """Names of the Kind clusters that exist (empty without kind or a Docker engine)."""
    return cluster.cluster_names()


def doctor_checks(cni: str | None = None) -> list[DoctorLine]:
    """What the Kind backend needs of this machine (Docker, kind, kubectl, limits, ports)."""
    return kind_checks(cni)
