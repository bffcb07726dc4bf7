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

from labkit import cliparser
from labkit.console import show_messages
from labkit.errors import LabError
from labkit.inputs import check_learner
from labkit.lab import DEFAULT_CNI, DEFAULT_LAB_NAME, KUBE_PROXY_MODES, Lab, validate_cni

log = logging.getLogger("labkit")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `labkit` console script; information goes to stderr as ``labkit: ...``
    lines through the ``labkit`` logger, errors as a LabError's problem and fix."""
    argv = sys.argv[1:] if argv is None else list(argv)
    kubectl = cliparser.kubectl_split(argv)
    if kubectl is not None and kubectl[1] not in (["-h"], ["--help"]):
        args = argparse.Namespace(command="kubectl", name=kubectl[0], args=kubectl[1])
    else:
        args = cliparser.parser().parse_args(argv)
    args.line = shlex.join(["labkit", *argv])  # what to run again, e.g. as root
    show_messages()
    try:
        code = _COMMANDS[args.command](args)
        try:
            sys.stdout.flush()  # here, not at exit: a reader that left early is no error
        except BrokenPipeError:
            _discard_output()
        return code  # the command's own status, even when the reader left
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
