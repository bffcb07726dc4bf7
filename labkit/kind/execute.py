"""Carry out a Kind install plan: preflight checks, each step with progress, and polling waits
that time out with a list of what is still not ready."""

from __future__ import annotations

import json
import logging
import os
import shlex
import tarfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit.console import StepList
from labkit.errors import LabError
from labkit.kind import cluster, dockerhost, exits, hostcontainers, pins, readiness, tools
from labkit.kind.actions import (
    CreateCluster,
    Download,
    Fetch,
    PlanStep,
    Run,
    StartContainer,
    Unpack,
    Wait,
    WriteFile,
)
from labkit.kind.doctor import judge_kind, parse_version
from labkit.kind.download import download, sha256_of
from labkit.kind.plan import Plan
from labkit.machine import docker_engine_answers

POLL_INTERVAL_S = 2.0
COMMAND_TIMEOUT_S = 600.0
RESOURCE_NAMES = {
    "nodes": "nodes",
    "daemonset": "daemonsets",
    "deployment": "deployments",
    "tigerastatus": "tigerastatuses.operator.tigera.io",
    "crd": "customresourcedefinitions",
    "ingressclass": "ingressclasses.networking.k8s.io",
}
KEEP_FAILED_ENV = "LABKIT_KIND_KEEP_FAILED"
log = logging.getLogger(__name__)

Creator = Callable[[CreateCluster], None]
"""Carries out a plan's `kind create cluster` (the Kind test tier hands in pytest-kind-ng's)."""


def create_cluster(action: CreateCluster) -> None:
    """The plan's `kind create cluster`, through ``cluster``."""
    cluster.create(
        action.name,
        config_path=Path(action.config_path),
        kubeconfig=Path(action.kubeconfig),
        image=action.image,
    )


# --------------------------------------------------------------------------- preflight


def preflight(plan: Plan) -> None:
    """Refuse to start when a tool, the Docker engine (cgroup v1), kind's version or the name would
    make kind fail."""
    for tool in plan.required_tools:
        tools.find(tool)
    ok, why = docker_engine_answers()
    if not ok:
        raise LabError(
            f"No Docker engine answers ({why}), and Kind runs its nodes as Docker containers.",
            "Start Docker (Docker Desktop, or `sudo systemctl start docker`) and check that "
            "`docker info` works, or use the sandbox backend (`labkit up --backend sandbox`).",
        )
    host = dockerhost.read()
    if host is not None and host.cgroup_version == "1":
        raise LabError(dockerhost.cgroup_v1_problem(), dockerhost.cgroup_v1_fix(host))
    check_kind_version(tools.run(cluster.version_argv(), check=False, timeout=60).stdout)
    existing = cluster.cluster_names()
    if plan.name in existing:
        raise LabError(
            f"A Kind cluster named {plan.name!r} already exists.",
            f"Use it (labkit.connect(name={plan.name!r}) attaches), remove it with "
            f"`labkit down --name {plan.name}`, or choose another --name.",
        )


def check_kind_version(version_output: str) -> None:
    """Refuse a kind older than the pinned release: kind v0.30/v0.31 write a kubeadm v1beta3
    config, and the 1.36 node image then fails inside `kubeadm init` (v0.32.0 writes v1beta4)."""
    ok, detail = judge_kind(parse_version(version_output))
    if not ok:
        raise LabError(
            f"{detail}. kind v0.30 and v0.31 write a kubeadm v1beta3 config, and the pinned "
            f"Kubernetes 1.{pins.KUBERNETES_MINOR} node image then fails inside `kubeadm init`.",
            tools.INSTALL_HINTS["kind"],
        )


# --------------------------------------------------------------------------- actions


def fetch_and_unpack(action: Fetch, opener: Callable[..., Any] = urllib.request.urlopen) -> None:
    """Download the tarball unless the cache already holds it intact, verify it, and unpack it."""
    cache = Path(action.cache_file)
    if not cache.is_file() or sha256_of(cache) != action.sha256:
        download(action.url, cache, action.sha256, "try again", opener)
    unpack(cache, Path(action.extract_to))


