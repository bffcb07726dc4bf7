"""ClusterStore Services: ClusterIP/NodePort/LoadBalancer allocation, headless, ExternalName,
Endpoints and EndpointSlices (named ports, readiness, hostnames, mirroring), Ingress status."""

from __future__ import annotations

import copy
import ipaddress

import pytest

from labkit.errors import LabError
from labkit.lab import ObjectRef
from labkit.sandbox.cluster.allocation import LB_POOL
from labkit.sandbox.store import ClusterStore

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = ClusterStore.bootstrap("netlab", "flannel").to_dict()


def fresh() -> ClusterStore:
    return ClusterStore.from_dict(_BOOT)


def pod(name, labels, ports=None, **spec):
    container = {
        "name": "app",
        "image": AGNHOST,
        "ports": ports or [{"name": "http", "containerPort": 8080}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container], **spec},
    }


def deployment(name, replicas=2, labels=None, ports=None):
    labels = labels or {"app": name}
    container = {
        "name": "app",
        "image": AGNHOST,
        "ports": ports or [{"name": "http", "containerPort": 8080}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def service(name, selector=None, ports=None, ns=None, **spec):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    body = {"ports": ports or [{"port": 80, "targetPort": 8080}], **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body}


def svc(store, name, ns="default"):
    return store.get("svc", name, ns)[0]


def slices(store, name, ns="default"):
    return store.get("endpointslices", namespace=ns, selector=f"kubernetes.io/service-name={name}")


def endpoints(store, name, ns="default"):
    return store.get("endpoints", name, ns)[0]


# --------------------------------------------------------------------------- ClusterIP


def test_cluster_ip_is_allocated_in_range_deterministically_and_defaults_are_filled():
    a, b = fresh(), fresh()
    for s in (a, b):
        s.apply([service("web", {"app": "web"})])
    spec = svc(a, "web")["spec"]
    assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/16")
    assert spec["clusterIP"] not in ("10.96.0.1", "10.96.0.10")
    assert (
        spec["clusterIPs"] == [spec["clusterIP"]]
        and spec["clusterIP"] == svc(b, "web")["spec"]["clusterIP"]
    )
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
    assert svc(a, "web")["status"] == {"loadBalancer": {}}


def test_redeploy_gets_the_same_cluster_ip():
    store = fresh()
    store.apply([service("web", {"app": "web"})])
    ip = svc(store, "web")["spec"]["clusterIP"]
    store.delete([ObjectRef("Service", "web", "default")])
    store.apply([service("web", {"app": "web"})])
    assert svc(store, "web")["spec"]["clusterIP"] == ip


def test_target_port_defaults_to_port():
    store = fresh()
    store.apply([service("web", {"app": "web"}, ports=[{"port": 8080}])])
    assert svc(store, "web")["spec"]["ports"][0]["targetPort"] == 8080


def test_many_services_get_distinct_ips():
    store = fresh()
    store.apply([service(f"s{i}", {"app": f"s{i}"}) for i in range(60)])
    ips = [s["spec"]["clusterIP"] for s in store.get("svc", namespace=None)]
    assert len(ips) == len(set(ips))


def test_requested_cluster_ip_is_honoured_or_refused_when_taken():
    store = fresh()
    store.apply([service("web", {"app": "web"}, clusterIP="10.96.100.100")])
    assert svc(store, "web")["spec"]["clusterIP"] == "10.96.100.100"
    with pytest.raises(LabError) as err:
        store.apply([service("other", {"app": "x"}, clusterIP="10.96.100.100")])
    assert "default/web" in err.value.what
    with pytest.raises(LabError) as dns:
        store.apply([service("other", {"app": "x"}, clusterIP="10.96.0.10")])
    assert "kube-system/kube-dns" in dns.value.what
    with pytest.raises(LabError) as outside:
        store.apply([service("other", {"app": "x"}, clusterIP="10.100.0.5")])
    assert "10.96.0.0/16" in outside.value.what


def test_cluster_ip_is_kept_on_update_and_cannot_change():
    store = fresh()
    store.apply([service("web", {"app": "web"})])
    ip = svc(store, "web")["spec"]["clusterIP"]
    store.apply([service("web", {"app": "web2"})])
    assert svc(store, "web")["spec"]["clusterIP"] == ip
    store.apply([service("web", {"app": "web2"}, clusterIP=ip)])
    new_ip = "10.96.200.1" if ip != "10.96.200.1" else "10.96.200.2"
    with pytest.raises(LabError) as err:
        store.apply([service("web", {"app": "web2"}, clusterIP=new_ip)])
    assert "cannot change" in err.value.what


def test_fixed_cluster_ips_for_kubernetes_and_kube_dns_without_asking():
    store = fresh()
    store.delete([ObjectRef("Service", "kube-dns", "kube-system")])
    store.apply(
        [
            service(
                "kube-dns",
                {"k8s-app": "kube-dns"},
                ns="kube-system",
                ports=[{"port": 53, "protocol": "UDP"}],
            )
        ]
    )
    assert svc(store, "kube-dns", "kube-system")["spec"]["clusterIP"] == "10.96.0.10"


# ----------------------------------------------------------------------- headless and ExternalName


def test_headless_service_has_no_cluster_ip_and_per_pod_endpoints():
    store = fresh()
    store.apply(
        [
            deployment("db", 2),
            service(
                "db",
                {"app": "db"},
                clusterIP="None",
                ports=[{"port": 5432, "targetPort": 8080, "name": "pg"}],
            ),
        ]
    )
    spec = svc(store, "db")["spec"]
    assert spec["clusterIP"] == "None" and spec["clusterIPs"] == ["None"]
    ep = endpoints(store, "db")
    assert len(ep["subsets"][0]["addresses"]) == 2
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert slices(store, "db")[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_headless_must_be_cluster_ip_type():
    with pytest.raises(LabError):
        fresh().apply([service("db", {"app": "db"}, clusterIP="None", type="NodePort")])


def test_headless_service_without_ports_lists_addresses_only():
    store = fresh()
    store.apply(
        [
            pod("a", {"app": "a"}),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "a"},
                "spec": {"clusterIP": "None", "selector": {"app": "a"}},
            },
        ]
    )
    assert list(endpoints(store, "a")["subsets"][0]) == ["addresses"]
    assert slices(store, "a")[0]["ports"] == []


def test_statefulset_pods_get_hostnames_in_endpoints():
    store = fresh()
    labels = {"app": "db"}
    store.apply(
        [
            service("db", labels, clusterIP="None", ports=[{"port": 5432, "targetPort": 8080}]),
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 2,
                    "serviceName": "db",
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "pg",
                                    "image": "postgres:17",
                                    "ports": [{"containerPort": 8080}],
                                }
                            ]
                        },
                    },
                },
            },
            service("db-other", labels, ports=[{"port": 5432, "targetPort": 8080}]),
        ]
    )
    hostnames = sorted(e["hostname"] for e in slices(store, "db")[0]["endpoints"])
    assert hostnames == ["db-0", "db-1"]
    assert sorted(a["hostname"] for a in endpoints(store, "db")["subsets"][0]["addresses"]) == [
        "db-0",
        "db-1",
    ]
    assert all("hostname" not in e for e in slices(store, "db-other")[0]["endpoints"])


