"""kubectl's command line for the verbs served on the sandbox, parsed the way kubectl (pflag)
parses it: flags anywhere, ``-n x`` / ``-nx`` / ``--namespace=x``, ``TYPE[,TYPE] [NAME...]`` or
``TYPE/NAME...``. Mistakes get kubectl's own ``error:`` wording, plus the nearest flag or verb
this front end serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.kubectl import resources
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
# flag -> (takes a value, verbs)
_FLAGS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "--namespace": (True, READ_VERBS),
    "--all-namespaces": (False, READ_VERBS),
    "--selector": (True, READ_VERBS),
    "--output": (True, ("get",)),
    "--show-labels": (False, ("get",)),
    "--no-headers": (False, ("get",)),
}
_SHORT = {"-n": "--namespace", "-A": "--all-namespaces", "-l": "--selector", "-o": "--output"}
_FLAG_SHORTS = {long: next((s for s, lg in _SHORT.items() if lg == long), "") for long in _FLAGS}
KUBECTL_ONLY_FLAGS = (
    "--watch", "-w", "--watch-only", "--sort-by", "--field-selector", "--label-columns", "-L",
    "--show-kind", "--ignore-not-found", "--chunk-size", "--raw", "--filename", "-f",
    "--kustomize", "-k", "--recursive", "-R", "--template", "--server-print",
    "--subresource", "--show-managed-fields", "--output-watch-events", "--context",
    "--kubeconfig", "--cluster", "--user", "--show-events", "--allow-missing-template-keys",
)  # fmt: skip
"""kubectl flags that `labkit kubectl` does not serve on the sandbox."""


class KubectlError(Exception):
    """What kubectl would print on stderr for a mistake, and its exit code (0: help, printed on
    stdout)."""

    def __init__(self, text: str, code: int = 1) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


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


def _usage(verb: str) -> str:
    return f"See 'kubectl {verb} --help' for usage."


def served_help(verb: str) -> str:
    """What ``kubectl [VERB] --help`` prints on the sandbox: what is served, not kubectl's
    whole manual."""
    kinds = ", ".join(
        r.plural + (f" ({', '.join(r.short)})" if r.short else "") for r in resources.RESOURCES
    )
    flags = [
        f"{s}/{long}" if s else long for long, s in _FLAG_SHORTS.items() if verb in _FLAGS[long][1]
    ]
    return (
        f"labkit kubectl on the sandbox serves: kubectl {', kubectl '.join(SERVED_VERBS)}"
        " (`kubectl exec -h` and the like for the pod verbs).\n"
        f"Usage: kubectl {verb} TYPE[,TYPE...] [NAME...] | TYPE/NAME... [flags]\n"
        f"Flags: {', '.join(flags)}; -o takes {', '.join(OUTPUTS)} (jsonpath=TEMPLATE).\n"
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


def _unknown_flag(verb: str, flag: str, shown: str) -> KubectlError:
    served = [f for f, (_, verbs) in _FLAGS.items() if verb in verbs]
    served += [s for s, long in _SHORT.items() if long in served]
    near = resources.nearest(flag, served)
    if flag in KUBECTL_ONLY_FLAGS:
        hint = f" (nearest served: {near})" if near else ""
        return KubectlError(
            f"error: labkit kubectl on the sandbox does not serve {flag} for {verb}{hint}; "
            f"it serves {', '.join(sorted(served))}"
        )
    hint = f" (did you mean {near}?)" if near else ""
    return KubectlError(f"error: {shown}{hint}\n{_usage(verb)}")


def _split(verb: str, argv: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Flags (long name, value) and positional words, kubectl's way."""
    flags: list[tuple[str, str]] = []
    words: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item == "--":
            words.extend(items[i:])
            break
        if item in ("-h", "--help"):
            raise KubectlError(served_help(verb), code=0)
        if not item.startswith("-") or item == "-":
            words.append(item)
            continue
        if item.startswith("--"):
            name, eq, value = item.partition("=")
            shown = f"unknown flag: {name}"
        else:
            name, value, eq = _SHORT.get(item[:2], item[:2]), item[2:].removeprefix("="), ""
            if value:
                eq = "="
            shown = f"unknown shorthand flag: {item[1]!r} in {item}"
        if name not in _FLAGS or verb not in _FLAGS[name][1]:
            raise _unknown_flag(
                verb, item.partition("=")[0] if item.startswith("--") else item[:2], shown
            )
        takes_value = _FLAGS[name][0]
        if takes_value and not eq:
            if i >= len(items):
                short = next((s for s, long in _SHORT.items() if long == name), None)
                what = f"{short[1]!r} in {short}" if short and not item.startswith("--") else name
                raise KubectlError(f"error: flag needs an argument: {what}\n{_usage(verb)}")
            value = items[i]
            i += 1
        elif not takes_value and eq and value.lower() not in ("true", "false"):
            raise KubectlError(
                f'error: invalid argument "{value}" for "{name}" flag: '
                f'strconv.ParseBool: parsing "{value}": invalid syntax\n{_usage(verb)}'
            )
        flags.append(
            (name, value if takes_value else ("false" if value.lower() == "false" else "true"))
        )
    return flags, words


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
    flags, words = _split_verb(argv)
    verb = words.pop(0)
    request = Request(verb)
    for name, value in flags:
        if name == "--namespace":
            request.namespace = value
        elif name == "--all-namespaces":
            request.all_namespaces = value == "true"
        elif name == "--selector":
            request.selector = value
        elif name == "--output":
            request.output, request.template = _output(value)
        elif name == "--show-labels":
            request.show_labels = value == "true"
        else:
            request.no_headers = value == "true"
    request.targets, request.everything = _targets(verb, words)
    if not request.targets:
        if verb == "get":
            raise KubectlError(
                'error: You must specify the type of resource to get. Use "kubectl '
                'api-resources" for a complete list of supported resources.\n\n'
                f"{_usage(verb)}"
            )
        raise KubectlError(
            f'error: You must specify the type of resource to describe. Use "kubectl '
            f'api-resources" for a complete list of supported resources.\n\n{_usage(verb)}'
        )
    return request


def _split_verb(argv: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
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
    flags, words = _split(verb, items[:verb_at] + items[verb_at + 1 :])
    return flags, [verb, *words]


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
    long = _SHORT.get(before, before)
    return not (long in _FLAGS and _FLAGS[long][0] and "=" not in before)
