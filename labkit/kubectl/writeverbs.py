"""The write verbs `labkit kubectl` serves on the sandbox, by name, and how a command line is
recognised as one of them (flags may come before the verb: ``kubectl -n x apply -f f``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.kubectl import (
    apiresources,
    apply,
    clusterinfo,
    create,
    delete,
    expose,
    label,
    patch,
    scale,
)
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

Verb = Callable[[Lab, Sequence[str], Callable[[], str]], Outcome]
"""A served write verb: the lab, its command line without the verb, and stdin (``-f -``)."""

VERBS: dict[str, Verb] = {
    "apply": apply.apply,
    "create": create.create,
    "delete": delete.delete,
    "expose": expose.expose,
    "patch": patch.patch,
    "scale": scale.scale,
    "label": label.label,
    "cluster-info": clusterinfo.cluster_info,
    "api-resources": apiresources.api_resources,
}
_VALUED_BEFORE_VERB = ("-n", "--namespace")


def find(argv: Sequence[str]) -> tuple[Verb, list[str]] | None:
    """The write verb of a command line and the rest of the line, or None for another verb."""
    items = list(argv)
    i = 0
    while i < len(items):
        word = items[i]
        if word in _VALUED_BEFORE_VERB:
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            verb = VERBS.get(word)
            return None if verb is None else (verb, items[:i] + items[i + 1 :])
    return None
