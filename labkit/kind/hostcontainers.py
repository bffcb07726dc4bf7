"""The containers labkit runs beside Kind labs on the ``kind`` Docker network: each lab's outside
client (``<lab>-outside``, the sandbox's outside namespace on Kind), and cloud-provider-kind,
one for the whole host.

cloud-provider-kind lists every Kind cluster on the host every 30 s and serves them all (its
README: "will monitor all your KIND clusters"); two copies would both reconcile the same
Services and create and delete the same ``kindccm-*`` Envoy containers. So labkit runs one,
shared, and removes it with the last Kind cluster. Both containers sit on the ``kind`` network,
so node IPs and load-balancer addresses answer them even on Docker Desktop, where the host
itself cannot reach that network.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence

from labkit.kind import pins, tools

KIND_NETWORK = "kind"
LAB_LABEL = "dev.labkit.kind-lab"
"""Label on a lab's outside container (not kind's own cluster label, which would make kind take
it for a node)."""
CLOUD_PROVIDER = "labkit-cloud-provider-kind"
ENVOY_LABEL = "io.x-k8s.cloud-provider-kind.cluster"
"""cloud-provider-kind's label on the Envoy containers it creates (pkg/constants,
NodeCCMLabelKey), valued with the cluster's name."""
DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_TIMEOUT_S = 120.0


def outside_name(lab_name: str) -> str:
    """The lab's outside client container (kind's nodes are ``<lab>-control-plane``,
    ``<lab>-worker``...)."""
    return f"{lab_name}-outside"


def outside_run_argv(lab_name: str) -> tuple[str, ...]:
    """``docker run`` for the outside client: agnhost idling with ``pause`` on the kind network,
    where probes run the same script as in a pod (curl, bash, ``agnhost connect``)."""
    name = outside_name(lab_name)
    return (
        "docker", "run", "--detach", "--name", name, "--hostname", name,
        "--network", KIND_NETWORK, "--label", f"{LAB_LABEL}={lab_name}",
        "--restart", "unless-stopped", pins.AGNHOST_IMAGE, "pause",
    )  # fmt: skip


def docker_socket(system: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The host path of the Docker socket to mount: a rootless engine's (``DOCKER_HOST``'s unix
    path) on Linux, else ``/var/run/docker.sock``, which Docker Desktop maps into its VM."""
    system = system or platform.system()
    host = (os.environ if env is None else env).get("DOCKER_HOST", "")
    if system == "Linux" and host.startswith("unix://"):
        return host.removeprefix("unix://")
    return DOCKER_SOCKET


def cloud_provider_run_argv(socket: str) -> tuple[str, ...]:
    """``docker run`` for cloud-provider-kind as its README documents it: the Docker socket
    mounted, on the ``kind`` network."""
    return (
        "docker", "run", "--detach", "--name", CLOUD_PROVIDER, "--network", KIND_NETWORK,
        "--restart", "unless-stopped", "--volume", f"{socket}:{DOCKER_SOCKET}",
        pins.CLOUD_PROVIDER_KIND_IMAGE,
    )  # fmt: skip


def state_argv(name: str) -> tuple[str, ...]:
    """``docker inspect`` printing whether a container runs (it fails when there is none)."""
    return ("docker", "inspect", "--format", "{{.State.Running}}", name)


def parse_state(returncode: int, stdout: str) -> str:
    """``running``, ``stopped`` or ``absent`` from ``docker inspect``'s exit code and output."""
    if returncode != 0:
        return "absent"
    return "running" if stdout.strip() == "true" else "stopped"


def container_state(name: str) -> str:
    """Whether container ``name`` runs: ``running``, ``stopped`` or ``absent``."""
    proc = tools.run(state_argv(name), check=False, timeout=DOCKER_TIMEOUT_S)
    return parse_state(proc.returncode, proc.stdout)


def start(name: str, argv: Sequence[str]) -> bool:
    """Run ``argv`` unless container ``name`` already runs (a stopped one is replaced); whether it
    started one."""
    state = container_state(name)
    if state == "running":
        return False
    if state == "stopped":
        tools.run(["docker", "rm", "--force", name], timeout=DOCKER_TIMEOUT_S)
    tools.run(
        list(argv),
        timeout=DOCKER_TIMEOUT_S * 5,
        fix="Check that the Docker engine can pull the image (`docker pull` it) and that the "
        "`kind` network exists (`docker network ls`), then run `labkit up` again.",
    )
    return True


def leftover_labels(lab_name: str, last_cluster: bool) -> list[str]:
    """The labels of what a lab's removal leaves behind: its outside container and the Envoy
    containers cloud-provider-kind made for it (with the last Kind cluster gone, every Envoy
    container, as cloud-provider-kind's own final cleanup does)."""
    return [f"{LAB_LABEL}={lab_name}", ENVOY_LABEL if last_cluster else f"{ENVOY_LABEL}={lab_name}"]


def remove_for_lab(lab_name: str, clusters_left: Sequence[str]) -> list[str]:
    """Remove the containers a removed lab leaves, and cloud-provider-kind when no Kind cluster is
    left for it to serve; the names removed."""
    names: list[str] = []
    for label in leftover_labels(lab_name, not clusters_left):
        listed = tools.run(
            ["docker", "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"],
            timeout=DOCKER_TIMEOUT_S,
        )
        names += [n for n in listed.stdout.split() if n not in names]
    if not clusters_left and container_state(CLOUD_PROVIDER) != "absent":
        names.append(CLOUD_PROVIDER)
    if names:
        tools.run(["docker", "rm", "--force", *names], timeout=DOCKER_TIMEOUT_S)
    return names


def outside_exec_argv(lab_name: str, command: Sequence[str]) -> list[str]:
    """``docker exec`` of a command in the lab's outside client."""
    return ["docker", "exec", outside_name(lab_name), *command]
