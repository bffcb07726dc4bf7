"""kubectl's command line for the verbs served on the sandbox, parsed the way kubectl (pflag)
parses it: flags anywhere, ``-n x`` / ``-nx`` / ``--namespace=x``, ``TYPE[,TYPE] [NAME...]`` or
``TYPE/NAME...``. Mistakes get kubectl's own ``error:`` wording, plus the nearest flag or verb
this front end serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.kubectl import flags, resources
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.resources import Resource

READ_VERBS = ("get", "describe")
WRITE_VERBS = (
    "apply", "create", "delete", "expose", "patch", "scale", "label", "cluster-info",
    "api-resources",
)  # fmt: skip
"""Served by :mod:`.writeverbs`, each with its own flags."""
POD_VERBS = ("exec", "run", "logs")  # labkit.kubectl.podverbs
SERVED_VERBS = (*READ_VERBS, *WRITE_VERBS, *POD_VERBS)
LATER_VERBS = (
    "edit", "annotate", "port-forward", "cp", "top", "rollout",
    "wait", "explain", "version", "config", "debug", "attach", "auth", "set", "diff", "replace",
)  # fmt: skip
"""kubectl verbs the sandbox does not serve (yet): refused in one line, never faked."""
OUTPUTS = ("json", "jsonpath", "name", "wide", "yaml")
KUBECTL_ONLY_OUTPUTS = (
    "custom-columns", "custom-columns-file", "go-template", "go-template-file",
    "jsonpath-as-json", "jsonpath-file", "kyaml", "template", "templatefile",
)  # fmt: skip
READ_FLAGS = {
    "get": (
        flags.NAMESPACE,
        flags.Flag("--all-namespaces", "-A", value=False),
        flags.Flag("--selector", "-l"),
        flags.Flag("--output", "-o"),
        flags.Flag("--show-labels", value=False),
        flags.Flag("--no-headers", value=False),
    ),
    "describe": (
        flags.NAMESPACE,
        flags.Flag("--all-namespaces", "-A", value=False),
        flags.Flag("--selector", "-l"),
    ),
}
"""The flags each read verb serves on the sandbox."""
KUBECTL_ONLY_FLAGS = (
    "--watch", "-w", "--watch-only", "--sort-by", "--field-selector", "--label-columns", "-L",
    "--show-kind", "--ignore-not-found", "--chunk-size", "--raw", "--filename", "-f",
    "--kustomize", "-k", "--recursive", "-R", "--template", "--server-print",
    "--subresource", "--show-managed-fields", "--output-watch-events", "--context",
    "--kubeconfig", "--cluster", "--user", "--show-events", "--allow-missing-template-keys",
)  # fmt: skip
"""kubectl flags that `labkit kubectl` does not serve on the sandbox."""


@dataclass
class Request:
    """One parsed get or describe: the types with the names asked for (none: every object),
    the namespace, and the output options."""

    verb: str
    targets: list[tuple[Resource, list[str]]] = field(default_factory=list)
    namespace: str = "default"
    all_namespaces: bool = False
    selector: str | None = None
    output: str = ""
    template: str = ""
    show_labels: bool = False
    no_headers: bool = False
    everything: bool = False  # `get all`


def served_help(verb: str) -> str:
    """What ``kubectl [VERB] --help`` prints on the sandbox: what is served, not kubectl's
    whole manual."""
    kinds = ", ".join(
        r.plural + (f" ({', '.join(r.short)})" if r.short else "") for r in resources.RESOURCES
    )
    served = [flag.shown() for flag in READ_FLAGS[verb]]
    return (
        f"labkit kubectl on the sandbox serves: kubectl {', kubectl '.join(SERVED_VERBS)}"
        " (`kubectl exec -h` and the like for the pod verbs).\n"
        f"Usage: kubectl {verb} TYPE[,TYPE...] [NAME...] | TYPE/NAME... [flags]\n"
        f"Flags: {', '.join(served)}; -o takes {', '.join(OUTPUTS)} (jsonpath=TEMPLATE).\n"
        f"Types: {kinds}, and all (get).\n"
        "On a Kind lab `labkit kubectl` runs the real kubectl, every verb included.\n"
    )


def unsupported_verb(verb: str) -> KubectlError:
    """The one line for a verb the sandbox does not serve, naming the nearest served one."""
    near = resources.nearest(verb, SERVED_VERBS) or SERVED_VERBS[0]
    if verb in LATER_VERBS:
        return KubectlError(
            f"error: labkit kubectl on the sandbox serves {', '.join(SERVED_VERBS)}, not "
            f"{verb!r}; nearest: `kubectl {near}` (or use a Kind lab, where the real kubectl runs)"
        )
    return KubectlError(
        f'error: unknown command "{verb}" for "kubectl"\n\nDid you mean this?\n\t{near}\n'
    )


def _output(value: str) -> tuple[str, str]:
    kind, eq, template = value.partition("=")
    if kind == "jsonpath" and not template:
        raise KubectlError("error: template format specified but no template given")
    if kind in OUTPUTS and (kind == "jsonpath") == bool(eq):
        return kind, template
    if kind in KUBECTL_ONLY_OUTPUTS:
        raise KubectlError(
            f"error: labkit kubectl on the sandbox does not serve -o {kind}; "
            "nearest: -o jsonpath=TEMPLATE (or -o yaml / -o json for every field)"
        )
    raise KubectlError(
        f'error: unable to match a printer suitable for the output format "{value}", '
        f"allowed formats are: {','.join(OUTPUTS)}"
    )


def _targets(verb: str, words: list[str]) -> tuple[list[tuple[Resource, list[str]]], bool]:
    """The resource types and names of the positional words; whether ``all`` was asked for."""
    if not words:
        return [], False
    if "/" in words[0]:
        targets: list[tuple[Resource, list[str]]] = []
        for word in words:
            if "/" not in word:
                raise KubectlError(
                    "error: there is no need to specify a resource type as a separate argument "
                    "when passing arguments in resource/name form (e.g. 'kubectl get "
                    "resource/<resource_name>' instead of 'kubectl get resource "
                    "resource/<resource_name>'"
                )
            kind, _, name = word.partition("/")
            targets.append((_resource(kind), [name]))
        return targets, False
    kinds, names = words[0].split(","), words[1:]
    if any("/" in n for n in names):
        raise KubectlError(
            "error: there is no need to specify a resource type as a separate argument when "
            "passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' "
            "instead of 'kubectl get resource resource/<resource_name>'"
        )
    if verb == "get" and "all" in kinds:
        rest = [_resource(k) for k in kinds if k != "all"]
        chosen = [*resources.ALL, *(r for r in rest if r not in resources.ALL)]
        return [(r, list(names)) for r in chosen], True
    return [(_resource(k), list(names)) for k in kinds], False


def _resource(spelling: str) -> Resource:
    found = resources.find(spelling)
    if found is None:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{spelling}"')
    return found


def parse(argv: Sequence[str]) -> Request:
    """A get or describe command line (``argv`` without ``kubectl``) as a Request, or
    KubectlError with kubectl's message."""
    verb, parsed = _split_verb(argv)
    request = Request(verb)
    request.namespace = parsed.last("--namespace", "default")
    request.all_namespaces = parsed.on("--all-namespaces")
    request.selector = parsed.last("--selector") if parsed.given("--selector") else None
    if parsed.given("--output"):
        request.output, request.template = _output(parsed.last("--output"))
    request.show_labels = parsed.on("--show-labels")
    request.no_headers = parsed.on("--no-headers")
    request.targets, request.everything = _targets(verb, parsed.words)
    if not request.targets:
        raise KubectlError(
            f'error: You must specify the type of resource to {verb}. Use "kubectl '
            'api-resources" for a complete list of supported resources.\n\n'
            f"{flags.flag_usage(verb)}"
        )
    return request


