"""CiliumNetworkPolicy (L3/L4) as NetworkPolicy semantics, and its enforcement rules at each
pod's side: every field the lab models, against the verdicts of labkit.model.netpol."""

from __future__ import annotations

import pytest

from labkit.errors import LabError
from labkit.manifests import problems
from labkit.model.ciliumpolicy.translate import as_network_policies
from labkit.model.netpol.endpoints import endpoint
from labkit.model.netpol.policies import PolicyError
from labkit.model.netpol.verdicts import PolicySet
from labkit.sandbox.ciliumpolicy import (
    denied_comment,
    endpoint_policy_rules,
    policy_set,
)

POD_CIDR, NODE_CIDR = "10.244.0.0/16", "172.18.0.0/16"


def cnp(spec, name="p", namespace="prod", **more):
    doc = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        **({"spec": spec} if spec is not None else {}),
        **more,
    }
    return doc


def pod(name, ns, ip, **labels):
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {"podIP": ip, "phase": "Running"},
    }


WEB = pod("web", "prod", "10.244.1.10", app="web")
API = pod("api", "prod", "10.244.2.11", app="api")
OTHER = pod("client", "dev", "10.244.2.12", app="client")
NAMESPACES = [
    {"metadata": {"name": "prod", "labels": {"kubernetes.io/metadata.name": "prod"}}},
    {"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev", "env": "dev"}}},
]
EVERY = [endpoint(p) for p in (WEB, API, OTHER)]
OUTSIDE = {"ip": "192.0.2.10"}
NODE = {"ip": "172.18.0.3"}


def verdicts(doc, pairs):
    """Whether each (src, dst, port, protocol) flow is allowed under the translated policy."""
    ps = PolicySet(NAMESPACES, as_network_policies(doc, POD_CIDR, NODE_CIDR))
    return [ps.verdict(s, d, port, proto).allowed for s, d, port, proto in pairs]


# --------------------------------------------------------------------------- the schema


def test_the_schema_takes_a_documented_policy_and_refuses_unknown_fields():
    """The L3/L4 examples of Cilium's docs ("Layer 3 Examples", "Layer 4 Examples") validate;
    an unknown field, a bad entity, a numeric port and a missing endpointSelector are refused
    as the CRD's structural schema refuses them."""
    good = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"k8s:app": "api"}}],
                    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                },
                {"fromEntities": ["world"]},
                {"fromCIDRSet": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}]},
            ],
            "egress": [{"toCIDR": ["198.51.100.0/24"]}],
        }
    )
    assert problems(good) == []
    bad = [
        cnp({"endpointSelector": {}, "ingress": [{"fromPods": []}]}),
        cnp({"endpointSelector": {}, "ingress": [{"fromEntities": ["everyone"]}]}),
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": 80}]}]}]}),
        cnp({"ingress": []}),
    ]
    for doc in bad:
        assert len(problems(doc)) == 1, doc


KIND_ONLY = [
    ({"ingressDeny": [{"fromEntities": ["world"]}]}, "spec.ingressDeny", "ingressDeny"),
    (
        {"egress": [{"toFQDNs": [{"matchName": "example.com"}]}]},
        r"spec.egress\[0\].toFQDNs",
        "toFQDNs",
    ),
    (
        {
            "egress": [
                {
                    "toEndpoints": [{}],
                    "toPorts": [
                        {
                            "ports": [{"port": "53", "protocol": "UDP"}],
                            "rules": {"dns": [{"matchPattern": "*"}]},
                        }
                    ],
                }
            ]
        },
        r"spec.egress\[0\].toPorts\[0\].rules.dns",
        "dns rules",
    ),
    (
        {"egressDeny": [{"toServices": [{"k8sService": {"serviceName": "db"}}]}]},
        "spec.egressDeny",
        "egressDeny",
    ),
    ({"ingress": [{"icmps": [{"fields": [{"type": 8}]}]}]}, r"spec.ingress\[0\].icmps", "icmps"),
    (
        {"ingress": [{"fromCIDRSet": [{"cidrGroupRef": "office"}]}]},
        r"spec.ingress\[0\].fromCIDRSet\[0\].cidrGroupRef",
        "fromCIDRSet.cidrGroupRef",
    ),
    (
        {"ingress": [{"toPorts": [{"ports": [{"port": "0", "protocol": "VRRP"}]}]}]},
        r"toPorts\[0\].ports\[0\].protocol VRRP",
        "protocol VRRP",
    ),
    (
        {"ingress": [{"toPorts": [{"ports": [{"port": "443"}], "serverNames": ["a.io"]}]}]},
        r"toPorts\[0\].serverNames",
        "serverNames",
    ),
    (
        {"enableDefaultDeny": {"egress": False}, "egress": [{}]},
        "spec.enableDefaultDeny",
        "enableDefaultDeny",
    ),
]


