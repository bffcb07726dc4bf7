"""Kubernetes' NetworkPolicy e2e cases (test/e2e/network/netpol/network_policy.go) on a Calico
sandbox lab, with upstream's model: namespaces x, y and z, each with pods a, b and c serving TCP
and UDP on ports 80 and 81 (containers ``cont-<port>-<proto>``, ports named
``serve-<port>-<proto>``, model.go), one Service per pod (``s-<ns>-<pod>``), and every case
judged by probing all 72 pairs of distinct pods through those Services' cluster IPs against the
truth table the case builds (probe.go ``ProbePodToPodConnectivity``, reachability.go; loopback
ignored, a mismatch probed a second time as ``ValidateOrFail`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from e2e_jig import AGNHOST, module_lab, namespace

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
ALL = tuple(f"{ns}/{pod}" for ns in NAMESPACES for pod in PODS)
NS_LABEL = "kubernetes.io/metadata.name"
PROBE_TIMEOUT_S = 1.0  # getProbeTimeoutSeconds: agnhost connect --timeout=1s


def _container(port: int, proto: str) -> dict[str, Any]:
    flag = "--tcp" if proto == "TCP" else "--udp"
    return {
        "name": f"cont-{port}-{proto.lower()}",
        "image": AGNHOST,
        "command": ["/agnhost", "serve-hostname", flag, "--http=false", "--port", str(port)],
        "ports": [
            {"containerPort": port, "name": f"serve-{port}-{proto.lower()}", "protocol": proto}
        ],
    }


def model() -> list[dict[str, Any]]:
    """Upstream's default model: the namespaces, pods and per-pod Services, labels as created."""
    docs = [namespace(ns) for ns in NAMESPACES]
    for ns in NAMESPACES:
        for pod in PODS:
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod, "namespace": ns, "labels": {"pod": pod}},
                    "spec": {
                        "containers": [
                            _container(port, proto) for port in (80, 81) for proto in ("TCP", "UDP")
                        ]
                    },
                }
            )
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"s-{ns}-{pod}", "namespace": ns},
                    "spec": {
                        "selector": {"pod": pod},
                        "ports": [
                            {
                                "name": f"service-port-{proto.lower()}-{port}",
                                "port": port,
                                "protocol": proto,
                                "targetPort": port,
                            }
                            for port in (80, 81)
                            for proto in ("TCP", "UDP")
                        ],
                    },
                }
            )
    return docs


@pytest.fixture(scope="module", params=["calico", "cilium"])
def model_lab(request):
    """A lab of each CNI that enforces NetworkPolicy (Calico, Cilium) with the model applied;
    the cluster IP of each pod's Service by ``ns/pod``."""
    for lab in module_lab({"calico": "enp", "cilium": "enpc"}[request.param], request.param):
        lab.apply(model())
        ips = {
            f"{ns}/{pod}": lab.get("service", f"s-{ns}-{pod}", ns)[0]["spec"]["clusterIP"]
            for ns in NAMESPACES
            for pod in PODS
        }
        yield lab, ips


@pytest.fixture
def k8s(model_lab):
    """The model lab, its policies deleted and labels restored after each case (upstream's
    ``cleanNetworkPolicies``, ``ResetPodLabels``, ``DeleteNamespaceLabel``)."""
    lab, ips = model_lab
    yield Model(lab, ips)
    for ns in NAMESPACES:
        policies = lab.get("networkpolicies", None, ns)
        if policies:
            lab.delete(policies)
    lab.apply(model())


@dataclass(frozen=True)
class Peer:
    """reachability.go's Peer: a namespace and/or pod; empty matches every pod."""

    ns: str | None = None
    pod: str | None = None

    def matches(self, name: str) -> bool:
        ns, pod = name.split("/")
        return self.ns in (None, ns) and self.pod in (None, pod)


class Reachability:
    """The expected truth table (reachability.go ``NewReachability(pods, true)``)."""

    def __init__(self) -> None:
        self.expected = {(f, t): True for f in ALL for t in ALL}

    def expect(self, src: str, dst: str, connected: bool) -> Reachability:
        self.expected[(src, dst)] = connected
        return self

    def expect_peer(self, src: Peer, dst: Peer, connected: bool) -> Reachability:
        for f, t in self.expected:
            if src.matches(f) and dst.matches(t):
                self.expected[(f, t)] = connected
        return self

    def expect_all_ingress(self, pod: str, connected: bool) -> Reachability:
        return self.expect_peer(Peer(), Peer(*pod.split("/")), connected)

    def expect_all_egress(self, pod: str, connected: bool) -> Reachability:
        return self.expect_peer(Peer(*pod.split("/")), Peer(), connected)


