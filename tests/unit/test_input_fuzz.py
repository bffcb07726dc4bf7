"""Malformed input, generated: every name and port field of the scenarios' objects times every
bad value, plus structural, size, YAML and kind-path attacks. Each must be refused with a
LabError naming the bad field, and leave the sandbox's cluster store exactly as it was.

The pipeline is the sandbox lab's own apply: ``manifests.load``, ``manifests.validate``, then
``ClusterStore.apply`` (the Kind lab runs the same first two steps before it calls the API).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from labkit import manifests, scenarios
from labkit.errors import LabError
from labkit.sandbox.store import ClusterStore

Path = tuple[str | int, ...]

PORT_FIELDS = {"containerPort", "hostPort", "port", "targetPort", "nodePort", "endPort", "number"}
ZERO_MEANS_UNSET = {"hostPort", "targetPort", "nodePort"}
"""Ports the API server defaults or allocates when 0 (so 0 is valid there)."""
BAD_PORTS = [0, 70000, -5, 65536, 2.5, True, "-f"]
BAD_PORT_NAMES = ["HTTP", "a-very-long-port-name", "web;ls", "-f", "--", "80x/../"]
BAD_NAMES = [
    "web;rm -rf /",
    "$(reboot)",
    "../../etc/passwd",
    "wéb",
    "Web",
    "web\nx",
    "-web",
    "web_1",
    "",
]
LABEL_KINDS = {"Namespace", "Service"}

EXTRA_OBJECTS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default, labels: {app: web}}
data: {mode: fast, "app.conf": "x=1"}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: default}
data: {token: c2VjcmV0}
stringData: {user: ada}
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy, namespace: default}
subsets: [{addresses: [{ip: 10.0.0.5}], ports: [{port: 8080, name: http}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: registry.k8s.io/e2e-test-images/agnhost:2.66.1
        ports: [{containerPort: 5432, hostPort: 15432, name: pg}]
        readinessProbe: {tcpSocket: {port: pg}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range, namespace: default}
spec:
  podSelector: {}
  egress: [{ports: [{port: 8000, endPort: 8100}], to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
"""


def _scenario_objects() -> list[dict[str, Any]]:
    """Every object of every scenario (all steps and variants), then a few kinds they lack."""
    docs: list[dict[str, Any]] = []
    for name in scenarios.names():
        scenario = scenarios.get(name)
        files = list(scenario.manifests)
        for variant in scenario.variants:
            files += [*variant.manifests, *variant.fix]
        docs += scenario.documents(tuple(dict.fromkeys(files)))
    return docs + manifests.load(EXTRA_OBJECTS)


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


FUZZ_NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzz"}}


