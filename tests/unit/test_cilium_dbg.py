"""cilium-dbg on the sandbox: the agent's frontends and endpoints from the cluster's objects, the
printers laid out as cilium/cilium's ``cilium-dbg/cmd`` writes them, and the answers and
refusals of the commands run in an agent pod."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.errors import LabError
from labkit.model.ciliumdbg import Endpoint, Frontend, endpoint_id, endpoints, frontends
from labkit.model.hubble import identity_labels, identity_of
from labkit.printers.ciliumdbg import bpf_lb_list, endpoint_list, service_list
from labkit.sandbox import ciliumdbg

NGINX = Frontend
BACKENDS = ("10.217.0.107:80/TCP", "10.217.0.149:80/TCP")


def my_nginx() -> list[Frontend]:
    """The NodePort Service of Cilium's docs (``kubeproxy-free.rst``, "Quick-Start"): ClusterIP
    10.104.239.135:80, node port 31940 on the node 192.168.178.29, two nginx backends."""
    return [
        Frontend("10.104.239.135:80/TCP", "ClusterIP", BACKENDS),
        Frontend("0.0.0.0:31940/TCP", "NodePort", BACKENDS),
        Frontend("192.168.178.29:31940/TCP", "NodePort", BACKENDS),
    ]


def test_service_list_as_print_service_list_writes_it() -> None:
    """``cilium-dbg/cmd/service_list.go`` ``printServiceList``: header ``Frontend  Service Type
    Backend``, frontends sorted, ``N => backend (state)`` with continuation lines, tabwriter
    padding 3; the docs' example (``kubeproxy-free.rst``) has the same frontends and backends."""
    assert service_list(my_nginx()) == (
        "Frontend                   Service Type   Backend\n"
        "0.0.0.0:31940/TCP          NodePort       1 => 10.217.0.107:80/TCP (active)\n"
        "                                          2 => 10.217.0.149:80/TCP (active)\n"
        "10.104.239.135:80/TCP      ClusterIP      1 => 10.217.0.107:80/TCP (active)\n"
        "                                          2 => 10.217.0.149:80/TCP (active)\n"
        "192.168.178.29:31940/TCP   NodePort       1 => 10.217.0.107:80/TCP (active)\n"
        "                                          2 => 10.217.0.149:80/TCP (active)\n"
    )
    assert service_list([Frontend("10.96.0.5:80/TCP", "ClusterIP", ())]) == (
        "Frontend           Service Type   Backend\n10.96.0.5:80/TCP   ClusterIP\n"
    )


def test_endpoint_list_as_print_endpoint_list_writes_it() -> None:
    """``cilium-dbg/cmd/endpoint_list.go`` ``printEndpointList``: two header lines (the second
    ``ENFORCEMENT`` under both policy columns), one line per endpoint with its first sorted
    label, one more line per further label."""
    eps = [
        Endpoint(1, False, False, 1, ("reserved:host",), ""),
        Endpoint(
            212,
            True,
            False,
            24107,
            ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"),
            "10.244.1.5",
        ),
    ]
    labels = "LABELS (source:key[=value])".ljust(42)
    assert endpoint_list(eps).splitlines() == [
        f"ENDPOINT   POLICY (ingress)   POLICY (egress)   IDENTITY   {labels}IPv6   IPv4         "
        "STATUS",
        "           ENFORCEMENT        ENFORCEMENT",
        f"1          Disabled           Disabled          1          {'reserved:host':42}"
        f"{'':7}{'':13}ready",
        f"212        Enabled            Disabled          24107      {'k8s:app=web':42}"
        f"{'':7}10.244.1.5   ready",
        f"{'':59}k8s:io.kubernetes.pod.namespace=default",
    ]


def test_bpf_lb_list_one_row_per_slot() -> None:
    """``cilium-dbg/cmd/bpf_lb_list.go`` ``dumpSVC``: slot 0 is ``0.0.0.0:0 (revnat) (0)
    [flags]``, slot N ``backend (revnat) (N)``; ``TablePrinter`` titles ``SERVICE ADDRESS`` and
    ``BACKEND ADDRESS (REVNAT_ID) (SLOT)``."""
    text = bpf_lb_list([Frontend("10.104.239.135:80/TCP", "ClusterIP", BACKENDS)])
    assert text.splitlines() == [
        "SERVICE ADDRESS             BACKEND ADDRESS (REVNAT_ID) (SLOT)",
        "10.104.239.135:80/TCP (0)   0.0.0.0:0 (1) (0) [ClusterIP, non-routable]",
        "10.104.239.135:80/TCP (1)   10.217.0.107:80/TCP (1) (1)",
        "10.104.239.135:80/TCP (2)   10.217.0.149:80/TCP (1) (2)",
    ]


def svc(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
        "status": status or {},
    }


def eps_slice(service: str, ready: dict[str, bool], port_name: str | None) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-x",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": service},
        },
        "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ok}} for ip, ok in ready.items()],
    }


