"""`labkit kubectl` on Kind: the real kubectl, aimed at the lab's own context, arguments
passed through unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def kind_argv(lab_name: str, argv: Sequence[str], kubectl: str, kubeconfig: Path) -> list[str]:
    """The kubectl command line for lab ``lab_name``: its kubeconfig and ``kind-<lab>`` context
    first, then the learner's arguments as typed."""
    return [kubectl, "--kubeconfig", str(kubeconfig), "--context", f"kind-{lab_name}", *argv]
