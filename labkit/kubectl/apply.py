"""``kubectl apply -f`` and ``kubectl create -f`` served on a Lab: every document is read and
checked first, and one bad document means nothing is applied (exit 1, kubectl's error lines).
``apply`` then says per object whether it was created, configured or unchanged, comparing the
lab's object before and after; ``create`` refuses objects that exist (AlreadyExists) and
creates the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from labkit.kubectl import flags, sources, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.kubectl.resources import Resource
from labkit.lab import Lab

TABLE = (flags.FILENAME, flags.NAMESPACE)
SHAPE = "-f FILE|FOLDER|- [-f ...] [-n NAMESPACE]"


def apply(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl apply -f ...`` prints on this lab, and its exit code."""
    return _write(lab, "apply", argv, stdin)


def create_from_files(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl create -f ...`` prints on this lab, and its exit code."""
    return _write(lab, "create", argv, stdin)


def _write(lab: Lab, verb: str, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    parsed = flags.parse(verb, argv, TABLE, flags.served_help(verb, SHAPE, TABLE))
    if parsed.words:
        raise KubectlError(
            f"error: Unexpected args: [{' '.join(parsed.words)}]\n"
            f"See 'kubectl {verb} -h' for help and examples"
        )
    if not parsed.given("--filename"):
        raise KubectlError("error: must specify one of -f and -k")
    namespace = parsed.last("--namespace", "default")
    documents = sources.read(parsed.values["--filename"], stdin)
    if not documents:
        raise KubectlError(f"error: no objects passed to {verb}")
    problems = writes.check(lab, documents, namespace, parsed.given("--namespace"), verb)
    if verb == "apply":
        problems += [
            writes.plain(f"error: from {meta['generateName']}: cannot use generate name with apply")
            for meta in (d.doc["metadata"] for d in documents)
            if not meta.get("name")
        ]
    if problems:
        return Outcome("", writes.report(problems), 1)
    before = [_live(lab, item, namespace) for item in documents]
    chosen = [i for i, obj in enumerate(before) if verb == "apply" or obj is None]
    refused = [
        _exists(item)
        for item, obj in zip(documents, before, strict=True)
        if verb == "create" and obj is not None
    ]
    lines = []
    if chosen:
        refs = writes.write(lab, [documents[i].doc for i in chosen], namespace)
        for i, ref in zip(chosen, refs, strict=True):
            resource = _resource(ref.kind)
            after = writes.live(lab, resource, ref.name, ref.namespace or namespace)
            lines.append(f"{writes.named(resource, ref.name)} {_said(before[i], after)}\n")
    stderr = "".join(p.among + "\n" for p in refused)
    return Outcome("".join(lines), stderr, 1 if refused else 0)


def _said(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """kubectl apply's word for one object: new, the same as before, or changed."""
    if before is None:
        return "created"
    if after is not None and writes.manifest_of(before) == writes.manifest_of(after):
        return "unchanged"
    return "configured"


def _resource(kind: str) -> Resource:
    """The served type of a document that passed ``writes.check``."""
    resource = writes.writable(kind)
    assert resource is not None  # writes.check refused every other kind
    return resource


def _live(lab: Lab, item: sources.Document, namespace: str) -> dict[str, Any] | None:
    """The lab's object a checked document names, before the write (None: it is new)."""
    meta = item.doc["metadata"]
    if not meta.get("name"):
        return None  # a generated name is always new
    resource = _resource(item.doc["kind"])
    return writes.live(lab, resource, meta["name"], meta.get("namespace") or namespace)


def _exists(item: sources.Document) -> writes.Problem:
    resource = _resource(item.doc["kind"])
    return writes.plain(
        f'Error from server (AlreadyExists): error when creating "{item.source}": '
        f'{writes.plural(resource)} "{item.doc["metadata"]["name"]}" already exists'
    )
