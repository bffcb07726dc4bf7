"""Issue 5 acceptance on the sandbox: every scenario deploys, its checks pass, each step passes,
each broken variant fails with its hint and passes once fixed, and reset restores the start;
issue 19's: all of it on Cilium too, but for what CILIUM_LEFT_OUT lists.

One lab per CNI for the whole session (``scn-c<pid>``, ``scn-f<pid>``, ``scn-i<pid>``), always
torn down.
Every test starts from, and leaves, the lab's bootstrap state: whatever a scenario created is
deleted afterwards and the lab's objects are compared with the state right after ``up``.
On Flannel (no policy engine) the policy scenarios must say so instead of giving a false verdict.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import pytest

from labkit import manifests, scenarios
from labkit.errors import LabError
from labkit.lab import ObjectRef

pytestmark = pytest.mark.sandbox

NAMES = scenarios.names()
SCENARIOS = {name: scenarios.get(name) for name in NAMES}

KINDS = (
    "namespaces",
    "pods",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "services",
    "endpoints",
    "endpointslices",
    "networkpolicies",
    "ingresses",
    "ingressclasses",
    "configmaps",
    "secrets",
    "serviceaccounts",
)
"""Every kind the sandbox stores: a snapshot of these is "the objects in the lab"."""
PLURAL = {manifests.canonical_kind(k): k for k in KINDS}

TOP_LEVEL = (
    "deployments",
    "daemonsets",
    "statefulsets",
    "replicasets",
    "pods",
    "services",
    "endpoints",
    "endpointslices",
    "networkpolicies",
    "ingresses",
    "ingressclasses",
    "configmaps",
    "secrets",
    "serviceaccounts",
)
"""Deletion order for the sweep: owners before what they own, so controllers do not re-create."""

POLICY_SCENARIOS_ON_FLANNEL = {
    "09-cni-investigation": ("cni-web-isolated",),
    "14-three-tier-policies": None,  # None: the starting state and every variant
    "16-pci-payment-isolation": None,
    "18-troubleshooting-symptoms": ("deny-all-ingress",),
}
NOT_ENFORCED = "not enforced"


class Key(NamedTuple):
    """One object of a lab snapshot."""

    kind: str
    """Its plural, as in KINDS."""
    namespace: str | None
    name: str


class Span(NamedTuple):
    """When something ran (``time.monotonic()`` seconds)."""

    began: float
    ended: float


# --------------------------------------------------------------------------- the labs


class LiveLab:
    """A session lab and its objects right after ``up`` (what every test returns to)."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.baseline = snapshot(lab)


def snapshot(lab: Any) -> set[Key]:
    """``(kind, namespace, name)`` of every object the lab holds."""
    return {
        Key(kind, (obj.get("metadata") or {}).get("namespace"), obj["metadata"]["name"])
        for kind in KINDS
        for obj in lab.get(kind, namespace=None)
    }


