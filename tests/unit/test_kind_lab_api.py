"""The Kind Lab's Kubernetes API calls, against a small fake API server on loopback (no Docker):
discovery, get/list, server-side apply with its all-or-nothing dry run, delete, the probe
container patch, and attach's detection of CNI and kube-proxy mode."""

import subprocess

import pytest

from labkit.errors import LabError
from labkit.kind import cluster, handmade, hostcontainers, probe, tools
from labkit.kind import lab_access as kind_lab
from labkit.kind.lab import KindLab
from labkit.lab import ObjectRef


def pod(name, ns="default", labels=None, phase="Running"):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": "10.244.1.9"},
    }


def test_get_lists_gets_and_fills_kind(fake_api, fake_api_lab):
    fake_api.add("pods", pod("a", "shop", {"app": "web"}))
    fake_api.add("pods", pod("b", "default", {"app": "db"}))
    fake_api.add("nodes", {"metadata": {"name": "t-worker"}})
    assert [p["metadata"]["name"] for p in fake_api_lab.get("pods", namespace=None)] == ["a", "b"]
    assert [p["metadata"]["name"] for p in fake_api_lab.get("po", namespace="shop")] == ["a"]
    assert [
        p["metadata"]["name"]
        for p in fake_api_lab.get("Pod", namespace=None, selector={"app": "db"})
    ] == ["b"]
    found = fake_api_lab.get("pod", "a", namespace="shop")
    assert found[0]["kind"] == "Pod" and found[0]["apiVersion"] == "v1"
    assert fake_api_lab.get("pod", "missing") == []
    assert [p["metadata"]["namespace"] for p in fake_api_lab.get("pods", "a", namespace=None)] == [
        "shop"
    ]
    nodes = fake_api_lab.get("nodes", namespace="default")  # cluster-scoped: namespace ignored
    assert nodes[0]["kind"] == "Node" and nodes[0]["metadata"]["name"] == "t-worker"


def test_logs_read_the_pods_log_through_the_api(fake_api, fake_api_lab):
    fake_api.add("pods", pod("web", "shop"))
    assert fake_api_lab.logs("shop/web", container="main") == "log of web ['main']\n"
    assert fake_api.requests[-1].path == "/api/v1/namespaces/shop/pods/web/log?container=main"
    with pytest.raises(LabError, match="Cannot read the logs of pod default/ghost"):
        fake_api_lab.logs("ghost")


def test_exec_interactive_runs_kubectl_exec_on_the_labs_context(
    fake_api, fake_api_lab, monkeypatch
):
    ran: list[list[str]] = []
    monkeypatch.setattr(tools, "find", lambda tool: f"/opt/bin/{tool}")
    monkeypatch.setattr(
        kind_lab, "default_paths", lambda name: type("P", (), {"user_kubeconfig": "/k/c"})
    )
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda argv, check: ran.append(argv) or subprocess.CompletedProcess(argv, 4),
    )
    assert fake_api_lab.exec_interactive("shop/web", ["sh"], container="main", tty=False) == 4
    assert ran == [
        [
            "/opt/bin/kubectl", "--kubeconfig", "/k/c", "--context", "kind-t",
            "exec", "-i", "-c", "main", "-n", "shop", "web", "--", "sh",
        ]
    ]  # fmt: skip


def test_get_custom_kind_by_discovery(fake_api, fake_api_lab):
    fake_api.add("tigerastatuses", {"metadata": {"name": "calico"}, "status": {"conditions": []}})
    assert fake_api_lab.get("tigerastatus", namespace=None)[0]["kind"] == "TigeraStatus"
    with pytest.raises(LabError) as err:
        fake_api_lab.get("frobnicators")
    assert "frobnicators" in err.value.what


def test_apply_dry_runs_everything_then_applies_with_server_side_apply(fake_api, fake_api_lab):
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    ]
    refs = fake_api_lab.apply(docs)
    assert refs == [ObjectRef("Namespace", "shop", None), ObjectRef("ConfigMap", "c1", "default")]
    patches = fake_api.writes()
    assert [("dryRun=All" in r.path) for r in patches] == [True, True, False, False]
    assert all(
        r.content_type == "application/apply-patch+yaml" and "fieldManager=labkit" in r.path
        for r in patches
    )
    assert (
        patches[2].path.startswith("/api/v1/namespaces/shop")
        and "/namespaces/default/configmaps/c1" in patches[3].path
    )
    assert fake_api.objects[("configmaps", "default", "c1")]["data"] == {"a": "b"}


def test_apply_refused_by_the_server_applies_nothing(fake_api, fake_api_lab):
    fake_api.reject.add("bad")
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}},
    ]
    with pytest.raises(LabError) as err:
        fake_api_lab.apply(docs)
    assert "nothing was applied" in err.value.what and "forbidden" in err.value.what
    assert all("dryRun=All" in r.path for r in fake_api.writes())
    assert ("configmaps", "default", "good") not in fake_api.objects


