"""Kubernetes' cluster DNS e2e cases (test/e2e/network/dns.go) on a Flannel sandbox lab.

Upstream's DNS pod (``createDNSPod``: a webserver on port 80, hostname ``dns-querier-1``,
subdomain ``dns-test-service``) runs two querier containers whose loop digs every name by UDP
and by TCP (``createProbeCommand``: ``dig +notcp|+tcp +noall +answer +search NAME A|SRV``, SRV for
names starting with ``_``, PTR for a cluster IP, and the pod's own ``a-b-c-d.<ns>.pod`` A
record) and writes OK for each non-empty answer. Here each of those digs runs once in the DNS
pod (its network namespace and resolv.conf, ``lab.exec``) and must answer. ``createTargetedProbeCommand``
(``dig +short +tries=12 +norecurse NAME TYPE``) must print the expected value exactly. The pod's
A record name is built from its IP as ``hostname -i`` would give it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from e2e_jig import agnhost_pod, module_lab, namespace

ZONE = "cluster.local"
_numbers = itertools.count()


@pytest.fixture(scope="module")
def lab():
    yield from module_lab("edn", "flannel")


@pytest.fixture
def ns(lab):
    """A fresh namespace per case (``framework.NewDefaultFramework("dns")``), deleted after."""
    name = f"dns-{next(_numbers)}"
    lab.apply(namespace(name))
    yield name
    lab.delete(lab.get("namespace", name, None))


def service_spec(name: str, ns: str, headless: bool, selector: dict[str, str]) -> dict[str, Any]:
    """``e2eservice.CreateServiceSpec`` for a Service with a port: port 80 named http."""
    spec: dict[str, Any] = {
        "selector": selector,
        "ports": [{"port": 80, "name": "http", "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def dns_pod(
    ns: str,
    labels: dict[str, str] | None = None,
    hostname: str = "dns-querier-1",
    subdomain: str = "dns-test-service",
) -> dict[str, Any]:
    """``createDNSPod``'s pod: agnhost's test-webserver on port 80 with a hostname and subdomain."""
    pod = agnhost_pod(
        "dns-test", ns, ["test-webserver"], [{"name": "http", "containerPort": 80}], labels
    )
    pod["spec"].update(hostname=hostname, subdomain=subdomain)
    return pod


def probe_names(lab, ns: str, names: list[str], ptr_ip: str = "") -> None:
    """``createProbeCommand`` + ``validateDNSResults``: every name (and the pod's A record, and
    the PTR of ``ptr_ip``) answers by UDP and by TCP."""
    pod_ip = lab.get("pod", "dns-test", ns)[0]["status"]["podIP"]
    lookups = [(name, "SRV" if name.startswith("_") else "A") for name in names]
    lookups.append((f"{pod_ip.replace('.', '-')}.{ns}.pod.{ZONE}", "A"))
    if ptr_ip:
        lookups.append((".".join(reversed(ptr_ip.split("."))) + ".in-addr.arpa.", "PTR"))
    failed = []
    for (name, rtype), transport in itertools.product(lookups, ("+notcp", "+tcp")):
        out = lab.exec(
            "dns-test", ["dig", transport, "+noall", "+answer", "+search", name, rtype], ns
        )
        if not out.stdout.strip():
            failed.append(f"{transport} {name} {rtype}")
    assert not failed, failed


def targeted(lab, ns: str, name: str, rtype: str) -> str:
    """``createTargetedProbeCommand``: what ``dig +short +tries=12 +norecurse`` prints."""
    out = lab.exec("dns-test", ["dig", "+short", "+tries=12", "+norecurse", name, rtype], ns)
    return out.stdout.strip()


def test_dns_for_the_cluster(lab, ns):
    """e2e test/e2e/network/dns.go: should provide DNS for the cluster"""
    lab.apply(dns_pod(ns))
    probe_names(lab, ns, [f"kubernetes.default.svc.{ZONE}"])


def _services(lab, ns: str) -> str:
    selector = {"dns-test": "true"}
    lab.apply(service_spec("dns-test-service", ns, True, selector))
    lab.apply(service_spec("test-service-2", ns, False, selector))
    lab.apply(dns_pod(ns, selector))
    return lab.get("service", "test-service-2", ns)[0]["spec"]["clusterIP"]


def test_dns_for_services(lab, ns):
    """e2e test/e2e/network/dns.go: should provide DNS for services"""
    cluster_ip = _services(lab, ns)
    names = [
        f"dns-test-service.{ns}.svc.{ZONE}",
        f"_http._tcp.dns-test-service.{ns}.svc.{ZONE}",
        f"_http._tcp.test-service-2.{ns}.svc.{ZONE}",
    ]
    probe_names(lab, ns, names, cluster_ip)


def test_partial_names_for_services(lab, ns):
    """e2e test/e2e/network/dns.go: should resolve DNS of partial qualified names for services [LinuxOnly]"""
    cluster_ip = _services(lab, ns)
    names = [
        "dns-test-service",
        f"dns-test-service.{ns}",
        f"dns-test-service.{ns}.svc",
        f"_http._tcp.dns-test-service.{ns}.svc",
        f"_http._tcp.test-service-2.{ns}.svc",
    ]
    probe_names(lab, ns, names, cluster_ip)


def test_dns_for_pods_subdomain(lab, ns):
    """e2e test/e2e/network/dns.go: should provide DNS for pods for Subdomain"""
    selector = {"dns-test-hostname-attribute": "true"}
    lab.apply(service_spec("dns-test-service-2", ns, True, selector))
    lab.apply(dns_pod(ns, selector, "dns-querier-2", "dns-test-service-2"))
    host_fqdn = f"dns-querier-2.dns-test-service-2.{ns}.svc.{ZONE}"
    probe_names(lab, ns, [host_fqdn, f"dns-test-service-2.{ns}.svc.{ZONE}"])


def test_dns_for_external_name_services(lab, ns):
    """e2e test/e2e/network/dns.go: should provide DNS for ExternalName services"""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dns-test-service-3", "namespace": ns},
        "spec": {"type": "ExternalName", "externalName": "foo.example.com"},
    }
    lab.apply(svc)
    lab.apply(dns_pod(ns))
    fqdn = f"dns-test-service-3.{ns}.svc.{ZONE}"
    assert targeted(lab, ns, fqdn, "CNAME") == "foo.example.com."
    live = lab.get("service", "dns-test-service-3", ns)[0]
    live["spec"]["externalName"] = "bar.example.com"
    lab.apply(live)
    assert targeted(lab, ns, fqdn, "CNAME") == "bar.example.com."
    live = lab.get("service", "dns-test-service-3", ns)[0]
    live["spec"].update(type="ClusterIP", ports=[{"port": 80, "name": "http", "protocol": "TCP"}])
    lab.apply(live)
    cluster_ip = lab.get("service", "dns-test-service-3", ns)[0]["spec"]["clusterIP"]
    assert targeted(lab, ns, fqdn, "A") == cluster_ip
