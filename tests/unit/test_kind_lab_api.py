"""The Kind Lab's Kubernetes API calls, against a small fake API server on loopback (no Docker):
discovery, get/list, server-side apply with its all-or-nothing dry run, delete, the probe
container patch, and attach's detection of CNI and kube-proxy mode."""

import copy
import http.server
import json
import socketserver
import subprocess
import threading
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

import pytest

from labkit.errors import LabError
from labkit.kind import cluster, handmade, hostcontainers, probe, tools
from labkit.kind import lab as kind_lab
from labkit.kind.lab import KindLab
from labkit.lab import ObjectRef

RESOURCES: dict[str, tuple[str, list[tuple[str, str, bool, list[str]]]]] = {
    "/api/v1": (
        "v1",
        [
            ("pods", "Pod", True, ["po"]),
            ("configmaps", "ConfigMap", True, ["cm"]),
            ("namespaces", "Namespace", False, ["ns"]),
            ("nodes", "Node", False, ["no"]),
            ("services", "Service", True, ["svc"]),
        ],
    ),
    "/apis/apps/v1": (
        "apps/v1",
        [
            ("daemonsets", "DaemonSet", True, ["ds"]),
            ("deployments", "Deployment", True, ["deploy"]),
        ],
    ),
    "/apis/networking.k8s.io/v1": (
        "networking.k8s.io/v1",
        [("ingressclasses", "IngressClass", False, [])],
    ),
    "/apis/operator.tigera.io/v1": (
        "operator.tigera.io/v1",
        [("tigerastatuses", "TigeraStatus", False, [])],
    ),
    "/apis/apiextensions.k8s.io/v1": (
        "apiextensions.k8s.io/v1",
        [("customresourcedefinitions", "CustomResourceDefinition", False, ["crd"])],
    ),
}


class Request(NamedTuple):
    """One request the fake API server received."""

    method: str
    path: str
    content_type: str | None = None
    body: Any = None


class Route(NamedTuple):
    """What a request's path names: a resource (plural), its namespace, object and subresource."""

    plural: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    query: dict[str, list[str]]


