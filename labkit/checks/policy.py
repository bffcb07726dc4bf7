"""Asking the NetworkPolicy model on behalf of a check: what the policies say about one flow (with
pods shown by their display names), whether a probe got past the policies, and why a lab whose
CNI enforces no policy cannot grade a block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from labkit.checks.targets import PodNames
from labkit.checks.view import ClusterView
from labkit.commands import LAB_DOWN, LAB_UP, Shell
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.netpol.verdicts import Verdict, verdict
from labkit.values import Probe


def model_verdict(
    view: ClusterView,
    src_pod: Mapping[str, Any] | None,
    dst_pod: Mapping[str, Any],
    port: int | str,
    protocol: str = "TCP",
) -> Verdict | None:
    """What the policies say about one flow (None when the model cannot judge it, e.g. an unknown
    named port); reasons show pods by their display names."""
    if src_pod is None:
        return None
    try:
        found = verdict(
            src_pod, dst_pod, port, protocol, namespaces=view.namespaces, policies=view.policies
        )
    except (LabError, ValueError):
        return None
    return Verdict(
        found.allowed, humanize(found.reason, view.names), found.side, found.egress, found.ingress
    )


def humanize(text: str, names: PodNames) -> str:
    """Replace ``ns/pod-name`` in a model reason with the pod's display name (no hashes)."""
    return re.sub(
        r"\b[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9.-]*[a-z0-9]\b", lambda m: names(m.group(0)), text
    )


def not_enforced_note(lab: Lab) -> str:
    """Why policy verdicts cannot be graded on this lab, and what to do instead."""
    notes = " ".join(n for n in lab.capabilities.notes if "polic" in n.lower())
    shell = Shell.of(lab)
    again = f"{shell(LAB_DOWN)} then {shell(LAB_UP, cni='calico')}"
    return (
        f"NetworkPolicy is not enforced on this lab ({lab.backend}, CNI {lab.cni}): the CNI only "
        "connects pods and has no policy engine, so every pod reaches every other whatever the "
        f"policies say. Cannot grade a block here. To see policies enforced, build the lab again "
        f"with Calico: {again}." + (f" ({notes})" if notes else "")
    )


def passed_policy(probe: Probe) -> bool:
    """Whether a probe got through the policies: connected, or refused (the packet reached the pod
    and nothing listened there; a policy drops instead, which times out)."""
    return passed_outcome(probe.outcome)


def passed_outcome(outcome: str) -> bool:
    """Whether a probe outcome got through the policies (see ``passed_policy``)."""
    return outcome in ("connected", "refused")
