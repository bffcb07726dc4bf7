"""Pod specs as the API server stores them: the defaults it fills in and what admission adds."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
_DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
)


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (the API server's
    default)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def default_pod_spec(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A pod spec with the fields the API server fills in when they are left out."""
    out = copy.deepcopy(dict(spec or {}))
    out.setdefault("restartPolicy", "Always")
    out.setdefault("dnsPolicy", "ClusterFirst")
    out.setdefault("schedulerName", "default-scheduler")
    out.setdefault("terminationGracePeriodSeconds", 30)
    out.setdefault("securityContext", {})
    for field in ("containers", "initContainers"):
        for container in out.get(field) or []:
            container.setdefault("imagePullPolicy", image_pull_policy(container.get("image", "")))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    return out


def _covers(toleration: Mapping[str, Any], key: str, effect: str) -> bool:
    return toleration.get("key") in (key, None, "") and toleration.get("effect") in (
        effect,
        None,
        "",
    )


def admit_pod_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What admission adds when a pod is created: service account, priority, 300 s eviction
    tolerations."""
    out = copy.deepcopy(dict(spec))
    out.setdefault("serviceAccountName", "default")
    out.setdefault("priority", _PRIORITIES.get(out.get("priorityClassName", ""), 0))
    tolerations = out.setdefault("tolerations", [])
    for key, effect in _DEFAULT_TOLERATIONS:
        if not any(_covers(t, key, effect) for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": effect, "tolerationSeconds": 300}
            )
    return out


def pod_spec_for(template: Mapping[str, Any]) -> dict[str, Any]:
    """The spec a pod created from this template gets (defaults, then admission)."""
    return admit_pod_spec(default_pod_spec(template.get("spec")))