class FakeAPI:
    """Objects keyed by (plural, namespace, name); records every request."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str | None, str | None, str | None], dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.reject: set[str] = set()  # names whose apply the server refuses (422)
        # name -> reads by name an object stays after its DELETE, with a deletionTimestamp (a
        # Pod in its grace period); an apply meanwhile updates it, and it still goes.
        self.terminating: dict[str, int] = {}
        # list reads of CRDs before an applied CRD turns Established and its kind is served
        self.crd_delay = 0
        self.served: dict[str, tuple[str, list[tuple[str, str, bool, list[str]]]]] = {}
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self):
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                        "message": "not found",
                    },
                )

            def _route(self):
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                rest = parts[2:] if parts[0] == "api" else parts[3:]
                ns = None
                if rest[:1] == ["namespaces"] and len(rest) >= 3:
                    ns, rest = rest[1], rest[2:]
                plural = rest[0] if rest else None
                name = rest[1] if len(rest) > 1 else None
                sub = rest[2] if len(rest) > 2 else None
                return Route(plural, ns, name, sub, parse_qs(url.query))

            def do_GET(self):
                api.requests.append(Request("GET", self.path))
                path = urlparse(self.path).path
                if path == "/version":
                    return self._send(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.1"})
                if path == "/apis":
                    groups = [
                        {
                            "name": gv.split("/")[0],
                            "versions": [{"groupVersion": gv, "version": "v1"}],
                            "preferredVersion": {"groupVersion": gv, "version": "v1"},
                        }
                        for gv, _ in [*RESOURCES.values(), *api.served.values()]
                        if "/" in gv
                    ]
                    return self._send(200, {"kind": "APIGroupList", "groups": groups})
                if path == "/api":
                    return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
                if path in RESOURCES or path in api.served:
                    gv, res = RESOURCES.get(path) or api.served[path]
                    return self._send(
                        200,
                        {
                            "kind": "APIResourceList",
                            "groupVersion": gv,
                            "resources": [
                                {
                                    "name": p,
                                    "singularName": k.lower(),
                                    "namespaced": n,
                                    "kind": k,
                                    "shortNames": s,
                                    "verbs": ["get", "list", "patch", "delete"],
                                }
                                for p, k, n, s in res
                            ],
                        },
                    )
                route = self._route()
                plural, ns = route.plural, route.namespace
                if route.subresource == "log" and (plural, ns, route.name) in api.objects:
                    text = f"log of {route.name} {route.query.get('container')}\n".encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    return self.wfile.write(text)
                if route.name:
                    obj = api.objects.get((plural, ns, route.name))
                    if obj and "deletionTimestamp" in obj["metadata"]:
                        api.terminating[route.name] -= 1
                        if api.terminating[route.name] < 0:  # its grace period is over
                            del api.objects[(plural, ns, route.name)]
                            return self._not_found()
                    return self._send(200, obj) if obj else self._not_found()
                if plural == "customresourcedefinitions":
                    api.establish()
                items = [
                    o
                    for (p, n, _), o in api.objects.items()
                    if p == plural and (ns is None or n == ns)
                ]
                wanted = (route.query.get("fieldSelector") or [""])[0].removeprefix(
                    "metadata.name="
                )
                if wanted:
                    items = [o for o in items if o["metadata"]["name"] == wanted]
                selector = (route.query.get("labelSelector") or [""])[0]
                if selector:
                    k, _, v = selector.partition("=")
                    items = [o for o in items if (o["metadata"].get("labels") or {}).get(k) == v]
                return self._send(200, {"kind": "List", "apiVersion": "v1", "items": items})

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                api.requests.append(
                    Request("PATCH", self.path, self.headers.get("Content-Type"), body)
                )
                route = self._route()
                plural, ns, name = route.plural, route.namespace, route.name
                if route.subresource == "ephemeralcontainers":
                    pod = api.objects[(plural, ns, name)]
                    pod["spec"]["ephemeralContainers"] = body["spec"]["ephemeralContainers"]
                    pod["status"]["ephemeralContainerStatuses"] = [
                        {"name": c["name"], "state": {"running": {}}}
                        for c in body["spec"]["ephemeralContainers"]
                    ]
                    return self._send(200, pod)
                if name in api.reject:
                    return self._send(
                        422,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "code": 422,
                            "message": f'{plural} "{name}" is invalid: spec: forbidden',
                        },
                    )
                if "dryRun" not in route.query:
                    old = api.objects.get((plural, ns, name)) or {"metadata": {}}
                    stored = copy.deepcopy(body)
                    stored["metadata"]["uid"] = (
                        old["metadata"].get("uid") or f"uid-{name}-{len(api.requests)}"
                    )
                    if "deletionTimestamp" in old["metadata"]:
                        stored["metadata"]["deletionTimestamp"] = old["metadata"][
                            "deletionTimestamp"
                        ]
                    api.objects[(plural, ns, name)] = stored
                return self._send(200, body)

            def do_DELETE(self):
                api.requests.append(Request("DELETE", self.path))
                route = self._route()
                key = (route.plural, route.namespace, route.name)
                if route.name in api.terminating and key in api.objects:
                    api.objects[key]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                    return self._send(200, api.objects[key])
                if api.objects.pop(key, None) is None:
                    return self._not_found()
                return self._send(200, {"kind": "Status", "status": "Success"})

            def log_message(self, *args):
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def kubeconfig(self):
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "kind-t",
            "clusters": [
                {
                    "name": "kind-t",
                    "cluster": {"server": f"http://127.0.0.1:{self.server.server_address[1]}"},
                }
            ],
            "users": [{"name": "kind-t", "user": {"token": "t"}}],
            "contexts": [{"name": "kind-t", "context": {"cluster": "kind-t", "user": "kind-t"}}],
        }

    def add(self, plural, obj):
        for gv, resources in RESOURCES.values():
            for name, kind, _, _ in resources:
                if name == plural:
                    obj = {"apiVersion": gv, "kind": kind, **obj}
        self.objects[(plural, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj

    def establish(self):
        """One list read of CRDs: after ``crd_delay`` of them, every applied CRD is Established
        and its kind served."""
        self.crd_delay -= 1
        if self.crd_delay >= 0:
            return
        for (plural, _, _), crd in self.objects.items():
            if plural != "customresourcedefinitions":
                continue
            spec = crd["spec"]
            crd["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
            for version in spec["versions"]:
                gv = f"{spec['group']}/{version['name']}"
                names = spec["names"]
                scoped = spec.get("scope") == "Namespaced"
                self.served[f"/apis/{gv}"] = (gv, [(names["plural"], names["kind"], scoped, [])])

    def writes(self):
        return [r for r in self.requests if r.method in ("PATCH", "DELETE")]


@pytest.fixture
def api():
    fake = FakeAPI()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def lab(api):
    return KindLab("t", "calico", "iptables", api.kubeconfig)


def pod(name, ns="default", labels=None, phase="Running"):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": "10.244.1.9"},
    }


def test_get_lists_gets_and_fills_kind(api, lab):
    api.add("pods", pod("a", "shop", {"app": "web"}))
    api.add("pods", pod("b", "default", {"app": "db"}))
    api.add("nodes", {"metadata": {"name": "t-worker"}})
    assert [p["metadata"]["name"] for p in lab.get("pods", namespace=None)] == ["a", "b"]
    assert [p["metadata"]["name"] for p in lab.get("po", namespace="shop")] == ["a"]
    assert [
        p["metadata"]["name"] for p in lab.get("Pod", namespace=None, selector={"app": "db"})
    ] == ["b"]
    found = lab.get("pod", "a", namespace="shop")
    assert found[0]["kind"] == "Pod" and found[0]["apiVersion"] == "v1"
    assert lab.get("pod", "missing") == []
    assert [p["metadata"]["namespace"] for p in lab.get("pods", "a", namespace=None)] == ["shop"]
    nodes = lab.get("nodes", namespace="default")  # cluster-scoped: namespace ignored
    assert nodes[0]["kind"] == "Node" and nodes[0]["metadata"]["name"] == "t-worker"


def test_logs_read_the_pods_log_through_the_api(api, lab):
    api.add("pods", pod("web", "shop"))
    assert lab.logs("shop/web", container="main") == "log of web ['main']\n"
    assert api.requests[-1].path == "/api/v1/namespaces/shop/pods/web/log?container=main"
    with pytest.raises(LabError, match="Cannot read the logs of pod default/ghost"):
        lab.logs("ghost")


def test_exec_interactive_runs_kubectl_exec_on_the_labs_context(api, lab, monkeypatch):
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
    assert lab.exec_interactive("shop/web", ["sh"], container="main", tty=False) == 4
    assert ran == [
        [
            "/opt/bin/kubectl", "--kubeconfig", "/k/c", "--context", "kind-t",
            "exec", "-i", "-c", "main", "-n", "shop", "web", "--", "sh",
        ]
    ]  # fmt: skip


def test_get_custom_kind_by_discovery(api, lab):
    api.add("tigerastatuses", {"metadata": {"name": "calico"}, "status": {"conditions": []}})
    assert lab.get("tigerastatus", namespace=None)[0]["kind"] == "TigeraStatus"
    with pytest.raises(LabError) as err:
        lab.get("frobnicators")
    assert "frobnicators" in err.value.what


def test_apply_dry_runs_everything_then_applies_with_server_side_apply(api, lab):
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    ]
    refs = lab.apply(docs)
    assert refs == [ObjectRef("Namespace", "shop", None), ObjectRef("ConfigMap", "c1", "default")]
    patches = api.writes()
    assert [("dryRun=All" in r.path) for r in patches] == [True, True, False, False]
    assert all(
        r.content_type == "application/apply-patch+yaml" and "fieldManager=labkit" in r.path
        for r in patches
    )
    assert (
        patches[2].path.startswith("/api/v1/namespaces/shop")
        and "/namespaces/default/configmaps/c1" in patches[3].path
    )
    assert api.objects[("configmaps", "default", "c1")]["data"] == {"a": "b"}


def test_apply_refused_by_the_server_applies_nothing(api, lab):
    api.reject.add("bad")
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}},
    ]
    with pytest.raises(LabError) as err:
        lab.apply(docs)
    assert "nothing was applied" in err.value.what and "forbidden" in err.value.what
    assert all("dryRun=All" in r.path for r in api.writes())
    assert ("configmaps", "default", "good") not in api.objects


def test_delete_refs_and_manifests_ignoring_missing(api, lab):
    api.add("configmaps", {"metadata": {"name": "c1", "namespace": "default"}})
    api.add("namespaces", {"metadata": {"name": "shop"}})
    lab.delete(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}},
        ]
    )
    deletes = [r.path for r in api.writes()]
    assert deletes == [
        "/api/v1/namespaces/default/configmaps/c1?propagationPolicy=Foreground",
        "/api/v1/namespaces/shop?propagationPolicy=Foreground",
    ]  # namespace last, each as `kubectl delete --cascade=foreground`
    lab.delete(ObjectRef("ConfigMap", "c1", "default"))  # already gone: fine
    assert not api.objects


def test_probe_container_is_added_once_with_a_strategic_merge_patch(api, lab):
    api.add("pods", pod("client", "shop"))
    lab._ensure_probe_container("shop", "client")
    lab._ensure_probe_container("shop", "client")
    patches = [r for r in api.writes() if r.path.endswith("/ephemeralcontainers")]
    assert len(patches) == 1
    assert patches[0].path == "/api/v1/namespaces/shop/pods/client/ephemeralcontainers"
    assert patches[0].content_type == "application/strategic-merge-patch+json"
    assert patches[0].body == probe.ephemeral_patch()


def test_probe_source_must_exist_and_run(api, lab):
    api.add("pods", pod("pending", phase="Pending"))
    with pytest.raises(LabError) as err:
        lab.probe("default/nobody", "10.0.0.1", 80)
    assert "does not exist" in err.value.what
    with pytest.raises(LabError) as err:
        lab.probe("pending", "10.0.0.1", 80)
    assert "Pending" in err.value.what


def test_destination_pod_ref_becomes_its_ip(api, lab):
    api.add("pods", pod("web", "shop"))
    assert lab._destination("shop/web") == "10.244.1.9"
    assert lab._destination("web.shop.svc") == "web.shop.svc"
    with pytest.raises(LabError):
        lab._destination("shop/none")


def test_node_exec_refuses_unknown_nodes(api, lab):
    api.add("nodes", {"metadata": {"name": "t-worker"}})
    with pytest.raises(LabError) as err:
        lab.node_exec("t-worker9", "true")
    assert "t-worker" in err.value.fix


def test_exec_into_a_missing_pod(api, lab):
    with pytest.raises(LabError) as err:
        lab.exec("shop/none", "true")
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
def test_attach_detects_cni_and_mode(api, monkeypatch, daemonsets, config, cni, mode):
    import yaml

    for ns, name in daemonsets:
        api.add("daemonsets", {"metadata": {"name": name, "namespace": ns}})
    if config is not None:
        api.add(
            "configmaps",
            {
                "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                "data": {"config.conf": config},
            },
        )
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["t"])
    monkeypatch.setattr(cluster, "kubeconfig_text", lambda name: yaml.safe_dump(api.kubeconfig))
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
def test_attach_detects_cloud_provider_kind(api, monkeypatch, state, serves):
    """Issue 14.5: capabilities come from the running cloud-provider-kind container and the
    IngressClass it creates in the cluster it serves (pkg/ingress/controller.go, Init)."""
    import yaml

    api.add("daemonsets", {"metadata": {"name": "calico-node", "namespace": "calico-system"}})
    api.add("ingressclasses", {"metadata": {"name": "cloud-provider-kind"}})
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["t"])
    monkeypatch.setattr(cluster, "kubeconfig_text", lambda name: yaml.safe_dump(api.kubeconfig))
    asked: list[str] = []
    monkeypatch.setattr(hostcontainers, "container_state", lambda name: asked.append(name) or state)
    lab = KindLab.attach("t")
    assert lab is not None and asked == [hostcontainers.CLOUD_PROVIDER]
    assert lab.capabilities.load_balancer is serves and lab.capabilities.ingress is serves


def test_attach_of_an_unknown_cluster(monkeypatch):
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["other"])
    assert KindLab.attach("t") is None


def test_the_labs_uid_is_its_kube_system_namespaces(api, lab):
    """A cluster deleted and created again under the same name has a new kube-system uid."""
    api.add("namespaces", {"metadata": {"name": "kube-system", "uid": "1a2b-first-build"}})
    assert lab.uid() == "1a2b-first-build"
    api.add("namespaces", {"metadata": {"name": "kube-system", "uid": "3c4d-second-build"}})
    assert lab.uid() == "3c4d-second-build"
    del api.objects[("namespaces", None, "kube-system")]
    with pytest.raises(LabError, match="no kube-system namespace"):
        lab.uid()


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
def docker(api, monkeypatch):
    api.add("nodes", {"metadata": {"name": "t-worker"}})
    fake = Docker()
    monkeypatch.setattr(tools, "find", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(kind_lab.subprocess, "run", fake)
    return fake


def test_netns_add_and_delete_run_ip_netns_in_the_node(docker, lab):
    lab.netns_add("t-worker", "hand")
    assert docker.calls == [handmade.list_argv("t-worker"), handmade.add_argv("t-worker", "hand")]
    docker.listing = "hand (id: 0)\ncni-0d3c9a4e-1111-2222-3333-444455556666\n"
    assert lab.netns_list("t-worker") == ["hand"]
    with pytest.raises(LabError) as err:
        lab.netns_add("t-worker", "hand")
    assert "netns_delete('t-worker', 'hand')" in err.value.fix
    docker.calls.clear()
    lab.netns_delete("t-worker", "hand")
    assert docker.calls[-1] == handmade.delete_argv("t-worker", "hand")
    docker.listing = ""
    docker.calls.clear()
    lab.netns_delete("t-worker", "hand")  # absent: nothing to do
    assert docker.calls == [handmade.list_argv("t-worker")]
    with pytest.raises(LabError):
        lab.netns_list("t-worker9")


def test_netns_exec_and_probes_need_the_namespace(api, docker, lab):
    with pytest.raises(LabError) as err:
        lab.netns_exec("t-worker", "hand", "ip addr")
    assert "netns_add('t-worker', 'hand')" in err.value.fix
    with pytest.raises(LabError):
        lab.probe("t-worker:hand", "10.96.0.1", 443)
    docker.listing = "hand\n"
    assert lab.netns_exec("t-worker", "hand", "ip addr").ok
    assert docker.calls[-1] == handmade.exec_argv("t-worker", "hand", ["sh", "-c", "ip addr"])
    probed = lab.probe_many([("t-worker:hand", "10.96.0.1", 443)], timeout=1.0)
    assert [p.outcome for p in probed] == ["timeout"] and probed[0].src == "t-worker:hand"
    sent = handmade.probe_argv("t-worker", "hand", "10.96.0.1", 443, "TCP", 1.0)
    assert docker.calls[-1] == sent
    assert not [r for r in api.requests if r.method == "PATCH"]  # no probe container added
