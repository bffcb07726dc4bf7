"""What this machine can run: a Docker engine for Kind, Linux and root for the sandbox.

Each answer comes with the reason in words, so backend choice and doctor lines can say why.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def docker_engine_answers(timeout: float = 5.0) -> tuple[bool, str]:
    """Whether a Docker engine answers ``docker info``; the reason in words either way."""
    if not shutil.which("docker"):
        return False, "no `docker` command on PATH"
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"`docker info` did not answer within {timeout:.0f} s"
    if proc.returncode != 0 or not proc.stdout.strip():
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return False, f"the docker client is installed but no engine answers ({first})"
    return True, f"Docker engine {proc.stdout.strip()} answers"


def sandbox_possible() -> tuple[bool, str]:
    """Whether this machine can run the sandbox backend (Linux, root)."""
    if platform.system() != "Linux":
        return False, f"the sandbox needs Linux network namespaces and this is {platform.system()}"
    if os.geteuid() != 0:
        return False, "the sandbox creates network namespaces, which needs root"
    return True, "Linux and running as root"


def sandbox_needs_root() -> bool:
    """Whether this is Linux but not root: sandbox labs may be here, usable only with sudo."""
    return platform.system() == "Linux" and os.geteuid() != 0
