"""NetworkPolicy grading: the observed reachability table against the expected one, each differing
cell explained with the policy model's reason; and the helpers other checks use to ask the model.

On a lab whose CNI does not enforce policies (Flannel) the check says so and returns a
"cannot grade here" partial instead of a verdict it cannot back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.checks.result import Result, Step, classify, make_result, poll
from labkit.checks.targets import (
    PodNames,
    Target,
    find_pods,
    list_pods,
    workload_of,
)
from labkit.errors import LabError
from labkit.lab import Lab, Probe
from labkit.model import netpol
from labkit.model.objects import (
    meta,
    pod_ip,
    pod_phase,
    ref_of,
)

# --------------------------------------------------------------------------- asking the model


def cluster_policies(lab: Lab) -> tuple[list[dict], list[dict]]:
    """Every Namespace and NetworkPolicy of the lab (what the model needs)."""
    return lab.get("namespaces", namespace=None), lab.get("networkpolicies", namespace=None)


def model_verdict(
    lab: Lab,
    src_pod: Mapping[str, Any] | None,
    dst_pod: Mapping[str, Any],
    port: int | str,
    protocol: str = "TCP",
) -> netpol.Verdict | None:
    """What the policies say about one flow (None when the model cannot judge it, e.g. an unknown
    named port); reasons show pods by their display names."""
    if src_pod is None:
        return None
    namespaces, policies = cluster_policies(lab)
    try:
        found = netpol.verdict(
            src_pod, dst_pod, port, protocol, namespaces=namespaces, policies=policies
        )
    except (LabError, ValueError):
        return None
    names = PodNames(list_pods(lab, None))
    return netpol.Verdict(
        found.allowed, humanize(found.reason, names), found.side, found.egress, found.ingress
    )


def humanize(text: str, names: PodNames) -> str:
    """Replace ``ns/pod-name`` in a model reason with the pod's display name (no hashes)."""
    return re.sub(
        r"\b[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9.-]*[a-z0-9]\b", lambda m: names(m.group(0)), text
    )


def not_enforced_note(lab: Lab) -> str:
    """Why policy verdicts cannot be graded on this lab, and what to do instead."""
    notes = " ".join(n for n in lab.capabilities.notes if "polic" in n.lower())
    return (
        f"NetworkPolicy is not enforced on this lab ({lab.backend}, CNI {lab.cni}): the CNI only "
        "connects pods and has no policy engine, so every pod reaches every other whatever the "
        "policies say. Cannot grade a block here. Bring a lab up with --cni calico (or Cilium on "
        "Kind) to see policies enforced." + (f" ({notes})" if notes else "")
    )


# --------------------------------------------------------------------------- the matrix


def _expected_from(expected: Mapping[Any, Any] | None) -> dict[tuple[str, str, str | None], bool]:
    """Read expected cells: keys ``(src, dst)`` / ``(src, dst, port)`` or ``"src -> dst[:port]"``,
    values True/False or ``allowed``/``connected``/``blocked``."""
    out: dict[tuple[str, str, str | None], bool] = {}
    for key, value in (expected or {}).items():
        if isinstance(key, str):
            if "->" not in key:
                raise LabError(
                    f"Expected cell {key!r} is not 'src -> dst' or 'src -> dst:port'.",
                    "Write keys like 'default/a -> default/b:8080' (or a (src, dst, port) tuple).",
                )
            left, _, right = key.partition("->")
            dst, _, port = right.strip().partition(":")
            parts: tuple = (left.strip(), dst.strip(), port.strip() or None)
        elif isinstance(key, tuple) and len(key) in (2, 3):
            parts = (str(key[0]), str(key[1]), str(key[2]) if len(key) == 3 else None)
        else:
            raise LabError(
                f"Expected cell {key!r} cannot be read.", "Use (src, dst) or (src, dst, port) keys."
            )
        if isinstance(value, bool):
            allowed = value
        elif str(value).lower() in ("allowed", "allow", "connected", "."):
            allowed = True
        elif str(value).lower() in ("blocked", "block", "denied", "deny", "x"):
            allowed = False
        else:
            raise LabError(
                f"Expected value {value!r} for {key!r} is neither allowed nor blocked.",
                "Use True/False, 'allowed' or 'blocked'.",
            )
        out[parts] = allowed
    return out


