"""What the pod verbs share: the terminal they talk to, and finding the pod and container a
command line names, refused in kubectl's words (``pods "x" not found``, ``container x is not
valid for pod y out of: ...``, as kubectl 1.36's ``podcmd.FindOrDefaultContainerByName``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from labkit.errors import LabError
from labkit.kubectl.args import KubectlError
from labkit.lab import Lab

POD_TYPES = ("pod", "pods", "po")
"""The spellings of ``TYPE/NAME`` a pod verb accepts for a pod."""


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


def pod_name(verb: str, word: str) -> str:
    """A pod's name from ``NAME`` or ``pod/NAME``; another type is refused (the sandbox runs
    these verbs on pods only)."""
    kind, slash, name = word.partition("/")
    if not slash:
        return word
    if kind.lower() in POD_TYPES and name:
        return name
    raise KubectlError(
        f"error: labkit kubectl on the sandbox runs {verb} on a pod (POD or pod/NAME), not "
        f"{word!r}; find the pod with `kubectl get pods`"
    )


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
    try:
        found = lab.get("pods", name, namespace)
    except LabError as exc:
        raise KubectlError(f"error: {exc.what}") from None
    if not found:
        raise KubectlError(f'Error from server (NotFound): pods "{name}" not found')
    return found[0]


def lab_error(exc: LabError) -> KubectlError:
    """A LabError from the lab as one ``error:`` line naming the problem and the fix."""
    return KubectlError(f"error: {exc.what} {exc.fix}".rstrip())
