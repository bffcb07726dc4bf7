"""``policy_matrix``: the observed reachability table of some pods against the expected one (the
policy model's, or cells a learner names), each differing cell explained with the model's reason.

On a lab whose CNI does not enforce policies (Flannel) the check says so and returns a
"cannot grade here" partial instead of a verdict it cannot back. The check runs as ordered
stages: find the pods, expect each cell, probe the cells, tabulate, judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.checks.policy import humanize, not_enforced_note, passed_policy
from labkit.checks.result import Convergence, Result, classify, poll, settle_wait
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import Target, workload_of
from labkit.checks.view import ClusterView
from labkit.commands import ALL_POD_LABELS, POD_LIST
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.netpol.endpoints import endpoint
from labkit.model.netpol.policies import PolicyError
from labkit.model.netpol.truthtable import PortLike, PortQuery, port_query, truth_table
from labkit.model.netpol.verdicts import PolicySet, Verdict, why
from labkit.model.objects import name_of, namespace_of, pod_ip, pod_phase, ref_of
from labkit.values import Probe


class Cell(NamedTuple):
    """A matrix cell: source pod ``ns/name``, destination pod ``ns/name``, port label."""

    src: str
    dst: str
    port: str


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
            parts: tuple[str, str, str | None] = (left.strip(), dst.strip(), port.strip() or None)
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


def _port_label(port: PortLike) -> str:
    return port_query(port).label


# --------------------------------------------------------------------------- stage inputs


@dataclass(frozen=True)
class MatrixAsk:
    """What policy_matrix was asked, with the lab, its view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    targets: Sequence[Target]
    queries: list[PortQuery]
    expected: Mapping[Any, Any] | None
    wait: float
    timeout: float


@dataclass(frozen=True)
class Matrix:
    """The pods of the matrix (sorted by namespace and name), and every name a cell of
    ``expected`` may use for one of them, mapped to its ``ns/name``."""

    ask: MatrixAsk
    pods: list[dict[str, Any]]
    aliases: dict[str, str]

    @property
    def refs(self) -> list[str]:
        """The pods' ``ns/name``, in matrix order."""
        return [ref_of(p) for p in self.pods]

    @property
    def by_ref(self) -> dict[str, dict[str, Any]]:
        """The pods by ``ns/name``."""
        return {ref_of(p): p for p in self.pods}

    @property
    def shown(self) -> dict[str, str]:
        """Display names by ``ns/name``."""
        return {ref_of(p): self.ask.view.names(p) for p in self.pods}


@dataclass(frozen=True)
class Expectations:
    """Every cell's expected answer (None where the port is not declared), whether the model or
    ``expected`` said it, and each probed cell's port number and protocol at its destination."""

    matrix: Matrix
    expect: dict[Cell, bool | None]
    source: dict[Cell, str]
    resolved: dict[Cell, tuple[int, str]]
    policy_set: PolicySet

    @property
    def cells(self) -> list[Cell]:
        """The cells with an expected answer, sorted."""
        return sorted(c for c, v in self.expect.items() if v is not None)

    @property
    def enforced(self) -> bool:
        """Whether this lab enforces NetworkPolicies."""
        return self.matrix.ask.lab.capabilities.network_policy

    @property
    def has_blocks(self) -> bool:
        """Whether any cell is expected blocked."""
        return any(self.expect[c] is False for c in self.cells)

    @property
    def gradable(self) -> list[Cell]:
        """The cells this lab can grade: all where policies are enforced, else the allowed ones."""
        return [c for c in self.cells if self.enforced or self.expect[c]]


@dataclass(frozen=True)
class Observed:
    """What every cell's probe saw, and how the poll converged."""

    expectations: Expectations
    probes: dict[Cell, Probe]
    conv: Convergence[dict[Cell, Probe]]

    def differs(self, cell: Cell) -> bool:
        """Whether a cell got through the policies when it should not, or the other way round."""
        return passed_policy(self.probes[cell]) != self.expectations.expect[cell]

    def majority(self, cells: Iterable[Cell]) -> str | None:
        """The failure class most of these cells show (ties broken by name)."""
        counts: dict[str, int] = {}
        for c in cells:
            cls = classify(self.probes[c].outcome) or "error"
            counts[cls] = counts.get(cls, 0) + 1
        return min(counts, key=lambda cls: (-counts[cls], cls)) if counts else None

    def model(self, cell: Cell) -> Verdict:
        """The policy model's verdict on a cell, with its reason."""
        exp, matrix = self.expectations, self.expectations.matrix
        number, protocol = exp.resolved[cell]
        src, dst = matrix.by_ref[cell.src], matrix.by_ref[cell.dst]
        return exp.policy_set.verdict(src, dst, number, protocol)

    def why(self, cell: Cell) -> str:
        """A cell's reason side by side (one line each): the policy rule that allowed it, the
        policies that isolate a pod with no rule that matches, or no policy selecting the pod."""
        names = self.expectations.matrix.ask.view.names
        return "\n".join(humanize(line, names) for line in why(self.model(cell)))

    def data(self) -> dict[str, Any]:
        """The matrix as plain data: ports, pods, expected and observed cells by display name,
        and the model's reason for each cell (what a notebook's grid shows on a click)."""
        exp, shown = self.expectations, self.expectations.matrix.shown
        return {
            "ports": [q.label for q in exp.matrix.ask.queries],
            "pods": [shown[r] for r in exp.matrix.refs],
            "expected": {
                f"{shown[c.src]} -> {shown[c.dst]}:{c.port}": v
                for c, v in exp.expect.items()
                if v is not None
            },
            "observed": {
                f"{shown[c.src]} -> {shown[c.dst]}:{c.port}": self.probes[c].outcome
                for c in exp.cells
            },
            "reasons": {
                f"{shown[c.src]} -> {shown[c.dst]}:{c.port}": self.why(c) for c in exp.cells
            },
        }


