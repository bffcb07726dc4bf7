"""ingress_routes: which backend answered each Host + path, and the hints for 404 / 5xx / a wrong
backend / an Ingress without address; plus the curl output parser."""

from __future__ import annotations

import pytest

from labkit.checks.ingress import HttpAnswer, answering_pod, ingress_routes, parse_curl_i
from labkit.errors import LabError
from labkit.lab import OUTSIDE, ExecResult

pytestmark = pytest.mark.usefixtures("fast_clock")

HOST = "services.company.com"
LB = "172.18.255.200"
ROUTES = {"/api": "default/api", "/dashboard": "dashboard"}


def ingress(
    paths: dict[str, str], cls: str = "cloud-provider-kind", address: str | None = LB
) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "company", "namespace": "default"},
        "spec": {
            "ingressClassName": cls,
            "rules": [
                {
                    "host": HOST,
                    "http": {
                        "paths": [
                            {
                                "path": p,
                                "pathType": "Prefix",
                                "backend": {"service": {"name": s, "port": {"number": 80}}},
                            }
                            for p, s in paths.items()
                        ]
                    },
                }
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": address}]} if address else {}},
    }


def http(status: int, body: str) -> str:
    return f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n\r\n" + body


def lab_with(fakes, ing: dict, answers: dict[str, str]):
    objects = [
        fakes.namespace("default"),
        fakes.node("lab-control-plane", "172.18.0.2"),
        fakes.node("lab-worker", "172.18.0.3"),
        fakes.pod("api-6c8d9f7b5c-aaaaa", "10.244.1.5", labels={"app": "api"}, owner="api"),
        fakes.pod(
            "dashboard-7d9f8c6b4d-bbbbb",
            "10.244.2.6",
            labels={"app": "dashboard"},
            owner="dashboard",
        ),
        fakes.service("api", "10.96.1.1", selector={"app": "api"}),
        fakes.service("dashboard", "10.96.1.2", selector={"app": "dashboard"}),
        fakes.service(
            "ingress-controller",
            "10.96.1.3",
            ns="ingress-system",
            type_="LoadBalancer",
            lb_ip=LB,
            ports=({"name": "http", "port": 80, "targetPort": 80, "nodePort": 31080},),
        ),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "cloud-provider-kind"},
        },
        ing,
    ]
    lab = fakes.FakeLab(objects)
    lab.overrides[(OUTSIDE, LB, 80)] = "connected"
    lab.overrides[(OUTSIDE, "172.18.0.2", 31080)] = "connected"
    for path, text in answers.items():
        for address, port in ((LB, 80), ("172.18.0.2", 31080)):
            cmd = (
                "curl",
                "-sS",
                "-i",
                "--max-time",
                "3",
                "-H",
                f"Host: {HOST}",
                f"http://{address}:{port}{path}",
            )
            lab.exec_outputs[("lab-control-plane", cmd)] = ExecResult(cmd, 0, text)
    return lab


# agnhost serve-hostname's answer at every path: the pod's name, no newline.
GOOD = {
    "/api": http(200, "api-6c8d9f7b5c-aaaaa"),
    "/dashboard": http(200, "dashboard-7d9f8c6b4d-bbbbb"),
}


def test_routes_pass_when_each_path_reaches_its_service(fakes):
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}), GOOD), HOST, ROUTES
    )
    assert r.verdict == "pass", r
    assert (
        "GET /api with Host: services.company.com (from lab-control-plane): HTTP 200 from an "
        "endpoint of "
        "default/api (converged after 1 attempt)" in str(r)
    )
    assert "6c8d9f7b5c" not in str(r)


def test_routes_via_the_controllers_node_port(fakes):
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}), GOOD),
        HOST,
        ROUTES,
        via="nodeport",
    )
    assert r.verdict == "pass" and "172.18.0.2:31080" in str(r)


def test_swapped_backends_are_named(fakes):
    swapped = {"/api": GOOD["/dashboard"], "/dashboard": GOOD["/api"]}
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "dashboard", "/dashboard": "api"}), swapped),
        HOST,
        ROUTES,
        wait=1,
    )
    assert r.verdict == "fail" and r.failure is None
    assert (
        "/api reached an endpoint of default/dashboard, not default/api" in r.hint
        and "backend.service.name" in r.hint
    )
    assert (
        "HTTP 200 from an endpoint of default/dashboard; wanted an endpoint of default/api"
        in str(r)
    )


def test_no_rule_gives_404_hint(fakes):
    answers = {**GOOD, "/dashboard": http(404, "default backend - 404: no Ingress rule matches")}
    r = ingress_routes(lab_with(fakes, ingress({"/api": "api"}), answers), HOST, ROUTES, wait=1)
    assert r.failure == "http" and "no Ingress rule matches host" in r.hint and "pathType" in r.hint
    assert "(from lab-control-plane): HTTP 404; wanted an endpoint of default/dashboard" in str(r)


