"""``dig`` from a sandbox pod gets what CoreDNS's kubernetes plugin answers on a kind cluster: SRV
without ``_port._proto``, a pod IP's PTR per Service, endpoint names of ClusterIP Services, the
query's case, ANY, NS glue, dns-version's TTL, an empty namespace, headless shuffling. Each test
names the CoreDNS source (github.com/coredns/coredns) it follows; the pure rules are tested
exhaustively in tests/unit/test_dns_coredns_answers.py."""

from __future__ import annotations

from typing import NamedTuple

from labkit.model.dns.names import dashed

POD = "demo/client-a"
Z = "cluster.local."


class Dig(NamedTuple):
    """What dig printed: the status and (name, ttl, type, data) rows of two sections."""

    status: str
    answer: list[tuple[str, int, str, str]]
    additional: list[tuple[str, int, str, str]]


def dig(lab, args: str) -> Dig:
    """Run ``dig`` in the client pod (its resolv.conf names the kube-dns Service) and parse it."""
    run = lab.exec(POD, f"dig +nocmd +noquestion +nostats {args}")
    assert run.ok, run.stderr
    status, sections, current = "", {"ANSWER": [], "ADDITIONAL": []}, None
    for line in run.stdout.splitlines():
        if "status: " in line:
            status = line.split("status: ")[1].split(",")[0]
        elif line.startswith(";; ") and line.endswith(" SECTION:"):
            current = line[3:].split()[0]
        elif not line.strip():
            current = None
        elif current in sections and not line.startswith(";"):
            name, ttl, _, rtype, data = line.split(None, 4)
            sections[current].append((name, int(ttl), rtype, data))
    return Dig(status, sorted(sections["ANSWER"]), sorted(sections["ADDITIONAL"]))


def cluster_ip(lab, name: str, namespace: str) -> str:
    return lab.get("svc", name, namespace)[0]["spec"]["clusterIP"]


def pod_ips(lab, namespace: str, selector: str) -> list[str]:
    return sorted(p["status"]["podIP"] for p in lab.get("pods", None, namespace, selector))


def test_srv_without_port_and_protocol(flannel_lab):
    """CoreDNS plugin/kubernetes/kubernetes.go findServices (matchPortAndProtocol with neither)
    and plugin/backend_lookup.go SRV: every port of a ClusterIP Service (weight 100/2), and one
    answer per endpoint of a headless Service (weight 100/3), addresses as additional records."""
    api = f"api.demo.svc.{Z}"
    got = dig(flannel_lab, f"SRV {api}")
    assert got.answer == [(api, 30, "SRV", f"0 50 {port} {api}") for port in (80, 9090)]
    assert got.additional == [(api, 30, "A", cluster_ip(flannel_lab, "api", "demo"))]
    headless = f"web-headless.demo.svc.{Z}"
    web = pod_ips(flannel_lab, "demo", "app=web")
    got = dig(flannel_lab, f"SRV {headless}")
    assert got.answer == sorted(
        (headless, 30, "SRV", f"0 33 8080 {dashed(ip)}.{headless}") for ip in web
    )
    assert got.additional == sorted((f"{dashed(ip)}.{headless}", 30, "A", ip) for ip in web)


def test_a_pod_ips_ptr_names_every_service_holding_it(flannel_lab):
    """CoreDNS plugin/kubernetes/reverse.go serviceRecordForIP (reverse_test.go "double-ep"): a
    web pod is an endpoint of four Services, a CoreDNS pod of kube-dns, the API server's address
    of kubernetes; the pod name is the dashed IP (endpointHostname)."""
    lab = flannel_lab
    ip = pod_ips(lab, "demo", "app=web")[0]
    services = ("web", "web-np", "web-lb", "web-headless")
    assert dig(lab, f"-x {ip}").answer == sorted(
        (f"{'.'.join(reversed(ip.split('.')))}.in-addr.arpa.", 30, "PTR", name)
        for name in (f"{dashed(ip)}.{s}.demo.svc.{Z}" for s in services)
    )
    coredns = pod_ips(lab, "kube-system", "k8s-app=kube-dns")[0]
    assert [row[3] for row in dig(lab, f"-x {coredns}").answer] == [
        f"{dashed(coredns)}.kube-dns.kube-system.svc.{Z}"
    ]
    (slice_,) = lab.get("endpointslices", None, "default", "kubernetes.io/service-name=kubernetes")
    apiserver = slice_["endpoints"][0]["addresses"][0]
    assert [row[3] for row in dig(lab, f"-x {apiserver}").answer] == [
        f"{dashed(apiserver)}.kubernetes.default.svc.{Z}"
    ]


