"""The command-line tools the Kind backend drives (kind, kubectl, helm, docker): find them on PATH
and run them, turning every failure into a LabError that carries the command's output."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from labkit.errors import LabError
from labkit.kind import pins

INSTALL_HINTS = {
    "kind": (
        f"Install kind {pins.KIND_VERSION}: download the binary for your system from "
        f"https://github.com/kubernetes-sigs/kind/releases/tag/{pins.KIND_VERSION} "
        "into a folder on "
        f"PATH (or `go install sigs.k8s.io/kind@{pins.KIND_VERSION}`)."
    ),
    "kubectl": (
        f"Install kubectl 1.{pins.KUBERNETES_MINOR} (https://kubernetes.io/docs/tasks/tools/) "
        "and make sure `kubectl version --client` works."
    ),
    "helm": (
        "Install Helm 3 (https://helm.sh/docs/intro/install/); the Cilium lab installs its chart "
        "with it."
    ),
    "docker": (
        "Install Docker (Docker Desktop, or Docker Engine on Linux) and make sure `docker info` "
        "works for your user."
    ),
}
OUTPUT_TAIL_LINES = 40


def find(tool: str) -> str:
    """Absolute path of ``tool`` on PATH, or a LabError saying how to install it."""
    path = shutil.which(tool)
    if not path:
        raise LabError(
            f"`{tool}` is not on PATH, and the Kind backend needs it.",
            INSTALL_HINTS.get(tool, f"Install {tool} and put it on PATH."),
        )
    return path


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last ``lines`` lines of a command's output (where the error usually is)."""
    parts = text.strip().splitlines()
    if len(parts) <= lines:
        return "\n".join(parts)
    return "\n".join([f"... ({len(parts) - lines} earlier lines omitted)", *parts[-lines:]])


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    fix: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool (argv[0] looked up on PATH) capturing its output; failures raise LabError."""
    resolved = [find(argv[0]), *argv[1:]]
    shown = shlex.join(argv)
    try:
        proc = subprocess.run(
            resolved, input=input, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        raise LabError(
            f"`{shown}` did not finish within {timeout:.0f} s.",
            fix
            or "Check that the Docker engine and the cluster respond (`labkit doctor`), "
            "then retry.",
            output=tail(out),
        ) from None
    if check and proc.returncode != 0:
        raise LabError(
            f"`{shown}` failed (exit {proc.returncode}).",
            fix or "Read the command's output below; `labkit doctor` checks the usual causes.",
            output=tail(proc.stdout + "\n" + proc.stderr),
        )
    return proc
