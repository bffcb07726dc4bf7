"""policy_matrix: observed table vs expected (model or learner), each differing cell explained;
"cannot grade here" on a CNI without policy enforcement; helpers."""

from __future__ import annotations

import pytest

from labkit.checks.matrix import _expected_from, policy_matrix
from labkit.checks.policy import humanize, not_enforced_note, passed_policy
from labkit.checks.targets import PodNames
from labkit.errors import LabError
from labkit.lab import Probe

pytestmark = pytest.mark.usefixtures("fast_clock")

API_FROM_FE = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "api-from-frontend", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"tier": "api"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"tier": "frontend"}}}],
                "ports": [{"port": 8080}],
            }
        ],
    },
}
DB_FROM_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "db-from-api", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"tier": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
    },
}
DB_FROM_API = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "db-from-api", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"tier": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"tier": "api"}}}], "ports": [{"port": 8080}]}
        ],
    },
}
PODS = ["default/fe", "default/api", {"namespace": "default", "selector": "tier=db"}]
INTENT = {
    "default/fe -> default/api": "allowed",
    "default/api -> default/db": True,
    "default/fe -> default/db": "blocked",
    ("default/db", "default/api"): False,
}


def tiers(fakes, *policies, enforce=True, cni="calico", db_name="db-7b9c8d6f5a-qwert"):
    objects = [
        fakes.namespace("default"),
        fakes.pod("fe", "10.244.1.10", labels={"tier": "frontend"}),
        fakes.pod(
            "api",
            "10.244.1.11",
            labels={"tier": "api"},
            ports=((8080, "TCP", "http"), (9090, "TCP", "metrics")),
        ),
        fakes.pod(db_name, "10.244.2.12", labels={"tier": "db"}, owner="db"),
        *policies,
    ]
    return fakes.FakeLab(objects, enforce=enforce, cni=cni)


def test_matrix_passes_when_the_data_plane_follows_the_intent(fakes):
    r = policy_matrix(tiers(fakes, API_FROM_FE, DB_FROM_API), PODS, [8080], INTENT)
    assert r.verdict == "pass", r
    assert "9 of 9 cells as expected (converged after 1 attempt)" in str(r)


def test_matrix_table_is_cyclonus_like_and_hash_free(fakes):
    r = policy_matrix(tiers(fakes, API_FROM_FE, DB_FROM_API), PODS, [8080], INTENT)
    table = next(s for s in r.steps if s.action.startswith("reachability")).evidence
    assert table[0].split() == ["1", "2", "3"]
    assert table[1].split() == ["default/api", ".", ".", ".", "(1)"]
    assert table[2].split() == ["default/db#1", "X", ".", ".", "(2)"]
    assert table[3].split() == ["default/fe", ".", "X", ".", "(3)"]
    assert "7b9c8d6f5a" not in str(r)


def test_too_open_db_is_caught_and_explained(fakes):
    r = policy_matrix(tiers(fakes, API_FROM_FE, DB_FROM_ALL), PODS, [8080], INTENT, wait=2)
    assert r.verdict == "fail" and "should be blocked gets through" in r.hint
    cell = next(s for s in r.steps if s.action == "default/fe -> default/db#1:8080/TCP")
    assert cell.ok is False
    assert cell.observed.startswith("observed connected, expected blocked; model: allowed:")
    assert "ingress allowed by default/db-from-api" in cell.observed
    assert "X!" not in str(r) and ".!" in str(r)
    assert r.data["expected"]["default/fe -> default/db#1:8080/TCP"] is False
    assert r.data["observed"]["default/fe -> default/db#1:8080/TCP"] == "connected"


def test_too_closed_is_caught_with_the_blocking_reason(fakes):
    r = policy_matrix(
        tiers(fakes, API_FROM_FE, DB_FROM_API),
        PODS,
        [8080],
        {**INTENT, "default/db -> default/api": "allowed"},
        wait=1,
    )
    assert (
        r.verdict == "fail" and r.failure == "timeout" and "should be allowed is dropped" in r.hint
    )
    assert "isolated for ingress by policy default/api-from-frontend" in str(r)


def test_no_expected_means_the_model_from_the_policies(fakes):
    r = policy_matrix(tiers(fakes, API_FROM_FE, DB_FROM_ALL), PODS, [8080])
    assert r.verdict == "pass"