def test_delete_refs_and_manifests_ignoring_missing(fake_api, fake_api_lab):
    fake_api.add("configmaps", {"metadata": {"name": "c1", "namespace": "default"}})
    fake_api.add("namespaces", {"metadata": {"name": "shop"}})
    fake_api_lab.delete(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}},
        ]
    )
    deletes = [r.path for r in fake_api.writes()]
    assert deletes == [
        "/api/v1/namespaces/default/configmaps/c1?propagationPolicy=Foreground",
        "/api/v1/namespaces/shop?propagationPolicy=Foreground",
    ]  # namespace last, each as `kubectl delete --cascade=foreground`
    fake_api_lab.delete(ObjectRef("ConfigMap", "c1", "default"))  # already gone: fine
    assert not fake_api.objects


def test_probe_container_is_added_once_with_a_strategic_merge_patch(fake_api, fake_api_lab):
    fake_api.add("pods", pod("client", "shop"))
    fake_api_lab._ensure_probe_container("shop", "client")
    fake_api_lab._ensure_probe_container("shop", "client")
    patches = [r for r in fake_api.writes() if r.path.endswith("/ephemeralcontainers")]
    assert len(patches) == 1
    assert patches[0].path == "/api/v1/namespaces/shop/pods/client/ephemeralcontainers"
    assert patches[0].content_type == "application/strategic-merge-patch+json"
    assert patches[0].body == probe.ephemeral_patch()


def test_probe_source_must_exist_and_run(fake_api, fake_api_lab):
    fake_api.add("pods", pod("pending", phase="Pending"))
    with pytest.raises(LabError) as err:
        fake_api_lab.probe("default/nobody", "10.0.0.1", 80)
    assert "does not exist" in err.value.what
    with pytest.raises(LabError) as err:
        fake_api_lab.probe("pending", "10.0.0.1", 80)
    assert "Pending" in err.value.what


def test_destination_pod_ref_becomes_its_ip(fake_api, fake_api_lab):
    fake_api.add("pods", pod("web", "shop"))
    assert fake_api_lab._destination("shop/web") == "10.244.1.9"
    assert fake_api_lab._destination("web.shop.svc") == "web.shop.svc"
    with pytest.raises(LabError):
        fake_api_lab._destination("shop/none")


def test_node_exec_refuses_unknown_nodes(fake_api, fake_api_lab):
    fake_api.add("nodes", {"metadata": {"name": "t-worker"}})
    with pytest.raises(LabError) as err:
        fake_api_lab.node_exec("t-worker9", "true")
    assert "t-worker" in err.value.fix


def test_exec_into_a_missing_pod(fake_api, fake_api_lab):
    with pytest.raises(LabError) as err:
        fake_api_lab.exec("shop/none", "true")
    assert "does not exist" in err.value.what


@pytest.mark.parametrize(
    "daemonsets,config,cni,mode",
    [
        (
            [("kube-flannel", "kube-flannel-ds"), ("kube-system", "kube-proxy")],
            "mode: nftables\n",
            "flannel",
            "nftables",
        ),
        (
            [("calico-system", "calico-node"), ("kube-system", "kube-proxy")],
            'mode: ""\n',
            "calico",
            "iptables",
        ),
        ([("kube-system", "cilium")], None, "cilium", "none"),
        ([("kube-system", "kindnet"), ("kube-system", "kube-proxy")], "", None, None),
    ],
)
def test_attach_detects_cni_and_mode(fake_api, monkeypatch, daemonsets, config, cni, mode):
    import yaml

    for ns, name in daemonsets:
        fake_api.add("daemonsets", {"metadata": {"name": name, "namespace": ns}})
    if config is not None:
        fake_api.add(
            "configmaps",
            {
                "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                "data": {"config.conf": config},
            },
        )
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["t"])
    monkeypatch.setattr(
        cluster, "kubeconfig_text", lambda name: yaml.safe_dump(fake_api.kubeconfig)
    )
    monkeypatch.setattr(hostcontainers, "container_state", lambda name: "absent")
    lab = KindLab.attach("t")
    if cni is None:
        assert lab is None
    else:
        assert lab is not None
        assert (lab.cni, lab.kube_proxy_mode) == (cni, mode)
        assert lab.capabilities.network_policy is (cni != "flannel")
        assert lab.capabilities.load_balancer is False


