"""Build-by-hand exercises: the learner makes a network namespace on a node (``lab.netns_add``),
wires it as a CNI plugin would (a veth, an address, routes), and the lab grades it by probing
from it (``lab.probe("node:name", ...)``). The ``build:`` block is parsed and validated here::

    build:
      namespace: hand                                 # what the learner passes to netns_add
      node: {namespace: default, selector: app=web}   # the node that pod runs on; or a node name
      reach:                                          # one share of the points each
        - case: a pod on the same node                # its key, as predict cases have
          dst: {namespace: default, selector: app=web}
          port: 80
          nodes: same                                 # any (default) | same | different
        - case: the Service's ClusterIP
          service: {namespace: default, name: web}    # instead of dst
          port: 80
          protocol: TCP                               # optional

A ``node:`` string without '/' names a node; any other value picks a pod (a target, as in
``labkit.checks.targets``), whose node is the one to build on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labkit.checks.reach import check_port, check_protocol
from labkit.checks.result import FAILURE_CLASSES, Result, Step, make_result
from labkit.checks.targets import Target, choose_pods, parse_target
from labkit.checks.view import ClusterView
from labkit.course.exercise_questions import NODES
from labkit.errors import LabError
from labkit.inputs import check_hand_netns, dns1123_label, dns1123_subdomain
from labkit.lab import Lab
from labkit.model.objects import pod_ip, pod_node, pod_phase
from labkit.values import Probe

Obj = dict[str, Any]

_BUILD_KEYS = {"namespace", "node", "reach"}
_REACH_KEYS = {"case", "dst", "service", "port", "protocol", "nodes"}


@dataclass(frozen=True)
class Reach:
    """One destination the hand-made namespace must reach: pods a target picks (on the same or
    another node than the build node, as asked), or a Service's ClusterIP ``(namespace, name)``."""

    key: str
    port: int
    protocol: str = "TCP"
    dst: Target | None = None
    nodes: str = "any"
    service: tuple[str, str] | None = None


@dataclass(frozen=True)
class Build:
    """What the learner builds: namespace ``namespace`` on ``node`` (a node name) or on the node
    of the pod ``pod`` picks, and what it must reach."""

    namespace: str
    reach: tuple[Reach, ...]
    node: str | None = None
    pod: Target | None = None


# --------------------------------------------------------------------------- parsing (pure)


def parse_build(raw: Any, where: str) -> Build:
    """The ``build:`` block of an exercise, or a LabError naming what is wrong."""
    if not isinstance(raw, dict) or set(raw) != _BUILD_KEYS:
        raise LabError(
            f"{where}: build must have exactly namespace, node and reach.",
            "Write `build: {namespace: hand, node: {namespace: default, selector: app=web}, "
            "reach: [...]}`.",
        )
    try:
        namespace = check_hand_netns(raw["namespace"])
    except LabError as exc:
        raise LabError(f"{where}: {exc.what}", exc.fix) from None
    node, pod = _node(raw["node"], where)
    reach = raw["reach"]
    if not isinstance(reach, list) or not reach or not all(isinstance(r, dict) for r in reach):
        raise LabError(
            f"{where}: reach must be a list of entries.",
            "List at least one `- case: NAME` with dst (or service) and port.",
        )
    cases = tuple(_reach(item, where) for item in reach)
    keys = [c.key for c in cases]
    doubled = sorted({k for k in keys if keys.count(k) > 1})
    if doubled:
        raise LabError(
            f"{where}: case {doubled[0]!r} appears twice.", "Give every case its own text."
        )
    return Build(namespace, cases, node, pod)


def _node(raw: Any, where: str) -> tuple[str | None, Target | None]:
    if isinstance(raw, str) and "/" not in raw:
        if dns1123_subdomain(raw) is not None:
            raise LabError(
                f"{where}: node {raw!r} is not a node name.",
                "Name a node (e.g. netlab-worker), or pick a pod: {namespace: ..., selector: ...}.",
            )
        return raw, None
    try:
        parse_target(raw)
    except LabError as exc:
        raise LabError(f"{where}: node: {exc.what}", exc.fix) from None
    return None, raw if isinstance(raw, str) else dict(raw)


def _reach(item: Mapping[str, Any], where: str) -> Reach:
    unknown = set(item) - _REACH_KEYS
    missing = {"case", "port"} - set(item)
    if unknown or missing or ("dst" in item) == ("service" in item):
        wrong = (
            f"has unknown keys {sorted(unknown)}"
            if unknown
            else f"lacks {sorted(missing)}"
            if missing
            else "needs either dst or service"
        )
        raise LabError(
            f"{where}: a reach case {wrong}.",
            f"Use case, port, and dst or service; only: {', '.join(sorted(_REACH_KEYS))}.",
        )
    nodes = str(item.get("nodes", "any"))
    if nodes not in NODES or ("service" in item and "nodes" in item):
        raise LabError(
            f"{where}: nodes {nodes!r} does not fit case {item['case']!r}.",
            f"Give a dst case nodes: {'|'.join(NODES)}; a service case none.",
        )
    try:
        port, protocol = check_port(item["port"]), check_protocol(item.get("protocol", "TCP"))
        if "dst" in item:
            parse_target(item["dst"])
            dst = item["dst"] if isinstance(item["dst"], str) else dict(item["dst"])
            return Reach(str(item["case"]), port, protocol, dst=dst, nodes=nodes)
        return Reach(str(item["case"]), port, protocol, service=_service(item["service"]))
    except LabError as exc:
        raise LabError(f"{where}: {exc.what}", exc.fix) from None