def unpack(cache: Path, dest: Path) -> None:
    """Unpack the CNI plugins tarball into ``dest``; a LabError when it holds no `bridge`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(cache, "r:gz") as archive:
        try:
            archive.extractall(dest, filter="data")
        except TypeError:  # Python without extraction filters
            archive.extractall(dest)
    if not (dest / "bridge").is_file():
        raise LabError(
            f"{cache} unpacked without a `bridge` plugin.", f"Delete {cache} and try again."
        )


def write_file(action: WriteFile) -> None:
    """Write a plan's file (the rendered Kind config), creating its folder."""
    path = Path(action.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(action.content)


def run_command(action: Run) -> str:
    """Run a plan command; save its stdout where the plan says (private: it may be a kubeconfig)."""
    proc = tools.run(list(action.argv), input=action.stdin, timeout=COMMAND_TIMEOUT_S)
    if action.stdout_to:
        target = Path(action.stdout_to)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(proc.stdout)
        os.chmod(target, 0o600)
    return proc.stdout


# --------------------------------------------------------------------------- waits


def list_objects(wait: Wait, kubeconfig: str) -> tuple[list[dict[str, Any]] | None, str]:
    """The objects a wait looks at, via `kubectl get -o json`; (None, reason) when they cannot be
    listed yet."""
    argv = ["kubectl", "--kubeconfig", kubeconfig, "get", RESOURCE_NAMES[wait.what], "-o", "json"]
    if wait.namespace:
        argv[4:4] = ["-n", wait.namespace]
    proc = tools.run(argv, check=False, timeout=60)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return None, f"cannot list {RESOURCE_NAMES[wait.what]} yet ({first})"
    return list(json.loads(proc.stdout or "{}").get("items") or []), ""


def wait_until_ready(
    wait: Wait,
    fetch: Callable[[Wait], tuple[list[dict[str, Any]] | None, str]],
    report: Callable[[list[str], float], None] = lambda p, w: None,
    diagnostics: Callable[[], str] = lambda: "",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = POLL_INTERVAL_S,
) -> float:
    """Poll until nothing is pending; returns seconds waited, or raises LabError naming what is not
    ready."""
    began = clock()
    while True:
        objects, why = fetch(wait)
        pending = readiness.pending(wait, objects) if objects is not None else [why]
        waited = clock() - began
        if not pending:
            return waited
        report(pending, waited)
        if waited >= wait.timeout_s:
            extra = diagnostics()
            raise LabError(
                f"Timed out after {wait.timeout_s:.0f} s waiting for {wait.title}.",
                "Images may still be downloading on a slow network: run `labkit down`, then "
                "`labkit up` again; `kubectl get pods -A -o wide` and "
                "`kubectl describe pod <name> -n <namespace>` "
                "show what is stuck.",
                output="Still not ready:\n  - "
                + "\n  - ".join(pending)
                + (f"\n\n{extra}" if extra else ""),
            )
        sleep(interval)


def cluster_snapshot(kubeconfig: str) -> str:
    """`kubectl get nodes,pods -A -o wide` for a timeout report."""
    proc = tools.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "nodes,pods", "-A", "-o", "wide"],
        check=False,
        timeout=60,
    )
    return "kubectl get nodes,pods -A -o wide:\n" + (proc.stdout or proc.stderr).strip()


# --------------------------------------------------------------------------- the whole plan


def carry_out(
    action: Fetch | Unpack | Download | WriteFile | Run | StartContainer | Wait,
    steps: StepList,
    kubeconfig: str,
) -> None:
    """One action of a plan other than creating the cluster, its command shown in ``steps``."""
    if isinstance(action, Download):
        raise ValueError("downloads into a pack belong to `labkit pack`'s plan, never to up's")
    if isinstance(action, Fetch):
        fetch_and_unpack(action)
    elif isinstance(action, Unpack):
        unpack(Path(action.archive), Path(action.extract_to))
    elif isinstance(action, WriteFile):
        write_file(action)
    elif isinstance(action, Run):
        steps.command(action.shell())
        run_command(action)
    elif isinstance(action, StartContainer):
        started = hostcontainers.start(action.name, action.argv)
        steps.command(
            shlex.join(action.argv) if started else f"(container {action.name} already runs: kept)"
        )
    else:
        with steps.waiting(action.title) as report:
            wait_until_ready(
                action,
                lambda w: list_objects(w, kubeconfig),
                report,
                diagnostics=lambda: cluster_snapshot(kubeconfig),
            )


def resume(on_attach: Sequence[PlanStep], kubeconfig: str, steps: StepList | None = None) -> None:
    """Run a plan's ``on_attach`` steps for a lab that already runs: what is missing beside it is
    started and waited for as in a fresh up; nothing is removed on failure (the lab was there
    before)."""
    steps = steps or StepList(total=len(on_attach))
    for number, step in enumerate(on_attach, 1):
        with steps.step(step.title, number):
            for action in step.actions:
                if isinstance(action, CreateCluster):
                    raise ValueError("resuming a lab never creates its cluster")
                carry_out(action, steps, kubeconfig)
    steps.summary()


def execute(
    plan: Plan,
    steps: StepList | None = None,
    keep_failed: bool | None = None,
    create: Creator = create_cluster,
) -> None:
    """Run ``plan`` after its preflight checks. Once the cluster exists, any way out short of
    success removes it: an error, Ctrl-C, a test timeout, SIGTERM or SIGHUP, the interpreter
    exiting (set LABKIT_KIND_KEEP_FAILED=1 to keep it for inspection)."""
    preflight(plan)
    steps = steps or StepList(total=len(plan.steps))
    keep = keep_failed if keep_failed is not None else os.environ.get(KEEP_FAILED_ENV) == "1"
    kubeconfig = str(plan.paths.lab_kubeconfig)
    removal_notes: list[str] = []
    removal = exits.Once(lambda: removal_notes.append(_remove_half_built(plan)))
    try:
        with exits.signals_as_exit():
            for number, step in enumerate(plan.steps, 1):
                with steps.step(step.title, number):
                    for action in step.actions:
                        if isinstance(action, CreateCluster):
                            steps.command(action.shell())
                            if not keep:
                                removal.arm()
                            create(action)
                        else:
                            carry_out(action, steps, kubeconfig)
    except BaseException as exc:
        removal()  # nothing unless it was armed: the cluster was being created, not kept
        if removal_notes and isinstance(exc, LabError):
            exc.fix += removal_notes[0]
            exc.args = (exc.render(),)
        elif removal_notes:
            log.warning("%s.%s", type(exc).__name__, removal_notes[0])
        raise
    removal.disarm()
    steps.summary()


def _remove_half_built(plan: Plan) -> str:
    """Delete a half-built cluster so nothing is left half-applied; the sentence that says so."""
    try:
        if plan.name in cluster.cluster_names():
            cluster.delete(plan.name, kubeconfig=plan.paths.user_kubeconfig)
        hostcontainers.remove_for_lab(plan.name, cluster.cluster_names())
        return (
            f" The half-built cluster {plan.name!r} was removed; set {KEEP_FAILED_ENV}=1 "
            "to keep it for inspection next time."
        )
    except LabError as cleanup:
        return (
            f" Removing the half-built cluster also failed ({cleanup.what}); run "
            f"`labkit down --name {plan.name}`."
        )