def shape(lab: Any) -> Counter:
    """The snapshot with a workload pod's random suffix dropped (``web-<hash>-*``): a re-created
    Deployment gets new pod names, as on a real cluster, but the same number from the same
    template."""
    shaped: Counter = Counter()
    owned = {
        (o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in lab.get("pods", namespace=None)
        if o["metadata"].get("ownerReferences")
    }
    for kind, ns, name in snapshot(lab):
        if kind == "pods" and (ns, name) in owned:
            name = name.rsplit("-", 1)[0] + "-*"
        shaped[Key(kind, ns, name)] += 1
    return shaped


def sweep(live: LiveLab) -> None:
    """Delete everything created since ``up``: new namespaces (with their contents), then every
    other new object, owners first; then demand the bootstrap state exactly."""
    lab = live.lab
    extra = snapshot(lab) - live.baseline
    namespaces = sorted(name for kind, _, name in extra if kind == "namespaces")
    if namespaces:
        lab.delete([ObjectRef("Namespace", n) for n in namespaces])
    for kind in TOP_LEVEL:
        doomed = sorted((key for key in snapshot(lab) - live.baseline if key.kind == kind), key=str)
        if kind == "pods":  # only bare pods: a workload's pods went with it
            owned = {
                (o["metadata"].get("namespace"), o["metadata"]["name"])
                for o in lab.get("pods", namespace=None)
                if o["metadata"].get("ownerReferences")
            }
            doomed = [key for key in doomed if (key.namespace, key.name) not in owned]
        if doomed:
            lab.delete([ObjectRef(manifests.canonical_kind(k), name, ns) for k, ns, name in doomed])
    left = snapshot(lab) - live.baseline
    missing = live.baseline - snapshot(lab)
    assert not left and not missing, (
        f"the lab did not return to its bootstrap state: left over {sorted(left, key=str)}, "
        f"missing {sorted(missing, key=str)}"
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"pytest" in f.read()
    except OSError:
        return False


def _session_lab(cni: str) -> Iterator[LiveLab]:
    """A lab named after this test process (``scn-c<pid>``, ``scn-f<pid>``, ``scn-i<pid>`` for
    Cilium), so two runs at once never take each other's lab down; labs of runs that died are
    removed first."""
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    for stale in backend.names():
        found = re.fullmatch(r"scn-[cfi](\d+)", stale)
        if found and not _alive(int(found.group(1))):
            backend.down(stale)
    lab_name = f"scn-{ {'calico': 'c', 'flannel': 'f', 'cilium': 'i'}[cni] }{os.getpid()}"
    backend.down(lab_name)
    try:
        lab = backend.up(lab_name, cni, quiet=True)
        yield LiveLab(lab)
    finally:
        backend.down(lab_name)


@pytest.fixture(scope="session")
def calico_session() -> Iterator[LiveLab]:
    yield from _session_lab("calico")


@pytest.fixture(scope="session")
def flannel_session() -> Iterator[LiveLab]:
    yield from _session_lab("flannel")


def _clean(live: LiveLab) -> Iterator[Any]:
    if snapshot(live.lab) != live.baseline:
        sweep(live)  # an earlier test failed half-way: start clean anyway
    yield live.lab
    sweep(live)


@pytest.fixture(scope="session")
def cilium_session() -> Iterator[LiveLab]:
    yield from _session_lab("cilium")


CILIUM_LEFT_OUT = {
    "10-kube-proxy-rules": "its check reads kube-proxy's KUBE-* rules, which Cilium's kube-proxy "
    "replacement never writes (the check says so, partial: selftest kube-proxy-rules-replaced)",
}
"""The one list of what the Cilium lab leaves out of this file, each with its reason: every other
test of a scenario's start, steps, broken variants, fixes and reset runs on Calico and Cilium
alike (``enforcing``); the KUBE-SVC probability test below stays on Calico for this reason."""


def skip_left_out(lab: Any, name: str) -> None:
    """Skip, with its reason, a scenario this lab's CNI leaves out."""
    if lab.cni == "cilium" and name in CILIUM_LEFT_OUT:
        pytest.skip(f"{name} on cilium: {CILIUM_LEFT_OUT[name]}")


@pytest.fixture(params=["calico", "cilium"])
def enforcing(request: Any) -> Iterator[Any]:
    """A lab of each CNI that enforces NetworkPolicy (Calico; Cilium, with kube-proxy replaced),
    clean before and after the test: the scenarios' starting states and their broken variants
    grade alike on both."""
    yield from _clean(request.getfixturevalue(f"{request.param}_session"))


@pytest.fixture
def calico(calico_session: LiveLab) -> Iterator[Any]:
    """The calico lab, clean before and after the test."""
    yield from _clean(calico_session)


@pytest.fixture
def flannel(flannel_session: LiveLab) -> Iterator[Any]:
    """The flannel lab, clean before and after the test."""
    yield from _clean(flannel_session)


# --------------------------------------------------------------------------- helpers


def report(results: Sequence[Any]) -> str:
    return "\n\n".join(str(r) for r in results)


def assert_all_pass(results: Sequence[Any], what: str) -> None:
    assert results, f"{what}: no check ran"
    bad = [r for r in results if r.verdict != "pass"]
    assert not bad, f"{what}: {len(bad)} of {len(results)} checks did not pass\n\n{report(bad)}"


def require_sandbox(scenario: scenarios.Scenario, lab: Any) -> None:
    """A Kind-only scenario must refuse the sandbox with its note; then there is nothing more to
    test here."""
    if "sandbox" in scenario.backends:
        return
    with pytest.raises(LabError) as refused:
        scenarios.deploy(lab, scenario.name)
    assert "kind" in str(refused.value).lower()
    pytest.skip(f"{scenario.name} is Kind-only: {scenario.sandbox_note}")


def declared_objects(
    scenario: scenarios.Scenario, files: tuple[str, ...] | None = None
) -> list[Key]:
    """The snapshot keys of the objects a scenario's manifests declare."""
    keys = []
    for doc in scenario.documents(files):
        kind = manifests.canonical_kind(doc["kind"])
        ns = (
            (doc["metadata"].get("namespace") or "default")
            if manifests.is_namespaced(kind)
            else None
        )
        keys.append(Key(PLURAL[kind], ns, doc["metadata"]["name"]))
    return keys


def variant_ids(role: str, names: Sequence[str] = NAMES) -> list[Any]:
    return [
        pytest.param(n, v.name, id=f"{n}/{v.name}")
        for n in names
        for v in SCENARIOS[n].variants
        if v.role == role
    ]


# ------------------------------- every scenario on calico and cilium (but CILIUM_LEFT_OUT)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_deploys_and_its_checks_pass(enforcing, name):
    scenario = SCENARIOS[name]
    skip_left_out(enforcing, name)
    require_sandbox(scenario, enforcing)
    refs = scenarios.deploy(enforcing, name)
    assert refs, f"{name}: deploy applied nothing"
    present = snapshot(enforcing)
    missing = [k for k in declared_objects(scenario) if k not in present]
    assert not missing, f"{name}: deployed objects not in the lab: {missing}"
    assert_all_pass(scenarios.run_checks(enforcing, name), f"{name} (starting state)")


@pytest.mark.parametrize(("name", "variant"), variant_ids("step"))
def test_step_checks_pass(enforcing, name, variant):
    scenario = SCENARIOS[name]
    skip_left_out(enforcing, name)
    require_sandbox(scenario, enforcing)
    scenarios.deploy(enforcing, name, variant)
    assert_all_pass(scenarios.run_checks(enforcing, name, variant), f"{name} step {variant}")


@pytest.mark.parametrize(("name", "variant"), variant_ids("broken"))
def test_broken_variant_fails_with_its_hint_then_fix_passes(enforcing, name, variant):
    scenario = SCENARIOS[name]
    skip_left_out(enforcing, name)
    require_sandbox(scenario, enforcing)
    chosen = scenario.variant(variant)
    scenarios.deploy(enforcing, name, variant)
    results = scenarios.run_checks(enforcing, name, variant)
    assert results, f"{name}/{variant}: no check ran"
    passed = [r for r in results if r.verdict == "pass"]
    assert not passed, f"{name}/{variant} is broken, yet these checks pass:\n\n{report(passed)}"
    unhinted = [
        r
        for r in results
        if chosen.hint_contains not in r.hint and chosen.hint_contains not in str(r)
    ]
    assert not unhinted, (
        f"{name}/{variant}: the failing checks should say {chosen.hint_contains!r}:"
        f"\n\n{report(unhinted)}"
    )
    scenarios.fix(enforcing, name, variant)
    assert_all_pass(
        scenarios.run_checks(enforcing, name, variant), f"{name}/{variant} after its fix"
    )


@pytest.mark.parametrize("name", NAMES)
def test_reset_returns_to_the_starting_state(enforcing, name):
    scenario = SCENARIOS[name]
    skip_left_out(enforcing, name)
    require_sandbox(scenario, enforcing)
    scenarios.deploy(enforcing, name)
    fresh = shape(enforcing)
    for variant in scenario.variants:  # pile every variant (and fix) on top of each other
        scenarios.deploy(enforcing, name, variant.name)
        if variant.fix:
            scenarios.fix(enforcing, name, variant.name)
    scenarios.reset(enforcing, name)
    now = shape(enforcing)
    # Namespaces a variant created may stay behind if empty (nothing but their default
    # ServiceAccount).
    extra_ns = {key.name for key in now - fresh if key.kind == "namespaces"}
    tolerated = Counter({Key("namespaces", None, n): 1 for n in extra_ns}) + Counter(
        {Key("serviceaccounts", n, "default"): 1 for n in extra_ns}
    )
    surplus, lacking = now - fresh - tolerated, fresh - now
    assert not surplus, (
        f"{name}: after reset, objects a fresh deploy lacks: {sorted(surplus.elements(), key=str)}"
    )
    assert not lacking, (
        f"{name}: after reset, missing objects: {sorted(lacking.elements(), key=str)}"
    )
    assert_all_pass(scenarios.run_checks(enforcing, name), f"{name} after reset")


# ------------------------------------------------------------------- policy scenarios on flannel


def flannel_cases() -> list[Any]:
    cases = []
    for name, only in POLICY_SCENARIOS_ON_FLANNEL.items():
        cases.append(pytest.param(name, None, id=f"{name}/start"))
        for v in SCENARIOS[name].variants:
            if only is None or v.name in only:
                cases.append(pytest.param(name, v.name, id=f"{name}/{v.name}"))
    return cases


def assert_honest_on_flannel(
    specs: Sequence[scenarios.CheckSpec], results: Sequence[Any], *, broken: bool, what: str
) -> None:
    """Without a policy engine no check may fail or pass on a block it cannot see: anything that
    depends on a policy drop is "partial" and says policies are not enforced."""
    assert len(specs) == len(results)
    for spec, result in zip(specs, results, strict=True):
        text = str(result)
        assert result.verdict != "fail", f"{what}: a false failure on flannel\n\n{text}"
        if result.verdict == "partial":
            assert NOT_ENFORCED in result.hint, (
                f"{what}: partial without saying policies are not enforced\n\n{text}"
            )
        needs_block = (
            broken or spec.check == "policy_matrix" or spec.args.get("expect") == "blocked"
        )
        if needs_block:
            assert result.verdict == "partial" and NOT_ENFORCED in result.hint, (
                f"{what}: this verdict depends on a NetworkPolicy drop that flannel cannot make; "
                f"the check must say policies are {NOT_ENFORCED!r} (verdict partial), not "
                f"{result.verdict}\n\n{text}"
            )


@pytest.mark.parametrize(("name", "variant"), flannel_cases())
def test_policy_scenario_on_flannel_says_policies_are_not_enforced(flannel, name, variant):
    scenario = SCENARIOS[name]
    assert not flannel.capabilities.network_policy
    scenarios.deploy(flannel, name, variant)
    if variant is None:
        assert_honest_on_flannel(
            scenario.checks,
            scenarios.run_checks(flannel, name),
            broken=False,
            what=f"{name} on flannel",
        )
        return
    chosen = scenario.variant(variant)
    assert_honest_on_flannel(
        chosen.checks,
        scenarios.run_checks(flannel, name, variant),
        broken=chosen.role == "broken",
        what=f"{name}/{variant} on flannel",
    )
    if chosen.role == "broken":
        scenarios.fix(flannel, name, variant)
        assert_honest_on_flannel(
            chosen.checks,
            scenarios.run_checks(flannel, name, variant),
            broken=False,
            what=f"{name}/{variant} on flannel after its fix",
        )


# ---------------------------------------------------------------- hints that name the real cause


@pytest.mark.parametrize(
    ("name", "variant", "check", "wanted", "unwanted"),
    [
        # Pods that never got a node: the hint is about scheduling, with the scheduler's own
        # message.
        (
            "01-web-across-nodes",
            "unschedulable-database",
            "pod_to_pod",
            (
                "is Pending: the scheduler found no node",
                "PodScheduled=False",
                "nodes labelled disktype=ssd",
            ),
            ("does not exist",),
        ),
        (
            "18-troubleshooting-symptoms",
            "pod-not-scheduled",
            "diagnose",
            (
                "are Pending: the scheduler found no node",
                "PodScheduled=False, reason Unschedulable",
                "gpu=true",
            ),
            ("readiness",),
        ),
        # A near-miss Service name: `auth` is what was meant, not the names sharing "-service".
        (
            "06-api-gateway",
            "misnamed-service",
            "dns_resolves",
            ("did you mean auth?",),
            ("user-service",),
        ),
        # The Service stayed behind in default: pointing there would not help, it has no endpoints.
        (
            "11-env-to-dns",
            "service-left-behind",
            "dns_resolves",
            (
                "one exists in namespace default",
                "has no ready endpoints",
                "run in finance",
                "Create the Service in finance",
            ),
            ("write payment-service.default",),
        ),
    ],
)
def test_broken_variant_hints_name_the_real_cause(
    enforcing, name, variant, check, wanted, unwanted
):
    scenarios.deploy(enforcing, name, variant)
    results = [r for r in scenarios.run_checks(enforcing, name, variant) if r.check == check]
    assert results, f"{name}/{variant}: no {check} ran"
    for result in results:
        assert result.verdict == "fail", f"{name}/{variant}: {check} should fail\n\n{result}"
        missing = [w for w in wanted if w not in result.hint]
        assert not missing, f"{name}/{variant}: the hint lacks {missing}\n\n{result}"
        present = [u for u in unwanted if u in result.hint]
        assert not present, f"{name}/{variant}: the hint still says {present}\n\n{result}"


def test_pending_pods_are_shown_with_the_schedulers_message(enforcing):
    name, variant = "18-troubleshooting-symptoms", "pod-not-scheduled"
    scenarios.deploy(enforcing, name, variant)
    result = next(
        r for r in scenarios.run_checks(enforcing, name, variant) if r.check == "diagnose"
    )
    step = next(s for s in result.steps if s.action == "endpoints")
    assert step.ok is False and "Pending" in step.observed and "unschedulable" in step.observed, (
        result
    )
    assert step.evidence and all(
        "Pending, not Ready, no IP, PodScheduled=False (Unschedulable): 0/3 nodes are "
        "available" in line
        for line in step.evidence
    ), result


@pytest.mark.parametrize(
    ("name", "pod", "port"),
    [
        ("05-sidecar-logging", "default/app-pod", 24224),
        ("13-sidecar-proxy", "default/api-service", 8080),
    ],
)
def test_sidecar_scenarios_connect_over_localhost(enforcing, name, pod, port):
    """Containers of one pod share its loopback: the probe dials 127.0.0.1 inside the pod and the
    pod itself answers; no pod IP is involved, so no NAT judgement either."""
    scenarios.deploy(enforcing, name)
    results = [
        r
        for r in scenarios.run_checks(enforcing, name)
        if r.check == "pod_to_pod" and "127.0.0.1" in r.subject
    ]
    assert len(results) == 1, report(scenarios.run_checks(enforcing, name))
    result = results[0]
    text = str(result)
    assert result.passed, text
    assert result.subject == f"{pod} -> 127.0.0.1 (its own localhost):{port}/TCP (connected)"
    assert f"connect from {pod} to 127.0.0.1:{port}/TCP: connected, answered by {pod}" in text
    assert "(no NAT)" not in text and "(NAT)" not in text


# ----------------------------------------------------------------------- scenario 3: no downtime


def test_database_migration_switches_the_selector_without_downtime(enforcing):
    name = "03-database-migration"
    scenario = SCENARIOS[name]
    lab = enforcing
    scenarios.deploy(lab, name)
    svc = lab.get("services", "database-service")[0]
    cluster_ip, port = svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])
    engine = {
        p["metadata"]["name"]: p["metadata"]["labels"]["app"]
        for p in lab.get("pods", selector="tier=database")
    }
    assert sorted(set(engine.values())) == ["mysql", "postgres"]

    phase = ["mysql"]
    log: list[tuple[str, Any]] = []
    spans: list[Span] = []  # when each probe ran
    applies: list[tuple[str, float, float]] = []  # when each selector switch was being applied
    errors: list[BaseException] = []
    stop = threading.Event()

    def probe_forever() -> None:
        try:
            while not stop.is_set():
                began = time.monotonic()
                probe = lab.probe("default/client", cluster_ip, port, timeout=1.0)
                spans.append(Span(began, time.monotonic()))
                log.append((phase[0], probe))
        except BaseException as exc:
            errors.append(exc)

    def engines_since(start: int) -> set[str]:
        return {engine.get(p.served_by or "", "?") for _, p in log[start:] if p.ok}

    def wait_for(start: int, wanted: set[str], limit: float = 8.0) -> set[str]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not errors:
            if len(log) - start >= 10 and engines_since(start) >= wanted:
                break
            time.sleep(0.05)
        return engines_since(start)

    worker = threading.Thread(target=probe_forever, daemon=True)
    worker.start()
    try:
        assert wait_for(0, {"mysql"}) == {"mysql"}
        for step, wanted in (
            ("both-engines", {"mysql", "postgres"}),
            ("postgres-only", {"postgres"}),
        ):
            phase[0] = step
            start = len(log)
            began = time.monotonic()
            lab.apply(
                scenario.documents(scenario.variant(step).manifests)
            )  # kubectl apply -f, mid-traffic
            applies.append((step, began, time.monotonic()))
            assert wait_for(start, wanted) >= wanted, (
                f"after {step}, answers came from {engines_since(start)}"
            )
        settled = len(log)
        wait_for(settled, {"postgres"})
        assert engines_since(settled) == {"postgres"}, (
            "MySQL still answers after the postgres-only switch"
        )
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not errors, f"the probe loop crashed: {errors[0]!r}"
    failed = [(ph, p) for ph, p in log if not p.ok]
    assert len(log) >= 30, f"only {len(log)} probes ran during the switch"
    for step, began, ended in applies:
        overlapping = [span for span in spans if span.began < ended and span.ended > began]
        assert overlapping, (
            f"no probe was in flight while {step} was applied: the test proves nothing"
        )
    assert not failed, (
        f"{len(failed)} of {len(log)} probes failed during the selector switch (downtime):\n"
        + "\n".join(f"  during {ph}: {p.outcome} {p.detail}" for ph, p in failed[:10])
    )


