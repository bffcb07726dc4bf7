"""`labkit`: bring labs up and down, look at them, deploy scenarios, grade, report.

Every expected failure is a LabError printed as two sentences (problem, fix) with exit code 1;
usage mistakes exit 2. No traceback reaches the learner for anything we can foresee.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from labkit.classroom import DEFAULT_PARALLEL
from labkit.console import show_messages
from labkit.errors import LabError
from labkit.inputs import check_learner
from labkit.lab import BACKENDS, DEFAULT_CNI, DEFAULT_LAB_NAME, KUBE_PROXY_MODES, Lab, validate_cni

log = logging.getLogger("labkit")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="Kubernetes Networking Labs",
        epilog="first steps: `labkit doctor`, then `labkit up`; a class on one machine: "
        "`labkit class up --learners N|FILE`. `labkit COMMAND --help` tells more.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    return parser


def _kubectl_split(argv: Sequence[str]) -> tuple[str, list[str]] | None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `labkit` console script; information goes to stderr as ``labkit: ...``
    lines through the ``labkit`` logger, errors as a LabError's problem and fix."""
    argv = sys.argv[1:] if argv is None else list(argv)
    kubectl = _kubectl_split(argv)
    if kubectl is not None and kubectl[1] not in (["-h"], ["--help"]):
        args = argparse.Namespace(command="kubectl", name=kubectl[0], args=kubectl[1])
    else:
        args = _parser().parse_args(argv)
    args.line = shlex.join(["labkit", *argv])  # what to run again, e.g. as root
    show_messages()
    try:
        return _COMMANDS[args.command](args)
    except LabError as exc:
        print(f"labkit: {exc.render()}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        _discard_output()
        return 0
    except KeyboardInterrupt:
        name = getattr(args, "name", DEFAULT_LAB_NAME)
        undo = (
            f"labkit class down --learners {shlex.quote(args.learners)}"
            if args.command == "class"
            else f"labkit down --name {name}"
        )
        print(f"labkit: interrupted; run `{undo}` if a lab was half built.", file=sys.stderr)
        return 130


def _discard_output() -> None:
    """Point stdout and stderr at /dev/null once a reader closed them, so that nothing (not
    even the interpreter flushing at exit) writes to the closed pipe and complains."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _cmd_up(args: argparse.Namespace) -> int:
    from labkit.lab import backend_module, choose_backend

    validate_cni(args.cni)
    if args.kube_proxy_mode is not None and args.kube_proxy_mode not in KUBE_PROXY_MODES:
        raise LabError(
            f"Unknown kube-proxy mode {args.kube_proxy_mode!r}.",
            f"Use one of: {', '.join(KUBE_PROXY_MODES)} (iptables is the default).",
        )
    pack = Path(args.pack) if args.pack else None
    if args.dry_run or pack is not None:
        backend = "kind" if args.backend == "auto" else args.backend
        if backend != "kind" and pack is not None:
            raise LabError(
                "An offline pack is for the Kind backend; the sandbox needs no images.",
                "Use --backend kind --pack DIR, or drop --pack.",
            )
        if backend != "kind":
            raise LabError(
                "--dry-run prints the Kind plan; the sandbox has no separate plan to print.",
                "Use --backend kind --dry-run, or drop --dry-run to build the sandbox.",
            )
    if args.dry_run:
        from labkit.kind.backend import plan

        the_plan = plan(args.name, args.cni, args.kube_proxy_mode, hubble=args.hubble, pack=pack)
        print(the_plan.render())
        return 0
    backend, why = ("kind", "--pack") if pack is not None else choose_backend(args.backend)
    if args.hubble and (backend != "kind" or args.cni != "cilium"):
        raise LabError(
            "--hubble needs Cilium on Kind: Hubble is Cilium's flow observer.",
            "Use --backend kind --cni cilium --hubble, or drop --hubble.",
        )
    log.info("using the %s backend (%s).", backend, why)
    lab: Lab
    if args.hubble or pack is not None:
        from labkit.kind.backend import up as kind_up

        lab = kind_up(args.name, args.cni, args.kube_proxy_mode, hubble=args.hubble, pack=pack)
    else:
        lab = backend_module(backend).up(args.name, args.cni, args.kube_proxy_mode)
    print(
        f"labkit: lab {lab.name!r} is up on {lab.backend} with {lab.cni}. "
        f"Next: `labkit status --name {lab.name}`."
    )
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from labkit.kind.backend import make_pack
    from labkit.lab import CNIS

    cnis = CNIS if args.all else tuple(args.cni or (DEFAULT_CNI,))
    data = make_pack(Path(args.dir), cnis, args.platform)
    print(
        f"labkit: pack {args.dir} holds {', '.join(data['cnis'])} for {data['platform']} "
        f"({len(data['images'])} images, {len(data['files'])} files). "
        f"Offline: `labkit up --backend kind --pack {args.dir} --cni <cni>`."
    )
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from labkit.lab import down, down_all, hidden_lab_error, labs_needing_root, root_only_error

    if args.all:
        removed = down_all()
        seen = labs_needing_root()
        left = None if seen is None else root_only_error(seen, args.line)
        if left is not None:
            raise LabError(f"{len(removed)} lab(s) removed. {left.what}", left.fix)
        if not removed:
            print("labkit: no lab is on this machine; nothing to remove.")
        else:
            print(f"labkit: {len(removed)} lab(s) removed; none is left on this machine.")
        return 0
    holders = down(args.name)
    if not holders:
        hidden = hidden_lab_error(args.name, args.line)
        if hidden is not None:
            raise hidden
        print(f"labkit: no lab named {args.name!r} is running; nothing to remove.")
    for backend in holders:
        print(f"labkit: removed {backend} lab {args.name!r}.")
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    import time

    from labkit.lab import labs_needing_root, list_labs, root_only_error
    from labkit.lablist import NO_LABS, render

    labs = list_labs()
    seen = labs_needing_root()
    unseen = None if seen is None else root_only_error(seen, args.line)
    if labs:
        print(render(labs, time.time()))
    elif unseen is None:
        print(NO_LABS, file=sys.stderr)  # as kubectl's "No resources found", not a row
    if unseen is not None:
        print(f"labkit: {unseen.what} {unseen.fix}", file=sys.stderr)
    return 0


def _cmd_class(args: argparse.Namespace) -> int:
    import time

    from labkit.classroom import check_parallel, class_down, class_up, refuse_root_only, summary
    from labkit.roster import learners

    names = learners(args.learners)  # the whole roster is checked before any lab is touched
    check_parallel(args.parallel)
    began = time.perf_counter()
    if args.action == "up":
        outcomes = class_up(names, args.cni, args.backend, args.parallel)
        print(summary(outcomes, time.perf_counter() - began, "up"))
        if any(o.ok for o in outcomes):
            print(
                "Each learner's notebook connects to its own lab with LABKIT_LAB=<name> "
                "(`labkit ls` lists them; `labkit class down` removes them)."
            )
    else:
        refuse_root_only(names, args.line)
        outcomes = class_down(names, args.parallel)
        print(summary(outcomes, time.perf_counter() - began, "down"))
    return 0 if all(o.ok for o in outcomes) else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from labkit.lab import backend_module, find_backends, hidden_lab_error
    from labkit.status import render_status

    holders = find_backends(args.name)
    if not holders:
        raise hidden_lab_error(args.name, args.line) or LabError(
            f"No lab named {args.name!r} is running.",
            f"Start one with `labkit up --name {args.name}`.",
        )
    for backend in holders:
        lab = backend_module(backend).attach(args.name)
        if lab is None:
            raise LabError(
                f"The {backend} lab {args.name!r} exists but does not answer.",
                f"Bring it back with `labkit up --name {args.name}` (a sandbox lab is rebuilt "
                f"from its state, objects kept), or remove it: `labkit down --name {args.name}`.",
            )
        print(render_status(lab))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from labkit.doctor import render_checklist, render_json, render_lines, run_doctor, verdict

    if args.cni is not None:
        validate_cni(args.cni)
    lines = run_doctor(args.backend, args.cni)
    ready, closing = verdict(lines, args.backend)
    if args.json:
        print(render_json(lines))
    elif args.checklist:
        print(render_checklist(lines, closing))
    else:
        print(render_lines(lines), closing, sep="\n\n")
    return 0 if ready else 1


def _attach(args: argparse.Namespace) -> Lab:
    """The running lab ``--name`` names, on whichever backend holds it."""
    from labkit.lab import backend_module, find_backends, hidden_lab_error

    holders = find_backends(args.name)
    lab = backend_module(holders[0]).attach(args.name) if holders else None
    if lab is None:
        hidden = None if holders else hidden_lab_error(args.name, args.line)
        raise hidden or LabError(
            f"No running lab named {args.name!r}.",
            f"Start one first: `labkit up --name {args.name}`.",
        )
    return lab


def _cmd_deploy(args: argparse.Namespace) -> int:
    from labkit import scenarios
    from labkit.course.grading import deploy

    if not args.scenario:
        for name in scenarios.names():
            scenario = scenarios.get(name)
            print(f"{name:32} {scenario.title}")
        return 0
    refs = deploy(_attach(args), args.scenario, variant=args.variant)
    print("\n".join(f"{ref} applied" for ref in refs))
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    from labkit.course.grading import reset

    refs = reset(_attach(args), args.scenario)
    print(f"labkit: {args.scenario} is back at its starting state ({len(refs)} objects applied).")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from labkit.course.grading import grade

    if args.learner is not None:
        check_learner(args.learner)  # before attaching: the name is wrong whatever the lab
    results = grade(_attach(args), args.scenario, args.variant, args.learner)
    for result in results:
        print(result)
        print()
    return 0 if all(r.verdict == "pass" for r in results) else 3


def _cmd_report(args: argparse.Namespace) -> int:
    from labkit.checks.progress import default_path, report

    if args.class_dir is not None:
        return _class_report(args)
    print(report(args.paths or [default_path()]))
    return 0


def _class_report(args: argparse.Namespace) -> int:
    """`labkit report --class DIR`: the tables on stdout, CSV and HTML into ``--out``."""
    from pathlib import Path

    from labkit.course.class_export import csv_text, text
    from labkit.course.class_folder import class_report
    from labkit.course.class_report import check_stuck_after
    from labkit.widgets.dashboard_html import page

    if args.paths:
        raise LabError(
            "labkit report takes either progress files or --class DIR, not both.",
            f"Run `labkit report --class {args.class_dir}` alone.",
        )
    report = class_report(args.class_dir, check_stuck_after(args.stuck_after))
    out = Path(args.out).expanduser()
    written = {
        out / "class-report.csv": csv_text(report),
        out / "class-report.html": page(report, f"from {Path(args.class_dir).expanduser()}"),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, content in written.items():
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise LabError(
            f"Cannot write the class report into {out}: {exc.strerror}.",
            "Pass --out a folder you can write to.",
        ) from None
    print(text(report))
    print(f"labkit: wrote {' and '.join(str(p) for p in written)}.")
    return 0


def _cmd_kubectl(args: argparse.Namespace) -> int:
    from labkit.kubectl.run import run

    return run(args.name, args.args)


def _cmd_hubble(args: argparse.Namespace) -> int:
    from labkit.hubble import run

    return run(args.name, args.args)


def _cmd_shell(args: argparse.Namespace) -> int:
    from labkit.kubectl.shell import open_shell

    return open_shell(args.name)


_COMMANDS = {
    "up": _cmd_up,
    "pack": _cmd_pack,
    "down": _cmd_down,
    "ls": _cmd_ls,
    "class": _cmd_class,
    "status": _cmd_status,
    "doctor": _cmd_doctor,
    "deploy": _cmd_deploy,
    "reset": _cmd_reset,
    "check": _cmd_check,
    "report": _cmd_report,
    "kubectl": _cmd_kubectl,
    "hubble": _cmd_hubble,
    "shell": _cmd_shell,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
