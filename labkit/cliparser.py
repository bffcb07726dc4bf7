"""The `labkit` command line: its commands and options (argparse), and the split that hands
`labkit kubectl ...` to kubectl's own parser untouched."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from labkit.classroom import DEFAULT_PARALLEL
from labkit.lab import BACKENDS, DEFAULT_CNI, DEFAULT_LAB_NAME, KUBE_PROXY_MODES


def parser() -> argparse.ArgumentParser:
    """Every `labkit` command and option except `labkit kubectl ARGS`, which kubectl parses."""
    top = argparse.ArgumentParser(
        prog="labkit",
        description="Kubernetes Networking Labs",
        epilog="first steps: `labkit doctor`, then `labkit up`; a class on one machine: "
        "`labkit class up --learners N|FILE`. `labkit COMMAND --help` tells more.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def named(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--name", default=DEFAULT_LAB_NAME, help=f"lab name (default {DEFAULT_LAB_NAME})"
        )

    up = sub.add_parser("up", help="bring a lab up (Kind cluster or sandbox)")
    up.add_argument("--backend", default="auto", help=f"auto (default), {', '.join(BACKENDS)}")
    up.add_argument(
        "--cni", default=DEFAULT_CNI, help=f"flannel, calico or cilium (default {DEFAULT_CNI})"
    )
    up.add_argument("--kube-proxy-mode", default=None, help=f"one of {', '.join(KUBE_PROXY_MODES)}")
    up.add_argument(
        "--hubble", action="store_true", help="Kind + Cilium: also enable Hubble relay and UI"
    )
    up.add_argument("--dry-run", action="store_true", help="print the whole plan, change nothing")
    up.add_argument(
        "--pack", default=None, help="Kind only: install from this offline pack (`labkit pack`)"
    )
    named(up)

    pack = sub.add_parser("pack", help="save everything a Kind lab needs into DIR, for offline use")
    pack.add_argument("dir", help="a new or empty folder, or an existing pack to add to")
    chosen = pack.add_mutually_exclusive_group()
    chosen.add_argument(
        "--cni", action="append", default=None, help="flannel, calico or cilium (repeatable)"
    )
    chosen.add_argument("--all", action="store_true", help="every CNI")
    pack.add_argument(
        "--platform", default=None, help="linux/amd64 or linux/arm64 (default: Docker's)"
    )

    down = sub.add_parser("down", help="remove a lab, whichever backend holds it")
    which = down.add_mutually_exclusive_group()
    which.add_argument(
        "--name", default=DEFAULT_LAB_NAME, help=f"lab name (default {DEFAULT_LAB_NAME})"
    )
    which.add_argument("--all", action="store_true", help="every lab on this machine")

    sub.add_parser("ls", help="every lab on this machine: backend, CNI, status, age, memory")

    klass = sub.add_parser(
        "class",
        help="a lab per learner on this machine: `class up` or `class down`",
        description="A lab per learner on this machine, named after the learner.",
    )
    actions = klass.add_subparsers(dest="action", required=True, metavar="ACTION")
    class_up = actions.add_parser(
        "up",
        help="bring up a lab per learner, a few at a time",
        description="Bring up (or reuse) a lab per learner, a few at a time: a line per lab as\n"
        "it is up, then a table. One lab's failure never stops the others.",
        epilog="examples:\n"
        "  labkit class up --learners 30           labs learner01 .. learner30\n"
        "  labkit class up --learners roster.txt   a lab per name, one name a line (# comments)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    class_down = actions.add_parser(
        "down",
        help="remove the roster's labs (other labs stay)",
        description="Remove each learner's lab, whichever backend holds it; other labs stay.",
    )
    for action in (class_up, class_down):
        action.add_argument(
            "--learners",
            required=True,
            metavar="N|FILE",
            help="a count (learner01 .. learnerN, N at most 100) or a file, one name per line",
        )
        action.add_argument(
            "--parallel",
            type=int,
            default=DEFAULT_PARALLEL,
            metavar="N",
            help=f"labs handled at once, 1 to 16 (default {DEFAULT_PARALLEL})",
        )
    class_up.add_argument(
        "--backend", default="auto", help=f"auto (default), {', '.join(BACKENDS)}"
    )
    class_up.add_argument(
        "--cni", default=DEFAULT_CNI, help=f"flannel, calico or cilium (default {DEFAULT_CNI})"
    )

    status = sub.add_parser("status", help="nodes and pods of a lab, like kubectl get -o wide")
    named(status)

    doctor = sub.add_parser("doctor", help="check this machine; every failing line names its fix")
    doctor.add_argument(
        "--backend", default="auto", help=f"auto (default: both), {', '.join(BACKENDS)}"
    )
    doctor.add_argument("--cni", default=None, help="also check what this CNI needs")
    form = doctor.add_mutually_exclusive_group()
    form.add_argument(
        "--json", action="store_true", help="one JSON object per line: name, status, detail, fix"
    )
    form.add_argument(
        "--checklist", action="store_true", help="a Markdown checklist to print, a box per line"
    )

    deploy = sub.add_parser("deploy", help="deploy a tutorial scenario onto a running lab")
    deploy.add_argument(
        "scenario", nargs="?", help="scenario name, e.g. 07-nodeport or nodeport (omit to list)"
    )
    deploy.add_argument(
        "--variant",
        default=None,
        help="a later step or a broken variant instead of the starting state",
    )
    named(deploy)

    reset = sub.add_parser(
        "reset", help="remove what a scenario created and deploy its starting state again"
    )
    reset.add_argument("scenario")
    named(reset)

    check = sub.add_parser(
        "check", help="run a scenario's checks and record the result as progress"
    )
    check.add_argument("scenario")
    check.add_argument(
        "--variant", default=None, help="grade a step or broken variant (deploy it first)"
    )
    check.add_argument("--learner", default=None, help="name recorded in the progress file")
    named(check)

    report = sub.add_parser("report", help="a learner's progress, or a whole workshop's")
    report.add_argument("paths", nargs="*", help="progress files or folders (default: your own)")
    report.add_argument(
        "--class",
        dest="class_dir",
        default=None,
        metavar="DIR",
        help="a class folder of <learner>.jsonl files: per learner and exercise, who is stuck, "
        "the hardest exercises; also writes class-report.csv and class-report.html",
    )
    report.add_argument(
        "--stuck-after",
        type=int,
        default=3,
        metavar="N",
        help="with --class: attempts without a pass that count as stuck (default 3)",
    )
    report.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="with --class: where the CSV and HTML go (default .)",
    )

    kubectl = sub.add_parser(
        "kubectl",
        help="kubectl on the lab: the real one on Kind, served from the lab on the sandbox",
        usage="labkit kubectl [--name LAB] ARGS...",
    )
    named(kubectl)
    kubectl.add_argument("args", nargs="*", help="kubectl's own arguments, e.g. get pods -o wide")

    hubble = sub.add_parser(
        "hubble",
        help="Hubble's flows of a Cilium lab: `labkit hubble observe --verdict DROPPED ...`",
        usage="labkit hubble [--name LAB] observe [--pod P] [--namespace N] [--verdict V] "
        "[--protocol P] [--port N] [--last N] [-f]",
    )
    named(hubble)
    hubble.add_argument("args", nargs=argparse.REMAINDER, help="hubble's own arguments")

    shell = sub.add_parser(
        "shell", help="open your shell with `kubectl` meaning `labkit kubectl --name LAB`"
    )
    named(shell)
    return top


def kubectl_split(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """``kubectl [--name LAB] ARGS...`` as (lab name, kubectl's arguments), or None when the
    command is another one (kubectl's own flags must not reach argparse)."""
    if not argv or argv[0] != "kubectl":
        return None
    rest = list(argv[1:])
    if rest[:1] == ["--name"] and len(rest) >= 2:
        return rest[1], rest[2:]
    if rest and rest[0].startswith("--name="):
        return rest[0].removeprefix("--name="), rest[1:]
    return DEFAULT_LAB_NAME, rest
