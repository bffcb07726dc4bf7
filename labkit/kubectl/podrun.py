"""``kubectl run NAME --image=IMG [-it] [--rm] [--restart=Never] [-- CMD...]`` on the sandbox:
the Pod goes through ``lab.apply``; with ``-it`` it is waited for until Running and a shell (the
command, or ``sh``) opens in it through ``lab.exec_interactive``; ``--rm`` deletes it afterwards,
however the shell ended. The sandbox runs no images: any image is accepted, and the pod's
network is the lab's, with the host's tools."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from labkit.errors import LabError
from labkit.kubectl.flags import Flag, KubectlError, Parsed, parse, usage
from labkit.kubectl.pods import Terminal, lab_error
from labkit.lab import Lab, ObjectRef

FLAGS = (
    Flag("--image"),
    Flag("--namespace", "-n"),
    Flag("--stdin", "-i", value=False),
    Flag("--tty", "-t", value=False),
    Flag("--rm", value=False),
    Flag("--restart"),
    Flag("--command", value=False),
    Flag("--labels", "-l"),
    Flag("--quiet", "-q", value=False),
)
UNSERVED = (
    "--port", "--expose", "--env", "--overrides", "--dry-run", "--attach", "--privileged",
    "--image-pull-policy", "--serviceaccount", "--annotations", "--filename", "-f",
    "--context", "--kubeconfig",
)  # fmt: skip
RESTART_POLICIES = ("Always", "OnFailure", "Never")
RUNNING_TIMEOUT_S = 60.0
PROMPT_HINT = "If you don't see a command prompt, try pressing enter.\n"
HELP = """\
Create and run a particular image in a pod (labkit kubectl on the sandbox).

The sandbox runs no images: any --image is accepted and recorded, and the pod gets the lab's
network with the host's tools (ip, ss, curl, dig, nslookup, ping, tcpdump), like netshoot.
With -it a shell opens in the pod: the command after -- (bash, sh ...) or sh; --rm deletes
the pod when it ends. Without -it the pod is created and left running.

Usage:
  kubectl run NAME --image=IMAGE [-n NAMESPACE] [-l key=value,...]
      [--restart=Always|OnFailure|Never] [-i] [-t] [--rm] [--command] [-- COMMAND [args...]]

Examples:
  kubectl run -it --rm netshoot --image=nicolaka/netshoot -- bash
  kubectl run client --image=nicolaka/netshoot --restart=Never

On a Kind lab `labkit kubectl` runs the real kubectl, and the image runs.
"""


def pod_manifest(name: str, parsed: Parsed) -> dict[str, Any]:
    """The Pod ``kubectl run`` creates: label ``run=NAME`` (or --labels), one container named
    after the pod, the words after ``--`` as its args (its command with ``--command``)."""
    labels = {"run": name}
    if parsed.given("--labels"):
        labels = dict(_label(pair) for pair in parsed.last("--labels").split(",") if pair)
    container: dict[str, Any] = {"name": name, "image": parsed.last("--image")}
    command = parsed.after_dash()
    if command:
        container["command" if parsed.on("--command") else "args"] = command
    if parsed.on("--stdin"):
        container.update(stdin=True, stdinOnce=True, tty=parsed.on("--tty"))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": parsed.last("--namespace", "default"),
            "labels": labels,
        },
        "spec": {
            "containers": [container],
            "restartPolicy": parsed.last("--restart", "Always"),
            "dnsPolicy": "ClusterFirst",
        },
    }


def _label(pair: str) -> tuple[str, str]:
    key, eq, value = pair.partition("=")
    if not eq or not key:
        raise KubectlError(f"error: invalid label spec: {pair}")
    return key, value


def check(parsed: Parsed) -> str:
    """The pod's name, once the command line is one ``kubectl run`` accepts."""
    if len(parsed.before_dash()) != 1:
        raise KubectlError(f"error: NAME is required for run\n{usage('run')}")
    if not (parsed.last("--image") or None):
        raise KubectlError('error: required flag(s) "image" not set')
    restart = parsed.last("--restart", "Always")
    if restart not in RESTART_POLICIES:
        raise KubectlError(f"error: invalid restart policy: {restart}")
    if parsed.on("--rm") and not parsed.on("--stdin"):
        raise KubectlError("error: --rm should only be used for attached containers")
    return parsed.before_dash()[0]


def wait_running(
    lab: Lab,
    namespace: str,
    name: str,
    timeout: float = RUNNING_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until the pod is Running (at once on the sandbox; an image pull on Kind)."""
    deadline = time.monotonic() + timeout
    while True:
        found = lab.get("pods", name, namespace)
        phase = ((found[0].get("status") or {}).get("phase") if found else None) or "Pending"
        if phase == "Running":
            return
        if phase in ("Succeeded", "Failed") or time.monotonic() >= deadline:
            raise KubectlError(
                f"error: pod {namespace}/{name} is {phase}, not Running; "
                f"see `kubectl describe pod -n {namespace} {name}`"
            )
        sleep(0.5)


def run_pod(lab: Lab, argv: Sequence[str], term: Terminal) -> int:
    """Run ``kubectl run ARGV`` (without the verb) on the sandbox; the shell's exit code with
    ``-i``, else 0 once the pod is created."""
    parsed = parse("run", argv, FLAGS, HELP, UNSERVED)
    name = check(parsed)
    manifest = pod_manifest(name, parsed)
    namespace = manifest["metadata"]["namespace"]
    try:
        if lab.get("pods", name, namespace):
            raise KubectlError(f'Error from server (AlreadyExists): pods "{name}" already exists')
        lab.apply(manifest)
    except LabError as exc:
        raise lab_error(exc) from None
    if not parsed.on("--stdin"):
        term.out(f"pod/{name} created\n")
        return 0
    try:
        wait_running(lab, namespace, name)
        if parsed.on("--tty") and not term.is_tty():
            term.err("Unable to use a TTY - input is not a terminal or the right kind of file\n")
        elif not parsed.on("--quiet"):
            term.err(PROMPT_HINT)
        argv = list(parsed.after_dash() or ["sh"])
        return lab.exec_interactive(
            f"{namespace}/{name}", argv, namespace, name, parsed.on("--tty")
        )
    except LabError as exc:
        raise lab_error(exc) from None
    finally:
        if parsed.on("--rm"):
            lab.delete([ObjectRef("Pod", name, namespace)])
            term.out(f'pod "{name}" deleted\n')
