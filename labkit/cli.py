"""`labkit`: bring labs up and down, look at them, deploy scenarios, grade, report.

Every expected failure is a LabError printed as two sentences (problem, fix) with exit code 1;
usage mistakes exit 2. No traceback reaches the learner for anything we can foresee.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from labkit.console import show_messages
from labkit.errors import LabError
from labkit.inputs import check_learner
from labkit.lab import BACKENDS, DEFAULT_LAB_NAME, KUBE_PROXY_MODES, Lab, validate_cni

log = logging.getLogger("labkit")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="Kubernetes Networking Labs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def named(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--name", default=DEFAULT_LAB_NAME, help=f"lab name (default {DEFAULT_LAB_NAME})"
        )

    up = sub.add_parser("up", help="bring a lab up (Kind cluster or sandbox)")
    up.add_argument("--backend", default="auto", help=f"auto (default), {', '.join(BACKENDS)}")
    up.add_argument("--cni", default="flannel", help="flannel (default), calico or cilium")
    up.add_argument("--kube-proxy-mode", default=None, help=f"one of {', '.join(KUBE_PROXY_MODES)}")
    up.add_argument(
        "--hubble", action="store_true", help="Kind + Cilium: also enable Hubble relay and UI"
    )
    up.add_argument("--dry-run", action="store_true", help="print the whole plan, change nothing")
    named(up)

    down = sub.add_parser("down", help="remove a lab, whichever backend holds it")
    named(down)

    status = sub.add_parser("status", help="nodes and pods of a lab, like kubectl get -o wide")
    named(status)

    doctor = sub.add_parser("doctor", help="check this machine; every failing line names its fix")
    doctor.add_argument(
        "--backend", default="auto", help=f"auto (default: both), {', '.join(BACKENDS)}"
    )
    doctor.add_argument("--cni", default=None, help="also check what this CNI needs")

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
        print(
            f"labkit: interrupted; run `labkit down --name {name}` if a lab was half built.",
            file=sys.stderr,
        )
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
    if args.dry_run:
        backend = "kind" if args.backend == "auto" else args.backend
        if backend != "kind":
            raise LabError(
                "--dry-run prints the Kind plan; the sandbox has no separate plan to print.",
                "Use --backend kind --dry-run, or drop --dry-run to build the sandbox.",
            )
        from labkit.kind.backend import plan

        print(plan(args.name, args.cni, args.kube_proxy_mode, hubble=args.hubble).render())
        return 0
    backend, why = choose_backend(args.backend)
    if args.hubble and (backend != "kind" or args.cni != "cilium"):
        raise LabError(
            "--hubble needs Cilium on Kind: Hubble is Cilium's flow observer.",
            "Use --backend kind --cni cilium --hubble, or drop --hubble.",
        )
    log.info("using the %s backend (%s).", backend, why)
    lab: Lab
    if args.hubble:
        from labkit.kind.backend import up as kind_up

        lab = kind_up(args.name, args.cni, args.kube_proxy_mode, hubble=True)
    else:
        lab = backend_module(backend).up(args.name, args.cni, args.kube_proxy_mode)
    print(
        f"labkit: lab {lab.name!r} is up on {lab.backend} with {lab.cni}. "
        f"Next: `labkit status --name {lab.name}`."
    )
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from labkit.lab import down

    holders = down(args.name)
    if not holders:
        print(f"labkit: no lab named {args.name!r} is running; nothing to remove.")
    for backend in holders:
        print(f"labkit: removed {backend} lab {args.name!r}.")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from labkit.lab import backend_module, find_backends
    from labkit.status import render_status

    holders = find_backends(args.name)
    if not holders:
        raise LabError(
            f"No lab named {args.name!r} is running.",
            f"Start one with `labkit up --name {args.name}` "
            "(add --cni calico to enforce policies).",
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
    from labkit.doctor import render_lines, run_doctor, verdict

    if args.cni is not None:
        validate_cni(args.cni)
    lines = run_doctor(args.backend, args.cni)
    ready, closing = verdict(lines, args.backend)
    print(render_lines(lines))
    print(closing)
    return 0 if ready else 1


def _attach(lab_name: str) -> Lab:
    """The running lab of this name, on whichever backend holds it."""
    from labkit.lab import backend_module, find_backends

    holders = find_backends(lab_name)
    lab = backend_module(holders[0]).attach(lab_name) if holders else None
    if lab is None:
        raise LabError(
            f"No running lab named {lab_name!r}.",
            f"Start one first: `labkit up --name {lab_name}` "
            "(add --cni calico to enforce policies).",
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
    refs = deploy(_attach(args.name), args.scenario, variant=args.variant)
    print("\n".join(f"{ref} applied" for ref in refs))
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    from labkit.course.grading import reset

    refs = reset(_attach(args.name), args.scenario)
    print(f"labkit: {args.scenario} is back at its starting state ({len(refs)} objects applied).")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from labkit.course.grading import grade

    if args.learner is not None:
        check_learner(args.learner)  # before attaching: the name is wrong whatever the lab
    results = grade(_attach(args.name), args.scenario, args.variant, args.learner)
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


def _cmd_shell(args: argparse.Namespace) -> int:
    from labkit.kubectl.shell import open_shell

    return open_shell(args.name)


_COMMANDS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "doctor": _cmd_doctor,
    "deploy": _cmd_deploy,
    "reset": _cmd_reset,
    "check": _cmd_check,
    "report": _cmd_report,
    "kubectl": _cmd_kubectl,
    "shell": _cmd_shell,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
