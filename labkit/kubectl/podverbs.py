"""The pod verbs the sandbox serves on a terminal (``exec``, ``run``, ``logs``): found in the
command line, run with the process's stdin, stdout and stderr, mistakes printed in kubectl's
words with its exit code."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.kubectl.args import verb_index
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.podexec import exec_pod
from labkit.kubectl.podlogs import pod_logs
from labkit.kubectl.podrun import run_pod
from labkit.kubectl.pods import Terminal
from labkit.lab import Lab

Verb = Callable[[Lab, Sequence[str], Terminal], int]
HANDLERS: dict[str, Verb] = {"exec": exec_pod, "run": run_pod, "logs": pod_logs}


def serve_pod_verb(lab: Lab, argv: Sequence[str], term: Terminal) -> int | None:
    """Run a pod verb's command line (``argv`` without ``kubectl``) and return its exit code;
    None when ``argv`` runs another verb."""
    at = verb_index(argv)
    if at is None or argv[at] not in HANDLERS:
        return None
    try:
        return HANDLERS[argv[at]](lab, [*argv[:at], *argv[at + 1 :]], term)
    except KubectlError as exc:
        text = exc.text.rstrip("\n") + "\n"
        (term.out if exc.code == 0 else term.err)(text)
        return exc.code
