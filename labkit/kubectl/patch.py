"""``kubectl patch TYPE NAME -p PATCH [--type strategic|merge|json]`` served on a Lab: the patch
(JSON or YAML, as kubectl reads ``-p``) is applied to the live object by :mod:`.patching`, the
result checked as the API server would, then applied through the Lab seam; an unchanged object
is ``patched (no change)``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from labkit.kubectl import flags, patching, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

TABLE = (flags.NAMESPACE, flags.Flag("--patch", "-p"), flags.Flag("--type"))
SHAPE = "TYPE NAME | TYPE/NAME -p PATCH [--type strategic|merge|json] [-n NAMESPACE]"
IDENTITY = ("apiVersion", "kind")


def read_patch(text: str) -> Any:
    """``-p`` as kubectl reads it: JSON, or YAML converted to JSON (aliases refused, so a short
    patch cannot expand into a huge one)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text)):
            raise KubectlError(f'error: unable to parse "{text}": YAML aliases are not allowed')
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise KubectlError(f'error: unable to parse "{text}": yaml: {problem}') from None


def patch(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl patch`` prints on this lab, and its exit code."""
    parsed = flags.parse("patch", argv, TABLE, flags.served_help("patch", SHAPE, TABLE))
    patch_type = parsed.last("--type", "strategic")
    if not parsed.given("--patch"):
        raise KubectlError(
            "error: must specify --patch or --patch-file containing the contents of the patch"
        )
    if patch_type not in patching.PATCH_TYPES:
        raise KubectlError(
            f'error: --type must be one of [{" ".join(patching.PATCH_TYPES)}], not "{patch_type}"'
        )
    body = read_patch(parsed.last("--patch"))
    chosen = writes.targets(parsed.words)
    if not chosen:
        raise KubectlError("error: You must provide one or more resources by argument or filename.")
    namespace = parsed.last("--namespace", "default")
    docs, lines = [], []
    for resource, name in chosen:
        live = writes.must_exist(lab, resource, name, namespace)
        try:
            patched = patching.apply_patch(live, body, patch_type)
        except patching.PatchError as exc:
            raise KubectlError(f"The request is invalid: {exc}") from None
        doc = writes.manifest_of(patched)
        moved = [f for f in IDENTITY if doc.get(f) != live.get(f)] + [
            f"metadata.{f}"
            for f in ("name", "namespace")
            if (doc.get("metadata") or {}).get(f) != live["metadata"].get(f)
        ]
        causes = [f"{f}: Invalid value: field is immutable" for f in moved] or writes.causes(doc)
        if causes:
            problem = writes.invalid(resource.kind, name, causes, "")
            return Outcome("", writes.report([problem]), 1)
        if writes.manifest_of(live) == doc:
            lines.append(f"{writes.named(resource, name)} patched (no change)\n")
            continue
        docs.append(doc)
        lines.append(f"{writes.named(resource, name)} patched\n")
    if docs:
        writes.write(lab, docs, namespace)
    return Outcome("".join(lines), "", 0)
