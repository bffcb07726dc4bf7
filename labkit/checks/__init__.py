"""Graders: each check reads the cluster once into a :class:`~labkit.checks.view.ClusterView`
(through the ``labkit.lab.Lab`` seam), judges with ``labkit.model`` in ordered stages, and returns
a :class:`Result` (verdict, points, steps with evidence, hint).

``CHECKS`` maps the names that scenario.yaml files and ``labkit check NAME`` use to the functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from labkit.checks.diagnose import diagnose
from labkit.checks.dns import dns_resolves
from labkit.checks.http_paths import http_paths
from labkit.checks.ingress import ingress_routes
from labkit.checks.matrix import policy_matrix
from labkit.checks.outside_reach import external_to_service
from labkit.checks.pod_reach import pod_to_pod
from labkit.checks.podnet import cni_identity, pod_netns
from labkit.checks.proxy_rules import kube_proxy_rules
from labkit.checks.result import Result, Step
from labkit.checks.service_reach import pod_to_service
from labkit.checks.services import service_health
from labkit.errors import LabError
from labkit.inputs import check_timeout
from labkit.lab import Lab

CHECKS: dict[str, Callable[..., Result]] = {
    "pod_to_pod": pod_to_pod,
    "pod_to_service": pod_to_service,
    "external_to_service": external_to_service,
    "dns_resolves": dns_resolves,
    "service_health": service_health,
    "kube_proxy_rules": kube_proxy_rules,
    "ingress_routes": ingress_routes,
    "policy_matrix": policy_matrix,
    "pod_netns": pod_netns,
    "cni_identity": cni_identity,
    "diagnose": diagnose,
    "http_paths": http_paths,
}


def get_check(name: str) -> Callable[..., Result]:
    """The check registered under ``name``, or a LabError listing the names there are."""
    try:
        return CHECKS[name]
    except KeyError:
        raise LabError(
            f"There is no check named {name!r}.", f"Use one of: {', '.join(sorted(CHECKS))}."
        ) from None


def run_check(lab: Lab, name: str, args: Mapping[str, Any] | None = None) -> Result:
    """Run a registered check with keyword arguments (as a scenario.yaml lists them); arguments
    the check does not take are a LabError naming the ones it does."""
    check = get_check(name)
    kwargs = dict(args or {})
    check_arguments(name, kwargs)
    return check(lab, **kwargs)


def check_arguments(name: str, args: Mapping[str, Any]) -> None:
    """Refuse keyword arguments check ``name`` does not take, a required one left out, or an
    unusable timeout."""
    parameters = list(inspect.signature(get_check(name)).parameters.values())[1:]
    accepted = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]
    required = [p.name for p in parameters if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    unknown = [str(key) for key in args if key not in accepted]
    missing = [key for key in required if key not in args]
    if "timeout" in args:
        check_timeout(args["timeout"])
    if unknown or missing:
        wrong = (
            f"does not take {', '.join(map(repr, unknown))}"
            if unknown
            else f"needs {', '.join(map(repr, missing))}"
        )
        raise LabError(
            f"Check {name} {wrong}.",
            f"Give it only these arguments: {', '.join(accepted)} "
            f"(required: {', '.join(required) or 'none'}).",
        )


__all__ = [
    "CHECKS",
    "Result",
    "Step",
    "check_arguments",
    "get_check",
    "run_check",
    *sorted(CHECKS),
]
