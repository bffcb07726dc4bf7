"""Every two scenarios can follow each other on one lab (``make nbval`` runs all lessons on one):
none selects the pods of another, and only the known pairs define one object two ways."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from labkit import scenarios
from labkit.scenarios import coexist

NAMES = scenarios.names()

REDEFINED_BY_DESIGN = {
    ("03-database-migration", "17-service-without-endpoints"): (
        "both define Deployment default/postgres; each lesson resets its scenario, and a reset "
        "replaces the shared object with its own"
    ),
    ("06-api-gateway", "11-env-to-dns"): (
        "both define Deployment and Service default/user*; a reset replaces them with its own"
    ),
}
"""Pairs allowed to define one object differently, and why that cannot break a later lesson."""


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(NAMES, 2)))
def test_no_scenario_breaks_another_on_one_lab(first, second):
    one, other = scenarios.get(first), scenarios.get(second)
    assert coexist.selections(one, other) == [], (
        "a Service or NetworkPolicy of one selects pods of the other; it stays in force after the "
        "other resets its own scenario: rename the pods' labels of one"
    )
    assert coexist.node_port_clashes(one, other) == []
    redefined = coexist.redefinitions(one, other)
    if (first, second) in REDEFINED_BY_DESIGN:
        assert redefined, f"{first} and {second} no longer clash: drop them from the allowed pairs"
    else:
        assert redefined == [], "only the pairs in REDEFINED_BY_DESIGN may define one object twice"


def test_the_allowed_pairs_are_real_scenarios_in_order():
    for first, second in REDEFINED_BY_DESIGN:
        assert first in NAMES and second in NAMES and first < second


def scenario_of(folder: Path, manifest: str) -> scenarios.Scenario:
    folder.mkdir()
    (folder / "scenario.yaml").write_text(
        "title: t\nlesson: 99-x\nsection: s\ndemonstrates: d\nmanifests: [all.yaml]\n"
    )
    (folder / "all.yaml").write_text(manifest)
    return scenarios.load_scenario(folder)


SELECTS_WEB = """\
apiVersion: v1
kind: Service
metadata: {name: front}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}
"""


def test_selections_name_each_service_and_policy_that_picks_the_others_pods(tmp_path):
    greedy = scenario_of(tmp_path / "99-greedy", SELECTS_WEB)
    symptoms = scenarios.get("18-troubleshooting-symptoms")
    found = coexist.selections(greedy, symptoms)
    assert found == [
        "Service default/front of 99-greedy selects the pods of web",
        "NetworkPolicy default/web-only of 99-greedy selects the pods of web",
    ]
    assert coexist.selections(symptoms, greedy) == found, "either order finds the same"
    assert coexist.redefinitions(greedy, symptoms) == []
    assert coexist.node_port_clashes(greedy, symptoms) == []
    assert coexist.conflicts(greedy, symptoms) == found


def test_selections_skip_other_namespaces_and_shared_objects(tmp_path):
    elsewhere = scenario_of(
        tmp_path / "99-elsewhere",
        SELECTS_WEB.replace("{name: front}", "{name: front, namespace: shop}").replace(
            "{name: web-only}", "{name: web-only, namespace: shop}"
        ),
    )
    symptoms = scenarios.get("18-troubleshooting-symptoms")
    assert coexist.selections(elsewhere, symptoms) == []
    client = (scenarios.SCENARIO_DIR / "18-troubleshooting-symptoms" / "client.yaml").read_text()
    sharing = scenario_of(
        tmp_path / "99-sharing",
        client + "---\n" + SELECTS_WEB.replace("app: web", "app: client"),
    )
    assert coexist.selections(sharing, symptoms) == [], "its own copy of the shared client pod"
    assert coexist.conflicts(scenarios.get("02-expose-nginx"), symptoms) == [], (
        "an identical object (the client pod) is shared, not a clash"
    )


def test_redefinitions_and_node_ports_are_told_apart(tmp_path):
    gateway, dns = scenarios.get("06-api-gateway"), scenarios.get("11-env-to-dns")
    assert coexist.redefinitions(gateway, dns) == [
        "both define Deployment default/user differently",
        "both define Service default/user-service differently",
    ]
    assert coexist.selections(gateway, dns) == coexist.node_port_clashes(gateway, dns) == []
    port = scenario_of(
        tmp_path / "99-port",
        "apiVersion: v1\nkind: Service\nmetadata: {name: other-port}\n"
        "spec: {type: NodePort, selector: {app: none}, ports: [{port: 80, nodePort: 30080}]}\n",
    )
    nodeport = scenarios.get("07-nodeport")
    assert coexist.node_port_clashes(port, nodeport) == ["both claim nodePort 30080"]
    assert coexist.redefinitions(port, nodeport) == coexist.selections(port, nodeport) == []
