"""Every scenario folder is complete, valid and graded by checks that exist."""

from __future__ import annotations

import re
import threading
from typing import cast

import pytest

from labkit import manifests, scenarios
from labkit.checks.result import Step, make_result
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.values import Capabilities

NAMES = scenarios.names()
LESSON = re.compile(r"^\d\d-[a-z0-9-]+$")


def all_files(scenario: scenarios.Scenario) -> tuple[str, ...]:
    files = list(scenario.manifests)
    for variant in scenario.variants:
        files += [*variant.manifests, *variant.fix, *variant.delete]
    return tuple(dict.fromkeys(files))


def test_the_tutorials_eighteen_scenarios_are_here():
    assert len(NAMES) == 18
    assert [n[:2] for n in NAMES] == [f"{i:02d}" for i in range(1, 19)]


@pytest.mark.parametrize("name", NAMES)
def test_scenario_is_complete(name):
    scenario = scenarios.get(name)
    assert LESSON.match(scenario.lesson), f"{name}: lesson must name a lesson like 06-dns"
    assert scenario.checks, f"{name} has no check"
    assert scenario.title and scenario.section and len(scenario.demonstrates) > 60
    for variant in scenario.variants:
        assert variant.checks, f"{name}/{variant.name} has no check"
        if variant.role == "broken":
            assert variant.fix and variant.hint_contains


@pytest.mark.parametrize("name", NAMES)
def test_manifests_validate_and_images_are_pinned(name):
    scenario = scenarios.get(name)
    docs = scenario.documents(all_files(scenario))
    manifests.validate(docs)
    for doc in docs:
        spec = doc.get("spec") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or spec
        for container in pod_spec.get("containers") or []:
            image = container["image"]
            assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), (
                f"{name}: unpinned {image}"
            )


@pytest.mark.parametrize("name", NAMES)
def test_checks_named_exist(name):
    from labkit.checks import CHECKS

    scenario = scenarios.get(name)
    specs = list(scenario.checks) + [c for v in scenario.variants for c in v.checks]
    missing = sorted({c.check for c in specs} - set(CHECKS))
    assert not missing, f"{name} names checks that do not exist: {missing}"


def test_lookup_by_short_name_and_errors():
    assert scenarios.get("nodeport").name == "07-nodeport"
    with pytest.raises(LabError, match="No scenario named"):
        scenarios.get("nope")
    with pytest.raises(LabError, match="has no variant"):
        scenarios.get("nodeport").variant("nope")


def test_folder_without_scenario_yaml_is_refused(tmp_path):
    with pytest.raises(LabError, match=r"no scenario\.yaml"):
        scenarios.load_scenario(tmp_path)


def test_broken_variant_needs_fix_and_hint(tmp_path):
    (tmp_path / "scenario.yaml").write_text(
        "title: t\nlesson: 01-x\nsection: s\ndemonstrates: d\nmanifests: [a.yaml]\n"
        "checks: [{check: pod_netns}]\nbroken: [{name: b, description: d, manifests: [a.yaml]}]\n"
    )
    with pytest.raises(LabError, match="needs `fix` and `hint_contains`"):
        scenarios.load_scenario(tmp_path)


def test_kind_steps_render_as_plans_per_cni():
    cni = scenarios.get("cni-investigation")
    assert cni.sandbox_note
    flannel = cni.kind_plan("netlab", "flannel")
    calico = cni.kind_plan("netlab", "calico")
    assert (
        "Flannel's subnet lease for this node",
        ["docker", "exec", "netlab-worker", "cat", "/run/flannel/subnet.env"],
    ) in flannel
    assert not any("tigerastatus" in argv for _, argv in flannel)
    assert ["kubectl", "--context", "kind-netlab", "get", "tigerastatus"] in [
        argv for _, argv in calico
    ]
    assert all(argv[0] in ("docker", "kubectl") for _, argv in flannel + calico)


@pytest.mark.parametrize("name", NAMES)
def test_every_kind_step_names_a_node_or_kubectl(name):
    scenario = scenarios.get(name)
    for cni in ("flannel", "calico", "cilium"):
        for describe, argv in scenario.kind_plan("lab", cni):
            assert describe and (
                argv[:2] == ["docker", "exec"] or argv[:3] == ["kubectl", "--context", "kind-lab"]
            )


def test_kind_steps_refuse_to_run_on_the_sandbox():
    class SandboxLike:
        backend, name, cni = "sandbox", "netlab", "calico"

    with pytest.raises(LabError, match="need a real Kind cluster"):
        scenarios.run_kind_steps(cast(Lab, SandboxLike()), "cni-investigation")


def test_outside_hosts_and_backend_limited_checks():
    pci = scenarios.get("pci-payment-isolation")
    assert [(h.cidr, h.ports) for h in pci.outside] == [("203.0.113.0/24", (443, 80))]
    limited = [c for c in pci.checks if c.backends != ("kind", "sandbox")]
    assert limited and all(c.backends == ("sandbox",) for c in limited)