def _split_verb(argv: Sequence[str]) -> tuple[str, flags.Parsed]:
    """Find the verb (the first word that is not a flag or a flag's value) and parse the rest
    for it."""
    items = list(argv)
    if items == ["help"]:
        raise KubectlError(served_help("get"), code=0)
    verb_at = verb_index(items)
    if verb_at is None:
        raise KubectlError(
            "error: labkit kubectl needs a command: "
            f"{', '.join(SERVED_VERBS)} (e.g. `labkit kubectl get pods -o wide`)"
        )
    verb = items[verb_at]
    if verb not in READ_VERBS:
        raise unsupported_verb(verb)
    rest = items[:verb_at] + items[verb_at + 1 :]
    return verb, flags.parse(verb, rest, READ_FLAGS[verb], served_help(verb), KUBECTL_ONLY_FLAGS)


def verb_index(argv: Sequence[str]) -> int | None:
    """Where the verb is: the first word that is not a flag or a flag's value."""
    items = list(argv)
    return next(
        (i for i, w in enumerate(items) if not w.startswith("-") and _is_verb_slot(items, i)), None
    )


def _is_verb_slot(items: list[str], i: int) -> bool:
    """Whether word ``i`` is not the value of a flag before it (``-n kube-system get ...``)."""
    if i == 0:
        return True
    before = items[i - 1]
    takes_value = {
        spelling for flag in READ_FLAGS["get"] if flag.value for spelling in (flag.long, flag.short)
    }
    return before not in takes_value