@pytest.mark.parametrize(("spec", "path", "field"), KIND_ONLY)
def test_cilium_crd_fields_the_sandbox_does_not_model_validate_and_are_refused_on_apply(
    spec, path, field
):
    """Cilium 1.20's CRD (pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml)
    accepts deny rules, toFQDNs, DNS rules (PortRuleDNS), icmps, CIDR groups, VRRP, SNI and
    enableDefaultDeny, so the shared schema (used on Kind too) takes them; the sandbox, which
    does not enforce them, refuses the policy naming the field and the Kind fix."""
    doc = cnp({"endpointSelector": {"matchLabels": {"app": "web"}}, **spec})
    assert problems(doc) == []
    with pytest.raises(LabError, match=path) as err:
        policy_set(NAMESPACES, [], [doc])
    assert err.value.fix.startswith(
        f"Use a Kind lab with Cilium (make lab CNI=cilium BACKEND=kind) for {field},"
    )


def test_the_crds_structure_refuses_what_cilium_would_refuse():
    """The CRD's anyOf/oneOf: a spec needs one of ingress, ingressDeny, egress, egressDeny and
    exactly one of endpointSelector and nodeSelector; a deny rule's toPorts holds only ports,
    a CIDR set entry exactly one of cidr, cidrGroupRef, cidrGroupSelector, toFQDNs one of
    matchName and matchPattern, and toRequires is deprecated to an empty list."""
    sel = {"endpointSelector": {}}
    bad = [
        cnp(sel),
        cnp({"endpointSelector": {}, "nodeSelector": {}, "ingress": [{}]}),
        cnp({**sel, "egressDeny": [{"toPorts": [{"rules": {"http": [{}]}}]}]}),
        cnp({**sel, "ingress": [{"fromCIDRSet": [{"cidr": "10.0.0.0/8", "cidrGroupRef": "g"}]}]}),
        cnp({**sel, "egress": [{"toFQDNs": [{"matchName": "a.io", "matchPattern": "*.a.io"}]}]}),
        cnp({**sel, "egress": [{"toFQDNs": [{"matchName": "a b"}]}]}),
        cnp({**sel, "egress": [{"toRequires": ["x"]}]}),
        cnp({**sel, "ingressDeny": [{"authentication": {"mode": "required"}}]}),
        cnp(
            {
                **sel,
                "egress": [{"toPorts": [{"rules": {"http": [{}], "dns": [{"matchName": "a"}]}}]}],
            }
        ),
    ]
    for doc in bad:
        assert problems(doc), doc


# --------------------------------------------------------------------------- semantics


def test_from_endpoints_allows_only_the_selected_pods_of_the_policys_namespace():
    """An endpoint selector without the namespace label matches the policy's namespace only
    (Cilium docs, "Namespaces"); toPorts limits the allowed ports."""
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "api"}}],
                    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                }
            ],
        }
    )
    assert verdicts(
        doc,
        [
            (API, WEB, 8080, "TCP"),
            (API, WEB, 9090, "TCP"),
            (API, WEB, 8080, "UDP"),
            (OTHER, WEB, 8080, "TCP"),
            (WEB, API, 8080, "TCP"),
        ],
    ) == [True, False, False, False, True]