def test_outside_hosts_go_to_the_sandbox_and_are_announced_elsewhere(caplog):
    added = []

    class SandboxLike:
        backend = "sandbox"
        capabilities = Capabilities(
            network_policy=True, kube_proxy_mode="iptables", outside_addresses=True
        )

        def add_outside_address(self, cidr, ports=()):
            added.append((cidr, tuple(ports)))

    class KindLike:
        backend = "kind"
        capabilities = Capabilities(network_policy=True, kube_proxy_mode="iptables")

    pci = scenarios.get("pci-payment-isolation")
    scenarios._add_outside_hosts(cast(Lab, SandboxLike()), pci)
    assert added == [("203.0.113.0/24", (443, 80))]
    scenarios._add_outside_hosts(cast(Lab, KindLike()), pci)
    assert "not provided" in caplog.text


def states(scenario: scenarios.Scenario) -> list[str | None]:
    """The starting state (None) and every step and broken variant."""
    return [None, *(v.name for v in scenario.variants)]


def deployed_alone(fakes, name: str, variant: str | None) -> dict:
    """The objects of one state deployed on an empty lab."""
    lab = fakes.ObjectLab()
    scenarios.deploy(lab, name, variant)
    return lab.objects


@pytest.mark.parametrize("name", [n for n in NAMES if scenarios.get(n).variants])
def test_a_state_deploys_the_same_objects_whatever_came_before(fakes, name):
    """Every ordered pair: deploy X (and its fix, for a broken one), then Y, holds exactly Y's
    objects, as Y deployed on an empty lab; only namespaces an earlier state made may stay."""
    scenario = scenarios.get(name)
    for before in states(scenario):
        for fixed in (False, True) if before and scenario.variant(before).fix else (False,):
            for after in states(scenario):
                lab = fakes.ObjectLab()
                scenarios.deploy(lab, name, before)
                if fixed:
                    scenarios.fix(lab, name, before)
                scenarios.deploy(lab, name, after)
                alone = deployed_alone(fakes, name, after)
                now = {k: v for k, v in lab.objects.items() if k[0] != "Namespace"}
                assert now == {k: v for k, v in alone.items() if k[0] != "Namespace"}, (
                    f"{name}: {before}{' fixed' if fixed else ''} then {after} differs from "
                    f"{after} alone"
                )
                assert set(alone) <= set(lab.objects)


def test_a_variant_replaces_the_start_and_drops_what_it_deletes():
    moved = scenarios.get("env-to-dns")
    keys = [
        (d["kind"], manifests.namespace_of(d), d["metadata"]["name"])
        for d in scenarios.state_documents(moved, "service-left-behind")
    ]
    # payment-default.yaml is deleted; the broken variant's Service replaces the start's one,
    # and its order-service (asking for the finance name) replaces the start's.
    assert ("Deployment", "default", "payment") not in keys
    assert keys.count(("Service", "default", "payment-service")) == 1
    assert keys.count(("Deployment", "default", "order-service")) == 1
    assert keys.index(("Namespace", None, "finance")) < keys.index(
        ("Deployment", "finance", "payment")
    )
    with pytest.raises(LabError, match="has no variant"):
        scenarios.state_documents(moved, "nope")


def test_reset_brings_back_the_starting_state_and_keeps_the_learners_objects(fakes):
    lab = fakes.ObjectLab()
    scenarios.deploy(lab, "troubleshooting-symptoms", "deny-all-ingress")
    scenarios.fix(lab, "troubleshooting-symptoms", "deny-all-ingress")
    mine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "my-notes"}}
    lab.apply([mine])
    scenarios.reset(lab, "troubleshooting-symptoms")
    assert lab.objects == {
        **deployed_alone(fakes, "troubleshooting-symptoms", None),
        ("ConfigMap", "default", "my-notes"): mine,
    }


@pytest.mark.parametrize("concurrent", [True, False])
def test_a_scenarios_checks_run_at_once_only_where_the_lab_allows_it(monkeypatch, concurrent):
    pci = scenarios.get("pci-payment-isolation")
    specs = [c for c in pci.checks if "sandbox" in c.backends]
    barrier = threading.Barrier(len(specs), timeout=5)
    threads = []

    def check(lab, name, args):
        threads.append(threading.current_thread().name)
        if concurrent:
            barrier.wait()  # every check is running at the same time, or this times out
        return make_result("recorded", repr(sorted(args.items())), [Step("ran", "yes", True)])

    monkeypatch.setattr(scenarios, "run_check", check)

    class SandboxLike:
        backend = "sandbox"
        capabilities = Capabilities(
            network_policy=True, kube_proxy_mode="iptables", concurrent_checks=concurrent
        )

    results = scenarios.run_checks(cast(Lab, SandboxLike()), pci.name)
    assert [r.subject for r in results] == [repr(sorted(c.args.items())) for c in specs]
    assert (threading.main_thread().name in threads) is not concurrent