def test_frontends_follow_the_kube_proxy_replacement() -> None:
    """``kubeproxy-free.rst``: a ClusterIP per port, a NodePort as ``0.0.0.0:port`` and on the
    node's address, load-balancer and external IPs; not-ready endpoints are no backends;
    headless and ExternalName Services get no frontend."""
    services = [
        svc(
            "web",
            {
                "type": "LoadBalancer",
                "clusterIP": "10.96.3.4",
                "externalIPs": ["192.0.2.9"],
                "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}],
            },
            {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}},
        ),
        svc("db", {"clusterIP": "None", "ports": [{"port": 5432}]}),
        svc("ext", {"type": "ExternalName", "externalName": "example.com"}),
    ]
    slices = [eps_slice("web", {"10.244.1.5": True, "10.244.2.6": False}, "http")]
    got = {(f.address, f.type): f.backends for f in frontends(services, slices, "172.18.0.3")}
    one = ("10.244.1.5:8080/TCP",)
    assert got == {
        ("10.96.3.4:80/TCP", "ClusterIP"): one,
        ("0.0.0.0:30080/TCP", "NodePort"): one,
        ("172.18.0.3:30080/TCP", "NodePort"): one,
        ("172.18.255.200:80/TCP", "LoadBalancer"): one,
        ("192.0.2.9:80/TCP", "ExternalIPs"): one,
    }
    unnamed = frontends(
        [svc("web", {"clusterIP": "10.96.3.4", "ports": [{"name": "http", "port": 80}]})],
        [eps_slice("web", {"10.244.1.5": True}, None)],
        "172.18.0.3",
    )
    assert unnamed[0].backends == ()


def pod(
    name: str, node: str, labels: dict[str, str], host: bool = False, ns: str = "shop"
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": host},
        "status": {"podIP": "172.18.0.3" if host else f"10.244.1.{len(name)}"},
    }


def test_endpoints_and_their_enforcement() -> None:
    """``endpoint_list.go`` ``endpointPolicyMode``: enforcement per direction, on where a policy
    selects the endpoint for it (Cilium's ``default`` enforcement mode): a NetworkPolicy's
    policyTypes (Ingress by default), a CiliumNetworkPolicy's ingress/egress sections; the host
    endpoint is ``reserved:host`` with identity 1; host-network pods are not endpoints."""
    pods = [
        pod("web-1", "w1", {"app": "web"}),
        pod("db-1", "w1", {"app": "db"}),
        pod("api-1", "w1", {"app": "api"}),
        pod("web-2", "w2", {"app": "web"}),
        pod("cilium-abc", "w1", {"k8s-app": "cilium"}, host=True, ns="kube-system"),
    ]
    policies = [
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}},
        },
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "out", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"]},
        },
        {
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "l7", "namespace": "shop"},
            "spec": {
                "endpointSelector": {"matchLabels": {"k8s:app": "api"}},
                "ingress": [{}],
                "egress": [{}],
            },
        },
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "elsewhere", "namespace": "blog"},
            "spec": {"podSelector": {}},
        },
    ]
    got = {
        e.labels[0] if e.id == 1 else dict(x.split("=", 1) for x in e.labels)["k8s:app"]: e
        for e in endpoints(pods, policies, "w1")
    }
    assert set(got) == {"reserved:host", "web", "db", "api"}
    host = got["reserved:host"]
    assert (host.id, host.identity, host.ipv4) == (1, 1, "")
    assert (got["web"].ingress, got["web"].egress) == (True, False)
    assert (got["db"].ingress, got["db"].egress) == (False, True)
    assert (got["api"].ingress, got["api"].egress) == (True, True)
    assert got["web"].identity == identity_of(identity_labels("shop", {"app": "web"}, ""))
    assert got["web"].id == endpoint_id("shop", "web-1") and 2 <= got["web"].id <= 4095


class Objects:
    """A lab's ``get``: objects by kind, kinds it does not know refused as the sandbox does."""

    def __init__(self, **by_kind: list[dict[str, Any]]) -> None:
        self.by_kind = by_kind

    def __call__(
        self, kind: str, name: str | None = None, namespace: str | None = "default"
    ) -> list[dict[str, Any]]:
        if kind not in self.by_kind:
            raise LabError(f"Unknown kind {kind!r}.", "Use a Kubernetes kind.")
        return self.by_kind[kind]


AGENT = pod("cilium-abc", "w1", {"k8s-app": "cilium"}, host=True, ns="kube-system")
AGENT["spec"]["containers"] = [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.20.0"}]
NODES = [
    {
        "metadata": {"name": n},
        "spec": {"podCIDR": f"10.244.{i}.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.18.0.{i + 2}"}]},
    }
    for i, n in enumerate(("cp", "w1", "w2"))
]


def lab_get() -> Objects:
    return Objects(
        pods=[AGENT, pod("web-1", "w1", {"app": "web"})],
        nodes=NODES,
        services=[
            svc(
                "web",
                {
                    "type": "NodePort",
                    "clusterIP": "10.96.3.4",
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
                },
            )
        ],
        endpointslices=[eps_slice("web", {"10.244.1.5": True}, "http")],
        networkpolicies=[],
    )


