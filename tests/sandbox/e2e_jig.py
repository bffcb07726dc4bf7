"""What the re-expressed e2e cases (``test_e2e_*.py``) share: a lab of their own per module, and
the objects upstream's e2e framework builds (``e2epod.NewAgnhostPod``, the service jig's
``CreateTCPService``), as plain manifests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def module_lab(lab_name: str, cni: str) -> Iterator[Any]:
    """A fresh sandbox lab for one test module, always taken down afterwards."""
    from labkit.sandbox import backend

    backend.down(lab_name)
    lab = backend.up(lab_name, cni, quiet=True)
    try:
        yield lab
    finally:
        backend.down(lab_name)


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Namespace manifest."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def agnhost_pod(
    name: str,
    ns: str,
    args: list[str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    host_network: bool = False,
) -> dict[str, Any]:
    """``e2epod.NewAgnhostPod``: one agnhost container with ``args`` (default ``pause``), on
    ``node`` when given (``e2epod.SetNodeSelection``)."""
    container: dict[str, Any] = {"name": "agnhost-container", "image": AGNHOST}
    container["args"] = args or ["pause"]
    if ports:
        container["ports"] = ports
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def netexec_pod(
    name: str, ns: str, port: int, labels: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    """An agnhost ``netexec --http-port=PORT`` pod declaring that port."""
    return agnhost_pod(
        name,
        ns,
        ["netexec", f"--http-port={port}"],
        [{"containerPort": port}],
        labels,
        **kw,
    )


def service(name: str, ns: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """The jig's Service: selector ``testid: <name>`` (``jig.Labels``) unless given (None: no
    selector, endpoints made by hand)."""
    body: dict[str, Any] = {"selector": {"testid": name}, "ports": ports}
    body.update(spec)
    if body["selector"] is None:
        del body["selector"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def endpoint_ports(lab: Any, svc: str, ns: str) -> dict[str, list[int]]:
    """``validateEndpointsPortsOrFail``'s view: each pod behind the Service and its ports, read
    from the Endpoints object; the EndpointSlices must say the same. As upstream's
    ``GetContainerPortsByPodUID`` reads them, port by port: an endpoint in a slice without ports
    names no pod."""
    by_pod: dict[str, list[int]] = {}
    for subset in (lab.get("endpoints", svc, ns) or [{}])[0].get("subsets") or []:
        for port in subset.get("ports") or []:
            for addr in subset.get("addresses") or []:
                by_pod.setdefault(addr["targetRef"]["name"], []).append(port["port"])
    sliced: dict[str, list[int]] = {}
    for eps in lab.get("endpointslices", None, ns, selector=f"kubernetes.io/service-name={svc}"):
        for port in eps.get("ports") or []:
            for ep in eps.get("endpoints") or []:
                sliced.setdefault(ep["targetRef"]["name"], []).append(port["port"])
    got = {pod: sorted(ports) for pod, ports in by_pod.items()}
    assert got == {pod: sorted(ports) for pod, ports in sliced.items()}, (by_pod, sliced)
    return got