class Model:
    """The lab with upstream's kubeManager verbs: create and update policies, label, validate."""

    def __init__(self, lab: Any, ips: dict[str, str]) -> None:
        self.lab = lab
        self.ips = ips

    def create_policy(self, ns: str, policy: dict[str, Any]) -> None:
        policy["metadata"]["namespace"] = ns
        self.lab.apply(policy)

    def add_pod_labels(self, ns: str, pod: str, labels: dict[str, str]) -> None:
        doc = next(d for d in model() if d["kind"] == "Pod" and d["metadata"]["name"] == pod)
        doc["metadata"]["namespace"] = ns
        doc["metadata"]["labels"] = {**doc["metadata"]["labels"], **labels}
        self.lab.apply(doc)

    def add_namespace_label(self, ns: str, key: str, value: str) -> None:
        self.lab.apply(namespace(ns, {key: value}))

    def pod_ip(self, name: str) -> str:
        ns, pod = name.split("/")
        return str(self.lab.get("pod", pod, ns)[0]["status"]["podIP"])

    def validate(self, reach: Reachability, port: int, proto: str = "TCP") -> None:
        """``ValidateOrFail``: probe every pair (loopback ignored) and compare; pairs that differ
        are probed once more before failing with both tables."""
        pairs = [(f, t) for f in ALL for t in ALL if f != t]
        observed = self._probe(pairs, port, proto)
        wrong = [pair for pair in pairs if observed[pair] != reach.expected[pair]]
        if wrong:
            observed.update(self._probe(wrong, port, proto))
        wrong = [pair for pair in pairs if observed[pair] != reach.expected[pair]]
        assert not wrong, (
            f"port {port}/{proto}: expected\n{_table(reach.expected)}\nobserved\n"
            f"{_table(observed)}\nwrong: {wrong}"
        )

    def _probe(self, pairs: list[tuple[str, str]], port: int, proto: str) -> dict:
        probes = self.lab.probe_many(
            [(f, self.ips[t], port, proto) for f, t in pairs], timeout=PROBE_TIMEOUT_S
        )
        return {pair: p.ok for pair, p in zip(pairs, probes, strict=True)}


def _table(cells: dict[tuple[str, str], bool]) -> str:
    rows = ["-\t" + "\t".join(ALL)]
    for f in ALL:
        marks = ("." if f == t else ("." if cells.get((f, t), True) else "X") for t in ALL)
        rows.append(f + "\t" + "\t".join(marks))
    return "\n".join(rows)


def policy(name: str, selector: dict[str, Any], ingress=None, egress=None) -> dict[str, Any]:
    """``GenNetworkPolicyWithNameAndPodSelector`` with ``SetSpecIngressRules`` /
    ``SetSpecEgressRules``: a rule list given (even empty) adds that policy type."""
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def labels(**kv: str) -> dict[str, Any]:
    """A LabelSelector with matchLabels."""
    return {"matchLabels": dict(kv)}


def ns_in(op: str, *values: str) -> dict[str, Any]:
    """A namespace LabelSelector on the automatic name label, with one expression."""
    return {"matchExpressions": [{"key": NS_LABEL, "operator": op, "values": list(values)}]}


def ns_is(ns: str) -> dict[str, Any]:
    return {"matchLabels": {NS_LABEL: ns}}


POD_A = labels(pod="a")