def test_endpoint_names_of_a_cluster_ip_service(flannel_lab):
    """CoreDNS findServices: "Endpoint query or headless service" answers ``<ip>.<svc>`` for a
    ClusterIP Service with the endpoint's IP; an address that is not an endpoint is NXDOMAIN."""
    ip = pod_ips(flannel_lab, "demo", "app=web")[0]
    got = dig(flannel_lab, f"{dashed(ip)}.web.demo.svc.cluster.local")
    assert (got.status, [row[3] for row in got.answer]) == ("NOERROR", [ip])
    assert dig(flannel_lab, "10-99-99-99.web.demo.svc.cluster.local").status == "NXDOMAIN"


def test_owner_names_keep_the_query_case(flannel_lab):
    """CoreDNS plugin/kubernetes/handler_case_test.go TestPreserveCase: the owner is the name as
    asked; an SRV target takes the query's spelling of the zone."""
    got = dig(flannel_lab, "WEB.Demo.SVC.Cluster.Local")
    assert [row[0] for row in got.answer] == ["WEB.Demo.SVC.Cluster.Local."]
    srv = dig(flannel_lab, "SRV _HTTP._TCP.Web.Demo.Svc.CLUSTER.LOCAL")
    assert [(row[0], row[3].split()[-1]) for row in srv.answer] == [
        ("_HTTP._TCP.Web.Demo.Svc.CLUSTER.LOCAL.", "web.demo.svc.CLUSTER.LOCAL.")
    ]


def test_any_ns_and_dns_version(flannel_lab):
    """CoreDNS plugin/kubernetes/handler.go ServeDNS (ANY: a fake A lookup, NODATA), ns.go
    nsAddrs with backend_lookup.go NS (the kube-dns Service and its glue address) and
    kubernetes.go Services (dns-version TXT, TTL 28800, which reaches the pod because kubeadm's
    Corefile disables the cache for cluster.local: kubernetes/kubernetes#128359)."""
    lab = flannel_lab
    assert dig(lab, "ANY web.demo.svc.cluster.local") == Dig("NOERROR", [], [])
    ns = dig(lab, "NS cluster.local")
    kube_dns = f"kube-dns.kube-system.svc.{Z}"
    assert ns.answer == [(Z, 30, "NS", kube_dns)]
    assert ns.additional == [(kube_dns, 30, "A", cluster_ip(lab, "kube-dns", "kube-system"))]
    assert dig(lab, "TXT dns-version.cluster.local").answer == [
        (f"dns-version.{Z}", 28800, "TXT", '"1.1.0"')
    ]


def test_an_empty_namespace_is_nodata(flannel_lab):
    """CoreDNS findServices ("handle empty service name": NODATA when the namespace exists,
    NXDOMAIN when it does not); a Service that is not there is NXDOMAIN either way."""
    lab = flannel_lab
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dns-empty"}}
    assert dig(lab, "dns-empty.svc.cluster.local").status == "NXDOMAIN"
    lab.apply([namespace])
    try:
        assert dig(lab, "dns-empty.svc.cluster.local") == Dig("NOERROR", [], [])
        assert dig(lab, "dns-empty.pod.cluster.local") == Dig("NOERROR", [], [])
        assert dig(lab, "web.dns-empty.svc.cluster.local").status == "NXDOMAIN"
    finally:
        lab.delete([namespace])
    assert dig(lab, "dns-empty.svc.cluster.local").status == "NXDOMAIN"


def test_headless_addresses_come_shuffled(flannel_lab):
    """CoreDNS plugin/loadbalance/loadbalance.go (``loadbalance`` is in kubeadm's Corefile): the
    three web pods' addresses come in varying order (all 20 replies in one order: 6 * 6^-20)."""
    run = flannel_lab.exec(
        POD,
        "for i in $(seq 20); do dig +short web-headless.demo.svc.cluster.local | paste -sd,; done",
    )
    orders = run.stdout.split()
    assert len(orders) == 20 and len(set(orders)) > 1
    assert {frozenset(o.split(",")) for o in orders} == {
        frozenset(pod_ips(flannel_lab, "demo", "app=web"))
    }