def test_backend_errors_point_at_service_health(fakes):
    answers = {
        **GOOD,
        "/api": http(503, "ingress: service default/api did not answer"),
    }
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}), answers),
        HOST,
        ROUTES,
        wait=1,
    )
    assert r.failure == "http" and "service_health(lab, 'api'" in r.hint


def test_a_2xx_that_names_no_pod_is_not_a_route(fakes):
    """agnhost netexec answers any path it has no handler for from its "/" handler with the time
    (test/images/agnhost/netexec/netexec.go, rootHandler: ``NOW: <time>``), so a 200 alone does
    not show which Service answered: the route fails and the hint says what the backend lacks."""
    answers = {**GOOD, "/api": http(200, "NOW: 2026-12-06 19:40:49.1 +0000 UTC")}
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "dashboard", "/dashboard": "dashboard"}), answers),
        HOST,
        ROUTES,
        wait=1,
    )
    assert r.verdict == "fail" and r.failure is None
    assert "HTTP 200 from a backend whose answer names no pod of the lab" in str(r)
    assert "/api: HTTP 200, but the body names no pod" in r.hint and "serve-hostname" in r.hint


def test_no_http_answer(fakes):
    answers = {**GOOD, "/api": "curl: (28) timed out"}
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}), answers),
        HOST,
        ROUTES,
        wait=1,
    )
    assert r.verdict == "fail" and "no HTTP answer" in str(r)


def test_unknown_host(fakes):
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api"}), GOOD), "other.example.com", {"/": "api"}
    )
    assert r.verdict == "fail" and "No Ingress has a rule for host 'other.example.com'" in r.hint


def test_ingress_without_address_names_the_classes(fakes, fast_clock):
    r = ingress_routes(
        lab_with(fakes, ingress({"/api": "api"}, cls="nginx", address=None), GOOD), HOST, ROUTES
    )
    assert "has no address" in r.hint and "(nginx)" in r.hint and "(cloud-provider-kind)" in r.hint


def test_controller_unreachable_from_outside(fakes):
    lab = lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}), GOOD)
    lab.overrides[(OUTSIDE, LB, 80)] = "timeout"
    r = ingress_routes(lab, HOST, ROUTES)
    assert (
        r.failure == "timeout"
        and "connect from outside the cluster to 172.18.255.200:80: timeout" in str(r)
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"via": "magic"}, "via must be"),
        ({"routes": {}}, "at least one route"),
        ({"routes": {"api": "api"}}, "does not start with"),
    ],
)
def test_bad_input(fakes, kwargs, message):
    args = {"host": HOST, "routes": ROUTES, **kwargs}
    with pytest.raises(LabError, match=message):
        ingress_routes(lab_with(fakes, ingress({"/api": "api"}), GOOD), **args)


def test_parse_curl_i():
    answer = parse_curl_i(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nX-A: b\r\n\r\nbody\nmore"
    )
    assert answer == HttpAnswer(502, {"x-a": "b"}, "body\nmore")
    assert parse_curl_i("garbage").status is None


def test_answering_pod_is_a_body_naming_a_pod_alone():
    """agnhost serve-hostname answers ``os.Hostname()`` at every path
    (test/images/agnhost/serve-hostname/servehostname.go, main's "/" handler), netexec at
    /hostname only (netexec.go, hostnameHandler); netexec's rootHandler answers ``NOW: <time>``,
    which names no pod, and nothing after a colon counts."""
    names = {"web-1", "api-2"}
    assert answering_pod(HttpAnswer(200, {}, "api-2"), names) == "api-2"
    assert answering_pod(HttpAnswer(200, {}, "web-1\n"), names) == "web-1"
    assert answering_pod(HttpAnswer(200, {}, "NOW: 2026-01-01 10:00:00 +0000 UTC"), names) is None
    assert answering_pod(HttpAnswer(200, {}, "web-1: something"), names) is None
    assert answering_pod(HttpAnswer(200, {}, "web-9"), names) is None
    assert answering_pod(HttpAnswer(200, {}, ""), names) is None


def test_ingress_address_is_awaited_on_kind(fakes, fast_clock):
    """cloud-provider-kind writes an Ingress's address only once the Gateway it made has one
    (pkg/ingress/controller.go, updateIngressStatus), so on a lab that converges after apply the
    check looks again instead of failing at first sight."""
    lab = lab_with(fakes, ingress({"/api": "api", "/dashboard": "dashboard"}, address=None), GOOD)
    [ing] = [o for o in lab.objects if o["kind"] == "Ingress"]
    looks = [0]
    read = lab.get

    def get(kind, name=None, namespace="default", selector=None):
        if kind in ("ingresses", "ingress"):
            looks[0] += 1
            if looks[0] == 2:
                ing["status"] = {"loadBalancer": {"ingress": [{"ip": LB}]}}
        return read(kind, name, namespace, selector)

    lab.get = get
    r = ingress_routes(lab, HOST, ROUTES)
    assert r.verdict == "pass", str(r)
    assert looks[0] >= 2