# --------------------------------------------------------------------------- the check


def policy_matrix(
    lab: Lab,
    pods: Sequence[Target],
    ports: Sequence[PortLike],
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
    queries = [port_query(p) for p in ports]
    report = Report("policy_matrix", f"{len(pods)} pods x {', '.join(q.label for q in queries)}")
    ask = MatrixAsk(lab, ClusterView(lab), report, pods, queries, expected, wait, timeout)
    return (
        Stages(ask)
        .then(find_matrix_pods)
        .then(expect_cells)
        .then(probe_cells)
        .then(tabulate)
        .finish(judge_matrix)
    )


def find_matrix_pods(ask: MatrixAsk) -> Matrix | Result:
    """Every target must find Running pods with an IP; remember the names cells may use."""
    names = ask.view.names
    chosen: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for target in ask.targets:
        spec, found = ask.view.find_pods(target)
        action = f"find pod {spec.describe()}"
        if not found or pod_phase(found[0]) != "Running" or not pod_ip(found[0]):
            ask.report.add(
                action, "not found" if not found else f"{pod_phase(found[0])}, no IP", False
            )
            continue
        for pod in found:
            chosen.setdefault(ref_of(pod), pod)
            aliases[spec.describe()] = aliases[names(pod)] = ref_of(pod)
            if isinstance(target, str):
                aliases[target] = ref_of(pod)
        ask.report.add(action, ", ".join(names(p) for p in found), True)
    if any(s.ok is False for s in ask.report.steps):
        return ask.report.result(
            "Some pods of the matrix are missing or not Running; deploy the scenario "
            f"and wait until {ask.view.shell(POD_LIST)} shows them Running."
        )
    pods = sorted(chosen.values(), key=lambda p: (namespace_of(p), name_of(p)))
    by_workload: dict[str, list[str]] = {}
    for p in pods:
        workload = workload_of(p)
        if workload:
            by_workload.setdefault(f"{namespace_of(p)}/{workload}", []).append(ref_of(p))
    for short, refs in by_workload.items():
        if len(refs) == 1:
            aliases.setdefault(short, refs[0])
    return Matrix(ask, pods, aliases)


def expect_cells(matrix: Matrix) -> Expectations | Result:
    """Each cell's expected answer: the policy model's truth table, overridden by the cells
    ``expected`` names; fail when the policies cannot be read."""
    ask, view = matrix.ask, matrix.ask.view
    try:
        table = truth_table(
            matrix.pods, ask.queries, namespaces=view.namespaces, policies=view.policies
        )
        policy_set = PolicySet(view.namespaces, view.policies)
    except (LabError, PolicyError) as exc:
        ask.report.add("read the NetworkPolicies", exc.what, False)
        return ask.report.result(exc.fix)
    expect: dict[Cell, bool | None] = {Cell(*k): v for k, v in table.cells.items()}
    source = dict.fromkeys(expect, "model")
    by_ref = matrix.by_ref
    for (s, d, port), allowed in _expected_from(ask.expected).items():
        s_ref, d_ref = matrix.aliases.get(s, s), matrix.aliases.get(d, d)
        if s_ref not in by_ref or d_ref not in by_ref:
            raise LabError(
                f"Expected cell {s} -> {d} names a pod that is not in the matrix.",
                f"Name pods as given in pods= ({', '.join(map(str, ask.targets))}) or as ns/name.",
            )
        labels = [q.label for q in ask.queries] if port is None else [_port_label(port)]
        for label in labels:
            if label not in table.ports:
                raise LabError(
                    f"Expected cell {s} -> {d}:{port} uses a port not in ports=.",
                    f"Use one of: {', '.join(table.ports)}.",
                )
            cell = Cell(s_ref, d_ref, label)
            if expect.get(cell) is not None:
                expect[cell] = allowed
                source[cell] = "expected"
    query_of = {q.label: q for q in ask.queries}
    resolved: dict[Cell, tuple[int, str]] = {}
    for cell, want in expect.items():
        got = query_of[cell.port].resolve(endpoint(by_ref[cell.dst])) if want is not None else None
        if got is not None:
            resolved[cell] = got
    return Expectations(matrix, expect, source, resolved, policy_set)


def probe_cells(exp: Expectations) -> Observed:
    """Probe every cell at once until each gradable cell is as expected (or the wait runs out);
    where blocks cannot be enforced, waiting longer would not change them."""
    ask, by_ref, cells = exp.matrix.ask, exp.matrix.by_ref, exp.cells
    pairs = [(c.src, str(pod_ip(by_ref[c.dst])), *exp.resolved[c]) for c in cells]

    def observe() -> dict[Cell, Probe]:
        return dict(zip(cells, ask.lab.probe_many(pairs, timeout=ask.timeout), strict=True))

    def done(probes: dict[Cell, Probe]) -> bool:
        return all(passed_policy(probes[c]) == exp.expect[c] for c in exp.gradable)

    wait = ask.wait if (exp.enforced or not exp.has_blocks) else min(ask.wait, 2.0)
    conv = poll(observe, done, wait=settle_wait(ask.lab, wait))
    ask.report.elapsed_s = conv.elapsed_s
    return Observed(exp, conv.observation, conv)


def tabulate(obs: Observed) -> Observed:
    """One step per port with the observed table, then one failed step per differing cell that
    this lab can grade, with the model's reason."""
    exp, matrix = obs.expectations, obs.expectations.matrix
    report, shown = matrix.ask.report, matrix.shown
    gradable = set(exp.gradable)
    for q in matrix.ask.queries:
        port_cells = [c for c in exp.cells if c.port == q.label]
        differing = [c for c in port_cells if obs.differs(c) and c in gradable]
        report.add(
            f"reachability on {q.label} (rows from, columns to)",
            f"{len(port_cells) - len(differing)} of {len(port_cells)} cells as expected "
            f"({obs.conv.describe()})",
            None if not exp.enforced and exp.has_blocks else not differing,
            tuple(_render(matrix.refs, shown, q.label, exp.expect, obs.probes)),
        )
    for cell in (c for c in exp.cells if obs.differs(c) and c in gradable):
        want = "allowed" if exp.expect[cell] else "blocked"
        origin = "expected" if exp.source[cell] == "expected" else "the policies say"
        report.add(
            f"{shown[cell.src]} -> {shown[cell.dst]}:{cell.port}",
            f"observed {obs.probes[cell].outcome}, {origin} {want}; "
            f"model: {humanize(obs.model(cell).reason, matrix.ask.view.names)}",
            False,
        )
    return obs


def judge_matrix(obs: Observed) -> Result:
    """Where blocks cannot be enforced: fail if allowed cells are dropped, else partial. Else
    pass, or fail with a hint for cells too open, too closed, or both."""
    exp = obs.expectations
    ask = exp.matrix.ask
    report, data = ask.report, obs.data()
    if not exp.enforced and exp.has_blocks:
        allowed_cells = [c for c in exp.cells if exp.expect[c]]
        dropped = [c for c in allowed_cells if not passed_policy(obs.probes[c])]
        report.add(
            "cells expected allowed",
            f"{len(allowed_cells) - len(dropped)} of {len(allowed_cells)} connected",
            not dropped if allowed_cells else None,
        )
        blocked = [c for c in exp.cells if exp.expect[c] is False]
        report.add(
            "cells expected blocked",
            f"{len(blocked)}, not gradable: NetworkPolicy is not enforced by {ask.lab.cni}",
        )
        if dropped:
            return report.result(
                "Pods that no policy is meant to block cannot reach each other, and this "
                "CNI enforces no policy: the data plane itself is broken (routing between "
                "nodes, the pods' network).",
                failure=obs.majority(dropped),
                data=data,
            )
        return report.result(not_enforced_note(ask.lab), verdict="partial", data=data)
    diffs = [c for c in exp.gradable if obs.differs(c)]
    if not diffs:
        return report.result(data=data)
    too_open = [c for c in diffs if passed_policy(obs.probes[c])]
    if len(too_open) == len(diffs):
        hint = (
            "Traffic that should be blocked gets through. A pod is isolated only when a policy "
            "in its namespace selects it (podSelector) for that direction (policyTypes); check "
            f"the selectors against {ask.view.shell(ALL_POD_LABELS)} and that a default-deny "
            "exists."
        )
    elif not too_open:
        hint = (
            "Traffic that should be allowed is dropped. Find the policy named in the cell's "
            "reason and add a rule whose from/to peers select the source (podSelector and "
            "namespaceSelector in one peer are ANDed, in two peers ORed) and whose ports match; "
            "with egress isolation, remember DNS (53/UDP and 53/TCP to kube-dns)."
        )
    else:
        hint = (
            "Some flows are too open and others too closed: read each differing cell's reason, "
            "then compare the policies' podSelector, namespaceSelector and ports with the intent."
        )
    failure = obs.majority(c for c in diffs if not passed_policy(obs.probes[c]))
    return report.result(hint, failure=failure, data=data)


def _render(
    refs: Sequence[str],
    shown: Mapping[str, str],
    port: str,
    expect: Mapping[Cell, bool | None],
    observed: Mapping[Cell, Probe],
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
            want = expect.get(Cell(s, d, port))
            if want is None:
                cells.append("-".center(cell_w))
                continue
            probe = observed[Cell(s, d, port)]
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
