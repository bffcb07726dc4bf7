"""Ten sandbox labs side by side on one machine (issue 15.3): the same addresses in every lab,
each answered by its own lab's pod; no probe crosses between labs; one lab's `down`, its agent
killed or one of its namespaces deleted leaves the others answering.

Every lab is built by `labkit class up`'s code (`classroom.class_up`, a few at a time) and always
removed by `classroom.class_down`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

LABS = [f"iso{i}" for i in range(10)]
NODE_IPS = ("172.18.0.2", "172.18.0.3", "172.18.0.4")


def _workload(lab_name: str) -> list[dict]:
    """A web pod whose hostname is the lab's name (netexec's /hostname answers it), a client,
    Service ``web`` (NodePort, the same ClusterIP and nodePort in every lab: both come from a hash
    of namespace/name) and ``only-<lab>``, a Service whose ClusterIP no other lab has."""
    container = {
        "name": "c",
        "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
        "args": ["netexec", "--http-port=8080"],
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"containers": [container], **extra},
        }
        for name, extra in (("web", {"hostname": lab_name}), ("client", {}))
    ]
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "type": kind,
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": "http"}],
            },
        }
        for name, kind in (("web", "NodePort"), (f"only-{lab_name}", "ClusterIP"))
    ]
    return [*pods, *services]


@pytest.fixture(scope="module")
def labs():
    """The ten labs, each with its workload; removed afterwards whatever happened."""
    from labkit.classroom import class_down, class_up
    from labkit.sandbox import backend

    class_down(LABS)
    try:
        outcomes = class_up(LABS, "calico", "sandbox", parallel=3)
        assert [o.name for o in outcomes if not o.ok] == []
        built = {}
        for name in LABS:
            lab = backend.attach(name)
            assert lab is not None
            lab.apply(_workload(name))
            built[name] = lab
        yield built
    finally:
        class_down(LABS)


def _addresses(lab) -> dict[str, object]:
    """The web pod's IP, Service web's ClusterIP and nodePort, and only-<lab>'s ClusterIP."""
    web = lab.get("svc", "web")[0]["spec"]
    return {
        "pod": lab.get("pods", "web")[0]["status"]["podIP"],
        "cluster_ip": web["clusterIP"],
        "node_port": web["ports"][0]["nodePort"],
        "only": lab.get("svc", f"only-{lab.name}")[0]["spec"]["clusterIP"],
    }


def _answers_itself(lab, addresses) -> list[str]:
    """Probe lab's web pod by pod IP, ClusterIP and every node's nodePort, from its client and
    from its outside; the problems (empty when each answer came from lab's own web pod)."""
    pairs = [
        ("default/client", addresses["pod"], 8080),
        ("default/client", addresses["cluster_ip"], 80),
        *(("default/client", ip, addresses["node_port"]) for ip in NODE_IPS),
        *(("@outside", ip, addresses["node_port"]) for ip in NODE_IPS),
    ]
    return [
        f"{lab.name}: {p.src} -> {p.dst}:{p.port} {p.outcome}, served by {p.served_by}"
        for p in lab.probe_many(pairs, timeout=2.0)
        if p.outcome != "connected" or p.served_by != lab.name
    ]


def test_the_same_addresses_in_every_lab_answer_from_that_labs_own_pod(labs):
    """network_namespaces(7): each namespace has its own devices, addresses, routes and
    firewall rules, so ten labs hold the same pod IP, ClusterIP and nodePort without clashing;
    agnhost netexec's /hostname (kubernetes test/images/agnhost/netexec/netexec.go,
    hostnameHandler) names the pod that answered, and it is always the prober's own lab's."""
    seen = {name: _addresses(lab) for name, lab in labs.items()}
    shared = {(a["pod"], a["cluster_ip"], a["node_port"]) for a in seen.values()}
    assert len(shared) == 1, f"the labs were meant to share their addresses: {shared}"
    assert len({a["only"] for a in seen.values()}) == len(LABS)
    problems = [line for name, lab in labs.items() for line in _answers_itself(lab, seen[name])]
    assert problems == []


def test_no_probe_reaches_an_address_only_another_lab_has(labs):
    """A ClusterIP that exists only in lab B is no Service in lab A (kube-proxy's KUBE-SERVICES
    has no rule for it, pkg/proxy/iptables/proxier.go syncProxyRules), and no link leaves a lab's
    namespaces: from A's pod and A's outside it never connects."""
    only = {name: _addresses(lab)["only"] for name, lab in labs.items()}
    for name, lab in labs.items():
        pairs = [
            (src, ip, 80)
            for other, ip in only.items()
            if other != name
            for src in ("default/client", "@outside")
        ]
        crossed = [p for p in lab.probe_many(pairs, timeout=0.5) if p.outcome == "connected"]
        assert crossed == [], f"{name} reached another lab: {crossed}"
        own = lab.probe("default/client", only[name], 80, timeout=2.0)
        assert own.outcome == "connected" and own.served_by == name


def test_ls_lists_every_lab_with_the_memory_of_its_own_processes(labs):
    """`labkit ls` (lab.list_labs): each lab Ready on calico with the summed VmRSS (proc(5)) of
    its agent, which alone serves its pods; lab iso1's figure never takes in iso10's agent."""
    from labkit.lab import list_labs

    listed = {s.name: s for s in list_labs() if s.name in LABS}
    assert sorted(listed) == sorted(LABS)
    for summary in listed.values():
        assert (summary.backend, summary.cni, summary.status) == ("sandbox", "calico", "Ready")
        assert summary.memory_mb is not None and 5 < summary.memory_mb < 150
        assert summary.created is not None and time.time() - summary.created < 600


def test_one_labs_down_or_crash_leaves_the_others_answering(labs):
    """`labkit down` removes only lk-<lab>- namespaces matched exactly (sandbox/naming.py
    is_lab_netns); a killed agent or a deleted namespace is that lab's to heal (the next command
    restarts the agent: sandbox/backend.py attach): the other labs' probes never notice."""
    from labkit.sandbox import backend, naming

    gone, killed, damaged, *others = LABS
    addresses = {name: _addresses(labs[name]) for name in LABS}

    backend.down(gone)
    assert gone not in backend.names()

    pid = int(Path(f"/run/labkit/{killed}/agent.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    web_netns = naming.pod_netns(damaged, "default", "web")
    subprocess.run(["ip", "netns", "delete", web_netns], check=True)

    problems = [line for name in others for line in _answers_itself(labs[name], addresses[name])]
    assert problems == []
    healed = backend.attach(killed)  # the killed agent's lab comes back on its next command
    assert healed is not None and _answers_itself(healed, addresses[killed]) == []
