"""What the pod verbs share: the terminal they talk to, and finding the pod (``POD``,
``pod/NAME``, ``deploy/NAME``, ``svc/NAME``...) and the container a command line names, refused
in kubectl's words (``pods "x" not found``, ``container x is not valid for pod y out of: ...``,
as kubectl 1.36's ``podcmd.FindOrDefaultContainerByName``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from labkit.errors import LabError
from labkit.kubectl import resources
from labkit.kubectl.fetch import not_found
from labkit.kubectl.flags import KubectlError
from labkit.lab import Lab

OWNER_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Service")
"""The kinds whose ``TYPE/NAME`` a pod verb accepts for one of the pods they select."""


@dataclass
class Terminal:
    """The streams a verb reads and writes: the process's own, or a test's."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO

    @classmethod
    def of_process(cls) -> Terminal:
        """This process's stdin, stdout and stderr."""
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def is_tty(self) -> bool:
        """Whether stdin is a terminal (``-t`` needs one)."""
        try:
            return self.stdin.isatty()
        except ValueError:  # closed
            return False

    def out(self, text: str) -> None:
        """Write to stdout now."""
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        """Write to stderr now."""
        self.stderr.write(text)
        self.stderr.flush()


def target_pod(lab: Lab, verb: str, namespace: str, word: str, term: Terminal) -> dict[str, Any]:
    """The pod ``NAME`` or ``TYPE/NAME`` names: a pod, or one of the pods a Deployment,
    ReplicaSet, StatefulSet, DaemonSet or Service selects (a Running one first, as kubectl
    picks an attachable pod); ``logs`` says which when there are several."""
    kind, slash, name = word.partition("/")
    if not slash:
        return find_pod(lab, namespace, word)
    resource = resources.find(kind)
    if resource is None:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{kind}"')
    if resource.kind == "Pod":
        return find_pod(lab, namespace, name)
    if resource.kind not in OWNER_KINDS:
        raise KubectlError(
            f"error: cannot attach to *v1.{resource.kind}: selector for *v1.{resource.kind} "
            "not implemented"
        )
    owners = _read(lab, resource.kind, name, namespace)
    if not owners:
        raise KubectlError(not_found(resource, name))
    spec = owners[0].get("spec") or {}
    selector = spec.get("selector") or {}
    labels = dict(selector if resource.kind == "Service" else selector.get("matchLabels") or {})
    pods = _read(lab, "pods", None, namespace, labels) if labels else []
    pods.sort(key=lambda p: ((p.get("status") or {}).get("phase") != "Running", _name(p)))
    if not pods:
        raise KubectlError(f"error: {resource.qualified}/{name} selects no pods")
    if verb == "logs" and len(pods) > 1:
        term.err(f"Found {len(pods)} pods, using pod/{_name(pods[0])}\n")
    return pods[0]


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _read(
    lab: Lab,
    kind: str,
    name: str | None,
    namespace: str,
    selector: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    try:
        return lab.get(kind, name, namespace, selector)
    except LabError as exc:
        raise KubectlError(f"error: {exc.what}") from None


def container_names(pod: dict[str, Any]) -> str:
    """Every container of a pod as kubectl lists them: regular, then ``(ephem)``, then
    ``(init)``."""
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    names += [f"{c.get('name')} (ephem)" for c in spec.get("ephemeralContainers") or []]
    names += [f"{c.get('name')} (init)" for c in spec.get("initContainers") or []]
    return ", ".join(names)


def choose_container(
    pod: dict[str, Any], container: str | None, term: Terminal, quiet: bool = False
) -> str:
    """The container named, or the pod's first (saying so on stderr when it has others, unless
    ``quiet``)."""
    spec = pod.get("spec") or {}
    every = [
        str(c.get("name"))
        for key in ("containers", "ephemeralContainers", "initContainers")
        for c in spec.get(key) or []
    ]
    name = pod["metadata"]["name"]
    if container is not None:
        if container not in every:
            raise KubectlError(
                f"error: container {container} is not valid for pod {name} out of: "
                f"{container_names(pod)}"
            )
        return container
    if not every:
        raise KubectlError(
            f"error: pod {pod['metadata'].get('namespace')}/{name} does not have any containers"
        )
    if len(every) > 1 and not quiet:
        term.err(f'Defaulted container "{every[0]}" out of: {container_names(pod)}\n')
    return every[0]


def find_pod(lab: Lab, namespace: str, name: str) -> dict[str, Any]:
    """The pod, or kubectl's NotFound line."""
    found = _read(lab, "pods", name, namespace)
    if not found:
        raise KubectlError(f'Error from server (NotFound): pods "{name}" not found')
    return found[0]


def lab_error(exc: LabError) -> KubectlError:
    """A LabError from the lab as one ``error:`` line naming the problem and the fix."""
    return KubectlError(f"error: {exc.what} {exc.fix}".rstrip())
