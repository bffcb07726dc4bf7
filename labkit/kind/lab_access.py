"""A Kind lab's objects and commands: the seam's apply, get and delete through the Kubernetes
API (`labkit.kind.objects`), commands in pods through the exec API, on nodes with `docker exec`
(a Kind node is a container), and the namespaces a learner makes by hand on a node
(`labkit.kind.handmade`). `labkit.kind.lab.KindLab` builds on it with probes and lookups."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from labkit import inputs
from labkit.errors import LabError
from labkit.kind import handmade, tools
from labkit.kind.objects import KindObjects, api_reason
from labkit.kind.plan import default_paths
from labkit.model.objects import name_of
from labkit.values import ExecResult, ObjectRef, split_pod_ref


def as_argv(command: str | Sequence[object]) -> list[str]:
    """A string runs through ``sh -c`` (pipes and globs work); a list runs as given."""
    return ["sh", "-c", command] if isinstance(command, str) else [str(c) for c in command]


def exit_code(status_text: str) -> tuple[int, str]:
    """Exit code and message from the exec API's status channel (a metav1.Status in JSON)."""
    try:
        status = json.loads(status_text) if status_text else {}
    except json.JSONDecodeError:
        return 1, status_text.strip()
    if not status or status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), status.get("message", "")
            except (TypeError, ValueError):
                break
    return 1, status.get("message", "exec failed")


def exec_interactive_argv(
    kubectl: str,
    kubeconfig: str,
    lab_name: str,
    pod_ref: tuple[str, str],
    argv: Sequence[str],
    container: str | None,
    tty: bool,
) -> list[str]:
    """``kubectl exec -i[t]`` on the lab's context for ``(namespace, name)``: stdin always
    attached, a terminal only when there is one (as kubectl asks)."""
    namespace, name = pod_ref
    flags = ["-it"] if tty else ["-i"]
    if container is not None:
        flags += ["-c", container]
    return [
        kubectl, "--kubeconfig", kubeconfig, "--context", f"kind-{lab_name}",
        "exec", *flags, "-n", namespace, name, "--", *argv,
    ]  # fmt: skip


