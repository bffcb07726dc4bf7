"""The one module that drives the `kind` CLI: every `kind ...` command line labkit runs or shows is
built here (create, delete, list clusters, print a kubeconfig), with kind taken from PATH (never
downloaded) and its failures turned into LabErrors that carry what Docker shows."""

from __future__ import annotations

from pathlib import Path

from labkit.errors import LabError
from labkit.kind import tools

_NO_CLUSTERS = "No kind clusters found."
CREATE_TIMEOUT_S = 600.0
"""`kind create cluster` pulls the node image on first use; kubeadm's own waits end sooner."""
DELETE_TIMEOUT_S = 180.0


# --------------------------------------------------------------------------- command lines


def create_argv(name: str, *, image: str, config_path: str, kubeconfig: str) -> tuple[str, ...]:
    """`kind create cluster` for lab ``name`` from its rendered config and the pinned image;
    kind merges the context into ``kubeconfig``."""
    return (
        "kind",
        "create",
        "cluster",
        f"--name={name}",
        f"--kubeconfig={kubeconfig}",
        f"--image={image}",
        "--config",
        config_path,
    )


def delete_argv(name: str, *, kubeconfig: str) -> tuple[str, ...]:
    """`kind delete cluster`, which also removes the lab's context from ``kubeconfig``."""
    return ("kind", "delete", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}")


def get_clusters_argv() -> tuple[str, ...]:
    """`kind get clusters`: one name a line."""
    return ("kind", "get", "clusters")


def version_argv() -> tuple[str, ...]:
    """`kind version` (e.g. "kind v0.32.0 go1.25.5 linux/amd64")."""
    return ("kind", "version")


def kubeconfig_argv(name: str) -> tuple[str, ...]:
    """`kind get kubeconfig` of lab ``name`` (printed, not merged anywhere)."""
    return ("kind", "get", "kubeconfig", "--name", name)


def load_archive_argv(name: str, archive: str) -> tuple[str, ...]:
    """`kind load image-archive` of one saved image into every node of lab ``name``."""
    return ("kind", "load", "image-archive", "--name", name, archive)


# --------------------------------------------------------------------------- running them


def parse_cluster_names(output: str) -> list[str]:
    """Names from `kind get clusters` (which prints a sentence instead when there are none)."""
    return [
        line.strip()
        for line in output.splitlines()
        if line.strip() and line.strip() != _NO_CLUSTERS
    ]


def cluster_names() -> list[str]:
    """Kind clusters that exist; empty when kind is not installed or no Docker engine answers."""
    try:
        proc = tools.run(get_clusters_argv(), check=False, timeout=60)
    except LabError:
        return []
    return parse_cluster_names(proc.stdout) if proc.returncode == 0 else []


def diagnose(name: str) -> str:
    """What Docker shows about a lab's node containers, to attach to a creation failure."""
    lines: list[str] = []
    try:
        ps = tools.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label=io.x-k8s.kind.cluster={name}",
                "--format",
                "{{.Names}}\t{{.Status}}",
            ],
            check=False,
            timeout=30,
        )
        lines.append("docker ps -a (this lab's nodes):\n" + (ps.stdout.strip() or "(none left)"))
        logs = tools.run(
            ["docker", "logs", "--tail", "30", f"{name}-control-plane"], check=False, timeout=30
        )
        if logs.returncode == 0:
            lines.append(
                f"docker logs --tail 30 {name}-control-plane:\n"
                + (logs.stdout + logs.stderr).strip()
            )
    except LabError as exc:
        lines.append(exc.what)
    return "\n".join(lines)


def create(name: str, *, config_path: Path, kubeconfig: Path, image: str) -> None:
    """`kind create cluster` (bounded by CREATE_TIMEOUT_S); a failure carries kind's last lines
    and the node containers' state."""
    Path(kubeconfig).parent.mkdir(parents=True, exist_ok=True)
    argv = create_argv(name, image=image, config_path=str(config_path), kubeconfig=str(kubeconfig))
    proc = tools.run(argv, check=False, timeout=CREATE_TIMEOUT_S)
    if proc.returncode != 0:
        raise LabError(
            f"kind could not create cluster {name!r} (exit {proc.returncode}).",
            "Run `labkit doctor` (Docker memory, inotify limits, cgroups), then "
            f"`labkit down --name {name}` and try again.",
            output=tools.tail(proc.stdout + "\n" + proc.stderr) + "\n\n" + diagnose(name),
        )


def delete(name: str, *, kubeconfig: Path) -> None:
    """`kind delete cluster` (also removes its context from ``kubeconfig``)."""
    proc = tools.run(
        delete_argv(name, kubeconfig=str(kubeconfig)), check=False, timeout=DELETE_TIMEOUT_S
    )
    if proc.returncode != 0:
        raise LabError(
            f"kind could not delete cluster {name!r} (exit {proc.returncode}).",
            f"Check that the Docker engine answers (`docker info`), then run "
            f"`kind delete cluster --name {name}`.",
            output=tools.tail(proc.stdout + "\n" + proc.stderr) + "\n\n" + diagnose(name),
        )


def kubeconfig_text(name: str) -> str:
    """The cluster's kubeconfig as printed by `kind get kubeconfig --name`."""
    return tools.run(
        kubeconfig_argv(name),
        timeout=60,
        fix=f"Check that cluster {name!r} exists (`kind get clusters`).",
    ).stdout
