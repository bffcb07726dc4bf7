"""What makes a hint wrong for a backend: it names a tool that backend does not have, a `labkit`
command line the CLI would refuse (or one that leaves out the lab), or a `lab.<method>(...)` call
that the Lab protocol does not define with those arguments. Used by tests/unit/test_commands.py
and, for every Result the checks' unit tests build, by the ``fakes`` fixture (conftest.py).
"""

from __future__ import annotations

import ast
import inspect
import re

from labkit import cliparser
from labkit.kubectl import args as kubectl_args
from labkit.kubectl import flags, podexec, podlogs, podrun
from labkit.lab import Lab

NOT_ON_SANDBOX = re.compile(r"(?<!labkit )\bkubectl\b|\b(docker|crictl|nsenter)\b")
"""Tools a sandbox learner does not have (kubectl only as `labkit kubectl`); cloud-provider-kind
is not one of them, as it is also the IngressClass the sandbox's controller serves."""

NOT_ON_KIND = re.compile(r"ip netns|\blk-|/run/labkit|labkit kubectl|add_outside_address")
"""Things only a sandbox lab has."""

NAMED_VERBS = ("up", "down", "status", "deploy", "reset", "check", "kubectl")
"""`labkit` verbs that act on one lab, so a hint must say which (``--name``)."""

_SPANS = re.compile(r"`([^`]+)`")


def spans(text: str) -> list[str]:
    """The backticked parts of a text (commands, YAML snippets)."""
    return _SPANS.findall(text)


def problems(text: str, backend: str) -> list[str]:
    """Everything wrong with ``text`` as a message for a learner on ``backend`` (empty: fine)."""
    found = []
    if backend == "sandbox":
        found += [f"names {m.group(0)!r}" for m in NOT_ON_SANDBOX.finditer(text)]
        found += [f"runs {s!r}" for s in spans(text) if s.startswith("kind ")]
    elif backend == "kind":
        found += [f"names {m.group(0)!r}" for m in NOT_ON_KIND.finditer(text)]
        found += [
            f"{s!r} does not name the lab's context"
            for s in spans(text)
            if s.startswith("kubectl ") and "--context kind-" not in s
        ]
    else:
        raise ValueError(f"no rules for backend {backend!r}")
    for span in spans(text):
        if span.startswith("labkit "):
            found += labkit_problems(span)
        elif span.startswith("lab."):
            found += lab_call_problems(span)
    return found


POD_VERBS = {"exec": podexec, "run": podrun, "logs": podlogs}


def _parse_kubectl(argv: list[str]) -> None:
    """Parse a kubectl command line as `labkit kubectl` would: a pod verb with its own flags,
    any other with the shared parser; a KubectlError when it would be refused."""
    at = kubectl_args.verb_index(argv)
    if at is not None and argv[at] in POD_VERBS:
        verb = POD_VERBS[argv[at]]
        flags.parse(argv[at], [*argv[:at], *argv[at + 1 :]], verb.FLAGS, verb.HELP, verb.UNSERVED)
    else:
        kubectl_args.parse(argv)


def labkit_problems(command: str) -> list[str]:
    """Why a `labkit ...` command line is not one the CLI takes (or leaves the lab out)."""
    argv = command.split()[1:]
    split = cliparser.kubectl_split(argv)
    if split is not None:  # kubectl's own flags are for labkit.kubectl, not argparse
        try:
            _parse_kubectl(split[1])
        except kubectl_args.KubectlError as exc:
            return [f"`{command}` is refused by labkit kubectl: {exc.text}"]
    else:
        try:
            cliparser.parser().parse_args(argv)
        except SystemExit:
            return [f"`{command}` is not a labkit command line"]
    if argv and argv[0] in NAMED_VERBS and "--name" not in argv:
        return [f"`{command}` does not name the lab"]
    return []


def lab_call_problems(call: str) -> list[str]:
    """Why ``lab.method(...)`` is not a call the Lab protocol defines with these arguments."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return [f"`{call}` is not Python"]
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "lab"
    ):
        return [f"`{call}` is not one call of a lab method"]
    method = getattr(Lab, node.func.attr, None)
    if method is None or node.func.attr.startswith("_"):
        return [f"`{call}`: Lab has no method {node.func.attr!r}"]
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        inspect.signature(method).bind(None, *args, **kwargs)
    except (ValueError, TypeError) as exc:
        return [f"`{call}` does not fit Lab.{node.func.attr}: {exc}"]
    return []
