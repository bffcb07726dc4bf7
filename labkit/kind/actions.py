"""The actions a Kind install plan is made of, as plain data that renders to shell-like text.

A plan never runs anything by itself: ``labkit.kind.execute`` carries the actions out, and
``--dry-run`` prints them. Commands name tools (``kind``, ``kubectl``, ``helm``) that are looked up
on PATH when they run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from labkit.kind import cluster

WAIT_KINDS = ("nodes", "daemonset", "deployment", "tigerastatus", "crd", "ingressclass")


@dataclass(frozen=True)
class Run:
    """Run an external command; optionally feed ``stdin`` and save stdout to a file."""

    argv: tuple[str, ...]
    stdin: str | None = None
    stdout_to: str | None = None

    def shell(self) -> str:
        """The command as one would type it (here-document for stdin, redirect for stdout)."""
        text = shlex.join(self.argv)
        if self.stdout_to:
            text += f" > {shlex.quote(self.stdout_to)}"
        if self.stdin is not None:
            text += " <<'EOF'\n" + self.stdin.rstrip("\n") + "\nEOF"
        return text


@dataclass(frozen=True)
class WriteFile:
    """Write a text file (the rendered Kind config)."""

    path: str
    content: str

    def shell(self) -> str:
        """What the dry run shows for it (the content is printed with the config)."""
        return f"write {self.path} (the Kind config shown above)"


@dataclass(frozen=True)
class Fetch:
    """Download a tarball once into a cache, check its SHA-256, and unpack it into a folder."""

    url: str
    sha256: str
    cache_file: str
    extract_to: str

    def shell(self) -> str:
        """What the dry run shows for it: the URL, the cache file and its checksum, the folder."""
        return (
            f"download {self.url}\n  -> {self.cache_file} (sha256 {self.sha256})\n"
            f"  unpack into {self.extract_to}"
        )


@dataclass(frozen=True)
class Unpack:
    """Unpack a tarball already on disk (an offline pack's CNI plugins) into a folder."""

    archive: str
    extract_to: str

    def shell(self) -> str:
        """What the dry run shows for it."""
        return f"unpack {self.archive}\n  into {self.extract_to}"


@dataclass(frozen=True)
class Download:
    """Download a file into an offline pack (checked against ``sha256`` when one is pinned)."""

    url: str
    path: str
    sha256: str | None = None

    def shell(self) -> str:
        """What the dry run shows for it."""
        check = f" (sha256 {self.sha256})" if self.sha256 else ""
        return f"download {self.url}\n  -> {self.path}{check}"


@dataclass(frozen=True)
class CreateCluster:
    """``kind create cluster`` from the rendered config and the pinned node image."""

    name: str
    image: str
    config_path: str
    kubeconfig: str

    @property
    def argv(self) -> tuple[str, ...]:
        """The `kind create cluster` command line `cluster.create` runs."""
        return cluster.create_argv(
            self.name, image=self.image, config_path=self.config_path, kubeconfig=self.kubeconfig
        )

    def shell(self) -> str:
        """The command line as one would type it."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class StartContainer:
    """``docker run --detach`` a container beside the lab, unless one of that name already runs
    (a stopped one is replaced): the lab's outside client, the host's cloud-provider-kind."""

    name: str
    argv: tuple[str, ...]

    def shell(self) -> str:
        """The command line, and when it is skipped."""
        return shlex.join(self.argv) + f"\n(skipped while a container {self.name} runs)"


@dataclass(frozen=True)
class Wait:
    """Poll until objects are ready; ``names`` lists the objects, ``count`` the nodes expected."""

    what: str
    title: str
    timeout_s: float
    namespace: str | None = None
    names: tuple[str, ...] = ()
    count: int = 0

    def __post_init__(self) -> None:
        if self.what not in WAIT_KINDS:
            raise ValueError(f"unknown wait kind {self.what!r}")

    def kubectl_equivalent(self, kubeconfig: str) -> list[str]:
        """What a person would type to wait for the same thing with kubectl."""
        base = ["kubectl", "--kubeconfig", kubeconfig]
        timeout = f"--timeout={int(self.timeout_s)}s"
        if self.what == "nodes":
            return [shlex.join([*base, "wait", "--for=condition=Ready", "nodes", "--all", timeout])]
        if self.what in ("daemonset", "deployment"):
            namespace = self.namespace or "default"
            return [
                shlex.join(
                    [*base, "-n", namespace, "rollout", "status", f"{self.what}/{n}", timeout]
                )
                for n in self.names
            ]
        if self.what == "ingressclass":
            objects = [f"ingressclass/{n}" for n in self.names]
            return [shlex.join([*base, "wait", "--for=create", *objects, timeout])]
        condition, prefix = (
            ("Available", "tigerastatus") if self.what == "tigerastatus" else ("Established", "crd")
        )
        objects = [f"{prefix}/{n}" for n in self.names]
        return [shlex.join([*base, "wait", f"--for=condition={condition}", *objects, timeout])]

    def shell(self, kubeconfig: str = "KUBECONFIG") -> str:
        """The kubectl equivalent, one command per line."""
        return "\n".join(self.kubectl_equivalent(kubeconfig))


Action = Run | WriteFile | Fetch | Unpack | Download | CreateCluster | StartContainer | Wait


@dataclass(frozen=True)
class PlanStep:
    """One titled stage of the plan and the actions it takes, in order."""

    title: str
    actions: tuple[Action, ...]
    note: str = ""
