"""``kubectl exec POD [-c C] [-n NS] [-i] [-t] -- CMD...`` on the sandbox: without ``-i`` the
command runs through ``lab.exec`` and its output and exit code pass through; with ``-i`` (``-it``
for a shell) it runs through ``lab.exec_interactive`` on this terminal. Either way it runs in the
pod's confined namespaces, as a netshoot debug container on that pod would."""

from __future__ import annotations

from collections.abc import Sequence

from labkit import inputs
from labkit.errors import LabError
from labkit.kubectl.flags import Flag, KubectlError, parse, usage
from labkit.kubectl.pods import Terminal, choose_container, lab_error, target_pod
from labkit.lab import Lab

FLAGS = (
    Flag("--container", "-c"),
    Flag("--namespace", "-n"),
    Flag("--stdin", "-i", value=False),
    Flag("--tty", "-t", value=False),
    Flag("--quiet", "-q", value=False),
)
UNSERVED = ("--filename", "-f", "--pod-running-timeout", "--context", "--kubeconfig")
NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file\n"
HELP = """\
Execute a command in a pod (labkit kubectl on the sandbox).

The command runs in the pod's network namespace, confined like a netshoot debug container on
that pod: its hostname, resolv.conf and hosts file, the host's tools (ip, ss, curl, dig,
nslookup, ping, tcpdump) read-only. Every container of a pod shares its network.

Usage:
  kubectl exec (POD | TYPE/NAME) [-c CONTAINER] [-n NAMESPACE] [-i] [-t] -- COMMAND [args...]

TYPE/NAME is pod/NAME, or deploy/, rs/, sts/, ds/ or svc/NAME for one of the pods it selects.

Examples:
  kubectl exec pod-a -- ip -4 addr show eth0
  kubectl exec -it pod-a -- sh
  kubectl exec deploy/web -- hostname

Flags: -c/--container, -n/--namespace, -i/--stdin, -t/--tty, -q/--quiet.
On a Kind lab `labkit kubectl` runs the real kubectl.
"""
_EXPECTED = (
    "error: expected 'exec (POD | TYPE/NAME) -- COMMAND [args...]'.\n"
    "POD or TYPE/NAME is a required argument for the exec command\n"
)


def exec_pod(lab: Lab, argv: Sequence[str], term: Terminal) -> int:
    """Run ``kubectl exec ARGV`` (without the verb) on the sandbox; the command's exit code."""
    parsed = parse("exec", argv, FLAGS, HELP, UNSERVED)
    words, command = parsed.before_dash(), parsed.after_dash()
    if not words:
        raise KubectlError(_EXPECTED + usage("exec"))
    if len(words) > 1:
        raise KubectlError(
            "error: exec [POD] [COMMAND] is not supported anymore. "
            f"Use exec [POD] -- [COMMAND] instead\n{usage('exec')}"
        )
    if not command:
        raise KubectlError(
            f"error: you must specify at least one command for the container\n{usage('exec')}"
        )
    namespace = parsed.last("--namespace", "default")
    pod = target_pod(lab, "exec", namespace, words[0], term)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise KubectlError(
            f"error: cannot exec into a container in a completed pod; current phase is {phase}"
        )
    chosen = parsed.last("--container") or None
    container = choose_container(pod, chosen, term, parsed.on("--quiet"))
    ref = f"{namespace}/{pod['metadata']['name']}"
    try:
        if parsed.on("--stdin"):
            if parsed.on("--tty") and not term.is_tty():
                term.err(NO_TTY)
            code = lab.exec_interactive(ref, command, namespace, container, parsed.on("--tty"))
        else:
            result = lab.exec(ref, command, namespace, inputs.TIMEOUT_MAX_S)
            term.out(result.stdout)
            term.err(result.stderr)
            code = result.returncode
    except LabError as exc:
        raise lab_error(exc) from None
    if code:
        term.err(f"command terminated with exit code {code}\n")
    return code