def test_external_name_service_has_no_ip_and_no_endpoints():
    store = fresh()
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "payments"},
                "spec": {"type": "ExternalName", "externalName": "api.payments.example"},
            }
        ]
    )
    spec = svc(store, "payments")["spec"]
    assert spec["type"] == "ExternalName" and spec["externalName"] == "api.payments.example"
    assert "clusterIP" not in spec
    assert store.get("ep", "payments") == [] and slices(store, "payments") == []


def test_switching_to_external_name_and_back():
    store = fresh()
    store.apply([pod("a", {"app": "a"}), service("a", {"app": "a"})])
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "a"},
                "spec": {"type": "ExternalName", "externalName": "example.org"},
            }
        ]
    )
    assert store.get("ep", "a") == [] and slices(store, "a") == []
    store.apply([service("a", {"app": "a"})])
    assert svc(store, "a")["spec"]["clusterIP"] != "None" and endpoints(store, "a")["subsets"]


# --------------------------------------------------------------------------- NodePort


def test_node_port_given_is_kept_and_auto_ports_are_in_range():
    store = fresh()
    store.apply(
        [
            service(
                "my-nodeport-service",
                {"app": "web"},
                type="NodePort",
                ports=[
                    {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"name": "metrics", "port": 9090, "targetPort": 9090},
                ],
            )
        ]
    )
    ports = svc(store, "my-nodeport-service")["spec"]["ports"]
    assert ports[0]["nodePort"] == 30080 and 30000 <= ports[1]["nodePort"] <= 32767
    assert ports[1]["nodePort"] != 30080
    assert svc(store, "my-nodeport-service")["spec"]["externalTrafficPolicy"] == "Cluster"