def _port_label(port: int | str | tuple) -> str:
    return netpol.port_query(port).label


def policy_matrix(
    lab: Lab,
    pods: Sequence[Target],
    ports: Sequence[int | str | tuple],
    expected: Mapping[Any, Any] | None = None,
    *,
    wait: float = 8.0,
    timeout: float = 1.0,
) -> Result:
    """Probe every ordered pair of ``pods`` on each port and compare with the expected table.

    ``expected`` names cells (``{"default/a -> default/b:80": "blocked"}``; pods by the targets
    given, by ``ns/name``, by display name ``ns/web#1`` or, for a workload with one pod in the
    matrix, by ``ns/<workload>``; without a port the cell covers every port). Cells it does not name
    take the policy model's answer (``truth_table`` of the cluster's policies), so ``None`` means
    "the data plane must enforce the policies as Kubernetes defines them".
    """
    if not pods:
        raise LabError(
            "policy_matrix needs at least one pod.",
            'Pass pods=["ns/a", "ns/b"] or selector targets.',
        )
    if not ports:
        raise LabError(
            "policy_matrix needs at least one port.", "Pass ports=[80] (or names like 'http')."
        )
    queries = [netpol.port_query(p) for p in ports]
    all_pods = list_pods(lab, None)
    names = PodNames(all_pods)
    steps: list[Step] = []
    chosen: list[dict] = []
    aliases: dict[str, str] = {}
    for target in pods:
        spec, found = find_pods(lab, target)
        if not found or pod_phase(found[0]) != "Running" or not pod_ip(found[0]):
            what = "not found" if not found else f"{pod_phase(found[0])}, no IP"
            steps.append(Step(f"find pod {spec.describe()}", what, False))
            continue
        for pod in found:
            if ref_of(pod) not in {ref_of(c) for c in chosen}:
                chosen.append(pod)
            aliases[spec.describe()] = ref_of(pod)
            aliases[names(pod)] = ref_of(pod)
            if isinstance(target, str):
                aliases[target] = ref_of(pod)
        steps.append(Step(f"find pod {spec.describe()}", ", ".join(names(p) for p in found), True))
    subject = f"{len(pods)} pods x {', '.join(q.label for q in queries)}"
    if any(s.ok is False for s in steps):
        return make_result(
            "policy_matrix",
            subject,
            steps,
            hint="Some pods of the matrix are missing or not Running; deploy the scenario "
            "and wait until `kubectl get pods -A` shows them Running.",
        )
    chosen.sort(key=lambda p: (meta(p).get("namespace"), meta(p).get("name")))
    by_workload: dict[str, list[str]] = {}
    for p in chosen:
        workload = workload_of(p)
        if workload:
            by_workload.setdefault(f"{meta(p).get('namespace')}/{workload}", []).append(ref_of(p))
    for short, refs_of in by_workload.items():
        if len(refs_of) == 1:
            aliases.setdefault(short, refs_of[0])
    refs = [ref_of(p) for p in chosen]
    by_ref = {ref_of(p): p for p in chosen}
    namespaces, policies = cluster_policies(lab)
    try:
        table = netpol.truth_table(chosen, queries, namespaces=namespaces, policies=policies)
        policy_set = netpol.PolicySet(namespaces, policies)
    except (LabError, netpol.PolicyError) as exc:
        steps.append(Step("read the NetworkPolicies", exc.what, False))
        return make_result("policy_matrix", subject, steps, hint=exc.fix)

    expected_cells = _expected_from(expected)
    expect: dict[tuple[str, str, str], bool | None] = {}
    source: dict[tuple[str, str, str], str] = {}
    for (s, d, q), allowed in table.cells.items():
        expect[(s, d, q)] = allowed
        source[(s, d, q)] = "model"
    for (s, d, port), allowed in expected_cells.items():
        s_ref, d_ref = aliases.get(s, s), aliases.get(d, d)
        if s_ref not in by_ref or d_ref not in by_ref:
            raise LabError(
                f"Expected cell {s} -> {d} names a pod that is not in the matrix.",
                f"Name pods as given in pods= ({', '.join(map(str, pods))}) or as ns/name.",
            )
        labels = [q.label for q in queries] if port is None else [_port_label(port)]
        for label in labels:
            if label not in table.ports:
                raise LabError(
                    f"Expected cell {s} -> {d}:{port} uses a port not in ports=.",
                    f"Use one of: {', '.join(table.ports)}.",
                )
            if expect.get((s_ref, d_ref, label)) is not None:
                expect[(s_ref, d_ref, label)] = allowed
                source[(s_ref, d_ref, label)] = "expected"

    cells = sorted(k for k, v in expect.items() if v is not None)
    resolved: dict[tuple[str, str, str], tuple[int, str]] = {}
    query_of = {q.label: q for q in queries}
    for s, d, label in cells:
        got = query_of[label].resolve(netpol.endpoint(by_ref[d]))
        if got is not None:
            resolved[(s, d, label)] = got
    pairs = [
        (s, pod_ip(by_ref[d]), resolved[(s, d, label)][0], resolved[(s, d, label)][1])
        for s, d, label in cells
    ]
    enforced = lab.capabilities.network_policy
    gradable = [c for c in cells if enforced or expect[c]]

    def observe() -> dict[tuple[str, str, str], Probe]:
        return dict(zip(cells, lab.probe_many(pairs, timeout=timeout)))

    def reached(p: Probe) -> bool:
        return passed_policy(p)

    def done(obs: dict[tuple[str, str, str], Probe]) -> bool:
        return all(reached(obs[c]) == expect[c] for c in gradable)

    has_blocks = any(expect[c] is False for c in cells)
    conv = poll(observe, done, wait=wait if (enforced or not has_blocks) else min(wait, 2.0))
    observed: dict[tuple[str, str, str], Probe] = conv.observation
    shown = {r: names(by_ref[r]) for r in refs}
    for q in queries:
        port_cells = [c for c in cells if c[2] == q.label]
        differing = [c for c in port_cells if reached(observed[c]) != expect[c] and c in gradable]
        evidence = _render(refs, shown, q.label, expect, observed)
        steps.append(
            Step(
                f"reachability on {q.label} (rows from, columns to)",
                f"{len(port_cells) - len(differing)} of {len(port_cells)} cells as expected "
                f"({conv.describe()})",
                None if not enforced and has_blocks else not differing,
                tuple(evidence),
            )
        )
    differing_all = [c for c in cells if reached(observed[c]) != expect[c]]
    graded_diffs = [c for c in differing_all if c in gradable]
    for c in graded_diffs:
        s, d, label = c
        number, proto = resolved[c]
        verdict = policy_set.verdict(by_ref[s], by_ref[d], number, proto)
        probe = observed[c]
        want = "allowed" if expect[c] else "blocked"
        got = probe.outcome
        why = humanize(verdict.reason, names)
        origin = "expected" if source[c] == "expected" else "the policies say"
        steps.append(
            Step(
                f"{shown[s]} -> {shown[d]}:{label}",
                f"observed {got}, {origin} {want}; model: {why}",
                False,
            )
        )
    data = {
        "ports": [q.label for q in queries],
        "pods": [shown[r] for r in refs],
        "expected": {
            f"{shown[s]} -> {shown[d]}:{p}": v for (s, d, p), v in expect.items() if v is not None
        },
        "observed": {
            f"{shown[s]} -> {shown[d]}:{p}": observed[(s, d, p)].outcome for (s, d, p) in cells
        },
    }
    if not enforced and has_blocks:
        allowed_cells = [c for c in cells if expect[c]]
        allowed_ok = all(reached(observed[c]) for c in allowed_cells)
        steps.append(
            Step(
                "cells expected allowed",
                f"{sum(reached(observed[c]) for c in allowed_cells)} of "
                f"{len(allowed_cells)} connected",
                allowed_ok if allowed_cells else None,
            )
        )
        blocked = [c for c in cells if expect[c] is False]
        steps.append(
            Step(
                "cells expected blocked",
                f"{len(blocked)}, not gradable: NetworkPolicy is not enforced by {lab.cni}",
                None,
            )
        )
        if not allowed_ok:
            return make_result(
                "policy_matrix",
                subject,
                steps,
                data=data,
                elapsed_s=conv.elapsed_s,
                failure=_majority(observed, [c for c in allowed_cells if not reached(observed[c])]),
                hint="Pods that no policy is meant to block cannot reach each other, and this "
                "CNI enforces no policy: the data plane itself is broken (routing between "
                "nodes, the pods' network).",
            )
        return make_result(
            "policy_matrix",
            subject,
            steps,
            verdict="partial",
            data=data,
            hint=not_enforced_note(lab),
            elapsed_s=conv.elapsed_s,
        )
    if graded_diffs:
        too_open = [c for c in graded_diffs if reached(observed[c])]
        if too_open and len(too_open) == len(graded_diffs):
            hint = (
                "Traffic that should be blocked gets through. A pod is isolated only when a policy in "
                "its namespace selects it (podSelector) for that direction (policyTypes); check the "
                "selectors with `kubectl get pods --show-labels` and that a default-deny exists."
            )
        elif not too_open:
            hint = (
                "Traffic that should be allowed is dropped. Find the policy named in the cell's reason and "
                "add a rule whose from/to peers select the source (podSelector and namespaceSelector in "
                "one peer are ANDed, in two peers ORed) and whose ports match; with egress isolation, "
                "remember DNS (53/UDP and 53/TCP to kube-dns)."
            )
        else:
            hint = (
                "Some flows are too open and others too closed: read each differing cell's reason, "
                "then compare the policies' podSelector, namespaceSelector and ports with the intent."
            )
        failure = _majority(observed, [c for c in graded_diffs if not reached(observed[c])])
        return make_result(
            "policy_matrix",
            subject,
            steps,
            hint=hint,
            failure=failure,
            data=data,
            elapsed_s=conv.elapsed_s,
        )
    return make_result("policy_matrix", subject, steps, data=data, elapsed_s=conv.elapsed_s)