# ----------------------------------------------------------------- scenario 10: the node's rules

PROBABILITY = re.compile(r"--probability (\S+)")


def kube_svc_rules(dump: str, service_port: str) -> tuple[str, list[str]]:
    """The KUBE-SVC chain for ``ns/name:port`` and its rules that jump to an endpoint (KUBE-SEP)."""
    entry = [
        line
        for line in dump.splitlines()
        if line.startswith("-A KUBE-SERVICES ") and f'"{service_port} cluster IP"' in line
    ]
    assert len(entry) == 1, f"expected one KUBE-SERVICES rule for {service_port}, found {entry}"
    chain = entry[0].rsplit("-j ", 1)[1].strip()
    assert chain.startswith("KUBE-SVC-"), entry[0]
    assert f":{chain} - [0:0]" in dump.splitlines(), f"{chain} is not declared in the nat table"
    return chain, [
        line
        for line in dump.splitlines()
        if line.startswith(f"-A {chain} ") and re.search(r"-j KUBE-SEP-\w+\s*$", line)
    ]


def test_kube_proxy_rules_split_one_third_one_half_then_the_rest(calico):
    """Calico only: see CILIUM_LEFT_OUT."""
    lab = calico
    scenarios.deploy(lab, "10-kube-proxy-rules")
    endpoints = sorted(p["status"]["podIP"] for p in lab.get("pods", selector="app=my-service"))
    assert len(endpoints) == 3
    for node in sorted(n["metadata"]["name"] for n in lab.get("nodes", namespace=None)):
        result = lab.node_exec(node, ["iptables-save"])
        assert result.ok, f"iptables-save failed on {node}: {result.stderr}"
        chain, rules = kube_svc_rules(result.stdout, "default/my-service:http")
        shown = "\n".join(rules)
        assert len(rules) == 3, f"{node}: {chain} should pick one of 3 endpoints:\n{shown}"
        odds = [PROBABILITY.search(rule) for rule in rules]
        assert odds[0] and abs(float(odds[0].group(1)) - 1 / 3) < 1e-9, (
            f"{node}: first rule is not 1/3:\n{shown}"
        )
        assert odds[1] and abs(float(odds[1].group(1)) - 1 / 2) < 1e-9, (
            f"{node}: second rule is not 1/2:\n{shown}"
        )
        assert odds[2] is None and "statistic" not in rules[2], (
            f"{node}: the last rule must take the rest:\n{shown}"
        )
        targets = sorted(re.search(r"-> ([\d.]+):8080", rule).group(1) for rule in rules)
        assert targets == endpoints, f"{node}: rules point at {targets}, endpoints are {endpoints}"


# --------------------------------------------------------------------------- Kind-only steps


@pytest.mark.parametrize("name", [n for n in NAMES if SCENARIOS[n].kind_steps])
def test_kind_only_steps_are_refused_plainly_on_the_sandbox(enforcing, name):
    scenario = SCENARIOS[name]
    assert scenario.sandbox_note, (
        f"{name} has Kind-only steps but does not say what the sandbox lacks"
    )
    with pytest.raises(LabError) as refused:
        scenarios.run_kind_steps(enforcing, name)
    assert "Kind" in str(refused.value) and scenario.sandbox_note.split(".")[0] in str(
        refused.value
    )
    assert scenario.kind_plan("netlab", enforcing.cni), (
        f"{name}: no Kind step applies to {enforcing.cni}"
    )