def test_duplicate_node_port_names_the_holder():
    store = fresh()
    store.apply(
        [service("first", {"app": "a"}, type="NodePort", ports=[{"port": 80, "nodePort": 30080}])]
    )
    with pytest.raises(LabError) as err:
        store.apply(
            [
                service(
                    "second", {"app": "b"}, type="NodePort", ports=[{"port": 80, "nodePort": 30080}]
                )
            ]
        )
    assert "default/first" in err.value.what and "30080" in err.value.what


@pytest.mark.parametrize(
    "ports",
    [
        [{"port": 80, "nodePort": 29999}],
        [{"port": 80, "nodePort": 32768}],
        [{"port": 80, "nodePort": 30100}, {"port": 81, "nodePort": 30100}],
    ],
)
def test_bad_node_ports_are_refused(ports):
    with pytest.raises(LabError):
        fresh().apply([service("s", {"app": "s"}, type="NodePort", ports=ports)])


def test_same_node_port_for_two_protocols_in_one_service_is_fine():
    store = fresh()
    store.apply(
        [
            service(
                "dns",
                {"app": "dns"},
                type="NodePort",
                ports=[
                    {"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053},
                    {"name": "t", "port": 53, "protocol": "TCP", "nodePort": 30053},
                ],
            )
        ]
    )
    assert [p["nodePort"] for p in svc(store, "dns")["spec"]["ports"]] == [30053, 30053]


def test_node_port_on_cluster_ip_service_is_refused():
    with pytest.raises(LabError) as err:
        fresh().apply([service("s", {"app": "s"}, ports=[{"port": 80, "nodePort": 30080}])])
    assert "NodePort" in err.value.fix


def test_node_ports_survive_updates_and_type_changes():
    store = fresh()
    store.apply([service("web", {"app": "web"}, type="NodePort")])
    port = svc(store, "web")["spec"]["ports"][0]["nodePort"]
    store.apply([service("web", {"app": "web", "v": "2"}, type="NodePort")])
    assert svc(store, "web")["spec"]["ports"][0]["nodePort"] == port
    store.apply([service("web", {"app": "web"})])
    assert "nodePort" not in svc(store, "web")["spec"]["ports"][0]
    store.apply(
        [service("other", {"app": "o"}, type="NodePort", ports=[{"port": 80, "nodePort": port}])]
    )
    assert svc(store, "other")["spec"]["ports"][0]["nodePort"] == port


def test_node_port_allocation_is_deterministic():
    a, b = fresh(), fresh()
    for s in (a, b):
        s.apply([service("web", {"app": "web"}, type="NodePort")])
    assert svc(a, "web")["spec"]["ports"] == svc(b, "web")["spec"]["ports"]


# --------------------------------------------------------------------------- LoadBalancer


def test_load_balancer_addresses_come_from_the_pool_in_order():
    store = fresh()
    store.apply(
        [
            service("lb1", {"app": "a"}, type="LoadBalancer"),
            service("lb2", {"app": "b"}, type="LoadBalancer"),
        ]
    )
    assert svc(store, "lb1")["status"]["loadBalancer"]["ingress"] == [
        {"ip": "172.18.255.201", "ipMode": "VIP"}
    ]
    assert svc(store, "lb2")["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.202"
    assert all(p["nodePort"] for p in svc(store, "lb1")["spec"]["ports"])
    assert svc(store, "lb1")["spec"]["allocateLoadBalancerNodePorts"] is True


def test_load_balancer_ip_is_kept_on_update_freed_on_delete_and_type_change():
    store = fresh()
    store.apply([service("lb1", {"app": "a"}, type="LoadBalancer")])
    store.apply([service("lb1", {"app": "a", "x": "y"}, type="LoadBalancer")])
    assert svc(store, "lb1")["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.201"
    store.apply([service("lb1", {"app": "a"})])
    assert svc(store, "lb1")["status"] == {"loadBalancer": {}}
    store.apply([service("lb2", {"app": "b"}, type="LoadBalancer")])
    assert svc(store, "lb2")["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.201"


def test_requested_load_balancer_ip():
    store = fresh()
    store.apply([service("lb", {"app": "a"}, type="LoadBalancer", loadBalancerIP="172.18.255.240")])
    assert svc(store, "lb")["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.240"
    with pytest.raises(LabError) as taken:
        store.apply(
            [service("lb2", {"app": "b"}, type="LoadBalancer", loadBalancerIP="172.18.255.240")]
        )
    assert "default/lb" in taken.value.what
    with pytest.raises(LabError):
        store.apply([service("lb3", {"app": "c"}, type="LoadBalancer", loadBalancerIP="10.1.1.1")])


def test_exhausted_pool_leaves_the_service_pending_until_an_address_frees():
    store = fresh()
    count = len(LB_POOL) - 1  # the ingress controller holds the first address
    store.apply([service(f"lb{i}", {"app": "a"}, type="LoadBalancer") for i in range(count + 1)])
    assert svc(store, f"lb{count}")["status"] == {"loadBalancer": {}}
    store.delete([ObjectRef("Service", "lb0", "default")])
    assert (
        svc(store, f"lb{count}")["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.201"
    )


# --------------------------------------------------------------------------- endpoints


def test_endpoints_and_slices_follow_the_selector():
    store = fresh()
    store.apply(
        [deployment("web", 3), pod("stray", {"app": "other"}), service("web", {"app": "web"})]
    )
    pods = store.get("pods", selector="app=web")
    ips = sorted((p["status"]["podIP"] for p in pods), key=ipaddress.ip_address)
    ep = endpoints(store, "web")
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ips
    assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    by_ip = {p["status"]["podIP"]: p for p in pods}
    for address in ep["subsets"][0]["addresses"]:
        p = by_ip[address["ip"]]
        assert address["nodeName"] == p["spec"]["nodeName"]
        assert address["targetRef"] == {
            "kind": "Pod",
            "namespace": "default",
            "name": p["metadata"]["name"],
            "uid": p["metadata"]["uid"],
        }
    (sl,) = slices(store, "web")
    assert sl["apiVersion"] == "discovery.k8s.io/v1" and sl["addressType"] == "IPv4"
    assert (
        sl["metadata"]["name"].startswith("web-") and len(sl["metadata"]["name"]) == len("web-") + 5
    )
    assert (
        sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert sl["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert [e["addresses"][0] for e in sl["endpoints"]] == ips
    assert all(
        e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        for e in sl["endpoints"]
    )
    assert {e["nodeName"] for e in sl["endpoints"]} == {p["spec"]["nodeName"] for p in pods}


def test_changing_the_selector_moves_endpoints():
    """Scenario 3's switch: mysql, then both engines through a shared label, then postgres only."""
    store = fresh()
    store.apply(
        [
            pod("mysql", {"app": "mysql", "role": "db"}),
            pod("pg", {"app": "postgres", "role": "db"}),
            service("db", {"app": "mysql"}),
        ]
    )
    mysql_ip = store.get("pod", "mysql")[0]["status"]["podIP"]
    pg_ip = store.get("pod", "pg")[0]["status"]["podIP"]

    def ips():
        return sorted(a["ip"] for a in endpoints(store, "db")["subsets"][0]["addresses"])

    assert ips() == [mysql_ip]
    store.apply([service("db", {"role": "db"})])
    assert ips() == sorted([mysql_ip, pg_ip])
    store.apply([service("db", {"app": "postgres"})])
    assert ips() == [pg_ip]


def test_service_with_no_matching_pods_has_empty_endpoints_and_a_placeholder_slice():
    """Scenario 17: the selector asks for a label the pods lack."""
    store = fresh()
    store.apply(
        [
            deployment("postgres", 2, labels={"app": "postgres"}),
            service("postgres-db", {"app": "postgres", "tier": "db"}, ports=[{"port": 5432}]),
        ]
    )
    ep = endpoints(store, "postgres-db")
    assert "subsets" not in ep
    (placeholder,) = slices(store, "postgres-db")
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    store.apply([service("postgres-db", {"app": "postgres"}, ports=[{"port": 5432}])])
    assert len(endpoints(store, "postgres-db")["subsets"][0]["addresses"]) == 2
    assert len(slices(store, "postgres-db")) == 1 and slices(store, "postgres-db")[0]["endpoints"]


def test_named_target_port_is_resolved_per_pod():
    store = fresh()
    store.apply(
        [
            pod("old", {"app": "web"}, ports=[{"name": "http", "containerPort": 8080}]),
            pod("new", {"app": "web"}, ports=[{"name": "http", "containerPort": 9090}]),
            pod("none", {"app": "web"}, ports=[{"name": "metrics", "containerPort": 9100}]),
            service(
                "web", {"app": "web"}, ports=[{"name": "web", "port": 80, "targetPort": "http"}]
            ),
        ]
    )
    ip = {n: store.get("pod", n)[0]["status"]["podIP"] for n in ("old", "new", "none")}
    ep = endpoints(store, "web")
    by_port = {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in ep["subsets"]}
    assert by_port == {8080: [ip["old"]], 9090: [ip["new"]]}
    assert all(s["ports"][0]["name"] == "web" for s in ep["subsets"])
    got = {}
    for sl in slices(store, "web"):
        got[tuple(p["port"] for p in sl["ports"])] = [e["addresses"][0] for e in sl["endpoints"]]
    assert got == {(8080,): [ip["old"]], (9090,): [ip["new"]], (): [ip["none"]]}


def test_named_target_port_in_a_second_container_and_protocol_matters():
    store = fresh()
    doc = pod("multi", {"app": "multi"}, ports=[{"name": "app", "containerPort": 8080}])
    doc["spec"]["containers"].append(
        {
            "name": "dns",
            "image": "coredns/coredns:1.12.0",
            "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}],
        }
    )
    store.apply(
        [
            doc,
            service(
                "multi",
                {"app": "multi"},
                ports=[
                    {"name": "dns-udp", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": "dns"},
                ],
            ),
        ]
    )
    (sl,) = slices(store, "multi")
    assert sl["ports"] == [{"name": "dns-udp", "port": 5353, "protocol": "UDP"}]


def test_multi_port_service_and_app_protocol():
    store = fresh()
    store.apply(
        [
            pod(
                "a",
                {"app": "a"},
                ports=[
                    {"name": "http", "containerPort": 8080},
                    {"name": "grpc", "containerPort": 9000},
                ],
            ),
            service(
                "a",
                {"app": "a"},
                ports=[
                    {"name": "http", "port": 80, "targetPort": "http"},
                    {"name": "grpc", "port": 9000, "appProtocol": "kubernetes.io/h2c"},
                ],
            ),
        ]
    )
    (sl,) = slices(store, "a")
    assert sl["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP"},
        {"name": "grpc", "port": 9000, "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"},
    ]


def test_pending_pods_are_not_endpoints_and_host_network_pods_are():
    store = fresh()
    store.apply(
        [
            pod("lost", {"app": "w"}, nodeSelector={"x": "y"}),
            pod("host", {"app": "w"}, hostNetwork=True, nodeName="netlab-worker"),
            service("w", {"app": "w"}),
        ]
    )
    assert [a["ip"] for a in endpoints(store, "w")["subsets"][0]["addresses"]] == ["172.18.0.3"]


def test_publish_not_ready_addresses_keeps_unready_pods_ready():
    store = fresh()
    store.apply(
        [
            pod("a", {"app": "a"}),
            service("a", {"app": "a"}, clusterIP="None", publishNotReadyAddresses=True),
        ]
    )
    store.set_pod_ready("default", "a", False)
    (sl,) = slices(store, "a")
    assert sl["endpoints"][0]["conditions"] == {
        "ready": True,
        "serving": True,
        "terminating": False,
    }
    assert endpoints(store, "a")["subsets"][0]["addresses"]


def test_services_only_select_pods_of_their_namespace():
    store = fresh()
    store.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "finance"}},
            pod("pay", {"app": "pay"}),
            service("pay", {"app": "pay"}, ns="finance"),
        ]
    )
    assert "subsets" not in endpoints(store, "pay", "finance")


def test_selectorless_service_mirrors_user_endpoints():
    store = fresh()
    store.apply(
        [
            service("external-db", None, ports=[{"port": 5432}]),
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "external-db"},
                "subsets": [{"addresses": [{"ip": "172.18.0.1"}], "ports": [{"port": 5432}]}],
            },
        ]
    )
    ep = endpoints(store, "external-db")
    assert ep["subsets"] == [{"addresses": [{"ip": "172.18.0.1"}], "ports": [{"port": 5432}]}]
    (sl,) = slices(store, "external-db")
    assert (
        sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslicemirroring-controller.k8s.io"
    )
    assert sl["endpoints"][0]["addresses"] == ["172.18.0.1"] and sl["ports"][0]["port"] == 5432
    store.delete([ObjectRef("Service", "external-db", "default")])
    assert store.get("ep", "external-db") == [] and slices(store, "external-db") == []


def test_selectorless_service_without_endpoints_has_nothing():
    store = fresh()
    store.apply([service("manual", None)])
    assert store.get("ep", "manual") == [] and slices(store, "manual") == []


def test_endpoints_follow_scaling_and_pod_replacement():
    store = fresh()
    store.apply([deployment("web", 2), service("web", {"app": "web"})])
    store.apply([deployment("web", 4)])
    assert len(endpoints(store, "web")["subsets"][0]["addresses"]) == 4
    victim = store.get("pods", selector="app=web")[0]
    store.delete([ObjectRef("Pod", victim["metadata"]["name"], "default")])
    addresses = endpoints(store, "web")["subsets"][0]["addresses"]
    assert len(addresses) == 4 and victim["metadata"]["name"] not in {
        a["targetRef"]["name"] for a in addresses
    }


def test_three_endpoints_for_kube_proxy_lesson():
    store = fresh()
    store.apply([deployment("backend", 3), service("backend", {"app": "backend"})])
    assert len(slices(store, "backend")[0]["endpoints"]) == 3


# --------------------------------------------------------------------------- Ingress


def ingress(name, host="services.company.com", cls=None, annotations=None):
    meta = {"name": name, **({"annotations": annotations} if annotations else {})}
    spec = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/api",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "api", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    }
    if cls:
        spec["ingressClassName"] = cls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def test_ingress_gets_the_default_class_and_the_controllers_address():
    store = fresh()
    store.apply([ingress("site")])
    ing = store.get("ing", "site")[0]
    assert ing["spec"]["ingressClassName"] == "cloud-provider-kind"
    assert ing["status"]["loadBalancer"]["ingress"] == [{"ip": "172.18.255.200"}]


def test_ingress_of_another_class_is_not_served():
    store = fresh()
    store.apply(
        [
            ingress("nginx", cls="nginx"),
            ingress("legacy", annotations={"kubernetes.io/ingress.class": "nginx"}),
        ]
    )
    assert store.get("ing", "nginx")[0]["status"] == {"loadBalancer": {}}
    legacy = store.get("ing", "legacy")[0]
    assert "ingressClassName" not in legacy["spec"] and legacy["status"] == {"loadBalancer": {}}


def test_ingress_status_follows_the_controller_service():
    store = fresh()
    store.apply([ingress("site")])
    store.delete([ObjectRef("Service", "ingress-controller", "ingress-system")])
    assert store.get("ing", "site")[0]["status"] == {"loadBalancer": {}}


def test_ingress_class_is_kept_on_update():
    store = fresh()
    store.apply([ingress("site")])
    doc = ingress("site", host="other.company.com")
    store.apply([copy.deepcopy(doc)])
    ing = store.get("ing", "site")[0]
    assert (
        ing["spec"]["ingressClassName"] == "cloud-provider-kind"
        and ing["spec"]["rules"][0]["host"] == "other.company.com"
    )


def test_target_port_zero_and_null_fields_get_the_api_servers_defaults():
    store = fresh()
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "zero"},
                "spec": {
                    "type": None,
                    "selector": {"app": "x"},
                    "ports": [{"port": 81, "targetPort": 0}],
                },
            }
        ]
    )
    spec = store.get("service", "zero")[0]["spec"]
    assert spec["ports"][0]["targetPort"] == 81 and spec["type"] == "ClusterIP"