@pytest.mark.parametrize("state,serves", [("running", True), ("stopped", False)])
def test_attach_detects_cloud_provider_kind(fake_api, monkeypatch, state, serves):
    """Issue 14.5: capabilities come from the running cloud-provider-kind container and the
    IngressClass it creates in the cluster it serves (pkg/ingress/controller.go, Init)."""
    import yaml

    fake_api.add("daemonsets", {"metadata": {"name": "calico-node", "namespace": "calico-system"}})
    fake_api.add("ingressclasses", {"metadata": {"name": "cloud-provider-kind"}})
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["t"])
    monkeypatch.setattr(
        cluster, "kubeconfig_text", lambda name: yaml.safe_dump(fake_api.kubeconfig)
    )
    asked: list[str] = []
    monkeypatch.setattr(hostcontainers, "container_state", lambda name: asked.append(name) or state)
    lab = KindLab.attach("t")
    assert lab is not None and asked == [hostcontainers.CLOUD_PROVIDER]
    assert lab.capabilities.load_balancer is serves and lab.capabilities.ingress is serves


def test_attach_of_an_unknown_cluster(monkeypatch):
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["other"])
    assert KindLab.attach("t") is None


def test_the_labs_uid_is_its_kube_system_namespaces(fake_api, fake_api_lab):
    """A cluster deleted and created again under the same name has a new kube-system uid."""
    fake_api.add("namespaces", {"metadata": {"name": "kube-system", "uid": "1a2b-first-build"}})
    assert fake_api_lab.uid() == "1a2b-first-build"
    fake_api.add("namespaces", {"metadata": {"name": "kube-system", "uid": "3c4d-second-build"}})
    assert fake_api_lab.uid() == "3c4d-second-build"
    del fake_api.objects[("namespaces", None, "kube-system")]
    with pytest.raises(LabError, match="no kube-system namespace"):
        fake_api_lab.uid()


class Docker:
    """``subprocess.run`` for ``docker exec``: records each argv; ``ip netns list`` prints
    ``listing``, a probe prints ``probe_output``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.listing = ""
        self.probe_output = "@@CONNECT 1 TIMEOUT\n"

    def __call__(self, argv, capture_output, text, timeout):
        self.calls.append(["docker", *argv[1:]])
        out = self.listing if argv[-2:] == ["netns", "list"] else ""
        out = self.probe_output if "labkit-probe" in argv else out
        return subprocess.CompletedProcess(argv, 0, out, "")


@pytest.fixture
def docker(fake_api, monkeypatch):
    fake_api.add("nodes", {"metadata": {"name": "t-worker"}})
    fake = Docker()
    monkeypatch.setattr(tools, "find", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(kind_lab.subprocess, "run", fake)
    return fake


def test_netns_add_and_delete_run_ip_netns_in_the_node(docker, fake_api_lab):
    fake_api_lab.netns_add("t-worker", "hand")
    assert docker.calls == [handmade.list_argv("t-worker"), handmade.add_argv("t-worker", "hand")]
    docker.listing = "hand (id: 0)\ncni-0d3c9a4e-1111-2222-3333-444455556666\n"
    assert fake_api_lab.netns_list("t-worker") == ["hand"]
    with pytest.raises(LabError) as err:
        fake_api_lab.netns_add("t-worker", "hand")
    assert "netns_delete('t-worker', 'hand')" in err.value.fix
    docker.calls.clear()
    fake_api_lab.netns_delete("t-worker", "hand")
    assert docker.calls[-1] == handmade.delete_argv("t-worker", "hand")
    docker.listing = ""
    docker.calls.clear()
    fake_api_lab.netns_delete("t-worker", "hand")  # absent: nothing to do
    assert docker.calls == [handmade.list_argv("t-worker")]
    with pytest.raises(LabError):
        fake_api_lab.netns_list("t-worker9")


def test_netns_exec_and_probes_need_the_namespace(fake_api, docker, fake_api_lab):
    with pytest.raises(LabError) as err:
        fake_api_lab.netns_exec("t-worker", "hand", "ip addr")
    assert "netns_add('t-worker', 'hand')" in err.value.fix
    with pytest.raises(LabError):
        fake_api_lab.probe("t-worker:hand", "10.96.0.1", 443)
    docker.listing = "hand\n"
    assert fake_api_lab.netns_exec("t-worker", "hand", "ip addr").ok
    assert docker.calls[-1] == handmade.exec_argv("t-worker", "hand", ["sh", "-c", "ip addr"])
    probed = fake_api_lab.probe_many([("t-worker:hand", "10.96.0.1", 443)], timeout=1.0)
    assert [p.outcome for p in probed] == ["timeout"] and probed[0].src == "t-worker:hand"
    sent = handmade.probe_argv("t-worker", "hand", "10.96.0.1", 443, "TCP", 1.0)
    assert docker.calls[-1] == sent
    assert not [r for r in fake_api.requests if r.method == "PATCH"]  # no probe container added