def _service(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict) or "name" not in raw or set(raw) - {"namespace", "name"}:
        raise LabError(
            f"service {raw!r} is not a Service.", "Write `service: {namespace: shop, name: web}`."
        )
    namespace, name = str(raw.get("namespace", "default")), str(raw["name"])
    if dns1123_label(namespace) is not None or dns1123_label(name) is not None:
        raise LabError(
            f"service {namespace}/{name} is not a Service name.",
            "Give the namespace and name of a Service the scenario deploys.",
        )
    return namespace, name


# --------------------------------------------------------------------------- grading (on the lab)


def grade_build(lab: Lab, exercise_id: str, build: Build) -> Result:
    """Probe every case from the hand-made namespace: one point per case that connects. Without
    the namespace nothing is probed, and the step says how to create it."""
    view = ClusterView(lab)
    node = build.node or _pod_node(view, build.pod)
    subject = f"exercise {exercise_id}"
    if node is None:
        steps = [Step("the node to build on", f"no running pod {_shown(build.pod)}", False)]
        return make_result("build", subject, steps, hint="Run `ex.setup()` first.")
    here = f"namespace {build.namespace!r} on {node}"
    if build.namespace not in lab.netns_list(node):
        create = f"lab.netns_add({node!r}, {build.namespace!r})"
        steps = [Step(here, f"not there yet: create it with {create}", False)]
        steps += [
            Step(c.key, "not probed: the namespace does not exist", False) for c in build.reach
        ]
        return make_result(
            "build",
            subject,
            steps,
            hint=f"Create the namespace with {create}, wire it, then check again.",
        )
    targets = [_destination(view, node, case) for case in build.reach]
    src = f"{node}:{build.namespace}"
    asked = [
        (src, t[0], c.port, c.protocol) for c, t in zip(build.reach, targets, strict=True) if t
    ]
    probes = iter(lab.probe_many(asked))
    steps = [Step(here, "there", None)]
    outcomes = []
    for case, target in zip(build.reach, targets, strict=True):
        if target is None:
            steps.append(Step(case.key, f"the lab has no {_wanted(case)}", False))
            continue
        probe = next(probes)
        outcomes.append(probe.outcome)
        steps.append(_case_step(case, target[1], probe))
    return _graded(subject, steps, outcomes, node, build.namespace)


def _graded(subject: str, steps: list[Step], outcomes: Sequence[str], node: str, ns: str) -> Result:
    cases = [s for s in steps if s.ok is not None]
    right = sum(1 for s in cases if s.ok)
    verdict = "pass" if right == len(cases) else "fail" if right == 0 else "partial"
    failed = next((o for o in outcomes if o != "connected"), None)
    hint = (
        ""
        if verdict == "pass"
        else f"Look inside with lab.netns_exec({node!r}, {ns!r}, 'ip addr; ip route') and on the "
        f"node with lab.node_exec({node!r}, 'ip route'): 'unreachable' means no route (or a link "
        "is down), 'timeout' that packets leave but no answer finds its way back."
    )
    failure = failed if failed in FAILURE_CLASSES else None
    return make_result("build", subject, steps, verdict=verdict, hint=hint, failure=failure)


def _case_step(case: Reach, where: str, probe: Probe) -> Step:
    said = "reached" if probe.ok else "not reached"
    evidence = (
        f"{probe.src} -> {where} port {probe.port}/{probe.protocol}: {probe.outcome}"
        + (f" ({probe.detail})" if probe.detail else ""),
    )
    return Step(case.key, f"{said} ({probe.outcome})", probe.ok, evidence)


def _destination(view: ClusterView, node: str, case: Reach) -> tuple[str, str] | None:
    """The address to probe for a case and how to show it, or None when the lab has none."""
    if case.service is not None:
        service = view.service(case.service[1], case.service[0])
        ip = ((service or {}).get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            return None
        return ip, f"Service {case.service[0]}/{case.service[1]} ({ip})"
    for pod in _running(view, case.dst):
        same = pod_node(pod) == node
        if case.nodes == "any" or same == (case.nodes == "same"):
            return str(pod_ip(pod)), f"{view.names(pod)} ({pod_ip(pod)} on {pod_node(pod)})"
    return None


def _pod_node(view: ClusterView, target: Target | None) -> str | None:
    pods = _running(view, target) if target is not None else []
    return pod_node(pods[0]) if pods else None


def _running(view: ClusterView, target: Target | None) -> list[Obj]:
    if target is None:
        return []
    spec = replace(parse_target(target), all=True)
    return [p for p in choose_pods(spec, view.pods) if pod_phase(p) == "Running" and pod_ip(p)]


def _wanted(case: Reach) -> str:
    if case.service is not None:
        return f"Service {case.service[0]}/{case.service[1]} with a ClusterIP"
    where = "" if case.nodes == "any" else f" on the {case.nodes} node"
    return f"running pod {_shown(case.dst)}{where}"


def _shown(target: Target | None) -> str:
    return parse_target(target).describe() if target is not None else "?"
