"""Dependency floors that match the code, and one module that drives the `kind` CLI."""

import ast
import inspect
from pathlib import Path

import tomllib
from kubernetes.client import CoreV1Api

from labkit.kind import cluster

ROOT = Path(__file__).resolve().parents[2]
KIND_SUBCOMMANDS = {"create", "delete", "get", "load", "version", "export", "build"}


def _requirements(group: str | None = None) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] if group is None else project["optional-dependencies"][group]
    out = {}
    for spec in listed:
        name = spec.split(">", 1)[0].split("=", 1)[0].split("<", 1)[0].strip()
        out[name] = spec[len(name) :]
    return out


def test_the_kubernetes_floor_has_the_content_type_the_probe_passes():
    """kubernetes-client/python v36.0.0 CHANGELOG "Breaking Change from upgrading openapi
    generator to v6.6.0" (commit 5ef5796): v35.0.0's patch_namespaced_pod_ephemeralcontainers
    refused `_content_type` (not in its all_params), v36.0.0 takes it; labkit/kind/lab.py passes
    it, so the floor is 36."""
    assert _requirements()["kubernetes"] == ">=36,<38"
    method = CoreV1Api.patch_namespaced_pod_ephemeralcontainers
    assert "_content_type" in inspect.signature(method).parameters
    source = (ROOT / "labkit" / "kind" / "lab.py").read_text()
    assert "patch_namespaced_pod_ephemeralcontainers" in source and "_content_type=" in source


def test_pytest_kind_ng_is_a_dev_dependency_pinned_exactly():
    """pytest-kind-ng README ("Install pytest-kind-ng as a development dependency"); 26.7.0
    raises subprocess.CalledProcessError from KindCluster.create, its unreleased main a
    KindToolError (pytest_kind/cluster.py _run), so the version is pinned and the runtime never
    imports it."""
    assert "pytest-kind-ng" not in _requirements()
    assert _requirements("dev")["pytest-kind-ng"] == "==26.7.0"
    imports = [
        node
        for path in (ROOT / "labkit").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    names = [a.name for n in imports if isinstance(n, ast.Import) for a in n.names]
    modules = [n.module for n in imports if isinstance(n, ast.ImportFrom)]
    assert not [m for m in [*names, *modules] if m and m.startswith("pytest_kind")]
    conftest = (ROOT / "tests" / "kind" / "conftest.py").read_text()
    assert "from pytest_kind import KindCluster" in conftest
    assert "def kind_cluster(request)" in conftest  # the plugin's fixture, overridden


def test_every_kind_command_line_is_built_in_one_module():
    """kind's CLI (sigs.k8s.io/kind cmd/kind): `kind <subcommand> ...`; every such argv labkit
    builds is a literal in labkit/kind/cluster.py."""
    found = []
    for path in (ROOT / "labkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.List, ast.Tuple)) or len(node.elts) < 2:
                continue
            first, second = node.elts[0], node.elts[1]
            if (
                isinstance(first, ast.Constant)
                and first.value == "kind"
                and isinstance(second, ast.Constant)
                and second.value in KIND_SUBCOMMANDS
            ):
                found.append((path.relative_to(ROOT).as_posix(), second.value))
    assert {where for where, _ in found} == {"labkit/kind/cluster.py"}
    assert {sub for _, sub in found} == {"create", "delete", "get", "load", "version"}
    assert cluster.create_argv("a", image="i", config_path="c", kubeconfig="k")[:3] == (
        "kind",
        "create",
        "cluster",
    )
