"""A small fake Kubernetes API server on loopback for the Kind Lab's unit tests (no Docker):
discovery, get/list with field and label selectors, server-side apply and its dry run, delete
with a grace period, a Pod's log and ephemeral containers, and CRDs that turn Established."""

import copy
import http.server
import json
import socketserver
import threading
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

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