def field_name(path: Path) -> str:
    """A path as kubectl names fields: ``spec.ports[0].port``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)[1:]


def _pattern(kind: str, path: Path) -> tuple[str, ...]:
    return (kind, *("[]" if isinstance(p, int) else p for p in path))


def _bad_values(kind: str, path: Path, value: Any) -> list[Any]:
    """The bad values to try in one field, or [] for a field this fuzz does not target."""
    last = path[-1]
    parent = path[-2] if len(path) > 1 else None
    if last in PORT_FIELDS and not isinstance(value, dict):
        if isinstance(value, str):
            return BAD_PORT_NAMES
        return [v for v in BAD_PORTS if not (v == 0 and last in ZERO_MEANS_UNSET)]
    if path == ("metadata", "name"):
        long = "x" * (64 if kind in LABEL_KINDS else 254)
        return [*BAD_NAMES, long] + (["1st"] if kind == "Service" else [])
    if (last == "name" and parent == "service") or last == "host":
        hosts = [*BAD_NAMES, "1.2.3.4,IP:10.0.0.1"]
        return [h for h in hosts if h] if last == "host" else hosts
    if path == ("metadata", "namespace") or (
        last == "name"
        and isinstance(parent, int)
        and path[-3] in ("containers", "initContainers", "volumes", "volumeMounts")
    ):
        return [*BAD_NAMES, "x" * 64]
    return []


def _with(doc: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def field_cases() -> list[tuple[str, list[dict[str, Any]], str]]:
    """(case id, documents to apply, the field the refusal must name): each name and port field
    of each kind, the first time the scenarios show it, times each bad value; a valid Namespace
    goes first, so a partial apply would show."""
    docs = _scenario_objects()
    cases: list[tuple[str, list[dict[str, Any]], str]] = []
    seen: set[tuple[str, ...]] = set()
    for doc in docs:
        kind = str(doc["kind"])
        for path, value in _leaves(doc):
            pattern = _pattern(kind, path)
            bad_values = _bad_values(kind, path, value)
            if pattern in seen or not bad_values:
                continue
            seen.add(pattern)
            for bad in bad_values:
                batch = [FUZZ_NAMESPACE, _with(doc, path, bad)]
                cases.append((f"{kind}.{field_name(path)}={bad!r}"[:90], batch, field_name(path)))
    return cases


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": POD["spec"]},
    },
}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}}


def _edit(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.update(changes)
    return out


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  "
        + "\n  ".join(lines)
        + "\n"
    )


SHAPE_CASES: list[tuple[str, Any, str]] = [
    ("pod without spec", _edit(POD, spec=None), "spec"),
    ("pod with empty spec", _edit(POD, spec={}), "spec.containers"),
    ("pod with no containers", _edit(POD, spec={"containers": []}), "spec.containers"),
    (
        "container without name",
        _edit(POD, spec={"containers": [{"image": "registry.k8s.io/pause:3.10"}]}),
        "spec.containers[0].name",
    ),
    (
        "container names twice",
        _edit(POD, spec={"containers": [POD["spec"]["containers"][0]] * 2}),
        "spec.containers[1].name",
    ),
    (
        "deployment template without containers",
        _edit(DEPLOYMENT, spec={**DEPLOYMENT["spec"], "template": {"metadata": {}}}),
        "spec.template.spec",
    ),
    ("kind as a path", _edit(POD, kind="../../../../etc/passwd"), "at kind"),
    ("apiVersion as a path", _edit(POD, apiVersion="../../../../etc/passwd"), "at kind"),
    ("kind not text", _edit(POD, kind=["Pod"]), "kind"),
    ("metadata not a mapping", _edit(POD, metadata="web"), "metadata"),
    ("labels with a bad key", _edit(POD, metadata={"name": "w", "labels": {"a b": "x"}}), "labels"),
    (
        "label value with a newline",
        _edit(POD, metadata={"name": "w", "labels": {"app": "a\nb"}}),
        "labels",
    ),
    (
        "label value too long",
        _edit(POD, metadata={"name": "w", "labels": {"a": "x" * 64}}),
        "labels",
    ),
    (
        "annotations over 256 KiB",
        _edit(POD, metadata={"name": "w", "annotations": {"a": "x" * 300_000}}),
        "metadata.annotations",
    ),
    ("ConfigMap over 1 MiB", _edit(CONFIG, data={"blob": "x" * 1_100_000}), "at data"),
    ("ConfigMap of 10 MB", _edit(CONFIG, data={"blob": "x" * 10_000_000}), "(whole object)"),
    ("ConfigMap key as a path", _edit(CONFIG, data={"../../x": "1"}), "at data"),
    (
        "Secret over 1 MiB",
        _edit(CONFIG, kind="Secret", stringData={"k": "x" * 1_100_000}),
        "at data",
    ),
    ("Secret not base64", _edit(CONFIG, kind="Secret", data={"k": "not base64!"}), "data"),
    ("YAML text of 10 MB", "kind: ConfigMap\ndata: {a: '" + "x" * 10_000_000 + "'}\n", "MiB"),
    ("YAML alias bomb", _bomb(9), "aliases"),
    ("YAML nested too deep", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("YAML scalar", "just text\n", "not a Kubernetes object"),
    ("List with bad items", {"kind": "List", "items": ["x"]}, "List"),
    (
        "Service of type ExternalName without a name",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "evil;rm -rf /"},
        },
        "spec.externalName",
    ),
    (
        "NetworkPolicy ipBlock that is no CIDR",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p"},
            "spec": {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "1.2.3.4/32\n-A INPUT -j ACCEPT"}}]}],
            },
        },
        "spec.ingress[0].from[0].ipBlock.cidr",
    ),
    (
        "Ingress TLS host that would add a certificate name",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "i"},
            "spec": {"tls": [{"hosts": ["shop.example,IP:10.0.0.1"]}]},
        },
        "spec.tls[0].hosts[0]",
    ),
    (
        "NetworkPolicy endPort below port",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
        },
        "spec.ingress[0].ports[0].endPort",
    ),
    (
        "Service with two unnamed ports",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "two"},
            "spec": {"ports": [{"port": 80}, {"port": 81}]},
        },
        "spec.ports[0].name",
    ),
]


@pytest.fixture(scope="module")
def store() -> ClusterStore:
    return ClusterStore.bootstrap("fz", "calico")


def refuse(store: ClusterStore, source: Any) -> LabError:
    """Apply as the sandbox lab does; the refusal, after proving the store did not change."""
    before = store.to_dict()
    with pytest.raises(LabError) as err:
        docs = manifests.load(source)
        manifests.validate(docs)
        store.apply(docs)
    assert store.to_dict() == before, "a refused apply changed the store"
    return err.value


FIELD_CASES = field_cases()


def test_the_fuzz_is_big_and_covers_every_port_field():
    fields = {case[2].rsplit(".", 1)[-1] for case in FIELD_CASES}
    assert len(FIELD_CASES) + len(SHAPE_CASES) >= 300
    assert PORT_FIELDS | {"name", "namespace"} <= fields


@pytest.mark.parametrize(("case", "docs", "field"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_each_bad_field_is_refused_by_name(store, case, docs, field):
    error = refuse(store, docs)
    assert f"at {field}" in error.what, error.what
    assert "\n" not in error.what and "\n" not in error.fix


@pytest.mark.parametrize(("case", "source", "field"), SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_each_bad_shape_is_refused_by_name(store, case, source, field):
    error = refuse(store, source)
    assert field in error.what, error.what
    assert "\n" not in error.what and len(error.what) < 400


def test_the_unmutated_objects_apply():
    """The fuzz starts from valid objects, so each refusal comes from its mutation alone."""
    docs = _scenario_objects()
    manifests.validate(docs)
    refs = ClusterStore.bootstrap("fz", "calico").apply(
        [FUZZ_NAMESPACE, POD, DEPLOYMENT, *docs[-5:]]
    )
    assert len(refs) == 8
