"""``kubectl create``: ``create -f`` (served by :mod:`.apply`) and ``create namespace NAME``;
kubectl's other generators (``create deployment``, ``create service`` ...) are refused in one
line naming what the sandbox serves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.kubectl import apply, flags, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

KUBECTL_GENERATORS = (
    "clusterrole", "clusterrolebinding", "configmap", "cm", "cronjob", "cj", "deployment",
    "deploy", "ingress", "ing", "job", "poddisruptionbudget", "pdb", "priorityclass", "pc",
    "quota", "resourcequota", "role", "rolebinding", "secret", "service", "svc",
    "serviceaccount", "sa", "token",
)  # fmt: skip
"""``kubectl create`` subcommands the sandbox does not serve."""
NAMESPACE_TABLE = (flags.NAMESPACE,)
_VALUED = ("-f", "--filename", "-n", "--namespace")


def create(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl create ...`` prints on this lab, and its exit code."""
    items = list(argv)
    at = _subcommand_at(items)
    if at is None:
        return apply.create_from_files(lab, items, stdin)
    sub = items[at]
    rest = items[:at] + items[at + 1 :]
    if sub in ("namespace", "ns"):
        return create_namespace(lab, rest)
    if sub in KUBECTL_GENERATORS:
        raise KubectlError(
            f"error: labkit kubectl on the sandbox serves create -f and create namespace, not "
            f"create {sub}; write the object as YAML and `kubectl apply -f` it (or use a Kind "
            "lab, where the real kubectl runs)"
        )
    return apply.create_from_files(lab, items, stdin)


def _subcommand_at(items: list[str]) -> int | None:
    i = 0
    while i < len(items):
        if items[i] in _VALUED:
            i += 2
        elif items[i].startswith("-") and items[i] != "-":
            i += 1
        else:
            return i
    return None


def create_namespace(lab: Lab, argv: Sequence[str]) -> Outcome:
    """What ``kubectl create namespace NAME`` prints, and its exit code."""
    shape = "namespace NAME"
    parsed = flags.parse(
        "create namespace", argv, NAMESPACE_TABLE, flags.served_help("create", shape, ())
    )
    if len(parsed.words) != 1:
        raise KubectlError(
            f"error: exactly one NAME is required, got {len(parsed.words)}\n"
            "See 'kubectl create namespace -h' for help and examples"
        )
    name = parsed.words[0]
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    causes = writes.causes(doc)
    if causes:
        return Outcome("", writes.report([writes.invalid("Namespace", name, causes, "")]), 1)
    if lab.get("namespaces", name, None):
        raise KubectlError(f'Error from server (AlreadyExists): namespaces "{name}" already exists')
    writes.write(lab, [doc], "default")
    return Outcome(f"namespace/{name} created\n", "", 0)