class KindAccess:
    """The objects and commands of Kind lab ``name``, through its API client ``objects``."""

    def __init__(self, name: str, objects: KindObjects) -> None:
        self.name = name
        self.objects = objects

    # ----------------------------------------------------------------- seam: objects

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate every document, dry-run them all on the server, then server-side apply them."""
        return self.objects.apply(manifests, namespace)

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects as plain dicts in the Kubernetes JSON shape; ``namespace=None`` means all
        namespaces."""
        return self.objects.get(kind, name, namespace, selector)

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete objects named by ObjectRefs or by manifests; objects already gone are fine."""
        self.objects.delete(manifests_or_refs)

    # ----------------------------------------------------------------- seam: commands

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
        container: str | None = None,
    ) -> ExecResult:
        """Run a command in a pod's container through the Kubernetes exec API."""
        timeout = inputs.check_timeout(timeout)
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        argv = as_argv(command)
        if container is None:
            found = self.get("pod", name, namespace=ns)
            if not found:
                raise LabError(
                    f"Pod {ns}/{name} does not exist in lab {self.name!r}.",
                    f"List the pods with `kubectl get pods -n {ns}` and use one of those names.",
                )
            container = found[0]["spec"]["containers"][0]["name"]
        core = self.objects.core(own_client=True)
        try:
            resp = stream(
                core.connect_get_namespaced_pod_exec,
                name,
                ns,
                command=argv,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            raise LabError(
                f"Cannot exec into pod {ns}/{name}: {api_reason(exc)}",
                f"Check that the pod exists and is Running (`kubectl get pod -n {ns} {name}`).",
            ) from None
        try:
            resp.run_forever(timeout=timeout)
            stdout, stderr = resp.read_stdout(), resp.read_stderr()
            if resp.is_open():
                resp.close()
                return ExecResult(
                    tuple(argv), 124, stdout, stderr + f"\n(timed out after {timeout:g} s)"
                )
            code, message = exit_code(resp.read_channel(3))
        finally:
            if resp.is_open():
                resp.close()
        if code and message and not stderr:
            stderr = message
        return ExecResult(tuple(argv), code, stdout, stderr)

    def exec_interactive(
        self,
        pod: str,
        argv: Sequence[str],
        namespace: str = "default",
        container: str | None = None,
        tty: bool = True,
    ) -> int:
        """``kubectl exec -it`` into the pod with this process's terminal; its exit code."""
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        command = exec_interactive_argv(
            tools.find("kubectl"),
            str(default_paths(self.name).user_kubeconfig),
            self.name,
            (ns, name),
            [str(a) for a in argv],
            container,
            tty and sys.stdin.isatty(),
        )
        return subprocess.run(command, check=False).returncode

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        """What the pod's container printed, read through the API (``kubectl logs``)."""
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        try:
            text = self.objects.core().read_namespaced_pod_log(name, ns, container=container)
        except ApiException as exc:
            raise LabError(
                f"Cannot read the logs of pod {ns}/{name}: {api_reason(exc)}",
                f"Check the pod and its containers: `kubectl describe pod -n {ns} {name}`.",
            ) from None
        return str(text)

    def nodes(self) -> list[str]:
        """Node names (Kind node containers carry the same names)."""
        return [name_of(n) for n in self.get("nodes", namespace=None)]

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command on a node with `docker exec` (a Kind node is a container)."""
        return self._docker(node, ["docker", "exec", node, *as_argv(command)], timeout)

    def _docker(self, node: str, argv: list[str], timeout: float = 10.0) -> ExecResult:
        """Run a ``docker exec`` argv on one of the lab's nodes."""
        timeout = inputs.check_timeout(timeout)
        names = self.nodes()
        if node not in names:
            raise LabError(
                f"Lab {self.name!r} has no node {node!r}.", f"Use one of: {', '.join(names)}."
            )
        return self._run_docker(argv, timeout)

    def _run_docker(self, argv: list[str], timeout: float) -> ExecResult:
        """Run a ``docker`` argv, its timeout an exit code 124 as ``timeout`` gives."""
        try:
            proc = subprocess.run(
                [tools.find("docker"), *argv[1:]], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            return ExecResult(tuple(argv), 124, out or "", f"(timed out after {timeout:g} s)")
        return ExecResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    # ----------------------------------------------------------------- seam: hand-made namespaces

    def netns_add(self, node: str, name: str) -> None:
        """``ip netns add NAME`` in the node container."""
        if name in self.netns_list(node):
            raise LabError(
                f"Node {node} already has a network namespace {name!r}.",
                f"Remove it first with lab.netns_delete({node!r}, {name!r}), or pick another name.",
            )
        self._checked(node, handmade.add_argv(node, name), f"create namespace {name!r}")

    def netns_delete(self, node: str, name: str) -> None:
        """``ip netns delete NAME`` in the node container, when it is there."""
        if name in self.netns_list(node):
            self._checked(node, handmade.delete_argv(node, name), f"delete namespace {name!r}")

    def netns_list(self, node: str) -> list[str]:
        """The hand-made namespaces ``ip netns list`` shows in the node container."""
        listed = self._checked(node, handmade.list_argv(node), "list namespaces")
        return handmade.parse_list(listed.stdout)

    def netns_exec(
        self, node: str, name: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """``ip netns exec NAME CMD`` in the node container."""
        self._hand_exists(node, name)
        return self._docker(node, handmade.exec_argv(node, name, as_argv(command)), timeout)

    def _hand_exists(self, node: str, name: str) -> None:
        if inputs.check_hand_netns(name) not in self.netns_list(node):
            raise LabError(
                f"Node {node} has no network namespace {name!r}.",
                f"Create it with lab.netns_add({node!r}, {name!r}).",
            )

    def _checked(self, node: str, argv: list[str], what: str) -> ExecResult:
        result = self._docker(node, argv)
        if not result.ok:
            raise LabError(
                f"Could not {what} on node {node}: {result.stderr.strip() or 'it failed'}.",
                f"Look at the node with `docker exec {node} ip netns list`.",
            )
        return result
