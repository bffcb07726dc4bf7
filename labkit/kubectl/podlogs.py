"""``kubectl logs POD [-c C] [-n NS] [--tail N]`` on the sandbox: what the pod's server saw,
read through ``lab.logs`` (the agent's request log, shaped like agnhost netexec's; CoreDNS's and
kube-proxy's start-up lines). kube-system's other pods are refused in one line: labkit does their
work."""

from __future__ import annotations

from collections.abc import Sequence

from labkit.errors import LabError
from labkit.kubectl.flags import Flag, KubectlError, flag_usage, parse, usage
from labkit.kubectl.pods import Terminal, choose_container, lab_error, target_pod
from labkit.lab import Lab

FLAGS = (
    Flag("--container", "-c"),
    Flag("--namespace", "-n"),
    Flag("--tail"),
)
UNSERVED = (
    "--follow", "-f", "--previous", "-p", "--timestamps", "--since", "--since-time",
    "--all-containers", "--selector", "-l", "--prefix", "--limit-bytes", "--context",
    "--kubeconfig",
)  # fmt: skip
HELP = """\
Print the logs for a container in a pod (labkit kubectl on the sandbox).

The sandbox runs no images: a pod's log is what its server saw, as the lab's agent logged it,
one line per request shaped like agnhost netexec's (`GET /hostname`). CoreDNS and kube-proxy
pods show their start-up lines; kube-system's other pods keep no log (labkit does their work).

Usage:
  kubectl logs (POD | TYPE/NAME) [-c CONTAINER] [-n NAMESPACE] [--tail=N]

Examples:
  kubectl logs web-5d9c7b7f4-abcde
  kubectl logs -n kube-system coredns-7db6d8ff4d-xyz12 --tail=5

On a Kind lab `labkit kubectl` runs the real kubectl.
"""


def tail(text: str, count: int) -> str:
    """The last ``count`` lines of ``text`` (all of them for a negative count)."""
    if count < 0:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[len(lines) - count :]) if count else ""


def _count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise KubectlError(
            f'error: invalid argument "{value}" for "--tail" flag: strconv.ParseInt: '
            f'parsing "{value}": invalid syntax\n{flag_usage("logs")}'
        ) from None


def pod_logs(lab: Lab, argv: Sequence[str], term: Terminal) -> int:
    """Print ``kubectl logs ARGV`` (without the verb) on the sandbox; 0, or 1 on a mistake."""
    parsed = parse("logs", argv, FLAGS, HELP, UNSERVED)
    words = parsed.before_dash()
    if not words:
        raise KubectlError(
            "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n"
            "POD or TYPE/NAME is a required argument for the logs command\n" + usage("logs")
        )
    if len(words) > 2 or (len(words) == 2 and parsed.given("--container")):
        raise KubectlError(
            "error: only one of -c or an inline [CONTAINER] arg is allowed\n" + usage("logs")
        )
    count = _count(parsed.last("--tail", "-1"))
    namespace = parsed.last("--namespace", "default")
    pod = target_pod(lab, "logs", namespace, words[0], term)
    wanted = words[1] if len(words) == 2 else (parsed.last("--container") or None)
    container = choose_container(pod, wanted, term)
    try:
        text = lab.logs(f"{namespace}/{pod['metadata']['name']}", namespace, container)
    except LabError as exc:
        raise lab_error(exc) from None
    term.out(tail(text, count))
    return 0
