"""``kubectl delete`` served on a Lab: ``-f FILE|FOLDER|-``, ``TYPE NAME...``, ``TYPE/NAME...``,
or ``TYPE`` with ``--all`` or ``-l``; ``--ignore-not-found``. Objects that exist are deleted
through the Lab seam in one change (their data plane goes with them); each missing one is
kubectl's NotFound line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.errors import LabError
from labkit.kubectl import flags, resources, sources, writes
from labkit.kubectl.fetch import not_found
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.kubectl.resources import Resource
from labkit.lab import Lab, ObjectRef

TABLE = (
    flags.FILENAME,
    flags.NAMESPACE,
    flags.Flag("--ignore-not-found", value=False),
    flags.Flag("--all", value=False),
    flags.Flag("--selector", "-l"),
)
SHAPE = "-f FILE|FOLDER|- | TYPE NAME... | TYPE/NAME... | TYPE --all|-l SELECTOR [-n NAMESPACE]"
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
"""Namespaces the API server refuses to delete."""
_NO_RESOURCES = (
    "error: You must provide one or more resources by argument or filename.\n"
    "Example resource specifications include:\n"
    "   '-f rsrc.yaml'\n"
    "   '--filename=rsrc.json'\n"
    "   '<resource> <name>'\n"
    "   '<resource>'"
)

Target = tuple[Resource, str, str, str]
"""A type, name, namespace, and the source it was read from ("" for the command line)."""


def delete(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl delete ...`` prints on this lab, and its exit code."""
    parsed = flags.parse("delete", argv, TABLE, flags.served_help("delete", SHAPE, TABLE))
    namespace = parsed.last("--namespace", "default")
    listing = parsed.on("--all") or parsed.given("--selector")
    if parsed.given("--filename"):
        if parsed.words:
            raise KubectlError(
                "error: when paths, URLs, or stdin is provided as input, you may not specify "
                "resource arguments as well"
            )
        wanted = _from_files(sources.read(parsed.values["--filename"], stdin), namespace)
    elif parsed.words:
        chosen = writes.targets(parsed.words, names_needed=not listing)
        if listing:
            if parsed.on("--all") and parsed.given("--selector"):
                raise KubectlError("error: cannot set --all and --selector at the same time")
            if any(name for _, name in chosen):
                raise KubectlError("error: name cannot be provided when a selector is specified")
            wanted = _listed(lab, chosen[0][0], namespace, parsed.last("--selector") or None)
            if not wanted:
                return Outcome("No resources found\n", "", 0)
        else:
            wanted = [(r, name, namespace, "") for r, name in chosen]
    else:
        raise KubectlError(_NO_RESOURCES)
    return _delete(lab, wanted, parsed.on("--ignore-not-found") or listing)


def _from_files(documents: list[sources.Document], namespace: str) -> list[Target]:
    wanted = []
    for item in documents:
        kind, meta = item.doc.get("kind"), item.doc.get("metadata") or {}
        resource = resources.find(str(kind or ""))
        if resource is None:
            version = str(item.doc.get("apiVersion"))
            name = str(meta.get("name", ""))
            raise KubectlError(writes.not_modelled(str(kind), version, name, item.source))
        if not meta.get("name"):
            raise KubectlError(
                f'error: error when deleting "{item.source}": resource name may not be empty'
            )
        wanted.append(
            (resource, str(meta["name"]), meta.get("namespace") or namespace, item.source)
        )
    return wanted


def _listed(lab: Lab, resource: Resource, namespace: str, selector: str | None) -> list[Target]:
    scope = namespace if resource.namespaced else None
    try:
        found = lab.get(resource.kind, None, scope, selector)
    except LabError as exc:
        raise KubectlError(f"error: {exc.what}") from None
    return [(resource, o["metadata"]["name"], namespace, "") for o in found]


def _delete(lab: Lab, wanted: list[Target], ignore_missing: bool) -> Outcome:
    lines, errors, refs = [], [], []
    for resource, name, namespace, source in wanted:
        during = f'error when deleting "{source}": ' if source else ""
        obj = writes.live(lab, resource, name, namespace)
        if obj is None:
            if not ignore_missing:
                errors.append(not_found(resource, name).replace("): ", f"): {during}", 1))
            continue
        if resource.kind in writes.READ_ONLY_KINDS:
            errors.append(
                f"error: labkit kubectl on the sandbox cannot delete {resource.plural}: the "
                "sandbox's nodes are fixed (use a Kind lab to add and remove nodes)"
            )
            continue
        if resource.kind == "Namespace" and name in PROTECTED_NAMESPACES:
            errors.append(
                f'Error from server (Forbidden): {during}namespaces "{name}" is forbidden: '
                "this namespace may not be deleted"
            )
            continue
        ref = ObjectRef(resource.kind, name, namespace if resource.namespaced else None)
        if ref in refs:
            continue
        refs.append(ref)
        where = f" from {namespace} namespace" if resource.namespaced else ""
        lines.append(f'{resource.qualified} "{name}" deleted{where}\n')
    if refs:
        try:
            lab.delete(refs)
        except LabError as exc:
            raise KubectlError(f"error: {exc.what}") from None
    stderr = "".join(f"{e}\n" for e in errors)
    return Outcome("".join(lines), stderr, 1 if errors else 0)
