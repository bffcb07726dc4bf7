"""`labkit hubble [--name LAB] observe [FLAGS]`: a lab's flows as ``hubble observe`` prints them.

On Kind it runs the real ``hubble observe`` inside a Cilium agent pod; on a sandbox lab running
Cilium it reads the flows the data plane logged (``sandbox/flowring``), filters them as Hubble's
server does and prints Hubble's compact lines.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labkit.errors import LabError
from labkit.kubectl.kind import kind_argv
from labkit.lab import Lab, backend_module, find_backends, hidden_lab_error
from labkit.model.hubble import VERDICTS, Flow, FlowFilter, compact_line
from labkit.sandbox.flowring import lab_flows
from labkit.sandbox.lab import SandboxLab

DEFAULT_LAST = 20
"""``hubble observe`` without ``--last`` or ``-f`` prints the last 20 flows."""
FOLLOW_POLL_S = 0.5
SERVED_FLAGS = "--pod, --namespace/-n, --verdict, --protocol, --port, --last, -f/--follow"


class HubbleUsage(Exception):
    """A command line ``hubble observe`` would refuse, in its own (cobra's) words."""


@dataclass(frozen=True)
class Observe:
    """What one ``hubble observe`` command line asks for."""

    filter: FlowFilter
    last: int = DEFAULT_LAST
    follow: bool = False


def parse_observe(argv: Sequence[str]) -> Observe:
    """``observe`` and its flags (``--flag value`` or ``--flag=value``) as an Observe; anything
    else is a HubbleUsage naming it as cobra does."""
    if not argv or argv[0] != "observe":
        got = argv[0] if argv else ""
        raise HubbleUsage(
            f'unknown command "{got}" for "hubble"' if got else "a command is required"
        )
    values: dict[str, str] = {}
    follow = False
    args = list(argv[1:])
    names = {"-n": "--namespace"}
    while args:
        arg = args.pop(0)
        flag, eq, value = arg.partition("=")
        flag = names.get(flag, flag)
        if flag in ("-f", "--follow") and not eq:
            follow = True
            continue
        if flag not in ("--pod", "--namespace", "--verdict", "--protocol", "--port", "--last"):
            raise HubbleUsage(
                f"unknown flag: {flag}"
                if flag.startswith("-")
                else f'unknown command "{arg}" for "hubble observe"'
            )
        if not eq:
            if not args:
                raise HubbleUsage(f"flag needs an argument: {flag}")
            value = args.pop(0)
        values[flag] = value
    verdict = values.get("--verdict", "").upper()
    if verdict and verdict not in VERDICTS:
        raise HubbleUsage(
            f'invalid argument "{values["--verdict"]}" for "--verdict" flag: '
            f"the sandbox's flows are {' or '.join(VERDICTS)}"
        )
    numbers = {}
    for flag in ("--port", "--last"):
        text = values.get(flag, "")
        if text and (not text.isdigit() or (flag == "--port" and not 0 < int(text) < 65536)):
            raise HubbleUsage(f'invalid argument "{text}" for "{flag}" flag')
        numbers[flag] = int(text) if text else 0
    flt = FlowFilter(
        values.get("--pod", ""),
        values.get("--namespace", ""),
        verdict,
        values.get("--protocol", ""),
        numbers["--port"],
    )
    return Observe(flt, numbers["--last"] or DEFAULT_LAST, follow)


def render(flows: Sequence[Flow], ask: Observe) -> list[str]:
    """The compact lines of the newest ``ask.last`` flows that pass the filters, oldest first."""
    chosen = [f for f in flows if ask.filter.matches(f)]
    return [compact_line(f) for f in chosen[-ask.last :]]


def observe(
    read: Callable[[], list[Flow]],
    ask: Observe,
    write: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the flows asked for; with ``follow``, keep printing new ones until interrupted."""
    flows = read()
    for line in render(flows, ask):
        write(line)
    seen = flows[-1].time if flows else 0.0
    while ask.follow:
        try:
            sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            return 0
        fresh = [f for f in read() if f.time > seen]
        if fresh:
            seen = fresh[-1].time
            for flow in fresh:
                if ask.filter.matches(flow):
                    write(compact_line(flow))
    return 0


def sandbox_reader(lab: Lab) -> Callable[[], list[Flow]]:
    """How a sandbox lab's flows are read: its flow ring, with its pods and nodes looked up."""
    if not isinstance(lab, SandboxLab):
        raise LabError(f"Lab {lab.name!r} keeps no flow ring.", "Use a sandbox lab.")
    if lab.cni != "cilium":
        raise LabError(
            f"Hubble is part of Cilium, and lab {lab.name!r} runs {lab.cni}.",
            f"Bring up a Cilium lab: `labkit up --cni cilium --name {lab.name}-cilium`, then "
            f"`labkit hubble --name {lab.name}-cilium observe`.",
        )
    state_dir = str(lab.state_dir)
    return lambda: lab_flows(
        state_dir, lab.get("pods", namespace=None), lab.get("nodes", namespace=None)
    )


def run(lab_name: str, argv: Sequence[str]) -> int:
    """``hubble ARGS`` against lab ``lab_name``; returns hubble's exit code."""
    holders = find_backends(lab_name)
    if not holders:
        again = shlex.join(["labkit", "hubble", "--name", lab_name, *argv])
        raise hidden_lab_error(lab_name, again) or LabError(
            f"No running lab named {lab_name!r}.",
            f"Start one first: `labkit up --cni cilium --name {lab_name}`.",
        )
    if holders[0] == "kind":
        from labkit.kind import tools
        from labkit.kind.plan import default_paths

        inside = ["-n", "kube-system", "exec", "ds/cilium", "-c", "cilium-agent", "--", "hubble"]
        command = kind_argv(
            lab_name,
            [*inside, *argv],
            tools.find("kubectl"),
            default_paths(lab_name).user_kubeconfig,
        )
        return subprocess.run(command, check=False).returncode
    try:
        ask = parse_observe(argv)
    except HubbleUsage as exc:
        print(f"Error: {exc}\nServed here: hubble observe with {SERVED_FLAGS}.", file=sys.stderr)
        return 1
    lab = backend_module(holders[0]).attach(lab_name)
    if lab is None:
        raise LabError(
            f"The {holders[0]} lab {lab_name!r} exists but does not answer.",
            f"Bring it back with `labkit up --name {lab_name}`.",
        )
    return observe(sandbox_reader(lab), ask, lambda line: print(line, flush=True))
