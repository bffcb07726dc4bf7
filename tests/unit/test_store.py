"""ClusterStore core: bootstrap, apply/get/delete semantics, all-or-nothing, persistence,
determinism."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid

import pytest

from labkit.errors import LabError
from labkit.lab import ObjectRef
from labkit.manifests import validate
from labkit.sandbox.bootstrap import system_manifests
from labkit.sandbox.cluster.admission import MODELLED_KINDS
from labkit.sandbox.store import ClusterStore, NodeSpec, kind_like_nodes
from labkit.sandbox.system.addons import COREDNS_IMAGE

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = {
    cni: ClusterStore.bootstrap("netlab", cni).to_dict() for cni in ("flannel", "calico", "cilium")
}


def fresh(cni: str = "flannel") -> ClusterStore:
    return ClusterStore.from_dict(_BOOT[cni])


def pod(name, labels=None, ns=None, ports=None, **spec):
    meta = {"name": name, "labels": labels or {"app": name}}
    if ns:
        meta["namespace"] = ns
    container = {"name": "app", "image": AGNHOST, "args": ["netexec"]}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [container], **spec},
    }


def deployment(name, replicas=3, labels=None, ns=None, ports=None, **spec):
    labels = labels or {"app": name}
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    container = {
        "name": "app",
        "image": AGNHOST,
        "args": ["netexec"],
        "ports": ports or [{"containerPort": 8080, "name": "http"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], **spec},
            },
        },
    }


def service(name, selector, ports=None, ns=None, **spec):
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": selector,
            "ports": ports or [{"port": 80, "targetPort": 8080}],
            **spec,
        },
    }


def namespace(name, labels=None):
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
    }


def names(items):
    return [i["metadata"]["name"] for i in items]


# --------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_bootstrap_nodes_follow_the_address_plan(cni):
    nodes = fresh(cni).nodes()
    assert [n.name for n in nodes] == ["netlab-control-plane", "netlab-worker", "netlab-worker2"]
    assert [n.role for n in nodes] == ["control-plane", "worker", "worker"]
    assert [n.internal_ip for n in nodes] == ["172.18.0.2", "172.18.0.3", "172.18.0.4"]
    if cni == "flannel":
        assert [n.pod_cidr for n in nodes] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
        assert [n.ipam_block for n in nodes] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    else:
        assert [n.pod_cidr for n in nodes] == ["192.168.0.0/24", "192.168.1.0/24", "192.168.2.0/24"]
        assert [n.ipam_block for n in nodes] == [
            "192.168.10.0/26",
            "192.168.20.0/26",
            "192.168.30.0/26",
        ]
    cp, w1, w2 = nodes
    assert (
        cp.labels["node-role.kubernetes.io/control-plane"] == ""
        and cp.labels["ingress-ready"] == "true"
    )
    assert cp.taints == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert w1.labels["labkit.dev/pool"] == "apps" and w2.labels["labkit.dev/pool"] == "data"
    assert w1.taints == [] and w2.taints == []
    for node in nodes:
        assert (
            node.labels["kubernetes.io/hostname"] == node.name
            and node.labels["kubernetes.io/os"] == "linux"
        )


def test_node_objects_look_like_kind_nodes():
    store = fresh("flannel")
    nodes = store.get("nodes", namespace=None)
    assert names(nodes) == ["netlab-control-plane", "netlab-worker", "netlab-worker2"]
    assert store.get("no") == nodes  # cluster-scoped: the namespace argument does not matter
    cp = nodes[0]
    assert cp["apiVersion"] == "v1" and cp["kind"] == "Node"
    assert cp["status"]["addresses"] == [
        {"type": "InternalIP", "address": "172.18.0.2"},
        {"type": "Hostname", "address": "netlab-control-plane"},
    ]
    assert cp["spec"]["podCIDR"] == "10.244.0.0/24" and cp["spec"]["podCIDRs"] == ["10.244.0.0/24"]
    assert cp["spec"]["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]
    assert "taints" not in nodes[1]["spec"]
    ready = [c for c in cp["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert cp["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.1"
    assert cp["status"]["nodeInfo"]["kubeProxyVersion"] == "v1.36.1"
    assert cp["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] == "172.18.0.2"
    assert (
        store.get("nodes", name="netlab-worker2", selector="labkit.dev/pool=data")[0]["metadata"][
            "name"
        ]
        == "netlab-worker2"
    )


@pytest.mark.parametrize(
    "cni, expected",
    [
        (
            "flannel",
            {
                "default",
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "kube-flannel",
                "ingress-system",
            },
        ),
        (
            "calico",
            {
                "default",
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "calico-system",
                "tigera-operator",
                "ingress-system",
            },
        ),
    ],
)
def test_bootstrap_namespaces(cni, expected):
    namespaces = fresh(cni).get("namespaces", namespace=None)
    assert set(names(namespaces)) == expected
    for ns in namespaces:
        assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == ns["metadata"]["name"]
        assert ns["status"]["phase"] == "Active"


def test_bootstrap_control_plane_and_daemon_pods_flannel():
    store = fresh("flannel")
    cp = "netlab-control-plane"
    system = store.get("pods", namespace="kube-system")
    static = [p for p in system if p["metadata"]["labels"].get("tier") == "control-plane"]
    assert sorted(names(static)) == sorted(
        f"{c}-{cp}" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    )
    for p in static:
        assert p["spec"]["hostNetwork"] is True and p["spec"]["nodeName"] == cp
        assert p["status"]["podIP"] == "172.18.0.2" and p["status"]["phase"] == "Running"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "Node"
    proxies = store.get("pods", namespace="kube-system", selector="k8s-app=kube-proxy")
    assert sorted(p["spec"]["nodeName"] for p in proxies) == [
        "netlab-control-plane",
        "netlab-worker",
        "netlab-worker2",
    ]
    assert sorted(p["status"]["podIP"] for p in proxies) == [
        "172.18.0.2",
        "172.18.0.3",
        "172.18.0.4",
    ]
    assert all(p["spec"]["hostNetwork"] for p in proxies)
    flannel = store.get("pods", namespace="kube-flannel")
    assert len(flannel) == 3 and all(
        n.startswith("kube-flannel-ds-") and len(n) == len("kube-flannel-ds-") + 5
        for n in names(flannel)
    )
    assert {p["spec"]["nodeName"] for p in flannel} == {n.name for n in store.nodes()}
    assert store.get("ds", "kube-flannel-ds", "kube-flannel")[0]["status"]["numberReady"] == 3


def test_bootstrap_calico_workloads():
    store = fresh("calico")
    calico_node = store.get("pods", namespace="calico-system", selector="k8s-app=calico-node")
    assert len(calico_node) == 3 and all(p["spec"]["hostNetwork"] for p in calico_node)
    controllers = store.get(
        "pods", namespace="calico-system", selector="k8s-app=calico-kube-controllers"
    )
    assert len(controllers) == 1 and not controllers[0]["spec"].get("hostNetwork")
    assert controllers[0]["status"]["podIP"].startswith("192.168.")
    operator = store.get("deploy", "tigera-operator", "tigera-operator")
    assert operator and operator[0]["status"]["readyReplicas"] == 1
    assert store.get("pods", namespace="tigera-operator")[0]["spec"]["hostNetwork"] is True
    assert store.get("pods", namespace="kube-flannel") == []


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_bootstrap_coredns_and_kube_dns(cni):
    store = fresh(cni)
    dns_pods = store.get("pods", namespace="kube-system", selector={"k8s-app": "kube-dns"})
    assert len(dns_pods) == 2
    assert sorted(p["spec"]["nodeName"] for p in dns_pods) == ["netlab-worker", "netlab-worker2"]
    blocks = {n.name: n.ipam_block for n in store.nodes()}
    import ipaddress

    for p in dns_pods:
        assert p["spec"]["containers"][0]["image"] == COREDNS_IMAGE
        ip = ipaddress.ip_address(p["status"]["podIP"])
        assert ip in ipaddress.ip_network(blocks[p["spec"]["nodeName"]])
        assert any(
            t.get("key") == "node-role.kubernetes.io/control-plane"
            for t in p["spec"]["tolerations"]
        )
        ports = {
            (q["name"], q["containerPort"], q["protocol"])
            for q in p["spec"]["containers"][0]["ports"]
        }
        assert ports == {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    kube_dns = store.get("svc", "kube-dns", "kube-system")[0]
    assert kube_dns["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in kube_dns["spec"]["ports"]] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]
    ep = store.get("endpoints", "kube-dns", "kube-system")[0]
    assert sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == sorted(
        p["status"]["podIP"] for p in dns_pods
    )
    deploy = store.get("deployment", "coredns", "kube-system")[0]
    assert deploy["status"]["readyReplicas"] == 2 and deploy["spec"]["replicas"] == 2


def test_bootstrap_kubernetes_service_points_at_the_api_server():
    store = fresh()
    svc = store.get("svc", "kubernetes")[0]
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("https", 443, 6443)
    ]
    ep = store.get("ep", "kubernetes")[0]
    assert ep["subsets"] == [
        {
            "addresses": [{"ip": "172.18.0.2"}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
        }
    ]
    slices = store.get("endpointslices", selector="kubernetes.io/service-name=kubernetes")
    assert names(slices) == ["kubernetes"]
    assert slices[0]["endpoints"][0]["addresses"] == ["172.18.0.2"]


def test_bootstrap_ingress_controller():
    store = fresh()
    svc = store.get("svc", "ingress-controller", "ingress-system")[0]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.200"
    assert sorted(p["port"] for p in svc["spec"]["ports"]) == [80, 443]
    assert all(30000 <= p["nodePort"] <= 32767 for p in svc["spec"]["ports"])
    pods = store.get("pods", namespace="ingress-system")
    assert (
        len(pods) == 1
        and pods[0]["spec"]["containers"][0]["image"] == "labkit/ingress-controller:0.1"
    )
    assert sorted(p["containerPort"] for p in pods[0]["spec"]["containers"][0]["ports"]) == [
        80,
        443,
    ]
    ingress_class = store.get("ingressclass", namespace=None)
    assert names(ingress_class) == ["cloud-provider-kind"]
    assert (
        ingress_class[0]["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"]
        == "true"
    )


@pytest.mark.parametrize("cni", ["flannel", "calico", "cilium"])
def test_bootstrap_manifests_are_valid_kubernetes(cni):
    nodes = [n.to_dict() for n in kind_like_nodes("netlab", cni)]
    validate(system_manifests("netlab", cni, nodes))


def test_bootstrap_refuses_unknown_cnis():
    with pytest.raises(LabError) as unknown:
        ClusterStore.bootstrap("netlab", "weave")
    assert (
        "weave" in unknown.value.what
        and "flannel" in unknown.value.fix
        and "calico" in unknown.value.fix
        and "cilium" in unknown.value.fix
    )


def test_every_system_pod_is_running_and_ready():
    for cni in ("flannel", "calico", "cilium"):
        for p in fresh(cni).pods():
            assert p["status"]["phase"] == "Running", p["metadata"]["name"]
            ready = {c["type"]: c["status"] for c in p["status"]["conditions"]}
            assert ready == {
                "PodReadyToStartContainers": "True",
                "Initialized": "True",
                "Ready": "True",
                "ContainersReady": "True",
                "PodScheduled": "True",
            }


# ------------------------------------------------------------------- determinism and persistence


def test_two_bootstraps_are_equal_and_json_ready():
    a, b = ClusterStore.bootstrap("netlab", "flannel"), ClusterStore.bootstrap("netlab", "flannel")
    assert a == b
    assert json.loads(json.dumps(a.to_dict())) == a.to_dict()
    assert ClusterStore.bootstrap("other", "flannel") != a


def test_round_trip_is_exact_and_keeps_working():
    store = fresh()
    store.apply([deployment("web", 3), service("web", {"app": "web"}, type="NodePort")])
    restored = ClusterStore.from_dict(json.loads(json.dumps(store.to_dict())))
    assert restored == store and restored.to_dict() == store.to_dict()
    for s in (store, restored):
        s.apply([deployment("api", 2)])
        s.delete([ObjectRef("Deployment", "web", "default")])
    assert restored == store


def test_to_dict_is_a_copy():
    store = fresh()
    data = store.to_dict()
    data["objects"].clear()
    assert store.get("pods", namespace=None)


def test_from_dict_refuses_foreign_data():
    with pytest.raises(LabError):
        ClusterStore.from_dict({"hello": "world"})


def test_same_operations_give_equal_stores():
    ops = [
        [namespace("shop")],
        [deployment("cart", 2, ns="shop"), service("cart", {"app": "cart"}, ns="shop")],
        [pod("debug")],
        [deployment("cart", 4, ns="shop")],
    ]
    stores = [fresh(), fresh()]
    for store in stores:
        for batch in ops:
            store.apply(copy.deepcopy(batch))
        store.delete([{"kind": "pod", "name": "debug"}])
    assert stores[0] == stores[1]


_SCRIPT = """
import json
from labkit.sandbox.store import ClusterStore
store = ClusterStore.bootstrap("netlab", "calico")
labels = {"app": "web"}
store.apply([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 5, "selector": {"matchLabels": labels},
                       "template": {"metadata": {"labels": labels}, "spec": {
                           "containers": [{"name": "a", "image": "nginx:1.27"}]}}}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
              "spec": {"type": "LoadBalancer", "selector": labels, "ports": [{"port": 80}]}}])
