"""Hints name only commands the learner's backend has: the catalogue of labkit/commands.py spelt
for both backends, the rules of tests/unit/hintcheck.py, a walk over every check's hints on a fake
lab of each backend, and a scan that keeps commands out of message texts elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import hintcheck
import pytest

from labkit import commands
from labkit.checks import (
    CHECKS,
    cni_identity,
    diagnose,
    dns_resolves,
    external_to_service,
    http_paths,
    ingress_routes,
    kube_proxy_rules,
    pod_netns,
    pod_to_pod,
    pod_to_service,
    policy_matrix,
    service_health,
)
from labkit.commands import Command, Shell, kubectl, on_node

LABKIT = Path(commands.__file__).resolve().parent
CATALOGUE = {name: value for name, value in vars(commands).items() if isinstance(value, Command)}
FIELDS = {
    "ns": "shop",
    "svc": "web",
    "pod": "web-1",
    "node": "netlab-worker",
    "chain": "KUBE-SEP",
    "kind": "pods",
    "name": "web-1",
    "cni": "calico",
}
SHELLS = [Shell("kind", "netlab"), Shell("sandbox", "netlab"), Shell("sandbox", "lab2")]


# --------------------------------------------------------------------------- the catalogue


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: f"{s.backend}-{s.lab_name}")
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_command_is_spelt_right_for_each_backend(name, shell):
    said = shell(CATALOGUE[name], **FIELDS)
    assert said.startswith("`") and said.endswith("`") and "{" not in said
    assert hintcheck.problems(said, shell.backend) == []


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_command_names_the_lab_where_it_needs_one(name):
    for backend in commands.SPELLED_BACKENDS:
        said = CATALOGUE[name].spelt(backend, "lab2", **FIELDS)
        if said.startswith(("kubectl", "labkit")):
            assert "lab2" in said, said


def test_the_sandbox_is_never_told_to_use_kind_tools_and_kind_keeps_them():
    for command in CATALOGUE.values():
        assert not hintcheck.NOT_ON_SANDBOX.search(command.sandbox), command
        assert command.kind.startswith(("kubectl --context kind-{lab} ", "docker exec ", "labkit "))


def test_every_command_of_the_catalogue_is_used():
    sources = "\n".join(p.read_text() for p in LABKIT.rglob("*.py") if p.name != "commands.py")
    unused = [name for name in CATALOGUE if name not in sources]
    assert unused == []


def test_spelling_fills_fields_and_quotes_python():
    assert kubectl("get svc -n {ns}", sandbox="x").spelt("kind", "netlab", ns="shop") == (
        "kubectl --context kind-netlab get svc -n shop"
    )
    node = on_node("ip route get {ip}")
    assert node.spelt("kind", "l", node="l-worker", ip="10.0.0.1") == (
        "docker exec l-worker ip route get 10.0.0.1"
    )
    assert node.spelt("sandbox", "l", node="l-worker", ip="10.0.0.1") == (
        "lab.node_exec('l-worker', 'ip route get 10.0.0.1')"
    )
    assert Shell("sandbox", "l")(commands.LAB_STATUS) == "`labkit status --name l`"


def test_unknown_backend_or_missing_field_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        commands.SERVICES.spelt("vm", "netlab")
    with pytest.raises(KeyError):
        commands.ENDPOINTS.spelt("kind", "netlab", ns="shop")


def test_a_shell_comes_from_a_lab(fakes):
    lab = fakes.web_cluster()
    assert Shell.of(lab) == Shell(lab.backend, "fake")


# --------------------------------------------------------------------------- the rules themselves


@pytest.mark.parametrize(
    "text, backend, wrong",
    [
        ("Run `kubectl get pods -A`.", "sandbox", "names 'kubectl'"),
        ("Run `docker exec n ip route`.", "sandbox", "names 'docker'"),
        ("Run `crictl ps` on the node.", "sandbox", "names 'crictl'"),
        ("Then `kind load docker-image x`.", "sandbox", "runs 'kind load"),
        ("Run `kubectl get pods -A`.", "kind", "does not name the lab's context"),
        ("Run `ip netns exec lk-netlab-worker ip route`.", "kind", "names 'ip netns'"),
        ("Run `labkit kubectl --name netlab get pods`.", "kind", "names 'labkit kubectl'"),
        (
            "Run `labkit kubectl --name netlab port-forward web 8080`.",
            "sandbox",
            "refused by labkit",
        ),
        ("Run `labkit kubectl --name netlab get pod --watch`.", "sandbox", "refused by labkit"),
        ("Run `labkit kubectl get pods`.", "sandbox", "does not name the lab"),
        ("Run `kubectl get pods -A`.", "sandbox", "names 'kubectl'"),
        ("Run `labkit status`.", "sandbox", "does not name the lab"),
        ("Run `labkit statu --name x`.", "sandbox", "not a labkit command line"),
        ("See `lab.get('pods', nspace=None)`.", "sandbox", "does not fit Lab.get"),
        ("See `lab.node_exec('n')`.", "sandbox", "does not fit Lab.node_exec"),
        ("See `lab.pod_logs('web')`.", "kind", "Lab has no method 'pod_logs'"),
        ("See `lab.get('pods'`.", "sandbox", "is not Python"),
    ],
)
def test_the_rules_catch_wrong_hints(text, backend, wrong):
    assert any(wrong in p for p in hintcheck.problems(text, backend))


@pytest.mark.parametrize(
    "text, backend",
    [
        ("Set `type: NodePort`; run `labkit status --name lab2`.", "sandbox"),
        ("See `lab.get('pods', 'web', namespace='shop')`.", "kind"),
        ("Run `kubectl --context kind-netlab get svc -A`, then service_health(lab, 'x').", "kind"),
    ],
)
def test_the_rules_let_right_hints_pass(text, backend):
    assert hintcheck.problems(text, backend) == []


# --------------------------------------------------------------------------- every check's hints


def _broken(fakes):
    """One failing call of every check, each on a state whose hint names a command (the FakeLab
    plays the backend the ``fakes`` fixture gives it)."""
    lab = fakes.web_cluster()
    return {
        "pod_to_pod": lambda: pod_to_pod(lab, "default/ghost", "default/client", 8080),
        "pod_to_service": lambda: pod_to_service(lab, "default/client", "nosuch"),
        "external_to_service": lambda: external_to_service(lab, "nosuch"),
        "dns_resolves": lambda: dns_resolves(lab, "default/client", "wbe", expect=True, wait=0),
        "service_health": lambda: service_health(lab, "nosuch", wait=0),
        "kube_proxy_rules": lambda: kube_proxy_rules(lab, "nosuch"),
        "ingress_routes": lambda: ingress_routes(lab, "shop.example.com", {"/": "default/web"}),
        "policy_matrix": lambda: policy_matrix(lab, ["default/client", "default/ghost"], [8080]),
        "pod_netns": lambda: pod_netns(lab, "default/ghost"),
        "cni_identity": lambda: cni_identity(fakes.FakeLab([]), "default/ghost"),
        "diagnose": lambda: diagnose(lab, "default/client", "shop/nosuch"),
        "http_paths": lambda: http_paths(
            lab, "default/ghost", "default/web-5d4f8c7b9d-abcde", 8080, {"GET /": 200}, wait=0
        ),
    }


def test_every_check_gives_hints_in_the_backends_own_commands(fakes):
    runs = _broken(fakes)
    assert set(runs) == set(CHECKS)
    backend = fakes.FakeLab.default_backend
    own = ("`kubectl --context kind-fake ",) if backend == "kind" else ("`lab.", "`labkit ")
    for name, run in runs.items():
        result = run()
        assert result.verdict == "fail", name
        assert hintcheck.problems(result.hint, backend) == [], name
        if name != "cni_identity":  # its missing pod points at pod_netns, no command
            assert any(o in result.hint for o in own), (name, result.hint)


# --------------------------------------------------------------------------- no commands elsewhere

SPEAKS_TO_BOTH = ["checks", "course", "model", "manifests.py", "status.py", "values.py"]
"""Code whose messages reach learners on either backend (it must spell commands through the
catalogue)."""


def _message_strings(path: Path) -> list[str]:
    """The string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _modules(*places: str) -> list[Path]:
    found = []
    for place in places:
        path = LABKIT / place
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


@pytest.mark.parametrize(
    "path", _modules(*SPEAKS_TO_BOTH), ids=lambda p: str(p.relative_to(LABKIT))
)
def test_messages_for_both_backends_spell_no_command_themselves(path):
    wrong = [
        text
        for text in _message_strings(path)
        if hintcheck.NOT_ON_SANDBOX.search(text) or "`labkit " in text or "`lab." in text
    ]
    assert wrong == []


def _error_strings(path: Path) -> list[str]:
    """The string parts of every ``LabError(...)`` a module raises."""
    tree = ast.parse(path.read_text())
    return [
        part.value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "LabError"
        for part in ast.walk(call)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    ]


@pytest.mark.parametrize("path", _modules("sandbox"), ids=lambda p: str(p.relative_to(LABKIT)))
def test_the_sandboxs_errors_name_no_kind_tools(path):
    assert [t for t in _error_strings(path) if hintcheck.NOT_ON_SANDBOX.search(t)] == []