def test_data_plane_disagreeing_with_the_model(fakes):
    lab = tiers(fakes, API_FROM_FE)
    lab.overrides[("default/api", "10.244.2.12", 8080)] = "timeout"
    r = policy_matrix(lab, PODS, [8080], wait=1)
    assert r.verdict == "fail"
    assert "observed timeout, the policies say allowed" in str(r)


def test_named_ports_are_resolved_per_destination(fakes):
    r = policy_matrix(tiers(fakes), PODS, ["metrics"])
    assert r.verdict == "pass"
    table = next(s for s in r.steps if s.action.startswith("reachability")).evidence
    assert table[1].split() == ["default/api", ".", "-", "-", "(1)"]


def test_refused_counts_as_past_the_policies(fakes):
    assert passed_policy(Probe("a", "b", 1, "TCP", "refused"))
    assert not passed_policy(Probe("a", "b", 1, "TCP", "timeout"))
    r = policy_matrix(tiers(fakes), PODS, [9090])
    assert (
        r.verdict == "pass"
        and " r "
        in next(s for s in r.steps if s.action.startswith("reachability")).evidence[2] + " "
    )


def test_flannel_cannot_grade_blocks(fakes):
    lab = tiers(fakes, API_FROM_FE, DB_FROM_API, enforce=False, cni="flannel")
    r = policy_matrix(lab, PODS, [8080], INTENT, wait=30)
    assert r.verdict == "partial" and "not enforced" in r.hint and "flannel" in r.hint
    assert "cells expected blocked: 2, not gradable" in str(r)
    assert sum(1 for c in lab.calls if c[0] == "probe") == 9, (
        "one look is enough where nothing can change"
    )


def test_flannel_still_grades_cells_expected_allowed(fakes):
    lab = tiers(fakes, enforce=False, cni="flannel")
    lab.overrides[("default/fe", "10.244.1.11", 8080)] = "timeout"
    r = policy_matrix(lab, PODS, [8080], INTENT, wait=1)
    assert r.verdict == "fail" and "data plane itself is broken" in r.hint


def test_flannel_with_nothing_blocked_is_a_real_pass(fakes):
    r = policy_matrix(tiers(fakes, enforce=False, cni="flannel"), PODS, [8080])
    assert r.verdict == "pass"


def test_missing_pods_fail_early(fakes):
    r = policy_matrix(tiers(fakes), ["default/fe", "default/ghost"], [8080])
    assert r.verdict == "fail" and "missing or not Running" in r.hint


@pytest.mark.parametrize(
    "expected, message",
    [
        ({"default/fe to default/api": True}, "is not 'src -> dst'"),
        ({"default/fe -> default/api": "maybe"}, "neither allowed nor blocked"),
        ({("a",): True}, "cannot be read"),
        ({"default/fe -> default/ghost": True}, "not in the matrix"),
        ({"default/fe -> default/api:9999": True}, "not in ports"),
    ],
)
def test_bad_expected_cells(fakes, expected, message):
    with pytest.raises(LabError, match=message):
        policy_matrix(tiers(fakes), PODS, [8080], expected)


def test_empty_inputs_are_refused(fakes):
    with pytest.raises(LabError, match="at least one pod"):
        policy_matrix(tiers(fakes), [], [80])
    with pytest.raises(LabError, match="at least one port"):
        policy_matrix(tiers(fakes), PODS, [])


def test_expected_forms():
    cells = _expected_from(
        {"a/x -> b/y:80": "connected", ("a/x", "b/y"): "deny", ("a/x", "b/y", "53/UDP"): "."}
    )
    assert cells == {
        ("a/x", "b/y", "80"): True,
        ("a/x", "b/y", None): False,
        ("a/x", "b/y", "53/UDP"): True,
    }


def test_humanize_replaces_pod_names_only(fakes):
    names = PodNames([fakes.pod("web-5d4f8c7b9d-abcde", "1.1.1.1", owner="web")])
    text = "blocked: default/web-5d4f8c7b9d-abcde is isolated by policy default/deny-all on 80/TCP"
    assert (
        humanize(text, names)
        == "blocked: default/web#1 is isolated by policy default/deny-all on 80/TCP"
    )


def test_not_enforced_note_mentions_cni_and_the_fix(fakes):
    lab = tiers(fakes, enforce=False, cni="flannel")
    note = not_enforced_note(lab)
    assert "flannel" in note and "--cni calico" in note and "Cannot grade" in note
