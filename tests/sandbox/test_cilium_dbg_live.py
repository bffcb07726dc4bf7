"""cilium-dbg answered in a Cilium agent pod of a real sandbox lab: the commands run through the
same ``lab.exec`` as ``labkit kubectl exec``, and their tables hold the lab's own Services,
endpoints and pods."""

from __future__ import annotations

import os

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

AGENT = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "cilium-dbgtest",
        "namespace": "kube-system",
        "labels": {"k8s-app": "cilium"},
    },
    "spec": {
        "hostNetwork": True,
        "nodeName": "tc-worker",
        "containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.20.0"}],
    },
}


@pytest.fixture
def agent_pod(calico_lab):
    calico_lab.apply([AGENT])
    yield "kube-system/cilium-dbgtest"
    calico_lab.delete([AGENT])


def test_cilium_dbg_lists_the_labs_services_and_endpoints(calico_lab, agent_pod) -> None:
    """cilium/cilium ``cilium-dbg/cmd/service_list.go`` and ``endpoint_list.go``, as Cilium's
    docs run them (``kubectl -n kube-system exec ds/cilium -- cilium-dbg service list``,
    ``kubeproxy-free.rst``): kube-dns's ClusterIP 10.96.0.10:53/UDP with a backend per CoreDNS
    pod, and the node's pods as endpoints beside ``reserved:host``."""
    dns_pods = calico_lab.get("pods", namespace="kube-system", selector="k8s-app=kube-dns")
    listed = calico_lab.exec(agent_pod, ["cilium-dbg", "service", "list"], namespace="kube-system")
    assert listed.ok and listed.stdout.startswith("Frontend")
    rows = listed.stdout.splitlines()
    first = next(i for i, line in enumerate(rows) if line.startswith("10.96.0.10:53/UDP "))
    backends = {line.split("=> ")[1].split(":")[0] for line in rows[first : first + len(dns_pods)]}
    assert backends == {p["status"]["podIP"] for p in dns_pods}

    eps = calico_lab.exec(agent_pod, ["cilium", "endpoint", "list"], namespace="kube-system")
    on_node = [
        p["status"]["podIP"]
        for p in calico_lab.get("pods", namespace=None)
        if p["spec"].get("nodeName") == "tc-worker" and not p["spec"].get("hostNetwork")
    ]
    assert "reserved:host" in eps.stdout and all(ip in eps.stdout for ip in on_node)

    refused = calico_lab.exec(agent_pod, ["cilium-dbg", "monitor"], namespace="kube-system")
    assert (
        refused.returncode == 1 and 'unknown command "monitor" for "cilium-dbg"' in refused.stderr
    )


def test_a_shell_string_is_answered_as_the_argv_form(cilium_lab) -> None:
    """``kubectl -n kube-system exec ds/cilium -- sh -c 'cilium-dbg status'`` runs the agent
    image's ``/usr/bin/cilium-dbg`` (cilium/cilium ``images/cilium/Dockerfile``), the same as the
    argv form: ``lab.exec`` given the string answers alike in the lab's own agent pod, and a
    pipeline around it is refused in one line instead of ``sh: cilium-dbg: not found``."""
    from labkit.errors import LabError

    agent = cilium_lab.get("pods", namespace="kube-system", selector="k8s-app=cilium")[0]
    ref = agent["metadata"]["name"]
    for command, shown in (
        ("cilium-dbg status", "KubeProxyReplacement:    True"),
        ("cilium-dbg service list", "Frontend"),
    ):
        as_string = cilium_lab.exec(ref, command, namespace="kube-system")
        as_argv = cilium_lab.exec(ref, command.split(), namespace="kube-system")
        assert as_string.ok and shown in as_string.stdout, as_string
        assert as_string.stdout == as_argv.stdout
    with pytest.raises(LabError, match="without a shell"):
        cilium_lab.exec(ref, "cilium-dbg status | grep KubeProxy", namespace="kube-system")
