"""The grid's "why" for one flow (labkit.model.netpol.verdicts.why): every kind of side, and
every combination of the two sides, read from the verdict the model gives."""

from __future__ import annotations

import itertools

import pytest
from test_netpol import API, DB, NAMESPACES, OUT, WEB, labels, policy

from labkit.model.netpol.verdicts import PolicySet, why

DENY_DB = policy("deny-db", "prod", podSelector=labels(app="db"), ingress=[])
DB_FROM_API = policy(
    "db-from-api",
    "prod",
    podSelector=labels(app="db"),
    ingress=[{"from": [{"podSelector": labels(app="api")}]}],
)
WEB_EGRESS_NONE = policy("web-quiet", "prod", podSelector=labels(app="web"), policyTypes=["Egress"])
WEB_EGRESS_DB = policy(
    "web-to-db",
    "prod",
    podSelector=labels(app="web"),
    policyTypes=["Egress"],
    egress=[{}, {"to": [{"podSelector": labels(app="db")}]}],
)


def lines(policies, src, dst, port=5432):
    return why(PolicySet(NAMESPACES, policies).verdict(src, dst, port))


def test_no_policy_selects_either_pod():
    """Kubernetes docs, Network Policies, 'The two sorts of pod isolation': a pod no policy
    selects is non-isolated, and all traffic is allowed."""
    assert lines([], WEB, DB) == (
        "egress at prod/web: no policy selects the pod for egress, so it is allowed",
        "ingress at prod/db: no policy selects the pod for ingress, so it is allowed",
    )


def test_a_selecting_policy_without_a_matching_rule_blocks():
    """k8s.io/api networking/v1 types.go NetworkPolicySpec.Ingress: an empty list of rules
    selects the pod and allows no traffic."""
    assert lines([DENY_DB], WEB, DB)[1] == (
        "ingress at prod/db: blocked, selected by prod/deny-db and no ingress rule matches"
    )


def test_the_allowing_rule_is_named_by_policy_direction_and_index():
    """NetworkPolicySpec: rules of all policies selecting the pod are OR-ed; the one that
    matches the peer (NetworkPolicyPeer podSelector) and port is the reason."""
    assert lines([DENY_DB, DB_FROM_API], API, DB)[1] == (
        "ingress at prod/db: allowed by rule prod/db-from-api ingress[0] "
        "(the pod is selected by prod/db-from-api, prod/deny-db)"
    )
    assert lines([WEB_EGRESS_DB], WEB, DB)[0] == (
        "egress at prod/web: allowed by rule prod/web-to-db egress[0], prod/web-to-db egress[1] "
        "(the pod is selected by prod/web-to-db)"
    )


def test_an_address_outside_the_cluster_is_no_pod():
    """NetworkPolicy selects pods only (podSelector); an ipBlock peer is not a subject."""
    assert lines([], WEB, OUT, 443)[1] == "ingress at 203.0.113.9: not a pod, no policy selects it"


def test_a_pod_reaching_itself_is_one_line():
    """Kubernetes docs, Network Policies, 'What you can't do': traffic of a pod to itself
    (loopback) cannot be blocked."""
    assert lines([DENY_DB], DB, DB) == ("prod/db reaches itself over loopback: no policy applies",)


@pytest.mark.parametrize(
    "policies",
    [
        list(chosen)
        for n in range(4)
        for chosen in itertools.combinations(
            [DENY_DB, DB_FROM_API, WEB_EGRESS_NONE, WEB_EGRESS_DB], n
        )
    ],
    ids=lambda ps: "+".join(p["metadata"]["name"] for p in ps) or "none",
)
def test_every_combination_says_one_line_per_side_agreeing_with_the_verdict(policies):
    """Whatever the policies, each side's line says blocked exactly when the model blocked
    that side (verdicts.py SideVerdict.allowed), and names each policy that selects it."""
    flow = PolicySet(NAMESPACES, policies).verdict(WEB, DB, 5432)
    egress, ingress = why(flow)
    for line, side in ((egress, flow.egress), (ingress, flow.ingress)):
        assert ("blocked" in line) == (not side.allowed), line
        assert all(name in line for name in side.isolated_by), line
        assert ("no policy selects the pod" in line) == (not side.isolated), line
