"""Create, delete and list Kind clusters through pytest-kind's KindCluster, with kind and kubectl
taken from PATH (never downloaded) and the lab's files kept out of the current folder."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from pytest_kind import KindCluster

from labkit.errors import LabError
from labkit.kind import tools

_NO_CLUSTERS = "No kind clusters found."


class LabKindCluster(KindCluster):  # pytest-kind ships no type hints
    """KindCluster pointed at labkit's paths and the pinned node image."""

    def __init__(
        self,
        name: str,
        *,
        kubeconfig: Path,
        image: str,
        state_dir: Path,
        kind_path: Path,
        kubectl_path: Path,
    ) -> None:
        # KindCluster.__init__ would create ./.pytest-kind/<name> in the current folder (for a
        # notebook, the lessons folder) and default to downloading kind v0.17 and kubectl 1.25.
        # Set the attributes it sets, with labkit's folder and the tools found on PATH instead.
        self.name = name
        self.image = image
        self.path = state_dir
        self.kubeconfig_path = kubeconfig
        self.kind_path = kind_path
        self.kubectl_path = kubectl_path
        self.platform = platform.system().lower()

    def ensure_kind(self) -> None:
        """Find kind on PATH (pytest-kind would download an old release)."""
        if not self.kind_path.exists():
            tools.find("kind")  # raises with the install hint

    def ensure_kubectl(self) -> None:
        """Find kubectl on PATH (pytest-kind would download an old release)."""
        if not self.kubectl_path.exists():
            tools.find("kubectl")


def open_cluster(name: str, *, kubeconfig: Path, image: str, state_dir: Path) -> LabKindCluster:
    """A KindCluster handle for lab ``name`` (kind and kubectl must be on PATH)."""
    return LabKindCluster(
        name,
        kubeconfig=Path(kubeconfig),
        image=image,
        state_dir=Path(state_dir),
        kind_path=Path(tools.find("kind")),
        kubectl_path=Path(tools.find("kubectl")),
    )


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
        proc = tools.run(["kind", "get", "clusters"], check=False, timeout=60)
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


def create(name: str, *, config_path: Path, kubeconfig: Path, image: str, state_dir: Path) -> None:
    """``kind create cluster`` via KindCluster; kind prints its own progress while it works."""
    Path(kubeconfig).parent.mkdir(parents=True, exist_ok=True)
    cluster = open_cluster(name, kubeconfig=kubeconfig, image=image, state_dir=state_dir)
    try:
        cluster.create(config_file=config_path)
    except subprocess.CalledProcessError as exc:
        raise LabError(
            f"kind could not create cluster {name!r} (exit {exc.returncode}); its messages are "
            "printed above.",
            "Run `labkit doctor` (Docker memory, inotify limits, cgroups), then "
            f"`labkit down --name {name}` and try again.",
            output=diagnose(name),
        ) from None
    except Exception as exc:
        if name not in cluster_names():
            raise LabError(
                f"Creating Kind cluster {name!r} failed: {exc}",
                "Run `labkit doctor`, then try again.",
                output=diagnose(name),
            ) from None


def delete(name: str, *, kubeconfig: Path, state_dir: Path) -> None:
    """``kind delete cluster`` via KindCluster (also removes its context from ``kubeconfig``)."""
    cluster = open_cluster(name, kubeconfig=kubeconfig, image="", state_dir=state_dir)
    try:
        cluster.delete()
    except subprocess.CalledProcessError as exc:
        raise LabError(
            f"kind could not delete cluster {name!r} (exit {exc.returncode}).",
            f"Check that the Docker engine answers (`docker info`), then run "
            f"`kind delete cluster --name {name}`.",
            output=diagnose(name),
        ) from None


def kubeconfig_text(name: str) -> str:
    """The cluster's kubeconfig as printed by `kind get kubeconfig --name`."""
    return tools.run(
        ["kind", "get", "kubeconfig", "--name", name],
        timeout=60,
        fix=f"Check that cluster {name!r} exists (`kind get clusters`).",
    ).stdout