def test_the_namespace_label_and_namespace_labels_reach_other_namespaces():
    """``k8s:io.kubernetes.pod.namespace`` and ``io.cilium.k8s.namespace.labels.<l>`` select
    pods of other namespaces (pkg/k8s/apis/cilium.io/const.go PodNamespaceLabel,
    PodNamespaceMetaLabels)."""
    by_name = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "dev"}}]}
            ],
        }
    )
    by_label = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "fromEndpoints": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "io.cilium.k8s.namespace.labels.env",
                                    "operator": "In",
                                    "values": ["dev"],
                                }
                            ]
                        }
                    ]
                }
            ],
        }
    )
    pairs = [(OTHER, WEB, 80, "TCP"), (API, WEB, 80, "TCP")]
    assert verdicts(by_name, pairs) == [True, False]
    assert verdicts(by_label, pairs) == [True, False]


def test_an_empty_rule_is_default_deny_and_a_ports_only_rule_allows_every_peer():
    """``ingress: [{}]`` selects and allows nothing (Cilium's default deny); a rule with toPorts
    and no peer allows every peer on those ports; a section left out isolates nothing."""
    deny = cnp({"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]})
    ports_only = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"toPorts": [{"ports": [{"port": "8080"}]}]}],
        }
    )
    pairs = [(API, WEB, 8080, "TCP"), (OUTSIDE, WEB, 8080, "UDP"), (API, WEB, 80, "TCP")]
    assert verdicts(deny, pairs) == [False, False, False]
    assert verdicts(ports_only, pairs) == [True, True, False]
    assert verdicts(deny, [(WEB, API, 80, "TCP")]) == [True]  # egress not isolated


@pytest.mark.parametrize(
    "entity,allowed",
    [
        ("world", [True, False, False]),
        ("cluster", [False, True, True]),
        ("host", [False, True, False]),
        ("remote-node", [False, True, False]),
        ("all", [True, True, True]),
        ("none", [False, False, False]),
    ],
)
def test_entities(entity, allowed):
    """pkg/policy/api/entity.go: world is outside the cluster, cluster every endpoint and node,
    host and remote-node the nodes (both the node network here), all everything."""
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"fromEntities": [entity]}],
        }
    )
    pairs = [(OUTSIDE, WEB, 80, "TCP"), (NODE, WEB, 80, "TCP"), (OTHER, WEB, 80, "TCP")]
    assert verdicts(doc, pairs) == allowed


def test_cidr_sets_ports_ranges_any_and_named_ports():
    """toCIDRSet with except, a port range (endPort), protocol ANY (TCP and UDP), port "0"
    (every port) and a named port resolved at the destination."""
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "api"}},
            "egress": [
                {
                    "toCIDRSet": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.10/32"]}],
                    "toPorts": [{"ports": [{"port": "80", "endPort": 90}]}],
                },
                {
                    "toEndpoints": [{"matchLabels": {"app": "web"}}],
                    "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}],
                },
                {
                    "toCIDR": ["198.51.100.0/24"],
                    "toPorts": [{"ports": [{"port": "0", "protocol": "UDP"}]}],
                },
            ],
        }
    )
    far = {"ip": "192.0.2.20"}
    dns = {"ip": "198.51.100.7"}
    assert verdicts(
        doc,
        [
            (API, far, 85, "TCP"),
            (API, far, 85, "UDP"),
            (API, far, 91, "TCP"),
            (API, OUTSIDE, 80, "TCP"),
            (API, WEB, 8080, "TCP"),
            (API, WEB, 80, "TCP"),
            (API, dns, 5353, "UDP"),
            (API, dns, 5353, "TCP"),
        ],
    ) == [True, True, False, False, True, False, True, False]