def test_default_deny_ingress(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should support a 'default-deny-ingress' policy"""
    k8s.create_policy("x", policy("deny-ingress", {}, ingress=[]))
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 80)


def test_default_deny_all(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should support a 'default-deny-all' policy"""
    k8s.create_policy("x", policy("deny-all", {}, ingress=[], egress=[]))
    reach = Reachability().expect_peer(Peer(), Peer("x"), False)
    k8s.validate(reach.expect_peer(Peer("x"), Peer(), False), 80)


def test_allow_from_pods_in_server_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow traffic from pods within server namespace based on PodSelector"""
    rule = {"from": [{"podSelector": labels(pod="b")}]}
    k8s.create_policy("x", policy("x-a-allows-x-b", POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
    k8s.validate(reach, 80)


def test_allow_ingress_for_a_target(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow ingress traffic for a target"""
    k8s.create_policy("x", policy("deny-all", {}, ingress=[]))
    rule = {"from": [{"podSelector": {}, "namespaceSelector": {}}]}
    k8s.create_policy("x", policy("allow-all-to-a", POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", True)
    reach.expect_all_ingress("x/b", False).expect_all_ingress("x/c", False)
    k8s.validate(reach, 80)


def test_allow_ingress_from_all_namespaces(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow ingress traffic from pods in all namespaces"""
    rule = {"from": [{"namespaceSelector": {"matchLabels": {}}}]}
    k8s.create_policy("x", policy("allow-from-another-ns", POD_A, ingress=[rule]))
    k8s.validate(Reachability(), 80)


def test_allow_only_from_other_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector"""
    rule = {"from": [{"namespaceSelector": ns_is("y")}]}
    k8s.create_policy("x", policy("allow-client-a-via-ns-selector", POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x", "a"), False), 80)


def test_pod_selector_match_expressions(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on PodSelector with MatchExpressions"""
    selector = {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["b"]}]}
    rule = {"from": [{"podSelector": selector}]}
    k8s.create_policy("x", policy("x-a-allows-x-b", POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
    k8s.validate(reach, 80)


def test_namespace_selector_match_expressions(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on NamespaceSelector with MatchExpressions"""
    rule = {"from": [{"namespaceSelector": ns_in("In", "y")}]}
    k8s.create_policy("x", policy("allow-ns-y-match-selector", POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x", "a"), False), 80)


def test_pod_selector_or_namespace_selector(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on PodSelector or NamespaceSelector"""
    rule = {"from": [{"namespaceSelector": ns_in("NotIn", "x")}, {"podSelector": labels(pod="b")}]}
    k8s.create_policy("x", policy("allow-ns-y-match-selector", POD_A, ingress=[rule]))
    reach = Reachability().expect("x/a", "x/a", False).expect("x/c", "x/a", False)
    k8s.validate(reach, 80)


def test_pod_selector_and_namespace_selector(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on PodSelector and NamespaceSelector"""
    rule = {"from": [{"namespaceSelector": ns_in("NotIn", "x"), "podSelector": labels(pod="b")}]}
    k8s.create_policy("x", policy("allow-ns-y-podselector-and-nsselector", POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False)
    k8s.validate(reach.expect("y/b", "x/a", True).expect("z/b", "x/a", True), 80)


def test_multiple_pod_selectors_and_namespace_selectors(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on Multiple PodSelectors and NamespaceSelectors"""
    pods = {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["b", "c"]}]}
    rule = {"from": [{"namespaceSelector": ns_in("NotIn", "x"), "podSelector": pods}]}
    k8s.create_policy("x", policy("allow-ns-y-z-pod-b-c", POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect("y/a", "x/a", False).expect("z/a", "x/a", False), 80)


def test_any_pod_selectors(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on any PodSelectors"""
    rule = {"from": [{"podSelector": labels(pod="b")}, {"podSelector": labels(pod="c")}]}
    k8s.create_policy("x", policy("allow-ns-x-pod-b-c", POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False)
    k8s.validate(reach.expect("x/b", "x/a", True).expect("x/c", "x/a", True), 80)


def test_only_from_pod_in_other_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector"""
    rule = {"from": [{"namespaceSelector": ns_is("y"), "podSelector": POD_A}]}
    name = "allow-ns-y-pod-a-via-namespace-pod-selector"
    k8s.create_policy("x", policy(name, POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False).expect("y/a", "x/a", True)
    k8s.validate(reach, 80)


def _allow_y_on(port: int, name: str) -> dict[str, Any]:
    rule = {
        "from": [{"namespaceSelector": ns_is("y")}],
        "ports": [{"port": port, "protocol": "TCP"}],
    }
    return policy(name, POD_A, ingress=[rule])


def _only_y_to_xa() -> Reachability:
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    reach.expect_peer(Peer("y"), Peer("x", "a"), True)
    return reach.expect_peer(Peer("z"), Peer("x", "a"), False)


def test_ports(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on Ports"""
    k8s.create_policy("x", _allow_y_on(81, "allow-client-a-via-ns-selector"))
    k8s.validate(_only_y_to_xa(), 81)


def test_stacked_policies(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce multiple, stacked policies with overlapping podSelectors"""
    k8s.create_policy("x", _allow_y_on(81, "allow-client-a-via-ns-selector"))
    k8s.validate(_only_y_to_xa(), 81)
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 80)
    k8s.create_policy("x", _allow_y_on(80, "allow-client-a-via-ns-selector-80"))
    k8s.validate(_only_y_to_xa(), 80)


def test_allow_all(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should support allow-all policy"""
    k8s.create_policy("x", policy("allow-all", {}, ingress=[{}]))
    k8s.validate(Reachability(), 80)
    k8s.validate(Reachability(), 81)


def test_ingress_on_one_named_port(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow ingress access on one named port"""
    k8s.create_policy("x", policy("allow-all", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}]))
    k8s.validate(Reachability(), 81)
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 80)


def test_ingress_from_namespace_on_one_named_port(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow ingress access from namespace on one named port"""
    rule = {
        "from": [{"namespaceSelector": ns_is("y")}],
        "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}],
    }
    k8s.create_policy("x", policy("allow-client-a-via-ns-selector-80", POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x", "a"), False), 80)
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 81)


def test_egress_on_one_named_port(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow egress access on one named port"""
    k8s.create_policy(
        "x", policy("allow-egress", {}, egress=[{"ports": [{"port": "serve-80-tcp"}]}])
    )
    k8s.validate(Reachability(), 80)
    k8s.validate(Reachability().expect_peer(Peer("x"), Peer(), False), 81)


def test_updated_policy(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce updated policy"""
    allow = policy("allow-all-mutate-to-deny-all", {}, ingress=[{}])
    k8s.create_policy("x", allow)
    k8s.validate(Reachability(), 81)
    allow["spec"]["ingress"] = []
    k8s.create_policy("x", allow)
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 81)


def test_ingress_from_updated_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow ingress access from updated namespace"""
    rule = {"from": [{"namespaceSelector": labels(ns2="updated")}]}
    k8s.create_policy("x", policy("allow-client-a-via-ns-selector", POD_A, ingress=[rule]))
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 80)
    k8s.add_namespace_label("y", "ns2", "updated")
    reach = Reachability().expect_all_ingress("x/a", False)
    k8s.validate(reach.expect_peer(Peer("y"), Peer(), True), 80)


def test_ingress_from_updated_pod(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow ingress access from updated pod"""
    rule = {"from": [{"podSelector": labels(pod="b", pod2="updated")}]}
    k8s.create_policy("x", policy("allow-client-a-via-pod-selector", POD_A, ingress=[rule]))
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 80)
    k8s.add_pod_labels("x", "b", {"pod2": "updated"})
    reach = Reachability().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
    k8s.validate(reach, 80)


def test_deny_ingress_from_other_namespaces(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should deny ingress from pods on other namespaces"""
    rule = {"from": [{"podSelector": {"matchLabels": {}}}]}
    k8s.create_policy("x", policy("deny-empty-policy", {}, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("y"), Peer("x"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x"), False), 80)


def test_deny_ingress_to_updated_pod(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should deny ingress access to updated pod"""
    k8s.create_policy("x", policy("deny-ingress-via-label-selector", labels(target="isolated"), []))
    k8s.validate(Reachability(), 80)
    k8s.add_pod_labels("x", "a", {"target": "isolated"})
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 80)


def test_deny_egress_by_pod_selector(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should deny egress from pods based on PodSelector"""
    k8s.create_policy("x", policy("deny-egress-pod-a", POD_A, egress=[]))
    k8s.validate(Reachability().expect_all_egress("x/a", False), 80)


def test_deny_egress_from_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should deny egress from all pods in a namespace"""
    k8s.create_policy("x", policy("deny-egress-ns-x", {}, egress=[]))
    k8s.validate(Reachability().expect_peer(Peer("x"), Peer(), False), 80)


def test_ingress_and_egress_together(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should work with Ingress, Egress specified together"""
    ingress = [{"from": [{"podSelector": labels(pod="b")}]}]
    egress = [{"ports": [{"port": 80}]}]
    pol = policy("allow-client-a-via-pod-selector", POD_A, ingress=ingress, egress=egress)
    pol["spec"]["policyTypes"] = ["Egress", "Ingress"]
    k8s.create_policy("x", pol)
    reach = Reachability().expect_all_ingress("x/a", False).expect("x/b", "x/a", True)
    k8s.validate(reach, 80)
    reach = Reachability().expect_all_ingress("x/a", False).expect_all_egress("x/a", False)
    k8s.validate(reach.expect("x/b", "x/a", True), 81)


def test_egress_denied_on_client_side(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)"""
    to_ya = {"to": [{"namespaceSelector": ns_is("y"), "podSelector": POD_A}]}
    k8s.create_policy("x", policy("allow-to-ns-y-pod-a", POD_A, egress=[to_ya]))
    from_xa = {"from": [{"namespaceSelector": ns_is("x"), "podSelector": POD_A}]}
    k8s.create_policy("y", policy("allow-from-xa-on-ya-match-selector", POD_A, [from_xa]))
    k8s.create_policy("y", policy("allow-from-xa-on-yb-match-selector", labels(pod="b"), [from_xa]))
    reach = Reachability().expect_peer(Peer("x", "a"), Peer(), False)
    reach.expect_peer(Peer(), Peer("y", "a"), False)
    reach.expect_peer(Peer("x", "a"), Peer("y", "a"), True)
    k8s.validate(reach.expect_peer(Peer(), Peer("y", "b"), False), 80)


def test_egress_to_pod_in_other_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector"""
    to_ya = {"to": [{"namespaceSelector": ns_is("y"), "podSelector": POD_A}]}
    k8s.create_policy("x", policy("allow-to-ns-y-pod-a", POD_A, egress=[to_ya]))
    reach = Reachability().expect_all_egress("x/a", False).expect("x/a", "y/a", True)
    k8s.validate(reach, 80)


def test_ingress_any_port_on_one_protocol(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce ingress policy allowing any port traffic to a server on a specific protocol"""
    rule = {"ports": [{"protocol": "TCP"}]}
    k8s.create_policy("x", policy("allow-ingress-by-proto", POD_A, ingress=[rule]))
    k8s.validate(Reachability(), 80)
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x", "a"), False), 80, "UDP")


def test_ingress_allow_all_takes_precedence(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce multiple ingress policies with ingress allow-all policy taking precedence"""
    k8s.create_policy("x", policy("allow-ingress-port-80", {}, ingress=[{"ports": [{"port": 80}]}]))
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 81)
    k8s.create_policy("x", policy("allow-ingress", {}, ingress=[{}]))
    k8s.validate(Reachability(), 81)


def test_egress_allow_all_takes_precedence(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce multiple egress policies with egress allow-all policy taking precedence"""
    k8s.create_policy("x", policy("allow-egress-port-80", {}, egress=[{"ports": [{"port": 80}]}]))
    k8s.validate(Reachability().expect_peer(Peer("x"), Peer(), False), 81)
    k8s.create_policy("x", policy("allow-egress", {}, egress=[{}]))
    k8s.validate(Reachability(), 81)


def test_stop_enforcing_after_delete(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should stop enforcing policies after they are deleted"""
    k8s.create_policy("x", policy("deny-all", {}, ingress=[], egress=[]))
    reach = Reachability().expect_peer(Peer("x"), Peer(), False)
    k8s.validate(reach.expect_peer(Peer(), Peer("x"), False), 80)
    k8s.lab.delete(k8s.lab.get("networkpolicies", None, "x"))
    k8s.validate(Reachability(), 80)


def test_egress_to_cidr_block(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should allow egress access to server in CIDR block"""
    rule = {"to": [{"ipBlock": {"cidr": f"{k8s.pod_ip('y/b')}/32"}}]}
    k8s.create_policy("x", policy("allow-client-a-via-cidr-egress-rule", POD_A, egress=[rule]))
    reach = Reachability().expect_all_egress("x/a", False).expect("x/a", "y/b", True)
    k8s.validate(reach, 80)


def test_except_clause_in_cidr_block(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce except clause while egress access to server in CIDR block"""
    block = {"cidr": f"{k8s.pod_ip('x/a')}/4", "except": [f"{k8s.pod_ip('x/b')}/32"]}
    rule = {"to": [{"ipBlock": block}]}
    k8s.create_policy("x", policy("allow-client-a-via-cidr-egress-rule", POD_A, egress=[rule]))
    k8s.validate(Reachability().expect("x/a", "x/b", False), 80)


def test_ip_in_cidr_and_except_is_allowed(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed"""
    xb = f"{k8s.pod_ip('x/b')}/32"
    block = {"cidr": f"{k8s.pod_ip('x/a')}/4", "except": [xb]}
    name = "allow-client-a-via-cidr-egress-rule"
    k8s.create_policy("x", policy(name, POD_A, egress=[{"to": [{"ipBlock": block}]}]))
    k8s.validate(Reachability().expect("x/a", "x/b", False), 80)
    k8s.create_policy("x", policy(name, POD_A, egress=[{"to": [{"ipBlock": {"cidr": xb}}]}]))
    reach = Reachability().expect_all_egress("x/a", False).expect("x/a", "x/b", True)
    k8s.validate(reach, 80)


def test_ingress_and_egress_independent(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector"""
    k8s.create_policy("x", policy("allow-egress-for-target", POD_A, egress=[{}]))
    k8s.validate(Reachability(), 80)
    k8s.create_policy("x", policy("deny-ingress-via-label-selector", POD_A, ingress=[]))
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 80)


def test_sctp_is_not_tcp(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"""
    k8s.create_policy("x", policy("deny-ingress", {}, ingress=[]))
    rule = {"ports": [{"port": 81, "protocol": "SCTP"}]}
    k8s.create_policy("x", policy("allow-only-sctp-ingress-on-port-81", POD_A, ingress=[rule]))
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 81)


def test_sctp_policy_isolates(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP"""
    rule = {"ports": [{"port": 80, "protocol": "SCTP"}]}
    k8s.create_policy("x", policy("allow-only-sctp-ingress-on-port-80", POD_A, ingress=[rule]))
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 81)


def test_udp_only_policy_blocks_tcp(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should not allow access by TCP when a policy specifies only UDP"""
    rule = {"ports": [{"port": 81, "protocol": "UDP"}]}
    k8s.create_policy("x", policy("allow-only-udp-ingress-on-port-81", POD_A, ingress=[rule]))
    k8s.validate(Reachability().expect_all_ingress("x/a", False), 81)


def test_default_namespace_label_match_labels(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label"""
    rule = {"from": [{"namespaceSelector": ns_is("y")}]}
    name = "allow-client-a-via-ns-selector-for-immutable-ns-label"
    k8s.create_policy("x", policy(name, POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x", "a"), False), 80)


def test_default_namespace_label_match_expressions(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on NamespaceSelector with MatchExpressions using default ns label"""
    rule = {"to": [{"namespaceSelector": ns_in("NotIn", "y")}]}
    name = "allow-ns-y-match-selector-for-immutable-ns-label"
    k8s.create_policy("x", policy(name, POD_A, egress=[rule]))
    k8s.validate(Reachability().expect_peer(Peer("x", "a"), Peer("y"), False), 80)


def test_udp_default_deny_ingress(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should support a 'default-deny-ingress' policy

    The UDP context ("NetworkPolicy between server and client using UDP")."""
    k8s.create_policy("x", policy("deny-all", {}, ingress=[]))
    k8s.validate(Reachability().expect_peer(Peer(), Peer("x"), False), 80, "UDP")


def test_udp_ports(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy based on Ports

    The UDP context ("NetworkPolicy between server and client using UDP")."""
    rule = {"from": [{"namespaceSelector": ns_is("y")}], "ports": [{"port": 81, "protocol": "UDP"}]}
    k8s.create_policy("x", policy("allow-ingress-on-port-81-ns-x", POD_A, ingress=[rule]))
    reach = Reachability().expect_peer(Peer("x"), Peer("x", "a"), False)
    k8s.validate(reach.expect_peer(Peer("z"), Peer("x", "a"), False), 81, "UDP")


def test_udp_only_from_pod_in_other_namespace(k8s):
    """e2e test/e2e/network/netpol/network_policy.go: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector

    The UDP context ("NetworkPolicy between server and client using UDP")."""
    rule = {"from": [{"namespaceSelector": ns_is("y"), "podSelector": POD_A}]}
    name = "allow-ns-y-pod-a-via-namespace-pod-selector"
    k8s.create_policy("x", policy(name, POD_A, ingress=[rule]))
    reach = Reachability().expect_all_ingress("x/a", False).expect("y/a", "x/a", True)
    k8s.validate(reach, 80, "UDP")