def passed_policy(probe: Probe) -> bool:
    """Whether a probe got through the policies: connected, or refused (the packet reached the pod
    and nothing listened there; a policy drops instead, which times out)."""
    return probe.outcome in ("connected", "refused")


def _majority(observed: Mapping[tuple, Probe], cells: Iterable[tuple]) -> str | None:
    counts: dict[str, int] = {}
    for c in cells:
        cls = classify(observed[c].outcome) or "error"
        counts[cls] = counts.get(cls, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if counts else None


def _render(
    refs: Sequence[str],
    shown: Mapping[str, str],
    port: str,
    expect: Mapping[tuple[str, str, str], bool | None],
    observed: Mapping[tuple[str, str, str], Probe],
) -> list[str]:
    """Observed table, Cyclonus style: ``.`` connected, ``r`` refused (got through the policies,
    nothing listens), ``X`` blocked, ``-`` port not declared; ``!`` marks a cell that differs."""
    labels = [shown[r] for r in refs]
    width = max(len(label) for label in labels)
    cell_w = max(3, len(str(len(refs))) + 1)
    heads = [f"{i + 1}" for i in range(len(refs))]
    lines = [f"{'':{width}}  " + " ".join(h.center(cell_w) for h in heads)]
    for i, s in enumerate(refs):
        cells = []
        for d in refs:
            want = expect.get((s, d, port))
            if want is None:
                cells.append("-".center(cell_w))
                continue
            probe = observed[(s, d, port)]
            got = passed_policy(probe)
            mark = ("." if probe.outcome == "connected" else "r" if got else "X") + (
                "!" if got != want else ""
            )
            cells.append(mark.center(cell_w))
        lines.append(f"{labels[i]:<{width}}  " + " ".join(cells) + f"   ({i + 1})")
    lines.append(
        ". connected, r refused (past the policies, nothing listens), X blocked, "
        "! differs from the expected table, - port not declared"
    )
    return lines