def test_specs_are_each_a_policy_and_unmodelled_fields_are_refused():
    """``specs`` holds several rules (each its own policy); HTTP rules admit the port at L3/L4
    (the agent's proxy judges the requests); other L7 rules and entities the lab does not model
    are refused with the fix, never stored unenforced."""
    doc = cnp(
        None,
        specs=[
            {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]},
            {"endpointSelector": {"matchLabels": {"app": "api"}}, "egress": [{}]},
        ],
    )
    names = [d["metadata"]["name"] for d in as_network_policies(doc, POD_CIDR, NODE_CIDR)]
    assert names == ["cnp:p#0", "cnp:p#1"]

    def l7(rules: dict) -> dict:
        to_ports = [{"ports": [{"port": "80"}], "rules": rules}]
        return cnp({"endpointSelector": {}, "ingress": [{"toPorts": to_ports}]})

    (http,) = as_network_policies(l7({"http": [{"method": "GET"}]}), POD_CIDR, NODE_CIDR)
    assert {p["protocol"] for p in http["spec"]["ingress"][0]["ports"]} == {"TCP", "UDP"}
    with pytest.raises(PolicyError, match=r"spec.ingress\[0\].toPorts\[0\].rules.dns is not"):
        as_network_policies(l7({"dns": [{"matchPattern": "*"}]}), POD_CIDR, NODE_CIDR)
    with pytest.raises(PolicyError, match=r"rules.http\[0\].method '\(' is not a regular"):
        as_network_policies(l7({"http": [{"method": "("}]}), POD_CIDR, NODE_CIDR)
    apiserver = cnp({"endpointSelector": {}, "egress": [{"toEntities": ["kube-apiserver"]}]})
    with pytest.raises(LabError, match="kube-apiserver"):
        policy_set(NAMESPACES, [], [apiserver])


# --------------------------------------------------------------------------- rules at the pod


def test_endpoint_rules_accept_what_the_model_allows_and_end_in_one_drop():
    """Per endpoint, as Cilium's bpf_lxc enforces it: established flows, the pod itself and its
    node (allow-localhost) first, one ACCEPT per allowed address and port naming the policy, and
    one DROP per direction; a pod no policy isolates gets empty chains."""
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "api"}}],
                    "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}],
                },
                {"fromCIDRSet": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.10/32"]}]},
            ],
        }
    )
    ps = policy_set(NAMESPACES, [], [doc])
    rules = endpoint_policy_rules(WEB, EVERY, ps, ("172.18.0.3", "10.244.1.1"))["filter"]
    assert "-A INPUT -j CILIUM_POL_IN" in rules and "-A OUTPUT -j CILIUM_POL_OUT" in rules
    accept = (
        "-A CILIUM_POL_IN -s 10.244.2.11/32 -p tcp -m tcp --dport 8080 "
        '-m comment --comment "prod/cnp:p ingress[0]" -j ACCEPT'
    )
    assert accept in rules
    assert (
        '-A CILIUM_POL_IN -s 172.18.0.3/32 -m comment --comment "cilium: allow-localhost" -j ACCEPT'
        in rules
    )
    drops = [r for r in rules if r.endswith("-j DROP")]
    assert len(drops) == 1 and denied_comment("ingress") in drops[0]
    block = next(r for r in rules if "-s 192.0.2.0/24" in r)
    sub = block.split("-j ")[-1]
    assert f"-A {sub} -s 192.0.2.10/32 -j RETURN" in rules and f"-A {sub} -j ACCEPT" in rules
    assert not any(r.startswith("-A CILIUM_POL_OUT") for r in rules)
    quiet = endpoint_policy_rules(API, EVERY, ps, ("172.18.0.4", "10.244.2.1"))["filter"]
    assert not any(r.startswith("-A CILIUM_POL") for r in quiet)


def test_egress_to_a_named_port_without_peers_is_resolved_at_each_destination():
    """NetworkPolicy egress ``ports: [{port: http}]`` with no ``to`` (e2e netpol "should allow
    egress access on one named port"): every destination that names the port is allowed on its
    number, nothing else."""
    np = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "named", "namespace": "prod"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "http"}]}],
        },
    }
    ps = policy_set(NAMESPACES, [np], [])
    rules = endpoint_policy_rules(WEB, EVERY, ps, ())["filter"]
    allowed = [r for r in rules if r.startswith("-A CILIUM_POL_OUT -d")]
    assert sorted(r.split()[3] for r in allowed) == ["10.244.2.11/32", "10.244.2.12/32"]
    assert all("--dport 8080" in r for r in allowed)