print(json.dumps(store.to_dict(), sort_keys=True))
"""


def test_state_is_identical_across_processes_and_hash_seeds():
    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000


def test_uids_are_derived_from_lab_kind_namespace_and_name():
    store = fresh()
    store.apply([pod("web")])
    uid = store.get("pod", "web")[0]["metadata"]["uid"]
    assert uid == str(uuid.uuid5(uuid.NAMESPACE_URL, "labkit://netlab/Pod/default/web"))
    other = ClusterStore.bootstrap("lab2", "flannel")
    other.apply([pod("web")])
    assert other.get("pod", "web")[0]["metadata"]["uid"] != uid


# --------------------------------------------------------------------------- apply basics


def test_apply_returns_refs_in_order():
    store = fresh()
    refs = store.apply(
        [
            namespace("shop"),
            deployment("web", 1, ns="shop"),
            service("web", {"app": "web"}, ns="shop"),
        ]
    )
    assert refs == [
        ObjectRef("Namespace", "shop", None),
        ObjectRef("Deployment", "web", "shop"),
        ObjectRef("Service", "web", "shop"),
    ]
    assert store.apply([]) == []


def test_namespace_precedence():
    store = fresh()
    store.apply([namespace("a"), namespace("b")])
    refs = store.apply([pod("p1"), pod("p2", ns="b")], namespace="a")
    assert refs == [ObjectRef("Pod", "p1", "a"), ObjectRef("Pod", "p2", "b")]
    refs = store.apply([pod("p3")])
    assert refs == [ObjectRef("Pod", "p3", "default")]


def test_missing_namespace_is_refused_naming_it():
    store = fresh()
    before = store.to_dict()
    with pytest.raises(LabError) as err:
        store.apply([deployment("web", 2, ns="shop")])
    assert "'shop'" in err.value.what and "nothing was applied" in err.value.what
    assert "Apply a Namespace named shop first" in err.value.fix
    assert store.to_dict() == before


def test_namespace_created_earlier_in_the_batch_counts_but_not_later():
    store = fresh()
    store.apply([namespace("shop"), pod("a", ns="shop")])
    assert store.get("pod", "a", "shop")
    with pytest.raises(LabError):
        store.apply([pod("b", ns="late"), namespace("late")])
    assert store.get("ns", "late", None) == []


@pytest.mark.parametrize(
    "doc",
    [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "a", "image": "busybox"}],
                        "restartPolicy": "Never",
                    }
                }
            },
        },
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"}, "spec": {}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {},
        },
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "extra"}},
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {},
        },
    ],
)
def test_unmodelled_kinds_are_refused_with_a_pointer_to_kind(doc):
    store = fresh()
    before = store.to_dict()
    with pytest.raises(LabError) as err:
        store.apply([deployment("web", 2), doc])
    assert f"does not model {doc['kind']}" in err.value.what
    assert "--backend kind" in err.value.fix
    assert store.to_dict() == before


def test_bad_batch_applies_nothing():
    store = fresh()
    store.apply(
        [
            service(
                "holder",
                {"app": "x"},
                type="NodePort",
                ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}],
            )
        ]
    )
    before = store.to_dict()
    batch = [
        namespace("shop"),
        deployment("web", 3, ns="shop"),
        service(
            "web",
            {"app": "web"},
            ns="shop",
            type="NodePort",
            ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}],
        ),
    ]
    with pytest.raises(LabError) as err:
        store.apply(batch)
    assert "default/holder" in err.value.what
    assert store.to_dict() == before
    assert store.get("ns", "shop", None) == [] and store.get("pods", namespace="shop") == []


def test_apply_does_not_change_its_input():
    doc = deployment("web", 2)
    original = copy.deepcopy(doc)
    store = fresh()
    store.apply([doc])
    assert doc == original


def test_reapplying_the_same_manifest_changes_nothing():
    store = fresh()
    docs = [deployment("web", 3), service("web", {"app": "web"}, type="LoadBalancer")]
    store.apply(copy.deepcopy(docs))
    first = store.get("pods", namespace=None), store.get("svc", "web")
    store.apply(copy.deepcopy(docs))
    assert (store.get("pods", namespace=None), store.get("svc", "web")) == first


def test_generate_name():
    store = fresh()
    doc = pod("ignored")
    doc["metadata"] = {"generateName": "probe-", "labels": {"app": "probe"}}
    (ref1,) = store.apply([copy.deepcopy(doc)])
    (ref2,) = store.apply([copy.deepcopy(doc)])
    assert (
        ref1.name != ref2.name
        and ref1.name.startswith("probe-")
        and len(ref1.name) == len("probe-") + 5
    )


# --------------------------------------------------------------------------- pods


def test_pod_with_several_containers_has_one_ip():
    store = fresh()
    doc = pod("sidecar", ports=[{"containerPort": 8080}])
    doc["spec"]["containers"].append(
        {"name": "log", "image": "busybox:1.36", "ports": [{"containerPort": 9000}]}
    )
    store.apply([doc])
    p = store.get("pod", "sidecar")[0]
    assert p["status"]["podIPs"] == [{"ip": p["status"]["podIP"]}]
    assert [c["name"] for c in p["status"]["containerStatuses"]] == ["app", "log"]
    assert all(c["ready"] and c["started"] for c in p["status"]["containerStatuses"])
    assert p["status"]["hostIP"] in {"172.18.0.3", "172.18.0.4"}


def test_pod_status_and_defaults_are_filled():
    store = fresh()
    store.apply([pod("web", ports=[{"containerPort": 8080}])])
    p = store.get("pod", "web")[0]
    assert p["spec"]["dnsPolicy"] == "ClusterFirst" and p["spec"]["restartPolicy"] == "Always"
    assert p["spec"]["serviceAccountName"] == "default"
    assert p["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert p["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert p["status"]["qosClass"] == "BestEffort"
    assert p["metadata"]["creationTimestamp"].endswith("Z")
    assert p["status"]["containerStatuses"][0]["image"] == AGNHOST


def test_pod_labels_can_change_but_spec_cannot():
    store = fresh()
    store.apply([pod("web", labels={"app": "web"})])
    relabelled = pod("web", labels={"app": "web", "tier": "front"})
    store.apply([relabelled])
    assert store.get("pod", "web")[0]["metadata"]["labels"] == {"app": "web", "tier": "front"}
    node_before = store.get("pod", "web")[0]["spec"]["nodeName"]
    changed = pod("web", labels={"app": "web"})
    changed["spec"]["containers"][0]["image"] = "nginx:1.27"
    before = store.to_dict()
    with pytest.raises(LabError) as err:
        store.apply([changed])
    assert "spec.containers" in err.value.what and "Delete the pod first" in err.value.fix
    assert store.to_dict() == before
    assert store.get("pod", "web")[0]["spec"]["nodeName"] == node_before


def test_reapplying_a_pod_with_its_node_name_is_fine():
    store = fresh()
    store.apply([pod("web")])
    current = store.get("pod", "web")[0]
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": current["spec"],
            }
        ]
    )


def test_pod_with_unknown_node_name_is_refused():
    with pytest.raises(LabError) as err:
        fresh().apply([pod("web", nodeName="nowhere")])
    assert "nowhere" in err.value.what and "netlab-worker" in err.value.fix


# --------------------------------------------------------------------------- get


@pytest.mark.parametrize(
    "spelling, kind",
    [
        ("po", "Pod"),
        ("pods", "Pod"),
        ("Pod", "Pod"),
        ("svc", "Service"),
        ("services", "Service"),
        ("deploy", "Deployment"),
        ("rs", "ReplicaSet"),
        ("ep", "Endpoints"),
        ("endpointslices", "EndpointSlice"),
        ("netpol", "NetworkPolicy"),
        ("ing", "Ingress"),
        ("ns", "Namespace"),
        ("cm", "ConfigMap"),
        ("sa", "ServiceAccount"),
    ],
)
def test_get_accepts_kubectl_spellings(spelling, kind):
    store = fresh()
    store.apply(
        [
            deployment("web", 1),
            service("web", {"app": "web"}),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny"},
                "spec": {"podSelector": {}},
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "web"},
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": "web", "port": {"number": 80}}
                                        },
                                    }
                                ]
                            }
                        }
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg"},
                "data": {"a": "1"},
            },
        ]
    )
    items = store.get(spelling, namespace=None)
    assert items and all(i["kind"] == kind for i in items)


def test_get_filters_by_namespace_name_and_selector():
    store = fresh()
    store.apply(
        [
            namespace("shop"),
            pod("a", {"app": "web", "tier": "front"}, ns="shop"),
            pod("b", {"app": "web", "tier": "back"}, ns="shop"),
            pod("c", {"app": "db"}),
        ]
    )
    assert names(store.get("pods", namespace="shop")) == ["a", "b"]
    assert names(store.get("pods", selector="app=web", namespace=None)) == ["a", "b"]
    assert names(store.get("pods", namespace="shop", selector="tier!=front")) == ["b"]
    assert names(store.get("pods", namespace=None, selector="tier in (front,back)")) == ["a", "b"]
    assert names(store.get("pods", namespace=None, selector={"matchLabels": {"app": "db"}})) == [
        "c"
    ]
    assert names(store.get("pods", namespace=None, selector={"tier": "back"})) == ["b"]
    assert names(
        store.get(
            "pods",
            namespace=None,
            selector={
                "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
                "matchLabels": {"app": "db"},
            },
        )
    ) == ["c"]
    assert store.get("pod", "a") == []  # default namespace
    assert names(store.get("pod", "a", namespace=None)) == ["a"]
    assert store.get("pod", "nope", namespace=None) == []


def test_get_sorts_and_returns_copies():
    store = fresh()
    store.apply([pod("zeta"), pod("alpha")])
    items = store.get("pods")
    assert names(items) == ["alpha", "zeta"]
    items[0]["metadata"]["labels"]["app"] = "changed"
    assert store.get("pod", "alpha")[0]["metadata"]["labels"]["app"] == "alpha"
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in store.pods()]
    assert keys == sorted(keys)


def test_get_refuses_unknown_spellings_and_bad_selectors():
    store = fresh()
    with pytest.raises(LabError):
        store.get("widgets")
    with pytest.raises(LabError):
        store.get("pods", selector="env in a,b")


def test_every_object_has_the_kubernetes_shape():
    store = fresh("calico")
    store.apply([deployment("web", 2), service("web", {"app": "web"})])
    for kind in MODELLED_KINDS:
        for obj in store.get(kind, namespace=None):
            assert obj["kind"] == kind and obj["apiVersion"]
            meta = obj["metadata"]
            assert (
                meta["name"]
                and meta["uid"]
                and meta["resourceVersion"]
                and meta["creationTimestamp"]
            )


# --------------------------------------------------------------------------- other kinds are stored


def test_configmap_secret_serviceaccount_networkpolicy_are_stored():
    store = fresh()
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg"},
                "data": {"PAYMENT_URL": "http://pay"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "stringData": {"password": "s3cret"},
                "data": {"user": "YWRtaW4="},
            },
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "db"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"ports": [{"port": 5432}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny"},
                "spec": {"podSelector": {}},
            },
        ]
    )
    assert store.get("cm", "cfg")[0]["data"] == {"PAYMENT_URL": "http://pay"}
    secret = store.get("secret", "creds")[0]
    assert (
        secret["data"] == {"user": "YWRtaW4=", "password": "czNjcmV0"}
        and "stringData" not in secret
    )
    assert secret["type"] == "Opaque"
    assert names(store.get("sa")) == ["default", "robot"]
    db = store.get("netpol", "db")[0]
    assert db["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert db["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"
    assert store.get("netpol", "deny")[0]["spec"]["policyTypes"] == ["Ingress"]


def test_every_namespace_gets_a_default_service_account():
    store = fresh()
    store.apply([namespace("shop")])
    assert names(store.get("sa", namespace="shop")) == ["default"]


# --------------------------------------------------------------------------- delete


def test_delete_accepts_refs_dicts_and_manifests():
    store = fresh()
    store.apply(
        [
            pod("a"),
            pod("b"),
            pod("c"),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        ]
    )
    removed = store.delete(
        [
            ObjectRef("Pod", "a", "default"),
            {"kind": "po", "name": "b"},
            pod("c"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "default"},
            },
        ]
    )
    assert removed[:4] == [
        ObjectRef("Pod", "a", "default"),
        ObjectRef("Pod", "b", "default"),
        ObjectRef("Pod", "c", "default"),
        ObjectRef("ConfigMap", "x", "default"),
    ]
    assert store.get("pods") == [] and store.get("cm", "x") == []


def test_delete_unknown_is_refused_and_deletes_nothing():
    store = fresh()
    store.apply([pod("a")])
    before = store.to_dict()
    with pytest.raises(LabError) as err:
        store.delete([ObjectRef("Pod", "a", "default"), ObjectRef("Pod", "ghost", "default")])
    assert "ghost" in err.value.what
    assert store.to_dict() == before
    with pytest.raises(LabError):
        store.delete([{"kind": "Job", "name": "x"}])
    with pytest.raises(LabError):
        store.delete([{"kind": "Node", "name": "netlab-worker"}])
    assert store.delete([]) == []


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_system_namespaces_cannot_be_deleted(name):
    with pytest.raises(LabError):
        fresh().delete([ObjectRef("Namespace", name)])


def test_deleting_a_namespace_deletes_everything_in_it():
    store = fresh()
    store.apply(
        [
            namespace("shop"),
            deployment("web", 2, ns="shop"),
            service("web", {"app": "web"}, ns="shop"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": "shop"},
            },
        ]
    )
    removed = store.delete([ObjectRef("Namespace", "shop")])
    kinds = {r.kind for r in removed}
    assert {
        "Namespace",
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "ConfigMap",
        "ServiceAccount",
    } <= kinds
    for kind in MODELLED_KINDS:
        if kind not in ("Namespace", "IngressClass"):
            assert store.get(kind, namespace="shop") == []
    assert store.get("ns", "shop", None) == []


def test_deleting_a_namespace_and_something_inside_it_together():
    store = fresh()
    store.apply([namespace("shop"), pod("a", ns="shop")])
    store.delete([ObjectRef("Namespace", "shop"), ObjectRef("Pod", "a", "shop")])
    assert store.get("ns", "shop", None) == []


def test_deleting_a_service_deletes_its_endpoints_and_slices():
    store = fresh()
    store.apply([deployment("web", 2), service("web", {"app": "web"})])
    assert store.get("ep", "web") and store.get(
        "endpointslice", selector="kubernetes.io/service-name=web"
    )
    removed = store.delete([ObjectRef("Service", "web", "default")])
    assert {r.kind for r in removed} == {"Service", "Endpoints", "EndpointSlice"}
    assert (
        store.get("ep", "web") == []
        and store.get("endpointslice", selector="kubernetes.io/service-name=web") == []
    )
    assert len(store.get("pods", selector="app=web")) == 2


# --------------------------------------------------------------------------- readiness


def test_set_pod_ready_moves_the_pod_out_of_ready_endpoints_and_back():
    store = fresh()
    store.apply([deployment("web", 2), service("web", {"app": "web"})])
    first, second = store.get("pods", selector="app=web")
    store.set_pod_ready(
        "default", first["metadata"]["name"], False, "Readiness probe failed: HTTP 500"
    )
    p = store.get("pod", first["metadata"]["name"])[0]
    conditions = {c["type"]: c for c in p["status"]["conditions"]}
    assert (
        conditions["Ready"]["status"] == "False"
        and conditions["ContainersReady"]["status"] == "False"
    )
    assert conditions["Ready"]["reason"] == "ContainersNotReady"
    assert "Readiness probe failed" in conditions["Ready"]["message"]
    assert (
        p["status"]["containerStatuses"][0]["ready"] is False and p["status"]["phase"] == "Running"
    )
    subset = store.get("ep", "web")[0]["subsets"][0]
    assert [a["ip"] for a in subset["addresses"]] == [second["status"]["podIP"]]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == [first["status"]["podIP"]]
    sl = store.get("endpointslice", selector="kubernetes.io/service-name=web")[0]
    flags = {e["addresses"][0]: e["conditions"] for e in sl["endpoints"]}
    assert flags[first["status"]["podIP"]] == {
        "ready": False,
        "serving": False,
        "terminating": False,
    }
    assert flags[second["status"]["podIP"]]["ready"] is True
    assert store.get("deploy", "web")[0]["status"]["readyReplicas"] == 1
    store.set_pod_ready("default", first["metadata"]["name"], True)
    assert len(store.get("ep", "web")[0]["subsets"][0]["addresses"]) == 2
    assert store.get("deploy", "web")[0]["status"]["readyReplicas"] == 2


def test_set_pod_ready_is_idempotent_and_checks_the_pod():
    store = fresh()
    store.apply([pod("web")])
    before = store.to_dict()
    store.set_pod_ready("default", "web", True)
    assert store.to_dict() == before
    with pytest.raises(LabError):
        store.set_pod_ready("default", "ghost", False)
    store.apply([pod("stuck", nodeSelector={"labkit.dev/pool": "nowhere"})])
    with pytest.raises(LabError):
        store.set_pod_ready("default", "stuck", True)


def test_ready_transition_time_moves_only_on_change():
    store = fresh()
    store.apply([pod("web")])
    t0 = {
        c["type"]: c["lastTransitionTime"]
        for c in store.get("pod", "web")[0]["status"]["conditions"]
    }
    store.apply([pod("other")])
    store.set_pod_ready("default", "web", False)
    t1 = {
        c["type"]: c["lastTransitionTime"]
        for c in store.get("pod", "web")[0]["status"]["conditions"]
    }
    assert t1["PodScheduled"] == t0["PodScheduled"] and t1["Ready"] > t0["Ready"]


def test_custom_nodes_store_starts_empty():
    nodes = [
        NodeSpec(
            "n1",
            "worker",
            "10.0.0.1",
            "10.1.0.0/24",
            "10.1.0.0/24",
            {"kubernetes.io/hostname": "n1"},
            [],
        )
    ]
    store = ClusterStore("tiny", "flannel", nodes)
    assert store.nodes() == nodes and store.pods() == []
    assert len({*store.nodes(), *nodes}) == 1
    with pytest.raises(LabError):
        ClusterStore("tiny", "flannel", nodes + nodes)
    with pytest.raises(LabError):
        ClusterStore(
            "tiny", "flannel", [NodeSpec("n1", "boss", "10.0.0.1", "10.1.0.0/24", "10.1.0.0/24")]
        )
