"""The registry and the self-test index: every check is registered and ships with a known-wrong
state and its fix; every manifest validates; every case's arguments fit its check. The cases run
for real in tests/sandbox/test_checks_live.py."""

from __future__ import annotations

import inspect

import pytest

from labkit import manifests
from labkit.checks import CHECKS, get_check, run_check, selftest
from labkit.checks.result import Result
from labkit.errors import LabError

CASES = selftest.cases()


def test_registry_names_every_check():
    assert sorted(CHECKS) == [
        "cni_identity",
        "diagnose",
        "dns_resolves",
        "external_to_service",
        "http_paths",
        "ingress_routes",
        "kube_proxy_rules",
        "pod_netns",
        "pod_to_pod",
        "pod_to_service",
        "policy_matrix",
        "service_health",
    ]
    for name, fn in CHECKS.items():
        assert inspect.signature(fn).return_annotation in (Result, "Result"), name
        assert fn.__doc__, name


def test_unknown_check_and_bad_arguments_are_lab_errors():
    with pytest.raises(LabError, match="no check named 'ping'"):
        get_check("ping")
    with pytest.raises(LabError, match="does not take 'target'") as err:
        run_check(object(), "pod_to_pod", {"src": "a", "target": "b"})
    assert "\n" not in err.value.what and "src, dst, port" in err.value.fix
    with pytest.raises(LabError, match="needs 'dst', 'port'"):
        run_check(object(), "pod_to_pod", {"src": "a"})


def test_every_check_has_a_wrong_and_a_fixed_state():
    covered = {c.check for c in CASES}
    assert covered == set(CHECKS)
    for case in CASES:
        assert case.wrong.verdict != "pass", case.name
        assert case.wrong.hint, case.name


def test_every_check_has_a_case_gradable_on_both_cnis():
    for check in CHECKS:
        cnis = {name for c in CASES if c.check == check for name in c.cnis or ("any",)}
        assert "any" in cnis or {"calico", "flannel", "cilium"} <= cnis, check


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_arguments_fit_the_check(case):
    inspect.signature(CHECKS[case.check]).bind(object(), **case.args)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_manifests_validate(case):
    docs = case.base_manifests() + case.manifests("wrong") + case.manifests("fixed")
    manifests.validate(docs)
    assert case.manifests("fixed"), "a fix must change something"


def test_no_orphan_files():
    used = {f for c in CASES for f in (*c.base, *c.wrong.files, *c.fixed.files)}
    present = {p.name for p in selftest.HERE.glob("*.yaml")} - {"index.yaml"}
    assert present == used


def test_judge_reports_every_difference():
    case = next(c for c in CASES if c.name == "diagnose-selector-mismatch")
    good = Result("diagnose", "s", "fail", [], hint="x lacks tier=db y", layer="endpoints")
    assert selftest.judge(case, "wrong", good) == []
    bad = Result("diagnose", "s", "pass", [], layer=None)
    assert selftest.judge(case, "wrong", bad) == [
        "verdict pass, wanted fail",
        "hint lacks 'lacks tier=db'",
        "layer None, wanted 'endpoints'",
    ]
    with pytest.raises(ValueError):
        case.expectation("broken")


def test_runs_on_filters_by_cni_and_backend():
    ingress = next(c for c in CASES if c.check == "ingress_routes")
    assert ingress.runs_on("sandbox", "flannel") and not ingress.runs_on("kind", "flannel")
    enforcing = next(c for c in CASES if "calico" in c.cnis)
    assert enforcing.cnis == ("calico", "cilium")
    assert enforcing.runs_on("kind", "calico") and enforcing.runs_on("sandbox", "cilium")
    assert not enforcing.runs_on("sandbox", "flannel")


def test_index_errors_are_explained(tmp_path):
    bad = tmp_path / "index.yaml"
    bad.write_text(
        "cases:\n  - {name: x, check: pod_to_pod, wrong: {verdict: fail}, fixed: {verdict: pass}}\n"
    )
    with pytest.raises(LabError, match="must name the hint"):
        selftest.cases(bad)
    bad.write_text(
        "cases:\n  - {name: x, check: pod_to_pod, wrong: {verdict: bad}, fixed: {verdict: pass}}\n"
    )
    with pytest.raises(LabError, match="is not one of"):
        selftest.cases(bad)