# --------------------------------------------------------------------------- type changes


def test_get_edit_type_put_drops_type_dependent_fields():
    """strategy.go dropTypeDependentFields + storage/alloc.go releasing node ports: a
    LoadBalancer (Local) read back, set to ClusterIP and applied loses its nodePorts,
    healthCheckNodePort, externalTrafficPolicy, allocateLoadBalancerNodePorts and LB status, and
    its node ports are free for another Service."""
    store = fresh()
    store.apply([service("lb", {"app": "a"}, type="LoadBalancer", externalTrafficPolicy="Local")])
    read = svc(store, "lb")
    node_port, health = read["spec"]["ports"][0]["nodePort"], read["spec"]["healthCheckNodePort"]
    read["spec"]["type"] = "ClusterIP"
    store.apply([read])
    spec = svc(store, "lb")["spec"]
    assert "nodePort" not in spec["ports"][0]
    for field in ("healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
        assert field not in spec
    assert svc(store, "lb")["status"] == {"loadBalancer": {}}
    store.apply(
        [
            service(
                "other",
                {"app": "o"},
                type="NodePort",
                ports=[{"port": 80, "nodePort": node_port}, {"port": 81, "nodePort": health}],
            )
        ]
    )


def test_node_port_to_load_balancer_and_back_keeps_the_node_ports():
    """storage.go patchAllocatedValues keeps allocated nodePorts across NodePort <-> LoadBalancer;
    alloc.go updateHealthCheckNodePort allocates the health check node port when the Service
    starts needing it, and strategy.go drops it (and allocateLoadBalancerNodePorts) back on
    NodePort."""
    store = fresh()
    store.apply([service("web", {"app": "web"}, type="NodePort", externalTrafficPolicy="Local")])
    read = svc(store, "web")
    node_port = read["spec"]["ports"][0]["nodePort"]
    assert "healthCheckNodePort" not in read["spec"]
    read["spec"]["type"] = "LoadBalancer"
    store.apply([read])
    read = svc(store, "web")
    assert read["spec"]["ports"][0]["nodePort"] == node_port
    health = read["spec"]["healthCheckNodePort"]
    assert 30000 <= health <= 32767 and health != node_port
    read["spec"]["type"] = "NodePort"
    store.apply([read])
    spec = svc(store, "web")["spec"]
    assert spec["ports"][0]["nodePort"] == node_port
    assert spec["externalTrafficPolicy"] == "Local"
    assert "healthCheckNodePort" not in spec and "allocateLoadBalancerNodePorts" not in spec


def test_health_check_node_port_requested_kept_and_refused():
    """alloc.go allocHealthCheckNodePort: a requested port is reserved if free, else refused as
    already allocated; validation.go refuses healthCheckNodePort on any Service but a
    LoadBalancer with externalTrafficPolicy Local; an update without it keeps the old one."""
    store = fresh()
    store.apply(
        [
            service(
                "lb",
                {"app": "a"},
                type="LoadBalancer",
                externalTrafficPolicy="Local",
                healthCheckNodePort=32100,
            )
        ]
    )
    assert svc(store, "lb")["spec"]["healthCheckNodePort"] == 32100
    store.apply(
        [service("lb", {"app": "a", "v": "2"}, type="LoadBalancer", externalTrafficPolicy="Local")]
    )
    assert svc(store, "lb")["spec"]["healthCheckNodePort"] == 32100
    with pytest.raises(
        LabError, match=r"32100: provided port is already allocated \(Service default/lb uses it\)"
    ):
        store.apply(
            [service("np", {"app": "b"}, type="NodePort", ports=[{"port": 80, "nodePort": 32100}])]
        )
    with pytest.raises(LabError, match="only a LoadBalancer with externalTrafficPolicy: Local"):
        store.apply([service("np", {"app": "b"}, type="NodePort", healthCheckNodePort=32200)])
    assert store.get("svc", "np", "default") == []
