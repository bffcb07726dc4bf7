"""`labkit kubectl [--name LAB] ARGS...`: find the lab, then run the real kubectl (Kind) or
serve the command from the lab's objects (sandbox)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from labkit.errors import LabError
from labkit.kubectl.kind import kind_argv
from labkit.kubectl.pods import Terminal
from labkit.kubectl.podverbs import serve_pod_verb
from labkit.kubectl.serve import serve
from labkit.lab import backend_module, find_backends, hidden_lab_error


def run(lab_name: str, argv: Sequence[str]) -> int:
    """Run ``kubectl ARGS`` against lab ``lab_name``; returns kubectl's exit code."""
    holders = find_backends(lab_name)
    if not holders:
        again = shlex.join(["labkit", "kubectl", "--name", lab_name, *argv])
        raise hidden_lab_error(lab_name, again) or LabError(
            f"No running lab named {lab_name!r}.",
            f"Start one first: `labkit up --name {lab_name}`, or name yours with --name.",
        )
    if holders[0] == "kind":
        from labkit.kind import tools
        from labkit.kind.plan import default_paths

        command = kind_argv(
            lab_name, argv, tools.find("kubectl"), default_paths(lab_name).user_kubeconfig
        )
        return subprocess.run(command, check=False).returncode
    lab = backend_module(holders[0]).attach(lab_name)
    if lab is None:
        raise LabError(
            f"The {holders[0]} lab {lab_name!r} exists but does not answer.",
            f"Bring it back with `labkit up --name {lab_name}`.",
        )
    code = serve_pod_verb(lab, argv, Terminal.of_process())
    if code is not None:
        return code
    outcome = serve(lab, argv, datetime.now(timezone.utc), sys.stdin.read)
    sys.stdout.write(outcome.stdout)
    sys.stdout.flush()
    sys.stderr.write(outcome.stderr)
    return outcome.code
