"""``kubectl label TYPE NAME... KEY=VALUE... KEY-... [--overwrite]`` served on a Lab: labels
added, changed (only with ``--overwrite``, else kubectl's "already has a value" error) or
removed on the live objects, checked as the API server checks labels, then applied through the
Lab seam (so Services and policies that select by label follow)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit import inputs
from labkit.kubectl import flags, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

TABLE = (flags.NAMESPACE, flags.Flag("--overwrite", value=False))
SHAPE = "TYPE NAME... | TYPE/NAME... KEY=VALUE... KEY-... [--overwrite] [-n NAMESPACE]"


def split_pairs(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """The resource words and the label changes after them, as kubectl tells them apart."""
    found, resources_, pairs = False, [], []
    for word in words:
        change = ("=" in word and not word.startswith("=")) or (word.endswith("-") and word != "-")
        if change:
            found = True
            pairs.append(word)
        elif found:
            raise KubectlError(
                f"error: all resources must be specified before label changes: {word}"
            )
        else:
            resources_.append(word)
    return resources_, pairs


def parse_changes(pairs: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``KEY=VALUE`` to set and ``KEY-`` to remove, with kubectl's errors."""
    wanted: dict[str, str] = {}
    remove: list[str] = []
    for spec in pairs:
        if "=" in spec:
            parts = spec.split("=")
            if len(parts) != 2:
                raise KubectlError(f"error: invalid label spec: {spec}")
            why = inputs.label_value(parts[1])
            if why is not None:
                raise KubectlError(f'error: invalid label value: "{spec}": {why}')
            wanted[parts[0]] = parts[1]
        else:
            remove.append(spec[:-1])
    if any(key in wanted for key in remove):
        raise KubectlError("error: can not both modify and remove a label in the same command")
    return wanted, remove


def label(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl label`` prints on this lab, and its exit code."""
    parsed = flags.parse("label", argv, TABLE, flags.served_help("label", SHAPE, TABLE))
    words, pairs = split_pairs(parsed.words)
    wanted, remove = parse_changes(pairs)
    if not words:
        raise KubectlError(
            "error: one or more resources must be specified as <resource> <name> or "
            "<resource>/<name>"
        )
    if not wanted and not remove:
        raise KubectlError("error: at least one label update is required")
    namespace = parsed.last("--namespace", "default")
    docs, lines, problems = [], [], []
    for resource, name in writes.targets(words):
        doc = writes.manifest_of(writes.must_exist(lab, resource, name, namespace))
        labels = dict(doc["metadata"].get("labels") or {})
        if not parsed.on("--overwrite"):
            taken = [
                f"'{key}' already has a value ({labels[key]}), and --overwrite is false"
                for key, value in wanted.items()
                if key in labels and labels[key] != value
            ]
            if taken:
                raise KubectlError("error: " + "\nerror: ".join(taken))
        lines += [f'label "{key}" not found.\n' for key in remove if key not in labels]
        added = [key for key, value in wanted.items() if labels.get(key) != value]
        removed = [key for key in remove if key in labels]
        labels.update(wanted)
        for key in removed:
            del labels[key]
        doc["metadata"]["labels"] = labels
        causes = writes.causes(doc)
        if causes:
            problems.append(writes.invalid(resource.kind, name, causes, ""))
        if added or removed:
            docs.append(doc)
        lines.append(f"{writes.named(resource, name)} {_said(bool(added), bool(removed))}\n")
    if problems:
        return Outcome("", writes.report(problems), 1)
    if docs:
        writes.write(lab, docs, namespace)
    return Outcome("".join(lines), "", 0)


def _said(added: bool, removed: bool) -> str:
    """kubectl's word for what changed on one object."""
    if added:
        return "modified" if removed else "labeled"
    return "unlabeled" if removed else "not labeled"