def test_commands_in_an_agent_pod_are_answered() -> None:
    """Both binary names (``cilium-dbg``, and ``cilium`` before 1.15), aliases ``ls``; only in a
    pod labelled ``k8s-app: cilium`` in kube-system, as Cilium's DaemonSet labels its pods."""
    get = lab_get()
    assert ciliumdbg.is_agent_command(AGENT, ["cilium-dbg", "status"])
    assert ciliumdbg.is_agent_command(AGENT, ["/usr/bin/cilium", "service", "list"])
    assert not ciliumdbg.is_agent_command(
        pod("web-1", "w1", {"app": "web"}), ["cilium-dbg", "status"]
    )
    assert not ciliumdbg.is_agent_command(AGENT, ["ip", "route"])
    listed = ciliumdbg.answer(["cilium-dbg", "service", "ls"], AGENT, get)
    assert (
        listed.returncode == 0
        and "172.18.0.3:30080/TCP   NodePort       1 => 10.244.1.5:8080/TCP (active)"
        in listed.stdout
    )
    eps = ciliumdbg.answer(["cilium", "endpoint", "list"], AGENT, get).stdout
    assert "reserved:host" in eps and "10.244.1.5" in eps
    lb = ciliumdbg.answer(["cilium-dbg", "bpf", "lb", "list"], AGENT, get).stdout
    assert "10.96.3.4:80/TCP (1)       10.244.1.5:8080/TCP (2) (1)" in lb
    status = ciliumdbg.answer(["cilium-dbg", "status"], AGENT, get).stdout.splitlines()
    assert "KubeProxyReplacement:    True   [eth0   172.18.0.3 (Direct Routing)]" in status
    assert "Cilium:                  Ok   1.20.0" in status
    assert "IPAM:                    IPv4: 1/254 allocated from 10.244.1.0/24, " in status
    assert "Cluster health:          3/3 reachable" in status


def test_commands_not_served_are_refused_in_cobras_words() -> None:
    """cobra's ``Error: unknown command "x" for "cilium-dbg"`` and ``Run 'cilium-dbg --help' for
    usage.``, then the commands the sandbox serves; exit code 1."""
    got = ciliumdbg.answer(["cilium-dbg", "monitor", "-t", "drop"], AGENT, lab_get())
    assert got.returncode == 1 and got.stdout == ""
    assert got.stderr.splitlines() == [
        'Error: unknown command "monitor -t drop" for "cilium-dbg"',
        "Run 'cilium-dbg --help' for usage.",
        "labkit's sandbox runs no Cilium agent; it answers cilium-dbg status, cilium-dbg service "
        "list, cilium-dbg endpoint list, cilium-dbg bpf lb list.",
    ]
    assert (
        ciliumdbg.answer(
            ["cilium-dbg", "service", "list", "-o", "json"], AGENT, lab_get()
        ).returncode
        == 1
    )
    assert ciliumdbg.answer(["cilium"], AGENT, lab_get()).returncode == 1


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("cilium-dbg status", ["cilium-dbg", "status"]),
        ("  cilium-dbg   service list ", ["cilium-dbg", "service", "list"]),
        ("'cilium' 'endpoint' list", ["cilium", "endpoint", "list"]),
        ("/usr/bin/cilium-dbg bpf lb list", ["/usr/bin/cilium-dbg", "bpf", "lb", "list"]),
        (["cilium-dbg", "status"], ["cilium-dbg", "status"]),
        ("ip route", None),
        (["ip", "route"], None),
        ("echo cilium-dbg status", None),
        ("'cilium-dbg status", None),
        ("", None),
    ],
)
def test_a_shell_string_reaches_cilium_dbg_as_its_words_would(command, argv) -> None:
    """``sh -c 'cilium-dbg status'`` in Cilium's agent image runs the same ``/usr/bin/cilium-dbg``
    as ``kubectl exec ds/cilium -- cilium-dbg status`` (cilium/cilium ``images/cilium/Dockerfile``
    puts it on PATH), so a string splits into the words POSIX sh would give it (``shlex`` in
    POSIX mode) and is answered alike; a string that is no cilium-dbg command goes to sh."""
    assert ciliumdbg.agent_argv(AGENT, command) == argv
    assert ciliumdbg.agent_argv(pod("web-1", "w1", {"app": "web"}), command) is None


@pytest.mark.parametrize(
    "command",
    [
        "cilium-dbg status | grep KubeProxy",
        "cilium-dbg status > /tmp/x",
        "cilium-dbg status; ip route",
        "cilium-dbg status && echo ok",
        "cilium-dbg service list $(echo -o json)",
        "cilium-dbg status `true`",
    ],
)
def test_cilium_dbg_in_shell_syntax_is_refused_plainly(command) -> None:
    """POSIX ``sh`` (Shell Command Language, 2.9 "Shell Commands"): pipelines, lists,
    redirections and substitutions are the shell's work, and no shell runs the sandbox's
    cilium-dbg: one LabError naming the command and what to do instead."""
    with pytest.raises(LabError) as refused:
        ciliumdbg.agent_argv(AGENT, command)
    assert repr(command) in refused.value.what and "without a shell" in refused.value.what
    assert "alone" in refused.value.fix
